/*
 * Test driver for the register workload (workloads/register.h). The shell
 * script register_servers.sh starts the servers and calls it.
 *
 *   reg_driver free-ports N
 *       prints N distinct loopback TCP ports that were free a moment ago
 *   reg_driver leader HOST:PORT,...
 *       prints the 1-based position of the node whose INFO reports the
 *       leader role, or 0 when none does
 *   reg_driver run --target raft|kv --addrs HOST:PORT,... --history FILE
 *                  [--seconds S] [--seed N] [--keys K] [--threads T]
 *                  [--rate R] [--timeout-ms MS]
 *       runs the workload for S seconds, reads every key once more, then
 *       reads the history back and checks it for linearizability (model
 *       cas-register). Prints "seed=N", one line per check ("ok   ..." or
 *       "FAIL ...") and a last line "counts ok=.. fail=.. info=..
 *       retries=.. final_reads=.." for the script's own checks. Exits 0
 *       when every check passed, 1 when one failed, 2 on a usage error.
 *
 * FL_LOG_LEVEL (debug, info, warn, error, off) sets the log level.
 */
#include "clock.h"
#include "error.h"
#include "history.h"
#include "linear.h"
#include "log.h"
#include "register.h"
#include "resp_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PORTS 32

static int failures;

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

/* Binds n sockets to port 0 at once, so the ports differ, and prints
 * them. */
static int free_ports(int n)
{
    int fds[MAX_PORTS];
    int rc = 0;

    if (n < 1 || n > MAX_PORTS) {
        fprintf(stderr, "reg_driver: free-ports takes 1 to %d, got %d\n",
                MAX_PORTS, n);
        return 2;
    }
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, len) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            fprintf(stderr, "reg_driver: finding a free port failed: %s\n",
                    strerror(errno));
            rc = 1;
            n = i + 1;
            break;
        }
        printf("%u\n", ntohs(a.sin_port));
    }
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    return rc;
}

/* Splits "A,B,C" into c->addrs[1..]. Returns false when an entry does not
 * fit or there are too many. */
static bool split_addrs(const char *list, struct wl_reg_config *c)
{
    const char *p = list;

    c->n_nodes = 0;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof(c->addrs[0]) ||
            c->n_nodes == WL_MAX_NODES)
            return false;
        c->n_nodes++;
        memcpy(c->addrs[c->n_nodes], p, len);
        c->addrs[c->n_nodes][len] = '\0';
        p += len;
        if (*p == ',')
            p++;
    }
    return c->n_nodes > 0;
}

/* Prints the position of the node whose INFO reports role:leader. */
static int find_leader(const char *list)
{
    struct wl_reg_config c;
    struct wl_resp_conn conn;
    struct fl_str argv[1] = {fl_str_of("INFO")};
    unsigned leader = 0;

    memset(&c, 0, sizeof(c));
    if (!split_addrs(list, &c)) {
        fprintf(stderr, "reg_driver: invalid address list \"%s\"\n", list);
        return 2;
    }
    wl_resp_init(&conn);
    for (unsigned i = 1; i <= c.n_nodes && leader == 0; i++) {
        struct wl_resp_reply r;
        int64_t deadline = fl_clock_now_ns() + FL_NSEC_PER_SEC;
        if (wl_resp_connect(&conn, c.addrs[i], deadline) != 0)
            continue;
        wl_resp_append(&conn, 1, argv);
        if (wl_resp_flush(&conn, deadline, NULL) == 0 &&
            wl_resp_read(&conn, &r, deadline) == 0 && r.type == WL_RESP_BULK &&
            memmem(r.text.ptr, r.text.len, "role:leader\r\n", 13) != NULL)
            leader = i;
        wl_resp_close(&conn);
    }
    wl_resp_destroy(&conn);
    printf("%u\n", leader);
    return 0;
}

/* Reads the history back, as `faultline check` would, and checks it. */
static void check_history(const char *path)
{
    struct chk_lin_options o;
    struct chk_lin_history *h = NULL;
    struct fl_hist_reader *reader = NULL;
    struct fl_hist_event ev;
    struct chk_lin_result res;
    char msg[256] = "";
    int rc;

    chk_lin_options_default(&o);
    o.model = CHK_MODEL_CAS_REGISTER;
    o.time_limit_s = 60;
    rc = chk_lin_history_new(&h, &o);
    if (rc != 0) {
        check(false, "checker starts: %s", fl_strerror(rc));
        return;
    }
    rc = fl_hist_reader_open(&reader, path, chk_lin_history_budget(h));
    if (rc != 0) {
        check(false, "history opens: %s: %s", path, fl_strerror(rc));
        goto out;
    }
    while ((rc = fl_hist_reader_next(reader, &ev)) == 1) {
        rc = chk_lin_history_add(h, &ev, msg, sizeof(msg));
        if (rc != 0)
            break;
    }
    check(rc == 0, "history reader accepts the history: %s",
          rc == 0          ? path
          : msg[0] != '\0' ? msg
                           : fl_hist_reader_error(reader));
    if (rc != 0)
        goto out;
    rc = chk_lin_check(h, &res);
    if (rc != 0) {
        check(false, "linearizability check runs: %s", fl_strerror(rc));
        goto out;
    }
    check(res.verdict == CHK_VALID, "history is linearizable: %s (%zu ops)",
          chk_verdict_name(res.verdict), res.ops);
    if (res.verdict != CHK_VALID) {
        struct fl_buf b;
        fl_buf_init(&b);
        chk_lin_result_text(h, &res, &b);
        if (b.data != NULL)
            fputs(b.data, stdout);
        fl_buf_free(&b);
    }
out:
    fl_hist_reader_close(reader);
    chk_lin_history_free(h);
}

static int usage(const char *reason)
{
    fprintf(stderr,
            "reg_driver: %s\n"
            "usage: reg_driver free-ports N\n"
            "       reg_driver leader HOST:PORT,...\n"
            "       reg_driver run --target raft|kv --addrs HOST:PORT,... "
            "--history FILE [--seconds S] [--seed N] [--keys K] "
            "[--threads T] [--rate R] [--timeout-ms MS]\n",
            reason);
    return 2;
}

static int run(int argc, char **argv)
{
    static const struct option options[] = {
        {"target", required_argument, NULL, 't'},
        {"addrs", required_argument, NULL, 'a'},
        {"history", required_argument, NULL, 'H'},
        {"seconds", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},
        {"keys", required_argument, NULL, 'k'},
        {"threads", required_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'r'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    struct wl_reg_config c;
    struct wl_reg *w = NULL;
    struct fl_hist_writer *writer = NULL;
    struct wl_reg_counts n;
    const char *history = NULL;
    double seconds = 5;
    char err[256];
    int opt, rc, final_reads;

    memset(&c, 0, sizeof(c));
    c.target = WL_TARGET_RAFT;
    c.netns_fd = -1;
    c.keys = 4;
    c.concurrency = 6;
    c.rate = 300;
    c.mix_read = 1;
    c.mix_write = 1;
    c.mix_cas = 1;
    c.timeout_ms = 1000;
    c.seed = (uint64_t)fl_clock_wall_ns();
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 't':
            if (strcmp(optarg, "raft") == 0)
                c.target = WL_TARGET_RAFT;
            else if (strcmp(optarg, "kv") == 0)
                c.target = WL_TARGET_KV;
            else
                return usage("--target must be raft or kv");
            break;
        case 'a':
            if (!split_addrs(optarg, &c))
                return usage("invalid --addrs");
            break;
        case 'H':
            history = optarg;
            break;
        case 's':
            seconds = strtod(optarg, NULL);
            break;
        case 'S':
            c.seed = strtoull(optarg, NULL, 10);
            break;
        case 'k':
            c.keys = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            c.concurrency = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            c.rate = strtod(optarg, NULL);
            break;
        case 'T':
            c.timeout_ms = atoi(optarg);
            break;
        default:
            return usage("unknown option");
        }
    }
    if (history == NULL || c.n_nodes == 0)
        return usage("--addrs and --history are required");
    printf("seed=%" PRIu64 "\n", c.seed);
    fflush(stdout);

    rc = fl_hist_writer_open(&writer, history);
    if (rc != 0) {
        fprintf(stderr, "reg_driver: %s: %s\n", history, fl_strerror(rc));
        return 1;
    }
    c.history = writer;
    c.time_base_ns = fl_clock_now_ns();
    rc = wl_reg_start(&w, &c, err, sizeof(err));
    check(rc == 0, "workload starts%s%s", rc == 0 ? "" : ": ",
          rc == 0 ? "" : err);
    if (rc != 0) {
        fl_hist_writer_close(writer);
        return 1;
    }
    fl_clock_sleep_ns(fl_clock_sec_to_ns(seconds));
    int64_t stop_start = fl_clock_now_ns();
    wl_reg_stop(w);
    int64_t stop_ns = fl_clock_since_ns(stop_start);
    check(stop_ns < 2 * (int64_t)c.timeout_ms * FL_NSEC_PER_MSEC,
          "stop returns within two operation timeouts (%" PRId64 " ms)",
          stop_ns / FL_NSEC_PER_MSEC);
    final_reads =
        wl_reg_final_reads(w, fl_clock_now_ns() + 10 * FL_NSEC_PER_SEC);
    check(final_reads == (int)c.keys, "final reads cover every key (%d of %u)",
          final_reads, c.keys);
    rc = wl_reg_error(w, err, sizeof(err));
    check(rc == 0, "no client thread stopped on an error%s%s",
          rc == 0 ? "" : ": ", rc == 0 ? "" : err);
    wl_reg_counts(w, &n);
    wl_reg_free(w);
    rc = fl_hist_writer_close(writer);
    check(rc == 0, "history is written: %s", fl_strerror(rc));
    check(n.ok > 0, "some operations succeed (%" PRIu64 " ok)", n.ok);
    check_history(history);
    printf("counts ok=%" PRIu64 " fail=%" PRIu64 " info=%" PRIu64
           " retries=%" PRIu64 " final_reads=%d\n",
           n.ok, n.fail, n.info, n.retries, final_reads);
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *level = getenv("FL_LOG_LEVEL");
    enum fl_log_level parsed;

    if (level != NULL && fl_log_parse_level(level, &parsed) == 0)
        fl_log_set_level(parsed);
    if (argc < 2)
        return usage("missing command");
    if (strcmp(argv[1], "free-ports") == 0 && argc == 3)
        return free_ports(atoi(argv[2]));
    if (strcmp(argv[1], "leader") == 0 && argc == 3)
        return find_leader(argv[2]);
    if (strcmp(argv[1], "run") == 0)
        return run(argc - 1, argv + 1);
    return usage("unknown command");
}
