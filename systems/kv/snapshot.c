/*
 * Snapshot files: serialization, durable writing, validation and loading,
 * and the export format that moves an engine's state to another engine.
 */
#include "snapshot.h"

#include "arena.h"
#include "crc32c.h"
#include "error.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_PREFIX "snap-"
#define SNAP_SUFFIX ".snap"

static void snap_path(char *path, size_t size, const char *dir, uint64_t seq,
                      const char *suffix)
{
    snprintf(path, size, "%s/" SNAP_PREFIX "%020" PRIu64 SNAP_SUFFIX "%s", dir,
             seq, suffix);
}

static int add_entry(void *arg, const struct kv_entry *e)
{
    struct fl_buf *b = arg;
    unsigned char lens[8];

    kv_put_u32(lens, (uint32_t)e->klen);
    kv_put_u32(lens + 4, (uint32_t)e->vlen);
    fl_buf_add(b, lens, sizeof(lens));
    fl_buf_add(b, e->key, e->klen);
    fl_buf_add(b, e->value, e->vlen);
    return b->failed ? -ENOMEM : 0;
}

int kv_snap_serialize(const struct kv_index *x, struct fl_buf *body,
                      uint64_t *count)
{
    int rc = kv_index_each(x, add_entry, body);

    *count = x->live;
    return rc;
}

int kv_snap_write(const struct kv_vfs *vfs, const char *dir,
                  bool skip_dir_fsync, uint64_t last_seq, uint64_t last_applied,
                  const struct fl_buf *body, uint64_t count, char *err,
                  size_t errsize)
{
    unsigned char hdr[KV_SNAP_HEADER];
    struct iovec parts[2] = {{hdr, sizeof(hdr)}, {body->data, body->len}};
    char path[4096];
    int rc;

    memset(hdr, 0, sizeof(hdr));
    kv_put_u32(hdr, KV_SNAP_MAGIC);
    kv_put_u32(hdr + 4, KV_SNAP_VERSION);
    kv_put_u64(hdr + 8, last_seq);
    kv_put_u64(hdr + 16, last_applied);
    kv_put_u64(hdr + 24, count);
    kv_put_u64(hdr + 32, body->len);
    kv_put_u32(hdr + 40, fl_crc32c(0, body->data, body->len));
    kv_put_u32(hdr + 44, fl_crc32c(0, hdr, 44));

    snap_path(path, sizeof(path), dir, last_seq, "");
    rc = kv_vfs_write_file(vfs, dir, path, parts, 2, skip_dir_fsync);
    if (rc != 0)
        return fl_errorf(err, errsize, rc,
                         "%s: writing the snapshot failed: %s", path,
                         fl_strerror(rc));
    return 0;
}

/* ---- loading ----------------------------------------------------------- */

struct snaps {
    uint64_t newest;
    uint64_t *all;
    size_t n;
    size_t cap;
    char (*tmp)[256];
    size_t ntmp;
    size_t tmp_cap;
    bool found;
};

static int collect(void *arg, const char *name)
{
    struct snaps *s = arg;
    size_t plen = strlen(SNAP_PREFIX);
    size_t len = strlen(name);
    size_t want = plen + 20 + strlen(SNAP_SUFFIX);
    char *end;
    uint64_t seq;

    if (strncmp(name, SNAP_PREFIX, plen) != 0)
        return 0;
    if (len == want + 4 && strcmp(name + want, ".tmp") == 0 && len < 256) {
        if (fl_vec_reserve((void **)&s->tmp, &s->tmp_cap, s->ntmp + 1,
                           sizeof(*s->tmp), NULL) != 0)
            return -ENOMEM;
        memcpy(s->tmp[s->ntmp++], name, len + 1);
        return 0;
    }
    if (len != want || strcmp(name + plen + 20, SNAP_SUFFIX) != 0)
        return 0;
    for (size_t i = plen; i < plen + 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
    }
    seq = strtoull(name + plen, &end, 10);
    if (fl_vec_reserve((void **)&s->all, &s->cap, s->n + 1, sizeof(*s->all),
                       NULL) != 0)
        return -ENOMEM;
    s->all[s->n++] = seq;
    if (!s->found || seq > s->newest)
        s->newest = seq;
    s->found = true;
    return 0;
}

static int list_snaps(const struct kv_vfs *vfs, const char *dir,
                      struct snaps *s, char *err, size_t errsize)
{
    int rc;

    memset(s, 0, sizeof(*s));
    rc = vfs->list(vfs->ctx, dir, collect, s);
    if (rc != 0)
        return fl_errorf(err, errsize, rc,
                         "%s: cannot list the data directory: %s", dir,
                         fl_strerror(rc));
    return 0;
}

static void free_snaps(struct snaps *s)
{
    free(s->all);
    free(s->tmp);
}

static int parse_body(const unsigned char *p, size_t len, uint64_t count,
                      uint64_t seq, struct kv_index *x, const char **why)
{
    size_t off = 0;

    for (uint64_t i = 0; i < count; i++) {
        uint32_t klen;
        uint32_t vlen;
        if (len - off < 8) {
            *why = "entry header past the end of the body";
            return FL_ECORRUPT;
        }
        klen = kv_get_u32(p + off);
        vlen = kv_get_u32(p + off + 4);
        off += 8;
        if ((uint64_t)klen + vlen > len - off) {
            *why = "entry past the end of the body";
            return FL_ECORRUPT;
        }
        if (kv_index_put(x, p + off, klen, p + off + klen, vlen, seq) != 0)
            return -ENOMEM;
        off += (size_t)klen + vlen;
    }
    if (off != len) {
        *why = "bytes left after the last entry";
        return FL_ECORRUPT;
    }
    if (x->live != count) {
        *why = "a key appears more than once";
        return FL_ECORRUPT;
    }
    return 0;
}

static int load_file(const struct kv_vfs *vfs, const char *path,
                     uint64_t name_seq, struct kv_index *x, uint64_t *last_seq,
                     uint64_t *last_applied, char *err, size_t errsize)
{
    unsigned char hdr[KV_SNAP_HEADER];
    unsigned char *body = NULL;
    const char *why = NULL;
    off_t where = 0; /* where the damage starts: the header or the body */
    uint64_t body_len;
    off_t size;
    int fd = vfs->open(vfs->ctx, path, O_RDONLY, 0);
    int rc;

    if (fd < 0)
        return fl_errorf(err, errsize, fd, "%s: cannot open: %s", path,
                         fl_strerror(fd));
    rc = vfs->size(vfs->ctx, fd, &size);
    if (rc == 0 && (size_t)size < sizeof(hdr)) {
        why = "file shorter than the snapshot header";
    } else if (rc == 0) {
        rc = kv_vfs_read_all(vfs, fd, hdr, sizeof(hdr), 0);
        if (rc == 0 && kv_get_u32(hdr + 44) != fl_crc32c(0, hdr, 44))
            why = "header checksum mismatch";
        else if (rc == 0 && (kv_get_u32(hdr) != KV_SNAP_MAGIC ||
                             kv_get_u32(hdr + 4) != KV_SNAP_VERSION))
            why = "not a snapshot of this format version";
        else if (rc == 0 && kv_get_u64(hdr + 8) != name_seq)
            why = "header names another sequence number than the file name";
    }
    if (rc == 0 && why == NULL) {
        body_len = kv_get_u64(hdr + 32);
        if (body_len != (uint64_t)size - sizeof(hdr)) {
            why = "file size does not match the body length";
        } else {
            where = KV_SNAP_HEADER;
            body = malloc(body_len ? body_len : 1);
            if (body == NULL)
                rc = -ENOMEM;
            else
                rc = kv_vfs_read_all(vfs, fd, body, body_len, sizeof(hdr));
            if (rc == 0 && fl_crc32c(0, body, body_len) != kv_get_u32(hdr + 40))
                why = "body checksum mismatch";
            if (rc == 0 && why == NULL)
                rc = parse_body(body, body_len, kv_get_u64(hdr + 24), name_seq,
                                x, &why);
        }
    }
    vfs->close(vfs->ctx, fd);
    free(body);
    if (why != NULL || rc == FL_ECORRUPT)
        return fl_errorf(
            err, errsize, FL_ECORRUPT,
            "%s: offset %lld: %s; the snapshot is damaged and older ones may "
            "no longer have the log records after them",
            path, (long long)where, why ? why : "invalid");
    if (rc != 0)
        return fl_errorf(err, errsize, rc,
                         "%s: reading the snapshot failed: %s", path,
                         fl_strerror(rc));
    *last_seq = name_seq;
    *last_applied = kv_get_u64(hdr + 16);
    return 0;
}

/* Deletes path; one already gone counts as deleted. */
static int delete_file(const struct kv_vfs *vfs, const char *path, char *err,
                       size_t errsize)
{
    int rc = vfs->unlink(vfs->ctx, path);

    if (rc != 0 && rc != -ENOENT)
        return fl_errorf(err, errsize, rc, "%s: cannot delete: %s", path,
                         fl_strerror(rc));
    return 0;
}

int kv_snap_load(const struct kv_vfs *vfs, const char *dir, struct kv_index *x,
                 uint64_t *last_seq, uint64_t *last_applied, char *err,
                 size_t errsize)
{
    struct snaps s;
    char path[4096];
    int rc = list_snaps(vfs, dir, &s, err, errsize);

    *last_seq = 0;
    *last_applied = 0;
    for (size_t i = 0; rc == 0 && i < s.ntmp; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, s.tmp[i]);
        rc = delete_file(vfs, path, err, errsize);
    }
    if (rc == 0 && s.found) {
        snap_path(path, sizeof(path), dir, s.newest, "");
        rc = load_file(vfs, path, s.newest, x, last_seq, last_applied, err,
                       errsize);
    }
    free_snaps(&s);
    return rc;
}

int kv_snap_drop_older(const struct kv_vfs *vfs, const char *dir,
                       uint64_t keep_seq, char *err, size_t errsize)
{
    struct snaps s;
    char path[4096];
    int rc = list_snaps(vfs, dir, &s, err, errsize);

    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        if (s.all[i] >= keep_seq)
            continue;
        snap_path(path, sizeof(path), dir, s.all[i], "");
        rc = delete_file(vfs, path, err, errsize);
    }
    free_snaps(&s);
    return rc;
}

/* ---- exports ----------------------------------------------------------- */

int kv_snap_export(const struct kv_index *x, uint64_t applied,
                   struct fl_buf *out)
{
    unsigned char hdr[KV_EXPORT_HEADER];
    size_t start = out->len;
    uint64_t count;
    int rc;

    /* The header goes first with zero fields, and is filled in once the
     * body behind it is complete. */
    memset(hdr, 0, sizeof(hdr));
    fl_buf_add(out, hdr, sizeof(hdr));
    if (out->failed)
        return -ENOMEM;
    rc = kv_snap_serialize(x, out, &count);
    if (rc != 0 || out->failed)
        return -ENOMEM;

    unsigned char *p = (unsigned char *)out->data + start;
    const unsigned char *body = p + KV_EXPORT_HEADER;
    size_t body_len = out->len - start - KV_EXPORT_HEADER;
    kv_put_u32(p, KV_EXPORT_MAGIC);
    kv_put_u32(p + 4, KV_EXPORT_VERSION);
    kv_put_u64(p + 8, applied);
    kv_put_u64(p + 16, count);
    kv_put_u64(p + 24, body_len);
    kv_put_u32(p + 32, fl_crc32c(0, body, body_len));
    kv_put_u32(p + 36, fl_crc32c(0, p, 36));
    return 0;
}

int kv_snap_import(const void *data, size_t len, uint64_t seq,
                   struct kv_index *x, uint64_t *applied, uint64_t *count,
                   char *err, size_t errsize)
{
    const unsigned char *p = data;
    const char *why = NULL;
    uint64_t body_len;
    int rc;

    if (len < KV_EXPORT_HEADER)
        return fl_errorf(err, errsize, FL_EINPUT,
                         "invalid export: %zu bytes, shorter than the "
                         "%d-byte header",
                         len, KV_EXPORT_HEADER);
    if (kv_get_u32(p + 36) != fl_crc32c(0, p, 36))
        return fl_errorf(err, errsize, FL_EINPUT,
                         "invalid export: header checksum mismatch");
    if (kv_get_u32(p) != KV_EXPORT_MAGIC)
        return fl_errorf(err, errsize, FL_EINPUT,
                         "invalid export: magic 0x%08x, expected 0x%08x",
                         kv_get_u32(p), KV_EXPORT_MAGIC);
    if (kv_get_u32(p + 4) != KV_EXPORT_VERSION)
        return fl_errorf(err, errsize, FL_EINPUT,
                         "unsupported export format version %u, expected %d",
                         kv_get_u32(p + 4), KV_EXPORT_VERSION);
    body_len = kv_get_u64(p + 24);
    if (body_len != len - KV_EXPORT_HEADER)
        return fl_errorf(err, errsize, FL_EINPUT,
                         "invalid export: the header announces a %" PRIu64
                         "-byte body but %zu bytes follow it (truncated or "
                         "extended)",
                         body_len, len - KV_EXPORT_HEADER);
    if (fl_crc32c(0, p + KV_EXPORT_HEADER, body_len) != kv_get_u32(p + 32))
        return fl_errorf(err, errsize, FL_EINPUT,
                         "invalid export: body checksum mismatch");

    rc = parse_body(p + KV_EXPORT_HEADER, body_len, kv_get_u64(p + 16), seq, x,
                    &why);
    if (rc == FL_ECORRUPT)
        return fl_errorf(err, errsize, FL_EINPUT, "invalid export: %s", why);
    if (rc != 0)
        return fl_errorf(err, errsize, rc, "out of memory loading an export");
    *applied = kv_get_u64(p + 8);
    *count = kv_get_u64(p + 16);
    return 0;
}
