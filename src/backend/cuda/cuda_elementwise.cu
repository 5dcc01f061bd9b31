/* cuda_elementwise.cu — the memory-bound elementwise ops: activation, add, mul, axpby, scale,
 * add_broadcast, geglu, fill, and dtype conversions. One grid-stride kernel each, float32 math,
 * one rounding at the store; `out` may alias an input (each element is read before it is written,
 * by the same thread). The formulas are the CPU backend's (cpu_ops.c, cpu_simd.c) in float. */
#include "backend/cuda/cuda_common.cuh"

enum { THREADS = 256 };

#define GRID_STRIDE_LOOP(i, n)                                                                     \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* NaN stays NaN in every branch (ReLU compares "< 0", which is false for NaN). */
static __device__ __forceinline__ float act_f(float v, int act) {
    switch (act) {
    case SD_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case SD_ACT_QUICK_GELU: return v / (1.0f + expf(-1.702f * v));
    case SD_ACT_SILU: return v / (1.0f + expf(-v));
    case SD_ACT_RELU: return v < 0.0f ? 0.0f : v;
    case SD_ACT_TANH: return tanhf(v);
    case SD_ACT_EXP: return expf(v);
    default: return v;
    }
}

template <typename T> static __global__ void activation_kernel(T *out, const T *in, int64_t n, int act) {
    GRID_STRIDE_LOOP(i, n) out[i] = sd_st<T>(act_f(sd_ld(in[i]), act));
}

template <typename T>
static __global__ void axpby_kernel(T *out, float alpha, const T *a, float beta, const T *b, int64_t n) {
    GRID_STRIDE_LOOP(i, n) out[i] = sd_st<T>(alpha * sd_ld(a[i]) + beta * sd_ld(b[i]));
}

template <typename T> static __global__ void add_kernel(T *out, const T *a, const T *b, int64_t n) {
    GRID_STRIDE_LOOP(i, n) out[i] = sd_st<T>(sd_ld(a[i]) + sd_ld(b[i]));
}

template <typename T> static __global__ void mul_kernel(T *out, const T *a, const T *b, int64_t n) {
    GRID_STRIDE_LOOP(i, n) out[i] = sd_st<T>(sd_ld(a[i]) * sd_ld(b[i]));
}

template <typename T> static __global__ void scale_kernel(T *out, const T *in, float mul, float add, int64_t n) {
    GRID_STRIDE_LOOP(i, n) out[i] = sd_st<T>(sd_ld(in[i]) * mul + add);
}

/* a [N, C, hw...] + b [N, C] (per_batch) or [C]: plane p = i / hw is (image p / C, channel p % C). */
template <typename T>
static __global__ void add_broadcast_kernel(T *out, const T *a, const T *b, int64_t n, int64_t hw, int64_t c,
                                            bool per_batch) {
    GRID_STRIDE_LOOP(i, n) {
        int64_t plane = i / hw;
        out[i] = sd_st<T>(sd_ld(a[i]) + sd_ld(b[per_batch ? plane : plane % c]));
    }
}

/* in [rows, 2F] = [hidden | gate] -> out [rows, F] = hidden * gelu(gate) */
template <typename T> static __global__ void geglu_kernel(T *out, const T *in, int64_t n, int64_t f) {
    GRID_STRIDE_LOOP(i, n) {
        int64_t r = i / f, j = i - r * f;
        float hid = sd_ld(in[r * 2 * f + j]), gate = sd_ld(in[r * 2 * f + f + j]);
        out[i] = sd_st<T>(hid * (0.5f * gate * (1.0f + erff(gate * 0.70710678118654752f))));
    }
}

template <typename T> static __global__ void fill_kernel(T *out, float value, int64_t n) {
    const T v = sd_st<T>(value);
    GRID_STRIDE_LOOP(i, n) out[i] = v;
}

template <typename D, typename S> static __global__ void convert_kernel(D *dst, const S *src, int64_t n) {
    GRID_STRIDE_LOOP(i, n) dst[i] = sd_st<D>(sd_ld(src[i]));
}

/* ---- launchers ---- */

template <typename T> static void launch_activation(sd_backend *be, void *out, const void *in, int64_t n, int act) {
    activation_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((T *)out, (const T *)in, n, act);
    SD_CUDA_CHECK_LAUNCH(be, "activation_kernel");
}

template <typename T>
static void launch_axpby(sd_backend *be, void *out, float alpha, const void *a, float beta, const void *b, int64_t n) {
    axpby_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((T *)out, alpha, (const T *)a, beta,
                                                                                    (const T *)b, n);
    SD_CUDA_CHECK_LAUNCH(be, "axpby_kernel");
}

template <typename T> static void launch_add(sd_backend *be, void *out, const void *a, const void *b, int64_t n) {
    add_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((T *)out, (const T *)a, (const T *)b, n);
    SD_CUDA_CHECK_LAUNCH(be, "add_kernel");
}

template <typename T> static void launch_mul(sd_backend *be, void *out, const void *a, const void *b, int64_t n) {
    mul_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((T *)out, (const T *)a, (const T *)b, n);
    SD_CUDA_CHECK_LAUNCH(be, "mul_kernel");
}

template <typename T>
static void launch_scale(sd_backend *be, void *out, const void *in, float mul, float add, int64_t n) {
    scale_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((T *)out, (const T *)in, mul, add, n);
    SD_CUDA_CHECK_LAUNCH(be, "scale_kernel");
}

template <typename T>
static void launch_add_broadcast(sd_backend *be, void *out, const void *a, const void *b, int64_t n, int64_t hw,
                                 int64_t c, bool per_batch) {
    add_broadcast_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>(
        (T *)out, (const T *)a, (const T *)b, n, hw, c, per_batch);
    SD_CUDA_CHECK_LAUNCH(be, "add_broadcast_kernel");
}

template <typename T> static void launch_geglu(sd_backend *be, void *out, const void *in, int64_t n, int64_t f) {
    geglu_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((T *)out, (const T *)in, n, f);
    SD_CUDA_CHECK_LAUNCH(be, "geglu_kernel");
}

template <typename T> static void launch_fill(sd_backend *be, void *out, float value, int64_t n) {
    fill_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((T *)out, value, n);
    SD_CUDA_CHECK_LAUNCH(be, "fill_kernel");
}

template <typename D, typename S> static bool launch_convert(sd_backend *be, void *dst, const void *src, int64_t n) {
    convert_kernel<D, S><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((D *)dst, (const S *)src, n);
    return sd_cuda_check(be, cudaGetLastError(), "launch of convert_kernel");
}

template <typename D>
static bool convert_from(sd_backend *be, void *dst, const void *src, sd_dtype src_type, int64_t n) {
    switch (src_type) {
    case SD_DTYPE_F32: return launch_convert<D, float>(be, dst, src, n);
    case SD_DTYPE_F16: return launch_convert<D, __half>(be, dst, src, n);
    case SD_DTYPE_BF16: return launch_convert<D, __nv_bfloat16>(be, dst, src, n);
    default:
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "convert: from dtype %s", sd_dtype_name(src_type));
        return false;
    }
}

bool sd_cuda_convert(sd_backend *be, void *dst, sd_dtype dst_type, const void *src, sd_dtype src_type, int64_t n) {
    if (n <= 0) return true;
    switch (dst_type) {
    case SD_DTYPE_F32: return convert_from<float>(be, dst, src, src_type, n);
    case SD_DTYPE_F16: return convert_from<__half>(be, dst, src, src_type, n);
    case SD_DTYPE_BF16: return convert_from<__nv_bfloat16>(be, dst, src, src_type, n);
    default:
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "convert: to dtype %s", sd_dtype_name(dst_type));
        return false;
    }
}

/* ---- the ops ---- */

void sd_cuda_activation(sd_backend *be, sd_tensor *out, const sd_tensor *in, sd_activation act) {
    if (!sd_cuda_tensors_ok(be, "activation", out, in)) return;
    int64_t n = sd_tensor_numel(in);
    if (n == 0) return;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_activation, be, out->data, in->data, n, (int)act);
}

void sd_cuda_add(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!sd_cuda_tensors_ok(be, "add", out, a, b)) return;
    int64_t n = sd_tensor_numel(a);
    if (n == 0) return;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_add, be, out->data, a->data, b->data, n);
}

void sd_cuda_mul(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!sd_cuda_tensors_ok(be, "mul", out, a, b)) return;
    int64_t n = sd_tensor_numel(a);
    if (n == 0) return;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_mul, be, out->data, a->data, b->data, n);
}

void sd_cuda_axpby(sd_backend *be, sd_tensor *out, float alpha, const sd_tensor *a, float beta, const sd_tensor *b) {
    if (!sd_cuda_tensors_ok(be, "axpby", out, a, b)) return;
    int64_t n = sd_tensor_numel(a);
    if (n == 0) return;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_axpby, be, out->data, alpha, a->data, beta, b->data, n);
}

void sd_cuda_scale(sd_backend *be, sd_tensor *out, const sd_tensor *in, float mul, float add) {
    if (!sd_cuda_tensors_ok(be, "scale", out, in)) return;
    int64_t n = sd_tensor_numel(in);
    if (n == 0) return;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_scale, be, out->data, in->data, mul, add, n);
}

void sd_cuda_add_broadcast(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!sd_cuda_tensors_ok(be, "add_broadcast", out, a, b)) return;
    int64_t n = sd_tensor_numel(a), nb = a->shape[0], c = a->shape[1];
    if (n == 0) return;
    int64_t hw = n / (nb * c); /* backend.c checked a [N, C, ...] with C > 0 */
    bool per_batch = sd_tensor_numel(b) == nb * c; /* else [C] */
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_add_broadcast, be, out->data, a->data, b->data, n, hw, c, per_batch);
}

void sd_cuda_geglu(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (!sd_cuda_tensors_ok(be, "geglu", out, in)) return;
    int64_t n = sd_tensor_numel(out), f = sd_tensor_cols(out);
    if (n == 0) return;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_geglu, be, out->data, in->data, n, f);
}

/* Any float tensor (like copy and upload), not only act_dtype ones. */
void sd_cuda_fill(sd_backend *be, sd_tensor *out, float value) {
    int64_t n = sd_tensor_numel(out);
    if (n == 0) return;
    SD_CUDA_DISPATCH(be, out->dtype, launch_fill, be, out->data, value, n);
}
