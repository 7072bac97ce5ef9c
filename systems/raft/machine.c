/*
 * The replicated KV state machine. See machine.h.
 */
#include "machine.h"

#include "error.h"
#include "session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rfm {
    struct kv_engine *kv;
    unsigned bugs;
    struct fl_buf key;     /* the session key being looked up */
    struct fl_buf record;  /* its stored record */
    struct fl_buf value;   /* an append's new value */
    struct fl_buf updated; /* the new session record */
};

int rfm_open(struct rfm **out, const char *dir, const struct kv_options *o,
             unsigned bugs, char *err, size_t errsize)
{
    struct rfm *m = calloc(1, sizeof(*m));
    int rc;

    *out = NULL;
    if (m == NULL)
        return -ENOMEM;
    rc = kv_open(dir, o, &m->kv, err, errsize);
    if (rc != 0) {
        free(m);
        return rc;
    }
    m->bugs = bugs;
    fl_buf_init(&m->key);
    fl_buf_init(&m->record);
    fl_buf_init(&m->value);
    fl_buf_init(&m->updated);
    *out = m;
    return 0;
}

void rfm_close(struct rfm *m)
{
    if (m == NULL)
        return;
    kv_close(m->kv);
    fl_buf_free(&m->key);
    fl_buf_free(&m->record);
    fl_buf_free(&m->value);
    fl_buf_free(&m->updated);
    free(m);
}

static void put_len(struct fl_buf *out, size_t len)
{
    unsigned char b[4];

    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(len >> (8 * i));
    fl_buf_add(out, b, sizeof(b));
}

void rfm_encode_op(struct fl_buf *out, enum rfm_op op, struct fl_str key,
                   struct fl_str value, struct fl_str expected)
{
    fl_buf_addc(out, (char)op);
    put_len(out, key.len);
    fl_buf_add(out, key.ptr, key.len);
    if (op == RFM_CAS) {
        put_len(out, expected.len);
        fl_buf_add(out, expected.ptr, expected.len);
    }
    if (op != RFM_DELETE)
        fl_buf_add(out, value.ptr, value.len);
}

/* Reads a 4-byte length at *off and the bytes after it as *out. */
static bool take(const unsigned char *p, size_t len, size_t *off,
                 struct fl_str *out)
{
    size_t n = 0;

    if (len - *off < 4)
        return false;
    for (int i = 3; i >= 0; i--)
        n = n << 8 | p[*off + (size_t)i];
    *off += 4;
    if (n > len - *off)
        return false;
    *out = (struct fl_str){(const char *)p + *off, n};
    *off += n;
    return true;
}

/* An operation as decoded; strings point into the entry. */
struct op {
    enum rfm_op type;
    struct fl_str key;
    struct fl_str value;
    struct fl_str expected;
};

/* Splits an operation; returns false for bytes that are not one. */
static bool decode_op(const unsigned char *p, size_t len, struct op *op)
{
    size_t off = 1;

    if (len < 1)
        return false;
    op->type = (enum rfm_op)p[0];
    if (op->type != RFM_PUT && op->type != RFM_APPEND &&
        op->type != RFM_DELETE && op->type != RFM_CAS)
        return false;
    if (!take(p, len, &off, &op->key) || op->key.len == 0 ||
        (unsigned char)op->key.ptr[0] == RFM_RESERVED)
        return false;
    op->expected = (struct fl_str){"", 0};
    if (op->type == RFM_CAS && !take(p, len, &off, &op->expected))
        return false;
    op->value = (struct fl_str){(const char *)p + off, len - off};
    return op->type != RFM_DELETE || off == len;
}

/* Builds the reserved key of a client's session record. */
static struct fl_str session_key(struct rfm *m, uint64_t client)
{
    fl_buf_clear(&m->key);
    fl_buf_addc(&m->key, (char)RFM_RESERVED);
    fl_buf_printf(&m->key, "session/%" PRIu64, client);
    return (struct fl_str){m->key.data, m->key.len};
}

static uint64_t last_applied(struct rfm *m)
{
    struct kv_stats st;

    kv_stats(m->kv, &st);
    return st.last_applied;
}

static int get_key(struct rfm *m, struct fl_str key, struct fl_buf *value,
                   bool *found)
{
    uint64_t wait;

    return kv_get(m->kv, key, value, found, &wait);
}

/* Turns op into engine operations and its response: "OK" for put and
 * append, "1" or "0" for delete (found) and compare-and-set (swapped). */
static int execute(struct rfm *m, const struct op *op, struct kv_op *ops,
                   size_t *n, struct fl_buf *response)
{
    bool found = false;
    bool swap;
    int rc = 0;

    if (op->type != RFM_PUT)
        rc = get_key(m, op->key, &m->value, &found);
    if (rc != 0)
        return rc;
    switch (op->type) {
    case RFM_PUT:
        ops[(*n)++] = (struct kv_op){
            .type = KV_OP_PUT, .key = op->key, .value = op->value};
        fl_buf_adds(response, "OK");
        break;
    case RFM_APPEND:
        fl_buf_add(&m->value, op->value.ptr, op->value.len);
        ops[(*n)++] = (struct kv_op){.type = KV_OP_PUT,
                                     .key = op->key,
                                     .value = {m->value.data, m->value.len}};
        fl_buf_adds(response, "OK");
        break;
    case RFM_DELETE:
        if (found)
            ops[(*n)++] = (struct kv_op){.type = KV_OP_DELETE, .key = op->key};
        fl_buf_adds(response, found ? "1" : "0");
        break;
    case RFM_CAS:
        swap = found && m->value.len == op->expected.len &&
               memcmp(m->value.data ? m->value.data : "", op->expected.ptr,
                      op->expected.len) == 0;
        if (swap)
            ops[(*n)++] = (struct kv_op){
                .type = KV_OP_PUT, .key = op->key, .value = op->value};
        fl_buf_adds(response, swap ? "1" : "0");
        break;
    }
    return 0;
}

int rfm_apply(struct rfm *m, uint64_t index, const struct rft_entry *e,
              struct rfm_result *res)
{
    struct kv_op ops[2];
    size_t n = 0;
    uint64_t client = 0;
    uint64_t seq = 0;
    const void *body;
    size_t body_len;
    struct op op;
    struct rft_session s;
    bool have = false;
    bool found;
    bool skipped;
    uint64_t wait;
    int rc;

    res->answered = false;
    res->stale = false;
    res->client = 0;
    res->seq = 0;
    fl_buf_clear(&res->response);
    if (index <= last_applied(m))
        return 0; /* applied before a restart */
    if (e->type == RFT_ENTRY_COMMAND &&
        rft_command_decode(e->data, e->len, &client, &seq, &body, &body_len) ==
            0 &&
        decode_op(body, body_len, &op)) {
        struct fl_str skey = session_key(m, client);
        if (client != 0) {
            rc = get_key(m, skey, &m->record, &found);
            if (rc != 0)
                return rc;
            have = found &&
                   rft_session_decode(m->record.data, m->record.len, &s) == 0;
        }
        switch (rft_session_check(client, have ? &s : NULL, seq, m->bugs)) {
        case RFT_SESSION_CACHED:
            res->answered = true;
            res->client = client;
            res->seq = seq;
            fl_buf_add(&res->response, s.response, s.len);
            break;
        case RFT_SESSION_STALE:
            res->stale = true;
            res->client = client;
            res->seq = seq;
            break;
        case RFT_SESSION_APPLY:
            rc = execute(m, &op, ops, &n, &res->response);
            if (rc != 0)
                return rc;
            if (client != 0) {
                fl_buf_clear(&m->updated);
                rft_session_encode(&m->updated, seq, res->response.data,
                                   res->response.len);
                ops[n++] =
                    (struct kv_op){.type = KV_OP_PUT,
                                   .key = skey,
                                   .value = {m->updated.data, m->updated.len}};
            }
            res->answered = true;
            res->client = client;
            res->seq = seq;
            break;
        }
    }
    if (m->value.failed || m->updated.failed || res->response.failed ||
        m->key.failed)
        return -ENOMEM;
    /* Also for no-ops and duplicates, so the engine's applied index
     * follows the log. */
    return kv_apply(m->kv, index, ops, n, &skipped, &wait);
}

int rfm_get(struct rfm *m, struct fl_str key, struct fl_buf *value, bool *found)
{
    return get_key(m, key, value, found);
}

uint64_t rfm_applied(struct rfm *m)
{
    return last_applied(m);
}

int rfm_sync(struct rfm *m)
{
    return kv_sync(m->kv);
}

int rfm_export(struct rfm *m, struct fl_buf *out, uint64_t *applied)
{
    return kv_export(m->kv, out, applied);
}

int rfm_import(struct rfm *m, const void *data, size_t len, char *err,
               size_t errsize)
{
    return kv_import(m->kv, data, len, err, errsize);
}

struct kv_engine *rfm_engine(struct rfm *m)
{
    return m->kv;
}
