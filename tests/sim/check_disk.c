/*
 * Tests for the simulated disk (sim/disk.c): what a power cut keeps and
 * loses, and the KV engine running on it through crashes that lose every
 * unsynced write or tear the last one. The engine must keep every
 * acknowledged write; with the planted ack-before-fsync or
 * skip-dir-fsync bug, some seed must lose one.
 */
#include "disk.h"
#include "engine.h"
#include "wal.h"

#include "error.h"
#include "log.h"
#include "rng.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sim_disk *new_disk(uint64_t seed)
{
    struct sim_disk *d = NULL;

    ck_assert_int_eq(sim_disk_new(&d, seed), 0);
    ck_assert_int_eq(sim_disk_vfs(d)->mkdir(sim_disk_vfs(d)->ctx, "/d", 0755),
                     0);
    return d;
}

static int open_file(struct sim_disk *d, const char *path, int flags)
{
    const struct kv_vfs *v = sim_disk_vfs(d);

    return v->open(v->ctx, path, flags, 0644);
}

/* Returns the size of path after a fresh open, or -1 when it is missing. */
static long size_of(struct sim_disk *d, const char *path)
{
    const struct kv_vfs *v = sim_disk_vfs(d);
    int fd = open_file(d, path, O_RDWR);
    off_t size = -1;

    if (fd < 0)
        return -1;
    ck_assert_int_eq(v->size(v->ctx, fd, &size), 0);
    v->close(v->ctx, fd);
    return (long)size;
}

static void write_at(struct sim_disk *d, int fd, const char *text, off_t off)
{
    const struct kv_vfs *v = sim_disk_vfs(d);

    ck_assert_int_eq(kv_vfs_write_all(v, fd, text, strlen(text), off), 0);
}

/* ---- the disk ---------------------------------------------------------- */

START_TEST(test_unsynced_write_lost)
{
    struct sim_disk *d = new_disk(1);
    const struct kv_vfs *v = sim_disk_vfs(d);
    int fd = open_file(d, "/d/f", O_RDWR | O_CREAT);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(v->fsync_dir(v->ctx, "/d"), 0);
    write_at(d, fd, "synced", 0);
    ck_assert_int_eq(v->fdatasync(v->ctx, fd), 0);
    write_at(d, fd, "+lost", 6);
    ck_assert_int_eq(size_of(d, "/d/f"), 11);

    sim_disk_crash(d, SIM_CRASH_LOSE_UNSYNCED);
    /* Until the restart, nothing reaches the disk. */
    ck_assert_int_eq(open_file(d, "/d/f", O_RDWR), -EIO);
    sim_disk_restart(d);
    ck_assert_int_eq(size_of(d, "/d/f"), 6);
    sim_disk_free(d);
}
END_TEST

START_TEST(test_new_file_needs_dir_fsync)
{
    struct sim_disk *d = new_disk(1);
    const struct kv_vfs *v = sim_disk_vfs(d);
    int fd = open_file(d, "/d/a", O_RDWR | O_CREAT);

    write_at(d, fd, "data", 0);
    ck_assert_int_eq(v->fsync(v->ctx, fd), 0);
    sim_disk_crash(d, SIM_CRASH_LOSE_UNSYNCED);
    sim_disk_restart(d);
    ck_assert_int_eq(size_of(d, "/d/a"), -1); /* the entry was never synced */

    fd = open_file(d, "/d/b", O_RDWR | O_CREAT);
    write_at(d, fd, "data", 0);
    ck_assert_int_eq(v->fsync(v->ctx, fd), 0);
    ck_assert_int_eq(v->fsync_dir(v->ctx, "/d"), 0);
    sim_disk_crash(d, SIM_CRASH_LOSE_UNSYNCED);
    sim_disk_restart(d);
    ck_assert_int_eq(size_of(d, "/d/b"), 4);
    sim_disk_free(d);
}
END_TEST

START_TEST(test_rename_and_unlink_need_dir_fsync)
{
    struct sim_disk *d = new_disk(1);
    const struct kv_vfs *v = sim_disk_vfs(d);
    int fd = open_file(d, "/d/tmp", O_RDWR | O_CREAT);

    write_at(d, fd, "new", 0);
    ck_assert_int_eq(v->fsync(v->ctx, fd), 0);
    ck_assert_int_eq(v->fsync_dir(v->ctx, "/d"), 0);
    ck_assert_int_eq(v->rename(v->ctx, "/d/tmp", "/d/final"), 0);
    ck_assert_int_eq(size_of(d, "/d/final"), 3);
    sim_disk_crash(d, SIM_CRASH_LOSE_UNSYNCED);
    sim_disk_restart(d);
    ck_assert_int_eq(size_of(d, "/d/final"), -1);
    ck_assert_int_eq(size_of(d, "/d/tmp"), 3);

    ck_assert_int_eq(v->rename(v->ctx, "/d/tmp", "/d/final"), 0);
    ck_assert_int_eq(v->fsync_dir(v->ctx, "/d"), 0);
    ck_assert_int_eq(v->unlink(v->ctx, "/d/final"), 0);
    sim_disk_crash(d, SIM_CRASH_LOSE_UNSYNCED);
    sim_disk_restart(d);
    ck_assert_int_eq(size_of(d, "/d/final"), 3); /* the unlink was lost */
    ck_assert_int_eq(size_of(d, "/d/tmp"), -1);
    sim_disk_free(d);
}
END_TEST

/* Edge cases a tester found: renaming a file onto itself keeps it,
 * O_EXCL refuses an existing file, and an empty write is harmless. */
START_TEST(test_disk_edge_cases)
{
    struct sim_disk *d = new_disk(1);
    const struct kv_vfs *v = sim_disk_vfs(d);
    int fd = open_file(d, "/d/a", O_RDWR | O_CREAT);

    write_at(d, fd, "hello", 0);
    ck_assert_int_eq(v->rename(v->ctx, "/d/a", "/d/a"), 0);
    ck_assert_int_eq(size_of(d, "/d/a"), 5);
    ck_assert_int_eq(open_file(d, "/d/a", O_RDWR | O_CREAT | O_EXCL), -EEXIST);
    int empty = open_file(d, "/d/empty", O_RDWR | O_CREAT);
    ck_assert_int_eq(v->pwrite(v->ctx, empty, "", 0, 0), 0);
    sim_disk_crash(d, SIM_CRASH_TORN);
    sim_disk_restart(d);
    sim_disk_free(d);
}
END_TEST

/* A torn crash keeps a prefix of the last unsynced write, whose length
 * the seed picks; over many seeds both ends and the middle occur. */
START_TEST(test_torn_crash_keeps_prefix)
{
    bool none = false, part = false, all = false;

    for (uint64_t seed = 0; seed < 200; seed++) {
        struct sim_disk *d = new_disk(seed);
        const struct kv_vfs *v = sim_disk_vfs(d);
        int fd = open_file(d, "/d/f", O_RDWR | O_CREAT);
        char buf[16] = "";

        ck_assert_int_eq(v->fsync_dir(v->ctx, "/d"), 0);
        write_at(d, fd, "base", 0);
        ck_assert_int_eq(v->fsync(v->ctx, fd), 0);
        write_at(d, fd, "0123456789", 4);
        sim_disk_crash(d, SIM_CRASH_TORN);
        sim_disk_restart(d);
        long size = size_of(d, "/d/f");
        ck_assert_int_ge(size, 4);
        ck_assert_int_le(size, 14);
        fd = open_file(d, "/d/f", O_RDWR);
        ck_assert_int_eq(v->pread(v->ctx, fd, buf, (size_t)size, 0), size);
        ck_assert_msg(memcmp(buf, "base0123456789", (size_t)size) == 0,
                      "seed %" PRIu64 ": kept \"%.*s\"", seed, (int)size, buf);
        none |= size == 4;
        part |= size > 4 && size < 14;
        all |= size == 14;
        sim_disk_free(d);
    }
    ck_assert(none && part && all);
}
END_TEST

/* ---- the KV engine on the simulated disk ------------------------------- */

#define KEYS 8

/* For each key, the last acknowledged value and the values written after
 * it without an acknowledgement; after a crash the key must hold one of
 * them. */
struct expected {
    char acked[KEYS][32];
    char pending[KEYS][8][32];
    int n_pending[KEYS];
};

static bool value_allowed(const struct expected *x, int k, const char *got)
{
    if (strcmp(x->acked[k], got) == 0)
        return true;
    for (int i = 0; i < x->n_pending[k]; i++) {
        if (strcmp(x->pending[k][i], got) == 0)
            return true;
    }
    return false;
}

/*
 * Runs the engine with bugs on a simulated disk for several crash cycles
 * of seed. Returns 0 when every acknowledged write survived, 1 when one
 * was lost, 2 when recovery rejected the log, with the reason in why.
 */
static int crash_cycles(uint64_t seed, unsigned bugs, enum sim_crash mode,
                        char *why, size_t size)
{
    struct sim_disk *d = new_disk(seed);
    struct expected x;
    struct fl_rng rng;
    char err[1024];
    int verdict = 0;

    memset(&x, 0, sizeof(x));
    fl_rng_seed(&rng, seed);
    for (int cycle = 0; cycle < 6 && verdict == 0; cycle++) {
        struct kv_options o;
        struct kv_engine *e = NULL;

        kv_options_default(&o);
        o.vfs = sim_disk_vfs(d);
        o.segment_bytes = 512;
        o.snapshot_every = 5 + fl_rng_below(&rng, 10);
        o.bugs = bugs;
        int rc = kv_open("/d", &o, &e, err, sizeof(err));
        if (rc != 0) {
            snprintf(why, size, "cycle %d: open failed: %.400s", cycle, err);
            verdict = 2;
            break;
        }
        /* Every key must contain a value the history allows. */
        for (int k = 0; k < KEYS && verdict == 0; k++) {
            char key[8];
            struct fl_buf value;
            bool found = false;
            uint64_t wait = 0;
            snprintf(key, sizeof(key), "k%d", k);
            fl_buf_init(&value);
            ck_assert_int_eq(kv_get(e, fl_str_of(key), &value, &found, &wait),
                             0);
            char got[32] = "";
            if (found)
                snprintf(got, sizeof(got), "%.*s", (int)value.len, value.data);
            fl_buf_free(&value);
            if (!value_allowed(&x, k, got)) {
                snprintf(why, size,
                         "cycle %d: %s is \"%s\", acknowledged \"%s\"", cycle,
                         key, got, x.acked[k]);
                verdict = 1;
            }
            /* What recovery shows is now what later writes build on. */
            snprintf(x.acked[k], sizeof(x.acked[k]), "%s", got);
            x.n_pending[k] = 0;
        }
        /* Acknowledged writes, then a few in flight, then the power cut. */
        int ops = 5 + (int)fl_rng_below(&rng, 40);
        int inflight = (int)fl_rng_below(&rng, 4);
        for (int i = 0; i < ops + inflight && verdict == 0; i++) {
            int k = (int)fl_rng_below(&rng, KEYS);
            char key[8], value[32];
            uint64_t wait = 0;
            snprintf(key, sizeof(key), "k%d", k);
            snprintf(value, sizeof(value), "c%d-i%d", cycle, i);
            ck_assert_int_eq(kv_put(e, fl_str_of(key), fl_str_of(value), &wait),
                             0);
            if (i < ops) {
                ck_assert_int_eq(kv_wait(e, wait), 0);
                snprintf(x.acked[k], sizeof(x.acked[k]), "%s", value);
                x.n_pending[k] = 0;
            } else if (x.n_pending[k] < 8) {
                snprintf(x.pending[k][x.n_pending[k]++], 32, "%s", value);
            }
        }
        sim_disk_crash(d, mode);
        kv_close(e); /* its writes fail: the disk is down */
        sim_disk_restart(d);
    }
    sim_disk_free(d);
    return verdict;
}

START_TEST(test_engine_keeps_acked_writes)
{
    char why[512] = "";
    enum sim_crash mode = _i % 2 ? SIM_CRASH_TORN : SIM_CRASH_LOSE_UNSYNCED;
    uint64_t seed = 500 + (uint64_t)_i;

    int verdict = crash_cycles(seed, 0, mode, why, sizeof(why));
    ck_assert_msg(verdict == 0, "seed %" PRIu64 " (%s crash): %s", seed,
                  mode == SIM_CRASH_TORN ? "torn" : "lose-unsynced", why);
}
END_TEST

/* The planted bugs lose acknowledged writes, or leave a log recovery
 * refuses, on some seed within a small budget. */
START_TEST(test_engine_bugs_found)
{
    static const unsigned bug_list[] = {KV_BUG_ACK_BEFORE_FSYNC,
                                        KV_BUG_SKIP_DIR_FSYNC};
    unsigned bug = bug_list[_i];
    char why[512] = "";
    uint64_t seed;

    for (seed = 0; seed < 40; seed++) {
        if (crash_cycles(seed, bug, SIM_CRASH_LOSE_UNSYNCED, why,
                         sizeof(why)) != 0)
            break;
    }
    ck_assert_msg(seed < 40, "bug 0x%x not found in 40 seeds", bug);
    printf("check_disk: bug 0x%x found at seed %" PRIu64 ": %s\n", bug, seed,
           why);
}
END_TEST

static Suite *disk_suite(void)
{
    Suite *s = suite_create("sim_disk");
    TCase *t = tcase_create("disk");

    tcase_add_test(t, test_unsynced_write_lost);
    tcase_add_test(t, test_new_file_needs_dir_fsync);
    tcase_add_test(t, test_rename_and_unlink_need_dir_fsync);
    tcase_add_test(t, test_torn_crash_keeps_prefix);
    tcase_add_test(t, test_disk_edge_cases);
    suite_add_tcase(s, t);

    t = tcase_create("engine");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, test_engine_keeps_acked_writes, 0, 40);
    tcase_add_loop_test(t, test_engine_bugs_found, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(disk_suite());
    int failed;

    /* The crashed engines log their failed writes; keep the output short. */
    fl_log_set_level(FL_LOG_OFF);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
