/* cpu_ops.c — float32 CPU kernels for the dense ops: linear (our SGEMM, cpu_gemm.c), layer norm,
 * activations, add, mul, softmax, embedding. The memory-bound loops run on the pool in chunks
 * (ELEM_GRAIN floats, or whole rows) with the SIMD row kernels of cpu_simd.h. Norm statistics
 * accumulate in double across float-lane partial sums, to stay well inside the 1e-4 golden
 * tolerance. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"

/* 16K floats = 64 KB per chunk: large enough that the pool's hand-out cost (~1 us) is noise. Row ops
 * use chunks of at least this many floats too, so tiny tensors run inline without waking anyone. */
enum { ELEM_GRAIN = 16384 };

static int64_t row_grain(sd_backend *be, int64_t rows, int64_t floats_per_row) {
    int64_t min_rows = ELEM_GRAIN / (floats_per_row > 0 ? floats_per_row : 1);
    return sd_pool_grain(sd_cpu(be)->pool, rows, 4, min_rows > 0 ? min_rows : 1);
}

static bool all_f32(sd_backend *be, const char *op, const sd_tensor *a, const sd_tensor *b, const sd_tensor *c) {
    const sd_tensor *ts[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        if (ts[i] && ts[i]->dtype != SD_DTYPE_F32) {
            sd_backend_fail(be, SD_ERR_UNSUPPORTED, "%s: dtype %s not supported", op, sd_dtype_name(ts[i]->dtype));
            return false;
        }
    }
    return true;
}

/* Weights may be stored as bfloat16 or float16 (weights.h); everything else is float32. */
static bool weight_ok(sd_backend *be, const char *op, const sd_tensor *w) {
    if (w->dtype == SD_DTYPE_F32 || w->dtype == SD_DTYPE_BF16 || w->dtype == SD_DTYPE_F16) return true;
    sd_backend_fail(be, SD_ERR_UNSUPPORTED, "%s: weight dtype %s not supported", op, sd_dtype_name(w->dtype));
    return false;
}

void sd_cpu_linear(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias) {
    if (!all_f32(be, "linear", out, in, bias) || !weight_ok(be, "linear", weight)) return;
    int64_t m = sd_tensor_rows(in), k = sd_tensor_cols(in), n = weight->shape[0];
    bool w16 = weight->dtype != SD_DTYPE_F32;
    /* C [m, n] = X [m, k] . W^T: A is X row-major, B(kk, j) = W[j, kk] (packed per panel) */
    sd_gemm_args g = {.m = m, .n = n, .k = k, .a = {.p = sd_f32(in), .rs = k, .cs = 1},
                      .b = {.p = w16 ? NULL : sd_f32(weight), .p16 = w16 ? weight->data : NULL,
                            .type16 = weight->dtype, .rs = 1, .cs = k},
                      .c = sd_f32(out), .ldc = n,
                      .bias = bias ? sd_f32(bias) : NULL, .bias_kind = bias ? SD_GEMM_BIAS_COL : SD_GEMM_BIAS_NONE};
    sd_cpu_gemm(be, &g);
}

/* Per-row kernels share one job struct: x, y, optional gamma/beta, sizes. */
typedef struct row_job {
    const sd_cpu_vec *vec;
    const float *x, *z, *g, *b;
    float *y;
    int64_t c;
    float eps, alpha, beta;
    sd_activation act;
} row_job;

/* sum and sum of squares around shift, in chunks of 4096 (float lanes inside, double across) */
static void stats(const sd_cpu_vec *vec, const float *x, int64_t n, double *mean, double *var) {
    double s[2] = {0.0, 0.0};
    for (int64_t i = 0; i < n; i += 4096) vec->sums(x + i, n - i < 4096 ? n - i : 4096, 0.0f, s);
    double mu = s[0] / (double)n;
    double t[2] = {0.0, 0.0};
    for (int64_t i = 0; i < n; i += 4096) vec->sums(x + i, n - i < 4096 ? n - i : 4096, (float)mu, t);
    /* the shift was mu rounded to float: correct the second moment for it */
    double off = t[0] / (double)n;
    *mean = mu;
    *var = t[1] / (double)n - off * off;
    if (*var < 0.0) *var = 0.0;
}

static void layer_norm_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    const row_job *j = ctx;
    for (int64_t r = begin; r < end; r++) {
        const float *xr = j->x + r * j->c;
        float *yr = j->y + r * j->c;
        double mean, var;
        stats(j->vec, xr, j->c, &mean, &var);
        float inv = (float)(1.0 / sqrt(var + (double)j->eps)), meanf = (float)mean;
        for (int64_t i = 0; i < j->c; i++) yr[i] = (xr[i] - meanf) * inv * j->g[i] + j->b[i];
    }
}

void sd_cpu_layer_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                       const sd_tensor *beta, float eps) {
    if (!all_f32(be, "layer_norm", out, in, gamma) || !all_f32(be, "layer_norm", beta, NULL, NULL)) return;
    int64_t rows = sd_tensor_rows(in), c = sd_tensor_cols(in);
    row_job j = {.vec = sd_cpu(be)->vec, .x = sd_f32(in), .g = sd_f32(gamma), .b = sd_f32(beta), .y = sd_f32(out),
                 .c = c, .eps = eps};
    sd_pool_for(sd_cpu(be)->pool, rows, row_grain(be, rows, c), layer_norm_rows, &j);
}

static void activation_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    const row_job *j = ctx;
    const float *x = j->x + begin;
    float *y = j->y + begin;
    int64_t n = end - begin;
    switch (j->act) {
    case SD_ACT_NONE: memmove(y, x, (size_t)n * sizeof(float)); break;
    case SD_ACT_GELU: j->vec->affine_act(y, x, n, 1.0f, 0.0f, SD_VEC_ACT_GELU); break;
    case SD_ACT_SILU: j->vec->affine_act(y, x, n, 1.0f, 0.0f, SD_VEC_ACT_SILU); break;
    case SD_ACT_QUICK_GELU: /* CLIP's x * sigmoid(1.702 x) */
        for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
        break;
    case SD_ACT_RELU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN passes, as in torch and CUDA */
        break;
    case SD_ACT_TANH:
        for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case SD_ACT_EXP:
        for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
        break;
    }
}

void sd_cpu_activation(sd_backend *be, sd_tensor *out, const sd_tensor *in, sd_activation act) {
    if (!all_f32(be, "activation", out, in, NULL)) return;
    row_job j = {.vec = sd_cpu(be)->vec, .x = sd_f32(in), .y = sd_f32(out), .act = act};
    sd_pool_for(sd_cpu(be)->pool, sd_tensor_numel(in), ELEM_GRAIN, activation_chunk, &j);
}

/* y = alpha * x + beta * z; add is alpha = beta = 1 */
static void axpby_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    const row_job *j = ctx;
    const float *x = j->x, *z = j->z;
    float *y = j->y, a = j->alpha, b = j->beta;
    if (a == 1.0f && b == 1.0f)
        for (int64_t i = begin; i < end; i++) y[i] = x[i] + z[i];
    else
        for (int64_t i = begin; i < end; i++) y[i] = a * x[i] + b * z[i];
}

static void mul_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    const row_job *j = ctx;
    for (int64_t i = begin; i < end; i++) j->y[i] = j->x[i] * j->z[i];
}

static void scale_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    const row_job *j = ctx;
    for (int64_t i = begin; i < end; i++) j->y[i] = j->x[i] * j->alpha + j->beta;
}

void sd_cpu_add(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!all_f32(be, "add", out, a, b)) return;
    row_job j = {.x = sd_f32(a), .z = sd_f32(b), .y = sd_f32(out), .alpha = 1.0f, .beta = 1.0f};
    sd_pool_for(sd_cpu(be)->pool, sd_tensor_numel(a), ELEM_GRAIN, axpby_chunk, &j);
}

void sd_cpu_mul(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!all_f32(be, "mul", out, a, b)) return;
    row_job j = {.x = sd_f32(a), .z = sd_f32(b), .y = sd_f32(out)};
    sd_pool_for(sd_cpu(be)->pool, sd_tensor_numel(a), ELEM_GRAIN, mul_chunk, &j);
}

void sd_cpu_axpby(sd_backend *be, sd_tensor *out, float alpha, const sd_tensor *a, float beta, const sd_tensor *b) {
    row_job j = {.x = sd_f32(a), .z = sd_f32(b), .y = sd_f32(out), .alpha = alpha, .beta = beta};
    sd_pool_for(sd_cpu(be)->pool, sd_tensor_numel(a), ELEM_GRAIN, axpby_chunk, &j);
}

void sd_cpu_scale(sd_backend *be, sd_tensor *out, const sd_tensor *in, float mul, float add) {
    row_job j = {.x = sd_f32(in), .y = sd_f32(out), .alpha = mul, .beta = add};
    sd_pool_for(sd_cpu(be)->pool, sd_tensor_numel(in), ELEM_GRAIN, scale_chunk, &j);
}

static void softmax_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    const row_job *j = ctx;
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->c;
        float *y = j->y + r * j->c;
        if (y != x) memcpy(y, x, (size_t)j->c * sizeof(float));
        float mx = j->vec->max(y, j->c);
        double sum = 0.0;
        for (int64_t i = 0; i < j->c; i += 4096) sum += j->vec->exp_sum(y + i, j->c - i < 4096 ? j->c - i : 4096, mx);
        float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < j->c; i++) y[i] *= inv;
    }
}

void sd_cpu_softmax(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (!all_f32(be, "softmax", out, in, NULL)) return;
    int64_t rows = sd_tensor_rows(in);
    row_job j = {.vec = sd_cpu(be)->vec, .x = sd_f32(in), .y = sd_f32(out), .c = sd_tensor_cols(in)};
    sd_pool_for(sd_cpu(be)->pool, rows, row_grain(be, rows, j.c), softmax_rows, &j);
}

void sd_cpu_embedding(sd_backend *be, sd_tensor *out, const sd_tensor *table, const int32_t *ids) {
    if (!all_f32(be, "embedding", out, NULL, NULL) || !weight_ok(be, "embedding", table)) return;
    int64_t rows = sd_tensor_rows(out), c = sd_tensor_cols(out);
    for (int64_t i = 0; i < rows; i++) {
        float *dst = sd_f32(out) + i * c;
        size_t row = (size_t)ids[i] * (size_t)c * sd_dtype_size(table->dtype);
        sd_convert_to_f32(dst, (const char *)table->data + row, table->dtype, (size_t)c);
    }
}
