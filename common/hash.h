/*
 * Hashing and two small hash tables used across modules: a map from 64-bit
 * keys to 64-bit values, and a string table that interns strings as dense
 * 32-bit ids. Both use open addressing with linear probing.
 */
#ifndef FL_HASH_H
#define FL_HASH_H

#include "arena.h"
#include "buf.h"

#include <stddef.h>
#include <stdint.h>

/* Returns a 64-bit hash of len bytes; not for adversarial or crypto use. */
uint64_t fl_hash_bytes(const void *data, size_t len, uint64_t seed);

/* Mixes a 64-bit integer into a well-spread 64-bit hash. */
static inline uint64_t fl_hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

struct fl_map64_slot;

/* uint64 -> uint64 map. */
struct fl_map64 {
    struct fl_map64_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
    struct fl_budget *budget; /* borrowed; may be NULL */
};

void fl_map64_init(struct fl_map64 *m, struct fl_budget *budget);
void fl_map64_destroy(struct fl_map64 *m);

/* Returns a pointer to key's value, or NULL when absent. */
uint64_t *fl_map64_get(const struct fl_map64 *m, uint64_t key);

/*
 * Returns a pointer to key's value, inserting it with value 0 when absent
 * (*inserted tells which). Returns NULL on allocation or budget failure.
 * The pointer is valid until the next insertion.
 */
uint64_t *fl_map64_put(struct fl_map64 *m, uint64_t key, int *inserted);

struct fl_strtab_slot;

/* Interns byte strings as ids 0, 1, 2, ... in insertion order. */
struct fl_strtab {
    struct fl_strtab_slot *slots;
    size_t cap;
    struct fl_str *strings; /* by id; each NUL-terminated in arena */
    size_t count;
    size_t strings_cap;
    struct fl_arena arena;
    struct fl_budget *budget;
};

void fl_strtab_init(struct fl_strtab *t, struct fl_budget *budget);
void fl_strtab_destroy(struct fl_strtab *t);

/*
 * Returns the id of s, adding a copy when it is new, or a negative error
 * (-ENOMEM, FL_EBUDGET).
 */
int64_t fl_strtab_intern(struct fl_strtab *t, const char *s, size_t len);

/* Returns the id of s, or -1 when it was never interned. */
int64_t fl_strtab_find(const struct fl_strtab *t, const char *s, size_t len);

static inline struct fl_str fl_strtab_get(const struct fl_strtab *t,
                                          uint32_t id)
{
    return t->strings[id];
}

#endif
