/*
 * Campaign files: strict parsing, defaults and the resolved form.
 *
 * Each object is read by walking its members once. A member whose name
 * the object does not list is an error, and so is a member given twice.
 * Each value is checked for type and range as it is read. The path of the
 * member being read ("nemesis.faults[2].kind") is kept for messages.
 */
#include "campaign.h"
#include "cli.h"

#include "arena.h"
#include "engine.h"
#include "error.h"
#include "json.h"
#include "raft.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CAMPAIGN_MAX_BYTES (1u << 20)

static const char *const fault_names[CAMP_FAULT__COUNT] = {
    "kill",
    "pause",
    "halves",
    "majority-ring",
    "isolate-primary",
    "bridge",
    "one-way",
    "loss",
    "delay",
    "lose-unsynced",
    "fsync-eio",
    "write-eio",
    "write-enospc",
    "torn-write",
    "torn-seq",
    "crash-at",
    "corrupt",
};

static const char *const tear_names[] = {"prefix", "sectors"};
static const char *const op_names[] = {"fsync", "rename", "unlink"};
static const char *const when_names[] = {"before", "after"};

static const char *const target_names[] = {
    "one", "minority", "majority", "all", "primary", "list",
};

struct ctx {
    const char *file;
    char path[160]; /* the member being read */
    char *err;
    size_t err_size;
};

static int fail(struct ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct ctx *x, const char *fmt, ...)
{
    char why[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (x->path[0] != '\0')
        snprintf(x->err, x->err_size, "%s: %s: %s", x->file, x->path, why);
    else
        snprintf(x->err, x->err_size, "%s: %s", x->file, why);
    return RUN_EXIT_USAGE;
}

/* Sets the path to parent.key (or parent[index] when key is NULL) and
 * returns the length to restore afterwards. */
static size_t push(struct ctx *x, const char *key, size_t key_len, long index)
{
    size_t len = strlen(x->path);
    size_t room = sizeof(x->path) - len;

    if (key == NULL)
        snprintf(x->path + len, room, "[%ld]", index);
    else
        snprintf(x->path + len, room, "%s%.*s", len > 0 ? "." : "",
                 (int)(key_len > 64 ? 64 : key_len), key);
    return len;
}

static void pop(struct ctx *x, size_t len)
{
    x->path[len] = '\0';
}

static int want_object(struct ctx *x, const struct fl_json *v)
{
    if (v->kind != FL_JSON_OBJECT)
        return fail(x, "expected an object, got %s",
                    fl_json_kind_name(v->kind));
    for (size_t i = 0; i < v->u.object.count; i++) {
        for (size_t k = 0; k < i; k++) {
            const struct fl_str *a = &v->u.object.members[i].key;
            const struct fl_str *b = &v->u.object.members[k].key;
            if (a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0) {
                size_t mark = push(x, a->ptr, a->len, 0);
                int rc = fail(x, "given twice");
                pop(x, mark);
                return rc;
            }
        }
    }
    return 0;
}

static int get_number(struct ctx *x, const struct fl_json *v, double min,
                      double max, const char *unit, double *out)
{
    double d;

    if (v->kind == FL_JSON_INT)
        d = (double)v->u.i;
    else if (v->kind == FL_JSON_DOUBLE)
        d = v->u.d;
    else
        return fail(x, "expected a number of %s, got %s", unit,
                    fl_json_kind_name(v->kind));
    if (!(d >= min && d <= max))
        return fail(x, "expected %g to %g %s, got %g", min, max, unit, d);
    *out = d;
    return 0;
}

static int get_uint(struct ctx *x, const struct fl_json *v, uint64_t min,
                    uint64_t max, const char *unit, uint64_t *out)
{
    if (v->kind == FL_JSON_DOUBLE && v->u.d == floor(v->u.d) &&
        fabs(v->u.d) > 9e18)
        return fail(x, "expected %llu to %llu %s, got %.0f",
                    (unsigned long long)min, (unsigned long long)max, unit,
                    v->u.d);
    if (v->kind != FL_JSON_INT)
        return fail(x, "expected a whole number of %s, got %s", unit,
                    v->kind == FL_JSON_DOUBLE ? "a fraction"
                                              : fl_json_kind_name(v->kind));
    if (v->u.i < 0 || (uint64_t)v->u.i < min || (uint64_t)v->u.i > max)
        return fail(x, "expected %llu to %llu %s, got %lld",
                    (unsigned long long)min, (unsigned long long)max, unit,
                    (long long)v->u.i);
    *out = (uint64_t)v->u.i;
    return 0;
}

static int get_unsigned(struct ctx *x, const struct fl_json *v, unsigned min,
                        unsigned max, const char *unit, unsigned *out)
{
    uint64_t u = 0;
    int rc = get_uint(x, v, min, max, unit, &u);

    if (rc == 0)
        *out = (unsigned)u;
    return rc;
}

static int get_string(struct ctx *x, const struct fl_json *v, char *out,
                      size_t size)
{
    if (v->kind != FL_JSON_STRING)
        return fail(x, "expected a string, got %s", fl_json_kind_name(v->kind));
    if (v->u.s.len >= size)
        return fail(x, "longer than %zu bytes", size - 1);
    if (memchr(v->u.s.ptr, '\0', v->u.s.len) != NULL)
        return fail(x, "contains a NUL character");
    memcpy(out, v->u.s.ptr, v->u.s.len);
    out[v->u.s.len] = '\0';
    return 0;
}

static int get_bool(struct ctx *x, const struct fl_json *v, bool *out)
{
    if (v->kind != FL_JSON_BOOL)
        return fail(x, "expected true or false, got %s",
                    fl_json_kind_name(v->kind));
    *out = v->u.b;
    return 0;
}

/* Looks text up in names[0..n); fails listing the choices. */
static int get_choice(struct ctx *x, const struct fl_json *v,
                      const char *const *names, size_t n, int *out)
{
    char text[64];
    char choices[256] = "";
    int rc = get_string(x, v, text, sizeof(text));

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
        size_t len = strlen(choices);
        snprintf(choices + len, sizeof(choices) - len, "%s%s",
                 i == 0 ? "" : ", ", names[i]);
    }
    return fail(x, "unknown value \"%s\"; expected one of %s", text, choices);
}

static bool key_is(const struct fl_json_member *m, const char *name)
{
    return m->key.len == strlen(name) &&
           memcmp(m->key.ptr, name, m->key.len) == 0;
}

static int unknown(struct ctx *x, const char *allowed)
{
    return fail(x, "unknown field; expected one of %s", allowed);
}

/* Reads an array of names, or one name, into bits: bit i for names[i]. */
static int get_bits(struct ctx *x, const struct fl_json *v,
                    const char *const *names, size_t n, unsigned *out)
{
    int k;
    int rc;

    *out = 0;
    if (v->kind == FL_JSON_STRING) {
        rc = get_choice(x, v, names, n, &k);
        if (rc == 0)
            *out = 1u << k;
        return rc;
    }
    if (v->kind != FL_JSON_ARRAY || v->u.array.count == 0)
        return fail(x, "expected a name or a non-empty array of names, got %s",
                    fl_json_kind_name(v->kind));
    for (size_t i = 0; i < v->u.array.count; i++) {
        size_t mark = push(x, NULL, 0, (long)i);
        rc = get_choice(x, &v->u.array.items[i], names, n, &k);
        if (rc != 0)
            return rc;
        *out |= 1u << k;
        pop(x, mark);
    }
    return 0;
}

/* ---- sections ---------------------------------------------------------- */

static int parse_bugs(struct ctx *x, const struct fl_json *v,
                      struct camp_campaign *c)
{
    if (v->kind != FL_JSON_ARRAY)
        return fail(x, "expected an array of bug names, got %s",
                    fl_json_kind_name(v->kind));
    if (v->u.array.count > CAMP_MAX_BUGS)
        return fail(x, "at most %d bugs", CAMP_MAX_BUGS);
    for (size_t i = 0; i < v->u.array.count; i++) {
        size_t mark = push(x, NULL, 0, (long)i);
        unsigned bit;
        int rc =
            get_string(x, &v->u.array.items[i], c->bugs[i], sizeof(c->bugs[i]));
        if (rc != 0)
            return rc;
        /* The system is known by now: it is read before system_options. */
        if (c->system == CAMP_SYSTEM_RAFT &&
            rft_bug_parse(c->bugs[i], &bit) != 0)
            return fail(x, "unknown fl-raftd bug \"%s\"; expected one of %s",
                        c->bugs[i], rft_bug_names());
        if (c->system == CAMP_SYSTEM_KV && kv_bug_parse(c->bugs[i], &bit) != 0)
            return fail(x, "unknown fl-kvd bug \"%s\"; expected one of %s",
                        c->bugs[i], kv_bug_names());
        pop(x, mark);
    }
    c->n_bugs = v->u.array.count;
    return 0;
}

static int parse_system_options(struct ctx *x, const struct fl_json *v,
                                struct camp_campaign *c)
{
    static const char allowed[] =
        "election_timeout_ms, heartbeat_ms, snapshot_every, inject_bug, "
        "sync, segment_bytes";
    int rc = want_object(x, v);

    for (size_t i = 0; rc == 0 && i < v->u.object.count; i++) {
        const struct fl_json_member *m = &v->u.object.members[i];
        size_t mark = push(x, m->key.ptr, m->key.len, 0);
        enum kv_sync sync;
        unsigned batch_ms;
        if (c->system != CAMP_SYSTEM_RAFT &&
            (key_is(m, "election_timeout_ms") || key_is(m, "heartbeat_ms")))
            rc = fail(x, "only fl-raftd (system \"raft\") takes this option");
        else if (c->system != CAMP_SYSTEM_KV &&
                 (key_is(m, "sync") || key_is(m, "segment_bytes")))
            rc = fail(x, "only fl-kvd (system \"kv\") takes this option");
        else if (key_is(m, "sync")) {
            rc = get_string(x, &m->value, c->sync, sizeof(c->sync));
            if (rc == 0 && (kv_sync_parse(c->sync, &sync, &batch_ms) != 0 ||
                            sync == KV_SYNC_NONE))
                rc = fail(x,
                          "expected \"always\" or \"batch:MS\" with MS from "
                          "1 to 10000, got \"%s\" (\"none\" acknowledges "
                          "writes that are not durable, so no campaign can "
                          "expect it valid)",
                          c->sync);
        } else if (key_is(m, "segment_bytes"))
            rc = get_uint(x, &m->value, 4096, UINT64_C(1) << 40, "bytes",
                          &c->segment_bytes);
        else if (key_is(m, "election_timeout_ms"))
            rc = get_unsigned(x, &m->value, 50, 60000, "milliseconds",
                              &c->election_timeout_ms);
        else if (key_is(m, "heartbeat_ms"))
            rc = get_unsigned(x, &m->value, 10, 60000, "milliseconds",
                              &c->heartbeat_ms);
        else if (key_is(m, "snapshot_every"))
            rc = get_uint(x, &m->value, 0, UINT64_C(1) << 40, "entries",
                          &c->snapshot_every);
        else if (key_is(m, "inject_bug"))
            rc = parse_bugs(x, &m->value, c);
        else
            rc = unknown(x, allowed);
        if (rc == 0)
            pop(x, mark);
    }
    if (rc == 0 && c->heartbeat_ms * 2 > c->election_timeout_ms)
        rc = fail(x,
                  "heartbeat_ms (%u) must be at most half of "
                  "election_timeout_ms (%u)",
                  c->heartbeat_ms, c->election_timeout_ms);
    return rc;
}

static int parse_mix(struct ctx *x, const struct fl_json *v,
                     struct camp_campaign *c)
{
    int rc = want_object(x, v);

    c->mix_read = c->mix_write = c->mix_cas = 0;
    for (size_t i = 0; rc == 0 && i < v->u.object.count; i++) {
        const struct fl_json_member *m = &v->u.object.members[i];
        size_t mark = push(x, m->key.ptr, m->key.len, 0);
        if (key_is(m, "read"))
            rc = get_number(x, &m->value, 0, 1e6, "(a weight)", &c->mix_read);
        else if (key_is(m, "write"))
            rc = get_number(x, &m->value, 0, 1e6, "(a weight)", &c->mix_write);
        else if (key_is(m, "cas"))
            rc = get_number(x, &m->value, 0, 1e6, "(a weight)", &c->mix_cas);
        else
            rc = unknown(x, "read, write, cas");
        if (rc == 0)
            pop(x, mark);
    }
    if (rc == 0 && c->mix_read + c->mix_write + c->mix_cas <= 0)
        rc = fail(x, "at least one weight must be above 0");
    if (rc == 0 && c->mix_write + c->mix_cas <= 0)
        rc = fail(x, "a register workload needs writes: give write or cas a "
                     "weight above 0");
    return rc;
}

static int parse_workload(struct ctx *x, const struct fl_json *v,
                          struct camp_campaign *c)
{
    static const char allowed[] = "kind, keys, concurrency, rate, mix, "
                                  "value_max, value_bytes, timeout_ms, reads, "
                                  "final_read_s";
    static const char *const kinds[] = {"register"};
    static const char *const reads[] = {"leader", "any"};
    int rc = want_object(x, v);
    int kind;

    for (size_t i = 0; rc == 0 && i < v->u.object.count; i++) {
        const struct fl_json_member *m = &v->u.object.members[i];
        size_t mark = push(x, m->key.ptr, m->key.len, 0);
        if (key_is(m, "kind"))
            rc = get_choice(x, &m->value, kinds, 1, &kind);
        else if (key_is(m, "keys"))
            rc = get_unsigned(x, &m->value, 1, 1000, "keys", &c->keys);
        else if (key_is(m, "concurrency"))
            rc = get_unsigned(x, &m->value, 1, 256, "clients", &c->concurrency);
        else if (key_is(m, "rate"))
            rc = get_number(x, &m->value, 0, 1e6, "operations per second",
                            &c->rate);
        else if (key_is(m, "mix"))
            rc = parse_mix(x, &m->value, c);
        else if (key_is(m, "value_bytes"))
            rc = get_unsigned(x, &m->value, 0, 4096, "bytes", &c->value_bytes);
        else if (key_is(m, "value_max"))
            rc = get_unsigned(x, &m->value, 0, 1000000000, "(0: unique)",
                              &c->value_max);
        else if (key_is(m, "timeout_ms"))
            rc = get_unsigned(x, &m->value, 10, 600000, "milliseconds",
                              &c->timeout_ms);
        else if (key_is(m, "final_read_s"))
            rc = get_number(x, &m->value, 1, 3600, "seconds", &c->final_read_s);
        else if (key_is(m, "reads")) {
            rc = get_choice(x, &m->value, reads, 2, &kind);
            if (rc == 0)
                c->reads_anywhere = kind == 1;
        } else
            rc = unknown(x, allowed);
        if (rc == 0)
            pop(x, mark);
    }
    return rc;
}

static int parse_targets(struct ctx *x, const struct fl_json *v,
                         const struct camp_campaign *c, struct camp_fault *f)
{
    int t;

    if (v->kind == FL_JSON_ARRAY) {
        if (v->u.array.count == 0 || v->u.array.count > c->nodes)
            return fail(x, "expected 1 to %u node ids", c->nodes);
        for (size_t i = 0; i < v->u.array.count; i++) {
            size_t mark = push(x, NULL, 0, (long)i);
            int rc = get_unsigned(x, &v->u.array.items[i], 1, c->nodes,
                                  "(a node id)", &f->list[i]);
            if (rc != 0)
                return rc;
            for (size_t k = 0; k < i; k++)
                if (f->list[k] == f->list[i])
                    return fail(x, "node %u is listed twice", f->list[i]);
            pop(x, mark);
        }
        f->list_len = v->u.array.count;
        f->targets = CAMP_TARGET_LIST;
        return 0;
    }
    if (v->kind != FL_JSON_STRING)
        return fail(x,
                    "expected one, minority, majority, all, primary or an "
                    "array of node ids, got %s",
                    fl_json_kind_name(v->kind));
    int rc = get_choice(x, v, target_names, CAMP_TARGET_LIST, &t);
    if (rc == 0)
        f->targets = (enum camp_targets)t;
    return rc;
}

static int parse_fault(struct ctx *x, const struct fl_json *v,
                       const struct camp_campaign *c, struct camp_fault *f)
{
    static const char allowed[] =
        "kind, targets, weight, probability, delay_ms, optional, pattern, "
        "nth_max, tear, ops, when, power_loss, untouched_s";
    bool armed_field = false;
    bool have_tear = false;
    bool have_crash = false;
    bool have_pattern = false;
    bool have_untouched = false;
    bool have_kind = false;
    bool have_targets = false;
    int kind;
    int rc;

    memset(f, 0, sizeof(*f));
    f->weight = 1;
    f->probability = 0.2;
    f->delay_ms = 50;
    f->targets = CAMP_TARGET_ONE;
    f->nth_max = 0; /* set from the kind below */
    f->tear = CAMP_TEAR_PREFIX | CAMP_TEAR_SECTORS;
    f->ops = CAMP_OP_FSYNC | CAMP_OP_RENAME | CAMP_OP_UNLINK;
    f->when = CAMP_WHEN_BEFORE | CAMP_WHEN_AFTER;
    f->power_loss = true;
    f->untouched_s = 2;
    if (v->kind == FL_JSON_STRING) {
        rc = get_choice(x, v, fault_names, CAMP_FAULT__COUNT, &kind);
        f->kind = (enum camp_fault_kind)kind;
        have_kind = rc == 0;
    } else {
        rc = want_object(x, v);
        for (size_t i = 0; rc == 0 && i < v->u.object.count; i++) {
            const struct fl_json_member *m = &v->u.object.members[i];
            size_t mark = push(x, m->key.ptr, m->key.len, 0);
            if (key_is(m, "kind")) {
                rc = get_choice(x, &m->value, fault_names, CAMP_FAULT__COUNT,
                                &kind);
                f->kind = (enum camp_fault_kind)kind;
                have_kind = true;
            } else if (key_is(m, "targets")) {
                rc = parse_targets(x, &m->value, c, f);
                have_targets = true;
            } else if (key_is(m, "weight")) {
                rc = get_number(x, &m->value, 0.001, 1e6, "(a weight)",
                                &f->weight);
            } else if (key_is(m, "probability")) {
                rc = get_number(x, &m->value, 0.001, 1, "(a probability)",
                                &f->probability);
            } else if (key_is(m, "delay_ms")) {
                rc = get_unsigned(x, &m->value, 1, 60000, "milliseconds",
                                  &f->delay_ms);
            } else if (key_is(m, "optional")) {
                rc = get_bool(x, &m->value, &f->optional);
            } else if (key_is(m, "pattern")) {
                rc = get_string(x, &m->value, f->pattern, sizeof(f->pattern));
                if (rc == 0 && (f->pattern[0] == '/' ||
                                strncmp(f->pattern, "../", 3) == 0 ||
                                strstr(f->pattern, "/../") != NULL ||
                                strcmp(f->pattern, "..") == 0))
                    rc = fail(x,
                              "\"%s\" can match nothing: patterns match paths "
                              "relative to the data directory, such as "
                              "\"wal-*.log\"",
                              f->pattern);
                have_pattern = true;
            } else if (key_is(m, "untouched_s")) {
                rc = get_number(x, &m->value, 0, 3600, "seconds",
                                &f->untouched_s);
                have_untouched = true;
            } else if (key_is(m, "nth_max")) {
                rc =
                    get_unsigned(x, &m->value, 1, 100000, "calls", &f->nth_max);
                armed_field = true;
            } else if (key_is(m, "tear")) {
                rc = get_bits(x, &m->value, tear_names, 2, &f->tear);
                have_tear = true;
            } else if (key_is(m, "ops")) {
                rc = get_bits(x, &m->value, op_names, 3, &f->ops);
                have_crash = true;
            } else if (key_is(m, "when")) {
                rc = get_bits(x, &m->value, when_names, 2, &f->when);
                have_crash = true;
            } else if (key_is(m, "power_loss")) {
                rc = get_bool(x, &m->value, &f->power_loss);
                have_crash = true;
            } else {
                rc = unknown(x, allowed);
            }
            if (rc == 0)
                pop(x, mark);
        }
        if (rc == 0 && !have_kind)
            return fail(x, "missing field \"kind\"");
    }
    if (rc != 0)
        return rc;
    if (f->nth_max == 0)
        f->nth_max =
            f->kind == CAMP_FAULT_TORN_WRITE || f->kind == CAMP_FAULT_CRASH_AT
                ? 20
                : 1;
    if (armed_field && !camp_fault_is_armed(f->kind))
        return fail(x,
                    "nth_max aims the faults armed on calls (fsync-eio, "
                    "write-eio, write-enospc, torn-write, crash-at), not %s",
                    fault_names[f->kind]);
    if (have_pattern && !camp_fault_is_armed(f->kind) &&
        f->kind != CAMP_FAULT_CORRUPT)
        return fail(x,
                    "pattern aims the faults armed on calls and corrupt, "
                    "not %s",
                    fault_names[f->kind]);
    if (have_untouched && f->kind != CAMP_FAULT_CORRUPT)
        return fail(x, "untouched_s applies to corrupt only");
    if (have_tear && f->kind != CAMP_FAULT_TORN_WRITE)
        return fail(x, "tear applies to torn-write only");
    if (have_crash && f->kind != CAMP_FAULT_CRASH_AT)
        return fail(x, "ops, when and power_loss apply to crash-at only");
    if (have_targets && !camp_fault_has_targets(f->kind))
        return fail(x, "%s chooses its own nodes and takes no targets",
                    fault_names[f->kind]);
    if (camp_fault_is_network(f->kind) && c->system == CAMP_SYSTEM_KV)
        return fail(x,
                    "%s is a network fault, and system \"kv\" is one node "
                    "with no peers to cut off",
                    fault_names[f->kind]);
    if (camp_fault_is_network(f->kind) && c->nodes < 2)
        return fail(x, "%s needs at least 2 nodes", fault_names[f->kind]);
    if (f->kind == CAMP_FAULT_BRIDGE && c->nodes < 3)
        return fail(x, "bridge needs at least 3 nodes");
    if (f->kind == CAMP_FAULT_MAJORITY_RING && c->nodes < 4)
        return fail(x, "majority-ring needs at least 4 nodes: with 3, "
                       "every majority sees every node");
    return 0;
}

static int parse_nemesis(struct ctx *x, const struct fl_json *v,
                         struct camp_campaign *c)
{
    static const char allowed[] = "faults, interval_s, fault_duration_s, "
                                  "restart_delay_s, start_s, quiet_s";
    int rc = want_object(x, v);

    for (size_t i = 0; rc == 0 && i < v->u.object.count; i++) {
        const struct fl_json_member *m = &v->u.object.members[i];
        size_t mark = push(x, m->key.ptr, m->key.len, 0);
        if (key_is(m, "faults")) {
            if (m->value.kind != FL_JSON_ARRAY) {
                rc = fail(x, "expected an array of faults, got %s",
                          fl_json_kind_name(m->value.kind));
            } else if (m->value.u.array.count > CAMP_MAX_FAULTS) {
                rc = fail(x, "at most %d faults", CAMP_MAX_FAULTS);
            } else {
                for (size_t k = 0; rc == 0 && k < m->value.u.array.count; k++) {
                    size_t inner = push(x, NULL, 0, (long)k);
                    rc = parse_fault(x, &m->value.u.array.items[k], c,
                                     &c->faults[k]);
                    if (rc == 0)
                        pop(x, inner);
                }
                c->n_faults = m->value.u.array.count;
            }
        } else if (key_is(m, "interval_s")) {
            rc = get_number(x, &m->value, 0.1, 3600, "seconds", &c->interval_s);
        } else if (key_is(m, "fault_duration_s")) {
            rc = get_number(x, &m->value, 0.1, 3600, "seconds",
                            &c->fault_duration_s);
        } else if (key_is(m, "restart_delay_s")) {
            rc = get_number(x, &m->value, 0, 3600, "seconds",
                            &c->restart_delay_s);
        } else if (key_is(m, "start_s")) {
            rc = get_number(x, &m->value, 0, 3600, "seconds", &c->start_s);
        } else if (key_is(m, "quiet_s")) {
            rc = get_number(x, &m->value, 0, 3600, "seconds", &c->quiet_s);
        } else {
            rc = unknown(x, allowed);
        }
        if (rc == 0)
            pop(x, mark);
    }
    return rc;
}

static int parse_checkers(struct ctx *x, const struct fl_json *v,
                          struct camp_campaign *c)
{
    int rc = want_object(x, v);

    for (size_t i = 0; rc == 0 && i < v->u.object.count; i++) {
        const struct fl_json_member *m = &v->u.object.members[i];
        size_t mark = push(x, m->key.ptr, m->key.len, 0);
        if (key_is(m, "time_limit_s"))
            rc = get_number(x, &m->value, 1, 86400, "seconds",
                            &c->check_time_limit_s);
        else if (key_is(m, "memory_mib"))
            rc = get_unsigned(x, &m->value, 16, 1 << 20, "MiB",
                              &c->check_memory_mib);
        else
            rc = unknown(x, "time_limit_s, memory_mib");
        if (rc == 0)
            pop(x, mark);
    }
    return rc;
}

static void defaults(struct camp_campaign *c)
{
    memset(c, 0, sizeof(*c));
    c->nodes = 0; /* set from the system */
    c->network = CAMP_NETWORK_AUTO;
    c->election_timeout_ms = 500;
    c->heartbeat_ms = 50;
    c->snapshot_every = 1000;
    c->keys = 4;
    c->concurrency = 8;
    c->rate = 200;
    c->mix_read = 0.5;
    c->mix_write = 0.3;
    c->mix_cas = 0.2;
    c->value_max = 0;
    c->timeout_ms = 2000;
    c->reads_anywhere = true;
    c->final_read_s = 20;
    c->interval_s = 5;
    c->fault_duration_s = 4;
    c->restart_delay_s = 1;
    c->start_s = 2;
    c->quiet_s = 5;
    c->check_time_limit_s = 120;
    c->check_memory_mib = 2048;
}

/* Reads the top-level fields in an order where system comes first, so the
 * sections below it can check against it. */
static int parse_root(struct ctx *x, const struct fl_json *root,
                      struct camp_campaign *c)
{
    static const char allowed[] =
        "name, description, system, nodes, duration_s, seed, expect, "
        "detect_within_seeds, network, system_options, workload, nemesis, "
        "checkers";
    static const char *const systems[] = {"raft", "kv"};
    static const char *const expects[] = {"valid", "invalid"};
    static const char *const networks[] = {"auto", "namespaces", "loopback"};
    const struct fl_json *v;
    int choice;
    int rc;

    defaults(c);
    if (root->kind != FL_JSON_OBJECT)
        return fail(x, "expected a JSON object, got %s",
                    fl_json_kind_name(root->kind));
    rc = want_object(x, root);
    if (rc != 0)
        return rc;
    /* Before the field check, which would reject the simulator's fields
     * one at a time and never say why. */
    v = fl_json_get(root, "system");
    if (v != NULL && v->kind == FL_JSON_STRING &&
        fl_str_eq(v->u.s, "raft-sim")) {
        strcpy(x->path, "system");
        return fail(x,
                    "\"raft-sim\" campaigns run in the simulator, not on a "
                    "real cluster; run them with 'faultline sweep %s --seeds "
                    "A..B'",
                    x->file);
    }
    for (size_t i = 0; i < root->u.object.count; i++) {
        const struct fl_json_member *m = &root->u.object.members[i];
        static const char *const known[] = {
            "name",       "description",    "system",   "nodes",
            "duration_s", "seed",           "expect",   "detect_within_seeds",
            "network",    "system_options", "workload", "nemesis",
            "checkers",
        };
        bool ok = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok = ok || key_is(m, known[k]);
        if (!ok) {
            push(x, m->key.ptr, m->key.len, 0);
            return unknown(x, allowed);
        }
    }
    if ((v = fl_json_get(root, "name")) == NULL)
        return fail(x, "missing field \"name\"");
    strcpy(x->path, "name");
    if ((rc = get_string(x, v, c->name, sizeof(c->name))) != 0)
        return rc;
    for (const char *p = c->name; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-'))
            return fail(x, "\"%s\": use only a-z, 0-9 and '-'", c->name);
    if (c->name[0] == '\0')
        return fail(x, "must not be empty");
    if ((v = fl_json_get(root, "description")) != NULL) {
        strcpy(x->path, "description");
        if ((rc = get_string(x, v, c->description, sizeof(c->description))))
            return rc;
    }
    x->path[0] = '\0';
    if ((v = fl_json_get(root, "system")) == NULL)
        return fail(x, "missing field \"system\" (\"raft\" or \"kv\")");
    strcpy(x->path, "system");
    if ((rc = get_choice(x, v, systems, 2, &choice)) != 0)
        return rc;
    c->system = (enum camp_system)choice;
    c->nodes = c->system == CAMP_SYSTEM_RAFT ? 5 : 1;
    if ((v = fl_json_get(root, "nodes")) != NULL) {
        strcpy(x->path, "nodes");
        if (c->system == CAMP_SYSTEM_KV)
            rc =
                get_unsigned(x, v, 1, 1, "node (fl-kvd runs alone)", &c->nodes);
        else
            rc = get_unsigned(x, v, 1, CAMP_MAX_NODES, "nodes", &c->nodes);
        if (rc != 0)
            return rc;
    }
    x->path[0] = '\0';
    if ((v = fl_json_get(root, "duration_s")) == NULL)
        return fail(x, "missing field \"duration_s\"");
    strcpy(x->path, "duration_s");
    if ((rc = get_number(x, v, 1, 86400, "seconds", &c->duration_s)) != 0)
        return rc;
    if ((v = fl_json_get(root, "seed")) != NULL) {
        strcpy(x->path, "seed");
        if ((rc = get_uint(x, v, 0, INT64_MAX, "(a seed)", &c->seed)) != 0)
            return rc;
        c->has_seed = true;
    }
    if ((v = fl_json_get(root, "expect")) != NULL) {
        strcpy(x->path, "expect");
        if ((rc = get_choice(x, v, expects, 2, &choice)) != 0)
            return rc;
        c->expect_invalid = choice == 1;
    }
    if ((v = fl_json_get(root, "detect_within_seeds")) != NULL) {
        strcpy(x->path, "detect_within_seeds");
        if (!c->expect_invalid)
            return fail(x, "only a campaign with \"expect\": \"invalid\" "
                           "has seeds to detect within");
        if ((rc = get_unsigned(x, v, 1, 100000, "seeds", &c->detect_within)))
            return rc;
    }
    if ((v = fl_json_get(root, "network")) != NULL) {
        strcpy(x->path, "network");
        if ((rc = get_choice(x, v, networks, 3, &choice)) != 0)
            return rc;
        c->network = (enum camp_network)choice;
    }
    if ((v = fl_json_get(root, "system_options")) != NULL) {
        strcpy(x->path, "system_options");
        if ((rc = parse_system_options(x, v, c)) != 0)
            return rc;
    }
    if ((v = fl_json_get(root, "workload")) == NULL) {
        x->path[0] = '\0';
        return fail(x, "missing field \"workload\"");
    }
    strcpy(x->path, "workload");
    if ((rc = parse_workload(x, v, c)) != 0)
        return rc;
    if ((v = fl_json_get(root, "nemesis")) != NULL) {
        strcpy(x->path, "nemesis");
        if ((rc = parse_nemesis(x, v, c)) != 0)
            return rc;
    }
    if ((v = fl_json_get(root, "checkers")) != NULL) {
        strcpy(x->path, "checkers");
        if ((rc = parse_checkers(x, v, c)) != 0)
            return rc;
    }
    x->path[0] = '\0';
    if (c->expect_invalid && c->n_bugs == 0)
        return fail(x, "\"expect\": \"invalid\" needs a planted bug in "
                       "system_options.inject_bug");
    if (c->quiet_s + c->start_s >= c->duration_s && c->n_faults > 0)
        return fail(x,
                    "duration_s (%g) leaves no time for faults after "
                    "nemesis.start_s (%g) and before nemesis.quiet_s (%g)",
                    c->duration_s, c->start_s, c->quiet_s);
    return 0;
}

int camp_parse(const char *name, const char *text, size_t len,
               struct camp_campaign *c, char *err, size_t err_size)
{
    struct ctx x = {.file = name, .err = err, .err_size = err_size};
    struct fl_arena arena;
    struct fl_json root;
    const char *why;
    size_t where;
    int rc;

    fl_arena_init(&arena, 0, NULL);
    rc = fl_json_parse(&arena, text, len, &root, &why, &where);
    if (rc == FL_EINPUT) {
        size_t line = 1;
        size_t col = 1;
        for (size_t i = 0; i < where && i < len; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        snprintf(err, err_size, "%s:%zu:%zu: invalid JSON: %s", name, line, col,
                 why);
        rc = RUN_EXIT_USAGE;
    } else if (rc != 0) {
        snprintf(err, err_size, "%s: cannot parse: %s", name, fl_strerror(rc));
        rc = RUN_EXIT_INFRA;
    } else {
        rc = parse_root(&x, &root, c);
    }
    fl_arena_destroy(&arena);
    return rc;
}

int camp_load(const char *path, struct camp_campaign *c, char *err,
              size_t err_size)
{
    struct fl_buf text;
    char chunk[16384];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return RUN_EXIT_USAGE;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        snprintf(err, err_size, "%s: is a directory, expected a campaign file",
                 path);
        return RUN_EXIT_USAGE;
    }
    fl_buf_init(&text);
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, err_size, "%s: cannot read: %s", path,
                     strerror(errno));
            rc = RUN_EXIT_USAGE;
            break;
        }
        if (got == 0)
            break;
        if (text.len + (size_t)got > CAMPAIGN_MAX_BYTES) {
            snprintf(err, err_size, "%s: larger than 1 MiB; not a campaign",
                     path);
            rc = RUN_EXIT_USAGE;
            break;
        }
        fl_buf_add(&text, chunk, (size_t)got);
    }
    close(fd);
    if (rc == 0 && text.failed) {
        snprintf(err, err_size, "%s: out of memory", path);
        rc = RUN_EXIT_INFRA;
    }
    if (rc == 0)
        rc = camp_parse(path, text.data != NULL ? text.data : "", text.len, c,
                        err, err_size);
    fl_buf_free(&text);
    return rc;
}

/* ---- the resolved form ------------------------------------------------- */

static void add_number(struct fl_buf *b, const char *key, double v, bool comma)
{
    fl_buf_printf(b, "%s\"%s\":%.15g", comma ? "," : "", key, v);
}

static void add_bits(struct fl_buf *b, const char *field,
                     const char *const *names, size_t n, unsigned bits)
{
    bool first = true;

    fl_buf_printf(b, ",\"%s\":[", field);
    for (size_t i = 0; i < n; i++) {
        if (bits & (1u << i)) {
            fl_buf_printf(b, "%s\"%s\"", first ? "" : ",", names[i]);
            first = false;
        }
    }
    fl_buf_addc(b, ']');
}

void camp_write(const struct camp_campaign *c, struct fl_buf *b)
{
    static const char *const networks[] = {"auto", "namespaces", "loopback"};

    fl_buf_adds(b, "{\"name\":");
    fl_buf_add_json_string(b, c->name, strlen(c->name));
    if (c->description[0] != '\0') {
        fl_buf_adds(b, ",\"description\":");
        fl_buf_add_json_string(b, c->description, strlen(c->description));
    }
    fl_buf_printf(b, ",\"system\":\"%s\",\"nodes\":%u",
                  camp_system_name(c->system), c->nodes);
    add_number(b, "duration_s", c->duration_s, true);
    if (c->has_seed)
        fl_buf_printf(b, ",\"seed\":%llu", (unsigned long long)c->seed);
    fl_buf_printf(b, ",\"expect\":\"%s\"",
                  c->expect_invalid ? "invalid" : "valid");
    if (c->detect_within != 0)
        fl_buf_printf(b, ",\"detect_within_seeds\":%u", c->detect_within);
    fl_buf_printf(b, ",\"network\":\"%s\"", networks[c->network]);
    fl_buf_adds(b, ",\"system_options\":{");
    if (c->system == CAMP_SYSTEM_RAFT)
        fl_buf_printf(b,
                      "\"election_timeout_ms\":%u,\"heartbeat_ms\":%u,"
                      "\"snapshot_every\":%llu,",
                      c->election_timeout_ms, c->heartbeat_ms,
                      (unsigned long long)c->snapshot_every);
    if (c->system == CAMP_SYSTEM_KV) {
        fl_buf_printf(b, "\"snapshot_every\":%llu,\"sync\":\"%s\",",
                      (unsigned long long)c->snapshot_every,
                      c->sync[0] ? c->sync : "always");
        if (c->segment_bytes != 0)
            fl_buf_printf(b, "\"segment_bytes\":%llu,",
                          (unsigned long long)c->segment_bytes);
    }
    fl_buf_adds(b, "\"inject_bug\":[");
    for (size_t i = 0; i < c->n_bugs; i++) {
        if (i > 0)
            fl_buf_addc(b, ',');
        fl_buf_add_json_string(b, c->bugs[i], strlen(c->bugs[i]));
    }
    fl_buf_printf(b,
                  "]},\"workload\":{\"kind\":\"register\",\"keys\":%u,"
                  "\"concurrency\":%u",
                  c->keys, c->concurrency);
    add_number(b, "rate", c->rate, true);
    fl_buf_adds(b, ",\"mix\":{");
    add_number(b, "read", c->mix_read, false);
    add_number(b, "write", c->mix_write, true);
    add_number(b, "cas", c->mix_cas, true);
    fl_buf_printf(b,
                  "},\"value_max\":%u,\"value_bytes\":%u,\"timeout_ms\":%u,"
                  "\"reads\":\"%s\"",
                  c->value_max, c->value_bytes, c->timeout_ms,
                  c->reads_anywhere ? "any" : "leader");
    add_number(b, "final_read_s", c->final_read_s, true);
    fl_buf_adds(b, "},\"nemesis\":{\"faults\":[");
    for (size_t i = 0; i < c->n_faults; i++) {
        const struct camp_fault *f = &c->faults[i];
        fl_buf_printf(b, "%s{\"kind\":\"%s\"", i ? "," : "",
                      fault_names[f->kind]);
        /* Partitions that draw their own nodes have no targets. */
        if (camp_fault_has_targets(f->kind) && f->targets == CAMP_TARGET_LIST) {
            fl_buf_adds(b, ",\"targets\":[");
            for (size_t k = 0; k < f->list_len; k++)
                fl_buf_printf(b, "%s%u", k ? "," : "", f->list[k]);
            fl_buf_addc(b, ']');
        } else if (camp_fault_has_targets(f->kind)) {
            fl_buf_printf(b, ",\"targets\":\"%s\"", target_names[f->targets]);
        }
        add_number(b, "weight", f->weight, true);
        if (f->kind == CAMP_FAULT_LOSS)
            add_number(b, "probability", f->probability, true);
        if (f->kind == CAMP_FAULT_DELAY)
            fl_buf_printf(b, ",\"delay_ms\":%u,\"optional\":%s", f->delay_ms,
                          f->optional ? "true" : "false");
        if (camp_fault_is_armed(f->kind)) {
            fl_buf_adds(b, ",\"pattern\":");
            fl_buf_add_json_string(b, f->pattern, strlen(f->pattern));
            fl_buf_printf(b, ",\"nth_max\":%u", f->nth_max);
        }
        if (f->kind == CAMP_FAULT_CORRUPT) {
            fl_buf_adds(b, ",\"pattern\":");
            fl_buf_add_json_string(b, f->pattern, strlen(f->pattern));
            add_number(b, "untouched_s", f->untouched_s, true);
        }
        if (f->kind == CAMP_FAULT_TORN_WRITE)
            add_bits(b, "tear", tear_names, 2, f->tear);
        if (f->kind == CAMP_FAULT_CRASH_AT) {
            add_bits(b, "ops", op_names, 3, f->ops);
            add_bits(b, "when", when_names, 2, f->when);
            fl_buf_printf(b, ",\"power_loss\":%s",
                          f->power_loss ? "true" : "false");
        }
        fl_buf_addc(b, '}');
    }
    fl_buf_addc(b, ']');
    add_number(b, "interval_s", c->interval_s, true);
    add_number(b, "fault_duration_s", c->fault_duration_s, true);
    add_number(b, "restart_delay_s", c->restart_delay_s, true);
    add_number(b, "start_s", c->start_s, true);
    add_number(b, "quiet_s", c->quiet_s, true);
    fl_buf_adds(b, "},\"checkers\":{");
    add_number(b, "time_limit_s", c->check_time_limit_s, false);
    fl_buf_printf(b, ",\"memory_mib\":%u}}", c->check_memory_mib);
}

const char *camp_fault_name(enum camp_fault_kind kind)
{
    return kind < CAMP_FAULT__COUNT ? fault_names[kind] : "?";
}

const char *camp_targets_name(enum camp_targets t)
{
    return t <= CAMP_TARGET_LIST ? target_names[t] : "?";
}

const char *camp_system_name(enum camp_system s)
{
    return s == CAMP_SYSTEM_RAFT ? "raft" : "kv";
}

bool camp_fault_has_targets(enum camp_fault_kind kind)
{
    return kind != CAMP_FAULT_HALVES && kind != CAMP_FAULT_MAJORITY_RING &&
           kind != CAMP_FAULT_BRIDGE && kind != CAMP_FAULT_ISOLATE_PRIMARY;
}

bool camp_fault_is_network(enum camp_fault_kind kind)
{
    return kind != CAMP_FAULT_KILL && kind != CAMP_FAULT_PAUSE &&
           !camp_fault_is_disk(kind);
}

bool camp_fault_is_disk(enum camp_fault_kind kind)
{
    return kind == CAMP_FAULT_LOSE_UNSYNCED || kind == CAMP_FAULT_TORN_SEQ ||
           kind == CAMP_FAULT_CORRUPT || camp_fault_is_armed(kind);
}

bool camp_fault_is_armed(enum camp_fault_kind kind)
{
    return kind == CAMP_FAULT_FSYNC_EIO || kind == CAMP_FAULT_WRITE_EIO ||
           kind == CAMP_FAULT_WRITE_ENOSPC || kind == CAMP_FAULT_TORN_WRITE ||
           kind == CAMP_FAULT_CRASH_AT;
}

bool camp_fault_is_crash(enum camp_fault_kind kind)
{
    return kind == CAMP_FAULT_KILL || kind == CAMP_FAULT_LOSE_UNSYNCED ||
           kind == CAMP_FAULT_TORN_SEQ || kind == CAMP_FAULT_CORRUPT ||
           camp_fault_is_armed(kind);
}

bool camp_has_disk_faults(const struct camp_campaign *c)
{
    for (size_t i = 0; i < c->n_faults; i++)
        if (camp_fault_is_disk(c->faults[i].kind))
            return true;
    return false;
}
