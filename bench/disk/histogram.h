/*
 * Latency histograms for the disk-supervisor benchmarks: log-linear
 * buckets over nanoseconds, exact below 128 ns and 64 buckets per power of
 * two above, so a percentile read from one is within 0.8% of the true
 * sample. One histogram takes a fixed 29.7 KB however many samples it
 * counts, so a long run does not grow memory.
 */
#ifndef BENCH_HISTOGRAM_H
#define BENCH_HISTOGRAM_H

#include <stdint.h>

#define BENCH_HIST_BUCKETS 3712

struct bench_hist {
    uint64_t count;
    uint64_t sum_ns; /* for the mean */
    uint64_t buckets[BENCH_HIST_BUCKETS];
};

/* Counts one sample of ns nanoseconds (negative values count as 0). */
void bench_hist_add(struct bench_hist *h, int64_t ns);

/* Adds every sample of from to into. */
void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from);

/* Returns the nearest-rank percentile (0 < percent <= 100) in nanoseconds,
 * the midpoint of the bucket it falls in, or 0 for an empty histogram. */
double bench_hist_percentile(const struct bench_hist *h, double percent);

/* Returns the mean in nanoseconds, or 0 for an empty histogram. */
double bench_hist_mean(const struct bench_hist *h);

#endif
