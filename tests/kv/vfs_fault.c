/*
 * The fault-injecting kv_vfs of the engine's tests. See vfs_fault.h.
 */
#include "vfs_fault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

/*
 * Counts one call of op and decides its fate under the lock. Returns 0 to
 * let the call through, or -errno to fail it without touching the disk.
 */
static int enter(struct fault_vfs *f, enum fault_op op, bool mutating)
{
    int rc = 0;

    pthread_mutex_lock(&f->lock);
    uint64_t n = ++f->calls[op];
    if (mutating) {
        f->mutating++;
        if (f->crash_at != 0 && f->mutating >= f->crash_at)
            rc = -EIO;
        if (f->fail_mutating_at == f->mutating)
            rc = -EIO;
    }
    if (rc == 0 && f->fail_at[op] == n)
        rc = -f->fail_errno[op];
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* Appends a finished call to the trace when tracing. */
static void record(struct fault_vfs *f, enum fault_op op, long result,
                   const char *name, const char *to)
{
    pthread_mutex_lock(&f->lock);
    if (f->tracing && f->nevents == FAULT_MAX_EVENTS) {
        f->events_lost = true;
    } else if (f->tracing) {
        struct fault_event *ev = &f->events[f->nevents++];
        ev->op = op;
        ev->result = result < 0 ? (int)result : 0;
        snprintf(ev->name, sizeof(ev->name), "%s", name ? name : "");
        snprintf(ev->to, sizeof(ev->to), "%s", to ? to : "");
    }
    pthread_mutex_unlock(&f->lock);
}

/* Copies the name of the file fd was opened as into name. */
static void fd_name(struct fault_vfs *f, int fd, char *name, size_t size)
{
    pthread_mutex_lock(&f->lock);
    snprintf(name, size, "%s",
             fd >= 0 && fd < FAULT_MAX_FDS ? f->fd_names[fd] : "");
    pthread_mutex_unlock(&f->lock);
}

static int f_open(void *ctx, const char *path, int flags, int mode)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_OPEN, (flags & O_CREAT) != 0);

    if (rc == 0)
        rc = f->base->open(f->base->ctx, path, flags, mode);
    if (rc >= 0 && rc < FAULT_MAX_FDS) {
        pthread_mutex_lock(&f->lock);
        snprintf(f->fd_names[rc], sizeof(f->fd_names[rc]), "%s",
                 base_name(path));
        pthread_mutex_unlock(&f->lock);
    }
    record(f, FAULT_OPEN, rc, base_name(path), NULL);
    return rc;
}

static int f_close(void *ctx, int fd)
{
    struct fault_vfs *f = ctx;
    char name[80];

    /* A close is never failed: the engine closes on its error paths, and a
     * failed close would leak the descriptor. */
    (void)enter(f, FAULT_CLOSE, false);
    fd_name(f, fd, name, sizeof(name));
    if (fd >= 0 && fd < FAULT_MAX_FDS) {
        pthread_mutex_lock(&f->lock);
        f->fd_names[fd][0] = '\0';
        pthread_mutex_unlock(&f->lock);
    }
    int rc = f->base->close(f->base->ctx, fd);
    record(f, FAULT_CLOSE, rc, name, NULL);
    return rc;
}

static ssize_t f_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_PREAD, false);

    if (rc != 0)
        return rc;
    return f->base->pread(f->base->ctx, fd, buf, len, off);
}

static ssize_t f_pwrite(void *ctx, int fd, const void *buf, size_t len,
                        off_t off)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_PWRITE, true);
    char name[80];
    ssize_t n = rc;

    if (rc == 0) {
        pthread_mutex_lock(&f->lock);
        bool shorten = f->short_pwrite_at != 0 &&
                       f->calls[FAULT_PWRITE] == f->short_pwrite_at;
        pthread_mutex_unlock(&f->lock);
        if (shorten && len > 1)
            len /= 2;
        n = f->base->pwrite(f->base->ctx, fd, buf, len, off);
    }
    fd_name(f, fd, name, sizeof(name));
    record(f, FAULT_PWRITE, n, name, NULL);
    return n;
}

static int f_fsync(void *ctx, int fd)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_FSYNC, true);
    char name[80];

    if (rc == 0)
        rc = f->base->fsync(f->base->ctx, fd);
    fd_name(f, fd, name, sizeof(name));
    record(f, FAULT_FSYNC, rc, name, NULL);
    return rc;
}

static int f_fdatasync(void *ctx, int fd)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_FDATASYNC, true);
    char name[80];

    /* The gate holds the call before it reaches the disk, so nothing the
     * caller wrote is durable while it waits. */
    pthread_mutex_lock(&f->lock);
    if (f->gate_closed) {
        f->gate_waiting++;
        pthread_cond_broadcast(&f->changed);
        while (f->gate_closed)
            pthread_cond_wait(&f->changed, &f->lock);
        f->gate_waiting--;
    }
    pthread_mutex_unlock(&f->lock);
    if (rc == 0)
        rc = f->base->fdatasync(f->base->ctx, fd);
    fd_name(f, fd, name, sizeof(name));
    record(f, FAULT_FDATASYNC, rc, name, NULL);
    return rc;
}

static int f_ftruncate(void *ctx, int fd, off_t len)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_FTRUNCATE, true);
    char name[80];

    if (rc == 0)
        rc = f->base->ftruncate(f->base->ctx, fd, len);
    fd_name(f, fd, name, sizeof(name));
    record(f, FAULT_FTRUNCATE, rc, name, NULL);
    return rc;
}

static int f_size(void *ctx, int fd, off_t *out)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_SIZE, false);

    if (rc != 0)
        return rc;
    return f->base->size(f->base->ctx, fd, out);
}

static int f_rename(void *ctx, const char *from, const char *to)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_RENAME, true);

    if (rc == 0)
        rc = f->base->rename(f->base->ctx, from, to);
    if (rc == 0) {
        /* Descriptors open on the old name now name the new one. */
        pthread_mutex_lock(&f->lock);
        for (int fd = 0; fd < FAULT_MAX_FDS; fd++) {
            if (strcmp(f->fd_names[fd], base_name(from)) == 0)
                snprintf(f->fd_names[fd], sizeof(f->fd_names[fd]), "%s",
                         base_name(to));
        }
        pthread_mutex_unlock(&f->lock);
    }
    record(f, FAULT_RENAME, rc, base_name(from), base_name(to));
    return rc;
}

static int f_unlink(void *ctx, const char *path)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_UNLINK, true);

    if (rc == 0)
        rc = f->base->unlink(f->base->ctx, path);
    record(f, FAULT_UNLINK, rc, base_name(path), NULL);
    return rc;
}

static int f_mkdir(void *ctx, const char *path, int mode)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_MKDIR, false);

    if (rc != 0)
        return rc;
    return f->base->mkdir(f->base->ctx, path, mode);
}

static int f_fsync_dir(void *ctx, const char *path)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_FSYNC_DIR, true);

    if (rc == 0)
        rc = f->base->fsync_dir(f->base->ctx, path);
    record(f, FAULT_FSYNC_DIR, rc, base_name(path), NULL);
    return rc;
}

static int f_list(void *ctx, const char *path,
                  int (*each)(void *arg, const char *name), void *arg)
{
    struct fault_vfs *f = ctx;
    int rc = enter(f, FAULT_LIST, false);

    if (rc != 0)
        return rc;
    return f->base->list(f->base->ctx, path, each, arg);
}

void fault_vfs_init(struct fault_vfs *f)
{
    memset(f, 0, sizeof(*f));
    f->base = kv_vfs_posix();
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->changed, NULL);
    f->vfs = (struct kv_vfs){
        .ctx = f,
        .open = f_open,
        .close = f_close,
        .pread = f_pread,
        .pwrite = f_pwrite,
        .fsync = f_fsync,
        .fdatasync = f_fdatasync,
        .ftruncate = f_ftruncate,
        .size = f_size,
        .rename = f_rename,
        .unlink = f_unlink,
        .mkdir = f_mkdir,
        .fsync_dir = f_fsync_dir,
        .list = f_list,
    };
}

void fault_vfs_destroy(struct fault_vfs *f)
{
    free(f->events);
    pthread_cond_destroy(&f->changed);
    pthread_mutex_destroy(&f->lock);
}

void fault_vfs_fail_call(struct fault_vfs *f, enum fault_op op, uint64_t nth,
                         int err)
{
    pthread_mutex_lock(&f->lock);
    f->fail_at[op] = nth;
    f->fail_errno[op] = err;
    pthread_mutex_unlock(&f->lock);
}

void fault_vfs_short_pwrite(struct fault_vfs *f, uint64_t nth)
{
    pthread_mutex_lock(&f->lock);
    f->short_pwrite_at = nth;
    pthread_mutex_unlock(&f->lock);
}

void fault_vfs_crash_at(struct fault_vfs *f, uint64_t nth)
{
    pthread_mutex_lock(&f->lock);
    f->crash_at = nth;
    pthread_mutex_unlock(&f->lock);
}

void fault_vfs_fail_mutating(struct fault_vfs *f, uint64_t nth)
{
    pthread_mutex_lock(&f->lock);
    f->fail_mutating_at = nth;
    pthread_mutex_unlock(&f->lock);
}

void fault_vfs_trace(struct fault_vfs *f)
{
    pthread_mutex_lock(&f->lock);
    if (f->events == NULL)
        f->events = calloc(FAULT_MAX_EVENTS, sizeof(*f->events));
    f->tracing = f->events != NULL;
    f->events_lost = f->events == NULL;
    pthread_mutex_unlock(&f->lock);
}

uint64_t fault_vfs_calls(struct fault_vfs *f, enum fault_op op)
{
    pthread_mutex_lock(&f->lock);
    uint64_t n = f->calls[op];
    pthread_mutex_unlock(&f->lock);
    return n;
}

uint64_t fault_vfs_mutating(struct fault_vfs *f)
{
    pthread_mutex_lock(&f->lock);
    uint64_t n = f->mutating;
    pthread_mutex_unlock(&f->lock);
    return n;
}

void fault_vfs_close_gate(struct fault_vfs *f)
{
    pthread_mutex_lock(&f->lock);
    f->gate_closed = true;
    pthread_mutex_unlock(&f->lock);
}

bool fault_vfs_wait_blocked(struct fault_vfs *f, uint64_t n,
                            unsigned timeout_ms)
{
    struct timespec deadline;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->lock);
    while (f->gate_waiting < n && rc == 0)
        rc = pthread_cond_timedwait(&f->changed, &f->lock, &deadline);
    bool reached = f->gate_waiting >= n;
    pthread_mutex_unlock(&f->lock);
    return reached;
}

void fault_vfs_open_gate(struct fault_vfs *f)
{
    pthread_mutex_lock(&f->lock);
    f->gate_closed = false;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
}
