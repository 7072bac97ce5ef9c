/*
 * The register workload: client threads that read, write and cas integer
 * registers on fl-raftd or fl-kvd and record each operation as it happens.
 * See register.h for the semantics of the recorded outcomes.
 *
 * Each thread is one client. It draws an operation, records the invocation,
 * runs the operation (retrying where the server certainly did not apply it)
 * and records the completion. Against fl-raftd a write is sent as
 * `SEQ n` followed by the command, inside the client's session, and every
 * retry of that write sends the same n. The cluster keeps, per session, the
 * last number it applied and the reply it gave, so a retry of a write that
 * did apply gets that reply back instead of applying twice.
 */
#include "register.h"

#include "clock.h"
#include "error.h"
#include "log.h"
#include "resp_client.h"
#include "rng.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "workload"

#define MAX_THREADS 4096
#define MAX_KEYS    (1u << 20)
/* Maximum number of final-read threads. Each reads a share of the keys. */
#define FINAL_READ_THREADS 16
/* Pause before trying another node when none is known to lead, or a node
 * refused the connection: long enough not to spin while an election runs,
 * short against an election timeout. */
#define NODE_PAUSE_NS (30 * FL_NSEC_PER_MSEC)

enum op_kind { OP_READ, OP_WRITE, OP_CAS };

struct op {
    enum op_kind kind;
    unsigned key;
    int64_t value;       /* write: the value; cas: the new value */
    int64_t expected;    /* cas */
    unsigned first_node; /* a read's first node, or 0: the current one */
};

/* The value a read returned. */
enum read_kind { READ_NULL, READ_INT, READ_TEXT };

struct read_result {
    enum read_kind kind;
    int64_t integer;
    struct fl_buf text; /* READ_TEXT: the reply, which is not an integer */
};

enum outcome { OUT_OK, OUT_FAIL, OUT_INFO };

/* One client thread's state. */
struct client {
    struct wl_reg *w;
    unsigned slot; /* thread number, 0-based */
    struct fl_rng rng;
    int64_t process;
    struct wl_resp_conn conn;
    unsigned node;         /* index into addrs of target, 0 for another one */
    char target[64];       /* address of the node to send to */
    uint64_t session;      /* fl-raftd session; 0 until a write needs one */
    uint64_t conn_session; /* session the open connection is in; 0: none */
    uint64_t seq;          /* number of the session's last write */
    int64_t unexpected_at; /* when an unexpected reply was last logged */
    uint64_t unexpected_quiet; /* unexpected replies not logged since */
    bool *seen;                /* per key: a non-null value was seen */
    int64_t *last_seen;        /* per key: the last non-null value seen */
    struct read_result read;
    pthread_t thread;
    bool started;
    /* Final reads: keys first_key, first_key + key_step, ... */
    unsigned first_key, key_step;
    int64_t final_process_base;
    int64_t final_deadline_ns;
    unsigned final_ok;
};

struct wl_reg {
    struct wl_reg_config c;
    double mix_total;
    int64_t connect_ns; /* maximum wait for one connect */
    struct client *clients;
    unsigned n_started;
    bool stopped;

    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond; /* on CLOCK_MONOTONIC */
    atomic_bool stopping;
    atomic_bool aborted; /* wl_reg_abort: settle every operation now */

    /* Taken around computing an event's time and writing it, so times in
     * the file never decrease even though several threads record. */
    pthread_mutex_t history_lock;

    atomic_uint_fast64_t ok, fail, info, retries;
    atomic_uint_fast64_t next_value; /* unique write values */
    atomic_int_fast64_t max_process; /* highest process number used */

    pthread_mutex_t error_lock;
    int error; /* first error that stopped a thread; 0: none */
    char error_msg[256];
};

/* ---- errors and the history ------------------------------------------- */

static void set_error(struct wl_reg *w, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Remembers the first error that stopped a thread, and logs every one. */
static void set_error(struct wl_reg *w, int rc, const char *fmt, ...)
{
    char msg[256];
    char quoted[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    FL_LOG_ERRORF(COMP, "client thread stopped", "error=%s",
                  fl_log_quote(quoted, sizeof(quoted), msg));
    pthread_mutex_lock(&w->error_lock);
    if (w->error == 0) {
        w->error = rc;
        snprintf(w->error_msg, sizeof(w->error_msg), "%s", msg);
    }
    pthread_mutex_unlock(&w->error_lock);
}

static void note_process(struct wl_reg *w, int64_t process)
{
    int_fast64_t seen = atomic_load(&w->max_process);

    while (process > seen &&
           !atomic_compare_exchange_weak(&w->max_process, &seen, process))
        ;
}

/*
 * Records one event of op for cl's process: an invocation, or a completion
 * of the given type. rv is the value an ok read returned. Returns 0, or the
 * writer's error, which is also remembered and ends the thread.
 */
static int record(struct client *cl, enum fl_hist_type type,
                  const struct op *op, const struct read_result *rv)
{
    struct wl_reg *w = cl->w;
    struct fl_hist_event ev;
    struct fl_json pair[2];
    char key[24];
    int rc;

    memset(&ev, 0, sizeof(ev));
    snprintf(key, sizeof(key), "k%u", op->key);
    ev.index = -1;
    ev.process = cl->process;
    ev.type = type;
    ev.key = fl_str_of(key);
    ev.value.kind = FL_JSON_NULL;
    switch (op->kind) {
    case OP_READ:
        ev.f = fl_str_of("read");
        if (type == FL_HIST_OK) {
            ev.has_value = true;
            if (rv->kind == READ_INT) {
                ev.value.kind = FL_JSON_INT;
                ev.value.u.i = rv->integer;
            } else if (rv->kind == READ_TEXT) {
                ev.value.kind = FL_JSON_STRING;
                ev.value.u.s = (struct fl_str){rv->text.data, rv->text.len};
                if (ev.value.u.s.ptr == NULL)
                    ev.value.u.s.ptr = "";
            }
        }
        break;
    case OP_WRITE:
        ev.f = fl_str_of("write");
        ev.has_value = true;
        ev.value.kind = FL_JSON_INT;
        ev.value.u.i = op->value;
        break;
    case OP_CAS:
        ev.f = fl_str_of("cas");
        ev.has_value = true;
        pair[0].kind = FL_JSON_INT;
        pair[0].u.i = op->expected;
        pair[1].kind = FL_JSON_INT;
        pair[1].u.i = op->value;
        ev.value.kind = FL_JSON_ARRAY;
        ev.value.u.array.items = pair;
        ev.value.u.array.count = 2;
        break;
    }

    pthread_mutex_lock(&w->history_lock);
    ev.time = fl_clock_now_ns() - w->c.time_base_ns;
    rc = fl_hist_writer_write(w->c.history, &ev);
    pthread_mutex_unlock(&w->history_lock);
    if (rc != 0) {
        const char *reason = rc == FL_EINPUT
                                 ? fl_hist_writer_error(w->c.history)
                                 : fl_strerror(rc);
        set_error(w, rc,
                  "writing the history failed for process %" PRId64 ": %s",
                  cl->process, reason);
        return rc;
    }
    if (type == FL_HIST_OK)
        atomic_fetch_add(&w->ok, 1);
    else if (type == FL_HIST_FAIL)
        atomic_fetch_add(&w->fail, 1);
    else if (type == FL_HIST_INFO)
        atomic_fetch_add(&w->info, 1);
    return 0;
}

/* ---- nodes and connections -------------------------------------------- */

static void use_node(struct client *cl, unsigned node)
{
    cl->node = node;
    snprintf(cl->target, sizeof(cl->target), "%s", cl->w->c.addrs[node]);
}

static void disconnect(struct client *cl)
{
    wl_resp_close(&cl->conn);
    cl->conn_session = 0;
}

/* Moves to the next configured node, after the one last used. */
static void next_node(struct client *cl)
{
    disconnect(cl);
    use_node(cl, cl->node % cl->w->c.n_nodes + 1);
}

/* Sleeps NODE_PAUSE_NS, or until deadline_ns when that comes first. */
static void pause_before_retry(int64_t deadline_ns)
{
    int64_t left = deadline_ns - fl_clock_now_ns();

    fl_clock_sleep_ns(left < NODE_PAUSE_NS ? left : NODE_PAUSE_NS);
}

/*
 * Handles a -NOTLEADER reply: text is what follows the word, " HOST:PORT"
 * or empty. Moves to the named leader, or to the next node when none is
 * named. Returns true when the caller should pause first.
 */
static bool follow_redirect(struct client *cl, struct fl_str text)
{
    const struct wl_reg_config *c = &cl->w->c;
    char addr[64];

    while (text.len > 0 && text.ptr[0] == ' ') {
        text.ptr++;
        text.len--;
    }
    disconnect(cl);
    if (text.len == 0 || text.len >= sizeof(addr)) {
        next_node(cl);
        return true;
    }
    memcpy(addr, text.ptr, text.len);
    addr[text.len] = '\0';
    for (unsigned i = 1; i <= c->n_nodes; i++) {
        if (strcmp(c->addrs[i], addr) == 0) {
            use_node(cl, i);
            return false;
        }
    }
    /* An address outside the configuration: connect to it as given, and
     * keep cl->node so that a failure moves on to the next configured
     * node. */
    snprintf(cl->target, sizeof(cl->target), "%s", addr);
    return false;
}

static bool has_prefix(struct fl_str s, const char *prefix)
{
    size_t n = strlen(prefix);

    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

/* Asks the connected node for a new session. Returns 0 or a negative
 * error; the connection is closed on error. */
static int open_session(struct client *cl, int64_t deadline_ns)
{
    struct fl_str argv[1] = {fl_str_of("SESSION")};
    struct wl_resp_reply r;
    int rc;

    wl_resp_append(&cl->conn, 1, argv);
    rc = wl_resp_flush(&cl->conn, deadline_ns, NULL);
    if (rc == 0)
        rc = wl_resp_read(&cl->conn, &r, deadline_ns);
    if (rc == 0 && (r.type != WL_RESP_INT || r.integer <= 0))
        rc = FL_EPROTO;
    if (rc != 0) {
        disconnect(cl);
        return rc;
    }
    cl->session = (uint64_t)r.integer;
    cl->conn_session = cl->session;
    cl->seq = 0;
    FL_LOG_DEBUGF(COMP, "opened a session",
                  "process=%" PRId64 " session=%" PRIu64 " node=%s",
                  cl->process, cl->session, cl->target);
    return 0;
}

/* ---- one operation ---------------------------------------------------- */

/* Writes v as the workload stores it and returns the length: the decimal
 * integer, then, when value_bytes is longer, '.' and letters that follow
 * from v up to value_bytes bytes. */
static size_t format_value(char *out, size_t size, int64_t v,
                           unsigned value_bytes)
{
    int n = snprintf(out, size, "%" PRId64, v);
    size_t len = n > 0 ? (size_t)n : 0;

    if (value_bytes > len + 1 && value_bytes < size) {
        out[len++] = '.';
        while (len < value_bytes) {
            out[len] = (char)('a' + ((uint64_t)v + len) % 26);
            len++;
        }
        out[len] = '\0';
    }
    return len;
}

static void take_read_value(struct client *cl, const struct wl_resp_reply *r)
{
    struct read_result *rv = &cl->read;
    int64_t v = 0;
    bool negative = false;
    size_t end = r->text.len;
    bool digits;
    size_t i = 0;

    fl_buf_clear(&rv->text);
    if (r->type == WL_RESP_NULL) {
        rv->kind = READ_NULL;
        return;
    }
    if (r->type == WL_RESP_INT) {
        rv->kind = READ_INT;
        rv->integer = r->integer;
        return;
    }
    /* A bulk or simple string: an integer when it is one exactly as the
     * workload wrote it, padding included. Anything else is recorded as
     * text, which no write produced, so the checker flags the read. */
    for (size_t k = 0; k < r->text.len; k++) {
        if (r->text.ptr[k] == '.') {
            end = k;
            break;
        }
    }
    if (end > 0 && r->text.ptr[0] == '-') {
        negative = true;
        i = 1;
    }
    digits = end > i && end - i <= 18;
    for (; digits && i < end; i++) {
        if (r->text.ptr[i] < '0' || r->text.ptr[i] > '9')
            digits = false;
        else
            v = v * 10 + (r->text.ptr[i] - '0');
    }
    if (digits && !(end > 1 && r->text.ptr[negative] == '0')) {
        char want[WL_MAX_VALUE_BYTES + 1];
        v = negative ? -v : v;
        size_t len = format_value(want, sizeof(want), v, cl->w->c.value_bytes);
        if (len == r->text.len && memcmp(want, r->text.ptr, len) == 0) {
            rv->kind = READ_INT;
            rv->integer = v;
            return;
        }
    }
    rv->kind = READ_TEXT;
    fl_buf_add(&rv->text, r->text.ptr, r->text.len);
}

/* Formats the operation's command into argv, whose strings point into
 * the caller's scratch space. Returns argc. */
static size_t format_command(const struct client *cl, const struct op *op,
                             struct fl_str *argv, char key[24],
                             char value[WL_MAX_VALUE_BYTES + 1],
                             char expected[WL_MAX_VALUE_BYTES + 1])
{
    unsigned pad = cl->w->c.value_bytes;

    snprintf(key, 24, "k%u", op->key);
    format_value(value, WL_MAX_VALUE_BYTES + 1, op->value, pad);
    format_value(expected, WL_MAX_VALUE_BYTES + 1, op->expected, pad);
    argv[1] = fl_str_of(key);
    switch (op->kind) {
    case OP_READ:
        argv[0] = fl_str_of("GET");
        return 2;
    case OP_WRITE:
        argv[0] = fl_str_of("SET");
        argv[2] = fl_str_of(value);
        return 3;
    case OP_CAS:
        argv[0] = fl_str_of("CAS");
        argv[2] = fl_str_of(expected);
        argv[3] = fl_str_of(value);
        return 4;
    }
    return 0;
}

static const char *op_name(enum op_kind kind)
{
    switch (kind) {
    case OP_READ:
        return "read";
    case OP_WRITE:
        return "write";
    case OP_CAS:
        return "cas";
    }
    return "?";
}

/* Logs a reply the protocol does not allow for the command, at most once
 * a second per client. A store that failed replies to every write with the
 * same error until it restarts, thousands of times a second. The next line
 * counts the replies left out. */
static void log_unexpected(struct client *cl, const struct op *op,
                           const struct wl_resp_reply *r)
{
    char text[128], quoted[300];
    size_t n = r->text.len < sizeof(text) - 1 ? r->text.len : sizeof(text) - 1;
    int64_t now = fl_clock_now_ns();

    if (cl->unexpected_at != 0 && now - cl->unexpected_at < FL_NSEC_PER_SEC) {
        cl->unexpected_quiet++;
        return;
    }
    if (n > 0)
        memcpy(text, r->text.ptr, n);
    text[n] = '\0';
    FL_LOG_WARNF(COMP, "unexpected reply",
                 "process=%" PRId64 " op=%s key=k%u node=%s type=%d reply=%s "
                 "not_logged=%" PRIu64,
                 cl->process, op_name(op->kind), op->key, cl->target,
                 (int)r->type, fl_log_quote(quoted, sizeof(quoted), text),
                 cl->unexpected_quiet);
    cl->unexpected_at = now;
    cl->unexpected_quiet = 0;
}

/* Settles op from the server's reply to its command. */
static enum outcome judge_reply(struct client *cl, const struct op *op,
                                const struct wl_resp_reply *r)
{
    switch (op->kind) {
    case OP_READ:
        if (r->type == WL_RESP_ERROR)
            break;
        take_read_value(cl, r);
        if (cl->read.kind == READ_INT) {
            cl->seen[op->key] = true;
            cl->last_seen[op->key] = cl->read.integer;
        }
        return OUT_OK;
    case OP_WRITE:
        if (r->type == WL_RESP_SIMPLE && fl_str_eq(r->text, "OK")) {
            cl->seen[op->key] = true;
            cl->last_seen[op->key] = op->value;
            return OUT_OK;
        }
        break;
    case OP_CAS:
        if (r->type == WL_RESP_INT && r->integer == 1) {
            cl->last_seen[op->key] = op->value;
            return OUT_OK;
        }
        if (r->type == WL_RESP_INT && r->integer == 0)
            return OUT_FAIL;
        break;
    }
    /* Any other reply. For fl-raftd an error can follow a proposal (out of
     * memory while waiting), and fl-kvd's engine errors can follow a
     * partial write, so a write's outcome is unknown. A read changed
     * nothing. */
    log_unexpected(cl, op, r);
    return op->kind == OP_READ ? OUT_FAIL : OUT_INFO;
}

/*
 * Sends op's command on the open connection and reads its reply into *r.
 * A fl-raftd write goes as `SESSION id` (when the connection is not yet in
 * the session) and `SEQ seq` before the command, pipelined. Sets *sent to
 * the bytes handed to the kernel. Returns 0, a negative error from the
 * connection, or 1 when the server rejected SESSION or SEQ (logged).
 */
static int send_request(struct client *cl, const struct op *op, size_t argc,
                        const struct fl_str *argv, uint64_t seq,
                        int64_t deadline_ns, struct wl_resp_reply *r,
                        size_t *sent)
{
    bool numbered = seq != 0;
    size_t preludes = 0;
    bool prelude_ok = true;
    struct fl_str extra[2];
    char session_text[24], seq_text[24];
    int rc;

    if (numbered && cl->conn_session != cl->session) {
        snprintf(session_text, sizeof(session_text), "%" PRIu64, cl->session);
        extra[0] = fl_str_of("SESSION");
        extra[1] = fl_str_of(session_text);
        wl_resp_append(&cl->conn, 2, extra);
        preludes++;
    }
    if (numbered) {
        snprintf(seq_text, sizeof(seq_text), "%" PRIu64, seq);
        extra[0] = fl_str_of("SEQ");
        extra[1] = fl_str_of(seq_text);
        wl_resp_append(&cl->conn, 2, extra);
        preludes++;
    }
    wl_resp_append(&cl->conn, argc, argv);
    rc = wl_resp_flush(&cl->conn, deadline_ns, sent);
    if (rc != 0)
        return rc;
    if (numbered)
        cl->conn_session = cl->session;
    /* The prelude replies come first, then the command's. */
    for (size_t i = 0; i <= preludes; i++) {
        rc = wl_resp_read(&cl->conn, r, deadline_ns);
        if (rc != 0)
            return rc;
        if (i < preludes &&
            !(r->type == WL_RESP_SIMPLE && fl_str_eq(r->text, "OK"))) {
            log_unexpected(cl, op, r);
            prelude_ok = false;
        }
    }
    return prelude_ok ? 0 : 1;
}

/*
 * Runs op until the server settles it or deadline_ns passes. Each attempt
 * gets at most attempt_ns. A read's value lands in cl->read.
 *
 * A write that may have reached the server before its connection broke or
 * its attempt timed out is retried only inside a fl-raftd session, under
 * the same sequence number. Against fl-kvd it ends as info at once.
 */
static enum outcome execute(struct client *cl, const struct op *op,
                            int64_t deadline_ns, int64_t attempt_ns)
{
    struct wl_reg *w = cl->w;
    bool raft = w->c.target == WL_TARGET_RAFT;
    bool write = op->kind != OP_READ;
    bool maybe_applied = false;
    unsigned redirects = 0;
    uint64_t seq = 0;
    struct fl_str argv[4];
    char key[24];
    char value[WL_MAX_VALUE_BYTES + 1], expected[WL_MAX_VALUE_BYTES + 1];
    size_t argc = format_command(cl, op, argv, key, value, expected);
    struct wl_resp_reply r;
    int rc;

    if (op->first_node != 0 && op->first_node != cl->node) {
        disconnect(cl);
        use_node(cl, op->first_node);
    }
    for (unsigned attempt = 0;; attempt++) {
        int64_t now = fl_clock_now_ns();
        if (now >= deadline_ns || atomic_load(&w->aborted))
            return write && maybe_applied ? OUT_INFO : OUT_FAIL;
        if (attempt > 0) {
            atomic_fetch_add(&w->retries, 1);
            FL_LOG_DEBUGF(COMP, "retrying",
                          "process=%" PRId64 " op=%s key=k%u node=%s",
                          cl->process, op_name(op->kind), op->key, cl->target);
        }
        int64_t attempt_end =
            attempt_ns < deadline_ns - now ? now + attempt_ns : deadline_ns;

        if (cl->conn.fd < 0) {
            int64_t connect_end = attempt_end - now > w->connect_ns
                                      ? now + w->connect_ns
                                      : attempt_end;
            rc = wl_resp_connect(&cl->conn, cl->target, connect_end);
            if (rc != 0) {
                /* Nothing was sent: try the next node. */
                FL_LOG_DEBUGF(COMP, "connect failed", "node=%s error=\"%s\"",
                              cl->target, fl_strerror(rc));
                next_node(cl);
                pause_before_retry(deadline_ns);
                continue;
            }
            cl->conn_session = 0;
        }
        if (raft && write) {
            if (cl->session == 0 && open_session(cl, attempt_end) != 0) {
                next_node(cl);
                pause_before_retry(deadline_ns);
                continue;
            }
            /* One number per operation, whichever attempt applies it. */
            if (seq == 0)
                seq = ++cl->seq;
        }

        size_t sent = 0;
        rc = send_request(cl, op, argc, argv, seq, attempt_end, &r, &sent);
        if (rc == 1) {
            /* The command ran without its number, so whether it applied is
             * unknown and a retry could apply it a second time. */
            disconnect(cl);
            return OUT_INFO;
        }
        if (rc != 0) {
            /* The request may have reached the server: a write's outcome
             * is unknown from here on unless a later reply settles it. */
            if (write && sent > 0)
                maybe_applied = true;
            FL_LOG_DEBUGF(COMP, "request failed",
                          "process=%" PRId64 " op=%s key=k%u node=%s "
                          "error=\"%s\"",
                          cl->process, op_name(op->kind), op->key, cl->target,
                          fl_strerror(rc));
            if (maybe_applied && !raft) {
                disconnect(cl);
                return OUT_INFO;
            }
            /* The node is dead, slow or cut off: a leader in a minority
             * partition never settles a request, so move on. */
            next_node(cl);
            continue;
        }

        if (r.type == WL_RESP_ERROR && has_prefix(r.text, "NOTLEADER")) {
            /* Not proposed, so not applied. */
            struct fl_str rest = {r.text.ptr + 9, r.text.len - 9};
            bool wait = follow_redirect(cl, rest);
            /* Two nodes can name each other while a leader steps down:
             * slow down once the redirects have gone round the cluster. */
            if (wait || ++redirects > w->c.n_nodes) {
                redirects = 0;
                pause_before_retry(deadline_ns);
            }
            continue;
        }
        if (r.type == WL_RESP_ERROR && has_prefix(r.text, "RETRY")) {
            /* Another entry took the proposal's place: it was not applied.
             * The node has likely lost the lead; resending finds out. */
            continue;
        }
        enum outcome out = judge_reply(cl, op, &r);
        if (out == OUT_INFO)
            disconnect(cl);
        return out;
    }
}

/* ---- the client threads ----------------------------------------------- */

static bool stopping(struct wl_reg *w)
{
    return atomic_load(&w->stopping);
}

/* Waits until at_ns (fl_clock_now_ns time) or until the workload stops. */
static void wait_until(struct wl_reg *w, int64_t at_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(at_ns / FL_NSEC_PER_SEC),
                          .tv_nsec = (long)(at_ns % FL_NSEC_PER_SEC)};

    pthread_mutex_lock(&w->stop_lock);
    while (!stopping(w) && fl_clock_now_ns() < at_ns) {
        int rc = pthread_cond_timedwait(&w->stop_cond, &w->stop_lock, &ts);
        if (rc == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&w->stop_lock);
}

static int64_t draw_value(struct client *cl)
{
    struct wl_reg *w = cl->w;

    if (w->c.value_max == 0)
        return (int64_t)atomic_fetch_add(&w->next_value, 1);
    return (int64_t)fl_rng_below(&cl->rng, w->c.value_max);
}

static void draw_op(struct client *cl, struct op *op)
{
    const struct wl_reg_config *c = &cl->w->c;
    double x = fl_rng_double(&cl->rng) * cl->w->mix_total;

    memset(op, 0, sizeof(*op));
    op->key = (unsigned)fl_rng_below(&cl->rng, c->keys);
    if (x < c->mix_read)
        op->kind = OP_READ;
    else if (x < c->mix_read + c->mix_write || c->mix_cas <= 0)
        op->kind = OP_WRITE;
    else
        op->kind = OP_CAS;
    /* A cas needs an expected value this client has seen. */
    if (op->kind == OP_CAS && !cl->seen[op->key])
        op->kind = OP_WRITE;
    if (op->kind != OP_READ)
        op->value = draw_value(cl);
    if (op->kind == OP_CAS)
        op->expected = cl->last_seen[op->key];
    if (op->kind == OP_READ && c->reads_anywhere &&
        c->target == WL_TARGET_RAFT && c->n_nodes > 1)
        op->first_node = 1 + (unsigned)fl_rng_below(&cl->rng, c->n_nodes);
}

/* Enters the configured network namespace, if any. Returns false (with the
 * error remembered) when that fails. */
static bool enter_netns(struct client *cl)
{
    if (cl->w->c.netns_fd < 0)
        return true;
    if (setns(cl->w->c.netns_fd, CLONE_NEWNET) != 0) {
        int rc = -errno;
        set_error(cl->w, rc, "setns into the network namespace failed: %s",
                  fl_strerror(rc));
        return false;
    }
    return true;
}

/* Runs one operation from invocation to completion and sets *out to its
 * outcome. Returns 0 or the history writer's error. */
static int run_op(struct client *cl, const struct op *op, int64_t deadline_ns,
                  int64_t attempt_ns, enum outcome *out)
{
    struct wl_reg *w = cl->w;
    int rc;

    rc = record(cl, FL_HIST_INVOKE, op, NULL);
    if (rc != 0)
        return rc;
    *out = execute(cl, op, deadline_ns, attempt_ns);
    if (*out == OUT_OK)
        return record(cl, FL_HIST_OK, op, &cl->read);
    if (*out == OUT_FAIL)
        return record(cl, FL_HIST_FAIL, op, NULL);

    rc = record(cl, FL_HIST_INFO, op, NULL);
    /* Jepsen's rule: an operation with an unknown outcome may still be in
     * flight, so the client goes on as a new process. The old session may
     * still apply that write; a new one starts clean. */
    cl->process += w->c.concurrency;
    note_process(w, cl->process);
    cl->session = 0;
    cl->seq = 0;
    disconnect(cl);
    return rc;
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    struct wl_reg *w = cl->w;
    int64_t timeout_ns = (int64_t)w->c.timeout_ms * FL_NSEC_PER_MSEC;
    /* Against a cluster, one node gets a quarter of the timeout. A leader
     * cut off from its peers never replies, and a client that waited the
     * whole timeout there would not reach the new leader in time. */
    int64_t attempt_ns = w->c.target == WL_TARGET_RAFT && w->c.n_nodes > 1
                             ? timeout_ns / 4
                             : timeout_ns;
    /* Each thread spaces its operations by concurrency / rate on average,
     * so the threads together approach the rate. */
    int64_t spacing_ns =
        w->c.rate > 0 ? (int64_t)((double)w->c.concurrency * 1e9 / w->c.rate)
                      : 0;
    int64_t next_start = fl_clock_now_ns();

    if (!enter_netns(cl))
        return NULL;
    while (!stopping(w)) {
        struct op op;
        enum outcome out;

        if (spacing_ns > 0) {
            wait_until(w, next_start);
            if (stopping(w))
                break;
        }
        draw_op(cl, &op);
        int64_t start = fl_clock_now_ns();
        /* Uniform in [0, 2 * spacing): the mean is the spacing, and the
         * threads do not fall into step with each other. */
        if (spacing_ns > 0)
            next_start = start + (int64_t)fl_rng_below(
                                     &cl->rng, (uint64_t)spacing_ns * 2);
        if (run_op(cl, &op, start + timeout_ns, attempt_ns, &out) != 0)
            break;
    }
    disconnect(cl);
    return NULL;
}

/* ---- life cycle -------------------------------------------------------- */

static int validate(const struct wl_reg_config *c, char *err, size_t size)
{
    if (c->target != WL_TARGET_RAFT && c->target != WL_TARGET_KV)
        return fl_input_error(err, size, "unknown target %d", (int)c->target);
    if (c->n_nodes < 1 || c->n_nodes > WL_MAX_NODES)
        return fl_input_error(err, size, "n_nodes must be 1 to %d, got %u",
                              WL_MAX_NODES, c->n_nodes);
    if (c->target == WL_TARGET_KV && c->n_nodes != 1)
        return fl_input_error(err, size,
                              "the kv target is one fl-kvd: n_nodes must be "
                              "1, got %u",
                              c->n_nodes);
    for (unsigned i = 1; i <= c->n_nodes; i++) {
        struct sockaddr_storage addr;
        unsigned len;
        if (memchr(c->addrs[i], '\0', sizeof(c->addrs[i])) == NULL ||
            wl_resp_parse_addr(c->addrs[i], &addr, &len) != 0)
            return fl_input_error(err, size,
                                  "addrs[%u] \"%.63s\" is not HOST:PORT with "
                                  "a numeric host",
                                  i, c->addrs[i]);
    }
    if (c->keys < 1 || c->keys > MAX_KEYS)
        return fl_input_error(err, size, "keys must be 1 to %u, got %u",
                              MAX_KEYS, c->keys);
    if (c->concurrency < 1 || c->concurrency > MAX_THREADS)
        return fl_input_error(err, size, "concurrency must be 1 to %u, got %u",
                              MAX_THREADS, c->concurrency);
    if (!isfinite(c->rate) || c->rate < 0)
        return fl_input_error(err, size,
                              "rate must be 0 or a positive number of "
                              "operations per second, got %g",
                              c->rate);
    if (!isfinite(c->mix_read) || !isfinite(c->mix_write) ||
        !isfinite(c->mix_cas) || c->mix_read < 0 || c->mix_write < 0 ||
        c->mix_cas < 0 || c->mix_read + c->mix_write + c->mix_cas <= 0)
        return fl_input_error(err, size,
                              "the read, write and cas weights must be "
                              "non-negative with a positive sum, got %g, %g, "
                              "%g",
                              c->mix_read, c->mix_write, c->mix_cas);
    if (c->mix_read + c->mix_write <= 0)
        return fl_input_error(err, size,
                              "a cas needs a value seen by a read or a "
                              "write: give read or write a positive weight");
    if (c->value_bytes > WL_MAX_VALUE_BYTES)
        return fl_input_error(err, size,
                              "value_bytes must be at most %d, got %u",
                              WL_MAX_VALUE_BYTES, c->value_bytes);
    if (c->timeout_ms <= 0)
        return fl_input_error(err, size, "timeout_ms must be positive, got %d",
                              c->timeout_ms);
    if (c->history == NULL)
        return fl_input_error(err, size, "history writer is missing");
    if (c->time_base_ns > fl_clock_now_ns())
        return fl_input_error(err, size,
                              "time_base_ns %" PRId64 " is in the future: "
                              "history times would be negative",
                              c->time_base_ns);
    return 0;
}

static int init_client(struct wl_reg *w, struct client *cl, unsigned slot)
{
    memset(cl, 0, sizeof(*cl));
    cl->w = w;
    cl->slot = slot;
    cl->process = slot;
    fl_rng_seed_stream(&cl->rng, w->c.seed, FL_RNG_STREAM_CLIENT + slot);
    wl_resp_init(&cl->conn);
    fl_buf_init(&cl->read.text);
    /* Spread the first connections over the nodes. */
    use_node(cl, slot % w->c.n_nodes + 1);
    cl->seen = calloc(w->c.keys, sizeof(*cl->seen));
    cl->last_seen = calloc(w->c.keys, sizeof(*cl->last_seen));
    if (cl->seen == NULL || cl->last_seen == NULL)
        return -ENOMEM;
    return 0;
}

static void destroy_client(struct client *cl)
{
    wl_resp_destroy(&cl->conn);
    fl_buf_free(&cl->read.text);
    free(cl->seen);
    free(cl->last_seen);
    cl->seen = NULL;
    cl->last_seen = NULL;
}

int wl_reg_start(struct wl_reg **out, const struct wl_reg_config *c, char *err,
                 size_t err_size)
{
    struct wl_reg *w;
    pthread_condattr_t attr;
    int rc;

    *out = NULL;
    if (c == NULL)
        return fl_input_error(err, err_size, "configuration is missing");
    rc = validate(c, err, err_size);
    if (rc != 0)
        return rc;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return fl_errorf(err, err_size, -ENOMEM,
                         "allocating the workload failed");
    w->c = *c;
    w->mix_total = c->mix_read + c->mix_write + c->mix_cas;
    w->connect_ns = (int64_t)c->timeout_ms * FL_NSEC_PER_MSEC / 4;
    if (w->connect_ns < 50 * FL_NSEC_PER_MSEC)
        w->connect_ns = 50 * FL_NSEC_PER_MSEC;
    if (w->connect_ns > FL_NSEC_PER_SEC)
        w->connect_ns = FL_NSEC_PER_SEC;
    pthread_mutex_init(&w->stop_lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->stop_cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->history_lock, NULL);
    pthread_mutex_init(&w->error_lock, NULL);
    atomic_init(&w->stopping, false);
    atomic_init(&w->aborted, false);
    atomic_init(&w->ok, 0);
    atomic_init(&w->fail, 0);
    atomic_init(&w->info, 0);
    atomic_init(&w->retries, 0);
    atomic_init(&w->next_value, 0);
    atomic_init(&w->max_process, (int_fast64_t)c->concurrency - 1);

    w->clients = calloc(c->concurrency, sizeof(*w->clients));
    if (w->clients == NULL) {
        rc = fl_errorf(err, err_size, -ENOMEM, "allocating %u clients failed",
                       c->concurrency);
        goto free_workload;
    }
    for (unsigned t = 0; t < c->concurrency; t++) {
        rc = init_client(w, &w->clients[t], t);
        if (rc != 0) {
            w->n_started = t + 1;
            rc = fl_errorf(err, err_size, rc, "allocating client %u failed", t);
            goto free_workload;
        }
    }
    w->n_started = c->concurrency;
    for (unsigned t = 0; t < c->concurrency; t++) {
        struct client *cl = &w->clients[t];
        rc = -pthread_create(&cl->thread, NULL, client_main, cl);
        if (rc != 0) {
            fl_errorf(err, err_size, rc, "starting client thread %u failed: %s",
                      t, fl_strerror(rc));
            goto free_workload;
        }
        cl->started = true;
    }
    FL_LOG_INFOF(COMP, "register workload started",
                 "target=%s nodes=%u threads=%u keys=%u rate=%g "
                 "timeout_ms=%d seed=%" PRIu64,
                 c->target == WL_TARGET_RAFT ? "raft" : "kv", c->n_nodes,
                 c->concurrency, c->keys, c->rate, c->timeout_ms, c->seed);
    *out = w;
    return 0;

free_workload:
    wl_reg_free(w);
    return rc;
}

void wl_reg_counts(const struct wl_reg *w, struct wl_reg_counts *out)
{
    out->ok = atomic_load(&w->ok);
    out->fail = atomic_load(&w->fail);
    out->info = atomic_load(&w->info);
    out->retries = atomic_load(&w->retries);
}

void wl_reg_stop(struct wl_reg *w)
{
    struct wl_reg_counts n;

    if (w == NULL || w->stopped)
        return;
    pthread_mutex_lock(&w->stop_lock);
    atomic_store(&w->stopping, true);
    pthread_cond_broadcast(&w->stop_cond);
    pthread_mutex_unlock(&w->stop_lock);
    for (unsigned t = 0; t < w->n_started; t++) {
        if (w->clients[t].started)
            pthread_join(w->clients[t].thread, NULL);
        w->clients[t].started = false;
    }
    w->stopped = true;
    wl_reg_counts(w, &n);
    FL_LOG_INFOF(COMP, "register workload stopped",
                 "ok=%" PRIu64 " fail=%" PRIu64 " info=%" PRIu64
                 " retries=%" PRIu64,
                 n.ok, n.fail, n.info, n.retries);
}

int wl_reg_error(const struct wl_reg *w, char *msg, size_t msg_size)
{
    /* Locking changes the mutex, not what the caller can observe. */
    struct wl_reg *m = (struct wl_reg *)w;
    int rc;

    pthread_mutex_lock(&m->error_lock);
    rc = m->error;
    if (msg_size > 0)
        snprintf(msg, msg_size, "%s", m->error_msg);
    pthread_mutex_unlock(&m->error_lock);
    return rc;
}

/* ---- final reads ------------------------------------------------------- */

static void *final_reads_main(void *arg)
{
    struct client *cl = arg;
    struct wl_reg *w = cl->w;
    int64_t attempt_ns = (int64_t)w->c.timeout_ms * FL_NSEC_PER_MSEC;

    if (!enter_netns(cl))
        return NULL;
    for (unsigned k = cl->first_key; k < w->c.keys; k += cl->key_step) {
        struct op op = {.kind = OP_READ, .key = k};
        enum outcome out;

        cl->process = cl->final_process_base + k;
        if (run_op(cl, &op, cl->final_deadline_ns, attempt_ns, &out) != 0)
            break;
        if (out == OUT_OK)
            cl->final_ok++;
    }
    disconnect(cl);
    return NULL;
}

int wl_reg_final_reads(struct wl_reg *w, int64_t deadline_ns)
{
    unsigned n_threads =
        w->c.keys < FINAL_READ_THREADS ? w->c.keys : FINAL_READ_THREADS;
    struct client *readers;
    int64_t base;
    unsigned started = 0;
    unsigned read = 0;
    int rc = 0;

    wl_reg_stop(w);
    rc = wl_reg_error(w, NULL, 0);
    if (rc != 0)
        return rc;
    readers = calloc(n_threads, sizeof(*readers));
    if (readers == NULL)
        return -ENOMEM;
    /* Process numbers past every one used so far, one per key. */
    base = atomic_load(&w->max_process) + 1;
    note_process(w, base + (int64_t)w->c.keys - 1);
    for (unsigned t = 0; t < n_threads; t++) {
        struct client *cl = &readers[t];
        rc = init_client(w, cl, t);
        if (rc != 0) {
            destroy_client(cl);
            break;
        }
        cl->first_key = t;
        cl->key_step = n_threads;
        cl->final_process_base = base;
        cl->final_deadline_ns = deadline_ns;
        rc = -pthread_create(&cl->thread, NULL, final_reads_main, cl);
        if (rc != 0) {
            FL_LOG_ERRORF(COMP, "starting a final read thread failed",
                          "error=\"%s\"", fl_strerror(rc));
            destroy_client(cl);
            break;
        }
        started++;
    }
    for (unsigned t = 0; t < started; t++) {
        pthread_join(readers[t].thread, NULL);
        read += readers[t].final_ok;
        destroy_client(&readers[t]);
    }
    free(readers);
    if (rc == 0)
        rc = wl_reg_error(w, NULL, 0);
    if (rc != 0)
        return rc;
    FL_LOG_INFOF(COMP, "final reads done", "keys=%u read=%u", w->c.keys, read);
    return (int)read;
}

void wl_reg_abort(struct wl_reg *w)
{
    atomic_store(&w->aborted, true);
    pthread_mutex_lock(&w->stop_lock);
    atomic_store(&w->stopping, true);
    pthread_cond_broadcast(&w->stop_cond);
    pthread_mutex_unlock(&w->stop_lock);
}

void wl_reg_free(struct wl_reg *w)
{
    if (w == NULL)
        return;
    wl_reg_stop(w);
    if (w->clients != NULL) {
        for (unsigned t = 0; t < w->n_started; t++)
            destroy_client(&w->clients[t]);
        free(w->clients);
    }
    pthread_mutex_destroy(&w->stop_lock);
    pthread_cond_destroy(&w->stop_cond);
    pthread_mutex_destroy(&w->history_lock);
    pthread_mutex_destroy(&w->error_lock);
    free(w);
}
