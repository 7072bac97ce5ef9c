/*
 * fl-kvd's network side: one epoll loop that accepts RESP2 clients, runs
 * their commands on the engine, and sends each reply only once the record
 * it depends on is durable.
 *
 * Replies keep their order per client: a reply that must wait holds back
 * every later reply of the same client, pipelined or not. The engine's
 * sync thread signals an eventfd whenever more records are durable, and the
 * loop then releases the replies now covered. SIGTERM and SIGINT stop
 * accepting, let every pending reply become durable and be sent, and return.
 */
#ifndef KV_SERVER_H
#define KV_SERVER_H

#include "engine.h"

#include <stddef.h>

struct kv_server_options {
    const char *listen; /* HOST:PORT, numeric host */
    size_t max_clients;
    size_t max_value; /* bytes in one key or value */
};

/*
 * Serves e until SIGTERM or SIGINT, which the caller must have blocked in
 * every thread (before kv_open starts the engine's threads). Returns 0 after a
 * clean stop, or a negative error with the reason in err (a listen address that
 * cannot be bound, for one).
 */
int kv_serve(struct kv_engine *e, const struct kv_server_options *o, char *err,
             size_t errsize);

#endif
