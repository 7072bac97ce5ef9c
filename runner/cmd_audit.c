/*
 * `faultline audit raft LOG...`: checks a Raft cluster's invariants from
 * its nodes' logs after a run (checkers/raftlog.h).
 */
#include "cli.h"

#include "error.h"
#include "raftlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "Usage: faultline audit raft LOG...\n"
    "\n"
    "Reads the Raft events fl-raftd logs (comp=raft lines: boot, term,\n"
    "vote, leader, apply, ...) from every node's log, across restarts, and\n"
    "checks election safety (one leader per term), one vote per node and\n"
    "term, terms that never go back at a restart, and state machine safety\n"
    "(the same command applied at each index on every node). Other lines\n"
    "are skipped.\n"
    "\n"
    "A node's restarts are checked in the line order of each file.\n"
    "\n"
    "Exit codes: 0 no violation, 1 a violation (each printed with the file\n"
    "and line that shows it), 2 usage error, an unreadable file or a\n"
    "malformed raft line, 3 no raft events at all, 4 out of memory.\n";

static int audit_file(struct chk_raftlog *a, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t n = 0;
    char err[512];
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "faultline audit: %s: cannot open: %s\n", path,
                strerror(errno));
        return RUN_EXIT_USAGE;
    }
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        n++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        rc = chk_raftlog_feed(a, path, n, line, (size_t)len, err, sizeof(err));
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "faultline audit: %s: read failed: %s\n", path,
                strerror(errno));
        rc = RUN_EXIT_USAGE;
    } else if (rc == -ENOMEM) {
        fprintf(stderr, "faultline audit: out of memory\n");
        rc = RUN_EXIT_INFRA;
    } else if (rc != 0) {
        fprintf(stderr, "faultline audit: %s\n", err);
        rc = RUN_EXIT_USAGE;
    }
    free(line);
    fclose(f);
    return rc;
}

int run_cmd_audit(int argc, char **argv)
{
    struct chk_raftlog *a;
    struct chk_raftlog_stats st;
    struct fl_buf out;
    int rc = 0;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? RUN_EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "raft") != 0)
        return run_usage_error("audit", "unknown system \"%s\": expected raft",
                               argv[1]);
    int first = 2;
    for (; first < argc && argv[first][0] == '-' && argv[first][1] != '\0';
         first++) {
        if (strcmp(argv[first], "--help") == 0 ||
            strcmp(argv[first], "-h") == 0) {
            fputs(help, stdout);
            return 0;
        }
        if (strcmp(argv[first], "--") == 0) {
            first++;
            break;
        }
        return run_usage_error("audit", "unknown option \"%s\"", argv[first]);
    }
    if (first >= argc)
        return run_usage_error("audit", "no log files given");
    if (chk_raftlog_new(&a) != 0)
        return RUN_EXIT_INFRA;
    for (int i = first; i < argc && rc == 0; i++)
        rc = audit_file(a, argv[i]);
    if (rc != 0) {
        chk_raftlog_free(a);
        return rc;
    }
    fl_buf_init(&out);
    chk_raftlog_report(a, &out, &st);
    if (out.len > 0)
        fwrite(out.data, 1, out.len, stdout);
    printf("%" PRIu64 " raft events: %" PRIu64 " boots, %" PRIu64
           " leaders, %" PRIu64 " votes, %" PRIu64 " applies; %" PRIu64
           " violation(s)%s\n",
           st.events, st.boots, st.leaders, st.votes, st.applies, st.violations,
           st.violations > 20 ? " (the first 20 shown)" : "");
    if (st.events == 0)
        printf("unknown: no raft events found, so nothing was checked; "
               "fl-raftd logs them at --log-level info\n");
    fl_buf_free(&out);
    chk_raftlog_free(a);
    if (st.violations > 0)
        return RUN_EXIT_INVALID;
    return st.events == 0 ? RUN_EXIT_UNKNOWN : RUN_EXIT_VALID;
}
