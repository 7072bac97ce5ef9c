/*
 * Error codes shared by every faultline module.
 *
 * Functions return 0 on success, -errno for an operating-system failure
 * captured right after the failing call, or one of the FL_E* codes below.
 * The project codes sit far below any errno value so the two ranges never
 * collide, and fl_strerror() describes both.
 */
#ifndef FL_ERROR_H
#define FL_ERROR_H

#include <stddef.h>

/* X(name, value, description) */
#define FL_ERROR_TABLE(X)                                                      \
    X(FL_EINPUT, -1000, "invalid input")                                       \
    X(FL_EUSAGE, -1001, "invalid command-line usage")                          \
    X(FL_ECORRUPT, -1002, "data corruption detected")                          \
    X(FL_EBUDGET, -1003, "time or memory budget exhausted")                    \
    X(FL_ESTICKY, -1004, "an earlier I/O failure; reopen to recover")          \
    X(FL_EPROTO, -1005, "protocol violation by the peer")                      \
    X(FL_ENOTFOUND, -1006, "not found")                                        \
    X(FL_ECANCELED, -1007, "operation canceled")                               \
    X(FL_EINTERNAL, -1008, "internal error")

enum {
#define FL__ERROR_ENUM(name, value, text) name = (value),
    FL_ERROR_TABLE(FL__ERROR_ENUM)
#undef FL__ERROR_ENUM
};

/* Returns a static description of code, which is 0, -errno or FL_E*. */
const char *fl_strerror(int code);

/*
 * Formats a reason for rejecting input into msg (truncated to size) and
 * returns FL_EINPUT, so validators can write `return fl_input_error(...)`.
 * Control characters, which input strings quoted in a reason may carry,
 * become '?' so a message cannot move the cursor or split a log line.
 */
int fl_input_error(char *msg, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats a description of a failure into msg (truncated to size) and
 * returns rc, so callers can write `return fl_errorf(...)`. */
int fl_errorf(char *msg, size_t size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Replaces the control characters of the C string s with '?'. */
void fl_scrub_controls(char *s);

#endif
