/*
 * History reading, validation and writing. See history.h for the format.
 */
#include "history.h"

#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *fl_hist_type_name(enum fl_hist_type type)
{
    switch (type) {
    case FL_HIST_INVOKE:
        return "invoke";
    case FL_HIST_OK:
        return "ok";
    case FL_HIST_FAIL:
        return "fail";
    case FL_HIST_INFO:
        return "info";
    }
    return "?";
}

/* ---- tracker ----------------------------------------------------------- */

enum proc_state { PROC_IDLE, PROC_OPEN, PROC_CRASHED };

struct fl_hist_proc {
    uint64_t invoke_line; /* of the open invocation, or of the info reply */
    struct fl_buf value;  /* write, cas, put, append: the invocation's value */
    int64_t key_id;       /* -1: no key */
    uint32_t f_id;
    uint8_t state;
};

/* Values above this size are freed once their operation completes. */
#define KEEP_VALUE_BYTES 4096

void fl_hist_tracker_init(struct fl_hist_tracker *t, struct fl_budget *budget)
{
    fl_map64_init(&t->procs, budget);
    t->slots = NULL;
    t->nslots = 0;
    t->slots_cap = 0;
    fl_strtab_init(&t->names, budget);
    t->open = 0;
    t->have_last = false;
    t->last_time = 0;
    t->last_index = -1;
    t->budget = budget;
}

void fl_hist_tracker_destroy(struct fl_hist_tracker *t)
{
    for (size_t i = 0; i < t->nslots; i++)
        fl_buf_free(&t->slots[i].value);
    fl_buf_free(&t->scratch);
    fl_map64_destroy(&t->procs);
    fl_vec_free((void **)&t->slots, &t->slots_cap, sizeof(*t->slots),
                t->budget);
    fl_strtab_destroy(&t->names);
}

static bool is_register_value(const struct fl_json *v)
{
    return v->kind == FL_JSON_NULL || v->kind == FL_JSON_INT ||
           v->kind == FL_JSON_STRING;
}

enum known_f { F_OTHER, F_READ, F_WRITE, F_CAS, F_PUT };

static enum known_f classify(struct fl_str f)
{
    if (fl_str_eq(f, "read") || fl_str_eq(f, "get"))
        return F_READ;
    if (fl_str_eq(f, "write"))
        return F_WRITE;
    if (fl_str_eq(f, "cas"))
        return F_CAS;
    if (fl_str_eq(f, "put") || fl_str_eq(f, "append"))
        return F_PUT;
    return F_OTHER;
}

static int check_shape(const struct fl_hist_event *ev, char *msg, size_t size)
{
    const struct fl_json *v = &ev->value;
    const char *f = ev->f.ptr;
    int flen = (int)ev->f.len;
    bool invoke = ev->type == FL_HIST_INVOKE;

    switch (classify(ev->f)) {
    case F_OTHER:
        return 0;
    case F_READ:
        if (invoke && v->kind != FL_JSON_NULL)
            return fl_input_error(
                msg, size, "a %.*s invocation must carry a null value, got %s",
                flen, f, fl_json_kind_name(v->kind));
        if (!is_register_value(v))
            return fl_input_error(
                msg, size,
                "a %.*s result must be null, an integer or a string, "
                "got %s",
                flen, f, fl_json_kind_name(v->kind));
        return 0;
    case F_WRITE:
        if (invoke && !ev->has_value)
            return fl_input_error(msg, size,
                                  "a write invocation needs a value");
        if (!is_register_value(v))
            return fl_input_error(
                msg, size,
                "a write value must be an integer, a string or null, "
                "got %s",
                fl_json_kind_name(v->kind));
        return 0;
    case F_CAS:
        if (!invoke && !ev->has_value)
            return 0;
        if (v->kind != FL_JSON_ARRAY || v->u.array.count != 2)
            return fl_input_error(
                msg, size,
                "a cas value must be an array [expected, new], got %s",
                v->kind == FL_JSON_ARRAY ? "an array of another length"
                                         : fl_json_kind_name(v->kind));
        if (!is_register_value(&v->u.array.items[0]) ||
            !is_register_value(&v->u.array.items[1]))
            return fl_input_error(
                msg, size,
                "cas [expected, new] must hold integers, strings or "
                "nulls");
        return 0;
    case F_PUT:
        if (!invoke && !ev->has_value)
            return 0;
        if (v->kind != FL_JSON_STRING)
            return fl_input_error(
                msg, size, "%s %.*s value must be a string, got %s",
                f[0] == 'a' ? "an" : "a", flen, f, fl_json_kind_name(v->kind));
        return 0;
    }
    return 0;
}

/* True when v serializes exactly like the open invocation's value. */
static bool same_value(struct fl_hist_tracker *t, const struct fl_hist_proc *p,
                       const struct fl_json *v)
{
    fl_buf_clear(&t->scratch);
    fl_json_write(&t->scratch, v);
    return !t->scratch.failed && t->scratch.len == p->value.len &&
           (p->value.len == 0 ||
            memcmp(t->scratch.data, p->value.data, p->value.len) == 0);
}

int fl_hist_tracker_feed(struct fl_hist_tracker *t, struct fl_hist_event *ev,
                         char *msg, size_t msg_size)
{
    struct fl_hist_proc *p = NULL;
    uint64_t *slot_index;
    int64_t f_id;
    int64_t key_id = -1;
    int inserted;
    int rc;

    if (ev->time < 0)
        return fl_input_error(msg, msg_size,
                              "time must not be negative, got %lld",
                              (long long)ev->time);
    if (t->have_last && ev->time < t->last_time)
        return fl_input_error(
            msg, msg_size,
            "time %lld is earlier than the previous event's time %lld; "
            "events must be in real-time order",
            (long long)ev->time, (long long)t->last_time);
    if (ev->index >= 0 && t->last_index >= 0 && ev->index <= t->last_index)
        return fl_input_error(
            msg, msg_size,
            "index %lld is not greater than the previous index %lld",
            (long long)ev->index, (long long)t->last_index);
    if (ev->process < 0)
        return fl_input_error(msg, msg_size,
                              "process must not be negative, got %lld",
                              (long long)ev->process);
    if (ev->f.ptr == NULL || ev->f.len == 0)
        return fl_input_error(msg, msg_size, "f must be a non-empty string");
    rc = check_shape(ev, msg, msg_size);
    if (rc != 0)
        return rc;

    f_id = fl_strtab_intern(&t->names, ev->f.ptr, ev->f.len);
    if (f_id < 0)
        return (int)f_id;
    if (ev->key.ptr != NULL) {
        key_id = fl_strtab_intern(&t->names, ev->key.ptr, ev->key.len);
        if (key_id < 0)
            return (int)key_id;
    }
    slot_index = fl_map64_get(&t->procs, (uint64_t)ev->process);
    if (slot_index != NULL)
        p = &t->slots[*slot_index];

    if (ev->type == FL_HIST_INVOKE) {
        if (p != NULL && p->state == PROC_OPEN)
            return fl_input_error(
                msg, msg_size,
                "process %lld invokes while its invocation on line "
                "%llu is still open",
                (long long)ev->process, (unsigned long long)p->invoke_line);
        if (p != NULL && p->state == PROC_CRASHED)
            return fl_input_error(
                msg, msg_size,
                "process %lld invokes after its operation ended in "
                "info on line %llu; a process with an unknown outcome "
                "must continue under a new process number",
                (long long)ev->process, (unsigned long long)p->invoke_line);
        if (p == NULL) {
            rc = fl_vec_reserve((void **)&t->slots, &t->slots_cap,
                                t->nslots + 1, sizeof(*t->slots), t->budget);
            if (rc != 0)
                return rc;
            slot_index =
                fl_map64_put(&t->procs, (uint64_t)ev->process, &inserted);
            if (slot_index == NULL)
                return t->budget && t->budget->limit ? FL_EBUDGET : -ENOMEM;
            *slot_index = t->nslots;
            p = &t->slots[t->nslots++];
            fl_buf_init(&p->value);
        }
        p->state = PROC_OPEN;
        p->invoke_line = ev->line;
        p->f_id = (uint32_t)f_id;
        p->key_id = key_id;
        fl_buf_clear(&p->value);
        if (classify(ev->f) == F_WRITE || classify(ev->f) == F_CAS ||
            classify(ev->f) == F_PUT) {
            fl_json_write(&p->value, &ev->value);
            if (p->value.failed)
                return -ENOMEM;
        }
        t->open++;
        ev->invoke_line = 0;
    } else {
        enum known_f kind = classify(ev->f);
        if (p == NULL || p->state != PROC_OPEN)
            return fl_input_error(
                msg, msg_size,
                "%s completion for process %lld, which has no open "
                "invocation",
                fl_hist_type_name(ev->type), (long long)ev->process);
        if (p->f_id != (uint32_t)f_id) {
            struct fl_str want = fl_strtab_get(&t->names, p->f_id);
            return fl_input_error(
                msg, msg_size,
                "completion f \"%.*s\" differs from f \"%.*s\" of the "
                "open invocation on line %llu",
                (int)ev->f.len, ev->f.ptr, (int)want.len, want.ptr,
                (unsigned long long)p->invoke_line);
        }
        if (p->key_id != key_id)
            return fl_input_error(
                msg, msg_size,
                "completion key differs from the key of the open "
                "invocation on line %llu",
                (unsigned long long)p->invoke_line);
        /* A missing result would silently read as null. */
        if (kind == F_READ && ev->type == FL_HIST_OK && !ev->has_value)
            return fl_input_error(msg, msg_size,
                                  "an ok %.*s needs a value (null for an "
                                  "empty register)",
                                  (int)ev->f.len, ev->f.ptr);
        if ((kind == F_WRITE || kind == F_CAS || kind == F_PUT) &&
            ev->has_value && !same_value(t, p, &ev->value))
            return fl_input_error(
                msg, msg_size,
                "completion value differs from the value of the "
                "invocation on line %llu",
                (unsigned long long)p->invoke_line);
        ev->invoke_line = p->invoke_line;
        if (p->value.cap > KEEP_VALUE_BYTES)
            fl_buf_free(&p->value);
        p->state = ev->type == FL_HIST_INFO ? PROC_CRASHED : PROC_IDLE;
        if (ev->type == FL_HIST_INFO)
            p->invoke_line = ev->line;
        t->open--;
    }
    t->have_last = true;
    t->last_time = ev->time;
    if (ev->index >= 0)
        t->last_index = ev->index;
    return 0;
}

/* ---- reader ------------------------------------------------------------ */

#define READ_CHUNK (64u * 1024)

struct fl_hist_reader {
    int fd; /* -1 in memory mode */
    bool own_fd;
    bool eof;
    char *buf;
    size_t cap;
    size_t start; /* first unconsumed byte */
    size_t len;   /* bytes of valid data in buf */
    const char *mem;
    size_t mem_len;
    uint64_t line;
    int rc;                /* sticky error */
    struct fl_arena arena; /* one line's parsed values */
    struct fl_hist_tracker tracker;
    struct fl_budget *budget;
    char name[256];
    char error[768];
};

static int reader_new(struct fl_hist_reader **out, const char *name,
                      struct fl_budget *budget)
{
    struct fl_hist_reader *r = calloc(1, sizeof(*r));

    *out = NULL;
    if (r == NULL)
        return -ENOMEM;
    r->fd = -1;
    r->budget = budget;
    snprintf(r->name, sizeof(r->name), "%s", name);
    fl_arena_init(&r->arena, 16 * 1024, budget);
    fl_hist_tracker_init(&r->tracker, budget);
    *out = r;
    return 0;
}

int fl_hist_reader_open(struct fl_hist_reader **out, const char *path,
                        struct fl_budget *budget)
{
    struct fl_hist_reader *r;
    bool is_stdin = strcmp(path, "-") == 0;
    int rc = reader_new(&r, is_stdin ? "<stdin>" : path, budget);

    *out = NULL;
    if (rc != 0)
        return rc;
    if (is_stdin) {
        r->fd = STDIN_FILENO;
    } else {
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0) {
            rc = -errno;
            fl_hist_reader_close(r);
            return rc;
        }
        r->own_fd = true;
    }
    /* The buffer starts small and doubles for long lines, each step
     * charged to the budget, so a tiny limit still reads small files. */
    if (fl_budget_charge(budget, READ_CHUNK) != 0) {
        fl_hist_reader_close(r);
        return FL_EBUDGET;
    }
    r->cap = READ_CHUNK;
    r->buf = malloc(r->cap);
    if (r->buf == NULL) {
        fl_hist_reader_close(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

int fl_hist_reader_open_mem(struct fl_hist_reader **out, const char *name,
                            const void *data, size_t len,
                            struct fl_budget *budget)
{
    struct fl_hist_reader *r;
    int rc = reader_new(&r, name, budget);

    *out = NULL;
    if (rc != 0)
        return rc;
    r->mem = data;
    r->mem_len = len;
    r->eof = true;
    *out = r;
    return 0;
}

void fl_hist_reader_close(struct fl_hist_reader *r)
{
    if (r == NULL)
        return;
    if (r->own_fd)
        close(r->fd);
    free(r->buf);
    fl_budget_release(r->budget, r->cap);
    fl_arena_destroy(&r->arena);
    fl_hist_tracker_destroy(&r->tracker);
    free(r);
}

const char *fl_hist_reader_error(const struct fl_hist_reader *r)
{
    return r->error;
}

size_t fl_hist_reader_open_count(const struct fl_hist_reader *r)
{
    return r->tracker.open;
}

uint64_t fl_hist_reader_line(const struct fl_hist_reader *r)
{
    return r->line;
}

static int reader_fail(struct fl_hist_reader *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reader_fail(struct fl_hist_reader *r, int rc, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(r->error, sizeof(r->error), "%s:%llu: ", r->name,
                     (unsigned long long)r->line);

    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(r->error))
        vsnprintf(r->error + n, sizeof(r->error) - (size_t)n, fmt, ap);
    va_end(ap);
    fl_scrub_controls(r->error);
    r->rc = rc;
    return rc;
}

/* Finds the next line; returns 1 with *line and *len set, 0 at the end. */
static int next_line(struct fl_hist_reader *r, const char **line, size_t *len)
{
    if (r->mem != NULL || r->fd < 0) {
        const char *p = r->mem + r->start;
        size_t left = r->mem_len - r->start;
        const char *nl;
        if (left == 0)
            return 0;
        nl = memchr(p, '\n', left);
        *line = p;
        *len = nl ? (size_t)(nl - p) : left;
        r->start += *len + (nl ? 1 : 0);
        return 1;
    }
    for (;;) {
        const char *p = r->buf + r->start;
        size_t left = r->len - r->start;
        const char *nl = memchr(p, '\n', left);
        ssize_t got;

        if (nl != NULL) {
            *line = p;
            *len = (size_t)(nl - p);
            r->start += *len + 1;
            return 1;
        }
        if (r->eof) {
            if (left == 0)
                return 0;
            *line = p;
            *len = left;
            r->start = r->len;
            return 1;
        }
        /* Move the partial line to the front, growing for long lines. */
        if (r->start > 0) {
            memmove(r->buf, p, left);
            r->len = left;
            r->start = 0;
        }
        if (r->len == r->cap) {
            if (r->cap > FL_HIST_MAX_LINE)
                return reader_fail(r, FL_EINPUT, "line longer than %u bytes",
                                   FL_HIST_MAX_LINE);
            if (fl_budget_charge(r->budget, r->cap) != 0)
                return reader_fail(r, FL_EBUDGET,
                                   "memory limit reached while reading");
            char *grown = realloc(r->buf, r->cap * 2);
            if (grown == NULL) {
                fl_budget_release(r->budget, r->cap);
                return reader_fail(r, -ENOMEM, "out of memory");
            }
            r->buf = grown;
            r->cap *= 2;
        }
        got = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            return reader_fail(r, -err, "read failed: %s", strerror(err));
        }
        if (got == 0)
            r->eof = true;
        r->len += (size_t)got;
    }
}

enum {
    FIELD_INDEX = 1 << 0,
    FIELD_TIME = 1 << 1,
    FIELD_PROCESS = 1 << 2,
    FIELD_TYPE = 1 << 3,
    FIELD_F = 1 << 4,
    FIELD_KEY = 1 << 5,
    FIELD_VALUE = 1 << 6,
};

static int field_bit(struct fl_str name)
{
    switch (name.len) {
    case 1:
        return name.ptr[0] == 'f' ? FIELD_F : 0;
    case 3:
        return memcmp(name.ptr, "key", 3) == 0 ? FIELD_KEY : 0;
    case 4:
        if (memcmp(name.ptr, "time", 4) == 0)
            return FIELD_TIME;
        return memcmp(name.ptr, "type", 4) == 0 ? FIELD_TYPE : 0;
    case 5:
        if (memcmp(name.ptr, "index", 5) == 0)
            return FIELD_INDEX;
        return memcmp(name.ptr, "value", 5) == 0 ? FIELD_VALUE : 0;
    case 7:
        return memcmp(name.ptr, "process", 7) == 0 ? FIELD_PROCESS : 0;
    default:
        return 0;
    }
}

static int parse_type(struct fl_str s, enum fl_hist_type *type)
{
    if (fl_str_eq(s, "invoke"))
        *type = FL_HIST_INVOKE;
    else if (fl_str_eq(s, "ok"))
        *type = FL_HIST_OK;
    else if (fl_str_eq(s, "fail"))
        *type = FL_HIST_FAIL;
    else if (fl_str_eq(s, "info"))
        *type = FL_HIST_INFO;
    else
        return -1;
    return 0;
}

static int decode_event(struct fl_hist_reader *r, const struct fl_json *obj,
                        struct fl_hist_event *ev)
{
    unsigned seen = 0;

    memset(ev, 0, sizeof(*ev));
    ev->index = -1;
    ev->value.kind = FL_JSON_NULL;
    ev->line = r->line;
    for (size_t i = 0; i < obj->u.object.count; i++) {
        const struct fl_json_member *m = &obj->u.object.members[i];
        const struct fl_json *v = &m->value;
        int bit = field_bit(m->key);

        if (bit == 0)
            continue; /* fields this reader does not use */
        if (seen & (unsigned)bit)
            return reader_fail(r, FL_EINPUT, "duplicate field \"%.*s\"",
                               (int)m->key.len, m->key.ptr);
        seen |= (unsigned)bit;
        switch (bit) {
        case FIELD_INDEX:
            if (v->kind == FL_JSON_INT && v->u.i < 0)
                return reader_fail(r, FL_EINPUT,
                                   "field \"index\" must be a non-negative "
                                   "integer, got %lld",
                                   (long long)v->u.i);
            if (v->kind != FL_JSON_INT)
                return reader_fail(r, FL_EINPUT,
                                   "field \"index\" must be a non-negative "
                                   "integer, got %s",
                                   fl_json_kind_name(v->kind));
            ev->index = v->u.i;
            break;
        case FIELD_TIME:
            if (v->kind != FL_JSON_INT)
                return reader_fail(r, FL_EINPUT,
                                   "field \"time\" must be an integer, got %s",
                                   fl_json_kind_name(v->kind));
            ev->time = v->u.i;
            break;
        case FIELD_PROCESS:
            if (v->kind != FL_JSON_INT)
                return reader_fail(r, FL_EINPUT,
                                   "field \"process\" must be an integer, "
                                   "got %s",
                                   fl_json_kind_name(v->kind));
            ev->process = v->u.i;
            break;
        case FIELD_TYPE:
            if (v->kind != FL_JSON_STRING)
                return reader_fail(r, FL_EINPUT,
                                   "field \"type\" must be a string, got %s",
                                   fl_json_kind_name(v->kind));
            if (parse_type(v->u.s, &ev->type) != 0)
                return reader_fail(r, FL_EINPUT,
                                   "unknown type \"%.*s\"; expected invoke, "
                                   "ok, fail or info",
                                   (int)(v->u.s.len > 40 ? 40 : v->u.s.len),
                                   v->u.s.ptr);
            break;
        case FIELD_F:
            if (v->kind != FL_JSON_STRING)
                return reader_fail(r, FL_EINPUT,
                                   "field \"f\" must be a string, got %s",
                                   fl_json_kind_name(v->kind));
            ev->f = v->u.s;
            break;
        case FIELD_KEY:
            if (v->kind != FL_JSON_STRING)
                return reader_fail(r, FL_EINPUT,
                                   "field \"key\" must be a string, got %s",
                                   fl_json_kind_name(v->kind));
            ev->key = v->u.s;
            break;
        case FIELD_VALUE:
            ev->value = *v;
            ev->has_value = true;
            break;
        }
    }
    if (!(seen & FIELD_PROCESS))
        return reader_fail(r, FL_EINPUT, "missing field \"process\"");
    if (!(seen & FIELD_TYPE))
        return reader_fail(r, FL_EINPUT, "missing field \"type\"");
    if (!(seen & FIELD_F))
        return reader_fail(r, FL_EINPUT, "missing field \"f\"");
    if (!(seen & FIELD_TIME))
        return reader_fail(r, FL_EINPUT, "missing field \"time\"");
    return 0;
}

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    }
    return true;
}

int fl_hist_reader_next(struct fl_hist_reader *r, struct fl_hist_event *ev)
{
    const char *line = NULL;
    size_t len = 0;
    struct fl_json obj;
    const char *why;
    size_t where;
    char msg[512];
    int rc;

    if (r->rc != 0)
        return r->rc;
    for (;;) {
        /* Count the line before reading it so read errors name it. */
        r->line++;
        rc = next_line(r, &line, &len);
        if (rc <= 0) {
            if (rc == 0)
                r->line--;
            return rc;
        }
        /* The file buffer grows past the limit, so check both modes here. */
        if (len > FL_HIST_MAX_LINE)
            return reader_fail(r, FL_EINPUT, "line longer than %u bytes",
                               FL_HIST_MAX_LINE);
        if (!is_blank(line, len))
            break;
    }
    fl_arena_reset(&r->arena);
    rc = fl_json_parse(&r->arena, line, len, &obj, &why, &where);
    if (rc == FL_EINPUT)
        return reader_fail(r, rc, "invalid JSON: %s at column %zu", why,
                           where + 1);
    if (rc != 0)
        return reader_fail(r, rc, "%s", fl_strerror(rc));
    if (obj.kind != FL_JSON_OBJECT)
        return reader_fail(r, FL_EINPUT, "expected a JSON object, got %s",
                           fl_json_kind_name(obj.kind));
    rc = decode_event(r, &obj, ev);
    if (rc != 0)
        return rc;
    rc = fl_hist_tracker_feed(&r->tracker, ev, msg, sizeof(msg));
    if (rc == FL_EINPUT)
        return reader_fail(r, rc, "%s", msg);
    if (rc != 0)
        return reader_fail(r, rc, "%s", fl_strerror(rc));
    return 1;
}

/* ---- writer ------------------------------------------------------------ */

struct fl_hist_writer {
    FILE *stream;
    bool own_stream;
    int rc; /* first I/O error */
    int64_t next_index;
    uint64_t lines; /* lines written, so messages can name a line */
    pthread_mutex_t lock;
    struct fl_hist_tracker tracker;
    struct fl_buf line;
    char error[512];
};

static int writer_new(struct fl_hist_writer **out, FILE *stream, bool own)
{
    struct fl_hist_writer *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return -ENOMEM;
    w->stream = stream;
    w->own_stream = own;
    pthread_mutex_init(&w->lock, NULL);
    fl_hist_tracker_init(&w->tracker, NULL);
    fl_buf_init(&w->line);
    *out = w;
    return 0;
}

int fl_hist_writer_open(struct fl_hist_writer **out, const char *path)
{
    FILE *f = fopen(path, "we");
    int rc;

    *out = NULL;
    if (f == NULL)
        return -errno;
    rc = writer_new(out, f, true);
    if (rc != 0)
        fclose(f);
    return rc;
}

int fl_hist_writer_stream(struct fl_hist_writer **out, FILE *stream)
{
    *out = NULL;
    return writer_new(out, stream, false);
}

void fl_hist_format(struct fl_buf *b, const struct fl_hist_event *ev)
{
    fl_buf_printf(b,
                  "{\"index\":%lld,\"time\":%lld,\"process\":%lld,"
                  "\"type\":\"%s\",\"f\":",
                  (long long)ev->index, (long long)ev->time,
                  (long long)ev->process, fl_hist_type_name(ev->type));
    fl_buf_add_json_string(b, ev->f.ptr, ev->f.len);
    if (ev->key.ptr != NULL) {
        fl_buf_adds(b, ",\"key\":");
        fl_buf_add_json_string(b, ev->key.ptr, ev->key.len);
    }
    /* Omit an absent value, because the reader would check a written null. */
    if (ev->has_value) {
        fl_buf_adds(b, ",\"value\":");
        fl_json_write(b, &ev->value);
    }
    fl_buf_addc(b, '}');
}

int fl_hist_writer_write(struct fl_hist_writer *w,
                         const struct fl_hist_event *ev)
{
    struct fl_hist_event copy = *ev;
    int rc;

    pthread_mutex_lock(&w->lock);
    if (w->rc != 0) {
        rc = w->rc;
        goto out;
    }
    if (copy.index < 0)
        copy.index = w->next_index;
    copy.line = w->lines + 1;
    rc = fl_hist_tracker_feed(&w->tracker, &copy, w->error, sizeof(w->error));
    if (rc != 0)
        goto out;
    w->next_index = copy.index + 1;
    fl_buf_clear(&w->line);
    fl_hist_format(&w->line, &copy);
    fl_buf_addc(&w->line, '\n');
    if (w->line.failed) {
        rc = w->rc = -ENOMEM;
        goto out;
    }
    errno = 0;
    if (fwrite(w->line.data, 1, w->line.len, w->stream) != w->line.len) {
        /* Keep the reason (ENOSPC, EIO...) when stdio left one. */
        int err = errno;
        rc = w->rc = err != 0 ? -err : -EIO;
    } else
        w->lines++;
out:
    pthread_mutex_unlock(&w->lock);
    return rc;
}

const char *fl_hist_writer_error(const struct fl_hist_writer *w)
{
    return w->error;
}

int fl_hist_writer_flush(struct fl_hist_writer *w)
{
    int rc;

    pthread_mutex_lock(&w->lock);
    if (w->rc == 0 && fflush(w->stream) != 0)
        w->rc = -errno;
    rc = w->rc;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int fl_hist_writer_close(struct fl_hist_writer *w)
{
    int rc;

    if (w == NULL)
        return 0;
    rc = fl_hist_writer_flush(w);
    if (w->own_stream) {
        if (rc == 0 && fsync(fileno(w->stream)) != 0)
            rc = -errno;
        if (fclose(w->stream) != 0 && rc == 0)
            rc = -errno;
    }
    fl_hist_tracker_destroy(&w->tracker);
    fl_buf_free(&w->line);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return rc;
}
