/*
 * Segment files: creation, appending, sealing, deletion, and the replay
 * that decides between a torn tail and damage. See wal.h.
 */
#include "wal.h"

#include "arena.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEGMENT_PREFIX "wal-"
#define SEGMENT_SUFFIX ".log"

void kv_wal_segment_name(char *name, size_t size, uint64_t first_seq)
{
    snprintf(name, size, SEGMENT_PREFIX "%020" PRIu64 SEGMENT_SUFFIX,
             first_seq);
}

static void path_of(const struct kv_wal *w, char *path, size_t size,
                    const char *name)
{
    snprintf(path, size, "%s/%s", w->dir, name);
}

static int sync_dir(struct kv_wal *w)
{
    if (w->bugs & KV_BUG_SKIP_DIR_FSYNC)
        return 0;
    return w->vfs->fsync_dir(w->vfs->ctx, w->dir);
}

/* ---- listing ----------------------------------------------------------- */

struct listing {
    uint64_t *firsts; /* first sequence numbers of the segments */
    size_t n;
    size_t cap;
    char (*stale)[256]; /* temporary files left by a crash */
    size_t nstale;
    size_t stale_cap;
    int rc;
};

/* Parses "wal-<20 digits>.log"; returns true and the number when it is. */
static bool segment_seq(const char *name, uint64_t *seq)
{
    size_t plen = strlen(SEGMENT_PREFIX);
    char *end;

    if (strncmp(name, SEGMENT_PREFIX, plen) != 0 ||
        strlen(name) != plen + 20 + strlen(SEGMENT_SUFFIX) ||
        strcmp(name + plen + 20, SEGMENT_SUFFIX) != 0)
        return false;
    for (size_t i = 0; i < 20; i++) {
        if (name[plen + i] < '0' || name[plen + i] > '9')
            return false;
    }
    *seq = strtoull(name + plen, &end, 10);
    return end == name + plen + 20;
}

static int collect(void *arg, const char *name)
{
    struct listing *l = arg;
    uint64_t seq;
    size_t len = strlen(name);

    if (segment_seq(name, &seq)) {
        if (fl_vec_reserve((void **)&l->firsts, &l->cap, l->n + 1,
                           sizeof(*l->firsts), NULL) != 0)
            return -ENOMEM;
        l->firsts[l->n++] = seq;
    } else if (strncmp(name, SEGMENT_PREFIX, strlen(SEGMENT_PREFIX)) == 0 &&
               len > 4 && strcmp(name + len - 4, ".tmp") == 0 && len < 256) {
        if (fl_vec_reserve((void **)&l->stale, &l->stale_cap, l->nstale + 1,
                           sizeof(*l->stale), NULL) != 0)
            return -ENOMEM;
        memcpy(l->stale[l->nstale++], name, len + 1);
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int list_segments(struct kv_wal *w, struct listing *l, char *err,
                         size_t errsize)
{
    int rc;

    memset(l, 0, sizeof(*l));
    rc = w->vfs->list(w->vfs->ctx, w->dir, collect, l);
    if (rc != 0)
        return fl_errorf(err, errsize, rc,
                         "%s: cannot list the data directory: %s", w->dir,
                         fl_strerror(rc));
    if (l->n > 1)
        qsort(l->firsts, l->n, sizeof(*l->firsts), cmp_u64);
    return 0;
}

static void free_listing(struct listing *l)
{
    free(l->firsts);
    free(l->stale);
}

/* ---- creating and sealing ---------------------------------------------- */

static int create_segment(struct kv_wal *w, uint64_t first_seq, int *out,
                          char *err, size_t errsize)
{
    char name[64];
    char tmp[4096];
    char path[4096];
    unsigned char hdr[KV_SEG_HEADER];
    int fd;
    int rc;

    kv_wal_segment_name(name, sizeof(name), first_seq);
    path_of(w, path, sizeof(path), name);
    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", w->dir, name);
    fd = w->vfs->open(w->vfs->ctx, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fl_errorf(err, errsize, fd, "%s: cannot create: %s", tmp,
                         fl_strerror(fd));
    kv_seg_encode(hdr, first_seq);
    rc = kv_vfs_write_all(w->vfs, fd, hdr, sizeof(hdr), 0);
    if (rc == 0)
        rc = w->vfs->fsync(w->vfs->ctx, fd);
    if (rc == 0)
        rc = w->vfs->rename(w->vfs->ctx, tmp, path);
    if (rc == 0)
        rc = sync_dir(w);
    if (rc != 0) {
        w->vfs->close(w->vfs->ctx, fd);
        w->vfs->unlink(w->vfs->ctx, tmp);
        return fl_errorf(err, errsize, rc, "%s: cannot create the segment: %s",
                         path, fl_strerror(rc));
    }
    *out = fd;
    return 0;
}

int kv_wal_roll(struct kv_wal *w, uint64_t next_seq, char *err, size_t errsize)
{
    int fd;
    int rc;

    /*
     * Seal the current segment before the next one exists. Recovery treats
     * damage in any segment but the newest as corruption of durable data,
     * which holds only if every record of a sealed segment reached the disk
     * first, whatever the sync policy.
     */
    if (w->fd >= 0) {
        if (fl_vec_reserve((void **)&w->retired, &w->retired_cap,
                           w->nretired + 1, sizeof(*w->retired), NULL) != 0)
            return fl_errorf(err, errsize, -ENOMEM,
                             "out of memory sealing a log segment");
        rc = w->vfs->fdatasync(w->vfs->ctx, w->fd);
        if (rc != 0) {
            char name[64];
            kv_wal_segment_name(name, sizeof(name), w->first_seq);
            return fl_errorf(err, errsize, rc,
                             "fdatasync of %s/%s before sealing it failed: %s",
                             w->dir, name, fl_strerror(rc));
        }
    }
    rc = create_segment(w, next_seq, &fd, err, errsize);
    if (rc != 0)
        return rc;
    if (w->fd >= 0)
        w->retired[w->nretired++] = w->fd;
    w->fd = fd;
    w->first_seq = next_seq;
    w->end = KV_SEG_HEADER;
    return 0;
}

int kv_wal_append(struct kv_wal *w, const void *bytes, size_t len,
                  uint64_t last_seq, char *err, size_t errsize)
{
    int rc;

    if ((uint64_t)w->end + len > w->segment_bytes && w->end > KV_SEG_HEADER) {
        rc = kv_wal_roll(w, w->last_seq + 1, err, errsize);
        if (rc != 0)
            return rc;
    }
    rc = kv_vfs_write_all(w->vfs, w->fd, bytes, len, w->end);
    if (rc != 0) {
        char name[64];
        kv_wal_segment_name(name, sizeof(name), w->first_seq);
        return fl_errorf(err, errsize, rc,
                         "write to %s/%s at offset %lld failed: %s", w->dir,
                         name, (long long)w->end, fl_strerror(rc));
    }
    w->end += (off_t)len;
    w->last_seq = last_seq;
    return 0;
}

int kv_wal_drop_before(struct kv_wal *w, uint64_t seq, char *err,
                       size_t errsize)
{
    struct listing l;
    bool dropped = false;
    int rc = list_segments(w, &l, err, errsize);

    for (size_t i = 0; rc == 0 && i + 1 < l.n; i++) {
        char name[64];
        char path[4096];
        /* Segment i contains records first[i] .. first[i+1] - 1. */
        if (l.firsts[i + 1] > seq || l.firsts[i] == w->first_seq)
            break;
        kv_wal_segment_name(name, sizeof(name), l.firsts[i]);
        path_of(w, path, sizeof(path), name);
        rc = w->vfs->unlink(w->vfs->ctx, path);
        if (rc != 0)
            rc = fl_errorf(err, errsize, rc, "%s: cannot delete: %s", path,
                           fl_strerror(rc));
        dropped = true;
    }
    if (rc == 0 && dropped) {
        rc = sync_dir(w);
        if (rc != 0)
            rc = fl_errorf(err, errsize, rc,
                           "%s: fsync of the directory failed: %s", w->dir,
                           fl_strerror(rc));
    }
    free_listing(&l);
    return rc;
}

/* ---- replay ------------------------------------------------------------ */

/* The outcome of parsing one record at an offset. */
static int parse_record(const struct kv_wal *w, const unsigned char *buf,
                        size_t size, size_t off, uint64_t expect, bool check,
                        struct kv_rec *rec, size_t *total, const char **why)
{
    size_t len;
    int rc;

    if (size - off < KV_REC_HEADER) {
        *why = "truncated record header";
        return FL_ECORRUPT;
    }
    rc = kv_rec_check_header(buf + off, &len, why);
    if (rc != 0)
        return rc;
    if (size - off - KV_REC_HEADER < len) {
        *why = "record extends past the end of the file";
        return FL_ECORRUPT;
    }
    rc = kv_rec_decode(buf + off, KV_REC_HEADER + len, check, rec, why);
    if (rc != 0)
        return rc;
    (void)w;
    if (rec->seq != expect) {
        *why = "unexpected sequence number";
        return FL_ECORRUPT;
    }
    *total = KV_REC_HEADER + len;
    return 0;
}

/* Returns the offset of a valid record after from with a sequence number of
 * at least min_seq, or 0 when there is none. */
static size_t valid_record_after(const struct kv_wal *w,
                                 const unsigned char *buf, size_t size,
                                 size_t from, uint64_t min_seq)
{
    for (size_t off = from; off + KV_REC_HEADER <= size; off++) {
        struct kv_rec rec;
        size_t total;
        const char *why;
        if (kv_get_u32(buf + off) != KV_REC_MAGIC)
            continue;
        uint64_t seq = kv_get_u64(buf + off + 12);
        if (seq < min_seq)
            continue;
        if (parse_record(w, buf, size, off, seq, true, &rec, &total, &why) == 0)
            return off;
    }
    return 0;
}

#define REPLAY_GROUP 16

struct replay {
    struct kv_wal *w;
    uint64_t after_seq;
    uint64_t durable; /* the watermark: records up to it were on disk */
    uint64_t expect;  /* next sequence number; 0 before the first segment */
    kv_wal_apply_fn apply;
    kv_wal_prefetch_fn prefetch;
    void *arg;
    char *err;
    size_t errsize;
    bool drop_rest; /* the truncate-on-corruption bug cut a sealed segment */
    /* One buffer for every segment, so its pages are faulted in once. */
    unsigned char *buf;
    size_t cap;
};

/* Reads the whole segment into r->buf, growing it when needed. */
static int read_segment(struct replay *r, int fd, const char *path,
                        size_t *size)
{
    struct kv_wal *w = r->w;
    off_t len;
    int rc = w->vfs->size(w->vfs->ctx, fd, &len);

    if (rc != 0)
        return fl_errorf(r->err, r->errsize, rc, "%s: cannot read the size: %s",
                         path, fl_strerror(rc));
    *size = (size_t)len;
    if (*size > r->cap || r->buf == NULL) {
        unsigned char *bigger = malloc(*size ? *size : 1);
        if (bigger == NULL)
            return fl_errorf(r->err, r->errsize, -ENOMEM,
                             "%s: out of memory reading %zu bytes", path,
                             *size);
        free(r->buf);
        r->buf = bigger;
        r->cap = *size;
    }
    rc = kv_vfs_read_all(w->vfs, fd, r->buf, *size, 0);
    if (rc != 0)
        return fl_errorf(r->err, r->errsize, rc, "%s: read failed: %s", path,
                         fl_strerror(rc));
    return 0;
}

/* Cuts the segment at off and makes the cut durable. */
static int truncate_tail(struct replay *r, int fd, const char *path, size_t off,
                         size_t size, const char *why)
{
    int rc = r->w->vfs->ftruncate(r->w->vfs->ctx, fd, (off_t)off);

    if (rc == 0)
        rc = r->w->vfs->fsync(r->w->vfs->ctx, fd);
    if (rc != 0)
        return fl_errorf(
            r->err, r->errsize, rc,
            "%s: truncating the torn tail at offset %zu failed: %s", path, off,
            fl_strerror(rc));
    r->w->truncated_bytes = size - off;
    FL_LOG_WARNF("kv", "truncated a torn tail",
                 "file=%s offset=%zu bytes=%zu reason=\"%s\"", path, off,
                 size - off, why);
    return 0;
}

static int replay_segment(struct replay *r, uint64_t first, bool newest)
{
    struct kv_wal *w = r->w;
    char name[64];
    char path[4096];
    unsigned char *buf = NULL;
    size_t size = 0;
    size_t off = KV_SEG_HEADER;
    uint64_t hdr_first;
    const char *why = NULL;
    bool check = !(w->bugs & KV_BUG_IGNORE_CRC);
    int fd;
    int rc;

    kv_wal_segment_name(name, sizeof(name), first);
    path_of(w, path, sizeof(path), name);
    fd = w->vfs->open(w->vfs->ctx, path, O_RDWR, 0);
    if (fd < 0)
        return fl_errorf(r->err, r->errsize, fd, "%s: cannot open: %s", path,
                         fl_strerror(fd));
    rc = read_segment(r, fd, path, &size);
    if (rc != 0)
        goto out;
    buf = r->buf;
    if (size < KV_SEG_HEADER || kv_seg_decode(buf, &hdr_first, &why) != 0 ||
        hdr_first != first) {
        rc = fl_errorf(
            r->err, r->errsize, FL_ECORRUPT,
            "%s: offset 0: %s; segments are created whole, so this is "
            "damage",
            path,
            size < KV_SEG_HEADER ? "segment header is truncated"
            : why                ? why
                                 : "header names another sequence number");
        goto out;
    }
    if (r->expect == 0) {
        if (first > r->after_seq + 1) {
            rc = fl_errorf(r->err, r->errsize, FL_ECORRUPT,
                           "%s: the log starts at sequence number %" PRIu64
                           " but the snapshot ends at %" PRIu64
                           ": the records between are missing",
                           path, first, r->after_seq);
            goto out;
        }
        r->expect = first;
    } else if (first != r->expect) {
        rc = fl_errorf(r->err, r->errsize, FL_ECORRUPT,
                       "%s: segment starts at sequence number %" PRIu64
                       " but the previous one ended before %" PRIu64,
                       path, first, r->expect);
        goto out;
    }

    /* Records go in groups: the whole group is parsed and handed to the
     * prefetch hook first, so the index's cache misses overlap. */
    while (off < size) {
        struct kv_rec recs[REPLAY_GROUP];
        size_t starts[REPLAY_GROUP];
        size_t n = 0;
        size_t at = off;
        size_t skip = 0;

        rc = 0;
        while (n < REPLAY_GROUP && at < size) {
            size_t total;
            rc = parse_record(w, buf, size, at, r->expect + n, check, &recs[n],
                              &total, &why);
            if (rc != 0)
                break;
            starts[n++] = at;
            at += total;
        }
        while (skip < n && recs[skip].seq <= r->after_seq)
            skip++;
        if (r->prefetch != NULL && skip < n)
            r->prefetch(r->arg, recs + skip, n - skip);
        for (size_t i = 0; i < n; i++) {
            if (i >= skip && r->apply(r->arg, &recs[i]) != 0) {
                rc = fl_errorf(r->err, r->errsize, FL_ECORRUPT,
                               "%s: offset %zu: record %" PRIu64
                               " has a malformed payload",
                               path, starts[i], recs[i].seq);
                goto out;
            }
            r->expect++;
        }
        off = at;
        if (rc != 0)
            break;
    }
    if (off < size) {
        bool cut = (w->bugs & KV_BUG_TRUNCATE_ON_CORRUPTION) != 0;
        size_t later =
            newest ? valid_record_after(w, buf, size, off + 1, r->expect) : 0;
        if (!newest && !cut) {
            rc = fl_errorf(r->err, r->errsize, FL_ECORRUPT,
                           "%s: offset %zu: %s; the segment is sealed, so its "
                           "records were durable: refusing to drop them",
                           path, off, why);
            goto out;
        }
        if (r->expect <= r->durable && !cut) {
            rc = fl_errorf(r->err, r->errsize, FL_ECORRUPT,
                           "%s: offset %zu: %s; record %" PRIu64
                           " is at or below the durable watermark %" PRIu64
                           ", so it was on disk: refusing to drop it",
                           path, off, why, r->expect, r->durable);
            goto out;
        }
        /* Valid records after the damage were written after it, so they
         * were not durable either: the disk kept a later write of the
         * last unsynced stretch and lost an earlier one. */
        if (later != 0)
            FL_LOG_WARNF("kv", "records follow a torn record",
                         "file=%s offset=%zu next_valid=%zu", path, off, later);
        rc = truncate_tail(r, fd, path, off, size, why);
        if (rc != 0)
            goto out;
        size = off;
        if (!newest)
            r->drop_rest = true;
    }
    /* After a process crash, replayed records may sit only in the page
     * cache; make them durable before anything is served from them. */
    rc = w->vfs->fdatasync(w->vfs->ctx, fd);
    if (rc != 0) {
        rc = fl_errorf(r->err, r->errsize, rc, "%s: fdatasync failed: %s", path,
                       fl_strerror(rc));
        goto out;
    }
    if (newest || r->drop_rest) {
        w->fd = fd;
        w->first_seq = first;
        w->end = (off_t)size;
        fd = -1;
    }
out:
    if (fd >= 0)
        w->vfs->close(w->vfs->ctx, fd);
    return rc;
}

static int remove_file(struct kv_wal *w, const char *name, char *err,
                       size_t errsize)
{
    char path[4096];
    int rc;

    path_of(w, path, sizeof(path), name);
    rc = w->vfs->unlink(w->vfs->ctx, path);
    if (rc != 0 && rc != -ENOENT)
        return fl_errorf(err, errsize, rc, "%s: cannot delete: %s", path,
                         fl_strerror(rc));
    return 0;
}

int kv_wal_open(struct kv_wal *w, const struct kv_vfs *vfs, const char *dir,
                uint64_t segment_bytes, unsigned bugs, uint64_t after_seq,
                uint64_t durable, kv_wal_apply_fn apply,
                kv_wal_prefetch_fn prefetch, void *arg, char *err,
                size_t errsize)
{
    struct listing l;
    struct replay r = {
        .w = w,
        .after_seq = after_seq,
        .durable = durable,
        .apply = apply,
        .prefetch = prefetch,
        .arg = arg,
        .err = err,
        .errsize = errsize,
    };
    size_t start = 0;
    bool changed = false;
    int rc;

    memset(w, 0, sizeof(*w));
    w->vfs = vfs;
    w->bugs = bugs;
    w->fd = -1;
    w->segment_bytes = segment_bytes ? segment_bytes : (64u << 20);
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    rc = list_segments(w, &l, err, errsize);
    if (rc != 0)
        return rc;

    /* Temporary files are segments whose creation a crash interrupted. */
    for (size_t i = 0; rc == 0 && i < l.nstale; i++) {
        rc = remove_file(w, l.stale[i], err, errsize);
        changed = true;
    }
    /* Segments entirely covered by the snapshot may remain when a crash
     * came between the snapshot and their deletion. */
    while (rc == 0 && start + 1 < l.n && l.firsts[start + 1] <= after_seq + 1) {
        char name[64];
        kv_wal_segment_name(name, sizeof(name), l.firsts[start]);
        rc = remove_file(w, name, err, errsize);
        changed = true;
        start++;
    }
    if (rc == 0 && changed && (rc = sync_dir(w)) != 0)
        rc =
            fl_errorf(err, errsize, rc, "%s: fsync of the directory failed: %s",
                      dir, fl_strerror(rc));

    for (size_t i = start; rc == 0 && i < l.n; i++) {
        if (r.drop_rest) {
            char name[64];
            kv_wal_segment_name(name, sizeof(name), l.firsts[i]);
            rc = remove_file(w, name, err, errsize);
            continue;
        }
        rc = replay_segment(&r, l.firsts[i], i + 1 == l.n);
    }
    if (rc == 0 && r.drop_rest)
        rc = sync_dir(w);
    free(r.buf);
    free_listing(&l);
    if (rc != 0) {
        kv_wal_close(w);
        return rc;
    }

    w->last_seq = r.expect ? r.expect - 1 : after_seq;
    uint64_t end = w->last_seq > after_seq ? w->last_seq : after_seq;
    if (end < durable && !(bugs & KV_BUG_TRUNCATE_ON_CORRUPTION)) {
        kv_wal_close(w);
        return fl_errorf(err, errsize, FL_ECORRUPT,
                         "%s: the log ends at record %" PRIu64
                         " but the watermark file says records up to %" PRIu64
                         " were durable: the segment holding record %" PRIu64
                         " is missing or was cut short",
                         dir, end, durable, end + 1);
    }
    if (w->last_seq < after_seq) {
        /* The log ends inside the snapshot: continue after the snapshot. */
        w->last_seq = after_seq;
        if (w->fd >= 0) {
            w->vfs->close(w->vfs->ctx, w->fd);
            w->fd = -1;
        }
    }
    if (w->fd < 0)
        rc = kv_wal_roll(w, w->last_seq + 1, err, errsize);
    if (rc != 0)
        kv_wal_close(w);
    return rc;
}

void kv_wal_close(struct kv_wal *w)
{
    for (size_t i = 0; i < w->nretired; i++)
        w->vfs->close(w->vfs->ctx, w->retired[i]);
    free(w->retired);
    w->retired = NULL;
    w->nretired = 0;
    w->retired_cap = 0;
    if (w->fd >= 0)
        w->vfs->close(w->vfs->ctx, w->fd);
    w->fd = -1;
}
