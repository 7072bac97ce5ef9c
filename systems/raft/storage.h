/*
 * Raft's durable state on disk: the hard state (term and vote), the
 * snapshot and the log, in one directory, through the KV engine's log
 * machinery. A driver of the Raft core (raft.h) persists each update here
 * and, after a restart, hands what was durable back to rft_new.
 *
 * The directory contains:
 *   wal-<first sequence number>.log  log segments in the engine's framing
 *                                    (record.h, wal.h): CRC32C, sequence
 *                                    numbers, torn-tail repair
 *   watermark                        the engine's durable watermark
 *                                    (watermark.h), moved by every rfs_sync
 *   snap-<id>.snap                   a snapshot's bytes, whose id is the
 *                                    sequence number of the record that
 *                                    introduced it
 *   checkpoint                       the sequence number of the newest
 *                                    durable checkpoint, where replay starts
 *   LOCK                             flock of the owner (real disk only)
 *
 * Every update becomes records: the hard state, a snapshot mark (the
 * snapshot file is written first, as a temporary file, fsynced, renamed
 * and the directory fsynced), a truncation and one record per entry.
 * Installing a snapshot that discards the entries after it is one
 * record, so a torn tail cannot keep a suffix the snapshot replaced. A
 * crash that keeps unsynced writes in order leaves a prefix of the records
 * written since the last rfs_sync, so the state recovered lies between the
 * last synced one and the last saved one. When a crash keeps a later
 * record but loses an earlier one, recovery reports damage, as the
 * engine's does, rather than guess.
 *
 * Compaction starts a new segment with a checkpoint of the whole state
 * (hard state, the new snapshot, then every entry after it), syncs it,
 * points the checkpoint file at it, and only then deletes the older
 * segments and snapshot files. Recovery replays from that checkpoint. A
 * checkpoint that a crash left incomplete is ignored when the records
 * before it still exist, and is damage when it is the one the checkpoint
 * file names.
 *
 * Failures are sticky, as in the engine. After a failed write, fsync,
 * rename or delete, the call returns that error, and every later call
 * returns FL_ESTICKY until the storage is closed and opened again. A
 * second fsync could succeed without the data being on disk, so none is
 * tried.
 *
 * Ownership: every pointer parameter is borrowed for the call. rfs_open
 * returns a handle that rfs_close frees, and the pointers rfs_durable
 * fills in belong to the handle. Not thread-safe.
 */
#ifndef RFT_STORAGE_H
#define RFT_STORAGE_H

#include "raft.h"
#include "vfs.h"

#include <stddef.h>
#include <stdint.h>

struct rfs;

/*
 * Opens the Raft storage in dir on vfs (NULL: the real file system),
 * creating the directory when it is missing, and recovers what was
 * durable: replays the log from the checkpoint on, cuts a torn tail above
 * the watermark, checks the snapshot file against its record, and deletes
 * files a crash left behind. segment_bytes is the size past which rfs_sync
 * starts a new segment (0: 64 MiB).
 * Returns 0, or with the reason in err:
 *   -ENOMEM;
 *   -ENAMETOOLONG for a dir longer than 3000 bytes;
 *   -EBUSY when another process has the directory open (real disk only);
 *   another -errno from the file system, for example -ENOTDIR when dir is
 *   a file;
 *   FL_ECORRUPT, naming the file and the offset, for damage recovery must
 *   not drop: a damaged record at or below the watermark, in a sealed
 *   segment, or with a valid record after it. Also for a log that ends
 *   before the watermark or misses a segment, and a missing or incomplete
 *   checkpoint. Also for a record that does not fit the log: an entry
 *   whose index does not follow it, a truncation outside it, a snapshot
 *   not above the previous one. And for a damaged snapshot, watermark or
 *   checkpoint file.
 */
int rfs_open(struct rfs **out, const char *dir, const struct kv_vfs *vfs,
             uint64_t segment_bytes, char *err, size_t errsize);

/* Closes s without syncing: call rfs_sync first to keep what rfs_save
 * wrote since the last one. NULL is allowed. */
void rfs_close(struct rfs *s);

/*
 * Fills d with the state as saved so far (after rfs_open: as recovered),
 * for rft_new: hard state, snapshot with its configuration and bytes, and
 * the entries after it. The pointers in d stay valid until the next
 * rfs_save, rfs_compact or rfs_close.
 */
void rfs_durable(const struct rfs *s, struct rft_durable *d);

/*
 * Writes the records update u requests, in the contract's order: the hard
 * state, the installed snapshot (u->snapshot, whose file is made durable
 * here), the truncation and the entries. The records are durable only
 * after the next rfs_sync. A truncation from an index past the end of
 * the log changes nothing.
 * Returns 0, or with the reason in err:
 *   FL_EINPUT, with nothing written, for an update that does not fit the
 *   saved state. That is a term below the saved one, a different vote in
 *   the same term, or a snapshot not above the saved one or with an
 *   invalid configuration. It is also a snapshot that keeps entries whose
 *   term at its index differs, a truncation at or below the snapshot's
 *   index, entries that do not start right after the log, an unknown
 *   entry type, or an entry larger than a record can carry;
 *   -ENOMEM, with nothing written;
 *   FL_ESTICKY after an earlier failure;
 *   the -errno of a failed write, fsync or rename, which leaves s failed.
 */
int rfs_save(struct rfs *s, const struct rft_update *u, char *err,
             size_t errsize);

/*
 * Records a snapshot the driver took and reported with RFT_EV_SNAPSHOT,
 * and compacts the log it covers. It syncs what was saved, then writes the
 * snapshot file and a checkpoint of the whole state to a new segment and
 * syncs them. Then it deletes the older segments and snapshot files.
 * Everything saved before is durable when it returns 0.
 * Returns 0, or with the reason in err:
 *   FL_EINPUT when snap's index is not above the saved snapshot's or
 *   beyond the log, its term differs from the entry's at that index, or
 *   its configuration is invalid, with nothing written;
 *   -ENOMEM, with nothing written;
 *   FL_ESTICKY after an earlier failure;
 *   the -errno of a failed write, fsync, rename or delete, which leaves s
 *   failed.
 */
int rfs_compact(struct rfs *s, const struct rft_snapshot *snap, char *err,
                size_t errsize);

/*
 * Makes every record saved so far durable (group commit: one call covers
 * every rfs_save before it), in two fdatasyncs: the log's, then the
 * watermark file's, so that recovery can tell every synced record from a
 * torn tail. Then starts a new segment when the current one has reached
 * segment_bytes, and deletes snapshot files that synced records replaced.
 * Returns 0, FL_ESTICKY after an earlier failure, or the -errno of a
 * failed fdatasync, write or delete, which leaves s failed. The reason is
 * in err. It never retries a failed fdatasync.
 */
int rfs_sync(struct rfs *s, char *err, size_t errsize);

/* Returns the index of the last entry saved, or the snapshot's index when
 * no entry follows it. */
uint64_t rfs_last_index(const struct rfs *s);

#endif
