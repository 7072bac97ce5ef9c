/*
 * Linearizability checking of register and key-value histories.
 *
 * A history is linearizable when every operation can be given a single
 * instant between its invocation and its completion such that, taken in the
 * order of those instants, the operations are a legal run of a sequential
 * model. The search is Wing and Gong's backtracking algorithm with Lowe's
 * memoization of (set of linearized operations, model state) ("Testing for
 * linearizability", Concurrency and Computation 2017), run per key
 * (P-compositionality: a history over independent keys is linearizable iff
 * each key's sub-history is), on several threads, with the pruning described
 * in wgl.c.
 *
 * Semantics follow Jepsen: `fail` means the operation did not happen; `info`
 * and invocations that never complete may take effect at any point after
 * their invocation, or never. Two options change how a history is read:
 * read_null (is a null read result the value null, or "not recorded") and
 * cas_fail (did a failed cas compare and find a different value, or not run
 * at all).
 *
 * Usage: create a history with the options, add events in file order
 * (normally from fl_hist_reader), then call chk_lin_check. The history owns
 * the result. Not thread-safe; chk_lin_check uses its own worker threads.
 */
#ifndef CHK_LINEAR_H
#define CHK_LINEAR_H

#include "arena.h"
#include "buf.h"
#include "history.h"
#include "json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum chk_model {
    CHK_MODEL_REGISTER,     /* read, write */
    CHK_MODEL_CAS_REGISTER, /* read, write, cas */
    CHK_MODEL_KV,           /* get, put, append on strings */
};

enum chk_read_null {
    CHK_READ_NULL_VALUE,   /* null is a state (the empty register) */
    CHK_READ_NULL_UNKNOWN, /* null means the value was not recorded */
};

enum chk_cas_fail {
    CHK_CAS_FAIL_NO_EFFECT,      /* the cas did not happen (Jepsen) */
    CHK_CAS_FAIL_COMPARE_FAILED, /* it ran and found another value */
};

enum chk_verdict {
    CHK_VALID,
    CHK_INVALID,
    CHK_UNKNOWN, /* a budget ran out before the search finished */
};

struct chk_lin_options {
    enum chk_model model;
    struct fl_json init; /* initial value of every key */
    bool has_init;       /* false: null for registers, "" for kv */
    enum chk_read_null read_null;
    enum chk_cas_fail cas_fail;
    double time_limit_s;        /* 0: none */
    int64_t memory_limit_bytes; /* 0: none */
    int threads;                /* 0: one per online CPU */
    bool all_keys; /* keep checking keys after one is not linearizable */
};

/* Sets the defaults: cas-register, null init, read_null value, cas_fail
 * no-effect, no limits, automatic thread count. */
void chk_lin_options_default(struct chk_lin_options *o);

/* Parse option names as the CLI and manifests spell them; 0 or FL_EINPUT. */
int chk_model_parse(const char *name, enum chk_model *out);
int chk_read_null_parse(const char *name, enum chk_read_null *out);
int chk_cas_fail_parse(const char *name, enum chk_cas_fail *out);
const char *chk_model_name(enum chk_model m);
const char *chk_verdict_name(enum chk_verdict v); /* "linearizable"... */

/* One operation as recorded, for reports. */
struct chk_lin_op {
    int64_t process;
    int64_t index;             /* the invocation's index field, or -1 */
    uint64_t invoke_line;      /* 0 for events that did not come from a file */
    uint64_t complete_line;    /* 0 when it never completed */
    enum fl_hist_type outcome; /* ok, fail or info; info if never completed */
    uint8_t f;                 /* internal operation code */
    int64_t key;               /* key id, -1 without a key */
    uint32_t arg;              /* value ids, see chk_lin_value_json */
    uint32_t arg2;
    uint32_t out;
};

struct chk_lin_key_result {
    int64_t key;
    enum chk_verdict verdict;
    size_t ops;      /* operations of this key */
    size_t searched; /* after pruning */
    /* For CHK_INVALID: */
    uint32_t failed_op; /* global operation number */
    uint32_t *prefix;   /* longest linearizable prefix, in order */
    size_t prefix_len;
    uint32_t *concurrent; /* operations overlapping failed_op */
    size_t concurrent_len;
    char **states; /* model states (JSON) reachable before failed_op */
    size_t states_len;
    bool states_truncated;
    char detail[96];  /* an explanation when one is known, or "" */
    char reason[160]; /* for CHK_UNKNOWN */
};

struct chk_lin_result {
    enum chk_verdict verdict;
    char reason[200]; /* for CHK_UNKNOWN */
    size_t ops;       /* operations in the history */
    size_t keys;
    size_t searched; /* operations left after pruning */
    size_t skipped;  /* keys left unchecked once the verdict was known */
    int64_t elapsed_ns;
    /* Keys that are not valid, invalid ones first, in key order. */
    struct chk_lin_key_result *bad;
    size_t bad_len;
};

struct chk_lin_history;

/* Creates an empty history. o is copied (init is deep-copied). */
int chk_lin_history_new(struct chk_lin_history **out,
                        const struct chk_lin_options *o);
void chk_lin_history_free(struct chk_lin_history *h);

/*
 * Returns the memory budget of h (its --memory-limit), so the reader that
 * feeds it can charge its own buffers to the same limit. Borrowed.
 */
struct fl_budget *chk_lin_history_budget(struct chk_lin_history *h);

/*
 * Adds one validated event (as fl_hist_reader returns them). Returns 0,
 * FL_EINPUT with the reason in msg (an f the model does not have, a value
 * the model cannot use, a key missing on some operations only), or
 * -ENOMEM / FL_EBUDGET.
 */
int chk_lin_history_add(struct chk_lin_history *h,
                        const struct fl_hist_event *ev, char *msg,
                        size_t msg_size);

/*
 * Runs the check. Returns 0 with *res filled (valid in *res until the history
 * is freed), or a negative error for failures other than running out of
 * budget, which yields CHK_UNKNOWN.
 */
int chk_lin_check(struct chk_lin_history *h, struct chk_lin_result *res);

/* Accessors for rendering results. */
const struct chk_lin_op *chk_lin_op_get(const struct chk_lin_history *h,
                                        uint32_t op);
size_t chk_lin_op_count(const struct chk_lin_history *h);
struct fl_str chk_lin_key_name(const struct chk_lin_history *h, int64_t key);

/* Appends value id as JSON. */
void chk_lin_value_json(const struct chk_lin_history *h, uint32_t id,
                        struct fl_buf *b);

/* Returns the operation's f as recorded ("cas", "append", ...). */
const char *chk_lin_op_f(const struct chk_lin_op *op);

/* Appends "process 3 cas [1,2] -> ok (lines 40-42)" or similar. */
void chk_lin_describe_op(const struct chk_lin_history *h, uint32_t op,
                         struct fl_buf *b);

/* Appends the result as a JSON object (the --json output). */
void chk_lin_result_json(const struct chk_lin_history *h,
                         const struct chk_lin_result *res, struct fl_buf *b);

/* Appends the human-readable report. */
void chk_lin_result_text(const struct chk_lin_history *h,
                         const struct chk_lin_result *res, struct fl_buf *b);

#endif
