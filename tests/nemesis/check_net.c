/*
 * Tests for the cluster network (nemesis/net.h) on real namespaces. They
 * cover creation and connectivity, blocks, one-way blocks and loss as seen
 * by TCP and UDP, healing, and netem delays (measured only on kernels with
 * sch_netem). They also cover removal of full and half-made networks, isolation
 * of two runs that use the same addresses, and rejection of invalid input.
 *
 * Needs root; exits 77 (skipped) without it. Every test uses run ids made
 * of a letter and this binary's pid, and the parent removes whatever those
 * runs left after each test case, so a failed assertion leaves nothing
 * behind either.
 */
#include "net.h"

#include "error.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TCP_PORT   7100
#define UDP_PORT   7200
#define TIMEOUT_MS 300
#define RUN_TAGS   "abcdefghijklmnopqr"

/* The pid of the test binary, set before Check forks the tests. */
static pid_t main_pid;

/* ---- helpers ----------------------------------------------------------- */

/*
 * Writes the run id of tag (one of RUN_TAGS) into buf. Each test has tags
 * of its own, because a failed test leaves its network to the teardown,
 * which runs only after the whole test case.
 */
static void run_id(char *buf, size_t size, char tag)
{
    snprintf(buf, size, "%c%d", tag, (int)main_pid);
}

/* Removes what any run of this binary left behind (the unchecked
 * teardown, run in the parent). */
static void remove_all_runs(void)
{
    for (const char *tag = RUN_TAGS; *tag != '\0'; tag++) {
        char id[32];

        run_id(id, sizeof(id), *tag);
        (void)nem_net_remove_run(id);
    }
}

/* Counts the /run/netns entries of run id. */
static int count_ns_files(const char *id)
{
    char prefix[64];
    struct dirent *entry;
    DIR *dir = opendir("/run/netns");
    int n = 0;

    if (dir == NULL)
        return 0;
    snprintf(prefix, sizeof(prefix), "fl-%s-", id);
    while ((entry = readdir(dir)) != NULL) {
        if (strncmp(entry->d_name, prefix, strlen(prefix)) == 0)
            n++;
    }
    closedir(dir);
    return n;
}

static bool ns_file_exists(const char *id, const char *suffix)
{
    char path[128];
    struct stat st;

    snprintf(path, sizeof(path), "/run/netns/fl-%s-%s", id, suffix);
    return stat(path, &st) == 0;
}

static struct nem_net *create_net(char tag, unsigned n_nodes)
{
    struct nem_net *net = NULL;
    char id[32], err[512] = "";
    int rc;

    run_id(id, sizeof(id), tag);
    rc = nem_net_create(&net, id, n_nodes, err, sizeof(err));
    ck_assert_msg(rc == 0, "nem_net_create(%s): %s", id, err);
    ck_assert_ptr_nonnull(net);
    return net;
}

struct socket_job {
    int ns_fd;
    int type;
    int fd; /* the socket, or -errno */
};

static void *socket_thread(void *arg)
{
    struct socket_job *job = arg;

    if (setns(job->ns_fd, CLONE_NEWNET) < 0) {
        job->fd = -errno;
        return NULL;
    }
    job->fd = socket(AF_INET, job->type | SOCK_CLOEXEC, 0);
    if (job->fd < 0)
        job->fd = -errno;
    return NULL;
}

/*
 * Opens a socket inside namespace ns_fd. A helper thread enters the
 * namespace and ends there, so the test's own thread stays where it is.
 * The socket stays in the namespace it was created in.
 */
static int socket_in(int ns_fd, int type)
{
    struct socket_job job = {.ns_fd = ns_fd, .type = type, .fd = -EINVAL};
    pthread_t thread;

    ck_assert_int_eq(pthread_create(&thread, NULL, socket_thread, &job), 0);
    pthread_join(thread, NULL);
    ck_assert_msg(job.fd >= 0, "socket in namespace: %s", strerror(-job.fd));
    return job.fd;
}

static struct sockaddr_in inet_addr_port(const char *addr, uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};

    ck_assert_int_eq(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
    return sa;
}

/* A TCP listener on node idx's address; the caller closes it. */
static int listen_on(const struct nem_net *net, unsigned idx)
{
    struct sockaddr_in sa = inet_addr_port(nem_net_addr(net, idx), TCP_PORT);
    int fd = socket_in(nem_net_ns_fd(net, idx), SOCK_STREAM);
    int one = 1;

    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
                  "bind %s: %s", nem_net_addr(net, idx), strerror(errno));
    ck_assert_int_eq(listen(fd, 64), 0);
    return fd;
}

/* A network with a TCP listener on every node. */
struct listening_net {
    struct nem_net *net;
    unsigned n_nodes;
    int listeners[NEM_MAX_NODES + 1];
};

static struct listening_net start_listening_net(char tag, unsigned n_nodes)
{
    struct listening_net ln = {.net = create_net(tag, n_nodes),
                               .n_nodes = n_nodes};

    for (unsigned i = 1; i <= n_nodes; i++)
        ln.listeners[i] = listen_on(ln.net, i);
    return ln;
}

static void stop_listening_net(struct listening_net *ln)
{
    for (unsigned i = 1; i <= ln->n_nodes; i++)
        close(ln->listeners[i]);
    ck_assert_int_eq(nem_net_destroy(ln->net), 0);
}

/*
 * Connects from namespace ns_fd to addr:TCP_PORT within TIMEOUT_MS.
 * Returns 0, -ETIMEDOUT or the connect error as -errno.
 */
static int try_connect(int ns_fd, const char *addr)
{
    struct sockaddr_in sa = inet_addr_port(addr, TCP_PORT);
    int fd = socket_in(ns_fd, SOCK_STREAM | SOCK_NONBLOCK);
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    socklen_t len = sizeof(int);
    int rc, so_error = 0;

    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(fd);
        return 0;
    }
    if (errno != EINPROGRESS) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rc = poll(&pfd, 1, TIMEOUT_MS);
    if (rc == 0) {
        close(fd);
        return -ETIMEDOUT;
    }
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    close(fd);
    return -so_error;
}

/* Connects from namespace index `from` of net to node `to`. */
static int connect_nodes(const struct nem_net *net, unsigned from, unsigned to)
{
    return try_connect(nem_net_ns_fd(net, from), nem_net_addr(net, to));
}

/*
 * Sends n UDP datagrams from namespace `from` to node `to` and returns how
 * many arrived. The receive buffer is large enough for all of them, so
 * only the network can lose any.
 */
static int udp_delivered(const struct nem_net *net, unsigned from, unsigned to,
                         int n)
{
    struct sockaddr_in dst = inet_addr_port(nem_net_addr(net, to), UDP_PORT);
    int rx = socket_in(nem_net_ns_fd(net, to), SOCK_DGRAM);
    int tx = socket_in(nem_net_ns_fd(net, from), SOCK_DGRAM);
    int bufsize = 8 << 20;
    int got = 0;
    char byte = 'x';

    ck_assert_int_eq(
        setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)),
        0);
    ck_assert_int_eq(bind(rx, (struct sockaddr *)&dst, sizeof(dst)), 0);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(
            sendto(tx, &byte, 1, 0, (struct sockaddr *)&dst, sizeof(dst)), 1);
    }
    for (;;) {
        struct pollfd pfd = {.fd = rx, .events = POLLIN};

        if (poll(&pfd, 1, 200) <= 0)
            break;
        if (recv(rx, &byte, 1, 0) == 1)
            got++;
    }
    close(tx);
    close(rx);
    return got;
}

/* Whether table inet faultline exists in the caller's own namespace. */
static bool root_has_faultline_table(void)
{
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    int rc;

    ck_assert_ptr_nonnull(nft);
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    rc = nft_run_cmd_from_buffer(nft, "list table inet faultline");
    nft_ctx_free(nft);
    return rc == 0;
}

/* Whether the caller's own namespace has any link this module names. */
static bool root_has_fl_links(void)
{
    static const char *const names[] = {"fl-br", "fl-c",   "fl-n1", "fl-n2",
                                        "fl-n3", "probe0", "probe1"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (if_nametoindex(names[i]) != 0)
            return true;
    }
    return false;
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Waits up to timeout_ms for fd to become readable. */
static void wait_readable(int fd, int timeout_ms, const char *what)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    ck_assert_msg(poll(&pfd, 1, timeout_ms) == 1, "%s timed out after %d ms",
                  what, timeout_ms);
}

/*
 * Accepts the connection that `client` made to `listener`, closing any
 * older ones still queued there (connect_nodes leaves those behind).
 */
static int accept_from(int listener, int client)
{
    struct sockaddr_in local, peer;
    socklen_t len = sizeof(local);

    ck_assert_int_eq(getsockname(client, (struct sockaddr *)&local, &len), 0);
    for (;;) {
        int server;

        wait_readable(listener, 5000, "accept");
        len = sizeof(peer);
        server = accept(listener, (struct sockaddr *)&peer, &len);
        ck_assert_msg(server >= 0, "accept: %s", strerror(errno));
        if (peer.sin_port == local.sin_port &&
            peer.sin_addr.s_addr == local.sin_addr.s_addr)
            return server;
        close(server);
    }
}

/*
 * Measures one TCP round trip from namespace index `from` to node `to`,
 * which listens on `listener`: connect, send a byte, echo it back through
 * the accepted connection and read it. The kernel completes the handshake
 * before accept, so one thread plays both ends. Returns milliseconds.
 */
static double echo_round_trip_ms(const struct nem_net *net, unsigned from,
                                 unsigned to, int listener)
{
    struct sockaddr_in sa = inet_addr_port(nem_net_addr(net, to), TCP_PORT);
    int client = socket_in(nem_net_ns_fd(net, from), SOCK_STREAM);
    int server;
    char byte = 'x';
    double start = now_ms();

    ck_assert_msg(connect(client, (struct sockaddr *)&sa, sizeof(sa)) == 0,
                  "connect to node %u: %s", to, strerror(errno));
    ck_assert_int_eq(send(client, &byte, 1, 0), 1);
    server = accept_from(listener, client);
    wait_readable(server, 5000, "echo request");
    ck_assert_int_eq(recv(server, &byte, 1, 0), 1);
    ck_assert_int_eq(send(server, &byte, 1, 0), 1);
    wait_readable(client, 5000, "echo reply");
    ck_assert_int_eq(recv(client, &byte, 1, 0), 1);

    close(server);
    close(client);
    return now_ms() - start;
}

/* Runs nft commands inside namespace ns_fd through a helper thread. */
struct nft_job {
    int ns_fd;
    const char *cmds;
    int rc;
};

static void *nft_thread(void *arg)
{
    struct nft_job *job = arg;
    struct nft_ctx *nft;

    if (setns(job->ns_fd, CLONE_NEWNET) < 0) {
        job->rc = -errno;
        return NULL;
    }
    nft = nft_ctx_new(NFT_CTX_DEFAULT);
    nft_ctx_buffer_error(nft);
    job->rc = nft_run_cmd_from_buffer(nft, job->cmds);
    nft_ctx_free(nft);
    return NULL;
}

static int nft_in(int ns_fd, const char *cmds)
{
    struct nft_job job = {.ns_fd = ns_fd, .cmds = cmds, .rc = -EINVAL};
    pthread_t thread;

    ck_assert_int_eq(pthread_create(&thread, NULL, nft_thread, &job), 0);
    pthread_join(thread, NULL);
    return job.rc;
}

/* ---- creation and connectivity ----------------------------------------- */

START_TEST(test_create_makes_namespaces)
{
    struct nem_net *net = create_net('a', 3);
    struct stat root, node;
    char id[32];

    run_id(id, sizeof(id), 'a');
    ck_assert(ns_file_exists(id, "br"));
    ck_assert(ns_file_exists(id, "c"));
    ck_assert(ns_file_exists(id, "n1"));
    ck_assert(ns_file_exists(id, "n2"));
    ck_assert(ns_file_exists(id, "n3"));
    ck_assert_int_eq(count_ns_files(id), 5);

    ck_assert_str_eq(nem_net_addr(net, NEM_CLIENT_IDX), "10.0.0.200");
    ck_assert_str_eq(nem_net_addr(net, 1), "10.0.0.1");
    ck_assert_str_eq(nem_net_addr(net, 3), "10.0.0.3");
    ck_assert_ptr_null(nem_net_addr(net, 4));
    ck_assert_int_lt(nem_net_ns_fd(net, 4), 0);

    /* The namespace fds are other namespaces than the test's own. */
    ck_assert_int_eq(stat("/proc/self/ns/net", &root), 0);
    ck_assert_int_eq(fstat(nem_net_ns_fd(net, 1), &node), 0);
    ck_assert(root.st_ino != node.st_ino);

    /* Nothing was created in the test's namespace. */
    ck_assert(!root_has_fl_links());
    ck_assert(!root_has_faultline_table());

    ck_assert_int_eq(nem_net_destroy(net), 0);
}
END_TEST

START_TEST(test_nodes_and_clients_connect)
{
    struct listening_net ln = start_listening_net('b', 3);
    struct nem_net *net = ln.net;

    ck_assert_int_eq(connect_nodes(net, 1, 2), 0);
    ck_assert_int_eq(connect_nodes(net, 2, 1), 0);
    ck_assert_int_eq(connect_nodes(net, 3, 1), 0);
    for (unsigned i = 1; i <= 3; i++)
        ck_assert_int_eq(connect_nodes(net, NEM_CLIENT_IDX, i), 0);

    stop_listening_net(&ln);
}
END_TEST

/* ---- faults ------------------------------------------------------------ */

START_TEST(test_block_cuts_pair_only)
{
    struct listening_net ln = start_listening_net('c', 3);
    struct nem_net *net = ln.net;
    const unsigned from[] = {2};
    char err[512] = "";
    int rc;

    rc = nem_net_block(net, 1, 1, from, 1, false, err, sizeof(err));
    ck_assert_msg(rc == 0, "block: %s", err);
    ck_assert_int_eq(connect_nodes(net, 2, 1), -ETIMEDOUT);
    ck_assert_int_eq(connect_nodes(net, 1, 2), -ETIMEDOUT);
    ck_assert_int_eq(connect_nodes(net, 1, 3), 0);
    ck_assert_int_eq(connect_nodes(net, 3, 1), 0);
    ck_assert_int_eq(connect_nodes(net, NEM_CLIENT_IDX, 1), 0);
    ck_assert_int_eq(connect_nodes(net, NEM_CLIENT_IDX, 2), 0);

    ck_assert_msg(nem_net_heal(net, 1, 1, err, sizeof(err)) == 0, "heal: %s",
                  err);
    ck_assert_int_eq(connect_nodes(net, 2, 1), 0);
    ck_assert_int_eq(connect_nodes(net, 1, 2), 0);

    /* A second heal finds nothing to remove. */
    ck_assert_int_eq(nem_net_heal(net, 1, 1, err, sizeof(err)), 0);

    stop_listening_net(&ln);
}
END_TEST

START_TEST(test_block_several_sources)
{
    struct listening_net ln = start_listening_net('d', 3);
    struct nem_net *net = ln.net;
    const unsigned from[] = {2, 3, 2};
    char err[512] = "";
    int rc;

    rc = nem_net_block(net, 5, 1, from, 3, false, err, sizeof(err));
    ck_assert_msg(rc == 0, "block: %s", err);
    ck_assert_int_eq(connect_nodes(net, 2, 1), -ETIMEDOUT);
    ck_assert_int_eq(connect_nodes(net, 3, 1), -ETIMEDOUT);
    ck_assert_int_eq(connect_nodes(net, 2, 3), 0);
    ck_assert_int_eq(connect_nodes(net, NEM_CLIENT_IDX, 1), 0);

    stop_listening_net(&ln);
}
END_TEST

START_TEST(test_block_one_way)
{
    struct listening_net ln = start_listening_net('e', 3);
    struct nem_net *net = ln.net;
    const unsigned from[] = {2};
    char err[512] = "";
    int rc;

    rc = nem_net_block(net, 2, 1, from, 1, true, err, sizeof(err));
    ck_assert_msg(rc == 0, "block: %s", err);
    ck_assert_int_eq(connect_nodes(net, 2, 1), -ETIMEDOUT);
    ck_assert_int_eq(connect_nodes(net, 1, 2), 0);
    ck_assert_int_eq(connect_nodes(net, 3, 1), 0);

    ck_assert_msg(nem_net_heal(net, 2, 1, err, sizeof(err)) == 0, "heal: %s",
                  err);
    ck_assert_int_eq(connect_nodes(net, 2, 1), 0);

    stop_listening_net(&ln);
}
END_TEST

START_TEST(test_loss_full_drops_nodes_not_clients)
{
    struct listening_net ln = start_listening_net('f', 3);
    struct nem_net *net = ln.net;
    char err[512] = "";

    ck_assert_msg(nem_net_loss(net, 3, 1, 1.0, err, sizeof(err)) == 0,
                  "loss: %s", err);
    ck_assert_int_eq(connect_nodes(net, 2, 1), -ETIMEDOUT);
    ck_assert_int_eq(connect_nodes(net, 3, 1), -ETIMEDOUT);
    ck_assert_int_eq(connect_nodes(net, 2, 3), 0);
    ck_assert_int_eq(connect_nodes(net, NEM_CLIENT_IDX, 1), 0);
    ck_assert_int_eq(connect_nodes(net, 1, 1), 0); /* its own address */

    ck_assert_msg(nem_net_heal(net, 3, 1, err, sizeof(err)) == 0, "heal: %s",
                  err);
    ck_assert_int_eq(connect_nodes(net, 2, 1), 0);

    stop_listening_net(&ln);
}
END_TEST

START_TEST(test_loss_half_drops_about_half)
{
    struct nem_net *net = create_net('g', 2);
    char err[512] = "";
    int from_node, from_client;

    ck_assert_msg(nem_net_loss(net, 4, 1, 0.5, err, sizeof(err)) == 0,
                  "loss: %s", err);
    from_node = udp_delivered(net, 2, 1, 400);
    from_client = udp_delivered(net, NEM_CLIENT_IDX, 1, 400);
    ck_assert_int_eq(nem_net_destroy(net), 0);

    /* Binomial(400, 0.5): mean 200, standard deviation 10. */
    ck_assert_msg(from_node >= 120 && from_node <= 280,
                  "%d of 400 datagrams from node 2 arrived", from_node);
    ck_assert_int_eq(from_client, 400);
}
END_TEST

START_TEST(test_fault_chain_conflict_reports_nft_error)
{
    struct nem_net *net = create_net('h', 2);
    const unsigned from[] = {2};
    char err[512] = "";
    char id[32], name[48];
    int rc;

    /* A chain named like fault 9, made behind the module's back. */
    ck_assert_int_eq(
        nft_in(nem_net_ns_fd(net, 1),
               "add chain inet faultline f9 { type filter hook input "
               "priority 0; policy accept; }"),
        0);
    rc = nem_net_block(net, 9, 1, from, 1, false, err, sizeof(err));
    ck_assert_int_lt(rc, 0);
    run_id(id, sizeof(id), 'h');
    snprintf(name, sizeof(name), "fl-%s-n1", id);
    ck_assert_msg(strstr(err, name) != NULL, "error: %s", err);
    ck_assert_msg(strstr(err, "File exists") != NULL, "error: %s", err);
    ck_assert_ptr_null(strchr(err, '\n'));

    ck_assert_int_eq(nem_net_destroy(net), 0);
}
END_TEST

START_TEST(test_invalid_fault_arguments_rejected)
{
    struct nem_net *net = create_net('i', 3);
    const unsigned from2[] = {2};
    const unsigned self[] = {1};
    const unsigned missing[] = {4};
    char err[512];

    ck_assert_int_eq(
        nem_net_block(net, 1, 0, from2, 1, false, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(
        nem_net_block(net, 1, 4, from2, 1, false, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(nem_net_block(net, 1, 1, self, 1, false, err, sizeof(err)),
                     FL_EINPUT);
    ck_assert_int_eq(
        nem_net_block(net, 1, 1, missing, 1, false, err, sizeof(err)),
        FL_EINPUT);
    ck_assert_int_eq(
        nem_net_block(net, 1, 1, from2, 0, false, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(
        nem_net_block(net, 0, 1, from2, 1, false, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(nem_net_loss(net, 1, 1, 0.0, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(nem_net_loss(net, 1, 1, 1.5, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(nem_net_loss(net, 1, 1, NAN, err, sizeof(err)), FL_EINPUT);

    /* One id per node at a time; the same id on another node is fine. */
    ck_assert_int_eq(
        nem_net_block(net, 7, 1, from2, 1, false, err, sizeof(err)), 0);
    ck_assert_int_eq(nem_net_loss(net, 7, 1, 0.5, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(nem_net_loss(net, 7, 3, 0.5, err, sizeof(err)), 0);
    ck_assert_int_eq(nem_net_heal(net, 8, 1, err, sizeof(err)), 0);

    ck_assert_int_eq(nem_net_destroy(net), 0);
}
END_TEST

/* ---- delay ------------------------------------------------------------- */

/*
 * Returns whether the kernel's netem support matches `needed`, and prints a
 * note that test `name` is skipped when it does not.
 */
static bool netem_is(bool needed, const char *name)
{
    int have = nem_net_have_netem();

    ck_assert_msg(have == 0 || have == 1, "probe: %s", fl_strerror(have));
    if ((have == 1) == needed)
        return true;
    fprintf(stderr,
            "%s: skipped because the kernel %s netem qdisc (sch_netem)\n", name,
            have == 1 ? "has the" : "has no");
    return false;
}

START_TEST(test_delay_without_netem_unsupported)
{
    struct listening_net ln;
    struct nem_net *net;
    char err[512] = "";
    double round_trip;

    if (!netem_is(false, "test_delay_without_netem_unsupported"))
        return;
    ln = start_listening_net('p', 2);
    net = ln.net;

    ck_assert_int_eq(nem_net_delay(net, 1, 100, err, sizeof(err)), -EOPNOTSUPP);
    ck_assert_msg(strstr(err, "the kernel has no netem qdisc (sch_netem)") !=
                      NULL,
                  "error: %s", err);

    /* Nothing changed: traffic flows and a retry fails the same way. */
    ck_assert_int_eq(connect_nodes(net, 1, 2), 0);
    ck_assert_int_eq(connect_nodes(net, 2, 1), 0);
    ck_assert_int_eq(connect_nodes(net, NEM_CLIENT_IDX, 1), 0);
    round_trip = echo_round_trip_ms(net, 1, 2, ln.listeners[2]);
    ck_assert_msg(round_trip < 100.0, "round trip %.1f ms with no delay",
                  round_trip);
    ck_assert_int_eq(nem_net_delay(net, 1, 100, err, sizeof(err)), -EOPNOTSUPP);
    ck_assert_int_eq(nem_net_undelay(net, 1, err, sizeof(err)), 0);

    stop_listening_net(&ln);
}
END_TEST

START_TEST(test_invalid_delay_arguments_rejected)
{
    struct nem_net *net = create_net('q', 2);
    char err[512];

    ck_assert_int_eq(nem_net_delay(NULL, 1, 100, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(nem_net_delay(net, 0, 100, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(nem_net_delay(net, 3, 100, err, sizeof(err)), FL_EINPUT);
    ck_assert_msg(strstr(err, "invalid node 3") != NULL, "error: %s", err);
    ck_assert_int_eq(nem_net_delay(net, 1, 0, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(
        nem_net_delay(net, 1, NEM_MAX_DELAY_MS + 1, err, sizeof(err)),
        FL_EINPUT);
    ck_assert_msg(strstr(err, "invalid delay") != NULL, "error: %s", err);

    ck_assert_int_eq(nem_net_undelay(NULL, 1, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(nem_net_undelay(net, 0, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(nem_net_undelay(net, 3, err, sizeof(err)), FL_EINPUT);
    ck_assert_int_eq(nem_net_undelay(net, 2, err, sizeof(err)), 0);

    ck_assert_int_eq(nem_net_destroy(net), 0);
}
END_TEST

START_TEST(test_delay_slows_round_trip)
{
    struct nem_net *net;
    char err[512] = "";
    double before, delayed, after;
    int listener;

    if (!netem_is(true, "test_delay_slows_round_trip"))
        return;
    net = create_net('r', 2);
    listener = listen_on(net, 2);
    before = echo_round_trip_ms(net, 1, 2, listener);

    ck_assert_msg(nem_net_delay(net, 1, 100, err, sizeof(err)) == 0,
                  "delay: %s", err);
    ck_assert_int_eq(nem_net_delay(net, 1, 50, err, sizeof(err)), FL_EINPUT);
    ck_assert_msg(strstr(err, "already has a delay") != NULL, "error: %s", err);
    delayed = echo_round_trip_ms(net, 1, 2, listener);
    ck_assert_msg(delayed >= 100.0, "round trip %.1f ms with a 100 ms delay",
                  delayed);

    ck_assert_msg(nem_net_undelay(net, 1, err, sizeof(err)) == 0, "undelay: %s",
                  err);
    ck_assert_int_eq(nem_net_undelay(net, 1, err, sizeof(err)), 0);
    after = echo_round_trip_ms(net, 1, 2, listener);
    ck_assert_msg(after < 100.0,
                  "round trip %.1f ms after undelay (%.1f ms "
                  "before the delay)",
                  after, before);

    /* The node accepts a new delay once the old one is gone. */
    ck_assert_msg(nem_net_delay(net, 1, 20, err, sizeof(err)) == 0,
                  "delay again: %s", err);

    close(listener);
    ck_assert_int_eq(nem_net_destroy(net), 0);
}
END_TEST

/* ---- removal ----------------------------------------------------------- */

START_TEST(test_destroy_leaves_nothing)
{
    struct nem_net *net = create_net('j', 3);
    const unsigned from[] = {1};
    char id[32], err[512] = "";
    int rc;

    run_id(id, sizeof(id), 'j');
    rc = nem_net_block(net, 1, 2, from, 1, false, err, sizeof(err));
    ck_assert_msg(rc == 0, "block: %s", err);
    ck_assert_msg(nem_net_loss(net, 2, 3, 0.2, err, sizeof(err)) == 0,
                  "loss: %s", err);
    ck_assert_int_eq(nem_net_destroy(net), 0);

    ck_assert_int_eq(count_ns_files(id), 0);
    ck_assert(!root_has_faultline_table());
    ck_assert(!root_has_fl_links());
}
END_TEST

START_TEST(test_failed_create_removes_what_it_made)
{
    struct nem_net *net = NULL;
    char id[32], path[128], err[512] = "";
    int fd, rc;

    /* n2's file already exists, so creation fails after br, c and n1. */
    run_id(id, sizeof(id), 'k');
    snprintf(path, sizeof(path), "/run/netns/fl-%s-n2", id);
    mkdir("/run/netns", 0755);
    fd = open(path, O_RDONLY | O_CREAT | O_EXCL, 0);
    ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
    close(fd);

    rc = nem_net_create(&net, id, 3, err, sizeof(err));
    unlink(path);
    ck_assert_int_eq(rc, -EEXIST);
    ck_assert_ptr_null(net);
    ck_assert_msg(strstr(err, path) != NULL, "error: %s", err);
    ck_assert_int_eq(count_ns_files(id), 0);
}
END_TEST

START_TEST(test_destroy_after_namespace_removed)
{
    struct nem_net *net = create_net('l', 3);
    char id[32], path[128];

    /* Someone deletes n2 behind the module's back, like `ip netns del`. */
    run_id(id, sizeof(id), 'l');
    snprintf(path, sizeof(path), "/run/netns/fl-%s-n2", id);
    ck_assert_int_eq(umount2(path, MNT_DETACH), 0);
    ck_assert_int_eq(unlink(path), 0);

    ck_assert_int_eq(nem_net_destroy(net), 0);
    ck_assert_int_eq(count_ns_files(id), 0);
}
END_TEST

START_TEST(test_remove_run_cleans_leftovers)
{
    char id[32];
    pid_t child;
    int status;

    /* A child builds a network and exits without destroying it. */
    run_id(id, sizeof(id), 'm');
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        struct nem_net *net = NULL;
        char err[512];

        _exit(nem_net_create(&net, id, 2, err, sizeof(err)) == 0 ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(count_ns_files(id), 4);

    ck_assert_int_eq(nem_net_remove_run(id), 4);
    ck_assert_int_eq(count_ns_files(id), 0);
    ck_assert_int_eq(nem_net_remove_run(id), 0);
}
END_TEST

/* ---- isolation and input ----------------------------------------------- */

START_TEST(test_two_runs_isolated)
{
    struct nem_net *a = create_net('n', 2);
    struct nem_net *b = create_net('o', 2);
    const unsigned from[] = {1};
    char err[512] = "";
    int listen_a, listen_b1;

    /* Only run a's node 2 listens, so b's node 2 rejects the connection. */
    listen_a = listen_on(a, 2);
    ck_assert_int_eq(connect_nodes(a, 1, 2), 0);
    ck_assert_int_eq(connect_nodes(b, 1, 2), -ECONNREFUSED);
    ck_assert_int_eq(connect_nodes(b, NEM_CLIENT_IDX, 2), -ECONNREFUSED);

    /* A block in run a changes nothing in run b. */
    listen_b1 = listen_on(b, 1);
    ck_assert_msg(nem_net_block(a, 1, 1, (const unsigned[]){2}, 1, false, err,
                                sizeof(err)) == 0,
                  "block: %s", err);
    ck_assert_int_eq(connect_nodes(b, 2, 1), 0);
    ck_assert_msg(nem_net_block(b, 1, 2, from, 1, false, err, sizeof(err)) == 0,
                  "block: %s", err);
    ck_assert_int_eq(connect_nodes(a, 1, 2), -ETIMEDOUT);
    ck_assert_int_eq(connect_nodes(a, NEM_CLIENT_IDX, 2), 0);

    close(listen_a);
    close(listen_b1);
    ck_assert_int_eq(nem_net_destroy(a), 0);
    ck_assert_int_eq(nem_net_destroy(b), 0);
}
END_TEST

START_TEST(test_invalid_run_ids_rejected)
{
    static const char *const bad[] = {
        "", "Abc", "a-b", "a/b", "../x", "a b", "abcdefghijklmnopq", ".", "a.b",
    };
    struct nem_net *net;
    char err[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        net = (struct nem_net *)&net; /* must be reset to NULL */
        ck_assert_int_eq(nem_net_create(&net, bad[i], 1, err, sizeof(err)),
                         FL_EINPUT);
        ck_assert_ptr_null(net);
        ck_assert_msg(strstr(err, "run id") != NULL, "\"%s\": %s", bad[i], err);
        ck_assert_int_eq(nem_net_remove_run(bad[i]), FL_EINPUT);
    }
    ck_assert_int_eq(nem_net_create(&net, NULL, 1, err, sizeof(err)),
                     FL_EINPUT);
    ck_assert_int_eq(nem_net_remove_run(NULL), FL_EINPUT);

    /* 16 characters is the limit, not an error. */
    ck_assert_int_eq(nem_net_remove_run("abcdefghijklmnop"), 0);

    ck_assert_int_eq(nem_net_create(&net, "ok", 0, err, sizeof(err)),
                     FL_EINPUT);
    ck_assert_int_eq(
        nem_net_create(&net, "ok", NEM_MAX_NODES + 1, err, sizeof(err)),
        FL_EINPUT);
}
END_TEST

START_TEST(test_netem_probe_leaves_nothing)
{
    int first = nem_net_have_netem();

    ck_assert_msg(first == 0 || first == 1, "probe: %s", fl_strerror(first));
    ck_assert_int_eq(nem_net_have_netem(), first);
    ck_assert(!root_has_fl_links());
}
END_TEST

static Suite *net_suite(void)
{
    Suite *s = suite_create("nemesis_net");
    TCase *t;

    t = tcase_create("create");
    tcase_set_timeout(t, 30);
    tcase_add_unchecked_fixture(t, NULL, remove_all_runs);
    tcase_add_test(t, test_create_makes_namespaces);
    tcase_add_test(t, test_nodes_and_clients_connect);
    suite_add_tcase(s, t);

    t = tcase_create("faults");
    tcase_set_timeout(t, 30);
    tcase_add_unchecked_fixture(t, NULL, remove_all_runs);
    tcase_add_test(t, test_block_cuts_pair_only);
    tcase_add_test(t, test_block_several_sources);
    tcase_add_test(t, test_block_one_way);
    tcase_add_test(t, test_loss_full_drops_nodes_not_clients);
    tcase_add_test(t, test_loss_half_drops_about_half);
    tcase_add_test(t, test_fault_chain_conflict_reports_nft_error);
    tcase_add_test(t, test_invalid_fault_arguments_rejected);
    suite_add_tcase(s, t);

    t = tcase_create("delay");
    tcase_set_timeout(t, 30);
    tcase_add_unchecked_fixture(t, NULL, remove_all_runs);
    tcase_add_test(t, test_delay_without_netem_unsupported);
    tcase_add_test(t, test_invalid_delay_arguments_rejected);
    tcase_add_test(t, test_delay_slows_round_trip);
    suite_add_tcase(s, t);

    t = tcase_create("removal");
    tcase_set_timeout(t, 30);
    tcase_add_unchecked_fixture(t, NULL, remove_all_runs);
    tcase_add_test(t, test_destroy_leaves_nothing);
    tcase_add_test(t, test_failed_create_removes_what_it_made);
    tcase_add_test(t, test_destroy_after_namespace_removed);
    tcase_add_test(t, test_remove_run_cleans_leftovers);
    suite_add_tcase(s, t);

    t = tcase_create("isolation");
    tcase_set_timeout(t, 30);
    tcase_add_unchecked_fixture(t, NULL, remove_all_runs);
    tcase_add_test(t, test_two_runs_isolated);
    tcase_add_test(t, test_invalid_run_ids_rejected);
    tcase_add_test(t, test_netem_probe_leaves_nothing);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (geteuid() != 0) {
        fprintf(stderr,
                "check_nemesis_net: skipped because it requires root\n");
        return 77;
    }
    main_pid = getpid();
    sr = srunner_create(net_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_all_runs();
    return failed == 0 ? 0 : 1;
}
