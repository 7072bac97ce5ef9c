/*
 * fl-kvd's network side: one epoll loop that accepts RESP2 clients, runs
 * their commands on the engine, and sends each reply only once the record
 * it depends on is durable.
 *
 * Replies keep their order per client: a reply that must wait holds back
 * every later reply of the same client, pipelined or not. The engine's
 * loop runs the fdatasync of each pass itself (kv_sync), and the engine's
 * sync thread signals an eventfd whenever it made more records durable;
 * either way the loop then releases the replies now covered. A client that
 * does not read its replies is not read from once OUT_HIGH_WATER bytes of
 * its replies are waiting, and sent bytes are dropped from its buffer as it
 * reads. SIGTERM and SIGINT stop accepting connections and running
 * commands, let every pending reply become durable and be sent, and return;
 * clients that have not taken their replies after DRAIN_SECONDS are
 * dropped.
 */
#ifndef KV_SERVER_H
#define KV_SERVER_H

#include "engine.h"

#include <stddef.h>
#include <sys/socket.h>

struct kv_server_options {
    const char *listen; /* HOST:PORT, numeric host */
    /* A socket kv_listen opened for listen, which kv_serve takes over and
     * closes; -1 makes kv_serve open it. */
    int listen_fd;
    size_t max_clients;
    size_t max_value; /* bytes in one key or value */
};

/*
 * Parses a listen address, HOST:PORT with a numeric IPv4 host or an IPv6
 * host in brackets and a port from 0 to 65535 (0: any free port). Returns 0
 * or FL_EINPUT with what was expected in err.
 */
int kv_listen_parse(const char *spec, struct sockaddr_storage *addr,
                    socklen_t *len, char *err, size_t errsize);

/*
 * Opens a listening TCP socket on spec (see kv_listen_parse), so a caller
 * can find a busy port before the slow work of opening the store. Returns
 * the socket, or a negative error with the reason in err.
 */
int kv_listen(const char *spec, char *err, size_t errsize);

/*
 * Serves e until SIGTERM or SIGINT, which the caller must have blocked in
 * every thread (before kv_open starts the engine's threads). Returns 0 after a
 * clean stop, or a negative error with the reason in err (a listen address that
 * cannot be bound, for one).
 */
int kv_serve(struct kv_engine *e, const struct kv_server_options *o, char *err,
             size_t errsize);

#endif
