/* cpu_winograd.c — 3x3, stride 1, padding 1 convolutions by Winograd's minimal filtering
 * F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
 *
 * Each 4x4 output tile comes from a 6x6 input tile d and a 3x3 filter g as
 *     Y = A^T [ (G g G^T) (.) (B^T d B) ] A
 * so a channel pair costs 36 multiplies per tile instead of 144: the 36 element-wise products,
 * summed over input channels, are 36 independent GEMMs (Co x Ci) . (Ci x tiles), run on the SGEMM
 * micro-kernel. For TAESD's 64-channel layers (64 x 576 implicit GEMMs, the worst shape for the
 * direct path) that is a quarter of the multiplies.
 *
 * Work is split into blocks of NR tiles (one B panel of the micro-kernel: 16 with AVX2) in one
 * tile row; per block, on one thread: input transform of every channel into V[36][Ci][NR] (written
 * straight in the packed-panel layout), 36 GEMMs into M[36][Co][NR], output transform (+ bias)
 * into the image. The filters are transformed once per call into packed A panels (in double, then
 * rounded). With AVX2 the transforms run 8 tiles per vector: a row's 32 + 2 inputs are split into
 * the 6 tap vectors by in-lane shuffles, which put tiles in the lane order 0 2 4 6 | 1 3 5 7; the
 * output transform undoes the same shuffle, so the order never shows.
 *
 * Numerics: exact in real arithmetic; in float32 the transforms add rounding of about the size of
 * the direct sum's (relative errors ~1e-6 on random data, test_ops checks 1e-5), well inside the
 * goldens' 1e-4. */
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_winograd.h"

enum { TILE = 4, IN_TILE = 6, NXI = 36 };

/* ---- the 1-D transforms (B^T, A^T, G), scalar ---- */

static inline void bt6(const float d[6], float r[6]) {
    r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    r[1] = (d[3] + d[4]) - 4.0f * (d[1] + d[2]);
    r[2] = (d[4] - d[3]) + 4.0f * (d[1] - d[2]);
    r[3] = (d[4] - d[2]) + 2.0f * (d[3] - d[1]);
    r[4] = (d[4] - d[2]) - 2.0f * (d[3] - d[1]);
    r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

static inline void at6(const float m[6], float y[4]) {
    float a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], e = m[3] - m[4];
    y[0] = m[0] + a + c;
    y[1] = b + 2.0f * e;
    y[2] = a + 4.0f * c;
    y[3] = b + 8.0f * e + m[5];
}

static inline void g3(const double g[3], double u[6]) {
    u[0] = g[0] / 4.0;
    u[1] = -(g[0] + g[1] + g[2]) / 6.0;
    u[2] = -(g[0] - g[1] + g[2]) / 6.0;
    u[3] = g[0] / 24.0 + g[1] / 12.0 + g[2] / 6.0;
    u[4] = g[0] / 24.0 - g[1] / 12.0 + g[2] / 6.0;
    u[5] = g[2];
}

bool sd_cpu_winograd_applies(const sd_cpu_state *cpu, int64_t ci, int64_t co, int64_t h, int64_t w, int64_t k,
                             int stride, int padding) {
    (void)cpu;
    /* enough input channels for the GEMMs to pay (few output channels are fine: TAESD's last conv
     * to RGB gains the most), a row of tiles at least one block wide (a 16-tile block is 64
     * pixels), and few enough channels that a block's V and M stay in L2 beside the panels */
    return k == 3 && stride == 1 && padding == 1 && ci >= 16 && ci <= 256 && co <= 256 && w >= 64 && h >= 8;
}

/* ---- filters: U = G g G^T, packed as the micro-kernel's A panels, one set per xi ---- */

typedef struct filter_job {
    const sd_tensor *weight;
    float *up; /* [36][panels][ci][mr] */
    int64_t ci, co, panels;
    int mr;
} filter_job;

static double weight_at(const sd_tensor *w, int64_t i) {
    if (w->dtype == SD_DTYPE_F32) return ((const float *)w->data)[i];
    uint16_t h = ((const uint16_t *)w->data)[i];
    return w->dtype == SD_DTYPE_F16 ? sd_f16_to_f32(h) : sd_bf16_to_f32(h);
}

static void filter_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const filter_job *j = ctx;
    for (int64_t o = begin; o < end; o++) {
        int64_t p = o / j->mr, i = o % j->mr;
        for (int64_t c = 0; c < j->ci; c++) {
            double u[6][6] = {{0}};
            if (o < j->co) {
                double g[3][3], t[6][3]; /* t = G g (columns of g), then u = t G^T (rows of t) */
                for (int a = 0; a < 9; a++) g[a / 3][a % 3] = weight_at(j->weight, (o * j->ci + c) * 9 + a);
                for (int col = 0; col < 3; col++) {
                    double gc[3] = {g[0][col], g[1][col], g[2][col]}, tc[6];
                    g3(gc, tc);
                    for (int r = 0; r < 6; r++) t[r][col] = tc[r];
                }
                for (int r = 0; r < 6; r++) g3(t[r], u[r]);
            }
            for (int xi = 0; xi < NXI; xi++)
                j->up[((xi * j->panels + p) * j->ci + c) * j->mr + i] = (float)u[xi / 6][xi % 6];
        }
    }
}

/* ---- per block ---- */

typedef struct wino_job {
    const float *in; /* [N, Ci, H, W] */
    float *out;      /* [N, Co, H, W] */
    const float *bias;
    const float *residual; /* out's shape, added before the activation; or NULL */
    bool relu;
    const float *up;
    int64_t ci, co, h, w, tiles_y, blocks_x, panels;
    int nr;
    const sd_gemm_kernel *kern;
    float *const *ws;
    bool avx2;
} wino_job;

/* rows[r][x], r < 6, x < 4 nr + 2: input rows y0 - 1 + r, columns x0 - 1 + x, zero outside. */
static void load_rows(const wino_job *j, const float *plane, int64_t y0, int64_t x0, float *rows, int64_t rw) {
    for (int r = 0; r < IN_TILE; r++) {
        float *dst = rows + r * rw;
        int64_t y = y0 - 1 + r;
        if (y < 0 || y >= j->h) {
            memset(dst, 0, (size_t)rw * sizeof(float));
            continue;
        }
        const float *src = plane + y * j->w;
        int64_t lo = x0 - 1 < 0 ? 1 : 0, hi = j->w - (x0 - 1); /* valid x in [lo, hi) */
        if (hi > rw) hi = rw;
        for (int64_t x = 0; x < lo; x++) dst[x] = 0.0f;
        if (hi > lo) memcpy(dst + lo, src + x0 - 1 + lo, (size_t)(hi - lo) * sizeof(float));
        for (int64_t x = hi > lo ? hi : lo; x < rw; x++) dst[x] = 0.0f;
    }
}

/* V[xi][c][t] for the nr tiles of a block, from rows (scalar). */
static void input_tiles_scalar(const float *rows, int64_t rw, float *v, int64_t xi_stride, int nr) {
    for (int t = 0; t < nr; t++) {
        float e[6][6];
        for (int r = 0; r < 6; r++) bt6(rows + r * rw + 4 * t, e[r]); /* along x */
        for (int x = 0; x < 6; x++) {
            float col[6] = {e[0][x], e[1][x], e[2][x], e[3][x], e[4][x], e[5][x]}, o[6];
            bt6(col, o); /* along y */
            for (int y = 0; y < 6; y++) v[(y * 6 + x) * xi_stride + t] = o[y];
        }
    }
}

/* Output tile rows from M[xi][o][t] (+ bias) into obuf[4][4 nr] (scalar). */
static void output_tiles_scalar(const float *m, int64_t xi_stride, float bias, float *obuf, int nr) {
    for (int t = 0; t < nr; t++) {
        float s[4][6];
        for (int x = 0; x < 6; x++) {
            float col[6], y4[4];
            for (int y = 0; y < 6; y++) col[y] = m[(y * 6 + x) * xi_stride + t];
            at6(col, y4); /* along y */
            for (int i = 0; i < 4; i++) s[i][x] = y4[i];
        }
        for (int i = 0; i < 4; i++) {
            float y4[4];
            at6(s[i], y4); /* along x */
            for (int q = 0; q < 4; q++) obuf[i * 4 * nr + 4 * t + q] = y4[q] + bias;
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define WINO_AVX2 __attribute__((target("avx2,fma")))

/* The 4 taps x[4t + q], q < 4, of 8 tiles from 32 consecutive floats; tiles in lane order
 * 0 2 4 6 | 1 3 5 7. */
WINO_AVX2 static inline void split4(const float *x, __m256 q[4]) {
    __m256 a0 = _mm256_loadu_ps(x), a1 = _mm256_loadu_ps(x + 8), a2 = _mm256_loadu_ps(x + 16),
           a3 = _mm256_loadu_ps(x + 24);
    __m256 u0 = _mm256_unpacklo_ps(a0, a1), u1 = _mm256_unpackhi_ps(a0, a1);
    __m256 u2 = _mm256_unpacklo_ps(a2, a3), u3 = _mm256_unpackhi_ps(a2, a3);
    q[0] = _mm256_shuffle_ps(u0, u2, 0x44), q[1] = _mm256_shuffle_ps(u0, u2, 0xEE);
    q[2] = _mm256_shuffle_ps(u1, u3, 0x44), q[3] = _mm256_shuffle_ps(u1, u3, 0xEE);
}

/* The inverse: 4 vectors of per-tile values (lane order as above) to 32 consecutive floats. */
WINO_AVX2 static inline void merge4(const __m256 q[4], float *x) {
    __m256 u0 = _mm256_shuffle_ps(q[0], q[1], 0x44), u2 = _mm256_shuffle_ps(q[0], q[1], 0xEE);
    __m256 u1 = _mm256_shuffle_ps(q[2], q[3], 0x44), u3 = _mm256_shuffle_ps(q[2], q[3], 0xEE);
    _mm256_storeu_ps(x, _mm256_shuffle_ps(u0, u1, 0x88));
    _mm256_storeu_ps(x + 8, _mm256_shuffle_ps(u0, u1, 0xDD));
    _mm256_storeu_ps(x + 16, _mm256_shuffle_ps(u2, u3, 0x88));
    _mm256_storeu_ps(x + 24, _mm256_shuffle_ps(u2, u3, 0xDD));
}

WINO_AVX2 static inline void bt6v(const __m256 d[6], __m256 r[6]) {
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f);
    r[0] = _mm256_add_ps(_mm256_fnmadd_ps(five, d[2], _mm256_mul_ps(four, d[0])), d[4]);
    r[1] = _mm256_fnmadd_ps(four, _mm256_add_ps(d[1], d[2]), _mm256_add_ps(d[3], d[4]));
    r[2] = _mm256_fmadd_ps(four, _mm256_sub_ps(d[1], d[2]), _mm256_sub_ps(d[4], d[3]));
    __m256 a = _mm256_sub_ps(d[4], d[2]), b = _mm256_sub_ps(d[3], d[1]);
    r[3] = _mm256_fmadd_ps(two, b, a);
    r[4] = _mm256_fnmadd_ps(two, b, a);
    r[5] = _mm256_add_ps(_mm256_fnmadd_ps(five, d[3], _mm256_mul_ps(four, d[1])), d[5]);
}

WINO_AVX2 static inline void at6v(const __m256 m[6], __m256 y[4]) {
    __m256 a = _mm256_add_ps(m[1], m[2]), b = _mm256_sub_ps(m[1], m[2]);
    __m256 c = _mm256_add_ps(m[3], m[4]), e = _mm256_sub_ps(m[3], m[4]);
    y[0] = _mm256_add_ps(_mm256_add_ps(m[0], a), c);
    y[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), e, b);
    y[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), c, a);
    y[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), e, b), m[5]);
}

WINO_AVX2 static void input_tiles_avx2(const float *rows, int64_t rw, float *v, int64_t xi_stride, int nr) {
    for (int t = 0; t < nr; t += 8) {
        __m256 e[6][6];
        for (int r = 0; r < 6; r++) {
            __m256 d[8];
            split4(rows + r * rw + 4 * t, d);     /* taps 0..3 */
            split4(rows + r * rw + 4 * t + 4, d + 4); /* taps 4, 5 are the next tile's 0, 1 */
            __m256 taps[6] = {d[0], d[1], d[2], d[3], d[4], d[5]};
            bt6v(taps, e[r]);
        }
        for (int x = 0; x < 6; x++) {
            __m256 col[6] = {e[0][x], e[1][x], e[2][x], e[3][x], e[4][x], e[5][x]}, o[6];
            bt6v(col, o);
            for (int y = 0; y < 6; y++) _mm256_storeu_ps(v + (y * 6 + x) * xi_stride + t, o[y]);
        }
    }
}

/* Output tile rows from M[xi][o][t] (+ bias), then + res and ReLU when given, into dst rows of
 * stride ld (an obuf of 4 nr, or the image itself for a block wholly inside it). */
WINO_AVX2 static void output_tiles_avx2(const float *m, int64_t xi_stride, float bias, float *dst, int64_t ld,
                                        const float *res, bool relu, int nr) {
    const __m256 bv = _mm256_set1_ps(bias), zero = _mm256_setzero_ps();
    for (int t = 0; t < nr; t += 8) {
        __m256 s[4][6];
        for (int x = 0; x < 6; x++) {
            __m256 col[6], y4[4];
            for (int y = 0; y < 6; y++) col[y] = _mm256_loadu_ps(m + (y * 6 + x) * xi_stride + t);
            at6v(col, y4);
            for (int i = 0; i < 4; i++) s[i][x] = y4[i];
        }
        for (int i = 0; i < 4; i++) {
            __m256 y4[4];
            at6v(s[i], y4);
            for (int q = 0; q < 4; q++) y4[q] = _mm256_add_ps(y4[q], bv);
            float *row = dst + i * ld + 4 * t;
            merge4(y4, row);
            if (res || relu) { /* the fused epilogue, on the 32 floats just written (in L1) */
                const float *rr = res ? res + i * ld + 4 * t : NULL;
                for (int q = 0; q < 32; q += 8) {
                    __m256 y = _mm256_loadu_ps(row + q);
                    if (rr) y = _mm256_add_ps(y, _mm256_loadu_ps(rr + q));
                    if (relu) y = _mm256_max_ps(zero, y); /* NaN passes, as in the scalar path and torch */
                    _mm256_storeu_ps(row + q, y);
                }
            }
        }
    }
}
#else
static void input_tiles_avx2(const float *rows, int64_t rw, float *v, int64_t xi_stride, int nr) {
    input_tiles_scalar(rows, rw, v, xi_stride, nr);
}
static void output_tiles_avx2(const float *m, int64_t xi_stride, float bias, float *dst, int64_t ld,
                              const float *res, bool relu, int nr) {
    (void)m, (void)xi_stride, (void)bias, (void)dst, (void)ld, (void)res, (void)relu, (void)nr; /* never chosen */
}
#endif

/* Workspace floats a block needs: V, M, the input rows and the output rows. */
static int64_t block_floats(int64_t ci, int64_t co, int nr) {
    int64_t rw = 4 * (int64_t)nr + 8;
    return NXI * ci * nr + NXI * co * nr + IN_TILE * rw + TILE * 4 * (int64_t)nr + 64;
}

static void run_blocks(void *ctx, int64_t begin, int64_t end, int thread) {
    const wino_job *j = ctx;
    const int nr = j->nr, mr = j->kern->mr;
    const int64_t rw = 4 * (int64_t)nr + 8;
    float *v = j->ws[thread], *m = v + NXI * j->ci * nr, *rows = m + NXI * j->co * nr, *obuf = rows + IN_TILE * rw;
    for (int64_t blk = begin; blk < end; blk++) {
        int64_t b = blk / (j->tiles_y * j->blocks_x), rest = blk % (j->tiles_y * j->blocks_x);
        int64_t y0 = (rest / j->blocks_x) * TILE, x0 = (rest % j->blocks_x) * TILE * nr;
        const float *img = j->in + b * j->ci * j->h * j->w;
        /* a block whose 6 x (4 nr + 4) input window lies inside the image reads it in place */
        bool inside = y0 >= 1 && y0 + 5 <= j->h && x0 >= 1 && x0 - 1 + rw - 4 <= j->w;
        for (int64_t c = 0; c < j->ci; c++) {
            const float *plane = img + c * j->h * j->w, *src = rows;
            int64_t ld = rw;
            if (inside && j->avx2) {
                src = plane + (y0 - 1) * j->w + (x0 - 1), ld = j->w;
                if (c + 1 < j->ci) /* the next channel's window, while this one is transformed */
                    for (int r = 0; r < IN_TILE; r++) __builtin_prefetch(src + j->h * j->w + r * j->w);
            } else {
                load_rows(j, plane, y0, x0, rows, rw);
            }
            if (j->avx2) input_tiles_avx2(src, ld, v + c * nr, j->ci * nr, nr);
            else input_tiles_scalar(src, ld, v + c * nr, j->ci * nr, nr);
        }
        for (int xi = 0; xi < NXI; xi++) {
            const float *vp = v + xi * j->ci * nr;
            for (int64_t p = 0; p < j->panels; p++) {
                int rows_here = (int)(j->co - p * mr < mr ? j->co - p * mr : mr);
                j->kern->run(j->ci, j->up + (xi * j->panels + p) * j->ci * mr, vp, m + (xi * j->co + p * mr) * nr, nr,
                             rows_here, nr, false);
            }
        }
        int64_t ny = j->h - y0 < TILE ? j->h - y0 : TILE, nx = j->w - x0 < TILE * nr ? j->w - x0 : TILE * nr;
        int64_t img_off = b * j->co * j->h * j->w;
        bool full = ny == TILE && nx == TILE * nr;
        for (int64_t o = 0; o < j->co; o++) {
            float bias = j->bias ? j->bias[o] : 0.0f;
            int64_t at0 = img_off + (o * j->h + y0) * j->w + x0;
            if (j->avx2 && full) { /* straight into the image, epilogue included */
                output_tiles_avx2(m + o * nr, j->co * nr, bias, j->out + at0, j->w,
                                  j->residual ? j->residual + at0 : NULL, j->relu, nr);
                continue;
            }
            if (j->avx2) output_tiles_avx2(m + o * nr, j->co * nr, bias, obuf, TILE * nr, NULL, false, nr);
            else output_tiles_scalar(m + o * nr, j->co * nr, bias, obuf, nr);
            for (int64_t i = 0; i < ny; i++) {
                int64_t at = img_off + (o * j->h + y0 + i) * j->w + x0;
                float *dst = j->out + at;
                const float *src = obuf + i * TILE * nr, *res = j->residual ? j->residual + at : NULL;
                if (!res && !j->relu) {
                    memcpy(dst, src, (size_t)nx * sizeof(float));
                    continue;
                }
                for (int64_t x = 0; x < nx; x++) { /* the epilogue, while the row is in L1 */
                    float y = src[x] + (res ? res[x] : 0.0f);
                    dst[x] = j->relu && y < 0.0f ? 0.0f : y;
                }
            }
        }
    }
}

void sd_cpu_conv3x3_winograd(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight,
                             const sd_tensor *bias, const sd_tensor *residual, sd_activation act) {
    sd_cpu_state *cpu = sd_cpu(be);
    const sd_gemm_kernel *kern = cpu->gemm;
    int64_t n = in->shape[0], ci = in->shape[1], h = in->shape[2], w = in->shape[3], co = out->shape[1];
    int nr = kern->nr, mr = kern->mr;
    int64_t panels = (co + mr - 1) / mr;
    float *up = sd_cpu_scratch(be, (size_t)(NXI * panels * mr * ci));
    int64_t need = block_floats(ci, co, nr), gemm_ws = sd_gemm_workspace_floats(kern);
    float *const *ws = sd_cpu_thread_scratch(be, (size_t)(need > gemm_ws ? need : gemm_ws));
    if (!up || !ws) return;
    filter_job fj = {weight, up, ci, co, panels, mr};
    sd_pool_for(cpu->pool, panels * mr, 1, filter_rows, &fj);
    /* the transforms' 8-lane path needs whole groups of 8 tiles per block */
    bool avx2 = cpu->vec == sd_cpu_vec_avx2() && cpu->vec != NULL && nr % 8 == 0;
    int64_t tiles_y = (h + TILE - 1) / TILE, blocks_x = (w + TILE * nr - 1) / (TILE * nr);
    wino_job j = {sd_f32(in), sd_f32(out), bias ? sd_f32(bias) : NULL, residual ? sd_f32(residual) : NULL,
                  act == SD_ACT_RELU, up, ci, co, h, w, tiles_y, blocks_x, panels, nr, kern, ws, avx2};
    sd_pool_for(cpu->pool, n * tiles_y * blocks_x, 1, run_blocks, &j);
}
