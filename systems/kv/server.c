/*
 * The epoll loop of fl-kvd. See server.h.
 */
#include "server.h"

#include "arena.h"
#include "error.h"
#include "log.h"
#include "resp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
/* A client that does not read its replies stops being read from past this
 * many unsent bytes. */
#define OUT_HIGH_WATER (64u << 20)

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
    bool closing;  /* close once out is sent */
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
        fl_buf_clear(&c->pending);
        c->pending_sent = 0;
        c->marks_head = 0;
        c->nmarks = 0;
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
        b = reply_buf(s, c, 0);
        kv_resp_add_int(b, (int64_t)st.keys);
        reply_done(c, b, 0);
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
    bool want_in = !c->closing && c->out.len - c->out_sent < OUT_HIGH_WATER;
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
        fl_buf_clear(&c->out);
        c->out_sent = 0;
        if (c->closing && c->nmarks == c->marks_head) {
            drop_client(s, c);
            return false;
        }
    }
    arm(s, c);
    return true;
}

static void parse_input(struct server *s, struct client *c)
{
    while (!c->closing) {
        struct kv_resp_cmd cmd;
        size_t consumed = 0;
        int rc = kv_resp_parse(c->parser, c->in.data + c->in_start,
                               c->in.len - c->in_start, &cmd, &consumed);
        c->in_start += consumed;
        if (rc == KV_RESP_COMMAND) {
            run_command(s, c, &cmd);
            continue;
        }
        if (rc == KV_RESP_NEED_MORE || rc == -ENOMEM)
            break;
        struct fl_buf *b = reply_buf(s, c, 0);
        kv_resp_add_errorf(b, "ERR Protocol error: %s",
                           kv_resp_parser_error(c->parser));
        reply_done(c, b, 0);
        FL_LOG_DEBUGF("kvd", "protocol error", "client=%" PRIu64, c->id);
        c->closing = true;
    }
    /* Keep only the unparsed bytes. */
    if (c->in_start > 0) {
        size_t left = c->in.len - c->in_start;
        memmove(c->in.data, c->in.data + c->in_start, left);
        c->in.len = left;
        c->in_start = 0;
    }
}

static bool read_input(struct server *s, struct client *c)
{
    char chunk[READ_CHUNK];

    for (;;) {
        ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            drop_client(s, c);
            return false;
        }
        fl_buf_add(&c->in, chunk, (size_t)n);
        if (c->in.failed) {
            drop_client(s, c);
            return false;
        }
        parse_input(s, c);
        if (c->closing || c->out.len - c->out_sent >= OUT_HIGH_WATER)
            break;
        /* A short read drained the socket; epoll is level-triggered and
         * reports whatever arrives next, so skip the recv that would only
         * return EAGAIN. */
        if ((size_t)n < sizeof(chunk))
            break;
    }
    release(s, c);
    return flush_out(s, c);
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
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                FL_LOG_WARNF("kvd", "accept failed", "error=\"%s\"",
                             strerror(errno));
            return;
        }
        if (s->nclients >= s->o->max_clients) {
            static const char full[] = "-ERR max number of clients reached\r\n";
            ssize_t w = send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL);
            (void)w;
            close(fd);
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

/* Releases durable replies for every client holding some. */
static void release_all(struct server *s)
{
    struct client *c = s->clients;

    while (c != NULL) {
        struct client *next = c->next;
        if (c->marks_head < c->nmarks) {
            release(s, c);
            flush_out(s, c);
        }
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

static int listen_on(struct server *s, const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints = {0};
    struct addrinfo *res = NULL;
    int one = 1;
    int rc;

    if (colon == NULL || colon == spec ||
        (size_t)(colon - spec) >= sizeof(host) || colon[1] == '\0') {
        snprintf(s->err, sizeof(s->err),
                 "invalid listen address \"%s\": expected HOST:PORT", spec);
        return FL_EINPUT;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(s->err, sizeof(s->err),
                 "invalid listen address \"%s\": %s (expected a numeric "
                 "address and port)",
                 spec, gai_strerror(rc));
        return FL_EINPUT;
    }
    s->listen_fd =
        socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0 ||
        setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) !=
            0 ||
        bind(s->listen_fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(s->listen_fd, 511) != 0) {
        rc = -errno;
        snprintf(s->err, sizeof(s->err), "cannot listen on %s: %s", spec,
                 strerror(errno));
        freeaddrinfo(res);
        return rc;
    }
    freeaddrinfo(res);
    return 0;
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
    rc = listen_on(s, s->o->listen);
    if (rc != 0)
        return rc;
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
    s.epfd = s.listen_fd = s.signal_fd = -1;
    fl_buf_init(&s.value);
    kv_resp_limits_default(&s.limits);
    s.limits.max_bulk_len = o->max_value;
    s.limits.max_request_len = 4 * o->max_value + (1u << 20);
    rc = setup(&s);
    if (rc != 0) {
        snprintf(err, errsize, "%s", s.err[0] ? s.err : fl_strerror(rc));
        goto out;
    }
    FL_LOG_INFOF("kvd", "listening", "address=%s", o->listen);

    while (!s.stopping || anything_pending(&s)) {
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
                    s.stopping = true;
                }
                stop_listening(&s);
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
                    flush_out(&s, c);
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
    if (s.signal_fd >= 0)
        close(s.signal_fd);
    if (s.epfd >= 0)
        close(s.epfd);
    fl_buf_free(&s.value);
    if (rc == 0)
        FL_LOG_INFOF("kvd", "stopped", "commands=%" PRIu64, s.commands);
    return rc;
}
