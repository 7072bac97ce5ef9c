/*
 * logfmt logging on stderr: one line per event,
 *
 *     ts=2026-12-04T19:53:34.123Z level=info comp=check msg="checked" ops=12
 *
 * The FL_LOG_* macros test the level before any argument is evaluated or
 * formatted, so a disabled debug line costs one comparison. Callers pass the
 * component, a message (quoted and escaped here) and optionally a printf
 * format for extra key=value fields, which they keep free of spaces or quote
 * themselves (fl_log_quote helps).
 */
#ifndef FL_LOG_H
#define FL_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

enum fl_log_level {
    FL_LOG_DEBUG = 0,
    FL_LOG_INFO = 1,
    FL_LOG_WARN = 2,
    FL_LOG_ERROR = 3,
    FL_LOG_OFF = 4,
};

/* The process-wide threshold; lines below it are dropped. Default: info. */
extern int fl__log_threshold;

void fl_log_set_level(enum fl_log_level level);

/* Parses "debug", "info", "warn", "error" or "off"; returns 0 or FL_EINPUT. */
int fl_log_parse_level(const char *name, enum fl_log_level *level);

/* Redirects output (tests); NULL restores stderr. The stream is borrowed. */
void fl_log_set_stream(FILE *stream);

/*
 * Formats one logfmt line; fields is a printf format for the key=value
 * text after msg. Use the macros below instead.
 */
void fl__log(enum fl_log_level level, const char *comp, const char *msg,
             const char *fields, ...) __attribute__((format(printf, 4, 5)));

/* Formats one logfmt line with no extra fields. */
void fl__log_msg(enum fl_log_level level, const char *comp, const char *msg);

/*
 * Writes s into buf as a logfmt value: bare when it has no space, quote,
 * equals sign or control character, otherwise double-quoted with escapes.
 * Truncates to fit and always NUL-terminates; returns buf.
 */
char *fl_log_quote(char *buf, size_t size, const char *s);

#define FL__LOG(level, comp, msg, ...)                                         \
    do {                                                                       \
        if ((int)(level) >= fl__log_threshold)                                 \
            fl__log((level), (comp), (msg), __VA_ARGS__);                      \
    } while (0)

#define FL_LOG_DEBUGF(comp, msg, ...)                                          \
    FL__LOG(FL_LOG_DEBUG, comp, msg, __VA_ARGS__)
#define FL_LOG_INFOF(comp, msg, ...)                                           \
    FL__LOG(FL_LOG_INFO, comp, msg, __VA_ARGS__)
#define FL_LOG_WARNF(comp, msg, ...)                                           \
    FL__LOG(FL_LOG_WARN, comp, msg, __VA_ARGS__)
#define FL_LOG_ERRORF(comp, msg, ...)                                          \
    FL__LOG(FL_LOG_ERROR, comp, msg, __VA_ARGS__)

#define FL__LOG_MSG(level, comp, msg)                                          \
    do {                                                                       \
        if ((int)(level) >= fl__log_threshold)                                 \
            fl__log_msg((level), (comp), (msg));                               \
    } while (0)

#define FL_LOG_DEBUG_MSG(comp, msg) FL__LOG_MSG(FL_LOG_DEBUG, comp, msg)
#define FL_LOG_INFO_MSG(comp, msg)  FL__LOG_MSG(FL_LOG_INFO, comp, msg)
#define FL_LOG_WARN_MSG(comp, msg)  FL__LOG_MSG(FL_LOG_WARN, comp, msg)
#define FL_LOG_ERROR_MSG(comp, msg) FL__LOG_MSG(FL_LOG_ERROR, comp, msg)

#endif
