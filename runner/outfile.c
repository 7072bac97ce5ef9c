/*
 * Output files written through a temporary file and a rename, with the
 * temporary file removed on failure, SIGINT, SIGTERM and SIGHUP. See
 * outfile.h.
 */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The temporary file that the signal handler removes, while armed. */
static char cleanup_path[4096];
static volatile sig_atomic_t cleanup_armed;
static struct sigaction saved_int;
static struct sigaction saved_term;
static struct sigaction saved_hup;

static void remove_and_exit(int sig)
{
    if (cleanup_armed)
        unlink(cleanup_path);
    _exit(128 + sig);
}

static void block_signals(sigset_t *old)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, old);
}

/* Installs the handler for sig unless sig is ignored, as under nohup. */
static void install(int sig, struct sigaction *saved)
{
    struct sigaction sa;

    sigaction(sig, NULL, saved);
    if (saved->sa_handler == SIG_IGN)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = remove_and_exit;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* The caller blocks SIGINT, SIGTERM and SIGHUP around arm and disarm. */
static void arm_cleanup(const char *tmp)
{
    memcpy(cleanup_path, tmp, strlen(tmp) + 1);
    cleanup_armed = 1;
    install(SIGINT, &saved_int);
    install(SIGTERM, &saved_term);
    install(SIGHUP, &saved_hup);
}

static void disarm_cleanup(void)
{
    sigaction(SIGINT, &saved_int, NULL);
    sigaction(SIGTERM, &saved_term, NULL);
    sigaction(SIGHUP, &saved_hup, NULL);
    cleanup_armed = 0;
}

static void remove_temporary(struct run_outfile *f)
{
    sigset_t old;

    if (f->tmp[0] == '\0')
        return;
    block_signals(&old);
    unlink(f->tmp);
    disarm_cleanup();
    f->tmp[0] = '\0';
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static ssize_t write_all(void *cookie, const char *buf, size_t size)
{
    struct run_outfile *f = cookie;
    size_t done = 0;

    while (done < size) {
        ssize_t n = write(f->fd, buf + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (f->write_error == 0)
                f->write_error = errno;
            return -1;
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int close_fd(void *cookie)
{
    struct run_outfile *f = cookie;

    return f->own_fd ? close(f->fd) : 0;
}

static int open_temporary(struct run_outfile *f)
{
    sigset_t old;
    int rc = 0;
    int n =
        snprintf(f->tmp, sizeof(f->tmp), "%s.tmp.%ld", f->path, (long)getpid());

    if (n < 0 || (size_t)n >= sizeof(f->tmp)) {
        f->tmp[0] = '\0';
        return -ENAMETOOLONG;
    }
    /* With the signals blocked, no temporary file exists without a handler
     * that removes it. */
    block_signals(&old);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f->fd < 0) {
        rc = -errno;
        f->tmp[0] = '\0';
    } else {
        f->own_fd = true;
        arm_cleanup(f->tmp);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static int open_path(struct run_outfile *f, const char *path)
{
    char *real = realpath(path, NULL);
    struct stat st;
    int n = snprintf(f->path, sizeof(f->path), "%s", real ? real : path);

    free(real);
    if (n < 0 || (size_t)n >= sizeof(f->path))
        return -ENAMETOOLONG;
    if (stat(f->path, &st) != 0 || S_ISREG(st.st_mode))
        return open_temporary(f);
    f->fd = open(f->path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (f->fd < 0)
        return -errno;
    f->own_fd = true;
    return 0;
}

int run_outfile_open(struct run_outfile *f, const char *path)
{
    static const cookie_io_functions_t io = {
        .write = write_all,
        .close = close_fd,
    };
    int rc;

    memset(f, 0, sizeof(*f));
    f->fd = STDOUT_FILENO;
    if (path != NULL) {
        rc = open_path(f, path);
        if (rc != 0)
            return rc;
    }
    f->stream = fopencookie(f, "w", io);
    if (f->stream == NULL) {
        rc = -errno;
        if (f->own_fd)
            close(f->fd);
        remove_temporary(f);
        return rc;
    }
    return 0;
}

int run_outfile_error(const struct run_outfile *f, int rc)
{
    return rc != 0 && f->write_error != 0 ? -f->write_error : rc;
}

int run_outfile_commit(struct run_outfile *f)
{
    sigset_t old;
    int rc = 0;

    /* A write that failed earlier leaves the error flag set even when this
     * flush succeeds. */
    if (fflush(f->stream) != 0)
        rc = -errno;
    else if (ferror(f->stream))
        rc = -EIO;
    if (rc == 0 && f->tmp[0] != '\0' && fsync(f->fd) != 0)
        rc = -errno;
    if (fclose(f->stream) != 0 && rc == 0)
        rc = -errno;
    f->stream = NULL;
    rc = run_outfile_error(f, rc);
    if (rc == 0 && f->tmp[0] != '\0') {
        block_signals(&old);
        if (rename(f->tmp, f->path) != 0) {
            rc = -errno;
        } else {
            disarm_cleanup();
            f->tmp[0] = '\0';
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    if (rc != 0)
        remove_temporary(f);
    return rc;
}

void run_outfile_abort(struct run_outfile *f)
{
    if (f->stream != NULL)
        fclose(f->stream);
    f->stream = NULL;
    remove_temporary(f);
}
