/*
 * Checking one history file, shared by `faultline check FILE` and the
 * manifest mode.
 */
#ifndef RUN_CHECK_FILE_H
#define RUN_CHECK_FILE_H

#include "linear.h"

#include <stdbool.h>
#include <stdio.h>

struct run_check_outcome {
    enum chk_verdict verdict;
    size_t ops;
    double ms;
    char error[768]; /* set when the file could not be checked */
};

/*
 * Reads and checks path with options o. When report is not NULL, writes the
 * text (or, with json, JSON) result there. Returns 0 when a verdict was
 * reached, RUN_EXIT_USAGE for malformed input or an unreadable file (the
 * reason in out->error), or RUN_EXIT_INFRA for other failures.
 */
int run_check_file(const char *path, const struct chk_lin_options *o,
                   FILE *report, bool json, struct run_check_outcome *out);

/* Checks every entry of a MANIFEST.json; returns the process exit code. */
int run_check_manifest(const char *path, const struct chk_lin_options *base,
                       bool json);

/* Maps a verdict to the exit code. */
int run_verdict_exit(enum chk_verdict v);

#endif
