/* taesd.h — TAESD, the tiny autoencoder StreamDiffusion uses for real-time decoding (diffusers'
 * AutoencoderTiny: EncoderTiny / DecoderTiny of models/vae.py, AutoencoderTinyBlock of
 * unet_2d_blocks.py). A plain stack of 3x3 convs and ReLUs: no norms, no attention.
 *
 * USE
 *   sd_taesd_config cfg;
 *   sd_taesd_config_read(&cfg, &json);   // taesd/config.json, or sd_taesd_config_default()
 *   sd_taesd t;
 *   sd_taesd_load(&t, &cfg, file);       // keys encoder.layers.N.*, decoder.layers.N.*
 *   sd_taesd_encode(&t, be, arena, &latents, &image);
 *   sd_taesd_decode(&t, be, arena, &image, &latents);
 *   sd_taesd_free(&t);
 *
 * Value conventions are diffusers', not the original taesd.py's: encode takes images in [-1, 1]
 * (it maps them to [0, 1] itself) and decode returns images in [-1, 1] (not clamped); decode
 * soft-clamps its input with tanh(z / 3) * 3. Latents are what AutoencoderTiny.encode returns
 * (scaling_factor 1.0: the same scale the UNet sees). AutoencoderTiny.forward's uint8 latent
 * quantisation is not part of encode/decode (StreamDiffusion never calls forward).
 *
 * Memory, threads and errors as in vae.h: weights are float32 copies owned by the sd_taesd;
 * inputs/outputs are caller-allocated backend tensors; intermediates come from the arena between
 * a mark and a rewind; a failed load leaves *t zeroed.
 */
#ifndef SD_MODEL_TAESD_H
#define SD_MODEL_TAESD_H

#include "backend/backend.h"
#include "base/arena.h"
#include "base/config.h"
#include "model/weights.h"

enum {
    SD_TAESD_MAX_LEVELS = 6,  /* TAESD has 4 (downsampling 8) */
    SD_TAESD_MAX_BLOCKS = 8,  /* per level; TAESD has at most 3 */
};

typedef struct sd_taesd_config {
    int in_channels, out_channels, latent_channels;
    int n_enc_levels, n_dec_levels;
    int encoder_channels[SD_TAESD_MAX_LEVELS], decoder_channels[SD_TAESD_MAX_LEVELS];
    int encoder_blocks[SD_TAESD_MAX_LEVELS], decoder_blocks[SD_TAESD_MAX_LEVELS];
    float scaling_factor, shift_factor; /* informational: not applied by encode/decode */
    sd_dtype weight_dtype; /* storage of weight matrices: F32 (default) or BF16, see weights.h */
} sd_taesd_config;

/* AutoencoderTinyBlock: relu(conv(relu(conv(relu(conv(x))))) + x); the skip is the identity
 * because every level keeps its width (a width change could not be built by diffusers either). */
typedef struct sd_taesd_block {
    sd_tensor conv_w[3], conv_b[3];
} sd_taesd_block;

/* Encoder level: conv (level 0: conv_in with bias; later: stride-2, no bias), then blocks.
 * Decoder level: blocks, then (not on the last level) nearest 2x, then a conv (no bias, except the
 * last level's, which is the output conv). */
typedef struct sd_taesd_level {
    sd_taesd_block blocks[SD_TAESD_MAX_BLOCKS];
    int n_blocks;
    sd_tensor conv_w, conv_b; /* conv_b data NULL where the conv has no bias */
} sd_taesd_level;

typedef struct sd_taesd {
    sd_taesd_config cfg;
    sd_taesd_level enc[SD_TAESD_MAX_LEVELS];
    sd_tensor enc_out_w, enc_out_b; /* last encoder conv -> latents */
    sd_tensor dec_in_w, dec_in_b;   /* first decoder conv (+ ReLU) */
    sd_taesd_level dec[SD_TAESD_MAX_LEVELS];
    sd_weight_store store;
} sd_taesd;

/* diffusers' AutoencoderTiny defaults = the TAESD architecture for SD 1.x/2.x: channels 64
 * everywhere, encoder blocks (1, 3, 3, 3), decoder blocks (3, 3, 3, 1), latent 4. For a TAESD
 * .safetensors file without a config. */
void sd_taesd_config_default(sd_taesd_config *cfg);
/* Reads a diffusers AutoencoderTiny config.json. act_fn must be relu, upsampling_scaling_factor 2,
 * upsample_fn nearest, and each of encoder/decoder must keep one width; other values are
 * SD_ERR_UNSUPPORTED naming the key. */
sd_status sd_taesd_config_read(sd_taesd_config *cfg, const sd_config *json);

sd_status sd_taesd_load(sd_taesd *t, const sd_taesd_config *cfg, const sd_safetensors *file);
void sd_taesd_free(sd_taesd *t);

/* image [N, in_channels, H, W] in [-1, 1], H and W multiples of 2^(levels-1) (8) -> latents
 * [N, latent_channels, H/8, W/8]. */
sd_status sd_taesd_encode(sd_taesd *t, sd_backend *be, sd_arena *arena, sd_tensor *latents, const sd_tensor *image);
/* latents [N, latent_channels, h, w] -> image [N, out_channels, 8h, 8w] in [-1, 1] (not clamped). */
sd_status sd_taesd_decode(sd_taesd *t, sd_backend *be, sd_arena *arena, sd_tensor *image, const sd_tensor *latents);

#endif
