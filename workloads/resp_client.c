/*
 * The RESP2 client of the workloads. See resp_client.h.
 */
#include "resp_client.h"

#include "clock.h"
#include "error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536
/* A reply line (status, error, integer or bulk header) longer than this is
 * a protocol error, so a server sending endless bytes cannot grow memory. */
#define MAX_LINE (1u << 20)

void wl_resp_init(struct wl_resp_conn *c)
{
    c->fd = -1;
    c->in = NULL;
    c->in_len = 0;
    c->in_cap = 0;
    c->in_off = 0;
    fl_buf_init(&c->out);
}

void wl_resp_close(struct wl_resp_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->in_len = 0;
    c->in_off = 0;
    fl_buf_clear(&c->out);
}

void wl_resp_destroy(struct wl_resp_conn *c)
{
    wl_resp_close(c);
    free(c->in);
    c->in = NULL;
    c->in_cap = 0;
    fl_buf_free(&c->out);
}

static bool parse_port(const char *text, uint16_t *port)
{
    unsigned long v = 0;

    if (*text == '\0')
        return false;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535)
            return false;
    }
    if (v == 0)
        return false;
    *port = (uint16_t)v;
    return true;
}

int wl_resp_parse_addr(const char *text, struct sockaddr_storage *addr,
                       unsigned *addr_len)
{
    char host[64];
    const char *colon;
    size_t host_len;
    uint16_t port;

    memset(addr, 0, sizeof(*addr));
    if (text[0] == '[') {
        const char *close_bracket = strchr(text, ']');
        if (close_bracket == NULL || close_bracket[1] != ':')
            return FL_EINPUT;
        host_len = (size_t)(close_bracket - text - 1);
        if (host_len == 0 || host_len >= sizeof(host))
            return FL_EINPUT;
        memcpy(host, text + 1, host_len);
        host[host_len] = '\0';
        if (!parse_port(close_bracket + 2, &port))
            return FL_EINPUT;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return FL_EINPUT;
        *addr_len = sizeof(*a6);
        return 0;
    }
    colon = strrchr(text, ':');
    if (colon == NULL)
        return FL_EINPUT;
    host_len = (size_t)(colon - text);
    if (host_len == 0 || host_len >= sizeof(host))
        return FL_EINPUT;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (!parse_port(colon + 1, &port))
        return FL_EINPUT;
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return FL_EINPUT;
    *addr_len = sizeof(*a4);
    return 0;
}

/* Waits until fd is ready for events or deadline_ns passes. Returns 0 or
 * -ETIMEDOUT, or -errno when poll fails. */
static int wait_fd(int fd, short events, int64_t deadline_ns)
{
    for (;;) {
        int64_t left = deadline_ns - fl_clock_now_ns();
        struct pollfd p = {.fd = fd, .events = events};

        if (left <= 0)
            return -ETIMEDOUT;
        /* Round up so a wait never ends just before the deadline. */
        int64_t ms = (left + FL_NSEC_PER_MSEC - 1) / FL_NSEC_PER_MSEC;
        int rc = poll(&p, 1, ms > 1000 ? 1000 : (int)ms);
        if (rc < 0 && errno != EINTR)
            return -errno;
        if (rc > 0)
            return 0;
    }
}

int wl_resp_connect(struct wl_resp_conn *c, const char *text,
                    int64_t deadline_ns)
{
    struct sockaddr_storage addr;
    unsigned addr_len;
    int one = 1;
    int err = 0;
    socklen_t err_len = sizeof(err);
    int rc;

    wl_resp_close(c);
    rc = wl_resp_parse_addr(text, &addr, &addr_len);
    if (rc != 0)
        return rc;
    c->fd =
        socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    /* Requests are small and each waits for its reply: send at once. */
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&addr, addr_len) == 0)
        return 0;
    if (errno != EINPROGRESS) {
        rc = -errno;
        goto fail;
    }
    rc = wait_fd(c->fd, POLLOUT, deadline_ns);
    if (rc != 0)
        goto fail;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) {
        rc = -errno;
        goto fail;
    }
    if (err != 0) {
        rc = -err;
        goto fail;
    }
    return 0;

fail:
    wl_resp_close(c);
    return rc;
}

void wl_resp_append(struct wl_resp_conn *c, size_t argc,
                    const struct fl_str *argv)
{
    fl_buf_printf(&c->out, "*%zu\r\n", argc);
    for (size_t i = 0; i < argc; i++) {
        fl_buf_printf(&c->out, "$%zu\r\n", argv[i].len);
        fl_buf_add(&c->out, argv[i].ptr, argv[i].len);
        fl_buf_add(&c->out, "\r\n", 2);
    }
}

int wl_resp_flush(struct wl_resp_conn *c, int64_t deadline_ns, size_t *sent)
{
    size_t off = 0;
    int rc = 0;

    if (c->fd < 0)
        rc = -ENOTCONN;
    else if (c->out.failed)
        rc = -ENOMEM;
    while (rc == 0 && off < c->out.len) {
        ssize_t n =
            send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = wait_fd(c->fd, POLLOUT, deadline_ns);
        } else {
            rc = n < 0 ? -errno : -ECONNRESET;
        }
    }
    if (sent != NULL)
        *sent = off;
    fl_buf_clear(&c->out);
    return rc;
}

/* Parses a signed decimal int64 from s[0..len). */
static bool parse_i64(const char *s, size_t len, int64_t *out)
{
    bool negative = false;
    uint64_t v = 0;
    size_t i = 0;

    if (len > 0 && s[0] == '-') {
        negative = true;
        i = 1;
    }
    if (i == len || len - i > 19)
        return false;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX + (negative ? 1u : 0u))
        return false;
    if (negative)
        *out = v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return true;
}

/* Parses one reply from the unconsumed input. Returns 1 with *used set to
 * its length, 0 when more bytes are needed, or FL_EPROTO. */
static int parse_reply(const char *p, size_t len, struct wl_resp_reply *r,
                       size_t *used)
{
    const char *eol = NULL;
    size_t line;

    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n') {
            eol = p + i;
            break;
        }
    }
    if (eol == NULL)
        return len > MAX_LINE ? FL_EPROTO : 0;
    line = (size_t)(eol - p);
    if (line == 0)
        return FL_EPROTO;
    switch (p[0]) {
    case '+':
    case '-':
        r->type = p[0] == '+' ? WL_RESP_SIMPLE : WL_RESP_ERROR;
        r->text = (struct fl_str){p + 1, line - 1};
        *used = line + 2;
        return 1;
    case ':':
        r->type = WL_RESP_INT;
        r->text = (struct fl_str){p + 1, line - 1};
        if (!parse_i64(p + 1, line - 1, &r->integer))
            return FL_EPROTO;
        *used = line + 2;
        return 1;
    case '$': {
        int64_t n;
        if (!parse_i64(p + 1, line - 1, &n) || n < -1 ||
            n > (int64_t)WL_RESP_MAX_BULK)
            return FL_EPROTO;
        if (n == -1) {
            r->type = WL_RESP_NULL;
            r->text = (struct fl_str){NULL, 0};
            *used = line + 2;
            return 1;
        }
        size_t body = (size_t)n;
        if (len < line + 2 + body + 2)
            return 0;
        if (p[line + 2 + body] != '\r' || p[line + 2 + body + 1] != '\n')
            return FL_EPROTO;
        r->type = WL_RESP_BULK;
        r->text = (struct fl_str){p + line + 2, body};
        *used = line + 2 + body + 2;
        return 1;
    }
    default:
        /* Arrays included: no command a workload sends returns one. */
        return FL_EPROTO;
    }
}

/* Makes room for READ_CHUNK more bytes of input. Returns 0 or -ENOMEM. */
static int reserve_input(struct wl_resp_conn *c)
{
    size_t cap = c->in_cap != 0 ? c->in_cap : READ_CHUNK;
    char *in;

    if (c->in_cap - c->in_len >= READ_CHUNK)
        return 0;
    while (cap - c->in_len < READ_CHUNK)
        cap *= 2;
    in = realloc(c->in, cap);
    if (in == NULL)
        return -ENOMEM;
    c->in = in;
    c->in_cap = cap;
    return 0;
}

int wl_resp_read(struct wl_resp_conn *c, struct wl_resp_reply *r,
                 int64_t deadline_ns)
{
    if (c->fd < 0)
        return -ENOTCONN;
    /* Drop what earlier replies consumed; their text is no longer needed. */
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    for (;;) {
        size_t used = 0;
        int rc = parse_reply(c->in, c->in_len, r, &used);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            c->in_off = used;
            return 0;
        }
        rc = reserve_input(c);
        if (rc != 0)
            return rc;
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
        } else if (n == 0) {
            return -ECONNRESET;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = wait_fd(c->fd, POLLIN, deadline_ns);
            if (rc != 0)
                return rc;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
}
