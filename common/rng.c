/*
 * xoshiro256** and splitmix64, written from the published algorithm
 * descriptions (Blackman and Vigna, "Scrambled linear pseudorandom number
 * generators", 2018; Steele, Lea and Flood, "Fast splittable pseudorandom
 * number generators", 2014).
 */
#include "rng.h"

__extension__ typedef unsigned __int128 u128;

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t fl_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void fl_rng_seed(struct fl_rng *rng, uint64_t seed)
{
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = fl_splitmix64(&sm);
    /* splitmix64 never yields four zero words in a row, but be explicit:
     * the all-zero state is the one fixed point of xoshiro. */
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
        rng->s[0] = 1;
}

void fl_rng_seed_stream(struct fl_rng *rng, uint64_t seed, uint64_t stream)
{
    uint64_t a = seed;
    uint64_t b = stream ^ 0x6a09e667f3bcc909ULL;
    uint64_t mixed = fl_splitmix64(&a) ^ rotl(fl_splitmix64(&b), 17);
    fl_rng_seed(rng, mixed);
}

uint64_t fl_rng_next(struct fl_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t fl_rng_below(struct fl_rng *rng, uint64_t bound)
{
    /* Lemire's multiply-and-reject method: the high half of x * bound is
     * uniform once the low half clears the bias threshold. */
    u128 m = (u128)fl_rng_next(rng) * bound;
    uint64_t low = (uint64_t)m;

    if (low < bound) {
        uint64_t threshold = (0 - bound) % bound;
        while (low < threshold) {
            m = (u128)fl_rng_next(rng) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

int64_t fl_rng_range(struct fl_rng *rng, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)hi - (uint64_t)lo;

    if (span == UINT64_MAX)
        return (int64_t)fl_rng_next(rng);
    return (int64_t)((uint64_t)lo + fl_rng_below(rng, span + 1));
}

double fl_rng_double(struct fl_rng *rng)
{
    return (double)(fl_rng_next(rng) >> 11) * 0x1.0p-53;
}

bool fl_rng_chance(struct fl_rng *rng, double p)
{
    if (p <= 0.0)
        return false;
    if (p >= 1.0)
        return true;
    return fl_rng_double(rng) < p;
}
