/*
 * libFuzzer harness for the Raft peer frame decoder (systems/raft/frame.h).
 * After the first byte, the input is the byte stream a peer sends, decoded
 * frame after frame until the decoder needs more bytes or rejects one.
 * With the low bit of the first byte set, the harness first rewrites the
 * CRC of every whole frame in the stream, so mutated payloads get past the
 * checksum and reach the field checks. For each decode the harness checks
 * three things and aborts when one fails:
 *   - every shorter prefix of the stream, up to the frame's end, gives
 *     "need more bytes" or the same error, so a frame split anywhere
 *     decodes as it does whole;
 *   - a decoded frame encodes back to exactly its input bytes, because the
 *     format is canonical;
 *   - those bytes decode again to a frame equal field by field.
 * Sanitizers catch reads outside the input.
 */
#include "crc32c.h"
#include "error.h"
#include "frame.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t input_size);

static void die(const char *reason)
{
    fprintf(stderr, "fuzz_frame: %s\n", reason);
    abort();
}

static bool same_bytes(const unsigned char *a, const unsigned char *b,
                       size_t len)
{
    return len == 0 || memcmp(a, b, len) == 0;
}

static bool same_entries(const struct rft_msg *a, const struct rft_msg *b)
{
    if (a->n_entries != b->n_entries)
        return false;
    for (size_t i = 0; i < a->n_entries; i++) {
        const struct rft_entry *x = &a->entries[i];
        const struct rft_entry *y = &b->entries[i];
        if (x->term != y->term || x->type != y->type || x->len != y->len ||
            !same_bytes(x->data, y->data, x->len))
            return false;
    }
    return true;
}

static bool same_snapshot(const struct rft_snapshot *a,
                          const struct rft_snapshot *b)
{
    return a->index == b->index && a->term == b->term &&
           a->conf.n_nodes == b->conf.n_nodes &&
           memcmp(a->conf.nodes, b->conf.nodes, sizeof(a->conf.nodes)) == 0 &&
           a->len == b->len && same_bytes(a->data, b->data, a->len);
}

/* Compares every field of two decoded messages, pointed-to bytes by value. */
static bool same_msg(const struct rft_msg *a, const struct rft_msg *b)
{
    return a->type == b->type && a->from == b->from && a->to == b->to &&
           a->term == b->term && a->last_index == b->last_index &&
           a->last_term == b->last_term && a->granted == b->granted &&
           a->prev_index == b->prev_index && a->prev_term == b->prev_term &&
           a->commit == b->commit && same_entries(a, b) &&
           a->success == b->success && a->match == b->match &&
           a->round == b->round && same_snapshot(&a->snapshot, &b->snapshot) &&
           a->offset == b->offset && a->done == b->done;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Replaces the CRC of each whole frame at the start of p[0, len) with the
 * correct one, up to the first header with an oversized length. */
static void reseal_frames(unsigned char *p, size_t len)
{
    size_t off = 0;

    while (len - off >= RFF_HEADER) {
        uint32_t payload = get_u32(p + off);
        if (payload > RFF_MAX_PAYLOAD)
            break;
        size_t covered = RFF_HEADER + (size_t)payload;
        if (len - off < covered + RFF_TRAILER)
            break;
        uint32_t crc = fl_crc32c(0, p + off, covered);
        for (size_t i = 0; i < 4; i++)
            p[off + covered + i] = (unsigned char)(crc >> (8 * i));
        off += covered + RFF_TRAILER;
    }
}

/* Decodes every prefix of p shorter than the frame at its start and
 * aborts unless each gives "need more bytes" or the error rc and why. */
static void check_prefixes(struct rff_decoder *d, const unsigned char *p,
                           size_t len, int rc, const char *why)
{
    size_t limit = len;

    /* Prefixes that contain a whole frame decode in full, which would make
     * this loop quadratic; they are what the whole-stream decode checks. */
    if (len >= 4) {
        size_t total = RFF_HEADER + (size_t)get_u32(p) + RFF_TRAILER;
        if (total < limit)
            limit = total;
    }
    for (size_t k = 0; k < limit; k++) {
        struct rff_frame frame;
        size_t consumed;
        const char *prefix_why = NULL;
        int prefix_rc = rff_decode(d, p, k, &frame, &consumed, &prefix_why);
        if (prefix_rc == RFF_NEED_MORE && consumed == 0)
            continue;
        if (prefix_rc == FL_EPROTO && rc == FL_EPROTO && prefix_why == why)
            continue;
        die("a prefix of a frame decodes differently from the whole");
    }
}

/* Encodes a decoded frame again and aborts unless the bytes are the input
 * frame's and decode to the same frame. */
static void check_round_trip(const struct rff_frame *frame,
                             const unsigned char *p, size_t size)
{
    struct rff_decoder d;
    struct rff_frame back;
    struct fl_buf b;
    size_t consumed;
    const char *why = NULL;
    int rc;

    fl_buf_init(&b);
    if (frame->type == RFF_HELLO)
        rc = rff_encode_hello(&b, &frame->hello);
    else
        rc = rff_encode(&b, &frame->msg);
    if (rc != 0)
        die("a decoded frame does not encode");
    if (b.len != size || memcmp(b.data, p, size) != 0)
        die("a decoded frame encodes to other bytes");

    rff_decoder_init(&d);
    rc = rff_decode(&d, b.data, b.len, &back, &consumed, &why);
    if (rc != RFF_FRAME || consumed != b.len)
        die("an encoded frame does not decode");
    if (back.type != frame->type)
        die("an encoded frame decodes to another type");
    if (back.hello.id != frame->hello.id ||
        back.hello.n_nodes != frame->hello.n_nodes)
        die("an encoded hello decodes to other fields");
    if (!same_msg(&back.msg, &frame->msg))
        die("an encoded message decodes to other fields");
    rff_decoder_free(&d);
    fl_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t input_size)
{
    struct rff_decoder d;
    size_t off = 0;

    if (input_size == 0)
        return 0;
    size_t size = input_size - 1;
    unsigned char *data = malloc(size > 0 ? size : 1);
    if (data == NULL)
        die("input copy allocation failed");
    if (size > 0)
        memcpy(data, input + 1, size);
    if (input[0] & 1)
        reseal_frames(data, size);

    rff_decoder_init(&d);
    for (;;) {
        struct rff_frame frame;
        size_t consumed;
        const char *why = NULL;
        int rc =
            rff_decode(&d, data + off, size - off, &frame, &consumed, &why);

        if (rc == -ENOMEM)
            die("the entry array could not grow");
        if (rc == FL_EPROTO && why == NULL)
            die("an error without a reason");
        if (rc != RFF_FRAME && consumed != 0)
            die("bytes consumed without a frame");
        if (rc == RFF_FRAME) {
            if (consumed < RFF_HEADER + RFF_TRAILER || consumed > size - off)
                die("a frame size outside the input");
            check_round_trip(&frame, data + off, consumed);
        }
        /* The prefix decodes reuse d, so they come after the round trip
         * that reads frame.msg.entries. */
        check_prefixes(&d, data + off, size - off, rc, why);
        if (rc != RFF_FRAME)
            break;
        off += consumed;
    }
    rff_decoder_free(&d);
    free(data);
    return 0;
}
