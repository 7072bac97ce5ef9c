/*
 * Option-value parsing and usage errors for the subcommands.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const struct option *find_option(const struct option *options, int val)
{
    for (; options->name != NULL; options++) {
        if (options->flag == NULL && options->val == val)
            return options;
    }
    return NULL;
}

int run_option_error(const char *cmd, int c, char **argv,
                     const struct option *options)
{
    /*
     * glibc sets optopt to the short option character, to the val of a long
     * option that lacks or must not have a value, and to 0 for an unknown or
     * ambiguous long option. argv[optind - 1] is the offending word except
     * inside a group of short options such as -xh, where optopt is the only
     * reliable clue.
     */
    const char *word = argv[optind - 1];
    const struct option *known =
        optopt != 0 ? find_option(options, optopt) : NULL;
    bool long_form = strncmp(word, "--", 2) == 0;

    if (c == ':') {
        if (known != NULL && long_form)
            return run_usage_error(cmd, "option --%s needs a value",
                                   known->name);
        return run_usage_error(cmd, "option -%c needs a value", optopt);
    }
    if (known != NULL && long_form)
        return run_usage_error(cmd, "option --%s takes no value", known->name);
    if (optopt != 0)
        return run_usage_error(cmd, "unknown option -%c", optopt);
    return run_usage_error(cmd, "unknown or ambiguous option %.*s",
                           (int)strcspn(word, "="), word);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* True for one or more decimal digits and nothing else. */
static bool is_plain_integer(const char *text)
{
    if (text[0] == '\0')
        return false;
    for (const char *p = text; *p != '\0'; p++) {
        if (!is_digit(*p))
            return false;
    }
    return true;
}

/*
 * True when text starts like a decimal number (an optional '-', then a digit
 * or a '.' and a digit) and holds only characters of one. strtod, which
 * checks the rest of the syntax, also takes leading spaces, '+', hex floats,
 * "inf" and "nan"; this rejects them first.
 */
static bool is_plain_number(const char *text)
{
    const char *p = text[0] == '-' ? text + 1 : text;

    if (!is_digit(p[0]) && !(p[0] == '.' && is_digit(p[1])))
        return false;
    return strspn(p, "0123456789.eE+-") == strlen(p);
}

int run_parse_u64(const char *cmd, const char *opt, const char *text,
                  uint64_t min, uint64_t max, const char *unit, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!is_plain_integer(text))
        goto bad;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    return run_usage_error(cmd,
                           "invalid %s \"%s\": expected an integer%s%s from "
                           "%" PRIu64 " to %" PRIu64,
                           opt, text, unit ? " number of " : "",
                           unit ? unit : "", min, max);
}

int run_parse_double(const char *cmd, const char *opt, const char *text,
                     double min, double max, const char *unit, double *out)
{
    char *end;
    double v;

    if (!is_plain_number(text))
        goto bad;
    errno = 0;
    v = strtod(text, &end);
    if (*end != '\0')
        goto bad;
    /* ERANGE with a finite result is underflow: a tiny value such as 1e-320
     * is valid, but one that rounds to 0 would turn a limit into "none". */
    if (errno == ERANGE && v == 0)
        return run_usage_error(cmd,
                               "invalid %s \"%s\": too small to represent; "
                               "use 0 or a larger number",
                               opt, text);
    if ((errno != 0 && errno != ERANGE) || !isfinite(v) || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    return run_usage_error(cmd,
                           "invalid %s \"%s\": expected a number%s%s from "
                           "%g to %g",
                           opt, text, unit ? " of " : "", unit ? unit : "", min,
                           max);
}

int run_parse_range(const char *cmd, const char *opt, const char *text,
                    uint64_t max_seed, uint64_t max_count, uint64_t *from,
                    uint64_t *to)
{
    const char *dots = strstr(text, "..");
    const char *digits = "0123456789";
    char first[32];

    if (dots == NULL || dots == text ||
        (size_t)(dots - text) >= sizeof(first) ||
        strspn(text, digits) != (size_t)(dots - text) || dots[2] == '\0' ||
        strspn(dots + 2, digits) != strlen(dots + 2))
        return run_usage_error(cmd,
                               "invalid %s \"%s\": expected A..B, two "
                               "decimal numbers",
                               opt, text);
    memcpy(first, text, (size_t)(dots - text));
    first[dots - text] = '\0';
    if (run_parse_u64(cmd, opt, first, 0, max_seed, NULL, from) != 0 ||
        run_parse_u64(cmd, opt, dots + 2, 0, max_seed, NULL, to) != 0)
        return RUN_EXIT_USAGE;
    if (*from > *to)
        return run_usage_error(cmd,
                               "invalid %s \"%s\": the first seed is above "
                               "the last",
                               opt, text);
    if (*to - *from >= max_count)
        return run_usage_error(
            cmd, "invalid %s \"%s\": at most %" PRIu64 " seeds in one run", opt,
            text, max_count);
    return 0;
}

int run_parse_duration(const char *cmd, const char *opt, const char *text,
                       uint64_t max_s, uint64_t *seconds)
{
    static const struct {
        char suffix;
        uint64_t seconds;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}};
    size_t len = strlen(text);
    char number[32];
    uint64_t n;

    for (size_t i = 0; len > 1 && len <= sizeof(number) &&
                       i < sizeof(units) / sizeof(units[0]);
         i++) {
        if (text[len - 1] != units[i].suffix)
            continue;
        memcpy(number, text, len - 1);
        number[len - 1] = '\0';
        if (!is_plain_integer(number))
            break;
        errno = 0;
        n = strtoull(number, NULL, 10);
        if (errno != 0 || n == 0 || n > max_s / units[i].seconds)
            break;
        *seconds = n * units[i].seconds;
        return 0;
    }
    return run_usage_error(cmd,
                           "invalid %s \"%s\": expected a whole number with "
                           "the unit s, m or h, such as 90s, 30m or 2h, from "
                           "1s to %" PRIu64 "s",
                           opt, text, max_s);
}
