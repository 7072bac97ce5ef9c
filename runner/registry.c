/*
 * The registry of live runs, and `faultline clean`.
 *
 * Each run writes REGISTRY/RUN.run while it is alive: the runner's pid and
 * its start time (field 22 of /proc/PID/stat, so a recycled pid is not
 * mistaken for the runner), the temporary directory and the store
 * directory. A normal end, a failure or a signal removes the file. A
 * runner killed with SIGKILL leaves it behind. Its nodes die with it
 * (PR_SET_PDEATHSIG), but its namespaces and temporary files stay.
 *
 * `faultline clean` removes those for every run whose runner is gone. It
 * finds the namespaces by the fl-RUN- prefix under /run/netns, also when
 * the registry entry is missing. It kills any process still running with
 * the run's temporary directory on its command line, and removes the
 * directory.
 *
 * REGISTRY is /run/faultline for root, /tmp/faultline-UID otherwise.
 */
#include "cli.h"
#include "run.h"

#include "net.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void registry_dir(char *out, size_t size)
{
    if (geteuid() == 0)
        snprintf(out, size, "/run/faultline");
    else
        snprintf(out, size, "/tmp/faultline-%u", (unsigned)geteuid());
}

/* Field 22 of /proc/PID/stat: the start time in clock ticks; 0 when the
 * process does not exist. */
static unsigned long long start_time(pid_t pid)
{
    char path[64];
    char buf[1024];
    unsigned long long t = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: count fields
     * after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return 0;
    p++;
    for (int field = 3; field <= 22 && p != NULL; field++) {
        p = strchr(p + 1, ' ');
        if (field == 21 && p != NULL)
            t = strtoull(p + 1, NULL, 10);
    }
    return t;
}

int run_registry_add(const char *run_id, const char *tmp_dir,
                     const char *store_dir, bool namespaces, char *err,
                     size_t err_size)
{
    char dir[128];
    char path[PATH_MAX];
    FILE *f;

    registry_dir(dir, sizeof(dir));
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_size, "cannot create the run registry %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s.run", dir, run_id);
    f = fopen(path, "w");
    if (f == NULL) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "pid %d\nstart %llu\nnamespaces %d\ntmp %s\nstore %s\n",
            (int)getpid(), start_time(getpid()), namespaces ? 1 : 0, tmp_dir,
            store_dir);
    if (fclose(f) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void run_registry_remove(const char *run_id)
{
    char dir[128];
    char path[PATH_MAX];

    registry_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s.run", dir, run_id);
    unlink(path);
}

int run_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int run_remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int rc = 0;

    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    while ((e = readdir(d)) != NULL) {
        char child[PATH_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
        if (lstat(child, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = run_remove_tree(child) || rc;
        else if (unlink(child) != 0)
            rc = -errno;
    }
    closedir(d);
    if (rmdir(path) != 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

/* ---- faultline clean --------------------------------------------------- */

struct entry {
    char id[32];
    pid_t pid;
    unsigned long long start;
    char tmp[PATH_MAX];
};

static bool valid_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)id[i]) && !isdigit((unsigned char)id[i]))
            return false;
    return true;
}

static int read_entry(const char *path, struct entry *e)
{
    char line[PATH_MAX + 16];
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return -errno;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "pid ", 4) == 0)
            e->pid = (pid_t)atoi(line + 4);
        else if (strncmp(line, "start ", 6) == 0)
            e->start = strtoull(line + 6, NULL, 10);
        else if (strncmp(line, "tmp ", 4) == 0)
            if (snprintf(e->tmp, sizeof(e->tmp), "%s", line + 4) < 0)
                e->tmp[0] = '\0';
    }
    fclose(f);
    return 0;
}

static bool alive(const struct entry *e)
{
    unsigned long long t = start_time(e->pid);

    return e->pid > 0 && t != 0 && t == e->start;
}

/* Kills processes whose command line mentions the run's temporary
 * directory: nodes that outlived their runner. Returns how many. */
static int kill_leftovers(const char *tmp, bool dry_run)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int killed = 0;
    size_t tlen = strlen(tmp);

    if (d == NULL || tlen == 0)
        return 0;
    while ((de = readdir(d)) != NULL) {
        char path[300];
        char cmd[8192];
        ssize_t n;
        int fd;
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        n = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i + (ssize_t)tlen <= n; i++) {
            if (memcmp(cmd + i, tmp, tlen) == 0 &&
                (cmd[i + (ssize_t)tlen] == '/' ||
                 cmd[i + (ssize_t)tlen] == '\0')) {
                pid_t pid = (pid_t)atoi(de->d_name);
                printf("%s process %d (%s)\n",
                       dry_run ? "would kill" : "killed", (int)pid, cmd);
                if (!dry_run) {
                    kill(pid, SIGCONT);
                    kill(pid, SIGKILL);
                }
                killed++;
                break;
            }
        }
    }
    closedir(d);
    return killed;
}

static const char clean_help[] =
    "Usage: faultline clean [--dry-run]\n"
    "\n"
    "Removes what runs whose runner was killed left behind: their network\n"
    "namespaces (fl-RUN-*), node processes and temporary directories. Runs\n"
    "still alive are left alone.\n";

int run_cmd_clean(int argc, char **argv)
{
    static const struct option options[] = {
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char dir[128];
    char live[64][32];
    size_t n_live = 0;
    bool dry_run = false;
    unsigned removed = 0;
    DIR *d;
    struct dirent *de;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hn", options, NULL)) != -1) {
        if (c == 'h') {
            fputs(clean_help, stdout);
            return 0;
        }
        if (c == 'n')
            dry_run = true;
        else
            return run_option_error("clean", c, argv, options);
    }
    if (optind < argc)
        return run_usage_error("clean", "unexpected argument \"%s\"",
                               argv[optind]);
    registry_dir(dir, sizeof(dir));
    d = opendir(dir);
    while (d != NULL && (de = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct entry e = {0};
        char *dot = strstr(de->d_name, ".run");
        if (dot == NULL || dot[4] != '\0' ||
            (size_t)(dot - de->d_name) >= sizeof(e.id))
            continue;
        memcpy(e.id, de->d_name, (size_t)(dot - de->d_name));
        if (!valid_id(e.id))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (read_entry(path, &e) != 0)
            continue;
        if (alive(&e)) {
            if (n_live < 64)
                snprintf(live[n_live++], sizeof(live[0]), "%s", e.id);
            printf("run %s is alive (runner pid %d); left alone\n", e.id,
                   (int)e.pid);
            continue;
        }
        printf("run %s: its runner (pid %d) is gone\n", e.id, (int)e.pid);
        /* Only a directory this runner made is removed: /tmp/fl-RUN. */
        char expect[64];
        snprintf(expect, sizeof(expect), "/tmp/fl-%s", e.id);
        if (strcmp(e.tmp, expect) == 0) {
            removed += (unsigned)kill_leftovers(e.tmp, dry_run);
            if (access(e.tmp, F_OK) == 0) {
                printf("%s %s\n", dry_run ? "would remove" : "removed", e.tmp);
                if (!dry_run)
                    run_remove_tree(e.tmp);
                removed++;
            }
        }
        removed++; /* the registry entry */
        if (dry_run) {
            printf("would remove %s\n", path);
        } else {
            int k = nem_net_remove_run(e.id);
            if (k > 0)
                printf("removed %d network namespaces of run %s\n", k, e.id);
            removed += k > 0 ? (unsigned)k : 0;
            unlink(path);
        }
    }
    if (d != NULL)
        closedir(d);

    /* Namespaces with no registry entry: a runner killed before it wrote
     * one, or an entry removed by hand. Only root's runs make namespaces,
     * and only root's registry can tell which are alive. */
    d = geteuid() == 0 ? opendir("/run/netns") : NULL;
    while (d != NULL && (de = readdir(d)) != NULL) {
        char id[32];
        const char *name = de->d_name;
        const char *dash;
        bool is_live = false;
        if (strncmp(name, "fl-", 3) != 0)
            continue;
        dash = strchr(name + 3, '-');
        if (dash == NULL || (size_t)(dash - name - 3) >= sizeof(id))
            continue;
        memcpy(id, name + 3, (size_t)(dash - name - 3));
        id[dash - name - 3] = '\0';
        if (!valid_id(id))
            continue;
        for (size_t i = 0; i < n_live; i++)
            is_live = is_live || strcmp(live[i], id) == 0;
        /* A run that registered after the registry was read is alive too. */
        if (!is_live) {
            char path[PATH_MAX];
            struct entry e = {0};
            snprintf(path, sizeof(path), "%s/%s.run", dir, id);
            is_live = read_entry(path, &e) == 0 && alive(&e);
        }
        if (is_live)
            continue;
        printf("%s namespace %s\n", dry_run ? "would remove" : "removing",
               name);
        if (dry_run)
            removed++;
        if (!dry_run) {
            char tmp[64];
            snprintf(tmp, sizeof(tmp), "/tmp/fl-%s", id);
            removed += (unsigned)kill_leftovers(tmp, false);
            int k = nem_net_remove_run(id);
            removed += k > 0 ? (unsigned)k : 0;
            if (access(tmp, F_OK) == 0 && run_remove_tree(tmp) == 0)
                removed++;
            /* The directory listing changed under us; start over. */
            rewinddir(d);
        }
    }
    if (d != NULL)
        closedir(d);
    printf("%s%u item%s\n", dry_run ? "would remove " : "removed ", removed,
           removed == 1 ? "" : "s");
    return 0;
}
