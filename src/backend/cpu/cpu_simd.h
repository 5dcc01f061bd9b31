/* cpu_simd.h — row kernels for the memory-bound ops (activations, norm affine, softmax pieces),
 * one table per instruction set, picked once per backend from the CPU's features.
 *
 * The AVX2 versions use polynomial exp/erf (Cephes-style expf, rel. error ~2e-7; Abramowitz-Stegun
 * 7.1.26 erf, abs. error 1.5e-7), well inside the 1e-4 golden tolerance; the scalar table uses
 * libm and is the reference the tests compare against.
 */
#ifndef SD_BACKEND_CPU_SIMD_H
#define SD_BACKEND_CPU_SIMD_H

#include <stdint.h>

typedef struct sd_cpu_vec {
    const char *name;
    /* y = act(x * mul + add) over n floats, act: 0 none, 1 silu, 2 gelu (erf). y may alias x. */
    void (*affine_act)(float *y, const float *x, int64_t n, float mul, float add, int act);
    /* y = hid * gelu(gate) (diffusers GEGLU) */
    void (*geglu)(float *y, const float *hid, const float *gate, int64_t n);
    /* max of x[0..n) (n >= 1) */
    float (*max)(const float *x, int64_t n);
    /* x[i] = exp(x[i] - sub) in place; returns the sum (float accumulation in lanes) */
    float (*exp_sum)(float *x, int64_t n, float sub);
    /* sum and sum of squares around `shift` in double-free float lanes, for norms: s[0] += sum(x - shift),
     * s[1] += sum((x - shift)^2), accumulated in double across calls by the caller */
    void (*sums)(const float *x, int64_t n, float shift, double s[2]);
    /* Online-softmax step on a key block of scores stored as [nk][nr] (nr query lanes, nr a
     * multiple of 8): per lane, new max = max(m, block max), corr = exp(m - new max), scores become
     * exp(s - new max), l = l * corr + sum; m and l are updated, corr returned per lane. */
    void (*softmax_panel)(float *s, int64_t nk, int nr, float *m, float *l, float *corr);
} sd_cpu_vec;

enum { SD_VEC_ACT_NONE = 0, SD_VEC_ACT_SILU = 1, SD_VEC_ACT_GELU = 2 };

const sd_cpu_vec *sd_cpu_vec_scalar(void);
/* The AVX2 table; NULL when the build or the CPU has no AVX2+FMA. */
const sd_cpu_vec *sd_cpu_vec_avx2(void);

#endif
