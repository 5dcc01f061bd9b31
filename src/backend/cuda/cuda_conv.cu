/* cuda_conv.cu — 2-D convolution (NCHW, square kernels) as im2col + cuBLAS GEMM, correct first:
 *     out[b] (Co x P) = W (Co x Kd) . col[b] (Kd x P),   Kd = Ci*k*k, P = Ho*Wo
 * with col[b][(ci*k + ky)*k + kx][oy*Wo + ox] = in[b][ci][oy*s - pad + ky][ox*s - pad + kx]
 * (0 outside the image). Column-major (see cuda_gemm.cu): out[b]^T (P x Co, ld P) =
 * col[b]^T (P x Kd, ld P) . W^T (Kd x Co, ld Kd): A = col, B = W, both op N.
 *
 * col is materialised in the op workspace, at most COL_BUDGET bytes: whole images when they fit
 * (one im2col launch for several images, then a GEMM per image), else one image in chunks of
 * output pixels (a 512x512 VAE layer's col is 600 MB). 1x1 stride-1 unpadded convs use the image as col.
 * Epilogue: bias and residual are written into out first and the GEMM adds with beta = 1 (one
 * rounding of the float32 sum); ReLU then runs in place. cuDNN or an implicit-GEMM kernel would
 * skip the col traffic: a later, measured step. */
#include "backend/cuda/cuda_common.cuh"

enum { THREADS = 256 };
static const size_t COL_BUDGET = (size_t)256 << 20;

/* col [nb][kd][pc] for images b0 .. b0+nb (in points at image b0, `image` = Ci*H*W elements
 * each) and output pixels p0 .. p0+pc; total = nb * kd * pc */
template <typename T>
static __global__ void im2col_kernel(T *col, const T *in, int64_t total, int64_t kd, int64_t pc, int64_t p0,
                                     int64_t image, int64_t h, int64_t w, int64_t wo, int k, int stride, int pad) {
    const int64_t kk2 = (int64_t)k * k;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t pp = i % pc, t = i / pc;
        const int64_t kq = t % kd, b = t / kd;
        const int64_t p = p0 + pp, oy = p / wo, ox = p - oy * wo;
        const int64_t ci = kq / kk2, r = kq - ci * kk2, ky = r / k, kx = r - ky * k;
        const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
        T v = sd_st<T>(0.0f);
        if (iy >= 0 && iy < h && ix >= 0 && ix < w) v = in[b * image + (ci * h + iy) * w + ix];
        col[i] = v;
    }
}

template <typename T>
static void launch_im2col(sd_backend *be, void *col, const void *in, int64_t total, int64_t kd, int64_t pc, int64_t p0,
                          int64_t image, int64_t h, int64_t w, int64_t wo, int k, int stride, int pad) {
    im2col_kernel<T><<<sd_cuda_blocks(total, THREADS), THREADS, 0, sd_cuda(be)->stream>>>(
        (T *)col, (const T *)in, total, kd, pc, p0, image, h, w, wo, k, stride, pad);
    SD_CUDA_CHECK_LAUNCH(be, "im2col_kernel");
}

void sd_cuda_conv2d(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight,
                    const sd_tensor *bias, int stride, int padding, const sd_tensor *residual, sd_activation act) {
    if (!sd_cuda_tensors_ok(be, "conv2d", out, in, weight, bias, residual)) return;
    if (act != SD_ACT_NONE && act != SD_ACT_RELU) {
        sd_backend_fail(be, SD_ERR_ARG, "conv2d: fused activation %d (NONE or RELU only)", (int)act);
        return;
    }
    const int64_t n = in->shape[0], ci = in->shape[1], h = in->shape[2], w = in->shape[3];
    const int64_t co = out->shape[1], ho = out->shape[2], wo = out->shape[3];
    const int k = (int)weight->shape[2];
    const int64_t p = ho * wo, kd = ci * k * k;
    const size_t es = sd_dtype_size(be->act_dtype);
    if (n == 0 || co == 0 || p == 0) return;
    float beta = 0.0f;
    if (bias || residual) {
        if (!sd_cuda_bias_prefill(be, out->data, n * co * p, bias ? bias->data : NULL, p, co,
                                  residual ? residual->data : NULL))
            return;
        beta = 1.0f;
    }
    if (kd == 0) { /* no input channels: out = bias + residual, or 0 */
        if (!bias && !residual) sd_cuda_fill(be, out, 0.0f);
    } else if (k == 1 && stride == 1 && padding == 0) {
        /* in[b] is [Ci, H*W] = col[b] already (Ho = H, Wo = W) */
        for (int64_t b = 0; b < n; b++)
            if (!sd_cuda_gemm(be, false, false, p, co, ci, 1.0f, (const char *)in->data + (size_t)(b * ci * p) * es, p,
                              0, weight->data, ci, 0, beta, (char *)out->data + (size_t)(b * co * p) * es, p, 0, 1))
                return;
    } else {
        const size_t col_image = (size_t)kd * (size_t)p * es;
        int64_t nb, pc;
        if (col_image <= COL_BUDGET) {
            pc = p;
            nb = (int64_t)(COL_BUDGET / col_image);
            if (nb > n) nb = n;
        } else {
            nb = 1;
            pc = (int64_t)(COL_BUDGET / ((size_t)kd * es));
            if (pc < 1) pc = 1;
            if (pc > p) pc = p;
        }
        void *col = sd_cuda_workspace(be, (size_t)nb * (size_t)kd * (size_t)pc * es);
        if (!col) return;
        const size_t in_image = (size_t)(ci * h * w) * es, out_image = (size_t)(co * p) * es;
        for (int64_t b0 = 0; b0 < n; b0 += nb) {
            const int64_t nbc = n - b0 < nb ? n - b0 : nb;
            for (int64_t p0 = 0; p0 < p; p0 += pc) {
                const int64_t pcc = p - p0 < pc ? p - p0 : pc;
                SD_CUDA_DISPATCH(be, be->act_dtype, launch_im2col, be, col, (const char *)in->data + b0 * in_image,
                                 nbc * kd * pcc, kd, pcc, p0, ci * h * w, h, w, wo, k, stride, padding);
                if (be->status != SD_OK) return;
                /* per image: C = rows p0 .. p0+pcc of out[b]^T (ld P), A = its col block (ld pcc) */
                for (int64_t b = b0; b < b0 + nbc; b++) {
                    const char *a = (const char *)col + (size_t)((b - b0) * kd * pcc) * es;
                    void *c = (char *)out->data + (size_t)b * out_image + (size_t)p0 * es;
                    if (!sd_cuda_gemm(be, false, false, pcc, co, kd, 1.0f, a, pcc, 0, weight->data, kd, 0, beta, c, p,
                                      0, 1))
                        return;
                }
            }
        }
    }
    if (act == SD_ACT_RELU) sd_cuda_activation(be, out, out, SD_ACT_RELU);
}
