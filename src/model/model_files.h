/* model_files.h — finding a model's files: what layout a path is, which architecture it holds, and
 * where each component's weights, config and tokenizer are.
 *
 * Layouts: a diffusers folder (model_index.json + unet/, vae/, text_encoder/, tokenizer/,
 * scheduler/; SDXL adds text_encoder_2/ and tokenizer_2/), a single-file SD 1.x / SD 2.x checkpoint
 * in the original key layout (model.diffusion_model.*, first_stage_model.*, cond_stage_model.*) or
 * an SDXL one (conditioner.embedders.0/1.* for the two text encoders), and TAESD (a diffusers
 * AutoencoderTiny folder or its .safetensors file). Nothing is loaded here beyond configs and the
 * safetensors headers needed to recognise the architecture.
 */
#ifndef SD_MODEL_MODEL_FILES_H
#define SD_MODEL_MODEL_FILES_H

#include <stdbool.h>

#include "base/fs.h"
#include "base/safetensors.h"

typedef enum sd_layout { SD_LAYOUT_DIFFUSERS, SD_LAYOUT_SINGLE_FILE, SD_LAYOUT_TAESD_ONLY } sd_layout;
typedef enum sd_arch { SD_ARCH_SD1, SD_ARCH_SD2, SD_ARCH_SDXL } sd_arch;

typedef struct sd_model_files {
    sd_layout layout;
    sd_arch arch;
    char root[SD_PATH_MAX];
    /* diffusers folder: weights and config per component ("" when absent) */
    char text_encoder_weights[SD_PATH_MAX], text_encoder_config[SD_PATH_MAX];
    char text_encoder_2_weights[SD_PATH_MAX], text_encoder_2_config[SD_PATH_MAX]; /* SDXL */
    char unet_weights[SD_PATH_MAX], unet_config[SD_PATH_MAX];
    char vae_weights[SD_PATH_MAX], vae_config[SD_PATH_MAX];
    char scheduler_config[SD_PATH_MAX];
    /* single file: the checkpoint; configs from --config DIR when given */
    char checkpoint[SD_PATH_MAX];
    char tokenizer_dir[SD_PATH_MAX];
    char tokenizer_2_dir[SD_PATH_MAX]; /* SDXL's second tokenizer (pads with "!") */
    /* SDXL: model_index.json force_zeros_for_empty_prompt (true for single files, as diffusers) */
    bool force_zeros_for_empty_prompt;
    /* TAESD ("" when none) */
    char taesd_weights[SD_PATH_MAX], taesd_config[SD_PATH_MAX];
} sd_model_files;

/* Key prefixes of the single-file layout. */
#define SD_CKPT_UNET_PREFIX "model.diffusion_model."
#define SD_CKPT_VAE_PREFIX "first_stage_model."
#define SD_CKPT_SD1_TEXT_PREFIX "cond_stage_model.transformer."
#define SD_CKPT_SD2_TEXT_PREFIX "cond_stage_model.model."
#define SD_CKPT_SDXL_TEXT_PREFIX "conditioner.embedders.0.transformer."
#define SD_CKPT_SDXL_TEXT2_PREFIX "conditioner.embedders.1.model."

/* path: model path; tokenizer_dir/config_dir/taesd_path/variant as in sd_model_params (may be NULL).
 * need_tokenizer: fail when no tokenizer can be found. */
sd_status sd_model_files_find(sd_model_files *files, const char *path, const char *tokenizer_dir,
                              const char *config_dir, const char *taesd_path, const char *variant,
                              int need_tokenizer);
/* A TAESD folder or file used on its own (`eval --component taesd_*`). */
sd_status sd_model_files_find_taesd_only(sd_model_files *files, const char *path);
/* TAESD folder or file -> weights (+ config when a folder). */
sd_status sd_taesd_files_find(char *weights, char *config, const char *path);

const char *sd_arch_name(sd_arch arch);
const char *sd_layout_name(sd_layout layout);

#endif
