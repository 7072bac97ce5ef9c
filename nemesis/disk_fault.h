/*
 * Disk faults for any program, through seccomp user notification.
 *
 * nem_disk runs a program (fl-kvd, sqlite3, etcd...) under a seccomp filter
 * whose notifications go to a supervisor thread in the calling process. The
 * supervisor keeps an undo log of everything under one data directory that
 * is not yet durable, and injects faults:
 *
 * - File data. The supervisor itself performs writes (write, pwrite64,
 *   writev, pwritev, pwritev2), ftruncate, fallocate and opens with
 *   O_TRUNC of regular files under the data directory. It works on a
 *   pidfd_getfd(2) copy of the program's descriptor, after saving the
 *   bytes and size each call changes. A successful fsync or fdatasync of the
 * file (also performed by the supervisor) makes its log durable and drops it.
 *   Writes to descriptors opened with O_SYNC or O_DSYNC, and pwritev2 with
 *   RWF_SYNC or RWF_DSYNC, are durable at once.
 * - Directory entries. Files created by open with O_CREAT, renames and
 *   unlinks are recorded against their parent directory until that
 *   directory is fsynced. An unlinked file is hard-linked into a stash
 *   directory first, so its content can come back. The model is the
 *   minimal one POSIX promises: fsync of a file does not make its name
 *   durable, which ext4 in practice often does.
 * - Everything else (pipes, sockets, files elsewhere) continues untouched
 *   (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
 *
 * A rollback restores the saved bytes and sizes newest first through
 * descriptors the supervisor keeps open on each changed file, so it follows
 * files across renames, and then undoes the directory changes newest first.
 *
 * The supervisor is a thread, because notifications must be answered within
 * microseconds while the runner's main loop wakes every 10 ms. All calls on
 * one struct nem_disk must come from one thread, the same thread that
 * calls nem_disk_start: the program gets PR_SET_PDEATHSIG(SIGKILL), which
 * fires when that thread exits. If the supervisor thread fails (it cannot
 * read a descriptor, save old bytes, stash a file), it kills the program,
 * so the program never runs on with writes that are not tracked. If the
 * whole process dies, the program is killed by PDEATHSIG, and until then
 * every intercepted call fails with ENOSYS because the listener is gone.
 *
 * Requirements: Linux 5.19 or later (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV:
 * without it a signal that arrives while a write is held restarts the
 * system call, and the supervisor would perform that write twice). No root
 * is needed: the child sets PR_SET_NO_NEW_PRIVS.
 *
 * Not covered: io_uring, mmap writes, copy_file_range, sendfile, splice,
 * link, symlink, mkdir, truncate(2) by path, openat2 and O_TMPFILE; sync(2)
 * and syncfs(2) are not intercepted either, so after them the log still
 * holds data that is durable. Descendants the program forks run under the
 * same filter and are tracked, but a kill waits for the program's own
 * process only (the whole process group is signalled).
 *
 * Errors: functions return 0 or a negative code (-errno or FL_E*) and leave
 * a message in nem_disk_error().
 */
#ifndef NEM_DISK_FAULT_H
#define NEM_DISK_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct nem_disk;

/* Intercepted system calls, for statistics. */
enum nem_disk_call {
    NEM_DISK_CALL_WRITE,      /* write, pwrite64, writev, pwritev, pwritev2 */
    NEM_DISK_CALL_FSYNC,      /* fsync, fdatasync */
    NEM_DISK_CALL_SYNC_RANGE, /* sync_file_range: continued, not a sync */
    NEM_DISK_CALL_RESIZE,     /* ftruncate, fallocate */
    NEM_DISK_CALL_OPEN,       /* open, creat, openat with O_CREAT or O_TRUNC */
    NEM_DISK_CALL_RENAME,     /* rename, renameat, renameat2 */
    NEM_DISK_CALL_UNLINK,     /* unlink, unlinkat */
    NEM_DISK_CALL_COUNT
};

struct nem_disk_stats {
    uint64_t calls[NEM_DISK_CALL_COUNT]; /* notifications received */
    uint64_t continued;     /* let through unchanged: nothing to track */
    uint64_t performed;     /* performed by the supervisor (tracked) */
    uint64_t tracked_bytes; /* bytes written to tracked files */
    uint64_t faults_fired;  /* armed faults that took effect */
    uint64_t rollbacks;     /* rollbacks run */
    uint64_t undo_errors;   /* undo steps that failed (see the log) */
};

enum nem_disk_fault_kind {
    NEM_DISK_WRITE_EIO,    /* matching writes fail with EIO, write nothing */
    NEM_DISK_WRITE_ENOSPC, /* matching writes fail with ENOSPC */
    NEM_DISK_FSYNC_EIO,    /* matching fsync/fdatasync fail with EIO */
    NEM_DISK_TORN_WRITE,   /* a matching write persists in part, then the
                              program is killed and the rest rolled back */
    NEM_DISK_CRASH_BEFORE, /* kill before a matching fsync, rename, unlink */
    NEM_DISK_CRASH_AFTER   /* kill after it succeeded */
};

/* Operations a crash fault can be aimed at (crash_ops). */
#define NEM_DISK_OP_FSYNC  (1u << 0)
#define NEM_DISK_OP_RENAME (1u << 1)
#define NEM_DISK_OP_UNLINK (1u << 2)

/* Sector size for torn writes' sector_mask. */
#define NEM_DISK_SECTOR 512

struct nem_disk_fault {
    enum nem_disk_fault_kind kind;
    /* fnmatch(3) pattern without flags ('*' also matches '/') against the
     * path relative to the data directory, e.g. "wal-*.log"; NULL or ""
     * matches every tracked path. Copied. For a rename, either the old
     * or the new path may match. */
    const char *pattern;
    /* 0: every matching call (torn writes and crashes: the first one);
     * N >= 1: only the Nth matching call counted from nem_disk_arm. */
    unsigned nth;
    /* NEM_DISK_TORN_WRITE: with sector_mask 0, the first keep_bytes bytes
     * of the write persist. Otherwise bit i of sector_mask keeps the i-th
     * 512-byte sector the write touches, counted from the sector of its
     * first byte and clipped to the write. Sectors past the 64th are
     * dropped. */
    size_t keep_bytes;
    uint64_t sector_mask;
    /* NEM_DISK_CRASH_*: which operations count (NEM_DISK_OP_* bits), and
     * whether the crash is a power loss (unsynced changes rolled back)
     * rather than a process crash (the page cache survives). */
    unsigned crash_ops;
    bool lose_unsynced;
};

/*
 * Creates a supervisor for data_dir, which must exist. Removed files are
 * stashed in stash_dir, which must be on the same file system and is
 * created if missing; NULL means "DATA_DIR.fl-stash" beside data_dir.
 * Returns 0 and *out owned by the caller, or a negative error with the
 * reason in err.
 */
int nem_disk_create(const char *data_dir, const char *stash_dir,
                    struct nem_disk **out, char *err, size_t err_size);

/*
 * Kills a running program, stops the supervisor, closes its descriptors
 * and removes the stash directory. The undo log is dropped, so what is on
 * disk stays as it is. NULL is allowed.
 */
void nem_disk_destroy(struct nem_disk *d);

/*
 * Starts argv[0] (a path; PATH is not searched) with argv under the filter,
 * with stdout and stderr appended to log_path (NULL: inherited), stdin
 * from /dev/null, in a process group of its own. Fails when a program is
 * still running. The undo log carries over from an earlier program, as
 * a machine's page cache outlives a process. Returns 0, or a negative
 * error, also when exec failed.
 */
int nem_disk_start(struct nem_disk *d, char *const argv[],
                   const char *log_path);

/*
 * Makes later programs enter the network namespace netns_fd (an open
 * /proc/PID/ns/net or nsfs descriptor) before exec; -1, the default,
 * leaves them in the caller's. The descriptor is borrowed and must stay
 * open while nem_disk_start runs.
 */
void nem_disk_set_netns(struct nem_disk *d, int netns_fd);

/* The running program's pid, or 0. */
pid_t nem_disk_pid(const struct nem_disk *d);

/*
 * Waits up to timeout_ms (-1: forever) for the program to exit and reaps
 * it. Returns 1 with its wait status in *status (may be NULL), 0 on
 * timeout, or a negative error. The supervisor thread has stopped when it
 * returns 1.
 */
int nem_disk_wait(struct nem_disk *d, int timeout_ms, int *status);

/*
 * Process crash: SIGKILLs the program's process group and reaps the
 * program. The undo log stays. Returns 0, also when nothing ran.
 */
int nem_disk_kill(struct nem_disk *d);

/*
 * Power loss: kills and reaps the program as nem_disk_kill, then rolls
 * back every change not yet durable, newest first. Returns 0, or an
 * error when an undo step failed (the others still run).
 */
int nem_disk_lose_unsynced(struct nem_disk *d);

/* Number of data changes (writes, truncations) not yet durable: the
 * indexes nem_disk_torn_seq takes. */
size_t nem_disk_unsynced_writes(struct nem_disk *d);

/*
 * Simulates a power loss that keeps some writes. Kills and reaps the
 * program, rolls back everything not durable, then applies again, in
 * their original order, the data changes whose indexes are in keep. Index
 * 0 is the oldest change not yet durable (see nem_disk_unsynced_writes).
 * Directory changes are all rolled back. Returns 0, FL_EINPUT for an index out
 * of range, or an error from an undo step.
 */
int nem_disk_torn_seq(struct nem_disk *d, const size_t *keep, size_t n_keep);

/* Arms a fault; up to 16 at once. Returns 0 or FL_EINPUT. */
int nem_disk_arm(struct nem_disk *d, const struct nem_disk_fault *fault);

/* Disarms every fault. */
void nem_disk_disarm(struct nem_disk *d);

/* Copies the statistics. */
void nem_disk_get_stats(struct nem_disk *d, struct nem_disk_stats *out);

/* The last error message, or "" (valid until the next call). Also set
 * when the supervisor thread failed and killed the program. */
const char *nem_disk_error(struct nem_disk *d);

#endif
