/* cuda_common.cuh — what the CUDA backend's .cu files share: the context behind sd_backend.impl,
 * the check macros, element-type traits and the GEMM helper (cuda_gemm.cu).
 *
 * Tiers (ggml-cuda style): cuda_backend.h has the C prototypes; each .cu file has launchers that
 * pick the grid, launch and check the launch; kernels are `static __global__` templates on the
 * element type T (float, __half, __nv_bfloat16) that load as float and round once at the store. */
#ifndef SD_BACKEND_CUDA_COMMON_CUH
#define SD_BACKEND_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "backend/cuda/cuda_backend.h"
}

/* Backend state; everything here is created once and freed by the backend's free. The op
 * workspace and staging buffers grow while the first frames run (warm-up), then stay. */
struct sd_cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws; /* cuBLAS's workspace, ours so it is stream-ordered and capturable */
    size_t blas_ws_bytes;
    void *ws; /* per-op workspace: im2col columns, norm partial statistics */
    size_t ws_bytes;
    void *staging; /* float32 / raw-weight staging for upload, download, upload_weight */
    size_t staging_bytes;
    void *ids; /* embedding ids copied from the host (int32) */
    size_t ids_bytes;
    size_t smem_optin; /* largest dynamic shared memory a block may opt into */
    int sm_count;
};

static inline sd_cuda_ctx *sd_cuda(sd_backend *be) { return (sd_cuda_ctx *)be->impl; }

/* cuBLAS, opened at run time (cuda_blas.cu): the entries the backend calls. */
struct sd_cublas_api {
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*destroy)(cublasHandle_t);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*set_workspace)(cublasHandle_t, void *, size_t);
    cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t);
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
    cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                              const void *, const void *, cudaDataType, int, long long int,
                                              const void *, cudaDataType, int, long long int, const void *, void *,
                                              cudaDataType, int, long long int, int, cublasComputeType_t,
                                              cublasGemmAlgo_t);
    const char *(*status_name)(cublasStatus_t);
    const char *(*status_string)(cublasStatus_t);
};
/* The loaded entries, or NULL when libcublas cannot be opened (sd_cublas_error says why; "" when
 * it could). Thread-safe; loads once. */
const sd_cublas_api *sd_cublas(void);
const char *sd_cublas_error(void);

/* Record a failed CUDA / cuBLAS call as the backend's status (SD_ERR_BACKEND, "<what>: <name>
 * (<description>)"); true when the call succeeded. Defined in cuda_backend.cu. */
bool sd_cuda_check(sd_backend *be, cudaError_t e, const char *what);
bool sd_cublas_check(sd_backend *be, cublasStatus_t s, const char *what);

/* In functions returning void. */
#define SD_CUDA_TRY(be, call)                                                                      \
    do {                                                                                           \
        if (!sd_cuda_check((be), (call), #call)) return;                                           \
    } while (0)
/* In functions returning a value. */
#define SD_CUDA_TRY_RET(be, call, ret)                                                             \
    do {                                                                                           \
        if (!sd_cuda_check((be), (call), #call)) return (ret);                                     \
    } while (0)
#define SD_CUBLAS_TRY_RET(be, call, ret)                                                           \
    do {                                                                                           \
        if (!sd_cublas_check((be), (call), #call)) return (ret);                                   \
    } while (0)
/* After every kernel launch: a bad configuration or a missing kernel image shows here. */
#define SD_CUDA_CHECK_LAUNCH(be, kernel_name)                                                      \
    do {                                                                                           \
        if (!sd_cuda_check((be), cudaGetLastError(), "launch of " kernel_name)) return;            \
    } while (0)

/* Device workspace of at least `bytes`, valid until the next call on this backend; NULL and a
 * backend failure when it cannot be allocated. Growing frees the old buffer (cudaFree waits for
 * the device), so it must not happen during a graph capture: warm up first. */
void *sd_cuda_workspace(sd_backend *be, size_t bytes);

/* Device buffer for `count` int32 embedding ids (the same rules as the workspace). */
int32_t *sd_cuda_ids_buffer(sd_backend *be, int64_t count);

/* True when every non-NULL tensor has be->act_dtype, torch layout (panel 0) and data; else a
 * backend failure naming op. */
bool sd_cuda_tensors_ok(sd_backend *be, const char *op, const sd_tensor *t0, const sd_tensor *t1 = nullptr,
                        const sd_tensor *t2 = nullptr, const sd_tensor *t3 = nullptr,
                        const sd_tensor *t4 = nullptr);

/* Blocks for a grid-stride loop over n items with `threads` per block (n > 0). */
static inline unsigned sd_cuda_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    const int64_t cap = (int64_t)1 << 20; /* grid-stride loops cover the rest */
    return (unsigned)(b < cap ? b : cap);
}

/* C = alpha * op(A) op(B) + beta * C in cuBLAS's column-major terms, all of be->act_dtype,
 * float32 accumulation; `batch` products strided by stride_a/b/c elements (every caller so far
 * passes batch 1: one plain cublasGemmEx). C (m x n, ldc) must not alias A or B. With beta == 0 C
 * is not read. False (and a backend failure) on error. Defined in cuda_gemm.cu. */
bool sd_cuda_gemm(sd_backend *be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb, int64_t stride_b,
                  float beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch);

/* The GEMM epilogue as a prologue: out[i] = bias[(i / inner) % channels] (+ residual[i]) for
 * i < n, each sum rounded once, so a following GEMM with beta = 1 adds the product in float32 and
 * rounds once more (bias and residual may be NULL, not both). Linear: inner 1, channels N; conv:
 * inner Ho*Wo, channels Co. Defined in cuda_gemm.cu. */
bool sd_cuda_bias_prefill(sd_backend *be, void *out, int64_t n, const void *bias, int64_t inner, int64_t channels,
                          const void *residual);

/* dst[i] = src[i] converted (F32, F16, BF16 either way, one rounding), i < n. Defined in
 * cuda_elementwise.cu. */
bool sd_cuda_convert(sd_backend *be, void *dst, sd_dtype dst_type, const void *src, sd_dtype src_type, int64_t n);

/* ---- element types: load as float, store with one rounding (to nearest even) ---- */

static __device__ __forceinline__ float sd_ld(float x) { return x; }
static __device__ __forceinline__ float sd_ld(__half x) { return __half2float(x); }
static __device__ __forceinline__ float sd_ld(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> static __device__ __forceinline__ T sd_st(float x);
template <> __device__ __forceinline__ float sd_st<float>(float x) { return x; }
template <> __device__ __forceinline__ __half sd_st<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 sd_st<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

/* Calls FN<T>(args...) with T the element type of dtype (F32, F16, BF16); any other dtype is a
 * backend failure. */
#define SD_CUDA_DISPATCH(be, dtype, FN, ...)                                                       \
    do {                                                                                           \
        switch (dtype) {                                                                           \
        case SD_DTYPE_F32: FN<float>(__VA_ARGS__); break;                                          \
        case SD_DTYPE_F16: FN<__half>(__VA_ARGS__); break;                                         \
        case SD_DTYPE_BF16: FN<__nv_bfloat16>(__VA_ARGS__); break;                                 \
        default:                                                                                   \
            sd_backend_fail((be), SD_ERR_UNSUPPORTED, "%s: dtype %s is not supported", #FN,         \
                            sd_dtype_name(dtype));                                                 \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

#endif
