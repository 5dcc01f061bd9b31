/* cpu_backend.h — the CPU backend: float32 ops on a persistent thread pool, with our own SGEMM
 * (AVX2+FMA / AVX-512 micro-kernels picked at creation from the CPU's features, a generic C kernel
 * elsewhere; an AVX512_BF16 kernel for opt-in bf16 math), Winograd F(4x4, 3x3) for narrow-channel
 * 3x3 layers, and SIMD row kernels for the memory-bound ops. Weights may be float32, float16 or
 * bfloat16 (widened exactly while packed) and conv weights pre-packed at load.
 *
 * Threads: sd_cpu_backend_create(n_threads <= 0) uses $SDSTREAM_THREADS when set, else all online
 * cores. One thread at a time may call a backend's ops (the pool runs one op at a time).
 */
#ifndef SD_BACKEND_CPU_BACKEND_H
#define SD_BACKEND_CPU_BACKEND_H

#include "backend/backend.h"
#include "backend/cpu/cpu_gemm.h"
#include "backend/cpu/cpu_simd.h"
#include "base/threads.h"

enum { SD_CPU_MAX_THREADS = 256 };

sd_status sd_cpu_backend_create(sd_backend **out, int n_threads);

/* CPU backend state behind sd_backend.impl. */
typedef struct sd_cpu_state {
    float *scratch; /* shared per-op workspace; grows during warm-up, then stays */
    size_t scratch_floats;
    size_t n_scratch_allocs;
    sd_pool *pool;
    const sd_gemm_kernel *gemm; /* SGEMM micro-kernel for this CPU */
    const sd_cpu_vec *vec;      /* row kernels for this CPU */
    float *thread_ws[SD_CPU_MAX_THREADS]; /* per-thread workspace (GEMM packing, attention tiles) */
    size_t thread_ws_floats;
} sd_cpu_state;

static inline sd_cpu_state *sd_cpu(sd_backend *be) { return (sd_cpu_state *)be->impl; }

/* Workspace of at least n floats, valid until the next call; NULL (and a backend failure) if it
 * cannot be allocated. */
float *sd_cpu_scratch(sd_backend *be, size_t n);
/* Makes every thread's workspace at least n floats (call before a parallel loop, on the calling
 * thread); returns the array indexed by pool thread, or NULL (and a backend failure). */
float *const *sd_cpu_thread_scratch(sd_backend *be, size_t n);
/* Runs g on the backend's pool with its kernel (allocating the packing workspace once). */
void sd_cpu_gemm(sd_backend *be, const sd_gemm_args *g);
/* Test hook: replace the GEMM kernel and/or the row-kernel table (NULL keeps the current one). */
void sd_cpu_backend_set_kernels(sd_backend *be, const sd_gemm_kernel *gemm, const sd_cpu_vec *vec);
/* FMA throughput of this machine in GFLOP/s with n_threads threads (<= 0: the backend default),
 * from a register-only FMA loop of about 0.2 s: the peak the benchmarks report against. */
double sd_cpu_measure_peak_gflops(int n_threads);
/* The same for bf16 dot products (vdpbf16ps, 4 flops per lane); 0 when the CPU has none. */
double sd_cpu_measure_peak_bf16_gflops(int n_threads);

/* Conv weights pre-packed in the GEMM's A-panel layout: [ceil(Co / MR)][Ci k k][MR] in the weight's
 * own dtype, zero rows past Co. The per-call packing of a conv's weights becomes a contiguous copy
 * (a widening one for 16-bit weights). */
size_t sd_cpu_conv_weight_bytes(const sd_backend *be, const sd_tensor *w);
void sd_cpu_pack_conv_weight(const sd_backend *be, const sd_tensor *w, void *dst, sd_tensor *packed);
/* dst[i] = src[i] widened to float32 (F32, F16, BF16), i < n. */
void sd_cpu_widen(float *dst, const void *src, sd_dtype type, int64_t n);

/* Individual kernels, shared by the vtable and the kernel tests. All float32, contiguous. */
void sd_cpu_linear(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias);
void sd_cpu_layer_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                       const sd_tensor *beta, float eps);
void sd_cpu_attention(sd_backend *be, sd_tensor *out, const sd_tensor *q, const sd_tensor *k, const sd_tensor *v,
                      int n_heads, bool causal);
void sd_cpu_activation(sd_backend *be, sd_tensor *out, const sd_tensor *in, sd_activation act);
void sd_cpu_add(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
void sd_cpu_mul(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
void sd_cpu_softmax(sd_backend *be, sd_tensor *out, const sd_tensor *in);
void sd_cpu_embedding(sd_backend *be, sd_tensor *out, const sd_tensor *table, const int32_t *ids);
void sd_cpu_conv2d(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias,
                   int stride, int padding, const sd_tensor *residual, sd_activation act);
void sd_cpu_group_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                       const sd_tensor *beta, int groups, float eps, bool silu);
void sd_cpu_upsample_nearest(sd_backend *be, sd_tensor *out, const sd_tensor *in);
void sd_cpu_add_broadcast(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
void sd_cpu_axpby(sd_backend *be, sd_tensor *out, float alpha, const sd_tensor *a, float beta, const sd_tensor *b);
void sd_cpu_scale(sd_backend *be, sd_tensor *out, const sd_tensor *in, float mul, float add);
void sd_cpu_geglu(sd_backend *be, sd_tensor *out, const sd_tensor *in);
void sd_cpu_transpose_hw_c(sd_backend *be, sd_tensor *out, const sd_tensor *in, bool to_channels_last);
void sd_cpu_concat_channels(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
void sd_cpu_upload(sd_backend *be, sd_tensor *dst, const void *host);
void sd_cpu_download(sd_backend *be, void *host, const sd_tensor *src);
void sd_cpu_copy(sd_backend *be, sd_tensor *out, const sd_tensor *in);
void sd_cpu_fill(sd_backend *be, sd_tensor *out, float value);
void sd_cpu_rgb8_to_image(sd_backend *be, sd_tensor *out, const sd_tensor *rgb);
void sd_cpu_image_to_rgb8(sd_backend *be, sd_tensor *rgb, const sd_tensor *in);

#endif
