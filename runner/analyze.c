/*
 * The checks after a run, and results.json.
 *
 *   linearizability  the history, per key, against the cas-register model
 *                    (cas-fail no-effect, null reads meaning "absent");
 *   raft audit       the Raft invariants from the nodes' trace lines
 *                    (checkers/raftlog.h), for fl-raftd runs;
 *   node logs        sanitizer reports, assertion failures and fatal
 *                    errors in the nodes' output, and exits the nemesis
 *                    did not cause;
 *   durability       no read misses a write acknowledged before it
 *                    began (runner/durability.c); a write that a final
 *                    read, or a read after a crash fault, misses was lost;
 *   availability     ok operations per second while some fault was active
 *                    and while none was, from the history's completion
 *                    times and nemesis.jsonl.
 *
 * The verdict is invalid when any check found an anomaly, unknown when the
 * linearizability search ran out of budget, valid otherwise.
 */
#include "check_file.h"
#include "cli.h"
#include "run.h"

#include "error.h"
#include "history.h"
#include "linear.h"
#include "raftlog.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LOG_FINDINGS 20

/* What marks a crash or a broken invariant in a node's output. */
static const char *const log_patterns[] = {
    "AddressSanitizer", "LeakSanitizer",      "runtime error:", "Assertion",
    "assertion failed", "Segmentation fault", "level=fatal",    "panic",
};

static void add_json_str(struct fl_buf *b, const char *s)
{
    fl_buf_add_json_string(b, s, strlen(s));
}

/* ---- node logs --------------------------------------------------------- */

static int scan_logs(const struct run_facts *f, struct fl_buf *check,
                     struct fl_buf *anomalies, size_t *n_anomalies,
                     struct chk_raftlog *audit, char *audit_err,
                     size_t audit_err_size)
{
    size_t findings = 0;
    bool first = true;

    fl_buf_adds(check, "{\"findings\":[");
    for (unsigned i = 1; i <= f->c->nodes; i++) {
        char path[PATH_MAX];
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        uint64_t n = 0;
        FILE *in;

        snprintf(path, sizeof(path), "%s/nodes/n%u.log", f->dir, i);
        in = fopen(path, "r");
        if (in == NULL)
            continue;
        while ((len = getline(&line, &cap, in)) >= 0) {
            n++;
            if (len > 0 && line[len - 1] == '\n')
                line[--len] = '\0';
            if (audit != NULL && audit_err[0] == '\0' &&
                chk_raftlog_feed(audit, path, n, line, (size_t)len, audit_err,
                                 audit_err_size) != 0 &&
                audit_err[0] == '\0')
                snprintf(audit_err, audit_err_size, "out of memory");
            for (size_t k = 0;
                 k < sizeof(log_patterns) / sizeof(log_patterns[0]); k++) {
                if (strstr(line, log_patterns[k]) == NULL)
                    continue;
                findings++;
                if (findings <= MAX_LOG_FINDINGS) {
                    char where[PATH_MAX + 32];
                    snprintf(where, sizeof(where), "nodes/n%u.log:%" PRIu64, i,
                             n);
                    fl_buf_adds(check, first ? "" : ",");
                    fl_buf_adds(check, "{\"where\":");
                    add_json_str(check, where);
                    fl_buf_adds(check, ",\"line\":");
                    fl_buf_add_json_string(
                        check, line, (size_t)len > 400 ? 400 : (size_t)len);
                    fl_buf_addc(check, '}');
                    fl_buf_adds(anomalies, *n_anomalies ? "," : "");
                    fl_buf_adds(anomalies, "{\"checker\":\"logs\",\"kind\":"
                                           "\"node-error\",\"detail\":{"
                                           "\"where\":");
                    add_json_str(anomalies, where);
                    fl_buf_adds(anomalies, ",\"line\":");
                    fl_buf_add_json_string(
                        anomalies, line, (size_t)len > 400 ? 400 : (size_t)len);
                    fl_buf_adds(anomalies, "}}");
                    (*n_anomalies)++;
                    first = false;
                }
                break;
            }
        }
        free(line);
        fclose(in);
    }
    for (size_t i = 0; i < f->n_crashes; i++) {
        fl_buf_adds(check, first ? "" : ",");
        fl_buf_adds(check, "{\"exit\":");
        add_json_str(check, f->crashes[i]);
        fl_buf_addc(check, '}');
        fl_buf_adds(anomalies, *n_anomalies ? "," : "");
        fl_buf_adds(anomalies, "{\"checker\":\"logs\",\"kind\":\"node-exit\","
                               "\"detail\":{\"what\":");
        add_json_str(anomalies, f->crashes[i]);
        fl_buf_adds(anomalies, "}}");
        (*n_anomalies)++;
        first = false;
    }
    fl_buf_printf(check, "],\"count\":%zu,\"valid\":%s}",
                  findings + f->n_crashes,
                  findings + f->n_crashes == 0 ? "true" : "false");
    return (int)(findings + f->n_crashes);
}

/* ---- availability ------------------------------------------------------ */

static size_t read_faults(const char *dir, int64_t end, struct run_span **out)
{
    char path[PATH_MAX];
    char *line = NULL;
    size_t cap = 0;
    size_t n = 0;
    size_t room = 0;
    struct run_span *iv = NULL;
    FILE *in;

    snprintf(path, sizeof(path), "%s/nemesis.jsonl", dir);
    in = fopen(path, "r");
    if (in == NULL) {
        *out = NULL;
        return 0;
    }
    /* start and stop lines of one fault share an id; faults here never
     * overlap, so pairing each stop with the last start is enough. */
    while (getline(&line, &cap, in) >= 0) {
        const char *t = strstr(line, "\"time\":");
        if (t == NULL)
            continue;
        int64_t at = strtoll(t + 7, NULL, 10);
        if (strstr(line, "\"action\":\"start\"") != NULL) {
            if (n == room) {
                room = room ? room * 2 : 16;
                struct run_span *g = realloc(iv, room * sizeof(*g));
                if (g == NULL)
                    break;
                iv = g;
            }
            const char *kind = strstr(line, "\"fault\":\"");
            iv[n].start = at;
            iv[n].stop = end;
            iv[n].ok = 0;
            iv[n].idle = false;
            iv[n].fault[0] = '\0';
            if (kind != NULL)
                sscanf(kind + 9, "%23[^\"]", iv[n].fault);
            n++;
        } else if (n > 0) {
            iv[n - 1].stop = at;
            iv[n - 1].idle = strstr(line, "\"fired\":0") != NULL;
        }
    }
    free(line);
    fclose(in);
    *out = iv;
    return n;
}

struct op_counts {
    uint64_t invoke, ok, fail, info;
    uint64_t ok_in_faults, ok_outside;
    uint64_t open; /* never completed */
};

static int count_ops(const char *dir, struct run_span *iv, size_t n_iv,
                     int64_t end, struct op_counts *k, char *err,
                     size_t err_size)
{
    char path[PATH_MAX];
    struct fl_hist_reader *r;
    struct fl_hist_event ev;
    int rc;

    memset(k, 0, sizeof(*k));
    snprintf(path, sizeof(path), "%s/history.jsonl", dir);
    rc = fl_hist_reader_open(&r, path, NULL);
    if (rc != 0) {
        if (snprintf(err, err_size, "%s: %s", path, fl_strerror(rc)) < 0)
            err[0] = '\0';
        return rc;
    }
    while ((rc = fl_hist_reader_next(r, &ev)) == 1) {
        switch (ev.type) {
        case FL_HIST_INVOKE:
            k->invoke++;
            break;
        case FL_HIST_OK: {
            bool in_fault = false;
            k->ok++;
            if (ev.time > end)
                break; /* final reads */
            for (size_t i = 0; i < n_iv && !in_fault; i++) {
                in_fault = ev.time >= iv[i].start && ev.time < iv[i].stop;
                iv[i].ok += in_fault;
            }
            if (in_fault)
                k->ok_in_faults++;
            else
                k->ok_outside++;
            break;
        }
        case FL_HIST_FAIL:
            k->fail++;
            break;
        case FL_HIST_INFO:
            k->info++;
            break;
        }
    }
    if (rc < 0)
        snprintf(err, err_size, "%s", fl_hist_reader_error(r));
    k->open = fl_hist_reader_open_count(r);
    fl_hist_reader_close(r);
    return rc < 0 ? rc : 0;
}

/* ---- the whole --------------------------------------------------------- */

int run_analyze(const struct run_facts *f, struct run_outcome *out)
{
    struct fl_buf res;
    struct fl_buf logs;
    struct fl_buf anomalies;
    struct fl_buf lin;
    struct fl_buf dur;
    struct run_durability_result dur_res;
    struct chk_lin_options o;
    struct run_check_outcome lin_out;
    struct chk_raftlog *audit = NULL;
    char audit_err[512] = "";
    char path[PATH_MAX];
    struct run_span *iv = NULL;
    size_t n_iv;
    struct op_counts k;
    char count_err[512] = "";
    size_t n_anomalies = 0;
    bool invalid = false;
    bool unknown = false;
    char *lin_text = NULL;
    size_t lin_len = 0;
    FILE *mem;
    int rc;

    memset(out, 0, sizeof(*out));
    fl_buf_init(&res);
    fl_buf_init(&logs);
    fl_buf_init(&anomalies);
    fl_buf_init(&lin);
    fl_buf_init(&dur);

    /* Linearizability. */
    chk_lin_options_default(&o);
    o.model = CHK_MODEL_CAS_REGISTER;
    o.time_limit_s = f->c->check_time_limit_s;
    o.memory_limit_bytes = (int64_t)f->c->check_memory_mib << 20;
    snprintf(path, sizeof(path), "%s/history.jsonl", f->dir);
    mem = open_memstream(&lin_text, &lin_len);
    rc = run_check_file(path, &o, mem, true, &lin_out);
    if (mem != NULL)
        fclose(mem);
    if (rc != 0) {
        unknown = true;
        fl_buf_adds(&lin, "{\"verdict\":\"unknown\",\"error\":");
        add_json_str(&lin, lin_out.error);
        fl_buf_addc(&lin, '}');
    } else {
        while (lin_len > 0 && lin_text[lin_len - 1] == '\n')
            lin_len--;
        fl_buf_add(&lin, lin_text, lin_len);
        if (lin_out.verdict == CHK_INVALID) {
            invalid = true;
            fl_buf_adds(&anomalies, "{\"checker\":\"linearizability\","
                                    "\"kind\":\"not-linearizable\","
                                    "\"detail\":");
            fl_buf_add(&anomalies, lin_text, lin_len);
            fl_buf_addc(&anomalies, '}');
            n_anomalies++;
        } else if (lin_out.verdict == CHK_UNKNOWN) {
            unknown = true;
        }
    }
    free(lin_text);

    /* Node logs and the Raft audit, in one pass over the logs. */
    if (f->c->system == CAMP_SYSTEM_RAFT && chk_raftlog_new(&audit) != 0)
        audit = NULL;
    if (scan_logs(f, &logs, &anomalies, &n_anomalies, audit, audit_err,
                  sizeof(audit_err)) > 0)
        invalid = true;

    /* Durability, which names crash faults from nemesis.jsonl. */
    n_iv = read_faults(f->dir, f->workload_ns, &iv);
    {
        struct run_durability_input din = {
            .history_path = path,
            .workload_end_ns = f->workload_ns,
            .spans = iv,
            .n_spans = n_iv,
        };
        snprintf(path, sizeof(path), "%s/history.jsonl", f->dir);
        run_check_durability(&din, &dur, &anomalies, &n_anomalies, &dur_res);
        if (dur_res.lost + dur_res.unseen > 0)
            invalid = true;
    }

    /* Availability. */
    count_ops(f->dir, iv, n_iv, f->workload_ns, &k, count_err,
              sizeof(count_err));
    double in_s = 0;
    for (size_t i = 0; i < n_iv; i++)
        in_s += (double)(iv[i].stop - iv[i].start) / 1e9;
    double out_s = (double)f->workload_ns / 1e9 - in_s;

    /* results.json */
    fl_buf_adds(&res, "{\"campaign\":");
    add_json_str(&res, f->c->name);
    fl_buf_printf(&res,
                  ",\"seed\":%" PRIu64 ",\"run_id\":\"%s\",\"system\":"
                  "\"%s\",\"nodes\":%u,\"started\":\"%s\","
                  "\"elapsed_s\":%.3f,\"network\":\"%s\","
                  "\"interrupted\":%s,\"store\":",
                  f->seed, f->run_id, camp_system_name(f->c->system),
                  f->c->nodes, f->started_utc, f->elapsed_s,
                  f->namespaces ? "namespaces" : "loopback",
                  f->interrupted ? "true" : "false");
    add_json_str(&res, f->dir);
    fl_buf_adds(&res, ",\"notes\":[");
    for (size_t i = 0; i < f->n_notes; i++) {
        fl_buf_adds(&res, i ? "," : "");
        add_json_str(&res, f->notes[i]);
    }
    fl_buf_adds(&res, "],\"checks\":{\"linearizability\":");
    fl_buf_add(&res, lin.data, lin.len);
    if (audit != NULL) {
        struct fl_buf report;
        struct chk_raftlog_stats st;
        fl_buf_init(&report);
        chk_raftlog_report(audit, &report, &st);
        fl_buf_adds(&res, ",\"raft_audit\":{");
        if (audit_err[0] != '\0') {
            fl_buf_adds(&res, "\"valid\":null,\"error\":");
            add_json_str(&res, audit_err);
            fl_buf_adds(&res, ",");
        } else {
            fl_buf_printf(&res, "\"valid\":%s,",
                          st.violations ? "false" : "true");
        }
        fl_buf_printf(&res,
                      "\"events\":%" PRIu64 ",\"leaders\":%" PRIu64
                      ",\"votes\":%" PRIu64 ",\"applies\":%" PRIu64
                      ",\"boots\":%" PRIu64 ",\"violations\":[",
                      st.events, st.leaders, st.votes, st.applies, st.boots);
        /* One violation a line. */
        size_t start = 0;
        bool first = true;
        for (size_t i = 0; i < report.len; i++) {
            if (report.data[i] != '\n')
                continue;
            fl_buf_adds(&res, first ? "" : ",");
            fl_buf_add_json_string(&res, report.data + start, i - start);
            fl_buf_adds(&anomalies, n_anomalies ? "," : "");
            fl_buf_adds(&anomalies, "{\"checker\":\"raft-audit\",\"kind\":"
                                    "\"invariant\",\"detail\":{\"what\":");
            fl_buf_add_json_string(&anomalies, report.data + start, i - start);
            fl_buf_adds(&anomalies, "}}");
            n_anomalies++;
            start = i + 1;
            first = false;
        }
        fl_buf_adds(&res, "]}");
        if (st.violations > 0)
            invalid = true;
        fl_buf_free(&report);
        chk_raftlog_free(audit);
    }
    fl_buf_adds(&res, ",\"durability\":");
    fl_buf_add(&res, dur.data, dur.len);
    fl_buf_adds(&res, ",\"logs\":");
    fl_buf_add(&res, logs.data, logs.len);
    fl_buf_adds(&res, "},\"anomalies\":[");
    fl_buf_add(&res, anomalies.data, anomalies.len);
    fl_buf_printf(&res,
                  "],\"metrics\":{\"invocations\":%" PRIu64 ",\"ok\":%" PRIu64
                  ",\"fail\":%" PRIu64 ",\"info\":%" PRIu64
                  ",\"never_completed\":%" PRIu64 ",\"faults\":%zu,"
                  "\"final_reads\":%d,\"keys\":%u,"
                  "\"workload_s\":%.3f,\"seconds_in_faults\":%.3f,"
                  "\"ok_per_s_in_faults\":%.2f,"
                  "\"ok_per_s_outside_faults\":%.2f,\"per_fault\":[",
                  k.invoke, k.ok, k.fail, k.info, k.open, n_iv, f->final_reads,
                  f->c->keys, (double)f->workload_ns / 1e9, in_s,
                  in_s > 0 ? (double)k.ok_in_faults / in_s : 0.0,
                  out_s > 0 ? (double)k.ok_outside / out_s : 0.0);
    for (size_t i = 0; i < n_iv; i++) {
        double span = (double)(iv[i].stop - iv[i].start) / 1e9;
        fl_buf_printf(&res,
                      "%s{\"fault\":\"%s\",\"start_s\":%.3f,\"stop_s\":%.3f,"
                      "\"ok_per_s\":%.2f}",
                      i ? "," : "", iv[i].fault, (double)iv[i].start / 1e9,
                      (double)iv[i].stop / 1e9,
                      span > 0 ? (double)iv[i].ok / span : 0.0);
    }
    fl_buf_adds(&res, "]}");
    if (count_err[0] != '\0') {
        fl_buf_adds(&res, ",\"history_error\":");
        add_json_str(&res, count_err);
        unknown = true;
    }
    if (f->broken != NULL && f->broken[0] != '\0') {
        fl_buf_adds(&res, ",\"infrastructure_error\":");
        add_json_str(&res, f->broken);
    }
    if (invalid) {
        out->verdict = "invalid";
        out->exit_code = RUN_EXIT_INVALID;
    } else if (f->broken != NULL && f->broken[0] != '\0') {
        /* What was recorded is consistent, but the run did not finish. */
        out->verdict = "unknown";
        out->exit_code = RUN_EXIT_INFRA;
    } else if (unknown) {
        out->verdict = "unknown";
        out->exit_code = RUN_EXIT_UNKNOWN;
    } else {
        out->verdict = "valid";
        out->exit_code = RUN_EXIT_VALID;
    }
    /* An interrupted run exits 130 whatever its checks found, and its
     * record must show the same. */
    if (f->interrupted)
        out->exit_code = 130;
    fl_buf_printf(&res,
                  ",\"expected\":\"%s\",\"verdict\":\"%s\",\"exit_code\":%d,"
                  "\"as_expected\":%s,\"repro\":",
                  f->c->expect_invalid ? "invalid" : "valid", out->verdict,
                  out->exit_code,
                  (strcmp(out->verdict, "invalid") == 0) == f->c->expect_invalid
                      ? "true"
                      : "false");
    {
        char repro[PATH_MAX + 32];
        snprintf(repro, sizeof(repro), "faultline repro %s", f->dir);
        add_json_str(&res, repro);
    }
    fl_buf_adds(&res, "}\n");

    /* The terminal summary. */
    size_t used = 0;
    used += (size_t)snprintf(
        out->summary + used, sizeof(out->summary) - used,
        "  operations: %" PRIu64 " ok, %" PRIu64 " fail, %" PRIu64
        " info; %.1f ok/s outside faults, %.1f in faults\n",
        k.ok, k.fail, k.info, out_s > 0 ? (double)k.ok_outside / out_s : 0.0,
        in_s > 0 ? (double)k.ok_in_faults / in_s : 0.0);
    if (used < sizeof(out->summary))
        used += (size_t)snprintf(
            out->summary + used, sizeof(out->summary) - used,
            "  linearizability: %s\n",
            rc != 0 ? "not checked" : chk_verdict_name(lin_out.verdict));
    if (used < sizeof(out->summary) && dur_res.lost + dur_res.unseen > 0)
        used += (size_t)snprintf(
            out->summary + used, sizeof(out->summary) - used,
            "  durability: %" PRIu64 " acknowledged writes lost, %" PRIu64
            " unseen by later reads\n",
            dur_res.lost, dur_res.unseen);
    else if (used < sizeof(out->summary) && !dur_res.unknown)
        used += (size_t)snprintf(
            out->summary + used, sizeof(out->summary) - used,
            "  durability: no acknowledged write missed (%" PRIu64
            " writes, %" PRIu64 " reads)\n",
            dur_res.acknowledged, dur_res.reads);
    else if (used < sizeof(out->summary))
        used +=
            (size_t)snprintf(out->summary + used, sizeof(out->summary) - used,
                             "  durability: not checked (see "
                             "results.json)\n");
    if (used < sizeof(out->summary) && n_anomalies > 0)
        used += (size_t)snprintf(
            out->summary + used, sizeof(out->summary) - used,
            "  anomalies: %zu (see results.json)\n", n_anomalies);
    if (used < sizeof(out->summary) && k.invoke > 0 &&
        (double)k.ok < 0.05 * (double)k.invoke)
        used += (size_t)snprintf(
            out->summary + used, sizeof(out->summary) - used,
            "  low availability: only %" PRIu64 " of %" PRIu64
            " operations succeeded, so the checks had little to judge\n",
            k.ok, k.invoke);
    if (used < sizeof(out->summary) && f->broken != NULL &&
        f->broken[0] != '\0')
        used +=
            (size_t)snprintf(out->summary + used, sizeof(out->summary) - used,
                             "  the run stopped early: %s\n", f->broken);
    if (used < sizeof(out->summary) && f->c->expect_invalid && !invalid)
        snprintf(out->summary + used, sizeof(out->summary) - used,
                 "  expected invalid: the planted bug was not found in this "
                 "run\n");

    /* Written under a temporary name and renamed, so a full disk leaves
     * no empty or cut results.json behind. */
    char tmp_path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/results.json", f->dir);
    snprintf(tmp_path, sizeof(tmp_path), "%s/.results.json.tmp", f->dir);
    if (res.failed) {
        rc = -ENOMEM;
    } else {
        FILE *o_file = fopen(tmp_path, "w");
        rc = 0;
        if (o_file == NULL) {
            rc = -errno;
        } else {
            if (fwrite(res.data, 1, res.len, o_file) != res.len)
                rc = -EIO;
            if (fclose(o_file) != 0 && rc == 0)
                rc = -errno;
            if (rc == 0 && rename(tmp_path, path) != 0)
                rc = -errno;
            if (rc != 0)
                unlink(tmp_path);
        }
    }
    free(iv);
    fl_buf_free(&res);
    fl_buf_free(&logs);
    fl_buf_free(&anomalies);
    fl_buf_free(&lin);
    fl_buf_free(&dur);
    return rc;
}
