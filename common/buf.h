/*
 * Byte strings: borrowed slices (struct fl_str) and a growable buffer
 * (struct fl_buf) for building output.
 */
#ifndef FL_BUF_H
#define FL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* A borrowed, not necessarily NUL-terminated byte string. */
struct fl_str {
    const char *ptr; /* NULL means absent */
    size_t len;
};

static inline struct fl_str fl_str_of(const char *s)
{
    struct fl_str r = {s, s ? strlen(s) : 0};
    return r;
}

static inline bool fl_str_eq(struct fl_str a, const char *b)
{
    size_t n = strlen(b);
    return a.ptr != NULL && a.len == n && memcmp(a.ptr, b, n) == 0;
}

static inline bool fl_str_same(struct fl_str a, struct fl_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* A growable byte buffer, always NUL-terminated once anything is added. */
struct fl_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed; contents are truncated */
};

void fl_buf_init(struct fl_buf *b);
void fl_buf_free(struct fl_buf *b);
void fl_buf_clear(struct fl_buf *b);

/* Appenders record allocation failure in b->failed instead of returning it. */
void fl_buf_add(struct fl_buf *b, const void *data, size_t len);
void fl_buf_adds(struct fl_buf *b, const char *s);
void fl_buf_addc(struct fl_buf *b, char c);
void fl_buf_printf(struct fl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends s as a JSON string literal, quoted and escaped. A byte that is
 * not part of valid UTF-8 becomes \u00XX, the code point of its value, so
 * the literal is valid JSON whatever s holds. */
void fl_buf_add_json_string(struct fl_buf *b, const char *s, size_t len);

/* Returns the length of the valid UTF-8 sequence at p (before end), or 0. */
size_t fl_utf8_len(const unsigned char *p, const unsigned char *end);

#endif
