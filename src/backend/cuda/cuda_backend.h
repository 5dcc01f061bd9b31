/* cuda_backend.h — the CUDA backend: the op vtable of backend.h on device memory, one CUDA stream,
 * cuBLAS for the matrix products (linear, and conv2d as im2col + GEMM), own kernels for the rest
 * (flash-style attention, norms, elementwise and layout ops).
 *
 * Use: sd_cuda_backend_create(&be, SD_DTYPE_F16) (or BF16 / F32) on device 0; the ops of backend.h
 * then take tensors whose data came from be->vt->mem_alloc (or an arena over it) in be->act_dtype.
 * Weights go through upload_weight (host F32/F16/BF16 -> device act_dtype, torch layout). Ops are
 * queued on the backend's stream and return at once; a CUDA or cuBLAS error becomes the backend's
 * status (SD_ERR_BACKEND, naming the call and the CUDA error), checked like any other failure.
 * download and synchronize wait for the stream, so an asynchronous kernel fault shows there.
 *
 * Numerics: inputs are loaded as float, every sum and product is float32 (cuBLAS with
 * CUBLAS_COMPUTE_32F and no reduced-precision reductions), each output is rounded once when it is
 * stored. NaN propagates through every op.
 *
 * Threads: one thread at a time may call a backend's ops (they share its stream and workspaces).
 * Ownership: the backend owns its stream, cuBLAS handle and workspaces; sd_backend_free releases
 * them. On error the create function returns SD_ERR_ARG (bad dtype) or SD_ERR_BACKEND (no device,
 * no driver, a CUDA/cuBLAS call failed) with the message set, *out untouched, nothing leaked.
 *
 * This header is C (backend.c includes it); the .cu files include it inside extern "C". */
#ifndef SD_BACKEND_CUDA_BACKEND_H
#define SD_BACKEND_CUDA_BACKEND_H

#include <stddef.h>

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A backend on CUDA device 0 whose activations are act_dtype (F16, BF16 or F32). */
sd_status sd_cuda_backend_create(sd_backend **out, sd_dtype act_dtype);

/* Number of CUDA devices this process can use; 0 on any error (no driver, no device). */
int sd_cuda_device_count(void);
/* Why there is no usable device: "no CUDA device: cudaErrorNoDevice (no CUDA-capable device is
 * detected)" and the like, or "" when there is one. In a buffer of the calling thread, valid until
 * its next call. */
const char *sd_cuda_unavailable_reason(void);

typedef struct sd_cuda_device_info {
    char name[256];
    int driver_version, runtime_version; /* e.g. 13000 = 13.0 */
    int cc_major, cc_minor;              /* compute capability */
    int sm_count;
    size_t total_mem; /* bytes */
    double clock_ghz; /* the peak (boost) clock the device reports */
    /* Tensor-core dense fp16 peak with fp32 accumulate, TFLOP/s: FLOP/clock/SM of the architecture
     * (a table; GeForce parts of sm_75/86/89/120 run fp32-accumulate at half rate) x SMs x clock.
     * 0 for an architecture the table does not know. */
    double fp16_dense_tflops;
} sd_cuda_device_info;

/* Describes device 0. SD_ERR_BACKEND (message set, *info untouched) when there is none. */
sd_status sd_cuda_device_info_get(sd_cuda_device_info *info);

/* Device memory in use on device 0 by every process (cudaMemGetInfo total - free); 0 on error. */
size_t sd_cuda_memory_used(void);

/* ---- the vtable's entries (also for kernel tests) ----
 * All tensors are device tensors of be->act_dtype, contiguous, shapes checked by backend.c. */
void sd_cuda_linear(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight,
                    const sd_tensor *bias);
void sd_cuda_layer_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                        const sd_tensor *beta, float eps);
void sd_cuda_attention(sd_backend *be, sd_tensor *out, const sd_tensor *q, const sd_tensor *k, const sd_tensor *v,
                       int n_heads, bool causal);
void sd_cuda_activation(sd_backend *be, sd_tensor *out, const sd_tensor *in, sd_activation act);
void sd_cuda_add(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
void sd_cuda_mul(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
void sd_cuda_softmax(sd_backend *be, sd_tensor *out, const sd_tensor *in);
void sd_cuda_embedding(sd_backend *be, sd_tensor *out, const sd_tensor *table, const int32_t *ids);
void sd_cuda_conv2d(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight,
                    const sd_tensor *bias, int stride, int padding, const sd_tensor *residual, sd_activation act);
void sd_cuda_group_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                        const sd_tensor *beta, int groups, float eps, bool silu);
void sd_cuda_upsample_nearest(sd_backend *be, sd_tensor *out, const sd_tensor *in);
void sd_cuda_add_broadcast(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
void sd_cuda_axpby(sd_backend *be, sd_tensor *out, float alpha, const sd_tensor *a, float beta, const sd_tensor *b);
void sd_cuda_scale(sd_backend *be, sd_tensor *out, const sd_tensor *in, float mul, float add);
void sd_cuda_geglu(sd_backend *be, sd_tensor *out, const sd_tensor *in);
void sd_cuda_transpose_hw_c(sd_backend *be, sd_tensor *out, const sd_tensor *in, bool to_channels_last);
void sd_cuda_concat_channels(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
void sd_cuda_fill(sd_backend *be, sd_tensor *out, float value);
void sd_cuda_rgb8_to_image(sd_backend *be, sd_tensor *out, const sd_tensor *rgb);
void sd_cuda_image_to_rgb8(sd_backend *be, sd_tensor *rgb, const sd_tensor *in);

#ifdef __cplusplus
}
#endif

#endif
