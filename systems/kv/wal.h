/*
 * The segmented write-ahead log.
 *
 * Records go to files named wal-<first sequence number>.log, each starting
 * with a segment header. A new segment is created as a temporary file, its
 * header written and fsynced, then renamed into place and the directory
 * fsynced, so a segment on disk always has a valid header. Writes append to
 * the newest segment; fsync is the caller's business (the engine's sync
 * thread), except where a segment is created, sealed or truncated.
 *
 * Recovery replays every segment in order. The first invalid record decides
 * what happened. In the newest segment, above the durable watermark, it is
 * a torn tail from a power loss. The segment is truncated there and the
 * truncation fsynced, even when valid records follow. A disk may persist a
 * later unsynced write and lose an earlier one, and because the log only
 * appends, every record after an unsynced one is unsynced too. In a sealed
 * segment, or at or below the watermark, records that were durable are damaged,
 * and recovery stops with an error naming the file and offset instead of
 * dropping them.
 *
 * Not thread-safe: the engine serializes calls under its lock.
 */
#ifndef KV_WAL_H
#define KV_WAL_H

#include "record.h"
#include "vfs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Planted bugs that concern the log; see kv_options. */
#define KV_BUG_ACK_BEFORE_FSYNC       (1u << 0)
#define KV_BUG_SKIP_DIR_FSYNC         (1u << 1)
#define KV_BUG_IGNORE_CRC             (1u << 2)
#define KV_BUG_TRUNCATE_ON_CORRUPTION (1u << 3)

struct kv_wal {
    const struct kv_vfs *vfs;
    char dir[3072];
    unsigned bugs;
    uint64_t segment_bytes; /* roll to a new segment past this size */
    int fd;                 /* newest segment, open for appending */
    uint64_t first_seq;     /* of the newest segment */
    off_t end;              /* its size */
    uint64_t last_seq;      /* last record written */
    /* Sealed segments still open. They are durable already, but the sync
     * thread may be inside an fdatasync of one, so it closes them. */
    int *retired;
    size_t nretired;
    size_t retired_cap;
    uint64_t truncated_bytes; /* torn tail dropped by the last recovery */
};

/* Called for each record replayed; a nonzero return stops recovery. */
typedef int (*kv_wal_apply_fn)(void *arg, const struct kv_rec *rec);

/* Called, when not NULL, with up to 16 valid records before they are
 * applied, so the caller can prefetch the memory they will touch. */
typedef void (*kv_wal_prefetch_fn)(void *arg, const struct kv_rec *recs,
                                   size_t n);

/*
 * Prepares w for directory dir (which must exist), replays every record
 * with a sequence number above after_seq through apply, repairs a torn tail
 * and opens the newest segment for appending (creating one when there is
 * none). Records up to durable (the watermark) were on disk, so a damaged
 * one is never a torn tail, and a log ending before it lost records.
 * Returns 0, or a negative error with the reason in err: FL_ECORRUPT for
 * damaged or missing records, which names the file and offset.
 */
int kv_wal_open(struct kv_wal *w, const struct kv_vfs *vfs, const char *dir,
                uint64_t segment_bytes, unsigned bugs, uint64_t after_seq,
                uint64_t durable, kv_wal_apply_fn apply,
                kv_wal_prefetch_fn prefetch, void *arg, char *err,
                size_t errsize);

/* Closes every open segment without syncing. */
void kv_wal_close(struct kv_wal *w);

/*
 * Appends len bytes holding records up to last_seq, first starting a new
 * segment when the current one is full. Returns 0 or a negative error.
 */
int kv_wal_append(struct kv_wal *w, const void *bytes, size_t len,
                  uint64_t last_seq, char *err, size_t errsize);

/* Seals the current segment and starts a new one for records from
 * next_seq on. */
int kv_wal_roll(struct kv_wal *w, uint64_t next_seq, char *err, size_t errsize);

/*
 * Deletes every segment all of whose records have sequence numbers below
 * seq (a snapshot covers them), then fsyncs the directory.
 */
int kv_wal_drop_before(struct kv_wal *w, uint64_t seq, char *err,
                       size_t errsize);

/* Fills name with the file name of the segment starting at first_seq. */
void kv_wal_segment_name(char *name, size_t size, uint64_t first_seq);

#endif
