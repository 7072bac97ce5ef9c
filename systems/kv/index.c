/*
 * Chained hash table for the engine's keys.
 */
#include "index.h"

#include "hash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kv_index_init(struct kv_index *x)
{
    memset(x, 0, sizeof(*x));
    x->nbuckets = 1024;
    x->buckets = calloc(x->nbuckets, sizeof(*x->buckets));
    return x->buckets ? 0 : -ENOMEM;
}

void kv_index_destroy(struct kv_index *x)
{
    for (size_t i = 0; i < x->nbuckets; i++) {
        struct kv_entry *e = x->buckets[i];
        while (e != NULL) {
            struct kv_entry *next = e->next;
            free(e->value);
            free(e);
            e = next;
        }
    }
    free(x->buckets);
    memset(x, 0, sizeof(*x));
}

static uint64_t key_hash(const void *key, size_t klen)
{
    return fl_hash_bytes(key, klen, 0x6b76);
}

struct kv_entry *kv_index_find(const struct kv_index *x, const void *key,
                               size_t klen)
{
    uint64_t h = key_hash(key, klen);
    struct kv_entry *e = x->buckets[h & (x->nbuckets - 1)];

    for (; e != NULL; e = e->next) {
        if (e->hash == h && e->klen == klen &&
            (klen == 0 || memcmp(e->key, key, klen) == 0))
            return e;
    }
    return NULL;
}

void kv_index_prefetch(const struct kv_index *x, const struct fl_str *keys,
                       size_t n)
{
    uint64_t hashes[KV_INDEX_PREFETCH_MAX];
    size_t mask = x->nbuckets - 1;

    if (n > KV_INDEX_PREFETCH_MAX)
        n = KV_INDEX_PREFETCH_MAX;
    /* Three rounds, each loading what the previous one prefetched, so the
     * misses of all n keys are in flight together. */
    for (size_t i = 0; i < n; i++) {
        hashes[i] = key_hash(keys[i].ptr, keys[i].len);
        __builtin_prefetch(&x->buckets[hashes[i] & mask]);
    }
    for (size_t i = 0; i < n; i++) {
        const struct kv_entry *e = x->buckets[hashes[i] & mask];
        if (e != NULL)
            __builtin_prefetch(e);
    }
    for (size_t i = 0; i < n; i++) {
        const struct kv_entry *e = x->buckets[hashes[i] & mask];
        if (e != NULL && e->hash == hashes[i] && e->value != NULL)
            __builtin_prefetch(e->value);
    }
}

/* Doubles the bucket array; on failure the table just stays denser. */
static void grow(struct kv_index *x)
{
    size_t n = x->nbuckets * 2;
    struct kv_entry **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return;
    for (size_t i = 0; i < x->nbuckets; i++) {
        struct kv_entry *e = x->buckets[i];
        while (e != NULL) {
            struct kv_entry *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(x->buckets);
    x->buckets = b;
    x->nbuckets = n;
}

/* Returns key's entry, creating a tombstone for it when absent. */
static struct kv_entry *find_or_add(struct kv_index *x, const void *key,
                                    size_t klen)
{
    struct kv_entry *e = kv_index_find(x, key, klen);
    size_t slot;

    if (e != NULL)
        return e;
    e = malloc(sizeof(*e) + klen);
    if (e == NULL)
        return NULL;
    e->hash = key_hash(key, klen);
    e->seq = 0;
    e->tombstone = true;
    e->klen = klen;
    e->vlen = 0;
    e->vcap = 0;
    e->value = NULL;
    if (klen > 0)
        memcpy(e->key, key, klen);
    slot = e->hash & (x->nbuckets - 1);
    e->next = x->buckets[slot];
    x->buckets[slot] = e;
    x->entries++;
    if (x->entries > x->nbuckets)
        grow(x);
    return e;
}

int kv_index_put(struct kv_index *x, const void *key, size_t klen,
                 const void *value, size_t vlen, uint64_t seq)
{
    struct kv_entry *e = find_or_add(x, key, klen);

    if (e == NULL)
        return -ENOMEM;
    /* Reuse the value's buffer when the new value fits and does not waste
     * more than half of it; overwriting a key is the common case. */
    if (e->value == NULL || vlen > e->vcap || vlen < e->vcap / 2) {
        char *copy = malloc(vlen > 0 ? vlen : 1);
        if (copy == NULL)
            return -ENOMEM;
        free(e->value);
        e->value = copy;
        e->vcap = vlen > 0 ? vlen : 1;
    }
    if (vlen > 0)
        memmove(e->value, value, vlen);
    if (e->tombstone) {
        x->live++;
        x->bytes += klen;
    } else {
        x->bytes -= e->vlen;
    }
    e->vlen = vlen;
    e->tombstone = false;
    e->seq = seq;
    x->bytes += vlen;
    return 0;
}

int kv_index_delete(struct kv_index *x, const void *key, size_t klen,
                    uint64_t seq)
{
    struct kv_entry *e = find_or_add(x, key, klen);

    if (e == NULL)
        return -ENOMEM;
    if (!e->tombstone) {
        x->live--;
        x->bytes -= e->klen + e->vlen;
        free(e->value);
        e->value = NULL;
        e->vlen = 0;
        e->vcap = 0;
        e->tombstone = true;
    }
    e->seq = seq;
    return 0;
}

void kv_index_purge(struct kv_index *x, uint64_t durable)
{
    for (size_t i = 0; i < x->nbuckets; i++) {
        struct kv_entry **link = &x->buckets[i];
        while (*link != NULL) {
            struct kv_entry *e = *link;
            if (e->tombstone && e->seq <= durable) {
                *link = e->next;
                free(e);
                x->entries--;
            } else {
                link = &e->next;
            }
        }
    }
}

int kv_index_each(const struct kv_index *x,
                  int (*each)(void *arg, const struct kv_entry *e), void *arg)
{
    for (size_t i = 0; i < x->nbuckets; i++) {
        for (const struct kv_entry *e = x->buckets[i]; e != NULL; e = e->next) {
            if (e->tombstone)
                continue;
            int rc = each(arg, e);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}
