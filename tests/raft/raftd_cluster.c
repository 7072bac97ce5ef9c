/*
 * fl-raftd as real processes on loopback. Clusters of 3 and 5 nodes elect
 * a leader, take writes through the leader and turn them away at
 * followers, and lose no acknowledged write when the leader is killed. A
 * restarted node catches up through InstallSnapshot once the others have
 * compacted their logs, and a paused leader serves no stale read.
 * After each scenario `faultline audit raft` checks the nodes' logs: one
 * leader per term, one vote per node and term, and the same command hash
 * applied at each index on every node.
 *
 * Usage: raftd_cluster FL_RAFTD FAULTLINE. Prints one line per check and
 * exits 1 when any fails. The audit runs `faultline audit raft`.
 */
#include "kvd_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 5

struct cluster {
    int n;
    char dir[256];
    int client_port[MAX_NODES + 1];
    int peer_port[MAX_NODES + 1];
    pid_t pid[MAX_NODES + 1];
    const char *extra; /* more flags, space-separated */
};

static const char *raftd;
static const char *faultline;
static int failures;
static struct cluster *current; /* killed on a fatal failure */

static void stop_all(struct cluster *c);

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("raftd_cluster: FAIL: ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    if (current != NULL)
        stop_all(current);
    exit(1);
}

static void check(bool ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void check(bool ok, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs(ok ? "ok   " : "FAIL ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    fflush(stdout);
    failures += !ok;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- a minimal RESP client --------------------------------------------- */

/* Sends the command (NULL-terminated arguments) to port and reads one
 * reply into reply: "+OK", "-ERR ...", ":1", "$value", "$nil". Returns
 * false when the node cannot be reached or does not reply in time. */
static bool command(int port, char *reply, size_t size, ...)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {2, 0};
    char req[4096];
    size_t len = 0, argc = 0;
    const char *args[8];
    va_list ap;
    char buf[65536];
    size_t got = 0;
    int fd;

    va_start(ap, size);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL && argc < 8;)
        args[argc++] = s;
    va_end(ap);
    len += (size_t)snprintf(req + len, sizeof(req) - len, "*%zu\r\n", argc);
    for (size_t i = 0; i < argc; i++)
        len += (size_t)snprintf(req + len, sizeof(req) - len, "$%zu\r\n%s\r\n",
                                strlen(args[i]), args[i]);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        return false;
    }
    for (;;) {
        ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        char *eol = strstr(buf, "\r\n");
        if (eol == NULL)
            continue;
        if (buf[0] != '$')
            break;
        long n = strtol(buf + 1, NULL, 10);
        if (n < 0 || (size_t)(eol + 2 - buf) + (size_t)n + 2 <= got)
            break;
    }
    close(fd);
    if (got == 0)
        return false;
    buf[got] = '\0';
    if (buf[0] == '$') {
        char *eol = strstr(buf, "\r\n");
        long n = eol ? strtol(buf + 1, NULL, 10) : -1;
        if (n < 0)
            snprintf(reply, size, "$nil");
        else
            snprintf(reply, size, "$%.*s", (int)n, eol + 2);
    } else {
        size_t line = strcspn(buf, "\r\n");
        snprintf(reply, size, "%.*s", (int)(line < size ? line : size - 1),
                 buf);
    }
    return true;
}

/* Reads field from a node's INFO into out; false when unreachable. */
static bool info_field(int port, const char *field, char *out, size_t size)
{
    char reply[4096];
    char key[64];

    if (!command(port, reply, sizeof(reply), "INFO", NULL) || reply[0] != '$')
        return false;
    snprintf(key, sizeof(key), "%s:", field);
    char *p = strstr(reply, key);
    if (p == NULL)
        return false;
    p += strlen(key);
    size_t n = strcspn(p, "\r\n");
    snprintf(out, size, "%.*s", (int)n, p);
    return true;
}

static uint64_t info_u64(int port, const char *field)
{
    char v[64];

    return info_field(port, field, v, sizeof(v)) ? strtoull(v, NULL, 10) : 0;
}

/* ---- nodes ------------------------------------------------------------- */

static void start_node(struct cluster *c, int id)
{
    char peers[1024] = "", clients[1024] = "", data[512], log[512];
    char client[64], extra[256];
    const char *argv[32];
    int argc = 0;

    for (int i = 1; i <= c->n; i++) {
        size_t pl = strlen(peers), cl = strlen(clients);
        snprintf(peers + pl, sizeof(peers) - pl, "%s%d=127.0.0.1:%d",
                 i > 1 ? "," : "", i, c->peer_port[i]);
        snprintf(clients + cl, sizeof(clients) - cl, "%s%d=127.0.0.1:%d",
                 i > 1 ? "," : "", i, c->client_port[i]);
    }
    snprintf(data, sizeof(data), "%s/node%d", c->dir, id);
    snprintf(log, sizeof(log), "%s/node%d.log", c->dir, id);
    snprintf(client, sizeof(client), "127.0.0.1:%d", c->client_port[id]);
    char idtext[8];
    snprintf(idtext, sizeof(idtext), "%d", id);
    argv[argc++] = raftd;
    argv[argc++] = "--id";
    argv[argc++] = idtext;
    argv[argc++] = "--peers";
    argv[argc++] = peers;
    argv[argc++] = "--clients";
    argv[argc++] = clients;
    argv[argc++] = "--data-dir";
    argv[argc++] = data;
    argv[argc++] = "--listen-client";
    argv[argc++] = client;
    argv[argc++] = "--election-timeout-ms";
    argv[argc++] = "300";
    argv[argc++] = "--heartbeat-ms";
    argv[argc++] = "50";
    snprintf(extra, sizeof(extra), "%s", c->extra ? c->extra : "");
    for (char *save = NULL, *t = strtok_r(extra, " ", &save);
         t != NULL && argc < 30; t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        die("fork failed: %s", strerror(errno));
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        execv(raftd, (char *const *)argv);
        _exit(127);
    }
    c->pid[id] = pid;
}

static void kill_node(struct cluster *c, int id, int sig)
{
    if (c->pid[id] <= 0)
        return;
    kill(c->pid[id], sig);
    if (sig == SIGKILL || sig == SIGTERM) {
        waitpid(c->pid[id], NULL, 0);
        c->pid[id] = 0;
    }
}

static void stop_all(struct cluster *c)
{
    for (int i = 1; i <= c->n; i++) {
        if (c->pid[i] > 0) {
            kill(c->pid[i], SIGCONT);
            kill_node(c, i, SIGKILL);
        }
    }
}

static void start_cluster(struct cluster *c, int n, const char *extra)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    c->extra = extra;
    snprintf(c->dir, sizeof(c->dir), "/tmp/fl-raftd.XXXXXX");
    if (mkdtemp(c->dir) == NULL)
        die("mkdtemp failed: %s", strerror(errno));
    for (int i = 1; i <= n; i++) {
        c->client_port[i] = kvd_free_port();
        c->peer_port[i] = kvd_free_port();
    }
    current = c;
    for (int i = 1; i <= n; i++)
        start_node(c, i);
}

/* Waits until exactly one reachable node reports the leader role; returns
 * its id, or 0 on timeout. */
static int wait_leader(struct cluster *c, int timeout_ms, int except)
{
    int64_t end = now_ms() + timeout_ms;

    while (now_ms() < end) {
        int leader = 0, leaders = 0;
        for (int i = 1; i <= c->n; i++) {
            char role[32];
            if (i == except || c->pid[i] <= 0)
                continue;
            if (info_field(c->client_port[i], "role", role, sizeof(role)) &&
                strcmp(role, "leader") == 0) {
                leader = i;
                leaders++;
            }
        }
        if (leaders == 1)
            return leader;
        sleep_ms(50);
    }
    return 0;
}

/* Writes key=value through node id, following -NOTLEADER; returns the
 * final reply's first character, or 0 when no node replied. */
static char write_key(struct cluster *c, int id, const char *key,
                      const char *value, char *reply, size_t size)
{
    for (int tries = 0; tries < 20; tries++) {
        if (!command(c->client_port[id], reply, size, "SET", key, value, NULL))
            return 0;
        if (strncmp(reply, "-NOTLEADER 127.0.0.1:", 21) != 0)
            return reply[0];
        int port = atoi(reply + 21);
        for (int i = 1; i <= c->n; i++) {
            if (c->client_port[i] == port)
                id = i;
        }
    }
    return reply[0];
}

/* Counts the lines of node id's log that contain every one of the
 * NULL-terminated patterns. */
static int log_count(const struct cluster *c, int id, ...)
{
    char path[512], line[2048];
    const char *pats[8];
    int n = 0, count = 0;
    va_list ap;

    va_start(ap, id);
    for (const char *p; (p = va_arg(ap, const char *)) != NULL && n < 8;)
        pats[n++] = p;
    va_end(ap);
    snprintf(path, sizeof(path), "%s/node%d.log", c->dir, id);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        bool all = true;
        for (int i = 0; i < n; i++)
            all = all && strstr(line, pats[i]) != NULL;
        count += all;
    }
    fclose(f);
    return count;
}

/* ---- the log audit ----------------------------------------------------- */

/* Runs `faultline audit raft` over every node's log: one leader per term,
 * one vote per node and term, one command per index. */
static void audit(struct cluster *c, const char *name)
{
    char cmd[4096], out[4096] = "";
    size_t len = 0;

    len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "'%s' audit raft",
                            faultline);
    for (int id = 1; id <= c->n; id++)
        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len,
                                " '%s/node%d.log'", c->dir, id);
    snprintf(cmd + len, sizeof(cmd) - len, " 2>&1");
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        die("popen failed: %s", strerror(errno));
    size_t got = fread(out, 1, sizeof(out) - 1, p);
    out[got] = '\0';
    int status = pclose(p);
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
              strstr(out, " 0 violation(s)") != NULL &&
              strstr(out, "\n0 raft events") == NULL &&
              strncmp(out, "0 raft events", 13) != 0;
    out[strcspn(out, "\n")] = '\0';
    check(ok, "%s: faultline audit raft: %s", name, out);
}

static void finish(struct cluster *c, const char *name)
{
    stop_all(c);
    audit(c, name);
    if (failures == 0)
        kvd_remove_tree(c->dir);
    else
        printf("     logs kept in %s\n", c->dir);
    current = NULL;
}

/* ---- scenarios --------------------------------------------------------- */

/* Three nodes: election, writes at the leader, -NOTLEADER at followers,
 * sessions, a killed leader, a restarted node catching up through
 * InstallSnapshot. */
static void three_nodes(void)
{
    struct cluster c;
    char reply[4096], key[32], value[32], want[64];
    int leader, follower, next;
    bool all = true;

    start_cluster(&c, 3, "--snapshot-every 20");
    leader = wait_leader(&c, 10000, 0);
    check(leader != 0, "3 nodes: a leader is elected (node %d)", leader);
    if (leader == 0)
        die("no leader; logs in %s", c.dir);
    follower = leader % 3 + 1;
    /* A node reports the leader role before the others have heard from
     * it; a follower names the leader only after its first heartbeat. */
    int64_t until = now_ms() + 5000;
    while (now_ms() < until &&
           info_u64(c.client_port[follower], "leader") != (uint64_t)leader)
        sleep_ms(20);

    check(command(c.client_port[leader], reply, sizeof(reply), "SET", "a", "1",
                  NULL) &&
              strcmp(reply, "+OK") == 0,
          "3 nodes: SET at the leader: %s", reply);
    snprintf(want, sizeof(want), "-NOTLEADER 127.0.0.1:%d",
             c.client_port[leader]);
    check(command(c.client_port[follower], reply, sizeof(reply), "SET", "a",
                  "2", NULL) &&
              strcmp(reply, want) == 0,
          "3 nodes: SET at a follower names the leader: %s", reply);
    check(write_key(&c, follower, "b", "x", reply, sizeof(reply)) == '+',
          "3 nodes: a write sent to a follower reaches the leader");
    check(command(c.client_port[leader], reply, sizeof(reply), "GET", "a",
                  NULL) &&
              strcmp(reply, "$1") == 0,
          "3 nodes: GET at the leader: %s", reply);
    check(command(c.client_port[leader], reply, sizeof(reply), "CAS", "a", "1",
                  "3", NULL) &&
              strcmp(reply, ":1") == 0,
          "3 nodes: CAS that matches: %s", reply);
    check(command(c.client_port[leader], reply, sizeof(reply), "DEL", "zz",
                  NULL) &&
              strcmp(reply, ":0") == 0,
          "3 nodes: DEL of a missing key: %s", reply);

    /* Acknowledged writes, enough for several snapshots. */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        if (write_key(&c, leader, key, value, reply, sizeof(reply)) != '+')
            all = false;
    }
    check(all, "3 nodes: 100 writes acknowledged");

    kill_node(&c, leader, SIGKILL);
    next = wait_leader(&c, 10000, leader);
    check(next != 0 && next != leader,
          "3 nodes: after SIGKILL of leader %d, node %d leads", leader, next);
    if (next == 0)
        die("no new leader; logs in %s", c.dir);
    all = true;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(want, sizeof(want), "$v%d", i);
        if (!command(c.client_port[next], reply, sizeof(reply), "GET", key,
                     NULL) ||
            strcmp(reply, want) != 0) {
            all = false;
            printf("     %s: got %s\n", key, reply);
            break;
        }
    }
    check(all, "3 nodes: every acknowledged write survives the leader");

    /* More writes while the old leader is down, so the others compact
     * past what it has, then restart it. */
    for (int i = 100; i < 160; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        write_key(&c, next, key, value, reply, sizeof(reply));
    }
    start_node(&c, leader);
    int64_t end = now_ms() + 10000;
    uint64_t target = info_u64(c.client_port[next], "commit");
    while (now_ms() < end &&
           info_u64(c.client_port[leader], "applied") < target)
        sleep_ms(50);
    check(info_u64(c.client_port[leader], "applied") >= target,
          "3 nodes: the restarted node applied up to %" PRIu64, target);
    /* The trace marks a snapshot installed from the leader with vote=1. */
    check(log_count(&c, leader, "comp=raft msg=snapshot", "vote=1", NULL) > 0,
          "3 nodes: it caught up through InstallSnapshot (snapshot index "
          "%" PRIu64 ")",
          info_u64(c.client_port[leader], "snapshot_index"));
    finish(&c, "3 nodes");
}

/* Sends the inline commands in req on one connection, reads one reply
 * line per command (replies here are single lines), and copies the last
 * one into reply. Returns false when the node did not reply in time. */
static bool exchange(int port, const char *req, int commands, char *reply,
                     size_t size)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {3, 0};
    char buf[1024];
    size_t got = 0;
    int lines = 0;
    int len = (int)strlen(req);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
        close(fd);
        return false;
    }
    while (lines < commands && got < sizeof(buf) - 1) {
        ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        lines = 0;
        for (char *p = buf; (p = strstr(p, "\r\n")) != NULL; p += 2)
            lines++;
    }
    close(fd);
    if (lines < commands)
        return false;
    char *last = buf;
    for (int i = 0; i < commands - 1; i++)
        last = strstr(last, "\r\n") + 2;
    last[strcspn(last, "\r\n")] = '\0';
    snprintf(reply, size, "%s", last);
    return true;
}

/* Sends SESSION, SEQ and a CAS on one connection; returns the last
 * reply. */
static bool session_write(int port, const char *session, const char *seq,
                          const char *key, const char *value, char *reply,
                          size_t size)
{
    char req[512];

    snprintf(req, sizeof(req), "SESSION %s\r\nSEQ %s\r\nCAS %s x %s\r\n",
             session, seq, key, value);
    return exchange(port, req, 3, reply, size);
}

/* A retried CAS with the same session numbers returns the first response
 * and does not apply again. */
static void sessions(void)
{
    struct cluster c;
    char reply[256];
    int leader;

    start_cluster(&c, 3, "");
    leader = wait_leader(&c, 10000, 0);
    if (leader == 0)
        die("sessions: no leader; logs in %s", c.dir);
    int port = c.client_port[leader];
    command(port, reply, sizeof(reply), "SET", "s", "x", NULL);
    check(session_write(port, "41", "1", "s", "y", reply, sizeof(reply)) &&
              strcmp(reply, ":1") == 0,
          "sessions: CAS x->y with session 41, seq 1: %s", reply);
    /* Make the value x again with another client. */
    command(port, reply, sizeof(reply), "SET", "s", "x", NULL);
    check(session_write(port, "41", "1", "s", "y", reply, sizeof(reply)) &&
              strcmp(reply, ":1") == 0,
          "sessions: the retry gets the cached answer: %s", reply);
    check(command(port, reply, sizeof(reply), "GET", "s", NULL) &&
              strcmp(reply, "$x") == 0,
          "sessions: the retry did not apply again: %s", reply);
    /* A number below the session's last one is refused, not applied. */
    check(exchange(port, "SESSION 41\r\nSEQ 2\r\nSET s z\r\n", 3, reply,
                   sizeof(reply)) &&
              strcmp(reply, "+OK") == 0,
          "sessions: seq 2 applies: %s", reply);
    check(exchange(port, "SESSION 41\r\nSEQ 1\r\nSET s w\r\n", 3, reply,
                   sizeof(reply)) &&
              strncmp(reply, "-ERR SEQ 1 is below", 19) == 0,
          "sessions: an older seq is refused: %s", reply);
    /* A resumed session must give SEQ before it writes again. */
    check(
        exchange(port, "SESSION 41\r\nSET s v\r\n", 2, reply, sizeof(reply)) &&
            strncmp(reply, "-ERR a resumed session needs SEQ", 32) == 0,
        "sessions: a resumed session needs SEQ: %s", reply);
    check(command(port, reply, sizeof(reply), "GET", "s", NULL) &&
              strcmp(reply, "$z") == 0,
          "sessions: neither refused write applied: %s", reply);
    char first[64], second[64];
    check(command(port, first, sizeof(first), "SESSION", NULL) &&
              command(port, second, sizeof(second), "SESSION", NULL) &&
              first[0] == ':' && strcmp(first, second) != 0,
          "sessions: new sessions get distinct ids (%s, %s)", first, second);
    finish(&c, "sessions");
}

/* A paused leader, replaced while stopped, serves no stale read when it
 * continues. */
static void paused_leader(void)
{
    struct cluster c;
    char reply[256];
    int leader, next;

    start_cluster(&c, 3, "");
    leader = wait_leader(&c, 10000, 0);
    if (leader == 0)
        die("pause: no leader; logs in %s", c.dir);
    command(c.client_port[leader], reply, sizeof(reply), "SET", "p", "old",
            NULL);
    kill_node(&c, leader, SIGSTOP);
    next = wait_leader(&c, 10000, leader);
    check(next != 0, "pause: node %d leads while node %d is stopped", next,
          leader);
    if (next == 0)
        die("pause: no new leader; logs in %s", c.dir);
    write_key(&c, next, "p", "new", reply, sizeof(reply));
    kill_node(&c, leader, SIGCONT);
    bool stale = false;
    for (int i = 0; i < 20; i++) {
        if (command(c.client_port[leader], reply, sizeof(reply), "GET", "p",
                    NULL) &&
            strcmp(reply, "$old") == 0)
            stale = true;
    }
    check(!stale,
          "pause: the old leader serves no stale read (last reply "
          "%s)",
          reply);
    char role[32] = "";
    int64_t end = now_ms() + 5000;
    while (now_ms() < end &&
           (!info_field(c.client_port[leader], "role", role, sizeof(role)) ||
            strcmp(role, "leader") == 0))
        sleep_ms(50);
    check(strcmp(role, "follower") == 0,
          "pause: the old leader stepped down (%s)", role);
    finish(&c, "pause");
}

/* Five nodes keep working with two of them killed; a bad peer frame is
 * dropped without harm. */
static void five_nodes(void)
{
    struct cluster c;
    char reply[256];
    int leader, next;

    start_cluster(&c, 5, "");
    leader = wait_leader(&c, 10000, 0);
    check(leader != 0, "5 nodes: a leader is elected (node %d)", leader);
    if (leader == 0)
        die("5 nodes: no leader; logs in %s", c.dir);
    int victim = leader % 5 + 1;
    kill_node(&c, victim, SIGKILL);
    kill_node(&c, leader, SIGKILL);
    next = wait_leader(&c, 10000, 0);
    check(next != 0, "5 nodes: with two nodes down, node %d leads", next);
    if (next == 0)
        die("5 nodes: no leader; logs in %s", c.dir);
    check(write_key(&c, next, "f", "5", reply, sizeof(reply)) == '+',
          "5 nodes: writes go on with three nodes: %s", reply);

    /* Bad frames on a peer port are logged and their connections
     * dropped: a wrong version, a wrong CRC, and a frame cut short. */
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\x10\0\0\0\x07\x01\0\0garbage-garbage!xxxx", 28},
        {"\x08\0\0\0\x01\x01\0\0\x02\0\0\0\x05\0\0\0\xde\xad\xbe\xef", 20},
        {"\x08\0\0\0\x01\x01\0\0\x02\0", 10},
    };
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)c.peer_port[next]),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            send(fd, bad[i].bytes, bad[i].len, MSG_NOSIGNAL);
            sleep_ms(100);
        }
        if (fd >= 0)
            close(fd);
    }
    sleep_ms(100);
    check(command(c.client_port[next], reply, sizeof(reply), "PING", NULL) &&
              strcmp(reply, "+PONG") == 0,
          "5 nodes: the leader survives bad peer frames");
    check(log_count(&c, next, "bad peer frame", "version", NULL) > 0,
          "5 nodes: the wrong version is logged");
    check(log_count(&c, next, "bad peer frame", "checksum", NULL) > 0,
          "5 nodes: the wrong CRC is logged");
    check(log_count(&c, next, "in the middle of a frame", NULL) > 0,
          "5 nodes: the frame cut short is logged");

    finish(&c, "5 nodes");
}

/* A node of one commits during the loop pass that persists, so pipelined
 * reads and writes settle one after another in the same pass. Replies
 * must come back complete and in order (this once ran the next command
 * inside the update of the one before). */
static void one_node_pipelined(void)
{
    static const char req[] = "SET a 1\r\nGET a\r\nSET b 2\r\nGET b\r\n"
                              "GET zz\r\nCAS a 1 5\r\nGET a\r\nDEL a\r\n"
                              "GET a\r\n";
    static const char want[] = "+OK\r\n$1\r\n1\r\n+OK\r\n$1\r\n2\r\n"
                               "$-1\r\n:1\r\n$1\r\n5\r\n:1\r\n$-1\r\n";
    struct cluster c;
    char buf[512];
    size_t got = 0;
    int leader;

    start_cluster(&c, 1, "");
    leader = wait_leader(&c, 10000, 0);
    if (leader == 0)
        die("1 node: no leader; logs in %s", c.dir);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)c.client_port[1]),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {3, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
            send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) ==
                (ssize_t)sizeof(req) - 1) {
            while (got < sizeof(want) - 1) {
                ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
                if (r <= 0)
                    break;
                got += (size_t)r;
            }
        }
        close(fd);
    }
    buf[got] = '\0';
    check(strcmp(buf, want) == 0,
          "1 node: nine pipelined commands get their replies in order");
    finish(&c, "1 node");
}

/* Bad flags end the node with exit 2 and a message naming the flag. */
static void bad_flags(void)
{
    static const struct {
        const char *args;
        const char *want;
    } cases[] = {
        {"--id 1 --data-dir /tmp/x --listen-client 127.0.0.1:3",
         "are required"},
        {"--id 1 --peers 1=127.0.0.1:5,,2=127.0.0.1:6 --data-dir /tmp/x "
         "--listen-client 127.0.0.1:3",
         "an empty entry"},
        {"--id 1 --peers 1=127.0.0.1:5,2=127.0.0.1:5 --data-dir /tmp/x "
         "--listen-client 127.0.0.1:3",
         "share the address"},
        {"--id 3 --peers 1=127.0.0.1:5 --data-dir /tmp/x "
         "--listen-client 127.0.0.1:3",
         "no entry for this node"},
        {"--id 1 --peers 1=127.0.0.1:0 --data-dir /tmp/x "
         "--listen-client 127.0.0.1:3",
         "port 0"},
        {"--id 1 --peers 1=127.0.0.1:5 --data-dir /tmp/x "
         "--listen-client nowhere",
         "invalid --listen-client"},
        {"--id 1 --peers 1=127.0.0.1:5 --data-dir /tmp/x "
         "--listen-client 127.0.0.1:3 --heartbeat-ms 900",
         "at most half"},
        {"--id 1 --peers 1=127.0.0.1:5 --data-dir /tmp/x "
         "--listen-client 127.0.0.1:3 --inject-bug nope",
         "unknown --inject-bug"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cmd[1024], out[1024] = "";
        snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", raftd, cases[i].args);
        FILE *p = popen(cmd, "r");
        if (p == NULL)
            die("popen failed: %s", strerror(errno));
        size_t got = fread(out, 1, sizeof(out) - 1, p);
        out[got] = '\0';
        int status = pclose(p);
        bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 2 &&
                  strstr(out, cases[i].want) != NULL;
        out[strcspn(out, "\n")] = '\0';
        check(ok, "flags: %s", out);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: raftd_cluster FL_RAFTD FAULTLINE\n");
        return 2;
    }
    raftd = argv[1];
    faultline = argv[2];
    signal(SIGPIPE, SIG_IGN);
    bad_flags();
    one_node_pipelined();
    three_nodes();
    sessions();
    paused_leader();
    five_nodes();
    printf("%s\n", failures ? "raftd_cluster: FAILED" : "raftd_cluster: ok");
    return failures ? 1 : 0;
}
