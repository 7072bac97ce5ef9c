/*
 * The per-key linearizability search.
 *
 * This is the Wing-Gong-Lowe algorithm (G. Lowe, "Testing for
 * linearizability", 2017). A doubly linked list contains the call and return
 * entries of the sub-history in time order. The search repeatedly picks a
 * call entry that appears before the first remaining return entry, applies
 * the operation to the model, and "lifts" its call and return out of the
 * list.
 * Reaching a return entry means that operation's deadline passed without it
 * being linearized, so the search backtracks. A cache of configurations (set
 * of linearized operations, model state) already explored cuts off repeated
 * work.
 *
 * "Required" operations completed ok (or, under compare-failed, failed cas);
 * "info" operations may take effect any time after their invocation, or
 * never, so they have no return entry. On top of the algorithm, five
 * reductions, each sound and complete:
 *
 * 1. Pure operations first, without branching. A read (or a cas that found
 *    another value) changes no state. If one is callable and legal in the
 *    current state, linearizing it now loses no solution: any linearization
 *    that places it later can move it here, because nothing it depends on
 *    changes and every operation that must precede it is already
 *    linearized. So each configuration first takes such an operation as a
 *    forced step, and backtracking pops forced steps without trying
 *    alternatives.
 *
 * 2. Interchangeable info operations. Two info operations with the same kind
 *    and arguments have the same (infinite) deadline, so whichever was
 *    invoked first can always stand in for the other. Each such class is
 *    linearized in invocation order only, which collapses the 2^k subsets of
 *    k identical pending writes into k + 1 counts.
 *
 * 3. Info operations only where they matter. In a linearization, call a
 *    maximal sequence of consecutive info operations a run. A run followed
 *    by a blind write (or put), or one that leaves the state as it found it,
 *    can be deleted without changing what any required operation observes.
 *    So the search only lets a run end in a required operation that reads
 *    the state (read, failed cas, cas, append) and only when the state
 *    differs from the one the run started in. The run's start state is part
 *    of the cached configuration, since it restricts what may follow.
 *
 * 4. Dead configurations are cut early. The operation whose return entry
 *    comes first must be linearized before anything invoked after that
 *    return, so only the operations callable now can run before it. If it
 *    is a read whose value none of them can produce (no write or cas of
 *    that value; with appends, no put and a state that is no longer a prefix
 *    of the value), every continuation fails and the search backtracks
 *    without exploring them.
 *
 *    With appends there is a stronger form: updates in a kv key only extend
 *    the state until the next put, so after every update the state must
 *    still be a prefix of the value of the pending read with the earliest
 *    deadline, unless a put invoked before that read returned is still
 *    available. A wrong order of concurrent appends is thus cut at the
 *    first append, not at the read.
 *
 *    For registers, every value also has two counts: required reads and
 *    cases that still need the state to equal it, and unlinearized writes
 *    and cases that can still produce it. A value that is needed but can
 *    no longer be produced, and is not the current state, makes the
 *    configuration dead. A read of a value nobody wrote fails at the root.
 *
 * 5. Dominance between configurations. Because of reduction 2, the info
 *    operations a configuration has used form, per class, a prefix in
 *    invocation order, so "used no more of each class" is a subset test on
 *    their bits. A configuration with the same required operations, state
 *    and run start as one already explored to failure, and a superset of its
 *    info operations used, has strictly fewer options and must fail too. The
 *    cache is keyed by the required part; each key lists the info parts seen,
 *    and a finished entry whose info part is a subset prunes the new one.
 *    Entries still on the search path never prune by dominance, only by
 *    equality, so no branch is cut on the strength of an unfinished one.
 *
 * Refuting a history with many info operations is where the exact search
 * explodes: every combination of info operations used is a different
 * configuration. So a key with info writes or cases is first searched in a
 * relaxation where such an operation may be applied any number of times
 * after its invocation (appends are not, since repeating one would grow
 * the state without bound). The relaxation admits every linearization of the
 * real history, so when it has none, the history has none. When it finds
 * one, the uses of each class are matched greedily, in order, to distinct
 * members invoked early enough; if that works the linearization is real.
 * Otherwise a "counted" search follows: it uses each info operation at most
 * once, like the exact search, but keeps the relaxed cache, which ignores
 * which info operations were used. It may therefore miss a linearization,
 * but any it finds is real. It gets a budget of steps proportional to what
 * the relaxed search took; when it finds nothing within it, the exact
 * search runs. The relaxed configurations carry no
 * info bits, so their number is that of a history without crashes.
 *
 * Required operations are numbered in call order, so their linearized set
 * is a run of ones, a short window, then zeros; the cache stores only the
 * window. The hash of the required set is kept incrementally (Zobrist
 * hashing), so a lookup does not rehash the set.
 *
 * NOTE: refuting a read of a value that was written and later overwritten
 * (a stale read) still means exhausting the orders of the operations
 * concurrent before it, which grows exponentially with the number of
 * concurrent clients on one key. Past the time or memory limit the verdict
 * is unknown; 10k operations from 50 clients on one key are such a case.
 *
 * The driver in linear.c applies the reductions that need the whole key
 * before the search starts (dropping indeterminate reads and unobserved
 * indeterminate writes).
 */
#include "wgl.h"

#include "clock.h"
#include "error.h"
#include "rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPORTED_STATES 16
#define BUDGET_CHECK_EVERY  1024
#define NO_RUN              UINT32_MAX
/* The counted search may take this many steps, plus COUNTED_FACTOR times
 * the relaxed search's, before the exact search takes over. */
#define COUNTED_BASE_STEPS (1u << 20)
#define COUNTED_FACTOR     8
#define UNOBSERVABLE       (UINT32_MAX - 1) /* kv: no read can see this state */

/* One set of info operations used, for a cache key. */
struct info_rec {
    struct info_rec *next;
    bool done; /* its subtree was explored and failed */
    uint32_t nwords;
    uint64_t words[]; /* info bits, trailing zero words trimmed */
};

/* A cache key: required operations linearized, state and run start. */
struct key_rec {
    uint32_t state;
    uint32_t run_start;
    uint32_t lo; /* first stored word; words before it are all ones */
    uint32_t n1; /* stored words; words after them are zero */
    struct info_rec *infos;
    uint64_t words[];
};

struct cache_slot {
    uint64_t hash;
    struct key_rec *key; /* NULL: empty slot */
};

struct frame {
    uint32_t op;             /* the operation linearized */
    uint32_t entry;          /* its call entry; 0 for info operations */
    uint32_t window_end;     /* info steps: the first return entry then */
    uint32_t candidate;      /* info steps: index among info_candidates */
    uint32_t prev_state;     /* state before the operation */
    uint32_t prev_run_start; /* run start before the operation */
    bool forced;          /* a pure step: no alternative to try on backtrack */
    struct info_rec *rec; /* the configuration it entered */
};

enum resume { RESUME_ENTER, RESUME_SCAN };

/*
 * Model states are value ids of the history's frozen table, extended per
 * search with the strings kv appends derive. Every distinct value has one
 * id, so states compare by id.
 */
struct wgl_values {
    const struct fl_strtab *global;
    struct fl_strtab local;  /* derived states; id = global count + i */
    struct fl_map64 appends; /* (state << 32 | arg) -> result id */
    struct fl_buf scratch;
};

struct wgl_search {
    const struct wgl_shared *shared;
    struct wgl_values values;
    struct wgl_op *ops; /* owned */
    uint32_t n;
    uint32_t remaining; /* required operations not yet linearized */
    uint64_t steps;
    enum resume resume;
    uint32_t resume_entry; /* pass 0: the next entry; pass 1: window end */
    uint32_t resume_cls;
    int resume_pass;
    int verdict; /* once finished, else -1 */

    /* Bit numbering: required operations in call order, then info ones. */
    uint32_t *bit;
    uint64_t *zobrist; /* per required operation */
    uint32_t *cls;     /* info operations: symmetry class and rank in it */
    uint32_t *rank;
    uint32_t *cls_next; /* per class: how many are linearized */
    uint32_t *cls_base; /* per class: its first info bit */
    uint32_t *cls_size;
    uint32_t *info_op; /* info bit - first info bit -> operation */
    uint32_t ncls;
    uint64_t *cls_order;    /* scratch: candidate classes by member call */
    bool has_append;        /* the key has append operations (kv model) */
    uint32_t *reads_by_ret; /* kv: required reads in return order */
    uint32_t nreads;
    uint32_t *read_pos;     /* kv: operation -> index in reads_by_ret */
    uint32_t read_hint;     /* reads_by_ret[0..hint) are linearized */
    uint32_t *puts_by_call; /* kv: puts, required or info, in call order */
    uint32_t nputs;
    uint32_t *read_values; /* kv: distinct values that reads returned */
    uint32_t nread_values;
    struct fl_map64 observable; /* kv: state -> 1 observable, 2 not */
    bool relaxed;               /* info operations may be reused (see above) */
    bool counted; /* exact moves, but the cache ignores info operations */
    uint64_t counted_until; /* s->steps at which the counted search ends */

    /* Register models: per-value counts (reduction 4). Slots number the
     * values this key reads or writes. */
    struct fl_map64 value_slot; /* value id -> slot */
    uint32_t nvalues;
    uint32_t *slot_value;
    int32_t *need;         /* required reads and cases needing the value */
    int32_t *supply;       /* operations that can still produce it */
    uint8_t *endless;      /* a reusable info operation produces it */
    uint32_t *need_slot;   /* per op: the slot it needs, or UINT32_MAX */
    uint32_t *supply_slot; /* per op: the slot it produces, or UINT32_MAX */
    uint32_t *needers;     /* per slot, from needer_start: ops by return */
    uint32_t *needer_start;
    uint32_t ndead;    /* slots needed that nothing can produce */
    uint32_t dead_xor; /* xor of their values: the value when ndead is 1 */

    /* Entries: 0 is the list head; each required operation has a call and a
     * return entry. Info operations have none: they are reached through
     * their class (only its next member can be chosen). */
    uint32_t *next;
    uint32_t *prev;
    uint32_t *entry_op;
    uint32_t *entry_pos;
    uint8_t *entry_ret;
    uint32_t *ret_entry; /* per op, 0 for info operations */
    /* Two more lists over the same entries, in the same order: return
     * entries only (its head is the earliest deadline), and call entries of
     * pure operations only (the candidates for forced steps). */
    uint32_t *rnext;
    uint32_t *rprev;
    uint32_t *pnext;
    uint32_t *pprev;
    uint32_t *call_entry;

    uint64_t *bits;
    size_t req_words;
    size_t info_words;
    size_t req_lo;  /* bits[0..req_lo) are all ones */
    size_t req_hi;  /* bits[req_hi..req_words) are all zero */
    size_t info_hi; /* info words from info_hi on are zero */
    uint32_t nreq;
    uint64_t last_req_mask;
    uint64_t req_hash;
    uint32_t state;
    uint32_t init;      /* the initial state */
    uint32_t run_start; /* state where the current info run began, or NO_RUN */

    struct cache_slot *slots;
    size_t cap;
    size_t count;
    struct fl_arena recs;  /* cache records */
    struct fl_arena fixed; /* arrays built by setup */

    struct frame *stack;
    size_t depth;
    size_t stack_cap;

    /* Furthest point reached, for the counterexample. */
    bool have_best;
    uint32_t best_pos;
    uint32_t best_op;
    uint32_t *best;
    size_t best_len;
    size_t best_cap;
    size_t best_common; /* best[0..common) equals the current stack */
    uint32_t best_states[MAX_REPORTED_STATES];
    size_t nbest_states;
    bool best_states_truncated;

    int error;
    char reason[160];
};

/* ---- values ------------------------------------------------------------ */

static struct fl_str value_bytes(const struct wgl_values *v, uint32_t id)
{
    size_t nglobal = v->global->count;

    if (id < nglobal)
        return fl_strtab_get(v->global, id);
    return fl_strtab_get(&v->local, (uint32_t)(id - nglobal));
}

void wgl_encoded_json(struct fl_str enc, struct fl_buf *b)
{
    if (enc.len == 0 || enc.ptr[0] == 'n')
        fl_buf_adds(b, "null");
    else if (enc.ptr[0] == 'i')
        fl_buf_add(b, enc.ptr + 1, enc.len - 1);
    else
        fl_buf_add_json_string(b, enc.ptr + 1, enc.len - 1);
}

static void value_json(const struct wgl_values *values, uint32_t id,
                       struct fl_buf *b)
{
    if (id == UNOBSERVABLE)
        fl_buf_adds(b, "\"(a string no read returned a prefix of)\"");
    else
        wgl_encoded_json(value_bytes(values, id), b);
}

/* Returns the id of state ++ arg for the kv model, or a negative error. */
static int64_t derive_append(struct wgl_values *v, uint32_t state, uint32_t arg)
{
    uint64_t key = (uint64_t)state << 32 | arg;
    uint64_t *slot = fl_map64_get(&v->appends, key);
    struct fl_str s;
    struct fl_str a;
    int64_t id;
    int inserted;

    if (slot != NULL)
        return (int64_t)*slot;
    s = value_bytes(v, state);
    a = value_bytes(v, arg);
    fl_buf_clear(&v->scratch);
    fl_buf_addc(&v->scratch, 's');
    /* A null state (absent key) appends like the empty string. */
    if (s.len > 0 && s.ptr[0] == 's')
        fl_buf_add(&v->scratch, s.ptr + 1, s.len - 1);
    if (a.len > 0)
        fl_buf_add(&v->scratch, a.ptr + 1, a.len - 1);
    if (v->scratch.failed)
        return -ENOMEM;
    id = fl_strtab_find(v->global, v->scratch.data, v->scratch.len);
    if (id < 0) {
        id = fl_strtab_intern(&v->local, v->scratch.data, v->scratch.len);
        if (id < 0)
            return id;
        id += (int64_t)v->global->count;
    }
    if (id >= UINT32_MAX)
        return -ENOMEM;
    slot = fl_map64_put(&v->appends, key, &inserted);
    if (slot == NULL)
        return FL_EBUDGET;
    *slot = (uint64_t)id;
    return id;
}

static bool is_prefix(const struct wgl_search *s, uint32_t a, uint32_t b);

/*
 * kv: replaces *state with UNOBSERVABLE when it is a prefix of no value a
 * read returned (see the file comment). Returns 1, or a negative error.
 */
static int canonical(struct wgl_search *s, uint32_t *state)
{
    uint64_t *memo = fl_map64_get(&s->observable, *state);
    int inserted;

    if (memo == NULL) {
        uint64_t verdict = 2;
        for (uint32_t i = 0; i < s->nread_values && verdict == 2; i++) {
            if (*state == s->read_values[i] ||
                is_prefix(s, *state, s->read_values[i]))
                verdict = 1;
        }
        memo = fl_map64_put(&s->observable, *state, &inserted);
        if (memo == NULL)
            return FL_EBUDGET;
        *memo = verdict;
    }
    if (*memo == 2)
        *state = UNOBSERVABLE;
    return 1;
}

/* Returns 1 when op is legal in state (setting *next), 0 when not, or a
 * negative error. */
static int step(struct wgl_search *s, const struct wgl_op *op, uint32_t state,
                uint32_t *next)
{
    int64_t id;

    switch ((enum wgl_kind)op->kind) {
    case WGL_READ:
        *next = state;
        return state == op->arg;
    case WGL_CMPFAIL:
        *next = state;
        return state != op->arg;
    case WGL_WRITE:
        *next = op->arg;
        return s->has_append ? canonical(s, next) : 1;
    case WGL_CAS:
        *next = op->arg2;
        return state == op->arg;
    case WGL_APPEND:
        if (state == UNOBSERVABLE) {
            *next = UNOBSERVABLE;
            return 1;
        }
        id = derive_append(&s->values, state, op->arg);
        if (id < 0)
            return (int)id;
        *next = (uint32_t)id;
        return canonical(s, next);
    }
    return 0;
}

/* ---- cache ------------------------------------------------------------- */

static uint64_t config_hash(uint64_t req_hash, uint32_t state,
                            uint32_t run_start)
{
    return req_hash ^ fl_hash_u64((uint64_t)state * 0x9e3779b97f4a7c15ULL + 1) ^
           fl_hash_u64((uint64_t)run_start << 1 | 1);
}

/* Returns the stored window of the required bits. */
static void req_bounds(const struct wgl_search *s, size_t *lo, size_t *n1)
{
    *lo = s->req_lo;
    *n1 = s->req_hi > s->req_lo ? s->req_hi - s->req_lo : 0;
}

static size_t info_len(const struct wgl_search *s)
{
    return s->info_hi;
}

static int cache_grow(struct wgl_search *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    struct cache_slot *slots;

    if (fl_budget_charge(s->shared->budget, cap * sizeof(*slots)) != 0)
        return FL_EBUDGET;
    slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        fl_budget_release(s->shared->budget, cap * sizeof(*slots));
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].key == NULL)
            continue;
        size_t j = s->slots[i].hash & (cap - 1);
        while (slots[j].key != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = s->slots[i];
    }
    free(s->slots);
    fl_budget_release(s->shared->budget, s->cap * sizeof(*slots));
    s->slots = slots;
    s->cap = cap;
    return 0;
}

static int arena_error(const struct wgl_search *s)
{
    return s->recs.error ? s->recs.error : -ENOMEM;
}

static struct info_rec *new_info(struct wgl_search *s, size_t n2)
{
    struct info_rec *r = fl_arena_alloc(&s->recs, sizeof(*r) + n2 * 8);

    if (r == NULL)
        return NULL;
    r->done = false;
    r->nwords = (uint32_t)n2;
    memcpy(r->words, s->bits + s->req_words, n2 * 8);
    return r;
}

/* True when every info operation r used is used in the current set. */
static bool info_subset(const struct wgl_search *s, const struct info_rec *r,
                        size_t n2)
{
    const uint64_t *cur = s->bits + s->req_words;

    if (r->nwords > n2)
        return false;
    for (uint32_t i = 0; i < r->nwords; i++) {
        if (r->words[i] & ~cur[i])
            return false;
    }
    return true;
}

/*
 * Records the current configuration (bits as they are now, state and
 * run_start). Returns 1 and its record in *out when it is new, 0 when it
 * was explored already or is dominated by a failed one, or a negative error.
 */
static int cache_visit(struct wgl_search *s, uint64_t hash, uint32_t state,
                       uint32_t run_start, struct info_rec **out)
{
    size_t lo;
    size_t n1;
    size_t n2 = s->counted ? 0 : info_len(s);
    size_t i;
    struct key_rec *k;
    struct info_rec *r;
    int rc;

    if ((s->count + 1) * 2 > s->cap && (rc = cache_grow(s)) != 0)
        return rc;
    req_bounds(s, &lo, &n1);
    for (i = hash & (s->cap - 1); s->slots[i].key != NULL;
         i = (i + 1) & (s->cap - 1)) {
        k = s->slots[i].key;
        if (s->slots[i].hash != hash || k->state != state ||
            k->run_start != run_start || k->lo != lo || k->n1 != n1 ||
            memcmp(k->words, s->bits + lo, n1 * 8) != 0)
            continue;
        for (r = k->infos; r != NULL; r = r->next) {
            if (r->nwords == n2 &&
                memcmp(r->words, s->bits + s->req_words, n2 * 8) == 0)
                return 0;
            if (r->done && info_subset(s, r, n2))
                return 0;
        }
        r = new_info(s, n2);
        if (r == NULL)
            return arena_error(s);
        r->next = k->infos;
        k->infos = r;
        *out = r;
        return 1;
    }
    k = fl_arena_alloc(&s->recs, sizeof(*k) + n1 * 8);
    r = k ? new_info(s, n2) : NULL;
    if (r == NULL)
        return arena_error(s);
    k->state = state;
    k->run_start = run_start;
    k->lo = (uint32_t)lo;
    k->n1 = (uint32_t)n1;
    memcpy(k->words, s->bits + lo, n1 * 8);
    r->next = NULL;
    k->infos = r;
    s->slots[i].hash = hash;
    s->slots[i].key = k;
    s->count++;
    *out = r;
    return 1;
}

/* ---- entry list (dancing links) ---------------------------------------- */

static inline void unlink_in(uint32_t *next, uint32_t *prev, uint32_t e)
{
    next[prev[e]] = next[e];
    prev[next[e]] = prev[e];
}

static inline void relink_in(uint32_t *next, uint32_t *prev, uint32_t e)
{
    next[prev[e]] = e;
    prev[next[e]] = e;
}

/* Lifts the call and return entries of required operation op out of every
 * list they are on. */
static void lift(struct wgl_search *s, uint32_t op)
{
    uint32_t call = s->call_entry[op];
    uint32_t ret = s->ret_entry[op];

    unlink_in(s->next, s->prev, call);
    unlink_in(s->next, s->prev, ret);
    unlink_in(s->rnext, s->rprev, ret);
    if (wgl_kind_pure((enum wgl_kind)s->ops[op].kind))
        unlink_in(s->pnext, s->pprev, call);
}

/* Puts back what lift took out, in reverse order. */
static void unlift(struct wgl_search *s, uint32_t op)
{
    uint32_t call = s->call_entry[op];
    uint32_t ret = s->ret_entry[op];

    if (wgl_kind_pure((enum wgl_kind)s->ops[op].kind))
        relink_in(s->pnext, s->pprev, call);
    relink_in(s->rnext, s->rprev, ret);
    relink_in(s->next, s->prev, ret);
    relink_in(s->next, s->prev, call);
}

static inline uint64_t full_word(const struct wgl_search *s, size_t w)
{
    return w + 1 == s->req_words ? s->last_req_mask : ~0ULL;
}

/* Sets op's bit and keeps the window bounds. */
static inline void set_bit(struct wgl_search *s, uint32_t op)
{
    uint32_t b = s->bit[op];
    size_t w = b / 64;

    s->bits[w] |= 1ULL << (b % 64);
    if (w >= s->req_words) {
        if (w - s->req_words + 1 > s->info_hi)
            s->info_hi = w - s->req_words + 1;
        return;
    }
    if (w + 1 > s->req_hi)
        s->req_hi = w + 1;
    while (s->req_lo < s->req_words &&
           s->bits[s->req_lo] == full_word(s, s->req_lo))
        s->req_lo++;
}

/* Clears op's bit and keeps the window bounds. */
static inline void clear_bit(struct wgl_search *s, uint32_t op)
{
    uint32_t b = s->bit[op];
    size_t w = b / 64;

    s->bits[w] &= ~(1ULL << (b % 64));
    if (w >= s->req_words) {
        while (s->info_hi > 0 && s->bits[s->req_words + s->info_hi - 1] == 0)
            s->info_hi--;
        return;
    }
    if (w < s->req_lo)
        s->req_lo = w;
    while (s->req_hi > 0 && s->bits[s->req_hi - 1] == 0)
        s->req_hi--;
}

/* True for info operations the relaxed search applies any number of times. */
static inline bool reusable(const struct wgl_search *s, uint32_t op)
{
    return s->relaxed && s->ops[op].kind != WGL_APPEND;
}

static inline bool slot_dead(const struct wgl_search *s, uint32_t slot)
{
    return s->need[slot] > 0 && s->supply[slot] == 0 && !s->endless[slot];
}

static void adjust_slot(struct wgl_search *s, uint32_t slot, int32_t dneed,
                        int32_t dsupply)
{
    bool before = slot_dead(s, slot);

    s->need[slot] += dneed;
    s->supply[slot] += dsupply;
    if (before != slot_dead(s, slot)) {
        s->ndead = before ? s->ndead - 1 : s->ndead + 1;
        s->dead_xor ^= s->slot_value[slot];
    }
}

/* Updates the per-value counts for op being linearized (sign -1) or
 * undone (+1). Reusable info operations change nothing. */
static void count_op(struct wgl_search *s, uint32_t op, int32_t sign)
{
    if (s->need == NULL || (s->ops[op].info && reusable(s, op)))
        return;
    if (s->need_slot[op] != UINT32_MAX)
        adjust_slot(s, s->need_slot[op], sign, 0);
    if (s->supply_slot[op] != UINT32_MAX)
        adjust_slot(s, s->supply_slot[op], 0, sign);
}

/*
 * Tries to enter the configuration that linearizing op leads to: state
 * next, run start run_start. e is op's call entry (0 for info operations);
 * window_end is the first return entry at this point. Returns 1 after
 * entering it, 0 when the cache shows it explored or dominated, or a
 * negative error.
 */
static int advance(struct wgl_search *s, uint32_t op, uint32_t e,
                   uint32_t window_end, uint32_t next, uint32_t run_start,
                   bool forced)
{
    bool info = s->ops[op].info;
    bool reuse = info && reusable(s, op);
    uint64_t req_hash = info ? s->req_hash : s->req_hash ^ s->zobrist[op];
    struct info_rec *rec = NULL;
    struct frame *f;
    int rc;

    if (s->depth == s->stack_cap) {
        rc = fl_vec_reserve((void **)&s->stack, &s->stack_cap, s->depth + 1,
                            sizeof(*s->stack), s->shared->budget);
        if (rc != 0)
            return rc;
    }
    if (!reuse)
        set_bit(s, op);
    rc = cache_visit(s, config_hash(req_hash, next, run_start), next, run_start,
                     &rec);
    if (rc <= 0) {
        if (!reuse)
            clear_bit(s, op);
        return rc;
    }
    count_op(s, op, -1);
    f = &s->stack[s->depth++];
    f->op = op;
    f->entry = e;
    f->window_end = window_end;
    f->prev_state = s->state;
    f->prev_run_start = s->run_start;
    f->forced = forced;
    f->rec = rec;
    if (!info) {
        lift(s, op);
        s->remaining--;
    } else if (!reuse) {
        s->cls_next[s->cls[op]]++;
    }
    s->req_hash = req_hash;
    s->state = next;
    s->run_start = run_start;
    return 1;
}

/* Undoes the newest advance, marking its configuration explored; returns
 * its frame. */
static struct frame retreat(struct wgl_search *s)
{
    struct frame f = s->stack[--s->depth];
    uint32_t op = f.op;

    f.rec->done = true;
    count_op(s, op, 1);
    if (s->read_pos != NULL && s->read_pos[op] < s->read_hint)
        s->read_hint = s->read_pos[op];
    if (!s->ops[op].info) {
        unlift(s, op);
        clear_bit(s, op);
        s->remaining++;
        s->req_hash ^= s->zobrist[op];
    } else if (!reusable(s, op)) {
        clear_bit(s, op);
        s->cls_next[s->cls[op]]--;
    }
    s->state = f.prev_state;
    s->run_start = f.prev_run_start;
    if (s->best_common > s->depth)
        s->best_common = s->depth;
    return f;
}

/* Returns the member of info class c that may be linearized next, or
 * UINT32_MAX when none is left. */
static uint32_t class_member(const struct wgl_search *s, uint32_t c)
{
    uint32_t rank =
        s->relaxed && s->ops[s->info_op[s->cls_base[c]]].kind != WGL_APPEND
            ? 0
            : s->cls_next[c];

    if (rank >= s->cls_size[c])
        return UINT32_MAX;
    return s->info_op[s->cls_base[c] + rank];
}

static int cmp_u64_fwd(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/*
 * Fills cls_order with the classes whose next member was invoked before
 * limit, oldest member first, as (call << 32 | class). The order depends
 * only on the configuration, so a resumed scan gets the same sequence.
 * Returns how many there are.
 */
static uint32_t info_candidates(struct wgl_search *s, uint32_t limit)
{
    uint32_t n = 0;

    for (uint32_t c = 0; c < s->ncls; c++) {
        uint32_t m = class_member(s, c);
        if (m != UINT32_MAX && s->ops[m].call < limit)
            s->cls_order[n++] = (uint64_t)s->ops[m].call << 32 | c;
    }
    qsort(s->cls_order, n, sizeof(*s->cls_order), cmp_u64_fwd);
    return n;
}

/* Returns the event position before which a callable operation must have
 * been invoked, given the first return entry. */
static uint32_t window_limit(const struct wgl_search *s, uint32_t window_end)
{
    return window_end != 0 ? s->entry_pos[window_end] : UINT32_MAX;
}

/* ---- counterexample ---------------------------------------------------- */

static int note_blocked(struct wgl_search *s, uint32_t ret_e)
{
    uint32_t pos = s->entry_pos[ret_e];
    int rc;

    if (s->have_best && pos < s->best_pos)
        return 0;
    if (!s->have_best || pos > s->best_pos) {
        s->have_best = true;
        s->best_pos = pos;
        s->best_op = s->entry_op[ret_e];
        rc = fl_vec_reserve((void **)&s->best, &s->best_cap, s->depth,
                            sizeof(*s->best), s->shared->budget);
        if (rc != 0)
            return rc;
        for (size_t i = s->best_common; i < s->depth; i++)
            s->best[i] = s->stack[i].op;
        s->best_len = s->depth;
        s->best_common = s->depth;
        s->nbest_states = 0;
        s->best_states_truncated = false;
    }
    for (size_t i = 0; i < s->nbest_states; i++) {
        if (s->best_states[i] == s->state)
            return 0;
    }
    if (s->nbest_states < MAX_REPORTED_STATES)
        s->best_states[s->nbest_states++] = s->state;
    else
        s->best_states_truncated = true;
    return 0;
}

/* ---- setup ------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void *grab(struct wgl_search *s, size_t count, size_t size)
{
    void *p;

    if (count == 0)
        count = 1;
    p = fl_arena_alloc(&s->fixed, count * size);
    if (p == NULL) {
        s->error = s->fixed.error ? s->fixed.error : -ENOMEM;
        return NULL;
    }
    memset(p, 0, count * size);
    return p;
}

/* Builds the tables of the kv prefix rule (reduction 4). */
static int setup_kv(struct wgl_search *s)
{
    uint64_t *order = grab(s, s->n, sizeof(uint64_t));

    s->reads_by_ret = grab(s, s->n, sizeof(uint32_t));
    s->read_pos = grab(s, s->n, sizeof(uint32_t));
    s->puts_by_call = grab(s, s->n, sizeof(uint32_t));
    if (s->error)
        return s->error;
    for (uint32_t i = 0; i < s->n; i++) {
        const struct wgl_op *op = &s->ops[i];
        s->read_pos[i] = UINT32_MAX;
        if (op->kind == WGL_READ && !op->info)
            order[s->nreads++] = (uint64_t)op->ret << 32 | i;
        if (op->kind == WGL_WRITE)
            s->puts_by_call[s->nputs++] = i; /* ops come in call order */
    }
    qsort(order, s->nreads, sizeof(*order), cmp_u64);
    for (uint32_t k = 0; k < s->nreads; k++) {
        s->reads_by_ret[k] = (uint32_t)order[k];
        s->read_pos[(uint32_t)order[k]] = k;
    }
    s->read_values = grab(s, s->nreads, sizeof(uint32_t));
    if (s->error)
        return s->error;
    for (uint32_t k = 0; k < s->nreads; k++) {
        uint32_t v = s->ops[s->reads_by_ret[k]].arg;
        uint32_t j = 0;
        while (j < s->nread_values && s->read_values[j] != v)
            j++;
        if (j == s->nread_values)
            s->read_values[s->nread_values++] = v;
    }
    return 0;
}

/* Sets the per-value counts for a search with nothing linearized. */
static void init_value_counts(struct wgl_search *s)
{
    memset(s->need, 0, s->nvalues * sizeof(*s->need));
    memset(s->supply, 0, s->nvalues * sizeof(*s->supply));
    memset(s->endless, 0, s->nvalues * sizeof(*s->endless));
    s->ndead = 0;
    s->dead_xor = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->need_slot[i] != UINT32_MAX)
            s->need[s->need_slot[i]]++;
        if (s->supply_slot[i] == UINT32_MAX)
            continue;
        if (s->ops[i].info && reusable(s, i))
            s->endless[s->supply_slot[i]] = 1;
        else
            s->supply[s->supply_slot[i]]++;
    }
    for (uint32_t v = 0; v < s->nvalues; v++) {
        if (slot_dead(s, v)) {
            s->ndead++;
            s->dead_xor ^= s->slot_value[v];
        }
    }
}

static int value_slot(struct wgl_search *s, uint32_t value, uint32_t *slot)
{
    int inserted;
    uint64_t *v = fl_map64_put(&s->value_slot, value, &inserted);

    if (v == NULL)
        return FL_EBUDGET;
    if (inserted) {
        *v = s->nvalues;
        s->slot_value[s->nvalues++] = value;
    }
    *slot = (uint32_t)*v;
    return 0;
}

/* Builds the per-value counts of reduction 4 for register models. */
static int setup_values(struct wgl_search *s)
{
    uint32_t n = s->n;
    uint64_t *order;
    uint32_t nneed = 0;
    int rc;

    s->need_slot = grab(s, n, sizeof(uint32_t));
    s->supply_slot = grab(s, n, sizeof(uint32_t));
    s->slot_value = grab(s, 2 * (size_t)n, sizeof(uint32_t));
    order = grab(s, n, sizeof(uint64_t));
    if (s->error)
        return s->error;
    for (uint32_t i = 0; i < n; i++) {
        const struct wgl_op *op = &s->ops[i];
        s->need_slot[i] = UINT32_MAX;
        s->supply_slot[i] = UINT32_MAX;
        if (!op->info && (op->kind == WGL_READ || op->kind == WGL_CAS)) {
            if ((rc = value_slot(s, op->arg, &s->need_slot[i])) != 0)
                return rc;
            order[nneed++] = (uint64_t)op->ret << 32 | i;
        }
        if (op->kind == WGL_WRITE || op->kind == WGL_CAS) {
            uint32_t v = op->kind == WGL_CAS ? op->arg2 : op->arg;
            if ((rc = value_slot(s, v, &s->supply_slot[i])) != 0)
                return rc;
        }
    }
    s->need = grab(s, s->nvalues, sizeof(int32_t));
    s->supply = grab(s, s->nvalues, sizeof(int32_t));
    s->endless = grab(s, s->nvalues, sizeof(uint8_t));
    s->needer_start = grab(s, (size_t)s->nvalues + 1, sizeof(uint32_t));
    s->needers = grab(s, nneed, sizeof(uint32_t));
    if (s->error)
        return s->error;
    /* Needing operations grouped by slot, each group in return order. */
    qsort(order, nneed, sizeof(*order), cmp_u64);
    for (uint32_t k = 0; k < nneed; k++)
        s->needer_start[s->need_slot[(uint32_t)order[k]] + 1]++;
    for (uint32_t v = 0; v < s->nvalues; v++)
        s->needer_start[v + 1] += s->needer_start[v];
    uint32_t *fill = grab(s, s->nvalues, sizeof(uint32_t));
    if (fill == NULL)
        return s->error;
    for (uint32_t k = 0; k < nneed; k++) {
        uint32_t op = (uint32_t)order[k];
        uint32_t v = s->need_slot[op];
        s->needers[s->needer_start[v] + fill[v]++] = op;
    }
    init_value_counts(s);
    return 0;
}

/* Numbers bits, assigns symmetry classes and builds the entry list. */
static int setup(struct wgl_search *s)
{
    uint32_t n = s->n;
    uint32_t nentries = 1;
    uint32_t ninfo = 0;
    uint32_t ncls = 0;
    uint64_t *order;
    struct fl_map64 classes;
    struct fl_rng rng;
    int rc = 0;

    s->bit = grab(s, n, sizeof(uint32_t));
    s->zobrist = grab(s, n, sizeof(uint64_t));
    s->cls = grab(s, n, sizeof(uint32_t));
    s->rank = grab(s, n, sizeof(uint32_t));
    s->ret_entry = grab(s, n, sizeof(uint32_t));
    if (s->error)
        return s->error;

    for (uint32_t i = 0; i < n; i++) {
        if (s->ops[i].kind == WGL_APPEND)
            s->has_append = true;
        if (s->ops[i].info)
            ninfo++;
        else
            s->bit[i] = s->nreq++;
    }
    s->req_words = (s->nreq + 63) / 64;
    s->info_words = (ninfo + 63) / 64;
    s->last_req_mask = s->nreq % 64 ? (1ULL << (s->nreq % 64)) - 1 : ~0ULL;

    /* Info operations: class by (kind, arg, arg2), ranked in call order,
     * with the bits of one class adjacent. */
    fl_map64_init(&classes, s->shared->budget);
    uint32_t *cls_size = grab(s, ninfo, sizeof(uint32_t));
    if (cls_size == NULL) {
        rc = s->error;
        goto out;
    }
    uint32_t *cls_rep = grab(s, ninfo, sizeof(uint32_t));
    if (cls_rep == NULL) {
        rc = s->error;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct wgl_op *op = &s->ops[i];
        uint64_t key;
        uint64_t *slot;
        int inserted;
        if (!op->info)
            continue;
        key = fl_hash_u64(op->kind) ^
              fl_hash_u64((uint64_t)op->arg << 32 | op->arg2);
        slot = fl_map64_put(&classes, key, &inserted);
        if (slot == NULL) {
            rc = FL_EBUDGET;
            goto out;
        }
        if (inserted) {
            cls_rep[ncls] = i;
            *slot = ncls++;
        } else {
            /* A hash collision must not merge different operations: such
             * an operation gets a class of its own. */
            const struct wgl_op *rep = &s->ops[cls_rep[*slot]];
            if (rep->kind != op->kind || rep->arg != op->arg ||
                rep->arg2 != op->arg2) {
                s->cls[i] = ncls;
                s->rank[i] = 0;
                cls_rep[ncls] = i;
                cls_size[ncls++] = 1;
                continue;
            }
        }
        s->cls[i] = (uint32_t)*slot;
        s->rank[i] = cls_size[*slot]++;
    }
    s->cls_next = grab(s, ncls, sizeof(uint32_t));
    uint32_t *cls_base = grab(s, ncls, sizeof(uint32_t));
    s->info_op = grab(s, ninfo, sizeof(uint32_t));
    if (s->error) {
        rc = s->error;
        goto out;
    }
    s->cls_base = cls_base;
    s->cls_size = cls_size;
    s->ncls = ncls;
    s->cls_order = grab(s, ncls, sizeof(uint64_t));
    if (s->error) {
        rc = s->error;
        goto out;
    }
    for (uint32_t c = 0, at = 0; c < ncls; c++) {
        cls_base[c] = at;
        at += cls_size[c];
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!s->ops[i].info)
            continue;
        s->info_op[cls_base[s->cls[i]] + s->rank[i]] = i;
        s->bit[i] =
            (uint32_t)(s->req_words * 64) + cls_base[s->cls[i]] + s->rank[i];
    }
    for (uint32_t i = 0; i < n; i++) {
        if (s->ops[i].info && s->ops[i].kind != WGL_APPEND)
            s->relaxed = true;
    }
    if (s->has_append)
        rc = setup_kv(s);
    else
        rc = setup_values(s);
    if (rc != 0)
        goto out;
    fl_rng_seed(&rng, 0x5eed);
    for (uint32_t i = 0; i < n; i++)
        s->zobrist[i] = fl_rng_next(&rng);

    /* Entries sorted by event position: (pos << 32 | entry). */
    uint32_t total = 1 + 2 * s->nreq;
    s->next = grab(s, total, sizeof(uint32_t));
    s->prev = grab(s, total, sizeof(uint32_t));
    s->entry_op = grab(s, total, sizeof(uint32_t));
    s->entry_pos = grab(s, total, sizeof(uint32_t));
    s->entry_ret = grab(s, total, sizeof(uint8_t));
    s->call_entry = grab(s, n, sizeof(uint32_t));
    order = grab(s, total, sizeof(uint64_t));
    s->bits = grab(s, s->req_words + s->info_words, sizeof(uint64_t));
    if (s->error) {
        rc = s->error;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct wgl_op *op = &s->ops[i];
        if (op->info)
            continue;
        s->entry_op[nentries] = i;
        s->entry_pos[nentries] = op->call;
        s->call_entry[i] = nentries;
        order[nentries - 1] = (uint64_t)op->call << 32 | nentries;
        nentries++;
        s->entry_op[nentries] = i;
        s->entry_pos[nentries] = op->ret;
        s->entry_ret[nentries] = 1;
        s->ret_entry[i] = nentries;
        order[nentries - 1] = (uint64_t)op->ret << 32 | nentries;
        nentries++;
    }
    qsort(order, nentries - 1, sizeof(*order), cmp_u64);
    uint32_t last = 0;
    for (uint32_t k = 0; k + 1 < nentries; k++) {
        uint32_t e = (uint32_t)order[k];
        s->next[last] = e;
        s->prev[e] = last;
        last = e;
    }
    s->next[last] = 0;
    s->prev[0] = last;

    s->rnext = grab(s, total, sizeof(uint32_t));
    s->rprev = grab(s, total, sizeof(uint32_t));
    s->pnext = grab(s, total, sizeof(uint32_t));
    s->pprev = grab(s, total, sizeof(uint32_t));
    if (s->error) {
        rc = s->error;
        goto out;
    }
    uint32_t rlast = 0;
    uint32_t plast = 0;
    for (uint32_t e = s->next[0]; e != 0; e = s->next[e]) {
        if (s->entry_ret[e]) {
            s->rnext[rlast] = e;
            s->rprev[e] = rlast;
            rlast = e;
        } else if (wgl_kind_pure((enum wgl_kind)s->ops[s->entry_op[e]].kind)) {
            s->pnext[plast] = e;
            s->pprev[e] = plast;
            plast = e;
        }
    }
    s->rnext[rlast] = 0;
    s->rprev[0] = rlast;
    s->pnext[plast] = 0;
    s->pprev[0] = plast;
out:
    fl_map64_destroy(&classes);
    return rc;
}

/* ---- search ------------------------------------------------------------ */

/* Returns true when string state a is a prefix of string state b (a null
 * state counts as the empty string). */
static bool is_prefix(const struct wgl_search *s, uint32_t a, uint32_t b)
{
    if (a == UNOBSERVABLE || b == UNOBSERVABLE)
        return false;
    struct fl_str x = value_bytes(&s->values, a);
    struct fl_str y = value_bytes(&s->values, b);
    size_t xlen = x.len > 0 && x.ptr[0] == 's' ? x.len - 1 : 0;

    if (y.len == 0 || y.ptr[0] != 's' || xlen > y.len - 1)
        return false;
    return xlen == 0 || memcmp(x.ptr + 1, y.ptr + 1, xlen) == 0;
}

/*
 * Returns true when the read or failed cas of return entry ret_e can never
 * become legal, because no operation callable before its return can bring
 * the state it needs (reduction 4).
 */
static bool can_produce(const struct wgl_search *s, const struct wgl_op *x,
                        const struct wgl_op *op, bool appendable)
{
    if (x->kind == WGL_CMPFAIL)
        return !wgl_kind_pure((enum wgl_kind)op->kind);
    switch ((enum wgl_kind)op->kind) {
    case WGL_WRITE:
        return op->arg == x->arg || s->has_append;
    case WGL_CAS:
        return op->arg2 == x->arg;
    case WGL_APPEND:
        return appendable;
    default:
        return false;
    }
}

static bool hopeless(const struct wgl_search *s, uint32_t ret_e)
{
    const struct wgl_op *x = &s->ops[s->entry_op[ret_e]];
    uint32_t limit = s->entry_pos[ret_e];
    bool appendable;

    if (x->kind == WGL_CMPFAIL ? s->state != x->arg
                               : x->kind != WGL_READ || s->state == x->arg)
        return false;
    appendable = s->has_append && is_prefix(s, s->state, x->arg);
    for (uint32_t e = s->next[0]; e != ret_e; e = s->next[e]) {
        if (can_produce(s, x, &s->ops[s->entry_op[e]], appendable))
            return false;
    }
    for (uint32_t c = 0; c < s->ncls; c++) {
        uint32_t m = class_member(s, c);
        if (m != UINT32_MAX && s->ops[m].call < limit &&
            can_produce(s, x, &s->ops[m], appendable))
            return false;
    }
    return true;
}

static bool budget_exhausted(struct wgl_search *s)
{
    if (atomic_load_explicit(s->shared->cancel, memory_order_relaxed)) {
        snprintf(s->reason, sizeof(s->reason),
                 "stopped because another key decided the verdict or ran "
                 "out of budget");
        return true;
    }
    if (fl_deadline_passed(&s->shared->deadline)) {
        snprintf(s->reason, sizeof(s->reason), "time limit reached");
        return true;
    }
    return false;
}

/*
 * Checks that the relaxed linearization on the stack uses each info
 * operation at most once: each use takes the earliest unused member of its
 * class, which must have been invoked before the use's frontier. Uses come
 * in stack order, whose frontiers never decrease, and each use accepts a
 * prefix of its class, so taking the earliest member is optimal.
 */
static bool relaxed_witness_holds(struct wgl_search *s)
{
    uint32_t *used = calloc(s->ncls ? s->ncls : 1, sizeof(uint32_t));
    bool ok = used != NULL;

    for (size_t i = 0; ok && i < s->depth; i++) {
        uint32_t op = s->stack[i].op;
        uint32_t c;
        if (!s->ops[op].info || !reusable(s, op))
            continue;
        c = s->cls[op];
        if (used[c] >= s->cls_size[c] ||
            s->ops[s->info_op[s->cls_base[c] + used[c]]].call >=
                window_limit(s, s->stack[i].window_end))
            ok = false;
        used[c]++;
    }
    free(used);
    return ok;
}

/* Starts over in the counted mode (counted true) or the exact one. */
static void restart(struct wgl_search *s, bool counted)
{
    while (s->depth > 0)
        retreat(s);
    s->relaxed = false;
    s->counted = counted;
    s->counted_until =
        s->steps + COUNTED_BASE_STEPS + COUNTED_FACTOR * s->steps;
    free(s->slots);
    fl_budget_release(s->shared->budget, s->cap * sizeof(*s->slots));
    s->slots = NULL;
    s->cap = 0;
    s->count = 0;
    fl_arena_destroy(&s->recs);
    fl_arena_init(&s->recs, 256 * 1024, s->shared->budget);
    s->have_best = false;
    s->best_len = 0;
    s->best_common = 0;
    s->nbest_states = 0;
    if (s->need != NULL)
        init_value_counts(s);
}

/*
 * Records, for the report, a read or cas whose value can no longer be
 * produced (reduction 4): the earliest-returning one still pending.
 */
static int blame_dead_value(struct wgl_search *s)
{
    for (uint32_t v = 0; v < s->nvalues; v++) {
        if (!slot_dead(s, v) || s->slot_value[v] == s->state)
            continue;
        for (uint32_t k = s->needer_start[v]; k < s->needer_start[v + 1]; k++) {
            uint32_t op = s->needers[k];
            uint32_t b = s->bit[op];
            if (!((s->bits[b / 64] >> (b % 64)) & 1))
                return note_blocked(s, s->ret_entry[op]);
        }
    }
    return 0;
}

static bool linearized(const struct wgl_search *s, uint32_t op)
{
    uint32_t b = s->bit[op];
    return (s->bits[b / 64] >> (b % 64)) & 1;
}

/*
 * kv prefix rule (reduction 4): returns the pending read with the earliest
 * deadline when state next, reached by linearizing operation self, can no
 * longer become its value, and UINT32_MAX otherwise.
 */
static uint32_t kv_blocking_read(struct wgl_search *s, uint32_t self,
                                 uint32_t next)
{
    uint32_t i = s->read_hint;
    const struct wgl_op *g;

    while (i < s->nreads && linearized(s, s->reads_by_ret[i]))
        i++;
    s->read_hint = i;
    if (i == s->nreads)
        return UINT32_MAX;
    g = &s->ops[s->reads_by_ret[i]];
    if (next == g->arg || is_prefix(s, next, g->arg))
        return UINT32_MAX;
    for (uint32_t k = 0; k < s->nputs; k++) {
        uint32_t p = s->puts_by_call[k];
        if (s->ops[p].call >= g->ret)
            break;
        if (p != self &&
            ((s->ops[p].info && reusable(s, p)) || !linearized(s, p)))
            return UINT32_MAX;
    }
    return s->reads_by_ret[i];
}

/*
 * Returns 1 when the kv prefix rule allows linearizing opi into state next,
 * 0 when it does not, or a negative error. A ruled-out step records the
 * read responsible, the operation a report should blame if the search
 * fails here.
 */
static int kv_rule_allows(struct wgl_search *s, uint32_t opi, uint32_t next)
{
    uint32_t blocker;
    int rc;

    if (!s->has_append)
        return 1;
    blocker = kv_blocking_read(s, opi, next);
    if (blocker == UINT32_MAX)
        return 1;
    rc = note_blocked(s, s->ret_entry[blocker]);
    return rc < 0 ? rc : 0;
}

/* Returns the verdict once decided, remembering it. */
static int finish(struct wgl_search *s, int verdict)
{
    s->verdict = verdict;
    return verdict;
}

int wgl_run(struct wgl_search *s, uint64_t max_steps)
{
    uint64_t steps = 0;
    uint32_t e = 0;
    uint32_t window_end = 0;
    uint32_t cls = 0;
    uint32_t ncand;
    int pass = 0;
    uint32_t next_state;
    int rc;

    if (s->verdict >= 0)
        return s->verdict;
    if (s->error != 0)
        return s->error;
    if (s->resume == RESUME_SCAN) {
        pass = s->resume_pass;
        e = s->resume_entry;
        window_end = s->resume_entry;
        cls = s->resume_cls;
        goto scan;
    }
enter:
    if (s->remaining == 0) {
        if (!s->relaxed || relaxed_witness_holds(s))
            return finish(s, CHK_VALID);
        restart(s, true);
    }
    if (++steps > max_steps) {
        s->resume = RESUME_ENTER;
        return WGL_PAUSED;
    }
    if (++s->steps % BUDGET_CHECK_EVERY == 0 && budget_exhausted(s))
        return finish(s, CHK_UNKNOWN);
    if (s->counted && s->steps > s->counted_until) {
        restart(s, false);
        goto enter;
    }
    /* Reduction 4: a value still needed that nothing can produce. */
    if (s->ndead > 1 || (s->ndead == 1 && s->dead_xor != s->state)) {
        if ((rc = blame_dead_value(s)) != 0)
            return s->error = rc;
        goto backtrack;
    }

    /* Reduction 1: a legal pure operation is a forced step. Inside an info
     * run that has not changed the state, none is legal: it would have been
     * legal where the run began, since a run lifts no return entry. */
    window_end = s->rnext[0];
    for (e = s->run_start == s->state ? 0 : s->pnext[0];
         e != 0 && s->entry_pos[e] < window_limit(s, window_end);
         e = s->pnext[e]) {
        uint32_t opi = s->entry_op[e];
        const struct wgl_op *op = &s->ops[opi];
        rc = step(s, op, s->state, &next_state);
        if (rc < 0)
            return s->error = rc;
        if (rc == 0)
            continue;
        rc = advance(s, opi, e, 0, next_state, NO_RUN, true);
        if (rc < 0)
            return s->error = rc;
        if (rc == 0)
            goto backtrack; /* explored before, and it failed */
        goto enter;
    }
    /* Reduction 4: is the earliest deadline still reachable? */
    if (window_end != 0 && hopeless(s, window_end)) {
        if ((rc = note_blocked(s, window_end)) != 0)
            return s->error = rc;
        goto backtrack;
    }

    /* Two passes over the callable operations: required ones (pass 0), then
     * the next member of each info class (pass 1), so a witness leans on
     * indeterminate operations only where it must, which keeps relaxed
     * witnesses matchable. */
    e = s->next[0];
    pass = 0;
scan:
    if (pass == 0) {
        for (; e != 0 && !s->entry_ret[e]; e = s->next[e]) {
            uint32_t opi = s->entry_op[e];
            const struct wgl_op *op = &s->ops[opi];

            if (wgl_kind_pure((enum wgl_kind)op->kind))
                continue;
            /* Reduction 3: a run must end in an operation that reads a
             * state the run changed. */
            if (s->run_start != NO_RUN &&
                (op->kind == WGL_WRITE || s->state == s->run_start))
                continue;
            rc = step(s, op, s->state, &next_state);
            if (rc < 0)
                return s->error = rc;
            if (rc == 0)
                continue;
            rc = kv_rule_allows(s, opi, next_state);
            if (rc < 0)
                return s->error = rc;
            if (rc == 0)
                continue;
            rc = advance(s, opi, e, 0, next_state, NO_RUN, false);
            if (rc < 0)
                return s->error = rc;
            if (rc == 1)
                goto enter;
        }
        window_end = e;
        pass = 1;
        cls = 0;
    }
    /* Reduction 2: only the next member of a class is a candidate. Here
     * cls counts candidates in info_candidates order. */
    ncand = info_candidates(s, window_limit(s, window_end));
    for (; cls < ncand; cls++) {
        uint32_t opi = class_member(s, (uint32_t)s->cls_order[cls]);
        const struct wgl_op *op = &s->ops[opi];
        uint32_t run;

        run = s->run_start != NO_RUN ? s->run_start : s->state;
        rc = step(s, op, s->state, &next_state);
        if (rc < 0)
            return s->error = rc;
        if (rc == 0)
            continue;
        rc = kv_rule_allows(s, opi, next_state);
        if (rc < 0)
            return s->error = rc;
        if (rc == 0)
            continue;
        rc = advance(s, opi, 0, window_end, next_state, run, false);
        if (rc < 0)
            return s->error = rc;
        if (rc == 1) {
            s->stack[s->depth - 1].candidate = cls;
            goto enter;
        }
    }
    /* window_end is the return entry of an operation whose deadline
     * passed. */
    if (window_end != 0 && (rc = note_blocked(s, window_end)) != 0)
        return s->error = rc;

backtrack:
    while (s->depth > 0) {
        struct frame f = retreat(s);
        if (f.forced)
            continue;
        if (f.entry != 0) {
            pass = 0;
            e = s->next[f.entry];
        } else {
            pass = 1;
            window_end = f.window_end;
            cls = f.candidate + 1;
        }
        if (++steps > max_steps) {
            s->resume = RESUME_SCAN;
            s->resume_pass = pass;
            s->resume_entry = pass == 0 ? e : window_end;
            s->resume_cls = cls;
            return WGL_PAUSED;
        }
        if (++s->steps % BUDGET_CHECK_EVERY == 0 && budget_exhausted(s))
            return finish(s, CHK_UNKNOWN);
        goto scan;
    }
    if (s->counted) {
        /* The counted search can miss linearizations: decide exactly. */
        restart(s, false);
        goto enter;
    }
    return finish(s, CHK_INVALID);
}

const char *wgl_reason(const struct wgl_search *s)
{
    return s->reason;
}

/* ---- result ------------------------------------------------------------ */

int wgl_fill_invalid(struct wgl_search *s, struct chk_lin_key_result *kr)
{
    const struct wgl_op *failed = &s->ops[s->best_op];
    struct fl_buf b;
    size_t nconc = 0;

    kr->failed_op = failed->global;
    kr->prefix = malloc((s->best_len ? s->best_len : 1) * sizeof(uint32_t));
    kr->concurrent = malloc((s->n ? s->n : 1) * sizeof(uint32_t));
    kr->states = calloc(s->nbest_states + 1, sizeof(char *));
    if (kr->prefix == NULL || kr->concurrent == NULL || kr->states == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->best_len; i++)
        kr->prefix[i] = s->ops[s->best[i]].global;
    kr->prefix_len = s->best_len;
    for (uint32_t i = 0; i < s->n; i++) {
        const struct wgl_op *op = &s->ops[i];
        if (i != s->best_op && op->call < failed->ret && op->ret > failed->call)
            kr->concurrent[nconc++] = op->global;
    }
    kr->concurrent_len = nconc;
    if (failed->kind == WGL_READ && failed->arg != s->init) {
        bool written = false;
        for (uint32_t i = 0; i < s->n && !written; i++) {
            const struct wgl_op *op = &s->ops[i];
            written = (op->kind == WGL_WRITE && op->arg == failed->arg) ||
                      (op->kind == WGL_CAS && op->arg2 == failed->arg) ||
                      op->kind == WGL_APPEND;
        }
        if (!written)
            snprintf(kr->detail, sizeof(kr->detail),
                     "no operation on this key that may have taken "
                     "effect writes the value it read");
    }
    fl_buf_init(&b);
    for (size_t i = 0; i < s->nbest_states; i++) {
        fl_buf_clear(&b);
        value_json(&s->values, s->best_states[i], &b);
        if (b.failed)
            break;
        kr->states[i] = strdup(b.data);
        if (kr->states[i] == NULL)
            break;
        kr->states_len++;
    }
    fl_buf_free(&b);
    kr->states_truncated = s->best_states_truncated;
    return 0;
}

int wgl_start(const struct wgl_shared *shared, struct wgl_op *ops, size_t n,
              uint32_t init, struct wgl_search **out)
{
    struct wgl_search *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    if (s == NULL) {
        free(ops);
        return -ENOMEM;
    }
    s->shared = shared;
    s->ops = ops;
    s->n = (uint32_t)n;
    s->verdict = -1;
    s->values.global = shared->values;
    fl_strtab_init(&s->values.local, shared->budget);
    fl_map64_init(&s->values.appends, shared->budget);
    fl_map64_init(&s->observable, shared->budget);
    fl_map64_init(&s->value_slot, shared->budget);
    fl_buf_init(&s->values.scratch);
    fl_arena_init(&s->recs, 256 * 1024, shared->budget);
    fl_arena_init(&s->fixed, 64 * 1024, shared->budget);
    rc = setup(s);
    if (rc != 0) {
        wgl_free(s);
        return rc;
    }
    s->state = init;
    s->init = init;
    s->run_start = NO_RUN;
    s->remaining = s->nreq;
    s->resume = RESUME_ENTER;
    *out = s;
    return 0;
}

void wgl_free(struct wgl_search *s)
{
    if (s == NULL)
        return;
    free(s->slots);
    fl_budget_release(s->shared->budget, s->cap * sizeof(*s->slots));
    fl_vec_free((void **)&s->stack, &s->stack_cap, sizeof(*s->stack),
                s->shared->budget);
    fl_vec_free((void **)&s->best, &s->best_cap, sizeof(*s->best),
                s->shared->budget);
    fl_arena_destroy(&s->recs);
    fl_arena_destroy(&s->fixed);
    fl_strtab_destroy(&s->values.local);
    fl_map64_destroy(&s->values.appends);
    fl_map64_destroy(&s->observable);
    fl_map64_destroy(&s->value_slot);
    fl_buf_free(&s->values.scratch);
    free(s->ops);
    free(s);
}
