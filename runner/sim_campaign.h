/*
 * Simulator campaigns: campaign files whose "system" is "raft-sim". They
 * name options of `faultline sim raft` instead of a real cluster, and
 * `faultline sweep` runs them as one `faultline sim raft --seed N ...`
 * child per seed. `faultline run` rejects them (runner/campaign.c).
 *
 * Parsing is as strict as for real campaigns: an unknown field, a value of
 * the wrong type or out of range, a missing required field and options
 * the simulator would reject are errors naming the file and the field.
 * README.md ("Sweeps") lists the fields.
 */
#ifndef RUN_SIM_CAMPAIGN_H
#define RUN_SIM_CAMPAIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RUN_SIM_MAX_BUGS 8
#define RUN_SIM_MAX_ARGS 48

/* An option left unset is not passed, so the simulator's default holds. */
struct run_sim_campaign {
    char name[64];
    char description[512];
    bool expect_invalid;    /* "expect": "invalid" (a planted bug) */
    unsigned detect_within; /* planted bugs: seeds that must find it; 0 unset */

    unsigned nodes;          /* --nodes; 0: unset */
    unsigned time_s;         /* --time, virtual seconds; 0: unset */
    char faults[96];         /* --faults, comma-separated; "": unset */
    unsigned fault_every_ms; /* --fault-every; 0: unset */
    unsigned max_down_ms;    /* --max-down; 0: unset */
    double drop;             /* --drop; negative: unset */
    bool has_clients;
    unsigned clients; /* --clients */
    bool has_snapshot_every;
    unsigned snapshot_every; /* --snapshot-every */
    char bugs[RUN_SIM_MAX_BUGS][32];
    size_t n_bugs; /* one --inject-bug each */
};

/* The arguments of one simulator run, after the program name. */
struct run_sim_args {
    char *argv[RUN_SIM_MAX_ARGS + 1]; /* NULL-terminated */
    size_t argc;
    char text[2048]; /* the strings argv points into */
};

/*
 * Reads path. When it holds a JSON object whose "system" is "raft-sim",
 * sets *is_sim and validates the rest: returns 0, or RUN_EXIT_USAGE with
 * "PATH: FIELD: what was expected" in err. Otherwise clears *is_sim and
 * returns 0 without judging the file further, because it is a real
 * campaign or camp_load reports what is wrong with it.
 */
int run_sim_campaign_load(const char *path, struct run_sim_campaign *c,
                          bool *is_sim, char *err, size_t err_size);

/* Fills out with "sim", "raft", "--seed", seed and the campaign's options. */
void run_sim_campaign_args(const struct run_sim_campaign *c, uint64_t seed,
                           struct run_sim_args *out);

#endif
