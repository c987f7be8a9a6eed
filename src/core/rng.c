/* rng.c — xoshiro256** (Blackman & Vigna) seeded by splitmix64. Explicit state, one per
 * thread, so that one seed fixes every draw and runs are reproducible. */
#include "seqrec/core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

void sq_rng_seed(sq_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

sq_rng sq_rng_derive(uint64_t seed, uint64_t stream) {
    sq_rng r;
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull);
    sq_rng_seed(&r, splitmix64(&x));
    return r;
}

uint64_t sq_rng_u64(sq_rng *r) {
    uint64_t *s = r->s;
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

uint32_t sq_rng_below(sq_rng *r, uint32_t n) {
    /* Lemire's multiply-shift with rejection: unbiased, usually one draw. */
    uint64_t m = (uint64_t)(uint32_t)(sq_rng_u64(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(sq_rng_u64(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double sq_rng_uniform(sq_rng *r) {
    return (double)(sq_rng_u64(r) >> 11) * 0x1.0p-53;
}

float sq_rng_uniformf(sq_rng *r) {
    return (float)(sq_rng_u64(r) >> 40) * 0x1.0p-24f;
}

double sq_rng_normal(sq_rng *r) {
    double u1 = 1.0 - sq_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = sq_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void sq_rng_shuffle_u32(sq_rng *r, uint32_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = sq_rng_below(r, (uint32_t)i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
