/* weights.h — loading a component's weights from safetensors into backend memory, by internal
 * name, through the key map of the file's layout.
 *
 * Internal names are the diffusers / transformers module paths (e.g.
 * "text_model.encoder.layers.0.self_attn.q_proj.weight"): one naming for every layout. A key map
 * turns an internal name into the file's key (plus an optional row slice, for fused tensors such
 * as OpenCLIP's in_proj_weight). Each weight is checked for shape and float dtype, converted
 * once (see matrix_dtype below for the matrices) and owned by the sd_weight_store; the mmap is not
 * needed afterwards.
 */
#ifndef SD_MODEL_WEIGHTS_H
#define SD_MODEL_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/safetensors.h"
#include "base/tensor.h"
#include "model/lora.h"

/* Where an internal name lives in a file: key, and rows [row_begin, row_begin + rows) of its first
 * dimension when rows > 0 (else the whole tensor). */
typedef struct sd_key_ref {
    char key[512];
    int64_t row_begin, rows;
} sd_key_ref;

/* Returns 0 and fills ref, or -1 when the layout has no such weight. */
typedef int (*sd_key_map_fn)(const char *internal, sd_key_ref *ref, const void *map_ctx);

typedef struct sd_weight_store {
    void **buffers;
    size_t *sizes;     /* bytes of each buffer, in load order */
    sd_tensor **dsts;  /* the descriptor each buffer backs (a field of the component's struct) */
    int n, cap;
    size_t bytes;
    /* set by sd_weight_store_upload: the buffers are that backend's memory (freed through it) */
    struct sd_backend *device;
    int n_device; /* buffers [0, n_device) are device memory */
} sd_weight_store;

typedef struct sd_weight_loader {
    const sd_safetensors *file;
    sd_key_map_fn map; /* NULL: internal name == prefix + key */
    const void *map_ctx;
    const char *prefix; /* prepended to the file key (e.g. "cond_stage_model.transformer.") */
    const char *component; /* for messages: "text_encoder" */
    sd_weight_store *store;
    /* Storage of weight matrices (2-D and up: linear and conv weights, embedding tables): F32 (the
     * default, exact) keeps a float16/bfloat16 file's own 16-bit type and widens float32/64 files
     * to F32; BF16 rounds every matrix to bfloat16. The ops widen 16-bit weights to float32 as
     * they pack them, exactly, so F32 computes the same numbers as converting at load, in half
     * the memory for a 16-bit file. Vectors (biases, norms) are always F32. */
    sd_dtype matrix_dtype;
    /* When set, 4-D weights (conv weights: the caller's promise) are stored in this backend's
     * packed conv layout (sd_backend_pack_conv_weight). */
    const struct sd_backend *conv_layout;
    /* When set, LoRA deltas for lora_target are fused into the weights they touch, in float32,
     * before the weight takes its storage type or packed layout. */
    sd_lora_set *lora;
    sd_lora_target lora_target;
} sd_weight_loader;

void sd_weight_store_free(sd_weight_store *store);
/* Moves every weight of a loaded component into a device backend's memory and storage type
 * (sd_backend_upload_weight), rewriting the descriptors the store's buffers back and freeing the
 * host copies. Call once the component's load (and any host-side rearranging of its weights) is
 * done; the descriptors must still be where the load wrote them. The backend must outlive the
 * store. On error the store stays consistent (uploaded buffers on the device, the rest on the host)
 * and sd_weight_store_free frees both. */
sd_status sd_weight_store_upload(sd_weight_store *store, struct sd_backend *device);

/* Loads `name` with exactly the given shape into dst (float32, owned by the store). */
/* A weight-sized buffer (free with free()): 64-byte aligned, and from 2 MiB on, huge-page backed
 * where the kernel allows it. */
void *sd_weights_alloc(size_t bytes);
sd_status sd_weights_load(sd_weight_loader *loader, sd_tensor *dst, const char *name, int ndim, const int64_t *shape);
/* printf-style name helper for the common per-layer case. */
/* A projection that runs as a linear layer and that files hold either as a Linear [out, in] or
 * as a 1x1 convolution [out, in, 1, 1] (SD 1.x's proj_in/proj_out: no use_linear_projection).
 * Loads as [out, in] from either; a recorder (make-model) records the convolution's 4-D shape
 * when file_is_conv, as diffusers writes and reads it. */
sd_status sd_weights_load_projection(sd_weight_loader *loader, sd_tensor *dst, const char *name, int64_t out, int64_t in,
                                     bool file_is_conv);
sd_status sd_weights_loadf(sd_weight_loader *loader, sd_tensor *dst, int ndim, const int64_t *shape,
                           const char *fmt, ...) SD_PRINTF(5, 6);
/* Finds the file tensor behind an internal name (NULL if the layout or file lacks it). */
const sd_st_tensor *sd_weights_find(const sd_weight_loader *loader, const char *name, sd_key_ref *ref);

#endif
