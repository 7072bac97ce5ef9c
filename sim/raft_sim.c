/*
 * The Raft cluster simulation. See raft_sim.h.
 */
#include "raft_sim.h"

#include "error.h"
#include "raft.h"
#include "rng.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable array of 64-bit values indexed by term or log index; 0 means
 * unset, so stored values keep bit 63 set. */
struct table {
    uint64_t *v;
    size_t n;
};

#define SET (1ull << 63)

struct log {
    struct rft_entry *v;
    size_t n;
    size_t cap;
};

struct node {
    struct rft *r; /* NULL while the node is down */
    uint64_t boots;
    unsigned up_at; /* tick of the restart while down */
    int group;      /* partition side */
    /* Durable state: what the core's updates asked to persist. */
    uint64_t term;
    uint32_t vote;
    struct log log;
    /* From the trace. */
    uint64_t commit;
    uint64_t highest_term;
    struct table vote_of; /* term -> vote | SET */
};

struct packet {
    unsigned at;
    uint64_t seq;
    struct rft_msg m;
    struct rft_entry *entries;
};

struct sim {
    const struct sim_raft_options *o;
    struct sim_raft_result *res;
    struct fl_rng rng;
    unsigned now;
    struct node nodes[RFT_MAX_NODES + 1];
    struct packet *q;
    size_t nq;
    size_t qcap;
    uint64_t seq;
    bool partitioned;
    unsigned heal_at;
    uint64_t proposals;
    /* Client reads: the highest index committed anywhere when each read
     * started; a read served below it is stale. */
    uint64_t *read_floor;
    size_t n_reads;
    size_t reads_cap;
    unsigned batch; /* entries per AppendEntries, 1 to 4, from the seed */
    struct table leader_of; /* term -> leader | SET */
    struct table committed; /* index -> entry hash | SET */
    struct table applied;   /* index -> entry hash | SET */
    bool failed;            /* out of memory */
};

/* ---- helpers ----------------------------------------------------------- */

static void violation(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void violation(struct sim *s, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (s->res->violation)
        return;
    s->res->violation = true;
    n = snprintf(s->res->why, sizeof(s->res->why), "tick %u: ", s->now);
    va_start(ap, fmt);
    vsnprintf(s->res->why + n, sizeof(s->res->why) - (size_t)n, fmt, ap);
    va_end(ap);
}

static uint64_t *slot(struct sim *s, struct table *t, uint64_t i)
{
    static uint64_t spare;

    if (i >= t->n) {
        size_t n = t->n ? t->n : 64;
        while (n <= i)
            n *= 2;
        uint64_t *v = realloc(t->v, n * sizeof(*v));
        if (v == NULL) {
            s->failed = true;
            spare = 0;
            return &spare;
        }
        memset(v + t->n, 0, (n - t->n) * sizeof(*v));
        t->v = v;
        t->n = n;
    }
    return &t->v[i];
}

static bool copy_entry(struct rft_entry *to, const struct rft_entry *from)
{
    *to = *from;
    to->data = NULL;
    if (from->len > 0) {
        unsigned char *d = malloc(from->len);
        if (d == NULL)
            return false;
        memcpy(d, from->data, from->len);
        to->data = d;
    }
    return true;
}

static void free_log(struct log *l, size_t from)
{
    while (l->n > from)
        free((void *)l->v[--l->n].data);
}

/* ---- the trace: invariants --------------------------------------------- */

/* Names an entry by its term and the CRC32C of its type and data, so two
 * no-ops of different terms differ. */
static uint64_t entry_id(uint64_t term, uint32_t hash)
{
    return (term & 0x7fffffffull) << 32 | hash | SET;
}

static void check_leader_completeness(struct sim *s, uint32_t id)
{
    const struct rft *r = s->nodes[id].r;

    for (uint64_t i = 1; i < s->committed.n && s->committed.v[i] & SET; i++) {
        const struct rft_entry *e = rft_entry_at(r, i);
        if (e == NULL ||
            entry_id(e->term, rft_entry_hash(e)) != s->committed.v[i]) {
            violation(s,
                      "leader completeness: node %u leads term %" PRIu64
                      " without committed entry %" PRIu64,
                      id, rft_term(r), i);
            return;
        }
    }
}

/* Folds one trace event into the run's trace hash. */
static void hash_event(struct sim *s, const struct rft_trace *t)
{
    uint64_t fields[] = {t->type,  t->node, t->term, t->vote,
                         t->index, t->hash, s->now};
    uint64_t h = s->res->trace_hash;

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        h = (h ^ fields[i]) * 0x100000001b3ull;
    s->res->trace_hash = h;
}

static void on_trace(void *arg, const struct rft_trace *t)
{
    struct sim *s = arg;
    struct node *n = &s->nodes[t->node];
    uint64_t *v;

    hash_event(s, t);
    switch (t->type) {
    case RFT_TRACE_BOOT:
        if (t->term < n->highest_term)
            violation(s, "node %u rebooted in term %" PRIu64 " after %" PRIu64,
                      t->node, t->term, n->highest_term);
        n->commit = 0;
        break;
    case RFT_TRACE_TERM:
        if (t->term > n->highest_term)
            n->highest_term = t->term;
        break;
    case RFT_TRACE_VOTE:
        v = slot(s, &n->vote_of, t->term);
        if (*v != 0 && *v != (t->vote | SET))
            violation(s, "node %u voted for %u and %u in term %" PRIu64,
                      t->node, (uint32_t)(*v & ~SET), t->vote, t->term);
        *v = t->vote | SET;
        break;
    case RFT_TRACE_LEADER:
        v = slot(s, &s->leader_of, t->term);
        if (*v != 0 && *v != (t->node | SET))
            violation(s, "election safety: nodes %u and %u lead term %" PRIu64,
                      (uint32_t)(*v & ~SET), t->node, t->term);
        *v = t->node | SET;
        s->res->leaders++;
        if (n->r != NULL)
            check_leader_completeness(s, t->node);
        break;
    case RFT_TRACE_COMMIT:
        for (uint64_t i = n->commit + 1; n->r != NULL && i <= t->index; i++) {
            const struct rft_entry *e = rft_entry_at(n->r, i);
            uint64_t hash =
                e != NULL ? entry_id(e->term, rft_entry_hash(e)) : SET;
            v = slot(s, &s->committed, i);
            if (*v != 0 && *v != hash)
                violation(s,
                          "node %u committed another entry at index %" PRIu64,
                          t->node, i);
            *v = hash;
        }
        n->commit = t->index;
        if (t->index > s->res->committed)
            s->res->committed = t->index;
        break;
    case RFT_TRACE_APPLY:
        v = slot(s, &s->applied, t->index);
        if (*v != 0 && *v != entry_id(t->term, t->hash))
            violation(s,
                      "state machine safety: node %u applied another entry "
                      "at index %" PRIu64,
                      t->node, t->index);
        *v = entry_id(t->term, t->hash);
        break;
    case RFT_TRACE_TRUNCATE:
        if (t->index <= n->commit)
            violation(s,
                      "node %u truncated from index %" PRIu64
                      ", below its commit index %" PRIu64,
                      t->node, t->index, n->commit);
        /* Nor may it delete an entry that is committed anywhere. */
        for (uint64_t i = t->index;
             n->r != NULL && i <= rft_last_index(n->r) && i < s->committed.n;
             i++) {
            const struct rft_entry *e = rft_entry_at(n->r, i);
            if (s->committed.v[i] == entry_id(e->term, rft_entry_hash(e))) {
                violation(
                    s, "node %u deleted entry %" PRIu64 ", which is committed",
                    t->node, i);
                break;
            }
        }
        break;
    case RFT_TRACE_APPEND:
    case RFT_TRACE_SNAPSHOT: /* nodes here take no snapshots yet */
        break;
    }
}

/* The log matching property: two logs with an entry of the same index and
 * term agree on every entry up to it. */
static void check_log_matching(struct sim *s)
{
    for (uint32_t a = 1; a <= s->o->nodes; a++) {
        for (uint32_t b = a + 1; b <= s->o->nodes; b++) {
            const struct log *x = &s->nodes[a].log;
            const struct log *y = &s->nodes[b].log;
            size_t n = x->n < y->n ? x->n : y->n;
            size_t same = 0;
            for (size_t i = n; i > 0; i--) {
                if (x->v[i - 1].term == y->v[i - 1].term) {
                    same = i;
                    break;
                }
            }
            for (size_t i = 0; i < same; i++) {
                if (x->v[i].term != y->v[i].term ||
                    rft_entry_hash(&x->v[i]) != rft_entry_hash(&y->v[i])) {
                    violation(s,
                              "log matching: nodes %u and %u share index %zu "
                              "and term but differ at index %zu",
                              a, b, same, i + 1);
                    return;
                }
            }
        }
    }
}

/* ---- nodes and the network --------------------------------------------- */

static void send(struct sim *s, const struct rft_msg *m)
{
    int copies = 1;

    if (fl_rng_chance(&s->rng, s->o->drop))
        return;
    if (fl_rng_chance(&s->rng, s->o->duplicate))
        copies = 2;
    for (int c = 0; c < copies; c++) {
        struct packet *p;
        if (s->nq == s->qcap) {
            size_t cap = s->qcap ? s->qcap * 2 : 256;
            struct packet *q = realloc(s->q, cap * sizeof(*q));
            if (q == NULL) {
                s->failed = true;
                return;
            }
            s->q = q;
            s->qcap = cap;
        }
        p = &s->q[s->nq];
        p->at = s->now + 1 +
                (unsigned)fl_rng_below(&s->rng, (uint64_t)s->o->max_delay + 1);
        p->seq = s->seq++;
        p->m = *m;
        p->entries = NULL;
        if (m->n_entries > 0) {
            p->entries = calloc(m->n_entries, sizeof(*p->entries));
            if (p->entries == NULL) {
                s->failed = true;
                return;
            }
            for (size_t i = 0; i < m->n_entries; i++) {
                if (!copy_entry(&p->entries[i], &m->entries[i]))
                    s->failed = true;
            }
            p->m.entries = p->entries;
        }
        s->nq++;
    }
}

static void free_packet(struct packet *p)
{
    for (size_t i = 0; i < p->m.n_entries; i++)
        free((void *)p->entries[i].data);
    free(p->entries);
}

static void step(struct sim *s, uint32_t id, const struct rft_event *ev);

/* Carries out an update in the contract's order: persist, then send. */
static void carry_out(struct sim *s, uint32_t id, const struct rft_update *u)
{
    struct node *n = &s->nodes[id];

    if (u->hard_state) {
        n->term = u->term;
        n->vote = u->vote;
    }
    if (u->truncate_from != 0 && u->truncate_from <= n->log.n)
        free_log(&n->log, u->truncate_from - 1);
    if (u->n_entries > 0) {
        if (u->first_index != n->log.n + 1) {
            violation(s,
                      "node %u appended at index %" PRIu64
                      " to a log ending at %zu",
                      id, u->first_index, n->log.n);
            return;
        }
        for (size_t i = 0; i < u->n_entries; i++) {
            if (n->log.n == n->log.cap) {
                size_t cap = n->log.cap ? n->log.cap * 2 : 64;
                struct rft_entry *v = realloc(n->log.v, cap * sizeof(*v));
                if (v == NULL) {
                    s->failed = true;
                    return;
                }
                n->log.v = v;
                n->log.cap = cap;
            }
            if (!copy_entry(&n->log.v[n->log.n], &u->entries[i])) {
                s->failed = true;
                return;
            }
            n->log.n++;
        }
    }
    for (size_t i = 0; i < u->n_msgs; i++)
        send(s, &u->msgs[i]);
    for (size_t i = 0; i < u->n_reads; i++) {
        const struct rft_read *rd = &u->reads[i];
        if (rd->index != 0 && rd->read_id < s->n_reads &&
            rd->index < s->read_floor[rd->read_id])
            violation(s,
                      "stale read: node %u served read %" PRIu64
                      " at index %" PRIu64 ", but index %" PRIu64
                      " was committed before it started",
                      id, rd->read_id, rd->index, s->read_floor[rd->read_id]);
    }
    if (u->n_entries > 0) {
        struct rft_event done = {.type = RFT_EV_PERSISTED, .index = n->log.n};
        step(s, id, &done);
    }
}

static void step(struct sim *s, uint32_t id, const struct rft_event *ev)
{
    struct rft_update u;

    if (s->nodes[id].r == NULL)
        return;
    if (rft_step(s->nodes[id].r, ev, &u) != 0) {
        s->failed = true;
        return;
    }
    carry_out(s, id, &u);
}

static struct rft_config node_config(const struct sim *s, uint32_t id)
{
    struct rft_config c = {
        .id = id,
        .n_nodes = s->o->nodes,
        .seed = s->o->seed * 1000003 + s->nodes[id].boots,
        .election_ticks = 15,
        .heartbeat_ticks = 4,
        /* Small batches let a follower's reply cover old entries without
         * the new leader's no-op, the state Figure 8 of the Raft paper
         * needs. */
        .max_entries_per_append = s->batch,
        .bugs = s->o->bugs,
        .trace = on_trace,
        .trace_arg = (void *)s,
    };

    for (unsigned i = 0; i < s->o->nodes; i++)
        c.nodes[i] = i + 1;
    return c;
}

static void boot(struct sim *s, uint32_t id)
{
    struct node *n = &s->nodes[id];
    struct rft_config c = node_config(s, id);
    struct rft_durable d = {.term = n->term,
                            .vote = n->vote,
                            .entries = n->log.v,
                            .n_entries = n->log.n};
    char err[256];

    n->boots++;
    if (rft_new(&n->r, &c, &d, err, sizeof(err)) != 0)
        s->failed = true;
}

static void crash(struct sim *s, uint32_t id)
{
    struct node *n = &s->nodes[id];

    rft_free(n->r);
    n->r = NULL;
    n->up_at = s->now + 1 + (unsigned)fl_rng_below(&s->rng, s->o->max_down);
    s->res->crashes++;
}

static int cmp_packets(const void *a, const void *b)
{
    const struct packet *x = a;
    const struct packet *y = b;

    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Delivers, in order, every packet due by now. */
static void deliver(struct sim *s)
{
    size_t due = 0;

    if (s->nq > 1)
        qsort(s->q, s->nq, sizeof(*s->q), cmp_packets);
    while (due < s->nq && s->q[due].at <= s->now)
        due++;
    for (size_t i = 0; i < due && !s->res->violation; i++) {
        struct packet *p = &s->q[i];
        uint32_t to = p->m.to;
        bool cut =
            s->partitioned && s->nodes[p->m.from].group != s->nodes[to].group;
        if (!cut && to >= 1 && to <= s->o->nodes) {
            struct rft_event ev = {.type = RFT_EV_RECEIVE, .msg = p->m};
            step(s, to, &ev);
        }
    }
    for (size_t i = 0; i < due; i++)
        free_packet(&s->q[i]);
    if (due > 0 && due < s->nq)
        memmove(s->q, s->q + due, (s->nq - due) * sizeof(*s->q));
    s->nq -= due;
}

static void faults(struct sim *s)
{
    for (uint32_t id = 1; id <= s->o->nodes; id++) {
        if (s->nodes[id].r == NULL && s->now >= s->nodes[id].up_at)
            boot(s, id);
    }
    double rate = 1.0 / (s->o->fault_every ? s->o->fault_every : 1);

    if (s->o->crashes && fl_rng_chance(&s->rng, rate)) {
        /* Half the crashes hit a leader, where they do the most harm. */
        uint32_t id = 1 + (uint32_t)fl_rng_below(&s->rng, s->o->nodes);
        if (fl_rng_chance(&s->rng, 0.5)) {
            for (uint32_t k = 1; k <= s->o->nodes; k++) {
                if (s->nodes[k].r != NULL &&
                    rft_role(s->nodes[k].r) == RFT_LEADER)
                    id = k;
            }
        }
        if (s->nodes[id].r != NULL)
            crash(s, id);
    }
    if (s->partitioned && s->now >= s->heal_at) {
        s->partitioned = false;
    } else if (!s->partitioned && s->o->partitions &&
               fl_rng_chance(&s->rng, rate)) {
        s->partitioned = true;
        s->heal_at = s->now + 50 + (unsigned)fl_rng_below(&s->rng, 450);
        for (uint32_t id = 1; id <= s->o->nodes; id++)
            s->nodes[id].group = (int)fl_rng_below(&s->rng, 2);
        s->res->partitions++;
    }
}

/* Sends a client read to a random node, remembering the highest index
 * committed anywhere at this moment. */
static void start_read(struct sim *s)
{
    uint32_t id = 1 + (uint32_t)fl_rng_below(&s->rng, s->o->nodes);
    struct rft_event ev = {.type = RFT_EV_READ};

    if (s->n_reads == s->reads_cap) {
        size_t cap = s->reads_cap ? s->reads_cap * 2 : 256;
        uint64_t *v = realloc(s->read_floor, cap * sizeof(*v));
        if (v == NULL) {
            s->failed = true;
            return;
        }
        s->read_floor = v;
        s->reads_cap = cap;
    }
    s->read_floor[s->n_reads] = s->res->committed;
    ev.read_id = s->n_reads++;
    step(s, id, &ev);
}

/* ---- running ----------------------------------------------------------- */

void sim_raft_defaults(struct sim_raft_options *o)
{
    *o = (struct sim_raft_options){
        .nodes = 5,
        .seed = 1,
        .ticks = 3000,
        .drop = 0.05,
        .duplicate = 0.02,
        .max_delay = 5,
        .partitions = true,
        .crashes = true,
        .fault_every = 400,
        .max_down = 300,
    };
}

static void free_sim(struct sim *s)
{
    for (uint32_t id = 1; id <= RFT_MAX_NODES; id++) {
        rft_free(s->nodes[id].r);
        free_log(&s->nodes[id].log, 0);
        free(s->nodes[id].log.v);
        free(s->nodes[id].vote_of.v);
    }
    for (size_t i = 0; i < s->nq; i++)
        free_packet(&s->q[i]);
    free(s->q);
    free(s->read_floor);
    free(s->leader_of.v);
    free(s->committed.v);
    free(s->applied.v);
    free(s);
}

int sim_raft_run(const struct sim_raft_options *o,
                 struct sim_raft_result *result)
{
    struct sim *s;
    int rc = 0;

    memset(result, 0, sizeof(*result));
    result->trace_hash = 0xcbf29ce484222325ull;
    if (o->nodes == 0 || o->nodes > RFT_MAX_NODES)
        return fl_input_error(result->why, sizeof(result->why),
                              "%u nodes: expected 1 to %d", o->nodes,
                              RFT_MAX_NODES);
    if (o->drop < 0 || o->drop > 1 || o->duplicate < 0 || o->duplicate > 1)
        return fl_input_error(result->why, sizeof(result->why),
                              "drop %g and duplicate %g: expected "
                              "probabilities from 0 to 1",
                              o->drop, o->duplicate);
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->o = o;
    s->res = result;
    fl_rng_seed(&s->rng, o->seed);
    s->batch = 1 + (unsigned)fl_rng_below(&s->rng, 4);
    for (uint32_t id = 1; id <= o->nodes; id++)
        boot(s, id);

    for (s->now = 0; s->now < o->ticks && !result->violation && !s->failed;
         s->now++) {
        faults(s);
        deliver(s);
        for (uint32_t id = 1; id <= o->nodes; id++) {
            struct rft_event tick = {.type = RFT_EV_TICK};
            step(s, id, &tick);
        }
        if (fl_rng_chance(&s->rng, 0.2)) {
            uint32_t id = 1 + (uint32_t)fl_rng_below(&s->rng, o->nodes);
            uint64_t value = ++s->proposals;
            struct rft_event ev = {
                .type = RFT_EV_PROPOSE, .data = &value, .len = sizeof(value)};
            step(s, id, &ev);
        }
        if (fl_rng_chance(&s->rng, 0.1))
            start_read(s);
    }
    if (!result->violation && !s->failed)
        check_log_matching(s);
    if (s->failed)
        rc = -ENOMEM;
    free_sim(s);
    return rc;
}
