/* model_api.c — the public sd_model_* functions: discovery, loading, tokenizing, text encoding
 * and `eval` of single components. The only place that ties the model files to the backend. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/model_internal.h"
#include "base/config.h"
#include "model/hf_cache.h"

sd_model_params sd_model_params_default(void) {
    sd_model_params p;
    memset(&p, 0, sizeof p);
    p.components = SD_COMPONENT_ALL;
    p.precision = SD_PRECISION_AUTO;
    p.backend = SD_BACKEND_TYPE_AUTO;
    return p;
}

const char *sd_version(void) { return SDSTREAM_VERSION; }
const char *sd_backends(void) {
#ifdef SD_HAVE_CUDA
    return "cpu cuda";
#else
    return "cpu";
#endif
}

/* One CLIP text encoder: its config from config_path, or inferred from the file's shapes. */
static sd_status load_clip(sd_model *m, sd_clip_text *text, const char *weights_path, const char *config_path,
                           const char *prefix, sd_clip_layout layout, bool sdxl_encoder_2, sd_lora_set *loras) {
    const bool sdxl = m->files.arch == SD_ARCH_SDXL;
    sd_clip_text_config cfg;
    sd_safetensors *st = NULL;
    SD_TRY(sd_st_open(&st, weights_path));
    sd_status status;
    if (config_path[0]) {
        sd_config json;
        status = sd_config_load(&json, config_path);
        if (status == SD_OK) {
            status = sd_clip_text_config_read_projection(&cfg, &json, sdxl_encoder_2);
            sd_config_free(&json);
        }
    } else if (sdxl) {
        status = sd_clip_text_config_infer_sdxl(&cfg, st, prefix, layout);
        if (status == SD_OK && sdxl_encoder_2 && cfg.projection_dim == 0)
            status = sd_fail(SD_ERR_NOT_FOUND, "%s: SDXL's second text encoder has no '%stext_projection'", weights_path, prefix);
    } else {
        status = sd_clip_text_config_infer(&cfg, st, prefix, layout);
    }
    cfg.weight_dtype = m->weight_dtype;
    cfg.lora = loras;
    if (status == SD_OK) status = sd_clip_text_load(text, &cfg, st, prefix, layout);
    sd_st_close(st);
    if (status == SD_OK) status = sd_weight_store_upload(&text->store, m->backend);
    return status;
}

static sd_status load_text_encoder(sd_model *m, sd_lora_set *loras) {
    const sd_model_files *f = &m->files;
    const bool single = f->layout == SD_LAYOUT_SINGLE_FILE;
    const char *weights_path = single ? f->checkpoint : f->text_encoder_weights;
    if (f->arch == SD_ARCH_SDXL) {
        /* LoRAs go to the first encoder only: kohya's lora_te_ names would match both (SDXL
         * LoRAs name the second lora_te2_, which lora.c refuses) */
        SD_TRY(load_clip(m, &m->text, weights_path, f->text_encoder_config, single ? SD_CKPT_SDXL_TEXT_PREFIX : "",
                         SD_CLIP_LAYOUT_TRANSFORMERS, false, loras));
        SD_TRY(load_clip(m, &m->text_2, single ? f->checkpoint : f->text_encoder_2_weights, f->text_encoder_2_config,
                         single ? SD_CKPT_SDXL_TEXT2_PREFIX : "",
                         single ? SD_CLIP_LAYOUT_OPENCLIP : SD_CLIP_LAYOUT_TRANSFORMERS, true, NULL));
        if (m->text_2.cfg.projection_dim < 1)
            return sd_fail(SD_ERR_FORMAT, "%s: SDXL's text_encoder_2 has no projection_dim", f->root);
        m->has_text = true;
        return SD_OK;
    }
    sd_clip_layout layout = SD_CLIP_LAYOUT_TRANSFORMERS;
    const char *prefix = "";
    if (single) {
        layout = f->arch == SD_ARCH_SD2 ? SD_CLIP_LAYOUT_OPENCLIP : SD_CLIP_LAYOUT_TRANSFORMERS;
        prefix = f->arch == SD_ARCH_SD2 ? SD_CKPT_SD2_TEXT_PREFIX : SD_CKPT_SD1_TEXT_PREFIX;
    }
    SD_TRY(load_clip(m, &m->text, weights_path, f->text_encoder_config, prefix, layout, false, loras));
    m->has_text = true;
    return SD_OK;
}

static sd_status load_unet(sd_model *m, sd_lora_set *loras) {
    const sd_model_files *f = &m->files;
    bool single = f->layout == SD_LAYOUT_SINGLE_FILE;
    sd_safetensors *st = NULL;
    SD_TRY(sd_st_open(&st, single ? f->checkpoint : f->unet_weights));
    sd_unet_config cfg;
    sd_status status;
    if (f->unet_config[0]) {
        sd_config json;
        status = sd_config_load(&json, f->unet_config);
        if (status == SD_OK) {
            status = sd_unet_config_read(&cfg, &json);
            sd_config_free(&json);
        }
    } else {
        status = sd_unet_config_infer(&cfg, st, f->arch != SD_ARCH_SD1);
    }
    cfg.weight_dtype = m->weight_dtype;
    cfg.conv_layout = m->backend; /* the UNet's convs read their weights pre-packed */
    cfg.lora = loras;
    if (status == SD_OK) status = sd_unet_load(&m->unet, &cfg, st, single ? SD_CKPT_UNET_PREFIX : "", single);
    sd_st_close(st);
    if (status == SD_OK) status = sd_weight_store_upload(&m->unet.store, m->backend);
    SD_TRY(status);
    m->has_unet = true;
    return SD_OK;
}

static sd_status load_vae(sd_model *m) {
    const sd_model_files *f = &m->files;
    bool single = f->layout == SD_LAYOUT_SINGLE_FILE;
    const char *prefix = single ? SD_CKPT_VAE_PREFIX : "";
    sd_safetensors *st = NULL;
    SD_TRY(sd_st_open(&st, single ? f->checkpoint : f->vae_weights));
    sd_vae_config cfg;
    sd_status status;
    if (f->vae_config[0]) {
        sd_config json;
        status = sd_config_load(&json, f->vae_config);
        if (status == SD_OK) {
            status = sd_vae_config_read(&cfg, &json);
            sd_config_free(&json);
        }
    } else {
        status = sd_vae_config_infer(&cfg, st, prefix, single);
        if (f->arch == SD_ARCH_SDXL) cfg.scaling_factor = 0.13025f; /* SDXL's VAE (sdxl-vae config.json) */
    }
    cfg.weight_dtype = m->weight_dtype;
    if (status == SD_OK) status = sd_vae_load(&m->vae, &cfg, st, prefix, single);
    sd_st_close(st);
    if (status == SD_OK) status = sd_weight_store_upload(&m->vae.store, m->backend);
    SD_TRY(status);
    m->has_vae = true;
    return SD_OK;
}

static sd_status load_taesd(sd_model *m) {
    const sd_model_files *f = &m->files;
    sd_taesd_config cfg;
    if (f->taesd_config[0]) {
        sd_config json;
        SD_TRY(sd_config_load(&json, f->taesd_config));
        sd_status status = sd_taesd_config_read(&cfg, &json);
        sd_config_free(&json);
        SD_TRY(status);
    } else {
        sd_taesd_config_default(&cfg);
    }
    sd_safetensors *st = NULL;
    SD_TRY(sd_st_open(&st, f->taesd_weights));
    cfg.weight_dtype = m->weight_dtype;
    sd_status status = sd_taesd_load(&m->taesd, &cfg, st);
    sd_st_close(st);
    if (status == SD_OK) status = sd_weight_store_upload(&m->taesd.store, m->backend);
    SD_TRY(status);
    m->has_taesd = true;
    return SD_OK;
}

void sd_model_free(sd_model *model) {
    if (!model) return;
    sd_unet_free(&model->unet);
    sd_vae_free(&model->vae);
    sd_taesd_free(&model->taesd);
    sd_tokenizer_free(model->tokenizer);
    sd_tokenizer_free(model->tokenizer_2);
    sd_clip_text_free(&model->text);
    sd_clip_text_free(&model->text_2);
    sd_arena_free(&model->arena);
    sd_backend_free(model->backend);
    free(model);
}

typedef struct sd_resolved_paths {
    char model[SD_PATH_MAX], taesd[SD_PATH_MAX], lora[SD_MAX_LORAS][SD_PATH_MAX];
    sd_lora loras[SD_MAX_LORAS];
} sd_resolved_paths;

static sd_status resolve_ids(sd_model_params *p, sd_resolved_paths *r) {
    SD_TRY(sd_hf_resolve(r->model, sizeof r->model, p->path, "model"));
    p->path = r->model;
    if (p->taesd_path && *p->taesd_path) {
        SD_TRY(sd_hf_resolve(r->taesd, sizeof r->taesd, p->taesd_path, "taesd"));
        p->taesd_path = r->taesd;
    }
    for (int i = 0; i < p->n_loras; i++) {
        r->loras[i] = p->loras[i];
        if (!p->loras[i].path || !*p->loras[i].path) continue; /* the LoRA loader names the problem */
        SD_TRY(sd_hf_resolve_file(r->lora[i], sizeof r->lora[i], p->loras[i].path, "lora"));
        r->loras[i].path = r->lora[i];
    }
    if (p->n_loras > 0) p->loras = r->loras;
    return SD_OK;
}

static sd_status load_resolved(sd_model **out, const sd_model_params *params, unsigned components);

sd_status sd_model_load(sd_model **out, const sd_model_params *params) {
    SD_CHECK_ARG(out != NULL, "sd_model_load: out is NULL");
    SD_CHECK_ARG(params != NULL, "sd_model_load: params is NULL");
    SD_CHECK_ARG(params->path != NULL && params->path[0] != '\0', "sd_model_load: params.path is empty");
    unsigned components = params->components ? params->components : SD_COMPONENT_ALL;
    SD_CHECK_ARG(params->n_loras >= 0 && params->n_loras <= SD_MAX_LORAS && (params->n_loras == 0 || params->loras),
                 "sd_model_load: n_loras %d (0 to %d, with loras set)", params->n_loras, SD_MAX_LORAS);
    SD_CHECK_ARG(params->precision >= SD_PRECISION_FP32 && params->precision <= SD_PRECISION_AUTO,
                 "sd_model_load: unknown precision %d (SD_PRECISION_FP32, _BF16, _FP16 or _AUTO)", (int)params->precision);
    SD_CHECK_ARG(params->backend >= SD_BACKEND_TYPE_AUTO && params->backend <= SD_BACKEND_TYPE_CUDA,
                 "sd_model_load: unknown backend %d (SD_BACKEND_TYPE_AUTO, _CPU or _CUDA)", (int)params->backend);
    /* Hugging Face ids ("org/name[@rev][/file]") become their cached snapshot's paths; a local
     * path of the same spelling wins */
    sd_model_params resolved = *params;
    sd_resolved_paths *paths = calloc(1, sizeof *paths);
    if (!paths) return sd_fail(SD_ERR_NOMEM, "sd_model_load: out of memory");
    sd_status rs = resolve_ids(&resolved, paths);
    if (rs != SD_OK) {
        free(paths);
        return rs;
    }
    rs = load_resolved(out, &resolved, components);
    free(paths);
    return rs;
}

sd_backend_type sd_backend_resolve(sd_backend_type requested) {
    if (requested != SD_BACKEND_TYPE_AUTO) return requested;
    const char *env = getenv("SDSTREAM_BACKEND");
    if (env && *env) return strcmp(env, "cuda") == 0 ? SD_BACKEND_TYPE_CUDA : SD_BACKEND_TYPE_CPU;
    return sd_backend_available(SD_BACKEND_CUDA, NULL, 0) ? SD_BACKEND_TYPE_CUDA : SD_BACKEND_TYPE_CPU;
}

sd_status sd_backend_probe(sd_backend_type type) {
    sd_backend_kind kind = sd_backend_resolve(type) == SD_BACKEND_TYPE_CUDA ? SD_BACKEND_CUDA : SD_BACKEND_CPU;
    char reason[512];
    if (sd_backend_available(kind, reason, sizeof reason)) return SD_OK;
    if (!sd_backend_compiled(kind)) return sd_fail(SD_ERR_UNSUPPORTED, "%s", reason);
    return sd_fail(SD_ERR_BACKEND, "%s backend: %s", sd_backend_kind_name(kind), reason);
}

/* sd_model_params.backend and .precision -> the backend kind and its activation dtype. */
static sd_status resolve_backend(const sd_model_params *params, sd_backend_kind *kind, sd_dtype *act) {
    sd_backend_type type = params->backend;
    const char *env = getenv("SDSTREAM_BACKEND");
    if (type == SD_BACKEND_TYPE_AUTO && env && *env) {
        if (strcmp(env, "cpu") == 0) type = SD_BACKEND_TYPE_CPU;
        else if (strcmp(env, "cuda") == 0) type = SD_BACKEND_TYPE_CUDA;
        else return sd_fail(SD_ERR_ARG, "SDSTREAM_BACKEND='%.40s': expected cpu or cuda", env);
    }
    if (type == SD_BACKEND_TYPE_AUTO) type = sd_backend_resolve(type);
    *kind = type == SD_BACKEND_TYPE_CUDA ? SD_BACKEND_CUDA : SD_BACKEND_CPU;
    switch (params->precision) {
    case SD_PRECISION_FP32: *act = SD_DTYPE_F32; break;
    case SD_PRECISION_BF16: *act = *kind == SD_BACKEND_CPU ? SD_DTYPE_F32 : SD_DTYPE_BF16; break;
    case SD_PRECISION_FP16:
        if (*kind == SD_BACKEND_CPU)
            return sd_fail(SD_ERR_UNSUPPORTED, "precision fp16: the cpu backend computes in fp32 or bf16 (fp16 files "
                           "keep their 16-bit weights in memory either way); fp16 math is the cuda backend's");
        *act = SD_DTYPE_F16;
        break;
    default: *act = *kind == SD_BACKEND_CPU ? SD_DTYPE_F32 : SD_DTYPE_F16; break;
    }
    return SD_OK;
}

static sd_status load_resolved(sd_model **out, const sd_model_params *params, unsigned components) {
    sd_model *m = calloc(1, sizeof *m);
    if (!m) return sd_fail(SD_ERR_NOMEM, "sd_model_load: out of memory");
    m->components = components;
    m->weight_dtype = params->precision == SD_PRECISION_BF16 ? SD_DTYPE_BF16 : SD_DTYPE_F32;
    sd_arena_init(&m->arena);
    sd_status resolved = resolve_backend(params, &m->backend_kind, &m->act_dtype);
    if (resolved != SD_OK) {
        free(m);
        return resolved;
    }
    /* TAESD alone: --model names the TAESD folder or file itself */
    bool taesd_only = components == SD_COMPONENT_TAESD && !(params->taesd_path && *params->taesd_path);
    sd_status st = taesd_only ? sd_model_files_find_taesd_only(&m->files, params->path)
                              : sd_model_files_find(&m->files, params->path, params->tokenizer_dir, params->config_dir,
                                                    params->taesd_path, params->variant,
                                                    components & (SD_COMPONENT_TEXT_ENCODER | SD_COMPONENT_TOKENIZER));
    if (st == SD_OK) st = sd_model_backend_create(m, params->n_threads, &m->backend);
    if (st == SD_OK) { /* eval's tensors: the backend's memory */
        sd_allocator alloc = sd_backend_allocator(m->backend);
        sd_arena_init_with(&m->arena, &alloc);
    }
    /* the parts in loading order, for the progress callback */
    bool tok = components & (SD_COMPONENT_TEXT_ENCODER | SD_COMPONENT_TOKENIZER);
    bool text = components & SD_COMPONENT_TEXT_ENCODER, unet = components & SD_COMPONENT_UNET;
    bool vae = components & SD_COMPONENT_VAE, taesd = (components & SD_COMPONENT_TAESD) && m->files.taesd_weights[0];
    int count = tok + text + unet + vae + taesd, index = 0;
#define PROGRESS(part) \
    if (params->progress) params->progress(params->progress_user, part, ++index, count)
    if (st == SD_OK && tok) {
        PROGRESS("tokenizer");
        st = sd_tokenizer_load(&m->tokenizer, m->files.tokenizer_dir);
        if (st == SD_OK && m->files.tokenizer_2_dir[0]) st = sd_tokenizer_load(&m->tokenizer_2, m->files.tokenizer_2_dir);
    }
    /* LoRAs are fused into the text encoder and UNet weights as those load */
    sd_lora_set *loras = NULL;
    if (st == SD_OK && params->n_loras > 0)
        st = sd_lora_set_open(&loras, params->loras, params->n_loras, params->lora_allow_unused != 0,
                              m->backend->n_threads);
    if (st == SD_OK && text) {
        PROGRESS("text_encoder");
        st = load_text_encoder(m, loras);
    }
    if (st == SD_OK && unet) {
        PROGRESS("unet");
        st = load_unet(m, loras);
    }
    if (st == SD_OK && loras) {
        const bool loaded[SD_LORA_N_TARGETS] = {[SD_LORA_UNET] = m->has_unet, [SD_LORA_TEXT_ENCODER] = m->has_text};
        st = sd_lora_set_finish(loras, loaded, m->lora_reports);
        m->n_loras = params->n_loras;
    }
    sd_lora_set_close(loras); /* the files' maps: the fused weights are copies */
    if (st == SD_OK && vae) {
        PROGRESS("vae");
        st = load_vae(m);
    }
    if (st == SD_OK && taesd) {
        PROGRESS("taesd");
        st = load_taesd(m);
    }
#undef PROGRESS
    if (st == SD_OK && params->progress) params->progress(params->progress_user, NULL, count, count);
    if (st != SD_OK) {
        sd_model_free(m);
        return st;
    }
    char fused[32] = "";
    if (m->n_loras) snprintf(fused, sizeof fused, ", %d LoRA%s fused", m->n_loras, m->n_loras > 1 ? "s" : "");
    snprintf(m->description, sizeof m->description, "%s %s (%.400s)%s%s%s%s%s%s",
             taesd_only ? "TAESD" : sd_arch_name(m->files.arch),
             sd_layout_name(m->files.layout), m->files.root, m->has_text ? ", text encoder" : (m->tokenizer ? ", tokenizer" : ""),
             m->has_unet ? ", UNet" : "", m->has_vae ? ", VAE" : "", m->has_taesd ? ", TAESD" : "",
             m->weight_dtype == SD_DTYPE_BF16 ? ", bf16 weights" : "", fused);
    *out = m;
    return SD_OK;
}

sd_status sd_model_backend_create(const sd_model *model, int n_threads, sd_backend **out) {
    SD_TRY(sd_backend_create_dtype(out, model->backend_kind, n_threads, model->act_dtype));
    if (model->backend_kind != SD_BACKEND_CPU) return SD_OK;
    /* bf16 activations too (vdpbf16ps) only on request: measured on a Sapphire Rapids host it was
     * slower than float32 math and its golden errors reached 1.2e-2 (bench/RESULTS.md) */
    const char *env = getenv("SDSTREAM_BF16_MATH");
    (*out)->bf16_math = model->weight_dtype == SD_DTYPE_BF16 && env && strcmp(env, "1") == 0;
    return SD_OK;
}

int sd_model_lora_count(const sd_model *model) { return model ? model->n_loras : 0; }

sd_status sd_model_lora_report(const sd_model *model, int index, sd_lora_report *out) {
    SD_CHECK_ARG(model != NULL && out != NULL, "sd_model_lora_report: model or out is NULL");
    SD_CHECK_ARG(index >= 0 && index < model->n_loras, "sd_model_lora_report: index %d (the model has %d LoRAs)", index,
                 model->n_loras);
    *out = model->lora_reports[index];
    return SD_OK;
}

const char *sd_model_describe(const sd_model *model) { return model ? model->description : ""; }

sd_status sd_model_set_threads(sd_model *model, int n_threads) {
    SD_CHECK_ARG(model != NULL, "sd_model_set_threads: model is NULL");
    /* a device backend owns the weights' memory and has no CPU threads to change */
    if (model->backend->device_memory) return SD_OK;
    /* the weights do not belong to the CPU backend: a new one with other threads can take over */
    sd_backend *be = NULL;
    SD_TRY(sd_model_backend_create(model, n_threads, &be));
    be->flops = model->backend->flops;
    sd_backend_free(model->backend);
    model->backend = be;
    return SD_OK;
}

double sd_model_gflop(const sd_model *model) { return model ? model->backend->flops * 1e-9 : 0.0; }

const char *sd_model_backend_name(const sd_model *model) {
    return model ? sd_backend_kind_name(model->backend_kind) : "none";
}

const char *sd_model_compute_dtype(const sd_model *model) {
    if (!model) return "none";
    return model->act_dtype == SD_DTYPE_F16 ? "fp16" : model->act_dtype == SD_DTYPE_BF16 ? "bf16" : "fp32";
}

sd_status sd_model_require(const sd_model *model, unsigned component, const char *fn) {
    SD_CHECK_ARG(model != NULL, "%s: model is NULL", fn);
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{SD_COMPONENT_TEXT_ENCODER, "text encoder"}, {SD_COMPONENT_UNET, "UNet"}, {SD_COMPONENT_VAE, "VAE"},
                 {SD_COMPONENT_TAESD, "TAESD"}, {SD_COMPONENT_TOKENIZER, "tokenizer"}};
    bool loaded = (component == SD_COMPONENT_TEXT_ENCODER && model->has_text) ||
                  (component == SD_COMPONENT_UNET && model->has_unet) ||
                  (component == SD_COMPONENT_VAE && model->has_vae) ||
                  (component == SD_COMPONENT_TAESD && model->has_taesd) ||
                  (component == SD_COMPONENT_TOKENIZER && model->tokenizer);
    if (loaded) return SD_OK;
    const char *name = "component";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].bit == component) name = names[i].name;
    return sd_fail(SD_ERR_STATE, "%s: the %s was not loaded (not requested in sd_model_params.components, or absent)",
                   fn, name);
}

static sd_status need_text(const sd_model *model, const char *fn) {
    return sd_model_require(model, SD_COMPONENT_TEXT_ENCODER, fn);
}

sd_status sd_model_count_tokens(sd_model *model, const char *prompt, int *n_tokens) {
    SD_CHECK_ARG(model && prompt && n_tokens, "sd_model_count_tokens: model, prompt and n_tokens are required");
    if (!model->tokenizer)
        return sd_fail(SD_ERR_STATE, "sd_model_count_tokens: the tokenizer was not loaded (request SD_COMPONENT_TOKENIZER)");
    int32_t ids[SD_TOKENS];
    return sd_tokenizer_encode(model->tokenizer, prompt, ids, n_tokens);
}

const char *sd_model_token_text(const sd_model *model, int32_t id) {
    const char *text = model && model->tokenizer ? sd_tokenizer_token(model->tokenizer, id) : NULL;
    return text ? text : "";
}

sd_status sd_model_tokenize(sd_model *model, const char *prompt, int32_t ids[SD_TOKENS]) {
    SD_CHECK_ARG(model != NULL, "sd_model_tokenize: model is NULL");
    if (!model->tokenizer)
        return sd_fail(SD_ERR_STATE, "sd_model_tokenize: the tokenizer was not loaded (request SD_COMPONENT_TOKENIZER)");
    SD_CHECK_ARG(prompt != NULL && ids != NULL, "sd_model_tokenize: prompt or ids is NULL");
    return sd_tokenizer_encode(model->tokenizer, prompt, ids, NULL);
}

int sd_model_text_hidden_size(const sd_model *model) {
    if (!model || !model->has_text) return 0;
    return model->text.cfg.hidden_size + (model->files.arch == SD_ARCH_SDXL ? model->text_2.cfg.hidden_size : 0);
}

int sd_model_text_pooled_size(const sd_model *model) {
    return (model && model->has_text && model->files.arch == SD_ARCH_SDXL) ? model->text_2.cfg.projection_dim : 0;
}

/* SDXL (diffusers StableDiffusionXLPipeline.encode_prompt): each encoder's penultimate hidden
 * state [77, C1] / [77, C2] side by side -> [77, C1 + C2]; pooled = text_encoder_2's text_embeds. */
static sd_status encode_sdxl(sd_model *m, const char *prompt, float *embeds, float *pooled) {
    const int64_t c1 = m->text.cfg.hidden_size, c2 = m->text_2.cfg.hidden_size;
    int32_t ids1[SD_TOKENS], ids2[SD_TOKENS];
    SD_TRY(sd_tokenizer_encode(m->tokenizer, prompt, ids1, NULL));
    SD_TRY(sd_tokenizer_encode(m->tokenizer_2, prompt, ids2, NULL));
    float *h1 = malloc((size_t)(SD_TOKENS * (c1 + c2)) * sizeof *h1), *h2 = h1 ? h1 + SD_TOKENS * c1 : NULL;
    if (!h1) return sd_fail(SD_ERR_NOMEM, "encode_prompt: out of memory");
    sd_clip_text_outputs o1 = {.penultimate = h1}, o2 = {.penultimate = h2, .text_embeds = pooled};
    sd_status st = sd_arena_reset(&m->arena);
    if (st == SD_OK) st = sd_clip_text_forward_outputs(&m->text, m->backend, &m->arena, ids1, 1, &o1);
    if (st == SD_OK) st = sd_clip_text_forward_outputs(&m->text_2, m->backend, &m->arena, ids2, 1, &o2);
    for (int64_t t = 0; st == SD_OK && t < SD_TOKENS; t++) {
        memcpy(embeds + t * (c1 + c2), h1 + t * c1, (size_t)c1 * sizeof *embeds);
        memcpy(embeds + t * (c1 + c2) + c1, h2 + t * c2, (size_t)c2 * sizeof *embeds);
    }
    free(h1);
    return st;
}

sd_status sd_model_encode_text(sd_model *model, const char *prompt, float *embeds, float *pooled) {
    if (model->files.arch == SD_ARCH_SDXL) {
        if (pooled) return encode_sdxl(model, prompt, embeds, pooled);
        float *scratch = malloc((size_t)model->text_2.cfg.projection_dim * sizeof *scratch);
        if (!scratch) return sd_fail(SD_ERR_NOMEM, "encode_prompt: out of memory");
        sd_status st = encode_sdxl(model, prompt, embeds, scratch);
        free(scratch);
        return st;
    }
    int32_t ids[SD_TOKENS];
    SD_TRY(sd_tokenizer_encode(model->tokenizer, prompt, ids, NULL));
    SD_TRY(sd_arena_reset(&model->arena));
    return sd_clip_text_forward(&model->text, model->backend, &model->arena, ids, 1, embeds);
}

sd_status sd_model_encode_prompt(sd_model *model, const char *prompt, float *out, size_t out_len) {
    SD_TRY(need_text(model, "sd_model_encode_prompt"));
    SD_CHECK_ARG(prompt != NULL && out != NULL, "sd_model_encode_prompt: prompt or out is NULL");
    size_t need = (size_t)SD_TOKENS * (size_t)sd_model_text_hidden_size(model);
    SD_CHECK_ARG(out_len >= need, "sd_model_encode_prompt: out holds %zu floats, needs %zu", out_len, need);
    return sd_model_encode_text(model, prompt, out, NULL);
}

sd_status sd_model_encode_prompt_pooled(sd_model *model, const char *prompt, float *out, size_t out_len) {
    SD_TRY(need_text(model, "sd_model_encode_prompt_pooled"));
    SD_CHECK_ARG(prompt != NULL && out != NULL, "sd_model_encode_prompt_pooled: prompt or out is NULL");
    if (model->files.arch != SD_ARCH_SDXL)
        return sd_fail(SD_ERR_STATE, "sd_model_encode_prompt_pooled: %s models have no pooled prompt embedding (SDXL only)",
                       sd_arch_name(model->files.arch));
    size_t need = (size_t)model->text_2.cfg.projection_dim;
    SD_CHECK_ARG(out_len >= need, "sd_model_encode_prompt_pooled: out holds %zu floats, needs %zu", out_len, need);
    float *embeds = malloc((size_t)SD_TOKENS * (size_t)sd_model_text_hidden_size(model) * sizeof *embeds);
    if (!embeds) return sd_fail(SD_ERR_NOMEM, "sd_model_encode_prompt_pooled: out of memory");
    sd_status st = sd_model_encode_text(model, prompt, embeds, out);
    free(embeds);
    return st;
}
