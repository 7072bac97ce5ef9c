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
    "Exit codes: 0 no violation, 1 a violation (each printed with the file\n"
    "and line that shows it), 2 usage error, an unreadable file or a\n"
    "malformed raft line, 4 out of memory.\n";

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
    if (argc < 3)
        return run_usage_error("audit", "no log files given");
    if (chk_raftlog_new(&a) != 0)
        return RUN_EXIT_INFRA;
    for (int i = 2; i < argc && rc == 0; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            rc = run_usage_error("audit", "unknown option \"%s\"", argv[i]);
            break;
        }
        rc = audit_file(a, argv[i]);
    }
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
        printf("warning: no raft events found; fl-raftd logs them at "
               "--log-level info\n");
    fl_buf_free(&out);
    chk_raftlog_free(a);
    return st.violations > 0 ? RUN_EXIT_INVALID : RUN_EXIT_VALID;
}
