/*
 * The disk-fault supervisor: a seccomp user-notification listener that
 * performs the program's writes to files under the data directory itself,
 * keeps what they overwrote, and rolls back whatever was not yet fsynced.
 *
 * Every notification is handled with the object's mutex held, and so are
 * the rollbacks the caller starts, so a rollback never interleaves with a
 * write the supervisor performs for the program.
 */
#include "disk_fault.h"

#include "error.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/falloc.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
/* Linux 6.6: wake the program on the supervisor's CPU when it responds.
 * On a 2-vCPU Firecracker VM (Linux 6.18) a round trip took about 4 us with
 * it and 4 to 50 us without. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1UL
#endif

#define COMP       "disk"
#define MAX_FAULTS 16
/* A larger write is performed in part and returns a short count, which
 * POSIX allows and programs that write files handle. */
#define MAX_WRITE (64u << 20)

/* ---- the undo log -------------------------------------------------------- */

enum data_kind { DATA_WRITE, DATA_TRUNCATE, DATA_FALLOCATE };

/* One change to a file's bytes or size, with what it overwrote. */
struct data_op {
    uint64_t seq;
    enum data_kind kind;
    bool durable; /* O_SYNC, RWF_DSYNC...: kept by every rollback */
    off_t off;    /* write and fallocate offset */
    off_t len;    /* fallocate length */
    int mode;     /* fallocate mode */
    off_t new_size;
    char *data; /* bytes written */
    size_t data_len;
    off_t old_size;
    off_t old_off; /* where old bytes came from */
    char *old;
    size_t old_len;
};

/* A file with changes that are not durable, and a descriptor of ours on
 * it, which also keeps the inode alive after an unlink. */
struct tracked_file {
    dev_t dev;
    ino_t ino;
    int fd;
    struct data_op *ops;
    size_t n_ops, cap_ops;
};

enum dir_kind { DIR_CREATE, DIR_UNLINK, DIR_RMDIR, DIR_RENAME };

/* A change to directory entries, durable once every parent it touched
 * has been fsynced. */
struct dir_op {
    enum dir_kind kind;
    char *path;  /* created, removed, or the old name of a rename */
    char *path2; /* the new name of a rename */
    char *stash; /* the removed file, or the file a rename replaced */
    bool replaced_dir;
    mode_t mode;    /* of a removed directory */
    unsigned flags; /* renameat2 flags */
    dev_t parent_dev[2];
    ino_t parent_ino[2];
    int n_parents;
    unsigned synced; /* bit i: parent i fsynced since */
};

struct armed_fault {
    struct nem_disk_fault fault;
    char pattern[256];
    unsigned seen;
    bool done;
};

struct nem_disk {
    char data_dir[PATH_MAX];
    size_t data_len;
    char stash_dir[PATH_MAX];
    unsigned stash_seq;
    uint64_t seq;
    struct sock_fprog prog;

    pthread_mutex_t lock;
    struct tracked_file *files;
    size_t n_files, cap_files;
    struct dir_op *dirs;
    size_t n_dirs, cap_dirs;
    struct armed_fault faults[MAX_FAULTS];
    size_t n_faults;
    struct nem_disk_stats stats;

    int netns_fd; /* network namespace for programs, or -1; borrowed */
    pid_t pid;    /* 0 when no program runs */
    int pidfd;
    int notify_fd;
    pthread_t thread;
    bool thread_running;
    bool fatal; /* the supervisor failed and killed the program */
    char err[512];
};

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_getfd_(int pidfd, int fd)
{
    return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

static int set_error(struct nem_disk *d, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_error(struct nem_disk *d, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(d->err, sizeof(d->err), fmt, ap);
    va_end(ap);
    return rc;
}

static void *grow(void *array, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap ? *cap : 8;

    if (need <= *cap)
        return array;
    while (n < need)
        n *= 2;
    void *p = realloc(array, n * elem);
    if (p != NULL)
        *cap = n;
    return p;
}

static int pread_all(int fd, char *buf, size_t len, off_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (int)(done == len ? 0 : -EIO);
}

static int pwrite_all(int fd, const char *buf, size_t len, off_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pwrite(fd, buf + done, len - done, off + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return 0;
}

static void free_data_op(struct data_op *op)
{
    free(op->data);
    free(op->old);
}

static void free_dir_op(struct dir_op *op, bool remove_stash)
{
    if (remove_stash && op->stash != NULL)
        (void)unlink(op->stash);
    free(op->path);
    free(op->path2);
    free(op->stash);
}

static struct tracked_file *find_file(struct nem_disk *d, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < d->n_files; i++)
        if (d->files[i].dev == dev && d->files[i].ino == ino)
            return &d->files[i];
    return NULL;
}

static void drop_file(struct nem_disk *d, struct tracked_file *f)
{
    for (size_t i = 0; i < f->n_ops; i++)
        free_data_op(&f->ops[i]);
    free(f->ops);
    close(f->fd);
    *f = d->files[--d->n_files];
}

/*
 * Returns the tracked file for the inode that open_path names (a path, or
 * /proc/PID/fd/N for a descriptor of the program), opening a descriptor of
 * our own on it the first time. NULL with d->err set on failure.
 */
static struct tracked_file *
track_file(struct nem_disk *d, const char *open_path, const struct stat *st)
{
    struct tracked_file *f = find_file(d, st->st_dev, st->st_ino);
    struct stat check;
    int fd;

    if (f != NULL)
        return f;
    fd = open(open_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP)
        fd = open(open_path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        set_error(d, -errno, "cannot open %s to save its old bytes: %s",
                  open_path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &check) != 0 || check.st_ino != st->st_ino ||
        check.st_dev != st->st_dev) {
        close(fd);
        set_error(d, -ESTALE, "%s changed while it was being opened",
                  open_path);
        return NULL;
    }
    struct tracked_file *files =
        grow(d->files, &d->cap_files, d->n_files + 1, sizeof(*files));
    if (files == NULL) {
        close(fd);
        set_error(d, -ENOMEM, "out of memory tracking %s", open_path);
        return NULL;
    }
    d->files = files;
    f = &d->files[d->n_files++];
    memset(f, 0, sizeof(*f));
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->fd = fd;
    return f;
}

/*
 * Appends a change to f's log, saving the old size and the old bytes of
 * [save_from, save_to) that exist. NULL with d->err set on failure.
 */
static struct data_op *record_data(struct nem_disk *d, struct tracked_file *f,
                                   enum data_kind kind, off_t save_from,
                                   off_t save_to)
{
    struct stat st;
    struct data_op *op;

    if (fstat(f->fd, &st) != 0) {
        set_error(d, -errno, "fstat of a tracked file: %s", strerror(errno));
        return NULL;
    }
    struct data_op *ops = grow(f->ops, &f->cap_ops, f->n_ops + 1, sizeof(*ops));
    if (ops == NULL) {
        set_error(d, -ENOMEM, "out of memory for the undo log");
        return NULL;
    }
    f->ops = ops;
    op = &f->ops[f->n_ops];
    memset(op, 0, sizeof(*op));
    /* NOTE: saved bytes stay in memory until the file is fsynced, with no
     * limit, so a program that rewrites a large file without syncing
     * grows the supervisor by as much. */
    op->seq = ++d->seq;
    op->kind = kind;
    op->old_size = st.st_size;
    if (save_to > st.st_size)
        save_to = st.st_size;
    if (save_from < save_to) {
        op->old_off = save_from;
        op->old_len = (size_t)(save_to - save_from);
        op->old = malloc(op->old_len);
        if (op->old == NULL) {
            set_error(d, -ENOMEM, "out of memory saving %zu old bytes",
                      op->old_len);
            return NULL;
        }
        int rc = pread_all(f->fd, op->old, op->old_len, save_from);
        if (rc != 0) {
            free(op->old);
            set_error(d, rc, "cannot read old bytes of a tracked file: %s",
                      strerror(-rc));
            return NULL;
        }
    }
    f->n_ops++;
    return op;
}

/* Forgets the newest change of f, whose system call failed. */
static void unrecord_data(struct nem_disk *d, struct tracked_file *f)
{
    free_data_op(&f->ops[--f->n_ops]);
    if (f->n_ops == 0)
        drop_file(d, f);
}

static struct dir_op *record_dir(struct nem_disk *d, enum dir_kind kind,
                                 const char *path, const char *path2)
{
    struct dir_op *dirs =
        grow(d->dirs, &d->cap_dirs, d->n_dirs + 1, sizeof(*dirs));
    struct dir_op *op;

    if (dirs == NULL)
        return NULL;
    d->dirs = dirs;
    op = &d->dirs[d->n_dirs];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->path = strdup(path);
    op->path2 = path2 != NULL ? strdup(path2) : NULL;
    if (op->path == NULL || (path2 != NULL && op->path2 == NULL)) {
        free(op->path);
        free(op->path2);
        return NULL;
    }
    d->n_dirs++;
    return op;
}

static void add_parent(struct dir_op *op, const char *path)
{
    char dir[PATH_MAX];
    struct stat st;
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        return;
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (stat(dir, &st) != 0)
        return;
    for (int i = 0; i < op->n_parents; i++)
        if (op->parent_dev[i] == st.st_dev && op->parent_ino[i] == st.st_ino)
            return;
    op->parent_dev[op->n_parents] = st.st_dev;
    op->parent_ino[op->n_parents] = st.st_ino;
    op->n_parents++;
}

/* A successful fsync of the directory dev/ino: its entries are durable. */
static void dir_synced(struct nem_disk *d, dev_t dev, ino_t ino)
{
    size_t kept = 0;

    for (size_t i = 0; i < d->n_dirs; i++) {
        struct dir_op *op = &d->dirs[i];

        for (int p = 0; p < op->n_parents; p++)
            if (op->parent_dev[p] == dev && op->parent_ino[p] == ino)
                op->synced |= 1u << p;
        if (op->synced == (1u << op->n_parents) - 1u)
            free_dir_op(op, true);
        else
            d->dirs[kept++] = *op;
    }
    d->n_dirs = kept;
}

/* Hard-links the file at path into the stash and returns the stash name,
 * or NULL with d->err set. The file stays in place for the rename or
 * unlink that follows. */
static char *stash_file(struct nem_disk *d, const char *path)
{
    char name[PATH_MAX + 16];

    snprintf(name, sizeof(name), "%s/%u", d->stash_dir, ++d->stash_seq);
    (void)unlink(name);
    if (link(path, name) != 0) {
        set_error(d, -errno, "cannot stash %s as %s: %s", path, name,
                  strerror(errno));
        return NULL;
    }
    char *copy = strdup(name);
    if (copy == NULL) {
        (void)unlink(name);
        set_error(d, -ENOMEM, "out of memory stashing %s", path);
    }
    return copy;
}

/* ---- rollback ------------------------------------------------------------ */

static int undo_step(struct nem_disk *d, int rc, const char *what,
                     const char *path)
{
    if (rc == 0)
        return 0;
    d->stats.undo_errors++;
    FL_LOG_ERRORF(COMP, "undo step failed", "step=%s path=%s error=\"%s\"",
                  what, path, strerror(errno));
    return set_error(d, -errno, "undo of %s on %s failed: %s", what, path,
                     strerror(errno));
}

static int undo_dir(struct nem_disk *d, const struct dir_op *op)
{
    int rc = 0;

    switch (op->kind) {
    case DIR_CREATE:
        if (unlink(op->path) != 0 && errno != ENOENT)
            rc = undo_step(d, -1, "create", op->path);
        break;
    case DIR_UNLINK:
        rc = undo_step(d, rename(op->stash, op->path), "unlink", op->path);
        break;
    case DIR_RMDIR:
        if (mkdir(op->path, op->mode) != 0 && errno != EEXIST)
            rc = undo_step(d, -1, "rmdir", op->path);
        break;
    case DIR_RENAME:
        if (op->flags & RENAME_EXCHANGE) {
            rc = undo_step(d,
                           renameat2(AT_FDCWD, op->path2, AT_FDCWD, op->path,
                                     RENAME_EXCHANGE),
                           "rename", op->path2);
            break;
        }
        rc = undo_step(d, rename(op->path2, op->path), "rename", op->path2);
        if (rc == 0 && op->stash != NULL)
            rc =
                undo_step(d, rename(op->stash, op->path2), "rename", op->path2);
        else if (rc == 0 && op->replaced_dir)
            rc = undo_step(d, mkdir(op->path2, op->mode), "rename", op->path2);
        break;
    }
    return rc;
}

static int undo_data(struct nem_disk *d, const struct tracked_file *f,
                     const struct data_op *op)
{
    int rc = 0;

    if (op->old_len > 0)
        rc = pwrite_all(f->fd, op->old, op->old_len, op->old_off);
    if (rc == 0 && ftruncate(f->fd, op->old_size) != 0)
        rc = -errno;
    if (rc != 0) {
        errno = -rc;
        return undo_step(d, -1, "write", "(tracked file)");
    }
    return 0;
}

static int redo_data(struct nem_disk *d, const struct tracked_file *f,
                     const struct data_op *op)
{
    int rc = 0;

    switch (op->kind) {
    case DATA_WRITE:
        rc = pwrite_all(f->fd, op->data, op->data_len, op->off);
        break;
    case DATA_TRUNCATE:
        if (ftruncate(f->fd, op->new_size) != 0)
            rc = -errno;
        break;
    case DATA_FALLOCATE:
        if (fallocate(f->fd, op->mode, op->off, op->len) != 0)
            rc = -errno;
        break;
    }
    if (rc != 0) {
        errno = -rc;
        return undo_step(d, -1, "redo", "(tracked file)");
    }
    return 0;
}

struct op_ref {
    struct tracked_file *file;
    struct data_op *op;
};

static int by_seq(const void *a, const void *b)
{
    const struct op_ref *x = a, *y = b;

    return (x->op->seq > y->op->seq) - (x->op->seq < y->op->seq);
}

/* Collects every data change, oldest first, into a new array. */
static struct op_ref *sorted_ops(struct nem_disk *d, size_t *n)
{
    size_t total = 0, k = 0;
    struct op_ref *refs;

    for (size_t i = 0; i < d->n_files; i++)
        total += d->files[i].n_ops;
    refs = calloc(total ? total : 1, sizeof(*refs));
    if (refs == NULL)
        return NULL;
    for (size_t i = 0; i < d->n_files; i++)
        for (size_t j = 0; j < d->files[i].n_ops; j++) {
            refs[k].file = &d->files[i];
            refs[k].op = &d->files[i].ops[j];
            k++;
        }
    qsort(refs, total, sizeof(*refs), by_seq);
    *n = total;
    return refs;
}

/*
 * Undoes every change in the log, newest first, then applies again the
 * durable data changes and those whose index among the others is set in
 * keep (NULL: none), oldest first, and empties the log. Every step runs
 * even after one failed; returns the first failure.
 */
static int rollback(struct nem_disk *d, const bool *keep)
{
    struct op_ref *refs;
    size_t n = 0, index = 0;
    int rc = 0;

    refs = sorted_ops(d, &n);
    if (refs == NULL)
        return set_error(d, -ENOMEM, "out of memory for a rollback");
    for (size_t i = d->n_dirs; i-- > 0;) {
        int step = undo_dir(d, &d->dirs[i]);
        rc = rc ? rc : step;
    }
    for (size_t i = n; i-- > 0;) {
        int step = undo_data(d, refs[i].file, refs[i].op);
        rc = rc ? rc : step;
    }
    for (size_t i = 0; i < n; i++) {
        bool again = refs[i].op->durable;

        if (!refs[i].op->durable)
            again = keep != NULL && keep[index++];
        if (again) {
            int step = redo_data(d, refs[i].file, refs[i].op);
            rc = rc ? rc : step;
        }
    }
    free(refs);
    for (size_t i = 0; i < d->n_dirs; i++)
        free_dir_op(&d->dirs[i], true);
    d->n_dirs = 0;
    while (d->n_files > 0)
        drop_file(d, &d->files[d->n_files - 1]);
    d->stats.rollbacks++;
    return rc;
}

/* ---- faults -------------------------------------------------------------- */

/*
 * Counts a call of one of the fault kinds in kinds (bit per kind) on rel
 * (or rel2) against every armed fault, and returns the first fault that
 * fires on it, or NULL. op is a NEM_DISK_OP_* bit for crash faults.
 */
static struct armed_fault *fault_hit(struct nem_disk *d, unsigned kinds,
                                     unsigned op, const char *rel,
                                     const char *rel2)
{
    struct armed_fault *fired = NULL;

    for (size_t i = 0; i < d->n_faults; i++) {
        struct armed_fault *a = &d->faults[i];
        enum nem_disk_fault_kind kind = a->fault.kind;
        bool crash =
            kind == NEM_DISK_CRASH_BEFORE || kind == NEM_DISK_CRASH_AFTER;

        if (a->done || !(kinds & (1u << kind)))
            continue;
        if (crash && !(a->fault.crash_ops & op))
            continue;
        if (a->pattern[0] != '\0' && fnmatch(a->pattern, rel, 0) != 0 &&
            (rel2 == NULL || fnmatch(a->pattern, rel2, 0) != 0))
            continue;
        a->seen++;
        if (a->fault.nth != 0 && a->seen != a->fault.nth)
            continue;
        if (fired != NULL)
            continue;
        fired = a;
        /* A kill ends the program, so such faults fire once. */
        if (a->fault.nth != 0 || crash || kind == NEM_DISK_TORN_WRITE)
            a->done = true;
        d->stats.faults_fired++;
    }
    return fired;
}

#define KIND(k) (1u << (k))

/* SIGKILLs the program's process group and waits until the program is
 * a zombie, without reaping it, so its pid stays reserved. */
static void kill_program(struct nem_disk *d)
{
    siginfo_t info;

    if (d->pid <= 0)
        return;
    (void)kill(-d->pid, SIGKILL);
    (void)syscall(SYS_pidfd_send_signal, d->pidfd, SIGKILL, NULL, 0);
    memset(&info, 0, sizeof(info));
    while (waitid(P_PIDFD, (id_t)d->pidfd, &info, WEXITED | WNOWAIT) != 0 &&
           errno == EINTR) {
    }
}

/* ---- reading the program's state ---------------------------------------- */

static pid_t tgid_of(struct nem_disk *d, pid_t tid)
{
    char path[64], line[256];
    pid_t tgid = 0;
    FILE *f;

    if (tid == d->pid)
        return tid;
    /* Most calls come from the program's own threads, and looking up one
     * task directory costs far less than having /proc build a status
     * file. Descendants it forked take the long way. */
    snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)d->pid, (int)tid);
    if (access(path, F_OK) == 0)
        return d->pid;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Tgid: %d", &tgid) == 1)
            break;
    fclose(f);
    return tgid;
}

static int read_link(const char *link, char *buf, size_t size)
{
    ssize_t n = readlink(link, buf, size - 1);

    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return 0;
}

/* The path under the data directory that abs names, or NULL. A deleted
 * file's " (deleted)" suffix is cut. */
static const char *relative(struct nem_disk *d, char *abs)
{
    static const char deleted[] = " (deleted)";
    size_t len = strlen(abs);

    if (len > sizeof(deleted) - 1 &&
        strcmp(abs + len - (sizeof(deleted) - 1), deleted) == 0)
        abs[len - (sizeof(deleted) - 1)] = '\0';
    if (strncmp(abs, d->data_dir, d->data_len) != 0 || abs[d->data_len] != '/')
        return NULL;
    return abs + d->data_len + 1;
}

static int read_memory(pid_t tid, uint64_t addr, void *buf, size_t len)
{
    struct iovec local = {buf, len};
    struct iovec remote = {(void *)(uintptr_t)addr, len};
    ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);

    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EFAULT;
}

/* Reads a NUL-terminated path, a page at a time so that a string ending
 * just before an unmapped page is still read. */
static int read_path(pid_t tid, uint64_t addr, char *buf, size_t size)
{
    size_t done = 0;

    while (done < size) {
        size_t page_left = 4096 - ((addr + done) & 4095);
        size_t chunk = page_left < size - done ? page_left : size - done;
        int rc = read_memory(tid, addr + done, buf + done, chunk);
        if (rc != 0)
            return rc;
        if (memchr(buf + done, '\0', chunk) != NULL)
            return 0;
        done += chunk;
    }
    return -ENAMETOOLONG;
}

/*
 * Turns the program's (dirfd, path) into an absolute path whose directory
 * part has no symbolic links, as the kernel would resolve it. The last
 * component stays as it is, since rename and unlink act on a link itself.
 */
static int resolve(pid_t tgid, int dirfd, const char *path, char *abs,
                   size_t size)
{
    char joined[2 * PATH_MAX], base[PATH_MAX], real[PATH_MAX];
    char link[64];
    char *slash, *name;
    size_t len;
    int rc;

    if (path[0] == '/') {
        snprintf(joined, sizeof(joined), "%s", path);
    } else {
        if (dirfd == AT_FDCWD)
            snprintf(link, sizeof(link), "/proc/%d/cwd", (int)tgid);
        else
            snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)tgid, dirfd);
        rc = read_link(link, base, sizeof(base));
        if (rc != 0)
            return rc;
        snprintf(joined, sizeof(joined), "%s/%s", base, path);
    }
    len = strlen(joined);
    while (len > 1 && joined[len - 1] == '/')
        joined[--len] = '\0';
    slash = strrchr(joined, '/');
    if (slash == NULL)
        return -EINVAL;
    name = slash + 1;
    if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return -EINVAL;
    *slash = '\0';
    if (realpath(joined[0] ? joined : "/", real) == NULL)
        return -errno;
    if (snprintf(abs, size, "%s/%s", strcmp(real, "/") == 0 ? "" : real,
                 name) >= (int)size)
        return -ENAMETOOLONG;
    return 0;
}

/* ---- handlers ------------------------------------------------------------ */

enum action { RESPOND, HELD };

static enum action fail_call(struct seccomp_notif_resp *resp, int error)
{
    resp->flags = 0;
    resp->val = -1;
    resp->error = -error;
    return RESPOND;
}

static enum action succeed(struct seccomp_notif_resp *resp, int64_t val)
{
    resp->flags = 0;
    resp->val = val;
    resp->error = 0;
    return RESPOND;
}

/* Stops everything after a failure to track: the program must not go on
 * with changes the log does not hold. */
static enum action fatal(struct nem_disk *d)
{
    FL_LOG_ERRORF(COMP, "supervisor failed, killing the program",
                  "pid=%d error=\"%s\"", (int)d->pid, d->err);
    d->fatal = true;
    kill_program(d);
    return HELD;
}

static enum action crash(struct nem_disk *d, bool lose)
{
    kill_program(d);
    if (lose)
        (void)rollback(d, NULL);
    return HELD;
}

/* Ends a call the supervisor performed (rc: 0 or an errno value), and
 * crashes the program when an armed CRASH_AFTER fault requests it. */
static enum action finish(struct nem_disk *d, const struct armed_fault *fault,
                          int rc, struct seccomp_notif_resp *resp)
{
    if (fault != NULL && fault->fault.kind == NEM_DISK_CRASH_AFTER)
        return crash(d, fault->fault.lose_unsynced);
    return rc == 0 ? succeed(resp, 0) : fail_call(resp, rc);
}

/* A descriptor of the program's, resolved: its path, the path relative to
 * the data directory (NULL when outside), and the inode's status. */
struct prog_fd {
    pid_t tgid;
    int fd;
    char link[64];
    char path[PATH_MAX];
    const char *rel;
    struct stat st;
};

static int resolve_fd(struct nem_disk *d, pid_t tid, int fd,
                      struct prog_fd *out)
{
    out->tgid = tgid_of(d, tid);
    out->fd = fd;
    out->rel = NULL;
    if (out->tgid <= 0)
        return -ESRCH;
    snprintf(out->link, sizeof(out->link), "/proc/%d/fd/%d", (int)out->tgid,
             fd);
    if (read_link(out->link, out->path, sizeof(out->path)) != 0)
        return -EBADF;
    out->rel = relative(d, out->path);
    if (out->rel != NULL && stat(out->link, &out->st) != 0)
        out->rel = NULL;
    return 0;
}

/* A copy of the program's descriptor sharing its open file description
 * (offset and flags), or -1 with d->err set. */
static int copy_fd(struct nem_disk *d, const struct prog_fd *pf)
{
    int pidfd = pf->tgid == d->pid ? d->pidfd : pidfd_open_(pf->tgid);
    int fd;

    if (pidfd < 0) {
        set_error(d, -errno, "pidfd_open %d: %s", (int)pf->tgid,
                  strerror(errno));
        return -1;
    }
    fd = pidfd_getfd_(pidfd, pf->fd);
    if (fd < 0)
        set_error(d, -errno, "pidfd_getfd %d of %d: %s", pf->fd, (int)pf->tgid,
                  strerror(errno));
    if (pidfd != d->pidfd)
        close(pidfd);
    return fd;
}

/* Reads the bytes a write system call passes, capped at MAX_WRITE. */
static int gather(const struct seccomp_notif *req, char **out, size_t *len)
{
    int nr = req->data.nr;
    pid_t tid = (pid_t)req->pid;
    struct iovec iov[IOV_MAX];
    size_t total = 0, count;
    int rc;

    if (nr == SYS_write || nr == SYS_pwrite64) {
        iov[0].iov_base = (void *)(uintptr_t)req->data.args[1];
        iov[0].iov_len = (size_t)req->data.args[2];
        count = 1;
    } else {
        count = (size_t)req->data.args[2];
        if (count > IOV_MAX)
            return -EINVAL;
        rc = read_memory(tid, req->data.args[1], iov, count * sizeof(*iov));
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < count; i++) {
        if (iov[i].iov_len > MAX_WRITE - total)
            iov[i].iov_len = MAX_WRITE - total;
        total += iov[i].iov_len;
    }
    *out = malloc(total ? total : 1);
    if (*out == NULL)
        return -ENOMEM;
    *len = total;
    for (size_t i = 0, at = 0; i < count; at += iov[i].iov_len, i++) {
        rc = read_memory(tid, (uint64_t)(uintptr_t)iov[i].iov_base, *out + at,
                         iov[i].iov_len);
        if (rc != 0) {
            free(*out);
            *out = NULL;
            return rc;
        }
    }
    return 0;
}

/* Persists the parts of a torn write that sector_mask or keep_bytes keep,
 * through our descriptor on the file. */
static void write_torn_parts(struct nem_disk *d, int fd,
                             const struct nem_disk_fault *fault,
                             const char *data, size_t len, off_t off)
{
    if (fault->sector_mask == 0) {
        size_t keep = fault->keep_bytes < len ? fault->keep_bytes : len;
        (void)undo_step(d, pwrite_all(fd, data, keep, off), "torn write",
                        "(tracked file)");
        return;
    }
    off_t end = off + (off_t)len;
    off_t first = off / NEM_DISK_SECTOR;
    for (off_t s = first; s * NEM_DISK_SECTOR < end && s - first < 64; s++) {
        off_t from = s * NEM_DISK_SECTOR > off ? s * NEM_DISK_SECTOR : off;
        off_t to =
            (s + 1) * NEM_DISK_SECTOR < end ? (s + 1) * NEM_DISK_SECTOR : end;

        if (!(fault->sector_mask & (1ull << (s - first))))
            continue;
        (void)undo_step(
            d, pwrite_all(fd, data + (from - off), (size_t)(to - from), from),
            "torn write", "(tracked file)");
    }
}

static enum action handle_write(struct nem_disk *d,
                                const struct seccomp_notif *req,
                                struct seccomp_notif_resp *resp)
{
    int nr = req->data.nr;
    struct prog_fd pf;
    struct armed_fault *fault;
    struct tracked_file *f;
    struct data_op *op;
    char *data = NULL;
    size_t len = 0;
    int rwf = 0, dup_fd, flags, rc;
    bool positional = nr == SYS_pwrite64 || nr == SYS_pwritev;
    off_t off = 0;
    ssize_t n;

    if (resolve_fd(d, (pid_t)req->pid, (int)req->data.args[0], &pf) != 0 ||
        pf.rel == NULL || !S_ISREG(pf.st.st_mode))
        return RESPOND; /* continue */
    if (nr == SYS_pwrite64 || nr == SYS_pwritev)
        off = (off_t)req->data.args[3];
    if (nr == SYS_pwritev2) {
        off = (off_t)req->data.args[3];
        positional = off != -1;
        rwf = (int)req->data.args[5];
    }
    rc = gather(req, &data, &len);
    if (rc != 0)
        return fail_call(resp, rc == -ENOMEM ? ENOMEM : EFAULT);
    /* The thread may have died and its id been reused while we read. */
    if (ioctl(d->notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) != 0) {
        free(data);
        return RESPOND;
    }

    fault = fault_hit(d,
                      KIND(NEM_DISK_WRITE_EIO) | KIND(NEM_DISK_WRITE_ENOSPC) |
                          KIND(NEM_DISK_TORN_WRITE),
                      0, pf.rel, NULL);
    if (fault != NULL && fault->fault.kind != NEM_DISK_TORN_WRITE) {
        free(data);
        return fail_call(
            resp, fault->fault.kind == NEM_DISK_WRITE_EIO ? EIO : ENOSPC);
    }

    dup_fd = copy_fd(d, &pf);
    if (dup_fd < 0) {
        free(data);
        return fatal(d);
    }
    flags = fcntl(dup_fd, F_GETFL);
    if ((flags & O_APPEND) || (rwf & RWF_APPEND))
        off = pf.st.st_size;
    else if (!positional)
        off = lseek(dup_fd, 0, SEEK_CUR);
    f = track_file(d, pf.link, &pf.st);
    if (f == NULL) {
        close(dup_fd);
        free(data);
        return fatal(d);
    }
    if (fault != NULL) {
        /* Torn write: the program dies in the middle of it, and only the
         * kept parts of it reach the disk before the power fails. */
        int keep_fd = dup(f->fd);

        close(dup_fd);
        kill_program(d);
        (void)rollback(d, NULL);
        if (keep_fd >= 0) {
            write_torn_parts(d, keep_fd, &fault->fault, data, len, off);
            close(keep_fd);
        }
        free(data);
        return HELD;
    }
    op = record_data(d, f, DATA_WRITE, off, off + (off_t)len);
    if (op == NULL) {
        close(dup_fd);
        free(data);
        return fatal(d);
    }

    op->off = off;
    op->data = data;
    op->data_len = len;
    op->durable =
        (flags & (O_SYNC | O_DSYNC)) || (rwf & (RWF_SYNC | RWF_DSYNC));
    struct iovec iov = {data, len};
    n = pwritev2(dup_fd, &iov, 1, positional ? off : -1, rwf);
    rc = n < 0 ? errno : 0;
    close(dup_fd);
    d->stats.performed++;
    if (n < 0) {
        unrecord_data(d, f);
        return fail_call(resp, rc);
    }
    op->data_len = (size_t)n;
    d->stats.tracked_bytes += (uint64_t)n;
    return succeed(resp, n);
}

static enum action handle_fsync(struct nem_disk *d,
                                const struct seccomp_notif *req,
                                struct seccomp_notif_resp *resp)
{
    struct prog_fd pf;
    struct armed_fault *fault;
    bool is_dir;
    int dup_fd, rc;

    if (resolve_fd(d, (pid_t)req->pid, (int)req->data.args[0], &pf) != 0)
        return RESPOND;
    is_dir = pf.rel == NULL && strcmp(pf.path, d->data_dir) == 0;
    if (is_dir) {
        if (stat(pf.link, &pf.st) != 0)
            return RESPOND;
        pf.rel = "";
    }
    if (pf.rel == NULL)
        return RESPOND;
    is_dir = S_ISDIR(pf.st.st_mode);

    fault = fault_hit(d,
                      KIND(NEM_DISK_FSYNC_EIO) | KIND(NEM_DISK_CRASH_BEFORE) |
                          KIND(NEM_DISK_CRASH_AFTER),
                      NEM_DISK_OP_FSYNC, pf.rel, NULL);
    if (fault != NULL && fault->fault.kind == NEM_DISK_FSYNC_EIO)
        return fail_call(resp, EIO);
    if (fault != NULL && fault->fault.kind == NEM_DISK_CRASH_BEFORE)
        return crash(d, fault->fault.lose_unsynced);

    dup_fd = copy_fd(d, &pf);
    if (dup_fd < 0)
        return fatal(d);
    rc = (req->data.nr == SYS_fsync ? fsync(dup_fd) : fdatasync(dup_fd)) == 0
             ? 0
             : errno;
    close(dup_fd);
    d->stats.performed++;
    if (rc == 0 && is_dir) {
        dir_synced(d, pf.st.st_dev, pf.st.st_ino);
    } else if (rc == 0) {
        struct tracked_file *f = find_file(d, pf.st.st_dev, pf.st.st_ino);
        if (f != NULL)
            drop_file(d, f);
    }
    return finish(d, fault, rc, resp);
}

static enum action handle_resize(struct nem_disk *d,
                                 const struct seccomp_notif *req,
                                 struct seccomp_notif_resp *resp)
{
    struct prog_fd pf;
    struct tracked_file *f;
    struct data_op *op;
    int dup_fd, rc;
    bool is_truncate = req->data.nr == SYS_ftruncate;
    off_t save_from, save_to;

    if (resolve_fd(d, (pid_t)req->pid, (int)req->data.args[0], &pf) != 0 ||
        pf.rel == NULL || !S_ISREG(pf.st.st_mode))
        return RESPOND;
    save_to = pf.st.st_size;
    if (is_truncate) {
        save_from = (off_t)req->data.args[1];
    } else {
        int mode = (int)req->data.args[1];
        off_t off = (off_t)req->data.args[2], len = (off_t)req->data.args[3];

        save_from = off;
        if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
            save_to = off + len;
        else if (!(mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)))
            save_from = save_to; /* only allocates: no bytes change */
    }
    if (save_from < 0)
        return fail_call(resp, EINVAL);
    dup_fd = copy_fd(d, &pf);
    if (dup_fd < 0)
        return fatal(d);
    f = track_file(d, pf.link, &pf.st);
    op = f != NULL
             ? record_data(d, f, is_truncate ? DATA_TRUNCATE : DATA_FALLOCATE,
                           save_from, save_to)
             : NULL;
    if (op == NULL) {
        close(dup_fd);
        return fatal(d);
    }
    if (is_truncate) {
        op->new_size = (off_t)req->data.args[1];
        rc = ftruncate(dup_fd, op->new_size) == 0 ? 0 : errno;
    } else {
        op->mode = (int)req->data.args[1];
        op->off = (off_t)req->data.args[2];
        op->len = (off_t)req->data.args[3];
        rc = fallocate(dup_fd, op->mode, op->off, op->len) == 0 ? 0 : errno;
    }
    close(dup_fd);
    d->stats.performed++;
    if (rc != 0) {
        unrecord_data(d, f);
        return fail_call(resp, rc);
    }
    return succeed(resp, 0);
}

/* Open with O_CREAT or O_TRUNC: records a new name or the truncated bytes,
 * then lets the kernel open the file. */
static enum action handle_open(struct nem_disk *d,
                               const struct seccomp_notif *req)
{
    int nr = req->data.nr;
    pid_t tgid = tgid_of(d, (pid_t)req->pid);
    char path[PATH_MAX], abs[PATH_MAX];
    int dirfd = AT_FDCWD, flags;
    uint64_t path_addr;
    struct stat st;

    if (nr == SYS_openat) {
        dirfd = (int)req->data.args[0];
        path_addr = req->data.args[1];
        flags = (int)req->data.args[2];
    } else {
        path_addr = req->data.args[0];
        flags = nr == SYS_creat ? O_CREAT | O_WRONLY | O_TRUNC
                                : (int)req->data.args[1];
    }
    if (tgid <= 0 ||
        read_path((pid_t)req->pid, path_addr, path, sizeof(path)) != 0 ||
        resolve(tgid, dirfd, path, abs, sizeof(abs)) != 0 ||
        relative(d, abs) == NULL)
        return RESPOND;
    if (ioctl(d->notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) != 0)
        return RESPOND;

    if (lstat(abs, &st) != 0) {
        if (errno == ENOENT && (flags & O_CREAT)) {
            struct dir_op *op = record_dir(d, DIR_CREATE, abs, NULL);
            if (op == NULL) {
                set_error(d, -ENOMEM, "out of memory for the undo log");
                return fatal(d);
            }
            add_parent(op, abs);
        }
        return RESPOND;
    }
    if ((flags & O_TRUNC) && S_ISREG(st.st_mode) && st.st_size > 0) {
        struct tracked_file *f = track_file(d, abs, &st);
        struct data_op *op =
            f != NULL ? record_data(d, f, DATA_TRUNCATE, 0, st.st_size) : NULL;
        if (op == NULL)
            return fatal(d);
        op->new_size = 0;
    }
    return RESPOND;
}

static enum action handle_unlink(struct nem_disk *d,
                                 const struct seccomp_notif *req,
                                 struct seccomp_notif_resp *resp)
{
    pid_t tgid = tgid_of(d, (pid_t)req->pid);
    char path[PATH_MAX], abs[PATH_MAX];
    int dirfd = AT_FDCWD, flags = 0, rc;
    uint64_t path_addr = req->data.args[0];
    struct armed_fault *fault;
    struct dir_op *op;
    char *stash = NULL;
    const char *rel;
    struct stat st;

    if (req->data.nr == SYS_unlinkat) {
        dirfd = (int)req->data.args[0];
        path_addr = req->data.args[1];
        flags = (int)req->data.args[2];
    }
    if (tgid <= 0 ||
        read_path((pid_t)req->pid, path_addr, path, sizeof(path)) != 0 ||
        resolve(tgid, dirfd, path, abs, sizeof(abs)) != 0 ||
        (rel = relative(d, abs)) == NULL)
        return RESPOND;
    if (ioctl(d->notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) != 0)
        return RESPOND;
    if (lstat(abs, &st) != 0)
        return RESPOND; /* the kernel reports the error */

    fault =
        fault_hit(d, KIND(NEM_DISK_CRASH_BEFORE) | KIND(NEM_DISK_CRASH_AFTER),
                  NEM_DISK_OP_UNLINK, rel, NULL);
    if (fault != NULL && fault->fault.kind == NEM_DISK_CRASH_BEFORE)
        return crash(d, fault->fault.lose_unsynced);

    if (!(flags & AT_REMOVEDIR) && !S_ISDIR(st.st_mode)) {
        stash = stash_file(d, abs);
        if (stash == NULL)
            return fatal(d);
    }
    /* NOTE: performed with the supervisor's credentials, so a supervisor
     * running as root may remove what the program could not. */
    rc = unlinkat(AT_FDCWD, abs, flags) == 0 ? 0 : errno;
    d->stats.performed++;
    if (rc != 0) {
        if (stash != NULL)
            (void)unlink(stash);
        free(stash);
    } else {
        op = record_dir(d, (flags & AT_REMOVEDIR) ? DIR_RMDIR : DIR_UNLINK, abs,
                        NULL);
        if (op == NULL) {
            free(stash);
            set_error(d, -ENOMEM, "out of memory for the undo log");
            return fatal(d);
        }
        op->stash = stash;
        op->mode = st.st_mode & 07777;
        add_parent(op, abs);
    }
    return finish(d, fault, rc, resp);
}

static enum action handle_rename(struct nem_disk *d,
                                 const struct seccomp_notif *req,
                                 struct seccomp_notif_resp *resp)
{
    int nr = req->data.nr;
    pid_t tid = (pid_t)req->pid, tgid = tgid_of(d, tid);
    char from[PATH_MAX], to[PATH_MAX], abs_from[PATH_MAX], abs_to[PATH_MAX];
    int from_dirfd = AT_FDCWD, to_dirfd = AT_FDCWD;
    uint64_t from_addr = req->data.args[0], to_addr = req->data.args[1];
    unsigned flags = 0;
    const char *rel_from, *rel_to;
    struct armed_fault *fault;
    struct dir_op *op;
    char *stash = NULL;
    bool replaced_dir = false;
    mode_t replaced_mode = 0;
    struct stat st;
    int rc;

    if (nr != SYS_rename) {
        from_dirfd = (int)req->data.args[0];
        from_addr = req->data.args[1];
        to_dirfd = (int)req->data.args[2];
        to_addr = req->data.args[3];
        if (nr == SYS_renameat2)
            flags = (unsigned)req->data.args[4];
    }
    if (tgid <= 0 || read_path(tid, from_addr, from, sizeof(from)) != 0 ||
        read_path(tid, to_addr, to, sizeof(to)) != 0 ||
        resolve(tgid, from_dirfd, from, abs_from, sizeof(abs_from)) != 0 ||
        resolve(tgid, to_dirfd, to, abs_to, sizeof(abs_to)) != 0)
        return RESPOND;
    char rel_buf_from[PATH_MAX], rel_buf_to[PATH_MAX];
    snprintf(rel_buf_from, sizeof(rel_buf_from), "%s", abs_from);
    snprintf(rel_buf_to, sizeof(rel_buf_to), "%s", abs_to);
    rel_from = relative(d, rel_buf_from);
    rel_to = relative(d, rel_buf_to);
    if (rel_from == NULL && rel_to == NULL)
        return RESPOND;
    if (ioctl(d->notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) != 0)
        return RESPOND;

    fault =
        fault_hit(d, KIND(NEM_DISK_CRASH_BEFORE) | KIND(NEM_DISK_CRASH_AFTER),
                  NEM_DISK_OP_RENAME, rel_from ? rel_from : "", rel_to);
    if (fault != NULL && fault->fault.kind == NEM_DISK_CRASH_BEFORE)
        return crash(d, fault->fault.lose_unsynced);

    if (!(flags & (RENAME_EXCHANGE | RENAME_NOREPLACE)) &&
        lstat(abs_to, &st) == 0 && strcmp(abs_from, abs_to) != 0) {
        if (S_ISDIR(st.st_mode)) {
            replaced_dir = true;
            replaced_mode = st.st_mode & 07777;
        } else {
            stash = stash_file(d, abs_to);
            if (stash == NULL)
                return fatal(d);
        }
    }
    rc =
        renameat2(AT_FDCWD, abs_from, AT_FDCWD, abs_to, flags) == 0 ? 0 : errno;
    d->stats.performed++;
    if (rc != 0) {
        if (stash != NULL)
            (void)unlink(stash);
        free(stash);
    } else {
        op = record_dir(d, DIR_RENAME, abs_from, abs_to);
        if (op == NULL) {
            free(stash);
            set_error(d, -ENOMEM, "out of memory for the undo log");
            return fatal(d);
        }
        op->stash = stash;
        op->flags = flags;
        op->replaced_dir = replaced_dir;
        op->mode = replaced_mode;
        add_parent(op, abs_from);
        add_parent(op, abs_to);
    }
    return finish(d, fault, rc, resp);
}

static enum action handle(struct nem_disk *d, const struct seccomp_notif *req,
                          struct seccomp_notif_resp *resp)
{
    enum action action = RESPOND;
    enum nem_disk_call call;

    memset(resp, 0, sizeof(*resp));
    resp->id = req->id;
    resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    switch (req->data.nr) {
    case SYS_write:
    case SYS_pwrite64:
    case SYS_writev:
    case SYS_pwritev:
    case SYS_pwritev2:
        call = NEM_DISK_CALL_WRITE;
        action = handle_write(d, req, resp);
        break;
    case SYS_fsync:
    case SYS_fdatasync:
        call = NEM_DISK_CALL_FSYNC;
        action = handle_fsync(d, req, resp);
        break;
    case SYS_ftruncate:
    case SYS_fallocate:
        call = NEM_DISK_CALL_RESIZE;
        action = handle_resize(d, req, resp);
        break;
    case SYS_open:
    case SYS_openat:
    case SYS_creat:
        call = NEM_DISK_CALL_OPEN;
        action = handle_open(d, req);
        break;
    case SYS_unlink:
    case SYS_unlinkat:
        call = NEM_DISK_CALL_UNLINK;
        action = handle_unlink(d, req, resp);
        break;
    case SYS_rename:
    case SYS_renameat:
    case SYS_renameat2:
        call = NEM_DISK_CALL_RENAME;
        action = handle_rename(d, req, resp);
        break;
    default: /* sync_file_range starts writeback but promises nothing */
        call = NEM_DISK_CALL_SYNC_RANGE;
        break;
    }
    d->stats.calls[call]++;
    if (action == RESPOND && resp->flags == SECCOMP_USER_NOTIF_FLAG_CONTINUE)
        d->stats.continued++;
    return action;
}

/* ---- the supervisor thread ----------------------------------------------- */

static void *supervise(void *arg)
{
    struct nem_disk *d = arg;
    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    struct pollfd fds[2];

    if (seccomp_notify_alloc(&req, &resp) != 0) {
        pthread_mutex_lock(&d->lock);
        set_error(d, -ENOMEM, "out of memory for notifications");
        fatal(d);
        pthread_mutex_unlock(&d->lock);
        return NULL;
    }
    fds[0] = (struct pollfd){.fd = d->notify_fd, .events = POLLIN};
    fds[1] = (struct pollfd){.fd = d->pidfd, .events = POLLIN};
    for (;;) {
        enum action action;

        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (!(fds[0].revents & POLLIN)) {
            if (fds[1].revents & POLLIN)
                break; /* the program exited: no notification can follow */
            continue;
        }
        /* The kernel rejects a receive buffer that is not zeroed. */
        memset(req, 0, sizeof(*req));
        if (ioctl(d->notify_fd, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
            if (errno == EINTR || errno == ENOENT)
                continue; /* the caller died before we got to it */
            pthread_mutex_lock(&d->lock);
            set_error(d, -errno, "receiving a seccomp notification: %s",
                      strerror(errno));
            fatal(d);
            pthread_mutex_unlock(&d->lock);
            break;
        }
        pthread_mutex_lock(&d->lock);
        action = handle(d, req, resp);
        bool stop = d->fatal;
        pthread_mutex_unlock(&d->lock);
        if (action == RESPOND &&
            ioctl(d->notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp) != 0 &&
            errno != ENOENT) {
            pthread_mutex_lock(&d->lock);
            set_error(d, -errno, "answering a seccomp notification: %s",
                      strerror(errno));
            fatal(d);
            pthread_mutex_unlock(&d->lock);
            break;
        }
        if (stop)
            break;
    }
    /* Descendants the program left would run on untracked once the
     * listener closes; the zombie program keeps its group id reserved. */
    pthread_mutex_lock(&d->lock);
    kill_program(d);
    pthread_mutex_unlock(&d->lock);
    seccomp_notify_free(req, resp);
    return NULL;
}

/* ---- starting the program ------------------------------------------------ */

static const int notified_calls[] = {
    SCMP_SYS(write),     SCMP_SYS(pwrite64),        SCMP_SYS(writev),
    SCMP_SYS(pwritev),   SCMP_SYS(pwritev2),        SCMP_SYS(fsync),
    SCMP_SYS(fdatasync), SCMP_SYS(sync_file_range), SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate), SCMP_SYS(rename),          SCMP_SYS(renameat),
    SCMP_SYS(renameat2), SCMP_SYS(unlink),          SCMP_SYS(unlinkat),
    SCMP_SYS(creat),
};

/* Builds the filter with libseccomp and exports it as BPF, which the
 * child loads with the raw system call: libseccomp 2.5.4 cannot set
 * SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV. */
static int build_filter(struct nem_disk *d)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc = 0, memfd = -1;
    off_t size;

    if (ctx == NULL)
        return set_error(d, -ENOMEM, "seccomp_init failed");
    for (size_t i = 0; i < sizeof(notified_calls) / sizeof(notified_calls[0]);
         i++)
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, notified_calls[i], 0);
    /* Opens matter only when they create or truncate. */
    if (rc == 0)
        rc = seccomp_rule_add(
            ctx, SCMP_ACT_NOTIFY, SCMP_SYS(openat), 1,
            SCMP_A2(SCMP_CMP_MASKED_EQ, (scmp_datum_t)O_CREAT, O_CREAT));
    if (rc == 0)
        rc = seccomp_rule_add(
            ctx, SCMP_ACT_NOTIFY, SCMP_SYS(openat), 1,
            SCMP_A2(SCMP_CMP_MASKED_EQ, (scmp_datum_t)O_TRUNC, O_TRUNC));
    if (rc == 0)
        rc = seccomp_rule_add(
            ctx, SCMP_ACT_NOTIFY, SCMP_SYS(open), 1,
            SCMP_A1(SCMP_CMP_MASKED_EQ, (scmp_datum_t)O_CREAT, O_CREAT));
    if (rc == 0)
        rc = seccomp_rule_add(
            ctx, SCMP_ACT_NOTIFY, SCMP_SYS(open), 1,
            SCMP_A1(SCMP_CMP_MASKED_EQ, (scmp_datum_t)O_TRUNC, O_TRUNC));
    if (rc != 0) {
        set_error(d, rc, "building the seccomp filter: %s", strerror(-rc));
        goto out;
    }
    memfd = memfd_create("fl-disk-filter", MFD_CLOEXEC);
    if (memfd < 0) {
        rc = set_error(d, -errno, "memfd_create: %s", strerror(errno));
        goto out;
    }
    rc = seccomp_export_bpf(ctx, memfd);
    if (rc != 0) {
        set_error(d, rc, "seccomp_export_bpf: %s", strerror(-rc));
        goto out;
    }
    size = lseek(memfd, 0, SEEK_END);
    d->prog.filter = malloc((size_t)size);
    if (size <= 0 || d->prog.filter == NULL) {
        rc = set_error(d, -ENOMEM, "exported filter of %lld bytes",
                       (long long)size);
        goto out;
    }
    rc = pread_all(memfd, (char *)d->prog.filter, (size_t)size, 0);
    if (rc != 0) {
        set_error(d, rc, "reading the exported filter: %s", strerror(-rc));
        goto out;
    }
    d->prog.len = (unsigned short)((size_t)size / sizeof(struct sock_filter));
out:
    if (memfd >= 0)
        close(memfd);
    seccomp_release(ctx);
    return rc;
}

static int send_fd(int sock, int fd)
{
    char control[CMSG_SPACE(sizeof(int))];
    char byte = 'f';
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {0};
    struct cmsghdr *cmsg;

    memset(control, 0, sizeof(control));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int receive_fd(int sock)
{
    char control[CMSG_SPACE(sizeof(int))];
    char byte;
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {0};
    struct cmsghdr *cmsg;
    ssize_t n;
    int fd;

    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    do
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    cmsg = CMSG_FIRSTHDR(&msg);
    if (n != 1 || cmsg == NULL || cmsg->cmsg_type != SCM_RIGHTS)
        return -1;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    return fd;
}

/* In the child: everything up to exec, async-signal-safe calls only.
 * A failure is reported as errno on the pipe. */
static void child(const struct nem_disk *d, char *const argv[], int log_fd,
                  int sock, int report, pid_t parent)
{
    int listener = -1, e;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        goto fail;
    if (getppid() != parent)
        _exit(127);
    setpgid(0, 0);
    if (d->netns_fd >= 0 && setns(d->netns_fd, CLONE_NEWNET) != 0)
        goto fail;
    if (log_fd >= 0 &&
        (dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0))
        goto fail;
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        close(null_fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        goto fail;
    listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                            SECCOMP_FILTER_FLAG_NEW_LISTENER |
                                SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
                            &d->prog);
    if (listener < 0)
        goto fail;
    if (send_fd(sock, listener) != 0)
        goto fail;
    close(listener);
    close(sock);
    execv(argv[0], argv);
fail:
    e = errno;
    /* With the listener closed, this write fails with ENOSYS rather than
     * wait for a supervisor that never responds. */
    if (listener >= 0)
        close(listener);
    if (write(report, &e, sizeof(e)) < 0) {
        /* Nothing more a child can do. */
    }
    _exit(127);
}

int nem_disk_start(struct nem_disk *d, char *const argv[], const char *log_path)
{
    int sv[2], report[2], log_fd = -1, child_errno = 0, rc;
    pid_t parent = getpid(), pid;
    ssize_t n;

    d->err[0] = '\0';
    if (d->pid != 0)
        return set_error(d, -EBUSY, "a program still runs (pid %d)",
                         (int)d->pid);
    if (log_path != NULL) {
        log_fd =
            open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0)
            return set_error(d, -errno, "cannot open log %s: %s", log_path,
                             strerror(errno));
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        rc = set_error(d, -errno, "socketpair: %s", strerror(errno));
        goto close_log;
    }
    if (pipe2(report, O_CLOEXEC) != 0) {
        rc = set_error(d, -errno, "pipe: %s", strerror(errno));
        goto close_sockets;
    }
    pid = fork();
    if (pid < 0) {
        rc = set_error(d, -errno, "fork: %s", strerror(errno));
        goto close_pipe;
    }
    if (pid == 0) {
        close(sv[0]);
        close(report[0]);
        child(d, argv, log_fd, sv[1], report[1], parent);
    }
    close(sv[1]);
    sv[1] = -1;
    close(report[1]);
    report[1] = -1;
    d->pid = pid;
    d->fatal = false;
    d->pidfd = pidfd_open_(pid);
    d->notify_fd = receive_fd(sv[0]);
    if (d->pidfd < 0 || d->notify_fd < 0) {
        do
            n = read(report[0], &child_errno, sizeof(child_errno));
        while (n < 0 && errno == EINTR);
        rc = child_errno ? -child_errno : -EPROTO;
        set_error(d, rc, "cannot start %s under seccomp: %s", argv[0],
                  strerror(-rc));
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        goto forget_child;
    }
    (void)ioctl(d->notify_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    rc = pthread_create(&d->thread, NULL, supervise, d);
    if (rc != 0) {
        rc = set_error(d, -rc, "pthread_create: %s", strerror(rc));
        kill(-pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        goto forget_child;
    }
    d->thread_running = true;
    /* Only now: the child's write of its errno may need the supervisor. */
    do
        n = read(report[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    close(report[0]);
    close(sv[0]);
    if (log_fd >= 0)
        close(log_fd);
    if (n == (ssize_t)sizeof(child_errno)) {
        (void)nem_disk_wait(d, -1, NULL);
        return set_error(d, -child_errno, "cannot start %s: %s", argv[0],
                         strerror(child_errno));
    }
    return 0;

forget_child:
    if (d->notify_fd >= 0)
        close(d->notify_fd);
    if (d->pidfd >= 0)
        close(d->pidfd);
    d->notify_fd = d->pidfd = -1;
    d->pid = 0;
close_pipe:
    close(report[0]);
    if (report[1] >= 0)
        close(report[1]);
close_sockets:
    close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
close_log:
    if (log_fd >= 0)
        close(log_fd);
    return rc;
}

/* ---- the caller's side --------------------------------------------------- */

int nem_disk_create(const char *data_dir, const char *stash_dir,
                    struct nem_disk **out, char *err, size_t err_size)
{
    struct nem_disk *d;
    struct stat data_st, stash_st;
    int rc;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return fl_errorf(err, err_size, -ENOMEM, "out of memory");
    d->pid = 0;
    d->pidfd = d->notify_fd = -1;
    d->netns_fd = -1;
    if (realpath(data_dir, d->data_dir) == NULL) {
        rc = fl_errorf(err, err_size, -errno, "data directory %s: %s", data_dir,
                       strerror(errno));
        free(d);
        return rc;
    }
    d->data_len = strlen(d->data_dir);
    if (stash_dir == NULL)
        snprintf(d->stash_dir, sizeof(d->stash_dir), "%s.fl-stash",
                 d->data_dir);
    else
        snprintf(d->stash_dir, sizeof(d->stash_dir), "%s", stash_dir);
    if (mkdir(d->stash_dir, 0700) != 0 && errno != EEXIST) {
        rc = fl_errorf(err, err_size, -errno, "stash directory %s: %s",
                       d->stash_dir, strerror(errno));
        free(d);
        return rc;
    }
    if (stat(d->data_dir, &data_st) != 0 || stat(d->stash_dir, &stash_st) ||
        data_st.st_dev != stash_st.st_dev) {
        rc = fl_errorf(err, err_size, FL_EINPUT,
                       "stash directory %s must be on the file system of %s",
                       d->stash_dir, d->data_dir);
        (void)rmdir(d->stash_dir);
        free(d);
        return rc;
    }
    rc = build_filter(d);
    if (rc != 0) {
        fl_errorf(err, err_size, rc, "%s", d->err);
        (void)rmdir(d->stash_dir);
        free(d->prog.filter);
        free(d);
        return rc;
    }
    pthread_mutex_init(&d->lock, NULL);
    *out = d;
    return 0;
}

void nem_disk_set_netns(struct nem_disk *d, int netns_fd)
{
    d->netns_fd = netns_fd;
}

pid_t nem_disk_pid(const struct nem_disk *d)
{
    return d->pid;
}

int nem_disk_wait(struct nem_disk *d, int timeout_ms, int *status)
{
    struct pollfd pfd = {.fd = d->pidfd, .events = POLLIN};
    siginfo_t info;
    int rc;

    if (d->pid == 0)
        return set_error(d, -ECHILD, "no program runs");
    do
        rc = poll(&pfd, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return set_error(d, -errno, "poll: %s", strerror(errno));
    if (rc == 0)
        return 0;
    /* The thread stops on its own once the program is a zombie; reap only
     * after, so the group id it signals cannot be reused meanwhile. */
    if (d->thread_running) {
        pthread_join(d->thread, NULL);
        d->thread_running = false;
    }
    memset(&info, 0, sizeof(info));
    while (waitid(P_PIDFD, (id_t)d->pidfd, &info, WEXITED) != 0) {
        if (errno != EINTR)
            return set_error(d, -errno, "waitid: %s", strerror(errno));
    }
    if (status != NULL)
        *status = info.si_code == CLD_EXITED ? (info.si_status & 0xff) << 8
                                             : info.si_status & 0x7f;
    close(d->pidfd);
    close(d->notify_fd);
    d->pidfd = d->notify_fd = -1;
    d->pid = 0;
    return 1;
}

int nem_disk_kill(struct nem_disk *d)
{
    if (d->pid == 0)
        return 0;
    pthread_mutex_lock(&d->lock);
    kill_program(d);
    pthread_mutex_unlock(&d->lock);
    int rc = nem_disk_wait(d, -1, NULL);
    return rc < 0 ? rc : 0;
}

int nem_disk_lose_unsynced(struct nem_disk *d)
{
    int rc = nem_disk_kill(d);

    if (rc != 0)
        return rc;
    pthread_mutex_lock(&d->lock);
    rc = rollback(d, NULL);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

size_t nem_disk_unsynced_writes(struct nem_disk *d)
{
    size_t n = 0;

    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->n_files; i++)
        for (size_t j = 0; j < d->files[i].n_ops; j++)
            n += !d->files[i].ops[j].durable;
    pthread_mutex_unlock(&d->lock);
    return n;
}

int nem_disk_torn_seq(struct nem_disk *d, const size_t *keep, size_t n_keep)
{
    size_t total;
    bool *mask;
    int rc = nem_disk_kill(d);

    if (rc != 0)
        return rc;
    total = nem_disk_unsynced_writes(d);
    mask = calloc(total ? total : 1, sizeof(*mask));
    if (mask == NULL)
        return set_error(d, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n_keep; i++) {
        if (keep[i] >= total) {
            free(mask);
            return set_error(d, FL_EINPUT,
                             "write index %zu out of range: %zu unsynced",
                             keep[i], total);
        }
        mask[keep[i]] = true;
    }
    pthread_mutex_lock(&d->lock);
    rc = rollback(d, mask);
    pthread_mutex_unlock(&d->lock);
    free(mask);
    return rc;
}

int nem_disk_arm(struct nem_disk *d, const struct nem_disk_fault *fault)
{
    struct armed_fault *a;
    int rc = 0;

    pthread_mutex_lock(&d->lock);
    if (d->n_faults == MAX_FAULTS) {
        rc = set_error(d, FL_EINPUT, "at most %d faults can be armed",
                       MAX_FAULTS);
    } else if ((int)fault->kind < 0 || fault->kind > NEM_DISK_CRASH_AFTER) {
        rc = set_error(d, FL_EINPUT, "unknown fault kind %d", (int)fault->kind);
    } else if ((fault->kind == NEM_DISK_CRASH_BEFORE ||
                fault->kind == NEM_DISK_CRASH_AFTER) &&
               fault->crash_ops == 0) {
        rc = set_error(d, FL_EINPUT,
                       "a crash fault needs crash_ops (NEM_DISK_OP_*)");
    } else if (fault->pattern != NULL &&
               strlen(fault->pattern) >= sizeof(a->pattern)) {
        rc = set_error(d, FL_EINPUT, "fault pattern longer than %zu bytes",
                       sizeof(a->pattern) - 1);
    } else {
        a = &d->faults[d->n_faults++];
        memset(a, 0, sizeof(*a));
        a->fault = *fault;
        a->fault.pattern = NULL;
        if (fault->pattern != NULL)
            snprintf(a->pattern, sizeof(a->pattern), "%s", fault->pattern);
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void nem_disk_disarm(struct nem_disk *d)
{
    pthread_mutex_lock(&d->lock);
    d->n_faults = 0;
    pthread_mutex_unlock(&d->lock);
}

void nem_disk_get_stats(struct nem_disk *d, struct nem_disk_stats *out)
{
    pthread_mutex_lock(&d->lock);
    *out = d->stats;
    pthread_mutex_unlock(&d->lock);
}

const char *nem_disk_error(struct nem_disk *d)
{
    return d->err;
}

void nem_disk_destroy(struct nem_disk *d)
{
    if (d == NULL)
        return;
    (void)nem_disk_kill(d);
    for (size_t i = 0; i < d->n_dirs; i++)
        free_dir_op(&d->dirs[i], true);
    while (d->n_files > 0)
        drop_file(d, &d->files[d->n_files - 1]);
    free(d->dirs);
    free(d->files);
    (void)rmdir(d->stash_dir);
    pthread_mutex_destroy(&d->lock);
    free(d->prog.filter);
    free(d);
}
