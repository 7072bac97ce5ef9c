/*
 * Tests for the crash-consistent key-value engine (systems/kv): record and
 * segment framing, torn-tail repair at every byte offset, mid-log damage,
 * snapshots against a model, sticky failure, recovery crashed at each of
 * its steps, the planted bugs, kv_apply, durable reads, group commit and
 * the data directory's lock and leftovers, manual mode on the simulated
 * disk, and the export and import of the whole state.
 *
 * Every case works in its own mkdtemp directory under /tmp and removes it,
 * also when an assertion fails. Randomized cases loop over seeds and print
 * the seed in every failure message.
 */
#include "engine.h"
#include "crc32c.h"
#include "disk.h"
#include "error.h"
#include "log.h"
#include "record.h"
#include "rng.h"
#include "snapshot.h"
#include "vfs_fault.h"
#include "watermark.h"
#include "wal.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_SIZE 4096
#define NAME_SIZE 256

/* ---- failure context --------------------------------------------------- */

/* What the running case is doing (seed, cut offset, crash step), printed
 * at the start of every failure message of the helpers. */
static char ctx[512] = "";

static void set_ctx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void set_ctx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ctx, sizeof(ctx), fmt, ap);
    va_end(ap);
}

/* ---- scratch directories ----------------------------------------------- */

static void join_path(char *path, size_t size, const char *dir,
                      const char *name)
{
    int n = snprintf(path, size, "%s/%s", dir, name);

    ck_assert_msg(n > 0 && (size_t)n < size, "path %s/%s is too long", dir,
                  name);
}

/*
 * Each test case gets its own mkdtemp directory, scratch_dir, inside a
 * directory /tmp/fl-kv-test.XXXXXX that the parent process makes for each
 * TCase. A failed assertion ends a forked case without running the checked
 * teardown or atexit handlers, so the parent removes what a failed case
 * left.
 */
static char tcase_root[64];
static char scratch_dir[128];

/* Removes path and, for a directory, everything under it. */
static void remove_tree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        char child[PATH_SIZE];
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
        remove_tree(child);
    }
    if (d != NULL)
        closedir(d);
    rmdir(path);
}

/* Unchecked fixture: runs in the parent around each TCase. */
static void tcase_root_setup(void)
{
    snprintf(tcase_root, sizeof(tcase_root), "/tmp/fl-kv-test.XXXXXX");
    if (mkdtemp(tcase_root) == NULL) {
        perror("mkdtemp /tmp/fl-kv-test.XXXXXX");
        exit(EXIT_FAILURE);
    }
}

static void tcase_root_teardown(void)
{
    remove_tree(tcase_root);
}

/* Checked fixture: runs in the forked child around each test case. */
static void scratch_setup(void)
{
    snprintf(scratch_dir, sizeof(scratch_dir), "%s/case.XXXXXX", tcase_root);
    ck_assert_msg(mkdtemp(scratch_dir) != NULL, "mkdtemp %s: %s", scratch_dir,
                  strerror(errno));
    ctx[0] = '\0';
}

static void scratch_teardown(void)
{
    remove_tree(scratch_dir);
}

/* Fills path with scratch_dir/name (not created). */
static void scratch_path(char *path, size_t size, const char *name)
{
    join_path(path, size, scratch_dir, name);
}

/* ---- files ------------------------------------------------------------- */

/* Returns the content of path, malloc'd, with its length in *len. */
static unsigned char *read_file(const char *path, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY);

    ck_assert_msg(fd >= 0, "%s: cannot open %s: %s", ctx, path,
                  strerror(errno));
    ck_assert_int_eq(fstat(fd, &st), 0);
    unsigned char *data = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(data);
    ck_assert_msg(pread(fd, data, (size_t)st.st_size, 0) == st.st_size,
                  "%s: short read of %s", ctx, path);
    close(fd);
    *len = (size_t)st.st_size;
    return data;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    ck_assert_msg(fd >= 0, "%s: cannot create %s: %s", ctx, path,
                  strerror(errno));
    ck_assert_msg(write(fd, data, len) == (ssize_t)len, "%s: short write",
                  path);
    close(fd);
}

static void append_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND);

    ck_assert_msg(fd >= 0, "%s: cannot open %s: %s", ctx, path,
                  strerror(errno));
    ck_assert_msg(write(fd, data, len) == (ssize_t)len, "%s: short write",
                  path);
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat st;

    ck_assert_msg(stat(path, &st) == 0, "%s: cannot stat %s: %s", ctx, path,
                  strerror(errno));
    return st.st_size;
}

static bool file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* XORs the byte at off with mask. */
static void flip_byte(const char *path, off_t off, unsigned char mask)
{
    unsigned char c;
    int fd = open(path, O_RDWR);

    ck_assert_msg(fd >= 0, "%s: cannot open %s", ctx, path);
    ck_assert_int_eq(pread(fd, &c, 1, off), 1);
    c ^= mask;
    ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void cut_file(const char *path, off_t len)
{
    ck_assert_msg(truncate(path, len) == 0, "%s: cannot truncate %s: %s", ctx,
                  path, strerror(errno));
}

/* Copies the regular files of directory from into directory to, which is
 * created when missing. */
static void copy_dir(const char *from, const char *to)
{
    DIR *d = opendir(from);
    struct dirent *de;

    ck_assert_msg(d != NULL, "%s: cannot open %s", ctx, from);
    ck_assert(mkdir(to, 0755) == 0 || errno == EEXIST);
    while ((de = readdir(d)) != NULL) {
        char src[PATH_SIZE];
        char dst[PATH_SIZE];
        struct stat st;
        join_path(src, sizeof(src), from, de->d_name);
        if (lstat(src, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        join_path(dst, sizeof(dst), to, de->d_name);
        size_t len;
        unsigned char *data = read_file(src, &len);
        write_file(dst, data, len);
        free(data);
    }
    closedir(d);
}

/* Makes directory to an exact copy of directory from. */
static void reset_dir(const char *from, const char *to)
{
    remove_tree(to);
    copy_dir(from, to);
}

static bool has_affixes(const char *name, const char *prefix,
                        const char *suffix)
{
    size_t n = strlen(name);
    size_t p = strlen(prefix);
    size_t s = strlen(suffix);

    return n >= p + s && strncmp(name, prefix, p) == 0 &&
           strcmp(name + n - s, suffix) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Returns the sorted names in dir with prefix and suffix, malloc'd, and
 * their count in *n. Segment and snapshot names are zero-padded, so the
 * order is their sequence order. */
static char (*list_names(const char *dir, const char *prefix,
                         const char *suffix, size_t *n))[NAME_SIZE]
{
    char(*names)[NAME_SIZE] = NULL;
    size_t cap = 0;
    DIR *d = opendir(dir);
    struct dirent *de;

    *n = 0;
    ck_assert_msg(d != NULL, "%s: cannot open %s", ctx, dir);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !has_affixes(de->d_name, prefix, suffix) ||
            strlen(de->d_name) >= NAME_SIZE)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            names = realloc(names, cap * sizeof(*names));
            ck_assert_ptr_nonnull(names);
        }
        snprintf(names[(*n)++], NAME_SIZE, "%s", de->d_name);
    }
    closedir(d);
    if (*n > 1)
        qsort(names, *n, sizeof(*names), cmp_names);
    return names;
}

static size_t count_names(const char *dir, const char *prefix,
                          const char *suffix)
{
    size_t n;

    free(list_names(dir, prefix, suffix, &n));
    return n;
}

/* Fills path with the i-th segment of dir in sequence order (negative i
 * counts from the newest) and returns the number of segments. */
static size_t segment_path(char *path, size_t size, const char *dir, long i)
{
    size_t n;
    char(*names)[NAME_SIZE] = list_names(dir, "wal-", ".log", &n);

    ck_assert_msg(n > 0, "%s: no segment in %s", ctx, dir);
    size_t at = i < 0 ? n - (size_t)(-i) : (size_t)i;
    ck_assert_msg(at < n, "%s: segment %ld of %zu", ctx, i, n);
    join_path(path, size, dir, names[at]);
    free(names);
    return n;
}

/* Walks the record headers of a segment file. Fills starts with the offset
 * of each whole record and returns their count; *end is where the last
 * whole record ends. */
static size_t segment_records(const char *path, off_t *starts, size_t max,
                              off_t *end)
{
    size_t len;
    unsigned char *data = read_file(path, &len);
    size_t off = KV_SEG_HEADER;
    size_t n = 0;

    while (off + KV_REC_HEADER <= len && n < max) {
        size_t plen;
        const char *why;
        if (kv_rec_check_header(data + off, &plen, &why) != 0 ||
            off + KV_REC_HEADER + plen > len)
            break;
        starts[n++] = (off_t)off;
        off += KV_REC_HEADER + plen;
    }
    free(data);
    if (end != NULL)
        *end = (off_t)off;
    return n;
}

/* The names and contents of every file in a directory. */
struct dir_image {
    char (*names)[NAME_SIZE];
    unsigned char **data;
    size_t *lens;
    size_t n;
};

static void image_take(struct dir_image *im, const char *dir)
{
    im->names = list_names(dir, "", "", &im->n);
    im->data = calloc(im->n + 1, sizeof(*im->data));
    im->lens = calloc(im->n + 1, sizeof(*im->lens));
    ck_assert(im->data != NULL && im->lens != NULL);
    for (size_t i = 0; i < im->n; i++) {
        char path[PATH_SIZE];
        join_path(path, sizeof(path), dir, im->names[i]);
        im->data[i] = read_file(path, &im->lens[i]);
    }
}

static void image_free(struct dir_image *im)
{
    for (size_t i = 0; i < im->n; i++)
        free(im->data[i]);
    free(im->data);
    free(im->lens);
    free(im->names);
}

static void image_expect_same(const struct dir_image *before,
                              const struct dir_image *after)
{
    ck_assert_msg(before->n == after->n, "%s: %zu files before, %zu after", ctx,
                  before->n, after->n);
    for (size_t i = 0; i < before->n; i++) {
        ck_assert_msg(strcmp(before->names[i], after->names[i]) == 0,
                      "%s: file %s became %s", ctx, before->names[i],
                      after->names[i]);
        ck_assert_msg(before->lens[i] == after->lens[i],
                      "%s: %s changed size from %zu to %zu", ctx,
                      before->names[i], before->lens[i], after->lens[i]);
        ck_assert_msg(
            before->lens[i] == 0 ||
                memcmp(before->data[i], after->data[i], before->lens[i]) == 0,
            "%s: %s changed content", ctx, before->names[i]);
    }
}

/* Returns true when text contains "offset N" with no digit after N. */
static bool mentions_offset(const char *text, off_t off)
{
    char want[64];
    const char *p = text;

    snprintf(want, sizeof(want), "offset %lld", (long long)off);
    while ((p = strstr(p, want)) != NULL) {
        char next = p[strlen(want)];
        if (next < '0' || next > '9')
            return true;
        p++;
    }
    return false;
}

/* ---- engine helpers ---------------------------------------------------- */

static struct fl_str str(const char *s)
{
    return fl_str_of(s);
}

static struct fl_str bytes(const void *p, size_t len)
{
    struct fl_str s = {p, len};
    return s;
}

static struct kv_options options(void)
{
    struct kv_options o;

    kv_options_default(&o);
    return o;
}

static struct kv_engine *open_ok(const char *dir, const struct kv_options *o)
{
    struct kv_engine *e = NULL;
    char err[1024] = "";
    int rc = kv_open(dir, o, &e, err, sizeof(err));

    ck_assert_msg(rc == 0, "%s: kv_open %s failed: %s (%s)", ctx, dir,
                  fl_strerror(rc), err);
    ck_assert_ptr_nonnull(e);
    return e;
}

static uint64_t put_ok(struct kv_engine *e, const char *key,
                       struct fl_str value)
{
    uint64_t wait = 0;
    int rc = kv_put(e, str(key), value, &wait);

    ck_assert_msg(rc == 0, "%s: kv_put %s: %s", ctx, key, fl_strerror(rc));
    ck_assert_msg(wait > 0, "%s: kv_put %s returned wait 0", ctx, key);
    return wait;
}

static uint64_t put_durable(struct kv_engine *e, const char *key,
                            const char *value)
{
    uint64_t seq = put_ok(e, key, str(value));
    int rc = kv_wait(e, seq);

    ck_assert_msg(rc == 0, "%s: kv_wait %" PRIu64 ": %s", ctx, seq,
                  fl_strerror(rc));
    return seq;
}

/* Checks that key contains want (NULL: absent). */
static void expect_value(struct kv_engine *e, const char *key, const char *want)
{
    struct fl_buf v;
    bool found = false;
    uint64_t wait;

    fl_buf_init(&v);
    int rc = kv_get(e, str(key), &v, &found, &wait);
    ck_assert_msg(rc == 0, "%s: kv_get %s: %s", ctx, key, fl_strerror(rc));
    if (want == NULL) {
        ck_assert_msg(!found, "%s: %s should be absent, holds \"%.*s\"", ctx,
                      key, (int)v.len, v.data ? v.data : "");
    } else {
        ck_assert_msg(found, "%s: %s should hold \"%s\", is absent", ctx, key,
                      want);
        ck_assert_msg(v.len == strlen(want) && memcmp(v.data, want, v.len) == 0,
                      "%s: %s holds \"%.*s\", expected \"%s\"", ctx, key,
                      (int)v.len, v.data, want);
    }
    fl_buf_free(&v);
}

static struct kv_stats stats_of(struct kv_engine *e)
{
    struct kv_stats s;

    kv_stats(e, &s);
    return s;
}

/* ---- model ------------------------------------------------------------- */

/* A model of the engine over the key space k00..k15. */
#define NKEYS     16
#define MAX_VALUE 48

struct model {
    bool present[NKEYS];
    size_t len[NKEYS];
    unsigned char value[NKEYS][MAX_VALUE];
};

static void key_name(char *key, size_t size, int i)
{
    snprintf(key, size, "k%02d", i);
}

static void model_set(struct model *m, int i, const void *value, size_t len)
{
    ck_assert_uint_le(len, MAX_VALUE);
    m->present[i] = true;
    m->len[i] = len;
    if (len > 0)
        memcpy(m->value[i], value, len);
}

static uint64_t model_count(const struct model *m)
{
    uint64_t n = 0;

    for (int i = 0; i < NKEYS; i++)
        n += m->present[i];
    return n;
}

static bool model_value_is(const struct model *m, int i, struct fl_str v)
{
    return m->present[i] && m->len[i] == v.len &&
           (v.len == 0 || memcmp(m->value[i], v.ptr, v.len) == 0);
}

/* Checks one key of the engine against the model. */
static void model_expect_key(struct kv_engine *e, const struct model *m, int i,
                             const char *what)
{
    char key[16];
    struct fl_buf v;
    bool found = false;
    uint64_t wait;

    key_name(key, sizeof(key), i);
    fl_buf_init(&v);
    int rc = kv_get(e, str(key), &v, &found, &wait);
    ck_assert_msg(rc == 0, "%s: %s: kv_get %s: %s", ctx, what, key,
                  fl_strerror(rc));
    ck_assert_msg(found == m->present[i], "%s: %s: %s is %s, model has it %s",
                  ctx, what, key, found ? "present" : "absent",
                  m->present[i] ? "present" : "absent");
    if (found) {
        ck_assert_msg(
            v.len == m->len[i] &&
                (v.len == 0 || memcmp(v.data, m->value[i], v.len) == 0),
            "%s: %s: %s holds %zu bytes that differ from the "
            "model's %zu",
            ctx, what, key, v.len, m->len[i]);
    }
    fl_buf_free(&v);
}

/* Checks every key and the key count of the engine against the model. */
static void model_expect(struct kv_engine *e, const struct model *m,
                         const char *what)
{
    for (int i = 0; i < NKEYS; i++)
        model_expect_key(e, m, i, what);
    struct kv_stats s = stats_of(e);
    ck_assert_msg(s.keys == model_count(m),
                  "%s: %s: engine has %" PRIu64 " keys, model %" PRIu64, ctx,
                  what, s.keys, model_count(m));
}

/* Reads the engine's values of the key space into m. */
static void model_read(struct kv_engine *e, struct model *m)
{
    memset(m, 0, sizeof(*m));
    for (int i = 0; i < NKEYS; i++) {
        char key[16];
        struct fl_buf v;
        bool found = false;
        uint64_t wait;
        key_name(key, sizeof(key), i);
        fl_buf_init(&v);
        ck_assert_int_eq(kv_get(e, str(key), &v, &found, &wait), 0);
        if (found)
            model_set(m, i, v.data, v.len);
        fl_buf_free(&v);
    }
}

/* ---- 1. framing -------------------------------------------------------- */

static void fill_pattern(unsigned char *p, size_t len, unsigned salt)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 31 + salt);
}

START_TEST(test_record_round_trip)
{
    static const size_t lens[] = {0, 1, 7, 100, 4096};
    static const uint64_t seqs[] = {0, 1, 42, UINT64_MAX};
    static const enum kv_rec_type types[] = {KV_REC_PUT, KV_REC_DELETE,
                                             KV_REC_BATCH};
    unsigned char payload[4096];

    for (size_t t = 0; t < 3; t++) {
        for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
            for (size_t s = 0; s < sizeof(seqs) / sizeof(seqs[0]); s++) {
                struct fl_buf b;
                struct kv_rec rec;
                const char *why = NULL;
                size_t hlen = 0;
                fill_pattern(payload, lens[l], (unsigned)(t + s));
                fl_buf_init(&b);
                kv_rec_encode(&b, types[t], seqs[s], payload, lens[l]);
                ck_assert(!b.failed);
                ck_assert_uint_eq(b.len, KV_REC_HEADER + lens[l]);

                /* The layout documented in record.h. */
                const unsigned char *h = (const unsigned char *)b.data;
                ck_assert(memcmp(h, "FLKR", 4) == 0);
                ck_assert_uint_eq(h[4], KV_REC_VERSION);
                ck_assert_uint_eq(h[5], types[t]);
                ck_assert(h[6] == 0 && h[7] == 0);
                ck_assert_uint_eq(kv_get_u32(h + 8), lens[l]);
                ck_assert(kv_get_u64(h + 12) == seqs[s]);
                uint32_t crc = fl_crc32c(0, h, 20);
                crc = fl_crc32c(crc, h + KV_REC_HEADER, lens[l]);
                ck_assert_uint_eq(kv_get_u32(h + 20), crc);

                ck_assert_int_eq(kv_rec_check_header(h, &hlen, &why), 0);
                ck_assert_uint_eq(hlen, lens[l]);
                ck_assert_int_eq(kv_rec_decode(h, b.len, true, &rec, &why), 0);
                ck_assert_int_eq(rec.type, types[t]);
                ck_assert(rec.seq == seqs[s]);
                ck_assert_uint_eq(rec.len, lens[l]);
                ck_assert_ptr_eq(rec.payload, h + KV_REC_HEADER);
                ck_assert(lens[l] == 0 ||
                          memcmp(rec.payload, payload, lens[l]) == 0);
                fl_buf_free(&b);
            }
        }
    }
}
END_TEST

START_TEST(test_record_crc_catches_every_bit_flip)
{
    unsigned char payload[40];
    struct fl_buf b;

    fill_pattern(payload, sizeof(payload), 3);
    fl_buf_init(&b);
    kv_rec_encode(&b, KV_REC_PUT, 77, payload, sizeof(payload));
    ck_assert(!b.failed);
    size_t total = b.len;
    unsigned char *copy = malloc(total);
    ck_assert_ptr_nonnull(copy);

    for (size_t bit = 0; bit < total * 8; bit++) {
        struct kv_rec rec;
        const char *why = NULL;
        const char *hwhy = NULL;
        size_t len;
        memcpy(copy, b.data, total);
        copy[bit / 8] ^= (unsigned char)(1u << (bit % 8));

        /* The CRC alone distinguishes the flipped record from the original. */
        uint32_t crc = fl_crc32c(0, copy, 20);
        crc = fl_crc32c(crc, copy + KV_REC_HEADER, total - KV_REC_HEADER);
        ck_assert_msg(crc != kv_get_u32(copy + 20),
                      "bit %zu (byte %zu): CRC32C still matches", bit, bit / 8);

        int rc = kv_rec_decode(copy, total, true, &rec, &why);
        ck_assert_msg(rc == FL_ECORRUPT, "bit %zu (byte %zu): decoded", bit,
                      bit / 8);
        /* Where the header stays well-formed, only the CRC can reject. */
        if (kv_rec_check_header(copy, &len, &hwhy) == 0 &&
            KV_REC_HEADER + len == total) {
            ck_assert_msg(why != NULL && strstr(why, "checksum") != NULL,
                          "bit %zu (byte %zu): rejected for \"%s\", not the "
                          "checksum",
                          bit, bit / 8, why ? why : "(null)");
            ck_assert_msg(kv_rec_decode(copy, total, false, &rec, &why) == 0,
                          "bit %zu: rejected without the CRC check", bit);
        }
    }
    free(copy);
    fl_buf_free(&b);
}
END_TEST

/* One damaged header field, with the CRC recomputed so only that field is
 * wrong, and a word its rejection reason must contain. */
struct header_case {
    const char *name;
    size_t off;
    size_t width; /* 1 or 4 bytes */
    uint32_t value;
    const char *reason;
};

static const struct header_case header_cases[] = {
    {"magic", 0, 4, 0x524b4c47u, "magic"},
    {"magic byte", 3, 1, 'r', "magic"},
    {"version 0", 4, 1, 0, "version"},
    {"version 2", 4, 1, 2, "version"},
    {"type 0", 5, 1, 0, "type"},
    {"type 4", 5, 1, 4, "type"},
    {"type 255", 5, 1, 255, "type"},
    {"reserved byte 6", 6, 1, 1, "reserved"},
    {"reserved byte 7", 7, 1, 0x80, "reserved"},
    {"length limit + 1", 8, 4, KV_REC_MAX_PAYLOAD + 1, "limit"},
    {"length UINT32_MAX", 8, 4, UINT32_MAX, "limit"},
};

START_TEST(test_record_header_check_rejects_field)
{
    const struct header_case *hc = &header_cases[_i];
    unsigned char payload[16];
    struct fl_buf b;
    struct kv_rec rec;
    const char *why = NULL;
    size_t len = 0;

    fill_pattern(payload, sizeof(payload), 9);
    fl_buf_init(&b);
    kv_rec_encode(&b, KV_REC_DELETE, 5, payload, sizeof(payload));
    unsigned char *h = (unsigned char *)b.data;
    if (hc->width == 4)
        kv_put_u32(h + hc->off, hc->value);
    else
        h[hc->off] = (unsigned char)hc->value;
    uint32_t crc = fl_crc32c(0, h, 20);
    kv_put_u32(h + 20, fl_crc32c(crc, h + KV_REC_HEADER, sizeof(payload)));

    ck_assert_msg(kv_rec_check_header(h, &len, &why) == FL_ECORRUPT,
                  "%s: header accepted", hc->name);
    ck_assert_msg(why != NULL && strstr(why, hc->reason) != NULL,
                  "%s: reason \"%s\" lacks \"%s\"", hc->name,
                  why ? why : "(null)", hc->reason);
    why = NULL;
    ck_assert_msg(kv_rec_decode(h, b.len, true, &rec, &why) == FL_ECORRUPT,
                  "%s: record decoded", hc->name);
    ck_assert_msg(why != NULL && strstr(why, hc->reason) != NULL,
                  "%s: decode reason \"%s\" lacks \"%s\"", hc->name,
                  why ? why : "(null)", hc->reason);
    fl_buf_free(&b);
}
END_TEST

START_TEST(test_record_length_bounds)
{
    unsigned char payload[8] = "abcdefgh";
    struct fl_buf b;
    struct kv_rec rec;
    const char *why = NULL;
    size_t len = 0;

    fl_buf_init(&b);
    kv_rec_encode(&b, KV_REC_PUT, 1, payload, sizeof(payload));
    unsigned char *h = (unsigned char *)b.data;

    /* The limit itself is a valid length. */
    unsigned char hdr[KV_REC_HEADER];
    memcpy(hdr, h, sizeof(hdr));
    kv_put_u32(hdr + 8, KV_REC_MAX_PAYLOAD);
    ck_assert_int_eq(kv_rec_check_header(hdr, &len, &why), 0);
    ck_assert_uint_eq(len, KV_REC_MAX_PAYLOAD);

    ck_assert_int_eq(kv_rec_decode(h, KV_REC_HEADER - 1, true, &rec, &why),
                     FL_ECORRUPT);
    ck_assert_int_eq(kv_rec_decode(h, b.len - 1, true, &rec, &why),
                     FL_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(why, "length"));
    fl_buf_add(&b, "x", 1);
    h = (unsigned char *)b.data;
    ck_assert_int_eq(kv_rec_decode(h, b.len, true, &rec, &why), FL_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(why, "length"));
    fl_buf_free(&b);
}
END_TEST

START_TEST(test_segment_header_round_trip)
{
    static const uint64_t seqs[] = {0, 1, 12345, UINT64_MAX};
    unsigned char hdr[KV_SEG_HEADER];

    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        uint64_t first = 0;
        const char *why = NULL;
        kv_seg_encode(hdr, seqs[i]);
        ck_assert(memcmp(hdr, "FLKG", 4) == 0);
        ck_assert_uint_eq(kv_get_u32(hdr + 4), KV_SEG_VERSION);
        ck_assert(kv_get_u64(hdr + 8) == seqs[i]);
        ck_assert_uint_eq(kv_get_u32(hdr + 28), fl_crc32c(0, hdr, 28));
        ck_assert_int_eq(kv_seg_decode(hdr, &first, &why), 0);
        ck_assert(first == seqs[i]);
    }
}
END_TEST

START_TEST(test_segment_header_rejections)
{
    unsigned char good[KV_SEG_HEADER];
    unsigned char hdr[KV_SEG_HEADER];
    uint64_t first;
    const char *why;

    kv_seg_encode(good, 9);
    for (size_t bit = 0; bit < KV_SEG_HEADER * 8; bit++) {
        memcpy(hdr, good, sizeof(hdr));
        hdr[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        why = NULL;
        ck_assert_msg(kv_seg_decode(hdr, &first, &why) == FL_ECORRUPT,
                      "bit %zu of the segment header flipped: accepted", bit);
        ck_assert_ptr_nonnull(why);
    }

    memcpy(hdr, good, sizeof(hdr));
    hdr[0] = 'X';
    kv_put_u32(hdr + 28, fl_crc32c(0, hdr, 28));
    ck_assert_int_eq(kv_seg_decode(hdr, &first, &why), FL_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(why, "magic"));

    memcpy(hdr, good, sizeof(hdr));
    kv_put_u32(hdr + 4, KV_SEG_VERSION + 1);
    kv_put_u32(hdr + 28, fl_crc32c(0, hdr, 28));
    ck_assert_int_eq(kv_seg_decode(hdr, &first, &why), FL_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(why, "version"));

    memcpy(hdr, good, sizeof(hdr));
    hdr[20] ^= 1; /* reserved area, covered by the CRC */
    ck_assert_int_eq(kv_seg_decode(hdr, &first, &why), FL_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(why, "checksum"));
}
END_TEST

/* ---- 2. torn tails ----------------------------------------------------- */

/* The last put of a torn-tail case: an overwrite, an empty value on a new
 * key, and a long value. */
struct torn_case {
    const char *key;
    size_t vlen;
};

static const struct torn_case torn_cases[] = {
    {"k00", 5},
    {"k05", 0},
    {"k06", 100},
};

/* Writes puts k00..k03 = "value-i" durably into dir and returns the
 * model. */
/*
 * Removes the watermark file that a clean kv_close left, so dir looks like
 * the image of a crash that came before the sync thread moved the
 * watermark past the newest records. Damage to those records is then a
 * torn tail, not corruption below the watermark.
 */
static void forget_watermark(const char *dir)
{
    char path[PATH_SIZE];

    join_path(path, sizeof(path), dir, KV_MARK_NAME);
    ck_assert_msg(unlink(path) == 0, "cannot delete %s: %s", path,
                  strerror(errno));
}

static void write_first_puts(struct kv_engine *e, struct model *m)
{
    memset(m, 0, sizeof(*m));
    for (int i = 0; i < 4; i++) {
        char key[16];
        char value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "value-%d", i);
        put_durable(e, key, value);
        model_set(m, i, value, strlen(value));
    }
}

START_TEST(test_wal_torn_tail_every_offset)
{
    const struct torn_case *tc = &torn_cases[_i];
    struct kv_options o = options();
    char orig[PATH_SIZE], work[PATH_SIZE], seg[PATH_SIZE], wseg[PATH_SIZE];
    char last[128];
    struct model before;
    struct model repaired;

    scratch_path(orig, sizeof(orig), "orig");
    scratch_path(work, sizeof(work), "work");
    struct kv_engine *e = open_ok(orig, &o);
    write_first_puts(e, &before);
    segment_path(seg, sizeof(seg), orig, -1);
    off_t start = file_size(seg);
    memset(last, 'z', sizeof(last));
    uint64_t seq = put_ok(e, tc->key, bytes(last, tc->vlen));
    ck_assert_int_eq(kv_wait(e, seq), 0);
    kv_close(e);
    forget_watermark(orig);
    off_t end = file_size(seg);
    ck_assert_int_eq(end - start,
                     (off_t)(KV_REC_HEADER + 4 + strlen(tc->key) + tc->vlen));

    repaired = before;
    model_set(&repaired, NKEYS - 1, "after", 5);
    for (off_t cut = start; cut < end; cut++) {
        set_ctx("case %d, segment cut to %lld bytes, last record at "
                "%lld..%lld",
                _i, (long long)cut, (long long)start, (long long)end);
        reset_dir(orig, work);
        segment_path(wseg, sizeof(wseg), work, -1);
        cut_file(wseg, cut);

        e = open_ok(work, &o);
        model_expect(e, &before, "first open");
        struct kv_stats s = stats_of(e);
        ck_assert_msg(s.last_seq == 4, "%s: last_seq %" PRIu64, ctx,
                      s.last_seq);
        ck_assert_msg(s.recovered == 4, "%s: recovered %" PRIu64, ctx,
                      s.recovered);
        ck_assert_msg(s.truncated == (uint64_t)(cut - start),
                      "%s: truncated %" PRIu64, ctx, s.truncated);
        ck_assert_msg(file_size(wseg) == start,
                      "%s: segment is %lld bytes after recovery", ctx,
                      (long long)file_size(wseg));
        kv_close(e);

        /* Recovery is idempotent. */
        e = open_ok(work, &o);
        model_expect(e, &before, "second open");
        s = stats_of(e);
        ck_assert_msg(s.truncated == 0 && s.last_seq == 4 && s.recovered == 4,
                      "%s: second open truncated %" PRIu64 ", last_seq "
                      "%" PRIu64 ", recovered %" PRIu64,
                      ctx, s.truncated, s.last_seq, s.recovered);
        kv_close(e);
        ck_assert_int_eq(file_size(wseg), start);

        /* A put right after the repair lands where the cut was. */
        reset_dir(orig, work);
        cut_file(wseg, cut);
        e = open_ok(work, &o);
        put_durable(e, "k15", "after");
        kv_close(e);
        e = open_ok(work, &o);
        model_expect(e, &repaired, "open after an append");
        ck_assert_uint_eq(stats_of(e).truncated, 0);
        kv_close(e);
    }
}
END_TEST

static const size_t zero_tails[] = {1, 23, 24, 25, 4096};

START_TEST(test_wal_zero_tail_truncated)
{
    size_t zeros = zero_tails[_i];
    struct kv_options o = options();
    char dir[PATH_SIZE], seg[PATH_SIZE];
    struct model m;

    set_ctx("%zu zero bytes after the last record", zeros);
    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    write_first_puts(e, &m);
    kv_close(e);
    segment_path(seg, sizeof(seg), dir, -1);
    off_t end = file_size(seg);
    unsigned char *pad = calloc(1, zeros);
    ck_assert_ptr_nonnull(pad);
    append_file(seg, pad, zeros);
    free(pad);

    e = open_ok(dir, &o);
    model_expect(e, &m, "first open");
    ck_assert_uint_eq(stats_of(e).truncated, zeros);
    kv_close(e);
    ck_assert_int_eq(file_size(seg), end);
    e = open_ok(dir, &o);
    model_expect(e, &m, "second open");
    ck_assert_uint_eq(stats_of(e).truncated, 0);
    kv_close(e);
    ck_assert_int_eq(file_size(seg), end);
}
END_TEST

/* ---- 3. mid-log damage ------------------------------------------------- */

/* Opens dir expecting FL_ECORRUPT that names file and offset, and checks
 * that the open changed no file. */
static void expect_damage(const char *dir, const struct kv_options *o,
                          const char *file, off_t off)
{
    struct dir_image before;
    struct dir_image after;
    struct kv_engine *e = NULL;
    char err[1024] = "";

    image_take(&before, dir);
    int rc = kv_open(dir, o, &e, err, sizeof(err));
    ck_assert_msg(rc == FL_ECORRUPT, "%s: kv_open returned %s (%s)", ctx,
                  fl_strerror(rc), err);
    ck_assert_ptr_null(e);
    ck_assert_msg(file == NULL || strstr(err, file) != NULL,
                  "%s: error \"%s\" does not name %s", ctx, err, file);
    ck_assert_msg(off < 0 || mentions_offset(err, off),
                  "%s: error \"%s\" does not name offset %lld", ctx, err,
                  (long long)off);
    image_take(&after, dir);
    image_expect_same(&before, &after);
    image_free(&before);
    image_free(&after);
}

START_TEST(test_wal_mid_log_damage_fails_open)
{
    struct kv_options o = options();
    char orig[PATH_SIZE], work[PATH_SIZE], wseg[PATH_SIZE];
    off_t starts[16];
    off_t end;
    struct model m;

    scratch_path(orig, sizeof(orig), "orig");
    scratch_path(work, sizeof(work), "work");
    struct kv_engine *e = open_ok(orig, &o);
    write_first_puts(e, &m);
    put_durable(e, "k04", "value-4");
    put_durable(e, "k05", "value-5");
    kv_close(e);
    segment_path(wseg, sizeof(wseg), orig, -1);
    size_t n = segment_records(wseg, starts, 16, &end);
    ck_assert_uint_eq(n, 6);
    starts[n] = end;

    /* Every byte of the first, the second and the next-to-last record. */
    static const size_t damaged[] = {0, 1, 4};
    for (size_t d = 0; d < 3; d++) {
        size_t r = damaged[d];
        for (off_t off = starts[r]; off < starts[r + 1]; off++) {
            set_ctx("record %zu (offset %lld) damaged at byte %lld", r,
                    (long long)starts[r], (long long)off);
            reset_dir(orig, work);
            segment_path(wseg, sizeof(wseg), work, -1);
            flip_byte(wseg, off, 0x01);
            expect_damage(work, &o, wseg, starts[r]);
        }
    }
}
END_TEST

START_TEST(test_wal_sealed_segment_damage_fails_open)
{
    struct kv_options o = options();
    char orig[PATH_SIZE], work[PATH_SIZE], seg[PATH_SIZE], next[PATH_SIZE];
    off_t starts[16];
    off_t end;

    o.segment_bytes = 128;
    scratch_path(orig, sizeof(orig), "orig");
    scratch_path(work, sizeof(work), "work");
    struct kv_engine *e = open_ok(orig, &o);
    for (int i = 0; i < 12; i++) {
        char key[16];
        key_name(key, sizeof(key), i);
        put_durable(e, key, "sealed");
    }
    kv_close(e);
    size_t nseg = count_names(orig, "wal-", ".log");
    ck_assert_uint_ge(nseg, 4);

    for (size_t i = 0; i + 1 < nseg; i++) {
        reset_dir(orig, work);
        segment_path(seg, sizeof(seg), work, (long)i);
        size_t n = segment_records(seg, starts, 16, &end);
        ck_assert_uint_ge(n, 1);
        ck_assert_int_eq(end, file_size(seg));

        set_ctx("sealed segment %zu of %zu, last byte of its last record", i,
                nseg);
        flip_byte(seg, end - 1, 0x40);
        expect_damage(work, &o, seg, starts[n - 1]);

        set_ctx("sealed segment %zu of %zu, magic of its last record", i, nseg);
        reset_dir(orig, work);
        flip_byte(seg, starts[n - 1], 0xff);
        expect_damage(work, &o, seg, starts[n - 1]);

        set_ctx("sealed segment %zu of %zu, cut inside its last record", i,
                nseg);
        reset_dir(orig, work);
        cut_file(seg, starts[n - 1] + 5);
        expect_damage(work, &o, seg, starts[n - 1]);

        /* A sealed segment that lost whole records leaves a gap before
         * the next segment, which names it. */
        set_ctx("sealed segment %zu of %zu, cut before its last record", i,
                nseg);
        reset_dir(orig, work);
        cut_file(seg, starts[n - 1]);
        segment_path(next, sizeof(next), work, (long)i + 1);
        expect_damage(work, &o, next, -1);
    }

    set_ctx("segment 1 deleted");
    reset_dir(orig, work);
    segment_path(seg, sizeof(seg), work, 1);
    ck_assert_int_eq(unlink(seg), 0);
    expect_damage(work, &o, NULL, -1);
}
END_TEST

/* ---- 4. snapshots and replay against a model ---------------------------- */

/* Random bytes of random length up to MAX_VALUE, sometimes empty. */
static size_t random_value(struct fl_rng *rng, unsigned char *out)
{
    size_t len = (size_t)fl_rng_below(rng, MAX_VALUE + 1);

    if (fl_rng_chance(rng, 0.1))
        len = 0;
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)fl_rng_next(rng);
    return len;
}

/* Runs one operation on both engines and the model, checking the results
 * the engines return against the model. */
static void model_step(struct kv_engine *engines[2], struct model *m,
                       struct fl_rng *rng, uint64_t last[2])
{
    unsigned char value[MAX_VALUE];
    unsigned char expected[MAX_VALUE];
    int i = (int)fl_rng_below(rng, 12);
    char key[16];
    uint64_t kind = fl_rng_below(rng, 4);

    key_name(key, sizeof(key), i);
    size_t len = random_value(rng, value);
    if (kind <= 1) {
        for (int k = 0; k < 2; k++) {
            ck_assert_msg(
                kv_put(engines[k], str(key), bytes(value, len), &last[k]) == 0,
                "%s: put %s", ctx, key);
        }
        model_set(m, i, value, len);
    } else if (kind == 2) {
        for (int k = 0; k < 2; k++) {
            bool existed = false;
            uint64_t wait = 0;
            ck_assert_msg(kv_delete(engines[k], str(key), &existed, &wait) == 0,
                          "%s: delete %s", ctx, key);
            ck_assert_msg(existed == m->present[i],
                          "%s: delete %s existed=%d, model %d", ctx, key,
                          existed, m->present[i]);
            if (existed)
                last[k] = wait;
        }
        m->present[i] = false;
    } else {
        /* Expect the current value half the time, so swaps happen. */
        size_t elen;
        if (m->present[i] && fl_rng_chance(rng, 0.5)) {
            elen = m->len[i];
            memcpy(expected, m->value[i], elen);
        } else {
            elen = random_value(rng, expected);
        }
        bool want = model_value_is(m, i, bytes(expected, elen));
        for (int k = 0; k < 2; k++) {
            bool swapped = false;
            uint64_t wait = 0;
            ck_assert_msg(kv_cas(engines[k], str(key), bytes(expected, elen),
                                 bytes(value, len), &swapped, &wait) == 0,
                          "%s: cas %s", ctx, key);
            ck_assert_msg(swapped == want, "%s: cas %s swapped=%d, model %d",
                          ctx, key, swapped, want);
            if (swapped)
                last[k] = wait;
        }
        if (want)
            model_set(m, i, value, len);
    }
    for (int k = 0; k < 2; k++)
        model_expect_key(engines[k], m, i, k == 0 ? "snapshots" : "log only");
}

START_TEST(test_snapshot_replay_equals_log_replay)
{
    enum { OPS = 600, MAX_SEGMENTS = 24 };
    uint64_t seed = (uint64_t)_i;
    struct kv_options os = options();
    struct kv_options ol = options();
    char dirs[2][PATH_SIZE];
    struct kv_engine *engines[2];
    struct model m;
    struct fl_rng rng;
    uint64_t last[2] = {0, 0};
    uint64_t snapshots = 0;
    size_t max_segments = 0;

    os.segment_bytes = 512;
    os.snapshot_every = 40;
    ol.segment_bytes = 512;
    memset(&m, 0, sizeof(m));
    fl_rng_seed(&rng, seed);
    scratch_path(dirs[0], sizeof(dirs[0]), "snapshots");
    scratch_path(dirs[1], sizeof(dirs[1]), "log-only");
    set_ctx("seed %" PRIu64 ", opening", seed);
    engines[0] = open_ok(dirs[0], &os);
    engines[1] = open_ok(dirs[1], &ol);

    for (int step = 0; step < OPS; step++) {
        set_ctx("seed %" PRIu64 ", step %d", seed, step);
        model_step(engines, &m, &rng, last);
        if (fl_rng_chance(&rng, 1.0 / 30)) {
            int rc = kv_snapshot(engines[0]);
            ck_assert_msg(rc == 0, "%s: kv_snapshot: %s", ctx, fl_strerror(rc));
        }
        if (step % 25 == 24) {
            for (int k = 0; k < 2; k++)
                ck_assert_int_eq(kv_wait(engines[k], last[k]), 0);
        }
        if (fl_rng_chance(&rng, 1.0 / 150)) {
            snapshots += stats_of(engines[0]).snapshots;
            for (int k = 0; k < 2; k++) {
                kv_close(engines[k]);
                engines[k] = open_ok(dirs[k], k == 0 ? &os : &ol);
                model_expect(engines[k], &m, "reopened in the run");
            }
        }
        size_t segments = count_names(dirs[0], "wal-", ".log");
        size_t snaps = count_names(dirs[0], "snap-", ".snap");
        if (segments > max_segments)
            max_segments = segments;
        ck_assert_msg(segments <= MAX_SEGMENTS,
                      "%s: %zu segments with snapshots every %" PRIu64
                      " records",
                      ctx, segments, os.snapshot_every);
        ck_assert_msg(snaps <= 2, "%s: %zu snapshot files", ctx, snaps);
    }

    set_ctx("seed %" PRIu64 ", after the run", seed);
    snapshots += stats_of(engines[0]).snapshots;
    for (int k = 0; k < 2; k++) {
        kv_close(engines[k]);
        engines[k] = open_ok(dirs[k], k == 0 ? &os : &ol);
        model_expect(engines[k], &m, k == 0 ? "snapshots" : "log only");
    }
    ck_assert_msg(stats_of(engines[0]).last_seq ==
                      stats_of(engines[1]).last_seq,
                  "%s: the engines logged different record counts", ctx);
    kv_close(engines[0]);
    kv_close(engines[1]);
    ck_assert_msg(snapshots >= OPS / 40 / 2, "%s: only %" PRIu64 " snapshots",
                  ctx, snapshots);
    ck_assert_msg(count_names(dirs[1], "snap-", ".snap") == 0,
                  "%s: the log-only engine wrote a snapshot", ctx);
    ck_assert_msg(count_names(dirs[1], "wal-", ".log") > max_segments,
                  "%s: the log-only engine has %zu segments, no more than "
                  "the %zu the snapshots left",
                  ctx, count_names(dirs[1], "wal-", ".log"), max_segments);
}
END_TEST

/* ---- 5. sticky failure ------------------------------------------------- */

/* Checks that every operation of a failed engine returns FL_ESTICKY. */
static void expect_sticky(struct kv_engine *e)
{
    struct fl_buf v;
    uint64_t wait;
    bool flag;
    struct kv_op op = {.type = KV_OP_PUT, .key = str("k00"), .value = str("x")};

    fl_buf_init(&v);
    ck_assert_int_eq(kv_put(e, str("k00"), str("x"), &wait), FL_ESTICKY);
    ck_assert_int_eq(kv_get(e, str("k00"), &v, &flag, &wait), FL_ESTICKY);
    ck_assert_int_eq(
        kv_cas(e, str("k00"), str("value-0"), str("y"), &flag, &wait),
        FL_ESTICKY);
    ck_assert_int_eq(kv_delete(e, str("k00"), &flag, &wait), FL_ESTICKY);
    ck_assert_int_eq(kv_apply(e, 1000, &op, 1, &flag, &wait), FL_ESTICKY);
    ck_assert_int_eq(kv_snapshot(e), FL_ESTICKY);
    ck_assert(stats_of(e).failed);
    fl_buf_free(&v);
}

/* Reopens dir on the real file system and checks that keys k00 ..
 * k(acked-1) hold their values, that the failed put k(acked) is absent
 * when absent is set, and how many torn-tail bytes recovery dropped. */
static void expect_acked_puts(const char *dir, int acked, bool absent,
                              uint64_t truncated)
{
    struct kv_options o = options();
    struct kv_engine *e = open_ok(dir, &o);
    char key[16];

    for (int i = 0; i < acked; i++) {
        char value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "value-%d", i);
        expect_value(e, key, value);
    }
    key_name(key, sizeof(key), acked);
    if (absent)
        expect_value(e, key, NULL);
    ck_assert_msg(stats_of(e).truncated == truncated,
                  "%s: recovery dropped %" PRIu64 " bytes, expected %" PRIu64,
                  ctx, stats_of(e).truncated, truncated);
    kv_close(e);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

START_TEST(test_sticky_after_failed_fdatasync)
{
    uint64_t nth = (uint64_t)_i;
    struct fault_vfs f;
    struct kv_options o = options();
    char dir[PATH_SIZE];
    int acked = 0;
    uint64_t failed_seq = 0;

    set_ctx("fdatasync %" PRIu64 " fails", nth);
    fault_vfs_init(&f);
    o.vfs = &f.vfs;
    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    uint64_t base = fault_vfs_calls(&f, FAULT_FDATASYNC);
    fault_vfs_fail_call(&f, FAULT_FDATASYNC, base + nth, EIO);

    for (int i = 0; i < 10 && failed_seq == 0; i++) {
        char key[16];
        char value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "value-%d", i);
        uint64_t seq = put_ok(e, key, str(value));
        int rc = kv_wait(e, seq);
        if (rc == 0) {
            acked++;
            continue;
        }
        ck_assert_msg(rc == FL_ESTICKY, "%s: kv_wait returned %s", ctx,
                      fl_strerror(rc));
        failed_seq = seq;
    }
    /* Each put waited alone, so each took one fdatasync round. */
    ck_assert_msg(failed_seq != 0, "%s: no write failed", ctx);
    ck_assert_int_eq(acked, (int)nth - 1);
    ck_assert_msg(strstr(kv_error(e), "fdatasync") != NULL,
                  "%s: kv_error \"%s\" does not mention fdatasync", ctx,
                  kv_error(e));
    ck_assert_int_eq(kv_wait(e, failed_seq), FL_ESTICKY);
    ck_assert(kv_durable(e) < failed_seq);
    expect_sticky(e);

    sleep_ms(50);
    ck_assert_msg(fault_vfs_calls(&f, FAULT_FDATASYNC) == base + nth,
                  "%s: %" PRIu64 " fdatasync calls after the failure", ctx,
                  fault_vfs_calls(&f, FAULT_FDATASYNC) - base - nth);
    kv_close(e);
    ck_assert_msg(fault_vfs_calls(&f, FAULT_FDATASYNC) == base + nth,
                  "%s: kv_close called fdatasync after the failure", ctx);
    fault_vfs_destroy(&f);
    /* The failed put's record reached the page cache, so it may be there. */
    expect_acked_puts(dir, acked, false, 0);
}
END_TEST

/* Runs puts k00, k01, ... with a wait each until one fails, with pwrite
 * call base + nth failing and, when shorten, the pwrite before it short.
 * Returns the number of acknowledged puts. */
static int run_until_write_fails(struct kv_engine *e, struct fault_vfs *f,
                                 uint64_t *fdatasyncs)
{
    int acked = 0;

    for (int i = 0; i < 10; i++) {
        char key[16];
        char value[32];
        uint64_t seq = 0;
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "value-%d", i);
        int rc = kv_put(e, str(key), str(value), &seq);
        if (rc != 0) {
            ck_assert_msg(rc == FL_ESTICKY, "%s: kv_put returned %s", ctx,
                          fl_strerror(rc));
            *fdatasyncs = fault_vfs_calls(f, FAULT_FDATASYNC);
            return acked;
        }
        ck_assert_int_eq(kv_wait(e, seq), 0);
        acked++;
    }
    ck_abort_msg("%s: no write failed", ctx);
    return acked;
}

START_TEST(test_sticky_after_failed_pwrite)
{
    uint64_t nth = (uint64_t)_i;
    struct fault_vfs f;
    struct kv_options o = options();
    char dir[PATH_SIZE], seg[PATH_SIZE];
    uint64_t fdatasyncs = 0;

    set_ctx("record pwrite %" PRIu64 " fails", nth);
    fault_vfs_init(&f);
    o.vfs = &f.vfs;
    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    uint64_t base = fault_vfs_calls(&f, FAULT_PWRITE);
    fault_vfs_fail_call(&f, FAULT_PWRITE, base + nth, EIO);

    int acked = run_until_write_fails(e, &f, &fdatasyncs);
    ck_assert_int_eq(acked, (int)nth - 1);
    segment_path(seg, sizeof(seg), dir, -1);
    ck_assert_msg(strstr(kv_error(e), "write") != NULL &&
                      strstr(kv_error(e), seg) != NULL,
                  "%s: kv_error \"%s\" does not name the write to %s", ctx,
                  kv_error(e), seg);
    expect_sticky(e);
    sleep_ms(50);
    kv_close(e);
    ck_assert_msg(fault_vfs_calls(&f, FAULT_FDATASYNC) == fdatasyncs,
                  "%s: fdatasync called after the failure", ctx);
    ck_assert_uint_eq(fault_vfs_calls(&f, FAULT_PWRITE), base + nth);
    fault_vfs_destroy(&f);

    expect_acked_puts(dir, acked, true, 0);
}
END_TEST

START_TEST(test_sticky_after_short_write)
{
    uint64_t nth = (uint64_t)_i;
    struct fault_vfs f;
    struct kv_options o = options();
    char dir[PATH_SIZE];
    uint64_t fdatasyncs = 0;

    set_ctx("record pwrite %" PRIu64 " short, the next fails", nth);
    fault_vfs_init(&f);
    o.vfs = &f.vfs;
    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    uint64_t base = fault_vfs_calls(&f, FAULT_PWRITE);
    fault_vfs_short_pwrite(&f, base + nth);
    fault_vfs_fail_call(&f, FAULT_PWRITE, base + nth + 1, EIO);

    int acked = run_until_write_fails(e, &f, &fdatasyncs);
    ck_assert_int_eq(acked, (int)nth - 1);
    ck_assert_msg(strstr(kv_error(e), "write") != NULL,
                  "%s: kv_error \"%s\" does not mention the write", ctx,
                  kv_error(e));
    expect_sticky(e);
    kv_close(e);
    ck_assert_msg(fault_vfs_calls(&f, FAULT_FDATASYNC) == fdatasyncs,
                  "%s: fdatasync called after the failure", ctx);
    fault_vfs_destroy(&f);

    /* Half of the failed record reached the file: a torn tail. */
    size_t record = KV_REC_HEADER + 4 + strlen("k00") + strlen("value-0");
    expect_acked_puts(dir, acked, true, record / 2);
}
END_TEST

/* ---- 6. recovery crashed at each step ----------------------------------- */

/*
 * Builds a directory that gives recovery work at every step: a snapshot,
 * segments it covers that a crash kept from being deleted, several
 * segments after it, leftover temporary files and a torn tail.
 */
static void build_recovery_dir(const char *dir)
{
    struct kv_options o = options();
    char side[PATH_SIZE], seg[PATH_SIZE];
    off_t starts[16];
    off_t end;

    o.segment_bytes = 160;
    scratch_path(side, sizeof(side), "before-snapshot");
    struct kv_engine *e = open_ok(dir, &o);
    for (int i = 0; i < 8; i++) {
        char key[16];
        char value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "first-%d", i);
        put_durable(e, key, value);
    }
    copy_dir(dir, side);
    ck_assert_int_eq(kv_snapshot(e), 0);
    put_durable(e, "k03", "second");
    bool existed = false;
    uint64_t wait = 0;
    ck_assert_int_eq(kv_delete(e, str("k01"), &existed, &wait), 0);
    ck_assert(existed);
    for (int i = 8; i < 14; i++) {
        char key[16];
        char value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "third-%d", i);
        put_durable(e, key, value);
    }
    put_durable(e, "k00", "fourth");
    put_durable(e, "k14", "torn away");
    kv_close(e);
    forget_watermark(dir);

    /* Restore the segments the snapshot covers. */
    size_t n;
    char(*names)[NAME_SIZE] = list_names(side, "wal-", ".log", &n);
    size_t restored = 0;
    for (size_t i = 0; i < n; i++) {
        char from[PATH_SIZE], to[PATH_SIZE];
        join_path(to, sizeof(to), dir, names[i]);
        if (file_exists(to))
            continue;
        join_path(from, sizeof(from), side, names[i]);
        size_t len;
        unsigned char *data = read_file(from, &len);
        write_file(to, data, len);
        free(data);
        restored++;
    }
    free(names);
    ck_assert_uint_ge(restored, 2);

    char tmp[PATH_SIZE];
    join_path(tmp, sizeof(tmp), dir, "wal-00000000000000000099.log.tmp");
    write_file(tmp, "partial", 7);
    join_path(tmp, sizeof(tmp), dir, "snap-00000000000000000099.snap.tmp");
    write_file(tmp, "partial", 7);

    size_t nseg = segment_path(seg, sizeof(seg), dir, -1);
    ck_assert_uint_ge(nseg, restored + 3);
    size_t nrec = segment_records(seg, starts, 16, &end);
    ck_assert_uint_ge(nrec, 1);
    cut_file(seg, starts[nrec - 1] + (end - starts[nrec - 1]) / 2);
}

/* Opens dir through a fault vfs that fails mutating call n (and, with
 * crash, every later one), expecting an I/O error when fail is set and a
 * clean open and close otherwise. */
static void open_with_fault(const char *dir, uint64_t n, bool crash, bool fail)
{
    struct fault_vfs f;
    struct kv_options o = options();
    struct kv_engine *e = NULL;
    char err[1024] = "";

    fault_vfs_init(&f);
    o.vfs = &f.vfs;
    if (crash)
        fault_vfs_crash_at(&f, n);
    else
        fault_vfs_fail_mutating(&f, n);
    int rc = kv_open(dir, &o, &e, err, sizeof(err));
    if (fail) {
        ck_assert_msg(rc != 0, "%s: kv_open succeeded", ctx);
        ck_assert_ptr_null(e);
        ck_assert_msg(strstr(err, fl_strerror(-EIO)) != NULL,
                      "%s: error \"%s\" does not report the I/O error", ctx,
                      err);
    } else {
        ck_assert_msg(rc == 0, "%s: kv_open failed: %s", ctx, err);
        kv_close(e);
    }
    fault_vfs_destroy(&f);
}

START_TEST(test_recovery_crash_at_each_step)
{
    struct kv_options real = options();
    char orig[PATH_SIZE], work[PATH_SIZE];
    struct model want;
    struct fault_vfs f;

    scratch_path(orig, sizeof(orig), "orig");
    scratch_path(work, sizeof(work), "work");
    build_recovery_dir(orig);

    reset_dir(orig, work);
    struct kv_engine *e = open_ok(work, &real);
    model_read(e, &want);
    uint64_t want_seq = stats_of(e).last_seq;
    ck_assert_uint_gt(stats_of(e).truncated, 0);
    kv_close(e);
    ck_assert(want.present[0] && !want.present[1] && !want.present[14]);

    /* Count the mutating calls of a clean recovery. */
    reset_dir(orig, work);
    fault_vfs_init(&f);
    struct kv_options o = options();
    o.vfs = &f.vfs;
    e = open_ok(work, &o);
    kv_close(e);
    uint64_t total = fault_vfs_mutating(&f);
    ck_assert_uint_ge(fault_vfs_calls(&f, FAULT_UNLINK), 4);
    ck_assert_uint_eq(fault_vfs_calls(&f, FAULT_FTRUNCATE), 1);
    ck_assert_uint_ge(fault_vfs_calls(&f, FAULT_FDATASYNC), 3);
    ck_assert_uint_ge(fault_vfs_calls(&f, FAULT_FSYNC_DIR), 1);
    fault_vfs_destroy(&f);

    for (uint64_t n = 1; n <= total + 1; n++) {
        /* The process crashes at call n: it and every later one fail. */
        set_ctx("crash at mutating call %" PRIu64 " of %" PRIu64, n, total);
        reset_dir(orig, work);
        open_with_fault(work, n, true, n <= total);
        e = open_ok(work, &real);
        model_expect(e, &want, "recovered after the crash");
        ck_assert_msg(stats_of(e).last_seq == want_seq,
                      "%s: last_seq %" PRIu64 ", clean recovery %" PRIu64, ctx,
                      stats_of(e).last_seq, want_seq);
        kv_close(e);

        /* Only call n fails: recovery must report it, never go on. */
        set_ctx("only mutating call %" PRIu64 " of %" PRIu64 " fails", n,
                total);
        reset_dir(orig, work);
        open_with_fault(work, n, false, n <= total);
        e = open_ok(work, &real);
        model_expect(e, &want, "recovered after the failed step");
        ck_assert_uint_eq(stats_of(e).last_seq, want_seq);
        kv_close(e);
    }
}
END_TEST

/* ---- 7. planted bugs --------------------------------------------------- */

static const unsigned bug_configs[] = {
    0,
    KV_BUG_ACK_BEFORE_FSYNC,
    KV_BUG_SKIP_DIR_FSYNC,
    KV_BUG_IGNORE_CRC,
    KV_BUG_TRUNCATE_ON_CORRUPTION,
};
#define NBUG_CONFIGS (sizeof(bug_configs) / sizeof(bug_configs[0]))

START_TEST(test_bug_ignore_crc_applies_bad_record)
{
    char orig[PATH_SIZE], work[PATH_SIZE], seg[PATH_SIZE];
    off_t starts[8];
    off_t end;
    struct model m;

    scratch_path(orig, sizeof(orig), "orig");
    scratch_path(work, sizeof(work), "work");
    struct kv_options o = options();
    struct kv_engine *e = open_ok(orig, &o);
    write_first_puts(e, &m);
    kv_close(e);
    forget_watermark(orig);
    segment_path(seg, sizeof(seg), orig, -1);
    ck_assert_uint_eq(segment_records(seg, starts, 8, &end), 4);

    /* The last record's value "value-3" becomes "value-2": structurally
     * valid, with a CRC that no longer matches. */
    for (size_t c = 0; c < NBUG_CONFIGS; c++) {
        set_ctx("bugs 0x%x, last record's CRC is wrong", bug_configs[c]);
        reset_dir(orig, work);
        segment_path(seg, sizeof(seg), work, -1);
        flip_byte(seg, end - 1, '3' ^ '2');
        o.bugs = bug_configs[c];
        e = open_ok(work, &o);
        if (bug_configs[c] == KV_BUG_IGNORE_CRC) {
            expect_value(e, "k03", "value-2");
            ck_assert_uint_eq(stats_of(e).truncated, 0);
        } else {
            expect_value(e, "k03", NULL);
            ck_assert_uint_eq(stats_of(e).truncated,
                              (uint64_t)(end - starts[3]));
        }
        expect_value(e, "k02", "value-2");
        kv_close(e);
    }

    /* Above the watermark (here there is none), valid records after the
     * damage were not durable either: a power loss kept a later unsynced
     * write and lost an earlier one. The engine cuts the log at the
     * damage. */
    for (size_t c = 0; c < NBUG_CONFIGS; c++) {
        set_ctx("bugs 0x%x, second record's CRC is wrong, no watermark",
                bug_configs[c]);
        reset_dir(orig, work);
        segment_path(seg, sizeof(seg), work, -1);
        flip_byte(seg, starts[2] - 1, '1' ^ '7');
        o.bugs = bug_configs[c];
        e = open_ok(work, &o);
        if (bug_configs[c] == KV_BUG_IGNORE_CRC) {
            expect_value(e, "k01", "value-7");
            expect_value(e, "k03", "value-3");
        } else {
            expect_value(e, "k00", "value-0");
            expect_value(e, "k01", NULL);
            expect_value(e, "k03", NULL);
            ck_assert_uint_eq(stats_of(e).truncated,
                              (uint64_t)(end - starts[1]));
        }
        kv_close(e);
    }

    /* At or below the watermark the records were durable, and the correct
     * engine rejects the damage. */
    o.bugs = 0;
    e = open_ok(orig, &o);
    kv_close(e); /* a clean close moves the watermark to the end */
    for (size_t c = 0; c < NBUG_CONFIGS; c++) {
        if (bug_configs[c] == KV_BUG_TRUNCATE_ON_CORRUPTION)
            continue; /* its own behaviour, tested below */
        set_ctx("bugs 0x%x, second record's CRC is wrong, under the "
                "watermark",
                bug_configs[c]);
        reset_dir(orig, work);
        segment_path(seg, sizeof(seg), work, -1);
        flip_byte(seg, starts[2] - 1, '1' ^ '7');
        o.bugs = bug_configs[c];
        if (bug_configs[c] == KV_BUG_IGNORE_CRC) {
            e = open_ok(work, &o);
            expect_value(e, "k01", "value-7");
            expect_value(e, "k03", "value-3");
            kv_close(e);
        } else {
            expect_damage(work, &o, seg, starts[1]);
        }
    }
}
END_TEST

START_TEST(test_bug_truncate_on_corruption_drops_records)
{
    char orig[PATH_SIZE], work[PATH_SIZE], seg[PATH_SIZE];
    off_t starts[8];
    off_t end;
    struct model m;

    scratch_path(orig, sizeof(orig), "orig");
    scratch_path(work, sizeof(work), "work");
    struct kv_options o = options();
    struct kv_engine *e = open_ok(orig, &o);
    write_first_puts(e, &m);
    kv_close(e);
    segment_path(seg, sizeof(seg), orig, -1);
    ck_assert_uint_eq(segment_records(seg, starts, 8, &end), 4);

    for (size_t c = 0; c < NBUG_CONFIGS; c++) {
        set_ctx("bugs 0x%x, second record's magic damaged", bug_configs[c]);
        reset_dir(orig, work);
        segment_path(seg, sizeof(seg), work, -1);
        flip_byte(seg, starts[1], 0xff);
        o.bugs = bug_configs[c];
        if (bug_configs[c] != KV_BUG_TRUNCATE_ON_CORRUPTION) {
            expect_damage(work, &o, seg, starts[1]);
            continue;
        }
        e = open_ok(work, &o);
        expect_value(e, "k00", "value-0");
        expect_value(e, "k01", NULL);
        expect_value(e, "k02", NULL);
        expect_value(e, "k03", NULL);
        ck_assert_uint_eq(stats_of(e).truncated, (uint64_t)(end - starts[1]));
        kv_close(e);
        ck_assert_int_eq(file_size(seg), starts[1]);
    }

    /* In a sealed segment the bug drops the later segments too. */
    char sorig[PATH_SIZE];
    scratch_path(sorig, sizeof(sorig), "sealed");
    o = options();
    o.segment_bytes = 128;
    e = open_ok(sorig, &o);
    write_first_puts(e, &m);
    put_durable(e, "k04", "value-4");
    put_durable(e, "k05", "value-5");
    kv_close(e);
    ck_assert_uint_ge(count_names(sorig, "wal-", ".log"), 3);
    for (size_t c = 0; c < NBUG_CONFIGS; c++) {
        set_ctx("bugs 0x%x, first sealed segment damaged", bug_configs[c]);
        reset_dir(sorig, work);
        segment_path(seg, sizeof(seg), work, 0);
        size_t n = segment_records(seg, starts, 8, &end);
        ck_assert_uint_eq(n, 2);
        flip_byte(seg, starts[1], 0xff);
        o.bugs = bug_configs[c];
        if (bug_configs[c] != KV_BUG_TRUNCATE_ON_CORRUPTION) {
            expect_damage(work, &o, seg, starts[1]);
            continue;
        }
        e = open_ok(work, &o);
        expect_value(e, "k00", "value-0");
        for (int i = 1; i < 6; i++) {
            char key[16];
            key_name(key, sizeof(key), i);
            expect_value(e, key, NULL);
        }
        kv_close(e);
    }
}
END_TEST

/* Runs a fixed workload that creates segments and snapshots and returns
 * the fsync_dir and rename calls it made. */
static void count_dir_syncs(const char *dir, unsigned bugs, uint64_t *syncs,
                            uint64_t *renames)
{
    struct fault_vfs f;
    struct kv_options o = options();

    fault_vfs_init(&f);
    o.vfs = &f.vfs;
    o.segment_bytes = 128;
    o.bugs = bugs;
    struct kv_engine *e = open_ok(dir, &o);
    for (int i = 0; i < 8; i++) {
        char key[16];
        key_name(key, sizeof(key), i);
        put_durable(e, key, "dir-fsync");
    }
    ck_assert_int_eq(kv_snapshot(e), 0);
    for (int i = 8; i < 12; i++) {
        char key[16];
        key_name(key, sizeof(key), i);
        put_durable(e, key, "dir-fsync");
    }
    ck_assert_int_eq(kv_snapshot(e), 0);
    kv_close(e);
    *syncs = fault_vfs_calls(&f, FAULT_FSYNC_DIR);
    *renames = fault_vfs_calls(&f, FAULT_RENAME);
    fault_vfs_destroy(&f);
}

START_TEST(test_bug_skip_dir_fsync_skips_all)
{
    uint64_t want_syncs = 0;
    uint64_t want_renames = 0;

    for (size_t c = 0; c < NBUG_CONFIGS; c++) {
        char dir[PATH_SIZE];
        char name[32];
        uint64_t syncs, renames;
        snprintf(name, sizeof(name), "bugs-%zu", c);
        scratch_path(dir, sizeof(dir), name);
        set_ctx("bugs 0x%x", bug_configs[c]);
        count_dir_syncs(dir, bug_configs[c], &syncs, &renames);
        if (c == 0) {
            /* Every segment and snapshot rename is followed by one. */
            ck_assert_uint_ge(renames, 5);
            ck_assert_uint_ge(syncs, renames);
            want_syncs = syncs;
            want_renames = renames;
            continue;
        }
        ck_assert_msg(renames == want_renames,
                      "%s: %" PRIu64 " renames, correct engine %" PRIu64, ctx,
                      renames, want_renames);
        if (bug_configs[c] == KV_BUG_SKIP_DIR_FSYNC)
            ck_assert_msg(syncs == 0, "%s: %" PRIu64 " fsync_dir calls", ctx,
                          syncs);
        else
            ck_assert_msg(syncs == want_syncs,
                          "%s: %" PRIu64 " fsync_dir calls, correct engine "
                          "%" PRIu64,
                          ctx, syncs, want_syncs);
    }
}
END_TEST

START_TEST(test_bug_ack_before_fsync_advances_durable)
{
    for (size_t c = 0; c < NBUG_CONFIGS; c++) {
        struct fault_vfs f;
        struct kv_options o = options();
        char dir[PATH_SIZE];
        char name[32];

        snprintf(name, sizeof(name), "bugs-%zu", c);
        scratch_path(dir, sizeof(dir), name);
        set_ctx("bugs 0x%x", bug_configs[c]);
        fault_vfs_init(&f);
        o.vfs = &f.vfs;
        o.bugs = bug_configs[c];
        struct kv_engine *e = open_ok(dir, &o);
        put_durable(e, "k00", "before");

        /* From here on no fdatasync returns until the gate opens. */
        fault_vfs_close_gate(&f);
        uint64_t seq = put_ok(e, "k01", str("pending"));
        if (bug_configs[c] == KV_BUG_ACK_BEFORE_FSYNC) {
            ck_assert_msg(kv_durable(e) >= seq,
                          "%s: durable %" PRIu64 " with no fdatasync "
                          "returned, seq %" PRIu64,
                          ctx, kv_durable(e), seq);
            ck_assert_int_eq(kv_wait(e, seq), 0);
        } else {
            ck_assert_msg(fault_vfs_wait_blocked(&f, 1, 10000),
                          "%s: no fdatasync started", ctx);
            ck_assert_msg(kv_durable(e) < seq,
                          "%s: durable %" PRIu64 " while fdatasync is "
                          "blocked, seq %" PRIu64,
                          ctx, kv_durable(e), seq);
            sleep_ms(20);
            ck_assert(kv_durable(e) < seq);
            ck_assert(stats_of(e).durable_seq < seq);
        }
        fault_vfs_open_gate(&f);
        ck_assert_int_eq(kv_wait(e, seq), 0);
        ck_assert(kv_durable(e) >= seq);
        kv_close(e);
        fault_vfs_destroy(&f);
    }
}
END_TEST

/* The bug acknowledges early, but the record must still be made durable:
 * an fdatasync covering it follows the acknowledgement. */
START_TEST(test_bug_ack_before_fsync_still_syncs)
{
    struct fault_vfs f;
    struct kv_options o = options();
    char dir[PATH_SIZE];

    fault_vfs_init(&f);
    o.vfs = &f.vfs;
    o.bugs = KV_BUG_ACK_BEFORE_FSYNC;
    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    uint64_t before = fault_vfs_calls(&f, FAULT_FDATASYNC);
    fault_vfs_close_gate(&f);
    uint64_t seq = put_ok(e, "k00", str("acked early"));
    ck_assert_uint_ge(kv_durable(e), seq);
    bool synced = fault_vfs_wait_blocked(&f, 1, 2000);
    fault_vfs_open_gate(&f);
    kv_close(e);
    ck_assert_msg(synced,
                  "no fdatasync within 2 s of an acknowledged put "
                  "(%" PRIu64 " fdatasync calls before, %" PRIu64 " after "
                  "close): the bug skips fdatasync instead of acknowledging "
                  "before it",
                  before, fault_vfs_calls(&f, FAULT_FDATASYNC));
    fault_vfs_destroy(&f);
}
END_TEST

/* With the bug, kv_sync must not run the fdatasync itself: it returns at
 * once with the record reported durable, so an event loop sends the reply
 * before the fdatasync, which the sync thread runs. */
START_TEST(test_bug_ack_before_fsync_in_sync)
{
    struct fault_vfs f;
    struct kv_options o = options();
    char dir[PATH_SIZE];

    fault_vfs_init(&f);
    o.vfs = &f.vfs;
    o.bugs = KV_BUG_ACK_BEFORE_FSYNC;
    o.deferred_writes = true;
    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    fault_vfs_close_gate(&f);
    uint64_t seq = put_ok(e, "k00", str("acked early"));
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_ge(kv_durable(e), seq);
    bool synced = fault_vfs_wait_blocked(&f, 1, 2000);
    fault_vfs_open_gate(&f);
    kv_close(e);
    ck_assert_msg(synced, "no fdatasync followed the early acknowledgement");
    fault_vfs_destroy(&f);
}
END_TEST

/* ---- durable file creation ---------------------------------------------- */

/*
 * Checks the order of a traced run: every file renamed into place was
 * fsynced after its last write, and the directory was fsynced after the
 * rename before the file took a record, before any file was deleted and
 * before the next rename. Returns NULL, or a description of the first
 * violation in why.
 */
static const char *check_durable_order(const struct fault_vfs *f, char *why,
                                       size_t size)
{
    const struct fault_event *ev = f->events;

    for (size_t i = 0; i < f->nevents; i++) {
        if (ev[i].op != FAULT_RENAME || ev[i].result != 0)
            continue;
        size_t last_write = i;
        for (size_t j = 0; j < i; j++) {
            if (ev[j].op == FAULT_PWRITE && strcmp(ev[j].name, ev[i].name) == 0)
                last_write = j;
        }
        if (last_write == i) {
            snprintf(why, size, "%s was renamed to %s without a write",
                     ev[i].name, ev[i].to);
            return why;
        }
        bool synced = false;
        for (size_t j = last_write + 1; j < i && !synced; j++)
            synced = ev[j].op == FAULT_FSYNC && ev[j].result == 0 &&
                     strcmp(ev[j].name, ev[i].name) == 0;
        if (!synced) {
            snprintf(why, size, "%s was renamed to %s before an fsync",
                     ev[i].name, ev[i].to);
            return why;
        }
        size_t j = i + 1;
        for (; j < f->nevents; j++) {
            if (ev[j].op == FAULT_FSYNC_DIR && ev[j].result == 0)
                break;
            bool used = (ev[j].op == FAULT_PWRITE &&
                         strcmp(ev[j].name, ev[i].to) == 0) ||
                        ev[j].op == FAULT_UNLINK || ev[j].op == FAULT_RENAME;
            if (used) {
                snprintf(why, size,
                         "after renaming %s, call %zu used the directory "
                         "before an fsync of it",
                         ev[i].to, j);
                return why;
            }
        }
        if (j == f->nevents) {
            snprintf(why, size, "the directory was never fsynced after %s",
                     ev[i].to);
            return why;
        }
    }
    return NULL;
}

/* Runs a traced workload that creates segments and snapshots and returns
 * check_durable_order's verdict on it. */
static const char *traced_run_order(const char *dir, unsigned bugs, char *why,
                                    size_t size, uint64_t *renames)
{
    struct fault_vfs f;
    struct kv_options o = options();

    fault_vfs_init(&f);
    fault_vfs_trace(&f);
    o.vfs = &f.vfs;
    o.segment_bytes = 128;
    o.bugs = bugs;
    struct kv_engine *e = open_ok(dir, &o);
    for (int i = 0; i < 8; i++) {
        char key[16];
        key_name(key, sizeof(key), i);
        put_durable(e, key, "ordered");
    }
    ck_assert_int_eq(kv_snapshot(e), 0);
    for (int i = 8; i < 12; i++) {
        char key[16];
        key_name(key, sizeof(key), i);
        put_durable(e, key, "ordered");
    }
    ck_assert_int_eq(kv_snapshot(e), 0);
    kv_close(e);
    ck_assert_msg(!f.events_lost, "the trace of %s filled up", dir);
    *renames = fault_vfs_calls(&f, FAULT_RENAME);
    const char *verdict = check_durable_order(&f, why, size);
    fault_vfs_destroy(&f);
    return verdict;
}

START_TEST(test_files_durable_before_use)
{
    char dir[PATH_SIZE];
    char why[256];
    uint64_t renames = 0;

    scratch_path(dir, sizeof(dir), "correct");
    const char *verdict = traced_run_order(dir, 0, why, sizeof(why), &renames);
    ck_assert_msg(verdict == NULL, "%s", verdict);
    ck_assert_uint_ge(renames, 5);

    /* The check detects a missing directory fsync. */
    scratch_path(dir, sizeof(dir), "skip-dir-fsync");
    verdict = traced_run_order(dir, KV_BUG_SKIP_DIR_FSYNC, why, sizeof(why),
                               &renames);
    ck_assert_msg(verdict != NULL, "skip-dir-fsync passed the order check");
}
END_TEST

/*
 * Checks that every log segment was fdatasynced after its last write and
 * before the next segment was renamed into place, so that no record of a
 * sealed segment can be lost to a power cut. Returns NULL or the first
 * violation in why.
 */
static const char *check_sealed_before_next(const struct fault_vfs *f,
                                            char *why, size_t size)
{
    const struct fault_event *ev = f->events;

    for (size_t i = 0; i < f->nevents; i++) {
        if (ev[i].op != FAULT_RENAME || ev[i].result != 0 ||
            strncmp(ev[i].to, "wal-", 4) != 0)
            continue;
        /* Each segment written before this rename must be synced since
         * its last write. */
        for (size_t j = 0; j < i; j++) {
            size_t len = strlen(ev[j].name);
            bool segment = strncmp(ev[j].name, "wal-", 4) == 0 && len > 4 &&
                           strcmp(ev[j].name + len - 4, ".log") == 0;
            if (ev[j].op != FAULT_PWRITE || !segment ||
                strcmp(ev[j].name, ev[i].to) == 0)
                continue;
            bool synced = false;
            for (size_t k = j + 1; k < i; k++) {
                if (ev[k].op == FAULT_PWRITE &&
                    strcmp(ev[k].name, ev[j].name) == 0)
                    break; /* a later write is checked on its own */
                synced |=
                    (ev[k].op == FAULT_FDATASYNC || ev[k].op == FAULT_FSYNC) &&
                    ev[k].result == 0 && strcmp(ev[k].name, ev[j].name) == 0;
            }
            bool last = true;
            for (size_t k = j + 1; k < i && last; k++)
                last = !(ev[k].op == FAULT_PWRITE &&
                         strcmp(ev[k].name, ev[j].name) == 0);
            if (last && !synced) {
                snprintf(why, size,
                         "%s was renamed into place while the write at call "
                         "%zu to %s was not yet fdatasynced",
                         ev[i].to, j, ev[j].name);
                return why;
            }
        }
    }
    return NULL;
}

/* Writers that do not wait for durability race the sync thread, so a
 * segment fills up and the next one is created while the sync thread has
 * not reached it; the roll itself must seal it. */
START_TEST(test_roll_seals_segment_first)
{
    struct fault_vfs f;
    struct kv_options o = options();
    char dir[PATH_SIZE];
    char why[256];
    uint64_t seq = 0;

    scratch_path(dir, sizeof(dir), "data");
    fault_vfs_init(&f);
    fault_vfs_trace(&f);
    o.vfs = &f.vfs;
    o.segment_bytes = 256;
    struct kv_engine *e = open_ok(dir, &o);
    for (int i = 0; i < 60; i++) {
        char key[16];
        key_name(key, sizeof(key), i % NKEYS);
        seq = put_ok(e, key, str("a value to fill segments"));
    }
    ck_assert_int_eq(kv_wait(e, seq), 0);
    kv_close(e);
    ck_assert_msg(!f.events_lost, "the trace filled up");
    ck_assert_uint_ge(fault_vfs_calls(&f, FAULT_RENAME), 10);
    const char *verdict = check_sealed_before_next(&f, why, sizeof(why));
    ck_assert_msg(verdict == NULL, "%s", verdict);
    fault_vfs_destroy(&f);
}
END_TEST

/* ---- the durable watermark ----------------------------------------------- */

/* Fills a directory with 40 durable puts over several small segments and
 * closes it cleanly, so its watermark covers every record. */
static void write_marked_dir(const char *dir)
{
    struct kv_options o = options();

    o.segment_bytes = 256;
    struct kv_engine *e = open_ok(dir, &o);
    for (int i = 0; i < 40; i++) {
        char key[16];
        key_name(key, sizeof(key), i % NKEYS);
        put_durable(e, key, "a value for the watermark");
    }
    kv_close(e);
}

START_TEST(test_watermark_missing_newest_segment)
{
    struct kv_options o = options();
    char orig[PATH_SIZE], work[PATH_SIZE], seg[PATH_SIZE];

    scratch_path(orig, sizeof(orig), "orig");
    scratch_path(work, sizeof(work), "work");
    write_marked_dir(orig);

    set_ctx("newest segment deleted");
    reset_dir(orig, work);
    ck_assert_uint_ge(segment_path(seg, sizeof(seg), work, -1), 3);
    ck_assert_int_eq(unlink(seg), 0);
    expect_damage(work, &o, "watermark", -1);

    set_ctx("newest segment cut back to its header");
    reset_dir(orig, work);
    segment_path(seg, sizeof(seg), work, -1);
    cut_file(seg, KV_SEG_HEADER);
    expect_damage(work, &o, "watermark", -1);

    set_ctx("last record torn below the watermark");
    reset_dir(orig, work);
    segment_path(seg, sizeof(seg), work, -1);
    cut_file(seg, file_size(seg) - 1);
    expect_damage(work, &o, seg, -1);

    /* The planted bug drops what it cannot read, watermark or not. */
    set_ctx("newest segment deleted, truncate-on-corruption");
    reset_dir(orig, work);
    segment_path(seg, sizeof(seg), work, -1);
    ck_assert_int_eq(unlink(seg), 0);
    o.bugs = KV_BUG_TRUNCATE_ON_CORRUPTION;
    struct kv_engine *e = open_ok(work, &o);
    ck_assert_uint_lt(stats_of(e).last_seq, 40);
    kv_close(e);
}
END_TEST

/* Reads the watermark stored in dir/watermark, or 0 without the file. */
/* Reads the watermark without side effects: kv_mark_open would delete
 * the temporary file of a watermark the engine is creating right now,
 * which once failed the engine in the middle of this test. */
static uint64_t stored_watermark(const char *dir)
{
    uint64_t seq = 0;

    ck_assert_int_eq(kv_mark_peek(kv_vfs_posix(), dir, &seq), 0);
    return seq;
}

START_TEST(test_watermark_follows_durable_point)
{
    struct kv_options o = options();
    char dir[PATH_SIZE];

    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    ck_assert_uint_eq(stored_watermark(dir), 0);
    uint64_t seq = put_durable(e, "k00", "marked");
    /* The sync thread updates it at most once a second. */
    for (int i = 0; i < 50 && stored_watermark(dir) < seq; i++)
        sleep_ms(100);
    ck_assert_uint_ge(stored_watermark(dir), seq);
    seq = put_durable(e, "k01", "marked at close");
    kv_close(e);
    ck_assert_uint_eq(stored_watermark(dir), seq);
}
END_TEST

/* The engine keeps its own copy of the directory name: a caller may reuse
 * the buffer it passed to kv_open. The watermark file, created on the first
 * update, once went to whatever path the reused buffer held. */
START_TEST(test_watermark_dir_name_copied)
{
    struct kv_options o = options();
    char dir[PATH_SIZE], name[PATH_SIZE];

    scratch_path(dir, sizeof(dir), "data");
    snprintf(name, sizeof(name), "%s", dir);
    struct kv_engine *e = open_ok(name, &o);
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    uint64_t seq = put_durable(e, "k00", "marked");
    for (int i = 0; i < 50 && stored_watermark(dir) < seq; i++)
        sleep_ms(100);
    ck_assert_uint_ge(stored_watermark(dir), seq);
    ck_assert_str_eq(kv_error(e), "");
    kv_close(e);
}
END_TEST

START_TEST(test_watermark_slot_damage)
{
    struct kv_options o = options();
    char orig[PATH_SIZE], work[PATH_SIZE], mark[PATH_SIZE];

    scratch_path(orig, sizeof(orig), "orig");
    scratch_path(work, sizeof(work), "work");
    write_marked_dir(orig);
    uint64_t want = stored_watermark(orig);
    ck_assert_uint_eq(want, 40);

    /* Either slot alone keeps the file readable: the newer one gives the
     * watermark, and the older one a lower but safe value. */
    for (int slot = 0; slot < 2; slot++) {
        set_ctx("slot %d damaged", slot);
        reset_dir(orig, work);
        join_path(mark, sizeof(mark), work, KV_MARK_NAME);
        flip_byte(mark, slot * KV_MARK_STRIDE + 20, 0x40);
        uint64_t got = stored_watermark(work);
        ck_assert_uint_le(got, want);
        struct kv_engine *e = open_ok(work, &o);
        ck_assert_uint_eq(stats_of(e).last_seq, 40);
        kv_close(e);
    }

    set_ctx("both slots damaged");
    reset_dir(orig, work);
    join_path(mark, sizeof(mark), work, KV_MARK_NAME);
    flip_byte(mark, 20, 0x40);
    flip_byte(mark, KV_MARK_STRIDE + 20, 0x40);
    expect_damage(work, &o, mark, 0);
}
END_TEST

/* ---- 8. kv_apply ------------------------------------------------------- */

static void apply_one_put(struct kv_engine *e, uint64_t index, const char *key,
                          const char *value, bool skip)
{
    struct kv_op op = {.type = KV_OP_PUT, .key = str(key), .value = str(value)};
    bool skipped = !skip;
    uint64_t wait = 0;
    uint64_t before = stats_of(e).last_seq;

    ck_assert_int_eq(kv_apply(e, index, &op, 1, &skipped, &wait), 0);
    ck_assert_msg(skipped == skip, "index %" PRIu64 ": skipped=%d", index,
                  skipped);
    if (skip) {
        ck_assert_msg(stats_of(e).last_seq == before,
                      "index %" PRIu64 ": a skipped entry was logged", index);
        return;
    }
    ck_assert(op.done);
    ck_assert_uint_gt(wait, before);
    ck_assert_int_eq(kv_wait(e, wait), 0);
}

START_TEST(test_apply_skips_applied_indexes)
{
    struct kv_options o = options();
    char dir[PATH_SIZE];

    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    apply_one_put(e, 5, "a", "1", false);
    ck_assert_uint_eq(stats_of(e).last_applied, 5);
    apply_one_put(e, 5, "a", "2", true);
    apply_one_put(e, 3, "a", "3", true);
    apply_one_put(e, 0, "a", "4", true);
    expect_value(e, "a", "1");
    apply_one_put(e, 6, "b", "2", false);
    ck_assert_uint_eq(stats_of(e).last_applied, 6);
    kv_close(e);

    e = open_ok(dir, &o);
    ck_assert_uint_eq(stats_of(e).last_applied, 6);
    apply_one_put(e, 6, "a", "5", true);
    expect_value(e, "a", "1");
    expect_value(e, "b", "2");
    apply_one_put(e, 7, "c", "3", false);
    ck_assert_int_eq(kv_snapshot(e), 0);
    kv_close(e);

    /* Through a snapshot: the covered log is gone, the index remains. */
    e = open_ok(dir, &o);
    ck_assert_uint_eq(stats_of(e).recovered, 0);
    ck_assert_uint_eq(stats_of(e).last_applied, 7);
    apply_one_put(e, 7, "c", "4", true);
    expect_value(e, "c", "3");
    apply_one_put(e, 8, "d", "4", false);
    kv_close(e);
    e = open_ok(dir, &o);
    ck_assert_uint_eq(stats_of(e).last_applied, 8);
    expect_value(e, "a", "1");
    expect_value(e, "d", "4");
    kv_close(e);
}
END_TEST

START_TEST(test_apply_batch_sees_own_ops)
{
    struct kv_options o = options();
    char dir[PATH_SIZE];
    struct kv_op ops[] = {
        {.type = KV_OP_PUT, .key = str("x"), .value = str("1")},
        {.type = KV_OP_CAS,
         .key = str("x"),
         .expected = str("1"),
         .value = str("2")},
        {.type = KV_OP_CAS,
         .key = str("x"),
         .expected = str("1"),
         .value = str("3")},
        {.type = KV_OP_DELETE, .key = str("y")},
        {.type = KV_OP_PUT, .key = str("y"), .value = str("9")},
        {.type = KV_OP_DELETE, .key = str("y")},
        {.type = KV_OP_CAS,
         .key = str("z"),
         .expected = str(""),
         .value = str("a")},
        {.type = KV_OP_CAS,
         .key = str("y"),
         .expected = str("9"),
         .value = str("10")},
        {.type = KV_OP_PUT, .key = str("w"), .value = str("")},
        {.type = KV_OP_CAS,
         .key = str("w"),
         .expected = str(""),
         .value = str("filled")},
    };
    static const bool want_done[] = {true, true,  false, false, true,
                                     true, false, false, true,  true};
    size_t n = sizeof(ops) / sizeof(ops[0]);
    bool skipped = true;
    uint64_t wait = 0;

    /* Start each flag opposite to its expected value, so it must be set. */
    for (size_t i = 0; i < n; i++)
        ops[i].done = !want_done[i];
    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    ck_assert_int_eq(kv_apply(e, 1, ops, n, &skipped, &wait), 0);
    ck_assert(!skipped);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(ops[i].done == want_done[i], "op %zu: done=%d", i,
                      ops[i].done);
    ck_assert_int_eq(kv_wait(e, wait), 0);
    ck_assert_uint_eq(stats_of(e).last_seq, 1); /* one record */
    for (int pass = 0; pass < 2; pass++) {
        expect_value(e, "x", "2");
        expect_value(e, "y", NULL);
        expect_value(e, "z", NULL);
        expect_value(e, "w", "filled");
        ck_assert_uint_eq(stats_of(e).keys, 2);
        kv_close(e);
        e = open_ok(dir, &o);
    }

    /* A batch without effect still records its index. */
    struct kv_op miss = {.type = KV_OP_CAS,
                         .key = str("x"),
                         .expected = str("nope"),
                         .value = str("3")};
    miss.done = true;
    ck_assert_int_eq(kv_apply(e, 2, &miss, 1, &skipped, &wait), 0);
    ck_assert(!skipped && !miss.done);
    ck_assert_int_eq(kv_wait(e, wait), 0);
    kv_close(e);
    e = open_ok(dir, &o);
    ck_assert_uint_eq(stats_of(e).last_applied, 2);
    expect_value(e, "x", "2");
    kv_close(e);
}
END_TEST

/* ---- 9. reads of pending writes ---------------------------------------- */

START_TEST(test_get_reports_pending_wait)
{
    struct fault_vfs f;
    struct kv_options o = options();
    char dir[PATH_SIZE];
    struct fl_buf v;
    bool found = false;
    bool flag = false;
    uint64_t wait = 0;

    fault_vfs_init(&f);
    o.vfs = &f.vfs;
    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    uint64_t s1 = put_durable(e, "k00", "one");
    fl_buf_init(&v);
    ck_assert_int_eq(kv_get(e, str("k00"), &v, &found, &wait), 0);
    ck_assert(found && wait == s1);

    fault_vfs_close_gate(&f);
    uint64_t s2 = put_ok(e, "k00", str("two"));
    ck_assert(fault_vfs_wait_blocked(&f, 1, 10000));
    ck_assert_int_eq(kv_get(e, str("k00"), &v, &found, &wait), 0);
    ck_assert(found);
    ck_assert(v.len == 3 && memcmp(v.data, "two", 3) == 0);
    ck_assert_uint_eq(wait, s2);
    ck_assert_uint_lt(kv_durable(e), s2);

    uint64_t s3 = 0;
    ck_assert_int_eq(kv_delete(e, str("k00"), &flag, &s3), 0);
    ck_assert(flag);
    ck_assert_uint_gt(s3, s2);
    ck_assert_int_eq(kv_get(e, str("k00"), &v, &found, &wait), 0);
    ck_assert(!found);
    ck_assert_uint_eq(wait, s3);
    /* A failed cas and a second delete report the same wait. */
    ck_assert_int_eq(
        kv_cas(e, str("k00"), str("two"), str("three"), &flag, &wait), 0);
    ck_assert(!flag);
    ck_assert_uint_eq(wait, s3);
    ck_assert_int_eq(kv_delete(e, str("k00"), &flag, &wait), 0);
    ck_assert(!flag);
    ck_assert_uint_eq(wait, s3);
    ck_assert_int_eq(kv_get(e, str("never"), &v, &found, &wait), 0);
    ck_assert(!found && wait == 0);
    ck_assert_uint_lt(kv_durable(e), s2);

    fault_vfs_open_gate(&f);
    ck_assert_int_eq(kv_wait(e, s3), 0);
    ck_assert_uint_ge(kv_durable(e), s3);
    fl_buf_free(&v);
    kv_close(e);
    fault_vfs_destroy(&f);
}
END_TEST

/* ---- 10. group commit -------------------------------------------------- */

enum { WRITERS = 8, WRITES_EACH = 500 };

struct writer {
    struct kv_engine *e;
    int id;
    int failures;
    int first_error;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;

    for (int j = 0; j < WRITES_EACH; j++) {
        char key[32];
        char value[32];
        uint64_t seq = 0;
        snprintf(key, sizeof(key), "t%d-%03d", w->id, j);
        snprintf(value, sizeof(value), "v%d", j);
        int rc = kv_put(w->e, str(key), str(value), &seq);
        if (rc == 0)
            rc = kv_wait(w->e, seq);
        if (rc != 0 && w->failures++ == 0)
            w->first_error = rc;
    }
    return NULL;
}

START_TEST(test_group_commit_shares_fdatasync)
{
    struct kv_options o = options();
    char dir[PATH_SIZE];
    struct writer writers[WRITERS];
    pthread_t threads[WRITERS];

    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    for (int i = 0; i < WRITERS; i++) {
        writers[i] = (struct writer){.e = e, .id = i};
        ck_assert_int_eq(
            pthread_create(&threads[i], NULL, writer_main, &writers[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < WRITERS; i++)
        ck_assert_msg(writers[i].failures == 0,
                      "writer %d: %d failures, first %s", i,
                      writers[i].failures, fl_strerror(writers[i].first_error));
    struct kv_stats s = stats_of(e);
    ck_assert_uint_eq(s.last_seq, WRITERS * WRITES_EACH);
    ck_assert_uint_eq(s.durable_seq, WRITERS * WRITES_EACH);
    ck_assert_msg(s.syncs < WRITERS * WRITES_EACH,
                  "%" PRIu64 " fdatasync rounds for %d puts", s.syncs,
                  WRITERS * WRITES_EACH);
    kv_close(e);

    e = open_ok(dir, &o);
    ck_assert_uint_eq(stats_of(e).keys, WRITERS * WRITES_EACH);
    expect_value(e, "t0-000", "v0");
    expect_value(e, "t7-499", "v499");
    expect_value(e, "t3-250", "v250");
    kv_close(e);
}
END_TEST

/* kv_sync runs the fdatasync itself under "always": the records are
 * durable when it returns, and a failed fdatasync makes the engine fail. */
START_TEST(test_sync_runs_round_inline)
{
    struct fault_vfs f;
    struct kv_options o = options();
    char dir[PATH_SIZE];

    scratch_path(dir, sizeof(dir), "data");
    fault_vfs_init(&f);
    o.vfs = &f.vfs;
    o.deferred_writes = true;
    struct kv_engine *e = open_ok(dir, &o);
    uint64_t a = put_ok(e, "k00", str("one"));
    uint64_t b = put_ok(e, "k01", str("two"));
    ck_assert_uint_lt(kv_durable(e), a);
    uint64_t before = fault_vfs_calls(&f, FAULT_FDATASYNC);
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_ge(kv_durable(e), b);
    ck_assert_uint_eq(fault_vfs_calls(&f, FAULT_FDATASYNC), before + 1);

    /* Nothing new: no round. */
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_eq(fault_vfs_calls(&f, FAULT_FDATASYNC), before + 1);

    fault_vfs_fail_call(&f, FAULT_FDATASYNC,
                        fault_vfs_calls(&f, FAULT_FDATASYNC) + 1, EIO);
    uint64_t c = put_ok(e, "k02", str("three"));
    ck_assert_int_eq(kv_sync(e), FL_ESTICKY);
    ck_assert_uint_lt(kv_durable(e), c);
    ck_assert_int_eq(kv_wait(e, c), FL_ESTICKY);
    ck_assert_ptr_nonnull(strstr(kv_error(e), "fdatasync"));
    kv_close(e);
    fault_vfs_destroy(&f);

    struct kv_options plain = options();
    e = open_ok(dir, &plain);
    expect_value(e, "k00", "one");
    expect_value(e, "k01", "two");
    kv_close(e);
}
END_TEST

/* A clean close under "none" still syncs the log and moves the watermark,
 * so a power cut after a clean stop loses nothing. */
START_TEST(test_sync_none_close_syncs)
{
    struct fault_vfs f;
    struct kv_options o = options();
    char dir[PATH_SIZE];

    scratch_path(dir, sizeof(dir), "data");
    fault_vfs_init(&f);
    o.vfs = &f.vfs;
    o.sync = KV_SYNC_NONE;
    struct kv_engine *e = open_ok(dir, &o);
    uint64_t before = fault_vfs_calls(&f, FAULT_FDATASYNC);
    uint64_t seq = put_ok(e, "k00", str("unsafe"));
    ck_assert_uint_eq(fault_vfs_calls(&f, FAULT_FDATASYNC), before);
    kv_close(e);
    ck_assert_uint_ge(fault_vfs_calls(&f, FAULT_FDATASYNC), before + 2);
    fault_vfs_destroy(&f);
    ck_assert_uint_eq(stored_watermark(dir), seq);
}
END_TEST

/* ---- 11. the data directory -------------------------------------------- */

START_TEST(test_open_busy_directory)
{
    struct kv_options o = options();
    char dir[PATH_SIZE];
    char err[1024] = "";
    struct kv_engine *second = NULL;

    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    put_durable(e, "k00", "held");
    int rc = kv_open(dir, &o, &second, err, sizeof(err));
    ck_assert_int_eq(rc, -EBUSY);
    ck_assert_ptr_null(second);
    ck_assert_msg(strstr(err, dir) != NULL, "error \"%s\" does not name %s",
                  err, dir);
    expect_value(e, "k00", "held");
    kv_close(e);

    e = open_ok(dir, &o);
    expect_value(e, "k00", "held");
    kv_close(e);
}
END_TEST

START_TEST(test_open_damaged_snapshot_fails)
{
    struct kv_options o = options();
    char orig[PATH_SIZE], work[PATH_SIZE], snap[PATH_SIZE];
    struct model m;

    scratch_path(orig, sizeof(orig), "orig");
    scratch_path(work, sizeof(work), "work");
    struct kv_engine *e = open_ok(orig, &o);
    write_first_puts(e, &m);
    ck_assert_int_eq(kv_snapshot(e), 0);
    kv_close(e);
    size_t n;
    char(*names)[NAME_SIZE] = list_names(orig, "snap-", ".snap", &n);
    ck_assert_uint_eq(n, 1);
    join_path(snap, sizeof(snap), work, names[0]);
    free(names);

    reset_dir(orig, work);
    off_t size = file_size(snap);
    ck_assert_int_gt(size, KV_SNAP_HEADER);
    for (off_t off = 0; off < size; off++) {
        set_ctx("snapshot byte %lld of %lld flipped", (long long)off,
                (long long)size);
        reset_dir(orig, work);
        flip_byte(snap, off, 0x10);
        /* The error points at the header or at the body it is in. */
        expect_damage(work, &o, snap,
                      off < KV_SNAP_HEADER ? 0 : KV_SNAP_HEADER);
    }
    set_ctx("snapshot cut short");
    reset_dir(orig, work);
    cut_file(snap, size - 1);
    expect_damage(work, &o, snap, -1);
    reset_dir(orig, work);
    cut_file(snap, KV_SNAP_HEADER - 1);
    expect_damage(work, &o, snap, -1);

    /* The undamaged copy opens, from the snapshot alone. */
    reset_dir(orig, work);
    e = open_ok(work, &o);
    model_expect(e, &m, "undamaged snapshot");
    ck_assert_uint_eq(stats_of(e).recovered, 0);
    kv_close(e);
}
END_TEST

START_TEST(test_open_removes_leftover_tmp_files)
{
    struct kv_options o = options();
    char dir[PATH_SIZE], wal_tmp[PATH_SIZE], snap_tmp[PATH_SIZE];
    struct model m;

    scratch_path(dir, sizeof(dir), "data");
    struct kv_engine *e = open_ok(dir, &o);
    write_first_puts(e, &m);
    kv_close(e);
    join_path(wal_tmp, sizeof(wal_tmp), dir,
              "wal-00000000000000000005.log.tmp");
    join_path(snap_tmp, sizeof(snap_tmp), dir,
              "snap-00000000000000000004.snap.tmp");
    write_file(wal_tmp, "FLKG half a header", 18);
    write_file(snap_tmp, "FLKS half a header", 18);

    e = open_ok(dir, &o);
    ck_assert_msg(!file_exists(wal_tmp), "%s was left", wal_tmp);
    ck_assert_msg(!file_exists(snap_tmp), "%s was left", snap_tmp);
    model_expect(e, &m, "after removing temporary files");
    ck_assert_uint_eq(count_names(dir, "", ".tmp"), 0);
    kv_close(e);
}
END_TEST

START_TEST(test_sync_policies_keep_data)
{
    static const char *policies[] = {"always", "batch:2", "none"};

    for (size_t p = 0; p < 3; p++) {
        struct kv_options o = options();
        char dir[PATH_SIZE];
        char name[32];
        struct model m;
        snprintf(name, sizeof(name), "policy-%zu", p);
        scratch_path(dir, sizeof(dir), name);
        set_ctx("sync %s", policies[p]);
        ck_assert_int_eq(kv_sync_parse(policies[p], &o.sync, &o.batch_ms), 0);
        struct kv_engine *e = open_ok(dir, &o);
        write_first_puts(e, &m);
        struct kv_stats s = stats_of(e);
        ck_assert_int_eq(s.sync, o.sync);
        ck_assert_uint_eq(s.batch_ms, o.batch_ms);
        kv_close(e);
        e = open_ok(dir, &o);
        model_expect(e, &m, "reopened");
        kv_close(e);
    }
}
END_TEST

/* ---- 12. option parsers ------------------------------------------------ */

START_TEST(test_sync_parse_valid_and_invalid)
{
    static const struct {
        const char *text;
        enum kv_sync sync;
        unsigned ms;
    } valid[] = {
        {"always", KV_SYNC_ALWAYS, 0},
        {"none", KV_SYNC_NONE, 0},
        {"batch:1", KV_SYNC_BATCH, 1},
        {"batch:250", KV_SYNC_BATCH, 250},
        {"batch:10000", KV_SYNC_BATCH, 10000},
    };
    static const char *invalid[] = {
        "",           "Always",
        "always ",    "never",
        "batch",      "batch:",
        "batch:0",    "batch:10001",
        "batch:-1",   "batch: 5",
        "batch:+5",   "batch:5ms",
        "batch:0x10", "batch:99999999999999999999",
        "batch:5:5",  "BATCH:5",
    };

    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        enum kv_sync sync = KV_SYNC_NONE;
        unsigned ms = 77;
        ck_assert_msg(kv_sync_parse(valid[i].text, &sync, &ms) == 0,
                      "\"%s\" rejected", valid[i].text);
        ck_assert_msg(sync == valid[i].sync && ms == valid[i].ms,
                      "\"%s\" parsed as %d, %u", valid[i].text, sync, ms);
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        enum kv_sync sync;
        unsigned ms;
        ck_assert_msg(kv_sync_parse(invalid[i], &sync, &ms) == FL_EINPUT,
                      "\"%s\" accepted", invalid[i]);
    }
}
END_TEST

START_TEST(test_bug_parse_valid_and_invalid)
{
    static const struct {
        const char *name;
        unsigned bit;
    } valid[] = {
        {"ack-before-fsync", KV_BUG_ACK_BEFORE_FSYNC},
        {"skip-dir-fsync", KV_BUG_SKIP_DIR_FSYNC},
        {"ignore-crc", KV_BUG_IGNORE_CRC},
        {"truncate-on-corruption", KV_BUG_TRUNCATE_ON_CORRUPTION},
    };
    static const char *invalid[] = {
        "",
        "none",
        "ignore_crc",
        "IGNORE-CRC",
        "ignore-crc ",
        " ignore-crc",
        "ignore-crc,skip-dir-fsync",
        "ack-before",
    };
    unsigned all = 0;

    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        unsigned bit = 0;
        ck_assert_msg(kv_bug_parse(valid[i].name, &bit) == 0, "\"%s\" rejected",
                      valid[i].name);
        ck_assert_msg(bit == valid[i].bit, "\"%s\" gave bit 0x%x",
                      valid[i].name, bit);
        ck_assert_msg(strstr(kv_bug_names(), valid[i].name) != NULL,
                      "kv_bug_names() lacks %s", valid[i].name);
        ck_assert((all & bit) == 0);
        all |= bit;
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        unsigned bit = 0;
        ck_assert_msg(kv_bug_parse(invalid[i], &bit) == FL_EINPUT,
                      "\"%s\" accepted", invalid[i]);
    }
}
END_TEST

/* ---- 13. manual mode on the simulated disk ----------------------------- */

#define SIM_DIR "/d"

static const enum kv_sync syncing_policies[] = {KV_SYNC_ALWAYS, KV_SYNC_BATCH};
static const enum kv_sync all_policies[] = {KV_SYNC_ALWAYS, KV_SYNC_BATCH,
                                            KV_SYNC_NONE};

static const char *policy_name(enum kv_sync sync)
{
    return sync == KV_SYNC_ALWAYS  ? "always"
           : sync == KV_SYNC_BATCH ? "batch"
                                   : "none";
}

/* Returns a new simulated disk with an empty directory SIM_DIR. */
static struct sim_disk *sim_new(uint64_t seed)
{
    struct sim_disk *d = NULL;

    ck_assert_int_eq(sim_disk_new(&d, seed), 0);
    const struct kv_vfs *v = sim_disk_vfs(d);
    ck_assert_int_eq(v->mkdir(v->ctx, SIM_DIR, 0755), 0);
    return d;
}

static struct kv_options manual_options(const struct kv_vfs *vfs,
                                        enum kv_sync sync)
{
    struct kv_options o = options();

    o.vfs = vfs;
    o.manual = true;
    o.sync = sync;
    /* A sync thread would wait a whole second before each round. */
    o.batch_ms = sync == KV_SYNC_BATCH ? 1000 : 0;
    return o;
}

/* Cuts the power, closes e on the dead disk and brings the disk back. */
static void crash_and_close(struct sim_disk *d, struct kv_engine *e,
                            enum sim_crash mode)
{
    sim_disk_crash(d, mode);
    kv_close(e);
    sim_disk_restart(d);
}

/* Returns the number of threads of this process. */
static size_t thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    size_t n = 0;

    ck_assert_msg(d != NULL, "cannot open /proc/self/task: %s",
                  strerror(errno));
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n;
}

struct sim_names {
    char (*v)[NAME_SIZE];
    size_t n;
};

static int add_sim_name(void *arg, const char *name)
{
    struct sim_names *names = arg;

    names->v = realloc(names->v, (names->n + 1) * sizeof(*names->v));
    ck_assert_ptr_nonnull(names->v);
    snprintf(names->v[names->n++], NAME_SIZE, "%s", name);
    return 0;
}

/* Returns the sorted names in SIM_DIR with prefix. The caller frees the
 * v array. */
static struct sim_names sim_list(const struct kv_vfs *v, const char *prefix)
{
    struct sim_names all = {NULL, 0};
    struct sim_names out = {NULL, 0};

    ck_assert_int_eq(v->list(v->ctx, SIM_DIR, add_sim_name, &all), 0);
    for (size_t i = 0; i < all.n; i++) {
        if (strncmp(all.v[i], prefix, strlen(prefix)) == 0)
            add_sim_name(&out, all.v[i]);
    }
    free(all.v);
    if (out.n > 1)
        qsort(out.v, out.n, sizeof(*out.v), cmp_names);
    return out;
}

static size_t sim_count(const struct kv_vfs *v, const char *prefix)
{
    struct sim_names names = sim_list(v, prefix);

    free(names.v);
    return names.n;
}

/* Appends every file of SIM_DIR to image, in name order: the name, its
 * size and its bytes. */
static void sim_image(const struct kv_vfs *v, struct fl_buf *image)
{
    struct sim_names names = sim_list(v, "");

    for (size_t i = 0; i < names.n; i++) {
        char path[PATH_SIZE];
        off_t size = 0;
        join_path(path, sizeof(path), SIM_DIR, names.v[i]);
        int fd = v->open(v->ctx, path, O_RDONLY, 0);
        ck_assert_msg(fd >= 0, "%s: cannot open %s: %s", ctx, path,
                      fl_strerror(fd));
        ck_assert_int_eq(v->size(v->ctx, fd, &size), 0);
        unsigned char *data = malloc((size_t)size + 1);
        ck_assert_ptr_nonnull(data);
        ck_assert_int_eq(kv_vfs_read_all(v, fd, data, (size_t)size, 0), 0);
        v->close(v->ctx, fd);
        fl_buf_printf(image, "%s %lld\n", names.v[i], (long long)size);
        fl_buf_add(image, data, (size_t)size);
        free(data);
    }
    free(names.v);
    ck_assert(!image->failed);
}

/* Reads the watermark stored on the simulated disk, or 0 without the
 * file. */
static uint64_t sim_watermark(const struct kv_vfs *v)
{
    struct kv_mark m;
    char err[512] = "";

    ck_assert_msg(kv_mark_open(&m, v, SIM_DIR, false, err, sizeof(err)) == 0,
                  "%s: watermark: %s", ctx, err);
    uint64_t seq = m.seq;
    kv_mark_close(&m);
    return seq;
}

/* Neither the sync thread nor the snapshot thread starts, whatever the
 * policy. Without manual, the same open starts them. */
START_TEST(test_manual_starts_no_thread)
{
    enum kv_sync sync = all_policies[_i];
    struct sim_disk *d = sim_new(1);
    struct kv_options o = manual_options(sim_disk_vfs(d), sync);

    set_ctx("sync %s", policy_name(sync));
    o.snapshot_every = 2;
    size_t before = thread_count();
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    ck_assert_uint_eq(thread_count(), before);
    put_ok(e, "k00", str("v"));
    put_ok(e, "k01", str("v"));
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_eq(thread_count(), before);
    kv_close(e);

    /* The count must include the engine's threads. It may exceed them,
     * because a sanitizer's runtime can start a thread of its own. */
    o.manual = false;
    e = open_ok(SIM_DIR, &o);
    size_t threads = sync == KV_SYNC_NONE ? 1 : 2;
    ck_assert_uint_ge(thread_count(), before + threads);
    kv_close(e);
    sim_disk_free(d);
}
END_TEST

/* Records become durable only in kv_sync, which also moves the watermark
 * every time. A power cut keeps what it synced and loses the rest. */
START_TEST(test_manual_crash_keeps_synced_only)
{
    enum kv_sync sync = syncing_policies[_i];
    struct sim_disk *d = sim_new(2);
    const struct kv_vfs *v = sim_disk_vfs(d);
    struct kv_options o = manual_options(v, sync);

    set_ctx("sync %s", policy_name(sync));
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    uint64_t syncs = stats_of(e).syncs;
    put_ok(e, "k00", str("synced"));
    uint64_t b = put_ok(e, "k01", str("synced"));
    ck_assert_uint_lt(kv_durable(e), b);
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_eq(kv_durable(e), b);
    ck_assert_uint_eq(stats_of(e).syncs, syncs + 1);
    ck_assert_uint_eq(sim_watermark(v), b);

    /* A second round right after the first moves the watermark too: no
     * rate limit. */
    uint64_t c = put_ok(e, "k02", str("synced too"));
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_eq(kv_durable(e), c);
    ck_assert_uint_eq(sim_watermark(v), c);

    /* Nothing waits: no round. */
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_eq(stats_of(e).syncs, syncs + 2);

    uint64_t lost = put_ok(e, "k03", str("written, not synced"));
    put_ok(e, "k00", str("overwritten, not synced"));
    ck_assert_uint_lt(kv_durable(e), lost);
    crash_and_close(d, e, SIM_CRASH_LOSE_UNSYNCED);

    e = open_ok(SIM_DIR, &o);
    expect_value(e, "k00", "synced");
    expect_value(e, "k01", "synced");
    expect_value(e, "k02", "synced too");
    expect_value(e, "k03", NULL);
    ck_assert_uint_eq(stats_of(e).last_seq, c);
    kv_close(e);
    sim_disk_free(d);
}
END_TEST

/* kv_wait runs the round itself instead of blocking, deferred records
 * included, and rejects a sequence number that was never logged. */
START_TEST(test_manual_wait_runs_round)
{
    enum kv_sync sync = all_policies[_i];
    struct sim_disk *d = sim_new(3);
    struct kv_options o = manual_options(sim_disk_vfs(d), sync);

    set_ctx("sync %s", policy_name(sync));
    o.deferred_writes = true;
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    uint64_t syncs = stats_of(e).syncs;
    uint64_t a = put_ok(e, "k00", str("one"));
    uint64_t b = put_ok(e, "k01", str("two"));
    ck_assert_uint_lt(kv_durable(e), a);
    ck_assert_int_eq(kv_wait(e, a), 0);
    ck_assert_uint_ge(kv_durable(e), b);
    uint64_t rounds = sync == KV_SYNC_NONE ? 0 : 1;
    ck_assert_uint_eq(stats_of(e).syncs, syncs + rounds);

    /* Already durable: no new round. */
    ck_assert_int_eq(kv_wait(e, b), 0);
    ck_assert_uint_eq(stats_of(e).syncs, syncs + rounds);

    ck_assert_int_eq(kv_wait(e, b + 1), FL_EINPUT);
    ck_assert_int_eq(kv_wait(e, UINT64_MAX), FL_EINPUT);
    ck_assert(!stats_of(e).failed);
    kv_close(e);

    e = open_ok(SIM_DIR, &o);
    expect_value(e, "k00", "one");
    expect_value(e, "k01", "two");
    kv_close(e);
    sim_disk_free(d);
}
END_TEST

/* kv_sync honours snapshot_every in the caller. The writing calls take no
 * snapshot, and kv_sync takes one once enough records were logged and
 * drops the segments it covers. */
START_TEST(test_manual_snapshot_every_inline)
{
    enum kv_sync sync = all_policies[_i];
    struct sim_disk *d = sim_new(4);
    const struct kv_vfs *v = sim_disk_vfs(d);
    struct kv_options o = manual_options(v, sync);
    char key[16];

    set_ctx("sync %s", policy_name(sync));
    o.snapshot_every = 5;
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    for (int i = 0; i < 4; i++) {
        key_name(key, sizeof(key), i);
        put_ok(e, key, str("first"));
    }
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_eq(stats_of(e).snapshots, 0);
    put_ok(e, "k04", str("first"));
    ck_assert_uint_eq(stats_of(e).snapshots, 0);
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_eq(stats_of(e).snapshots, 1);
    ck_assert_uint_eq(stats_of(e).snapshot_seq, 5);
    ck_assert_uint_eq(sim_count(v, "snap-"), 1);
    struct sim_names segments = sim_list(v, "wal-");
    ck_assert_uint_eq(segments.n, 1);
    ck_assert_str_eq(segments.v[0], "wal-00000000000000000006.log");
    free(segments.v);

    /* Four more records are not enough, and the fifth, a kv_apply batch,
     * is. */
    for (int i = 5; i < 9; i++) {
        key_name(key, sizeof(key), i);
        put_ok(e, key, str("second"));
    }
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_eq(stats_of(e).snapshots, 1);
    struct kv_op op = {.type = KV_OP_DELETE, .key = str("k00")};
    bool skipped = true;
    uint64_t wait = 0;
    ck_assert_int_eq(kv_apply(e, 4, &op, 1, &skipped, &wait), 0);
    ck_assert(!skipped);
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_eq(stats_of(e).snapshots, 2);
    ck_assert_uint_eq(stats_of(e).snapshot_seq, 10);
    ck_assert_uint_eq(sim_count(v, "snap-"), 1);
    crash_and_close(d, e, SIM_CRASH_LOSE_UNSYNCED);

    e = open_ok(SIM_DIR, &o);
    struct kv_stats s = stats_of(e);
    ck_assert_uint_eq(s.snapshot_seq, 10);
    ck_assert_uint_eq(s.recovered, 0);
    ck_assert_uint_eq(s.last_applied, 4);
    expect_value(e, "k00", NULL);
    expect_value(e, "k04", "first");
    expect_value(e, "k08", "second");
    kv_close(e);
    sim_disk_free(d);
}
END_TEST

/* What one seeded run leaves: the disk, the export and the counters. */
struct run_result {
    struct fl_buf image;
    struct fl_buf export;
    uint64_t applied;
    struct kv_stats stats;
};

/*
 * Runs a seeded mix of puts, deletes, compare-and-sets and kv_apply
 * batches in manual mode on a fresh simulated disk, with kv_sync at
 * random points, inline snapshots, small segments and one torn crash in
 * the middle. The run's only inputs are the seed and the calls.
 */
static void manual_run(uint64_t seed, struct run_result *out)
{
    struct sim_disk *d = sim_new(seed);
    const struct kv_vfs *v = sim_disk_vfs(d);
    struct kv_options o = manual_options(v, KV_SYNC_ALWAYS);
    struct fl_rng rng;
    uint64_t index = 0;

    o.deferred_writes = true;
    o.segment_bytes = 512;
    o.snapshot_every = 7;
    fl_rng_seed(&rng, seed);
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    for (int step = 0; step < 300; step++) {
        char key[16];
        char value[32];
        uint64_t wait = 0;
        bool flag = false;
        key_name(key, sizeof(key), (int)fl_rng_below(&rng, NKEYS));
        snprintf(value, sizeof(value), "v%" PRIu64, fl_rng_next(&rng));
        switch (fl_rng_below(&rng, 5)) {
        case 0:
            ck_assert_int_eq(kv_delete(e, str(key), &flag, &wait), 0);
            break;
        case 1:
            ck_assert_int_eq(
                kv_cas(e, str(key), str(value), str("swapped"), &flag, &wait),
                0);
            break;
        case 2: {
            struct kv_op op = {
                .type = KV_OP_PUT, .key = str(key), .value = str(value)};
            ck_assert_int_eq(kv_apply(e, ++index, &op, 1, &flag, &wait), 0);
            break;
        }
        default:
            put_ok(e, key, str(value));
            break;
        }
        if (fl_rng_chance(&rng, 0.2))
            ck_assert_int_eq(kv_sync(e), 0);
        if (step == 150) {
            crash_and_close(d, e, SIM_CRASH_TORN);
            e = open_ok(SIM_DIR, &o);
            index = stats_of(e).last_applied;
        }
    }
    ck_assert_int_eq(kv_sync(e), 0);
    fl_buf_init(&out->export);
    ck_assert_int_eq(kv_export(e, &out->export, &out->applied), 0);
    out->stats = stats_of(e);
    kv_close(e);
    fl_buf_init(&out->image);
    sim_image(v, &out->image);
    sim_disk_free(d);
}

static void run_result_free(struct run_result *r)
{
    fl_buf_free(&r->image);
    fl_buf_free(&r->export);
}

static bool same_bytes(const struct fl_buf *a, const struct fl_buf *b)
{
    return a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Two runs of one seed write the same bytes to the disk and end in the
 * same state. Another seed writes other bytes. */
START_TEST(test_manual_runs_identical)
{
    uint64_t seed = 40 + (uint64_t)_i;
    struct run_result a, b, other;

    set_ctx("seed %" PRIu64, seed);
    manual_run(seed, &a);
    manual_run(seed, &b);
    manual_run(seed + 1000, &other);

    ck_assert_msg(same_bytes(&a.image, &b.image),
                  "%s: the disks differ (%zu and %zu bytes)", ctx, a.image.len,
                  b.image.len);
    ck_assert_msg(same_bytes(&a.export, &b.export), "%s: the exports differ",
                  ctx);
    ck_assert_uint_eq(a.applied, b.applied);
    ck_assert_uint_eq(a.stats.last_seq, b.stats.last_seq);
    ck_assert_uint_eq(a.stats.durable_seq, b.stats.durable_seq);
    ck_assert_uint_eq(a.stats.keys, b.stats.keys);
    ck_assert_uint_eq(a.stats.bytes, b.stats.bytes);
    ck_assert_uint_eq(a.stats.last_applied, b.stats.last_applied);
    ck_assert_uint_eq(a.stats.snapshots, b.stats.snapshots);
    ck_assert_uint_eq(a.stats.snapshot_seq, b.stats.snapshot_seq);
    ck_assert_uint_eq(a.stats.syncs, b.stats.syncs);
    ck_assert_uint_eq(a.stats.recovered, b.stats.recovered);
    ck_assert_uint_eq(a.stats.truncated, b.stats.truncated);
    /* The run did something worth comparing. */
    ck_assert_uint_gt(a.stats.snapshots, 0);
    ck_assert_uint_gt(a.stats.last_applied, 0);
    ck_assert_msg(!same_bytes(&a.image, &other.image),
                  "%s: seed %" PRIu64 " wrote the same disk", ctx, seed + 1000);
    run_result_free(&a);
    run_result_free(&b);
    run_result_free(&other);
}
END_TEST

/* kv_close on a crashed disk returns: every call fails with EIO, so the
 * flush, the last round and the watermark update fail and are logged. */
START_TEST(test_manual_close_after_crash)
{
    enum kv_sync sync = all_policies[_i % 3];
    bool deferred = _i >= 3;
    struct sim_disk *d = sim_new(5);
    struct kv_options o = manual_options(sim_disk_vfs(d), sync);

    set_ctx("sync %s, deferred writes %d", policy_name(sync), deferred);
    o.deferred_writes = deferred;
    o.snapshot_every = 3;
    o.segment_bytes = 256;
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    for (int i = 0; i < 6; i++)
        put_ok(e, "k00", str("synced"));
    ck_assert_int_eq(kv_sync(e), 0);
    ck_assert_uint_gt(stats_of(e).snapshots, 0);
    put_ok(e, "k01", str("pending"));
    sim_disk_crash(d, SIM_CRASH_LOSE_UNSYNCED);
    if (!deferred) {
        /* The record goes to the disk at once and fails there. */
        uint64_t wait = 0;
        ck_assert_int_eq(kv_put(e, str("k02"), str("failed"), &wait),
                         FL_ESTICKY);
        ck_assert(stats_of(e).failed);
    }
    kv_close(e);
    sim_disk_restart(d);

    e = open_ok(SIM_DIR, &o);
    expect_value(e, "k00", "synced");
    expect_value(e, "k01", NULL);
    expect_value(e, "k02", NULL);
    kv_close(e);
    sim_disk_free(d);
}
END_TEST

/* ---- 14. export and import --------------------------------------------- */

/* Builds the state moved between engines in these cases: k00..k05 (k03
 * deleted again, k05 empty), k07 with a value from a kv_apply batch, a
 * binary key holding a 100 KiB value, and applied index 9. Records it in
 * m, except the binary key. */
static void build_source_state(struct kv_engine *e, struct model *m)
{
    static unsigned char big[100 * 1024];
    static const unsigned char binary_key[] = {'b', 0, 'i', 0xff, 'n'};
    char key[16];
    char value[16];
    bool existed = false;
    uint64_t wait = 0;

    memset(m, 0, sizeof(*m));
    for (int i = 0; i < 5; i++) {
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "new-%d", i);
        put_ok(e, key, str(value));
        model_set(m, i, value, strlen(value));
    }
    ck_assert_int_eq(kv_delete(e, str("k03"), &existed, &wait), 0);
    ck_assert(existed);
    m->present[3] = false;
    put_ok(e, "k05", str(""));
    model_set(m, 5, "", 0);
    apply_one_put(e, 9, "k07", "applied", false);
    model_set(m, 7, "applied", 7);
    fill_pattern(big, sizeof(big), 7);
    ck_assert_int_eq(kv_put(e, bytes(binary_key, sizeof(binary_key)),
                            bytes(big, sizeof(big)), &wait),
                     0);
    ck_assert_int_eq(kv_sync(e), 0);
}

/* Checks that e contains the keys of m, the binary key of build_source_state
 * and applied index applied, and that reads of them report durable
 * waits. */
static void expect_source_state(struct kv_engine *e, const struct model *m,
                                uint64_t applied, const char *what)
{
    static const unsigned char binary_key[] = {'b', 0, 'i', 0xff, 'n'};
    unsigned char big[100 * 1024];
    struct fl_buf value;
    bool found = false;
    uint64_t wait = UINT64_MAX;

    for (int i = 0; i < NKEYS; i++) {
        char key[16];
        model_expect_key(e, m, i, what);
        key_name(key, sizeof(key), i);
        fl_buf_init(&value);
        ck_assert_int_eq(kv_get(e, str(key), &value, &found, &wait), 0);
        ck_assert_msg(wait <= kv_durable(e),
                      "%s: %s: a read of %s waits for %" PRIu64
                      ", durable is %" PRIu64,
                      ctx, what, key, wait, kv_durable(e));
        fl_buf_free(&value);
    }
    fill_pattern(big, sizeof(big), 7);
    fl_buf_init(&value);
    ck_assert_int_eq(
        kv_get(e, bytes(binary_key, sizeof(binary_key)), &value, &found, &wait),
        0);
    ck_assert_msg(found, "%s: %s: the binary key is missing", ctx, what);
    ck_assert_uint_eq(value.len, sizeof(big));
    ck_assert(memcmp(value.data, big, sizeof(big)) == 0);
    ck_assert_msg(wait <= kv_durable(e),
                  "%s: %s: read waits for %" PRIu64 ", durable is %" PRIu64,
                  ctx, what, wait, kv_durable(e));
    fl_buf_free(&value);
    struct kv_stats s = stats_of(e);
    ck_assert_uint_eq(s.keys, model_count(m) + 1);
    ck_assert_uint_eq(s.last_applied, applied);
}

/* Exports the source state from a fresh engine on its own disk. */
static void source_export(struct fl_buf *out, struct model *m)
{
    struct sim_disk *d = sim_new(6);
    struct kv_options o = manual_options(sim_disk_vfs(d), KV_SYNC_ALWAYS);
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    uint64_t applied = 0;

    build_source_state(e, m);
    fl_buf_init(out);
    ck_assert_int_eq(kv_export(e, out, &applied), 0);
    ck_assert_uint_eq(applied, 9);
    kv_close(e);
    sim_disk_free(d);
}

/* Gives e the state the import replaces: k00..k07 as "old-i", k03
 * included, k12 that the export lacks, and applied index 3. Records it in
 * m. */
static void build_target_state(struct kv_engine *e, struct model *m)
{
    char key[16];
    char value[16];

    memset(m, 0, sizeof(*m));
    for (int i = 0; i < 8; i++) {
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "old-%d", i);
        put_ok(e, key, str(value));
        model_set(m, i, value, strlen(value));
    }
    put_ok(e, "k12", str("only-old"));
    model_set(m, 12, "only-old", 8);
    apply_one_put(e, 3, "k06", "old-applied", false);
    model_set(m, 6, "old-applied", 11);
}

static void import_ok(struct kv_engine *e, const struct fl_buf *data)
{
    char err[512] = "";
    int rc = kv_import(e, data->data, data->len, err, sizeof(err));

    ck_assert_msg(rc == 0, "%s: kv_import: %s (%s)", ctx, fl_strerror(rc), err);
}

/* An export moves the keys, the deletes and the applied index to another
 * engine, whose own keys go, and kv_apply continues after the index. */
START_TEST(test_export_import_round_trip)
{
    struct fl_buf data;
    struct model source, target;
    struct sim_disk *d = sim_new(7);
    struct kv_options o = manual_options(sim_disk_vfs(d), KV_SYNC_ALWAYS);

    source_export(&data, &source);
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    build_target_state(e, &target);
    model_expect(e, &target, "before the import");
    uint64_t last_seq = stats_of(e).last_seq;

    import_ok(e, &data);
    expect_source_state(e, &source, 9, "imported");
    expect_value(e, "k12", NULL);
    struct kv_stats s = stats_of(e);
    ck_assert_uint_eq(s.last_seq, last_seq);
    ck_assert_uint_eq(s.snapshot_seq, last_seq);
    ck_assert_uint_ge(s.durable_seq, last_seq);

    apply_one_put(e, 9, "k07", "replayed", true);
    apply_one_put(e, 4, "k07", "replayed", true);
    expect_value(e, "k07", "applied");
    apply_one_put(e, 10, "k08", "after", false);
    ck_assert_uint_eq(stats_of(e).last_applied, 10);

    model_set(&source, 8, "after", 5);
    kv_close(e);
    e = open_ok(SIM_DIR, &o);
    expect_source_state(e, &source, 10, "reopened");

    /* The imported state moves on to a third engine like any other. */
    struct fl_buf again;
    uint64_t applied = 0;
    fl_buf_init(&again);
    ck_assert_int_eq(kv_export(e, &again, &applied), 0);
    ck_assert_uint_eq(applied, 10);
    kv_close(e);
    struct sim_disk *third_disk = sim_new(70);
    struct kv_options third_o =
        manual_options(sim_disk_vfs(third_disk), KV_SYNC_ALWAYS);
    struct kv_engine *third = open_ok(SIM_DIR, &third_o);
    import_ok(third, &again);
    expect_source_state(third, &source, 10, "exported again");
    kv_close(third);

    sim_disk_free(third_disk);
    fl_buf_free(&again);
    fl_buf_free(&data);
    sim_disk_free(d);
}
END_TEST

/* Case names of test_import_survives_crash, by loop index. */
static const char *const import_targets[] = {
    "records since the last snapshot",
    "nothing since the last snapshot",
    "empty engine",
    "deferred records not yet written",
};

/* A power cut right after kv_import returns, without kv_sync, recovers
 * the imported state, also when nothing was logged since the last
 * snapshot and on an engine that never logged anything. */
START_TEST(test_import_survives_crash)
{
    struct fl_buf data;
    struct model source, target;
    struct sim_disk *d = sim_new(8);
    const struct kv_vfs *v = sim_disk_vfs(d);
    struct kv_options o = manual_options(v, KV_SYNC_ALWAYS);

    set_ctx("%s", import_targets[_i]);
    source_export(&data, &source);
    o.deferred_writes = _i == 3;
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    if (_i != 2)
        build_target_state(e, &target);
    if (_i == 1) {
        ck_assert_int_eq(kv_snapshot(e), 0);
        ck_assert_uint_eq(stats_of(e).snapshot_seq, stats_of(e).last_seq);
    }
    if (_i == 3) {
        ck_assert_int_eq(kv_sync(e), 0);
        put_ok(e, "k12", str("deferred"));
        put_ok(e, "k13", str("deferred"));
    }
    import_ok(e, &data);
    expect_source_state(e, &source, 9, "imported");
    crash_and_close(d, e, SIM_CRASH_LOSE_UNSYNCED);

    e = open_ok(SIM_DIR, &o);
    expect_source_state(e, &source, 9, "after the crash");
    ck_assert_uint_eq(stats_of(e).recovered, 0);
    ck_assert_uint_eq(sim_count(v, "snap-"), 1);
    ck_assert_uint_eq(sim_count(v, "wal-"), 1);
    kv_close(e);
    e = open_ok(SIM_DIR, &o);
    expect_source_state(e, &source, 9, "after a clean close");
    kv_close(e);
    fl_buf_free(&data);
    sim_disk_free(d);
}
END_TEST

/* A kv_vfs over a simulated disk that cuts the power just before mutating
 * call number crash_at reaches the disk, so that call and every later one
 * fail. Mutating calls: open with O_CREAT, pwrite, the syncs, ftruncate,
 * rename, unlink and mkdir. */
struct crash_vfs {
    struct kv_vfs vfs;
    const struct kv_vfs *base;
    struct sim_disk *disk;
    enum sim_crash mode;
    uint64_t mutating;
    uint64_t crash_at; /* 0: never */
};

static const struct kv_vfs *crash_base(void *self, bool mutating)
{
    struct crash_vfs *c = self;

    if (mutating && ++c->mutating == c->crash_at)
        sim_disk_crash(c->disk, c->mode);
    return c->base;
}

static int c_open(void *self, const char *path, int flags, int mode)
{
    const struct kv_vfs *b = crash_base(self, (flags & O_CREAT) != 0);
    return b->open(b->ctx, path, flags, mode);
}

static int c_close(void *self, int fd)
{
    const struct kv_vfs *b = crash_base(self, false);
    return b->close(b->ctx, fd);
}

static ssize_t c_pread(void *self, int fd, void *buf, size_t len, off_t off)
{
    const struct kv_vfs *b = crash_base(self, false);
    return b->pread(b->ctx, fd, buf, len, off);
}

static ssize_t c_pwrite(void *self, int fd, const void *buf, size_t len,
                        off_t off)
{
    const struct kv_vfs *b = crash_base(self, true);
    return b->pwrite(b->ctx, fd, buf, len, off);
}

static int c_fsync(void *self, int fd)
{
    const struct kv_vfs *b = crash_base(self, true);
    return b->fsync(b->ctx, fd);
}

static int c_fdatasync(void *self, int fd)
{
    const struct kv_vfs *b = crash_base(self, true);
    return b->fdatasync(b->ctx, fd);
}

static int c_ftruncate(void *self, int fd, off_t len)
{
    const struct kv_vfs *b = crash_base(self, true);
    return b->ftruncate(b->ctx, fd, len);
}

static int c_size(void *self, int fd, off_t *out)
{
    const struct kv_vfs *b = crash_base(self, false);
    return b->size(b->ctx, fd, out);
}

static int c_rename(void *self, const char *from, const char *to)
{
    const struct kv_vfs *b = crash_base(self, true);
    return b->rename(b->ctx, from, to);
}

static int c_unlink(void *self, const char *path)
{
    const struct kv_vfs *b = crash_base(self, true);
    return b->unlink(b->ctx, path);
}

static int c_mkdir(void *self, const char *path, int mode)
{
    const struct kv_vfs *b = crash_base(self, true);
    return b->mkdir(b->ctx, path, mode);
}

static int c_fsync_dir(void *self, const char *path)
{
    const struct kv_vfs *b = crash_base(self, true);
    return b->fsync_dir(b->ctx, path);
}

static int c_list(void *self, const char *path,
                  int (*each)(void *self, const char *name), void *arg)
{
    const struct kv_vfs *b = crash_base(self, false);
    return b->list(b->ctx, path, each, arg);
}

static void crash_vfs_init(struct crash_vfs *c, struct sim_disk *d,
                           enum sim_crash mode)
{
    memset(c, 0, sizeof(*c));
    c->base = sim_disk_vfs(d);
    c->disk = d;
    c->mode = mode;
    c->vfs = (struct kv_vfs){
        .ctx = c,
        .open = c_open,
        .close = c_close,
        .pread = c_pread,
        .pwrite = c_pwrite,
        .fsync = c_fsync,
        .fdatasync = c_fdatasync,
        .ftruncate = c_ftruncate,
        .size = c_size,
        .rename = c_rename,
        .unlink = c_unlink,
        .mkdir = c_mkdir,
        .fsync_dir = c_fsync_dir,
        .list = c_list,
    };
}

static bool same_model(const struct model *a, const struct model *b)
{
    for (int i = 0; i < NKEYS; i++) {
        if (a->present[i] != b->present[i])
            return false;
        if (a->present[i] &&
            !model_value_is(a, i, bytes(b->value[i], b->len[i])))
            return false;
    }
    return true;
}

/* A power cut at each mutating call of an import leaves the old state or
 * the new one, never a mix. Once kv_import returned 0, it leaves the new
 * one. */
START_TEST(test_import_crash_at_each_step)
{
    enum sim_crash mode = _i ? SIM_CRASH_TORN : SIM_CRASH_LOSE_UNSYNCED;
    struct fl_buf data;
    struct model source, target;
    bool saw_old = false;
    bool saw_new = false;
    bool finished = false;

    source_export(&data, &source);
    for (uint64_t n = 1; !finished; n++) {
        struct sim_disk *d = sim_new(100 + n);
        struct crash_vfs c;
        struct model got;
        char err[512] = "";

        set_ctx("%s crash at mutating call %" PRIu64 " of the import",
                _i ? "torn" : "lose-unsynced", n);
        ck_assert_msg(n < 100, "%s: the import never finished", ctx);
        crash_vfs_init(&c, d, mode);
        struct kv_options o = manual_options(&c.vfs, KV_SYNC_ALWAYS);
        struct kv_engine *e = open_ok(SIM_DIR, &o);
        build_target_state(e, &target);
        ck_assert_int_eq(kv_sync(e), 0);
        c.crash_at = c.mutating + n;
        int rc = kv_import(e, data.data, data.len, err, sizeof(err));
        finished = c.mutating < c.crash_at;
        if (finished) {
            ck_assert_msg(rc == 0, "%s: kv_import: %s (%s)", ctx,
                          fl_strerror(rc), err);
            sim_disk_crash(d, mode);
        } else {
            ck_assert_msg(rc == FL_ESTICKY, "%s: kv_import returned %s (%s)",
                          ctx, fl_strerror(rc), err);
            ck_assert_msg(err[0] != '\0', "%s: no reason given", ctx);
        }
        kv_close(e);
        sim_disk_restart(d);

        struct kv_options plain =
            manual_options(sim_disk_vfs(d), KV_SYNC_ALWAYS);
        e = open_ok(SIM_DIR, &plain);
        model_read(e, &got);
        uint64_t applied = stats_of(e).last_applied;
        if (same_model(&got, &source) && applied == 9) {
            expect_source_state(e, &source, 9, "after the crash");
            saw_new = true;
        } else {
            ck_assert_msg(!finished, "%s: the finished import was lost", ctx);
            model_expect(e, &target, "neither the old nor the new state");
            ck_assert_uint_eq(applied, 3);
            saw_old = true;
        }
        kv_close(e);
        sim_disk_free(d);
    }
    ck_assert(saw_old);
    ck_assert(saw_new);
    fl_buf_free(&data);
}
END_TEST

/* Appends one body entry of the export format. */
static void add_body_entry(struct fl_buf *b, const char *key, const char *value)
{
    unsigned char lens[8];

    kv_put_u32(lens, (uint32_t)strlen(key));
    kv_put_u32(lens + 4, (uint32_t)strlen(value));
    fl_buf_add(b, lens, sizeof(lens));
    fl_buf_adds(b, key);
    fl_buf_adds(b, value);
}

/* Makes out an export with the given header fields, both checksums right,
 * and body. */
static void craft_export(struct fl_buf *out, uint32_t magic, uint32_t version,
                         uint64_t count, const struct fl_buf *body)
{
    unsigned char hdr[KV_EXPORT_HEADER];

    memset(hdr, 0, sizeof(hdr));
    kv_put_u32(hdr, magic);
    kv_put_u32(hdr + 4, version);
    kv_put_u64(hdr + 8, 9);
    kv_put_u64(hdr + 16, count);
    kv_put_u64(hdr + 24, body->len);
    kv_put_u32(hdr + 32, fl_crc32c(0, body->data, body->len));
    kv_put_u32(hdr + 36, fl_crc32c(0, hdr, 36));
    fl_buf_clear(out);
    fl_buf_add(out, hdr, sizeof(hdr));
    fl_buf_add(out, body->data, body->len);
    ck_assert(!out->failed);
}

/* What an engine looks like from outside: its export and counters, and
 * the files of its disk. */
struct observed {
    struct fl_buf export;
    struct fl_buf image;
    struct kv_stats stats;
};

static void observe(struct kv_engine *e, const struct kv_vfs *v,
                    struct observed *ob)
{
    uint64_t applied = 0;

    fl_buf_init(&ob->export);
    fl_buf_init(&ob->image);
    ck_assert_int_eq(kv_export(e, &ob->export, &applied), 0);
    sim_image(v, &ob->image);
    ob->stats = stats_of(e);
}

static void observed_free(struct observed *ob)
{
    fl_buf_free(&ob->export);
    fl_buf_free(&ob->image);
}

/* Imports len bytes at data, which must be rejected as invalid input
 * without any change to the engine or its disk. */
static void expect_rejected(struct kv_engine *e, const struct kv_vfs *v,
                            const struct observed *before, const void *data,
                            size_t len, const char *reason)
{
    struct observed after;
    char err[512] = "";
    int rc = kv_import(e, data, len, err, sizeof(err));

    ck_assert_msg(rc == FL_EINPUT, "%s: kv_import returned %s (%s)", ctx,
                  fl_strerror(rc), err);
    ck_assert_msg(strstr(err, reason) != NULL,
                  "%s: the reason \"%s\" does not mention \"%s\"", ctx, err,
                  reason);
    observe(e, v, &after);
    ck_assert_msg(same_bytes(&before->export, &after.export),
                  "%s: the state changed", ctx);
    ck_assert_msg(same_bytes(&before->image, &after.image),
                  "%s: the disk changed", ctx);
    ck_assert_uint_eq(after.stats.last_seq, before->stats.last_seq);
    ck_assert_uint_eq(after.stats.last_applied, before->stats.last_applied);
    ck_assert_uint_eq(after.stats.snapshots, before->stats.snapshots);
    ck_assert(!after.stats.failed);
    observed_free(&after);
}

/* Truncated, extended, damaged, foreign and inconsistent exports are
 * rejected with FL_EINPUT, and the engine and its disk stay as they
 * were. */
START_TEST(test_import_rejects_invalid_data)
{
    struct fl_buf data, body, crafted;
    struct model source, target;
    struct observed before;
    struct sim_disk *d = sim_new(9);
    const struct kv_vfs *v = sim_disk_vfs(d);
    struct kv_options o = manual_options(v, KV_SYNC_ALWAYS);

    source_export(&data, &source);
    o.deferred_writes = true;
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    build_target_state(e, &target);
    ck_assert_int_eq(kv_sync(e), 0);
    put_ok(e, "k13", str("deferred")); /* a rejected import writes nothing */
    model_set(&target, 13, "deferred", 8);
    observe(e, v, &before);

    /* The export is 100 KiB: every cut in the header, then every 997th. */
    for (size_t len = 0; len < data.len; len += len < 64 ? 1u : 997u) {
        set_ctx("export cut to %zu of %zu bytes", len, data.len);
        expect_rejected(e, v, &before, data.data, len,
                        len < KV_EXPORT_HEADER ? "shorter than" : "follow it");
    }
    set_ctx("one byte appended");
    fl_buf_addc(&data, 'x');
    expect_rejected(e, v, &before, data.data, data.len, "follow it");
    data.len--;

    /* A flipped bit anywhere fails a checksum. */
    for (size_t off = 0; off < data.len; off += off < 64 ? 1u : 1009u) {
        set_ctx("bit flipped at offset %zu", off);
        data.data[off] = (char)(data.data[off] ^ 0x10);
        expect_rejected(e, v, &before, data.data, data.len,
                        off < KV_EXPORT_HEADER ? "header checksum"
                                               : "body checksum");
        data.data[off] = (char)(data.data[off] ^ 0x10);
    }

    /* Well-formed checksums around wrong content. */
    fl_buf_init(&body);
    fl_buf_init(&crafted);
    add_body_entry(&body, "k00", "a");
    add_body_entry(&body, "k01", "b");
    set_ctx("wrong magic");
    craft_export(&crafted, KV_SNAP_MAGIC, KV_EXPORT_VERSION, 2, &body);
    expect_rejected(e, v, &before, crafted.data, crafted.len, "magic");
    set_ctx("newer version");
    craft_export(&crafted, KV_EXPORT_MAGIC, KV_EXPORT_VERSION + 1, 2, &body);
    expect_rejected(e, v, &before, crafted.data, crafted.len, "version 2");
    set_ctx("count too high");
    craft_export(&crafted, KV_EXPORT_MAGIC, KV_EXPORT_VERSION, 3, &body);
    expect_rejected(e, v, &before, crafted.data, crafted.len,
                    "past the end of the body");
    set_ctx("count too low");
    craft_export(&crafted, KV_EXPORT_MAGIC, KV_EXPORT_VERSION, 1, &body);
    expect_rejected(e, v, &before, crafted.data, crafted.len,
                    "bytes left after the last entry");
    set_ctx("duplicate key");
    add_body_entry(&body, "k00", "c");
    craft_export(&crafted, KV_EXPORT_MAGIC, KV_EXPORT_VERSION, 3, &body);
    expect_rejected(e, v, &before, crafted.data, crafted.len, "more than once");
    set_ctx("entry longer than the body");
    fl_buf_clear(&body);
    add_body_entry(&body, "k00", "a");
    kv_put_u32((unsigned char *)body.data + 4, 1000);
    craft_export(&crafted, KV_EXPORT_MAGIC, KV_EXPORT_VERSION, 1, &body);
    expect_rejected(e, v, &before, crafted.data, crafted.len,
                    "past the end of the body");

    /* The crafted body itself is fine: with the right count it imports. */
    set_ctx("valid crafted export");
    fl_buf_clear(&body);
    add_body_entry(&body, "k00", "a");
    craft_export(&crafted, KV_EXPORT_MAGIC, KV_EXPORT_VERSION, 1, &body);
    model_expect(e, &target, "after the rejections");
    import_ok(e, &crafted);
    expect_value(e, "k00", "a");
    expect_value(e, "k13", NULL);
    ck_assert_uint_eq(stats_of(e).keys, 1);
    ck_assert_uint_eq(stats_of(e).last_applied, 9);
    kv_close(e);

    observed_free(&before);
    fl_buf_free(&body);
    fl_buf_free(&crafted);
    fl_buf_free(&data);
    sim_disk_free(d);
}
END_TEST

/* A failed engine neither exports nor imports. */
START_TEST(test_export_import_sticky)
{
    struct fl_buf data, out;
    struct model source;
    struct sim_disk *d = sim_new(10);
    struct kv_options o = manual_options(sim_disk_vfs(d), KV_SYNC_ALWAYS);
    char err[512] = "";
    uint64_t applied = 77;
    uint64_t wait = 0;

    source_export(&data, &source);
    struct kv_engine *e = open_ok(SIM_DIR, &o);
    put_ok(e, "k00", str("before"));
    sim_disk_crash(d, SIM_CRASH_LOSE_UNSYNCED);
    ck_assert_int_eq(kv_put(e, str("k01"), str("fails"), &wait), FL_ESTICKY);

    fl_buf_init(&out);
    ck_assert_int_eq(kv_export(e, &out, &applied), FL_ESTICKY);
    ck_assert_uint_eq(applied, 77);
    ck_assert_int_eq(kv_import(e, data.data, data.len, err, sizeof(err)),
                     FL_ESTICKY);
    ck_assert_ptr_nonnull(strstr(err, "reopened"));
    kv_close(e);
    fl_buf_free(&out);
    fl_buf_free(&data);
    sim_disk_free(d);
}
END_TEST

/* With the sync and snapshot threads running and writers busy, an import
 * still replaces the state at one point, reads after it are durable, and
 * a reopen finds exactly the imported keys and whatever came after. */
START_TEST(test_import_with_threads)
{
    struct fl_buf data;
    struct model source, target;
    struct kv_options o = options();
    char dir[PATH_SIZE];

    scratch_path(dir, sizeof(dir), "data");
    source_export(&data, &source);
    o.snapshot_every = 3;
    o.segment_bytes = 512;
    struct kv_engine *e = open_ok(dir, &o);
    build_target_state(e, &target);
    for (int round = 0; round < 20; round++) {
        /* Records the snapshot thread is likely to be writing. */
        for (int i = 0; i < 4; i++)
            put_ok(e, "k14", str("busy"));
        import_ok(e, &data);
        expect_source_state(e, &source, 9, "imported");
        expect_value(e, "k14", NULL);
    }
    apply_one_put(e, 10, "k08", "after", false);
    kv_close(e);

    e = open_ok(dir, &o);
    model_set(&source, 8, "after", 5);
    expect_source_state(e, &source, 10, "reopened");
    ck_assert_uint_eq(count_names(dir, "snap-", ".snap"), 1);
    kv_close(e);
    fl_buf_free(&data);
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

static TCase *new_case(Suite *s, const char *name, double timeout)
{
    TCase *t = tcase_create(name);

    tcase_add_unchecked_fixture(t, tcase_root_setup, tcase_root_teardown);
    tcase_add_checked_fixture(t, scratch_setup, scratch_teardown);
    tcase_set_timeout(t, timeout);
    suite_add_tcase(s, t);
    return t;
}

static Suite *kv_suite(void)
{
    Suite *s = suite_create("kv");
    TCase *t;

    t = new_case(s, "framing", 30);
    tcase_add_test(t, test_record_round_trip);
    tcase_add_test(t, test_record_crc_catches_every_bit_flip);
    tcase_add_loop_test(t, test_record_header_check_rejects_field, 0,
                        (int)(sizeof(header_cases) / sizeof(header_cases[0])));
    tcase_add_test(t, test_record_length_bounds);
    tcase_add_test(t, test_segment_header_round_trip);
    tcase_add_test(t, test_segment_header_rejections);

    t = new_case(s, "torn_tail", 120);
    tcase_add_loop_test(t, test_wal_torn_tail_every_offset, 0,
                        (int)(sizeof(torn_cases) / sizeof(torn_cases[0])));
    tcase_add_loop_test(t, test_wal_zero_tail_truncated, 0,
                        (int)(sizeof(zero_tails) / sizeof(zero_tails[0])));

    t = new_case(s, "damage", 120);
    tcase_add_test(t, test_wal_mid_log_damage_fails_open);
    tcase_add_test(t, test_wal_sealed_segment_damage_fails_open);
    tcase_add_test(t, test_open_damaged_snapshot_fails);

    t = new_case(s, "snapshot_model", 120);
    tcase_add_loop_test(t, test_snapshot_replay_equals_log_replay, 0, 6);

    t = new_case(s, "sticky", 60);
    tcase_add_loop_test(t, test_sticky_after_failed_fdatasync, 1, 4);
    tcase_add_loop_test(t, test_sticky_after_failed_pwrite, 1, 4);
    tcase_add_loop_test(t, test_sticky_after_short_write, 1, 3);

    t = new_case(s, "recovery_crash", 120);
    tcase_add_test(t, test_recovery_crash_at_each_step);

    t = new_case(s, "planted_bugs", 60);
    tcase_add_test(t, test_bug_ignore_crc_applies_bad_record);
    tcase_add_test(t, test_bug_truncate_on_corruption_drops_records);
    tcase_add_test(t, test_bug_skip_dir_fsync_skips_all);
    tcase_add_test(t, test_bug_ack_before_fsync_advances_durable);
    tcase_add_test(t, test_bug_ack_before_fsync_still_syncs);
    tcase_add_test(t, test_bug_ack_before_fsync_in_sync);
    tcase_add_test(t, test_files_durable_before_use);
    tcase_add_test(t, test_roll_seals_segment_first);
    tcase_add_test(t, test_watermark_missing_newest_segment);
    tcase_add_test(t, test_watermark_follows_durable_point);
    tcase_add_test(t, test_watermark_dir_name_copied);
    tcase_add_test(t, test_watermark_slot_damage);

    t = new_case(s, "apply", 30);
    tcase_add_test(t, test_apply_skips_applied_indexes);
    tcase_add_test(t, test_apply_batch_sees_own_ops);

    t = new_case(s, "durability", 60);
    tcase_add_test(t, test_get_reports_pending_wait);
    tcase_add_test(t, test_group_commit_shares_fdatasync);
    tcase_add_test(t, test_sync_runs_round_inline);
    tcase_add_test(t, test_sync_none_close_syncs);
    tcase_add_test(t, test_sync_policies_keep_data);

    t = new_case(s, "directory", 30);
    tcase_add_test(t, test_open_busy_directory);
    tcase_add_test(t, test_open_removes_leftover_tmp_files);

    t = new_case(s, "manual", 60);
    tcase_add_loop_test(t, test_manual_starts_no_thread, 0, 3);
    tcase_add_loop_test(t, test_manual_crash_keeps_synced_only, 0, 2);
    tcase_add_loop_test(t, test_manual_wait_runs_round, 0, 3);
    tcase_add_loop_test(t, test_manual_snapshot_every_inline, 0, 3);
    tcase_add_loop_test(t, test_manual_runs_identical, 0, 4);
    tcase_add_loop_test(t, test_manual_close_after_crash, 0, 6);

    t = new_case(s, "transfer", 60);
    tcase_add_test(t, test_export_import_round_trip);
    tcase_add_loop_test(
        t, test_import_survives_crash, 0,
        (int)(sizeof(import_targets) / sizeof(import_targets[0])));
    tcase_add_loop_test(t, test_import_crash_at_each_step, 0, 2);
    tcase_add_test(t, test_import_rejects_invalid_data);
    tcase_add_test(t, test_export_import_sticky);
    tcase_add_test(t, test_import_with_threads);

    t = new_case(s, "options", 10);
    tcase_add_test(t, test_sync_parse_valid_and_invalid);
    tcase_add_test(t, test_bug_parse_valid_and_invalid);
    return s;
}

int main(void)
{
    /* Recovery logs every torn tail it repairs; the cases repair hundreds. */
    fl_log_set_level(FL_LOG_OFF);
    SRunner *sr = srunner_create(kv_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
