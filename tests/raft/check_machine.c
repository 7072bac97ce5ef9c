/*
 * Tests for the replicated KV state machine (systems/raft/machine.c) on a
 * simulated disk: each operation's effect and response, session dedup,
 * invalid commands, replay after a crash, and snapshots.
 */
#include "disk.h"
#include "error.h"
#include "log.h"
#include "machine.h"
#include "session.h"

#include <check.h>
#include <string.h>

static struct sim_disk *disk;
static struct rfm *m;
static struct rfm_result out;
static uint64_t next_index;

static struct rfm *open_machine(unsigned bugs)
{
    struct kv_options o;
    struct rfm *mm = NULL;
    char err[512];

    kv_options_default(&o);
    o.vfs = sim_disk_vfs(disk);
    o.manual = true;
    ck_assert_msg(rfm_open(&mm, "/m", &o, bugs, err, sizeof(err)) == 0, "%s",
                  err);
    return mm;
}

static void setup_with(unsigned bugs)
{
    ck_assert_int_eq(sim_disk_new(&disk, 7), 0);
    m = open_machine(bugs);
    fl_buf_init(&out.response);
    next_index = 1;
}

static void setup(void)
{
    setup_with(0);
}

static void teardown(void)
{
    rfm_close(m);
    sim_disk_free(disk);
    fl_buf_free(&out.response);
}

static struct fl_str str(const char *s)
{
    return (struct fl_str){s, strlen(s)};
}

/* Applies one command from client at seq as the next index. */
static void apply(uint64_t client, uint64_t seq, enum rfm_op op,
                  const char *key, const char *value, const char *expected)
{
    struct fl_buf opb, cmd;
    struct rft_entry e = {.term = 1, .type = RFT_ENTRY_COMMAND};

    fl_buf_init(&opb);
    fl_buf_init(&cmd);
    rfm_encode_op(&opb, op, str(key), str(value), str(expected));
    rft_command_encode(&cmd, client, seq, opb.data, opb.len);
    e.data = (const unsigned char *)cmd.data;
    e.len = cmd.len;
    ck_assert_int_eq(rfm_apply(m, next_index++, &e, &out), 0);
    fl_buf_free(&opb);
    fl_buf_free(&cmd);
}

static void expect_response(const char *want)
{
    ck_assert(out.answered);
    ck_assert_uint_eq(out.response.len, strlen(want));
    ck_assert_int_eq(memcmp(out.response.data, want, strlen(want)), 0);
}

static void expect_value(const char *key, const char *want)
{
    struct fl_buf v;
    bool found;

    fl_buf_init(&v);
    ck_assert_int_eq(rfm_get(m, str(key), &v, &found), 0);
    ck_assert(found == (*want != '\0'));
    ck_assert_uint_eq(v.len, strlen(want));
    ck_assert(v.len == 0 || memcmp(v.data, want, v.len) == 0);
    fl_buf_free(&v);
}

START_TEST(test_operations)
{
    apply(1, 1, RFM_PUT, "k", "a", "");
    expect_response("OK");
    apply(1, 2, RFM_APPEND, "k", "b", "");
    expect_response("OK");
    expect_value("k", "ab");
    apply(1, 3, RFM_CAS, "k", "x", "zz");
    expect_response("0");
    expect_value("k", "ab");
    apply(1, 4, RFM_CAS, "k", "x", "ab");
    expect_response("1");
    expect_value("k", "x");
    apply(1, 5, RFM_CAS, "missing", "x", "");
    expect_response("0");
    apply(1, 6, RFM_DELETE, "k", "", "");
    expect_response("1");
    expect_value("k", "");
    apply(1, 7, RFM_DELETE, "k", "", "");
    expect_response("0");
    ck_assert_uint_eq(rfm_applied(m), 7);
}
END_TEST

/* A retried command gets the response from its session record and is
 * applied once. An older one is neither applied nor replied to. */
START_TEST(test_session_dedup)
{
    apply(9, 1, RFM_APPEND, "k", "a", "");
    apply(9, 1, RFM_APPEND, "k", "a", "");
    expect_response("OK");
    expect_value("k", "a");
    apply(9, 2, RFM_CAS, "k", "b", "a");
    expect_response("1");
    apply(9, 2, RFM_CAS, "k", "b", "a");
    expect_response("1"); /* the cached response, not a second compare */
    expect_value("k", "b");
    apply(9, 1, RFM_APPEND, "k", "a", "");
    ck_assert(!out.answered);
    expect_value("k", "b");
    /* Client 0 has no session: every command applies. */
    apply(0, 1, RFM_APPEND, "j", "x", "");
    apply(0, 1, RFM_APPEND, "j", "x", "");
    expect_value("j", "xx");
}
END_TEST

START_TEST(test_bug_no_session_dedup)
{
    teardown();
    setup_with(RFT_BUG_NO_SESSION_DEDUP);
    apply(9, 1, RFM_APPEND, "k", "a", "");
    apply(9, 1, RFM_APPEND, "k", "a", "");
    expect_value("k", "aa");
}
END_TEST

/* Bytes that are no command, a reserved key and a no-op change nothing
 * but the applied index. */
START_TEST(test_invalid_commands)
{
    struct rft_entry junk = {.term = 1,
                             .type = RFT_ENTRY_COMMAND,
                             .data = (const unsigned char *)"junk",
                             .len = 4};
    struct rft_entry noop = {.term = 1, .type = RFT_ENTRY_NOOP};

    ck_assert_int_eq(rfm_apply(m, next_index++, &junk, &out), 0);
    ck_assert(!out.answered);
    ck_assert_int_eq(rfm_apply(m, next_index++, &noop, &out), 0);
    ck_assert(!out.answered);
    apply(1, 1, RFM_PUT, "\xffsession/1", "forged", "");
    ck_assert(!out.answered);
    ck_assert_uint_eq(rfm_applied(m), 3);
}
END_TEST

/* After a crash the engine recovers what it synced, skips indexes it
 * applied, and takes the rest again. */
START_TEST(test_replay_after_crash)
{
    apply(1, 1, RFM_PUT, "k", "a", "");
    ck_assert_int_eq(rfm_sync(m), 0);
    apply(1, 2, RFM_APPEND, "k", "b", "");
    sim_disk_crash(disk, SIM_CRASH_LOSE_UNSYNCED);
    rfm_close(m);
    sim_disk_restart(disk);
    m = open_machine(0);
    ck_assert_uint_eq(rfm_applied(m), 1);
    expect_value("k", "a");
    next_index = 1;
    apply(1, 1, RFM_PUT, "k", "a", "");
    ck_assert(!out.answered); /* index 1 was applied */
    apply(1, 2, RFM_APPEND, "k", "b", "");
    expect_response("OK");
    expect_value("k", "ab");
}
END_TEST

START_TEST(test_snapshot_moves_state)
{
    struct fl_buf snap;
    uint64_t applied;
    char err[512];

    apply(4, 1, RFM_PUT, "k", "v", "");
    fl_buf_init(&snap);
    ck_assert_int_eq(rfm_export(m, &snap, &applied), 0);
    ck_assert_uint_eq(applied, 1);
    teardown();
    setup();
    apply(5, 1, RFM_PUT, "other", "x", "");
    ck_assert_int_eq(rfm_import(m, snap.data, snap.len, err, sizeof(err)), 0);
    expect_value("k", "v");
    expect_value("other", "");
    /* The session came along: client 4's retry gets the cached response and is
     * not applied. */
    next_index = 2;
    apply(4, 1, RFM_PUT, "k", "w", "");
    expect_response("OK");
    expect_value("k", "v");
    fl_buf_free(&snap);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("raft_machine");
    TCase *t = tcase_create("machine");
    SRunner *sr;
    int failed;

    fl_log_set_level(FL_LOG_OFF);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_operations);
    tcase_add_test(t, test_session_dedup);
    tcase_add_test(t, test_bug_no_session_dedup);
    tcase_add_test(t, test_invalid_commands);
    tcase_add_test(t, test_replay_after_crash);
    tcase_add_test(t, test_snapshot_moves_state);
    suite_add_tcase(s, t);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
