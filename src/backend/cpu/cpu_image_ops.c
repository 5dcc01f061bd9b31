/* cpu_image_ops.c — float32 CPU kernels for the image-model ops: group norm (+SiLU), nearest
 * upsampling, broadcast add, GEGLU, NCHW <-> NHWC transposes, channel concat and the host copies.
 * Memory-bound loops, split over the pool by planes / rows / tiles; statistics accumulate in
 * double across float-lane partial sums. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "base/image.h"

/* Items per chunk so a chunk covers at least 16K floats: tiny tensors run inline on the caller. */
static int64_t item_grain(sd_backend *be, int64_t items, int64_t floats_per_item) {
    int64_t min_items = 16384 / (floats_per_item > 0 ? floats_per_item : 1);
    return sd_pool_grain(sd_cpu(be)->pool, items, 4, min_items > 0 ? min_items : 1);
}

typedef struct gn_job {
    const sd_cpu_vec *vec;
    const float *x, *g, *b;
    float *y;
    int64_t c, groups, cpg, spatial;
    float eps;
    bool silu;
} gn_job;

/* Items are (image, group) pairs: statistics over cpg x spatial floats, then the fused affine
 * (+ SiLU) per channel with the SIMD row kernel. */
static void group_norm_items(void *ctx, int64_t begin, int64_t end, int thread) {
    const gn_job *j = ctx;
    for (int64_t it = begin; it < end; it++) {
        int64_t b = it / j->groups, grp = it % j->groups, count = j->cpg * j->spatial;
        const float *x = j->x + (b * j->c + grp * j->cpg) * j->spatial;
        float *y = j->y + (b * j->c + grp * j->cpg) * j->spatial;
        double s[2] = {0.0, 0.0};
        for (int64_t i = 0; i < count; i += 4096) j->vec->sums(x + i, count - i < 4096 ? count - i : 4096, 0.0f, s);
        double mean = s[0] / (double)count;
        double t[2] = {0.0, 0.0};
        for (int64_t i = 0; i < count; i += 4096)
            j->vec->sums(x + i, count - i < 4096 ? count - i : 4096, (float)mean, t);
        double off = t[0] / (double)count, var = t[1] / (double)count - off * off;
        float inv = (float)(1.0 / sqrt((var > 0.0 ? var : 0.0) + (double)j->eps)), meanf = (float)mean;
        for (int64_t cc = 0; cc < j->cpg; cc++) {
            float scale = inv * j->g[grp * j->cpg + cc], shift = j->b[grp * j->cpg + cc] - meanf * scale;
            j->vec->affine_act(y + cc * j->spatial, x + cc * j->spatial, j->spatial, scale, shift,
                               j->silu ? SD_VEC_ACT_SILU : SD_VEC_ACT_NONE);
        }
    }
}

void sd_cpu_group_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                       const sd_tensor *beta, int groups, float eps, bool silu) {
    int64_t n = in->shape[0], c = in->shape[1], spatial = sd_tensor_numel(in) / (n * c);
    gn_job j = {sd_cpu(be)->vec, sd_f32(in), sd_f32(gamma), sd_f32(beta), sd_f32(out), c, groups, c / groups,
                spatial, eps, silu};
    sd_pool_for(sd_cpu(be)->pool, n * groups, item_grain(be, n * groups, c / groups * spatial), group_norm_items, &j);
}

/* torch 'nearest': src = min(floor(dst * (float)in / out), in - 1), the scale in float. */
static int64_t nearest_src(int64_t dst, int64_t in, int64_t out) {
    int64_t src = (int64_t)floorf((float)dst * ((float)in / (float)out));
    return src < in - 1 ? src : in - 1;
}

typedef struct img_job {
    const sd_cpu_vec *vec;
    const float *x, *z;
    float *y;
    int64_t h, w, ho, wo, c, hw, per_batch;
    bool to_channels_last;
} img_job;

static void upsample_planes(void *ctx, int64_t begin, int64_t end, int thread) {
    const img_job *j = ctx;
    int64_t h = j->h, w = j->w, ho = j->ho, wo = j->wo;
    for (int64_t p = begin; p < end; p++) {
        const float *x = j->x + p * h * w;
        float *y = j->y + p * ho * wo;
        if (ho == 2 * h && wo == 2 * w) { /* the common case: duplicate pixels, then rows */
            for (int64_t i = 0; i < h; i++) {
                float *row = y + 2 * i * 2 * w;
                for (int64_t jj = 0; jj < w; jj++) row[2 * jj] = row[2 * jj + 1] = x[i * w + jj];
                memcpy(row + 2 * w, row, (size_t)(2 * w) * sizeof(float));
            }
            continue;
        }
        for (int64_t i = 0; i < ho; i++) {
            const float *src = x + nearest_src(i, h, ho) * w;
            for (int64_t jj = 0; jj < wo; jj++) y[i * wo + jj] = src[nearest_src(jj, w, wo)];
        }
    }
}

void sd_cpu_upsample_nearest(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    int64_t planes = in->shape[0] * in->shape[1];
    img_job j = {.x = sd_f32(in), .y = sd_f32(out), .h = in->shape[2], .w = in->shape[3], .ho = out->shape[2],
                 .wo = out->shape[3]};
    sd_pool_for(sd_cpu(be)->pool, planes, item_grain(be, planes, j.ho * j.wo), upsample_planes, &j);
}

static void add_broadcast_planes(void *ctx, int64_t begin, int64_t end, int thread) {
    const img_job *j = ctx;
    for (int64_t p = begin; p < end; p++) { /* plane p = (image bi, channel ci) */
        int64_t bi = p / j->c, ci = p % j->c;
        float v = j->z[(j->per_batch ? bi * j->c : 0) + ci];
        const float *x = j->x + p * j->hw;
        float *y = j->y + p * j->hw;
        for (int64_t i = 0; i < j->hw; i++) y[i] = x[i] + v;
    }
}

void sd_cpu_add_broadcast(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    int64_t n = a->shape[0], c = a->shape[1];
    img_job j = {.x = sd_f32(a), .z = sd_f32(b), .y = sd_f32(out), .c = c, .hw = sd_tensor_numel(a) / (n * c),
                 .per_batch = sd_tensor_numel(b) == n * c};
    sd_pool_for(sd_cpu(be)->pool, n * c, item_grain(be, n * c, j.hw), add_broadcast_planes, &j);
}

static void geglu_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    const img_job *j = ctx;
    for (int64_t r = begin; r < end; r++) {
        const float *hid = j->x + r * 2 * j->c;
        j->vec->geglu(j->y + r * j->c, hid, hid + j->c, j->c);
    }
}

void sd_cpu_geglu(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    int64_t rows = sd_tensor_rows(out);
    img_job j = {.vec = sd_cpu(be)->vec, .x = sd_f32(in), .y = sd_f32(out), .c = sd_tensor_cols(out)};
    sd_pool_for(sd_cpu(be)->pool, rows, item_grain(be, rows, 3 * j.c), geglu_rows, &j);
}

enum { T = 32 }; /* tile for cache-friendly transposes */

/* Items are (image, 32-row tile of the source matrix [rows x cols]). */
static void transpose_tiles(void *ctx, int64_t begin, int64_t end, int thread) {
    const img_job *j = ctx;
    int64_t rows = j->to_channels_last ? j->c : j->hw, cols = j->to_channels_last ? j->hw : j->c;
    int64_t row_tiles = (rows + T - 1) / T;
    for (int64_t it = begin; it < end; it++) {
        int64_t b = it / row_tiles, r0 = (it % row_tiles) * T;
        const float *x = j->x + b * j->c * j->hw;
        float *y = j->y + b * j->c * j->hw;
        for (int64_t c0 = 0; c0 < cols; c0 += T)
            for (int64_t r = r0; r < r0 + T && r < rows; r++)
                for (int64_t cc = c0; cc < c0 + T && cc < cols; cc++) y[cc * rows + r] = x[r * cols + cc];
    }
}

void sd_cpu_transpose_hw_c(sd_backend *be, sd_tensor *out, const sd_tensor *in, bool to_channels_last) {
    const sd_tensor *img = to_channels_last ? in : out;
    int64_t n = img->shape[0], c = img->shape[1], hw = img->shape[2] * img->shape[3];
    img_job j = {.x = sd_f32(in), .y = sd_f32(out), .c = c, .hw = hw, .to_channels_last = to_channels_last};
    int64_t items = n * (((to_channels_last ? c : hw) + T - 1) / T);
    sd_pool_for(sd_cpu(be)->pool, items, item_grain(be, items, T * (to_channels_last ? hw : c)), transpose_tiles, &j);
}

void sd_cpu_concat_channels(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    int64_t n = a->shape[0], sa = sd_tensor_numel(a) / n, sb = sd_tensor_numel(b) / n;
    for (int64_t i = 0; i < n; i++) {
        memcpy(sd_f32(out) + i * (sa + sb), sd_f32(a) + i * sa, (size_t)sa * sizeof(float));
        memcpy(sd_f32(out) + i * (sa + sb) + sa, sd_f32(b) + i * sb, (size_t)sb * sizeof(float));
    }
}

void sd_cpu_upload(sd_backend *be, sd_tensor *dst, const void *host) {
    memcpy(dst->data, host, (size_t)sd_tensor_numel(dst) * sd_dtype_size(dst->dtype));
}

void sd_cpu_download(sd_backend *be, void *host, const sd_tensor *src) {
    memcpy(host, src->data, (size_t)sd_tensor_numel(src) * sd_dtype_size(src->dtype));
}

void sd_cpu_copy(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (out->data != in->data) memmove(out->data, in->data, (size_t)sd_tensor_numel(out) * sd_dtype_size(out->dtype));
}

void sd_cpu_fill(sd_backend *be, sd_tensor *out, float value) {
    float *o = sd_f32(out);
    for (int64_t i = 0, n = sd_tensor_numel(out); i < n; i++) o[i] = value;
}

void sd_cpu_rgb8_to_image(sd_backend *be, sd_tensor *out, const sd_tensor *rgb) {
    const int64_t n = rgb->shape[0], h = rgb->shape[1], w = rgb->shape[2];
    for (int64_t f = 0; f < n; f++) {
        sd_image img = {(int)w, (int)h, (uint8_t *)rgb->data + (size_t)(f * h * w * 3)};
        sd_image_to_chw(sd_f32(out) + f * 3 * h * w, &img);
    }
}

void sd_cpu_image_to_rgb8(sd_backend *be, sd_tensor *rgb, const sd_tensor *in) {
    const int64_t n = rgb->shape[0], h = rgb->shape[1], w = rgb->shape[2];
    for (int64_t f = 0; f < n; f++) {
        sd_image img = {(int)w, (int)h, (uint8_t *)rgb->data + (size_t)(f * h * w * 3)};
        sd_image_from_chw(&img, sd_f32(in) + f * 3 * h * w);
    }
}
