/*
 * Encoding and decoding of peer frames; frame.h describes the format.
 * One function per direction walks the per-type fields. The checks that
 * do not depend on the byte layout (node ids, entry types, the
 * configuration, the size bound) live in check_msg, which both directions
 * run, so the encoder never writes a frame the decoder rejects.
 */
#include "frame.h"

#include "crc32c.h"
#include "error.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define STRINGIFY_VALUE(x) #x
#define STRINGIFY(x)       STRINGIFY_VALUE(x)
#define NODE_RANGE         "1.." STRINGIFY(RFT_MAX_NODES)

/* Payload bytes of the fixed fields of each type (see frame.h). */
#define COMMON_BYTES         16 /* from, to, term */
#define HELLO_BYTES          8
#define VOTE_BYTES           (COMMON_BYTES + 16)
#define VOTE_REPLY_BYTES     (COMMON_BYTES + 1)
#define APPEND_BYTES         (COMMON_BYTES + 36)
#define ENTRY_BYTES          13 /* an entry without its data */
#define APPEND_REPLY_BYTES   (COMMON_BYTES + 17)
#define SNAPSHOT_BYTES       (COMMON_BYTES + 46) /* without voters, chunk */
#define SNAPSHOT_REPLY_BYTES (COMMON_BYTES + 34)

/* ---- shared checks ----------------------------------------------------- */

static bool node_in_range(uint32_t id)
{
    return id >= 1 && id <= RFT_MAX_NODES;
}

static bool entry_type_known(enum rft_entry_type type)
{
    return type == RFT_ENTRY_NOOP || type == RFT_ENTRY_COMMAND;
}

static const char *check_conf(const struct rft_conf *conf)
{
    if (conf->n_nodes < 1 || conf->n_nodes > RFT_MAX_NODES)
        return "snapshot configuration size out of range " NODE_RANGE;
    for (size_t i = 0; i < conf->n_nodes; i++) {
        if (!node_in_range(conf->nodes[i]))
            return "snapshot configuration voter id out of range " NODE_RANGE;
        for (size_t j = 0; j < i; j++) {
            if (conf->nodes[j] == conf->nodes[i])
                return "snapshot configuration lists a voter twice";
        }
    }
    return NULL;
}

/* Adds len variable bytes to *size, or returns false when the payload
 * would exceed RFF_MAX_PAYLOAD. */
static bool add_bytes(size_t *size, size_t len)
{
    if (len > RFF_MAX_PAYLOAD || *size > RFF_MAX_PAYLOAD - len)
        return false;
    *size += len;
    return true;
}

/* Validates m and computes its payload size; returns NULL or a reason. */
static const char *check_msg(const struct rft_msg *m, size_t *payload)
{
    static const char *too_large = "message payload above RFF_MAX_PAYLOAD";
    size_t size;

    if (!node_in_range(m->from))
        return "sender node id out of range " NODE_RANGE;
    if (!node_in_range(m->to))
        return "receiver node id out of range " NODE_RANGE;
    switch (m->type) {
    case RFT_MSG_VOTE:
    case RFT_MSG_PRE_VOTE:
        size = VOTE_BYTES;
        break;
    case RFT_MSG_VOTE_REPLY:
    case RFT_MSG_PRE_VOTE_REPLY:
        size = VOTE_REPLY_BYTES;
        break;
    case RFT_MSG_APPEND:
        if (m->n_entries > RFF_MAX_ENTRIES)
            return "more entries than RFF_MAX_ENTRIES";
        size = APPEND_BYTES;
        for (size_t i = 0; i < m->n_entries; i++) {
            if (!entry_type_known(m->entries[i].type))
                return "unknown entry type";
            if (!add_bytes(&size, ENTRY_BYTES + m->entries[i].len))
                return too_large;
        }
        break;
    case RFT_MSG_APPEND_REPLY:
        size = APPEND_REPLY_BYTES;
        break;
    case RFT_MSG_SNAPSHOT: {
        const char *why = check_conf(&m->snapshot.conf);
        if (why != NULL)
            return why;
        size = SNAPSHOT_BYTES + 4 * m->snapshot.conf.n_nodes;
        if (!add_bytes(&size, m->snapshot.len))
            return too_large;
        break;
    }
    case RFT_MSG_SNAPSHOT_REPLY:
        size = SNAPSHOT_REPLY_BYTES;
        break;
    default:
        return "unknown message type";
    }
    *payload = size;
    return NULL;
}

int rff_check_msg(const struct rft_msg *m, const char **why)
{
    size_t payload;

    *why = check_msg(m, &payload);
    return *why == NULL ? 0 : FL_EINPUT;
}

static enum rff_type frame_type_of(enum rft_msg_type type)
{
    switch (type) {
    case RFT_MSG_VOTE:
        return RFF_VOTE;
    case RFT_MSG_VOTE_REPLY:
        return RFF_VOTE_REPLY;
    case RFT_MSG_APPEND:
        return RFF_APPEND;
    case RFT_MSG_APPEND_REPLY:
        return RFF_APPEND_REPLY;
    case RFT_MSG_PRE_VOTE:
        return RFF_PRE_VOTE;
    case RFT_MSG_PRE_VOTE_REPLY:
        return RFF_PRE_VOTE_REPLY;
    case RFT_MSG_SNAPSHOT:
        return RFF_SNAPSHOT;
    case RFT_MSG_SNAPSHOT_REPLY:
        return RFF_SNAPSHOT_REPLY;
    }
    /* check_msg rejects every other type before this is called. */
    assert(0);
    return RFF_HELLO;
}

/* The message type a frame type carries; type is not RFF_HELLO. */
static enum rft_msg_type msg_type_of(enum rff_type type)
{
    switch (type) {
    case RFF_VOTE:
        return RFT_MSG_VOTE;
    case RFF_VOTE_REPLY:
        return RFT_MSG_VOTE_REPLY;
    case RFF_APPEND:
        return RFT_MSG_APPEND;
    case RFF_APPEND_REPLY:
        return RFT_MSG_APPEND_REPLY;
    case RFF_PRE_VOTE:
        return RFT_MSG_PRE_VOTE;
    case RFF_PRE_VOTE_REPLY:
        return RFT_MSG_PRE_VOTE_REPLY;
    case RFF_SNAPSHOT:
        return RFT_MSG_SNAPSHOT;
    case RFF_SNAPSHOT_REPLY:
        return RFT_MSG_SNAPSHOT_REPLY;
    case RFF_HELLO:
        break;
    }
    /* A hello frame carries no message, and rff_decode never passes one. */
    assert(0);
    return RFT_MSG_VOTE;
}

/* ---- encoder ----------------------------------------------------------- */

static void put_le(struct fl_buf *out, uint64_t v, size_t size)
{
    unsigned char bytes[8];

    for (size_t i = 0; i < size; i++)
        bytes[i] = (unsigned char)(v >> (8 * i));
    fl_buf_add(out, bytes, size);
}

static void put_u8(struct fl_buf *out, uint64_t v)
{
    put_le(out, v, 1);
}

static void put_u32(struct fl_buf *out, uint64_t v)
{
    put_le(out, v, 4);
}

static void put_u64(struct fl_buf *out, uint64_t v)
{
    put_le(out, v, 8);
}

static void put_bool(struct fl_buf *out, bool v)
{
    put_u8(out, v ? 1 : 0);
}

/* Appends the header of a frame; finish_frame appends its CRC. */
static size_t start_frame(struct fl_buf *out, enum rff_type type,
                          size_t payload)
{
    size_t start = out->len;

    put_u32(out, payload);
    put_u8(out, RFF_VERSION);
    put_u8(out, type);
    put_u8(out, 0);
    put_u8(out, 0);
    return start;
}

static int finish_frame(struct fl_buf *out, size_t start, size_t payload)
{
    if (out->failed)
        return -ENOMEM;
    /* The per-type writers must produce exactly the size check_msg
     * computed, or the length field would be wrong. */
    assert(out->len - start == RFF_HEADER + payload);
    (void)payload;
    put_u32(out, fl_crc32c(0, out->data + start, out->len - start));
    return out->failed ? -ENOMEM : 0;
}

static void put_entries(struct fl_buf *out, const struct rft_msg *m)
{
    put_u32(out, m->n_entries);
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct rft_entry *e = &m->entries[i];
        put_u64(out, e->term);
        put_u8(out, (uint64_t)e->type);
        put_u32(out, e->len);
        fl_buf_add(out, e->data, e->len);
    }
}

static void put_snapshot_chunk(struct fl_buf *out, const struct rft_msg *m)
{
    const struct rft_snapshot *s = &m->snapshot;

    put_u64(out, s->index);
    put_u64(out, s->term);
    put_u64(out, m->commit);
    put_u64(out, m->round);
    put_u64(out, m->offset);
    put_bool(out, m->done);
    put_u8(out, s->conf.n_nodes);
    for (size_t i = 0; i < s->conf.n_nodes; i++)
        put_u32(out, s->conf.nodes[i]);
    put_u32(out, s->len);
    fl_buf_add(out, s->data, s->len);
}

int rff_encode(struct fl_buf *out, const struct rft_msg *m)
{
    size_t payload;

    if (check_msg(m, &payload) != NULL)
        return FL_EINPUT;
    size_t start = start_frame(out, frame_type_of(m->type), payload);
    put_u32(out, m->from);
    put_u32(out, m->to);
    put_u64(out, m->term);
    switch (m->type) {
    case RFT_MSG_VOTE:
    case RFT_MSG_PRE_VOTE:
        put_u64(out, m->last_index);
        put_u64(out, m->last_term);
        break;
    case RFT_MSG_VOTE_REPLY:
    case RFT_MSG_PRE_VOTE_REPLY:
        put_bool(out, m->granted);
        break;
    case RFT_MSG_APPEND:
        put_u64(out, m->prev_index);
        put_u64(out, m->prev_term);
        put_u64(out, m->commit);
        put_u64(out, m->round);
        put_entries(out, m);
        break;
    case RFT_MSG_APPEND_REPLY:
        put_bool(out, m->success);
        put_u64(out, m->match);
        put_u64(out, m->round);
        break;
    case RFT_MSG_SNAPSHOT:
        put_snapshot_chunk(out, m);
        break;
    case RFT_MSG_SNAPSHOT_REPLY:
        put_u64(out, m->snapshot.index);
        put_u64(out, m->offset);
        put_bool(out, m->done);
        put_bool(out, m->success);
        put_u64(out, m->match);
        put_u64(out, m->round);
        break;
    }
    return finish_frame(out, start, payload);
}

int rff_encode_hello(struct fl_buf *out, const struct rff_hello *hello)
{
    if (!node_in_range(hello->id) || !node_in_range(hello->n_nodes))
        return FL_EINPUT;
    size_t start = start_frame(out, RFF_HELLO, HELLO_BYTES);
    put_u32(out, hello->id);
    put_u32(out, hello->n_nodes);
    return finish_frame(out, start, HELLO_BYTES);
}

/* ---- decoder ----------------------------------------------------------- */

/* A cursor over a payload. The first failure sets error, and every later
 * read then returns 0 without moving, so a decoder can read a run of
 * fields and check error once. */
struct reader {
    const unsigned char *p;
    size_t left;
    const char *error;
};

static const unsigned char *take(struct reader *r, size_t size)
{
    const unsigned char *p = r->p;

    if (r->error != NULL)
        return NULL;
    if (r->left < size) {
        r->error = "frame payload shorter than its fields";
        return NULL;
    }
    r->p += size;
    r->left -= size;
    return p;
}

static uint64_t take_le(struct reader *r, size_t size)
{
    const unsigned char *p = take(r, size);
    uint64_t v = 0;

    if (p == NULL)
        return 0;
    for (size_t i = size; i > 0; i--)
        v = v << 8 | p[i - 1];
    return v;
}

static uint8_t take_u8(struct reader *r)
{
    return (uint8_t)take_le(r, 1);
}

static uint32_t take_u32(struct reader *r)
{
    return (uint32_t)take_le(r, 4);
}

static uint64_t take_u64(struct reader *r)
{
    return take_le(r, 8);
}

static bool take_bool(struct reader *r)
{
    uint8_t v = take_u8(r);

    if (v > 1 && r->error == NULL)
        r->error = "boolean field neither 0 nor 1";
    return v == 1;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Checks the header bytes that have arrived, in offset order, so that a
 * frame split anywhere fails on the same field as the frame whole. */
static const char *check_header(const unsigned char *p, size_t len)
{
    if (len >= 4 && get_u32(p) > RFF_MAX_PAYLOAD)
        return "frame length above RFF_MAX_PAYLOAD (64 MiB)";
    if (len >= 5 && p[4] != RFF_VERSION)
        return "unknown frame format version";
    if (len >= 6 && (p[5] < RFF_HELLO || p[5] > RFF_SNAPSHOT_REPLY))
        return "unknown frame type";
    if ((len >= 7 && p[6] != 0) || (len >= 8 && p[7] != 0))
        return "nonzero reserved bytes in frame header";
    return NULL;
}

/* Makes room for count entries; count is at most RFF_MAX_ENTRIES. */
static int reserve_entries(struct rff_decoder *d, size_t count)
{
    size_t cap = d->cap > 0 ? d->cap : 16;
    struct rft_entry *entries;

    if (count <= d->cap)
        return 0;
    while (cap < count)
        cap *= 2;
    if (cap > RFF_MAX_ENTRIES)
        cap = RFF_MAX_ENTRIES;
    entries = realloc(d->entries, cap * sizeof(*entries));
    if (entries == NULL)
        return -ENOMEM;
    d->entries = entries;
    d->cap = cap;
    return 0;
}

static int take_entries(struct rff_decoder *d, struct reader *r,
                        struct rft_msg *m)
{
    uint32_t count = take_u32(r);

    if (r->error != NULL)
        return 0;
    /* Check the count against the bytes present before allocating, so a
     * short frame cannot make the decoder reserve a large array. */
    if (count > RFF_MAX_ENTRIES) {
        r->error = "more entries than RFF_MAX_ENTRIES";
        return 0;
    }
    if (count > r->left / ENTRY_BYTES) {
        r->error = "entry count does not fit the frame payload";
        return 0;
    }
    if (count == 0)
        return 0;
    if (reserve_entries(d, count) != 0)
        return -ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        struct rft_entry *e = &d->entries[i];
        e->term = take_u64(r);
        e->type = (enum rft_entry_type)take_u8(r);
        e->len = take_u32(r);
        e->data = take(r, e->len);
        if (r->error != NULL)
            return 0;
    }
    m->entries = d->entries;
    m->n_entries = count;
    return 0;
}

static void take_snapshot_chunk(struct reader *r, struct rft_msg *m)
{
    struct rft_snapshot *s = &m->snapshot;

    s->index = take_u64(r);
    s->term = take_u64(r);
    m->commit = take_u64(r);
    m->round = take_u64(r);
    m->offset = take_u64(r);
    m->done = take_bool(r);
    s->conf.n_nodes = take_u8(r);
    if (r->error != NULL)
        return;
    /* Bound the count before filling the fixed-size voter array. */
    if (s->conf.n_nodes < 1 || s->conf.n_nodes > RFT_MAX_NODES) {
        r->error = "snapshot configuration size out of range " NODE_RANGE;
        return;
    }
    for (size_t i = 0; i < s->conf.n_nodes; i++)
        s->conf.nodes[i] = take_u32(r);
    s->len = take_u32(r);
    s->data = take(r, s->len);
}

/* Reads the payload of a message frame into m, which is zeroed. */
static int take_msg(struct rff_decoder *d, struct reader *r, enum rff_type type,
                    struct rft_msg *m)
{
    int rc = 0;

    m->type = msg_type_of(type);
    m->from = take_u32(r);
    m->to = take_u32(r);
    m->term = take_u64(r);
    switch (m->type) {
    case RFT_MSG_VOTE:
    case RFT_MSG_PRE_VOTE:
        m->last_index = take_u64(r);
        m->last_term = take_u64(r);
        break;
    case RFT_MSG_VOTE_REPLY:
    case RFT_MSG_PRE_VOTE_REPLY:
        m->granted = take_bool(r);
        break;
    case RFT_MSG_APPEND:
        m->prev_index = take_u64(r);
        m->prev_term = take_u64(r);
        m->commit = take_u64(r);
        m->round = take_u64(r);
        rc = take_entries(d, r, m);
        break;
    case RFT_MSG_APPEND_REPLY:
        m->success = take_bool(r);
        m->match = take_u64(r);
        m->round = take_u64(r);
        break;
    case RFT_MSG_SNAPSHOT:
        take_snapshot_chunk(r, m);
        break;
    case RFT_MSG_SNAPSHOT_REPLY:
        m->snapshot.index = take_u64(r);
        m->offset = take_u64(r);
        m->done = take_bool(r);
        m->success = take_bool(r);
        m->match = take_u64(r);
        m->round = take_u64(r);
        break;
    }
    return rc;
}

static void take_hello(struct reader *r, struct rff_hello *hello)
{
    hello->id = take_u32(r);
    hello->n_nodes = take_u32(r);
    if (r->error != NULL)
        return;
    if (!node_in_range(hello->id))
        r->error = "hello node id out of range " NODE_RANGE;
    else if (!node_in_range(hello->n_nodes))
        r->error = "hello cluster size out of range " NODE_RANGE;
}

void rff_decoder_init(struct rff_decoder *d)
{
    d->entries = NULL;
    d->cap = 0;
}

void rff_decoder_free(struct rff_decoder *d)
{
    free(d->entries);
    rff_decoder_init(d);
}

int rff_decode(struct rff_decoder *d, const void *data, size_t len,
               struct rff_frame *out, size_t *consumed, const char **why)
{
    const unsigned char *p = data;
    size_t payload;
    size_t total;

    *consumed = 0;
    *why = check_header(p, len);
    if (*why != NULL)
        return FL_EPROTO;
    if (len < RFF_HEADER)
        return RFF_NEED_MORE;
    payload = get_u32(p);
    total = RFF_HEADER + payload + RFF_TRAILER;
    if (len < total)
        return RFF_NEED_MORE;
    if (fl_crc32c(0, p, RFF_HEADER + payload) !=
        get_u32(p + RFF_HEADER + payload)) {
        *why = "frame checksum mismatch";
        return FL_EPROTO;
    }

    struct reader r = {.p = p + RFF_HEADER, .left = payload};
    memset(out, 0, sizeof(*out));
    out->type = (enum rff_type)p[5];
    if (out->type == RFF_HELLO) {
        take_hello(&r, &out->hello);
    } else {
        if (take_msg(d, &r, out->type, &out->msg) != 0)
            return -ENOMEM;
        size_t size;
        if (r.error == NULL)
            r.error = check_msg(&out->msg, &size);
    }
    if (r.error == NULL && r.left != 0)
        r.error = "frame payload longer than its fields";
    if (r.error != NULL) {
        *why = r.error;
        return FL_EPROTO;
    }
    *consumed = total;
    return RFF_FRAME;
}
