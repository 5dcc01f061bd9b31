/* cpu_conv.c — 2-D convolution as an implicit GEMM, per image:
 *     out[n] (Co x HoWo) = W (Co x Ci*k*k) . col (Ci*k*k x HoWo)
 * col is never materialised: the GEMM's B packer reads each KC x NR panel straight from the
 * image (im2col fused into packing), so a 512x512 VAE layer needs no 1 GB unfold and every image
 * element is read from cache while it is packed. 1x1 stride-1 convolutions use the image as B.
 * Threads: the GEMM driver splits Co x HoWo into tiles over the pool. 3x3 stride-1 layers with few
 * channels on wide images go to Winograd F(4x4, 3x3) instead (cpu_winograd.c). */
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_winograd.h"

typedef struct conv_geom {
    const float *img; /* [Ci, H, W] of one image */
    int64_t h, w, k, wo;
    int stride, pad;
} conv_geom;

/* Packs col[k0 .. k0 + kc) x [j0 .. j0 + nc) into NR-wide panels (see cpu_gemm.h). A panel's pixels
 * are cut into runs that share an output row; for each k a run is one contiguous (stride 1) or
 * strided read of an input row, zero outside the image. */
static void pack_im2col(const sd_gemm_operand *op, float *dst, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr) {
    const conv_geom *g = op->ctx;
    const int64_t ks = g->k, kk2 = ks * ks, s = g->stride, pad = g->pad;
    struct run {
        int64_t oy, ox, len, off;
    } runs[SD_GEMM_MAX_NR];
    for (int64_t jp = 0; jp < nc; jp += nr) {
        int64_t cols = nc - jp < nr ? nc - jp : nr;
        float *d = dst + jp * kc;
        int n_runs = 0;
        for (int64_t t = 0; t < cols;) {
            int64_t pix = j0 + jp + t, oy = pix / g->wo, ox = pix % g->wo;
            int64_t len = g->wo - ox < cols - t ? g->wo - ox : cols - t;
            runs[n_runs++] = (struct run){oy, ox, len, t};
            t += len;
        }
        int64_t ci = k0 / kk2, ky = (k0 % kk2) / ks, kx = k0 % ks;
        for (int64_t k = 0; k < kc; k++) {
            float *dk = d + k * nr;
            const float *plane = g->img + ci * g->h * g->w;
            for (int r = 0; r < n_runs; r++) {
                float *o = dk + runs[r].off;
                int64_t len = runs[r].len, iy = runs[r].oy * s - pad + ky;
                if (iy < 0 || iy >= g->h) {
                    memset(o, 0, (size_t)len * sizeof(float));
                    continue;
                }
                const float *row = plane + iy * g->w;
                int64_t ix0 = runs[r].ox * s - pad + kx;
                if (s == 1 && len == nr && ix0 >= 0 && ix0 + len <= g->w) {
                    /* the common case, a whole panel inside one image row: a fixed-size copy the
                     * compiler inlines (a memcpy call per 16 floats was a quarter of the conv) */
                    /* the next panel reads the next line of this row: far too many rows (9 per
                     * channel) for the hardware prefetcher to follow */
                    __builtin_prefetch(row + ix0 + 2 * nr);
                    if (nr == 16) memcpy(o, row + ix0, 16 * sizeof(float));
                    else if (nr == 32) memcpy(o, row + ix0, 32 * sizeof(float));
                    else memcpy(o, row + ix0, (size_t)len * sizeof(float));
                } else if (s == 1) {
                    int64_t lo = ix0 < 0 ? -ix0 : 0, hi = g->w - ix0 < len ? g->w - ix0 : len;
                    if (lo > len) lo = len; /* padding wider than the run */
                    if (hi < lo) hi = lo;
                    for (int64_t t = 0; t < lo; t++) o[t] = 0.0f;
                    memcpy(o + lo, row + ix0 + lo, (size_t)(hi - lo) * sizeof(float));
                    for (int64_t t = hi; t < len; t++) o[t] = 0.0f;
                } else {
                    for (int64_t t = 0; t < len; t++) {
                        int64_t ix = ix0 + t * s;
                        o[t] = ix >= 0 && ix < g->w ? row[ix] : 0.0f;
                    }
                }
            }
            for (int64_t t = cols; t < nr; t++) dk[t] = 0.0f;
            if (++kx == ks) {
                kx = 0;
                if (++ky == ks) ky = 0, ci++;
            }
        }
    }
}

size_t sd_cpu_conv_weight_bytes(const sd_backend *be, const sd_tensor *w) {
    const sd_cpu_state *cpu = be->impl;
    int64_t mr = cpu->gemm->mr, co = w->shape[0], kdim = w->shape[1] * w->shape[2] * w->shape[3];
    return (size_t)((co + mr - 1) / mr * mr * kdim) * sd_dtype_size(w->dtype);
}

void sd_cpu_pack_conv_weight(const sd_backend *be, const sd_tensor *w, void *dst, sd_tensor *packed) {
    const sd_cpu_state *cpu = be->impl;
    int64_t mr = cpu->gemm->mr, co = w->shape[0], kdim = w->shape[1] * w->shape[2] * w->shape[3];
    size_t es = sd_dtype_size(w->dtype);
    const char *src = w->data;
    char *d = dst;
    for (int64_t p = 0; p < (co + mr - 1) / mr; p++)
        for (int64_t k = 0; k < kdim; k++)
            for (int64_t i = 0; i < mr; i++, d += es) {
                int64_t o = p * mr + i;
                if (o < co) memcpy(d, src + (size_t)(o * kdim + k) * es, es);
                else memset(d, 0, es);
            }
    *packed = *w;
    packed->data = dst;
    packed->panel = (int)mr;
}

/* A from pre-packed conv weights: panel rows are already in place, a copy (widened) per panel. */
static void pack_prepacked(const sd_gemm_operand *op, float *dst, int64_t r0, int64_t nr, int64_t c0, int64_t nc, int w) {
    const sd_tensor *wt = op->ctx;
    int64_t kdim = wt->shape[1] * wt->shape[2] * wt->shape[3];
    size_t es = sd_dtype_size(wt->dtype);
    for (int64_t i0 = 0; i0 < nr; i0 += w) {
        /* A row blocks start on panel boundaries: sd_gemm_run rounds its tiles to MR and gemm_tile
         * steps by MC, a multiple of MR (a new caller splitting rows otherwise must keep that) */
        int64_t p = (r0 + i0) / w;
        sd_cpu_widen(dst + i0 * nc, (const char *)wt->data + (size_t)((p * kdim + c0) * w) * es, wt->dtype, nc * w);
    }
}

void sd_cpu_conv2d(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias,
                   int stride, int padding, const sd_tensor *residual, sd_activation act) {
    if (in->dtype != SD_DTYPE_F32 || out->dtype != SD_DTYPE_F32 || (bias && bias->dtype != SD_DTYPE_F32) ||
        (weight->dtype != SD_DTYPE_F32 && weight->dtype != SD_DTYPE_BF16 && weight->dtype != SD_DTYPE_F16)) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "conv2d: float32 data (weights float32, bfloat16 or float16) only");
        return;
    }
    int64_t n = in->shape[0], ci = in->shape[1], h = in->shape[2], w = in->shape[3];
    int64_t co = out->shape[1], ho = out->shape[2], wo = out->shape[3], k = weight->shape[2];
    if (weight->panel && weight->panel != sd_cpu(be)->gemm->mr) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "conv2d: weights packed for %d-row panels, this backend's kernel (%s) "
                        "has %d", weight->panel, sd_cpu(be)->gemm->name, sd_cpu(be)->gemm->mr);
        return;
    }
    if (!weight->panel && sd_cpu_winograd_applies(sd_cpu(be), ci, co, h, w, k, stride, padding)) {
        sd_cpu_conv3x3_winograd(be, out, in, weight, bias, residual, act); /* epilogue fused */
        return;
    }
    int64_t kdim = ci * k * k, plane = ho * wo;
    bool direct = k == 1 && stride == 1 && padding == 0;
    for (int64_t b = 0; b < n; b++) {
        const float *img = sd_f32(in) + b * ci * h * w;
        conv_geom geom = {img, h, w, k, wo, stride, padding};
        sd_gemm_args g = {.m = co, .n = plane, .k = kdim, .a = {.rs = kdim, .cs = 1},
                          .c = sd_f32(out) + b * co * plane, .ldc = plane, .bias = bias ? sd_f32(bias) : NULL,
                          .bias_kind = bias ? SD_GEMM_BIAS_ROW : SD_GEMM_BIAS_NONE};
        if (weight->panel) g.a.pack = pack_prepacked, g.a.ctx = weight;
        else if (weight->dtype == SD_DTYPE_F32) g.a.p = sd_f32(weight);
        else g.a.p16 = weight->data, g.a.type16 = weight->dtype; /* widened as it is packed */
        if (direct) g.b = (sd_gemm_operand){.p = img, .rs = plane, .cs = 1};
        else g.b = (sd_gemm_operand){.pack = pack_im2col, .ctx = &geom};
        sd_cpu_gemm(be, &g);
    }
    if (residual) sd_cpu_add(be, out, out, residual);
    if (act != SD_ACT_NONE) sd_cpu_activation(be, out, out, act);
}
