/*
 * Shared pieces of the faultline command line: the subcommand table entry,
 * exit codes, and strict parsers for option values that name the option and
 * the expected form in their error messages.
 */
#ifndef RUN_CLI_H
#define RUN_CLI_H

#include <stdbool.h>
#include <stdint.h>

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

int run_cmd_check(int argc, char **argv);
int run_cmd_gen(int argc, char **argv);

/*
 * Prints "faultline CMD: MESSAGE" and a hint to use --help on stderr and
 * returns RUN_EXIT_USAGE.
 */
int run_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parsers: return 0, or print a usage error and return RUN_EXIT_USAGE. */
int run_parse_u64(const char *cmd, const char *opt, const char *text,
                  uint64_t min, uint64_t max, uint64_t *out);
int run_parse_double(const char *cmd, const char *opt, const char *text,
                     double min, double max, double *out);

#endif
