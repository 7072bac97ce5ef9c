/*
 * Chunked bump allocator and budgeted vector growth.
 */
#include "arena.h"

#include "error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct fl_arena_chunk {
    struct fl_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    _Alignas(16) char data[];
};

void fl_budget_init(struct fl_budget *b, int64_t limit_bytes)
{
    atomic_init(&b->used, 0);
    b->limit = limit_bytes < 0 ? 0 : limit_bytes;
}

int fl_budget_charge(struct fl_budget *b, size_t n)
{
    int64_t add = (int64_t)n;
    int64_t before;

    if (b == NULL)
        return 0;
    /* used is an int64_t, so a larger charge would wrap to a negative one. */
    if (n > (size_t)INT64_MAX)
        return FL_EBUDGET;
    before = atomic_fetch_add_explicit(&b->used, add, memory_order_relaxed);
    if (b->limit != 0 && add > b->limit - before) {
        atomic_fetch_sub_explicit(&b->used, add, memory_order_relaxed);
        return FL_EBUDGET;
    }
    return 0;
}

void fl_budget_release(struct fl_budget *b, size_t n)
{
    if (b != NULL)
        atomic_fetch_sub_explicit(&b->used, (int64_t)n, memory_order_relaxed);
}

void fl_arena_init(struct fl_arena *a, size_t chunk_size,
                   struct fl_budget *budget)
{
    a->chunks = NULL;
    a->cur = NULL;
    a->end = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
    a->allocated = 0;
    a->budget = budget;
    a->error = 0;
}

static int add_chunk(struct fl_arena *a, size_t min_size)
{
    size_t size = a->chunk_size;
    size_t bytes;
    struct fl_arena_chunk *c;

    if (size < min_size)
        size = min_size;
    /* Adding the header to a size near SIZE_MAX would wrap to a tiny malloc. */
    if (size > SIZE_MAX - sizeof(*c))
        return a->error = -ENOMEM;
    bytes = sizeof(*c) + size;
    if (fl_budget_charge(a->budget, bytes) != 0)
        return a->error = FL_EBUDGET;
    c = malloc(bytes);
    if (c == NULL) {
        fl_budget_release(a->budget, bytes);
        return a->error = -ENOMEM;
    }
    c->size = size;
    c->next = a->chunks;
    a->chunks = c;
    a->cur = c->data;
    a->end = c->data + size;
    a->allocated += bytes;
    return 0;
}

void *fl_arena_alloc(struct fl_arena *a, size_t size)
{
    size_t rounded = (size + 15) & ~(size_t)15;
    void *p;

    if (rounded < size) {
        a->error = -ENOMEM;
        return NULL;
    }
    if (a->cur == NULL || (size_t)(a->end - a->cur) < rounded) {
        if (add_chunk(a, rounded) != 0)
            return NULL;
    }
    p = a->cur;
    a->cur += rounded;
    return p;
}

char *fl_arena_strndup(struct fl_arena *a, const char *s, size_t len)
{
    char *copy = fl_arena_alloc(a, len + 1);

    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

void fl_arena_reset(struct fl_arena *a)
{
    struct fl_arena_chunk *keep = a->chunks;

    if (keep == NULL)
        return;
    struct fl_arena_chunk *c = keep->next;
    while (c != NULL) {
        struct fl_arena_chunk *next = c->next;
        size_t bytes = sizeof(*c) + c->size;
        fl_budget_release(a->budget, bytes);
        a->allocated -= bytes;
        free(c);
        c = next;
    }
    keep->next = NULL;
    a->cur = keep->data;
    a->end = keep->data + keep->size;
}

void fl_arena_destroy(struct fl_arena *a)
{
    struct fl_arena_chunk *c = a->chunks;

    while (c != NULL) {
        struct fl_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    fl_budget_release(a->budget, a->allocated);
    a->chunks = NULL;
    a->cur = a->end = NULL;
    a->allocated = 0;
}

int fl_vec_reserve(void **items, size_t *cap, size_t need, size_t elem_size,
                   struct fl_budget *budget)
{
    size_t new_cap;
    void *grown;

    if (need <= *cap)
        return 0;
    new_cap = *cap ? *cap : 8;
    while (new_cap < need) {
        if (new_cap > SIZE_MAX / 2)
            return -ENOMEM;
        new_cap *= 2;
    }
    if (new_cap > SIZE_MAX / elem_size)
        return -ENOMEM;
    if (fl_budget_charge(budget, (new_cap - *cap) * elem_size) != 0)
        return FL_EBUDGET;
    grown = realloc(*items, new_cap * elem_size);
    if (grown == NULL) {
        fl_budget_release(budget, (new_cap - *cap) * elem_size);
        return -ENOMEM;
    }
    *items = grown;
    *cap = new_cap;
    return 0;
}

void fl_vec_free(void **items, size_t *cap, size_t elem_size,
                 struct fl_budget *budget)
{
    free(*items);
    fl_budget_release(budget, *cap * elem_size);
    *items = NULL;
    *cap = 0;
}
