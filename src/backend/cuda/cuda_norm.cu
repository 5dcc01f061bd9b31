/* cuda_norm.cu — layer_norm, group_norm (+SiLU) and softmax. Statistics in float32, two-pass
 * (mean, then the sum of squared deviations: no cancellation), biased variance like torch;
 * 1/sqrt is the IEEE one (sqrtf and a division), not rsqrtf's approximation.
 *
 * layer_norm and softmax: one block per row (rows are at most a few thousand floats).
 * group_norm: a group can hold a million floats (the VAE at 512x512 has 32 groups of 4 x 512 x 512)
 * and there are few groups, so it runs in three kernels: per-chunk mean and M2 (two-pass inside a
 * chunk), a combine of the chunks per group (Chan et al.'s pairwise update, in double), and the
 * elementwise normalisation with the affine and optional SiLU. */
#include "backend/cuda/cuda_common.cuh"

enum { ROW_THREADS = 256, GN_THREADS = 256, GN_CHUNK = 16384, EW_THREADS = 256 };

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total, in
 * the same order. shm: 32 floats. Contains __syncthreads: call from block-uniform code only. */
static __device__ float block_sum(float v, float *shm) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
    __syncthreads(); /* shm may still be read by a previous call */
    if (lane == 0) shm[warp] = v;
    __syncthreads();
    float t = lane < n_warps ? shm[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
    return t;
}

/* The same for the maximum (fmaxf: a NaN element is skipped here, but it still turns its row's
 * exp-sum, and so the whole row, into NaN). */
static __device__ float block_max(float v, float *shm) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) shm[warp] = v;
    __syncthreads();
    float t = lane < n_warps ? shm[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, o));
    return t;
}

/* ---- layer norm: rows of c, y = (x - mean) / sqrt(var + eps) * gamma + beta ---- */

template <typename T>
static __global__ void layer_norm_kernel(T *out, const T *in, const T *gamma, const T *beta, int64_t rows,
                                         int64_t c, float eps) {
    __shared__ float shm[32];
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) { /* block-uniform loop */
        const T *x = in + row * c;
        T *y = out + row * c;
        float s = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += sd_ld(x[j]);
        const float mean = block_sum(s, shm) / (float)c;
        float q = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            float d = sd_ld(x[j]) - mean;
            q += d * d;
        }
        const float var = block_sum(q, shm) / (float)c;
        const float inv = 1.0f / sqrtf(var + eps);
        /* every read of x above is done (block_sum synchronises), so out may alias in */
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            y[j] = sd_st<T>((sd_ld(x[j]) - mean) * inv * sd_ld(gamma[j]) + sd_ld(beta[j]));
    }
}

template <typename T>
static void launch_layer_norm(sd_backend *be, void *out, const void *in, const void *gamma, const void *beta,
                              int64_t rows, int64_t c, float eps) {
    unsigned grid = (unsigned)(rows < (1 << 20) ? rows : (1 << 20));
    layer_norm_kernel<T><<<grid, ROW_THREADS, 0, sd_cuda(be)->stream>>>((T *)out, (const T *)in, (const T *)gamma,
                                                                         (const T *)beta, rows, c, eps);
    SD_CUDA_CHECK_LAUNCH(be, "layer_norm_kernel");
}

void sd_cuda_layer_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                        const sd_tensor *beta, float eps) {
    if (!sd_cuda_tensors_ok(be, "layer_norm", out, in, gamma, beta)) return;
    const int64_t rows = sd_tensor_rows(in), c = sd_tensor_cols(in);
    if (rows == 0 || c == 0) return;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_layer_norm, be, out->data, in->data, gamma->data, beta->data, rows, c,
                     eps);
}

/* ---- softmax over the last dimension ---- */

template <typename T> static __global__ void softmax_kernel(T *out, const T *in, int64_t rows, int64_t c) {
    __shared__ float shm[32];
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const T *x = in + row * c;
        T *y = out + row * c;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) m = fmaxf(m, sd_ld(x[j]));
        m = block_max(m, shm);
        float s = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += expf(sd_ld(x[j]) - m);
        const float inv = 1.0f / block_sum(s, shm);
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) y[j] = sd_st<T>(expf(sd_ld(x[j]) - m) * inv);
    }
}

template <typename T> static void launch_softmax(sd_backend *be, void *out, const void *in, int64_t rows, int64_t c) {
    unsigned grid = (unsigned)(rows < (1 << 20) ? rows : (1 << 20));
    softmax_kernel<T><<<grid, ROW_THREADS, 0, sd_cuda(be)->stream>>>((T *)out, (const T *)in, rows, c);
    SD_CUDA_CHECK_LAUNCH(be, "softmax_kernel");
}

void sd_cuda_softmax(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (!sd_cuda_tensors_ok(be, "softmax", out, in)) return;
    const int64_t rows = sd_tensor_rows(in), c = sd_tensor_cols(in);
    if (rows == 0 || c == 0) return;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_softmax, be, out->data, in->data, rows, c);
}

/* ---- group norm ----
 * Group `item` = (image b, group g) is the contiguous run in[item * count .. (item + 1) * count),
 * count = (C / groups) * spatial, since channel c = g * cpg + j sits at (b * C + c) * spatial. */

/* Block = (item, chunk): part[block] = (mean, M2) of the chunk's elements. */
template <typename T>
static __global__ void gn_partial_kernel(float2 *part, const T *in, int64_t count, int chunks) {
    __shared__ float shm[32];
    const int64_t item = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
    const T *x = in + item * count;
    const int64_t lo = chunk * (int64_t)GN_CHUNK, hi = lo + GN_CHUNK < count ? lo + GN_CHUNK : count;
    float s = 0.0f;
    for (int64_t j = lo + threadIdx.x; j < hi; j += blockDim.x) s += sd_ld(x[j]);
    const float mean = block_sum(s, shm) / (float)(hi - lo);
    float q = 0.0f;
    for (int64_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        float d = sd_ld(x[j]) - mean;
        q += d * d;
    }
    const float m2 = block_sum(q, shm);
    if (threadIdx.x == 0) part[blockIdx.x] = make_float2(mean, m2);
}

/* One thread per item: stats[item] = (mean, 1 / sqrt(var + eps)) from its chunks' partials. */
static __global__ void gn_combine_kernel(float2 *stats, const float2 *part, int64_t items, int64_t count, int chunks,
                                         float eps) {
    for (int64_t item = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; item < items;
         item += (int64_t)gridDim.x * blockDim.x) {
        double n_a = 0.0, mean_a = 0.0, m2_a = 0.0;
        for (int ch = 0; ch < chunks; ch++) {
            const float2 pb = part[item * chunks + ch];
            const int64_t lo = (int64_t)ch * GN_CHUNK;
            const double n_b = (double)((lo + GN_CHUNK < count ? lo + GN_CHUNK : count) - lo);
            const double n = n_a + n_b, delta = (double)pb.x - mean_a;
            mean_a += delta * (n_b / n);
            m2_a += (double)pb.y + delta * delta * (n_a * n_b / n);
            n_a = n;
        }
        const double var = m2_a / (double)count;
        stats[item] = make_float2((float)mean_a, (float)(1.0 / sqrt(var + (double)eps)));
    }
}

/* y = x * scale + shift (scale = inv * gamma[c], shift = beta[c] - mean * scale, as on the CPU),
 * then SiLU when asked. plane = i / spatial = b * C + c; item = plane / cpg. */
template <typename T>
static __global__ void gn_apply_kernel(T *out, const T *in, const T *gamma, const T *beta, const float2 *stats,
                                       int64_t n, int64_t spatial, int64_t c, int64_t cpg, bool silu) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t plane = i / spatial, ch = plane % c;
        const float2 st = stats[plane / cpg];
        const float scale = st.y * sd_ld(gamma[ch]), shift = sd_ld(beta[ch]) - st.x * scale;
        float v = sd_ld(in[i]) * scale + shift;
        if (silu) v = v / (1.0f + expf(-v));
        out[i] = sd_st<T>(v);
    }
}

template <typename T>
static void launch_group_norm(sd_backend *be, void *out, const void *in, const void *gamma, const void *beta,
                              float2 *part, float2 *stats, int64_t items, int64_t count, int chunks, int64_t n,
                              int64_t spatial, int64_t c, int64_t cpg, float eps, bool silu) {
    cudaStream_t s = sd_cuda(be)->stream;
    gn_partial_kernel<T><<<(unsigned)(items * chunks), GN_THREADS, 0, s>>>(part, (const T *)in, count, chunks);
    SD_CUDA_CHECK_LAUNCH(be, "gn_partial_kernel");
    gn_combine_kernel<<<sd_cuda_blocks(items, 128), 128, 0, s>>>(stats, part, items, count, chunks, eps);
    SD_CUDA_CHECK_LAUNCH(be, "gn_combine_kernel");
    /* in-place is safe: every read of in by the first kernel precedes this one in stream order */
    gn_apply_kernel<T><<<sd_cuda_blocks(n, EW_THREADS), EW_THREADS, 0, s>>>(
        (T *)out, (const T *)in, (const T *)gamma, (const T *)beta, stats, n, spatial, c, cpg, silu);
    SD_CUDA_CHECK_LAUNCH(be, "gn_apply_kernel");
}

void sd_cuda_group_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                        const sd_tensor *beta, int groups, float eps, bool silu) {
    if (!sd_cuda_tensors_ok(be, "group_norm", out, in, gamma, beta)) return;
    const int64_t n = sd_tensor_numel(in), nb = in->shape[0], c = in->shape[1];
    if (n == 0) return;
    const int64_t spatial = n / (nb * c), cpg = c / groups, items = nb * groups, count = cpg * spatial;
    const int64_t chunks = (count + GN_CHUNK - 1) / GN_CHUNK;
    if (items * chunks > 0x7fffffff) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "group_norm: %lld groups of %lld elements are too many blocks",
                        (long long)items, (long long)count);
        return;
    }
    /* workspace: per-chunk partials, then per-group statistics */
    float2 *part = (float2 *)sd_cuda_workspace(be, (size_t)(items * chunks + items) * sizeof(float2));
    if (!part) return;
    float2 *stats = part + items * chunks;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_group_norm, be, out->data, in->data, gamma->data, beta->data, part,
                     stats, items, count, (int)chunks, n, spatial, c, cpg, eps, silu);
}
