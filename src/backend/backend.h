/* backend.h — the op interface models call, and the backends behind it.
 *
 * A model's forward pass is straight-line C over these calls on tensors whose shapes are fixed
 * when a stream is created. Argument order everywhere: backend, output, inputs, weights, sizes.
 * Ops do not return a status: the first failure (a shape mismatch, a backend error) is recorded
 * in the backend and every later op is skipped, so a forward pass checks once, at its end, with
 * sd_backend_status() (like cudaGetLastError). A NULL data pointer (an arena allocation that
 * failed) also skips the op; the arena's own status says why.
 *
 * Layouts: activations are row-major like torch: linear/norms work on the last dimension;
 * images are NCHW. Weights keep torch's layout ([out, in] for linear).
 */
#ifndef SD_BACKEND_BACKEND_H
#define SD_BACKEND_BACKEND_H

#include <stdbool.h>

#include "base/arena.h"
#include "base/status.h"
#include "base/tensor.h"

typedef enum sd_backend_kind { SD_BACKEND_CPU = 0, SD_BACKEND_CUDA = 1 } sd_backend_kind;

typedef enum sd_activation {
    SD_ACT_NONE,
    SD_ACT_GELU,
    SD_ACT_QUICK_GELU,
    SD_ACT_SILU,
    SD_ACT_RELU,
    SD_ACT_TANH,
    SD_ACT_EXP, /* the VAE's std = exp(0.5 * logvar) */
} sd_activation;

typedef struct sd_backend sd_backend;

typedef struct sd_backend_vtable {
    const char *name;
    void (*free)(sd_backend *be);
    void (*linear)(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias);
    void (*layer_norm)(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                       const sd_tensor *beta, float eps);
    void (*attention)(sd_backend *be, sd_tensor *out, const sd_tensor *q, const sd_tensor *k, const sd_tensor *v,
                      int n_heads, bool causal);
    void (*activation)(sd_backend *be, sd_tensor *out, const sd_tensor *in, sd_activation act);
    void (*add)(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
    void (*mul)(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
    void (*softmax)(sd_backend *be, sd_tensor *out, const sd_tensor *in);
    void (*embedding)(sd_backend *be, sd_tensor *out, const sd_tensor *table, const int32_t *ids);
    void (*conv2d)(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias,
                   int stride, int padding, const sd_tensor *residual, sd_activation act);
    void (*group_norm)(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                       const sd_tensor *beta, int groups, float eps, bool silu);
    void (*upsample_nearest)(sd_backend *be, sd_tensor *out, const sd_tensor *in);
    void (*add_broadcast)(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
    void (*axpby)(sd_backend *be, sd_tensor *out, float alpha, const sd_tensor *a, float beta, const sd_tensor *b);
    void (*scale)(sd_backend *be, sd_tensor *out, const sd_tensor *in, float mul, float add);
    void (*geglu)(sd_backend *be, sd_tensor *out, const sd_tensor *in);
    void (*transpose_hw_c)(sd_backend *be, sd_tensor *out, const sd_tensor *in, bool to_channels_last);
    void (*concat_channels)(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
    void (*upload)(sd_backend *be, sd_tensor *dst, const void *host);
    void (*download)(sd_backend *be, void *host, const sd_tensor *src);
    void (*copy)(sd_backend *be, sd_tensor *out, const sd_tensor *in);
    void (*fill)(sd_backend *be, sd_tensor *out, float value);
    void (*rgb8_to_image)(sd_backend *be, sd_tensor *out, const sd_tensor *rgb);
    void (*image_to_rgb8)(sd_backend *be, sd_tensor *rgb, const sd_tensor *in);
    /* Memory for tensors and weights; NULL entries mean host memory (malloc/free, no sync). */
    void *(*mem_alloc)(sd_backend *be, size_t bytes);
    void (*mem_free)(sd_backend *be, void *ptr);
    void (*synchronize)(sd_backend *be);
    /* A weight into this backend's memory and storage type (NULL: weights stay in host memory as
     * loaded, in the CPU's layout). */
    void (*upload_weight)(sd_backend *be, sd_tensor *dst, const sd_tensor *host);
} sd_backend_vtable;

struct sd_backend {
    const sd_backend_vtable *vt;
    sd_backend_kind kind;
    sd_status status; /* first failure, sticky until sd_backend_clear_status */
    int n_threads;
    void *impl;
    /* Floating-point operations of the compute-bound ops run so far (conv2d, linear, attention:
     * 2 per multiply-add, from the actual shapes); benchmarks read it to report GFLOP/s. The
     * memory-bound ops (norms, elementwise) are not counted. */
    double flops;
    struct sd_op_profile *profile; /* per-op timings when SDSTREAM_PROFILE is set (op_profile.h) */
    /* bf16 math (SD_PRECISION_BF16): the matrix products may round their operands to bfloat16
     * where the backend has a bf16 dot-product kernel (AVX512_BF16 on the CPU); accumulation stays
     * float32. Without such a kernel this changes nothing. */
    bool bf16_math;
    /* dtype of every activation tensor the ops read and write: F32 on the CPU; F16 by default on
     * CUDA (BF16 or F32 on request). Model code allocates activations with this dtype. */
    sd_dtype act_dtype;
    /* tensors live in memory the host cannot read (CUDA): move data with upload/download only */
    bool device_memory;
};

/* n_threads <= 0: all online cores (CPU). Activations in the backend's default dtype (CPU F32,
 * CUDA F16). On error *out is untouched: SD_ERR_UNSUPPORTED for a backend not compiled in,
 * SD_ERR_BACKEND for one that cannot start here (no GPU, no driver), naming the reason. */
sd_status sd_backend_create(sd_backend **out, sd_backend_kind kind, int n_threads);
/* The same with the activation dtype chosen (F32, F16 or BF16; the CPU supports F32 only). */
sd_status sd_backend_create_dtype(sd_backend **out, sd_backend_kind kind, int n_threads, sd_dtype act_dtype);
/* "cpu" / "cuda". */
const char *sd_backend_kind_name(sd_backend_kind kind);
/* Whether a backend kind is compiled in, and whether it can run on this machine now (CUDA: a
 * device and driver are present); reason (may be NULL) receives why not. */
bool sd_backend_compiled(sd_backend_kind kind);
bool sd_backend_available(sd_backend_kind kind, char *reason, size_t reason_size);
void sd_backend_free(sd_backend *be);
sd_status sd_backend_status(const sd_backend *be);
void sd_backend_clear_status(sd_backend *be);
/* Records a failure (first one wins) with a message; for backends and op wrappers. */
void sd_backend_fail(sd_backend *be, sd_status status, const char *fmt, ...) SD_PRINTF(3, 4);

/* ---- ops ---- */

/* out[..., N] = in[..., K] @ weight[N, K]^T + bias[N] (bias may be NULL). */
void sd_op_linear(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias);
/* LayerNorm over the last dimension, biased variance, like torch. */
void sd_op_layer_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                      const sd_tensor *beta, float eps);
/* Multi-head scaled dot-product attention. q [B, Tq, H*D], k/v [B, Tk, H*D], out [B, Tq, H*D];
 * head h uses columns h*D..(h+1)*D; scale 1/sqrt(D); causal masks key j > query i. */
void sd_op_attention(sd_backend *be, sd_tensor *out, const sd_tensor *q, const sd_tensor *k, const sd_tensor *v,
                     int n_heads, bool causal);
/* Elementwise activation; out may alias in. gelu is the exact erf form; relu passes NaN through
 * (x < 0 ? 0 : x, as torch), here and in conv2d's fused epilogue. */
void sd_op_activation(sd_backend *be, sd_tensor *out, const sd_tensor *in, sd_activation act);
/* out = a + b, same shapes; out may alias a or b. */
void sd_op_add(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
/* out = a * b elementwise, same sizes; out may alias a or b. */
void sd_op_mul(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
/* Softmax over the last dimension. */
void sd_op_softmax(sd_backend *be, sd_tensor *out, const sd_tensor *in);
/* out[i, :] = table[ids[i], :] for the rows(out) ids (host memory); ids outside the table fail. */
void sd_op_embedding(sd_backend *be, sd_tensor *out, const sd_tensor *table, const int32_t *ids);

/* 2-D convolution, NCHW. weight [Co, Ci, kh, kw] (square kernels), bias [Co] or NULL, same stride
 * and zero padding on both axes. out [N, Co, (H + 2p - k)/s + 1, (W + 2p - k)/s + 1]. */
void sd_op_conv2d(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias,
                  int stride, int padding);
/* The same with its epilogue fused: out = act(conv(in) + bias + residual); residual (out's size, not
 * aliasing out) may be NULL; act SD_ACT_NONE or SD_ACT_RELU (TAESD's conv, add, ReLU). */
void sd_op_conv2d_fused(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight,
                        const sd_tensor *bias, int stride, int padding, const sd_tensor *residual, sd_activation act);
/* GroupNorm over [N, C, ...] with `groups` groups (biased variance, like torch), then SiLU when asked
 * (the ResNet pair, fused). */
void sd_op_group_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                      const sd_tensor *beta, int groups, float eps, bool silu);
/* Nearest-neighbour upsampling of [N, C, H, W] to out's [N, C, Ho, Wo] (Ho >= H, Wo >= W), with
 * torch's 'nearest' rule: source index = min(floor(dst * (in / out)), in - 1). */
void sd_op_upsample_nearest(sd_backend *be, sd_tensor *out, const sd_tensor *in);
/* The same, checking that out is exactly [N, C, 2H, 2W]. */
void sd_op_upsample_nearest2x(sd_backend *be, sd_tensor *out, const sd_tensor *in);
/* out = a + b with b [N, C] or [C] broadcast over a's trailing (spatial) dims; a is [N, C, ...]. */
void sd_op_add_broadcast(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
/* out = alpha * a + beta * b, same sizes; out may alias a or b. */
void sd_op_axpby(sd_backend *be, sd_tensor *out, float alpha, const sd_tensor *a, float beta, const sd_tensor *b);
/* out = in * mul + add elementwise; out may alias in. */
void sd_op_scale(sd_backend *be, sd_tensor *out, const sd_tensor *in, float mul, float add);
/* diffusers GEGLU: in [..., 2F] = [hidden | gate], out [..., F] = hidden * gelu(gate). */
void sd_op_geglu(sd_backend *be, sd_tensor *out, const sd_tensor *in);
/* [N, C, H, W] <-> [N, H*W, C]: to_channels_last true goes NCHW -> (N, HW, C); false the other way
 * (out then carries the 4-D shape). */
void sd_op_transpose_hw_c(sd_backend *be, sd_tensor *out, const sd_tensor *in, bool to_channels_last);
/* out [N, Ca + Cb, ...] = cat(a [N, Ca, ...], b [N, Cb, ...], dim 1). */
void sd_op_concat_channels(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b);
/* Conv weights in the layout this backend's conv2d reads fastest, arranged once at load: the
 * bytes the packed copy of w takes (0: this backend keeps torch's layout), and the copy itself,
 * written to dst with *packed describing it (same logical shape and dtype, `panel` set). Packed
 * weights are only for conv2d on backends of the same kind and kernel. */
size_t sd_backend_conv_weight_bytes(const sd_backend *be, const sd_tensor *w);
void sd_backend_pack_conv_weight(const sd_backend *be, const sd_tensor *w, void *dst, sd_tensor *packed);
/* Host <-> backend copies of a whole activation tensor: float32 host data converted to/from its
 * dtype (the CPU's activations are float32: a plain copy); the bytes themselves for a U8 tensor.
 * download waits for the backend's work to finish. */
void sd_backend_upload(sd_backend *be, sd_tensor *dst, const void *host);
void sd_backend_download(sd_backend *be, void *host, const sd_tensor *src);
/* out = in (same element count and dtype; out may be in itself, not a partial overlap of it). */
void sd_op_copy(sd_backend *be, sd_tensor *out, const sd_tensor *in);
/* Every element of out = value. */
void sd_op_fill(sd_backend *be, sd_tensor *out, float value);
/* Frames in and out of the pipeline on the backend (sd_image_to_chw / sd_image_from_chw, exactly):
 * rgb U8 [N, H, W, 3] -> out [N, 3, H, W] = 2 * (u8 / 255) - 1 (float32 math, then out's dtype);
 * in [N, 3, H, W] -> rgb U8 = rint(clamp(x / 2 + 0.5, 0, 1) * 255), NaN -> 0. */
void sd_op_rgb8_to_image(sd_backend *be, sd_tensor *out, const sd_tensor *rgb);
void sd_op_image_to_rgb8(sd_backend *be, sd_tensor *rgb, const sd_tensor *in);

/* ---- memory ---- */

/* Memory in the backend's address space (host malloc on the CPU, 64-byte aligned; device memory
 * on CUDA). NULL and a backend failure when it cannot be had. */
void *sd_backend_mem_alloc(sd_backend *be, size_t bytes);
void sd_backend_mem_free(sd_backend *be, void *ptr);
/* Waits for every queued op (no-op on the CPU); a failure there becomes the backend's status. */
void sd_backend_synchronize(sd_backend *be);
/* The allocator an arena of this backend's tensors uses (host memory on the CPU). The backend
 * must outlive the arena. */
sd_allocator sd_backend_allocator(sd_backend *be);
/* An activation tensor of the backend's act_dtype from an arena (data NULL on failure). */
sd_tensor sd_backend_tensor(const sd_backend *be, sd_arena *arena, int ndim, const int64_t *shape);
/* The clock after the backend's queued work is done (sd_now_ms after a synchronize): per-stage
 * timings that mean the same on the CPU and on a device that runs ops asynchronously. */
double sd_backend_now_ms(sd_backend *be);
/* Whether weights must be uploaded (sd_backend_upload_weight) rather than read from host memory. */
bool sd_backend_wants_weight_upload(const sd_backend *be);
/* Places a loaded host weight (F32/F16/BF16, torch layout) in the backend's memory, stored in its
 * act_dtype; *dst gets the device descriptor, whose data the caller frees with
 * sd_backend_mem_free. A backend without the hook (the CPU: sd_backend_wants_weight_upload false)
 * reads weights where they are: *dst = *host, nothing to free. Returns the backend's status. */
sd_status sd_backend_upload_weight(sd_backend *be, sd_tensor *dst, const sd_tensor *host);

#endif
