/*
 * `faultline report`: the results database and the reports drawn from it.
 * `faultline report import DIR...` adds run directories to the database,
 * and `faultline report` alone renders index.html over every run in it.
 */
#include "cli.h"
#include "run.h"

#include "error.h"
#include "html.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_DB "store/results.db"

/* Nesting deeper than this below a DIR argument is not searched for runs;
 * a store is STORE/CAMPAIGN/RUN, three levels. */
#define MAX_WALK_DEPTH 16

static const char help[] =
    "Usage: faultline report [--db PATH] [--out DIR]\n"
    "       faultline report import [--db PATH] DIR...\n"
    "\n"
    "The results database (default " DEFAULT_DB ") has one row per run\n"
    "with its faults, anomalies and metrics. `faultline run` adds each run\n"
    "to STORE/results.db when it ends.\n"
    "\n"
    "faultline report writes DIR/index.html, a page listing every run in\n"
    "the database, newest first, with filters by campaign and verdict. It\n"
    "only reads the database, which must exist.\n"
    "\n"
    "faultline report import adds runs to the database. Each DIR is a run\n"
    "directory (one holding results.json) or any directory above run\n"
    "directories, such as a store or one campaign's folder; it is searched\n"
    "recursively, and directories without results.json are skipped. A run\n"
    "imported before is replaced, matched by its absolute path, and runs\n"
    "whose directory is gone are removed. Each imported run's report.html\n"
    "is rendered again, and so is index.html in the folder of --db.\n"
    "\n"
    "Options:\n"
    "  --db PATH    the results database (default " DEFAULT_DB "); import\n"
    "               creates it and its folders when missing\n"
    "  --out DIR    where to write index.html, created when missing\n"
    "               (default: the folder of --db)\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit codes: 0 success, 2 a usage error, a database that cannot be\n"
    "opened, or a run that could not be imported (the others are imported\n"
    "and each failure is printed with its reason).\n";

static const struct option options[] = {
    {"db", required_argument, NULL, 'd'},
    {"out", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Parses --db and --out from argv; positional arguments start at optind.
 * Returns 0, 1 after printing the help, or RUN_EXIT_USAGE. */
static int parse_options(const char *cmd, int argc, char **argv,
                         const char **db, const char **out, bool allow_out)
{
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            *db = optarg;
            break;
        case 'o':
            if (!allow_out)
                return run_usage_error(cmd, "--out applies to 'faultline "
                                            "report' without import");
            *out = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return 1;
        default:
            return run_option_error(cmd, c, argv, options);
        }
    }
    return 0;
}

/* Creates the folder a database path lies in. */
static int make_db_dir(const char *cmd, const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    int rc;

    if (slash == NULL || slash == path)
        return 0;
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    rc = run_mkdirs(dir);
    if (rc != 0)
        fprintf(stderr, "faultline %s: cannot create %s: %s\n", cmd, dir,
                strerror(-rc));
    return rc;
}

/* Opens an existing database for reading only, so a store on a read-only
 * mount can still be rendered and a mistyped --db creates nothing. */
static sqlite3 *open_db_readonly(const char *cmd, const char *path)
{
    struct stat sb;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int version = -1;

    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr,
                "faultline %s: no results database at %s; faultline run "
                "writes one into its store, and 'faultline report import' "
                "builds one from run directories\n",
                cmd, path);
        return NULL;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version != REP_SCHEMA_VERSION) {
        fprintf(stderr, "faultline %s: %s: %s\n", cmd, path,
                version < 0 ? "not a results database (cannot read its "
                              "schema version)"
                : version < REP_SCHEMA_VERSION
                    ? "an older schema; 'faultline report import' "
                      "migrates it"
                    : "a newer schema than this faultline supports");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 30000);
    return db;
}

static sqlite3 *open_db(const char *cmd, const char *path)
{
    sqlite3 *db;
    char err[PATH_MAX + 256];

    if (rep_db_open(&db, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "faultline %s: cannot open the results database: %s\n",
                cmd, err);
        return NULL;
    }
    return db;
}

/* ---- import ------------------------------------------------------------ */

struct import_counts {
    size_t imported;
    size_t failed;
    size_t skipped; /* directories searched without results.json */
};

static bool has_results(const char *dir)
{
    char path[PATH_MAX];
    struct stat sb;

    if (snprintf(path, sizeof(path), "%s/results.json", dir) >=
        (int)sizeof(path))
        return false;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void import_one(sqlite3 *db, const char *dir, struct import_counts *n)
{
    char err[PATH_MAX + 512];

    if (rep_db_import(db, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "faultline report import: %s\n", err);
        n->failed++;
        return;
    }
    n->imported++;
    /* The page is rebuilt too, so a newer faultline renders old runs. */
    if (rep_render_run(dir, err, sizeof(err)) != 0)
        fprintf(stderr, "faultline report import: note: %s\n", err);
}

static int only_dirs(const struct dirent *e)
{
    return strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
}

/*
 * Imports dir when it contains results.json, and otherwise searches its
 * subdirectories, in name order. Symbolic links are not followed below
 * the DIR argument itself, so a link cannot make the search loop.
 */
static void import_tree(sqlite3 *db, const char *dir, int depth,
                        struct import_counts *n)
{
    struct dirent **entries;
    int count;

    if (has_results(dir)) {
        import_one(db, dir, n);
        return;
    }
    n->skipped++;
    if (depth >= MAX_WALK_DEPTH)
        return;
    count = scandir(dir, &entries, only_dirs, alphasort);
    if (count < 0) {
        fprintf(stderr, "faultline report import: %s: cannot list: %s\n", dir,
                strerror(errno));
        n->failed++;
        return;
    }
    for (int i = 0; i < count; i++) {
        char path[PATH_MAX];
        struct stat sb;

        if (snprintf(path, sizeof(path), "%s/%s", dir, entries[i]->d_name) <
                (int)sizeof(path) &&
            lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            import_tree(db, path, depth + 1, n);
        free(entries[i]);
    }
    free(entries);
}

static int cmd_import(int argc, char **argv)
{
    const char *cmd = "report import";
    const char *db_path = DEFAULT_DB;
    struct import_counts n = {0};
    sqlite3 *db;
    int rc = parse_options(cmd, argc, argv, &db_path, NULL, false);

    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (optind >= argc)
        return run_usage_error(cmd, "no directories given; name run "
                                    "directories or a store such as store/");
    if (make_db_dir(cmd, db_path) != 0)
        return RUN_EXIT_USAGE;
    db = open_db(cmd, db_path);
    if (db == NULL)
        return RUN_EXIT_USAGE;
    for (int i = optind; i < argc; i++) {
        struct stat sb;

        int found = stat(argv[i], &sb) == 0 ? 0 : errno;
        if (found != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "faultline %s: %s: %s\n", cmd, argv[i],
                    found == 0 ? "not a directory" : strerror(found));
            n.failed++;
            continue;
        }
        import_tree(db, argv[i], 0, &n);
    }
    size_t gone = 0;
    char prune_err[256];
    if (rep_db_forget_missing(db, &gone, prune_err, sizeof(prune_err)) != 0)
        fprintf(stderr, "faultline %s: %s\n", cmd, prune_err);
    if (n.imported > 0 || gone > 0) {
        char dir[PATH_MAX];
        char err[PATH_MAX + 512];
        const char *slash = strrchr(db_path, '/');
        if (slash == NULL)
            snprintf(dir, sizeof(dir), ".");
        else if (snprintf(dir, sizeof(dir), "%.*s", (int)(slash - db_path),
                          db_path) < 0 ||
                 dir[0] == '\0')
            snprintf(dir, sizeof(dir), "/");
        if (rep_render_index(db, dir, err, sizeof(err)) != 0)
            fprintf(stderr, "faultline %s: note: no index.html: %s\n", cmd,
                    err);
    }
    rep_db_close(db);

    printf("imported %zu run%s into %s", n.imported, n.imported == 1 ? "" : "s",
           db_path);
    if (gone > 0)
        printf("; removed %zu run%s whose directory is gone", gone,
               gone == 1 ? "" : "s");
    printf("\n");
    if (n.imported == 0 && n.failed == 0)
        fprintf(stderr,
                "faultline %s: no run directory (one holding "
                "results.json) found under the folders given\n",
                cmd);
    if (n.failed > 0) {
        fprintf(stderr, "faultline %s: %zu failed; see the reasons above\n",
                cmd, n.failed);
        return RUN_EXIT_USAGE;
    }
    return 0;
}

/* ---- render ------------------------------------------------------------ */

/*
 * `faultline report [--db PATH] [--out DIR]`: writes DIR/index.html from
 * the database through rep_render_index (reports/html.c), which owns the
 * page. Options for the page, such as filters, are added here and passed
 * on.
 */
static int cmd_render(int argc, char **argv)
{
    const char *cmd = "report";
    const char *db_path = DEFAULT_DB;
    const char *out_dir = NULL;
    char db_dir[PATH_MAX];
    char err[PATH_MAX + 512];
    sqlite3 *db;
    int rc = parse_options(cmd, argc, argv, &db_path, &out_dir, true);

    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (optind < argc)
        return run_usage_error(cmd,
                               "unexpected argument \"%s\"; did you "
                               "mean 'faultline report import'?",
                               argv[optind]);
    if (out_dir == NULL) {
        const char *slash = strrchr(db_path, '/');
        size_t len = slash != NULL ? (size_t)(slash - db_path) : 0;

        if (slash == NULL)
            snprintf(db_dir, sizeof(db_dir), ".");
        else if (len == 0)
            snprintf(db_dir, sizeof(db_dir), "/");
        else
            snprintf(db_dir, sizeof(db_dir), "%.*s", (int)len, db_path);
        out_dir = db_dir;
    }
    db = open_db_readonly(cmd, db_path);
    if (db == NULL)
        return RUN_EXIT_USAGE;
    rc = run_mkdirs(out_dir);
    if (rc != 0) {
        fprintf(stderr, "faultline %s: cannot create %s: %s\n", cmd, out_dir,
                strerror(-rc));
        sqlite3_close(db);
        return RUN_EXIT_USAGE;
    }
    rc = rep_render_index(db, out_dir, err, sizeof(err));
    sqlite3_close(db);
    if (rc != 0) {
        fprintf(stderr, "faultline %s: %s\n", cmd, err);
        return RUN_EXIT_USAGE;
    }
    printf("wrote %s/index.html\n", out_dir);
    return 0;
}

int run_cmd_report(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "import") == 0)
        return cmd_import(argc - 1, argv + 1);
    return cmd_render(argc, argv);
}
