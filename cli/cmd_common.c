/* cmd_common.c — options and helpers shared by the subcommands: the model options and their
 * checks (made before the model loads), loading with progress, threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"

enum { MAX_THREADS = 256 };

void cli_add_model_options(args *a) {
    args_add(a, "model", false, "diffusers folder, single-file .safetensors checkpoint, or Hugging Face id org/name[@rev]");
    args_require(a, "model");
    args_add(a, "tokenizer", false, "tokenizer folder (vocab.json + merges.txt) for single-file checkpoints");
    args_add(a, "config", false, "diffusers folder whose configs describe a single-file checkpoint");
    args_add(a, "taesd", false, "TAESD folder or file, or Hugging Face id (madebyollin/taesd)");
    args_add(a, "variant", false, "fp16: read the *.fp16.safetensors files of a diffusers folder");
    args_add(a, "backend", false, "cpu or cuda (default: cuda when built with it and a GPU is present, else cpu; "
                                  "$SDSTREAM_BACKEND)");
    args_add(a, "dtype", false, "compute precision: fp32 (the CPU's default: exact), bf16 (CPU: bfloat16 weight matrices, "
                                "half the memory), fp16 (the cuda default: tensor cores)");
    cli_add_threads_option(a);
    args_add(a, "lora", false, "LoRA file to fuse at load, PATH[:SCALE] (scale default 1); repeatable");
    args_add(a, "lora-report", true, "print what each LoRA touched (modules of UNet and text encoder, keys skipped)");
    args_add(a, "lora-allow-unused", true, "skip LoRA keys that fit no weight instead of failing");
    args_add(a, "help", true, "show this help");
}

void cli_add_threads_option(args *a) {
    args_add(a, "threads", false, "CPU threads (default: $SDSTREAM_THREADS, else all cores)");
}

int cli_error(sd_status status) {
    cli_log_error("%s (%s)", sd_last_error(), sd_status_name(status));
    return 1;
}

/* A thread count from --threads or SDSTREAM_THREADS: 1..MAX_THREADS, a warning past the cores. */
static int parse_threads(const char *text, const char *what, int *out) {
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < 1 || v > MAX_THREADS) {
        cli_log_error("%s must be a thread count in 1..%d (got '%s')", what, MAX_THREADS, text);
        return 2;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0 && v > cores)
        cli_log_warning("%s %ld is more than the %ld cores of this machine: the threads will share them (slower)", what, v,
                        cores);
    *out = (int)v;
    return 0;
}

int cli_threads(const args *a, int *n_threads) {
    *n_threads = 0;
    const char *s = args_get(a, "threads"), *env = getenv("SDSTREAM_THREADS");
    if (s) return parse_threads(s, "--threads", n_threads);
    if (env && *env) { /* the library reads it too; checked here so a typo is a usage error */
        int ignored;
        return parse_threads(env, "SDSTREAM_THREADS", &ignored);
    }
    return 0;
}

/* --backend as the library's type (AUTO when absent); -1 for a bad value. */
static int backend_option(const args *a) {
    const char *b = args_get(a, "backend");
    if (!b) return SD_BACKEND_TYPE_AUTO;
    if (strcmp(b, "cpu") == 0) return SD_BACKEND_TYPE_CPU;
    if (strcmp(b, "cuda") == 0) return SD_BACKEND_TYPE_CUDA;
    if (strcmp(b, "auto") == 0) return SD_BACKEND_TYPE_AUTO;
    return -1;
}

int cli_check_model_options(const args *a) {
    const char *dtype = args_get(a, "dtype"), *variant = args_get(a, "variant");
    int backend = backend_option(a);
    if (backend < 0) {
        cli_log_error("--backend takes cpu, cuda or auto, not '%s' (this build has: %s)", args_get(a, "backend"), sd_backends());
        return 2;
    }
    sd_backend_type resolved = sd_backend_resolve((sd_backend_type)backend);
    if (backend == SD_BACKEND_TYPE_CUDA) {
        sd_status st = sd_backend_probe(SD_BACKEND_TYPE_CUDA);
        if (st != SD_OK) {
            cli_log_error("--backend cuda: %s; --backend cpu runs on this machine", sd_last_error());
            return 2;
        }
    }
    if (dtype && strcmp(dtype, "fp16") == 0 && resolved == SD_BACKEND_TYPE_CPU) {
        cli_log_error("--dtype fp16: the CPU computes in fp32 or bf16. To use a model's fp16 weights (half the memory, "
                      "results as fp32) pass --variant fp16 (diffusers folders with *.fp16.safetensors) or give an fp16 "
                      "file; --dtype bf16 halves the memory of fp32 files");
        return 2;
    }
    if (dtype && strcmp(dtype, "fp32") != 0 && strcmp(dtype, "bf16") != 0 && strcmp(dtype, "fp16") != 0 &&
        strcmp(dtype, "auto") != 0) {
        cli_log_error("--dtype takes fp32, bf16, fp16 (cuda) or auto, not '%s'", dtype);
        return 2;
    }
    if (variant && strcmp(variant, "fp16") != 0) {
        cli_log_error("--variant takes fp16 (the *.fp16.safetensors files), not '%s'", variant);
        return 2;
    }
    int threads;
    return cli_threads(a, &threads);
}

typedef struct load_progress {
    double start;
} load_progress;

static void on_load_progress(void *user, const char *part, int index, int count) {
    load_progress *p = user;
    if (part) cli_log_progress("loading %s: part %d of %d, %.1f s", part, index, count, (cli_now_ms() - p->start) * 1e-3);
    else cli_log_progress_end();
}

static sd_model *load_model(const args *a, unsigned components, bool with_loras) {
    if (cli_check_model_options(a)) return NULL;
    sd_model_params p = sd_model_params_default();
    p.path = args_get(a, "model");
    p.tokenizer_dir = args_get(a, "tokenizer");
    p.config_dir = args_get(a, "config");
    p.taesd_path = args_get(a, "taesd");
    p.variant = args_get(a, "variant");
    p.components = components;
    const char *dtype = args_get(a, "dtype");
    if (dtype && strcmp(dtype, "bf16") == 0) p.precision = SD_PRECISION_BF16;
    if (dtype && strcmp(dtype, "fp16") == 0) p.precision = SD_PRECISION_FP16;
    if (dtype && strcmp(dtype, "fp32") == 0) p.precision = SD_PRECISION_FP32;
    p.backend = (sd_backend_type)backend_option(a);
    cli_threads(a, &p.n_threads);
    if (!p.path) {
        cli_log_error("--model is required");
        return NULL;
    }
    /* progress for the loads that take a while (a UNet, a VAE); a tokenizer alone loads at once */
    bool slow = components & (SD_COMPONENT_UNET | SD_COMPONENT_VAE);
    load_progress progress = {cli_now_ms()};
    p.progress = slow ? on_load_progress : NULL;
    p.progress_user = &progress;
    const char *const *specs;
    sd_lora loras[SD_MAX_LORAS];
    char lora_paths[SD_MAX_LORAS][4096];
    p.n_loras = with_loras ? args_get_all(a, "lora", &specs) : 0;
    if (p.n_loras > SD_MAX_LORAS) {
        cli_log_error("at most %d --lora", SD_MAX_LORAS);
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
    cli_log_progress_end();
    if (st != SD_OK) {
        cli_error(st);
        return NULL;
    }
    if (slow)
        cli_log_info("loaded %s in %.0f ms; running on %s (%s)", sd_model_describe(model), cli_now_ms() - progress.start,
                     sd_model_backend_name(model), sd_model_compute_dtype(model));
    for (int i = 0; args_flag(a, "lora-report") && i < p.n_loras; i++) {
        sd_lora_report r;
        if (sd_model_lora_report(model, i, &r) != SD_OK) continue;
        cli_log_info("lora %s (scale %g): %d UNet modules, %d text encoder modules, %d keys skipped, %d modules of "
                     "components not loaded, %.1f ms",
                     loras[i].path, (double)loras[i].scale, r.unet_modules, r.text_encoder_modules, r.skipped_keys,
                     r.unloaded_modules, r.fuse_ms);
    }
    return model;
}

sd_model *cli_load_model(const args *a, unsigned components) {
    return load_model(a, components, true);
}

sd_model *cli_load_model_without_loras(const args *a, unsigned components) {
    return load_model(a, components, false);
}

void cli_warn_long_prompt(sd_model *model, const char *option, const char *prompt) {
    int n = 0;
    if (!prompt || sd_model_count_tokens(model, prompt, &n) != SD_OK || n <= SD_TOKENS - 2) return;
    int32_t ids[SD_TOKENS];
    if (sd_model_tokenize(model, prompt, ids) != SD_OK) return;
    cli_log_warning("%s is %d tokens; CLIP reads the first %d, so it is truncated after '%s' (the last %d tokens are "
                    "ignored)", option, n, SD_TOKENS - 2, sd_model_token_text(model, ids[SD_TOKENS - 2]), n - (SD_TOKENS - 2));
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
