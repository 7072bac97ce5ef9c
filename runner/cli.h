/*
 * Shared pieces of the faultline command line: the subcommand table entry,
 * exit codes, and strict parsers for option values that name the option and
 * the expected form in their error messages.
 */
#ifndef RUN_CLI_H
#define RUN_CLI_H

#include <stdbool.h>
#include <stdint.h>

struct option;

/* Exit codes of faultline run, sweep and check. */
enum {
    RUN_EXIT_VALID = 0,
    RUN_EXIT_INVALID = 1,
    RUN_EXIT_USAGE = 2, /* usage or input error */
    RUN_EXIT_UNKNOWN = 3,
    RUN_EXIT_INFRA = 4,
};

struct run_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
};

int run_cmd_audit(int argc, char **argv);
int run_cmd_check(int argc, char **argv);
int run_cmd_gen(int argc, char **argv);
int run_cmd_report(int argc, char **argv);
int run_cmd_sim(int argc, char **argv);
int run_cmd_sweep(int argc, char **argv);

/*
 * Prints "faultline CMD: MESSAGE" and a hint to use --help on stderr and
 * returns RUN_EXIT_USAGE.
 */
int run_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Reports the getopt_long error c (':' or '?') for the option just parsed,
 * using optopt and optind, and returns RUN_EXIT_USAGE. getopt_long must run
 * with opterr = 0 and an optstring that starts with ':'.
 */
int run_option_error(const char *cmd, int c, char **argv,
                     const struct option *options);

/*
 * Parsers: return 0, or print a usage error and return RUN_EXIT_USAGE.
 * They accept plain decimal text only: no leading space, '+', hex form,
 * "inf" or "nan". unit names the unit in the error message ("MiB",
 * "seconds") and may be NULL.
 */
int run_parse_u64(const char *cmd, const char *opt, const char *text,
                  uint64_t min, uint64_t max, const char *unit, uint64_t *out);
int run_parse_double(const char *cmd, const char *opt, const char *text,
                     double min, double max, const char *unit, double *out);

/*
 * Parses a seed range "A..B" with A <= B <= max_seed and at most max_count
 * seeds in it, into *from and *to. Same contract as the parsers above.
 */
int run_parse_range(const char *cmd, const char *opt, const char *text,
                    uint64_t max_seed, uint64_t max_count, uint64_t *from,
                    uint64_t *to);

/*
 * Parses a duration such as "90s", "30m" or "2h": a whole number of
 * seconds, minutes or hours, at least 1 s and at most max_s seconds, into
 * *seconds. Same contract as the parsers above.
 */
int run_parse_duration(const char *cmd, const char *opt, const char *text,
                       uint64_t max_s, uint64_t *seconds);

#endif
