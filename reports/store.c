/*
 * The results database: opening and migrating STORE/results.db, and
 * importing a finished run directory (results.json, campaign.json and
 * nemesis.jsonl) into the runs, faults, anomalies and metrics tables.
 * Every value reaches SQLite through a bound parameter.
 */
#include "store.h"

#include "arena.h"
#include "buf.h"
#include "error.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a connection waits for another process's write lock. An import
 * holds the lock only while it writes one run's rows, so this runs out
 * only when a writer is stuck. */
#define BUSY_TIMEOUT_MS 30000

/* results.json and campaign.json larger than this are rejected rather
 * than read into memory. results.json grows with the linearizability
 * prefix it reports (70 KB for a 12 s raft-stale-read run). */
#define MAX_JSON_FILE (256u << 20)

/* ---- errors -------------------------------------------------------------- */

/* Maps a SQLite result code to the project's error range. */
static int sqlite_to_error(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_IOERR:
        return -EIO;
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return -EACCES;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return FL_ECORRUPT;
    default:
        return FL_EINTERNAL;
    }
}

/* Formats "what: SQLite's message" into err and returns the mapped error. */
static int db_error(sqlite3 *db, int rc, const char *what, char *err,
                    size_t err_size)
{
    /* rc may come from this file (SQLITE_NOMEM for a full buffer), and then
     * the connection's message is about an older call. */
    const char *msg = db != NULL && sqlite3_extended_errcode(db) == rc
                          ? sqlite3_errmsg(db)
                          : sqlite3_errstr(rc);

    return fl_errorf(err, err_size, sqlite_to_error(rc), "%s: %s", what, msg);
}

/* Runs SQL text without parameters: schema statements and transaction
 * control. */
static int exec_sql(sqlite3 *db, const char *sql, const char *what, char *err,
                    size_t err_size)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return db_error(db, rc, what, err, err_size);
    return 0;
}

/* ---- schema and migrations ----------------------------------------------- */

/*
 * Migration steps: migrations[N] takes a database from user_version N to
 * N + 1. A later schema version appends a step here and raises
 * REP_SCHEMA_VERSION. Steps already released must not change, because
 * existing databases were built by them.
 */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema. */
    "CREATE TABLE runs("
    "  id INTEGER PRIMARY KEY,"
    "  run_id TEXT,"
    "  campaign TEXT,"
    "  seed INTEGER,"
    "  system TEXT,"
    "  nodes INTEGER,"
    "  network TEXT,"
    "  started TEXT,"
    "  duration_s REAL,"
    "  verdict TEXT,"
    "  expected TEXT,"
    "  exit_code INTEGER,"
    "  repro TEXT,"
    "  store_path TEXT UNIQUE NOT NULL);"
    "CREATE TABLE faults("
    "  run INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
    "  fault_id INTEGER,"
    "  kind TEXT,"
    "  targets TEXT,"
    "  start_s REAL,"
    "  stop_s REAL,"
    "  detail TEXT);"
    "CREATE TABLE anomalies("
    "  run INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
    "  checker TEXT,"
    "  kind TEXT,"
    "  detail TEXT,"
    "  ops TEXT);"
    "CREATE TABLE metrics("
    "  run INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
    "  name TEXT,"
    "  value REAL,"
    "  unit TEXT);"
    /* The cascading deletes of a re-import look rows up by run. */
    "CREATE INDEX faults_run ON faults(run);"
    "CREATE INDEX anomalies_run ON anomalies(run);"
    "CREATE INDEX metrics_run ON metrics(run);"
    "CREATE INDEX runs_campaign ON runs(campaign, started);",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == REP_SCHEMA_VERSION,
               "one migration step per schema version");

static int read_user_version(sqlite3 *db, int *version, const char *path,
                             char *err, size_t err_size)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

    if (rc != SQLITE_OK)
        return db_error(db, rc, path, err, err_size);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return db_error(db, rc, path, err, err_size);
    return 0;
}

static int reject_newer(int version, const char *path, char *err,
                        size_t err_size)
{
    return fl_input_error(err, err_size,
                          "%s: schema version %d is newer than this "
                          "faultline supports (%d); use a newer faultline "
                          "or another --db",
                          path, version, REP_SCHEMA_VERSION);
}

/*
 * Brings the schema to REP_SCHEMA_VERSION in one IMMEDIATE transaction.
 * The version is read again under the write lock, because another process
 * may have migrated the file since the first look.
 */
static int migrate(sqlite3 *db, const char *path, char *err, size_t err_size)
{
    char sql[64];
    int version;
    int rc;

    rc = exec_sql(db, "BEGIN IMMEDIATE", path, err, err_size);
    if (rc != 0)
        return rc;
    rc = read_user_version(db, &version, path, err, err_size);
    if (rc != 0)
        goto rollback;
    if (version > REP_SCHEMA_VERSION) {
        rc = reject_newer(version, path, err, err_size);
        goto rollback;
    }
    for (int v = version; v < REP_SCHEMA_VERSION; v++) {
        rc = exec_sql(db, migrations[v], path, err, err_size);
        if (rc != 0)
            goto rollback;
    }
    /* PRAGMA takes no bound parameters; the value is our own constant. */
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", REP_SCHEMA_VERSION);
    rc = exec_sql(db, sql, path, err, err_size);
    if (rc != 0)
        goto rollback;
    return exec_sql(db, "COMMIT", path, err, err_size);

rollback:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int rep_db_open(sqlite3 **out, const char *path, char *err, size_t err_size)
{
    sqlite3 *db = NULL;
    int version;
    int rc;

    *out = NULL;
    rc = sqlite3_open_v2(
        path, &db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = db_error(db, rc, path, err, err_size);
        goto close;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    /* WAL lets readers, such as the HTML report, run during an import. */
    rc = exec_sql(db, "PRAGMA journal_mode=WAL", path, err, err_size);
    if (rc != 0)
        goto close;
    rc = exec_sql(db, "PRAGMA foreign_keys=ON", path, err, err_size);
    if (rc != 0)
        goto close;

    rc = read_user_version(db, &version, path, err, err_size);
    if (rc != 0)
        goto close;
    if (version > REP_SCHEMA_VERSION) {
        rc = reject_newer(version, path, err, err_size);
        goto close;
    }
    if (version < REP_SCHEMA_VERSION) {
        rc = migrate(db, path, err, err_size);
        if (rc != 0)
            goto close;
    }
    *out = db;
    return 0;

close:
    sqlite3_close(db);
    return rc;
}

void rep_db_close(sqlite3 *db)
{
    sqlite3_close(db);
}

/* ---- reading the run's files --------------------------------------------- */

/*
 * Reads path whole into a malloc'd buffer. Returns 0, -ENOENT when the
 * file does not exist, -EFBIG above MAX_JSON_FILE, or another -errno.
 */
static int read_whole(const char *path, char **text, size_t *len)
{
    struct stat sb;
    char *data;
    size_t used = 0;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    if (fstat(fd, &sb) != 0) {
        rc = -errno;
        goto close;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = -EISDIR;
        goto close;
    }
    if ((uint64_t)sb.st_size > MAX_JSON_FILE) {
        rc = -EFBIG;
        goto close;
    }
    data = malloc((size_t)sb.st_size + 1);
    if (data == NULL) {
        rc = -ENOMEM;
        goto close;
    }
    while (used < (size_t)sb.st_size) {
        ssize_t n = read(fd, data + used, (size_t)sb.st_size - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            free(data);
            goto close;
        }
        if (n == 0)
            break; /* the file shrank while we read it */
        used += (size_t)n;
    }
    data[used] = '\0';
    *text = data;
    *len = used;
close:
    close(fd);
    return rc;
}

/*
 * Parses the JSON object in path into arena. Returns 0, -ENOENT when the
 * file is missing (err not set, so the caller decides whether that is an
 * error), FL_EINPUT naming the file when it is not a JSON object, or
 * another negative error.
 */
static int read_json_object(struct fl_arena *arena, const char *path,
                            struct fl_json *out, char *err, size_t err_size)
{
    char *text = NULL;
    char *copy;
    size_t len = 0;
    const char *why;
    size_t where;
    int rc = read_whole(path, &text, &len);

    if (rc == -ENOENT)
        return rc;
    if (rc != 0)
        return fl_errorf(err, err_size, rc, "%s: cannot read: %s", path,
                         fl_strerror(rc));
    /* Parsed strings without escapes point into the text, so the text
     * lives as long as the arena. */
    copy = fl_arena_strndup(arena, text, len);
    free(text);
    if (copy == NULL)
        return fl_errorf(err, err_size, arena->error, "%s: %s", path,
                         fl_strerror(arena->error));
    rc = fl_json_parse(arena, copy, len, out, &why, &where);
    if (rc == FL_EINPUT)
        return fl_input_error(err, err_size, "%s: invalid JSON at byte %zu: %s",
                              path, where, why);
    if (rc != 0)
        return fl_errorf(err, err_size, rc, "%s: %s", path, fl_strerror(rc));
    if (out->kind != FL_JSON_OBJECT)
        return fl_input_error(err, err_size,
                              "%s: expected a JSON object, got %s", path,
                              fl_json_kind_name(out->kind));
    return 0;
}

/* One fault of nemesis.jsonl: its start line and its stop line, either of
 * which may be missing when the run was cut short. */
struct fault {
    int64_t id;
    const struct fl_json *start;
    const struct fl_json *stop;
};

struct fault_list {
    struct fault *items;
    size_t count;
    size_t cap;
};

static struct fault *find_fault(struct fault_list *list, int64_t id)
{
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].id == id)
            return &list->items[i];
    }
    return NULL;
}

/* Checks one nemesis.jsonl line and files it under its fault id. */
static int add_fault_line(struct fault_list *list, const struct fl_json *line,
                          const char *path, uint64_t line_no, char *err,
                          size_t err_size)
{
    const struct fl_json *id = fl_json_get(line, "id");
    const struct fl_json *action = fl_json_get(line, "action");
    const struct fl_json *time = fl_json_get(line, "time");
    struct fault *f;
    bool start;

    if (line->kind != FL_JSON_OBJECT)
        return fl_input_error(err, err_size,
                              "%s:%" PRIu64 ": expected an "
                              "object",
                              path, line_no);
    if (id == NULL || id->kind != FL_JSON_INT)
        return fl_input_error(err, err_size,
                              "%s:%" PRIu64 ": missing "
                              "integer \"id\"",
                              path, line_no);
    if (time == NULL || time->kind != FL_JSON_INT)
        return fl_input_error(err, err_size,
                              "%s:%" PRIu64 ": missing "
                              "integer \"time\" (nanoseconds)",
                              path, line_no);
    if (action != NULL && action->kind == FL_JSON_STRING &&
        fl_str_eq(action->u.s, "start"))
        start = true;
    else if (action != NULL && action->kind == FL_JSON_STRING &&
             fl_str_eq(action->u.s, "stop"))
        start = false;
    else
        return fl_input_error(err, err_size,
                              "%s:%" PRIu64 ": \"action\" "
                              "must be \"start\" or \"stop\"",
                              path, line_no);

    f = find_fault(list, id->u.i);
    if (f == NULL) {
        int rc = fl_vec_reserve((void **)&list->items, &list->cap,
                                list->count + 1, sizeof(list->items[0]), NULL);
        if (rc != 0)
            return fl_errorf(err, err_size, rc, "%s: %s", path,
                             fl_strerror(rc));
        f = &list->items[list->count++];
        *f = (struct fault){.id = id->u.i};
    }
    if (start ? f->start != NULL : f->stop != NULL)
        return fl_input_error(
            err, err_size, "%s:%" PRIu64 ": fault %" PRId64 " %s twice", path,
            line_no, id->u.i, start ? "starts" : "stops");
    if (start)
        f->start = line;
    else
        f->stop = line;
    return 0;
}

/* Reads nemesis.jsonl, if the run has one, into faults. */
static int read_faults(struct fl_arena *arena, const char *path,
                       struct fault_list *faults, char *err, size_t err_size)
{
    char *line = NULL;
    size_t line_cap = 0;
    uint64_t line_no = 0;
    ssize_t len;
    int rc = 0;
    FILE *in = fopen(path, "re");

    if (in == NULL && errno == ENOENT)
        return 0; /* a run cut short before its first fault */
    if (in == NULL) {
        rc = -errno;
        return fl_errorf(err, err_size, rc, "%s: cannot open: %s", path,
                         fl_strerror(rc));
    }
    while (rc == 0 && (len = getline(&line, &line_cap, in)) >= 0) {
        struct fl_json *object;
        char *text;
        const char *why;
        size_t where;

        line_no++;
        if (len == 0 || (len == 1 && line[0] == '\n'))
            continue;
        /* The parsed line points into its text, which getline reuses. */
        text = fl_arena_strndup(arena, line, (size_t)len);
        object = text != NULL ? fl_arena_alloc(arena, sizeof(*object)) : NULL;
        if (object == NULL) {
            rc = fl_errorf(err, err_size, arena->error, "%s: %s", path,
                           fl_strerror(arena->error));
            break;
        }
        rc = fl_json_parse(arena, text, (size_t)len, object, &why, &where);
        if (rc == FL_EINPUT)
            rc = fl_input_error(err, err_size,
                                "%s:%" PRIu64 ": invalid JSON at byte %zu: %s",
                                path, line_no, where, why);
        else if (rc != 0)
            rc = fl_errorf(err, err_size, rc, "%s: %s", path, fl_strerror(rc));
        else
            rc = add_fault_line(faults, object, path, line_no, err, err_size);
    }
    if (rc == 0 && ferror(in)) {
        rc = -EIO;
        fl_errorf(err, err_size, rc, "%s: read failed", path);
    }
    free(line);
    fclose(in);
    return rc;
}

/* ---- values for the rows ------------------------------------------------- */

/* The member key of object as a string, or NULL when absent or not one. */
static const struct fl_str *get_string(const struct fl_json *object,
                                       const char *key)
{
    const struct fl_json *v = object ? fl_json_get(object, key) : NULL;

    return v != NULL && v->kind == FL_JSON_STRING ? &v->u.s : NULL;
}

static const struct fl_json *get_int(const struct fl_json *object,
                                     const char *key)
{
    const struct fl_json *v = object ? fl_json_get(object, key) : NULL;

    return v != NULL && v->kind == FL_JSON_INT ? v : NULL;
}

static bool is_number(const struct fl_json *v)
{
    return v != NULL && (v->kind == FL_JSON_INT || v->kind == FL_JSON_DOUBLE);
}

static double number_value(const struct fl_json *v)
{
    return v->kind == FL_JSON_INT ? (double)v->u.i : v->u.d;
}

/* Binds s as text, or NULL when s is NULL. Strings are copied by SQLite. */
static int bind_str(sqlite3_stmt *st, int col, const struct fl_str *s)
{
    if (s == NULL || s->ptr == NULL)
        return sqlite3_bind_null(st, col);
    return sqlite3_bind_text64(st, col, s->ptr, s->len, SQLITE_TRANSIENT,
                               SQLITE_UTF8);
}

/* Binds the compact JSON text of v, or NULL when v is NULL. */
static int bind_json(sqlite3_stmt *st, int col, const struct fl_json *v,
                     struct fl_buf *scratch)
{
    if (v == NULL)
        return sqlite3_bind_null(st, col);
    fl_buf_clear(scratch);
    fl_json_write(scratch, v);
    if (scratch->failed)
        return SQLITE_NOMEM;
    return sqlite3_bind_text64(st, col, scratch->data, scratch->len,
                               SQLITE_TRANSIENT, SQLITE_UTF8);
}

/* Binds a nanosecond time as seconds, or NULL when the line or its time is
 * missing. */
static int bind_seconds(sqlite3_stmt *st, int col, const struct fl_json *line)
{
    const struct fl_json *t = get_int(line, "time");

    if (t == NULL)
        return sqlite3_bind_null(st, col);
    return sqlite3_bind_double(st, col, (double)t->u.i / 1e9);
}

/* Runs a bound statement that returns no rows and resets it for the next
 * one. */
static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- anomaly operations -------------------------------------------------- */

struct line_list {
    int64_t *items;
    size_t count;
    size_t cap;
};

static int add_line(struct line_list *lines, const struct fl_json *op,
                    const char *key)
{
    const struct fl_json *v = get_int(op, key);

    if (v == NULL || v->u.i <= 0)
        return 0;
    if (fl_vec_reserve((void **)&lines->items, &lines->cap, lines->count + 1,
                       sizeof(lines->items[0]), NULL) != 0)
        return SQLITE_NOMEM;
    lines->items[lines->count++] = v->u.i;
    return 0;
}

/* Adds the history lines of one operation as the linearizability checker
 * writes it: invoke_line and, once it completed, complete_line. */
static int add_op(struct line_list *lines, const struct fl_json *op)
{
    int rc;

    if (op == NULL || op->kind != FL_JSON_OBJECT)
        return 0;
    rc = add_line(lines, op, "invoke_line");
    if (rc == 0)
        rc = add_line(lines, op, "complete_line");
    return rc;
}

static int add_op_array(struct line_list *lines, const struct fl_json *ops)
{
    if (ops == NULL || ops->kind != FL_JSON_ARRAY)
        return 0;
    for (size_t i = 0; i < ops->u.array.count; i++) {
        int rc = add_op(lines, &ops->u.array.items[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Adds the operations of one per-key linearizability finding: the op that
 * could not be placed and the ops concurrent with it. The prefix placed
 * before it is left out: it can be most of the history, and the run's
 * results.json keeps it. */
static int add_finding(struct line_list *lines, const struct fl_json *finding)
{
    int rc;

    if (finding == NULL || finding->kind != FL_JSON_OBJECT)
        return 0;
    rc = add_op(lines, fl_json_get(finding, "op"));
    if (rc == 0)
        rc = add_op_array(lines, fl_json_get(finding, "concurrent"));
    return rc;
}

static int compare_lines(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/*
 * Writes into out the JSON array of history line numbers an anomaly's
 * detail names, sorted and without repeats. A linearizability detail is
 * the checker's report, whose "anomalies" list one finding per key; other
 * checkers name no history lines, which gives [].
 */
static int anomaly_ops(const struct fl_json *detail, struct fl_buf *out)
{
    struct line_list lines = {0};
    const struct fl_json *findings;
    size_t unique = 0;
    int rc;

    rc = add_finding(&lines, detail);
    findings = detail != NULL && detail->kind == FL_JSON_OBJECT
                   ? fl_json_get(detail, "anomalies")
                   : NULL;
    if (rc == 0 && findings != NULL && findings->kind == FL_JSON_ARRAY) {
        for (size_t i = 0; i < findings->u.array.count && rc == 0; i++)
            rc = add_finding(&lines, &findings->u.array.items[i]);
    }
    if (rc == 0 && lines.count > 0) {
        qsort(lines.items, lines.count, sizeof(lines.items[0]), compare_lines);
        for (size_t i = 0; i < lines.count; i++) {
            if (i == 0 || lines.items[i] != lines.items[unique - 1])
                lines.items[unique++] = lines.items[i];
        }
    }

    fl_buf_clear(out);
    fl_buf_addc(out, '[');
    for (size_t i = 0; i < unique; i++)
        fl_buf_printf(out, "%s%" PRId64, i ? "," : "", lines.items[i]);
    fl_buf_addc(out, ']');
    fl_vec_free((void **)&lines.items, &lines.cap, sizeof(lines.items[0]),
                NULL);
    if (rc == 0 && out->failed)
        rc = SQLITE_NOMEM;
    return rc;
}

/* ---- metric units -------------------------------------------------------- */

/*
 * The unit of a metric from the last part of its name, as results.json
 * names them: operation counts are "ops", rates ("ok_per_s...") are
 * "ops/s", durations and times ("..._s", "seconds_...") are "s", and other
 * counts (faults, keys) have the unit "".
 */
static const char *metric_unit(const char *name)
{
    static const char *const op_counts[] = {
        "invocations", "ok", "fail", "info", "never_completed", "final_reads",
    };
    const char *leaf = strrchr(name, '.');
    size_t len;

    leaf = leaf != NULL ? leaf + 1 : name;
    len = strlen(leaf);
    for (size_t i = 0; i < sizeof(op_counts) / sizeof(op_counts[0]); i++) {
        if (strcmp(leaf, op_counts[i]) == 0)
            return "ops";
    }
    if (strstr(leaf, "per_s") != NULL)
        return "ops/s";
    if ((len > 2 && strcmp(leaf + len - 2, "_s") == 0) ||
        strncmp(leaf, "seconds", 7) == 0)
        return "s";
    return "";
}

/* ---- the import ---------------------------------------------------------- */

/* Everything one import reads, and the statements it writes with. */
struct import {
    sqlite3 *db;
    const char *dir; /* the run directory's absolute path */
    struct fl_json results;
    struct fl_json campaign; /* FL_JSON_NULL when campaign.json is missing */
    struct fault_list faults;
    struct fl_buf scratch;
    struct fl_buf name;
    sqlite3_int64 run;
    char *err;
    size_t err_size;
};

static int insert_run(struct import *im)
{
    static const char sql[] =
        "INSERT INTO runs(run_id, campaign, seed, system, nodes, network,"
        " started, duration_s, verdict, expected, exit_code, repro,"
        " store_path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
        " ?12, ?13)";
    const struct fl_json *r = &im->results;
    const struct fl_json *c =
        im->campaign.kind == FL_JSON_OBJECT ? &im->campaign : NULL;
    const struct fl_str *campaign = get_string(r, "campaign");
    const struct fl_json *seed = get_int(r, "seed");
    const struct fl_str *system = get_string(r, "system");
    const struct fl_json *nodes = get_int(r, "nodes");
    const struct fl_str *expected = get_string(r, "expected");
    const struct fl_json *elapsed = fl_json_get(r, "elapsed_s");
    const struct fl_json *exit_code = get_int(r, "exit_code");
    struct fl_str path = fl_str_of(im->dir);
    sqlite3_stmt *st;
    int rc;

    /* Results written before a field existed: campaign.json has it. */
    if (campaign == NULL)
        campaign = get_string(c, "name");
    if (seed == NULL)
        seed = get_int(c, "seed");
    if (system == NULL)
        system = get_string(c, "system");
    if (nodes == NULL)
        nodes = get_int(c, "nodes");
    if (expected == NULL)
        expected = get_string(c, "expect");

    rc = sqlite3_prepare_v2(im->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    bind_str(st, 1, get_string(r, "run_id"));
    bind_str(st, 2, campaign);
    if (seed != NULL)
        sqlite3_bind_int64(st, 3, seed->u.i);
    bind_str(st, 4, system);
    if (nodes != NULL)
        sqlite3_bind_int64(st, 5, nodes->u.i);
    bind_str(st, 6, get_string(r, "network"));
    bind_str(st, 7, get_string(r, "started"));
    if (is_number(elapsed))
        sqlite3_bind_double(st, 8, number_value(elapsed));
    bind_str(st, 9, get_string(r, "verdict"));
    bind_str(st, 10, expected);
    if (exit_code != NULL)
        sqlite3_bind_int64(st, 11, exit_code->u.i);
    bind_str(st, 12, get_string(r, "repro"));
    bind_str(st, 13, &path);
    rc = step_reset(st);
    sqlite3_finalize(st);
    im->run = sqlite3_last_insert_rowid(im->db);
    return rc;
}

static int insert_faults(struct import *im)
{
    static const char sql[] =
        "INSERT INTO faults(run, fault_id, kind, targets, start_s, stop_s,"
        " detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(im->db, sql, -1, &st, NULL);

    for (size_t i = 0; rc == SQLITE_OK && i < im->faults.count; i++) {
        const struct fault *f = &im->faults.items[i];
        /* The start line carries the targets and the full detail (the
         * blocks, probability or delay); a stop line only repeats some. */
        const struct fl_json *line = f->start != NULL ? f->start : f->stop;

        sqlite3_bind_int64(st, 1, im->run);
        sqlite3_bind_int64(st, 2, f->id);
        bind_str(st, 3, get_string(line, "fault"));
        rc = bind_json(st, 4, fl_json_get(line, "targets"), &im->scratch);
        if (rc != SQLITE_OK)
            break;
        bind_seconds(st, 5, f->start);
        bind_seconds(st, 6, f->stop);
        rc = bind_json(st, 7, fl_json_get(line, "detail"), &im->scratch);
        if (rc == SQLITE_OK)
            rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int insert_anomalies(struct import *im)
{
    static const char sql[] = "INSERT INTO anomalies(run, checker, kind,"
                              " detail, ops) VALUES (?1, ?2, ?3, ?4, ?5)";
    const struct fl_json *list = fl_json_get(&im->results, "anomalies");
    sqlite3_stmt *st;
    int rc;

    if (list == NULL)
        return SQLITE_OK;
    rc = sqlite3_prepare_v2(im->db, sql, -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < list->u.array.count; i++) {
        const struct fl_json *a = &list->u.array.items[i];
        const struct fl_json *detail = fl_json_get(a, "detail");

        sqlite3_bind_int64(st, 1, im->run);
        bind_str(st, 2, get_string(a, "checker"));
        bind_str(st, 3, get_string(a, "kind"));
        rc = bind_json(st, 4, detail, &im->scratch);
        if (rc == SQLITE_OK)
            rc = anomaly_ops(detail, &im->scratch);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text64(st, 5, im->scratch.data, im->scratch.len,
                                     SQLITE_TRANSIENT, SQLITE_UTF8);
        if (rc == SQLITE_OK)
            rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/*
 * Inserts a row for every number under v, named by its path from the
 * metrics object: "ok", "per_fault[0].ok_per_s". Strings and booleans
 * (a per-fault entry's kind) are not metrics and are skipped.
 */
static int insert_metric_tree(struct import *im, sqlite3_stmt *st,
                              const struct fl_json *v, size_t depth)
{
    size_t name_len = im->name.len;
    int rc = SQLITE_OK;

    if (depth > FL_JSON_MAX_DEPTH)
        return SQLITE_OK;
    if (is_number(v)) {
        if (im->name.failed)
            return SQLITE_NOMEM;
        sqlite3_bind_int64(st, 1, im->run);
        sqlite3_bind_text64(st, 2, im->name.data, im->name.len,
                            SQLITE_TRANSIENT, SQLITE_UTF8);
        sqlite3_bind_double(st, 3, number_value(v));
        sqlite3_bind_text(st, 4,
                          metric_unit(im->name.data ? im->name.data : ""), -1,
                          SQLITE_STATIC);
        return step_reset(st);
    }
    if (v->kind == FL_JSON_OBJECT) {
        for (size_t i = 0; rc == SQLITE_OK && i < v->u.object.count; i++) {
            const struct fl_json_member *m = &v->u.object.members[i];
            if (name_len > 0)
                fl_buf_addc(&im->name, '.');
            fl_buf_add(&im->name, m->key.ptr, m->key.len);
            rc = insert_metric_tree(im, st, &m->value, depth + 1);
            im->name.len = name_len;
        }
    } else if (v->kind == FL_JSON_ARRAY) {
        for (size_t i = 0; rc == SQLITE_OK && i < v->u.array.count; i++) {
            fl_buf_printf(&im->name, "[%zu]", i);
            rc = insert_metric_tree(im, st, &v->u.array.items[i], depth + 1);
            im->name.len = name_len;
        }
    }
    if (im->name.data != NULL)
        im->name.data[name_len] = '\0';
    return rc;
}

static int insert_metrics(struct import *im)
{
    static const char sql[] = "INSERT INTO metrics(run, name, value, unit)"
                              " VALUES (?1, ?2, ?3, ?4)";
    const struct fl_json *metrics = fl_json_get(&im->results, "metrics");
    sqlite3_stmt *st;
    int rc;

    if (metrics == NULL)
        return SQLITE_OK;
    rc = sqlite3_prepare_v2(im->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    fl_buf_clear(&im->name);
    rc = insert_metric_tree(im, st, metrics, 0);
    sqlite3_finalize(st);
    return rc;
}

/* Replaces the run's rows in one IMMEDIATE transaction: the write lock is
 * taken up front, so two importers queue on the busy timeout instead of
 * one failing at its first write. */
static int write_rows(struct import *im)
{
    static const char delete_sql[] = "DELETE FROM runs WHERE store_path = ?1";
    sqlite3_stmt *st;
    int rc;

    rc = sqlite3_exec(im->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_error(im->db, rc, "cannot start a transaction", im->err,
                        im->err_size);

    /* The rows of an earlier import go with their run by ON DELETE
     * CASCADE. */
    rc = sqlite3_prepare_v2(im->db, delete_sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, im->dir, -1, SQLITE_STATIC);
        rc = step_reset(st);
        sqlite3_finalize(st);
    }
    if (rc == SQLITE_OK)
        rc = insert_run(im);
    if (rc == SQLITE_OK)
        rc = insert_faults(im);
    if (rc == SQLITE_OK)
        rc = insert_anomalies(im);
    if (rc == SQLITE_OK)
        rc = insert_metrics(im);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(im->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int code = db_error(im->db, rc, im->dir, im->err, im->err_size);
        sqlite3_exec(im->db, "ROLLBACK", NULL, NULL, NULL);
        return code;
    }
    return 0;
}

/* Checks the fields of results.json the database relies on. */
static int check_results(const struct fl_json *r, const char *path, char *err,
                         size_t err_size)
{
    static const char *const strings[] = {
        "run_id",  "campaign", "system", "network",
        "started", "expected", "repro",
    };
    static const char *const integers[] = {"seed", "nodes", "exit_code"};
    const struct fl_json *v;

    v = fl_json_get(r, "verdict");
    if (v == NULL || v->kind != FL_JSON_STRING)
        return fl_input_error(err, err_size,
                              "%s: missing string \"verdict\"; the run's "
                              "checks did not finish",
                              path);
    if (!fl_str_eq(v->u.s, "valid") && !fl_str_eq(v->u.s, "invalid") &&
        !fl_str_eq(v->u.s, "unknown"))
        return fl_input_error(err, err_size,
                              "%s: \"verdict\" must be valid, invalid or "
                              "unknown, got \"%.*s\"",
                              path, (int)(v->u.s.len > 32 ? 32 : v->u.s.len),
                              v->u.s.ptr);
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        v = fl_json_get(r, strings[i]);
        if (v != NULL && v->kind != FL_JSON_STRING)
            return fl_input_error(err, err_size,
                                  "%s: \"%s\" must be a string, got %s", path,
                                  strings[i], fl_json_kind_name(v->kind));
    }
    for (size_t i = 0; i < sizeof(integers) / sizeof(integers[0]); i++) {
        v = fl_json_get(r, integers[i]);
        if (v != NULL && v->kind != FL_JSON_INT)
            return fl_input_error(err, err_size,
                                  "%s: \"%s\" must be an integer, got %s", path,
                                  integers[i], fl_json_kind_name(v->kind));
    }
    v = fl_json_get(r, "elapsed_s");
    if (v != NULL && !is_number(v))
        return fl_input_error(err, err_size,
                              "%s: \"elapsed_s\" must be a number, got %s",
                              path, fl_json_kind_name(v->kind));
    v = fl_json_get(r, "anomalies");
    if (v != NULL && v->kind != FL_JSON_ARRAY)
        return fl_input_error(err, err_size,
                              "%s: \"anomalies\" must be an array, got %s",
                              path, fl_json_kind_name(v->kind));
    for (size_t i = 0; v != NULL && i < v->u.array.count; i++) {
        const struct fl_json *a = &v->u.array.items[i];
        const struct fl_json *checker = fl_json_get(a, "checker");
        const struct fl_json *kind = fl_json_get(a, "kind");
        if (a->kind != FL_JSON_OBJECT || checker == NULL ||
            checker->kind != FL_JSON_STRING || kind == NULL ||
            kind->kind != FL_JSON_STRING)
            return fl_input_error(err, err_size,
                                  "%s: anomalies[%zu] must be an object with "
                                  "string \"checker\" and \"kind\"",
                                  path, i);
    }
    v = fl_json_get(r, "metrics");
    if (v != NULL && v->kind != FL_JSON_OBJECT)
        return fl_input_error(err, err_size,
                              "%s: \"metrics\" must be an object, got %s", path,
                              fl_json_kind_name(v->kind));
    return 0;
}

/* Reads the run's files into im. Nothing touches the database yet, so a
 * rejected run leaves it as it was. */
static int read_run(struct import *im, struct fl_arena *arena)
{
    char path[PATH_MAX];
    int rc;

    if (snprintf(path, sizeof(path), "%s/results.json", im->dir) >=
        (int)sizeof(path))
        return fl_errorf(im->err, im->err_size, -ENAMETOOLONG,
                         "%s: path too long", im->dir);
    rc = read_json_object(arena, path, &im->results, im->err, im->err_size);
    if (rc == -ENOENT)
        return fl_input_error(im->err, im->err_size,
                              "%s: missing; not a finished run", path);
    if (rc == 0)
        rc = check_results(&im->results, path, im->err, im->err_size);
    if (rc != 0)
        return rc;

    snprintf(path, sizeof(path), "%s/campaign.json", im->dir);
    rc = read_json_object(arena, path, &im->campaign, im->err, im->err_size);
    if (rc == -ENOENT) {
        im->campaign.kind = FL_JSON_NULL;
        rc = 0;
    }
    if (rc != 0)
        return rc;

    snprintf(path, sizeof(path), "%s/nemesis.jsonl", im->dir);
    return read_faults(arena, path, &im->faults, im->err, im->err_size);
}

int rep_db_import(sqlite3 *db, const char *run_dir, char *err, size_t err_size)
{
    char dir[PATH_MAX];
    struct import im = {.db = db, .dir = dir, .err = err, .err_size = err_size};
    struct fl_arena arena;
    int rc;

    /* The absolute, resolved path is the run's identity in the database,
     * so "store/x" and "./store/x/" import as the same run. */
    if (realpath(run_dir, dir) == NULL) {
        rc = -errno;
        if (rc == -ENOENT || rc == -ENOTDIR)
            return fl_input_error(err, err_size, "%s: no such directory",
                                  run_dir);
        return fl_errorf(err, err_size, rc, "%s: %s", run_dir, fl_strerror(rc));
    }
    fl_arena_init(&arena, 0, NULL);
    fl_buf_init(&im.scratch);
    fl_buf_init(&im.name);

    rc = read_run(&im, &arena);
    if (rc == 0)
        rc = write_rows(&im);

    fl_buf_free(&im.name);
    fl_buf_free(&im.scratch);
    fl_vec_free((void **)&im.faults.items, &im.faults.cap,
                sizeof(im.faults.items[0]), NULL);
    fl_arena_destroy(&arena);
    return rc;
}

int rep_db_forget_missing(sqlite3 *db, size_t *removed, char *err,
                          size_t err_size)
{
    sqlite3_stmt *list = NULL;
    sqlite3_stmt *drop = NULL;
    int rc;

    *removed = 0;
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "SELECT id, store_path FROM runs", -1,
                                &list, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "DELETE FROM runs WHERE id = ?1", -1, &drop,
                                NULL);
    while (rc == SQLITE_OK && sqlite3_step(list) == SQLITE_ROW) {
        const unsigned char *dir = sqlite3_column_text(list, 1);
        char path[PATH_MAX];
        struct stat sb;
        if (dir == NULL ||
            snprintf(path, sizeof(path), "%s/results.json", dir) >=
                (int)sizeof(path) ||
            stat(path, &sb) == 0)
            continue;
        sqlite3_bind_int64(drop, 1, sqlite3_column_int64(list, 0));
        if (sqlite3_step(drop) != SQLITE_DONE)
            rc = SQLITE_ERROR;
        sqlite3_reset(drop);
        (*removed)++;
    }
    if (rc != SQLITE_OK)
        snprintf(err, err_size, "cannot remove runs that are gone: %s",
                 sqlite3_errmsg(db));
    sqlite3_finalize(list);
    sqlite3_finalize(drop);
    sqlite3_exec(db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : FL_EINPUT;
}
