/*
 * Campaign files: what `faultline run` starts, drives, breaks and checks.
 *
 * A campaign is one JSON object; README.md lists every field. Parsing is
 * strict. An unknown field, a value of the wrong type or out of range, a
 * fault the system cannot take and a missing required field are errors,
 * each naming the file, the field's path and what was expected. Defaults are
 * filled in, so the resolved campaign written to a run's store (camp_write)
 * records everything the run did.
 */
#ifndef RUN_CAMPAIGN_H
#define RUN_CAMPAIGN_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAMP_MAX_NODES  9
#define CAMP_MAX_FAULTS 16
#define CAMP_MAX_BUGS   8

enum camp_system {
    CAMP_SYSTEM_RAFT, /* fl-raftd cluster */
    CAMP_SYSTEM_KV,   /* one fl-kvd */
};

enum camp_fault_kind {
    CAMP_FAULT_KILL,            /* SIGKILL, restart after restart_delay */
    CAMP_FAULT_PAUSE,           /* SIGSTOP, SIGCONT at the end */
    CAMP_FAULT_HALVES,          /* two halves, the bigger one a majority */
    CAMP_FAULT_MAJORITY_RING,   /* each node reaches a majority, all differ */
    CAMP_FAULT_ISOLATE_PRIMARY, /* the leader alone */
    CAMP_FAULT_BRIDGE,          /* two halves that share one node */
    CAMP_FAULT_ONE_WAY,         /* targets hear nothing; the rest hear them */
    CAMP_FAULT_LOSS,            /* packets into targets dropped at random */
    CAMP_FAULT_DELAY,           /* netem delay; needs sch_netem */
    CAMP_FAULT_LOSE_UNSYNCED,   /* SIGKILL and roll back unsynced changes */
    CAMP_FAULT_FSYNC_EIO,       /* the next fsync or fdatasync fails, EIO */
    CAMP_FAULT_WRITE_EIO,       /* the next write to a data file fails, EIO */
    CAMP_FAULT_WRITE_ENOSPC,    /* the next write fails with ENOSPC */
    CAMP_FAULT_TORN_WRITE,      /* a write persists in part, then power loss */
    CAMP_FAULT_TORN_SEQ,        /* power loss keeping some unsynced writes */
    CAMP_FAULT_CRASH_AT,        /* crash at an fsync, rename or unlink */
    CAMP_FAULT_CORRUPT,         /* a byte of a durable file flipped */
    CAMP_FAULT__COUNT,
};

enum camp_targets {
    CAMP_TARGET_ONE,
    CAMP_TARGET_MINORITY,
    CAMP_TARGET_MAJORITY,
    CAMP_TARGET_ALL,
    CAMP_TARGET_PRIMARY,
    CAMP_TARGET_LIST,
};

enum camp_network {
    CAMP_NETWORK_AUTO,       /* namespaces when possible, else loopback */
    CAMP_NETWORK_NAMESPACES, /* namespaces or fail */
    CAMP_NETWORK_LOOPBACK,   /* loopback ports, process faults only */
};

struct camp_fault {
    enum camp_fault_kind kind;
    enum camp_targets targets;
    unsigned list[CAMP_MAX_NODES]; /* node ids for CAMP_TARGET_LIST */
    size_t list_len;
    double weight;      /* relative chance of being picked */
    double probability; /* loss: chance a packet is dropped */
    unsigned delay_ms;  /* delay */
    bool optional;      /* delay: skip, with a note, when netem is absent */
    /* Disk faults aimed at calls (the EIO and ENOSPC faults, torn-write,
     * crash-at): */
    char pattern[64];   /* fnmatch pattern under the data directory; "" all
                           (also corrupt's files) */
    unsigned nth_max;   /* the Nth matching call, N drawn from 1..nth_max */
    unsigned tear;      /* torn-write: CAMP_TEAR_* bits allowed */
    unsigned ops;       /* crash-at: CAMP_OP_* bits */
    unsigned when;      /* crash-at: CAMP_WHEN_* bits */
    bool power_loss;    /* crash-at: roll back unsynced changes */
    double untouched_s; /* corrupt: only files not modified for this long */
};

#define CAMP_TEAR_PREFIX  (1u << 0) /* keep the first bytes of the write */
#define CAMP_TEAR_SECTORS (1u << 1) /* keep some of its 512-byte sectors */
#define CAMP_OP_FSYNC     (1u << 0)
#define CAMP_OP_RENAME    (1u << 1)
#define CAMP_OP_UNLINK    (1u << 2)
#define CAMP_WHEN_BEFORE  (1u << 0)
#define CAMP_WHEN_AFTER   (1u << 1)

struct camp_campaign {
    char name[64];
    char description[512];
    enum camp_system system;
    unsigned nodes;
    double duration_s;
    bool has_seed;
    uint64_t seed;
    bool expect_invalid;    /* "expect": "invalid" (a planted bug) */
    unsigned detect_within; /* planted bugs: seeds CI tries; 0: unset */
    enum camp_network network;

    /* system options */
    unsigned election_timeout_ms;
    unsigned heartbeat_ms;
    uint64_t snapshot_every;
    char bugs[CAMP_MAX_BUGS][32];
    size_t n_bugs;
    char sync[24];          /* fl-kvd --sync; "" for its default */
    uint64_t segment_bytes; /* fl-kvd --segment-bytes; 0 for its default */

    /* workload: the register workload is the only kind so far */
    unsigned keys;
    unsigned concurrency;
    double rate;
    double mix_read, mix_write, mix_cas;
    unsigned value_max;   /* 0: unique values */
    unsigned value_bytes; /* 0: plain integers; else padded to this length */
    unsigned timeout_ms;
    bool reads_anywhere; /* "reads": "any" (default) or "leader" */
    double final_read_s; /* budget for the final reads */

    /* nemesis */
    struct camp_fault faults[CAMP_MAX_FAULTS];
    size_t n_faults;
    double interval_s;       /* mean gap between faults */
    double fault_duration_s; /* mean length of a fault */
    double restart_delay_s;  /* kill, lose-unsynced: mean time down */
    double start_s;          /* no fault before this */
    double quiet_s;          /* after the final heal, before final reads */

    /* checkers */
    double check_time_limit_s;
    unsigned check_memory_mib;
};

/*
 * Reads and validates path. Returns 0, or RUN_EXIT_USAGE with
 * "PATH: FIELD: what was expected" (or "PATH:LINE:COL: ..." for JSON
 * syntax errors) in err.
 */
int camp_load(const char *path, struct camp_campaign *c, char *err,
              size_t err_size);

/* Same, from text in memory; name labels messages. */
int camp_parse(const char *name, const char *text, size_t len,
               struct camp_campaign *c, char *err, size_t err_size);

/* Appends the resolved campaign as JSON (every field, defaults included). */
void camp_write(const struct camp_campaign *c, struct fl_buf *b);

const char *camp_fault_name(enum camp_fault_kind kind);
const char *camp_targets_name(enum camp_targets t);
const char *camp_system_name(enum camp_system s);

/* False for the partitions that choose their own nodes (halves,
 * majority-ring, bridge, isolate-primary). */
bool camp_fault_has_targets(enum camp_fault_kind kind);

/* True for partitions, one-way, loss and delay. */
bool camp_fault_is_network(enum camp_fault_kind kind);

/* True for lose-unsynced, the EIO and ENOSPC faults, torn-write, torn-seq,
 * crash-at and corrupt: a campaign with one of them runs every node under
 * the disk-fault supervisor (nemesis/disk_fault.h). */
bool camp_fault_is_disk(enum camp_fault_kind kind);

/* True for the disk faults armed on calls, which end in an error or a
 * crash only when the node makes a matching call: the EIO and ENOSPC
 * faults, torn-write and crash-at. */
bool camp_fault_is_armed(enum camp_fault_kind kind);

/* True for the faults that stop the node until the fault ends: kill,
 * lose-unsynced, torn-seq, corrupt, and the armed ones once they fire. */
bool camp_fault_is_crash(enum camp_fault_kind kind);

/* True when the campaign lists a disk fault. */
bool camp_has_disk_faults(const struct camp_campaign *c);

#endif
