/*
 * The cluster's private network: one network namespace per node, one for
 * the clients and one holding a bridge, joined by veth pairs. Everything
 * is made through netlink (libnl-route-3); nothing is connected to the
 * namespace the runner started in, so no test traffic can leave the
 * machine.
 *
 * Names: the namespaces of run RUN are fl-RUN-br (the bridge), fl-RUN-c
 * (clients) and fl-RUN-n1 ... fl-RUN-nN, each bound under /run/netns the
 * way `ip netns add` does, so `ip netns list` shows them and `faultline
 * clean` can find them after a crash. Addresses are 10.0.0.I/24 for node I
 * and 10.0.0.200/24 for the clients; each run has its own bridge, so runs
 * reuse the same addresses without meeting.
 *
 * Network faults are nftables rules (libnftables) in a node's namespace.
 * Each fault gets a chain of its own in table `inet faultline`, hooked on
 * input and named by the fault's id, so a heal deletes exactly that chain
 * and nothing another fault added. Drops happen on the receiver's input
 * hook, so a sender gets packet loss, never an error. The rules match IPv4
 * only, and eth0 gets no IPv6 address, so no node reaches another around
 * them.
 *
 * A delay is different: it is a netem root qdisc on the node's eth0, so it
 * holds back what the node sends, to every peer and the clients alike.
 *
 * Thread safety: the libnl sockets and nftables contexts inside a nem_net
 * are not thread-safe, so the calls that change one nem_net (block, loss,
 * heal, delay, undelay, destroy) must come from one thread at a time.
 * nem_net_ns_fd and nem_net_addr only read. Separate nem_net objects are
 * independent. No call moves the calling thread into another namespace.
 */
#ifndef NEM_NET_H
#define NEM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NEM_MAX_NODES    9
#define NEM_CLIENT_IDX   0     /* namespace index of the clients */
#define NEM_MAX_DELAY_MS 60000 /* the largest delay nem_net_delay accepts */

struct nem_net;

/*
 * Creates the namespaces, bridge, links and addresses of a run with
 * n_nodes nodes (1 to NEM_MAX_NODES) and brings every link, loopback
 * included, up. run_id is 1 to 16 characters of [a-z0-9]. On failure
 * everything made so far is removed, the reason goes to err and a negative
 * error is returned (-EPERM when not root).
 */
int nem_net_create(struct nem_net **out, const char *run_id, unsigned n_nodes,
                   char *err, size_t err_size);

/*
 * Deletes every namespace of the run, and with them their links and
 * rules, and frees net (NULL is allowed). Safe on a half-made network and
 * on one whose namespace files someone already removed. A namespace lives
 * on while a process or an open fd still refers to it, so stop the node
 * processes first. Returns 0 or the first error.
 */
int nem_net_destroy(struct nem_net *net);

/*
 * Deletes the namespaces of a run the runner no longer tracks, found by
 * name: every /run/netns/fl-RUN-* entry. Returns the number removed, or a
 * negative error.
 */
int nem_net_remove_run(const char *run_id);

/*
 * An open fd of namespace idx (NEM_CLIENT_IDX or a node id from 1), owned
 * by net and close-on-exec; setns(fd, CLONE_NEWNET) enters it. Returns
 * -EINVAL for an idx outside the run.
 */
int nem_net_ns_fd(const struct nem_net *net, unsigned idx);

/* The IPv4 address of namespace idx as text, "10.0.0.3"; NULL outside the
 * run. */
const char *nem_net_addr(const struct nem_net *net, unsigned idx);

/*
 * Blocks traffic into node `to` from each node in from[0..n_from). With
 * one_way false the packets are dropped outright, so no connection between
 * them works in either direction. With one_way true only new connections
 * from those nodes are dropped (ct state new), so `to` can still reach
 * them. fault_id names the chain: a positive number unique in the run. A
 * node has a given id at most once, but several nodes may share an id.
 * Returns 0, or a negative error with the reason in err.
 */
int nem_net_block(struct nem_net *net, uint64_t fault_id, unsigned to,
                  const unsigned *from, size_t n_from, bool one_way, char *err,
                  size_t err_size);

/*
 * Drops each packet into node `to` from any other node with the given
 * probability (0 < p <= 1), rounded to the nearest 1/1000 but at least
 * 1/1000. Packets from the clients and from `to` itself pass.
 */
int nem_net_loss(struct nem_net *net, uint64_t fault_id, unsigned to,
                 double probability, char *err, size_t err_size);

/* Removes the chain of fault_id from node `to`; 0 if it was not there. */
int nem_net_heal(struct nem_net *net, uint64_t fault_id, unsigned to, char *err,
                 size_t err_size);

/*
 * Delays every packet that node `node` sends by delay_ms (1 to
 * NEM_MAX_DELAY_MS) through a netem root qdisc on its eth0. A node has at
 * most one delay at a time, so a second call before nem_net_undelay
 * returns FL_EINPUT. On a kernel without netem nothing changes and the call
 * returns -EOPNOTSUPP. Other failures return a negative error, and every
 * failure puts the reason in err.
 */
int nem_net_delay(struct nem_net *net, unsigned node, unsigned delay_ms,
                  char *err, size_t err_size);

/* Removes the delay of node `node`; 0 if it had none. */
int nem_net_undelay(struct nem_net *net, unsigned node, char *err,
                    size_t err_size);

/*
 * Whether the kernel has the netem qdisc, probed once through libnl on a
 * scratch veth in a scratch namespace. Returns 1, 0, or a negative error
 * (not root).
 */
int nem_net_have_netem(void);

#endif
