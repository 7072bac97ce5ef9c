/*
 * Descriptions for the project error codes and for negated errno values.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *fl_strerror(int code)
{
    if (code == 0)
        return "success";
    switch (code) {
#define FL__ERROR_CASE(name, value, text)                                      \
    case name:                                                                 \
        return text;
        FL_ERROR_TABLE(FL__ERROR_CASE)
#undef FL__ERROR_CASE
    default:
        break;
    }
    if (code < 0 && code > -4096)
        return strerrordesc_np(-code) ? strerrordesc_np(-code)
                                      : "unknown errno";
    return "unknown error code";
}

void fl_scrub_controls(char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
    }
}

int fl_input_error(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    if (size > 0)
        fl_scrub_controls(msg);
    return FL_EINPUT;
}

int fl_errorf(char *msg, size_t size, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return rc;
}
