/*
 * `faultline check`: offline linearizability checking of a history file, or
 * of every history a manifest lists.
 */
#include "check_file.h"
#include "cli.h"

#include "clock.h"
#include "error.h"
#include "history.h"
#include "linear.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char help[] =
    "Usage: faultline check [OPTIONS] FILE.jsonl\n"
    "       faultline check [OPTIONS] --manifest MANIFEST.json\n"
    "\n"
    "Checks a recorded history for linearizability against a model. Each\n"
    "key is checked on its own. FILE may be '-' for standard input.\n"
    "\n"
    "Options:\n"
    "  --model MODEL       register (read, write), cas-register (read, write,\n"
    "                      cas; the default) or kv (get, put, append)\n"
    "  --init VALUE        initial value of every key, as JSON: 0, null, \"\"\n"
    "                      (default: null for registers, \"\" for kv)\n"
    "  --read-null MODE    what a null read result means: value (the\n"
    "                      register is empty; default) or unknown (the value\n"
    "                      was not recorded, so the read constrains nothing)\n"
    "  --cas-fail MODE     what a failed cas means: no-effect (it did not\n"
    "                      happen; default) or compare-failed (it ran and\n"
    "                      found a value other than the expected one)\n"
    "  --time-limit SEC    stop with verdict unknown after SEC seconds of\n"
    "                      checking, counted once the history is read, so\n"
    "                      reading is not limited (default 600; 0 means no\n"
    "                      limit)\n"
    "  --memory-limit MIB  stop with verdict unknown once reading and "
    "checking\n"
    "                      hold MIB MiB (1 MiB = 2^20 bytes; default: half of\n"
    "                      physical memory; 0 means no limit)\n"
    "  --threads N         threads that check keys in parallel (default: one\n"
    "                      per online CPU)\n"
    "  --all-keys          keep checking the other keys after one is found\n"
    "                      not linearizable (default: stop, the verdict is\n"
    "                      known)\n"
    "  --json              print the result as one JSON object\n"
    "  --manifest PATH     check every history listed in PATH, each with the\n"
    "                      model and options of its entry, and print a table\n"
    "                      of expected and actual verdicts; --model, --init,\n"
    "                      --read-null and --cas-fail are then rejected\n"
    "  -h, --help          show this help\n"
    "\n"
    "Semantics: fail means the operation did not happen; info, and an\n"
    "invocation without completion, may take effect at any time after the\n"
    "invocation, or never.\n"
    "\n"
    "Exit codes: 0 linearizable, 1 not linearizable, 2 usage or input error\n"
    "(including a file that cannot be read), 3 unknown (a limit was reached),\n"
    "4 infrastructure failure. With --manifest: 1 when any verdict differs\n"
    "from the expected one; else 2 when a history could not be checked; else\n"
    "3 when one is unknown; else 0.\n";

int run_verdict_exit(enum chk_verdict v)
{
    switch (v) {
    case CHK_VALID:
        return RUN_EXIT_VALID;
    case CHK_INVALID:
        return RUN_EXIT_INVALID;
    case CHK_UNKNOWN:
        return RUN_EXIT_UNKNOWN;
    }
    return RUN_EXIT_INFRA;
}

/*
 * Rejects a directory before the reader opens path, so the message names the
 * real cause instead of a failed read. O_PATH opens no data, so opening a
 * FIFO here neither blocks nor briefly adds a reader that its writer could
 * lose. Returns 0 or -errno.
 */
static int check_openable(const char *path)
{
    struct stat st;
    int fd = STDIN_FILENO;
    int rc = 0;

    if (strcmp(path, "-") != 0) {
        fd = open(path, O_PATH | O_CLOEXEC);
        if (fd < 0)
            return -errno;
    }
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}

/*
 * Feeds every event of reader to h. Returns 0, FL_EBUDGET when the memory
 * limit is reached, or an exit code with the reason in out->error.
 */
static int read_history(const char *path, struct fl_hist_reader *reader,
                        struct chk_lin_history *h,
                        struct run_check_outcome *out)
{
    struct fl_hist_event ev;
    char msg[512];
    int rc;

    while ((rc = fl_hist_reader_next(reader, &ev)) == 1) {
        rc = chk_lin_history_add(h, &ev, msg, sizeof(msg));
        if (rc == FL_EBUDGET)
            return rc;
        if (rc == FL_EINPUT) {
            snprintf(out->error, sizeof(out->error), "%s:%llu: %s", path,
                     (unsigned long long)ev.line, msg);
            return RUN_EXIT_USAGE;
        }
        if (rc != 0) {
            snprintf(out->error, sizeof(out->error), "%s: %s", path,
                     fl_strerror(rc));
            return RUN_EXIT_INFRA;
        }
    }
    if (rc == FL_EBUDGET)
        return rc;
    if (rc < 0) {
        snprintf(out->error, sizeof(out->error), "%s",
                 fl_hist_reader_error(reader));
        /* Malformed input and failed reads are input errors; running out of
         * memory is not. */
        return rc == -ENOMEM ? RUN_EXIT_INFRA : RUN_EXIT_USAGE;
    }
    return 0;
}

/* Fills res for a history whose reading reached the memory limit. */
static void unknown_while_reading(const struct chk_lin_history *h,
                                  int64_t started, struct chk_lin_result *res)
{
    memset(res, 0, sizeof(*res));
    res->verdict = CHK_UNKNOWN;
    res->ops = chk_lin_op_count(h);
    res->elapsed_ns = fl_clock_since_ns(started);
    snprintf(res->reason, sizeof(res->reason),
             "memory limit reached while reading the history");
}

/*
 * Appends the report of res to text. read_whole is false when reading
 * stopped early, so the counts describe only the part that was read.
 */
static void render_result(const char *path, const struct chk_lin_history *h,
                          const struct chk_lin_result *res, bool read_whole,
                          bool json, struct fl_buf *text)
{
    if (json) {
        chk_lin_result_json(h, res, text);
        fl_buf_addc(text, '\n');
        return;
    }
    fl_buf_printf(text, "history: %s\n", path);
    if (!read_whole) {
        fl_buf_printf(text, "verdict: %s\nreason: %s (%zu operation%s read)\n",
                      chk_verdict_name(res->verdict), res->reason, res->ops,
                      res->ops == 1 ? "" : "s");
        return;
    }
    chk_lin_result_text(h, res, text);
    if (res->ops == 0)
        fl_buf_adds(text, "note: the history has no operations\n");
}

/* Records res in out and writes its report when report is not NULL. */
static int finish(const char *path, const struct chk_lin_history *h,
                  const struct chk_lin_result *res, bool read_whole,
                  int64_t started, FILE *report, bool json,
                  struct run_check_outcome *out)
{
    struct fl_buf text;
    int rc = 0;

    out->verdict = res->verdict;
    out->ops = res->ops;
    out->ms = (double)fl_clock_since_ns(started) / 1e6;
    if (report == NULL)
        return 0;
    fl_buf_init(&text);
    render_result(path, h, res, read_whole, json, &text);
    if (text.failed) {
        snprintf(out->error, sizeof(out->error),
                 "out of memory while rendering the result");
        rc = RUN_EXIT_INFRA;
    } else {
        fwrite(text.data, 1, text.len, report);
    }
    fl_buf_free(&text);
    return rc;
}

int run_check_file(const char *path, const struct chk_lin_options *o,
                   FILE *report, bool json, struct run_check_outcome *out)
{
    struct fl_hist_reader *reader = NULL;
    struct chk_lin_history *h = NULL;
    struct chk_lin_result res;
    int64_t started = fl_clock_now_ns();
    int rc;

    memset(out, 0, sizeof(*out));
    rc = check_openable(path);
    if (rc != 0) {
        snprintf(out->error, sizeof(out->error), "%s: cannot open: %s", path,
                 fl_strerror(rc));
        return RUN_EXIT_USAGE;
    }
    rc = chk_lin_history_new(&h, o);
    if (rc != 0) {
        snprintf(out->error, sizeof(out->error),
                 rc == FL_EINPUT ? "invalid initial value for the %s model"
                                 : "cannot start the checker (%s)",
                 rc == FL_EINPUT ? chk_model_name(o->model) : fl_strerror(rc));
        return rc == FL_EINPUT ? RUN_EXIT_USAGE : RUN_EXIT_INFRA;
    }
    /* Charge the reader's memory to the checker's budget, so --memory-limit
     * also bounds reading. */
    rc = fl_hist_reader_open(&reader, path, chk_lin_history_budget(h));
    if (rc != 0 && rc != FL_EBUDGET) {
        snprintf(out->error, sizeof(out->error), "%s: cannot open: %s", path,
                 fl_strerror(rc));
        rc = rc == -ENOMEM ? RUN_EXIT_INFRA : RUN_EXIT_USAGE;
        goto out;
    }
    if (rc == 0)
        rc = read_history(path, reader, h, out);
    if (rc == FL_EBUDGET) {
        unknown_while_reading(h, started, &res);
        rc = finish(path, h, &res, false, started, report, json, out);
        goto out;
    }
    if (rc != 0)
        goto out;
    rc = chk_lin_check(h, &res);
    if (rc != 0) {
        snprintf(out->error, sizeof(out->error), "%s: check failed: %s", path,
                 fl_strerror(rc));
        rc = RUN_EXIT_INFRA;
        goto out;
    }
    rc = finish(path, h, &res, true, started, report, json, out);
out:
    /* The reader releases its charges on close, so it goes before h. */
    fl_hist_reader_close(reader);
    chk_lin_history_free(h);
    return rc;
}

enum {
    OPT_MODEL = 256,
    OPT_INIT,
    OPT_READ_NULL,
    OPT_CAS_FAIL,
    OPT_TIME_LIMIT,
    OPT_MEMORY_LIMIT,
    OPT_THREADS,
    OPT_JSON,
    OPT_MANIFEST,
    OPT_ALL_KEYS,
};

static const struct option long_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"init", required_argument, NULL, OPT_INIT},
    {"read-null", required_argument, NULL, OPT_READ_NULL},
    {"cas-fail", required_argument, NULL, OPT_CAS_FAIL},
    {"time-limit", required_argument, NULL, OPT_TIME_LIMIT},
    {"memory-limit", required_argument, NULL, OPT_MEMORY_LIMIT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"json", no_argument, NULL, OPT_JSON},
    {"all-keys", no_argument, NULL, OPT_ALL_KEYS},
    {"manifest", required_argument, NULL, OPT_MANIFEST},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int64_t default_memory_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);

    if (pages <= 0 || page <= 0)
        return 0;
    return (int64_t)pages * page / 2;
}

struct check_args {
    struct chk_lin_options o;
    const char *manifest;
    const char *entry_option; /* an option a manifest entry sets, or NULL */
    bool json;
};

static int parse_init(const char *text, struct fl_arena *arena,
                      struct chk_lin_options *o)
{
    const char *why;
    size_t where;

    if (fl_json_parse(arena, text, strlen(text), &o->init, &why, &where) != 0 ||
        !(o->init.kind == FL_JSON_NULL || o->init.kind == FL_JSON_INT ||
          o->init.kind == FL_JSON_STRING))
        return run_usage_error("check",
                               "invalid --init '%s': expected a JSON null, "
                               "integer or string such as 0, null or '\"\"'",
                               text);
    o->has_init = true;
    return 0;
}

/* Applies option c with value optarg; returns 0 or RUN_EXIT_USAGE. */
static int parse_option(int c, struct check_args *a, struct fl_arena *arena)
{
    struct chk_lin_options *o = &a->o;
    uint64_t u;
    double d;

    switch (c) {
    case OPT_MODEL:
        a->entry_option = "--model";
        if (chk_model_parse(optarg, &o->model) != 0)
            return run_usage_error("check",
                                   "invalid --model \"%s\": expected "
                                   "register, cas-register or kv",
                                   optarg);
        return 0;
    case OPT_INIT:
        a->entry_option = "--init";
        return parse_init(optarg, arena, o);
    case OPT_READ_NULL:
        a->entry_option = "--read-null";
        if (chk_read_null_parse(optarg, &o->read_null) != 0)
            return run_usage_error("check",
                                   "invalid --read-null \"%s\": expected "
                                   "value or unknown",
                                   optarg);
        return 0;
    case OPT_CAS_FAIL:
        a->entry_option = "--cas-fail";
        if (chk_cas_fail_parse(optarg, &o->cas_fail) != 0)
            return run_usage_error("check",
                                   "invalid --cas-fail \"%s\": expected "
                                   "no-effect or compare-failed",
                                   optarg);
        return 0;
    case OPT_TIME_LIMIT:
        if (run_parse_double("check", "--time-limit", optarg, 0, 1e9, "seconds",
                             &d) != 0)
            return RUN_EXIT_USAGE;
        o->time_limit_s = d;
        return 0;
    case OPT_MEMORY_LIMIT:
        if (run_parse_u64("check", "--memory-limit", optarg, 0,
                          UINT64_C(1) << 30, "MiB", &u) != 0)
            return RUN_EXIT_USAGE;
        o->memory_limit_bytes = (int64_t)(u << 20);
        return 0;
    case OPT_THREADS:
        if (run_parse_u64("check", "--threads", optarg, 1, 1024, NULL, &u) != 0)
            return RUN_EXIT_USAGE;
        o->threads = (int)u;
        return 0;
    case OPT_JSON:
        a->json = true;
        return 0;
    case OPT_ALL_KEYS:
        o->all_keys = true;
        return 0;
    case OPT_MANIFEST:
        a->manifest = optarg;
        return 0;
    }
    return RUN_EXIT_USAGE;
}

static int check_manifest(int argc, const struct check_args *a)
{
    if (optind != argc)
        return run_usage_error("check",
                               "--manifest takes no history file argument");
    /* Ignoring these would check with options other than the requested ones. */
    if (a->entry_option != NULL)
        return run_usage_error("check",
                               "%s cannot be combined with --manifest: each "
                               "entry names its own",
                               a->entry_option);
    return run_check_manifest(a->manifest, &a->o, a->json);
}

static int check_one(int argc, char **argv, const struct check_args *a)
{
    struct run_check_outcome res;
    int rc;

    if (optind + 1 != argc)
        return run_usage_error("check", optind == argc
                                            ? "missing history file"
                                            : "expected one history file");
    if (a->o.model == CHK_MODEL_KV && a->o.has_init &&
        a->o.init.kind == FL_JSON_INT)
        return run_usage_error("check", "--init for the kv model must be a "
                                        "string or null");
    rc = run_check_file(argv[optind], &a->o, stdout, a->json, &res);
    if (rc != 0) {
        fprintf(stderr, "faultline check: %s\n", res.error);
        return rc;
    }
    return run_verdict_exit(res.verdict);
}

int run_cmd_check(int argc, char **argv)
{
    struct check_args a = {0};
    struct fl_arena arena;
    int c;
    int rc = 0;

    chk_lin_options_default(&a.o);
    a.o.time_limit_s = 600;
    a.o.memory_limit_bytes = default_memory_limit();
    fl_arena_init(&arena, 1024, NULL);
    optind = 1;
    opterr = 0;
    while (rc == 0 &&
           (c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            goto out;
        }
        if (c == ':' || c == '?')
            rc = run_option_error("check", c, argv, long_options);
        else
            rc = parse_option(c, &a, &arena);
    }
    if (rc != 0)
        goto out;
    rc = a.manifest != NULL ? check_manifest(argc, &a)
                            : check_one(argc, argv, &a);
out:
    fl_arena_destroy(&arena);
    return rc;
}
