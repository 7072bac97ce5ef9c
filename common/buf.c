/*
 * Growable byte buffer.
 */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void fl_buf_init(struct fl_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
}

void fl_buf_free(struct fl_buf *b)
{
    free(b->data);
    fl_buf_init(b);
}

void fl_buf_clear(struct fl_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data)
        b->data[0] = '\0';
}

static bool grow(struct fl_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t cap = b->cap ? b->cap : 256;
    char *data;

    if (b->failed)
        return false;
    if (need <= b->cap)
        return true;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    data = realloc(b->data, cap);
    if (data == NULL) {
        b->failed = true;
        return false;
    }
    b->data = data;
    b->cap = cap;
    return true;
}

void fl_buf_add(struct fl_buf *b, const void *data, size_t len)
{
    if (!grow(b, len))
        return;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void fl_buf_adds(struct fl_buf *b, const char *s)
{
    fl_buf_add(b, s, strlen(s));
}

void fl_buf_addc(struct fl_buf *b, char c)
{
    fl_buf_add(b, &c, 1);
}

void fl_buf_printf(struct fl_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

size_t fl_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* Reject overlong forms, surrogates and code points past U+10FFFF. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void fl_buf_add_json_string(struct fl_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    fl_buf_addc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            /* A byte that starts no valid UTF-8 sequence becomes the code
             * point of the same number, so the output stays valid JSON. */
            size_t n = fl_utf8_len((const unsigned char *)s + i,
                                   (const unsigned char *)s + len);
            if (n > 0) {
                i += n - 1;
                continue;
            }
        } else if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        fl_buf_add(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            fl_buf_adds(b, "\\\"");
            break;
        case '\\':
            fl_buf_adds(b, "\\\\");
            break;
        case '\n':
            fl_buf_adds(b, "\\n");
            break;
        case '\r':
            fl_buf_adds(b, "\\r");
            break;
        case '\t':
            fl_buf_adds(b, "\\t");
            break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            fl_buf_add(b, esc, sizeof(esc));
        }
        }
    }
    fl_buf_add(b, s + run, len - run);
    fl_buf_addc(b, '"');
}
