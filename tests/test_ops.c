/* test_ops.c — every CPU op against a plain, obviously-correct reference on random inputs of
 * awkward sizes (odd widths, one-row batches, sequences that are not multiples of the tiles),
 * plus the sticky-error behaviour of the op interface. The SIMD paths are checked with every
 * kernel this CPU can run (and the generic C kernel with other panel shapes, which exercises the
 * GEMM driver as the AVX-512 12x32 kernel would), the thread pool with more threads than cores. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_winograd.h"
#include "base/rng.h"
#include "base/threads.h"
#include "backend_ops_ref.h"
#include "check.h"

static sd_rng g_rng;

static float *randn_buf(int64_t n) {
    float *p = malloc((size_t)n * sizeof *p);
    sd_rng_randn(&g_rng, p, n);
    return p;
}

/* w rounded to a 16-bit type (BF16 or F16), and those values widened back to float32 in wide. */
static uint16_t *to16(const float *w, int64_t n, sd_dtype type, float *wide) {
    uint16_t *h = malloc((size_t)n * sizeof *h);
    for (int64_t i = 0; i < n; i++) h[i] = type == SD_DTYPE_F16 ? sd_f32_to_f16(w[i]) : sd_f32_to_bf16(w[i]);
    sd_convert_to_f32(wide, h, type, (size_t)n);
    return h;
}

static const sd_dtype g_w16[2] = {SD_DTYPE_BF16, SD_DTYPE_F16};

static void test_linear(sd_backend *be) {
    static const int64_t dims[][3] = {{1, 1, 1}, {3, 7, 5}, {77, 32, 96}, {13, 130, 17}, {200, 64, 33}};
    for (size_t c = 0; c < sizeof dims / sizeof dims[0]; c++) {
        int64_t m = dims[c][0], k = dims[c][1], n = dims[c][2];
        float *x = randn_buf(m * k), *w = randn_buf(n * k), *b = randn_buf(n);
        float *y = calloc((size_t)(m * n), sizeof *y), *r = calloc((size_t)(m * n), sizeof *r);
        sd_tensor tx = sd_tensor_2d(x, SD_DTYPE_F32, m, k), tw = sd_tensor_2d(w, SD_DTYPE_F32, n, k);
        sd_tensor tb = sd_tensor_make(b, SD_DTYPE_F32, 1, (int64_t[]){n}), ty = sd_tensor_2d(y, SD_DTYPE_F32, m, n);
        sd_op_linear(be, &ty, &tx, &tw, c % 2 ? &tb : NULL);
        ref_linear(r, x, w, c % 2 ? b : NULL, m, k, n);
        double rel = check_rel_error(y, r, (size_t)(m * n));
        CHECK(sd_backend_status(be) == SD_OK && rel < 1e-5, "linear %lldx%lldx%lld: rel %.3g", (long long)m,
              (long long)k, (long long)n, rel);
        /* 16-bit weights are widened while packed: the same numbers as float32 weights of those values */
        for (int t = 0; t < 2; t++) {
            uint16_t *h = to16(w, n * k, g_w16[t], w);
            sd_tensor th = sd_tensor_2d(h, g_w16[t], n, k);
            sd_op_linear(be, &ty, &tx, &tw, c % 2 ? &tb : NULL);
            memcpy(r, y, (size_t)(m * n) * sizeof *r);
            sd_op_linear(be, &ty, &tx, &th, c % 2 ? &tb : NULL);
            CHECK(sd_backend_status(be) == SD_OK && memcmp(r, y, (size_t)(m * n) * sizeof *r) == 0,
                  "linear %lldx%lldx%lld with %s weights == float32 weights of the same values", (long long)m,
                  (long long)k, (long long)n, sd_dtype_name(g_w16[t]));
            free(h);
        }
        free(x), free(w), free(b), free(y), free(r);
    }
}

static void test_attention(sd_backend *be) {
    static const struct {
        int64_t b, tq, tk, c;
        int heads;
        bool causal;
    } cases[] = {
        {1, 1, 1, 8, 1, false},   {2, 77, 77, 32, 4, true},  {1, 77, 77, 24, 3, false},
        {3, 100, 77, 40, 5, false}, {1, 300, 300, 16, 2, true}, {2, 65, 513, 80, 1, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t B = cases[c].b, tq = cases[c].tq, tk = cases[c].tk, C = cases[c].c;
        float *q = randn_buf(B * tq * C), *k = randn_buf(B * tk * C), *v = randn_buf(B * tk * C);
        float *o = calloc((size_t)(B * tq * C), sizeof *o), *r = calloc((size_t)(B * tq * C), sizeof *r);
        sd_tensor tq_ = sd_tensor_3d(q, SD_DTYPE_F32, B, tq, C), tk_ = sd_tensor_3d(k, SD_DTYPE_F32, B, tk, C);
        sd_tensor tv = sd_tensor_3d(v, SD_DTYPE_F32, B, tk, C), to = sd_tensor_3d(o, SD_DTYPE_F32, B, tq, C);
        sd_op_attention(be, &to, &tq_, &tk_, &tv, cases[c].heads, cases[c].causal);
        ref_attention(r, q, k, v, B, tq, tk, C, cases[c].heads, cases[c].causal);
        double rel = check_rel_error(o, r, (size_t)(B * tq * C));
        CHECK(sd_backend_status(be) == SD_OK && rel < 1e-5, "attention case %zu (B%lld Tq%lld Tk%lld C%lld H%d%s): rel %.3g",
              c, (long long)B, (long long)tq, (long long)tk, (long long)C, cases[c].heads, cases[c].causal ? " causal" : "", rel);
        free(q), free(k), free(v), free(o), free(r);
    }
}

static void test_norm_and_elementwise(sd_backend *be) {
    int64_t rows = 13, cols = 37;
    float *x = randn_buf(rows * cols), *g = randn_buf(cols), *b = randn_buf(cols);
    float *y = malloc((size_t)(rows * cols) * sizeof *y), *r = malloc((size_t)(rows * cols) * sizeof *r);
    sd_tensor tx = sd_tensor_2d(x, SD_DTYPE_F32, rows, cols), ty = sd_tensor_2d(y, SD_DTYPE_F32, rows, cols);
    sd_tensor tg = sd_tensor_make(g, SD_DTYPE_F32, 1, (int64_t[]){cols}), tb = sd_tensor_make(b, SD_DTYPE_F32, 1, (int64_t[]){cols});
    sd_op_layer_norm(be, &ty, &tx, &tg, &tb, 1e-5f);
    for (int64_t i = 0; i < rows; i++) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < cols; j++) mean += x[i * cols + j];
        mean /= cols;
        for (int64_t j = 0; j < cols; j++) var += (x[i * cols + j] - mean) * (x[i * cols + j] - mean);
        var /= cols;
        for (int64_t j = 0; j < cols; j++) r[i * cols + j] = (float)((x[i * cols + j] - mean) / sqrt(var + 1e-5) * g[j] + b[j]);
    }
    CHECK(check_rel_error(y, r, (size_t)(rows * cols)) < 1e-6, "layer_norm rel %.3g", check_rel_error(y, r, (size_t)(rows * cols)));

    sd_op_softmax(be, &ty, &tx);
    for (int64_t i = 0; i < rows; i++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < cols; j++) mx = fmax(mx, x[i * cols + j]);
        for (int64_t j = 0; j < cols; j++) sum += exp(x[i * cols + j] - mx);
        for (int64_t j = 0; j < cols; j++) r[i * cols + j] = (float)(exp(x[i * cols + j] - mx) / sum);
    }
    CHECK(check_rel_error(y, r, (size_t)(rows * cols)) < 1e-6, "softmax rel %.3g", check_rel_error(y, r, (size_t)(rows * cols)));

    static const sd_activation acts[] = {SD_ACT_GELU, SD_ACT_QUICK_GELU, SD_ACT_SILU};
    for (int a = 0; a < 3; a++) {
        sd_op_activation(be, &ty, &tx, acts[a]);
        for (int64_t i = 0; i < rows * cols; i++) {
            double v = x[i];
            r[i] = (float)(acts[a] == SD_ACT_GELU ? 0.5 * v * (1 + erf(v / sqrt(2.0)))
                           : acts[a] == SD_ACT_QUICK_GELU ? v / (1 + exp(-1.702 * v))
                                                          : v / (1 + exp(-v)));
        }
        CHECK(check_rel_error(y, r, (size_t)(rows * cols)) < 1e-6, "activation %d rel %.3g", a,
              check_rel_error(y, r, (size_t)(rows * cols)));
    }
    sd_op_add(be, &ty, &tx, &tx);
    for (int64_t i = 0; i < rows * cols; i++) r[i] = 2 * x[i];
    CHECK(check_max_abs_diff(y, r, (size_t)(rows * cols)) == 0.0, "add");

    int32_t ids[3] = {5, 0, 12};
    sd_tensor emb = sd_tensor_2d(y, SD_DTYPE_F32, 3, cols);
    sd_op_embedding(be, &emb, &tx, ids);
    CHECK(memcmp(y + cols, x, (size_t)cols * sizeof(float)) == 0 && memcmp(y + 2 * cols, x + 12 * cols, (size_t)cols * 4) == 0,
          "embedding gathers rows");
    CHECK(sd_backend_status(be) == SD_OK, "no op failed");

    /* sticky errors: an out-of-range id fails, and the next op is skipped */
    ids[1] = 13;
    sd_op_embedding(be, &emb, &tx, ids);
    CHECK(sd_backend_status(be) == SD_ERR_ARG, "embedding id outside the table fails");
    memset(y, 0, sizeof(float) * 4);
    sd_op_add(be, &ty, &tx, &tx);
    CHECK(y[0] == 0.0f, "ops after a failure are skipped");
    sd_backend_clear_status(be);
    sd_tensor bad = sd_tensor_2d(y, SD_DTYPE_F32, rows, cols + 1);
    sd_op_linear(be, &bad, &tx, &tx, NULL);
    CHECK(sd_backend_status(be) == SD_ERR_ARG, "linear shape mismatch fails");
    sd_backend_clear_status(be);
    free(x), free(g), free(b), free(y), free(r);
}

/* ---- thread pool ---- */

typedef struct pool_ctx {
    sd_pool *pool;
    atomic_llong sum;
    atomic_int calls;
} pool_ctx;

static void pool_inner(void *ctx, int64_t begin, int64_t end, int thread) {
    pool_ctx *c = ctx;
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&c->sum, i);
}

static void pool_outer(void *ctx, int64_t begin, int64_t end, int thread) {
    pool_ctx *c = ctx;
    atomic_fetch_add(&c->calls, 1);
    if (begin == 0) sd_pool_for(c->pool, 100, 7, pool_inner, c); /* nested: runs serially */
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&c->sum, i);
}

static void test_pool(void) {
    for (int threads = 1; threads <= 5; threads += 2) {
        sd_pool *pool = NULL;
        CHECK_OK(sd_pool_create(&pool, threads));
        if (!pool) continue;
        for (int rep = 0; rep < 200; rep++) { /* back-to-back jobs: the wake/finish handshake */
            pool_ctx c = {pool, 0, 0};
            int64_t n = 1 + rep * 37 % 1000, grain = 1 + rep % 13;
            sd_pool_for(pool, n, grain, pool_outer, &c);
            CHECK(atomic_load(&c.sum) == n * (n - 1) / 2 + 4950 && atomic_load(&c.calls) == (n + grain - 1) / grain,
                  "pool %d threads, n %lld grain %lld: sum %lld", threads, (long long)n, (long long)grain,
                  (long long)atomic_load(&c.sum));
        }
        sd_pool_free(pool);
    }
}

/* ---- GEMM driver and kernels ---- */

static void test_gemm_kernels(sd_backend *be) {
    const sd_gemm_kernel *ks[8];
    int nk = sd_gemm_kernels(ks, 4);
    static const int shapes[][2] = {{4, 8}, {5, 24}, {12, 32}, {6, 16}};
    static const int64_t dims[][3] = {{1, 1, 1}, {7, 13, 5}, {37, 100, 300}, {150, 1030, 17}, {13, 33, 513}};
    sd_pool *pool = NULL;
    CHECK_OK(sd_pool_create(&pool, 3));
    for (int ki = 0; ki < nk + 4; ki++) {
        const sd_gemm_kernel *kern = ki < nk ? ks[ki] : NULL;
        if (ki >= nk) { /* the generic kernel, with panel shapes like other ISAs' kernels */
            if (ki == nk + 3) break; /* ks[nk-1] is the generic 6x16 already */
            kern = sd_gemm_generic_kernel(shapes[ki - nk][0], shapes[ki - nk][1]);
        }
        int64_t wsn = sd_gemm_workspace_floats(kern);
        float *ws[3];
        for (int t = 0; t < 3; t++) ws[t] = malloc((size_t)wsn * sizeof(float));
        for (size_t c = 0; c < sizeof dims / sizeof dims[0]; c++) {
            int64_t m = dims[c][0], n = dims[c][1], k = dims[c][2];
            float *a = randn_buf(m * k), *b = randn_buf(k * n), *bias = randn_buf(m + n);
            float *y = randn_buf(m * n), *r = malloc((size_t)(m * n) * sizeof *r);
            bool a_trans = c % 2, b_trans = (c / 2) % 2, acc = c == 3;
            sd_gemm_bias bk = c % 3 == 0 ? SD_GEMM_BIAS_NONE : c % 3 == 1 ? SD_GEMM_BIAS_ROW : SD_GEMM_BIAS_COL;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double s = acc ? y[i * n + j] : 0.0;
                    for (int64_t t = 0; t < k; t++)
                        s += (double)(a_trans ? a[t * m + i] : a[i * k + t]) * (b_trans ? b[j * k + t] : b[t * n + j]);
                    s += bk == SD_GEMM_BIAS_ROW ? bias[i] : bk == SD_GEMM_BIAS_COL ? bias[j] : 0.0;
                    r[i * n + j] = (float)s;
                }
            sd_gemm_args g = {.m = m, .n = n, .k = k, .c = y, .ldc = n, .bias = bias, .bias_kind = bk, .accumulate = acc};
            g.a = a_trans ? (sd_gemm_operand){.p = a, .rs = 1, .cs = m} : (sd_gemm_operand){.p = a, .rs = k, .cs = 1};
            g.b = b_trans ? (sd_gemm_operand){.p = b, .rs = 1, .cs = k} : (sd_gemm_operand){.p = b, .rs = n, .cs = 1};
            sd_gemm_run(pool, kern, ws, &g);
            double rel = check_rel_error(y, r, (size_t)(m * n));
            CHECK(rel < 1e-5, "gemm %s %lldx%lldx%lld%s%s%s: rel %.3g", kern->name, (long long)m, (long long)n,
                  (long long)k, a_trans ? " A^T" : "", b_trans ? " B^T" : "", acc ? " acc" : "", rel);
            free(a), free(b), free(bias), free(y), free(r);
        }
        for (int t = 0; t < 3; t++) free(ws[t]);
    }
    sd_pool_free(pool);
    sd_gemm_generic_kernel(6, 16);
}

static void ref_conv(float *y, const float *x, const float *w, const float *b, int64_t n, int64_t ci, int64_t h,
                     int64_t wd, int64_t co, int64_t k, int s, int p, int64_t ho, int64_t wo) {
    for (int64_t bi = 0; bi < n; bi++)
        for (int64_t o = 0; o < co; o++)
            for (int64_t oy = 0; oy < ho; oy++)
                for (int64_t ox = 0; ox < wo; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int64_t c = 0; c < ci; c++)
                        for (int64_t ky = 0; ky < k; ky++)
                            for (int64_t kx = 0; kx < k; kx++) {
                                int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                                if (iy >= 0 && iy < h && ix >= 0 && ix < wd)
                                    acc += (double)x[((bi * ci + c) * h + iy) * wd + ix] * w[((o * ci + c) * k + ky) * k + kx];
                            }
                    y[((bi * co + o) * ho + oy) * wo + ox] = (float)acc;
                }
}

static void test_conv(sd_backend *be) {
    static const struct {
        int64_t n, ci, co, h, w, k;
        int s, p;
    } cases[] = {
        {1, 3, 5, 7, 9, 3, 1, 1},   {2, 4, 6, 17, 33, 3, 2, 1}, {3, 5, 7, 8, 8, 1, 1, 0},  {1, 3, 2, 5, 6, 3, 1, 0},
        {1, 20, 37, 19, 21, 3, 1, 1}, {8, 2, 3, 4, 20, 3, 1, 1}, {1, 7, 9, 12, 12, 4, 2, 1}, {1, 33, 17, 6, 40, 1, 1, 0},
        {2, 2, 3, 3, 1, 3, 1, 2},   {1, 3, 4, 9, 11, 5, 1, 2}, /* padding wider than a row */
        /* Winograd F(4x4, 3x3): partial tiles at the right and bottom, channels not multiples of
         * the panels, blocks of tiles past the image, a batch, TAESD's 64 channels */
        {1, 16, 17, 9, 33, 3, 1, 1}, {2, 24, 40, 13, 70, 3, 1, 1}, {1, 64, 64, 20, 100, 3, 1, 1},
        {1, 19, 16, 8, 32, 3, 1, 1}, {3, 33, 23, 11, 129, 3, 1, 1},
        {1, 16, 20, 14, 200, 3, 1, 1}, {2, 32, 3, 10, 140, 3, 1, 1}, /* blocks read and written in place */
        {1, 16, 8, 12, 300, 3, 1, 1}, /* ... also with the AVX-512 kernel's 32-tile blocks */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t n = cases[c].n, ci = cases[c].ci, co = cases[c].co, h = cases[c].h, w = cases[c].w, k = cases[c].k;
        int s = cases[c].s, p = cases[c].p;
        int64_t ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1;
        float *x = randn_buf(n * ci * h * w), *wt = randn_buf(co * ci * k * k), *b = randn_buf(co);
        float *y = calloc((size_t)(n * co * ho * wo), sizeof *y), *r = calloc((size_t)(n * co * ho * wo), sizeof *r);
        sd_tensor tx = sd_tensor_4d(x, SD_DTYPE_F32, n, ci, h, w), tw = sd_tensor_4d(wt, SD_DTYPE_F32, co, ci, k, k);
        sd_tensor tb = sd_tensor_make(b, SD_DTYPE_F32, 1, (int64_t[]){co}), ty = sd_tensor_4d(y, SD_DTYPE_F32, n, co, ho, wo);
        sd_op_conv2d(be, &ty, &tx, &tw, c % 2 ? NULL : &tb, s, p);
        ref_conv(r, x, wt, c % 2 ? NULL : b, n, ci, h, w, co, k, s, p, ho, wo);
        double rel = check_rel_error(y, r, (size_t)(n * co * ho * wo));
        CHECK(sd_backend_status(be) == SD_OK && rel < 1e-5, "conv case %zu (%s): rel %.3g", c, sd_cpu(be)->gemm->name, rel);
        int64_t ny = n * co * ho * wo;
        /* the fused epilogue: relu(conv + bias + residual) */
        float *res = randn_buf(ny);
        sd_tensor tres = sd_tensor_4d(res, SD_DTYPE_F32, n, co, ho, wo);
        for (int64_t i = 0; i < ny; i++) r[i] = r[i] + res[i] > 0.0f ? r[i] + res[i] : 0.0f;
        sd_op_conv2d_fused(be, &ty, &tx, &tw, c % 2 ? NULL : &tb, s, p, &tres, SD_ACT_RELU);
        rel = check_rel_error(y, r, (size_t)ny);
        CHECK(sd_backend_status(be) == SD_OK && rel < 1e-5, "conv case %zu (%s) + residual, relu: rel %.3g", c,
              sd_cpu(be)->gemm->name, rel);
        free(res);
        /* pre-packed weights (the UNet's, sd_backend_pack_conv_weight): the same numbers */
        {
            size_t bytes = sd_backend_conv_weight_bytes(be, &tw);
            void *pk = bytes ? malloc(bytes) : NULL;
            sd_tensor tp;
            CHECK(pk != NULL, "conv case %zu: a packed layout exists", c);
            if (pk) {
                sd_backend_pack_conv_weight(be, &tw, pk, &tp);
                sd_op_conv2d(be, &ty, &tx, &tw, c % 2 ? NULL : &tb, s, p);
                memcpy(r, y, (size_t)ny * sizeof *r);
                sd_op_conv2d(be, &ty, &tx, &tp, c % 2 ? NULL : &tb, s, p);
                bool same = tp.panel == sd_cpu(be)->gemm->mr && memcmp(r, y, (size_t)ny * sizeof *r) == 0;
                /* Winograd (unpacked weights only) may round differently from the packed direct path */
                if (!sd_cpu_winograd_applies(sd_cpu(be), ci, co, h, w, k, s, p))
                    CHECK(sd_backend_status(be) == SD_OK && same, "conv case %zu (%s): packed weights == torch layout", c,
                          sd_cpu(be)->gemm->name);
                else
                    CHECK(sd_backend_status(be) == SD_OK && check_rel_error(y, r, (size_t)ny) < 1e-5,
                          "conv case %zu: packed (direct) vs Winograd", c);
                free(pk);
            }
        }
        for (int t = 0; t < 2; t++) {
            uint16_t *w16 = to16(wt, co * ci * k * k, g_w16[t], wt);
            sd_tensor th = sd_tensor_4d(w16, g_w16[t], co, ci, k, k);
            sd_op_conv2d(be, &ty, &tx, &tw, c % 2 ? NULL : &tb, s, p);
            memcpy(r, y, (size_t)ny * sizeof *r);
            sd_op_conv2d(be, &ty, &tx, &th, c % 2 ? NULL : &tb, s, p);
            CHECK(sd_backend_status(be) == SD_OK && memcmp(r, y, (size_t)ny * sizeof *r) == 0,
                  "conv case %zu (%s) with %s weights == float32 weights of the same values", c,
                  sd_cpu(be)->gemm->name, sd_dtype_name(g_w16[t]));
            size_t bytes = sd_backend_conv_weight_bytes(be, &th);
            void *pk = malloc(bytes ? bytes : 1);
            sd_tensor tp;
            sd_backend_pack_conv_weight(be, &th, pk, &tp);
            sd_op_conv2d(be, &ty, &tx, &tp, c % 2 ? NULL : &tb, s, p);
            bool wino = sd_cpu_winograd_applies(sd_cpu(be), ci, co, h, w, k, s, p);
            CHECK(sd_backend_status(be) == SD_OK && (wino ? check_rel_error(y, r, (size_t)ny) < 1e-5
                                                          : memcmp(r, y, (size_t)ny * sizeof *r) == 0),
                  "conv case %zu (%s): packed %s weights", c, sd_cpu(be)->gemm->name, sd_dtype_name(g_w16[t]));
            free(pk);
            free(w16);
        }
        free(x), free(wt), free(b), free(y), free(r);
    }
    /* the fused epilogue takes ReLU or nothing, and a residual of out's size */
    {
        float x[2 * 3 * 3] = {0}, wt[2 * 2 * 9] = {0}, y[2 * 3 * 3], res[5] = {0};
        sd_tensor tx = sd_tensor_4d(x, SD_DTYPE_F32, 1, 2, 3, 3), tw = sd_tensor_4d(wt, SD_DTYPE_F32, 2, 2, 3, 3);
        sd_tensor ty = sd_tensor_4d(y, SD_DTYPE_F32, 1, 2, 3, 3), tr = sd_tensor_2d(res, SD_DTYPE_F32, 1, 5);
        sd_op_conv2d_fused(be, &ty, &tx, &tw, NULL, 1, 1, NULL, SD_ACT_GELU);
        CHECK(sd_backend_status(be) == SD_ERR_ARG && strstr(sd_last_error(), "epilogue"), "fused GELU refused: %s", sd_last_error());
        sd_backend_clear_status(be);
        sd_op_conv2d_fused(be, &ty, &tx, &tw, NULL, 1, 1, &tr, SD_ACT_RELU);
        CHECK(sd_backend_status(be) == SD_ERR_ARG, "fused residual of 5 floats for 18 refused");
        sd_backend_clear_status(be);
        sd_op_conv2d_fused(be, &ty, &tx, &tw, NULL, 1, 1, &ty, SD_ACT_RELU);
        CHECK(sd_backend_status(be) == SD_ERR_ARG, "fused residual that is out itself refused");
        sd_backend_clear_status(be);
    }
}

/* group norm (+SiLU), GEGLU, upsample, broadcast add, transposes against plain loops */
static void test_image_ops(sd_backend *be) {
    /* the last two are large enough (> 16K floats per chunk) to run on several threads */
    static const int64_t shapes[][4] = {{1, 6, 5, 7}, {2, 64, 9, 9}, {8, 12, 3, 1}, {1, 32, 33, 17}, {2, 64, 40, 33}, {3, 96, 23, 29}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        int64_t n = shapes[c][0], ch = shapes[c][1], h = shapes[c][2], w = shapes[c][3], numel = n * ch * h * w;
        int groups = ch % 32 == 0 ? 32 : ch / 3 > 0 ? 3 : 1;
        float *x = randn_buf(numel), *g = randn_buf(ch), *b = randn_buf(ch);
        for (int64_t i = 0; i < numel; i++) x[i] = x[i] * 3.0f + 5.0f; /* a mean far from 0 */
        float *y = malloc((size_t)(4 * numel) * sizeof *y), *r = malloc((size_t)(4 * numel) * sizeof *r);
        sd_tensor tx = sd_tensor_4d(x, SD_DTYPE_F32, n, ch, h, w), ty = sd_tensor_4d(y, SD_DTYPE_F32, n, ch, h, w);
        sd_tensor tg = sd_tensor_make(g, SD_DTYPE_F32, 1, (int64_t[]){ch}), tb = sd_tensor_make(b, SD_DTYPE_F32, 1, (int64_t[]){ch});
        for (int silu = 0; silu < 2; silu++) {
            sd_op_group_norm(be, &ty, &tx, &tg, &tb, groups, 1e-5f, silu);
            int64_t cpg = ch / groups, sp = h * w;
            for (int64_t bi = 0; bi < n; bi++)
                for (int gi = 0; gi < groups; gi++) {
                    const float *xg = x + (bi * ch + gi * cpg) * sp;
                    double mean = 0, var = 0;
                    for (int64_t i = 0; i < cpg * sp; i++) mean += xg[i];
                    mean /= (double)(cpg * sp);
                    for (int64_t i = 0; i < cpg * sp; i++) var += (xg[i] - mean) * (xg[i] - mean);
                    var /= (double)(cpg * sp);
                    for (int64_t i = 0; i < cpg * sp; i++) {
                        int64_t cc = gi * cpg + i / sp;
                        double v = (xg[i] - mean) / sqrt(var + 1e-5) * g[cc] + b[cc];
                        r[(bi * ch + gi * cpg) * sp + i] = (float)(silu ? v / (1 + exp(-v)) : v);
                    }
                }
            double rel = check_rel_error(y, r, (size_t)numel);
            CHECK(rel < 1e-5, "group_norm%s case %zu (%s): rel %.3g", silu ? "+silu" : "", c, sd_cpu(be)->vec->name, rel);
        }
        sd_tensor tu = sd_tensor_4d(y, SD_DTYPE_F32, n, ch, 2 * h, 2 * w);
        sd_op_upsample_nearest2x(be, &tu, &tx);
        for (int64_t p = 0; p < n * ch; p++)
            for (int64_t i = 0; i < 2 * h; i++)
                for (int64_t j = 0; j < 2 * w; j++) r[(p * 2 * h + i) * 2 * w + j] = x[(p * h + i / 2) * w + j / 2];
        CHECK(check_max_abs_diff(y, r, (size_t)(4 * numel)) == 0.0, "upsample2x case %zu", c);
        sd_op_add_broadcast(be, &ty, &tx, &tg);
        for (int64_t i = 0; i < numel; i++) r[i] = x[i] + g[(i / (h * w)) % ch];
        CHECK(check_max_abs_diff(y, r, (size_t)numel) == 0.0, "add_broadcast case %zu", c);
        sd_tensor ts = sd_tensor_3d(y, SD_DTYPE_F32, n, h * w, ch), tback = sd_tensor_4d(y + numel, SD_DTYPE_F32, n, ch, h, w);
        sd_op_transpose_hw_c(be, &ts, &tx, true);
        for (int64_t bi = 0; bi < n; bi++)
            for (int64_t cc = 0; cc < ch; cc++)
                for (int64_t i = 0; i < h * w; i++) r[(bi * h * w + i) * ch + cc] = x[(bi * ch + cc) * h * w + i];
        CHECK(check_max_abs_diff(y, r, (size_t)numel) == 0.0, "transpose to channels-last case %zu", c);
        sd_op_transpose_hw_c(be, &tback, &ts, false);
        CHECK(check_max_abs_diff(y + numel, x, (size_t)numel) == 0.0, "transpose back case %zu", c);
        /* GEGLU on rows of 2F = ch * w */
        int64_t rows = n * h, f = ch * w / 2 > 0 ? ch * w / 2 : 1;
        sd_tensor gin = sd_tensor_2d(x, SD_DTYPE_F32, rows, 2 * f), gout = sd_tensor_2d(y, SD_DTYPE_F32, rows, f);
        sd_op_geglu(be, &gout, &gin);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < f; j++) {
                double hv = x[i * 2 * f + j], gate = x[i * 2 * f + f + j];
                r[i * f + j] = (float)(hv * 0.5 * gate * (1 + erf(gate / sqrt(2.0))));
            }
        CHECK(check_rel_error(y, r, (size_t)(rows * f)) < 1e-5, "geglu case %zu: rel %.3g", c,
              check_rel_error(y, r, (size_t)(rows * f)));
        CHECK(sd_backend_status(be) == SD_OK, "image ops case %zu ran", c);
        free(x), free(g), free(b), free(y), free(r);
    }
}

/* bf16 math: with a kernel that has a bf16 path, linear and (direct) conv equal the float32
 * reference on bf16-rounded operands up to float32 accumulation; without one, they are exactly the
 * float32 results. Odd K checks the zero-padded last pair. */
static void round_bf16(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = sd_bf16_to_f32(sd_f32_to_bf16(x[i]));
}

static void test_bf16_math(sd_backend *be) {
    bool native = sd_cpu(be)->gemm->run_bf16 != NULL;
    static const int64_t dims[][3] = {{1, 1, 1}, {3, 7, 5}, {77, 33, 96}, {13, 301, 17}, {200, 64, 33}};
    for (size_t c = 0; c < sizeof dims / sizeof dims[0]; c++) {
        int64_t m = dims[c][0], k = dims[c][1], n = dims[c][2];
        float *x = randn_buf(m * k), *w = randn_buf(n * k), *b = randn_buf(n);
        float *y = calloc((size_t)(m * n), sizeof *y), *y32 = calloc((size_t)(m * n), sizeof *y32);
        float *r = calloc((size_t)(m * n), sizeof *r);
        sd_tensor tx = sd_tensor_2d(x, SD_DTYPE_F32, m, k), tw = sd_tensor_2d(w, SD_DTYPE_F32, n, k);
        sd_tensor tb = sd_tensor_make(b, SD_DTYPE_F32, 1, (int64_t[]){n}), ty = sd_tensor_2d(y, SD_DTYPE_F32, m, n);
        sd_tensor ty32 = sd_tensor_2d(y32, SD_DTYPE_F32, m, n);
        sd_op_linear(be, &ty32, &tx, &tw, &tb);
        be->bf16_math = true;
        sd_op_linear(be, &ty, &tx, &tw, &tb);
        be->bf16_math = false;
        if (native) {
            round_bf16(x, m * k), round_bf16(w, n * k);
            ref_linear(r, x, w, b, m, k, n);
            double rel = check_rel_error(y, r, (size_t)(m * n));
            CHECK(sd_backend_status(be) == SD_OK && rel < 1e-5, "bf16 linear %lldx%lldx%lld (%s): rel %.3g to the "
                  "reference on rounded operands", (long long)m, (long long)k, (long long)n, sd_cpu(be)->gemm->name, rel);
            CHECK(m * k < 8 || memcmp(y, y32, (size_t)(m * n) * sizeof *y) != 0, "bf16 linear %lldx%lldx%lld differs "
                  "from float32", (long long)m, (long long)k, (long long)n);
        } else {
            CHECK(memcmp(y, y32, (size_t)(m * n) * sizeof *y) == 0, "no bf16 kernel (%s): bf16 math is float32",
                  sd_cpu(be)->gemm->name);
        }
        free(x), free(w), free(b), free(y), free(y32), free(r);
    }
    /* a direct-path conv (stride 2) */
    int64_t N = 2, ci = 5, co = 14, h = 9, wd = 13, kk = 3, ho = 5, wo = 7;
    float *x = randn_buf(N * ci * h * wd), *wt = randn_buf(co * ci * 9), *b = randn_buf(co);
    float *y = calloc((size_t)(N * co * ho * wo), sizeof *y), *r = calloc((size_t)(N * co * ho * wo), sizeof *r);
    sd_tensor tx = sd_tensor_4d(x, SD_DTYPE_F32, N, ci, h, wd), tw = sd_tensor_4d(wt, SD_DTYPE_F32, co, ci, kk, kk);
    sd_tensor tb = sd_tensor_make(b, SD_DTYPE_F32, 1, (int64_t[]){co}), ty = sd_tensor_4d(y, SD_DTYPE_F32, N, co, ho, wo);
    be->bf16_math = true;
    sd_op_conv2d(be, &ty, &tx, &tw, &tb, 2, 1);
    be->bf16_math = false;
    if (native) round_bf16(x, N * ci * h * wd), round_bf16(wt, co * ci * 9);
    ref_conv(r, x, wt, b, N, ci, h, wd, co, kk, 2, 1, ho, wo);
    double rel = check_rel_error(y, r, (size_t)(N * co * ho * wo));
    CHECK(sd_backend_status(be) == SD_OK && rel < 1e-5, "bf16 conv (%s): rel %.3g", sd_cpu(be)->gemm->name, rel);
    free(x), free(wt), free(b), free(y), free(r);
}

/* The AVX-512 rounding of panels to bf16 pairs equals the scalar one bit for bit (NaN, odd kc,
 * widths that are not multiples of 16). Needs an AVX-512 CPU: elsewhere it says so and checks
 * nothing (the device run covers it: bench/RESULTS.md). */
static void test_bf16_pairs(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (!__builtin_cpu_supports("avx512f")) {
        printf("bf16 pair rounding, AVX-512: not run (no AVX-512 on this CPU)\n");
        return;
    }
    static const int widths[] = {12, 32, 7, 16, 40};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        int w = widths[i];
        int64_t kc = 37 + (int64_t)i;
        float *src = randn_buf(kc * w);
        src[3] = 0.0f / 0.0f, src[5] = 1e30f * 1e30f, src[7] = -0.0f;
        uint16_t *a = calloc((size_t)((kc + 1) * w), sizeof *a), *b = calloc((size_t)((kc + 1) * w), sizeof *b);
        sd_gemm_panel_to_bf16_pairs(a, src, kc, w);
        sd_gemm_panel_to_bf16_pairs_avx512(b, src, kc, w);
        CHECK(memcmp(a, b, (size_t)((kc + 1) / 2 * 2 * w) * sizeof *a) == 0, "bf16 pairs, AVX-512 == scalar (w %d, kc %lld)",
              w, (long long)kc);
        free(src), free(a), free(b);
    }
#endif
}

/* Runs the kernel-dependent tests with the given GEMM kernel and row-kernel table. */
static void test_with_kernels(sd_backend *be, const sd_gemm_kernel *gemm, const sd_cpu_vec *vec) {
    sd_cpu_backend_set_kernels(be, gemm, vec);
    test_linear(be);
    test_attention(be);
    test_conv(be);
    test_image_ops(be);
    test_norm_and_elementwise(be);
    test_bf16_math(be);
}

int main(void) {
    sd_rng_seed(&g_rng, 99);
    test_pool();
    sd_backend *be = NULL;
    CHECK_OK(sd_backend_create(&be, SD_BACKEND_CPU, 3)); /* more threads than this machine's cores */
    if (!be) return check_finish();
    test_gemm_kernels(be);
    test_bf16_pairs();
    const sd_gemm_kernel *best = sd_cpu(be)->gemm;
    const sd_cpu_vec *vec = sd_cpu(be)->vec;
    test_with_kernels(be, best, vec);
    test_with_kernels(be, sd_gemm_generic_kernel(4, 8), sd_cpu_vec_scalar());
    test_with_kernels(be, sd_gemm_generic_kernel(12, 32), vec);
    test_with_kernels(be, sd_gemm_generic_kernel(6, 16), sd_cpu_vec_scalar());
    sd_backend_free(be);
    sd_backend *one = NULL;
    CHECK_OK(sd_backend_create(&one, SD_BACKEND_CPU, 1));
    if (one) test_with_kernels(one, NULL, NULL);
    sd_backend_free(one);
    return check_finish();
}
