/* test_ops.c — every CPU op against a plain, obviously-correct reference on random inputs of
 * awkward sizes (odd widths, one-row batches, sequences that are not multiples of the tiles),
 * plus the sticky-error behaviour of the op interface. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/rng.h"
#include "check.h"

static sd_rng g_rng;

static float *randn_buf(int64_t n) {
    float *p = malloc((size_t)n * sizeof *p);
    sd_rng_randn(&g_rng, p, n);
    return p;
}

static void ref_linear(float *y, const float *x, const float *w, const float *b, int64_t m, int64_t k, int64_t n) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = b ? b[j] : 0.0;
            for (int64_t t = 0; t < k; t++) s += (double)x[i * k + t] * w[j * k + t];
            y[i * n + j] = (float)s;
        }
}

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
        free(x), free(w), free(b), free(y), free(r);
    }
}

static void ref_attention(float *o, const float *q, const float *k, const float *v, int64_t B, int64_t tq, int64_t tk,
                          int64_t c, int heads, bool causal) {
    int64_t d = c / heads;
    double *s = malloc((size_t)tk * sizeof *s);
    for (int64_t b = 0; b < B; b++)
        for (int h = 0; h < heads; h++)
            for (int64_t i = 0; i < tq; i++) {
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < tk; j++) {
                    double dot = 0.0;
                    for (int64_t t = 0; t < d; t++)
                        dot += (double)q[(b * tq + i) * c + h * d + t] * k[(b * tk + j) * c + h * d + t];
                    s[j] = (causal && j > i) ? -INFINITY : dot / sqrt((double)d);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int64_t j = 0; j < tk; j++) sum += (s[j] = exp(s[j] - mx));
                for (int64_t t = 0; t < d; t++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < tk; j++) acc += s[j] * v[(b * tk + j) * c + h * d + t];
                    o[(b * tq + i) * c + h * d + t] = (float)(acc / sum);
                }
            }
    free(s);
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

int main(void) {
    sd_rng_seed(&g_rng, 99);
    sd_backend *be = NULL;
    CHECK_OK(sd_backend_create(&be, SD_BACKEND_CPU, 0));
    if (!be) return check_finish();
    test_linear(be);
    test_attention(be);
    test_norm_and_elementwise(be);
    sd_backend_free(be);
    return check_finish();
}
