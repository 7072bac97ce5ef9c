/*
 * Seeded pseudo-random numbers: xoshiro256** (Blackman and Vigna, 2018),
 * whose 256-bit state is filled from the seed by splitmix64.
 *
 * Every choice the platform makes comes from one run seed. Independent
 * sub-streams (one per client, one for the nemesis, ...) are derived from
 * the seed and a stream number, so adding a client never shifts the numbers
 * another client sees. Not for cryptography.
 */
#ifndef FL_RNG_H
#define FL_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct fl_rng {
    uint64_t s[4];
};

/* Well-known stream numbers; clients use FL_RNG_STREAM_CLIENT + client id. */
enum {
    FL_RNG_STREAM_MAIN = 0,
    FL_RNG_STREAM_NEMESIS = 1,
    FL_RNG_STREAM_SCHEDULE = 2,
    FL_RNG_STREAM_CLIENT = 1024,
};

/* Advances *state and returns the next splitmix64 output. */
uint64_t fl_splitmix64(uint64_t *state);

/* Seeds rng from seed; any seed, including 0, is valid. */
void fl_rng_seed(struct fl_rng *rng, uint64_t seed);

/*
 * Seeds rng with sub-stream `stream` of `seed`. The stream's seed is a
 * splitmix64 hash of both numbers; distinct (seed, stream) pairs give
 * unrelated states, and with a 2^256 - 1 period an overlap between streams is
 * astronomically unlikely, though not excluded by construction.
 */
void fl_rng_seed_stream(struct fl_rng *rng, uint64_t seed, uint64_t stream);

uint64_t fl_rng_next(struct fl_rng *rng);

/* Returns a uniform integer in [0, bound); bound must be > 0. Unbiased. */
uint64_t fl_rng_below(struct fl_rng *rng, uint64_t bound);

/* Returns a uniform integer in [lo, hi]; requires lo <= hi. */
int64_t fl_rng_range(struct fl_rng *rng, int64_t lo, int64_t hi);

/* Returns a uniform double in [0, 1) with 53 random bits. */
double fl_rng_double(struct fl_rng *rng);

/* Returns true with probability p (p <= 0: never, p >= 1: always). */
bool fl_rng_chance(struct fl_rng *rng, double p);

#endif
