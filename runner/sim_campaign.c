/*
 * Simulator campaign files: strict parsing, and the command line of one
 * seed's run. The ranges match the options of `faultline sim raft`
 * (runner/cmd_sim.c), so a file that loads here never makes the
 * simulator fail with a usage error.
 */
#include "sim_campaign.h"
#include "cli.h"
#include "sweep.h"

#include "arena.h"
#include "json.h"
#include "raft.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_CAMPAIGN_MAX_BYTES (1u << 20)

static const char *const fault_names[] = {
    "partition", "crash", "torn", "drop", "duplicate", "delay",
};

struct reader {
    const char *file;
    const char *field; /* the member being read, or NULL */
    char *err;
    size_t err_size;
};

static int invalid(struct reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int invalid(struct reader *r, const char *fmt, ...)
{
    char why[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (r->field != NULL)
        snprintf(r->err, r->err_size, "%s: %s: %s", r->file, r->field, why);
    else
        snprintf(r->err, r->err_size, "%s: %s", r->file, why);
    return RUN_EXIT_USAGE;
}

static int read_whole(struct reader *r, const struct fl_json *v, uint64_t min,
                      uint64_t max, const char *unit, unsigned *out)
{
    if (v->kind != FL_JSON_INT)
        return invalid(r, "expected a whole number of %s, got %s", unit,
                       v->kind == FL_JSON_DOUBLE ? "a fraction"
                                                 : fl_json_kind_name(v->kind));
    if (v->u.i < 0 || (uint64_t)v->u.i < min || (uint64_t)v->u.i > max)
        return invalid(r,
                       "expected %" PRIu64 " to %" PRIu64 " %s, got %" PRId64,
                       min, max, unit, v->u.i);
    *out = (unsigned)v->u.i;
    return 0;
}

/* A whole number of milliseconds in steps of the simulator's 10 ms tick. */
static int read_ms(struct reader *r, const struct fl_json *v, unsigned *out)
{
    int rc = read_whole(r, v, 10, 100000000, "milliseconds", out);

    if (rc == 0 && *out % 10 != 0)
        return invalid(r,
                       "expected a multiple of 10 milliseconds (the "
                       "simulator's tick), got %u",
                       *out);
    return rc;
}

static int read_text(struct reader *r, const struct fl_json *v, char *out,
                     size_t size)
{
    if (v->kind != FL_JSON_STRING)
        return invalid(r, "expected a string, got %s",
                       fl_json_kind_name(v->kind));
    if (v->u.s.len >= size)
        return invalid(r, "longer than %zu bytes", size - 1);
    if (memchr(v->u.s.ptr, '\0', v->u.s.len) != NULL)
        return invalid(r, "contains a NUL character");
    memcpy(out, v->u.s.ptr, v->u.s.len);
    out[v->u.s.len] = '\0';
    return 0;
}

/* Reads a list of fault names into the comma-separated form of --faults;
 * an empty list is "none". */
static int read_faults(struct reader *r, const struct fl_json *v,
                       struct run_sim_campaign *c)
{
    bool seen[sizeof(fault_names) / sizeof(fault_names[0])] = {false};
    size_t len = 0;

    if (v->kind != FL_JSON_ARRAY)
        return invalid(r,
                       "expected an array of fault names (partition, crash, "
                       "torn, drop, duplicate, delay), got %s",
                       fl_json_kind_name(v->kind));
    for (size_t i = 0; i < v->u.array.count; i++) {
        const struct fl_json *item = &v->u.array.items[i];
        size_t k = 0;
        char name[32];
        int rc = read_text(r, item, name, sizeof(name));
        if (rc != 0)
            return rc;
        while (k < sizeof(seen) && strcmp(name, fault_names[k]) != 0)
            k++;
        if (k == sizeof(seen))
            return invalid(r,
                           "unknown fault \"%s\" at [%zu]; expected "
                           "partition, crash, torn, drop, duplicate or delay",
                           name, i);
        if (seen[k])
            return invalid(r, "fault \"%s\" is listed twice", name);
        seen[k] = true;
        len += (size_t)snprintf(c->faults + len, sizeof(c->faults) - len,
                                "%s%s", len > 0 ? "," : "", name);
    }
    if (v->u.array.count == 0)
        snprintf(c->faults, sizeof(c->faults), "none");
    if (seen[2] && !seen[1])
        return invalid(r, "the torn fault needs the crash fault");
    return 0;
}

static int read_bugs(struct reader *r, const struct fl_json *v,
                     struct run_sim_campaign *c)
{
    if (v->kind != FL_JSON_ARRAY)
        return invalid(r, "expected an array of bug names, got %s",
                       fl_json_kind_name(v->kind));
    if (v->u.array.count > RUN_SIM_MAX_BUGS)
        return invalid(r, "at most %d bugs", RUN_SIM_MAX_BUGS);
    for (size_t i = 0; i < v->u.array.count; i++) {
        unsigned bit;
        int rc =
            read_text(r, &v->u.array.items[i], c->bugs[i], sizeof(c->bugs[i]));
        if (rc != 0)
            return rc;
        if (rft_bug_parse(c->bugs[i], &bit) != 0)
            return invalid(r, "unknown Raft bug \"%s\"; expected one of %s",
                           c->bugs[i], rft_bug_names());
    }
    c->n_bugs = v->u.array.count;
    return 0;
}

/* Reads one member of the top-level object. */
static int read_member(struct reader *r, const struct fl_json_member *m,
                       struct run_sim_campaign *c)
{
    static const char allowed[] =
        "name, description, system, nodes, time_s, faults, fault_every_ms, "
        "max_down_ms, drop, clients, snapshot_every, inject_bug, expect, "
        "detect_within_seeds";
    const struct fl_json *v = &m->value;
    char text[64];
    int rc;

    if (fl_str_eq(m->key, "name")) {
        rc = read_text(r, v, c->name, sizeof(c->name));
        if (rc == 0 && c->name[0] == '\0')
            return invalid(r, "must not be empty");
        if (rc == 0 &&
            strspn(c->name, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
                strlen(c->name))
            return invalid(r, "\"%s\": use only a-z, 0-9 and '-'", c->name);
        return rc;
    }
    if (fl_str_eq(m->key, "description"))
        return read_text(r, v, c->description, sizeof(c->description));
    if (fl_str_eq(m->key, "system"))
        return 0; /* "raft-sim", or this file would not be read here */
    if (fl_str_eq(m->key, "nodes"))
        return read_whole(r, v, 1, RFT_MAX_NODES, "nodes", &c->nodes);
    if (fl_str_eq(m->key, "time_s"))
        return read_whole(r, v, 1, 3600, "virtual seconds", &c->time_s);
    if (fl_str_eq(m->key, "faults"))
        return read_faults(r, v, c);
    if (fl_str_eq(m->key, "fault_every_ms"))
        return read_ms(r, v, &c->fault_every_ms);
    if (fl_str_eq(m->key, "max_down_ms"))
        return read_ms(r, v, &c->max_down_ms);
    if (fl_str_eq(m->key, "drop")) {
        double d;
        if (v->kind != FL_JSON_INT && v->kind != FL_JSON_DOUBLE)
            return invalid(r, "expected a probability from 0 to 1, got %s",
                           fl_json_kind_name(v->kind));
        d = v->kind == FL_JSON_INT ? (double)v->u.i : v->u.d;
        if (!(d >= 0 && d <= 1))
            return invalid(r, "expected a probability from 0 to 1, got %g", d);
        c->drop = d;
        return 0;
    }
    if (fl_str_eq(m->key, "clients")) {
        c->has_clients = true;
        return read_whole(r, v, 0, 64, "clients", &c->clients);
    }
    if (fl_str_eq(m->key, "snapshot_every")) {
        c->has_snapshot_every = true;
        return read_whole(r, v, 0, 1000000, "entries", &c->snapshot_every);
    }
    if (fl_str_eq(m->key, "inject_bug"))
        return read_bugs(r, v, c);
    if (fl_str_eq(m->key, "expect")) {
        rc = read_text(r, v, text, sizeof(text));
        if (rc == 0 && strcmp(text, "valid") != 0 &&
            strcmp(text, "invalid") != 0)
            return invalid(r,
                           "unknown value \"%s\"; expected one of valid, "
                           "invalid",
                           text);
        c->expect_invalid = rc == 0 && strcmp(text, "invalid") == 0;
        return rc;
    }
    if (fl_str_eq(m->key, "detect_within_seeds"))
        return read_whole(r, v, 1, 100000, "seeds", &c->detect_within);
    return invalid(r, "unknown field; expected one of %s", allowed);
}

/* Checks the rules that join several fields. */
static int check_whole(struct reader *r, const struct fl_json *root,
                       const struct run_sim_campaign *c)
{
    r->field = NULL;
    if (fl_json_get(root, "name") == NULL)
        return invalid(r, "missing field \"name\"");
    if (c->detect_within != 0 && !c->expect_invalid) {
        r->field = "detect_within_seeds";
        return invalid(r, "only a campaign with \"expect\": \"invalid\" has "
                          "seeds to detect within");
    }
    if (c->expect_invalid && c->n_bugs == 0)
        return invalid(r, "\"expect\": \"invalid\" needs a planted bug in "
                          "inject_bug");
    if (c->drop >= 0 && c->faults[0] != '\0' &&
        strstr(c->faults, "drop") == NULL) {
        r->field = "drop";
        return invalid(r, "needs the drop fault in \"faults\"");
    }
    return 0;
}

int run_sim_campaign_load(const char *path, struct run_sim_campaign *c,
                          bool *is_sim, char *err, size_t err_size)
{
    struct reader r = {.file = path, .err = err, .err_size = err_size};
    struct fl_arena arena;
    struct fl_json root;
    const struct fl_json *system;
    struct fl_buf text;
    const char *why;
    size_t where;
    int rc;

    memset(c, 0, sizeof(*c));
    c->drop = -1;
    *is_sim = false;
    fl_buf_init(&text);
    fl_arena_init(&arena, 0, NULL);
    /* Unreadable or malformed files are left to camp_load, which names the
     * line and column of a syntax error. */
    if (run_sweep_read_file(path, SIM_CAMPAIGN_MAX_BYTES, &text) != 0 ||
        fl_json_parse(&arena, text.data != NULL ? text.data : "", text.len,
                      &root, &why, &where) != 0 ||
        root.kind != FL_JSON_OBJECT) {
        rc = 0;
        goto out;
    }
    system = fl_json_get(&root, "system");
    if (system == NULL || system->kind != FL_JSON_STRING ||
        !fl_str_eq(system->u.s, "raft-sim")) {
        rc = 0;
        goto out;
    }
    *is_sim = true;
    rc = 0;
    for (size_t i = 0; rc == 0 && i < root.u.object.count; i++) {
        const struct fl_json_member *m = &root.u.object.members[i];
        char field[72];
        snprintf(field, sizeof(field), "%.*s",
                 (int)(m->key.len > 64 ? 64 : m->key.len), m->key.ptr);
        r.field = field;
        for (size_t k = 0; k < i && rc == 0; k++) {
            if (fl_str_same(m->key, root.u.object.members[k].key))
                rc = invalid(&r, "given twice");
        }
        if (rc == 0)
            rc = read_member(&r, m, c);
    }
    if (rc == 0)
        rc = check_whole(&r, &root, c);
out:
    fl_arena_destroy(&arena);
    fl_buf_free(&text);
    return rc;
}

/* Appends one argument to out, copying its text into out->text. */
static void add_arg(struct run_sim_args *out, size_t *used, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

static void add_arg(struct run_sim_args *out, size_t *used, const char *fmt,
                    ...)
{
    size_t room = sizeof(out->text) - *used;
    va_list ap;
    int n;

    if (out->argc >= RUN_SIM_MAX_ARGS || room == 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(out->text + *used, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room)
        return;
    out->argv[out->argc++] = out->text + *used;
    *used += (size_t)n + 1;
}

void run_sim_campaign_args(const struct run_sim_campaign *c, uint64_t seed,
                           struct run_sim_args *out)
{
    size_t used = 0;

    out->argc = 0;
    add_arg(out, &used, "sim");
    add_arg(out, &used, "raft");
    add_arg(out, &used, "--seed");
    add_arg(out, &used, "%" PRIu64, seed);
    if (c->nodes != 0) {
        add_arg(out, &used, "--nodes");
        add_arg(out, &used, "%u", c->nodes);
    }
    if (c->time_s != 0) {
        add_arg(out, &used, "--time");
        add_arg(out, &used, "%u", c->time_s);
    }
    if (c->faults[0] != '\0') {
        add_arg(out, &used, "--faults");
        add_arg(out, &used, "%s", c->faults);
    }
    if (c->fault_every_ms != 0) {
        add_arg(out, &used, "--fault-every");
        add_arg(out, &used, "%u", c->fault_every_ms);
    }
    if (c->max_down_ms != 0) {
        add_arg(out, &used, "--max-down");
        add_arg(out, &used, "%u", c->max_down_ms);
    }
    if (c->drop >= 0) {
        /* The shortest text that reads back as the same double. */
        char text[32];
        snprintf(text, sizeof(text), "%.15g", c->drop);
        if (strtod(text, NULL) != c->drop)
            snprintf(text, sizeof(text), "%.17g", c->drop);
        add_arg(out, &used, "--drop");
        add_arg(out, &used, "%s", text);
    }
    if (c->has_clients) {
        add_arg(out, &used, "--clients");
        add_arg(out, &used, "%u", c->clients);
    }
    if (c->has_snapshot_every) {
        add_arg(out, &used, "--snapshot-every");
        add_arg(out, &used, "%u", c->snapshot_every);
    }
    for (size_t i = 0; i < c->n_bugs; i++) {
        add_arg(out, &used, "--inject-bug");
        add_arg(out, &used, "%s", c->bugs[i]);
    }
    out->argv[out->argc] = NULL;
}
