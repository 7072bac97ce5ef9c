/*
 * The corrupt fault: one byte of a durable file flipped, as media damage
 * (a latent sector error that reads back wrong) would leave it.
 *
 * Power-loss faults only touch what was never made durable. Damage to
 * what was durable is a different failure, one a store can detect (by
 * checksums) but not repair, so the right reaction is to refuse to open
 * rather than serve or drop data. This fault lets a campaign tell that
 * reaction apart from a store that applies the damage or silently cuts
 * its log there.
 *
 * Only files left unmodified for a while are candidates: a file still
 * being written contains data that may not be durable yet, and a store may
 * rightly treat damage there as a torn write.
 */
#include "run.h"

#include "rng.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 4
#define MAX_FILES 4096

struct found {
    char (*paths)[PATH_MAX];
    size_t n;
};

static int cmp_path(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Collects regular files under dir/rel that match pattern and were last
 * modified before cutoff. */
static void collect(const char *dir, const char *rel, int depth,
                    const char *pattern, int64_t cutoff_ns, struct found *out)
{
    char path[PATH_MAX];
    DIR *d;
    struct dirent *e;

    if (snprintf(path, sizeof(path), "%s%s%s", dir, rel[0] ? "/" : "", rel) >=
        (int)sizeof(path))
        return;
    d = opendir(path);
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL && out->n < MAX_FILES) {
        char sub[PATH_MAX];
        char full[PATH_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "",
                     e->d_name) >= (int)sizeof(sub) ||
            snprintf(full, sizeof(full), "%s/%s", dir, sub) >=
                (int)sizeof(full))
            continue;
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < MAX_DEPTH) {
            collect(dir, sub, depth + 1, pattern, cutoff_ns, out);
        } else if (S_ISREG(st.st_mode) && st.st_size > 0 &&
                   (int64_t)st.st_mtim.tv_sec * 1000000000 +
                           st.st_mtim.tv_nsec <=
                       cutoff_ns &&
                   (pattern[0] == '\0' || fnmatch(pattern, sub, 0) == 0)) {
            snprintf(out->paths[out->n++], PATH_MAX, "%s", sub);
        }
    }
    closedir(d);
}

static int flip(const char *path, uint64_t offset, uint8_t mask,
                uint8_t *old_byte, char *err, size_t size)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    uint8_t b;
    int rc = 0;

    if (fd < 0) {
        snprintf(err, size, "%s: cannot open: %s", path, strerror(errno));
        return -errno;
    }
    if (pread(fd, &b, 1, (off_t)offset) != 1) {
        rc = -EIO;
        snprintf(err, size, "%s: cannot read offset %" PRIu64, path, offset);
    } else {
        *old_byte = b;
        b ^= mask;
        if (pwrite(fd, &b, 1, (off_t)offset) != 1 || fsync(fd) != 0) {
            rc = -EIO;
            snprintf(err, size, "%s: cannot write offset %" PRIu64, path,
                     offset);
        }
    }
    close(fd);
    return rc;
}

int run_corrupt(const char *data_dir, const char *pattern, double untouched_s,
                uint64_t pick, struct run_damage *out, char *err, size_t size)
{
    struct found found = {0};
    uint64_t state = pick;
    struct stat st;
    int rc;

    memset(out, 0, sizeof(*out));
    found.paths = calloc(MAX_FILES, sizeof(*found.paths));
    if (found.paths == NULL) {
        snprintf(err, size, "out of memory");
        return -ENOMEM;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    collect(data_dir, "", 0, pattern,
            (int64_t)now.tv_sec * 1000000000 + now.tv_nsec -
                (int64_t)(untouched_s * 1e9),
            &found);
    if (found.n == 0 && pattern[0] == '\0') {
        snprintf(err, size,
                 "no file under the data directory was left unmodified for "
                 "%g s",
                 untouched_s);
        free(found.paths);
        return 1;
    }
    if (found.n == 0) {
        snprintf(err, size,
                 "no file under the data directory matches \"%s\" and was "
                 "left unmodified for %g s",
                 pattern, untouched_s);
        free(found.paths);
        return 1;
    }
    /* Sorted, so the same files and pick choose the same byte. */
    qsort(found.paths, found.n, sizeof(*found.paths), cmp_path);
    snprintf(out->file, sizeof(out->file), "%s",
             found.paths[fl_splitmix64(&state) % found.n]);
    free(found.paths);
    snprintf(out->path, sizeof(out->path), "%s/%s", data_dir, out->file);
    if (stat(out->path, &st) != 0 || st.st_size <= 0) {
        snprintf(err, size, "%s: gone before it could be damaged", out->path);
        return 1;
    }
    out->offset = fl_splitmix64(&state) % (uint64_t)st.st_size;
    out->mask = (uint8_t)(1 + fl_splitmix64(&state) % 255);
    rc = flip(out->path, out->offset, out->mask, &out->old_byte, err, size);
    out->applied = rc == 0;
    return rc;
}

int run_corrupt_exact(const char *data_dir, const char *file, uint64_t offset,
                      uint8_t mask, struct run_damage *out, char *err,
                      size_t size)
{
    struct stat st;
    int rc;

    memset(out, 0, sizeof(*out));
    snprintf(out->file, sizeof(out->file), "%s", file);
    snprintf(out->path, sizeof(out->path), "%s/%s", data_dir, file);
    if (stat(out->path, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size <= offset) {
        snprintf(err, size, "%s has no byte at offset %" PRIu64, out->path,
                 offset);
        return 1;
    }
    out->offset = offset;
    out->mask = mask;
    rc = flip(out->path, out->offset, out->mask, &out->old_byte, err, size);
    out->applied = rc == 0;
    return rc;
}

int run_corrupt_undo(struct run_damage *d, char *err, size_t size)
{
    int fd;
    uint8_t b;
    int rc = 0;

    if (!d->applied)
        return 0;
    d->applied = false;
    fd = open(d->path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, size, "%s: cannot open: %s", d->path, strerror(errno));
        return -errno;
    }
    /* A store that rewrote the byte since owns it now. */
    if (pread(fd, &b, 1, (off_t)d->offset) != 1 ||
        b != (uint8_t)(d->old_byte ^ d->mask)) {
        snprintf(err, size,
                 "%s: offset %" PRIu64 " changed since it was damaged, so "
                 "it was left as it is",
                 d->path, d->offset);
        rc = -EIO;
    } else if (pwrite(fd, &d->old_byte, 1, (off_t)d->offset) != 1 ||
               fsync(fd) != 0) {
        snprintf(err, size, "%s: cannot restore offset %" PRIu64, d->path,
                 d->offset);
        rc = -EIO;
    }
    close(fd);
    return rc;
}
