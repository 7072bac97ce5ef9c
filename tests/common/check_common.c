/*
 * Tests for the common library: CRC32C, the seeded RNG, error codes, logfmt
 * logging, arenas and budgets, hash tables, the JSON parser and writer, the
 * history reader and writer, and the clock helpers. Randomized tests use
 * fixed seeds and print the seed in every failure message.
 */
#include "arena.h"
#include "buf.h"
#include "clock.h"
#include "crc32c.h"
#include "error.h"
#include "hash.h"
#include "history.h"
#include "json.h"
#include "log.h"
#include "rng.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

/* Flushes f and returns its whole content, malloc'd and NUL-terminated. */
static char *read_stream(FILE *f, size_t *len_out)
{
    long size;
    char *text;

    ck_assert_int_eq(fflush(f), 0);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    text = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    if (len_out != NULL)
        *len_out = (size_t)size;
    return text;
}

/* ---- crc32c ------------------------------------------------------------ */

typedef uint32_t (*crc_fn)(uint32_t crc, const void *data, size_t len);

struct crc_impl {
    const char *name;
    crc_fn fn;
};

/* Returns the implementations this CPU can run, always sw and fl_crc32c. */
static size_t crc_impls(struct crc_impl *out)
{
    size_t n = 0;

    out[n++] = (struct crc_impl){"fl__crc32c_sw", fl__crc32c_sw};
    if (fl__crc32c_hw_available())
        out[n++] = (struct crc_impl){"fl__crc32c_hw", fl__crc32c_hw};
    out[n++] = (struct crc_impl){"fl_crc32c", fl_crc32c};
    return n;
}

START_TEST(test_crc32c_rfc3720_vectors)
{
    unsigned char zeros[32];
    unsigned char ones[32];
    unsigned char ascending[32];
    unsigned char descending[32];
    struct crc_impl impls[3];
    size_t n = crc_impls(impls);

    memset(zeros, 0, sizeof(zeros));
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++) {
        ascending[i] = (unsigned char)i;
        descending[i] = (unsigned char)(31 - i);
    }
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(impls[i].fn(0, zeros, 32) == 0x8A9136AAU,
                      "%s: 32 zero bytes", impls[i].name);
        ck_assert_msg(impls[i].fn(0, ones, 32) == 0x62A8AB43U,
                      "%s: 32 0xff bytes", impls[i].name);
        ck_assert_msg(impls[i].fn(0, ascending, 32) == 0x46DD794EU,
                      "%s: bytes 0..31", impls[i].name);
        ck_assert_msg(impls[i].fn(0, descending, 32) == 0x113FDB5CU,
                      "%s: bytes 31..0", impls[i].name);
        ck_assert_msg(impls[i].fn(0, "123456789", 9) == 0xE3069283U,
                      "%s: \"123456789\"", impls[i].name);
        ck_assert_msg(impls[i].fn(0, "", 0) == 0, "%s: empty input",
                      impls[i].name);
    }
}
END_TEST

START_TEST(test_crc32c_incremental_equals_oneshot)
{
    unsigned char data[300];
    struct fl_rng rng;
    struct crc_impl impls[3];
    size_t n = crc_impls(impls);

    fl_rng_seed(&rng, 11);
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)fl_rng_next(&rng);
    for (size_t i = 0; i < n; i++) {
        uint32_t whole = impls[i].fn(0, data, sizeof(data));
        for (size_t split = 0; split <= sizeof(data); split++) {
            uint32_t part = impls[i].fn(0, data, split);
            part = impls[i].fn(part, data + split, sizeof(data) - split);
            ck_assert_msg(part == whole,
                          "%s: split at %zu gives %08x, one shot %08x",
                          impls[i].name, split, part, whole);
        }
    }
}
END_TEST

/* Uses the loop index as the seed and compares many random slices. */
START_TEST(test_crc32c_sw_hw_agree_random)
{
    enum { MAX_LEN = 4096, ALIGN_SLACK = 16 };
    uint64_t seed = (uint64_t)_i;
    unsigned char *buf = malloc(MAX_LEN + ALIGN_SLACK);
    struct fl_rng rng;

    ck_assert_ptr_nonnull(buf);
    if (!fl__crc32c_hw_available()) {
        free(buf);
        return; /* nothing to compare against on this CPU */
    }
    fl_rng_seed(&rng, seed);
    for (int round = 0; round < 200; round++) {
        size_t offset = (size_t)fl_rng_below(&rng, ALIGN_SLACK);
        size_t len = (size_t)fl_rng_below(&rng, MAX_LEN + 1);
        uint32_t start = (uint32_t)fl_rng_next(&rng);

        for (size_t i = 0; i < len; i++)
            buf[offset + i] = (unsigned char)fl_rng_next(&rng);
        uint32_t sw = fl__crc32c_sw(start, buf + offset, len);
        uint32_t hw = fl__crc32c_hw(start, buf + offset, len);
        ck_assert_msg(sw == hw,
                      "seed %llu round %d: offset %zu length %zu start %08x: "
                      "sw %08x, hw %08x",
                      (unsigned long long)seed, round, offset, len, start, sw,
                      hw);
    }
    free(buf);
}
END_TEST

/* ---- rng --------------------------------------------------------------- */

/*
 * A plain re-implementation of splitmix64 and xoshiro256** from the
 * published descriptions, to cross-check the library's output.
 */
struct ref_rng {
    uint64_t s[4];
};

static uint64_t ref_splitmix64(uint64_t *x)
{
    uint64_t z;

    *x += UINT64_C(0x9E3779B97F4A7C15);
    z = *x;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t ref_rotate_left(uint64_t x, unsigned k)
{
    return (x << k) | (x >> (64 - k));
}

static void ref_seed(struct ref_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = ref_splitmix64(&seed);
}

static uint64_t ref_next(struct ref_rng *r)
{
    uint64_t out = ref_rotate_left(r->s[1] * 5, 7) * 9;
    uint64_t shifted = r->s[1] << 17;

    r->s[2] ^= r->s[0];
    r->s[3] ^= r->s[1];
    r->s[1] ^= r->s[2];
    r->s[0] ^= r->s[3];
    r->s[2] ^= shifted;
    r->s[3] = ref_rotate_left(r->s[3], 45);
    return out;
}

START_TEST(test_rng_golden_seed_zero)
{
    struct fl_rng rng;
    struct ref_rng ref;
    uint64_t sm = 0;

    ck_assert_uint_eq(fl_splitmix64(&sm), UINT64_C(0xE220A8397B1DCDAF));

    fl_rng_seed(&rng, 0);
    ref_seed(&ref, 0);
    ck_assert_uint_eq(fl_rng_next(&rng), UINT64_C(0x99EC5F36CB75F2B4));
    ck_assert_uint_eq(ref_next(&ref), UINT64_C(0x99EC5F36CB75F2B4));
    for (int i = 1; i < 1000; i++) {
        uint64_t got = fl_rng_next(&rng);
        uint64_t want = ref_next(&ref);
        ck_assert_msg(got == want,
                      "seed 0 output %d: got %016llx, want %016llx", i,
                      (unsigned long long)got, (unsigned long long)want);
    }
}
END_TEST

START_TEST(test_rng_same_seed_same_sequence)
{
    struct fl_rng a;
    struct fl_rng b;

    fl_rng_seed(&a, 42);
    fl_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(fl_rng_next(&a), fl_rng_next(&b));

    fl_rng_seed_stream(&a, 42, FL_RNG_STREAM_CLIENT + 3);
    fl_rng_seed_stream(&b, 42, FL_RNG_STREAM_CLIENT + 3);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(fl_rng_next(&a), fl_rng_next(&b));
}
END_TEST

START_TEST(test_rng_streams_differ)
{
    const uint64_t streams[] = {
        FL_RNG_STREAM_MAIN,   FL_RNG_STREAM_NEMESIS,    FL_RNG_STREAM_SCHEDULE,
        FL_RNG_STREAM_CLIENT, FL_RNG_STREAM_CLIENT + 1, UINT64_MAX,
    };
    enum { NSTREAMS = sizeof(streams) / sizeof(streams[0]), DRAWS = 4 };
    uint64_t first[NSTREAMS][DRAWS];
    struct fl_rng rng;
    struct fl_rng other_seed;

    for (size_t s = 0; s < NSTREAMS; s++) {
        fl_rng_seed_stream(&rng, 7, streams[s]);
        for (int d = 0; d < DRAWS; d++)
            first[s][d] = fl_rng_next(&rng);
    }
    for (size_t s = 0; s < NSTREAMS; s++) {
        for (size_t t = s + 1; t < NSTREAMS; t++) {
            ck_assert_msg(memcmp(first[s], first[t], sizeof(first[s])) != 0,
                          "seed 7: streams %llu and %llu start alike",
                          (unsigned long long)streams[s],
                          (unsigned long long)streams[t]);
        }
    }

    /* The same stream number under another seed differs too. */
    fl_rng_seed_stream(&other_seed, 8, FL_RNG_STREAM_MAIN);
    ck_assert_uint_ne(fl_rng_next(&other_seed), first[0][0]);
}
END_TEST

START_TEST(test_rng_below_range_and_uniformity)
{
    enum { BUCKETS = 10, DRAWS = 100000 };
    const uint64_t bounds[] = {
        1, 2, 3, 1000, (UINT64_C(1) << 63) + 1, UINT64_MAX,
    };
    unsigned counts[BUCKETS] = {0};
    struct fl_rng rng;

    fl_rng_seed(&rng, 2024);
    for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
        for (int i = 0; i < 10000; i++) {
            uint64_t v = fl_rng_below(&rng, bounds[b]);
            ck_assert_msg(v < bounds[b], "seed 2024: %llu not below %llu",
                          (unsigned long long)v, (unsigned long long)bounds[b]);
        }
    }

    /*
     * Each bucket expects 10000 draws with a standard deviation near 95;
     * the seed is fixed, so the +-1000 window is a coarse bias check that
     * cannot flake.
     */
    fl_rng_seed(&rng, 2024);
    for (int i = 0; i < DRAWS; i++)
        counts[fl_rng_below(&rng, BUCKETS)]++;
    for (int b = 0; b < BUCKETS; b++) {
        ck_assert_msg(counts[b] >= 9000 && counts[b] <= 11000,
                      "seed 2024: bucket %d got %u of %d draws", b, counts[b],
                      DRAWS);
    }
}
END_TEST

START_TEST(test_rng_range_inclusive_bounds)
{
    struct fl_rng rng;
    bool seen[7] = {false};
    bool low_seen = false;
    bool high_seen = false;
    bool negative_seen = false;
    bool positive_seen = false;

    fl_rng_seed(&rng, 5);
    for (int i = 0; i < 10000; i++) {
        int64_t v = fl_rng_range(&rng, -3, 3);
        ck_assert_msg(v >= -3 && v <= 3, "seed 5: %lld outside [-3, 3]",
                      (long long)v);
        seen[v + 3] = true;
    }
    for (int i = 0; i < 7; i++)
        ck_assert_msg(seen[i], "seed 5: %d never drawn from [-3, 3]", i - 3);

    ck_assert_int_eq(fl_rng_range(&rng, 9, 9), 9);
    ck_assert_int_eq(fl_rng_range(&rng, INT64_MIN, INT64_MIN), INT64_MIN);
    ck_assert_int_eq(fl_rng_range(&rng, INT64_MAX, INT64_MAX), INT64_MAX);

    for (int i = 0; i < 1000; i++) {
        int64_t v = fl_rng_range(&rng, INT64_MIN, INT64_MIN + 1);
        ck_assert(v == INT64_MIN || v == INT64_MIN + 1);
        low_seen |= v == INT64_MIN;
        v = fl_rng_range(&rng, INT64_MAX - 1, INT64_MAX);
        ck_assert(v == INT64_MAX - 1 || v == INT64_MAX);
        high_seen |= v == INT64_MAX;
    }
    ck_assert_msg(low_seen, "seed 5: INT64_MIN never drawn");
    ck_assert_msg(high_seen, "seed 5: INT64_MAX never drawn");

    /* The full range must not reduce to a smaller span. */
    for (int i = 0; i < 1000; i++) {
        int64_t v = fl_rng_range(&rng, INT64_MIN, INT64_MAX);
        negative_seen |= v < 0;
        positive_seen |= v > 0;
    }
    ck_assert_msg(negative_seen && positive_seen,
                  "seed 5: full range drew only one sign");
}
END_TEST

START_TEST(test_rng_double_unit_interval)
{
    struct fl_rng rng;
    double sum = 0;

    fl_rng_seed(&rng, 99);
    for (int i = 0; i < 100000; i++) {
        double d = fl_rng_double(&rng);
        ck_assert_msg(d >= 0.0 && d < 1.0, "seed 99: draw %d is %.17g", i, d);
        sum += d;
    }
    ck_assert_msg(fabs(sum / 100000 - 0.5) < 0.01, "seed 99: mean %g",
                  sum / 100000);
}
END_TEST

START_TEST(test_rng_chance_extremes)
{
    struct fl_rng rng;
    int half = 0;

    fl_rng_seed(&rng, 3);
    for (int i = 0; i < 10000; i++) {
        ck_assert(!fl_rng_chance(&rng, 0.0));
        ck_assert(!fl_rng_chance(&rng, -1.0));
        ck_assert(fl_rng_chance(&rng, 1.0));
        ck_assert(fl_rng_chance(&rng, 2.0));
        half += fl_rng_chance(&rng, 0.5);
    }
    ck_assert_msg(half > 4500 && half < 5500,
                  "seed 3: chance(0.5) hit %d of 10000", half);
}
END_TEST

/* ---- error ------------------------------------------------------------- */

START_TEST(test_strerror_codes)
{
    static const struct {
        int code;
        const char *text;
    } table[] = {
#define ROW(name, value, text) {name, text},
        FL_ERROR_TABLE(ROW)
#undef ROW
    };

    ck_assert_str_eq(fl_strerror(0), "success");
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        ck_assert_str_eq(fl_strerror(table[i].code), table[i].text);
        ck_assert_int_lt(table[i].code, -999);
    }
    ck_assert_str_eq(fl_strerror(FL_EINPUT), "invalid input");
    ck_assert_str_eq(fl_strerror(FL_EBUDGET),
                     "time or memory budget exhausted");
    ck_assert_str_eq(fl_strerror(-ENOENT), "No such file or directory");
    ck_assert_str_eq(fl_strerror(-EIO), "Input/output error");
    ck_assert_str_eq(fl_strerror(12345), "unknown error code");
    ck_assert_str_eq(fl_strerror(-100000), "unknown error code");
    ck_assert_str_eq(fl_strerror(-4000), "unknown errno");
}
END_TEST

START_TEST(test_input_error_formats_and_truncates)
{
    char msg[64];
    char small[8];

    ck_assert_int_eq(
        fl_input_error(msg, sizeof(msg), "bad value %d in %s", 7, "f"),
        FL_EINPUT);
    ck_assert_str_eq(msg, "bad value 7 in f");

    memset(small, 'x', sizeof(small));
    ck_assert_int_eq(
        fl_input_error(small, sizeof(small), "value %d too large", 123456),
        FL_EINPUT);
    ck_assert_str_eq(small, "value 1");

    /* A zero-size buffer is left alone. */
    ck_assert_int_eq(fl_input_error(NULL, 0, "ignored %d", 1), FL_EINPUT);
}
END_TEST

/* ---- log --------------------------------------------------------------- */

START_TEST(test_log_parse_level)
{
    static const struct {
        const char *name;
        enum fl_log_level level;
    } ok[] = {
        {"debug", FL_LOG_DEBUG}, {"info", FL_LOG_INFO}, {"warn", FL_LOG_WARN},
        {"error", FL_LOG_ERROR}, {"off", FL_LOG_OFF},
    };
    static const char *const bad[] = {"", "Info", "warning", "trace", "debug "};
    enum fl_log_level level;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        level = FL_LOG_ERROR;
        ck_assert_int_eq(fl_log_parse_level(ok[i].name, &level), 0);
        ck_assert_int_eq(level, ok[i].level);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        level = FL_LOG_WARN;
        ck_assert_msg(fl_log_parse_level(bad[i], &level) == FL_EINPUT,
                      "\"%s\" accepted", bad[i]);
        ck_assert_int_eq(level, FL_LOG_WARN);
    }
}
END_TEST

static int evaluations;

static int count_evaluation(void)
{
    return ++evaluations;
}

static const char *count_message(void)
{
    evaluations++;
    return "counted";
}

START_TEST(test_log_disabled_level_skips_arguments)
{
    FILE *out = tmpfile();
    char *text;

    ck_assert_ptr_nonnull(out);
    fl_log_set_stream(out);
    fl_log_set_level(FL_LOG_WARN);
    evaluations = 0;

    FL_LOG_DEBUGF("test", "dropped", "n=%d", count_evaluation());
    FL_LOG_INFOF("test", "dropped", "n=%d", count_evaluation());
    FL_LOG_INFO_MSG("test", count_message());
    ck_assert_int_eq(evaluations, 0);

    FL_LOG_WARNF("test", "kept", "n=%d", count_evaluation());
    FL_LOG_ERROR_MSG("test", count_message());
    ck_assert_int_eq(evaluations, 2);

    fl_log_set_level(FL_LOG_OFF);
    FL_LOG_ERRORF("test", "dropped", "n=%d", count_evaluation());
    ck_assert_int_eq(evaluations, 2);

    text = read_stream(out, NULL);
    ck_assert_ptr_null(strstr(text, "dropped"));
    ck_assert_ptr_nonnull(strstr(text, "msg=kept n=1\n"));
    ck_assert_ptr_nonnull(strstr(text, "msg=counted\n"));
    fl_log_set_stream(NULL);
    fl_log_set_level(FL_LOG_INFO);
    free(text);
    fclose(out);
}
END_TEST

START_TEST(test_log_quote_cases)
{
    char buf[64];
    char tiny[8];

    ck_assert_str_eq(fl_log_quote(buf, sizeof(buf), "word"), "word");
    ck_assert_str_eq(fl_log_quote(buf, sizeof(buf), "two words"),
                     "\"two words\"");
    ck_assert_str_eq(fl_log_quote(buf, sizeof(buf), "say \"hi\""),
                     "\"say \\\"hi\\\"\"");
    ck_assert_str_eq(fl_log_quote(buf, sizeof(buf), "a=b"), "\"a=b\"");
    ck_assert_str_eq(fl_log_quote(buf, sizeof(buf), ""), "\"\"");
    ck_assert_str_eq(fl_log_quote(buf, sizeof(buf), "back\\slash"),
                     "\"back\\\\slash\"");
    ck_assert_str_eq(fl_log_quote(buf, sizeof(buf), "line\nbreak"),
                     "\"line\\nbreak\"");
    ck_assert_str_eq(fl_log_quote(buf, sizeof(buf), "tab\there"),
                     "\"tab?here\"");

    /* Truncation keeps the result terminated and, when quoted, closed. */
    memset(tiny, 'x', sizeof(tiny));
    ck_assert_str_eq(fl_log_quote(tiny, sizeof(tiny), "abcdefghijkl"),
                     "abcdefg");
    memset(tiny, 'x', sizeof(tiny));
    fl_log_quote(tiny, sizeof(tiny), "a b c d e f g");
    ck_assert_uint_lt(strlen(tiny), sizeof(tiny));
    ck_assert_int_eq(tiny[0], '"');
    ck_assert_int_eq(tiny[strlen(tiny) - 1], '"');
    ck_assert_str_eq(tiny, "\"a b \"");
    for (size_t size = 1; size <= 12; size++) {
        char cut[12];
        memset(cut, 'x', sizeof(cut));
        fl_log_quote(cut, size, "\"\"\"\"\"\"");
        ck_assert_msg(strlen(cut) < size, "size %zu not terminated", size);
    }
}
END_TEST

START_TEST(test_log_line_has_logfmt_fields)
{
    FILE *out = tmpfile();
    char *text;
    int year;
    int month;
    int day;
    int hour;
    int minute;
    int second;
    int millis;
    char tail[256];

    ck_assert_ptr_nonnull(out);
    fl_log_set_stream(out);
    fl_log_set_level(FL_LOG_INFO);
    FL_LOG_INFOF("check", "history checked", "ops=%d verdict=%s", 12, "ok");
    fl_log_set_stream(NULL);

    text = read_stream(out, NULL);
    ck_assert_int_eq(sscanf(text, "ts=%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %255[^\n]",
                            &year, &month, &day, &hour, &minute, &second,
                            &millis, tail),
                     8);
    ck_assert_int_ge(year, 2000);
    ck_assert_str_eq(tail, "level=info comp=check msg=\"history checked\" "
                           "ops=12 verdict=ok");
    /* Exactly one line, ending in a newline. */
    ck_assert_ptr_eq(strchr(text, '\n'), text + strlen(text) - 1);
    free(text);
    fclose(out);
}
END_TEST

/* ---- arena and budget -------------------------------------------------- */

START_TEST(test_arena_alignment_16)
{
    struct fl_arena a;

    fl_arena_init(&a, 1000, NULL);
    for (size_t size = 0; size < 200; size++) {
        unsigned char *p = fl_arena_alloc(&a, size);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(((uintptr_t)p & 15) == 0, "size %zu at %p", size,
                      (void *)p);
        memset(p, 0xab, size);
    }
    fl_arena_destroy(&a);
}
END_TEST

START_TEST(test_arena_large_and_reset)
{
    struct fl_budget budget;
    struct fl_arena a;
    unsigned char *big;
    unsigned char *small;
    char *copy;
    int64_t after_reset;

    fl_budget_init(&budget, 0);
    fl_arena_init(&a, 1024, &budget);
    small = fl_arena_alloc(&a, 100);
    ck_assert_ptr_nonnull(small);
    memset(small, 1, 100);

    /* Larger than a chunk: gets a chunk of its own. */
    big = fl_arena_alloc(&a, 1 << 20);
    ck_assert_ptr_nonnull(big);
    memset(big, 2, 1 << 20);
    ck_assert_int_ge(atomic_load(&budget.used), (1 << 20) + 1024);
    ck_assert_int_eq(small[99], 1);

    copy = fl_arena_strndup(&a, "abc\0def", 7);
    ck_assert_ptr_nonnull(copy);
    ck_assert_mem_eq(copy, "abc\0def", 8);

    fl_arena_reset(&a);
    after_reset = atomic_load(&budget.used);
    ck_assert_int_gt(after_reset, 0);
    ck_assert_int_eq(after_reset, (int64_t)a.allocated);
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = fl_arena_alloc(&a, 48);
        ck_assert_ptr_nonnull(p);
        ck_assert(((uintptr_t)p & 15) == 0);
        memset(p, 3, 48);
    }
    fl_arena_destroy(&a);
    ck_assert_int_eq(atomic_load(&budget.used), 0);

    /* A destroyed arena can be used again. */
    ck_assert_ptr_nonnull(fl_arena_alloc(&a, 10));
    fl_arena_destroy(&a);
    ck_assert_int_eq(atomic_load(&budget.used), 0);
}
END_TEST

START_TEST(test_arena_budget_exhausted)
{
    struct fl_budget budget;
    struct fl_arena a;
    int allocations = 0;

    fl_budget_init(&budget, 8192);
    fl_arena_init(&a, 1024, &budget);
    for (;;) {
        void *p = fl_arena_alloc(&a, 256);
        if (p == NULL)
            break;
        allocations++;
        ck_assert_int_lt(allocations, 100);
    }
    ck_assert_int_eq(a.error, FL_EBUDGET);
    ck_assert_int_gt(allocations, 0);
    ck_assert_int_le(atomic_load(&budget.used), 8192);
    ck_assert_int_eq(atomic_load(&budget.used), (int64_t)a.allocated);

    /* A single request larger than the whole budget fails the same way. */
    ck_assert_ptr_null(fl_arena_alloc(&a, 1 << 20));
    ck_assert_int_eq(a.error, FL_EBUDGET);

    fl_arena_destroy(&a);
    ck_assert_int_eq(atomic_load(&budget.used), 0);
}
END_TEST

START_TEST(test_arena_huge_request_fails)
{
    struct fl_budget budget;
    struct fl_arena a;

    /*
     * Sizes near SIZE_MAX must fail cleanly. Adding the chunk header to
     * such a size must not wrap around into a tiny malloc that is then
     * handed out as a huge block.
     */
    fl_arena_init(&a, 0, NULL);
    ck_assert_ptr_null(fl_arena_alloc(&a, SIZE_MAX - 15));
    ck_assert_int_eq(a.error, -ENOMEM);
    ck_assert_ptr_null(fl_arena_alloc(&a, SIZE_MAX));
    ck_assert_int_eq(a.error, -ENOMEM);
    fl_arena_destroy(&a);

    fl_budget_init(&budget, 1 << 20);
    fl_arena_init(&a, 0, &budget);
    ck_assert_ptr_null(fl_arena_alloc(&a, SIZE_MAX / 2));
    ck_assert_int_eq(a.error, FL_EBUDGET);
    ck_assert_int_eq(atomic_load(&budget.used), 0);
    fl_arena_destroy(&a);
}
END_TEST

START_TEST(test_budget_charge_and_release)
{
    struct fl_budget budget;

    fl_budget_init(&budget, 1000);
    ck_assert_int_eq(fl_budget_charge(&budget, 600), 0);
    ck_assert_int_eq(fl_budget_charge(&budget, 400), 0);
    ck_assert_int_eq(fl_budget_charge(&budget, 1), FL_EBUDGET);
    ck_assert_int_eq(atomic_load(&budget.used), 1000);
    fl_budget_release(&budget, 1000);
    ck_assert_int_eq(atomic_load(&budget.used), 0);

    /* A charge too large for int64 must not wrap into a negative one. */
    ck_assert_int_eq(fl_budget_charge(&budget, SIZE_MAX), FL_EBUDGET);
    ck_assert_int_eq(fl_budget_charge(&budget, (size_t)INT64_MAX + 1),
                     FL_EBUDGET);
    ck_assert_int_eq(atomic_load(&budget.used), 0);

    /* A NULL budget and a limit of 0 accept anything representable. */
    ck_assert_int_eq(fl_budget_charge(NULL, SIZE_MAX), 0);
    fl_budget_init(&budget, 0);
    ck_assert_int_eq(fl_budget_charge(&budget, (size_t)1 << 40), 0);
    ck_assert_int_eq(atomic_load(&budget.used), INT64_C(1) << 40);

    /* A negative limit means unlimited as well. */
    fl_budget_init(&budget, -5);
    ck_assert_int_eq(budget.limit, 0);
}
END_TEST

START_TEST(test_vec_reserve_growth_and_budget)
{
    struct fl_budget budget;
    uint32_t *items = NULL;
    size_t cap = 0;

    fl_budget_init(&budget, 4096);
    ck_assert_int_eq(
        fl_vec_reserve((void **)&items, &cap, 1, sizeof(*items), &budget), 0);
    ck_assert_uint_eq(cap, 8);
    ck_assert_int_eq(atomic_load(&budget.used), 8 * 4);
    ck_assert_int_eq(
        fl_vec_reserve((void **)&items, &cap, 8, sizeof(*items), &budget), 0);
    ck_assert_uint_eq(cap, 8);
    ck_assert_int_eq(
        fl_vec_reserve((void **)&items, &cap, 9, sizeof(*items), &budget), 0);
    ck_assert_uint_eq(cap, 16);
    ck_assert_int_eq(
        fl_vec_reserve((void **)&items, &cap, 100, sizeof(*items), &budget), 0);
    ck_assert_uint_eq(cap, 128);
    ck_assert_int_eq(atomic_load(&budget.used), 128 * 4);
    for (uint32_t i = 0; i < 100; i++)
        items[i] = i;

    /* Capacity 2048 would charge 8 KiB in total, so the vector stays. */
    uint32_t *before = items;
    ck_assert_int_eq(
        fl_vec_reserve((void **)&items, &cap, 2000, sizeof(*items), &budget),
        FL_EBUDGET);
    ck_assert_ptr_eq(items, before);
    ck_assert_uint_eq(cap, 128);
    ck_assert_uint_eq(items[99], 99);
    ck_assert_int_eq(atomic_load(&budget.used), 128 * 4);

    /* An element count whose byte size overflows is rejected. */
    ck_assert_int_eq(fl_vec_reserve((void **)&items, &cap, SIZE_MAX / 2,
                                    sizeof(*items), NULL),
                     -ENOMEM);
    ck_assert_uint_eq(cap, 128);

    fl_vec_free((void **)&items, &cap, sizeof(*items), &budget);
    ck_assert_ptr_null(items);
    ck_assert_uint_eq(cap, 0);
    ck_assert_int_eq(atomic_load(&budget.used), 0);
}
END_TEST

/* ---- hash -------------------------------------------------------------- */

START_TEST(test_map64_many_keys)
{
    enum { N = 20000 };
    struct fl_budget budget;
    struct fl_map64 m;
    int inserted;
    uint64_t *v;

    fl_budget_init(&budget, 0);
    fl_map64_init(&m, &budget);
    ck_assert_ptr_null(fl_map64_get(&m, 0));

    v = fl_map64_put(&m, 0, &inserted);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(inserted, 1);
    ck_assert_uint_eq(*v, 0);
    *v = 111;
    v = fl_map64_put(&m, UINT64_MAX, &inserted);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(inserted, 1);
    *v = 222;
    for (uint64_t i = 1; i <= N; i++) {
        uint64_t key = i * UINT64_C(0x9E3779B97F4A7C15);
        v = fl_map64_put(&m, key, &inserted);
        ck_assert_ptr_nonnull(v);
        ck_assert_msg(inserted == 1, "key %llu reported as present",
                      (unsigned long long)key);
        *v = i;
    }
    ck_assert_uint_eq(m.count, N + 2);

    ck_assert_uint_eq(*fl_map64_get(&m, 0), 111);
    ck_assert_uint_eq(*fl_map64_get(&m, UINT64_MAX), 222);
    for (uint64_t i = 1; i <= N; i++) {
        uint64_t key = i * UINT64_C(0x9E3779B97F4A7C15);
        v = fl_map64_get(&m, key);
        ck_assert_msg(v != NULL && *v == i, "key %llu lost after growth",
                      (unsigned long long)key);
    }
    ck_assert_ptr_null(fl_map64_get(&m, 1));
    ck_assert_ptr_null(fl_map64_get(&m, UINT64_MAX - 1));

    /* Putting a present key keeps its value. */
    v = fl_map64_put(&m, UINT64_MAX, &inserted);
    ck_assert_int_eq(inserted, 0);
    ck_assert_uint_eq(*v, 222);
    ck_assert_uint_eq(m.count, N + 2);

    ck_assert_int_gt(atomic_load(&budget.used), 0);
    fl_map64_destroy(&m);
    ck_assert_int_eq(atomic_load(&budget.used), 0);
}
END_TEST

START_TEST(test_map64_budget_exhausted)
{
    struct fl_budget budget;
    struct fl_map64 m;
    int inserted;
    uint64_t key = 0;

    fl_budget_init(&budget, 4096);
    fl_map64_init(&m, &budget);
    while (fl_map64_put(&m, key, &inserted) != NULL) {
        key++;
        ck_assert_uint_lt(key, 10000);
    }
    ck_assert_uint_eq(m.count, key);
    ck_assert_int_le(atomic_load(&budget.used), 4096);
    for (uint64_t k = 0; k < key; k++)
        ck_assert_ptr_nonnull(fl_map64_get(&m, k));
    fl_map64_destroy(&m);
    ck_assert_int_eq(atomic_load(&budget.used), 0);
}
END_TEST

START_TEST(test_strtab_dense_stable_ids)
{
    enum { N = 5000 };
    struct fl_budget budget;
    struct fl_strtab t;
    char text[32];

    fl_budget_init(&budget, 0);
    fl_strtab_init(&t, &budget);
    ck_assert_int_eq(fl_strtab_find(&t, "a", 1), -1);
    for (int i = 0; i < N; i++) {
        int n = snprintf(text, sizeof(text), "name-%d", i);
        ck_assert_int_eq(fl_strtab_intern(&t, text, (size_t)n), i);
    }
    ck_assert_uint_eq(t.count, N);
    for (int i = 0; i < N; i++) {
        int n = snprintf(text, sizeof(text), "name-%d", i);
        struct fl_str s = fl_strtab_get(&t, (uint32_t)i);
        ck_assert_int_eq(fl_strtab_intern(&t, text, (size_t)n), i);
        ck_assert_int_eq(fl_strtab_find(&t, text, (size_t)n), i);
        ck_assert_uint_eq(s.len, (size_t)n);
        ck_assert_str_eq(s.ptr, text);
    }
    ck_assert_uint_eq(t.count, N);
    ck_assert_int_eq(fl_strtab_find(&t, "name-5000", 9), -1);
    ck_assert_int_eq(fl_strtab_find(&t, "name-1", 5), -1);
    ck_assert_int_eq(fl_strtab_find(&t, "", 0), -1);
    fl_strtab_destroy(&t);
    ck_assert_int_eq(atomic_load(&budget.used), 0);
}
END_TEST

START_TEST(test_strtab_strings_with_nul)
{
    struct fl_strtab t;
    int64_t with_nul_b;
    int64_t with_nul_c;
    int64_t prefix;
    int64_t empty;

    fl_strtab_init(&t, NULL);
    with_nul_b = fl_strtab_intern(&t, "a\0b", 3);
    with_nul_c = fl_strtab_intern(&t, "a\0c", 3);
    prefix = fl_strtab_intern(&t, "a", 1);
    empty = fl_strtab_intern(&t, "", 0);
    ck_assert_int_eq(with_nul_b, 0);
    ck_assert_int_eq(with_nul_c, 1);
    ck_assert_int_eq(prefix, 2);
    ck_assert_int_eq(empty, 3);
    ck_assert_int_eq(fl_strtab_find(&t, "a\0b", 3), 0);
    ck_assert_int_eq(fl_strtab_find(&t, "a\0c", 3), 1);
    ck_assert_int_eq(fl_strtab_find(&t, "a\0d", 3), -1);
    ck_assert_int_eq(fl_strtab_find(&t, "a\0", 2), -1);

    struct fl_str s = fl_strtab_get(&t, 1);
    ck_assert_uint_eq(s.len, 3);
    ck_assert_mem_eq(s.ptr, "a\0c", 4); /* includes the terminator */
    fl_strtab_destroy(&t);
}
END_TEST

START_TEST(test_hash_bytes_depends_on_every_byte)
{
    unsigned char data[40];
    uint64_t base;

    memset(data, 0x5a, sizeof(data));
    for (size_t len = 0; len <= sizeof(data); len++) {
        base = fl_hash_bytes(data, len, 0);
        ck_assert_uint_eq(base, fl_hash_bytes(data, len, 0));
        ck_assert_uint_ne(base, fl_hash_bytes(data, len, 1));
        if (len < sizeof(data))
            ck_assert_uint_ne(base, fl_hash_bytes(data, len + 1, 0));
        for (size_t i = 0; i < len; i++) {
            data[i] ^= 1;
            ck_assert_msg(fl_hash_bytes(data, len, 0) != base,
                          "length %zu: flipping byte %zu kept the hash", len,
                          i);
            data[i] ^= 1;
        }
    }
}
END_TEST

/* ---- json -------------------------------------------------------------- */

/*
 * Parses a copy of text[0..len) held in a buffer of exactly len bytes, so
 * AddressSanitizer reports any read past the end. Unescaped strings point
 * into the copy, so it is returned in *copy for the caller to free.
 */
static int parse_exact(struct fl_arena *arena, const char *text, size_t len,
                       struct fl_json *out, const char **why, size_t *where,
                       char **copy)
{
    *copy = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(*copy);
    memcpy(*copy, text, len);
    return fl_json_parse(arena, *copy, len, out, why, where);
}

/* Writes v compactly into a malloc'd string. */
static char *json_text(const struct fl_json *v)
{
    struct fl_buf b;

    fl_buf_init(&b);
    fl_json_write(&b, v);
    ck_assert(!b.failed);
    return b.data;
}

static const char *const round_trip_docs[] = {
    "null",
    "true",
    "false",
    "0",
    "-0",
    "123",
    "-9223372036854775808",
    "9223372036854775807",
    "1.5",
    "-2.25e-7",
    "0.1",
    "1.0",
    "-0.0",
    "1E2",
    "1e300",
    "1e16",
    "9223372036854775808",
    "\"\"",
    "\"plain\"",
    "\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0001 \\u00e9 \\ud83d\\ude00\"",
    "\"nul \\u0000 byte\"",
    "\"raw \xc3\xa9 \xf0\x9f\x98\x80 \x7f\"",
    "[]",
    "{}",
    "[1,[2,[3,[]]],{\"a\":{\"b\":null}}]",
    "{\"k\":\"v\",\"n\":[true,false,null],\"d\":2.5,\"\\u0000\":[1.0]}",
    " [ 1 ,\t2 ,\r\n3 ] ",
};

START_TEST(test_json_round_trip)
{
    const char *doc = round_trip_docs[_i];
    struct fl_arena arena;
    struct fl_json first;
    struct fl_json second;
    const char *why = NULL;
    char *copy;
    char *written;
    char *rewritten;
    int rc;

    fl_arena_init(&arena, 0, NULL);
    rc = parse_exact(&arena, doc, strlen(doc), &first, &why, NULL, &copy);
    ck_assert_msg(rc == 0, "%s: %s", doc, why);
    written = json_text(&first);
    rc = fl_json_parse(&arena, written, strlen(written), &second, &why, NULL);
    ck_assert_msg(rc == 0, "%s written as %s: %s", doc, written, why);
    ck_assert_msg(second.kind == first.kind, "%s written as %s: %s became %s",
                  doc, written, fl_json_kind_name(first.kind),
                  fl_json_kind_name(second.kind));
    ck_assert_msg(fl_json_equal(&first, &second), "%s written as %s differs",
                  doc, written);
    ck_assert_uint_eq(fl_json_hash(&first), fl_json_hash(&second));

    /* Writing is deterministic: the second text equals the first. */
    rewritten = json_text(&second);
    ck_assert_str_eq(rewritten, written);
    free(rewritten);
    free(written);
    free(copy);
    fl_arena_destroy(&arena);
}
END_TEST

/* Bytes that are not UTF-8, as a damaged store can return them, still make
 * a JSON string the parser accepts. Valid multi-byte sequences pass as
 * they are. The input is the read that once made a history unreadable. */
START_TEST(test_json_string_from_invalid_utf8)
{
    static const struct {
        const char *in;
        const char *want; /* the parsed string */
    } cases[] = {
        {"\xbb"
         "29",
         "\xc2\xbb"
         "29"},
        {"\xff\xfe", "\xc3\xbf\xc3\xbe"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},
        {"\xe2\x82", "\xc3\xa2\xc2\x82"},             /* cut short */
        {"\xed\xa0\x80", "\xc3\xad\xc2\xa0\xc2\x80"}, /* surrogate */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_arena arena;
        struct fl_json v;
        struct fl_buf b;
        const char *why = NULL;
        fl_arena_init(&arena, 0, NULL);
        fl_buf_init(&b);
        fl_buf_add_json_string(&b, cases[i].in, strlen(cases[i].in));
        ck_assert_msg(fl_json_parse(&arena, b.data, b.len, &v, &why, NULL) == 0,
                      "case %zu: %.*s: %s", i, (int)b.len, b.data, why);
        ck_assert_int_eq(v.kind, FL_JSON_STRING);
        ck_assert_uint_eq(v.u.s.len, strlen(cases[i].want));
        ck_assert_msg(memcmp(v.u.s.ptr, cases[i].want, v.u.s.len) == 0,
                      "case %zu parsed to different bytes", i);
        fl_buf_free(&b);
        fl_arena_destroy(&arena);
    }
}
END_TEST

START_TEST(test_json_int64_extremes)
{
    static const struct {
        const char *text;
        enum fl_json_kind kind;
        int64_t i;
        double d;
    } cases[] = {
        {"9223372036854775807", FL_JSON_INT, INT64_MAX, 0},
        {"-9223372036854775808", FL_JSON_INT, INT64_MIN, 0},
        {"-9223372036854775807", FL_JSON_INT, -INT64_MAX, 0},
        {"9007199254740993", FL_JSON_INT, INT64_C(9007199254740993), 0},
        {"-0", FL_JSON_INT, 0, 0},
        {"9223372036854775808", FL_JSON_DOUBLE, 0, 9223372036854775808.0},
        {"-9223372036854775809", FL_JSON_DOUBLE, 0, -9223372036854775808.0},
        {"18446744073709551616", FL_JSON_DOUBLE, 0, 18446744073709551616.0},
        {"123456789012345678901234567890", FL_JSON_DOUBLE, 0,
         1.2345678901234568e29},
        {"5e0", FL_JSON_DOUBLE, 0, 5.0},
        {"5.0", FL_JSON_DOUBLE, 0, 5.0},
    };
    struct fl_arena arena;

    fl_arena_init(&arena, 0, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_json v;
        const char *why = NULL;
        int rc = fl_json_parse(&arena, cases[i].text, strlen(cases[i].text), &v,
                               &why, NULL);
        ck_assert_msg(rc == 0, "%s: %s", cases[i].text, why);
        ck_assert_msg(v.kind == cases[i].kind, "%s parsed as %s", cases[i].text,
                      fl_json_kind_name(v.kind));
        if (v.kind == FL_JSON_INT)
            ck_assert_int_eq(v.u.i, cases[i].i);
        else
            ck_assert_double_eq(v.u.d, cases[i].d);
    }
    fl_arena_destroy(&arena);
}
END_TEST

START_TEST(test_json_escapes_decode_utf8)
{
    static const struct {
        const char *text;
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\"\\u00e9\"", "\xc3\xa9", 2},
        {"\"\\u20AC\"", "\xe2\x82\xac", 3},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4},
        {"\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4},
        {"\"\\u0000\"", "\0", 1},
        {"\"a\\u0000b\"", "a\0b", 3},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8},
        {"\"\\u0041\\u007f\\u0080\\u07ff\\u0800\\uffff\"",
         "A\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 12},
        {"\"x\xc3\xa9y\"", "x\xc3\xa9y", 4},
    };
    struct fl_arena arena;

    fl_arena_init(&arena, 0, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_json v;
        const char *why = NULL;
        int rc = fl_json_parse(&arena, cases[i].text, strlen(cases[i].text), &v,
                               &why, NULL);
        ck_assert_msg(rc == 0, "%s: %s", cases[i].text, why);
        ck_assert_int_eq(v.kind, FL_JSON_STRING);
        ck_assert_msg(v.u.s.len == cases[i].len, "%s decoded to %zu bytes",
                      cases[i].text, v.u.s.len);
        ck_assert_msg(memcmp(v.u.s.ptr, cases[i].bytes, cases[i].len) == 0,
                      "%s decoded to other bytes", cases[i].text);
    }
    fl_arena_destroy(&arena);
}
END_TEST

static const struct {
    const char *text;
    const char *why;
    size_t where; /* byte offset the reason refers to */
} json_rejects[] = {
    {"1 2", "unexpected text after the JSON value", 2},
    {"[1] x", "unexpected text after the JSON value", 4},
    {"\"a\"\"b\"", "unexpected text after the JSON value", 3},
    {"01", "leading zero in number", 0},
    {"-01", "leading zero in number", 0},
    {"[00]", "leading zero in number", 1},
    {"\"\\x\"", "invalid escape in string", 2},
    {"\"\\\xc3\xa9\"", "invalid escape in string", 2},
    {"\"\\u12G4\"", "invalid hex digit in \\u escape", 5},
    {"[\"\\u12\",1]", "invalid hex digit in \\u escape", 6},
    {"\"\\u12\"", "truncated \\u escape", 3},
    {"\"\\ud800\"", "unpaired high surrogate in \\u escape", 7},
    {"\"\\ud800x\"", "unpaired high surrogate in \\u escape", 7},
    {"\"\\udc00\"", "unpaired low surrogate in \\u escape", 7},
    {"\"\\ud800\\u0041\"", "invalid low surrogate in \\u escape", 13},
    {"\"\\ud800\\ud800\"", "invalid low surrogate in \\u escape", 13},
    {"\"\xff\"", "invalid UTF-8 in string", 1},
    {"\"\x80\"", "invalid UTF-8 in string", 1},
    {"\"\xc0\xaf\"", "invalid UTF-8 in string", 1},
    {"\"\xe0\x80\xaf\"", "invalid UTF-8 in string", 1},
    {"\"\xed\xa0\x80\"", "invalid UTF-8 in string", 1},
    {"\"\xf4\x90\x80\x80\"", "invalid UTF-8 in string", 1},
    {"\"\xe2\x82\"", "invalid UTF-8 in string", 1},
    {"\"a\x01\"", "control character in string", 2},
    {"\"a\nb\"", "control character in string", 2},
    {"\"\t\"", "control character in string", 1},
    {"", "unexpected end of input", 0},
    {"   ", "unexpected end of input", 3},
    {"[1,]", "unexpected character", 3},
    {"NaN", "unexpected character", 0},
    {"{\"a\" 1}", "expected ':' after object key", 5},
    {"{1:2}", "expected a string key in object", 1},
    {"{\"a\":1,}", "expected a string key in object", 7},
    {"tru", "invalid literal", 0},
    {"nulll", "unexpected text after the JSON value", 4},
    {"1.", "invalid number: digits expected after '.'", 0},
    {".5", "unexpected character", 0},
    {"1e", "invalid number: digits expected in exponent", 0},
    {"1e+", "invalid number: digits expected in exponent", 0},
    {"-", "invalid number", 0},
    {"-Infinity", "invalid number", 0},
    {"+1", "unexpected character", 0},
    {"\"abc", "unterminated string", 4},
    {"\"\\", "unterminated string", 2},
    {"[1 2]", "expected ',' or ']' in array", 3},
    {"{\"a\":1 \"b\":2}", "expected ',' or '}' in object", 7},
    {"[1", "unterminated array", 2},
    {"{\"a\":1", "unterminated object", 6},
    {"1e400", "number out of range", 5},
};

START_TEST(test_json_rejects_invalid)
{
    const char *text = json_rejects[_i].text;
    size_t len = strlen(text);
    struct fl_arena arena;
    struct fl_json v;
    const char *why = NULL;
    size_t where = SIZE_MAX;
    char *copy;
    int rc;

    fl_arena_init(&arena, 0, NULL);
    rc = parse_exact(&arena, text, len, &v, &why, &where, &copy);
    ck_assert_msg(rc == FL_EINPUT, "case %d accepted or failed with %d", _i,
                  rc);
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strcmp(why, json_rejects[_i].why) == 0,
                  "case %d: reason \"%s\", expected \"%s\"", _i, why,
                  json_rejects[_i].why);
    ck_assert_msg(where == json_rejects[_i].where,
                  "case %d (%s): offset %zu, expected %zu", _i, why, where,
                  json_rejects[_i].where);
    free(copy);
    fl_arena_destroy(&arena);
}
END_TEST

/* Builds depth nested arrays, or objects {"k":...} when objects is set. */
static char *nested(int depth, bool objects)
{
    struct fl_buf b;

    fl_buf_init(&b);
    for (int i = 0; i < depth; i++)
        fl_buf_adds(&b, objects ? "{\"k\":" : "[");
    fl_buf_adds(&b, "0");
    for (int i = 0; i < depth; i++)
        fl_buf_adds(&b, objects ? "}" : "]");
    ck_assert(!b.failed);
    return b.data;
}

START_TEST(test_json_nesting_limit)
{
    struct fl_arena arena;
    struct fl_json v;
    const char *why = NULL;
    size_t where = 0;

    fl_arena_init(&arena, 0, NULL);
    for (int objects = 0; objects <= 1; objects++) {
        char *ok = nested(FL_JSON_MAX_DEPTH, objects);
        char *deep = nested(FL_JSON_MAX_DEPTH + 1, objects);
        char *very_deep = nested(100000, objects);

        ck_assert_int_eq(fl_json_parse(&arena, ok, strlen(ok), &v, &why, NULL),
                         0);
        ck_assert_int_eq(
            fl_json_parse(&arena, deep, strlen(deep), &v, &why, &where),
            FL_EINPUT);
        ck_assert_str_eq(why, "nesting too deep");
        ck_assert_uint_eq(where, objects ? 5u * FL_JSON_MAX_DEPTH
                                         : (size_t)FL_JSON_MAX_DEPTH);
        ck_assert_int_eq(
            fl_json_parse(&arena, very_deep, strlen(very_deep), &v, &why, NULL),
            FL_EINPUT);
        ck_assert_str_eq(why, "nesting too deep");
        free(ok);
        free(deep);
        free(very_deep);
    }
    fl_arena_destroy(&arena);
}
END_TEST

START_TEST(test_json_every_prefix_clean)
{
    static const char *const docs[] = {
        ("{\"a\":[1,-2.5e3,\"x\\u00e9\\ud83d\\ude00\",true,false,null],"
         "\"b\":{\"c\":\"\\\"\"},\"d\":\"\xc3\xa9\xf0\x9f\x98\x80\"}"),
        "12345.5e10",
        "[\"\\\\\",\"\\\"\",-0]",
    };
    struct fl_arena arena;

    fl_arena_init(&arena, 0, NULL);
    for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
        size_t full = strlen(docs[d]);
        for (size_t len = 0; len <= full; len++) {
            struct fl_json v;
            const char *why = NULL;
            size_t where = SIZE_MAX;
            char *copy;
            int rc = parse_exact(&arena, docs[d], len, &v, &why, &where, &copy);

            ck_assert_msg(rc == 0 || rc == FL_EINPUT,
                          "doc %zu prefix %zu: rc %d", d, len, rc);
            if (rc == FL_EINPUT) {
                ck_assert_msg(why != NULL, "doc %zu prefix %zu: no reason", d,
                              len);
                ck_assert_msg(where <= len, "doc %zu prefix %zu: offset %zu", d,
                              len, where);
            }
            if (len == full)
                ck_assert_int_eq(rc, 0);
            free(copy);
            fl_arena_reset(&arena);
        }
    }
    fl_arena_destroy(&arena);
}
END_TEST

START_TEST(test_json_equal_hash_agree)
{
    static const struct {
        const char *a;
        const char *b;
        bool equal;
    } pairs[] = {
        {"[1,{\"a\":\"x\"}]", " [ 1 , { \"a\" : \"\\u0078\" } ] ", true},
        {"0.0", "-0.0", true},
        {"1e2", "100.0", true},
        {"\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"", true},
        {"{}", "{ }", true},
        {"1", "1.0", false},
        {"\"a\\u0000b\"", "\"a\\u0000c\"", false},
        {"\"a\"", "\"a\\u0000\"", false},
        {"[1,2]", "[1,2,3]", false},
        {"[1,2]", "[2,1]", false},
        {"{\"a\":1}", "{\"b\":1}", false},
        {"{\"a\":1}", "{\"a\":2}", false},
        {"null", "false", false},
        {"true", "false", false},
        {"[]", "{}", false},
        {"[[]]", "[]", false},
    };
    struct fl_arena arena;

    fl_arena_init(&arena, 0, NULL);
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        struct fl_json a;
        struct fl_json b;
        ck_assert_int_eq(fl_json_parse(&arena, pairs[i].a, strlen(pairs[i].a),
                                       &a, NULL, NULL),
                         0);
        ck_assert_int_eq(fl_json_parse(&arena, pairs[i].b, strlen(pairs[i].b),
                                       &b, NULL, NULL),
                         0);
        ck_assert_msg(fl_json_equal(&a, &b) == pairs[i].equal,
                      "%s vs %s: equal should be %d", pairs[i].a, pairs[i].b,
                      pairs[i].equal);
        ck_assert(fl_json_equal(&b, &a) == pairs[i].equal);
        ck_assert(fl_json_equal(&a, &a));
        /*
         * Equal values must hash alike. For these unequal pairs the hashes
         * also differ, which shows the hash reads every part of a value.
         */
        if (pairs[i].equal)
            ck_assert_msg(fl_json_hash(&a) == fl_json_hash(&b),
                          "%s vs %s: equal values hash differently", pairs[i].a,
                          pairs[i].b);
        else
            ck_assert_msg(fl_json_hash(&a) != fl_json_hash(&b),
                          "%s vs %s: hashes collide", pairs[i].a, pairs[i].b);
    }
    fl_arena_destroy(&arena);
}
END_TEST

START_TEST(test_json_copy_is_deep)
{
    static const char doc[] =
        "{\"s\":\"plain\",\"e\":\"esc\\n\",\"a\":[1,2.5,[\"x\"],{},[]],"
        "\"o\":{\"k\":null,\"t\":true}}";
    struct fl_arena source;
    struct fl_arena target;
    struct fl_arena check;
    struct fl_json original;
    struct fl_json copy;
    struct fl_json fresh;
    char *text = malloc(sizeof(doc));
    char *before;
    char *after;

    ck_assert_ptr_nonnull(text);
    memcpy(text, doc, sizeof(doc));
    fl_arena_init(&source, 0, NULL);
    fl_arena_init(&target, 0, NULL);
    fl_arena_init(&check, 0, NULL);
    ck_assert_int_eq(
        fl_json_parse(&source, text, sizeof(doc) - 1, &original, NULL, NULL),
        0);
    ck_assert_int_eq(fl_json_copy(&target, &original, &copy), 0);
    before = json_text(&original);

    /* Unescaped strings point into text, so free it along with the arena. */
    memset(text, '#', sizeof(doc) - 1);
    free(text);
    fl_arena_destroy(&source);

    after = json_text(&copy);
    ck_assert_str_eq(after, before);
    ck_assert_int_eq(
        fl_json_parse(&check, doc, sizeof(doc) - 1, &fresh, NULL, NULL), 0);
    ck_assert(fl_json_equal(&copy, &fresh));
    ck_assert_uint_eq(fl_json_hash(&copy), fl_json_hash(&fresh));
    ck_assert_str_eq(fl_json_get(&copy, "s")->u.s.ptr, "plain");
    ck_assert_ptr_null(fl_json_get(&copy, "missing"));
    free(before);
    free(after);
    fl_arena_destroy(&target);
    fl_arena_destroy(&check);
}
END_TEST

START_TEST(test_json_copy_reports_budget)
{
    static const char doc[] = "{\"key\":[\"a string to copy\"]}";
    struct fl_budget budget;
    struct fl_arena source;
    struct fl_arena target;
    struct fl_json original;
    struct fl_json copy;

    fl_arena_init(&source, 0, NULL);
    ck_assert_int_eq(
        fl_json_parse(&source, doc, sizeof(doc) - 1, &original, NULL, NULL), 0);

    /* Callers such as the checker turn FL_EBUDGET into an unknown verdict. */
    fl_budget_init(&budget, 64);
    fl_arena_init(&target, 0, &budget);
    ck_assert_int_eq(fl_json_copy(&target, &original, &copy), FL_EBUDGET);
    ck_assert_int_eq(target.error, FL_EBUDGET);
    fl_arena_destroy(&target);
    ck_assert_int_eq(atomic_load(&budget.used), 0);
    fl_arena_destroy(&source);
}
END_TEST

/* Regression: the parser's scratch stack for array elements was not
 * charged, so one wide line could outgrow any memory limit. */
START_TEST(test_json_parse_stack_charged_to_budget)
{
    struct fl_budget budget;
    struct fl_arena arena;
    struct fl_json v;
    const char *why = NULL;
    size_t n = 20000;
    char *doc = malloc(2 * n + 2);

    ck_assert_ptr_nonnull(doc);
    doc[0] = '[';
    for (size_t i = 0; i < n; i++) {
        doc[1 + 2 * i] = '0';
        doc[2 + 2 * i] = i + 1 < n ? ',' : ']';
    }
    fl_budget_init(&budget, 64 * 1024);
    fl_arena_init(&arena, 1024, &budget);
    ck_assert_int_eq(fl_json_parse(&arena, doc, 2 * n + 1, &v, &why, NULL),
                     FL_EBUDGET);
    fl_arena_destroy(&arena);
    ck_assert_int_eq(atomic_load(&budget.used), 0);
    free(doc);
}
END_TEST

/* ---- history reader ---------------------------------------------------- */

/* Opens text as an in-memory history named "h". */
static struct fl_hist_reader *open_text(const char *text)
{
    struct fl_hist_reader *r = NULL;

    ck_assert_int_eq(fl_hist_reader_open_mem(&r, "h", text, strlen(text), NULL),
                     0);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Reads events until the reader stops and returns its last result. */
static int read_until_stop(struct fl_hist_reader *r, size_t *events)
{
    struct fl_hist_event ev;
    int rc;

    *events = 0;
    while ((rc = fl_hist_reader_next(r, &ev)) == 1)
        (*events)++;
    return rc;
}

START_TEST(test_hist_reader_valid_with_index)
{
    static const char text[] =
        "{\"index\":0,\"time\":10,\"process\":3,\"type\":\"invoke\","
        "\"f\":\"cas\",\"key\":\"k1\",\"value\":[1,2]}\n"
        "{\"index\":5,\"time\":10,\"process\":4,\"type\":\"invoke\","
        "\"f\":\"read\",\"extra\":{\"ignored\":true}}\n"
        "{\"index\":6,\"time\":20,\"process\":3,\"type\":\"ok\","
        "\"f\":\"cas\",\"key\":\"k1\",\"value\":[1,2]}\n"
        "{\"index\":9,\"time\":30,\"process\":4,\"type\":\"ok\","
        "\"f\":\"read\",\"value\":\"text\"}\n";
    struct fl_hist_reader *r = open_text(text);
    struct fl_hist_event ev;

    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_int_eq(ev.index, 0);
    ck_assert_int_eq(ev.time, 10);
    ck_assert_int_eq(ev.process, 3);
    ck_assert_int_eq(ev.type, FL_HIST_INVOKE);
    ck_assert(fl_str_eq(ev.f, "cas"));
    ck_assert(fl_str_eq(ev.key, "k1"));
    ck_assert(ev.has_value);
    ck_assert_int_eq(ev.value.kind, FL_JSON_ARRAY);
    ck_assert_uint_eq(ev.value.u.array.count, 2);
    ck_assert_uint_eq(ev.line, 1);

    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_int_eq(ev.index, 5);
    ck_assert_ptr_null(ev.key.ptr);
    ck_assert(!ev.has_value);
    ck_assert_int_eq(ev.value.kind, FL_JSON_NULL);
    ck_assert_uint_eq(fl_hist_reader_open_count(r), 2);

    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_int_eq(ev.type, FL_HIST_OK);
    ck_assert_uint_eq(ev.line, 3);
    ck_assert_uint_eq(ev.invoke_line, 1);

    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_int_eq(ev.value.kind, FL_JSON_STRING);
    ck_assert_uint_eq(ev.invoke_line, 2);

    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 0);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 0);
    ck_assert_uint_eq(fl_hist_reader_open_count(r), 0);
    ck_assert_uint_eq(fl_hist_reader_line(r), 4);
    ck_assert_str_eq(fl_hist_reader_error(r), "");
    fl_hist_reader_close(r);
}
END_TEST

START_TEST(test_hist_reader_crlf_blank_lines_no_final_newline)
{
    static const char text[] =
        "\r\n"
        "{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"write\","
        "\"value\":7}\r\n"
        "   \t\r\n"
        "\n"
        "{\"time\":2,\"process\":0,\"type\":\"fail\",\"f\":\"write\"}\r\n"
        "{\"time\":2,\"process\":1,\"type\":\"invoke\",\"f\":\"append\","
        "\"value\":\"x\"}";
    struct fl_hist_reader *r = open_text(text);
    struct fl_hist_event ev;

    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_int_eq(ev.index, -1);
    ck_assert_uint_eq(ev.line, 2);
    ck_assert_int_eq(ev.value.u.i, 7);

    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_int_eq(ev.type, FL_HIST_FAIL);
    ck_assert(!ev.has_value);
    ck_assert_uint_eq(ev.line, 5);
    ck_assert_uint_eq(ev.invoke_line, 2);

    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_uint_eq(ev.line, 6);
    ck_assert(fl_str_eq(ev.f, "append"));
    ck_assert(fl_str_eq(ev.value.u.s, "x"));

    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 0);
    ck_assert_uint_eq(fl_hist_reader_open_count(r), 1);
    fl_hist_reader_close(r);

    /* An empty history and one of blank lines hold no events. */
    r = open_text("");
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 0);
    fl_hist_reader_close(r);
    r = open_text("\n\r\n  \n");
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 0);
    ck_assert_uint_eq(fl_hist_reader_line(r), 3);
    fl_hist_reader_close(r);
}
END_TEST

START_TEST(test_hist_reader_open_count_at_eof)
{
    static const char text[] =
        "{\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n"
        "{\"time\":0,\"process\":2,\"type\":\"invoke\",\"f\":\"read\"}\n"
        "{\"time\":0,\"process\":3,\"type\":\"invoke\",\"f\":\"read\"}\n"
        "{\"time\":0,\"process\":4,\"type\":\"invoke\",\"f\":\"read\"}\n"
        "{\"time\":1,\"process\":1,\"type\":\"ok\",\"f\":\"read\","
        "\"value\":null}\n"
        "{\"time\":1,\"process\":3,\"type\":\"info\",\"f\":\"read\"}\n"
        "{\"time\":2,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n";
    struct fl_hist_reader *r = open_text(text);
    size_t events;

    ck_assert_int_eq(read_until_stop(r, &events), 0);
    ck_assert_uint_eq(events, 7);
    /* Processes 1 (again), 2 and 4 are open, and info closed process 3. */
    ck_assert_uint_eq(fl_hist_reader_open_count(r), 3);
    fl_hist_reader_close(r);
}
END_TEST

/* Valid lines to build malformed histories from. */
#define INV(p, f, rest)                                                        \
    "{\"time\":1,\"process\":" #p ",\"type\":\"invoke\",\"f\":\"" f "\"" rest  \
    "}\n"
#define DONE(p, type, f, rest)                                                 \
    "{\"time\":2,\"process\":" #p ",\"type\":\"" type "\",\"f\":\"" f          \
    "\"" rest "}\n"

/* Malformed histories and the exact error the reader must report. */
static const struct {
    const char *text;
    const char *error;
} hist_rejects[] = {
    /* Invalid JSON and non-objects. */
    {INV(1, "read", "") "{\"process\":1,}\n",
     "h:2: invalid JSON: expected a string key in object at column 14"},
    {"{\"time\":1,\"process\":1,\"type\":\"invoke\",\"f\":\"r\xff\"}\n",
     "h:1: invalid JSON: invalid UTF-8 in string at column 45"},
    {"\n\n{\"time\":1} x\n", "h:3: invalid JSON: unexpected text after the "
                             "JSON value at column 12"},
    {"[1,2]\n", "h:1: expected a JSON object, got array"},
    {"\"invoke\"\n", "h:1: expected a JSON object, got string"},

    /* Missing and mistyped fields. */
    {"{\"time\":1,\"type\":\"invoke\",\"f\":\"read\"}\n",
     "h:1: missing field \"process\""},
    {"{\"time\":1,\"process\":1,\"f\":\"read\"}\n",
     "h:1: missing field \"type\""},
    {"{\"time\":1,\"process\":1,\"type\":\"invoke\"}\n",
     "h:1: missing field \"f\""},
    {"{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n",
     "h:1: missing field \"time\""},
    {"{\"time\":1,\"process\":1,\"type\":\"crash\",\"f\":\"read\"}\n",
     "h:1: unknown type \"crash\"; expected invoke, ok, fail or info"},
    {"{\"time\":1,\"process\":\"1\",\"type\":\"invoke\",\"f\":\"read\"}\n",
     "h:1: field \"process\" must be an integer, got string"},
    {"{\"time\":1.5,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n",
     "h:1: field \"time\" must be an integer, got number"},
    {"{\"time\":1,\"process\":1,\"type\":0,\"f\":\"read\"}\n",
     "h:1: field \"type\" must be a string, got integer"},
    {"{\"time\":1,\"process\":1,\"type\":\"invoke\",\"f\":null}\n",
     "h:1: field \"f\" must be a string, got null"},
    {"{\"time\":1,\"process\":1,\"type\":\"invoke\",\"f\":\"\"}\n",
     "h:1: f must be a non-empty string"},
    {INV(1, "read", ",\"key\":7"),
     "h:1: field \"key\" must be a string, got integer"},
    {INV(1, "read", ",\"index\":\"0\""),
     "h:1: field \"index\" must be a non-negative integer, got string"},
    {INV(1, "read", ",\"index\":-1"),
     "h:1: field \"index\" must be a non-negative integer, got -1"},
    {INV(1, "read", ",\"process\":2"), "h:1: duplicate field \"process\""},
    {INV(1, "write", ",\"value\":1,\"value\":2"),
     "h:1: duplicate field \"value\""},
    {INV(-1, "read", ""), "h:1: process must not be negative, got -1"},
    {"{\"time\":-5,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n",
     "h:1: time must not be negative, got -5"},

    /* Ordering. */
    {"{\"time\":5,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n"
     "{\"time\":4,\"process\":1,\"type\":\"ok\",\"f\":\"read\"}\n",
     "h:2: time 4 is earlier than the previous event's time 5; events must "
     "be in real-time order"},
    {INV(1, "read", ",\"index\":3") INV(2, "read", ",\"index\":3"),
     "h:2: index 3 is not greater than the previous index 3"},
    {INV(1, "read", ",\"index\":3") INV(2, "read", "")
         INV(3, "read", ",\"index\":2"),
     "h:3: index 2 is not greater than the previous index 3"},

    /* Invocation and completion pairing. */
    {DONE(1, "ok", "read", ""),
     "h:1: ok completion for process 1, which has no open invocation"},
    {INV(1, "read", "") DONE(1, "ok", "read", ",\"value\":null")
         DONE(1, "fail", "read", ""),
     "h:3: fail completion for process 1, which has no open invocation"},
    {INV(1, "read", "") INV(2, "read", "") INV(1, "read", ""),
     "h:3: process 1 invokes while its invocation on line 1 is still open"},
    {INV(1, "read", "") "\n" DONE(
         1, "info", "read",
         "") "{\"time\":2,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n",
     "h:4: process 1 invokes after its operation ended in info on line 3; a "
     "process with an unknown outcome must continue under a new process "
     "number"},
    {INV(1, "read", "") DONE(1, "ok", "read", ""),
     "h:2: an ok read needs a value (null for an empty register)"},
    /* Regression: values used to be compared by a 64-bit hash, and this
     * integer has the hash of null. */
    {INV(1, "write", ",\"value\":null")
         DONE(1, "ok", "write", ",\"value\":-892191949907147737"),
     "h:2: completion value differs from the value of the invocation on "
     "line 1"},
    /* Control characters from the input never reach a message. */
    {"{\"time\":0,\"process\":1,\"type\":\"\\u001b[2J\",\"f\":\"read\"}\n",
     "h:1: unknown type \"?[2J\"; expected invoke, ok, fail or info"},
    {INV(1, "write", ",\"value\":1") DONE(1, "ok", "read", ""),
     "h:2: completion f \"read\" differs from f \"write\" of the open "
     "invocation on line 1"},
    {INV(1, "read", ",\"key\":\"a\"") DONE(1, "ok", "read", ",\"key\":\"b\""),
     "h:2: completion key differs from the key of the open invocation on "
     "line 1"},
    {INV(1, "read", ",\"key\":\"a\"") DONE(1, "ok", "read", ""),
     "h:2: completion key differs from the key of the open invocation on "
     "line 1"},
    {INV(1, "write", ",\"value\":1") DONE(1, "ok", "write", ",\"value\":2"),
     "h:2: completion value differs from the value of the invocation on "
     "line 1"},
    {INV(1, "write", ",\"value\":1")
         DONE(1, "info", "write", ",\"value\":\"1\""),
     "h:2: completion value differs from the value of the invocation on "
     "line 1"},
    {INV(1, "cas", ",\"value\":[1,2]") DONE(1, "ok", "cas", ",\"value\":[1,3]"),
     "h:2: completion value differs from the value of the invocation on "
     "line 1"},
    {INV(1, "put", ",\"value\":\"a\"") DONE(1, "ok", "put", ",\"value\":\"b\""),
     "h:2: completion value differs from the value of the invocation on "
     "line 1"},
    {INV(1, "append", ",\"value\":\"x\"")
         DONE(1, "fail", "append", ",\"value\":\"y\""),
     "h:2: completion value differs from the value of the invocation on "
     "line 1"},

    /* Value shapes of the known operations. */
    {INV(1, "cas", ",\"value\":5"),
     "h:1: a cas value must be an array [expected, new], got integer"},
    {INV(1, "cas", ",\"value\":[1]"),
     "h:1: a cas value must be an array [expected, new], got an array of "
     "another length"},
    {INV(1, "cas", ""),
     "h:1: a cas value must be an array [expected, new], got null"},
    {INV(1, "cas", ",\"value\":[[1],2]"),
     "h:1: cas [expected, new] must hold integers, strings or nulls"},
    {INV(1, "read", ",\"value\":1"),
     "h:1: a read invocation must carry a null value, got integer"},
    {INV(1, "get", ",\"value\":\"k\""),
     "h:1: a get invocation must carry a null value, got string"},
    {INV(1, "read", "") DONE(1, "ok", "read", ",\"value\":[1]"),
     "h:2: a read result must be null, an integer or a string, got array"},
    {INV(1, "write", ""), "h:1: a write invocation needs a value"},
    {INV(1, "write", ",\"value\":true"),
     "h:1: a write value must be an integer, a string or null, got boolean"},
    {INV(1, "append", ",\"value\":1"),
     "h:1: an append value must be a string, got integer"},
    {INV(1, "put", ",\"value\":null"),
     "h:1: a put value must be a string, got null"},
};

START_TEST(test_hist_reader_rejects_malformed)
{
    struct fl_hist_reader *r = open_text(hist_rejects[_i].text);
    struct fl_hist_event ev;
    char first[1024];
    uint64_t line;
    size_t events;
    int rc;

    rc = read_until_stop(r, &events);
    ck_assert_msg(rc == FL_EINPUT,
                  "case %d: reader returned %d after %zu "
                  "events",
                  _i, rc, events);
    ck_assert_str_eq(fl_hist_reader_error(r), hist_rejects[_i].error);

    /* The error is sticky: later calls repeat it without reading on. */
    snprintf(first, sizeof(first), "%s", fl_hist_reader_error(r));
    line = fl_hist_reader_line(r);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), FL_EINPUT);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), FL_EINPUT);
    ck_assert_str_eq(fl_hist_reader_error(r), first);
    ck_assert_uint_eq(fl_hist_reader_line(r), line);
    fl_hist_reader_close(r);
}
END_TEST

START_TEST(test_hist_reader_unknown_type_truncated)
{
    char text[256];
    char want[128];
    struct fl_hist_reader *r;
    size_t events;

    snprintf(text, sizeof(text),
             "{\"time\":1,\"process\":1,\"type\":\"%s\",\"f\":\"read\"}\n",
             "0123456789012345678901234567890123456789-cut-here");
    snprintf(want, sizeof(want),
             "h:1: unknown type \"%s\"; expected invoke, ok, fail or info",
             "0123456789012345678901234567890123456789");
    r = open_text(text);
    ck_assert_int_eq(read_until_stop(r, &events), FL_EINPUT);
    ck_assert_str_eq(fl_hist_reader_error(r), want);
    fl_hist_reader_close(r);
}
END_TEST

START_TEST(test_hist_reader_mem_line_too_long)
{
    size_t len = FL_HIST_MAX_LINE + 1;
    char *text = malloc(len + 1);
    struct fl_hist_reader *r;
    struct fl_hist_event ev;
    char want[128];

    ck_assert_ptr_nonnull(text);
    memset(text, ' ', len);
    text[len] = '\n';
    ck_assert_int_eq(fl_hist_reader_open_mem(&r, "h", text, len + 1, NULL), 0);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), FL_EINPUT);
    snprintf(want, sizeof(want), "h:1: line longer than %u bytes",
             FL_HIST_MAX_LINE);
    ck_assert_str_eq(fl_hist_reader_error(r), want);
    fl_hist_reader_close(r);
    free(text);
}
END_TEST

/* Creates a temporary file containing text[0..len) and returns its path. */
static char *temp_file_with(const char *text, size_t len)
{
    char *path = strdup("/tmp/check_common_XXXXXX");
    int fd;

    ck_assert_ptr_nonnull(path);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, text + done, len - done);
        ck_assert_int_gt(n, 0);
        done += (size_t)n;
    }
    ck_assert_int_eq(close(fd), 0);
    return path;
}

START_TEST(test_hist_reader_open_missing_and_temp_file)
{
    static const char text[] = INV(1, "write", ",\"value\":3")
        INV(2, "read", "") DONE(1, "ok", "write", ",\"value\":3");
    /* Any non-NULL value, to see that a failed open clears it. */
    struct fl_hist_reader *r = (struct fl_hist_reader *)&r;
    struct fl_hist_event ev;
    char *path;
    size_t events;

    ck_assert_int_eq(
        fl_hist_reader_open(&r, "/nonexistent/faultline/h.jsonl", NULL),
        -ENOENT);
    ck_assert_ptr_null(r);

    /* The reader keeps its descriptor, so the file can go at once. */
    path = temp_file_with(text, sizeof(text) - 1);
    ck_assert_int_eq(fl_hist_reader_open(&r, path, NULL), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(read_until_stop(r, &events), 0);
    ck_assert_uint_eq(events, 3);
    ck_assert_uint_eq(fl_hist_reader_open_count(r), 1);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 0);
    fl_hist_reader_close(r);
    free(path);
}
END_TEST

/* A line longer than the reader's first 1 MiB buffer, read from a file. */
START_TEST(test_hist_reader_file_long_lines)
{
    size_t pad = 3u << 20;
    size_t cap = pad + 1024;
    char *text = malloc(cap);
    struct fl_hist_reader *r;
    struct fl_hist_event ev;
    char *path;
    int n;

    ck_assert_ptr_nonnull(text);
    n = snprintf(text, cap, "%s", INV(1, "read", ""));
    n += snprintf(text + n, cap - (size_t)n,
                  "{\"time\":3,\"process\":1,\"type\":\"ok\",\"f\":\"read\","
                  "\"value\":\"");
    memset(text + n, 'v', pad);
    n += (int)pad;
    n += snprintf(text + n, cap - (size_t)n,
                  "\"}\n{\"time\":3,\"process\":2,\"type\":\"invoke\","
                  "\"f\":\"read\"}\n");
    path = temp_file_with(text, (size_t)n);

    ck_assert_int_eq(fl_hist_reader_open(&r, path, NULL), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_int_eq(ev.value.kind, FL_JSON_STRING);
    ck_assert_uint_eq(ev.value.u.s.len, pad);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_uint_eq(ev.line, 3);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 0);
    fl_hist_reader_close(r);
    free(path);
    free(text);
}
END_TEST

/* The line limit holds for files too, not only for memory input. */
START_TEST(test_hist_reader_file_line_too_long)
{
    size_t len = FL_HIST_MAX_LINE + (1u << 20);
    char *text = malloc(len);
    struct fl_hist_reader *r;
    struct fl_hist_event ev;
    char want[256];
    char *path;
    int n;

    /* A valid event padded with an ignored field past the limit. */
    ck_assert_ptr_nonnull(text);
    n = snprintf(text, len, "%s", INV(1, "read", ""));
    n += snprintf(text + n, len - (size_t)n,
                  "{\"time\":1,\"process\":2,\"type\":\"invoke\","
                  "\"f\":\"read\",\"pad\":\"");
    memset(text + n, 'x', len - (size_t)n - 3);
    memcpy(text + len - 3, "\"}\n", 3);
    path = temp_file_with(text, len);

    ck_assert_int_eq(fl_hist_reader_open(&r, path, NULL), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), FL_EINPUT);
    snprintf(want, sizeof(want), "%s:2: line longer than %u bytes", path,
             FL_HIST_MAX_LINE);
    ck_assert_str_eq(fl_hist_reader_error(r), want);
    fl_hist_reader_close(r);
    free(path);
    free(text);
}
END_TEST

START_TEST(test_hist_reader_read_error_names_line)
{
    char dir[] = "/tmp/check_common_dir_XXXXXX";
    struct fl_hist_reader *r;
    struct fl_hist_event ev;
    char want[256];

    /* open(2) accepts a directory for reading, and read(2) then fails. */
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(fl_hist_reader_open(&r, dir, NULL), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), -EISDIR);
    snprintf(want, sizeof(want), "%s:1: read failed: %s", dir,
             strerror(EISDIR));
    ck_assert_str_eq(fl_hist_reader_error(r), want);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), -EISDIR);
    fl_hist_reader_close(r);
}
END_TEST

START_TEST(test_hist_reader_budget_exhausted)
{
    struct fl_budget budget;
    struct fl_hist_reader *r;
    struct fl_buf text;
    size_t events;

    /* Many processes grow the tracker past a small budget. */
    fl_buf_init(&text);
    for (int p = 0; p < 5000; p++)
        fl_buf_printf(&text,
                      "{\"time\":1,\"process\":%d,\"type\":\"invoke\","
                      "\"f\":\"read\"}\n",
                      p);
    ck_assert(!text.failed);
    fl_budget_init(&budget, 64 * 1024);
    ck_assert_int_eq(
        fl_hist_reader_open_mem(&r, "h", text.data, text.len, &budget), 0);
    ck_assert_int_eq(read_until_stop(r, &events), FL_EBUDGET);
    ck_assert_uint_lt(events, 5000);
    ck_assert_ptr_nonnull(
        strstr(fl_hist_reader_error(r), "time or memory budget exhausted"));
    fl_hist_reader_close(r);
    ck_assert_int_eq(atomic_load(&budget.used), 0);
    fl_buf_free(&text);
}
END_TEST

/* ---- history writer ---------------------------------------------------- */

/* Parses text into arena. The text must outlive the value. */
static struct fl_json json_value(struct fl_arena *arena, const char *text)
{
    struct fl_json v;
    const char *why = NULL;

    ck_assert_msg(fl_json_parse(arena, text, strlen(text), &v, &why, NULL) == 0,
                  "%s: %s", text, why);
    return v;
}

/* Builds an event with index -1 and, when value is NULL, no value. */
static struct fl_hist_event make_event(int64_t time, int64_t process,
                                       enum fl_hist_type type, const char *f,
                                       const char *key,
                                       const struct fl_json *value)
{
    struct fl_hist_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.index = -1;
    ev.time = time;
    ev.process = process;
    ev.type = type;
    ev.f = fl_str_of(f);
    ev.key = fl_str_of(key);
    ev.value.kind = FL_JSON_NULL;
    if (value != NULL) {
        ev.value = *value;
        ev.has_value = true;
    }
    return ev;
}

START_TEST(test_hist_writer_round_trip)
{
    struct fl_arena arena;
    struct fl_json quoted;
    struct fl_json nested_value;
    struct fl_json seven;
    struct fl_json pair;
    struct fl_json with_nul;
    struct fl_hist_event events[10];
    struct fl_hist_writer *w;
    struct fl_hist_reader *r;
    struct fl_hist_event got;
    FILE *out = tmpfile();
    size_t n = sizeof(events) / sizeof(events[0]);
    size_t len;
    char *text;

    ck_assert_ptr_nonnull(out);
    fl_arena_init(&arena, 0, NULL);
    quoted = json_value(&arena, "\"a\\\"b\\nc\"");
    nested_value =
        json_value(&arena, "[[1,\"x\"],{\"k\":null,\"n\":[true,1.5,1.0]}]");
    seven = json_value(&arena, "7");
    pair = json_value(&arena, "[1,\"two\"]");
    with_nul = json_value(&arena, "\"x\\u0000y\"");

    events[0] = make_event(1, 1, FL_HIST_INVOKE, "write", "k1", &quoted);
    events[1] = make_event(2, 2, FL_HIST_INVOKE, "txn", NULL, &nested_value);
    events[2] = make_event(3, 1, FL_HIST_OK, "write", "k1", &quoted);
    events[3] = make_event(4, 3, FL_HIST_INVOKE, "read", NULL, NULL);
    events[4] = make_event(5, 3, FL_HIST_OK, "read", NULL, &seven);
    events[5] = make_event(6, 2, FL_HIST_INFO, "txn", NULL, &nested_value);
    events[6] = make_event(7, 4, FL_HIST_INVOKE, "cas", "quote\"key\n", &pair);
    /* Completions may omit the value of write, cas, put and append. */
    events[7] = make_event(8, 4, FL_HIST_OK, "cas", "quote\"key\n", NULL);
    events[8] = make_event(9, 5, FL_HIST_INVOKE, "append", NULL, &with_nul);
    events[9] = make_event(9, 5, FL_HIST_FAIL, "append", NULL, NULL);

    ck_assert_int_eq(fl_hist_writer_stream(&w, out), 0);
    for (size_t i = 0; i < n; i++) {
        int rc = fl_hist_writer_write(w, &events[i]);
        ck_assert_msg(rc == 0, "event %zu: %s", i, fl_hist_writer_error(w));
    }
    ck_assert_int_eq(fl_hist_writer_close(w), 0);

    text = read_stream(out, &len);
    ck_assert_int_eq(fl_hist_reader_open_mem(&r, "h", text, len, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        int rc = fl_hist_reader_next(r, &got);
        ck_assert_msg(rc == 1, "event %zu: %s", i, fl_hist_reader_error(r));
        ck_assert_int_eq(got.index, (int64_t)i);
        ck_assert_int_eq(got.time, events[i].time);
        ck_assert_int_eq(got.process, events[i].process);
        ck_assert_int_eq(got.type, events[i].type);
        ck_assert(fl_str_same(got.f, events[i].f));
        ck_assert((got.key.ptr == NULL) == (events[i].key.ptr == NULL));
        if (got.key.ptr != NULL)
            ck_assert(fl_str_same(got.key, events[i].key));
        ck_assert_msg(got.has_value == events[i].has_value,
                      "event %zu: has_value %d read back as %d", i,
                      events[i].has_value, got.has_value);
        ck_assert_msg(fl_json_equal(&got.value, &events[i].value),
                      "event %zu: value differs", i);
    }
    ck_assert_int_eq(fl_hist_reader_next(r, &got), 0);
    ck_assert_uint_eq(fl_hist_reader_open_count(r), 0);
    fl_hist_reader_close(r);
    free(text);
    fclose(out);
    fl_arena_destroy(&arena);
}
END_TEST

START_TEST(test_hist_writer_assigns_index)
{
    struct fl_hist_writer *w;
    struct fl_hist_event ev;
    FILE *out = tmpfile();
    char *text;

    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(fl_hist_writer_stream(&w, out), 0);
    for (int p = 0; p < 3; p++) {
        ev = make_event(0, p, FL_HIST_INVOKE, "read", NULL, NULL);
        ck_assert_int_eq(fl_hist_writer_write(w, &ev), 0);
    }
    ev = make_event(0, 3, FL_HIST_INVOKE, "read", NULL, NULL);
    ev.index = 10;
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), 0);
    ev = make_event(0, 4, FL_HIST_INVOKE, "read", NULL, NULL);
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), 0);
    ev = make_event(0, 5, FL_HIST_INVOKE, "read", NULL, NULL);
    ev.index = 11;
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), FL_EINPUT);
    ck_assert_str_eq(fl_hist_writer_error(w),
                     "index 11 is not greater than the previous index 11");
    ck_assert_int_eq(fl_hist_writer_close(w), 0);

    text = read_stream(out, NULL);
    ck_assert_str_eq(
        text, "{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\","
              "\"f\":\"read\"}\n"
              "{\"index\":1,\"time\":0,\"process\":1,\"type\":\"invoke\","
              "\"f\":\"read\"}\n"
              "{\"index\":2,\"time\":0,\"process\":2,\"type\":\"invoke\","
              "\"f\":\"read\"}\n"
              "{\"index\":10,\"time\":0,\"process\":3,\"type\":\"invoke\","
              "\"f\":\"read\"}\n"
              "{\"index\":11,\"time\":0,\"process\":4,\"type\":\"invoke\","
              "\"f\":\"read\"}\n");
    free(text);
    fclose(out);
}
END_TEST

START_TEST(test_hist_writer_rejects_invalid_event)
{
    struct fl_arena arena;
    struct fl_json five;
    struct fl_json one;
    struct fl_hist_writer *w;
    struct fl_hist_event ev;
    FILE *out = tmpfile();
    size_t before;
    size_t after;
    char *text;

    ck_assert_ptr_nonnull(out);
    fl_arena_init(&arena, 0, NULL);
    five = json_value(&arena, "5");
    one = json_value(&arena, "1");
    ck_assert_int_eq(fl_hist_writer_stream(&w, out), 0);
    ck_assert_str_eq(fl_hist_writer_error(w), "");

    ev = make_event(1, 1, FL_HIST_INVOKE, "write", NULL, &one);
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), 0);
    ck_assert_int_eq(fl_hist_writer_flush(w), 0);
    free(read_stream(out, &before));

    ev = make_event(2, 2, FL_HIST_INVOKE, "cas", NULL, &five);
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), FL_EINPUT);
    ck_assert_str_eq(fl_hist_writer_error(w),
                     "a cas value must be an array [expected, new], got "
                     "integer");

    /* Line numbers count the lines this writer wrote. */
    ev = make_event(2, 1, FL_HIST_INVOKE, "write", NULL, &one);
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), FL_EINPUT);
    ck_assert_str_eq(fl_hist_writer_error(w),
                     "process 1 invokes while its invocation on line 1 is "
                     "still open");

    ev = make_event(0, 2, FL_HIST_INVOKE, "read", NULL, NULL);
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), FL_EINPUT);
    ck_assert_str_eq(fl_hist_writer_error(w),
                     "time 0 is earlier than the previous event's time 1; "
                     "events must be in real-time order");

    ev = make_event(2, 3, FL_HIST_OK, "read", NULL, &one);
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), FL_EINPUT);
    ck_assert_str_eq(fl_hist_writer_error(w),
                     "ok completion for process 3, which has no open "
                     "invocation");

    ck_assert_int_eq(fl_hist_writer_flush(w), 0);
    free(read_stream(out, &after));
    ck_assert_uint_eq(after, before);

    /* Rejections are not sticky: a valid event is still written. */
    ev = make_event(3, 1, FL_HIST_OK, "write", NULL, &one);
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), 0);
    ck_assert_int_eq(fl_hist_writer_close(w), 0);
    text = read_stream(out, &after);
    ck_assert_uint_gt(after, before);
    ck_assert_ptr_nonnull(strstr(text, "{\"index\":1,\"time\":3,"));
    free(text);
    fclose(out);
    fl_arena_destroy(&arena);
}
END_TEST

START_TEST(test_hist_writer_open_file)
{
    struct fl_hist_writer *w = (struct fl_hist_writer *)&w;
    struct fl_hist_reader *r;
    struct fl_hist_event ev;
    char path[] = "/tmp/check_common_writer_XXXXXX";
    size_t events;
    int fd;

    ck_assert_int_eq(fl_hist_writer_open(&w, "/nonexistent/faultline/h.jsonl"),
                     -ENOENT);
    ck_assert_ptr_null(w);

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "stale content\n", 14), 14);
    close(fd);
    ck_assert_int_eq(fl_hist_writer_open(&w, path), 0);
    ev = make_event(1, 7, FL_HIST_INVOKE, "read", NULL, NULL);
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), 0);
    ev = make_event(2, 7, FL_HIST_FAIL, "read", NULL, NULL);
    ck_assert_int_eq(fl_hist_writer_write(w, &ev), 0);
    ck_assert_int_eq(fl_hist_writer_close(w), 0);

    /* The writer truncated the old content. */
    ck_assert_int_eq(fl_hist_reader_open(&r, path, NULL), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(read_until_stop(r, &events), 0);
    ck_assert_uint_eq(events, 2);
    fl_hist_reader_close(r);
}
END_TEST

enum { WRITER_THREADS = 4, WRITER_PAIRS = 500 };

struct writer_job {
    struct fl_hist_writer *w;
    int64_t process;
    int failures;
};

static void *write_pairs(void *arg)
{
    struct writer_job *job = arg;

    for (int64_t i = 0; i < WRITER_PAIRS; i++) {
        struct fl_json value = {.kind = FL_JSON_INT, .u.i = i};
        /*
         * Every event has time 0: a time read before the call could reach
         * the writer's lock after a later one and be rejected as going
         * backwards.
         */
        struct fl_hist_event ev =
            make_event(0, job->process, FL_HIST_INVOKE, "write", "k", &value);
        job->failures += fl_hist_writer_write(job->w, &ev) != 0;
        ev.type = FL_HIST_OK;
        job->failures += fl_hist_writer_write(job->w, &ev) != 0;
    }
    return NULL;
}

START_TEST(test_hist_writer_concurrent_threads)
{
    struct writer_job jobs[WRITER_THREADS];
    pthread_t threads[WRITER_THREADS];
    struct fl_hist_writer *w;
    struct fl_hist_reader *r;
    struct fl_hist_event ev;
    int64_t per_process[WRITER_THREADS] = {0};
    FILE *out = tmpfile();
    size_t events = 0;
    size_t len;
    char *text;
    int rc;

    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(fl_hist_writer_stream(&w, out), 0);
    for (int i = 0; i < WRITER_THREADS; i++) {
        jobs[i] = (struct writer_job){.w = w, .process = i};
        ck_assert_int_eq(
            pthread_create(&threads[i], NULL, write_pairs, &jobs[i]), 0);
    }
    for (int i = 0; i < WRITER_THREADS; i++) {
        ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
        ck_assert_int_eq(jobs[i].failures, 0);
    }
    ck_assert_int_eq(fl_hist_writer_close(w), 0);

    text = read_stream(out, &len);
    ck_assert_int_eq(fl_hist_reader_open_mem(&r, "h", text, len, NULL), 0);
    while ((rc = fl_hist_reader_next(r, &ev)) == 1) {
        ck_assert_int_eq(ev.index, (int64_t)events);
        /* Each process's values arrive in its own order, invoke then ok. */
        ck_assert_int_eq(ev.value.u.i, per_process[ev.process] / 2);
        per_process[ev.process]++;
        events++;
    }
    ck_assert_msg(rc == 0, "%s", fl_hist_reader_error(r));
    ck_assert_uint_eq(events, 2 * WRITER_THREADS * WRITER_PAIRS);
    ck_assert_uint_eq(fl_hist_reader_open_count(r), 0);
    fl_hist_reader_close(r);
    free(text);
    fclose(out);
}
END_TEST

/* ---- clock ------------------------------------------------------------- */

START_TEST(test_clock_monotonic)
{
    int64_t start = fl_clock_now_ns();
    int64_t last = start;

    ck_assert_int_gt(start, 0);
    for (int i = 0; i < 100000; i++) {
        int64_t now = fl_clock_now_ns();
        ck_assert_int_ge(now, last);
        last = now;
    }
    ck_assert_int_ge(fl_clock_since_ns(start), last - start);
    /* The wall clock is past 2020-01-01T00:00:00Z. */
    ck_assert_int_gt(fl_clock_wall_ns(), INT64_C(1577836800) * FL_NSEC_PER_SEC);
}
END_TEST

START_TEST(test_clock_sleep_at_least_request)
{
    const int64_t requests[] = {1, 1000, FL_NSEC_PER_MSEC,
                                20 * FL_NSEC_PER_MSEC};

    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        int64_t start = fl_clock_now_ns();
        fl_clock_sleep_ns(requests[i]);
        int64_t slept = fl_clock_since_ns(start);
        ck_assert_msg(slept >= requests[i], "asked %lld ns, slept %lld ns",
                      (long long)requests[i], (long long)slept);
    }

    /* Non-positive requests return at once, checked with a loose 1 s. */
    int64_t start = fl_clock_now_ns();
    fl_clock_sleep_ns(0);
    fl_clock_sleep_ns(-FL_NSEC_PER_SEC);
    fl_clock_sleep_ns(INT64_MIN);
    ck_assert_int_lt(fl_clock_since_ns(start), FL_NSEC_PER_SEC);
}
END_TEST

/*
 * fl_clock_sec_to_ns saturates to INT64_MAX, so sleeping that long must
 * block instead of overflowing the wake-up time into the past.
 */
START_TEST(test_clock_sleep_max_blocks)
{
    pid_t child = fork();
    pid_t early;
    int status = 0;

    ck_assert_int_ge(child, 0);
    if (child == 0) {
        fl_clock_sleep_ns(INT64_MAX);
        _exit(0);
    }
    fl_clock_sleep_ns(300 * FL_NSEC_PER_MSEC);
    early = waitpid(child, &status, WNOHANG);
    /* Stop and reap the child before any assertion can end this test. */
    if (early == 0) {
        kill(child, SIGKILL);
        ck_assert_int_eq(waitpid(child, &status, 0), child);
    }
    ck_assert_msg(early == 0, "the sleep returned after 300 ms (status %d)",
                  status);
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(WTERMSIG(status), SIGKILL);
}
END_TEST

START_TEST(test_deadline_none_passed_future)
{
    struct fl_deadline d;

    fl_deadline_set(&d, 0);
    ck_assert_int_eq(d.at_ns, 0);
    ck_assert(!fl_deadline_passed(&d));
    fl_deadline_set(&d, -FL_NSEC_PER_SEC);
    ck_assert_int_eq(d.at_ns, 0);
    ck_assert(!fl_deadline_passed(&d));

    fl_deadline_set(&d, 1);
    fl_clock_sleep_ns(FL_NSEC_PER_MSEC);
    ck_assert(fl_deadline_passed(&d));

    fl_deadline_set(&d, 3600 * FL_NSEC_PER_SEC);
    ck_assert_int_gt(d.at_ns, fl_clock_now_ns());
    ck_assert(!fl_deadline_passed(&d));

    fl_deadline_set(&d, INT64_MAX);
    ck_assert_int_eq(d.at_ns, INT64_MAX);
    ck_assert(!fl_deadline_passed(&d));
}
END_TEST

START_TEST(test_clock_sec_to_ns_saturates)
{
    ck_assert_int_eq(fl_clock_sec_to_ns(0), 0);
    ck_assert_int_eq(fl_clock_sec_to_ns(-0.0), 0);
    ck_assert_int_eq(fl_clock_sec_to_ns(-1), 0);
    ck_assert_int_eq(fl_clock_sec_to_ns(-INFINITY), 0);
    ck_assert_int_eq(fl_clock_sec_to_ns(NAN), 0);
    ck_assert_int_eq(fl_clock_sec_to_ns(0.5), 500000000);
    ck_assert_int_eq(fl_clock_sec_to_ns(1.5), 1500000000);
    ck_assert_int_eq(fl_clock_sec_to_ns(2), 2 * FL_NSEC_PER_SEC);
    ck_assert_int_eq(fl_clock_sec_to_ns(86400), 86400 * FL_NSEC_PER_SEC);
    ck_assert_int_eq(fl_clock_sec_to_ns(9.2e9), INT64_MAX);
    ck_assert_int_eq(fl_clock_sec_to_ns(1e10), INT64_MAX);
    ck_assert_int_eq(fl_clock_sec_to_ns(1e300), INT64_MAX);
    ck_assert_int_eq(fl_clock_sec_to_ns(INFINITY), INT64_MAX);
    ck_assert_int_gt(fl_clock_sec_to_ns(9.1e9), INT64_C(9000000000000000000));
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

static Suite *common_suite(void)
{
    Suite *s = suite_create("common");
    TCase *t;

    t = tcase_create("crc32c");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_crc32c_rfc3720_vectors);
    tcase_add_test(t, test_crc32c_incremental_equals_oneshot);
    tcase_add_loop_test(t, test_crc32c_sw_hw_agree_random, 0, 16);
    suite_add_tcase(s, t);

    t = tcase_create("rng");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_rng_golden_seed_zero);
    tcase_add_test(t, test_rng_same_seed_same_sequence);
    tcase_add_test(t, test_rng_streams_differ);
    tcase_add_test(t, test_rng_below_range_and_uniformity);
    tcase_add_test(t, test_rng_range_inclusive_bounds);
    tcase_add_test(t, test_rng_double_unit_interval);
    tcase_add_test(t, test_rng_chance_extremes);
    suite_add_tcase(s, t);

    t = tcase_create("error");
    tcase_set_timeout(t, 10);
    tcase_add_test(t, test_strerror_codes);
    tcase_add_test(t, test_input_error_formats_and_truncates);
    suite_add_tcase(s, t);

    t = tcase_create("log");
    tcase_set_timeout(t, 10);
    tcase_add_test(t, test_log_parse_level);
    tcase_add_test(t, test_log_disabled_level_skips_arguments);
    tcase_add_test(t, test_log_quote_cases);
    tcase_add_test(t, test_log_line_has_logfmt_fields);
    suite_add_tcase(s, t);

    t = tcase_create("arena");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_arena_alignment_16);
    tcase_add_test(t, test_arena_large_and_reset);
    tcase_add_test(t, test_arena_budget_exhausted);
    tcase_add_test(t, test_arena_huge_request_fails);
    tcase_add_test(t, test_budget_charge_and_release);
    tcase_add_test(t, test_vec_reserve_growth_and_budget);
    suite_add_tcase(s, t);

    t = tcase_create("hash");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_map64_many_keys);
    tcase_add_test(t, test_map64_budget_exhausted);
    tcase_add_test(t, test_strtab_dense_stable_ids);
    tcase_add_test(t, test_strtab_strings_with_nul);
    tcase_add_test(t, test_hash_bytes_depends_on_every_byte);
    suite_add_tcase(s, t);

    t = tcase_create("json");
    tcase_set_timeout(t, 30);
    tcase_add_loop_test(
        t, test_json_round_trip, 0,
        (int)(sizeof(round_trip_docs) / sizeof(round_trip_docs[0])));
    tcase_add_test(t, test_json_int64_extremes);
    tcase_add_test(t, test_json_string_from_invalid_utf8);
    tcase_add_test(t, test_json_escapes_decode_utf8);
    tcase_add_loop_test(t, test_json_rejects_invalid, 0,
                        (int)(sizeof(json_rejects) / sizeof(json_rejects[0])));
    tcase_add_test(t, test_json_nesting_limit);
    tcase_add_test(t, test_json_every_prefix_clean);
    tcase_add_test(t, test_json_equal_hash_agree);
    tcase_add_test(t, test_json_copy_is_deep);
    tcase_add_test(t, test_json_copy_reports_budget);
    tcase_add_test(t, test_json_parse_stack_charged_to_budget);
    suite_add_tcase(s, t);

    t = tcase_create("history_reader");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_hist_reader_valid_with_index);
    tcase_add_test(t, test_hist_reader_crlf_blank_lines_no_final_newline);
    tcase_add_test(t, test_hist_reader_open_count_at_eof);
    tcase_add_loop_test(t, test_hist_reader_rejects_malformed, 0,
                        (int)(sizeof(hist_rejects) / sizeof(hist_rejects[0])));
    tcase_add_test(t, test_hist_reader_unknown_type_truncated);
    tcase_add_test(t, test_hist_reader_mem_line_too_long);
    tcase_add_test(t, test_hist_reader_open_missing_and_temp_file);
    tcase_add_test(t, test_hist_reader_file_long_lines);
    tcase_add_test(t, test_hist_reader_file_line_too_long);
    tcase_add_test(t, test_hist_reader_read_error_names_line);
    tcase_add_test(t, test_hist_reader_budget_exhausted);
    suite_add_tcase(s, t);

    t = tcase_create("history_writer");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_hist_writer_round_trip);
    tcase_add_test(t, test_hist_writer_assigns_index);
    tcase_add_test(t, test_hist_writer_rejects_invalid_event);
    tcase_add_test(t, test_hist_writer_open_file);
    tcase_add_test(t, test_hist_writer_concurrent_threads);
    suite_add_tcase(s, t);

    t = tcase_create("clock");
    tcase_set_timeout(t, 10);
    tcase_add_test(t, test_clock_monotonic);
    tcase_add_test(t, test_clock_sleep_at_least_request);
    tcase_add_test(t, test_clock_sleep_max_blocks);
    tcase_add_test(t, test_deadline_none_passed_future);
    tcase_add_test(t, test_clock_sec_to_ns_saturates);
    suite_add_tcase(s, t);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(common_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
