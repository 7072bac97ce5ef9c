/*
 * The engine: operations on the index, their log records, the sync thread
 * that makes records durable in groups, the snapshot thread, manual mode
 * (the same work in the caller's thread), recovery, sticky failure, and
 * the export and import of the whole state. See engine.h.
 *
 * Lock order: e->lock protects the index, the log and every counter; the
 * sync and snapshot threads take it only to pick up or publish work, and
 * run fdatasync and snapshot writing without it. kv_import keeps it for
 * the whole import.
 */
#include "engine.h"

#include "clock.h"
#include "error.h"
#include "index.h"
#include "log.h"
#include "record.h"
#include "snapshot.h"
#include "wal.h"
#include "watermark.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* How often at most the sync thread updates the watermark file. */
#define MARK_INTERVAL_NS 1000000000LL

struct kv_engine {
    struct kv_options opts;
    const struct kv_vfs *vfs;
    char dir[3072];
    int lock_fd; /* flock on dir/LOCK, real file systems only */

    pthread_mutex_t lock;
    pthread_cond_t work;      /* the sync thread has records to sync */
    pthread_cond_t synced;    /* durable_seq advanced or the engine failed */
    pthread_cond_t snap_cv;   /* the snapshot thread has work */
    pthread_cond_t snap_done; /* a snapshot finished writing */

    struct kv_index index;
    struct kv_wal wal;
    /* The durable watermark: the sync thread's, or in manual mode written
     * under the lock. */
    struct kv_mark mark;
    int64_t mark_written_ns; /* when the sync thread last updated it */
    struct fl_buf record;    /* records not yet written (deferred_writes) */
    struct fl_buf payload;   /* encoding scratch */

    uint64_t last_seq;
    _Atomic uint64_t durable_seq; /* reported durable to callers */
    uint64_t synced_seq; /* covered by an fdatasync; the sync thread's own */
    uint64_t last_applied;
    uint64_t since_snapshot; /* records since the last snapshot */
    uint64_t snapshot_seq;
    uint64_t snapshots;
    uint64_t syncs;
    uint64_t recovered;
    bool snapshot_wanted;
    bool syncing; /* a sync round is running */
    bool snapshot_running;

    _Atomic int failed; /* 0, or the error that made the engine fail */
    char error[512];

    bool stopping;
    pthread_t syncer;
    bool syncer_started;
    pthread_t snapper;
    bool snapper_started;
    int notify_fd;
};

/* ---- options ----------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} bugs[] = {
    {"ack-before-fsync", KV_BUG_ACK_BEFORE_FSYNC},
    {"skip-dir-fsync", KV_BUG_SKIP_DIR_FSYNC},
    {"ignore-crc", KV_BUG_IGNORE_CRC},
    {"truncate-on-corruption", KV_BUG_TRUNCATE_ON_CORRUPTION},
};

void kv_options_default(struct kv_options *o)
{
    memset(o, 0, sizeof(*o));
    o->sync = KV_SYNC_ALWAYS;
}

int kv_sync_parse(const char *text, enum kv_sync *sync, unsigned *batch_ms)
{
    char *end;
    unsigned long ms;

    if (strcmp(text, "always") == 0) {
        *sync = KV_SYNC_ALWAYS;
        *batch_ms = 0;
        return 0;
    }
    if (strcmp(text, "none") == 0) {
        *sync = KV_SYNC_NONE;
        *batch_ms = 0;
        return 0;
    }
    if (strncmp(text, "batch:", 6) != 0 || text[6] < '0' || text[6] > '9')
        return FL_EINPUT;
    errno = 0;
    ms = strtoul(text + 6, &end, 10);
    if (errno != 0 || *end != '\0' || ms < 1 || ms > 10000)
        return FL_EINPUT;
    *sync = KV_SYNC_BATCH;
    *batch_ms = (unsigned)ms;
    return 0;
}

int kv_bug_parse(const char *name, unsigned *bit)
{
    for (size_t i = 0; i < sizeof(bugs) / sizeof(bugs[0]); i++) {
        if (strcmp(name, bugs[i].name) == 0) {
            *bit = bugs[i].bit;
            return 0;
        }
    }
    return FL_EINPUT;
}

const char *kv_bug_names(void)
{
    return "ack-before-fsync, skip-dir-fsync, ignore-crc, "
           "truncate-on-corruption";
}

/* ---- failure ----------------------------------------------------------- */

/* Makes the eventfd of kv_notify_fd readable. */
static void notify(struct kv_engine *e)
{
    if (e->notify_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(e->notify_fd, &one, sizeof(one));
        (void)w;
    }
}

/* Makes the engine fail with rc (called with the lock held). Only the first
 * failure is kept: it is the cause, later ones are consequences. */
static int fail_locked(struct kv_engine *e, int rc, const char *what)
{
    if (atomic_load(&e->failed) == 0) {
        snprintf(e->error, sizeof(e->error),
                 "%s; the engine rejects operations until it is reopened",
                 what);
        atomic_store(&e->failed, rc);
        FL_LOG_ERRORF("kv", "engine failed", "dir=%s error=\"%s\"", e->dir,
                      what);
        pthread_cond_broadcast(&e->synced);
        notify(e);
    }
    return FL_ESTICKY;
}

/* ---- applying records -------------------------------------------------- */

/* Payloads: PUT = key length (4), key, value; DELETE = key; BATCH = index
 * (8), count (4), then per effect: type (1), key length (4), key, and for
 * a put, value length (4) and value. */

static int apply_put(struct kv_engine *e, const unsigned char *p, size_t len,
                     uint64_t seq)
{
    uint32_t klen;

    if (len < 4)
        return FL_ECORRUPT;
    klen = kv_get_u32(p);
    if (klen > len - 4)
        return FL_ECORRUPT;
    return kv_index_put(&e->index, p + 4, klen, p + 4 + klen, len - 4 - klen,
                        seq);
}

static int apply_batch(struct kv_engine *e, const unsigned char *p, size_t len,
                       uint64_t seq)
{
    size_t off = 12;
    uint32_t count;

    if (len < 12)
        return FL_ECORRUPT;
    count = kv_get_u32(p + 8);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t klen;
        uint32_t vlen = 0;
        const unsigned char *key;
        int rc;
        if (len - off < 5)
            return FL_ECORRUPT;
        unsigned char type = p[off];
        klen = kv_get_u32(p + off + 1);
        off += 5;
        if (klen > len - off)
            return FL_ECORRUPT;
        key = p + off;
        off += klen;
        if (type == KV_REC_PUT) {
            if (len - off < 4)
                return FL_ECORRUPT;
            vlen = kv_get_u32(p + off);
            off += 4;
            if (vlen > len - off)
                return FL_ECORRUPT;
            rc = kv_index_put(&e->index, key, klen, p + off, vlen, seq);
            off += vlen;
        } else if (type == KV_REC_DELETE) {
            rc = kv_index_delete(&e->index, key, klen, seq);
        } else {
            return FL_ECORRUPT;
        }
        if (rc != 0)
            return rc;
    }
    if (off != len)
        return FL_ECORRUPT;
    e->last_applied = kv_get_u64(p);
    return 0;
}

static int replay(void *arg, const struct kv_rec *rec)
{
    struct kv_engine *e = arg;

    e->recovered++;
    switch (rec->type) {
    case KV_REC_PUT:
        return apply_put(e, rec->payload, rec->len, rec->seq);
    case KV_REC_DELETE:
        return kv_index_delete(&e->index, rec->payload, rec->len, rec->seq);
    case KV_REC_BATCH:
        return apply_batch(e, rec->payload, rec->len, rec->seq);
    }
    return FL_ECORRUPT;
}

/* Hands the keys of a group of records about to be replayed to the index's
 * prefetch. */
static void replay_prefetch(void *arg, const struct kv_rec *recs, size_t n)
{
    struct kv_engine *e = arg;
    struct fl_str keys[KV_INDEX_PREFETCH_MAX];
    size_t nkeys = 0;

    for (size_t i = 0; i < n && nkeys < KV_INDEX_PREFETCH_MAX; i++) {
        const struct kv_rec *rec = &recs[i];
        if (rec->type == KV_REC_PUT && rec->len >= 4) {
            uint32_t klen = kv_get_u32(rec->payload);
            if (klen <= rec->len - 4)
                keys[nkeys++] =
                    (struct fl_str){(const char *)rec->payload + 4, klen};
        } else if (rec->type == KV_REC_DELETE) {
            keys[nkeys++] =
                (struct fl_str){(const char *)rec->payload, rec->len};
        }
    }
    kv_index_prefetch(&e->index, keys, nkeys);
}

/* ---- writing records --------------------------------------------------- */

/* Checks that the engine can take an operation; called with the lock. */
static int usable(struct kv_engine *e)
{
    return atomic_load(&e->failed) != 0 ? FL_ESTICKY : 0;
}

/* Writes the records kept in e->record to the log and, with wake, hands
 * them to the sync thread. Called with the lock held; returns 0 or
 * FL_ESTICKY. */
static int flush_locked(struct kv_engine *e, bool wake)
{
    char err[512];
    int rc;

    if (e->record.len == 0)
        return usable(e);
    if (e->record.failed) {
        fail_locked(e, -ENOMEM, "out of memory encoding log records");
        return FL_ESTICKY;
    }
    rc = kv_wal_append(&e->wal, e->record.data, e->record.len, e->last_seq, err,
                       sizeof(err));
    fl_buf_clear(&e->record);
    if (rc != 0)
        return fail_locked(e, rc, err);
    if (e->opts.sync == KV_SYNC_NONE ||
        (e->opts.bugs & KV_BUG_ACK_BEFORE_FSYNC)) {
        /* Reported as durable before any fdatasync: unsafe by design in
         * "none", and the planted bug otherwise. */
        atomic_store(&e->durable_seq, e->last_seq);
        pthread_cond_broadcast(&e->synced);
        notify(e);
    }
    if (e->opts.sync != KV_SYNC_NONE) {
        if (wake)
            pthread_cond_signal(&e->work);
    } else {
        /* No sync thread runs in "none", so nothing else can be using the
         * sealed segments' descriptors. */
        for (size_t i = 0; i < e->wal.nretired; i++)
            e->vfs->close(e->vfs->ctx, e->wal.retired[i]);
        e->wal.nretired = 0;
    }
    return 0;
}

/* Logs one record of type with the payload built in e->payload, as the
 * next sequence number, writing it at once unless writes are deferred.
 * Called with the lock held; returns the sequence number or 0 after making
 * the engine fail. */
static uint64_t log_record(struct kv_engine *e, enum kv_rec_type type)
{
    uint64_t seq = e->last_seq + 1;

    kv_rec_encode(&e->record, type, seq, e->payload.data, e->payload.len);
    if (e->record.failed || e->payload.failed) {
        fail_locked(e, -ENOMEM, "out of memory encoding a log record");
        return 0;
    }
    e->last_seq = seq;
    e->since_snapshot++;
    if (!e->opts.deferred_writes || e->record.len >= (1u << 20)) {
        if (flush_locked(e, true) != 0)
            return 0;
    }
    if (e->opts.snapshot_every != 0 &&
        e->since_snapshot >= e->opts.snapshot_every && !e->snapshot_running) {
        e->snapshot_wanted = true;
        pthread_cond_signal(&e->snap_cv);
    }
    return seq;
}

static void payload_key(struct kv_engine *e, struct fl_str key)
{
    unsigned char len[4];

    kv_put_u32(len, (uint32_t)key.len);
    fl_buf_add(&e->payload, len, sizeof(len));
    fl_buf_add(&e->payload, key.ptr, key.len);
}

static uint64_t entry_wait(const struct kv_entry *x)
{
    return x != NULL ? x->seq : 0;
}

int kv_get(struct kv_engine *e, struct fl_str key, struct fl_buf *value,
           bool *found, uint64_t *wait)
{
    struct kv_entry *x;
    int rc;

    fl_buf_clear(value);
    pthread_mutex_lock(&e->lock);
    rc = usable(e);
    if (rc == 0) {
        x = kv_index_find(&e->index, key.ptr, key.len);
        *found = x != NULL && !x->tombstone;
        if (*found)
            fl_buf_add(value, x->value, x->vlen);
        *wait = entry_wait(x);
        if (value->failed)
            rc = -ENOMEM;
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

/* Sets key to value as the next record; called with the lock held. */
static int put_locked(struct kv_engine *e, struct fl_str key,
                      struct fl_str value, uint64_t *wait)
{
    uint64_t seq;
    int rc;

    /* The index first: after a failed log write the engine fails, and a
     * reader of this key then waits for a record that never comes. */
    rc = kv_index_put(&e->index, key.ptr, key.len, value.ptr, value.len,
                      e->last_seq + 1);
    if (rc != 0)
        return rc;
    fl_buf_clear(&e->payload);
    payload_key(e, key);
    fl_buf_add(&e->payload, value.ptr, value.len);
    seq = log_record(e, KV_REC_PUT);
    *wait = seq;
    return seq ? 0 : FL_ESTICKY;
}

static bool fits(struct fl_str key, struct fl_str value)
{
    return key.len <= UINT32_MAX && value.len <= KV_REC_MAX_PAYLOAD - 4 &&
           key.len <= KV_REC_MAX_PAYLOAD - 4 - value.len;
}

int kv_put(struct kv_engine *e, struct fl_str key, struct fl_str value,
           uint64_t *wait)
{
    int rc;

    if (!fits(key, value))
        return FL_EINPUT;
    pthread_mutex_lock(&e->lock);
    rc = usable(e);
    if (rc == 0)
        rc = put_locked(e, key, value, wait);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int kv_delete(struct kv_engine *e, struct fl_str key, bool *existed,
              uint64_t *wait)
{
    struct kv_entry *x;
    uint64_t seq;
    int rc;

    if (key.len > KV_REC_MAX_PAYLOAD)
        return FL_EINPUT;
    pthread_mutex_lock(&e->lock);
    rc = usable(e);
    if (rc == 0) {
        x = kv_index_find(&e->index, key.ptr, key.len);
        *existed = x != NULL && !x->tombstone;
        *wait = entry_wait(x);
        if (*existed)
            rc = kv_index_delete(&e->index, key.ptr, key.len, e->last_seq + 1);
        if (*existed && rc == 0) {
            fl_buf_clear(&e->payload);
            fl_buf_add(&e->payload, key.ptr, key.len);
            seq = log_record(e, KV_REC_DELETE);
            rc = seq ? 0 : FL_ESTICKY;
            *wait = seq;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

static bool value_is(const struct kv_entry *x, struct fl_str v)
{
    return x != NULL && !x->tombstone && x->vlen == v.len &&
           (v.len == 0 || memcmp(x->value, v.ptr, v.len) == 0);
}

int kv_cas(struct kv_engine *e, struct fl_str key, struct fl_str expected,
           struct fl_str value, bool *swapped, uint64_t *wait)
{
    struct kv_entry *x;
    int rc;

    if (!fits(key, value))
        return FL_EINPUT;
    pthread_mutex_lock(&e->lock);
    rc = usable(e);
    if (rc == 0) {
        x = kv_index_find(&e->index, key.ptr, key.len);
        *swapped = value_is(x, expected);
        *wait = entry_wait(x);
        if (*swapped)
            rc = put_locked(e, key, value, wait);
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

/* Evaluates op against the index as it is now, appending its effect (if
 * any) to e->payload; called with the lock held. */
static int batch_op(struct kv_engine *e, struct kv_op *op, uint64_t seq,
                    uint32_t *effects)
{
    struct kv_entry *x = kv_index_find(&e->index, op->key.ptr, op->key.len);
    unsigned char len[4];
    bool put;
    int rc;

    switch (op->type) {
    case KV_OP_PUT:
        op->done = true;
        put = true;
        break;
    case KV_OP_CAS:
        op->done = value_is(x, op->expected);
        put = true;
        if (!op->done)
            return 0;
        break;
    case KV_OP_DELETE:
        op->done = x != NULL && !x->tombstone;
        if (!op->done)
            return 0;
        put = false;
        break;
    default:
        return FL_EINPUT;
    }
    fl_buf_addc(&e->payload, put ? KV_REC_PUT : KV_REC_DELETE);
    payload_key(e, op->key);
    if (put) {
        kv_put_u32(len, (uint32_t)op->value.len);
        fl_buf_add(&e->payload, len, sizeof(len));
        fl_buf_add(&e->payload, op->value.ptr, op->value.len);
        rc = kv_index_put(&e->index, op->key.ptr, op->key.len, op->value.ptr,
                          op->value.len, seq);
    } else {
        rc = kv_index_delete(&e->index, op->key.ptr, op->key.len, seq);
    }
    (*effects)++;
    return rc;
}

int kv_apply(struct kv_engine *e, uint64_t index, struct kv_op *ops, size_t n,
             bool *skipped, uint64_t *wait)
{
    unsigned char head[12] = {0};
    uint32_t effects = 0;
    uint64_t seq;
    int rc;

    for (size_t i = 0; i < n; i++) {
        if (!fits(ops[i].key, ops[i].value))
            return FL_EINPUT;
    }
    pthread_mutex_lock(&e->lock);
    rc = usable(e);
    *skipped = rc == 0 && index <= e->last_applied;
    *wait = 0;
    if (rc != 0 || *skipped) {
        pthread_mutex_unlock(&e->lock);
        return rc;
    }
    seq = e->last_seq + 1;
    fl_buf_clear(&e->payload);
    fl_buf_add(&e->payload, head, sizeof(head));
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = batch_op(e, &ops[i], seq, &effects);
    if (rc == 0 && !e->payload.failed) {
        /* Even a batch with no effect is logged: its index must survive. */
        kv_put_u64((unsigned char *)e->payload.data, index);
        kv_put_u32((unsigned char *)e->payload.data + 8, effects);
        e->last_applied = index;
        seq = log_record(e, KV_REC_BATCH);
        rc = seq ? 0 : FL_ESTICKY;
        *wait = seq;
    } else if (rc == 0) {
        rc = -ENOMEM;
    }
    if (rc != 0 && rc != FL_ESTICKY) {
        /* Some ops already changed the index: nothing consistent is left
         * to serve, so the engine fails. */
        fail_locked(e, rc, "applying a batch failed part way");
        rc = FL_ESTICKY;
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

/* ---- durability -------------------------------------------------------- */

static int manual_sync(struct kv_engine *e);
static int manual_wait(struct kv_engine *e, uint64_t seq);

int kv_flush(struct kv_engine *e)
{
    int rc;

    pthread_mutex_lock(&e->lock);
    rc = flush_locked(e, true);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int kv_wait(struct kv_engine *e, uint64_t seq)
{
    int rc = 0;

    if (e->opts.manual)
        return manual_wait(e, seq);
    pthread_mutex_lock(&e->lock);
    if (e->wal.last_seq < seq)
        flush_locked(e,
                     true); /* a deferred record would never become durable */
    while (atomic_load(&e->durable_seq) < seq && atomic_load(&e->failed) == 0)
        pthread_cond_wait(&e->synced, &e->lock);
    if (atomic_load(&e->durable_seq) < seq)
        rc = FL_ESTICKY;
    pthread_mutex_unlock(&e->lock);
    return rc;
}

uint64_t kv_durable(struct kv_engine *e)
{
    return atomic_load(&e->durable_seq);
}

int kv_notify_fd(const struct kv_engine *e)
{
    return e->notify_fd;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Checks whether written records or sealed descriptors wait for a sync
 * round; called with the lock held. */
static bool sync_wanted(const struct kv_engine *e)
{
    return e->wal.nretired != 0 || e->wal.last_seq != e->synced_seq;
}

/*
 * Runs one sync round; called with the lock held, and returns with it held.
 * It takes the newest sequence number written and fdatasyncs the current
 * segment (sealed ones were synced when they were sealed). It does so
 * without the lock, so writers keep appending and their records join the
 * next round. Then it publishes the new durable point. Only one round runs
 * at a time. Returns 0 or FL_ESTICKY.
 */
static int sync_round(struct kv_engine *e)
{
    /* Only what reached the file: deferred records wait for kv_flush. */
    uint64_t target = e->wal.last_seq;
    int fd = e->wal.fd;
    /* Take the sealed segments' descriptors. No other round runs, so no
     * fdatasync on them is in progress and they can be closed. */
    int *retired = e->wal.retired;
    size_t nretired = e->wal.nretired;

    e->wal.retired = NULL;
    e->wal.nretired = 0;
    e->wal.retired_cap = 0;
    e->syncing = true;
    pthread_mutex_unlock(&e->lock);

    for (size_t i = 0; i < nretired; i++)
        e->vfs->close(e->vfs->ctx, retired[i]);
    free(retired);
    int rc = e->vfs->fdatasync(e->vfs->ctx, fd);

    pthread_mutex_lock(&e->lock);
    e->syncing = false;
    if (rc != 0) {
        char what[256];
        snprintf(what, sizeof(what), "fdatasync of the log failed: %s",
                 fl_strerror(rc));
        return fail_locked(e, rc, what);
    }
    e->syncs++;
    /* kv_import may have moved the synced point past target meanwhile. */
    if (target > e->synced_seq)
        e->synced_seq = target;
    if (target > atomic_load(&e->durable_seq))
        atomic_store(&e->durable_seq, target);
    if (e->index.entries - e->index.live > e->index.live / 2 + 4096)
        kv_index_purge(&e->index, target);
    pthread_cond_broadcast(&e->synced);
    /* Records written during the round need another one. */
    if (sync_wanted(e))
        pthread_cond_signal(&e->work);
    return 0;
}

/* Makes the engine fail after a failed update of the watermark file; called
 * with the lock held. Returns FL_ESTICKY. */
static int mark_failed(struct kv_engine *e, int rc)
{
    char what[256];

    snprintf(what, sizeof(what), "update of the watermark file failed: %s",
             fl_strerror(rc));
    return fail_locked(e, rc, what);
}

/* Stores the synced point in the watermark file when it moved and a second
 * has passed since the last update. The sync thread calls it with the lock
 * held. Returns 0 or FL_ESTICKY. */
static int update_mark(struct kv_engine *e)
{
    int64_t now = fl_clock_now_ns();
    uint64_t seq = e->synced_seq;
    int rc;

    if (seq <= e->mark.seq || now - e->mark_written_ns < MARK_INTERVAL_NS)
        return 0;
    pthread_mutex_unlock(&e->lock);
    rc = kv_mark_write(&e->mark, seq);
    pthread_mutex_lock(&e->lock);
    e->mark_written_ns = now;
    return rc != 0 ? mark_failed(e, rc) : 0;
}

/* Waits on the work condition for at most the watermark interval. */
static void wait_work(struct kv_engine *e)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += MARK_INTERVAL_NS / 1000000000LL;
    pthread_cond_timedwait(&e->work, &e->lock, &ts);
}

/* The sync thread: runs sync rounds whenever records are written past the
 * synced point and no caller is running one through kv_sync, and keeps the
 * watermark file about a second behind the synced point. */
static void *sync_main(void *arg)
{
    struct kv_engine *e = arg;

    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->stopping && atomic_load(&e->failed) == 0 &&
               (e->syncing || !sync_wanted(e))) {
            if (update_mark(e) != 0)
                break;
            wait_work(e);
        }
        if (atomic_load(&e->failed) != 0 || (e->stopping && !sync_wanted(e)))
            break;
        if (e->syncing)
            continue; /* stopping while kv_sync runs a round: wait for it */
        if (e->opts.sync == KV_SYNC_BATCH && !e->stopping) {
            pthread_mutex_unlock(&e->lock);
            sleep_ms(e->opts.batch_ms);
            pthread_mutex_lock(&e->lock);
            if (e->syncing)
                continue;
        }
        if (sync_round(e) != 0)
            break;
        notify(e);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

int kv_sync(struct kv_engine *e)
{
    /* Under "always" the caller syncs, unless a round is running already,
     * and then the sync thread takes these records in its next round. The
     * planted ack-before-fsync bug leaves the round to the thread, so the
     * caller can send replies before the fdatasync. */
    bool here = e->opts.sync == KV_SYNC_ALWAYS &&
                !(e->opts.bugs & KV_BUG_ACK_BEFORE_FSYNC);
    int rc;

    if (e->opts.manual)
        return manual_sync(e);
    pthread_mutex_lock(&e->lock);
    rc = flush_locked(e, !here);
    if (rc == 0 && here && !e->syncing && sync_wanted(e))
        rc = sync_round(e);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

/* ---- snapshots --------------------------------------------------------- */

/*
 * Captures the index under the lock, starts a new log segment so every
 * older one is covered, writes the snapshot without the lock, then deletes
 * the covered segments and older snapshots.
 */
static int take_snapshot(struct kv_engine *e)
{
    struct fl_buf body;
    uint64_t seq;
    uint64_t applied;
    uint64_t count = 0;
    char err[512];
    int rc;

    fl_buf_init(&body);
    pthread_mutex_lock(&e->lock);
    rc = usable(e);
    seq = e->last_seq;
    applied = e->last_applied;
    if (rc == 0 && (seq == e->snapshot_seq || e->snapshot_running)) {
        pthread_mutex_unlock(&e->lock);
        return 0; /* nothing new, or another snapshot is being written */
    }
    if (rc == 0)
        rc = flush_locked(e, true);
    if (rc == 0)
        rc = kv_snap_serialize(&e->index, &body, &count);
    if (rc == 0 && (rc = kv_wal_roll(&e->wal, seq + 1, err, sizeof(err))) != 0)
        rc = fail_locked(e, rc, err);
    if (rc == 0) {
        e->snapshot_running = true;
        e->since_snapshot = 0;
    }
    pthread_mutex_unlock(&e->lock);
    if (rc != 0) {
        fl_buf_free(&body);
        return rc == -ENOMEM ? rc : FL_ESTICKY;
    }

    rc = kv_snap_write(e->vfs, e->dir,
                       (e->opts.bugs & KV_BUG_SKIP_DIR_FSYNC) != 0, seq,
                       applied, &body, count, err, sizeof(err));
    fl_buf_free(&body);

    pthread_mutex_lock(&e->lock);
    if (rc == 0)
        rc = kv_wal_drop_before(&e->wal, seq + 1, err, sizeof(err));
    if (rc == 0)
        rc = kv_snap_drop_older(e->vfs, e->dir, seq, err, sizeof(err));
    if (rc != 0) {
        rc = fail_locked(e, rc, err);
    } else {
        e->snapshot_seq = seq;
        e->snapshots++;
        FL_LOG_INFOF("kv", "wrote snapshot",
                     "dir=%s seq=%" PRIu64 " keys=%" PRIu64, e->dir, seq,
                     count);
    }
    e->snapshot_running = false;
    pthread_cond_broadcast(&e->snap_done);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int kv_snapshot(struct kv_engine *e)
{
    return take_snapshot(e);
}

static void *snap_main(void *arg)
{
    struct kv_engine *e = arg;

    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->stopping && !e->snapshot_wanted)
            pthread_cond_wait(&e->snap_cv, &e->lock);
        if (e->stopping)
            break;
        e->snapshot_wanted = false;
        pthread_mutex_unlock(&e->lock);
        take_snapshot(e);
        pthread_mutex_lock(&e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---- manual mode ------------------------------------------------------- */

/*
 * With opts.manual no thread runs. kv_sync and kv_wait do the sync
 * thread's work in the caller and kv_sync also does the snapshot thread's,
 * so what reaches the disk depends only on the calls made, never on
 * timing or the clock.
 */

/*
 * Writes the deferred records and, unless the policy is "none", runs a sync
 * round when records wait for one, then stores the synced point in the
 * watermark file. Unlike the sync thread's updates, this one has no rate
 * limit, because the limit reads the clock. Called with the lock held;
 * returns 0 or FL_ESTICKY.
 */
static int manual_round_locked(struct kv_engine *e)
{
    int rc = flush_locked(e, false);

    if (rc != 0 || e->opts.sync == KV_SYNC_NONE)
        return rc;
    /* A round of a caller in another thread: let it finish, then sync
     * what it did not take. */
    while (e->syncing && atomic_load(&e->failed) == 0)
        pthread_cond_wait(&e->synced, &e->lock);
    rc = usable(e);
    if (rc == 0 && sync_wanted(e)) {
        rc = sync_round(e);
        if (rc == 0)
            notify(e);
    }
    if (rc == 0 && e->synced_seq > e->mark.seq) {
        /* Unlike update_mark, this keeps the lock, because callers in two
         * threads must not write the watermark file at once. */
        int mark_rc = kv_mark_write(&e->mark, e->synced_seq);
        if (mark_rc != 0)
            rc = mark_failed(e, mark_rc);
    }
    return rc;
}

/* kv_sync in manual mode: the round, then a snapshot once snapshot_every
 * records were logged since the last one. */
static int manual_sync(struct kv_engine *e)
{
    bool due;
    int rc;

    pthread_mutex_lock(&e->lock);
    rc = manual_round_locked(e);
    due = rc == 0 && e->opts.snapshot_every != 0 &&
          e->since_snapshot >= e->opts.snapshot_every;
    pthread_mutex_unlock(&e->lock);
    if (due)
        rc = take_snapshot(e);
    return rc;
}

/* kv_wait in manual mode: runs the round itself instead of waiting for a
 * thread that does not exist. */
static int manual_wait(struct kv_engine *e, uint64_t seq)
{
    int rc = 0;

    pthread_mutex_lock(&e->lock);
    if (atomic_load(&e->durable_seq) < seq) {
        rc = usable(e);
        /* No round can make a record durable that was never logged. */
        if (rc == 0 && seq > e->last_seq)
            rc = FL_EINPUT;
        if (rc == 0)
            rc = manual_round_locked(e);
        if (rc == 0 && atomic_load(&e->durable_seq) < seq)
            rc = FL_ESTICKY;
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

/* ---- export and import ------------------------------------------------- */

int kv_export(struct kv_engine *e, struct fl_buf *out, uint64_t *applied)
{
    int rc;

    pthread_mutex_lock(&e->lock);
    rc = usable(e);
    if (rc == 0)
        rc = kv_snap_export(&e->index, e->last_applied, out);
    if (rc == 0)
        *applied = e->last_applied;
    pthread_mutex_unlock(&e->lock);
    return rc;
}

/*
 * Makes body (count keys, caller index applied) the snapshot of every
 * record up to seq, which is e->last_seq, and drops the segments and
 * snapshots it replaces, in the order take_snapshot uses, so a crash
 * leaves either the old snapshot with its log or the new one. Called with
 * the lock held; returns 0, or FL_ESTICKY with the reason in err.
 */
static int write_import_locked(struct kv_engine *e, const struct fl_buf *body,
                               uint64_t count, uint64_t applied, uint64_t seq,
                               char *err, size_t errsize)
{
    bool skip_dir_fsync = (e->opts.bugs & KV_BUG_SKIP_DIR_FSYNC) != 0;
    int rc = flush_locked(e, true);

    if (rc != 0)
        return fl_errorf(err, errsize, rc, "%s", e->error);
    /* Records after seq go to a segment of their own, so recovery from the
     * new snapshot replays none of the old ones. After a snapshot at seq
     * with nothing logged since, that empty segment exists already. */
    if (e->wal.first_seq != seq + 1 || e->wal.end != KV_SEG_HEADER)
        rc = kv_wal_roll(&e->wal, seq + 1, err, errsize);
    if (rc == 0)
        rc = kv_snap_write(e->vfs, e->dir, skip_dir_fsync, seq, applied, body,
                           count, err, errsize);
    if (rc == 0)
        rc = kv_wal_drop_before(&e->wal, seq + 1, err, errsize);
    if (rc == 0)
        rc = kv_snap_drop_older(e->vfs, e->dir, seq, err, errsize);
    if (rc != 0)
        return fail_locked(e, rc, err);
    return 0;
}

int kv_import(struct kv_engine *e, const void *data, size_t len, char *err,
              size_t errsize)
{
    struct kv_index fresh;
    struct kv_index old;
    struct fl_buf body;
    uint64_t applied = 0;
    uint64_t count = 0;
    uint64_t seq;
    int rc = kv_index_init(&fresh);

    if (rc != 0)
        return fl_errorf(err, errsize, rc, "out of memory importing a state");
    fl_buf_init(&body);
    pthread_mutex_lock(&e->lock);
    /* A snapshot being written without the lock would otherwise finish
     * after the import and publish its older state. */
    while (e->snapshot_running)
        pthread_cond_wait(&e->snap_done, &e->lock);
    rc = usable(e);
    if (rc != 0) {
        snprintf(err, errsize, "%s", e->error);
        goto out;
    }

    /* Every record so far, the deferred ones included, has a sequence
     * number up to seq, so the snapshot at seq replaces them all, and the
     * imported keys count as changed by record seq. */
    seq = e->last_seq;
    rc = kv_snap_import(data, len, seq, &fresh, &applied, &count, err, errsize);
    if (rc == 0) {
        rc = kv_snap_serialize(&fresh, &body, &count);
        if (rc != 0 || body.failed)
            rc = fl_errorf(err, errsize, -ENOMEM,
                           "out of memory importing a state");
    }
    if (rc != 0)
        goto out; /* nothing changed yet */
    rc = write_import_locked(e, &body, count, applied, seq, err, errsize);
    if (rc != 0)
        goto out;

    old = e->index;
    e->index = fresh;
    fresh = old; /* destroyed below */
    e->last_applied = applied;
    e->snapshot_seq = seq;
    e->snapshots++;
    e->since_snapshot = 0;
    /* The new snapshot is durable and covers every record up to seq, so
     * all of them count as durable. */
    if (e->synced_seq < seq)
        e->synced_seq = seq;
    if (atomic_load(&e->durable_seq) < seq)
        atomic_store(&e->durable_seq, seq);
    pthread_cond_broadcast(&e->synced);
    notify(e);
    FL_LOG_INFOF("kv", "imported state",
                 "dir=%s seq=%" PRIu64 " applied=%" PRIu64 " keys=%" PRIu64,
                 e->dir, seq, applied, count);
out:
    pthread_mutex_unlock(&e->lock);
    fl_buf_free(&body);
    kv_index_destroy(&fresh);
    return rc;
}

/* ---- open and close ---------------------------------------------------- */

static int lock_dir(struct kv_engine *e, char *err, size_t errsize)
{
    char path[4096];

    e->lock_fd = -1;
    if (e->vfs != kv_vfs_posix())
        return 0; /* a simulated disk has no other process to fear */
    snprintf(path, sizeof(path), "%s/LOCK", e->dir);
    e->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (e->lock_fd < 0) {
        int rc = -errno;
        snprintf(err, errsize, "%s: cannot open: %s", path, fl_strerror(rc));
        return rc;
    }
    if (flock(e->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errsize,
                 "%s: the data directory is in use by another process", e->dir);
        close(e->lock_fd);
        e->lock_fd = -1;
        return -EBUSY;
    }
    return 0;
}

static void free_engine(struct kv_engine *e)
{
    kv_mark_close(&e->mark);
    kv_index_destroy(&e->index);
    fl_buf_free(&e->record);
    fl_buf_free(&e->payload);
    if (e->notify_fd >= 0)
        close(e->notify_fd);
    if (e->lock_fd >= 0)
        close(e->lock_fd);
    pthread_cond_destroy(&e->work);
    pthread_cond_destroy(&e->synced);
    pthread_cond_destroy(&e->snap_cv);
    pthread_cond_destroy(&e->snap_done);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

int kv_open(const char *dir, const struct kv_options *o, struct kv_engine **out,
            char *err, size_t errsize)
{
    struct kv_engine *e = calloc(1, sizeof(*e));
    uint64_t snap_seq = 0;
    uint64_t applied = 0;
    int rc;

    *out = NULL;
    if (e == NULL) {
        snprintf(err, errsize, "out of memory");
        return -ENOMEM;
    }
    if (strlen(dir) >= 3000) {
        snprintf(err, errsize, "data directory path longer than 3000 bytes");
        free(e);
        return -ENAMETOOLONG;
    }
    e->opts = *o;
    e->vfs = o->vfs ? o->vfs : kv_vfs_posix();
    e->notify_fd = -1;
    e->lock_fd = -1;
    e->mark.fd = -1; /* so free_engine and kv_wal_close skip them */
    e->wal.fd = -1;
    snprintf(e->dir, sizeof(e->dir), "%s", dir);
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&e->work, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&e->synced, NULL);
    pthread_cond_init(&e->snap_cv, NULL);
    pthread_cond_init(&e->snap_done, NULL);
    fl_buf_init(&e->record);
    fl_buf_init(&e->payload);
    rc = kv_index_init(&e->index);
    if (rc != 0) {
        snprintf(err, errsize, "out of memory");
        free_engine(e);
        return rc;
    }
    rc = e->vfs->mkdir(e->vfs->ctx, dir, 0755);
    if (rc != 0 && rc != -EEXIST) {
        snprintf(err, errsize, "%s: cannot create the data directory: %s", dir,
                 fl_strerror(rc));
        free_engine(e);
        return rc;
    }
    rc = lock_dir(e, err, errsize);
    if (rc == 0)
        rc = kv_snap_load(e->vfs, dir, &e->index, &snap_seq, &applied, err,
                          errsize);
    if (rc == 0)
        rc = kv_mark_open(&e->mark, e->vfs, e->dir,
                          (o->bugs & KV_BUG_SKIP_DIR_FSYNC) != 0, err, errsize);
    if (rc == 0) {
        e->last_applied = applied;
        e->snapshot_seq = snap_seq;
        rc = kv_wal_open(&e->wal, e->vfs, dir, o->segment_bytes, o->bugs,
                         snap_seq, e->mark.seq, replay, replay_prefetch, e, err,
                         errsize);
    }
    /* Without the watermark, or with only its older slot, recovery could
     * not tell whether the newest records were lost. */
    if (rc == 0 && e->mark.missing && e->wal.last_seq > 0)
        FL_LOG_WARNF("kv",
                     "watermark file missing: lost segments at the end "
                     "of the log cannot be detected",
                     "dir=%s last_seq=%" PRIu64, dir, e->wal.last_seq);
    if (rc == 0 && e->mark.fell_back)
        FL_LOG_WARNF("kv",
                     "one watermark slot is damaged: checked against the "
                     "other one, which may be older",
                     "dir=%s watermark=%" PRIu64, dir, e->mark.seq);
    /* Recovery fdatasynced every record it kept, so they are all below the
     * watermark now (truncate-on-corruption may have lowered the end). */
    if (rc == 0 && e->wal.last_seq != e->mark.seq &&
        (rc = kv_mark_write(&e->mark, e->wal.last_seq)) != 0)
        snprintf(err, errsize, "%s/%s: update failed: %s", dir, KV_MARK_NAME,
                 fl_strerror(rc));
    if (rc != 0) {
        kv_wal_close(&e->wal);
        free_engine(e);
        return rc;
    }
    /* Only the sync thread's rate limit uses it; manual mode reads no
     * clock. */
    if (!o->manual)
        e->mark_written_ns = fl_clock_now_ns();
    e->last_seq = e->wal.last_seq;
    /* Recovery fsynced everything it replayed. */
    atomic_store(&e->durable_seq, e->last_seq);
    e->synced_seq = e->last_seq;
    kv_index_purge(&e->index, e->last_seq);

    e->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->notify_fd < 0)
        rc = -errno;
    if (rc == 0 && o->sync != KV_SYNC_NONE && !o->manual) {
        rc = -pthread_create(&e->syncer, NULL, sync_main, e);
        e->syncer_started = rc == 0;
    }
    if (rc == 0 && !o->manual) {
        rc = -pthread_create(&e->snapper, NULL, snap_main, e);
        e->snapper_started = rc == 0;
    }
    if (rc != 0) {
        snprintf(err, errsize, "cannot start the engine: %s", fl_strerror(rc));
        kv_close(e);
        return rc;
    }
    FL_LOG_INFOF("kv", "opened",
                 "dir=%s snapshot_seq=%" PRIu64 " last_seq=%" PRIu64
                 " replayed=%" PRIu64 " keys=%zu truncated=%" PRIu64,
                 dir, snap_seq, e->last_seq, e->recovered, e->index.live,
                 e->wal.truncated_bytes);
    *out = e;
    return 0;
}

void kv_close(struct kv_engine *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->lock);
    if (atomic_load(&e->failed) == 0)
        flush_locked(e, true);
    e->stopping = true;
    pthread_cond_broadcast(&e->work);
    pthread_cond_broadcast(&e->snap_cv);
    pthread_mutex_unlock(&e->lock);
    if (e->snapper_started)
        pthread_join(e->snapper, NULL);
    if (e->syncer_started)
        pthread_join(e->syncer, NULL);
    /* In manual mode no sync thread drained the log at the stop: the last
     * round runs here. A failure, after a crash of the disk for example,
     * makes the engine fail, which logs it, and the steps below skip. */
    if (e->opts.manual && e->opts.sync != KV_SYNC_NONE) {
        pthread_mutex_lock(&e->lock);
        if (atomic_load(&e->failed) == 0 && sync_wanted(e))
            sync_round(e);
        pthread_mutex_unlock(&e->lock);
    }
    /* Without a sync thread ("none"), a clean stop still leaves the log on
     * disk, as a stop under the other policies does. */
    if (atomic_load(&e->failed) == 0 && e->opts.sync == KV_SYNC_NONE &&
        e->wal.fd >= 0 && e->wal.last_seq > e->synced_seq) {
        int rc = e->vfs->fdatasync(e->vfs->ctx, e->wal.fd);
        if (rc == 0)
            e->synced_seq = e->wal.last_seq;
        else
            FL_LOG_ERRORF("kv", "fdatasync of the log at close failed",
                          "dir=%s error=\"%s\"", e->dir, fl_strerror(rc));
    }
    /* Nothing runs any more: every synced record goes below the watermark,
     * so a clean stop leaves no record that recovery may drop. */
    if (atomic_load(&e->failed) == 0 && e->synced_seq > e->mark.seq) {
        int rc = kv_mark_write(&e->mark, e->synced_seq);
        if (rc != 0)
            FL_LOG_ERRORF("kv", "update of the watermark file failed",
                          "dir=%s error=\"%s\"", e->dir, fl_strerror(rc));
    }
    kv_wal_close(&e->wal);
    free_engine(e);
}

void kv_stats(struct kv_engine *e, struct kv_stats *s)
{
    pthread_mutex_lock(&e->lock);
    s->last_seq = e->last_seq;
    s->durable_seq = atomic_load(&e->durable_seq);
    s->keys = e->index.live;
    s->bytes = e->index.bytes;
    s->last_applied = e->last_applied;
    s->snapshots = e->snapshots;
    s->snapshot_seq = e->snapshot_seq;
    s->syncs = e->syncs;
    s->recovered = e->recovered;
    s->truncated = e->wal.truncated_bytes;
    s->sync = e->opts.sync;
    s->batch_ms = e->opts.batch_ms;
    s->failed = atomic_load(&e->failed) != 0;
    pthread_mutex_unlock(&e->lock);
}

const char *kv_error(struct kv_engine *e)
{
    return atomic_load(&e->failed) != 0 ? e->error : "";
}
