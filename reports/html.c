/*
 * report.html for one run: a summary, a timeline of every operation with the
 * fault periods, latency and throughput over time, the counterexample of a
 * linearizability violation and excerpts of the node logs around it.
 *
 * The page is one self-contained file. The timeline keeps every operation
 * as a compact JavaScript array and draws only the visible time window into
 * SVG, so a run of 100,000 operations stays a few megabytes and responsive.
 * The other charts are drawn here as static SVG, with the latency points
 * thinned to at most LAT_POINTS_MAX.
 *
 * Every string that comes from the run (values, keys, log lines, notes) is
 * escaped for HTML, or for a JavaScript string inside a <script> element,
 * where '<' is written as \u003c so that no "</script>" can end the element.
 */
#include "html.h"

#include "arena.h"
#include "buf.h"
#include "error.h"
#include "hash.h"
#include "history.h"
#include "json.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Latency points drawn at most; more are thinned by a fixed stride. */
#define LAT_POINTS_MAX 20000
/* Time buckets of the p50 and p99 lines. */
#define LAT_BUCKETS 100
/* Maximum value text per operation, in bytes. Longer values end in "...". */
#define VALUE_TEXT_MAX 160
/* Log excerpts: milliseconds either side of the anomaly, lines per node and
 * bytes kept of each line before "...". */
#define LOG_WINDOW_MS  2000
#define LOG_LINES_MAX  40
#define LOG_LINE_CHARS 400
/* About how many operations the timeline's first window shows. */
#define VISIBLE_OPS 1500
/* Counterexamples drawn in detail, and rows in each one's timeline. */
#define LIN_SHOWN_MAX      4
#define LIN_CONCURRENT_MAX 30
#define LIN_PREFIX_ROWS    8

enum op_type { OP_OK, OP_FAIL, OP_INFO, OP_OPEN };

/* One operation: an invocation and its completion, if any. */
struct op {
    int64_t start;   /* ns since run start */
    int64_t end;     /* ns; -1 for info and never-completed operations */
    int64_t info_at; /* ns of an info completion, or -1 */
    int64_t process;
    uint64_t invoke_line; /* matches invoke_line in the checker's output */
    uint32_t lane;        /* index into report.lanes */
    uint32_t f;           /* id in names */
    int64_t key;          /* id in names, or -1 */
    int64_t value;        /* id in values, or -1 */
    enum op_type type;
};

struct fault {
    int64_t id;
    int64_t start; /* ns since run start */
    int64_t stop;  /* ns, or -1 while no stop was recorded */
    char label[96];
};

struct report {
    const char *dir;
    struct fl_arena arena;
    struct fl_json results;
    struct fl_json campaign; /* FL_JSON_NULL when campaign.json is absent */
    char *texts[2];          /* the files' text, which the values point into */

    struct op *ops;
    size_t n_ops;
    size_t ops_cap;
    /* Each lane's client thread, or -1 for a lane of final reads, when
     * lanes_are_threads; otherwise each lane's process, ascending. */
    int64_t *lanes;
    size_t n_lanes;
    bool lanes_are_threads;
    struct fl_strtab names;  /* f and key strings */
    struct fl_strtab values; /* value texts */

    struct fault *faults;
    size_t n_faults;
    size_t faults_cap;

    int64_t end_ns; /* the right edge of every time axis */
    int64_t focus_ns;
    long focus_op; /* index of the first anomaly's failed operation, or -1 */

    char history_note[8192];
    char nemesis_note[8192];

    struct fl_buf page;
};

/* ---- escaping and small helpers ---------------------------------------- */

void rep_add_html(struct fl_buf *b, const char *s, size_t len)
{
    size_t run = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        switch (c) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        case '\0':
            /* U+2400 SYMBOL FOR NULL, so a NUL in a log line stays visible. */
            rep = "\xe2\x90\x80";
            break;
        default:
            /* Other control bytes (ANSI escapes) are not valid HTML text. */
            if (c < 0x20 && c != '\t' && c != '\n')
                rep = "\xef\xbf\xbd";
            break;
        }
        if (rep == NULL)
            continue;
        fl_buf_add(b, s + run, i - run);
        fl_buf_adds(b, rep);
        run = i + 1;
    }
    fl_buf_add(b, s + run, len - run);
}

static void add_html(struct fl_buf *b, const char *s, size_t len)
{
    rep_add_html(b, s, len);
}

static void add_htmls(struct fl_buf *b, const char *s)
{
    rep_add_html(b, s, strlen(s));
}

/*
 * Appends s as a double-quoted JavaScript string that is safe inside a
 * <script> element: '<', '>' and '&' are escaped so that neither
 * "</script>" nor "<!--" can appear, and so are U+2028 and U+2029.
 */
static void add_js_string(struct fl_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    fl_buf_addc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool line_sep = c == 0xe2 && i + 2 < len &&
                        (unsigned char)s[i + 1] == 0x80 &&
                        ((unsigned char)s[i + 2] == 0xa8 ||
                         (unsigned char)s[i + 2] == 0xa9);
        if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' &&
            c != '&' && !line_sep)
            continue;
        fl_buf_add(b, s + run, i - run);
        if (line_sep) {
            fl_buf_adds(b, (unsigned char)s[i + 2] == 0xa8 ? "\\u2028"
                                                           : "\\u2029");
            i += 2;
        } else if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            fl_buf_add(b, esc, sizeof(esc));
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            fl_buf_add(b, esc, sizeof(esc));
        }
        run = i + 1;
    }
    fl_buf_add(b, s + run, len - run);
    fl_buf_addc(b, '"');
}

static struct fl_str json_str(const struct fl_json *o, const char *key)
{
    const struct fl_json *v = o ? fl_json_get(o, key) : NULL;
    struct fl_str none = {NULL, 0};
    if (v == NULL || v->kind != FL_JSON_STRING)
        return none;
    return v->u.s;
}

static bool json_num(const struct fl_json *o, const char *key, double *out)
{
    const struct fl_json *v = o ? fl_json_get(o, key) : NULL;
    if (v == NULL)
        return false;
    if (v->kind == FL_JSON_INT)
        *out = (double)v->u.i;
    else if (v->kind == FL_JSON_DOUBLE)
        *out = v->u.d;
    else
        return false;
    return true;
}

static const struct fl_json *json_array(const struct fl_json *o,
                                        const char *key)
{
    const struct fl_json *v = o ? fl_json_get(o, key) : NULL;
    return v != NULL && v->kind == FL_JSON_ARRAY ? v : NULL;
}

/*
 * Returns the length of the longest prefix of s, at most max bytes, that does
 * not end inside a UTF-8 sequence.
 */
static size_t utf8_prefix_len(const char *s, size_t len, size_t max)
{
    size_t cut = max;

    if (len <= max)
        return len;
    /* s[cut] is the first byte left out: a continuation byte there means
     * the sequence it belongs to would be cut in two. */
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
        cut--;
    return cut;
}

/* Appends v as compact JSON, cut at max bytes with "..." appended. */
static void add_value_text(struct fl_buf *b, const struct fl_json *v,
                           size_t max)
{
    size_t at = b->len;
    fl_json_write(b, v);
    if (b->len - at > max) {
        b->len = at + utf8_prefix_len(b->data + at, b->len - at, max);
        fl_buf_adds(b, "...");
    }
}

/* Appends the JSON value at key as HTML text, or "-" when absent. */
static void add_html_field(struct fl_buf *b, const struct fl_json *o,
                           const char *key)
{
    const struct fl_json *v = o ? fl_json_get(o, key) : NULL;
    struct fl_buf t;

    if (v == NULL) {
        fl_buf_adds(b, "-");
        return;
    }
    if (v->kind == FL_JSON_STRING) {
        add_html(b, v->u.s.ptr, v->u.s.len);
        return;
    }
    /* results.json writes doubles such as 15.114000000000001. */
    if (v->kind == FL_JSON_DOUBLE) {
        fl_buf_printf(b, "%.10g", v->u.d);
        return;
    }
    fl_buf_init(&t);
    add_value_text(&t, v, 400);
    add_html(b, t.data, t.len);
    fl_buf_free(&t);
}

static int read_whole(const char *path, char **out, size_t *len)
{
    FILE *in = fopen(path, "rb");
    struct fl_buf b;
    char chunk[65536];
    size_t n;
    int rc = 0;

    if (in == NULL)
        return -errno;
    fl_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
        fl_buf_add(&b, chunk, n);
    if (ferror(in))
        rc = -EIO;
    else if (b.failed)
        rc = -ENOMEM;
    fclose(in);
    if (rc != 0) {
        fl_buf_free(&b);
        return rc;
    }
    *out = b.data;
    *len = b.len;
    return 0;
}

/*
 * Parses the JSON file dir/name into r's arena. The text is kept in *text
 * because parsed strings may point into it. err names the file.
 */
static int load_json(struct report *r, const char *name, struct fl_json *out,
                     char **text, char *err, size_t err_size)
{
    char path[4096];
    size_t len = 0;
    const char *why = NULL;
    size_t where = 0;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", r->dir, name);
    rc = read_whole(path, text, &len);
    if (rc != 0) {
        snprintf(err, err_size, "%s: %s", path, fl_strerror(rc));
        return rc;
    }
    rc = fl_json_parse(&r->arena, *text ? *text : "", len, out, &why, &where);
    if (rc == FL_EINPUT)
        snprintf(err, err_size, "%s: invalid JSON at byte %zu: %s", path, where,
                 why);
    else if (rc != 0)
        snprintf(err, err_size, "%s: %s", path, fl_strerror(rc));
    else if (out->kind != FL_JSON_OBJECT) {
        snprintf(err, err_size, "%s: expected a JSON object", path);
        rc = FL_EINPUT;
    }
    return rc;
}

/* ---- reading the history and the fault log ----------------------------- */

static int intern_value(struct report *r, const struct fl_json *v,
                        struct fl_buf *scratch, int64_t *id)
{
    fl_buf_clear(scratch);
    add_value_text(scratch, v, VALUE_TEXT_MAX);
    if (scratch->failed)
        return -ENOMEM;
    *id = fl_strtab_intern(&r->values, scratch->data, scratch->len);
    return *id < 0 ? (int)*id : 0;
}

static int add_invocation(struct report *r, const struct fl_hist_event *ev,
                          struct fl_map64 *open, struct fl_buf *scratch)
{
    struct op *op;
    uint64_t *slot;
    int inserted;
    int64_t f;
    int rc;

    rc = fl_vec_reserve((void **)&r->ops, &r->ops_cap, r->n_ops + 1,
                        sizeof(*r->ops), NULL);
    if (rc != 0)
        return rc;
    op = &r->ops[r->n_ops];
    memset(op, 0, sizeof(*op));
    op->start = ev->time;
    op->end = -1;
    op->info_at = -1;
    op->process = ev->process;
    op->invoke_line = ev->line;
    op->type = OP_OPEN;
    op->key = -1;
    op->value = -1;
    f = fl_strtab_intern(&r->names, ev->f.ptr, ev->f.len);
    if (f < 0)
        return (int)f;
    op->f = (uint32_t)f;
    if (ev->key.ptr != NULL) {
        op->key = fl_strtab_intern(&r->names, ev->key.ptr, ev->key.len);
        if (op->key < 0)
            return (int)op->key;
    }
    if (ev->has_value && ev->value.kind != FL_JSON_NULL) {
        rc = intern_value(r, &ev->value, scratch, &op->value);
        if (rc != 0)
            return rc;
    }
    slot = fl_map64_put(open, (uint64_t)ev->process, &inserted);
    if (slot == NULL)
        return -ENOMEM;
    *slot = r->n_ops;
    r->n_ops++;
    return 0;
}

static int add_completion(struct report *r, const struct fl_hist_event *ev,
                          struct fl_map64 *open, struct fl_buf *scratch)
{
    uint64_t *slot = fl_map64_get(open, (uint64_t)ev->process);
    struct op *op;
    int64_t out;
    int rc;

    /* The reader guarantees an open invocation; stay safe regardless. */
    if (slot == NULL || *slot >= r->n_ops)
        return 0;
    op = &r->ops[*slot];
    op->type = ev->type == FL_HIST_OK     ? OP_OK
               : ev->type == FL_HIST_FAIL ? OP_FAIL
                                          : OP_INFO;
    if (op->type != OP_INFO)
        op->end = ev->time;
    else
        op->info_at = ev->time;
    /* A read's result comes with its completion: show it after an arrow. */
    if (ev->has_value && ev->value.kind != FL_JSON_NULL) {
        rc = intern_value(r, &ev->value, scratch, &out);
        if (rc != 0)
            return rc;
        if (op->value < 0) {
            struct fl_str o = fl_strtab_get(&r->values, (uint32_t)out);
            fl_buf_clear(scratch);
            fl_buf_adds(scratch, "\u2192 ");
            fl_buf_add(scratch, o.ptr, o.len);
            op->value =
                fl_strtab_intern(&r->values, scratch->data, scratch->len);
            if (op->value < 0)
                return (int)op->value;
        }
    }
    *slot = UINT64_MAX;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Gives each process a lane of its own, in ascending process order. */
static int assign_process_lanes(struct report *r)
{
    struct fl_map64 seen;
    int inserted;
    size_t cap = 0;
    int rc = 0;

    r->n_lanes = 0;
    r->lanes_are_threads = false;
    fl_map64_init(&seen, NULL);
    for (size_t i = 0; i < r->n_ops; i++) {
        uint64_t *slot =
            fl_map64_put(&seen, (uint64_t)r->ops[i].process, &inserted);
        if (slot == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        if (!inserted)
            continue;
        rc = fl_vec_reserve((void **)&r->lanes, &cap, r->n_lanes + 1,
                            sizeof(*r->lanes), NULL);
        if (rc != 0)
            goto out;
        r->lanes[r->n_lanes++] = r->ops[i].process;
    }
    if (r->n_lanes > 1)
        qsort(r->lanes, r->n_lanes, sizeof(*r->lanes), cmp_i64);
    for (size_t i = 0; i < r->n_lanes; i++)
        *fl_map64_put(&seen, (uint64_t)r->lanes[i], &inserted) = i;
    for (size_t i = 0; i < r->n_ops; i++)
        r->ops[i].lane =
            (uint32_t)*fl_map64_get(&seen, (uint64_t)r->ops[i].process);
out:
    fl_map64_destroy(&seen);
    return rc;
}

/* Returns when the client that ran op could start its next operation. */
static int64_t busy_until(const struct op *op)
{
    if (op->end >= 0)
        return op->end;
    if (op->info_at >= 0)
        return op->info_at;
    return INT64_MAX;
}

struct process_span {
    int64_t process;
    int64_t first_start; /* invocation of its first operation */
    int64_t last_busy;   /* busy_until of its last operation */
};

static int cmp_spans(const void *a, const void *b)
{
    const struct process_span *x = a, *y = b;
    return (x->process > y->process) - (x->process < y->process);
}

/*
 * Sets *base to the lowest process P such that every process from P up
 * invokes its first operation after every process below P finished its
 * last one, or INT64_MAX when there is none. The final reads start after
 * the workload stopped, with processes above every workload process, so
 * they are among the processes from *base up.
 */
static int find_final_base(const struct report *r, int64_t *base)
{
    struct process_span *spans = NULL;
    int64_t *later_start = NULL;
    struct fl_map64 index;
    size_t n = 0, cap = 0;
    int64_t busy = INT64_MIN;
    int inserted;
    int rc = 0;

    *base = INT64_MAX;
    fl_map64_init(&index, NULL);
    for (size_t i = 0; i < r->n_ops; i++) {
        const struct op *op = &r->ops[i];
        uint64_t *slot = fl_map64_put(&index, (uint64_t)op->process, &inserted);
        if (slot == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        if (inserted) {
            rc = fl_vec_reserve((void **)&spans, &cap, n + 1, sizeof(*spans),
                                NULL);
            if (rc != 0)
                goto out;
            spans[n] = (struct process_span){op->process, op->start, 0};
            *slot = n++;
        }
        spans[*slot].last_busy = busy_until(op);
    }
    if (n < 2)
        goto out;
    qsort(spans, n, sizeof(*spans), cmp_spans);
    /* later_start[i] is the earliest first invocation of spans i..n-1. */
    later_start = malloc(n * sizeof(*later_start));
    if (later_start == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    later_start[n - 1] = spans[n - 1].first_start;
    for (size_t i = n - 1; i-- > 0;)
        later_start[i] = spans[i].first_start < later_start[i + 1]
                             ? spans[i].first_start
                             : later_start[i + 1];
    for (size_t i = 1; i < n; i++) {
        if (spans[i - 1].last_busy > busy)
            busy = spans[i - 1].last_busy;
        if (later_start[i] >= busy) {
            *base = spans[i].process;
            break;
        }
    }
out:
    free(later_start);
    free(spans);
    fl_map64_destroy(&index);
    return rc;
}

/* Appends a lane for thread to r->lanes; returns its index or -ENOMEM. */
static long add_lane(struct report *r, size_t *cap, int64_t thread)
{
    if (fl_vec_reserve((void **)&r->lanes, cap, r->n_lanes + 1,
                       sizeof(*r->lanes), NULL) != 0)
        return -ENOMEM;
    r->lanes[r->n_lanes] = thread;
    return (long)r->n_lanes++;
}

/*
 * Puts process p in lane p mod concurrency, its client thread: a client of
 * the register workload runs one operation at a time and, after an info,
 * goes on as process p + concurrency. A final read whose thread's lane is
 * busy takes the first free lane, or a new lane of final reads. Returns 1
 * when every operation fits, 0 when two operations of one lane would
 * overlap (the history does not follow that pattern), or a negative error.
 */
static int assign_thread_lanes(struct report *r, int64_t concurrency)
{
    struct fl_map64 lane_of; /* process to lane */
    int64_t *busy = NULL;    /* per lane, as busy_until */
    size_t busy_cap = 0, lanes_cap = 0;
    int64_t final_base;
    int inserted;
    int rc;

    rc = find_final_base(r, &final_base);
    if (rc != 0)
        return rc;
    r->n_lanes = 0;
    r->lanes_are_threads = true;
    fl_map64_init(&lane_of, NULL);
    rc = fl_vec_reserve((void **)&busy, &busy_cap, (size_t)concurrency,
                        sizeof(*busy), NULL);
    for (int64_t t = 0; rc == 0 && t < concurrency; t++) {
        busy[t] = INT64_MIN;
        if (add_lane(r, &lanes_cap, t) < 0)
            rc = -ENOMEM;
    }
    rc = rc != 0 ? rc : 1;
    for (size_t i = 0; i < r->n_ops && rc == 1; i++) {
        struct op *op = &r->ops[i];
        uint64_t *slot;
        long lane;

        if (op->process < 0) {
            rc = 0;
            break;
        }
        slot = fl_map64_put(&lane_of, (uint64_t)op->process, &inserted);
        if (slot == NULL) {
            rc = -ENOMEM;
            break;
        }
        lane = inserted ? op->process % concurrency : (long)*slot;
        if (busy[lane] > op->start) {
            if (!inserted || op->process < final_base) {
                rc = 0;
                break;
            }
            for (lane = 0; (size_t)lane < r->n_lanes; lane++)
                if (busy[lane] <= op->start)
                    break;
            if ((size_t)lane == r->n_lanes) {
                lane = add_lane(r, &lanes_cap, -1);
                if (lane < 0 ||
                    fl_vec_reserve((void **)&busy, &busy_cap, r->n_lanes,
                                   sizeof(*busy), NULL) != 0) {
                    rc = -ENOMEM;
                    break;
                }
            }
        }
        *slot = (uint64_t)lane;
        busy[lane] = busy_until(op);
        op->lane = (uint32_t)lane;
    }
    free(busy);
    fl_map64_destroy(&lane_of);
    return rc;
}

/* Drops the lanes that hold no operation and renumbers the rest. */
static int drop_empty_lanes(struct report *r)
{
    uint32_t *renumber = calloc(r->n_lanes ? r->n_lanes : 1, sizeof(*renumber));
    size_t kept = 0;

    if (renumber == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_ops; i++)
        renumber[r->ops[i].lane] = 1;
    for (size_t l = 0; l < r->n_lanes; l++) {
        if (renumber[l] == 0)
            continue;
        r->lanes[kept] = r->lanes[l];
        renumber[l] = (uint32_t)kept++;
    }
    for (size_t i = 0; i < r->n_ops; i++)
        r->ops[i].lane = renumber[r->ops[i].lane];
    r->n_lanes = kept;
    free(renumber);
    return 0;
}

/*
 * Sets each operation's lane: one lane per client thread when campaign.json
 * gives workload.concurrency and the history fits it, else one per process.
 */
static int assign_lanes(struct report *r)
{
    const struct fl_json *workload = fl_json_get(&r->campaign, "workload");
    double concurrency = 0;
    int rc;

    if (workload != NULL && json_num(workload, "concurrency", &concurrency) &&
        concurrency >= 1 && concurrency <= 65536) {
        rc = assign_thread_lanes(r, (int64_t)concurrency);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return drop_empty_lanes(r);
    }
    return assign_process_lanes(r);
}

/*
 * Reads history.jsonl. A missing or malformed history is not an error: the
 * operations read so far are kept and history_note describes the problem.
 */
static int read_history(struct report *r)
{
    struct fl_hist_reader *reader = NULL;
    struct fl_hist_event ev;
    struct fl_map64 open;
    struct fl_buf scratch;
    char path[4096];
    int rc;

    snprintf(path, sizeof(path), "%s/history.jsonl", r->dir);
    rc = fl_hist_reader_open(&reader, path, NULL);
    if (rc != 0) {
        snprintf(r->history_note, sizeof(r->history_note),
                 "%s: %s; the timeline and charts are empty", path,
                 fl_strerror(rc));
        return 0;
    }
    fl_map64_init(&open, NULL);
    fl_buf_init(&scratch);
    while ((rc = fl_hist_reader_next(reader, &ev)) == 1) {
        if (ev.time > r->end_ns)
            r->end_ns = ev.time;
        if (ev.type == FL_HIST_INVOKE)
            rc = add_invocation(r, &ev, &open, &scratch);
        else
            rc = add_completion(r, &ev, &open, &scratch);
        if (rc != 0)
            break;
    }
    if (rc < 0 && rc != -ENOMEM && rc != FL_EBUDGET) {
        snprintf(r->history_note, sizeof(r->history_note),
                 "%s; the report shows the operations before it",
                 fl_hist_reader_error(reader));
        rc = 0;
    }
    fl_buf_free(&scratch);
    fl_map64_destroy(&open);
    fl_hist_reader_close(reader);
    if (rc < 0)
        return rc;
    return assign_lanes(r);
}

/* Writes the fault kind and its targets, "kill n1,n2", into fa->label. */
static void fault_label(struct fault *fa, const struct fl_json *line)
{
    struct fl_str kind = json_str(line, "fault");
    const struct fl_json *targets = json_array(line, "targets");
    size_t used;

    if (kind.ptr == NULL)
        kind = fl_str_of("fault");
    if (kind.len > 40)
        kind.len = 40;
    used = (size_t)snprintf(fa->label, sizeof(fa->label), "%.*s", (int)kind.len,
                            kind.ptr);
    for (size_t i = 0; targets && i < targets->u.array.count; i++) {
        const struct fl_json *t = &targets->u.array.items[i];
        if (t->kind != FL_JSON_INT || used >= sizeof(fa->label) - 8)
            break;
        used += (size_t)snprintf(fa->label + used, sizeof(fa->label) - used,
                                 "%sn%" PRId64, i ? "," : " ", t->u.i);
    }
}

/* Reads nemesis.jsonl into fault periods; a missing file means no faults. */
static int read_nemesis(struct report *r)
{
    char path[4096];
    FILE *in;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long lineno = 0;
    struct fl_arena scratch;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/nemesis.jsonl", r->dir);
    in = fopen(path, "r");
    if (in == NULL) {
        if (errno != ENOENT)
            snprintf(r->nemesis_note, sizeof(r->nemesis_note), "%s: %s", path,
                     strerror(errno));
        return 0;
    }
    fl_arena_init(&scratch, 0, NULL);
    while ((len = getline(&line, &cap, in)) > 0) {
        struct fl_json o;
        const char *why;
        size_t where;
        double t;
        double id;
        struct fl_str action;

        lineno++;
        fl_arena_reset(&scratch);
        if (fl_json_parse(&scratch, line, (size_t)len, &o, &why, &where) != 0 ||
            o.kind != FL_JSON_OBJECT || !json_num(&o, "time", &t)) {
            snprintf(r->nemesis_note, sizeof(r->nemesis_note),
                     "%s:%lu: not a fault event; later lines are ignored", path,
                     lineno);
            break;
        }
        if (!json_num(&o, "id", &id))
            id = -1;
        action = json_str(&o, "action");
        if (t > (double)r->end_ns)
            r->end_ns = (int64_t)t;
        if (fl_str_eq(action, "start")) {
            struct fault *fa;
            rc = fl_vec_reserve((void **)&r->faults, &r->faults_cap,
                                r->n_faults + 1, sizeof(*r->faults), NULL);
            if (rc != 0)
                break;
            fa = &r->faults[r->n_faults++];
            fa->id = (int64_t)id;
            fa->start = (int64_t)t;
            fa->stop = -1;
            fault_label(fa, &o);
        } else if (fl_str_eq(action, "stop")) {
            for (size_t i = r->n_faults; i-- > 0;) {
                if (r->faults[i].id == (int64_t)id && r->faults[i].stop < 0) {
                    r->faults[i].stop = (int64_t)t;
                    break;
                }
            }
        }
    }
    free(line);
    fl_arena_destroy(&scratch);
    fclose(in);
    return rc;
}

/* Returns the operation invoked on history line `line`, or -1. */
static long find_op_by_line(const struct report *r, uint64_t line)
{
    size_t lo = 0, hi = r->n_ops;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->ops[mid].invoke_line < line)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < r->n_ops && r->ops[lo].invoke_line == line)
        return (long)lo;
    return -1;
}

static long find_op_of(const struct report *r, const struct fl_json *op)
{
    double line;
    if (!json_num(op, "invoke_line", &line) || line < 1)
        return -1;
    return find_op_by_line(r, (uint64_t)line);
}

/* ---- the anomalies ----------------------------------------------------- */

/* The counterexamples of results.json: checks.linearizability.anomalies. */
static const struct fl_json *lin_anomalies(const struct report *r)
{
    const struct fl_json *checks = fl_json_get(&r->results, "checks");
    const struct fl_json *lin = checks && checks->kind == FL_JSON_OBJECT
                                    ? fl_json_get(checks, "linearizability")
                                    : NULL;
    const struct fl_json *list = NULL;
    const struct fl_json *anomalies = json_array(&r->results, "anomalies");

    if (lin && lin->kind == FL_JSON_OBJECT)
        list = json_array(lin, "anomalies");
    if (list && list->u.array.count > 0)
        return list;
    /* Without checks.linearizability, take the checker's output from
     * anomalies[]. */
    for (size_t i = 0; anomalies && i < anomalies->u.array.count; i++) {
        const struct fl_json *a = &anomalies->u.array.items[i];
        const struct fl_json *detail = fl_json_get(a, "detail");
        if (a->kind == FL_JSON_OBJECT &&
            fl_str_eq(json_str(a, "checker"), "linearizability") && detail &&
            detail->kind == FL_JSON_OBJECT && json_array(detail, "anomalies"))
            return json_array(detail, "anomalies");
    }
    return list;
}

/* Appends "process P: f key value -> output (outcome)", with U+2192 as the
 * arrow. */
static void add_op_text(struct fl_buf *b, const struct fl_json *op,
                        struct fl_str key)
{
    double process = -1;
    struct fl_str f = json_str(op, "f");
    struct fl_str outcome = json_str(op, "outcome");
    const struct fl_json *value = fl_json_get(op, "value");
    const struct fl_json *output = fl_json_get(op, "output");

    json_num(op, "process", &process);
    fl_buf_printf(b, "process %.0f: %.*s", process, (int)f.len,
                  f.ptr ? f.ptr : "?");
    if (key.ptr != NULL) {
        fl_buf_addc(b, ' ');
        fl_buf_add(b, key.ptr, key.len);
    }
    if (value != NULL && value->kind != FL_JSON_NULL) {
        fl_buf_addc(b, ' ');
        add_value_text(b, value, VALUE_TEXT_MAX);
    }
    if (output != NULL) {
        fl_buf_adds(b, " \u2192 ");
        add_value_text(b, output, VALUE_TEXT_MAX);
    }
    if (outcome.ptr != NULL)
        fl_buf_printf(b, " (%.*s)", (int)outcome.len, outcome.ptr);
}

/* Sets focus_ns and focus_op from the first counterexample. */
static void find_focus(struct report *r)
{
    const struct fl_json *list = lin_anomalies(r);

    r->focus_op = -1;
    r->focus_ns = -1;
    if (list == NULL || list->u.array.count == 0)
        return;
    r->focus_op = find_op_of(r, fl_json_get(&list->u.array.items[0], "op"));
    if (r->focus_op >= 0)
        r->focus_ns = r->ops[r->focus_op].start;
}

/* ---- the page: head and summary ---------------------------------------- */

static const char page_css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1400px;"
    "padding:0 16px 40px;color:#222}\n"
    "h1{font-size:22px;margin:16px 0 8px}h2{font-size:18px;margin:28px 0 8px;"
    "border-bottom:1px solid #ddd}\n"
    "table.kv td{padding:2px 12px 2px 0;vertical-align:top}"
    "table.kv td:first-child{color:#666;white-space:nowrap}\n"
    "table.grid{border-collapse:collapse}table.grid td,table.grid th"
    "{border:1px solid #ddd;padding:2px 8px;text-align:left}\n"
    ".verdict{display:inline-block;padding:2px 10px;border-radius:4px;"
    "color:#fff;font-weight:600}\n"
    ".v-valid{background:#2e7d32}.v-invalid{background:#c62828}"
    ".v-unknown{background:#ef6c00}.v-other{background:#616161}\n"
    "code,pre{font:12px/1.35 ui-monospace,monospace}"
    "pre{background:#f6f6f6;padding:6px;overflow-x:auto;white-space:pre-wrap;"
    "word-break:break-all}\n"
    ".note{color:#8a5a00}.muted{color:#777}\n"
    ".controls button,.controls input{margin-right:4px}"
    ".controls input{width:90px}\n"
    "#tl-box{overflow-x:hidden;border:1px solid #ddd;margin-top:6px}\n"
    "#tl-info{min-height:2.8em;font:12px ui-monospace,monospace;"
    "white-space:pre-wrap;word-break:break-all;margin-top:4px}\n"
    "svg text{font:11px system-ui,sans-serif}\n"
    ".legend span{display:inline-block;width:12px;height:10px;"
    "margin:0 4px 0 12px}\n";

static const char *verdict_class(struct fl_str v)
{
    if (fl_str_eq(v, "valid"))
        return "v-valid";
    if (fl_str_eq(v, "invalid"))
        return "v-invalid";
    if (fl_str_eq(v, "unknown"))
        return "v-unknown";
    return "v-other";
}

static void add_verdict(struct fl_buf *b, struct fl_str v)
{
    fl_buf_printf(b, "<span class=\"verdict %s\">", verdict_class(v));
    if (v.ptr != NULL)
        add_html(b, v.ptr, v.len);
    else
        fl_buf_adds(b, "no verdict");
    fl_buf_adds(b, "</span>");
}

static void add_row(struct fl_buf *b, const char *name, const struct fl_json *o,
                    const char *key)
{
    fl_buf_printf(b, "<tr><td>%s</td><td>", name);
    add_html_field(b, o, key);
    fl_buf_adds(b, "</td></tr>\n");
}

/* Appends one line describing an anomaly of any checker. */
static void add_anomaly_line(struct fl_buf *b, const struct fl_json *a)
{
    struct fl_str checker = json_str(a, "checker");
    struct fl_str kind = json_str(a, "kind");
    const struct fl_json *detail = fl_json_get(a, "detail");
    struct fl_buf t;

    fl_buf_init(&t);
    fl_buf_adds(b, "<li><b>");
    add_html(b, checker.ptr ? checker.ptr : "?", checker.ptr ? checker.len : 1);
    fl_buf_adds(b, "</b> ");
    if (kind.ptr != NULL)
        add_html(b, kind.ptr, kind.len);
    fl_buf_adds(b, ": ");
    if (detail && detail->kind == FL_JSON_OBJECT &&
        json_array(detail, "anomalies")) {
        const struct fl_json *list = json_array(detail, "anomalies");
        for (size_t i = 0; i < list->u.array.count; i++) {
            const struct fl_json *k = &list->u.array.items[i];
            fl_buf_clear(&t);
            fl_buf_adds(&t, i ? "; key " : "key ");
            struct fl_str key = json_str(k, "key");
            fl_buf_add(&t, key.ptr ? key.ptr : "(none)", key.ptr ? key.len : 6);
            fl_buf_adds(&t, ": ");
            add_op_text(&t, fl_json_get(k, "op"), key);
            fl_buf_adds(&t, " cannot be linearized");
            add_html(b, t.data, t.len);
        }
    } else if (detail && detail->kind == FL_JSON_OBJECT &&
               (json_str(detail, "what").ptr || json_str(detail, "line").ptr)) {
        struct fl_str where = json_str(detail, "where");
        struct fl_str what = json_str(detail, "what");
        if (where.ptr != NULL) {
            add_html(b, where.ptr, where.len);
            fl_buf_adds(b, ": ");
        }
        if (what.ptr == NULL)
            what = json_str(detail, "line");
        fl_buf_adds(b, "<code>");
        add_html(b, what.ptr, what.len > 400 ? 400 : what.len);
        fl_buf_adds(b, "</code>");
    } else if (detail != NULL) {
        add_value_text(&t, detail, 400);
        fl_buf_adds(b, "<code>");
        add_html(b, t.data, t.len);
        fl_buf_adds(b, "</code>");
    }
    fl_buf_adds(b, "</li>\n");
    fl_buf_free(&t);
}

static void add_metrics(struct fl_buf *b, const struct fl_json *m)
{
    static const char *const names[][2] = {
        {"invocations", "invocations"},
        {"ok", "ok"},
        {"fail", "fail"},
        {"info", "info"},
        {"never_completed", "never completed"},
        {"faults", "faults"},
        {"final_reads", "final reads"},
        {"keys", "keys"},
        {"workload_s", "workload seconds"},
        {"seconds_in_faults", "seconds in faults"},
        {"ok_per_s_outside_faults", "ok/s outside faults"},
        {"ok_per_s_in_faults", "ok/s in faults"},
    };
    const struct fl_json *per_fault = json_array(m, "per_fault");

    fl_buf_adds(b, "<h2>Metrics</h2>\n<table class=\"kv\">\n");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        add_row(b, names[i][1], m, names[i][0]);
    fl_buf_adds(b, "</table>\n");
    if (per_fault == NULL || per_fault->u.array.count == 0)
        return;
    fl_buf_adds(b, "<p>Availability during each fault:</p>\n<table "
                   "class=\"grid\"><tr><th>fault</th><th>start s</th>"
                   "<th>stop s</th><th>ok/s</th></tr>\n");
    for (size_t i = 0; i < per_fault->u.array.count; i++) {
        const struct fl_json *p = &per_fault->u.array.items[i];
        fl_buf_adds(b, "<tr><td>");
        add_html_field(b, p, "fault");
        fl_buf_adds(b, "</td><td>");
        add_html_field(b, p, "start_s");
        fl_buf_adds(b, "</td><td>");
        add_html_field(b, p, "stop_s");
        fl_buf_adds(b, "</td><td>");
        add_html_field(b, p, "ok_per_s");
        fl_buf_adds(b, "</td></tr>\n");
    }
    fl_buf_adds(b, "</table>\n");
}

/* Returns the integer o[key], or -1 when it is missing. */
static int64_t json_count(const struct fl_json *o, const char *key)
{
    const struct fl_json *v = o ? fl_json_get(o, key) : NULL;

    return v && v->kind == FL_JSON_INT ? v->u.i : -1;
}

/* One summary row for the durability check: how many acknowledged writes
 * it checked, and how many were lost, since the anomalies list only the
 * first few. */
static void add_durability_row(struct fl_buf *b, const struct fl_json *res)
{
    const struct fl_json *checks = fl_json_get(res, "checks");
    const struct fl_json *d = checks ? fl_json_get(checks, "durability") : NULL;
    const struct fl_json *valid = d ? fl_json_get(d, "valid") : NULL;
    int64_t lost = json_count(d, "lost");
    int64_t unseen = json_count(d, "unseen");

    if (d == NULL || d->kind != FL_JSON_OBJECT)
        return;
    fl_buf_adds(b, "<tr><td>durability</td><td>");
    if (valid == NULL || valid->kind != FL_JSON_BOOL) {
        struct fl_str why = json_str(d, "skipped");
        if (why.ptr == NULL)
            why = json_str(d, "error");
        fl_buf_adds(b, "not checked");
        if (why.ptr != NULL) {
            fl_buf_adds(b, ": ");
            add_html(b, why.ptr, why.len);
        }
    } else {
        fl_buf_printf(
            b, "%" PRId64 " acknowledged writes, %" PRId64 " reads checked; ",
            json_count(d, "acknowledged_writes"), json_count(d, "reads"));
        if (lost + unseen <= 0)
            fl_buf_adds(b, "none missed");
        else
            fl_buf_printf(b, "<b>%" PRId64 " lost, %" PRId64 " unseen</b>",
                          lost, unseen);
        if (lost + unseen > 0 && json_count(d, "listed") >= 0)
            fl_buf_printf(b, " (results.json lists the first %" PRId64 ")",
                          json_count(d, "listed"));
    }
    fl_buf_adds(b, "</td></tr>\n");
}

static void add_summary(struct report *r)
{
    struct fl_buf *b = &r->page;
    const struct fl_json *res = &r->results;
    const struct fl_json *anomalies = json_array(res, "anomalies");
    const struct fl_json *notes = json_array(res, "notes");
    const struct fl_json *as_expected = fl_json_get(res, "as_expected");
    struct fl_str campaign = json_str(res, "campaign");
    struct fl_str description = json_str(&r->campaign, "description");

    fl_buf_adds(b, "<h1>");
    add_html(b, campaign.ptr ? campaign.ptr : "run",
             campaign.ptr ? campaign.len : 3);
    fl_buf_adds(b, ", seed ");
    add_html_field(b, res, "seed");
    fl_buf_adds(b, " ");
    add_verdict(b, json_str(res, "verdict"));
    fl_buf_adds(b, "</h1>\n");
    if (description.ptr != NULL) {
        fl_buf_adds(b, "<p>");
        add_html(b, description.ptr, description.len);
        fl_buf_adds(b, "</p>\n");
    }

    fl_buf_adds(b, "<h2>Summary</h2>\n<table class=\"kv\">\n");
    fl_buf_adds(b, "<tr><td>verdict</td><td>");
    add_verdict(b, json_str(res, "verdict"));
    fl_buf_adds(b, "</td></tr>\n<tr><td>expected</td><td>");
    add_html_field(b, res, "expected");
    if (as_expected && as_expected->kind == FL_JSON_BOOL)
        fl_buf_adds(b, as_expected->u.b ? " (as expected)"
                                        : " <b>(not as expected)</b>");
    fl_buf_adds(b, "</td></tr>\n");
    add_row(b, "exit code", res, "exit_code");
    add_row(b, "system", res, "system");
    add_row(b, "nodes", res, "nodes");
    add_row(b, "network", res, "network");
    add_row(b, "started (UTC)", res, "started");
    add_row(b, "elapsed seconds", res, "elapsed_s");
    add_row(b, "run id", res, "run_id");
    add_row(b, "interrupted", res, "interrupted");
    add_row(b, "store", res, "store");
    fl_buf_adds(b, "<tr><td>reproduce</td><td><code>");
    add_html_field(b, res, "repro");
    fl_buf_adds(b, "</code></td></tr>\n");
    if (fl_json_get(res, "infrastructure_error"))
        add_row(b, "infrastructure error", res, "infrastructure_error");
    if (fl_json_get(res, "history_error"))
        add_row(b, "history error", res, "history_error");
    add_durability_row(b, res);
    fl_buf_adds(b, "</table>\n");

    fl_buf_adds(b, "<h2>Notes</h2>\n<ul>\n");
    for (size_t i = 0; notes && i < notes->u.array.count; i++) {
        const struct fl_json *n = &notes->u.array.items[i];
        struct fl_buf t;
        fl_buf_init(&t);
        if (n->kind == FL_JSON_STRING)
            fl_buf_add(&t, n->u.s.ptr, n->u.s.len);
        else
            add_value_text(&t, n, 400);
        fl_buf_adds(b, "<li>");
        add_html(b, t.data ? t.data : "", t.len);
        fl_buf_adds(b, "</li>\n");
        fl_buf_free(&t);
    }
    if (notes == NULL || notes->u.array.count == 0)
        fl_buf_adds(b, "<li class=\"muted\">none</li>\n");
    if (r->history_note[0] != '\0') {
        fl_buf_adds(b, "<li class=\"note\">");
        add_htmls(b, r->history_note);
        fl_buf_adds(b, "</li>\n");
    }
    if (r->nemesis_note[0] != '\0') {
        fl_buf_adds(b, "<li class=\"note\">");
        add_htmls(b, r->nemesis_note);
        fl_buf_adds(b, "</li>\n");
    }
    fl_buf_adds(b, "</ul>\n");

    fl_buf_adds(b, "<h2>Anomalies</h2>\n<ul>\n");
    for (size_t i = 0; anomalies && i < anomalies->u.array.count; i++)
        add_anomaly_line(b, &anomalies->u.array.items[i]);
    if (anomalies == NULL || anomalies->u.array.count == 0)
        fl_buf_adds(b, "<li class=\"muted\">none</li>\n");
    fl_buf_adds(b, "</ul>\n");
}

static void add_metrics_section(struct report *r)
{
    const struct fl_json *metrics = fl_json_get(&r->results, "metrics");

    if (metrics != NULL && metrics->kind == FL_JSON_OBJECT)
        add_metrics(&r->page, metrics);
}

/* ---- static charts ------------------------------------------------------ */

#define CHART_W      1000.0
#define CHART_LEFT   64.0
#define CHART_RIGHT  12.0
#define CHART_TOP    22.0
#define CHART_BOTTOM 26.0

struct chart {
    double height;
    double end_s; /* the time axis runs from 0 to end_s */
    double plot_w;
    double plot_h;
};

static double chart_x(const struct chart *c, double t_s)
{
    return CHART_LEFT + t_s / c->end_s * c->plot_w;
}

/* Returns a step of 1, 2 or 5 times a power of ten giving at most n ticks. */
static double nice_step(double span, double n)
{
    double raw = span / n;
    double p;
    double m;

    if (!(raw > 0))
        return 1;
    p = pow(10, floor(log10(raw)));
    m = raw / p;
    if (m <= 1)
        return p;
    if (m <= 2)
        return 2 * p;
    if (m <= 5)
        return 5 * p;
    return 10 * p;
}

/* Opens an SVG chart with the time axis and the fault bands. */
static void chart_open(struct report *r, struct chart *c, double height,
                       const char *label)
{
    struct fl_buf *b = &r->page;
    double step;

    c->height = height;
    c->end_s = r->end_ns > 0 ? (double)r->end_ns / 1e9 : 1;
    c->plot_w = CHART_W - CHART_LEFT - CHART_RIGHT;
    c->plot_h = height - CHART_TOP - CHART_BOTTOM;
    fl_buf_printf(b,
                  "<svg viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" "
                  "role=\"img\" aria-label=\"%s\">\n",
                  CHART_W, height, label);
    for (size_t i = 0; i < r->n_faults; i++) {
        const struct fault *fa = &r->faults[i];
        double x0 = chart_x(c, (double)fa->start / 1e9);
        double x1 =
            chart_x(c, (double)(fa->stop >= 0 ? fa->stop : r->end_ns) / 1e9);
        fl_buf_printf(b,
                      "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" "
                      "height=\"%.0f\" fill=\"#ffe0b2\" "
                      "fill-opacity=\"0.6\"/><text x=\"%.1f\" y=\"%.0f\" "
                      "fill=\"#a65c00\">",
                      x0, CHART_TOP, x1 - x0 > 1 ? x1 - x0 : 1, c->plot_h,
                      x0 + 2, CHART_TOP - 6);
        add_htmls(b, fa->label);
        fl_buf_adds(b, "</text>\n");
    }
    step = nice_step(c->end_s, 10);
    for (double t = 0; t <= c->end_s + step / 1000; t += step)
        fl_buf_printf(b,
                      "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" "
                      "stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.0f\" "
                      "text-anchor=\"middle\" fill=\"#555\">%g s</text>\n",
                      chart_x(c, t), chart_x(c, t), CHART_TOP,
                      CHART_TOP + c->plot_h, chart_x(c, t), height - 8, t);
    fl_buf_printf(b,
                  "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
                  "fill=\"none\" stroke=\"#999\"/>\n",
                  CHART_LEFT, CHART_TOP, c->plot_w, c->plot_h);
}

struct latency {
    uint32_t bucket;
    double ms;
};

static int cmp_latency(const void *a, const void *b)
{
    const struct latency *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return (x->ms > y->ms) - (x->ms < y->ms);
}

/* Appends one path through the per-bucket values, broken at empty buckets. */
static void add_bucket_line(struct fl_buf *b, const struct chart *c,
                            const double *y, size_t n, double bucket_s,
                            const char *colour)
{
    bool pen = false;

    fl_buf_printf(b,
                  "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
                  "d=\"",
                  colour);
    for (size_t i = 0; i < n; i++) {
        if (isnan(y[i])) {
            pen = false;
            continue;
        }
        fl_buf_printf(b, "%c%.1f %.1f", pen ? 'L' : 'M',
                      chart_x(c, ((double)i + 0.5) * bucket_s), y[i]);
        pen = true;
    }
    fl_buf_adds(b, "\"/>\n");
}

/*
 * Latency of every completed operation against its invocation time on a
 * log scale, thinned to LAT_POINTS_MAX points, with p50 and p99 per bucket
 * computed from all operations.
 */
static int add_latency_chart(struct report *r)
{
    struct fl_buf *b = &r->page;
    struct latency *lat;
    size_t n = 0;
    double lo = INFINITY, hi = 0;
    double bucket_s;
    double p50[LAT_BUCKETS], p99[LAT_BUCKETS];
    struct chart c;
    size_t stride;

    fl_buf_adds(b, "<h2>Latency</h2>\n");
    lat = malloc((r->n_ops ? r->n_ops : 1) * sizeof(*lat));
    if (lat == NULL)
        return -ENOMEM;
    chart_open(r, &c, 300, "latency over time");
    bucket_s = c.end_s / LAT_BUCKETS;
    for (size_t i = 0; i < r->n_ops; i++) {
        const struct op *op = &r->ops[i];
        double t, ms;
        if (op->end < 0)
            continue;
        t = (double)op->start / 1e9;
        ms = (double)(op->end - op->start) / 1e6;
        if (ms < 0.001)
            ms = 0.001;
        lat[n].bucket = (uint32_t)fmin(t / bucket_s, LAT_BUCKETS - 1);
        lat[n].ms = ms;
        n++;
        lo = fmin(lo, ms);
        hi = fmax(hi, ms);
    }
    if (n == 0) {
        fl_buf_adds(b, "</svg>\n<p class=\"muted\">No completed "
                       "operations.</p>\n");
        free(lat);
        return 0;
    }

    /* A log axis over whole decades that contain every latency. */
    double dlo = floor(log10(lo)), dhi = ceil(log10(hi));
    if (dhi <= dlo)
        dhi = dlo + 1;
#define LAT_Y(ms)                                                              \
    (CHART_TOP + c.plot_h - (log10(ms) - dlo) / (dhi - dlo) * c.plot_h)
    for (double d = dlo; d <= dhi; d++)
        fl_buf_printf(b,
                      "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" "
                      "stroke=\"#eee\"/><text x=\"%.0f\" y=\"%.1f\" "
                      "text-anchor=\"end\" fill=\"#555\">%g ms</text>\n",
                      CHART_LEFT, CHART_LEFT + c.plot_w, LAT_Y(pow(10, d)),
                      LAT_Y(pow(10, d)), CHART_LEFT - 4, LAT_Y(pow(10, d)) + 4,
                      pow(10, d));

    /* Points as zero-length round-capped segments: one path per outcome. */
    stride = (n + LAT_POINTS_MAX - 1) / LAT_POINTS_MAX;
    for (int pass = 0; pass < 2; pass++) {
        enum op_type want = pass == 0 ? OP_OK : OP_FAIL;
        size_t seen = 0;
        fl_buf_printf(b,
                      "<path stroke=\"%s\" stroke-opacity=\"0.5\" "
                      "stroke-width=\"3\" stroke-linecap=\"round\" d=\"",
                      pass == 0 ? "#43a047" : "#e53935");
        for (size_t i = 0; i < r->n_ops; i++) {
            const struct op *op = &r->ops[i];
            if (op->end < 0)
                continue;
            if (seen++ % stride != 0 || op->type != want)
                continue;
            double ms = fmax((double)(op->end - op->start) / 1e6, 0.001);
            fl_buf_printf(b, "M%.1f %.1fh0",
                          chart_x(&c, (double)op->start / 1e9), LAT_Y(ms));
        }
        fl_buf_adds(b, "\"/>\n");
    }

    qsort(lat, n, sizeof(*lat), cmp_latency);
    for (size_t i = 0; i < LAT_BUCKETS; i++)
        p50[i] = p99[i] = NAN;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && lat[j].bucket == lat[i].bucket)
            j++;
        p50[lat[i].bucket] = LAT_Y(lat[i + (j - i - 1) / 2].ms);
        p99[lat[i].bucket] =
            LAT_Y(lat[i + (size_t)((double)(j - i - 1) * 0.99)].ms);
        i = j;
    }
#undef LAT_Y
    add_bucket_line(b, &c, p50, LAT_BUCKETS, bucket_s, "#1565c0");
    add_bucket_line(b, &c, p99, LAT_BUCKETS, bucket_s, "#6a1b9a");
    fl_buf_adds(b, "</svg>\n");
    fl_buf_printf(b,
                  "<p class=\"legend\"><span style=\"background:#43a047\">"
                  "</span>ok <span style=\"background:#e53935\"></span>fail "
                  "<span style=\"background:#1565c0\"></span>p50 "
                  "<span style=\"background:#6a1b9a\"></span>p99 per %.3g s "
                  "<span style=\"background:#ffe0b2\"></span>fault. "
                  "Each point is an operation at its invocation time",
                  bucket_s);
    if (stride > 1)
        fl_buf_printf(b,
                      "; every %zu-th of %zu operations is drawn, the "
                      "percentiles use all of them",
                      stride, n);
    fl_buf_adds(b, ".</p>\n");
    free(lat);
    return 0;
}

/* ok completions per second, in buckets of a round width. */
static int add_throughput_chart(struct report *r)
{
    struct fl_buf *b = &r->page;
    struct chart c;
    double width_s, max = 0, step;
    size_t n;
    double *rate;

    fl_buf_adds(b, "<h2>Throughput</h2>\n");
    chart_open(r, &c, 220, "ok operations per second over time");
    width_s = fmax(nice_step(c.end_s, 120), 0.1);
    n = (size_t)ceil(c.end_s / width_s);
    if (n == 0)
        n = 1;
    rate = calloc(n, sizeof(*rate));
    if (rate == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_ops; i++) {
        const struct op *op = &r->ops[i];
        if (op->type != OP_OK)
            continue;
        size_t k = (size_t)((double)op->end / 1e9 / width_s);
        rate[k < n ? k : n - 1] += 1;
    }
    /* Counts to rates; the last bucket may be shorter than the others. */
    for (size_t i = 0; i < n; i++)
        rate[i] /=
            fmax(fmin((double)(i + 1) * width_s, c.end_s) - (double)i * width_s,
                 width_s / 10);
    for (size_t i = 0; i < n; i++)
        max = fmax(max, rate[i]);
    if (max <= 0)
        max = 1;
    step = nice_step(max, 4);
    max = ceil(max / step) * step;
#define TP_Y(v) (CHART_TOP + c.plot_h - (v) / max * c.plot_h)
    for (double v = 0; v <= max + step / 1000; v += step)
        fl_buf_printf(b,
                      "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" "
                      "stroke=\"#eee\"/><text x=\"%.0f\" y=\"%.1f\" "
                      "text-anchor=\"end\" fill=\"#555\">%g</text>\n",
                      CHART_LEFT, CHART_LEFT + c.plot_w, TP_Y(v), TP_Y(v),
                      CHART_LEFT - 4, TP_Y(v) + 4, v);
    fl_buf_printf(b,
                  "<path fill=\"none\" stroke=\"#43a047\" stroke-width=\"1.5\""
                  " d=\"M%.1f %.1f",
                  chart_x(&c, 0), TP_Y(rate[0]));
    for (size_t i = 0; i < n; i++) {
        double t1 = fmin((double)(i + 1) * width_s, c.end_s);
        fl_buf_printf(b, "V%.1fH%.1f", TP_Y(rate[i]), chart_x(&c, t1));
    }
#undef TP_Y
    fl_buf_adds(b, "\"/>\n</svg>\n");
    fl_buf_printf(b,
                  "<p class=\"muted\">ok operations per second, counted at "
                  "completion in buckets of %g s.</p>\n",
                  width_s);
    free(rate);
    return 0;
}

/* ---- the interactive timeline ------------------------------------------ */

/*
 * Draws the window [t0, t1] of FL_RUN into #tl. Times are microseconds
 * since the run start. FL_RUN.lanes contains each lane's label. FL_RUN.ops
 * contains 8 numbers per operation, in invocation order: lane, start, duration
 * (to the info for an info, -1 without a completion), type (0 ok, 1 fail,
 * 2 info, 3 no completion), f and key (indices into names, key -1 when
 * absent), value (index into vals, or -1) and process. FL_RUN.keep lists the
 * operations drawn in every window that holds them: the failed operation and
 * those concurrent with it. A window of more than MAXBARS operations draws
 * every (total / MAXBARS)-th of them in invocation order, plus those.
 */
static const char *const timeline_js[] = {
    "(function () {\n",
    "  'use strict';\n",
    "  var D = window.FL_RUN;\n",
    "  var box = document.getElementById('tl-box');\n",
    "  var svg = document.getElementById('tl');\n",
    "  var info = document.getElementById('tl-info');\n",
    "  var status = document.getElementById('tl-status');\n",
    "  var startInput = document.getElementById('tl-start');\n",
    "  var widthInput = document.getElementById('tl-width');\n",
    "  var NS = svg.namespaceURI;\n",
    "  var ops = D.ops, W = 8, n = Math.floor(ops.length / W);\n",
    "  var LANE = 14, TOP = 34, LEFT = 56, MAXBARS = 6000;\n",
    "  for (var l = 0; l < D.lanes.length; l++)\n",
    "    LEFT = Math.max(LEFT, 12 + 6.5 * D.lanes[l].length);\n",
    "  var COLOUR = ['#43a047', '#e53935', '#fb8c00', '#fb8c00'];\n",
    "  var TYPES = ['ok', 'fail', 'info', 'no completion'];\n",
    "  var t0 = D.win[0], t1 = D.win[1], pinned = -1;\n",
    "  var keep = new Uint8Array(n);\n",
    "  for (var j = 0; j < D.keep.length; j++) keep[D.keep[j]] = 1;\n",
    "  function el(name, attrs) {\n",
    "    var e = document.createElementNS(NS, name);\n",
    "    for (var k in attrs) e.setAttribute(k, attrs[k]);\n",
    "    svg.appendChild(e);\n",
    "    return e;\n",
    "  }\n",
    "  function ms(us) { return (us / 1000).toFixed(3) + ' ms'; }\n",
    "  function opEnd(i) {\n",
    "    var d = ops[i * W + 2];\n",
    "    return d < 0 ? D.end : ops[i * W + 1] + d;\n",
    "  }\n",
    "  function describe(i) {\n",
    "    var k = i * W, s = ops[k + 1], d = ops[k + 2];\n",
    "    var t = 'process ' + ops[k + 7] + ' (' + D.lanes[ops[k]] + ')  ' +\n",
    "      D.names[ops[k + 4]];\n",
    "    if (ops[k + 5] >= 0) t += ' ' + D.names[ops[k + 5]];\n",
    "    if (ops[k + 6] >= 0) t += ' ' + D.vals[ops[k + 6]];\n",
    "    t += '  ' + TYPES[ops[k + 3]] + '\\ninvoked at ' + ms(s);\n",
    "    if (d < 0) t += ', no completion';\n",
    "    else if (ops[k + 3] === 2)\n",
    "      t += ', info at ' + ms(s + d) + '; may have taken effect any ' +\n",
    "        'time after its invocation';\n",
    "    else t += ', completed at ' + ms(s + d) + ', latency ' + ms(d);\n",
    "    if (i === D.focus) t += '\\nthis operation cannot be linearized';\n",
    "    return t;\n",
    "  }\n",
    "  function niceStep(span, count) {\n",
    "    var raw = span / count;\n",
    "    var p = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));\n",
    "    var m = raw / p;\n",
    "    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;\n",
    "  }\n",
    "  function draw() {\n",
    "    var width = Math.max(box.clientWidth || 1000, 400);\n",
    "    var height = TOP + Math.max(D.lanes.length, 1) * LANE + 4;\n",
    "    var span = Math.max(t1 - t0, 1), pw = width - LEFT - 8;\n",
    "    function X(t) { return LEFT + (t - t0) / span * pw; }\n",
    "    while (svg.firstChild) svg.removeChild(svg.firstChild);\n",
    "    svg.setAttribute('width', width);\n",
    "    svg.setAttribute('height', height);\n",
    "    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);\n",
    "    for (var f = 0; f < D.faults.length; f++) {\n",
    "      var fa = D.faults[f], fs = fa[0], fe = fa[1] < 0 ? D.end : ",
    "fa[1];\n",
    "      if (fe < t0 || fs > t1) continue;\n",
    "      var x0 = X(Math.max(fs, t0)), x1 = X(Math.min(fe, t1));\n",
    "      el('rect', {x: x0, y: 14, width: Math.max(x1 - x0, 1),\n",
    "                  height: height - 14, fill: '#ffe0b2',\n",
    "                  'fill-opacity': 0.6});\n",
    "      el('text', {x: x0 + 2, y: 27, fill: '#a65c00'}).textContent = ",
    "fa[2];\n",
    "    }\n",
    "    var step = niceStep(span, 8);\n",
    "    var digits = step >= 1e6 ? 0 : step >= 1e5 ? 1 : step >= 1e4 ? 2 ",
    ": step >= 1e3 ? 3 : 6;\n",
    "    for (var t = Math.ceil(t0 / step) * step; t <= t1; t += step) {\n",
    "      el('line', {x1: X(t), x2: X(t), y1: 12, y2: height, stroke: ",
    "'#e6e6e6'});\n",
    "      el('text', {x: X(t) + 2, y: 10, fill: '#555'}).textContent =\n",
    "        (t / 1e6).toFixed(digits) + ' s';\n",
    "    }\n",
    "    for (var l = 0; l < D.lanes.length; l++)\n",
    "      el('text', {x: 2, y: TOP + l * LANE + 10, fill: '#333'})",
    ".textContent =\n",
    "        D.lanes[l];\n",
    /* Counts the window's operations, then draws at most MAXBARS of them
     * spread evenly in invocation order, and the kept ones. */
    "    var total = 0, last = n;\n",
    "    for (var i = 0; i < n; i++) {\n",
    "      if (ops[i * W + 1] > t1) { last = i; break; }\n",
    "      if (opEnd(i) >= t0) total++;\n",
    "    }\n",
    "    var shown = 0, seen = 0;\n",
    "    for (var i = 0; i < last; i++) {\n",
    "      var k = i * W, s = ops[k + 1];\n",
    "      var e = opEnd(i);\n",
    "      if (e < t0) continue;\n",
    "      var pick = total <= MAXBARS ||\n",
    "        Math.floor((seen + 1) * MAXBARS / total) >\n",
    "        Math.floor(seen * MAXBARS / total);\n",
    "      seen++;\n",
    "      if (!pick && !keep[i] && i !== pinned) continue;\n",
    "      shown++;\n",
    "      var a = X(Math.max(s, t0)), z = X(Math.min(e, t1));\n",
    "      var r = el('rect', {x: a, y: TOP + ops[k] * LANE + 1,\n",
    "                          width: Math.max(z - a, 1.5), height: LANE - "
    "3,\n",
    "                          fill: COLOUR[ops[k + 3]], 'data-i': i});\n",
    "      if (i === D.focus || i === pinned) {\n",
    "        r.setAttribute('stroke', i === pinned ? '#1565c0' : '#000');\n",
    "        r.setAttribute('stroke-width', 2);\n",
    "      }\n",
    "    }\n",
    "    status.textContent = 'window ' + (t0 / 1e6).toFixed(3) + ' s to ' +\n",
    "      (t1 / 1e6).toFixed(3) + ' s: ' + (shown < total ?\n",
    "      shown + ' of ' + total + ' operations drawn, spread evenly' +\n",
    "      (D.keep.length ? ', with the failed operation and those ' +\n",
    "      'concurrent with it' : '') + ' (zoom in to see all)' :\n",
    "      total + ' operations');\n",
    "  }\n",
    "  function setWindow(a, b) {\n",
    "    var limit = Math.max(D.end, 1), w = Math.max(b - a, 10);\n",
    "    if (w > limit) { a = 0; w = limit; }\n",
    "    if (a + w > limit) a = limit - w;\n",
    "    if (a < 0) a = 0;\n",
    "    t0 = a;\n",
    "    t1 = a + w;\n",
    "    startInput.value = (t0 / 1e6).toFixed(3);\n",
    "    widthInput.value = (w / 1e6).toFixed(3);\n",
    "    draw();\n",
    "  }\n",
    "  function on(id, fn) {\n",
    "    document.getElementById(id).addEventListener('click', fn);\n",
    "  }\n",
    "  on('tl-earlier', function () {\n",
    "    var w = t1 - t0;\n",
    "    setWindow(t0 - w / 2, t1 - w / 2);\n",
    "  });\n",
    "  on('tl-later', function () {\n",
    "    var w = t1 - t0;\n",
    "    setWindow(t0 + w / 2, t1 + w / 2);\n",
    "  });\n",
    "  on('tl-in', function () {\n",
    "    var c = (t0 + t1) / 2, h = (t1 - t0) / 4;\n",
    "    setWindow(c - h, c + h);\n",
    "  });\n",
    "  on('tl-out', function () {\n",
    "    var c = (t0 + t1) / 2, h = t1 - t0;\n",
    "    setWindow(c - h, c + h);\n",
    "  });\n",
    "  on('tl-all', function () { setWindow(0, D.end); });\n",
    "  on('tl-home', function () { setWindow(D.win[0], D.win[1]); });\n",
    "  on('tl-go', function () {\n",
    "    var a = parseFloat(startInput.value) * 1e6;\n",
    "    var w = parseFloat(widthInput.value) * 1e6;\n",
    "    if (isFinite(a) && isFinite(w) && w > 0) setWindow(a, a + w);\n",
    "  });\n",
    "  svg.addEventListener('mousemove', function (ev) {\n",
    "    var i = ev.target.getAttribute('data-i');\n",
    "    if (i !== null) info.textContent = describe(+i);\n",
    "    else if (pinned >= 0) info.textContent = describe(pinned);\n",
    "  });\n",
    "  svg.addEventListener('click', function (ev) {\n",
    "    var i = ev.target.getAttribute('data-i');\n",
    "    pinned = i === null ? -1 : +i;\n",
    "    info.textContent = pinned >= 0 ? describe(pinned) : '';\n",
    "    draw();\n",
    "  });\n",
    "  window.addEventListener('resize', draw);\n",
    "  setWindow(t0, t1);\n",
    "  if (D.focus >= 0) info.textContent = describe(D.focus);\n",
    "})();\n",
};

static void add_strtab_js(struct fl_buf *b, const struct fl_strtab *t)
{
    fl_buf_addc(b, '[');
    for (size_t i = 0; i < t->count; i++) {
        if (i > 0)
            fl_buf_addc(b, ',');
        add_js_string(b, t->strings[i].ptr, t->strings[i].len);
    }
    fl_buf_addc(b, ']');
}

/*
 * Picks the window the timeline opens on. It is centred on the failed
 * operation and wide enough for the operations concurrent with it, or it
 * is the whole run. Either way it is narrowed so that about VISIBLE_OPS
 * operations are visible.
 */
static void initial_window(const struct report *r, int64_t *from, int64_t *to)
{
    int64_t end = r->end_ns > 0 ? r->end_ns : 1;
    int64_t width = end;
    int64_t centre = end / 2;

    if (r->focus_op >= 0) {
        const struct fl_json *list = lin_anomalies(r);
        const struct fl_json *a = &list->u.array.items[0];
        const struct fl_json *conc = json_array(a, "concurrent");
        const struct op *fo = &r->ops[r->focus_op];
        int64_t lo = fo->start, hi = fo->end >= 0 ? fo->end : fo->start;
        for (size_t i = 0; conc && i < conc->u.array.count; i++) {
            long k = find_op_of(r, &conc->u.array.items[i]);
            if (k < 0)
                continue;
            if (r->ops[k].start < lo)
                lo = r->ops[k].start;
            if (r->ops[k].end > hi)
                hi = r->ops[k].end;
        }
        centre = fo->start;
        width = 3 * (hi - lo);
        if (width < 20000000)
            width = 20000000;
    }
    if (r->n_ops > VISIBLE_OPS) {
        int64_t dense = (int64_t)((double)end * VISIBLE_OPS / (double)r->n_ops);
        if (width > dense)
            width = dense;
    }
    if (width > end)
        width = end;
    *from = centre - width / 2;
    if (*from < 0)
        *from = 0;
    if (*from + width > end)
        *from = end - width;
    *to = *from + width;
}

/* Appends "keep":[...]: the failed operation and those concurrent with it. */
static void add_kept_ops(struct report *r)
{
    struct fl_buf *b = &r->page;
    const struct fl_json *list = lin_anomalies(r);
    const struct fl_json *conc = NULL;

    fl_buf_adds(b, "\"keep\":[");
    if (r->focus_op >= 0) {
        fl_buf_printf(b, "%ld", r->focus_op);
        conc = json_array(&list->u.array.items[0], "concurrent");
    }
    for (size_t i = 0; conc && i < conc->u.array.count; i++) {
        long k = find_op_of(r, &conc->u.array.items[i]);
        if (k >= 0)
            fl_buf_printf(b, ",%ld", k);
    }
    fl_buf_adds(b, "],\n");
}

static void add_timeline(struct report *r)
{
    struct fl_buf *b = &r->page;
    int64_t from, to;

    fl_buf_adds(b, "<h2 id=\"timeline\">Timeline</h2>\n<p class=\"muted\">");
    if (r->lanes_are_threads)
        fl_buf_adds(b, "One lane per client thread: after an info the "
                       "client goes on as a new process on the same thread, "
                       "and the final reads take any free lane. ");
    else
        fl_buf_adds(b, "One lane per process. ");
    fl_buf_adds(b,
                "Each bar runs from invocation to completion: green ok, red "
                "fail, orange info (up to the time the client gave up, though "
                "the operation may take effect later) or no completion (to the "
                "end of the run). Shaded bands are faults. "
                "Hover over or click a bar for the operation.</p>\n"
                "<div class=\"controls\">"
                "<button id=\"tl-earlier\">&#9664; earlier</button>"
                "<button id=\"tl-later\">later &#9654;</button>"
                "<button id=\"tl-in\">zoom in</button>"
                "<button id=\"tl-out\">zoom out</button>"
                "<button id=\"tl-all\">whole run</button>"
                "<button id=\"tl-home\">");
    fl_buf_adds(b, r->focus_op >= 0 ? "failed operation" : "start");
    fl_buf_adds(b, "</button> start <input id=\"tl-start\"> s, width "
                   "<input id=\"tl-width\"> s <button id=\"tl-go\">show"
                   "</button> <span id=\"tl-status\" class=\"muted\"></span>"
                   "</div>\n<div id=\"tl-box\"><svg id=\"tl\"></svg></div>\n"
                   "<div id=\"tl-info\"></div>\n");

    initial_window(r, &from, &to);
    fl_buf_adds(b, "<script>\nwindow.FL_RUN = {\"lanes\":[");
    for (size_t i = 0; i < r->n_lanes; i++) {
        const char *sep = i ? "," : "";
        if (!r->lanes_are_threads)
            fl_buf_printf(b, "%s\"process %" PRId64 "\"", sep, r->lanes[i]);
        else if (r->lanes[i] >= 0)
            fl_buf_printf(b, "%s\"client %" PRId64 "\"", sep, r->lanes[i]);
        else
            fl_buf_printf(b, "%s\"final reads\"", sep);
    }
    fl_buf_adds(b, "],\"names\":");
    add_strtab_js(b, &r->names);
    fl_buf_adds(b, ",\"vals\":");
    add_strtab_js(b, &r->values);
    fl_buf_adds(b, ",\"faults\":[");
    for (size_t i = 0; i < r->n_faults; i++) {
        const struct fault *fa = &r->faults[i];
        fl_buf_printf(b, "%s[%" PRId64 ",%" PRId64 ",", i ? "," : "",
                      fa->start / 1000, fa->stop >= 0 ? fa->stop / 1000 : -1);
        add_js_string(b, fa->label, strlen(fa->label));
        fl_buf_addc(b, ']');
    }
    fl_buf_printf(b,
                  "],\"end\":%" PRId64 ",\"focus\":%ld,\"win\":[%" PRId64
                  ",%" PRId64 "],\n",
                  r->end_ns / 1000 > 0 ? r->end_ns / 1000 : 1, r->focus_op,
                  from / 1000, to / 1000);
    add_kept_ops(r);
    fl_buf_adds(b, "\"ops\":[");
    for (size_t i = 0; i < r->n_ops; i++) {
        const struct op *op = &r->ops[i];
        int64_t end = op->end >= 0 ? op->end : op->info_at;
        fl_buf_printf(b,
                      "%s%" PRIu32 ",%" PRId64 ",%" PRId64 ",%d,%" PRIu32
                      ",%" PRId64 ",%" PRId64 ",%" PRId64,
                      i ? "," : "", op->lane, op->start / 1000,
                      end >= 0 ? end / 1000 - op->start / 1000 : -1,
                      (int)op->type, op->f, op->key, op->value, op->process);
        if (i % 16 == 15)
            fl_buf_addc(b, '\n');
    }
    fl_buf_adds(b, "]};\n");
    for (size_t i = 0; i < sizeof(timeline_js) / sizeof(timeline_js[0]); i++)
        fl_buf_adds(b, timeline_js[i]);
    fl_buf_adds(b, "</script>\n");
}

/* ---- the linearizability counterexample -------------------------------- */

enum lin_role { ROLE_FAILED, ROLE_CONCURRENT, ROLE_PREFIX };

struct lin_row {
    const struct fl_json *op;
    enum lin_role role;
    long index;    /* into r->ops, or -1 when the history does not have it */
    int64_t start; /* the invocation time, INT64_MAX without index */
};

static int cmp_rows(const void *a, const void *b)
{
    const struct lin_row *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/*
 * Appends why op cannot take effect when the register contains state, for
 * the cas-register model. A read must return the state, a cas that
 * succeeded needs its expected value, and a cas that failed must not find
 * it.
 */
static void add_contradiction(struct fl_buf *b, const struct fl_json *op,
                              const struct fl_json *state)
{
    struct fl_str f = json_str(op, "f");
    struct fl_str outcome = json_str(op, "outcome");
    const struct fl_json *value = fl_json_get(op, "value");
    const struct fl_json *output = fl_json_get(op, "output");
    struct fl_buf s;

    fl_buf_init(&s);
    add_value_text(&s, state, VALUE_TEXT_MAX);
    if ((fl_str_eq(f, "read") || fl_str_eq(f, "get")) && output != NULL &&
        !fl_json_equal(output, state)) {
        fl_buf_printf(b, "a read here returns %s, but this one returned ",
                      s.data);
        add_value_text(b, output, VALUE_TEXT_MAX);
    } else if (fl_str_eq(f, "cas") && value != NULL &&
               value->kind == FL_JSON_ARRAY && value->u.array.count == 2) {
        bool matches = fl_json_equal(&value->u.array.items[0], state);
        if (fl_str_eq(outcome, "ok") && !matches) {
            fl_buf_adds(b, "the cas expected ");
            add_value_text(b, &value->u.array.items[0], VALUE_TEXT_MAX);
            fl_buf_printf(b, " but the register holds %s, yet it succeeded",
                          s.data);
        } else if (!fl_str_eq(outcome, "ok") && matches) {
            fl_buf_printf(b,
                          "the register holds %s, so the cas would have "
                          "succeeded, yet it failed",
                          s.data);
        } else {
            fl_buf_adds(b, "the cas can take effect here, but no order of "
                           "the operations after it fits");
        }
    } else {
        fl_buf_adds(b, "the operation can take effect here, but no order of "
                       "the operations after it fits");
    }
    fl_buf_free(&s);
}

static void add_lin_op_item(struct fl_buf *b, const struct report *r,
                            const struct fl_json *op, struct fl_str key)
{
    struct fl_buf t;
    long k = find_op_of(r, op);

    fl_buf_init(&t);
    add_op_text(&t, op, key);
    fl_buf_adds(b, "<li>");
    add_html(b, t.data, t.len);
    if (k >= 0) {
        const struct op *o = &r->ops[k];
        fl_buf_printf(b, " <span class=\"muted\">%.3f ms",
                      (double)o->start / 1e6);
        if (o->end >= 0)
            fl_buf_printf(b, " to %.3f ms", (double)o->end / 1e6);
        fl_buf_adds(b, "</span>");
    }
    fl_buf_adds(b, "</li>\n");
    fl_buf_free(&t);
}

/* A timeline of just the failed operation, those concurrent with it and the
 * last few of the prefix, one row each, in invocation order. */
static int add_lin_timeline(struct report *r, const struct fl_json *a,
                            struct fl_str key)
{
    struct fl_buf *b = &r->page;
    const struct fl_json *conc = json_array(a, "concurrent");
    const struct fl_json *prefix = json_array(a, "prefix");
    struct lin_row *rows;
    size_t n = 0, cap;
    int64_t lo = INT64_MAX, hi = 0;
    struct fl_buf t;

    cap = 1 + LIN_CONCURRENT_MAX + LIN_PREFIX_ROWS;
    rows = calloc(cap, sizeof(*rows));
    if (rows == NULL)
        return -ENOMEM;
    rows[n++] =
        (struct lin_row){fl_json_get(a, "op"), ROLE_FAILED, -1, INT64_MAX};
    for (size_t i = 0; conc && i < conc->u.array.count && n < cap; i++)
        rows[n++] = (struct lin_row){&conc->u.array.items[i], ROLE_CONCURRENT,
                                     -1, INT64_MAX};
    /* The prefix lists operations in linearization order; keep the last
     * ones that are not already shown as concurrent. */
    size_t from = n;
    for (size_t i = prefix ? prefix->u.array.count : 0; i-- > 0 && n < cap;) {
        const struct fl_json *p = &prefix->u.array.items[i];
        long k = find_op_of(r, p);
        bool dup = false;
        for (size_t j = 0; j < from; j++)
            dup = dup || (k >= 0 && find_op_of(r, rows[j].op) == k);
        if (!dup)
            rows[n++] = (struct lin_row){p, ROLE_PREFIX, -1, INT64_MAX};
        if (n - from >= LIN_PREFIX_ROWS)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i].index = find_op_of(r, rows[i].op);
        rows[i].start = INT64_MAX;
        if (rows[i].index < 0)
            continue;
        rows[i].start = r->ops[rows[i].index].start;
        const struct op *o = &r->ops[rows[i].index];
        lo = o->start < lo ? o->start : lo;
        hi = o->start > hi ? o->start : hi;
        hi = o->end > hi ? o->end : hi;
    }
    if (lo == INT64_MAX) {
        fl_buf_adds(b, "<p class=\"note\">These operations are not in "
                       "history.jsonl, so they are not drawn.</p>\n");
        free(rows);
        return 0;
    }
    qsort(rows, n, sizeof(*rows), cmp_rows);

    /* Leave room at the right for operations that never completed. */
    int64_t span = hi - lo > 0 ? hi - lo : 1;
    hi += span / 10;
    span = hi - lo;
    double label_w = 330, plot_w = CHART_W - label_w - 10, row_h = 18;
    double height = 30 + (double)n * row_h + 10;
#define LIN_X(ns) (label_w + (double)((ns)-lo) / (double)span * plot_w)
    fl_buf_printf(b,
                  "<svg viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" "
                  "role=\"img\" aria-label=\"the failing window\">\n",
                  CHART_W, height);
    const struct op *fo = NULL;
    for (size_t i = 0; i < n; i++)
        if (rows[i].role == ROLE_FAILED && rows[i].index >= 0)
            fo = &r->ops[rows[i].index];
    if (fo != NULL) {
        int64_t fe = fo->end >= 0 ? fo->end : hi;
        fl_buf_printf(b,
                      "<rect x=\"%.1f\" y=\"20\" width=\"%.1f\" "
                      "height=\"%.0f\" fill=\"#ffcdd2\" "
                      "fill-opacity=\"0.5\"/>\n",
                      LIN_X(fo->start), LIN_X(fe) - LIN_X(fo->start) + 1,
                      height - 25);
    }
    fl_buf_printf(b,
                  "<text x=\"%.0f\" y=\"14\" fill=\"#555\">%.3f ms</text>"
                  "<text x=\"%.0f\" y=\"14\" text-anchor=\"end\" "
                  "fill=\"#555\">%.3f ms</text>\n",
                  label_w, (double)lo / 1e6, CHART_W - 10, (double)hi / 1e6);
    fl_buf_init(&t);
    for (size_t i = 0; i < n; i++) {
        static const char *const fill[] = {"#c62828", "#1e88e5", "#9e9e9e"};
        double y = 24 + (double)i * row_h;
        fl_buf_clear(&t);
        add_op_text(&t, rows[i].op, key);
        if (t.len > 60) {
            t.len = utf8_prefix_len(t.data, t.len, 57);
            fl_buf_adds(&t, "...");
        }
        fl_buf_printf(b, "<text x=\"4\" y=\"%.1f\"%s>", y + 11,
                      rows[i].role == ROLE_FAILED ? " font-weight=\"bold\""
                                                  : "");
        add_html(b, t.data, t.len);
        fl_buf_adds(b, "</text>");
        if (rows[i].index >= 0) {
            const struct op *o = &r->ops[rows[i].index];
            int64_t e = o->end >= 0 ? o->end : hi;
            fl_buf_printf(b,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                          "height=\"%.0f\" fill=\"%s\"%s><title>",
                          LIN_X(o->start), y + 2,
                          fmax(LIN_X(e) - LIN_X(o->start), 2), row_h - 5,
                          fill[rows[i].role],
                          o->end < 0 ? " fill-opacity=\"0.5\"" : "");
            add_html(b, t.data, t.len);
            fl_buf_adds(b, "</title></rect>");
        }
        fl_buf_addc(b, '\n');
    }
#undef LIN_X
    fl_buf_adds(b, "</svg>\n<p class=\"legend\"><span style=\"background:"
                   "#c62828\"></span>cannot be linearized <span style="
                   "\"background:#1e88e5\"></span>concurrent with it "
                   "<span style=\"background:#9e9e9e\"></span>end of the "
                   "longest linearizable prefix</p>\n");
    fl_buf_free(&t);
    free(rows);
    return 0;
}

static int add_lin_anomaly(struct report *r, const struct fl_json *a)
{
    struct fl_buf *b = &r->page;
    struct fl_str key = json_str(a, "key");
    struct fl_str detail = json_str(a, "detail");
    const struct fl_json *op = fl_json_get(a, "op");
    const struct fl_json *conc = json_array(a, "concurrent");
    const struct fl_json *prefix = json_array(a, "prefix");
    const struct fl_json *states = json_array(a, "states");
    const struct fl_json *truncated = fl_json_get(a, "states_truncated");
    size_t n_prefix = prefix ? prefix->u.array.count : 0;
    struct fl_buf t;
    int rc;

    fl_buf_init(&t);
    add_op_text(&t, op, key);
    fl_buf_adds(b, "<h3>Key ");
    add_html(b, key.ptr ? key.ptr : "(none)", key.ptr ? key.len : 6);
    fl_buf_adds(b, ": <span class=\"failed-op\">");
    add_html(b, t.data, t.len);
    fl_buf_adds(b, "</span> cannot be linearized</h3>\n");
    if (detail.ptr != NULL && detail.len > 0) {
        fl_buf_adds(b, "<pre>");
        add_html(b, detail.ptr, detail.len);
        fl_buf_adds(b, "</pre>\n");
    }
    rc = add_lin_timeline(r, a, key);
    if (rc != 0)
        goto out;

    fl_buf_printf(b,
                  "<p>The longest linearizable prefix has %zu operation%s. "
                  "After it the register can hold any of these states, and "
                  "in none of them can the operation take effect:</p>\n"
                  "<table class=\"grid\"><tr><th>state</th><th>why the "
                  "operation contradicts it</th></tr>\n",
                  n_prefix, n_prefix == 1 ? "" : "s");
    for (size_t i = 0; states && i < states->u.array.count; i++) {
        const struct fl_json *s = &states->u.array.items[i];
        fl_buf_clear(&t);
        add_value_text(&t, s, VALUE_TEXT_MAX);
        fl_buf_adds(b, "<tr><td><code>");
        add_html(b, t.data, t.len);
        fl_buf_adds(b, "</code></td><td>");
        fl_buf_clear(&t);
        add_contradiction(&t, op, s);
        add_html(b, t.data, t.len);
        fl_buf_adds(b, "</td></tr>\n");
    }
    fl_buf_adds(b, "</table>\n");
    if (truncated && truncated->kind == FL_JSON_BOOL && truncated->u.b)
        fl_buf_adds(b, "<p class=\"note\">The checker listed only some of "
                       "the reachable states.</p>\n");

    fl_buf_printf(b, "<p>Operations concurrent with it (%zu):</p>\n<ol>\n",
                  conc ? conc->u.array.count : 0);
    for (size_t i = 0; conc && i < conc->u.array.count; i++)
        add_lin_op_item(b, r, &conc->u.array.items[i], key);
    fl_buf_adds(b, "</ol>\n");
    fl_buf_printf(b,
                  "<p>The last operations of the longest linearizable "
                  "prefix, in linearization order (%zu of %zu):</p>\n"
                  "<ol>\n",
                  n_prefix < 10 ? n_prefix : 10, n_prefix);
    for (size_t i = n_prefix > 10 ? n_prefix - 10 : 0; i < n_prefix; i++)
        add_lin_op_item(b, r, &prefix->u.array.items[i], key);
    fl_buf_adds(b, "</ol>\n");
out:
    fl_buf_free(&t);
    return rc;
}

static int add_linearizability(struct report *r)
{
    const struct fl_json *list = lin_anomalies(r);
    size_t n = list ? list->u.array.count : 0;
    int rc;

    if (n == 0)
        return 0;
    fl_buf_adds(&r->page,
                "<h2 id=\"linearizability\">Linearizability violation</h2>\n");
    for (size_t i = 0; i < n && i < LIN_SHOWN_MAX; i++) {
        rc = add_lin_anomaly(r, &list->u.array.items[i]);
        if (rc != 0)
            return rc;
    }
    if (n > LIN_SHOWN_MAX)
        fl_buf_printf(&r->page,
                      "<p class=\"note\">%zu more keys are not "
                      "linearizable; results.json lists them.</p>\n",
                      n - LIN_SHOWN_MAX);
    return 0;
}

/* ---- node log excerpts ------------------------------------------------- */

/* Parses "YYYY-MM-DDTHH:MM:SS[.mmm]Z" into milliseconds since the epoch. */
static bool parse_utc_ms(const char *s, size_t len, int64_t *ms)
{
    struct tm tm;
    int year, mon, day, hour, min, sec, frac = 0, used = 0;
    char text[40];

    if (len >= sizeof(text))
        len = sizeof(text) - 1;
    memcpy(text, s, len);
    text[len] = '\0';
    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &mon, &day, &hour,
               &min, &sec, &used) != 6)
        return false;
    if (text[used] == '.') {
        int digits = 0;
        for (const char *p = text + used + 1; *p >= '0' && *p <= '9'; p++) {
            if (digits < 3) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
        }
        while (digits++ < 3)
            frac *= 10;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return true;
}

struct log_line {
    char *text; /* may contain NUL bytes, so len is its length */
    size_t len;
    int64_t ms;
};

static int cmp_names(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    size_t lx = strlen(x), ly = strlen(y);
    /* n2.log before n10.log. */
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return strcmp(x, y);
}

/*
 * Appends the lines of one log within [centre - LOG_WINDOW_MS, centre +
 * LOG_WINDOW_MS], at most LOG_LINES_MAX of those nearest the centre, or
 * the last LOG_LINES_MAX / 2 lines when centre is negative. A line without
 * a ts= field takes the time of the line before it.
 */
static int add_log_excerpt(struct fl_buf *b, const char *path, int64_t centre)
{
    struct log_line ring[LOG_LINES_MAX];
    size_t head = 0, count = 0;
    size_t cap = centre >= 0 ? LOG_LINES_MAX : LOG_LINES_MAX / 2;
    size_t in_window = 0;
    int64_t last_ms = INT64_MIN;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    FILE *in = fopen(path, "r");

    if (in == NULL) {
        fl_buf_adds(b, "<p class=\"note\">");
        add_htmls(b, path);
        fl_buf_printf(b, ": %s</p>\n", strerror(errno));
        return 0;
    }
    while ((len = getline(&line, &line_cap, in)) > 0) {
        int64_t ms;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len > 3 && memcmp(line, "ts=", 3) == 0 &&
            parse_utc_ms(line + 3, (size_t)len - 3, &ms))
            last_ms = ms;
        ms = last_ms;
        if (centre >= 0) {
            if (ms == INT64_MIN || ms < centre - LOG_WINDOW_MS)
                continue;
            if (ms > centre + LOG_WINDOW_MS)
                break;
            in_window++;
        }
        if (count == cap) {
            struct log_line *oldest = &ring[head];
            /* Lines come in time order: once the oldest kept line is
             * nearer the centre than this one, later lines are further. */
            if (centre >= 0 && centre - oldest->ms <= ms - centre)
                continue;
            free(oldest->text);
            head = (head + 1) % cap;
            count--;
        }
        struct log_line *slot = &ring[(head + count) % cap];
        size_t keep = utf8_prefix_len(line, (size_t)len, LOG_LINE_CHARS);
        slot->text = malloc(keep + 3);
        if (slot->text == NULL)
            break;
        memcpy(slot->text, line, keep);
        slot->len = keep;
        if (keep < (size_t)len) {
            memcpy(slot->text + keep, "...", 3);
            slot->len += 3;
        }
        slot->ms = ms;
        count++;
    }
    free(line);
    fclose(in);

    fl_buf_adds(b, "<h3>");
    add_htmls(b, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    fl_buf_adds(b, "</h3>\n");
    if (centre >= 0 && in_window > count)
        fl_buf_printf(b,
                      "<p class=\"muted\">%zu lines in the window; the %zu "
                      "nearest the anomaly are shown.</p>\n",
                      in_window, count);
    if (count == 0)
        fl_buf_adds(b, "<p class=\"muted\">No lines in this window.</p>\n");
    else
        fl_buf_adds(b, "<pre>");
    for (size_t i = 0; i < count; i++) {
        struct log_line *l = &ring[(head + i) % cap];
        add_html(b, l->text, l->len);
        fl_buf_addc(b, '\n');
        free(l->text);
    }
    if (count > 0)
        fl_buf_adds(b, "</pre>\n");
    return 0;
}

static int add_logs(struct report *r)
{
    struct fl_buf *b = &r->page;
    struct fl_str started = json_str(&r->results, "started");
    char dir_path[4096];
    char path[4400];
    DIR *dir;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int64_t started_ms;
    int64_t centre = -1;
    int rc = 0;

    fl_buf_adds(b, "<h2 id=\"logs\">Node logs</h2>\n");
    if (r->focus_ns >= 0 && started.ptr != NULL &&
        parse_utc_ms(started.ptr, started.len, &started_ms)) {
        centre = started_ms + r->focus_ns / 1000000;
        fl_buf_printf(b,
                      "<p class=\"muted\">Lines within %d s of the failed "
                      "operation's invocation, at most %d per node. Log "
                      "times are wall-clock times; the operation's time is "
                      "mapped to them by adding it to the run's start time "
                      "from results.json, which has whole seconds, so the "
                      "mapping is approximate (about one second).</p>\n",
                      LOG_WINDOW_MS / 1000, LOG_LINES_MAX);
    } else {
        fl_buf_printf(b,
                      "<p class=\"muted\">No failed operation to centre on: "
                      "the last %d lines of each node's log.</p>\n",
                      LOG_LINES_MAX / 2);
    }

    snprintf(dir_path, sizeof(dir_path), "%s/nodes", r->dir);
    dir = opendir(dir_path);
    if (dir == NULL) {
        fl_buf_adds(b, "<p class=\"note\">");
        add_htmls(b, dir_path);
        fl_buf_printf(b, ": %s</p>\n", strerror(errno));
        return 0;
    }
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".log") != 0)
            continue;
        rc = fl_vec_reserve((void **)&names, &cap, n + 1, sizeof(*names), NULL);
        if (rc != 0)
            break;
        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(dir);
    if (rc == 0) {
        if (n > 1)
            qsort(names, n, sizeof(*names), cmp_names);
        if (n == 0)
            fl_buf_adds(b, "<p class=\"muted\">No node logs.</p>\n");
        for (size_t i = 0; i < n && rc == 0; i++) {
            snprintf(path, sizeof(path), "%s/%s", dir_path, names[i]);
            rc = add_log_excerpt(b, path, centre);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ---- the whole --------------------------------------------------------- */

/*
 * Writes the page to report.html through a temporary file of this writer's
 * own in the same directory, then renames it into place. A reader never sees
 * a partial page, and two processes rendering one run at once both succeed:
 * the last rename wins.
 */
static int write_page(struct report *r, char *err, size_t err_size)
{
    char path[4096];
    char tmp[4200];
    const char *at = r->page.data;
    size_t left = r->page.len;
    int fd;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/report.html", r->dir);
    snprintf(tmp, sizeof(tmp), "%s/.report.html.XXXXXX", r->dir);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, err_size, "%s: %s", tmp, fl_strerror(rc));
        return rc;
    }
    /* mkstemp creates the file readable by its owner only. */
    if (fchmod(fd, 0644) != 0) {
        rc = -errno;
        goto close_tmp;
    }
    while (left > 0) {
        ssize_t n = write(fd, at, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            goto close_tmp;
        }
        at += n;
        left -= (size_t)n;
    }
close_tmp:
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        snprintf(err, err_size, "%s: %s", path, fl_strerror(rc));
        unlink(tmp);
    }
    return rc;
}

static int build_page(struct report *r)
{
    struct fl_buf *b = &r->page;
    struct fl_str campaign = json_str(&r->results, "campaign");
    int rc;

    fl_buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
                   "<meta charset=\"utf-8\">\n<title>");
    add_html(b, campaign.ptr ? campaign.ptr : "run",
             campaign.ptr ? campaign.len : 3);
    fl_buf_adds(b, ": faultline report</title>\n<style>\n");
    fl_buf_adds(b, page_css);
    fl_buf_adds(b, "</style>\n</head>\n<body>\n");
    /* What went wrong comes first: the verdict and anomalies, then the
     * failing window, then the whole run around it. */
    add_summary(r);
    rc = add_linearizability(r);
    if (rc == 0) {
        add_timeline(r);
        rc = add_latency_chart(r);
    }
    if (rc == 0)
        rc = add_throughput_chart(r);
    if (rc == 0) {
        add_metrics_section(r);
        rc = add_logs(r);
    }
    fl_buf_adds(b, "</body>\n</html>\n");
    if (rc == 0 && b->failed)
        rc = -ENOMEM;
    return rc;
}

int rep_render_run(const char *run_dir, char *err, size_t err_size)
{
    struct report r;
    int rc;

    memset(&r, 0, sizeof(r));
    r.dir = run_dir;
    r.focus_op = -1;
    r.focus_ns = -1;
    fl_arena_init(&r.arena, 0, NULL);
    fl_strtab_init(&r.names, NULL);
    fl_strtab_init(&r.values, NULL);
    fl_buf_init(&r.page);
    r.campaign.kind = FL_JSON_NULL;
    if (err_size > 0)
        err[0] = '\0';

    rc = load_json(&r, "results.json", &r.results, &r.texts[0], err, err_size);
    if (rc != 0)
        goto out;
    /* campaign.json only adds the description, so it may be missing. */
    {
        char ignored[16];
        if (load_json(&r, "campaign.json", &r.campaign, &r.texts[1], ignored,
                      sizeof(ignored)) != 0)
            r.campaign.kind = FL_JSON_NULL;
    }
    rc = read_history(&r);
    if (rc == 0)
        rc = read_nemesis(&r);
    if (rc != 0) {
        snprintf(err, err_size, "%s: %s", run_dir, fl_strerror(rc));
        goto out;
    }
    find_focus(&r);
    rc = build_page(&r);
    if (rc != 0) {
        snprintf(err, err_size, "%s/report.html: %s", run_dir, fl_strerror(rc));
        goto out;
    }
    rc = write_page(&r, err, err_size);
out:
    fl_buf_free(&r.page);
    fl_strtab_destroy(&r.values);
    fl_strtab_destroy(&r.names);
    free(r.faults);
    free(r.lanes);
    free(r.ops);
    fl_arena_destroy(&r.arena);
    free(r.texts[0]);
    free(r.texts[1]);
    return rc;
}
