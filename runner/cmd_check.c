/*
 * `faultline check`: offline linearizability checking of a history file, or
 * of every history a manifest lists.
 */
#include "check.h"
#include "cli.h"

#include "clock.h"
#include "error.h"
#include "history.h"
#include "linear.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
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
    "                      checking (default 600; 0 means no limit)\n"
    "  --memory-limit MB   stop with verdict unknown once the checker holds\n"
    "                      MB megabytes (default: half of physical memory;\n"
    "                      0 means no limit)\n"
    "  --threads N         threads that check keys in parallel (default: one\n"
    "                      per online CPU)\n"
    "  --all-keys          keep checking the other keys after one is found\n"
    "                      not linearizable (default: stop, the verdict is\n"
    "                      known)\n"
    "  --json              print the result as one JSON object\n"
    "  --manifest PATH     check every history listed in PATH, each with the\n"
    "                      model and options of its entry, and print a table\n"
    "                      of expected and actual verdicts\n"
    "  -h, --help          show this help\n"
    "\n"
    "Semantics: fail means the operation did not happen; info, and an\n"
    "invocation without completion, may take effect at any time after the\n"
    "invocation, or never.\n"
    "\n"
    "Exit codes: 0 linearizable, 1 not linearizable, 2 usage or input error,\n"
    "3 unknown (a limit was reached). With --manifest: 0 when every verdict\n"
    "matches, 1 when one does not, 3 when none disagrees but one is unknown.\n";

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

int run_check_file(const char *path, const struct chk_lin_options *o,
                   FILE *report, bool json, struct run_check_outcome *out)
{
    struct fl_hist_reader *reader = NULL;
    struct chk_lin_history *h = NULL;
    struct fl_hist_event ev;
    struct chk_lin_result res;
    struct fl_buf text;
    int64_t started = fl_clock_now_ns();
    char msg[512];
    int rc;

    memset(out, 0, sizeof(*out));
    fl_buf_init(&text);
    rc = fl_hist_reader_open(&reader, path, NULL);
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
        rc = rc == FL_EINPUT ? RUN_EXIT_USAGE : RUN_EXIT_INFRA;
        goto out;
    }
    while ((rc = fl_hist_reader_next(reader, &ev)) == 1) {
        rc = chk_lin_history_add(h, &ev, msg, sizeof(msg));
        if (rc == FL_EINPUT) {
            snprintf(out->error, sizeof(out->error), "%s:%llu: %s", path,
                     (unsigned long long)ev.line, msg);
            rc = RUN_EXIT_USAGE;
            goto out;
        }
        if (rc == FL_EBUDGET) {
            /* The history alone does not fit: the verdict is unknown. */
            memset(&res, 0, sizeof(res));
            out->verdict = CHK_UNKNOWN;
            out->ops = chk_lin_op_count(h);
            out->ms = (double)fl_clock_since_ns(started) / 1e6;
            if (report != NULL)
                fprintf(report,
                        json ? "{\"verdict\":\"unknown\",\"valid\":\"unknown\","
                               "\"reason\":\"memory limit reached while "
                               "reading the history\"}\n"
                             : "verdict: unknown\nreason: memory limit "
                               "reached while reading the history\n");
            rc = 0;
            goto out;
        }
        if (rc != 0) {
            snprintf(out->error, sizeof(out->error), "%s: %s", path,
                     fl_strerror(rc));
            rc = RUN_EXIT_INFRA;
            goto out;
        }
    }
    if (rc < 0) {
        snprintf(out->error, sizeof(out->error), "%s",
                 fl_hist_reader_error(reader));
        rc = rc == FL_EINPUT ? RUN_EXIT_USAGE : RUN_EXIT_INFRA;
        goto out;
    }
    rc = chk_lin_check(h, &res);
    if (rc != 0) {
        snprintf(out->error, sizeof(out->error), "%s: check failed: %s", path,
                 fl_strerror(rc));
        rc = RUN_EXIT_INFRA;
        goto out;
    }
    out->verdict = res.verdict;
    out->ops = res.ops;
    out->ms = (double)fl_clock_since_ns(started) / 1e6;
    if (report != NULL) {
        if (json) {
            chk_lin_result_json(h, &res, &text);
            fl_buf_addc(&text, '\n');
        } else {
            fl_buf_printf(&text, "history: %s\n", path);
            chk_lin_result_text(h, &res, &text);
        }
        if (text.failed) {
            snprintf(out->error, sizeof(out->error),
                     "out of memory while rendering the result");
            rc = RUN_EXIT_INFRA;
            goto out;
        }
        fwrite(text.data, 1, text.len, report);
    }
    rc = 0;
out:
    fl_buf_free(&text);
    chk_lin_history_free(h);
    fl_hist_reader_close(reader);
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

int run_cmd_check(int argc, char **argv)
{
    struct chk_lin_options o;
    struct fl_arena arena;
    const char *manifest = NULL;
    bool json = false;
    uint64_t u;
    double d;
    int c;
    int rc = RUN_EXIT_USAGE;

    chk_lin_options_default(&o);
    o.time_limit_s = 600;
    o.memory_limit_bytes = default_memory_limit();
    fl_arena_init(&arena, 1024, NULL);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_MODEL:
            if (chk_model_parse(optarg, &o.model) != 0) {
                rc = run_usage_error("check",
                                     "invalid --model \"%s\": expected "
                                     "register, cas-register or kv",
                                     optarg);
                goto out;
            }
            break;
        case OPT_INIT: {
            const char *why;
            size_t where;
            if (fl_json_parse(&arena, optarg, strlen(optarg), &o.init, &why,
                              &where) != 0 ||
                !(o.init.kind == FL_JSON_NULL || o.init.kind == FL_JSON_INT ||
                  o.init.kind == FL_JSON_STRING)) {
                rc = run_usage_error("check",
                                     "invalid --init '%s': expected a JSON "
                                     "null, integer or string such as 0, "
                                     "null or '\"\"'",
                                     optarg);
                goto out;
            }
            o.has_init = true;
            break;
        }
        case OPT_READ_NULL:
            if (chk_read_null_parse(optarg, &o.read_null) != 0) {
                rc = run_usage_error("check",
                                     "invalid --read-null \"%s\": expected "
                                     "value or unknown",
                                     optarg);
                goto out;
            }
            break;
        case OPT_CAS_FAIL:
            if (chk_cas_fail_parse(optarg, &o.cas_fail) != 0) {
                rc = run_usage_error("check",
                                     "invalid --cas-fail \"%s\": expected "
                                     "no-effect or compare-failed",
                                     optarg);
                goto out;
            }
            break;
        case OPT_TIME_LIMIT:
            if (run_parse_double("check", "--time-limit", optarg, 0, 1e9, &d) !=
                0)
                goto out;
            o.time_limit_s = d;
            break;
        case OPT_MEMORY_LIMIT:
            if (run_parse_u64("check", "--memory-limit", optarg, 0,
                              UINT64_C(1) << 30, &u) != 0)
                goto out;
            o.memory_limit_bytes = (int64_t)(u << 20);
            break;
        case OPT_THREADS:
            if (run_parse_u64("check", "--threads", optarg, 1, 1024, &u) != 0)
                goto out;
            o.threads = (int)u;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_ALL_KEYS:
            o.all_keys = true;
            break;
        case OPT_MANIFEST:
            manifest = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            rc = 0;
            goto out;
        case ':':
            rc = run_usage_error("check", "option %s needs a value",
                                 argv[optind - 1]);
            goto out;
        default:
            rc =
                run_usage_error("check", "unknown option %s", argv[optind - 1]);
            goto out;
        }
    }
    if (manifest != NULL) {
        if (optind != argc) {
            rc = run_usage_error("check", "--manifest takes no history file "
                                          "argument");
            goto out;
        }
        rc = run_check_manifest(manifest, &o, json);
        goto out;
    }
    if (optind + 1 != argc) {
        rc = run_usage_error("check", optind == argc
                                          ? "missing history file"
                                          : "expected one history file");
        goto out;
    }
    if (o.model == CHK_MODEL_KV && o.has_init && o.init.kind == FL_JSON_INT) {
        rc = run_usage_error("check", "--init for the kv model must be a "
                                      "string or null");
        goto out;
    }
    {
        struct run_check_outcome res;
        rc = run_check_file(argv[optind], &o, stdout, json, &res);
        if (rc != 0) {
            fprintf(stderr, "faultline check: %s\n", res.error);
            goto out;
        }
        rc = run_verdict_exit(res.verdict);
    }
out:
    fl_arena_destroy(&arena);
    return rc;
}
