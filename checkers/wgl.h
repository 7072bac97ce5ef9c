/*
 * Internal interface between the linearizability driver (linear.c) and the
 * per-key search (wgl.c).
 */
#ifndef CHK_WGL_H
#define CHK_WGL_H

#include "arena.h"
#include "clock.h"
#include "hash.h"
#include "linear.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The role of an operation in the search. */
enum wgl_kind {
    WGL_READ,    /* pure: legal iff state == arg */
    WGL_CMPFAIL, /* pure: legal iff state != arg (a cas that compared) */
    WGL_WRITE,   /* state := arg */
    WGL_CAS,     /* legal iff state == arg; state := arg2 */
    WGL_APPEND,  /* state := state ++ arg (kv) */
};

static inline bool wgl_kind_pure(enum wgl_kind k)
{
    return k == WGL_READ || k == WGL_CMPFAIL;
}

/* One operation of a key's sub-history, ready for the search. */
struct wgl_op {
    uint32_t global; /* index into the history's operations */
    uint32_t call;   /* event sequence numbers; ret is UINT32_MAX for info */
    uint32_t ret;
    uint32_t arg;
    uint32_t arg2;
    uint8_t kind; /* enum wgl_kind */
    bool info;    /* may take effect any time after call, or never */
};

struct wgl_shared {
    struct fl_budget *budget;
    struct fl_deadline deadline;
    atomic_bool *cancel; /* set once the overall verdict is decided */
    const struct fl_strtab *values; /* frozen during the search */
};

/* wgl_run's result while the search is not finished. */
#define WGL_PAUSED 3

struct wgl_search;

/*
 * Prepares a search for a linearization of ops (n of them, sorted by call,
 * malloc'd; the search takes ownership even on failure) starting from state
 * init. Returns 0 or a negative error (FL_EBUDGET when out of memory
 * budget).
 */
int wgl_start(const struct wgl_shared *shared, struct wgl_op *ops, size_t n,
              uint32_t init, struct wgl_search **out);

/*
 * Runs the search for at most about max_steps steps. Returns CHK_VALID,
 * CHK_INVALID, CHK_UNKNOWN (deadline or cancellation; see wgl_reason),
 * WGL_PAUSED when it may be resumed, or a negative error (FL_EBUDGET when the
 * memory budget ran out).
 */
int wgl_run(struct wgl_search *s, uint64_t max_steps);

const char *wgl_reason(const struct wgl_search *s);

/* Fills the counterexample of an invalid search into kr (prefix and
 * concurrent hold global operation numbers, states hold JSON text; all
 * malloc'd). Returns 0 or -ENOMEM. */
int wgl_fill_invalid(struct wgl_search *s, struct chk_lin_key_result *kr);

void wgl_free(struct wgl_search *s);

/* Appends the JSON form of an encoded value (tag byte + payload). */
void wgl_encoded_json(struct fl_str enc, struct fl_buf *b);

#endif
