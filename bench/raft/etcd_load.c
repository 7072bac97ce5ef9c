/*
 * etcd_load: a closed-loop load generator for etcd's v3 HTTP/JSON gateway,
 * the counterpart of redis-benchmark in bench/raft/run.sh. Each client owns
 * one keep-alive HTTP/1.1 connection and sends its next request as soon as
 * the reply to the previous one has arrived, so every client has exactly
 * one request in flight. All connections run in one thread on one epoll
 * loop, as redis-benchmark's do by default, so neither client gets more
 * threads than the other.
 *
 * Keys and values match `redis-benchmark -r KEY_SPACE -d VALUE_SIZE`: keys
 * are "key:" and a 12-digit decimal number drawn uniformly below
 * KEY_SPACE, values are VALUE_SIZE bytes of 'x'. The output is one CSV
 * table with redis-benchmark's --csv columns, so one parser reads both.
 *
 * The endpoint must be a numeric address in 127.0.0.0/8: this program is
 * for benchmarks on one machine and sends no traffic anywhere else.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS      1000
#define MAX_REQUESTS     10000000u
#define MAX_VALUE_SIZE   (1u << 20)
#define MAX_KEY_SPACE    1000000000000u /* keys have 12 decimal digits */
#define MAX_HEADER_BYTES 65536
/* Puts in one fill transaction. etcd rejects a transaction with more
 * operations than --max-txn-ops, which is 128 by default in etcd 3.4. */
#define FILL_BATCH 100
#define KEY_FORMAT "key:%012" PRIu64

static const char usage_text[] =
    "Usage: etcd_load COMMAND --endpoint 127.0.0.1:PORT [OPTIONS]\n"
    "\n"
    "Sends requests to the v3 HTTP/JSON gateway of one etcd member.\n"
    "\n"
    "Commands:\n"
    "  put      POST /v3/kv/put with a random key, back to back from each\n"
    "           client; prints a redis-benchmark style CSV table\n"
    "  range    POST /v3/kv/range (a linearizable read) of a random key,\n"
    "           back to back from each client; prints the same table\n"
    "  fill     writes every key of the key space once, in transactions of\n"
    "           100 puts, then checks that the member counts exactly\n"
    "           KEY_SPACE keys under the prefix \"key:\"\n"
    "  status   prints the member's id, its leader's id and its Raft term,\n"
    "           from POST /v3/maintenance/status, as\n"
    "           member_id=N leader=N raft_term=N (leader=0: none known)\n"
    "\n"
    "Options:\n"
    "  --endpoint ADDR     member's client URL host and port, a numeric\n"
    "                      address in 127.0.0.0/8 (required)\n"
    "  --clients N         concurrent connections, each with one request in\n"
    "                      flight (default 1, at most 1000)\n"
    "  --requests N        requests in total over all clients (default\n"
    "                      10000, at most 10000000)\n"
    "  --value-size N      bytes in each value (default 16, at most\n"
    "                      1048576)\n"
    "  --key-space N       keys are drawn from key:000000000000 up to\n"
    "                      KEY_SPACE - 1 (default 10000)\n"
    "  --seed N            seed of the key choice (default 1)\n"
    "  --expect-found      with range: exit 1 when a reply contains no key\n"
    "  --timeout-s N       give up and exit 1 when the command has not\n"
    "                      finished after N seconds (default 300)\n"
    "  -h, --help          show this help\n"
    "\n"
    "A latency runs from just before a request is written until its whole\n"
    "reply has been read. Latencies are in milliseconds, and percentiles\n"
    "are nearest-rank over every request. rps is the number of requests\n"
    "divided by the time from the first request to the last reply.\n"
    "\n"
    "Exit codes: 0 on success; 1 when a connection fails, a reply is not\n"
    "HTTP 200, a check fails or the timeout passes; 2 for a usage error.\n";

enum command { CMD_PUT, CMD_RANGE, CMD_FILL, CMD_STATUS };

struct options {
    enum command command;
    struct sockaddr_in addr;
    char host_header[64]; /* "127.0.0.1:PORT" */
    unsigned clients;
    uint64_t requests;
    uint64_t value_size;
    uint64_t key_space;
    uint64_t seed;
    bool expect_found;
    unsigned timeout_s;
};

/* A byte buffer that grows by doubling. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};

/* One connection and the request it has in flight. */
struct client {
    int fd;
    struct buf out; /* the request being written */
    size_t out_off; /* bytes of out already written */
    struct buf in;  /* bytes of the reply read so far */
    uint64_t sent_ns;
    uint64_t rng;
    bool waiting; /* a request is in flight */
};

/* A complete HTTP reply at the start of a client's input buffer. */
struct reply {
    int status;
    bool closing;    /* the reply has "Connection: close" */
    size_t length;   /* bytes of the whole reply in the input buffer */
    struct buf body; /* the body, with chunked encoding removed */
};

/* State of one put, range or fill run. */
struct run {
    const struct options *opts;
    const char *path;
    uint64_t total;    /* requests to send */
    uint64_t issued;   /* requests sent or being written */
    uint64_t finished; /* replies read */
    uint64_t missing;  /* range replies without a key */
    uint64_t *latencies_ns;
    char *value_b64;
    uint64_t start_ns;
    uint64_t end_ns;
};

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("etcd_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("etcd_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("; see --help\n", stderr);
    va_end(ap);
    exit(2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data)
        die("out of memory growing a buffer to %zu bytes", cap);
    b->data = data;
    b->cap = cap;
}

static void buf_append(struct buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("formatting a request failed");
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Removes the first n bytes of b. */
static void buf_consume(struct buf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* Appends the standard base64 encoding (RFC 4648, with padding) of
 * data, which is what the gateway expects for bytes fields. */
static void base64_append(struct buf *b, const void *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = data;
    if (len == 0)
        return; /* b->data may still be NULL */
    buf_reserve(b, (len + 2) / 3 * 4);
    char *out = b->data + b->len;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = alphabet[(v >> 6) & 63];
        *out++ = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    b->len = (size_t)(out - b->data);
}

static void key_base64_append(struct buf *b, uint64_t key)
{
    /* Room for 20 digits, although --key-space keeps keys to 12. */
    char key_text[32];
    int len = snprintf(key_text, sizeof(key_text), KEY_FORMAT, key);
    base64_append(b, key_text, (size_t)len);
}

/* splitmix64, which seeds each client's xorshift64* generator. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t xorshift64star(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1du;
}

/* ------------------------------------------------------------------------ */
/* Options */

static uint64_t parse_u64(const char *option, const char *text, uint64_t min,
                          uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < min || v > max)
        die_usage("invalid %s '%s': expected an integer from %" PRIu64
                  " to %" PRIu64,
                  option, text, min, max);
    return (uint64_t)v;
}

static void parse_endpoint(struct options *o, const char *text)
{
    char host[INET_ADDRSTRLEN];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof(host))
        die_usage("invalid --endpoint '%s': expected 127.0.0.1:PORT", text);
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';

    memset(&o->addr, 0, sizeof(o->addr));
    o->addr.sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &o->addr.sin_addr) != 1)
        die_usage("invalid --endpoint '%s': the host must be a numeric IPv4 "
                  "address",
                  text);
    if ((ntohl(o->addr.sin_addr.s_addr) >> 24) != 127)
        die_usage("invalid --endpoint '%s': only loopback addresses "
                  "(127.0.0.0/8) are accepted",
                  text);
    uint64_t port = parse_u64("--endpoint port", colon + 1, 1, 65535);
    o->addr.sin_port = htons((uint16_t)port);
    snprintf(o->host_header, sizeof(o->host_header), "%s:%" PRIu64, host, port);
}

static void parse_options(struct options *o, int argc, char **argv)
{
    enum {
        OPT_ENDPOINT = 256,
        OPT_CLIENTS,
        OPT_REQUESTS,
        OPT_VALUE_SIZE,
        OPT_KEY_SPACE,
        OPT_SEED,
        OPT_EXPECT_FOUND,
        OPT_TIMEOUT,
    };
    static const struct option long_options[] = {
        {"endpoint", required_argument, NULL, OPT_ENDPOINT},
        {"clients", required_argument, NULL, OPT_CLIENTS},
        {"requests", required_argument, NULL, OPT_REQUESTS},
        {"value-size", required_argument, NULL, OPT_VALUE_SIZE},
        {"key-space", required_argument, NULL, OPT_KEY_SPACE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"expect-found", no_argument, NULL, OPT_EXPECT_FOUND},
        {"timeout-s", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };

    *o = (struct options){
        .clients = 1,
        .requests = 10000,
        .value_size = 16,
        .key_space = 10000,
        .seed = 1,
        .timeout_s = 300,
    };
    bool have_endpoint = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_ENDPOINT:
            parse_endpoint(o, optarg);
            have_endpoint = true;
            break;
        case OPT_CLIENTS:
            o->clients =
                (unsigned)parse_u64("--clients", optarg, 1, MAX_CLIENTS);
            break;
        case OPT_REQUESTS:
            o->requests = parse_u64("--requests", optarg, 1, MAX_REQUESTS);
            break;
        case OPT_VALUE_SIZE:
            o->value_size =
                parse_u64("--value-size", optarg, 0, MAX_VALUE_SIZE);
            break;
        case OPT_KEY_SPACE:
            o->key_space = parse_u64("--key-space", optarg, 1, MAX_KEY_SPACE);
            break;
        case OPT_SEED:
            o->seed = parse_u64("--seed", optarg, 0, UINT64_MAX);
            break;
        case OPT_EXPECT_FOUND:
            o->expect_found = true;
            break;
        case OPT_TIMEOUT:
            o->timeout_s = (unsigned)parse_u64("--timeout-s", optarg, 1, 86400);
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        default:
            fputs("etcd_load: see --help\n", stderr);
            exit(2);
        }
    }

    if (optind != argc - 1)
        die_usage(optind >= argc ? "missing COMMAND" : "expected one COMMAND");
    const char *command = argv[optind];
    if (strcmp(command, "put") == 0)
        o->command = CMD_PUT;
    else if (strcmp(command, "range") == 0)
        o->command = CMD_RANGE;
    else if (strcmp(command, "fill") == 0)
        o->command = CMD_FILL;
    else if (strcmp(command, "status") == 0)
        o->command = CMD_STATUS;
    else
        die_usage("unknown command '%s'", command);
    if (!have_endpoint)
        die_usage("missing --endpoint");
}

/* ------------------------------------------------------------------------ */
/* HTTP */

static int connect_endpoint(const struct options *o)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket failed: %s", strerror(errno));
    if (connect(fd, (const struct sockaddr *)&o->addr, sizeof(o->addr)) < 0)
        die("connecting to %s failed: %s", o->host_header, strerror(errno));
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        die("setting TCP_NODELAY failed: %s", strerror(errno));
    return fd;
}

/* Replaces out with a POST of body (a JSON object) to path. */
static void build_request(struct buf *out, const struct options *o,
                          const char *path, const struct buf *body)
{
    out->len = 0;
    buf_printf(out,
               "POST %s HTTP/1.1\r\nHost: %s\r\n"
               "Content-Type: application/json\r\n"
               "Content-Length: %zu\r\n\r\n",
               path, o->host_header, body->len);
    buf_append(out, body->data, body->len);
}

/* Returns whether the header name at line (of line_len bytes) is name,
 * ignoring case, and points *value past the colon and blanks. */
static bool header_is(const char *line, size_t line_len, const char *name,
                      const char **value)
{
    size_t n = strlen(name);
    if (line_len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return false;
    const char *v = line + n + 1;
    while (v < line + line_len && (*v == ' ' || *v == '\t'))
        v++;
    *value = v;
    return true;
}

/* Decodes a chunked body starting at p. Returns the bytes it took, 0 when
 * more input is needed; exits on a malformed chunk. Trailer fields after
 * the last chunk are skipped. */
static size_t parse_chunked(const char *p, size_t avail, struct buf *body)
{
    size_t off = 0;
    body->len = 0;
    for (;;) {
        const char *eol = memmem(p + off, avail - off, "\r\n", 2);
        if (!eol)
            return 0;
        char *end;
        errno = 0;
        unsigned long long size = strtoull(p + off, &end, 16);
        if (errno || end == p + off || size > MAX_REQUESTS * 64ull)
            die("invalid chunk size in an HTTP reply");
        off = (size_t)(eol - p) + 2;
        if (size == 0)
            break;
        if (avail - off < size + 2)
            return 0;
        buf_append(body, p + off, (size_t)size);
        off += (size_t)size + 2;
    }
    /* Trailer lines, then the empty line that ends the reply. */
    for (;;) {
        const char *eol = memmem(p + off, avail - off, "\r\n", 2);
        if (!eol)
            return 0;
        size_t line_len = (size_t)(eol - (p + off));
        off += line_len + 2;
        if (line_len == 0)
            return off;
    }
}

/* Parses the reply at the start of in. Returns false when it is not yet
 * complete; exits on a malformed reply. */
static bool parse_reply(const struct buf *in, struct reply *r)
{
    const char *p = in->data;
    const char *header_end = in->len ? memmem(p, in->len, "\r\n\r\n", 4) : NULL;
    if (!header_end) {
        if (in->len > MAX_HEADER_BYTES)
            die("no end of the HTTP header in the first %d bytes of a reply",
                MAX_HEADER_BYTES);
        return false;
    }
    size_t header_len = (size_t)(header_end - p) + 4;

    /* "HTTP/1.x NNN", read by hand because the buffer has no NUL. The
     * header ends with a blank line, so the status line has an end. */
    const char *status_end = memmem(p, header_len, "\r\n", 2);
    if (status_end - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' ||
        p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
        p[11] > '9')
        die("invalid HTTP status line: %.*s", (int)(status_end - p), p);
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');

    bool chunked = false, have_length = false, closing = false;
    unsigned long long content_length = 0;
    const char *line = status_end + 2;
    while (line < header_end) {
        const char *eol =
            memmem(line, (size_t)(header_end + 2 - line), "\r\n", 2);
        size_t line_len = (size_t)(eol - line);
        const char *value;
        if (header_is(line, line_len, "Content-Length", &value)) {
            content_length = strtoull(value, NULL, 10);
            have_length = true;
        } else if (header_is(line, line_len, "Transfer-Encoding", &value)) {
            chunked = strncasecmp(value, "chunked", 7) == 0;
        } else if (header_is(line, line_len, "Connection", &value)) {
            closing = strncasecmp(value, "close", 5) == 0;
        }
        line = eol + 2;
    }
    size_t avail = in->len - header_len;
    if (chunked) {
        size_t used = parse_chunked(p + header_len, avail, &r->body);
        if (used == 0)
            return false;
        r->length = header_len + used;
    } else {
        if (!have_length)
            die("an HTTP reply has neither Content-Length nor chunked "
                "encoding");
        if (avail < content_length)
            return false;
        r->body.len = 0;
        buf_append(&r->body, p + header_len, (size_t)content_length);
        r->length = header_len + (size_t)content_length;
    }
    r->status = status;
    r->closing = closing;
    buf_reserve(&r->body, 1);
    r->body.data[r->body.len] = '\0';
    return true;
}

static void check_status(const struct reply *r, const char *path)
{
    if (r->status != 200)
        die("%s returned HTTP status %d: %.*s", path, r->status,
            (int)(r->body.len < 500 ? r->body.len : 500), r->body.data);
}

/* Sends one request on a blocking connection and reads its reply. */
static void exchange(const struct options *o, const char *path,
                     const struct buf *body, struct reply *r)
{
    int fd = connect_endpoint(o);
    struct buf out = {0}, in = {0};
    build_request(&out, o, path, body);
    for (size_t off = 0; off < out.len;) {
        ssize_t n = write(fd, out.data + off, out.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("writing to %s failed: %s", o->host_header, strerror(errno));
        off += (size_t)n;
    }
    while (!parse_reply(&in, r)) {
        buf_reserve(&in, 65536);
        ssize_t n = read(fd, in.data + in.len, in.cap - in.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("reading from %s failed: %s", o->host_header, strerror(errno));
        if (n == 0)
            die("%s closed the connection before replying to %s",
                o->host_header, path);
        in.len += (size_t)n;
    }
    check_status(r, path);
    close(fd);
    free(out.data);
    free(in.data);
}

/* Returns the member name of object as an unsigned integer. etcd's gateway
 * encodes 64-bit integers as JSON strings, so strings are accepted too. */
static uint64_t json_u64(const cJSON *object, const char *name,
                         const char *path)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    if (cJSON_IsString(item))
        return strtoull(item->valuestring, NULL, 10);
    if (cJSON_IsNumber(item) && item->valuedouble >= 0)
        return (uint64_t)item->valuedouble;
    die("the reply of %s has no field \"%s\"", path, name);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The load loop */

/* Writes the JSON body of request number seq of the run into body. */
static void build_body(struct run *run, struct client *c, uint64_t seq,
                       struct buf *body)
{
    const struct options *o = run->opts;
    body->len = 0;
    switch (o->command) {
    case CMD_PUT:
        buf_printf(body, "{\"key\":\"");
        key_base64_append(body, xorshift64star(&c->rng) % o->key_space);
        buf_printf(body, "\",\"value\":\"%s\"}", run->value_b64);
        break;
    case CMD_RANGE:
        buf_printf(body, "{\"key\":\"");
        key_base64_append(body, xorshift64star(&c->rng) % o->key_space);
        buf_printf(body, "\"}");
        break;
    case CMD_FILL: {
        uint64_t first = seq * FILL_BATCH;
        uint64_t last = first + FILL_BATCH;
        if (last > o->key_space)
            last = o->key_space;
        buf_printf(body, "{\"success\":[");
        for (uint64_t key = first; key < last; key++) {
            buf_printf(body, "%s{\"requestPut\":{\"key\":\"",
                       key == first ? "" : ",");
            key_base64_append(body, key);
            buf_printf(body, "\",\"value\":\"%s\"}}", run->value_b64);
        }
        buf_printf(body, "]}");
        break;
    }
    case CMD_STATUS:
        die("status has no load loop");
    }
}

/* Builds the next request of the run in c's output buffer, if one is
 * left, and marks c as waiting for its reply. */
static void issue(struct run *run, struct client *c, struct buf *body)
{
    if (run->issued == run->total) {
        c->waiting = false;
        return;
    }
    build_body(run, c, run->issued, body);
    run->issued++;
    build_request(&c->out, run->opts, run->path, body);
    c->out_off = 0;
    c->waiting = true;
    c->sent_ns = now_ns();
}

/* Writes the unsent part of c's request. Returns whether all of it is
 * written. */
static bool flush_request(struct client *c, const struct options *o)
{
    while (c->out_off < c->out.len) {
        ssize_t n =
            write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (n < 0)
            die("writing to %s failed: %s", o->host_header, strerror(errno));
        c->out_off += (size_t)n;
    }
    return true;
}

static void watch(int epfd, struct client *c, bool want_write)
{
    struct epoll_event ev = {
        .events = EPOLLIN | (want_write ? EPOLLOUT : 0u),
        .data.ptr = c,
    };
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl failed: %s", strerror(errno));
}

/* Sends c's next request and watches for writability when the socket
 * did not take all of it. */
static void start_next(struct run *run, struct client *c, int epfd,
                       struct buf *body)
{
    issue(run, c, body);
    if (c->waiting && !flush_request(c, run->opts))
        watch(epfd, c, true);
}

/* Reads what c's socket has and handles a complete reply. */
static void handle_readable(struct run *run, struct client *c, int epfd,
                            struct reply *r, struct buf *body)
{
    const struct options *o = run->opts;
    bool closed = false;
    for (;;) {
        buf_reserve(&c->in, 65536);
        ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0)
            die("reading from %s failed: %s", o->host_header, strerror(errno));
        if (n == 0) {
            closed = true;
            break;
        }
        c->in.len += (size_t)n;
    }

    /* A reply that arrived together with the close is still read, so
     * that its status or Connection header explains the close. */
    if (c->in.len > 0 && parse_reply(&c->in, r)) {
        uint64_t done_ns = now_ns();
        if (!c->waiting || r->length != c->in.len)
            die("%s sent bytes that answer no request", o->host_header);
        check_status(r, run->path);
        /* Each client keeps one connection for its whole run, so a reply
         * that closes it would make the next request fail. */
        if (r->closing)
            die("%s closed a connection after a reply with HTTP status %d",
                o->host_header, r->status);
        if (o->command == CMD_RANGE && !strstr(r->body.data, "\"kvs\""))
            run->missing++;
        buf_consume(&c->in, r->length);
        run->latencies_ns[run->finished++] = done_ns - c->sent_ns;
        run->end_ns = done_ns;
        if (closed)
            c->waiting = false;
        else
            start_next(run, c, epfd, body);
    }
    if (!closed)
        return;
    if (c->waiting || c->in.len > 0 || run->issued < run->total)
        die("%s closed a connection after %" PRIu64 " of %" PRIu64 " replies",
            o->host_header, run->finished, run->total);
    /* This client has sent all it had to, so the server may close its
     * idle connection. */
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

/* Runs the requests of run over opts->clients connections until every
 * reply is in. */
static void run_load(struct run *run)
{
    const struct options *o = run->opts;
    unsigned nclients = o->clients;
    if ((uint64_t)nclients > run->total)
        nclients = (unsigned)run->total;

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1 failed: %s", strerror(errno));
    struct client *clients = calloc(nclients, sizeof(*clients));
    run->latencies_ns = calloc(run->total, sizeof(*run->latencies_ns));
    if (!clients || !run->latencies_ns)
        die("out of memory for %u clients and %" PRIu64 " latencies", nclients,
            run->total);

    uint64_t seed_state = o->seed;
    for (unsigned i = 0; i < nclients; i++) {
        struct client *c = &clients[i];
        c->fd = connect_endpoint(o);
        int flags = fcntl(c->fd, F_GETFL);
        if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) < 0)
            die("making a socket non-blocking failed: %s", strerror(errno));
        c->rng = splitmix64(&seed_state) | 1; /* xorshift needs non-zero */
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl failed: %s", strerror(errno));
    }

    struct reply r = {0};
    struct buf body = {0};
    uint64_t deadline_ns = now_ns() + (uint64_t)o->timeout_s * 1000000000u;
    run->start_ns = now_ns();
    run->end_ns = run->start_ns;
    for (unsigned i = 0; i < nclients; i++)
        start_next(run, &clients[i], epfd, &body);

    struct epoll_event events[64];
    while (run->finished < run->total) {
        if (now_ns() > deadline_ns)
            die("timed out after %u s with %" PRIu64 " of %" PRIu64
                " replies read",
                o->timeout_s, run->finished, run->total);
        int n = epoll_wait(epfd, events, 64, 1000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait failed: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct client *c = events[i].data.ptr;
            if (events[i].events & EPOLLOUT) {
                if (flush_request(c, o))
                    watch(epfd, c, false);
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                handle_readable(run, c, epfd, &r, &body);
        }
    }

    for (unsigned i = 0; i < nclients; i++) {
        if (clients[i].fd >= 0)
            close(clients[i].fd);
        free(clients[i].out.data);
        free(clients[i].in.data);
    }
    free(clients);
    free(r.body.data);
    free(body.data);
    close(epfd);
}

/* ------------------------------------------------------------------------ */
/* Commands */

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Returns the nearest-rank percentile p (0 < p <= 100) of n sorted values:
 * the smallest value with at least p percent of all values at or below
 * it. */
static uint64_t percentile(const uint64_t *sorted, uint64_t n, double p)
{
    uint64_t rank = (uint64_t)((double)n * p / 100.0 + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* Prints the table of a put or range run in redis-benchmark's --csv
 * layout. */
static void print_table(const char *test, struct run *run)
{
    uint64_t n = run->finished;
    qsort(run->latencies_ns, n, sizeof(*run->latencies_ns), compare_u64);
    double sum_ns = 0;
    for (uint64_t i = 0; i < n; i++)
        sum_ns += (double)run->latencies_ns[i];
    double seconds = (double)(run->end_ns - run->start_ns) / 1e9;

    printf("\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\","
           "\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\","
           "\"max_latency_ms\"\n");
    printf("\"%s\",\"%.2f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\","
           "\"%.3f\"\n",
           test, (double)n / seconds, sum_ns / (double)n / 1e6,
           ms(run->latencies_ns[0]), ms(percentile(run->latencies_ns, n, 50)),
           ms(percentile(run->latencies_ns, n, 95)),
           ms(percentile(run->latencies_ns, n, 99)),
           ms(run->latencies_ns[n - 1]));
}

/* Returns the number of keys under the prefix "key:" that the member
 * stores, from a linearizable count-only range. */
static uint64_t count_keys(const struct options *o)
{
    static const char path[] = "/v3/kv/range";
    struct buf body = {0};
    struct reply r = {0};
    buf_printf(&body, "{\"key\":\"");
    base64_append(&body, "key:", 4);
    /* The range end is the prefix with its last byte incremented. */
    buf_printf(&body, "\",\"range_end\":\"");
    base64_append(&body, "key;", 4);
    buf_printf(&body, "\",\"count_only\":true}");
    exchange(o, path, &body, &r);

    cJSON *json = cJSON_Parse(r.body.data);
    if (!json)
        die("the reply of %s is not JSON: %s", path, r.body.data);
    /* etcd leaves out a count of zero, as protobuf's JSON mapping does
     * for every default value. */
    uint64_t count = cJSON_GetObjectItemCaseSensitive(json, "count")
                         ? json_u64(json, "count", path)
                         : 0;
    cJSON_Delete(json);
    free(body.data);
    free(r.body.data);
    return count;
}

static void command_status(const struct options *o)
{
    static const char path[] = "/v3/maintenance/status";
    struct buf body = {0};
    struct reply r = {0};
    buf_printf(&body, "{}");
    exchange(o, path, &body, &r);

    cJSON *json = cJSON_Parse(r.body.data);
    if (!json)
        die("the reply of %s is not JSON: %s", path, r.body.data);
    const cJSON *header = cJSON_GetObjectItemCaseSensitive(json, "header");
    if (!cJSON_IsObject(header))
        die("the reply of %s has no header: %s", path, r.body.data);
    /* A member without a leader omits the leader field. */
    uint64_t leader = cJSON_GetObjectItemCaseSensitive(json, "leader")
                          ? json_u64(json, "leader", path)
                          : 0;
    printf("member_id=%" PRIu64 " leader=%" PRIu64 " raft_term=%" PRIu64 "\n",
           json_u64(header, "member_id", path), leader,
           json_u64(header, "raft_term", path));
    cJSON_Delete(json);
    free(body.data);
    free(r.body.data);
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(&o, argc, argv);
    if (o.command == CMD_STATUS) {
        command_status(&o);
        return 0;
    }

    struct run run = {.opts = &o};
    char *value = malloc(o.value_size + 1);
    struct buf value_b64 = {0};
    if (!value)
        die("out of memory for a %" PRIu64 "-byte value", o.value_size);
    memset(value, 'x', o.value_size);
    base64_append(&value_b64, value, o.value_size);
    buf_append(&value_b64, "", 1);
    run.value_b64 = value_b64.data;

    switch (o.command) {
    case CMD_PUT:
    case CMD_RANGE:
        run.path = o.command == CMD_PUT ? "/v3/kv/put" : "/v3/kv/range";
        run.total = o.requests;
        run_load(&run);
        print_table(o.command == CMD_PUT ? "PUT" : "RANGE", &run);
        if (o.expect_found && run.missing > 0)
            die("%" PRIu64 " of %" PRIu64 " range replies found no key",
                run.missing, run.finished);
        break;
    case CMD_FILL: {
        run.path = "/v3/kv/txn";
        run.total = (o.key_space + FILL_BATCH - 1) / FILL_BATCH;
        run_load(&run);
        uint64_t count = count_keys(&o);
        if (count != o.key_space)
            die("the member counts %" PRIu64 " keys under \"key:\" after "
                "the fill; expected %" PRIu64,
                count, o.key_space);
        printf("filled %" PRIu64 " keys in %.2f s\n", o.key_space,
               (double)(run.end_ns - run.start_ns) / 1e9);
        break;
    }
    case CMD_STATUS:
        break;
    }

    free(run.latencies_ns);
    free(value);
    free(value_b64.data);
    return 0;
}
