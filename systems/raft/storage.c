/*
 * The Raft storage: records, snapshot and checkpoint files, recovery and
 * compaction. See storage.h for the directory and the guarantees.
 *
 * Record payloads (record.h frames them), little-endian:
 *   KV_REC_RAFT_HARD_STATE (12 bytes): term u64, vote u32.
 *   KV_REC_RAFT_ENTRY and KV_REC_RAFT_CHECKPOINT_ENTRY (20 bytes and the
 *     data): index u64, term u64, entry type u32, then the entry's data.
 *   KV_REC_RAFT_TRUNCATE (8 bytes): the first index deleted, u64.
 *   KV_REC_RAFT_SNAPSHOT (80 bytes): a snapshot reference.
 *   KV_REC_RAFT_CHECKPOINT (104 bytes): term u64, vote u32, 4 zero bytes,
 *     the number of checkpoint entries that follow u64, then a snapshot
 *     reference (index 0 when there is no snapshot).
 * A snapshot reference (80 bytes): file id u64, index u64, term u64, data
 * length u64, CRC32C of the data u32, flags u32, voter count u32, then 9
 * voter ids u32 with the unused ones zero. Flag bit 0 means that the
 * entries after index are deleted too, and a checkpoint never sets it.
 *
 * A snapshot file is a 92-byte header, magic "FLRS", format version u32,
 * the reference (flags zero) and a CRC32C of the 88 bytes before it, then
 * the data. The checkpoint file is 32 bytes: magic "FLRC", format version
 * u32, the checkpoint's sequence number u64, 12 zero bytes and a CRC32C of
 * the 28 bytes before it.
 */
#include "storage.h"

#include "arena.h"
#include "buf.h"
#include "crc32c.h"
#include "error.h"
#include "log.h"
#include "record.h"
#include "wal.h"
#include "watermark.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define DEFAULT_SEGMENT_BYTES (64u << 20)
#define MAX_DIR               3000

#define HARD_STATE_LEN  12
#define ENTRY_HEAD      20
#define TRUNCATE_LEN    8
#define REF_LEN         80
#define CHECKPOINT_LEN  (24 + REF_LEN)
#define REF_DROP_SUFFIX 1u

#define SNAP_PREFIX  "snap-"
#define SNAP_SUFFIX  ".snap"
#define SNAP_MAGIC   0x53524c46u /* "FLRS" */
#define SNAP_VERSION 1
#define SNAP_HEADER  (8 + REF_LEN + 4)

#define ANCHOR_NAME    "checkpoint"
#define ANCHOR_MAGIC   0x43524c46u /* "FLRC" */
#define ANCHOR_VERSION 1
#define ANCHOR_SIZE    32

/* A snapshot as the records describe it. Its bytes are in its file. */
struct snap_ref {
    uint64_t id; /* file snap-<id>.snap, or 0 when there is no snapshot */
    uint64_t index;
    uint64_t term;
    struct rft_conf conf;
    uint64_t len;
    uint32_t crc; /* CRC32C of the bytes */
};

/* Log entries snap.index + 1 to snap.index + n, at v[head] to
 * v[head + n - 1]. Dropping the front moves head, so compaction frees
 * entries without moving the rest. */
struct entries {
    struct rft_entry *v;
    size_t head;
    size_t n;
    size_t cap;
};

struct state {
    uint64_t term;
    uint32_t vote;
    struct snap_ref snap;
    struct entries log; /* each entry's data is its own allocation */
};

struct rfs {
    const struct kv_vfs *vfs;
    char dir[MAX_DIR + 1];
    int lock_fd; /* flock on dir/LOCK, real file system only */
    uint64_t segment_bytes;
    struct kv_wal wal;
    struct kv_mark mark;
    uint64_t synced_seq; /* records up to here are durable */
    uint64_t anchor;     /* the checkpoint the checkpoint file names; 0: none */

    struct state st;
    unsigned char *snap_data; /* the bytes of st.snap */

    /* Snapshot files replaced by records not yet synced. rfs_sync
     * deletes them once those records are durable. */
    uint64_t *stale;
    size_t n_stale;
    size_t stale_cap;

    struct fl_buf records; /* the records of one call, encoded */
    struct fl_buf payload;

    int failed; /* 0, or the error that stopped the storage */
    char error[4608];
};

/* ---- state ------------------------------------------------------------- */

static uint64_t last_index(const struct state *st)
{
    return st->snap.index + st->log.n;
}

/* Returns the term at index, which lies from the snapshot's index to the
 * end of the log. */
static uint64_t term_at(const struct state *st, uint64_t index)
{
    if (index == st->snap.index)
        return st->snap.term;
    return st->log.v[st->log.head + (size_t)(index - st->snap.index - 1)].term;
}

/* Makes room for more entries at the back. */
static int reserve_entries(struct entries *log, size_t more)
{
    if (log->head + log->n + more <= log->cap)
        return 0;
    if (log->head > 0) {
        memmove(log->v, log->v + log->head, log->n * sizeof(*log->v));
        log->head = 0;
    }
    return fl_vec_reserve((void **)&log->v, &log->cap, log->n + more,
                          sizeof(*log->v), NULL);
}

/* Appends an entry, which takes over data. The caller reserved room. */
static void push_entry(struct entries *log, uint64_t term, uint32_t type,
                       unsigned char *data, size_t len)
{
    log->v[log->head + log->n++] = (struct rft_entry){
        .term = term,
        .type = (enum rft_entry_type)type,
        .data = data,
        .len = len,
    };
}

static void drop_front(struct entries *log, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free((void *)log->v[log->head + i].data);
    log->head += count;
    log->n -= count;
    if (log->n == 0)
        log->head = 0;
}

static void keep_first(struct entries *log, size_t keep)
{
    while (log->n > keep) {
        log->n--;
        free((void *)log->v[log->head + log->n].data);
    }
    if (log->n == 0)
        log->head = 0;
}

static void free_state(struct state *st)
{
    keep_first(&st->log, 0);
    free(st->log.v);
    memset(st, 0, sizeof(*st));
}

/* Makes ref the snapshot of st: the entries it covers go, and with
 * drop_suffix, or when it reaches past the log, so do the ones after it. */
static void install(struct state *st, const struct snap_ref *ref,
                    bool drop_suffix)
{
    if (drop_suffix || ref->index >= last_index(st))
        keep_first(&st->log, 0);
    else
        drop_front(&st->log, (size_t)(ref->index - st->snap.index));
    st->snap = *ref;
}

static unsigned char *copy_bytes(const void *data, size_t len)
{
    unsigned char *p = malloc(len > 0 ? len : 1);

    if (p != NULL && len > 0)
        memcpy(p, data, len);
    return p;
}

/* ---- encoding ---------------------------------------------------------- */

/* Checks a configuration: 1 to RFT_MAX_NODES distinct ids from 1 to
 * RFT_MAX_NODES. Returns false with the reason in why. */
static bool conf_valid(const struct rft_conf *c, char *why, size_t size)
{
    if (c->n_nodes == 0 || c->n_nodes > RFT_MAX_NODES) {
        snprintf(why, size, "%zu voters, expected 1 to %d", c->n_nodes,
                 RFT_MAX_NODES);
        return false;
    }
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (c->nodes[i] == 0 || c->nodes[i] > RFT_MAX_NODES) {
            snprintf(why, size, "voter id %u, expected 1 to %d", c->nodes[i],
                     RFT_MAX_NODES);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (c->nodes[j] == c->nodes[i]) {
                snprintf(why, size, "voter id %u appears twice", c->nodes[i]);
                return false;
            }
        }
    }
    return true;
}

static void put_ref(unsigned char *p, const struct snap_ref *ref,
                    uint32_t flags)
{
    memset(p, 0, REF_LEN);
    kv_put_u64(p, ref->id);
    kv_put_u64(p + 8, ref->index);
    kv_put_u64(p + 16, ref->term);
    kv_put_u64(p + 24, ref->len);
    kv_put_u32(p + 32, ref->crc);
    kv_put_u32(p + 36, flags);
    kv_put_u32(p + 40, (uint32_t)ref->conf.n_nodes);
    for (size_t i = 0; i < ref->conf.n_nodes; i++)
        kv_put_u32(p + 44 + 4 * i, ref->conf.nodes[i]);
}

/* Decodes a snapshot reference. Returns false with the reason in why. */
static bool get_ref(const unsigned char *p, struct snap_ref *ref,
                    uint32_t *flags, char *why, size_t size)
{
    uint32_t n = kv_get_u32(p + 40);

    memset(ref, 0, sizeof(*ref));
    ref->id = kv_get_u64(p);
    ref->index = kv_get_u64(p + 8);
    ref->term = kv_get_u64(p + 16);
    ref->len = kv_get_u64(p + 24);
    ref->crc = kv_get_u32(p + 32);
    *flags = kv_get_u32(p + 36);
    if (*flags & ~REF_DROP_SUFFIX) {
        snprintf(why, size, "unknown snapshot flags 0x%x", *flags);
        return false;
    }
    if (ref->index == 0) {
        /* No snapshot: every other field is zero. */
        for (size_t i = 0; i < REF_LEN; i++) {
            if (p[i] != 0) {
                snprintf(why, size,
                         "a snapshot reference without an index "
                         "has nonzero fields");
                return false;
            }
        }
        return true;
    }
    if (ref->id == 0 || ref->term == 0) {
        snprintf(why, size,
                 "snapshot at index %" PRIu64 " has file id 0 or "
                 "term 0",
                 ref->index);
        return false;
    }
    if (n == 0 || n > RFT_MAX_NODES) {
        snprintf(why, size, "%u voters, expected 1 to %d", n, RFT_MAX_NODES);
        return false;
    }
    ref->conf.n_nodes = n;
    for (size_t i = 0; i < RFT_MAX_NODES; i++) {
        uint32_t id = kv_get_u32(p + 44 + 4 * i);
        if (i >= n && id != 0) {
            snprintf(why, size, "nonzero unused voter slot %zu", i);
            return false;
        }
        if (i < n)
            ref->conf.nodes[i] = id;
    }
    return conf_valid(&ref->conf, why, size);
}

/* Appends one entry record of type type at seq. */
static void encode_entry(struct rfs *s, int type, uint64_t seq, uint64_t index,
                         const struct rft_entry *e)
{
    unsigned char head[ENTRY_HEAD];

    kv_put_u64(head, index);
    kv_put_u64(head + 8, e->term);
    kv_put_u32(head + 16, (uint32_t)e->type);
    fl_buf_clear(&s->payload);
    fl_buf_add(&s->payload, head, sizeof(head));
    if (e->len > 0)
        fl_buf_add(&s->payload, e->data, e->len);
    /* The next entry clears the payload's failure, so pass it on now. */
    if (s->payload.failed)
        s->records.failed = true;
    else
        kv_rec_encode(&s->records, (enum kv_rec_type)type, seq, s->payload.data,
                      s->payload.len);
}

/* Describes snap, whose file will be snap-<id>.snap. */
static struct snap_ref ref_of(const struct rft_snapshot *snap, uint64_t id)
{
    return (struct snap_ref){
        .id = id,
        .index = snap->index,
        .term = snap->term,
        .conf = snap->conf,
        .len = snap->len,
        .crc = snap->len > 0 ? fl_crc32c(0, snap->data, snap->len) : 0,
    };
}

/* ---- files ------------------------------------------------------------- */

static void snap_path(const struct rfs *s, char *path, size_t size, uint64_t id)
{
    snprintf(path, size, "%s/" SNAP_PREFIX "%020" PRIu64 SNAP_SUFFIX, s->dir,
             id);
}

/* Writes the snapshot file of ref durably: temporary file, fsync, rename,
 * directory fsync. */
static int write_snap_file(struct rfs *s, const struct snap_ref *ref,
                           const unsigned char *data, char *err, size_t errsize)
{
    unsigned char hdr[SNAP_HEADER];
    struct iovec parts[2] = {{hdr, sizeof(hdr)},
                             {(void *)data, (size_t)ref->len}};
    char path[4096];
    int rc;

    kv_put_u32(hdr, SNAP_MAGIC);
    kv_put_u32(hdr + 4, SNAP_VERSION);
    put_ref(hdr + 8, ref, 0);
    kv_put_u32(hdr + 8 + REF_LEN, fl_crc32c(0, hdr, 8 + REF_LEN));
    snap_path(s, path, sizeof(path), ref->id);
    rc = kv_vfs_write_file(s->vfs, s->dir, path, parts, 2, false);
    if (rc != 0)
        return fl_errorf(err, errsize, rc,
                         "%s: writing the snapshot failed: %s", path,
                         fl_strerror(rc));
    return 0;
}

/* Reads the snapshot file that st.snap names, checks it against the
 * record and keeps its bytes in s->snap_data. */
static int load_snapshot(struct rfs *s, char *err, size_t errsize)
{
    const struct snap_ref *want = &s->st.snap;
    unsigned char hdr[SNAP_HEADER];
    unsigned char *data = NULL;
    struct snap_ref got;
    uint32_t flags;
    char path[4096];
    char why[256];
    off_t size = 0;
    int fd;
    int rc;

    if (want->index == 0)
        return 0;
    snap_path(s, path, sizeof(path), want->id);
    fd = s->vfs->open(s->vfs->ctx, path, O_RDONLY, 0);
    if (fd == -ENOENT)
        return fl_errorf(err, errsize, FL_ECORRUPT,
                         "%s: missing, but the log's snapshot at index %" PRIu64
                         " is in it",
                         path, want->index);
    if (fd < 0)
        return fl_errorf(err, errsize, fd, "%s: cannot open: %s", path,
                         fl_strerror(fd));
    rc = s->vfs->size(s->vfs->ctx, fd, &size);
    if (rc == 0 && (uint64_t)size < SNAP_HEADER) {
        rc = fl_errorf(err, errsize, FL_ECORRUPT,
                       "%s: offset 0: %lld bytes, shorter than the %d-byte "
                       "snapshot header",
                       path, (long long)size, SNAP_HEADER);
        goto out;
    }
    if (rc == 0)
        rc = kv_vfs_read_all(s->vfs, fd, hdr, sizeof(hdr), 0);
    if (rc != 0) {
        rc = fl_errorf(err, errsize, rc, "%s: cannot read: %s", path,
                       fl_strerror(rc));
        goto out;
    }
    if (kv_get_u32(hdr) != SNAP_MAGIC || kv_get_u32(hdr + 4) != SNAP_VERSION ||
        kv_get_u32(hdr + 8 + REF_LEN) != fl_crc32c(0, hdr, 8 + REF_LEN)) {
        rc = fl_errorf(err, errsize, FL_ECORRUPT,
                       "%s: offset 0: bad snapshot header (magic, version or "
                       "checksum)",
                       path);
        goto out;
    }
    if (!get_ref(hdr + 8, &got, &flags, why, sizeof(why))) {
        rc =
            fl_errorf(err, errsize, FL_ECORRUPT, "%s: offset 8: %s", path, why);
        goto out;
    }
    if (got.id != want->id || got.index != want->index ||
        got.term != want->term || got.len != want->len ||
        got.crc != want->crc ||
        memcmp(&got.conf, &want->conf, sizeof(got.conf)) != 0) {
        rc = fl_errorf(err, errsize, FL_ECORRUPT,
                       "%s: offset 8: the header describes snapshot %" PRIu64
                       " at index %" PRIu64 " of term %" PRIu64 ", %" PRIu64
                       " bytes, which is not the one the log "
                       "records (index %" PRIu64 ", term %" PRIu64 ", %" PRIu64
                       " bytes)",
                       path, got.id, got.index, got.term, got.len, want->index,
                       want->term, want->len);
        goto out;
    }
    if ((uint64_t)size - SNAP_HEADER != want->len) {
        rc = fl_errorf(err, errsize, FL_ECORRUPT,
                       "%s: offset %d: %lld bytes of data, expected %" PRIu64,
                       path, SNAP_HEADER, (long long)size - SNAP_HEADER,
                       want->len);
        goto out;
    }
    data = malloc(want->len > 0 ? (size_t)want->len : 1);
    if (data == NULL) {
        rc = fl_errorf(err, errsize, -ENOMEM,
                       "%s: out of memory reading %" PRIu64 " bytes", path,
                       want->len);
        goto out;
    }
    rc = kv_vfs_read_all(s->vfs, fd, data, (size_t)want->len, SNAP_HEADER);
    if (rc != 0) {
        rc = fl_errorf(err, errsize, rc, "%s: cannot read: %s", path,
                       fl_strerror(rc));
        goto out;
    }
    if ((want->len > 0 ? fl_crc32c(0, data, (size_t)want->len) : 0) !=
        want->crc) {
        rc = fl_errorf(err, errsize, FL_ECORRUPT,
                       "%s: offset %d: snapshot data checksum mismatch", path,
                       SNAP_HEADER);
        goto out;
    }
    s->snap_data = data;
    data = NULL;
out:
    free(data);
    s->vfs->close(s->vfs->ctx, fd);
    return rc;
}

/* Names of files to delete, gathered first because a vfs may hold a lock
 * while it lists. */
struct names {
    char (*v)[64];
    size_t n;
    size_t cap;
    uint64_t keep; /* the snapshot id that stays */
};

/* Parses "snap-<20 digits>.snap". Returns true and the id when it is. */
static bool snap_id(const char *name, uint64_t *id)
{
    size_t plen = strlen(SNAP_PREFIX);

    if (strlen(name) != plen + 20 + strlen(SNAP_SUFFIX) ||
        strncmp(name, SNAP_PREFIX, plen) != 0 ||
        strcmp(name + plen + 20, SNAP_SUFFIX) != 0)
        return false;
    *id = 0;
    for (size_t i = plen; i < plen + 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        *id = *id * 10 + (uint64_t)(name[i] - '0');
    }
    return true;
}

static int collect_stale(void *arg, const char *name)
{
    struct names *l = arg;
    char base[64];
    size_t len = strlen(name);
    uint64_t id;
    bool tmp =
        len > 4 && len < sizeof(base) && strcmp(name + len - 4, ".tmp") == 0;

    /* A temporary file is a snapshot whose writing a crash interrupted. */
    if (tmp) {
        memcpy(base, name, len - 4);
        base[len - 4] = '\0';
    }
    if (!snap_id(tmp ? base : name, &id) || (!tmp && id == l->keep))
        return 0;
    if (fl_vec_reserve((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v),
                       NULL) != 0)
        return -ENOMEM;
    memcpy(l->v[l->n++], name, len + 1);
    return 0;
}

/* Deletes every snapshot file but snap-<keep>.snap, and snapshot files a
 * crash left half written. Without a directory fsync: a file that a crash
 * brings back is deleted by the next rfs_open. */
static int remove_snapshots(struct rfs *s, uint64_t keep, char *err,
                            size_t errsize)
{
    struct names l = {.keep = keep};
    int rc = s->vfs->list(s->vfs->ctx, s->dir, collect_stale, &l);

    if (rc != 0)
        rc = fl_errorf(err, errsize, rc, "%s: cannot list the directory: %s",
                       s->dir, fl_strerror(rc));
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", s->dir, l.v[i]);
        rc = s->vfs->unlink(s->vfs->ctx, path);
        if (rc == -ENOENT)
            rc = 0;
        if (rc != 0)
            rc = fl_errorf(err, errsize, rc, "%s: cannot delete: %s", path,
                           fl_strerror(rc));
    }
    free(l.v);
    return rc;
}

/* Loads the checkpoint file into s->anchor (0 when there is none). */
static int read_anchor(struct rfs *s, char *err, size_t errsize)
{
    unsigned char buf[ANCHOR_SIZE];
    char path[4096];
    char tmp[4096 + 8];
    off_t size = 0;
    int fd;
    int rc;

    snprintf(path, sizeof(path), "%s/" ANCHOR_NAME, s->dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    rc = s->vfs->unlink(s->vfs->ctx, tmp); /* a crash interrupted a write */
    if (rc != 0 && rc != -ENOENT)
        return fl_errorf(err, errsize, rc, "%s: cannot delete: %s", tmp,
                         fl_strerror(rc));
    fd = s->vfs->open(s->vfs->ctx, path, O_RDONLY, 0);
    if (fd == -ENOENT)
        return 0; /* never compacted */
    if (fd < 0)
        return fl_errorf(err, errsize, fd, "%s: cannot open: %s", path,
                         fl_strerror(fd));
    rc = s->vfs->size(s->vfs->ctx, fd, &size);
    if (rc == 0 && size != ANCHOR_SIZE)
        rc = FL_ECORRUPT;
    if (rc == 0)
        rc = kv_vfs_read_all(s->vfs, fd, buf, sizeof(buf), 0);
    s->vfs->close(s->vfs->ctx, fd);
    if (rc == FL_ECORRUPT)
        return fl_errorf(err, errsize, rc,
                         "%s: offset 0: %lld bytes, expected %d", path,
                         (long long)size, ANCHOR_SIZE);
    if (rc != 0)
        return fl_errorf(err, errsize, rc, "%s: cannot read: %s", path,
                         fl_strerror(rc));
    if (kv_get_u32(buf) != ANCHOR_MAGIC ||
        kv_get_u32(buf + 4) != ANCHOR_VERSION ||
        kv_get_u32(buf + 28) != fl_crc32c(0, buf, 28) ||
        kv_get_u64(buf + 8) == 0)
        return fl_errorf(err, errsize, FL_ECORRUPT,
                         "%s: offset 0: damaged (magic, version, checksum or "
                         "a sequence number of 0)",
                         path);
    s->anchor = kv_get_u64(buf + 8);
    return 0;
}

/* Points the checkpoint file at the checkpoint record seq, durably. */
static int write_anchor(struct rfs *s, uint64_t seq, char *err, size_t errsize)
{
    unsigned char buf[ANCHOR_SIZE] = {0};
    struct iovec part = {buf, sizeof(buf)};
    char path[4096];
    int rc;

    kv_put_u32(buf, ANCHOR_MAGIC);
    kv_put_u32(buf + 4, ANCHOR_VERSION);
    kv_put_u64(buf + 8, seq);
    kv_put_u32(buf + 28, fl_crc32c(0, buf, 28));
    snprintf(path, sizeof(path), "%s/" ANCHOR_NAME, s->dir);
    rc = kv_vfs_write_file(s->vfs, s->dir, path, &part, 1, false);
    if (rc != 0)
        return fl_errorf(err, errsize, rc, "%s: writing failed: %s", path,
                         fl_strerror(rc));
    return 0;
}

static int lock_dir(struct rfs *s, char *err, size_t errsize)
{
    char path[4096];
    int rc;

    if (s->vfs != kv_vfs_posix())
        return 0; /* a simulated disk has no other process to fear */
    snprintf(path, sizeof(path), "%s/LOCK", s->dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        rc = -errno;
        return fl_errorf(err, errsize, rc, "%s: cannot open: %s", path,
                         fl_strerror(rc));
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        close(s->lock_fd);
        s->lock_fd = -1;
        if (rc == -EBUSY)
            return fl_errorf(err, errsize, rc,
                             "%s: the Raft storage is in use by another "
                             "process",
                             s->dir);
        return fl_errorf(err, errsize, rc, "%s: flock failed: %s", path,
                         fl_strerror(rc));
    }
    return 0;
}

/* ---- recovery ---------------------------------------------------------- */

struct replay {
    struct rfs *s;
    /* A checkpoint being read: it replaces s->st once all its entries
     * have arrived. */
    struct state pending;
    uint64_t pending_seq;  /* its record's sequence number; 0: none */
    uint64_t pending_want; /* the entries it announced */
    bool anchor_done;      /* the checkpoint s->anchor names completed */
    bool nomem;
    char why[512]; /* why the last record was rejected */
};

static int reject(struct replay *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int reject(struct replay *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
    return FL_ECORRUPT;
}

static int replay_entry(struct replay *r, struct state *st,
                        const struct kv_rec *rec)
{
    const unsigned char *p = rec->payload;
    uint64_t index;
    uint32_t type;
    unsigned char *data;

    if (rec->len < ENTRY_HEAD)
        return reject(r, "entry record of %zu bytes, shorter than %d", rec->len,
                      ENTRY_HEAD);
    index = kv_get_u64(p);
    type = kv_get_u32(p + 16);
    if (index != last_index(st) + 1)
        return reject(r,
                      "entry %" PRIu64 " does not follow the log, which ends "
                      "at %" PRIu64,
                      index, last_index(st));
    if (type != RFT_ENTRY_NOOP && type != RFT_ENTRY_COMMAND)
        return reject(r, "entry %" PRIu64 " has unknown type %u", index, type);
    data = copy_bytes(p + ENTRY_HEAD, rec->len - ENTRY_HEAD);
    if (data == NULL || reserve_entries(&st->log, 1) != 0) {
        free(data);
        r->nomem = true;
        return -ENOMEM;
    }
    push_entry(&st->log, kv_get_u64(p + 8), type, data, rec->len - ENTRY_HEAD);
    return 0;
}

static int replay_truncate(struct replay *r, const struct kv_rec *rec)
{
    struct state *st = &r->s->st;
    uint64_t from;

    if (rec->len != TRUNCATE_LEN)
        return reject(r, "truncation record of %zu bytes, expected %d",
                      rec->len, TRUNCATE_LEN);
    from = kv_get_u64(rec->payload);
    if (from <= st->snap.index || from > last_index(st))
        return reject(r,
                      "truncation from index %" PRIu64 " outside the log, "
                      "which holds %" PRIu64 " to %" PRIu64,
                      from, st->snap.index + 1, last_index(st));
    keep_first(&st->log, (size_t)(from - st->snap.index - 1));
    return 0;
}

static int replay_snapshot(struct replay *r, const struct kv_rec *rec)
{
    struct state *st = &r->s->st;
    struct snap_ref ref;
    uint32_t flags;
    char why[256];

    if (rec->len != REF_LEN)
        return reject(r, "snapshot record of %zu bytes, expected %d", rec->len,
                      REF_LEN);
    if (!get_ref(rec->payload, &ref, &flags, why, sizeof(why)))
        return reject(r, "%s", why);
    if (ref.index <= st->snap.index)
        return reject(r,
                      "snapshot at index %" PRIu64 " is not above the "
                      "previous one at %" PRIu64,
                      ref.index, st->snap.index);
    if (!(flags & REF_DROP_SUFFIX) && ref.index < last_index(st) &&
        term_at(st, ref.index) != ref.term)
        return reject(r,
                      "snapshot at index %" PRIu64 " of term %" PRIu64
                      " keeps the entries after it, but the entry at that "
                      "index has term %" PRIu64,
                      ref.index, ref.term, term_at(st, ref.index));
    install(st, &ref, (flags & REF_DROP_SUFFIX) != 0);
    return 0;
}

/* Makes the checkpoint just read the state. */
static void complete_checkpoint(struct replay *r)
{
    struct rfs *s = r->s;

    free_state(&s->st);
    s->st = r->pending;
    memset(&r->pending, 0, sizeof(r->pending));
    if (r->pending_seq == s->anchor)
        r->anchor_done = true;
    r->pending_seq = 0;
}

static int replay_checkpoint(struct replay *r, const struct kv_rec *rec)
{
    const unsigned char *p = rec->payload;
    struct snap_ref ref;
    uint32_t flags;
    char why[256];

    if (rec->len != CHECKPOINT_LEN)
        return reject(r, "checkpoint record of %zu bytes, expected %d",
                      rec->len, CHECKPOINT_LEN);
    if (kv_get_u32(p + 12) != 0)
        return reject(r, "nonzero reserved bytes in a checkpoint record");
    if (!get_ref(p + 24, &ref, &flags, why, sizeof(why)))
        return reject(r, "%s", why);
    if (flags != 0)
        return reject(r, "a checkpoint's snapshot has flags 0x%x", flags);
    r->pending = (struct state){
        .term = kv_get_u64(p),
        .vote = kv_get_u32(p + 8),
        .snap = ref,
    };
    r->pending_seq = rec->seq;
    r->pending_want = kv_get_u64(p + 16);
    if (r->pending_want == 0)
        complete_checkpoint(r);
    return 0;
}

static int replay_checkpoint_entry(struct replay *r, const struct kv_rec *rec)
{
    int rc;

    if (r->pending_seq == 0)
        return reject(r, "a checkpoint entry without its checkpoint");
    rc = replay_entry(r, &r->pending, rec);
    if (rc == 0 && r->pending.log.n == r->pending_want)
        complete_checkpoint(r);
    return rc;
}

/*
 * Drops a checkpoint that ended before all its entries: a compaction that
 * a crash interrupted before its sync, whose older records are all still
 * there. The one the checkpoint file names was synced before the file
 * was written, so it being incomplete is damage.
 */
static int abandon_checkpoint(struct replay *r)
{
    struct rfs *s = r->s;

    if (r->pending_seq == s->anchor)
        return reject(
            r,
            "the checkpoint at record %" PRIu64 ", which %s/" ANCHOR_NAME
            " names, ends after %zu of its %" PRIu64 " entries",
            r->pending_seq, s->dir, r->pending.log.n, r->pending_want);
    FL_LOG_WARNF("raft", "ignored a checkpoint a crash left incomplete",
                 "dir=%s seq=%" PRIu64 " entries=%zu expected=%" PRIu64, s->dir,
                 r->pending_seq, r->pending.log.n, r->pending_want);
    free_state(&r->pending);
    r->pending_seq = 0;
    return 0;
}

static int replay_record(void *arg, const struct kv_rec *rec)
{
    struct replay *r = arg;
    int rc;

    if (rec->type == KV_REC_RAFT_CHECKPOINT_ENTRY)
        return replay_checkpoint_entry(r, rec);
    if (r->pending_seq != 0 && (rc = abandon_checkpoint(r)) != 0)
        return rc;
    if (rec->seq == r->s->anchor && rec->type != KV_REC_RAFT_CHECKPOINT)
        return reject(r,
                      "%s/" ANCHOR_NAME " names record %" PRIu64
                      ", which is not a checkpoint",
                      r->s->dir, rec->seq);
    switch ((int)rec->type) {
    case KV_REC_RAFT_HARD_STATE:
        if (rec->len != HARD_STATE_LEN)
            return reject(r, "hard state record of %zu bytes, expected %d",
                          rec->len, HARD_STATE_LEN);
        r->s->st.term = kv_get_u64(rec->payload);
        r->s->st.vote = kv_get_u32(rec->payload + 8);
        return 0;
    case KV_REC_RAFT_ENTRY:
        return replay_entry(r, &r->s->st, rec);
    case KV_REC_RAFT_TRUNCATE:
        return replay_truncate(r, rec);
    case KV_REC_RAFT_SNAPSHOT:
        return replay_snapshot(r, rec);
    case KV_REC_RAFT_CHECKPOINT:
        return replay_checkpoint(r, rec);
    }
    return reject(r, "record type %d is not one of the Raft storage's",
                  (int)rec->type);
}

/* Checks how the replay ended: the checkpoint the checkpoint file names
 * must be there and complete. */
static int finish_replay(struct replay *r, char *err, size_t errsize)
{
    struct rfs *s = r->s;
    char name[64];

    kv_wal_segment_name(name, sizeof(name), s->anchor);
    if (r->pending_seq != 0 && r->pending_seq == s->anchor)
        return fl_errorf(err, errsize, FL_ECORRUPT,
                         "%s/%s: offset %d: the checkpoint that %s/" ANCHOR_NAME
                         " names ends after %zu of its %" PRIu64 " entries",
                         s->dir, name, KV_SEG_HEADER, s->dir, r->pending.log.n,
                         r->pending_want);
    if (r->pending_seq != 0)
        /* Cannot fail: the named checkpoint was handled just above. */
        (void)abandon_checkpoint(r);
    if (s->anchor != 0 && !r->anchor_done)
        return fl_errorf(err, errsize, FL_ECORRUPT,
                         "%s/" ANCHOR_NAME ": offset 8: names the checkpoint "
                         "at record %" PRIu64 ", but the log ends at record "
                         "%" PRIu64 " without it",
                         s->dir, s->anchor, s->wal.last_seq);
    return 0;
}

/* Replays the log from the checkpoint the checkpoint file names, or from
 * the start, into s->st. */
static int replay_log(struct rfs *s, char *err, size_t errsize)
{
    struct replay r = {.s = s};
    uint64_t after = s->anchor != 0 ? s->anchor - 1 : 0;
    int rc;

    /* Segments roll only in rfs_sync and rfs_compact, after an fdatasync,
     * so kv_wal_append must never start one: a roll fdatasyncs, and would
     * make records durable that the caller has not synced yet. */
    rc = kv_wal_open(&s->wal, s->vfs, s->dir, UINT64_MAX, 0, after, s->mark.seq,
                     replay_record, NULL, &r, err, errsize);
    if (rc != 0 && r.nomem) {
        rc = fl_errorf(err, errsize, -ENOMEM,
                       "%s: out of memory replaying the log", s->dir);
    } else if (rc != 0 && r.why[0] != '\0' && errsize > 0) {
        size_t n = strlen(err);
        if (n + 1 < errsize)
            snprintf(err + n, errsize - n, ": %s", r.why);
    }
    if (rc == 0)
        rc = finish_replay(&r, err, errsize);
    free_state(&r.pending);
    return rc;
}

/* ---- writing ----------------------------------------------------------- */

static void close_retired(struct rfs *s)
{
    for (size_t i = 0; i < s->wal.nretired; i++)
        s->vfs->close(s->vfs->ctx, s->wal.retired[i]);
    s->wal.nretired = 0;
}

/* Stops s after a failed write, fsync, rename or delete. */
static int fail(struct rfs *s, int rc, const char *why)
{
    s->failed = rc;
    snprintf(s->error, sizeof(s->error), "%s", why);
    return rc;
}

static int usable(const struct rfs *s, char *err, size_t errsize)
{
    if (s->failed == 0)
        return 0;
    return fl_errorf(err, errsize, FL_ESTICKY,
                     "%s: the Raft storage stopped after an earlier failure, "
                     "reopen it to recover: %s",
                     s->dir, s->error);
}

/* fdatasyncs the records written since the last sync, which all sit in
 * the current segment, then moves the watermark over them. */
static int sync_log(struct rfs *s, char *err, size_t errsize)
{
    char name[64];
    int rc;

    if (s->wal.last_seq == s->synced_seq)
        return 0;
    rc = s->vfs->fdatasync(s->vfs->ctx, s->wal.fd);
    if (rc != 0) {
        kv_wal_segment_name(name, sizeof(name), s->wal.first_seq);
        return fl_errorf(err, errsize, rc, "fdatasync of %s/%s failed: %s",
                         s->dir, name, fl_strerror(rc));
    }
    s->synced_seq = s->wal.last_seq;
    rc = kv_mark_write(&s->mark, s->synced_seq);
    if (rc != 0)
        return fl_errorf(err, errsize, rc, "%s/%s: update failed: %s", s->dir,
                         KV_MARK_NAME, fl_strerror(rc));
    return 0;
}

/* Checks a snapshot to install or to compact to, whose index must be
 * above base. */
static int check_snapshot(const struct rft_snapshot *snap, uint64_t base,
                          char *err, size_t errsize)
{
    char why[128];

    if (snap->index <= base)
        return fl_input_error(err, errsize,
                              "snapshot at index %" PRIu64 " is not above the "
                              "saved snapshot at %" PRIu64,
                              snap->index, base);
    if (snap->term == 0)
        return fl_input_error(err, errsize,
                              "snapshot at index %" PRIu64 " has term 0",
                              snap->index);
    if (!conf_valid(&snap->conf, why, sizeof(why)))
        return fl_input_error(err, errsize,
                              "snapshot at index %" PRIu64
                              " has an invalid configuration: %s",
                              snap->index, why);
    if (snap->len > 0 && snap->data == NULL)
        return fl_input_error(err, errsize,
                              "snapshot at index %" PRIu64
                              " has %zu bytes but no data pointer",
                              snap->index, snap->len);
    return 0;
}

/* The records an update writes besides its hard state and entries. */
struct plan {
    bool drop_suffix;  /* the snapshot record deletes the entries after it */
    uint64_t truncate; /* the truncation record's index; 0: none */
};

/* Checks u against the saved state and decides its records. */
static int check_update(const struct rfs *s, const struct rft_update *u,
                        struct plan *plan, char *err, size_t errsize)
{
    const struct state *st = &s->st;
    uint64_t base = st->snap.index;
    uint64_t last = last_index(st);
    int rc;

    memset(plan, 0, sizeof(*plan));
    if (u->hard_state && u->term < st->term)
        return fl_input_error(err, errsize,
                              "hard state term %" PRIu64
                              " is below the saved term %" PRIu64,
                              u->term, st->term);
    if (u->hard_state && u->term == st->term && st->vote != 0 &&
        u->vote != st->vote)
        return fl_input_error(err, errsize,
                              "hard state changes the vote of term %" PRIu64
                              " from node %u to %u",
                              u->term, st->vote, u->vote);
    if (u->snapshot != NULL) {
        const struct rft_snapshot *snap = u->snapshot;
        rc = check_snapshot(snap, base, err, errsize);
        if (rc != 0)
            return rc;
        plan->drop_suffix = u->truncate_from == snap->index + 1;
        if (!plan->drop_suffix && snap->index < last &&
            term_at(st, snap->index) != snap->term)
            return fl_input_error(
                err, errsize,
                "snapshot at index %" PRIu64 " of term %" PRIu64
                " keeps the entries after it, but the saved entry at that "
                "index has term %" PRIu64,
                snap->index, snap->term, term_at(st, snap->index));
        base = snap->index;
        if (plan->drop_suffix || snap->index > last)
            last = snap->index;
    }
    if (u->truncate_from != 0 && !plan->drop_suffix) {
        if (u->truncate_from <= base)
            return fl_input_error(err, errsize,
                                  "truncation from index %" PRIu64
                                  " reaches into the snapshot, which ends at "
                                  "%" PRIu64,
                                  u->truncate_from, base);
        if (u->truncate_from <= last) {
            plan->truncate = u->truncate_from;
            last = u->truncate_from - 1;
        }
    }
    if (u->n_entries > 0 && u->first_index != last + 1)
        return fl_input_error(err, errsize,
                              "entries start at index %" PRIu64
                              ", but the log ends at %" PRIu64,
                              u->first_index, last);
    for (size_t i = 0; i < u->n_entries; i++) {
        const struct rft_entry *e = &u->entries[i];
        uint64_t index = u->first_index + i;
        if (e->type != RFT_ENTRY_NOOP && e->type != RFT_ENTRY_COMMAND)
            return fl_input_error(err, errsize,
                                  "entry %" PRIu64 " has unknown type %d",
                                  index, (int)e->type);
        if (e->len > KV_REC_MAX_PAYLOAD - ENTRY_HEAD)
            return fl_input_error(err, errsize,
                                  "entry %" PRIu64 " of %zu bytes exceeds the "
                                  "record limit of %u bytes",
                                  index, e->len,
                                  KV_REC_MAX_PAYLOAD - ENTRY_HEAD);
        if (e->len > 0 && e->data == NULL)
            return fl_input_error(err, errsize,
                                  "entry %" PRIu64 " has %zu bytes but no "
                                  "data pointer",
                                  index, e->len);
    }
    return 0;
}

/* Copies the entries' data and makes room for them and for a stale
 * snapshot, so that nothing can fail once the records are written. */
static int prepare_memory(struct rfs *s, const struct rft_update *u,
                          unsigned char ***copies, unsigned char **snap_copy)
{
    *copies = NULL;
    *snap_copy = NULL;
    if (u->n_entries > 0) {
        *copies = calloc(u->n_entries, sizeof(**copies));
        if (*copies == NULL)
            return -ENOMEM;
    }
    for (size_t i = 0; i < u->n_entries; i++) {
        (*copies)[i] = copy_bytes(u->entries[i].data, u->entries[i].len);
        if ((*copies)[i] == NULL)
            return -ENOMEM;
    }
    if (u->snapshot != NULL) {
        *snap_copy = copy_bytes(u->snapshot->data, u->snapshot->len);
        if (*snap_copy == NULL ||
            fl_vec_reserve((void **)&s->stale, &s->stale_cap, s->n_stale + 1,
                           sizeof(*s->stale), NULL) != 0)
            return -ENOMEM;
    }
    return reserve_entries(&s->st.log, u->n_entries);
}

static void free_copies(unsigned char **copies, size_t n)
{
    if (copies == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    free(copies);
}

/* Changes the state in memory as the records of u did on disk. */
static void apply_update(struct rfs *s, const struct rft_update *u,
                         const struct plan *plan, const struct snap_ref *ref,
                         unsigned char **copies, unsigned char *snap_copy)
{
    struct state *st = &s->st;

    if (u->hard_state) {
        st->term = u->term;
        st->vote = u->vote;
    }
    if (u->snapshot != NULL) {
        if (st->snap.id != 0)
            s->stale[s->n_stale++] = st->snap.id;
        install(st, ref, plan->drop_suffix);
        free(s->snap_data);
        s->snap_data = snap_copy;
    }
    if (plan->truncate != 0)
        keep_first(&st->log, (size_t)(plan->truncate - st->snap.index - 1));
    for (size_t i = 0; i < u->n_entries; i++)
        push_entry(&st->log, u->entries[i].term, (uint32_t)u->entries[i].type,
                   copies[i], u->entries[i].len);
}

int rfs_save(struct rfs *s, const struct rft_update *u, char *err,
             size_t errsize)
{
    struct plan plan;
    struct snap_ref ref = {0};
    unsigned char **copies = NULL;
    unsigned char *snap_copy = NULL;
    uint64_t seq = s->wal.last_seq;
    char msg[4608];
    int rc = usable(s, err, errsize);

    if (rc == 0)
        rc = check_update(s, u, &plan, err, errsize);
    if (rc != 0)
        return rc;
    rc = prepare_memory(s, u, &copies, &snap_copy);
    if (rc != 0)
        goto nomem;

    fl_buf_clear(&s->records);
    if (u->hard_state) {
        unsigned char p[HARD_STATE_LEN];
        kv_put_u64(p, u->term);
        kv_put_u32(p + 8, u->vote);
        kv_rec_encode(&s->records, KV_REC_RAFT_HARD_STATE, ++seq, p, sizeof(p));
    }
    if (u->snapshot != NULL) {
        unsigned char p[REF_LEN];
        ref = ref_of(u->snapshot, ++seq);
        put_ref(p, &ref, plan.drop_suffix ? REF_DROP_SUFFIX : 0);
        kv_rec_encode(&s->records, KV_REC_RAFT_SNAPSHOT, seq, p, sizeof(p));
    }
    if (plan.truncate != 0) {
        unsigned char p[TRUNCATE_LEN];
        kv_put_u64(p, plan.truncate);
        kv_rec_encode(&s->records, KV_REC_RAFT_TRUNCATE, ++seq, p, sizeof(p));
    }
    for (size_t i = 0; i < u->n_entries; i++)
        encode_entry(s, KV_REC_RAFT_ENTRY, ++seq, u->first_index + i,
                     &u->entries[i]);
    if (s->records.failed) {
        rc = -ENOMEM;
        goto nomem;
    }

    /* The file first, so a durable record never names a missing file. */
    if (u->snapshot != NULL) {
        rc = write_snap_file(s, &ref, snap_copy, msg, sizeof(msg));
        if (rc != 0)
            goto failed;
    }
    if (s->records.len > 0) {
        rc = kv_wal_append(&s->wal, s->records.data, s->records.len, seq, msg,
                           sizeof(msg));
        if (rc != 0)
            goto failed;
    }
    apply_update(s, u, &plan, &ref, copies, snap_copy);
    free(copies);
    return 0;

nomem:
    free_copies(copies, u->n_entries);
    free(snap_copy);
    fl_buf_clear(&s->records);
    return fl_errorf(err, errsize, rc, "%s: out of memory saving an update",
                     s->dir);
failed:
    free_copies(copies, u->n_entries);
    free(snap_copy);
    fail(s, rc, msg);
    return fl_errorf(err, errsize, rc, "%s", msg);
}

/* Encodes the checkpoint of the state after compacting to ref: the
 * checkpoint record at seq, then every entry after ref->index. */
static int encode_checkpoint(struct rfs *s, const struct snap_ref *ref,
                             uint64_t seq)
{
    const struct state *st = &s->st;
    uint64_t last = last_index(st);
    unsigned char p[CHECKPOINT_LEN] = {0};

    kv_put_u64(p, st->term);
    kv_put_u32(p + 8, st->vote);
    kv_put_u64(p + 16, last - ref->index);
    put_ref(p + 24, ref, 0);
    fl_buf_clear(&s->records);
    kv_rec_encode(&s->records, KV_REC_RAFT_CHECKPOINT, seq, p, sizeof(p));
    for (uint64_t index = ref->index + 1; index <= last; index++) {
        const struct rft_entry *e =
            &st->log.v[st->log.head + (size_t)(index - st->snap.index - 1)];
        encode_entry(s, KV_REC_RAFT_CHECKPOINT_ENTRY, ++seq, index, e);
    }
    if (s->records.failed) {
        fl_buf_clear(&s->records);
        return -ENOMEM;
    }
    return 0;
}

/*
 * Writes the disk side of compaction in an order that leaves a
 * recoverable directory after a crash at any step. First a new segment
 * starting at the checkpoint, then the snapshot file, then the checkpoint,
 * synced and below the watermark. Then the checkpoint file points at it,
 * and only then are the older segments deleted.
 */
static int write_checkpoint(struct rfs *s, const struct snap_ref *ref,
                            const unsigned char *data, char *err,
                            size_t errsize)
{
    uint64_t at = ref->id;
    uint64_t end = at + (last_index(&s->st) - ref->index);
    int rc = 0;

    /* When nothing was saved since the last roll, that segment exists. */
    if (s->wal.first_seq != at || s->wal.end != KV_SEG_HEADER) {
        rc = kv_wal_roll(&s->wal, at, err, errsize);
        close_retired(s);
    }
    if (rc != 0)
        return rc;
    /* Every record before at is in a sealed, fdatasynced segment. */
    s->synced_seq = at - 1;
    rc = write_snap_file(s, ref, data, err, errsize);
    if (rc == 0)
        rc = kv_wal_append(&s->wal, s->records.data, s->records.len, end, err,
                           errsize);
    if (rc == 0)
        rc = sync_log(s, err, errsize);
    if (rc == 0)
        rc = write_anchor(s, at, err, errsize);
    if (rc != 0)
        return rc;
    s->anchor = at;
    return kv_wal_drop_before(&s->wal, at, err, errsize);
}

int rfs_compact(struct rfs *s, const struct rft_snapshot *snap, char *err,
                size_t errsize)
{
    struct state *st = &s->st;
    struct snap_ref ref;
    unsigned char *copy;
    char msg[4608];
    int rc = usable(s, err, errsize);

    if (rc == 0)
        rc = check_snapshot(snap, st->snap.index, err, errsize);
    if (rc != 0)
        return rc;
    if (snap->index > last_index(st))
        return fl_input_error(err, errsize,
                              "snapshot at index %" PRIu64
                              " is beyond the log, which ends at %" PRIu64,
                              snap->index, last_index(st));
    if (term_at(st, snap->index) != snap->term)
        return fl_input_error(err, errsize,
                              "snapshot at index %" PRIu64 " has term %" PRIu64
                              ", but the saved entry there has term %" PRIu64,
                              snap->index, snap->term,
                              term_at(st, snap->index));

    ref = ref_of(snap, s->wal.last_seq + 1);
    copy = copy_bytes(snap->data, snap->len);
    if (copy == NULL || encode_checkpoint(s, &ref, ref.id) != 0) {
        free(copy);
        return fl_errorf(err, errsize, -ENOMEM,
                         "%s: out of memory compacting the log", s->dir);
    }
    rc = write_checkpoint(s, &ref, copy, msg, sizeof(msg));
    if (rc != 0) {
        free(copy);
        fail(s, rc, msg);
        return fl_errorf(err, errsize, rc, "%s", msg);
    }
    drop_front(&st->log, (size_t)(ref.index - st->snap.index));
    st->snap = ref;
    free(s->snap_data);
    s->snap_data = copy;
    s->n_stale = 0;
    rc = remove_snapshots(s, ref.id, msg, sizeof(msg));
    if (rc != 0) {
        fail(s, rc, msg);
        return fl_errorf(err, errsize, rc, "%s", msg);
    }
    FL_LOG_DEBUGF("raft", "compacted the log",
                  "dir=%s index=%" PRIu64 " checkpoint=%" PRIu64 " entries=%zu",
                  s->dir, ref.index, ref.id, st->log.n);
    return 0;
}

int rfs_sync(struct rfs *s, char *err, size_t errsize)
{
    char msg[4608];
    int rc = usable(s, err, errsize);

    if (rc != 0)
        return rc;
    rc = sync_log(s, msg, sizeof(msg));
    if (rc == 0 && (uint64_t)s->wal.end >= s->segment_bytes) {
        rc = kv_wal_roll(&s->wal, s->wal.last_seq + 1, msg, sizeof(msg));
        close_retired(s);
    }
    /* The records that replaced these files are durable now. */
    for (size_t i = 0; rc == 0 && i < s->n_stale; i++) {
        char path[4096];
        snap_path(s, path, sizeof(path), s->stale[i]);
        rc = s->vfs->unlink(s->vfs->ctx, path);
        if (rc == -ENOENT)
            rc = 0;
        if (rc != 0)
            rc = fl_errorf(msg, sizeof(msg), rc, "%s: cannot delete: %s", path,
                           fl_strerror(rc));
    }
    if (rc != 0) {
        fail(s, rc, msg);
        return fl_errorf(err, errsize, rc, "%s", msg);
    }
    s->n_stale = 0;
    return 0;
}

/* ---- opening ----------------------------------------------------------- */

int rfs_open(struct rfs **out, const char *dir, const struct kv_vfs *vfs,
             uint64_t segment_bytes, char *err, size_t errsize)
{
    struct rfs *s;
    int rc;

    *out = NULL;
    if (strlen(dir) > MAX_DIR)
        return fl_errorf(err, errsize, -ENAMETOOLONG,
                         "Raft storage directory path of %zu bytes, longer "
                         "than %d",
                         strlen(dir), MAX_DIR);
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return fl_errorf(err, errsize, -ENOMEM,
                         "out of memory opening the Raft storage");
    s->vfs = vfs != NULL ? vfs : kv_vfs_posix();
    s->segment_bytes = segment_bytes ? segment_bytes : DEFAULT_SEGMENT_BYTES;
    s->lock_fd = -1;
    s->mark.fd = -1;
    s->wal.fd = -1;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    fl_buf_init(&s->records);
    fl_buf_init(&s->payload);

    rc = s->vfs->mkdir(s->vfs->ctx, dir, 0755);
    if (rc == -EEXIST)
        rc = 0;
    else if (rc != 0)
        rc = fl_errorf(err, errsize, rc, "%s: cannot create the directory: %s",
                       dir, fl_strerror(rc));
    if (rc == 0)
        rc = lock_dir(s, err, errsize);
    if (rc == 0)
        rc = kv_mark_open(&s->mark, s->vfs, s->dir, false, err, errsize);
    if (rc == 0)
        rc = read_anchor(s, err, errsize);
    if (rc == 0)
        rc = replay_log(s, err, errsize);
    if (rc == 0)
        rc = load_snapshot(s, err, errsize);
    /* Recovery fdatasynced every record it kept. */
    if (rc == 0 && s->wal.last_seq > s->mark.seq &&
        (rc = kv_mark_write(&s->mark, s->wal.last_seq)) != 0)
        rc = fl_errorf(err, errsize, rc, "%s/%s: update failed: %s", dir,
                       KV_MARK_NAME, fl_strerror(rc));
    if (rc == 0)
        rc = remove_snapshots(s, s->st.snap.id, err, errsize);
    if (rc != 0) {
        rfs_close(s);
        return rc;
    }
    s->synced_seq = s->wal.last_seq;
    FL_LOG_INFOF("raft", "opened the Raft storage",
                 "dir=%s term=%" PRIu64 " vote=%u snapshot=%" PRIu64
                 " last_index=%" PRIu64 " truncated=%" PRIu64,
                 s->dir, s->st.term, s->st.vote, s->st.snap.index,
                 last_index(&s->st), s->wal.truncated_bytes);
    *out = s;
    return 0;
}

void rfs_close(struct rfs *s)
{
    if (s == NULL)
        return;
    kv_wal_close(&s->wal);
    kv_mark_close(&s->mark);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free_state(&s->st);
    free(s->snap_data);
    free(s->stale);
    fl_buf_free(&s->records);
    fl_buf_free(&s->payload);
    free(s);
}

void rfs_durable(const struct rfs *s, struct rft_durable *d)
{
    const struct state *st = &s->st;

    memset(d, 0, sizeof(*d));
    d->term = st->term;
    d->vote = st->vote;
    if (st->snap.index != 0) {
        d->snapshot.index = st->snap.index;
        d->snapshot.term = st->snap.term;
        d->snapshot.conf = st->snap.conf;
        d->snapshot.data = s->snap_data;
        d->snapshot.len = (size_t)st->snap.len;
    }
    d->entries = st->log.n > 0 ? st->log.v + st->log.head : NULL;
    d->n_entries = st->log.n;
}

uint64_t rfs_last_index(const struct rfs *s)
{
    return last_index(&s->st);
}
