/*
 * Tests for the disk-fault supervisor (nemesis/disk.h). They run
 * disk_target, and sqlite3 when it is installed, under the seccomp filter
 * and check the files left behind: pass-through changes nothing, rollbacks
 * restore exactly the durable state, and armed faults reach the program.
 *
 * Runs as root or not: the filter needs only PR_SET_NO_NEW_PRIVS. Each
 * test works in a directory of its own under /tmp and removes it.
 */
#include "disk_fault.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef DISK_TARGET
#error "DISK_TARGET must name the disk_target binary"
#endif

#define SQLITE3 "/usr/bin/sqlite3"

/* A test's directories: ROOT/data is tracked, ROOT/log gets the output.
 * Every ROOT sits in a folder named after this binary's pid, which the
 * parent removes after the test case, because a failed test skips the
 * checked teardown. */
struct fixture {
    char root[96];
    char data[128];
    char log[128];
    struct nem_disk *disk;
};

static struct fixture fx;
static char parent_dir[64];

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void make_parent_dir(void)
{
    snprintf(parent_dir, sizeof(parent_dir), "/tmp/fl-disk-test-%d",
             (int)getpid());
    ck_assert_int_eq(mkdir(parent_dir, 0755), 0);
}

static void remove_parent_dir(void)
{
    nftw(parent_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    char err[256];

    snprintf(fx.root, sizeof(fx.root), "%s/XXXXXX", parent_dir);
    ck_assert_ptr_nonnull(mkdtemp(fx.root));
    snprintf(fx.data, sizeof(fx.data), "%s/data", fx.root);
    snprintf(fx.log, sizeof(fx.log), "%s/log", fx.root);
    ck_assert_int_eq(mkdir(fx.data, 0755), 0);
    int rc = nem_disk_create(fx.data, NULL, &fx.disk, err, sizeof(err));
    ck_assert_msg(rc == 0, "nem_disk_create: %s", err);
}

static void teardown(void)
{
    nem_disk_destroy(fx.disk);
    fx.disk = NULL;
    nftw(fx.root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Starts disk_target in the data directory with the steps given, ending
 * with NULL. */
static void start_target(const char *first, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;

    argv[argc++] = DISK_TARGET;
    argv[argc++] = fx.data;
    va_start(ap, first);
    for (const char *s = first; s != NULL; s = va_arg(ap, const char *))
        argv[argc++] = (char *)s;
    va_end(ap);
    argv[argc] = NULL;
    int rc = nem_disk_start(fx.disk, argv, fx.log);
    ck_assert_msg(rc == 0, "nem_disk_start: %s", nem_disk_error(fx.disk));
}

static int wait_target(void)
{
    int status = -1;
    int rc = nem_disk_wait(fx.disk, 20000, &status);

    ck_assert_msg(rc == 1, "the target did not exit: %d %s", rc,
                  nem_disk_error(fx.disk));
    return status;
}

/* Reads a whole file into a static buffer; returns its length or -1. */
static char file_buf[1 << 20];
static long read_file(const char *dir, const char *name)
{
    char path[256];
    long n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    n = (long)fread(file_buf, 1, sizeof(file_buf) - 1, f);
    fclose(f);
    file_buf[n] = '\0';
    return n;
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fx.data, name);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void assert_file(const char *name, const char *expected)
{
    long n = read_file(fx.data, name);

    ck_assert_msg(n >= 0, "%s is missing", name);
    ck_assert_str_eq(file_buf, expected);
}

static bool exists(const char *name)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", fx.data, name);
    return lstat(path, &st) == 0;
}

static bool log_contains(const char *text)
{
    return read_file(fx.root, "log") >= 0 && strstr(file_buf, text) != NULL;
}

/* Waits until the target printed "ready". */
static void wait_ready(void)
{
    for (int i = 0; i < 2000; i++) {
        if (log_contains("ready\n"))
            return;
        usleep(5000);
    }
    ck_abort_msg("the target never became ready");
}

static bool dir_empty(const char *path)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s)\"", path);
    return system(cmd) == 0;
}

/* ---- pass-through ------------------------------------------------------- */

START_TEST(test_passthrough_matches_unsupervised)
{
    char plain[160], cmd[512];
    struct nem_disk_stats stats;
    /* Every kind of change the supervisor performs or records. */
    const char *steps = "open a write hello pwrite 2 LL writev x y fsync "
                        "open b write bee trunc 1 rename b c open d "
                        "write gone unlink d append e write one "
                        "write two fdatasync dirsync";

    snprintf(plain, sizeof(plain), "%s/plain", fx.root);
    ck_assert_int_eq(mkdir(plain, 0755), 0);
    snprintf(cmd, sizeof(cmd), "%s %s %s >/dev/null", DISK_TARGET, plain,
             steps);
    ck_assert_int_eq(system(cmd), 0);

    start_target("open", "a", "write", "hello", "pwrite", "2", "LL", "writev",
                 "x", "y", "fsync", "open", "b", "write", "bee", "trunc", "1",
                 "rename", "b", "c", "open", "d", "write", "gone", "unlink",
                 "d", "append", "e", "write", "one", "write", "two",
                 "fdatasync", "dirsync", NULL);
    int status = wait_target();
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "target status %d", status);

    snprintf(cmd, sizeof(cmd), "diff -r %s %s", plain, fx.data);
    ck_assert_msg(system(cmd) == 0, "supervised files differ");
    assert_file("a", "heLLoxy");
    assert_file("e", "onetwo");
    ck_assert(!exists("d"));
    nem_disk_get_stats(fx.disk, &stats);
    ck_assert_uint_ge(stats.calls[NEM_DISK_CALL_WRITE], 6);
    ck_assert_uint_eq(stats.calls[NEM_DISK_CALL_FSYNC], 3);
    ck_assert_uint_eq(stats.calls[NEM_DISK_CALL_RENAME], 1);
    ck_assert_uint_eq(stats.calls[NEM_DISK_CALL_UNLINK], 1);
    ck_assert_uint_ge(stats.calls[NEM_DISK_CALL_OPEN], 4);
    ck_assert_uint_eq(stats.tracked_bytes, 5 + 2 + 2 + 3 + 4 + 3 + 3);
}
END_TEST

/* ---- rollbacks ---------------------------------------------------------- */

START_TEST(test_lose_unsynced_keeps_synced_write)
{
    start_target("open", "a", "dirsync", "write", "A", "fsync", "write", "B",
                 "ready", "pause", NULL);
    wait_ready();
    assert_file("a", "AB");
    ck_assert_uint_eq(nem_disk_unsynced_writes(fx.disk), 1);
    ck_assert_int_eq(nem_disk_lose_unsynced(fx.disk), 0);
    ck_assert_int_eq(nem_disk_pid(fx.disk), 0);
    assert_file("a", "A");
    ck_assert_uint_eq(nem_disk_unsynced_writes(fx.disk), 0);
}
END_TEST

START_TEST(test_lose_unsynced_removes_new_file)
{
    start_target("open", "new", "write", "x", "fsync", "ready", "pause", NULL);
    wait_ready();
    ck_assert(exists("new"));
    ck_assert_int_eq(nem_disk_lose_unsynced(fx.disk), 0);
    ck_assert(!exists("new"));
}
END_TEST

START_TEST(test_dirsync_makes_new_file_durable)
{
    start_target("open", "new", "write", "x", "fsync", "dirsync", "ready",
                 "pause", NULL);
    wait_ready();
    ck_assert_int_eq(nem_disk_lose_unsynced(fx.disk), 0);
    assert_file("new", "x");
}
END_TEST

START_TEST(test_lose_unsynced_undoes_rename)
{
    write_file("a", "old");
    write_file("b", "bee");
    start_target("rename", "a", "b", "ready", "pause", NULL);
    wait_ready();
    ck_assert(!exists("a"));
    assert_file("b", "old");
    ck_assert_int_eq(nem_disk_lose_unsynced(fx.disk), 0);
    assert_file("a", "old");
    assert_file("b", "bee");
}
END_TEST

START_TEST(test_lose_unsynced_undoes_unlink)
{
    char stash[160];

    write_file("u", "content");
    start_target("unlink", "u", "ready", "pause", NULL);
    wait_ready();
    ck_assert(!exists("u"));
    ck_assert_int_eq(nem_disk_lose_unsynced(fx.disk), 0);
    assert_file("u", "content");
    snprintf(stash, sizeof(stash), "%s.fl-stash", fx.data);
    ck_assert(dir_empty(stash));
}
END_TEST

START_TEST(test_lose_unsynced_undoes_truncate)
{
    write_file("t", "0123456789");
    start_target("open", "t", "trunc", "3", "pwrite", "5", "X", "ready",
                 "pause", NULL);
    wait_ready();
    ck_assert_int_eq(nem_disk_lose_unsynced(fx.disk), 0);
    assert_file("t", "0123456789");
}
END_TEST

START_TEST(test_torn_seq_keeps_chosen_writes)
{
    const size_t keep[] = {0, 2};
    long n;

    start_target("open", "a", "dirsync", "write", "111", "fsync", "pwrite", "0",
                 "AAA", "pwrite", "3", "BBB", "pwrite", "6", "CCC", "ready",
                 "pause", NULL);
    wait_ready();
    ck_assert_uint_eq(nem_disk_unsynced_writes(fx.disk), 3);
    ck_assert_int_eq(nem_disk_torn_seq(fx.disk, keep, 2), 0);
    n = read_file(fx.data, "a");
    ck_assert_int_eq(n, 9);
    ck_assert_mem_eq(file_buf, "AAA\0\0\0CCC", 9);
}
END_TEST

START_TEST(test_torn_seq_rejects_bad_index)
{
    const size_t keep[] = {1};

    start_target("open", "a", "write", "1", "ready", "pause", NULL);
    wait_ready();
    ck_assert_int_ne(nem_disk_torn_seq(fx.disk, keep, 1), 0);
    ck_assert_ptr_nonnull(strstr(nem_disk_error(fx.disk), "out of range"));
}
END_TEST

/* ---- armed faults ------------------------------------------------------- */

START_TEST(test_torn_write_keeps_prefix)
{
    struct nem_disk_fault fault = {
        .kind = NEM_DISK_TORN_WRITE, .pattern = "f", .nth = 2, .keep_bytes = 4};

    ck_assert_int_eq(nem_disk_arm(fx.disk, &fault), 0);
    start_target("open", "f", "dirsync", "write", "AAAAAAAA", "fsync", "write",
                 "0123456789", "fsync", NULL);
    int status = wait_target();
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_file("f", "AAAAAAAA0123");
}
END_TEST

START_TEST(test_torn_write_keeps_chosen_sectors)
{
    struct nem_disk_fault fault = {.kind = NEM_DISK_TORN_WRITE,
                                   .pattern = "s",
                                   .nth = 2,
                                   .sector_mask = 0x5};
    long n;

    ck_assert_int_eq(nem_disk_arm(fx.disk, &fault), 0);
    start_target("open", "s", "dirsync", "fill", "1536", "x", "fsync", "fill",
                 "1536", "y", NULL);
    int status = wait_target();
    ck_assert(WIFSIGNALED(status));
    n = read_file(fx.data, "s");
    ck_assert_int_eq(n, 3072);
    /* The second fill appends: sectors 3 and 5 of the file are kept. */
    for (long i = 0; i < 1536; i++)
        ck_assert_int_eq(file_buf[i], 'x');
    for (long i = 1536; i < 2048; i++)
        ck_assert_int_eq(file_buf[i], 'y');
    for (long i = 2048; i < 2560; i++)
        ck_assert_int_eq(file_buf[i], '\0');
    for (long i = 2560; i < 3072; i++)
        ck_assert_int_eq(file_buf[i], 'y');
}
END_TEST

START_TEST(test_write_eio_reaches_program)
{
    struct nem_disk_fault fault = {.kind = NEM_DISK_WRITE_EIO,
                                   .pattern = "bad*"};

    ck_assert_int_eq(nem_disk_arm(fx.disk, &fault), 0);
    start_target("open", "good", "write", "ok", "open", "bad1", "write", "lost",
                 NULL);
    int status = wait_target();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    ck_assert(log_contains("write failed: Input/output error"));
    assert_file("good", "ok");
    assert_file("bad1", "");
}
END_TEST

START_TEST(test_write_enospc_hits_nth_only)
{
    struct nem_disk_fault fault = {.kind = NEM_DISK_WRITE_ENOSPC, .nth = 2};

    ck_assert_int_eq(nem_disk_arm(fx.disk, &fault), 0);
    start_target("open", "f", "write", "one", "write", "two", NULL);
    int status = wait_target();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    ck_assert(log_contains("write failed: No space left on device"));
    assert_file("f", "one");
}
END_TEST

START_TEST(test_fsync_eio_fails_sqlite3)
{
    struct nem_disk_fault fault = {.kind = NEM_DISK_FSYNC_EIO};
    char db[192];

    if (access(SQLITE3, X_OK) != 0) {
        fprintf(stderr, "skipped: %s is not installed\n", SQLITE3);
        return;
    }
    snprintf(db, sizeof(db), "%s/db.sqlite", fx.data);
    char *argv[] = {SQLITE3, db, "CREATE TABLE t(x); INSERT INTO t VALUES(1);",
                    NULL};
    ck_assert_int_eq(nem_disk_arm(fx.disk, &fault), 0);
    ck_assert_int_eq(nem_disk_start(fx.disk, argv, fx.log), 0);
    int status = wait_target();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    ck_assert_msg(log_contains("disk I/O error"), "sqlite3 printed: %s",
                  file_buf);
}
END_TEST

START_TEST(test_sqlite3_passthrough_works)
{
    char db[192], cmd[320];

    if (access(SQLITE3, X_OK) != 0) {
        fprintf(stderr, "skipped: %s is not installed\n", SQLITE3);
        return;
    }
    snprintf(db, sizeof(db), "%s/db.sqlite", fx.data);
    char *argv[] = {SQLITE3, db, "CREATE TABLE t(x); INSERT INTO t VALUES(7);",
                    NULL};
    ck_assert_int_eq(nem_disk_start(fx.disk, argv, fx.log), 0);
    int status = wait_target();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snprintf(cmd, sizeof(cmd), "test \"$(%s %s 'SELECT x FROM t')\" = 7",
             SQLITE3, db);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_crash_before_rename_skips_it)
{
    struct nem_disk_fault fault = {.kind = NEM_DISK_CRASH_BEFORE,
                                   .pattern = "a",
                                   .crash_ops = NEM_DISK_OP_RENAME};

    write_file("a", "old");
    ck_assert_int_eq(nem_disk_arm(fx.disk, &fault), 0);
    start_target("rename", "a", "b", NULL);
    int status = wait_target();
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_file("a", "old");
    ck_assert(!exists("b"));
}
END_TEST

START_TEST(test_crash_after_fsync_keeps_synced)
{
    struct nem_disk_fault fault = {.kind = NEM_DISK_CRASH_AFTER,
                                   .pattern = "a",
                                   .nth = 2,
                                   .crash_ops = NEM_DISK_OP_FSYNC,
                                   .lose_unsynced = true};

    ck_assert_int_eq(nem_disk_arm(fx.disk, &fault), 0);
    start_target("open", "a", "dirsync", "write", "X", "fsync", "write", "Y",
                 "open", "b", "write", "unsynced", "open", "a", "fsync",
                 "write", "Z", NULL);
    int status = wait_target();
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_file("a", "XY");
    ck_assert(!exists("b"));
}
END_TEST

/* ---- the program's and the supervisor's lives --------------------------- */

START_TEST(test_supervisor_death_kills_program)
{
    int pipefd[2];
    pid_t helper, target = 0;
    int status;

    /* The target is reparented to this process when the helper dies. */
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    ck_assert_int_eq(pipe(pipefd), 0);
    helper = fork();
    ck_assert_int_ge(helper, 0);
    if (helper == 0) {
        close(pipefd[0]);
        start_target("open", "f", "ready", "pause", NULL);
        wait_ready();
        target = nem_disk_pid(fx.disk);
        if (write(pipefd[1], &target, sizeof(target)) != sizeof(target))
            _exit(1);
        raise(SIGKILL);
    }
    close(pipefd[1]);
    ck_assert_int_eq(read(pipefd[0], &target, sizeof(target)), sizeof(target));
    close(pipefd[0]);
    ck_assert_int_eq(waitpid(helper, &status, 0), helper);
    ck_assert_int_eq(waitpid(target, &status, 0), target);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}
END_TEST

START_TEST(test_signal_during_write_not_duplicated)
{
    const long count = 3000, size = 64;
    pid_t pid;
    long n;
    int status = -1, sent = 0, rc;

    start_target("open", "f", "ready", "bulk", "3000", "64", "fsync", NULL);
    wait_ready();
    pid = nem_disk_pid(fx.disk);
    /* The target is not reaped before nem_disk_wait returns 1, so the pid
     * cannot be reused while it is signalled. */
    while ((rc = nem_disk_wait(fx.disk, 0, &status)) == 0) {
        kill(pid, SIGUSR1);
        sent++;
        usleep(100);
    }
    ck_assert_int_eq(rc, 1);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_gt(sent, 0);
    ck_assert(log_contains("bulk signals="));
    ck_assert(!log_contains("bulk signals=0\n"));
    n = read_file(fx.data, "f");
    ck_assert_int_eq(n, count * size);
    for (long i = 0; i < count * size; i++)
        ck_assert_int_eq(file_buf[i], 'a' + (int)((i / size) % 26));
}
END_TEST

START_TEST(test_start_reports_exec_failure)
{
    char *argv[] = {"/nonexistent/program", NULL};

    ck_assert_int_eq(nem_disk_start(fx.disk, argv, fx.log), -ENOENT);
    ck_assert_ptr_nonnull(strstr(nem_disk_error(fx.disk), "cannot start"));
    ck_assert_int_eq(nem_disk_pid(fx.disk), 0);
}
END_TEST

START_TEST(test_arm_rejects_crash_without_ops)
{
    struct nem_disk_fault fault = {.kind = NEM_DISK_CRASH_BEFORE};

    ck_assert_int_ne(nem_disk_arm(fx.disk, &fault), 0);
}
END_TEST

static Suite *disk_suite(void)
{
    Suite *s = suite_create("nemesis_disk");
    TCase *tc = tcase_create("disk");

    tcase_add_unchecked_fixture(tc, make_parent_dir, remove_parent_dir);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_passthrough_matches_unsupervised);
    tcase_add_test(tc, test_lose_unsynced_keeps_synced_write);
    tcase_add_test(tc, test_lose_unsynced_removes_new_file);
    tcase_add_test(tc, test_dirsync_makes_new_file_durable);
    tcase_add_test(tc, test_lose_unsynced_undoes_rename);
    tcase_add_test(tc, test_lose_unsynced_undoes_unlink);
    tcase_add_test(tc, test_lose_unsynced_undoes_truncate);
    tcase_add_test(tc, test_torn_seq_keeps_chosen_writes);
    tcase_add_test(tc, test_torn_seq_rejects_bad_index);
    tcase_add_test(tc, test_torn_write_keeps_prefix);
    tcase_add_test(tc, test_torn_write_keeps_chosen_sectors);
    tcase_add_test(tc, test_write_eio_reaches_program);
    tcase_add_test(tc, test_write_enospc_hits_nth_only);
    tcase_add_test(tc, test_fsync_eio_fails_sqlite3);
    tcase_add_test(tc, test_sqlite3_passthrough_works);
    tcase_add_test(tc, test_crash_before_rename_skips_it);
    tcase_add_test(tc, test_crash_after_fsync_keeps_synced);
    tcase_add_test(tc, test_supervisor_death_kills_program);
    tcase_add_test(tc, test_signal_during_write_not_duplicated);
    tcase_add_test(tc, test_start_reports_exec_failure);
    tcase_add_test(tc, test_arm_rejects_crash_without_ops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(disk_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
