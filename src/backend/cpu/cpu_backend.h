/* cpu_backend.h — the CPU backend: float32 ops (bf16 weights arrive with the speed work). */
#ifndef SD_BACKEND_CPU_BACKEND_H
#define SD_BACKEND_CPU_BACKEND_H

#include "backend/backend.h"

sd_status sd_cpu_backend_create(sd_backend **out, int n_threads);

/* CPU backend state behind sd_backend.impl. */
typedef struct sd_cpu_state {
    float *scratch; /* im2col and other per-op workspace; grows during warm-up, then stays */
    size_t scratch_floats;
    size_t n_scratch_allocs;
} sd_cpu_state;

/* Workspace of at least n floats, valid until the next call; NULL (and a backend failure) if it
 * cannot be allocated. */
float *sd_cpu_scratch(sd_backend *be, size_t n);

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
                   int stride, int padding);
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

#endif
