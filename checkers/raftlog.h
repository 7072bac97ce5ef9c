/*
 * An audit of a Raft cluster from its nodes' logs. fl-raftd logs the
 * Raft core's trace events in logfmt, one line each:
 *
 *   ts=... level=info comp=raft msg=vote node=2 term=7 vote=3 index=0 hash=0
 *
 * with msg one of boot, term, vote, leader, append, truncate, commit,
 * apply and snapshot. The audit reads those lines from every node's log,
 * in any order of files and across restarts (a node's log keeps growing),
 * and checks what a run must never show:
 *
 *   - election safety: at most one leader per term;
 *   - one vote per node and term, also across restarts;
 *   - durable votes: after a node traced a vote that a leader counted
 *     (leader lines name their voters, voters=MASK with bit i for node
 *     i), it never boots below that term, nor in it with another vote;
 *   - terms that never go back: a node boots in a term at least as high
 *     as any it booted in or led before, on earlier lines of the same
 *     file (the order of lines across files is unknown). A term it only
 *     reached may be lost to a power cut before it was saved, which is
 *     harmless because nothing of it was sent;
 *   - state machine safety: every node applies the same command (term and
 *     hash) at each index.
 *
 * Other lines, and comp=raft lines with another msg, are skipped, so a
 * whole log file can be fed. An event line with missing or malformed
 * fields is an input error naming file and line.
 */
#ifndef CHK_RAFTLOG_H
#define CHK_RAFTLOG_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chk_raftlog;

/* Counts of what the audit read. */
struct chk_raftlog_stats {
    uint64_t events; /* raft trace lines */
    uint64_t leaders;
    uint64_t votes;
    uint64_t applies;
    uint64_t boots;
    uint64_t violations; /* all found; only the first few are kept */
};

int chk_raftlog_new(struct chk_raftlog **out);
void chk_raftlog_free(struct chk_raftlog *a);

/*
 * Feeds one log line of len bytes (without its newline) from file at line
 * number line. Returns 0, FL_EINPUT for a raft trace line that cannot be
 * read, with "file:line: reason" in err, or -ENOMEM.
 */
int chk_raftlog_feed(struct chk_raftlog *a, const char *file, uint64_t line,
                     const char *text, size_t len, char *err, size_t errsize);

/* Appends one line per violation kept ("file:line: what"), in the order
 * found, and returns the statistics. */
void chk_raftlog_report(const struct chk_raftlog *a, struct fl_buf *out,
                        struct chk_raftlog_stats *stats);

#endif
