/*
 * `faultline gen`: writes synthetic histories that are linearizable by
 * construction (or, with --corrupt, certainly not), for tests, benchmarks
 * and the default job; `--suite DIR` writes a set of them with a manifest.
 */
#include "cli.h"
#include "outfile.h"

#include "error.h"
#include "histgen.h"
#include "history.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "Usage: faultline gen [OPTIONS] [--out FILE]\n"
    "       faultline gen --suite DIR [--seed N]\n"
    "\n"
    "Simulates clients running operations on an in-memory register or\n"
    "key-value map, each taking effect at a random instant inside its\n"
    "interval, and writes the history as JSON lines. The history is\n"
    "linearizable by construction unless --corrupt is given.\n"
    "\n"
    "Options:\n"
    "  --model MODEL       register, cas-register (default) or kv\n"
    "  --ops N             operations to invoke (default 1000)\n"
    "  --keys N            keys k0..k{N-1} (default 1; kv histories and\n"
    "                      N > 1 carry a key field)\n"
    "  --keyed             add the key field even with one key\n"
    "  --processes N       concurrent client processes (default 5)\n"
    "  --crash-rate P      share of operations that end in info, from 0 to 1\n"
    "                      (default 0)\n"
    "  --values N          register writes pick from 0..N-1 (default 5)\n"
    "  --read-ratio P      share of reads, from 0 to 1 (default 0.5)\n"
    "  --seed N            seed for every random choice (default 0)\n"
    "  --corrupt           make one ok read in the middle half of the\n"
    "                      history return a value never written\n"
    "  --out FILE          write to FILE instead of standard output\n"
    "  --suite DIR         write a sample set of valid and corrupted\n"
    "                      histories for every model, with DIR/MANIFEST.json\n"
    "  -h, --help          show this help\n";

/* Destination of generated events, and the first failure to store one. */
struct gen_sink {
    struct fl_hist_writer *writer;
    int write_rc; /* an I/O error of the writer, or 0 */
};

static int emit_line(void *ctx, const struct fl_hist_event *ev)
{
    struct gen_sink *sink = ctx;
    int rc = fl_hist_writer_write(sink->writer, ev);

    if (rc != 0 && rc != FL_EINPUT)
        sink->write_rc = rc;
    return rc;
}

/* Explains why generation failed with rc, while the writer is still open. */
static void describe_failure(const struct wl_gen_options *g,
                             const struct gen_sink *sink,
                             const struct run_outfile *f, int rc,
                             const char *name, char *err, size_t err_size)
{
    if (sink->write_rc != 0)
        snprintf(err, err_size, "writing %s failed: %s", name,
                 fl_strerror(run_outfile_error(f, sink->write_rc)));
    else if (rc == FL_EINPUT && fl_hist_writer_error(sink->writer)[0] != '\0')
        snprintf(err, err_size, "generator produced an invalid event: %s",
                 fl_hist_writer_error(sink->writer));
    else if (rc == FL_EINPUT)
        snprintf(err, err_size,
                 g->corrupt ? "no read completed in the middle half of the "
                              "history to corrupt; use more --ops or a "
                              "higher --read-ratio"
                            : "invalid generator options");
    else
        snprintf(err, err_size, "generation failed: %s", fl_strerror(rc));
}

/*
 * Writes the history g describes to path, or to standard output when path
 * is NULL. On failure returns the error, with the reason in err; a regular
 * file at path is then left as it was, and none is created.
 */
static int write_history(const struct wl_gen_options *g, const char *path,
                         char *err, size_t err_size)
{
    const char *name = path ? path : "standard output";
    struct gen_sink sink = {0};
    struct run_outfile f;
    int closed;
    int rc = run_outfile_open(&f, path);

    if (rc != 0) {
        snprintf(err, err_size, "cannot create %s: %s", name, fl_strerror(rc));
        return rc;
    }
    rc = fl_hist_writer_stream(&sink.writer, f.stream);
    if (rc != 0) {
        snprintf(err, err_size, "cannot write %s: %s", name, fl_strerror(rc));
        run_outfile_abort(&f);
        return rc;
    }
    rc = wl_gen_history(g, emit_line, &sink);
    if (rc != 0)
        describe_failure(g, &sink, &f, rc, name, err, err_size);
    closed = fl_hist_writer_close(sink.writer);
    if (rc == 0 && closed != 0) {
        rc = run_outfile_error(&f, closed);
        snprintf(err, err_size, "writing %s failed: %s", name, fl_strerror(rc));
    }
    if (rc != 0) {
        run_outfile_abort(&f);
        return rc;
    }
    rc = run_outfile_commit(&f);
    if (rc != 0)
        snprintf(err, err_size, "writing %s failed: %s", name, fl_strerror(rc));
    return rc;
}

struct suite_item {
    const char *name;
    enum wl_gen_model model;
    size_t ops;
    size_t keys;
    size_t processes;
    double crash_rate;
    bool corrupt;
};

static const struct suite_item suite[] = {
    {"register-small", WL_GEN_REGISTER, 200, 1, 5, 0.0, false},
    {"register-small-bad", WL_GEN_REGISTER, 200, 1, 5, 0.0, true},
    {"register-crashes", WL_GEN_REGISTER, 2000, 1, 10, 0.05, false},
    {"register-crashes-bad", WL_GEN_REGISTER, 2000, 1, 10, 0.05, true},
    {"cas-small", WL_GEN_CAS_REGISTER, 200, 1, 5, 0.0, false},
    {"cas-small-bad", WL_GEN_CAS_REGISTER, 200, 1, 5, 0.0, true},
    {"cas-crashes", WL_GEN_CAS_REGISTER, 5000, 1, 20, 0.05, false},
    {"cas-crashes-bad", WL_GEN_CAS_REGISTER, 5000, 1, 20, 0.05, true},
    {"cas-keys", WL_GEN_CAS_REGISTER, 50000, 100, 20, 0.02, false},
    {"cas-keys-bad", WL_GEN_CAS_REGISTER, 50000, 100, 20, 0.02, true},
    {"kv-small", WL_GEN_KV, 500, 5, 5, 0.0, false},
    {"kv-small-bad", WL_GEN_KV, 500, 5, 5, 0.0, true},
    {"kv-crashes", WL_GEN_KV, 5000, 20, 10, 0.05, false},
    {"kv-crashes-bad", WL_GEN_KV, 5000, 20, 10, 0.05, true},
};

static const char *const model_names[] = {"register", "cas-register", "kv"};

/* Creates dir unless it exists; returns 0 or -errno. */
static int make_suite_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0777) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    if (stat(dir, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static void print_manifest(FILE *out, uint64_t seed)
{
    size_t n = sizeof(suite) / sizeof(suite[0]);

    fputs("[\n", out);
    for (size_t i = 0; i < n; i++) {
        bool kv = suite[i].model == WL_GEN_KV;
        fprintf(out,
                " {\"file\": \"%s.jsonl\", \"model\": \"%s\", \"expected\": "
                "\"%s\", \"init\": %s, \"read_null\": \"value\", "
                "\"cas_fail\": \"no-effect\", \"source\": \"faultline gen "
                "--seed %llu\"}%s\n",
                suite[i].name, model_names[suite[i].model],
                suite[i].corrupt ? "not-linearizable" : "linearizable",
                kv ? "\"\"" : "null", (unsigned long long)(seed + i),
                i + 1 < n ? "," : "");
    }
    fputs("]\n", out);
}

static int write_manifest(const char *path, uint64_t seed)
{
    struct run_outfile f;
    int rc = run_outfile_open(&f, path);

    if (rc != 0) {
        fprintf(stderr, "faultline gen: cannot create %s: %s\n", path,
                fl_strerror(rc));
        return RUN_EXIT_USAGE;
    }
    print_manifest(f.stream, seed);
    rc = run_outfile_commit(&f);
    if (rc != 0) {
        fprintf(stderr, "faultline gen: writing %s failed: %s\n", path,
                fl_strerror(rc));
        return RUN_EXIT_INFRA;
    }
    return 0;
}

static int write_suite(const char *dir, uint64_t seed)
{
    char path[4096];
    char err[512];
    size_t n = sizeof(suite) / sizeof(suite[0]);
    int rc = make_suite_dir(dir);

    if (rc != 0) {
        fprintf(stderr,
                "faultline gen: cannot use %s as the suite folder: %s\n", dir,
                fl_strerror(rc));
        return RUN_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++) {
        struct wl_gen_options g;
        wl_gen_options_default(&g);
        g.model = suite[i].model;
        g.ops = suite[i].ops;
        g.keys = suite[i].keys;
        g.processes = suite[i].processes;
        g.crash_rate = suite[i].crash_rate;
        g.corrupt = suite[i].corrupt;
        g.seed = seed + i;
        snprintf(path, sizeof(path), "%s/%s.jsonl", dir, suite[i].name);
        if (write_history(&g, path, err, sizeof(err)) != 0) {
            fprintf(stderr, "faultline gen: %s: %s\n", suite[i].name, err);
            return RUN_EXIT_INFRA;
        }
    }
    snprintf(path, sizeof(path), "%s/MANIFEST.json", dir);
    rc = write_manifest(path, seed);
    if (rc == 0)
        printf("wrote %zu histories and %s\n", n, path);
    return rc;
}

enum {
    OPT_MODEL = 256,
    OPT_OPS,
    OPT_KEYS,
    OPT_KEYED,
    OPT_PROCESSES,
    OPT_CRASH_RATE,
    OPT_VALUES,
    OPT_READ_RATIO,
    OPT_SEED,
    OPT_CORRUPT,
    OPT_OUT,
    OPT_SUITE,
};

static const struct option long_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"ops", required_argument, NULL, OPT_OPS},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"keyed", no_argument, NULL, OPT_KEYED},
    {"processes", required_argument, NULL, OPT_PROCESSES},
    {"crash-rate", required_argument, NULL, OPT_CRASH_RATE},
    {"values", required_argument, NULL, OPT_VALUES},
    {"read-ratio", required_argument, NULL, OPT_READ_RATIO},
    {"seed", required_argument, NULL, OPT_SEED},
    {"corrupt", no_argument, NULL, OPT_CORRUPT},
    {"out", required_argument, NULL, OPT_OUT},
    {"suite", required_argument, NULL, OPT_SUITE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int run_cmd_gen(int argc, char **argv)
{
    struct wl_gen_options g;
    const char *out = NULL;
    const char *suite_dir = NULL;
    char err[512];
    uint64_t u;
    int c;

    wl_gen_options_default(&g);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_MODEL:
            if (wl_gen_model_parse(optarg, &g.model) != 0)
                return run_usage_error("gen",
                                       "invalid --model \"%s\": expected "
                                       "register, cas-register or kv",
                                       optarg);
            break;
        case OPT_OPS:
            if (run_parse_u64("gen", "--ops", optarg, 0, UINT64_C(1) << 31,
                              NULL, &u) != 0)
                return RUN_EXIT_USAGE;
            g.ops = (size_t)u;
            break;
        case OPT_KEYS:
            if (run_parse_u64("gen", "--keys", optarg, 1, UINT64_C(1) << 24,
                              NULL, &u) != 0)
                return RUN_EXIT_USAGE;
            g.keys = (size_t)u;
            break;
        case OPT_KEYED:
            g.keyed = true;
            break;
        case OPT_PROCESSES:
            if (run_parse_u64("gen", "--processes", optarg, 1, 100000, NULL,
                              &u) != 0)
                return RUN_EXIT_USAGE;
            g.processes = (size_t)u;
            break;
        case OPT_CRASH_RATE:
            if (run_parse_double("gen", "--crash-rate", optarg, 0, 1, NULL,
                                 &g.crash_rate) != 0)
                return RUN_EXIT_USAGE;
            break;
        case OPT_VALUES:
            if (run_parse_u64("gen", "--values", optarg, 1, UINT64_C(1) << 40,
                              NULL, &u) != 0)
                return RUN_EXIT_USAGE;
            g.values = (int64_t)u;
            break;
        case OPT_READ_RATIO:
            if (run_parse_double("gen", "--read-ratio", optarg, 0, 1, NULL,
                                 &g.read_ratio) != 0)
                return RUN_EXIT_USAGE;
            break;
        case OPT_SEED:
            if (run_parse_u64("gen", "--seed", optarg, 0, UINT64_MAX, NULL,
                              &u) != 0)
                return RUN_EXIT_USAGE;
            g.seed = u;
            break;
        case OPT_CORRUPT:
            g.corrupt = true;
            break;
        case OPT_OUT:
            out = optarg;
            break;
        case OPT_SUITE:
            suite_dir = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            return run_option_error("gen", c, argv, long_options);
        }
    }
    if (optind != argc)
        return run_usage_error("gen", "unexpected argument \"%s\"",
                               argv[optind]);
    if (suite_dir != NULL)
        return write_suite(suite_dir, g.seed);
    if (write_history(&g, out, err, sizeof(err)) != 0) {
        fprintf(stderr, "faultline gen: %s\n", err);
        return RUN_EXIT_USAGE;
    }
    return 0;
}
