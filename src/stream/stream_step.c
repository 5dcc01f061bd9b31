/* stream_step.c — one StreamDiffusion call: encode, add noise, the stream batch (or the sequential
 * steps) through the UNet with residual CFG, the LCM step, the buffer and stock-noise updates, and
 * decode. Follows upstream pipeline.py (cumulo-autumn/StreamDiffusion b623251) operation for
 * operation where upstream runs; where it crashes (several frames per call with several steps) the
 * batch is treated as frame_buffer_size independent slots, every shift moving whole slots.
 * Batch rows are step-major: row s * fb + f is step s of frame slot f. */
#include <string.h>

#include "base/clock.h"
#include "base/image.h"
#include "stream/stream_internal.h"

static sd_tensor latents(sd_stream *s, int64_t rows) {
    return sd_backend_tensor(s->model->backend, &s->frame_arena, 4, (int64_t[]){rows, s->latent_channels, s->h, s->w});
}

static sd_tensor rows(const sd_tensor *t, int64_t first, int64_t count) { return sd_tensor_rows_view(t, first, count); }

static void copy(sd_stream *s, sd_tensor *dst, const sd_tensor *src) { sd_op_copy(s->model->backend, dst, src); }

/* LCM step of one row with constants k: c_out * (x - beta * eps) / alpha + c_skip * x. */
static void lcm_step_row(sd_stream *s, sd_tensor *out, const sd_tensor *eps, const sd_tensor *x, int k) {
    sd_backend *be = s->model->backend;
    sd_op_axpby(be, out, 1.0f / s->alpha[k], x, -s->beta[k] / s->alpha[k], eps);
    sd_op_axpby(be, out, s->c_out[k], out, s->c_skip[k], x);
}

/* upstream unet_step: x [R rows] at the rows' timesteps (batch mode, step = -1) or all at `step`
 * (sequential); writes the denoised rows and returns the guided prediction in `pred`. */
static void unet_step(sd_stream *s, sd_tensor *denoised, sd_tensor *pred, const sd_tensor *x, int step) {
    sd_backend *be = s->model->backend;
    const int64_t R = x->shape[0];
    const int fb = s->fb;
    const bool active = s->guidance > 1.0f;
    const sd_cfg_type cfg = s->p.cfg_type;
    const bool init = active && cfg == SD_CFG_INITIALIZE, full = active && cfg == SD_CFG_FULL;
    const int64_t extra = init ? fb : (full ? R : 0); /* negative rows in front of the batch */
    sd_arena_mark mark = sd_arena_get_mark(&s->frame_arena);

    // UNet input: [negative rows, x] with their timesteps
    sd_tensor in = latents(s, extra + R), out = latents(s, extra + R);
    float t[SD_STREAM_MAX_ROWS];
    for (int64_t r = 0; r < extra + R; r++) {
        int64_t src = r < extra ? (init ? r : r - 0) % R : r - extra; /* initialize: x[0:fb]; full: x again */
        t[r] = step < 0 ? s->timestep[src] : s->timestep[step];
    }
    if (extra) {
        sd_tensor head = rows(&in, 0, extra), src = rows(x, 0, extra);
        copy(s, &head, &src);
    }
    sd_tensor body = rows(&in, extra, R);
    copy(s, &body, x);
    double t0 = sd_backend_now_ms(be), f0 = be->flops;
    sd_status st = sd_stream_unet(s, &out, &in, t);
    s->timings.unet_ms += sd_backend_now_ms(be) - t0;
    s->timings.unet_gflop += (be->flops - f0) * 1e-9;
    s->timings.unet_batch = (int)(extra + R);
    if (st != SD_OK) sd_backend_fail(be, st, "%s", sd_last_error());

    // guidance: text rows are the last R; the negative is the UNet's (full), or stored noise (RCFG)
    sd_tensor text = rows(&out, extra, R);
    if (init) {
        sd_tensor stock_head = rows(&s->stock_noise, 0, fb), uncond_head = rows(&out, 0, fb);
        copy(s, &stock_head, &uncond_head);
    }
    if (full) {
        sd_tensor uncond = rows(&out, 0, R);
        sd_op_axpby(be, pred, 1.0f - s->guidance, &uncond, s->guidance, &text);
    } else if (active && (cfg == SD_CFG_SELF || cfg == SD_CFG_INITIALIZE)) {
        sd_tensor stock = rows(&s->stock_noise, 0, R);
        sd_op_axpby(be, pred, (1.0f - s->guidance) * s->delta, &stock, s->guidance, &text);
    } else {
        copy(s, pred, &text);
    }

    for (int64_t r = 0; r < R; r++) {
        sd_tensor d = rows(denoised, r, 1), e = rows(pred, r, 1), xr = rows(x, r, 1);
        lcm_step_row(s, &d, &e, &xr, step < 0 ? (int)r : step);
    }

    // RCFG stock noise for the next call (stream batch only, as upstream): the noise the next
    // step's input will carry, estimated through the same LCM step, scaled to the next step
    if (step < 0 && (cfg == SD_CFG_SELF || cfg == SD_CFG_INITIALIZE)) {
        /* upstream shifts by one row; with one step per call that is what it runs (also for
         * several frames, mixing their constants, reproduced); with several steps and frames
         * (where upstream crashes) whole frame slots shift */
        int64_t shift = s->n_steps > 1 ? fb : 1;
        sd_tensor next = latents(s, R), scaled = latents(s, 1);
        for (int64_t r = 0; r < R; r++) {
            sd_tensor stock = rows(&s->stock_noise, r, 1), e = rows(pred, r, 1), nr = rows(&next, r, 1);
            sd_op_scale(be, &scaled, &stock, s->beta[r], 0.0f);
            lcm_step_row(s, &nr, &e, &scaled, (int)r);
            float alpha_next = r + shift < R ? s->alpha[r + shift] : 1.0f;
            float beta_next = r + shift < R ? s->beta[r + shift] : 1.0f;
            sd_tensor noise = rows(&s->init_noise, (r + shift) % R, 1);
            sd_op_axpby(be, &nr, alpha_next / beta_next, &nr, 1.0f, &noise);
        }
        copy(s, &s->stock_noise, &next);
    }
    sd_arena_rewind(&s->frame_arena, mark);
}

/* upstream predict_x0_batch: x_t [fb] -> x0 [fb]. */
static void predict_x0(sd_stream *s, sd_tensor *x0, const sd_tensor *x_t) {
    sd_backend *be = s->model->backend;
    const int fb = s->fb, n = s->n_steps;
    if (s->p.use_denoising_batch) {
        const int64_t B = s->batch;
        sd_tensor xb = latents(s, B), den = latents(s, B), pred = latents(s, B);
        sd_tensor head = rows(&xb, 0, fb);
        copy(s, &head, x_t);
        if (n > 1) {
            sd_tensor tail = rows(&xb, fb, B - fb);
            copy(s, &tail, &s->buffer);
            /* stock noise moves one slot deeper; the first slot starts from the initial noise */
            sd_tensor moved = latents(s, B - fb), older = rows(&s->stock_noise, 0, B - fb);
            copy(s, &moved, &older);
            sd_tensor deeper = rows(&s->stock_noise, fb, B - fb), first = rows(&s->stock_noise, 0, fb);
            sd_tensor noise_head = rows(&s->init_noise, 0, fb);
            copy(s, &deeper, &moved);
            copy(s, &first, &noise_head);
        }
        unet_step(s, &den, &pred, &xb, -1);
        if (n > 1) {
            sd_tensor last = rows(&den, B - fb, fb);
            copy(s, x0, &last);
            /* the other slots go one step on: re-noised to the next step's level */
            for (int64_t r = 0; r + fb < B; r++) {
                sd_tensor b = rows(&s->buffer, r, 1), d = rows(&den, r, 1), noise = rows(&s->init_noise, r + fb, 1);
                sd_op_axpby(be, &b, s->alpha[r + fb], &d, s->p.do_add_noise ? s->beta[r + fb] : 0.0f, &noise);
            }
        } else {
            copy(s, x0, &den);
        }
        return;
    }
    /* sequential: upstream keeps this call's input as the next call's "initial noise" */
    copy(s, &s->init_noise, x_t);
    sd_tensor x = latents(s, fb), den = latents(s, fb), pred = latents(s, fb);
    copy(s, &x, x_t);
    float *host = NULL;
    for (int i = 0; i < n; i++) {
        unet_step(s, &den, &pred, &x, i);
        if (i == n - 1) break;
        if (s->p.do_add_noise) {
            sd_tensor noise = latents(s, fb);
            host = s->host_noise;
            /* upstream: randn_like(x0) from the global generator, x0 being channels-last there */
            sd_rng_randn_channels_last(&s->frame, host, fb, s->latent_channels, s->h, s->w);
            sd_backend_upload(be, &noise, host);
            sd_op_axpby(be, &x, s->alpha[i + 1], &den, s->beta[i + 1], &noise);
        } else {
            sd_op_scale(be, &x, &den, s->alpha[i + 1], 0.0f);
        }
    }
    copy(s, x0, &den);
}

static void encode_images(sd_stream *s, sd_tensor *latent, const sd_tensor *images) {
    sd_model *m = s->model;
    sd_backend *be = m->backend;
    double t0 = sd_backend_now_ms(be), f0 = be->flops;
    sd_status st;
    if (s->use_taesd) {
        st = sd_taesd_encode(&m->taesd, be, &s->frame_arena, latent, images);
    } else {
        /* latent_dist.sample(generator): mean + std * randn from prepare's generator */
        sd_tensor mean = latents(s, s->fb), std = latents(s, s->fb);
        st = sd_vae_encode(&m->vae, be, &s->frame_arena, &mean, &std, images);
        sd_rng_randn(&s->gen, s->host_noise, sd_tensor_numel(latent));
        sd_backend_upload(be, latent, s->host_noise);
        sd_op_mul(be, latent, latent, &std);
        sd_op_add(be, latent, latent, &mean);
    }
    if (st != SD_OK) sd_backend_fail(be, st, "%s", sd_last_error());
    sd_op_scale(be, latent, latent, s->vae_scale, 0.0f);
    s->timings.encode_ms = sd_backend_now_ms(be) - t0;
    s->timings.encode_gflop = (be->flops - f0) * 1e-9;
}

sd_status sd_stream_decode(sd_stream *s, sd_backend *be, sd_arena *arena, const float *x0_host, float *images_out) {
    sd_model *m = s->model;
    SD_TRY(sd_arena_reset(arena));
    sd_tensor x0 = sd_backend_tensor(be, arena, 4, (int64_t[]){s->fb, s->latent_channels, s->h, s->w});
    sd_tensor images = sd_backend_tensor(be, arena, 4, (int64_t[]){s->fb, 3, s->p.height, s->p.width});
    SD_TRY(arena->status);
    sd_backend_upload(be, &x0, x0_host);
    sd_op_scale(be, &x0, &x0, 1.0f / s->vae_scale, 0.0f); /* decode_image: x0 / scaling_factor */
    sd_status st = s->use_taesd ? sd_taesd_decode(&m->taesd, be, arena, &images, &x0)
                                : sd_vae_decode(&m->vae, be, arena, &images, &x0);
    if (st == SD_OK) {
        sd_backend_download(be, images_out, &images);
        st = arena->status != SD_OK ? arena->status : sd_backend_status(be);
    }
    sd_backend_clear_status(be);
    return st;
}

static sd_status begin(sd_stream *s) {
    if (!s->has_prompt) return sd_fail(SD_ERR_STATE, "stream: set a prompt (sd_stream_set_prompt) before the first frame");
    memset(&s->timings, 0, sizeof s->timings);
    sd_backend_clear_status(s->model->backend);
    return sd_arena_reset(&s->frame_arena);
}

/* Downloads x0 (or keeps it in s->x0_dev when x0_host is NULL) and reports the first failure of
 * the pass. */
static sd_status finish(sd_stream *s, const sd_tensor *x0, float *x0_host) {
    sd_backend *be = s->model->backend;
    if (x0_host) sd_backend_download(be, x0_host, x0);
    else sd_op_copy(be, &s->x0_dev, x0);
    sd_status st = s->frame_arena.status != SD_OK ? s->frame_arena.status : sd_backend_status(be);
    sd_backend_clear_status(be);
    return st;
}

/* img2img from host floats (host_images) or host 8-bit frames converted on the backend (rgb); x0 to
 * x0_host, or kept in s->x0_dev when x0_host is NULL. */
static sd_status denoise_img2img(sd_stream *s, const float *host_images, const uint8_t *rgb, float *x0_host,
                                 int *skipped) {
    SD_TRY(begin(s));
    sd_backend *be = s->model->backend;
    if (skipped) *skipped = 0;
    if (s->filter_on && sd_similar_filter_skip(&s->filter, host_images) && s->frames_done > 0) {
        if (skipped) *skipped = 1;
        return SD_OK;
    }
    sd_tensor images = sd_backend_tensor(be, &s->frame_arena, 4, (int64_t[]){s->fb, 3, s->p.height, s->p.width});
    sd_tensor latent = latents(s, s->fb), x_t = latents(s, s->fb), x0 = latents(s, s->fb);
    SD_TRY(s->frame_arena.status);
    if (rgb) {
        sd_backend_upload(be, &s->rgb_in, rgb);
        sd_op_rgb8_to_image(be, &images, &s->rgb_in);
    } else {
        sd_backend_upload(be, &images, host_images);
    }
    encode_images(s, &latent, &images);
    /* add_noise at the first step, with the first row of the initial noise for every frame */
    sd_tensor noise0 = rows(&s->init_noise, 0, 1);
    for (int f = 0; f < s->fb; f++) {
        sd_tensor xf = rows(&x_t, f, 1), lf = rows(&latent, f, 1);
        sd_op_axpby(be, &xf, s->alpha[0], &lf, s->beta[0], &noise0);
    }
    predict_x0(s, &x0, &x_t);
    SD_TRY(finish(s, &x0, x0_host));
    s->frames_done++;
    return SD_OK;
}

sd_status sd_stream_denoise_img2img(sd_stream *s, const float *host_images, float *x0_host, int *skipped) {
    return denoise_img2img(s, host_images, NULL, x0_host, skipped);
}

sd_status sd_stream_denoise_img2img_rgb(sd_stream *s, const uint8_t *frames, int *skipped) {
    if (s->filter_on) { /* the filter's cosine runs on the host, on the float frames */
        size_t pixels = (size_t)s->p.width * (size_t)s->p.height;
        for (int f = 0; f < s->fb; f++) {
            sd_image img = {s->p.width, s->p.height, (uint8_t *)frames + (size_t)f * pixels * 3};
            sd_image_to_chw(s->host_images + (size_t)f * pixels * 3, &img);
        }
        return denoise_img2img(s, s->host_images, NULL, NULL, skipped);
    }
    return denoise_img2img(s, NULL, frames, NULL, skipped);
}

sd_status sd_stream_decode_rgb(sd_stream *s, uint8_t *frames_out) {
    sd_model *m = s->model;
    sd_backend *be = m->backend;
    sd_arena *arena = &s->frame_arena;
    SD_TRY(sd_arena_reset(arena));
    sd_tensor x0 = sd_backend_tensor(be, arena, 4, (int64_t[]){s->fb, s->latent_channels, s->h, s->w});
    sd_tensor images = sd_backend_tensor(be, arena, 4, (int64_t[]){s->fb, 3, s->p.height, s->p.width});
    SD_TRY(arena->status);
    sd_op_scale(be, &x0, &s->x0_dev, 1.0f / s->vae_scale, 0.0f); /* decode_image: x0 / scaling_factor */
    sd_status st = s->use_taesd ? sd_taesd_decode(&m->taesd, be, arena, &images, &x0)
                                : sd_vae_decode(&m->vae, be, arena, &images, &x0);
    if (st == SD_OK) {
        sd_op_image_to_rgb8(be, &s->rgb_out, &images);
        sd_backend_download(be, frames_out, &s->rgb_out);
        st = arena->status != SD_OK ? arena->status : sd_backend_status(be);
    }
    sd_backend_clear_status(be);
    return st;
}

sd_status sd_stream_denoise_txt2img_dev(sd_stream *s) { return sd_stream_denoise_txt2img(s, NULL); }

sd_status sd_stream_denoise_txt2img(sd_stream *s, float *x0_host) {
    SD_TRY(begin(s));
    sd_backend *be = s->model->backend;
    sd_tensor x_t = latents(s, s->fb), x0 = latents(s, s->fb);
    SD_TRY(s->frame_arena.status);
    /* the fresh latent comes from upstream's global generator */
    sd_rng_randn(&s->frame, s->host_noise, sd_tensor_numel(&x_t));
    sd_backend_upload(be, &x_t, s->host_noise);
    if (s->p.turbo) {
        /* txt2img_sd_turbo: x0 = (x - beta * eps) / alpha at the first step, no boundary scalings */
        sd_tensor eps = latents(s, s->fb);
        float t[SD_STREAM_MAX_ROWS];
        for (int f = 0; f < s->fb; f++) t[f] = s->timestep[0];
        double t0 = sd_backend_now_ms(be), f0 = be->flops;
        sd_status st = sd_stream_unet(s, &eps, &x_t, t);
        s->timings.unet_ms = sd_backend_now_ms(be) - t0;
        s->timings.unet_gflop = (be->flops - f0) * 1e-9;
        if (st != SD_OK) return st;
        sd_op_axpby(be, &x0, 1.0f / s->alpha[0], &x_t, -s->beta[0] / s->alpha[0], &eps);
    } else {
        predict_x0(s, &x0, &x_t);
    }
    SD_TRY(finish(s, &x0, x0_host));
    s->frames_done++;
    return SD_OK;
}
