/* clip_text.h — the CLIP text transformer Stable Diffusion is conditioned on (transformers'
 * CLIPTextModel: SD 1.x uses OpenAI ViT-L/14's, SD 2.x OpenCLIP ViT-H/14's with the last layer
 * dropped). Output is the last hidden state after the final layer norm: [B, 77, hidden].
 * SDXL conditions on two of them (CLIP ViT-L and OpenCLIP ViT-bigG with a text projection,
 * transformers' CLIPTextModelWithProjection) and reads other outputs: the penultimate layer's
 * hidden state (before the final norm) and the projected, normed state at the EOS token
 * (sd_clip_text_forward_outputs).
 *
 * Layouts read: transformers ("text_model.*", diffusers folders and SD 1.x single files under
 * "cond_stage_model.transformer.", SDXL's first encoder under "conditioner.embedders.0.transformer.")
 * and OpenCLIP (SD 2.x single files, "cond_stage_model.model.*", SDXL's second encoder under
 * "conditioner.embedders.1.model.", q/k/v fused in in_proj_weight; its text_projection [hidden,
 * proj] is the transpose of transformers' text_projection.weight).
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
    int projection_dim;    /* text_projection's output width (CLIPTextModelWithProjection), 0: none */
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
    sd_tensor text_projection; /* [projection_dim, C], no bias; data NULL without a projection */
    sd_weight_store store;
} sd_clip_text;

typedef enum sd_clip_layout { SD_CLIP_LAYOUT_TRANSFORMERS, SD_CLIP_LAYOUT_OPENCLIP } sd_clip_layout;

/* Reads a transformers CLIPTextConfig (text_encoder/config.json); projection_dim is read only when
 * with_projection (text_encoder_2 of SDXL: CLIPTextModelWithProjection). */
sd_status sd_clip_text_config_read_projection(sd_clip_text_config *cfg, const sd_config *json, bool with_projection);
/* Reads a transformers CLIPTextConfig (text_encoder/config.json). */
sd_status sd_clip_text_config_read(sd_clip_text_config *cfg, const sd_config *json);
/* Derives the config from tensor shapes of a single-file checkpoint. Heads cannot be read from
 * shapes: they come from the known architectures (head dim 64, as in CLIP ViT-L and OpenCLIP
 * ViT-H); a width that is not a multiple of 64 needs a config (SD_ERR_UNSUPPORTED says so). */
sd_status sd_clip_text_config_infer(sd_clip_text_config *cfg, const sd_safetensors *file, const char *prefix,
                                    sd_clip_layout layout);
/* The same for SDXL's encoders: every layer kept (SDXL reads the penultimate one itself) and, when
 * the file has a text_projection, its width. */
sd_status sd_clip_text_config_infer_sdxl(sd_clip_text_config *cfg, const sd_safetensors *file, const char *prefix,
                                         sd_clip_layout layout);

sd_status sd_clip_text_load(sd_clip_text *model, const sd_clip_text_config *cfg, const sd_safetensors *file,
                            const char *prefix, sd_clip_layout layout);
void sd_clip_text_free(sd_clip_text *model);

/* ids: [batch, 77] token ids; out: [batch, 77, hidden] float32 host memory. */
sd_status sd_clip_text_forward(sd_clip_text *model, sd_backend *be, sd_arena *arena, const int32_t *ids, int batch,
                               float *out);

/* What sd_clip_text_forward_outputs writes (float32 host memory; NULL: not wanted). */
typedef struct sd_clip_text_outputs {
    float *last_hidden_state; /* [batch, 77, hidden]: after the final layer norm */
    float *penultimate;       /* [batch, 77, hidden]: hidden_states[-2], the input of the last layer */
    float *text_embeds;       /* [batch, projection_dim]: final-normed state at the first highest id
                                 (the EOS token) times text_projection; needs a projection */
} sd_clip_text_outputs;

/* Runs only the layers the wanted outputs need (the penultimate alone skips the last layer). */
sd_status sd_clip_text_forward_outputs(sd_clip_text *model, sd_backend *be, sd_arena *arena, const int32_t *ids,
                                       int batch, const sd_clip_text_outputs *outputs);

#endif
