/*
 * Open-addressing hash tables with linear probing, kept at most half full.
 */
#include "hash.h"

#include "error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t fl_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);

    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ fl_hash_u64(w)) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    if (len > 0) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = (h ^ fl_hash_u64(w ^ ((uint64_t)len << 56))) *
            0x9e3779b97f4a7c15ULL;
    }
    return fl_hash_u64(h);
}

/* ---- fl_map64 ---------------------------------------------------------- */

struct fl_map64_slot {
    uint64_t key;
    uint64_t value;
    int used;
};

void fl_map64_init(struct fl_map64 *m, struct fl_budget *budget)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
    m->budget = budget;
}

void fl_map64_destroy(struct fl_map64 *m)
{
    free(m->slots);
    fl_budget_release(m->budget, m->cap * sizeof(*m->slots));
    fl_map64_init(m, m->budget);
}

static struct fl_map64_slot *map64_find(struct fl_map64_slot *slots, size_t cap,
                                        uint64_t key)
{
    size_t mask = cap - 1;
    size_t i = fl_hash_u64(key) & mask;

    while (slots[i].used && slots[i].key != key)
        i = (i + 1) & mask;
    return &slots[i];
}

static int map64_grow(struct fl_map64 *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    struct fl_map64_slot *slots;

    if (fl_budget_charge(m->budget, cap * sizeof(*slots)) != 0)
        return FL_EBUDGET;
    slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        fl_budget_release(m->budget, cap * sizeof(*slots));
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].used)
            *map64_find(slots, cap, m->slots[i].key) = m->slots[i];
    }
    free(m->slots);
    fl_budget_release(m->budget, m->cap * sizeof(*slots));
    m->slots = slots;
    m->cap = cap;
    return 0;
}

uint64_t *fl_map64_get(const struct fl_map64 *m, uint64_t key)
{
    struct fl_map64_slot *s;

    if (m->cap == 0)
        return NULL;
    s = map64_find(m->slots, m->cap, key);
    return s->used ? &s->value : NULL;
}

uint64_t *fl_map64_put(struct fl_map64 *m, uint64_t key, int *inserted)
{
    struct fl_map64_slot *s;

    if ((m->count + 1) * 2 > m->cap && map64_grow(m) != 0)
        return NULL;
    s = map64_find(m->slots, m->cap, key);
    *inserted = !s->used;
    if (!s->used) {
        s->used = 1;
        s->key = key;
        s->value = 0;
        m->count++;
    }
    return &s->value;
}

/* ---- fl_strtab --------------------------------------------------------- */

struct fl_strtab_slot {
    uint64_t hash;
    uint32_t id_plus_one; /* 0 marks an empty slot */
};

void fl_strtab_init(struct fl_strtab *t, struct fl_budget *budget)
{
    t->slots = NULL;
    t->cap = 0;
    t->strings = NULL;
    t->count = 0;
    t->strings_cap = 0;
    t->budget = budget;
    fl_arena_init(&t->arena, 0, budget);
}

void fl_strtab_destroy(struct fl_strtab *t)
{
    free(t->slots);
    fl_budget_release(t->budget, t->cap * sizeof(*t->slots));
    fl_vec_free((void **)&t->strings, &t->strings_cap, sizeof(*t->strings),
                t->budget);
    fl_arena_destroy(&t->arena);
    t->slots = NULL;
    t->cap = 0;
    t->count = 0;
}

static struct fl_strtab_slot *
strtab_find(const struct fl_strtab *t, uint64_t hash, const char *s, size_t len)
{
    size_t mask = t->cap - 1;
    size_t i = hash & mask;

    for (;; i = (i + 1) & mask) {
        struct fl_strtab_slot *slot = &t->slots[i];
        if (slot->id_plus_one == 0)
            return slot;
        if (slot->hash == hash) {
            struct fl_str have = t->strings[slot->id_plus_one - 1];
            if (have.len == len && memcmp(have.ptr, s, len) == 0)
                return slot;
        }
    }
}

static int strtab_grow(struct fl_strtab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    struct fl_strtab_slot *slots;
    size_t mask = cap - 1;

    if (fl_budget_charge(t->budget, cap * sizeof(*slots)) != 0)
        return FL_EBUDGET;
    slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        fl_budget_release(t->budget, cap * sizeof(*slots));
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->cap; i++) {
        struct fl_strtab_slot old = t->slots[i];
        if (old.id_plus_one == 0)
            continue;
        size_t j = old.hash & mask;
        while (slots[j].id_plus_one != 0)
            j = (j + 1) & mask;
        slots[j] = old;
    }
    free(t->slots);
    fl_budget_release(t->budget, t->cap * sizeof(*slots));
    t->slots = slots;
    t->cap = cap;
    return 0;
}

int64_t fl_strtab_find(const struct fl_strtab *t, const char *s, size_t len)
{
    struct fl_strtab_slot *slot;

    if (t->cap == 0)
        return -1;
    slot = strtab_find(t, fl_hash_bytes(s, len, 0), s, len);
    return slot->id_plus_one ? (int64_t)slot->id_plus_one - 1 : -1;
}

int64_t fl_strtab_intern(struct fl_strtab *t, const char *s, size_t len)
{
    uint64_t hash = fl_hash_bytes(s, len, 0);
    struct fl_strtab_slot *slot;
    char *copy;
    int rc;

    if ((t->count + 1) * 2 > t->cap && (rc = strtab_grow(t)) != 0)
        return rc;
    slot = strtab_find(t, hash, s, len);
    if (slot->id_plus_one != 0)
        return slot->id_plus_one - 1;
    if (t->count >= UINT32_MAX - 1)
        return -ENOMEM;
    rc = fl_vec_reserve((void **)&t->strings, &t->strings_cap, t->count + 1,
                        sizeof(*t->strings), t->budget);
    if (rc != 0)
        return rc;
    copy = fl_arena_strndup(&t->arena, s, len);
    if (copy == NULL)
        return t->arena.error;
    t->strings[t->count].ptr = copy;
    t->strings[t->count].len = len;
    slot->hash = hash;
    slot->id_plus_one = (uint32_t)(t->count + 1);
    return (int64_t)t->count++;
}
