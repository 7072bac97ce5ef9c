/*
 * The Raft cluster simulation. See raft_sim.h.
 */
#include "raft_sim.h"

#include "disk.h"
#include "error.h"
#include "history.h"
#include "linear.h"
#include "machine.h"
#include "raft.h"
#include "rng.h"
#include "session.h"
#include "storage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_NS 10000000LL /* a tick stands for 10 ms */
/* The clients' keys, k0, k1, ...: three, and one more per four clients
 * past twelve, so each key gets few concurrent operations and the
 * linearizability check stays fast. */
#define KEYS(clients) (3 + ((clients) > 12 ? ((clients)-12) / 4 : 0))
#define RESEND        50      /* ticks before a client asks again */
#define GIVE_UP       300     /* ticks before a client stops waiting */
#define DATA_DIR      "/node" /* the KV engine's directory */
#define RAFT_DIR      "/raft" /* the Raft storage's */

/* A growable array of 64-bit values indexed by term or log index; 0 means
 * unset, so stored values keep bit 63 set. */
struct table {
    uint64_t *v;
    size_t n;
};

#define SET (1ull << 63)

/* A client request a node keeps until it applies the entry at index. */
struct waiting {
    uint64_t index;
    unsigned client;
    uint64_t seq;
};

struct node {
    struct rft *r; /* NULL while the node is down */
    struct rfm *m; /* its state machine, on disk */
    struct sim_disk *disk;
    uint64_t boots;
    unsigned up_at;    /* tick of the restart while down */
    int group;         /* partition side */
    struct rfs *store; /* its Raft state on the disk, NULL while down */
    /* From the trace. */
    uint64_t commit;
    uint64_t highest_term;
    struct table vote_of; /* term -> vote | SET */
    struct waiting *wait;
    size_t n_wait;
    size_t wait_cap;
};

enum op { OP_GET, OP_PUT, OP_APPEND };

struct client {
    int64_t process;  /* in the history; a new one after an info */
    uint64_t session; /* client id for sessions, one per process */
    uint64_t seq;
    bool busy;
    unsigned next_at; /* idle: tick of the next invocation */
    enum op f;
    unsigned key;
    uint64_t value;
    unsigned resend_at;
    unsigned give_up_at;
    uint32_t target;  /* the node it sends to next; 0: any */
    uint64_t read_id; /* its newest read attempt */
};

/* A read attempt: the highest index committed anywhere when it started,
 * and the client that made it. */
struct read_req {
    uint64_t floor;
    unsigned client;
};

struct packet {
    unsigned at;
    uint64_t seq;
    struct rft_msg m;
    struct rft_entry *entries;
    unsigned char *chunk;
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
    struct client clients[64];
    int64_t next_process;
    uint64_t values; /* unique values handed out */
    int64_t hist_index;
    struct read_req *reads;
    size_t n_reads;
    size_t reads_cap;
    unsigned batch; /* entries per AppendEntries, 1 to 4, from the seed */
    size_t chunk;   /* snapshot bytes per message, from the seed */
    struct table leader_of; /* term -> leader | SET */
    struct table committed; /* index -> entry id | SET */
    /* Every entry any node appended, by index and term, for the log
     * matching check: an open-addressing table of index, term, hash. */
    struct appended {
        uint64_t index; /* 0: empty slot */
        uint64_t term;
        uint32_t hash;
    } * seen;
    size_t seen_n;
    size_t seen_cap;
    struct table applied; /* index -> entry id | SET */
    struct fl_buf scratch;
    struct rfm_result out;
    bool failed; /* out of memory */
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

static bool grow(struct sim *s, void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*v, c * size);
    if (p == NULL) {
        s->failed = true;
        return false;
    }
    *v = p;
    *cap = c;
    return true;
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

static unsigned char *copy_bytes(const void *p, size_t len)
{
    unsigned char *d;

    if (len == 0)
        return NULL;
    d = malloc(len);
    if (d != NULL)
        memcpy(d, p, len);
    return d;
}

static bool copy_entry(struct rft_entry *to, const struct rft_entry *from)
{
    *to = *from;
    to->data = copy_bytes(from->data, from->len);
    return from->len == 0 || to->data != NULL;
}

/* Appends a line to the trace (with keep_trace). */
static void trace_line(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void trace_line(struct sim *s, const char *fmt, ...)
{
    char line[256];
    va_list ap;

    if (!s->o->keep_trace)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fl_buf_printf(&s->res->trace, "{\"tick\":%u,%s}\n", s->now, line);
}

/* Checks whether node id's simulated disk ran out of memory. Then a
 * failing state machine is the simulation's failure, not the node's, so
 * the run ends as out of memory. */
static bool out_of_memory(struct sim *s, uint32_t id)
{
    if (!sim_disk_out_of_memory(s->nodes[id].disk))
        return false;
    s->failed = true;
    return true;
}

/* ---- the trace: invariants --------------------------------------------- */

/* Names an entry by its term and the CRC32C of its type and data, so two
 * no-ops of different terms differ. */
static uint64_t entry_id(uint64_t term, uint32_t hash)
{
    return (term & 0x7fffffffull) << 32 | hash | SET;
}

static uint64_t id_term(uint64_t id)
{
    return id >> 32 & 0x7fffffffull;
}

static void check_leader_completeness(struct sim *s, uint32_t id)
{
    const struct rft *r = s->nodes[id].r;
    uint64_t from = rft_snapshot_of(r)->index + 1;

    for (uint64_t i = from; i < s->committed.n && s->committed.v[i] & SET;
         i++) {
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

/* Finds the slot of (index, term) in seen, or the empty one it would
 * take. */
static struct appended *seen_slot(struct appended *v, size_t cap,
                                  uint64_t index, uint64_t term)
{
    size_t i = (size_t)((index * 0x9e3779b97f4a7c15ull) ^ term) & (cap - 1);

    while (v[i].index != 0 && (v[i].index != index || v[i].term != term))
        i = (i + 1) & (cap - 1);
    return &v[i];
}

/* The first half of the log matching property, after every step: two
 * entries with the same index and term, on any nodes, are the same entry.
 * (With the consistency check of AppendEntries this gives the whole
 * property, which check_log_matching verifies at the end.) */
static void check_appended(struct sim *s, const struct rft_trace *t)
{
    struct appended *e;

    if (s->seen_n * 2 >= s->seen_cap) {
        size_t cap = s->seen_cap ? s->seen_cap * 2 : 1024;
        struct appended *v = calloc(cap, sizeof(*v));
        if (v == NULL) {
            s->failed = true;
            return;
        }
        for (size_t i = 0; i < s->seen_cap; i++) {
            if (s->seen[i].index != 0)
                *seen_slot(v, cap, s->seen[i].index, s->seen[i].term) =
                    s->seen[i];
        }
        free(s->seen);
        s->seen = v;
        s->seen_cap = cap;
    }
    e = seen_slot(s->seen, s->seen_cap, t->index, t->term);
    if (e->index == 0) {
        *e = (struct appended){t->index, t->term, t->hash};
        s->seen_n++;
    } else if (e->hash != t->hash) {
        violation(s,
                  "log matching: node %u appended at index %" PRIu64
                  " in term %" PRIu64 " an entry another node has differently",
                  t->node, t->index, t->term);
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

static const char *const trace_names[] = {
    [RFT_TRACE_BOOT] = "boot",         [RFT_TRACE_TERM] = "term",
    [RFT_TRACE_VOTE] = "vote",         [RFT_TRACE_LEADER] = "leader",
    [RFT_TRACE_APPEND] = "append",     [RFT_TRACE_TRUNCATE] = "truncate",
    [RFT_TRACE_COMMIT] = "commit",     [RFT_TRACE_APPLY] = "apply",
    [RFT_TRACE_SNAPSHOT] = "snapshot",
};

static void on_trace(void *arg, const struct rft_trace *t)
{
    struct sim *s = arg;
    struct node *n = &s->nodes[t->node];
    uint64_t *v;

    hash_event(s, t);
    trace_line(s,
               "\"node\":%u,\"event\":\"%s\",\"term\":%" PRIu64
               ",\"vote\":%u,\"index\":%" PRIu64 ",\"hash\":%u",
               t->node, trace_names[t->type], t->term, t->vote, t->index,
               t->hash);
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
            if (e == NULL && i <= rft_snapshot_of(n->r)->index)
                continue; /* a snapshot from the leader covers it */
            uint64_t id =
                e != NULL ? entry_id(e->term, rft_entry_hash(e)) : SET;
            v = slot(s, &s->committed, i);
            if (*v != 0 && *v != id)
                violation(s,
                          "node %u committed another entry at index %" PRIu64,
                          t->node, i);
            *v = id;
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
            if (e != NULL &&
                s->committed.v[i] == entry_id(e->term, rft_entry_hash(e))) {
                violation(
                    s, "node %u deleted entry %" PRIu64 ", which is committed",
                    t->node, i);
                break;
            }
        }
        break;
    case RFT_TRACE_SNAPSHOT:
        if (t->vote == 0) {
            s->res->snapshots++;
            break;
        }
        s->res->installs++;
        /* A snapshot from a leader must end on the committed entry. */
        v = slot(s, &s->committed, t->index);
        if (*v != 0 && id_term(*v) != t->term)
            violation(s,
                      "node %u installed a snapshot ending at index %" PRIu64
                      " in term %" PRIu64 ", but the entry committed there "
                      "is of term %" PRIu64,
                      t->node, t->index, t->term, id_term(*v));
        break;
    case RFT_TRACE_APPEND:
        check_appended(s, t);
        break;
    }
}

/* Returns the entry at index of a durable log d. */
static const struct rft_entry *durable_at(const struct rft_durable *d,
                                          uint64_t index)
{
    return &d->entries[index - d->snapshot.index - 1];
}

/* The log matching property: two logs with an entry of the same index and
 * term agree on every entry up to it. It is checked at the end on each
 * node's disk, over the indexes both logs still contain after their
 * snapshots. The storage of a node that is down is opened again for it. */
static void check_log_matching(struct sim *s)
{
    struct rft_durable d[RFT_MAX_NODES + 1];
    char err[512];

    for (uint32_t id = 1; id <= s->o->nodes; id++) {
        struct node *n = &s->nodes[id];
        if (n->store == NULL) {
            sim_disk_restart(n->disk);
            if (rfs_open(&n->store, RAFT_DIR, sim_disk_vfs(n->disk), 4096, err,
                         sizeof(err)) != 0) {
                if (!out_of_memory(s, id))
                    violation(s, "node %u cannot recover its Raft state: %s",
                              id, err);
                return;
            }
        }
        rfs_durable(n->store, &d[id]);
    }
    for (uint32_t a = 1; a <= s->o->nodes; a++) {
        for (uint32_t b = a + 1; b <= s->o->nodes; b++) {
            const struct rft_durable *x = &d[a];
            const struct rft_durable *y = &d[b];
            uint64_t lo = x->snapshot.index > y->snapshot.index
                              ? x->snapshot.index
                              : y->snapshot.index;
            uint64_t hx = x->snapshot.index + x->n_entries;
            uint64_t hy = y->snapshot.index + y->n_entries;
            uint64_t hi = hx < hy ? hx : hy;
            uint64_t same = 0;
            for (uint64_t i = hi; i > lo; i--) {
                if (durable_at(x, i)->term == durable_at(y, i)->term) {
                    same = i;
                    break;
                }
            }
            for (uint64_t i = lo + 1; i <= same; i++) {
                const struct rft_entry *ex = durable_at(x, i);
                const struct rft_entry *ey = durable_at(y, i);
                if (ex->term != ey->term ||
                    rft_entry_hash(ex) != rft_entry_hash(ey)) {
                    violation(s,
                              "log matching: nodes %u and %u share index "
                              "%" PRIu64 " and term but differ at index "
                              "%" PRIu64,
                              a, b, same, i);
                    return;
                }
            }
        }
    }
}

/* ---- the history ------------------------------------------------------- */

static const char *const op_names[] = {"get", "put", "append"};

/* Writes the value of c's operation: its string for put and append. */
static void add_op_value(struct sim *s, const struct client *c)
{
    struct fl_buf *h = &s->res->history;

    if (c->f == OP_PUT)
        fl_buf_printf(h, "\"p%" PRIu64 "\"", c->value);
    else if (c->f == OP_APPEND)
        fl_buf_printf(h, "\"%" PRIu64 ",\"", c->value);
    else
        fl_buf_adds(h, "null");
}

/* Records an event of c's operation; read is the value a get returned. */
static void record(struct sim *s, const struct client *c, const char *type,
                   const struct fl_buf *read)
{
    struct fl_buf *h = &s->res->history;

    fl_buf_printf(h,
                  "{\"index\":%" PRId64 ",\"time\":%lld,\"process\":%" PRId64
                  ",\"type\":\"%s\",\"f\":\"%s\",\"key\":\"k%u\",\"value\":",
                  s->hist_index++, (long long)s->now * TICK_NS, c->process,
                  type, op_names[c->f], c->key);
    if (read != NULL)
        fl_buf_add_json_string(h, read->data ? read->data : "", read->len);
    else
        add_op_value(s, c);
    fl_buf_adds(h, "}\n");
}

/* Ends c's operation with outcome type. */
static void complete(struct sim *s, unsigned ci, const char *type,
                     const struct fl_buf *read)
{
    struct client *c = &s->clients[ci];

    record(s, c, type, read);
    if (strcmp(type, "ok") == 0)
        s->res->ops_ok++;
    else if (strcmp(type, "fail") == 0)
        s->res->ops_fail++;
    else
        s->res->ops_info++;
    c->busy = false;
    c->next_at = s->now + 1 + (unsigned)fl_rng_below(&s->rng, 20);
    if (strcmp(type, "info") == 0) {
        /* Its operation may still take effect: it goes on as a new
         * process with a new session, as a Jepsen client does. */
        c->process = s->next_process++;
        c->session = (uint64_t)c->process + 1;
        c->seq = 0;
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
        if (!grow(s, (void **)&s->q, &s->qcap, s->nq, sizeof(*s->q)))
            return;
        p = &s->q[s->nq];
        p->at = s->now + 1 +
                (unsigned)fl_rng_below(&s->rng, (uint64_t)s->o->max_delay + 1);
        p->seq = s->seq++;
        p->m = *m;
        p->entries = NULL;
        p->chunk = NULL;
        s->nq++;
        if (m->n_entries > 0) {
            p->entries = calloc(m->n_entries, sizeof(*p->entries));
            if (p->entries == NULL) {
                p->m.n_entries = 0;
                s->failed = true;
                return;
            }
            for (size_t i = 0; i < m->n_entries; i++) {
                if (!copy_entry(&p->entries[i], &m->entries[i]))
                    s->failed = true;
            }
            p->m.entries = p->entries;
        }
        if (m->type == RFT_MSG_SNAPSHOT && m->snapshot.len > 0) {
            p->chunk = copy_bytes(m->snapshot.data, m->snapshot.len);
            if (p->chunk == NULL)
                s->failed = true;
            p->m.snapshot.data = p->chunk;
        }
    }
}

static void free_packet(struct packet *p)
{
    for (size_t i = 0; i < p->m.n_entries; i++)
        free((void *)p->entries[i].data);
    free(p->entries);
    free(p->chunk);
}

static void step(struct sim *s, uint32_t id, const struct rft_event *ev,
                 uint64_t *proposed);

/* Sends the response to the client waiting at node n for the entry at
 * index. When another entry took that index, the client resends. */
static void answer_write(struct sim *s, uint32_t id, uint64_t index,
                         const struct rfm_result *out)
{
    struct node *n = &s->nodes[id];
    size_t kept = 0;

    /* The response goes to the client whose session and number it names,
     * when that client sent its write to this node, whatever index the
     * write took. A node of one commits during the proposal itself. */
    for (unsigned ci = 0; out->answered && ci < s->o->clients; ci++) {
        struct client *c = &s->clients[ci];
        if (c->busy && c->f != OP_GET && c->target == id &&
            c->session == out->client && c->seq == out->seq)
            complete(s, ci, "ok", NULL);
    }
    for (size_t i = 0; i < n->n_wait; i++) {
        struct waiting *w = &n->wait[i];
        struct client *c = &s->clients[w->client];
        if (w->index != index) {
            n->wait[kept++] = *w;
            continue;
        }
        /* Still waiting: another entry won the index. */
        if (c->busy && c->f != OP_GET && c->seq == w->seq)
            c->resend_at = s->now + 1;
    }
    n->n_wait = kept;
}

/* Applies committed entries to the node's state machine. */
static void apply(struct sim *s, uint32_t id, const struct rft_update *u)
{
    struct node *n = &s->nodes[id];

    for (size_t i = 0; i < u->n_committed; i++) {
        uint64_t index = u->first_committed + i;
        if (rfm_apply(n->m, index, &u->committed[i], &s->out) != 0) {
            if (!out_of_memory(s, id))
                violation(
                    s, "node %u: state machine failed at index %" PRIu64 ": %s",
                    id, index, kv_error(rfm_engine(n->m)));
            return;
        }
        answer_write(s, id, index, &s->out);
    }
}

/* Serves the client reads the core settled. */
static void answer_reads(struct sim *s, uint32_t id, const struct rft_update *u)
{
    struct node *n = &s->nodes[id];

    for (size_t i = 0; i < u->n_reads; i++) {
        const struct rft_read *rd = &u->reads[i];
        if (rd->read_id >= s->n_reads)
            continue;
        const struct read_req *q = &s->reads[rd->read_id];
        struct client *c = &s->clients[q->client];
        if (rd->index != 0 && rd->index < q->floor)
            violation(s,
                      "stale read: node %u served read %" PRIu64
                      " at index %" PRIu64 ", but index %" PRIu64
                      " was committed before it started",
                      id, rd->read_id, rd->index, q->floor);
        if (!c->busy || c->f != OP_GET || c->read_id != rd->read_id)
            continue;
        if (rd->index == 0) {
            c->target = rft_leader(n->r);
            c->resend_at = s->now + 1;
            continue;
        }
        char key[8];
        bool found;
        snprintf(key, sizeof(key), "k%u", c->key);
        fl_buf_clear(&s->scratch);
        if (rfm_get(n->m, (struct fl_str){key, strlen(key)}, &s->scratch,
                    &found) != 0) {
            if (!out_of_memory(s, id))
                violation(s, "node %u: read failed: %s", id,
                          kv_error(rfm_engine(n->m)));
            return;
        }
        complete(s, q->client, "ok", &s->scratch);
    }
}

/* Carries out an update in the contract's order: persist, then send, then
 * apply. */
static void carry_out(struct sim *s, uint32_t id, const struct rft_update *u)
{
    struct node *n = &s->nodes[id];
    char err[512];

    /* The leader's snapshot goes into the machine first, as fl-raftd
     * does: import checks the bytes before the Raft storage keeps them. */
    if (u->snapshot != NULL &&
        rfm_import(n->m, u->snapshot->data, u->snapshot->len, err,
                   sizeof(err)) != 0) {
        if (!out_of_memory(s, id))
            violation(s, "node %u: loading the leader's snapshot failed: %s",
                      id, err);
        return;
    }
    if (u->hard_state || u->snapshot != NULL || u->truncate_from != 0 ||
        u->n_entries > 0) {
        /* Persist before send: the records, then their fdatasync. */
        int rc = rfs_save(n->store, u, err, sizeof(err));
        if (rc == 0)
            rc = rfs_sync(n->store, err, sizeof(err));
        if (rc != 0) {
            if (!out_of_memory(s, id))
                violation(s, "node %u: saving its Raft state failed: %s", id,
                          err);
            return;
        }
    }
    for (size_t i = 0; i < u->n_msgs; i++)
        send(s, &u->msgs[i]);
    apply(s, id, u);
    answer_reads(s, id, u);
    if (u->n_entries > 0) {
        struct rft_event done = {.type = RFT_EV_PERSISTED,
                                 .index = rfs_last_index(n->store)};
        step(s, id, &done, NULL);
    }
}

static void step(struct sim *s, uint32_t id, const struct rft_event *ev,
                 uint64_t *proposed)
{
    struct rft_update u;

    if (s->nodes[id].r == NULL || s->res->violation)
        return;
    if (rft_step(s->nodes[id].r, ev, &u) != 0) {
        s->failed = true;
        return;
    }
    if (proposed != NULL)
        *proposed = u.proposed_index;
    carry_out(s, id, &u);
}

/* Compacts the node's log once snapshot_every entries are applied past its
 * snapshot, when its machine contains exactly what the core applied. */
static void maybe_snapshot(struct sim *s, uint32_t id)
{
    struct node *n = &s->nodes[id];
    uint64_t applied;
    uint64_t at;
    char err[512];

    if (n->r == NULL || s->o->snapshot_every == 0)
        return;
    applied = rft_applied(n->r);
    if (applied < rft_snapshot_of(n->r)->index + s->o->snapshot_every ||
        rfm_applied(n->m) != applied)
        return;
    fl_buf_clear(&s->scratch);
    if (rfm_export(n->m, &s->scratch, &at) != 0 || s->scratch.failed) {
        s->failed = true;
        return;
    }
    struct rft_event ev = {.type = RFT_EV_SNAPSHOT,
                           .index = at,
                           .data = s->scratch.data,
                           .len = s->scratch.len};
    step(s, id, &ev, NULL);
    /* The driver saved the bytes; now its log may shrink too. */
    if (rft_snapshot_of(n->r)->index == at &&
        rfs_compact(n->store, rft_snapshot_of(n->r), err, sizeof(err)) != 0 &&
        !out_of_memory(s, id))
        violation(s, "node %u: compacting its Raft log failed: %s", id, err);
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
        .snapshot_chunk = s->chunk,
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
    struct rft_durable d;
    struct kv_options ko;
    char err[512];
    int rc;

    kv_options_default(&ko);
    ko.vfs = sim_disk_vfs(n->disk);
    ko.manual = true;
    ko.segment_bytes = 4096; /* small, so segments roll often */
    ko.snapshot_every = 64;
    sim_disk_restart(n->disk);
    trace_line(s, "\"node\":%u,\"event\":\"restart\"", id);
    rc = rfs_open(&n->store, RAFT_DIR, ko.vfs, 4096, err, sizeof(err));
    if (rc != 0) {
        if (rc == -ENOMEM || out_of_memory(s, id))
            s->failed = true;
        else
            violation(s, "node %u cannot recover its Raft state: %s", id, err);
        return;
    }
    rfs_durable(n->store, &d);
    rc = rfm_open(&n->m, DATA_DIR, &ko, s->o->bugs, err, sizeof(err));
    if (rc == -ENOMEM) {
        s->failed = true;
        return;
    }
    if (rc != 0) {
        if (!out_of_memory(s, id))
            violation(s, "node %u cannot recover its state machine: %s", id,
                      err);
        return;
    }
    /* The machine lost applied entries the snapshot covers: start over
     * from the snapshot. */
    if (rfm_applied(n->m) < d.snapshot.index &&
        rfm_import(n->m, d.snapshot.data, d.snapshot.len, err, sizeof(err)) !=
            0) {
        if (!out_of_memory(s, id))
            violation(s, "node %u: loading its snapshot failed: %s", id, err);
        return;
    }
    n->boots++;
    rc = rft_new(&n->r, &c, &d, err, sizeof(err));
    if (rc != 0) {
        s->failed = true;
        return;
    }
    n->commit = rft_commit(n->r);
}

static void crash(struct sim *s, uint32_t id)
{
    struct node *n = &s->nodes[id];
    bool torn = s->o->torn && fl_rng_chance(&s->rng, 0.5);

    sim_disk_crash(n->disk, torn ? SIM_CRASH_TORN : SIM_CRASH_LOSE_UNSYNCED);
    trace_line(s, "\"node\":%u,\"event\":\"crash\",\"torn\":%s", id,
               torn ? "true" : "false");
    rfm_close(n->m);
    n->m = NULL;
    rfs_close(n->store);
    n->store = NULL;
    rft_free(n->r);
    n->r = NULL;
    n->n_wait = 0;
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
            step(s, to, &ev, NULL);
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
        trace_line(s, "\"event\":\"heal\"");
    } else if (!s->partitioned && s->o->partitions &&
               fl_rng_chance(&s->rng, rate)) {
        s->partitioned = true;
        s->heal_at = s->now + 50 + (unsigned)fl_rng_below(&s->rng, 450);
        for (uint32_t id = 1; id <= s->o->nodes; id++)
            s->nodes[id].group = (int)fl_rng_below(&s->rng, 2);
        s->res->partitions++;
        trace_line(s, "\"event\":\"partition\"");
    }
}

/* ---- clients ----------------------------------------------------------- */

/* Picks the node c sends to: the leader it learned of, or any. */
static uint32_t pick_node(struct sim *s, struct client *c)
{
    uint32_t id = c->target;

    if (id == 0 || id > s->o->nodes || s->nodes[id].r == NULL)
        id = 1 + (uint32_t)fl_rng_below(&s->rng, s->o->nodes);
    return id;
}

/* Sends c's operation, a first time or again. */
static void send_op(struct sim *s, unsigned ci)
{
    struct client *c = &s->clients[ci];
    uint32_t id = pick_node(s, c);
    struct node *n = &s->nodes[id];

    c->resend_at = s->now + RESEND;
    if (n->r == NULL) {
        c->target = 0;
        c->resend_at = s->now + 1;
        return;
    }
    if (c->f == OP_GET) {
        struct rft_event ev = {.type = RFT_EV_READ, .read_id = s->n_reads};
        if (!grow(s, (void **)&s->reads, &s->reads_cap, s->n_reads,
                  sizeof(*s->reads)))
            return;
        s->reads[s->n_reads++] = (struct read_req){s->res->committed, ci};
        c->read_id = ev.read_id;
        step(s, id, &ev, NULL);
        return;
    }
    char key[8];
    char value[32];
    uint64_t index = 0;
    struct fl_buf op;
    struct fl_buf cmd;

    snprintf(key, sizeof(key), "k%u", c->key);
    if (c->f == OP_PUT)
        snprintf(value, sizeof(value), "p%" PRIu64, c->value);
    else
        snprintf(value, sizeof(value), "%" PRIu64 ",", c->value);
    fl_buf_init(&op);
    fl_buf_init(&cmd);
    rfm_encode_op(&op, c->f == OP_PUT ? RFM_PUT : RFM_APPEND,
                  (struct fl_str){key, strlen(key)},
                  (struct fl_str){value, strlen(value)},
                  (struct fl_str){"", 0});
    rft_command_encode(&cmd, c->session, c->seq, op.data, op.len);
    if (op.failed || cmd.failed) {
        s->failed = true;
    } else {
        struct rft_event ev = {
            .type = RFT_EV_PROPOSE, .data = cmd.data, .len = cmd.len};
        c->target = id;
        step(s, id, &ev, &index);
    }
    fl_buf_free(&op);
    fl_buf_free(&cmd);
    if (s->nodes[id].r == NULL || s->failed || !c->busy)
        return;
    if (index == 0) {
        /* Not the leader: try the leader this node reported, or any. */
        c->target = rft_leader(n->r);
        c->resend_at = s->now + 1;
        return;
    }
    if (grow(s, (void **)&n->wait, &n->wait_cap, n->n_wait, sizeof(*n->wait)))
        n->wait[n->n_wait++] = (struct waiting){index, ci, c->seq};
}

static void run_clients(struct sim *s)
{
    for (unsigned ci = 0; ci < s->o->clients && !s->res->violation; ci++) {
        struct client *c = &s->clients[ci];
        if (!c->busy && s->now >= c->next_at) {
            uint64_t pick = fl_rng_below(&s->rng, 10);
            if (pick < 4)
                c->f = OP_GET;
            else if (pick < 6)
                c->f = OP_PUT;
            else
                c->f = OP_APPEND;
            c->key = (unsigned)fl_rng_below(&s->rng, KEYS(s->o->clients));
            c->value = ++s->values;
            c->seq++;
            c->busy = true;
            c->give_up_at = s->now + GIVE_UP;
            record(s, c, "invoke", NULL);
            send_op(s, ci);
        } else if (c->busy && s->now >= c->give_up_at) {
            /* A read without a response had no effect, but a write may have. */
            complete(s, ci, c->f == OP_GET ? "fail" : "info", NULL);
        } else if (c->busy && s->now >= c->resend_at) {
            send_op(s, ci);
        }
    }
}

/* ---- the history check ------------------------------------------------- */

static int check_history(struct sim *s)
{
    struct chk_lin_options lo;
    struct chk_lin_history *h = NULL;
    struct fl_hist_reader *rd = NULL;
    struct chk_lin_result res;
    struct fl_hist_event ev;
    struct fl_buf *hist = &s->res->history;
    char msg[256];
    int rc;

    chk_lin_options_default(&lo);
    lo.model = CHK_MODEL_KV;
    lo.threads = 1;
    /* A memory budget, not a time limit, so the verdict does not depend
     * on the machine's speed. */
    lo.memory_limit_bytes = (int64_t)1 << 30;
    rc = chk_lin_history_new(&h, &lo);
    if (rc == 0)
        rc = fl_hist_reader_open_mem(&rd, "history.jsonl",
                                     hist->data ? hist->data : "", hist->len,
                                     chk_lin_history_budget(h));
    while (rc == 0 && (rc = fl_hist_reader_next(rd, &ev)) == 1)
        rc = chk_lin_history_add(h, &ev, msg, sizeof(msg));
    if (rc < 0 && rc != -ENOMEM) {
        /* The clients wrote something the checker refuses: a bug here. */
        violation(s, "the recorded history is malformed: %s",
                  rd != NULL && *fl_hist_reader_error(rd)
                      ? fl_hist_reader_error(rd)
                      : msg);
        rc = 0;
    } else if (rc == 0 && (rc = chk_lin_check(h, &res)) == 0) {
        if (res.verdict == CHK_INVALID && res.bad_len > 0) {
            struct fl_buf d;
            const struct chk_lin_key_result *k = &res.bad[0];
            fl_buf_init(&d);
            chk_lin_describe_op(h, k->failed_op, &d);
            s->now = s->o->ticks;
            violation(s,
                      "not linearizable: key %.*s: %.*s cannot be placed "
                      "after the operations before it%s%s",
                      (int)chk_lin_key_name(h, k->key).len,
                      chk_lin_key_name(h, k->key).ptr, (int)d.len,
                      d.data ? d.data : "", *k->detail ? ": " : "", k->detail);
            fl_buf_free(&d);
        } else if (res.verdict == CHK_UNKNOWN) {
            s->res->unknown = true;
            snprintf(s->res->why, sizeof(s->res->why),
                     "the linearizability check gave up: %s", res.reason);
        }
    }
    fl_hist_reader_close(rd);
    chk_lin_history_free(h);
    return rc == -ENOMEM ? rc : 0;
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
        .torn = true,
        .fault_every = 400,
        .max_down = 300,
        .clients = 5,
        .snapshot_every = 50,
        .check_history = true,
    };
}

static void free_sim(struct sim *s)
{
    for (uint32_t id = 1; id <= RFT_MAX_NODES; id++) {
        struct node *n = &s->nodes[id];
        rft_free(n->r);
        if (n->disk != NULL && (n->m != NULL || n->store != NULL))
            sim_disk_crash(n->disk, SIM_CRASH_LOSE_UNSYNCED);
        rfm_close(n->m);
        rfs_close(n->store);
        sim_disk_free(n->disk);
        free(n->vote_of.v);
        free(n->wait);
    }
    for (size_t i = 0; i < s->nq; i++)
        free_packet(&s->q[i]);
    free(s->q);
    free(s->reads);
    free(s->leader_of.v);
    free(s->seen);
    free(s->committed.v);
    free(s->applied.v);
    fl_buf_free(&s->scratch);
    fl_buf_free(&s->out.response);
    free(s);
}

void sim_raft_result_free(struct sim_raft_result *result)
{
    fl_buf_free(&result->history);
    fl_buf_free(&result->trace);
}

int sim_raft_run(const struct sim_raft_options *o,
                 struct sim_raft_result *result)
{
    struct sim *s;
    int rc = 0;

    memset(result, 0, sizeof(*result));
    fl_buf_init(&result->history);
    fl_buf_init(&result->trace);
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
    if (o->clients > 64)
        return fl_input_error(result->why, sizeof(result->why),
                              "%u clients: expected 0 to 64", o->clients);
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->o = o;
    s->res = result;
    fl_buf_init(&s->scratch);
    fl_buf_init(&s->out.response);
    fl_rng_seed(&s->rng, o->seed);
    s->batch = 1 + (unsigned)fl_rng_below(&s->rng, 4);
    /* From one chunk per snapshot to dozens. */
    s->chunk = (size_t)16 << fl_rng_below(&s->rng, 8);
    for (unsigned ci = 0; ci < o->clients; ci++) {
        s->clients[ci].process = s->next_process++;
        s->clients[ci].session = (uint64_t)s->clients[ci].process + 1;
    }
    for (uint32_t id = 1; id <= o->nodes && rc == 0; id++) {
        rc = sim_disk_new(&s->nodes[id].disk, o->seed * 31 + id);
        if (rc == 0)
            boot(s, id);
    }
    for (s->now = 0;
         rc == 0 && s->now < o->ticks && !result->violation && !s->failed;
         s->now++) {
        faults(s);
        deliver(s);
        for (uint32_t id = 1; id <= o->nodes; id++) {
            struct rft_event tick = {.type = RFT_EV_TICK};
            step(s, id, &tick, NULL);
        }
        run_clients(s);
        for (uint32_t id = 1; id <= o->nodes; id++) {
            maybe_snapshot(s, id);
            /* The machines sync now and then, so a crash finds some
             * applied entries unsynced. */
            if (s->nodes[id].m != NULL && fl_rng_chance(&s->rng, 0.2) &&
                rfm_sync(s->nodes[id].m) != 0)
                if (!out_of_memory(s, id))
                    violation(s, "node %u: sync failed: %s", id,
                              kv_error(rfm_engine(s->nodes[id].m)));
        }
    }
    if (rc == 0 && !result->violation && !s->failed)
        check_log_matching(s);
    if (rc == 0 && !result->violation && !s->failed && o->clients > 0 &&
        o->check_history)
        rc = check_history(s);
    if (s->failed || result->history.failed || result->trace.failed)
        rc = -ENOMEM;
    free_sim(s);
    return rc;
}
