/*
 * A deterministic simulation of a Raft cluster: Raft cores (systems/raft)
 * on a virtual clock and a simulated network that delays, drops,
 * duplicates and reorders messages, with partitions and crash-restarts
 * (half of them aimed at the leader), all drawn from one seed. The same
 * options give the same run.
 *
 * Each node's durable state (term, vote, log) is what its updates asked
 * to persist; a crash keeps exactly that and restarts the core from it.
 * The simulation checks the Raft invariants as it goes, from the cores'
 * trace: one leader per term, one vote per node and term across restarts,
 * terms that never go back across restarts, the same entry applied at each
 * index everywhere, and every new leader holding every committed entry.
 * No node may delete an entry committed anywhere, and client reads must
 * see every entry committed before they started. At the end it checks the
 * log matching property between every pair of nodes.
 *
 * TODO: persistence is immediate, so a leader that counts itself before
 * its disk write finished goes unseen here (a unit test covers it). The
 * KV engine on the simulated disk as each node's state machine, client
 * sessions and a client history for the linearizability checker are not
 * written yet.
 */
#ifndef SIM_RAFT_SIM_H
#define SIM_RAFT_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_raft_options {
    unsigned nodes; /* 1 to RFT_MAX_NODES */
    uint64_t seed;
    unsigned ticks;       /* virtual time; a tick stands for 10 ms */
    double drop;          /* probability that a message is lost */
    double duplicate;     /* probability that a message arrives twice */
    unsigned max_delay;   /* ticks; each delivery is delayed 0 to this */
    bool partitions;      /* split the cluster now and then */
    bool crashes;         /* crash and restart nodes now and then */
    unsigned fault_every; /* mean ticks between crashes, and between
                             partitions */
    unsigned max_down;    /* a crashed node restarts 1 to this many ticks
                             later */
    unsigned bugs;        /* RFT_BUG_* planted in every core */
};

struct sim_raft_result {
    bool violation;
    char why[512];      /* the first violation, with the tick it came at */
    uint64_t committed; /* highest commit index any node reached */
    uint64_t leaders;   /* elections won */
    uint64_t crashes;
    uint64_t partitions;
    uint64_t trace_hash; /* of every trace event, to compare runs */
};

/* Sets sensible defaults: 5 nodes, 3000 ticks, every fault on. */
void sim_raft_defaults(struct sim_raft_options *o);

/* Runs one simulation. Returns 0 (the verdict is in result), FL_EINPUT for
 * invalid options with the reason in result->why, or -ENOMEM. */
int sim_raft_run(const struct sim_raft_options *o,
                 struct sim_raft_result *result);

#endif
