/* cuda_parity.c — every op of the CUDA backend against the CPU backend, on random inputs of
 * awkward shapes, for each activation dtype; then (--bench) a few UNet-sized ops timed.
 *
 * A program for a GPU machine, not a ctest test (it needs a device): built with the CUDA backend.
 *     ./build/cuda_parity              all dtypes (F32, F16, BF16), then exit
 *     ./build/cuda_parity f16 --bench  one dtype, then timings
 * Inputs are random normal values rounded to the dtype on the host first, so both backends see the
 * same numbers and only the GPU's rounding of results and intermediates differs. The error is
 * ||gpu - cpu|| / ||cpu|| over the output; limits F32 2e-5, F16/BF16 1e-2 (DESIGN.md's end-to-end
 * bound for 16-bit paths). GPU outputs are pre-filled with NaN so an element a kernel fails to
 * write shows; a NaN the CPU does not have fails. Exit 0: all pass; 1: a mismatch or a backend
 * error; 2: no usable CUDA device (the reason is printed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "base/dtype.h"
#include "base/rng.h"

typedef struct run {
    sd_backend *cpu, *gpu;
    sd_dtype dt;
    sd_rng rng;
    int checks, failures;
} run;

/* one tensor on both backends: c in host float32, g in the GPU's act dtype */
typedef struct pair {
    sd_tensor c, g;
    bool weight; /* g came from upload_weight */
} pair;

static void round_through(float *x, int64_t n, sd_dtype dt) {
    for (int64_t i = 0; i < n; i++) {
        if (dt == SD_DTYPE_F16) x[i] = sd_f16_to_f32(sd_f32_to_f16(x[i]));
        else if (dt == SD_DTYPE_BF16) x[i] = sd_bf16_to_f32(sd_f32_to_bf16(x[i]));
    }
}

static sd_tensor host_tensor(int ndim, const int64_t *shape) {
    sd_tensor t = sd_tensor_make(NULL, SD_DTYPE_F32, ndim, shape);
    t.data = calloc((size_t)(sd_tensor_numel(&t) > 0 ? sd_tensor_numel(&t) : 1), sizeof(float));
    return t;
}

static sd_tensor gpu_tensor(run *r, int ndim, const int64_t *shape) {
    sd_tensor t = sd_tensor_make(NULL, r->dt, ndim, shape);
    t.data = sd_backend_mem_alloc(r->gpu, (size_t)sd_tensor_numel(&t) * sd_dtype_size(r->dt));
    return t;
}

/* random values x scale (+ offset), the same on both sides; weight: through upload_weight */
static pair make_in(run *r, int ndim, const int64_t *shape, float scale, float offset, bool weight) {
    pair p = {host_tensor(ndim, shape), {0}, weight};
    int64_t n = sd_tensor_numel(&p.c);
    float *x = sd_f32(&p.c);
    sd_rng_randn(&r->rng, x, n);
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * scale + offset;
    round_through(x, n, r->dt);
    if (weight) {
        sd_backend_upload_weight(r->gpu, &p.g, &p.c);
    } else {
        p.g = gpu_tensor(r, ndim, shape);
        sd_backend_upload(r->gpu, &p.g, x);
    }
    return p;
}

static pair make_out(run *r, int ndim, const int64_t *shape) {
    pair p = {host_tensor(ndim, shape), gpu_tensor(r, ndim, shape), false};
    sd_op_fill(r->gpu, &p.g, NAN);
    return p;
}

static void free_pair(run *r, pair *p) {
    free(p->c.data);
    sd_backend_mem_free(r->gpu, p->g.data);
    memset(p, 0, sizeof *p);
}

/* compares the GPU's out with the CPU's; prints one line */
static void check(run *r, const char *what, const pair *out) {
    int64_t n = sd_tensor_numel(&out->c);
    float *g = calloc((size_t)(n > 0 ? n : 1), sizeof *g);
    sd_backend_download(r->gpu, g, &out->g);
    const float *c = sd_f32(&out->c);
    double num = 0.0, den = 0.0;
    int64_t bad_nan = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(g[i]) != isnan(c[i])) bad_nan++;
        if (isnan(g[i]) || isnan(c[i])) continue;
        double d = (double)g[i] - c[i];
        num += d * d;
        den += (double)c[i] * c[i];
    }
    double rel = den > 0.0 ? sqrt(num / den) : sqrt(num);
    double tol = r->dt == SD_DTYPE_F32 ? 2e-5 : 1e-2;
    sd_status sg = sd_backend_status(r->gpu), sc = sd_backend_status(r->cpu);
    bool ok = sg == SD_OK && sc == SD_OK && bad_nan == 0 && rel < tol;
    r->checks++;
    if (!ok) r->failures++;
    printf("%s %-5s %-44s rel %.3g%s%s\n", ok ? "ok  " : "FAIL", sd_dtype_name(r->dt), what, rel,
           bad_nan ? " (NaN where the CPU has none, or the reverse)" : "",
           sg != SD_OK || sc != SD_OK ? " (backend error)" : "");
    if (sg != SD_OK || sc != SD_OK) {
        fprintf(stderr, "  %s\n", sd_last_error());
        sd_backend_clear_status(r->gpu);
        sd_backend_clear_status(r->cpu);
    }
    free(g);
}

/* ---- the ops ---- */

static void t_linear(run *r, int64_t b, int64_t m, int64_t k, int64_t n, bool bias) {
    pair x = make_in(r, 3, (int64_t[]){b, m, k}, 1.0f, 0.0f, false);
    pair w = make_in(r, 2, (int64_t[]){n, k}, 1.0f / sqrtf((float)k), 0.0f, true);
    pair bb = make_in(r, 1, (int64_t[]){n}, 1.0f, 0.0f, true);
    pair y = make_out(r, 3, (int64_t[]){b, m, n});
    sd_op_linear(r->cpu, &y.c, &x.c, &w.c, bias ? &bb.c : NULL);
    sd_op_linear(r->gpu, &y.g, &x.g, &w.g, bias ? &bb.g : NULL);
    char what[96];
    snprintf(what, sizeof what, "linear [%lld,%lld,%lld]x[%lld]%s", (long long)b, (long long)m, (long long)k,
             (long long)n, bias ? "+b" : "");
    check(r, what, &y);
    free_pair(r, &x), free_pair(r, &w), free_pair(r, &bb), free_pair(r, &y);
}

static void t_attention(run *r, int64_t b, int64_t tq, int64_t tk, int heads, int64_t d, bool causal) {
    int64_t c = heads * d;
    pair q = make_in(r, 3, (int64_t[]){b, tq, c}, 1.0f, 0.0f, false);
    pair k = make_in(r, 3, (int64_t[]){b, tk, c}, 1.0f, 0.0f, false);
    pair v = make_in(r, 3, (int64_t[]){b, tk, c}, 1.0f, 0.0f, false);
    pair o = make_out(r, 3, (int64_t[]){b, tq, c});
    sd_op_attention(r->cpu, &o.c, &q.c, &k.c, &v.c, heads, causal);
    sd_op_attention(r->gpu, &o.g, &q.g, &k.g, &v.g, heads, causal);
    char what[96];
    snprintf(what, sizeof what, "attention b%lld q%lld k%lld h%d d%lld%s", (long long)b, (long long)tq, (long long)tk,
             heads, (long long)d, causal ? " causal" : "");
    check(r, what, &o);
    free_pair(r, &q), free_pair(r, &k), free_pair(r, &v), free_pair(r, &o);
}

static void t_conv(run *r, int64_t n, int64_t ci, int64_t h, int64_t w, int64_t co, int k, int s, int p, bool bias,
                   bool residual, sd_activation act) {
    int64_t ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1;
    pair x = make_in(r, 4, (int64_t[]){n, ci, h, w}, 1.0f, 0.0f, false);
    pair wt = make_in(r, 4, (int64_t[]){co, ci, k, k}, 1.0f / sqrtf((float)(ci * k * k)), 0.0f, true);
    pair bb = make_in(r, 1, (int64_t[]){co}, 1.0f, 0.0f, true);
    pair res = make_in(r, 4, (int64_t[]){n, co, ho, wo}, 1.0f, 0.0f, false);
    pair y = make_out(r, 4, (int64_t[]){n, co, ho, wo});
    sd_op_conv2d_fused(r->cpu, &y.c, &x.c, &wt.c, bias ? &bb.c : NULL, s, p, residual ? &res.c : NULL, act);
    sd_op_conv2d_fused(r->gpu, &y.g, &x.g, &wt.g, bias ? &bb.g : NULL, s, p, residual ? &res.g : NULL, act);
    char what[96];
    snprintf(what, sizeof what, "conv %lldx%lldx%lldx%lld ->%lld k%d s%d p%d%s%s%s", (long long)n, (long long)ci,
             (long long)h, (long long)w, (long long)co, k, s, p, bias ? " +b" : "", residual ? " +res" : "",
             act == SD_ACT_RELU ? " relu" : "");
    check(r, what, &y);
    free_pair(r, &x), free_pair(r, &wt), free_pair(r, &bb), free_pair(r, &res), free_pair(r, &y);
}

static void t_norms(run *r) {
    { /* layer norm, offset inputs (a mean far from 0 tests the two-pass variance) */
        static const int64_t shapes[][3] = {{3, 7, 320}, {2, 1, 1000}, {1, 5, 33}};
        for (int i = 0; i < 3; i++) {
            pair x = make_in(r, 3, shapes[i], 2.0f, 3.0f, false), y = make_out(r, 3, shapes[i]);
            pair g = make_in(r, 1, &shapes[i][2], 1.0f, 1.0f, true), b = make_in(r, 1, &shapes[i][2], 1.0f, 0.0f, true);
            sd_op_layer_norm(r->cpu, &y.c, &x.c, &g.c, &b.c, 1e-5f);
            sd_op_layer_norm(r->gpu, &y.g, &x.g, &g.g, &b.g, 1e-5f);
            char what[64];
            snprintf(what, sizeof what, "layer_norm [%lld,%lld,%lld]", (long long)shapes[i][0], (long long)shapes[i][1],
                     (long long)shapes[i][2]);
            check(r, what, &y);
            free_pair(r, &x), free_pair(r, &y), free_pair(r, &g), free_pair(r, &b);
        }
    }
    { /* group norm: small groups, and one of several 16K-element chunks */
        static const int64_t shapes[][4] = {{2, 64, 9, 13}, {1, 8, 130, 130}, {3, 6, 1, 1}};
        static const int groups[] = {32, 2, 3};
        for (int i = 0; i < 3; i++)
            for (int silu = 0; silu < 2; silu++) {
                pair x = make_in(r, 4, shapes[i], 2.0f, -1.5f, false), y = make_out(r, 4, shapes[i]);
                pair g = make_in(r, 1, &shapes[i][1], 1.0f, 1.0f, true), b = make_in(r, 1, &shapes[i][1], 1.0f, 0.0f, true);
                sd_op_group_norm(r->cpu, &y.c, &x.c, &g.c, &b.c, groups[i], 1e-6f, silu);
                sd_op_group_norm(r->gpu, &y.g, &x.g, &g.g, &b.g, groups[i], 1e-6f, silu);
                char what[80];
                snprintf(what, sizeof what, "group_norm [%lld,%lld,%lld,%lld] g%d%s", (long long)shapes[i][0],
                         (long long)shapes[i][1], (long long)shapes[i][2], (long long)shapes[i][3], groups[i],
                         silu ? " silu" : "");
                check(r, what, &y);
                free_pair(r, &x), free_pair(r, &y), free_pair(r, &g), free_pair(r, &b);
            }
    }
    { /* softmax */
        pair x = make_in(r, 2, (int64_t[]){7, 333}, 3.0f, 0.0f, false), y = make_out(r, 2, (int64_t[]){7, 333});
        sd_op_softmax(r->cpu, &y.c, &x.c);
        sd_op_softmax(r->gpu, &y.g, &x.g);
        check(r, "softmax [7,333]", &y);
        free_pair(r, &x), free_pair(r, &y);
    }
}

static void t_elementwise(run *r) {
    const int64_t n = 4099;
    const int64_t sh[1] = {n};
    static const char *names[] = {"none", "gelu", "quick_gelu", "silu", "relu", "tanh", "exp"};
    for (int a = SD_ACT_NONE; a <= SD_ACT_EXP; a++) {
        pair x = make_in(r, 1, sh, 2.0f, 0.0f, false), y = make_out(r, 1, sh);
        sd_op_activation(r->cpu, &y.c, &x.c, (sd_activation)a);
        sd_op_activation(r->gpu, &y.g, &x.g, (sd_activation)a);
        char what[48];
        snprintf(what, sizeof what, "activation %s [%lld]", names[a], (long long)n);
        check(r, what, &y);
        /* in place */
        sd_op_activation(r->cpu, &x.c, &x.c, (sd_activation)a);
        sd_op_activation(r->gpu, &x.g, &x.g, (sd_activation)a);
        snprintf(what, sizeof what, "activation %s in place", names[a]);
        check(r, what, &x);
        free_pair(r, &x), free_pair(r, &y);
    }
    {
        pair a = make_in(r, 1, sh, 1.0f, 0.0f, false), b = make_in(r, 1, sh, 1.0f, 0.0f, false), y = make_out(r, 1, sh);
        sd_op_add(r->cpu, &y.c, &a.c, &b.c), sd_op_add(r->gpu, &y.g, &a.g, &b.g);
        check(r, "add", &y);
        sd_op_mul(r->cpu, &y.c, &a.c, &b.c), sd_op_mul(r->gpu, &y.g, &a.g, &b.g);
        check(r, "mul", &y);
        sd_op_axpby(r->cpu, &y.c, 0.7f, &a.c, -1.3f, &b.c), sd_op_axpby(r->gpu, &y.g, 0.7f, &a.g, -1.3f, &b.g);
        check(r, "axpby", &y);
        sd_op_scale(r->cpu, &y.c, &a.c, 0.18215f, 0.5f), sd_op_scale(r->gpu, &y.g, &a.g, 0.18215f, 0.5f);
        check(r, "scale", &y);
        sd_op_add(r->cpu, &a.c, &a.c, &b.c), sd_op_add(r->gpu, &a.g, &a.g, &b.g); /* out aliases a */
        check(r, "add in place", &a);
        sd_op_copy(r->cpu, &y.c, &b.c), sd_op_copy(r->gpu, &y.g, &b.g);
        check(r, "copy", &y);
        sd_op_fill(r->cpu, &y.c, -2.5f), sd_op_fill(r->gpu, &y.g, -2.5f);
        check(r, "fill", &y);
        free_pair(r, &a), free_pair(r, &b), free_pair(r, &y);
    }

    for (int per_batch = 0; per_batch < 2; per_batch++) {
        pair x = make_in(r, 4, (int64_t[]){2, 6, 5, 3}, 1.0f, 0.0f, false), y = make_out(r, 4, (int64_t[]){2, 6, 5, 3});
        pair v = per_batch ? make_in(r, 2, (int64_t[]){2, 6}, 1.0f, 0.0f, false)
                           : make_in(r, 1, (int64_t[]){6}, 1.0f, 0.0f, false);
        sd_op_add_broadcast(r->cpu, &y.c, &x.c, &v.c), sd_op_add_broadcast(r->gpu, &y.g, &x.g, &v.g);
        check(r, per_batch ? "add_broadcast [2,6,5,3] + [2,6]" : "add_broadcast [2,6,5,3] + [6]", &y);
        free_pair(r, &x), free_pair(r, &y), free_pair(r, &v);
    }
    {
        pair x = make_in(r, 3, (int64_t[]){3, 5, 74}, 1.5f, 0.0f, false), y = make_out(r, 3, (int64_t[]){3, 5, 37});
        sd_op_geglu(r->cpu, &y.c, &x.c), sd_op_geglu(r->gpu, &y.g, &x.g);
        check(r, "geglu [3,5,74]", &y);
        free_pair(r, &x), free_pair(r, &y);
    }
}

static void t_layout(run *r) {
    {
        pair x = make_in(r, 4, (int64_t[]){2, 37, 9, 7}, 1.0f, 0.0f, false);
        pair s = make_out(r, 3, (int64_t[]){2, 63, 37}), y = make_out(r, 4, (int64_t[]){2, 37, 9, 7});
        sd_op_transpose_hw_c(r->cpu, &s.c, &x.c, true), sd_op_transpose_hw_c(r->gpu, &s.g, &x.g, true);
        check(r, "transpose_hw_c [2,37,9,7] -> [2,63,37]", &s);
        sd_op_transpose_hw_c(r->cpu, &y.c, &s.c, false), sd_op_transpose_hw_c(r->gpu, &y.g, &s.g, false);
        check(r, "transpose_hw_c back", &y);
        free_pair(r, &x), free_pair(r, &s), free_pair(r, &y);
    }
    {
        pair a = make_in(r, 4, (int64_t[]){2, 3, 4, 5}, 1.0f, 0.0f, false);
        pair b = make_in(r, 4, (int64_t[]){2, 6, 4, 5}, 1.0f, 0.0f, false);
        pair y = make_out(r, 4, (int64_t[]){2, 9, 4, 5});
        sd_op_concat_channels(r->cpu, &y.c, &a.c, &b.c), sd_op_concat_channels(r->gpu, &y.g, &a.g, &b.g);
        check(r, "concat_channels 3 + 6", &y);
        free_pair(r, &a), free_pair(r, &b), free_pair(r, &y);
    }
    {
        static const int64_t outs[][2] = {{10, 14}, {13, 9}, {5, 7}};
        for (int i = 0; i < 3; i++) {
            pair x = make_in(r, 4, (int64_t[]){2, 3, 5, 7}, 1.0f, 0.0f, false);
            pair y = make_out(r, 4, (int64_t[]){2, 3, outs[i][0], outs[i][1]});
            sd_op_upsample_nearest(r->cpu, &y.c, &x.c), sd_op_upsample_nearest(r->gpu, &y.g, &x.g);
            char what[64];
            snprintf(what, sizeof what, "upsample_nearest 5x7 -> %lldx%lld", (long long)outs[i][0], (long long)outs[i][1]);
            check(r, what, &y);
            free_pair(r, &x), free_pair(r, &y);
        }
    }
    {
        pair t = make_in(r, 2, (int64_t[]){100, 48}, 1.0f, 0.0f, true);
        pair y = make_out(r, 2, (int64_t[]){10, 48});
        const int32_t ids[10] = {0, 99, 5, 5, 42, 7, 1, 98, 3, 50};
        sd_op_embedding(r->cpu, &y.c, &t.c, ids), sd_op_embedding(r->gpu, &y.g, &t.g, ids);
        check(r, "embedding [100,48] x 10", &y);
        const int32_t bad[10] = {0, 100};
        sd_op_embedding(r->gpu, &y.g, &t.g, bad);
        bool refused = sd_backend_status(r->gpu) == SD_ERR_ARG;
        sd_backend_clear_status(r->gpu);
        r->checks++;
        if (!refused) r->failures++;
        printf("%s %-5s %-44s\n", refused ? "ok  " : "FAIL", sd_dtype_name(r->dt), "embedding refuses id 100 of 100");
        free_pair(r, &t), free_pair(r, &y);
    }
}

/* 8-bit frames in and out: the same bytes / values as the host conversion */
static void t_frames(run *r) {
    const int64_t n = 2, h = 5, w = 7, count = n * h * w * 3;
    uint8_t *bytes = malloc((size_t)count), *back_c = malloc((size_t)count), *back_g = malloc((size_t)count);
    for (int64_t i = 0; i < count; i++) bytes[i] = (uint8_t)(sd_rng_next_u32(&r->rng) & 255);
    sd_tensor rgb_c = sd_tensor_4d(bytes, SD_DTYPE_U8, n, h, w, 3), rgb_g = rgb_c, out_g = rgb_c;
    rgb_g.data = sd_backend_mem_alloc(r->gpu, (size_t)count);
    out_g.data = sd_backend_mem_alloc(r->gpu, (size_t)count);
    sd_backend_upload(r->gpu, &rgb_g, bytes);
    pair img = make_out(r, 4, (int64_t[]){n, 3, h, w});
    sd_op_rgb8_to_image(r->cpu, &img.c, &rgb_c);
    sd_op_rgb8_to_image(r->gpu, &img.g, &rgb_g);
    check(r, "rgb8_to_image [2,5,7,3]", &img);
    /* back, from values past [-1, 1] and a NaN (-> 0) */
    pair x = make_in(r, 4, (int64_t[]){n, 3, h, w}, 0.8f, 0.0f, false);
    float nan_host[1] = {NAN};
    sd_tensor one = x.g;
    one.ndim = 1, one.shape[0] = 1;
    sd_backend_upload(r->gpu, &one, nan_host);
    sd_f32(&x.c)[0] = NAN;
    sd_tensor back_ct = rgb_c;
    back_ct.data = back_c;
    sd_op_image_to_rgb8(r->cpu, &back_ct, &x.c);
    sd_op_image_to_rgb8(r->gpu, &out_g, &x.g);
    sd_backend_download(r->gpu, back_g, &out_g);
    int64_t diff = 0;
    for (int64_t i = 0; i < count; i++) diff += back_c[i] != back_g[i];
    bool ok = diff == 0 && sd_backend_status(r->gpu) == SD_OK;
    r->checks++;
    if (!ok) r->failures++;
    printf("%s %-5s image_to_rgb8 [2,3,5,7]: %lld of %lld bytes differ\n", ok ? "ok  " : "FAIL", sd_dtype_name(r->dt),
           (long long)diff, (long long)count);
    sd_backend_clear_status(r->gpu);
    sd_backend_mem_free(r->gpu, rgb_g.data);
    sd_backend_mem_free(r->gpu, out_g.data);
    free_pair(r, &img), free_pair(r, &x);
    free(bytes), free(back_c), free(back_g);
}

/* NaN in, NaN out: one NaN input element must reach the output */
static void t_nan(run *r) {
    pair x = make_in(r, 3, (int64_t[]){1, 8, 64}, 1.0f, 0.0f, false), y = make_out(r, 3, (int64_t[]){1, 8, 64});
    float nan_host[1] = {NAN};
    sd_tensor one = x.g;
    one.ndim = 1, one.shape[0] = 1;
    sd_backend_upload(r->gpu, &one, nan_host);
    static const char *names[] = {"relu", "layer_norm", "attention", "linear"};
    for (int op = 0; op < 4; op++) {
        pair g = make_in(r, 1, (int64_t[]){64}, 1.0f, 1.0f, true), b = make_in(r, 1, (int64_t[]){64}, 1.0f, 0.0f, true);
        pair w = make_in(r, 2, (int64_t[]){64, 64}, 0.1f, 0.0f, true);
        if (op == 0) sd_op_activation(r->gpu, &y.g, &x.g, SD_ACT_RELU);
        if (op == 1) sd_op_layer_norm(r->gpu, &y.g, &x.g, &g.g, &b.g, 1e-5f);
        if (op == 2) sd_op_attention(r->gpu, &y.g, &x.g, &x.g, &x.g, 1, false);
        if (op == 3) sd_op_linear(r->gpu, &y.g, &x.g, &w.g, &b.g);
        float out[512];
        sd_backend_download(r->gpu, out, &y.g);
        bool has_nan = isnan(out[0]);
        r->checks++;
        if (!has_nan || sd_backend_status(r->gpu) != SD_OK) r->failures++;
        printf("%s %-5s NaN propagates through %s\n", has_nan ? "ok  " : "FAIL", sd_dtype_name(r->dt), names[op]);
        sd_backend_clear_status(r->gpu);
        free_pair(r, &g), free_pair(r, &b), free_pair(r, &w);
    }
    free_pair(r, &x), free_pair(r, &y);
}

static void run_all(run *r) {
    t_linear(r, 2, 77, 40, 72, true);
    t_linear(r, 1, 1, 1, 1, false);
    t_linear(r, 3, 5, 333, 129, false);
    t_linear(r, 2, 300, 320, 1280, true);
    t_attention(r, 2, 77, 77, 8, 40, true);   /* SD 1.x text encoder-like, causal */
    t_attention(r, 2, 77, 77, 12, 64, true);  /* CLIP ViT-L */
    t_attention(r, 1, 300, 77, 5, 64, false); /* cross-attention */
    t_attention(r, 2, 130, 259, 2, 80, false);
    t_attention(r, 1, 65, 33, 1, 160, false);
    t_attention(r, 1, 70, 70, 3, 24, true);
    t_attention(r, 1, 33, 40, 1, 200, false);
    t_attention(r, 1, 5, 1, 2, 8, false);
    t_attention(r, 2, 1030, 1030, 8, 40, false); /* several query blocks and key tiles */
    t_conv(r, 2, 5, 9, 11, 7, 3, 1, 1, true, false, SD_ACT_NONE);
    t_conv(r, 2, 5, 9, 11, 7, 3, 2, 1, true, false, SD_ACT_NONE);
    t_conv(r, 3, 6, 8, 8, 4, 1, 1, 0, false, false, SD_ACT_NONE);
    t_conv(r, 3, 6, 8, 8, 4, 1, 1, 0, true, true, SD_ACT_RELU);
    t_conv(r, 1, 4, 13, 10, 9, 3, 1, 1, true, true, SD_ACT_RELU);
    t_conv(r, 1, 3, 12, 12, 5, 3, 1, 0, false, true, SD_ACT_NONE);
    t_conv(r, 2, 3, 11, 9, 4, 5, 2, 2, true, false, SD_ACT_NONE);
    t_conv(r, 1, 64, 32, 32, 64, 3, 1, 1, true, false, SD_ACT_NONE);
    t_norms(r);
    t_elementwise(r);
    t_layout(r);
    t_frames(r);
    t_nan(r);
}

/* ---- timings ---- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void bench(run *r, double peak_tflops) {
    enum { WARM = 3, ITERS = 20 };
    sd_backend *be = r->gpu;
    printf("\ntimings (%s, %d iterations after %d warm-up; peak fp16 dense %.0f TFLOP/s):\n", sd_dtype_name(r->dt), ITERS,
           WARM, peak_tflops);
    /* UNet level-1 shapes at 512x512 (64x64 latents), batch 2 */
    pair x = make_in(r, 4, (int64_t[]){2, 320, 64, 64}, 1.0f, 0.0f, false), y = make_out(r, 4, (int64_t[]){2, 320, 64, 64});
    pair w = make_in(r, 4, (int64_t[]){320, 320, 3, 3}, 0.02f, 0.0f, true), b = make_in(r, 1, (int64_t[]){320}, 1.0f, 0.0f, true);
    pair g = make_in(r, 1, (int64_t[]){320}, 1.0f, 1.0f, true);
    pair q = make_in(r, 3, (int64_t[]){2, 4096, 320}, 1.0f, 0.0f, false), o = make_out(r, 3, (int64_t[]){2, 4096, 320});
    pair wl = make_in(r, 2, (int64_t[]){1280, 320}, 0.05f, 0.0f, true), ff = make_out(r, 3, (int64_t[]){2, 4096, 1280});
    for (int op = 0; op < 5; op++) {
        static const char *names[] = {"conv3x3 320->320 @64x64 b2", "attention b2 t4096 h8 d40", "linear 8192x320->1280",
                                      "group_norm+silu [2,320,64,64]", "attention b2 t4096 h5 d64"};
        double flops = 0.0;
        double t0 = 0.0;
        for (int it = 0; it < WARM + ITERS; it++) {
            if (it == WARM) {
                sd_backend_synchronize(be);
                t0 = now_ms();
            }
            switch (op) {
            case 0: sd_op_conv2d(be, &y.g, &x.g, &w.g, &b.g, 1, 1), flops = 2.0 * 2 * 320 * 4096 * 320 * 9; break;
            case 1: sd_op_attention(be, &o.g, &q.g, &q.g, &q.g, 8, false), flops = 4.0 * 2 * 4096 * 4096 * 320; break;
            case 2: sd_op_linear(be, &ff.g, &q.g, &wl.g, NULL), flops = 2.0 * 8192 * 320 * 1280; break;
            case 3: sd_op_group_norm(be, &y.g, &x.g, &g.g, &b.g, 32, 1e-5f, true); break;
            case 4: sd_op_attention(be, &o.g, &q.g, &q.g, &q.g, 5, false), flops = 4.0 * 2 * 4096 * 4096 * 320; break;
            }
        }
        sd_backend_synchronize(be);
        double ms = (now_ms() - t0) / ITERS;
        if (sd_backend_status(be) != SD_OK) {
            printf("  %-32s failed: %s\n", names[op], sd_last_error());
            r->failures++;
            sd_backend_clear_status(be);
            continue;
        }
        if (flops > 0) printf("  %-32s %8.3f ms  %7.1f TFLOP/s\n", names[op], ms, flops / ms / 1e9);
        else printf("  %-32s %8.3f ms  %7.1f GB/s\n", names[op], ms, 2.0 * 2 * 320 * 4096 * sd_dtype_size(r->dt) / ms / 1e6);
    }
    free_pair(r, &x), free_pair(r, &y), free_pair(r, &w), free_pair(r, &b), free_pair(r, &g);
    free_pair(r, &q), free_pair(r, &o), free_pair(r, &wl), free_pair(r, &ff);
}

int main(int argc, char **argv) {
    sd_dtype dts[3] = {SD_DTYPE_F32, SD_DTYPE_F16, SD_DTYPE_BF16};
    int n_dts = 3;
    bool do_bench = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bench")) do_bench = true;
        else if (!strcmp(argv[i], "f32")) dts[0] = SD_DTYPE_F32, n_dts = 1;
        else if (!strcmp(argv[i], "f16")) dts[0] = SD_DTYPE_F16, n_dts = 1;
        else if (!strcmp(argv[i], "bf16")) dts[0] = SD_DTYPE_BF16, n_dts = 1;
        else {
            fprintf(stderr, "usage: %s [f32|f16|bf16] [--bench]\n", argv[0]);
            return 2;
        }
    }
    sd_cuda_device_info info;
    if (sd_cuda_device_info_get(&info) != SD_OK) {
        fprintf(stderr, "cuda_parity: %s\n", sd_last_error());
        return 2;
    }
    printf("%s: compute capability %d.%d, %d SMs, %.2f GHz, %.1f GiB, driver %d, runtime %d, fp16 dense peak %.0f "
           "TFLOP/s\n", info.name, info.cc_major, info.cc_minor, info.sm_count, info.clock_ghz,
           info.total_mem / 1073741824.0, info.driver_version, info.runtime_version, info.fp16_dense_tflops);
    int checks = 0, failures = 0;
    for (int i = 0; i < n_dts; i++) {
        run r = {.dt = dts[i]};
        sd_rng_seed(&r.rng, 1234);
        if (sd_backend_create(&r.cpu, SD_BACKEND_CPU, 0) != SD_OK ||
            sd_backend_create_dtype(&r.gpu, SD_BACKEND_CUDA, 0, dts[i]) != SD_OK) {
            fprintf(stderr, "cuda_parity: %s\n", sd_last_error());
            if (r.cpu) sd_backend_free(r.cpu);
            return 2;
        }
        run_all(&r);
        if (do_bench) bench(&r, info.fp16_dense_tflops);
        checks += r.checks, failures += r.failures;
        sd_backend_free(r.gpu);
        sd_backend_free(r.cpu);
    }
    printf("\n%d checks, %d failed; device memory in use at exit %.1f MiB\n", checks, failures,
           sd_cuda_memory_used() / 1048576.0);
    return failures ? 1 : 0;
}
