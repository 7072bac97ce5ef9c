/*
 * The durable watermark: a small file, DIR/watermark, that records a
 * sequence number below which every log record was known to be on disk.
 * Recovery compares the log with it. A damaged record at or below the
 * watermark was durable, so it is corruption rather than a torn tail, and
 * a log that ends below the watermark lost records that were acknowledged
 * (a segment deleted or cut short).
 *
 * The file contains two 32-byte slots, at offsets 0 and 512 so that one torn
 * sector cannot damage both:
 *
 *   offset  size  field
 *        0     4  magic "FLKW"
 *        4     4  format version (1)
 *        8     8  generation, one more than the slot written before
 *       16     8  watermark sequence number
 *       24     4  reserved, zero
 *       28     4  CRC32C of bytes 0..28
 *
 * An update overwrites the older slot and fdatasyncs, so the other slot
 * stays valid whatever a crash does to this one. Loading takes the valid
 * slot with the higher generation. The engine updates the watermark when
 * it closes and, while running, at most once a second from the sync
 * thread, so after a crash it lags the durable log by about a second. In
 * manual mode (no threads) kv_sync updates it after every sync round.
 */
#ifndef KV_WATERMARK_H
#define KV_WATERMARK_H

#include "vfs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_MARK_NAME    "watermark"
#define KV_MARK_SLOT    32
#define KV_MARK_STRIDE  512
#define KV_MARK_MAGIC   0x574b4c46u /* "FLKW" */
#define KV_MARK_VERSION 1

struct kv_mark {
    const struct kv_vfs *vfs;
    const char *dir; /* borrowed from kv_mark_open's caller */
    bool skip_dir_fsync;
    int fd;              /* -1 while the file does not exist */
    uint64_t generation; /* of the newest valid slot */
    uint64_t seq;        /* the watermark stored in it */
    bool missing;        /* kv_mark_open found no file */
    bool fell_back;      /* one slot was damaged and the other one used */
};

/*
 * Opens DIR/watermark and loads it. A missing file (a new directory, or one
 * written before the file existed) means watermark 0, and the first
 * kv_mark_write creates it: a temporary file, fsynced, renamed, and the
 * directory fsynced unless skip_dir_fsync. So a recovery that fails
 * leaves the directory as it was. dir must outlive m. Returns 0,
 * FL_ECORRUPT when neither slot is valid, or a negative errno, with the
 * reason in err.
 */
int kv_mark_open(struct kv_mark *m, const struct kv_vfs *vfs, const char *dir,
                 bool skip_dir_fsync, char *err, size_t errsize);

/* Reads the watermark of dir into *seq (0 when there is no file) without
 * changing anything, unlike kv_mark_open, which deletes a temporary file a
 * crash left. For inspecting a directory an engine may have open. Returns
 * 0, FL_ECORRUPT when no slot is valid, or a negative errno. */
int kv_mark_peek(const struct kv_vfs *vfs, const char *dir, uint64_t *seq);

/* Stores seq in the older slot and fdatasyncs. Returns 0 or a negative
 * errno. */
int kv_mark_write(struct kv_mark *m, uint64_t seq);

void kv_mark_close(struct kv_mark *m);

#endif
