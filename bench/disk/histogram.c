/*
 * Log-linear latency histograms. See histogram.h.
 *
 * A value v of at least 128 ns with its highest set bit at position msb
 * falls in bucket (msb - 5) * 64 + (v >> (msb - 6)) - 64: the top seven
 * bits of v select one of 64 buckets within its power of two.
 */
#include "histogram.h"

#include <math.h>

#define SUB_BITS    6
#define SUB_BUCKETS (1u << SUB_BITS)
#define EXACT_BELOW (2u * SUB_BUCKETS)

static unsigned bucket_of(uint64_t v)
{
    if (v < EXACT_BELOW)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - SUB_BITS;
    return (shift + 1u) * SUB_BUCKETS + (unsigned)(v >> shift) - SUB_BUCKETS;
}

/* The midpoint of bucket b, in nanoseconds. */
static double midpoint_of(unsigned b)
{
    if (b < EXACT_BELOW)
        return (double)b;
    unsigned shift = b / SUB_BUCKETS - 1u;
    double low = (double)((uint64_t)(b % SUB_BUCKETS + SUB_BUCKETS) << shift);
    return low + (double)((uint64_t)1 << shift) / 2.0;
}

void bench_hist_add(struct bench_hist *h, int64_t ns)
{
    uint64_t v = ns > 0 ? (uint64_t)ns : 0;

    h->buckets[bucket_of(v)]++;
    h->count++;
    h->sum_ns += v;
}

void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from)
{
    for (unsigned b = 0; b < BENCH_HIST_BUCKETS; b++)
        into->buckets[b] += from->buckets[b];
    into->count += from->count;
    into->sum_ns += from->sum_ns;
}

double bench_hist_percentile(const struct bench_hist *h, double percent)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return 0;
    rank = (uint64_t)ceil(percent / 100.0 * (double)h->count);
    if (rank == 0)
        rank = 1;
    for (unsigned b = 0; b < BENCH_HIST_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank)
            return midpoint_of(b);
    }
    return midpoint_of(BENCH_HIST_BUCKETS - 1);
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->count == 0 ? 0 : (double)h->sum_ns / (double)h->count;
}
