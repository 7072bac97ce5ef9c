/*
 * Tests for the Raft cluster simulation (sim/raft_sim.c). The correct
 * cluster shows no violation and a linearizable history over many seeds
 * with every fault on. A seed replays to the same trace and history byte
 * for byte, and planted bugs are found within a budget of seeds.
 */
#include "log.h"
#include "raft.h"
#include "raft_sim.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* 300 seeds of 30 virtual seconds each, every fault on: a third with the
 * defaults, a third with the harsh faults of the bug hunts, a third with
 * three nodes and the harshest. */
START_TEST(test_correct_core_no_violation)
{
    uint64_t committed = 0, installs = 0, snapshots = 0, ok = 0, torn = 0;

    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct sim_raft_options o;
        struct sim_raft_result r;
        sim_raft_defaults(&o);
        o.seed = seed;
        if (seed % 3 == 1) {
            o.fault_every = 20;
            o.max_down = 5;
            o.drop = 0.2;
        } else if (seed % 3 == 2) {
            o.nodes = 3;
            o.fault_every = 10;
            o.max_down = 10;
            o.drop = 0.2;
        }
        ck_assert_int_eq(sim_raft_run(&o, &r), 0);
        ck_assert_msg(!r.violation && !r.unknown, "seed %" PRIu64 ": %s", seed,
                      r.why);
        committed += r.committed;
        installs += r.installs;
        snapshots += r.snapshots;
        ok += r.ops_ok;
        sim_raft_result_free(&r);
    }
    /* The cluster made progress, compacted its logs and brought followers
     * up to date from snapshots, or the check above proves little. */
    printf("check_raft_sim: 300 seeds: %" PRIu64 " entries committed, %" PRIu64
           " snapshots taken, %" PRIu64 " installed, %" PRIu64
           " client operations ok\n",
           committed, snapshots, installs, ok);
    ck_assert_uint_gt(committed, 300 * 30);
    ck_assert_uint_gt(snapshots, 300);
    ck_assert_uint_gt(installs, 30);
    ck_assert_uint_gt(ok, 300 * 100);
    (void)torn;
}
END_TEST

static bool same_bytes(const struct fl_buf *a, const struct fl_buf *b)
{
    return a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* The same seed gives the same trace and history, byte for byte; another
 * seed gives others. */
START_TEST(test_same_seed_same_bytes)
{
    struct sim_raft_options o;
    struct sim_raft_result a, b, c;

    sim_raft_defaults(&o);
    o.seed = 77;
    o.keep_trace = true;
    ck_assert_int_eq(sim_raft_run(&o, &a), 0);
    ck_assert_int_eq(sim_raft_run(&o, &b), 0);
    ck_assert_uint_gt(a.trace.len, 10000);
    ck_assert_uint_gt(a.history.len, 10000);
    ck_assert(same_bytes(&a.trace, &b.trace));
    ck_assert(same_bytes(&a.history, &b.history));
    ck_assert_uint_eq(a.trace_hash, b.trace_hash);
    ck_assert_uint_eq(a.committed, b.committed);
    o.seed = 78;
    ck_assert_int_eq(sim_raft_run(&o, &c), 0);
    ck_assert_uint_ne(a.trace_hash, c.trace_hash);
    ck_assert(!same_bytes(&a.trace, &c.trace));
    ck_assert(!same_bytes(&a.history, &c.history));
    sim_raft_result_free(&a);
    sim_raft_result_free(&b);
    sim_raft_result_free(&c);
}
END_TEST

START_TEST(test_bad_options)
{
    struct sim_raft_options o;
    struct sim_raft_result r;

    sim_raft_defaults(&o);
    o.nodes = 0;
    ck_assert_int_ne(sim_raft_run(&o, &r), 0);
    sim_raft_result_free(&r);
    sim_raft_defaults(&o);
    o.drop = 1.5;
    ck_assert_int_ne(sim_raft_run(&o, &r), 0);
    sim_raft_result_free(&r);
    sim_raft_defaults(&o);
    o.clients = 65;
    ck_assert_int_ne(sim_raft_run(&o, &r), 0);
    ck_assert_ptr_nonnull(strstr(r.why, "clients"));
    sim_raft_result_free(&r);
}
END_TEST

/* Each planted bug is found within a fixed budget of seeds, with frequent
 * crashes (half of them on the leader), short downtimes and a lossy
 * network; commit-prior-term needs the Figure 8 schedule, which three
 * nodes reach sooner, and stale-read needs leaders cut off long enough
 * for a newer one to commit. */
START_TEST(test_bugs_found)
{
    static const struct {
        unsigned bug;
        unsigned nodes;
        unsigned fault_every;
        unsigned max_down;
    } hunts[] = {
        {RFT_BUG_NO_PERSIST_VOTE, 5, 20, 5},
        {RFT_BUG_TRUNCATE_ON_MATCH, 5, 20, 5},
        {RFT_BUG_COMMIT_PRIOR_TERM, 3, 10, 5},
        {RFT_BUG_STALE_READ, 5, 400, 300},
        {RFT_BUG_NO_SESSION_DEDUP, 5, 400, 300},
    };
    unsigned bug = hunts[_i].bug;
    uint64_t seed;
    struct sim_raft_result r;

    for (seed = 1; seed <= 300; seed++) {
        struct sim_raft_options o;
        sim_raft_defaults(&o);
        o.seed = seed;
        o.bugs = bug;
        o.nodes = hunts[_i].nodes;
        o.fault_every = hunts[_i].fault_every;
        o.max_down = hunts[_i].max_down;
        o.drop = 0.2;
        ck_assert_int_eq(sim_raft_run(&o, &r), 0);
        if (r.violation)
            break;
        sim_raft_result_free(&r);
    }
    ck_assert_msg(seed <= 300, "bug 0x%x not found in 300 seeds", bug);
    printf("check_raft_sim: bug 0x%x found at seed %" PRIu64 ": %s\n", bug,
           seed, r.why);
    sim_raft_result_free(&r);
}
END_TEST

int main(void)
{
    /* Every engine on a simulated disk logs its opens and snapshots. */
    fl_log_set_level(FL_LOG_OFF);
    Suite *s = suite_create("raft_sim");
    TCase *t = tcase_create("sim");
    SRunner *sr;
    int failed;

    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_correct_core_no_violation);
    tcase_add_test(t, test_same_seed_same_bytes);
    tcase_add_test(t, test_bad_options);
    tcase_add_loop_test(t, test_bugs_found, 0, 5);
    suite_add_tcase(s, t);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
