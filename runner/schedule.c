/*
 * The nemesis's fault plan: drawn from the seed, or read back from a
 * recorded run's nemesis.jsonl.
 *
 * Faults come one at a time. After start_s, the plan alternates a gap and
 * a fault. A gap is interval_s scaled by a draw from 0.5 to 1.5. A fault's
 * kind is drawn by weight, and its length is fault_duration_s scaled the
 * same way, or restart_delay_s for a kill: the time the node stays down.
 * Nothing runs past duration_s - quiet_s, the final heal, so the quiet period
 * and the final reads see a whole cluster.
 */
#include "run.h"

#include "cli.h"
#include "clock.h"
#include "json.h"
#include "rng.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double uniform(uint64_t *state)
{
    return (double)(fl_splitmix64(state) >> 11) * 0x1.0p-53;
}

static unsigned below(uint64_t *state, unsigned n)
{
    return (unsigned)(fl_splitmix64(state) % n);
}

static int push(struct run_plan *p, size_t *cap, const struct run_fault *f)
{
    if (p->n == *cap) {
        size_t n = *cap ? *cap * 2 : 16;
        struct run_fault *grown = realloc(p->faults, n * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        p->faults = grown;
        *cap = n;
    }
    p->faults[p->n++] = *f;
    return 0;
}

/* Picks one of the set bits of mask. */
static unsigned pick_bit(unsigned mask, uint64_t *state)
{
    unsigned bits[32];
    unsigned n = 0;

    for (unsigned i = 0; i < 32; i++)
        if (mask & (1u << i))
            bits[n++] = 1u << i;
    return n ? bits[below(state, n)] : 0;
}

/* Draws how a disk fault strikes. Only disk faults draw, so adding them
 * left the plans of other campaigns as they were. */
static void draw_disk(struct run_fault *f, const struct camp_fault *cf,
                      uint64_t *state)
{
    if (camp_fault_is_armed(cf->kind))
        f->nth = 1 + below(state, cf->nth_max);
    if (cf->kind == CAMP_FAULT_TORN_WRITE) {
        f->tear = pick_bit(cf->tear, state);
        /* Most records are small: keep up to a kilobyte, or any of the
         * first 64 sectors. */
        f->keep_bytes = below(state, 1024);
        f->sector_mask = fl_splitmix64(state);
    }
    if (cf->kind == CAMP_FAULT_CRASH_AT)
        f->when = pick_bit(cf->when, state);
    if (cf->kind == CAMP_FAULT_TORN_SEQ)
        f->keep_seed = fl_splitmix64(state);
    if (cf->kind == CAMP_FAULT_CORRUPT)
        f->pick = fl_splitmix64(state);
}

int run_plan_make(struct run_plan *p, const struct camp_campaign *c,
                  uint64_t seed, const bool skip[CAMP_FAULT__COUNT])
{
    uint64_t state = seed ^ UINT64_C(0x5eed0f5c4ed01e00);
    double total = 0;
    double t = c->start_s;
    double end = c->duration_s - c->quiet_s;
    size_t cap = 0;

    memset(p, 0, sizeof(*p));
    p->heal_ns = fl_clock_sec_to_ns(end);
    for (size_t i = 0; i < c->n_faults; i++)
        if (!skip[c->faults[i].kind])
            total += c->faults[i].weight;
    if (total <= 0)
        return 0;
    for (;;) {
        double pick = uniform(&state) * total;
        size_t spec = 0;
        for (size_t i = 0; i < c->n_faults; i++) {
            if (skip[c->faults[i].kind])
                continue;
            spec = i;
            if (pick < c->faults[i].weight)
                break;
            pick -= c->faults[i].weight;
        }
        const struct camp_fault *cf = &c->faults[spec];
        bool restarts = cf->kind == CAMP_FAULT_KILL ||
                        cf->kind == CAMP_FAULT_LOSE_UNSYNCED ||
                        cf->kind == CAMP_FAULT_TORN_SEQ ||
                        cf->kind == CAMP_FAULT_CORRUPT;
        double base = restarts ? c->restart_delay_s : c->fault_duration_s;
        double length = base * (0.5 + uniform(&state));
        if (t >= end)
            break;
        struct run_fault f = {
            .id = p->n + 1,
            .kind = cf->kind,
            .spec = spec,
            .start_ns = fl_clock_sec_to_ns(t),
            .stop_ns = fl_clock_sec_to_ns(t + length < end ? t + length : end),
            .probability = cf->probability,
            .delay_ms = cf->delay_ms,
        };
        draw_disk(&f, cf, &state);
        if (push(p, &cap, &f) != 0) {
            run_plan_free(p);
            return -ENOMEM;
        }
        t += length + c->interval_s * (0.5 + uniform(&state));
    }
    return 0;
}

void run_plan_free(struct run_plan *p)
{
    free(p->faults);
    p->faults = NULL;
    p->n = 0;
}

/* ---- targets ----------------------------------------------------------- */

/* Puts nodes 1..n into order[] in a random order. */
static void shuffle(unsigned *order, unsigned n, uint64_t *state)
{
    for (unsigned i = 0; i < n; i++)
        order[i] = i + 1;
    for (unsigned i = n; i > 1; i--) {
        unsigned k = below(state, i);
        unsigned tmp = order[i - 1];
        order[i - 1] = order[k];
        order[k] = tmp;
    }
}

static void add_block(struct run_fault *f, unsigned to, unsigned from)
{
    struct run_block *b = NULL;

    for (size_t i = 0; i < f->n_blocks; i++)
        if (f->blocks[i].to == to)
            b = &f->blocks[i];
    if (b == NULL) {
        b = &f->blocks[f->n_blocks++];
        b->to = to;
        b->n_from = 0;
    }
    for (size_t i = 0; i < b->n_from; i++)
        if (b->from[i] == from)
            return;
    b->from[b->n_from++] = from;
}

/* Cuts every link between a node in a[] and a node in b[], both ways. */
static void cut(struct run_fault *f, const unsigned *a, size_t na,
                const unsigned *b, size_t nb)
{
    for (size_t i = 0; i < na; i++) {
        for (size_t k = 0; k < nb; k++) {
            add_block(f, a[i], b[k]);
            add_block(f, b[k], a[i]);
        }
    }
}

void run_fault_resolve(struct run_fault *f, const struct camp_campaign *c,
                       unsigned primary, uint64_t *state)
{
    const struct camp_fault *cf = &c->faults[f->spec];
    unsigned n = c->nodes;
    unsigned order[CAMP_MAX_NODES] = {0};
    unsigned count;

    f->n_targets = 0;
    f->n_blocks = 0;
    shuffle(order, n, state);
    if (primary == 0 || primary > n)
        primary = order[0];
    switch (f->kind) {
    case CAMP_FAULT_HALVES: {
        /* The first half is the minority. */
        unsigned small = n / 2;
        memcpy(f->targets, order, small * sizeof(unsigned));
        f->n_targets = small;
        cut(f, order, small, order + small, n - small);
        return;
    }
    case CAMP_FAULT_ISOLATE_PRIMARY: {
        unsigned rest[CAMP_MAX_NODES];
        size_t nr = 0;
        for (unsigned i = 1; i <= n; i++)
            if (i != primary)
                rest[nr++] = i;
        f->targets[0] = primary;
        f->n_targets = 1;
        cut(f, &primary, 1, rest, nr);
        return;
    }
    case CAMP_FAULT_MAJORITY_RING: {
        /* Around a ring, each node keeps the nodes within distance d:
         * 2d + 1 of them, a majority, and no two nodes keep the same set. */
        unsigned majority = n / 2 + 1;
        unsigned d = majority / 2;
        for (unsigned i = 0; i < n; i++) {
            for (unsigned k = 0; k < n; k++) {
                unsigned dist = i > k ? i - k : k - i;
                if (n - dist < dist)
                    dist = n - dist;
                if (dist > d)
                    add_block(f, order[i], order[k]);
            }
            f->targets[f->n_targets++] = order[i];
        }
        return;
    }
    case CAMP_FAULT_BRIDGE: {
        /* order[0..half) | order[half] | order[half+1..n): the middle
         * node reaches both sides, which cannot reach each other. */
        unsigned half = (n - 1) / 2;
        f->targets[0] = order[half];
        f->n_targets = 1;
        cut(f, order, half, order + half + 1, n - half - 1);
        return;
    }
    default:
        break;
    }
    switch (cf->targets) {
    case CAMP_TARGET_ONE:
        count = 1;
        break;
    case CAMP_TARGET_MINORITY:
        count = n > 2 ? (n - 1) / 2 : 1;
        break;
    case CAMP_TARGET_MAJORITY:
        count = n / 2 + 1;
        break;
    case CAMP_TARGET_ALL:
        count = n;
        break;
    case CAMP_TARGET_PRIMARY:
        count = 1;
        order[0] = primary;
        break;
    case CAMP_TARGET_LIST:
    default:
        count = (unsigned)cf->list_len;
        memcpy(order, cf->list, count * sizeof(unsigned));
        break;
    }
    memcpy(f->targets, order, count * sizeof(unsigned));
    f->n_targets = count;
    if (f->kind == CAMP_FAULT_ONE_WAY) {
        /* Packets from the other nodes into the targets are dropped; the
         * targets' own packets still arrive. A leader among the targets
         * keeps sending entries its followers store, but never hears that
         * they did. */
        for (size_t k = 0; k < count; k++)
            for (unsigned i = 1; i <= n; i++) {
                bool target = false;
                for (size_t t = 0; t < count; t++)
                    target = target || f->targets[t] == i;
                if (!target)
                    add_block(f, f->targets[k], i);
            }
    }
    f->resolved = true;
}

/* ---- nemesis.jsonl ----------------------------------------------------- */

void run_fault_json(const struct run_fault *f, bool start, int64_t time_ns,
                    struct fl_buf *b)
{
    fl_buf_printf(b,
                  "{\"time\":%" PRId64 ",\"action\":\"%s\",\"fault\":\"%s\","
                  "\"id\":%" PRIu64 ",\"targets\":[",
                  time_ns, start ? "start" : "stop", camp_fault_name(f->kind),
                  f->id);
    for (size_t i = 0; i < f->n_targets; i++)
        fl_buf_printf(b, "%s%u", i ? "," : "", f->targets[i]);
    fl_buf_printf(b, "],\"detail\":{\"spec\":%zu", f->spec);
    if (!start && camp_fault_is_armed(f->kind))
        fl_buf_printf(b, ",\"fired\":%u", f->fired);
    if (start) {
        fl_buf_printf(b, ",\"planned_stop\":%" PRId64, f->stop_ns);
        if (f->n_blocks > 0) {
            fl_buf_printf(b, ",\"one_way\":%s,\"blocks\":[",
                          f->one_way ? "true" : "false");
            for (size_t i = 0; i < f->n_blocks; i++) {
                const struct run_block *bl = &f->blocks[i];
                fl_buf_printf(b, "%s{\"to\":%u,\"from\":[", i ? "," : "",
                              bl->to);
                for (size_t k = 0; k < bl->n_from; k++)
                    fl_buf_printf(b, "%s%u", k ? "," : "", bl->from[k]);
                fl_buf_adds(b, "]}");
            }
            fl_buf_addc(b, ']');
        }
        if (f->kind == CAMP_FAULT_LOSS)
            fl_buf_printf(b, ",\"probability\":%.17g", f->probability);
        if (f->kind == CAMP_FAULT_DELAY)
            fl_buf_printf(b, ",\"delay_ms\":%u", f->delay_ms);
        if (f->nth != 0)
            fl_buf_printf(b, ",\"nth\":%u", f->nth);
        if (f->kind == CAMP_FAULT_TORN_WRITE && f->tear == CAMP_TEAR_PREFIX)
            fl_buf_printf(b, ",\"tear\":\"prefix\",\"keep_bytes\":%" PRIu64,
                          f->keep_bytes);
        if (f->kind == CAMP_FAULT_TORN_WRITE && f->tear == CAMP_TEAR_SECTORS)
            fl_buf_printf(
                b, ",\"tear\":\"sectors\",\"sector_mask\":\"%016" PRIx64 "\"",
                f->sector_mask);
        if (f->kind == CAMP_FAULT_CRASH_AT)
            fl_buf_printf(b, ",\"when\":\"%s\"",
                          f->when == CAMP_WHEN_AFTER ? "after" : "before");
        if (f->kind == CAMP_FAULT_CORRUPT) {
            fl_buf_printf(b, ",\"pick\":\"%016" PRIx64 "\"", f->pick);
            if (f->damaged_file[0] != '\0') {
                fl_buf_adds(b, ",\"file\":");
                fl_buf_add_json_string(b, f->damaged_file,
                                       strlen(f->damaged_file));
                fl_buf_printf(b, ",\"offset\":%" PRIu64 ",\"xor\":%u",
                              f->damaged_offset, f->damage_mask);
            }
        }
        if (f->kind == CAMP_FAULT_TORN_SEQ)
            fl_buf_printf(b,
                          ",\"keep_seed\":\"%016" PRIx64
                          "\",\"unsynced\":%" PRIu64 ",\"kept\":%" PRIu64,
                          f->keep_seed, f->unsynced, f->kept);
    }
    fl_buf_adds(b, "}}\n");
}

void run_fault_describe(const struct run_fault *f, struct fl_buf *b)
{
    fl_buf_adds(b, camp_fault_name(f->kind));
    fl_buf_addc(b, ' ');
    for (size_t i = 0; i < f->n_targets; i++)
        fl_buf_printf(b, "%sn%u", i ? "," : "", f->targets[i]);
}

/* ---- reading a recorded plan ------------------------------------------- */

struct reader {
    const char *path;
    uint64_t line;
    char *err;
    size_t err_size;
};

static int bad(struct reader *r, const char *why)
{
    snprintf(r->err, r->err_size, "%s:%" PRIu64 ": %s", r->path, r->line, why);
    return RUN_EXIT_USAGE;
}

static int node_list(struct reader *r, const struct fl_json *v, unsigned n,
                     unsigned *out, size_t *count)
{
    if (v == NULL || v->kind != FL_JSON_ARRAY || v->u.array.count > n)
        return bad(r, "expected an array of node ids");
    for (size_t i = 0; i < v->u.array.count; i++) {
        const struct fl_json *x = &v->u.array.items[i];
        if (x->kind != FL_JSON_INT || x->u.i < 1 || x->u.i > (int64_t)n)
            return bad(r, "node ids must be numbers from 1 to the campaign's "
                          "node count");
        out[i] = (unsigned)x->u.i;
    }
    *count = v->u.array.count;
    return 0;
}

/* A 64-bit value recorded as 16 hex digits. */
static int hex64(struct reader *r, const struct fl_json *v, const char *what,
                 uint64_t *out)
{
    char text[17];
    char *end;

    if (v == NULL || v->kind != FL_JSON_STRING || v->u.s.len != 16)
        return bad(r, what);
    for (size_t i = 0; i < 16; i++)
        if (!isxdigit((unsigned char)v->u.s.ptr[i]))
            return bad(r, what);
    memcpy(text, v->u.s.ptr, 16);
    text[16] = '\0';
    errno = 0;
    *out = strtoull(text, &end, 16);
    if (errno != 0 || *end != '\0')
        return bad(r, what);
    return 0;
}

/* How a disk fault strikes, as run_fault_json recorded it. */
static int read_disk(struct reader *r, const struct fl_json *detail,
                     const struct camp_fault *cf, struct run_fault *f)
{
    const struct fl_json *v;

    if (camp_fault_is_armed(f->kind)) {
        v = fl_json_get(detail, "nth");
        if (v == NULL || v->kind != FL_JSON_INT || v->u.i < 1 ||
            v->u.i > (int64_t)cf->nth_max) {
            char why[128];
            snprintf(why, sizeof(why),
                     "detail.nth must be a number from 1 to the campaign's "
                     "nth_max, %u",
                     cf->nth_max);
            return bad(r, why);
        }
        f->nth = (unsigned)v->u.i;
    }
    if (f->kind == CAMP_FAULT_TORN_WRITE) {
        v = fl_json_get(detail, "tear");
        if (v != NULL && v->kind == FL_JSON_STRING && v->u.s.len == 6 &&
            memcmp(v->u.s.ptr, "prefix", 6) == 0) {
            f->tear = CAMP_TEAR_PREFIX;
            v = fl_json_get(detail, "keep_bytes");
            if (v == NULL || v->kind != FL_JSON_INT || v->u.i < 0 ||
                v->u.i > (1 << 20))
                return bad(r, "detail.keep_bytes must be a byte count up to "
                              "1048576");
            f->keep_bytes = (uint64_t)v->u.i;
        } else if (v != NULL && v->kind == FL_JSON_STRING && v->u.s.len == 7 &&
                   memcmp(v->u.s.ptr, "sectors", 7) == 0) {
            f->tear = CAMP_TEAR_SECTORS;
            if (hex64(r, fl_json_get(detail, "sector_mask"),
                      "detail.sector_mask must be 16 hex digits",
                      &f->sector_mask) != 0)
                return RUN_EXIT_USAGE;
        } else {
            return bad(r, "detail.tear must be \"prefix\" or \"sectors\"");
        }
    }
    if (f->kind == CAMP_FAULT_CRASH_AT) {
        v = fl_json_get(detail, "when");
        if (v == NULL || v->kind != FL_JSON_STRING ||
            !((v->u.s.len == 6 && memcmp(v->u.s.ptr, "before", 6) == 0) ||
              (v->u.s.len == 5 && memcmp(v->u.s.ptr, "after", 5) == 0)))
            return bad(r, "detail.when must be \"before\" or \"after\"");
        f->when = v->u.s.len == 5 ? CAMP_WHEN_AFTER : CAMP_WHEN_BEFORE;
    }
    if (f->kind == CAMP_FAULT_CORRUPT) {
        if (hex64(r, fl_json_get(detail, "pick"),
                  "detail.pick must be 16 hex digits", &f->pick) != 0)
            return RUN_EXIT_USAGE;
        v = fl_json_get(detail, "file");
        if (v != NULL) {
            const struct fl_json *off = fl_json_get(detail, "offset");
            const struct fl_json *mask = fl_json_get(detail, "xor");
            if (v->kind != FL_JSON_STRING || v->u.s.len == 0 ||
                v->u.s.len >= sizeof(f->damaged_file) ||
                memchr(v->u.s.ptr, '\0', v->u.s.len) != NULL ||
                v->u.s.ptr[0] == '/' || strstr(v->u.s.ptr, "..") != NULL)
                return bad(r, "detail.file must be a path inside the data "
                              "directory");
            if (off == NULL || off->kind != FL_JSON_INT || off->u.i < 0 ||
                mask == NULL || mask->kind != FL_JSON_INT || mask->u.i < 1 ||
                mask->u.i > 255)
                return bad(r, "detail.offset must be a byte offset and "
                              "detail.xor a number from 1 to 255");
            memcpy(f->damaged_file, v->u.s.ptr, v->u.s.len);
            f->damaged_file[v->u.s.len] = '\0';
            f->damaged_offset = (uint64_t)off->u.i;
            f->damage_mask = (uint8_t)mask->u.i;
        }
    }
    if (f->kind == CAMP_FAULT_TORN_SEQ &&
        hex64(r, fl_json_get(detail, "keep_seed"),
              "detail.keep_seed must be 16 hex digits", &f->keep_seed) != 0)
        return RUN_EXIT_USAGE;
    return 0;
}

static int read_start(struct reader *r, const struct fl_json *o,
                      const struct camp_campaign *c, struct run_fault *f)
{
    const struct fl_json *detail = fl_json_get(o, "detail");
    const struct fl_json *v;
    int rc;

    rc = node_list(r, fl_json_get(o, "targets"), c->nodes, f->targets,
                   &f->n_targets);
    if (rc != 0)
        return rc;
    if (detail == NULL || detail->kind != FL_JSON_OBJECT)
        return bad(r, "missing object \"detail\"");
    v = fl_json_get(detail, "spec");
    if (v == NULL || v->kind != FL_JSON_INT || v->u.i < 0 ||
        (uint64_t)v->u.i >= c->n_faults)
        return bad(r, "detail.spec must name one of the campaign's faults");
    f->spec = (size_t)v->u.i;
    if (c->faults[f->spec].kind != f->kind)
        return bad(r, "the fault does not match the campaign's fault of the "
                      "same number; was the campaign changed?");
    /* A run killed mid-fault never wrote the stop, so the plan's stop time
     * replaces it. */
    v = fl_json_get(detail, "planned_stop");
    if (v != NULL && v->kind == FL_JSON_INT && v->u.i > f->start_ns &&
        v->u.i < f->stop_ns)
        f->stop_ns = v->u.i;
    v = fl_json_get(detail, "one_way");
    f->one_way = v != NULL && v->kind == FL_JSON_BOOL && v->u.b;
    v = fl_json_get(detail, "probability");
    if (v != NULL && v->kind == FL_JSON_DOUBLE)
        f->probability = v->u.d;
    else if (v != NULL && v->kind == FL_JSON_INT)
        f->probability = (double)v->u.i;
    v = fl_json_get(detail, "delay_ms");
    if (v != NULL && v->kind == FL_JSON_INT && v->u.i > 0)
        f->delay_ms = (unsigned)v->u.i;
    rc = read_disk(r, detail, &c->faults[f->spec], f);
    if (rc != 0)
        return rc;
    v = fl_json_get(detail, "blocks");
    if (v != NULL) {
        if (v->kind != FL_JSON_ARRAY || v->u.array.count > CAMP_MAX_NODES)
            return bad(r, "detail.blocks must be an array");
        for (size_t i = 0; i < v->u.array.count; i++) {
            const struct fl_json *b = &v->u.array.items[i];
            const struct fl_json *to = fl_json_get(b, "to");
            struct run_block *bl = &f->blocks[i];
            if (b->kind != FL_JSON_OBJECT || to == NULL ||
                to->kind != FL_JSON_INT || to->u.i < 1 ||
                to->u.i > (int64_t)c->nodes)
                return bad(r, "each block needs \"to\", a node id");
            bl->to = (unsigned)to->u.i;
            rc = node_list(r, fl_json_get(b, "from"), c->nodes, bl->from,
                           &bl->n_from);
            if (rc != 0)
                return rc;
        }
        f->n_blocks = v->u.array.count;
    }
    /* A fault aimed at the leader is aimed at whichever node leads when
     * the repro reaches it, because another run elects other leaders. */
    f->resolved = f->kind != CAMP_FAULT_ISOLATE_PRIMARY &&
                  c->faults[f->spec].targets != CAMP_TARGET_PRIMARY;
    return 0;
}

int run_plan_load(struct run_plan *p, const char *path,
                  const struct camp_campaign *c, char *err, size_t err_size)
{
    struct reader r = {.path = path, .err = err, .err_size = err_size};
    struct fl_arena arena;
    char *line = NULL;
    size_t line_cap = 0;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    FILE *in = fopen(path, "r");

    memset(p, 0, sizeof(*p));
    p->heal_ns = fl_clock_sec_to_ns(c->duration_s - c->quiet_s);
    if (in == NULL) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return RUN_EXIT_USAGE;
    }
    fl_arena_init(&arena, 0, NULL);
    while (rc == 0 && (len = getline(&line, &line_cap, in)) >= 0) {
        struct fl_json o;
        const char *why;
        size_t where;
        const struct fl_json *v;
        int kind = -1;

        r.line++;
        fl_arena_reset(&arena);
        if (fl_json_parse(&arena, line, (size_t)len, &o, &why, &where) != 0 ||
            o.kind != FL_JSON_OBJECT) {
            rc = bad(&r, "not a JSON object");
            break;
        }
        v = fl_json_get(&o, "fault");
        for (int k = 0;
             v != NULL && v->kind == FL_JSON_STRING && k < CAMP_FAULT__COUNT;
             k++)
            if (strlen(camp_fault_name((enum camp_fault_kind)k)) ==
                    v->u.s.len &&
                memcmp(camp_fault_name((enum camp_fault_kind)k), v->u.s.ptr,
                       v->u.s.len) == 0)
                kind = k;
        const struct fl_json *action = fl_json_get(&o, "action");
        const struct fl_json *time = fl_json_get(&o, "time");
        const struct fl_json *id = fl_json_get(&o, "id");
        if (kind < 0 && v != NULL && v->kind == FL_JSON_STRING) {
            char text[160];
            snprintf(text, sizeof(text), "fault \"%.*s\" is not a fault kind",
                     v->u.s.len > 64 ? 64 : (int)v->u.s.len, v->u.s.ptr);
            rc = bad(&r, text);
            break;
        }
        if (kind < 0 || action == NULL || action->kind != FL_JSON_STRING ||
            time == NULL || time->kind != FL_JSON_INT || time->u.i < 0 ||
            id == NULL || id->kind != FL_JSON_INT || id->u.i < 1) {
            rc = bad(&r, "expected fields time, action, fault and id");
            break;
        }
        bool start =
            action->u.s.len == 5 && memcmp(action->u.s.ptr, "start", 5) == 0;
        bool stop =
            action->u.s.len == 4 && memcmp(action->u.s.ptr, "stop", 4) == 0;
        if (!start && !stop) {
            rc = bad(&r, "action must be \"start\" or \"stop\"");
        } else if (start) {
            struct run_fault f = {
                .id = (uint64_t)id->u.i,
                .kind = (enum camp_fault_kind)kind,
                .start_ns = time->u.i,
                .stop_ns = p->heal_ns,
            };
            if (f.start_ns >= p->heal_ns) {
                rc = bad(&r, "the fault starts after the final heal of the "
                             "campaign's duration");
                break;
            }
            /* Faults come one at a time: a start before the last fault
             * stopped means the file was not written by a run. */
            if (p->n > 0 && f.start_ns < p->faults[p->n - 1].stop_ns) {
                rc = bad(&r, "the fault starts before the previous one "
                             "stopped; a run records one fault at a time");
                break;
            }
            for (size_t i = 0; i < p->n; i++)
                if (p->faults[i].id == f.id)
                    rc = bad(&r, "a second fault with the same id");
            if (rc == 0)
                rc = read_start(&r, &o, c, &f);
            if (rc == 0 && push(p, &cap, &f) != 0)
                rc = RUN_EXIT_INFRA;
        } else {
            /* A stop closes the fault with the same id. The final heal can
             * log its stops a little after the heal time: those end at
             * the heal. */
            struct run_fault *f = NULL;
            for (size_t i = 0; i < p->n; i++)
                if (p->faults[i].id == (uint64_t)id->u.i)
                    f = &p->faults[i];
            if (f == NULL)
                rc = bad(&r, "a stop with no start before it");
            else if (time->u.i < f->start_ns)
                rc = bad(&r, "the fault stops before it starts");
            else
                f->stop_ns = time->u.i < p->heal_ns ? time->u.i : p->heal_ns;
        }
    }
    free(line);
    fclose(in);
    fl_arena_destroy(&arena);
    if (rc != 0)
        run_plan_free(p);
    return rc;
}
