/* rng.c — see rng.h. */
#include "base/rng.h"

#include <math.h>

#include "base/status.h"

enum { MT_N = 624, MT_M = 397 };
static const double SD_PI = 3.14159265358979323846;

void sd_rng_seed(sd_rng *rng, uint64_t seed) {
    rng->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (int i = 1; i < MT_N; i++)
        rng->state[i] = 1812433253u * (rng->state[i - 1] ^ (rng->state[i - 1] >> 30)) + (uint32_t)i;
    rng->index = MT_N;
    rng->has_cached_normal = 0;
    rng->cached_normal = 0.0;
}

void sd_rng_seed_python(sd_rng *rng, uint64_t seed) {
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    int key_len = key[1] ? 2 : 1;
    sd_rng_seed(rng, 19650218u);
    uint32_t *mt = rng->state;
    int i = 1, j = 0;
    for (int k = MT_N > key_len ? MT_N : key_len; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++, j++;
        if (i >= MT_N) mt[0] = mt[MT_N - 1], i = 1;
        if (j >= key_len) j = 0;
    }
    for (int k = MT_N - 1; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= MT_N) mt[0] = mt[MT_N - 1], i = 1;
    }
    mt[0] = 0x80000000u;
    rng->index = MT_N;
}

double sd_rng_python_random(sd_rng *rng) {
    uint32_t a = sd_rng_next_u32(rng) >> 5, b = sd_rng_next_u32(rng) >> 6;
    return ((double)a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}

static void mt_twist(sd_rng *rng) {
    uint32_t *s = rng->state;
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (s[i] & 0x80000000u) | (s[(i + 1) % MT_N] & 0x7fffffffu);
        s[i] = s[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    rng->index = 0;
}

uint32_t sd_rng_next_u32(sd_rng *rng) {
    if (rng->index >= MT_N) mt_twist(rng);
    uint32_t y = rng->state[rng->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

static float uniform_f32(sd_rng *rng) { return (float)(sd_rng_next_u32(rng) & 0xffffffu) * (1.0f / 16777216.0f); }

double sd_rng_uniform_f64(sd_rng *rng) {
    /* torch's random64(): the first draw is the high word */
    uint64_t hi = sd_rng_next_u32(rng), lo = sd_rng_next_u32(rng);
    uint64_t bits = (hi << 32 | lo) & ((UINT64_C(1) << 53) - 1);
    return (double)bits * (1.0 / 9007199254740992.0);
}

/* Box-Muller on 16 uniforms in place, in float as torch's AVX2 kernel computes it (its Sleef
 * log/sin/cos are within 1 ulp of glibc's). */
static void normal_fill_16(float *data) {
    const float two_pi = (float)(2.0 * SD_PI);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - data[j];
        float u2 = data[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = two_pi * u2;
        data[j] = radius * cosf(theta);
        data[j + 8] = radius * sinf(theta);
    }
}

static double normal_f64(sd_rng *rng) {
    if (rng->has_cached_normal) {
        rng->has_cached_normal = 0;
        return rng->cached_normal;
    }
    double u1 = sd_rng_uniform_f64(rng);
    double u2 = sd_rng_uniform_f64(rng);
    double r = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * SD_PI * u1;
    rng->cached_normal = r * sin(theta);
    rng->has_cached_normal = 1;
    return r * cos(theta);
}

void sd_rng_randn(sd_rng *rng, float *out, int64_t n) {
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) out[i] = (float)normal_f64(rng);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = uniform_f32(rng);
    for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16(out + i);
    if (n % 16 != 0) {
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = uniform_f32(rng);
        normal_fill_16(tail);
    }
}

void sd_rng_randn_channels_last(sd_rng *rng, float *out, int64_t n, int64_t c, int64_t h, int64_t w) {
    for (int64_t b = 0; b < n; b++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                for (int64_t ch = 0; ch < c; ch++) out[((b * c + ch) * h + y) * w + x] = (float)normal_f64(rng);
}

sd_status sd_randn(uint64_t seed, int64_t numel, float *out) {
    SD_CHECK_ARG(numel >= 0, "sd_randn: numel %lld is negative", (long long)numel);
    SD_CHECK_ARG(out != NULL || numel == 0, "sd_randn: out is NULL");
    sd_rng rng;
    sd_rng_seed(&rng, seed);
    sd_rng_randn(&rng, out, numel);
    return SD_OK;
}
