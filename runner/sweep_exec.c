/*
 * The children of a sweep: one process per run, started through
 * /proc/self/exe as `faultline run` or `faultline sim raft`. Each child
 * leads a process group of its own, so a Ctrl-C on the terminal reaches
 * only the sweep, which forwards it to every group. A child also gets
 * SIGTERM from the kernel when the sweep dies (PR_SET_PDEATHSIG). So even
 * a sweep killed with SIGKILL leaves no run going, because each runner
 * tears down its cluster as after Ctrl-C. SIGINT, SIGTERM, SIGHUP and
 * SIGCHLD are blocked in the sweep and read from one signalfd.
 */
#include "cli.h"
#include "sweep.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS (RUN_SIM_MAX_ARGS + 16)

struct exec_state {
    struct run_sweep *s;
    size_t *slots;  /* s->parallel entries: a running job's index, or NONE */
    size_t next;    /* the first job not started yet */
    size_t running; /* jobs started and not reaped */
    size_t done;    /* jobs that ended */
    int sigfd;
    bool forwarded; /* a signal went to every running child */
};

#define NONE SIZE_MAX

/* Fills argv with the child's command line. Its strings point into s,
 * sim, seed and duration. */
static void build_argv(const struct run_sweep *s,
                       const struct run_sweep_job *job,
                       struct run_sim_args *sim, char seed[24],
                       char duration[32], char *argv[MAX_ARGS])
{
    const struct run_sweep_campaign *c = &s->campaigns[job->campaign];
    size_t n = 0;

    argv[n++] = (char *)"faultline";
    if (c->sim) {
        run_sim_campaign_args(&c->sim_campaign, job->seed, sim);
        for (size_t i = 0; i < sim->argc; i++)
            argv[n++] = sim->argv[i];
        argv[n] = NULL;
        return;
    }
    snprintf(seed, 24, "%" PRIu64, job->seed);
    argv[n++] = (char *)"run";
    argv[n++] = (char *)c->path;
    argv[n++] = (char *)"--seed";
    argv[n++] = seed;
    argv[n++] = (char *)"--store";
    argv[n++] = (char *)s->store;
    if (s->duration_s > 0) {
        snprintf(duration, 32, "%.15g", s->duration_s);
        argv[n++] = (char *)"--duration";
        argv[n++] = duration;
    }
    if (s->bin_dir != NULL) {
        argv[n++] = (char *)"--bin-dir";
        argv[n++] = (char *)s->bin_dir;
    }
    argv[n] = NULL;
}

/*
 * Runs in the child between fork and exec, so it makes only
 * async-signal-safe calls. The child leads a new process group, dies with
 * the sweep, starts with no signal blocked and SIGPIPE at its default,
 * reads /dev/null and writes both outputs to the log.
 */
static void exec_child(const char *self, char *const argv[], int log_fd,
                       pid_t parent)
{
    sigset_t none;

    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* The sweep may have died before the line above took effect. */
    if (getppid() != parent)
        _exit(130);
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
        dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)
        _exit(4);
    execv(self, argv);
    _exit(4);
}

/* Starts job in slot; returns 0 or a negative error with the job marked
 * failed to run. */
static int start_job(struct exec_state *x, size_t slot, size_t index)
{
    struct run_sweep *s = x->s;
    struct run_sweep_job *job = &s->jobs[index];
    const struct run_sweep_campaign *c = &s->campaigns[job->campaign];
    struct run_sim_args sim;
    char seed[24], duration[32];
    char *argv[MAX_ARGS];
    char path[PATH_MAX + 96];
    pid_t parent = getpid();
    int log_fd;
    pid_t pid;

    build_argv(s, job, &sim, seed, duration, argv);
    snprintf(path, sizeof(path), "%s/%s-s%" PRIu64 ".log", s->log_dir, c->name,
             job->seed);
    job->log_path = strdup(path);
    job->start_ns = fl_clock_now_ns();
    log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0 || job->log_path == NULL) {
        int rc = log_fd < 0 ? -errno : -ENOMEM;
        char why[PATH_MAX + 192];
        snprintf(why, sizeof(why), "cannot create the log %s: %s", path,
                 strerror(-rc));
        job->detail = strdup(why);
        job->outcome = RUN_SWEEP_FAILED;
        job->stop_ns = job->start_ns;
        if (log_fd >= 0)
            close(log_fd);
        return rc;
    }
    pid = fork();
    if (pid == 0)
        exec_child(s->self, argv, log_fd, parent);
    close(log_fd);
    if (pid < 0) {
        int rc = -errno;
        char why[128];
        snprintf(why, sizeof(why), "cannot start a process: %s", strerror(-rc));
        job->detail = strdup(why);
        job->outcome = RUN_SWEEP_FAILED;
        job->stop_ns = job->start_ns;
        return rc;
    }
    /* Also here, so the group exists before the first forwarded signal. */
    setpgid(pid, pid);
    job->pid = pid;
    job->outcome = RUN_SWEEP_RUNNING;
    x->slots[slot] = index;
    x->running++;
    return 0;
}

static void print_progress(const struct exec_state *x,
                           const struct run_sweep_job *job)
{
    const struct run_sweep *s = x->s;
    static const char *const names[] = {
        [RUN_SWEEP_VALID] = "valid",
        [RUN_SWEEP_INVALID] = "invalid",
        [RUN_SWEEP_UNKNOWN] = "unknown",
        [RUN_SWEEP_FAILED] = "failed to run",
        [RUN_SWEEP_INTERRUPTED] = "interrupted",
    };
    const char *what =
        job->outcome >= RUN_SWEEP_VALID && job->outcome <= RUN_SWEEP_INTERRUPTED
            ? names[job->outcome]
            : "?";

    fprintf(stderr,
            "faultline sweep: [%zu/%zu] %s seed %" PRIu64 ": %s%s (%.1f s)",
            x->done, s->n_jobs, s->campaigns[job->campaign].name, job->seed,
            what, run_sweep_job_unexpected(s, job) ? ", unexpected" : "",
            (double)(job->stop_ns - job->start_ns) / 1e9);
    if (job->outcome == RUN_SWEEP_FAILED)
        fprintf(stderr, "; see %s", job->log_path);
    fputc('\n', stderr);
}

/* Records the end of the child pid, which exited with status. */
static void finish(struct exec_state *x, pid_t pid, int status, bool progress)
{
    struct run_sweep *s = x->s;

    for (size_t slot = 0; slot < s->parallel; slot++) {
        struct run_sweep_job *job;
        if (x->slots[slot] == NONE || s->jobs[x->slots[slot]].pid != pid)
            continue;
        job = &s->jobs[x->slots[slot]];
        x->slots[slot] = NONE;
        job->exit_status = status;
        job->stop_ns = fl_clock_now_ns();
        job->pid = 0;
        run_sweep_read_job(s, job, x->forwarded);
        x->running--;
        x->done++;
        if (progress)
            print_progress(x, job);
        return;
    }
}

/* Reaps every child that ended. */
static void reap(struct exec_state *x)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        finish(x, pid, status, true);
}

/* Sends sig to the process group of every running child. */
static void forward(struct exec_state *x, int sig)
{
    struct run_sweep *s = x->s;

    for (size_t slot = 0; slot < s->parallel; slot++) {
        if (x->slots[slot] != NONE)
            kill(-s->jobs[x->slots[slot]].pid, sig);
    }
    x->forwarded = true;
}

/* Marks every job not started yet as not started, with the reason. */
static void stop_starting(struct exec_state *x, const char *why)
{
    struct run_sweep *s = x->s;

    for (; x->next < s->n_jobs; x->next++) {
        struct run_sweep_job *job = &s->jobs[x->next];
        if (job->outcome != RUN_SWEEP_PENDING)
            continue;
        job->outcome = RUN_SWEEP_NOT_STARTED;
        job->detail = strdup(why);
    }
}

static bool budget_spent(const struct run_sweep *s)
{
    return s->budget_s > 0 && fl_clock_now_ns() - s->start_ns >=
                                  (int64_t)s->budget_s * FL_NSEC_PER_SEC;
}

/* Starts jobs while slots are free. A job that cannot be started counts
 * as failed to run, and the sweep goes on. */
static void fill_slots(struct exec_state *x)
{
    struct run_sweep *s = x->s;
    size_t slot = 0;

    while (x->next < s->n_jobs) {
        while (slot < s->parallel && x->slots[slot] != NONE)
            slot++;
        if (slot == s->parallel)
            return;
        if (budget_spent(s)) {
            char why[128];
            snprintf(why, sizeof(why),
                     "not started: the budget of %s was spent", s->budget_text);
            s->budget_spent = true;
            fprintf(stderr,
                    "faultline sweep: the budget of %s is spent; starting "
                    "no more runs\n",
                    s->budget_text);
            stop_starting(x, why);
            return;
        }
        size_t index = x->next++;
        if (start_job(x, slot, index) != 0) {
            x->done++;
            print_progress(x, &s->jobs[index]);
        }
    }
}

/* Reads the pending signals; returns false when the signalfd failed. */
static bool handle_signals(struct exec_state *x)
{
    struct signalfd_siginfo info;
    ssize_t got;

    while ((got = read(x->sigfd, &info, sizeof(info))) == sizeof(info)) {
        int sig = (int)info.ssi_signo;
        if (sig == SIGCHLD)
            continue;
        if (!x->s->interrupted)
            fprintf(stderr,
                    "faultline sweep: %s received; passing it to the %zu "
                    "running run%s and starting no more\n",
                    sig == SIGINT    ? "SIGINT"
                    : sig == SIGTERM ? "SIGTERM"
                                     : "SIGHUP",
                    x->running, x->running == 1 ? "" : "s");
        x->s->interrupted = true;
        stop_starting(x, "not started: the sweep was interrupted");
        forward(x, sig);
    }
    if (got < 0 && errno != EAGAIN && errno != EINTR)
        return false;
    reap(x);
    return true;
}

int run_sweep_execute(struct run_sweep *s)
{
    struct exec_state x = {.s = s};
    sigset_t mask, old;
    int rc = 0;

    x.slots = malloc(s->parallel * sizeof(*x.slots));
    if (x.slots == NULL)
        return -ENOMEM;
    for (size_t slot = 0; slot < s->parallel; slot++)
        x.slots[slot] = NONE;

    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, &old);
    x.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (x.sigfd < 0) {
        rc = -errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        free(x.slots);
        return rc;
    }
    s->start_ns = fl_clock_now_ns();
    for (;;) {
        if (!s->interrupted)
            fill_slots(&x);
        if (x.running == 0 && (x.next >= s->n_jobs || s->interrupted))
            break;
        struct pollfd pfd = {.fd = x.sigfd, .events = POLLIN};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        if (!handle_signals(&x)) {
            rc = -errno;
            break;
        }
    }
    if (rc != 0) {
        /* Without the signalfd no child can be watched: stop them all and
         * wait for each, so none outlives the sweep. */
        fprintf(stderr, "faultline sweep: cannot watch the runs: %s\n",
                strerror(-rc));
        s->interrupted = true;
        stop_starting(&x, "not started: the sweep failed");
        forward(&x, SIGTERM);
        while (x.running > 0) {
            int status;
            pid_t pid = waitpid(-1, &status, 0);
            if (pid < 0 && errno == EINTR)
                continue;
            if (pid < 0)
                break;
            finish(&x, pid, status, false);
        }
    }
    close(x.sigfd);
    free(x.slots);
    /* Signals that arrived since stay blocked until the process ends, so
     * the JUnit file and the summary are written whole. */
    return rc;
}
