/*
 * The replicated state machine of the Raft KV cluster: the KV engine
 * (systems/kv) applying committed Raft entries, with client sessions.
 *
 * An entry's command is a session envelope (session.h) around one
 * operation: put, append, delete or compare-and-set. Applying entry index
 * checks the client's session record, which is stored in the engine under
 * a reserved key, and either applies the operation and the new session
 * record in one kv_apply batch at index, or replies from the record. The
 * engine skips indexes it applied before a restart, so the driver can hand
 * it the committed log again from any point.
 *
 * Snapshots of the machine are kv_export bytes, sessions included; a
 * follower loads the leader's with rfm_import.
 */
#ifndef RFT_MACHINE_H
#define RFT_MACHINE_H

#include "buf.h"
#include "engine.h"
#include "raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rfm_op {
    RFM_PUT = 'p',    /* key = value; responds "OK" */
    RFM_APPEND = 'a', /* key = its value + value; responds "OK" */
    RFM_DELETE = 'd', /* responds "1" when the key existed, else "0" */
    RFM_CAS = 'c',    /* key = value if it equals expected; "1" or "0" */
};

/* Keys starting with this byte are the machine's own (session records). */
#define RFM_RESERVED 0xff

struct rfm;

/* Opens the machine on an engine in dir with options o (recovering what
 * the engine persisted). bugs contains RFT_BUG_* flags, and only
 * RFT_BUG_NO_SESSION_DEDUP matters here. Returns 0 or a negative error
 * with the reason in err. */
int rfm_open(struct rfm **out, const char *dir, const struct kv_options *o,
             unsigned bugs, char *err, size_t errsize);

void rfm_close(struct rfm *m);

/* Appends an operation's bytes: its type, the key length (4 bytes,
 * little-endian) and the key, for RFM_CAS the expected value's length and
 * bytes, then the value (none for RFM_DELETE). */
void rfm_encode_op(struct fl_buf *out, enum rfm_op op, struct fl_str key,
                   struct fl_str value, struct fl_str expected);

/* The outcome of applying one entry, for the client waiting on it. */
struct rfm_result {
    bool answered;   /* a response for (client, seq) */
    bool stale;      /* a command of (client, seq) older than its session's */
    uint64_t client; /* set whenever the entry held a command */
    uint64_t seq;
    struct fl_buf response; /* see enum rfm_op, or the cached response;
                               the caller initializes and frees it */
};

/*
 * Applies committed entry e at index. A no-op and an index the engine
 * applied already change nothing (res->answered stays false). A command
 * that is not a valid envelope or operation is applied as nothing, since
 * every replica must do the same. Returns 0 or FL_ESTICKY (see kv_error).
 */
int rfm_apply(struct rfm *m, uint64_t index, const struct rft_entry *e,
              struct rfm_result *res);

/* Copies the value of key into value (empty for a missing key) and sets
 * *found. Returns 0 or FL_ESTICKY. */
int rfm_get(struct rfm *m, struct fl_str key, struct fl_buf *value,
            bool *found);

/* Returns the last index the engine applied. */
uint64_t rfm_applied(struct rfm *m);

/* Makes every applied entry durable (kv_sync). */
int rfm_sync(struct rfm *m);

/* Snapshot bytes of the whole machine; sets *applied. */
int rfm_export(struct rfm *m, struct fl_buf *out, uint64_t *applied);

/* Replaces the machine with snapshot bytes, durably. */
int rfm_import(struct rfm *m, const void *data, size_t len, char *err,
               size_t errsize);

/* Returns the engine, for stats and errors. */
struct kv_engine *rfm_engine(struct rfm *m);

#endif
