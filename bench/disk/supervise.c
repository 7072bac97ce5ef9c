/*
 * disk_supervise: runs one program under the disk-fault supervisor
 * (nemesis/disk_fault.h) with no fault armed, as the runner runs a system
 * under test, so that bench/disk/run.sh can compare the program with and
 * without it. SIGTERM, SIGINT and SIGHUP are passed on to the program.
 * When the program has exited, the supervisor's counters go to stderr as
 * one line, and the program's exit status becomes this one's (128 + N
 * when signal N ended it).
 */
#include "disk_fault.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long one wait for the program lasts before pending signals are
 * checked, so a signal reaches the program at most this late. */
#define POLL_MS 20

static const char usage_text[] =
    "Usage: disk_supervise DATA_DIR PROGRAM [ARG...]\n"
    "\n"
    "Runs PROGRAM (a path; PATH is not searched) under the seccomp\n"
    "disk-fault supervisor, which tracks every change under DATA_DIR\n"
    "(an existing directory) and injects no fault. stdin is /dev/null;\n"
    "stdout and stderr are inherited. SIGTERM, SIGINT and SIGHUP are\n"
    "forwarded to PROGRAM. On exit, prints one line to stderr:\n"
    "\n"
    "  disk_supervise: stats write=N fsync=N sync_range=N resize=N open=N\n"
    "  rename=N unlink=N continued=N performed=N tracked_bytes=N\n"
    "\n"
    "The first seven fields count the notifications of each kind of\n"
    "system call; continued counts those the kernel then ran unchanged,\n"
    "performed those the supervisor ran itself.\n"
    "\n"
    "Exit status: PROGRAM's, 128 + N when signal N ended it, or 1 when the\n"
    "supervisor failed to start it.\n";

static void print_stats(struct nem_disk *d)
{
    struct nem_disk_stats s;

    nem_disk_get_stats(d, &s);
    fprintf(stderr,
            "disk_supervise: stats write=%" PRIu64 " fsync=%" PRIu64
            " sync_range=%" PRIu64 " resize=%" PRIu64 " open=%" PRIu64
            " rename=%" PRIu64 " unlink=%" PRIu64 " continued=%" PRIu64
            " performed=%" PRIu64 " tracked_bytes=%" PRIu64 "\n",
            s.calls[NEM_DISK_CALL_WRITE], s.calls[NEM_DISK_CALL_FSYNC],
            s.calls[NEM_DISK_CALL_SYNC_RANGE], s.calls[NEM_DISK_CALL_RESIZE],
            s.calls[NEM_DISK_CALL_OPEN], s.calls[NEM_DISK_CALL_RENAME],
            s.calls[NEM_DISK_CALL_UNLINK], s.continued, s.performed,
            s.tracked_bytes);
}

/* Waits for the program to exit, forwarding the signals in forwarded.
 * Returns its exit status as a shell reports it, or 1 when waiting
 * failed. */
static int wait_forwarding(struct nem_disk *d, const sigset_t *forwarded)
{
    const struct timespec no_wait = {0, 0};
    int status = 0;

    for (;;) {
        int rc = nem_disk_wait(d, POLL_MS, &status);
        if (rc < 0) {
            fprintf(stderr, "disk_supervise: waiting for the program: %s\n",
                    nem_disk_error(d));
            return 1;
        }
        if (rc == 1)
            break;

        int sig = sigtimedwait(forwarded, NULL, &no_wait);
        if (sig > 0 && kill(nem_disk_pid(d), sig) != 0 && errno != ESRCH)
            fprintf(stderr, "disk_supervise: forwarding signal %d: %s\n", sig,
                    strerror(errno));
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
    struct nem_disk *d = NULL;
    sigset_t forwarded;
    char err[512];
    int rc;

    if (argc == 2 &&
        (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc < 3) {
        fputs("disk_supervise: missing DATA_DIR or PROGRAM; see --help\n",
              stderr);
        return 2;
    }

    /* Blocked before the supervisor thread starts, so that only
     * sigtimedwait in this thread takes them. The program starts with an
     * empty signal mask. */
    sigemptyset(&forwarded);
    sigaddset(&forwarded, SIGTERM);
    sigaddset(&forwarded, SIGINT);
    sigaddset(&forwarded, SIGHUP);
    sigprocmask(SIG_BLOCK, &forwarded, NULL);

    rc = nem_disk_create(argv[1], NULL, &d, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "disk_supervise: %s\n", err);
        return 1;
    }
    rc = nem_disk_start(d, argv + 2, NULL);
    if (rc != 0) {
        fprintf(stderr, "disk_supervise: %s\n", nem_disk_error(d));
        nem_disk_destroy(d);
        return 1;
    }

    int status = wait_forwarding(d, &forwarded);
    print_stats(d);
    /* Set when the supervisor thread failed and killed the program. */
    if (nem_disk_error(d)[0] != '\0')
        fprintf(stderr, "disk_supervise: supervisor error: %s\n",
                nem_disk_error(d));
    nem_disk_destroy(d);
    return status;
}
