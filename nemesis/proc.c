/*
 * Node processes, started with fork and exec and signalled through pidfds.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_send_signal_(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* In the child: everything up to exec. Reports a failure as errno on the
 * pipe and exits. Only async-signal-safe calls are used here. */
static void child(char *const argv[], int netns_fd, int log_fd, int report,
                  pid_t parent)
{
    int e;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        goto fail;
    /* The parent may have died before prctl took effect. */
    if (getppid() != parent)
        _exit(127);
    /* A node starts in its own process group, so a terminal's ^C reaches
     * the runner alone and the runner decides how nodes stop. */
    setpgid(0, 0);
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0)
        goto fail;
    if (dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)
        goto fail;
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        close(null_fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[0], argv);
fail:
    e = errno;
    if (write(report, &e, sizeof(e)) < 0) {
        /* Nothing more a child can do. */
    }
    _exit(127);
}

int nem_proc_start(struct nem_proc *p, char *const argv[], int netns_fd,
                   const char *log_path, char *err, size_t err_size)
{
    int pipefd[2];
    int log_fd;
    pid_t parent = getpid();
    pid_t pid;
    int child_errno = 0;
    ssize_t n;

    p->pid = 0;
    p->pidfd = -1;
    p->stopped = false;
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        int rc = -errno;
        snprintf(err, err_size, "cannot open log %s: %s", log_path,
                 strerror(errno));
        return rc;
    }
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        int rc = -errno;
        snprintf(err, err_size, "pipe: %s", strerror(errno));
        close(log_fd);
        return rc;
    }
    pid = fork();
    if (pid < 0) {
        int rc = -errno;
        snprintf(err, err_size, "fork: %s", strerror(errno));
        close(log_fd);
        close(pipefd[0]);
        close(pipefd[1]);
        return rc;
    }
    if (pid == 0) {
        close(pipefd[0]);
        child(argv, netns_fd, log_fd, pipefd[1], parent);
    }
    close(log_fd);
    close(pipefd[1]);
    do
        n = read(pipefd[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n == (ssize_t)sizeof(child_errno)) {
        /* exec failed; the child has exited or is about to. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        snprintf(err, err_size, "cannot start %s: %s", argv[0],
                 strerror(child_errno));
        return -child_errno;
    }
    p->pid = pid;
    p->pidfd = pidfd_open_(pid);
    if (p->pidfd < 0) {
        int rc = -errno;
        snprintf(err, err_size, "pidfd_open: %s", strerror(errno));
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        p->pid = 0;
        return rc;
    }
    return 0;
}

int nem_proc_signal(struct nem_proc *p, int sig)
{
    if (p->pidfd < 0)
        return -ESRCH;
    if (pidfd_send_signal_(p->pidfd, sig) != 0)
        return -errno;
    if (sig == SIGSTOP)
        p->stopped = true;
    else if (sig == SIGCONT)
        p->stopped = false;
    return 0;
}

int nem_proc_poll(struct nem_proc *p)
{
    siginfo_t info;
    int status;

    if (p->pidfd < 0)
        return 1;
    memset(&info, 0, sizeof(info));
    if (waitid(P_PIDFD, (id_t)p->pidfd, &info, WEXITED | WNOHANG) != 0)
        return -errno;
    if (info.si_pid == 0)
        return 0;
    /* Rebuild a wait status from what waitid reports. */
    if (info.si_code == CLD_EXITED)
        status = (info.si_status & 0xff) << 8;
    else
        status = info.si_status & 0x7f;
    p->status = status;
    close(p->pidfd);
    p->pidfd = -1;
    p->pid = 0;
    p->stopped = false;
    return 1;
}

int nem_proc_stop(struct nem_proc *p, int sig, int timeout_ms)
{
    struct pollfd pfd;
    int rc;

    if (p->pidfd < 0)
        return 0;
    /* SIGCONT after the signal: a process stopped by anyone, not only by
     * nem_proc_signal, must run to act on a SIGTERM. */
    nem_proc_signal(p, sig);
    nem_proc_signal(p, SIGCONT);
    pfd.fd = p->pidfd;
    pfd.events = POLLIN;
    do
        rc = poll(&pfd, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        nem_proc_signal(p, SIGKILL);
    for (;;) {
        rc = nem_proc_poll(p);
        if (rc != 0)
            break;
        pfd.revents = 0;
        poll(&pfd, 1, 100);
    }
    return 0;
}
