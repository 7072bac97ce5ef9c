/*
 * The cluster's private network (see net.h): named network namespaces made
 * the way `ip netns add` makes them, a bridge and veth pairs built through
 * libnl-route-3, and faults as nftables chains applied through libnftables.
 *
 * Every namespace is made by a short-lived helper thread. The thread
 * unshares CLONE_NEWNET, bind-mounts its namespace onto /run/netns/NAME and
 * opens everything that must live inside it: an fd of the namespace, a
 * netlink route socket and, in node namespaces, an nftables context. A
 * socket stays bound to the namespace it was opened in, so once the thread
 * exits the caller drives every namespace through these handles without
 * ever leaving its own namespace.
 */
#include "net.h"

#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/sockios.h>
#include <math.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/inet6.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/netem.h>
#include <nftables/libnftables.h>

#define NETNS_DIR    "/run/netns"
#define RUN_ID_MAX   16
#define NS_NAME_MAX  (sizeof("fl--br") + RUN_ID_MAX)
#define NS_PATH_MAX  (sizeof(NETNS_DIR "/") + NS_NAME_MAX)
#define BRIDGE_NAME  "fl-br"
#define NODE_LINK    "eth0"
#define CLIENT_ADDR  200
#define PREFIX_LEN   24
#define NFT_TABLE    "inet faultline"
#define LOSS_SCALE   1000 /* loss probability resolution: 1/LOSS_SCALE */
#define NETEM_LIMIT  1000 /* packets netem may hold, tc's default */
#define JOB_ERR_SIZE 512

/* One namespace of the run and the handles that live inside it. */
struct ns {
    char name[NS_NAME_MAX];     /* fl-RUN-n1 */
    char path[NS_PATH_MAX];     /* /run/netns/fl-RUN-n1 */
    char addr[INET_ADDRSTRLEN]; /* empty for the bridge namespace */
    bool created;               /* we created the file at path */
    bool mounted;               /* the namespace is bind-mounted on path */
    int fd;                     /* O_RDONLY fd of the namespace, or -1 */
    struct nl_sock *sock;       /* NETLINK_ROUTE socket bound inside */
    struct nft_ctx *nft;        /* bound inside, nodes only */
    uint64_t *faults;           /* ids of the fault chains in place */
    size_t n_faults, cap_faults;
    unsigned delay_ms; /* netem delay on eth0, 0 for none; nodes only */
};

/* One run's network. It is not thread-safe (see net.h). */
struct nem_net {
    char run_id[RUN_ID_MAX + 1];
    unsigned n_nodes;
    struct ns bridge;
    struct ns ns[NEM_MAX_NODES + 1]; /* [NEM_CLIENT_IDX] and nodes 1..n */
};

/* ---- names and errors -------------------------------------------------- */

static int check_run_id(const char *run_id, char *err, size_t err_size)
{
    size_t len;

    if (run_id == NULL)
        return fl_input_error(err, err_size, "run id is missing");
    len = strlen(run_id);
    if (len == 0 || len > RUN_ID_MAX)
        return fl_input_error(err, err_size,
                              "invalid run id \"%.40s\": expected 1 to %d "
                              "characters of [a-z0-9]",
                              run_id, RUN_ID_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = run_id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return fl_input_error(err, err_size,
                                  "invalid run id \"%.40s\": expected only "
                                  "characters of [a-z0-9]",
                                  run_id);
    }
    return 0;
}

/*
 * Maps a libnl error (a negative NLE_* code) to -errno, because NLE codes
 * overlap errno values (NLE_OBJ_NOTFOUND is 12, like ENOMEM) and callers
 * describe codes with fl_strerror. The message text keeps libnl's own
 * description.
 */
static int nl_to_errno(int nl_err)
{
    switch (-nl_err) {
    case NLE_NOMEM:
        return -ENOMEM;
    case NLE_PERM:
        return -EPERM;
    case NLE_NOACCESS:
        return -EACCES;
    case NLE_EXIST:
        return -EEXIST;
    case NLE_OBJ_NOTFOUND:
        return -ENOENT;
    case NLE_NODEV:
        return -ENODEV;
    case NLE_BUSY:
        return -EBUSY;
    case NLE_INVAL:
    case NLE_RANGE:
        return -EINVAL;
    case NLE_OPNOTSUPP:
        return -EOPNOTSUPP;
    default:
        return -EIO;
    }
}

static void fill_names(struct ns *ns, const char *run_id, const char *suffix)
{
    snprintf(ns->name, sizeof(ns->name), "fl-%s-%s", run_id, suffix);
    snprintf(ns->path, sizeof(ns->path), NETNS_DIR "/%s", ns->name);
    ns->fd = -1;
}

/* ---- netlink helpers, all run on a socket bound inside a namespace ----- */

/* Applies the attributes set in `change` to link `name`. */
static int change_link(struct nl_sock *sock, const char *name,
                       struct rtnl_link *change)
{
    struct rtnl_link *orig = NULL;
    int rc;

    rc = rtnl_link_get_kernel(sock, 0, name, &orig);
    if (rc < 0)
        return rc;
    rc = rtnl_link_change(sock, orig, change, 0);
    rtnl_link_put(orig);
    return rc;
}

static int set_link_up(struct nl_sock *sock, const char *name)
{
    struct rtnl_link *change = rtnl_link_alloc();
    int rc;

    if (change == NULL)
        return -NLE_NOMEM;
    rtnl_link_set_flags(change, IFF_UP);
    rc = change_link(sock, name, change);
    rtnl_link_put(change);
    return rc;
}

static int link_ifindex(struct nl_sock *sock, const char *name, int *ifindex)
{
    struct rtnl_link *link = NULL;
    int rc;

    rc = rtnl_link_get_kernel(sock, 0, name, &link);
    if (rc < 0)
        return rc;
    *ifindex = rtnl_link_get_ifindex(link);
    rtnl_link_put(link);
    return 0;
}

/* ---- making a namespace ------------------------------------------------ */

/*
 * Makes /run/netns a shared mount point, as `ip netns add` does, so that
 * unmounting a namespace file in one mount namespace also unmounts its
 * copies in the others and the network namespace can go away. The
 * directory is bind-mounted onto itself first when it is not a mount
 * point yet. A lock on the directory keeps two faultline processes from
 * both stacking that bind mount.
 */
static int prepare_netns_dir(char *err, size_t err_size)
{
    bool bound = false;
    int dir_fd, rc = 0;

    if (mkdir(NETNS_DIR, 0755) < 0 && errno != EEXIST)
        return fl_errorf(err, err_size, -errno, "cannot create %s: %s",
                         NETNS_DIR, strerror(errno));
    dir_fd = open(NETNS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return fl_errorf(err, err_size, -errno, "cannot open %s: %s", NETNS_DIR,
                         strerror(errno));
    while (flock(dir_fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            rc = fl_errorf(err, err_size, -errno, "cannot lock %s: %s",
                           NETNS_DIR, strerror(errno));
            goto out_close;
        }
    }

    /* EINVAL means NETNS_DIR is not a mount point yet. */
    while (mount("", NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) {
        if (errno != EINVAL || bound) {
            rc = fl_errorf(err, err_size, -errno,
                           "cannot make %s a shared mount: %s", NETNS_DIR,
                           strerror(errno));
            goto out_close;
        }
        if (mount(NETNS_DIR, NETNS_DIR, "none", MS_BIND | MS_REC, NULL) < 0) {
            rc = fl_errorf(err, err_size, -errno,
                           "cannot bind-mount %s onto itself: %s", NETNS_DIR,
                           strerror(errno));
            goto out_close;
        }
        bound = true;
    }

out_close:
    close(dir_fd); /* releases the lock */
    return rc;
}

/*
 * Sets FD_CLOEXEC on every socket of the namespace whose inode is ns_ino.
 * libnftables 1.0.6 opens its netlink socket without SOCK_CLOEXEC, and a
 * node process forked later would otherwise inherit that socket and keep
 * this namespace alive after nem_net_destroy. The namespace was created a
 * moment ago by the calling thread, so every socket in it is ours.
 */
static void set_cloexec_on_ns_sockets(ino_t ns_ino)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *entry;

    if (dir == NULL)
        return;
    while ((entry = readdir(dir)) != NULL) {
        struct stat st;
        int fd, flags, sock_ns;

        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        fd = atoi(entry->d_name);
        if (fd == dirfd(dir))
            continue;
        flags = fcntl(fd, F_GETFD);
        if (flags < 0 || (flags & FD_CLOEXEC))
            continue;
        sock_ns = ioctl(fd, SIOCGSKNS); /* fails on anything but a socket */
        if (sock_ns < 0)
            continue;
        if (fstat(sock_ns, &st) == 0 && st.st_ino == ns_ino)
            (void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        close(sock_ns);
    }
    closedir(dir);
}

/* Copies libnftables' buffered error text into err as one line. */
static int nft_error(struct nft_ctx *nft, char *err, size_t err_size,
                     const char *what)
{
    const char *text = nft_ctx_get_error_buffer(nft);
    char line[JOB_ERR_SIZE];
    size_t n = 0;

    /* Keep the reason and the command, drop the lines of ^ markers. */
    while (text != NULL && *text != '\0' && n + 1 < sizeof(line)) {
        const char *end = strchr(text, '\n');
        size_t len = end ? (size_t)(end - text) : strlen(text);
        bool markers = strspn(text, " ^") >= len;

        if (len > 0 && !markers) {
            if (n > 0 && n + 2 < sizeof(line)) {
                memcpy(line + n, "; ", 2);
                n += 2;
            }
            if (len > sizeof(line) - 1 - n)
                len = sizeof(line) - 1 - n;
            memcpy(line + n, text, len);
            n += len;
        }
        text = end ? end + 1 : text + strlen(text);
    }
    line[n] = '\0';
    fl_scrub_controls(line);
    return fl_errorf(err, err_size, -EIO, "%s: nft: %s", what,
                     n > 0 ? line : "failed with no message");
}

/* Runs nftables commands in ns as one transaction. */
static int run_nft(struct ns *ns, const char *cmds, char *err, size_t err_size,
                   const char *what)
{
    if (nft_run_cmd_from_buffer(ns->nft, cmds) != 0)
        return nft_error(ns->nft, err, err_size, what);
    (void)nft_ctx_get_error_buffer(ns->nft); /* drops any warnings */
    return 0;
}

struct ns_job {
    struct ns *ns; /* ns->path exists as an empty file */
    bool with_nft;
    int rc;
    char err[JOB_ERR_SIZE];
};

/* The body of the helper thread that creates the namespace of job->ns. */
static void *make_ns_thread(void *arg)
{
    struct ns_job *job = arg;
    struct ns *ns = job->ns;
    char self[64];
    struct stat st;
    int rc;

    if (unshare(CLONE_NEWNET) < 0) {
        job->rc = fl_errorf(job->err, sizeof(job->err), -errno,
                            "%s: cannot create network namespace: %s", ns->name,
                            strerror(errno));
        return NULL;
    }
    snprintf(self, sizeof(self), "/proc/self/task/%d/ns/net", (int)gettid());
    if (mount(self, ns->path, "none", MS_BIND, NULL) < 0) {
        job->rc = fl_errorf(job->err, sizeof(job->err), -errno,
                            "%s: cannot bind-mount %s on %s: %s", ns->name,
                            self, ns->path, strerror(errno));
        return NULL;
    }
    ns->mounted = true;
    ns->fd = open(self, O_RDONLY | O_CLOEXEC);
    if (ns->fd < 0 || fstat(ns->fd, &st) < 0) {
        job->rc = fl_errorf(job->err, sizeof(job->err), -errno,
                            "%s: cannot open %s: %s", ns->name, self,
                            strerror(errno));
        return NULL;
    }

    ns->sock = nl_socket_alloc();
    if (ns->sock == NULL) {
        job->rc = fl_errorf(job->err, sizeof(job->err), -ENOMEM,
                            "%s: cannot allocate a netlink socket", ns->name);
        return NULL;
    }
    rc = nl_connect(ns->sock, NETLINK_ROUTE);
    if (rc < 0) {
        nl_socket_free(ns->sock);
        ns->sock = NULL;
        job->rc = fl_errorf(job->err, sizeof(job->err), nl_to_errno(rc),
                            "%s: cannot open a netlink socket: %s", ns->name,
                            nl_geterror(rc));
        return NULL;
    }
    rc = set_link_up(ns->sock, "lo");
    if (rc < 0) {
        job->rc =
            fl_errorf(job->err, sizeof(job->err), nl_to_errno(rc),
                      "%s: cannot bring lo up: %s", ns->name, nl_geterror(rc));
        return NULL;
    }

    if (job->with_nft) {
        ns->nft = nft_ctx_new(NFT_CTX_DEFAULT);
        if (ns->nft == NULL) {
            job->rc =
                fl_errorf(job->err, sizeof(job->err), -ENOMEM,
                          "%s: cannot create an nftables context", ns->name);
            return NULL;
        }
        nft_ctx_buffer_output(ns->nft);
        nft_ctx_buffer_error(ns->nft);
        rc = run_nft(ns, "add table " NFT_TABLE, job->err, sizeof(job->err),
                     ns->name);
        if (rc < 0) {
            job->rc = rc;
            return NULL;
        }
    }
    set_cloexec_on_ns_sockets(st.st_ino);
    return NULL;
}

/*
 * Creates the file of ns under /run/netns and makes the namespace there.
 * The helper thread runs alone inside the new namespace and ends with it,
 * so the calling thread never leaves its own namespace.
 */
static int make_ns(struct ns *ns, bool with_nft, char *err, size_t err_size)
{
    struct ns_job job = {.ns = ns, .with_nft = with_nft};
    pthread_t thread;
    int fd, rc;

    fd = open(ns->path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == EEXIST)
            return fl_errorf(err, err_size, -EEXIST,
                             "%s already exists; remove the leftovers of "
                             "that run with `faultline clean` first",
                             ns->path);
        return fl_errorf(err, err_size, -errno, "cannot create %s: %s",
                         ns->path, strerror(errno));
    }
    close(fd);
    ns->created = true;

    rc = pthread_create(&thread, NULL, make_ns_thread, &job);
    if (rc != 0)
        return fl_errorf(err, err_size, -rc,
                         "%s: cannot start a helper thread: %s", ns->name,
                         strerror(rc));
    pthread_join(thread, NULL);
    if (job.rc < 0)
        return fl_errorf(err, err_size, job.rc, "%s", job.err);
    return 0;
}

/* ---- removing a namespace ---------------------------------------------- */

/*
 * Unmounts and unlinks a namespace file. A file that is missing or not
 * mounted counts as removed, so this works on whatever a failed create or
 * a crash left behind.
 */
static int unbind_ns_path(const char *path)
{
    int rc = 0;

    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        rc = -errno;
    if (unlink(path) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

/* Closes the handles of ns and removes its file if this run made it. */
static int remove_ns(struct ns *ns)
{
    int rc = 0;

    if (ns->nft != NULL)
        nft_ctx_free(ns->nft);
    if (ns->sock != NULL)
        nl_socket_free(ns->sock);
    if (ns->fd >= 0)
        close(ns->fd);
    free(ns->faults);
    if (ns->created)
        rc = unbind_ns_path(ns->path);
    memset(ns, 0, sizeof(*ns));
    ns->fd = -1;
    return rc;
}

/* ---- links and addresses ----------------------------------------------- */

static int make_bridge(struct nem_net *net, int *ifindex, char *err,
                       size_t err_size)
{
    struct ns *br = &net->bridge;
    struct rtnl_link *link = rtnl_link_bridge_alloc();
    int rc;

    if (link == NULL)
        return fl_errorf(err, err_size, -ENOMEM, "%s: out of memory", br->name);
    rtnl_link_set_name(link, BRIDGE_NAME);
    rc = rtnl_link_add(br->sock, link, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(link);
    if (rc < 0)
        return fl_errorf(err, err_size, nl_to_errno(rc),
                         "%s: cannot create bridge %s: %s", br->name,
                         BRIDGE_NAME, nl_geterror(rc));
    rc = set_link_up(br->sock, BRIDGE_NAME);
    if (rc == 0)
        rc = link_ifindex(br->sock, BRIDGE_NAME, ifindex);
    if (rc < 0)
        return fl_errorf(err, err_size, nl_to_errno(rc),
                         "%s: cannot bring bridge %s up: %s", br->name,
                         BRIDGE_NAME, nl_geterror(rc));
    return 0;
}

/* Enslaves the bridge end of a veth pair to the bridge and brings it up. */
static int attach_port(struct nem_net *net, const char *port,
                       int bridge_ifindex, char *err, size_t err_size)
{
    struct ns *br = &net->bridge;
    struct rtnl_link *change = rtnl_link_alloc();
    int rc;

    if (change == NULL)
        return fl_errorf(err, err_size, -ENOMEM, "%s: out of memory", br->name);
    rtnl_link_set_master(change, bridge_ifindex);
    rtnl_link_set_flags(change, IFF_UP);
    rc = change_link(br->sock, port, change);
    rtnl_link_put(change);
    if (rc < 0)
        return fl_errorf(err, err_size, nl_to_errno(rc),
                         "%s: cannot attach %s to bridge %s: %s", br->name,
                         port, BRIDGE_NAME, nl_geterror(rc));
    return 0;
}

/*
 * Gives eth0 of ns its IPv4 address and brings it up. IPv6 address
 * generation is switched off first, so eth0 gets no link-local address and
 * a node cannot reach another over IPv6 around a fault on IPv4.
 */
static int configure_eth0(struct ns *ns, char *err, size_t err_size)
{
    struct rtnl_link *change = rtnl_link_alloc();
    struct rtnl_addr *addr = NULL;
    struct nl_addr *local = NULL;
    char cidr[INET_ADDRSTRLEN + 4];
    const char *step = "disable IPv6 address generation on " NODE_LINK;
    int ifindex = 0, rc;

    snprintf(cidr, sizeof(cidr), "%s/%d", ns->addr, PREFIX_LEN);
    if (change == NULL)
        return fl_errorf(err, err_size, -ENOMEM, "%s: out of memory", ns->name);
    rc = rtnl_link_inet6_set_addr_gen_mode(
        change, rtnl_link_inet6_str2addrgenmode("none"));
    if (rc == 0)
        rc = change_link(ns->sock, NODE_LINK, change);
    rtnl_link_put(change);
    if (rc < 0)
        goto out;

    step = "find " NODE_LINK;
    rc = link_ifindex(ns->sock, NODE_LINK, &ifindex);
    if (rc < 0)
        goto out;

    step = "add the address to " NODE_LINK;
    addr = rtnl_addr_alloc();
    if (addr == NULL) {
        rc = -NLE_NOMEM;
        goto out;
    }
    rc = nl_addr_parse(cidr, AF_INET, &local);
    if (rc < 0)
        goto out;
    rtnl_addr_set_ifindex(addr, ifindex);
    rc = rtnl_addr_set_local(addr, local);
    if (rc == 0)
        rc = rtnl_addr_add(ns->sock, addr, 0);
    if (rc < 0)
        goto out;

    step = "bring " NODE_LINK " up";
    rc = set_link_up(ns->sock, NODE_LINK);

out:
    nl_addr_put(local);
    rtnl_addr_put(addr);
    if (rc < 0)
        return fl_errorf(err, err_size, nl_to_errno(rc),
                         "%s: cannot %s (%s): %s", ns->name, step, cidr,
                         nl_geterror(rc));
    return 0;
}

/*
 * Connects ns to the bridge through one veth pair made by a single request.
 * IFLA_NET_NS_FD on both ends creates eth0 directly in ns and the other
 * end, `port`, directly in the bridge namespace, so neither end ever
 * exists in the caller's namespace.
 */
static int connect_ns(struct nem_net *net, struct ns *ns, const char *port,
                      int bridge_ifindex, char *err, size_t err_size)
{
    struct ns *br = &net->bridge;
    struct rtnl_link *veth = rtnl_link_veth_alloc();
    struct rtnl_link *peer;
    int rc;

    if (veth == NULL)
        return fl_errorf(err, err_size, -ENOMEM, "%s: out of memory", ns->name);
    rtnl_link_set_name(veth, NODE_LINK);
    rtnl_link_set_ns_fd(veth, ns->fd);
    peer = rtnl_link_veth_get_peer(veth);
    rtnl_link_set_name(peer, port);
    rtnl_link_set_ns_fd(peer, br->fd);
    rtnl_link_put(peer);
    rc = rtnl_link_add(br->sock, veth, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_veth_release(veth);
    if (rc < 0)
        return fl_errorf(err, err_size, nl_to_errno(rc),
                         "%s: cannot create veth pair %s (%s) - %s (%s): %s",
                         ns->name, NODE_LINK, ns->name, port, br->name,
                         nl_geterror(rc));

    rc = attach_port(net, port, bridge_ifindex, err, err_size);
    if (rc < 0)
        return rc;
    return configure_eth0(ns, err, err_size);
}

/* ---- create and destroy ------------------------------------------------ */

static int build(struct nem_net *net, char *err, size_t err_size)
{
    int bridge_ifindex = 0;
    int rc;

    rc = prepare_netns_dir(err, err_size);
    if (rc < 0)
        return rc;

    rc = make_ns(&net->bridge, false, err, err_size);
    if (rc < 0)
        return rc;
    rc = make_bridge(net, &bridge_ifindex, err, err_size);
    if (rc < 0)
        return rc;

    for (unsigned i = 0; i <= net->n_nodes; i++) {
        struct ns *ns = &net->ns[i];
        char port[IFNAMSIZ];

        if (i == NEM_CLIENT_IDX)
            snprintf(port, sizeof(port), "fl-c");
        else
            snprintf(port, sizeof(port), "fl-n%u", i);
        rc = make_ns(ns, i != NEM_CLIENT_IDX, err, err_size);
        if (rc < 0)
            return rc;
        rc = connect_ns(net, ns, port, bridge_ifindex, err, err_size);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int nem_net_create(struct nem_net **out, const char *run_id, unsigned n_nodes,
                   char *err, size_t err_size)
{
    struct nem_net *net;
    int rc;

    *out = NULL;
    rc = check_run_id(run_id, err, err_size);
    if (rc < 0)
        return rc;
    if (n_nodes < 1 || n_nodes > NEM_MAX_NODES)
        return fl_input_error(err, err_size,
                              "invalid node count %u: expected 1 to %d",
                              n_nodes, NEM_MAX_NODES);
    if (geteuid() != 0)
        return fl_errorf(err, err_size, -EPERM,
                         "creating network namespaces requires root");

    net = calloc(1, sizeof(*net));
    if (net == NULL)
        return fl_errorf(err, err_size, -ENOMEM, "out of memory");
    snprintf(net->run_id, sizeof(net->run_id), "%s", run_id);
    net->n_nodes = n_nodes;
    fill_names(&net->bridge, run_id, "br");
    for (unsigned i = 0; i <= n_nodes; i++) {
        struct ns *ns = &net->ns[i];
        char suffix[8];
        unsigned host = i == NEM_CLIENT_IDX ? CLIENT_ADDR : i;

        if (i == NEM_CLIENT_IDX)
            snprintf(suffix, sizeof(suffix), "c");
        else
            snprintf(suffix, sizeof(suffix), "n%u", i);
        fill_names(ns, run_id, suffix);
        snprintf(ns->addr, sizeof(ns->addr), "10.0.0.%u", host);
    }

    rc = build(net, err, err_size);
    if (rc < 0) {
        nem_net_destroy(net);
        return rc;
    }
    *out = net;
    return 0;
}

int nem_net_destroy(struct nem_net *net)
{
    int rc = 0, ns_rc;

    if (net == NULL)
        return 0;
    /* Nodes and clients first, so the bridge namespace goes last. */
    for (unsigned i = 0; i <= net->n_nodes; i++) {
        ns_rc = remove_ns(&net->ns[i]);
        if (ns_rc < 0 && rc == 0)
            rc = ns_rc;
    }
    ns_rc = remove_ns(&net->bridge);
    if (ns_rc < 0 && rc == 0)
        rc = ns_rc;
    free(net);
    return rc;
}

int nem_net_remove_run(const char *run_id)
{
    char prefix[NS_NAME_MAX];
    char err[128];
    struct dirent *entry;
    DIR *dir;
    int removed = 0, rc = 0;

    rc = check_run_id(run_id, err, sizeof(err));
    if (rc < 0)
        return rc;
    snprintf(prefix, sizeof(prefix), "fl-%s-", run_id);
    dir = opendir(NETNS_DIR);
    if (dir == NULL)
        return errno == ENOENT ? 0 : -errno;
    while ((entry = readdir(dir)) != NULL) {
        char path[NS_PATH_MAX + NAME_MAX];
        int one;

        if (strncmp(entry->d_name, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(path, sizeof(path), NETNS_DIR "/%s", entry->d_name);
        one = unbind_ns_path(path);
        if (one < 0) {
            if (rc == 0)
                rc = one;
            continue;
        }
        removed++;
    }
    closedir(dir);
    return rc < 0 ? rc : removed;
}

int nem_net_ns_fd(const struct nem_net *net, unsigned idx)
{
    if (net == NULL || idx > net->n_nodes)
        return -EINVAL;
    return net->ns[idx].fd;
}

const char *nem_net_addr(const struct nem_net *net, unsigned idx)
{
    if (net == NULL || idx > net->n_nodes)
        return NULL;
    return net->ns[idx].addr;
}

/* ---- faults ------------------------------------------------------------ */

static bool has_fault(const struct ns *ns, uint64_t fault_id, size_t *pos)
{
    for (size_t i = 0; i < ns->n_faults; i++) {
        if (ns->faults[i] == fault_id) {
            if (pos != NULL)
                *pos = i;
            return true;
        }
    }
    return false;
}

static int check_node(const struct nem_net *net, unsigned node, char *err,
                      size_t err_size)
{
    if (net == NULL)
        return fl_input_error(err, err_size, "network is missing");
    if (node < 1 || node > net->n_nodes)
        return fl_input_error(err, err_size,
                              "invalid node %u: expected 1 to %u", node,
                              net->n_nodes);
    return 0;
}

static int check_fault(const struct nem_net *net, uint64_t fault_id,
                       unsigned to, char *err, size_t err_size)
{
    int rc = check_node(net, to, err, err_size);

    if (rc < 0)
        return rc;
    if (fault_id == 0)
        return fl_input_error(err, err_size, "invalid fault id 0");
    return 0;
}

/*
 * Creates the chain of fault_id in node `to` with `rule` (a match and
 * verdict, or NULL for none) in one nftables transaction, and records it.
 */
static int add_fault_chain(struct nem_net *net, uint64_t fault_id, unsigned to,
                           const char *rule, char *err, size_t err_size)
{
    struct ns *ns = &net->ns[to];
    char cmds[1024];
    char what[NS_NAME_MAX + 48];
    int len, rc;

    if (has_fault(ns, fault_id, NULL))
        return fl_input_error(err, err_size,
                              "fault %" PRIu64 " is already in place on "
                              "node %u",
                              fault_id, to);
    if (ns->n_faults == ns->cap_faults) {
        size_t cap = ns->cap_faults ? ns->cap_faults * 2 : 8;
        uint64_t *grown = realloc(ns->faults, cap * sizeof(*grown));

        if (grown == NULL)
            return fl_errorf(err, err_size, -ENOMEM, "out of memory");
        ns->faults = grown;
        ns->cap_faults = cap;
    }

    /* create, not add: an existing chain is an error, never reused. */
    len = snprintf(cmds, sizeof(cmds),
                   "create chain " NFT_TABLE " f%" PRIu64 " { type filter "
                   "hook input priority 0; policy accept; }\n",
                   fault_id);
    if (rule != NULL)
        snprintf(cmds + len, sizeof(cmds) - (size_t)len,
                 "add rule " NFT_TABLE " f%" PRIu64 " %s\n", fault_id, rule);
    snprintf(what, sizeof(what), "%s: cannot add fault %" PRIu64, ns->name,
             fault_id);
    rc = run_nft(ns, cmds, err, err_size, what);
    if (rc < 0)
        return rc;
    ns->faults[ns->n_faults++] = fault_id;
    return 0;
}

/* Appends "{ A, B, ... }" of the node addresses selected in mask to buf. */
static void format_addr_set(const struct nem_net *net, unsigned mask, char *buf,
                            size_t size)
{
    size_t n = 0;

    n += (size_t)snprintf(buf + n, size - n, "{ ");
    for (unsigned i = 1; i <= net->n_nodes && n < size; i++) {
        if (!(mask & (1u << i)))
            continue;
        n += (size_t)snprintf(buf + n, size - n, "%s%s", n > 2 ? ", " : "",
                              net->ns[i].addr);
    }
    if (n < size)
        snprintf(buf + n, size - n, " }");
}

int nem_net_block(struct nem_net *net, uint64_t fault_id, unsigned to,
                  const unsigned *from, size_t n_from, bool one_way, char *err,
                  size_t err_size)
{
    char set[NEM_MAX_NODES * (INET_ADDRSTRLEN + 2) + 8];
    char rule[sizeof(set) + 64];
    unsigned mask = 0;
    int rc;

    rc = check_fault(net, fault_id, to, err, err_size);
    if (rc < 0)
        return rc;
    if (from == NULL || n_from == 0)
        return fl_input_error(err, err_size, "no nodes to block from");
    for (size_t i = 0; i < n_from; i++) {
        if (from[i] < 1 || from[i] > net->n_nodes || from[i] == to)
            return fl_input_error(err, err_size,
                                  "invalid node %u to block from: expected "
                                  "1 to %u other than %u",
                                  from[i], net->n_nodes, to);
        mask |= 1u << from[i]; /* duplicates collapse */
    }

    format_addr_set(net, mask, set, sizeof(set));
    snprintf(rule, sizeof(rule), "ip saddr %s %sdrop", set,
             one_way ? "ct state new " : "");
    return add_fault_chain(net, fault_id, to, rule, err, err_size);
}

int nem_net_loss(struct nem_net *net, uint64_t fault_id, unsigned to,
                 double probability, char *err, size_t err_size)
{
    char set[NEM_MAX_NODES * (INET_ADDRSTRLEN + 2) + 8];
    char rule[sizeof(set) + 96];
    unsigned mask = 0;
    long threshold;
    int rc;

    rc = check_fault(net, fault_id, to, err, err_size);
    if (rc < 0)
        return rc;
    if (!(probability > 0.0 && probability <= 1.0))
        return fl_input_error(err, err_size,
                              "invalid loss probability %g: expected more "
                              "than 0 and at most 1",
                              probability);

    /* Rounded to 1/LOSS_SCALE, but a requested loss never rounds to none. */
    threshold = lround(probability * LOSS_SCALE);
    if (threshold < 1)
        threshold = 1;

    /* Only the other nodes' addresses: clients keep reaching every node. */
    for (unsigned i = 1; i <= net->n_nodes; i++) {
        if (i != to)
            mask |= 1u << i;
    }
    if (mask == 0) /* a single node: nothing to lose, but healable */
        return add_fault_chain(net, fault_id, to, NULL, err, err_size);
    format_addr_set(net, mask, set, sizeof(set));
    if (threshold >= LOSS_SCALE) /* numgen rejects "< LOSS_SCALE" */
        snprintf(rule, sizeof(rule), "ip saddr %s drop", set);
    else
        snprintf(rule, sizeof(rule),
                 "ip saddr %s numgen random mod %d < %ld drop", set, LOSS_SCALE,
                 threshold);
    return add_fault_chain(net, fault_id, to, rule, err, err_size);
}

int nem_net_heal(struct nem_net *net, uint64_t fault_id, unsigned to, char *err,
                 size_t err_size)
{
    struct ns *ns;
    char cmd[128];
    char what[NS_NAME_MAX + 48];
    size_t pos;
    int rc;

    rc = check_fault(net, fault_id, to, err, err_size);
    if (rc < 0)
        return rc;
    ns = &net->ns[to];
    if (!has_fault(ns, fault_id, &pos))
        return 0;

    snprintf(cmd, sizeof(cmd), "delete chain " NFT_TABLE " f%" PRIu64,
             fault_id);
    snprintf(what, sizeof(what), "%s: cannot heal fault %" PRIu64, ns->name,
             fault_id);
    rc = run_nft(ns, cmd, err, err_size, what);
    if (rc < 0)
        return rc;
    ns->faults[pos] = ns->faults[--ns->n_faults];
    return 0;
}

/* ---- delay ------------------------------------------------------------- */

/* NOTE: adding and deleting a netem qdisc can succeed only on kernels with
 * sch_netem, so only there does a test (test_delay_slows_round_trip) run
 * that path. */

/*
 * Allocates a request for the netem root qdisc (handle 1:) on eth0 of ns.
 * Returns 0 or a libnl error.
 */
static int alloc_netem_root(struct ns *ns, struct rtnl_qdisc **out)
{
    struct rtnl_qdisc *qdisc;
    int ifindex = 0, rc;

    *out = NULL;
    rc = link_ifindex(ns->sock, NODE_LINK, &ifindex);
    if (rc < 0)
        return rc;
    qdisc = rtnl_qdisc_alloc();
    if (qdisc == NULL)
        return -NLE_NOMEM;
    rtnl_tc_set_ifindex(TC_CAST(qdisc), ifindex);
    rtnl_tc_set_parent(TC_CAST(qdisc), TC_H_ROOT);
    rtnl_tc_set_handle(TC_CAST(qdisc), TC_HANDLE(1, 0));
    rc = rtnl_tc_set_kind(TC_CAST(qdisc), "netem");
    if (rc < 0) {
        rtnl_qdisc_put(qdisc);
        return rc;
    }
    *out = qdisc;
    return 0;
}

int nem_net_delay(struct nem_net *net, unsigned node, unsigned delay_ms,
                  char *err, size_t err_size)
{
    struct rtnl_qdisc *qdisc = NULL;
    struct ns *ns;
    int rc;

    rc = check_node(net, node, err, err_size);
    if (rc < 0)
        return rc;
    if (delay_ms < 1 || delay_ms > NEM_MAX_DELAY_MS)
        return fl_input_error(err, err_size,
                              "invalid delay %u ms: expected 1 to %d ms",
                              delay_ms, NEM_MAX_DELAY_MS);
    ns = &net->ns[node];
    if (ns->delay_ms != 0)
        return fl_input_error(err, err_size,
                              "node %u already has a delay of %u ms; "
                              "undelay it before setting another",
                              node, ns->delay_ms);

    rc = alloc_netem_root(ns, &qdisc);
    if (rc < 0)
        return fl_errorf(err, err_size, nl_to_errno(rc),
                         "%s: cannot prepare a netem qdisc on " NODE_LINK
                         ": %s",
                         ns->name, nl_geterror(rc));
    rtnl_netem_set_limit(qdisc, NETEM_LIMIT);
    rtnl_netem_set_delay(qdisc, (int)(delay_ms * 1000)); /* microseconds */
    rc = rtnl_qdisc_add(ns->sock, qdisc, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_qdisc_put(qdisc);

    /* With the kind set, the kernel returns ENOENT (libnl's
     * NLE_OBJ_NOTFOUND) only when it has no qdisc of that kind. */
    if (rc == -NLE_OBJ_NOTFOUND)
        return fl_errorf(err, err_size, -EOPNOTSUPP,
                         "%s: cannot delay node %u: the kernel has no netem "
                         "qdisc (sch_netem)",
                         ns->name, node);
    if (rc < 0)
        return fl_errorf(err, err_size, nl_to_errno(rc),
                         "%s: cannot add a netem qdisc to " NODE_LINK ": %s",
                         ns->name, nl_geterror(rc));
    ns->delay_ms = delay_ms;
    return 0;
}

int nem_net_undelay(struct nem_net *net, unsigned node, char *err,
                    size_t err_size)
{
    struct rtnl_qdisc *qdisc = NULL;
    struct ns *ns;
    int rc;

    rc = check_node(net, node, err, err_size);
    if (rc < 0)
        return rc;
    ns = &net->ns[node];
    if (ns->delay_ms == 0)
        return 0;

    /*
     * Handle and kind in the request make the kernel delete only our netem
     * qdisc. When the root qdisc is some other one, or eth0 is back on its
     * default qdisc, the kernel returns EINVAL (handle or kind mismatch) or
     * ENOENT, so the delay is already gone.
     */
    rc = alloc_netem_root(ns, &qdisc);
    if (rc == 0)
        rc = rtnl_qdisc_delete(ns->sock, qdisc);
    rtnl_qdisc_put(qdisc);
    if (rc < 0 && rc != -NLE_OBJ_NOTFOUND && rc != -NLE_INVAL)
        return fl_errorf(err, err_size, nl_to_errno(rc),
                         "%s: cannot delete the netem qdisc on " NODE_LINK
                         ": %s",
                         ns->name, nl_geterror(rc));
    ns->delay_ms = 0;
    return 0;
}

/* ---- netem probe ------------------------------------------------------- */

struct probe_job {
    int rc;
};

/*
 * Runs inside a namespace of its own that nothing else references, so the
 * kernel deletes it, with the scratch veth, as soon as this thread ends.
 */
static void *probe_netem_thread(void *arg)
{
    struct probe_job *job = arg;
    struct nl_sock *sock = NULL;
    struct rtnl_link *veth = NULL, *peer;
    struct rtnl_qdisc *qdisc = NULL;
    bool adding_qdisc = false;
    int ifindex = 0, rc;

    if (unshare(CLONE_NEWNET) < 0) {
        job->rc = -errno;
        return NULL;
    }
    sock = nl_socket_alloc();
    if (sock == NULL) {
        job->rc = -ENOMEM;
        return NULL;
    }
    rc = nl_connect(sock, NETLINK_ROUTE);
    if (rc < 0)
        goto out;

    veth = rtnl_link_veth_alloc();
    if (veth == NULL) {
        rc = -NLE_NOMEM;
        goto out;
    }
    rtnl_link_set_name(veth, "probe0");
    peer = rtnl_link_veth_get_peer(veth);
    rtnl_link_set_name(peer, "probe1");
    rtnl_link_put(peer);
    rc = rtnl_link_add(sock, veth, NLM_F_CREATE | NLM_F_EXCL);
    if (rc == 0)
        rc = link_ifindex(sock, "probe0", &ifindex);
    if (rc < 0)
        goto out;

    qdisc = rtnl_qdisc_alloc();
    if (qdisc == NULL) {
        rc = -NLE_NOMEM;
        goto out;
    }
    rtnl_tc_set_ifindex(TC_CAST(qdisc), ifindex);
    rtnl_tc_set_parent(TC_CAST(qdisc), TC_H_ROOT);
    rtnl_tc_set_handle(TC_CAST(qdisc), TC_HANDLE(1, 0));
    rc = rtnl_tc_set_kind(TC_CAST(qdisc), "netem");
    if (rc == 0) {
        rtnl_netem_set_limit(qdisc, 1000);
        rtnl_netem_set_delay(qdisc, 1000);
        adding_qdisc = true;
        rc = rtnl_qdisc_add(sock, qdisc, NLM_F_CREATE | NLM_F_EXCL);
    }

out:
    /* The kernel returns ENOENT, which libnl reports as NLE_OBJ_NOTFOUND,
     * when it has no qdisc of the requested kind. */
    if (rc == 0)
        job->rc = 1;
    else if (adding_qdisc && rc == -NLE_OBJ_NOTFOUND)
        job->rc = 0;
    else
        job->rc = nl_to_errno(rc);
    rtnl_qdisc_put(qdisc);
    if (veth != NULL)
        rtnl_link_veth_release(veth);
    nl_socket_free(sock);
    return NULL;
}

int nem_net_have_netem(void)
{
    static atomic_int cached = -1; /* -1: not probed yet */
    struct probe_job job = {0};
    pthread_t thread;
    int known = atomic_load(&cached);
    int rc;

    if (known >= 0)
        return known;
    if (geteuid() != 0)
        return -EPERM;
    rc = pthread_create(&thread, NULL, probe_netem_thread, &job);
    if (rc != 0)
        return -rc;
    pthread_join(thread, NULL);
    if (job.rc >= 0)
        atomic_store(&cached, job.rc);
    return job.rc;
}
