/*
 * `faultline check --manifest`: checks every history a MANIFEST.json lists
 * and compares each verdict with the expected one.
 *
 * A manifest is a non-empty JSON array of entries:
 *   {"file": "dir/h.jsonl", "model": "cas-register",
 *    "expected": "linearizable" | "not-linearizable",
 *    "init": 0, "read_null": "value" | "unknown",
 *    "cas_fail": "no-effect" | "compare-failed", ...}
 * `file` is relative to the manifest's folder unless it is absolute.
 * Descriptive fields (source, ops, time_field, note,
 * dropped_non_client_entries, duplicate_of) are accepted and ignored. Any
 * other field, and any field given twice, is an error, so a typo in an
 * option name cannot silently change a verdict. The manifest is parsed with
 * fl_json, which keeps an integer `init` exact to 64 bits.
 */
#include "check_file.h"
#include "cli.h"

#include "buf.h"
#include "error.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A manifest has one short entry per history (the 228-entry corpus manifest
 * is under 100 KB), so the limit only stops input such as /dev/zero, which
 * would otherwise be read forever. */
#define MANIFEST_MAX_BYTES ((size_t)64 << 20)

struct entry {
    const char *file; /* NUL-terminated, in the manifest's arena */
    char path[4096];
    struct chk_lin_options o;
    enum chk_verdict expected;
};

/* The entry being parsed, for messages, and the arena for its strings. */
struct entry_ctx {
    const char *manifest;
    size_t index;
    const char *file; /* NULL until the file field is parsed */
    struct fl_arena *arena;
};

enum { SEEN_MODEL = 1, SEEN_EXPECTED = 2 };

static const char *const ignored_fields[] = {
    "source",       "ops", "time_field", "note", "dropped_non_client_entries",
    "duplicate_of",
};

/*
 * Appends the contents of path to b. Returns 0, -errno, -ENOMEM, or
 * FL_EINPUT when the file is larger than MANIFEST_MAX_BYTES.
 */
static int read_file(const char *path, struct fl_buf *b)
{
    char chunk[65536];
    struct stat st;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    while (rc == 0) {
        ssize_t got = read(fd, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = -errno;
        else if (got == 0)
            break;
        else if ((size_t)got > MANIFEST_MAX_BYTES - b->len)
            rc = FL_EINPUT;
        else
            fl_buf_add(b, chunk, (size_t)got);
        if (b->failed)
            rc = -ENOMEM;
    }
    close(fd);
    return rc;
}

static int load_manifest(const char *path, struct fl_buf *text)
{
    int rc = read_file(path, text);

    if (rc == 0)
        return 0;
    fprintf(stderr, "faultline check: %s: cannot read: %s\n", path,
            rc == FL_EINPUT ? "manifest larger than 64 MiB" : fl_strerror(rc));
    return rc == -ENOMEM ? RUN_EXIT_INFRA : RUN_EXIT_USAGE;
}

/* Converts a byte offset into text to a 1-based line and byte column. */
static void position(const char *text, size_t offset, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Parses text into *root and requires a non-empty array. */
static int parse_manifest(const char *path, const char *text, size_t len,
                          struct fl_arena *arena, struct fl_json *root)
{
    const char *why;
    size_t where;
    size_t line;
    size_t col;
    int rc = fl_json_parse(arena, text, len, root, &why, &where);

    if (rc == FL_EINPUT) {
        position(text, where, &line, &col);
        fprintf(stderr,
                "faultline check: %s:%zu:%zu: invalid JSON in the manifest: "
                "%s\n",
                path, line, col, why);
        return RUN_EXIT_USAGE;
    }
    if (rc != 0) {
        fprintf(stderr, "faultline check: %s: cannot parse: %s\n", path,
                fl_strerror(rc));
        return RUN_EXIT_INFRA;
    }
    if (root->kind != FL_JSON_ARRAY) {
        fprintf(stderr,
                "faultline check: %s: expected a JSON array of entries\n",
                path);
        return RUN_EXIT_USAGE;
    }
    if (root->u.array.count == 0) {
        fprintf(stderr,
                "faultline check: %s: the manifest lists no histories\n", path);
        return RUN_EXIT_USAGE;
    }
    return 0;
}

static int entry_error(const struct entry_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int entry_error(const struct entry_ctx *c, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "faultline check: %s: entry %zu", c->manifest,
            c->index + 1);
    if (c->file != NULL)
        fprintf(stderr, " (\"%s\")", c->file);
    fputs(": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return RUN_EXIT_USAGE;
}

/* Copies the string value of m into the arena as a C string. */
static int string_field(const struct entry_ctx *c,
                        const struct fl_json_member *m, const char **out)
{
    const struct fl_json *v = &m->value;
    char *s;

    if (v->kind != FL_JSON_STRING)
        return entry_error(c, "field \"%.*s\" must be a string, got %s",
                           (int)m->key.len, m->key.ptr,
                           fl_json_kind_name(v->kind));
    if (memchr(v->u.s.ptr, '\0', v->u.s.len) != NULL)
        return entry_error(c,
                           "field \"%.*s\" must not contain a NUL "
                           "character",
                           (int)m->key.len, m->key.ptr);
    s = fl_arena_strndup(c->arena, v->u.s.ptr, v->u.s.len);
    if (s == NULL) {
        fprintf(stderr, "faultline check: %s: %s\n", c->manifest,
                fl_strerror(c->arena->error));
        return RUN_EXIT_INFRA;
    }
    *out = s;
    return 0;
}

static int file_field(struct entry_ctx *c, const struct fl_json *obj,
                      const char *dir, struct entry *e)
{
    const struct fl_json *v = fl_json_get(obj, "file");
    struct fl_json_member m = {{"file", 4}, {0}};
    int n;
    int rc;

    if (v == NULL || v->kind != FL_JSON_STRING || v->u.s.len == 0)
        return entry_error(c, "missing or empty string field \"file\"");
    m.value = *v;
    rc = string_field(c, &m, &e->file);
    if (rc != 0)
        return rc;
    c->file = e->file;
    if (e->file[0] == '/')
        n = snprintf(e->path, sizeof(e->path), "%s", e->file);
    else
        n = snprintf(e->path, sizeof(e->path), "%s/%s", dir, e->file);
    if (n < 0 || (size_t)n >= sizeof(e->path))
        return entry_error(c,
                           "the path of the history is longer than %zu "
                           "bytes",
                           sizeof(e->path) - 1);
    return 0;
}

static int model_field(const struct entry_ctx *c,
                       const struct fl_json_member *m, struct entry *e)
{
    const char *s;
    int rc = string_field(c, m, &s);

    if (rc != 0)
        return rc;
    if (chk_model_parse(s, &e->o.model) != 0)
        return entry_error(c,
                           "unknown model \"%s\"; expected register, "
                           "cas-register or kv",
                           s);
    return 0;
}

static int expected_field(const struct entry_ctx *c,
                          const struct fl_json_member *m, struct entry *e)
{
    const char *s;
    int rc = string_field(c, m, &s);

    if (rc != 0)
        return rc;
    if (strcmp(s, "linearizable") == 0)
        e->expected = CHK_VALID;
    else if (strcmp(s, "not-linearizable") == 0)
        e->expected = CHK_INVALID;
    else
        return entry_error(c,
                           "invalid \"expected\" \"%s\"; expected "
                           "linearizable or not-linearizable",
                           s);
    return 0;
}

/* The value may point into the manifest text or arena, which outlive the
 * checks; chk_lin_history_new copies it. */
static int init_field(const struct entry_ctx *c, const struct fl_json_member *m,
                      struct entry *e)
{
    const struct fl_json *v = &m->value;

    if (v->kind == FL_JSON_DOUBLE)
        return entry_error(c, "field \"init\" must be null, an integer or a "
                              "string, got a number with a fraction, an "
                              "exponent or more than 64 bits");
    if (v->kind != FL_JSON_NULL && v->kind != FL_JSON_INT &&
        v->kind != FL_JSON_STRING)
        return entry_error(c,
                           "field \"init\" must be null, an integer or a "
                           "string, got %s",
                           fl_json_kind_name(v->kind));
    e->o.init = *v;
    e->o.has_init = true;
    return 0;
}

static int read_null_field(const struct entry_ctx *c,
                           const struct fl_json_member *m, struct entry *e)
{
    const char *s;
    int rc = string_field(c, m, &s);

    if (rc != 0)
        return rc;
    if (chk_read_null_parse(s, &e->o.read_null) != 0)
        return entry_error(c,
                           "invalid \"read_null\" \"%s\"; expected value or "
                           "unknown",
                           s);
    return 0;
}

static int cas_fail_field(const struct entry_ctx *c,
                          const struct fl_json_member *m, struct entry *e)
{
    const char *s;
    int rc = string_field(c, m, &s);

    if (rc != 0)
        return rc;
    if (chk_cas_fail_parse(s, &e->o.cas_fail) != 0)
        return entry_error(c,
                           "invalid \"cas_fail\" \"%s\"; expected no-effect "
                           "or compare-failed",
                           s);
    return 0;
}

static bool is_ignored_field(struct fl_str name)
{
    for (size_t k = 0; k < sizeof(ignored_fields) / sizeof(ignored_fields[0]);
         k++) {
        if (fl_str_eq(name, ignored_fields[k]))
            return true;
    }
    return false;
}

/* Applies one member of an entry; file is handled by file_field. */
static int apply_field(const struct entry_ctx *c,
                       const struct fl_json_member *m, struct entry *e,
                       unsigned *seen)
{
    if (fl_str_eq(m->key, "file") || is_ignored_field(m->key))
        return 0;
    if (fl_str_eq(m->key, "model")) {
        *seen |= SEEN_MODEL;
        return model_field(c, m, e);
    }
    if (fl_str_eq(m->key, "expected")) {
        *seen |= SEEN_EXPECTED;
        return expected_field(c, m, e);
    }
    if (fl_str_eq(m->key, "init"))
        return init_field(c, m, e);
    if (fl_str_eq(m->key, "read_null"))
        return read_null_field(c, m, e);
    if (fl_str_eq(m->key, "cas_fail"))
        return cas_fail_field(c, m, e);
    return entry_error(c, "unknown field \"%.*s\"", (int)m->key.len,
                       m->key.ptr);
}

/* Rejects member k of obj when an earlier member has the same name. */
static int check_unique(const struct entry_ctx *c, const struct fl_json *obj,
                        size_t k)
{
    const struct fl_json_member *members = obj->u.object.members;

    for (size_t j = 0; j < k; j++) {
        if (fl_str_same(members[j].key, members[k].key))
            return entry_error(c, "duplicate field \"%.*s\"",
                               (int)members[k].key.len, members[k].key.ptr);
    }
    return 0;
}

static int parse_entry(struct entry_ctx *c, const struct fl_json *obj,
                       const char *dir, const struct chk_lin_options *base,
                       struct entry *e)
{
    unsigned seen = 0;
    int rc;

    e->o = *base;
    e->o.has_init = false;
    e->o.read_null = CHK_READ_NULL_VALUE;
    e->o.cas_fail = CHK_CAS_FAIL_NO_EFFECT;
    if (obj->kind != FL_JSON_OBJECT)
        return entry_error(c, "expected an object");
    rc = file_field(c, obj, dir, e);
    for (size_t k = 0; rc == 0 && k < obj->u.object.count; k++) {
        rc = check_unique(c, obj, k);
        if (rc == 0)
            rc = apply_field(c, &obj->u.object.members[k], e, &seen);
    }
    if (rc != 0)
        return rc;
    if (!(seen & SEEN_MODEL))
        return entry_error(c, "missing field \"model\"");
    if (!(seen & SEEN_EXPECTED))
        return entry_error(c, "missing field \"expected\"");
    /* The same rule as for --model kv --init on the command line. */
    if (e->o.model == CHK_MODEL_KV && e->o.has_init &&
        e->o.init.kind == FL_JSON_INT)
        return entry_error(c, "field \"init\" must be a string or null for "
                              "the kv model");
    return 0;
}

static const char *short_verdict(enum chk_verdict v)
{
    switch (v) {
    case CHK_VALID:
        return "valid";
    case CHK_INVALID:
        return "invalid";
    case CHK_UNKNOWN:
        return "unknown";
    }
    return "?";
}

struct tally {
    size_t agree;
    size_t disagree;
    size_t unknown;
    size_t failed; /* histories that could not be checked */
    double total_ms;
};

/* Checks entry e, counts its outcome in t and appends its row to out. */
static void check_entry(const struct entry *e, bool json, size_t i,
                        struct tally *t, struct fl_buf *out)
{
    struct run_check_outcome res;
    int r = run_check_file(e->path, &e->o, NULL, false, &res);
    const char *agrees;

    if (r != 0) {
        t->failed++;
        agrees = "ERROR";
        fprintf(stderr, "faultline check: %s\n", res.error);
    } else if (res.verdict == CHK_UNKNOWN) {
        t->unknown++;
        agrees = "?";
    } else if (res.verdict == e->expected) {
        t->agree++;
        agrees = "yes";
    } else {
        t->disagree++;
        agrees = "NO";
    }
    t->total_ms += res.ms;
    if (!json) {
        fl_buf_printf(out, "%-58s %6zu %-8s %-8s %-5s %9.2f\n", e->file,
                      res.ops, short_verdict(e->expected),
                      r != 0 ? "error" : short_verdict(res.verdict), agrees,
                      res.ms);
        return;
    }
    if (i > 0)
        fl_buf_addc(out, ',');
    fl_buf_adds(out, "{\"file\":");
    fl_buf_add_json_string(out, e->file, strlen(e->file));
    fl_buf_printf(out,
                  ",\"ops\":%zu,\"expected\":\"%s\",\"verdict\":\"%s\","
                  "\"agree\":%s,\"ms\":%.3f}",
                  res.ops, chk_verdict_name(e->expected),
                  r != 0 ? "error" : chk_verdict_name(res.verdict),
                  r == 0 && res.verdict == e->expected ? "true" : "false",
                  res.ms);
}

static int exit_code(const struct tally *t)
{
    /* A wrong verdict is the finding that matters most, so an unreadable
     * history elsewhere must not hide it. */
    if (t->disagree > 0)
        return RUN_EXIT_INVALID;
    if (t->failed > 0)
        return RUN_EXIT_USAGE;
    if (t->unknown > 0)
        return RUN_EXIT_UNKNOWN;
    return RUN_EXIT_VALID;
}

static int check_entries(const struct entry *entries, size_t n, bool json)
{
    struct tally t = {0};
    struct fl_buf out;
    int rc;

    fl_buf_init(&out);
    if (json)
        fl_buf_addc(&out, '[');
    else
        fl_buf_printf(&out, "%-58s %6s %-8s %-8s %-5s %9s\n", "file", "ops",
                      "expected", "verdict", "agree", "ms");
    for (size_t i = 0; i < n; i++) {
        check_entry(&entries[i], json, i, &t, &out);
        if (!json && !out.failed) {
            fwrite(out.data, 1, out.len, stdout);
            fl_buf_clear(&out);
        }
    }
    if (json)
        fl_buf_adds(&out, "]\n");
    else
        fl_buf_printf(&out,
                      "\n%zu histories: %zu agree, %zu disagree, %zu unknown, "
                      "%zu could not be checked; %.1f ms checking in total\n",
                      n, t.agree, t.disagree, t.unknown, t.failed, t.total_ms);
    rc = exit_code(&t);
    if (out.failed) {
        fprintf(stderr, "faultline check: out of memory while rendering the "
                        "result\n");
        rc = RUN_EXIT_INFRA;
    } else {
        fwrite(out.data, 1, out.len, stdout);
    }
    fl_buf_free(&out);
    return rc;
}

int run_check_manifest(const char *path, const struct chk_lin_options *base,
                       bool json)
{
    struct fl_buf text;
    struct fl_arena arena;
    struct fl_json root;
    struct entry *entries = NULL;
    char *path_copy = NULL;
    const char *dir;
    size_t n;
    int rc;

    fl_buf_init(&text);
    fl_arena_init(&arena, 0, NULL);
    rc = load_manifest(path, &text);
    if (rc != 0)
        goto out;
    rc = parse_manifest(path, text.data ? text.data : "", text.len, &arena,
                        &root);
    if (rc != 0)
        goto out;
    n = root.u.array.count;
    path_copy = strdup(path);
    entries = calloc(n, sizeof(*entries));
    if (path_copy == NULL || entries == NULL) {
        fprintf(stderr, "faultline check: %s: %s\n", path,
                fl_strerror(-ENOMEM));
        rc = RUN_EXIT_INFRA;
        goto out;
    }
    dir = dirname(path_copy);
    /* Validate every entry before checking any, so a typo fails fast. */
    for (size_t i = 0; i < n; i++) {
        struct entry_ctx c = {path, i, NULL, &arena};
        rc = parse_entry(&c, &root.u.array.items[i], dir, base, &entries[i]);
        if (rc != 0)
            goto out;
    }
    rc = check_entries(entries, n, json);
out:
    free(entries);
    free(path_copy);
    fl_arena_destroy(&arena);
    fl_buf_free(&text);
    return rc;
}
