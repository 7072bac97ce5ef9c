/*
 * The engine's in-memory index: byte-string keys to byte-string values, in
 * a chained hash table that doubles as it grows.
 *
 * Each entry remembers the sequence number of the record that last changed
 * it, so a reader can wait until that record is durable before it returns
 * the value. A deleted key stays as a tombstone with the delete's sequence
 * number until that is durable, for the same reason.
 */
#ifndef KV_INDEX_H
#define KV_INDEX_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv_entry {
    struct kv_entry *next; /* bucket chain */
    uint64_t hash;
    uint64_t seq;   /* record that last changed this key */
    bool tombstone; /* deleted; value is NULL */
    size_t klen;
    size_t vlen;
    size_t vcap; /* bytes allocated for value */
    char *value;
    char key[]; /* klen bytes, not terminated */
};

struct kv_index {
    struct kv_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t entries;  /* including tombstones */
    size_t live;     /* keys with a value */
    size_t bytes;    /* key and value bytes of live keys */
};

int kv_index_init(struct kv_index *x);
void kv_index_destroy(struct kv_index *x);

/* Returns the entry for key, a tombstone included, or NULL. */
struct kv_entry *kv_index_find(const struct kv_index *x, const void *key,
                               size_t klen);

/*
 * Sets key to a copy of value, changed by record seq. Returns 0 or -ENOMEM,
 * leaving the index unchanged on failure.
 */
int kv_index_put(struct kv_index *x, const void *key, size_t klen,
                 const void *value, size_t vlen, uint64_t seq);

/* Turns key into a tombstone of record seq. Returns 0 or -ENOMEM. */
int kv_index_delete(struct kv_index *x, const void *key, size_t klen,
                    uint64_t seq);

#define KV_INDEX_PREFETCH_MAX 16

/* Prefetches the memory that changing each of the n keys (at most
 * KV_INDEX_PREFETCH_MAX) will touch: its bucket, the first entry there and
 * that entry's value. A hint only; it changes nothing. */
void kv_index_prefetch(const struct kv_index *x, const struct fl_str *keys,
                       size_t n);

/* Frees tombstones whose delete (seq <= durable) can no longer be lost. */
void kv_index_purge(struct kv_index *x, uint64_t durable);

/* Calls each(arg, entry) for every live key; stops at a nonzero return. */
int kv_index_each(const struct kv_index *x,
                  int (*each)(void *arg, const struct kv_entry *e), void *arg);

#endif
