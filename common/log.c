/*
 * logfmt line formatting. A line is assembled in a local buffer and written
 * with one fwrite under the stream lock, so lines from several threads never
 * interleave.
 */
#include "log.h"

#include "error.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

int fl__log_threshold = FL_LOG_INFO;
static FILE *log_stream;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

void fl_log_set_level(enum fl_log_level level)
{
    fl__log_threshold = (int)level;
}

int fl_log_parse_level(const char *name, enum fl_log_level *level)
{
    for (int i = FL_LOG_DEBUG; i <= FL_LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (enum fl_log_level)i;
            return 0;
        }
    }
    return FL_EINPUT;
}

void fl_log_set_stream(FILE *stream)
{
    log_stream = stream;
}

static bool needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

char *fl_log_quote(char *buf, size_t size, const char *s)
{
    size_t n = 0;

    if (size == 0)
        return buf;
    if (!needs_quotes(s)) {
        size_t len = strlen(s);
        if (len >= size)
            len = size - 1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        return buf;
    }
    /* Reserve room for the closing quote and the terminator. */
    if (size < 3) {
        buf[0] = '\0';
        return buf;
    }
    buf[n++] = '"';
    for (; *s && n + 3 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else if (c < ' ' || c == 0x7f) {
            buf[n++] = '?';
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}

/* Writes one line; fields is preformatted key=value text or NULL. */
static void log_line(enum fl_log_level level, const char *comp, const char *msg,
                     const char *fields)
{
    char line[2048];
    char quoted[1024];
    struct timespec now;
    struct tm tm;
    size_t n;
    int w;
    FILE *out = log_stream ? log_stream : stderr;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    w = snprintf(line + n, sizeof(line) - n,
                 ".%03ldZ level=%s comp=%s msg=%s%s%s", now.tv_nsec / 1000000L,
                 level_names[level], comp,
                 fl_log_quote(quoted, sizeof(quoted), msg),
                 fields && *fields ? " " : "", fields ? fields : "");
    if (w > 0)
        n += (size_t)w;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    fwrite(line, 1, n, out);
}

void fl__log(enum fl_log_level level, const char *comp, const char *msg,
             const char *fields, ...)
{
    char text[1536];
    va_list ap;

    va_start(ap, fields);
    vsnprintf(text, sizeof(text), fields, ap);
    va_end(ap);
    log_line(level, comp, msg, text);
}

void fl__log_msg(enum fl_log_level level, const char *comp, const char *msg)
{
    log_line(level, comp, msg, NULL);
}
