/*
 * libFuzzer harness for the RESP2 request parser and reply encoder of
 * fl-kvd. The top bit of the first input byte picks small or default
 * limits, and its low 7 bits pick a split point, scaled to the stream
 * length. The rest of the input is the byte stream a client sends. It is
 * parsed once whole and once in two pieces split at that point, and the
 * harness aborts when the two give different commands, a different error or
 * a different number of pending bytes. Every command must also survive a
 * round trip through the encoder, and every error reply must stay one line.
 */
#include "error.h"
#include "resp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *reason)
{
    fprintf(stderr, "fuzz_resp: %s\n", reason);
    abort();
}

/* Aborts unless b contains exactly one CRLF, at its end, and no other CR or
 * LF. */
static void check_one_line(const struct fl_buf *b)
{
    if (b->failed)
        die("reply buffer allocation failed");
    if (b->len < 3 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0)
        die("reply does not end with CRLF");
    for (size_t i = 0; i + 2 < b->len; i++) {
        if (b->data[i] == '\r' || b->data[i] == '\n')
            die("reply line contains CR or LF before its end");
    }
}

/* Encodes cmd as an array of bulk strings and aborts unless it parses back
 * to the same arguments. */
static void check_round_trip(const struct kv_resp_cmd *cmd)
{
    struct kv_resp_parser *p;
    struct kv_resp_cmd back;
    struct fl_buf b;
    size_t consumed;

    if (kv_resp_parser_new(&p, NULL) != 0)
        die("parser allocation failed");
    fl_buf_init(&b);
    kv_resp_add_array(&b, cmd->argc);
    for (size_t i = 0; i < cmd->argc; i++)
        kv_resp_add_bulk(&b, cmd->argv[i].ptr, cmd->argv[i].len);
    if (b.failed)
        die("request buffer allocation failed");
    if (kv_resp_parse(p, b.data, b.len, &back, &consumed) != KV_RESP_COMMAND)
        die("an encoded command does not parse back");
    if (consumed != b.len || back.argc != cmd->argc)
        die("an encoded command parses back to another shape");
    for (size_t i = 0; i < cmd->argc; i++) {
        if (!fl_str_same(back.argv[i], cmd->argv[i]))
            die("an encoded argument parses back to other bytes");
    }
    fl_buf_free(&b);
    kv_resp_parser_free(p);
}

/* Appends cmd to the transcript: its count, then each argument's length
 * and bytes. */
static void add_command(struct fl_buf *out, const struct kv_resp_cmd *cmd)
{
    fl_buf_printf(out, "C%zu", cmd->argc);
    for (size_t i = 0; i < cmd->argc; i++) {
        fl_buf_printf(out, ":%zu:", cmd->argv[i].len);
        fl_buf_add(out, cmd->argv[i].ptr, cmd->argv[i].len);
    }
}

/*
 * Parses stream[0, len) arriving in pieces that end at cut and at len, and
 * writes what it yields to out and the reason of an error, or "", to
 * reason. With copy set, every call gets the pending bytes in a block of
 * exactly their size. Without it, calls read stream in place, which ends
 * where libFuzzer's input ends.
 */
static void run(const struct kv_resp_limits *limits, const char *stream,
                size_t len, size_t cut, bool copy, bool round_trip,
                struct fl_buf *out, char reason[256])
{
    struct kv_resp_parser *p;
    size_t start = 0;

    reason[0] = '\0';
    if (kv_resp_parser_new(&p, limits) != 0)
        die("parser allocation failed");
    for (int piece = 0; piece < 2; piece++) {
        size_t end = piece == 0 ? cut : len;

        for (;;) {
            size_t avail = end - start;
            char *block = NULL;
            const char *at = stream + start;
            struct kv_resp_cmd cmd;
            size_t consumed;
            int rc;

            if (copy) {
                block = malloc(avail > 0 ? avail : 1);
                if (block == NULL)
                    die("allocation failed");
                if (avail > 0)
                    memcpy(block, at, avail);
                at = block;
            }
            rc = kv_resp_parse(p, at, avail, &cmd, &consumed);
            if (rc == KV_RESP_COMMAND) {
                if (cmd.argc == 0 || consumed == 0)
                    die("a command with no arguments or no bytes");
                add_command(out, &cmd);
                if (round_trip)
                    check_round_trip(&cmd);
            }
            free(block);
            if (consumed > avail)
                die("consumed more bytes than it was given");
            if (rc < 0) {
                snprintf(reason, 256, "%s", kv_resp_parser_error(p));
                fl_buf_printf(out, "E%d:%s", rc, reason);
                goto out;
            }
            start += consumed;
            if (rc == KV_RESP_NEED_MORE)
                break;
        }
    }
    fl_buf_printf(out, "N%zu", len - start);
out:
    kv_resp_parser_free(p);
}

/* Sends the reason of a protocol error, and the input itself as text,
 * through the line encoders, whose replies must stay one line each. */
static void check_line_encoders(const char *reason, const char *stream,
                                size_t len)
{
    char *text = malloc(len + 1);
    struct fl_buf b;

    if (text == NULL)
        die("allocation failed");
    memcpy(text, stream, len);
    text[len] = '\0';
    fl_buf_init(&b);
    if (reason[0] != '\0') {
        kv_resp_add_errorf(&b, "ERR Protocol error: %s", reason);
        check_one_line(&b);
        fl_buf_clear(&b);
    }
    kv_resp_add_error(&b, text);
    check_one_line(&b);
    fl_buf_clear(&b);
    kv_resp_add_simple(&b, text);
    check_one_line(&b);
    fl_buf_clear(&b);
    kv_resp_add_errorf(&b, "ERR %s", text);
    check_one_line(&b);
    fl_buf_free(&b);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kv_resp_limits limits;
    struct fl_buf whole;
    struct fl_buf split;
    char whole_reason[256];
    char split_reason[256];
    const char *stream;
    size_t len;
    size_t cut;

    if (size == 0)
        return 0;
    kv_resp_limits_default(&limits);
    if (data[0] & 0x80) {
        limits.max_args = 8;
        limits.max_bulk_len = 64;
        limits.max_inline_len = 64;
        limits.max_request_len = 256;
    }
    stream = (const char *)data + 1;
    len = size - 1;
    /* Scaling makes every split point reachable for streams of up to 127
     * bytes, and spreads them over longer ones. */
    cut = len * (size_t)(data[0] & 0x7f) / 127;

    fl_buf_init(&whole);
    fl_buf_init(&split);
    run(&limits, stream, len, len, false, true, &whole, whole_reason);
    run(&limits, stream, len, cut, true, false, &split, split_reason);
    if (whole.failed || split.failed)
        die("transcript allocation failed");
    if (whole.len != split.len ||
        (whole.len > 0 && memcmp(whole.data, split.data, whole.len) != 0))
        die("the split stream parsed differently from the whole stream");

    check_line_encoders(whole_reason, stream, len);
    fl_buf_free(&whole);
    fl_buf_free(&split);
    return 0;
}
