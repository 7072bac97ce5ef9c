/*
 * Client sessions. See session.h.
 */
#include "session.h"

#include "error.h"
#include "raft.h"

#include <string.h>

#define COMMAND_MAGIC 0xc5u
#define COMMAND_HEAD  17 /* magic, client, seq */

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

enum rft_session_verdict rft_session_check(uint64_t client,
                                           const struct rft_session *s,
                                           uint64_t seq, unsigned bugs)
{
    if (client == 0 || s == NULL || (bugs & RFT_BUG_NO_SESSION_DEDUP))
        return RFT_SESSION_APPLY;
    if (seq == s->seq)
        return RFT_SESSION_CACHED;
    return seq < s->seq ? RFT_SESSION_STALE : RFT_SESSION_APPLY;
}

void rft_command_encode(struct fl_buf *out, uint64_t client, uint64_t seq,
                        const void *op, size_t len)
{
    unsigned char head[COMMAND_HEAD];

    head[0] = COMMAND_MAGIC;
    put_u64(head + 1, client);
    put_u64(head + 9, seq);
    fl_buf_add(out, head, sizeof(head));
    if (len > 0)
        fl_buf_add(out, op, len);
}

int rft_command_decode(const void *data, size_t len, uint64_t *client,
                       uint64_t *seq, const void **op, size_t *op_len)
{
    const unsigned char *p = data;

    if (len < COMMAND_HEAD || p[0] != COMMAND_MAGIC)
        return FL_EINPUT;
    *client = get_u64(p + 1);
    *seq = get_u64(p + 9);
    *op = p + COMMAND_HEAD;
    *op_len = len - COMMAND_HEAD;
    return 0;
}

void rft_session_encode(struct fl_buf *out, uint64_t seq, const void *response,
                        size_t len)
{
    unsigned char head[8];

    put_u64(head, seq);
    fl_buf_add(out, head, sizeof(head));
    if (len > 0)
        fl_buf_add(out, response, len);
}

int rft_session_decode(const void *data, size_t len, struct rft_session *s)
{
    const unsigned char *p = data;

    if (len < 8)
        return FL_EINPUT;
    s->seq = get_u64(p);
    s->response = p + 8;
    s->len = len - 8;
    return 0;
}
