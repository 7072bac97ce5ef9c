/*
 * kv_set_load: a closed-loop SET load generator for fl-kvd, for
 * bench/disk/run.sh. Each client is a thread with one RESP connection
 * (workloads/resp_client.h) and one request in flight: it sends the next
 * SET as soon as the reply to the previous one arrives. Keys and values
 * match `redis-benchmark -t set -r KEY_SPACE -d VALUE_SIZE`, as in
 * bench/kv: "key:" and a 12-digit number drawn uniformly below KEY_SPACE,
 * and VALUE_SIZE bytes of 'x'.
 *
 * The clients run for the warmup and then for the measured seconds. Only
 * SETs whose reply arrives inside the measured window count towards the
 * throughput and the latency percentiles, and latency runs from just
 * before a request is sent to the end of its reply.
 *
 * The address must be on loopback: this program is for benchmarks on one
 * machine and sends no traffic anywhere else.
 */
#include "clock.h"
#include "die.h"
#include "error.h"
#include "histogram.h"
#include "resp_client.h"
#include "rng.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIENTS    1000
#define MAX_VALUE_SIZE (1u << 20)
#define MAX_KEY_SPACE  1000000000000u /* keys have 12 decimal digits */
/* A SET without a reply after this long fails the run. */
#define REQUEST_TIMEOUT_NS (30 * FL_NSEC_PER_SEC)

static const char usage_text[] =
    "Usage: kv_set_load --addr 127.0.0.1:PORT [OPTIONS]\n"
    "\n"
    "Sends SET requests to fl-kvd from concurrent clients, each with one\n"
    "request in flight, and prints one line:\n"
    "\n"
    "  clients=N seconds=S ops=N ops_per_s=X p50_ms=X p99_ms=X "
    "total_ops=N\n"
    "\n"
    "ops counts the SETs whose reply arrived in the measured window;\n"
    "total_ops also counts those of the warmup and of the last requests\n"
    "that end after the window.\n"
    "\n"
    "Options:\n"
    "  --addr HOST:PORT    server address on loopback (127.0.0.0/8 or\n"
    "                      [::1]; required)\n"
    "  --clients N         concurrent connections (default 1, at most "
    "1000)\n"
    "  --seconds S         length of the measured window in seconds, may\n"
    "                      be fractional (default 10)\n"
    "  --warmup S          seconds of load before the window, not counted\n"
    "                      (default 2)\n"
    "  --key-space N       keys are drawn from key:000000000000 up to\n"
    "                      KEY_SPACE - 1 (default 100000)\n"
    "  --value-size N      bytes in each value (default 16, at most "
    "1048576)\n"
    "  --seed N            seed of the key choice (default 1)\n"
    "  --ready-timeout S   seconds to wait for the server to answer PING\n"
    "                      before the load starts (default 10)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 on success, 1 when the server is not ready, a request\n"
    "fails or a reply is not +OK, 2 on a usage error.\n";

struct options {
    const char *addr;
    unsigned clients;
    double seconds;
    double warmup;
    uint64_t key_space;
    size_t value_size;
    uint64_t seed;
    double ready_timeout;
};

/* State shared by every client, read-only once the threads start. */
struct run {
    const struct options *opts;
    char *value;
    int64_t window_start_ns;
    int64_t window_end_ns;
};

struct client {
    pthread_t thread;
    const struct run *run;
    struct wl_resp_conn conn;
    struct fl_rng rng;
    struct bench_hist hist; /* SETs completed in the window */
    uint64_t total_ops;
    char err[256]; /* empty unless the client failed */
};

static uint64_t parse_count(const char *option, const char *text, uint64_t min,
                            uint64_t max)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' ||
        v < min || v > max)
        bench_die_usage("invalid %s '%s': expected an integer from %" PRIu64
                        " to %" PRIu64,
                        option, text, min, max);
    return v;
}

static double parse_seconds(const char *option, const char *text, double min)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= min) || v > 86400)
        bench_die_usage("invalid %s '%s': expected seconds from %g to 86400",
                        option, text, min);
    return v;
}

/* Rejects any address outside loopback. */
static void check_loopback(const char *addr)
{
    struct sockaddr_storage sa;
    unsigned len;

    if (wl_resp_parse_addr(addr, &sa, &len) != 0)
        bench_die_usage("invalid --addr '%s': expected a numeric HOST:PORT",
                        addr);
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)&sa;
        if ((ntohl(a4->sin_addr.s_addr) >> 24) == 127)
            return;
    } else {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&sa;
        if (IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
            return;
    }
    bench_die_usage("invalid --addr '%s': only loopback addresses are allowed",
                    addr);
}

static struct options parse_options(int argc, char **argv)
{
    enum {
        OPT_ADDR = 256,
        OPT_CLIENTS,
        OPT_SECONDS,
        OPT_WARMUP,
        OPT_KEY_SPACE,
        OPT_VALUE_SIZE,
        OPT_SEED,
        OPT_READY_TIMEOUT,
    };
    static const struct option long_options[] = {
        {"addr", required_argument, NULL, OPT_ADDR},
        {"clients", required_argument, NULL, OPT_CLIENTS},
        {"seconds", required_argument, NULL, OPT_SECONDS},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"key-space", required_argument, NULL, OPT_KEY_SPACE},
        {"value-size", required_argument, NULL, OPT_VALUE_SIZE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct options o = {
        .clients = 1,
        .seconds = 10,
        .warmup = 2,
        .key_space = 100000,
        .value_size = 16,
        .seed = 1,
        .ready_timeout = 10,
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_ADDR:
            o.addr = optarg;
            break;
        case OPT_CLIENTS:
            o.clients =
                (unsigned)parse_count("--clients", optarg, 1, MAX_CLIENTS);
            break;
        case OPT_SECONDS:
            o.seconds = parse_seconds("--seconds", optarg, 0.001);
            break;
        case OPT_WARMUP:
            o.warmup = parse_seconds("--warmup", optarg, 0);
            break;
        case OPT_KEY_SPACE:
            o.key_space = parse_count("--key-space", optarg, 1, MAX_KEY_SPACE);
            break;
        case OPT_VALUE_SIZE:
            o.value_size =
                (size_t)parse_count("--value-size", optarg, 0, MAX_VALUE_SIZE);
            break;
        case OPT_SEED:
            o.seed = parse_count("--seed", optarg, 0, UINT64_MAX);
            break;
        case OPT_READY_TIMEOUT:
            o.ready_timeout = parse_seconds("--ready-timeout", optarg, 0);
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        default:
            bench_die_usage("unknown option");
        }
    }
    if (optind < argc)
        bench_die_usage("unexpected argument '%s'", argv[optind]);
    if (o.addr == NULL)
        bench_die_usage("missing --addr");
    check_loopback(o.addr);
    return o;
}

/* Sends one command and reads its reply, which must be the simple string
 * expected. Returns 0, or a negative error with the reason in err. */
static int call(struct wl_resp_conn *conn, size_t argc,
                const struct fl_str *argv, const char *expected,
                int64_t deadline_ns, char *err, size_t err_size)
{
    struct wl_resp_reply reply;
    int rc;

    wl_resp_append(conn, argc, argv);
    rc = wl_resp_flush(conn, deadline_ns, NULL);
    if (rc == 0)
        rc = wl_resp_read(conn, &reply, deadline_ns);
    if (rc != 0) {
        snprintf(err, err_size, "%.*s failed: %s", (int)argv[0].len,
                 argv[0].ptr, fl_strerror(rc));
        return rc;
    }
    if (reply.type != WL_RESP_SIMPLE || !fl_str_eq(reply.text, expected)) {
        snprintf(err, err_size, "%.*s returned %s '%.*s'; expected +%s",
                 (int)argv[0].len, argv[0].ptr,
                 reply.type == WL_RESP_ERROR ? "the error" : "the reply",
                 (int)(reply.text.len > 200 ? 200 : reply.text.len),
                 reply.text.ptr != NULL ? reply.text.ptr : "", expected);
        return FL_EPROTO;
    }
    return 0;
}

/* Connects and sends PING until the server replies with PONG or
 * timeout_ns passes, because the server may still be recovering its log. */
static void wait_ready(const char *addr, int64_t timeout_ns)
{
    const struct fl_str ping[] = {fl_str_of("PING")};
    int64_t deadline = fl_clock_now_ns() + timeout_ns;
    struct wl_resp_conn conn;
    char err[256] = "";

    wl_resp_init(&conn);
    for (;;) {
        int64_t now = fl_clock_now_ns();
        int64_t attempt_end = now + FL_NSEC_PER_SEC;
        int rc;

        if (attempt_end > deadline)
            attempt_end = deadline;
        rc = wl_resp_connect(&conn, addr, attempt_end);
        /* A connect cut short by the deadline keeps the reason of the
         * attempt before, such as a refused connection. */
        if (rc != 0 && (rc != -ETIMEDOUT || err[0] == '\0'))
            snprintf(err, sizeof(err), "connect failed: %s", fl_strerror(rc));
        else if (rc == 0)
            rc = call(&conn, 1, ping, "PONG", attempt_end, err, sizeof(err));
        wl_resp_close(&conn);
        if (rc == 0)
            break;
        if (fl_clock_now_ns() >= deadline)
            bench_die("%s did not reply to PING within %.1f s: %s", addr,
                      (double)timeout_ns / 1e9, err);
        fl_clock_sleep_ns(10 * FL_NSEC_PER_MSEC);
    }
    wl_resp_destroy(&conn);
}

static void *run_client(void *arg)
{
    struct client *cl = arg;
    const struct run *run = cl->run;
    char key[32];
    struct fl_str argv[3] = {
        fl_str_of("SET"), {key, 0}, {run->value, run->opts->value_size}};

    for (;;) {
        uint64_t k = fl_rng_below(&cl->rng, run->opts->key_space);
        int n = snprintf(key, sizeof(key), "key:%012" PRIu64, k);
        argv[1].len = (size_t)n;

        int64_t start = fl_clock_now_ns();
        if (call(&cl->conn, 3, argv, "OK", start + REQUEST_TIMEOUT_NS, cl->err,
                 sizeof(cl->err)) != 0)
            break;
        int64_t end = fl_clock_now_ns();

        cl->total_ops++;
        if (end >= run->window_start_ns && end <= run->window_end_ns)
            bench_hist_add(&cl->hist, end - start);
        if (end >= run->window_end_ns)
            break;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct options opts = parse_options(argc, argv);
    struct run run = {.opts = &opts};
    struct client *clients;
    struct bench_hist *total;
    uint64_t total_ops = 0;
    bool failed = false;

    wait_ready(opts.addr, fl_clock_sec_to_ns(opts.ready_timeout));

    run.value = malloc(opts.value_size ? opts.value_size : 1);
    clients = calloc(opts.clients, sizeof(*clients));
    total = calloc(1, sizeof(*total));
    if (run.value == NULL || clients == NULL || total == NULL)
        bench_die("out of memory for %u clients", opts.clients);
    memset(run.value, 'x', opts.value_size);

    /* Every connection is open before the clock starts, so connecting is
     * not part of the warmup either. */
    for (unsigned i = 0; i < opts.clients; i++) {
        struct client *cl = &clients[i];
        int rc;

        cl->run = &run;
        fl_rng_seed_stream(&cl->rng, opts.seed, FL_RNG_STREAM_CLIENT + i);
        wl_resp_init(&cl->conn);
        rc = wl_resp_connect(&cl->conn, opts.addr,
                             fl_clock_now_ns() + 10 * FL_NSEC_PER_SEC);
        if (rc != 0)
            bench_die("client %u: connect to %s failed: %s", i, opts.addr,
                      fl_strerror(rc));
    }

    run.window_start_ns = fl_clock_now_ns() + fl_clock_sec_to_ns(opts.warmup);
    run.window_end_ns = run.window_start_ns + fl_clock_sec_to_ns(opts.seconds);
    for (unsigned i = 0; i < opts.clients; i++) {
        int rc =
            pthread_create(&clients[i].thread, NULL, run_client, &clients[i]);
        if (rc != 0)
            bench_die("starting client thread %u failed: %s", i, strerror(rc));
    }
    for (unsigned i = 0; i < opts.clients; i++) {
        struct client *cl = &clients[i];

        pthread_join(cl->thread, NULL);
        if (cl->err[0] != '\0') {
            fprintf(stderr, "kv_set_load: client %u: %s\n", i, cl->err);
            failed = true;
        }
        bench_hist_merge(total, &cl->hist);
        total_ops += cl->total_ops;
        wl_resp_destroy(&cl->conn);
    }
    if (failed)
        return 1;

    printf("clients=%u seconds=%.3f ops=%" PRIu64
           " ops_per_s=%.1f p50_ms=%.3f p99_ms=%.3f total_ops=%" PRIu64 "\n",
           opts.clients, opts.seconds, total->count,
           (double)total->count / opts.seconds,
           bench_hist_percentile(total, 50) / 1e6,
           bench_hist_percentile(total, 99) / 1e6, total_ops);
    free(total);
    free(clients);
    free(run.value);
    return 0;
}
