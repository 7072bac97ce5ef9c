/*
 * fl-raftd: one node of the Raft-replicated KV cluster, as a real process
 * on real sockets and files. It wraps the pure Raft core (raft.h), the
 * Raft storage (storage.h) and the KV state machine (machine.h) in one
 * epoll loop. The core is the same one the simulator runs.
 *
 * Each pass of the loop handles the ready descriptors and ticks, feeding
 * the core events. What an update requests to persist is written at
 * once, but the messages it produced are held back. At the end of the
 * pass one fdatasync (rfs_sync) covers every write of the pass. Only then
 * do the held messages go to the peers' send buffers and the core learn
 * the new persisted index: persist before send, with group commit.
 *
 * Peers: each node connects to every other node's peer port and sends its
 * messages on that connection, starting with a hello frame. It receives on
 * the connections the others opened to it. Frames carry a version and a
 * CRC32C (frame.h); a bad frame is logged and its connection dropped.
 * Connections are retried with exponential backoff, and a peer's send
 * buffer is bounded: past the bound, messages to it are dropped, which
 * Raft tolerates, so a slow peer cannot grow memory without bound.
 *
 * Clients speak RESP2 (resp.h). A connection's commands run one at a time,
 * so replies keep their order. Writes and reads go through the leader; a
 * follower replies -NOTLEADER with the leader's client address, or an
 * empty one when it knows of no leader.
 */
#include "error.h"
#include "frame.h"
#include "log.h"
#include "machine.h"
#include "raft.h"
#include "resp.h"
#include "server.h"
#include "session.h"
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS          10
#define PEER_OUT_LIMIT   (16u << 20) /* bytes queued for one peer */
#define CLIENT_OUT_LIMIT (64u << 20)
#define MAX_BACKOFF_MS   2000
#define READ_CHUNK       65536
/* Bytes of key and values in one write, well under the peer frame limit
 * (RFF_MAX_PAYLOAD), so every entry fits a frame on its own. */
#define MAX_COMMAND (16u << 20)
#define MAX_CONNS   10000 /* accepted connections, clients and peers */

static const char usage_text[] =
    "Usage: fl-raftd --id N --peers 1=HOST:PORT,2=HOST:PORT,...\n"
    "                --data-dir DIR --listen-client HOST:PORT [OPTIONS]\n"
    "\n"
    "Runs one node of a Raft-replicated key-value cluster. Clients speak\n"
    "RESP2 (redis-cli works): GET, SET, DEL, CAS, PING, ECHO, INFO, QUIT,\n"
    "SESSION and SEQ.\n"
    "\n"
    "Options:\n"
    "  --id N                  this node's id, 1 to 9\n"
    "  --peers LIST            every node's peer address, this one included\n"
    "  --clients LIST          every node's client address, ID=HOST:PORT,...,\n"
    "                          for -NOTLEADER replies (default: only this\n"
    "                          node's)\n"
    "  --data-dir DIR          Raft log, snapshots and the KV engine\n"
    "  --listen-client ADDR    client port, HOST:PORT with a numeric host\n"
    "  --listen-peer ADDR      peer port (default: this node's --peers entry)\n"
    "  --election-timeout-ms N minimum election timeout (default 1000)\n"
    "  --heartbeat-ms N        heartbeat interval (default 100)\n"
    "  --snapshot-every N      entries applied between snapshots (default\n"
    "                          10000; 0: never)\n"
    "  --inject-bug NAME       plant a bug; may be repeated\n"
    "  --log-level LEVEL       debug, info (default), warn, error or off\n"
    "\n"
    "Exit codes: 0 after SIGTERM or SIGINT, 1 when the node cannot start or\n"
    "its storage fails, 2 for a usage error.\n";

struct options {
    uint32_t id;
    char peers[RFT_MAX_NODES + 1][128]; /* "" for ids not in the cluster */
    char clients[RFT_MAX_NODES + 1][128];
    size_t n_peers;
    const char *data_dir;
    const char *listen_client;
    const char *listen_peer;
    unsigned election_ms;
    unsigned heartbeat_ms;
    uint64_t snapshot_every;
    unsigned bugs;
};

enum tag_kind {
    TAG_TIMER,
    TAG_SIGNAL,
    TAG_CLIENT_LISTEN,
    TAG_PEER_LISTEN,
    TAG_CONN,
    TAG_PEER_OUT
};

struct tag {
    enum tag_kind kind;
    void *ptr;
};

/* An outgoing connection to a peer, which carries this node's messages. */
struct peer {
    struct tag tag;
    uint32_t id;
    int fd; /* -1 while down */
    bool connected;
    int64_t retry_at; /* monotonic ms of the next connection attempt */
    unsigned backoff_ms;
    struct fl_buf out; /* frames to write; out_off bytes already written */
    size_t out_off;
    struct fl_buf held; /* frames waiting for this pass's fdatasync */
    uint64_t dropped;   /* messages dropped on a full buffer */
};

enum conn_kind { CONN_CLIENT, CONN_PEER };

/* An accepted connection: a client, or a peer sending its messages. */
struct conn {
    struct tag tag;
    enum conn_kind kind;
    int fd;
    uint64_t id;      /* unique per connection, for pending requests */
    uint32_t peer_id; /* CONN_PEER: from its hello, 0 before */
    struct fl_buf in;
    size_t in_off;
    struct fl_buf out;
    size_t out_off;
    struct kv_resp_parser *parser;
    struct rff_decoder frames; /* CONN_PEER */
    bool busy;                 /* a command waits for the cluster */
    bool closing;              /* close once out is written */
    uint64_t session;
    uint64_t seq;     /* SEQ given for the next write; 0: none */
    uint64_t own_seq; /* numbers writes when SEQ is not given */
    bool resumed;     /* SESSION ID: the numbers so far are unknown */
    struct conn *next;
};

/* A client write proposed at index, or a read waiting for read_id. */
struct pending {
    uint64_t key; /* index or read id */
    uint64_t conn;
    uint64_t session;
    uint64_t seq;
    struct fl_buf arg; /* GET: the key */
};

struct node {
    struct options o;
    int ep;
    struct tag timer_tag, signal_tag, client_listen_tag, peer_listen_tag;
    int timer_fd, signal_fd, client_fd, peer_fd;
    struct rft *r;
    struct rfs *store;
    struct rfm *m;
    struct peer peers[RFT_MAX_NODES + 1];
    struct conn *conns;
    size_t n_conns;
    int spare_fd; /* given up to refuse a connection when out of fds */
    uint64_t next_conn_id;
    struct pending *writes;
    size_t n_writes, writes_cap;
    struct pending *reads;
    size_t n_reads, reads_cap;
    uint64_t next_read_id;
    uint64_t next_session;
    uint64_t session_base; /* random, from getrandom at start */
    bool dirty;            /* written but not yet synced */
    bool stopping;
    bool failed; /* storage or state machine failed: exit 1 */
    struct rfm_result out;
    struct fl_buf scratch;
    struct fl_buf frame;
    char err[512];
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail(struct node *n, const char *what)
{
    if (!n->failed)
        FL_LOG_ERRORF("raftd", "stopping after a failure",
                      "node=%u error=\"%s\"", n->o.id, what);
    n->failed = true;
    n->stopping = true;
}

/* ---- the trace, as log lines ------------------------------------------- */

/* Logs the core's invariant events, so a checker can audit a run from
 * the nodes' logs: one leader per term, one vote per node and term, the
 * same command hash applied at each index everywhere. */
static void on_trace(void *arg, const struct rft_trace *t)
{
    static const char *const names[] = {
        [RFT_TRACE_BOOT] = "boot",         [RFT_TRACE_TERM] = "term",
        [RFT_TRACE_VOTE] = "vote",         [RFT_TRACE_LEADER] = "leader",
        [RFT_TRACE_APPEND] = "append",     [RFT_TRACE_TRUNCATE] = "truncate",
        [RFT_TRACE_COMMIT] = "commit",     [RFT_TRACE_APPLY] = "apply",
        [RFT_TRACE_SNAPSHOT] = "snapshot",
    };

    (void)arg;
    if (t->type == RFT_TRACE_APPEND && fl__log_threshold > FL_LOG_DEBUG)
        return; /* appends are many, and the other events imply them */
    if (t->type == RFT_TRACE_LEADER)
        FL_LOG_INFOF("raft", names[t->type],
                     "node=%u term=%" PRIu64 " vote=%u index=%" PRIu64
                     " hash=%u voters=%u",
                     t->node, t->term, t->vote, t->index, t->hash, t->voters);
    else
        FL_LOG_INFOF("raft", names[t->type],
                     "node=%u term=%" PRIu64 " vote=%u index=%" PRIu64
                     " hash=%u",
                     t->node, t->term, t->vote, t->index, t->hash);
}

/* ---- peers ------------------------------------------------------------- */

static void watch(struct node *n, int fd, struct tag *tag, uint32_t events,
                  int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = tag};

    if (epoll_ctl(n->ep, op, fd, &ev) != 0 && op != EPOLL_CTL_DEL)
        FL_LOG_ERRORF("raftd", "epoll_ctl failed", "fd=%d error=\"%s\"", fd,
                      strerror(errno));
}

static void peer_down(struct node *n, struct peer *p, const char *why)
{
    if (p->fd >= 0) {
        if (p->connected)
            FL_LOG_WARNF("raftd", "peer connection lost",
                         "node=%u peer=%u reason=\"%s\"", n->o.id, p->id, why);
        close(p->fd);
    }
    p->fd = -1;
    p->connected = false;
    fl_buf_clear(&p->out);
    p->out_off = 0;
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : 50;
    if (p->backoff_ms > MAX_BACKOFF_MS)
        p->backoff_ms = MAX_BACKOFF_MS;
    p->retry_at = now_ms() + p->backoff_ms;
}

static void peer_connect(struct node *n, struct peer *p)
{
    struct sockaddr_storage sa;
    socklen_t len;
    char err[256];
    int one = 1;

    if (kv_listen_parse(n->o.peers[p->id], &sa, &len, err, sizeof(err)) != 0)
        return; /* checked at start */
    p->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        peer_down(n, p, strerror(errno));
        return;
    }
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(p->fd, (struct sockaddr *)&sa, len) != 0 &&
        errno != EINPROGRESS) {
        peer_down(n, p, strerror(errno));
        return;
    }
    fl_buf_clear(&p->out);
    p->out_off = 0;
    struct rff_hello hello = {.id = n->o.id, .n_nodes = (uint32_t)n->o.n_peers};
    rff_encode_hello(&p->out, &hello);
    watch(n, p->fd, &p->tag, EPOLLOUT, EPOLL_CTL_ADD);
}

/* Writes what the peer's buffer holds; returns false when it went down. */
static bool peer_flush(struct node *n, struct peer *p)
{
    while (p->connected && p->out_off < p->out.len) {
        ssize_t w = send(p->fd, p->out.data + p->out_off,
                         p->out.len - p->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            peer_down(n, p, w < 0 ? strerror(errno) : "closed");
            return false;
        }
        p->out_off += (size_t)w;
    }
    if (p->out_off == p->out.len) {
        fl_buf_clear(&p->out);
        p->out_off = 0;
    }
    if (p->connected)
        watch(n, p->fd, &p->tag,
              p->out.len > p->out_off ? EPOLLOUT | EPOLLIN : EPOLLIN,
              EPOLL_CTL_MOD);
    return true;
}

static void peer_event(struct node *n, struct peer *p, uint32_t events)
{
    if (!p->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int e = 0;
        socklen_t l = sizeof(e);
        getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &l);
        if (e != 0) {
            peer_down(n, p, strerror(e));
            return;
        }
        p->connected = true;
        p->backoff_ms = 0;
        FL_LOG_INFOF("raftd", "connected to peer", "node=%u peer=%u", n->o.id,
                     p->id);
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        /* Nothing is expected on this side: data or EOF ends it. */
        char b[256];
        ssize_t r = recv(p->fd, b, sizeof(b), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            peer_down(n, p, r == 0 ? "closed by the peer" : strerror(errno));
            return;
        }
    }
    peer_flush(n, p);
}

/* Queues a message for its peer until this pass's fdatasync. */
static void hold_message(struct node *n, const struct rft_msg *m)
{
    struct peer *p;

    if (m->to == 0 || m->to > RFT_MAX_NODES || n->o.peers[m->to][0] == '\0')
        return;
    p = &n->peers[m->to];
    if (p->held.len + p->out.len > PEER_OUT_LIMIT) {
        p->dropped++;
        return;
    }
    /* Entries past the frame size limit go in several messages: a prefix
     * of an AppendEntries is a valid AppendEntries. */
    struct rft_msg part = *m;
    while (rff_encode(&p->held, &part) == FL_EINPUT &&
           part.type == RFT_MSG_APPEND && part.n_entries > 1)
        part.n_entries /= 2;
}

/* Moves the held messages to the send buffers, after the fdatasync. */
static void release_messages(struct node *n)
{
    for (uint32_t id = 1; id <= RFT_MAX_NODES; id++) {
        struct peer *p = &n->peers[id];
        if (p->held.len == 0)
            continue;
        if (p->connected)
            fl_buf_add(&p->out, p->held.data, p->held.len);
        fl_buf_clear(&p->held);
        if (p->connected)
            peer_flush(n, p);
    }
}

/* ---- pending requests -------------------------------------------------- */

static struct pending *add_pending(struct node *n, struct pending **v,
                                   size_t *len, size_t *cap)
{
    if (*len == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        struct pending *p = realloc(*v, c * sizeof(*p));
        if (p == NULL)
            return NULL;
        *v = p;
        *cap = c;
    }
    (*v)[*len] = (struct pending){0};
    fl_buf_init(&(*v)[*len].arg);
    (void)n;
    return &(*v)[(*len)++];
}

static void remove_pending(struct pending *v, size_t *len, size_t i)
{
    fl_buf_free(&v[i].arg);
    v[i] = v[--*len];
}

static struct conn *find_conn(struct node *n, uint64_t id)
{
    for (struct conn *c = n->conns; c != NULL; c = c->next) {
        if (c->id == id)
            return c;
    }
    return NULL;
}

/* ---- clients: replies -------------------------------------------------- */

static void conn_flush(struct node *n, struct conn *c);
static void conn_parse(struct node *n, struct conn *c);

/* Ends the command c was waiting on. Its next commands run from the loop
 * (resume_clients), never from here: this runs while an update of the
 * core is being carried out, and a nested rft_step would invalidate it. */
static void command_done(struct node *n, struct conn *c)
{
    c->busy = false;
    conn_flush(n, c);
}

static void reply_notleader(struct node *n, struct conn *c)
{
    uint32_t leader = n->r != NULL ? rft_leader(n->r) : 0;
    const char *addr = "";

    if (leader != 0 && leader != n->o.id)
        addr = n->o.clients[leader];
    kv_resp_add_errorf(&c->out, "NOTLEADER %s", addr);
}

/* Sends a state machine response as RESP: "OK" as a status, digits as an
 * integer. */
static void reply_response(struct conn *c, const struct fl_buf *resp)
{
    if (resp->len == 2 && memcmp(resp->data, "OK", 2) == 0)
        kv_resp_add_simple(&c->out, "OK");
    else if (resp->len == 1 && (resp->data[0] == '0' || resp->data[0] == '1'))
        kv_resp_add_int(&c->out, resp->data[0] - '0');
    else
        kv_resp_add_bulk(&c->out, resp->data, resp->len);
}

/* Replies to the client whose write was proposed at index, now applied. */
static void settle_write(struct node *n, uint64_t index,
                         const struct rfm_result *res)
{
    for (size_t i = 0; i < n->n_writes; i++) {
        struct pending *w = &n->writes[i];
        if (w->key != index)
            continue;
        struct conn *c = find_conn(n, w->conn);
        bool mine =
            res->answered && res->client == w->session && res->seq == w->seq;
        bool stale =
            res->stale && res->client == w->session && res->seq == w->seq;
        uint64_t seq = w->seq;
        remove_pending(n->writes, &n->n_writes, i);
        if (c != NULL) {
            if (mine)
                reply_response(c, &res->response);
            else if (stale)
                kv_resp_add_errorf(&c->out,
                                   "ERR SEQ %" PRIu64 " is below the "
                                   "session's last number; not applied",
                                   seq);
            else
                kv_resp_add_error(&c->out,
                                  "RETRY another entry took this write's "
                                  "place after a leader change; it was not "
                                  "applied");
            command_done(n, c);
        }
        return;
    }
}

static void settle_reads(struct node *n, const struct rft_update *u)
{
    for (size_t k = 0; k < u->n_reads; k++) {
        for (size_t i = 0; i < n->n_reads; i++) {
            struct pending *rd = &n->reads[i];
            if (rd->key != u->reads[k].read_id)
                continue;
            struct conn *c = find_conn(n, rd->conn);
            if (c == NULL) {
                /* The client left. */
            } else if (u->reads[k].index == 0) {
                reply_notleader(n, c);
                command_done(n, c);
            } else {
                bool found;
                int rc =
                    rfm_get(n->m, (struct fl_str){rd->arg.data, rd->arg.len},
                            &n->scratch, &found);
                if (rc != 0)
                    kv_resp_add_error(&c->out, "ERR state machine failed");
                else if (found)
                    kv_resp_add_bulk(&c->out, n->scratch.data, n->scratch.len);
                else
                    kv_resp_add_null(&c->out);
                command_done(n, c);
            }
            remove_pending(n->reads, &n->n_reads, i);
            break;
        }
    }
}

/* ---- the core ---------------------------------------------------------- */

static void step(struct node *n, const struct rft_event *ev,
                 uint64_t *proposed);

/* Takes a snapshot once snapshot_every entries were applied past the last
 * one, when the machine contains exactly what the core applied. */
static void maybe_snapshot(struct node *n)
{
    uint64_t applied = rft_applied(n->r);
    uint64_t at;

    if (n->o.snapshot_every == 0 ||
        applied < rft_snapshot_of(n->r)->index + n->o.snapshot_every ||
        rfm_applied(n->m) != applied)
        return;
    fl_buf_clear(&n->scratch);
    if (rfm_export(n->m, &n->scratch, &at) != 0 || n->scratch.failed) {
        fail(n, "exporting the state machine failed");
        return;
    }
    struct rft_event ev = {.type = RFT_EV_SNAPSHOT,
                           .index = at,
                           .data = n->scratch.data,
                           .len = n->scratch.len};
    step(n, &ev, NULL);
    if (rft_snapshot_of(n->r)->index == at &&
        rfs_compact(n->store, rft_snapshot_of(n->r), n->err, sizeof(n->err)) !=
            0)
        fail(n, n->err);
    else
        FL_LOG_INFOF("raftd", "took a snapshot",
                     "node=%u index=%" PRIu64 " bytes=%zu", n->o.id, at,
                     n->scratch.len);
}

/* Carries out an update: persist (not yet synced), hold the messages,
 * apply the committed entries and settle reads. */
static void carry_out(struct node *n, const struct rft_update *u)
{
    /* A snapshot from the leader goes into the machine first: import
     * checks the bytes, and damaged ones must not reach the Raft storage,
     * where they would stop every later start. A crash in between leaves
     * the machine ahead of the log, which replay tolerates. */
    if (u->snapshot != NULL &&
        rfm_import(n->m, u->snapshot->data, u->snapshot->len, n->err,
                   sizeof(n->err)) != 0) {
        fail(n, n->err);
        return;
    }
    if (u->hard_state || u->snapshot != NULL || u->truncate_from != 0 ||
        u->n_entries > 0) {
        if (rfs_save(n->store, u, n->err, sizeof(n->err)) != 0) {
            fail(n, n->err);
            return;
        }
        n->dirty = true;
    }
    for (size_t i = 0; i < u->n_msgs; i++)
        hold_message(n, &u->msgs[i]);
    for (size_t i = 0; i < u->n_committed; i++) {
        uint64_t index = u->first_committed + i;
        if (rfm_apply(n->m, index, &u->committed[i], &n->out) != 0) {
            fail(n, kv_error(rfm_engine(n->m)));
            return;
        }
        settle_write(n, index, &n->out);
    }
    settle_reads(n, u);
}

static void step(struct node *n, const struct rft_event *ev, uint64_t *proposed)
{
    struct rft_update u;

    if (n->failed)
        return;
    if (rft_step(n->r, ev, &u) != 0) {
        fail(n, "out of memory in the Raft core");
        return;
    }
    if (proposed != NULL)
        *proposed = u.proposed_index;
    carry_out(n, &u);
}

/* Makes this pass's writes durable, then releases the held messages and
 * reports the persisted index to the core, which may produce more of
 * both. */
static void sync_and_release(struct node *n)
{
    for (int round = 0; round < 8 && !n->failed; round++) {
        if (n->dirty) {
            if (rfs_sync(n->store, n->err, sizeof(n->err)) != 0) {
                fail(n, n->err);
                return;
            }
            n->dirty = false;
            release_messages(n);
            struct rft_event done = {.type = RFT_EV_PERSISTED,
                                     .index = rfs_last_index(n->store)};
            step(n, &done, NULL);
        }
        if (!n->dirty)
            break;
    }
    if (!n->dirty)
        release_messages(n);
}

/* ---- clients: commands ------------------------------------------------- */

static bool arity(struct conn *c, const struct kv_resp_cmd *cmd, size_t want)
{
    if (cmd->argc == want)
        return true;
    kv_resp_add_errorf(&c->out, "ERR wrong number of arguments for '%.*s'",
                       (int)cmd->argv[0].len, cmd->argv[0].ptr);
    return false;
}

static bool parse_u64(struct fl_str s, uint64_t *out)
{
    uint64_t v = 0;

    if (s.len == 0 || s.len > 19)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s.ptr[i] - '0');
    }
    *out = v;
    return true;
}

/* Proposes a write; the reply comes when this node applies its index. */
static void propose(struct node *n, struct conn *c, enum rfm_op op,
                    const struct kv_resp_cmd *cmd)
{
    struct fl_str none = {"", 0};
    struct fl_str value = none;
    struct fl_str expected = none;
    uint64_t seq = c->seq != 0 ? c->seq : c->own_seq + 1;
    uint64_t index = 0;
    struct fl_buf opb;

    if (op == RFM_PUT)
        value = cmd->argv[2];
    if (op == RFM_CAS) {
        expected = cmd->argv[2];
        value = cmd->argv[3];
    }
    if (c->resumed && c->seq == 0) {
        /* Numbering from 1 would reuse numbers the session has spent, and
         * those writes would get the session's cached response, not be applied.
         */
        kv_resp_add_error(&c->out, "ERR a resumed session needs SEQ before "
                                   "its next write");
        return;
    }
    if (rft_role(n->r) != RFT_LEADER) {
        reply_notleader(n, c);
        return;
    }
    if (cmd->argv[1].len + value.len + expected.len > MAX_COMMAND) {
        kv_resp_add_errorf(&c->out, "ERR key and values exceed %u bytes",
                           MAX_COMMAND);
        return;
    }
    if (cmd->argv[1].len == 0 ||
        (unsigned char)cmd->argv[1].ptr[0] == RFM_RESERVED) {
        kv_resp_add_error(&c->out, "ERR keys may not be empty or start "
                                   "with byte 0xff");
        return;
    }
    fl_buf_init(&opb);
    rfm_encode_op(&opb, op, cmd->argv[1], value, expected);
    fl_buf_clear(&n->scratch);
    rft_command_encode(&n->scratch, c->session, seq, opb.data, opb.len);
    fl_buf_free(&opb);
    c->seq = 0;
    c->own_seq = seq;
    struct rft_event ev = {
        .type = RFT_EV_PROPOSE, .data = n->scratch.data, .len = n->scratch.len};
    step(n, &ev, &index);
    if (index == 0) {
        reply_notleader(n, c);
        return;
    }
    struct pending *w =
        add_pending(n, &n->writes, &n->n_writes, &n->writes_cap);
    if (w == NULL) {
        kv_resp_add_error(&c->out, "ERR out of memory");
        return;
    }
    *w = (struct pending){
        .key = index, .conn = c->id, .session = c->session, .seq = seq};
    fl_buf_init(&w->arg);
    c->busy = true;
}

static void read_key(struct node *n, struct conn *c, struct fl_str key)
{
    struct pending *rd;

    if (rft_role(n->r) != RFT_LEADER) {
        reply_notleader(n, c);
        return;
    }
    rd = add_pending(n, &n->reads, &n->n_reads, &n->reads_cap);
    if (rd == NULL) {
        kv_resp_add_error(&c->out, "ERR out of memory");
        return;
    }
    rd->key = ++n->next_read_id;
    rd->conn = c->id;
    fl_buf_add(&rd->arg, key.ptr, key.len);
    c->busy = true;
    struct rft_event ev = {.type = RFT_EV_READ, .read_id = rd->key};
    step(n, &ev, NULL);
}

static void cmd_info(struct node *n, struct conn *c)
{
    static const char *const roles[] = {"follower", "pre-candidate",
                                        "candidate", "leader"};
    uint32_t leader = rft_leader(n->r);
    enum rft_role role = rft_role(n->r);
    uint64_t dropped = 0;

    for (uint32_t id = 1; id <= RFT_MAX_NODES; id++)
        dropped += n->peers[id].dropped;
    fl_buf_clear(&n->scratch);
    fl_buf_printf(
        &n->scratch,
        "# Raft\r\nid:%u\r\nrole:%s\r\nterm:%" PRIu64
        "\r\nleader:%u\r\nleader_addr:%s\r\ncommit:%" PRIu64
        "\r\napplied:%" PRIu64 "\r\nlast_index:%" PRIu64
        "\r\nsnapshot_index:%" PRIu64 "\r\npeer_messages_dropped:%" PRIu64
        "\r\n",
        n->o.id, role == RFT_PRE_CANDIDATE ? "candidate" : roles[role],
        rft_term(n->r), leader, leader != 0 ? n->o.clients[leader] : "",
        rft_commit(n->r), rft_applied(n->r), rft_last_index(n->r),
        rft_snapshot_of(n->r)->index, dropped);
    kv_resp_add_bulk(&c->out, n->scratch.data, n->scratch.len);
}

static void run_command(struct node *n, struct conn *c,
                        const struct kv_resp_cmd *cmd)
{
    uint64_t v;

    if (kv_resp_is(cmd, "PING")) {
        if (cmd->argc > 1)
            kv_resp_add_bulk(&c->out, cmd->argv[1].ptr, cmd->argv[1].len);
        else
            kv_resp_add_simple(&c->out, "PONG");
    } else if (kv_resp_is(cmd, "ECHO")) {
        if (arity(c, cmd, 2))
            kv_resp_add_bulk(&c->out, cmd->argv[1].ptr, cmd->argv[1].len);
    } else if (kv_resp_is(cmd, "QUIT")) {
        kv_resp_add_simple(&c->out, "OK");
        c->closing = true;
    } else if (kv_resp_is(cmd, "INFO")) {
        cmd_info(n, c);
    } else if (kv_resp_is(cmd, "GET")) {
        if (arity(c, cmd, 2))
            read_key(n, c, cmd->argv[1]);
    } else if (kv_resp_is(cmd, "SET")) {
        if (arity(c, cmd, 3))
            propose(n, c, RFM_PUT, cmd);
    } else if (kv_resp_is(cmd, "DEL")) {
        if (arity(c, cmd, 2))
            propose(n, c, RFM_DELETE, cmd);
    } else if (kv_resp_is(cmd, "CAS")) {
        if (arity(c, cmd, 4))
            propose(n, c, RFM_CAS, cmd);
    } else if (kv_resp_is(cmd, "SESSION")) {
        /* SESSION with no argument hands out a new id; SESSION ID resumes
         * one, so a retry after a reconnect keeps its numbers. */
        if (cmd->argc == 1) {
            /* A random start drawn at boot plus a counter: unique across
             * nodes and restarts but for a 2^-63 chance. */
            c->session = (n->session_base +
                          ++n->next_session * UINT64_C(0x9e3779b97f4a7c15)) &
                         INT64_MAX;
            if (c->session == 0)
                c->session = 1;
            c->own_seq = 0;
            c->resumed = false;
            kv_resp_add_int(&c->out, (int64_t)c->session);
        } else if (cmd->argc == 2 && parse_u64(cmd->argv[1], &v) && v != 0) {
            c->session = v;
            c->own_seq = 0;
            c->resumed = true;
            kv_resp_add_simple(&c->out, "OK");
        } else {
            kv_resp_add_error(&c->out, "ERR SESSION takes no argument or a "
                                       "session id from 1 to 2^63-1");
        }
    } else if (kv_resp_is(cmd, "SEQ")) {
        if (!arity(c, cmd, 2))
            return;
        if (c->session == 0)
            kv_resp_add_error(&c->out, "ERR SEQ needs a SESSION first");
        else if (!parse_u64(cmd->argv[1], &v) || v == 0)
            kv_resp_add_error(&c->out, "ERR SEQ takes a number from 1 up");
        else {
            c->seq = v;
            c->own_seq = v;
            c->resumed = false;
            kv_resp_add_simple(&c->out, "OK");
        }
    } else {
        kv_resp_add_errorf(&c->out, "ERR unknown command '%.*s'",
                           (int)(cmd->argv[0].len > 64 ? 64 : cmd->argv[0].len),
                           cmd->argv[0].ptr);
    }
}

/* ---- connections ------------------------------------------------------- */

static void conn_close(struct node *n, struct conn *c)
{
    struct conn **pp = &n->conns;

    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    n->n_conns--;
    close(c->fd);
    fl_buf_free(&c->in);
    fl_buf_free(&c->out);
    kv_resp_parser_free(c->parser);
    rff_decoder_free(&c->frames);
    free(c);
}

static void conn_flush(struct node *n, struct conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out_off,
                         c->out.len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            c->closing = true;
            c->out_off = c->out.len;
            break;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out.len) {
        fl_buf_clear(&c->out);
        c->out_off = 0;
    }
    uint32_t events = c->out.len > c->out_off ? EPOLLOUT : 0;
    if (!c->busy && !c->closing && c->out.len - c->out_off < CLIENT_OUT_LIMIT)
        events |= EPOLLIN;
    watch(n, c->fd, &c->tag, events | EPOLLRDHUP, EPOLL_CTL_MOD);
}

/* Runs the client's buffered commands until one has to wait. */
static void conn_parse(struct node *n, struct conn *c)
{
    struct kv_resp_cmd cmd;
    size_t used;

    while (!c->busy && !c->closing && !n->failed) {
        int rc = kv_resp_parse(c->parser, c->in.data + c->in_off,
                               c->in.len - c->in_off, &cmd, &used);
        c->in_off += used;
        if (rc == KV_RESP_NEED_MORE)
            break;
        if (rc != KV_RESP_COMMAND) {
            kv_resp_add_errorf(&c->out, "ERR Protocol error: %s",
                               kv_resp_parser_error(c->parser));
            c->closing = true;
            break;
        }
        if (n->stopping) {
            kv_resp_add_error(&c->out, "ERR shutting down");
            c->closing = true;
            break;
        }
        run_command(n, c, &cmd);
    }
    if (c->in_off == c->in.len) {
        fl_buf_clear(&c->in);
        c->in_off = 0;
    }
}

/* Handles the frames a peer sent on a connection it opened. */
static bool peer_input(struct node *n, struct conn *c)
{
    for (;;) {
        struct rff_frame f;
        size_t used = 0;
        const char *why = NULL;
        int rc = rff_decode(&c->frames, c->in.data + c->in_off,
                            c->in.len - c->in_off, &f, &used, &why);
        if (rc == RFF_NEED_MORE)
            break;
        if (rc == -ENOMEM)
            return false;
        if (rc != RFF_FRAME) {
            FL_LOG_WARNF("raftd", "bad peer frame, dropping the connection",
                         "node=%u peer=%u reason=\"%s\"", n->o.id, c->peer_id,
                         why ? why : "invalid");
            return false;
        }
        if (f.type == RFF_HELLO) {
            if (c->peer_id != 0 || n->o.peers[f.hello.id][0] == '\0' ||
                f.hello.id == n->o.id || f.hello.n_nodes != n->o.n_peers) {
                FL_LOG_WARNF("raftd",
                             "unexpected hello, dropping the "
                             "connection",
                             "node=%u from=%u nodes=%u", n->o.id, f.hello.id,
                             f.hello.n_nodes);
                return false;
            }
            c->peer_id = f.hello.id;
        } else if (c->peer_id == 0 || f.msg.from != c->peer_id) {
            FL_LOG_WARNF("raftd", "message from an unnamed or wrong peer",
                         "node=%u conn_peer=%u from=%u", n->o.id, c->peer_id,
                         f.msg.from);
            return false;
        } else {
            struct rft_event ev = {.type = RFT_EV_RECEIVE, .msg = f.msg};
            step(n, &ev, NULL);
        }
        c->in_off += used;
    }
    if (c->in_off == c->in.len) {
        fl_buf_clear(&c->in);
        c->in_off = 0;
    }
    return true;
}

static void conn_event(struct node *n, struct conn *c, uint32_t events)
{
    char chunk[READ_CHUNK];

    if (events & EPOLLIN) {
        for (;;) {
            ssize_t r = recv(c->fd, chunk, sizeof(chunk), 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (r <= 0) {
                if (c->kind == CONN_PEER && c->in.len > c->in_off)
                    FL_LOG_WARNF("raftd",
                                 "peer closed the connection in the middle "
                                 "of a frame",
                                 "node=%u peer=%u bytes=%zu", n->o.id,
                                 c->peer_id, c->in.len - c->in_off);
                conn_close(n, c);
                return;
            }
            fl_buf_add(&c->in, chunk, (size_t)r);
            if (c->in.failed) {
                conn_close(n, c);
                return;
            }
            if ((size_t)r < sizeof(chunk) || c->kind == CONN_CLIENT)
                break;
        }
        if (c->kind == CONN_PEER) {
            if (!peer_input(n, c))
                conn_close(n, c);
            return;
        }
        conn_parse(n, c);
    } else if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        if (c->kind == CONN_PEER || !c->busy) {
            conn_close(n, c);
            return;
        }
    }
    if (c->kind == CONN_CLIENT) {
        conn_flush(n, c);
        if (c->closing && c->out.len == c->out_off)
            conn_close(n, c);
    }
}

static void accept_conns(struct node *n, int lfd, enum conn_kind kind)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int one = 1;
        if (fd < 0 && (errno == EMFILE || errno == ENFILE) &&
            n->spare_fd >= 0) {
            /* Out of descriptors: give up the spare one to take the
             * connection and close it, or the level-triggered listener
             * would report it again at once, forever. */
            close(n->spare_fd);
            fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                close(fd);
            n->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            FL_LOG_WARNF("raftd",
                         "out of file descriptors, refused a "
                         "connection",
                         "node=%u connections=%zu", n->o.id, n->n_conns);
            return;
        }
        if (fd < 0)
            return;
        if (n->n_conns >= MAX_CONNS) {
            close(fd); /* full: the client sees the connection close */
            continue;
        }
        struct kv_resp_limits limits;
        kv_resp_limits_default(&limits);
        limits.max_bulk_len = MAX_COMMAND;
        limits.max_request_len = 2 * (size_t)MAX_COMMAND + 4096;
        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL || (kind == CONN_CLIENT &&
                          kv_resp_parser_new(&c->parser, &limits) != 0)) {
            free(c);
            close(fd);
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->tag = (struct tag){TAG_CONN, c};
        c->kind = kind;
        c->fd = fd;
        c->id = ++n->next_conn_id;
        rff_decoder_init(&c->frames);
        fl_buf_init(&c->in);
        fl_buf_init(&c->out);
        c->next = n->conns;
        n->conns = c;
        n->n_conns++;
        watch(n, fd, &c->tag, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
    }
}

/* ---- the loop ---------------------------------------------------------- */

static void tick(struct node *n)
{
    uint64_t expirations;
    int64_t now = now_ms();

    if (read(n->timer_fd, &expirations, sizeof(expirations)) !=
        sizeof(expirations))
        return;
    for (uint64_t i = 0; i < expirations && i < 100 && !n->failed; i++) {
        struct rft_event ev = {.type = RFT_EV_TICK};
        step(n, &ev, NULL);
    }
    for (uint32_t id = 1; id <= RFT_MAX_NODES; id++) {
        struct peer *p = &n->peers[id];
        if (n->o.peers[id][0] != '\0' && id != n->o.id && p->fd < 0 &&
            now >= p->retry_at)
            peer_connect(n, p);
    }
    if (!n->failed)
        maybe_snapshot(n);
}

/* Runs the buffered commands of clients whose last command ended.
 * Returns true when any ran. */
static bool resume_clients(struct node *n)
{
    bool ran = false;

    for (struct conn *c = n->conns; c != NULL && !n->failed; c = c->next) {
        if (c->kind == CONN_CLIENT && !c->busy && !c->closing &&
            c->in_off < c->in.len) {
            size_t before = c->in_off;
            conn_parse(n, c);
            ran |= c->in_off != before;
        }
    }
    return ran;
}

static int run(struct node *n)
{
    struct epoll_event events[64];

    while (!n->stopping) {
        int k = epoll_wait(n->ep, events, 64, -1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            fail(n, strerror(errno));
            break;
        }
        for (int i = 0; i < k && !n->failed; i++) {
            struct tag *t = events[i].data.ptr;
            switch (t->kind) {
            case TAG_TIMER:
                tick(n);
                break;
            case TAG_SIGNAL:
                n->stopping = true;
                break;
            case TAG_CLIENT_LISTEN:
                accept_conns(n, n->client_fd, CONN_CLIENT);
                break;
            case TAG_PEER_LISTEN:
                accept_conns(n, n->peer_fd, CONN_PEER);
                break;
            case TAG_CONN:
                conn_event(n, t->ptr, events[i].events);
                break;
            case TAG_PEER_OUT:
                peer_event(n, t->ptr, events[i].events);
                break;
            }
        }
        sync_and_release(n);
        for (int round = 0; round < 4 && resume_clients(n); round++)
            sync_and_release(n);
        /* Replies produced while handling events go out now. */
        for (struct conn *c = n->conns, *next; c != NULL; c = next) {
            next = c->next;
            if (c->kind == CONN_CLIENT && c->out.len > c->out_off) {
                conn_flush(n, c);
                if (c->closing && c->out.len == c->out_off)
                    conn_close(n, c);
            }
        }
    }
    return n->failed ? 1 : 0;
}

/* ---- setup ------------------------------------------------------------- */

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("fl-raftd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nRun fl-raftd --help for the options.\n", stderr);
    return 2;
}

/* Parses "1=HOST:PORT,2=HOST:PORT" into table. */
static int parse_addr_list(const char *flag, const char *text,
                           char table[][128], size_t *count)
{
    char copy[4096];
    char *save = NULL;
    char err[256];
    struct sockaddr_storage sa;
    socklen_t len;

    if (strlen(text) >= sizeof(copy))
        return usage_error("%s is too long", flag);
    if (text[0] == ',' || strstr(text, ",,") != NULL ||
        (text[0] != '\0' && text[strlen(text) - 1] == ','))
        return usage_error("invalid %s \"%s\": an empty entry", flag, text);
    snprintf(copy, sizeof(copy), "%s", text);
    *count = 0;
    for (char *item = strtok_r(copy, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        char *end;
        unsigned long id;
        if (eq == NULL)
            return usage_error("invalid %s entry \"%s\": expected ID=HOST:PORT",
                               flag, item);
        *eq = '\0';
        errno = 0;
        id = strtoul(item, &end, 10);
        if (*item == '\0' || *end != '\0' || id < 1 || id > RFT_MAX_NODES)
            return usage_error("invalid node id \"%s\" in %s: expected 1 to %d",
                               item, flag, RFT_MAX_NODES);
        if (table[id][0] != '\0')
            return usage_error("node %lu appears twice in %s", id, flag);
        if (strlen(eq + 1) >= 128) {
            snprintf(err, sizeof(err), "longer than 127 bytes");
            return usage_error("invalid address for node %lu in %s: %s", id,
                               flag, err);
        }
        if (kv_listen_parse(eq + 1, &sa, &len, err, sizeof(err)) != 0)
            return usage_error("invalid address for node %lu in %s: %s", id,
                               flag, err);
        if ((sa.ss_family == AF_INET &&
             ((struct sockaddr_in *)&sa)->sin_port == 0) ||
            (sa.ss_family == AF_INET6 &&
             ((struct sockaddr_in6 *)&sa)->sin6_port == 0))
            return usage_error("invalid address for node %lu in %s: port 0 "
                               "names no port another node can reach",
                               id, flag);
        for (uint32_t other = 1; other <= RFT_MAX_NODES; other++) {
            if (strcmp(table[other], eq + 1) == 0)
                return usage_error("nodes %u and %lu share the address %s "
                                   "in %s",
                                   other, id, eq + 1, flag);
        }
        snprintf(table[id], 128, "%s", eq + 1);
        (*count)++;
    }
    if (*count == 0)
        return usage_error("empty %s: expected ID=HOST:PORT,...", flag);
    return 0;
}

static int parse_uint(const char *flag, const char *text, uint64_t lo,
                      uint64_t hi, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(text, &end, 10);
    if (*text == '\0' || *text == '-' || *end != '\0' || errno != 0 || v < lo ||
        v > hi)
        return usage_error("invalid %s \"%s\": expected a number from %" PRIu64
                           " to %" PRIu64,
                           flag, text, lo, hi);
    *out = v;
    return 0;
}

enum {
    OPT_ID = 256,
    OPT_PEERS,
    OPT_CLIENTS,
    OPT_DATA_DIR,
    OPT_LISTEN_CLIENT,
    OPT_LISTEN_PEER,
    OPT_ELECTION,
    OPT_HEARTBEAT,
    OPT_SNAPSHOT_EVERY,
    OPT_INJECT_BUG,
    OPT_LOG_LEVEL,
};

static const struct option long_options[] = {
    {"id", required_argument, NULL, OPT_ID},
    {"peers", required_argument, NULL, OPT_PEERS},
    {"clients", required_argument, NULL, OPT_CLIENTS},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"listen-client", required_argument, NULL, OPT_LISTEN_CLIENT},
    {"listen-peer", required_argument, NULL, OPT_LISTEN_PEER},
    {"election-timeout-ms", required_argument, NULL, OPT_ELECTION},
    {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
    {"snapshot-every", required_argument, NULL, OPT_SNAPSHOT_EVERY},
    {"inject-bug", required_argument, NULL, OPT_INJECT_BUG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_options(int argc, char **argv, struct options *o)
{
    uint64_t v;
    size_t count;
    int c;

    memset(o, 0, sizeof(*o));
    o->election_ms = 1000;
    o->heartbeat_ms = 100;
    o->snapshot_every = 10000;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_ID:
            if (parse_uint("--id", optarg, 1, RFT_MAX_NODES, &v) != 0)
                return 2;
            o->id = (uint32_t)v;
            break;
        case OPT_PEERS:
            if (parse_addr_list("--peers", optarg, o->peers, &o->n_peers) != 0)
                return 2;
            break;
        case OPT_CLIENTS:
            if (parse_addr_list("--clients", optarg, o->clients, &count) != 0)
                return 2;
            break;
        case OPT_DATA_DIR:
            o->data_dir = optarg;
            break;
        case OPT_LISTEN_CLIENT:
            o->listen_client = optarg;
            break;
        case OPT_LISTEN_PEER:
            o->listen_peer = optarg;
            break;
        case OPT_ELECTION:
            if (parse_uint("--election-timeout-ms", optarg, 20, 600000, &v) !=
                0)
                return 2;
            o->election_ms = (unsigned)v;
            break;
        case OPT_HEARTBEAT:
            if (parse_uint("--heartbeat-ms", optarg, TICK_MS, 60000, &v) != 0)
                return 2;
            o->heartbeat_ms = (unsigned)v;
            break;
        case OPT_SNAPSHOT_EVERY:
            if (parse_uint("--snapshot-every", optarg, 0, UINT32_MAX, &v) != 0)
                return 2;
            o->snapshot_every = v;
            break;
        case OPT_INJECT_BUG: {
            unsigned bit;
            if (rft_bug_parse(optarg, &bit) != 0)
                return usage_error("unknown --inject-bug \"%s\": expected one "
                                   "of %s",
                                   optarg, rft_bug_names());
            o->bugs |= bit;
            break;
        }
        case OPT_LOG_LEVEL: {
            enum fl_log_level level;
            if (fl_log_parse_level(optarg, &level) != 0)
                return usage_error("invalid --log-level \"%s\": expected "
                                   "debug, info, warn, error or off",
                                   optarg);
            fl_log_set_level(level);
            break;
        }
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument \"%s\"", argv[optind]);
    if (o->id == 0 || o->n_peers == 0 || o->data_dir == NULL ||
        o->listen_client == NULL)
        return usage_error("--id, --peers, --data-dir and --listen-client "
                           "are required");
    if (o->data_dir[0] == '\0')
        return usage_error("empty --data-dir: expected a directory");
    for (uint32_t id = 1; id <= RFT_MAX_NODES; id++) {
        if (o->clients[id][0] != '\0' && o->peers[id][0] == '\0')
            return usage_error("--clients names node %u, which --peers "
                               "does not",
                               id);
    }
    {
        struct sockaddr_storage sa;
        socklen_t len;
        char err[256];
        if (kv_listen_parse(o->listen_client, &sa, &len, err, sizeof(err)) != 0)
            return usage_error("invalid --listen-client: %s", err);
        if (o->listen_peer != NULL &&
            kv_listen_parse(o->listen_peer, &sa, &len, err, sizeof(err)) != 0)
            return usage_error("invalid --listen-peer: %s", err);
    }
    if (o->peers[o->id][0] == '\0')
        return usage_error("--peers has no entry for this node's --id %u",
                           o->id);
    if (o->listen_peer == NULL)
        o->listen_peer = o->peers[o->id];
    if (o->heartbeat_ms * 2 > o->election_ms)
        return usage_error("--heartbeat-ms %u must be at most half of "
                           "--election-timeout-ms %u",
                           o->heartbeat_ms, o->election_ms);
    if (o->clients[o->id][0] == '\0')
        snprintf(o->clients[o->id], sizeof(o->clients[0]), "%s",
                 o->listen_client);
    return 0;
}

static int open_listener(const char *spec, char *err, size_t errsize)
{
    return kv_listen(spec, err, errsize);
}

static int setup(struct node *n)
{
    struct rft_durable d;
    struct rft_config c = {
        .id = n->o.id,
        .seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16),
        .election_ticks = n->o.election_ms / TICK_MS,
        .heartbeat_ticks = n->o.heartbeat_ms / TICK_MS,
        .bugs = n->o.bugs,
        .trace = on_trace,
    };
    struct kv_options ko;
    char path[4096];
    struct itimerspec its = {{0, TICK_MS * 1000000L}, {0, TICK_MS * 1000000L}};
    sigset_t mask;
    int rc;

    for (uint32_t id = 1; id <= RFT_MAX_NODES; id++) {
        if (n->o.peers[id][0] != '\0')
            c.nodes[c.n_nodes++] = id;
        n->peers[id] = (struct peer){
            .tag = {TAG_PEER_OUT, &n->peers[id]}, .id = id, .fd = -1};
        fl_buf_init(&n->peers[id].out);
        fl_buf_init(&n->peers[id].held);
    }
    if (getrandom(&n->session_base, sizeof(n->session_base), 0) !=
        (ssize_t)sizeof(n->session_base))
        n->session_base = (uint64_t)time(NULL) * UINT64_C(0x9e3779b97f4a7c15) ^
                          (uint64_t)getpid();
    n->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* Listen first, so a busy port fails before the slow recovery. */
    n->client_fd = open_listener(n->o.listen_client, n->err, sizeof(n->err));
    if (n->client_fd < 0)
        return -1;
    n->peer_fd = open_listener(n->o.listen_peer, n->err, sizeof(n->err));
    if (n->peer_fd < 0)
        return -1;
    if (mkdir(n->o.data_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(n->err, sizeof(n->err), "%s: cannot create: %s", n->o.data_dir,
                 strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/raft", n->o.data_dir);
    rc = rfs_open(&n->store, path, NULL, 0, n->err, sizeof(n->err));
    if (rc != 0)
        return rc;
    rfs_durable(n->store, &d);
    kv_options_default(&ko);
    ko.sync = KV_SYNC_BATCH;
    ko.batch_ms = 200;
    ko.snapshot_every = 100000;
    snprintf(path, sizeof(path), "%s/kv", n->o.data_dir);
    rc = rfm_open(&n->m, path, &ko, n->o.bugs, n->err, sizeof(n->err));
    if (rc != 0)
        return rc;
    /* The machine lost entries its last snapshot covers: start from it. */
    if (rfm_applied(n->m) < d.snapshot.index) {
        rc = rfm_import(n->m, d.snapshot.data, d.snapshot.len, n->err,
                        sizeof(n->err));
        if (rc != 0)
            return rc;
    }
    rc = rft_new(&n->r, &c, &d, n->err, sizeof(n->err));
    if (rc != 0)
        return rc;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    n->ep = epoll_create1(EPOLL_CLOEXEC);
    n->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    n->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (n->ep < 0 || n->signal_fd < 0 || n->timer_fd < 0 ||
        timerfd_settime(n->timer_fd, 0, &its, NULL) != 0) {
        snprintf(n->err, sizeof(n->err), "cannot set up the event loop: %s",
                 strerror(errno));
        return -1;
    }
    n->timer_tag = (struct tag){TAG_TIMER, NULL};
    n->signal_tag = (struct tag){TAG_SIGNAL, NULL};
    n->client_listen_tag = (struct tag){TAG_CLIENT_LISTEN, NULL};
    n->peer_listen_tag = (struct tag){TAG_PEER_LISTEN, NULL};
    watch(n, n->timer_fd, &n->timer_tag, EPOLLIN, EPOLL_CTL_ADD);
    watch(n, n->signal_fd, &n->signal_tag, EPOLLIN, EPOLL_CTL_ADD);
    watch(n, n->client_fd, &n->client_listen_tag, EPOLLIN, EPOLL_CTL_ADD);
    watch(n, n->peer_fd, &n->peer_listen_tag, EPOLLIN, EPOLL_CTL_ADD);
    FL_LOG_INFOF(
        "raftd", "started",
        "node=%u nodes=%zu client=%s peer=%s term=%" PRIu64
        " last_index=%" PRIu64 " snapshot=%" PRIu64 " machine_applied=%" PRIu64,
        n->o.id, c.n_nodes, n->o.listen_client, n->o.listen_peer, d.term,
        rft_last_index(n->r), d.snapshot.index, rfm_applied(n->m));
    return 0;
}

static void teardown(struct node *n)
{
    while (n->conns != NULL)
        conn_close(n, n->conns);
    for (uint32_t id = 1; id <= RFT_MAX_NODES; id++) {
        if (n->peers[id].fd >= 0)
            close(n->peers[id].fd);
        fl_buf_free(&n->peers[id].out);
        fl_buf_free(&n->peers[id].held);
    }
    for (size_t i = 0; i < n->n_writes; i++)
        fl_buf_free(&n->writes[i].arg);
    for (size_t i = 0; i < n->n_reads; i++)
        fl_buf_free(&n->reads[i].arg);
    free(n->writes);
    free(n->reads);
    rft_free(n->r);
    rfm_close(n->m);
    rfs_close(n->store);
    fl_buf_free(&n->out.response);
    fl_buf_free(&n->scratch);
    fl_buf_free(&n->frame);
    if (n->ep >= 0)
        close(n->ep);
    if (n->timer_fd >= 0)
        close(n->timer_fd);
    if (n->signal_fd >= 0)
        close(n->signal_fd);
    if (n->client_fd >= 0)
        close(n->client_fd);
    if (n->peer_fd >= 0)
        close(n->peer_fd);
    if (n->spare_fd >= 0)
        close(n->spare_fd);
}

int main(int argc, char **argv)
{
    static struct node node;
    struct node *n = &node;
    sigset_t mask;
    int rc;

    n->ep = n->timer_fd = n->signal_fd = n->client_fd = n->peer_fd = -1;
    n->spare_fd = -1;
    fl_buf_init(&n->out.response);
    fl_buf_init(&n->scratch);
    fl_buf_init(&n->frame);
    rc = parse_options(argc, argv, &n->o);
    if (rc != 0)
        return rc;
    /* Block the stop signals before the engine starts its threads, so
     * they reach only the signalfd. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (setup(n) != 0) {
        fprintf(stderr, "fl-raftd: %s\n", n->err);
        teardown(n);
        return 1;
    }
    rc = run(n);
    if (!n->failed)
        sync_and_release(n);
    FL_LOG_INFOF("raftd", "stopped", "node=%u term=%" PRIu64 " commit=%" PRIu64,
                 n->o.id, rft_term(n->r), rft_commit(n->r));
    teardown(n);
    return rc;
}
