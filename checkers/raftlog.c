/*
 * The Raft log audit. See raftlog.h.
 */
#include "raftlog.h"

#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEPT 20   /* violations described in the report */
#define MAX_NODE 1024 /* node ids accepted */

/* The file and line of an event, for the report. */
struct origin {
    const char *file; /* interned */
    uint64_t line;
};

/* One claim per key: a term's leader, a node's vote in a term, the
 * command applied at an index. */
struct claim {
    uint64_t key1;
    uint64_t key2;
    uint64_t value;
    struct origin at;
    bool used;
};

struct claims {
    struct claim *v;
    size_t n;
    size_t cap;
};

/* A node's start: the term and vote it read from its storage. */
struct boot {
    uint64_t node, term, vote;
    struct origin at;
};

struct chk_raftlog {
    struct claims leaders; /* term -> node */
    struct claims votes;   /* (node, term) -> vote */
    struct claims applied; /* index -> term << 32 | hash */
    struct claims elected; /* (voter, term) -> the leader its vote elected */
    struct boot *boots;    /* every restart, checked against elected */
    size_t n_boots, cap_boots;
    /* The highest term each node is known to have made durable in the
     * current file: one it booted in or led (a leader's term was durable
     * before it asked for votes). Restarts are checked in a file's line
     * order, since only there is the order of a node's lines known. A
     * term it merely reached can be lost to a power cut before it was
     * saved, harmlessly, because nothing of it was sent yet. */
    uint64_t highest[MAX_NODE + 1];
    const char *current; /* the file the lines come from */
    uint64_t last_line;
    char **files;
    size_t n_files;
    struct fl_buf kept;
    struct chk_raftlog_stats stats;
};

/* ---- a small hash table of claims -------------------------------------- */

static struct claim *find(struct claims *c, uint64_t k1, uint64_t k2,
                          bool *fresh)
{
    if (c->n * 2 >= c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        struct claim *v = calloc(cap, sizeof(*v));
        if (v == NULL)
            return NULL;
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->v[i].used)
                continue;
            size_t j =
                (size_t)(c->v[i].key1 * 0x9e3779b97f4a7c15ull ^ c->v[i].key2) &
                (cap - 1);
            while (v[j].used)
                j = (j + 1) & (cap - 1);
            v[j] = c->v[i];
        }
        free(c->v);
        c->v = v;
        c->cap = cap;
    }
    size_t i = (size_t)(k1 * 0x9e3779b97f4a7c15ull ^ k2) & (c->cap - 1);
    while (c->v[i].used && (c->v[i].key1 != k1 || c->v[i].key2 != k2))
        i = (i + 1) & (c->cap - 1);
    *fresh = !c->v[i].used;
    if (*fresh) {
        c->v[i] = (struct claim){.key1 = k1, .key2 = k2, .used = true};
        c->n++;
    }
    return &c->v[i];
}

static const char *intern(struct chk_raftlog *a, const char *file)
{
    if (a->n_files > 0 && strcmp(a->files[a->n_files - 1], file) == 0)
        return a->files[a->n_files - 1];
    char **v = realloc(a->files, (a->n_files + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    a->files = v;
    v[a->n_files] = strdup(file);
    if (v[a->n_files] == NULL)
        return NULL;
    return a->files[a->n_files++];
}

static void violation(struct chk_raftlog *a, struct origin at, const char *fmt,
                      ...) __attribute__((format(printf, 3, 4)));

static void violation(struct chk_raftlog *a, struct origin at, const char *fmt,
                      ...)
{
    va_list ap;

    if (a->stats.violations++ >= MAX_KEPT)
        return;
    fl_buf_printf(&a->kept, "%s:%" PRIu64 ": ", at.file, at.line);
    char text[512];
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    fl_buf_adds(&a->kept, text);
    fl_buf_addc(&a->kept, '\n');
}

/* ---- parsing ----------------------------------------------------------- */

/* Finds " name=" (or name= at the start) in text and returns its value,
 * up to the next space, in *value. */
static bool field(const char *text, size_t len, const char *name,
                  const char **value, size_t *vlen)
{
    size_t nlen = strlen(name);

    for (size_t i = 0; i + nlen + 1 <= len; i++) {
        if ((i == 0 || text[i - 1] == ' ') &&
            memcmp(text + i, name, nlen) == 0 && text[i + nlen] == '=') {
            size_t start = i + nlen + 1, end = start;
            while (end < len && text[end] != ' ')
                end++;
            *value = text + start;
            *vlen = end - start;
            return true;
        }
    }
    return false;
}

static bool number(const char *text, size_t len, const char *name,
                   uint64_t *out)
{
    const char *v;
    size_t n;
    uint64_t x = 0;

    if (!field(text, len, name, &v, &n) || n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' ||
            x > (UINT64_MAX - (uint64_t)(v[i] - '0')) / 10)
            return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return true;
}

static bool is(const char *v, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(v, word, n) == 0;
}

int chk_raftlog_new(struct chk_raftlog **out)
{
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return -ENOMEM;
    fl_buf_init(&(*out)->kept);
    return 0;
}

void chk_raftlog_free(struct chk_raftlog *a)
{
    if (a == NULL)
        return;
    free(a->leaders.v);
    free(a->votes.v);
    free(a->applied.v);
    free(a->elected.v);
    free(a->boots);
    for (size_t i = 0; i < a->n_files; i++)
        free(a->files[i]);
    free(a->files);
    fl_buf_free(&a->kept);
    free(a);
}

int chk_raftlog_feed(struct chk_raftlog *a, const char *file, uint64_t line,
                     const char *text, size_t len, char *err, size_t errsize)
{
    const char *comp, *msg;
    size_t clen, mlen;
    uint64_t node, term, vote, index, hash;
    struct claim *c;
    bool fresh;

    static const char *const events[] = {"boot",   "term",   "vote",
                                         "leader", "append", "truncate",
                                         "commit", "apply",  "snapshot"};
    bool event = false;

    if (!field(text, len, "comp", &comp, &clen) || !is(comp, clen, "raft") ||
        !field(text, len, "msg", &msg, &mlen))
        return 0;
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        event |= is(msg, mlen, events[i]);
    if (!event)
        return 0; /* another raft message, such as the storage's */
    if (!number(text, len, "node", &node) ||
        !number(text, len, "term", &term) ||
        !number(text, len, "vote", &vote) ||
        !number(text, len, "index", &index) ||
        !number(text, len, "hash", &hash))
        return fl_input_error(err, errsize,
                              "%s:%" PRIu64 ": a raft event without numeric "
                              "node, term, vote, index and hash fields",
                              file, line);
    if (node == 0 || node > MAX_NODE)
        return fl_input_error(
            err, errsize, "%s:%" PRIu64 ": node %" PRIu64 ": expected 1 to %d",
            file, line, node, MAX_NODE);
    struct origin at = {intern(a, file), line};
    if (at.file == NULL)
        return -ENOMEM;
    /* Line numbers that start over mean another file, or the same one
     * given again. */
    if (at.file != a->current || line <= a->last_line) {
        memset(a->highest, 0, sizeof(a->highest));
        a->current = at.file;
    }
    a->last_line = line;
    a->stats.events++;
    if (is(msg, mlen, "boot")) {
        a->stats.boots++;
        if (a->n_boots == a->cap_boots) {
            size_t cap = a->cap_boots ? a->cap_boots * 2 : 64;
            struct boot *v = realloc(a->boots, cap * sizeof(*v));
            if (v == NULL)
                return -ENOMEM;
            a->boots = v;
            a->cap_boots = cap;
        }
        a->boots[a->n_boots++] = (struct boot){node, term, vote, at};
        if (term < a->highest[node])
            violation(a, at,
                      "node %" PRIu64 " restarted in term %" PRIu64
                      " after reaching term %" PRIu64,
                      node, term, a->highest[node]);
    }
    if ((is(msg, mlen, "boot") || is(msg, mlen, "leader")) &&
        term > a->highest[node])
        a->highest[node] = term;
    if (is(msg, mlen, "leader")) {
        uint64_t voters = 0;
        a->stats.leaders++;
        /* Older logs have no voters field. */
        if (number(text, len, "voters", &voters)) {
            for (uint64_t v = 1; v <= MAX_NODE && v < 64; v++) {
                if (v == node || !(voters & (UINT64_C(1) << v)))
                    continue;
                if ((c = find(&a->elected, v, term, &fresh)) == NULL)
                    return -ENOMEM;
                c->value = node;
                c->at = at;
            }
        }
        if ((c = find(&a->leaders, term, 0, &fresh)) == NULL)
            return -ENOMEM;
        if (fresh) {
            c->value = node;
            c->at = at;
        } else if (c->value != node) {
            violation(a, at,
                      "election safety: nodes %" PRIu64 " and %" PRIu64
                      " both led term %" PRIu64 " (the first at %s:%" PRIu64
                      ")",
                      c->value, node, term, c->at.file, c->at.line);
        }
    } else if (is(msg, mlen, "vote")) {
        a->stats.votes++;
        if ((c = find(&a->votes, node, term, &fresh)) == NULL)
            return -ENOMEM;
        if (fresh) {
            c->value = vote;
            c->at = at;
        } else if (c->value != vote) {
            violation(a, at,
                      "node %" PRIu64 " voted for %" PRIu64 " and %" PRIu64
                      " in term %" PRIu64 " (the first vote at %s:%" PRIu64 ")",
                      node, c->value, vote, term, c->at.file, c->at.line);
        }
    } else if (is(msg, mlen, "apply")) {
        uint64_t id = term << 32 | (hash & 0xffffffffu);
        a->stats.applies++;
        if ((c = find(&a->applied, index, 0, &fresh)) == NULL)
            return -ENOMEM;
        if (fresh) {
            c->value = id;
            c->at = at;
        } else if (c->value != id) {
            violation(a, at,
                      "state machine safety: node %" PRIu64
                      " applied term %" PRIu64 " hash %" PRIu64
                      " at index %" PRIu64 ", but %s:%" PRIu64
                      " applied term %" PRIu64 " hash %" PRIu64,
                      node, term, hash, index, c->at.file, c->at.line,
                      c->value >> 32, c->value & 0xffffffffu);
        }
    }
    return a->kept.failed ? -ENOMEM : 0;
}

/* Looks a claim up without adding it. */
static const struct claim *lookup(const struct claims *c, uint64_t k1,
                                  uint64_t k2)
{
    if (c->cap == 0)
        return NULL;
    size_t i = (size_t)(k1 * 0x9e3779b97f4a7c15ull ^ k2) & (c->cap - 1);
    while (c->v[i].used) {
        if (c->v[i].key1 == k1 && c->v[i].key2 == k2)
            return &c->v[i];
        i = (i + 1) & (c->cap - 1);
    }
    return NULL;
}

void chk_raftlog_report(const struct chk_raftlog *a, struct fl_buf *out,
                        struct chk_raftlog_stats *stats)
{
    if (a->kept.len > 0)
        fl_buf_add(out, a->kept.data, a->kept.len);
    *stats = a->stats;
    /* A vote a leader counted was durable before it was sent, so after
     * the voter traced it, the voter must never boot below its term, nor
     * in its term with another vote. The leader's line can be in any file,
     * which is why this waits for the end. */
    for (size_t i = 0; i < a->n_boots; i++) {
        const struct boot *b = &a->boots[i];
        for (size_t k = 0; k < a->votes.cap; k++) {
            const struct claim *v = &a->votes.v[k];
            if (!v->used || v->key1 != b->node || v->key2 < b->term ||
                v->at.file != b->at.file || v->at.line > b->at.line)
                continue;
            const struct claim *c = lookup(&a->elected, b->node, v->key2);
            if (c == NULL || c->value != v->value)
                continue; /* no leader counted this vote */
            if (v->key2 == b->term && b->vote == v->value)
                continue;
            if (stats->violations++ >= MAX_KEPT)
                continue;
            if (v->key2 > b->term)
                fl_buf_printf(out,
                              "%s:%" PRIu64 ": node %" PRIu64
                              " restarted in term %" PRIu64
                              ", below term %" PRIu64
                              " in which its vote had elected node %" PRIu64
                              " (%s:%" PRIu64 "): the term was not durable\n",
                              b->at.file, b->at.line, b->node, b->term, v->key2,
                              c->value, c->at.file, c->at.line);
            else
                fl_buf_printf(
                    out,
                    "%s:%" PRIu64 ": node %" PRIu64
                    " restarted in term %" PRIu64 " with vote %" PRIu64
                    ", but its vote in that term had elected node "
                    "%" PRIu64 " (%s:%" PRIu64 "): the vote was not durable\n",
                    b->at.file, b->at.line, b->node, b->term, b->vote, c->value,
                    c->at.file, c->at.line);
        }
    }
}
