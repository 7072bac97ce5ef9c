/*
 * A small blocking-with-deadline RESP2 client for the workloads.
 *
 * It sends commands as RESP arrays of bulk strings and parses the reply
 * types the systems under test return: simple strings, errors, integers,
 * bulk strings and the null bulk string. Arrays are rejected as a protocol
 * error because no command the workloads send returns one.
 *
 * Every call takes an absolute deadline on fl_clock_now_ns time. Sockets are
 * non-blocking and each wait goes through poll, so no call blocks past its
 * deadline. A connection that returned an error other than a reply from the
 * server (timeout, reset, malformed reply) must be closed: its stream may
 * hold a late reply.
 */
#ifndef WL_RESP_CLIENT_H
#define WL_RESP_CLIENT_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum wl_resp_type {
    WL_RESP_SIMPLE, /* +OK */
    WL_RESP_ERROR,  /* -NOTLEADER 127.0.0.1:7001 */
    WL_RESP_INT,    /* :1 */
    WL_RESP_BULK,   /* $3\r\nabc */
    WL_RESP_NULL,   /* $-1 */
};

/* One reply. text points into the connection's buffer and stays valid
 * until the next wl_resp_read or wl_resp_close on that connection. */
struct wl_resp_reply {
    enum wl_resp_type type;
    int64_t integer;    /* WL_RESP_INT */
    struct fl_str text; /* SIMPLE, ERROR (without the '-'), BULK */
};

struct wl_resp_conn {
    int fd;        /* -1 when closed */
    char *in;      /* received bytes */
    size_t in_len; /* bytes in `in` */
    size_t in_cap;
    size_t in_off;     /* bytes of `in` already parsed */
    struct fl_buf out; /* commands not yet sent */
};

/* Largest bulk string accepted in a reply. */
#define WL_RESP_MAX_BULK (64u << 20)

void wl_resp_init(struct wl_resp_conn *c);

/*
 * Parses "HOST:PORT" (numeric IPv4 host, or "[IPv6]:PORT") into addr.
 * Returns 0, or FL_EINPUT when the text is not such an address.
 */
int wl_resp_parse_addr(const char *text, struct sockaddr_storage *addr,
                       unsigned *addr_len);

/*
 * Opens a TCP connection to text ("HOST:PORT"), closing any connection c
 * had. Returns 0, -ETIMEDOUT when deadline_ns passes first, FL_EINPUT for a
 * malformed address, or the connect error (-ECONNREFUSED, ...). A failed
 * connect sent nothing to the server.
 */
int wl_resp_connect(struct wl_resp_conn *c, const char *text,
                    int64_t deadline_ns);

/* Appends one command of argc arguments to the send buffer. */
void wl_resp_append(struct wl_resp_conn *c, size_t argc,
                    const struct fl_str *argv);

/*
 * Writes the send buffer. Returns 0 when all of it was handed to the
 * kernel, or -ETIMEDOUT / -errno. *sent (may be NULL) is set to the bytes
 * written, so a caller can tell a request that never left from one that
 * may have reached the server. The buffer is emptied in both cases.
 */
int wl_resp_flush(struct wl_resp_conn *c, int64_t deadline_ns, size_t *sent);

/*
 * Reads one reply into *r. Returns 0, -ETIMEDOUT, -ECONNRESET when the
 * server closed the connection, another -errno, or FL_EPROTO for a reply
 * this client cannot parse.
 */
int wl_resp_read(struct wl_resp_conn *c, struct wl_resp_reply *r,
                 int64_t deadline_ns);

/* Closes the connection, dropping buffered bytes; c can connect again. */
void wl_resp_close(struct wl_resp_conn *c);

/* Closes the connection and frees the buffers. */
void wl_resp_destroy(struct wl_resp_conn *c);

#endif
