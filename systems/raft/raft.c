/*
 * The Raft core. See raft.h; section numbers refer to the Raft paper
 * (Ongaro and Ousterhout, USENIX ATC 2014).
 */
#include "raft.h"

#include "crc32c.h"
#include "error.h"
#include "rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pending_read {
    uint64_t read_id;
    uint64_t index; /* the commit index when confirmed; 0 until known */
    uint64_t round; /* confirms leadership once a majority replied to it */
};

struct rft {
    struct rft_config cfg;
    struct fl_rng rng;
    struct rft_conf conf; /* the configuration in force */

    enum rft_role role;
    uint64_t term;
    uint32_t vote;
    uint32_t leader;

    /* The log: log[i] is the entry at index snap.index + 1 + i; each owns
     * its data. The snapshot covers every index up to snap.index and owns
     * its data too. */
    struct rft_entry *log;
    size_t n;
    size_t cap;
    struct rft_snapshot snap;

    /* Follower: the snapshot being received, its bytes in order, from the
     * leader and term that started sending it. */
    struct rft_snapshot incoming;
    size_t incoming_cap;
    uint32_t incoming_from;
    uint64_t incoming_term;

    uint64_t commit;
    uint64_t applied;   /* handed to the driver to apply */
    uint64_t persisted; /* on disk, from RFT_EV_PERSISTED */

    unsigned elapsed;        /* ticks since the timer was reset */
    unsigned timeout;        /* this round's randomized election timeout */
    uint32_t votes;          /* bit per node id that granted its (pre-)vote */
    bool unsaved_vote;       /* no-persist-vote: the vote is not reported */
    uint32_t active;         /* leader: bit per node heard from this period */
    unsigned quorum_elapsed; /* leader: ticks of the CheckQuorum period */
    uint64_t next[RFT_MAX_NODES + 1];  /* leader: next index to send */
    uint64_t match[RFT_MAX_NODES + 1]; /* leader: highest index known */
    /* Leader: the follower accepted the last append it replied to, so the
     * next batches go out without waiting for replies (pipelining). */
    bool in_sync[RFT_MAX_NODES + 1];
    /* Leader: the snapshot index being sent to each follower, and how many
     * of its bytes the follower confirmed. */
    uint64_t snap_sent[RFT_MAX_NODES + 1];
    uint64_t snap_offset[RFT_MAX_NODES + 1];

    /* ReadIndex: the leader's heartbeat round, the newest round each node
     * replied to, and the reads waiting. A read with index 0 waits for the
     * leader's first commit of its term. */
    uint64_t round;
    uint64_t acked_round[RFT_MAX_NODES + 1];
    struct pending_read *pending;
    size_t n_pending;
    size_t pending_cap;
    struct rft_read *ready;
    size_t n_ready;
    size_t ready_cap;

    /* The output of the current step, for the update. */
    bool hard_state;
    uint64_t truncate_from;
    uint64_t append_from; /* first entry appended in this step; 0: none */
    bool installed;       /* this step installed a snapshot */
    struct rft_msg *msgs;
    size_t n_msgs;
    size_t msgs_cap;
    bool failed; /* an allocation failed during this step */
};

/* ---- tracing ----------------------------------------------------------- */

static void trace(const struct rft *r, enum rft_trace_type type, uint64_t term,
                  uint32_t vote, uint64_t index, uint32_t hash)
{
    struct rft_trace t = {type, r->cfg.id, term, vote, index, hash, 0};

    /* A leader names the votes it won, so an audit can check that each
     * voter kept its vote across a restart. */
    if (type == RFT_TRACE_LEADER)
        t.voters = r->votes;

    if (r->cfg.trace != NULL)
        r->cfg.trace(r->cfg.trace_arg, &t);
}

uint32_t rft_entry_hash(const struct rft_entry *e)
{
    unsigned char type = (unsigned char)e->type;
    uint32_t crc = fl_crc32c(0, &type, 1);

    return e->len > 0 ? fl_crc32c(crc, e->data, e->len) : crc;
}

/* Moves the commit index forward, never back. */
static void set_commit(struct rft *r, uint64_t commit)
{
    if (commit > r->commit) {
        r->commit = commit;
        trace(r, RFT_TRACE_COMMIT, r->term, 0, commit, 0);
    }
}

/* ---- the log ----------------------------------------------------------- */

static uint64_t last_index(const struct rft *r)
{
    return r->snap.index + r->n;
}

/* Returns the entry at index, which must be in the log. */
static struct rft_entry *entry(const struct rft *r, uint64_t index)
{
    return &r->log[index - r->snap.index - 1];
}

/* Returns the term of the entry at index: the snapshot's term at its own
 * index, and 0 for index 0, below the snapshot or past the end. */
static uint64_t term_at(const struct rft *r, uint64_t index)
{
    if (index == r->snap.index)
        return r->snap.term;
    if (index < r->snap.index || index > last_index(r))
        return 0;
    return entry(r, index)->term;
}

static uint64_t last_term(const struct rft *r)
{
    return term_at(r, last_index(r));
}

/* Appends a copy of e to the log. */
static bool append_entry(struct rft *r, const struct rft_entry *e)
{
    unsigned char *copy = NULL;

    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct rft_entry *log = realloc(r->log, cap * sizeof(*log));
        if (log == NULL)
            return false;
        r->log = log;
        r->cap = cap;
    }
    if (e->len > 0) {
        copy = malloc(e->len);
        if (copy == NULL)
            return false;
        memcpy(copy, e->data, e->len);
    }
    r->log[r->n] = *e;
    r->log[r->n].data = copy;
    r->n++;
    trace(r, RFT_TRACE_APPEND, e->term, 0, last_index(r), rft_entry_hash(e));
    if (r->append_from == 0)
        r->append_from = last_index(r);
    return true;
}

/* Drops the entries up to index, which a snapshot now covers. */
static void drop_prefix(struct rft *r, uint64_t index)
{
    size_t drop = (size_t)(index - r->snap.index);

    if (drop > r->n)
        drop = r->n;
    if (drop == 0)
        return;
    for (size_t i = 0; i < drop; i++)
        free((void *)r->log[i].data);
    memmove(r->log, r->log + drop, (r->n - drop) * sizeof(*r->log));
    r->n -= drop;
}

/* Deletes the entries from index on (section 5.3, step 3 of the receiver
 * rules); called only for a conflict, never for a matching entry. */
static void truncate_log(struct rft *r, uint64_t index)
{
    /* Reported first, so a checker can still see what goes. */
    trace(r, RFT_TRACE_TRUNCATE, r->term, 0, index, 0);
    while (r->n > 0 && last_index(r) >= index) {
        free((void *)r->log[r->n - 1].data);
        r->n--;
    }
    if (r->truncate_from == 0 || index < r->truncate_from)
        r->truncate_from = index;
    if (r->append_from > last_index(r))
        r->append_from = 0;
    if (r->persisted > last_index(r))
        r->persisted = last_index(r);
}

/* ---- messages ---------------------------------------------------------- */

static struct rft_msg *new_msg(struct rft *r, enum rft_msg_type type,
                               uint32_t to)
{
    struct rft_msg *m;

    if (r->n_msgs == r->msgs_cap) {
        size_t cap = r->msgs_cap ? r->msgs_cap * 2 : 16;
        struct rft_msg *msgs = realloc(r->msgs, cap * sizeof(*msgs));
        if (msgs == NULL) {
            r->failed = true;
            return NULL;
        }
        r->msgs = msgs;
        r->msgs_cap = cap;
    }
    m = &r->msgs[r->n_msgs++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->cfg.id;
    m->to = to;
    m->term = r->term;
    return m;
}

static bool is_member(const struct rft *r, uint32_t id)
{
    for (size_t i = 0; i < r->conf.n_nodes; i++) {
        if (r->conf.nodes[i] == id)
            return true;
    }
    return false;
}

/* Checks whether count nodes are a majority of the configuration. */
static bool quorum(const struct rft *r, size_t count)
{
    return count * 2 > r->conf.n_nodes;
}

/* Sends peer the next chunk of the snapshot, from the offset it
 * confirmed; a newer snapshot starts over. */
static void send_snapshot(struct rft *r, uint32_t to)
{
    struct rft_msg *m = new_msg(r, RFT_MSG_SNAPSHOT, to);
    uint64_t offset;
    size_t len;

    if (m == NULL)
        return;
    if (r->snap_sent[to] != r->snap.index) {
        r->snap_sent[to] = r->snap.index;
        r->snap_offset[to] = 0;
    }
    offset = r->snap_offset[to];
    len = r->snap.len - (size_t)offset;
    if (len > r->cfg.snapshot_chunk)
        len = r->cfg.snapshot_chunk;
    m->snapshot = r->snap;
    m->snapshot.data = r->snap.data + offset;
    m->snapshot.len = len;
    m->offset = offset;
    m->done = offset + len == r->snap.len;
    m->commit = r->commit;
    m->round = r->round;
}

/* Sends to peer the entries from its next index, or a heartbeat, or, when
 * the entries it needs are compacted away, the snapshot (section 7).
 * Entries point into the log, which stays put until the next step. */
static void send_append(struct rft *r, uint32_t to)
{
    struct rft_msg *m;
    uint64_t next = r->next[to];
    uint64_t last = last_index(r);

    if (next <= r->snap.index) {
        send_snapshot(r, to);
        return;
    }
    m = new_msg(r, RFT_MSG_APPEND, to);
    if (m == NULL)
        return;
    m->prev_index = next - 1;
    m->prev_term = term_at(r, next - 1);
    m->commit = r->commit;
    m->round = r->round;
    if (next <= last) {
        uint64_t n = last - next + 1;
        if (n > r->cfg.max_entries_per_append)
            n = r->cfg.max_entries_per_append;
        m->entries = entry(r, next);
        m->n_entries = (size_t)n;
        /* A follower in sync gets the following entries in the next
         * message at once; a lost message shows as a rejection. */
        if (r->in_sync[to])
            r->next[to] = next + n;
    }
}

static void broadcast_append(struct rft *r)
{
    for (size_t i = 0; i < r->conf.n_nodes; i++) {
        if (r->conf.nodes[i] != r->cfg.id)
            send_append(r, r->conf.nodes[i]);
    }
}

/* Sends every follower a heartbeat that carries again the entries it has
 * not confirmed, so entries lost in flight go out again. */
static void heartbeat(struct rft *r)
{
    for (size_t i = 0; i < r->conf.n_nodes; i++) {
        uint32_t id = r->conf.nodes[i];
        if (id != r->cfg.id && r->in_sync[id])
            r->next[id] = r->match[id] + 1;
    }
    broadcast_append(r);
}

/* ---- reads ------------------------------------------------------------- */

static void read_done(struct rft *r, uint64_t read_id, uint64_t index)
{
    if (r->n_ready == r->ready_cap) {
        size_t cap = r->ready_cap ? r->ready_cap * 2 : 16;
        struct rft_read *ready = realloc(r->ready, cap * sizeof(*ready));
        if (ready == NULL) {
            r->failed = true;
            return;
        }
        r->ready = ready;
        r->ready_cap = cap;
    }
    r->ready[r->n_ready++] = (struct rft_read){read_id, index};
}

/* Turns every waiting read away: this node is no longer the leader. */
static void fail_reads(struct rft *r)
{
    for (size_t i = 0; i < r->n_pending; i++)
        read_done(r, r->pending[i].read_id, 0);
    r->n_pending = 0;
}

/* Gives reads that wait for the leader's first commit of its term the
 * commit index, and starts a heartbeat round to confirm leadership. */
static void assign_reads(struct rft *r)
{
    bool assigned = false;

    if (r->role != RFT_LEADER || term_at(r, r->commit) != r->term)
        return; /* until then the commit index may be behind (thesis 6.4) */
    for (size_t i = 0; i < r->n_pending; i++) {
        if (r->pending[i].index == 0) {
            if (!assigned)
                r->round++;
            assigned = true;
            r->pending[i].index = r->commit;
            r->pending[i].round = r->round;
        }
    }
    if (assigned)
        broadcast_append(r);
}

/* Serves the reads whose round a majority replied to and whose index is
 * applied. */
static void settle_reads(struct rft *r)
{
    size_t kept = 0;

    for (size_t i = 0; i < r->n_pending; i++) {
        struct pending_read *p = &r->pending[i];
        size_t count = 0;
        for (size_t k = 0; p->index != 0 && k < r->conf.n_nodes; k++) {
            uint32_t id = r->conf.nodes[k];
            count += id == r->cfg.id || r->acked_round[id] >= p->round;
        }
        if (p->index != 0 && quorum(r, count) && p->index <= r->applied)
            read_done(r, p->read_id, p->index);
        else
            r->pending[kept++] = *p;
    }
    r->n_pending = kept;
}

static void on_read(struct rft *r, const struct rft_event *ev)
{
    if (r->role != RFT_LEADER) {
        read_done(r, ev->read_id, 0);
        return;
    }
    if ((r->cfg.bugs & RFT_BUG_STALE_READ) && r->applied > 0) {
        /* Whatever this node has applied, leader or not any more. */
        read_done(r, ev->read_id, r->applied);
        return;
    }
    if (r->n_pending == r->pending_cap) {
        size_t cap = r->pending_cap ? r->pending_cap * 2 : 16;
        struct pending_read *p = realloc(r->pending, cap * sizeof(*p));
        if (p == NULL) {
            r->failed = true;
            return;
        }
        r->pending = p;
        r->pending_cap = cap;
    }
    r->pending[r->n_pending++] = (struct pending_read){ev->read_id, 0, 0};
    assign_reads(r);
}

/* ---- roles ------------------------------------------------------------- */

static void reset_timer(struct rft *r)
{
    r->elapsed = 0;
    r->timeout = r->cfg.election_ticks +
                 (unsigned)fl_rng_below(&r->rng, r->cfg.election_ticks);
}

/* Moves to term, forgetting the vote, which belongs to the old term. The
 * vote is kept on a step-down within the same term. */
static void adopt_term(struct rft *r, uint64_t term)
{
    if (term > r->term) {
        r->term = term;
        r->vote = 0;
        r->unsaved_vote = false;
        r->hard_state = true;
        trace(r, RFT_TRACE_TERM, term, 0, 0, 0);
    }
}

static void become_follower(struct rft *r, uint32_t leader)
{
    if (r->role == RFT_LEADER)
        fail_reads(r);
    r->role = RFT_FOLLOWER;
    r->leader = leader;
    reset_timer(r);
}

static size_t count_votes(uint32_t votes)
{
    size_t n = 0;

    for (; votes != 0; votes &= votes - 1)
        n++;
    return n;
}

/* Advances the commit index to the highest index a majority stores,
 * counting only entries of the current term (section 5.4.2): an entry of
 * an earlier term commits only through a later one. */
static void advance_commit(struct rft *r)
{
    r->match[r->cfg.id] = r->persisted;
    bool any_term = (r->cfg.bugs & RFT_BUG_COMMIT_PRIOR_TERM) != 0;

    for (uint64_t n = last_index(r); n > r->commit; n--) {
        if (term_at(r, n) != r->term && !any_term)
            break; /* terms only grow along the log */
        size_t count = 0;
        for (size_t i = 0; i < r->conf.n_nodes; i++)
            count += r->match[r->conf.nodes[i]] >= n;
        if (quorum(r, count)) {
            set_commit(r, n);
            break;
        }
    }
}

static void become_leader(struct rft *r)
{
    struct rft_entry noop = {.term = r->term, .type = RFT_ENTRY_NOOP};

    r->role = RFT_LEADER;
    r->leader = r->cfg.id;
    r->elapsed = 0;
    trace(r, RFT_TRACE_LEADER, r->term, 0, 0, 0);
    r->active = 0;
    r->quorum_elapsed = 0;
    r->round = 0;
    for (size_t i = 0; i < r->conf.n_nodes; i++) {
        uint32_t id = r->conf.nodes[i];
        r->next[id] = last_index(r) + 1;
        r->match[id] = 0;
        r->in_sync[id] = false;
        r->acked_round[id] = 0;
    }
    /* A no-op of the new term lets earlier entries commit (section 8). */
    if (!append_entry(r, &noop)) {
        r->failed = true;
        return;
    }
    advance_commit(r);
    broadcast_append(r);
}

static void start_election(struct rft *r)
{
    adopt_term(r, r->term + 1);
    r->vote = r->cfg.id;
    r->hard_state = true;
    trace(r, RFT_TRACE_VOTE, r->term, r->vote, 0, 0);
    r->role = RFT_CANDIDATE;
    r->leader = 0;
    r->votes = 1u << r->cfg.id;
    reset_timer(r);
    if (quorum(r, 1)) {
        become_leader(r);
        return;
    }
    for (size_t i = 0; i < r->conf.n_nodes; i++) {
        uint32_t id = r->conf.nodes[i];
        struct rft_msg *m;
        if (id == r->cfg.id || (m = new_msg(r, RFT_MSG_VOTE, id)) == NULL)
            continue;
        m->last_index = last_index(r);
        m->last_term = last_term(r);
    }
}

/* Asks for pre-votes for the next term without changing term or vote
 * (thesis section 9.6); a real election follows only with a majority. */
static void start_pre_vote(struct rft *r)
{
    r->role = RFT_PRE_CANDIDATE;
    r->leader = 0;
    r->votes = 1u << r->cfg.id;
    reset_timer(r);
    if (quorum(r, 1)) {
        start_election(r);
        return;
    }
    for (size_t i = 0; i < r->conf.n_nodes; i++) {
        uint32_t id = r->conf.nodes[i];
        struct rft_msg *m;
        if (id == r->cfg.id || (m = new_msg(r, RFT_MSG_PRE_VOTE, id)) == NULL)
            continue;
        m->term = r->term + 1;
        m->last_index = last_index(r);
        m->last_term = last_term(r);
    }
}

/* ---- receiving --------------------------------------------------------- */

/* The election restriction (section 5.4.1): a candidate's log must be at
 * least as up to date as this node's. */
static bool up_to_date(const struct rft *r, const struct rft_msg *m)
{
    return m->last_term > last_term(r) ||
           (m->last_term == last_term(r) && m->last_index >= last_index(r));
}

static void on_vote(struct rft *r, const struct rft_msg *m)
{
    struct rft_msg *reply;
    bool grant = m->term == r->term && (r->vote == 0 || r->vote == m->from) &&
                 up_to_date(r, m);

    if (grant) {
        if (r->vote != m->from) {
            /* The planted bug sends the grant but leaves the vote out of
             * the hard state, so a crash loses it. */
            if (r->cfg.bugs & RFT_BUG_NO_PERSIST_VOTE)
                r->unsaved_vote = true;
            else
                r->hard_state = true;
            trace(r, RFT_TRACE_VOTE, r->term, m->from, 0, 0);
        }
        r->vote = m->from;
        reset_timer(r);
    }
    reply = new_msg(r, RFT_MSG_VOTE_REPLY, m->from);
    if (reply != NULL)
        reply->granted = grant;
}

static void on_vote_reply(struct rft *r, const struct rft_msg *m)
{
    /* A reply from another term, or to an election already decided, is
     * stale. */
    if (r->role != RFT_CANDIDATE || m->term != r->term || !m->granted)
        return;
    r->votes |= 1u << m->from;
    if (quorum(r, count_votes(r->votes)))
        become_leader(r);
}

static void on_pre_vote(struct rft *r, const struct rft_msg *m)
{
    struct rft_msg *reply = new_msg(r, RFT_MSG_PRE_VOTE_REPLY, m->from);
    bool grant = m->term > r->term && up_to_date(r, m);

    /* Granting changes nothing here: no term, no vote, no timer. */
    if (reply == NULL)
        return;
    reply->granted = grant;
    if (grant)
        reply->term = m->term;
}

static void on_pre_vote_reply(struct rft *r, const struct rft_msg *m)
{
    if (r->role != RFT_PRE_CANDIDATE || m->term != r->term + 1 || !m->granted)
        return;
    r->votes |= 1u << m->from;
    if (quorum(r, count_votes(r->votes)))
        start_election(r);
}

static void on_append(struct rft *r, const struct rft_msg *m)
{
    struct rft_msg *reply;
    uint64_t prev = m->prev_index;
    uint64_t prev_term = m->prev_term;
    const struct rft_entry *entries = m->entries;
    size_t n_entries = m->n_entries;
    size_t i;

    if (m->term < r->term) {
        /* The reply carries the newer term, so the stale leader steps
         * down. */
        reply = new_msg(r, RFT_MSG_APPEND_REPLY, m->from);
        if (reply != NULL)
            reply->match = last_index(r);
        return;
    }
    become_follower(r, m->from);
    reply = new_msg(r, RFT_MSG_APPEND_REPLY, m->from);
    if (reply == NULL)
        return;
    reply->round = m->round;
    if (prev < r->snap.index) {
        /* The entries up to the snapshot are committed, so they match the
         * leader's; never compare against a compacted index (R5). Skip
         * them and go on from the snapshot's index. */
        uint64_t skip = r->snap.index - prev;
        if (skip >= n_entries) {
            reply->success = true;
            reply->match = r->snap.index;
            return;
        }
        prev = r->snap.index;
        prev_term = entries[skip - 1].term;
        entries += skip;
        n_entries -= (size_t)skip;
    }
    if (prev > last_index(r) || term_at(r, prev) != prev_term) {
        /* No matching entry before the new ones: ask for earlier ones.
         * Index 0 always matches a correct leader; a message claiming
         * otherwise gets hint 0, never an underflow. */
        if (prev > last_index(r))
            reply->match = last_index(r);
        else
            reply->match = prev > 0 ? prev - 1 : 0;
        return;
    }
    for (i = 0; i < n_entries; i++) {
        uint64_t index = prev + 1 + i;
        if (index > last_index(r))
            break;
        if (term_at(r, index) != entries[i].term ||
            (r->cfg.bugs & RFT_BUG_TRUNCATE_ON_MATCH)) {
            truncate_log(r, index);
            break;
        }
        /* Same index and term: the same entry. Never truncate on a
         * match, or a delayed message would erase newer entries. */
    }
    for (; i < n_entries; i++) {
        if (!append_entry(r, &entries[i])) {
            r->failed = true;
            return;
        }
    }
    /* Commit only what this message proved to match the leader's log. */
    uint64_t verified = prev + n_entries;
    set_commit(r, m->commit < verified ? m->commit : verified);
    reply->success = true;
    reply->match = verified;
}

/* Records that follower from's log matches the leader's up to match, and
 * sends it what follows. */
static void follower_matches(struct rft *r, uint32_t from, uint64_t match)
{
    r->in_sync[from] = true;
    if (match > r->match[from])
        r->match[from] = match;
    if (r->next[from] < match + 1)
        r->next[from] = match + 1;
    advance_commit(r);
    if (r->next[from] <= last_index(r))
        send_append(r, from);
}

static void on_append_reply(struct rft *r, const struct rft_msg *m)
{
    uint32_t from = m->from;

    if (r->role != RFT_LEADER || m->term != r->term || !is_member(r, from))
        return;
    /* Any reply of this term confirms the follower still follows. */
    if (m->round > r->acked_round[from])
        r->acked_round[from] = m->round;
    if (m->success) {
        follower_matches(r, from, m->match);
        return;
    }
    /* Back off, using the follower's hint, but never below index 1. */
    r->in_sync[from] = false;
    uint64_t next = r->next[from] > 1 ? r->next[from] - 1 : 1;
    if (m->match < next - 1)
        next = m->match + 1;
    r->next[from] = next;
    send_append(r, from);
}

/* Appends a chunk to the snapshot being received. */
static bool add_chunk(struct rft *r, const unsigned char *data, size_t len)
{
    struct rft_snapshot *in = &r->incoming;

    if (in->len + len > r->incoming_cap) {
        size_t cap = r->incoming_cap ? r->incoming_cap : 4096;
        while (cap < in->len + len)
            cap *= 2;
        unsigned char *p = realloc((void *)in->data, cap);
        if (p == NULL)
            return false;
        in->data = p;
        r->incoming_cap = cap;
    }
    if (len > 0)
        memcpy((unsigned char *)in->data + in->len, data, len);
    in->len += len;
    return true;
}

/* Makes the received snapshot this node's (section 7). Entries after it
 * stay when the log contains its last entry. Otherwise the whole log goes,
 * because the snapshot has newer committed state than any of it. */
static void install_snapshot(struct rft *r)
{
    struct rft_snapshot *in = &r->incoming;
    bool keep = in->index <= last_index(r) && term_at(r, in->index) == in->term;

    if (!keep && last_index(r) > in->index)
        truncate_log(r, in->index + 1);
    drop_prefix(r, in->index);
    free((void *)r->snap.data);
    r->snap = *in;
    r->conf = in->conf;
    *in = (struct rft_snapshot){0};
    r->incoming_cap = 0;
    r->installed = true;
    trace(r, RFT_TRACE_SNAPSHOT, r->snap.term, 1, r->snap.index,
          fl_crc32c(0, r->snap.data, r->snap.len));
    set_commit(r, r->snap.index);
    r->applied = r->snap.index;
    if (r->persisted < r->snap.index)
        r->persisted = r->snap.index;
}

static void on_snapshot_msg(struct rft *r, const struct rft_msg *m)
{
    const struct rft_snapshot *s = &m->snapshot;
    struct rft_snapshot *in = &r->incoming;
    struct rft_msg *reply;

    if (m->term < r->term) {
        /* The newer term in the reply makes the stale leader step down. */
        reply = new_msg(r, RFT_MSG_SNAPSHOT_REPLY, m->from);
        if (reply != NULL)
            reply->snapshot.index = s->index;
        return;
    }
    become_follower(r, m->from);
    reply = new_msg(r, RFT_MSG_SNAPSHOT_REPLY, m->from);
    if (reply == NULL)
        return;
    reply->round = m->round;
    reply->snapshot.index = s->index;
    if (s->index <= r->commit) {
        /* Every entry it covers is committed here already. */
        reply->done = reply->success = true;
        reply->match = s->index;
        return;
    }
    bool same = in->index == s->index && r->incoming_from == m->from &&
                r->incoming_term == m->term && in->data != NULL;
    if (m->offset == 0 && !same) {
        /* A new snapshot, or one from another leader or term. A late copy
         * of the first chunk of the one in progress changes nothing. */
        in->index = s->index;
        in->term = s->term;
        in->conf = s->conf;
        in->len = 0;
        r->incoming_from = m->from;
        r->incoming_term = m->term;
    }
    /* Chunks count only in order and from the one leader that started:
     * two leaders' snapshots of one index may differ byte for byte. */
    if (in->index != s->index || r->incoming_from != m->from ||
        r->incoming_term != m->term || m->offset != in->len ||
        s->conf.n_nodes == 0 || s->conf.n_nodes > RFT_MAX_NODES) {
        same = in->index == s->index && r->incoming_from == m->from &&
               r->incoming_term == m->term;
        reply->offset = same ? in->len : 0;
        return;
    }
    if (!add_chunk(r, s->data, s->len)) {
        r->failed = true;
        return;
    }
    reply->offset = in->len;
    if (!m->done)
        return;
    install_snapshot(r);
    reply->done = reply->success = true;
    reply->match = r->snap.index;
}

static void on_snapshot_reply(struct rft *r, const struct rft_msg *m)
{
    uint32_t from = m->from;

    if (r->role != RFT_LEADER || m->term != r->term || !is_member(r, from))
        return;
    if (m->round > r->acked_round[from])
        r->acked_round[from] = m->round;
    if (m->done) {
        follower_matches(r, from, m->match);
        return;
    }
    /* A reply about an older snapshot is stale: the next heartbeat sends
     * the current one. */
    if (m->snapshot.index != r->snap.index ||
        r->snap_sent[from] != r->snap.index || m->offset > r->snap.len ||
        r->next[from] > r->snap.index)
        return;
    r->snap_offset[from] = m->offset;
    send_snapshot(r, from);
}

/* Checks whether this node heard from a live leader within the minimum
 * election timeout, or is that leader. */
static bool in_lease(const struct rft *r)
{
    return r->role == RFT_LEADER ||
           (r->leader != 0 && r->elapsed < r->cfg.election_ticks);
}

static void on_receive(struct rft *r, const struct rft_msg *m)
{
    bool asks = m->type == RFT_MSG_VOTE || m->type == RFT_MSG_PRE_VOTE;

    if (m->to != r->cfg.id || !is_member(r, m->from) || m->from == r->cfg.id)
        return;
    /* No real cluster comes near such a term. A forged one would leave
     * the node unable to raise its term (term + 1 wraps) and so stop
     * elections for good. */
    if (m->term > RFT_MAX_TERM)
        return;
    /* Leader stickiness (thesis section 4.2.3): while a leader is known
     * to be alive, a request to replace it is ignored, term and all. */
    if (asks && m->term > r->term && in_lease(r))
        return;
    /* A pre-vote and a granted pre-vote reply carry a term no node has
     * entered yet, so they must not move this node's term. */
    bool prospective = m->type == RFT_MSG_PRE_VOTE ||
                       (m->type == RFT_MSG_PRE_VOTE_REPLY && m->granted);
    if (m->term > r->term && !prospective) {
        adopt_term(r, m->term);
        bool from_leader =
            m->type == RFT_MSG_APPEND || m->type == RFT_MSG_SNAPSHOT;
        become_follower(r, from_leader ? m->from : 0);
    }
    if (r->role == RFT_LEADER && m->term == r->term)
        r->active |= 1u << m->from;
    switch (m->type) {
    case RFT_MSG_VOTE:
        on_vote(r, m);
        break;
    case RFT_MSG_VOTE_REPLY:
        on_vote_reply(r, m);
        break;
    case RFT_MSG_APPEND:
        on_append(r, m);
        break;
    case RFT_MSG_APPEND_REPLY:
        on_append_reply(r, m);
        break;
    case RFT_MSG_PRE_VOTE:
        on_pre_vote(r, m);
        break;
    case RFT_MSG_PRE_VOTE_REPLY:
        on_pre_vote_reply(r, m);
        break;
    case RFT_MSG_SNAPSHOT:
        on_snapshot_msg(r, m);
        break;
    case RFT_MSG_SNAPSHOT_REPLY:
        on_snapshot_reply(r, m);
        break;
    }
}

/* ---- the step function ------------------------------------------------- */

/* CheckQuorum (thesis section 6.2): once per election timeout a leader
 * checks that a majority replied to it, and steps down otherwise, so clients
 * stop waiting on a leader that cannot commit. */
static void check_quorum(struct rft *r)
{
    uint32_t heard = r->active | 1u << r->cfg.id;

    r->quorum_elapsed = 0;
    r->active = 0;
    if (!quorum(r, count_votes(heard)))
        become_follower(r, 0);
}

static void on_tick(struct rft *r)
{
    r->elapsed++;
    if (r->role == RFT_LEADER) {
        if (++r->quorum_elapsed >= r->cfg.election_ticks) {
            check_quorum(r);
            if (r->role != RFT_LEADER)
                return;
        }
        if (r->elapsed >= r->cfg.heartbeat_ticks) {
            r->elapsed = 0;
            heartbeat(r);
        }
        return;
    }
    if (r->elapsed >= r->timeout)
        start_pre_vote(r);
}

static void on_propose(struct rft *r, const struct rft_event *ev,
                       struct rft_update *u)
{
    struct rft_entry e = {
        .term = r->term,
        .type = RFT_ENTRY_COMMAND,
        .data = ev->data,
        .len = ev->len,
    };

    if (r->role != RFT_LEADER)
        return;
    if (!append_entry(r, &e)) {
        r->failed = true;
        return;
    }
    u->proposed_index = last_index(r);
    broadcast_append(r);
}

/* The driver saved its state machine up to ev->index: keep the bytes and
 * drop the log they cover (section 7). */
static void on_snapshot_taken(struct rft *r, const struct rft_event *ev)
{
    unsigned char *copy = NULL;

    if (ev->index <= r->snap.index || ev->index > r->applied)
        return;
    if (ev->len > 0) {
        copy = malloc(ev->len);
        if (copy == NULL) {
            r->failed = true;
            return;
        }
        memcpy(copy, ev->data, ev->len);
    }
    uint64_t term = term_at(r, ev->index);
    drop_prefix(r, ev->index);
    free((void *)r->snap.data);
    r->snap = (struct rft_snapshot){
        .index = ev->index,
        .term = term,
        .conf = r->conf,
        .data = copy,
        .len = ev->len,
    };
    trace(r, RFT_TRACE_SNAPSHOT, term, 0, ev->index,
          fl_crc32c(0, copy, ev->len));
}

int rft_step(struct rft *r, const struct rft_event *ev, struct rft_update *u)
{
    memset(u, 0, sizeof(*u));
    r->hard_state = false;
    r->truncate_from = 0;
    r->append_from = 0;
    r->installed = false;
    r->n_msgs = 0;
    r->n_ready = 0;
    r->failed = false;

    switch (ev->type) {
    case RFT_EV_TICK:
        on_tick(r);
        break;
    case RFT_EV_RECEIVE:
        on_receive(r, &ev->msg);
        break;
    case RFT_EV_PERSISTED:
        if (ev->index > r->persisted)
            r->persisted =
                ev->index < last_index(r) ? ev->index : last_index(r);
        if (r->role == RFT_LEADER)
            advance_commit(r);
        break;
    case RFT_EV_PROPOSE:
        on_propose(r, ev, u);
        break;
    case RFT_EV_READ:
        on_read(r, ev);
        break;
    case RFT_EV_SNAPSHOT:
        on_snapshot_taken(r, ev);
        break;
    }

    u->hard_state = r->hard_state;
    u->term = r->term;
    u->vote = r->unsaved_vote ? 0 : r->vote;
    u->truncate_from = r->truncate_from;
    if (r->append_from != 0) {
        u->first_index = r->append_from;
        u->entries = entry(r, r->append_from);
        u->n_entries = (size_t)(last_index(r) - r->append_from + 1);
    }
    u->msgs = r->msgs;
    u->n_msgs = r->n_msgs;
    if (r->commit > r->applied) {
        u->first_committed = r->applied + 1;
        u->committed = entry(r, r->applied + 1);
        u->n_committed = (size_t)(r->commit - r->applied);
        for (size_t i = 0; i < u->n_committed; i++)
            trace(r, RFT_TRACE_APPLY, u->committed[i].term, 0,
                  u->first_committed + i, rft_entry_hash(&u->committed[i]));
        r->applied = r->commit;
    }
    /* After the committed entries, which the driver applies first. */
    assign_reads(r);
    settle_reads(r);
    u->msgs = r->msgs; /* assign_reads may have grown the array */
    u->n_msgs = r->n_msgs;
    u->reads = r->ready;
    u->n_reads = r->n_ready;
    u->snapshot = r->installed ? &r->snap : NULL;
    return r->failed ? -ENOMEM : 0;
}

/* ---- setup and queries ------------------------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} bugs[] = {
    {"no-persist-vote", RFT_BUG_NO_PERSIST_VOTE},
    {"commit-prior-term", RFT_BUG_COMMIT_PRIOR_TERM},
    {"stale-read", RFT_BUG_STALE_READ},
    {"truncate-on-match", RFT_BUG_TRUNCATE_ON_MATCH},
    {"no-session-dedup", RFT_BUG_NO_SESSION_DEDUP},
};

int rft_bug_parse(const char *name, unsigned *bit)
{
    for (size_t i = 0; i < sizeof(bugs) / sizeof(bugs[0]); i++) {
        if (strcmp(name, bugs[i].name) == 0) {
            *bit = bugs[i].bit;
            return 0;
        }
    }
    return FL_EINPUT;
}

const char *rft_bug_names(void)
{
    return "no-persist-vote, commit-prior-term, stale-read, "
           "truncate-on-match, no-session-dedup";
}

/* Checks a configuration: 1 to RFT_MAX_NODES distinct ids in range. */
static int check_conf(const uint32_t *nodes, size_t n, char *err,
                      size_t errsize)
{
    if (n == 0 || n > RFT_MAX_NODES)
        return fl_input_error(err, errsize, "%zu nodes: expected 1 to %d", n,
                              RFT_MAX_NODES);
    for (size_t i = 0; i < n; i++) {
        if (nodes[i] == 0 || nodes[i] > RFT_MAX_NODES)
            return fl_input_error(err, errsize, "node id %u: expected 1 to %d",
                                  nodes[i], RFT_MAX_NODES);
        for (size_t j = 0; j < i; j++) {
            if (nodes[j] == nodes[i])
                return fl_input_error(err, errsize, "node id %u appears twice",
                                      nodes[i]);
        }
    }
    return 0;
}

static int check_config(const struct rft_config *c, char *err, size_t errsize)
{
    bool self = false;
    int rc = check_conf(c->nodes, c->n_nodes, err, errsize);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < c->n_nodes; i++)
        self |= c->nodes[i] == c->id;
    if (!self)
        return fl_input_error(err, errsize, "node id %u is not among the nodes",
                              c->id);
    if (c->election_ticks < 2 || c->heartbeat_ticks == 0 ||
        c->heartbeat_ticks >= c->election_ticks)
        return fl_input_error(
            err, errsize,
            "election_ticks %u and heartbeat_ticks %u: "
            "expected 0 < heartbeat < election, election >= 2",
            c->election_ticks, c->heartbeat_ticks);
    return 0;
}

/* Takes over what the node persisted: hard state, snapshot, log. */
static int restore(struct rft *r, const struct rft_durable *d, char *err,
                   size_t errsize)
{
    const struct rft_snapshot *s = &d->snapshot;
    int rc;

    r->term = d->term;
    r->vote = d->vote;
    if (s->index > 0) {
        rc = check_conf(s->conf.nodes, s->conf.n_nodes, err, errsize);
        if (rc != 0)
            return rc;
        r->snap = *s;
        r->snap.data = NULL;
        if (s->len > 0) {
            unsigned char *copy = malloc(s->len);
            if (copy == NULL)
                return -ENOMEM;
            memcpy(copy, s->data, s->len);
            r->snap.data = copy;
        }
        r->conf = s->conf;
        r->commit = r->applied = s->index;
    }
    /* Restored entries are not new appends: the boot event covers them. */
    r->cfg.trace = NULL;
    for (size_t i = 0; i < d->n_entries; i++) {
        if (!append_entry(r, &d->entries[i]))
            return -ENOMEM;
    }
    r->persisted = last_index(r);
    return 0;
}

int rft_new(struct rft **out, const struct rft_config *config,
            const struct rft_durable *durable, char *err, size_t errsize)
{
    struct rft *r;
    int rc;

    *out = NULL;
    rc = check_config(config, err, errsize);
    if (rc != 0)
        return rc;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->cfg = *config;
    if (r->cfg.max_entries_per_append == 0)
        r->cfg.max_entries_per_append = 64;
    if (r->cfg.snapshot_chunk == 0)
        r->cfg.snapshot_chunk = 64 * 1024;
    memcpy(r->conf.nodes, config->nodes, sizeof(r->conf.nodes));
    r->conf.n_nodes = config->n_nodes;
    fl_rng_seed_stream(&r->rng, config->seed, config->id);
    if (durable != NULL) {
        rc = restore(r, durable, err, errsize);
        r->cfg.trace = config->trace;
        if (rc != 0) {
            rft_free(r);
            return rc;
        }
    }
    trace(r, RFT_TRACE_BOOT, r->term, r->vote, last_index(r), 0);
    r->role = RFT_FOLLOWER;
    reset_timer(r);
    *out = r;
    return 0;
}

void rft_free(struct rft *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free((void *)r->log[i].data);
    free(r->log);
    free((void *)r->snap.data);
    free((void *)r->incoming.data);
    free(r->msgs);
    free(r->pending);
    free(r->ready);
    free(r);
}

enum rft_role rft_role(const struct rft *r)
{
    return r->role;
}

uint64_t rft_term(const struct rft *r)
{
    return r->term;
}

uint32_t rft_leader(const struct rft *r)
{
    return r->leader;
}

uint64_t rft_commit(const struct rft *r)
{
    return r->commit;
}

uint64_t rft_last_index(const struct rft *r)
{
    return last_index(r);
}

uint64_t rft_applied(const struct rft *r)
{
    return r->applied;
}

const struct rft_snapshot *rft_snapshot_of(const struct rft *r)
{
    return &r->snap;
}

const struct rft_conf *rft_conf_of(const struct rft *r)
{
    return &r->conf;
}

const struct rft_entry *rft_entry_at(const struct rft *r, uint64_t index)
{
    if (index <= r->snap.index || index > last_index(r))
        return NULL;
    return entry(r, index);
}
