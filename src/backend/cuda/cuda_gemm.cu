/* cuda_gemm.cu — matrix products through cuBLAS (cublasGemmEx / cublasGemmStridedBatchedEx,
 * float32 compute for every dtype: fp16/bf16 inputs run on tensor cores with fp32 accumulation),
 * the bias/residual prologue, and the linear op.
 *
 * Bias without a second rounding: the output is first filled with the bias (rounded once, it is
 * already act_dtype) and the GEMM then runs with beta = 1, so cuBLAS computes acc + bias in float32
 * and rounds once at its store. (cublasLt's BIAS epilogue would save the extra write of C; a later
 * measured step.) */
#include <limits.h>

#include "backend/cuda/cuda_common.cuh"

enum { THREADS = 256 };

static cudaDataType blas_type(sd_dtype t) {
    switch (t) {
    case SD_DTYPE_F16: return CUDA_R_16F;
    case SD_DTYPE_BF16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
    }
}

bool sd_cuda_gemm(sd_backend *be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb, int64_t stride_b,
                  float beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch) {
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX ||
        batch > INT_MAX) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "GEMM of %lld x %lld x %lld (batch %lld) exceeds cuBLAS's int sizes",
                        (long long)m, (long long)n, (long long)k, (long long)batch);
        return false;
    }
    if (m <= 0 || n <= 0 || batch <= 0) return true;
    sd_cuda_ctx *ctx = sd_cuda(be);
    const cudaDataType t = blas_type(be->act_dtype);
    const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1) {
        SD_CUBLAS_TRY_RET(be, sd_cublas()->gemm_ex(ctx->blas, op_a, op_b, (int)m, (int)n, (int)k, &alpha, a, t, (int)lda, b, t,
                                           (int)ldb, &beta, c, t, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                          false);
    } else {
        SD_CUBLAS_TRY_RET(be, sd_cublas()->gemm_strided_batched_ex(ctx->blas, op_a, op_b, (int)m, (int)n, (int)k, &alpha, a, t,
                                                         (int)lda, (long long)stride_a, b, t, (int)ldb,
                                                         (long long)stride_b, &beta, c, t, (int)ldc,
                                                         (long long)stride_c, (int)batch, CUBLAS_COMPUTE_32F,
                                                         CUBLAS_GEMM_DEFAULT),
                          false);
    }
    return true;
}

/* out[i] = bias[(i / inner) % channels] + residual[i], either term absent when NULL */
template <typename T>
static __global__ void bias_prefill_kernel(T *out, int64_t n, const T *bias, int64_t inner, int64_t channels,
                                           const T *residual) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = bias ? sd_ld(bias[(i / inner) % channels]) : 0.0f;
        if (residual) v = bias ? v + sd_ld(residual[i]) : sd_ld(residual[i]);
        out[i] = sd_st<T>(v);
    }
}

template <typename T>
static void launch_bias_prefill(sd_backend *be, void *out, int64_t n, const void *bias, int64_t inner,
                                int64_t channels, const void *residual) {
    bias_prefill_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>(
        (T *)out, n, (const T *)bias, inner, channels, (const T *)residual);
    SD_CUDA_CHECK_LAUNCH(be, "bias_prefill_kernel");
}

bool sd_cuda_bias_prefill(sd_backend *be, void *out, int64_t n, const void *bias, int64_t inner, int64_t channels,
                          const void *residual) {
    if (n <= 0) return true;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_bias_prefill, be, out, n, bias, inner, channels, residual);
    return be->status == SD_OK;
}

/* out[M, N] = in[M, K] @ W[N, K]^T + bias[N], all row-major (M = rows of in).
 *
 * cuBLAS is column-major: a row-major R x C matrix with leading dimension C is, read column-major,
 * its transpose (C x R, ld C). So, column-major:
 *     in  -> in^T  [K x M], ld K
 *     W   -> W^T   [K x N], ld K
 *     out -> out^T [N x M], ld N
 * and out = in W^T  <=>  out^T = W in^T = op_T(W^T) . in^T:
 *     C = out (m = N, n = M, ldc = N), A = W with op T (stored K x N, lda = K, op(A) N x K),
 *     B = in with op N (K x M, ldb = K), k = K.
 * The usual "TN" GEMM. */
void sd_cuda_linear(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight,
                    const sd_tensor *bias) {
    if (!sd_cuda_tensors_ok(be, "linear", out, in, weight, bias)) return;
    const int64_t m = sd_tensor_rows(in), k = sd_tensor_cols(in), n = weight->shape[0];
    if (m == 0 || n == 0) return;
    float beta = 0.0f;
    if (bias) {
        if (!sd_cuda_bias_prefill(be, out->data, m * n, bias->data, 1, n, NULL)) return;
        beta = 1.0f;
    }
    if (k == 0) { /* an empty sum: out = bias, or 0 */
        if (!bias) sd_cuda_fill(be, out, 0.0f);
        return;
    }
    sd_cuda_gemm(be, true, false, n, m, k, 1.0f, weight->data, k, 0, in->data, k, 0, beta, out->data, n, 0, 1);
}
