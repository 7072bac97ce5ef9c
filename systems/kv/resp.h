/*
 * RESP2, the request and reply format of Redis 2 and later, as fl-kvd
 * speaks it: an incremental parser for client requests and an encoder for
 * replies. Neither half does I/O or keeps global state.
 *
 * A request is either an array of bulk strings,
 *
 *   *2\r\n$3\r\nGET\r\n$1\r\nk\r\n
 *
 * or an inline command, one line of arguments separated by spaces or tabs
 * (what telnet, `printf 'PING\r\n' | nc` and redis-benchmark's inline tests
 * send):
 *
 *   GET k\r\n
 *
 * Lengths are decimal: 0, or a digit from 1 to 9 followed by at most 19
 * more digits. A '+' sign, a leading zero or a negative length is a protocol
 * error, and so are the null bulk string ($-1) and the null array (*-1),
 * which mean "no value" in replies but carry no argument in a request. Each
 * bulk string must be followed by CRLF.
 *
 * Inline arguments may be quoted. Inside "double quotes" the escapes \\ \"
 * \' \n \r \t \a \b and \xHH (two hex digits) are decoded, and any other
 * escape is an error. Inside 'single quotes' only \' is an escape. A closing
 * quote must be followed by a space, a tab or the line end. A quote in the
 * middle of an unquoted argument is an ordinary byte. An inline line may end
 * in a bare LF, as `printf 'PING\n' | nc` sends, but a CR anywhere else in
 * it is an error. Empty inline lines and empty arrays (*0\r\n) are skipped
 * without returning a command, as Redis does.
 */
#ifndef KV_RESP_H
#define KV_RESP_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- request parser ---------------------------------------------------- */

#define KV_RESP_DEFAULT_MAX_ARGS        1024
#define KV_RESP_DEFAULT_MAX_BULK_LEN    ((size_t)512 << 20)
#define KV_RESP_DEFAULT_MAX_INLINE_LEN  ((size_t)64 << 10)
#define KV_RESP_DEFAULT_MAX_REQUEST_LEN ((size_t)1 << 30)

/* Limits on one request. Every field must be at least 1. */
struct kv_resp_limits {
    size_t max_args;     /* arguments, the command name included */
    size_t max_bulk_len; /* bytes in one bulk string */
    /* bytes in one inline command, its line end included */
    size_t max_inline_len;
    /* bytes in one array request: headers, data and CRLFs */
    size_t max_request_len;
};

/* Sets every limit to its KV_RESP_DEFAULT_* value. */
void kv_resp_limits_default(struct kv_resp_limits *limits);

/* One request: argv[0] is the command name. */
struct kv_resp_cmd {
    size_t argc; /* at least 1 */
    const struct fl_str *argv;
};

/* Return values of kv_resp_parse besides errors. */
#define KV_RESP_NEED_MORE 0
#define KV_RESP_COMMAND   1

struct kv_resp_parser;

/*
 * Creates a parser for one connection in *out. limits is borrowed and copied,
 * and NULL means the defaults. Returns 0, FL_EINPUT when a limit is 0, or
 * -ENOMEM.
 */
int kv_resp_parser_new(struct kv_resp_parser **out,
                       const struct kv_resp_limits *limits);

/* Frees p and the argument arrays it lent out. NULL is allowed. */
void kv_resp_parser_free(struct kv_resp_parser *p);

/* Forgets a partly parsed request and any error, as for a new connection. */
void kv_resp_parser_reset(struct kv_resp_parser *p);

/*
 * Parses the next request from data[0, len), the bytes the connection has
 * received and the caller has not yet consumed. After every call, whatever
 * it returns, the caller must remove the first *consumed bytes from its
 * buffer and pass the rest again, followed by newly received bytes. The
 * buffer may move between calls, but its remaining bytes must not change.
 *
 * Returns:
 *   KV_RESP_COMMAND    *cmd is the next request, and *consumed counts its
 *                      bytes plus any empty lines or empty arrays skipped
 *                      before it. Call again: more requests may follow.
 *   KV_RESP_NEED_MORE  no complete request yet. *consumed counts skipped
 *                      empty lines and arrays only. The parser remembers its
 *                      progress, so a request that arrives in many pieces
 *                      costs no more work than one that arrives whole,
 *                      apart from re-reading an incomplete length line of
 *                      at most 24 bytes.
 *   FL_EPROTO          the peer broke the protocol. kv_resp_parser_error
 *                      returns the reason, which a server can send as
 *                      "-ERR Protocol error: REASON" before it closes the
 *                      connection. *consumed is 0.
 *   FL_EINPUT          len is smaller than the part of a pending request
 *                      that earlier calls parsed, so the caller dropped
 *                      bytes it had not consumed. *consumed is 0.
 *   -ENOMEM            an argument array could not grow. *consumed is as
 *                      for KV_RESP_NEED_MORE, and the call may be repeated.
 *
 * FL_EPROTO and FL_EINPUT are sticky: later calls return them again until
 * kv_resp_parser_reset. A request split at any byte boundary parses to the
 * same commands, or the same error, as when it arrives whole.
 *
 * cmd->argv belongs to the parser and stays valid until the next call to
 * kv_resp_parse, kv_resp_parser_reset or kv_resp_parser_free. The arguments
 * of an array request and the unquoted arguments of an inline command point
 * into data, so they are valid only while the caller keeps those bytes in
 * place. A quoted inline argument is decoded into a buffer of the parser.
 */
int kv_resp_parse(struct kv_resp_parser *p, const char *data, size_t len,
                  struct kv_resp_cmd *cmd, size_t *consumed);

/* Returns the reason for the last error, or "" when there is none. */
const char *kv_resp_parser_error(const struct kv_resp_parser *p);

/* Returns true when arg equals word, comparing ASCII letters without case. */
bool kv_resp_arg_is(struct fl_str arg, const char *word);

/* Returns true when cmd's name is name, comparing ASCII letters without
 * case, as in kv_resp_is(&cmd, "GET"). */
bool kv_resp_is(const struct kv_resp_cmd *cmd, const char *name);

/* ---- reply encoder ----------------------------------------------------- */

/*
 * The encoders append one reply, or an array header, to b. Like the fl_buf
 * appenders, they record allocation failure in b->failed.
 *
 * Simple strings and errors are single lines, so each CR or LF in their text
 * becomes a space: no text can end a reply early or inject another one.
 */

/* Appends "+TEXT\r\n", as in "+OK\r\n". */
void kv_resp_add_simple(struct fl_buf *b, const char *text);

/* Appends "-TEXT\r\n". TEXT starts with the error code, as in
 * "ERR unknown command 'FOO'" or "NOTLEADER 10.0.0.2:7001". */
void kv_resp_add_error(struct fl_buf *b, const char *text);

/* Formats TEXT with printf rules, then appends it as kv_resp_add_error. */
void kv_resp_add_errorf(struct fl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends ":N\r\n". */
void kv_resp_add_int(struct fl_buf *b, int64_t n);

/* Appends "$LEN\r\nDATA\r\n". DATA may contain any bytes. */
void kv_resp_add_bulk(struct fl_buf *b, const void *data, size_t len);

/* Appends the null bulk string "$-1\r\n", the reply for a missing key. */
void kv_resp_add_null(struct fl_buf *b);

/* Appends "*COUNT\r\n", which the caller follows with COUNT replies. */
void kv_resp_add_array(struct fl_buf *b, size_t count);

#endif
