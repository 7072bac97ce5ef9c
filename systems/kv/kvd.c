/*
 * fl-kvd: the KV engine served over TCP in RESP2, so redis-cli and
 * redis-benchmark work against it.
 */
#include "engine.h"
#include "server.h"

#include "error.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
    "Usage: fl-kvd --data-dir DIR [OPTIONS]\n"
    "\n"
    "Serves a crash-consistent key-value store over TCP in RESP2 (the Redis\n"
    "protocol): GET, SET, DEL, CAS key expected new (1 when swapped, else\n"
    "0), PING, ECHO, INFO, DBSIZE, SAVE (snapshot now) and QUIT. A write is\n"
    "acknowledged only once its log record is durable.\n"
    "\n"
    "Options:\n"
    "  --data-dir DIR          directory of the log and snapshots (created\n"
    "                          when missing; required)\n"
    "  --listen HOST:PORT      numeric IPv4 address or [IPv6] address and\n"
    "                          port to listen on; port 0 picks a free one,\n"
    "                          which the log reports (default\n"
    "                          127.0.0.1:7379)\n"
    "  --sync POLICY           always: acknowledge after fdatasync (default);\n"
    "                          batch:MS: fdatasync at most every MS\n"
    "                          milliseconds (1 to 10000), still acknowledging\n"
    "                          only durable writes; none: never wait for\n"
    "                          fdatasync (UNSAFE: a machine crash loses\n"
    "                          acknowledged writes)\n"
    "  --snapshot-every N      write a snapshot every N log records (default\n"
    "                          0: only on SAVE)\n"
    "  --segment-bytes N       start a new log segment past N bytes (default\n"
    "                          67108864)\n"
    "  --max-clients N         connections served at once (default 10000)\n"
    "  --max-value N           bytes in one key or value (default 16777216)\n"
    "  --inject-bug NAME       plant a bug for testing the test platform; may\n"
    "                          be repeated: ack-before-fsync, skip-dir-fsync,\n"
    "                          ignore-crc, truncate-on-corruption\n"
    "  --log-level LEVEL       debug, info (default), warn, error or off\n"
    "  -h, --help              show this help\n"
    "\n"
    "SIGTERM and SIGINT stop accepting connections and commands, wait until\n"
    "the replies to commands already run are durable and sent (at most 5 s\n"
    "for clients that do not read), and exit. Exit codes: 0 clean stop, 1 the "
    "store could not be opened or\n"
    "a write to it failed, 2 usage error.\n";

enum {
    OPT_DATA_DIR = 256,
    OPT_LISTEN,
    OPT_SYNC,
    OPT_SNAPSHOT_EVERY,
    OPT_SEGMENT_BYTES,
    OPT_MAX_CLIENTS,
    OPT_MAX_VALUE,
    OPT_INJECT_BUG,
    OPT_LOG_LEVEL,
};

static const struct option options[] = {
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"sync", required_argument, NULL, OPT_SYNC},
    {"snapshot-every", required_argument, NULL, OPT_SNAPSHOT_EVERY},
    {"segment-bytes", required_argument, NULL, OPT_SEGMENT_BYTES},
    {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
    {"max-value", required_argument, NULL, OPT_MAX_VALUE},
    {"inject-bug", required_argument, NULL, OPT_INJECT_BUG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "fl-kvd: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'fl-kvd --help' for usage.\n");
    return 2;
}

/* Parses a decimal integer in [min, max]; digits only. */
static int number(const char *opt, const char *text, unsigned long long min,
                  unsigned long long max, unsigned long long *out)
{
    char *end;

    if (text[0] < '0' || text[0] > '9')
        goto bad;
    errno = 0;
    *out = strtoull(text, &end, 10);
    if (errno == 0 && *end == '\0' && *out >= min && *out <= max)
        return 0;
bad:
    fprintf(stderr,
            "fl-kvd: invalid %s \"%s\": expected an integer from %llu to "
            "%llu\nRun 'fl-kvd --help' for usage.\n",
            opt, text, min, max);
    return 2;
}

int main(int argc, char **argv)
{
    struct kv_options o;
    struct kv_server_options so = {
        .listen = "127.0.0.1:7379",
        .listen_fd = -1,
        .max_clients = 10000,
        .max_value = 16u << 20,
    };
    const char *dir = NULL;
    struct kv_engine *e;
    enum fl_log_level level;
    unsigned long long n;
    unsigned bit;
    char err[1024];
    char bug_list[256] = ""; /* the --inject-bug names, for the log */
    sigset_t signals;
    int c;
    int rc;

    kv_options_default(&o);
    o.deferred_writes = true; /* the server flushes once per loop pass */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case OPT_DATA_DIR:
            dir = optarg;
            break;
        case OPT_LISTEN:
            so.listen = optarg;
            break;
        case OPT_SYNC:
            if (kv_sync_parse(optarg, &o.sync, &o.batch_ms) != 0)
                return usage("invalid --sync \"%s\": expected always, none "
                             "or batch:MS with MS from 1 to 10000",
                             optarg);
            break;
        case OPT_SNAPSHOT_EVERY:
            if (number("--snapshot-every", optarg, 0, UINT64_MAX, &n) != 0)
                return 2;
            o.snapshot_every = n;
            break;
        case OPT_SEGMENT_BYTES:
            if (number("--segment-bytes", optarg, 4096, 1ull << 40, &n) != 0)
                return 2;
            o.segment_bytes = n;
            break;
        case OPT_MAX_CLIENTS:
            if (number("--max-clients", optarg, 1, 1000000, &n) != 0)
                return 2;
            so.max_clients = n;
            break;
        case OPT_MAX_VALUE:
            if (number("--max-value", optarg, 1, 32u << 20, &n) != 0)
                return 2;
            so.max_value = n;
            break;
        case OPT_INJECT_BUG:
            if (kv_bug_parse(optarg, &bit) != 0) {
                fprintf(stderr,
                        "fl-kvd: unknown --inject-bug \"%s\": expected one "
                        "of %s\nRun 'fl-kvd --help' for usage.\n",
                        optarg, kv_bug_names());
                return 2;
            }
            o.bugs |= bit;
            snprintf(bug_list + strlen(bug_list),
                     sizeof(bug_list) - strlen(bug_list), "%s%s",
                     bug_list[0] != '\0' ? "," : "", optarg);
            break;
        case OPT_LOG_LEVEL:
            if (fl_log_parse_level(optarg, &level) != 0)
                return usage("invalid --log-level \"%s\": expected debug, "
                             "info, warn, error or off",
                             optarg);
            fl_log_set_level(level);
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        case ':':
            return usage("option %s needs a value", argv[optind - 1]);
        default:
            return usage("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return usage("unexpected argument \"%s\"", argv[optind]);
    if (dir == NULL)
        return usage("%s", "missing --data-dir");
    if (dir[0] == '\0')
        return usage("%s",
                     "invalid --data-dir \"\": expected a directory path");
    struct sockaddr_storage addr;
    socklen_t addr_len;
    if (kv_listen_parse(so.listen, &addr, &addr_len, err, sizeof(err)) != 0)
        return usage("invalid --listen \"%s\": %s", so.listen, err);
    if (o.bugs != 0)
        FL_LOG_WARNF("kvd", "running with planted bugs", "bugs=\"%s\"",
                     bug_list);

    /* Every thread inherits this mask: only the server's signalfd may take
     * SIGTERM and SIGINT, never an engine thread. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    /* Bind first: a busy port is found before a long recovery. */
    so.listen_fd = kv_listen(so.listen, err, sizeof(err));
    if (so.listen_fd < 0) {
        FL_LOG_ERRORF("kvd", "cannot listen", "error=\"%s\"", err);
        fprintf(stderr, "fl-kvd: %s\n", err);
        return 1;
    }
    rc = kv_open(dir, &o, &e, err, sizeof(err));
    if (rc != 0) {
        close(so.listen_fd);
        FL_LOG_ERRORF("kvd", "cannot open the store", "dir=%s error=\"%s\"",
                      dir, err);
        fprintf(stderr, "fl-kvd: %s\n", err);
        return 1;
    }
    rc = kv_serve(e, &so, err, sizeof(err));
    if (rc == 0 && kv_error(e)[0] != '\0') {
        /* Served until the signal, but writes failed on the way. */
        snprintf(err, sizeof(err), "%s", kv_error(e));
        rc = FL_ESTICKY;
    }
    kv_close(e);
    if (rc != 0) {
        FL_LOG_ERRORF("kvd", "stopped on an error", "error=\"%s\"", err);
        fprintf(stderr, "fl-kvd: %s\n", err);
        return 1;
    }
    return 0;
}
