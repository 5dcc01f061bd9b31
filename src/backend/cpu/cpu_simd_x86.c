/* cpu_simd_x86.c — x86 SIMD code compiled with per-function target attributes (the build itself
 * stays baseline x86-64) and chosen at run time: the AVX2+FMA and AVX-512 SGEMM micro-kernels and
 * the AVX2 row kernels of cpu_simd.h. On other architectures this file compiles to stubs. */
#include "base/cpu_features.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_gemm.h"
#include "backend/cpu/cpu_simd.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define SD_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SD_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define SD_AVX512BF16 __attribute__((target("avx512f,avx512bf16,avx2,fma")))

/* Copies (acc: adds) the first m x n of a row-major tile t (row stride ts) into c. */
static void store_partial(float *c, int64_t ldc, const float *t, int ts, int m, int n, bool acc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[i * ldc + j] = (acc ? c[i * ldc + j] : 0.0f) + t[i * ts + j];
}

/* ---- AVX2 6x16: 12 ymm accumulators, 2 B loads + 6 broadcasts per k (Zen 3: 2 FMA/cycle) ---- */

#define ROW2(i)                                                                                    \
    do {                                                                                           \
        __m256 av = _mm256_broadcast_ss(a + (i));                                                  \
        c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);                                                \
        c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);                                                \
    } while (0)

#define OUT2(i)                                                                                    \
    do {                                                                                           \
        float *cr = dst + (i) * ld;                                                                \
        if (add) {                                                                                 \
            c##i##0 = _mm256_add_ps(c##i##0, _mm256_loadu_ps(cr));                                 \
            c##i##1 = _mm256_add_ps(c##i##1, _mm256_loadu_ps(cr + 8));                             \
        }                                                                                          \
        _mm256_storeu_ps(cr, c##i##0);                                                             \
        _mm256_storeu_ps(cr + 8, c##i##1);                                                         \
    } while (0)

SD_AVX2 void sd_gemm_kernel_avx2_6x16(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                                      bool acc) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        ROW2(0);
        ROW2(1);
        ROW2(2);
        ROW2(3);
        ROW2(4);
        ROW2(5);
        a += 6;
        b += 16;
    }
    float tile[6 * 16];
    bool full = m == 6 && n == 16;
    float *dst = full ? c : tile;
    int64_t ld = full ? ldc : 16;
    bool add = full && acc;
    OUT2(0);
    OUT2(1);
    OUT2(2);
    OUT2(3);
    OUT2(4);
    OUT2(5);
    if (!full) store_partial(c, ldc, tile, 16, m, n, acc);
}

/* ---- AVX-512 12x32: 24 zmm accumulators ---- */

#define ROW5(i)                                                                                    \
    do {                                                                                           \
        __m512 av = _mm512_set1_ps(a[i]);                                                          \
        r[2 * (i)] = _mm512_fmadd_ps(av, b0, r[2 * (i)]);                                          \
        r[2 * (i) + 1] = _mm512_fmadd_ps(av, b1, r[2 * (i) + 1]);                                  \
    } while (0)

/* The 12x32 tile of accumulators r (two zmm per row) into C: written or added (acc), the first
 * m x n only (through a stack tile) at the edges. Shared by the fp32 and bf16 kernels. */
__attribute__((always_inline)) SD_AVX512 static inline void store_12x32(const __m512 r[24], float *c, int64_t ldc,
                                                                       int m, int n, bool acc) {
    float tile[12 * 32];
    bool full = m == 12 && n == 32;
    float *dst = full ? c : tile;
    int64_t ld = full ? ldc : 32;
    for (int i = 0; i < 12; i++) {
        float *cr = dst + i * ld;
        __m512 v0 = r[2 * i], v1 = r[2 * i + 1];
        if (full && acc) {
            v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cr));
            v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cr + 16));
        }
        _mm512_storeu_ps(cr, v0);
        _mm512_storeu_ps(cr + 16, v1);
    }
    if (!full) store_partial(c, ldc, tile, 32, m, n, acc);
}

SD_AVX512 void sd_gemm_kernel_avx512_12x32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m,
                                           int n, bool acc) {
    __m512 r[24];
    for (int i = 0; i < 24; i++) r[i] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        ROW5(0);
        ROW5(1);
        ROW5(2);
        ROW5(3);
        ROW5(4);
        ROW5(5);
        ROW5(6);
        ROW5(7);
        ROW5(8);
        ROW5(9);
        ROW5(10);
        ROW5(11);
        a += 12;
        b += 32;
    }
    store_12x32(r, c, ldc, m, n, acc);
}

/* ---- AVX512_BF16 12x32: bf16 operands, float32 accumulation (vdpbf16ps) ----
 * Panels hold k in pairs (cpu_gemm.h): per pair, A broadcasts one 32-bit (k, k+1) pair per row and
 * B is 32 columns x 2, so one vdpbf16ps adds a[i][k] b[k][j] + a[i][k+1] b[k+1][j] to 16 columns. */
SD_AVX512BF16 void sd_gemm_kernel_avx512bf16_12x32(int64_t kp, const uint16_t *a, const uint16_t *b, float *c,
                                                   int64_t ldc, int m, int n, bool acc) {
    __m512 r[24];
    for (int i = 0; i < 24; i++) r[i] = _mm512_setzero_ps();
    /* rows by macro, not a loop: with a loop gcc kept the accumulators in memory (a load and a
     * store around every vdpbf16ps) */
#define ROWBF(i)                                                                                   \
    do {                                                                                           \
        __m512bh av = (__m512bh)_mm512_set1_epi32(ap[i]);                                          \
        r[2 * (i)] = _mm512_dpbf16_ps(r[2 * (i)], av, b0);                                         \
        r[2 * (i) + 1] = _mm512_dpbf16_ps(r[2 * (i) + 1], av, b1);                                 \
    } while (0)
    for (int64_t p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 32);
        const int32_t *ap = (const int32_t *)(const void *)a;
        ROWBF(0);
        ROWBF(1);
        ROWBF(2);
        ROWBF(3);
        ROWBF(4);
        ROWBF(5);
        ROWBF(6);
        ROWBF(7);
        ROWBF(8);
        ROWBF(9);
        ROWBF(10);
        ROWBF(11);
        a += 24;
        b += 64;
    }
#undef ROWBF
    store_12x32(r, c, ldc, m, n, acc);
}

/* bf16 of 16 floats in the high halves of the lanes: round to nearest even, NaN stays a quiet NaN
 * (sd_f32_to_bf16's rule, lane-wise). */
SD_AVX512 static inline __m512i bf16_high(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
}

/* sd_gemm_panel_to_bf16_pairs, 16 columns at a time: each 32-bit lane is (bf16 row k, bf16 row k+1). */
SD_AVX512 void sd_gemm_panel_to_bf16_pairs_avx512(uint16_t *dst, const float *src, int64_t kc, int w) {
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    for (int64_t k = 0; k < kc; k += 2) {
        const float *r0 = src + k * w, *r1 = r0 + w;
        uint32_t *d = (uint32_t *)(void *)(dst + k * w);
        for (int j = 0; j < w; j += 16) {
            __mmask16 mk = w - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (w - j)) - 1);
            __m512i lo = bf16_high(_mm512_maskz_loadu_ps(mk, r0 + j));
            __m512i hi = k + 1 < kc ? bf16_high(_mm512_maskz_loadu_ps(mk, r1 + j)) : _mm512_setzero_si512();
            _mm512_mask_storeu_epi32(d + j, mk, _mm512_or_si512(_mm512_srli_epi32(lo, 16), _mm512_and_si512(hi, high)));
        }
    }
}

/* ---- packing: float32, bfloat16 or float16 sources, widened to float32 panels ----
 * Each packer is written once over the source type, which every call site fixes, so the compiler
 * emits one copy per type. Widening is exact (bf16: the 16 bits become the high half; f16: F16C). */

#define SD_INLINE __attribute__((always_inline)) static inline

SD_AVX2 SD_INLINE __m256 load8(const void *p, int64_t i, sd_dtype t) {
    if (t == SD_DTYPE_F32) return _mm256_loadu_ps((const float *)p + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
    if (t == SD_DTYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

SD_AVX2 SD_INLINE float load1(const void *p, int64_t i, sd_dtype t) {
    if (t == SD_DTYPE_F32) return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    return t == SD_DTYPE_F16 ? _cvtsh_ss(h) : sd_bf16_to_f32(h);
}

/* A full panel of B = W^T: dst[k * w + j] = src[j * ld + k], j < w (a multiple of 8), k < kc. 8x8
 * transposes in registers. */
SD_AVX2 SD_INLINE void pack_bt(float *dst, const void *src, int64_t ld, int64_t kc, int w, sd_dtype type) {
    for (int jg = 0; jg < w; jg += 8) {
        int64_t s0 = (int64_t)jg * ld;
        int64_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 r0 = load8(src, s0 + k, type), r1 = load8(src, s0 + ld + k, type);
            __m256 r2 = load8(src, s0 + 2 * ld + k, type), r3 = load8(src, s0 + 3 * ld + k, type);
            __m256 r4 = load8(src, s0 + 4 * ld + k, type), r5 = load8(src, s0 + 5 * ld + k, type);
            __m256 r6 = load8(src, s0 + 6 * ld + k, type), r7 = load8(src, s0 + 7 * ld + k, type);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = dst + k * w + jg;
            _mm256_storeu_ps(d + 0 * w, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + 1 * w, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * w, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * w, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * w, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * w, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * w, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * w, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; k < kc; k++)
            for (int j = 0; j < 8; j++) dst[k * w + jg + j] = load1(src, s0 + j * ld + k, type);
    }
}

SD_AVX2 void sd_gemm_pack_bt_avx2(float *dst, const void *src, sd_dtype type, int64_t ld, int64_t kc, int w) {
    if (type == SD_DTYPE_BF16) pack_bt(dst, src, ld, kc, w, SD_DTYPE_BF16);
    else if (type == SD_DTYPE_F16) pack_bt(dst, src, ld, kc, w, SD_DTYPE_F16);
    else pack_bt(dst, src, ld, kc, w, SD_DTYPE_F32);
}

/* A full 6-row A panel from row-major A (conv weights, linear inputs):
 * dst[k * 6 + i] = src[i * ld + k], i < 6, k < kc. 8 k at a time: an 8x8 transpose of the 6 rows plus
 * two zero rows, each output column stored 8 wide at dst + k * 6 in ascending k, so the 2 extra
 * floats are overwritten by the next store; the last column of the panel is stored exactly.
 * (perf: the scalar pack was ~4% of a 256x256 UNet step and slowed the weight-heavy 8x8 convs.) */
SD_AVX2 SD_INLINE void pack_a6(float *dst, const void *src, int64_t ld, int64_t kc, sd_dtype type) {
    int64_t k = 0;
    __m256 z = _mm256_setzero_ps();
    for (; k + 8 <= kc; k += 8) {
        __m256 r0 = load8(src, k, type), r1 = load8(src, ld + k, type);
        __m256 r2 = load8(src, 2 * ld + k, type), r3 = load8(src, 3 * ld + k, type);
        __m256 r4 = load8(src, 4 * ld + k, type), r5 = load8(src, 5 * ld + k, type);
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m256 u4 = _mm256_shuffle_ps(t4, z, 0x44), u5 = _mm256_shuffle_ps(t4, z, 0xEE);
        __m256 u6 = _mm256_shuffle_ps(t5, z, 0x44), u7 = _mm256_shuffle_ps(t5, z, 0xEE);
        __m256 c[8] = {_mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                       _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                       _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                       _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
        float *d = dst + k * 6;
        for (int j = 0; j < 7; j++) _mm256_storeu_ps(d + j * 6, c[j]);
        float last[8];
        _mm256_storeu_ps(last, c[7]);
        memcpy(d + 42, last, 6 * sizeof(float));
    }
    for (; k < kc; k++)
        for (int i = 0; i < 6; i++) dst[k * 6 + i] = load1(src, i * ld + k, type);
}

SD_AVX2 void sd_gemm_pack_a6_avx2(float *dst, const void *src, sd_dtype type, int64_t ld, int64_t kc) {
    if (type == SD_DTYPE_BF16) pack_a6(dst, src, ld, kc, SD_DTYPE_BF16);
    else if (type == SD_DTYPE_F16) pack_a6(dst, src, ld, kc, SD_DTYPE_F16);
    else pack_a6(dst, src, ld, kc, SD_DTYPE_F32);
}

SD_AVX2 static void widen_avx2(float *dst, const void *src, sd_dtype type, int64_t n) {
    int64_t i = 0;
    if (type == SD_DTYPE_F16)
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(src, i, SD_DTYPE_F16));
    else if (type == SD_DTYPE_BF16)
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(src, i, SD_DTYPE_BF16));
    for (; i < n; i++) dst[i] = load1(src, i, type);
}

void sd_cpu_widen(float *dst, const void *src, sd_dtype type, int64_t n) {
    if (type == SD_DTYPE_F32) memcpy(dst, src, (size_t)n * sizeof(float));
    else if (sd_cpu_vec_avx2() && sd_cpu_has_f16c()) widen_avx2(dst, src, type, n);
    else sd_convert_to_f32(dst, src, type, (size_t)n);
}

/* ---- AVX2 row kernels ---- */

/* expf for x in [-87.3, 88.0] (clamped outside): n = round(x log2 e), r = x - n ln2 (two-part ln2),
 * exp(r) by the Cephes degree-6 polynomial, times 2^n through the exponent bits. */
SD_AVX2 static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), erf by Abramowitz-Stegun 7.1.26 on |z|, sign restored. */
SD_AVX2 static inline __m256 gelu8(__m256 x) {
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    __m256 sign = _mm256_and_ps(z, _mm256_set1_ps(-0.0f));
    __m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(az, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)));
    __m256 erf = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
    erf = _mm256_or_ps(erf, sign);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

SD_AVX2 static inline __m256 silu8(__m256 x) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

SD_AVX2 static inline __m256 act8(__m256 v, int act) {
    if (act == SD_VEC_ACT_SILU) return silu8(v);
    if (act == SD_VEC_ACT_GELU) return gelu8(v);
    return v;
}

SD_AVX2 static void affine_act_avx2(float *y, const float *x, int64_t n, float mul, float add, int act) {
    __m256 vm = _mm256_set1_ps(mul), va = _mm256_set1_ps(add);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, act8(_mm256_fmadd_ps(_mm256_loadu_ps(x + i), vm, va), act));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(t, act8(_mm256_fmadd_ps(_mm256_loadu_ps(t), vm, va), act));
        memcpy(y + i, t, (size_t)(n - i) * sizeof(float));
    }
}

SD_AVX2 static void geglu_avx2(float *y, const float *hid, const float *gate, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(hid + i), gelu8(_mm256_loadu_ps(gate + i))));
    if (i < n) {
        float h[8] = {0}, g[8] = {0};
        memcpy(h, hid + i, (size_t)(n - i) * sizeof(float));
        memcpy(g, gate + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(h, _mm256_mul_ps(_mm256_loadu_ps(h), gelu8(_mm256_loadu_ps(g))));
        memcpy(y + i, h, (size_t)(n - i) * sizeof(float));
    }
}

SD_AVX2 static float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

SD_AVX2 static float max_avx2(const float *x, int64_t n) {
    float m = x[0];
    int64_t i = 0;
    if (n >= 8) {
        __m256 v = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) v = _mm256_max_ps(v, _mm256_loadu_ps(x + i));
        __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
        m = _mm_cvtss_f32(s);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

SD_AVX2 static float exp_sum_avx2(float *x, int64_t n, float sub) {
    __m256 vs = _mm256_set1_ps(sub), acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float s = hsum8(acc);
    if (i < n) {
        float t[8];
        for (int j = 0; j < 8; j++) t[j] = i + j < n ? x[i + j] : sub - 100.0f;
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(t), vs));
        _mm256_storeu_ps(t, e);
        for (int64_t j = 0; j < n - i; j++) {
            x[i + j] = t[j];
            s += t[j];
        }
    }
    return s;
}

/* Float lanes within a call (callers pass rows of at most a few thousand floats), double across. */
SD_AVX2 static void sums_avx2(const float *x, int64_t n, float shift, double s[2]) {
    __m256 vs = _mm256_set1_ps(shift), a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vs);
        a = _mm256_add_ps(a, d);
        b = _mm256_fmadd_ps(d, d, b);
    }
    double sa = hsum8(a), sb = hsum8(b);
    for (; i < n; i++) {
        double d = (double)x[i] - shift;
        sa += d;
        sb += d * d;
    }
    s[0] += sa;
    s[1] += sb;
}

SD_AVX2 static void softmax_panel_avx2(float *s, int64_t nk, int nr, float *m, float *l, float *corr) {
    for (int q = 0; q < nr; q += 8) {
        __m256 bm = _mm256_loadu_ps(m + q);
        for (int64_t j = 0; j < nk; j++) bm = _mm256_max_ps(bm, _mm256_loadu_ps(s + j * nr + q));
        __m256 sum = _mm256_setzero_ps();
        for (int64_t j = 0; j < nk; j++) {
            __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j * nr + q), bm));
            _mm256_storeu_ps(s + j * nr + q, e);
            sum = _mm256_add_ps(sum, e);
        }
        /* lanes whose old max is -inf (first block) get corr 0; their l and acc are 0 anyway */
        __m256 c = exp8(_mm256_sub_ps(_mm256_loadu_ps(m + q), bm));
        _mm256_storeu_ps(corr + q, c);
        _mm256_storeu_ps(l + q, _mm256_fmadd_ps(_mm256_loadu_ps(l + q), c, sum));
        _mm256_storeu_ps(m + q, bm);
    }
}

static const sd_cpu_vec g_avx2_vec = {"avx2", affine_act_avx2, geglu_avx2,        max_avx2,
                                      exp_sum_avx2, sums_avx2, softmax_panel_avx2};

const sd_cpu_vec *sd_cpu_vec_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &g_avx2_vec : NULL;
}

#else /* not x86-64: the dispatch never selects these */

void sd_gemm_pack_bt_avx2(float *dst, const void *src, sd_dtype type, int64_t ld, int64_t kc, int w) {}
void sd_gemm_pack_a6_avx2(float *dst, const void *src, sd_dtype type, int64_t ld, int64_t kc) {}
void sd_gemm_kernel_avx2_6x16(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n, bool acc) {}
void sd_gemm_kernel_avx512_12x32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                                 bool acc) {}
void sd_gemm_kernel_avx512bf16_12x32(int64_t kp, const uint16_t *a, const uint16_t *b, float *c, int64_t ldc, int m,
                                     int n, bool acc) {}
void sd_gemm_panel_to_bf16_pairs_avx512(uint16_t *dst, const float *src, int64_t kc, int w) {}
const sd_cpu_vec *sd_cpu_vec_avx2(void) { return NULL; }
void sd_cpu_widen(float *dst, const void *src, sd_dtype type, int64_t n) {
    sd_convert_to_f32(dst, src, type, (size_t)n);
}

#endif
