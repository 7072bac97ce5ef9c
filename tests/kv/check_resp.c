/*
 * Tests for the RESP2 request parser and reply encoder of fl-kvd: every
 * request shape, pipelining, requests split at every byte offset, each
 * limit at and past its boundary, each malformed input with its exact error,
 * and the encoder's output byte for byte.
 *
 * The parser always receives a copy of the unconsumed bytes in a block of
 * exactly their size, so a sanitizer build reports any read past them.
 */
#include "buf.h"
#include "error.h"
#include "resp.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

enum limits_id {
    LIMITS_DEFAULT,
    /* 4 arguments, 8-byte bulks, 16-byte lines and 40-byte requests */
    LIMITS_SMALL,
};

static struct kv_resp_limits make_limits(enum limits_id id)
{
    struct kv_resp_limits limits;

    kv_resp_limits_default(&limits);
    if (id == LIMITS_SMALL) {
        limits.max_args = 4;
        limits.max_bulk_len = 8;
        limits.max_inline_len = 16;
        limits.max_request_len = 40;
    }
    return limits;
}

static struct kv_resp_parser *new_parser(enum limits_id id)
{
    struct kv_resp_limits limits = make_limits(id);
    struct kv_resp_parser *p;

    ck_assert_int_eq(kv_resp_parser_new(&p, &limits), 0);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Returns a malloc'd copy of data[0, len) in a block of exactly len bytes
 * (1 when len is 0). */
static char *exact_copy(const char *data, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);

    ck_assert_ptr_nonnull(copy);
    if (len > 0)
        memcpy(copy, data, len);
    return copy;
}

/* Appends cmd to out as one JSON array of strings and a newline. */
static void add_command(struct fl_buf *out, const struct kv_resp_cmd *cmd)
{
    fl_buf_addc(out, '[');
    for (size_t i = 0; i < cmd->argc; i++) {
        if (i > 0)
            fl_buf_addc(out, ',');
        fl_buf_add_json_string(out, cmd->argv[i].ptr, cmd->argv[i].len);
    }
    fl_buf_adds(out, "]\n");
}

/*
 * Feeds stream[0, len) to a new parser the way a server does: the bytes
 * arrive in pieces that end at cuts[0] < cuts[1] < ... and at len, and after
 * every call the consumed bytes are dropped. Returns a malloc'd transcript:
 * one JSON array per command, then "need more: N bytes pending" or
 * "error CODE: MESSAGE".
 */
static char *feed(enum limits_id id, const char *stream, size_t len,
                  const size_t *cuts, size_t ncuts)
{
    struct kv_resp_parser *p = new_parser(id);
    struct fl_buf out;
    size_t start = 0;
    char *text;

    fl_buf_init(&out);
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;

        for (;;) {
            size_t avail = end - start;
            char *copy = exact_copy(stream + start, avail);
            struct kv_resp_cmd cmd;
            size_t consumed = 99;
            int rc;

            rc = kv_resp_parse(p, copy, avail, &cmd, &consumed);
            if (rc == KV_RESP_COMMAND)
                add_command(&out, &cmd);
            free(copy);
            if (rc < 0) {
                ck_assert_uint_eq(consumed, 0);
                fl_buf_printf(&out, "error %d: %s\n", rc,
                              kv_resp_parser_error(p));
                goto out;
            }
            ck_assert_uint_le(consumed, avail);
            start += consumed;
            if (rc == KV_RESP_NEED_MORE)
                break;
            ck_assert_int_eq(rc, KV_RESP_COMMAND);
            ck_assert_uint_gt(consumed, 0);
        }
    }
    fl_buf_printf(&out, "need more: %zu bytes pending\n", len - start);
out:
    kv_resp_parser_free(p);
    ck_assert(!out.failed);
    text = out.data;
    return text;
}

/* Returns the transcript of stream arriving in one piece. */
static char *feed_whole(enum limits_id id, const char *stream, size_t len)
{
    return feed(id, stream, len, NULL, 0);
}

/* Checks that stream parses to want whole, split at each offset, and one
 * byte at a time. */
static void check_every_split(enum limits_id id, const char *stream, size_t len,
                              const char *want)
{
    size_t *cuts = malloc((len > 0 ? len : 1) * sizeof(*cuts));
    char *got;

    ck_assert_ptr_nonnull(cuts);
    got = feed_whole(id, stream, len);
    ck_assert_str_eq(got, want);
    free(got);

    for (size_t k = 0; k <= len; k++) {
        got = feed(id, stream, len, &k, 1);
        ck_assert_msg(strcmp(got, want) == 0,
                      "split at offset %zu of %zu:\ngot:\n%swant:\n%s", k, len,
                      got, want);
        free(got);
    }

    for (size_t k = 0; k < len; k++)
        cuts[k] = k;
    got = feed(id, stream, len, cuts, len);
    ck_assert_msg(strcmp(got, want) == 0,
                  "one byte at a time:\ngot:\n%swant:\n%s", got, want);
    free(got);
    free(cuts);
}

/* Parses text, which must hold exactly one request, and checks its
 * arguments against want[0, argc). */
static void check_single(enum limits_id id, const char *text, size_t len,
                         const char *const *want, const size_t *want_len,
                         size_t argc)
{
    struct kv_resp_parser *p = new_parser(id);
    char *copy = exact_copy(text, len);
    struct kv_resp_cmd cmd;
    size_t consumed;

    ck_assert_int_eq(kv_resp_parse(p, copy, len, &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert_uint_eq(consumed, len);
    ck_assert_uint_eq(cmd.argc, argc);
    for (size_t i = 0; i < argc; i++) {
        size_t n = want_len != NULL ? want_len[i] : strlen(want[i]);

        ck_assert_msg(cmd.argv[i].len == n, "argument %zu: length %zu, not %zu",
                      i, cmd.argv[i].len, n);
        ck_assert_msg(memcmp(cmd.argv[i].ptr, want[i], n) == 0,
                      "argument %zu differs", i);
    }
    free(copy);
    kv_resp_parser_free(p);
}

#define STR_LEN(s) (sizeof(s) - 1)

/* ---- array requests ---------------------------------------------------- */

START_TEST(test_array_args_point_into_buffer)
{
    static const char text[] = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    struct kv_resp_parser *p = new_parser(LIMITS_DEFAULT);
    char *copy = exact_copy(text, STR_LEN(text));
    struct kv_resp_cmd cmd;
    size_t consumed;

    ck_assert_int_eq(kv_resp_parse(p, copy, STR_LEN(text), &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert_uint_eq(consumed, STR_LEN(text));
    ck_assert_uint_eq(cmd.argc, 2);
    ck_assert_ptr_eq(cmd.argv[0].ptr, copy + 8);
    ck_assert_uint_eq(cmd.argv[0].len, 3);
    ck_assert_ptr_eq(cmd.argv[1].ptr, copy + 17);
    ck_assert_uint_eq(cmd.argv[1].len, 1);
    ck_assert_str_eq(kv_resp_parser_error(p), "");
    free(copy);
    kv_resp_parser_free(p);
}
END_TEST

START_TEST(test_array_binary_and_empty_args)
{
    static const char text[] =
        "*4\r\n$3\r\nSET\r\n$0\r\n\r\n$6\r\na\r\n\0b*\r\n$2\r\n$1\r\n";
    static const char *const want[] = {"SET", "", "a\r\n\0b*", "$1"};
    static const size_t want_len[] = {3, 0, 6, 2};

    check_single(LIMITS_DEFAULT, text, STR_LEN(text), want, want_len, 4);
}
END_TEST

START_TEST(test_array_empty_is_skipped)
{
    static const char text[] = "*0\r\n*0\r\n*1\r\n$4\r\nPING\r\n";
    static const char alone[] = "*0\r\n";
    struct kv_resp_parser *p = new_parser(LIMITS_DEFAULT);
    struct kv_resp_cmd cmd;
    size_t consumed;

    ck_assert_int_eq(kv_resp_parse(p, text, STR_LEN(text), &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert_uint_eq(consumed, STR_LEN(text));
    ck_assert_uint_eq(cmd.argc, 1);
    ck_assert(kv_resp_is(&cmd, "PING"));

    ck_assert_int_eq(kv_resp_parse(p, alone, STR_LEN(alone), &cmd, &consumed),
                     KV_RESP_NEED_MORE);
    ck_assert_uint_eq(consumed, STR_LEN(alone));
    ck_assert_uint_eq(cmd.argc, 0);
    kv_resp_parser_free(p);
}
END_TEST

START_TEST(test_array_incomplete_needs_more)
{
    static const char text[] = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    struct kv_resp_parser *p = new_parser(LIMITS_DEFAULT);
    struct kv_resp_cmd cmd;
    size_t consumed;

    for (size_t n = 0; n < STR_LEN(text); n++) {
        char *copy = exact_copy(text, n);

        ck_assert_int_eq(kv_resp_parse(p, copy, n, &cmd, &consumed),
                         KV_RESP_NEED_MORE);
        ck_assert_uint_eq(consumed, 0);
        ck_assert_uint_eq(cmd.argc, 0);
        ck_assert_ptr_null(cmd.argv);
        free(copy);
    }
    ck_assert_int_eq(kv_resp_parse(p, text, STR_LEN(text), &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert_uint_eq(consumed, STR_LEN(text));
    kv_resp_parser_free(p);
}
END_TEST

START_TEST(test_array_max_args_boundary)
{
    static const char at_limit[] =
        "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n";
    static const char *const want[] = {"a", "b", "c", "d"};
    char *got;

    check_single(LIMITS_SMALL, at_limit, STR_LEN(at_limit), want, NULL, 4);
    got = feed_whole(LIMITS_SMALL, "*5\r\n", 4);
    ck_assert_str_eq(
        got, "error -1005: array length 5 exceeds the limit of 4 arguments\n");
    free(got);
}
END_TEST

START_TEST(test_array_default_max_args)
{
    struct fl_buf text;
    struct fl_buf want;
    char *got;

    fl_buf_init(&text);
    kv_resp_add_array(&text, 1024);
    for (int i = 0; i < 1024; i++)
        kv_resp_add_bulk(&text, "x", 1);
    ck_assert(!text.failed);
    fl_buf_init(&want);
    fl_buf_addc(&want, '[');
    for (int i = 0; i < 1024; i++)
        fl_buf_adds(&want, i == 0 ? "\"x\"" : ",\"x\"");
    fl_buf_adds(&want, "]\nneed more: 0 bytes pending\n");
    ck_assert(!want.failed);
    got = feed_whole(LIMITS_DEFAULT, text.data, text.len);
    ck_assert_str_eq(got, want.data);
    free(got);
    fl_buf_free(&want);
    fl_buf_free(&text);

    got = feed_whole(LIMITS_DEFAULT, "*1025\r\n", 7);
    ck_assert_str_eq(
        got,
        "error -1005: array length 1025 exceeds the limit of 1024 arguments\n");
    free(got);
}
END_TEST

START_TEST(test_bulk_len_boundary)
{
    static const char at_limit[] = "*2\r\n$3\r\nGET\r\n$8\r\n12345678\r\n";
    static const char *const want[] = {"GET", "12345678"};
    static const char over[] = "*2\r\n$3\r\nGET\r\n$9\r\n";
    char *got;

    check_single(LIMITS_SMALL, at_limit, STR_LEN(at_limit), want, NULL, 2);
    got = feed_whole(LIMITS_SMALL, over, STR_LEN(over));
    ck_assert_str_eq(got, "error -1005: bulk length 9 of argument 2 exceeds "
                          "the limit of 8 bytes\n");
    free(got);
}
END_TEST

START_TEST(test_bulk_len_default_limit)
{
    static const char at_limit[] = "*1\r\n$536870912\r\n";
    static const char over[] = "*1\r\n$536870913\r\n";
    char *got;

    /* 512 MiB is accepted: the parser waits for the data. */
    got = feed_whole(LIMITS_DEFAULT, at_limit, STR_LEN(at_limit));
    ck_assert_str_eq(got, "need more: 16 bytes pending\n");
    free(got);
    got = feed_whole(LIMITS_DEFAULT, over, STR_LEN(over));
    ck_assert_str_eq(got, "error -1005: bulk length 536870913 of argument 1 "
                          "exceeds the limit of 512 MiB\n");
    free(got);
}
END_TEST

START_TEST(test_request_len_boundary)
{
    /* 4 + 14 + 14 + 8 = 40 bytes, the LIMITS_SMALL maximum. */
    static const char at_limit[] =
        "*3\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$2\r\nab\r\n";
    static const char *const want[] = {"12345678", "12345678", "ab"};
    static const char over[] =
        "*3\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$3\r\nabc\r\n";
    char *got;

    ck_assert_uint_eq(STR_LEN(at_limit), 40);
    check_single(LIMITS_SMALL, at_limit, STR_LEN(at_limit), want, NULL, 3);
    got = feed_whole(LIMITS_SMALL, over, STR_LEN(over));
    ck_assert_str_eq(got, "error -1005: request exceeds the limit of 40 bytes: "
                          "its argument 3 of 3 starts at offset 36 and has 3 "
                          "bytes\n");
    free(got);
}
END_TEST

START_TEST(test_limits_default_values)
{
    struct kv_resp_limits limits;

    kv_resp_limits_default(&limits);
    ck_assert_uint_eq(limits.max_args, 1024);
    ck_assert_uint_eq(limits.max_bulk_len, 512u << 20);
    ck_assert_uint_eq(limits.max_inline_len, 64u << 10);
    ck_assert_uint_eq(limits.max_request_len, 1u << 30);
}
END_TEST

START_TEST(test_parser_new_rejects_zero_limit)
{
    struct kv_resp_parser *p = NULL;
    struct kv_resp_limits limits;

    for (int field = 0; field < 4; field++) {
        kv_resp_limits_default(&limits);
        if (field == 0)
            limits.max_args = 0;
        else if (field == 1)
            limits.max_bulk_len = 0;
        else if (field == 2)
            limits.max_inline_len = 0;
        else
            limits.max_request_len = 0;
        ck_assert_int_eq(kv_resp_parser_new(&p, &limits), FL_EINPUT);
        ck_assert_ptr_null(p);
    }
    ck_assert_int_eq(kv_resp_parser_new(&p, NULL), 0);
    kv_resp_parser_free(p);
    kv_resp_parser_free(NULL);
}
END_TEST

/* ---- inline commands --------------------------------------------------- */

START_TEST(test_inline_crlf_and_bare_lf)
{
    static const char *const ping[] = {"PING"};
    static const char *const get[] = {"GET", "k"};

    check_single(LIMITS_DEFAULT, "PING\r\n", 6, ping, NULL, 1);
    check_single(LIMITS_DEFAULT, "PING\n", 5, ping, NULL, 1);
    check_single(LIMITS_DEFAULT, "GET k\r\n", 7, get, NULL, 2);
}
END_TEST

START_TEST(test_inline_args_point_into_buffer)
{
    static const char text[] = "GET key\r\n";
    struct kv_resp_parser *p = new_parser(LIMITS_DEFAULT);
    char *copy = exact_copy(text, STR_LEN(text));
    struct kv_resp_cmd cmd;
    size_t consumed;

    ck_assert_int_eq(kv_resp_parse(p, copy, STR_LEN(text), &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert_ptr_eq(cmd.argv[0].ptr, copy);
    ck_assert_ptr_eq(cmd.argv[1].ptr, copy + 4);
    free(copy);
    kv_resp_parser_free(p);
}
END_TEST

START_TEST(test_inline_spaces_and_tabs_separate)
{
    static const char text[] = "  SET\t k \t  v  \r\n";
    static const char *const want[] = {"SET", "k", "v"};

    check_single(LIMITS_DEFAULT, text, STR_LEN(text), want, NULL, 3);
}
END_TEST

START_TEST(test_inline_double_quotes_decode)
{
    static const char text[] =
        "SET \"my key\" \"a\\x41\\x7a\\n\\r\\t\\\"\\\\\\'\\a\\b\" \"\"\r\n";
    static const char *const want[] = {"SET", "my key", "aAz\n\r\t\"\\'\a\b",
                                       ""};

    check_single(LIMITS_DEFAULT, text, STR_LEN(text), want, NULL, 4);
}
END_TEST

START_TEST(test_inline_hex_escape_any_byte)
{
    static const char text[] = "SET k \"\\x00\\xff\\xAb\"\r\n";
    static const char *const want[] = {"SET", "k", "\0\xff\xab"};
    static const size_t want_len[] = {3, 1, 3};

    check_single(LIMITS_DEFAULT, text, STR_LEN(text), want, want_len, 3);
}
END_TEST

START_TEST(test_inline_single_quotes_literal)
{
    static const char text[] = "SET 'it\\'s' 'a\\nb \"c\"' ''\r\n";
    static const char *const want[] = {"SET", "it's", "a\\nb \"c\"", ""};

    check_single(LIMITS_DEFAULT, text, STR_LEN(text), want, NULL, 4);
}
END_TEST

START_TEST(test_inline_quote_inside_word_literal)
{
    static const char text[] = "SET a\"b c'd\"\r\n";
    static const char *const want[] = {"SET", "a\"b", "c'd\""};

    check_single(LIMITS_DEFAULT, text, STR_LEN(text), want, NULL, 3);
}
END_TEST

START_TEST(test_inline_quoted_then_tab)
{
    static const char text[] = "ECHO \"x\"\t'y'\r\n";
    static const char *const want[] = {"ECHO", "x", "y"};

    check_single(LIMITS_DEFAULT, text, STR_LEN(text), want, NULL, 3);
}
END_TEST

START_TEST(test_inline_blank_lines_skipped)
{
    static const char text[] = "\r\n  \r\n\n\t\nPING\r\n";
    static const char blanks[] = "\r\n \n";
    struct kv_resp_parser *p = new_parser(LIMITS_DEFAULT);
    struct kv_resp_cmd cmd;
    size_t consumed;

    ck_assert_int_eq(kv_resp_parse(p, text, STR_LEN(text), &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert_uint_eq(consumed, STR_LEN(text));
    ck_assert_uint_eq(cmd.argc, 1);
    ck_assert(kv_resp_is(&cmd, "ping"));

    ck_assert_int_eq(kv_resp_parse(p, blanks, STR_LEN(blanks), &cmd, &consumed),
                     KV_RESP_NEED_MORE);
    ck_assert_uint_eq(consumed, STR_LEN(blanks));
    kv_resp_parser_free(p);
}
END_TEST

START_TEST(test_inline_max_len_boundary)
{
    static const char *const lf[] = {"SET", "k", "12345678"};
    static const char *const crlf[] = {"SET", "k", "1234567"};
    char *got;

    /* LIMITS_SMALL allows 16 bytes, the line end included. */
    check_single(LIMITS_SMALL, "SET k 12345678\n", 15, lf, NULL, 3);
    check_single(LIMITS_SMALL, "SET k 1234567\r\n", 15, crlf, NULL, 3);
    check_single(LIMITS_SMALL, "SET k  12345678\n", 16, lf, NULL, 3);
    got = feed_whole(LIMITS_SMALL, "SET k   12345678\n", 17);
    ck_assert_str_eq(got, "error -1005: inline command has no line end within "
                          "the limit of 16 bytes\n");
    free(got);
    got = feed_whole(LIMITS_SMALL, "SET k  12345678\r\n", 17);
    ck_assert_str_eq(got, "error -1005: inline command has no line end within "
                          "the limit of 16 bytes\n");
    free(got);
}
END_TEST

START_TEST(test_inline_default_max_len)
{
    size_t max = 64u << 10;
    char *text = malloc(max + 1);
    struct fl_buf want;
    size_t cuts[64];
    char *got;

    /* 65535 bytes and the LF fill the 64 KiB limit exactly. */
    ck_assert_ptr_nonnull(text);
    memset(text, 'a', max + 1);
    text[max - 1] = '\n';
    fl_buf_init(&want);
    fl_buf_addc(&want, '[');
    fl_buf_add_json_string(&want, text, max - 1);
    fl_buf_adds(&want, "]\nneed more: 0 bytes pending\n");
    ck_assert(!want.failed);
    got = feed_whole(LIMITS_DEFAULT, text, max);
    ck_assert_str_eq(got, want.data);
    free(got);
    for (size_t k = 0; k < 64; k++)
        cuts[k] = k * 1024;
    got = feed(LIMITS_DEFAULT, text, max, cuts, 64);
    ck_assert_str_eq(got, want.data);
    free(got);
    fl_buf_free(&want);

    /* One byte more and the line is rejected, before its LF arrives. */
    text[max - 1] = 'a';
    text[max] = '\n';
    got = feed_whole(LIMITS_DEFAULT, text, max + 1);
    ck_assert_str_eq(got, "error -1005: inline command has no line end within "
                          "the limit of 64 KiB\n");
    free(got);
    got = feed_whole(LIMITS_DEFAULT, text, max);
    ck_assert_str_eq(got, "error -1005: inline command has no line end within "
                          "the limit of 64 KiB\n");
    free(got);
    free(text);
}
END_TEST

START_TEST(test_inline_max_args_boundary)
{
    static const char *const want[] = {"A", "B", "C", "D"};
    char *got;

    check_single(LIMITS_SMALL, "A B C D\r\n", 9, want, NULL, 4);
    got = feed_whole(LIMITS_SMALL, "A B C D E\r\n", 11);
    ck_assert_str_eq(got,
                     "error -1005: inline command has more than 4 arguments\n");
    free(got);
}
END_TEST

/* ---- malformed requests ------------------------------------------------ */

/* A string literal and its length, which may count NUL bytes inside it. */
#define S(text) text, sizeof(text) - 1

struct malformed {
    const char *text;
    size_t len;
    enum limits_id limits;
    const char *error; /* NULL: the input is incomplete, not malformed */
};

static const struct malformed malformed[] = {
    {S("*2\r\nx3\r\nGET\r\n"), LIMITS_DEFAULT,
     "expected '$' at the start of argument 1 of 2, got 'x'"},
    {S("*1\r\n:1\r\n"), LIMITS_DEFAULT,
     "expected '$' at the start of argument 1 of 1, got ':'"},
    {S("*2\r\n$3\r\nGET\r\n\x01"), LIMITS_DEFAULT,
     "expected '$' at the start of argument 2 of 2, got byte 0x01"},
    {S("*2\r\n$3\r\nGET\r\n\r\n"), LIMITS_DEFAULT,
     "expected '$' at the start of argument 2 of 2, got CR"},
    {S("*1\r\n$99999999999999999999\r\n"), LIMITS_DEFAULT,
     "bulk length 99999999999999999999 of argument 1 exceeds the limit of "
     "512 MiB"},
    {S("*1\r\n$999999999\r\n"), LIMITS_DEFAULT,
     "bulk length 999999999 of argument 1 exceeds the limit of 512 MiB"},
    {S("*1\r\n$123456789012345678901\r\n"), LIMITS_DEFAULT,
     "bulk length of argument 1 has more than 20 digits"},
    {S("*99999999999999999999\r\n"), LIMITS_DEFAULT,
     "array length 99999999999999999999 exceeds the limit of 1024 arguments"},
    {S("*1\r\n$-1\r\n"), LIMITS_DEFAULT,
     "argument 1 is a null bulk string ($-1), which is not allowed in a "
     "request"},
    {S("*2\r\n$3\r\nGET\r\n$-2\r\n"), LIMITS_DEFAULT,
     "bulk length of argument 2 is negative: -2"},
    {S("*1\r\n$-99999999999999999999\r\n"), LIMITS_DEFAULT,
     "bulk length of argument 1 is negative: -99999999999999999999"},
    {S("*-1\r\n"), LIMITS_DEFAULT,
     "null array (*-1) is not allowed in a request"},
    {S("*-5\r\n"), LIMITS_DEFAULT, "array length is negative: -5"},
    {S("*-0\r\n"), LIMITS_DEFAULT, "array length has a leading zero"},
    {S("*01\r\n"), LIMITS_DEFAULT, "array length has a leading zero"},
    {S("*00\r\n"), LIMITS_DEFAULT, "array length has a leading zero"},
    {S("*1\r\n$03\r\nGET\r\n"), LIMITS_DEFAULT,
     "bulk length of argument 1 has a leading zero"},
    {S("*+1\r\n"), LIMITS_DEFAULT, "invalid character '+' in the array length"},
    {S("*1\r\n$ 3\r\n"), LIMITS_DEFAULT,
     "invalid character ' ' in the bulk length of argument 1"},
    {S("*1\r\n$3 \r\n"), LIMITS_DEFAULT,
     "invalid character ' ' in the bulk length of argument 1"},
    {S("*x\r\n"), LIMITS_DEFAULT, "invalid character 'x' in the array length"},
    {S("*--1\r\n"), LIMITS_DEFAULT,
     "invalid character '-' in the array length"},
    {S("*\r\n"), LIMITS_DEFAULT, "array length has no digits"},
    {S("*-\r\n"), LIMITS_DEFAULT, "array length has no digits"},
    {S("*1\r\n$\r\n"), LIMITS_DEFAULT,
     "bulk length of argument 1 has no digits"},
    {S("*1\n"), LIMITS_DEFAULT,
     "missing CR before the LF after the array length"},
    {S("*1\rx"), LIMITS_DEFAULT,
     "expected LF after the CR of the array length, got 'x'"},
    {S("*1\r\n$3\n"), LIMITS_DEFAULT,
     "missing CR before the LF after the bulk length of argument 1"},
    {S("*1\r\n$3\r\r"), LIMITS_DEFAULT,
     "expected LF after the CR of the bulk length of argument 1, got CR"},
    {S("*1\r\n$3\r\nGETx"), LIMITS_DEFAULT,
     "expected CRLF after the 3 bytes of argument 1, got 'x'"},
    {S("*1\r\n$3\r\nGET\n"), LIMITS_DEFAULT,
     "expected CRLF after the 3 bytes of argument 1, got LF"},
    {S("*1\r\n$3\r\nGET\rx"), LIMITS_DEFAULT,
     "expected LF after the CR that ends argument 1, got 'x'"},
    {S("*1\r\n$4\r\nGET\r\n"), LIMITS_DEFAULT,
     "expected CRLF after the 4 bytes of argument 1, got LF"},
    {S("*1\r\n$2\r\nGET\r\n"), LIMITS_DEFAULT,
     "expected CRLF after the 2 bytes of argument 1, got 'T'"},
    {S("*1\r\n$0\r\n\0\r\n"), LIMITS_DEFAULT,
     "expected CRLF after the 0 bytes of argument 1, got byte 0x00"},
    {S("*5\r\n"), LIMITS_SMALL,
     "array length 5 exceeds the limit of 4 arguments"},
    {S("*1\r\n$9\r\n"), LIMITS_SMALL,
     "bulk length 9 of argument 1 exceeds the limit of 8 bytes"},
    {S("*4\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$8\r\n"), LIMITS_SMALL,
     "request exceeds the limit of 40 bytes: its argument 3 of 4 starts at "
     "offset 36 and has 8 bytes"},
    {S("GET \"k\r\n"), LIMITS_DEFAULT,
     "unterminated double-quoted argument in an inline command"},
    {S("GET 'k\r\n"), LIMITS_DEFAULT,
     "unterminated single-quoted argument in an inline command"},
    {S("GET \"k\\\"\r\n"), LIMITS_DEFAULT,
     "unterminated double-quoted argument in an inline command"},
    {S("GET \"k\\\r\n"), LIMITS_DEFAULT,
     "unterminated double-quoted argument in an inline command"},
    {S("GET \"k\"x\r\n"), LIMITS_DEFAULT,
     "a closing double quote must be followed by a space or the line end, "
     "got 'x'"},
    {S("GET 'k''v'\r\n"), LIMITS_DEFAULT,
     "a closing single quote must be followed by a space or the line end, "
     "got \"'\""},
    {S("GET \"\\q\"\r\n"), LIMITS_DEFAULT,
     "invalid escape in a double-quoted argument: backslash followed by 'q'"},
    {S("GET \"\\\x01\"\r\n"), LIMITS_DEFAULT,
     "invalid escape in a double-quoted argument: backslash followed by "
     "byte 0x01"},
    {S("GET \"\\x4\"\r\n"), LIMITS_DEFAULT,
     "invalid escape \\x in a double-quoted argument: expected two hex "
     "digits"},
    {S("GET \"\\xZZ\"\r\n"), LIMITS_DEFAULT,
     "invalid escape \\x in a double-quoted argument: expected two hex "
     "digits"},
    {S("GET \"\\x"), LIMITS_DEFAULT, NULL}, /* incomplete, not an error */
    {S("GET a\rb\r\n"), LIMITS_DEFAULT,
     "inline command contains a CR at offset 5 that does not end the line"},
    {S("PING\r\r\n"), LIMITS_DEFAULT,
     "inline command contains a CR at offset 4 that does not end the line"},
    {S("GET \"a\rb\"\r\n"), LIMITS_DEFAULT,
     "inline command contains a CR at offset 6 that does not end the line"},
    {S("SET key value 1234\r\n"), LIMITS_SMALL,
     "inline command has no line end within the limit of 16 bytes"},
    {S("A B C D E\r\n"), LIMITS_SMALL,
     "inline command has more than 4 arguments"},
};

/* Returns the transcript a malformed case must produce. */
static char *malformed_want(const struct malformed *m, size_t len)
{
    char *want = malloc(512);

    ck_assert_ptr_nonnull(want);
    if (m->error == NULL)
        snprintf(want, 512, "need more: %zu bytes pending\n", len);
    else
        snprintf(want, 512, "error %d: %s\n", FL_EPROTO, m->error);
    return want;
}

START_TEST(test_malformed_exact_error)
{
    const struct malformed *m = &malformed[_i];
    char *want = malformed_want(m, m->len);
    char *got = feed_whole(m->limits, m->text, m->len);

    ck_assert_msg(strcmp(got, want) == 0, "case %d:\ngot:  %swant: %s", _i, got,
                  want);
    free(got);
    free(want);
}
END_TEST

START_TEST(test_malformed_same_error_any_split)
{
    const struct malformed *m = &malformed[_i];
    char *want = malformed_want(m, m->len);

    check_every_split(m->limits, m->text, m->len, want);
    free(want);
}
END_TEST

/* ---- streams and pipelining -------------------------------------------- */

START_TEST(test_pipeline_parses_one_by_one)
{
    static const char text[] = "*1\r\n$4\r\nPING\r\n"
                               "GET k\r\n"
                               "\r\n"
                               "*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"
                               "*3\r\n$3\r\nSET";
    static const size_t sizes[] = {14, 7, 2 + 20};
    struct kv_resp_parser *p = new_parser(LIMITS_DEFAULT);
    const char *at = text;
    size_t left = STR_LEN(text);
    struct kv_resp_cmd cmd;
    size_t consumed;

    ck_assert_int_eq(kv_resp_parse(p, at, left, &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert_uint_eq(consumed, sizes[0]);
    ck_assert(kv_resp_is(&cmd, "PING"));
    at += consumed;
    left -= consumed;

    ck_assert_int_eq(kv_resp_parse(p, at, left, &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert_uint_eq(consumed, sizes[1]);
    ck_assert(kv_resp_is(&cmd, "GET"));
    ck_assert_uint_eq(cmd.argc, 2);
    at += consumed;
    left -= consumed;

    /* The blank line before DEL is consumed with it. */
    ck_assert_int_eq(kv_resp_parse(p, at, left, &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert_uint_eq(consumed, sizes[2]);
    ck_assert(kv_resp_is(&cmd, "DEL"));
    at += consumed;
    left -= consumed;

    ck_assert_int_eq(kv_resp_parse(p, at, left, &cmd, &consumed),
                     KV_RESP_NEED_MORE);
    ck_assert_uint_eq(consumed, 0);
    ck_assert_uint_eq(left, 11);
    kv_resp_parser_free(p);
}
END_TEST

struct stream {
    const char *text;
    size_t len;
    enum limits_id limits;
    const char *want;
};

static const struct stream streams[] = {
    {S("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), LIMITS_DEFAULT,
     "[\"GET\",\"k\"]\nneed more: 0 bytes pending\n"},
    {S("*1\r\n$4\r\nPING\r\nGET k\r\n\r\n*0\r\n  \n"
       "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\n\r\n\r\n\r\n"
       "SET \"a b\" 'c\\'d' \"\\x41\\n\"\n*2\r\n$3\r\nGET"),
     LIMITS_DEFAULT,
     "[\"PING\"]\n[\"GET\",\"k\"]\n[\"SET\",\"\",\"\\r\\n\\r\\n\"]\n"
     "[\"SET\",\"a b\",\"c'd\",\"A\\n\"]\nneed more: 11 bytes pending\n"},
    {S("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0b\r\n\r\n"), LIMITS_DEFAULT,
     "[\"SET\",\"k\",\"a\\u0000b\\r\\n\"]\nneed more: 0 bytes pending\n"},
    {S("PING\nPING\r\nECHO x\t\ty\n"), LIMITS_DEFAULT,
     "[\"PING\"]\n[\"PING\"]\n[\"ECHO\",\"x\",\"y\"]\n"
     "need more: 0 bytes pending\n"},
    {S("*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\nA B C D\r\n"),
     LIMITS_SMALL,
     "[\"a\",\"b\",\"c\",\"d\"]\n[\"A\",\"B\",\"C\",\"D\"]\n"
     "need more: 0 bytes pending\n"},
    {S("GET k\r\nGET "), LIMITS_DEFAULT,
     "[\"GET\",\"k\"]\nneed more: 4 bytes pending\n"},
    {S("\r\n\r\n*0\r\n"), LIMITS_DEFAULT, "need more: 0 bytes pending\n"},
    {S("GET k\r\n*1\r\n$4\r\nPINGx"), LIMITS_DEFAULT,
     "[\"GET\",\"k\"]\nerror -1005: expected CRLF after the 4 bytes of "
     "argument 1, got 'x'\n"},
};

START_TEST(test_stream_same_commands_any_split)
{
    const struct stream *s = &streams[_i];

    check_every_split(s->limits, s->text, s->len, s->want);
}
END_TEST

START_TEST(test_large_bulk_any_split)
{
    struct fl_buf text;
    struct fl_buf want;
    char value[300];

    for (size_t i = 0; i < sizeof(value); i++)
        value[i] = (char)(i * 7);
    fl_buf_init(&text);
    kv_resp_add_array(&text, 3);
    kv_resp_add_bulk(&text, "SET", 3);
    kv_resp_add_bulk(&text, "key", 3);
    kv_resp_add_bulk(&text, value, sizeof(value));
    fl_buf_adds(&text, "GET key\r\n");
    ck_assert(!text.failed);

    fl_buf_init(&want);
    fl_buf_adds(&want, "[\"SET\",\"key\",");
    fl_buf_add_json_string(&want, value, sizeof(value));
    fl_buf_adds(&want, "]\n[\"GET\",\"key\"]\nneed more: 0 bytes pending\n");
    ck_assert(!want.failed);

    check_every_split(LIMITS_DEFAULT, text.data, text.len, want.data);
    fl_buf_free(&text);
    fl_buf_free(&want);
}
END_TEST

START_TEST(test_error_is_sticky_until_reset)
{
    static const char bad[] = "*1\r\n:1\r\n";
    static const char good[] = "PING\r\n";
    struct kv_resp_parser *p = new_parser(LIMITS_DEFAULT);
    struct kv_resp_cmd cmd;
    size_t consumed;

    ck_assert_int_eq(kv_resp_parse(p, bad, STR_LEN(bad), &cmd, &consumed),
                     FL_EPROTO);
    ck_assert_uint_eq(consumed, 0);
    ck_assert_str_eq(kv_resp_parser_error(p),
                     "expected '$' at the start of argument 1 of 1, got ':'");

    ck_assert_int_eq(kv_resp_parse(p, good, STR_LEN(good), &cmd, &consumed),
                     FL_EPROTO);
    ck_assert_uint_eq(consumed, 0);
    ck_assert_uint_eq(cmd.argc, 0);
    ck_assert_str_eq(kv_resp_parser_error(p),
                     "expected '$' at the start of argument 1 of 1, got ':'");

    kv_resp_parser_reset(p);
    ck_assert_str_eq(kv_resp_parser_error(p), "");
    ck_assert_int_eq(kv_resp_parse(p, good, STR_LEN(good), &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert(kv_resp_is(&cmd, "PING"));
    kv_resp_parser_free(p);
}
END_TEST

START_TEST(test_reset_forgets_partial_request)
{
    static const char partial[] = "*2\r\n$3\r\nGET\r\n";
    static const char good[] = "PING\r\n";
    struct kv_resp_parser *p = new_parser(LIMITS_DEFAULT);
    struct kv_resp_cmd cmd;
    size_t consumed;

    ck_assert_int_eq(
        kv_resp_parse(p, partial, STR_LEN(partial), &cmd, &consumed),
        KV_RESP_NEED_MORE);
    kv_resp_parser_reset(p);
    ck_assert_int_eq(kv_resp_parse(p, good, STR_LEN(good), &cmd, &consumed),
                     KV_RESP_COMMAND);
    ck_assert_uint_eq(consumed, STR_LEN(good));
    kv_resp_parser_free(p);
}
END_TEST

START_TEST(test_shorter_data_rejected)
{
    static const char text[] = "*2\r\n$3\r\nGET\r\n";
    struct kv_resp_parser *p = new_parser(LIMITS_DEFAULT);
    struct kv_resp_cmd cmd;
    size_t consumed;

    ck_assert_int_eq(kv_resp_parse(p, text, STR_LEN(text), &cmd, &consumed),
                     KV_RESP_NEED_MORE);
    ck_assert_int_eq(kv_resp_parse(p, text, 5, &cmd, &consumed), FL_EINPUT);
    ck_assert_str_eq(kv_resp_parser_error(p),
                     "the data has 5 bytes, fewer than the 13 that earlier "
                     "calls parsed; remove only the consumed bytes");
    ck_assert_int_eq(kv_resp_parse(p, text, STR_LEN(text), &cmd, &consumed),
                     FL_EINPUT);
    kv_resp_parser_free(p);
}
END_TEST

/* ---- command names ----------------------------------------------------- */

START_TEST(test_is_ignores_ascii_case)
{
    struct fl_str args[] = {{"gEt", 3}, {"k", 1}};
    struct kv_resp_cmd cmd = {2, args};
    struct kv_resp_cmd empty = {0, NULL};

    ck_assert(kv_resp_is(&cmd, "GET"));
    ck_assert(kv_resp_is(&cmd, "get"));
    ck_assert(!kv_resp_is(&cmd, "GETX"));
    ck_assert(!kv_resp_is(&cmd, "GE"));
    ck_assert(!kv_resp_is(&cmd, "SET"));
    ck_assert(!kv_resp_is(&empty, "GET"));
}
END_TEST

START_TEST(test_arg_is_only_folds_letters)
{
    struct fl_str bracket = {"[x]", 3};
    struct fl_str at = {"@", 1};
    struct fl_str digits = {"Ex1", 3};
    struct fl_str empty = {"", 0};

    /* '[' and '{' differ only in bit 0x20, like 'X' and 'x'. */
    ck_assert(!kv_resp_arg_is(bracket, "{x]"));
    ck_assert(kv_resp_arg_is(bracket, "[X]"));
    ck_assert(!kv_resp_arg_is(at, "`"));
    ck_assert(kv_resp_arg_is(digits, "eX1"));
    ck_assert(kv_resp_arg_is(empty, ""));
    ck_assert(!kv_resp_arg_is(empty, "x"));
}
END_TEST

/* ---- reply encoder ----------------------------------------------------- */

/* Checks that b contains exactly want[0, len), then empties it. */
static void check_buf(struct fl_buf *b, const char *want, size_t len)
{
    ck_assert(!b->failed);
    ck_assert_uint_eq(b->len, len);
    ck_assert_msg(memcmp(b->data, want, len) == 0, "got \"%s\", want \"%s\"",
                  b->data, want);
    fl_buf_clear(b);
}

#define CHECK_BUF(b, want) check_buf((b), (want), STR_LEN(want))

START_TEST(test_encode_simple_error_int)
{
    struct fl_buf b;

    fl_buf_init(&b);
    kv_resp_add_simple(&b, "OK");
    CHECK_BUF(&b, "+OK\r\n");
    kv_resp_add_simple(&b, "");
    CHECK_BUF(&b, "+\r\n");
    kv_resp_add_error(&b, "ERR unknown command 'FOO'");
    CHECK_BUF(&b, "-ERR unknown command 'FOO'\r\n");
    kv_resp_add_error(&b, "NOTLEADER 10.0.0.2:7001");
    CHECK_BUF(&b, "-NOTLEADER 10.0.0.2:7001\r\n");
    kv_resp_add_errorf(&b, "ERR wrong number of arguments for '%s' command",
                       "get");
    CHECK_BUF(&b, "-ERR wrong number of arguments for 'get' command\r\n");
    kv_resp_add_int(&b, 0);
    CHECK_BUF(&b, ":0\r\n");
    kv_resp_add_int(&b, 1);
    CHECK_BUF(&b, ":1\r\n");
    kv_resp_add_int(&b, -1);
    CHECK_BUF(&b, ":-1\r\n");
    kv_resp_add_int(&b, INT64_MAX);
    CHECK_BUF(&b, ":9223372036854775807\r\n");
    kv_resp_add_int(&b, INT64_MIN);
    CHECK_BUF(&b, ":-9223372036854775808\r\n");
    fl_buf_free(&b);
}
END_TEST

START_TEST(test_encode_bulk_null_array)
{
    struct fl_buf b;

    fl_buf_init(&b);
    kv_resp_add_bulk(&b, "hello", 5);
    CHECK_BUF(&b, "$5\r\nhello\r\n");
    kv_resp_add_bulk(&b, "", 0);
    CHECK_BUF(&b, "$0\r\n\r\n");
    kv_resp_add_bulk(&b, "a\r\n\0b", 5);
    CHECK_BUF(&b, "$5\r\na\r\n\0b\r\n");
    kv_resp_add_null(&b);
    CHECK_BUF(&b, "$-1\r\n");
    kv_resp_add_array(&b, 0);
    CHECK_BUF(&b, "*0\r\n");
    kv_resp_add_array(&b, 2);
    kv_resp_add_bulk(&b, "a", 1);
    kv_resp_add_null(&b);
    CHECK_BUF(&b, "*2\r\n$1\r\na\r\n$-1\r\n");
    fl_buf_free(&b);
}
END_TEST

/* Counts the CRLF pairs and the lone CR or LF bytes in b. */
static void count_line_ends(const struct fl_buf *b, size_t *crlf, size_t *lone)
{
    *crlf = 0;
    *lone = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\r' && i + 1 < b->len && b->data[i + 1] == '\n') {
            (*crlf)++;
            i++;
        } else if (b->data[i] == '\r' || b->data[i] == '\n') {
            (*lone)++;
        }
    }
}

START_TEST(test_encode_line_breaks_cannot_split_reply)
{
    static const char attack[] = "ERR bad\r\n+OK\r\n:1\n\r";
    char long_text[600];
    struct fl_buf b;
    size_t crlf;
    size_t lone;

    fl_buf_init(&b);
    kv_resp_add_error(&b, attack);
    CHECK_BUF(&b, "-ERR bad  +OK  :1  \r\n");
    kv_resp_add_simple(&b, "OK\r\n-ERR");
    CHECK_BUF(&b, "+OK  -ERR\r\n");
    kv_resp_add_errorf(&b, "ERR key '%s'", "a\nb\rc");
    CHECK_BUF(&b, "-ERR key 'a b c'\r\n");

    /* Longer than the encoder's stack buffer for formatted errors. */
    memset(long_text, '\n', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    kv_resp_add_errorf(&b, "ERR %s", long_text);
    count_line_ends(&b, &crlf, &lone);
    ck_assert_uint_eq(crlf, 1);
    ck_assert_uint_eq(lone, 0);
    ck_assert_uint_eq(b.len, 1 + 4 + sizeof(long_text) - 1 + 2);
    ck_assert_mem_eq(b.data + b.len - 2, "\r\n", 2);
    fl_buf_free(&b);
}
END_TEST

START_TEST(test_encoded_request_parses_back)
{
    static const char *const args[] = {"SET", "k\r\n", "", "\"quoted\" \0x"};
    static const size_t lens[] = {3, 3, 0, 11};
    struct fl_buf b;

    fl_buf_init(&b);
    kv_resp_add_array(&b, 4);
    for (size_t i = 0; i < 4; i++)
        kv_resp_add_bulk(&b, args[i], lens[i]);
    check_single(LIMITS_DEFAULT, b.data, b.len, args, lens, 4);
    fl_buf_free(&b);
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

static Suite *resp_suite(void)
{
    Suite *s = suite_create("kv_resp");
    TCase *t;

    t = tcase_create("array");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_array_args_point_into_buffer);
    tcase_add_test(t, test_array_binary_and_empty_args);
    tcase_add_test(t, test_array_empty_is_skipped);
    tcase_add_test(t, test_array_incomplete_needs_more);
    tcase_add_test(t, test_array_max_args_boundary);
    tcase_add_test(t, test_array_default_max_args);
    tcase_add_test(t, test_bulk_len_boundary);
    tcase_add_test(t, test_bulk_len_default_limit);
    tcase_add_test(t, test_request_len_boundary);
    tcase_add_test(t, test_limits_default_values);
    tcase_add_test(t, test_parser_new_rejects_zero_limit);
    suite_add_tcase(s, t);

    t = tcase_create("inline");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_inline_crlf_and_bare_lf);
    tcase_add_test(t, test_inline_args_point_into_buffer);
    tcase_add_test(t, test_inline_spaces_and_tabs_separate);
    tcase_add_test(t, test_inline_double_quotes_decode);
    tcase_add_test(t, test_inline_hex_escape_any_byte);
    tcase_add_test(t, test_inline_single_quotes_literal);
    tcase_add_test(t, test_inline_quote_inside_word_literal);
    tcase_add_test(t, test_inline_quoted_then_tab);
    tcase_add_test(t, test_inline_blank_lines_skipped);
    tcase_add_test(t, test_inline_max_len_boundary);
    tcase_add_test(t, test_inline_default_max_len);
    tcase_add_test(t, test_inline_max_args_boundary);
    suite_add_tcase(s, t);

    t = tcase_create("malformed");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, test_malformed_exact_error, 0,
                        (int)(sizeof(malformed) / sizeof(malformed[0])));
    tcase_add_loop_test(t, test_malformed_same_error_any_split, 0,
                        (int)(sizeof(malformed) / sizeof(malformed[0])));
    tcase_add_test(t, test_error_is_sticky_until_reset);
    tcase_add_test(t, test_reset_forgets_partial_request);
    tcase_add_test(t, test_shorter_data_rejected);
    suite_add_tcase(s, t);

    t = tcase_create("stream");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_pipeline_parses_one_by_one);
    tcase_add_loop_test(t, test_stream_same_commands_any_split, 0,
                        (int)(sizeof(streams) / sizeof(streams[0])));
    tcase_add_test(t, test_large_bulk_any_split);
    suite_add_tcase(s, t);

    t = tcase_create("names");
    tcase_set_timeout(t, 10);
    tcase_add_test(t, test_is_ignores_ascii_case);
    tcase_add_test(t, test_arg_is_only_folds_letters);
    suite_add_tcase(s, t);

    t = tcase_create("encoder");
    tcase_set_timeout(t, 10);
    tcase_add_test(t, test_encode_simple_error_int);
    tcase_add_test(t, test_encode_bulk_null_array);
    tcase_add_test(t, test_encode_line_breaks_cannot_split_reply);
    tcase_add_test(t, test_encoded_request_parses_back);
    suite_add_tcase(s, t);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(resp_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
