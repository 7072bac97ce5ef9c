/*
 * Outcomes of a sweep's finished runs. The exit status decides the outcome
 * (0 valid, 1 invalid, 3 unknown, 130 interrupted, anything else failed
 * to run). The details come from the child's log and, for real runs, from
 * RUN_DIR/results.json: the anomalies of an invalid run, or the last lines
 * of the log of a run that failed.
 */
#include "cli.h"
#include "sweep.h"

#include "arena.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOG_MAX_BYTES     (8u << 20) /* read from a child's log */
#define RESULTS_MAX_BYTES (64u << 20)
#define MAX_ANOMALY_LINES 5
#define LOG_TAIL_LINES    6

int run_sweep_read_file(const char *path, size_t max_bytes, struct fl_buf *out)
{
    char chunk[16384];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            break;
        }
        if (got == 0)
            break;
        if (out->len + (size_t)got > max_bytes) {
            rc = -EFBIG;
            break;
        }
        fl_buf_add(out, chunk, (size_t)got);
    }
    close(fd);
    if (rc == 0 && out->failed)
        rc = -ENOMEM;
    return rc;
}

/* Returns a copy of the text after prefix up to the end of the first log
 * line that starts with prefix and, when suffix is not NULL, ends with
 * suffix (which is cut off); NULL when there is none. */
static char *find_line(const struct fl_buf *log, const char *prefix,
                       const char *suffix)
{
    size_t plen = strlen(prefix);
    size_t slen = suffix != NULL ? strlen(suffix) : 0;
    size_t start = 0;

    while (start < log->len) {
        const char *line = log->data + start;
        const char *nl = memchr(line, '\n', log->len - start);
        size_t len = nl != NULL ? (size_t)(nl - line) : log->len - start;
        if (len >= plen + slen && memcmp(line, prefix, plen) == 0 &&
            (slen == 0 || memcmp(line + len - slen, suffix, slen) == 0))
            return strndup(line + plen, len - plen - slen);
        start += len + 1;
    }
    return NULL;
}

/* Appends the last `lines` lines of the log to b. */
static void add_log_tail(const struct fl_buf *log, size_t lines,
                         struct fl_buf *b)
{
    size_t end = log->len;
    size_t start;

    while (end > 0 && log->data[end - 1] == '\n')
        end--;
    start = end;
    for (size_t n = 0; start > 0; start--) {
        if (log->data[start - 1] == '\n' && ++n == lines)
            break;
    }
    fl_buf_add(b, log->data + start, end - start);
}

static void add_json_text(struct fl_buf *b, const struct fl_json *v)
{
    if (v != NULL && v->kind == FL_JSON_STRING)
        fl_buf_add(b, v->u.s.ptr, v->u.s.len);
    else if (v != NULL)
        fl_json_write(b, v);
}

/* Appends "key k1: read of 251 at history line 1270" for each key that
 * the linearizability checker found not linearizable. */
static void add_keys(const struct fl_json *keys, struct fl_buf *b)
{
    for (size_t k = 0; keys->kind == FL_JSON_ARRAY && k < keys->u.array.count;
         k++) {
        const struct fl_json *item = &keys->u.array.items[k];
        const struct fl_json *op;
        if (item->kind != FL_JSON_OBJECT)
            continue;
        op = fl_json_get(item, "op");
        fl_buf_adds(b, b->len > 0 ? "; key " : "key ");
        add_json_text(b, fl_json_get(item, "key"));
        if (op == NULL || op->kind != FL_JSON_OBJECT)
            continue;
        fl_buf_adds(b, ": ");
        add_json_text(b, fl_json_get(op, "f"));
        if (fl_json_get(op, "output") != NULL) {
            fl_buf_adds(b, " of ");
            add_json_text(b, fl_json_get(op, "output"));
        }
        if (fl_json_get(op, "invoke_line") != NULL) {
            fl_buf_adds(b, " at history line ");
            add_json_text(b, fl_json_get(op, "invoke_line"));
        }
    }
}

/*
 * Appends one line per anomaly of results.json, "checker kind: what", at
 * most MAX_ANOMALY_LINES of them. "what" is the detail's text where it has
 * one (the Raft audit's and the log scan's), the keys and operations that
 * failed for linearizability, and the detail as JSON otherwise, cut to 300
 * bytes.
 */
static void add_anomalies(const struct fl_json *results, struct fl_buf *b)
{
    const struct fl_json *list = fl_json_get(results, "anomalies");
    size_t count;

    if (list == NULL || list->kind != FL_JSON_ARRAY)
        return;
    count = list->u.array.count;
    for (size_t i = 0; i < count && i < MAX_ANOMALY_LINES; i++) {
        const struct fl_json *a = &list->u.array.items[i];
        const struct fl_json *detail;
        struct fl_buf what;
        if (a->kind != FL_JSON_OBJECT)
            continue;
        detail = fl_json_get(a, "detail");
        fl_buf_init(&what);
        if (detail != NULL && detail->kind == FL_JSON_OBJECT &&
            fl_json_get(detail, "what") != NULL)
            add_json_text(&what, fl_json_get(detail, "what"));
        else if (detail != NULL && detail->kind == FL_JSON_OBJECT &&
                 fl_json_get(detail, "line") != NULL)
            add_json_text(&what, fl_json_get(detail, "line"));
        else if (detail != NULL && detail->kind == FL_JSON_OBJECT &&
                 fl_json_get(detail, "anomalies") != NULL)
            add_keys(fl_json_get(detail, "anomalies"), &what);
        else
            add_json_text(&what, detail);
        fl_buf_adds(b, b->len > 0 ? "\n" : "");
        add_json_text(b, fl_json_get(a, "checker"));
        fl_buf_addc(b, ' ');
        add_json_text(b, fl_json_get(a, "kind"));
        if (what.len > 0) {
            fl_buf_printf(b, ": %.*s%s", (int)(what.len > 300 ? 300 : what.len),
                          what.data, what.len > 300 ? "..." : "");
        }
        fl_buf_free(&what);
    }
    if (count > MAX_ANOMALY_LINES)
        fl_buf_printf(b, "\n... and %zu more in results.json",
                      count - MAX_ANOMALY_LINES);
}

/*
 * Reads run_dir/results.json and appends its anomalies, or why the run
 * stopped, to b. Returns its verdict ("valid", "invalid", "unknown"), or
 * NULL when the file is missing or unreadable.
 */
static const char *read_results(const char *run_dir, struct fl_buf *b)
{
    char path[PATH_MAX];
    struct fl_buf text;
    struct fl_arena arena;
    struct fl_json root;
    const struct fl_json *v;
    const char *why;
    const char *verdict = NULL;
    size_t where;

    snprintf(path, sizeof(path), "%s/results.json", run_dir);
    fl_buf_init(&text);
    fl_arena_init(&arena, 0, NULL);
    if (run_sweep_read_file(path, RESULTS_MAX_BYTES, &text) == 0 &&
        fl_json_parse(&arena, text.data != NULL ? text.data : "", text.len,
                      &root, &why, &where) == 0 &&
        root.kind == FL_JSON_OBJECT) {
        v = fl_json_get(&root, "verdict");
        if (v != NULL && v->kind == FL_JSON_STRING) {
            if (fl_str_eq(v->u.s, "invalid"))
                verdict = "invalid";
            else if (fl_str_eq(v->u.s, "valid"))
                verdict = "valid";
            else if (fl_str_eq(v->u.s, "unknown"))
                verdict = "unknown";
        }
        add_anomalies(&root, b);
        v = fl_json_get(&root, "infrastructure_error");
        if (v != NULL) {
            fl_buf_adds(b, b->len > 0 ? "\nthe run stopped early: "
                                      : "the run stopped early: ");
            add_json_text(b, v);
        }
    }
    fl_arena_destroy(&arena);
    fl_buf_free(&text);
    return verdict;
}

static char *take(struct fl_buf *b)
{
    char *s = b->failed || b->data == NULL ? NULL : strdup(b->data);

    fl_buf_free(b);
    return s;
}

void run_sweep_read_job(const struct run_sweep *s, struct run_sweep_job *job,
                        bool forwarded)
{
    const struct run_sweep_campaign *c = &s->campaigns[job->campaign];
    int status = job->exit_status;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    const char *verdict = NULL;
    struct fl_buf log, detail;

    fl_buf_init(&log);
    fl_buf_init(&detail);
    /* A log that cannot be read leaves only the exit status to go by. */
    run_sweep_read_file(job->log_path, LOG_MAX_BYTES, &log);
    if (!c->sim) {
        job->run_dir = find_line(&log, "results: ", "/results.json");
        if (job->run_dir == NULL)
            job->run_dir = find_line(&log, "faultline run: storing in ", NULL);
        if (job->run_dir != NULL)
            verdict = read_results(job->run_dir, &detail);
    } else if (code == 1 || code == 3) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "seed %" PRIu64 ": ", job->seed);
        char *line = find_line(&log, prefix, NULL);
        if (line != NULL)
            fl_buf_adds(&detail, line);
        free(line);
    }

    if (WIFSIGNALED(status)) {
        job->outcome = forwarded ? RUN_SWEEP_INTERRUPTED : RUN_SWEEP_FAILED;
        fl_buf_clear(&detail);
        fl_buf_printf(&detail, "%s by signal %d (%s)",
                      forwarded ? "stopped" : "killed", WTERMSIG(status),
                      strsignal(WTERMSIG(status)));
    } else if (code == RUN_EXIT_VALID) {
        job->outcome = RUN_SWEEP_VALID;
    } else if (code == RUN_EXIT_INVALID) {
        job->outcome = RUN_SWEEP_INVALID;
    } else if (code == RUN_EXIT_UNKNOWN) {
        job->outcome = RUN_SWEEP_UNKNOWN;
    } else if (code == 130 && verdict != NULL &&
               strcmp(verdict, "invalid") == 0) {
        /* Interrupted, but what it recorded before already broke a
         * promise: the anomaly is real. */
        job->outcome = RUN_SWEEP_INVALID;
    } else if (code == 130) {
        job->outcome = RUN_SWEEP_INTERRUPTED;
        fl_buf_clear(&detail);
        fl_buf_adds(&detail, "interrupted before the run finished");
    } else {
        job->outcome = RUN_SWEEP_FAILED;
        fl_buf_clear(&detail);
        fl_buf_printf(&detail, "exit status %d; the end of %s:\n", code,
                      job->log_path);
        add_log_tail(&log, LOG_TAIL_LINES, &detail);
    }
    if (job->outcome == RUN_SWEEP_UNKNOWN && detail.len == 0)
        fl_buf_adds(&detail, "a check gave up (out of time or memory)");
    free(job->detail);
    job->detail = take(&detail);
    fl_buf_free(&log);
}

void run_sweep_tally(const struct run_sweep *s, size_t c,
                     struct run_sweep_tally *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < s->n_jobs; i++) {
        const struct run_sweep_job *job = &s->jobs[i];
        if (job->campaign != c)
            continue;
        if (job->outcome != RUN_SWEEP_NOT_STARTED &&
            job->outcome != RUN_SWEEP_PENDING)
            t->seconds += (double)(job->stop_ns - job->start_ns) / 1e9;
        switch (job->outcome) {
        case RUN_SWEEP_VALID:
            t->valid++;
            break;
        case RUN_SWEEP_INVALID:
            t->invalid++;
            /* Jobs are in seed order, so the first invalid one is the
             * lowest seed, and every verdict counted so far came before. */
            if (!t->detected) {
                t->detected = true;
                t->first_detected_seed = job->seed;
                t->seeds_to_first = t->valid + t->invalid + t->unknown;
            }
            break;
        case RUN_SWEEP_UNKNOWN:
            t->unknown++;
            break;
        case RUN_SWEEP_FAILED:
            t->failed++;
            break;
        case RUN_SWEEP_INTERRUPTED:
            t->interrupted++;
            break;
        default:
            t->not_started++;
            break;
        }
    }
    t->verdicts = t->valid + t->invalid + t->unknown;
}

bool run_sweep_campaign_failed(const struct run_sweep *s, size_t c,
                               const struct run_sweep_tally *t)
{
    if (s->campaigns[c].expect_invalid)
        return t->verdicts > 0 && !t->detected;
    return t->invalid > 0;
}

bool run_sweep_job_unexpected(const struct run_sweep *s,
                              const struct run_sweep_job *job)
{
    return job->outcome == RUN_SWEEP_INVALID &&
           !s->campaigns[job->campaign].expect_invalid;
}

void run_sweep_repro(const struct run_sweep *s, const struct run_sweep_job *job,
                     struct fl_buf *b)
{
    const struct run_sweep_campaign *c = &s->campaigns[job->campaign];

    if (c->sim) {
        struct run_sim_args args;
        run_sim_campaign_args(&c->sim_campaign, job->seed, &args);
        fl_buf_adds(b, "faultline");
        for (size_t i = 0; i < args.argc; i++)
            fl_buf_printf(b, " %s", args.argv[i]);
    } else if (job->run_dir != NULL) {
        fl_buf_printf(b, "faultline repro %s", job->run_dir);
    }
}
