/*
 * Pieces of `faultline run` shared between its files: the fault plan, the
 * checks after a run, and the registry of live runs that `faultline clean`
 * reads.
 */
#ifndef RUN_RUN_H
#define RUN_RUN_H

#include "campaign.h"

#include "buf.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- the fault plan (schedule.c) --------------------------------------- */

/* Traffic into node `to` from the nodes in `from` is dropped. */
struct run_block {
    unsigned to;
    unsigned from[CAMP_MAX_NODES];
    size_t n_from;
};

struct run_fault {
    uint64_t id; /* from 1, in start order */
    enum camp_fault_kind kind;
    size_t spec;      /* index into the campaign's faults */
    int64_t start_ns; /* since the run began */
    int64_t stop_ns;
    /* Filled when the fault starts, or read from a recorded run: */
    bool resolved;
    unsigned targets[CAMP_MAX_NODES];
    size_t n_targets;
    struct run_block blocks[CAMP_MAX_NODES];
    size_t n_blocks;
    bool one_way;
    double probability;
    unsigned delay_ms;
    /* Disk faults, drawn with the plan: */
    unsigned nth;         /* armed faults: the Nth matching call */
    unsigned tear;        /* torn-write: CAMP_TEAR_PREFIX or _SECTORS */
    uint64_t keep_bytes;  /* torn-write, prefix */
    uint64_t sector_mask; /* torn-write, sectors */
    unsigned when;        /* crash-at: CAMP_WHEN_BEFORE or _AFTER */
    uint64_t keep_seed;   /* torn-seq: which unsynced writes survive */
    uint64_t pick;        /* corrupt: which file and byte */
    /* torn-seq, filled when it starts: */
    uint64_t unsynced; /* data changes not yet durable */
    uint64_t kept;     /* how many of them were kept */
    /* armed disk faults, filled when they stop: on how many targets the
     * fault struck */
    unsigned fired;
    /* corrupt, filled when it starts: */
    char damaged_file[256]; /* "" when nothing was damaged */
    uint64_t damaged_offset;
    uint8_t damage_mask;
};

struct run_plan {
    struct run_fault *faults;
    size_t n;
    int64_t heal_ns; /* the final heal: every fault ends by then */
};

/*
 * Draws the fault plan of campaign c from seed. Kinds are drawn by weight,
 * and start times and lengths vary around the campaign's interval and
 * duration, all inside [start_s, duration_s - quiet_s). Targets are drawn
 * when each fault starts, because the primary is only known then. Faults
 * the run cannot inject (skip[kind] true) are left out. Returns 0 or
 * -ENOMEM.
 */
int run_plan_make(struct run_plan *p, const struct camp_campaign *c,
                  uint64_t seed, const bool skip[CAMP_FAULT__COUNT]);

/*
 * Reads a recorded plan from a run's nemesis.jsonl: every fault with its
 * times, targets and blocks, so a repro injects the same faults. Returns
 * 0, or RUN_EXIT_USAGE with "file:line: reason" in err.
 */
int run_plan_load(struct run_plan *p, const char *path,
                  const struct camp_campaign *c, char *err, size_t err_size);

void run_plan_free(struct run_plan *p);

/*
 * Chooses the targets and blocks of f when it starts: primary is the
 * current leader (0 when unknown: a random node is taken instead). Uses
 * the nemesis stream of the seed, rng_state.
 */
void run_fault_resolve(struct run_fault *f, const struct camp_campaign *c,
                       unsigned primary, uint64_t *rng_state);

/* Appends the nemesis.jsonl line of a start or stop of f at time_ns. */
void run_fault_json(const struct run_fault *f, bool start, int64_t time_ns,
                    struct fl_buf *b);

/* Appends "halves n1,n2|n3,n4,n5" style text, for the progress line. */
void run_fault_describe(const struct run_fault *f, struct fl_buf *b);

/* ---- the checks after a run (analyze.c) -------------------------------- */

/* A byte the corrupt fault flipped. */
struct run_damage {
    char file[256];      /* relative to the data directory */
    char path[PATH_MAX]; /* absolute */
    uint64_t offset;
    uint8_t mask; /* XORed into the byte */
    uint8_t old_byte;
    bool applied;
};

/*
 * The corrupt fault (runner/corrupt.c). Picks, by pick, a regular file
 * under data_dir that matches pattern (fnmatch against its relative path,
 * "" for any) and was not modified for untouched_s seconds, and one byte
 * of it, and flips some of that byte's bits, fsynced. Returns 0 with *out
 * filled, 1 when no file qualifies, or a negative error; err explains
 * both.
 */
int run_corrupt(const char *data_dir, const char *pattern, double untouched_s,
                uint64_t pick, struct run_damage *out, char *err, size_t size);

/* Damages the given byte, as a repro does with a recorded corrupt fault.
 * Returns 0, 1 when the file has no such byte, or a negative error. */
int run_corrupt_exact(const char *data_dir, const char *file, uint64_t offset,
                      uint8_t mask, struct run_damage *out, char *err,
                      size_t size);

/* Puts the byte back, unless the store rewrote it since. Returns 0 or a
 * negative error with err set. */
int run_corrupt_undo(struct run_damage *d, char *err, size_t size);

/* One fault's time span in nemesis.jsonl. */
struct run_span {
    int64_t start, stop;
    char fault[24];
    bool idle;   /* an armed disk fault that never struck */
    uint64_t ok; /* operations that succeeded in it */
};

struct run_durability_input {
    const char *history_path;
    int64_t workload_end_ns; /* reads invoked later are final reads */
    const struct run_span *spans;
    size_t n_spans;
};

struct run_durability_result {
    uint64_t reads;        /* acknowledged reads checked */
    uint64_t acknowledged; /* acknowledged writes and cas */
    uint64_t lost;         /* missed by a final read or across a crash */
    uint64_t unseen;       /* missed by some other read */
    bool unknown;          /* not checked: an error or repeated values */
};

/*
 * The durability check (runner/durability.c): every write acknowledged
 * before a read began must be visible to that read. Appends the check's
 * JSON object to check and one anomaly per missed write (the first 20) to
 * anomalies, counting them in *n_anomalies. Returns 0 or -ENOMEM.
 */
int run_check_durability(const struct run_durability_input *in,
                         struct fl_buf *check, struct fl_buf *anomalies,
                         size_t *n_anomalies,
                         struct run_durability_result *res);

struct run_facts {
    const char *dir; /* the run's store directory */
    const struct camp_campaign *c;
    uint64_t seed;
    char run_id[17];
    bool namespaces;
    bool interrupted;
    char started_utc[32];
    double elapsed_s;
    int64_t workload_ns; /* when the workload stopped, since the start */
    int final_reads;     /* keys read after the heal, or negative */
    const char *broken;  /* why the run stopped early, or "" */
    const char *const *notes;
    size_t n_notes;
    /* Exits the nemesis did not cause: "node 2 exited with status 1". */
    const char *const *crashes;
    size_t n_crashes;
};

struct run_outcome {
    int exit_code; /* RUN_EXIT_* */
    const char *verdict;
    char summary[1024]; /* a few lines for the terminal */
};

/*
 * Checks the run in facts->dir (history.jsonl, nemesis.jsonl and the node
 * logs in nodes/)
 * and writes results.json there. Returns 0 with *out filled, or a negative
 * error when results.json cannot be written.
 */
int run_analyze(const struct run_facts *facts, struct run_outcome *out);

/* ---- the registry of live runs (registry.c) ---------------------------- */

/*
 * Records run_id, this process and the run's temporary directory, so
 * `faultline clean` can tell a live run from one whose runner died.
 */
int run_registry_add(const char *run_id, const char *tmp_dir,
                     const char *store_dir, bool namespaces, char *err,
                     size_t err_size);
void run_registry_remove(const char *run_id);

/* Creates a directory and its missing parents (mode 0755). Returns 0 or
 * -errno. */
int run_mkdirs(const char *path);

/* Removes a directory tree; used for the run's temporary directory. */
int run_remove_tree(const char *path);

int run_cmd_clean(int argc, char **argv);
int run_cmd_run(int argc, char **argv);
int run_cmd_repro(int argc, char **argv);

#endif
