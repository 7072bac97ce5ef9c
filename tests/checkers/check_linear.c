/*
 * Tests for the linearizability checker: hand-built histories with known
 * verdicts for each model and option, the counterexample and budgets, a
 * differential test against a brute-force checker on thousands of small
 * random histories, and a property test on generated histories.
 */
#include "error.h"
#include "histgen.h"
#include "history.h"
#include "linear.h"
#include "rng.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

/*
 * Builds a JSON-lines history from compact lines "PROCESS TYPE F VALUE
 * [KEY]", where VALUE is JSON without spaces, and returns a malloc'd text.
 */
static char *jsonl(const char *const *lines)
{
    size_t cap = 4096;
    size_t len = 0;
    char *out = malloc(cap);

    for (int i = 0; lines[i] != NULL; i++) {
        char type[16];
        char f[16];
        char value[128];
        char key[32];
        int p;
        int n = sscanf(lines[i], "%d %15s %15s %127s %31s", &p, type, f, value,
                       key);
        ck_assert_msg(n >= 4, "bad test line \"%s\"", lines[i]);
        if (len + 512 > cap) {
            cap *= 2;
            out = realloc(out, cap);
        }
        len +=
            (size_t)snprintf(out + len, cap - len,
                             "{\"process\":%d,\"type\":\"%s\",\"f\":\"%s\","
                             "\"value\":%s,\"time\":%d%s%s%s}\n",
                             p, type, f, value, i, n == 5 ? ",\"key\":\"" : "",
                             n == 5 ? key : "", n == 5 ? "\"" : "");
    }
    out[len] = '\0';
    return out;
}

/* Checks a history given as compact lines; returns the verdict. */
static enum chk_verdict check_with(const struct chk_lin_options *o,
                                   const char *const *lines,
                                   struct chk_lin_history **keep,
                                   struct chk_lin_result *res_out)
{
    char *text = jsonl(lines);
    struct fl_hist_reader *r;
    struct chk_lin_history *h;
    struct fl_hist_event ev;
    struct chk_lin_result res;
    char msg[256];
    int rc;

    ck_assert_int_eq(
        fl_hist_reader_open_mem(&r, "test", text, strlen(text), NULL), 0);
    ck_assert_int_eq(chk_lin_history_new(&h, o), 0);
    while ((rc = fl_hist_reader_next(r, &ev)) == 1) {
        rc = chk_lin_history_add(h, &ev, msg, sizeof(msg));
        ck_assert_msg(rc == 0, "add failed: %s", msg);
    }
    ck_assert_msg(rc == 0, "reader: %s", fl_hist_reader_error(r));
    ck_assert_int_eq(chk_lin_check(h, &res), 0);
    fl_hist_reader_close(r);
    free(text);
    if (res_out != NULL)
        *res_out = res;
    if (keep != NULL)
        *keep = h;
    else
        chk_lin_history_free(h);
    return res.verdict;
}

static struct chk_lin_options opts(enum chk_model m)
{
    struct chk_lin_options o;
    chk_lin_options_default(&o);
    o.model = m;
    o.threads = 1;
    return o;
}

static enum chk_verdict check_reg(const char *const *lines)
{
    struct chk_lin_options o = opts(CHK_MODEL_CAS_REGISTER);
    return check_with(&o, lines, NULL, NULL);
}

/* ---- registers ----------------------------------------------------------- */

START_TEST(test_register_sequential_valid)
{
    const char *h[] = {
        "0 invoke write 1",   "0 ok write 1",     "1 invoke read null",
        "1 ok read 1",        "0 invoke write 2", "0 ok write 2",
        "1 invoke read null", "1 ok read 2",      NULL};
    ck_assert_int_eq(check_reg(h), CHK_VALID);
}
END_TEST

START_TEST(test_register_stale_read_invalid)
{
    const char *h[] = {"0 invoke write 1",
                       "0 ok write 1",
                       "0 invoke write 2",
                       "0 ok write 2",
                       "1 invoke read null",
                       "1 ok read 1",
                       NULL};
    ck_assert_int_eq(check_reg(h), CHK_INVALID);
}
END_TEST

START_TEST(test_register_read_never_written_invalid)
{
    const char *h[] = {"0 invoke write 1", "1 invoke read null", "0 ok write 1",
                       "1 ok read 7", NULL};
    ck_assert_int_eq(check_reg(h), CHK_INVALID);
}
END_TEST

START_TEST(test_register_concurrent_read_either_value)
{
    const char *old[] = {"0 invoke write 1",
                         "0 ok write 1",
                         "0 invoke write 2",
                         "1 invoke read null",
                         "1 ok read 1",
                         "0 ok write 2",
                         NULL};
    const char *fresh[] = {"0 invoke write 1",
                           "0 ok write 1",
                           "0 invoke write 2",
                           "1 invoke read null",
                           "1 ok read 2",
                           "0 ok write 2",
                           NULL};
    ck_assert_int_eq(check_reg(old), CHK_VALID);
    ck_assert_int_eq(check_reg(fresh), CHK_VALID);
}
END_TEST

START_TEST(test_register_initial_null_read)
{
    const char *h[] = {"1 invoke read null", "1 ok read null",
                       "0 invoke write 1", "0 ok write 1", NULL};
    const char *late[] = {"0 invoke write 1", "0 ok write 1",
                          "1 invoke read null", "1 ok read null", NULL};
    ck_assert_int_eq(check_reg(h), CHK_VALID);
    ck_assert_int_eq(check_reg(late), CHK_INVALID);
}
END_TEST

START_TEST(test_register_init_option)
{
    const char *h[] = {"1 invoke read null", "1 ok read 0", NULL};
    struct chk_lin_options o = opts(CHK_MODEL_REGISTER);

    ck_assert_int_eq(check_with(&o, h, NULL, NULL), CHK_INVALID);
    o.has_init = true;
    o.init.kind = FL_JSON_INT;
    o.init.u.i = 0;
    ck_assert_int_eq(check_with(&o, h, NULL, NULL), CHK_VALID);
}
END_TEST

START_TEST(test_register_read_null_unknown)
{
    /* Under "value" the null read observes the empty register after a
     * write. Under "unknown" it was simply not recorded. */
    const char *h[] = {"0 invoke write 1", "0 ok write 1", "1 invoke read null",
                       "1 ok read null", NULL};
    struct chk_lin_options o = opts(CHK_MODEL_REGISTER);

    ck_assert_int_eq(check_with(&o, h, NULL, NULL), CHK_INVALID);
    o.read_null = CHK_READ_NULL_UNKNOWN;
    ck_assert_int_eq(check_with(&o, h, NULL, NULL), CHK_VALID);
}
END_TEST

START_TEST(test_register_info_write_may_apply_late)
{
    /* The info write can take effect after its own completion line. */
    const char *h[] = {
        "0 invoke write 1",   "0 ok write 1",       "1 invoke write 2",
        "1 info write 2",     "2 invoke read null", "2 ok read 1",
        "3 invoke read null", "3 ok read 2",        NULL};
    ck_assert_int_eq(check_reg(h), CHK_VALID);
}
END_TEST

START_TEST(test_register_info_write_once)
{
    /* One info write cannot explain two separate appearances of 2. */
    const char *h[] = {
        "1 invoke write 2",   "1 info write 2",   "2 invoke read null",
        "2 ok read 2",        "0 invoke write 1", "0 ok write 1",
        "3 invoke read null", "3 ok read 2",      NULL};
    ck_assert_int_eq(check_reg(h), CHK_INVALID);
}
END_TEST

START_TEST(test_register_info_not_before_invoke)
{
    const char *h[] = {"2 invoke read null", "2 ok read 2", "1 invoke write 2",
                       "1 info write 2", NULL};
    ck_assert_int_eq(check_reg(h), CHK_INVALID);
}
END_TEST

START_TEST(test_register_open_invocation_is_info)
{
    const char *h[] = {"1 invoke write 2", "2 invoke read null", "2 ok read 2",
                       NULL};
    ck_assert_int_eq(check_reg(h), CHK_VALID);
}
END_TEST

START_TEST(test_register_failed_write_ignored)
{
    const char *h[] = {"0 invoke write 1",
                       "0 ok write 1",
                       "1 invoke write 2",
                       "1 fail write 2",
                       "2 invoke read null",
                       "2 ok read 2",
                       NULL};
    ck_assert_int_eq(check_reg(h), CHK_INVALID);
}
END_TEST

START_TEST(test_register_cas_success_and_chain)
{
    const char *ok[] = {"0 invoke write 1",
                        "0 ok write 1",
                        "1 invoke cas [1,2]",
                        "1 ok cas [1,2]",
                        "2 invoke read null",
                        "2 ok read 2",
                        NULL};
    const char *bad[] = {"0 invoke write 1", "0 ok write 1",
                         "1 invoke cas [3,2]", "1 ok cas [3,2]", NULL};
    ck_assert_int_eq(check_reg(ok), CHK_VALID);
    ck_assert_int_eq(check_reg(bad), CHK_INVALID);
}
END_TEST

START_TEST(test_register_concurrent_cas_one_wins)
{
    const char *h[] = {"0 invoke write 0",
                       "0 ok write 0",
                       "1 invoke cas [0,1]",
                       "2 invoke cas [0,2]",
                       "1 ok cas [0,1]",
                       "2 ok cas [0,2]",
                       NULL};
    const char *one[] = {
        "0 invoke write 0",   "0 ok write 0",   "1 invoke cas [0,1]",
        "2 invoke cas [0,2]", "1 ok cas [0,1]", "2 fail cas [0,2]",
        "3 invoke read null", "3 ok read 1",    NULL};
    ck_assert_int_eq(check_reg(h), CHK_INVALID);
    ck_assert_int_eq(check_reg(one), CHK_VALID);
}
END_TEST

START_TEST(test_register_cas_fail_semantics)
{
    /* The failed cas expected 1 while the register certainly held 1: it
     * cannot have compared and failed, but it may not have run at all. */
    const char *h[] = {"0 invoke write 1", "0 ok write 1", "1 invoke cas [1,2]",
                       "1 fail cas [1,2]", NULL};
    struct chk_lin_options o = opts(CHK_MODEL_CAS_REGISTER);

    ck_assert_int_eq(check_with(&o, h, NULL, NULL), CHK_VALID);
    o.cas_fail = CHK_CAS_FAIL_COMPARE_FAILED;
    ck_assert_int_eq(check_with(&o, h, NULL, NULL), CHK_INVALID);
}
END_TEST

START_TEST(test_register_model_rejects_cas)
{
    const char *text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"cas\","
                       "\"value\":[1,2],\"time\":0}\n";
    struct chk_lin_options o = opts(CHK_MODEL_REGISTER);
    struct fl_hist_reader *r;
    struct chk_lin_history *h;
    struct fl_hist_event ev;
    char msg[256];

    ck_assert_int_eq(fl_hist_reader_open_mem(&r, "t", text, strlen(text), NULL),
                     0);
    ck_assert_int_eq(chk_lin_history_new(&h, &o), 0);
    ck_assert_int_eq(fl_hist_reader_next(r, &ev), 1);
    ck_assert_int_eq(chk_lin_history_add(h, &ev, msg, sizeof(msg)), FL_EINPUT);
    ck_assert_ptr_nonnull(strstr(msg, "not an operation of the register"));
    chk_lin_history_free(h);
    fl_hist_reader_close(r);
}
END_TEST

/* ---- kv and keys --------------------------------------------------------- */

START_TEST(test_kv_append_order)
{
    const char *ok[] = {"0 invoke append \"a\" k",
                        "1 invoke append \"b\" k",
                        "0 ok append \"a\" k",
                        "1 ok append \"b\" k",
                        "2 invoke get null k",
                        "2 ok get \"ba\" k",
                        NULL};
    const char *bad[] = {"0 invoke append \"a\" k",
                         "0 ok append \"a\" k",
                         "1 invoke append \"b\" k",
                         "1 ok append \"b\" k",
                         "2 invoke get null k",
                         "2 ok get \"ba\" k",
                         NULL};
    struct chk_lin_options o = opts(CHK_MODEL_KV);

    ck_assert_int_eq(check_with(&o, ok, NULL, NULL), CHK_VALID);
    ck_assert_int_eq(check_with(&o, bad, NULL, NULL), CHK_INVALID);
}
END_TEST

START_TEST(test_kv_put_resets)
{
    const char *h[] = {"0 invoke append \"a\" k",
                       "0 ok append \"a\" k",
                       "0 invoke put \"x\" k",
                       "0 ok put \"x\" k",
                       "0 invoke append \"b\" k",
                       "0 ok append \"b\" k",
                       "1 invoke get null k",
                       "1 ok get \"xb\" k",
                       NULL};
    struct chk_lin_options o = opts(CHK_MODEL_KV);
    ck_assert_int_eq(check_with(&o, h, NULL, NULL), CHK_VALID);
}
END_TEST

START_TEST(test_keys_checked_independently)
{
    /* Each key alone is linearizable; a single register could not be. */
    const char *h[] = {
        "0 invoke write 1 a",   "0 ok write 1 a",       "1 invoke write 2 b",
        "1 ok write 2 b",       "2 invoke read null a", "2 ok read 1 a",
        "3 invoke read null b", "3 ok read 2 b",        NULL};
    const char *bad[] = {"0 invoke write 1 a",
                         "0 ok write 1 a",
                         "1 invoke write 2 b",
                         "1 ok write 2 b",
                         "2 invoke read null a",
                         "2 ok read 2 a",
                         NULL};
    ck_assert_int_eq(check_reg(h), CHK_VALID);
    ck_assert_int_eq(check_reg(bad), CHK_INVALID);
}
END_TEST

START_TEST(test_mixed_keyed_and_unkeyed_rejected)
{
    const char *text =
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1,"
        "\"time\":0,\"key\":\"a\"}\n"
        "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1,"
        "\"time\":1,\"key\":\"a\"}\n"
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null,"
        "\"time\":2}\n";
    struct chk_lin_options o = opts(CHK_MODEL_REGISTER);
    struct fl_hist_reader *r;
    struct chk_lin_history *h;
    struct fl_hist_event ev;
    char msg[256];
    int rc = 0;

    ck_assert_int_eq(fl_hist_reader_open_mem(&r, "t", text, strlen(text), NULL),
                     0);
    ck_assert_int_eq(chk_lin_history_new(&h, &o), 0);
    while (fl_hist_reader_next(r, &ev) == 1 &&
           (rc = chk_lin_history_add(h, &ev, msg, sizeof(msg))) == 0)
        ;
    ck_assert_int_eq(rc, FL_EINPUT);
    ck_assert_ptr_nonnull(strstr(msg, "either every operation has a key"));
    chk_lin_history_free(h);
    fl_hist_reader_close(r);
}
END_TEST

/* ---- results ------------------------------------------------------------- */

START_TEST(test_counterexample_content)
{
    const char *h[] = {
        "0 invoke write 1", "0 ok write 1",     "0 invoke write 2",
        "0 ok write 2",     "1 invoke write 3", "2 invoke read null",
        "2 ok read 1",      "1 ok write 3",     NULL};
    struct chk_lin_options o = opts(CHK_MODEL_REGISTER);
    struct chk_lin_history *hist;
    struct chk_lin_result res;
    struct fl_buf b;

    ck_assert_int_eq(check_with(&o, h, &hist, &res), CHK_INVALID);
    ck_assert_uint_eq(res.bad_len, 1);
    const struct chk_lin_key_result *kr = &res.bad[0];
    const struct chk_lin_op *failed = chk_lin_op_get(hist, kr->failed_op);
    ck_assert_str_eq(chk_lin_op_f(failed), "read");
    ck_assert_int_eq(failed->process, 2);
    ck_assert_uint_eq(failed->invoke_line, 6);
    ck_assert_uint_eq(failed->complete_line, 7);
    /* Both writes precede the read; the write of 3 is concurrent. */
    ck_assert_uint_ge(kr->prefix_len, 2);
    ck_assert_uint_eq(kr->concurrent_len, 1);
    ck_assert_int_eq(chk_lin_op_get(hist, kr->concurrent[0])->process, 1);
    ck_assert_uint_ge(kr->states_len, 1);
    for (size_t i = 0; i < kr->states_len; i++)
        ck_assert_str_ne(kr->states[i], "1");

    fl_buf_init(&b);
    chk_lin_result_json(hist, &res, &b);
    ck_assert_ptr_nonnull(strstr(b.data, "\"verdict\":\"not-linearizable\""));
    ck_assert_ptr_nonnull(strstr(b.data, "\"invoke_line\":6"));
    fl_buf_clear(&b);
    chk_lin_result_text(hist, &res, &b);
    ck_assert_ptr_nonnull(
        strstr(b.data, "operation that cannot be linearized"));
    ck_assert_ptr_nonnull(strstr(b.data, "process 2 read -> 1 (lines 6-7)"));
    fl_buf_free(&b);
    chk_lin_history_free(hist);
}
END_TEST

/*
 * A history whose refutation needs a huge search: 40 rounds of 24
 * concurrent writes of distinct values, then a read of a value from the
 * first round, which no order of the last round can leave in place.
 */
static struct chk_lin_history *hard_history(const struct chk_lin_options *o)
{
    struct chk_lin_history *h;
    struct fl_hist_event ev;
    char msg[256];
    int64_t t = 0;

    ck_assert_int_eq(chk_lin_history_new(&h, o), 0);
    memset(&ev, 0, sizeof(ev));
    ev.index = -1;
    ev.f = fl_str_of("write");
    ev.has_value = true;
    ev.value.kind = FL_JSON_INT;
    for (int round = 0; round < 40; round++) {
        for (int k = 0; k < 48; k++) {
            ev.process = k % 24;
            ev.type = k < 24 ? FL_HIST_INVOKE : FL_HIST_OK;
            ev.value.u.i = round * 100 + k % 24;
            ev.time = t++;
            ck_assert_int_eq(chk_lin_history_add(h, &ev, msg, sizeof(msg)), 0);
        }
    }
    ev.process = 100;
    ev.f = fl_str_of("read");
    ev.type = FL_HIST_INVOKE;
    ev.value.kind = FL_JSON_NULL;
    ev.time = t++;
    ck_assert_int_eq(chk_lin_history_add(h, &ev, msg, sizeof(msg)), 0);
    ev.type = FL_HIST_OK;
    ev.value.kind = FL_JSON_INT;
    ev.value.u.i = 0;
    ev.time = t++;
    ck_assert_int_eq(chk_lin_history_add(h, &ev, msg, sizeof(msg)), 0);
    return h;
}

START_TEST(test_time_limit_gives_unknown)
{
    struct chk_lin_options o = opts(CHK_MODEL_REGISTER);
    struct chk_lin_history *h;
    struct chk_lin_result res;

    o.time_limit_s = 0.2;
    h = hard_history(&o);
    ck_assert_int_eq(chk_lin_check(h, &res), 0);
    ck_assert_int_eq(res.verdict, CHK_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(res.reason, "time limit"));
    chk_lin_history_free(h);
}
END_TEST

START_TEST(test_memory_limit_gives_unknown)
{
    struct chk_lin_options o = opts(CHK_MODEL_REGISTER);
    struct chk_lin_history *h;
    struct chk_lin_result res;

    o.memory_limit_bytes = 8 << 20;
    o.time_limit_s = 60;
    h = hard_history(&o);
    ck_assert_int_eq(chk_lin_check(h, &res), 0);
    ck_assert_int_eq(res.verdict, CHK_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(res.reason, "memory limit"));
    chk_lin_history_free(h);
}
END_TEST

/*
 * Regression: one key of a generated 1M-operation history. The relaxed
 * search used to try long-pending info operations first, produced a witness
 * that reused a unique info write, and the exact search that followed ran
 * past any time limit.
 */
START_TEST(test_info_reuse_witness_regression)
{
    struct chk_lin_options o = opts(CHK_MODEL_CAS_REGISTER);
    struct fl_hist_reader *r;
    struct chk_lin_history *h;
    struct fl_hist_event ev;
    struct chk_lin_result res;
    char msg[256];
    int rc;

    o.time_limit_s = 10;
    ck_assert_int_eq(
        fl_hist_reader_open(&r, FL_TEST_DATA_DIR "/info-reuse-witness.jsonl",
                            NULL),
        0);
    ck_assert_int_eq(chk_lin_history_new(&h, &o), 0);
    while ((rc = fl_hist_reader_next(r, &ev)) == 1)
        ck_assert_int_eq(chk_lin_history_add(h, &ev, msg, sizeof(msg)), 0);
    ck_assert_msg(rc == 0, "%s", fl_hist_reader_error(r));
    ck_assert_int_eq(chk_lin_check(h, &res), 0);
    ck_assert_str_eq(chk_verdict_name(res.verdict), "linearizable");
    chk_lin_history_free(h);
    fl_hist_reader_close(r);
}
END_TEST

START_TEST(test_empty_history_valid)
{
    const char *h[] = {NULL};
    ck_assert_int_eq(check_reg(h), CHK_VALID);
}
END_TEST

/* ---- differential test against a brute-force checker --------------------- */

/*
 * The reference checker uses none of the search's reductions: it tries
 * every order of the operations that respects real time, with info
 * operations optional, on histories of at most RAND_OPS operations.
 */
#define RAND_OPS  9
#define RAND_KEYS 2

enum ref_f { R_READ, R_WRITE, R_CAS, R_GET, R_PUT, R_APPEND };

struct ref_op {
    int f;
    int key;
    int arg; /* register values: -1 is null; kv: index into tokens */
    int arg2;
    int out; /* read result; kv: index into results */
    enum fl_hist_type outcome;
    int call; /* event positions */
    int ret;  /* INT32_MAX when info or never completed */
};

static const char *const f_names[] = {"read", "write", "cas",
                                      "get",  "put",   "append"};
static const char *const tokens[] = {"a", "b"};
static const char *const results[] = {"", "a", "b", "ab", "ba", "aa"};

struct ref {
    struct ref_op ops[RAND_OPS];
    int n;
    bool kv;
    enum chk_read_null read_null;
    enum chk_cas_fail cas_fail;
};

static bool ref_required(const struct ref *r, const struct ref_op *op)
{
    if (op->outcome == FL_HIST_OK)
        return true;
    return op->outcome == FL_HIST_FAIL && op->f == R_CAS &&
           r->cas_fail == CHK_CAS_FAIL_COMPARE_FAILED;
}

static bool ref_optional(const struct ref_op *op)
{
    return op->outcome == FL_HIST_INFO;
}

struct ref_state {
    int reg[RAND_KEYS];
    char kv[RAND_KEYS][16];
};

/* Applies op to st; returns false when it is illegal there. */
static bool ref_apply(const struct ref *r, const struct ref_op *op,
                      struct ref_state *st)
{
    int k = op->key;

    switch (op->f) {
    case R_READ:
        if (op->outcome != FL_HIST_OK)
            return true;
        if (op->out == -1 && r->read_null == CHK_READ_NULL_UNKNOWN)
            return true;
        return st->reg[k] == op->out;
    case R_WRITE:
        st->reg[k] = op->arg;
        return true;
    case R_CAS:
        if (op->outcome == FL_HIST_FAIL)
            return st->reg[k] != op->arg;
        if (st->reg[k] != op->arg)
            return false;
        st->reg[k] = op->arg2;
        return true;
    case R_GET:
        if (op->outcome != FL_HIST_OK)
            return true;
        return strcmp(st->kv[k], results[op->out]) == 0;
    case R_PUT:
        snprintf(st->kv[k], sizeof(st->kv[k]), "%s", tokens[op->arg]);
        return true;
    case R_APPEND:
        if (strlen(st->kv[k]) + 2 > sizeof(st->kv[k]))
            return false;
        strcat(st->kv[k], tokens[op->arg]);
        return true;
    }
    return false;
}

static bool ref_search(const struct ref *r, unsigned done, struct ref_state st)
{
    bool all = true;

    for (int i = 0; i < r->n; i++) {
        if (ref_required(r, &r->ops[i]) && !(done & (1u << i)))
            all = false;
    }
    if (all)
        return true;
    for (int i = 0; i < r->n; i++) {
        const struct ref_op *op = &r->ops[i];
        bool ready = true;
        if (done & (1u << i))
            continue;
        if (!ref_required(r, op) && !ref_optional(op))
            continue;
        /* Every required operation that returned before op was invoked
         * must already be placed. */
        for (int j = 0; j < r->n; j++) {
            if (j != i && !(done & (1u << j)) && ref_required(r, &r->ops[j]) &&
                r->ops[j].ret < op->call)
                ready = false;
        }
        if (!ready)
            continue;
        struct ref_state next = st;
        if (ref_apply(r, op, &next) && ref_search(r, done | (1u << i), next))
            return true;
    }
    return false;
}

static void put_value(char *buf, size_t size, const struct ref *r, int f,
                      int arg, int arg2)
{
    if (f == R_CAS)
        snprintf(buf, size, "[%d,%d]", arg, arg2);
    else if (f == R_PUT || f == R_APPEND)
        snprintf(buf, size, "\"%s\"", tokens[arg]);
    else if (r->kv)
        snprintf(buf, size, "\"%s\"", results[arg]);
    else if (arg == -1)
        snprintf(buf, size, "null");
    else
        snprintf(buf, size, "%d", arg);
}

/* Builds a random history, its events and its reference verdict. */
static enum chk_verdict random_case(uint64_t seed, bool kv,
                                    enum chk_read_null read_null,
                                    enum chk_cas_fail cas_fail,
                                    struct chk_lin_history *h, char *desc,
                                    size_t desc_size)
{
    struct fl_rng rng;
    struct ref r = {.kv = kv, .read_null = read_null, .cas_fail = cas_fail};
    int busy[4] = {-1, -1, -1, -1};
    int procid[4] = {0, 1, 2, 3};
    int next_proc = 4;
    int invoked = 0;
    int pos = 0;
    size_t dlen = 0;
    char msg[256];

    fl_rng_seed(&rng, seed);
    r.n = 2 + (int)fl_rng_below(&rng, RAND_OPS - 1);
    desc[0] = '\0';
    while (invoked < r.n || busy[0] >= 0 || busy[1] >= 0 || busy[2] >= 0) {
        int p = (int)fl_rng_below(&rng, 3);
        struct fl_hist_event ev;
        char value[32];
        char keyname[4];

        memset(&ev, 0, sizeof(ev));
        ev.index = -1;
        ev.time = pos;
        ev.has_value = true;
        if (busy[p] < 0) {
            if (invoked >= r.n)
                continue;
            struct ref_op *op = &r.ops[invoked];
            op->key = (int)fl_rng_below(&rng, RAND_KEYS);
            if (kv) {
                int pick = (int)fl_rng_below(&rng, 3);
                if (pick == 0)
                    op->f = R_GET;
                else if (pick == 1)
                    op->f = R_APPEND;
                else
                    op->f = R_PUT;
            } else {
                op->f = (int)fl_rng_below(&rng, 3);
            }
            op->arg = kv ? (int)fl_rng_below(&rng, 2)
                         : (int)fl_rng_below(&rng, 3) - 1;
            op->arg2 = (int)fl_rng_below(&rng, 3) - 1;
            if (op->f == R_CAS && op->arg < 0)
                op->arg = 0;
            if (op->f == R_CAS && op->arg2 < 0)
                op->arg2 = 1;
            op->call = pos;
            op->ret = INT32_MAX;
            op->outcome = FL_HIST_INFO;
            busy[p] = invoked++;
            ev.type = FL_HIST_INVOKE;
        } else {
            struct ref_op *op = &r.ops[busy[p]];
            uint64_t roll = fl_rng_below(&rng, 100);
            if (roll < 8 && invoked >= r.n) {
                busy[p] = -1; /* leave it open: never completes */
                continue;
            }
            op->outcome = roll < 72   ? FL_HIST_OK
                          : roll < 86 ? FL_HIST_FAIL
                                      : FL_HIST_INFO;
            if (op->outcome != FL_HIST_INFO)
                op->ret = pos;
            if (op->f == R_READ || op->f == R_GET)
                op->out = kv ? (int)fl_rng_below(&rng, 6)
                             : (int)fl_rng_below(&rng, 3) - 1;
            ev.type = op->outcome;
        }
        struct ref_op *op = &r.ops[busy[p]];
        ev.process = procid[p];
        ev.f = fl_str_of(f_names[op->f]);
        snprintf(keyname, sizeof(keyname), "k%d", op->key);
        ev.key = fl_str_of(keyname);
        if ((op->f == R_READ || op->f == R_GET) && !(ev.type == FL_HIST_OK)) {
            ev.value.kind = FL_JSON_NULL;
            snprintf(value, sizeof(value), "null");
        } else {
            const char *text;
            put_value(value, sizeof(value), &r, op->f,
                      (op->f == R_READ || op->f == R_GET) ? op->out : op->arg,
                      op->arg2);
            /* Parse the value text through the JSON parser. */
            struct fl_arena a;
            fl_arena_init(&a, 256, NULL);
            ck_assert_int_eq(
                fl_json_parse(&a, value, strlen(value), &ev.value, &text, NULL),
                0);
            ev.line = (uint64_t)pos + 1;
            ck_assert_msg(chk_lin_history_add(h, &ev, msg, sizeof(msg)) == 0,
                          "seed %llu: %s", (unsigned long long)seed, msg);
            fl_arena_destroy(&a);
            goto added;
        }
        ev.line = (uint64_t)pos + 1;
        ck_assert_msg(chk_lin_history_add(h, &ev, msg, sizeof(msg)) == 0,
                      "seed %llu: %s", (unsigned long long)seed, msg);
    added:
        if (dlen < desc_size)
            dlen += (size_t)snprintf(
                desc + dlen, desc_size - dlen, "  %lld %s %.*s %s %s\n",
                (long long)ev.process, fl_hist_type_name(ev.type),
                (int)ev.f.len, ev.f.ptr, value, keyname);
        if (ev.type != FL_HIST_INVOKE) {
            if (ev.type == FL_HIST_INFO)
                procid[p] = next_proc++;
            busy[p] = -1;
        }
        pos++;
    }
    struct ref_state st;
    memset(&st, 0, sizeof(st));
    for (int k = 0; k < RAND_KEYS; k++)
        st.reg[k] = -1;
    return ref_search(&r, 0, st) ? CHK_VALID : CHK_INVALID;
}

static void differential(bool kv, enum chk_read_null rn, enum chk_cas_fail cf,
                         int seeds, uint64_t salt)
{
    int verdicts[2] = {0, 0};

    for (int i = 0; i < seeds; i++) {
        uint64_t seed = salt * 1000003u + (uint64_t)i;
        struct chk_lin_options o =
            opts(kv ? CHK_MODEL_KV : CHK_MODEL_CAS_REGISTER);
        struct chk_lin_history *h;
        struct chk_lin_result res;
        char desc[4096];
        enum chk_verdict want;

        o.read_null = rn;
        o.cas_fail = cf;
        ck_assert_int_eq(chk_lin_history_new(&h, &o), 0);
        want = random_case(seed, kv, rn, cf, h, desc, sizeof(desc));
        ck_assert_int_eq(chk_lin_check(h, &res), 0);
        ck_assert_msg(res.verdict == want,
                      "seed %llu (%s, read_null %d, cas_fail %d): checker "
                      "says %s, brute force says %s for\n%s",
                      (unsigned long long)seed, kv ? "kv" : "cas-register", rn,
                      cf, chk_verdict_name(res.verdict), chk_verdict_name(want),
                      desc);
        verdicts[want == CHK_VALID]++;
        chk_lin_history_free(h);
    }
    /* The generator must produce both verdicts, or the test proves little. */
    ck_assert_int_gt(verdicts[0], seeds / 20);
    ck_assert_int_gt(verdicts[1], seeds / 20);
}

START_TEST(test_differential_register)
{
    differential(false, CHK_READ_NULL_VALUE, CHK_CAS_FAIL_NO_EFFECT, 5000, 1);
}
END_TEST

START_TEST(test_differential_register_compare_failed)
{
    differential(false, CHK_READ_NULL_VALUE, CHK_CAS_FAIL_COMPARE_FAILED, 5000,
                 2);
}
END_TEST

START_TEST(test_differential_register_null_unknown)
{
    differential(false, CHK_READ_NULL_UNKNOWN, CHK_CAS_FAIL_NO_EFFECT, 5000, 3);
}
END_TEST

START_TEST(test_differential_kv)
{
    differential(true, CHK_READ_NULL_VALUE, CHK_CAS_FAIL_NO_EFFECT, 5000, 4);
}
END_TEST

/* ---- property test on generated histories -------------------------------- */

struct gen_sink {
    struct chk_lin_history *h;
    char msg[256];
};

static int feed(void *ctx, const struct fl_hist_event *ev)
{
    struct gen_sink *sink = ctx;
    return chk_lin_history_add(sink->h, ev, sink->msg, sizeof(sink->msg));
}

static enum chk_verdict check_generated(struct wl_gen_options *g,
                                        enum chk_model model,
                                        enum chk_cas_fail cas_fail)
{
    struct chk_lin_options o = opts(model);
    struct gen_sink sink;
    struct chk_lin_result res;
    int rc;

    o.cas_fail = cas_fail;
    o.time_limit_s = 60;
    ck_assert_int_eq(chk_lin_history_new(&sink.h, &o), 0);
    rc = wl_gen_history(g, feed, &sink);
    ck_assert_msg(rc == 0, "seed %llu: generation failed (%d): %s",
                  (unsigned long long)g->seed, rc, sink.msg);
    ck_assert_int_eq(chk_lin_check(sink.h, &res), 0);
    chk_lin_history_free(sink.h);
    return res.verdict;
}

/*
 * Regressions for shapes that used to explode: 30 kv operations from 20
 * clients on one key (every order of concurrent appends was a new state),
 * and 5000 register operations from 50 clients with 5% crashed (the exact
 * search ran for tens of millions of steps). The limit only keeps a
 * regression from hanging the suite; the assertion is on the verdict.
 */
START_TEST(test_generated_high_concurrency_regressions)
{
    struct wl_gen_options g;

    wl_gen_options_default(&g);
    g.model = WL_GEN_KV;
    g.ops = 30;
    g.processes = 20;
    g.seed = 1;
    ck_assert_str_eq(chk_verdict_name(check_generated(&g, CHK_MODEL_KV,
                                                      CHK_CAS_FAIL_NO_EFFECT)),
                     "linearizable");
    wl_gen_options_default(&g);
    g.ops = 5000;
    g.processes = 50;
    g.crash_rate = 0.05;
    g.seed = 1;
    ck_assert_str_eq(chk_verdict_name(check_generated(
                         &g, CHK_MODEL_CAS_REGISTER, CHK_CAS_FAIL_NO_EFFECT)),
                     "linearizable");
    g.corrupt = true;
    ck_assert_str_eq(chk_verdict_name(check_generated(
                         &g, CHK_MODEL_CAS_REGISTER, CHK_CAS_FAIL_NO_EFFECT)),
                     "not-linearizable");
}
END_TEST

static const enum chk_model gen_models[] = {
    CHK_MODEL_REGISTER, CHK_MODEL_CAS_REGISTER, CHK_MODEL_KV};
static const enum wl_gen_model gen_kinds[] = {WL_GEN_REGISTER,
                                              WL_GEN_CAS_REGISTER, WL_GEN_KV};

START_TEST(test_generated_valid_and_corrupted)
{
    /* _i is the loop index: a seed; every model and crash rate per seed. */
    for (int m = 0; m < 3; m++) {
        struct wl_gen_options g;
        wl_gen_options_default(&g);
        g.model = gen_kinds[m];
        g.seed = (uint64_t)_i;
        g.ops = 200 + (size_t)(_i % 7) * 100;
        g.processes = 2 + (size_t)(_i % 9);
        g.keys = 1 + (size_t)(_i % 3);
        g.crash_rate = (_i % 4) * 0.03;
        for (int cf = 0; cf < 2; cf++) {
            enum chk_cas_fail mode =
                cf ? CHK_CAS_FAIL_COMPARE_FAILED : CHK_CAS_FAIL_NO_EFFECT;
            enum chk_verdict v;
            g.corrupt = false;
            v = check_generated(&g, gen_models[m], mode);
            ck_assert_msg(v == CHK_VALID,
                          "seed %d model %d cas_fail %d: generated history "
                          "judged %s",
                          _i, m, cf, chk_verdict_name(v));
            g.corrupt = true;
            v = check_generated(&g, gen_models[m], mode);
            ck_assert_msg(v == CHK_INVALID,
                          "seed %d model %d cas_fail %d: corrupted history "
                          "judged %s",
                          _i, m, cf, chk_verdict_name(v));
        }
    }
}
END_TEST

static Suite *linear_suite(void)
{
    Suite *s = suite_create("linear");
    TCase *t = tcase_create("register");

    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_register_sequential_valid);
    tcase_add_test(t, test_register_stale_read_invalid);
    tcase_add_test(t, test_register_read_never_written_invalid);
    tcase_add_test(t, test_register_concurrent_read_either_value);
    tcase_add_test(t, test_register_initial_null_read);
    tcase_add_test(t, test_register_init_option);
    tcase_add_test(t, test_register_read_null_unknown);
    tcase_add_test(t, test_register_info_write_may_apply_late);
    tcase_add_test(t, test_register_info_write_once);
    tcase_add_test(t, test_register_info_not_before_invoke);
    tcase_add_test(t, test_register_open_invocation_is_info);
    tcase_add_test(t, test_register_failed_write_ignored);
    tcase_add_test(t, test_register_cas_success_and_chain);
    tcase_add_test(t, test_register_concurrent_cas_one_wins);
    tcase_add_test(t, test_register_cas_fail_semantics);
    tcase_add_test(t, test_register_model_rejects_cas);
    tcase_add_test(t, test_empty_history_valid);
    suite_add_tcase(s, t);

    t = tcase_create("kv");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_kv_append_order);
    tcase_add_test(t, test_kv_put_resets);
    tcase_add_test(t, test_keys_checked_independently);
    tcase_add_test(t, test_mixed_keyed_and_unkeyed_rejected);
    suite_add_tcase(s, t);

    t = tcase_create("results");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_counterexample_content);
    tcase_add_test(t, test_time_limit_gives_unknown);
    tcase_add_test(t, test_memory_limit_gives_unknown);
    tcase_add_test(t, test_info_reuse_witness_regression);
    suite_add_tcase(s, t);

    t = tcase_create("differential");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_differential_register);
    tcase_add_test(t, test_differential_register_compare_failed);
    tcase_add_test(t, test_differential_register_null_unknown);
    tcase_add_test(t, test_differential_kv);
    suite_add_tcase(s, t);

    t = tcase_create("generated");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, test_generated_valid_and_corrupted, 0, 40);
    tcase_add_test(t, test_generated_high_concurrency_regressions);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(linear_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
