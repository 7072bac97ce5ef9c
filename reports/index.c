/*
 * index.html: every run of a results database in one table, newest first,
 * with filters by campaign and verdict and a link to each run's report.
 *
 * The table is rendered in full by C; the filters are a few lines of
 * inline script that hide rows, so the page works from disk with no
 * network and shows every run even with scripts off.
 */
#include "html.h"

#include "buf.h"
#include "error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void add_escaped(struct fl_buf *b, const char *s)
{
    rep_add_html(b, s, strlen(s));
}

/* Appends path percent-encoded for a URL: every byte but letters, digits
 * and -._~/ is written as %XX, so '#', '?', '%' and spaces in a folder
 * name do not change what the link points to. */
static void add_url_path(struct fl_buf *b, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("-._~/", *p) != NULL) {
            fl_buf_addc(b, (char)*p);
        } else {
            fl_buf_addc(b, '%');
            fl_buf_addc(b, hex[*p >> 4]);
            fl_buf_addc(b, hex[*p & 15]);
        }
    }
}

/* Appends the link to a run's report: relative to out_dir when the run
 * lies below it, so the folder can be moved or served as a whole. */
static void add_report_href(struct fl_buf *b, const char *out_dir,
                            const char *store_path)
{
    size_t len = strlen(out_dir);

    if (strncmp(store_path, out_dir, len) == 0 && store_path[len] == '/')
        add_url_path(b, store_path + len + 1);
    else
        add_url_path(b, store_path);
    fl_buf_adds(b, "/report.html");
}

static const char *text_column(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return t != NULL ? (const char *)t : "";
}

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>faultline runs</title>\n<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}\n"
    "table{border-collapse:collapse;width:100%}\n"
    "th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;"
    "vertical-align:top}\n"
    "th{background:#f4f4f4;position:sticky;top:0}\n"
    ".valid{color:#1a7f37;font-weight:600}\n"
    ".invalid{color:#cf222e;font-weight:600}\n"
    ".unknown{color:#9a6700;font-weight:600}\n"
    ".miss{background:#fff4e5}\n"
    "code{font-size:12px}\n"
    "#filters{margin:12px 0}\n"
    "</style>\n</head>\n<body>\n<h1>faultline runs</h1>\n";

static const char page_script[] =
    "<script>\n"
    "(function () {\n"
    "  var camp = document.getElementById('campaign');\n"
    "  var verd = document.getElementById('verdict');\n"
    "  var rows = document.querySelectorAll('#runs tbody tr');\n"
    "  var count = document.getElementById('shown');\n"
    "  var seen = {};\n"
    "  rows.forEach(function (r) {\n"
    "    var c = r.getAttribute('data-campaign');\n"
    "    if (!seen[c]) {\n"
    "      seen[c] = true;\n"
    "      var o = document.createElement('option');\n"
    "      o.value = c;\n"
    "      o.textContent = c;\n"
    "      camp.appendChild(o);\n"
    "    }\n"
    "  });\n"
    "  function apply() {\n"
    "    var n = 0;\n"
    "    rows.forEach(function (r) {\n"
    "      var ok = (!camp.value || r.getAttribute('data-campaign') === "
    "camp.value) &&\n"
    "               (!verd.value || r.getAttribute('data-verdict') === "
    "verd.value);\n"
    "      r.style.display = ok ? '' : 'none';\n"
    "      if (ok) n++;\n"
    "    });\n"
    "    count.textContent = n + ' of ' + rows.length + ' runs';\n"
    "  }\n"
    "  camp.addEventListener('change', apply);\n"
    "  verd.addEventListener('change', apply);\n"
    "  apply();\n"
    "})();\n"
    "</script>\n";

static int render(sqlite3 *db, const char *out_dir, struct fl_buf *b, char *err,
                  size_t err_size)
{
    static const char query[] =
        "SELECT r.campaign, r.seed, r.started, r.duration_s, r.verdict, "
        "r.expected, r.exit_code, r.store_path, r.repro, r.network, "
        "(SELECT count(*) FROM anomalies a WHERE a.run = r.id) "
        "FROM runs r ORDER BY r.started DESC, r.id DESC";
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(db, query, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, err_size, "cannot read the runs: %s", sqlite3_errmsg(db));
        return FL_EINPUT;
    }
    fl_buf_adds(b, page_head);
    fl_buf_adds(b, "<div id=\"filters\">Campaign <select id=\"campaign\">"
                   "<option value=\"\">all</option></select> Verdict "
                   "<select id=\"verdict\"><option value=\"\">all</option>"
                   "<option>valid</option><option>invalid</option>"
                   "<option>unknown</option></select> "
                   "<span id=\"shown\"></span></div>\n"
                   "<table id=\"runs\"><thead><tr><th>started (UTC)</th>"
                   "<th>campaign</th><th>seed</th><th>verdict</th>"
                   "<th>expected</th><th>exit</th><th>anomalies</th>"
                   "<th>seconds</th>"
                   "<th>network</th><th>report</th><th>reproduce</th>"
                   "</tr></thead>\n<tbody>\n");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *campaign = text_column(st, 0);
        const char *verdict = text_column(st, 4);
        const char *expected = text_column(st, 5);
        bool missed =
            strcmp(expected, "invalid") == 0 && strcmp(verdict, "invalid") != 0;

        fl_buf_adds(b, "<tr data-campaign=\"");
        add_escaped(b, campaign);
        fl_buf_adds(b, "\" data-verdict=\"");
        add_escaped(b, verdict);
        fl_buf_adds(b, missed ? "\" class=\"miss\"><td>" : "\"><td>");
        add_escaped(b, text_column(st, 2));
        fl_buf_adds(b, "</td><td>");
        add_escaped(b, campaign);
        fl_buf_printf(b, "</td><td>%lld</td><td class=\"",
                      (long long)sqlite3_column_int64(st, 1));
        add_escaped(b, verdict);
        fl_buf_adds(b, "\">");
        add_escaped(b, verdict);
        fl_buf_adds(b, "</td><td>");
        add_escaped(b, expected);
        fl_buf_printf(b, "</td><td>%lld</td><td>%lld</td><td>%.1f</td><td>",
                      (long long)sqlite3_column_int64(st, 6),
                      (long long)sqlite3_column_int64(st, 10),
                      sqlite3_column_double(st, 3));
        add_escaped(b, text_column(st, 9));
        fl_buf_adds(b, "</td><td><a href=\"");
        add_report_href(b, out_dir, text_column(st, 7));
        fl_buf_adds(b, "\">report</a></td><td><code>");
        add_escaped(b, text_column(st, 8));
        fl_buf_adds(b, "</code></td></tr>\n");
    }
    if (rc != SQLITE_DONE) {
        snprintf(err, err_size, "cannot read the runs: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return FL_EINPUT;
    }
    sqlite3_finalize(st);
    fl_buf_adds(b, "</tbody></table>\n");
    fl_buf_adds(b, page_script);
    fl_buf_adds(b, "</body>\n</html>\n");
    return 0;
}

int rep_render_index(sqlite3 *db, const char *out_dir, char *err,
                     size_t err_size)
{
    char dir[PATH_MAX];
    char path[PATH_MAX + 32];
    char tmp[PATH_MAX + 32];
    struct fl_buf b;
    FILE *f;
    int rc;

    if (realpath(out_dir, dir) == NULL) {
        rc = -errno;
        snprintf(err, err_size, "%s: %s", out_dir, strerror(errno));
        return rc;
    }
    fl_buf_init(&b);
    rc = render(db, dir, &b, err, err_size);
    if (rc == 0 && b.failed) {
        snprintf(err, err_size, "out of memory rendering index.html");
        rc = -ENOMEM;
    }
    snprintf(path, sizeof(path), "%s/index.html", dir);
    snprintf(tmp, sizeof(tmp), "%s/.index.html.XXXXXX", dir);
    if (rc == 0) {
        /* A temporary file of its own and a rename: a reader never sees
         * half a page, and two writers at once do not collide. */
        int fd = mkstemp(tmp);
        f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (fd >= 0 && f == NULL)
            close(fd);
        if (f == NULL) {
            rc = -errno;
        } else {
            fchmod(fileno(f), 0644);
            if (fwrite(b.data, 1, b.len, f) != b.len)
                rc = -EIO;
            if (fclose(f) != 0 && rc == 0)
                rc = -errno;
            if (rc == 0 && rename(tmp, path) != 0)
                rc = -errno;
            if (rc != 0)
                unlink(tmp);
        }
        if (rc != 0)
            snprintf(err, err_size, "cannot write %s: %s", path,
                     fl_strerror(rc));
    }
    fl_buf_free(&b);
    return rc;
}
