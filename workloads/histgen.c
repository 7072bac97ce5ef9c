/*
 * Event-driven simulation behind wl_gen_history. A min-heap orders three
 * kinds of timed events: a process invokes an operation, the operation
 * takes effect, the operation completes. Events are processed, and emitted,
 * in (time, sequence) order, so every effect happens after its invocation
 * is written and before its completion is.
 */
#include "histgen.h"

#include "error.h"
#include "rng.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ev_kind { EV_INVOKE, EV_EFFECT, EV_COMPLETE };

struct timed {
    int64_t time;
    uint64_t seq;
    uint32_t slot;
    uint8_t kind;
};

enum op_f { OP_READ, OP_WRITE, OP_CAS, OP_GET, OP_PUT, OP_APPEND };

static const char *const op_names[] = {"read", "write", "cas",
                                       "get",  "put",   "append"};

/* Register values are integers; kv values are strings. */
struct slot {
    int64_t process;
    bool busy;
    uint8_t f;
    uint32_t key;
    bool crash;    /* completes as info */
    bool apply;    /* for crashes: whether it takes effect */
    bool cas_ok;   /* decided at the effect */
    int64_t a;     /* write value, cas expected */
    int64_t b;     /* cas new */
    char text[48]; /* kv put/append argument */
    int64_t read_int;
    bool read_null;
    char *read_text; /* kv get result, malloc'd */
};

struct gen {
    const struct wl_gen_options *o;
    struct fl_rng rng;
    struct timed *heap;
    size_t heap_len;
    size_t heap_cap;
    uint64_t seq;
    struct slot *slots;
    /* per key state */
    int64_t *reg;
    bool *reg_null;
    char **text;
    size_t *text_len;
    uint64_t tokens;
    int64_t index;
    size_t invoked;
    size_t corrupt_after;
    bool corrupted;
    int64_t next_process;
};

int wl_gen_model_parse(const char *name, enum wl_gen_model *out)
{
    if (strcmp(name, "register") == 0)
        *out = WL_GEN_REGISTER;
    else if (strcmp(name, "cas-register") == 0)
        *out = WL_GEN_CAS_REGISTER;
    else if (strcmp(name, "kv") == 0)
        *out = WL_GEN_KV;
    else
        return FL_EINPUT;
    return 0;
}

void wl_gen_options_default(struct wl_gen_options *o)
{
    memset(o, 0, sizeof(*o));
    o->model = WL_GEN_CAS_REGISTER;
    o->ops = 1000;
    o->keys = 1;
    o->processes = 5;
    o->values = 5;
    o->read_ratio = 0.5;
}

static int heap_push(struct gen *g, int64_t time, uint32_t slot,
                     enum ev_kind kind)
{
    struct timed t = {time, g->seq++, slot, (uint8_t)kind};
    size_t i;

    if (g->heap_len == g->heap_cap) {
        size_t cap = g->heap_cap ? g->heap_cap * 2 : 64;
        struct timed *h = realloc(g->heap, cap * sizeof(*h));
        if (h == NULL)
            return -ENOMEM;
        g->heap = h;
        g->heap_cap = cap;
    }
    i = g->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        struct timed *p = &g->heap[parent];
        if (p->time < t.time || (p->time == t.time && p->seq < t.seq))
            break;
        g->heap[i] = *p;
        i = parent;
    }
    g->heap[i] = t;
    return 0;
}

static bool before(const struct timed *a, const struct timed *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static struct timed heap_pop(struct gen *g)
{
    struct timed top = g->heap[0];
    struct timed last = g->heap[--g->heap_len];
    size_t i = 0;

    for (;;) {
        size_t l = 2 * i + 1;
        size_t r = l + 1;
        size_t m = i;
        const struct timed *mv = &last;
        if (l < g->heap_len && before(&g->heap[l], mv)) {
            m = l;
            mv = &g->heap[l];
        }
        if (r < g->heap_len && before(&g->heap[r], mv))
            m = r;
        if (m == i)
            break;
        g->heap[i] = g->heap[m];
        i = m;
    }
    if (g->heap_len > 0)
        g->heap[i] = last;
    return top;
}

static void set_text(struct fl_json *v, const char *s, size_t len)
{
    v->kind = FL_JSON_STRING;
    v->u.s.ptr = s;
    v->u.s.len = len;
}

static void set_int(struct fl_json *v, int64_t i)
{
    v->kind = FL_JSON_INT;
    v->u.i = i;
}

static int emit_event(struct gen *g, struct slot *s, enum fl_hist_type type,
                      int64_t time,
                      int (*emit)(void *, const struct fl_hist_event *),
                      void *ctx)
{
    struct fl_hist_event ev;
    struct fl_json pair[2];
    char key[32];

    memset(&ev, 0, sizeof(ev));
    ev.index = g->index++;
    ev.time = time;
    ev.process = s->process;
    ev.type = type;
    ev.f.ptr = op_names[s->f];
    ev.f.len = strlen(op_names[s->f]);
    if (g->o->keys > 1 || g->o->keyed || g->o->model == WL_GEN_KV) {
        int n = snprintf(key, sizeof(key), "k%" PRIu32, s->key);
        ev.key.ptr = key;
        ev.key.len = (size_t)n;
    }
    ev.value.kind = FL_JSON_NULL;
    ev.has_value = true;
    switch ((enum op_f)s->f) {
    case OP_READ:
        if (type == FL_HIST_OK && !s->read_null)
            set_int(&ev.value, s->read_int);
        break;
    case OP_GET:
        if (type == FL_HIST_OK && s->read_text != NULL)
            set_text(&ev.value, s->read_text, strlen(s->read_text));
        break;
    case OP_WRITE:
        set_int(&ev.value, s->a);
        break;
    case OP_CAS:
        set_int(&pair[0], s->a);
        set_int(&pair[1], s->b);
        ev.value.kind = FL_JSON_ARRAY;
        ev.value.u.array.items = pair;
        ev.value.u.array.count = 2;
        break;
    case OP_PUT:
    case OP_APPEND:
        set_text(&ev.value, s->text, strlen(s->text));
        break;
    }
    return emit(ctx, &ev);
}

static void choose_op(struct gen *g, struct slot *s)
{
    const struct wl_gen_options *o = g->o;
    bool read = fl_rng_chance(&g->rng, o->read_ratio);
    int64_t values = o->values > 0 ? o->values : 1;

    s->key = (uint32_t)fl_rng_below(&g->rng, o->keys);
    s->crash = fl_rng_chance(&g->rng, o->crash_rate);
    s->apply = fl_rng_chance(&g->rng, 0.5);
    s->read_null = true;
    free(s->read_text);
    s->read_text = NULL;
    if (o->model == WL_GEN_KV) {
        if (read) {
            s->f = OP_GET;
        } else {
            s->f = fl_rng_chance(&g->rng, 0.8) ? OP_APPEND : OP_PUT;
            snprintf(s->text, sizeof(s->text), "%s%" PRIu64 ";",
                     s->f == OP_APPEND ? "a" : "p", g->tokens++);
        }
        return;
    }
    if (read) {
        s->f = OP_READ;
        return;
    }
    if (o->model == WL_GEN_CAS_REGISTER && fl_rng_chance(&g->rng, 0.5)) {
        s->f = OP_CAS;
        s->a = (int64_t)fl_rng_below(&g->rng, (uint64_t)values);
        s->b = (int64_t)fl_rng_below(&g->rng, (uint64_t)values);
    } else {
        s->f = OP_WRITE;
        s->a = (int64_t)fl_rng_below(&g->rng, (uint64_t)values);
    }
}

/* Applies the operation in slot s at its instant of effect. */
static int take_effect(struct gen *g, struct slot *s)
{
    uint32_t k = s->key;

    if (s->crash && !s->apply)
        return 0;
    switch ((enum op_f)s->f) {
    case OP_READ:
        s->read_null = g->reg_null[k];
        s->read_int = g->reg[k];
        break;
    case OP_WRITE:
        g->reg[k] = s->a;
        g->reg_null[k] = false;
        break;
    case OP_CAS:
        s->cas_ok = !g->reg_null[k] && g->reg[k] == s->a;
        if (s->cas_ok)
            g->reg[k] = s->b;
        break;
    case OP_GET:
        s->read_text = strdup(g->text[k] ? g->text[k] : "");
        if (s->read_text == NULL)
            return -ENOMEM;
        break;
    case OP_PUT:
        free(g->text[k]);
        g->text[k] = strdup(s->text);
        if (g->text[k] == NULL)
            return -ENOMEM;
        g->text_len[k] = strlen(s->text);
        break;
    case OP_APPEND: {
        size_t add = strlen(s->text);
        char *grown = realloc(g->text[k], g->text_len[k] + add + 1);
        if (grown == NULL)
            return -ENOMEM;
        memcpy(grown + g->text_len[k], s->text, add + 1);
        g->text[k] = grown;
        g->text_len[k] += add;
        break;
    }
    }
    return 0;
}

static enum fl_hist_type outcome(struct gen *g, struct slot *s)
{
    if (s->crash)
        return FL_HIST_INFO;
    if (s->f == OP_CAS && !s->cas_ok)
        return FL_HIST_FAIL;
    if (g->o->corrupt && !g->corrupted && g->invoked >= g->corrupt_after &&
        (s->f == OP_READ || s->f == OP_GET)) {
        /* No write produces this value: ints are drawn from [0, values)
         * and kv strings never contain '!'. */
        g->corrupted = true;
        s->read_null = false;
        s->read_int = (g->o->values > 0 ? g->o->values : 1) + 1000003;
        if (s->f == OP_GET) {
            free(s->read_text);
            s->read_text = strdup("!never-written");
        }
    }
    return FL_HIST_OK;
}

int wl_gen_history(const struct wl_gen_options *o,
                   int (*emit)(void *ctx, const struct fl_hist_event *ev),
                   void *ctx)
{
    struct gen g;
    int rc = 0;

    if (o->processes == 0 || o->keys == 0 || o->keys > UINT32_MAX ||
        o->crash_rate < 0 || o->crash_rate > 1 || o->read_ratio < 0 ||
        o->read_ratio > 1 || o->values <= 0)
        return FL_EINPUT;
    memset(&g, 0, sizeof(g));
    g.o = o;
    fl_rng_seed_stream(&g.rng, o->seed, FL_RNG_STREAM_MAIN);
    g.slots = calloc(o->processes, sizeof(*g.slots));
    g.reg = calloc(o->keys, sizeof(*g.reg));
    g.reg_null = calloc(o->keys, sizeof(*g.reg_null));
    g.text = calloc(o->keys, sizeof(*g.text));
    g.text_len = calloc(o->keys, sizeof(*g.text_len));
    if (g.slots == NULL || g.reg == NULL || g.reg_null == NULL ||
        g.text == NULL || g.text_len == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t k = 0; k < o->keys; k++)
        g.reg_null[k] = true;
    g.corrupt_after = o->ops / 4 + (size_t)fl_rng_below(&g.rng, o->ops / 2 + 1);
    for (size_t i = 0; i < o->processes; i++) {
        g.slots[i].process = (int64_t)i;
        rc = heap_push(&g, 1 + (int64_t)fl_rng_below(&g.rng, 1000), (uint32_t)i,
                       EV_INVOKE);
        if (rc != 0)
            goto out;
    }
    g.next_process = (int64_t)o->processes;

    while (g.heap_len > 0 && rc == 0) {
        struct timed t = heap_pop(&g);
        struct slot *s = &g.slots[t.slot];
        /* Operations last 2 us to 2 ms; the effect falls strictly inside. */
        int64_t duration = 2000 + (int64_t)fl_rng_below(&g.rng, 2000000);
        int64_t effect =
            1 + (int64_t)fl_rng_below(&g.rng, (uint64_t)duration - 1);

        switch ((enum ev_kind)t.kind) {
        case EV_INVOKE:
            if (g.invoked >= o->ops)
                break;
            choose_op(&g, s);
            s->busy = true;
            g.invoked++;
            rc = emit_event(&g, s, FL_HIST_INVOKE, t.time, emit, ctx);
            if (rc == 0)
                rc = heap_push(&g, t.time + effect, t.slot, EV_EFFECT);
            if (rc == 0)
                rc = heap_push(&g, t.time + duration, t.slot, EV_COMPLETE);
            break;
        case EV_EFFECT:
            rc = take_effect(&g, s);
            break;
        case EV_COMPLETE: {
            enum fl_hist_type type = outcome(&g, s);
            rc = emit_event(&g, s, type, t.time, emit, ctx);
            s->busy = false;
            if (type == FL_HIST_INFO)
                s->process = g.next_process++;
            if (rc == 0 && g.invoked < o->ops)
                rc = heap_push(
                    &g, t.time + 1 + (int64_t)fl_rng_below(&g.rng, 500000),
                    t.slot, EV_INVOKE);
            break;
        }
        }
    }
    if (rc == 0 && o->corrupt && !g.corrupted)
        rc = FL_EINPUT;
out:
    if (g.slots != NULL) {
        for (size_t i = 0; i < o->processes; i++)
            free(g.slots[i].read_text);
    }
    if (g.text != NULL) {
        for (size_t k = 0; k < o->keys; k++)
            free(g.text[k]);
    }
    free(g.heap);
    free(g.slots);
    free(g.reg);
    free(g.reg_null);
    free(g.text);
    free(g.text_len);
    return rc;
}
