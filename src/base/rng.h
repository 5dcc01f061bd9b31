/* rng.h — torch-compatible random numbers: the same seed gives the same noise as
 * torch.randn(shape, generator=torch.Generator().manual_seed(seed)) on the CPU, so frames of the
 * Python original can be reproduced.
 *
 * torch's CPU generator is a 32-bit mt19937 seeded with the low 32 bits of the seed. randn on a
 * float32 tensor of n elements:
 *   n >= 16: n uniforms u = (next() & 0xffffff) * 2^-24, then Box-Muller per block of 16 with the
 *            first 8 as u1 (radius from log(1 - u1)) and the next 8 as u2 (angle), cos to the first
 *            half, sin to the second; if n % 16 != 0, 16 fresh uniforms overwrite the last 16
 *            values and are transformed the same way.
 *   n < 16:  one double normal per element from 53-bit uniforms (u1 = angle, u2 = radius from
 *            log(1 - u2)); the sin half is cached in the generator and returned by the next draw.
 */
#ifndef SD_BASE_RNG_H
#define SD_BASE_RNG_H

#include <stdint.h>

typedef struct sd_rng {
    uint32_t state[624];
    int index;
    int has_cached_normal;
    double cached_normal;
} sd_rng;

void sd_rng_seed(sd_rng *rng, uint64_t seed);
uint32_t sd_rng_next_u32(sd_rng *rng);
/* torch.randn(n) in float32, advancing the generator exactly as torch does. */
void sd_rng_randn(sd_rng *rng, float *out, int64_t n);
/* torch.randn_like(x) for an [n, c, h, w] x in channels-last memory: such a tensor is not contiguous,
 * so torch fills it element by element with double Box-Muller normals in memory order (c fastest,
 * then w, h, n). Upstream's CPU pipeline meets this in sequential mode, where the denoised latent
 * comes out of oneDNN channels-last. out is written in the usual NCHW order. */
void sd_rng_randn_channels_last(sd_rng *rng, float *out, int64_t n, int64_t c, int64_t h, int64_t w);
/* torch.rand-style double in [0, 1) from 53 random bits. */
double sd_rng_uniform_f64(sd_rng *rng);

/* Python's random module on the same Mersenne Twister: random.seed(seed) (init_by_array over the
 * seed's 32-bit words) and random.random() (53 bits from two draws). StreamDiffusion's similarity
 * filter draws random.uniform(0, 1) = random.random(). */
void sd_rng_seed_python(sd_rng *rng, uint64_t seed);
double sd_rng_python_random(sd_rng *rng);

#endif
