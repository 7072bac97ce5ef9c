/*
 * The epoll loop of fl-kvd. See server.h.
 */
#include "server.h"

#include "arena.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "resp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
/* A client that does not read its replies stops being read from past this
 * many unsent bytes. */
#define OUT_HIGH_WATER (64u << 20)
/* After SIGTERM, clients that have not taken their replies by then are
 * dropped. Their writes are durable already; only the replies are lost. */
#define DRAIN_SECONDS 5
/* Descriptors kept free beyond the clients: the standard streams, the
 * lock, the log segments, the watermark, a snapshot being written, a
 * directory listing, the listening socket, epoll, the signalfd, the eventfd
 * and the spare descriptor, with room to spare. */
#define FD_RESERVE 32
/* A buffer a client has emptied is freed when it grew past this, so a
 * client that caught up on a burst of replies does not keep the memory. */
#define KEEP_BUFFER (256u << 10)

enum tag { TAG_LISTEN, TAG_SIGNAL, TAG_NOTIFY, TAG_CLIENT };

struct mark {
    uint64_t wait; /* record that must be durable first */
    size_t end;    /* the reply ends here in pending */
};

struct client {
    enum tag tag; /* first, so epoll data can point at any struct */
    int fd;
    uint64_t id;
    struct kv_resp_parser *parser;
    struct fl_buf in;
    size_t in_start; /* bytes of in already parsed */
    struct fl_buf out;
    size_t out_sent;
    struct fl_buf pending; /* replies waiting for durability, in order */
    size_t pending_sent;   /* bytes of pending already moved to out */
    struct mark *marks;
    size_t nmarks;
    size_t marks_head;
    size_t marks_cap;
    bool closing;  /* parse nothing more; close once out is sent */
    bool eof;      /* the peer sent FIN: close once every reply is sent */
    bool writable; /* EPOLLOUT is armed */
    bool reading;  /* EPOLLIN is armed */
    struct client *prev;
    struct client *next;
};

struct tagged {
    enum tag tag;
};

struct server {
    struct kv_engine *engine;
    const struct kv_server_options *o;
    struct kv_resp_limits limits;
    int epfd;
    int listen_fd;
    int signal_fd;
    struct tagged listen_tag;
    struct tagged signal_tag;
    struct tagged notify_tag;
    struct client *clients;
    size_t nclients;
    uint64_t next_id;
    uint64_t commands;
    bool stopping;
    int64_t drain_deadline_ns; /* when stopping: give up on clients then */
    size_t max_clients;        /* o->max_clients, lowered to the fd limit */
    int spare_fd;        /* kept open to accept and close when out of fds */
    uint64_t refused;    /* connections closed for lack of descriptors */
    uint64_t rejected;   /* connections closed at max_clients */
    struct fl_buf value; /* scratch for GET */
    char err[512];
};

/* ---- replies ----------------------------------------------------------- */

/* Returns the buffer a reply with this wait goes to: straight to out when
 * nothing is held back and it is durable already. */
static struct fl_buf *reply_buf(struct server *s, struct client *c,
                                uint64_t wait)
{
    if (c->nmarks == c->marks_head && wait <= kv_durable(s->engine))
        return &c->out;
    return &c->pending;
}

/* Records the end of a reply written to reply_buf(). */
static void reply_done(struct client *c, struct fl_buf *b, uint64_t wait)
{
    if (b == &c->out)
        return;
    if (c->nmarks == c->marks_cap) {
        if (fl_vec_reserve((void **)&c->marks, &c->marks_cap, c->nmarks + 1,
                           sizeof(*c->marks), NULL) != 0) {
            c->pending.failed = true;
            return;
        }
    }
    c->marks[c->nmarks].wait = wait;
    c->marks[c->nmarks].end = c->pending.len;
    c->nmarks++;
}

/* Bytes of replies a client has not received yet, held or unsent, with
 * the marks that hold them. */
static size_t backlog(const struct client *c)
{
    return (c->out.len - c->out_sent) + (c->pending.len - c->pending_sent) +
           (c->nmarks - c->marks_head) * sizeof(struct mark);
}

/* Empties b, freeing its memory when it grew large. */
static void clear_buffer(struct fl_buf *b)
{
    if (b->cap > KEEP_BUFFER) {
        fl_buf_free(b);
        fl_buf_init(b);
    } else {
        fl_buf_clear(b);
    }
}

/* Moves the replies that are durable now from pending to out. When the
 * engine has failed, the held replies become errors. */
static void release(struct server *s, struct client *c)
{
    uint64_t durable = kv_durable(s->engine);
    bool failed = kv_error(s->engine)[0] != '\0';

    while (c->marks_head < c->nmarks) {
        struct mark *m = &c->marks[c->marks_head];
        if (m->wait <= durable) {
            fl_buf_add(&c->out, c->pending.data + c->pending_sent,
                       m->end - c->pending_sent);
        } else if (failed) {
            kv_resp_add_errorf(&c->out, "ERR engine failed: %s",
                               kv_error(s->engine));
        } else {
            break;
        }
        c->pending_sent = m->end;
        c->marks_head++;
    }
    if (c->marks_head == c->nmarks) {
        clear_buffer(&c->pending);
        c->pending_sent = 0;
        c->marks_head = 0;
        c->nmarks = 0;
        if (c->marks_cap * sizeof(struct mark) > KEEP_BUFFER) {
            free(c->marks);
            c->marks = NULL;
            c->marks_cap = 0;
        }
    }
}

static void reply_engine_error(struct server *s, struct client *c, int rc)
{
    struct fl_buf *b = reply_buf(s, c, 0);

    if (rc == FL_ESTICKY)
        kv_resp_add_errorf(b, "ERR engine failed: %s", kv_error(s->engine));
    else if (rc == FL_EINPUT)
        kv_resp_add_error(b, "ERR key or value too large");
    else
        kv_resp_add_errorf(b, "ERR %s", fl_strerror(rc));
    reply_done(c, b, 0);
}

/* ---- commands ---------------------------------------------------------- */

static bool arity(struct server *s, struct client *c,
                  const struct kv_resp_cmd *cmd, size_t min, size_t max)
{
    struct fl_buf *b;

    if (cmd->argc >= min && cmd->argc <= max)
        return true;
    b = reply_buf(s, c, 0);
    kv_resp_add_errorf(b, "ERR wrong number of arguments for '%.*s' command",
                       (int)(cmd->argv[0].len > 32 ? 32 : cmd->argv[0].len),
                       cmd->argv[0].ptr);
    reply_done(c, b, 0);
    return false;
}

static void cmd_get(struct server *s, struct client *c,
                    const struct kv_resp_cmd *cmd)
{
    bool found;
    uint64_t wait;
    int rc = kv_get(s->engine, cmd->argv[1], &s->value, &found, &wait);
    struct fl_buf *b;

    if (rc != 0) {
        reply_engine_error(s, c, rc);
        return;
    }
    b = reply_buf(s, c, wait);
    if (found)
        kv_resp_add_bulk(b, s->value.data, s->value.len);
    else
        kv_resp_add_null(b);
    reply_done(c, b, wait);
}

static void cmd_set(struct server *s, struct client *c,
                    const struct kv_resp_cmd *cmd)
{
    uint64_t wait;
    int rc = kv_put(s->engine, cmd->argv[1], cmd->argv[2], &wait);
    struct fl_buf *b;

    if (rc != 0) {
        reply_engine_error(s, c, rc);
        return;
    }
    b = reply_buf(s, c, wait);
    kv_resp_add_simple(b, "OK");
    reply_done(c, b, wait);
}

static void cmd_del(struct server *s, struct client *c,
                    const struct kv_resp_cmd *cmd)
{
    uint64_t wait = 0;
    int64_t deleted = 0;
    struct fl_buf *b;

    for (size_t i = 1; i < cmd->argc; i++) {
        bool existed;
        uint64_t w;
        int rc = kv_delete(s->engine, cmd->argv[i], &existed, &w);
        if (rc != 0) {
            reply_engine_error(s, c, rc);
            return;
        }
        deleted += existed;
        if (w > wait)
            wait = w;
    }
    b = reply_buf(s, c, wait);
    kv_resp_add_int(b, deleted);
    reply_done(c, b, wait);
}

static void cmd_cas(struct server *s, struct client *c,
                    const struct kv_resp_cmd *cmd)
{
    bool swapped;
    uint64_t wait;
    int rc = kv_cas(s->engine, cmd->argv[1], cmd->argv[2], cmd->argv[3],
                    &swapped, &wait);
    struct fl_buf *b;

    if (rc != 0) {
        reply_engine_error(s, c, rc);
        return;
    }
    b = reply_buf(s, c, wait);
    kv_resp_add_int(b, swapped);
    reply_done(c, b, wait);
}

static const char *sync_name(const struct kv_stats *st, char *buf, size_t size)
{
    if (st->sync == KV_SYNC_ALWAYS)
        return "always";
    if (st->sync == KV_SYNC_NONE)
        return "none";
    snprintf(buf, size, "batch:%u", st->batch_ms);
    return buf;
}

static void cmd_info(struct server *s, struct client *c)
{
    struct kv_stats st;
    struct fl_buf text;
    struct fl_buf *b;
    char sync[32];

    kv_stats(s->engine, &st);
    fl_buf_init(&text);
    fl_buf_printf(&text,
                  "# Server\r\nrole:primary\r\nsync:%s\r\n"
                  "connected_clients:%zu\r\ncommands_processed:%" PRIu64
                  "\r\n# Storage\r\nlast_seq:%" PRIu64
                  "\r\ndurable_seq:%" PRIu64 "\r\nkeys:%" PRIu64
                  "\r\nbytes:%" PRIu64 "\r\nlast_applied:%" PRIu64
                  "\r\nsnapshot_seq:%" PRIu64 "\r\nsnapshots:%" PRIu64
                  "\r\nsyncs:%" PRIu64 "\r\nrecovered_records:%" PRIu64
                  "\r\ntruncated_bytes:%" PRIu64 "\r\nfailed:%d\r\n",
                  sync_name(&st, sync, sizeof(sync)), s->nclients, s->commands,
                  st.last_seq, st.durable_seq, st.keys, st.bytes,
                  st.last_applied, st.snapshot_seq, st.snapshots, st.syncs,
                  st.recovered, st.truncated, st.failed ? 1 : 0);
    b = reply_buf(s, c, 0);
    kv_resp_add_bulk(b, text.data, text.len);
    reply_done(c, b, 0);
    fl_buf_free(&text);
}

static void simple(struct server *s, struct client *c, const char *text)
{
    struct fl_buf *b = reply_buf(s, c, 0);
    kv_resp_add_simple(b, text);
    reply_done(c, b, 0);
}

static void run_command(struct server *s, struct client *c,
                        const struct kv_resp_cmd *cmd)
{
    struct fl_buf *b;

    s->commands++;
    for (size_t i = 1; i < cmd->argc; i++) {
        if (cmd->argv[i].len > s->o->max_value) {
            b = reply_buf(s, c, 0);
            kv_resp_add_errorf(b,
                               "ERR argument of %zu bytes exceeds the "
                               "limit of %zu",
                               cmd->argv[i].len, s->o->max_value);
            reply_done(c, b, 0);
            /* As for an oversized bulk string, which the parser rejects. */
            c->closing = true;
            return;
        }
    }
    if (kv_resp_is(cmd, "GET")) {
        if (arity(s, c, cmd, 2, 2))
            cmd_get(s, c, cmd);
    } else if (kv_resp_is(cmd, "SET")) {
        if (arity(s, c, cmd, 3, 3))
            cmd_set(s, c, cmd);
    } else if (kv_resp_is(cmd, "DEL")) {
        if (arity(s, c, cmd, 2, SIZE_MAX))
            cmd_del(s, c, cmd);
    } else if (kv_resp_is(cmd, "CAS")) {
        if (arity(s, c, cmd, 4, 4))
            cmd_cas(s, c, cmd);
    } else if (kv_resp_is(cmd, "PING")) {
        if (!arity(s, c, cmd, 1, 2))
            return;
        if (cmd->argc == 1) {
            simple(s, c, "PONG");
        } else {
            b = reply_buf(s, c, 0);
            kv_resp_add_bulk(b, cmd->argv[1].ptr, cmd->argv[1].len);
            reply_done(c, b, 0);
        }
    } else if (kv_resp_is(cmd, "ECHO")) {
        if (!arity(s, c, cmd, 2, 2))
            return;
        b = reply_buf(s, c, 0);
        kv_resp_add_bulk(b, cmd->argv[1].ptr, cmd->argv[1].len);
        reply_done(c, b, 0);
    } else if (kv_resp_is(cmd, "INFO")) {
        cmd_info(s, c);
    } else if (kv_resp_is(cmd, "DBSIZE")) {
        struct kv_stats st;
        kv_stats(s->engine, &st);
        /* The count includes writes not yet durable, so it waits for them
         * as a read of those keys would. */
        b = reply_buf(s, c, st.last_seq);
        kv_resp_add_int(b, (int64_t)st.keys);
        reply_done(c, b, st.last_seq);
    } else if (kv_resp_is(cmd, "SAVE")) {
        int rc = kv_snapshot(s->engine);
        if (rc != 0)
            reply_engine_error(s, c, rc);
        else
            simple(s, c, "OK");
    } else if (kv_resp_is(cmd, "COMMAND") || kv_resp_is(cmd, "CONFIG")) {
        /* redis-cli and redis-benchmark send these on connect. An empty
         * reply makes them carry on without hints or settings. */
        b = reply_buf(s, c, 0);
        kv_resp_add_array(b, 0);
        reply_done(c, b, 0);
    } else if (kv_resp_is(cmd, "QUIT")) {
        simple(s, c, "OK");
        c->closing = true;
    } else {
        b = reply_buf(s, c, 0);
        kv_resp_add_errorf(b, "ERR unknown command '%.*s'",
                           (int)(cmd->argv[0].len > 32 ? 32 : cmd->argv[0].len),
                           cmd->argv[0].ptr);
        reply_done(c, b, 0);
    }
}

/* ---- clients ----------------------------------------------------------- */

static void arm(struct server *s, struct client *c)
{
    bool want_out = c->out.len > c->out_sent;
    bool want_in = !c->closing && !c->eof && backlog(c) < OUT_HIGH_WATER;
    struct epoll_event ev = {0};

    if (want_out == c->writable && want_in == c->reading)
        return;
    ev.events = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->writable = want_out;
    c->reading = want_in;
}

static void drop_client(struct server *s, struct client *c)
{
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nclients--;
    kv_resp_parser_free(c->parser);
    fl_buf_free(&c->in);
    fl_buf_free(&c->out);
    fl_buf_free(&c->pending);
    free(c->marks);
    FL_LOG_DEBUGF("kvd", "client closed", "client=%" PRIu64, c->id);
    free(c);
}

/*
 * Reads and discards what the client sent after the request that made the
 * server close the connection. Closing a socket with unread input sends a
 * reset, and a reset can make the client's kernel discard the error reply
 * before the client reads it. Bounded, so a client that keeps sending
 * cannot hold the loop.
 */
static void discard_input(struct client *c)
{
    char chunk[READ_CHUNK];

    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(c->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (n <= 0)
            break;
    }
    shutdown(c->fd, SHUT_WR);
}

/* Checks whether a client is done: nothing more will be parsed and every
 * reply has been sent. */
static bool finished(const struct client *c)
{
    bool no_input = c->closing || (c->eof && c->in.len == 0);

    return no_input && c->nmarks == c->marks_head && c->out_sent == c->out.len;
}

/* Sends what it can; returns false when the client is gone. */
static bool flush_out(struct server *s, struct client *c)
{
    while (c->out_sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_sent,
                         c->out.len - c->out_sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            drop_client(s, c);
            return false;
        }
        c->out_sent += (size_t)n;
    }
    if (c->out_sent == c->out.len) {
        clear_buffer(&c->out);
        c->out_sent = 0;
    } else if (c->out_sent >= KEEP_BUFFER && c->out_sent >= c->out.len / 2) {
        /* Drop the bytes already sent, so a client that reads slowly but
         * steadily holds only what it has not received. */
        size_t left = c->out.len - c->out_sent;
        memmove(c->out.data, c->out.data + c->out_sent, left);
        c->out.len = left;
        c->out_sent = 0;
    }
    if (finished(c)) {
        if (c->closing)
            discard_input(c);
        drop_client(s, c);
        return false;
    }
    arm(s, c);
    return true;
}

/* Runs the complete commands in c->in until the client's unreceived
 * replies reach OUT_HIGH_WATER, so a client that sends many requests and
 * reads no replies uses a bounded amount of memory. */
static void parse_input(struct server *s, struct client *c)
{
    while (!c->closing && backlog(c) < OUT_HIGH_WATER) {
        struct kv_resp_cmd cmd;
        size_t consumed = 0;
        int rc = kv_resp_parse(c->parser, c->in.data + c->in_start,
                               c->in.len - c->in_start, &cmd, &consumed);
        c->in_start += consumed;
        if (rc == KV_RESP_COMMAND) {
            run_command(s, c, &cmd);
            continue;
        }
        if (rc == KV_RESP_NEED_MORE)
            break;
        struct fl_buf *b = reply_buf(s, c, 0);
        if (rc == -ENOMEM) {
            kv_resp_add_error(b, "ERR out of memory parsing the request");
            FL_LOG_WARNF("kvd", "out of memory parsing a request",
                         "client=%" PRIu64, c->id);
        } else {
            kv_resp_add_errorf(b, "ERR Protocol error: %s",
                               kv_resp_parser_error(c->parser));
            FL_LOG_DEBUGF("kvd", "protocol error", "client=%" PRIu64, c->id);
        }
        reply_done(c, b, 0);
        c->closing = true;
    }
    /* Keep only the unparsed bytes. */
    if (c->in_start > 0) {
        size_t left = c->in.len - c->in_start;
        memmove(c->in.data, c->in.data + c->in_start, left);
        c->in.len = left;
        c->in_start = 0;
    }
    if (c->eof && !c->closing && backlog(c) < OUT_HIGH_WATER && c->in.len > 0) {
        /* The peer is done sending and the rest is no complete command:
         * drop it and close once the replies are sent. */
        c->in.len = 0;
        c->closing = true;
    }
    if (c->in.len == 0 && c->in.cap > KEEP_BUFFER)
        clear_buffer(&c->in);
}

/* Parses what is buffered, releases durable replies and sends them, again
 * while sending makes room under OUT_HIGH_WATER for more buffered
 * commands. Returns false when the client is gone. */
static bool serve(struct server *s, struct client *c)
{
    for (;;) {
        size_t before = c->in.len;
        parse_input(s, c);
        release(s, c);
        if (!flush_out(s, c))
            return false;
        if (c->in.len == 0 || c->in.len == before || c->closing ||
            backlog(c) >= OUT_HIGH_WATER)
            return true;
    }
}

static bool read_input(struct server *s, struct client *c)
{
    char chunk[READ_CHUNK];

    while (!c->closing && !c->eof && backlog(c) < OUT_HIGH_WATER) {
        ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            drop_client(s, c);
            return false;
        }
        if (n == 0) {
            /* A half-close: the peer may still read the replies to what
             * it sent. */
            c->eof = true;
            break;
        }
        fl_buf_add(&c->in, chunk, (size_t)n);
        if (c->in.failed) {
            drop_client(s, c);
            return false;
        }
        parse_input(s, c);
        /* A short read drained the socket; epoll is level-triggered and
         * reports whatever arrives next, so skip the recv that would only
         * return EAGAIN. */
        if ((size_t)n < sizeof(chunk))
            break;
    }
    return serve(s, c);
}

/* Accepts one pending connection and closes it at once, for when no
 * descriptor is left to serve it: the spare descriptor is given up for the
 * moment. Without this the level-triggered listening socket would report
 * the same connection again and again. */
static void refuse_one(struct server *s)
{
    static const char msg[] = "-ERR server out of file descriptors\r\n";

    if (s->spare_fd >= 0) {
        close(s->spare_fd);
        s->spare_fd = -1;
    }
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
        ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        close(fd);
    }
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    s->refused++;
    /* Logged at 1, 2, 4, 8, ... so a flood of connections is counted
     * without flooding the log. */
    if ((s->refused & (s->refused - 1)) == 0)
        FL_LOG_WARNF("kvd", "refused connections: out of file descriptors",
                     "refused=%" PRIu64 " clients=%zu", s->refused,
                     s->nclients);
}

static void accept_clients(struct server *s)
{
    for (;;) {
        int fd =
            accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct client *c;
        struct epoll_event ev = {0};
        int one = 1;

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                refuse_one(s);
            else if (errno != EAGAIN && errno != EWOULDBLOCK &&
                     errno != EINTR && errno != ECONNABORTED)
                FL_LOG_WARNF("kvd", "accept failed", "error=\"%s\"",
                             strerror(errno));
            return;
        }
        if (s->nclients >= s->max_clients) {
            static const char full[] = "-ERR max number of clients reached\r\n";
            ssize_t w = send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL);
            (void)w;
            close(fd);
            s->rejected++;
            if ((s->rejected & (s->rejected - 1)) == 0)
                FL_LOG_WARNF("kvd",
                             "rejected connections: --max-clients reached",
                             "rejected=%" PRIu64 " max_clients=%zu",
                             s->rejected, s->max_clients);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (c == NULL || kv_resp_parser_new(&c->parser, &s->limits) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->tag = TAG_CLIENT;
        c->fd = fd;
        c->id = ++s->next_id;
        c->reading = true;
        fl_buf_init(&c->in);
        fl_buf_init(&c->out);
        fl_buf_init(&c->pending);
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            kv_resp_parser_free(c->parser);
            free(c);
            close(fd);
            continue;
        }
        c->next = s->clients;
        if (s->clients)
            s->clients->prev = c;
        s->clients = c;
        s->nclients++;
        FL_LOG_DEBUGF("kvd", "client connected", "client=%" PRIu64, c->id);
    }
}

/* Releases durable replies, and serves buffered commands, for every client
 * that has either. */
static void release_all(struct server *s)
{
    struct client *c = s->clients;

    while (c != NULL) {
        struct client *next = c->next;
        if (c->marks_head < c->nmarks || (c->in.len > 0 && !c->closing))
            serve(s, c);
        c = next;
    }
}

/* After SIGTERM no new command runs: every client gets the replies to
 * the commands already run and is then closed. */
static void stop_clients(struct server *s)
{
    struct client *c = s->clients;

    while (c != NULL) {
        struct client *next = c->next;
        c->closing = true;
        flush_out(s, c);
        c = next;
    }
}

static bool anything_pending(const struct server *s)
{
    for (const struct client *c = s->clients; c != NULL; c = c->next) {
        if (c->marks_head < c->nmarks || c->out_sent < c->out.len)
            return true;
    }
    return false;
}

/* ---- setup ------------------------------------------------------------- */

int kv_listen_parse(const char *spec, struct sockaddr_storage *addr,
                    socklen_t *len, char *err, size_t errsize)
{
    static const char expected[] =
        "expected HOST:PORT with a numeric IPv4 address or an IPv6 address "
        "in brackets, and a port from 0 to 65535";
    const char *colon = strrchr(spec, ':');
    char host[INET6_ADDRSTRLEN + 2];
    size_t hlen = colon != NULL ? (size_t)(colon - spec) : 0;
    char *end;
    unsigned long port;

    memset(addr, 0, sizeof(*addr));
    if (colon == NULL || hlen == 0 || hlen >= sizeof(host) || colon[1] < '0' ||
        colon[1] > '9')
        return fl_errorf(err, errsize, FL_EINPUT, "%s", expected);
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port > 65535)
        return fl_errorf(err, errsize, FL_EINPUT, "%s", expected);
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
        host[hlen - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return fl_errorf(err, errsize, FL_EINPUT, "%s", expected);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return fl_errorf(err, errsize, FL_EINPUT, "%s", expected);
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof(*a4);
    return 0;
}

int kv_listen(const char *spec, char *err, size_t errsize)
{
    struct sockaddr_storage addr;
    socklen_t len;
    char why[256];
    int one = 1;
    int fd;
    int rc;

    rc = kv_listen_parse(spec, &addr, &len, why, sizeof(why));
    if (rc != 0)
        return fl_errorf(err, errsize, rc, "invalid listen address \"%s\": %s",
                         spec, why);
    fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, 511) != 0) {
        rc = -errno;
        fl_errorf(err, errsize, rc, "cannot listen on %s: %s", spec,
                  strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    return fd;
}

static int listen_on(struct server *s)
{
    if (s->o->listen_fd >= 0) {
        s->listen_fd = s->o->listen_fd;
        return 0;
    }
    s->listen_fd = kv_listen(s->o->listen, s->err, sizeof(s->err));
    return s->listen_fd >= 0 ? 0 : s->listen_fd;
}

/* Returns the port the listening socket is bound to, which differs from
 * the requested one for port 0. */
static unsigned bound_port(const struct server *s)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);

    if (getsockname(s->listen_fd, (struct sockaddr *)&addr, &len) != 0)
        return 0;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

/* Raises the soft limit on open files to serve max_clients, as far as the
 * hard limit allows, and lowers max_clients to what fits. */
static void fit_fd_limit(struct server *s)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)s->o->max_clients + FD_RESERVE;

    s->max_clients = s->o->max_clients;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                      ? want
                      : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = old;
    if (rl.rlim_cur >= want)
        return;
    s->max_clients =
        rl.rlim_cur > FD_RESERVE + 1 ? (size_t)(rl.rlim_cur - FD_RESERVE) : 1;
    FL_LOG_WARNF("kvd", "open-file limit too low for --max-clients",
                 "limit=%llu max_clients=%zu serving=%zu",
                 (unsigned long long)rl.rlim_cur, s->o->max_clients,
                 s->max_clients);
}

static int add_fd(struct server *s, int fd, struct tagged *t)
{
    struct epoll_event ev = {0};

    ev.events = EPOLLIN;
    ev.data.ptr = t;
    return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static int setup(struct server *s)
{
    sigset_t mask;
    int rc;

    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0)
        return -errno;
    rc = listen_on(s);
    if (rc != 0)
        return rc;
    fit_fd_limit(s);
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    s->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->signal_fd < 0)
        return -errno;
    s->listen_tag.tag = TAG_LISTEN;
    s->signal_tag.tag = TAG_SIGNAL;
    s->notify_tag.tag = TAG_NOTIFY;
    if ((rc = add_fd(s, s->listen_fd, &s->listen_tag)) != 0 ||
        (rc = add_fd(s, s->signal_fd, &s->signal_tag)) != 0 ||
        (rc = add_fd(s, kv_notify_fd(s->engine), &s->notify_tag)) != 0)
        return rc;
    return 0;
}

static void stop_listening(struct server *s)
{
    if (s->listen_fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
        close(s->listen_fd);
        s->listen_fd = -1;
    }
}

int kv_serve(struct kv_engine *e, const struct kv_server_options *o, char *err,
             size_t errsize)
{
    struct server s;
    struct epoll_event events[256];
    int rc;

    memset(&s, 0, sizeof(s));
    s.engine = e;
    s.o = o;
    s.epfd = s.listen_fd = s.signal_fd = s.spare_fd = -1;
    fl_buf_init(&s.value);
    kv_resp_limits_default(&s.limits);
    s.limits.max_bulk_len = o->max_value;
    s.limits.max_request_len = 4 * o->max_value + (1u << 20);
    rc = setup(&s);
    if (rc != 0) {
        snprintf(err, errsize, "%s", s.err[0] ? s.err : fl_strerror(rc));
        goto out;
    }
    FL_LOG_INFOF("kvd", "listening", "address=%.*s:%u max_clients=%zu",
                 (int)(strrchr(o->listen, ':') - o->listen), o->listen,
                 bound_port(&s), s.max_clients);

    while (!s.stopping || anything_pending(&s)) {
        if (s.stopping && fl_clock_now_ns() >= s.drain_deadline_ns) {
            FL_LOG_WARNF("kvd",
                         "dropping clients that did not take their "
                         "replies in time",
                         "clients=%zu seconds=%d", s.nclients, DRAIN_SECONDS);
            break;
        }
        int n = epoll_wait(s.epfd, events, 256, s.stopping ? 100 : -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errsize, "epoll_wait failed: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            struct tagged *t = events[i].data.ptr;
            if (t->tag == TAG_LISTEN) {
                accept_clients(&s);
            } else if (t->tag == TAG_SIGNAL) {
                struct signalfd_siginfo si;
                while (read(s.signal_fd, &si, sizeof(si)) == sizeof(si)) {
                    FL_LOG_INFOF("kvd", "stopping", "signal=%u", si.ssi_signo);
                    if (!s.stopping)
                        s.drain_deadline_ns =
                            fl_clock_now_ns() + DRAIN_SECONDS * 1000000000LL;
                    s.stopping = true;
                }
                stop_listening(&s);
                stop_clients(&s);
            } else if (t->tag == TAG_NOTIFY) {
                uint64_t count;
                ssize_t r = read(kv_notify_fd(e), &count, sizeof(count));
                (void)r;
            } else {
                struct client *c = (struct client *)t;
                if (events[i].events & (EPOLLERR | EPOLLHUP) &&
                    !(events[i].events & EPOLLIN)) {
                    drop_client(&s, c);
                    continue;
                }
                if (events[i].events & EPOLLIN) {
                    if (!read_input(&s, c))
                        continue;
                }
                if (events[i].events & EPOLLOUT)
                    serve(&s, c);
            }
        }
        /* One write for every record this pass logged, and its fdatasync,
         * then release what has become durable. */
        kv_sync(e);
        release_all(&s);
        if (s.stopping && kv_error(e)[0] != '\0')
            break; /* nothing held back can become durable any more */
    }
out:
    while (s.clients != NULL)
        drop_client(&s, s.clients);
    stop_listening(&s);
    if (s.spare_fd >= 0)
        close(s.spare_fd);
    if (s.signal_fd >= 0)
        close(s.signal_fd);
    if (s.epfd >= 0)
        close(s.epfd);
    fl_buf_free(&s.value);
    if (rc == 0)
        FL_LOG_INFOF("kvd", "stopped", "commands=%" PRIu64, s.commands);
    return rc;
}
