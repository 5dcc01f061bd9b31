/* backend_ops_ref.h — plain reference implementations of every op of backend/backend.h, for
 * test_backend_ops: straight loops over float32 inputs with double accumulation, written from the
 * op's documented semantics (backend.h) and torch's, not from any backend's code. Slow on purpose;
 * only for small shapes. Layouts as backend.h: row-major, images NCHW, linear weights [out, in]. */
#ifndef SD_TESTS_BACKEND_OPS_REF_H
#define SD_TESTS_BACKEND_OPS_REF_H

#include <stdbool.h>
#include <stdint.h>

/* y [M, N] = x [M, K] . w[N, K]^T + b[N] (b may be NULL) */
void ref_linear(float *y, const float *x, const float *w, const float *b, int64_t m, int64_t k, int64_t n);
/* per row of C: (x - mean) / sqrt(var + eps) * g + b, biased variance */
void ref_layer_norm(float *y, const float *x, const float *g, const float *b, int64_t rows, int64_t c, float eps);
/* q [B, Tq, H*D], k/v [B, Tk, H*D] -> o [B, Tq, H*D]; scale 1/sqrt(D); causal masks key j > query i */
void ref_attention(float *o, const float *q, const float *k, const float *v, int64_t b, int64_t tq, int64_t tk,
                   int64_t c, int heads, bool causal);
/* act is an sd_activation value (NONE, GELU (erf), QUICK_GELU, SILU, RELU, TANH, EXP) */
void ref_activation(float *y, const float *x, int64_t n, int act);
void ref_add(float *y, const float *a, const float *b, int64_t n);
void ref_mul(float *y, const float *a, const float *b, int64_t n);
void ref_softmax(float *y, const float *x, int64_t rows, int64_t c);
/* y[i, :] = table[ids[i], :] */
void ref_embedding(float *y, const float *table, const int32_t *ids, int64_t rows, int64_t c);
/* NCHW convolution, square kernel k, stride s, zero padding p; then + bias + residual, ReLU when relu */
void ref_conv2d(float *y, const float *x, const float *w, const float *bias, const float *residual, int64_t n,
                int64_t ci, int64_t h, int64_t wd, int64_t co, int64_t k, int s, int p, bool relu);
/* GroupNorm over [N, C, S] (S = spatial size), biased variance, then SiLU when silu */
void ref_group_norm(float *y, const float *x, const float *g, const float *b, int64_t n, int64_t c, int64_t s,
                    int groups, float eps, bool silu);
/* torch 'nearest': src = min(floor(dst * (float)in / out), in - 1), the scale computed in float */
void ref_upsample_nearest(float *y, const float *x, int64_t planes, int64_t h, int64_t w, int64_t ho, int64_t wo);
/* y [N, C, S] = a + b, b [C] (per_batch false) or [N, C] */
void ref_add_broadcast(float *y, const float *a, const float *b, int64_t n, int64_t c, int64_t s, bool per_batch);
void ref_axpby(float *y, float alpha, const float *a, float beta, const float *b, int64_t n);
void ref_scale(float *y, const float *x, int64_t n, float mul, float add);
/* x [rows, 2F] = [hidden | gate] -> y [rows, F] = hidden * gelu(gate) */
void ref_geglu(float *y, const float *x, int64_t rows, int64_t f);
/* [N, C, S] -> [N, S, C] when to_channels_last, else [N, S, C] -> [N, C, S] */
void ref_transpose_hw_c(float *y, const float *x, int64_t n, int64_t c, int64_t s, bool to_channels_last);
/* y [N, Sa + Sb] = per row n: a[n, :Sa] then b[n, :Sb] (Sa = Ca * rest, Sb = Cb * rest) */
void ref_concat_channels(float *y, const float *a, const float *b, int64_t n, int64_t sa, int64_t sb);

/* rgb [N, H, W, 3] bytes (as floats) -> y [N, 3, H, W] = 2 * (u8 / 255) - 1 in float32, as sd_image_to_chw */
void ref_rgb8_to_image(float *y, const float *rgb, int64_t n, int64_t h, int64_t w);
/* x [N, 3, H, W] -> y [N, H, W, 3] = rint(clamp(x / 2 + 0.5, 0, 1) * 255), NaN -> 0, in float32, as
 * sd_image_from_chw (bytes as floats) */
void ref_image_to_rgb8(float *y, const float *x, int64_t n, int64_t h, int64_t w);

#endif
