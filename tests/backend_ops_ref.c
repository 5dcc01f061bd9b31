/* backend_ops_ref.c — see backend_ops_ref.h. Every sum in double, every output rounded once. */
#include "backend_ops_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ref_linear(float *y, const float *x, const float *w, const float *b, int64_t m, int64_t k, int64_t n) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = b ? b[j] : 0.0;
            for (int64_t t = 0; t < k; t++) s += (double)x[i * k + t] * w[j * k + t];
            y[i * n + j] = (float)s;
        }
}

void ref_layer_norm(float *y, const float *x, const float *g, const float *b, int64_t rows, int64_t c, float eps) {
    for (int64_t i = 0; i < rows; i++) {
        const float *r = x + i * c;
        double mean = 0.0, var = 0.0;
        for (int64_t j = 0; j < c; j++) mean += r[j];
        mean /= (double)c;
        for (int64_t j = 0; j < c; j++) var += (r[j] - mean) * (r[j] - mean);
        var /= (double)c;
        for (int64_t j = 0; j < c; j++) y[i * c + j] = (float)((r[j] - mean) / sqrt(var + eps) * g[j] + b[j]);
    }
}

void ref_attention(float *o, const float *q, const float *k, const float *v, int64_t b, int64_t tq, int64_t tk,
                   int64_t c, int heads, bool causal) {
    int64_t d = c / heads;
    double *s = malloc((size_t)tk * sizeof *s);
    for (int64_t bi = 0; bi < b; bi++)
        for (int h = 0; h < heads; h++)
            for (int64_t i = 0; i < tq; i++) {
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < tk; j++) {
                    double dot = 0.0;
                    for (int64_t t = 0; t < d; t++)
                        dot += (double)q[(bi * tq + i) * c + h * d + t] * k[(bi * tk + j) * c + h * d + t];
                    s[j] = (causal && j > i) ? -INFINITY : dot / sqrt((double)d);
                    if (s[j] > mx) mx = s[j];
                }
                for (int64_t j = 0; j < tk; j++) sum += (s[j] = exp(s[j] - mx));
                for (int64_t t = 0; t < d; t++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < tk; j++) acc += s[j] * v[(bi * tk + j) * c + h * d + t];
                    o[(bi * tq + i) * c + h * d + t] = (float)(acc / sum);
                }
            }
    free(s);
}

static double gelu(double v) { return 0.5 * v * (1.0 + erf(v / sqrt(2.0))); }

void ref_activation(float *y, const float *x, int64_t n, int act) {
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], r;
        switch (act) {
        case 1: r = gelu(v); break;                        /* SD_ACT_GELU */
        case 2: r = v / (1.0 + exp(-1.702 * v)); break;    /* SD_ACT_QUICK_GELU */
        case 3: r = v / (1.0 + exp(-v)); break;            /* SD_ACT_SILU */
        case 4: r = v > 0.0 ? v : 0.0; break;              /* SD_ACT_RELU */
        case 5: r = tanh(v); break;                        /* SD_ACT_TANH */
        case 6: r = exp(v); break;                         /* SD_ACT_EXP */
        default: r = v; break;                             /* SD_ACT_NONE */
        }
        y[i] = (float)r;
    }
}

void ref_add(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((double)a[i] + b[i]);
}

void ref_mul(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((double)a[i] * b[i]);
}

void ref_softmax(float *y, const float *x, int64_t rows, int64_t c) {
    for (int64_t i = 0; i < rows; i++) {
        const float *r = x + i * c;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < c; j++) mx = r[j] > mx ? r[j] : mx;
        for (int64_t j = 0; j < c; j++) sum += exp(r[j] - mx);
        for (int64_t j = 0; j < c; j++) y[i * c + j] = (float)(exp(r[j] - mx) / sum);
    }
}

void ref_embedding(float *y, const float *table, const int32_t *ids, int64_t rows, int64_t c) {
    for (int64_t i = 0; i < rows; i++) memcpy(y + i * c, table + (int64_t)ids[i] * c, (size_t)c * sizeof *y);
}

void ref_conv2d(float *y, const float *x, const float *w, const float *bias, const float *residual, int64_t n,
                int64_t ci, int64_t h, int64_t wd, int64_t co, int64_t k, int s, int p, bool relu) {
    int64_t ho = (h + 2 * p - k) / s + 1, wo = (wd + 2 * p - k) / s + 1;
    for (int64_t bi = 0; bi < n; bi++)
        for (int64_t o = 0; o < co; o++)
            for (int64_t oy = 0; oy < ho; oy++)
                for (int64_t ox = 0; ox < wo; ox++) {
                    double acc = bias ? bias[o] : 0.0;
                    for (int64_t c = 0; c < ci; c++)
                        for (int64_t ky = 0; ky < k; ky++)
                            for (int64_t kx = 0; kx < k; kx++) {
                                int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                                if (iy >= 0 && iy < h && ix >= 0 && ix < wd)
                                    acc += (double)x[((bi * ci + c) * h + iy) * wd + ix] *
                                           w[((o * ci + c) * k + ky) * k + kx];
                            }
                    int64_t at = ((bi * co + o) * ho + oy) * wo + ox;
                    if (residual) acc += residual[at];
                    y[at] = (float)(relu && acc < 0.0 ? 0.0 : acc);
                }
}

void ref_group_norm(float *y, const float *x, const float *g, const float *b, int64_t n, int64_t c, int64_t s,
                    int groups, float eps, bool silu) {
    int64_t cpg = c / groups, len = cpg * s;
    for (int64_t bi = 0; bi < n; bi++)
        for (int gi = 0; gi < groups; gi++) {
            const float *xg = x + (bi * c + gi * cpg) * s;
            double mean = 0.0, var = 0.0;
            for (int64_t i = 0; i < len; i++) mean += xg[i];
            mean /= (double)len;
            for (int64_t i = 0; i < len; i++) var += (xg[i] - mean) * (xg[i] - mean);
            var /= (double)len;
            for (int64_t i = 0; i < len; i++) {
                int64_t ch = gi * cpg + i / s;
                double v = (xg[i] - mean) / sqrt(var + eps) * g[ch] + b[ch];
                y[(bi * c + gi * cpg) * s + i] = (float)(silu ? v / (1.0 + exp(-v)) : v);
            }
        }
}

static int64_t nearest(int64_t dst, int64_t in, int64_t out) {
    int64_t src = (int64_t)floorf((float)dst * ((float)in / (float)out));
    return src < in - 1 ? src : in - 1;
}

void ref_upsample_nearest(float *y, const float *x, int64_t planes, int64_t h, int64_t w, int64_t ho, int64_t wo) {
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < ho; i++)
            for (int64_t j = 0; j < wo; j++) y[(p * ho + i) * wo + j] = x[(p * h + nearest(i, h, ho)) * w + nearest(j, w, wo)];
}

void ref_add_broadcast(float *y, const float *a, const float *b, int64_t n, int64_t c, int64_t s, bool per_batch) {
    for (int64_t bi = 0; bi < n; bi++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < s; i++) {
                int64_t at = (bi * c + ch) * s + i;
                y[at] = (float)((double)a[at] + b[(per_batch ? bi * c : 0) + ch]);
            }
}

void ref_axpby(float *y, float alpha, const float *a, float beta, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((double)alpha * a[i] + (double)beta * b[i]);
}

void ref_scale(float *y, const float *x, int64_t n, float mul, float add) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((double)x[i] * mul + add);
}

void ref_geglu(float *y, const float *x, int64_t rows, int64_t f) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < f; j++) y[i * f + j] = (float)(x[i * 2 * f + j] * gelu(x[i * 2 * f + f + j]));
}

void ref_transpose_hw_c(float *y, const float *x, int64_t n, int64_t c, int64_t s, bool to_channels_last) {
    for (int64_t bi = 0; bi < n; bi++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < s; i++) {
                int64_t img = (bi * c + ch) * s + i, seq = (bi * s + i) * c + ch;
                if (to_channels_last) y[seq] = x[img];
                else y[img] = x[seq];
            }
}

void ref_concat_channels(float *y, const float *a, const float *b, int64_t n, int64_t sa, int64_t sb) {
    for (int64_t i = 0; i < n; i++) {
        memcpy(y + i * (sa + sb), a + i * sa, (size_t)sa * sizeof *y);
        memcpy(y + i * (sa + sb) + sa, b + i * sb, (size_t)sb * sizeof *y);
    }
}

/* These two are float32 on purpose: the ops are defined as the host conversion, operation for
 * operation (backend.h), not as the exact real-number formula. */
void ref_rgb8_to_image(float *y, const float *rgb, int64_t n, int64_t h, int64_t w) {
    for (int64_t b = 0; b < n; b++)
        for (int64_t c = 0; c < 3; c++)
            for (int64_t i = 0; i < h * w; i++) y[(b * 3 + c) * h * w + i] = 2.0f * (rgb[(b * h * w + i) * 3 + c] / 255.0f) - 1.0f;
}

void ref_image_to_rgb8(float *y, const float *x, int64_t n, int64_t h, int64_t w) {
    for (int64_t b = 0; b < n; b++)
        for (int64_t c = 0; c < 3; c++)
            for (int64_t i = 0; i < h * w; i++) {
                float v = x[(b * 3 + c) * h * w + i] / 2.0f + 0.5f;
                v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
                if (v != v) v = 0.0f;
                y[(b * h * w + i) * 3 + c] = rintf(v * 255.0f);
            }
}
