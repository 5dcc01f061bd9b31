/* cmd_common.c — options and helpers shared by the subcommands. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "commands.h"

void cli_add_model_options(args *a) {
    args_add(a, "model", false, "diffusers folder, single-file .safetensors checkpoint, or Hugging Face id org/name[@rev]");
    args_add(a, "tokenizer", false, "tokenizer folder (vocab.json + merges.txt) for single-file checkpoints");
    args_add(a, "config", false, "diffusers folder whose configs describe a single-file checkpoint");
    args_add(a, "taesd", false, "TAESD folder or file, or Hugging Face id (madebyollin/taesd)");
    args_add(a, "variant", false, "weights variant, e.g. fp16 (*.fp16.safetensors)");
    args_add(a, "dtype", false, "fp32 (default: exact) or bf16 (bfloat16 weight matrices, half the memory)");
    args_add(a, "lora", false, "LoRA file to fuse at load, PATH[:SCALE] (scale default 1); repeatable");
    args_add(a, "lora-report", true, "print what each LoRA touched (modules of UNet and text encoder, keys skipped)");
    args_add(a, "lora-allow-unused", true, "skip LoRA keys that fit no weight instead of failing");
    args_add(a, "help", true, "show this help");
}

int cli_error(sd_status status) {
    fprintf(stderr, "error: %s (%s)\n", sd_last_error(), sd_status_name(status));
    return 1;
}

sd_model *cli_load_model(const args *a, unsigned components) {
    sd_model_params p = sd_model_params_default();
    p.path = args_get(a, "model");
    p.tokenizer_dir = args_get(a, "tokenizer");
    p.config_dir = args_get(a, "config");
    p.taesd_path = args_get(a, "taesd");
    p.variant = args_get(a, "variant");
    p.components = components;
    const char *dtype = args_get(a, "dtype");
    if (dtype && strcmp(dtype, "bf16") == 0) p.precision = SD_PRECISION_BF16;
    else if (dtype && strcmp(dtype, "fp32") != 0) {
        fprintf(stderr, "error: --dtype takes fp32 or bf16, not '%s'\n", dtype);
        return NULL;
    }
    if (!p.path) {
        fprintf(stderr, "error: --model is required\n");
        return NULL;
    }
    const char *const *specs;
    sd_lora loras[SD_MAX_LORAS];
    char lora_paths[SD_MAX_LORAS][4096];
    p.n_loras = args_get_all(a, "lora", &specs);
    if (p.n_loras > SD_MAX_LORAS) {
        fprintf(stderr, "error: at most %d --lora\n", SD_MAX_LORAS);
        return NULL;
    }
    for (int i = 0; i < p.n_loras; i++) {
        sd_status st = sd_lora_parse_spec(specs[i], lora_paths[i], sizeof lora_paths[i], &loras[i].scale);
        if (st != SD_OK) {
            cli_error(st);
            return NULL;
        }
        loras[i].path = lora_paths[i];
    }
    p.loras = loras;
    p.lora_allow_unused = args_flag(a, "lora-allow-unused");
    sd_model *model = NULL;
    sd_status st = sd_model_load(&model, &p);
    if (st != SD_OK) {
        cli_error(st);
        return NULL;
    }
    for (int i = 0; args_flag(a, "lora-report") && i < p.n_loras; i++) {
        sd_lora_report r;
        if (sd_model_lora_report(model, i, &r) != SD_OK) continue;
        fprintf(stderr, "lora %s (scale %g): %d UNet modules, %d text encoder modules, %d keys skipped, %d modules of "
                        "components not loaded, %.1f ms\n",
                loras[i].path, (double)loras[i].scale, r.unet_modules, r.text_encoder_modules, r.skipped_keys,
                r.unloaded_modules, r.fuse_ms);
    }
    return model;
}

unsigned cli_pipeline_components(const args *a) {
    /* with TAESD the full VAE is never run (unless --vae): not loading it saves its memory */
    bool taesd = args_get(a, "taesd") && !args_flag(a, "vae");
    return taesd ? SD_COMPONENT_ALL & ~(unsigned)SD_COMPONENT_VAE : SD_COMPONENT_ALL;
}

double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
