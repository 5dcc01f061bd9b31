/* cpu_image_ops.c — float32 CPU kernels for the image-model ops: group norm (+SiLU), nearest
 * upsampling, broadcast add, axpby, scale, GEGLU, NCHW <-> NHWC transposes, channel concat and the
 * host copies. Memory-bound loops; statistics accumulate in double. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"

void sd_cpu_group_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                       const sd_tensor *beta, int groups, float eps, bool silu) {
    int64_t n = in->shape[0], c = in->shape[1], spatial = sd_tensor_numel(in) / (n * c);
    int64_t cpg = c / groups, count = cpg * spatial;
    const float *g = sd_f32(gamma), *bt = sd_f32(beta);
    for (int64_t b = 0; b < n; b++) {
        for (int64_t grp = 0; grp < groups; grp++) {
            const float *x = sd_f32(in) + (b * c + grp * cpg) * spatial;
            float *y = sd_f32(out) + (b * c + grp * cpg) * spatial;
            double sum = 0.0;
            for (int64_t i = 0; i < count; i++) sum += x[i];
            double mean = sum / (double)count, var = 0.0;
            for (int64_t i = 0; i < count; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
            float inv = (float)(1.0 / sqrt(var / (double)count + (double)eps)), meanf = (float)mean;
            for (int64_t cc = 0; cc < cpg; cc++) {
                float scale = inv * g[grp * cpg + cc], shift = bt[grp * cpg + cc] - meanf * scale;
                const float *xc = x + cc * spatial;
                float *yc = y + cc * spatial;
                if (silu) {
                    for (int64_t i = 0; i < spatial; i++) {
                        float v = xc[i] * scale + shift;
                        yc[i] = v / (1.0f + expf(-v));
                    }
                } else {
                    for (int64_t i = 0; i < spatial; i++) yc[i] = xc[i] * scale + shift;
                }
            }
        }
    }
}

/* torch 'nearest': src = min(floor(dst * (float)in / out), in - 1), the scale in float. */
static int64_t nearest_src(int64_t dst, int64_t in, int64_t out) {
    int64_t src = (int64_t)floorf((float)dst * ((float)in / (float)out));
    return src < in - 1 ? src : in - 1;
}

void sd_cpu_upsample_nearest(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    int64_t planes = in->shape[0] * in->shape[1], h = in->shape[2], w = in->shape[3];
    int64_t ho = out->shape[2], wo = out->shape[3];
    if (ho == 2 * h && wo == 2 * w) { /* the common case: duplicate pixels, then rows */
        for (int64_t p = 0; p < planes; p++) {
            const float *x = sd_f32(in) + p * h * w;
            float *y = sd_f32(out) + p * 4 * h * w;
            for (int64_t i = 0; i < h; i++) {
                float *row = y + 2 * i * 2 * w;
                for (int64_t j = 0; j < w; j++) row[2 * j] = row[2 * j + 1] = x[i * w + j];
                memcpy(row + 2 * w, row, (size_t)(2 * w) * sizeof(float));
            }
        }
        return;
    }
    for (int64_t p = 0; p < planes; p++) {
        const float *x = sd_f32(in) + p * h * w;
        float *y = sd_f32(out) + p * ho * wo;
        for (int64_t i = 0; i < ho; i++) {
            const float *src = x + nearest_src(i, h, ho) * w;
            for (int64_t j = 0; j < wo; j++) y[i * wo + j] = src[nearest_src(j, w, wo)];
        }
    }
}

void sd_cpu_add_broadcast(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    int64_t n = a->shape[0], c = a->shape[1], spatial = sd_tensor_numel(a) / (n * c);
    bool per_batch = sd_tensor_numel(b) == n * c;
    for (int64_t bi = 0; bi < n; bi++)
        for (int64_t ci = 0; ci < c; ci++) {
            float v = sd_f32(b)[(per_batch ? bi * c : 0) + ci];
            const float *x = sd_f32(a) + (bi * c + ci) * spatial;
            float *y = sd_f32(out) + (bi * c + ci) * spatial;
            for (int64_t i = 0; i < spatial; i++) y[i] = x[i] + v;
        }
}

void sd_cpu_axpby(sd_backend *be, sd_tensor *out, float alpha, const sd_tensor *a, float beta, const sd_tensor *b) {
    int64_t n = sd_tensor_numel(a);
    const float *x = sd_f32(a), *z = sd_f32(b);
    float *y = sd_f32(out);
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta * z[i];
}

void sd_cpu_scale(sd_backend *be, sd_tensor *out, const sd_tensor *in, float mul, float add) {
    int64_t n = sd_tensor_numel(in);
    const float *x = sd_f32(in);
    float *y = sd_f32(out);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * mul + add;
}

void sd_cpu_geglu(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    int64_t rows = sd_tensor_rows(out), f = sd_tensor_cols(out);
    for (int64_t r = 0; r < rows; r++) {
        const float *hid = sd_f32(in) + r * 2 * f, *gate = hid + f;
        float *y = sd_f32(out) + r * f;
        for (int64_t i = 0; i < f; i++) y[i] = hid[i] * 0.5f * gate[i] * (1.0f + erff(gate[i] * 0.70710678118654752f));
    }
}

void sd_cpu_transpose_hw_c(sd_backend *be, sd_tensor *out, const sd_tensor *in, bool to_channels_last) {
    const sd_tensor *img = to_channels_last ? in : out;
    int64_t n = img->shape[0], c = img->shape[1], hw = img->shape[2] * img->shape[3];
    enum { T = 32 }; /* tile for cache-friendly transposes */
    for (int64_t b = 0; b < n; b++) {
        const float *x = sd_f32(in) + b * c * hw;
        float *y = sd_f32(out) + b * c * hw;
        int64_t rows = to_channels_last ? c : hw, cols = to_channels_last ? hw : c;
        for (int64_t r0 = 0; r0 < rows; r0 += T)
            for (int64_t c0 = 0; c0 < cols; c0 += T)
                for (int64_t r = r0; r < r0 + T && r < rows; r++)
                    for (int64_t cc = c0; cc < c0 + T && cc < cols; cc++) y[cc * rows + r] = x[r * cols + cc];
    }
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
