/*
 * The file-system interface of the KV engine.
 *
 * Every file operation of the engine goes through a struct kv_vfs, so tests
 * can fail the Nth call or shorten a write, and the deterministic simulator
 * can supply a disk that loses unsynced data on a crash. Calls return 0 (or
 * a byte count) on success and -errno on failure, like the system calls
 * they stand for; the engine never reads errno.
 */
#ifndef KV_VFS_H
#define KV_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct kv_vfs {
    void *ctx; /* passed to every call */

    /* Opens path with open(2) flags (O_CREAT and friends); returns a file
     * handle >= 0 or -errno. */
    int (*open)(void *ctx, const char *path, int flags, int mode);
    int (*close)(void *ctx, int fd);
    /* Return the number of bytes transferred, which may be short. */
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, off_t off);
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len,
                      off_t off);
    int (*fsync)(void *ctx, int fd);
    int (*fdatasync)(void *ctx, int fd);
    int (*ftruncate)(void *ctx, int fd, off_t len);
    int (*size)(void *ctx, int fd, off_t *out);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    int (*mkdir)(void *ctx, const char *path, int mode);
    /* Makes the entries of directory path durable (open + fsync). */
    int (*fsync_dir)(void *ctx, const char *path);
    /* Calls each(arg, name) for every entry but "." and ".."; stops and
     * returns the first nonzero value each returns. */
    int (*list)(void *ctx, const char *path,
                int (*each)(void *arg, const char *name), void *arg);
};

/* Returns the file system of the running system. */
const struct kv_vfs *kv_vfs_posix(void);

/* Writes all len bytes at off, continuing after short writes. Returns 0,
 * -errno, or -EIO when a write makes no progress. */
int kv_vfs_write_all(const struct kv_vfs *vfs, int fd, const void *buf,
                     size_t len, off_t off);

/* Reads exactly len bytes at off. Returns 0, -errno, or -ENODATA when the
 * file ends first. */
int kv_vfs_read_all(const struct kv_vfs *vfs, int fd, void *buf, size_t len,
                    off_t off);

/*
 * Writes the n parts, one after another, to path in directory dir so that a
 * crash leaves either the old file or the whole new one: a temporary file
 * path.tmp, fsync, rename over path, then an fsync of dir unless
 * skip_dir_fsync. A failure removes the temporary file and returns a
 * negative error.
 */
int kv_vfs_write_file(const struct kv_vfs *vfs, const char *dir,
                      const char *path, const struct iovec *parts, int n,
                      bool skip_dir_fsync);

#endif
