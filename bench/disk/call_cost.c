/*
 * disk_call_cost: times single file-system calls, for bench/disk/run.sh,
 * which runs it once plainly and once under disk_supervise to get what
 * the disk-fault supervisor adds to each call.
 *
 * Each call is timed on its own with CLOCK_MONOTONIC, after untimed
 * warmup calls. The clock is read through the vDSO, so reading it makes
 * no system call that the seccomp filter intercepts. Preparation a call
 * needs, such as the write before an fsync, is not timed. Files under
 * --data-dir are the ones the supervisor tracks, and --outside-dir
 * contains the untracked file.
 */
#include "clock.h"
#include "die.h"
#include "histogram.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BLOCK_SIZE 64
/* pwrite rows overwrite one of this many blocks of an existing file. */
#define OVERWRITE_BLOCKS 1024
#define MAX_ITERATIONS   10000000L

static const char usage_text[] =
    "Usage: disk_call_cost --data-dir DIR --outside-dir DIR [OPTIONS]\n"
    "\n"
    "Times file-system calls one at a time and prints one line per call:\n"
    "\n"
    "  call=NAME iterations=N p50_us=X mean_us=X p99_us=X\n"
    "\n"
    "Calls (writes are 64 bytes; \"tracked\" files are in --data-dir):\n"
    "  getppid                 a call the supervisor's filter does not\n"
    "                          send to the supervisor\n"
    "  write-untracked         write, appending to a file in --outside-dir\n"
    "  write-tracked           write, appending to a tracked file\n"
    "  pwrite-tracked          pwrite over existing bytes of a tracked\n"
    "                          file\n"
    "  pwrite-tracked-thread   the same from a second thread of the process\n"
    "  fdatasync-tracked       fdatasync of a tracked file after an untimed\n"
    "                          write to it\n"
    "  fsync-tracked           fsync, likewise\n"
    "  openat-create           openat with O_CREAT of a new file (the close\n"
    "                          is not timed)\n"
    "  rename-new              rename of a tracked file to a free name\n"
    "  rename-replace          rename of a new file over an existing one (the\n"
    "                          creation of the new file and a link that\n"
    "                          keeps the replaced one are not timed)\n"
    "\n"
    "Options:\n"
    "  --data-dir DIR          existing directory of the tracked files\n"
    "  --outside-dir DIR       existing directory for the untracked file,\n"
    "                          outside --data-dir\n"
    "  --iterations N          timed calls of each kind not listed below\n"
    "                          (default 10000)\n"
    "  --slow-iterations N     timed calls of the kinds that flush to the\n"
    "                          disk or leave a file behind: fdatasync,\n"
    "                          fsync, openat-create, rename-replace\n"
    "                          (default 1000)\n"
    "  -h, --help              show this help\n"
    "\n"
    "Each kind of call is first made N/10 times (at least 10) untimed.\n"
    "Exit status: 0, 1 when a call fails, 2 on a usage error.\n";

/* The open files and directory every timed call works on. */
struct bench {
    int data_fd;
    int untracked_fd;
    int append_fd;
    int overwrite_fd;
    int sync_fd;
    char block[BLOCK_SIZE];
};

/* Makes one call of a kind, with any untimed preparation it needs, and
 * stores the call's duration in *ns. Returns 0 or -errno. */
typedef int (*timed_call)(struct bench *b, long i, int64_t *ns);

struct row {
    const char *name;
    timed_call call;
    bool slow;   /* uses --slow-iterations */
    bool thread; /* runs in a second thread */
};

static int write_block(int fd, const char *block)
{
    ssize_t n = write(fd, block, BLOCK_SIZE);

    if (n < 0)
        return -errno;
    return n == BLOCK_SIZE ? 0 : -EIO;
}

/* ---- the timed calls ----------------------------------------------------- */

static int call_getppid(struct bench *b, long i, int64_t *ns)
{
    (void)b;
    (void)i;
    int64_t start = fl_clock_now_ns();
    /* Through syscall(2), in case a C library caches the parent's pid. */
    (void)syscall(SYS_getppid);
    *ns = fl_clock_now_ns() - start;
    return 0;
}

static int call_write_untracked(struct bench *b, long i, int64_t *ns)
{
    (void)i;
    int64_t start = fl_clock_now_ns();
    int rc = write_block(b->untracked_fd, b->block);
    *ns = fl_clock_now_ns() - start;
    return rc;
}

static int call_write_tracked(struct bench *b, long i, int64_t *ns)
{
    (void)i;
    int64_t start = fl_clock_now_ns();
    int rc = write_block(b->append_fd, b->block);
    *ns = fl_clock_now_ns() - start;
    return rc;
}

static int call_pwrite_tracked(struct bench *b, long i, int64_t *ns)
{
    off_t off = (off_t)(i % OVERWRITE_BLOCKS) * BLOCK_SIZE;

    int64_t start = fl_clock_now_ns();
    ssize_t n = pwrite(b->overwrite_fd, b->block, BLOCK_SIZE, off);
    *ns = fl_clock_now_ns() - start;
    if (n < 0)
        return -errno;
    return n == BLOCK_SIZE ? 0 : -EIO;
}

/* Writes a block to the synced file untimed, then times sync_call on it,
 * so that every sync has one block to write back. */
static int time_sync(struct bench *b, int (*sync_call)(int), int64_t *ns)
{
    int rc = write_block(b->sync_fd, b->block);
    if (rc != 0)
        return rc;

    int64_t start = fl_clock_now_ns();
    rc = sync_call(b->sync_fd) == 0 ? 0 : -errno;
    *ns = fl_clock_now_ns() - start;
    return rc;
}

static int call_fdatasync_tracked(struct bench *b, long i, int64_t *ns)
{
    (void)i;
    return time_sync(b, fdatasync, ns);
}

static int call_fsync_tracked(struct bench *b, long i, int64_t *ns)
{
    (void)i;
    return time_sync(b, fsync, ns);
}

static int call_openat_create(struct bench *b, long i, int64_t *ns)
{
    char name[64];

    snprintf(name, sizeof(name), "created-%ld", i);
    int64_t start = fl_clock_now_ns();
    int fd =
        openat(b->data_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    *ns = fl_clock_now_ns() - start;
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

/* Moves one file between two names, so the target is always free. */
static int call_rename_new(struct bench *b, long i, int64_t *ns)
{
    const char *from = i % 2 == 0 ? "moved-a" : "moved-b";
    const char *to = i % 2 == 0 ? "moved-b" : "moved-a";

    int64_t start = fl_clock_now_ns();
    int rc = renameat(b->data_fd, from, b->data_fd, to) == 0 ? 0 : -errno;
    *ns = fl_clock_now_ns() - start;
    return rc;
}

/*
 * The pattern of atomic replacement: create a new file, rename it over
 * the old one. The old file keeps a second name, so no inode is freed.
 * On ext4 without a journal, inode allocation skips inodes freed in the
 * last 60 s (360 s while their inode table block is dirty), which is
 * recently_deleted() in Linux's fs/ext4/ialloc.c. Thousands of them made
 * each file creation of the next run scan past them, about 15 times
 * slower.
 */
static int call_rename_replace(struct bench *b, long i, int64_t *ns)
{
    char kept[64];

    snprintf(kept, sizeof(kept), "kept-%ld", i);
    if (linkat(b->data_fd, "replaced", b->data_fd, kept, 0) != 0)
        return -errno;
    int fd = openat(b->data_fd, "replacement",
                    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    close(fd);

    int64_t start = fl_clock_now_ns();
    int rc = renameat(b->data_fd, "replacement", b->data_fd, "replaced") == 0
                 ? 0
                 : -errno;
    *ns = fl_clock_now_ns() - start;
    return rc;
}

static const struct row rows[] = {
    {"getppid", call_getppid, false, false},
    {"write-untracked", call_write_untracked, false, false},
    {"write-tracked", call_write_tracked, false, false},
    {"pwrite-tracked", call_pwrite_tracked, false, false},
    {"pwrite-tracked-thread", call_pwrite_tracked, false, true},
    {"fdatasync-tracked", call_fdatasync_tracked, true, false},
    {"fsync-tracked", call_fsync_tracked, true, false},
    {"openat-create", call_openat_create, true, false},
    {"rename-new", call_rename_new, false, false},
    {"rename-replace", call_rename_replace, true, false},
};

/* ---- setup and measurement ----------------------------------------------- */

static int open_in(int dir_fd, const char *dir, const char *name, int flags)
{
    int fd = openat(dir_fd, name, flags | O_CLOEXEC, 0644);

    if (fd < 0)
        bench_die("cannot open %s/%s: %s", dir, name, strerror(errno));
    return fd;
}

/* Opens the files the calls use and gives the files that are overwritten
 * or renamed their first content, synced. */
static void prepare(struct bench *b, const char *data_dir,
                    const char *outside_dir)
{
    char zeros[BLOCK_SIZE * 16] = {0};
    int outside_fd, fd;

    memset(b->block, 'b', sizeof(b->block));
    b->data_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->data_fd < 0)
        bench_die("cannot open --data-dir %s: %s", data_dir, strerror(errno));
    outside_fd = open(outside_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (outside_fd < 0)
        bench_die("cannot open --outside-dir %s: %s", outside_dir,
                  strerror(errno));

    b->untracked_fd = open_in(outside_fd, outside_dir, "untracked",
                              O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    b->append_fd = open_in(b->data_fd, data_dir, "appended",
                           O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    b->sync_fd = open_in(b->data_fd, data_dir, "synced",
                         O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    b->overwrite_fd = open_in(b->data_fd, data_dir, "overwritten",
                              O_WRONLY | O_CREAT | O_TRUNC);
    for (int i = 0; i < OVERWRITE_BLOCKS / 16; i++)
        if (write(b->overwrite_fd, zeros, sizeof(zeros)) != sizeof(zeros))
            bench_die("cannot fill %s/overwritten: %s", data_dir,
                      strerror(errno));
    if (fsync(b->overwrite_fd) != 0)
        bench_die("fsync of %s/overwritten failed: %s", data_dir,
                  strerror(errno));

    fd = open_in(b->data_fd, data_dir, "moved-a", O_WRONLY | O_CREAT);
    close(fd);
    fd = open_in(b->data_fd, data_dir, "replaced", O_WRONLY | O_CREAT);
    close(fd);
    if (fsync(b->data_fd) != 0)
        bench_die("fsync of %s failed: %s", data_dir, strerror(errno));
    close(outside_fd);
}

struct job {
    struct bench *bench;
    const struct row *row;
    long iterations;
    struct bench_hist hist;
    int rc;
};

static void *measure(void *arg)
{
    struct job *job = arg;
    long warmup = job->iterations / 10 > 10 ? job->iterations / 10 : 10;

    for (long i = 0; i < warmup + job->iterations; i++) {
        int64_t ns = 0;

        job->rc = job->row->call(job->bench, i, &ns);
        if (job->rc != 0)
            break;
        if (i >= warmup)
            bench_hist_add(&job->hist, ns);
    }
    return NULL;
}

static long parse_iterations(const char *option, const char *text)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 ||
        v > MAX_ITERATIONS)
        bench_die_usage("invalid %s '%s': expected an integer from 1 to %ld",
                        option, text, MAX_ITERATIONS);
    return v;
}

int main(int argc, char **argv)
{
    enum {
        OPT_DATA_DIR = 256,
        OPT_OUTSIDE_DIR,
        OPT_ITERATIONS,
        OPT_SLOW_ITERATIONS,
    };
    static const struct option long_options[] = {
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"outside-dir", required_argument, NULL, OPT_OUTSIDE_DIR},
        {"iterations", required_argument, NULL, OPT_ITERATIONS},
        {"slow-iterations", required_argument, NULL, OPT_SLOW_ITERATIONS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data_dir = NULL, *outside_dir = NULL;
    long iterations = 10000, slow_iterations = 1000;
    struct bench bench;
    struct job *job;
    int c;

    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_DATA_DIR:
            data_dir = optarg;
            break;
        case OPT_OUTSIDE_DIR:
            outside_dir = optarg;
            break;
        case OPT_ITERATIONS:
            iterations = parse_iterations("--iterations", optarg);
            break;
        case OPT_SLOW_ITERATIONS:
            slow_iterations = parse_iterations("--slow-iterations", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            bench_die_usage("unknown option");
        }
    }
    if (optind < argc)
        bench_die_usage("unexpected argument '%s'", argv[optind]);
    if (data_dir == NULL || outside_dir == NULL)
        bench_die_usage("missing --data-dir or --outside-dir");

    prepare(&bench, data_dir, outside_dir);
    job = malloc(sizeof(*job));
    if (job == NULL)
        bench_die("out of memory");

    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        const struct row *row = &rows[r];

        memset(job, 0, sizeof(*job));
        job->bench = &bench;
        job->row = row;
        job->iterations = row->slow ? slow_iterations : iterations;
        if (row->thread) {
            pthread_t thread;
            int rc = pthread_create(&thread, NULL, measure, job);
            if (rc != 0)
                bench_die("starting a thread failed: %s", strerror(rc));
            pthread_join(thread, NULL);
        } else {
            measure(job);
        }
        if (job->rc != 0)
            bench_die("%s failed: %s", row->name, strerror(-job->rc));

        printf("call=%s iterations=%ld p50_us=%.3f mean_us=%.3f "
               "p99_us=%.3f\n",
               row->name, job->iterations,
               bench_hist_percentile(&job->hist, 50) / 1e3,
               bench_hist_mean(&job->hist) / 1e3,
               bench_hist_percentile(&job->hist, 99) / 1e3);
        fflush(stdout);
    }
    free(job);
    return 0;
}
