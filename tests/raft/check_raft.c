/*
 * Tests for the Raft core (systems/raft). Single nodes driven with
 * hand-made messages test one rule of the Raft paper (Ongaro and
 * Ousterhout, USENIX ATC 2014) each. A small cluster in memory checks
 * election safety and state machine safety while it elects a leader and
 * replicates commands.
 */
#include "raft.h"
#include "session.h"

#include "rng.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

static struct rft_config config(uint32_t id, size_t n)
{
    struct rft_config c = {
        .id = id,
        .n_nodes = n,
        .seed = 42,
        .election_ticks = 10,
        .heartbeat_ticks = 3,
    };

    for (size_t i = 0; i < n; i++)
        c.nodes[i] = (uint32_t)i + 1;
    return c;
}

static unsigned planted; /* RFT_BUG_* for the nodes node_with_log makes */

static struct rft *node_with_log(uint32_t id, size_t n, uint64_t term,
                                 uint32_t vote, const uint64_t *terms,
                                 size_t n_entries)
{
    struct rft_entry entries[16];
    struct rft_durable d = {
        .term = term, .vote = vote, .entries = entries, .n_entries = n_entries};
    struct rft_config c = config(id, n);
    struct rft *r = NULL;
    char err[256];

    ck_assert_uint_le(n_entries, 16);
    c.bugs = planted;
    for (size_t i = 0; i < n_entries; i++)
        entries[i] = (struct rft_entry){.term = terms[i],
                                        .type = RFT_ENTRY_COMMAND,
                                        .data = (const unsigned char *)"x",
                                        .len = 1};
    ck_assert_int_eq(rft_new(&r, &c, &d, err, sizeof(err)), 0);
    return r;
}

static void receive(struct rft *r, const struct rft_msg *m,
                    struct rft_update *u)
{
    struct rft_event ev = {.type = RFT_EV_RECEIVE, .msg = *m};

    ck_assert_int_eq(rft_step(r, &ev, u), 0);
}

static const struct rft_msg *only_msg(const struct rft_update *u,
                                      enum rft_msg_type type)
{
    ck_assert_uint_eq(u->n_msgs, 1);
    ck_assert_int_eq(u->msgs[0].type, type);
    return &u->msgs[0];
}

/* Ticks r until it requests pre-votes. */
static void tick_until_pre_candidate(struct rft *r, struct rft_update *u)
{
    struct rft_event tick = {.type = RFT_EV_TICK};

    for (int i = 0; i < 100 && rft_role(r) != RFT_PRE_CANDIDATE; i++)
        ck_assert_int_eq(rft_step(r, &tick, u), 0);
    ck_assert_int_eq(rft_role(r), RFT_PRE_CANDIDATE);
}

/* Ticks r until it requests pre-votes, then grants them from nodes 2, 3,
 * ... until it starts a real election; u is that step's update. */
static void tick_until_candidate(struct rft *r, struct rft_update *u)
{
    tick_until_pre_candidate(r, u);
    for (uint32_t from = 2; from <= RFT_MAX_NODES; from++) {
        struct rft_event ev = {.type = RFT_EV_RECEIVE};
        ev.msg = (struct rft_msg){.type = RFT_MSG_PRE_VOTE_REPLY,
                                  .from = from,
                                  .to = 1,
                                  .term = rft_term(r) + 1,
                                  .granted = true};
        ck_assert_int_eq(rft_step(r, &ev, u), 0);
        if (rft_role(r) == RFT_CANDIDATE)
            return;
    }
    ck_abort_msg("no election after pre-votes from every node");
}

static struct rft_msg vote_request(uint32_t from, uint32_t to, uint64_t term,
                                   uint64_t last_index, uint64_t last_term)
{
    return (struct rft_msg){.type = RFT_MSG_VOTE,
                            .from = from,
                            .to = to,
                            .term = term,
                            .last_index = last_index,
                            .last_term = last_term};
}

/* ---- elections --------------------------------------------------------- */

/* A candidate whose log is behind gets no vote (section 5.4.1). */
START_TEST(test_vote_refused_stale_log)
{
    static const uint64_t terms[] = {1, 1, 2};
    struct rft_update u;
    struct {
        uint64_t last_index, last_term;
        bool granted;
    } cases[] = {
        {1, 1, false}, /* shorter, older last term */
        {5, 1, false}, /* longer, but older last term */
        {2, 2, false}, /* same last term, shorter */
        {3, 2, true},  /* identical */
        {1, 3, true},  /* shorter, newer last term */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rft *r = node_with_log(1, 3, 2, 0, terms, 3);
        struct rft_msg m =
            vote_request(2, 1, 3, cases[i].last_index, cases[i].last_term);
        receive(r, &m, &u);
        const struct rft_msg *reply = only_msg(&u, RFT_MSG_VOTE_REPLY);
        ck_assert_msg(
            reply->granted == cases[i].granted,
            "case %zu: candidate log (%" PRIu64 ", %" PRIu64 ") granted=%d", i,
            cases[i].last_index, cases[i].last_term, reply->granted);
        /* The higher term is adopted either way, and persisted with the
         * vote before the reply goes out. */
        ck_assert(u.hard_state);
        ck_assert_uint_eq(u.term, 3);
        ck_assert_uint_eq(u.vote, cases[i].granted ? 2 : 0);
        rft_free(r);
    }
}
END_TEST

/* One vote per term: a second candidate in the same term is refused, and
 * the same candidate asking again gets the vote again. */
START_TEST(test_vote_refused_second_candidate)
{
    struct rft *r = node_with_log(1, 3, 4, 0, NULL, 0);
    struct rft_update u;
    struct rft_msg m = vote_request(2, 1, 5, 0, 0);

    receive(r, &m, &u);
    ck_assert(only_msg(&u, RFT_MSG_VOTE_REPLY)->granted);
    ck_assert(u.hard_state);

    m = vote_request(3, 1, 5, 10, 4);
    receive(r, &m, &u);
    ck_assert(!only_msg(&u, RFT_MSG_VOTE_REPLY)->granted);
    ck_assert(!u.hard_state);

    m = vote_request(2, 1, 5, 0, 0);
    receive(r, &m, &u);
    ck_assert(only_msg(&u, RFT_MSG_VOTE_REPLY)->granted);
    ck_assert(!u.hard_state); /* nothing new to persist */
    rft_free(r);
}
END_TEST

/* A vote kept across a restart still binds the node in that term. */
START_TEST(test_vote_survives_restart)
{
    struct rft *r = node_with_log(1, 3, 5, 2, NULL, 0);
    struct rft_update u;
    struct rft_msg m = vote_request(3, 1, 5, 0, 0);

    receive(r, &m, &u);
    ck_assert(!only_msg(&u, RFT_MSG_VOTE_REPLY)->granted);
    rft_free(r);
}
END_TEST

/* A candidate persists its new term and self-vote with its requests, and a
 * reply from an older term does not count. */
START_TEST(test_candidate_counts_current_votes)
{
    struct rft *r = node_with_log(1, 5, 7, 0, NULL, 0);
    struct rft_update u;

    tick_until_candidate(r, &u);
    ck_assert(u.hard_state);
    ck_assert_uint_eq(u.term, 8);
    ck_assert_uint_eq(u.vote, 1);
    ck_assert_uint_eq(u.n_msgs, 4);

    struct rft_msg stale = {.type = RFT_MSG_VOTE_REPLY,
                            .from = 2,
                            .to = 1,
                            .term = 7,
                            .granted = true};
    struct rft_msg yes = {.type = RFT_MSG_VOTE_REPLY,
                          .from = 2,
                          .to = 1,
                          .term = 8,
                          .granted = true};
    receive(r, &stale, &u);
    stale.from = 3;
    receive(r, &stale, &u);
    ck_assert_int_eq(rft_role(r), RFT_CANDIDATE);
    /* The same voter twice is one vote. */
    receive(r, &yes, &u);
    receive(r, &yes, &u);
    ck_assert_int_eq(rft_role(r), RFT_CANDIDATE);
    yes.from = 4;
    receive(r, &yes, &u);
    ck_assert_int_eq(rft_role(r), RFT_LEADER);
    /* The new leader appends a no-op of its term and sends it. */
    ck_assert_uint_eq(u.n_entries, 1);
    ck_assert_int_eq(u.entries[0].type, RFT_ENTRY_NOOP);
    ck_assert_uint_eq(u.entries[0].term, 8);
    ck_assert_uint_eq(u.n_msgs, 4);
    rft_free(r);
}
END_TEST

/* Any message with a higher term makes a leader step down and forget its
 * vote, which belonged to the old term. */
START_TEST(test_step_down_on_higher_term)
{
    struct rft *r = node_with_log(1, 3, 1, 0, NULL, 0);
    struct rft_update u;

    tick_until_candidate(r, &u);
    struct rft_msg yes = {.type = RFT_MSG_VOTE_REPLY,
                          .from = 2,
                          .to = 1,
                          .term = 2,
                          .granted = true};
    receive(r, &yes, &u);
    ck_assert_int_eq(rft_role(r), RFT_LEADER);

    struct rft_msg reply = {
        .type = RFT_MSG_APPEND_REPLY, .from = 3, .to = 1, .term = 9};
    receive(r, &reply, &u);
    ck_assert_int_eq(rft_role(r), RFT_FOLLOWER);
    ck_assert(u.hard_state);
    ck_assert_uint_eq(u.term, 9);
    ck_assert_uint_eq(u.vote, 0);
    rft_free(r);
}
END_TEST

/* ---- PreVote, stickiness and CheckQuorum ------------------------------- */

/* Granting a pre-vote changes neither term nor vote, so the node can still
 * vote for anyone in that term. */
START_TEST(test_pre_vote_changes_nothing)
{
    static const uint64_t terms[] = {1, 2};
    struct rft *r = node_with_log(1, 3, 2, 0, terms, 2);
    struct rft_update u;
    struct rft_msg m = vote_request(2, 1, 3, 2, 2);

    m.type = RFT_MSG_PRE_VOTE;
    receive(r, &m, &u);
    const struct rft_msg *reply = only_msg(&u, RFT_MSG_PRE_VOTE_REPLY);
    ck_assert(reply->granted);
    ck_assert_uint_eq(reply->term, 3);
    ck_assert(!u.hard_state);
    ck_assert_uint_eq(rft_term(r), 2);

    /* A stale log gets no pre-vote either, and the reply names the term. */
    m = vote_request(3, 1, 3, 1, 1);
    m.type = RFT_MSG_PRE_VOTE;
    receive(r, &m, &u);
    reply = only_msg(&u, RFT_MSG_PRE_VOTE_REPLY);
    ck_assert(!reply->granted);
    ck_assert_uint_eq(reply->term, 2);
    ck_assert(!u.hard_state);

    /* The real vote of term 3 is still free. */
    m = vote_request(3, 1, 3, 2, 2);
    receive(r, &m, &u);
    ck_assert(only_msg(&u, RFT_MSG_VOTE_REPLY)->granted);
    ck_assert_uint_eq(u.vote, 3);
    rft_free(r);
}
END_TEST

/* A node cut off from the others keeps asking for pre-votes and never
 * raises its term, so it cannot disrupt the cluster when it returns. */
START_TEST(test_isolated_node_keeps_term)
{
    struct rft *r = node_with_log(1, 3, 5, 0, NULL, 0);
    struct rft_event tick = {.type = RFT_EV_TICK};
    struct rft_update u;
    size_t pre_votes = 0;

    for (int i = 0; i < 500; i++) {
        ck_assert_int_eq(rft_step(r, &tick, &u), 0);
        ck_assert(!u.hard_state);
        for (size_t k = 0; k < u.n_msgs; k++) {
            ck_assert_int_eq(u.msgs[k].type, RFT_MSG_PRE_VOTE);
            ck_assert_uint_eq(u.msgs[k].term, 6);
            pre_votes++;
        }
    }
    ck_assert_uint_eq(rft_term(r), 5);
    ck_assert_uint_ge(pre_votes, 10);
    rft_free(r);
}
END_TEST

/* A follower that just heard from its leader ignores a vote request of a
 * higher term: no reply, no new term. */
START_TEST(test_follower_with_leader_ignores_votes)
{
    struct rft *r = node_with_log(1, 3, 2, 0, NULL, 0);
    struct rft_update u;
    struct rft_msg heartbeat = {
        .type = RFT_MSG_APPEND, .from = 2, .to = 1, .term = 2};

    receive(r, &heartbeat, &u);
    ck_assert_uint_eq(rft_leader(r), 2);
    struct rft_msg m = vote_request(3, 1, 3, 10, 2);
    receive(r, &m, &u);
    ck_assert_uint_eq(u.n_msgs, 0);
    ck_assert_uint_eq(rft_term(r), 2);
    m.type = RFT_MSG_PRE_VOTE;
    receive(r, &m, &u);
    ck_assert_uint_eq(u.n_msgs, 0);

    /* After an election timeout without the leader, it replies again. */
    struct rft_event tick = {.type = RFT_EV_TICK};
    for (unsigned i = 0; i < 10; i++)
        ck_assert_int_eq(rft_step(r, &tick, &u), 0);
    m.type = RFT_MSG_VOTE;
    receive(r, &m, &u);
    ck_assert(only_msg(&u, RFT_MSG_VOTE_REPLY)->granted);
    ck_assert_uint_eq(rft_term(r), 3);
    rft_free(r);
}
END_TEST

/* Makes node 1 of three the leader of term 1. */
static struct rft *leader_of_three(struct rft_update *u)
{
    struct rft *r = node_with_log(1, 3, 0, 0, NULL, 0);

    tick_until_candidate(r, u);
    struct rft_msg yes = {.type = RFT_MSG_VOTE_REPLY,
                          .from = 2,
                          .to = 1,
                          .term = 1,
                          .granted = true};
    receive(r, &yes, u);
    ck_assert_int_eq(rft_role(r), RFT_LEADER);
    return r;
}

/* A leader that hears from no majority for an election timeout steps down;
 * one that hears from one follower of two stays. */
START_TEST(test_check_quorum_steps_down)
{
    struct rft_update u;
    struct rft_event tick = {.type = RFT_EV_TICK};
    struct rft *r = leader_of_three(&u);

    for (unsigned i = 0; i < 30 && rft_role(r) == RFT_LEADER; i++) {
        struct rft_msg ok = {.type = RFT_MSG_APPEND_REPLY,
                             .from = 2,
                             .to = 1,
                             .term = 1,
                             .success = true,
                             .match = 1};
        ck_assert_int_eq(rft_step(r, &tick, &u), 0);
        receive(r, &ok, &u);
    }
    ck_assert_int_eq(rft_role(r), RFT_LEADER);

    for (unsigned i = 0; i < 30 && rft_role(r) == RFT_LEADER; i++)
        ck_assert_int_eq(rft_step(r, &tick, &u), 0);
    ck_assert_int_eq(rft_role(r), RFT_FOLLOWER);
    ck_assert_uint_eq(rft_leader(r), 0);
    ck_assert_uint_eq(rft_term(r), 1); /* stepping down keeps the term */
    rft_free(r);
}
END_TEST

/* ---- ReadIndex --------------------------------------------------------- */

static void read_event(struct rft *r, uint64_t read_id, struct rft_update *u)
{
    struct rft_event ev = {.type = RFT_EV_READ, .read_id = read_id};

    ck_assert_int_eq(rft_step(r, &ev, u), 0);
}

/* A new leader serves no read before it committed an entry of its own
 * term, and then only after a majority replied to a heartbeat round sent
 * after the read arrived. */
START_TEST(test_read_waits_for_current_term_commit)
{
    struct rft_update u;
    struct rft *r = leader_of_three(&u);

    read_event(r, 7, &u);
    ck_assert_uint_eq(u.n_reads, 0);
    ck_assert_uint_eq(u.n_msgs, 0); /* nothing to confirm yet */

    /* The no-op commits: the read gets index 1 and a heartbeat round. */
    struct rft_event persisted = {.type = RFT_EV_PERSISTED, .index = 1};
    ck_assert_int_eq(rft_step(r, &persisted, &u), 0);
    struct rft_msg ok = {.type = RFT_MSG_APPEND_REPLY,
                         .from = 2,
                         .to = 1,
                         .term = 1,
                         .success = true,
                         .match = 1};
    receive(r, &ok, &u);
    ck_assert_uint_eq(rft_commit(r), 1);
    ck_assert_uint_eq(u.n_reads, 0);
    ck_assert_uint_eq(u.n_msgs, 2);
    uint64_t round = u.msgs[0].round;
    ck_assert_uint_gt(round, 0);

    /* A reply to an older round does not confirm the read. */
    receive(r, &ok, &u);
    ck_assert_uint_eq(u.n_reads, 0);

    ok.round = round;
    receive(r, &ok, &u);
    ck_assert_uint_eq(u.n_reads, 1);
    ck_assert_uint_eq(u.reads[0].read_id, 7);
    ck_assert_uint_eq(u.reads[0].index, 1);
    rft_free(r);
}
END_TEST

/* Only the leader serves reads: a follower turns them away at once, and a
 * leader that steps down turns away those it held. */
START_TEST(test_read_rejected_without_leadership)
{
    struct rft_update u;
    struct rft *f = node_with_log(1, 3, 1, 0, NULL, 0);

    read_event(f, 3, &u);
    ck_assert_uint_eq(u.n_reads, 1);
    ck_assert_uint_eq(u.reads[0].read_id, 3);
    ck_assert_uint_eq(u.reads[0].index, 0);
    rft_free(f);

    struct rft *r = leader_of_three(&u);
    read_event(r, 4, &u);
    ck_assert_uint_eq(u.n_reads, 0);
    struct rft_msg newer = {
        .type = RFT_MSG_APPEND, .from = 3, .to = 1, .term = 2};
    receive(r, &newer, &u);
    ck_assert_int_eq(rft_role(r), RFT_FOLLOWER);
    ck_assert_uint_eq(u.n_reads, 1);
    ck_assert_uint_eq(u.reads[0].read_id, 4);
    ck_assert_uint_eq(u.reads[0].index, 0);
    rft_free(r);
}
END_TEST

/* ---- replication ------------------------------------------------------- */

static struct rft_msg append_msg(uint64_t term, uint64_t prev_index,
                                 uint64_t prev_term,
                                 const struct rft_entry *entries, size_t n,
                                 uint64_t commit)
{
    return (struct rft_msg){.type = RFT_MSG_APPEND,
                            .from = 2,
                            .to = 1,
                            .term = term,
                            .prev_index = prev_index,
                            .prev_term = prev_term,
                            .entries = entries,
                            .n_entries = n,
                            .commit = commit};
}

/* A delayed AppendEntries whose entries the follower already has changes
 * nothing: no truncation, no append, and the later entries stay. */
START_TEST(test_append_matching_suffix_changes_nothing)
{
    static const uint64_t terms[] = {1, 1, 1};
    struct rft *r = node_with_log(1, 3, 1, 0, terms, 3);
    struct rft_entry old[2] = {
        {.term = 1, .type = RFT_ENTRY_COMMAND},
        {.term = 1, .type = RFT_ENTRY_COMMAND},
    };
    struct rft_update u;
    struct rft_msg m = append_msg(1, 0, 0, old, 2, 0);

    receive(r, &m, &u);
    ck_assert_uint_eq(u.truncate_from, 0);
    ck_assert_uint_eq(u.n_entries, 0);
    ck_assert_uint_eq(rft_last_index(r), 3);
    const struct rft_msg *reply = only_msg(&u, RFT_MSG_APPEND_REPLY);
    ck_assert(reply->success);
    ck_assert_uint_eq(reply->match, 2);
    rft_free(r);
}
END_TEST

/* An entry that conflicts (same index, other term) is deleted with all
 * that follow it, and the leader's entries take their place. */
START_TEST(test_append_conflict_truncates)
{
    static const uint64_t terms[] = {1, 1, 2, 2};
    struct rft *r = node_with_log(1, 3, 2, 0, terms, 4);
    struct rft_entry leaders[2] = {
        {.term = 1, .type = RFT_ENTRY_COMMAND},
        {.term = 3, .type = RFT_ENTRY_COMMAND},
    };
    struct rft_update u;
    struct rft_msg m = append_msg(3, 1, 1, leaders, 2, 3);

    receive(r, &m, &u);
    ck_assert_uint_eq(u.truncate_from, 3);
    ck_assert_uint_eq(u.first_index, 3);
    ck_assert_uint_eq(u.n_entries, 1);
    ck_assert_uint_eq(u.entries[0].term, 3);
    ck_assert_uint_eq(rft_last_index(r), 3);
    /* The commit index is bounded by what the message verified. */
    ck_assert_uint_eq(rft_commit(r), 3);
    ck_assert_uint_eq(u.n_committed, 3);
    ck_assert(only_msg(&u, RFT_MSG_APPEND_REPLY)->success);
    rft_free(r);
}
END_TEST

/* Without a matching entry before the new ones the follower rejects and
 * hints at its last index; the commit index does not move. */
START_TEST(test_append_gap_rejected)
{
    static const uint64_t terms[] = {1};
    struct rft *r = node_with_log(1, 3, 1, 0, terms, 1);
    struct rft_entry e = {.term = 2, .type = RFT_ENTRY_COMMAND};
    struct rft_update u;
    struct rft_msg m = append_msg(2, 5, 2, &e, 1, 6);

    receive(r, &m, &u);
    const struct rft_msg *reply = only_msg(&u, RFT_MSG_APPEND_REPLY);
    ck_assert(!reply->success);
    ck_assert_uint_eq(reply->match, 1);
    ck_assert_uint_eq(rft_commit(r), 0);
    ck_assert_uint_eq(u.n_entries, 0);
    rft_free(r);
}
END_TEST

/* Malformed hints cannot push a leader's next index below 1 or a
 * follower's hint below 0. */
START_TEST(test_append_hints_stay_in_range)
{
    struct rft *f = node_with_log(1, 3, 1, 0, NULL, 0);
    struct rft_update u;
    struct rft_msg bad = append_msg(1, 0, 7, NULL, 0, 0);

    receive(f, &bad, &u);
    const struct rft_msg *reply = only_msg(&u, RFT_MSG_APPEND_REPLY);
    ck_assert(!reply->success);
    ck_assert_uint_eq(reply->match, 0);
    rft_free(f);

    struct rft *r = leader_of_three(&u);
    struct rft_msg no = {.type = RFT_MSG_APPEND_REPLY,
                         .from = 2,
                         .to = 1,
                         .term = 1,
                         .success = false,
                         .match = UINT64_MAX};
    receive(r, &no, &u);
    const struct rft_msg *retry = only_msg(&u, RFT_MSG_APPEND);
    ck_assert_uint_ge(retry->prev_index + 1, 1);
    ck_assert_uint_le(retry->prev_index, rft_last_index(r));
    no.match = 0;
    for (int i = 0; i < 5; i++) {
        receive(r, &no, &u);
        retry = only_msg(&u, RFT_MSG_APPEND);
        ck_assert_uint_eq(retry->prev_index, 0);
    }
    rft_free(r);
}
END_TEST

/*
 * Figure 8 of the Raft paper: a leader of term 4 has an entry of term 2 that
 * a majority stores. Counting replicas must not commit it; it commits only
 * once an entry of term 4 reaches a majority.
 */
START_TEST(test_no_commit_of_earlier_term_by_counting)
{
    static const uint64_t terms[] = {1, 2};
    struct rft *r = node_with_log(1, 5, 3, 0, terms, 2);
    struct rft_update u;
    struct rft_event persisted = {.type = RFT_EV_PERSISTED};

    tick_until_candidate(r, &u);
    ck_assert_uint_eq(rft_term(r), 4);
    for (uint32_t from = 2; from <= 3; from++) {
        struct rft_msg yes = {.type = RFT_MSG_VOTE_REPLY,
                              .from = from,
                              .to = 1,
                              .term = 4,
                              .granted = true};
        receive(r, &yes, &u);
    }
    ck_assert_int_eq(rft_role(r), RFT_LEADER);
    ck_assert_uint_eq(rft_last_index(r), 3); /* the no-op */

    /* Nodes 2 and 3 store index 2 (term 2): with the leader that is three
     * of five, but the entry is from term 2. */
    persisted.index = 2;
    ck_assert_int_eq(rft_step(r, &persisted, &u), 0);
    for (uint32_t from = 2; from <= 3; from++) {
        struct rft_msg ok = {.type = RFT_MSG_APPEND_REPLY,
                             .from = from,
                             .to = 1,
                             .term = 4,
                             .success = true,
                             .match = 2};
        receive(r, &ok, &u);
    }
    ck_assert_uint_eq(rft_commit(r), 0);
    ck_assert_uint_eq(u.n_committed, 0);

    /* The no-op of term 4 on a majority commits it and, through it, the
     * earlier entries. */
    persisted.index = 3;
    ck_assert_int_eq(rft_step(r, &persisted, &u), 0);
    struct rft_msg ok = {.type = RFT_MSG_APPEND_REPLY,
                         .from = 2,
                         .to = 1,
                         .term = 4,
                         .success = true,
                         .match = 3};
    receive(r, &ok, &u);
    ck_assert_uint_eq(rft_commit(r), 0);
    ok.from = 3;
    receive(r, &ok, &u);
    ck_assert_uint_eq(rft_commit(r), 3);
    ck_assert_uint_eq(u.first_committed, 1);
    ck_assert_uint_eq(u.n_committed, 3);
    rft_free(r);
}
END_TEST

/* The leader counts itself only for what its own disk holds. */
START_TEST(test_leader_counts_itself_after_persisting)
{
    struct rft *r = node_with_log(1, 3, 0, 0, NULL, 0);
    struct rft_update u;

    tick_until_candidate(r, &u);
    struct rft_msg yes = {.type = RFT_MSG_VOTE_REPLY,
                          .from = 2,
                          .to = 1,
                          .term = 1,
                          .granted = true};
    receive(r, &yes, &u);
    ck_assert_int_eq(rft_role(r), RFT_LEADER);
    struct rft_msg ok = {.type = RFT_MSG_APPEND_REPLY,
                         .from = 2,
                         .to = 1,
                         .term = 1,
                         .success = true,
                         .match = 1};
    receive(r, &ok, &u);
    ck_assert_uint_eq(rft_commit(r), 0); /* one of three: only node 2 */

    struct rft_event persisted = {.type = RFT_EV_PERSISTED, .index = 1};
    ck_assert_int_eq(rft_step(r, &persisted, &u), 0);
    ck_assert_uint_eq(rft_commit(r), 1);
    rft_free(r);
}
END_TEST

/* ---- tracing ----------------------------------------------------------- */

struct trace_log {
    struct rft_trace events[64];
    size_t n;
};

static void record(void *arg, const struct rft_trace *t)
{
    struct trace_log *log = arg;

    ck_assert_uint_lt(log->n, 64);
    log->events[log->n++] = *t;
}

/* A single node reports its boot, term, vote, leadership, the no-op's
 * append, and its commit and apply with the same hash. */
START_TEST(test_trace_single_node)
{
    struct trace_log log = {.n = 0};
    struct rft_config c = config(1, 1);
    struct rft_event tick = {.type = RFT_EV_TICK};
    struct rft_update u;
    struct rft *r = NULL;
    char err[256];

    c.trace = record;
    c.trace_arg = &log;
    ck_assert_int_eq(rft_new(&r, &c, NULL, err, sizeof(err)), 0);
    for (int i = 0; i < 100 && rft_role(r) != RFT_LEADER; i++)
        ck_assert_int_eq(rft_step(r, &tick, &u), 0);
    ck_assert_int_eq(rft_role(r), RFT_LEADER);
    struct rft_event persisted = {.type = RFT_EV_PERSISTED, .index = 1};
    ck_assert_int_eq(rft_step(r, &persisted, &u), 0);

    static const enum rft_trace_type want[] = {
        RFT_TRACE_BOOT,   RFT_TRACE_TERM,   RFT_TRACE_VOTE,  RFT_TRACE_LEADER,
        RFT_TRACE_APPEND, RFT_TRACE_COMMIT, RFT_TRACE_APPLY,
    };
    ck_assert_uint_eq(log.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < log.n; i++) {
        ck_assert_int_eq(log.events[i].type, want[i]);
        ck_assert_uint_eq(log.events[i].node, 1);
    }
    ck_assert_uint_eq(log.events[1].term, 1);
    ck_assert_uint_eq(log.events[2].vote, 1);
    ck_assert_uint_eq(log.events[4].index, 1);
    ck_assert_uint_eq(log.events[6].index, 1);
    ck_assert_uint_eq(log.events[6].hash, log.events[4].hash);
    rft_free(r);
}
END_TEST

/* ---- planted bugs ------------------------------------------------------ */

/* Each planted bug changes its one rule; the scenarios are the ones the
 * correct core passes above. */
START_TEST(test_bug_commit_prior_term)
{
    static const uint64_t terms[] = {1, 2};
    struct rft_update u;

    planted = RFT_BUG_COMMIT_PRIOR_TERM;
    struct rft *r = node_with_log(1, 5, 3, 0, terms, 2);
    planted = 0;
    tick_until_candidate(r, &u);
    for (uint32_t from = 2; from <= 3; from++) {
        struct rft_msg yes = {.type = RFT_MSG_VOTE_REPLY,
                              .from = from,
                              .to = 1,
                              .term = 4,
                              .granted = true};
        receive(r, &yes, &u);
    }
    struct rft_event persisted = {.type = RFT_EV_PERSISTED, .index = 2};
    ck_assert_int_eq(rft_step(r, &persisted, &u), 0);
    for (uint32_t from = 2; from <= 3; from++) {
        struct rft_msg ok = {.type = RFT_MSG_APPEND_REPLY,
                             .from = from,
                             .to = 1,
                             .term = 4,
                             .success = true,
                             .match = 2};
        receive(r, &ok, &u);
    }
    ck_assert_uint_eq(rft_commit(r), 2); /* the correct core stays at 0 */
    rft_free(r);
}
END_TEST

START_TEST(test_bug_truncate_on_match)
{
    static const uint64_t terms[] = {1, 1, 1};
    struct rft_entry old[2] = {
        {.term = 1, .type = RFT_ENTRY_COMMAND},
        {.term = 1, .type = RFT_ENTRY_COMMAND},
    };
    struct rft_update u;

    planted = RFT_BUG_TRUNCATE_ON_MATCH;
    struct rft *r = node_with_log(1, 3, 1, 0, terms, 3);
    planted = 0;
    struct rft_msg m = append_msg(1, 0, 0, old, 2, 0);
    receive(r, &m, &u);
    ck_assert_uint_eq(u.truncate_from, 1);
    ck_assert_uint_eq(rft_last_index(r), 2); /* entry 3 is gone */
    rft_free(r);
}
END_TEST

START_TEST(test_bug_no_persist_vote)
{
    struct rft_update u;

    for (int bug = 0; bug < 2; bug++) {
        planted = bug ? RFT_BUG_NO_PERSIST_VOTE : 0;
        struct rft *r = node_with_log(1, 3, 5, 0, NULL, 0);
        planted = 0;
        struct rft_msg m = vote_request(2, 1, 5, 0, 0);
        receive(r, &m, &u);
        ck_assert(only_msg(&u, RFT_MSG_VOTE_REPLY)->granted);
        ck_assert_msg(u.hard_state == !bug, "bug=%d hard_state=%d", bug,
                      u.hard_state);
        rft_free(r);
    }
}
END_TEST

START_TEST(test_bug_stale_read)
{
    struct rft_update u;

    planted = RFT_BUG_STALE_READ;
    struct rft *r = leader_of_three(&u);
    planted = 0;
    struct rft_event persisted = {.type = RFT_EV_PERSISTED, .index = 1};
    ck_assert_int_eq(rft_step(r, &persisted, &u), 0);
    struct rft_msg ok = {.type = RFT_MSG_APPEND_REPLY,
                         .from = 2,
                         .to = 1,
                         .term = 1,
                         .success = true,
                         .match = 1};
    receive(r, &ok, &u);
    ck_assert_uint_eq(rft_commit(r), 1);
    /* Served at once, with no heartbeat round to confirm leadership. */
    read_event(r, 9, &u);
    ck_assert_uint_eq(u.n_reads, 1);
    ck_assert_uint_eq(u.reads[0].index, 1);
    ck_assert_uint_eq(u.n_msgs, 0);
    rft_free(r);
}
END_TEST

START_TEST(test_bug_parse)
{
    unsigned bit = 0;

    ck_assert_int_eq(rft_bug_parse("commit-prior-term", &bit), 0);
    ck_assert_uint_eq(bit, RFT_BUG_COMMIT_PRIOR_TERM);
    ck_assert_int_eq(rft_bug_parse("stale-read", &bit), 0);
    ck_assert_uint_eq(bit, RFT_BUG_STALE_READ);
    ck_assert_int_ne(rft_bug_parse("stale-reads", &bit), 0);
    ck_assert_int_ne(rft_bug_parse("", &bit), 0);
    ck_assert_ptr_nonnull(strstr(rft_bug_names(), "no-persist-vote"));
}
END_TEST

/* ---- a cluster in memory ----------------------------------------------- */

#define MAX_QUEUE 4096

/* A message with copies of its entries, as a network would carry it. */
struct packet {
    struct rft_msg m;
    struct rft_entry *entries;
};

struct cluster {
    struct rft *nodes[RFT_MAX_NODES + 1];
    size_t n;
    struct packet queue[MAX_QUEUE];
    size_t head, tail;
    struct fl_rng rng;
    /* Checks: one leader per term, one applied command per index. */
    uint32_t leader_of_term[1024];
    uint64_t applied_term[1024];
    unsigned char applied_byte[1024];
    uint64_t applied[RFT_MAX_NODES + 1];
    /* Reads: the highest commit index any node knew when each started. */
    uint64_t read_floor[256];
    size_t n_reads;
    size_t reads_served;
    /* From the trace: each node's vote per term, and the hash applied at
     * each index. */
    uint32_t vote_of[RFT_MAX_NODES + 1][1024];
    uint32_t apply_hash[1024];
};

/* Audits the trace as a checker of a real run would. */
static void audit(void *arg, const struct rft_trace *t)
{
    struct cluster *c = arg;

    if (t->type == RFT_TRACE_VOTE) {
        ck_assert_uint_lt(t->term, 1024);
        uint32_t *v = &c->vote_of[t->node][t->term];
        ck_assert_msg(*v == 0 || *v == t->vote,
                      "node %u voted for %u and %u in term %" PRIu64, t->node,
                      *v, t->vote, t->term);
        *v = t->vote;
    } else if (t->type == RFT_TRACE_APPLY) {
        ck_assert_uint_lt(t->index, 1024);
        uint32_t *h = &c->apply_hash[t->index];
        ck_assert_msg(*h == 0 || *h == t->hash,
                      "node %u applied another command at index %" PRIu64,
                      t->node, t->index);
        *h = t->hash;
    }
}

static void enqueue(struct cluster *c, const struct rft_msg *m)
{
    struct packet *p = &c->queue[c->tail % MAX_QUEUE];

    ck_assert_uint_lt(c->tail - c->head, MAX_QUEUE);
    p->m = *m;
    p->entries = NULL;
    if (m->n_entries > 0) {
        p->entries = calloc(m->n_entries, sizeof(*p->entries));
        ck_assert_ptr_nonnull(p->entries);
        for (size_t i = 0; i < m->n_entries; i++) {
            p->entries[i] = m->entries[i];
            if (m->entries[i].len > 0) {
                unsigned char *d = malloc(m->entries[i].len);
                ck_assert_ptr_nonnull(d);
                memcpy(d, m->entries[i].data, m->entries[i].len);
                p->entries[i].data = d;
            }
        }
        p->m.entries = p->entries;
    }
    c->tail++;
}

static void free_packet(struct packet *p)
{
    for (size_t i = 0; i < p->m.n_entries; i++)
        free((void *)p->entries[i].data);
    free(p->entries);
}

static void step(struct cluster *c, uint32_t id, const struct rft_event *ev);

/* Carries out an update as a driver would: the log is kept by the core, so
 * persisting is instant; messages go to the queue; committed entries are
 * checked against every other node's. */
static void carry_out(struct cluster *c, uint32_t id,
                      const struct rft_update *u)
{
    struct rft *r = c->nodes[id];

    if (rft_role(r) == RFT_LEADER) {
        uint64_t t = rft_term(r);
        ck_assert_uint_lt(t, 1024);
        ck_assert_msg(c->leader_of_term[t] == 0 || c->leader_of_term[t] == id,
                      "two leaders in term %" PRIu64 ": %u and %u", t,
                      c->leader_of_term[t], id);
        c->leader_of_term[t] = id;
    }
    for (size_t i = 0; i < u->n_msgs; i++)
        enqueue(c, &u->msgs[i]);
    for (size_t i = 0; i < u->n_committed; i++) {
        uint64_t index = u->first_committed + i;
        const struct rft_entry *e = &u->committed[i];
        unsigned char byte = e->len > 0 ? e->data[0] : 0;
        ck_assert_uint_lt(index, 1024);
        ck_assert_uint_eq(index, c->applied[id] + 1);
        c->applied[id] = index;
        if (c->applied_term[index] == 0) {
            c->applied_term[index] = e->term;
            c->applied_byte[index] = byte;
        }
        ck_assert_msg(
            c->applied_term[index] == e->term && c->applied_byte[index] == byte,
            "node %u applied another entry at index %" PRIu64, id, index);
    }
    for (size_t i = 0; i < u->n_reads; i++) {
        const struct rft_read *rd = &u->reads[i];
        ck_assert_uint_lt(rd->read_id, c->n_reads);
        if (rd->index == 0)
            continue;
        /* Linearizable: the read reflects every write committed before it
         * started, and the node has applied that far. */
        ck_assert_msg(rd->index >= c->read_floor[rd->read_id],
                      "read %" PRIu64 " at index %" PRIu64
                      " misses writes committed up to %" PRIu64,
                      rd->read_id, rd->index, c->read_floor[rd->read_id]);
        ck_assert_uint_ge(c->applied[id], rd->index);
        c->reads_served++;
    }
    if (u->n_entries > 0) {
        struct rft_event done = {.type = RFT_EV_PERSISTED,
                                 .index = u->first_index + u->n_entries - 1};
        step(c, id, &done);
    }
}

static void step(struct cluster *c, uint32_t id, const struct rft_event *ev)
{
    struct rft_update u;

    ck_assert_int_eq(rft_step(c->nodes[id], ev, &u), 0);
    carry_out(c, id, &u);
}

/* Delivers queued messages in order, dropping each with probability drop. */
static void deliver_all(struct cluster *c, double drop)
{
    while (c->head < c->tail) {
        struct packet p = c->queue[c->head % MAX_QUEUE];
        c->head++;
        if (!fl_rng_chance(&c->rng, drop)) {
            struct rft_event ev = {.type = RFT_EV_RECEIVE, .msg = p.m};
            step(c, p.m.to, &ev);
        }
        free_packet(&p);
    }
}

static uint32_t find_leader(const struct cluster *c)
{
    for (uint32_t id = 1; id <= c->n; id++) {
        if (rft_role(c->nodes[id]) == RFT_LEADER)
            return id;
    }
    return 0;
}

/* Five nodes elect one leader per term under message loss and replicate
 * commands that every node applies in the same order. */
START_TEST(test_cluster_elects_and_replicates)
{
    struct cluster *c = calloc(1, sizeof(*c));
    uint64_t seed = 1000 + (uint64_t)_i;
    char err[256];
    int proposed = 0;

    ck_assert_ptr_nonnull(c);
    c->n = 5;
    fl_rng_seed(&c->rng, seed);
    for (uint32_t id = 1; id <= c->n; id++) {
        struct rft_config cfg = config(id, c->n);
        cfg.seed = seed;
        cfg.trace = audit;
        cfg.trace_arg = c;
        ck_assert_int_eq(rft_new(&c->nodes[id], &cfg, NULL, err, sizeof(err)),
                         0);
    }
    for (int round = 0; round < 600; round++) {
        for (uint32_t id = 1; id <= c->n; id++) {
            struct rft_event tick = {.type = RFT_EV_TICK};
            step(c, id, &tick);
        }
        uint32_t leader = find_leader(c);
        if (leader != 0 && round % 5 == 0 && proposed < 40) {
            unsigned char byte = (unsigned char)('a' + proposed % 26);
            struct rft_event ev = {
                .type = RFT_EV_PROPOSE, .data = &byte, .len = 1};
            step(c, leader, &ev);
            proposed++;
        }
        if (round % 7 == 3 && c->n_reads < 256) {
            /* Reads go to any node; only a leader serves them. */
            uint32_t id = 1 + (uint32_t)fl_rng_below(&c->rng, c->n);
            uint64_t floor = 0;
            for (uint32_t k = 1; k <= c->n; k++) {
                if (rft_commit(c->nodes[k]) > floor)
                    floor = rft_commit(c->nodes[k]);
            }
            c->read_floor[c->n_reads] = floor;
            struct rft_event ev = {.type = RFT_EV_READ,
                                   .read_id = c->n_reads++};
            step(c, id, &ev);
        }
        deliver_all(c, round < 400 ? 0.1 : 0.0);
    }
    /* A few quiet rounds let heartbeats carry the last commit index. */
    for (int round = 0; round < 20; round++) {
        for (uint32_t id = 1; id <= c->n; id++) {
            struct rft_event tick = {.type = RFT_EV_TICK};
            step(c, id, &tick);
        }
        deliver_all(c, 0.0);
    }
    uint32_t leader = find_leader(c);
    ck_assert_msg(leader != 0, "seed %" PRIu64 ": no leader at the end", seed);
    uint64_t commit = rft_commit(c->nodes[leader]);
    for (uint32_t id = 1; id <= c->n; id++)
        ck_assert_msg(c->applied[id] == commit,
                      "seed %" PRIu64 ": node %u applied %" PRIu64
                      ", leader committed %" PRIu64,
                      seed, id, c->applied[id], commit);
    for (uint32_t id = 1; id <= c->n; id++)
        rft_free(c->nodes[id]);
    ck_assert_uint_ge(c->applied[1], 20);
    ck_assert_msg(c->reads_served > 0, "seed %" PRIu64 ": no read served",
                  seed);
    free(c);
}
END_TEST

/* ---- configuration ----------------------------------------------------- */

/* ---- snapshots --------------------------------------------------------- */

/* A snapshot chunk from leader 2 of term term, for a follower node 1. */
static struct rft_msg chunk(uint64_t term, uint64_t index, uint64_t snap_term,
                            uint64_t offset, const char *data, bool done)
{
    struct rft_msg m = {.type = RFT_MSG_SNAPSHOT,
                        .from = 2,
                        .to = 1,
                        .term = term,
                        .offset = offset,
                        .done = done};

    m.snapshot.index = index;
    m.snapshot.term = snap_term;
    m.snapshot.conf.n_nodes = 3;
    for (uint32_t i = 0; i < 3; i++)
        m.snapshot.conf.nodes[i] = i + 1;
    m.snapshot.data = (const unsigned char *)data;
    m.snapshot.len = strlen(data);
    return m;
}

/* InstallSnapshot whose last entry conflicts with the follower's log
 * discards the whole log (section 7), and the follower installs it only
 * once the last chunk arrived in order. */
START_TEST(test_install_snapshot_discards_conflicting)
{
    static const uint64_t terms[] = {1, 1, 2, 2};
    struct rft *r = node_with_log(1, 3, 2, 0, terms, 4);
    struct rft_update u;
    struct rft_msg m;

    m = chunk(3, 3, 3, 0, "abcd", false);
    receive(r, &m, &u);
    ck_assert_ptr_null(u.snapshot);
    ck_assert_uint_eq(only_msg(&u, RFT_MSG_SNAPSHOT_REPLY)->offset, 4);
    ck_assert(!u.msgs[0].done);
    m = chunk(3, 3, 3, 4, "ef", true);
    receive(r, &m, &u);
    ck_assert_ptr_nonnull(u.snapshot);
    ck_assert_uint_eq(u.snapshot->index, 3);
    ck_assert_uint_eq(u.snapshot->term, 3);
    ck_assert_uint_eq(u.snapshot->len, 6);
    ck_assert_int_eq(memcmp(u.snapshot->data, "abcdef", 6), 0);
    ck_assert_uint_eq(u.truncate_from, 4); /* entry 4 goes too */
    ck_assert_uint_eq(rft_last_index(r), 3);
    ck_assert_ptr_null(rft_entry_at(r, 3));
    ck_assert_ptr_null(rft_entry_at(r, 4));
    ck_assert_uint_eq(rft_commit(r), 3);
    ck_assert_uint_eq(u.n_committed, 0); /* the snapshot replaces them */
    const struct rft_msg *reply = only_msg(&u, RFT_MSG_SNAPSHOT_REPLY);
    ck_assert(reply->done && reply->success);
    ck_assert_uint_eq(reply->match, 3);
    ck_assert_uint_eq(rft_conf_of(r)->n_nodes, 3);
    rft_free(r);
}
END_TEST

/* When the follower's log contains the snapshot's last entry, the entries
 * after it stay. */
START_TEST(test_install_snapshot_keeps_matching_suffix)
{
    static const uint64_t terms[] = {1, 1, 1, 1};
    struct rft *r = node_with_log(1, 3, 1, 0, terms, 4);
    struct rft_update u;
    struct rft_msg m = chunk(1, 2, 1, 0, "xy", true);

    receive(r, &m, &u);
    ck_assert_ptr_nonnull(u.snapshot);
    ck_assert_uint_eq(u.truncate_from, 0);
    ck_assert_uint_eq(rft_last_index(r), 4);
    ck_assert_ptr_null(rft_entry_at(r, 2));
    ck_assert_ptr_nonnull(rft_entry_at(r, 3));
    ck_assert_uint_eq(rft_snapshot_of(r)->index, 2);
    rft_free(r);
}
END_TEST

/* Chunks count only in order; a gap gets the offset the follower holds,
 * and a snapshot at or below the commit index changes nothing. */
START_TEST(test_snapshot_chunks_in_order)
{
    struct rft *r = node_with_log(1, 3, 1, 0, NULL, 0);
    struct rft_update u;
    struct rft_msg m = chunk(1, 5, 1, 3, "late", true);

    receive(r, &m, &u);
    ck_assert_ptr_null(u.snapshot);
    ck_assert_uint_eq(only_msg(&u, RFT_MSG_SNAPSHOT_REPLY)->offset, 0);
    ck_assert(!u.msgs[0].done);
    m = chunk(1, 5, 1, 0, "abc", false);
    receive(r, &m, &u);
    m = chunk(1, 5, 1, 2, "zz", false); /* overlaps: refused */
    receive(r, &m, &u);
    ck_assert_uint_eq(only_msg(&u, RFT_MSG_SNAPSHOT_REPLY)->offset, 3);
    m = chunk(1, 5, 1, 0, "abc", false); /* a late copy of the first */
    receive(r, &m, &u);
    ck_assert_uint_eq(only_msg(&u, RFT_MSG_SNAPSHOT_REPLY)->offset, 3);
    m = chunk(1, 5, 1, 3, "de", true);
    receive(r, &m, &u);
    ck_assert_ptr_nonnull(u.snapshot);
    ck_assert_int_eq(memcmp(u.snapshot->data, "abcde", 5), 0);
    /* The same snapshot again: every entry is committed already. */
    m = chunk(1, 5, 1, 0, "abcde", true);
    receive(r, &m, &u);
    ck_assert_ptr_null(u.snapshot);
    ck_assert(only_msg(&u, RFT_MSG_SNAPSHOT_REPLY)->done);
    rft_free(r);
}
END_TEST

/* Makes node 1 of 3 the leader of term 1 with count commands committed,
 * sending snapshots in chunks of chunk bytes (0: the default). */
static struct rft *leader_with_commands(int count, size_t chunk,
                                        struct rft_update *u)
{
    struct rft_config c = config(1, 3);
    struct rft *r = NULL;
    char err[256];

    c.snapshot_chunk = chunk;
    ck_assert_int_eq(rft_new(&r, &c, NULL, err, sizeof(err)), 0);
    tick_until_candidate(r, u);
    struct rft_msg yes = {.type = RFT_MSG_VOTE_REPLY,
                          .from = 2,
                          .to = 1,
                          .term = 1,
                          .granted = true};
    receive(r, &yes, u);
    ck_assert_int_eq(rft_role(r), RFT_LEADER);
    for (int i = 0; i < count; i++) {
        struct rft_event p = {.type = RFT_EV_PROPOSE, .data = "c", .len = 1};
        ck_assert_int_eq(rft_step(r, &p, u), 0);
    }
    struct rft_event persisted = {.type = RFT_EV_PERSISTED,
                                  .index = rft_last_index(r)};
    ck_assert_int_eq(rft_step(r, &persisted, u), 0);
    struct rft_msg ok = {.type = RFT_MSG_APPEND_REPLY,
                         .from = 2,
                         .to = 1,
                         .term = 1,
                         .success = true,
                         .match = rft_last_index(r)};
    receive(r, &ok, u);
    ck_assert_uint_eq(rft_commit(r), rft_last_index(r));
    return r;
}

/* A leader whose log no longer contains what a follower needs streams its
 * snapshot in chunks, then goes on with entries. */
START_TEST(test_leader_streams_snapshot)
{
    struct rft_update u;
    struct rft *r = leader_with_commands(4, 0, &u); /* indexes 1 (no-op) to 5 */
    struct rft_event snap = {
        .type = RFT_EV_SNAPSHOT, .index = 4, .data = "0123456789", .len = 10};
    ck_assert_int_eq(rft_step(r, &snap, &u), 0);
    ck_assert_uint_eq(rft_snapshot_of(r)->index, 4);
    ck_assert_ptr_null(rft_entry_at(r, 4));
    ck_assert_ptr_nonnull(rft_entry_at(r, 5));

    /* Node 3 has nothing: its reply hint sends the leader below the
     * snapshot. */
    struct rft_msg no = {.type = RFT_MSG_APPEND_REPLY,
                         .from = 3,
                         .to = 1,
                         .term = 1,
                         .match = 0};
    receive(r, &no, &u);
    const struct rft_msg *m = only_msg(&u, RFT_MSG_SNAPSHOT);
    ck_assert_uint_eq(m->snapshot.index, 4);
    ck_assert_uint_eq(m->offset, 0);
    ck_assert_uint_eq(m->snapshot.len, 10); /* default chunk: all of it */
    ck_assert(m->done);
    struct rft_msg done = {.type = RFT_MSG_SNAPSHOT_REPLY,
                           .from = 3,
                           .to = 1,
                           .term = 1,
                           .done = true,
                           .success = true,
                           .match = 4};
    done.snapshot.index = 4;
    receive(r, &done, &u);
    m = only_msg(&u, RFT_MSG_APPEND);
    ck_assert_uint_eq(m->prev_index, 4);
    ck_assert_uint_eq(m->prev_term, 1);
    ck_assert_uint_eq(m->n_entries, 1);
    rft_free(r);
}
END_TEST

/* Small chunks: the leader sends the next one as each is confirmed. */
START_TEST(test_leader_sends_chunks)
{
    struct rft_update u;
    struct rft *r = leader_with_commands(0, 4, &u);

    struct rft_event snap = {
        .type = RFT_EV_SNAPSHOT, .index = 1, .data = "0123456789", .len = 10};
    ck_assert_int_eq(rft_step(r, &snap, &u), 0);
    struct rft_msg no = {.type = RFT_MSG_APPEND_REPLY,
                         .from = 3,
                         .to = 1,
                         .term = 1,
                         .match = 0};
    receive(r, &no, &u);
    static const char digits[] = "0123456789";
    uint64_t offsets[] = {0, 4, 8};
    for (int i = 0; i < 3; i++) {
        const struct rft_msg *m = only_msg(&u, RFT_MSG_SNAPSHOT);
        ck_assert_uint_eq(m->offset, offsets[i]);
        ck_assert_uint_eq(m->snapshot.len, i < 2 ? 4 : 2);
        ck_assert(m->done == (i == 2));
        ck_assert_int_eq(
            memcmp(m->snapshot.data, &digits[offsets[i]], m->snapshot.len), 0);
        if (i == 2)
            break;
        struct rft_msg got = {.type = RFT_MSG_SNAPSHOT_REPLY,
                              .from = 3,
                              .to = 1,
                              .term = 1,
                              .offset = offsets[i] + 4};
        got.snapshot.index = 1;
        receive(r, &got, &u);
    }
    rft_free(r);
}
END_TEST

/* A node restarts from a snapshot and the entries after it, with the
 * snapshot's configuration. An append reaching below the snapshot is
 * matched from the snapshot on, never against a compacted index. */
START_TEST(test_restart_from_snapshot)
{
    struct rft_entry entries[2] = {
        {.term = 2,
         .type = RFT_ENTRY_COMMAND,
         .data = (const void *)"a",
         .len = 1},
        {.term = 2,
         .type = RFT_ENTRY_COMMAND,
         .data = (const void *)"b",
         .len = 1},
    };
    struct rft_durable d = {.term = 2, .entries = entries, .n_entries = 2};
    struct rft_config c = config(1, 5);
    struct rft_update u;
    struct rft *r = NULL;
    char err[256];

    d.snapshot.index = 5;
    d.snapshot.term = 2;
    d.snapshot.conf.n_nodes = 3;
    for (uint32_t i = 0; i < 3; i++)
        d.snapshot.conf.nodes[i] = i + 1;
    d.snapshot.data = (const unsigned char *)"state";
    d.snapshot.len = 5;
    ck_assert_int_eq(rft_new(&r, &c, &d, err, sizeof(err)), 0);
    ck_assert_uint_eq(rft_last_index(r), 7);
    ck_assert_uint_eq(rft_commit(r), 5);
    ck_assert_uint_eq(rft_applied(r), 5);
    ck_assert_ptr_null(rft_entry_at(r, 5));
    ck_assert_ptr_nonnull(rft_entry_at(r, 6));
    ck_assert_uint_eq(rft_conf_of(r)->n_nodes, 3);

    struct rft_entry sent[4] = {entries[0], entries[0], entries[0], entries[1]};
    struct rft_msg m = {.type = RFT_MSG_APPEND,
                        .from = 2,
                        .to = 1,
                        .term = 2,
                        .prev_index = 3,
                        .prev_term = 2,
                        .entries = sent,
                        .n_entries = 4,
                        .commit = 7};
    receive(r, &m, &u);
    const struct rft_msg *reply = only_msg(&u, RFT_MSG_APPEND_REPLY);
    ck_assert(reply->success);
    ck_assert_uint_eq(reply->match, 7);
    ck_assert_uint_eq(u.truncate_from, 0);
    ck_assert_uint_eq(u.n_entries, 0); /* 6 and 7 matched */
    ck_assert_uint_eq(u.first_committed, 6);
    ck_assert_uint_eq(u.n_committed, 2);
    rft_free(r);

    /* A damaged configuration is refused. */
    d.snapshot.conf.nodes[0] = 9;
    d.snapshot.conf.nodes[1] = 9;
    ck_assert_int_ne(rft_new(&r, &c, &d, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "appears twice"));
}
END_TEST

/* ---- sessions ---------------------------------------------------------- */

START_TEST(test_session_rule)
{
    struct rft_session s = {
        .seq = 4, .response = (const unsigned char *)"OK", .len = 2};
    struct fl_buf b;
    uint64_t client, seq;
    const void *op;
    size_t len;
    struct rft_session back;

    ck_assert_int_eq(rft_session_check(7, NULL, 1, 0), RFT_SESSION_APPLY);
    ck_assert_int_eq(rft_session_check(7, &s, 5, 0), RFT_SESSION_APPLY);
    ck_assert_int_eq(rft_session_check(7, &s, 4, 0), RFT_SESSION_CACHED);
    ck_assert_int_eq(rft_session_check(7, &s, 3, 0), RFT_SESSION_STALE);
    ck_assert_int_eq(rft_session_check(0, &s, 4, 0), RFT_SESSION_APPLY);
    ck_assert_int_eq(rft_session_check(7, &s, 4, RFT_BUG_NO_SESSION_DEDUP),
                     RFT_SESSION_APPLY);

    fl_buf_init(&b);
    rft_command_encode(&b, 7, 9, "put", 3);
    ck_assert_int_eq(
        rft_command_decode(b.data, b.len, &client, &seq, &op, &len), 0);
    ck_assert_uint_eq(client, 7);
    ck_assert_uint_eq(seq, 9);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(op, "put", 3), 0);
    ck_assert_int_ne(rft_command_decode(b.data, 10, &client, &seq, &op, &len),
                     0);
    ck_assert_int_ne(rft_command_decode("x", 1, &client, &seq, &op, &len), 0);
    fl_buf_clear(&b);
    rft_session_encode(&b, 12, "OK", 2);
    ck_assert_int_eq(rft_session_decode(b.data, b.len, &back), 0);
    ck_assert_uint_eq(back.seq, 12);
    ck_assert_uint_eq(back.len, 2);
    ck_assert_int_ne(rft_session_decode(b.data, 7, &back), 0);
    fl_buf_free(&b);
}
END_TEST

/* A message with a forged term near 2^64 is dropped: adopting it would
 * make the next election's term + 1 wrap. */
START_TEST(test_huge_term_dropped)
{
    struct rft *r = node_with_log(1, 3, 2, 0, NULL, 0);
    struct rft_update u;
    struct rft_msg m = vote_request(2, 1, UINT64_MAX, 1000000, UINT64_MAX);

    receive(r, &m, &u);
    ck_assert_uint_eq(rft_term(r), 2);
    ck_assert_uint_eq(u.n_msgs, 0);
    ck_assert(!u.hard_state);
    m.term = RFT_MAX_TERM;
    receive(r, &m, &u);
    ck_assert_uint_eq(rft_term(r), RFT_MAX_TERM); /* the limit itself passes */
    rft_free(r);
}
END_TEST

START_TEST(test_config_rejected)
{
    struct rft *r = NULL;
    char err[256];
    struct rft_config c = config(4, 3);

    ck_assert_int_ne(rft_new(&r, &c, NULL, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "not among the nodes"));
    c = config(1, 3);
    c.nodes[2] = 2;
    ck_assert_int_ne(rft_new(&r, &c, NULL, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "appears twice"));
    c = config(1, 3);
    c.heartbeat_ticks = c.election_ticks;
    ck_assert_int_ne(rft_new(&r, &c, NULL, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "heartbeat"));
    ck_assert_ptr_null(r);
}
END_TEST

static Suite *raft_suite(void)
{
    Suite *s = suite_create("raft");
    TCase *t = tcase_create("rules");

    tcase_add_test(t, test_vote_refused_stale_log);
    tcase_add_test(t, test_vote_refused_second_candidate);
    tcase_add_test(t, test_vote_survives_restart);
    tcase_add_test(t, test_candidate_counts_current_votes);
    tcase_add_test(t, test_step_down_on_higher_term);
    tcase_add_test(t, test_pre_vote_changes_nothing);
    tcase_add_test(t, test_isolated_node_keeps_term);
    tcase_add_test(t, test_follower_with_leader_ignores_votes);
    tcase_add_test(t, test_check_quorum_steps_down);
    tcase_add_test(t, test_read_waits_for_current_term_commit);
    tcase_add_test(t, test_read_rejected_without_leadership);
    tcase_add_test(t, test_append_matching_suffix_changes_nothing);
    tcase_add_test(t, test_append_conflict_truncates);
    tcase_add_test(t, test_append_gap_rejected);
    tcase_add_test(t, test_append_hints_stay_in_range);
    tcase_add_test(t, test_no_commit_of_earlier_term_by_counting);
    tcase_add_test(t, test_leader_counts_itself_after_persisting);
    tcase_add_test(t, test_config_rejected);
    tcase_add_test(t, test_huge_term_dropped);
    tcase_add_test(t, test_install_snapshot_discards_conflicting);
    tcase_add_test(t, test_install_snapshot_keeps_matching_suffix);
    tcase_add_test(t, test_snapshot_chunks_in_order);
    tcase_add_test(t, test_leader_streams_snapshot);
    tcase_add_test(t, test_leader_sends_chunks);
    tcase_add_test(t, test_restart_from_snapshot);
    tcase_add_test(t, test_session_rule);
    tcase_add_test(t, test_trace_single_node);
    tcase_add_test(t, test_bug_commit_prior_term);
    tcase_add_test(t, test_bug_truncate_on_match);
    tcase_add_test(t, test_bug_no_persist_vote);
    tcase_add_test(t, test_bug_stale_read);
    tcase_add_test(t, test_bug_parse);
    suite_add_tcase(s, t);

    t = tcase_create("cluster");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, test_cluster_elects_and_replicates, 0, 20);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(raft_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
