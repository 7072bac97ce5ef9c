/*
 * Renders report.html for each run directory given and prints the wall time
 * of each render, one "DIR SECONDS" line each. bench/report/run.sh builds
 * and runs it.
 */
#include "html.h"

#include <stdio.h>
#include <time.h>

int main(int argc, char **argv)
{
    char err[4096];

    for (int i = 1; i < argc; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = rep_render_run(argv[i], err, sizeof(err));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (rc != 0) {
            fprintf(stderr, "render: %s\n", err);
            return 1;
        }
        printf("%s %.3f\n", argv[i],
               (double)(t1.tv_sec - t0.tv_sec) +
                   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    return 0;
}
