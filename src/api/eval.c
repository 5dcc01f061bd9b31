/* eval.c — sd_model_eval_file: one component on the named tensors of a safetensors file, outputs
 * written to another. Tensor names are the golden files' (shared/reference/README.md), so
 * `sdstream eval` on a golden input reproduces its output tensors. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/model_internal.h"
#include "base/safetensors.h"

/* Bounds eval inputs so a hostile file cannot ask for unbounded work. */
enum { SD_EVAL_MAX_BATCH = 64, SD_EVAL_MAX_SIDE = 4096 };

static const char *const g_meta_keys[] = {"component", "sdstream"};

/* Reads a float tensor of rank ndim into a new arena tensor (backend memory). dims_max bounds each
 * dimension after the first (batch: SD_EVAL_MAX_BATCH). want[i] > 0 pins dimension i. */
static sd_status read_input(sd_model *m, const sd_safetensors *in, const char *name, int ndim, const int64_t *want,
                            sd_tensor *out) {
    const sd_st_tensor *t = sd_st_find(in, name);
    if (!t) return sd_fail(SD_ERR_NOT_FOUND, "%s: tensor '%s' not found", in->path, name);
    char got[128];
    sd_st_shape_str(got, sizeof got, t->ndim, t->shape);
    if (!sd_dtype_is_float(t->dtype) || t->ndim != ndim)
        return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': expected a %d-D float tensor, found %s %s", in->path, name, ndim,
                       sd_dtype_name(t->dtype), got);
    for (int i = 0; i < ndim; i++) {
        int64_t limit = i == 0 ? SD_EVAL_MAX_BATCH : SD_EVAL_MAX_SIDE;
        if (t->shape[i] < 1 || t->shape[i] > limit || (want[i] > 0 && t->shape[i] != want[i]))
            return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': dimension %d is %lld (expected %s%lld), shape %s", in->path, name,
                           i, (long long)t->shape[i], want[i] > 0 ? "" : "1..", (long long)(want[i] > 0 ? want[i] : limit), got);
    }
    float *host = malloc((size_t)t->numel * sizeof *host);
    if (!host) return sd_fail(SD_ERR_NOMEM, "%s: out of memory reading '%s'", in->path, name);
    sd_convert_to_f32(host, sd_st_data(in, t), t->dtype, (size_t)t->numel);
    *out = sd_backend_tensor(m->backend, &m->arena, ndim, t->shape);
    sd_backend_upload(m->backend, out, host);
    free(host);
    if (!out->data) return m->arena.status;
    return sd_backend_status(m->backend);
}

/* Downloads the outputs and writes them with metadata naming the component. */
static sd_status write_outputs(sd_model *m, const char *path, const char *component, const char *const *names,
                               const sd_tensor *tensors, int n) {
    sd_st_entry entries[4];
    float *host[4] = {0};
    sd_status st = SD_OK;
    for (int i = 0; i < n && st == SD_OK; i++) {
        host[i] = malloc((size_t)sd_tensor_numel(&tensors[i]) * sizeof(float));
        if (!host[i]) st = sd_fail(SD_ERR_NOMEM, "eval: out of memory");
        else sd_backend_download(m->backend, host[i], &tensors[i]);
        entries[i] = (sd_st_entry){names[i], SD_DTYPE_F32, tensors[i].ndim, {0}, host[i]};
        for (int d = 0; d < tensors[i].ndim; d++) entries[i].shape[d] = tensors[i].shape[d];
    }
    const char *vals[] = {component, SDSTREAM_VERSION};
    if (st == SD_OK) st = sd_st_write(path, entries, n, g_meta_keys, vals, 2);
    for (int i = 0; i < n; i++) free(host[i]);
    return st;
}

/* input_ids I64/I32 [batch, 77] within text's vocabulary -> *ids (malloc'd), *batch. */
static sd_status read_ids(const sd_safetensors *in, const sd_clip_text *text, int32_t **ids, int *batch) {
    const sd_st_tensor *t = sd_st_find(in, "input_ids");
    if (!t) return sd_fail(SD_ERR_NOT_FOUND, "%s: tensor 'input_ids' not found (expected I64 or I32 [batch, 77])", in->path);
    if ((t->dtype != SD_DTYPE_I64 && t->dtype != SD_DTYPE_I32) || t->ndim != 2 || t->shape[1] != SD_TOKENS ||
        t->shape[0] < 1 || t->shape[0] > SD_EVAL_MAX_BATCH) {
        char s[128];
        sd_st_shape_str(s, sizeof s, t->ndim, t->shape);
        return sd_fail(SD_ERR_FORMAT, "%s: tensor 'input_ids': expected I64 or I32 [1..%d, 77], found %s %s", in->path,
                       SD_EVAL_MAX_BATCH, sd_dtype_name(t->dtype), s);
    }
    *batch = (int)t->shape[0];
    *ids = malloc((size_t)t->numel * sizeof **ids);
    if (!*ids) return sd_fail(SD_ERR_NOMEM, "eval: out of memory");
    const uint8_t *src = sd_st_data(in, t);
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t v;
        if (t->dtype == SD_DTYPE_I64) memcpy(&v, src + 8 * i, 8);
        else {
            int32_t v32;
            memcpy(&v32, src + 4 * i, 4);
            v = v32;
        }
        if (v < 0 || v >= text->cfg.vocab_size) {
            free(*ids);
            *ids = NULL;
            return sd_fail(SD_ERR_FORMAT, "%s: tensor 'input_ids'[%" PRId64 "] = %" PRId64 " is outside the vocabulary (0..%d)",
                           in->path, i, v, text->cfg.vocab_size - 1);
        }
        (*ids)[i] = (int32_t)v;
    }
    return SD_OK;
}

/* One text encoder on input_ids: last_hidden_state; for SDXL's encoders also the penultimate
 * hidden state (what SDXL conditions on) and, with a projection, text_embeds. */
static sd_status eval_clip(sd_model *m, sd_clip_text *text, const char *component, const sd_safetensors *in,
                           const char *output_path) {
    int batch = 0;
    int32_t *ids = NULL;
    SD_TRY(read_ids(in, text, &ids, &batch));
    const bool sdxl = m->files.arch == SD_ARCH_SDXL, pooled = sdxl && text->cfg.projection_dim > 0;
    const int64_t hidden = text->cfg.hidden_size, rows = (int64_t)batch * SD_TOKENS * hidden;
    float *last = malloc((size_t)rows * sizeof *last);
    float *pen = sdxl ? malloc((size_t)rows * sizeof *pen) : NULL;
    float *emb = pooled ? malloc((size_t)batch * (size_t)text->cfg.projection_dim * sizeof *emb) : NULL;
    sd_status st = (last && (!sdxl || pen) && (!pooled || emb)) ? SD_OK : sd_fail(SD_ERR_NOMEM, "eval: out of memory");
    const sd_clip_text_outputs o = {.last_hidden_state = last, .penultimate = pen, .text_embeds = emb};
    if (st == SD_OK) st = sd_clip_text_forward_outputs(text, m->backend, &m->arena, ids, batch, &o);
    if (st == SD_OK) {
        sd_st_entry e[3] = {{"last_hidden_state", SD_DTYPE_F32, 3, {batch, SD_TOKENS, hidden}, last},
                            {"penultimate_hidden_state", SD_DTYPE_F32, 3, {batch, SD_TOKENS, hidden}, pen},
                            {"text_embeds", SD_DTYPE_F32, 2, {batch, text->cfg.projection_dim}, emb}};
        const char *vals[] = {component, SDSTREAM_VERSION};
        st = sd_st_write(output_path, e, sdxl ? (pooled ? 3 : 2) : 1, g_meta_keys, vals, 2);
    }
    free(ids);
    free(last);
    free(pen);
    free(emb);
    return st;
}

static sd_status eval_text_encoder(sd_model *m, const sd_safetensors *in, const char *output_path) {
    SD_TRY(sd_model_require(m, SD_COMPONENT_TEXT_ENCODER, "eval text_encoder"));
    return eval_clip(m, &m->text, "text_encoder", in, output_path);
}

static sd_status eval_text_encoder_2(sd_model *m, const sd_safetensors *in, const char *output_path) {
    SD_TRY(sd_model_require(m, SD_COMPONENT_TEXT_ENCODER, "eval text_encoder_2"));
    if (m->files.arch != SD_ARCH_SDXL)
        return sd_fail(SD_ERR_STATE, "eval text_encoder_2: %s models have one text encoder (text_encoder_2 is SDXL's)",
                       sd_arch_name(m->files.arch));
    return eval_clip(m, &m->text_2, "text_encoder_2", in, output_path);
}

/* timestep: I64/I32/F32 [B] (or a single value for the whole batch). */
static sd_status read_timesteps(const sd_safetensors *in, int64_t batch, float *out) {
    const sd_st_tensor *t = sd_st_find(in, "timestep");
    if (!t) return sd_fail(SD_ERR_NOT_FOUND, "%s: tensor 'timestep' not found (expected [batch] integers)", in->path);
    if (t->numel != batch && t->numel != 1)
        return sd_fail(SD_ERR_FORMAT, "%s: tensor 'timestep' has %lld values, expected 1 or %lld", in->path,
                       (long long)t->numel, (long long)batch);
    const uint8_t *p = sd_st_data(in, t);
    for (int64_t i = 0; i < batch; i++) {
        int64_t k = t->numel == 1 ? 0 : i;
        double v;
        if (t->dtype == SD_DTYPE_I64) {
            int64_t x;
            memcpy(&x, p + 8 * k, 8);
            v = (double)x;
        } else if (t->dtype == SD_DTYPE_I32) {
            int32_t x;
            memcpy(&x, p + 4 * k, 4);
            v = x;
        } else if (sd_dtype_is_float(t->dtype)) {
            float x;
            sd_convert_to_f32(&x, p + k * sd_dtype_size(t->dtype), t->dtype, 1);
            v = x;
        } else {
            return sd_fail(SD_ERR_FORMAT, "%s: tensor 'timestep' has dtype %s", in->path, sd_dtype_name(t->dtype));
        }
        if (!(v >= 0.0 && v <= 100000.0))
            return sd_fail(SD_ERR_FORMAT, "%s: tensor 'timestep'[%lld] = %g is outside 0..100000", in->path, (long long)i, v);
        out[i] = (float)v;
    }
    return SD_OK;
}

/* A float tensor [batch, width] into new host memory (SDXL's text_embeds / time_ids). */
static sd_status read_host(const sd_safetensors *in, const char *name, int64_t batch, int64_t width, float **out) {
    const sd_st_tensor *t = sd_st_find(in, name);
    if (!t)
        return sd_fail(SD_ERR_NOT_FOUND, "%s: tensor '%s' not found (an SDXL UNet needs it: [%lld, %lld])", in->path, name,
                       (long long)batch, (long long)width);
    if (!sd_dtype_is_float(t->dtype) || t->ndim != 2 || t->shape[0] != batch || t->shape[1] != width) {
        char got[128];
        sd_st_shape_str(got, sizeof got, t->ndim, t->shape);
        return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': expected a float [%lld, %lld], found %s %s", in->path, name,
                       (long long)batch, (long long)width, sd_dtype_name(t->dtype), got);
    }
    *out = malloc((size_t)(batch * width) * sizeof **out);
    if (!*out) return sd_fail(SD_ERR_NOMEM, "eval: out of memory reading '%s'", name);
    sd_convert_to_f32(*out, sd_st_data(in, t), t->dtype, (size_t)t->numel);
    return SD_OK;
}

static sd_status eval_unet(sd_model *m, const sd_safetensors *in, const char *output_path) {
    SD_TRY(sd_model_require(m, SD_COMPONENT_UNET, "eval unet"));
    const sd_unet_config *cfg = &m->unet.cfg;
    sd_tensor sample, context;
    SD_TRY(read_input(m, in, "sample", 4, (int64_t[]){0, cfg->in_channels, 0, 0}, &sample));
    int64_t batch = sample.shape[0];
    SD_TRY(read_input(m, in, "encoder_hidden_states", 3, (int64_t[]){batch, 0, cfg->cross_attention_dim}, &context));
    float timesteps[SD_EVAL_MAX_BATCH];
    SD_TRY(read_timesteps(in, batch, timesteps));
    sd_tensor noise = sd_backend_tensor(m->backend, &m->arena, 4,
                                      (int64_t[]){batch, cfg->out_channels, sample.shape[2], sample.shape[3]});
    SD_TRY(m->arena.status);
    float *text_embeds = NULL, *time_ids = NULL; /* SDXL's added conditioning, per row */
    sd_status st = SD_OK;
    if (cfg->text_time) {
        st = read_host(in, "text_embeds", batch, cfg->text_embeds_dim, &text_embeds);
        if (st == SD_OK) st = read_host(in, "time_ids", batch, SD_UNET_TIME_IDS, &time_ids);
    }
    const sd_unet_added_cond added = {text_embeds, time_ids};
    if (st == SD_OK) st = sd_unet_forward_added(&m->unet, m->backend, &m->arena, &noise, &sample, timesteps, &context, &added);
    free(text_embeds);
    free(time_ids);
    SD_TRY(st);
    const char *names[] = {"noise_pred"};
    return write_outputs(m, output_path, "unet", names, &noise, 1);
}

static sd_status eval_vae_encode(sd_model *m, const sd_safetensors *in, const char *output_path) {
    SD_TRY(sd_model_require(m, SD_COMPONENT_VAE, "eval vae_encode"));
    sd_tensor image;
    SD_TRY(read_input(m, in, "image", 4, (int64_t[]){0, m->vae.cfg.in_channels, 0, 0}, &image));
    int64_t shape[4] = {image.shape[0], m->vae.cfg.latent_channels, image.shape[2] / 8, image.shape[3] / 8};
    sd_tensor out[2] = {sd_backend_tensor(m->backend, &m->arena, 4, shape), sd_backend_tensor(m->backend, &m->arena, 4, shape)};
    SD_TRY(m->arena.status);
    SD_TRY(sd_vae_encode(&m->vae, m->backend, &m->arena, &out[0], &out[1], &image));
    const char *names[] = {"latent_mean", "latent_std"};
    return write_outputs(m, output_path, "vae_encode", names, out, 2);
}

static sd_status eval_vae_decode(sd_model *m, const sd_safetensors *in, const char *output_path) {
    SD_TRY(sd_model_require(m, SD_COMPONENT_VAE, "eval vae_decode"));
    sd_tensor latent;
    SD_TRY(read_input(m, in, "latent", 4, (int64_t[]){0, m->vae.cfg.latent_channels, 0, 0}, &latent));
    sd_tensor image = sd_backend_tensor(m->backend, &m->arena, 4,
                                      (int64_t[]){latent.shape[0], m->vae.cfg.out_channels, latent.shape[2] * 8, latent.shape[3] * 8});
    SD_TRY(m->arena.status);
    SD_TRY(sd_vae_decode(&m->vae, m->backend, &m->arena, &image, &latent));
    const char *names[] = {"image"};
    return write_outputs(m, output_path, "vae_decode", names, &image, 1);
}

static sd_status eval_taesd_encode(sd_model *m, const sd_safetensors *in, const char *output_path) {
    SD_TRY(sd_model_require(m, SD_COMPONENT_TAESD, "eval taesd_encode"));
    sd_tensor image;
    SD_TRY(read_input(m, in, "image", 4, (int64_t[]){0, m->taesd.cfg.in_channels, 0, 0}, &image));
    sd_tensor latents = sd_backend_tensor(m->backend, &m->arena, 4,
                                        (int64_t[]){image.shape[0], m->taesd.cfg.latent_channels, image.shape[2] / 8, image.shape[3] / 8});
    SD_TRY(m->arena.status);
    SD_TRY(sd_taesd_encode(&m->taesd, m->backend, &m->arena, &latents, &image));
    const char *names[] = {"latents"};
    return write_outputs(m, output_path, "taesd_encode", names, &latents, 1);
}

static sd_status eval_taesd_decode(sd_model *m, const sd_safetensors *in, const char *output_path) {
    SD_TRY(sd_model_require(m, SD_COMPONENT_TAESD, "eval taesd_decode"));
    sd_tensor latents;
    SD_TRY(read_input(m, in, "latents", 4, (int64_t[]){0, m->taesd.cfg.latent_channels, 0, 0}, &latents));
    sd_tensor image = sd_backend_tensor(m->backend, &m->arena, 4,
                                      (int64_t[]){latents.shape[0], m->taesd.cfg.out_channels, latents.shape[2] * 8, latents.shape[3] * 8});
    SD_TRY(m->arena.status);
    SD_TRY(sd_taesd_decode(&m->taesd, m->backend, &m->arena, &image, &latents));
    const char *names[] = {"image"};
    return write_outputs(m, output_path, "taesd_decode", names, &image, 1);
}

sd_status sd_model_eval_file(sd_model *model, const char *component, const char *input_path, const char *output_path) {
    SD_CHECK_ARG(model != NULL, "sd_model_eval_file: model is NULL");
    SD_CHECK_ARG(component && input_path && output_path, "sd_model_eval_file: component, input and output are required");
    static const struct {
        const char *name;
        sd_status (*run)(sd_model *, const sd_safetensors *, const char *);
    } components[] = {
        {"text_encoder", eval_text_encoder},
        {"text_encoder_2", eval_text_encoder_2},
        {"unet", eval_unet},
        {"vae_encode", eval_vae_encode},
        {"vae_decode", eval_vae_decode},
        {"taesd_encode", eval_taesd_encode},
        {"taesd_decode", eval_taesd_decode},
    };
    char in_real[PATH_MAX], out_real[PATH_MAX];
    if (realpath(input_path, in_real) && realpath(output_path, out_real) && strcmp(in_real, out_real) == 0)
        return sd_fail(SD_ERR_ARG, "eval: the output %s is the input file; it would be overwritten", output_path);
    for (size_t i = 0; i < sizeof components / sizeof components[0]; i++) {
        if (strcmp(component, components[i].name) != 0) continue;
        sd_safetensors *in = NULL;
        SD_TRY(sd_st_open(&in, input_path));
        SD_TRY(sd_arena_reset(&model->arena));
        sd_status st = components[i].run(model, in, output_path);
        sd_st_close(in);
        return st;
    }
    return sd_fail(SD_ERR_ARG, "eval: unknown component '%s' (expected text_encoder, text_encoder_2, unet, vae_encode, vae_decode, "
                   "taesd_encode or taesd_decode)", component);
}
