/*
 * A fault-injecting struct kv_vfs for the engine's tests.
 *
 * It forwards every call to the real file system and counts calls per
 * operation. A test can make one call fail (the Nth fdatasync), shorten a
 * write, make every mutating call from the Nth on fail as if the process
 * had crashed there, or hold fdatasync until the test releases it. Call
 * numbers count from 1 since fault_vfs_init, across all threads.
 *
 * The engine takes the directory lock (flock) only on the real vfs, so two
 * engines may open one directory through a fault vfs.
 */
#ifndef FL_TEST_VFS_FAULT_H
#define FL_TEST_VFS_FAULT_H

#include "vfs.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum fault_op {
    FAULT_OPEN,
    FAULT_CLOSE,
    FAULT_PREAD,
    FAULT_PWRITE,
    FAULT_FSYNC,
    FAULT_FDATASYNC,
    FAULT_FTRUNCATE,
    FAULT_SIZE,
    FAULT_RENAME,
    FAULT_UNLINK,
    FAULT_MKDIR,
    FAULT_FSYNC_DIR,
    FAULT_LIST,
    FAULT_NOPS,
};

/* One call in the trace: the file names are the last path component, and
 * calls on a descriptor name the file it was opened as (renames follow). */
struct fault_event {
    enum fault_op op;
    int result;
    char name[80];
    char to[80]; /* rename target */
};

#define FAULT_MAX_FDS    1024
#define FAULT_MAX_EVENTS 4096

struct fault_vfs {
    struct kv_vfs vfs; /* pass &f->vfs in kv_options.vfs */
    const struct kv_vfs *base;

    pthread_mutex_t lock;
    pthread_cond_t changed; /* a call entered or the gate opened */

    uint64_t calls[FAULT_NOPS];
    /* Calls that change the disk: unlink, rename, ftruncate, fsync,
     * fdatasync, fsync_dir, pwrite and open with O_CREAT. */
    uint64_t mutating;

    uint64_t fail_at[FAULT_NOPS]; /* call number to fail; 0: none */
    int fail_errno[FAULT_NOPS];
    uint64_t short_pwrite_at;  /* this pwrite transfers half its bytes */
    uint64_t crash_at;         /* mutating calls from this one on fail */
    uint64_t fail_mutating_at; /* only this mutating call fails */

    bool gate_closed;      /* fdatasync blocks until fault_vfs_open_gate */
    uint64_t gate_waiting; /* fdatasync calls blocked at the gate now */

    char fd_names[FAULT_MAX_FDS][80]; /* file each descriptor was opened as */
    bool tracing;
    struct fault_event *events; /* FAULT_MAX_EVENTS, while tracing */
    size_t nevents;
    bool events_lost; /* the trace filled up */
};

/* Sets up f over the real file system with no faults armed. */
void fault_vfs_init(struct fault_vfs *f);
void fault_vfs_destroy(struct fault_vfs *f);

/* Makes call number nth (absolute, from 1) of op return -err. */
void fault_vfs_fail_call(struct fault_vfs *f, enum fault_op op, uint64_t nth,
                         int err);

/* Makes pwrite call number nth write only the first half of its bytes. */
void fault_vfs_short_pwrite(struct fault_vfs *f, uint64_t nth);

/* Makes mutating call number nth and every later one return -EIO. */
void fault_vfs_crash_at(struct fault_vfs *f, uint64_t nth);

/* Makes only mutating call number nth return -EIO. */
void fault_vfs_fail_mutating(struct fault_vfs *f, uint64_t nth);

/* Starts recording every call in f->events. */
void fault_vfs_trace(struct fault_vfs *f);

/* Returns how many calls of op were made so far. */
uint64_t fault_vfs_calls(struct fault_vfs *f, enum fault_op op);

/* Returns how many mutating calls were made so far, failed ones included. */
uint64_t fault_vfs_mutating(struct fault_vfs *f);

/* Makes every later fdatasync block before it reaches the disk. */
void fault_vfs_close_gate(struct fault_vfs *f);

/* Waits until at least n fdatasync calls are blocked at the gate; returns
 * false when that does not happen within timeout_ms. */
bool fault_vfs_wait_blocked(struct fault_vfs *f, uint64_t n,
                            unsigned timeout_ms);

/* Lets blocked and later fdatasync calls through. */
void fault_vfs_open_gate(struct fault_vfs *f);

#endif
