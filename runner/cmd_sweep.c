/*
 * `faultline sweep`: runs every campaign with every seed of a range, a few
 * runs at a time, and sums up what they found in a table, a JUnit file
 * and the exit code. Every campaign is loaded and validated before the
 * first run starts. The runs themselves are child processes
 * (sweep_exec.c); real runs store themselves and add themselves to
 * STORE/results.db as `faultline run` always does.
 */
#include "cli.h"
#include "run.h"
#include "sweep.h"

#include "clock.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARALLEL 256
#define MAX_SHARDS   100000
#define MAX_BUDGET_S (366 * 24 * 3600)

static const char help[] =
    "Usage: faultline sweep CAMPAIGN_OR_DIR... --seeds A..B [OPTIONS]\n"
    "       faultline sweep --emit-k8s [--shards N] CAMPAIGN_OR_DIR... "
    "--seeds A..B\n"
    "\n"
    "Runs every campaign with every seed from A to B, each run a child\n"
    "process: `faultline run CAMPAIGN --seed S` for real clusters, and\n"
    "`faultline sim raft --seed S ...` for simulator campaigns (\"system\":\n"
    "\"raft-sim\"). A directory stands for every *.json file in it, in name\n"
    "order. Every campaign is validated before the first run starts. Seeds\n"
    "start in order, each over every campaign. At the end a table gives,\n"
    "per campaign, the runs and their verdicts, and for planted-bug\n"
    "campaigns (\"expect\": \"invalid\") how many seeds found the bug.\n"
    "\n"
    "Options:\n"
    "  --seeds A..B      the seed range, at most 100000 seeds (required)\n"
    "  --jobs N          runs at once, 1 to 256 (default 1); each real run\n"
    "                    has its own namespaces, ports and directories\n"
    "  --budget TIME     start no run after TIME, a whole number of seconds,\n"
    "                    minutes or hours (90s, 30m, 2h); runs going on\n"
    "                    finish, and the rest are reported as not run\n"
    "  --junit FILE      write a JUnit XML report to FILE\n"
    "  --shard I/N       run only shard I of N, 0-based: the seeds S with\n"
    "                    (S - A) mod N = I\n"
    "  --store DIR       where real runs are stored (default: store); the\n"
    "                    runs' output goes to DIR/_sweeps/TIME-PID/\n"
    "  --duration S      workload seconds of real runs, overriding their\n"
    "                    campaigns (simulator campaigns keep time_s)\n"
    "  --bin-dir DIR     where fl-raftd and fl-kvd are (default: found next\n"
    "                    to faultline)\n"
    "  --dry-run         validate, print the plan, and start nothing\n"
    "  --emit-k8s        print a Kubernetes Indexed Job that runs the sweep\n"
    "                    in --shards pods instead, and start nothing\n"
    "  --shards N        with --emit-k8s: pods, 1 to 100000 (default 1)\n"
    "  --image IMAGE     with --emit-k8s: the container image (default\n"
    "                    faultline:latest)\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit codes: 0 every campaign behaved as expected, 1 a campaign that\n"
    "expects valid found an anomaly or a planted bug was found by no seed\n"
    "that ran, 2 usage or campaign error, 4 some run failed to run and no\n"
    "campaign failed, 130 interrupted (SIGINT, SIGTERM or SIGHUP, forwarded\n"
    "to every run).\n";

enum {
    OPT_SEEDS = 256,
    OPT_JOBS,
    OPT_BUDGET,
    OPT_JUNIT,
    OPT_SHARD,
    OPT_STORE,
    OPT_DURATION,
    OPT_BIN_DIR,
    OPT_DRY_RUN,
    OPT_EMIT_K8S,
    OPT_SHARDS,
    OPT_IMAGE,
};

static const struct option long_options[] = {
    {"seeds", required_argument, NULL, OPT_SEEDS},
    {"jobs", required_argument, NULL, OPT_JOBS},
    {"budget", required_argument, NULL, OPT_BUDGET},
    {"junit", required_argument, NULL, OPT_JUNIT},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"store", required_argument, NULL, OPT_STORE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"bin-dir", required_argument, NULL, OPT_BIN_DIR},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"emit-k8s", no_argument, NULL, OPT_EMIT_K8S},
    {"shards", required_argument, NULL, OPT_SHARDS},
    {"image", required_argument, NULL, OPT_IMAGE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The command line, as given where it is passed on. */
struct sweep_args {
    const char *seeds;
    const char *jobs;
    const char *budget;
    const char *duration;
    const char *image;
    uint64_t shards; /* --shards; 0: not given */
    bool shard_given;
    bool dry_run;
    bool emit_k8s;
};

/* Parses "I/N" with I < N into s->shard and s->shards. */
static int parse_shard(const char *text, struct run_sweep *s)
{
    const char *slash = strchr(text, '/');
    char index[32];

    if (slash == NULL || slash == text ||
        (size_t)(slash - text) >= sizeof(index) ||
        strspn(text, "0123456789") != (size_t)(slash - text) ||
        slash[1] == '\0' ||
        strspn(slash + 1, "0123456789") != strlen(slash + 1))
        return run_usage_error("sweep",
                               "invalid --shard \"%s\": expected I/N, the "
                               "0-based shard index I and the shard count N, "
                               "such as 0/4",
                               text);
    memcpy(index, text, (size_t)(slash - text));
    index[slash - text] = '\0';
    if (run_parse_u64("sweep", "--shard count", slash + 1, 1, MAX_SHARDS, NULL,
                      &s->shards) != 0 ||
        run_parse_u64("sweep", "--shard index", index, 0, MAX_SHARDS, NULL,
                      &s->shard) != 0)
        return RUN_EXIT_USAGE;
    if (s->shard >= s->shards)
        return run_usage_error("sweep",
                               "invalid --shard \"%s\": the index is 0-based, "
                               "so it must be below the count %" PRIu64
                               " (0 to %" PRIu64 ")",
                               text, s->shards, s->shards - 1);
    return 0;
}

static int parse_options(int argc, char **argv, struct run_sweep *s,
                         struct sweep_args *a, bool *help_asked)
{
    uint64_t u;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_SEEDS:
            if (run_parse_range("sweep", "--seeds", optarg, INT64_MAX,
                                RUN_SWEEP_MAX_SEEDS, &s->first_seed,
                                &s->last_seed) != 0)
                return RUN_EXIT_USAGE;
            a->seeds = optarg;
            break;
        case OPT_JOBS:
            if (run_parse_u64("sweep", "--jobs", optarg, 1, MAX_PARALLEL,
                              "runs", &u) != 0)
                return RUN_EXIT_USAGE;
            s->parallel = (unsigned)u;
            a->jobs = optarg;
            break;
        case OPT_BUDGET:
            if (run_parse_duration("sweep", "--budget", optarg, MAX_BUDGET_S,
                                   &s->budget_s) != 0)
                return RUN_EXIT_USAGE;
            s->budget_text = optarg;
            a->budget = optarg;
            break;
        case OPT_JUNIT:
            if (optarg[0] == '\0')
                return run_usage_error("sweep", "invalid --junit \"\": "
                                                "expected a file name");
            s->junit = optarg;
            break;
        case OPT_SHARD:
            if (parse_shard(optarg, s) != 0)
                return RUN_EXIT_USAGE;
            a->shard_given = true;
            break;
        case OPT_STORE:
            if (optarg[0] == '\0')
                return run_usage_error("sweep", "invalid --store \"\": "
                                                "expected a directory");
            s->store = optarg;
            break;
        case OPT_DURATION:
            if (run_parse_double("sweep", "--duration", optarg, 1, 86400,
                                 "seconds", &s->duration_s) != 0)
                return RUN_EXIT_USAGE;
            a->duration = optarg;
            break;
        case OPT_BIN_DIR:
            if (optarg[0] == '\0')
                return run_usage_error("sweep", "invalid --bin-dir \"\": "
                                                "expected a directory");
            s->bin_dir = optarg;
            break;
        case OPT_DRY_RUN:
            a->dry_run = true;
            break;
        case OPT_EMIT_K8S:
            a->emit_k8s = true;
            break;
        case OPT_SHARDS:
            if (run_parse_u64("sweep", "--shards", optarg, 1, MAX_SHARDS,
                              "shards", &a->shards) != 0)
                return RUN_EXIT_USAGE;
            break;
        case OPT_IMAGE:
            if (optarg[0] == '\0')
                return run_usage_error("sweep", "invalid --image \"\": "
                                                "expected an image name");
            a->image = optarg;
            break;
        case 'h':
            *help_asked = true;
            return 0;
        default:
            return run_option_error("sweep", c, argv, long_options);
        }
    }
    if (optind >= argc)
        return run_usage_error("sweep", "missing CAMPAIGN_OR_DIR: name "
                                        "campaign files or directories");
    if (a->seeds == NULL)
        return run_usage_error("sweep", "missing --seeds A..B: the seed "
                                        "range to run every campaign with");
    if (a->emit_k8s) {
        const char *other = a->shard_given ? "--shard"
                            : s->junit     ? "--junit"
                            : s->store     ? "--store"
                            : s->bin_dir   ? "--bin-dir"
                            : a->dry_run   ? "--dry-run"
                                           : NULL;
        if (other != NULL)
            return run_usage_error("sweep",
                                   "--emit-k8s sets %s for each pod itself; "
                                   "leave it out",
                                   other);
    } else if (a->shards != 0 || a->image != NULL) {
        return run_usage_error(
            "sweep", "%s needs --emit-k8s%s",
            a->shards != 0 ? "--shards" : "--image",
            a->shards != 0 ? "; to run one shard here use --shard I/N" : "");
    }
    return 0;
}

/* ---- campaigns --------------------------------------------------------- */

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_json_name(const char *name)
{
    size_t len = strlen(name);

    return len > 5 && strcmp(name + len - 5, ".json") == 0;
}

/* Loads one campaign file into s->campaigns[s->n_campaigns] when it is
 * valid, and prints why not otherwise. */
static int load_campaign(struct run_sweep *s, const char *path)
{
    struct run_sweep_campaign *c = &s->campaigns[s->n_campaigns];
    char err[2048];
    bool is_sim;
    int rc;

    memset(c, 0, sizeof(*c));
    if (snprintf(c->path, sizeof(c->path), "%s", path) >=
        (int)sizeof(c->path)) {
        fprintf(stderr, "faultline sweep: %s: path too long\n", path);
        return RUN_EXIT_USAGE;
    }
    rc = run_sim_campaign_load(path, &c->sim_campaign, &is_sim, err,
                               sizeof(err));
    if (rc == 0 && is_sim) {
        c->sim = true;
        c->system = "raft-sim";
        snprintf(c->name, sizeof(c->name), "%s", c->sim_campaign.name);
        c->expect_invalid = c->sim_campaign.expect_invalid;
        c->detect_within = c->sim_campaign.detect_within;
    } else if (rc == 0) {
        struct camp_campaign camp;
        rc = camp_load(path, &camp, err, sizeof(err));
        if (rc == 0 && s->duration_s > 0) {
            /* Validate the override as `faultline run` will: a duration
             * too short for the nemesis is a campaign error. */
            struct fl_buf b;
            camp.duration_s = s->duration_s;
            fl_buf_init(&b);
            camp_write(&camp, &b);
            rc = b.failed
                     ? RUN_EXIT_INFRA
                     : camp_parse(path, b.data, b.len, &camp, err, sizeof(err));
            fl_buf_free(&b);
            if (rc != 0)
                strncat(err, " (with --duration)",
                        sizeof(err) - strlen(err) - 1);
        }
        if (rc == 0) {
            snprintf(c->name, sizeof(c->name), "%s", camp.name);
            c->system = camp_system_name(camp.system);
            c->expect_invalid = camp.expect_invalid;
            c->detect_within = camp.detect_within;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "faultline sweep: %s\n", err);
        return rc;
    }
    for (size_t i = 0; i < s->n_campaigns; i++) {
        if (strcmp(s->campaigns[i].name, c->name) != 0)
            continue;
        fprintf(stderr,
                "faultline sweep: %s: campaign \"%s\" is in the sweep "
                "already, from %s; campaign names must differ\n",
                path, c->name, s->campaigns[i].path);
        return RUN_EXIT_USAGE;
    }
    s->n_campaigns++;
    return 0;
}

/* Appends the *.json files of dir, in name order, to names. */
static int list_dir(const char *dir, char ***names, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t first = *n;

    if (d == NULL) {
        fprintf(stderr, "faultline sweep: %s: cannot open: %s\n", dir,
                strerror(errno));
        return RUN_EXIT_USAGE;
    }
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat st;
        if (!is_json_name(e->d_name))
            continue;
        size_t dlen = strlen(dir);
        /* "campaigns/" names its files campaigns/x.json, not with "//". */
        while (dlen > 0 && dir[dlen - 1] == '/')
            dlen--;
        snprintf(path, sizeof(path), "%.*s/%s", (int)dlen, dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (*n == *cap) {
            size_t grown = *cap ? *cap * 2 : 16;
            char **more = realloc(*names, grown * sizeof(*more));
            if (more == NULL)
                break;
            *names = more;
            *cap = grown;
        }
        if (((*names)[*n] = strdup(path)) == NULL)
            break;
        (*n)++;
    }
    closedir(d);
    if (*n == first) {
        fprintf(stderr, "faultline sweep: %s: no *.json campaign files\n", dir);
        return RUN_EXIT_USAGE;
    }
    qsort(*names + first, *n - first, sizeof(**names), compare_names);
    return 0;
}

/* Loads every campaign named on the command line, printing each error. */
static int load_campaigns(struct run_sweep *s, char **args, size_t n_args)
{
    char **paths = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    for (size_t i = 0; i < n_args; i++) {
        struct stat st;
        if (stat(args[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (list_dir(args[i], &paths, &n, &cap) != 0)
                rc = RUN_EXIT_USAGE;
            continue;
        }
        if (n == cap) {
            size_t grown = cap ? cap * 2 : 16;
            char **more = realloc(paths, grown * sizeof(*more));
            if (more == NULL) {
                rc = RUN_EXIT_INFRA;
                break;
            }
            paths = more;
            cap = grown;
        }
        if ((paths[n] = strdup(args[i])) != NULL)
            n++;
    }
    s->campaigns = calloc(n > 0 ? n : 1, sizeof(*s->campaigns));
    if (s->campaigns == NULL)
        rc = RUN_EXIT_INFRA;
    for (size_t i = 0; s->campaigns != NULL && i < n; i++) {
        /* The same file twice (a directory and a file in it) runs once. */
        char *real = realpath(paths[i], NULL);
        bool again = false;
        for (size_t k = 0; real != NULL && k < i && !again; k++) {
            char *other = realpath(paths[k], NULL);
            again = other != NULL && strcmp(real, other) == 0;
            free(other);
        }
        free(real);
        if (!again && load_campaign(s, paths[i]) != 0)
            rc = RUN_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return rc;
}

/* ---- the plan ---------------------------------------------------------- */

/* Lays out the jobs: the shard's seeds in order, each over every
 * campaign, so a budget that runs out cuts every campaign at about the
 * same seed. */
static int plan_jobs(struct run_sweep *s)
{
    uint64_t seeds = (s->last_seed - s->first_seed) / s->shards + 1;
    size_t k = 0;

    if (s->shard > s->last_seed - s->first_seed)
        seeds = 0;
    else if (s->shard > (s->last_seed - s->first_seed) % s->shards)
        seeds--;
    if (seeds * s->n_campaigns > RUN_SWEEP_MAX_JOBS)
        return run_usage_error("sweep",
                               "%" PRIu64 " seeds times %zu campaigns is more "
                               "than %d runs; split the sweep",
                               seeds, s->n_campaigns, RUN_SWEEP_MAX_JOBS);
    s->n_jobs = (size_t)seeds * s->n_campaigns;
    s->jobs = calloc(s->n_jobs > 0 ? s->n_jobs : 1, sizeof(*s->jobs));
    if (s->jobs == NULL)
        return RUN_EXIT_INFRA;
    for (uint64_t i = 0; i < seeds; i++) {
        for (size_t c = 0; c < s->n_campaigns; c++) {
            s->jobs[k].campaign = c;
            s->jobs[k].seed = s->first_seed + s->shard + i * s->shards;
            k++;
        }
    }
    return 0;
}

static void print_plan(const struct run_sweep *s)
{
    printf("sweep: %zu campaign%s, seeds %" PRIu64 "..%" PRIu64, s->n_campaigns,
           s->n_campaigns == 1 ? "" : "s", s->first_seed, s->last_seed);
    if (s->shards > 1)
        printf(", shard %" PRIu64 "/%" PRIu64, s->shard, s->shards);
    printf(": %zu run%s, %u at a time", s->n_jobs, s->n_jobs == 1 ? "" : "s",
           s->parallel);
    if (s->budget_s > 0)
        printf(", none started after %s", s->budget_text);
    printf("\n");
    for (size_t c = 0; c < s->n_campaigns; c++) {
        const struct run_sweep_campaign *camp = &s->campaigns[c];
        printf("  %-28s %-8s expect %-7s %s\n", camp->name, camp->system,
               camp->expect_invalid ? "invalid" : "valid", camp->path);
    }
}

/* ---- the summary ------------------------------------------------------- */

/*
 * Prints one row per campaign. The detection columns are for planted-bug
 * campaigns and count only seeds with a verdict. "detected" is the seeds
 * that found the bug out of those. "to first" is the seeds run up to and
 * including the first that found it. "mean to detect" is the seeds run
 * divided by those that found the bug. That is the expected number of
 * seeds until a detection, if each seed finds the bug independently at
 * the observed rate.
 */
static void print_table(const struct run_sweep *s)
{
    printf("%-28s %-7s %5s %6s %8s %8s %7s %8s %10s %9s %15s\n", "campaign",
           "expect", "runs", "valid", "invalid", "unknown", "failed", "not run",
           "detected", "to first", "mean to detect");
    for (size_t c = 0; c < s->n_campaigns; c++) {
        const struct run_sweep_campaign *camp = &s->campaigns[c];
        struct run_sweep_tally t;
        char detected[32] = "-", first[32] = "-", mean[32] = "-";

        run_sweep_tally(s, c, &t);
        if (camp->expect_invalid && t.verdicts > 0) {
            snprintf(detected, sizeof(detected), "%zu/%zu", t.invalid,
                     t.verdicts);
            if (t.detected) {
                snprintf(first, sizeof(first), "%zu", t.seeds_to_first);
                snprintf(mean, sizeof(mean), "%.1f",
                         (double)t.verdicts / (double)t.invalid);
            } else {
                snprintf(first, sizeof(first), "none");
                snprintf(mean, sizeof(mean), "> %zu", t.verdicts);
            }
        }
        printf("%-28s %-7s %5zu %6zu %8zu %8zu %7zu %8zu %10s %9s %15s\n",
               camp->name, camp->expect_invalid ? "invalid" : "valid",
               t.verdicts + t.failed, t.valid, t.invalid, t.unknown, t.failed,
               t.interrupted + t.not_started, detected, first, mean);
    }
}

/* Lists what needs a look: unexpected verdicts with their repro command,
 * planted bugs no seed found, and runs that failed to run. */
static void print_findings(const struct run_sweep *s)
{
    bool header = false;

    for (size_t i = 0; i < s->n_jobs; i++) {
        const struct run_sweep_job *job = &s->jobs[i];
        struct fl_buf repro;
        if (!run_sweep_job_unexpected(s, job) &&
            job->outcome != RUN_SWEEP_FAILED)
            continue;
        if (!header)
            printf("\nneeds a look:\n");
        header = true;
        printf("  %s seed %" PRIu64 ": %s: %s\n",
               s->campaigns[job->campaign].name, job->seed,
               job->outcome == RUN_SWEEP_FAILED ? "failed to run"
                                                : "unexpected invalid",
               job->detail != NULL ? job->detail : "");
        fl_buf_init(&repro);
        run_sweep_repro(s, job, &repro);
        if (repro.len > 0 && job->outcome != RUN_SWEEP_FAILED)
            printf("    reproduce: %s\n", repro.data);
        fl_buf_free(&repro);
    }
    for (size_t c = 0; c < s->n_campaigns; c++) {
        struct run_sweep_tally t;
        run_sweep_tally(s, c, &t);
        if (!s->campaigns[c].expect_invalid ||
            !run_sweep_campaign_failed(s, c, &t))
            continue;
        if (!header)
            printf("\nneeds a look:\n");
        header = true;
        printf("  %s: the planted bug was not found in %zu seed%s\n",
               s->campaigns[c].name, t.verdicts, t.verdicts == 1 ? "" : "s");
    }
}

/* Returns the exit code: 130 after a signal, else 1 when a campaign
 * failed, else 4 when a run failed to run, else 0. */
static int exit_code(const struct run_sweep *s)
{
    bool failed_to_run = false;

    if (s->interrupted)
        return 130;
    for (size_t c = 0; c < s->n_campaigns; c++) {
        struct run_sweep_tally t;
        run_sweep_tally(s, c, &t);
        if (run_sweep_campaign_failed(s, c, &t))
            return RUN_EXIT_INVALID;
        failed_to_run = failed_to_run || t.failed > 0;
    }
    return failed_to_run ? RUN_EXIT_INFRA : RUN_EXIT_VALID;
}

/* ---- the command ------------------------------------------------------- */

void run_sweep_free(struct run_sweep *s)
{
    for (size_t i = 0; s->jobs != NULL && i < s->n_jobs; i++) {
        free(s->jobs[i].log_path);
        free(s->jobs[i].run_dir);
        free(s->jobs[i].detail);
    }
    free(s->jobs);
    free(s->campaigns);
}

/* Creates STORE/_sweeps/TIME-PID for the runs' output, and the folder of
 * the JUnit file. A campaign name cannot start with '_', so the folder
 * never meets a campaign's. */
static int make_dirs(struct run_sweep *s)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    int rc;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    strftime(s->started_utc, sizeof(s->started_utc), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(s->log_dir, sizeof(s->log_dir), "%s/_sweeps/%s-%ld", s->store,
             stamp, (long)getpid());
    rc = run_mkdirs(s->log_dir);
    if (rc != 0) {
        fprintf(stderr,
                "faultline sweep: cannot create %s: %s; check --store\n",
                s->log_dir, strerror(-rc));
        return RUN_EXIT_USAGE;
    }
    if (s->junit != NULL && strchr(s->junit, '/') != NULL) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", s->junit);
        *strrchr(dir, '/') = '\0';
        rc = dir[0] != '\0' ? run_mkdirs(dir) : 0;
        if (rc != 0) {
            fprintf(stderr,
                    "faultline sweep: cannot create %s for --junit: %s\n", dir,
                    strerror(-rc));
            return RUN_EXIT_USAGE;
        }
    }
    return 0;
}

/* Checks what must work for the report to be written and the runs to
 * start, so a mistyped path fails before the runs rather than after
 * them: --junit names a file whose folder exists or can be made, and
 * --bin-dir contains the servers the campaigns start. */
static int check_paths(const struct run_sweep *s)
{
    struct stat st;

    if (s->junit != NULL) {
        char dir[PATH_MAX];
        char *slash;
        if (stat(s->junit, &st) == 0 && S_ISDIR(st.st_mode))
            return run_usage_error("sweep",
                                   "--junit %s is a folder; expected the "
                                   "path of a file to write",
                                   s->junit);
        snprintf(dir, sizeof(dir), "%s", s->junit);
        slash = strrchr(dir, '/');
        if (slash == NULL)
            snprintf(dir, sizeof(dir), ".");
        else
            *slash = '\0';
        /* Missing folders are created later; the nearest existing part of
         * the path must be a folder. */
        for (;;) {
            if (dir[0] == '\0' || stat(dir, &st) == 0)
                break;
            slash = strrchr(dir, '/');
            if (slash == NULL)
                break;
            *slash = '\0';
        }
        if (dir[0] != '\0' && stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
            return run_usage_error("sweep", "--junit %s: %s is not a folder",
                                   s->junit, dir);
    }
    if (s->bin_dir != NULL) {
        bool kv = false, raft = false;
        for (size_t i = 0; i < s->n_campaigns; i++) {
            kv |= strcmp(s->campaigns[i].system, "kv") == 0;
            raft |= strcmp(s->campaigns[i].system, "raft") == 0;
        }
        const char *need[2] = {kv ? "fl-kvd" : NULL, raft ? "fl-raftd" : NULL};
        for (size_t i = 0; i < 2; i++) {
            char path[PATH_MAX];
            if (need[i] == NULL)
                continue;
            snprintf(path, sizeof(path), "%s/%s", s->bin_dir, need[i]);
            if (access(path, X_OK) != 0)
                return run_usage_error("sweep",
                                       "--bin-dir %s has no executable %s, "
                                       "which the campaigns start",
                                       s->bin_dir, need[i]);
        }
    }
    return 0;
}

static int sweep(struct run_sweep *s)
{
    char err[PATH_MAX + 256];
    int rc = make_dirs(s);
    int code;

    if (rc != 0)
        return rc;
    print_plan(s);
    fflush(stdout);
    rc = run_sweep_execute(s);
    code = exit_code(s);
    printf("\n");
    print_table(s);
    print_findings(s);
    printf("\nrun logs: %s\n", s->log_dir);
    if (s->budget_spent)
        printf("the budget of %s was spent before every run started\n",
               s->budget_text);
    if (s->interrupted)
        printf("interrupted: the table covers the runs that ended\n");
    if (s->junit != NULL) {
        if (run_sweep_write_junit(s, err, sizeof(err)) != 0) {
            fprintf(stderr, "faultline sweep: %s\n", err);
            rc = rc != 0 ? rc : -EIO;
        } else {
            printf("JUnit: %s\n", s->junit);
        }
    }
    /* A sweep that could not watch its runs or write its report exits 4,
     * unless a verdict or a signal set the exit code already. */
    if (rc != 0 && code == RUN_EXIT_VALID)
        code = RUN_EXIT_INFRA;
    return code;
}

int run_cmd_sweep(int argc, char **argv)
{
    struct run_sweep s = {.shards = 1, .parallel = 1, .store = NULL};
    struct sweep_args a = {.shards = 0};
    bool help_asked = false;
    int rc;

    if (argc < 2) {
        fputs(help, stderr);
        return RUN_EXIT_USAGE;
    }
    rc = parse_options(argc, argv, &s, &a, &help_asked);
    if (rc != 0)
        return rc;
    if (help_asked) {
        fputs(help, stdout);
        return 0;
    }
    if (s.store == NULL)
        s.store = "store";
    s.self = "/proc/self/exe";
    rc = load_campaigns(&s, argv + optind, (size_t)(argc - optind));
    if (rc == 0 && s.n_campaigns == 0)
        rc = run_usage_error("sweep", "no campaign to run");
    if (rc == 0 && a.emit_k8s) {
        struct run_sweep_k8s k = {
            .image = a.image != NULL ? a.image : "faultline:latest",
            .shards = a.shards != 0 ? a.shards : 1,
            .campaign_args = (const char *const *)(argv + optind),
            .n_campaign_args = (size_t)(argc - optind),
            .seeds = a.seeds,
            .jobs = a.jobs,
            .budget = a.budget,
            .duration = a.duration,
        };
        rc = run_sweep_emit_k8s(&k);
    } else if (rc == 0) {
        rc = plan_jobs(&s);
        if (rc == 0)
            rc = check_paths(&s);
        if (rc == 0 && a.dry_run)
            print_plan(&s);
        else if (rc == 0)
            rc = sweep(&s);
    }
    run_sweep_free(&s);
    return rc;
}
