/*
 * `faultline check --manifest`: checks every history a MANIFEST.json lists
 * and compares each verdict with the expected one.
 *
 * A manifest is a JSON array of entries:
 *   {"file": "dir/h.jsonl", "model": "cas-register",
 *    "expected": "linearizable" | "not-linearizable",
 *    "init": 0, "read_null": "value" | "unknown",
 *    "cas_fail": "no-effect" | "compare-failed", ...}
 * `file` is relative to the manifest's folder. Descriptive fields (source,
 * ops, time_field, note, dropped_non_client_entries, duplicate_of) are
 * accepted and ignored; any other field is an error, so a typo in an option
 * name cannot silently change a verdict.
 */
#include "check.h"
#include "cli.h"

#include "buf.h"
#include "error.h"

#include <cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *file;
    char path[4096];
    struct chk_lin_options o;
    enum chk_verdict expected;
    struct fl_arena arena; /* contains the init value */
};

static const char *const ignored_fields[] = {
    "source",       "ops", "time_field", "note", "dropped_non_client_entries",
    "duplicate_of",
};

static char *read_file(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    struct fl_buf b;
    char chunk[65536];
    size_t n;

    *err = 0;
    if (f == NULL) {
        *err = -errno;
        return NULL;
    }
    fl_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fl_buf_add(&b, chunk, n);
    if (ferror(f))
        *err = -EIO;
    fclose(f);
    if (b.failed && *err == 0)
        *err = -ENOMEM;
    if (*err != 0) {
        fl_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    if (b.data == NULL)
        fl_buf_add(&b, "", 0);
    return b.data;
}

static void position(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int entry_error(const char *manifest, int i, const char *file,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int entry_error(const char *manifest, int i, const char *file,
                       const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "faultline check: %s: entry %d", manifest, i + 1);
    if (file != NULL)
        fprintf(stderr, " (\"%s\")", file);
    fputs(": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return RUN_EXIT_USAGE;
}

static int string_field(const char *manifest, int i, const char *file,
                        const cJSON *item, const char **out)
{
    if (!cJSON_IsString(item))
        return entry_error(manifest, i, file, "field \"%s\" must be a string",
                           item->string);
    *out = item->valuestring;
    return 0;
}

static int parse_entry(const char *manifest, const char *dir, int i,
                       const cJSON *obj, const struct chk_lin_options *base,
                       struct entry *e)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, "file");
    const char *s = NULL;
    bool have_model = false;
    bool have_expected = false;

    e->o = *base;
    e->o.has_init = false;
    e->o.read_null = CHK_READ_NULL_VALUE;
    e->o.cas_fail = CHK_CAS_FAIL_NO_EFFECT;
    if (!cJSON_IsObject(obj))
        return entry_error(manifest, i, NULL, "expected an object");
    if (!cJSON_IsString(f) || f->valuestring[0] == '\0')
        return entry_error(manifest, i, NULL,
                           "missing or empty string field \"file\"");
    e->file = f->valuestring;
    if (e->file[0] == '/')
        snprintf(e->path, sizeof(e->path), "%s", e->file);
    else
        snprintf(e->path, sizeof(e->path), "%s/%s", dir, e->file);

    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        const char *name = m->string;
        if (strcmp(name, "file") == 0)
            continue;
        if (strcmp(name, "model") == 0) {
            if (string_field(manifest, i, e->file, m, &s) != 0)
                return RUN_EXIT_USAGE;
            if (chk_model_parse(s, &e->o.model) != 0)
                return entry_error(manifest, i, e->file,
                                   "unknown model \"%s\"; expected register, "
                                   "cas-register or kv",
                                   s);
            have_model = true;
        } else if (strcmp(name, "expected") == 0) {
            if (string_field(manifest, i, e->file, m, &s) != 0)
                return RUN_EXIT_USAGE;
            if (strcmp(s, "linearizable") == 0)
                e->expected = CHK_VALID;
            else if (strcmp(s, "not-linearizable") == 0)
                e->expected = CHK_INVALID;
            else
                return entry_error(manifest, i, e->file,
                                   "invalid \"expected\" \"%s\"; expected "
                                   "linearizable or not-linearizable",
                                   s);
            have_expected = true;
        } else if (strcmp(name, "init") == 0) {
            if (cJSON_IsNull(m)) {
                e->o.init.kind = FL_JSON_NULL;
            } else if (cJSON_IsString(m)) {
                e->o.init.kind = FL_JSON_STRING;
                e->o.init.u.s.ptr = fl_arena_strndup(&e->arena, m->valuestring,
                                                     strlen(m->valuestring));
                e->o.init.u.s.len = strlen(m->valuestring);
                if (e->o.init.u.s.ptr == NULL)
                    return RUN_EXIT_INFRA;
            } else if (cJSON_IsNumber(m) &&
                       m->valuedouble == (double)(int64_t)m->valuedouble) {
                e->o.init.kind = FL_JSON_INT;
                e->o.init.u.i = (int64_t)m->valuedouble;
            } else {
                return entry_error(manifest, i, e->file,
                                   "field \"init\" must be null, an integer "
                                   "or a string");
            }
            e->o.has_init = true;
        } else if (strcmp(name, "read_null") == 0) {
            if (string_field(manifest, i, e->file, m, &s) != 0)
                return RUN_EXIT_USAGE;
            if (chk_read_null_parse(s, &e->o.read_null) != 0)
                return entry_error(manifest, i, e->file,
                                   "invalid \"read_null\" \"%s\"; expected "
                                   "value or unknown",
                                   s);
        } else if (strcmp(name, "cas_fail") == 0) {
            if (string_field(manifest, i, e->file, m, &s) != 0)
                return RUN_EXIT_USAGE;
            if (chk_cas_fail_parse(s, &e->o.cas_fail) != 0)
                return entry_error(manifest, i, e->file,
                                   "invalid \"cas_fail\" \"%s\"; expected "
                                   "no-effect or compare-failed",
                                   s);
        } else {
            bool known = false;
            for (size_t k = 0;
                 k < sizeof(ignored_fields) / sizeof(ignored_fields[0]); k++)
                known |= strcmp(name, ignored_fields[k]) == 0;
            if (!known)
                return entry_error(manifest, i, e->file, "unknown field \"%s\"",
                                   name);
        }
    }
    if (!have_model)
        return entry_error(manifest, i, e->file, "missing field \"model\"");
    if (!have_expected)
        return entry_error(manifest, i, e->file, "missing field \"expected\"");
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

int run_check_manifest(const char *path, const struct chk_lin_options *base,
                       bool json)
{
    char *text;
    size_t len;
    int err;
    cJSON *root;
    const char *end = NULL;
    struct entry *entries = NULL;
    int n = 0;
    int rc = RUN_EXIT_USAGE;
    char *path_copy = NULL;
    const char *dir;
    int agree = 0;
    int disagree = 0;
    int unknown = 0;
    int failed = 0;
    double total_ms = 0;
    struct fl_buf out;

    fl_buf_init(&out);
    text = read_file(path, &len, &err);
    if (text == NULL) {
        fprintf(stderr, "faultline check: %s: cannot read: %s\n", path,
                fl_strerror(err));
        return RUN_EXIT_USAGE;
    }
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root != NULL) {
        /* Only whitespace may follow the array. */
        while (end < text + len && strchr(" \t\r\n", *end) != NULL)
            end++;
        if (end < text + len) {
            cJSON_Delete(root);
            root = NULL;
        }
    }
    if (root == NULL) {
        int line;
        int col;
        position(text, end ? end : text, &line, &col);
        fprintf(stderr,
                "faultline check: %s:%d:%d: invalid JSON in the manifest\n",
                path, line, col);
        goto out;
    }
    if (!cJSON_IsArray(root)) {
        fprintf(stderr,
                "faultline check: %s: expected a JSON array of entries\n",
                path);
        goto out;
    }
    path_copy = strdup(path);
    if (path_copy == NULL) {
        rc = RUN_EXIT_INFRA;
        goto out;
    }
    dir = dirname(path_copy);
    n = cJSON_GetArraySize(root);
    entries = calloc((size_t)(n > 0 ? n : 1), sizeof(*entries));
    if (entries == NULL) {
        rc = RUN_EXIT_INFRA;
        goto out;
    }
    for (int i = 0; i < n; i++)
        fl_arena_init(&entries[i].arena, 256, NULL);
    /* Validate every entry before checking any, so a typo fails fast. */
    for (int i = 0; i < n; i++) {
        rc = parse_entry(path, dir, i, cJSON_GetArrayItem(root, i), base,
                         &entries[i]);
        if (rc != 0)
            goto out;
    }

    if (json)
        fl_buf_addc(&out, '[');
    else
        printf("%-58s %6s %-8s %-8s %-5s %9s\n", "file", "ops", "expected",
               "verdict", "agree", "ms");
    for (int i = 0; i < n; i++) {
        struct entry *e = &entries[i];
        struct run_check_outcome res;
        int r = run_check_file(e->path, &e->o, NULL, false, &res);
        const char *verdict = r != 0 ? "error" : short_verdict(res.verdict);
        const char *agrees;

        if (r != 0) {
            failed++;
            agrees = "ERROR";
            fprintf(stderr, "faultline check: %s\n", res.error);
        } else if (res.verdict == CHK_UNKNOWN) {
            unknown++;
            agrees = "?";
        } else if (res.verdict == e->expected) {
            agree++;
            agrees = "yes";
        } else {
            disagree++;
            agrees = "NO";
        }
        total_ms += res.ms;
        if (json) {
            if (i > 0)
                fl_buf_addc(&out, ',');
            fl_buf_adds(&out, "{\"file\":");
            fl_buf_add_json_string(&out, e->file, strlen(e->file));
            fl_buf_printf(&out,
                          ",\"ops\":%zu,\"expected\":\"%s\",\"verdict\":"
                          "\"%s\",\"agree\":%s,\"ms\":%.3f}",
                          res.ops, chk_verdict_name(e->expected),
                          r != 0 ? "error" : chk_verdict_name(res.verdict),
                          r == 0 && res.verdict == e->expected ? "true"
                                                               : "false",
                          res.ms);
        } else {
            printf("%-58s %6zu %-8s %-8s %-5s %9.2f\n", e->file, res.ops,
                   short_verdict(e->expected), verdict, agrees, res.ms);
        }
    }
    if (json) {
        fl_buf_adds(&out, "]\n");
        fwrite(out.data, 1, out.len, stdout);
    } else {
        printf("\n%d histories: %d agree, %d disagree, %d unknown, %d could "
               "not be checked; %.1f ms checking in total\n",
               n, agree, disagree, unknown, failed, total_ms);
    }
    if (failed > 0)
        rc = RUN_EXIT_USAGE;
    else if (disagree > 0)
        rc = RUN_EXIT_INVALID;
    else if (unknown > 0)
        rc = RUN_EXIT_UNKNOWN;
    else
        rc = RUN_EXIT_VALID;
out:
    if (entries != NULL) {
        for (int i = 0; i < n; i++)
            fl_arena_destroy(&entries[i].arena);
    }
    free(entries);
    free(path_copy);
    cJSON_Delete(root);
    free(text);
    fl_buf_free(&out);
    return rc;
}
