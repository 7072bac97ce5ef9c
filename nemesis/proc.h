/*
 * Node processes: started with fork and exec, optionally inside a network
 * namespace, with stdout and stderr appended to a log file, killed when
 * the thread that started them exits (PR_SET_PDEATHSIG), and tracked by
 * pidfd so a signal can never reach a recycled pid.
 *
 * PR_SET_PDEATHSIG fires when the starting *thread* exits, so start and
 * restart nodes from one thread that lives as long as the run.
 */
#ifndef NEM_PROC_H
#define NEM_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct nem_proc {
    pid_t pid;    /* 0 when not running */
    int pidfd;    /* -1 when not running */
    bool stopped; /* SIGSTOP sent and not yet continued */
    int status;   /* wait status of the last exit */
};

/*
 * Starts argv[0] (a path) with argv. When netns_fd >= 0 the child enters
 * that namespace first. Output goes to log_path, opened O_APPEND|O_CREAT.
 * Returns 0, or a negative error with the reason in err. A failed exec is
 * reported too, because the child writes its errno to a close-on-exec
 * pipe.
 */
int nem_proc_start(struct nem_proc *p, char *const argv[], int netns_fd,
                   const char *log_path, char *err, size_t err_size);

/* Sends sig through the pidfd; tracks SIGSTOP and SIGCONT. */
int nem_proc_signal(struct nem_proc *p, int sig);

/*
 * Reaps the process if it exited; returns 1 when it has (p->status set,
 * pid and pidfd cleared), 0 when it still runs, or a negative error.
 */
int nem_proc_poll(struct nem_proc *p);

/*
 * Continues a stopped process, sends sig (SIGTERM or SIGKILL), and waits up
 * to timeout_ms for it to exit, then SIGKILLs it and waits. Returns 0.
 */
int nem_proc_stop(struct nem_proc *p, int sig, int timeout_ms);

#endif
