/*
 * Tests for the results database (reports/store.h): the schema and its
 * version, and the rows an import of a run directory writes. Each test
 * builds its run directories in a fresh temporary directory, from the
 * JSON below, which follows the shape `faultline run` writes.
 */
#include "error.h"
#include "store.h"

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A run whose linearizability check failed on two keys and whose node log
 * has a sanitizer report. The first key's finding names history lines 1,
 * 2, 3, 4, 10, 11, 12 and 14 (line 10 and 12 twice), the second's line
 * 20. */
static const char results_json[] =
    "{\"campaign\":\"raft-test\",\"seed\":42,\"run_id\":\"abcd1234\","
    "\"system\":\"raft\",\"nodes\":3,\"started\":\"2026-12-05T05:28:00Z\","
    "\"elapsed_s\":12.5,\"network\":\"loopback\",\"interrupted\":false,"
    "\"store\":\"store/raft-test/20261205T052800Z-s42\",\"notes\":[],"
    "\"checks\":{\"linearizability\":{\"verdict\":\"not-linearizable\"}},"
    "\"anomalies\":["
    "{\"checker\":\"linearizability\",\"kind\":\"not-linearizable\","
    "\"detail\":{\"verdict\":\"not-linearizable\",\"anomalies\":["
    "{\"kind\":\"not-linearizable\",\"key\":\"k0\","
    "\"op\":{\"process\":6,\"f\":\"read\",\"invoke_line\":10,"
    "\"complete_line\":12},"
    "\"prefix\":[{\"process\":0,\"invoke_line\":1,\"complete_line\":3},"
    "{\"process\":1,\"invoke_line\":2,\"complete_line\":4}],"
    "\"concurrent\":[{\"process\":2,\"invoke_line\":11,\"complete_line\":14},"
    "{\"process\":3,\"invoke_line\":10,\"complete_line\":12}]},"
    "{\"kind\":\"not-linearizable\",\"key\":\"k1\","
    "\"op\":{\"process\":4,\"f\":\"write\",\"invoke_line\":20}}]}},"
    "{\"checker\":\"logs\",\"kind\":\"sanitizer\",\"detail\":"
    "{\"where\":\"nodes/n2.log:7\",\"line\":\"ERROR: AddressSanitizer\"}}],"
    "\"metrics\":{\"invocations\":100,\"ok\":80,\"fail\":15,\"info\":5,"
    "\"never_completed\":0,\"faults\":2,\"final_reads\":2,\"keys\":2,"
    "\"workload_s\":10.0,\"seconds_in_faults\":3.5,"
    "\"ok_per_s_in_faults\":4.25,\"ok_per_s_outside_faults\":9.5,"
    "\"per_fault\":[{\"fault\":\"kill\",\"start_s\":1.0,\"stop_s\":2.5,"
    "\"ok_per_s\":3.0}]},"
    "\"expected\":\"invalid\",\"verdict\":\"invalid\",\"exit_code\":1,"
    "\"as_expected\":true,"
    "\"repro\":\"faultline repro store/raft-test/20261205T052800Z-s42\"}\n";

static const char campaign_json[] =
    "{\"name\":\"raft-test\",\"system\":\"raft\",\"nodes\":3,\"seed\":42,"
    "\"expect\":\"invalid\",\"duration_s\":10}\n";

/* Fault 1 starts and stops; fault 2 never stops, as in a run cut short. */
static const char nemesis_jsonl[] =
    "{\"time\":1000000000,\"action\":\"start\",\"fault\":\"kill\",\"id\":1,"
    "\"targets\":[2],\"detail\":{\"spec\":0,\"planned_stop\":2500000000}}\n"
    "{\"time\":2000000000,\"action\":\"start\",\"fault\":\"halves\","
    "\"id\":2,\"targets\":[1,3],\"detail\":{\"spec\":1,"
    "\"planned_stop\":4000000000,\"one_way\":false,"
    "\"blocks\":[{\"to\":1,\"from\":[2]}]}}\n"
    "{\"time\":2500000000,\"action\":\"stop\",\"fault\":\"kill\",\"id\":1,"
    "\"targets\":[2],\"detail\":{\"spec\":0}}\n";

/* ---- helpers ------------------------------------------------------------ */

static char tmp_dir[64];
static char db_path[PATH_MAX];
static char run_dir[PATH_MAX];

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    ck_assert_int_eq(fclose(f), 0);
}

/* Makes tmp_dir/NAME holding a finished run, its path in out. */
static void make_run(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", tmp_dir, name);
    ck_assert_int_eq(mkdir(out, 0755), 0);
    write_file(out, "results.json", results_json);
    write_file(out, "campaign.json", campaign_json);
    write_file(out, "nemesis.jsonl", nemesis_jsonl);
}

static void setup(void)
{
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/fl-check-store.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
    snprintf(db_path, sizeof(db_path), "%s/results.db", tmp_dir);
    make_run("run1", run_dir, sizeof(run_dir));
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static sqlite3 *open_ok(void)
{
    sqlite3 *db;
    char err[1024] = "";
    int rc = rep_db_open(&db, db_path, err, sizeof(err));

    ck_assert_msg(rc == 0, "rep_db_open: %d %s", rc, err);
    return db;
}

static void import_ok(sqlite3 *db, const char *dir)
{
    char err[1024] = "";
    int rc = rep_db_import(db, dir, err, sizeof(err));

    ck_assert_msg(rc == 0, "rep_db_import %s: %d %s", dir, rc, err);
}

/* Returns the integer in the first column of the only row sql returns. */
static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long long value;

    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
                  "%s: %s", sql, sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    value = sqlite3_column_int64(st, 0);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    return value;
}

static double query_double(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    double value;

    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
                  "%s: %s", sql, sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    value = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return value;
}

/* Returns the text in the first column of the first row of sql, malloc'd,
 * or NULL for an SQL NULL. */
static char *query_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    const unsigned char *text;
    char *copy;

    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
                  "%s: %s", sql, sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    text = sqlite3_column_text(st, 0);
    copy = text != NULL ? strdup((const char *)text) : NULL;
    sqlite3_finalize(st);
    return copy;
}

static void assert_text(sqlite3 *db, const char *sql, const char *expected)
{
    char *got = query_text(db, sql);

    ck_assert_msg(got != NULL, "%s: NULL, expected %s", sql, expected);
    ck_assert_msg(strcmp(got, expected) == 0, "%s: got %s, expected %s", sql,
                  got, expected);
    free(got);
}

/* Counts every row of the four tables, to show a rejected import left the
 * database as it was. */
static long long count_rows(sqlite3 *db)
{
    return query_int(db, "SELECT (SELECT count(*) FROM runs) +"
                         " (SELECT count(*) FROM faults) +"
                         " (SELECT count(*) FROM anomalies) +"
                         " (SELECT count(*) FROM metrics)");
}

/* ---- schema ------------------------------------------------------------- */

START_TEST(test_schema_created_at_version_1)
{
    sqlite3 *db = open_ok();

    ck_assert_int_eq(query_int(db, "PRAGMA user_version"), 1);
    ck_assert_int_eq(REP_SCHEMA_VERSION, 1);
    assert_text(db, "PRAGMA journal_mode", "wal");
    ck_assert_int_eq(query_int(db, "PRAGMA foreign_keys"), 1);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_master"
                                   " WHERE type = 'table' AND name IN"
                                   " ('runs', 'faults', 'anomalies',"
                                   " 'metrics')"),
                     4);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 0);
    rep_db_close(db);
}
END_TEST

START_TEST(test_reopen_keeps_schema_and_rows)
{
    sqlite3 *db = open_ok();
    char *schema;
    char *again;

    import_ok(db, run_dir);
    schema = query_text(db, "SELECT group_concat(sql, ';') FROM"
                            " (SELECT sql FROM sqlite_master ORDER BY name)");
    rep_db_close(db);

    db = open_ok();
    ck_assert_int_eq(query_int(db, "PRAGMA user_version"), 1);
    again = query_text(db, "SELECT group_concat(sql, ';') FROM"
                           " (SELECT sql FROM sqlite_master ORDER BY name)");
    ck_assert_str_eq(again, schema);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 1);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM faults"), 2);
    free(schema);
    free(again);
    rep_db_close(db);
}
END_TEST

START_TEST(test_newer_schema_rejected)
{
    sqlite3 *raw;
    sqlite3 *db = NULL;
    char err[1024] = "";
    int rc;

    ck_assert_int_eq(sqlite3_open(db_path, &raw), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(raw, "PRAGMA user_version = 2", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(raw);

    rc = rep_db_open(&db, db_path, err, sizeof(err));
    ck_assert_int_eq(rc, FL_EINPUT);
    ck_assert_ptr_null(db);
    ck_assert_msg(strstr(err, db_path) != NULL, "no path in: %s", err);
    ck_assert_msg(strstr(err, "schema version 2") != NULL, "no version in: %s",
                  err);

    /* The file is left for the newer faultline that wrote it. */
    ck_assert_int_eq(sqlite3_open(db_path, &raw), SQLITE_OK);
    ck_assert_int_eq(query_int(raw, "PRAGMA user_version"), 2);
    ck_assert_int_eq(query_int(raw, "SELECT count(*) FROM sqlite_master"), 0);
    sqlite3_close(raw);
}
END_TEST

/* ---- import ------------------------------------------------------------- */

START_TEST(test_import_runs_row)
{
    sqlite3 *db = open_ok();
    char real[PATH_MAX];
    char sql[PATH_MAX + 128];

    import_ok(db, run_dir);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 1);
    assert_text(db, "SELECT run_id FROM runs", "abcd1234");
    assert_text(db, "SELECT campaign FROM runs", "raft-test");
    ck_assert_int_eq(query_int(db, "SELECT seed FROM runs"), 42);
    assert_text(db, "SELECT system FROM runs", "raft");
    ck_assert_int_eq(query_int(db, "SELECT nodes FROM runs"), 3);
    assert_text(db, "SELECT network FROM runs", "loopback");
    assert_text(db, "SELECT started FROM runs", "2026-12-05T05:28:00Z");
    ck_assert_double_eq(query_double(db, "SELECT duration_s FROM runs"), 12.5);
    assert_text(db, "SELECT verdict FROM runs", "invalid");
    assert_text(db, "SELECT expected FROM runs", "invalid");
    ck_assert_int_eq(query_int(db, "SELECT exit_code FROM runs"), 1);
    assert_text(db, "SELECT repro FROM runs",
                "faultline repro store/raft-test/20261205T052800Z-s42");

    /* store_path is the resolved directory, not results.json's "store". */
    ck_assert_ptr_nonnull(realpath(run_dir, real));
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM runs WHERE store_path = '%s'", real);
    ck_assert_int_eq(query_int(db, sql), 1);
    rep_db_close(db);
}
END_TEST

START_TEST(test_import_faults_rows)
{
    sqlite3 *db = open_ok();

    import_ok(db, run_dir);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM faults"), 2);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM faults WHERE run ="
                                   " (SELECT id FROM runs)"),
                     2);

    assert_text(db, "SELECT kind FROM faults WHERE fault_id = 1", "kill");
    assert_text(db, "SELECT targets FROM faults WHERE fault_id = 1", "[2]");
    ck_assert_double_eq(
        query_double(db, "SELECT start_s FROM faults WHERE fault_id = 1"), 1.0);
    ck_assert_double_eq(
        query_double(db, "SELECT stop_s FROM faults WHERE fault_id = 1"), 2.5);
    assert_text(db, "SELECT detail FROM faults WHERE fault_id = 1",
                "{\"spec\":0,\"planned_stop\":2500000000}");

    assert_text(db, "SELECT kind FROM faults WHERE fault_id = 2", "halves");
    assert_text(db, "SELECT targets FROM faults WHERE fault_id = 2", "[1,3]");
    ck_assert_double_eq(
        query_double(db, "SELECT start_s FROM faults WHERE fault_id = 2"), 2.0);
    ck_assert_int_eq(query_int(db, "SELECT stop_s IS NULL FROM faults"
                                   " WHERE fault_id = 2"),
                     1);
    assert_text(db,
                "SELECT json_extract(detail, '$.blocks[0].from') FROM faults"
                " WHERE fault_id = 2",
                "[2]");
    rep_db_close(db);
}
END_TEST

START_TEST(test_import_anomalies_rows)
{
    sqlite3 *db = open_ok();

    import_ok(db, run_dir);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM anomalies"), 2);
    assert_text(db,
                "SELECT kind FROM anomalies WHERE checker = 'linearizability'",
                "not-linearizable");
    assert_text(db,
                "SELECT ops FROM anomalies WHERE checker = 'linearizability'",
                "[10,11,12,14,20]");
    assert_text(db,
                "SELECT json_extract(detail, '$.anomalies[0].key') FROM"
                " anomalies WHERE checker = 'linearizability'",
                "k0");

    assert_text(db, "SELECT kind FROM anomalies WHERE checker = 'logs'",
                "sanitizer");
    assert_text(db, "SELECT ops FROM anomalies WHERE checker = 'logs'", "[]");
    assert_text(db,
                "SELECT json_extract(detail, '$.where') FROM anomalies"
                " WHERE checker = 'logs'",
                "nodes/n2.log:7");
    rep_db_close(db);
}
END_TEST

START_TEST(test_import_metrics_rows)
{
    /* name, value, unit */
    static const struct {
        const char *name;
        double value;
        const char *unit;
    } expected[] = {
        {"invocations", 100, "ops"},
        {"ok", 80, "ops"},
        {"fail", 15, "ops"},
        {"info", 5, "ops"},
        {"never_completed", 0, "ops"},
        {"faults", 2, ""},
        {"final_reads", 2, "ops"},
        {"keys", 2, ""},
        {"workload_s", 10.0, "s"},
        {"seconds_in_faults", 3.5, "s"},
        {"ok_per_s_in_faults", 4.25, "ops/s"},
        {"ok_per_s_outside_faults", 9.5, "ops/s"},
        {"per_fault[0].start_s", 1.0, "s"},
        {"per_fault[0].stop_s", 2.5, "s"},
        {"per_fault[0].ok_per_s", 3.0, "ops/s"},
    };
    size_t n = sizeof(expected) / sizeof(expected[0]);
    sqlite3 *db = open_ok();

    import_ok(db, run_dir);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM metrics"),
                     (long long)n);
    for (size_t i = 0; i < n; i++) {
        char sql[256];

        snprintf(sql, sizeof(sql),
                 "SELECT value FROM metrics WHERE name = '%s'",
                 expected[i].name);
        ck_assert_msg(query_double(db, sql) == expected[i].value,
                      "metric %s: got %g, expected %g", expected[i].name,
                      query_double(db, sql), expected[i].value);
        snprintf(sql, sizeof(sql), "SELECT unit FROM metrics WHERE name = '%s'",
                 expected[i].name);
        assert_text(db, sql, expected[i].unit);
    }
    rep_db_close(db);
}
END_TEST

START_TEST(test_reimport_replaces_rows)
{
    sqlite3 *db = open_ok();
    char other_spelling[PATH_MAX + 8];
    long long rows;

    import_ok(db, run_dir);
    rows = count_rows(db);

    /* The same directory spelled differently is the same run. */
    snprintf(other_spelling, sizeof(other_spelling), "%s/./", run_dir);
    import_ok(db, other_spelling);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 1);
    ck_assert_int_eq(count_rows(db), rows);

    /* A changed results.json replaces the old values. */
    write_file(run_dir, "results.json",
               "{\"verdict\":\"valid\",\"anomalies\":[],"
               "\"metrics\":{\"ok\":7}}");
    import_ok(db, run_dir);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 1);
    assert_text(db, "SELECT verdict FROM runs", "valid");
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM anomalies"), 0);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM metrics"), 1);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM faults"), 2);
    /* Fields results.json lacks come from campaign.json. */
    assert_text(db, "SELECT campaign FROM runs", "raft-test");
    ck_assert_int_eq(query_int(db, "SELECT seed FROM runs"), 42);
    assert_text(db, "SELECT expected FROM runs", "invalid");
    rep_db_close(db);
}
END_TEST

START_TEST(test_two_runs_kept_apart)
{
    sqlite3 *db = open_ok();
    char second[PATH_MAX];

    make_run("run2", second, sizeof(second));
    import_ok(db, run_dir);
    import_ok(db, second);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 2);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM faults"), 4);
    ck_assert_int_eq(query_int(db, "SELECT count(DISTINCT run) FROM metrics"),
                     2);
    rep_db_close(db);
}
END_TEST

/* ---- rejected runs ------------------------------------------------------ */

/* Imports dir, expecting FL_EINPUT with `needle` in the message and the
 * database unchanged. */
static void assert_rejected(sqlite3 *db, const char *dir, const char *needle)
{
    char err[1024] = "";
    long long before = count_rows(db);
    int rc = rep_db_import(db, dir, err, sizeof(err));

    ck_assert_msg(rc == FL_EINPUT, "import of %s returned %d (%s)", dir, rc,
                  err);
    ck_assert_msg(strstr(err, needle) != NULL, "\"%s\" not in: %s", needle,
                  err);
    ck_assert_int_eq(count_rows(db), before);
}

START_TEST(test_missing_results_rejected)
{
    sqlite3 *db = open_ok();
    char empty[PATH_MAX];
    char needle[PATH_MAX + 16];

    import_ok(db, run_dir);
    snprintf(empty, sizeof(empty), "%s/empty", tmp_dir);
    ck_assert_int_eq(mkdir(empty, 0755), 0);
    snprintf(needle, sizeof(needle), "empty/results.json");
    assert_rejected(db, empty, needle);

    snprintf(empty, sizeof(empty), "%s/absent", tmp_dir);
    assert_rejected(db, empty, "absent");
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 1);
    rep_db_close(db);
}
END_TEST

START_TEST(test_malformed_results_rejected)
{
    static const char *const bad[] = {
        "{\"verdict\":\"valid\"",                 /* cut short */
        "[1, 2]",                                 /* not an object */
        "{\"anomalies\":[]}",                     /* no verdict */
        "{\"verdict\":\"valid\",\"seed\":\"x\"}", /* wrong type */
        "{\"verdict\":\"valid\",\"metrics\":[]}",
        "{\"verdict\":\"bogus\"}",                   /* no such verdict */
        "{\"verdict\":\"valid\",\"anomalies\":[1]}", /* not an object */
        "{\"verdict\":\"valid\",\"anomalies\":[{\"checker\":5}]}",
    };
    sqlite3 *db = open_ok();

    /* A good import first: a rejected re-import must keep its rows. */
    import_ok(db, run_dir);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(run_dir, "results.json", bad[i]);
        assert_rejected(db, run_dir, "run1/results.json");
    }
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 1);
    assert_text(db, "SELECT verdict FROM runs", "invalid");
    rep_db_close(db);
}
END_TEST

START_TEST(test_malformed_nemesis_rejected)
{
    sqlite3 *db = open_ok();

    write_file(run_dir, "nemesis.jsonl",
               "{\"time\":1,\"action\":\"start\",\"fault\":\"kill\","
               "\"id\":1,\"targets\":[1],\"detail\":{}}\n"
               "{\"time\":2,\"action\":\"stop\",\"fault\":\"kill\"\n");
    assert_rejected(db, run_dir, "run1/nemesis.jsonl:2");
    write_file(run_dir, "nemesis.jsonl",
               "{\"time\":1,\"action\":\"begin\",\"id\":1}\n");
    assert_rejected(db, run_dir, "run1/nemesis.jsonl:1");
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 0);
    rep_db_close(db);
}
END_TEST

START_TEST(test_forget_missing_runs)
{
    sqlite3 *db = open_ok();
    char second[PATH_MAX];
    char path[PATH_MAX + 32];
    char err[256] = "";
    size_t removed = 99;

    make_run("run2", second, sizeof(second));
    import_ok(db, run_dir);
    import_ok(db, second);
    ck_assert_int_eq(rep_db_forget_missing(db, &removed, err, sizeof(err)), 0);
    ck_assert_uint_eq(removed, 0);
    snprintf(path, sizeof(path), "%s/results.json", second);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rep_db_forget_missing(db, &removed, err, sizeof(err)), 0);
    ck_assert_uint_eq(removed, 1);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 1);
    ck_assert_int_eq(query_int(db, "SELECT count(DISTINCT run) FROM faults"),
                     1);
    rep_db_close(db);
}
END_TEST

START_TEST(test_run_without_nemesis_or_campaign)
{
    sqlite3 *db = open_ok();
    char path[PATH_MAX + 32];

    snprintf(path, sizeof(path), "%s/nemesis.jsonl", run_dir);
    ck_assert_int_eq(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/campaign.json", run_dir);
    ck_assert_int_eq(unlink(path), 0);
    import_ok(db, run_dir);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 1);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM faults"), 0);
    assert_text(db, "SELECT campaign FROM runs", "raft-test");
    rep_db_close(db);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *schema = tcase_create("schema");
    TCase *import = tcase_create("import");
    TCase *rejected = tcase_create("rejected");

    tcase_add_checked_fixture(schema, setup, teardown);
    tcase_add_test(schema, test_schema_created_at_version_1);
    tcase_add_test(schema, test_reopen_keeps_schema_and_rows);
    tcase_add_test(schema, test_newer_schema_rejected);
    suite_add_tcase(s, schema);

    tcase_add_checked_fixture(import, setup, teardown);
    tcase_add_test(import, test_import_runs_row);
    tcase_add_test(import, test_import_faults_rows);
    tcase_add_test(import, test_import_anomalies_rows);
    tcase_add_test(import, test_import_metrics_rows);
    tcase_add_test(import, test_reimport_replaces_rows);
    tcase_add_test(import, test_two_runs_kept_apart);
    tcase_add_test(import, test_run_without_nemesis_or_campaign);
    tcase_add_test(import, test_forget_missing_runs);
    suite_add_tcase(s, import);

    tcase_add_checked_fixture(rejected, setup, teardown);
    tcase_add_test(rejected, test_missing_results_rejected);
    tcase_add_test(rejected, test_malformed_results_rejected);
    tcase_add_test(rejected, test_malformed_nemesis_rejected);
    suite_add_tcase(s, rejected);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
