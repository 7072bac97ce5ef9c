/*
 * Framing of write-ahead-log records and segment headers.
 *
 * A record is a 24-byte header and a payload:
 *
 *   offset  size  field
 *        0     4  magic "FLKR"
 *        4     1  format version (1)
 *        5     1  record type (enum kv_rec_type, or KV_REC_RAFT_*)
 *        6     2  reserved, zero
 *        8     4  payload length
 *       12     8  sequence number
 *       20     4  CRC32C of bytes 0..20 and the payload
 *
 * All integers are little-endian. The header carries the record's own
 * sequence number, so a record written to the wrong place or left over from
 * an older file fails validation instead of being applied. A segment file
 * starts with a 32-byte header naming its first sequence number.
 */
#ifndef KV_RECORD_H
#define KV_RECORD_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_REC_HEADER      24
#define KV_REC_MAGIC       0x524b4c46u /* "FLKR" */
#define KV_REC_VERSION     1
#define KV_REC_MAX_PAYLOAD (64u << 20)

#define KV_SEG_HEADER  32
#define KV_SEG_MAGIC   0x474b4c46u /* "FLKG" */
#define KV_SEG_VERSION 1

enum kv_rec_type {
    KV_REC_PUT = 1,    /* key, value */
    KV_REC_DELETE = 2, /* key */
    KV_REC_BATCH = 3,  /* caller's log index, then puts and deletes */
};

/* The record types of the Raft storage (systems/raft/storage.c documents
 * their payloads), a block of their own so that types 4 to 15 stay free
 * for the engine. They are not in enum kv_rec_type, so the engine's switch
 * over its own types remains exhaustive, and its replay rejects them as
 * malformed. */
#define KV_REC_RAFT_FIRST            16
#define KV_REC_RAFT_HARD_STATE       16 /* term and vote */
#define KV_REC_RAFT_ENTRY            17 /* one log entry */
#define KV_REC_RAFT_TRUNCATE         18 /* delete the entries from an index on */
#define KV_REC_RAFT_SNAPSHOT         19 /* a snapshot replaces the log prefix */
#define KV_REC_RAFT_CHECKPOINT       20 /* the whole state; entries follow */
#define KV_REC_RAFT_CHECKPOINT_ENTRY 21 /* one entry of that checkpoint */
#define KV_REC_RAFT_LAST             21

/* A record as decoded; payload points into the caller's buffer. */
struct kv_rec {
    enum kv_rec_type type;
    uint64_t seq;
    const unsigned char *payload;
    size_t len;
};

/* Appends one framed record to b. */
void kv_rec_encode(struct fl_buf *b, enum kv_rec_type type, uint64_t seq,
                   const void *payload, size_t len);

/*
 * Checks the header at hdr (KV_REC_HEADER bytes): magic, version, type,
 * reserved bytes and length bound. Returns 0 and the payload length, or
 * FL_ECORRUPT with a static reason.
 */
int kv_rec_check_header(const unsigned char *hdr, size_t *len,
                        const char **why);

/*
 * Decodes and verifies a complete record (header and payload, total bytes
 * at p). With check_crc false the CRC is not compared (the ignore-crc
 * planted bug). Returns 0 or FL_ECORRUPT with a static reason.
 */
int kv_rec_decode(const unsigned char *p, size_t total, bool check_crc,
                  struct kv_rec *out, const char **why);

/* Fills a segment header for a segment whose first record is first_seq. */
void kv_seg_encode(unsigned char hdr[KV_SEG_HEADER], uint64_t first_seq);

/* Verifies a segment header; returns 0 with *first_seq, or FL_ECORRUPT. */
int kv_seg_decode(const unsigned char hdr[KV_SEG_HEADER], uint64_t *first_seq,
                  const char **why);

/* Little-endian helpers shared by the engine's payload formats. */
void kv_put_u32(unsigned char *p, uint32_t v);
void kv_put_u64(unsigned char *p, uint64_t v);
uint32_t kv_get_u32(const unsigned char *p);
uint64_t kv_get_u64(const unsigned char *p);

#endif
