/*
 * Output files that appear only once complete.
 *
 * A path that names a regular file, or nothing yet, is written to
 * PATH.tmp.PID in the same folder, which is renamed over PATH on success
 * and removed on failure. While that temporary file exists, SIGINT,
 * SIGTERM and SIGHUP remove it and end the process with exit code 128 + the
 * signal number. A device, FIFO or other special file is written in place, because
 * renaming over it would replace the device node. Symbolic links are
 * followed, so the file they point to is replaced, not the link.
 *
 * The stream keeps the errno of the first failed write, because stdio and
 * fl_hist_writer only report that a write failed. Only one temporary file
 * may be open at a time.
 */
#ifndef RUN_OUTFILE_H
#define RUN_OUTFILE_H

#include <stdbool.h>
#include <stdio.h>

/* Must stay at one address from open until commit or abort. */
struct run_outfile {
    FILE *stream; /* write here between open and commit or abort */
    int fd;
    bool own_fd;     /* false for standard output, which stays open */
    int write_error; /* errno of the first failed write, or 0 */
    char path[4096]; /* the file being produced, symbolic links resolved */
    char tmp[4096];  /* the temporary file, or "" when writing in place */
};

/*
 * Opens path for writing, or standard output when path is NULL. Returns 0
 * or -errno; on failure nothing is left behind.
 */
int run_outfile_open(struct run_outfile *f, const char *path);

/*
 * Flushes and closes the stream, fsyncs a temporary file and renames it
 * over the path. Returns 0 or -errno, the errno of the first failed write
 * when there was one. On failure the temporary file is removed.
 */
int run_outfile_commit(struct run_outfile *f);

/* Closes the stream and removes the temporary file. */
void run_outfile_abort(struct run_outfile *f);

/*
 * Returns rc, a write error reported through the stream, replaced by the
 * errno of the first failed write when one was recorded.
 */
int run_outfile_error(const struct run_outfile *f, int rc);

#endif
