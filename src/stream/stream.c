/* stream.c — creating a StreamDiffusion stream: parameter checks, the per-step constants laid out
 * per batch row, the noise, the prompt embeddings arranged for the CFG type, and every buffer the
 * frame loop needs (reserved here, so frames allocate nothing after warm-up). The per-frame work
 * is in stream_step.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/image.h"
#include "base/clock.h"
#include "stream/stream_internal.h"

enum { SD_STREAM_MAX_SIDE = 4096, SD_STREAM_MAX_FB = 8 };

sd_stream_params sd_stream_params_default(void) {
    sd_stream_params p;
    memset(&p, 0, sizeof p);
    p.width = p.height = 512;
    p.t_index_list[0] = 32;
    p.t_index_list[1] = 45;
    p.n_t_index = 2;
    p.strength = 0.5f;
    p.num_inference_steps = 50;
    p.frame_buffer_size = 1;
    p.use_denoising_batch = 1;
    p.do_add_noise = 1;
    p.cfg_type = SD_CFG_SELF;
    p.guidance_scale = 1.2f;
    p.delta = 1.0f;
    p.seed = 2;
    p.frame_seed = UINT64_C(67280421310721);
    p.similar_filter_max_skip = 10;
    p.use_taesd = 1;
    return p;
}

sd_tensor sd_tensor_rows_view(const sd_tensor *t, int64_t first, int64_t count) {
    sd_tensor v = *t;
    int64_t row = sd_tensor_numel(t) / t->shape[0];
    v.data = sd_tensor_at(t, first * row);
    v.shape[0] = count;
    return v;
}

sd_status sd_stream_params_check(const sd_stream_params *p) {
    SD_CHECK_ARG(p != NULL, "sd_stream_params_check: params is NULL");
    SD_CHECK_ARG(p->width >= 8 && p->height >= 8 && p->width % 8 == 0 && p->height % 8 == 0 &&
                     p->width <= SD_STREAM_MAX_SIDE && p->height <= SD_STREAM_MAX_SIDE,
                 "stream: size %d x %d must be multiples of 8 between 8 and %d", p->width, p->height, SD_STREAM_MAX_SIDE);
    SD_CHECK_ARG(p->n_t_index >= 0 && p->n_t_index <= SD_MAX_T_INDEX, "stream: n_t_index %d must be 0..%d",
                 p->n_t_index, SD_MAX_T_INDEX);
    SD_CHECK_ARG(p->n_t_index > 0 || (p->strength >= 0.0f && p->strength <= 1.0f),
                 "stream: strength %g must be within 0..1", (double)p->strength);
    SD_CHECK_ARG(p->frame_buffer_size >= 1 && p->frame_buffer_size <= SD_STREAM_MAX_FB,
                 "stream: frame_buffer_size %d must be 1..%d", p->frame_buffer_size, SD_STREAM_MAX_FB);
    SD_CHECK_ARG(p->cfg_type >= SD_CFG_NONE && p->cfg_type <= SD_CFG_INITIALIZE, "stream: unknown cfg_type %d",
                 (int)p->cfg_type);
    SD_CHECK_ARG(isfinite(p->guidance_scale) && p->guidance_scale >= 0.0f && p->guidance_scale <= 100.0f,
                 "stream: guidance_scale %g must be within 0..100", (double)p->guidance_scale);
    SD_CHECK_ARG(isfinite(p->delta), "stream: delta must be finite");
    SD_CHECK_ARG(p->similar_filter_threshold >= 0.0f && p->similar_filter_threshold <= 1.0f,
                 "stream: similar_filter_threshold %g must be within 0..1", (double)p->similar_filter_threshold);
    SD_CHECK_ARG(p->similar_filter_max_skip >= 0, "stream: similar_filter_max_skip must be >= 0");
    SD_CHECK_ARG(p->num_inference_steps >= 1 && p->num_inference_steps <= 1000,
                 "stream: num_inference_steps %d must be 1..1000", p->num_inference_steps);
    for (int i = 0; i < p->n_t_index; i++) {
        int index = p->t_index_list[i];
        SD_CHECK_ARG(index >= 0 && index < p->num_inference_steps,
                     "stream: t_index_list[%d] = %d is outside 0..%d (num_inference_steps %d)", i, index,
                     p->num_inference_steps - 1, p->num_inference_steps);
        SD_CHECK_ARG(i == 0 || index > p->t_index_list[i - 1],
                     "stream: t_index_list must increase: t_index_list[%d] = %d follows %d", i, index, p->t_index_list[i - 1]);
    }
    return SD_OK;
}

static sd_status check_params(const sd_stream_params *p, const sd_model *m) {
    SD_TRY(sd_stream_params_check(p));
    SD_TRY(sd_model_require(m, SD_COMPONENT_TEXT_ENCODER, "sd_stream_create"));
    SD_TRY(sd_model_require(m, SD_COMPONENT_UNET, "sd_stream_create"));
    if (!m->has_vae && !m->has_taesd)
        return sd_fail(SD_ERR_STATE, "sd_stream_create: the model has neither a VAE nor a TAESD loaded");
    if (sd_model_text_hidden_size(m) != m->unet.cfg.cross_attention_dim)
        return sd_fail(SD_ERR_FORMAT, "sd_stream_create: text encoder width %d does not match the UNet's cross-attention "
                       "width %d", sd_model_text_hidden_size(m), m->unet.cfg.cross_attention_dim);
    if (m->unet.cfg.text_time && sd_model_text_pooled_size(m) != m->unet.cfg.text_embeds_dim)
        return sd_fail(SD_ERR_FORMAT, "sd_stream_create: the UNet's added embedding takes a pooled text embedding of %d, "
                       "the text encoders give %d", m->unet.cfg.text_embeds_dim, sd_model_text_pooled_size(m));
    return SD_OK;
}

static sd_status load_schedule(sd_stream *s) {
    const char *path = s->model->files.scheduler_config;
    if (!path[0]) {
        sd_schedule_default(&s->schedule);
        return SD_OK;
    }
    sd_config json;
    SD_TRY(sd_config_load(&json, path));
    sd_status st = sd_schedule_from_config(&s->schedule, &json);
    sd_config_free(&json);
    return st;
}

/* Lays the step constants out per batch row: in batch mode row s*fb + f carries step s. */
static void layout_rows(sd_stream *s) {
    int per = s->p.use_denoising_batch ? s->fb : 1;
    for (int i = 0; i < s->n_steps; i++)
        for (int f = 0; f < per; f++) {
            int r = i * per + f;
            s->alpha[r] = s->steps.alpha_sqrt[i];
            s->beta[r] = s->steps.beta_sqrt[i];
            s->c_skip[r] = s->steps.c_skip[i];
            s->c_out[r] = s->steps.c_out[i];
            s->timestep[r] = (float)s->steps.timesteps[i];
        }
}

static sd_tensor latents(sd_stream *s, sd_arena *a, int64_t rows) {
    return sd_backend_tensor(s->model->backend, a, 4, (int64_t[]){rows, s->latent_channels, s->h, s->w});
}

sd_status sd_stream_unet(sd_stream *s, sd_tensor *noise_pred, const sd_tensor *x, const float *timesteps) {
    sd_tensor emb = sd_tensor_rows_view(&s->prompt_embeds, 0, x->shape[0]);
    const sd_unet_added_cond added = {s->pooled_rows, s->time_id_rows};
    return sd_unet_forward_added(&s->model->unet, s->model->backend, &s->frame_arena, noise_pred, x, timesteps, &emb,
                                 s->sdxl ? &added : NULL);
}

/* Zeros from the host: the state tensors start as uninitialised memory, and scaling by 0 would
 * keep any NaN there (0 * NaN = NaN), making two identical streams differ. */
static void zero_tensor(sd_stream *s, sd_tensor *t) {
    if (t->data) sd_backend_upload(s->model->backend, t, s->host_zeros);
}

static sd_status reset_noise(sd_stream *s) {
    int64_t n = sd_tensor_numel(&s->init_noise);
    float *host = malloc((size_t)n * sizeof *host);
    if (!host) return sd_fail(SD_ERR_NOMEM, "stream: out of memory");
    sd_rng_randn(&s->gen, host, n);
    sd_backend_upload(s->model->backend, &s->init_noise, host);
    free(host);
    zero_tensor(s, &s->stock_noise);
    if (s->buffer.data) zero_tensor(s, &s->buffer);
    return sd_backend_status(s->model->backend);
}

sd_status sd_stream_create(sd_stream **out, sd_model *model, const sd_stream_params *params) {
    SD_CHECK_ARG(out && model && params, "sd_stream_create: out, model and params are required");
    SD_TRY(check_params(params, model));
    sd_stream *s = calloc(1, sizeof *s);
    if (!s) return sd_fail(SD_ERR_NOMEM, "sd_stream_create: out of memory");
    s->model = model;
    s->p = *params;
    s->fb = params->frame_buffer_size;
    s->h = params->height / 8;
    s->w = params->width / 8;
    s->latent_channels = model->unet.cfg.in_channels;
    s->use_taesd = params->use_taesd && model->has_taesd;
    s->vae_scale = s->use_taesd ? 1.0f : model->vae.cfg.scaling_factor;
    sd_allocator alloc = sd_backend_allocator(model->backend); /* state and activations: the backend's memory */
    sd_arena_init_with(&s->state, &alloc);
    sd_arena_init_with(&s->frame_arena, &alloc);
    sd_status st = load_schedule(s);
    int list[SD_MAX_T_INDEX];
    s->n_steps = params->n_t_index;
    if (s->n_steps == 0) {
        s->n_steps = 1;
        list[0] = sd_schedule_index_for_strength(params->strength, params->num_inference_steps);
    } else {
        memcpy(list, params->t_index_list, sizeof list);
    }
    if (st == SD_OK) st = sd_schedule_constants(&s->schedule, params->num_inference_steps, list, s->n_steps, &s->steps);
    s->batch = params->use_denoising_batch ? s->n_steps * s->fb : s->fb;
    if (st == SD_OK && 2 * s->batch > SD_STREAM_MAX_ROWS)
        st = sd_fail(SD_ERR_ARG, "sd_stream_create: %d steps x %d frames is too large a batch", s->n_steps, s->fb);
    if (st == SD_OK) {
        layout_rows(s);
        s->guidance = params->cfg_type == SD_CFG_NONE ? 1.0f : params->guidance_scale;
        s->delta = params->delta;
        sd_rng_seed(&s->gen, params->seed);
        sd_rng_seed(&s->frame, params->frame_seed);
        size_t frame_floats = sd_stream_image_floats(s), latent_floats = sd_stream_latent_floats(s);
        s->host_images = malloc(frame_floats * sizeof(float));
        s->host_out = malloc(frame_floats * sizeof(float));
        s->last_output = malloc(frame_floats * sizeof(float));
        s->host_x0 = malloc(latent_floats * sizeof(float));
        s->host_noise = malloc(latent_floats * sizeof(float));
        /* as large as the largest state tensor: the latent buffer of (n - 1) x fb rows or the noise */
        s->host_zeros = calloc((size_t)(s->n_steps > 1 ? s->n_steps : 1) * latent_floats, sizeof(float));
        if (!s->host_images || !s->host_out || !s->last_output || !s->host_x0 || !s->host_noise || !s->host_zeros)
            st = sd_fail(SD_ERR_NOMEM, "sd_stream_create: out of memory");
        s->sdxl = model->unet.cfg.text_time;
        if (st == SD_OK && s->sdxl) {
            s->pooled_dim = model->unet.cfg.text_embeds_dim;
            s->cond_pooled = calloc((size_t)s->pooled_dim, sizeof(float));
            s->uncond_pooled = calloc((size_t)s->pooled_dim, sizeof(float));
            s->pooled_rows = calloc((size_t)(2 * s->batch) * (size_t)s->pooled_dim, sizeof(float));
            s->time_id_rows = calloc((size_t)(2 * s->batch) * SD_UNET_TIME_IDS, sizeof(float));
            if (!s->cond_pooled || !s->uncond_pooled || !s->pooled_rows || !s->time_id_rows)
                st = sd_fail(SD_ERR_NOMEM, "sd_stream_create: out of memory");
            /* diffusers' _get_add_time_ids: original size, crop (0, 0), target size, each (h, w) */
            for (int r = 0; st == SD_OK && r < 2 * s->batch; r++) {
                float *ids = s->time_id_rows + r * SD_UNET_TIME_IDS;
                ids[0] = ids[4] = (float)params->height;
                ids[1] = ids[5] = (float)params->width;
                ids[2] = ids[3] = 0.0f;
            }
        }
        s->filter_on = params->similar_filter_threshold > 0.0f;
        if (st == SD_OK && s->filter_on &&
            !sd_similar_filter_init(&s->filter, params->similar_filter_threshold, params->similar_filter_max_skip,
                                    params->filter_seed, frame_floats))
            st = sd_fail(SD_ERR_NOMEM, "sd_stream_create: out of memory");
    }
    if (st == SD_OK) {
        int64_t C = sd_model_text_hidden_size(model);
        sd_backend *be = model->backend;
        s->cond_embed = sd_backend_tensor(be, &s->state, 3, (int64_t[]){1, SD_TOKENS, C});
        s->uncond_embed = sd_backend_tensor(be, &s->state, 3, (int64_t[]){1, SD_TOKENS, C});
        s->prompt_embeds = sd_backend_tensor(be, &s->state, 3, (int64_t[]){2 * s->batch, SD_TOKENS, C});
        s->init_noise = latents(s, &s->state, s->batch);
        s->stock_noise = latents(s, &s->state, s->batch);
        if (params->use_denoising_batch && s->n_steps > 1) s->buffer = latents(s, &s->state, (int64_t)(s->n_steps - 1) * s->fb);
        s->device_io = be->device_memory;
        if (s->device_io) {
            int64_t rgb_shape[4] = {s->fb, params->height, params->width, 3};
            s->rgb_in = sd_arena_tensor(&s->state, SD_DTYPE_U8, 4, rgb_shape);
            s->rgb_out = sd_arena_tensor(&s->state, SD_DTYPE_U8, 4, rgb_shape);
            s->x0_dev = latents(s, &s->state, s->fb);
            s->last_rgb = calloc((size_t)sd_tensor_numel(&s->rgb_out), 1);
            if (!s->last_rgb) st = sd_fail(SD_ERR_NOMEM, "sd_stream_create: out of memory");
        }
        if (st == SD_OK) st = s->state.status;
    }
    if (st == SD_OK) st = reset_noise(s);
    if (st != SD_OK) {
        sd_stream_free(s);
        return st;
    }
    *out = s;
    return SD_OK;
}

void sd_stream_free(sd_stream *s) {
    if (!s) return;
    sd_arena_free(&s->state);
    sd_arena_free(&s->frame_arena);
    sd_similar_filter_free(&s->filter);
    free(s->host_images);
    free(s->host_out);
    free(s->last_output);
    free(s->last_rgb);
    free(s->host_x0);
    free(s->host_noise);
    free(s->host_zeros);
    free(s->cond_pooled);
    free(s->uncond_pooled);
    free(s->pooled_rows);
    free(s->time_id_rows);
    free(s);
}

/* Encodes one prompt into a [1, 77, C] backend tensor (and SDXL's pooled embedding, host [P]). */
static sd_status encode(sd_stream *s, const char *prompt, sd_tensor *dst, float *pooled) {
    sd_model *m = s->model;
    int64_t n = sd_tensor_numel(dst);
    float *host = malloc((size_t)n * sizeof *host);
    if (!host) return sd_fail(SD_ERR_NOMEM, "stream: out of memory");
    sd_status st = sd_model_encode_text(m, prompt, host, pooled);
    if (st == SD_OK) {
        sd_backend_upload(m->backend, dst, host);
        st = sd_backend_status(m->backend);
    }
    free(host);
    return st;
}

/* upstream's arrangement: cond x batch; with guidance, full: [uncond x batch, cond x batch],
 * initialize: [uncond x fb, cond x batch]. */
static void arrange_prompt(sd_stream *s) {
    sd_backend *be = s->model->backend;
    bool cfg = s->guidance > 1.0f;
    int uncond_rows = 0;
    if (cfg && s->p.cfg_type == SD_CFG_FULL) uncond_rows = s->batch;
    if (cfg && s->p.cfg_type == SD_CFG_INITIALIZE) uncond_rows = s->fb;
    for (int r = 0; r < uncond_rows + s->batch; r++) {
        sd_tensor row = sd_tensor_rows_view(&s->prompt_embeds, r, 1);
        sd_op_copy(be, &row, r < uncond_rows ? &s->uncond_embed : &s->cond_embed);
        if (s->sdxl)
            memcpy(s->pooled_rows + (size_t)r * s->pooled_dim, r < uncond_rows ? s->uncond_pooled : s->cond_pooled,
                   (size_t)s->pooled_dim * sizeof(float));
    }
    s->prompt_rows = uncond_rows + s->batch;
}

sd_status sd_stream_set_prompt(sd_stream *s, const char *prompt, const char *negative_prompt) {
    SD_CHECK_ARG(s && prompt, "sd_stream_set_prompt: stream and prompt are required");
    SD_TRY(encode(s, prompt, &s->cond_embed, s->cond_pooled));
    /* the negative prompt is kept across prompt changes (upstream's update_prompt drops it); SDXL
     * without one: zeros when the model says force_zeros_for_empty_prompt (diffusers) */
    if (s->sdxl && !negative_prompt && !s->has_prompt && s->model->files.force_zeros_for_empty_prompt) {
        float *zeros = calloc((size_t)sd_tensor_numel(&s->uncond_embed), sizeof *zeros);
        if (!zeros) return sd_fail(SD_ERR_NOMEM, "sd_stream_set_prompt: out of memory");
        sd_backend_upload(s->model->backend, &s->uncond_embed, zeros);
        free(zeros);
        memset(s->uncond_pooled, 0, (size_t)s->pooled_dim * sizeof(float));
    } else if (negative_prompt || !s->has_prompt) {
        SD_TRY(encode(s, negative_prompt ? negative_prompt : "", &s->uncond_embed, s->uncond_pooled));
    }
    arrange_prompt(s);
    s->has_prompt = true;
    return sd_backend_status(s->model->backend);
}

sd_status sd_stream_set_guidance(sd_stream *s, float guidance_scale, float delta) {
    SD_CHECK_ARG(s != NULL, "sd_stream_set_guidance: stream is NULL");
    SD_CHECK_ARG(isfinite(guidance_scale) && guidance_scale >= 0.0f && guidance_scale <= 100.0f && isfinite(delta),
                 "sd_stream_set_guidance: guidance_scale %g must be within 0..100 and delta finite", (double)guidance_scale);
    s->guidance = s->p.cfg_type == SD_CFG_NONE ? 1.0f : guidance_scale;
    s->delta = delta;
    s->p.guidance_scale = guidance_scale;
    s->p.delta = delta;
    if (s->has_prompt) arrange_prompt(s);
    return sd_backend_status(s->model->backend);
}

sd_status sd_stream_set_seed(sd_stream *s, uint64_t seed) {
    SD_CHECK_ARG(s != NULL, "sd_stream_set_seed: stream is NULL");
    s->p.seed = seed;
    sd_rng_seed(&s->gen, seed);
    return reset_noise(s);
}

sd_status sd_stream_set_t_index_list(sd_stream *s, const int *t_index_list, int n) {
    SD_CHECK_ARG(s && t_index_list, "sd_stream_set_t_index_list: stream and list are required");
    SD_CHECK_ARG(n == s->n_steps, "sd_stream_set_t_index_list: %d steps given, the stream was created with %d (the batch "
                 "is sized by it; create a new stream to change the number of steps)", n, s->n_steps);
    sd_step_constants steps;
    SD_TRY(sd_schedule_constants(&s->schedule, s->p.num_inference_steps, t_index_list, n, &steps));
    s->steps = steps;
    memcpy(s->p.t_index_list, t_index_list, (size_t)n * sizeof *t_index_list);
    s->p.n_t_index = n;
    layout_rows(s);
    return SD_OK;
}

sd_status sd_stream_set_noise(sd_stream *s, const float *noise, size_t count) {
    SD_CHECK_ARG(s && noise, "sd_stream_set_noise: stream and noise are required");
    size_t want = (size_t)sd_tensor_numel(&s->init_noise);
    SD_CHECK_ARG(count == want, "sd_stream_set_noise: %zu floats given, the noise is [%d, %d, %lld, %lld] = %zu", count,
                 s->batch, s->latent_channels, (long long)s->h, (long long)s->w, want);
    sd_backend_upload(s->model->backend, &s->init_noise, noise);
    zero_tensor(s, &s->stock_noise);
    return sd_backend_status(s->model->backend);
}

sd_status sd_stream_get_timings(const sd_stream *s, sd_stream_timings *out) {
    SD_CHECK_ARG(s && out, "sd_stream_get_timings: stream and out are required");
    *out = s->timings;
    return SD_OK;
}


size_t sd_stream_image_floats(const sd_stream *s) { return (size_t)s->fb * 3 * (size_t)s->p.width * (size_t)s->p.height; }

size_t sd_stream_latent_floats(const sd_stream *s) {
    return (size_t)s->fb * (size_t)s->latent_channels * (size_t)s->h * (size_t)s->w;
}

/* One synchronous call: denoise, then decode on the model's backend; a skipped frame repeats the
 * last output. */
static sd_status run_img2img(sd_stream *s, const float *images, float *out, int *skipped) {
    int skip = 0;
    SD_TRY(sd_stream_denoise_img2img(s, images, s->host_x0, &skip));
    size_t bytes = sd_stream_image_floats(s) * sizeof(float);
    if (skipped) *skipped = skip;
    if (skip) {
        memcpy(out, s->last_output, bytes);
        return SD_OK;
    }
    double t0 = sd_now_ms(), f0 = s->model->backend->flops;
    SD_TRY(sd_stream_decode(s, s->model->backend, &s->frame_arena, s->host_x0, out));
    s->timings.decode_ms = sd_now_ms() - t0;
    s->timings.decode_gflop = (s->model->backend->flops - f0) * 1e-9;
    memcpy(s->last_output, out, bytes);
    return SD_OK;
}

static sd_status run_txt2img(sd_stream *s, float *out) {
    SD_TRY(sd_stream_denoise_txt2img(s, s->host_x0));
    double t0 = sd_now_ms(), f0 = s->model->backend->flops;
    sd_status st = sd_stream_decode(s, s->model->backend, &s->frame_arena, s->host_x0, out);
    s->timings.decode_ms = sd_now_ms() - t0;
    s->timings.decode_gflop = (s->model->backend->flops - f0) * 1e-9;
    return st;
}

sd_status sd_stream_img2img_f32(sd_stream *s, const float *images, float *out, int *skipped) {
    SD_CHECK_ARG(s && images && out, "sd_stream_img2img_f32: stream, images and out are required");
    double t0 = sd_now_ms();
    sd_status st = run_img2img(s, images, out, skipped);
    s->timings.total_ms = sd_now_ms() - t0;
    return st;
}

sd_status sd_stream_txt2img_f32(sd_stream *s, float *out) {
    SD_CHECK_ARG(s && out, "sd_stream_txt2img_f32: stream and out are required");
    double t0 = sd_now_ms();
    sd_status st = run_txt2img(s, out);
    s->timings.total_ms = sd_now_ms() - t0;
    return st;
}

static void frames_to_chw(sd_stream *s, float *dst, const uint8_t *frames) {
    size_t pixels = (size_t)s->p.width * (size_t)s->p.height;
    for (int f = 0; f < s->fb; f++) {
        sd_image img = {s->p.width, s->p.height, (uint8_t *)frames + (size_t)f * pixels * 3};
        sd_image_to_chw(dst + (size_t)f * pixels * 3, &img);
    }
}

static void chw_to_frames(sd_stream *s, uint8_t *frames, const float *src, int count) {
    size_t pixels = (size_t)s->p.width * (size_t)s->p.height;
    for (int f = 0; f < count; f++) {
        sd_image img = {s->p.width, s->p.height, frames + (size_t)f * pixels * 3};
        sd_image_from_chw(&img, src + (size_t)f * pixels * 3);
    }
}

/* The 8-bit calls on a device backend: frames converted there, x0 kept there (device_io). */
static sd_status img2img_device(sd_stream *s, const uint8_t *frames, uint8_t *out, int *skipped) {
    sd_backend *be = s->model->backend;
    double t0 = sd_now_ms();
    int skip = 0;
    SD_TRY(sd_stream_denoise_img2img_rgb(s, frames, &skip));
    size_t bytes = (size_t)sd_tensor_numel(&s->rgb_out);
    if (skipped) *skipped = skip;
    if (skip) {
        memcpy(out, s->last_rgb, bytes);
    } else {
        double t1 = sd_backend_now_ms(be), f0 = be->flops;
        SD_TRY(sd_stream_decode_rgb(s, out));
        s->timings.decode_ms = sd_now_ms() - t1; /* the download waited for the decode */
        s->timings.decode_gflop = (be->flops - f0) * 1e-9;
        memcpy(s->last_rgb, out, bytes);
    }
    s->timings.preprocess_ms = s->timings.postprocess_ms = 0.0; /* inside encode and decode, on the device */
    s->timings.total_ms = sd_now_ms() - t0;
    return SD_OK;
}

sd_status sd_stream_img2img(sd_stream *s, const uint8_t *frames, uint8_t *out, int *skipped) {
    SD_CHECK_ARG(s && frames && out, "sd_stream_img2img: stream, frames and out are required");
    if (s->device_io) return img2img_device(s, frames, out, skipped);
    double t0 = sd_now_ms();
    float *in = s->host_images, *res = s->host_out;
    frames_to_chw(s, in, frames);
    double t1 = sd_now_ms();
    SD_TRY(run_img2img(s, in, res, skipped));
    double t2 = sd_now_ms();
    chw_to_frames(s, out, res, s->fb);
    double t3 = sd_now_ms();
    s->timings.preprocess_ms = t1 - t0;
    s->timings.postprocess_ms = t3 - t2;
    s->timings.total_ms = t3 - t0;
    return SD_OK;
}

sd_status sd_stream_txt2img(sd_stream *s, uint8_t *out) {
    SD_CHECK_ARG(s && out, "sd_stream_txt2img: stream and out are required");
    if (s->device_io) {
        sd_backend *be = s->model->backend;
        double t0 = sd_now_ms();
        SD_TRY(sd_stream_denoise_txt2img_dev(s));
        double t1 = sd_backend_now_ms(be), f0 = be->flops;
        SD_TRY(sd_stream_decode_rgb(s, out));
        s->timings.decode_ms = sd_now_ms() - t1;
        s->timings.decode_gflop = (be->flops - f0) * 1e-9;
        s->timings.preprocess_ms = s->timings.postprocess_ms = 0.0;
        s->timings.total_ms = sd_now_ms() - t0;
        return SD_OK;
    }
    double t0 = sd_now_ms();
    float *res = s->host_out;
    SD_TRY(run_txt2img(s, res));
    double t1 = sd_now_ms();
    chw_to_frames(s, out, res, s->fb);
    s->timings.preprocess_ms = 0.0;
    s->timings.postprocess_ms = sd_now_ms() - t1;
    s->timings.total_ms = sd_now_ms() - t0;
    return SD_OK;
}
