/*
 * libFuzzer harness for the history reader and the linearizability
 * checker's event intake. Any input must yield events or a clean error:
 * no crash, no sanitizer report, no leak. Small histories that parse are
 * also checked, under a short time limit, to reach the search code.
 */
#include "history.h"
#include "linear.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum chk_model models[] = {
        CHK_MODEL_REGISTER, CHK_MODEL_CAS_REGISTER, CHK_MODEL_KV};
    struct fl_budget budget;
    struct fl_hist_reader *r;
    struct chk_lin_history *h;
    struct chk_lin_options o;
    struct chk_lin_result res;
    struct fl_hist_event ev;
    char msg[256];
    bool usable = true;
    int rc;

    fl_budget_init(&budget, 64 << 20);
    chk_lin_options_default(&o);
    /* The first byte picks the model and options, so one corpus covers
     * them all; the rest is the history. */
    if (size == 0)
        return 0;
    o.model = models[data[0] % 3];
    o.read_null =
        (data[0] >> 2) & 1 ? CHK_READ_NULL_UNKNOWN : CHK_READ_NULL_VALUE;
    o.cas_fail = (data[0] >> 3) & 1 ? CHK_CAS_FAIL_COMPARE_FAILED
                                    : CHK_CAS_FAIL_NO_EFFECT;
    data++;
    size--;
    o.threads = 1;
    o.time_limit_s = 0.05;
    o.memory_limit_bytes = 64 << 20;
    if (fl_hist_reader_open_mem(&r, "fuzz", data, size, &budget) != 0)
        return 0;
    if (chk_lin_history_new(&h, &o) != 0) {
        fl_hist_reader_close(r);
        return 0;
    }
    while ((rc = fl_hist_reader_next(r, &ev)) == 1) {
        if (usable && chk_lin_history_add(h, &ev, msg, sizeof(msg)) != 0)
            usable = false;
    }
    if (rc == 0 && usable && chk_lin_op_count(h) <= 64)
        chk_lin_check(h, &res);
    chk_lin_history_free(h);
    fl_hist_reader_close(r);
    return 0;
}
