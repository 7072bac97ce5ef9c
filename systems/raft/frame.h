/*
 * Peer frames: the wire format in which Raft nodes exchange struct rft_msg
 * over a byte stream such as TCP, with an encoder and an incremental
 * decoder. Neither does I/O or keeps global state.
 *
 * A frame is a 12-byte header, a payload and a CRC:
 *
 *   offset  size  field
 *        0     4  payload length n, at most RFF_MAX_PAYLOAD
 *        4     1  format version (RFF_VERSION, 1)
 *        5     1  frame type (enum rff_type)
 *        6     2  reserved, zero
 *        8     n  payload
 *    8 + n     4  CRC32C of bytes 0 .. 8 + n: the header, length included,
 *                 and the payload
 *
 * All integers are little-endian. A boolean is one byte, 0 or 1. Each
 * connection starts with a hello frame from each side. Its payload is:
 *
 *   node id 4 | cluster size 4
 *
 * Every other type carries one message. Its payload starts with
 *
 *   from 4 | to 4 | term 8
 *
 * and goes on by type (numbers in bytes):
 *
 *   RFF_VOTE, RFF_PRE_VOTE    last_index 8 | last_term 8
 *   RFF_VOTE_REPLY,           granted 1
 *   RFF_PRE_VOTE_REPLY
 *   RFF_APPEND                prev_index 8 | prev_term 8 | commit 8 |
 *                             round 8 | entry count 4 | entries
 *                             each entry: term 8 | entry type 1 |
 *                             data length 4 | data
 *   RFF_APPEND_REPLY          success 1 | match 8 | round 8
 *   RFF_SNAPSHOT              snapshot index 8 | snapshot term 8 |
 *                             commit 8 | round 8 | offset 8 | done 1 |
 *                             voter count 1 | voters, 4 each |
 *                             chunk length 4 | chunk
 *   RFF_SNAPSHOT_REPLY        snapshot index 8 | offset 8 | done 1 |
 *                             success 1 | match 8 | round 8
 *
 * A message field its type does not list is not sent and decodes as zero.
 * A frame is valid only when its payload contains exactly these fields, node
 * ids are in 1..RFT_MAX_NODES, an entry's type is an enum rft_entry_type,
 * and a snapshot's configuration has 1..RFT_MAX_NODES distinct voters. So
 * the encoding is canonical: a valid frame re-encodes to the same bytes.
 */
#ifndef RFF_FRAME_H
#define RFF_FRAME_H

#include "buf.h"
#include "raft.h"

#include <stddef.h>
#include <stdint.h>

#define RFF_VERSION     1
#define RFF_HEADER      8 /* bytes before the payload */
#define RFF_TRAILER     4 /* the CRC after it */
#define RFF_MAX_PAYLOAD (64u << 20)
/* Entries in one AppendEntries frame. It bounds the decoder's entry array
 * at 2 MiB, and it is far above the core's default of 64 per message. */
#define RFF_MAX_ENTRIES (1u << 16)

/* Frame types on the wire. The values are fixed by the format and differ
 * from enum rft_msg_type. */
enum rff_type {
    RFF_HELLO = 1,
    RFF_VOTE = 2,
    RFF_VOTE_REPLY = 3,
    RFF_APPEND = 4,
    RFF_APPEND_REPLY = 5,
    RFF_PRE_VOTE = 6,
    RFF_PRE_VOTE_REPLY = 7,
    RFF_SNAPSHOT = 8,
    RFF_SNAPSHOT_REPLY = 9,
};

/* The first frame on a connection: the sender's node id and the number of
 * voters in its cluster. The receiver learns which node is on the other
 * end, and closes a connection from a peer with another cluster size. */
struct rff_hello {
    uint32_t id;      /* 1..RFT_MAX_NODES */
    uint32_t n_nodes; /* 1..RFT_MAX_NODES */
};

/* A decoded frame: hello when type is RFF_HELLO, msg otherwise. */
struct rff_frame {
    enum rff_type type;
    struct rff_hello hello;
    struct rft_msg msg;
};

/* Storage the decoder lends to decoded messages. The fields are private:
 * start with rff_decoder_init and end with rff_decoder_free. */
struct rff_decoder {
    struct rft_entry *entries;
    size_t cap;
};

/* Return values of rff_decode besides errors. */
#define RFF_NEED_MORE 0
#define RFF_FRAME     1

/*
 * Checks that m can be encoded: a known type, node ids in range, known
 * entry types, at most RFF_MAX_ENTRIES entries, a valid configuration in a
 * snapshot chunk, and a payload of at most RFF_MAX_PAYLOAD bytes. Returns 0,
 * or FL_EINPUT with a static reason in *why.
 */
int rff_check_msg(const struct rft_msg *m, const char **why);

/*
 * Appends m to out as one frame. Returns 0, FL_EINPUT when rff_check_msg
 * rejects m (then out is unchanged), or -ENOMEM when out failed to grow
 * (then out->failed is set and its contents are truncated, as for every
 * fl_buf appender). m and the bytes it points to are borrowed.
 */
int rff_encode(struct fl_buf *out, const struct rft_msg *m);

/* Appends a hello frame to out. Returns 0, FL_EINPUT when a field is out
 * of range (out unchanged), or -ENOMEM as rff_encode does. */
int rff_encode_hello(struct fl_buf *out, const struct rff_hello *hello);

void rff_decoder_init(struct rff_decoder *d);

/* Frees the decoder's entry array. The decoder may be initialized again. */
void rff_decoder_free(struct rff_decoder *d);

/*
 * Decodes the frame at the start of data[0, len), the bytes received on a
 * connection that the caller has not consumed yet. Returns:
 *
 *   RFF_FRAME      *out is the frame and *consumed its size in bytes. The
 *                  caller drops those bytes and calls again, because more
 *                  frames may follow.
 *   RFF_NEED_MORE  data contains the start of a frame that is valid so far.
 *                  *consumed is 0: call again with the same bytes and more.
 *   FL_EPROTO      the bytes are not a valid frame, and *why is a static
 *                  reason: a length above RFF_MAX_PAYLOAD, an unknown
 *                  version or frame type, nonzero reserved bytes, a CRC
 *                  mismatch, or a payload that is truncated, too long or
 *                  contains an invalid value. *consumed is 0. The stream cannot
 *                  be resynchronized, so the caller closes the connection.
 *   -ENOMEM        the entry array could not grow. *consumed is 0 and the
 *                  call may be repeated.
 *
 * Header fields are checked as soon as they arrive, so a bad length,
 * version or type fails without waiting for the payload. A frame split at
 * any byte gives the same result as the frame whole. Nothing is read
 * outside data[0, len), and the only allocation is the entry array, at
 * most RFF_MAX_ENTRIES entries.
 *
 * out->msg.entries points into the decoder, and it stays valid until the
 * next rff_decode or rff_decoder_free on d. The entries' data and the
 * snapshot chunk (out->msg.snapshot.data) point into data, so they are
 * valid only while the caller keeps those bytes in place.
 */
int rff_decode(struct rff_decoder *d, const void *data, size_t len,
               struct rff_frame *out, size_t *consumed, const char **why);

#endif
