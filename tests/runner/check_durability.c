/*
 * The durability check of faultline run (runner/durability.c) on small
 * histories written for each case: which writes it lists as lost or
 * unseen, and what it must leave alone (concurrent writes, writes with an
 * unknown outcome, repeated values).
 */
#include "run.h"

#include "buf.h"
#include "json.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S 1000000000LL /* one second in history time */

struct outcome {
    struct run_durability_result res;
    char check[65536];
    char anomalies[65536];
    size_t n_anomalies;
};

/* Runs the check on the history lines (one op per line, "|"-separated),
 * with the workload ending at end_s and the given crash spans. */
static void run_case(const char *history, double end_s,
                     const struct run_span *spans, size_t n_spans,
                     struct outcome *out)
{
    char path[] = "/tmp/fl-durability-XXXXXX";
    int fd = mkstemp(path);
    struct fl_buf check, anomalies;
    FILE *f;

    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    for (const char *p = history; *p != '\0'; p++)
        fputc(*p == '|' ? '\n' : *p, f);
    fputc('\n', f);
    ck_assert_int_eq(fclose(f), 0);

    fl_buf_init(&check);
    fl_buf_init(&anomalies);
    memset(out, 0, sizeof(*out));
    struct run_durability_input in = {
        .history_path = path,
        .workload_end_ns = (int64_t)(end_s * S),
        .spans = spans,
        .n_spans = n_spans,
    };
    ck_assert_int_eq(run_check_durability(&in, &check, &anomalies,
                                          &out->n_anomalies, &out->res),
                     0);
    snprintf(out->check, sizeof(out->check), "%.*s", (int)check.len,
             check.data);
    snprintf(out->anomalies, sizeof(out->anomalies), "[%.*s]",
             (int)anomalies.len, anomalies.data);
    fl_buf_free(&check);
    fl_buf_free(&anomalies);
    unlink(path);

    /* Whatever the case, both outputs are JSON. */
    struct fl_arena arena;
    struct fl_json v;
    const char *why = NULL;
    fl_arena_init(&arena, 0, NULL);
    ck_assert_msg(fl_json_parse(&arena, out->check, strlen(out->check), &v,
                                &why, NULL) == 0,
                  "check is not JSON (%s): %s", why, out->check);
    ck_assert_msg(fl_json_parse(&arena, out->anomalies, strlen(out->anomalies),
                                &v, &why, NULL) == 0,
                  "anomalies are not JSON (%s): %s", why, out->anomalies);
    fl_arena_destroy(&arena);
}

/* Ops as history lines: invoke and completion of one process. */
#define INV(p, t, f, k, v)                                                     \
    "{\"time\":" #t ",\"process\":" #p ",\"type\":\"invoke\",\"f\":\"" f       \
    "\",\"key\":\"" k "\",\"value\":" v "}|"
#define END(p, t, type, f, k, v)                                               \
    "{\"time\":" #t ",\"process\":" #p ",\"type\":\"" type "\",\"f\":\"" f     \
    "\",\"key\":\"" k "\",\"value\":" v "}|"

START_TEST(test_seen_writes_are_valid)
{
    struct outcome o;
    /* write 1, then a read of 1, then write 2 and a final read of 2. */
    run_case(
        INV(1, 0, "write", "a", "1") END(1, 1000000000, "ok", "write", "a", "1")
            INV(2, 2000000000, "read", "a", "null")
                END(2, 2100000000, "ok", "read", "a", "1")
                    INV(1, 3000000000, "write", "a", "2")
                        END(1, 3500000000, "ok", "write", "a", "2")
                            INV(3, 6000000000, "read", "a", "null")
                                END(3, 6100000000, "ok", "read", "a", "2"),
        5, NULL, 0, &o);
    ck_assert_msg(strstr(o.check, "\"valid\":true") != NULL, "%s", o.check);
    ck_assert_uint_eq(o.res.reads, 2);
    ck_assert_uint_eq(o.res.acknowledged, 2);
    ck_assert_uint_eq(o.n_anomalies, 0);
}
END_TEST

START_TEST(test_final_read_misses_write)
{
    struct outcome o;
    /* 2 is acknowledged at 3.5 s, but the final read returns 1. */
    run_case(INV(1, 0, "write", "a", "1")
                 END(1, 1000000000, "ok", "write", "a", "1")
                     INV(1, 3000000000, "write", "a", "2")
                         END(1, 3500000000, "ok", "write", "a", "2")
                             INV(3, 6000000000, "read", "a", "null")
                                 END(3, 6100000000, "ok", "read", "a", "1"),
             5, NULL, 0, &o);
    ck_assert_msg(strstr(o.check, "\"valid\":false") != NULL, "%s", o.check);
    ck_assert_uint_eq(o.res.lost, 1);
    ck_assert_uint_eq(o.res.unseen, 0);
    ck_assert_msg(strstr(o.check, "\"kind\":\"lost-write\",\"key\":\"a\","
                                  "\"value\":2") != NULL,
                  "%s", o.check);
    ck_assert_msg(strstr(o.check, "\"ack_s\":3.500000") != NULL, "%s", o.check);
    ck_assert_msg(strstr(o.check, "\"final\":true") != NULL, "%s", o.check);
    ck_assert_uint_eq(o.n_anomalies, 1);
    ck_assert_msg(strstr(o.anomalies, "\"checker\":\"durability\"") != NULL,
                  "%s", o.anomalies);
    /* The anomaly names the write's history lines, 3 and 4. */
    ck_assert_msg(strstr(o.anomalies, "\"op\":{\"invoke_line\":3,"
                                      "\"complete_line\":4}") != NULL,
                  "%s", o.anomalies);
}
END_TEST

START_TEST(test_stale_read_and_crash)
{
    static const struct run_span kill = {
        .start = 4 * S, .stop = 5 * S, .fault = "kill"};
    static const struct run_span pause = {
        .start = 4 * S, .stop = 5 * S, .fault = "pause"};
    const char *h =
        INV(1, 0, "write", "a", "1") END(1, 1000000000, "ok", "write", "a", "1")
            INV(1, 2000000000, "write", "a", "2")
                END(1, 3000000000, "ok", "write", "a", "2")
                    INV(2, 6000000000, "read", "a", "null")
                        END(2, 6100000000, "ok", "read", "a", "1");
    struct outcome o;

    /* No crash in between: a stale read. */
    run_case(h, 10, &pause, 1, &o);
    ck_assert_uint_eq(o.res.unseen, 1);
    ck_assert_uint_eq(o.res.lost, 0);
    ck_assert_msg(strstr(o.check, "unseen-write") != NULL, "%s", o.check);

    /* A kill between the acknowledgement and the read: lost. */
    run_case(h, 10, &kill, 1, &o);
    ck_assert_uint_eq(o.res.lost, 1);
    ck_assert_msg(strstr(o.check, "\"after_fault\":\"kill\"") != NULL, "%s",
                  o.check);
}
END_TEST

START_TEST(test_null_read_misses_every_write)
{
    struct outcome o;
    run_case(INV(1, 0, "write", "a", "1")
                 END(1, 1000000000, "ok", "write", "a", "1")
                     INV(1, 1000000000, "cas", "a", "[1,2]")
                         END(1, 2000000000, "ok", "cas", "a", "[1,2]")
                             INV(2, 6000000000, "read", "a", "null")
                                 END(2, 6100000000, "ok", "read", "a", "null"),
             5, NULL, 0, &o);
    ck_assert_uint_eq(o.res.lost, 2);
    ck_assert_uint_eq(o.n_anomalies, 2);
}
END_TEST

START_TEST(test_concurrent_and_unknown_left_alone)
{
    struct outcome o;

    /* Write 2 is still running when the read starts: 1 may be current. */
    run_case(INV(1, 0, "write", "a", "1")
                 END(1, 1000000000, "ok", "write", "a", "1")
                     INV(1, 2000000000, "write", "a", "2")
                         INV(2, 3000000000, "read", "a", "null")
                             END(2, 3100000000, "ok", "read", "a", "1")
                                 END(1, 3500000000, "ok", "write", "a", "2"),
             5, NULL, 0, &o);
    ck_assert_msg(strstr(o.check, "\"valid\":true") != NULL, "%s", o.check);

    /* The read's value comes from a write whose outcome is unknown, so
     * when it took effect is unknown too. */
    run_case(INV(1, 0, "write", "a", "1")
                 END(1, 1000000000, "info", "write", "a", "1")
                     INV(3, 2000000000, "write", "a", "2")
                         END(3, 2500000000, "ok", "write", "a", "2")
                             INV(2, 3000000000, "read", "a", "null")
                                 END(2, 3100000000, "ok", "read", "a", "1"),
             5, NULL, 0, &o);
    ck_assert_msg(strstr(o.check, "\"valid\":true") != NULL, "%s", o.check);

    /* Text no write produced is the linearizability check's to report. */
    run_case(INV(1, 0, "write", "a", "1")
                 END(1, 1000000000, "ok", "write", "a", "1")
                     INV(2, 2000000000, "read", "a", "null")
                         END(2, 2100000000, "ok", "read", "a", "\"\\u00bb29\""),
             5, NULL, 0, &o);
    ck_assert_msg(strstr(o.check, "\"valid\":true") != NULL, "%s", o.check);
    ck_assert_uint_eq(o.res.reads, 0);
}
END_TEST

START_TEST(test_repeated_values_skip)
{
    struct outcome o;
    run_case(INV(1, 0, "write", "a", "1")
                 END(1, 1000000000, "ok", "write", "a", "1")
                     INV(1, 2000000000, "write", "a", "1")
                         END(1, 3000000000, "ok", "write", "a", "1"),
             5, NULL, 0, &o);
    ck_assert_msg(strstr(o.check, "\"valid\":null,\"skipped\":") != NULL, "%s",
                  o.check);
    ck_assert(o.res.unknown);
    ck_assert_uint_eq(o.n_anomalies, 0);
}
END_TEST

/* Many reads that each miss many writes: every write is listed once, and
 * only the first 20 become anomalies. */
START_TEST(test_many_missed_writes)
{
    struct fl_buf h;
    struct outcome o;
    int64_t t = 0;

    fl_buf_init(&h);
    fl_buf_printf(&h, "{\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":"
                      "\"write\",\"key\":\"a\",\"value\":0}|{\"time\":1,"
                      "\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"key\":"
                      "\"a\",\"value\":0}|");
    for (int i = 1; i <= 2000; i++) {
        t += 10;
        fl_buf_printf(&h,
                      "{\"time\":%lld,\"process\":1,\"type\":\"invoke\","
                      "\"f\":\"write\",\"key\":\"a\",\"value\":%d}|"
                      "{\"time\":%lld,\"process\":1,\"type\":\"ok\",\"f\":"
                      "\"write\",\"key\":\"a\",\"value\":%d}|",
                      (long long)t, i, (long long)t + 5, i);
        fl_buf_printf(&h,
                      "{\"time\":%lld,\"process\":2,\"type\":\"invoke\","
                      "\"f\":\"read\",\"key\":\"a\",\"value\":null}|"
                      "{\"time\":%lld,\"process\":2,\"type\":\"ok\",\"f\":"
                      "\"read\",\"key\":\"a\",\"value\":0}|",
                      (long long)t + 6, (long long)t + 7);
    }
    h.data[h.len - 1] = '\0';
    run_case(h.data, 1e9, NULL, 0, &o);
    ck_assert_uint_eq(o.res.unseen, 2000);
    ck_assert_uint_eq(o.n_anomalies, 20);
    fl_buf_free(&h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("durability");
    TCase *t = tcase_create("core");
    SRunner *r;
    int failed;

    tcase_add_test(t, test_seen_writes_are_valid);
    tcase_add_test(t, test_final_read_misses_write);
    tcase_add_test(t, test_stale_read_and_crash);
    tcase_add_test(t, test_null_read_misses_every_write);
    tcase_add_test(t, test_concurrent_and_unknown_left_alone);
    tcase_add_test(t, test_repeated_values_skip);
    tcase_add_test(t, test_many_missed_writes);
    suite_add_tcase(s, t);
    r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? 0 : 1;
}
