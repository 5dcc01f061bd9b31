/* backend_ops_cases.c — test_backend_ops's cases, op by op: how each op runs on a backend, its
 * plain reference, and its shapes. Small shapes run everywhere (against the plain loops too);
 * `big` ones are the real models' sizes (SD 1.5 / SD 2.x / CLIP / TAESD / VAE), run against the
 * CPU backend when another backend is under test. Every op of backend.h has cases here: a new op
 * comes with its own (DESIGN.md, style rule 8). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_ops.h"
#include "backend_ops_ref.h"
#include "check.h"

/* ---- the ops: how each runs on a backend, and its plain reference ---- */

static void run_linear(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_linear(be, out, &in[0], &in[1], c->n_in > 2 ? &in[2] : NULL);
}
static void ref_linear_case(float *out, float *const *in, const op_case *c) {
    const op_input *x = &c->in[0];
    int64_t k = x->shape[x->ndim - 1], m = numel_of(x->ndim, x->shape) / k;
    ref_linear(out, in[0], in[1], c->n_in > 2 ? in[2] : NULL, m, k, c->in[1].shape[0]);
}

static void cases_linear(harness *h) {
    static const struct {
        int64_t b, m, k, n;
        bool bias, big;
        sd_dtype w;
    } cs[] = {
        {1, 1, 1, 1, false, false, SD_DTYPE_F32},     {1, 3, 7, 5, true, false, SD_DTYPE_F32},
        {2, 77, 33, 96, false, false, SD_DTYPE_F32},  {3, 13, 130, 17, true, false, SD_DTYPE_F16},
        {8, 5, 64, 40, true, false, SD_DTYPE_BF16},   {1, 200, 64, 33, true, false, SD_DTYPE_F32},
        {1, 4095, 64, 40, true, true, SD_DTYPE_F32},  {2, 1024, 320, 2560, true, true, SD_DTYPE_F16},
        {2, 77, 1024, 320, false, true, SD_DTYPE_F16}, {8, 16, 1280, 320, true, true, SD_DTYPE_BF16},
        {1, 4096, 320, 320, true, true, SD_DTYPE_F32}, {2, 256, 1280, 1280, true, true, SD_DTYPE_F16},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        op_case c = new_case("linear", run_linear, ref_linear_case);
        add_in(&c, cs[i].b > 1 ? t3(cs[i].b, cs[i].m, cs[i].k) : t2(cs[i].m, cs[i].k));
        add_in(&c, scaled(as_weight(t2(cs[i].n, cs[i].k), cs[i].w), 1.0f / sqrtf((float)cs[i].k), 0.0f));
        if (cs[i].bias) add_in(&c, as_weight(t1(cs[i].n), SD_DTYPE_F32));
        set_out(&c, cs[i].b > 1 ? t3(cs[i].b, cs[i].m, cs[i].n) : t2(cs[i].m, cs[i].n));
        run_case(h, &c, cs[i].big);
    }
}

static void run_layer_norm(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_layer_norm(be, out, &in[0], &in[1], &in[2], c->f[0]);
}
static void ref_layer_norm_case(float *out, float *const *in, const op_case *c) {
    int64_t cols = c->in[1].shape[0];
    ref_layer_norm(out, in[0], in[1], in[2], numel_of(c->in[0].ndim, c->in[0].shape) / cols, cols, c->f[0]);
}

static void cases_layer_norm(harness *h) {
    static const int64_t cs[][3] = {{1, 1, 7}, {1, 13, 37}, {2, 77, 32}, {3, 5, 1001},
                                    {2, 4096, 320}, {2, 77, 1024}, {8, 77, 1280}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        op_case c = new_case("layer_norm", run_layer_norm, ref_layer_norm_case);
        add_in(&c, scaled(t3(cs[i][0], cs[i][1], cs[i][2]), 3.0f, 5.0f)); /* a mean far from 0 */
        add_in(&c, as_weight(t1(cs[i][2]), SD_DTYPE_F32));
        add_in(&c, as_weight(t1(cs[i][2]), SD_DTYPE_F32));
        set_out(&c, c.in[0]);
        c.f[0] = 1e-5f;
        run_case(h, &c, i >= 4);
    }
}

static void run_attention(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_attention(be, out, &in[0], &in[1], &in[2], (int)c->p[0], c->flag);
}
static void ref_attention_case(float *out, float *const *in, const op_case *c) {
    ref_attention(out, in[0], in[1], in[2], c->in[0].shape[0], c->in[0].shape[1], c->in[1].shape[1],
                  c->in[0].shape[2], (int)c->p[0], c->flag);
}

static void cases_attention(harness *h) {
    static const struct {
        int64_t b, tq, tk;
        int heads, d;
        bool causal, big;
        float qscale;
    } cs[] = {
        {1, 1, 1, 1, 8, false, false, 1.0f},      {2, 77, 77, 4, 8, true, false, 1.0f},
        {1, 77, 77, 2, 40, true, false, 1.0f},    {3, 33, 77, 2, 40, false, false, 1.0f},
        {1, 1, 77, 8, 40, false, false, 1.0f},    {2, 65, 1, 1, 64, false, false, 1.0f},
        {1, 17, 17, 1, 80, true, false, 1.0f},    {1, 9, 23, 1, 160, false, false, 1.0f},
        {8, 16, 16, 2, 64, false, false, 1.0f},   {2, 40, 40, 3, 64, false, false, 4.0f}, /* sharp scores */
        /* the tiny reference models': SD 1.5 heads of 4 and 8, SD 2.x of 16, the VAE's one head of 32 */
        {2, 64, 64, 8, 4, false, false, 1.0f},    {2, 64, 77, 8, 4, false, false, 1.0f},
        {2, 36, 77, 4, 16, false, false, 1.0f},   {1, 256, 256, 1, 32, false, false, 1.0f},
        /* real models: SD 1.5 heads of 40/80/160, SD 2.x and CLIP of 64, 4095 and 77 tokens */
        {2, 77, 77, 12, 64, true, true, 1.0f},    {2, 77, 77, 16, 64, true, true, 1.0f},
        {1, 4095, 4095, 8, 40, false, true, 1.0f}, {2, 4095, 77, 8, 40, false, true, 1.0f},
        {2, 1024, 1024, 8, 80, false, true, 1.0f}, {2, 1023, 77, 8, 80, false, true, 1.0f},
        {2, 256, 256, 8, 160, false, true, 1.0f}, {4, 64, 77, 8, 160, false, true, 1.0f},
        {1, 4096, 4096, 5, 64, false, true, 1.0f}, {1, 1024, 1024, 10, 64, false, true, 4.0f},
        {3, 255, 255, 20, 64, false, true, 1.0f}, {1, 1024, 1024, 1, 256, false, true, 1.0f},
        /* the full-size VAE's one 512-wide head (4096 tokens at 512x512; the CPU refused heads over
         * 256 until this case found it) */
        {1, 70, 70, 1, 512, false, false, 1.0f},  {1, 4096, 4096, 1, 512, false, true, 1.0f},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        op_case c = new_case("attention", run_attention, ref_attention_case);
        int64_t ch = (int64_t)cs[i].heads * cs[i].d;
        add_in(&c, scaled(t3(cs[i].b, cs[i].tq, ch), cs[i].qscale, 0.0f));
        add_in(&c, t3(cs[i].b, cs[i].tk, ch));
        add_in(&c, t3(cs[i].b, cs[i].tk, ch));
        set_out(&c, c.in[0]);
        c.p[0] = cs[i].heads;
        c.flag = cs[i].causal;
        snprintf(c.extra, sizeof c.extra, "h%d d%d%s", cs[i].heads, cs[i].d, cs[i].causal ? " causal" : "");
        run_case(h, &c, cs[i].big);
    }
}

static void run_activation(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_activation(be, out, &in[0], (sd_activation)c->p[0]);
}
static void ref_activation_case(float *out, float *const *in, const op_case *c) {
    ref_activation(out, in[0], numel_of(c->in[0].ndim, c->in[0].shape), (int)c->p[0]);
}

static void cases_activation(harness *h) {
    static const char *names[] = {"none", "gelu", "quick_gelu", "silu", "relu", "tanh", "exp"};
    for (int a = SD_ACT_NONE; a <= SD_ACT_EXP; a++)
        for (int k = 0; k < 4; k++) {
            op_case c = new_case("activation", run_activation, ref_activation_case);
            op_input x = k == 0 ? t2(1, 7) : k == 1 ? t3(3, 77, 37) : k == 2 ? t4(2, 320, 33, 17) : t2(13, 1001);
            add_in(&c, scaled(x, a == SD_ACT_EXP ? 1.5f : 2.0f, 0.0f));
            set_out(&c, x);
            c.p[0] = a;
            c.alias = k == 3 ? 0 : -1;
            snprintf(c.extra, sizeof c.extra, "%s", names[a]);
            run_case(h, &c, k == 2);
        }
}

static void run_add(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) { sd_op_add(be, out, &in[0], &in[1]); }
static void ref_add_case(float *out, float *const *in, const op_case *c) {
    ref_add(out, in[0], in[1], numel_of(c->in[0].ndim, c->in[0].shape));
}
static void run_mul(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) { sd_op_mul(be, out, &in[0], &in[1]); }
static void ref_mul_case(float *out, float *const *in, const op_case *c) {
    ref_mul(out, in[0], in[1], numel_of(c->in[0].ndim, c->in[0].shape));
}
static void run_axpby(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_axpby(be, out, c->f[0], &in[0], c->f[1], &in[1]);
}
static void ref_axpby_case(float *out, float *const *in, const op_case *c) {
    ref_axpby(out, c->f[0], in[0], c->f[1], in[1], numel_of(c->in[0].ndim, c->in[0].shape));
}

/* add, mul, axpby: same shapes, out on its own, on a, on b */
static void cases_binary(harness *h) {
    static const struct {
        const char *op;
        op_run_fn run;
        op_ref_fn ref;
    } ops[] = {{"add", run_add, ref_add_case}, {"mul", run_mul, ref_mul_case}, {"axpby", run_axpby, ref_axpby_case}};
    for (size_t o = 0; o < 3; o++)
        for (int k = 0; k < 6; k++) {
            op_case c = new_case(ops[o].op, ops[o].run, ops[o].ref);
            op_input x = k == 0 ? t1(1) : k == 1 ? t2(7, 1) : k == 2 ? t4(2, 5, 3, 7) : k == 3 ? t3(4, 77, 1001)
                       : k == 4 ? t4(2, 4, 64, 64) : t4(8, 320, 32, 33);
            add_in(&c, x);
            add_in(&c, x);
            set_out(&c, x);
            c.alias = k == 3 ? 0 : k == 4 ? 1 : -1;
            c.f[0] = 0.7f, c.f[1] = -1.3f;
            if (o == 2) snprintf(c.extra, sizeof c.extra, "a %.1f b %.1f", c.f[0], c.f[1]);
            run_case(h, &c, k >= 4);
        }
}

static void run_scale(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_scale(be, out, &in[0], c->f[0], c->f[1]);
}
static void ref_scale_case(float *out, float *const *in, const op_case *c) {
    ref_scale(out, in[0], numel_of(c->in[0].ndim, c->in[0].shape), c->f[0], c->f[1]);
}

static void cases_scale(harness *h) {
    for (int k = 0; k < 4; k++) {
        op_case c = new_case("scale", run_scale, ref_scale_case);
        op_input x = k == 0 ? t1(3) : k == 1 ? t4(1, 3, 9, 11) : k == 2 ? t2(77, 1001) : t4(2, 3, 512, 512);
        add_in(&c, x);
        set_out(&c, x);
        c.alias = k == 2 ? 0 : -1;
        c.f[0] = k == 1 ? 0.5f : 1.5f, c.f[1] = k == 1 ? 0.5f : -0.25f;
        snprintf(c.extra, sizeof c.extra, "x %.2f + %.2f", c.f[0], c.f[1]);
        run_case(h, &c, k == 3);
    }
}

static void run_softmax(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) { sd_op_softmax(be, out, &in[0]); }
static void ref_softmax_case(float *out, float *const *in, const op_case *c) {
    const op_input *x = &c->in[0];
    int64_t cols = x->shape[x->ndim - 1];
    ref_softmax(out, in[0], numel_of(x->ndim, x->shape) / cols, cols);
}

static void cases_softmax(harness *h) {
    static const int64_t cs[][2] = {{1, 1}, {13, 37}, {77, 77}, {3, 1025}, {1024, 1024}, {320, 4095}, {8 * 77, 77}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        op_case c = new_case("softmax", run_softmax, ref_softmax_case);
        add_in(&c, scaled(t2(cs[i][0], cs[i][1]), 3.0f, 1.0f));
        set_out(&c, c.in[0]);
        run_case(h, &c, i >= 4);
    }
}

static void run_embedding(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_embedding(be, out, &in[0], c->ids);
}
static void ref_embedding_case(float *out, float *const *in, const op_case *c) {
    ref_embedding(out, in[0], c->ids, c->out_shape[0], c->out_shape[1]);
}

static void cases_embedding(harness *h) {
    static const struct {
        int64_t vocab, cols, rows;
        sd_dtype w;
        bool big;
    } cs[] = {{5, 8, 3, SD_DTYPE_F32, false},   {100, 37, 77, SD_DTYPE_F32, false},
              {301, 33, 77, SD_DTYPE_F16, false}, {49, 40, 7, SD_DTYPE_BF16, false},
              {49408, 768, 77, SD_DTYPE_F16, true}, {4097, 1024, 77, SD_DTYPE_F32, true}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int32_t ids[77];
        for (int64_t r = 0; r < cs[i].rows; r++) ids[r] = (int32_t)(sd_rng_next_u32(&h->rng) % (uint32_t)cs[i].vocab);
        ids[0] = 0; /* the table's first and last rows */
        ids[cs[i].rows - 1] = (int32_t)cs[i].vocab - 1;
        op_case c = new_case("embedding", run_embedding, ref_embedding_case);
        add_in(&c, as_weight(t2(cs[i].vocab, cs[i].cols), cs[i].w));
        set_out(&c, t2(cs[i].rows, cs[i].cols));
        c.ids = ids;
        snprintf(c.extra, sizeof c.extra, "%lld ids", (long long)cs[i].rows);
        run_case(h, &c, cs[i].big);
    }
}

/* conv2d: in [N, Ci, H, W], weight [Co, Ci, k, k] (p[0] = k), bias, residual; stride p[1], pad p[2] */
static void run_conv2d(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    const sd_tensor *bias = c->p[3] & 1 ? &in[2] : NULL;
    const sd_tensor *res = c->p[3] & 2 ? &in[(c->p[3] & 1) ? 3 : 2] : NULL;
    sd_op_conv2d_fused(be, out, &in[0], &in[1], bias, (int)c->p[1], (int)c->p[2], res, c->flag ? SD_ACT_RELU : SD_ACT_NONE);
}
static void ref_conv2d_case(float *out, float *const *in, const op_case *c) {
    const int64_t *s = c->in[0].shape;
    const float *bias = c->p[3] & 1 ? in[2] : NULL;
    const float *res = c->p[3] & 2 ? in[(c->p[3] & 1) ? 3 : 2] : NULL;
    ref_conv2d(out, in[0], in[1], bias, res, s[0], s[1], s[2], s[3], c->in[1].shape[0], c->p[0], (int)c->p[1],
               (int)c->p[2], c->flag);
}

static void cases_conv2d(harness *h) {
    static const struct {
        int64_t n, ci, h, w, co, k;
        int s, p;
        bool bias, res, relu, big;
        sd_dtype wt;
    } cs[] = {
        {1, 3, 7, 9, 5, 3, 1, 1, true, false, false, false, SD_DTYPE_F32},
        {2, 4, 17, 33, 6, 3, 2, 1, false, false, false, false, SD_DTYPE_F32},
        {3, 5, 8, 8, 7, 1, 1, 0, true, false, false, false, SD_DTYPE_F16},
        {1, 3, 5, 6, 2, 3, 1, 0, false, false, false, false, SD_DTYPE_F32},
        {8, 2, 4, 20, 3, 3, 1, 1, true, false, false, false, SD_DTYPE_BF16},
        {1, 7, 12, 13, 9, 1, 2, 0, true, false, false, false, SD_DTYPE_F32},
        {2, 6, 9, 11, 5, 3, 1, 1, true, true, true, false, SD_DTYPE_F32},
        {1, 16, 10, 13, 16, 3, 1, 1, true, true, false, false, SD_DTYPE_F16},
        {1, 8, 6, 7, 4, 3, 2, 0, false, false, true, false, SD_DTYPE_F32},
        {1, 33, 6, 40, 17, 1, 1, 0, false, true, true, false, SD_DTYPE_F32},
        /* real models: conv_in, a ResNet conv, a downsampler, a 1x1 shortcut, TAESD's blocks */
        {2, 4, 64, 64, 320, 3, 1, 1, true, false, false, true, SD_DTYPE_F16},
        {1, 320, 64, 64, 320, 3, 1, 1, true, true, false, true, SD_DTYPE_F16},
        {1, 320, 64, 64, 320, 3, 2, 1, true, false, false, true, SD_DTYPE_F32},
        {1, 640, 33, 17, 1280, 1, 1, 0, true, false, false, true, SD_DTYPE_F16},
        {1, 64, 64, 64, 64, 3, 1, 1, true, true, true, true, SD_DTYPE_F16},
        {4, 3, 130, 70, 64, 3, 1, 1, true, false, true, true, SD_DTYPE_BF16},
        {1, 64, 64, 64, 4, 3, 1, 1, true, false, false, true, SD_DTYPE_F32},
        {2, 1280, 8, 8, 1280, 3, 1, 1, true, false, false, true, SD_DTYPE_F16},
        {1, 128, 256, 256, 128, 3, 1, 1, true, false, false, true, SD_DTYPE_F16}, /* the VAE decoder */
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        op_case c = new_case("conv2d", run_conv2d, ref_conv2d_case);
        int64_t ho = (cs[i].h + 2 * cs[i].p - cs[i].k) / cs[i].s + 1, wo = (cs[i].w + 2 * cs[i].p - cs[i].k) / cs[i].s + 1;
        add_in(&c, t4(cs[i].n, cs[i].ci, cs[i].h, cs[i].w));
        add_in(&c, scaled(as_weight(t4(cs[i].co, cs[i].ci, cs[i].k, cs[i].k), cs[i].wt),
                          1.0f / sqrtf((float)(cs[i].ci * cs[i].k * cs[i].k)), 0.0f));
        if (cs[i].bias) add_in(&c, as_weight(t1(cs[i].co), SD_DTYPE_F32));
        if (cs[i].res) add_in(&c, t4(cs[i].n, cs[i].co, ho, wo));
        set_out(&c, t4(cs[i].n, cs[i].co, ho, wo));
        c.p[0] = cs[i].k, c.p[1] = cs[i].s, c.p[2] = cs[i].p, c.p[3] = (cs[i].bias ? 1 : 0) | (cs[i].res ? 2 : 0);
        c.flag = cs[i].relu;
        snprintf(c.extra, sizeof c.extra, "k%lld s%d p%d%s%s%s", (long long)cs[i].k, cs[i].s, cs[i].p,
                 cs[i].bias ? " +b" : "", cs[i].res ? " +res" : "", cs[i].relu ? " relu" : "");
        run_case(h, &c, cs[i].big);
    }
}

static void run_group_norm(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_group_norm(be, out, &in[0], &in[1], &in[2], (int)c->p[0], c->f[0], c->flag);
}
static void ref_group_norm_case(float *out, float *const *in, const op_case *c) {
    const int64_t *s = c->in[0].shape;
    ref_group_norm(out, in[0], in[1], in[2], s[0], s[1], s[2] * s[3], (int)c->p[0], c->f[0], c->flag);
}

static void cases_group_norm(harness *h) {
    static const struct {
        int64_t n, c, h, w;
        int groups;
        bool big;
    } cs[] = {{1, 6, 5, 7, 3, false},    {2, 64, 9, 9, 32, false},     {8, 12, 3, 1, 3, false},
              {1, 32, 33, 17, 8, false},  {3, 96, 5, 29, 32, false},    {1, 320, 64, 64, 32, true},
              {2, 640, 32, 33, 32, true}, {1, 1280, 8, 8, 32, true},    {4, 128, 65, 33, 32, true},
              {1, 128, 256, 256, 32, true}, {1, 128, 512, 512, 32, true}}; /* the VAE decoder's last level */
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int silu = 0; silu < 2; silu++) {
            op_case c = new_case("group_norm", run_group_norm, ref_group_norm_case);
            add_in(&c, scaled(t4(cs[i].n, cs[i].c, cs[i].h, cs[i].w), 3.0f, 5.0f));
            add_in(&c, as_weight(t1(cs[i].c), SD_DTYPE_F32));
            add_in(&c, as_weight(t1(cs[i].c), SD_DTYPE_F32));
            set_out(&c, c.in[0]);
            c.p[0] = cs[i].groups;
            c.f[0] = 1e-5f;
            c.flag = silu;
            snprintf(c.extra, sizeof c.extra, "g%d%s", cs[i].groups, silu ? " +silu" : "");
            run_case(h, &c, cs[i].big);
        }
}

static void run_upsample(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    if (c->flag) sd_op_upsample_nearest2x(be, out, &in[0]);
    else sd_op_upsample_nearest(be, out, &in[0]);
}
static void ref_upsample_case(float *out, float *const *in, const op_case *c) {
    const int64_t *s = c->in[0].shape;
    ref_upsample_nearest(out, in[0], s[0] * s[1], s[2], s[3], c->out_shape[2], c->out_shape[3]);
}

static void cases_upsample(harness *h) {
    static const int64_t cs[][7] = {
        /* n, c, h, w, ho, wo, big */
        {1, 3, 5, 7, 10, 14, 0},    {2, 4, 3, 3, 5, 7, 0},       {1, 2, 4, 4, 4, 4, 0},    {3, 5, 1, 9, 2, 18, 0},
        {1, 3, 4, 6, 6, 13, 0},     {1, 1280, 8, 8, 16, 16, 1},  {2, 640, 33, 17, 66, 34, 1},
        {1, 64, 64, 64, 128, 128, 1}, {1, 4, 48, 40, 64, 64, 1},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        op_case c = new_case("upsample_nearest", run_upsample, ref_upsample_case);
        add_in(&c, t4(cs[i][0], cs[i][1], cs[i][2], cs[i][3]));
        set_out(&c, t4(cs[i][0], cs[i][1], cs[i][4], cs[i][5]));
        c.flag = cs[i][4] == 2 * cs[i][2] && cs[i][5] == 2 * cs[i][3];
        snprintf(c.extra, sizeof c.extra, "-> %lldx%lld%s", (long long)cs[i][4], (long long)cs[i][5], c.flag ? " (2x)" : "");
        run_case(h, &c, cs[i][6] != 0);
    }
}

static void run_add_broadcast(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_add_broadcast(be, out, &in[0], &in[1]);
}
static void ref_add_broadcast_case(float *out, float *const *in, const op_case *c) {
    const int64_t *s = c->in[0].shape;
    int64_t n = s[0], ch = s[1], rest = numel_of(c->in[0].ndim, s) / (n * ch);
    ref_add_broadcast(out, in[0], in[1], n, ch, rest, numel_of(c->in[1].ndim, c->in[1].shape) == n * ch);
}

static void cases_add_broadcast(harness *h) {
    const struct {
        op_input a;
        bool per_batch, in_place, big;
    } cs[] = {
        {t4(2, 5, 3, 7), false, false, false},  {t4(2, 5, 3, 7), true, false, false},
        {t4(8, 3, 1, 1), true, true, false},    {t3(3, 7, 33), false, true, false},
        {t4(2, 320, 64, 64), true, true, true}, {t4(1, 1280, 8, 8), false, false, true},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        op_case c = new_case("add_broadcast", run_add_broadcast, ref_add_broadcast_case);
        add_in(&c, cs[i].a);
        add_in(&c, cs[i].per_batch ? t2(cs[i].a.shape[0], cs[i].a.shape[1]) : t1(cs[i].a.shape[1]));
        set_out(&c, cs[i].a);
        c.alias = cs[i].in_place ? 0 : -1;
        run_case(h, &c, cs[i].big);
    }
}

static void run_geglu(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) { sd_op_geglu(be, out, &in[0]); }
static void ref_geglu_case(float *out, float *const *in, const op_case *c) {
    int64_t f = c->out_shape[c->out_ndim - 1];
    ref_geglu(out, in[0], numel_of(c->out_ndim, c->out_shape) / f, f);
}

static void cases_geglu(harness *h) {
    static const int64_t cs[][4] = {{1, 1, 1, 0}, {1, 3, 5, 0}, {2, 77, 37, 0}, {8, 9, 64, 0},
                                    {2, 4096, 1280, 1}, {2, 1024, 2560, 1}, {4, 64, 5120, 1}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        op_case c = new_case("geglu", run_geglu, ref_geglu_case);
        add_in(&c, scaled(t3(cs[i][0], cs[i][1], 2 * cs[i][2]), 2.0f, 0.0f));
        set_out(&c, t3(cs[i][0], cs[i][1], cs[i][2]));
        run_case(h, &c, cs[i][3] != 0);
    }
}

static void run_transpose(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_transpose_hw_c(be, out, &in[0], c->flag);
}
static void ref_transpose_case(float *out, float *const *in, const op_case *c) {
    const int64_t *img = c->flag ? c->in[0].shape : c->out_shape; /* [N, C, H, W] */
    ref_transpose_hw_c(out, in[0], img[0], img[1], img[2] * img[3], c->flag);
}

static void cases_transpose(harness *h) {
    static const int64_t cs[][5] = {{1, 6, 5, 7, 0},   {3, 5, 1, 9, 0},     {2, 33, 4, 17, 0},  {8, 3, 2, 2, 0},
                                    {2, 320, 64, 64, 1}, {1, 1280, 8, 8, 1}, {1, 77, 33, 65, 1}, {4, 640, 32, 32, 1}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int to_cl = 1; to_cl >= 0; to_cl--) {
            op_case c = new_case("transpose_hw_c", run_transpose, ref_transpose_case);
            op_input img = t4(cs[i][0], cs[i][1], cs[i][2], cs[i][3]), seq = t3(cs[i][0], cs[i][2] * cs[i][3], cs[i][1]);
            add_in(&c, to_cl ? img : seq);
            set_out(&c, to_cl ? seq : img);
            c.flag = to_cl;
            snprintf(c.extra, sizeof c.extra, "%s", to_cl ? "to (N,HW,C)" : "to NCHW");
            run_case(h, &c, cs[i][4] != 0);
        }
}

static void run_concat(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_concat_channels(be, out, &in[0], &in[1]);
}
static void ref_concat_case(float *out, float *const *in, const op_case *c) {
    int64_t n = c->in[0].shape[0];
    ref_concat_channels(out, in[0], in[1], n, numel_of(c->in[0].ndim, c->in[0].shape) / n,
                        numel_of(c->in[1].ndim, c->in[1].shape) / n);
}

static void cases_concat(harness *h) {
    static const int64_t cs[][6] = {/* n, ca, cb, h, w, big */
                                    {2, 3, 4, 5, 7, 0},     {1, 1, 2, 1, 1, 0},    {3, 5, 2, 0, 0, 0},
                                    {8, 4, 4, 3, 17, 0},    {1, 640, 320, 32, 32, 1}, {2, 1280, 640, 8, 8, 1},
                                    {2, 320, 320, 64, 64, 1}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        op_case c = new_case("concat_channels", run_concat, ref_concat_case);
        bool img = cs[i][3] > 0;
        add_in(&c, img ? t4(cs[i][0], cs[i][1], cs[i][3], cs[i][4]) : t2(cs[i][0], cs[i][1]));
        add_in(&c, img ? t4(cs[i][0], cs[i][2], cs[i][3], cs[i][4]) : t2(cs[i][0], cs[i][2]));
        set_out(&c, img ? t4(cs[i][0], cs[i][1] + cs[i][2], cs[i][3], cs[i][4]) : t2(cs[i][0], cs[i][1] + cs[i][2]));
        run_case(h, &c, cs[i][5] != 0);
    }
}

static void run_copy(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) { sd_op_copy(be, out, &in[0]); }
static void ref_copy_case(float *out, float *const *in, const op_case *c) {
    memcpy(out, in[0], (size_t)numel_of(c->in[0].ndim, c->in[0].shape) * sizeof *out);
}
static void run_fill(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) { sd_op_fill(be, out, c->f[0]); }
static void ref_fill_case(float *out, float *const *in, const op_case *c) {
    for (int64_t i = 0, n = numel_of(c->out_ndim, c->out_shape); i < n; i++) out[i] = c->f[0];
}

static void cases_copy_fill(harness *h) {
    const struct {
        op_input in, out;
        bool big;
    } cs[] = {
        {t1(1), t1(1), false},
        {t4(2, 3, 5, 7), t4(2, 3, 5, 7), false},
        {t2(77, 33), t3(1, 77, 33), false},
        {t4(2, 4, 64, 64), t2(8, 4096), true},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        op_case c = new_case("copy", run_copy, ref_copy_case);
        add_in(&c, cs[i].in);
        set_out(&c, cs[i].out);
        run_case(h, &c, cs[i].big);
        op_case f = new_case("fill", run_fill, ref_fill_case);
        set_out(&f, cs[i].out);
        f.f[0] = i % 2 ? -3.25f : 0.5f;
        snprintf(f.extra, sizeof f.extra, "[%lld] = %.2f", (long long)numel_of(f.out_ndim, f.out_shape), f.f[0]);
        run_case(h, &f, cs[i].big);
    }
}

static void run_rgb8_to_image(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_rgb8_to_image(be, out, &in[0]);
}
static void ref_rgb8_to_image_case(float *out, float *const *in, const op_case *c) {
    ref_rgb8_to_image(out, in[0], c->in[0].shape[0], c->in[0].shape[1], c->in[0].shape[2]);
}
static void run_image_to_rgb8(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_image_to_rgb8(be, out, &in[0]);
}
static void ref_image_to_rgb8_case(float *out, float *const *in, const op_case *c) {
    ref_image_to_rgb8(out, in[0], c->in[0].shape[0], c->in[0].shape[2], c->in[0].shape[3]);
}

/* the frames in and out of the pipeline: 8-bit RGB <-> the image tensor */
static void cases_rgb8(harness *h) {
    static const int64_t cs[][4] = {{1, 1, 1, 0}, {1, 8, 8, 0}, {2, 17, 33, 0}, {1, 128, 96, 0}, {4, 512, 512, 1}, {1, 513, 7, 1}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int64_t n = cs[i][0], ht = cs[i][1], w = cs[i][2];
        op_case a = new_case("rgb8_to_image", run_rgb8_to_image, ref_rgb8_to_image_case);
        op_input rgb = t4(n, ht, w, 3);
        rgb.u8 = true;
        add_in(&a, rgb);
        set_out(&a, t4(n, 3, ht, w));
        run_case(h, &a, cs[i][3] != 0);
        op_case b = new_case("image_to_rgb8", run_image_to_rgb8, ref_image_to_rgb8_case);
        op_input img = scaled(t4(n, 3, ht, w), 0.7f, 0.0f); /* some past -1 and 1: the clamp */
        img.specials = ht * w > 100;
        add_in(&b, img);
        set_out(&b, t4(n, ht, w, 3));
        b.out_u8 = true;
        snprintf(b.extra, sizeof b.extra, "%s", img.specials ? "with NaN, +-Inf" : "");
        run_case(h, &b, cs[i][3] != 0);
    }
}

/* upload then download: values the dtype holds come back exactly; any float32 within the limit */
static void check_round_trip(harness *h) {
    if (h->only && !strstr("upload_download", h->only)) return;
    static const int64_t sizes[] = {1, 7, 1001, 3 * 512 * 512};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t n = sizes[i];
        float *x = malloc((size_t)n * sizeof *x), *r = malloc((size_t)n * sizeof *r), *y = malloc((size_t)n * sizeof *y);
        sd_rng_randn(&h->rng, x, n);
        for (int64_t j = 0; j < n; j++) x[j] = x[j] * 100.0f, r[j] = round_to(h->dtype, x[j]);
        CHECK_OK(sd_arena_reset(&h->test_arena));
        sd_tensor t = sd_backend_tensor(h->test, &h->test_arena, 1, (int64_t[]){n});
        double err[2];
        for (int k = 0; k < 2; k++) {
            for (int64_t j = 0; j < n; j++) y[j] = NAN;
            sd_backend_upload(h->test, &t, k ? x : r);
            sd_backend_download(h->test, y, &t);
            err[k] = check_rel_error(y, r, (size_t)n);
        }
        bool exact = sd_backend_status(h->test) == SD_OK && err[0] == 0.0; /* 0 only when every value is equal */
        bool ok = sd_backend_status(h->test) == SD_OK && exact && err[1] < h->limit;
        char desc[64];
        snprintf(desc, sizeof desc, "[%lld] x 100", (long long)n);
        printf("%-17s %-58s %-4s err %9.2e limit %.0e %10s  %s (values the dtype holds: %s)\n", "upload_download", desc,
               dtype_label(h->dtype), err[1], h->limit, "", ok ? "pass" : "FAIL", exact ? "exact" : "NOT exact");
        CHECK(ok, "upload/download of %lld floats: representable values %s, any float32: relative error %.3g (%s)",
              (long long)n, exact ? "exact" : "changed", err[1], sd_last_error());
        if (ok) h->passed++;
        else h->failed++;
        sd_backend_clear_status(h->test);
        free(x), free(r), free(y);
    }
}

void run_all(harness *h) {
    cases_linear(h);
    cases_layer_norm(h);
    cases_attention(h);
    cases_activation(h);
    cases_binary(h);
    cases_scale(h);
    cases_softmax(h);
    cases_embedding(h);
    cases_conv2d(h);
    cases_group_norm(h);
    cases_upsample(h);
    cases_add_broadcast(h);
    cases_geglu(h);
    cases_transpose(h);
    cases_concat(h);
    cases_copy_fill(h);
    cases_rgb8(h);
    check_round_trip(h);
}
