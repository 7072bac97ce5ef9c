/*
 * A program to run under the disk-fault supervisor: it changes files in a
 * directory as its arguments direct and prints each step and its result.
 *
 * Usage: disk_target DIR STEP...
 *
 * Steps (they run in order inside DIR; "the file" is the last one opened):
 *   open NAME         open NAME read-write, creating it (mode 0644)
 *   append NAME       open NAME for appending, creating it
 *   write TEXT        write TEXT to the file
 *   pwrite OFF TEXT   write TEXT at byte offset OFF
 *   writev A B        write A and B with one writev
 *   fill N BYTE       write N copies of the character BYTE with one write
 *   fsync, fdatasync  sync the file
 *   dirsync           fsync DIR itself
 *   trunc N           ftruncate the file to N bytes
 *   rename A B, unlink A
 *   bulk N SIZE       N writes of SIZE bytes, record i filled with
 *                     'a' + i % 26, and print the SIGUSR1s received
 *   ready             print "ready" (tests wait for it)
 *   pause             sleep until killed
 *
 * Exits 0 when every step succeeded, 1 at the first failure (printed as
 * "STEP failed: REASON"), 2 on bad usage. SIGUSR1 is caught with
 * SA_RESTART from the start, so tests can signal it at any time.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static volatile sig_atomic_t signals_received;

static void on_usr1(int sig)
{
    (void)sig;
    signals_received++;
}

static int failed(const char *step)
{
    printf("%s failed: %s\n", step, strerror(errno));
    fflush(stdout);
    return 1;
}

static int write_exact(int fd, const char *buf, size_t len)
{
    ssize_t n = write(fd, buf, len);

    if (n >= 0 && (size_t)n != len) {
        errno = EIO;
        return -1;
    }
    return n < 0 ? -1 : 0;
}

static int bulk(int fd, long count, long size)
{
    char *buf = malloc((size_t)size);

    if (buf == NULL)
        return -1;
    for (long i = 0; i < count; i++) {
        memset(buf, 'a' + (int)(i % 26), (size_t)size);
        if (write_exact(fd, buf, (size_t)size) != 0) {
            free(buf);
            return -1;
        }
    }
    free(buf);
    printf("bulk signals=%d\n", (int)signals_received);
    return 0;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    int fd = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || chdir(argv[1]) != 0) {
        fprintf(stderr, "usage: disk_target DIR STEP...\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *step = argv[i];
        int need = 0;

        if (!strcmp(step, "open") || !strcmp(step, "append") ||
            !strcmp(step, "write") || !strcmp(step, "trunc") ||
            !strcmp(step, "unlink"))
            need = 1;
        else if (!strcmp(step, "pwrite") || !strcmp(step, "writev") ||
                 !strcmp(step, "rename") || !strcmp(step, "bulk") ||
                 !strcmp(step, "fill"))
            need = 2;
        if (i + need >= argc) {
            fprintf(stderr, "disk_target: %s needs %d arguments\n", step, need);
            return 2;
        }
        char **arg = &argv[i + 1];
        int rc = 0;

        if (!strcmp(step, "open") || !strcmp(step, "append")) {
            int flags = !strcmp(step, "open") ? O_RDWR | O_CREAT
                                              : O_WRONLY | O_CREAT | O_APPEND;
            if (fd >= 0)
                close(fd);
            fd = open(arg[0], flags, 0644);
            rc = fd < 0 ? -1 : 0;
        } else if (!strcmp(step, "write")) {
            rc = write_exact(fd, arg[0], strlen(arg[0]));
        } else if (!strcmp(step, "pwrite")) {
            size_t len = strlen(arg[1]);
            ssize_t n = pwrite(fd, arg[1], len, atol(arg[0]));
            rc = n == (ssize_t)len ? 0 : -1;
        } else if (!strcmp(step, "writev")) {
            struct iovec iov[2] = {{arg[0], strlen(arg[0])},
                                   {arg[1], strlen(arg[1])}};
            ssize_t n = writev(fd, iov, 2);
            rc = n == (ssize_t)(iov[0].iov_len + iov[1].iov_len) ? 0 : -1;
        } else if (!strcmp(step, "fill")) {
            size_t len = (size_t)atol(arg[0]);
            char *buf = malloc(len);
            if (buf == NULL)
                return failed(step);
            memset(buf, arg[1][0], len);
            rc = write_exact(fd, buf, len);
            free(buf);
        } else if (!strcmp(step, "fsync")) {
            rc = fsync(fd);
        } else if (!strcmp(step, "fdatasync")) {
            rc = fdatasync(fd);
        } else if (!strcmp(step, "dirsync")) {
            int dir = open(".", O_RDONLY | O_DIRECTORY);
            rc = dir < 0 ? -1 : fsync(dir);
            if (dir >= 0)
                close(dir);
        } else if (!strcmp(step, "trunc")) {
            rc = ftruncate(fd, atol(arg[0]));
        } else if (!strcmp(step, "rename")) {
            rc = rename(arg[0], arg[1]);
        } else if (!strcmp(step, "unlink")) {
            rc = unlink(arg[0]);
        } else if (!strcmp(step, "bulk")) {
            rc = bulk(fd, atol(arg[0]), atol(arg[1]));
        } else if (!strcmp(step, "ready")) {
            printf("ready\n");
        } else if (!strcmp(step, "pause")) {
            for (;;)
                pause();
        } else {
            fprintf(stderr, "disk_target: unknown step %s\n", step);
            return 2;
        }
        if (rc != 0)
            return failed(step);
        printf("%s ok\n", step);
        i += need;
    }
    return 0;
}
