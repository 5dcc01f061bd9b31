/* vae.h — AutoencoderKL, the Stable Diffusion image autoencoder (diffusers 0.24 Encoder/Decoder):
 * images [N, 3, H, W] in [-1, 1] <-> latents [N, 4, H/8, W/8].
 *
 * USE
 *   sd_vae_config cfg;
 *   sd_vae_config_read(&cfg, &json);          // vae/config.json, or sd_vae_config_infer() for a
 *                                             // single file without one
 *   sd_vae vae;
 *   sd_vae_load(&vae, &cfg, file, "", false); // diffusers folder; ("first_stage_model.", true) for
 *                                             // an original LDM single-file checkpoint
 *   sd_vae_encode(&vae, be, arena, &mean, &std, &image);
 *   sd_vae_decode(&vae, be, arena, &image, &latent);
 *   sd_vae_free(&vae);
 *
 * Latents are UNSCALED on both sides (what diffusers' AutoencoderKL returns and takes): the
 * pipeline multiplies by cfg.scaling_factor (0.18215 for SD 1.x/2.x) before the UNet and divides
 * after. encode returns the posterior's mean and std = exp(0.5 * clamp(logvar, -30, 20)); a sample
 * is mean + std * noise (DiagonalGaussianDistribution.sample), left to the caller.
 *
 * Memory: the weights are float32 copies owned by the sd_vae (the file may be closed after load).
 * Inputs and outputs are backend tensors the caller allocates (float32, the shapes above); the
 * intermediates come from `arena` between a mark and a rewind, so the caller's own arena tensors
 * below the mark survive. Nothing is malloc'ed during encode/decode.
 *
 * Errors: sd_status with a message naming the file/tensor/key and expected vs found; a failed
 * load leaves *vae zeroed (safe to free). One sd_vae may be used by one thread at a time.
 */
#ifndef SD_MODEL_VAE_H
#define SD_MODEL_VAE_H

#include <stdbool.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "base/config.h"
#include "model/weights.h"

enum {
    SD_VAE_MAX_LEVELS = 6, /* SD uses 4 (downsampling 8) */
    SD_VAE_MAX_LAYERS = 4, /* layers_per_block; SD uses 2 (the decoder runs layers + 1 per level) */
};

typedef struct sd_vae_config {
    int in_channels, out_channels, latent_channels;
    int n_levels;
    int block_out_channels[SD_VAE_MAX_LEVELS];
    int layers_per_block;
    int norm_num_groups;
    bool mid_attention; /* mid_block_add_attention (diffusers >= 0.26; always true before) */
    float scaling_factor; /* informational: not applied by encode/decode */
    sd_dtype weight_dtype; /* storage of weight matrices: F32 (default) or BF16, see weights.h */
} sd_vae_config;

typedef struct sd_vae_resnet {
    sd_tensor norm1_w, norm1_b, conv1_w, conv1_b;
    sd_tensor norm2_w, norm2_b, conv2_w, conv2_b;
    sd_tensor shortcut_w, shortcut_b; /* 1x1 conv when channels change (data NULL otherwise) */
} sd_vae_resnet;

typedef struct sd_vae_attention {
    sd_tensor norm_w, norm_b;
    sd_tensor q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b; /* Linear [C, C] */
} sd_vae_attention;

typedef struct sd_vae_mid {
    sd_vae_resnet resnets[2];
    sd_vae_attention attn; /* between the two resnets, when cfg.mid_attention */
} sd_vae_mid;

/* One DownEncoderBlock2D / UpDecoderBlock2D: resnets then an optional down/up-sampling conv. */
typedef struct sd_vae_level {
    sd_vae_resnet resnets[SD_VAE_MAX_LAYERS + 1];
    int n_resnets;
    sd_tensor sample_w, sample_b; /* Downsample2D / Upsample2D conv (data NULL on the last level) */
} sd_vae_level;

typedef struct sd_vae_coder {
    sd_tensor conv_in_w, conv_in_b;
    sd_vae_level levels[SD_VAE_MAX_LEVELS]; /* encoder: down_blocks; decoder: up_blocks, in run order */
    sd_vae_mid mid;
    sd_tensor norm_out_w, norm_out_b, conv_out_w, conv_out_b;
} sd_vae_coder;

typedef struct sd_vae {
    sd_vae_config cfg;
    sd_vae_coder encoder, decoder;
    sd_tensor quant_w, quant_b;           /* [2L, 2L, 1, 1]: mean rows 0..L-1, logvar rows L..2L-1 */
    sd_tensor post_quant_w, post_quant_b; /* [L, L, 1, 1] */
    sd_weight_store store;
} sd_vae;

/* SD 1.x/2.x's VAE (block_out_channels 128,256,512,512, 2 layers, 32 groups, latent 4). */
void sd_vae_config_default(sd_vae_config *cfg);
/* Reads a diffusers AutoencoderKL config (vae/config.json). Only DownEncoderBlock2D /
 * UpDecoderBlock2D blocks and act_fn silu exist in SD VAEs; anything else is SD_ERR_UNSUPPORTED
 * naming the value. */
sd_status sd_vae_config_read(sd_vae_config *cfg, const sd_config *json);
/* Derives the config from tensor shapes (levels, channels, layers, latent channels, attention) for
 * files without a config. Groups cannot be read from shapes: 32, as in every SD VAE; channels not
 * divisible by 32 are SD_ERR_UNSUPPORTED asking for a config. */
sd_status sd_vae_config_infer(sd_vae_config *cfg, const sd_safetensors *file, const char *prefix, bool ldm_layout);

/* prefix: "" for a diffusers vae/ file, "first_stage_model." for a single-file checkpoint.
 * ldm_layout: the file uses the original LDM names (encoder.down.N.block.M, mid.attn_1, ...).
 * A diffusers file with the pre-0.14 attention names (query/key/value/proj_attn) is recognised. */
sd_status sd_vae_load(sd_vae *vae, const sd_vae_config *cfg, const sd_safetensors *file, const char *prefix,
                      bool ldm_layout);
void sd_vae_free(sd_vae *vae);

/* image [N, in_channels, H, W] in [-1, 1], H and W multiples of 2^(levels-1) (8) -> mean, std
 * [N, latent_channels, H/8, W/8], unscaled; std = exp(0.5 * clamp(logvar, -30, 20)). */
sd_status sd_vae_encode(sd_vae *vae, sd_backend *be, sd_arena *arena, sd_tensor *mean, sd_tensor *std,
                        const sd_tensor *image);
/* latent [N, latent_channels, h, w], unscaled -> image [N, out_channels, 8h, 8w] (not clamped). */
sd_status sd_vae_decode(sd_vae *vae, sd_backend *be, sd_arena *arena, sd_tensor *image, const sd_tensor *latent);

/* ---- key maps (vae_keymap.c) ----
 * Internal names are diffusers' (encoder.down_blocks.0.resnets.1.conv1.weight, ...). map_ctx is
 * the const sd_vae_config * (the LDM decoder numbers its levels in reverse). */
/* Original LDM / CompVis layout of single-file checkpoints (first_stage_model.*): down.N.block.M,
 * downsample, mid.block_1/2, mid.attn_1.{norm,q,k,v,proj_out}, up.(L-1-N).block.M, upsample,
 * nin_shortcut, norm_out. LDM attention projections are [C, C, 1, 1] convs; the loader reshapes. */
int sd_vae_ldm_key_map(const char *internal, sd_key_ref *ref, const void *map_ctx);
/* diffusers before 0.14 (e.g. runwayml/stable-diffusion-v1-5's vae/): attention projections named
 * query/key/value/proj_attn. */
int sd_vae_legacy_key_map(const char *internal, sd_key_ref *ref, const void *map_ctx);

#endif
