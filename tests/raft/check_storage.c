/*
 * Tests for the Raft storage (systems/raft/storage.c). Most run on the
 * simulated disk (sim/disk.h), whose crashes lose or tear what was not
 * synced: round trips through close and open, truncation, installed
 * snapshots, compaction, crashes at chosen and at random points, damage
 * that recovery must report with the file's name, invalid updates, and
 * sticky failure. Two run on the real file system, for the directory lock
 * and a file where the directory should be.
 *
 * A test model mirrors the storage: one "op" per record rfs_save writes
 * (hard state, snapshot, truncation, entry), so a torn crash can be
 * checked against every prefix of the records written since the last
 * sync.
 */
#include "storage.h"

#include "disk.h"
#include "error.h"
#include "log.h"
#include "record.h"
#include "rng.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_PATH "/raft"
#define MAX_LOG  600
#define MAX_DATA 12
#define MAX_SNAP 48
#define MAX_OPS  4096

/* The head of an entry record's payload: index, term and type (see the
 * record formats in storage.c). */
#define ENTRY_HEAD_BYTES 20

/* ---- the model --------------------------------------------------------- */

struct mentry {
    uint64_t term;
    enum rft_entry_type type;
    size_t len;
    unsigned char data[MAX_DATA];
};

struct model {
    uint64_t term;
    uint32_t vote;
    uint64_t snap_index;
    uint64_t snap_term;
    struct rft_conf conf;
    size_t snap_len;
    unsigned char snap_data[MAX_SNAP];
    size_t n;
    struct mentry log[MAX_LOG]; /* indexes snap_index + 1 on */
};

enum op_kind { OP_HARD, OP_SNAP, OP_TRUNC, OP_ENTRY };

/* The change one record makes. A list of ops in the order rfs_save writes
 * its records forms one update. */
struct op {
    enum op_kind kind;
    uint64_t term;  /* OP_HARD; OP_SNAP: the snapshot's term */
    uint32_t vote;  /* OP_HARD */
    uint64_t index; /* OP_SNAP: its index; OP_TRUNC: the first one deleted */
    bool drop;      /* OP_SNAP: the entries after it are deleted too */
    struct rft_conf conf;
    size_t len;
    unsigned char data[MAX_SNAP];
    struct mentry e; /* OP_ENTRY */
};

static uint64_t model_last(const struct model *m)
{
    return m->snap_index + m->n;
}

static uint64_t model_term_at(const struct model *m, uint64_t index)
{
    if (index == m->snap_index)
        return m->snap_term;
    return m->log[index - m->snap_index - 1].term;
}

static void model_apply(struct model *m, const struct op *op)
{
    switch (op->kind) {
    case OP_HARD:
        m->term = op->term;
        m->vote = op->vote;
        break;
    case OP_SNAP:
        if (op->drop || op->index >= model_last(m)) {
            m->n = 0;
        } else {
            size_t k = (size_t)(op->index - m->snap_index);
            memmove(m->log, m->log + k, (m->n - k) * sizeof(m->log[0]));
            m->n -= k;
        }
        m->snap_index = op->index;
        m->snap_term = op->term;
        m->conf = op->conf;
        m->snap_len = op->len;
        memcpy(m->snap_data, op->data, op->len);
        break;
    case OP_TRUNC:
        if (op->index <= model_last(m))
            m->n = (size_t)(op->index - m->snap_index - 1);
        break;
    case OP_ENTRY:
        ck_assert_uint_lt(m->n, MAX_LOG);
        m->log[m->n++] = op->e;
        break;
    }
}

/* Checks that d is exactly m. Returns false with the first difference in
 * why. */
static bool model_matches(const struct model *m, const struct rft_durable *d,
                          char *why, size_t size)
{
    if (d->term != m->term || d->vote != m->vote) {
        snprintf(why, size,
                 "term %" PRIu64 " vote %u, expected term %" PRIu64 " vote %u",
                 d->term, d->vote, m->term, m->vote);
        return false;
    }
    if (d->snapshot.index != m->snap_index) {
        snprintf(why, size, "snapshot index %" PRIu64 ", expected %" PRIu64,
                 d->snapshot.index, m->snap_index);
        return false;
    }
    if (m->snap_index != 0 &&
        (d->snapshot.term != m->snap_term ||
         d->snapshot.conf.n_nodes != m->conf.n_nodes ||
         memcmp(d->snapshot.conf.nodes, m->conf.nodes,
                m->conf.n_nodes * sizeof(m->conf.nodes[0])) != 0 ||
         d->snapshot.len != m->snap_len ||
         (m->snap_len > 0 &&
          memcmp(d->snapshot.data, m->snap_data, m->snap_len) != 0))) {
        snprintf(why, size,
                 "snapshot at index %" PRIu64 " differs in term, "
                 "configuration or data",
                 m->snap_index);
        return false;
    }
    if (d->n_entries != m->n) {
        snprintf(why, size, "%zu entries, expected %zu", d->n_entries, m->n);
        return false;
    }
    for (size_t i = 0; i < m->n; i++) {
        const struct rft_entry *e = &d->entries[i];
        const struct mentry *want = &m->log[i];
        if (e->term != want->term || e->type != want->type ||
            e->len != want->len ||
            (want->len > 0 && memcmp(e->data, want->data, want->len) != 0)) {
            snprintf(why, size, "entry %" PRIu64 " differs",
                     m->snap_index + 1 + i);
            return false;
        }
    }
    return true;
}

static void check_state(const struct rfs *s, const struct model *m,
                        const char *when)
{
    struct rft_durable d;
    char why[256];

    rfs_durable(s, &d);
    ck_assert_msg(model_matches(m, &d, why, sizeof(why)), "%s: %s", when, why);
    ck_assert_uint_eq(rfs_last_index(s), model_last(m));
}

/* ---- ops --------------------------------------------------------------- */

static struct op hard_op(uint64_t term, uint32_t vote)
{
    return (struct op){.kind = OP_HARD, .term = term, .vote = vote};
}

static struct op entry_op(uint64_t term, const char *text)
{
    struct op op = {.kind = OP_ENTRY};

    op.e.term = term;
    op.e.type = RFT_ENTRY_COMMAND;
    op.e.len = strlen(text);
    ck_assert_uint_le(op.e.len, MAX_DATA);
    memcpy(op.e.data, text, op.e.len);
    return op;
}

static struct op noop_op(uint64_t term)
{
    struct op op = {.kind = OP_ENTRY};

    op.e.term = term;
    op.e.type = RFT_ENTRY_NOOP;
    return op;
}

static struct op trunc_op(uint64_t from)
{
    return (struct op){.kind = OP_TRUNC, .index = from};
}

static struct op snap_op(uint64_t index, uint64_t term, bool drop,
                         const char *data)
{
    struct op op = {.kind = OP_SNAP, .index = index, .term = term};

    op.drop = drop;
    op.conf = (struct rft_conf){.nodes = {1, 2, 3}, .n_nodes = 3};
    op.len = strlen(data);
    ck_assert_uint_le(op.len, MAX_SNAP);
    memcpy(op.data, data, op.len);
    return op;
}

/* Saves ops as one update and, when rfs_save returns 0, applies them to
 * m. Returns what rfs_save returned. */
static int save_ops(struct rfs *s, struct model *m, const struct op *ops,
                    size_t n, char *err, size_t errsize)
{
    struct rft_update u = {0};
    struct rft_snapshot snap;
    struct rft_entry entries[16];
    struct model *after = malloc(sizeof(*after));
    int rc;

    ck_assert_ptr_nonnull(after);
    *after = *m;
    for (size_t i = 0; i < n; i++) {
        const struct op *op = &ops[i];
        switch (op->kind) {
        case OP_HARD:
            u.hard_state = true;
            u.term = op->term;
            u.vote = op->vote;
            break;
        case OP_SNAP:
            snap = (struct rft_snapshot){.index = op->index,
                                         .term = op->term,
                                         .conf = op->conf,
                                         .data = op->data,
                                         .len = op->len};
            u.snapshot = &snap;
            if (op->drop)
                u.truncate_from = op->index + 1;
            break;
        case OP_TRUNC:
            u.truncate_from = op->index;
            break;
        case OP_ENTRY:
            ck_assert_uint_lt(u.n_entries, 16);
            entries[u.n_entries++] = (struct rft_entry){.term = op->e.term,
                                                        .type = op->e.type,
                                                        .data = op->e.data,
                                                        .len = op->e.len};
            break;
        }
        model_apply(after, op);
    }
    u.entries = entries;
    u.first_index = model_last(after) - u.n_entries + 1;
    rc = rfs_save(s, &u, err, errsize);
    if (rc == 0)
        *m = *after;
    free(after);
    return rc;
}

static void save_ok(struct rfs *s, struct model *m, const struct op *ops,
                    size_t n)
{
    char err[1024];
    int rc = save_ops(s, m, ops, n, err, sizeof(err));

    ck_assert_msg(rc == 0, "rfs_save: %s (%s)", err, fl_strerror(rc));
}

static void sync_ok(struct rfs *s)
{
    char err[1024];
    int rc = rfs_sync(s, err, sizeof(err));

    ck_assert_msg(rc == 0, "rfs_sync: %s (%s)", err, fl_strerror(rc));
}

static struct rft_conf conf_of(size_t n)
{
    struct rft_conf c = {.n_nodes = n};

    for (size_t i = 0; i < n; i++)
        c.nodes[i] = (uint32_t)i + 1;
    return c;
}

/* Compacts s and m to index, with snapshot bytes data. */
static void compact_ok(struct rfs *s, struct model *m, uint64_t index,
                       const struct rft_conf *conf, const void *data,
                       size_t len)
{
    struct op op = {.kind = OP_SNAP, .index = index, .conf = *conf};
    struct rft_snapshot snap = {.index = index, .conf = *conf, .len = len};
    char err[1024];
    int rc;

    ck_assert_uint_le(len, MAX_SNAP);
    op.term = snap.term = model_term_at(m, index);
    op.len = len;
    memcpy(op.data, data, len);
    snap.data = op.data;
    rc = rfs_compact(s, &snap, err, sizeof(err));
    ck_assert_msg(rc == 0, "rfs_compact to %" PRIu64 ": %s (%s)", index, err,
                  fl_strerror(rc));
    model_apply(m, &op);
}

/* Appends count entries of term with text "e<index>", one update each,
 * syncing after every sync_every of them (0: never). */
static void append_entries(struct rfs *s, struct model *m, size_t count,
                           uint64_t term, size_t sync_every)
{
    for (size_t i = 0; i < count; i++) {
        char text[MAX_DATA + 1];
        snprintf(text, sizeof(text), "e%" PRIu64, model_last(m) + 1);
        struct op op = entry_op(term, text);
        save_ok(s, m, &op, 1);
        if (sync_every != 0 && (i + 1) % sync_every == 0)
            sync_ok(s);
    }
}

/* ---- the disk ---------------------------------------------------------- */

static struct sim_disk *new_disk(uint64_t seed)
{
    struct sim_disk *d = NULL;

    ck_assert_int_eq(sim_disk_new(&d, seed), 0);
    return d;
}

static int open_on(const struct kv_vfs *vfs, uint64_t segment_bytes,
                   struct rfs **s, char *err, size_t errsize)
{
    return rfs_open(s, DIR_PATH, vfs, segment_bytes, err, errsize);
}

static struct rfs *open_ok(struct sim_disk *d, uint64_t segment_bytes)
{
    struct rfs *s = NULL;
    char err[1024];
    int rc = open_on(sim_disk_vfs(d), segment_bytes, &s, err, sizeof(err));

    ck_assert_msg(rc == 0, "rfs_open: %s (%s)", err, fl_strerror(rc));
    return s;
}

/* Cuts the power, then opens the storage again after the reboot. */
static struct rfs *crash_and_open(struct sim_disk *d, struct rfs *s,
                                  enum sim_crash mode, uint64_t segment_bytes)
{
    sim_disk_crash(d, mode);
    rfs_close(s);
    sim_disk_restart(d);
    return open_ok(d, segment_bytes);
}

struct listing {
    char names[128][64];
    size_t n;
};

static int add_name(void *arg, const char *name)
{
    struct listing *l = arg;

    if (l->n < 128)
        snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", name);
    return 0;
}

/* Lists the storage directory into l. Returns how many names start with
 * prefix and end with suffix. */
static size_t count_files(struct sim_disk *d, const char *prefix,
                          const char *suffix, struct listing *l)
{
    const struct kv_vfs *v = sim_disk_vfs(d);
    size_t count = 0;

    l->n = 0;
    ck_assert_int_eq(v->list(v->ctx, DIR_PATH, add_name, l), 0);
    for (size_t i = 0; i < l->n; i++) {
        size_t len = strlen(l->names[i]);
        if (strncmp(l->names[i], prefix, strlen(prefix)) == 0 &&
            len >= strlen(suffix) &&
            strcmp(l->names[i] + len - strlen(suffix), suffix) == 0)
            count++;
    }
    return count;
}

static bool listed(const struct listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->names[i], name) == 0)
            return true;
    }
    return false;
}

/* Returns the name of the one file matching prefix and suffix. */
static void only_file(struct sim_disk *d, const char *prefix,
                      const char *suffix, char *name, size_t size)
{
    struct listing l;

    ck_assert_uint_eq(count_files(d, prefix, suffix, &l), 1);
    for (size_t i = 0; i < l.n; i++) {
        size_t len = strlen(l.names[i]);
        if (strncmp(l.names[i], prefix, strlen(prefix)) == 0 &&
            strcmp(l.names[i] + len - strlen(suffix), suffix) == 0)
            snprintf(name, size, "%s", l.names[i]);
    }
}

static off_t file_size(struct sim_disk *d, const char *name)
{
    const struct kv_vfs *v = sim_disk_vfs(d);
    char path[256];
    off_t size = -1;
    int fd;

    snprintf(path, sizeof(path), DIR_PATH "/%s", name);
    fd = v->open(v->ctx, path, O_RDONLY, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(v->size(v->ctx, fd, &size), 0);
    v->close(v->ctx, fd);
    return size;
}

/* Flips bits of the byte at off in DIR_PATH/name, durably. */
static void flip_byte(struct sim_disk *d, const char *name, off_t off)
{
    const struct kv_vfs *v = sim_disk_vfs(d);
    char path[256];
    unsigned char byte;
    int fd;

    snprintf(path, sizeof(path), DIR_PATH "/%s", name);
    fd = v->open(v->ctx, path, O_RDWR, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(v->pread(v->ctx, fd, &byte, 1, off), 1);
    byte ^= 0x5a;
    ck_assert_int_eq(v->pwrite(v->ctx, fd, &byte, 1, off), 1);
    ck_assert_int_eq(v->fsync(v->ctx, fd), 0);
    v->close(v->ctx, fd);
}

/* Appends bytes to DIR_PATH/name, durably. */
static void append_bytes(struct sim_disk *d, const char *name,
                         const void *bytes, size_t len)
{
    const struct kv_vfs *v = sim_disk_vfs(d);
    char path[256];
    off_t size;
    int fd;

    snprintf(path, sizeof(path), DIR_PATH "/%s", name);
    fd = v->open(v->ctx, path, O_RDWR, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(v->size(v->ctx, fd, &size), 0);
    ck_assert_int_eq(kv_vfs_write_all(v, fd, bytes, len, size), 0);
    ck_assert_int_eq(v->fsync(v->ctx, fd), 0);
    v->close(v->ctx, fd);
}

/* A vfs over the simulated disk that can fail an fdatasync or every
 * unlink. Check forks each test, so one static instance is enough. */
static struct {
    struct kv_vfs vfs;
    const struct kv_vfs *base;
    unsigned fdatasyncs;     /* calls so far */
    unsigned fail_fdatasync; /* the call that fails; 0: none */
    bool fail_unlink;
} fault;

static int fault_fdatasync(void *ctx, int fd)
{
    if (++fault.fdatasyncs == fault.fail_fdatasync)
        return -EIO;
    return fault.base->fdatasync(ctx, fd);
}

static int fault_unlink(void *ctx, const char *path)
{
    if (fault.fail_unlink)
        return -EIO;
    return fault.base->unlink(ctx, path);
}

static const struct kv_vfs *fault_vfs(struct sim_disk *d)
{
    fault.base = sim_disk_vfs(d);
    fault.vfs = *fault.base;
    fault.vfs.fdatasync = fault_fdatasync;
    fault.vfs.unlink = fault_unlink;
    fault.fdatasyncs = 0;
    fault.fail_fdatasync = 0;
    fault.fail_unlink = false;
    return &fault.vfs;
}

/* ---- round trips ------------------------------------------------------- */

START_TEST(test_storage_new_is_empty)
{
    struct sim_disk *d = new_disk(1);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 0);

    check_state(s, m, "new storage");
    sync_ok(s);
    rfs_close(s);
    s = open_ok(d, 0);
    check_state(s, m, "reopened empty storage");
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

START_TEST(test_storage_round_trip)
{
    struct sim_disk *d = new_disk(2);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 0);
    struct op first[] = {hard_op(1, 0), noop_op(1), entry_op(1, "a"),
                         entry_op(1, ""), entry_op(1, "twelve bytes")};
    struct op vote[] = {hard_op(1, 2)};
    struct op later[] = {hard_op(3, 0), noop_op(3), entry_op(3, "b")};

    save_ok(s, m, first, 5);
    save_ok(s, m, vote, 1);
    sync_ok(s);
    save_ok(s, m, later, 3);
    sync_ok(s);
    check_state(s, m, "after saving");
    rfs_close(s);

    s = open_ok(d, 0);
    check_state(s, m, "after reopening");
    /* A clean close without rfs_sync keeps what was written too. */
    struct op more[] = {entry_op(3, "c")};
    save_ok(s, m, more, 1);
    rfs_close(s);
    s = open_ok(d, 0);
    check_state(s, m, "after reopening without a sync");
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

START_TEST(test_storage_truncate_then_append)
{
    struct sim_disk *d = new_disk(3);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 0);
    struct op conflict[] = {hard_op(2, 0), trunc_op(3), entry_op(2, "x"),
                            entry_op(2, "y")};
    struct op cut[] = {trunc_op(2)};
    struct op past_end[] = {trunc_op(9)};
    struct op again[] = {entry_op(4, "z")};
    char segment[64];
    off_t size;

    append_entries(s, m, 5, 1, 5);
    save_ok(s, m, conflict, 4);
    ck_assert_uint_eq(rfs_last_index(s), 4);
    sync_ok(s);
    check_state(s, m, "after truncating and appending");
    rfs_close(s);
    s = open_ok(d, 0);
    check_state(s, m, "reopened after truncating and appending");

    /* A truncation past the end of the log writes nothing. */
    only_file(d, "wal-", ".log", segment, sizeof(segment));
    size = file_size(d, segment);

    save_ok(s, m, past_end, 1);
    ck_assert_uint_eq(rfs_last_index(s), 4);
    ck_assert_int_eq(file_size(d, segment), size);
    save_ok(s, m, cut, 1);
    ck_assert_uint_eq(rfs_last_index(s), 1);
    save_ok(s, m, again, 1);
    sync_ok(s);
    rfs_close(s);
    s = open_ok(d, 0);
    check_state(s, m, "reopened after a truncation alone");
    ck_assert_uint_eq(rfs_last_index(s), 2);
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

/* ---- installed snapshots ----------------------------------------------- */

/* Saves entries 1 to 6 of terms 1, 1, 2, 2, 3, 3. */
static void six_entries(struct rfs *s, struct model *m)
{
    struct op ops[] = {hard_op(3, 1),    entry_op(1, "1"), entry_op(1, "2"),
                       entry_op(2, "3"), entry_op(2, "4"), entry_op(3, "5"),
                       entry_op(3, "6")};

    save_ok(s, m, ops, 7);
    sync_ok(s);
}

START_TEST(test_storage_install_snapshot_keeps_suffix)
{
    struct sim_disk *d = new_disk(4);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 0);
    struct op install[] = {snap_op(4, 2, false, "state at 4")};
    struct listing l;

    six_entries(s, m);
    save_ok(s, m, install, 1);
    ck_assert_uint_eq(m->n, 2); /* entries 5 and 6 stay */
    ck_assert_uint_eq(rfs_last_index(s), 6);
    sync_ok(s);
    check_state(s, m, "after installing");
    rfs_close(s);

    s = open_ok(d, 0);
    check_state(s, m, "reopened after installing");
    ck_assert_uint_eq(count_files(d, "snap-", ".snap", &l), 1);
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

START_TEST(test_storage_install_snapshot_drops_suffix)
{
    struct sim_disk *d = new_disk(5);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 0);
    struct op install[] = {hard_op(5, 0), snap_op(4, 5, true, "leader's")};
    struct op next[] = {entry_op(5, "after")};
    struct op beyond[] = {snap_op(20, 6, false, "far ahead")};
    struct op after_beyond[] = {entry_op(6, "21")};
    struct listing l;

    six_entries(s, m);
    save_ok(s, m, install, 2);
    ck_assert_uint_eq(m->n, 0);
    ck_assert_uint_eq(rfs_last_index(s), 4);
    save_ok(s, m, next, 1);
    sync_ok(s);
    rfs_close(s);
    s = open_ok(d, 0);
    check_state(s, m, "reopened after installing without the suffix");

    /* A snapshot past the end of the log replaces all of it. */
    save_ok(s, m, beyond, 1);
    ck_assert_uint_eq(rfs_last_index(s), 20);
    save_ok(s, m, after_beyond, 1);
    sync_ok(s);
    rfs_close(s);
    s = open_ok(d, 0);
    check_state(s, m, "reopened after a snapshot past the log");
    /* The synced records replaced the first snapshot's file. */
    ck_assert_uint_eq(count_files(d, "snap-", ".snap", &l), 1);
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

/* ---- compaction -------------------------------------------------------- */

START_TEST(test_storage_compaction_keeps_state)
{
    struct sim_disk *d = new_disk(6);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 256);
    struct rft_conf conf = conf_of(5);
    struct op vote[] = {hard_op(7, 2)};
    struct listing before;
    struct listing after;
    char segment[64];

    append_entries(s, m, 60, 1, 3);
    save_ok(s, m, vote, 1);
    size_t old_segments = count_files(d, "wal-", ".log", &before);
    ck_assert_uint_gt(old_segments, 3);

    compact_ok(s, m, 40, &conf, "snapshot at 40", 14);
    check_state(s, m, "after compacting");
    ck_assert_uint_eq(count_files(d, "wal-", ".log", &after), 1);
    only_file(d, "wal-", ".log", segment, sizeof(segment));
    ck_assert_msg(!listed(&before, segment), "%s existed before the compaction",
                  segment);
    ck_assert_uint_eq(count_files(d, "snap-", ".snap", &after), 1);
    ck_assert(listed(&after, "checkpoint"));
    rfs_close(s);

    s = open_ok(d, 256);
    check_state(s, m, "reopened after compacting");
    ck_assert_uint_eq(m->n, 20);
    ck_assert_uint_eq(m->term, 7);
    ck_assert_uint_eq(m->vote, 2);

    append_entries(s, m, 10, 7, 2);
    compact_ok(s, m, 65, &conf, "snapshot at 65", 14);
    ck_assert_uint_eq(count_files(d, "snap-", ".snap", &after), 1);
    ck_assert_uint_eq(count_files(d, "wal-", ".log", &after), 1);
    rfs_close(s);
    s = open_ok(d, 256);
    check_state(s, m, "reopened after a second compaction");

    /* Compacting the whole log leaves a checkpoint without entries. */
    compact_ok(s, m, 70, &conf, "", 0);
    rfs_close(s);
    s = open_ok(d, 256);
    check_state(s, m, "reopened after compacting everything");
    ck_assert_uint_eq(rfs_last_index(s), 70);
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

/* A crash between the checkpoint file's update and the deletion of the
 * segments it replaces: recovery deletes them. */
START_TEST(test_storage_compaction_interrupted_before_delete)
{
    struct sim_disk *d = new_disk(7);
    struct model *m = calloc(1, sizeof(*m));
    const struct kv_vfs *v = fault_vfs(d);
    struct rft_conf conf = conf_of(3);
    struct rft_snapshot snap = {.index = 30, .conf = conf};
    struct rfs *s = NULL;
    struct listing l;
    char err[1024];
    struct op op = {.kind = OP_SNAP, .index = 30, .conf = conf};

    ck_assert_int_eq(open_on(v, 256, &s, err, sizeof(err)), 0);
    append_entries(s, m, 40, 2, 4);
    ck_assert_uint_gt(count_files(d, "wal-", ".log", &l), 2);

    snap.term = op.term = 2;
    fault.fail_unlink = true;
    ck_assert_int_eq(rfs_compact(s, &snap, err, sizeof(err)), -EIO);
    ck_assert_int_eq(rfs_sync(s, err, sizeof(err)), FL_ESTICKY);
    model_apply(m, &op);
    s = crash_and_open(d, s, SIM_CRASH_LOSE_UNSYNCED, 256);
    check_state(s, m, "recovered after the interrupted compaction");
    ck_assert_uint_eq(count_files(d, "wal-", ".log", &l), 1);
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

/* A crash before the checkpoint is synced: the log before it recovers the
 * state, whatever part of the checkpoint the crash kept. */
START_TEST(test_storage_incomplete_checkpoint_ignored)
{
    struct sim_disk *d = new_disk(100 + (uint64_t)_i);
    struct model *m = calloc(1, sizeof(*m));
    struct model *compacted = calloc(1, sizeof(*compacted));
    const struct kv_vfs *v = fault_vfs(d);
    struct rft_conf conf = conf_of(3);
    struct rft_snapshot snap = {.index = 10, .term = 1, .conf = conf};
    struct op op = {.kind = OP_SNAP, .index = 10, .term = 1, .conf = conf};
    enum sim_crash mode = _i % 2 ? SIM_CRASH_TORN : SIM_CRASH_LOSE_UNSYNCED;
    struct rfs *s = NULL;
    struct rft_durable dur;
    char why[256];
    char err[1024];

    ck_assert_int_eq(open_on(v, 0, &s, err, sizeof(err)), 0);
    append_entries(s, m, 30, 1, 30);
    *compacted = *m;
    model_apply(compacted, &op);
    /* The compaction's first fdatasync seals the current segment and its
     * second one is the checkpoint's. */
    fault.fail_fdatasync = fault.fdatasyncs + 2;
    ck_assert_int_eq(rfs_compact(s, &snap, err, sizeof(err)), -EIO);
    ck_assert_msg(strstr(err, "fdatasync") != NULL, "%s", err);
    s = crash_and_open(d, s, mode, 0);
    rfs_durable(s, &dur);
    /* A torn crash may keep the whole checkpoint: then it counts. */
    ck_assert_msg(model_matches(m, &dur, why, sizeof(why)) ||
                      model_matches(compacted, &dur, why, sizeof(why)),
                  "seed %d: %s", 100 + _i, why);
    append_entries(s, m, 1, 2, 1);
    rfs_close(s);
    s = open_ok(d, 0);
    ck_assert_uint_eq(rfs_last_index(s), 31);
    rfs_close(s);
    free(m);
    free(compacted);
    sim_disk_free(d);
}
END_TEST

/* ---- crashes ----------------------------------------------------------- */

START_TEST(test_storage_crash_loses_unsynced)
{
    struct sim_disk *d = new_disk(8);
    struct model *m = calloc(1, sizeof(*m));
    struct model *synced = calloc(1, sizeof(*synced));
    struct rfs *s = open_ok(d, 0);
    struct op first[] = {hard_op(2, 1), entry_op(1, "a"), entry_op(2, "b"),
                         entry_op(2, "c")};
    struct op lost[] = {hard_op(3, 0), trunc_op(2), entry_op(3, "d")};
    struct op lost_snap[] = {snap_op(3, 3, false, "never synced")};
    struct listing l;

    save_ok(s, m, first, 4);
    sync_ok(s);
    *synced = *m;
    save_ok(s, m, lost, 3);
    save_ok(s, m, lost_snap, 1);
    ck_assert_uint_eq(count_files(d, "snap-", ".snap", &l), 1);

    s = crash_and_open(d, s, SIM_CRASH_LOSE_UNSYNCED, 0);
    check_state(s, synced, "after losing the unsynced records");
    /* The snapshot's file was durable, but no durable record names it. */
    ck_assert_uint_eq(count_files(d, "snap-", ".snap", &l), 0);
    rfs_close(s);
    free(m);
    free(synced);
    sim_disk_free(d);
}
END_TEST

START_TEST(test_storage_crash_after_sync_keeps_all)
{
    struct sim_disk *d = new_disk(9);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 128);
    struct op ops[] = {hard_op(4, 3), snap_op(2, 1, false, "snap"), trunc_op(5),
                       entry_op(4, "x")};

    append_entries(s, m, 8, 1, 3);
    save_ok(s, m, ops, 4);
    sync_ok(s);
    s = crash_and_open(d, s, SIM_CRASH_LOSE_UNSYNCED, 128);
    check_state(s, m, "after a crash that loses unsynced writes");
    s = crash_and_open(d, s, SIM_CRASH_TORN, 128);
    check_state(s, m, "after a torn crash");
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

/*
 * Finds the state s recovered among the states after the first k of ops
 * applied to synced, for k from min_ops to max_ops, and stores it in out.
 */
static void check_recovered(const struct rfs *s, const struct model *synced,
                            const struct op *ops, size_t min_ops,
                            size_t max_ops, uint64_t seed, int step,
                            struct model *out)
{
    struct model *m = malloc(sizeof(*m));
    struct rft_durable d;
    char why[256] = "";
    char first_why[256] = "";
    bool found = false;

    ck_assert_ptr_nonnull(m);
    *m = *synced;
    rfs_durable(s, &d);
    for (size_t k = 0;; k++) {
        if (k >= min_ops && model_matches(m, &d, why, sizeof(why))) {
            found = true;
            break;
        }
        if (k == min_ops)
            snprintf(first_why, sizeof(first_why), "%s", why);
        if (k == max_ops)
            break;
        model_apply(m, &ops[k]);
    }
    ck_assert_msg(found || min_ops < max_ops,
                  "seed %" PRIu64 ", step %d: the recovered state is not the "
                  "last synced one with %zu records after it: %s",
                  seed, step, min_ops, first_why);
    ck_assert_msg(found,
                  "seed %" PRIu64 ", step %d: the recovered state is not the "
                  "state after any %zu to %zu of the records written since "
                  "the last sync; against %zu of them: %s",
                  seed, step, min_ops, max_ops, min_ops, first_why);
    *out = *m;
    free(m);
}

START_TEST(test_storage_torn_crash_recovers_prefix)
{
    uint64_t seed = 200 + (uint64_t)_i;
    struct sim_disk *d = new_disk(seed);
    struct model *m = calloc(1, sizeof(*m));
    struct model *synced = calloc(1, sizeof(*synced));
    struct op *ops = calloc(64, sizeof(*ops));
    struct rfs *s = open_ok(d, 0);
    size_t n = 0;
    size_t last_save = 0;

    append_entries(s, m, 5, 1, 5);
    *synced = *m;
    for (int i = 0; i < 6; i++) {
        char text[MAX_DATA + 1];
        last_save = n;
        ops[n++] = hard_op(2 + (uint64_t)i, (uint32_t)(i % 3));
        snprintf(text, sizeof(text), "torn %d", i);
        ops[n++] = entry_op(2 + (uint64_t)i, text);
        ops[n++] = entry_op(2 + (uint64_t)i, "more");
        save_ok(s, m, ops + last_save, n - last_save);
    }
    s = crash_and_open(d, s, SIM_CRASH_TORN, 0);
    /* The simulated disk keeps the earlier writes to the file written
     * last, and tears only the last one. */
    check_recovered(s, synced, ops, last_save, n, seed, 0, m);
    rfs_close(s);
    s = open_ok(d, 0);
    check_state(s, m, "reopened after the torn crash");
    rfs_close(s);
    free(ops);
    free(m);
    free(synced);
    sim_disk_free(d);
}
END_TEST

static struct rft_conf random_conf(struct fl_rng *rng)
{
    return conf_of(1 + (size_t)fl_rng_below(rng, 5));
}

static void random_bytes(struct fl_rng *rng, unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)fl_rng_below(rng, 256);
}

/* Fills ops with a random update that fits m, as the core could send it.
 * Returns how many ops. */
static size_t random_update(struct fl_rng *rng, const struct model *m,
                            struct op *ops)
{
    uint64_t base = m->snap_index;
    uint64_t last = model_last(m);
    uint64_t term = m->term;
    uint32_t vote = m->vote;
    size_t n = 0;

    if (fl_rng_chance(rng, 0.3)) {
        if (vote == 0 && term > 0 && fl_rng_chance(rng, 0.5)) {
            vote = 1 + (uint32_t)fl_rng_below(rng, 3);
        } else {
            term += 1 + fl_rng_below(rng, 2);
            vote = (uint32_t)fl_rng_below(rng, 4);
        }
        ops[n++] = hard_op(term, vote);
    }
    if (fl_rng_chance(rng, 0.08)) {
        struct op *op = &ops[n++];
        uint64_t index = base + 1 + fl_rng_below(rng, last - base + 4);
        bool keep = index < last && fl_rng_chance(rng, 0.5);
        *op = (struct op){.kind = OP_SNAP, .index = index};
        op->conf = random_conf(rng);
        op->len = (size_t)fl_rng_below(rng, MAX_SNAP + 1);
        random_bytes(rng, op->data, op->len);
        if (keep) {
            /* The core keeps the suffix only when the terms agree. */
            op->term = model_term_at(m, index);
        } else {
            op->term = 1 + fl_rng_below(rng, term + 3);
            op->drop = index < last || fl_rng_chance(rng, 0.5);
        }
        base = index;
        if (op->drop || index > last)
            last = index;
        if (keep && last >= index + 2 && fl_rng_chance(rng, 0.3)) {
            uint64_t from = index + 2 + fl_rng_below(rng, last - index - 1);
            ops[n++] = trunc_op(from);
            last = from - 1;
        }
    } else if (last > base && fl_rng_chance(rng, 0.15)) {
        uint64_t from = base + 1 + fl_rng_below(rng, last - base);
        ops[n++] = trunc_op(from);
        last = from - 1;
    }
    if (fl_rng_chance(rng, 0.7) && last - base + 4 < MAX_LOG) {
        uint64_t count = 1 + fl_rng_below(rng, 4);
        for (uint64_t i = 0; i < count; i++) {
            struct op *op = &ops[n++];
            *op = (struct op){.kind = OP_ENTRY};
            op->e.term = term > 0 ? term : 1;
            op->e.type =
                fl_rng_chance(rng, 0.2) ? RFT_ENTRY_NOOP : RFT_ENTRY_COMMAND;
            op->e.len = (size_t)fl_rng_below(rng, MAX_DATA + 1);
            random_bytes(rng, op->e.data, op->e.len);
        }
    }
    return n;
}

/*
 * Random updates, syncs, compactions, clean reopens and crashes of both
 * kinds on small segments. After a crash that loses unsynced writes the
 * state must be the last synced one. After a torn crash it must be the
 * state after a prefix of the records written since the last sync, at
 * least up to the last update (the simulated disk tears only the last
 * write).
 */
START_TEST(test_storage_random_crashes)
{
    uint64_t seed = 1000 + (uint64_t)_i;
    uint64_t segment_bytes = 200 + 100 * (uint64_t)(_i % 4);
    struct sim_disk *d = new_disk(seed);
    struct model *cur = calloc(1, sizeof(*cur));
    struct model *synced = calloc(1, sizeof(*synced));
    struct op *ops = calloc(MAX_OPS, sizeof(*ops));
    struct fl_rng rng;
    struct rfs *s = open_ok(d, segment_bytes);
    size_t n_ops = 0;
    size_t last_save = 0;
    unsigned crashes = 0;
    unsigned compactions = 0;
    char err[1024];

    fl_rng_seed(&rng, seed);
    for (int step = 0; step < 400; step++) {
        double r = fl_rng_double(&rng);
        if (r < 0.55 && n_ops + 16 < MAX_OPS) {
            size_t n = random_update(&rng, cur, ops + n_ops);
            int rc = save_ops(s, cur, ops + n_ops, n, err, sizeof(err));
            ck_assert_msg(rc == 0, "seed %" PRIu64 ", step %d: rfs_save: %s",
                          seed, step, err);
            if (n > 0) {
                last_save = n_ops;
                n_ops += n;
            }
        } else if (r < 0.75 || n_ops + 16 >= MAX_OPS) {
            sync_ok(s);
            *synced = *cur;
            n_ops = last_save = 0;
        } else if (r < 0.80) {
            if (model_last(cur) > cur->snap_index) {
                unsigned char data[MAX_SNAP];
                struct rft_conf conf = random_conf(&rng);
                uint64_t index =
                    cur->snap_index + 1 +
                    fl_rng_below(&rng, model_last(cur) - cur->snap_index);
                size_t len = (size_t)fl_rng_below(&rng, MAX_SNAP + 1);
                random_bytes(&rng, data, len);
                compact_ok(s, cur, index, &conf, data, len);
                *synced = *cur;
                n_ops = last_save = 0;
                compactions++;
            }
        } else if (r < 0.92) {
            enum sim_crash mode = fl_rng_chance(&rng, 0.5)
                                      ? SIM_CRASH_TORN
                                      : SIM_CRASH_LOSE_UNSYNCED;
            s = crash_and_open(d, s, mode, segment_bytes);
            if (mode == SIM_CRASH_TORN)
                check_recovered(s, synced, ops, last_save, n_ops, seed, step,
                                cur);
            else
                check_recovered(s, synced, ops, 0, 0, seed, step, cur);
            *synced = *cur;
            n_ops = last_save = 0;
            crashes++;
        } else {
            /* A clean restart keeps everything written. */
            rfs_close(s);
            s = open_ok(d, segment_bytes);
            check_state(s, cur, "after a clean reopen");
            *synced = *cur;
            n_ops = last_save = 0;
        }
    }
    ck_assert_uint_gt(crashes, 0);
    ck_assert_uint_gt(compactions, 0);
    rfs_close(s);
    free(ops);
    free(cur);
    free(synced);
    sim_disk_free(d);
}
END_TEST

/* ---- damage ------------------------------------------------------------ */

START_TEST(test_storage_corrupt_synced_record_named)
{
    struct sim_disk *d = new_disk(10);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 0);
    char segment[64];
    char err[1024];
    int rc;

    append_entries(s, m, 3, 1, 3);
    rfs_close(s);
    only_file(d, "wal-", ".log", segment, sizeof(segment));
    /* The last byte of the last record, which an fdatasync and the
     * watermark cover, so it is no torn tail. */
    flip_byte(d, segment, file_size(d, segment) - 1);
    s = NULL;
    rc = open_on(sim_disk_vfs(d), 0, &s, err, sizeof(err));
    ck_assert_int_eq(rc, FL_ECORRUPT);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, segment) != NULL, "%s", err);
    ck_assert_msg(strstr(err, "offset") != NULL, "%s", err);
    free(m);
    sim_disk_free(d);
}
END_TEST

START_TEST(test_storage_corrupt_sealed_segment_named)
{
    struct sim_disk *d = new_disk(11);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 128);
    struct listing l;
    char err[1024];
    int rc;

    append_entries(s, m, 20, 1, 2);
    rfs_close(s);
    ck_assert_uint_gt(count_files(d, "wal-", ".log", &l), 2);
    /* A payload byte of the first record of the oldest segment. */
    flip_byte(d, "wal-00000000000000000001.log", KV_SEG_HEADER + 30);
    rc = open_on(sim_disk_vfs(d), 128, &s, err, sizeof(err));
    ck_assert_int_eq(rc, FL_ECORRUPT);
    ck_assert_msg(strstr(err, "wal-00000000000000000001.log") != NULL, "%s",
                  err);
    ck_assert_msg(strstr(err, "offset 32") != NULL, "%s", err);
    free(m);
    sim_disk_free(d);
}
END_TEST

/* A partial record above the watermark is a torn tail: cut, not an
 * error. */
START_TEST(test_storage_torn_tail_above_watermark_cut)
{
    struct sim_disk *d = new_disk(12);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 0);
    struct fl_buf rec;
    unsigned char payload[40] = {0};
    char segment[64];
    off_t size;

    append_entries(s, m, 4, 1, 4);
    rfs_close(s);
    only_file(d, "wal-", ".log", segment, sizeof(segment));
    size = file_size(d, segment);
    fl_buf_init(&rec);
    kv_put_u64(payload, 5);
    kv_put_u64(payload + 8, 1);
    kv_put_u32(payload + 16, RFT_ENTRY_COMMAND);
    kv_rec_encode(&rec, (enum kv_rec_type)KV_REC_RAFT_ENTRY, 5, payload,
                  sizeof(payload));
    append_bytes(d, segment, rec.data, rec.len / 2);
    fl_buf_free(&rec);

    s = open_ok(d, 0);
    check_state(s, m, "after cutting the torn tail");
    ck_assert_int_eq(file_size(d, segment), size);
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

START_TEST(test_storage_entry_gap_rejected)
{
    struct sim_disk *d = new_disk(13);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 0);
    struct fl_buf rec;
    unsigned char payload[ENTRY_HEAD_BYTES];
    char segment[64];
    char err[1024];
    int rc;

    append_entries(s, m, 2, 1, 2); /* records 1 and 2 */
    rfs_close(s);
    only_file(d, "wal-", ".log", segment, sizeof(segment));
    /* A valid record 3 holding entry 5 where entry 3 belongs. */
    kv_put_u64(payload, 5);
    kv_put_u64(payload + 8, 1);
    kv_put_u32(payload + 16, RFT_ENTRY_COMMAND);
    fl_buf_init(&rec);
    kv_rec_encode(&rec, (enum kv_rec_type)KV_REC_RAFT_ENTRY, 3, payload,
                  sizeof(payload));
    append_bytes(d, segment, rec.data, rec.len);
    fl_buf_free(&rec);

    rc = open_on(sim_disk_vfs(d), 0, &s, err, sizeof(err));
    ck_assert_int_eq(rc, FL_ECORRUPT);
    ck_assert_msg(strstr(err, segment) != NULL, "%s", err);
    ck_assert_msg(strstr(err, "does not follow") != NULL, "%s", err);
    free(m);
    sim_disk_free(d);
}
END_TEST

/* Saves five entries and a snapshot at 3, and copies the snapshot file's
 * name to name. */
static void saved_snapshot(struct sim_disk *d, struct model *m, char *name,
                           size_t size)
{
    struct rfs *s = open_ok(d, 0);
    struct op install[] = {snap_op(3, 1, false, "snapshot bytes")};

    append_entries(s, m, 5, 1, 0);
    save_ok(s, m, install, 1);
    sync_ok(s);
    rfs_close(s);
    only_file(d, "snap-", ".snap", name, size);
}

START_TEST(test_storage_damaged_snapshot_rejected)
{
    static const off_t offsets[] = {0, 20, 92};
    struct model *m = calloc(1, sizeof(*m));
    char name[64];
    char err[1024];

    for (size_t i = 0; i < 3; i++) {
        struct sim_disk *d = new_disk(14);
        struct rfs *s = NULL;
        memset(m, 0, sizeof(*m));
        saved_snapshot(d, m, name, sizeof(name));
        flip_byte(d, name, offsets[i]);
        int rc = open_on(sim_disk_vfs(d), 0, &s, err, sizeof(err));
        ck_assert_int_eq(rc, FL_ECORRUPT);
        ck_assert_msg(strstr(err, name) != NULL, "%s", err);
        ck_assert_msg(strstr(err, "offset") != NULL, "%s", err);
        sim_disk_free(d);
    }
    free(m);
}
END_TEST

START_TEST(test_storage_missing_snapshot_rejected)
{
    struct sim_disk *d = new_disk(15);
    struct model *m = calloc(1, sizeof(*m));
    const struct kv_vfs *v = sim_disk_vfs(d);
    struct rfs *s = NULL;
    char name[64];
    char path[128];
    char err[1024];

    saved_snapshot(d, m, name, sizeof(name));
    snprintf(path, sizeof(path), DIR_PATH "/%s", name);
    ck_assert_int_eq(v->unlink(v->ctx, path), 0);
    ck_assert_int_eq(v->fsync_dir(v->ctx, DIR_PATH), 0);
    ck_assert_int_eq(open_on(v, 0, &s, err, sizeof(err)), FL_ECORRUPT);
    ck_assert_msg(strstr(err, name) != NULL, "%s", err);
    free(m);
    sim_disk_free(d);
}
END_TEST

START_TEST(test_storage_missing_checkpoint_segment_rejected)
{
    struct sim_disk *d = new_disk(16);
    struct model *m = calloc(1, sizeof(*m));
    const struct kv_vfs *v = sim_disk_vfs(d);
    struct rft_conf conf = conf_of(3);
    struct rfs *s = open_ok(d, 0);
    char segment[64];
    char path[128];
    char err[1024];

    append_entries(s, m, 10, 1, 5);
    compact_ok(s, m, 6, &conf, "six", 3);
    rfs_close(s);
    only_file(d, "wal-", ".log", segment, sizeof(segment));
    snprintf(path, sizeof(path), DIR_PATH "/%s", segment);
    ck_assert_int_eq(v->unlink(v->ctx, path), 0);
    ck_assert_int_eq(v->fsync_dir(v->ctx, DIR_PATH), 0);
    s = NULL;
    ck_assert_int_eq(open_on(v, 0, &s, err, sizeof(err)), FL_ECORRUPT);
    ck_assert_ptr_null(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

/* ---- bad input --------------------------------------------------------- */

START_TEST(test_storage_invalid_updates_rejected)
{
    struct sim_disk *d = new_disk(17);
    struct model *m = calloc(1, sizeof(*m));
    struct rfs *s = open_ok(d, 0);
    struct op setup[] = {hard_op(3, 2), entry_op(1, "1"), entry_op(2, "2"),
                         entry_op(3, "3")};
    struct op install[] = {snap_op(1, 1, false, "one")};
    struct op term_back[] = {hard_op(2, 0)};
    struct op other_vote[] = {hard_op(3, 1)};
    struct op old_snap[] = {snap_op(1, 1, false, "again")};
    struct op wrong_keep[] = {snap_op(2, 9, false, "term differs")};
    struct op into_snap[] = {trunc_op(1)};
    struct op bad_type[] = {noop_op(3)};
    struct op bad_conf[] = {snap_op(3, 3, false, "conf")};
    const struct {
        const struct op *ops;
        size_t n;
        const char *what;
    } cases[] = {
        {term_back, 1, "below the saved term"},
        {other_vote, 1, "changes the vote"},
        {old_snap, 1, "not above the saved snapshot"},
        {wrong_keep, 1, "keeps the entries after it"},
        {into_snap, 1, "reaches into the snapshot"},
        {bad_type, 1, "unknown type"},
        {bad_conf, 1, "invalid configuration"},
    };
    struct rft_entry entry = {.term = 3, .type = RFT_ENTRY_COMMAND};
    struct rft_update gap = {
        .first_index = 6, .entries = &entry, .n_entries = 1};
    struct rft_snapshot beyond = {.index = 9, .term = 3, .conf = conf_of(1)};
    struct rft_snapshot wrong_term = {
        .index = 2, .term = 1, .conf = conf_of(1)};
    char segment[64];
    char err[1024];
    off_t size;

    save_ok(s, m, setup, 4);
    save_ok(s, m, install, 1);
    sync_ok(s);
    bad_type[0].e.type = (enum rft_entry_type)7;
    bad_conf[0].conf.nodes[1] = 1; /* node 1 twice */
    only_file(d, "wal-", ".log", segment, sizeof(segment));
    size = file_size(d, segment);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct model copy = *m;
        int rc = save_ops(s, &copy, cases[i].ops, cases[i].n, err, sizeof(err));
        ck_assert_msg(rc == FL_EINPUT, "case %zu: rc %d", i, rc);
        ck_assert_msg(strstr(err, cases[i].what) != NULL, "case %zu: %s", i,
                      err);
    }
    ck_assert_int_eq(rfs_save(s, &gap, err, sizeof(err)), FL_EINPUT);
    ck_assert_msg(strstr(err, "entries start at index 6") != NULL, "%s", err);
    ck_assert_int_eq(rfs_compact(s, &beyond, err, sizeof(err)), FL_EINPUT);
    ck_assert_msg(strstr(err, "beyond the log") != NULL, "%s", err);
    ck_assert_int_eq(rfs_compact(s, &wrong_term, err, sizeof(err)), FL_EINPUT);
    ck_assert_msg(strstr(err, "has term 1") != NULL, "%s", err);

    /* Nothing was written, and the storage still works. */
    check_state(s, m, "after the rejected updates");
    ck_assert_int_eq(file_size(d, segment), size);
    append_entries(s, m, 1, 3, 1);
    rfs_close(s);
    s = open_ok(d, 0);
    check_state(s, m, "reopened after the rejected updates");
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

START_TEST(test_storage_failure_is_sticky)
{
    struct sim_disk *d = new_disk(18);
    struct model *m = calloc(1, sizeof(*m));
    const struct kv_vfs *v = fault_vfs(d);
    struct rft_conf conf = conf_of(1);
    struct rft_snapshot snap = {.index = 1, .term = 1, .conf = conf};
    struct op more[] = {entry_op(1, "more")};
    struct rfs *s = NULL;
    char err[1024];

    ck_assert_int_eq(open_on(v, 0, &s, err, sizeof(err)), 0);
    append_entries(s, m, 2, 1, 0);
    fault.fail_fdatasync = fault.fdatasyncs + 1;
    ck_assert_int_eq(rfs_sync(s, err, sizeof(err)), -EIO);
    ck_assert_msg(strstr(err, "fdatasync") != NULL, "%s", err);
    /* Never retried: the next sync fails without calling fdatasync. */
    unsigned calls = fault.fdatasyncs;
    ck_assert_int_eq(rfs_sync(s, err, sizeof(err)), FL_ESTICKY);
    ck_assert_msg(strstr(err, "fdatasync") != NULL, "%s", err);
    ck_assert_uint_eq(fault.fdatasyncs, calls);
    ck_assert_int_eq(save_ops(s, m, more, 1, err, sizeof(err)), FL_ESTICKY);
    ck_assert_int_eq(rfs_compact(s, &snap, err, sizeof(err)), FL_ESTICKY);
    rfs_close(s);

    /* Reopening recovers what reached the disk. */
    s = open_ok(d, 0);
    check_state(s, m, "reopened after the failure");
    rfs_close(s);
    free(m);
    sim_disk_free(d);
}
END_TEST

/* ---- the real file system ---------------------------------------------- */

static void make_temp_dir(char *path, size_t size)
{
    const char *base = getenv("TMPDIR");

    snprintf(path, size, "%s/fl-rfs-XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(path));
}

/* Deletes dir and the files in it. */
static void remove_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *de;

    if (dp != NULL) {
        while ((de = readdir(dp)) != NULL) {
            char path[4096];
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            remove_dir(path); /* a subdirectory */
            unlink(path);
        }
        closedir(dp);
    }
    rmdir(dir);
}

START_TEST(test_storage_posix_round_trip_and_lock)
{
    struct model *m = calloc(1, sizeof(*m));
    struct rft_conf conf = conf_of(3);
    struct op install[] = {hard_op(2, 1), snap_op(2, 1, false, "real")};
    struct rfs *s = NULL;
    struct rfs *other = NULL;
    char tmp[1024];
    char dir[1100];
    char err[1024];

    make_temp_dir(tmp, sizeof(tmp));
    snprintf(dir, sizeof(dir), "%s/raft", tmp);
    ck_assert_int_eq(rfs_open(&s, dir, NULL, 4096, err, sizeof(err)), 0);
    ck_assert_int_eq(rfs_open(&other, dir, NULL, 0, err, sizeof(err)), -EBUSY);
    ck_assert_ptr_null(other);
    append_entries(s, m, 50, 1, 7);
    save_ok(s, m, install, 2);
    compact_ok(s, m, 30, &conf, "thirty", 6);
    append_entries(s, m, 5, 2, 5);
    rfs_close(s);

    ck_assert_int_eq(rfs_open(&s, dir, NULL, 4096, err, sizeof(err)), 0);
    check_state(s, m, "reopened on the real file system");
    rfs_close(s);
    remove_dir(tmp);
    free(m);
}
END_TEST

START_TEST(test_storage_dir_is_file_rejected)
{
    struct rfs *s = NULL;
    char tmp[1024];
    char file[1100];
    char err[1024];
    int fd;
    int rc;

    make_temp_dir(tmp, sizeof(tmp));
    snprintf(file, sizeof(file), "%s/not-a-dir", tmp);
    fd = open(file, O_WRONLY | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);
    rc = rfs_open(&s, file, NULL, 0, err, sizeof(err));
    ck_assert_int_eq(rc, -ENOTDIR);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, file) != NULL, "%s", err);
    remove_dir(tmp);
}
END_TEST

static Suite *storage_suite(void)
{
    Suite *s = suite_create("raft_storage");
    TCase *t = tcase_create("storage");

    tcase_add_test(t, test_storage_new_is_empty);
    tcase_add_test(t, test_storage_round_trip);
    tcase_add_test(t, test_storage_truncate_then_append);
    tcase_add_test(t, test_storage_install_snapshot_keeps_suffix);
    tcase_add_test(t, test_storage_install_snapshot_drops_suffix);
    tcase_add_test(t, test_storage_compaction_keeps_state);
    tcase_add_test(t, test_storage_compaction_interrupted_before_delete);
    tcase_add_loop_test(t, test_storage_incomplete_checkpoint_ignored, 0, 8);
    tcase_add_test(t, test_storage_crash_loses_unsynced);
    tcase_add_test(t, test_storage_crash_after_sync_keeps_all);
    tcase_add_loop_test(t, test_storage_torn_crash_recovers_prefix, 0, 20);
    tcase_add_test(t, test_storage_corrupt_synced_record_named);
    tcase_add_test(t, test_storage_corrupt_sealed_segment_named);
    tcase_add_test(t, test_storage_torn_tail_above_watermark_cut);
    tcase_add_test(t, test_storage_entry_gap_rejected);
    tcase_add_test(t, test_storage_damaged_snapshot_rejected);
    tcase_add_test(t, test_storage_missing_snapshot_rejected);
    tcase_add_test(t, test_storage_missing_checkpoint_segment_rejected);
    tcase_add_test(t, test_storage_invalid_updates_rejected);
    tcase_add_test(t, test_storage_failure_is_sticky);
    tcase_add_test(t, test_storage_posix_round_trip_and_lock);
    tcase_add_test(t, test_storage_dir_is_file_rejected);
    suite_add_tcase(s, t);

    t = tcase_create("random");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, test_storage_random_crashes, 0, 60);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(storage_suite());
    int failed;

    /* Recovery warns about every torn tail it cuts, and the crash tests
     * make many on purpose. */
    fl_log_set_level(FL_LOG_ERROR);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
