/*
 * Tests for the Raft peer frame codec (systems/raft/frame.h): the byte
 * layout, a round trip of every message type, decoding from partial and
 * concatenated input, every way a frame is rejected, and round trips of
 * random messages split at random points.
 */
#include "frame.h"

#include "crc32c.h"
#include "error.h"
#include "rng.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

static const unsigned char hello_bytes[] = "hello";
static const unsigned char world_bytes[] = "world, and more";
static const unsigned char chunk_bytes[] = "snapshot chunk bytes";

static const struct rft_entry two_entries[] = {
    {.term = 7, .type = RFT_ENTRY_NOOP, .data = NULL, .len = 0},
    {.term = 8, .type = RFT_ENTRY_COMMAND, .data = hello_bytes, .len = 5},
};

static const struct rft_entry three_entries[] = {
    {.term = 1, .type = RFT_ENTRY_COMMAND, .data = world_bytes, .len = 15},
    {.term = 2, .type = RFT_ENTRY_COMMAND, .data = hello_bytes, .len = 0},
    {.term = UINT64_MAX, .type = RFT_ENTRY_NOOP, .data = NULL, .len = 0},
};

/* One message of each type, each shape (with and without entries, a
 * chunk, a granted flag) and extreme values, with only the fields its type
 * carries set, so it must decode to itself. */
static struct rft_msg sample(size_t i)
{
    struct rft_msg m = {.from = 1, .to = 2, .term = 5};

    switch (i) {
    case 0:
        m.type = RFT_MSG_VOTE;
        m.last_index = 12;
        m.last_term = 4;
        break;
    case 1:
        m.type = RFT_MSG_VOTE_REPLY;
        m.granted = true;
        break;
    case 2:
        m.type = RFT_MSG_VOTE_REPLY;
        m.granted = false;
        m.from = RFT_MAX_NODES;
        m.to = 1;
        break;
    case 3:
        m.type = RFT_MSG_APPEND; /* a heartbeat: no entries */
        m.prev_index = 9;
        m.prev_term = 4;
        m.commit = 8;
        m.round = 3;
        break;
    case 4:
        m.type = RFT_MSG_APPEND;
        m.prev_index = 10;
        m.prev_term = 5;
        m.commit = 10;
        m.round = 4;
        m.entries = two_entries;
        m.n_entries = 2;
        break;
    case 5:
        m.type = RFT_MSG_APPEND;
        m.term = UINT64_MAX;
        m.prev_index = UINT64_MAX - 3;
        m.prev_term = UINT64_MAX;
        m.commit = UINT64_MAX;
        m.round = UINT64_MAX;
        m.entries = three_entries;
        m.n_entries = 3;
        break;
    case 6:
        m.type = RFT_MSG_APPEND_REPLY;
        m.success = true;
        m.match = 12;
        m.round = 4;
        break;
    case 7:
        m.type = RFT_MSG_APPEND_REPLY;
        m.success = false;
        m.match = 3;
        m.round = 0;
        break;
    case 8:
        m.type = RFT_MSG_PRE_VOTE;
        m.term = 6;
        m.last_index = 0;
        m.last_term = 0;
        break;
    case 9:
        m.type = RFT_MSG_PRE_VOTE_REPLY;
        m.term = 6;
        m.granted = true;
        break;
    case 10:
        m.type = RFT_MSG_SNAPSHOT;
        m.snapshot.index = 100;
        m.snapshot.term = 4;
        m.snapshot.conf = (struct rft_conf){.nodes = {1, 2, 3}, .n_nodes = 3};
        m.snapshot.data = chunk_bytes;
        m.snapshot.len = 20;
        m.offset = 0;
        m.done = false;
        m.commit = 90;
        m.round = 7;
        break;
    case 11:
        m.type = RFT_MSG_SNAPSHOT; /* an empty last chunk, nine voters */
        m.snapshot.index = 100;
        m.snapshot.term = 4;
        m.snapshot.conf = (struct rft_conf){
            .nodes = {9, 8, 7, 6, 5, 4, 3, 2, 1}, .n_nodes = 9};
        m.offset = 65536;
        m.done = true;
        m.commit = 100;
        m.round = 8;
        break;
    case 12:
        m.type = RFT_MSG_SNAPSHOT_REPLY;
        m.snapshot.index = 100;
        m.offset = 20;
        m.round = 7;
        break;
    case 13:
        m.type = RFT_MSG_SNAPSHOT_REPLY;
        m.snapshot.index = 100;
        m.offset = 65536;
        m.done = true;
        m.success = true;
        m.match = 100;
        m.round = 8;
        break;
    default:
        ck_abort_msg("no sample message %zu", i);
    }
    return m;
}

#define N_SAMPLES 14

static void assert_same_bytes(const unsigned char *want, size_t want_len,
                              const unsigned char *got, size_t got_len)
{
    ck_assert_uint_eq(got_len, want_len);
    if (want_len > 0)
        ck_assert_mem_eq(got, want, want_len);
}

/* Checks every field of got against want, pointed-to bytes by value. */
static void assert_same_msg(const struct rft_msg *want,
                            const struct rft_msg *got)
{
    ck_assert_int_eq(got->type, want->type);
    ck_assert_uint_eq(got->from, want->from);
    ck_assert_uint_eq(got->to, want->to);
    ck_assert_uint_eq(got->term, want->term);
    ck_assert_uint_eq(got->last_index, want->last_index);
    ck_assert_uint_eq(got->last_term, want->last_term);
    ck_assert_int_eq(got->granted, want->granted);
    ck_assert_uint_eq(got->prev_index, want->prev_index);
    ck_assert_uint_eq(got->prev_term, want->prev_term);
    ck_assert_uint_eq(got->commit, want->commit);
    ck_assert_uint_eq(got->n_entries, want->n_entries);
    for (size_t i = 0; i < want->n_entries; i++) {
        const struct rft_entry *w = &want->entries[i];
        const struct rft_entry *g = &got->entries[i];
        ck_assert_uint_eq(g->term, w->term);
        ck_assert_int_eq(g->type, w->type);
        assert_same_bytes(w->data, w->len, g->data, g->len);
    }
    ck_assert_int_eq(got->success, want->success);
    ck_assert_uint_eq(got->match, want->match);
    ck_assert_uint_eq(got->round, want->round);
    ck_assert_uint_eq(got->snapshot.index, want->snapshot.index);
    ck_assert_uint_eq(got->snapshot.term, want->snapshot.term);
    ck_assert_uint_eq(got->snapshot.conf.n_nodes, want->snapshot.conf.n_nodes);
    for (size_t i = 0; i < RFT_MAX_NODES; i++)
        ck_assert_uint_eq(got->snapshot.conf.nodes[i],
                          want->snapshot.conf.nodes[i]);
    assert_same_bytes(want->snapshot.data, want->snapshot.len,
                      got->snapshot.data, got->snapshot.len);
    ck_assert_uint_eq(got->offset, want->offset);
    ck_assert_int_eq(got->done, want->done);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Encodes m alone and returns the frame in b, which the caller frees. */
static void encode_one(struct fl_buf *b, const struct rft_msg *m)
{
    fl_buf_init(b);
    ck_assert_int_eq(rff_encode(b, m), 0);
    ck_assert(!b->failed);
}

/* Appends a frame of the given type around payload with a correct length
 * and CRC, so a test can give the decoder any payload. */
static void add_raw_frame(struct fl_buf *b, uint8_t type,
                          const unsigned char *payload, size_t len)
{
    unsigned char header[RFF_HEADER] = {0, 0, 0, 0, RFF_VERSION, type, 0, 0};
    unsigned char crc[4];
    size_t start = b->len;

    put_u32(header, (uint32_t)len);
    fl_buf_add(b, header, sizeof(header));
    fl_buf_add(b, payload, len);
    ck_assert(!b->failed);
    put_u32(crc, fl_crc32c(0, b->data + start, b->len - start));
    fl_buf_add(b, crc, sizeof(crc));
}

/* Recomputes the CRC of the single frame in b after a test changed it. */
static void reseal(struct fl_buf *b)
{
    ck_assert_uint_ge(b->len, RFF_HEADER + RFF_TRAILER);
    size_t covered = b->len - RFF_TRAILER;
    put_u32((unsigned char *)b->data + covered, fl_crc32c(0, b->data, covered));
}

/* Decodes b whole and checks that the decoder rejects it with a reason
 * containing want. */
static void assert_rejected(const struct fl_buf *b, const char *want)
{
    struct rff_decoder d;
    struct rff_frame frame;
    size_t consumed = 99;
    const char *why = NULL;

    rff_decoder_init(&d);
    ck_assert_int_eq(rff_decode(&d, b->data, b->len, &frame, &consumed, &why),
                     FL_EPROTO);
    ck_assert_uint_eq(consumed, 0);
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strstr(why, want) != NULL, "reason \"%s\" lacks \"%s\"", why,
                  want);
    rff_decoder_free(&d);
}

/* Encodes sample i, sets its payload byte at offset at to value, re-seals
 * the CRC and checks that the decoder rejects the frame with a reason
 * containing want. */
static void assert_payload_rejected(size_t i, size_t at, unsigned char value,
                                    const char *want)
{
    struct rft_msg m = sample(i);
    struct fl_buf b;

    encode_one(&b, &m);
    ck_assert_uint_lt(RFF_HEADER + at, b.len - RFF_TRAILER);
    b.data[RFF_HEADER + at] = (char)value;
    reseal(&b);
    assert_rejected(&b, want);
    fl_buf_free(&b);
}

/* ---- layout ------------------------------------------------------------ */

/* The bytes of a RequestVote frame, field by field as frame.h lists them. */
START_TEST(test_vote_frame_layout)
{
    struct rft_msg m = sample(0);
    static const unsigned char want[] = {
        32,       0, 0, 0,             /* payload length */
        1,                             /* version */
        RFF_VOTE, 0, 0,                /* type, reserved */
        1,        0, 0, 0,             /* from */
        2,        0, 0, 0,             /* to */
        5,        0, 0, 0, 0, 0, 0, 0, /* term */
        12,       0, 0, 0, 0, 0, 0, 0, /* last_index */
        4,        0, 0, 0, 0, 0, 0, 0, /* last_term */
    };
    struct fl_buf b;

    encode_one(&b, &m);
    ck_assert_uint_eq(b.len, sizeof(want) + RFF_TRAILER);
    ck_assert_mem_eq(b.data, want, sizeof(want));
    ck_assert_uint_eq(get_u32((unsigned char *)b.data + sizeof(want)),
                      fl_crc32c(0, want, sizeof(want)));
    fl_buf_free(&b);
}
END_TEST

/* A hello frame carries the node id and the cluster size, 4 bytes each. */
START_TEST(test_hello_frame_layout)
{
    struct rff_hello hello = {.id = 3, .n_nodes = 5};
    static const unsigned char want[] = {
        8, 0, 0, 0, 1, RFF_HELLO, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0,
    };
    struct fl_buf b;

    fl_buf_init(&b);
    ck_assert_int_eq(rff_encode_hello(&b, &hello), 0);
    ck_assert_uint_eq(b.len, sizeof(want) + RFF_TRAILER);
    ck_assert_mem_eq(b.data, want, sizeof(want));
    ck_assert_uint_eq(get_u32((unsigned char *)b.data + sizeof(want)),
                      fl_crc32c(0, want, sizeof(want)));
    fl_buf_free(&b);
}
END_TEST

/* ---- round trips ------------------------------------------------------- */

START_TEST(test_round_trip_each_sample)
{
    struct rft_msg m = sample((size_t)_i);
    struct rff_decoder d;
    struct rff_frame frame;
    struct fl_buf b;
    size_t consumed = 0;
    const char *why = NULL;

    encode_one(&b, &m);
    rff_decoder_init(&d);
    ck_assert_int_eq(rff_decode(&d, b.data, b.len, &frame, &consumed, &why),
                     RFF_FRAME);
    ck_assert_uint_eq(consumed, b.len);
    ck_assert_int_ne(frame.type, RFF_HELLO);
    assert_same_msg(&m, &frame.msg);

    /* Entry data and the chunk point into the input buffer. */
    const char *end = b.data + b.len;
    for (size_t i = 0; i < frame.msg.n_entries; i++) {
        const char *p = (const char *)frame.msg.entries[i].data;
        ck_assert(p >= b.data && p + frame.msg.entries[i].len <= end);
    }
    if (m.type == RFT_MSG_SNAPSHOT) {
        const char *p = (const char *)frame.msg.snapshot.data;
        ck_assert(p >= b.data && p + frame.msg.snapshot.len <= end);
    }
    rff_decoder_free(&d);
    fl_buf_free(&b);
}
END_TEST

/* Fields a type does not carry are not sent and decode as zero. */
START_TEST(test_unused_fields_not_sent)
{
    struct rft_msg m = sample(0);
    struct rft_msg want = m;
    struct rff_decoder d;
    struct rff_frame frame;
    struct fl_buf b;
    size_t consumed;
    const char *why = NULL;

    m.granted = true;
    m.commit = 77;
    m.entries = two_entries;
    m.n_entries = 2;
    m.snapshot.index = 5;
    m.snapshot.conf.n_nodes = 99;
    m.offset = 3;
    encode_one(&b, &m);
    ck_assert_uint_eq(b.len, RFF_HEADER + 32 + RFF_TRAILER);
    rff_decoder_init(&d);
    ck_assert_int_eq(rff_decode(&d, b.data, b.len, &frame, &consumed, &why),
                     RFF_FRAME);
    assert_same_msg(&want, &frame.msg);
    rff_decoder_free(&d);
    fl_buf_free(&b);
}
END_TEST

START_TEST(test_hello_round_trip)
{
    struct rff_decoder d;
    struct rff_frame frame;
    struct fl_buf b;
    size_t consumed;
    const char *why = NULL;

    fl_buf_init(&b);
    rff_decoder_init(&d);
    for (uint32_t id = 1; id <= RFT_MAX_NODES; id++) {
        struct rff_hello hello = {.id = id, .n_nodes = RFT_MAX_NODES + 1 - id};
        fl_buf_clear(&b);
        ck_assert_int_eq(rff_encode_hello(&b, &hello), 0);
        ck_assert_int_eq(rff_decode(&d, b.data, b.len, &frame, &consumed, &why),
                         RFF_FRAME);
        ck_assert_uint_eq(consumed, b.len);
        ck_assert_int_eq(frame.type, RFF_HELLO);
        ck_assert_uint_eq(frame.hello.id, hello.id);
        ck_assert_uint_eq(frame.hello.n_nodes, hello.n_nodes);
    }
    rff_decoder_free(&d);
    fl_buf_free(&b);
}
END_TEST

/* ---- partial and concatenated input ------------------------------------ */

/* Encodes a hello and every sample into one buffer. */
static void encode_stream(struct fl_buf *b)
{
    struct rff_hello hello = {.id = 2, .n_nodes = 3};

    fl_buf_init(b);
    ck_assert_int_eq(rff_encode_hello(b, &hello), 0);
    for (size_t i = 0; i < N_SAMPLES; i++) {
        struct rft_msg m = sample(i);
        ck_assert_int_eq(rff_encode(b, &m), 0);
    }
    ck_assert(!b->failed);
}

/* Checks frame number index of the stream encode_stream makes. */
static void assert_stream_frame(size_t index, const struct rff_frame *frame)
{
    if (index == 0) {
        ck_assert_int_eq(frame->type, RFF_HELLO);
        ck_assert_uint_eq(frame->hello.id, 2);
        ck_assert_uint_eq(frame->hello.n_nodes, 3);
        return;
    }
    struct rft_msg want = sample(index - 1);
    assert_same_msg(&want, &frame->msg);
}

START_TEST(test_decode_several_frames_in_one_buffer)
{
    struct rff_decoder d;
    struct rff_frame frame;
    struct fl_buf b;
    size_t off = 0;
    size_t count = 0;
    size_t consumed;
    const char *why = NULL;

    encode_stream(&b);
    rff_decoder_init(&d);
    while (off < b.len) {
        ck_assert_int_eq(
            rff_decode(&d, b.data + off, b.len - off, &frame, &consumed, &why),
            RFF_FRAME);
        ck_assert_uint_gt(consumed, 0);
        assert_stream_frame(count, &frame);
        off += consumed;
        count++;
    }
    ck_assert_uint_eq(off, b.len);
    ck_assert_uint_eq(count, N_SAMPLES + 1);
    ck_assert_int_eq(rff_decode(&d, b.data + off, 0, &frame, &consumed, &why),
                     RFF_NEED_MORE);
    rff_decoder_free(&d);
    fl_buf_free(&b);
}
END_TEST

/* Bytes arrive one at a time: every prefix of a frame needs more, and each
 * frame decodes on its last byte. */
START_TEST(test_decode_byte_by_byte)
{
    struct rff_decoder d;
    struct rff_frame frame;
    struct fl_buf b;
    size_t off = 0;
    size_t count = 0;

    encode_stream(&b);
    rff_decoder_init(&d);
    for (size_t received = 0; received <= b.len; received++) {
        size_t consumed = 99;
        const char *why = NULL;
        int rc = rff_decode(&d, b.data + off, received - off, &frame, &consumed,
                            &why);
        if (rc == RFF_NEED_MORE) {
            ck_assert_uint_eq(consumed, 0);
            continue;
        }
        ck_assert_int_eq(rc, RFF_FRAME);
        ck_assert_uint_eq(consumed, received - off);
        assert_stream_frame(count, &frame);
        off += consumed;
        count++;
    }
    ck_assert_uint_eq(off, b.len);
    ck_assert_uint_eq(count, N_SAMPLES + 1);
    rff_decoder_free(&d);
    fl_buf_free(&b);
}
END_TEST

/* ---- rejected frames --------------------------------------------------- */

START_TEST(test_reject_bad_version)
{
    struct rft_msg m = sample(0);
    struct fl_buf b;

    encode_one(&b, &m);
    b.data[4] = 2;
    reseal(&b);
    assert_rejected(&b, "version");

    /* The version fails as soon as its byte arrives. */
    struct rff_decoder d;
    struct rff_frame frame;
    size_t consumed;
    const char *why = NULL;
    rff_decoder_init(&d);
    ck_assert_int_eq(rff_decode(&d, b.data, 4, &frame, &consumed, &why),
                     RFF_NEED_MORE);
    ck_assert_int_eq(rff_decode(&d, b.data, 5, &frame, &consumed, &why),
                     FL_EPROTO);
    ck_assert_ptr_nonnull(strstr(why, "version"));
    rff_decoder_free(&d);
    fl_buf_free(&b);
}
END_TEST

START_TEST(test_reject_bad_crc)
{
    struct rft_msg m = sample(4);
    struct fl_buf b;

    /* A flipped payload bit, a flipped CRC bit, and a length one less than
     * the payload's, which moves where the decoder reads the CRC: each
     * fails the CRC check. */
    encode_one(&b, &m);
    b.data[RFF_HEADER + 30] ^= 1;
    assert_rejected(&b, "checksum");
    fl_buf_free(&b);

    encode_one(&b, &m);
    b.data[b.len - 1] ^= (char)0x80;
    assert_rejected(&b, "checksum");
    fl_buf_free(&b);

    encode_one(&b, &m);
    b.data[0] = (char)(b.data[0] - 1);
    assert_rejected(&b, "checksum");
    fl_buf_free(&b);
}
END_TEST

START_TEST(test_reject_oversized_length)
{
    unsigned char header[4];
    struct rff_decoder d;
    struct rff_frame frame;
    size_t consumed;
    const char *why = NULL;

    /* Four bytes are enough to reject it: the decoder never waits for a
     * payload it would not take. */
    rff_decoder_init(&d);
    put_u32(header, RFF_MAX_PAYLOAD + 1);
    ck_assert_int_eq(rff_decode(&d, header, 4, &frame, &consumed, &why),
                     FL_EPROTO);
    ck_assert_ptr_nonnull(strstr(why, "length"));
    put_u32(header, UINT32_MAX);
    ck_assert_int_eq(rff_decode(&d, header, 4, &frame, &consumed, &why),
                     FL_EPROTO);
    /* Exactly the limit is allowed, so the decoder waits for it. */
    put_u32(header, RFF_MAX_PAYLOAD);
    ck_assert_int_eq(rff_decode(&d, header, 4, &frame, &consumed, &why),
                     RFF_NEED_MORE);
    rff_decoder_free(&d);
}
END_TEST

/* A snapshot chunk that makes the payload exactly RFF_MAX_PAYLOAD bytes
 * goes through; one byte more is rejected by the encoder. */
START_TEST(test_max_payload_round_trip)
{
    struct rft_msg m = sample(10);
    size_t chunk = RFF_MAX_PAYLOAD - (16 + 46 + 4 * 3);
    unsigned char *data = calloc(chunk + 1, 1);
    struct rff_decoder d;
    struct rff_frame frame;
    struct fl_buf b;
    size_t consumed;
    const char *why = NULL;

    ck_assert_ptr_nonnull(data);
    data[0] = 0xab;
    data[chunk - 1] = 0xcd;
    m.snapshot.data = data;
    m.snapshot.len = chunk;
    encode_one(&b, &m);
    ck_assert_uint_eq(b.len, RFF_HEADER + RFF_MAX_PAYLOAD + RFF_TRAILER);
    rff_decoder_init(&d);
    ck_assert_int_eq(rff_decode(&d, b.data, b.len, &frame, &consumed, &why),
                     RFF_FRAME);
    assert_same_msg(&m, &frame.msg);
    rff_decoder_free(&d);

    size_t before = b.len;
    m.snapshot.len = chunk + 1;
    ck_assert_int_eq(rff_encode(&b, &m), FL_EINPUT);
    ck_assert_uint_eq(b.len, before);
    ck_assert_int_eq(rff_check_msg(&m, &why), FL_EINPUT);
    ck_assert_ptr_nonnull(strstr(why, "RFF_MAX_PAYLOAD"));
    fl_buf_free(&b);
    free(data);
}
END_TEST

START_TEST(test_reject_unknown_frame_type)
{
    struct rft_msg m = sample(0);
    struct fl_buf b;

    encode_one(&b, &m);
    b.data[5] = 0;
    reseal(&b);
    assert_rejected(&b, "unknown frame type");
    b.data[5] = RFF_SNAPSHOT_REPLY + 1;
    reseal(&b);
    assert_rejected(&b, "unknown frame type");
    fl_buf_free(&b);
}
END_TEST

START_TEST(test_reject_reserved_bytes)
{
    struct rft_msg m = sample(0);
    struct fl_buf b;

    encode_one(&b, &m);
    b.data[6] = 1;
    reseal(&b);
    assert_rejected(&b, "reserved");
    b.data[6] = 0;
    b.data[7] = 1;
    reseal(&b);
    assert_rejected(&b, "reserved");
    fl_buf_free(&b);
}
END_TEST

/* Every sample with its payload cut short by one byte, and with one byte
 * too many, is rejected. */
START_TEST(test_reject_payload_length_mismatch)
{
    struct rft_msg m = sample((size_t)_i);
    struct fl_buf b;
    struct fl_buf raw;
    uint8_t type;
    size_t len;

    encode_one(&b, &m);
    type = (uint8_t)b.data[5];
    len = b.len - RFF_HEADER - RFF_TRAILER;

    fl_buf_init(&raw);
    add_raw_frame(&raw, type, (unsigned char *)b.data + RFF_HEADER, len - 1);
    assert_rejected(&raw, "shorter than its fields");

    unsigned char *longer = calloc(len + 1, 1);
    ck_assert_ptr_nonnull(longer);
    memcpy(longer, b.data + RFF_HEADER, len);
    fl_buf_clear(&raw);
    add_raw_frame(&raw, type, longer, len + 1);
    assert_rejected(&raw, "longer than its fields");
    free(longer);
    fl_buf_free(&raw);
    fl_buf_free(&b);
}
END_TEST

START_TEST(test_reject_entry_count_beyond_payload)
{
    /* Sample 4 has two entries, 13 and 18 bytes, after the count at
     * payload offset 48. Neither 3 nor 4098 entries fit in 31 bytes, and
     * a count above RFF_MAX_ENTRIES fails before the payload is looked at. */
    assert_payload_rejected(4, 48, 3, "entry count does not fit");
    assert_payload_rejected(4, 48 + 1, 0x10, "entry count does not fit");
    assert_payload_rejected(4, 48 + 3, 0xff, "more entries than");
}
END_TEST

START_TEST(test_reject_entry_data_beyond_payload)
{
    /* The first entry's data length, at payload offset 52 + 9. */
    assert_payload_rejected(4, 52 + 9, 200, "shorter than its fields");
}
END_TEST

START_TEST(test_reject_unknown_entry_type)
{
    assert_payload_rejected(4, 52 + 8, 0, "unknown entry type");
    assert_payload_rejected(4, 52 + 8, 3, "unknown entry type");
}
END_TEST

START_TEST(test_reject_bad_boolean)
{
    assert_payload_rejected(1, 16, 2, "boolean");           /* granted */
    assert_payload_rejected(6, 16, 0xff, "boolean");        /* success */
    assert_payload_rejected(10, 16 + 40, 2, "boolean");     /* done */
    assert_payload_rejected(13, 16 + 16 + 1, 7, "boolean"); /* success */
}
END_TEST

START_TEST(test_reject_node_id_out_of_range)
{
    assert_payload_rejected(0, 0, 0, "sender node id out of range");
    assert_payload_rejected(0, 0, RFT_MAX_NODES + 1, "sender node id");
    assert_payload_rejected(0, 4, 0, "receiver node id out of range");
    assert_payload_rejected(6, 4, RFT_MAX_NODES + 1, "receiver node id");
    /* The high byte of from: 0x01000001 is not 1. */
    assert_payload_rejected(0, 3, 1, "sender node id");
}
END_TEST

START_TEST(test_reject_hello_out_of_range)
{
    static const unsigned char zero_id[] = {0, 0, 0, 0, 3, 0, 0, 0};
    static const unsigned char big_id[] = {10, 0, 0, 0, 3, 0, 0, 0};
    static const unsigned char no_nodes[] = {1, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char many_nodes[] = {1, 0, 0, 0, 10, 0, 0, 0};
    static const unsigned char short_hello[] = {1, 0, 0, 0, 3, 0, 0};
    struct fl_buf b;

    fl_buf_init(&b);
    add_raw_frame(&b, RFF_HELLO, zero_id, sizeof(zero_id));
    assert_rejected(&b, "hello node id out of range");
    fl_buf_clear(&b);
    add_raw_frame(&b, RFF_HELLO, big_id, sizeof(big_id));
    assert_rejected(&b, "hello node id out of range");
    fl_buf_clear(&b);
    add_raw_frame(&b, RFF_HELLO, no_nodes, sizeof(no_nodes));
    assert_rejected(&b, "hello cluster size out of range");
    fl_buf_clear(&b);
    add_raw_frame(&b, RFF_HELLO, many_nodes, sizeof(many_nodes));
    assert_rejected(&b, "hello cluster size out of range");
    fl_buf_clear(&b);
    add_raw_frame(&b, RFF_HELLO, short_hello, sizeof(short_hello));
    assert_rejected(&b, "shorter than its fields");
    fl_buf_free(&b);

    struct rff_hello bad[] = {{0, 3}, {10, 3}, {1, 0}, {1, 10}};
    fl_buf_init(&b);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(rff_encode_hello(&b, &bad[i]), FL_EINPUT);
        ck_assert_uint_eq(b.len, 0);
    }
    fl_buf_free(&b);
}
END_TEST

/* In sample 10 the voter count is at payload offset 16 + 41 and the three
 * voters follow it. */
START_TEST(test_reject_bad_configuration)
{
    assert_payload_rejected(10, 57, 0, "configuration size out of range");
    assert_payload_rejected(10, 57, RFT_MAX_NODES + 1,
                            "configuration size out of range");
    assert_payload_rejected(10, 57, 0xff, "configuration size out of range");
    assert_payload_rejected(10, 58, 0, "voter id out of range");
    assert_payload_rejected(10, 58 + 4, RFT_MAX_NODES + 1,
                            "voter id out of range");
    assert_payload_rejected(10, 58 + 8, 1, "voter twice");
}
END_TEST

/* The encoder rejects what the decoder would, and leaves out unchanged. */
START_TEST(test_encoder_rejects_invalid_messages)
{
    struct rft_entry bad_entry = {.term = 1, .type = 0};
    struct fl_buf b;
    struct rft_msg m;
    const char *why = NULL;

    fl_buf_init(&b);
    fl_buf_adds(&b, "kept");

    m = sample(0);
    m.from = 0;
    ck_assert_int_eq(rff_encode(&b, &m), FL_EINPUT);
    m = sample(0);
    m.to = RFT_MAX_NODES + 1;
    ck_assert_int_eq(rff_encode(&b, &m), FL_EINPUT);
    m = sample(0);
    m.type = 0;
    ck_assert_int_eq(rff_encode(&b, &m), FL_EINPUT);
    ck_assert_int_eq(rff_check_msg(&m, &why), FL_EINPUT);
    ck_assert_ptr_nonnull(strstr(why, "unknown message type"));
    m = sample(3);
    m.entries = &bad_entry;
    m.n_entries = 1;
    ck_assert_int_eq(rff_encode(&b, &m), FL_EINPUT);
    m = sample(3);
    m.n_entries = RFF_MAX_ENTRIES + 1; /* rejected before entries is read */
    ck_assert_int_eq(rff_encode(&b, &m), FL_EINPUT);
    m = sample(10);
    m.snapshot.conf.n_nodes = 0;
    ck_assert_int_eq(rff_encode(&b, &m), FL_EINPUT);
    m = sample(10);
    m.snapshot.conf.nodes[1] = m.snapshot.conf.nodes[0];
    ck_assert_int_eq(rff_encode(&b, &m), FL_EINPUT);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_str_eq(b.data, "kept");

    m = sample(4);
    ck_assert_int_eq(rff_check_msg(&m, &why), 0);
    fl_buf_free(&b);
}
END_TEST

/* The decoder's entry array grows to the largest frame, up to
 * RFF_MAX_ENTRIES, and a frame with that many entries round-trips. */
START_TEST(test_max_entries_round_trip)
{
    struct rft_entry *entries = calloc(RFF_MAX_ENTRIES, sizeof(*entries));
    struct rft_msg m = sample(3);
    struct rff_decoder d;
    struct rff_frame frame;
    struct fl_buf b;
    size_t consumed;
    const char *why = NULL;

    ck_assert_ptr_nonnull(entries);
    for (size_t i = 0; i < RFF_MAX_ENTRIES; i++) {
        entries[i].term = i;
        entries[i].type = i % 2 ? RFT_ENTRY_COMMAND : RFT_ENTRY_NOOP;
        entries[i].data = hello_bytes;
        entries[i].len = i % 6;
    }
    m.entries = entries;
    m.n_entries = RFF_MAX_ENTRIES;
    encode_one(&b, &m);
    rff_decoder_init(&d);
    ck_assert_int_eq(rff_decode(&d, b.data, b.len, &frame, &consumed, &why),
                     RFF_FRAME);
    assert_same_msg(&m, &frame.msg);
    ck_assert_uint_eq(d.cap, RFF_MAX_ENTRIES);
    rff_decoder_free(&d);
    fl_buf_free(&b);
    free(entries);
}
END_TEST

/* ---- random messages --------------------------------------------------- */

#define RANDOM_MESSAGES 2000

static uint64_t random_u64(struct fl_rng *rng)
{
    /* Small values, extremes and anything in between. */
    switch (fl_rng_below(rng, 4)) {
    case 0:
        return fl_rng_below(rng, 16);
    case 1:
        return UINT64_MAX - fl_rng_below(rng, 4);
    default:
        return fl_rng_next(rng);
    }
}

static uint32_t random_node(struct fl_rng *rng)
{
    return (uint32_t)fl_rng_range(rng, 1, RFT_MAX_NODES);
}

/* Storage for the pointed-to parts of one batch of random messages. */
struct random_pool {
    unsigned char bytes[4096];
    struct rft_entry entries[RANDOM_MESSAGES][8];
};

/* Fills every field of m with random values, valid for the type. */
static void random_msg(struct fl_rng *rng, struct random_pool *pool, size_t k,
                       struct rft_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = (enum rft_msg_type)fl_rng_range(rng, RFT_MSG_VOTE,
                                              RFT_MSG_SNAPSHOT_REPLY);
    m->from = random_node(rng);
    m->to = random_node(rng);
    m->term = random_u64(rng);
    m->last_index = random_u64(rng);
    m->last_term = random_u64(rng);
    m->granted = fl_rng_chance(rng, 0.5);
    m->prev_index = random_u64(rng);
    m->prev_term = random_u64(rng);
    m->commit = random_u64(rng);
    m->n_entries = (size_t)fl_rng_below(rng, 9);
    m->entries = pool->entries[k];
    for (size_t i = 0; i < m->n_entries; i++) {
        struct rft_entry *e = &pool->entries[k][i];
        size_t len = (size_t)fl_rng_below(rng, 65);
        e->term = random_u64(rng);
        e->type = fl_rng_chance(rng, 0.2) ? RFT_ENTRY_NOOP : RFT_ENTRY_COMMAND;
        e->data = pool->bytes + fl_rng_below(rng, sizeof(pool->bytes) - len);
        e->len = len;
    }
    m->success = fl_rng_chance(rng, 0.5);
    m->match = random_u64(rng);
    m->round = random_u64(rng);
    m->snapshot.index = random_u64(rng);
    m->snapshot.term = random_u64(rng);

    /* A random subset of the node ids, in random order. */
    uint32_t ids[RFT_MAX_NODES];
    for (uint32_t i = 0; i < RFT_MAX_NODES; i++)
        ids[i] = i + 1;
    for (size_t i = RFT_MAX_NODES - 1; i > 0; i--) {
        size_t j = (size_t)fl_rng_below(rng, i + 1);
        uint32_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
    m->snapshot.conf.n_nodes = (size_t)fl_rng_range(rng, 1, RFT_MAX_NODES);
    memcpy(m->snapshot.conf.nodes, ids,
           m->snapshot.conf.n_nodes * sizeof(ids[0]));

    size_t len = (size_t)fl_rng_below(rng, 300);
    m->snapshot.data =
        pool->bytes + fl_rng_below(rng, sizeof(pool->bytes) - len);
    m->snapshot.len = len;
    m->offset = random_u64(rng);
    m->done = fl_rng_chance(rng, 0.5);
}

/* The fields of m that its frame carries, as frame.h lists them; the
 * others are zero, as the decoder leaves them. */
static struct rft_msg carried_fields(const struct rft_msg *m)
{
    struct rft_msg c = {
        .type = m->type, .from = m->from, .to = m->to, .term = m->term};

    switch (m->type) {
    case RFT_MSG_VOTE:
    case RFT_MSG_PRE_VOTE:
        c.last_index = m->last_index;
        c.last_term = m->last_term;
        break;
    case RFT_MSG_VOTE_REPLY:
    case RFT_MSG_PRE_VOTE_REPLY:
        c.granted = m->granted;
        break;
    case RFT_MSG_APPEND:
        c.prev_index = m->prev_index;
        c.prev_term = m->prev_term;
        c.commit = m->commit;
        c.round = m->round;
        c.entries = m->entries;
        c.n_entries = m->n_entries;
        break;
    case RFT_MSG_APPEND_REPLY:
        c.success = m->success;
        c.match = m->match;
        c.round = m->round;
        break;
    case RFT_MSG_SNAPSHOT:
        c.snapshot = m->snapshot;
        c.commit = m->commit;
        c.round = m->round;
        c.offset = m->offset;
        c.done = m->done;
        break;
    case RFT_MSG_SNAPSHOT_REPLY:
        c.snapshot.index = m->snapshot.index;
        c.offset = m->offset;
        c.done = m->done;
        c.success = m->success;
        c.match = m->match;
        c.round = m->round;
        break;
    }
    return c;
}

/* Random messages with every field set go into one stream, which arrives
 * in random pieces; each decodes to the fields its type carries. */
START_TEST(test_random_round_trip)
{
    uint64_t seed = 0xf7a3e000u + (uint64_t)_i;
    struct random_pool *pool = malloc(sizeof(*pool));
    struct rft_msg *msgs = calloc(RANDOM_MESSAGES, sizeof(*msgs));
    struct rff_decoder d;
    struct fl_buf b;
    struct fl_rng rng;
    size_t off = 0;
    size_t received = 0;
    size_t count = 0;

    fprintf(stderr, "check_frame: random round trip, seed %" PRIu64 "\n", seed);
    ck_assert_ptr_nonnull(pool);
    ck_assert_ptr_nonnull(msgs);
    fl_rng_seed(&rng, seed);
    for (size_t i = 0; i < sizeof(pool->bytes); i++)
        pool->bytes[i] = (unsigned char)fl_rng_next(&rng);

    fl_buf_init(&b);
    for (size_t k = 0; k < RANDOM_MESSAGES; k++) {
        random_msg(&rng, pool, k, &msgs[k]);
        ck_assert_msg(rff_encode(&b, &msgs[k]) == 0,
                      "seed %" PRIu64 ": message %zu does not encode", seed, k);
    }
    ck_assert(!b.failed);

    rff_decoder_init(&d);
    while (off < b.len) {
        struct rff_frame frame;
        size_t consumed;
        const char *why = NULL;
        int rc = rff_decode(&d, b.data + off, received - off, &frame, &consumed,
                            &why);
        ck_assert_msg(rc == RFF_FRAME || rc == RFF_NEED_MORE,
                      "seed %" PRIu64 ": message %zu: %s", seed, count,
                      why != NULL ? why : fl_strerror(rc));
        if (rc == RFF_NEED_MORE) {
            ck_assert_msg(received < b.len,
                          "seed %" PRIu64 ": message %zu needs bytes past "
                          "the end",
                          seed, count);
            size_t step = 1 + (size_t)fl_rng_below(&rng, 200);
            received = received + step < b.len ? received + step : b.len;
            continue;
        }
        struct rft_msg want = carried_fields(&msgs[count]);
        ck_assert_msg(frame.type != RFF_HELLO && frame.msg.type == want.type,
                      "seed %" PRIu64 ": message %zu changed type", seed,
                      count);
        assert_same_msg(&want, &frame.msg);
        off += consumed;
        count++;
    }
    ck_assert_msg(count == RANDOM_MESSAGES,
                  "seed %" PRIu64 ": decoded %zu of %d messages", seed, count,
                  RANDOM_MESSAGES);
    rff_decoder_free(&d);
    fl_buf_free(&b);
    free(msgs);
    free(pool);
}
END_TEST

static Suite *frame_suite(void)
{
    Suite *s = suite_create("raft_frame");
    TCase *t = tcase_create("codec");

    tcase_add_test(t, test_vote_frame_layout);
    tcase_add_test(t, test_hello_frame_layout);
    tcase_add_loop_test(t, test_round_trip_each_sample, 0, N_SAMPLES);
    tcase_add_test(t, test_unused_fields_not_sent);
    tcase_add_test(t, test_hello_round_trip);
    tcase_add_test(t, test_decode_several_frames_in_one_buffer);
    tcase_add_test(t, test_decode_byte_by_byte);
    tcase_add_test(t, test_reject_bad_version);
    tcase_add_test(t, test_reject_bad_crc);
    tcase_add_test(t, test_reject_oversized_length);
    tcase_add_test(t, test_reject_unknown_frame_type);
    tcase_add_test(t, test_reject_reserved_bytes);
    tcase_add_loop_test(t, test_reject_payload_length_mismatch, 0, N_SAMPLES);
    tcase_add_test(t, test_reject_entry_count_beyond_payload);
    tcase_add_test(t, test_reject_entry_data_beyond_payload);
    tcase_add_test(t, test_reject_unknown_entry_type);
    tcase_add_test(t, test_reject_bad_boolean);
    tcase_add_test(t, test_reject_node_id_out_of_range);
    tcase_add_test(t, test_reject_hello_out_of_range);
    tcase_add_test(t, test_reject_bad_configuration);
    tcase_add_test(t, test_encoder_rejects_invalid_messages);
    suite_add_tcase(s, t);

    t = tcase_create("limits");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_max_payload_round_trip);
    tcase_add_test(t, test_max_entries_round_trip);
    suite_add_tcase(s, t);

    t = tcase_create("random");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, test_random_round_trip, 0, 8);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(frame_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
