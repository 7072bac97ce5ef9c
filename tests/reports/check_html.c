/*
 * Tests of report.html: each case writes a small run directory (results.json,
 * history.jsonl and, where the case needs them, nemesis.jsonl and node logs)
 * into a temporary folder, renders it and checks the page's text.
 */
#include "html.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOSTILE "</script><script>alert(1)</script>"

static char run_dir[256];

/* Writes len bytes of text, which may contain NUL bytes, to run_dir/name. */
static void write_bytes(const char *name, const char *text, size_t len)
{
    char path[512];
    FILE *out;

    snprintf(path, sizeof(path), "%s/%s", run_dir, name);
    out = fopen(path, "w");
    ck_assert_msg(out != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(text, 1, len, out), len);
    ck_assert_int_eq(fclose(out), 0);
}

static void write_file(const char *name, const char *text)
{
    write_bytes(name, text, strlen(text));
}

static char *read_page(void)
{
    char path[512];
    FILE *in;
    long len;
    char *text;

    snprintf(path, sizeof(path), "%s/report.html", run_dir);
    in = fopen(path, "r");
    ck_assert_msg(in != NULL, "%s: %s", path, strerror(errno));
    ck_assert_int_eq(fseek(in, 0, SEEK_END), 0);
    len = ftell(in);
    ck_assert_int_gt(len, 0);
    rewind(in);
    text = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(fread(text, 1, (size_t)len, in), (size_t)len);
    text[len] = '\0';
    fclose(in);
    return text;
}

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Renders run_dir and returns the page; fails the test on an error. */
static char *render(void)
{
    char err[1024] = "";
    int rc = rep_render_run(run_dir, err, sizeof(err));
    ck_assert_msg(rc == 0, "rep_render_run: %d %s", rc, err);
    return read_page();
}

/* The page loads nothing from elsewhere and has exactly one script. */
static void assert_self_contained(const char *page)
{
    ck_assert_ptr_null(strstr(page, "http://"));
    ck_assert_ptr_null(strstr(page, "https://"));
    ck_assert_ptr_null(strstr(page, "src="));
    ck_assert_ptr_null(strstr(page, "<link"));
    ck_assert_ptr_null(strstr(page, "@import"));
    ck_assert_uint_eq(count(page, "<script"), 1);
    ck_assert_uint_eq(count(page, "</script"), 1);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(run_dir, sizeof(run_dir), "/tmp/fl-check-html-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(run_dir));
}

static void teardown(void)
{
    nftw(run_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char valid_results[] =
    "{\"campaign\":\"kv-kill\",\"seed\":7,\"run_id\":\"abcd1234\","
    "\"system\":\"kv\",\"nodes\":1,\"started\":\"2026-12-05T05:27:47Z\","
    "\"elapsed_s\":8.031,\"network\":\"loopback\",\"interrupted\":false,"
    "\"store\":\"/tmp/s\",\"notes\":[\"no root: loopback " HOSTILE "\"],"
    "\"checks\":{\"linearizability\":{\"verdict\":\"linearizable\","
    "\"valid\":true,\"anomalies\":[]}},\"anomalies\":[],"
    "\"metrics\":{\"invocations\":3,\"ok\":2,\"fail\":0,\"info\":1,"
    "\"ok_per_s_outside_faults\":256.14,\"per_fault\":[{\"fault\":\"kill\","
    "\"start_s\":1.007,\"stop_s\":1.583,\"ok_per_s\":0.0}]},"
    "\"expected\":\"valid\",\"verdict\":\"valid\",\"exit_code\":0,"
    "\"as_expected\":true,"
    "\"repro\":\"faultline repro /tmp/s/kv-kill/20261205T052747Z-s7\"}\n";

static void write_valid_run(void)
{
    char nodes[300];

    write_file("results.json", valid_results);
    write_file("campaign.json", "{\"name\":\"kv-kill\",\"description\":"
                                "\"Kills <b>one</b> node.\"}");
    write_file("history.jsonl",
               "{\"time\":1000,\"process\":0,\"type\":\"invoke\",\"f\":"
               "\"write\",\"key\":\"k1\",\"value\":\"" HOSTILE "\"}\n"
               "{\"time\":2000000,\"process\":1,\"type\":\"invoke\",\"f\":"
               "\"read\",\"key\":\"k1\"}\n"
               "{\"time\":3000000,\"process\":0,\"type\":\"ok\",\"f\":"
               "\"write\",\"key\":\"k1\",\"value\":\"" HOSTILE "\"}\n"
               "{\"time\":4000000,\"process\":1,\"type\":\"ok\",\"f\":"
               "\"read\",\"key\":\"k1\",\"value\":\"" HOSTILE "\"}\n"
               "{\"time\":5000000,\"process\":2,\"type\":\"invoke\",\"f\":"
               "\"write\",\"key\":\"k2\",\"value\":5}\n"
               "{\"time\":6000000,\"process\":2,\"type\":\"info\",\"f\":"
               "\"write\",\"key\":\"k2\",\"value\":5}\n");
    write_file("nemesis.jsonl",
               "{\"time\":1500000,\"action\":\"start\",\"fault\":\"kill\","
               "\"id\":1,\"targets\":[1]}\n"
               "{\"time\":2500000,\"action\":\"stop\",\"fault\":\"kill\","
               "\"id\":1,\"targets\":[1]}\n");
    snprintf(nodes, sizeof(nodes), "%s/nodes", run_dir);
    ck_assert_int_eq(mkdir(nodes, 0755), 0);
    write_file("nodes/n1.log",
               "ts=2026-12-05T05:27:47.074Z level=info msg=listening\n"
               "ts=2026-12-05T05:27:48.000Z level=error msg=\"" HOSTILE "\"\n");
}

START_TEST(test_valid_run_summary)
{
    char *page;

    write_valid_run();
    page = render();
    ck_assert_ptr_nonnull(
        strstr(page, "<span class=\"verdict v-valid\">valid</span>"));
    ck_assert_ptr_nonnull(
        strstr(page, "faultline repro /tmp/s/kv-kill/20261205T052747Z-s7"));
    ck_assert_ptr_nonnull(strstr(page, "loopback"));
    ck_assert_ptr_nonnull(strstr(page, "256.14"));
    ck_assert_ptr_nonnull(strstr(page, "Kills &lt;b&gt;one&lt;/b&gt; node."));
    /* The fault band of the charts and the timeline's data. */
    ck_assert_ptr_nonnull(strstr(page, ">kill n1</text>"));
    ck_assert_ptr_nonnull(strstr(page, "[1500,2500,\"kill n1\"]"));
    free(page);
}
END_TEST

/* The durability row gives the totals, which the anomaly list, cut to
 * its first entries, does not. */
START_TEST(test_durability_totals_shown)
{
    char *page;
    char results[sizeof(valid_results) + 256];
    const char *at = strstr(valid_results, "\"anomalies\":[]}}");

    ck_assert_ptr_nonnull(at);
    write_valid_run();
    snprintf(results, sizeof(results),
             "%.*s\"anomalies\":[]},\"durability\":{\"valid\":false,"
             "\"reads\":900,\"acknowledged_writes\":700,\"lost\":17316,"
             "\"unseen\":2,\"listed\":100,\"missed_writes\":[]}}%s",
             (int)(at - valid_results), valid_results,
             at + strlen("\"anomalies\":[]}}"));
    write_file("results.json", results);
    page = render();
    ck_assert_ptr_nonnull(strstr(page, "700 acknowledged writes, 900 reads"));
    ck_assert_ptr_nonnull(strstr(page, "<b>17316 lost, 2 unseen</b>"));
    ck_assert_ptr_nonnull(strstr(page, "lists the first 100"));
    free(page);

    /* A skipped check shows the reason. */
    snprintf(results, sizeof(results),
             "%.*s\"anomalies\":[]},\"durability\":{\"valid\":null,"
             "\"skipped\":\"values repeat\"}}%s",
             (int)(at - valid_results), valid_results,
             at + strlen("\"anomalies\":[]}}"));
    write_file("results.json", results);
    page = render();
    ck_assert_ptr_nonnull(strstr(page, "not checked: values repeat"));
    free(page);
}
END_TEST

START_TEST(test_hostile_strings_escaped)
{
    char *page;

    write_valid_run();
    page = render();
    assert_self_contained(page);
    ck_assert_ptr_null(strstr(page, HOSTILE));
    ck_assert_ptr_null(strstr(page, "<script>alert"));
    /* In the timeline's data, as a JavaScript string. */
    ck_assert_ptr_nonnull(strstr(page, "\\u003c/script\\u003e\\u003cscript"
                                       "\\u003ealert(1)"));
    /* In the notes and the log excerpt, as HTML text. */
    ck_assert_ptr_nonnull(strstr(page, "&lt;/script&gt;&lt;script&gt;"
                                       "alert(1)&lt;/script&gt;"));
    free(page);
}
END_TEST

/*
 * Process 2 reads 1 after the write of 2 completed: the read cannot be
 * linearized. Lines: 1 invoke write 1, 2 ok, 3 invoke write 2, 4 ok,
 * 5 invoke read, 6 ok.
 */
static void write_invalid_run(void)
{
    char nodes[300];
    const char *op1 = "{\"process\":0,\"f\":\"write\",\"value\":1,"
                      "\"outcome\":\"ok\",\"invoke_line\":1,"
                      "\"complete_line\":2}";
    const char *op2 = "{\"process\":1,\"f\":\"write\",\"value\":2,"
                      "\"outcome\":\"ok\",\"invoke_line\":3,"
                      "\"complete_line\":4}";
    const char *bad = "{\"process\":2,\"f\":\"read\",\"value\":null,"
                      "\"outcome\":\"ok\",\"output\":1,\"invoke_line\":5,"
                      "\"complete_line\":6}";
    char results[4096];

    snprintf(results, sizeof(results),
             "{\"campaign\":\"raft-stale-read\",\"seed\":1,"
             "\"started\":\"2026-12-05T05:27:55Z\",\"network\":\"namespaces\","
             "\"notes\":[],\"checks\":{\"linearizability\":{\"verdict\":"
             "\"not-linearizable\",\"anomalies\":[{\"kind\":"
             "\"not-linearizable\",\"key\":\"k1\",\"detail\":\"\",\"op\":%s,"
             "\"prefix\":[%s,%s],\"concurrent\":[],\"states\":[2],"
             "\"states_truncated\":false}]}},\"anomalies\":[{\"checker\":"
             "\"linearizability\",\"kind\":\"not-linearizable\",\"detail\":"
             "{\"anomalies\":[{\"key\":\"k1\",\"op\":%s}]}}],"
             "\"expected\":\"invalid\",\"verdict\":\"invalid\","
             "\"exit_code\":1,\"as_expected\":true,\"repro\":\"faultline "
             "repro /tmp/s/raft-stale-read/x\"}",
             bad, op1, op2, bad);
    write_file("results.json", results);
    write_file("history.jsonl",
               "{\"time\":1000000,\"process\":0,\"type\":\"invoke\",\"f\":"
               "\"write\",\"key\":\"k1\",\"value\":1}\n"
               "{\"time\":2000000,\"process\":0,\"type\":\"ok\",\"f\":"
               "\"write\",\"key\":\"k1\",\"value\":1}\n"
               "{\"time\":3000000,\"process\":1,\"type\":\"invoke\",\"f\":"
               "\"write\",\"key\":\"k1\",\"value\":2}\n"
               "{\"time\":4000000,\"process\":1,\"type\":\"ok\",\"f\":"
               "\"write\",\"key\":\"k1\",\"value\":2}\n"
               "{\"time\":5000000000,\"process\":2,\"type\":\"invoke\","
               "\"f\":\"read\",\"key\":\"k1\"}\n"
               "{\"time\":5001000000,\"process\":2,\"type\":\"ok\",\"f\":"
               "\"read\",\"key\":\"k1\",\"value\":1}\n");
    snprintf(nodes, sizeof(nodes), "%s/nodes", run_dir);
    ck_assert_int_eq(mkdir(nodes, 0755), 0);
    /* The run started at 05:27:55, so the read is at about 05:28:00. */
    write_file("nodes/n2.log",
               "ts=2026-12-05T05:27:56.000Z msg=\"far before\"\n"
               "ts=2026-12-05T05:28:00.100Z msg=\"served a stale read\"\n"
               "a line without a time\n"
               "ts=2026-12-05T05:28:09.000Z msg=\"far after\"\n");
}

START_TEST(test_invalid_run_counterexample)
{
    char *page;

    write_invalid_run();
    page = render();
    assert_self_contained(page);
    ck_assert_ptr_nonnull(
        strstr(page, "<span class=\"verdict v-invalid\">invalid</span>"));
    ck_assert_ptr_nonnull(strstr(page, "faultline repro /tmp/s/"));
    ck_assert_ptr_nonnull(
        strstr(page, "process 2: read k1 \xe2\x86\x92 1 (ok)"));
    ck_assert_ptr_nonnull(strstr(page, "cannot be linearized"));
    ck_assert_ptr_nonnull(
        strstr(page, "a read here returns 2, but this one returned 1"));
    ck_assert_ptr_nonnull(
        strstr(page, "The longest linearizable prefix has 2 operations"));
    /* The timeline opens on the failed operation, the third one. */
    ck_assert_ptr_nonnull(strstr(page, "\"focus\":2"));
    /* Every window that contains it draws it, however many operations. */
    ck_assert_ptr_nonnull(strstr(page, "\"keep\":[2]"));
    free(page);
}
END_TEST

START_TEST(test_invalid_run_log_excerpt)
{
    char *page;

    write_invalid_run();
    page = render();
    ck_assert_ptr_nonnull(strstr(page, "served a stale read"));
    ck_assert_ptr_nonnull(strstr(page, "a line without a time"));
    ck_assert_ptr_null(strstr(page, "far before"));
    ck_assert_ptr_null(strstr(page, "far after"));
    free(page);
}
END_TEST

START_TEST(test_unknown_verdict_colours)
{
    char *page;

    write_file("results.json", "{\"campaign\":\"c\",\"verdict\":\"unknown\","
                               "\"repro\":\"faultline repro x\"}");
    write_file("history.jsonl", "");
    page = render();
    ck_assert_ptr_nonnull(
        strstr(page, "<span class=\"verdict v-unknown\">unknown</span>"));
    free(page);

    write_file("results.json",
               "{\"campaign\":\"c\",\"verdict\":\"<i>odd</i>\"}");
    page = render();
    ck_assert_ptr_nonnull(strstr(
        page, "<span class=\"verdict v-other\">&lt;i&gt;odd&lt;/i&gt;</span>"));
    free(page);
}
END_TEST

START_TEST(test_no_operations_renders)
{
    char *page;

    write_file("results.json", "{\"campaign\":\"c\",\"seed\":3,\"verdict\":"
                               "\"valid\",\"repro\":\"faultline repro y\"}");
    write_file("history.jsonl", "");
    page = render();
    assert_self_contained(page);
    ck_assert_ptr_nonnull(strstr(page, "\"ops\":[]"));
    ck_assert_ptr_nonnull(strstr(page, "No completed operations"));
    ck_assert_ptr_nonnull(strstr(page, "faultline repro y"));
    ck_assert_ptr_nonnull(strstr(page, "</html>"));
    free(page);
}
END_TEST

START_TEST(test_missing_history_noted)
{
    char *page;

    write_file("results.json", "{\"campaign\":\"c\",\"verdict\":\"valid\"}");
    page = render();
    ck_assert_ptr_nonnull(strstr(page, "history.jsonl: "));
    ck_assert_ptr_nonnull(strstr(page, "the timeline and charts are empty"));
    free(page);
}
END_TEST

START_TEST(test_long_value_cut)
{
    size_t n = 200000;
    char *history = malloc(n + 400);
    char *page;
    int used;

    ck_assert_ptr_nonnull(history);
    used = snprintf(history, 400,
                    "{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":"
                    "\"write\",\"value\":\"");
    memset(history + used, 'x', n);
    strcpy(history + used + n, "\"}\n");
    write_file("results.json", "{\"campaign\":\"c\",\"verdict\":\"valid\"}");
    write_file("history.jsonl", history);
    page = render();
    ck_assert_ptr_nonnull(strstr(page, "xxx...\""));
    ck_assert_uint_lt(strlen(page), n / 2);
    free(page);
    free(history);
}
END_TEST

START_TEST(test_missing_results_names_file)
{
    char err[1024] = "";
    char path[512];

    write_file("history.jsonl", "");
    ck_assert_int_ne(rep_render_run(run_dir, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/results.json", run_dir);
    ck_assert_msg(strstr(err, path) != NULL, "error: %s", err);
    snprintf(path, sizeof(path), "%s/report.html", run_dir);
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(test_invalid_results_names_file)
{
    char err[1024] = "";

    write_file("results.json", "{\"campaign\":");
    ck_assert_int_ne(rep_render_run(run_dir, err, sizeof(err)), 0);
    ck_assert_msg(strstr(err, "results.json: invalid JSON") != NULL,
                  "error: %s", err);
}
END_TEST

START_TEST(test_log_line_nul_shown)
{
    static const char log[] = "ts=2026-12-05T05:27:47.074Z msg=before\0after\n";
    char *page;

    write_valid_run();
    write_bytes("nodes/n1.log", log, sizeof(log) - 1);
    page = render();
    /* The NUL is shown as U+2400 and the text after it is kept. */
    ck_assert_ptr_nonnull(strstr(page, "msg=before\xe2\x90\x80"
                                       "after\n"));
    free(page);
}
END_TEST

START_TEST(test_log_line_cut_whole_utf8)
{
    char line[600];
    char expected[600];
    char *page;

    /* A two-byte character at bytes 399 and 400 straddles the 400-byte cut. */
    memset(line, 'a', 399);
    memcpy(line + 399, "\xc3\xa9", 2);
    memset(line + 401, 'b', 100);
    memcpy(line + 501, "\n", 2);
    write_valid_run();
    write_file("nodes/n1.log", line);
    page = render();
    memset(expected, 'a', 399);
    memcpy(expected + 399, "...\n", 5);
    ck_assert_ptr_nonnull(strstr(page, expected));
    ck_assert_ptr_null(strstr(page, "a\xc3"));
    free(page);
}
END_TEST

/* Appends an event of process p at ms milliseconds to history. */
static void add_event(char *history, size_t size, int p, int ms,
                      const char *type)
{
    size_t used = strlen(history);

    snprintf(history + used, size - used,
             "{\"time\":%d000000,\"process\":%d,\"type\":\"%s\","
             "\"f\":\"write\",\"key\":\"k1\",\"value\":%d}\n",
             ms, p, type, p);
}

/*
 * Four client threads: processes 0 to 3 each end in an info and go on as 4
 * to 7, then six final writes (processes 8 to 13) run at once, standing in
 * for the final reads.
 */
static void write_info_run(bool with_campaign)
{
    char history[8192] = "";
    size_t size = sizeof(history);

    write_file("results.json", "{\"campaign\":\"c\",\"verdict\":\"valid\"}");
    if (with_campaign)
        write_file("campaign.json",
                   "{\"name\":\"c\",\"workload\":"
                   "{\"kind\":\"register\",\"concurrency\":4}}");
    for (int p = 0; p < 4; p++)
        add_event(history, size, p, 10 + p, "invoke");
    for (int p = 0; p < 4; p++)
        add_event(history, size, p, 20 + p, "info");
    for (int p = 4; p < 8; p++)
        add_event(history, size, p, 30 + p, "invoke");
    for (int p = 4; p < 8; p++)
        add_event(history, size, p, 40 + p, "ok");
    for (int p = 8; p < 14; p++)
        add_event(history, size, p, 60 + p, "invoke");
    for (int p = 8; p < 14; p++)
        add_event(history, size, p, 80 + p, "ok");
    write_file("history.jsonl", history);
}

START_TEST(test_lanes_fold_by_thread)
{
    char *page;

    write_info_run(true);
    page = render();
    ck_assert_ptr_nonnull(strstr(page, "\"lanes\":[\"client 0\",\"client 1\","
                                       "\"client 2\",\"client 3\","
                                       "\"final reads\",\"final reads\"]"));
    /* Process 5 runs on thread 1 after process 1's info: lane 1. */
    ck_assert_ptr_nonnull(strstr(page, ",1,35000,10000,0,0,1,"));
    ck_assert_ptr_nonnull(strstr(page, "One lane per client thread"));
    free(page);
}
END_TEST

START_TEST(test_lanes_per_process_without_concurrency)
{
    char *page;

    write_info_run(false);
    page = render();
    ck_assert_ptr_nonnull(
        strstr(page, "\"lanes\":[\"process 0\",\"process 1\","));
    ck_assert_ptr_nonnull(strstr(page, "\"process 13\"]"));
    ck_assert_ptr_nonnull(strstr(page, "One lane per process."));
    free(page);
}
END_TEST

START_TEST(test_lanes_per_process_when_threads_overlap)
{
    char *page;

    /* Processes 0 and 2 overlap, so they cannot share a thread of two. */
    write_file("results.json", "{\"campaign\":\"c\",\"verdict\":\"valid\"}");
    write_file("campaign.json", "{\"workload\":{\"concurrency\":2}}");
    write_file("history.jsonl",
               "{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n"
               "{\"time\":2,\"process\":2,\"type\":\"invoke\",\"f\":\"read\"}\n"
               "{\"time\":3,\"process\":0,\"type\":\"ok\",\"f\":\"read\","
               "\"value\":null}\n"
               "{\"time\":4,\"process\":2,\"type\":\"ok\",\"f\":\"read\","
               "\"value\":null}\n"
               "{\"time\":5,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n"
               "{\"time\":6,\"process\":1,\"type\":\"ok\",\"f\":\"read\","
               "\"value\":null}\n");
    page = render();
    ck_assert_ptr_nonnull(strstr(page, "\"lanes\":[\"process 0\",\"process 1\","
                                       "\"process 2\"]"));
    free(page);
}
END_TEST

START_TEST(test_info_keeps_completion_time)
{
    char *page;

    write_info_run(true);
    page = render();
    /* Process 0: invoked at 10 ms, info at 20 ms, so a 10 ms bar. */
    ck_assert_ptr_nonnull(strstr(page, "\"ops\":[0,10000,10000,2,0,1,"));
    ck_assert_ptr_nonnull(strstr(page, "info at "));
    free(page);
}
END_TEST

/*
 * Forks a child that renders run_dir `times` times and exits 0 when every
 * render succeeded; returns its pid.
 */
static pid_t fork_renders(int times)
{
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char err[1024];
        for (int i = 0; i < times; i++) {
            if (rep_render_run(run_dir, err, sizeof(err)) != 0) {
                fprintf(stderr, "render %d: %s\n", i, err);
                _exit(1);
            }
        }
        _exit(0);
    }
    return pid;
}

START_TEST(test_parallel_renders_succeed)
{
    pid_t a, b;
    int status;
    DIR *dir;
    struct dirent *de;
    char *page;

    write_valid_run();
    a = fork_renders(300);
    b = fork_renders(300);
    ck_assert_int_eq(waitpid(a, &status, 0), a);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "first writer failed, status %d", status);
    ck_assert_int_eq(waitpid(b, &status, 0), b);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "second writer failed, status %d", status);

    /* No temporary file is left, and the page is whole. */
    dir = opendir(run_dir);
    ck_assert_ptr_nonnull(dir);
    while ((de = readdir(dir)) != NULL)
        ck_assert_msg(strstr(de->d_name, ".report.html.") == NULL,
                      "temporary file left: %s", de->d_name);
    closedir(dir);
    page = read_page();
    ck_assert_ptr_nonnull(strstr(page, "</html>\n"));
    free(page);
}
END_TEST

static Suite *html_suite(void)
{
    Suite *s = suite_create("html");
    TCase *tc = tcase_create("render");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_valid_run_summary);
    tcase_add_test(tc, test_durability_totals_shown);
    tcase_add_test(tc, test_hostile_strings_escaped);
    tcase_add_test(tc, test_invalid_run_counterexample);
    tcase_add_test(tc, test_invalid_run_log_excerpt);
    tcase_add_test(tc, test_unknown_verdict_colours);
    tcase_add_test(tc, test_no_operations_renders);
    tcase_add_test(tc, test_missing_history_noted);
    tcase_add_test(tc, test_long_value_cut);
    tcase_add_test(tc, test_missing_results_names_file);
    tcase_add_test(tc, test_invalid_results_names_file);
    tcase_add_test(tc, test_parallel_renders_succeed);
    tcase_add_test(tc, test_log_line_nul_shown);
    tcase_add_test(tc, test_log_line_cut_whole_utf8);
    tcase_add_test(tc, test_lanes_fold_by_thread);
    tcase_add_test(tc, test_lanes_per_process_without_concurrency);
    tcase_add_test(tc, test_lanes_per_process_when_threads_overlap);
    tcase_add_test(tc, test_info_keeps_completion_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(html_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
