/*
 * HTML reports: report.html in each run directory and index.html over the
 * runs of a results database. Both are self-contained files: inline CSS,
 * inline SVG and inline script, no network access, no external fonts or
 * scripts, so they open from disk anywhere.
 */
#ifndef REP_HTML_H
#define REP_HTML_H

#include "buf.h"

#include <sqlite3.h>
#include <stddef.h>

/*
 * Renders run_dir/report.html from the files of the run (results.json,
 * campaign.json, history.jsonl, nemesis.jsonl and the logs in nodes/). Returns
 * 0, or a negative error with the reason in err.
 */
int rep_render_run(const char *run_dir, char *err, size_t err_size);

/*
 * Renders out_dir/index.html listing every run in db, newest first, with
 * filters by campaign and verdict and a link to each run's report.html
 * (relative to out_dir when possible).
 */
int rep_render_index(sqlite3 *db, const char *out_dir, char *err,
                     size_t err_size);

/*
 * Appends len bytes of s escaped for HTML text and attribute values. A NUL
 * byte becomes U+2400 and other control bytes but tab and newline become
 * U+FFFD, so no input can inject markup or hide text.
 */
void rep_add_html(struct fl_buf *b, const char *s, size_t len);

#endif
