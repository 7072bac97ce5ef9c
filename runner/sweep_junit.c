/*
 * The JUnit XML file of a sweep: one testsuite per campaign and one
 * testcase per campaign and seed (classname the campaign, name "seed-N").
 * A planted-bug campaign gets one more testcase, "detection", which fails
 * when no seed with a verdict found the bug. Its seeds pass whatever their
 * verdict, because one seed that misses a planted bug is no failure.
 *
 *   <failure>  a verdict the campaign does not expect: invalid where valid
 *              was expected, or a planted bug that no seed found
 *   <error>    a run that failed to run (exit 2 or 4, or killed)
 *   <skipped>  an unknown verdict, a run stopped by a signal, or one never
 *              started because the budget was spent or the sweep stopped
 *
 * Text goes through xml_escape, which also replaces bytes that are not
 * UTF-8 and characters XML 1.0 forbids, because run logs can hold any
 * byte.
 */
#include "outfile.h"
#include "sweep.h"

#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The length of the UTF-8 sequence at p (at most n bytes), or 0 when it is
 * malformed, overlong, a surrogate, above U+10FFFF or not allowed in XML
 * 1.0 (controls other than tab, newline and return, U+FFFE and U+FFFF). */
static size_t xml_char_len(const unsigned char *p, size_t n)
{
    unsigned cp;
    size_t len;

    if (p[0] < 0x80)
        return p[0] >= 0x20 || p[0] == '\t' || p[0] == '\n' || p[0] == '\r';
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        len = 2;
        cp = p[0] & 0x1Fu;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        len = 3;
        cp = p[0] & 0x0Fu;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE ||
        cp == 0xFFFF)
        return 0;
    return len;
}

/* Appends text escaped for XML character data, or for a double-quoted
 * attribute value when attribute is set (line breaks kept as &#10;). */
static void xml_escape(struct fl_buf *b, const char *text, size_t n,
                       bool attribute)
{
    const unsigned char *p = (const unsigned char *)text;

    for (size_t i = 0; i < n;) {
        size_t len = xml_char_len(p + i, n - i);
        if (len == 0) {
            fl_buf_adds(b, "\xEF\xBF\xBD"); /* U+FFFD */
            i++;
            continue;
        }
        switch (p[i]) {
        case '&':
            fl_buf_adds(b, "&amp;");
            break;
        case '<':
            fl_buf_adds(b, "&lt;");
            break;
        case '>':
            fl_buf_adds(b, "&gt;");
            break;
        case '"':
            fl_buf_adds(b, attribute ? "&quot;" : "\"");
            break;
        case '\'':
            fl_buf_adds(b, attribute ? "&apos;" : "'");
            break;
        case '\r':
            fl_buf_adds(b, "&#13;");
            break;
        case '\n':
            fl_buf_adds(b, attribute ? "&#10;" : "\n");
            break;
        case '\t':
            fl_buf_adds(b, attribute ? "&#9;" : "\t");
            break;
        default:
            fl_buf_add(b, text + i, len);
            break;
        }
        i += len;
    }
}

static void add_attr(struct fl_buf *b, const char *name, const char *value)
{
    fl_buf_printf(b, " %s=\"", name);
    xml_escape(b, value, strlen(value), true);
    fl_buf_addc(b, '"');
}

/* The first line of text, for a message attribute. */
static void add_first_line_attr(struct fl_buf *b, const char *name,
                                const char *prefix, const char *text)
{
    size_t len = text != NULL ? strcspn(text, "\n") : 0;

    fl_buf_printf(b, " %s=\"", name);
    xml_escape(b, prefix, strlen(prefix), true);
    if (text != NULL)
        xml_escape(b, text, len, true);
    fl_buf_addc(b, '"');
}

static void add_text(struct fl_buf *b, const char *text)
{
    if (text != NULL)
        xml_escape(b, text, strlen(text), false);
}

/* The body of a failure, or the output of a passing run: what it found,
 * how to reproduce it and where its log is. */
static void add_body(struct fl_buf *b, const struct run_sweep *s,
                     const struct run_sweep_job *job)
{
    struct fl_buf repro;

    fl_buf_init(&repro);
    run_sweep_repro(s, job, &repro);
    if (job->detail != NULL) {
        add_text(b, job->detail);
        fl_buf_addc(b, '\n');
    }
    if (repro.len > 0 && job->outcome != RUN_SWEEP_FAILED) {
        fl_buf_adds(b, "reproduce: ");
        add_text(b, repro.data);
        fl_buf_addc(b, '\n');
    }
    if (job->run_dir != NULL) {
        fl_buf_adds(b, "run: ");
        add_text(b, job->run_dir);
        fl_buf_addc(b, '\n');
    }
    if (job->log_path != NULL) {
        fl_buf_adds(b, "log: ");
        add_text(b, job->log_path);
        fl_buf_addc(b, '\n');
    }
    fl_buf_free(&repro);
}

/* Appends one seed's testcase; counts it in the suite's totals. */
static void add_case(struct fl_buf *b, const struct run_sweep *s,
                     const struct run_sweep_job *job, size_t *failures,
                     size_t *errors, size_t *skipped)
{
    const struct run_sweep_campaign *c = &s->campaigns[job->campaign];
    bool ran = job->outcome != RUN_SWEEP_NOT_STARTED &&
               job->outcome != RUN_SWEEP_PENDING;
    char name[32];

    snprintf(name, sizeof(name), "seed-%" PRIu64, job->seed);
    fl_buf_adds(b, "    <testcase");
    add_attr(b, "classname", c->name);
    add_attr(b, "name", name);
    fl_buf_printf(b, " time=\"%.3f\">\n",
                  ran ? (double)(job->stop_ns - job->start_ns) / 1e9 : 0.0);
    switch (job->outcome) {
    case RUN_SWEEP_INVALID:
        if (!c->expect_invalid) {
            (*failures)++;
            fl_buf_adds(b, "      <failure type=\"invalid\"");
            add_first_line_attr(b, "message",
                                "expected valid, got invalid: ", job->detail);
            fl_buf_adds(b, ">");
            add_body(b, s, job);
            fl_buf_adds(b, "</failure>\n");
            break;
        }
        fl_buf_adds(b, "      <system-out>invalid, as expected: ");
        add_body(b, s, job);
        fl_buf_adds(b, "</system-out>\n");
        break;
    case RUN_SWEEP_VALID:
        fl_buf_adds(b, "      <system-out>");
        if (c->expect_invalid)
            fl_buf_adds(b, "valid: this seed did not trigger the planted bug, "
                           "which is no failure by itself\n");
        else
            fl_buf_adds(b, "valid\n");
        add_body(b, s, job);
        fl_buf_adds(b, "</system-out>\n");
        break;
    case RUN_SWEEP_FAILED:
        (*errors)++;
        fl_buf_adds(b, "      <error type=\"failed-to-run\"");
        add_first_line_attr(b, "message", "failed to run: ", job->detail);
        fl_buf_adds(b, ">");
        add_body(b, s, job);
        fl_buf_adds(b, "</error>\n");
        break;
    case RUN_SWEEP_UNKNOWN:
        (*skipped)++;
        fl_buf_adds(b, "      <skipped");
        add_first_line_attr(b, "message", "verdict unknown: ", job->detail);
        fl_buf_adds(b, "/>\n      <system-out>");
        add_body(b, s, job);
        fl_buf_adds(b, "</system-out>\n");
        break;
    default:
        (*skipped)++;
        fl_buf_adds(b, "      <skipped");
        add_first_line_attr(b, "message", "", job->detail);
        fl_buf_adds(b, "/>\n");
        break;
    }
    fl_buf_adds(b, "    </testcase>\n");
}

/* Appends the "detection" testcase of planted-bug campaign c. */
static void add_detection_case(struct fl_buf *b, const struct run_sweep *s,
                               size_t c, const struct run_sweep_tally *t,
                               size_t *failures, size_t *skipped)
{
    fl_buf_adds(b, "    <testcase");
    add_attr(b, "classname", s->campaigns[c].name);
    fl_buf_printf(b, " name=\"detection\" time=\"%.3f\">\n", t->seconds);
    if (t->verdicts == 0) {
        (*skipped)++;
        fl_buf_adds(b, "      <skipped message=\"no seed ran to a "
                       "verdict\"/>\n");
    } else if (!t->detected) {
        (*failures)++;
        fl_buf_printf(b,
                      "      <failure type=\"not-detected\" message=\"the "
                      "planted bug was not found in %zu seed%s with a "
                      "verdict\"/>\n",
                      t->verdicts, t->verdicts == 1 ? "" : "s");
    } else {
        fl_buf_printf(b,
                      "      <system-out>found in %zu of %zu seeds, first at "
                      "seed %" PRIu64 "</system-out>\n",
                      t->invalid, t->verdicts, t->first_detected_seed);
    }
    fl_buf_adds(b, "    </testcase>\n");
}

static void add_property(struct fl_buf *b, const char *name, const char *value)
{
    fl_buf_adds(b, "      <property");
    add_attr(b, "name", name);
    add_attr(b, "value", value);
    fl_buf_adds(b, "/>\n");
}

/* Appends campaign c's testsuite and adds its counts to the totals. */
static void add_suite(struct fl_buf *b, const struct run_sweep *s, size_t c,
                      size_t totals[4], double *seconds)
{
    const struct run_sweep_campaign *camp = &s->campaigns[c];
    struct run_sweep_tally t;
    struct fl_buf cases;
    size_t tests = 0, failures = 0, errors = 0, skipped = 0;
    char text[64];

    run_sweep_tally(s, c, &t);
    fl_buf_init(&cases);
    for (size_t i = 0; i < s->n_jobs; i++) {
        if (s->jobs[i].campaign != c)
            continue;
        add_case(&cases, s, &s->jobs[i], &failures, &errors, &skipped);
        tests++;
    }
    if (camp->expect_invalid) {
        add_detection_case(&cases, s, c, &t, &failures, &skipped);
        tests++;
    }

    fl_buf_adds(b, "  <testsuite");
    add_attr(b, "name", camp->name);
    fl_buf_printf(b,
                  " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
                  "skipped=\"%zu\" time=\"%.3f\"",
                  tests, failures, errors, skipped, t.seconds);
    add_attr(b, "timestamp", s->started_utc);
    fl_buf_adds(b, ">\n    <properties>\n");
    add_property(b, "file", camp->path);
    add_property(b, "system", camp->system);
    add_property(b, "expect", camp->expect_invalid ? "invalid" : "valid");
    snprintf(text, sizeof(text), "%" PRIu64 "..%" PRIu64, s->first_seed,
             s->last_seed);
    add_property(b, "seeds", text);
    snprintf(text, sizeof(text), "%" PRIu64 "/%" PRIu64, s->shard, s->shards);
    add_property(b, "shard", text);
    fl_buf_adds(b, "    </properties>\n");
    fl_buf_add(b, cases.data != NULL ? cases.data : "", cases.len);
    fl_buf_adds(b, "  </testsuite>\n");
    b->failed = b->failed || cases.failed;
    fl_buf_free(&cases);

    totals[0] += tests;
    totals[1] += failures;
    totals[2] += errors;
    totals[3] += skipped;
    *seconds += t.seconds;
}

int run_sweep_write_junit(const struct run_sweep *s, char *err, size_t err_size)
{
    struct fl_buf b, suites;
    struct run_outfile f;
    size_t totals[4] = {0, 0, 0, 0};
    double seconds = 0;
    int rc;

    fl_buf_init(&b);
    fl_buf_init(&suites);
    for (size_t c = 0; c < s->n_campaigns; c++)
        add_suite(&suites, s, c, totals, &seconds);
    fl_buf_printf(&b,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<testsuites name=\"faultline sweep\" tests=\"%zu\" "
                  "failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" "
                  "time=\"%.3f\">\n",
                  totals[0], totals[1], totals[2], totals[3], seconds);
    fl_buf_add(&b, suites.data != NULL ? suites.data : "", suites.len);
    fl_buf_adds(&b, "</testsuites>\n");
    if (b.failed || suites.failed) {
        rc = -ENOMEM;
        goto out;
    }
    rc = run_outfile_open(&f, s->junit);
    if (rc != 0)
        goto out;
    if (fwrite(b.data, 1, b.len, f.stream) != b.len) {
        rc = run_outfile_error(&f, -EIO);
        run_outfile_abort(&f);
        goto out;
    }
    rc = run_outfile_commit(&f);
out:
    if (rc != 0)
        snprintf(err, err_size, "%s: cannot write: %s", s->junit,
                 fl_strerror(rc));
    fl_buf_free(&suites);
    fl_buf_free(&b);
    return rc;
}
