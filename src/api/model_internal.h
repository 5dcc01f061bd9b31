/* model_internal.h — what an sd_model holds, shared by the API files (model_api.c, eval.c). */
#ifndef SD_API_MODEL_INTERNAL_H
#define SD_API_MODEL_INTERNAL_H

#include <stdbool.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "model/clip_text.h"
#include "model/model_files.h"
#include "model/tokenizer.h"
#include "model/taesd.h"
#include "model/unet.h"
#include "model/vae.h"

struct sd_model {
    sd_model_files files;
    unsigned components;
    sd_dtype weight_dtype; /* host storage of weight matrices: F32, or BF16 for SD_PRECISION_BF16 */
    sd_backend_kind backend_kind; /* resolved from sd_model_params.backend */
    sd_dtype act_dtype;           /* the backend's activations, resolved from the precision */
    sd_backend *backend;
    sd_arena arena;
    sd_tokenizer *tokenizer;
    sd_clip_text text;
    bool has_text;           /* with SDXL: both text encoders */
    sd_tokenizer *tokenizer_2; /* SDXL's second tokenizer and text encoder (OpenCLIP bigG, projected) */
    sd_clip_text text_2;
    sd_unet unet;
    bool has_unet;
    sd_vae vae;
    bool has_vae;
    sd_taesd taesd;
    bool has_taesd;
    sd_lora_report lora_reports[SD_MAX_LORAS]; /* one per sd_model_params.loras entry */
    int n_loras;
    char description[512];
};

/* The prompt embedding the UNet reads: embeds [77, sd_model_text_hidden_size()] and, for SDXL,
 * pooled [sd_model_text_pooled_size()] (may be NULL; ignored for SD 1.x/2.x). Host memory. */
sd_status sd_model_encode_text(sd_model *model, const char *prompt, float *embeds, float *pooled);

/* Fails with SD_ERR_STATE naming fn when a component was not loaded. */
sd_status sd_model_require(const sd_model *model, unsigned component, const char *fn);

/* A backend for this model's work: its kind, n_threads (<= 0: all cores), its precision's math. */
sd_status sd_model_backend_create(const sd_model *model, int n_threads, sd_backend **out);

#endif
