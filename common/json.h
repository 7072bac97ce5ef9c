/*
 * A small JSON value parser and writer for history lines and manifests.
 *
 * History lines and manifests come here rather than to cJSON because a run
 * can record millions of lines and because cJSON keeps numbers as doubles,
 * which silently rounds integers above 2^53. This parser keeps
 * integers exact as int64, allocates only from a caller's arena (a line costs
 * a pointer bump, freed by resetting the arena), validates UTF-8, and bounds
 * nesting depth so no input can exhaust the stack.
 */
#ifndef FL_JSON_H
#define FL_JSON_H

#include "arena.h"
#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fl_json_kind {
    FL_JSON_NULL,
    FL_JSON_BOOL,
    FL_JSON_INT,    /* an integer literal that fits int64 */
    FL_JSON_DOUBLE, /* any other number */
    FL_JSON_STRING,
    FL_JSON_ARRAY,
    FL_JSON_OBJECT,
};

struct fl_json_member;

struct fl_json {
    enum fl_json_kind kind;
    union {
        bool b;
        int64_t i;
        double d;
        struct fl_str s; /* decoded UTF-8, may contain NUL bytes */
        struct {
            struct fl_json *items;
            size_t count;
        } array;
        struct {
            struct fl_json_member *members; /* in input order */
            size_t count;
        } object;
    } u;
};

struct fl_json_member {
    struct fl_str key;
    struct fl_json value;
};

#define FL_JSON_MAX_DEPTH 64

/*
 * Parses exactly one JSON value from text[0..len), surrounded by optional
 * whitespace, into *out, allocating from arena. Returns 0, FL_EINPUT with a
 * static reason in *why and the byte offset in *where, or -ENOMEM /
 * FL_EBUDGET when the arena cannot grow. Duplicate object keys are accepted
 * here; callers that care check for them.
 */
int fl_json_parse(struct fl_arena *arena, const char *text, size_t len,
                  struct fl_json *out, const char **why, size_t *where);

/* Returns the member named key, or NULL. */
const struct fl_json *fl_json_get(const struct fl_json *object,
                                  const char *key);

/* Structural equality; an INT and a DOUBLE of the same value differ. */
bool fl_json_equal(const struct fl_json *a, const struct fl_json *b);

/* Returns a hash consistent with fl_json_equal. */
uint64_t fl_json_hash(const struct fl_json *v);

/* Appends v in compact form. */
void fl_json_write(struct fl_buf *b, const struct fl_json *v);

/* Deep-copies v into arena; returns 0 or a negative error. */
int fl_json_copy(struct fl_arena *arena, const struct fl_json *v,
                 struct fl_json *out);

/* Returns a static name of the kind, for messages ("string", "array"...). */
const char *fl_json_kind_name(enum fl_json_kind kind);

/* True for null, bool, number or string. */
static inline bool fl_json_is_scalar(const struct fl_json *v)
{
    return v->kind != FL_JSON_ARRAY && v->kind != FL_JSON_OBJECT;
}

#endif
