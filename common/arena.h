/*
 * Bump allocation in chunks, freed all at once, with optional accounting
 * against a shared memory budget.
 *
 * Checkers allocate many small objects whose lifetimes end together; an
 * arena makes those allocations a pointer bump and lets a memory limit be
 * enforced by refusing the next chunk instead of by the kernel's OOM killer.
 */
#ifndef FL_ARENA_H
#define FL_ARENA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Bytes charged by every arena and vector that shares this budget, from any
 * thread. limit 0 means unlimited.
 */
struct fl_budget {
    _Atomic int64_t used;
    int64_t limit;
};

void fl_budget_init(struct fl_budget *b, int64_t limit_bytes);

/*
 * Charges n bytes; returns 0, or FL_EBUDGET (nothing charged) past limit or
 * when n exceeds INT64_MAX.
 */
int fl_budget_charge(struct fl_budget *b, size_t n);

void fl_budget_release(struct fl_budget *b, size_t n);

struct fl_arena_chunk;

struct fl_arena {
    struct fl_arena_chunk *chunks; /* newest first */
    char *cur;
    char *end;
    size_t chunk_size;
    size_t allocated; /* bytes obtained from malloc, charged to budget */
    struct fl_budget *budget; /* borrowed; may be NULL */
    int error; /* why the last failed allocation failed: -ENOMEM, FL_EBUDGET */
};

/* Initializes an empty arena; chunk_size 0 picks 64 KiB. budget may be NULL. */
void fl_arena_init(struct fl_arena *a, size_t chunk_size,
                   struct fl_budget *budget);

/*
 * Returns size bytes aligned to 16, valid until reset or destroy, or NULL
 * when malloc fails or the budget is exhausted.
 */
void *fl_arena_alloc(struct fl_arena *a, size_t size);

/* Copies len bytes into the arena and NUL-terminates the copy. */
char *fl_arena_strndup(struct fl_arena *a, const char *s, size_t len);

/* Frees every chunk but the newest, which is kept for reuse. */
void fl_arena_reset(struct fl_arena *a);

void fl_arena_destroy(struct fl_arena *a);

/*
 * Grows *items so it holds at least `need` elements of elem_size bytes,
 * doubling the capacity. Charges growth to budget when it is not NULL.
 * Returns 0, -ENOMEM or FL_EBUDGET; on failure *items is unchanged.
 */
int fl_vec_reserve(void **items, size_t *cap, size_t need, size_t elem_size,
                   struct fl_budget *budget);

/* Frees a vector grown by fl_vec_reserve and releases its charge. */
void fl_vec_free(void **items, size_t *cap, size_t elem_size,
                 struct fl_budget *budget);

#endif
