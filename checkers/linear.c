/*
 * The linearizability driver: turns history events into operations, splits
 * them by key, prunes what cannot matter, runs wgl_check on each key from a
 * pool of threads, and renders the result as text or JSON.
 */
#include "linear.h"

#include "clock.h"
#include "error.h"
#include "wgl.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum chk_f { F_READ, F_WRITE, F_CAS, F_GET, F_PUT, F_APPEND };

static const char *const f_names[] = {"read", "write", "cas",
                                      "get",  "put",   "append"};

#define NO_OP UINT64_MAX

struct op_seq {
    uint32_t call;
    uint32_t ret; /* UINT32_MAX until completed */
};

struct chk_lin_history {
    struct chk_lin_options opts;
    struct fl_budget budget;
    struct fl_arena arena;
    struct chk_lin_op *ops;
    size_t nops;
    size_t ops_cap;
    struct op_seq *seq;
    size_t seq_cap;
    struct fl_strtab keys;
    struct fl_strtab values; /* tag byte + payload, see value_id */
    struct fl_map64 open;    /* process -> open operation, or NO_OP */
    uint32_t next_seq;
    int keyed; /* -1: not yet known, 0: no keys, 1: keys */
    uint64_t keyed_line;
    uint32_t null_id;
    uint32_t init_id;
    struct fl_buf scratch;
    struct chk_lin_result result;
    bool have_result;
};

/* ---- options ----------------------------------------------------------- */

void chk_lin_options_default(struct chk_lin_options *o)
{
    memset(o, 0, sizeof(*o));
    o->model = CHK_MODEL_CAS_REGISTER;
    o->init.kind = FL_JSON_NULL;
    o->read_null = CHK_READ_NULL_VALUE;
    o->cas_fail = CHK_CAS_FAIL_NO_EFFECT;
}

int chk_model_parse(const char *name, enum chk_model *out)
{
    if (strcmp(name, "register") == 0)
        *out = CHK_MODEL_REGISTER;
    else if (strcmp(name, "cas-register") == 0)
        *out = CHK_MODEL_CAS_REGISTER;
    else if (strcmp(name, "kv") == 0)
        *out = CHK_MODEL_KV;
    else
        return FL_EINPUT;
    return 0;
}

int chk_read_null_parse(const char *name, enum chk_read_null *out)
{
    if (strcmp(name, "value") == 0)
        *out = CHK_READ_NULL_VALUE;
    else if (strcmp(name, "unknown") == 0)
        *out = CHK_READ_NULL_UNKNOWN;
    else
        return FL_EINPUT;
    return 0;
}

int chk_cas_fail_parse(const char *name, enum chk_cas_fail *out)
{
    if (strcmp(name, "no-effect") == 0)
        *out = CHK_CAS_FAIL_NO_EFFECT;
    else if (strcmp(name, "compare-failed") == 0)
        *out = CHK_CAS_FAIL_COMPARE_FAILED;
    else
        return FL_EINPUT;
    return 0;
}

const char *chk_model_name(enum chk_model m)
{
    switch (m) {
    case CHK_MODEL_REGISTER:
        return "register";
    case CHK_MODEL_CAS_REGISTER:
        return "cas-register";
    case CHK_MODEL_KV:
        return "kv";
    }
    return "?";
}

const char *chk_verdict_name(enum chk_verdict v)
{
    switch (v) {
    case CHK_VALID:
        return "linearizable";
    case CHK_INVALID:
        return "not-linearizable";
    case CHK_UNKNOWN:
        return "unknown";
    }
    return "?";
}

/* ---- building ---------------------------------------------------------- */

/*
 * Interns a scalar as 'n' (null), 'i' + decimal digits, or 's' + the raw
 * string, so equal values get equal ids. Returns the id or a negative error.
 */
static int64_t value_id(struct chk_lin_history *h, const struct fl_json *v)
{
    fl_buf_clear(&h->scratch);
    switch (v->kind) {
    case FL_JSON_NULL:
        fl_buf_addc(&h->scratch, 'n');
        break;
    case FL_JSON_INT:
        fl_buf_printf(&h->scratch, "i%lld", (long long)v->u.i);
        break;
    case FL_JSON_STRING:
        fl_buf_addc(&h->scratch, 's');
        fl_buf_add(&h->scratch, v->u.s.ptr, v->u.s.len);
        break;
    default:
        return FL_EINPUT;
    }
    if (h->scratch.failed)
        return -ENOMEM;
    return fl_strtab_intern(&h->values, h->scratch.data, h->scratch.len);
}

int chk_lin_history_new(struct chk_lin_history **out,
                        const struct chk_lin_options *o)
{
    struct chk_lin_history *h = calloc(1, sizeof(*h));
    struct fl_json init;
    int64_t id;
    int rc;

    *out = NULL;
    if (h == NULL)
        return -ENOMEM;
    h->opts = *o;
    fl_budget_init(&h->budget, o->memory_limit_bytes);
    fl_arena_init(&h->arena, 4096, &h->budget);
    fl_strtab_init(&h->keys, &h->budget);
    fl_strtab_init(&h->values, &h->budget);
    fl_map64_init(&h->open, &h->budget);
    fl_buf_init(&h->scratch);
    h->keyed = -1;

    rc = fl_json_copy(&h->arena, &o->init, &h->opts.init);
    if (rc != 0)
        goto fail;
    init = h->opts.init;
    if (!o->has_init) {
        init.kind = o->model == CHK_MODEL_KV ? FL_JSON_STRING : FL_JSON_NULL;
        init.u.s.ptr = "";
        init.u.s.len = 0;
    }
    id = value_id(h, &(struct fl_json){.kind = FL_JSON_NULL});
    if (id < 0) {
        rc = (int)id;
        goto fail;
    }
    h->null_id = (uint32_t)id;
    id = value_id(h, &init);
    if (id < 0) {
        rc = id == FL_EINPUT ? FL_EINPUT : (int)id;
        goto fail;
    }
    h->init_id = (uint32_t)id;
    *out = h;
    return 0;
fail:
    chk_lin_history_free(h);
    return rc;
}

static void free_key_result(struct chk_lin_key_result *kr)
{
    free(kr->prefix);
    free(kr->concurrent);
    for (size_t i = 0; i < kr->states_len; i++)
        free(kr->states[i]);
    free(kr->states);
}

void chk_lin_history_free(struct chk_lin_history *h)
{
    if (h == NULL)
        return;
    if (h->have_result) {
        for (size_t i = 0; i < h->result.bad_len; i++)
            free_key_result(&h->result.bad[i]);
        free(h->result.bad);
    }
    fl_vec_free((void **)&h->ops, &h->ops_cap, sizeof(*h->ops), &h->budget);
    fl_vec_free((void **)&h->seq, &h->seq_cap, sizeof(*h->seq), &h->budget);
    fl_strtab_destroy(&h->keys);
    fl_strtab_destroy(&h->values);
    fl_map64_destroy(&h->open);
    fl_arena_destroy(&h->arena);
    fl_buf_free(&h->scratch);
    free(h);
}

struct fl_budget *chk_lin_history_budget(struct chk_lin_history *h)
{
    return &h->budget;
}

static int parse_f(enum chk_model model, struct fl_str f, enum chk_f *out)
{
    if (model == CHK_MODEL_KV) {
        if (fl_str_eq(f, "get"))
            *out = F_GET;
        else if (fl_str_eq(f, "put"))
            *out = F_PUT;
        else if (fl_str_eq(f, "append"))
            *out = F_APPEND;
        else
            return FL_EINPUT;
        return 0;
    }
    if (fl_str_eq(f, "read"))
        *out = F_READ;
    else if (fl_str_eq(f, "write"))
        *out = F_WRITE;
    else if (fl_str_eq(f, "cas") && model == CHK_MODEL_CAS_REGISTER)
        *out = F_CAS;
    else
        return FL_EINPUT;
    return 0;
}

static int scalar_id(struct chk_lin_history *h, const struct fl_json *v,
                     const char *what, char *msg, size_t size, uint32_t *out)
{
    int64_t id;

    if (h->opts.model == CHK_MODEL_KV && v->kind != FL_JSON_STRING &&
        v->kind != FL_JSON_NULL)
        return fl_input_error(msg, size,
                              "the kv model needs string values; %s is %s",
                              what, fl_json_kind_name(v->kind));
    id = value_id(h, v);
    if (id == FL_EINPUT)
        return fl_input_error(msg, size,
                              "%s must be null, an integer or a string, got %s",
                              what, fl_json_kind_name(v->kind));
    if (id < 0)
        return (int)id;
    *out = (uint32_t)id;
    return 0;
}

static int add_invoke(struct chk_lin_history *h, const struct fl_hist_event *ev,
                      enum chk_f f, int64_t key, char *msg, size_t size)
{
    struct chk_lin_op op = {0};
    uint64_t *slot;
    int inserted;
    int rc;

    op.process = ev->process;
    op.index = ev->index;
    op.invoke_line = ev->line;
    op.outcome = FL_HIST_INFO;
    op.f = (uint8_t)f;
    op.key = key;
    op.out = h->null_id;
    if (f == F_WRITE || f == F_PUT || f == F_APPEND) {
        rc = scalar_id(h, &ev->value, "the written value", msg, size, &op.arg);
        if (rc != 0)
            return rc;
    } else if (f == F_CAS) {
        if (ev->value.kind != FL_JSON_ARRAY || ev->value.u.array.count != 2)
            return fl_input_error(msg, size,
                                  "a cas value must be [expected, new]");
        rc = scalar_id(h, &ev->value.u.array.items[0], "the expected value",
                       msg, size, &op.arg);
        if (rc == 0)
            rc = scalar_id(h, &ev->value.u.array.items[1], "the new value", msg,
                           size, &op.arg2);
        if (rc != 0)
            return rc;
    }
    slot = fl_map64_get(&h->open, (uint64_t)ev->process);
    if (slot != NULL && *slot != NO_OP)
        return fl_input_error(msg, size,
                              "process %lld invokes while another of its "
                              "operations is open",
                              (long long)ev->process);
    rc = fl_vec_reserve((void **)&h->ops, &h->ops_cap, h->nops + 1,
                        sizeof(*h->ops), &h->budget);
    if (rc == 0)
        rc = fl_vec_reserve((void **)&h->seq, &h->seq_cap, h->nops + 1,
                            sizeof(*h->seq), &h->budget);
    if (rc != 0)
        return rc;
    if (slot == NULL) {
        slot = fl_map64_put(&h->open, (uint64_t)ev->process, &inserted);
        if (slot == NULL)
            return FL_EBUDGET;
    }
    *slot = h->nops;
    h->ops[h->nops] = op;
    h->seq[h->nops].call = h->next_seq++;
    h->seq[h->nops].ret = UINT32_MAX;
    h->nops++;
    return 0;
}

static int add_completion(struct chk_lin_history *h,
                          const struct fl_hist_event *ev, enum chk_f f,
                          char *msg, size_t size)
{
    uint64_t *slot = fl_map64_get(&h->open, (uint64_t)ev->process);
    struct chk_lin_op *op;
    int rc;

    if (slot == NULL || *slot == NO_OP)
        return fl_input_error(msg, size,
                              "%s completion for process %lld, which has no "
                              "open invocation",
                              fl_hist_type_name(ev->type),
                              (long long)ev->process);
    op = &h->ops[*slot];
    if (op->f != f)
        return fl_input_error(msg, size,
                              "completion f differs from its invocation's");
    if ((f == F_READ || f == F_GET) && ev->type == FL_HIST_OK) {
        rc = scalar_id(h, &ev->value, "the value read", msg, size, &op->out);
        if (rc != 0)
            return rc;
    }
    op->outcome = ev->type;
    op->complete_line = ev->line;
    h->seq[*slot].ret = h->next_seq++;
    *slot = NO_OP;
    return 0;
}

int chk_lin_history_add(struct chk_lin_history *h,
                        const struct fl_hist_event *ev, char *msg,
                        size_t msg_size)
{
    enum chk_f f;
    int64_t key = -1;
    int keyed = ev->key.ptr != NULL;

    if (parse_f(h->opts.model, ev->f, &f) != 0) {
        const char *expected =
            h->opts.model == CHK_MODEL_KV         ? "get, put or append"
            : h->opts.model == CHK_MODEL_REGISTER ? "read or write"
                                                  : "read, write or cas";
        return fl_input_error(msg, msg_size,
                              "f \"%.*s\" is not an operation of the %s model "
                              "(expected %s)",
                              (int)(ev->f.len > 40 ? 40 : ev->f.len), ev->f.ptr,
                              chk_model_name(h->opts.model), expected);
    }
    if (h->keyed < 0) {
        h->keyed = keyed;
        h->keyed_line = ev->line;
    } else if (h->keyed != keyed) {
        return fl_input_error(
            msg, msg_size,
            "this operation %s a key but the one on line %llu %s; "
            "either every operation has a key or none has",
            keyed ? "has" : "lacks", (unsigned long long)h->keyed_line,
            h->keyed ? "has" : "lacks");
    }
    if (h->next_seq >= UINT32_MAX - 1)
        return fl_input_error(msg, msg_size, "history longer than %u events",
                              UINT32_MAX - 2);
    if (keyed) {
        key = fl_strtab_intern(&h->keys, ev->key.ptr, ev->key.len);
        if (key < 0)
            return (int)key;
    }
    if (ev->type == FL_HIST_INVOKE)
        return add_invoke(h, ev, f, key, msg, msg_size);
    return add_completion(h, ev, f, msg, msg_size);
}

/* ---- per-key preparation ----------------------------------------------- */

/*
 * Register models: drops info writes and cases whose new value no read or
 * cas observes. This is sound when no operation tests for inequality (no
 * compare-failed cas). If a linearization applies such a write w, removing
 * w changes the state only between w and the next write. No read or cas in
 * that stretch can have seen w's value, so the linearization stays legal.
 */
static int drop_unobserved_writes(struct wgl_op *ops, size_t *k,
                                  struct fl_budget *budget)
{
    struct fl_map64 observed;
    size_t kept = 0;
    int inserted;
    int rc = 0;

    fl_map64_init(&observed, budget);
    for (size_t i = 0; i < *k && rc == 0; i++) {
        if (ops[i].kind == WGL_READ || ops[i].kind == WGL_CAS) {
            if (fl_map64_put(&observed, ops[i].arg, &inserted) == NULL)
                rc = FL_EBUDGET;
        }
    }
    for (size_t i = 0; i < *k && rc == 0; i++) {
        const struct wgl_op *w = &ops[i];
        uint32_t written = w->kind == WGL_CAS ? w->arg2 : w->arg;
        if (w->info && (w->kind == WGL_WRITE || w->kind == WGL_CAS) &&
            fl_map64_get(&observed, written) == NULL)
            continue;
        ops[kept++] = *w;
    }
    if (rc == 0)
        *k = kept;
    fl_map64_destroy(&observed);
    return rc;
}

/*
 * kv model: drops info puts and appends whose argument occurs in no read
 * result. The state keeps an applied argument as a substring until the
 * next put, so every read in that stretch would contain it. With no such
 * read, removing the operation changes no read and no put.
 */
static int drop_unobserved_appends(const struct chk_lin_history *h,
                                   struct wgl_op *ops, size_t *k,
                                   const struct fl_deadline *deadline,
                                   struct fl_budget *budget)
{
    struct fl_map64 distinct;
    uint32_t *results = NULL;
    size_t nresults = 0;
    size_t results_cap = 0;
    size_t kept = 0;
    size_t checked = 0;
    int inserted;
    int rc = 0;

    /* Each distinct read result once: reads often repeat a value. */
    fl_map64_init(&distinct, budget);
    for (size_t i = 0; i < *k && rc == 0; i++) {
        if (ops[i].kind != WGL_READ)
            continue;
        if (fl_map64_put(&distinct, ops[i].arg, &inserted) == NULL)
            rc = FL_EBUDGET;
        else if (inserted && (rc = fl_vec_reserve(
                                  (void **)&results, &results_cap, nresults + 1,
                                  sizeof(*results), budget)) == 0)
            results[nresults++] = ops[i].arg;
    }
    for (size_t i = 0; i < *k && rc == 0; i++) {
        const struct wgl_op *w = &ops[i];
        bool seen = true;
        if (w->info && (w->kind == WGL_WRITE || w->kind == WGL_APPEND)) {
            struct fl_str arg = fl_strtab_get(&h->values, w->arg);
            /* The cost is the indeterminate updates times the length of
             * the distinct results, so it counts against the time limit. */
            if (++checked % 256 == 0 && fl_deadline_passed(deadline)) {
                rc = -ETIMEDOUT;
                break;
            }
            seen = arg.len <= 1; /* the empty string is in every result */
            for (size_t r = 0; r < nresults && !seen; r++) {
                struct fl_str got = fl_strtab_get(&h->values, results[r]);
                seen = got.len > 1 && got.ptr[0] == 's' &&
                       memmem(got.ptr + 1, got.len - 1, arg.ptr + 1,
                              arg.len - 1) != NULL;
            }
        }
        if (seen)
            ops[kept++] = *w;
    }
    if (rc == 0)
        *k = kept;
    fl_vec_free((void **)&results, &results_cap, sizeof(*results), budget);
    fl_map64_destroy(&distinct);
    return rc;
}

/*
 * Turns the operations of one key into search operations: drops those that
 * cannot constrain the result and classifies the rest. Dropped: fail
 * outcomes (except a cas that compared, under compare-failed),
 * indeterminate reads, null reads under read_null unknown, and unobserved
 * indeterminate updates (see the two functions above).
 */
static int prepare_key(const struct chk_lin_history *h, const uint32_t *idx,
                       size_t n, struct wgl_op *ops, size_t *nout,
                       const struct fl_deadline *deadline,
                       struct fl_budget *budget)
{
    size_t k = 0;
    bool any_cmpfail = false;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        const struct chk_lin_op *op = &h->ops[idx[i]];
        struct wgl_op w = {
            .global = idx[i],
            .call = h->seq[idx[i]].call,
            .ret = h->seq[idx[i]].ret,
            .arg = op->arg,
            .arg2 = op->arg2,
        };
        bool ok = op->outcome == FL_HIST_OK;
        bool info = op->outcome == FL_HIST_INFO;

        switch ((enum chk_f)op->f) {
        case F_READ:
        case F_GET:
            if (!ok)
                continue;
            if (op->out == h->null_id &&
                h->opts.read_null == CHK_READ_NULL_UNKNOWN)
                continue;
            w.kind = WGL_READ;
            w.arg = op->out;
            break;
        case F_WRITE:
        case F_PUT:
            if (!ok && !info)
                continue;
            w.kind = WGL_WRITE;
            break;
        case F_APPEND:
            if (!ok && !info)
                continue;
            w.kind = WGL_APPEND;
            break;
        case F_CAS:
            if (op->outcome == FL_HIST_FAIL) {
                if (h->opts.cas_fail != CHK_CAS_FAIL_COMPARE_FAILED)
                    continue;
                w.kind = WGL_CMPFAIL;
                any_cmpfail = true;
                break;
            }
            w.kind = WGL_CAS;
            break;
        }
        w.info = info;
        if (info)
            w.ret = UINT32_MAX;
        ops[k++] = w;
    }

    if (h->opts.model == CHK_MODEL_KV)
        rc = drop_unobserved_appends(h, ops, &k, deadline, budget);
    else if (!any_cmpfail)
        rc = drop_unobserved_writes(ops, &k, budget);
    *nout = k;
    return rc;
}

/* ---- scheduling -------------------------------------------------------- */

/*
 * Keys are searched in time slices: a worker runs a key's search for a
 * budget of steps, and a search that is not finished goes to the back of the
 * queue with twice the budget. A key whose search explodes therefore cannot
 * keep the workers from the other keys. One invalid key decides the verdict
 * as soon as any worker reaches it, and the remaining searches then stop
 * (unless all_keys is set). Doubling keeps the cost of pausing to a
 * logarithmic number of queue operations per key.
 */
#define FIRST_SLICE_STEPS 8192
#define MAX_SLICE_STEPS   (1u << 22)

enum stop_reason { STOP_NONE, STOP_DECIDED, STOP_BUDGET };

struct task {
    uint32_t key;
    uint64_t slice;
    size_t kept;               /* operations left after pruning */
    struct wgl_search *search; /* NULL until first run */
};

struct job {
    struct chk_lin_history *h;
    const uint32_t *order; /* operations grouped by key */
    const size_t *start;   /* per key: first position in order */
    const size_t *count;
    struct wgl_shared shared;
    atomic_bool cancel;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct task *queue; /* ring buffer of nkeys slots */
    size_t nkeys;
    size_t head;
    size_t len;
    size_t inflight;
    enum stop_reason stop;
    size_t searched;
    size_t skipped;
    struct chk_lin_key_result *bad;
    size_t bad_len;
    size_t bad_cap;
    int error;
};

/* Called with the lock held. */
static void record(struct job *j, struct chk_lin_key_result *kr)
{
    if (fl_vec_reserve((void **)&j->bad, &j->bad_cap, j->bad_len + 1,
                       sizeof(*j->bad), NULL) == 0) {
        j->bad[j->bad_len++] = *kr;
    } else {
        free_key_result(kr);
        if (j->error == 0)
            j->error = -ENOMEM;
    }
}

/* Called with the lock held. */
static void stop_all(struct job *j, enum stop_reason why)
{
    if (j->stop == STOP_NONE)
        j->stop = why;
    atomic_store(&j->cancel, true);
}

/* Starts the search of t's key; returns 0 or a negative error. */
static int start_task(struct job *j, struct task *t, size_t *kept)
{
    size_t n = j->count[t->key];
    struct wgl_op *ops = malloc((n ? n : 1) * sizeof(*ops));
    int rc;

    *kept = 0;
    if (ops == NULL)
        return -ENOMEM;
    rc = prepare_key(j->h, j->order + j->start[t->key], n, ops, kept,
                     &j->shared.deadline, &j->h->budget);
    if (rc != 0) {
        free(ops);
        return rc;
    }
    return wgl_start(&j->shared, ops, *kept, j->h->init_id, &t->search);
}

/* Runs one slice of t; returns WGL_PAUSED, a verdict or a negative error.
 * Fills kr when the key is decided. */
static int run_task(struct job *j, struct task *t,
                    struct chk_lin_key_result *kr)
{
    int rc;

    if (t->search == NULL) {
        rc = start_task(j, t, &t->kept);
        if (rc != 0)
            return rc;
    }
    rc = wgl_run(t->search, t->slice);
    if (rc == WGL_PAUSED || rc < 0)
        return rc;
    kr->verdict = (enum chk_verdict)rc;
    if (rc == CHK_UNKNOWN)
        snprintf(kr->reason, sizeof(kr->reason), "%s", wgl_reason(t->search));
    else if (rc == CHK_INVALID && wgl_fill_invalid(t->search, kr) != 0)
        return -ENOMEM;
    return rc;
}

static void *worker(void *arg)
{
    struct job *j = arg;

    pthread_mutex_lock(&j->lock);
    for (;;) {
        struct task t;
        struct chk_lin_key_result kr;
        int rc;

        if (j->len == 0) {
            if (j->inflight == 0)
                break;
            pthread_cond_wait(&j->wake, &j->lock);
            continue;
        }
        t = j->queue[j->head];
        j->head = (j->head + 1) % j->nkeys;
        j->len--;
        if (atomic_load(&j->cancel)) {
            /* The verdict is known or unreachable: drop the key. */
            if (j->stop == STOP_DECIDED) {
                j->skipped++;
            } else {
                memset(&kr, 0, sizeof(kr));
                kr.key = j->h->keyed == 1 ? (int64_t)t.key : -1;
                kr.ops = j->count[t.key];
                kr.verdict = CHK_UNKNOWN;
                snprintf(kr.reason, sizeof(kr.reason),
                         "not checked: another key ran out of budget");
                record(j, &kr);
            }
            wgl_free(t.search);
            continue;
        }
        j->inflight++;
        pthread_mutex_unlock(&j->lock);

        memset(&kr, 0, sizeof(kr));
        kr.key = j->h->keyed == 1 ? (int64_t)t.key : -1;
        kr.ops = j->count[t.key];
        rc = run_task(j, &t, &kr);

        pthread_mutex_lock(&j->lock);
        j->inflight--;
        if (rc == WGL_PAUSED) {
            if (t.slice < MAX_SLICE_STEPS)
                t.slice *= 2;
            j->queue[(j->head + j->len) % j->nkeys] = t;
            j->len++;
            pthread_cond_signal(&j->wake);
            continue;
        }
        if (rc == FL_EBUDGET || rc == -ETIMEDOUT) {
            kr.verdict = CHK_UNKNOWN;
            snprintf(kr.reason, sizeof(kr.reason), "%s limit reached",
                     rc == FL_EBUDGET ? "memory" : "time");
            rc = CHK_UNKNOWN;
        }
        kr.searched = t.kept;
        j->searched += t.kept;
        wgl_free(t.search);
        if (rc < 0) {
            free_key_result(&kr);
            if (j->error == 0)
                j->error = rc;
            stop_all(j, STOP_BUDGET);
        } else if (rc == CHK_INVALID) {
            record(j, &kr);
            if (!j->h->opts.all_keys)
                stop_all(j, STOP_DECIDED);
        } else if (rc == CHK_UNKNOWN) {
            if (j->stop == STOP_DECIDED) {
                j->skipped++;
                free_key_result(&kr);
            } else {
                record(j, &kr);
                stop_all(j, STOP_BUDGET);
            }
        }
        if (j->len == 0 && j->inflight == 0)
            pthread_cond_broadcast(&j->wake);
    }
    pthread_cond_broadcast(&j->wake);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

static int cmp_bad(const void *a, const void *b)
{
    const struct chk_lin_key_result *x = a;
    const struct chk_lin_key_result *y = b;

    if (x->verdict != y->verdict)
        return x->verdict == CHK_INVALID ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

static int cmp_size(const void *a, const void *b, void *count)
{
    const struct task *x = a;
    const struct task *y = b;
    size_t cx = ((const size_t *)count)[x->key];
    size_t cy = ((const size_t *)count)[y->key];

    if (cx != cy)
        return (cx < cy) - (cx > cy);
    return (x->key > y->key) - (x->key < y->key);
}

static bool is_limit_reason(const char *reason)
{
    return strcmp(reason, "time limit reached") == 0 ||
           strcmp(reason, "memory limit reached") == 0;
}

int chk_lin_check(struct chk_lin_history *h, struct chk_lin_result *res)
{
    int64_t started = fl_clock_now_ns();
    size_t nkeys = h->keyed == 1 ? h->keys.count : (h->nops ? 1 : 0);
    size_t alloc_keys = nkeys ? nkeys : 1;
    size_t *count = calloc(alloc_keys, sizeof(size_t));
    size_t *start = calloc(alloc_keys, sizeof(size_t));
    size_t *fill = calloc(alloc_keys, sizeof(size_t));
    uint32_t *order = malloc((h->nops ? h->nops : 1) * sizeof(uint32_t));
    struct job j;
    long threads = h->opts.threads;
    pthread_t *tids = NULL;
    long spawned = 0;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    memset(&j, 0, sizeof(j));
    j.queue = calloc(alloc_keys, sizeof(*j.queue));
    if (count == NULL || start == NULL || fill == NULL || order == NULL ||
        j.queue == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    /* Group operations by key, keeping call order within a key. */
    for (size_t i = 0; i < h->nops; i++)
        count[h->keyed == 1 ? h->ops[i].key : 0]++;
    for (size_t k = 1; k < nkeys; k++)
        start[k] = start[k - 1] + count[k - 1];
    for (size_t i = 0; i < h->nops; i++) {
        size_t k = h->keyed == 1 ? (size_t)h->ops[i].key : 0;
        order[start[k] + fill[k]++] = (uint32_t)i;
    }
    /* Largest keys first, so the longest searches start early. */
    for (size_t k = 0; k < nkeys; k++) {
        j.queue[k].key = (uint32_t)k;
        j.queue[k].slice = FIRST_SLICE_STEPS;
    }
    qsort_r(j.queue, nkeys, sizeof(*j.queue), cmp_size, count);

    j.h = h;
    j.order = order;
    j.start = start;
    j.count = count;
    j.nkeys = alloc_keys;
    j.len = nkeys;
    atomic_init(&j.cancel, false);
    pthread_mutex_init(&j.lock, NULL);
    pthread_cond_init(&j.wake, NULL);
    j.shared.budget = &h->budget;
    j.shared.cancel = &j.cancel;
    j.shared.values = &h->values;
    fl_deadline_set(&j.shared.deadline,
                    fl_clock_sec_to_ns(h->opts.time_limit_s));

    if (threads <= 0)
        threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    if ((size_t)threads > nkeys)
        threads = nkeys > 0 ? (long)nkeys : 1;
    if (threads > 1) {
        tids = calloc((size_t)threads - 1, sizeof(*tids));
        for (long t = 0; tids != NULL && t < threads - 1; t++) {
            if (pthread_create(&tids[t], NULL, worker, &j) != 0)
                break;
            spawned++;
        }
    }
    worker(&j); /* the calling thread works too */
    for (long t = 0; t < spawned; t++)
        pthread_join(tids[t], NULL);
    free(tids);
    pthread_cond_destroy(&j.wake);
    pthread_mutex_destroy(&j.lock);

    if (j.error != 0) {
        for (size_t i = 0; i < j.bad_len; i++)
            free_key_result(&j.bad[i]);
        free(j.bad);
        rc = j.error;
        goto out;
    }
    if (j.bad_len > 1)
        qsort(j.bad, j.bad_len, sizeof(*j.bad), cmp_bad);
    res->verdict = CHK_VALID;
    for (size_t i = 0; i < j.bad_len; i++) {
        if (j.bad[i].verdict == CHK_INVALID) {
            res->verdict = CHK_INVALID;
            break;
        }
        res->verdict = CHK_UNKNOWN;
        /* Prefer the key that hit a limit over those stopped because of
         * it, whose reasons only point elsewhere. */
        if (res->reason[0] == '\0' || is_limit_reason(j.bad[i].reason))
            snprintf(res->reason, sizeof(res->reason), "%s", j.bad[i].reason);
    }
    if (h->opts.time_limit_s > 0 &&
        strcmp(res->reason, "time limit reached") == 0)
        snprintf(res->reason, sizeof(res->reason), "time limit of %g s reached",
                 h->opts.time_limit_s);
    if (strcmp(res->reason, "memory limit reached") == 0)
        snprintf(res->reason, sizeof(res->reason),
                 "memory limit of %lld MiB reached",
                 (long long)(h->opts.memory_limit_bytes >> 20));
    res->ops = h->nops;
    res->keys = nkeys;
    res->searched = j.searched;
    res->skipped = j.skipped;
    res->bad = j.bad;
    res->bad_len = j.bad_len;
    res->elapsed_ns = fl_clock_since_ns(started);
    if (h->have_result) {
        for (size_t i = 0; i < h->result.bad_len; i++)
            free_key_result(&h->result.bad[i]);
        free(h->result.bad);
    }
    h->result = *res;
    h->have_result = true;
out:
    free(count);
    free(start);
    free(fill);
    free(order);
    free(j.queue);
    return rc;
}

/* ---- rendering --------------------------------------------------------- */

const struct chk_lin_op *chk_lin_op_get(const struct chk_lin_history *h,
                                        uint32_t op)
{
    return &h->ops[op];
}

size_t chk_lin_op_count(const struct chk_lin_history *h)
{
    return h->nops;
}

struct fl_str chk_lin_key_name(const struct chk_lin_history *h, int64_t key)
{
    struct fl_str none = {NULL, 0};
    if (key < 0 || (size_t)key >= h->keys.count)
        return none;
    return fl_strtab_get(&h->keys, (uint32_t)key);
}

void chk_lin_value_json(const struct chk_lin_history *h, uint32_t id,
                        struct fl_buf *b)
{
    wgl_encoded_json(fl_strtab_get(&h->values, id), b);
}

const char *chk_lin_op_f(const struct chk_lin_op *op)
{
    return op->f < sizeof(f_names) / sizeof(f_names[0]) ? f_names[op->f] : "?";
}

static void op_value(const struct chk_lin_history *h,
                     const struct chk_lin_op *op, struct fl_buf *b)
{
    switch ((enum chk_f)op->f) {
    case F_READ:
    case F_GET:
        fl_buf_adds(b, "null");
        break;
    case F_CAS:
        fl_buf_addc(b, '[');
        chk_lin_value_json(h, op->arg, b);
        fl_buf_addc(b, ',');
        chk_lin_value_json(h, op->arg2, b);
        fl_buf_addc(b, ']');
        break;
    default:
        chk_lin_value_json(h, op->arg, b);
    }
}

void chk_lin_describe_op(const struct chk_lin_history *h, uint32_t opi,
                         struct fl_buf *b)
{
    const struct chk_lin_op *op = &h->ops[opi];
    bool reads = op->f == F_READ || op->f == F_GET;

    fl_buf_printf(b, "process %lld %s", (long long)op->process,
                  chk_lin_op_f(op));
    if (!reads) {
        fl_buf_addc(b, ' ');
        op_value(h, op, b);
    }
    if (op->complete_line == 0 && op->outcome == FL_HIST_INFO) {
        fl_buf_adds(b, " -> never completed");
    } else if (reads && op->outcome == FL_HIST_OK) {
        fl_buf_adds(b, " -> ");
        chk_lin_value_json(h, op->out, b);
    } else {
        fl_buf_printf(b, " -> %s", fl_hist_type_name(op->outcome));
    }
    if (op->invoke_line != 0) {
        if (op->complete_line != 0)
            fl_buf_printf(b, " (lines %llu-%llu)",
                          (unsigned long long)op->invoke_line,
                          (unsigned long long)op->complete_line);
        else
            fl_buf_printf(b, " (line %llu)",
                          (unsigned long long)op->invoke_line);
    }
}

static void op_json(const struct chk_lin_history *h, uint32_t opi,
                    struct fl_buf *b)
{
    const struct chk_lin_op *op = &h->ops[opi];

    fl_buf_printf(b, "{\"process\":%lld,\"f\":\"%s\",\"value\":",
                  (long long)op->process, chk_lin_op_f(op));
    op_value(h, op, b);
    fl_buf_printf(b, ",\"outcome\":\"%s\"",
                  op->complete_line == 0 && op->outcome == FL_HIST_INFO
                      ? "none"
                      : fl_hist_type_name(op->outcome));
    if ((op->f == F_READ || op->f == F_GET) && op->outcome == FL_HIST_OK) {
        fl_buf_adds(b, ",\"output\":");
        chk_lin_value_json(h, op->out, b);
    }
    if (op->index >= 0)
        fl_buf_printf(b, ",\"index\":%lld", (long long)op->index);
    if (op->invoke_line != 0)
        fl_buf_printf(b, ",\"invoke_line\":%llu",
                      (unsigned long long)op->invoke_line);
    if (op->complete_line != 0)
        fl_buf_printf(b, ",\"complete_line\":%llu",
                      (unsigned long long)op->complete_line);
    fl_buf_addc(b, '}');
}

static void key_json(const struct chk_lin_history *h, int64_t key,
                     struct fl_buf *b)
{
    struct fl_str name = chk_lin_key_name(h, key);
    if (name.ptr == NULL)
        fl_buf_adds(b, "null");
    else
        fl_buf_add_json_string(b, name.ptr, name.len);
}

void chk_lin_result_json(const struct chk_lin_history *h,
                         const struct chk_lin_result *res, struct fl_buf *b)
{
    fl_buf_printf(b, "{\"verdict\":\"%s\",\"valid\":%s,\"model\":\"%s\"",
                  chk_verdict_name(res->verdict),
                  res->verdict == CHK_VALID     ? "true"
                  : res->verdict == CHK_INVALID ? "false"
                                                : "\"unknown\"",
                  chk_model_name(h->opts.model));
    fl_buf_printf(b,
                  ",\"ops\":%zu,\"keys\":%zu,\"searched_ops\":%zu,"
                  "\"skipped_keys\":%zu",
                  res->ops, res->keys, res->searched, res->skipped);
    fl_buf_printf(b, ",\"elapsed_ms\":%.3f", (double)res->elapsed_ns / 1e6);
    if (res->verdict == CHK_UNKNOWN) {
        fl_buf_adds(b, ",\"reason\":");
        fl_buf_add_json_string(b, res->reason, strlen(res->reason));
    }
    fl_buf_adds(b, ",\"anomalies\":[");
    bool first = true;
    for (size_t i = 0; i < res->bad_len; i++) {
        const struct chk_lin_key_result *kr = &res->bad[i];
        if (kr->verdict != CHK_INVALID)
            continue;
        if (!first)
            fl_buf_addc(b, ',');
        first = false;
        fl_buf_adds(b, "{\"kind\":\"not-linearizable\",\"key\":");
        key_json(h, kr->key, b);
        fl_buf_printf(b, ",\"key_ops\":%zu,\"detail\":", kr->ops);
        fl_buf_add_json_string(b, kr->detail, strlen(kr->detail));
        fl_buf_adds(b, ",\"op\":");
        op_json(h, kr->failed_op, b);
        fl_buf_adds(b, ",\"prefix\":[");
        for (size_t k = 0; k < kr->prefix_len; k++) {
            if (k > 0)
                fl_buf_addc(b, ',');
            op_json(h, kr->prefix[k], b);
        }
        fl_buf_adds(b, "],\"concurrent\":[");
        for (size_t k = 0; k < kr->concurrent_len; k++) {
            if (k > 0)
                fl_buf_addc(b, ',');
            op_json(h, kr->concurrent[k], b);
        }
        fl_buf_adds(b, "],\"states\":[");
        for (size_t k = 0; k < kr->states_len; k++) {
            if (k > 0)
                fl_buf_addc(b, ',');
            fl_buf_adds(b, kr->states[k]);
        }
        fl_buf_printf(b, "],\"states_truncated\":%s}",
                      kr->states_truncated ? "true" : "false");
    }
    fl_buf_adds(b, "],\"unknown_keys\":[");
    first = true;
    for (size_t i = 0; i < res->bad_len; i++) {
        const struct chk_lin_key_result *kr = &res->bad[i];
        if (kr->verdict != CHK_UNKNOWN)
            continue;
        if (!first)
            fl_buf_addc(b, ',');
        first = false;
        fl_buf_adds(b, "{\"key\":");
        key_json(h, kr->key, b);
        fl_buf_adds(b, ",\"reason\":");
        fl_buf_add_json_string(b, kr->reason, strlen(kr->reason));
        fl_buf_addc(b, '}');
    }
    fl_buf_adds(b, "]}");
}

#define TEXT_LIST_MAX 12

void chk_lin_result_text(const struct chk_lin_history *h,
                         const struct chk_lin_result *res, struct fl_buf *b)
{
    size_t ninvalid = 0;
    size_t nunknown = 0;

    for (size_t i = 0; i < res->bad_len; i++) {
        if (res->bad[i].verdict == CHK_INVALID)
            ninvalid++;
        else
            nunknown++;
    }
    fl_buf_printf(b, "verdict: %s\n", chk_verdict_name(res->verdict));
    fl_buf_printf(b,
                  "model: %s, %zu operation%s, %zu key%s, %zu searched "
                  "after pruning, %.1f ms\n",
                  chk_model_name(h->opts.model), res->ops,
                  res->ops == 1 ? "" : "s", res->keys,
                  res->keys == 1 ? "" : "s", res->searched,
                  (double)res->elapsed_ns / 1e6);
    if (res->verdict == CHK_UNKNOWN)
        fl_buf_printf(b, "reason: %s (%zu key%s undecided)\n", res->reason,
                      nunknown, nunknown == 1 ? "" : "s");
    else if (nunknown > 0)
        fl_buf_printf(b, "%zu other key%s undecided: a limit was reached\n",
                      nunknown, nunknown == 1 ? " was" : "s were");
    if (res->skipped > 0)
        fl_buf_printf(b,
                      "%zu key%s not checked once the verdict was known "
                      "(--all-keys checks %s)\n",
                      res->skipped, res->skipped == 1 ? " was" : "s were",
                      res->skipped == 1 ? "it" : "them");
    for (size_t i = 0; i < res->bad_len && i < 1; i++) {
        const struct chk_lin_key_result *kr = &res->bad[i];
        if (kr->verdict != CHK_INVALID)
            break;
        if (ninvalid > 1)
            fl_buf_printf(b, "%zu keys are not linearizable; the first:\n",
                          ninvalid);
        if (kr->key >= 0) {
            struct fl_str name = chk_lin_key_name(h, kr->key);
            fl_buf_adds(b, "key: ");
            fl_buf_add_json_string(b, name.ptr, name.len);
            fl_buf_printf(b, " (%zu operations)\n", kr->ops);
        }
        fl_buf_adds(b, "operation that cannot be linearized:\n  ");
        chk_lin_describe_op(h, kr->failed_op, b);
        if (kr->detail[0] != '\0')
            fl_buf_printf(b, "\n  (%s)", kr->detail);
        fl_buf_printf(b,
                      "\nlongest linearizable prefix found: %zu "
                      "operation%s",
                      kr->prefix_len, kr->prefix_len == 1 ? "" : "s");
        size_t from =
            kr->prefix_len > TEXT_LIST_MAX ? kr->prefix_len - TEXT_LIST_MAX : 0;
        fl_buf_adds(b, from > 0 ? ", the last of them:\n" : "\n");
        for (size_t k = from; k < kr->prefix_len; k++) {
            fl_buf_printf(b, "  %zu. ", k + 1);
            chk_lin_describe_op(h, kr->prefix[k], b);
            fl_buf_addc(b, '\n');
        }
        fl_buf_printf(b, "operations concurrent with it: %zu\n",
                      kr->concurrent_len);
        for (size_t k = 0; k < kr->concurrent_len && k < TEXT_LIST_MAX; k++) {
            fl_buf_adds(b, "  ");
            chk_lin_describe_op(h, kr->concurrent[k], b);
            fl_buf_addc(b, '\n');
        }
        if (kr->concurrent_len > TEXT_LIST_MAX)
            fl_buf_printf(b, "  ... and %zu more (see --json)\n",
                          kr->concurrent_len - TEXT_LIST_MAX);
        fl_buf_adds(b, "model states reachable just before it: ");
        for (size_t k = 0; k < kr->states_len; k++) {
            if (k > 0)
                fl_buf_adds(b, ", ");
            fl_buf_adds(b, kr->states[k]);
        }
        if (kr->states_len == 0)
            fl_buf_adds(b, "(none)");
        if (kr->states_truncated)
            fl_buf_adds(b, ", ...");
        fl_buf_addc(b, '\n');
    }
}
