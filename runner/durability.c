/*
 * The durability check: no read may miss a write that was acknowledged
 * before the read began.
 *
 * The register workload writes each value once, so a read's value names
 * the one operation that wrote it. Say that operation was acknowledged at
 * time t. An acknowledged write that began after t and ended before the
 * read began comes after the value's write in every linearization, and
 * nothing writes the value again, so the read must not return it. A null
 * read (the initial value) misses every write acknowledged before it
 * began. Each missed write is reported once, with its acknowledgement
 * time and the first read that missed it:
 *
 *   lost-write    the read was a final read, after the last heal. Or a
 *                 fault that restarts the node (kill, or a disk fault that
 *                 struck) started between the acknowledgement and the
 *                 read's completion. Either way the system acknowledged
 *                 the write and then lost it.
 *   unseen-write  neither: a read returned an older value after the write
 *                 was acknowledged (a stale read).
 *
 * Every write it reports was lost or unseen, but it does not find every
 * such write: writes whose outcome is unknown (info) are never counted as
 * acknowledged, a read of a value such a write produced is not judged,
 * and orders that only the full search can rule out are left to the
 * linearizability check. With repeated values (a campaign's value_max) a
 * value does not name its write, and the check is skipped.
 */
#include "run.h"

#include "error.h"
#include "hash.h"
#include "history.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Missed writes listed in results.json, and listed again as anomalies. */
#define MAX_LISTED    100
#define MAX_ANOMALIES 20

enum op_kind { OP_READ, OP_WRITE, OP_CAS, OP_OTHER };

struct op {
    uint32_t key;
    uint8_t kind;    /* enum op_kind */
    uint8_t type;    /* enum fl_hist_type of the completion */
    bool done;       /* completed */
    bool null_value; /* read: returned null */
    bool missed;     /* write: some read missed it */
    int64_t value;   /* write, cas: the value written; read: result */
    int64_t invoke, complete;
    int64_t process;
    uint64_t invoke_line, complete_line;
};

/* An acknowledged write, for the per-key search. */
struct ack {
    uint32_t key;
    int64_t invoke;
    int64_t complete;
    size_t op;
};

struct state {
    struct op *ops;
    size_t n_ops, cap_ops;
    struct fl_strtab keys;
    struct fl_map64 by_line; /* invocation line -> index in ops + 1 */
    bool non_integer;        /* some value is not an integer */
};

static int cmp_ack(const void *a, const void *b)
{
    const struct ack *x = a;
    const struct ack *y = b;

    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->invoke > y->invoke) - (x->invoke < y->invoke);
}

/* (key, value) -> writer, sorted for bsearch. */
struct writer {
    uint32_t key;
    int64_t value;
    size_t op;
};

static int cmp_writer(const void *a, const void *b)
{
    const struct writer *x = a;
    const struct writer *y = b;

    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->value > y->value) - (x->value < y->value);
}

static enum op_kind op_kind(struct fl_str f)
{
    if (f.len == 4 && memcmp(f.ptr, "read", 4) == 0)
        return OP_READ;
    if (f.len == 5 && memcmp(f.ptr, "write", 5) == 0)
        return OP_WRITE;
    if (f.len == 3 && memcmp(f.ptr, "cas", 3) == 0)
        return OP_CAS;
    return OP_OTHER;
}

/* The value a write or cas invocation writes: its value, or the second
 * element of a cas pair. Returns false when it is not an integer. */
static bool written_value(const struct fl_hist_event *ev, enum op_kind kind,
                          int64_t *out)
{
    const struct fl_json *v = &ev->value;

    if (kind == OP_CAS) {
        if (v->kind != FL_JSON_ARRAY || v->u.array.count != 2)
            return false;
        v = &v->u.array.items[1];
    }
    if (v->kind != FL_JSON_INT)
        return false;
    *out = v->u.i;
    return true;
}

static int read_history(struct state *s, const char *path, char *err,
                        size_t err_size)
{
    struct fl_hist_reader *r;
    struct fl_hist_event ev;
    int rc;

    rc = fl_hist_reader_open(&r, path, NULL);
    if (rc != 0) {
        snprintf(err, err_size, "%s: %s", path, fl_strerror(rc));
        return rc;
    }
    while ((rc = fl_hist_reader_next(r, &ev)) == 1) {
        if (ev.type == FL_HIST_INVOKE) {
            struct op o = {
                .kind = (uint8_t)op_kind(ev.f),
                .invoke = ev.time,
                .complete = INT64_MAX,
                .process = ev.process,
                .invoke_line = ev.line,
            };
            int64_t id =
                fl_strtab_intern(&s->keys, ev.key.ptr ? ev.key.ptr : "",
                                 ev.key.ptr ? ev.key.len : 0);
            int inserted;
            uint64_t *slot;
            if (id < 0) {
                rc = (int)id;
                break;
            }
            o.key = (uint32_t)id;
            if ((o.kind == OP_WRITE || o.kind == OP_CAS) &&
                !written_value(&ev, (enum op_kind)o.kind, &o.value))
                s->non_integer = true;
            if (fl_vec_reserve((void **)&s->ops, &s->cap_ops, s->n_ops + 1,
                               sizeof(*s->ops), NULL) != 0) {
                rc = -ENOMEM;
                break;
            }
            slot = fl_map64_put(&s->by_line, ev.line, &inserted);
            if (slot == NULL) {
                rc = -ENOMEM;
                break;
            }
            *slot = s->n_ops + 1;
            s->ops[s->n_ops++] = o;
            continue;
        }
        uint64_t *slot = fl_map64_get(&s->by_line, ev.invoke_line);
        if (slot == NULL || *slot == 0)
            continue;
        struct op *o = &s->ops[*slot - 1];
        o->done = true;
        o->type = (uint8_t)ev.type;
        o->complete = ev.time;
        o->complete_line = ev.line;
        if (o->kind == OP_READ && ev.type == FL_HIST_OK) {
            if (ev.value.kind == FL_JSON_NULL || !ev.has_value)
                o->null_value = true;
            else if (ev.value.kind == FL_JSON_INT)
                o->value = ev.value.u.i;
            else
                o->kind = OP_OTHER; /* text no write produced: the
                                       linearizability check flags it */
        }
    }
    if (rc < 0 && err[0] == '\0')
        snprintf(err, err_size, "%s",
                 fl_hist_reader_error(r)[0] ? fl_hist_reader_error(r)
                                            : fl_strerror(rc));
    fl_hist_reader_close(r);
    return rc < 0 ? rc : 0;
}

/* The crash fault that started in [from, to], or NULL. */
static const struct run_span *crash_between(const struct run_span *spans,
                                            size_t n, int64_t from, int64_t to)
{
    static const char *const crashes[] = {
        "kill",     "lose-unsynced", "torn-write",
        "torn-seq", "crash-at",      "corrupt",
    };

    for (size_t i = 0; i < n; i++) {
        if (spans[i].start < from || spans[i].start > to)
            continue;
        for (size_t k = 0; k < sizeof(crashes) / sizeof(crashes[0]); k++)
            if (strcmp(spans[i].fault, crashes[k]) == 0)
                return &spans[i];
    }
    return NULL;
}

static void add_op_lines(struct fl_buf *b, const struct op *o)
{
    fl_buf_printf(b, "{\"invoke_line\":%" PRIu64, o->invoke_line);
    if (o->done)
        fl_buf_printf(b, ",\"complete_line\":%" PRIu64, o->complete_line);
    fl_buf_addc(b, '}');
}

/* Lists one missed write in the check and, for the first few, as an
 * anomaly. */
static void report(struct state *s, const struct run_durability_input *in,
                   const struct op *w, const struct op *rd,
                   const struct op *writer, struct run_durability_result *res,
                   struct fl_buf *list, struct fl_buf *anomalies,
                   size_t *n_anomalies)
{
    bool final = rd->invoke >= in->workload_end_ns;
    const struct run_span *crash =
        final
            ? NULL
            : crash_between(in->spans, in->n_spans, w->complete, rd->complete);
    bool lost = final || crash != NULL;
    struct fl_str key = fl_strtab_get(&s->keys, w->key);
    char what[512];
    char read_value[32];
    char since[96] = "";
    size_t listed = res->lost + res->unseen;

    if (lost)
        res->lost++;
    else
        res->unseen++;
    if (rd->null_value)
        snprintf(read_value, sizeof(read_value), "null");
    else
        snprintf(read_value, sizeof(read_value), "%" PRId64, rd->value);
    if (writer != NULL)
        snprintf(since, sizeof(since),
                 ", written by an operation acknowledged "
                 "at %.3f s",
                 (double)writer->complete / 1e9);
    snprintf(what, sizeof(what),
             "key %.*s: write %" PRId64 " by process %" PRId64
             ", acknowledged at %.3f s, is missing from the %sread by "
             "process %" PRId64 " at %.3f s, which returned %s%s%s%s",
             (int)key.len, key.ptr, w->value, w->process,
             (double)w->complete / 1e9, final ? "final " : "", rd->process,
             (double)rd->invoke / 1e9, read_value, since,
             crash ? "; a crash fault started in between: " : "",
             crash ? crash->fault : "");
    if (listed < MAX_LISTED) {
        fl_buf_adds(list, listed ? "," : "");
        fl_buf_adds(list, "{\"kind\":");
        fl_buf_adds(list, lost ? "\"lost-write\"" : "\"unseen-write\"");
        fl_buf_adds(list, ",\"key\":");
        fl_buf_add_json_string(list, key.ptr, key.len);
        fl_buf_printf(
            list,
            ",\"value\":%" PRId64 ",\"process\":%" PRId64
            ",\"invoke_s\":%.6f,\"ack_s\":%.6f,\"read\":{\"process\":"
            "%" PRId64 ",\"invoke_s\":%.6f,\"value\":%s,\"final\":%s}",
            w->value, w->process, (double)w->invoke / 1e9,
            (double)w->complete / 1e9, rd->process, (double)rd->invoke / 1e9,
            read_value, final ? "true" : "false");
        if (crash != NULL) {
            fl_buf_adds(list, ",\"after_fault\":");
            fl_buf_add_json_string(list, crash->fault, strlen(crash->fault));
            fl_buf_printf(list, ",\"fault_start_s\":%.6f",
                          (double)crash->start / 1e9);
        }
        fl_buf_addc(list, '}');
    }
    if (listed < MAX_ANOMALIES) {
        fl_buf_adds(anomalies, *n_anomalies ? "," : "");
        fl_buf_adds(anomalies, "{\"checker\":\"durability\",\"kind\":");
        fl_buf_adds(anomalies, lost ? "\"lost-write\"" : "\"unseen-write\"");
        fl_buf_adds(anomalies, ",\"detail\":{\"what\":");
        fl_buf_add_json_string(anomalies, what, strlen(what));
        fl_buf_adds(anomalies, ",\"op\":");
        add_op_lines(anomalies, w);
        fl_buf_adds(anomalies, ",\"concurrent\":[");
        add_op_lines(anomalies, rd);
        fl_buf_adds(anomalies, "]}}");
        (*n_anomalies)++;
    }
}

int run_check_durability(const struct run_durability_input *in,
                         struct fl_buf *check, struct fl_buf *anomalies,
                         size_t *n_anomalies, struct run_durability_result *res)
{
    struct state s = {0};
    struct ack *acks = NULL;
    struct writer *writers = NULL;
    int64_t *suffix_min = NULL;
    size_t n_acks = 0;
    size_t n_writers = 0;
    struct fl_buf list;
    char err[512] = "";
    const char *skipped = NULL;
    int rc;

    memset(res, 0, sizeof(*res));
    fl_buf_init(&list);
    fl_strtab_init(&s.keys, NULL);
    fl_map64_init(&s.by_line, NULL);
    rc = read_history(&s, in->history_path, err, sizeof(err));
    if (rc == 0 && s.non_integer)
        skipped = "some values are not integers";

    /* Writers by (key, value); a repeated value names no single write. */
    if (rc == 0 && skipped == NULL) {
        writers = calloc(s.n_ops ? s.n_ops : 1, sizeof(*writers));
        acks = calloc(s.n_ops ? s.n_ops : 1, sizeof(*acks));
        suffix_min = calloc(s.n_ops + 1, sizeof(*suffix_min));
        if (writers == NULL || acks == NULL || suffix_min == NULL)
            rc = -ENOMEM;
    }
    for (size_t i = 0; rc == 0 && skipped == NULL && i < s.n_ops; i++) {
        const struct op *o = &s.ops[i];
        if (o->kind != OP_WRITE && o->kind != OP_CAS)
            continue;
        writers[n_writers++] =
            (struct writer){.key = o->key, .value = o->value, .op = i};
        if (o->done && o->type == FL_HIST_OK) {
            acks[n_acks++] = (struct ack){.key = o->key,
                                          .invoke = o->invoke,
                                          .complete = o->complete,
                                          .op = i};
            res->acknowledged++;
        }
    }
    if (rc == 0 && skipped == NULL) {
        qsort(writers, n_writers, sizeof(*writers), cmp_writer);
        for (size_t i = 1; i < n_writers; i++)
            if (writers[i].key == writers[i - 1].key &&
                writers[i].value == writers[i - 1].value)
                skipped = "a value was written more than once, so a read's "
                          "value does not name its write";
        qsort(acks, n_acks, sizeof(*acks), cmp_ack);
        suffix_min[n_acks] = INT64_MAX;
        for (size_t i = n_acks; i-- > 0;) {
            bool key_end = i + 1 == n_acks || acks[i + 1].key != acks[i].key;
            int64_t next = key_end ? INT64_MAX : suffix_min[i + 1];
            suffix_min[i] = acks[i].complete < next ? acks[i].complete : next;
        }
    }

    /* Each acknowledged read against the acknowledged writes of its key. */
    for (size_t i = 0; rc == 0 && skipped == NULL && i < s.n_ops; i++) {
        const struct op *rd = &s.ops[i];
        const struct op *writer = NULL;
        /* Acknowledged writes invoked after this must be seen. */
        int64_t after = INT64_MIN;
        if (rd->kind != OP_READ || !rd->done || rd->type != FL_HIST_OK)
            continue;
        res->reads++;
        if (!rd->null_value) {
            struct writer probe = {.key = rd->key, .value = rd->value};
            const struct writer *found = bsearch(&probe, writers, n_writers,
                                                 sizeof(*writers), cmp_writer);
            /* A value no write produced is the linearizability check's
             * to report. */
            if (found == NULL)
                continue;
            writer = &s.ops[found->op];
            if (!writer->done || writer->type != FL_HIST_OK)
                continue; /* its effect has no known end */
            after = writer->complete;
        }
        /* The first acknowledged write of the key invoked after `after`. */
        size_t lo = 0, hi = n_acks;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (acks[mid].key < rd->key ||
                (acks[mid].key == rd->key && acks[mid].invoke <= after))
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == n_acks || acks[lo].key != rd->key ||
            suffix_min[lo] >= rd->invoke)
            continue;
        for (size_t k = lo; k < n_acks && acks[k].key == rd->key; k++) {
            struct op *w = &s.ops[acks[k].op];
            if (acks[k].invoke >= rd->invoke)
                break; /* the rest began after the read did */
            if (w->complete >= rd->invoke || w->missed)
                continue;
            w->missed = true;
            report(&s, in, w, rd, writer, res, &list, anomalies, n_anomalies);
        }
    }

    if (rc != 0) {
        fl_buf_adds(check, "{\"valid\":null,\"error\":");
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "%s", fl_strerror(rc));
        fl_buf_add_json_string(check, err, strlen(err));
        fl_buf_addc(check, '}');
        res->unknown = true;
    } else if (skipped != NULL) {
        fl_buf_adds(check, "{\"valid\":null,\"skipped\":");
        fl_buf_add_json_string(check, skipped, strlen(skipped));
        fl_buf_addc(check, '}');
        res->unknown = true;
    } else {
        fl_buf_printf(check,
                      "{\"valid\":%s,\"reads\":%" PRIu64
                      ",\"acknowledged_writes\":%" PRIu64 ",\"lost\":%" PRIu64
                      ",\"unseen\":%" PRIu64 ",\"listed\":%" PRIu64
                      ",\"missed_writes\":[",
                      res->lost + res->unseen ? "false" : "true", res->reads,
                      res->acknowledged, res->lost, res->unseen,
                      res->lost + res->unseen < MAX_LISTED
                          ? res->lost + res->unseen
                          : (uint64_t)MAX_LISTED);
        fl_buf_add(check, list.data, list.len);
        fl_buf_adds(check, "]}");
    }
    free(acks);
    free(writers);
    free(suffix_min);
    fl_vec_free((void **)&s.ops, &s.cap_ops, sizeof(*s.ops), NULL);
    fl_strtab_destroy(&s.keys);
    fl_map64_destroy(&s.by_line);
    rc = list.failed || check->failed ? -ENOMEM : 0;
    fl_buf_free(&list);
    return rc;
}
