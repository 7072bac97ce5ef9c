/*
 * kv_vfs over the real system calls, retrying EINTR in one place.
 */
#include "vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Turns a system-call result into the kv_vfs convention: the result, or
 * -errno. */
static long result(long rc)
{
    return rc < 0 ? -(long)errno : rc;
}

static int p_open(void *ctx, const char *path, int flags, int mode)
{
    (void)ctx;
    int fd;

    do
        fd = open(path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    return (int)result(fd);
}

static int p_close(void *ctx, int fd)
{
    (void)ctx;
    /* close is not retried: on Linux the descriptor is gone even after
     * EINTR, and a retry could close a reused descriptor. */
    return close(fd) == 0 ? 0 : -errno;
}

static ssize_t p_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    (void)ctx;
    ssize_t n;

    do
        n = pread(fd, buf, len, off);
    while (n < 0 && errno == EINTR);
    return result(n);
}

static ssize_t p_pwrite(void *ctx, int fd, const void *buf, size_t len,
                        off_t off)
{
    (void)ctx;
    ssize_t n;

    do
        n = pwrite(fd, buf, len, off);
    while (n < 0 && errno == EINTR);
    return result(n);
}

static int p_fsync(void *ctx, int fd)
{
    (void)ctx;
    int rc;

    do
        rc = fsync(fd);
    while (rc < 0 && errno == EINTR);
    return (int)result(rc);
}

static int p_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    int rc;

    do
        rc = fdatasync(fd);
    while (rc < 0 && errno == EINTR);
    return (int)result(rc);
}

static int p_ftruncate(void *ctx, int fd, off_t len)
{
    (void)ctx;
    int rc;

    do
        rc = ftruncate(fd, len);
    while (rc < 0 && errno == EINTR);
    return (int)result(rc);
}

static int p_size(void *ctx, int fd, off_t *out)
{
    struct stat st;

    (void)ctx;
    if (fstat(fd, &st) != 0)
        return -errno;
    *out = st.st_size;
    return 0;
}

static int p_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to) == 0 ? 0 : -errno;
}

static int p_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path) == 0 ? 0 : -errno;
}

static int p_mkdir(void *ctx, const char *path, int mode)
{
    (void)ctx;
    return mkdir(path, (mode_t)mode) == 0 ? 0 : -errno;
}

static int p_fsync_dir(void *ctx, const char *path)
{
    int fd;
    int rc;

    (void)ctx;
    fd = p_open(ctx, path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return fd;
    rc = p_fsync(ctx, fd);
    close(fd);
    return rc;
}

static int p_list(void *ctx, const char *path,
                  int (*each)(void *arg, const char *name), void *arg)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int rc = 0;

    (void)ctx;
    if (d == NULL)
        return -errno;
    for (;;) {
        /* readdir reports errors only through errno, which the callback
         * may have changed, so reset it before every call. */
        errno = 0;
        e = readdir(d);
        if (e == NULL) {
            rc = -errno;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = each(arg, e->d_name);
        if (rc != 0)
            break;
    }
    closedir(d);
    return rc;
}

static const struct kv_vfs posix_vfs = {
    .ctx = NULL,
    .open = p_open,
    .close = p_close,
    .pread = p_pread,
    .pwrite = p_pwrite,
    .fsync = p_fsync,
    .fdatasync = p_fdatasync,
    .ftruncate = p_ftruncate,
    .size = p_size,
    .rename = p_rename,
    .unlink = p_unlink,
    .mkdir = p_mkdir,
    .fsync_dir = p_fsync_dir,
    .list = p_list,
};

const struct kv_vfs *kv_vfs_posix(void)
{
    return &posix_vfs;
}

int kv_vfs_write_all(const struct kv_vfs *vfs, int fd, const void *buf,
                     size_t len, off_t off)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = vfs->pwrite(vfs->ctx, fd, p, len, off);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int kv_vfs_read_all(const struct kv_vfs *vfs, int fd, void *buf, size_t len,
                    off_t off)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = vfs->pread(vfs->ctx, fd, p, len, off);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -ENODATA;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int kv_vfs_write_file(const struct kv_vfs *vfs, const char *dir,
                      const char *path, const struct iovec *parts, int n,
                      bool skip_dir_fsync)
{
    char tmp[4096];
    off_t off = 0;
    int fd;
    int rc = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    fd = vfs->open(vfs->ctx, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    for (int i = 0; rc == 0 && i < n; i++) {
        rc =
            kv_vfs_write_all(vfs, fd, parts[i].iov_base, parts[i].iov_len, off);
        off += (off_t)parts[i].iov_len;
    }
    if (rc == 0)
        rc = vfs->fsync(vfs->ctx, fd);
    vfs->close(vfs->ctx, fd);
    if (rc == 0)
        rc = vfs->rename(vfs->ctx, tmp, path);
    if (rc == 0 && !skip_dir_fsync)
        rc = vfs->fsync_dir(vfs->ctx, dir);
    if (rc != 0)
        vfs->unlink(vfs->ctx, tmp);
    return rc;
}
