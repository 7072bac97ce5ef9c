/*
 * `faultline sim raft`: runs the deterministic Raft cluster simulation for
 * one seed or a range of seeds and reports every invariant violation with
 * the command that reproduces it.
 */
#include "cli.h"

#include "error.h"
#include "log.h"
#include "outfile.h"
#include "raft.h"
#include "raft_sim.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "Usage: faultline sim raft [OPTIONS]\n"
    "\n"
    "Runs a Raft KV cluster on a virtual clock and a simulated network:\n"
    "each node a Raft core with a KV engine on its own simulated disk,\n"
    "with simulated clients, and faults drawn from the seed. It checks the\n"
    "Raft invariants after every step: one leader per term, one vote per\n"
    "node and term across restarts, terms that never go back, one entry\n"
    "committed and applied per index, leader completeness, no truncation\n"
    "below a node's commit index, snapshots that end on committed entries,\n"
    "one entry per index and term, and the whole log matching property at\n"
    "the end; then it checks the clients' history for\n"
    "linearizability. The same options and seed give the same run, byte\n"
    "for byte.\n"
    "\n"
    "Options:\n"
    "  --nodes N           cluster size, 1 to 9 (default 5)\n"
    "  --seed N            the seed of a single run (default 1)\n"
    "  --seeds A..B        run every seed from A to B instead, at most\n"
    "                      10000000 of them\n"
    "  --time SECONDS      virtual time per run, in steps of 10 ms, up to\n"
    "                      3600 (default 30)\n"
    "  --faults LIST       comma-separated faults: partition, crash, torn\n"
    "                      (crashes may tear the last disk write), drop,\n"
    "                      duplicate, delay; or all (default) or none\n"
    "  --fault-every MS    mean virtual time between crashes and between\n"
    "                      partitions, in steps of 10 ms (default 4000)\n"
    "  --max-down MS       a crashed node restarts up to this much later,\n"
    "                      in steps of 10 ms (default 3000)\n"
    "  --drop P            probability that a message is lost, from 0 to 1,\n"
    "                      with the drop fault on (default 0.05)\n"
    "  --clients N         concurrent client processes, 0 to 64 (default 5)\n"
    "  --snapshot-every N  entries applied between snapshots, 0 for none\n"
    "                      (default 50)\n"
    "  --inject-bug NAME   plant a bug in every node; may be repeated:\n"
    "                      no-persist-vote, commit-prior-term, stale-read,\n"
    "                      truncate-on-match, no-session-dedup\n"
    "  --store DIR         keep each seed's history.jsonl and trace.jsonl\n"
    "                      in DIR/seed-N/ (created as needed)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit codes: 0 no seed found a violation, 1 some seed did, 2 usage\n"
    "error, 3 no violation but the history check gave up on some seed,\n"
    "4 the simulation ran out of memory or could not store its files.\n";

enum {
    OPT_NODES = 256,
    OPT_SEED,
    OPT_SEEDS,
    OPT_TIME,
    OPT_FAULTS,
    OPT_FAULT_EVERY,
    OPT_MAX_DOWN,
    OPT_DROP,
    OPT_INJECT_BUG,
    OPT_CLIENTS,
    OPT_SNAPSHOT_EVERY,
    OPT_STORE,
};

static const struct option long_options[] = {
    {"nodes", required_argument, NULL, OPT_NODES},
    {"seed", required_argument, NULL, OPT_SEED},
    {"seeds", required_argument, NULL, OPT_SEEDS},
    {"time", required_argument, NULL, OPT_TIME},
    {"faults", required_argument, NULL, OPT_FAULTS},
    {"fault-every", required_argument, NULL, OPT_FAULT_EVERY},
    {"max-down", required_argument, NULL, OPT_MAX_DOWN},
    {"drop", required_argument, NULL, OPT_DROP},
    {"inject-bug", required_argument, NULL, OPT_INJECT_BUG},
    {"clients", required_argument, NULL, OPT_CLIENTS},
    {"snapshot-every", required_argument, NULL, OPT_SNAPSHOT_EVERY},
    {"store", required_argument, NULL, OPT_STORE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Sets the faults of o from a comma-separated list. */
static int parse_faults(const char *text, struct sim_raft_options *o)
{
    char copy[256];
    char *save = NULL;
    struct sim_raft_options d;

    sim_raft_defaults(&d);
    if (strlen(text) >= sizeof(copy))
        return run_usage_error("sim", "--faults is too long");
    snprintf(copy, sizeof(copy), "%s", text);
    if (strspn(copy, ",") == strlen(copy))
        return run_usage_error("sim",
                               "empty --faults: expected a comma-separated "
                               "list of faults, all or none");
    o->partitions = o->crashes = o->torn = false;
    o->drop = o->duplicate = 0;
    o->max_delay = 0;
    for (char *f = strtok_r(copy, ",", &save); f != NULL;
         f = strtok_r(NULL, ",", &save)) {
        bool all = strcmp(f, "all") == 0;
        if (strcmp(f, "none") == 0)
            continue;
        if (all || strcmp(f, "partition") == 0)
            o->partitions = true;
        if (all || strcmp(f, "crash") == 0)
            o->crashes = true;
        if (all || strcmp(f, "torn") == 0)
            o->torn = true;
        if (all || strcmp(f, "drop") == 0)
            o->drop = d.drop;
        if (all || strcmp(f, "duplicate") == 0)
            o->duplicate = d.duplicate;
        if (all || strcmp(f, "delay") == 0)
            o->max_delay = d.max_delay;
        if (!all && strcmp(f, "partition") != 0 && strcmp(f, "crash") != 0 &&
            strcmp(f, "torn") != 0 && strcmp(f, "drop") != 0 &&
            strcmp(f, "duplicate") != 0 && strcmp(f, "delay") != 0)
            return run_usage_error("sim",
                                   "unknown fault \"%s\" in --faults: "
                                   "expected partition, crash, torn, drop, "
                                   "duplicate, delay, all or none",
                                   f);
    }
    if (o->torn && !o->crashes)
        return run_usage_error("sim", "the torn fault needs the crash fault "
                                      "in --faults");
    return 0;
}

/* Creates dir unless it exists. */
static int make_dir(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int rc = -errno;
        fprintf(stderr, "faultline sim: %s: cannot create: %s\n", dir,
                fl_strerror(rc));
        return rc;
    }
    return 0;
}

/* Writes len bytes of data as dir/name, complete or not at all. */
static int write_file(const char *dir, const char *name, const char *data,
                      size_t len)
{
    struct run_outfile f;
    char path[4096];
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    rc = run_outfile_open(&f, path);
    if (rc == 0 && len > 0 && fwrite(data, 1, len, f.stream) != len) {
        rc = run_outfile_error(&f, -EIO);
        run_outfile_abort(&f);
    } else if (rc == 0) {
        rc = run_outfile_commit(&f);
    }
    if (rc != 0)
        fprintf(stderr, "faultline sim: %s: cannot write: %s\n", path,
                fl_strerror(rc));
    return rc;
}

/* Keeps one seed's history and trace in store/seed-N/. */
static int store_seed(const char *store, uint64_t seed,
                      const struct sim_raft_result *r)
{
    char dir[4096];
    int rc;

    snprintf(dir, sizeof(dir), "%s/seed-%" PRIu64, store, seed);
    rc = make_dir(dir);
    if (rc == 0)
        rc = write_file(dir, "history.jsonl", r->history.data, r->history.len);
    if (rc == 0)
        rc = write_file(dir, "trace.jsonl", r->trace.data, r->trace.len);
    return rc;
}

/* Prints arg so a POSIX shell reads it back unchanged: as it is when it
 * holds only safe characters, otherwise in single quotes. */
static void print_quoted(const char *arg)
{
    if (*arg != '\0' &&
        strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789_-+=,./:@%") == strlen(arg)) {
        printf(" %s", arg);
        return;
    }
    fputs(" '", stdout);
    for (const char *p = arg; *p != '\0'; p++) {
        if (*p == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*p);
    }
    putchar('\'');
}

/* Prints the command line that repeats the run of seed. The seed comes
 * first, so a "--" among the arguments cannot swallow it. */
static void print_repro(int argc, char **argv, uint64_t seed)
{
    printf("  reproduce: faultline sim raft --seed %" PRIu64, seed);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seeds") == 0 || strcmp(argv[i], "--seed") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--seeds=", 8) == 0 ||
            strncmp(argv[i], "--seed=", 7) == 0)
            continue;
        print_quoted(argv[i]);
    }
    putchar('\n');
}

static int run_sim_raft(int argc, char **argv)
{
    struct sim_raft_options o;
    uint64_t first = 1, last = 1;
    uint64_t u;
    uint64_t violations = 0, committed = 0, unknown = 0, ops = 0;
    const char *store = NULL;
    double drop = -1; /* --drop, applied once --faults is known */
    int c;

    sim_raft_defaults(&o);
    /* One line at a time, so an interrupted run keeps what it printed. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_NODES:
            if (run_parse_u64("sim", "--nodes", optarg, 1, RFT_MAX_NODES, NULL,
                              &u) != 0)
                return RUN_EXIT_USAGE;
            o.nodes = (unsigned)u;
            break;
        case OPT_SEED:
            if (run_parse_u64("sim", "--seed", optarg, 0, UINT64_MAX, NULL,
                              &u) != 0)
                return RUN_EXIT_USAGE;
            first = last = u;
            break;
        case OPT_SEEDS:
            if (run_parse_range("sim", "--seeds", optarg, UINT64_MAX, 10000000,
                                &first, &last) != 0)
                return RUN_EXIT_USAGE;
            break;
        case OPT_TIME:
            if (run_parse_u64("sim", "--time", optarg, 1, 3600, "seconds",
                              &u) != 0)
                return RUN_EXIT_USAGE;
            o.ticks = (unsigned)(u * 100);
            break;
        case OPT_FAULTS:
            if (parse_faults(optarg, &o) != 0)
                return RUN_EXIT_USAGE;
            break;
        case OPT_FAULT_EVERY:
            if (run_parse_u64("sim", "--fault-every", optarg, 10, 100000000,
                              "ms", &u) != 0)
                return RUN_EXIT_USAGE;
            o.fault_every = (unsigned)(u / 10);
            break;
        case OPT_MAX_DOWN:
            if (run_parse_u64("sim", "--max-down", optarg, 10, 100000000, "ms",
                              &u) != 0)
                return RUN_EXIT_USAGE;
            o.max_down = (unsigned)(u / 10);
            break;
        case OPT_DROP:
            if (run_parse_double("sim", "--drop", optarg, 0, 1, NULL, &drop) !=
                0)
                return RUN_EXIT_USAGE;
            break;
        case OPT_INJECT_BUG: {
            unsigned bit;
            if (rft_bug_parse(optarg, &bit) != 0)
                return run_usage_error("sim",
                                       "unknown --inject-bug \"%s\": "
                                       "expected one of %s",
                                       optarg, rft_bug_names());
            o.bugs |= bit;
            break;
        }
        case OPT_CLIENTS:
            if (run_parse_u64("sim", "--clients", optarg, 0, 64, NULL, &u) != 0)
                return RUN_EXIT_USAGE;
            o.clients = (unsigned)u;
            break;
        case OPT_SNAPSHOT_EVERY:
            if (run_parse_u64("sim", "--snapshot-every", optarg, 0, 1000000,
                              "entries", &u) != 0)
                return RUN_EXIT_USAGE;
            o.snapshot_every = (unsigned)u;
            break;
        case OPT_STORE:
            if (*optarg == '\0')
                return run_usage_error("sim", "empty --store: expected a "
                                              "directory");
            if (strlen(optarg) > 4000)
                return run_usage_error("sim", "--store is longer than 4000 "
                                              "bytes");
            store = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            return run_option_error("sim", c, argv, long_options);
        }
    }
    if (optind != argc)
        return run_usage_error("sim", "unexpected argument \"%s\"",
                               argv[optind]);
    if (drop >= 0 && o.drop == 0)
        return run_usage_error("sim", "--drop needs the drop fault, which "
                                      "--faults turned off");
    if (drop >= 0)
        o.drop = drop;

    if (store != NULL && make_dir(store) != 0)
        return RUN_EXIT_INFRA;
    o.keep_trace = store != NULL;
    /* Engines on the simulated disks log every open; only errors matter
     * here, and the simulation reports those itself. */
    fl_log_set_level(FL_LOG_OFF);

    for (uint64_t seed = first;; seed++) {
        struct sim_raft_result r;
        o.seed = seed;
        int rc = sim_raft_run(&o, &r);
        if (rc == FL_EINPUT) {
            sim_raft_result_free(&r);
            return run_usage_error("sim", "%s", r.why);
        }
        if (rc != 0) {
            fprintf(stderr, "faultline sim: seed %" PRIu64 ": %s\n", seed,
                    fl_strerror(rc));
            sim_raft_result_free(&r);
            return RUN_EXIT_INFRA;
        }
        committed += r.committed;
        ops += r.ops_ok + r.ops_fail + r.ops_info;
        if (r.violation) {
            violations++;
            printf("seed %" PRIu64 ": violation: %s\n", seed, r.why);
            print_repro(argc, argv, seed);
        } else if (r.unknown) {
            unknown++;
            printf("seed %" PRIu64 ": unknown: %s\n", seed, r.why);
        }
        rc = store != NULL ? store_seed(store, seed, &r) : 0;
        sim_raft_result_free(&r);
        if (rc != 0)
            return RUN_EXIT_INFRA;
        if (seed == last)
            break;
    }
    if (committed == 0 && o.ticks >= 1000)
        printf("warning: no entry was committed in any seed, so the run "
               "checked little; the faults may leave the cluster no time to "
               "elect a leader\n");
    printf("%" PRIu64 " seed(s), %" PRIu64 " with a violation, %" PRIu64
           " unknown, %" PRIu64 " entries committed and %" PRIu64
           " client operations in all\n",
           last - first + 1, violations, unknown, committed, ops);
    if (violations > 0)
        return RUN_EXIT_INVALID;
    return unknown > 0 ? RUN_EXIT_UNKNOWN : RUN_EXIT_VALID;
}

int run_cmd_sim(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? RUN_EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "raft") != 0)
        return run_usage_error("sim", "unknown system \"%s\": expected raft",
                               argv[1]);
    return run_sim_raft(argc - 1, argv + 1);
}
