/*
 * `faultline sweep`: every campaign over a range of seeds, each run a child
 * process (`faultline run` or `faultline sim raft`) in a process group of
 * its own. Shared between cmd_sweep.c (options, plan, summary and exit
 * code), sweep_exec.c (children and signals), sweep_read.c (what a
 * finished run found), sweep_junit.c and sweep_k8s.c.
 *
 * Ownership: a struct run_sweep owns its campaigns and jobs arrays and the
 * strings each job points to; run_sweep_free releases them.
 */
#ifndef RUN_SWEEP_H
#define RUN_SWEEP_H

#include "campaign.h"
#include "sim_campaign.h"

#include "buf.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RUN_SWEEP_MAX_SEEDS 100000
#define RUN_SWEEP_MAX_JOBS  1000000 /* campaigns times seeds */

struct run_sweep_campaign {
    char path[PATH_MAX]; /* as given, or DIR/NAME.json */
    char name[64];
    const char *system; /* "raft", "kv" or "raft-sim" */
    bool sim;           /* "system": "raft-sim": run by the simulator */
    bool expect_invalid;
    unsigned detect_within;               /* 0: unset */
    struct run_sim_campaign sim_campaign; /* when sim */
};

enum run_sweep_outcome {
    RUN_SWEEP_PENDING, /* not started yet */
    RUN_SWEEP_RUNNING,
    RUN_SWEEP_VALID,
    RUN_SWEEP_INVALID,
    RUN_SWEEP_UNKNOWN,
    RUN_SWEEP_FAILED,      /* exit 2 or 4, or killed by another's signal */
    RUN_SWEEP_INTERRUPTED, /* stopped early by a signal, with no anomaly */
    RUN_SWEEP_NOT_STARTED, /* the budget ran out or the sweep was stopped */
};

struct run_sweep_job {
    size_t campaign; /* index into campaigns */
    uint64_t seed;
    enum run_sweep_outcome outcome;
    pid_t pid;       /* while running; also its process group */
    int exit_status; /* from waitpid */
    int64_t start_ns, stop_ns;
    char *log_path; /* the child's stdout and stderr; owned */
    char *run_dir;  /* real runs: the run's directory, or NULL; owned */
    char *detail;   /* anomalies, or why it failed or stopped; owned */
};

struct run_sweep {
    struct run_sweep_campaign *campaigns;
    size_t n_campaigns;
    struct run_sweep_job *jobs; /* seed by seed, each over every campaign */
    size_t n_jobs;

    uint64_t first_seed, last_seed; /* the whole range, before sharding */
    uint64_t shard, shards;         /* 0-based shard index and count */
    unsigned parallel;              /* --jobs */
    uint64_t budget_s;              /* 0: no budget */
    const char *budget_text;        /* as given, for messages */
    double duration_s;              /* real runs' --duration; 0: unset */
    const char *store;
    const char *bin_dir; /* NULL: found next to faultline */
    const char *junit;   /* NULL: no JUnit file */

    const char *self;       /* the faultline binary to start */
    char log_dir[PATH_MAX]; /* STORE/_sweeps/TIME-PID */
    char started_utc[32];
    int64_t start_ns;
    bool interrupted;  /* SIGINT, SIGTERM or SIGHUP reached the sweep */
    bool budget_spent; /* some job was not started for the budget */
};

/* Counts of one campaign's outcomes, for the table and the JUnit file. */
struct run_sweep_tally {
    size_t valid, invalid, unknown, failed, interrupted, not_started;
    size_t verdicts; /* valid + invalid + unknown */
    bool detected;   /* some seed found the planted bug */
    uint64_t first_detected_seed;
    size_t seeds_to_first; /* verdicts up to and including that seed */
    double seconds;        /* wall time of the campaign's runs, summed */
};

/* ---- children and signals (sweep_exec.c) ------------------------------- */

/*
 * Runs the pending jobs, s->parallel at a time, in order, until all ran,
 * the budget is spent or a signal arrives; then waits for every child.
 * SIGINT, SIGTERM and SIGHUP are forwarded to every running child's
 * process group. Fills each job's outcome. Returns 0, or a negative error
 * when the sweep cannot watch its children (the jobs it started were
 * stopped and waited for).
 */
int run_sweep_execute(struct run_sweep *s);

/* ---- what a finished run found (sweep_read.c) -------------------------- */

/*
 * Sets job->outcome, run_dir and detail from the child's exit status, its
 * log and, for real runs, RUN_DIR/results.json. forwarded is true when the
 * sweep sent the child a signal.
 */
void run_sweep_read_job(const struct run_sweep *s, struct run_sweep_job *job,
                        bool forwarded);

/* Sums up the jobs of campaign c. */
void run_sweep_tally(const struct run_sweep *s, size_t c,
                     struct run_sweep_tally *t);

/* True when campaign c's outcome fails the sweep: an anomaly where valid
 * was expected, or a planted bug no seed with a verdict found. */
bool run_sweep_campaign_failed(const struct run_sweep *s, size_t c,
                               const struct run_sweep_tally *t);

/* True when the job's verdict differs from what its campaign expects;
 * a valid seed of a planted-bug campaign is not unexpected by itself. */
bool run_sweep_job_unexpected(const struct run_sweep *s,
                              const struct run_sweep_job *job);

/* Appends the command that reproduces the job: `faultline repro RUN_DIR`,
 * or the simulator's command line. */
void run_sweep_repro(const struct run_sweep *s, const struct run_sweep_job *job,
                     struct fl_buf *b);

/* Reads at most max_bytes of path into out. Returns 0, -errno, or -EFBIG
 * when the file is larger. */
int run_sweep_read_file(const char *path, size_t max_bytes, struct fl_buf *out);

/* ---- reports (sweep_junit.c, sweep_k8s.c) ------------------------------ */

/* Writes the JUnit XML file s->junit through a temporary file and a
 * rename. Returns 0 or a negative error, with the reason in err. */
int run_sweep_write_junit(const struct run_sweep *s, char *err,
                          size_t err_size);

struct run_sweep_k8s {
    const char *image;
    uint64_t shards;
    const char *const *campaign_args; /* the campaigns as given */
    size_t n_campaign_args;
    const char *seeds;    /* "A..B" as given */
    const char *jobs;     /* --jobs as given, or NULL */
    const char *budget;   /* --budget as given, or NULL */
    const char *duration; /* --duration as given, or NULL */
};

/* Prints a Kubernetes Indexed Job manifest that runs k->shards shards to
 * stdout. Returns 0, RUN_EXIT_USAGE for text the manifest cannot carry,
 * or RUN_EXIT_INFRA when stdout cannot be written. */
int run_sweep_emit_k8s(const struct run_sweep_k8s *k);

/* Frees what s owns. */
void run_sweep_free(struct run_sweep *s);

#endif
