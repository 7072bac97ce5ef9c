/*
 * The register workload: concurrent clients doing read, write and cas on a
 * few keys of an fl-raftd cluster or one fl-kvd, over RESP, recording every
 * operation in a history as it goes.
 *
 * One thread per logical process. An operation that times out or whose
 * connection breaks after the request was sent ends as `info` (it may or
 * may not have happened) and the thread carries on as a new process
 * number, process + concurrency, as Jepsen does. A read that times out ends
 * as `fail`: a read changes nothing. A write or cas that the server
 * certainly did not apply (a -NOTLEADER reply, a refused connection, a
 * RETRY error) is retried within the operation's timeout.
 *
 * Against fl-raftd each process has a client session (SESSION, then SEQ
 * before each write), and a retry after a broken connection resends the
 * same session and number, so a retried write is applied at most once. A
 * -NOTLEADER reply names the leader's client address; the client follows it,
 * or tries the next node when the reply names none.
 *
 * fl-kvd has no sessions, so there a write whose request may have reached
 * the server ends as info at once instead of being sent again.
 *
 * Keys are "k0", "k1", ...; values are integers. read is GET (null when the
 * key is absent), write is SET, cas [expected, new] is CAS (1: swapped, ok;
 * 0: not swapped, fail). A read that returns text other than an integer is
 * recorded as ok with that string, which no write produced, so the checker
 * reports it. A write or cas that gets a reply the protocol does not allow
 * ends as info, and is logged.
 */
#ifndef WL_REGISTER_H
#define WL_REGISTER_H

#include "history.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WL_MAX_NODES       9
#define WL_MAX_VALUE_BYTES 4096

enum wl_target {
    WL_TARGET_RAFT, /* fl-raftd: sessions, -NOTLEADER redirects */
    WL_TARGET_KV,   /* one fl-kvd: no sessions, no redirects */
};

struct wl_reg_config {
    enum wl_target target;
    unsigned n_nodes;
    /* Client address of node i, "HOST:PORT" with a numeric host, at
     * addrs[i] for i in 1..n_nodes. */
    char addrs[WL_MAX_NODES + 1][64];
    int netns_fd;  /* >= 0: every client socket is made in this namespace */
    unsigned keys; /* 1 or more */
    unsigned concurrency; /* threads, 1 or more */
    double rate; /* target operations per second, all threads; 0: as fast as
                    possible */
    double mix_read, mix_write, mix_cas; /* weights, sum > 0 */
    /* Write values: 0 draws unique values (never the same value twice in
     * the run); N > 0 draws uniformly from 0..N-1. cas draws its expected
     * value from what the process last saw of the key. */
    unsigned value_max;
    /* 0, or the length of each written value: the integer, '.', then
     * letters that follow from the integer, so a read of a damaged value
     * is text no write produced. At most WL_MAX_VALUE_BYTES. */
    unsigned value_bytes;
    int timeout_ms; /* per operation, retries included */
    /* fl-raftd: each read starts at a node drawn at random and follows
     * redirects from there, as clients spread over a cluster do. A node
     * that wrongly believes it still leads then receives reads. With
     * false, reads go where the client last was, normally the leader. */
    bool reads_anywhere;
    uint64_t seed; /* each thread uses sub-stream FL_RNG_STREAM_CLIENT + t */
    int64_t time_base_ns; /* history times are fl_clock_now_ns() - this */
    struct fl_hist_writer *history; /* shared; the writer locks */
};

struct wl_reg_counts {
    uint64_t ok, fail, info; /* completions recorded, final reads included */
    uint64_t retries; /* attempts after an operation's first, all threads */
};

struct wl_reg;

/* Validates c and starts the threads. Returns 0, or a negative error with
 * the reason in err. */
int wl_reg_start(struct wl_reg **out, const struct wl_reg_config *c, char *err,
                 size_t err_size);

/* Completions so far; safe from any thread. */
void wl_reg_counts(const struct wl_reg *w, struct wl_reg_counts *out);

/* Asks every thread to stop after its current operation and joins them,
 * so it returns within about one timeout_ms. Calling it again does
 * nothing. */
void wl_reg_stop(struct wl_reg *w);

/*
 * Returns 0, or the first error that ended a client thread early (a history
 * write that failed, or setns into netns_fd), with its description in msg.
 * A thread that hits such an error stops; the others go on.
 */
int wl_reg_error(const struct wl_reg *w, char *msg, size_t msg_size);

/*
 * After wl_reg_stop (it stops the workload first if needed): reads every
 * key once more, each with its own process number past all used before,
 * retrying until the read succeeds or deadline_ns (fl_clock_now_ns time)
 * passes. A read that gives up is recorded as fail. Returns the number of
 * keys read, or a negative error: wl_reg_error's, when a thread stopped on
 * one during the run or the final reads.
 */
int wl_reg_final_reads(struct wl_reg *w, int64_t deadline_ns);

/*
 * Makes every operation in progress, final reads included, give up at its
 * next attempt, as if its deadline had passed, and tells the threads to
 * stop. Safe from any thread. The caller still joins the threads with
 * wl_reg_stop or wl_reg_final_reads.
 */
void wl_reg_abort(struct wl_reg *w);

/* Stops the workload if running and frees it. */
void wl_reg_free(struct wl_reg *w);

#endif
