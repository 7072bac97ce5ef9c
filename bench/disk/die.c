/*
 * Error exits of the benchmark programs. See die.h.
 */
#include "die.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void print_message(const char *fmt, va_list ap, const char *suffix)
    __attribute__((format(printf, 1, 0)));

static void print_message(const char *fmt, va_list ap, const char *suffix)
{
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fputs(suffix, stderr);
}

void bench_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    print_message(fmt, ap, "\n");
    va_end(ap);
    exit(1);
}

void bench_die_usage(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    print_message(fmt, ap, "; see --help\n");
    va_end(ap);
    exit(2);
}
