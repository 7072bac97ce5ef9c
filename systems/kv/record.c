/*
 * Record and segment-header encoding and validation.
 */
#include "record.h"

#include "crc32c.h"
#include "error.h"

#include <string.h>

void kv_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void kv_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

uint32_t kv_get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t kv_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void kv_rec_encode(struct fl_buf *b, enum kv_rec_type type, uint64_t seq,
                   const void *payload, size_t len)
{
    unsigned char hdr[KV_REC_HEADER];
    uint32_t crc;

    kv_put_u32(hdr, KV_REC_MAGIC);
    hdr[4] = KV_REC_VERSION;
    hdr[5] = (unsigned char)type;
    hdr[6] = 0;
    hdr[7] = 0;
    kv_put_u32(hdr + 8, (uint32_t)len);
    kv_put_u64(hdr + 12, seq);
    crc = fl_crc32c(0, hdr, 20);
    crc = fl_crc32c(crc, payload, len);
    kv_put_u32(hdr + 20, crc);
    fl_buf_add(b, hdr, sizeof(hdr));
    fl_buf_add(b, payload, len);
}

int kv_rec_check_header(const unsigned char *hdr, size_t *len, const char **why)
{
    bool engine = hdr[5] >= KV_REC_PUT && hdr[5] <= KV_REC_BATCH;
    bool raft = hdr[5] >= KV_REC_RAFT_FIRST && hdr[5] <= KV_REC_RAFT_LAST;
    uint32_t n;

    if (kv_get_u32(hdr) != KV_REC_MAGIC) {
        *why = "bad record magic";
        return FL_ECORRUPT;
    }
    if (hdr[4] != KV_REC_VERSION) {
        *why = "unknown record format version";
        return FL_ECORRUPT;
    }
    if (!engine && !raft) {
        *why = "unknown record type";
        return FL_ECORRUPT;
    }
    if (hdr[6] != 0 || hdr[7] != 0) {
        *why = "nonzero reserved bytes in record header";
        return FL_ECORRUPT;
    }
    n = kv_get_u32(hdr + 8);
    if (n > KV_REC_MAX_PAYLOAD) {
        *why = "record length beyond the limit";
        return FL_ECORRUPT;
    }
    *len = n;
    return 0;
}

int kv_rec_decode(const unsigned char *p, size_t total, bool check_crc,
                  struct kv_rec *out, const char **why)
{
    size_t len;
    int rc;

    if (total < KV_REC_HEADER) {
        *why = "record shorter than its header";
        return FL_ECORRUPT;
    }
    rc = kv_rec_check_header(p, &len, why);
    if (rc != 0)
        return rc;
    if (total != KV_REC_HEADER + len) {
        *why = "record length does not match";
        return FL_ECORRUPT;
    }
    if (check_crc) {
        uint32_t crc = fl_crc32c(0, p, 20);
        crc = fl_crc32c(crc, p + KV_REC_HEADER, len);
        if (crc != kv_get_u32(p + 20)) {
            *why = "record checksum mismatch";
            return FL_ECORRUPT;
        }
    }
    out->type = (enum kv_rec_type)p[5];
    out->seq = kv_get_u64(p + 12);
    out->payload = p + KV_REC_HEADER;
    out->len = len;
    return 0;
}

void kv_seg_encode(unsigned char hdr[KV_SEG_HEADER], uint64_t first_seq)
{
    memset(hdr, 0, KV_SEG_HEADER);
    kv_put_u32(hdr, KV_SEG_MAGIC);
    kv_put_u32(hdr + 4, KV_SEG_VERSION);
    kv_put_u64(hdr + 8, first_seq);
    kv_put_u32(hdr + 28, fl_crc32c(0, hdr, 28));
}

int kv_seg_decode(const unsigned char hdr[KV_SEG_HEADER], uint64_t *first_seq,
                  const char **why)
{
    if (kv_get_u32(hdr) != KV_SEG_MAGIC) {
        *why = "bad segment magic";
        return FL_ECORRUPT;
    }
    if (kv_get_u32(hdr + 28) != fl_crc32c(0, hdr, 28)) {
        *why = "segment header checksum mismatch";
        return FL_ECORRUPT;
    }
    if (kv_get_u32(hdr + 4) != KV_SEG_VERSION) {
        *why = "unknown segment format version";
        return FL_ECORRUPT;
    }
    *first_seq = kv_get_u64(hdr + 8);
    return 0;
}
