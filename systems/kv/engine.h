/*
 * A crash-consistent key-value engine: an in-memory index of byte-string
 * keys and values, made durable by a segmented write-ahead log and
 * periodic snapshots.
 *
 * Every change is a log record with the next sequence number. Operations do
 * not block: each returns the sequence number that must be durable before
 * its result may be reported (the "wait" sequence), and the caller either
 * blocks in kv_wait or, like fl-kvd's event loop, watches kv_notify_fd and
 * compares kv_durable. Reads report a wait too, the sequence of the record
 * that last changed the key, so a value is never shown before it is
 * durable. A sync thread makes records durable in groups: every record
 * written while one fdatasync runs shares the next one (group commit).
 *
 * Sync policies: "always" (the default) acknowledges a record once an
 * fdatasync covering it has returned. "batch:MS" does the same but lets
 * records gather for up to MS milliseconds before each fdatasync. "none"
 * never waits for fdatasync and is unsafe, because a crash of the machine
 * can lose acknowledged writes.
 *
 * A failed write, fsync or rename makes the engine fail: every later
 * operation returns FL_ESTICKY and kv_error explains, until the engine is
 * closed and opened again, which runs recovery. fsync is never retried.
 *
 * kv_apply serves a replicated log (Raft): a batch of operations carries the
 * caller's log index, is logged as one record, and is skipped when its
 * index is not above the last one applied, so replaying a log is safe.
 * kv_export and kv_import move the whole state, keys and last applied
 * index, from one engine to another, as a Raft snapshot does.
 *
 * With kv_options.manual the engine starts no thread, and kv_sync and
 * kv_wait do the syncing and snapshotting in the calling thread. A
 * deterministic simulator runs one engine per simulated node that way.
 *
 * All functions are thread-safe. Keys and values are borrowed for the call.
 */
#ifndef KV_ENGINE_H
#define KV_ENGINE_H

#include "buf.h"
#include "vfs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kv_sync {
    KV_SYNC_ALWAYS,
    KV_SYNC_BATCH,
    KV_SYNC_NONE,
};

struct kv_options {
    const struct kv_vfs *vfs; /* NULL: the real file system */
    enum kv_sync sync;
    unsigned batch_ms;       /* KV_SYNC_BATCH: max wait before fdatasync */
    uint64_t snapshot_every; /* records between snapshots; 0: only on
                                request */
    uint64_t segment_bytes;  /* log segment size; 0: 64 MiB */
    unsigned bugs;           /* planted bugs, KV_BUG_* from wal.h */
    /* Keep records in memory until kv_flush (or 1 MiB of them) instead of
     * writing each at once: a server that flushes once per event-loop pass
     * saves a write system call per request. */
    bool deferred_writes;
    /*
     * Start no thread. Under "always" and "batch" (batch_ms is then
     * ignored), records become durable when the caller runs kv_sync or
     * kv_wait, which fdatasync in its thread. kv_sync also moves the
     * watermark file each time the synced point moved, and takes a
     * snapshot every snapshot_every records. What reaches the disk depends on
     * neither the clock nor timing, so the same calls on the same disk
     * write the same bytes.
     */
    bool manual;
};

/* Sets the defaults: always, no automatic snapshots, 64 MiB segments,
 * threads (not manual). */
void kv_options_default(struct kv_options *o);

/* Parses "always", "none" or "batch:MS" (1..10000 ms); 0 or FL_EINPUT. */
int kv_sync_parse(const char *text, enum kv_sync *sync, unsigned *batch_ms);

/* Parses a planted bug name: ack-before-fsync, skip-dir-fsync, ignore-crc
 * or truncate-on-corruption; returns 0 and its KV_BUG_* bit, or FL_EINPUT. */
int kv_bug_parse(const char *name, unsigned *bit);

/* Returns a comma-separated list of the planted bug names, for help. */
const char *kv_bug_names(void);

struct kv_engine;

/*
 * Opens the engine in directory dir (created if missing), recovering its
 * state from the newest snapshot and the log. Returns 0, or a negative error
 * with the reason in err: FL_ECORRUPT for damage, naming file and offset;
 * -EBUSY when another process has the directory open.
 */
int kv_open(const char *dir, const struct kv_options *o, struct kv_engine **out,
            char *err, size_t errsize);

/* Waits for outstanding fdatasyncs, stops the threads and frees e. In
 * manual mode it runs the last sync round itself. A failure there, such
 * as every call failing after a simulated crash, is logged, and e is freed
 * all the same. */
void kv_close(struct kv_engine *e);

/*
 * Copies the value of key into value (cleared first) and sets *found.
 * Returns 0 or FL_ESTICKY. *wait: see the file comment.
 */
int kv_get(struct kv_engine *e, struct fl_str key, struct fl_buf *value,
           bool *found, uint64_t *wait);

int kv_put(struct kv_engine *e, struct fl_str key, struct fl_str value,
           uint64_t *wait);

int kv_delete(struct kv_engine *e, struct fl_str key, bool *existed,
              uint64_t *wait);

/* Sets key to value when its current value equals expected (an absent key
 * never matches). */
int kv_cas(struct kv_engine *e, struct fl_str key, struct fl_str expected,
           struct fl_str value, bool *swapped, uint64_t *wait);

enum kv_op_type {
    KV_OP_PUT,
    KV_OP_DELETE,
    KV_OP_CAS,
};

struct kv_op {
    enum kv_op_type type;
    struct fl_str key;
    struct fl_str value;    /* PUT, CAS */
    struct fl_str expected; /* CAS */
    bool done; /* set by kv_apply: CAS swapped, DELETE found the key */
};

/*
 * Applies ops in order as log entry index. When index is not above the
 * last applied index, nothing happens and *skipped is set. Returns 0 or
 * FL_ESTICKY.
 */
int kv_apply(struct kv_engine *e, uint64_t index, struct kv_op *ops, size_t n,
             bool *skipped, uint64_t *wait);

/* Writes the records kept back by deferred_writes and wakes the sync
 * thread. Returns 0 or FL_ESTICKY. */
int kv_flush(struct kv_engine *e);

/*
 * Writes the records kept back by deferred_writes and, under the "always"
 * policy, runs the fdatasync that makes them durable in the calling thread
 * instead of handing it to the sync thread, unless a round is running
 * already. This saves two thread wake-ups per round; an event loop calls it
 * at the end of each pass. Returns 0 or FL_ESTICKY.
 *
 * In manual mode, under "always" and "batch", it runs the round whenever
 * records wait for one, first letting a round of another thread finish,
 * and then moves the watermark file to the synced point. Under every
 * policy it then takes a snapshot once snapshot_every records were logged
 * since the last one. Returns 0, FL_ESTICKY, or -ENOMEM when the snapshot
 * could not be built in memory.
 */
int kv_sync(struct kv_engine *e);

/* Blocks until record seq is durable. Returns 0, or FL_ESTICKY when the
 * engine failed before that. In manual mode it does not block: when seq is
 * not durable it runs the round of kv_sync (without the snapshot), and it
 * returns FL_EINPUT for a seq above the last one logged. */
int kv_wait(struct kv_engine *e, uint64_t seq);

/* Returns the highest durable sequence number. */
uint64_t kv_durable(struct kv_engine *e);

/* Returns an eventfd that becomes readable whenever kv_durable advances or
 * the engine fails; read 8 bytes to reset it. */
int kv_notify_fd(const struct kv_engine *e);

/* Writes a snapshot now and deletes the log segments it covers. */
int kv_snapshot(struct kv_engine *e);

/*
 * Appends to out the engine's state: the last applied index (kv_apply) and
 * every live key with its value, in a checksummed, versioned format that
 * kv_import reads (snapshot.h). The state includes operations whose
 * records are not durable yet. Sets *applied. Returns 0, -ENOMEM (out is
 * then failed and may hold part of the export), or FL_ESTICKY. out is
 * borrowed.
 */
int kv_export(struct kv_engine *e, struct fl_buf *out, uint64_t *applied);

/*
 * Replaces the engine's whole state, keys and last applied index, with an
 * export, durably. Every record logged so far, deferred ones included, is
 * written, and the imported state becomes the snapshot that covers them
 * all. Then the older segments and snapshots are deleted. A crash during
 * the import recovers either the old state or the new one, and after a 0
 * return always the new one. Reads report a wait that is durable already,
 * kv_apply skips indexes up to the imported one, and keys missing from the
 * export are gone.
 *
 * Returns 0; FL_EINPUT with the reason in err for data that is not a
 * complete, undamaged export of this version, and then nothing changed;
 * -ENOMEM, also with nothing changed; or FL_ESTICKY, when the engine had
 * failed or a write of the import failed. The engine holds its lock for
 * the whole import. data is borrowed.
 */
int kv_import(struct kv_engine *e, const void *data, size_t len, char *err,
              size_t errsize);

struct kv_stats {
    uint64_t last_seq;
    uint64_t durable_seq;
    uint64_t keys;
    uint64_t bytes; /* of live keys and values */
    uint64_t last_applied;
    uint64_t snapshots;    /* written since open */
    uint64_t snapshot_seq; /* of the newest snapshot, 0 for none */
    uint64_t syncs;        /* fdatasync rounds since open */
    uint64_t recovered;    /* records replayed at open */
    uint64_t truncated;    /* torn-tail bytes dropped at open */
    enum kv_sync sync;
    unsigned batch_ms;
    bool failed;
};

void kv_stats(struct kv_engine *e, struct kv_stats *s);

/* Returns why the engine failed, or "" while it has not. */
const char *kv_error(struct kv_engine *e);

#endif
