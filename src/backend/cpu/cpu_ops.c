/* cpu_ops.c — float32 CPU kernels for the dense ops: linear (BLAS sgemm), layer norm,
 * activations, add, softmax. Reductions accumulate in double where rows are long enough for
 * float error to matter (norm statistics), to stay well inside the 1e-4 golden tolerance. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"

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

void sd_cpu_linear(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias) {
    if (!all_f32(be, "linear", out, in, weight) || !all_f32(be, "linear", bias, NULL, NULL)) return;
    int64_t m = sd_tensor_rows(in), k = sd_tensor_cols(in), n = weight->shape[0];
    float *y = sd_f32(out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)n, (blasint)k, 1.0f, sd_f32(in),
                (blasint)k, sd_f32(weight), (blasint)k, 0.0f, y, (blasint)n);
    if (bias) {
        const float *b = sd_f32(bias);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) y[i * n + j] += b[j];
    }
}

void sd_cpu_layer_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                       const sd_tensor *beta, float eps) {
    if (!all_f32(be, "layer_norm", out, in, gamma) || !all_f32(be, "layer_norm", beta, NULL, NULL)) return;
    int64_t rows = sd_tensor_rows(in), c = sd_tensor_cols(in);
    const float *x = sd_f32(in), *g = sd_f32(gamma), *b = sd_f32(beta);
    float *y = sd_f32(out);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        double sum = 0.0;
        for (int64_t i = 0; i < c; i++) sum += xr[i];
        double mean = sum / (double)c, var = 0.0;
        for (int64_t i = 0; i < c; i++) var += ((double)xr[i] - mean) * ((double)xr[i] - mean);
        float inv = (float)(1.0 / sqrt(var / (double)c + (double)eps));
        float meanf = (float)mean;
        float *yr = y + r * c;
        for (int64_t i = 0; i < c; i++) yr[i] = (xr[i] - meanf) * inv * g[i] + b[i];
    }
}

void sd_cpu_activation(sd_backend *be, sd_tensor *out, const sd_tensor *in, sd_activation act) {
    if (!all_f32(be, "activation", out, in, NULL)) return;
    int64_t n = sd_tensor_numel(in);
    const float *x = sd_f32(in);
    float *y = sd_f32(out);
    switch (act) {
    case SD_ACT_NONE:
        for (int64_t i = 0; i < n; i++) y[i] = x[i];
        break;
    case SD_ACT_GELU: /* exact: x * Phi(x), torch's default approximate='none' */
        for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    case SD_ACT_QUICK_GELU: /* CLIP's x * sigmoid(1.702 x) */
        for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
        break;
    case SD_ACT_SILU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    case SD_ACT_RELU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case SD_ACT_TANH:
        for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case SD_ACT_EXP:
        for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
        break;
    }
}

void sd_cpu_add(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!all_f32(be, "add", out, a, b)) return;
    int64_t n = sd_tensor_numel(a);
    const float *x = sd_f32(a), *z = sd_f32(b);
    float *y = sd_f32(out);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] + z[i];
}

void sd_cpu_mul(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!all_f32(be, "mul", out, a, b)) return;
    int64_t n = sd_tensor_numel(a);
    const float *x = sd_f32(a), *z = sd_f32(b);
    float *y = sd_f32(out);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * z[i];
}

void sd_cpu_softmax(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (!all_f32(be, "softmax", out, in, NULL)) return;
    int64_t rows = sd_tensor_rows(in), c = sd_tensor_cols(in);
    for (int64_t r = 0; r < rows; r++) {
        const float *x = sd_f32(in) + r * c;
        float *y = sd_f32(out) + r * c;
        float mx = -INFINITY;
        for (int64_t i = 0; i < c; i++) mx = x[i] > mx ? x[i] : mx;
        double sum = 0.0;
        for (int64_t i = 0; i < c; i++) {
            y[i] = expf(x[i] - mx);
            sum += y[i];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < c; i++) y[i] *= inv;
    }
}

void sd_cpu_embedding(sd_backend *be, sd_tensor *out, const sd_tensor *table, const int32_t *ids) {
    if (!all_f32(be, "embedding", out, table, NULL)) return;
    int64_t rows = sd_tensor_rows(out), c = sd_tensor_cols(out);
    for (int64_t i = 0; i < rows; i++)
        memcpy(sd_f32(out) + i * c, sd_f32(table) + (int64_t)ids[i] * c, (size_t)c * sizeof(float));
}
