/* cpu_conv.c — 2-D convolution as GEMM: out[n] (Co x HoWo) = W (Co x Ci*k*k) . col (Ci*k*k x HoWo).
 * 1x1 stride-1 convolutions use the input directly; others unfold (im2col) a band of output rows
 * at a time into the backend's workspace, so the workspace stays a few MB even for a 512x512 VAE
 * decoder (a full im2col there would be over 1 GB). */
#include <cblas.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"

enum { SD_CONV_SCRATCH_BYTES = 8 << 20 };

/* Unfolds output rows [oy0, oy0 + rows) of one image: col[(ci*k + ky)*k + kx][r*wo + ox]. */
static void im2col_rows(float *col, const float *img, int64_t ci_n, int64_t h, int64_t w, int64_t k, int stride,
                        int pad, int64_t wo, int64_t oy0, int64_t rows) {
    int64_t ncol = rows * wo;
    for (int64_t ci = 0; ci < ci_n; ci++) {
        const float *plane = img + ci * h * w;
        for (int64_t ky = 0; ky < k; ky++) {
            for (int64_t kx = 0; kx < k; kx++) {
                float *dst = col + ((ci * k + ky) * k + kx) * ncol;
                for (int64_t r = 0; r < rows; r++) {
                    int64_t iy = (oy0 + r) * stride - pad + ky;
                    float *d = dst + r * wo;
                    if (iy < 0 || iy >= h) {
                        memset(d, 0, (size_t)wo * sizeof(float));
                        continue;
                    }
                    const float *src = plane + iy * w;
                    for (int64_t ox = 0; ox < wo; ox++) {
                        int64_t ix = ox * stride - pad + kx;
                        d[ox] = (ix >= 0 && ix < w) ? src[ix] : 0.0f;
                    }
                }
            }
        }
    }
}

void sd_cpu_conv2d(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias,
                   int stride, int padding) {
    if (in->dtype != SD_DTYPE_F32 || weight->dtype != SD_DTYPE_F32 || out->dtype != SD_DTYPE_F32) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "conv2d: only float32 is supported");
        return;
    }
    int64_t n = in->shape[0], ci = in->shape[1], h = in->shape[2], w = in->shape[3];
    int64_t co = out->shape[1], ho = out->shape[2], wo = out->shape[3], k = weight->shape[2];
    int64_t kdim = ci * k * k, plane = ho * wo;
    const float *wt = sd_f32(weight);
    bool direct = k == 1 && stride == 1 && padding == 0;
    int64_t band = 0;
    float *col = NULL;
    if (!direct) {
        band = SD_CONV_SCRATCH_BYTES / (int64_t)sizeof(float) / (kdim * wo);
        if (band < 1) band = 1;
        if (band > ho) band = ho;
        col = sd_cpu_scratch(be, (size_t)(kdim * band * wo));
        if (!col) return;
    }
    for (int64_t b = 0; b < n; b++) {
        const float *img = sd_f32(in) + b * ci * h * w;
        float *y = sd_f32(out) + b * co * plane;
        if (direct) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)co, (blasint)plane, (blasint)kdim, 1.0f, wt,
                        (blasint)kdim, img, (blasint)plane, 0.0f, y, (blasint)plane);
        } else {
            for (int64_t oy = 0; oy < ho; oy += band) {
                int64_t rows = ho - oy < band ? ho - oy : band;
                im2col_rows(col, img, ci, h, w, k, stride, padding, wo, oy, rows);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)co, (blasint)(rows * wo), (blasint)kdim,
                            1.0f, wt, (blasint)kdim, col, (blasint)(rows * wo), 0.0f, y + oy * wo, (blasint)plane);
            }
        }
        if (bias) {
            const float *bb = sd_f32(bias);
            for (int64_t c = 0; c < co; c++)
                for (int64_t i = 0; i < plane; i++) y[c * plane + i] += bb[c];
        }
    }
}
