/*
 * Error exits shared by the disk-supervisor benchmark programs. Messages
 * go to stderr prefixed with the program's name.
 */
#ifndef BENCH_DIE_H
#define BENCH_DIE_H

/* Prints the message and exits with status 1. */
_Noreturn void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Prints the message with a pointer to --help and exits with status 2. */
_Noreturn void bench_die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
