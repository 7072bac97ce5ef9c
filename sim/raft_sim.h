/*
 * A deterministic simulation of a Raft KV cluster. Each node is a Raft core
 * (systems/raft) applying committed entries to its own KV engine on its
 * own simulated disk. The nodes run on a virtual clock and a simulated
 * network that delays, drops, duplicates and reorders messages, with
 * partitions and crash-restarts (half of them aimed at the leader), all
 * drawn from one seed. Simulated clients put, append and read keys through the cluster,
 * retrying with client sessions, and the run records their operations as a
 * history. The same options give the same run, byte for byte.
 *
 * A node's Raft state (term, vote, log, snapshot) goes through the Raft
 * storage on its simulated disk and is synced before the messages that
 * depend on it leave, so it survives a crash whole. Its state machine
 * lives on the same disk but syncs now and then: a crash loses the
 * engine's unsynced writes, or tears the last one, and the restarted node
 * recovers both from the disk and replays the committed log into the
 * engine. Nodes compact their logs into
 * snapshots and bring lagging followers up to date with InstallSnapshot.
 *
 * The simulation checks the Raft invariants as it goes, from the cores'
 * trace: one leader per term, one vote per node and term across restarts,
 * terms that never go back across restarts, the same entry applied at each
 * index everywhere, every new leader holding every committed entry, no
 * deletion of an entry committed anywhere, installed snapshots that end on
 * a committed entry, client reads that see every entry committed before
 * they started, and one entry per index and term across all appends. At
 * the end it checks log matching between every pair of nodes and runs the
 * history through the linearizability checker.
 */
#ifndef SIM_RAFT_SIM_H
#define SIM_RAFT_SIM_H

#include "buf.h"

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
    bool torn;            /* half the crashes tear the last disk write */
    unsigned fault_every; /* mean ticks between crashes, and between
                             partitions */
    unsigned max_down;    /* a crashed node restarts 1 to this many ticks
                             later */
    unsigned bugs;        /* RFT_BUG_* planted in every core and machine */
    unsigned clients;     /* concurrent client processes, 0 to 64 */
    unsigned snapshot_every; /* applied entries between snapshots; 0: none */
    bool keep_trace;         /* fill result->trace */
    bool check_history;      /* run the linearizability checker at the end */
};

struct sim_raft_result {
    bool violation;
    char why[1024];     /* the first violation, with the tick it came at */
    uint64_t committed; /* highest commit index any node reached */
    uint64_t leaders;   /* elections won */
    uint64_t crashes;
    uint64_t partitions;
    uint64_t snapshots; /* taken, and installed from a leader */
    uint64_t installs;
    uint64_t ops_ok; /* client operations by outcome */
    uint64_t ops_fail;
    uint64_t ops_info;
    bool unknown;        /* the checker gave up; the reason is in why */
    uint64_t trace_hash; /* of every trace event, to compare runs */
    /* history.jsonl as the clients recorded it, and with keep_trace the
     * trace, one JSON object a line. Free with sim_raft_result_free. */
    struct fl_buf history;
    struct fl_buf trace;
};

/* Sets sensible defaults: 5 nodes, 3000 ticks, every fault on, 5 clients,
 * a snapshot every 50 entries, the history checked. */
void sim_raft_defaults(struct sim_raft_options *o);

/* Runs one simulation. Returns 0 (the verdict is in result), FL_EINPUT for
 * invalid options with the reason in result->why, or -ENOMEM. Free the
 * result with sim_raft_result_free whatever it returns. */
int sim_raft_run(const struct sim_raft_options *o,
                 struct sim_raft_result *result);

void sim_raft_result_free(struct sim_raft_result *result);

#endif
