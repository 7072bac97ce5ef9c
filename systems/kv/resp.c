/*
 * RESP2 request parser and reply encoder (see resp.h for the accepted
 * syntax).
 *
 * The parser is a resumable state machine over the caller's buffer. Its
 * progress is stored as offsets from the first byte of the current request,
 * never as pointers, because the caller may move its buffer between calls.
 * Every decision depends only on bytes at or before the position being
 * examined, and the checks run in byte order. That is why a request split
 * anywhere yields the same commands and the same error text as the whole
 * request: a split only adds "need more bytes" stops in between.
 */
#include "resp.h"

#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2^64 - 1, the largest length that fits a uint64_t, has 20 digits. */
#define MAX_LENGTH_DIGITS 20

enum parse_state {
    STATE_START,      /* nothing of the request is parsed yet */
    STATE_INLINE,     /* searching for the LF that ends an inline command */
    STATE_ARG_HEADER, /* array: expecting the "$LEN\r\n" of argv[argc] */
    STATE_ARG_DATA,   /* array: expecting argv[argc]'s bytes and CRLF */
};

/*
 * Results of the internal parsing steps besides negative error codes. A
 * step that returns MORE has stored its progress, if any, in the parser.
 */
enum {
    MORE = 0, /* the data ends before the step does */
    DONE = 1, /* the step is complete */
    SKIP = 2, /* an empty line or empty array, consumed without a command */
};

struct kv_resp_parser {
    struct kv_resp_limits limits;

    enum parse_state state;
    size_t pos;      /* offset where parsing resumes */
    size_t nargs;    /* array: argument count from the header */
    size_t argc;     /* array: arguments complete so far */
    size_t bulk_len; /* STATE_ARG_DATA: length of argv[argc] */

    /* argv[i].len and offsets[i] are filled while an array request is
     * parsed, and argv[i].ptr once it is complete. */
    struct fl_str *argv;
    size_t *offsets;
    size_t args_cap;

    char *scratch; /* decoded quoted inline arguments */
    size_t scratch_cap;

    int error; /* 0, or the sticky error code */
    char msg[192];
};

/* ---- errors ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int
fail(struct kv_resp_parser *p, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
    va_end(ap);
    fl_scrub_controls(p->msg);
    p->error = code;
    return code;
}

/* Writes c as a message shows it: 'x', "'", CR, LF or byte 0xHH. */
static const char *show_byte(char c, char out[16])
{
    unsigned char u = (unsigned char)c;

    if (c == '\r')
        return "CR";
    if (c == '\n')
        return "LF";
    if (c == '\'')
        return "\"'\"";
    if (u >= 0x20 && u < 0x7f)
        snprintf(out, 16, "'%c'", c);
    else
        snprintf(out, 16, "byte 0x%02x", u);
    return out;
}

/* Writes a byte count as "512 MiB", "64 KiB", "1 byte" or "1000 bytes". */
static const char *show_size(size_t bytes, char out[32])
{
    if (bytes >= (1u << 20) && bytes % (1u << 20) == 0)
        snprintf(out, 32, "%zu MiB", bytes >> 20);
    else if (bytes >= (1u << 10) && bytes % (1u << 10) == 0)
        snprintf(out, 32, "%zu KiB", bytes >> 10);
    else
        snprintf(out, 32, "%zu byte%s", bytes, bytes == 1 ? "" : "s");
    return out;
}

/* Names the length being parsed: the array's or argument argi's (1-based). */
static const char *length_name(size_t argi, char out[48])
{
    if (argi == 0)
        snprintf(out, 48, "array length");
    else
        snprintf(out, 48, "bulk length of argument %zu", argi);
    return out;
}

/* ---- lifecycle --------------------------------------------------------- */

void kv_resp_limits_default(struct kv_resp_limits *limits)
{
    limits->max_args = KV_RESP_DEFAULT_MAX_ARGS;
    limits->max_bulk_len = KV_RESP_DEFAULT_MAX_BULK_LEN;
    limits->max_inline_len = KV_RESP_DEFAULT_MAX_INLINE_LEN;
    limits->max_request_len = KV_RESP_DEFAULT_MAX_REQUEST_LEN;
}

int kv_resp_parser_new(struct kv_resp_parser **out,
                       const struct kv_resp_limits *limits)
{
    struct kv_resp_parser *p;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    if (limits == NULL)
        kv_resp_limits_default(&p->limits);
    else
        p->limits = *limits;
    if (p->limits.max_args == 0 || p->limits.max_bulk_len == 0 ||
        p->limits.max_inline_len == 0 || p->limits.max_request_len == 0) {
        free(p);
        return FL_EINPUT;
    }
    *out = p;
    return 0;
}

void kv_resp_parser_free(struct kv_resp_parser *p)
{
    if (p == NULL)
        return;
    free(p->argv);
    free(p->offsets);
    free(p->scratch);
    free(p);
}

/* Starts the next request but keeps the allocations and any error. */
static void start_request(struct kv_resp_parser *p)
{
    p->state = STATE_START;
    p->pos = 0;
    p->nargs = 0;
    p->argc = 0;
    p->bulk_len = 0;
}

void kv_resp_parser_reset(struct kv_resp_parser *p)
{
    start_request(p);
    p->error = 0;
    p->msg[0] = '\0';
}

const char *kv_resp_parser_error(const struct kv_resp_parser *p)
{
    return p->error != 0 ? p->msg : "";
}

/* Makes room for count arguments. Leaves the parser unchanged on failure. */
static int reserve_args(struct kv_resp_parser *p, size_t count)
{
    struct fl_str *argv;
    size_t *offsets;
    size_t cap;

    if (count <= p->args_cap)
        return 0;
    /* Grow by doubling as arguments actually arrive, never by the count a
     * header declares, so a header alone cannot make the parser allocate. */
    cap = p->args_cap < 8 ? 8 : p->args_cap * 2;
    if (cap > p->limits.max_args)
        cap = p->limits.max_args;
    if (cap < count)
        cap = count;
    argv = realloc(p->argv, cap * sizeof(*argv));
    if (argv == NULL)
        return -ENOMEM;
    p->argv = argv;
    offsets = realloc(p->offsets, cap * sizeof(*offsets));
    if (offsets == NULL)
        return -ENOMEM;
    p->offsets = offsets;
    p->args_cap = cap;
    return 0;
}

/* ---- array requests ---------------------------------------------------- */

/*
 * Parses the decimal length that starts at data[at] and ends with CRLF, for
 * the array header (argi 0) or the header of argument argi. Returns DONE
 * with the value, its digits for messages and the offset just past the LF.
 * A value of 20 digits above UINT64_MAX is stored as UINT64_MAX.
 */
static int parse_length(struct kv_resp_parser *p, const char *data, size_t len,
                        size_t at, size_t argi, uint64_t *value,
                        struct fl_str *digits, size_t *end)
{
    char name[48];
    char shown[16];
    bool negative = false;
    size_t first;
    size_t i = at;
    uint64_t v = 0;

    if (i < len && data[i] == '-') {
        negative = true;
        i++;
    }
    first = i;
    for (; i < len && data[i] >= '0' && data[i] <= '9'; i++) {
        unsigned digit = (unsigned)(data[i] - '0');

        /* "0" alone is the only length that may start with 0, and "-0" is
         * not a length. */
        if (data[first] == '0' && (i > first || negative))
            return fail(p, FL_EPROTO, "%s has a leading zero",
                        length_name(argi, name));
        if (i - first == MAX_LENGTH_DIGITS)
            return fail(p, FL_EPROTO, "%s has more than %d digits",
                        length_name(argi, name), MAX_LENGTH_DIGITS);
        if (v > (UINT64_MAX - digit) / 10)
            v = UINT64_MAX;
        else
            v = v * 10 + digit;
    }
    if (i == len)
        return MORE;

    if (data[i] == '\n')
        return fail(p, FL_EPROTO, "missing CR before the LF after the %s",
                    length_name(argi, name));
    if (data[i] != '\r')
        return fail(p, FL_EPROTO, "invalid character %s in the %s",
                    show_byte(data[i], shown), length_name(argi, name));
    if (i == first)
        return fail(p, FL_EPROTO, "%s has no digits", length_name(argi, name));
    if (i + 1 == len)
        return MORE;
    if (data[i + 1] != '\n')
        return fail(p, FL_EPROTO, "expected LF after the CR of the %s, got %s",
                    length_name(argi, name), show_byte(data[i + 1], shown));

    if (negative && v == 1 && argi == 0)
        return fail(p, FL_EPROTO,
                    "null array (*-1) is not allowed in a request");
    if (negative && v == 1)
        return fail(p, FL_EPROTO,
                    "argument %zu is a null bulk string ($-1), which is not "
                    "allowed in a request",
                    argi);
    if (negative)
        return fail(p, FL_EPROTO, "%s is negative: -%.*s",
                    length_name(argi, name), (int)(i - first), data + first);
    *value = v;
    digits->ptr = data + first;
    digits->len = i - first;
    *end = i + 2;
    return DONE;
}

/* Parses "*COUNT\r\n" at the start of data. Returns DONE in
 * STATE_ARG_HEADER, or SKIP with *end for an empty array. */
static int parse_array_header(struct kv_resp_parser *p, const char *data,
                              size_t len, size_t *end)
{
    struct fl_str digits;
    uint64_t count;
    int rc;

    rc = parse_length(p, data, len, 1, 0, &count, &digits, end);
    if (rc != DONE)
        return rc;
    if (count == 0)
        return SKIP;
    if (count > p->limits.max_args)
        return fail(p, FL_EPROTO,
                    "array length %.*s exceeds the limit of %zu arguments",
                    (int)digits.len, digits.ptr, p->limits.max_args);
    p->nargs = (size_t)count;
    p->pos = *end;
    p->state = STATE_ARG_HEADER;
    return DONE;
}

/* Parses "$LEN\r\n" at p->pos, the header of argument p->argc + 1. */
static int parse_arg_header(struct kv_resp_parser *p, const char *data,
                            size_t len)
{
    size_t argi = p->argc + 1;
    struct fl_str digits;
    char shown[16];
    char limit[32];
    uint64_t bulk_len;
    size_t end;
    int rc;

    if (p->pos == len)
        return MORE;
    if (data[p->pos] != '$')
        return fail(p, FL_EPROTO,
                    "expected '$' at the start of argument %zu of %zu, got %s",
                    argi, p->nargs, show_byte(data[p->pos], shown));
    rc = parse_length(p, data, len, p->pos + 1, argi, &bulk_len, &digits, &end);
    if (rc != DONE)
        return rc;

    if (bulk_len > p->limits.max_bulk_len)
        return fail(p, FL_EPROTO,
                    "bulk length %.*s of argument %zu exceeds the limit of %s",
                    (int)digits.len, digits.ptr, argi,
                    show_size(p->limits.max_bulk_len, limit));
    /* Checks end + bulk_len + 2 > max_request_len without overflow. */
    if (bulk_len > p->limits.max_request_len ||
        p->limits.max_request_len - bulk_len < end ||
        p->limits.max_request_len - bulk_len - end < 2)
        return fail(p, FL_EPROTO,
                    "request exceeds the limit of %s: its argument %zu of %zu "
                    "starts at offset %zu and has %.*s bytes",
                    show_size(p->limits.max_request_len, limit), argi, p->nargs,
                    end, (int)digits.len, digits.ptr);
    rc = reserve_args(p, argi);
    if (rc != 0)
        return rc;

    p->bulk_len = (size_t)bulk_len;
    p->pos = end;
    p->state = STATE_ARG_DATA;
    return DONE;
}

/* Takes the p->bulk_len bytes at p->pos and the CRLF after them. */
static int parse_arg_data(struct kv_resp_parser *p, const char *data,
                          size_t len)
{
    size_t argi = p->argc + 1;
    char shown[16];
    size_t tail;

    if (len - p->pos < p->bulk_len)
        return MORE;
    tail = p->pos + p->bulk_len;
    if (tail < len && data[tail] != '\r')
        return fail(p, FL_EPROTO,
                    "expected CRLF after the %zu bytes of argument %zu, got %s",
                    p->bulk_len, argi, show_byte(data[tail], shown));
    if (tail + 1 < len && data[tail + 1] != '\n')
        return fail(p, FL_EPROTO,
                    "expected LF after the CR that ends argument %zu, got %s",
                    argi, show_byte(data[tail + 1], shown));
    if (len - tail < 2)
        return MORE;

    p->offsets[p->argc] = p->pos;
    p->argv[p->argc].ptr = NULL;
    p->argv[p->argc].len = p->bulk_len;
    p->argc++;
    p->pos = tail + 2;
    p->state = STATE_ARG_HEADER;
    return DONE;
}

/* Parses or continues an array request. Returns DONE or SKIP with *end. */
static int parse_array(struct kv_resp_parser *p, const char *data, size_t len,
                       size_t *end)
{
    int rc;

    if (p->state == STATE_START) {
        rc = parse_array_header(p, data, len, end);
        if (rc != DONE)
            return rc;
    }
    for (;;) {
        if (p->state == STATE_ARG_HEADER && p->argc == p->nargs)
            break;
        if (p->state == STATE_ARG_HEADER)
            rc = parse_arg_header(p, data, len);
        else
            rc = parse_arg_data(p, data, len);
        if (rc != DONE)
            return rc;
    }

    /* Only now is data known to stay where it is until the caller is done
     * with the command. */
    for (size_t i = 0; i < p->argc; i++)
        p->argv[i].ptr = data + p->offsets[i];
    *end = p->pos;
    return DONE;
}

/* ---- inline commands --------------------------------------------------- */

static bool is_separator(char c)
{
    return c == ' ' || c == '\t';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes the escape that starts at line[j], a backslash inside double
 * quotes with at least one byte after it, into *out. Stores in *next the
 * offset after the escape.
 */
static int decode_escape(struct kv_resp_parser *p, const char *line, size_t n,
                         size_t j, char *out, size_t *next)
{
    char shown[16];
    int high;
    int low;

    *next = j + 2;
    switch (line[j + 1]) {
    case '\\':
    case '"':
    case '\'':
        *out = line[j + 1];
        return 0;
    case 'n':
        *out = '\n';
        return 0;
    case 'r':
        *out = '\r';
        return 0;
    case 't':
        *out = '\t';
        return 0;
    case 'a':
        *out = '\a';
        return 0;
    case 'b':
        *out = '\b';
        return 0;
    case 'x':
        high = j + 2 < n ? hex_value(line[j + 2]) : -1;
        low = j + 3 < n ? hex_value(line[j + 3]) : -1;
        if (high < 0 || low < 0)
            return fail(p, FL_EPROTO,
                        "invalid escape \\x in a double-quoted argument: "
                        "expected two hex digits");
        *out = (char)(unsigned char)(high * 16 + low);
        *next = j + 4;
        return 0;
    default:
        return fail(p, FL_EPROTO,
                    "invalid escape in a double-quoted argument: backslash "
                    "followed by %s",
                    show_byte(line[j + 1], shown));
    }
}

/*
 * Decodes the quoted argument that starts at line[*i] into out, which has
 * room for n bytes, and stores its length in *out_len. Advances *i past the
 * closing quote.
 */
static int decode_quoted(struct kv_resp_parser *p, const char *line, size_t n,
                         size_t *i, char *out, size_t *out_len)
{
    char quote = line[*i];
    const char *kind = quote == '"' ? "double" : "single";
    char shown[16];
    size_t j = *i + 1;
    size_t k = 0;
    int rc;

    for (;;) {
        if (j == n)
            return fail(p, FL_EPROTO,
                        "unterminated %s-quoted argument in an inline command",
                        kind);
        if (line[j] == quote) {
            j++;
            break;
        }
        if (line[j] == '\\' && j + 1 < n && quote == '"') {
            rc = decode_escape(p, line, n, j, &out[k], &j);
            if (rc != 0)
                return rc;
            k++;
            continue;
        }
        if (line[j] == '\\' && j + 1 < n && line[j + 1] == '\'') {
            out[k++] = '\'';
            j += 2;
            continue;
        }
        out[k++] = line[j++];
    }

    if (j < n && !is_separator(line[j]))
        return fail(p, FL_EPROTO,
                    "a closing %s quote must be followed by a space or the "
                    "line end, got %s",
                    kind, show_byte(line[j], shown));
    *i = j;
    *out_len = k;
    return 0;
}

/* Makes the scratch buffer hold at least size bytes. */
static int reserve_scratch(struct kv_resp_parser *p, size_t size)
{
    char *scratch;

    if (size <= p->scratch_cap)
        return 0;
    scratch = realloc(p->scratch, size);
    if (scratch == NULL)
        return -ENOMEM;
    p->scratch = scratch;
    p->scratch_cap = size;
    return 0;
}

/* Splits the inline line[0, n), its line end removed, into p->argv. */
static int split_inline(struct kv_resp_parser *p, const char *line, size_t n)
{
    size_t scratch_used = 0;
    size_t i = 0;
    int rc;

    p->argc = 0;
    for (;;) {
        size_t start;

        while (i < n && is_separator(line[i]))
            i++;
        if (i == n)
            return 0;
        if (p->argc == p->limits.max_args)
            return fail(p, FL_EPROTO,
                        "inline command has more than %zu arguments",
                        p->limits.max_args);
        rc = reserve_args(p, p->argc + 1);
        if (rc != 0)
            return rc;

        if (line[i] == '"' || line[i] == '\'') {
            size_t arg_len = 0;

            /* Decoded arguments are never longer than the line, so they
             * all fit in one buffer of n bytes, which does not move while
             * argv points into it. */
            if (scratch_used == 0) {
                rc = reserve_scratch(p, n);
                if (rc != 0)
                    return rc;
            }
            rc = decode_quoted(p, line, n, &i, p->scratch + scratch_used,
                               &arg_len);
            if (rc != 0)
                return rc;
            p->argv[p->argc].ptr = p->scratch + scratch_used;
            p->argv[p->argc].len = arg_len;
            scratch_used += arg_len;
            p->argc++;
            continue;
        }

        start = i;
        while (i < n && !is_separator(line[i]))
            i++;
        p->argv[p->argc].ptr = line + start;
        p->argv[p->argc].len = i - start;
        p->argc++;
    }
}

/* Parses or continues an inline command. Returns DONE or SKIP with *end. */
static int parse_inline(struct kv_resp_parser *p, const char *data, size_t len,
                        size_t *end)
{
    size_t max = p->limits.max_inline_len;
    size_t window = len < max ? len : max;
    char limit[32];
    const char *lf = NULL;
    const char *cr;
    size_t n;
    int rc;

    /* The first p->pos bytes contain no LF, so each byte is searched once
     * however many pieces the line arrives in. */
    if (p->pos < window)
        lf = memchr(data + p->pos, '\n', window - p->pos);
    if (lf == NULL && len >= max)
        return fail(p, FL_EPROTO,
                    "inline command has no line end within the limit of %s",
                    show_size(max, limit));
    if (lf == NULL) {
        p->state = STATE_INLINE;
        p->pos = len;
        return MORE;
    }

    n = (size_t)(lf - data);
    *end = n + 1;
    if (n > 0 && data[n - 1] == '\r')
        n--;
    cr = memchr(data, '\r', n);
    if (cr != NULL)
        return fail(p, FL_EPROTO,
                    "inline command contains a CR at offset %zu that does not "
                    "end the line",
                    (size_t)(cr - data));
    rc = split_inline(p, data, n);
    if (rc != 0)
        return rc;
    return p->argc == 0 ? SKIP : DONE;
}

/* ---- requests ---------------------------------------------------------- */

int kv_resp_parse(struct kv_resp_parser *p, const char *data, size_t len,
                  struct kv_resp_cmd *cmd, size_t *consumed)
{
    size_t base = 0;

    cmd->argc = 0;
    cmd->argv = NULL;
    *consumed = 0;
    if (p->error != 0)
        return p->error;
    if (len < p->pos)
        return fail(p, FL_EINPUT,
                    "the data has %zu bytes, fewer than the %zu that earlier "
                    "calls parsed; remove only the consumed bytes",
                    len, p->pos);

    for (;;) {
        const char *request = data + base;
        size_t avail = len - base;
        size_t end = 0;
        int rc;

        if (p->state == STATE_START && avail == 0)
            rc = MORE;
        else if (p->state == STATE_INLINE ||
                 (p->state == STATE_START && request[0] != '*'))
            rc = parse_inline(p, request, avail, &end);
        else
            rc = parse_array(p, request, avail, &end);

        if (rc == SKIP) {
            base += end;
            start_request(p);
            continue;
        }
        if (rc == DONE) {
            cmd->argc = p->argc;
            cmd->argv = p->argv;
            *consumed = base + end;
            start_request(p);
            return KV_RESP_COMMAND;
        }
        if (rc == MORE || rc == -ENOMEM) {
            *consumed = base;
            return rc == MORE ? KV_RESP_NEED_MORE : rc;
        }
        return rc;
    }
}

/* ---- command names ----------------------------------------------------- */

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool kv_resp_arg_is(struct fl_str arg, const char *word)
{
    size_t n = strlen(word);

    if (arg.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(arg.ptr[i]) != ascii_lower(word[i]))
            return false;
    }
    return true;
}

bool kv_resp_is(const struct kv_resp_cmd *cmd, const char *name)
{
    return cmd->argc > 0 && kv_resp_arg_is(cmd->argv[0], name);
}

/* ---- replies ----------------------------------------------------------- */

/* Appends TYPE, then text[0, len) with each CR and LF turned into a space,
 * then CRLF. */
static void add_line(struct fl_buf *b, char type, const char *text, size_t len)
{
    size_t start;

    fl_buf_addc(b, type);
    start = b->len;
    fl_buf_add(b, text, len);
    if (!b->failed) {
        for (size_t i = start; i < b->len; i++) {
            if (b->data[i] == '\r' || b->data[i] == '\n')
                b->data[i] = ' ';
        }
    }
    fl_buf_add(b, "\r\n", 2);
}

void kv_resp_add_simple(struct fl_buf *b, const char *text)
{
    add_line(b, '+', text, strlen(text));
}

void kv_resp_add_error(struct fl_buf *b, const char *text)
{
    add_line(b, '-', text, strlen(text));
}

void kv_resp_add_errorf(struct fl_buf *b, const char *fmt, ...)
{
    char small[256];
    char *text = small;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n >= sizeof(small)) {
        text = malloc((size_t)n + 1);
        if (text == NULL) {
            b->failed = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    add_line(b, '-', text, (size_t)n);
    if (text != small)
        free(text);
}

void kv_resp_add_int(struct fl_buf *b, int64_t n)
{
    fl_buf_printf(b, ":%" PRId64 "\r\n", n);
}

void kv_resp_add_bulk(struct fl_buf *b, const void *data, size_t len)
{
    fl_buf_printf(b, "$%zu\r\n", len);
    fl_buf_add(b, data, len);
    fl_buf_add(b, "\r\n", 2);
}

void kv_resp_add_null(struct fl_buf *b)
{
    fl_buf_add(b, "$-1\r\n", 5);
}

void kv_resp_add_array(struct fl_buf *b, size_t count)
{
    fl_buf_printf(b, "*%zu\r\n", count);
}
