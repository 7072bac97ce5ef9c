/*
 * Crash test of fl-kvd with real processes: clients write through RESP
 * from several threads while the server is killed with SIGKILL at seeded
 * random moments and restarted, again and again. After each restart every
 * key must hold the value of its last acknowledged write, or the value of
 * the one write to it that was in flight when the server died (which may or
 * may not have happened).
 *
 * Each thread owns its keys, so the expected value of a key is exact, and a
 * cas that expects that value must succeed. Run with the fl-kvd binary and
 * optionally a number of cycles and a seed:
 *
 *   kill_kvd PATH/TO/fl-kvd [CYCLES [SEED]]
 */
#include "kvd_util.h"
#include "rng.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS         4
#define KEYS_PER_THREAD 16
#define VALUE_MAX       64

struct key_state {
    char acked[VALUE_MAX];   /* value of the last acknowledged write; "" for
                                none yet */
    char pending[VALUE_MAX]; /* value of a write without a reply, or "" */
};

struct worker {
    int id;
    uint64_t seed;
    int cycle;
    struct key_state keys[KEYS_PER_THREAD];
    long acked_ops;
    char failure[512];
};

static const char *kvd;
static char tmpdir[256];
static int port;
static volatile sig_atomic_t stop_clients;
static pid_t server = -1;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void cleanup(void)
{
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        server = -1;
    }
}

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kill_kvd: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    cleanup();
    exit(1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- a minimal RESP client --------------------------------------------- */

struct conn {
    int fd;
    char buf[4096];
    size_t len;
};

static int conn_open(struct conn *c)
{
    struct sockaddr_in a = {0};
    int one = 1;

    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Sends a command of argc bulk strings; returns 0 or -1. */
static int send_cmd(struct conn *c, int argc, const char **argv)
{
    char out[1024];
    size_t n = (size_t)snprintf(out, sizeof(out), "*%d\r\n", argc);

    for (int i = 0; i < argc; i++)
        n += (size_t)snprintf(out + n, sizeof(out) - n, "$%zu\r\n%s\r\n",
                              strlen(argv[i]), argv[i]);
    for (size_t sent = 0; sent < n;) {
        ssize_t w = send(c->fd, out + sent, n - sent, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        sent += (size_t)w;
    }
    return 0;
}

/* Reads one line of a reply (without CRLF) into line; -1 on a lost
 * connection. */
static int read_line(struct conn *c, char *line, size_t size)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - c->buf);
            if (n > 0 && c->buf[n - 1] == '\r')
                n--;
            if (n >= size)
                return -1;
            memcpy(line, c->buf, n);
            line[n] = '\0';
            c->len -= (size_t)(nl + 1 - c->buf);
            memmove(c->buf, nl + 1, c->len);
            return 0;
        }
        if (c->len == sizeof(c->buf))
            return -1;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

/* Reads a bulk reply into value ("" and *found false for null). */
static int read_bulk(struct conn *c, char *value, size_t size, bool *found)
{
    char line[128];

    if (read_line(c, line, sizeof(line)) != 0 || line[0] != '$')
        return -1;
    *found = strcmp(line, "$-1") != 0;
    if (!*found) {
        value[0] = '\0';
        return 0;
    }
    return read_line(c, value, size);
}

/* ---- server ------------------------------------------------------------ */

static void start_server(int cycle)
{
    char listen[64];
    char data[300];
    char log[300];

    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(data, sizeof(data), "%s/data", tmpdir);
    snprintf(log, sizeof(log), "%s/kvd.log", tmpdir);
    server = fork();
    if (server < 0)
        die("fork failed: %s", strerror(errno));
    if (server == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(kvd, kvd, "--data-dir", data, "--listen", listen,
              "--snapshot-every", "300", "--segment-bytes", "32768",
              "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    /* Wait until it replies to PING. */
    for (int i = 0; i < 500; i++) {
        struct conn c;
        char line[64];
        const char *ping[] = {"PING"};
        if (conn_open(&c) == 0) {
            bool ok = send_cmd(&c, 1, ping) == 0 &&
                      read_line(&c, line, sizeof(line)) == 0 &&
                      strcmp(line, "+PONG") == 0;
            conn_close(&c);
            if (ok)
                return;
        }
        int status;
        if (waitpid(server, &status, WNOHANG) == server) {
            server = -1;
            die("cycle %d: fl-kvd exited at start with status %d; see %s",
                cycle, WIFEXITED(status) ? WEXITSTATUS(status) : -1, log);
        }
        sleep_ms(10);
    }
    die("cycle %d: fl-kvd did not answer PING within 5 s", cycle);
}

/* ---- checking ---------------------------------------------------------- */

static void key_name(char *out, size_t size, int thread, int k)
{
    snprintf(out, size, "t%d-k%d", thread, k);
}

/* Checks every key after a restart and resolves in-flight writes. */
static void verify(struct worker *w, int nworkers, int cycle, uint64_t seed)
{
    struct conn c;

    if (conn_open(&c) != 0)
        die("cycle %d: cannot connect to verify", cycle);
    for (int t = 0; t < nworkers; t++) {
        for (int k = 0; k < KEYS_PER_THREAD; k++) {
            struct key_state *s = &w[t].keys[k];
            char key[32];
            char value[VALUE_MAX];
            bool found;
            const char *get[] = {"GET", key};
            key_name(key, sizeof(key), t, k);
            if (send_cmd(&c, 2, get) != 0 ||
                read_bulk(&c, value, sizeof(value), &found) != 0)
                die("cycle %d: GET %s failed", cycle, key);
            if (strcmp(value, s->acked) == 0) {
                s->pending[0] = '\0';
            } else if (s->pending[0] != '\0' &&
                       strcmp(value, s->pending) == 0) {
                /* The in-flight write happened. */
                memcpy(s->acked, s->pending, sizeof(s->acked));
                s->pending[0] = '\0';
            } else {
                die("cycle %d (seed %" PRIu64 "): key %s is \"%s\" after a "
                    "restart, but its last acknowledged write set \"%s\"%s%s%s",
                    cycle, seed, key, found ? value : "(absent)", s->acked,
                    s->pending[0] ? " and the write in flight set \"" : "",
                    s->pending, s->pending[0] ? "\"" : "");
            }
        }
    }
    conn_close(&c);
}

/* ---- clients ----------------------------------------------------------- */

static void *client_main(void *arg)
{
    struct worker *w = arg;
    struct fl_rng rng;
    struct conn c;
    long n = 0;

    fl_rng_seed_stream(&rng, w->seed,
                       FL_RNG_STREAM_CLIENT + (uint64_t)w->id +
                           1000u * (uint64_t)w->cycle);
    if (conn_open(&c) != 0)
        return NULL;
    while (!stop_clients) {
        int k = (int)fl_rng_below(&rng, KEYS_PER_THREAD);
        struct key_state *s = &w->keys[k];
        char key[32];
        char value[VALUE_MAX];
        char line[128];
        bool cas = s->acked[0] != '\0' && fl_rng_chance(&rng, 0.4);
        key_name(key, sizeof(key), w->id, k);
        snprintf(value, sizeof(value), "c%d-t%d-n%ld", w->cycle, w->id, n++);
        memcpy(s->pending, value, sizeof(value));
        if (cas) {
            const char *argv[] = {"CAS", key, s->acked, value};
            if (send_cmd(&c, 4, argv) != 0 ||
                read_line(&c, line, sizeof(line)) != 0)
                break;
            if (strcmp(line, ":1") != 0) {
                snprintf(w->failure, sizeof(w->failure),
                         "CAS %s from its acknowledged value \"%s\" got "
                         "\"%s\"",
                         key, s->acked, line);
                break;
            }
        } else {
            const char *argv[] = {"SET", key, value};
            if (send_cmd(&c, 3, argv) != 0 ||
                read_line(&c, line, sizeof(line)) != 0)
                break;
            if (strcmp(line, "+OK") != 0) {
                snprintf(w->failure, sizeof(w->failure), "SET %s got \"%s\"",
                         key, line);
                break;
            }
        }
        memcpy(s->acked, value, sizeof(value));
        s->pending[0] = '\0';
        w->acked_ops++;
    }
    conn_close(&c);
    return NULL;
}

/* ---- main -------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int cycles = argc > 2 ? atoi(argv[2]) : 50;
    uint64_t seed =
        argc > 3 ? strtoull(argv[3], NULL, 10) : (uint64_t)time(NULL);
    struct worker workers[THREADS];
    struct fl_rng rng;
    long total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: kill_kvd PATH/TO/fl-kvd [CYCLES [SEED]]\n");
        return 2;
    }
    kvd = argv[1];
    printf("kill_kvd: seed %" PRIu64 ", %d cycles\n", seed, cycles);
    fflush(stdout);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/fl-kill-kvd.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        die("mkdtemp failed: %s", strerror(errno));
    port = kvd_free_port();
    if (port < 0)
        die("cannot find a free port: %s", strerror(errno));
    memset(workers, 0, sizeof(workers));
    fl_rng_seed_stream(&rng, seed, FL_RNG_STREAM_NEMESIS);

    for (int cycle = 1; cycle <= cycles; cycle++) {
        pthread_t tids[THREADS];
        start_server(cycle);
        verify(workers, THREADS, cycle, seed);
        stop_clients = 0;
        for (int t = 0; t < THREADS; t++) {
            workers[t].id = t;
            workers[t].seed = seed;
            workers[t].cycle = cycle;
            pthread_create(&tids[t], NULL, client_main, &workers[t]);
        }
        sleep_ms(20 + (long)fl_rng_below(&rng, 250));
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        server = -1;
        stop_clients = 1;
        for (int t = 0; t < THREADS; t++) {
            pthread_join(tids[t], NULL);
            if (workers[t].failure[0] != '\0')
                die("cycle %d (seed %" PRIu64 "): %s", cycle, seed,
                    workers[t].failure);
        }
    }
    /* One last restart: state intact, and a clean stop on SIGTERM. */
    start_server(cycles + 1);
    verify(workers, THREADS, cycles + 1, seed);
    kill(server, SIGTERM);
    int status;
    waitpid(server, &status, 0);
    server = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("fl-kvd did not stop cleanly on SIGTERM (status 0x%x)", status);
    for (int t = 0; t < THREADS; t++)
        total += workers[t].acked_ops;
    if (total == 0)
        die("no write was acknowledged in %d cycles", cycles);
    kvd_remove_tree(tmpdir);
    printf("kill_kvd: %d kill cycles, %ld acknowledged writes, all present\n",
           cycles, total);
    return 0;
}
