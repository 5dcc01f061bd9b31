/* model_files.c — see model_files.h. */
#include "model/model_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "model/hf_cache.h"

const char *sd_arch_name(sd_arch arch) {
    switch (arch) {
    case SD_ARCH_SD1: return "SD 1.x";
    case SD_ARCH_SD2: return "SD 2.x";
    case SD_ARCH_SDXL: return "SDXL";
    }
    return "?";
}
const char *sd_layout_name(sd_layout layout) {
    switch (layout) {
    case SD_LAYOUT_DIFFUSERS: return "diffusers folder";
    case SD_LAYOUT_SINGLE_FILE: return "single-file checkpoint";
    case SD_LAYOUT_TAESD_ONLY: return "TAESD";
    }
    return "?";
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Picks <dir>/<stem>[.fp16].safetensors; the variant file when asked for and present. */
static sd_status pick_weights(char *out, const char *dir, const char *stem, const char *variant, const char *component) {
    char name[256], path[SD_PATH_MAX];
    if (variant && *variant) {
        snprintf(name, sizeof name, "%s.%s.safetensors", stem, variant);
        SD_TRY(sd_path_join(path, sizeof path, dir, name));
        if (sd_is_file(path)) {
            snprintf(out, SD_PATH_MAX, "%s", path);
            return SD_OK;
        }
    }
    snprintf(name, sizeof name, "%s.safetensors", stem);
    SD_TRY(sd_path_join(path, sizeof path, dir, name));
    if (sd_is_file(path)) {
        snprintf(out, SD_PATH_MAX, "%s", path);
        return SD_OK;
    }
    snprintf(name, sizeof name, "%s.bin", stem);
    char bin[SD_PATH_MAX];
    SD_TRY(sd_path_join(bin, sizeof bin, dir, name));
    if (sd_is_file(bin))
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: only a PyTorch pickle (%s) is present; sdstream reads .safetensors only "
                       "(pickles can run code): convert it or download the safetensors files", dir, name);
    return sd_fail(SD_ERR_NOT_FOUND, "%s: no %s weights (expected %s)", dir, component, path);
}

/* <root>/<component>/config.json; the scheduler's is scheduler_config.json. */
static sd_status component_config(char *out, const char *root, const char *component) {
    char dir[SD_PATH_MAX];
    const char *file = strcmp(component, "scheduler") == 0 ? "scheduler_config.json" : "config.json";
    SD_TRY(sd_path_join(dir, sizeof dir, root, component));
    SD_TRY(sd_path_join(out, SD_PATH_MAX, dir, file));
    if (!sd_is_file(out)) return sd_fail(SD_ERR_NOT_FOUND, "%s: missing (expected a %s/ folder with %s)", out, component, file);
    return SD_OK;
}

static bool is_tokenizer_dir(const char *dir) {
    char a[SD_PATH_MAX], b[SD_PATH_MAX];
    return sd_path_join(a, sizeof a, dir, "vocab.json") == SD_OK && sd_path_join(b, sizeof b, dir, "merges.txt") == SD_OK &&
           sd_is_file(a) && sd_is_file(b);
}

/* dir/tokenizer and dir/tokenizer_2 both tokenizer folders: SDXL's pair. */
static bool find_tokenizer_pair(sd_model_files *f, const char *dir) {
    char a[SD_PATH_MAX], b[SD_PATH_MAX];
    if (sd_path_join(a, sizeof a, dir, "tokenizer") != SD_OK || sd_path_join(b, sizeof b, dir, "tokenizer_2") != SD_OK ||
        !is_tokenizer_dir(a) || !is_tokenizer_dir(b))
        return false;
    snprintf(f->tokenizer_dir, sizeof f->tokenizer_dir, "%s", a);
    snprintf(f->tokenizer_2_dir, sizeof f->tokenizer_2_dir, "%s", b);
    return true;
}

/* SDXL needs two tokenizers (the second pads with "!"): a folder holding tokenizer/ and
 * tokenizer_2/ (--tokenizer, the model or --config folder, or an SDXL snapshot in the HF cache). */
static sd_status find_sdxl_tokenizers(sd_model_files *f, const char *tokenizer_dir, const char *config_dir, int need) {
    if (tokenizer_dir && *tokenizer_dir) {
        if (find_tokenizer_pair(f, tokenizer_dir)) return SD_OK;
        return sd_fail(SD_ERR_NOT_FOUND, "%s: SDXL needs two tokenizers: pass a folder holding tokenizer/ and tokenizer_2/ "
                       "(each with vocab.json and merges.txt), e.g. a diffusers SDXL folder", tokenizer_dir);
    }
    if (f->layout == SD_LAYOUT_DIFFUSERS && find_tokenizer_pair(f, f->root)) return SD_OK;
    if (config_dir && *config_dir && find_tokenizer_pair(f, config_dir)) return SD_OK;
    static const char *const repos[] = {"stabilityai/sdxl-turbo", "stabilityai/stable-diffusion-xl-base-1.0"};
    for (size_t i = 0; i < sizeof repos / sizeof repos[0]; i++) {
        char a[SD_PATH_MAX], b[SD_PATH_MAX];
        if (sd_hf_find_snapshot(a, repos[i], "tokenizer", is_tokenizer_dir) &&
            sd_hf_find_snapshot(b, repos[i], "tokenizer_2", is_tokenizer_dir)) {
            snprintf(f->tokenizer_dir, sizeof f->tokenizer_dir, "%s", a);
            snprintf(f->tokenizer_2_dir, sizeof f->tokenizer_2_dir, "%s", b);
            return SD_OK;
        }
    }
    if (!need) return SD_OK;
    return sd_fail(SD_ERR_NOT_FOUND, "%s: no SDXL tokenizers found (tokenizer/ and tokenizer_2/); pass --tokenizer DIR, "
                   "a folder holding both, e.g. stabilityai/sdxl-turbo", f->root);
}

static sd_status find_tokenizer(sd_model_files *f, const char *tokenizer_dir, const char *config_dir, int need) {
    if (f->arch == SD_ARCH_SDXL) return find_sdxl_tokenizers(f, tokenizer_dir, config_dir, need);
    if (tokenizer_dir && *tokenizer_dir) {
        if (!is_tokenizer_dir(tokenizer_dir))
            return sd_fail(SD_ERR_NOT_FOUND, "%s: not a tokenizer folder (expected vocab.json and merges.txt)", tokenizer_dir);
        snprintf(f->tokenizer_dir, sizeof f->tokenizer_dir, "%s", tokenizer_dir);
        return SD_OK;
    }
    if (f->layout == SD_LAYOUT_DIFFUSERS) {
        char dir[SD_PATH_MAX];
        SD_TRY(sd_path_join(dir, sizeof dir, f->root, "tokenizer"));
        if (is_tokenizer_dir(dir)) {
            snprintf(f->tokenizer_dir, sizeof f->tokenizer_dir, "%s", dir);
            return SD_OK;
        }
    }
    static const struct {
        sd_arch arch;
        const char *repo, *sub;
    } cache[] = {
        {SD_ARCH_SD1, "runwayml/stable-diffusion-v1-5", "tokenizer"},
        {SD_ARCH_SD1, "stable-diffusion-v1-5/stable-diffusion-v1-5", "tokenizer"},
        {SD_ARCH_SD1, "openai/clip-vit-large-patch14", ""},
        {SD_ARCH_SD2, "stabilityai/sd-turbo", "tokenizer"},
        {SD_ARCH_SD2, "stabilityai/stable-diffusion-2-1-base", "tokenizer"},
        {SD_ARCH_SD2, "stabilityai/stable-diffusion-2-1", "tokenizer"},
    };
    for (size_t i = 0; i < sizeof cache / sizeof cache[0]; i++)
        if (cache[i].arch == f->arch && sd_hf_find_snapshot(f->tokenizer_dir, cache[i].repo, cache[i].sub, is_tokenizer_dir)) return SD_OK;
    if (!need) return SD_OK;
    return sd_fail(SD_ERR_NOT_FOUND,
                   "%s: a single-file checkpoint carries no tokenizer; pass --tokenizer DIR, a folder with vocab.json "
                   "and merges.txt (for %s: the tokenizer/ folder of %s)",
                   f->root, sd_arch_name(f->arch),
                   f->arch == SD_ARCH_SD1 ? "runwayml/stable-diffusion-v1-5" : "stabilityai/sd-turbo or stable-diffusion-2-1");
}

static sd_status find_diffusers(sd_model_files *f, const char *variant) {
    char index_path[SD_PATH_MAX];
    SD_TRY(sd_path_join(index_path, sizeof index_path, f->root, "model_index.json"));
    sd_config index;
    SD_TRY(sd_config_load(&index, index_path));
    const char *cls = NULL;
    sd_status st = sd_config_string(&index, "_class_name", NULL, &cls);
    if (st == SD_OK && !cls) st = sd_fail(SD_ERR_FORMAT, "%s: \"_class_name\" is missing", index_path);
    if (st == SD_OK && strncmp(cls, "StableDiffusion", 15) != 0 && strcmp(cls, "LatentConsistencyModelPipeline") != 0)
        st = sd_fail(SD_ERR_UNSUPPORTED, "%s: pipeline \"%s\" is not supported (expected StableDiffusionPipeline, "
                     "StableDiffusionXLPipeline or another StableDiffusion*Pipeline of SD 1.x / 2.x / SDXL)", index_path, cls);
    /* SDXL: the XL pipeline classes, or (any class) a second text encoder */
    bool sdxl = st == SD_OK && (strstr(cls, "XL") != NULL || sd_config_has(&index, "text_encoder_2"));
    if (st == SD_OK && sdxl && !sd_config_has(&index, "text_encoder_2"))
        st = sd_fail(SD_ERR_UNSUPPORTED, "%s: %s without a text_encoder_2 (an SDXL refiner or image-to-image-only "
                     "pipeline?); sdstream runs SDXL base/turbo pipelines with both text encoders", index_path, cls);
    f->force_zeros_for_empty_prompt = false;
    if (st == SD_OK && sdxl) st = sd_config_bool(&index, "force_zeros_for_empty_prompt", true, &f->force_zeros_for_empty_prompt);
    sd_config_free(&index);
    SD_TRY(st);

    char dir[SD_PATH_MAX];
    SD_TRY(component_config(f->text_encoder_config, f->root, "text_encoder"));
    SD_TRY(sd_path_join(dir, sizeof dir, f->root, "text_encoder"));
    SD_TRY(pick_weights(f->text_encoder_weights, dir, "model", variant, "text_encoder"));
    if (sdxl) {
        SD_TRY(component_config(f->text_encoder_2_config, f->root, "text_encoder_2"));
        SD_TRY(sd_path_join(dir, sizeof dir, f->root, "text_encoder_2"));
        SD_TRY(pick_weights(f->text_encoder_2_weights, dir, "model", variant, "text_encoder_2"));
    }
    SD_TRY(component_config(f->unet_config, f->root, "unet"));
    SD_TRY(sd_path_join(dir, sizeof dir, f->root, "unet"));
    SD_TRY(pick_weights(f->unet_weights, dir, "diffusion_pytorch_model", variant, "unet"));
    SD_TRY(component_config(f->vae_config, f->root, "vae"));
    SD_TRY(sd_path_join(dir, sizeof dir, f->root, "vae"));
    SD_TRY(pick_weights(f->vae_weights, dir, "diffusion_pytorch_model", variant, "vae"));
    SD_TRY(component_config(f->scheduler_config, f->root, "scheduler"));

    if (sdxl) {
        f->arch = SD_ARCH_SDXL;
        return SD_OK;
    }
    /* SD 1.x vs 2.x: the text encoder's activation (quick_gelu: OpenAI CLIP; gelu: OpenCLIP) */
    sd_config te;
    SD_TRY(sd_config_load(&te, f->text_encoder_config));
    const char *act = NULL;
    st = sd_config_string(&te, "hidden_act", "quick_gelu", &act);
    if (st == SD_OK) f->arch = strcmp(act, "gelu") == 0 ? SD_ARCH_SD2 : SD_ARCH_SD1;
    sd_config_free(&te);
    return st;
}

static sd_status find_single_file(sd_model_files *f, const char *config_dir) {
    snprintf(f->checkpoint, sizeof f->checkpoint, "%s", f->root);
    sd_safetensors *st = NULL;
    SD_TRY(sd_st_open(&st, f->checkpoint));
    bool unet = sd_st_find(st, SD_CKPT_UNET_PREFIX "input_blocks.0.0.weight") != NULL;
    bool sd1 = sd_st_find(st, SD_CKPT_SD1_TEXT_PREFIX "text_model.embeddings.token_embedding.weight") != NULL;
    bool sd2 = sd_st_find(st, SD_CKPT_SD2_TEXT_PREFIX "token_embedding.weight") != NULL;
    bool sdxl = sd_st_find(st, SD_CKPT_SDXL_TEXT_PREFIX "text_model.embeddings.token_embedding.weight") != NULL &&
                sd_st_find(st, SD_CKPT_SDXL_TEXT2_PREFIX "token_embedding.weight") != NULL;
    bool sdxl_partial = !sdxl && (sd_st_find(st, SD_CKPT_SDXL_TEXT_PREFIX "text_model.embeddings.token_embedding.weight") ||
                                  sd_st_find(st, SD_CKPT_SDXL_TEXT2_PREFIX "token_embedding.weight"));
    bool taesd = sd_st_find(st, "encoder.layers.0.weight") != NULL || sd_st_find(st, "decoder.layers.0.weight") != NULL;
    const char *first = st->n_tensors > 0 ? st->tensors[0].name : "(no tensors)";
    char first_copy[160];
    snprintf(first_copy, sizeof first_copy, "%s", first);
    int n = st->n_tensors;
    sd_st_close(st);
    if (sdxl_partial)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: an SDXL checkpoint with only one of its text encoders (expected both "
                       SD_CKPT_SDXL_TEXT_PREFIX "* and " SD_CKPT_SDXL_TEXT2_PREFIX "*; a refiner has only the second)", f->root);
    if (taesd && !unet)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: a TAESD file, not a Stable Diffusion checkpoint; pass it with --taesd",
                       f->root);
    if (!unet || (!sd1 && !sd2 && !sdxl))
        return sd_fail(SD_ERR_UNSUPPORTED,
                       "%s: not a recognised checkpoint: expected SD 1.x/2.x/SDXL keys " SD_CKPT_UNET_PREFIX "input_blocks.0.0.weight "
                       "and " SD_CKPT_SD1_TEXT_PREFIX "* (SD 1.x), " SD_CKPT_SD2_TEXT_PREFIX "* (SD 2.x) or "
                       SD_CKPT_SDXL_TEXT_PREFIX "* + " SD_CKPT_SDXL_TEXT2_PREFIX "* (SDXL); found %d tensors "
                       "starting with '%s'%s",
                       f->root, n, first_copy, unet ? " (UNet present, text encoder missing)" : "");
    f->arch = sdxl ? SD_ARCH_SDXL : sd2 ? SD_ARCH_SD2 : SD_ARCH_SD1;
    f->force_zeros_for_empty_prompt = sdxl; /* diffusers' from_single_file default */
    if (config_dir && *config_dir) {
        if (!sd_is_dir(config_dir)) return sd_fail(SD_ERR_NOT_FOUND, "%s: config folder does not exist", config_dir);
        SD_TRY(component_config(f->text_encoder_config, config_dir, "text_encoder"));
        if (sdxl) SD_TRY(component_config(f->text_encoder_2_config, config_dir, "text_encoder_2"));
        SD_TRY(component_config(f->unet_config, config_dir, "unet"));
        SD_TRY(component_config(f->vae_config, config_dir, "vae"));
        char sched[SD_PATH_MAX];
        if (component_config(sched, config_dir, "scheduler") == SD_OK)
            snprintf(f->scheduler_config, sizeof f->scheduler_config, "%s", sched);
    }
    return SD_OK;
}

sd_status sd_taesd_files_find(char *weights, char *config, const char *path) {
    weights[0] = config[0] = '\0';
    if (sd_is_dir(path)) {
        char cfg[SD_PATH_MAX];
        SD_TRY(sd_path_join(cfg, sizeof cfg, path, "config.json"));
        if (sd_is_file(cfg)) snprintf(config, SD_PATH_MAX, "%s", cfg);
        SD_TRY(pick_weights(weights, path, "diffusion_pytorch_model", NULL, "taesd"));
    } else if (sd_is_file(path)) {
        snprintf(weights, SD_PATH_MAX, "%s", path);
    } else {
        return sd_fail(SD_ERR_NOT_FOUND, "%s: TAESD path does not exist", path);
    }
    sd_safetensors *st = NULL;
    SD_TRY(sd_st_open(&st, weights));
    bool ok = sd_st_find(st, "encoder.layers.0.weight") && sd_st_find(st, "decoder.layers.0.weight");
    sd_st_close(st);
    if (!ok)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: not a TAESD (diffusers AutoencoderTiny) file: expected tensors "
                       "encoder.layers.0.weight and decoder.layers.0.weight", weights);
    return SD_OK;
}

sd_status sd_model_files_find(sd_model_files *files, const char *path, const char *tokenizer_dir,
                              const char *config_dir, const char *taesd_path, const char *variant, int need_tokenizer) {
    sd_model_files f;
    memset(&f, 0, sizeof f);
    if (!path || !*path) return sd_fail(SD_ERR_ARG, "no model path given");
    if (strlen(path) >= sizeof f.root) return sd_fail(SD_ERR_LIMIT, "model path too long");
    snprintf(f.root, sizeof f.root, "%s", path);
    if (sd_is_dir(path)) {
        char index[SD_PATH_MAX];
        SD_TRY(sd_path_join(index, sizeof index, path, "model_index.json"));
        if (!sd_is_file(index)) {
            char cfg[SD_PATH_MAX];
            SD_TRY(sd_path_join(cfg, sizeof cfg, path, "config.json"));
            if (sd_is_file(cfg))
                return sd_fail(SD_ERR_UNSUPPORTED, "%s: a single component folder (config.json, no model_index.json); "
                               "pass the pipeline folder above it, or use --taesd for a TAESD folder", path);
            return sd_fail(SD_ERR_NOT_FOUND, "%s: not a diffusers folder (no model_index.json)", path);
        }
        f.layout = SD_LAYOUT_DIFFUSERS;
        SD_TRY(find_diffusers(&f, variant));
    } else if (sd_is_file(path)) {
        if (!ends_with(path, ".safetensors"))
            return sd_fail(SD_ERR_UNSUPPORTED, "%s: only .safetensors checkpoints are supported (.ckpt/.bin pickles can "
                           "run code)", path);
        f.layout = SD_LAYOUT_SINGLE_FILE;
        SD_TRY(find_single_file(&f, config_dir));
    } else {
        return sd_fail(SD_ERR_NOT_FOUND, "%s: no such file or folder", path);
    }
    SD_TRY(find_tokenizer(&f, tokenizer_dir, config_dir, need_tokenizer));
    if (taesd_path && *taesd_path) SD_TRY_CTX(sd_taesd_files_find(f.taesd_weights, f.taesd_config, taesd_path), "--taesd");
    *files = f;
    return SD_OK;
}

sd_status sd_model_files_find_taesd_only(sd_model_files *files, const char *path) {
    sd_model_files f;
    memset(&f, 0, sizeof f);
    if (!path || !*path) return sd_fail(SD_ERR_ARG, "no TAESD path given");
    snprintf(f.root, sizeof f.root, "%s", path);
    f.layout = SD_LAYOUT_TAESD_ONLY;
    SD_TRY(sd_taesd_files_find(f.taesd_weights, f.taesd_config, path));
    *files = f;
    return SD_OK;
}
