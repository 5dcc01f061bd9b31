/* stream_internal.h — the state of an sd_stream, shared by stream.c (setup, prompt, noise) and
 * stream_step.c (the per-frame work). Layout of the batch, as upstream: rows are step-major, row
 * s * fb + f is step s of frame slot f; row-wise constants are repeated per frame slot. */
#ifndef SD_STREAM_STREAM_INTERNAL_H
#define SD_STREAM_STREAM_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "api/model_internal.h"
#include "base/rng.h"
#include "stream/schedule.h"
#include "stream/similar_filter.h"

enum { SD_STREAM_MAX_ROWS = 2 * SD_MAX_T_INDEX * 8 };

struct sd_stream {
    sd_model *model;
    sd_stream_params p;
    int n_steps;    /* len(t_index_list) */
    int fb;         /* frame_buffer_size */
    int batch;      /* n_steps * fb with the denoising batch, else fb */
    int64_t h, w;   /* latent size */
    int latent_channels;
    bool use_taesd;
    float vae_scale; /* latent scaling factor of the autoencoder in use */

    sd_schedule schedule;
    sd_step_constants steps;
    /* per batch row (repeated per frame slot in batch mode; per step in sequential mode) */
    float alpha[SD_STREAM_MAX_ROWS], beta[SD_STREAM_MAX_ROWS], c_skip[SD_STREAM_MAX_ROWS], c_out[SD_STREAM_MAX_ROWS];
    float timestep[SD_STREAM_MAX_ROWS];
    float guidance, delta;
    bool turbo; /* txt2img with sd-turbo's formula (upstream txt2img_sd_turbo) */

    sd_rng gen;   /* prepare's generator: init noise, KL VAE samples */
    sd_rng frame; /* upstream's global generator: txt2img latents, sequential noise */
    sd_similar_filter filter;
    bool filter_on;

    /* persistent backend tensors (state arena, never reset) */
    sd_arena state;
    sd_tensor cond_embed, uncond_embed; /* [1, 77, C] */
    sd_tensor prompt_embeds;            /* [up to 2 * batch, 77, C], arranged per cfg */
    int prompt_rows;
    /* SDXL's added conditioning, host, arranged as prompt_embeds (row r of the UNet batch reads row
     * r): the pooled embedding of the prompt the row carries, and time_ids (H, W, 0, 0, H, W) */
    bool sdxl;
    int pooled_dim;
    float *cond_pooled, *uncond_pooled; /* [P] */
    float *pooled_rows;                 /* [2 * batch, P] */
    float *time_id_rows;                /* [2 * batch, 6] */
    bool has_prompt;
    sd_tensor init_noise, stock_noise; /* [batch, 4, h, w] */
    sd_tensor buffer;                  /* [(n - 1) * fb, 4, h, w] (stream batch, n > 1) */
    int64_t frames_done;               /* calls that ran the UNet */

    sd_arena frame_arena; /* per call, reset each frame */
    /* host staging, reserved at creation: [fb, 3, H, W] images in and out, [fb, 4, h, w] latents,
     * and the last output (what a frame the similarity filter skips returns) */
    float *host_images, *host_out, *host_x0, *host_noise, *last_output;
    float *host_zeros; /* zeros for resetting state tensors */
    /* device backends (be->device_memory): the 8-bit calls move frames as 8-bit RGB, converted on
     * the device, and x0 stays there between denoise and decode; the only copies of a frame are
     * its RGB in and out (state arena) */
    bool device_io;
    sd_tensor rgb_in, rgb_out; /* [fb, H, W, 3] U8 */
    sd_tensor x0_dev;          /* [fb, 4, h, w] */
    uint8_t *last_rgb;         /* the last 8-bit output (what a frame the filter skips returns) */
    bool has_output;
    sd_stream_timings timings;
    atomic_int stop_requested; /* sd_stream_request_stop */
};

/* stream_step.c: a call is denoise (encode, UNet, LCM steps -> x0 latents on the host) then
 * decode (x0 -> images), so the decode can run on another thread with its own backend.
 * host_noise stages the noise a call draws ([fb, 4, h, w]). */
sd_status sd_stream_denoise_img2img(sd_stream *s, const float *images, float *x0_host, int *skipped);
sd_status sd_stream_denoise_txt2img(sd_stream *s, float *x0_host);
/* The device_io forms: 8-bit frames in (uploaded to s->rgb_in, converted on the backend), x0 left
 * in s->x0_dev; then the decode from s->x0_dev to 8-bit frames (converted on the backend). */
sd_status sd_stream_denoise_img2img_rgb(sd_stream *s, const uint8_t *frames, int *skipped);
sd_status sd_stream_denoise_txt2img_dev(sd_stream *s);
sd_status sd_stream_decode_rgb(sd_stream *s, uint8_t *frames_out);
/* Touches no stream state but reads the model: safe on another thread while the next denoise runs. */
sd_status sd_stream_decode(sd_stream *s, sd_backend *be, sd_arena *arena, const float *x0_host, float *images_out);
size_t sd_stream_image_floats(const sd_stream *s);  /* fb * 3 * H * W */
size_t sd_stream_latent_floats(const sd_stream *s); /* fb * 4 * h * w */

/* The UNet on rows first..first+B of the arranged prompt (with SDXL's added conditioning). */
sd_status sd_stream_unet(sd_stream *s, sd_tensor *noise_pred, const sd_tensor *x, const float *timesteps);

/* Row view of a [B, ...] tensor (contiguous rows). */
sd_tensor sd_tensor_rows_view(const sd_tensor *t, int64_t first, int64_t count);

#endif
