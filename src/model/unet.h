/* unet.h — diffusers' UNet2DConditionModel for SD 1.x, SD 2.x and SDXL: sinusoidal time embedding,
 * ResNet blocks, Transformer2D blocks (self-attention, cross-attention, GEGLU feed-forward), down/up
 * sampling with skip connections. SDXL adds `transformer_layers_per_block` (several
 * BasicTransformerBlocks per Transformer2D, per level) and the "text_time" added embedding: the
 * pooled text embedding and six size/crop numbers (time_ids, each embedded like a timestep)
 * through add_embedding, added to the time embedding. Configured from unet/config.json (or inferred from a single-file
 * checkpoint's shapes); weights by diffusers name, from diffusers files or the LDM layout
 * (model.diffusion_model.*) through unet_keymap.c.
 *
 * Supported: down blocks CrossAttnDownBlock2D / DownBlock2D, up blocks CrossAttnUpBlock2D /
 * UpBlock2D, mid block UNetMidBlock2DCrossAttn, 1..SD_UNET_MAX_TRANSFORMER_DEPTH transformer layers per block, positional time
 * embedding, no added embedding or "text_time", epsilon prediction is the caller's business. Anything else in a config is refused
 * with SD_ERR_UNSUPPORTED naming the key and value.
 */
#ifndef SD_MODEL_UNET_H
#define SD_MODEL_UNET_H

#include <stdbool.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "base/config.h"
#include "model/weights.h"

enum { SD_UNET_MAX_LEVELS = 6, SD_UNET_MAX_LAYERS = 4, SD_UNET_MAX_TRANSFORMER_DEPTH = 16, SD_UNET_TIME_IDS = 6 };

typedef struct sd_unet_config {
    int in_channels, out_channels;
    int n_levels;
    int block_out_channels[SD_UNET_MAX_LEVELS];
    bool down_has_attention[SD_UNET_MAX_LEVELS]; /* CrossAttnDownBlock2D vs DownBlock2D */
    bool up_has_attention[SD_UNET_MAX_LEVELS];   /* up block i (deepest first) */
    int heads[SD_UNET_MAX_LEVELS];               /* attention heads per down level (up: reversed) */
    int mid_heads;
    int transformer_depth[SD_UNET_MAX_LEVELS]; /* BasicTransformerBlocks per Transformer2D, down level i */
    int up_transformer_depth[SD_UNET_MAX_LEVELS]; /* up block i (deepest first): the reverse by default */
    int mid_transformer_depth;                 /* the deepest level's */
    int layers_per_block;
    /* SDXL's "text_time" added embedding (0/false without): add_embedding takes
     * [text_embeds (text_embeds_dim) | time_proj(time_ids) (6 x addition_time_embed_dim)] */
    bool text_time;
    int addition_time_embed_dim, addition_embed_input_dim, text_embeds_dim;
    int cross_attention_dim;
    bool use_linear_projection;
    int norm_groups;
    float norm_eps;
    bool flip_sin_to_cos;
    float freq_shift;
    int time_embed_dim; /* 4 * block_out_channels[0] */
    sd_dtype weight_dtype; /* storage of weight matrices: F32 (default) or BF16, see weights.h */
    const sd_backend *conv_layout; /* conv weights packed for this backend's conv2d, or NULL */
    sd_lora_set *lora;             /* LoRAs fused while loading, or NULL (a load option, as conv_layout) */
} sd_unet_config;

typedef struct sd_unet_resnet {
    int in_channels, out_channels;
    sd_tensor norm1_w, norm1_b, conv1_w, conv1_b;
    sd_tensor time_w, time_b;
    sd_tensor norm2_w, norm2_b, conv2_w, conv2_b;
    sd_tensor shortcut_w, shortcut_b; /* data NULL when in == out */
} sd_unet_resnet;

/* One BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward. */
typedef struct sd_unet_tblock {
    sd_tensor ln1_w, ln1_b, attn1_q, attn1_k, attn1_v, attn1_out_w, attn1_out_b;
    sd_tensor ln2_w, ln2_b, attn2_q, attn2_k, attn2_v, attn2_out_w, attn2_out_b;
    sd_tensor ln3_w, ln3_b, ff_in_w, ff_in_b, ff_out_w, ff_out_b; /* GEGLU [8C, C], Linear [C, 4C] */
} sd_unet_tblock;

typedef struct sd_unet_transformer {
    int channels, heads;
    sd_tensor norm_w, norm_b;       /* GroupNorm, eps 1e-6 */
    sd_tensor proj_in_w, proj_in_b; /* [C, C]: a 1x1 conv or a Linear in the file */
    sd_unet_tblock *blocks;         /* n_blocks, owned (calloc) */
    int n_blocks;
    sd_tensor proj_out_w, proj_out_b;
} sd_unet_transformer;

typedef struct sd_unet_level {
    sd_unet_resnet resnets[SD_UNET_MAX_LAYERS];
    sd_unet_transformer attentions[SD_UNET_MAX_LAYERS];
    bool has_attention;
    bool has_sampler;                  /* downsampler (down) or upsampler (up) */
    sd_tensor sampler_w, sampler_b;    /* 3x3 conv */
    int n_layers;
} sd_unet_level;

typedef struct sd_unet {
    sd_unet_config cfg;
    sd_tensor time_w1, time_b1, time_w2, time_b2;
    sd_tensor add_w1, add_b1, add_w2, add_b2; /* add_embedding (text_time), data NULL without */
    sd_tensor conv_in_w, conv_in_b;
    sd_unet_level down[SD_UNET_MAX_LEVELS];
    sd_unet_resnet mid_resnets[2];
    sd_unet_transformer mid_attention;
    sd_unet_level up[SD_UNET_MAX_LEVELS];
    sd_tensor norm_out_w, norm_out_b, conv_out_w, conv_out_b;
    sd_weight_store store;
} sd_unet;

sd_status sd_unet_config_read(sd_unet_config *cfg, const sd_config *json);
/* From the shapes of a single-file checkpoint; SD 1.x heads: 8 per block; SD 2.x and SDXL: head dim
 * 64 (head_dim64); SDXL's transformer depths are counted and its added embedding read from
 * label_emb (addition_time_embed_dim 256, the only value SDXL uses). */
sd_status sd_unet_config_infer(sd_unet_config *cfg, const sd_safetensors *file, bool head_dim64);

/* ldm_layout: keys are model.diffusion_model.* (prefix given), mapped by sd_unet_ldm_key. */
sd_status sd_unet_load(sd_unet *unet, const sd_unet_config *cfg, const sd_safetensors *file, const char *prefix,
                       bool ldm_layout);
void sd_unet_free(sd_unet *unet);

/* SDXL's added conditioning per batch row, host memory: text_embeds [B, text_embeds_dim] (the pooled
 * prompt embedding), time_ids [B, 6] = (orig_h, orig_w, crop_top, crop_left, target_h, target_w). */
typedef struct sd_unet_added_cond {
    const float *text_embeds;
    const float *time_ids;
} sd_unet_added_cond;

/* noise_pred [B, out, h, w] = unet(sample [B, in, h, w], timesteps[B], context [B, 77, cross_dim]).
 * All tensors in backend memory; timesteps on the host (each row its own). A text_time UNet needs
 * `added` (SD_ERR_ARG without); other UNets ignore it (NULL). */
sd_status sd_unet_forward(sd_unet *unet, sd_backend *be, sd_arena *arena, sd_tensor *noise_pred,
                          const sd_tensor *sample, const float *timesteps, const sd_tensor *context);
sd_status sd_unet_forward_added(sd_unet *unet, sd_backend *be, sd_arena *arena, sd_tensor *noise_pred,
                                const sd_tensor *sample, const float *timesteps, const sd_tensor *context,
                                const sd_unet_added_cond *added);

/* The LDM key (without prefix) of a diffusers UNet weight name; -1 if it has none. */
int sd_unet_ldm_key(const char *name, sd_key_ref *ref, const void *cfg /* const sd_unet_config * */);

/* The sinusoidal timestep embedding diffusers computes (float32, as torch does): out [n, dim]. */
void sd_unet_time_proj(float *out, const float *timesteps, int n, int dim, bool flip_sin_to_cos, float freq_shift);

#endif
