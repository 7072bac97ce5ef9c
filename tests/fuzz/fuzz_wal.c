/*
 * libFuzzer harness for log recovery. The input becomes the only segment
 * file of a fresh data directory, and the engine opens that directory. Any
 * input must give a clean open or a clean error: no crash, sanitizer
 * report, leak or hang. When the open succeeds, the repaired log must take
 * a put and open again with that put in place, so recovery always leaves a
 * log it can read back; otherwise the harness aborts.
 *
 * The first input byte picks the framing. With its low bit clear, the rest
 * of the input follows a valid segment header for sequence number 1, so
 * inputs reach record parsing. With it set, the rest is the whole file,
 * header included.
 */
#include "engine.h"
#include "log.h"
#include "record.h"
#include "wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[4096];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

static bool write_segment(const char *dir, const uint8_t *data, size_t size,
                          bool raw)
{
    char name[64];
    char path[4096];
    unsigned char hdr[KV_SEG_HEADER];
    bool ok = true;

    kv_wal_segment_name(name, sizeof(name), 1);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return false;
    if (!raw) {
        kv_seg_encode(hdr, 1);
        ok = write(fd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr);
    }
    if (ok && size > 0)
        ok = write(fd, data, size) == (ssize_t)size;
    close(fd);
    return ok;
}

/* Reports a broken recovery and aborts, so libFuzzer keeps the input. */
static void finding(const char *dir, const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_wal: %s: %s\n", what, detail);
    remove_dir(dir);
    abort();
}

/* Appends a put to the recovered log and checks that it opens again. */
static void check_reopen(const char *dir, const struct kv_options *o,
                         struct kv_engine *e)
{
    static const char key[] = "fuzz-key";
    static const char value[] = "fuzz-value";
    struct kv_stats before;
    struct kv_stats after;
    struct fl_buf got;
    char err[1024] = "";
    uint64_t wait = 0;
    bool found = false;

    kv_stats(e, &before);
    if (kv_put(e, fl_str_of(key), fl_str_of(value), &wait) != 0 ||
        kv_wait(e, wait) != 0)
        finding(dir, "a put after recovery failed", kv_error(e));
    kv_close(e);

    if (kv_open(dir, o, &e, err, sizeof(err)) != 0)
        finding(dir, "the repaired log does not open again", err);
    kv_stats(e, &after);
    fl_buf_init(&got);
    if (kv_get(e, fl_str_of(key), &got, &found, &wait) != 0 || !found ||
        got.len != strlen(value) || memcmp(got.data, value, got.len) != 0)
        finding(dir, "the put after recovery was lost", "");
    if (after.last_seq != before.last_seq + 1)
        finding(dir, "the reopened log has another last sequence number", "");
    fl_buf_free(&got);
    kv_close(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/tmp/fl-fuzz-wal.XXXXXX";
    struct kv_options o;
    struct kv_engine *e = NULL;
    char err[1024];

    if (size == 0)
        return 0;
    bool raw = (data[0] & 1) != 0;
    data++;
    size--;
    fl_log_set_level(FL_LOG_OFF);
    if (mkdtemp(dir) == NULL)
        return 0;
    if (write_segment(dir, data, size, raw)) {
        kv_options_default(&o);
        o.segment_bytes = 1u << 30;
        if (kv_open(dir, &o, &e, err, sizeof(err)) == 0)
            check_reopen(dir, &o, e);
    }
    remove_dir(dir);
    return 0;
}
