/*
 * Option-value parsing and usage errors for the subcommands.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int run_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "faultline %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'faultline %s --help' for usage.\n", cmd);
    return RUN_EXIT_USAGE;
}

int run_parse_u64(const char *cmd, const char *opt, const char *text,
                  uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (text[0] == '-' || text[0] == '\0')
        goto bad;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    return run_usage_error(cmd,
                           "invalid %s \"%s\": expected an integer from "
                           "%" PRIu64 " to %" PRIu64,
                           opt, text, min, max);
}

int run_parse_double(const char *cmd, const char *opt, const char *text,
                     double min, double max, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v < min ||
        v > max)
        return run_usage_error(cmd,
                               "invalid %s \"%s\": expected a number from %g "
                               "to %g",
                               opt, text, min, max);
    *out = v;
    return 0;
}
