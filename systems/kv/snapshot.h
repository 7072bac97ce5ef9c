/*
 * Snapshots of the engine's keys.
 *
 * A snapshot is one file, snap-<last sequence number>.snap: a 48-byte
 * header (magic "FLKS", format version, the last sequence number and the
 * last caller log index it covers, the number of keys, the body length and
 * a CRC32C of the body, and a CRC32C of the header), then the body, one
 * entry per key: key length and value length (4 bytes each, little-endian),
 * key bytes, value bytes.
 *
 * It is written as a temporary file, fsynced, renamed into place, and the
 * directory fsynced; only then may the log segments it covers be deleted.
 * Loading takes the newest snapshot. If that one fails validation, loading
 * stops with an error rather than falling back to an older one, because the
 * log records between the two may already be gone.
 *
 * An export (kv_export) carries the same body behind a 40-byte header of
 * its own: magic "FLKE", format version, the last caller log index, the
 * number of keys, the body length, a CRC32C of the body and a CRC32C of
 * the header. It contains no sequence number. Sequence numbers belong to
 * one engine's log and mean nothing to the engine that imports it.
 */
#ifndef KV_SNAPSHOT_H
#define KV_SNAPSHOT_H

#include "buf.h"
#include "index.h"
#include "vfs.h"

#include <stddef.h>
#include <stdint.h>

#define KV_SNAP_HEADER  48
#define KV_SNAP_MAGIC   0x534b4c46u /* "FLKS" */
#define KV_SNAP_VERSION 1

#define KV_EXPORT_HEADER  40
#define KV_EXPORT_MAGIC   0x454b4c46u /* "FLKE" */
#define KV_EXPORT_VERSION 1

/* Appends every live key of x to body; sets *count. */
int kv_snap_serialize(const struct kv_index *x, struct fl_buf *body,
                      uint64_t *count);

/*
 * Writes the snapshot of body (count keys) covering records up to last_seq
 * and caller index last_applied, durably. skip_dir_fsync is the planted
 * bug. Returns 0 or a negative error with the reason in err.
 */
int kv_snap_write(const struct kv_vfs *vfs, const char *dir,
                  bool skip_dir_fsync, uint64_t last_seq, uint64_t last_applied,
                  const struct fl_buf *body, uint64_t count, char *err,
                  size_t errsize);

/*
 * Loads the newest snapshot of dir into x (which must be empty), setting
 * *last_seq and *last_applied, or leaves them 0 when there is none.
 * Removes temporary snapshot files a crash left. Returns 0, or a negative
 * error (FL_ECORRUPT naming the file) with the reason in err.
 */
int kv_snap_load(const struct kv_vfs *vfs, const char *dir, struct kv_index *x,
                 uint64_t *last_seq, uint64_t *last_applied, char *err,
                 size_t errsize);

/* Deletes every snapshot older than the one for keep_seq. */
int kv_snap_drop_older(const struct kv_vfs *vfs, const char *dir,
                       uint64_t keep_seq, char *err, size_t errsize);

/*
 * Appends to out an export of every live key of x with last caller index
 * applied. Returns 0, or -ENOMEM with out->failed set and out possibly
 * holding part of the export.
 */
int kv_snap_export(const struct kv_index *x, uint64_t applied,
                   struct fl_buf *out);

/*
 * Validates the export of len bytes at data and loads its keys into x,
 * which must be empty, each marked as changed by record seq. Sets *applied
 * and *count. Returns 0, -ENOMEM, or FL_EINPUT with the reason in err for
 * data that is not a complete, undamaged export of this format version.
 * On failure x may contain some keys, and the caller destroys it.
 */
int kv_snap_import(const void *data, size_t len, uint64_t seq,
                   struct kv_index *x, uint64_t *applied, uint64_t *count,
                   char *err, size_t errsize);

#endif
