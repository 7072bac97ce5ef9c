/*
 * Recursive-descent JSON parser (RFC 8259) into arena-allocated values, and
 * the matching compact writer.
 *
 * Array and object elements are collected on a scratch stack shared by all
 * nesting levels and copied into the arena once the closing bracket is seen,
 * so each container costs one arena allocation.
 */
#include "json.h"

#include "error.h"
#include "hash.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

struct parser {
    const char *p;
    const char *start;
    const char *end;
    struct fl_arena *arena;
    const char *why;
    int rc;
    int depth;
    /* Scratch stack of members (arrays use only .value). */
    struct fl_json_member *stack;
    size_t stack_len;
    size_t stack_cap;
};

static int fail(struct parser *ps, const char *why)
{
    if (ps->rc == 0) {
        ps->rc = FL_EINPUT;
        ps->why = why;
    }
    return ps->rc;
}

static int fail_alloc(struct parser *ps)
{
    if (ps->rc == 0) {
        ps->rc = ps->arena->error ? ps->arena->error : -ENOMEM;
        ps->why = "out of memory";
    }
    return ps->rc;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int parse_value(struct parser *ps, struct fl_json *out);

static int expect_word(struct parser *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "invalid literal");
    ps->p += n;
    return 0;
}

static int hex4(struct parser *ps, uint32_t *out)
{
    uint32_t v = 0;

    if (ps->end - ps->p < 4)
        return fail(ps, "truncated \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = *ps->p++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else {
            ps->p--; /* point at the offending digit */
            return fail(ps, "invalid hex digit in \\u escape");
        }
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *dst, uint32_t cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int parse_string(struct parser *ps, struct fl_str *out)
{
    const char *s = ++ps->p; /* past the opening quote */
    const char *q = s;
    bool escaped = false;
    char *buf;
    size_t n = 0;

    /* First pass: find the closing quote and validate raw bytes. */
    while (q < ps->end && *q != '"') {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20) {
            ps->p = q;
            return fail(ps, "control character in string");
        }
        if (c == '\\') {
            escaped = true;
            /* Valid escapes are ASCII. Leave any other byte to the UTF-8
             * check so an invalid escape is reported as one below. */
            q += q + 1 < ps->end && (unsigned char)q[1] < 0x80 ? 2 : 1;
            continue;
        }
        size_t step = fl_utf8_len((const unsigned char *)q,
                                  (const unsigned char *)ps->end);
        if (step == 0) {
            ps->p = q;
            return fail(ps, "invalid UTF-8 in string");
        }
        q += step;
    }
    if (q >= ps->end) {
        ps->p = ps->end;
        return fail(ps, "unterminated string");
    }
    if (!escaped) {
        out->ptr = s;
        out->len = (size_t)(q - s);
        ps->p = q + 1;
        return 0;
    }
    /* Escapes only shrink the text, so the raw length bounds the output. */
    buf = fl_arena_alloc(ps->arena, (size_t)(q - s) + 1);
    if (buf == NULL)
        return fail_alloc(ps);
    ps->p = s;
    while (ps->p < q) {
        char c = *ps->p;
        if (c != '\\') {
            buf[n++] = c;
            ps->p++;
            continue;
        }
        ps->p++;
        char e = *ps->p++;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            buf[n++] = e;
            break;
        case 'b':
            buf[n++] = '\b';
            break;
        case 'f':
            buf[n++] = '\f';
            break;
        case 'n':
            buf[n++] = '\n';
            break;
        case 'r':
            buf[n++] = '\r';
            break;
        case 't':
            buf[n++] = '\t';
            break;
        case 'u': {
            uint32_t cp;
            if (hex4(ps, &cp) != 0)
                return ps->rc;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail(ps, "unpaired low surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
                    return fail(ps, "unpaired high surrogate in \\u escape");
                ps->p += 2;
                if (hex4(ps, &lo) != 0)
                    return ps->rc;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return fail(ps, "invalid low surrogate in \\u escape");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            n += put_utf8(buf + n, cp);
            break;
        }
        default:
            ps->p--;
            return fail(ps, "invalid escape in string");
        }
        if (ps->p > q) {
            /* A backslash right before the closing quote swallowed it. */
            return fail(ps, "unterminated string");
        }
    }
    buf[n] = '\0';
    out->ptr = buf;
    out->len = n;
    ps->p = q + 1;
    return 0;
}

static int parse_number(struct parser *ps, struct fl_json *out)
{
    const char *s = ps->p;
    const char *q = s;
    bool negative = false;
    bool integral = true;
    uint64_t mag = 0;
    bool overflow = false;

    if (q < ps->end && *q == '-') {
        negative = true;
        q++;
    }
    if (q >= ps->end || *q < '0' || *q > '9')
        return fail(ps, "invalid number");
    if (*q == '0' && q + 1 < ps->end && q[1] >= '0' && q[1] <= '9')
        return fail(ps, "leading zero in number");
    while (q < ps->end && *q >= '0' && *q <= '9') {
        unsigned d = (unsigned)(*q - '0');
        if (mag > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            mag = mag * 10 + d;
        q++;
    }
    if (q < ps->end && *q == '.') {
        integral = false;
        q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return fail(ps, "invalid number: digits expected after '.'");
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        integral = false;
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return fail(ps, "invalid number: digits expected in exponent");
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    ps->p = q;
    if (integral && !overflow &&
        (negative ? mag <= (uint64_t)INT64_MAX + 1 : mag <= INT64_MAX)) {
        out->kind = FL_JSON_INT;
        out->u.i = negative ? (int64_t)(0 - mag) : (int64_t)mag;
        return 0;
    }
    /* strtod needs a terminated copy; numbers are short. */
    char tmp[64];
    size_t n = (size_t)(q - s);
    if (n >= sizeof(tmp))
        return fail(ps, "number literal too long");
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    out->kind = FL_JSON_DOUBLE;
    out->u.d = strtod(tmp, NULL);
    if (!isfinite(out->u.d))
        return fail(ps, "number out of range");
    return 0;
}

static int push_member(struct parser *ps, struct fl_json_member **slot)
{
    /* The scratch stack counts against the arena's budget too. */
    int rc =
        fl_vec_reserve((void **)&ps->stack, &ps->stack_cap, ps->stack_len + 1,
                       sizeof(*ps->stack), ps->arena->budget);
    if (rc != 0) {
        if (ps->rc == 0) {
            ps->rc = rc;
            ps->why = "out of memory";
        }
        return ps->rc;
    }
    *slot = &ps->stack[ps->stack_len++];
    return 0;
}

static int parse_array(struct parser *ps, struct fl_json *out)
{
    size_t base = ps->stack_len;
    size_t count;

    ps->p++; /* '[' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        out->kind = FL_JSON_ARRAY;
        out->u.array.items = NULL;
        out->u.array.count = 0;
        return 0;
    }
    for (;;) {
        struct fl_json_member *m;
        struct fl_json v;
        skip_ws(ps);
        if (parse_value(ps, &v) != 0)
            return ps->rc;
        if (push_member(ps, &m) != 0)
            return ps->rc;
        m->key.ptr = NULL;
        m->key.len = 0;
        m->value = v;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail(ps, "unterminated array");
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == ']') {
            ps->p++;
            break;
        }
        return fail(ps, "expected ',' or ']' in array");
    }
    count = ps->stack_len - base;
    out->kind = FL_JSON_ARRAY;
    out->u.array.items =
        fl_arena_alloc(ps->arena, count * sizeof(struct fl_json));
    if (out->u.array.items == NULL)
        return fail_alloc(ps);
    for (size_t i = 0; i < count; i++)
        out->u.array.items[i] = ps->stack[base + i].value;
    out->u.array.count = count;
    ps->stack_len = base;
    return 0;
}

static int parse_object(struct parser *ps, struct fl_json *out)
{
    size_t base = ps->stack_len;
    size_t count;

    ps->p++; /* '{' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        out->kind = FL_JSON_OBJECT;
        out->u.object.members = NULL;
        out->u.object.count = 0;
        return 0;
    }
    for (;;) {
        struct fl_json_member *m;
        struct fl_str key;
        struct fl_json v;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"')
            return fail(ps, "expected a string key in object");
        if (parse_string(ps, &key) != 0)
            return ps->rc;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return fail(ps, "expected ':' after object key");
        ps->p++;
        skip_ws(ps);
        if (parse_value(ps, &v) != 0)
            return ps->rc;
        if (push_member(ps, &m) != 0)
            return ps->rc;
        m->key = key;
        m->value = v;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail(ps, "unterminated object");
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == '}') {
            ps->p++;
            break;
        }
        return fail(ps, "expected ',' or '}' in object");
    }
    count = ps->stack_len - base;
    out->kind = FL_JSON_OBJECT;
    out->u.object.members =
        fl_arena_alloc(ps->arena, count * sizeof(struct fl_json_member));
    if (out->u.object.members == NULL)
        return fail_alloc(ps);
    memcpy(out->u.object.members, ps->stack + base,
           count * sizeof(struct fl_json_member));
    out->u.object.count = count;
    ps->stack_len = base;
    return 0;
}

static int parse_value(struct parser *ps, struct fl_json *out)
{
    int rc;

    if (ps->p >= ps->end)
        return fail(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{':
    case '[':
        if (++ps->depth > FL_JSON_MAX_DEPTH)
            return fail(ps, "nesting too deep");
        rc = *ps->p == '{' ? parse_object(ps, out) : parse_array(ps, out);
        ps->depth--;
        return rc;
    case '"':
        out->kind = FL_JSON_STRING;
        return parse_string(ps, &out->u.s);
    case 't':
        out->kind = FL_JSON_BOOL;
        out->u.b = true;
        return expect_word(ps, "true", 4);
    case 'f':
        out->kind = FL_JSON_BOOL;
        out->u.b = false;
        return expect_word(ps, "false", 5);
    case 'n':
        out->kind = FL_JSON_NULL;
        return expect_word(ps, "null", 4);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps, out);
        return fail(ps, "unexpected character");
    }
}

int fl_json_parse(struct fl_arena *arena, const char *text, size_t len,
                  struct fl_json *out, const char **why, size_t *where)
{
    struct parser ps = {
        .p = text,
        .start = text,
        .end = text + len,
        .arena = arena,
    };

    skip_ws(&ps);
    if (parse_value(&ps, out) == 0) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            fail(&ps, "unexpected text after the JSON value");
    }
    fl_vec_free((void **)&ps.stack, &ps.stack_cap, sizeof(*ps.stack),
                arena->budget);
    if (ps.rc != 0) {
        if (why)
            *why = ps.why;
        if (where)
            *where = (size_t)(ps.p - ps.start);
    }
    return ps.rc;
}

const struct fl_json *fl_json_get(const struct fl_json *object, const char *key)
{
    if (object->kind != FL_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < object->u.object.count; i++) {
        if (fl_str_eq(object->u.object.members[i].key, key))
            return &object->u.object.members[i].value;
    }
    return NULL;
}

bool fl_json_equal(const struct fl_json *a, const struct fl_json *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case FL_JSON_NULL:
        return true;
    case FL_JSON_BOOL:
        return a->u.b == b->u.b;
    case FL_JSON_INT:
        return a->u.i == b->u.i;
    case FL_JSON_DOUBLE:
        return a->u.d == b->u.d;
    case FL_JSON_STRING:
        return fl_str_same(a->u.s, b->u.s);
    case FL_JSON_ARRAY:
        if (a->u.array.count != b->u.array.count)
            return false;
        for (size_t i = 0; i < a->u.array.count; i++) {
            if (!fl_json_equal(&a->u.array.items[i], &b->u.array.items[i]))
                return false;
        }
        return true;
    case FL_JSON_OBJECT:
        if (a->u.object.count != b->u.object.count)
            return false;
        for (size_t i = 0; i < a->u.object.count; i++) {
            const struct fl_json_member *ma = &a->u.object.members[i];
            const struct fl_json_member *mb = &b->u.object.members[i];
            if (!fl_str_same(ma->key, mb->key) ||
                !fl_json_equal(&ma->value, &mb->value))
                return false;
        }
        return true;
    }
    return false;
}

uint64_t fl_json_hash(const struct fl_json *v)
{
    uint64_t h = fl_hash_u64((uint64_t)v->kind + 1);

    switch (v->kind) {
    case FL_JSON_NULL:
        break;
    case FL_JSON_BOOL:
        h ^= fl_hash_u64(v->u.b ? 2 : 1);
        break;
    case FL_JSON_INT:
        h ^= fl_hash_u64((uint64_t)v->u.i);
        break;
    case FL_JSON_DOUBLE: {
        double d = v->u.d == 0 ? 0.0 : v->u.d; /* -0.0 equals 0.0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        h ^= fl_hash_u64(bits);
        break;
    }
    case FL_JSON_STRING:
        h ^= fl_hash_bytes(v->u.s.ptr, v->u.s.len, 7);
        break;
    case FL_JSON_ARRAY:
        for (size_t i = 0; i < v->u.array.count; i++)
            h = fl_hash_u64(h * 31 + fl_json_hash(&v->u.array.items[i]));
        break;
    case FL_JSON_OBJECT:
        for (size_t i = 0; i < v->u.object.count; i++) {
            const struct fl_json_member *m = &v->u.object.members[i];
            h = fl_hash_u64(h * 31 + fl_hash_bytes(m->key.ptr, m->key.len, 3));
            h = fl_hash_u64(h * 31 + fl_json_hash(&m->value));
        }
        break;
    }
    return h;
}

void fl_json_write(struct fl_buf *b, const struct fl_json *v)
{
    switch (v->kind) {
    case FL_JSON_NULL:
        fl_buf_adds(b, "null");
        break;
    case FL_JSON_BOOL:
        fl_buf_adds(b, v->u.b ? "true" : "false");
        break;
    case FL_JSON_INT:
        fl_buf_printf(b, "%lld", (long long)v->u.i);
        break;
    case FL_JSON_DOUBLE: {
        size_t start = b->len;
        fl_buf_printf(b, "%.17g", v->u.d);
        /* "%g" drops the fraction of whole numbers, and "1" would parse
         * back as an integer, which does not equal the double 1.0. */
        if (!b->failed &&
            strspn(b->data + start, "-0123456789") == b->len - start)
            fl_buf_adds(b, ".0");
        break;
    }
    case FL_JSON_STRING:
        fl_buf_add_json_string(b, v->u.s.ptr, v->u.s.len);
        break;
    case FL_JSON_ARRAY:
        fl_buf_addc(b, '[');
        for (size_t i = 0; i < v->u.array.count; i++) {
            if (i > 0)
                fl_buf_addc(b, ',');
            fl_json_write(b, &v->u.array.items[i]);
        }
        fl_buf_addc(b, ']');
        break;
    case FL_JSON_OBJECT:
        fl_buf_addc(b, '{');
        for (size_t i = 0; i < v->u.object.count; i++) {
            const struct fl_json_member *m = &v->u.object.members[i];
            if (i > 0)
                fl_buf_addc(b, ',');
            fl_buf_add_json_string(b, m->key.ptr, m->key.len);
            fl_buf_addc(b, ':');
            fl_json_write(b, &m->value);
        }
        fl_buf_addc(b, '}');
        break;
    }
}

int fl_json_copy(struct fl_arena *arena, const struct fl_json *v,
                 struct fl_json *out)
{
    *out = *v;
    switch (v->kind) {
    case FL_JSON_STRING: {
        char *s = fl_arena_strndup(arena, v->u.s.ptr, v->u.s.len);
        if (s == NULL)
            return arena->error;
        out->u.s.ptr = s;
        return 0;
    }
    case FL_JSON_ARRAY: {
        size_t n = v->u.array.count;
        out->u.array.items = NULL;
        if (n == 0)
            return 0;
        out->u.array.items = fl_arena_alloc(arena, n * sizeof(struct fl_json));
        if (out->u.array.items == NULL)
            return arena->error;
        for (size_t i = 0; i < n; i++) {
            int rc = fl_json_copy(arena, &v->u.array.items[i],
                                  &out->u.array.items[i]);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    case FL_JSON_OBJECT: {
        size_t n = v->u.object.count;
        out->u.object.members = NULL;
        if (n == 0)
            return 0;
        out->u.object.members =
            fl_arena_alloc(arena, n * sizeof(struct fl_json_member));
        if (out->u.object.members == NULL)
            return arena->error;
        for (size_t i = 0; i < n; i++) {
            const struct fl_json_member *m = &v->u.object.members[i];
            struct fl_json_member *c = &out->u.object.members[i];
            char *key = fl_arena_strndup(arena, m->key.ptr, m->key.len);
            if (key == NULL)
                return arena->error;
            c->key.ptr = key;
            c->key.len = m->key.len;
            int rc = fl_json_copy(arena, &m->value, &c->value);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    default:
        return 0;
    }
}

const char *fl_json_kind_name(enum fl_json_kind kind)
{
    switch (kind) {
    case FL_JSON_NULL:
        return "null";
    case FL_JSON_BOOL:
        return "boolean";
    case FL_JSON_INT:
        return "integer";
    case FL_JSON_DOUBLE:
        return "number";
    case FL_JSON_STRING:
        return "string";
    case FL_JSON_ARRAY:
        return "array";
    case FL_JSON_OBJECT:
        return "object";
    }
    return "unknown";
}
