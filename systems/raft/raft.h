/*
 * The Raft core: the consensus protocol of Ongaro and Ousterhout, "In
 * Search of an Understandable Consensus Algorithm" (USENIX ATC 2014), as a
 * pure state machine. It does no I/O, reads no clock, starts no thread and
 * uses no global random generator: a driver feeds it events through
 * rft_step and carries out the update it returns. The same core runs in the
 * deterministic simulator and in the real daemon.
 *
 * The contract with the driver, for every update:
 *   1. Persist the hard state (term and vote, as one record) when
 *      hard_state is set, truncate the log from truncate_from when it is
 *      not 0, and append the entries, in that order.
 *   2. Only then send the messages. A vote or a successful append reply
 *      may depend on what step 1 wrote ("persist before send").
 *   3. Apply the committed entries in order.
 *   4. Report the log index that reached the disk with RFT_EV_PERSISTED;
 *      a leader counts itself toward a commit only up to that index.
 * Pointers in an update (entries, messages, committed entries) stay valid
 * until the next rft_step or rft_free.
 *
 * This part of the core covers elections with the election restriction
 * (paper section 5.4.1), log replication with conflict truncation (5.3),
 * and the commit rule that counts replicas only for entries of the current
 * term (5.4.2), with a no-op entry at the start of each term (section 8).
 * From Ongaro's thesis ("Consensus: Bridging Theory and Practice", 2014)
 * it adds PreVote (section 9.6), so a node cut off from the cluster does
 * not raise its term, leader stickiness (4.2.3): a node that heard from a
 * leader within the election timeout ignores vote requests, and
 * CheckQuorum (6.2): a leader that has not heard from a majority for an
 * election timeout steps down.
 * Reads are linearizable through ReadIndex (thesis section 6.4): the
 * leader serves a read only after it committed an entry of its own term,
 * at its commit index, once a majority replied to a heartbeat round sent
 * after the read arrived; there are no lease reads.
 * Snapshots (paper section 7): the driver saves its state machine at an
 * applied index and hands the bytes to the core (RFT_EV_SNAPSHOT), which
 * drops the log up to that index and keeps the bytes. A leader uses them
 * to bring a follower that lags behind its log up to date, streaming them
 * in chunks (InstallSnapshot). The follower assembles the chunks in order.
 * Once the last one arrives, it discards the log the snapshot replaces,
 * keeping the entries after it when its log agrees at the snapshot's
 * index, and hands the snapshot to its driver to install.
 * The cluster configuration (the voters) is part of each snapshot and of
 * the durable state given to rft_new, so membership changes can later
 * move it through the log.
 * Client sessions (thesis section 6.3) belong to the state machine, whose
 * table must change in the same atomic step as the command it replies
 * to. session.h contains the command envelope and the rule.
 * The core reports what it does through an optional tracer (rft_trace).
 */
#ifndef RFT_RAFT_H
#define RFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RFT_MAX_NODES 9

/* Messages with a higher term are dropped: a forged term near 2^64 would
 * make term + 1 wrap. */
#define RFT_MAX_TERM (UINT64_C(1) << 62)

enum rft_role {
    RFT_FOLLOWER,
    RFT_PRE_CANDIDATE, /* asking for pre-votes; term and vote unchanged */
    RFT_CANDIDATE,
    RFT_LEADER,
};

enum rft_entry_type {
    RFT_ENTRY_NOOP = 1,    /* appended by a new leader (section 8) */
    RFT_ENTRY_COMMAND = 2, /* a client command for the state machine */
};

/* The voting members of the cluster. */
struct rft_conf {
    uint32_t nodes[RFT_MAX_NODES];
    size_t n_nodes;
};

/* A state machine saved at index, the last entry it covers, of term term,
 * with the configuration in force at that index. */
struct rft_snapshot {
    uint64_t index; /* 0: no snapshot */
    uint64_t term;
    struct rft_conf conf;
    const unsigned char *data;
    size_t len;
};

struct rft_entry {
    uint64_t term;
    enum rft_entry_type type;
    const unsigned char *data;
    size_t len;
};

enum rft_msg_type {
    RFT_MSG_VOTE = 1,     /* RequestVote */
    RFT_MSG_VOTE_REPLY,   /* its answer */
    RFT_MSG_APPEND,       /* AppendEntries, also the heartbeat */
    RFT_MSG_APPEND_REPLY, /* its answer */
    RFT_MSG_PRE_VOTE,     /* "would you vote for me in term T?" */
    RFT_MSG_PRE_VOTE_REPLY,
    RFT_MSG_SNAPSHOT,       /* InstallSnapshot: one chunk */
    RFT_MSG_SNAPSHOT_REPLY, /* its answer */
};

struct rft_msg {
    enum rft_msg_type type;
    uint32_t from;
    uint32_t to;
    uint64_t term;
    /* RFT_MSG_VOTE, RFT_MSG_PRE_VOTE: the candidate's last log entry. A
     * pre-vote's term is the term the candidate would run in, and a
     * granted pre-vote reply carries that same term. */
    uint64_t last_index;
    uint64_t last_term;
    /* RFT_MSG_VOTE_REPLY, RFT_MSG_PRE_VOTE_REPLY */
    bool granted;
    /* RFT_MSG_APPEND: the entry before entries, and the leader's commit. */
    uint64_t prev_index;
    uint64_t prev_term;
    uint64_t commit;
    const struct rft_entry *entries;
    size_t n_entries;
    /* RFT_MSG_APPEND_REPLY: on success the last index known to match the
     * leader's log; on failure the follower's last index, a hint for the
     * leader's next try. */
    bool success;
    uint64_t match;
    /* RFT_MSG_APPEND, RFT_MSG_SNAPSHOT: the leader's heartbeat round,
     * echoed in the reply, so the leader can tell which of its rounds a
     * majority replied to. */
    uint64_t round;
    /* RFT_MSG_SNAPSHOT: the snapshot's index, term and configuration, and
     * len bytes of it from offset on; done marks the last chunk.
     * RFT_MSG_SNAPSHOT_REPLY: snapshot.index names the snapshot, offset is
     * how many of its bytes the follower has received in order, and done means
     * it installed the snapshot or already had every entry it covers; then
     * success is set and match is snapshot.index. */
    struct rft_snapshot snapshot;
    uint64_t offset;
    bool done;
};

enum rft_event_type {
    RFT_EV_TICK = 1,  /* one unit of the driver's clock */
    RFT_EV_RECEIVE,   /* msg arrived */
    RFT_EV_PERSISTED, /* the log is on disk up to index */
    RFT_EV_PROPOSE,   /* a client command, data and len */
    RFT_EV_READ,      /* a linearizable read, named by read_id */
    /* The driver saved its state machine, as applied up to index, as data
     * and len. The index must be applied and above the current snapshot.
     * The core keeps a copy and drops the log up to index, and the driver
     * then deletes those entries from its own log storage. */
    RFT_EV_SNAPSHOT,
};

struct rft_event {
    enum rft_event_type type;
    struct rft_msg msg;
    uint64_t index;
    const void *data;
    size_t len;
    uint64_t read_id; /* RFT_EV_READ: the driver's name for the read */
};

/* A read that may be served now, from a state machine that has applied at
 * least index, or, with index 0, one this node cannot serve because it is
 * not the leader (or stopped being it): the client must go elsewhere. */
struct rft_read {
    uint64_t read_id;
    uint64_t index;
};

struct rft_update {
    bool hard_state; /* term and vote changed: persist them as one record */
    uint64_t term;
    uint32_t vote; /* 0 for none */

    uint64_t truncate_from; /* delete entries from here on first; 0: none */
    uint64_t first_index;   /* index of entries[0] */
    const struct rft_entry *entries;
    size_t n_entries;

    const struct rft_msg *msgs;
    size_t n_msgs;

    uint64_t first_committed; /* index of committed[0] */
    const struct rft_entry *committed;
    size_t n_committed;

    /* RFT_EV_PROPOSE: the index the command got, or 0 when this node is not
     * the leader and the client must go elsewhere. */
    uint64_t proposed_index;

    /* Reads settled by this step, after the committed entries above are
     * applied. */
    const struct rft_read *reads;
    size_t n_reads;

    /* A snapshot from the leader, complete: persist it and load it into
     * the state machine in step 1 of the contract, after the hard state
     * and before the truncation. Log entries up to snapshot->index are
     * gone; truncate_from is snapshot->index + 1 when the entries after it
     * are gone too. The committed entries that follow come after it. */
    const struct rft_snapshot *snapshot;
};

/* Events the core reports as they happen, so a checker can audit a run
 * (one leader per term, one vote per node and term across restarts, the
 * same command applied at each index everywhere). */
enum rft_trace_type {
    RFT_TRACE_BOOT = 1, /* term, vote, index: the last log index */
    RFT_TRACE_TERM,     /* term entered */
    RFT_TRACE_VOTE,     /* vote given in term */
    RFT_TRACE_LEADER,   /* became leader of term */
    RFT_TRACE_APPEND,   /* index, term and hash of an entry appended */
    RFT_TRACE_TRUNCATE, /* entries from index on are about to be deleted */
    RFT_TRACE_COMMIT,   /* commit index moved to index */
    RFT_TRACE_APPLY,    /* index, term and hash handed to the driver */
    /* index and term of a snapshot taken (vote 0) or installed from the
     * leader (vote 1); hash is the CRC32C of its data. */
    RFT_TRACE_SNAPSHOT,
};

struct rft_trace {
    enum rft_trace_type type;
    uint32_t node;
    uint64_t term;
    uint32_t vote;
    uint64_t index;
    uint32_t hash;   /* CRC32C of the entry's type and data */
    uint32_t voters; /* leader: bit i set for each node i whose vote won */
};

typedef void (*rft_tracer)(void *arg, const struct rft_trace *event);

/* Planted bugs, off by default, that the simulator and campaigns must
 * find. Each changes one rule. */
#define RFT_BUG_NO_PERSIST_VOTE   (1u << 0) /* a vote is sent unpersisted */
#define RFT_BUG_COMMIT_PRIOR_TERM (1u << 1) /* Figure 8: count old entries */
#define RFT_BUG_STALE_READ        (1u << 2) /* reads skip ReadIndex */
#define RFT_BUG_TRUNCATE_ON_MATCH (1u << 3) /* replace matching entries */
#define RFT_BUG_NO_SESSION_DEDUP  (1u << 4) /* apply retried commands again */

/* Parses a planted bug name: no-persist-vote, commit-prior-term,
 * stale-read, truncate-on-match or no-session-dedup; returns 0 and its
 * RFT_BUG_* bit, or FL_EINPUT. */
int rft_bug_parse(const char *name, unsigned *bit);

/* Returns a comma-separated list of the planted bug names, for help. */
const char *rft_bug_names(void);

struct rft_config {
    uint32_t id; /* this node, 1..RFT_MAX_NODES */
    /* Every voter, this node included: the configuration a new cluster
     * starts with. A durable snapshot's configuration replaces it. */
    uint32_t nodes[RFT_MAX_NODES];
    size_t n_nodes;
    uint64_t seed;                   /* for randomized election timeouts */
    unsigned election_ticks;         /* timeouts are drawn from [e, 2e) */
    unsigned heartbeat_ticks;        /* below election_ticks */
    unsigned max_entries_per_append; /* 0: 64 */
    size_t snapshot_chunk;           /* bytes per InstallSnapshot; 0: 64 KiB */
    unsigned bugs;                   /* RFT_BUG_*, 0 for a correct core */
    rft_tracer trace;                /* NULL: no trace */
    void *trace_arg;
};

/* The hard state, snapshot and log a node had on disk when it stopped. */
struct rft_durable {
    uint64_t term;
    uint32_t vote;
    struct rft_snapshot snapshot; /* index 0: none */
    /* Indexes snapshot.index + 1 to snapshot.index + n_entries. */
    const struct rft_entry *entries;
    size_t n_entries;
};

struct rft;

/*
 * Creates a node from its configuration and what it persisted (NULL for a
 * new node). Copies everything it keeps. Returns 0, FL_EINPUT for an invalid
 * configuration with the reason in err, or -ENOMEM.
 */
int rft_new(struct rft **out, const struct rft_config *config,
            const struct rft_durable *durable, char *err, size_t errsize);

void rft_free(struct rft *r);

/* Handles one event and fills update with what the driver must do (see the
 * file comment). Returns 0 or -ENOMEM. */
int rft_step(struct rft *r, const struct rft_event *event,
             struct rft_update *update);

enum rft_role rft_role(const struct rft *r);
uint64_t rft_term(const struct rft *r);
uint32_t rft_leader(const struct rft *r); /* 0 when unknown */
uint64_t rft_commit(const struct rft *r);
uint64_t rft_last_index(const struct rft *r);
uint64_t rft_applied(const struct rft *r);

/* Returns the node's current snapshot (index 0 when it has none). */
const struct rft_snapshot *rft_snapshot_of(const struct rft *r);

/* Returns the configuration in force. */
const struct rft_conf *rft_conf_of(const struct rft *r);

/* Returns the CRC32C of an entry's type and data, as the trace reports. */
uint32_t rft_entry_hash(const struct rft_entry *e);

/* Returns the entry at index, or NULL past the log's end or at or below
 * the snapshot's index. */
const struct rft_entry *rft_entry_at(const struct rft *r, uint64_t index);

#endif
