/*
 * The simulated disk. See disk.h.
 */
#include "disk.h"

#include "rng.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* File contents, current and durable. */
struct bytes {
    unsigned char *data;
    size_t size;
};

struct inode {
    struct bytes now;
    struct bytes durable;
};

/* A directory entry: a full path naming an inode. */
struct entry {
    char *path;
    size_t inode;
};

struct names {
    struct entry *v;
    size_t n;
    size_t cap;
};

struct sim_disk {
    struct kv_vfs vfs;
    pthread_mutex_t lock;
    bool out_of_memory; /* some call failed with -ENOMEM */
    struct fl_rng rng;

    struct inode *inodes;
    size_t n_inodes;
    size_t inodes_cap;

    struct names now;     /* the entries reads see */
    struct names durable; /* the entries a power cut leaves */

    char **dirs;
    size_t n_dirs;

    long *fds; /* inode of each descriptor, -1 when closed */
    size_t n_fds;

    /* The last write not yet covered by an fsync, for a torn crash. */
    bool have_last;
    size_t last_inode;
    off_t last_off;
    unsigned char *last_old; /* the bytes the last write replaced */
    size_t last_len;
    size_t last_old_size; /* the file's size before the last write */

    bool crashed; /* between sim_disk_crash and sim_disk_restart */
};

#define FD_BASE 3 /* descriptors look like real ones, never 0 to 2 */

/* ---- helpers ----------------------------------------------------------- */

static bool set_size(struct bytes *b, size_t size)
{
    if (size > b->size) {
        unsigned char *data = realloc(b->data, size);
        if (data == NULL)
            return false;
        memset(data + b->size, 0, size - b->size);
        b->data = data;
    }
    b->size = size;
    return true;
}

static bool copy_bytes(struct bytes *to, const struct bytes *from)
{
    if (!set_size(to, from->size))
        return false;
    if (from->size > 0)
        memcpy(to->data, from->data, from->size);
    return true;
}

static struct entry *find(struct names *names, const char *path)
{
    for (size_t i = 0; i < names->n; i++) {
        if (strcmp(names->v[i].path, path) == 0)
            return &names->v[i];
    }
    return NULL;
}

static bool add_name(struct names *names, const char *path, size_t inode)
{
    char *copy;

    if (names->n == names->cap) {
        size_t cap = names->cap ? names->cap * 2 : 16;
        struct entry *v = realloc(names->v, cap * sizeof(*v));
        if (v == NULL)
            return false;
        names->v = v;
        names->cap = cap;
    }
    copy = strdup(path);
    if (copy == NULL)
        return false;
    names->v[names->n++] = (struct entry){copy, inode};
    return true;
}

static void remove_name(struct names *names, struct entry *e)
{
    free(e->path);
    *e = names->v[--names->n];
}

static void clear_names(struct names *names)
{
    for (size_t i = 0; i < names->n; i++)
        free(names->v[i].path);
    names->n = 0;
}

/* Checks whether path lies directly in directory dir. */
static bool in_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    return strncmp(path, dir, n) == 0 && path[n] == '/' &&
           strchr(path + n + 1, '/') == NULL;
}

static bool dir_exists(const struct sim_disk *d, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash != NULL ? (size_t)(slash - path) : 0;

    for (size_t i = 0; i < d->n_dirs; i++) {
        if (strlen(d->dirs[i]) == n && strncmp(d->dirs[i], path, n) == 0)
            return true;
    }
    return false;
}

static struct inode *inode_of(struct sim_disk *d, int fd)
{
    size_t i = (size_t)(fd - FD_BASE);

    if (fd < FD_BASE || i >= d->n_fds || d->fds[i] < 0)
        return NULL;
    return &d->inodes[d->fds[i]];
}

/* ---- kv_vfs operations ------------------------------------------------- */

/* Takes the disk's lock for a call; returns false, unlocked, while the
 * disk is down after a crash. */
static bool enter(struct sim_disk *d)
{
    pthread_mutex_lock(&d->lock);
    if (d->crashed) {
        pthread_mutex_unlock(&d->lock);
        return false;
    }
    return true;
}

/* Releases the lock at the end of a call that returns rc, remembering an
 * allocation failure, which the disk reports as -ENOMEM. */
static int leave(struct sim_disk *d, int rc)
{
    if (rc == -ENOMEM)
        d->out_of_memory = true;
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* leave for the calls that return a byte count. */
static ssize_t leave_bytes(struct sim_disk *d, ssize_t n)
{
    if (n == -ENOMEM)
        d->out_of_memory = true;
    pthread_mutex_unlock(&d->lock);
    return n;
}

static int s_open(void *ctx, const char *path, int flags, int mode)
{
    struct sim_disk *d = ctx;
    struct entry *e;
    size_t inode;
    int rc = 0;

    (void)mode;
    if (!enter(d))
        return -EIO;
    e = find(&d->now, path);
    if (e != NULL && (flags & O_CREAT) && (flags & O_EXCL)) {
        rc = -EEXIST;
    } else if (e == NULL && !(flags & O_CREAT)) {
        rc = -ENOENT;
    } else if (e == NULL && !dir_exists(d, path)) {
        rc = -ENOENT;
    } else if (e == NULL) {
        if (d->n_inodes == d->inodes_cap) {
            size_t cap = d->inodes_cap ? d->inodes_cap * 2 : 16;
            struct inode *v = realloc(d->inodes, cap * sizeof(*v));
            if (v == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            d->inodes = v;
            d->inodes_cap = cap;
        }
        memset(&d->inodes[d->n_inodes], 0, sizeof(struct inode));
        inode = d->n_inodes++;
        if (!add_name(&d->now, path, inode)) {
            rc = -ENOMEM;
            goto out;
        }
    } else {
        inode = e->inode;
    }
    if (rc != 0)
        goto out;
    if (flags & O_TRUNC) {
        d->inodes[inode].now.size = 0;
    }
    /* Take the first free descriptor. */
    size_t slot = 0;
    while (slot < d->n_fds && d->fds[slot] >= 0)
        slot++;
    if (slot == d->n_fds) {
        long *fds = realloc(d->fds, (d->n_fds + 1) * sizeof(*fds));
        if (fds == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        d->fds = fds;
        d->n_fds++;
    }
    d->fds[slot] = (long)inode;
    rc = (int)slot + FD_BASE;
out:
    return leave(d, rc);
}

static int s_close(void *ctx, int fd)
{
    struct sim_disk *d = ctx;
    int rc = -EBADF;

    if (!enter(d))
        return -EIO;
    if (inode_of(d, fd) != NULL) {
        d->fds[fd - FD_BASE] = -1;
        rc = 0;
    }
    return leave(d, rc);
}

static ssize_t s_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    struct sim_disk *d = ctx;
    struct inode *in;
    ssize_t n = -EBADF;

    if (!enter(d))
        return -EIO;
    in = inode_of(d, fd);
    if (in != NULL) {
        size_t start = (size_t)off;
        n = 0;
        if (start < in->now.size) {
            size_t avail = in->now.size - start;
            n = (ssize_t)(len < avail ? len : avail);
            memcpy(buf, in->now.data + start, (size_t)n);
        }
    }
    return leave_bytes(d, n);
}

static ssize_t s_pwrite(void *ctx, int fd, const void *buf, size_t len,
                        off_t off)
{
    struct sim_disk *d = ctx;
    struct inode *in;
    ssize_t n = -EBADF;

    if (!enter(d))
        return -EIO;
    in = inode_of(d, fd);
    if (in != NULL) {
        size_t end = (size_t)off + len;
        size_t old_size = in->now.size;
        unsigned char *old = malloc(len ? len : 1);
        n = -ENOMEM;
        if (old != NULL && (end <= in->now.size || set_size(&in->now, end))) {
            /* set_size zero-filled the bytes past the old end. */
            if (len > 0) {
                memcpy(old, in->now.data + off, len);
                memcpy(in->now.data + off, buf, len);
            }
            free(d->last_old);
            d->have_last = true;
            d->last_inode = (size_t)d->fds[fd - FD_BASE];
            d->last_off = off;
            d->last_old = old;
            d->last_len = len;
            d->last_old_size = old_size;
            n = (ssize_t)len;
        } else {
            free(old);
        }
    }
    return leave_bytes(d, n);
}

static int s_sync(void *ctx, int fd)
{
    struct sim_disk *d = ctx;
    struct inode *in;
    int rc = -EBADF;

    if (!enter(d))
        return -EIO;
    in = inode_of(d, fd);
    if (in != NULL) {
        rc = copy_bytes(&in->durable, &in->now) ? 0 : -ENOMEM;
        if (d->have_last && d->last_inode == (size_t)d->fds[fd - FD_BASE])
            d->have_last = false;
    }
    return leave(d, rc);
}

static int s_ftruncate(void *ctx, int fd, off_t len)
{
    struct sim_disk *d = ctx;
    struct inode *in;
    int rc = -EBADF;

    if (!enter(d))
        return -EIO;
    in = inode_of(d, fd);
    if (in != NULL) {
        rc = set_size(&in->now, (size_t)len) ? 0 : -ENOMEM;
    }
    return leave(d, rc);
}

static int s_size(void *ctx, int fd, off_t *out)
{
    struct sim_disk *d = ctx;
    struct inode *in;
    int rc = -EBADF;

    if (!enter(d))
        return -EIO;
    in = inode_of(d, fd);
    if (in != NULL) {
        *out = (off_t)in->now.size;
        rc = 0;
    }
    return leave(d, rc);
}

static int s_rename(void *ctx, const char *from, const char *to)
{
    struct sim_disk *d = ctx;
    struct entry *src;
    struct entry *dst;
    int rc = 0;

    if (!enter(d))
        return -EIO;
    src = find(&d->now, from);
    if (src == NULL) {
        rc = -ENOENT;
    } else if (strcmp(from, to) == 0) {
        rc = 0; /* renaming a file onto itself changes nothing */
    } else if (!dir_exists(d, to)) {
        rc = -ENOENT;
    } else {
        size_t inode = src->inode;
        dst = find(&d->now, to);
        if (dst != NULL) {
            dst->inode = inode;
            remove_name(&d->now, find(&d->now, from));
        } else {
            char *copy = strdup(to);
            if (copy == NULL) {
                rc = -ENOMEM;
            } else {
                free(src->path);
                src->path = copy;
            }
        }
    }
    return leave(d, rc);
}

static int s_unlink(void *ctx, const char *path)
{
    struct sim_disk *d = ctx;
    struct entry *e;
    int rc = -ENOENT;

    if (!enter(d))
        return -EIO;
    e = find(&d->now, path);
    if (e != NULL) {
        remove_name(&d->now, e);
        rc = 0;
    }
    return leave(d, rc);
}

static int s_mkdir(void *ctx, const char *path, int mode)
{
    struct sim_disk *d = ctx;
    int rc = 0;

    (void)mode;
    if (!enter(d))
        return -EIO;
    for (size_t i = 0; i < d->n_dirs; i++) {
        if (strcmp(d->dirs[i], path) == 0)
            rc = -EEXIST;
    }
    if (rc == 0) {
        char **dirs = realloc(d->dirs, (d->n_dirs + 1) * sizeof(*dirs));
        char *copy = strdup(path);
        if (dirs == NULL || copy == NULL) {
            free(copy);
            if (dirs != NULL)
                d->dirs = dirs;
            rc = -ENOMEM;
        } else {
            d->dirs = dirs;
            d->dirs[d->n_dirs++] = copy;
        }
    }
    return leave(d, rc);
}

/* Makes the entries of directory dir durable as they are now: new names
 * appear, renamed ones move, deleted ones go. */
static int s_fsync_dir(void *ctx, const char *dir)
{
    struct sim_disk *d = ctx;
    int rc = 0;

    if (!enter(d))
        return -EIO;
    for (size_t i = 0; i < d->durable.n;) {
        struct entry *e = &d->durable.v[i];
        if (in_dir(e->path, dir) && find(&d->now, e->path) == NULL)
            remove_name(&d->durable, e);
        else
            i++;
    }
    for (size_t i = 0; rc == 0 && i < d->now.n; i++) {
        struct entry *e = &d->now.v[i];
        if (!in_dir(e->path, dir))
            continue;
        struct entry *old = find(&d->durable, e->path);
        if (old != NULL)
            old->inode = e->inode;
        else if (!add_name(&d->durable, e->path, e->inode))
            rc = -ENOMEM;
    }
    return leave(d, rc);
}

static int s_list(void *ctx, const char *dir,
                  int (*each)(void *arg, const char *name), void *arg)
{
    struct sim_disk *d = ctx;
    int rc = 0;

    if (!enter(d))
        return -EIO;
    for (size_t i = 0; rc == 0 && i < d->now.n; i++) {
        const char *path = d->now.v[i].path;
        if (in_dir(path, dir))
            rc = each(arg, path + strlen(dir) + 1);
    }
    return leave(d, rc);
}

/* ---- the disk ---------------------------------------------------------- */

int sim_disk_new(struct sim_disk **out, uint64_t seed)
{
    struct sim_disk *d = calloc(1, sizeof(*d));

    *out = NULL;
    if (d == NULL)
        return -ENOMEM;
    pthread_mutex_init(&d->lock, NULL);
    fl_rng_seed(&d->rng, seed);
    d->vfs = (struct kv_vfs){
        .ctx = d,
        .open = s_open,
        .close = s_close,
        .pread = s_pread,
        .pwrite = s_pwrite,
        .fsync = s_sync,
        .fdatasync = s_sync,
        .ftruncate = s_ftruncate,
        .size = s_size,
        .rename = s_rename,
        .unlink = s_unlink,
        .mkdir = s_mkdir,
        .fsync_dir = s_fsync_dir,
        .list = s_list,
    };
    *out = d;
    return 0;
}

void sim_disk_free(struct sim_disk *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n_inodes; i++) {
        free(d->inodes[i].now.data);
        free(d->inodes[i].durable.data);
    }
    free(d->inodes);
    clear_names(&d->now);
    clear_names(&d->durable);
    free(d->now.v);
    free(d->durable.v);
    for (size_t i = 0; i < d->n_dirs; i++)
        free(d->dirs[i]);
    free(d->dirs);
    free(d->fds);
    free(d->last_old);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

const struct kv_vfs *sim_disk_vfs(struct sim_disk *d)
{
    return &d->vfs;
}

void sim_disk_crash(struct sim_disk *d, enum sim_crash mode)
{
    pthread_mutex_lock(&d->lock);
    if (mode == SIM_CRASH_TORN && d->have_last) {
        /* The file written last reached the disk in order, up to a prefix
         * of its last write: the rest of that write is undone. */
        struct inode *in = &d->inodes[d->last_inode];
        size_t keep = (size_t)fl_rng_below(&d->rng, d->last_len + 1);
        size_t from = (size_t)d->last_off + keep;
        size_t end = (size_t)d->last_off + d->last_len;
        if (d->last_len > keep)
            memcpy(in->now.data + from, d->last_old + keep, d->last_len - keep);
        if (end >= in->now.size && in->now.size > d->last_old_size)
            in->now.size = d->last_old_size > from ? d->last_old_size : from;
        copy_bytes(&in->durable, &in->now);
    }
    for (size_t i = 0; i < d->n_inodes; i++)
        copy_bytes(&d->inodes[i].now, &d->inodes[i].durable);
    clear_names(&d->now);
    for (size_t i = 0; i < d->durable.n; i++)
        add_name(&d->now, d->durable.v[i].path, d->durable.v[i].inode);
    for (size_t i = 0; i < d->n_fds; i++)
        d->fds[i] = -1;
    d->have_last = false;
    d->crashed = true;
    pthread_mutex_unlock(&d->lock);
}

void sim_disk_restart(struct sim_disk *d)
{
    pthread_mutex_lock(&d->lock);
    d->crashed = false;
    pthread_mutex_unlock(&d->lock);
}

bool sim_disk_out_of_memory(struct sim_disk *d)
{
    pthread_mutex_lock(&d->lock);
    bool oom = d->out_of_memory;
    pthread_mutex_unlock(&d->lock);
    return oom;
}
