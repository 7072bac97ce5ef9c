/*
 * `faultline run` and `faultline repro`: one campaign against a real
 * cluster.
 *
 * The main thread owns everything with a lifetime. It makes the network,
 * starts and restarts the nodes, applies and heals faults, and tears it
 * all down. PR_SET_PDEATHSIG ties a node to the thread that started it, so
 * that thread must live for the whole run. The
 * workload runs on threads of its own (workloads/register.h) and writes
 * history.jsonl as it goes, so a killed runner still leaves a checkable
 * prefix. SIGINT, SIGTERM and SIGHUP are blocked in every thread and read
 * from a signalfd by the main loop, which then tears down as after a
 * normal run.
 */
#include "cli.h"
#include "run.h"

#include "clock.h"
#include "disk_fault.h"
#include "error.h"
#include "history.h"
#include "html.h"
#include "log.h"
#include "net.h"
#include "proc.h"
#include "register.h"
#include "rng.h"
#include "store.h"
/* By path: sim/disk.h, the simulated disk, comes first on the include
 * path. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_PORT      7000
#define PEER_PORT        7100
#define MAX_NOTES        16
#define MAX_CRASHES      64
#define READY_TIMEOUT_NS (30 * FL_NSEC_PER_SEC)

static const char run_help[] =
    "Usage: faultline run CAMPAIGN.json [OPTIONS]\n"
    "\n"
    "Starts the campaign's cluster as real processes, each node in its own\n"
    "network namespace, drives the register workload at it while the\n"
    "nemesis injects the campaign's faults, heals, reads every key, and\n"
    "checks the history. Everything lands in STORE/CAMPAIGN/TIME-sSEED/.\n"
    "\n"
    "Options:\n"
    "  --seed N         the run's seed (default: the campaign's, else random)\n"
    "  --duration S     workload seconds, overriding the campaign's\n"
    "  --nodes N        cluster size, overriding the campaign's\n"
    "  --store DIR      where runs are stored (default: store)\n"
    "  --network MODE   auto (default), namespaces or loopback\n"
    "  --no-bugs        run without the campaign's planted bugs, as\n"
    "                   NAME-no-bugs expecting valid: its faults alone must\n"
    "                   not break the correct system\n"
    "  --dry-run        validate, print the resolved campaign and the fault\n"
    "                   plan, and start nothing\n"
    "  --bin-dir DIR    where fl-raftd and fl-kvd are (default: found next\n"
    "                   to faultline)\n"
    "\n"
    "Exit codes: 0 valid, 1 invalid, 2 usage or input error, 3 unknown,\n"
    "4 infrastructure failure, 130 interrupted.\n";

static const char repro_help[] =
    "Usage: faultline repro RUN_DIR [--store DIR] [--bin-dir DIR] "
    "[--dry-run]\n"
    "\n"
    "Runs a stored run's campaign again with the same seed, injecting the\n"
    "faults recorded in RUN_DIR/nemesis.jsonl at the same times and on the\n"
    "same nodes. Real processes add timing of their own, so a repro\n"
    "replays the faults exactly, not every interleaving.\n";

/* A node runs as a plain process (proc), or under the disk-fault
 * supervisor (disk) when the campaign has disk faults. With disk set,
 * proc.pid, proc.stopped and proc.status mirror the supervised program
 * and proc.pidfd stays -1, because the supervisor owns and reaps the
 * child. */
struct node {
    unsigned id;
    struct nem_proc proc;
    struct nem_disk *disk;
    char client_addr[64];
    char peer_addr[64];
    char data_dir[PATH_MAX];
    char log_path[PATH_MAX];
    bool killed;         /* by the nemesis; restarted when the fault stops */
    int64_t restart_at;  /* after an exit the nemesis did not cause */
    unsigned disk_armed; /* disk faults armed on calls, active on it */
    uint64_t disk_fired; /* the supervisor's faults_fired when armed */
    /* The corrupt fault's damage, and until when an exit after the
     * restart on it counts as refusing the damaged store. */
    struct run_damage damage;
    int64_t refuse_until;
};

struct run {
    struct camp_campaign c;
    uint64_t seed;
    char run_id[17];
    char dir[PATH_MAX / 2]; /* short enough for the paths made from it */
    char tmp[64];
    char bin_raftd[PATH_MAX];
    char bin_kvd[PATH_MAX];
    bool namespaces;
    bool disk_faults; /* nodes run under nemesis/disk_fault.h */
    bool registered;
    struct nem_net *net;
    int root_ns;
    struct node nodes[CAMP_MAX_NODES + 1];
    struct run_plan plan;
    bool replay;
    size_t next_fault;
    struct run_fault *active[CAMP_MAX_NODES * 4];
    size_t n_active;
    uint64_t rng;
    int64_t base;
    FILE *nemesis_log;
    struct fl_hist_writer *history;
    struct wl_reg *workload;
    int sigfd;
    bool interrupted;
    char broken[320]; /* why the run cannot go on, or "" */
    bool tty;
    const char *notes[MAX_NOTES];
    char note_text[MAX_NOTES][256];
    size_t n_notes;
    const char *crashes[MAX_CRASHES];
    char crash_text[MAX_CRASHES][160];
    size_t n_crashes;
};

static void note(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct run *r, const char *fmt, ...)
{
    va_list ap;

    if (r->n_notes == MAX_NOTES)
        return;
    va_start(ap, fmt);
    vsnprintf(r->note_text[r->n_notes], sizeof(r->note_text[0]), fmt, ap);
    va_end(ap);
    r->notes[r->n_notes] = r->note_text[r->n_notes];
    fprintf(stderr, "%sfaultline run: note: %s\n", r->tty ? "\r\033[K" : "",
            r->note_text[r->n_notes]);
    r->n_notes++;
}

/* Formats like snprintf, for messages and paths that may be cut short. A
 * cut message is still readable, and a cut path fails to open with a
 * clear error. */
static void say(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}

/* Records that the run cannot go on (a node that cannot restart, a
 * history that cannot be written): the main loop stops, the final reads
 * are skipped, and the run exits 4 unless an anomaly was found already. */
static void broken(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void broken(struct run *r, const char *fmt, ...)
{
    va_list ap;

    if (r->broken[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(r->broken, sizeof(r->broken), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%sfaultline run: %s; stopping the run\n",
            r->tty ? "\r\033[K" : "", r->broken);
}

static int64_t now_rel(const struct run *r)
{
    return fl_clock_now_ns() - r->base;
}

/* ---- files and paths --------------------------------------------------- */

static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -errno;
    fwrite(data, 1, len, f);
    if (fclose(f) != 0)
        return -errno;
    return 0;
}

/* Finds a daemon next to the faultline binary: in the build tree it is in
 * ../systems/DIR/, installed it sits in the same folder. */
static int find_binary(const char *bin_dir, const char *subdir,
                       const char *name, char *out, size_t size)
{
    char self[PATH_MAX];
    ssize_t n;

    if (bin_dir != NULL) {
        snprintf(out, size, "%s/%s", bin_dir, name);
        return access(out, X_OK) == 0 ? 0 : -errno;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return -errno;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL)
        *slash = '\0';
    if (snprintf(out, size, "%s/../systems/%s/%s", self, subdir, name) <
            (int)size &&
        access(out, X_OK) == 0)
        return 0;
    if (snprintf(out, size, "%s/%s", self, name) >= (int)size)
        return -ENAMETOOLONG;
    return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

/* ---- talking to nodes -------------------------------------------------- */

/* A TCP socket in the clients' namespace (or this one, on loopback),
 * connected to addr within timeout_ms; -1 on failure. */
static int dial(struct run *r, const char *addr, int timeout_ms)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int fd;

    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (r->namespaces &&
        setns(nem_net_ns_fd(r->net, NEM_CLIENT_IDX), CLONE_NEWNET) != 0)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (r->namespaces && setns(r->root_ns, CLONE_NEWNET) != 0) {
        /* Staying in the clients' namespace would put later nodes' helper
         * sockets there too; there is no way on but to stop. */
        FL_LOG_ERROR_MSG("run", "cannot return to the runner's network "
                                "namespace");
        abort();
    }
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t elen = sizeof(err);
    if (poll(&pfd, 1, timeout_ms) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one inline command and reads the first reply line or bulk into
 * out. Returns the reply's length, or -1. */
static int ask(struct run *r, const struct node *n, const char *cmd, char *out,
               size_t size, int timeout_ms)
{
    int fd = dial(r, n->client_addr, timeout_ms);
    size_t got = 0;
    int64_t deadline = fl_clock_now_ns() + timeout_ms * FL_NSEC_PER_MSEC;

    if (fd < 0)
        return -1;
    if (send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) != (ssize_t)strlen(cmd)) {
        close(fd);
        return -1;
    }
    while (got + 1 < size) {
        int64_t left = (deadline - fl_clock_now_ns()) / FL_NSEC_PER_MSEC;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) != 1)
            break;
        ssize_t k = recv(fd, out + got, size - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
        out[got] = '\0';
        /* A bulk reply is complete once its length is there. */
        if (out[0] == '$') {
            long blen = strtol(out + 1, NULL, 10);
            char *body = strstr(out, "\r\n");
            if (body != NULL && blen >= 0 &&
                (size_t)(body + 2 - out) + (size_t)blen + 2 <= got)
                break;
        } else if (strstr(out, "\r\n") != NULL) {
            break;
        }
    }
    close(fd);
    out[got] = '\0';
    return got > 0 ? (int)got : -1;
}

/* Returns the node that reports itself leader in the highest term, or 0. */
static unsigned find_primary(struct run *r)
{
    unsigned best = 0;
    uint64_t best_term = 0;
    char reply[1024];

    if (r->c.system == CAMP_SYSTEM_KV)
        return 1;
    for (unsigned i = 1; i <= r->c.nodes; i++) {
        struct node *n = &r->nodes[i];
        if (n->proc.pid == 0 || n->proc.stopped)
            continue;
        if (ask(r, n, "INFO\r\n", reply, sizeof(reply), 200) < 0)
            continue;
        const char *role = strstr(reply, "role:leader");
        const char *term = strstr(reply, "term:");
        if (role == NULL || term == NULL)
            continue;
        uint64_t t = strtoull(term + 5, NULL, 10);
        if (best == 0 || t > best_term) {
            best = i;
            best_term = t;
        }
    }
    return best;
}

/* ---- nodes ------------------------------------------------------------- */

/* Reaps the node if it exited, like nem_proc_poll: returns 1 with
 * n->proc.status set and pid cleared, 0 while it runs, or an error. */
static int node_poll(struct node *n)
{
    int rc;

    if (n->disk == NULL)
        return nem_proc_poll(&n->proc);
    if (n->proc.pid == 0)
        return 0;
    rc = nem_disk_wait(n->disk, 0, &n->proc.status);
    if (rc == 1) {
        n->proc.pid = 0;
        n->proc.stopped = false;
    }
    return rc;
}

/* Sends sig to a running node, tracking SIGSTOP and SIGCONT. A supervised
 * program is this process's unreaped child, so its pid cannot be reused
 * before nem_disk_wait reaps it. */
static void node_signal(struct node *n, int sig)
{
    if (n->disk == NULL) {
        nem_proc_signal(&n->proc, sig);
        return;
    }
    if (n->proc.pid == 0 || kill(n->proc.pid, sig) != 0)
        return;
    if (sig == SIGSTOP)
        n->proc.stopped = true;
    else if (sig == SIGCONT)
        n->proc.stopped = false;
}

/* Stops a node like nem_proc_stop: continues it, sends sig, waits up to
 * timeout_ms, then SIGKILLs it. A supervised node's undo log stays, as a
 * machine's page cache outlives a process. */
static void node_stop(struct node *n, int sig, int timeout_ms)
{
    if (n->disk == NULL) {
        nem_proc_stop(&n->proc, sig, timeout_ms);
        return;
    }
    if (n->proc.pid == 0)
        return;
    if (n->proc.stopped)
        node_signal(n, SIGCONT);
    if (sig != SIGKILL && kill(n->proc.pid, sig) == 0 &&
        nem_disk_wait(n->disk, timeout_ms, &n->proc.status) == 1) {
        n->proc.pid = 0;
        return;
    }
    if (nem_disk_kill(n->disk) != 0)
        fprintf(stderr, "faultline run: node %u: %s\n", n->id,
                nem_disk_error(n->disk));
    n->proc.pid = 0;
    n->proc.stopped = false;
}

/* Starts argv as node n: under the disk-fault supervisor when the
 * campaign has disk faults, else as a plain process. */
static int spawn_node(struct run *r, struct node *n, char *const argv[],
                      char *err, size_t size)
{
    int netns = r->namespaces ? nem_net_ns_fd(r->net, n->id) : -1;
    int rc;

    if (!r->disk_faults)
        return nem_proc_start(&n->proc, argv, netns, n->log_path, err, size);
    if (n->disk == NULL) {
        rc = nem_disk_create(n->data_dir, NULL, &n->disk, err, size);
        if (rc != 0)
            return rc;
        nem_disk_set_netns(n->disk, netns);
    }
    rc = nem_disk_start(n->disk, argv, n->log_path);
    if (rc != 0) {
        say(err, size, "%s", nem_disk_error(n->disk));
        return rc;
    }
    n->proc.pid = nem_disk_pid(n->disk);
    n->proc.pidfd = -1;
    n->proc.stopped = false;
    return 0;
}

static int start_node(struct run *r, struct node *n, char *err, size_t size)
{
    char *argv[64];
    size_t a = 0;
    char id[8];
    char peers[1024] = "";
    char clients[1024] = "";
    char election[16];
    char heartbeat[16];
    char snapshot[32];
    char segment[32];

    if (run_mkdirs(n->data_dir) != 0) {
        int e = errno;
        say(err, size, "cannot create %s: %s", n->data_dir, strerror(e));
        return -e;
    }
    snprintf(snapshot, sizeof(snapshot), "%llu",
             (unsigned long long)r->c.snapshot_every);
    if (r->c.system == CAMP_SYSTEM_RAFT) {
        for (unsigned i = 1; i <= r->c.nodes; i++) {
            size_t lp = strlen(peers);
            size_t lc = strlen(clients);
            snprintf(peers + lp, sizeof(peers) - lp, "%s%u=%s",
                     i > 1 ? "," : "", i, r->nodes[i].peer_addr);
            snprintf(clients + lc, sizeof(clients) - lc, "%s%u=%s",
                     i > 1 ? "," : "", i, r->nodes[i].client_addr);
        }
        snprintf(id, sizeof(id), "%u", n->id);
        snprintf(election, sizeof(election), "%u", r->c.election_timeout_ms);
        snprintf(heartbeat, sizeof(heartbeat), "%u", r->c.heartbeat_ms);
        argv[a++] = r->bin_raftd;
        argv[a++] = "--id";
        argv[a++] = id;
        argv[a++] = "--peers";
        argv[a++] = peers;
        argv[a++] = "--clients";
        argv[a++] = clients;
        argv[a++] = "--data-dir";
        argv[a++] = n->data_dir;
        argv[a++] = "--listen-client";
        argv[a++] = n->client_addr;
        argv[a++] = "--election-timeout-ms";
        argv[a++] = election;
        argv[a++] = "--heartbeat-ms";
        argv[a++] = heartbeat;
    } else {
        argv[a++] = r->bin_kvd;
        argv[a++] = "--data-dir";
        argv[a++] = n->data_dir;
        argv[a++] = "--listen";
        argv[a++] = n->client_addr;
        if (r->c.sync[0] != '\0') {
            argv[a++] = "--sync";
            argv[a++] = r->c.sync;
        }
        if (r->c.segment_bytes != 0) {
            snprintf(segment, sizeof(segment), "%" PRIu64, r->c.segment_bytes);
            argv[a++] = "--segment-bytes";
            argv[a++] = segment;
        }
    }
    argv[a++] = "--snapshot-every";
    argv[a++] = snapshot;
    for (size_t i = 0; i < r->c.n_bugs; i++) {
        argv[a++] = "--inject-bug";
        argv[a++] = r->c.bugs[i];
    }
    argv[a] = NULL;
    n->killed = false;
    n->restart_at = 0;
    return spawn_node(r, n, argv, err, size);
}

/* A free TCP port on 127.0.0.1, for loopback runs. */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int setup_nodes(struct run *r, char *err, size_t size)
{
    char nodes_dir[PATH_MAX];

    snprintf(nodes_dir, sizeof(nodes_dir), "%s/nodes", r->dir);
    if (run_mkdirs(nodes_dir) != 0) {
        say(err, size, "cannot create %s: %s", nodes_dir, strerror(errno));
        return -1;
    }
    for (unsigned i = 1; i <= r->c.nodes; i++) {
        struct node *n = &r->nodes[i];
        n->id = i;
        n->proc.pidfd = -1;
        if (r->namespaces) {
            snprintf(n->client_addr, sizeof(n->client_addr), "%s:%d",
                     nem_net_addr(r->net, i), CLIENT_PORT);
            snprintf(n->peer_addr, sizeof(n->peer_addr), "%s:%d",
                     nem_net_addr(r->net, i), PEER_PORT);
        } else {
            int cp = free_port();
            int pp = free_port();
            if (cp < 0 || pp < 0) {
                say(err, size, "cannot find a free port on 127.0.0.1");
                return -1;
            }
            snprintf(n->client_addr, sizeof(n->client_addr), "127.0.0.1:%d",
                     cp);
            snprintf(n->peer_addr, sizeof(n->peer_addr), "127.0.0.1:%d", pp);
        }
        snprintf(n->data_dir, sizeof(n->data_dir), "%s/n%u", r->tmp, i);
        say(n->log_path, sizeof(n->log_path), "%s/n%u.log", nodes_dir, i);
    }
    for (unsigned i = 1; i <= r->c.nodes; i++) {
        char why[512];
        if (start_node(r, &r->nodes[i], why, sizeof(why)) != 0) {
            say(err, size, "node %u: %s", i, why);
            return -1;
        }
    }
    return 0;
}

/* Waits until every node replies and, for Raft, one of them leads. */
static int wait_ready(struct run *r, char *err, size_t size)
{
    int64_t deadline = fl_clock_now_ns() + READY_TIMEOUT_NS;
    char reply[1024];

    while (fl_clock_now_ns() < deadline) {
        unsigned answered = 0;
        bool leader = r->c.system == CAMP_SYSTEM_KV;
        for (unsigned i = 1; i <= r->c.nodes; i++) {
            struct node *n = &r->nodes[i];
            if (node_poll(n) == 1) {
                say(err, size, "node %u exited during startup (%s %d); see %s",
                    i, WIFSIGNALED(n->proc.status) ? "signal" : "exit status",
                    WIFSIGNALED(n->proc.status) ? WTERMSIG(n->proc.status)
                                                : WEXITSTATUS(n->proc.status),
                    n->log_path);
                return -1;
            }
            if (ask(r, n,
                    r->c.system == CAMP_SYSTEM_RAFT ? "INFO\r\n" : "PING\r\n",
                    reply, sizeof(reply), 200) < 0)
                continue;
            answered++;
            leader = leader || strstr(reply, "role:leader") != NULL;
        }
        if (answered == r->c.nodes && leader)
            return 0;
        struct signalfd_siginfo si;
        struct pollfd pfd = {.fd = r->sigfd, .events = POLLIN};
        if (poll(&pfd, 1, 100) == 1 &&
            read(r->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            r->interrupted = true;
            say(err, size, "interrupted while the cluster started");
            return -1;
        }
    }
    say(err, size,
        "the cluster was not ready within %d s (every node answering%s); "
        "see the node logs in %s/nodes",
        (int)(READY_TIMEOUT_NS / FL_NSEC_PER_SEC),
        r->c.system == CAMP_SYSTEM_RAFT ? ", one leading" : "", r->dir);
    return -1;
}

/* ---- faults ------------------------------------------------------------ */

static void log_fault(struct run *r, const struct run_fault *f, bool start)
{
    struct fl_buf b;
    struct fl_buf d;

    fl_buf_init(&b);
    run_fault_json(f, start, now_rel(r), &b);
    if (r->nemesis_log != NULL && !b.failed) {
        fwrite(b.data, 1, b.len, r->nemesis_log);
        fflush(r->nemesis_log);
    }
    fl_buf_free(&b);
    if (!r->tty) {
        fl_buf_init(&d);
        run_fault_describe(f, &d);
        if (!d.failed)
            fprintf(stderr, "faultline run: %6.1fs %s %.*s\n",
                    (double)now_rel(r) / 1e9, start ? "start" : "stop ",
                    (int)d.len, d.data);
        fl_buf_free(&d);
    }
}

/* Power loss on one node: SIGKILL, then every write and directory change
 * not yet durable is rolled back. The node restarts when the fault stops. */
static void lose_unsynced(struct run *r, struct node *n,
                          const struct run_fault *f)
{
    n->killed = true;
    if (n->proc.stopped)
        node_signal(n, SIGCONT);
    if (nem_disk_lose_unsynced(n->disk) != 0)
        note(r, "fault %" PRIu64 " (lose-unsynced) on node %u: %s", f->id,
             n->id, nem_disk_error(n->disk));
    n->proc.pid = 0;
    n->proc.stopped = false;
}

/* Power loss that keeps some writes: of the data changes not yet
 * durable, each one survives or not by a draw from the fault's keep_seed,
 * and everything else not durable is rolled back. */
static void torn_seq(struct run *r, struct node *n, struct run_fault *f)
{
    size_t count;
    size_t *keep;
    size_t n_keep = 0;
    uint64_t state = f->keep_seed;

    n->killed = true;
    if (n->proc.stopped)
        node_signal(n, SIGCONT);
    /* Kill first, so the count cannot grow between reading and using it;
     * the undo log outlives the process. */
    if (nem_disk_kill(n->disk) != 0)
        note(r, "fault %" PRIu64 " (torn-seq) on node %u: %s", f->id, n->id,
             nem_disk_error(n->disk));
    n->proc.pid = 0;
    n->proc.stopped = false;
    count = nem_disk_unsynced_writes(n->disk);
    keep = calloc(count ? count : 1, sizeof(*keep));
    if (keep == NULL) {
        note(r,
             "fault %" PRIu64 " (torn-seq): out of memory, so every "
             "unsynced write was lost",
             f->id);
        count = 0;
    }
    for (size_t i = 0; i < count; i++)
        if (fl_splitmix64(&state) & 1)
            keep[n_keep++] = i;
    f->unsynced += count;
    f->kept += n_keep;
    if (nem_disk_torn_seq(n->disk, keep, n_keep) != 0)
        note(r, "fault %" PRIu64 " (torn-seq) on node %u: %s", f->id, n->id,
             nem_disk_error(n->disk));
    free(keep);
}

/* Media damage on one node: a crash, then one byte of a durable file
 * flipped. The node restarts on the damaged file when the fault stops. */
static void corrupt(struct run *r, struct node *n, struct run_fault *f)
{
    const struct camp_fault *cf = &r->c.faults[f->spec];
    char err[PATH_MAX + 256];
    int rc;

    n->killed = true;
    node_stop(n, SIGKILL, 1000);
    rc = 1;
    /* A repro damages the recorded byte while the file still has it. */
    if (f->damaged_file[0] != '\0') {
        rc = run_corrupt_exact(n->data_dir, f->damaged_file, f->damaged_offset,
                               f->damage_mask, &n->damage, err, sizeof(err));
        if (rc != 0)
            note(r,
                 "fault %" PRIu64 " (corrupt): %s; a byte drawn again was "
                 "damaged instead",
                 f->id, err);
    }
    if (rc != 0)
        rc = run_corrupt(n->data_dir, cf->pattern, cf->untouched_s, f->pick,
                         &n->damage, err, sizeof(err));
    if (rc != 0) {
        note(r, "fault %" PRIu64 " (corrupt) on node %u damaged nothing: %s",
             f->id, n->id, err);
        return;
    }
    snprintf(f->damaged_file, sizeof(f->damaged_file), "%s", n->damage.file);
    f->damaged_offset = n->damage.offset;
    f->damage_mask = n->damage.mask;
}

/* A node that exits with an error status soon after restarting on a
 * damaged file refused to open it, which is the right reaction. The
 * byte is put back and the node restarted, so one damaged file does not
 * end the run. Returns true when the exit was such a refusal. */
static bool refused_damage(struct run *r, struct node *n)
{
    char err[PATH_MAX + 256];

    if (!n->damage.applied || fl_clock_now_ns() > n->refuse_until ||
        !WIFEXITED(n->proc.status) || WEXITSTATUS(n->proc.status) == 0)
        return false;
    if (run_corrupt_undo(&n->damage, err, sizeof(err)) != 0)
        note(r, "node %u: %s", n->id, err);
    note(r,
         "node %u refused to open its store after %s offset %" PRIu64
         " was damaged; the byte was put back",
         n->id, n->damage.file, n->damage.offset);
    if (start_node(r, n, err, sizeof(err)) != 0)
        broken(r, "node %u did not restart: %s", n->id, err);
    return true;
}

/* Arms a disk fault that strikes at the node's Nth matching call: an I/O
 * error, a torn write or a crash. Exiting on an error is a correct
 * reaction, and the torn write and the crash kill the node, so
 * watch_nodes does not count an exit as a crash while such a fault is
 * armed. */
static int arm_disk(struct run *r, struct node *n, const struct run_fault *f,
                    char *err, size_t size)
{
    const struct camp_fault *cf = &r->c.faults[f->spec];
    struct nem_disk_fault fault = {
        .pattern = cf->pattern,
        .nth = f->nth,
    };
    struct nem_disk_stats stats;

    switch (f->kind) {
    case CAMP_FAULT_FSYNC_EIO:
        fault.kind = NEM_DISK_FSYNC_EIO;
        break;
    case CAMP_FAULT_WRITE_EIO:
        fault.kind = NEM_DISK_WRITE_EIO;
        break;
    case CAMP_FAULT_WRITE_ENOSPC:
        fault.kind = NEM_DISK_WRITE_ENOSPC;
        break;
    case CAMP_FAULT_TORN_WRITE:
        fault.kind = NEM_DISK_TORN_WRITE;
        if (f->tear == CAMP_TEAR_SECTORS && f->sector_mask != 0)
            fault.sector_mask = f->sector_mask;
        else
            fault.keep_bytes = f->tear == CAMP_TEAR_PREFIX ? f->keep_bytes : 0;
        break;
    default:
        fault.kind = f->when == CAMP_WHEN_AFTER ? NEM_DISK_CRASH_AFTER
                                                : NEM_DISK_CRASH_BEFORE;
        fault.crash_ops = (cf->ops & CAMP_OP_FSYNC ? NEM_DISK_OP_FSYNC : 0) |
                          (cf->ops & CAMP_OP_RENAME ? NEM_DISK_OP_RENAME : 0) |
                          (cf->ops & CAMP_OP_UNLINK ? NEM_DISK_OP_UNLINK : 0);
        fault.lose_unsynced = cf->power_loss;
        break;
    }
    if (nem_disk_arm(n->disk, &fault) != 0) {
        say(err, size, "node %u: %s", n->id, nem_disk_error(n->disk));
        return -1;
    }
    if (n->disk_armed++ == 0) {
        nem_disk_get_stats(n->disk, &stats);
        n->disk_fired = stats.faults_fired;
    }
    return 0;
}

static void start_fault(struct run *r, struct run_fault *f)
{
    char err[512] = "";
    int rc = 0;

    if (!f->resolved) {
        /* Asking every node who leads takes up to 200 ms a node, so only
         * faults aimed at the leader ask. */
        bool leader = f->kind == CAMP_FAULT_ISOLATE_PRIMARY ||
                      r->c.faults[f->spec].targets == CAMP_TARGET_PRIMARY;
        run_fault_resolve(f, &r->c, leader ? find_primary(r) : 0, &r->rng);
    }
    if (now_rel(r) >= r->plan.heal_ns) {
        note(r,
             "fault %" PRIu64 " (%s) was due before the final heal but "
             "started too late, and was left out",
             f->id, camp_fault_name(f->kind));
        return;
    }
    switch (f->kind) {
    case CAMP_FAULT_KILL:
        for (size_t i = 0; i < f->n_targets; i++) {
            struct node *n = &r->nodes[f->targets[i]];
            n->killed = true;
            node_stop(n, SIGKILL, 1000);
        }
        break;
    case CAMP_FAULT_PAUSE:
        for (size_t i = 0; i < f->n_targets; i++)
            node_signal(&r->nodes[f->targets[i]], SIGSTOP);
        break;
    case CAMP_FAULT_LOSE_UNSYNCED:
        for (size_t i = 0; i < f->n_targets; i++)
            lose_unsynced(r, &r->nodes[f->targets[i]], f);
        break;
    case CAMP_FAULT_TORN_SEQ:
        for (size_t i = 0; i < f->n_targets; i++)
            torn_seq(r, &r->nodes[f->targets[i]], f);
        break;
    case CAMP_FAULT_CORRUPT:
        for (size_t i = 0; i < f->n_targets; i++)
            corrupt(r, &r->nodes[f->targets[i]], f);
        break;
    case CAMP_FAULT_FSYNC_EIO:
    case CAMP_FAULT_WRITE_EIO:
    case CAMP_FAULT_WRITE_ENOSPC:
    case CAMP_FAULT_TORN_WRITE:
    case CAMP_FAULT_CRASH_AT:
        for (size_t i = 0; rc == 0 && i < f->n_targets; i++)
            rc = arm_disk(r, &r->nodes[f->targets[i]], f, err, sizeof(err));
        break;
    case CAMP_FAULT_LOSS:
        for (size_t i = 0; rc == 0 && i < f->n_targets; i++)
            rc = nem_net_loss(r->net, f->id, f->targets[i], f->probability, err,
                              sizeof(err));
        break;
    case CAMP_FAULT_DELAY:
        for (size_t i = 0; rc == 0 && i < f->n_targets; i++)
            rc = nem_net_delay(r->net, f->targets[i], f->delay_ms, err,
                               sizeof(err));
        break;
    default:
        for (size_t i = 0; rc == 0 && i < f->n_blocks; i++)
            rc = nem_net_block(r->net, f->id, f->blocks[i].to,
                               f->blocks[i].from, f->blocks[i].n_from,
                               f->one_way, err, sizeof(err));
        break;
    }
    if (rc != 0)
        note(r, "fault %" PRIu64 " (%s) was not fully applied: %s", f->id,
             camp_fault_name(f->kind), err);
    log_fault(r, f, true);
    if (r->n_active < sizeof(r->active) / sizeof(r->active[0]))
        r->active[r->n_active++] = f;
    else
        note(r, "fault %" PRIu64 " could not be tracked and is never healed",
             f->id);
}

/* Ends one armed disk fault on a node and returns true when the fault
 * struck. nem_disk_disarm drops every armed fault, so the node's other
 * armed faults end here too. A node whose fault fired restarts. That
 * covers one a torn write or crash killed and one that exited on an error.
 * It also covers one that stays up after an error, because a store that
 * failed a write or fsync rejects writes until it is reopened (fl-kvd
 * does). Restarting that one is a process crash, so its unsynced data
 * stays in the supervisor's undo log. */
static bool disarm_disk(struct run *r, struct node *n)
{
    struct nem_disk_stats stats;
    char err[512];

    if (n->disk_armed == 0)
        return false;
    n->disk_armed = 0;
    nem_disk_get_stats(n->disk, &stats);
    nem_disk_disarm(n->disk);
    if (stats.faults_fired == n->disk_fired && n->proc.pid != 0)
        return false;
    n->killed = true;
    node_stop(n, SIGKILL, 0);
    if (start_node(r, n, err, sizeof(err)) != 0)
        broken(r, "node %u did not restart: %s", n->id, err);
    return stats.faults_fired != n->disk_fired;
}

static void stop_fault(struct run *r, struct run_fault *f)
{
    char err[512] = "";

    switch (f->kind) {
    case CAMP_FAULT_KILL:
    case CAMP_FAULT_LOSE_UNSYNCED:
    case CAMP_FAULT_TORN_SEQ:
    case CAMP_FAULT_CORRUPT:
        for (size_t i = 0; i < f->n_targets; i++) {
            struct node *n = &r->nodes[f->targets[i]];
            /* A store that refuses damage exits within a moment. */
            n->refuse_until = fl_clock_now_ns() + fl_clock_sec_to_ns(5);
            if (n->proc.pid == 0 && start_node(r, n, err, sizeof(err)) != 0)
                broken(r, "node %u did not restart: %s", n->id, err);
        }
        break;
    case CAMP_FAULT_PAUSE:
        for (size_t i = 0; i < f->n_targets; i++)
            node_signal(&r->nodes[f->targets[i]], SIGCONT);
        break;
    case CAMP_FAULT_FSYNC_EIO:
    case CAMP_FAULT_WRITE_EIO:
    case CAMP_FAULT_WRITE_ENOSPC:
    case CAMP_FAULT_TORN_WRITE:
    case CAMP_FAULT_CRASH_AT:
        for (size_t i = 0; i < f->n_targets; i++)
            f->fired += disarm_disk(r, &r->nodes[f->targets[i]]);
        /* A fault that found no matching call tested nothing, so a run
         * that looks valid records that in a note. */
        if (f->fired == 0)
            note(r,
                 "fault %" PRIu64 " (%s) never struck: no target made "
                 "matching call number %u before it ended",
                 f->id, camp_fault_name(f->kind), f->nth);
        break;
    case CAMP_FAULT_DELAY:
        for (size_t i = 0; i < f->n_targets; i++)
            if (nem_net_undelay(r->net, f->targets[i], err, sizeof(err)) != 0)
                note(r, "undelay of fault %" PRIu64 " on node %u failed: %s",
                     f->id, f->targets[i], err);
        break;
    default: {
        unsigned done[CAMP_MAX_NODES + 1] = {0};
        for (size_t i = 0; i < f->n_blocks; i++)
            done[f->blocks[i].to] = 1;
        if (f->kind == CAMP_FAULT_LOSS)
            for (size_t i = 0; i < f->n_targets; i++)
                done[f->targets[i]] = 1;
        for (unsigned i = 1; i <= r->c.nodes; i++)
            if (done[i] && nem_net_heal(r->net, f->id, i, err, sizeof(err)))
                note(r, "heal of fault %" PRIu64 " on node %u failed: %s",
                     f->id, i, err);
        break;
    }
    }
    log_fault(r, f, false);
    for (size_t i = 0; i < r->n_active; i++) {
        if (r->active[i] == f) {
            r->active[i] = r->active[--r->n_active];
            break;
        }
    }
}

/* Ends every active fault, restarts every node that is down and continues
 * every paused one. */
static void heal_all(struct run *r)
{
    char err[512];

    while (r->n_active > 0)
        stop_fault(r, r->active[0]);
    for (unsigned i = 1; i <= r->c.nodes; i++) {
        struct node *n = &r->nodes[i];
        if (n->proc.stopped)
            node_signal(n, SIGCONT);
        if (n->proc.pid == 0 && start_node(r, n, err, sizeof(err)) != 0)
            broken(r, "node %u did not restart: %s", i, err);
    }
}

/* Reaps nodes; an exit the nemesis did not cause is a finding, and the
 * node is restarted after the campaign's restart delay. */
static void watch_nodes(struct run *r)
{
    char err[512];

    for (unsigned i = 1; i <= r->c.nodes; i++) {
        struct node *n = &r->nodes[i];
        bool exited = n->proc.pid != 0 && node_poll(n) == 1;
        /* A node still up once the refusal window passed accepted the
         * damage, which stays; a later exit is not about it. */
        if (!exited && n->proc.pid != 0 && n->damage.applied &&
            fl_clock_now_ns() > n->refuse_until)
            n->damage.applied = false;
        if (exited && !n->killed && n->disk_armed > 0) {
            /* A torn write or a crash kills the node, and exiting on an
             * injected error is a correct reaction, so neither is a crash.
             * The node restarts when its fault stops. */
            fprintf(stderr,
                    "%sfaultline run: node %u exited with %s %d while a "
                    "disk fault was armed\n",
                    r->tty ? "\r\033[K" : "", i,
                    WIFSIGNALED(n->proc.status) ? "signal" : "status",
                    WIFSIGNALED(n->proc.status) ? WTERMSIG(n->proc.status)
                                                : WEXITSTATUS(n->proc.status));
            n->killed = true;
        } else if (exited && !n->killed && refused_damage(r, n)) {
            continue;
        } else if (exited && !n->killed) {
            if (r->n_crashes < MAX_CRASHES) {
                say(r->crash_text[r->n_crashes], sizeof(r->crash_text[0]),
                    "node %u exited at %.3f s with %s %d (see nodes/n%u.log)",
                    i, (double)now_rel(r) / 1e9,
                    WIFSIGNALED(n->proc.status) ? "signal" : "status",
                    WIFSIGNALED(n->proc.status) ? WTERMSIG(n->proc.status)
                                                : WEXITSTATUS(n->proc.status),
                    i);
                r->crashes[r->n_crashes] = r->crash_text[r->n_crashes];
                r->n_crashes++;
            }
            fprintf(stderr, "faultline run: node %u exited on its own\n", i);
            n->restart_at =
                fl_clock_now_ns() + fl_clock_sec_to_ns(r->c.restart_delay_s);
        }
        if (n->proc.pid == 0 && !n->killed && n->restart_at != 0 &&
            fl_clock_now_ns() >= n->restart_at &&
            start_node(r, n, err, sizeof(err)) != 0) {
            broken(r, "node %u did not restart: %s", i, err);
            n->restart_at = 0;
        }
    }
}

/* ---- progress ---------------------------------------------------------- */

static void progress(struct run *r, bool final)
{
    struct wl_reg_counts k = {0};
    struct fl_buf b;

    if (r->workload != NULL)
        wl_reg_counts(r->workload, &k);
    fl_buf_init(&b);
    fl_buf_printf(&b,
                  "%5.1fs/%gs ok %" PRIu64 " fail %" PRIu64 " info %" PRIu64
                  " | faults: ",
                  (double)now_rel(r) / 1e9, r->c.duration_s, k.ok, k.fail,
                  k.info);
    if (r->n_active == 0)
        fl_buf_adds(&b, "none");
    for (size_t i = 0; i < r->n_active; i++) {
        if (i > 0)
            fl_buf_adds(&b, "; ");
        run_fault_describe(r->active[i], &b);
    }
    if (b.failed) {
        fl_buf_free(&b);
        return;
    }
    if (r->tty)
        fprintf(stderr, "\r\033[K%.*s%s", (int)b.len, b.data,
                final ? "\n" : "");
    else
        fprintf(stderr, "faultline run: %.*s\n", (int)b.len, b.data);
    fl_buf_free(&b);
}

/* ---- the run ----------------------------------------------------------- */

static bool check_signal(struct run *r)
{
    struct signalfd_siginfo si;

    if (read(r->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (!r->interrupted)
            fprintf(stderr,
                    "%sfaultline run: signal %u: stopping and "
                    "cleaning up\n",
                    r->tty ? "\n" : "", si.ssi_signo);
        r->interrupted = true;
    }
    return r->interrupted;
}

static int drive(struct run *r)
{
    int64_t end = fl_clock_sec_to_ns(r->c.duration_s);
    int64_t next_progress = 0;
    bool healed = false;

    while (!check_signal(r) && r->broken[0] == '\0') {
        int64_t t = now_rel(r);
        char why[256];
        if (t >= end)
            break;
        if (wl_reg_error(r->workload, why, sizeof(why)) != 0) {
            broken(r, "the workload stopped: %s", why);
            break;
        }
        for (size_t i = 0; i < r->n_active;) {
            if (r->active[i]->stop_ns <= t)
                stop_fault(r, r->active[i]);
            else
                i++;
        }
        if (!healed && t >= r->plan.heal_ns) {
            heal_all(r);
            healed = true;
        }
        while (!healed && r->next_fault < r->plan.n &&
               r->plan.faults[r->next_fault].start_ns <= t)
            start_fault(r, &r->plan.faults[r->next_fault++]);
        watch_nodes(r);
        if (t >= next_progress) {
            progress(r, false);
            next_progress =
                t + (r->tty ? FL_NSEC_PER_SEC / 4 : 5 * FL_NSEC_PER_SEC);
        }
        struct pollfd pfd = {.fd = r->sigfd, .events = POLLIN};
        poll(&pfd, 1, 10);
    }
    if (!healed)
        heal_all(r);
    progress(r, true);
    return 0;
}

struct final_reads {
    struct wl_reg *workload;
    int64_t deadline_ns;
    int result;
    atomic_bool done;
};

static void *final_reads_main(void *arg)
{
    struct final_reads *f = arg;

    f->result = wl_reg_final_reads(f->workload, f->deadline_ns);
    atomic_store(&f->done, true);
    return NULL;
}

/* Runs the final reads on a thread of their own while this one watches for
 * signals, so a Ctrl-C ends them at once rather than after final_read_s.
 * Returns the number of keys read, or a negative error. */
static int final_reads_watched(struct run *r)
{
    struct final_reads f = {
        .workload = r->workload,
        .deadline_ns =
            fl_clock_now_ns() + fl_clock_sec_to_ns(r->c.final_read_s),
    };
    pthread_t thread;

    atomic_init(&f.done, false);
    if (pthread_create(&thread, NULL, final_reads_main, &f) != 0) {
        final_reads_main(&f);
        return f.result;
    }
    while (!atomic_load(&f.done)) {
        struct pollfd pfd = {.fd = r->sigfd, .events = POLLIN};
        poll(&pfd, 1, 20);
        if (check_signal(r))
            wl_reg_abort(r->workload);
    }
    pthread_join(thread, NULL);
    return f.result;
}

static void teardown(struct run *r)
{
    for (unsigned i = 1; i <= r->c.nodes; i++) {
        struct node *n = &r->nodes[i];
        node_stop(n, SIGTERM, 3000);
        nem_disk_destroy(n->disk);
        n->disk = NULL;
    }
    if (r->net != NULL) {
        nem_net_destroy(r->net);
        r->net = NULL;
    }
    if (r->tmp[0] != '\0')
        run_remove_tree(r->tmp);
    if (r->registered)
        run_registry_remove(r->run_id);
    r->registered = false;
}

static int make_run_id(struct run *r)
{
    uint8_t bytes[4];

    if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
        return -errno;
    snprintf(r->run_id, sizeof(r->run_id), "%02x%02x%02x%02x", bytes[0],
             bytes[1], bytes[2], bytes[3]);
    return 0;
}

struct run_args {
    const char *campaign;
    const char *store;
    const char *bin_dir;
    const char *replay_dir; /* repro: the recorded run */
    bool have_seed;
    uint64_t seed;
    double duration;
    unsigned nodes;
    int network; /* -1: the campaign's */
    bool dry_run;
    bool no_bugs;
};

/* Decides namespaces or loopback, and which faults can run. */
static int choose_network(struct run *r, bool skip[CAMP_FAULT__COUNT],
                          bool probe_only)
{
    bool want_ns = r->c.network != CAMP_NETWORK_LOOPBACK;
    bool can_ns = geteuid() == 0 && access("/proc/self/ns/net", R_OK) == 0;

    memset(skip, 0, CAMP_FAULT__COUNT * sizeof(bool));
    if (want_ns && !can_ns && r->c.network == CAMP_NETWORK_NAMESPACES) {
        fprintf(stderr,
                "faultline run: %s: network \"namespaces\" needs root; run "
                "as root or set network to auto or loopback\n",
                r->c.name);
        return RUN_EXIT_INFRA;
    }
    r->namespaces = want_ns && can_ns;
    if (!r->namespaces) {
        bool dropped = false;
        for (size_t i = 0; i < r->c.n_faults; i++)
            dropped = dropped || camp_fault_is_network(r->c.faults[i].kind);
        for (int k = 0; k < CAMP_FAULT__COUNT; k++)
            skip[k] = camp_fault_is_network((enum camp_fault_kind)k);
        if (!probe_only)
            note(r, "running on loopback ports (%s): process faults only%s",
                 can_ns ? "loopback was requested" : "not root",
                 dropped ? "; the campaign's network faults are left out" : "");
        return 0;
    }
    for (size_t i = 0; i < r->c.n_faults; i++) {
        const struct camp_fault *f = &r->c.faults[i];
        if (f->kind != CAMP_FAULT_DELAY)
            continue;
        int have = nem_net_have_netem();
        if (have == 1)
            break;
        if (!f->optional) {
            fprintf(stderr,
                    "faultline run: %s: nemesis.faults[%zu]: delay needs the "
                    "kernel's netem qdisc (sch_netem), which this kernel "
                    "lacks; remove the fault or mark it \"optional\": true\n",
                    r->c.name, i);
            return RUN_EXIT_USAGE;
        }
        skip[CAMP_FAULT_DELAY] = true;
        if (!probe_only)
            note(r, "the kernel has no netem qdisc: optional delay faults are "
                    "left out");
        break;
    }
    return 0;
}

static void print_plan(const struct run *r)
{
    printf("fault plan (%zu fault%s, final heal at %.1f s):\n", r->plan.n,
           r->plan.n == 1 ? "" : "s", (double)r->plan.heal_ns / 1e9);
    for (size_t i = 0; i < r->plan.n; i++) {
        const struct run_fault *f = &r->plan.faults[i];
        const struct camp_fault *cf = &r->c.faults[f->spec];
        printf("  %3" PRIu64 "  %7.2f s .. %7.2f s  %s", f->id,
               (double)f->start_ns / 1e9, (double)f->stop_ns / 1e9,
               camp_fault_name(f->kind));
        if (f->resolved) {
            printf(" on");
            for (size_t k = 0; k < f->n_targets; k++)
                printf(" n%u", f->targets[k]);
        } else if (!camp_fault_is_network(f->kind) ||
                   f->kind == CAMP_FAULT_LOSS ||
                   f->kind == CAMP_FAULT_ONE_WAY) {
            printf(" (%s)", camp_targets_name(cf->targets));
        }
        /* How an armed disk fault strikes: at the Nth matching call. */
        if (f->nth != 0)
            printf(", %s call %u",
                   f->kind != CAMP_FAULT_CRASH_AT ? "at"
                   : f->when == CAMP_WHEN_AFTER   ? "after"
                                                  : "before",
                   f->nth);
        if (f->tear == CAMP_TEAR_PREFIX)
            printf(", keeping %" PRIu64 " bytes", f->keep_bytes);
        else if (f->tear == CAMP_TEAR_SECTORS)
            printf(", keeping sectors %016" PRIx64, f->sector_mask);
        printf("\n");
    }
}

static int setup_store(struct run *r, const char *store)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    struct fl_buf b;
    char path[PATH_MAX];
    int rc;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(r->dir, sizeof(r->dir), "%s/%s/%s-s%" PRIu64, store, r->c.name,
             stamp, r->seed);
    /* Two runs of one campaign and seed in the same second get a suffix. */
    for (int k = 2; access(r->dir, F_OK) == 0 && k < 100; k++)
        snprintf(r->dir, sizeof(r->dir), "%s/%s/%s-s%" PRIu64 "-%d", store,
                 r->c.name, stamp, r->seed, k);
    rc = run_mkdirs(r->dir);
    if (rc != 0) {
        fprintf(stderr, "faultline run: cannot create %s: %s; check --store\n",
                r->dir, fl_strerror(rc));
        return RUN_EXIT_USAGE;
    }
    r->c.has_seed = true;
    r->c.seed = r->seed;
    fl_buf_init(&b);
    camp_write(&r->c, &b);
    fl_buf_addc(&b, '\n');
    snprintf(path, sizeof(path), "%s/campaign.json", r->dir);
    rc = b.failed ? -ENOMEM : write_file(path, b.data, b.len);
    fl_buf_free(&b);
    if (rc != 0) {
        fprintf(stderr, "faultline run: cannot write %s: %s\n", path,
                fl_strerror(rc));
        return RUN_EXIT_INFRA;
    }
    return 0;
}

/* Adds the finished run to STORE/results.db and renders STORE/index.html
 * over every run there; the run's report.html must exist by then. A
 * failure costs only the database rows and the index: results.json is
 * written, and `faultline report import` can add the run later. */
static void record_run(const struct run *r, const char *store)
{
    char path[PATH_MAX];
    char err[PATH_MAX + 512];
    sqlite3 *db;
    int rc;

    say(path, sizeof(path), "%s/results.db", store);
    rc = rep_db_open(&db, path, err, sizeof(err));
    if (rc == 0) {
        rc = rep_db_import(db, r->dir, err, sizeof(err));
        if (rc == 0 && rep_render_index(db, store, err, sizeof(err)) != 0)
            fprintf(stderr, "faultline run: note: no index.html: %s\n", err);
        rep_db_close(db);
    }
    if (rc != 0)
        fprintf(stderr,
                "faultline run: cannot record the run in the results "
                "database: %s\n",
                err);
}

static int execute(struct run *r, const struct run_args *a)
{
    char err[1024];
    char path[PATH_MAX];
    char started[32];
    time_t wall = time(NULL);
    struct tm tm;
    bool skip[CAMP_FAULT__COUNT];
    struct run_facts facts;
    struct run_outcome out;
    sigset_t mask;
    int final_reads = -1;
    int64_t workload_ns = 0;
    int rc;

    gmtime_r(&wall, &tm);
    strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
    rc = choose_network(r, skip, a->dry_run);
    if (rc != 0)
        return rc;
    if (a->replay_dir != NULL) {
        snprintf(path, sizeof(path), "%s/nemesis.jsonl", a->replay_dir);
        rc = run_plan_load(&r->plan, path, &r->c, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "faultline repro: %s\n", err);
            return rc;
        }
        for (size_t i = 0; i < r->plan.n; i++) {
            if (skip[r->plan.faults[i].kind]) {
                fprintf(stderr,
                        "faultline repro: the recorded run has %s faults, "
                        "which this run cannot inject (%s)\n",
                        camp_fault_name(r->plan.faults[i].kind),
                        r->namespaces ? "no netem" : "no namespaces: not root");
                return RUN_EXIT_INFRA;
            }
        }
        r->replay = true;
    } else if (run_plan_make(&r->plan, &r->c, r->seed, skip) != 0) {
        fprintf(stderr, "faultline run: out of memory\n");
        return RUN_EXIT_INFRA;
    }
    r->rng = r->seed ^ UINT64_C(0x6e656d6573697321);
    if (a->dry_run) {
        struct fl_buf b;
        fl_buf_init(&b);
        camp_write(&r->c, &b);
        printf("%.*s\nseed %" PRIu64 ", network %s\n", (int)b.len, b.data,
               r->seed, r->namespaces ? "namespaces" : "loopback");
        fl_buf_free(&b);
        print_plan(r);
        return 0;
    }
    rc = find_binary(
        a->bin_dir, r->c.system == CAMP_SYSTEM_RAFT ? "raft" : "kv",
        r->c.system == CAMP_SYSTEM_RAFT ? "fl-raftd" : "fl-kvd",
        r->c.system == CAMP_SYSTEM_RAFT ? r->bin_raftd : r->bin_kvd, PATH_MAX);
    if (rc != 0 && a->bin_dir != NULL) {
        fprintf(stderr, "faultline run: --bin-dir %s: no executable %s there\n",
                a->bin_dir,
                r->c.system == CAMP_SYSTEM_RAFT ? "fl-raftd" : "fl-kvd");
        return RUN_EXIT_USAGE;
    }
    if (rc != 0) {
        fprintf(stderr,
                "faultline run: cannot find %s next to faultline; build it "
                "or pass --bin-dir\n",
                r->c.system == CAMP_SYSTEM_RAFT ? "fl-raftd" : "fl-kvd");
        return RUN_EXIT_INFRA;
    }

    /* Signals: read from a signalfd by this thread only. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    r->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    r->tty = isatty(STDERR_FILENO) == 1;
    r->root_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

    if (make_run_id(r) != 0)
        return RUN_EXIT_INFRA;
    rc = setup_store(r, a->store);
    if (rc != 0)
        return rc;
    snprintf(r->tmp, sizeof(r->tmp), "/tmp/fl-%s", r->run_id);
    if (mkdir(r->tmp, 0700) != 0) {
        fprintf(stderr, "faultline run: cannot create %s: %s\n", r->tmp,
                strerror(errno));
        r->tmp[0] = '\0';
        return RUN_EXIT_INFRA;
    }
    if (run_registry_add(r->run_id, r->tmp, r->dir, r->namespaces, err,
                         sizeof(err)) != 0) {
        fprintf(stderr, "faultline run: %s\n", err);
        teardown(r);
        return RUN_EXIT_INFRA;
    }
    r->registered = true;
    fprintf(stderr,
            "faultline run: campaign %s, seed %" PRIu64 ", %u node%s, %s, "
            "run %s\nfaultline run: storing in %s\n",
            r->c.name, r->seed, r->c.nodes, r->c.nodes == 1 ? "" : "s",
            r->namespaces ? "network namespaces" : "loopback", r->run_id,
            r->dir);
    rc = 0;
    if (r->namespaces &&
        nem_net_create(&r->net, r->run_id, r->c.nodes, err, sizeof(err)) != 0) {
        fprintf(stderr, "faultline run: cannot make the network: %s\n", err);
        rc = RUN_EXIT_INFRA;
    }
    r->disk_faults = camp_has_disk_faults(&r->c);
    if (rc == 0 && setup_nodes(r, err, sizeof(err)) != 0) {
        fprintf(stderr, "faultline run: %s\n", err);
        rc = RUN_EXIT_INFRA;
    }
    if (rc == 0 && wait_ready(r, err, sizeof(err)) != 0) {
        fprintf(stderr, "faultline run: %s\n", err);
        rc = r->interrupted ? 130 : RUN_EXIT_INFRA;
    }
    snprintf(path, sizeof(path), "%s/history.jsonl", r->dir);
    if (rc == 0 && fl_hist_writer_open(&r->history, path) != 0) {
        fprintf(stderr, "faultline run: cannot create %s\n", path);
        rc = RUN_EXIT_INFRA;
    }
    snprintf(path, sizeof(path), "%s/nemesis.jsonl", r->dir);
    if (rc == 0 && (r->nemesis_log = fopen(path, "w")) == NULL) {
        fprintf(stderr, "faultline run: cannot create %s\n", path);
        rc = RUN_EXIT_INFRA;
    }
    if (rc == 0) {
        struct wl_reg_config wc = {
            .target =
                r->c.system == CAMP_SYSTEM_RAFT ? WL_TARGET_RAFT : WL_TARGET_KV,
            .n_nodes = r->c.nodes,
            .netns_fd =
                r->namespaces ? nem_net_ns_fd(r->net, NEM_CLIENT_IDX) : -1,
            .keys = r->c.keys,
            .concurrency = r->c.concurrency,
            .rate = r->c.rate,
            .mix_read = r->c.mix_read,
            .mix_write = r->c.mix_write,
            .mix_cas = r->c.mix_cas,
            .value_max = r->c.value_max,
            .value_bytes = r->c.value_bytes,
            .timeout_ms = (int)r->c.timeout_ms,
            .reads_anywhere = r->c.reads_anywhere,
            .seed = r->seed,
            .history = r->history,
        };
        for (unsigned i = 1; i <= r->c.nodes; i++)
            snprintf(wc.addrs[i], sizeof(wc.addrs[i]), "%s",
                     r->nodes[i].client_addr);
        r->base = fl_clock_now_ns();
        wc.time_base_ns = r->base;
        if (wl_reg_start(&r->workload, &wc, err, sizeof(err)) != 0) {
            fprintf(stderr, "faultline run: cannot start the workload: %s\n",
                    err);
            rc = RUN_EXIT_INFRA;
        }
    }
    if (rc == 0) {
        drive(r);
        if (r->interrupted)
            wl_reg_abort(r->workload);
        wl_reg_stop(r->workload);
        workload_ns = now_rel(r);
        if (!r->interrupted && r->broken[0] == '\0') {
            fprintf(stderr, "faultline run: final reads\n");
            final_reads = final_reads_watched(r);
        }
        check_signal(r);
    }
    if (r->workload != NULL) {
        wl_reg_free(r->workload);
        r->workload = NULL;
    }
    if (r->history != NULL) {
        fl_hist_writer_close(r->history);
        r->history = NULL;
    }
    if (r->nemesis_log != NULL) {
        fclose(r->nemesis_log);
        r->nemesis_log = NULL;
    }
    teardown(r);
    /* Nothing is left to clean up, so from here a signal may end the
     * process at once: a second Ctrl-C stops a long check. */
    check_signal(r);
    pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
    if (rc != 0 && r->interrupted)
        rc = 130;
    if (rc != 0)
        return rc;

    facts = (struct run_facts){
        .dir = r->dir,
        .c = &r->c,
        .seed = r->seed,
        .namespaces = r->namespaces,
        .interrupted = r->interrupted,
        .elapsed_s = (double)now_rel(r) / 1e9,
        .workload_ns = workload_ns,
        .final_reads = final_reads,
        .broken = r->broken,
        .notes = r->notes,
        .n_notes = r->n_notes,
        .crashes = r->crashes,
        .n_crashes = r->n_crashes,
    };
    memcpy(facts.run_id, r->run_id, sizeof(facts.run_id));
    memcpy(facts.started_utc, started, sizeof(facts.started_utc));
    if (r->interrupted)
        fprintf(stderr, "faultline run: interrupted; checking what was "
                        "recorded\n");
    else
        fprintf(stderr, "faultline run: checking\n");
    rc = run_analyze(&facts, &out);
    if (rc != 0) {
        fprintf(stderr, "faultline run: cannot write results: %s\n",
                fl_strerror(rc));
        return RUN_EXIT_INFRA;
    }
    char report_err[PATH_MAX + 512];
    int report_rc = rep_render_run(r->dir, report_err, sizeof(report_err));
    if (report_rc != 0)
        fprintf(stderr, "faultline run: note: no report.html: %s\n",
                report_err);
    record_run(r, a->store);
    printf("%s: %s (seed %" PRIu64 ")\n%s", r->c.name, out.verdict, r->seed,
           out.summary);
    printf("results: %s/results.json\nreproduce: faultline repro %s\n", r->dir,
           r->dir);
    if (report_rc == 0)
        printf("report: %s/report.html\n", r->dir);
    if (r->interrupted)
        return 130;
    return out.exit_code;
}

static void run_free(struct run *r)
{
    run_plan_free(&r->plan);
    if (r->sigfd > 0)
        close(r->sigfd);
    if (r->root_ns > 0)
        close(r->root_ns);
}

enum {
    OPT_SEED = 1,
    OPT_DURATION,
    OPT_NODES,
    OPT_STORE,
    OPT_NETWORK,
    OPT_DRY_RUN,
    OPT_BIN_DIR,
    OPT_NO_BUGS,
    OPT_HELP,
};

static const struct option run_options[] = {
    {"seed", required_argument, NULL, OPT_SEED},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"nodes", required_argument, NULL, OPT_NODES},
    {"store", required_argument, NULL, OPT_STORE},
    {"network", required_argument, NULL, OPT_NETWORK},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"bin-dir", required_argument, NULL, OPT_BIN_DIR},
    {"no-bugs", no_argument, NULL, OPT_NO_BUGS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int parse_args(const char *cmd, int argc, char **argv,
                      struct run_args *a, bool *help)
{
    int c;
    uint64_t u;
    int rc;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", run_options, NULL)) != -1) {
        switch (c) {
        case 'h':
        case OPT_HELP:
            *help = true;
            return 0;
        case OPT_SEED:
            if ((rc = run_parse_u64(cmd, "--seed", optarg, 0, INT64_MAX, NULL,
                                    &a->seed)) != 0)
                return rc;
            a->have_seed = true;
            break;
        case OPT_DURATION:
            if ((rc = run_parse_double(cmd, "--duration", optarg, 1, 86400,
                                       "seconds", &a->duration)) != 0)
                return rc;
            break;
        case OPT_NODES:
            if ((rc = run_parse_u64(cmd, "--nodes", optarg, 1, CAMP_MAX_NODES,
                                    "nodes", &u)) != 0)
                return rc;
            a->nodes = (unsigned)u;
            break;
        case OPT_STORE:
            if (optarg[0] == '\0')
                return run_usage_error(cmd, "invalid --store \"\": expected "
                                            "a directory");
            a->store = optarg;
            break;
        case OPT_NETWORK:
            if (strcmp(optarg, "auto") == 0)
                a->network = CAMP_NETWORK_AUTO;
            else if (strcmp(optarg, "namespaces") == 0)
                a->network = CAMP_NETWORK_NAMESPACES;
            else if (strcmp(optarg, "loopback") == 0)
                a->network = CAMP_NETWORK_LOOPBACK;
            else
                return run_usage_error(cmd,
                                       "invalid --network \"%s\": expected "
                                       "auto, namespaces or loopback",
                                       optarg);
            break;
        case OPT_DRY_RUN:
            a->dry_run = true;
            break;
        case OPT_BIN_DIR:
            a->bin_dir = optarg;
            break;
        case OPT_NO_BUGS:
            if (strcmp(cmd, "run") != 0)
                return run_usage_error(cmd, "--no-bugs applies to run only: a "
                                            "repro keeps what it replays");
            a->no_bugs = true;
            break;
        default:
            return run_option_error(cmd, c, argv, run_options);
        }
    }
    if (optind >= argc)
        return run_usage_error(cmd, "missing %s",
                               strcmp(cmd, "run") == 0 ? "CAMPAIGN file"
                                                       : "RUN_DIR");
    if (optind + 1 < argc)
        return run_usage_error(cmd, "unexpected argument \"%s\"",
                               argv[optind + 1]);
    a->campaign = argv[optind];
    return 0;
}

/* Applies command-line overrides, then validates what they change. */
static int resolve(struct run *r, const struct run_args *a)
{
    char err[1024];
    struct fl_buf b;
    int rc;

    if (a->nodes != 0) {
        if (r->c.system == CAMP_SYSTEM_KV && a->nodes != 1)
            return run_usage_error("run",
                                   "--nodes %u: system \"kv\" runs "
                                   "one fl-kvd",
                                   a->nodes);
        r->c.nodes = a->nodes;
    }
    if (a->duration > 0)
        r->c.duration_s = a->duration;
    if (a->no_bugs && r->c.n_bugs == 0)
        fprintf(stderr,
                "faultline run: --no-bugs: %s plants no bugs, so it "
                "runs as it is\n",
                r->c.name);
    if (a->no_bugs && r->c.n_bugs > 0) {
        size_t len = strlen(r->c.name);
        if (len + sizeof("-no-bugs") > sizeof(r->c.name))
            return run_usage_error("run",
                                   "--no-bugs: the campaign name \"%s\" is "
                                   "too long to take \"-no-bugs\"",
                                   r->c.name);
        memcpy(r->c.name + len, "-no-bugs", sizeof("-no-bugs"));
        r->c.n_bugs = 0;
        r->c.expect_invalid = false;
        r->c.detect_within = 0;
    }
    if (a->network >= 0)
        r->c.network = (enum camp_network)a->network;
    /* Re-validate the changed campaign by parsing its resolved form: a
     * --nodes that leaves a fault's targets out of range, or a --duration
     * too short for the nemesis, is reported like a campaign error. */
    fl_buf_init(&b);
    camp_write(&r->c, &b);
    if (b.failed) {
        fl_buf_free(&b);
        return RUN_EXIT_INFRA;
    }
    rc = camp_parse(a->campaign, b.data, b.len, &r->c, err, sizeof(err));
    fl_buf_free(&b);
    if (rc != 0) {
        fprintf(stderr,
                "faultline run: %s (after the command-line "
                "overrides)\n",
                err);
        return rc;
    }
    if (a->have_seed)
        r->seed = a->seed;
    else if (r->c.has_seed)
        r->seed = r->c.seed;
    else {
        uint64_t s;
        if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
            s = (uint64_t)fl_clock_wall_ns();
        r->seed = s & 0xffffffffu;
        fprintf(stderr,
                "faultline run: no seed given; using --seed %" PRIu64 "\n",
                r->seed);
    }
    return 0;
}

int run_cmd_run(int argc, char **argv)
{
    struct run_args a = {.store = "store", .network = -1};
    struct run *r;
    char err[1024];
    bool help = false;
    int rc = parse_args("run", argc, argv, &a, &help);

    if (rc != 0)
        return rc;
    if (help) {
        fputs(run_help, stdout);
        return 0;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return RUN_EXIT_INFRA;
    r->sigfd = -1;
    r->root_ns = -1;
    rc = camp_load(a.campaign, &r->c, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "faultline run: %s\n", err);
    if (rc == 0)
        rc = resolve(r, &a);
    if (rc == 0)
        rc = execute(r, &a);
    run_free(r);
    free(r);
    return rc;
}

int run_cmd_repro(int argc, char **argv)
{
    struct run_args a = {.store = "store", .network = -1};
    char campaign[PATH_MAX];
    struct run *r;
    char err[1024];
    bool help = false;
    int rc = parse_args("repro", argc, argv, &a, &help);

    if (rc != 0)
        return rc;
    if (help) {
        fputs(repro_help, stdout);
        return 0;
    }
    if (a.have_seed || a.duration > 0 || a.nodes != 0)
        return run_usage_error("repro", "a repro takes the seed, duration and "
                                        "nodes of the recorded run");
    a.replay_dir = a.campaign;
    snprintf(campaign, sizeof(campaign), "%s/campaign.json", a.replay_dir);
    a.campaign = campaign;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return RUN_EXIT_INFRA;
    r->sigfd = -1;
    r->root_ns = -1;
    rc = camp_load(campaign, &r->c, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "faultline repro: %s\n", err);
    } else if (!r->c.has_seed) {
        fprintf(stderr,
                "faultline repro: %s has no seed; is %s a run "
                "directory?\n",
                campaign, a.replay_dir);
        rc = RUN_EXIT_USAGE;
    } else {
        r->seed = r->c.seed;
        fprintf(stderr, "faultline repro: %s, seed %" PRIu64 "\n", r->c.name,
                r->seed);
        rc = execute(r, &a);
    }
    run_free(r);
    free(r);
    return rc;
}
