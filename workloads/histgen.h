/*
 * Synthetic concurrent histories that are linearizable by construction.
 *
 * A simulated set of client processes runs operations against an in-memory
 * register (or key-value map). Each operation takes effect at one random
 * instant strictly inside its interval, so the order of those instants is a
 * witness linearization. Some operations crash: they complete as `info`
 * after taking effect or not (a coin decides), and their process is replaced
 * by a new process number, as Jepsen does. A cas whose expected value does
 * not match completes as `fail` and changes nothing.
 *
 * With `corrupt`, one ok read (chosen from the seed, in the middle half of
 * the history) reports a value no operation ever wrote, which makes the
 * history certainly not linearizable: the checker tests use both kinds.
 */
#ifndef WL_HISTGEN_H
#define WL_HISTGEN_H

#include "history.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wl_gen_model {
    WL_GEN_REGISTER,     /* read, write */
    WL_GEN_CAS_REGISTER, /* read, write, cas */
    WL_GEN_KV,           /* get, put, append */
};

struct wl_gen_options {
    enum wl_gen_model model;
    uint64_t seed;
    size_t ops;  /* invocations to generate */
    size_t keys; /* keys k0..k{keys-1}; 1 key means no key field for
                    registers unless keyed is set */
    bool keyed;
    size_t processes;  /* concurrent clients */
    double crash_rate; /* share of operations that end in info */
    int64_t values;    /* register writes draw from [0, values) */
    double read_ratio; /* share of reads; the rest are updates */
    bool corrupt;
};

/* Sets 1000 operations on 1 key, 5 processes, no crashes, 5 values, half
 * reads, cas-register, seed 0. */
void wl_gen_options_default(struct wl_gen_options *o);

/*
 * Generates the history, calling emit for each event in order (time
 * strictly increasing, index from 0). emit's event and its strings are valid
 * only during the call. Stops at the first nonzero return of emit and
 * returns it; returns FL_EINPUT for invalid options (and, with corrupt, when
 * no read completed ok after the chosen point), or -ENOMEM.
 */
int wl_gen_history(const struct wl_gen_options *o,
                   int (*emit)(void *ctx, const struct fl_hist_event *ev),
                   void *ctx);

/* Parses "register", "cas-register" or "kv"; returns 0 or FL_EINPUT. */
int wl_gen_model_parse(const char *name, enum wl_gen_model *out);

#endif
