/*
 * Streaming reader and writer for histories (history.jsonl).
 *
 * A history is one JSON object a line, in real-time order:
 *
 *   {"index":0,"time":1200,"process":3,"type":"invoke","f":"cas","value":[1,2]}
 *   {"index":1,"time":3400,"process":3,"type":"ok","f":"cas","value":[1,2]}
 *
 * `type` is invoke, ok, fail (certainly did not happen) or info (unknown:
 * may have happened, at any time after the invocation). `index` is optional
 * and strictly increasing when present; `time` is a non-negative integer that
 * never decreases (nanoseconds since run start, or a sequence number);
 * `process` is a non-negative integer; `key` is an optional string; other
 * fields are ignored. A process has at most one open invocation, each
 * completion closes the open invocation of its process with the same f and
 * key, and a process whose operation ended in info never invokes again.
 *
 * Value shapes for the operations faultline's models know (others are free):
 *   read, get      invocation null or absent; ok: null, integer or string
 *   write          an integer, string or null
 *   cas            [expected, new], each an integer, string or null
 *   put, append    a string
 * Completions of write, cas, put and append repeat their invocation's value
 * or omit it.
 *
 * The reader validates all of this and reports the first violation as
 * "file:line: reason"; the writer applies the same rules to what it is given,
 * so a buggy client cannot record a history the checkers would reject.
 */
#ifndef FL_HISTORY_H
#define FL_HISTORY_H

#include "arena.h"
#include "buf.h"
#include "hash.h"
#include "json.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum fl_hist_type {
    FL_HIST_INVOKE,
    FL_HIST_OK,
    FL_HIST_FAIL,
    FL_HIST_INFO,
};

/* Returns "invoke", "ok", "fail" or "info". */
const char *fl_hist_type_name(enum fl_hist_type type);

struct fl_hist_event {
    int64_t index; /* -1 when absent */
    int64_t time;
    int64_t process;
    enum fl_hist_type type;
    struct fl_str f;
    struct fl_str key;    /* .ptr is NULL when the event has no key */
    struct fl_json value; /* FL_JSON_NULL when absent (see has_value) */
    bool has_value;
    uint64_t line;        /* 1-based line in the file; set by the reader */
    uint64_t invoke_line; /* completions: line of the invocation they close */
};

/* Longest line the reader accepts. */
#define FL_HIST_MAX_LINE (16u << 20)

/* ---- validation shared by the reader and the writer -------------------- */

struct fl_hist_proc;

/*
 * The rules above, applied to one event at a time. Tracks open invocations
 * per process; memory grows with the number of processes and distinct f and
 * key strings, not with the length of the history.
 */
struct fl_hist_tracker {
    struct fl_map64 procs; /* process -> index into slots */
    struct fl_hist_proc *slots;
    size_t nslots;
    size_t slots_cap;
    struct fl_strtab names; /* f and key strings */
    struct fl_buf scratch;  /* a completion's value, serialized */
    size_t open;            /* invocations without a completion so far */
    bool have_last;
    int64_t last_time;
    int64_t last_index;
    struct fl_budget *budget;
};

void fl_hist_tracker_init(struct fl_hist_tracker *t, struct fl_budget *budget);
void fl_hist_tracker_destroy(struct fl_hist_tracker *t);

/*
 * Checks ev against the rules and the events before it. On success records
 * it, sets ev->invoke_line for completions (0 when ev->line is 0) and
 * returns 0. Otherwise writes the reason to msg and returns FL_EINPUT, or
 * -ENOMEM / FL_EBUDGET; the tracker is unchanged on failure.
 */
int fl_hist_tracker_feed(struct fl_hist_tracker *t, struct fl_hist_event *ev,
                         char *msg, size_t msg_size);

/* ---- reader ------------------------------------------------------------ */

struct fl_hist_reader;

/*
 * Opens path ("-" reads standard input). Allocations are charged to budget,
 * which may be NULL. Returns 0 or -errno; on failure *out is NULL.
 */
int fl_hist_reader_open(struct fl_hist_reader **out, const char *path,
                        struct fl_budget *budget);

/* Reads from len bytes at data (borrowed until close); name labels errors. */
int fl_hist_reader_open_mem(struct fl_hist_reader **out, const char *name,
                            const void *data, size_t len,
                            struct fl_budget *budget);

/*
 * Reads the next event into *ev, whose strings and value stay valid until
 * the next call. Returns 1 for an event, 0 at the end of the input, or a
 * negative error (FL_EINPUT for malformed input, -errno for I/O, FL_EBUDGET)
 * whose description fl_hist_reader_error returns. Errors are sticky.
 */
int fl_hist_reader_next(struct fl_hist_reader *r, struct fl_hist_event *ev);

/* Returns "file:line: reason" for the last error, or "" when there is none. */
const char *fl_hist_reader_error(const struct fl_hist_reader *r);

/* Returns the number of invocations still open (meaningful at the end). */
size_t fl_hist_reader_open_count(const struct fl_hist_reader *r);

/* Returns the number of lines consumed so far. */
uint64_t fl_hist_reader_line(const struct fl_hist_reader *r);

void fl_hist_reader_close(struct fl_hist_reader *r);

/* ---- writer ------------------------------------------------------------ */

struct fl_hist_writer;

/* Creates or truncates path. Returns 0 or -errno. */
int fl_hist_writer_open(struct fl_hist_writer **out, const char *path);

/* Writes to stream, which stays the caller's; close does not close it. */
int fl_hist_writer_stream(struct fl_hist_writer **out, FILE *stream);

/*
 * Validates ev and appends it as one line. When ev->index is negative the
 * writer numbers events 0, 1, 2, ... itself. Safe to call from several
 * threads. Returns 0, FL_EINPUT (see fl_hist_writer_error) or -errno.
 * Line numbers in messages count the lines this writer has written.
 */
int fl_hist_writer_write(struct fl_hist_writer *w,
                         const struct fl_hist_event *ev);

/* Returns the reason for the last FL_EINPUT, or "". */
const char *fl_hist_writer_error(const struct fl_hist_writer *w);

int fl_hist_writer_flush(struct fl_hist_writer *w);

/*
 * Flushes, fsyncs and closes a file opened by fl_hist_writer_open, or only
 * flushes a borrowed stream, and frees w. Returns the first error seen.
 */
int fl_hist_writer_close(struct fl_hist_writer *w);

/*
 * Appends ev to b as one JSON line without the newline. The value field is
 * left out when ev->has_value is false.
 */
void fl_hist_format(struct fl_buf *b, const struct fl_hist_event *ev);

#endif
