/*
 * A simulated disk behind struct kv_vfs, for the deterministic simulator
 * and for crash tests of the KV engine.
 *
 * It keeps two states of every file and directory entry: the current one,
 * which reads see, and the durable one, which survives a power cut. A
 * write changes the current data; fsync or fdatasync of the file copies it
 * to the durable data. Creating, renaming and deleting a file change the
 * current directory entries; fsync_dir of the directory makes those
 * entries durable. sim_disk_crash stands for a power cut: open files are
 * closed and everything falls back to its durable state, except that a
 * torn crash keeps the file written last up to part of its last write.
 *
 * Directories are durable as soon as mkdir returns. Calls take an internal
 * lock, because the engine's threads use the disk concurrently.
 */
#ifndef SIM_DISK_H
#define SIM_DISK_H

#include "vfs.h"

#include <stdbool.h>
#include <stdint.h>

enum sim_crash {
    SIM_CRASH_LOSE_UNSYNCED = 1, /* every unsynced change is lost */
    /* A torn tail: the file written last keeps its unsynced writes in
     * order, the last one only up to a prefix the seed picks, and every
     * other unsynced change is lost. */
    SIM_CRASH_TORN,
};

struct sim_disk;

/* Creates an empty disk; seed picks how much of a write a torn crash
 * keeps. Returns 0 or -ENOMEM. */
int sim_disk_new(struct sim_disk **out, uint64_t seed);

void sim_disk_free(struct sim_disk *d);

/* Returns the kv_vfs that works on d. */
const struct kv_vfs *sim_disk_vfs(struct sim_disk *d);

/*
 * Closes every open file and drops what a power cut would lose. Until
 * sim_disk_restart, every call fails with -EIO, so a process that keeps
 * running past its crash (its threads, its shutdown) cannot change what
 * the crash left.
 */
void sim_disk_crash(struct sim_disk *d, enum sim_crash mode);

/* Lets calls reach the disk again after a crash, as a reboot does. */
void sim_disk_restart(struct sim_disk *d);

/* Returns true when a call failed because the disk could not allocate
 * memory, so a caller can tell a failing engine from a faulty one. */
bool sim_disk_out_of_memory(struct sim_disk *d);

#endif
