/* clip_text.h — the CLIP text transformer Stable Diffusion is conditioned on (transformers'
 * CLIPTextModel: SD 1.x uses OpenAI ViT-L/14's, SD 2.x OpenCLIP ViT-H/14's with the last layer
 * dropped). Output is the last hidden state after the final layer norm: [B, 77, hidden].
 *
 * Layouts read: transformers ("text_model.*", diffusers folders and SD 1.x single files under
 * "cond_stage_model.transformer.") and OpenCLIP (SD 2.x single files, "cond_stage_model.model.*",
 * q/k/v fused in in_proj_weight).
 */
#ifndef SD_MODEL_CLIP_TEXT_H
#define SD_MODEL_CLIP_TEXT_H

#include "backend/backend.h"
#include "base/arena.h"
#include "base/config.h"
#include "model/weights.h"

typedef struct sd_clip_text_config {
    int vocab_size;
    int hidden_size;
    int n_layers;
    int n_heads;
    int intermediate_size;
    int max_positions;
    sd_activation act; /* quick_gelu (SD 1.x) or gelu (SD 2.x) */
    float layer_norm_eps;
    sd_dtype weight_dtype; /* storage of weight matrices: F32 (default) or BF16, see weights.h */
    sd_lora_set *lora;     /* LoRAs fused while loading, or NULL (a load option) */
} sd_clip_text_config;

typedef struct sd_clip_layer {
    sd_tensor ln1_w, ln1_b;
    sd_tensor q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b;
    sd_tensor ln2_w, ln2_b;
    sd_tensor fc1_w, fc1_b, fc2_w, fc2_b;
} sd_clip_layer;

typedef struct sd_clip_text {
    sd_clip_text_config cfg;
    sd_tensor token_embedding;    /* [vocab, C] */
    sd_tensor position_embedding; /* [positions, C] */
    sd_clip_layer *layers;
    sd_tensor final_ln_w, final_ln_b;
    sd_weight_store store;
} sd_clip_text;

typedef enum sd_clip_layout { SD_CLIP_LAYOUT_TRANSFORMERS, SD_CLIP_LAYOUT_OPENCLIP } sd_clip_layout;

/* Reads a transformers CLIPTextConfig (text_encoder/config.json). */
sd_status sd_clip_text_config_read(sd_clip_text_config *cfg, const sd_config *json);
/* Derives the config from tensor shapes of a single-file checkpoint. Heads cannot be read from
 * shapes: they come from the known architectures (head dim 64, as in CLIP ViT-L and OpenCLIP
 * ViT-H); a width that is not a multiple of 64 needs a config (SD_ERR_UNSUPPORTED says so). */
sd_status sd_clip_text_config_infer(sd_clip_text_config *cfg, const sd_safetensors *file, const char *prefix,
                                    sd_clip_layout layout);

sd_status sd_clip_text_load(sd_clip_text *model, const sd_clip_text_config *cfg, const sd_safetensors *file,
                            const char *prefix, sd_clip_layout layout);
void sd_clip_text_free(sd_clip_text *model);

/* ids: [batch, 77] token ids; out: [batch, 77, hidden] float32 host memory. */
sd_status sd_clip_text_forward(sd_clip_text *model, sd_backend *be, sd_arena *arena, const int32_t *ids, int batch,
                               float *out);

#endif
