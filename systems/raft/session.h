/*
 * Client sessions (Ongaro's thesis, section 6.3), so a command a client
 * retries after a timeout or a leader change takes effect once.
 *
 * A client names each command with its id (not 0) and a sequence number
 * that starts at 1 and grows by one per command. It retries a command with
 * the same pair until it gets a response, and sends the next command only
 * after that. The state machine keeps one record per client: the highest
 * sequence number it applied and the response it gave. The record changes
 * in the same atomic step as the command's effect (for the KV engine, in
 * the same kv_apply batch), and it is part of every snapshot, because the
 * state machine's durable state and the table must never disagree. A
 * command whose number the record already contains gets the recorded
 * response and is never applied again. Records are never expired yet: the table
 * grows with the number of clients.
 *
 * This file holds the rule and the byte formats; the state machine owns the
 * table. Like the rest of the core it does no I/O.
 */
#ifndef RFT_SESSION_H
#define RFT_SESSION_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

/* A client's record: the last command applied and its response. */
struct rft_session {
    uint64_t seq;
    const unsigned char *response; /* points into the decoded bytes */
    size_t len;
};

enum rft_session_verdict {
    RFT_SESSION_APPLY,  /* a new command: apply it and store the response */
    RFT_SESSION_CACHED, /* a retry of the last one: reply from the record */
    /* An older command, a delayed copy of one already replied to: neither
     * apply it nor reply (its response is gone). */
    RFT_SESSION_STALE,
};

/* Decides what to do with command seq of a client whose record is s (NULL
 * when the client has none). Client id 0 means no session: always apply.
 * bugs contains RFT_BUG_* flags; RFT_BUG_NO_SESSION_DEDUP applies everything,
 * so a retried command takes effect twice. */
enum rft_session_verdict rft_session_check(uint64_t client,
                                           const struct rft_session *s,
                                           uint64_t seq, unsigned bugs);

/* Appends a command envelope: magic byte, client id and sequence number
 * (8 bytes each, little-endian), then the operation's bytes. */
void rft_command_encode(struct fl_buf *out, uint64_t client, uint64_t seq,
                        const void *op, size_t len);

/* Splits an envelope; *op points into data. Returns 0, or FL_EINPUT when
 * data is not an envelope. */
int rft_command_decode(const void *data, size_t len, uint64_t *client,
                       uint64_t *seq, const void **op, size_t *op_len);

/* Appends a record's bytes: the sequence number, then the response. */
void rft_session_encode(struct fl_buf *out, uint64_t seq, const void *response,
                        size_t len);

/* Reads a record from its bytes; s points into data. Returns 0 or
 * FL_EINPUT. */
int rft_session_decode(const void *data, size_t len, struct rft_session *s);

#endif
