/* cpu_simd.c — the scalar (libm) row kernels: the fallback on CPUs without AVX2 and the reference
 * the AVX2 table is tested against. */
#include "backend/cpu/cpu_simd.h"

#include <math.h>

static float act_scalar(float v, int act) {
    switch (act) {
    case SD_VEC_ACT_SILU: return v / (1.0f + expf(-v));
    case SD_VEC_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    default: return v;
    }
}

static void affine_act_scalar(float *y, const float *x, int64_t n, float mul, float add, int act) {
    for (int64_t i = 0; i < n; i++) y[i] = act_scalar(x[i] * mul + add, act);
}

static void geglu_scalar(float *y, const float *hid, const float *gate, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = hid[i] * 0.5f * gate[i] * (1.0f + erff(gate[i] * 0.70710678118654752f));
}

static float max_scalar(const float *x, int64_t n) {
    float m = x[0];
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static float exp_sum_scalar(float *x, int64_t n, float sub) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += (x[i] = expf(x[i] - sub));
    return s;
}

static void sums_scalar(const float *x, int64_t n, float shift, double s[2]) {
    double a = 0.0, b = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - shift;
        a += d;
        b += d * d;
    }
    s[0] += a;
    s[1] += b;
}

static void softmax_panel_scalar(float *s, int64_t nk, int nr, float *m, float *l, float *corr) {
    for (int q = 0; q < nr; q++) {
        float bm = m[q];
        for (int64_t j = 0; j < nk; j++) bm = s[j * nr + q] > bm ? s[j * nr + q] : bm;
        float sum = 0.0f;
        for (int64_t j = 0; j < nk; j++) sum += (s[j * nr + q] = expf(s[j * nr + q] - bm));
        corr[q] = m[q] == -INFINITY ? 0.0f : expf(m[q] - bm);
        l[q] = l[q] * corr[q] + sum;
        m[q] = bm;
    }
}

static const sd_cpu_vec g_scalar = {"scalar",     affine_act_scalar, geglu_scalar,        max_scalar,
                                    exp_sum_scalar, sums_scalar,     softmax_panel_scalar};

const sd_cpu_vec *sd_cpu_vec_scalar(void) { return &g_scalar; }
