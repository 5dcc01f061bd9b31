/* cuda_layout.cu — data movement ops: NCHW <-> (N, HW, C) transposes, channel concat, nearest
 * upsampling, embedding lookup (pure copies of act_dtype elements, no rounding), and the frames'
 * 8-bit RGB [N, H, W, 3] <-> image [N, 3, H, W] conversions. */
#include "backend/cuda/cuda_common.cuh"

enum { THREADS = 256, TILE = 32, TILE_ROWS = 8 };

#define GRID_STRIDE_LOOP(i, n)                                                                     \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* out[b] [cols x rows] = in[b] [rows x cols]^T, through a 32 x 33 shared tile (coalesced both
 * ways). Block (32, 8); blocks walk the tiles (b, tile row, tile col) with a grid stride. */
template <typename T>
static __global__ void transpose_kernel(T *out, const T *in, int64_t batch, int64_t rows, int64_t cols) {
    __shared__ T tile[TILE][TILE + 1];
    const int64_t tiles_r = (rows + TILE - 1) / TILE, tiles_c = (cols + TILE - 1) / TILE;
    const int64_t tiles = batch * tiles_r * tiles_c;
    const int tx = threadIdx.x, ty = threadIdx.y;
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) { /* block-uniform loop */
        const int64_t tc = t % tiles_c, tr = (t / tiles_c) % tiles_r, b = t / (tiles_c * tiles_r);
        const int64_t r0 = tr * TILE, c0 = tc * TILE;
        const T *src = in + b * rows * cols;
        T *dst = out + b * rows * cols;
        __syncthreads(); /* the previous tile's reads are done */
        for (int j = ty; j < TILE; j += TILE_ROWS) {
            const int64_t r = r0 + j, c = c0 + tx;
            if (r < rows && c < cols) tile[j][tx] = src[r * cols + c];
        }
        __syncthreads();
        /* tile[i][j] holds in(r0 + i, c0 + j) = out(c0 + j, r0 + i) */
        for (int j = ty; j < TILE; j += TILE_ROWS) {
            const int64_t c = c0 + j, r = r0 + tx;
            if (c < cols && r < rows) dst[c * rows + r] = tile[tx][j];
        }
    }
}

template <typename T>
static void launch_transpose(sd_backend *be, void *out, const void *in, int64_t batch, int64_t rows, int64_t cols) {
    const int64_t tiles = batch * ((rows + TILE - 1) / TILE) * ((cols + TILE - 1) / TILE);
    const unsigned grid = (unsigned)(tiles < (1 << 20) ? tiles : (1 << 20));
    transpose_kernel<T><<<grid, dim3(TILE, TILE_ROWS), 0, sd_cuda(be)->stream>>>((T *)out, (const T *)in, batch, rows,
                                                                                  cols);
    SD_CUDA_CHECK_LAUNCH(be, "transpose_kernel");
}

/* to_channels_last: in [N, C, HW] (rows C, cols HW) -> out [N, HW, C]; else in [N, HW, C]
 * (rows HW, cols C) -> out [N, C, HW]. */
void sd_cuda_transpose_hw_c(sd_backend *be, sd_tensor *out, const sd_tensor *in, bool to_channels_last) {
    if (!sd_cuda_tensors_ok(be, "transpose_hw_c", out, in)) return;
    const sd_tensor *img = to_channels_last ? in : out;
    const int64_t n = img->shape[0], c = img->shape[1], hw = img->shape[2] * img->shape[3];
    if (n == 0 || c == 0 || hw == 0) return;
    if (out->data == in->data) {
        sd_backend_fail(be, SD_ERR_ARG, "transpose_hw_c: out must not alias in");
        return;
    }
    const int64_t rows = to_channels_last ? c : hw, cols = to_channels_last ? hw : c;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_transpose, be, out->data, in->data, n, rows, cols);
}

/* out [N, sa + sb] (per image) = [a [N, sa] | b [N, sb]] */
template <typename T>
static __global__ void concat_kernel(T *out, const T *a, const T *b, int64_t n, int64_t sa, int64_t sb) {
    const int64_t s = sa + sb;
    GRID_STRIDE_LOOP(i, n) {
        const int64_t img = i / s, j = i - img * s;
        out[i] = j < sa ? a[img * sa + j] : b[img * sb + (j - sa)];
    }
}

template <typename T>
static void launch_concat(sd_backend *be, void *out, const void *a, const void *b, int64_t n, int64_t sa, int64_t sb) {
    concat_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((T *)out, (const T *)a,
                                                                                     (const T *)b, n, sa, sb);
    SD_CUDA_CHECK_LAUNCH(be, "concat_kernel");
}

void sd_cuda_concat_channels(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!sd_cuda_tensors_ok(be, "concat_channels", out, a, b)) return;
    const int64_t n = out->shape[0], total = sd_tensor_numel(out);
    if (n == 0 || total == 0) return;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_concat, be, out->data, a->data, b->data, total,
                     sd_tensor_numel(a) / n, sd_tensor_numel(b) / n);
}

/* torch 'nearest': src = min(floor(dst * ((float)in / (float)out)), in - 1), in float like the
 * CPU backend (IEEE division and product: the same indices). */
static __device__ __forceinline__ int64_t nearest_src(int64_t dst, int64_t in, int64_t out) {
    int64_t s = (int64_t)floorf((float)dst * ((float)in / (float)out));
    return s < in - 1 ? s : in - 1;
}

/* out [planes, ho, wo] from in [planes, h, w] */
template <typename T>
static __global__ void upsample_kernel(T *out, const T *in, int64_t n, int64_t h, int64_t w, int64_t ho, int64_t wo) {
    GRID_STRIDE_LOOP(i, n) {
        const int64_t ox = i % wo, t = i / wo, oy = t % ho, plane = t / ho;
        out[i] = in[(plane * h + nearest_src(oy, h, ho)) * w + nearest_src(ox, w, wo)];
    }
}

template <typename T>
static void launch_upsample(sd_backend *be, void *out, const void *in, int64_t n, int64_t h, int64_t w, int64_t ho,
                            int64_t wo) {
    upsample_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((T *)out, (const T *)in, n, h, w,
                                                                                       ho, wo);
    SD_CUDA_CHECK_LAUNCH(be, "upsample_kernel");
}

void sd_cuda_upsample_nearest(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (!sd_cuda_tensors_ok(be, "upsample_nearest", out, in)) return;
    const int64_t n = sd_tensor_numel(out);
    if (n == 0) return;
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_upsample, be, out->data, in->data, n, in->shape[2], in->shape[3],
                     out->shape[2], out->shape[3]);
}

/* out [rows, c] = table[ids[r], :] */
template <typename T>
static __global__ void embedding_kernel(T *out, const T *table, const int32_t *ids, int64_t n, int64_t c) {
    GRID_STRIDE_LOOP(i, n) {
        const int64_t r = i / c, j = i - r * c;
        out[i] = table[(int64_t)ids[r] * c + j];
    }
}

template <typename T>
static void launch_embedding(sd_backend *be, void *out, const void *table, const int32_t *ids, int64_t n, int64_t c) {
    embedding_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>((T *)out, (const T *)table,
                                                                                        ids, n, c);
    SD_CUDA_CHECK_LAUNCH(be, "embedding_kernel");
}

/* ids are host memory, range-checked by sd_op_embedding (an id outside the table would read outside
 * it on the device), then copied to the backend's id buffer in stream order. */
void sd_cuda_embedding(sd_backend *be, sd_tensor *out, const sd_tensor *table, const int32_t *ids) {
    if (!sd_cuda_tensors_ok(be, "embedding", out, table)) return;
    const int64_t rows = sd_tensor_rows(out), c = sd_tensor_cols(out);
    if (rows == 0 || c == 0) return;
    int32_t *dev_ids = sd_cuda_ids_buffer(be, rows);
    if (!dev_ids) return;
    SD_CUDA_TRY(be, cudaMemcpyAsync(dev_ids, ids, (size_t)rows * sizeof(int32_t), cudaMemcpyHostToDevice,
                                    sd_cuda(be)->stream));
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_embedding, be, out->data, table->data, dev_ids, rows * c, c);
}

/* ---- 8-bit frames: the host's sd_image_to_chw / sd_image_from_chw, operation for operation ----
 * Explicitly rounded intrinsics (__fdiv_rn, __fmul_rn, ...) keep nvcc from contracting a multiply
 * and an add into one FMA, so every value is the CPU's. */

/* out [N, 3, H, W] = 2 * (rgb [N, H, W, 3] / 255) - 1; element i = ((f * 3 + c) * plane + p) */
template <typename T>
static __global__ void rgb8_to_image_kernel(T *out, const uint8_t *rgb, int64_t n, int64_t plane) {
    GRID_STRIDE_LOOP(i, n) {
        const int64_t p = i % plane, t = i / plane, c = t % 3, f = t / 3;
        const float u = (float)rgb[(f * plane + p) * 3 + c];
        out[i] = sd_st<T>(__fsub_rn(__fmul_rn(2.0f, __fdiv_rn(u, 255.0f)), 1.0f));
    }
}

/* rgb [N, H, W, 3] = rint(clamp(x / 2 + 0.5, 0, 1) * 255), NaN -> 0; element i = (f * plane + p) * 3 + c */
template <typename T>
static __global__ void image_to_rgb8_kernel(uint8_t *rgb, const T *in, int64_t n, int64_t plane) {
    GRID_STRIDE_LOOP(i, n) {
        const int64_t c = i % 3, t = i / 3, p = t % plane, f = t / plane;
        float v = __fadd_rn(__fdiv_rn(sd_ld(in[(f * 3 + c) * plane + p]), 2.0f), 0.5f);
        v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        if (v != v) v = 0.0f; /* NaN -> black */
        rgb[i] = (uint8_t)rintf(__fmul_rn(v, 255.0f));
    }
}

template <typename T>
static void launch_rgb8_to_image(sd_backend *be, void *out, const void *rgb, int64_t n, int64_t plane) {
    rgb8_to_image_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>(
        (T *)out, (const uint8_t *)rgb, n, plane);
    SD_CUDA_CHECK_LAUNCH(be, "rgb8_to_image_kernel");
}

template <typename T>
static void launch_image_to_rgb8(sd_backend *be, void *rgb, const void *in, int64_t n, int64_t plane) {
    image_to_rgb8_kernel<T><<<sd_cuda_blocks(n, THREADS), THREADS, 0, sd_cuda(be)->stream>>>(
        (uint8_t *)rgb, (const T *)in, n, plane);
    SD_CUDA_CHECK_LAUNCH(be, "image_to_rgb8_kernel");
}

/* backend.c checked rgb U8 [N, H, W, 3] against the image's [N, 3, H, W]; the image may be any
 * float dtype (act_dtype in the pipeline) */
static bool frame_tensors_ok(sd_backend *be, const char *op, const sd_tensor *img, const sd_tensor *rgb) {
    if (img->dtype != SD_DTYPE_F32 && img->dtype != SD_DTYPE_F16 && img->dtype != SD_DTYPE_BF16) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "%s: image dtype %s", op, sd_dtype_name(img->dtype));
        return false;
    }
    if ((!img->data || !rgb->data) && sd_tensor_numel(img) > 0) {
        sd_backend_fail(be, SD_ERR_ARG, "%s: a tensor has no data", op);
        return false;
    }
    return true;
}

void sd_cuda_rgb8_to_image(sd_backend *be, sd_tensor *out, const sd_tensor *rgb) {
    if (!frame_tensors_ok(be, "rgb8_to_image", out, rgb)) return;
    const int64_t n = sd_tensor_numel(out), plane = out->shape[2] * out->shape[3];
    if (n == 0) return;
    SD_CUDA_DISPATCH(be, out->dtype, launch_rgb8_to_image, be, out->data, rgb->data, n, plane);
}

void sd_cuda_image_to_rgb8(sd_backend *be, sd_tensor *rgb, const sd_tensor *in) {
    if (!frame_tensors_ok(be, "image_to_rgb8", in, rgb)) return;
    const int64_t n = sd_tensor_numel(rgb), plane = in->shape[2] * in->shape[3];
    if (n == 0) return;
    SD_CUDA_DISPATCH(be, in->dtype, launch_image_to_rgb8, be, rgb->data, in->data, n, plane);
}
