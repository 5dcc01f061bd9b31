/* runner.c — sd_stream_run: a stream on a frame source, as three threads with bounded queues:
 *
 *   source -> [input thread: read, RGB -> [-1, 1] floats] -> input queue
 *          -> [calling thread: encode, UNet, LCM steps -> x0 latents] -> output queue
 *          -> [output thread: decode on its own backend, floats -> RGB, write] -> sink
 *
 * so conversion and decoding overlap the denoiser. Every buffer is allocated before the first
 * frame. Live sources drop their oldest waiting frame when the denoiser falls behind (the freshest
 * frame is what matters); live sinks drop outputs instead of stalling the denoiser; files block.
 *
 * No frame is lost silently: a last buffer that the source does not fill (frame_buffer_size > 1)
 * is padded with its last frame and the padding's outputs are dropped; a source that fails stops
 * the input only, so every frame read before the failure is still denoised, decoded and written
 * before the run returns the source's error. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/image.h"
#include "stream/frame_queue.h"
#include "base/clock.h"
#include "stream/stream_internal.h"

typedef struct runner {
    sd_stream *s;
    const sd_frame_source *src;
    const sd_frame_sink *sink;
    sd_run_params p;
    size_t frame_bytes, image_floats, latent_floats;
    int fb;

    sd_frame_queue in_q, out_q;
    uint8_t *in_rgb[SD_QUEUE_MAX_SLOTS];  /* fb frames each */
    float *in_chw[SD_QUEUE_MAX_SLOTS];
    int in_real[SD_QUEUE_MAX_SLOTS];      /* frames of the slot that came from the source; the rest pad */
    float *out_x0[SD_QUEUE_MAX_SLOTS];
    int out_skipped[SD_QUEUE_MAX_SLOTS];
    int out_real[SD_QUEUE_MAX_SLOTS];     /* outputs of the slot to write; the rest are padding's */

    /* output thread */
    sd_backend *decode_be;
    sd_arena decode_arena;
    float *out_chw;
    uint8_t *out_rgb, *last_rgb;
    bool has_last;

    /* results; the first failure wins, its message copied (messages are per thread) */
    pthread_mutex_t lock;
    sd_status status;
    char message[1024];
    atomic_llong frames_in, frames_out, skipped;
    atomic_bool failed; /* the denoiser, decoder or sink failed: stop everything */
    double preprocess_ms, denoise_ms, decode_ms, postprocess_ms;
} runner;

sd_run_params sd_run_params_default(void) {
    sd_run_params p;
    memset(&p, 0, sizeof p);
    p.queue_depth = 2;
    return p;
}

void sd_stream_request_stop(sd_stream *s) {
    if (s) atomic_store(&s->stop_requested, 1);
}

static void fail(runner *r, sd_status st, const char *msg) {
    pthread_mutex_lock(&r->lock);
    if (r->status == SD_OK) {
        r->status = st;
        snprintf(r->message, sizeof r->message, "%s", msg);
    }
    pthread_mutex_unlock(&r->lock);
    atomic_store(&r->failed, true);
    atomic_store(&r->s->stop_requested, 1);
    sd_frame_queue_close(&r->in_q);
    sd_frame_queue_close(&r->out_q);
}

/* A failed source ends the input but not the run: the frames already read still go through. */
static void source_failed(runner *r, const char *msg) {
    pthread_mutex_lock(&r->lock);
    if (r->status == SD_OK) {
        r->status = SD_ERR_IO;
        snprintf(r->message, sizeof r->message, "%.1000s", msg);
    }
    pthread_mutex_unlock(&r->lock);
}

static bool stopping(runner *r) { return atomic_load(&r->s->stop_requested) != 0; }

/* Input thread: fb frames per slot, converted to floats here so the denoiser only computes. */
static void *input_main(void *arg) {
    runner *r = arg;
    for (;;) {
        if (stopping(r)) break;
        if (r->p.max_frames > 0 && atomic_load(&r->frames_in) >= r->p.max_frames) break;
        int slot = sd_frame_queue_acquire(&r->in_q);
        if (slot < 0) break;
        int got = 1, real = 0;
        for (; real < r->fb; real++) {
            got = r->src->read(r->src->user, r->in_rgb[slot] + (size_t)real * r->frame_bytes);
            if (got != 1) break;
        }
        if (got < 0) {
            char msg[1100];
            snprintf(msg, sizeof msg, "frame source: read failed after %lld frames%s%s",
                     (long long)atomic_load(&r->frames_in) + real, sd_last_error()[0] ? ": " : "", sd_last_error());
            source_failed(r, msg);
        }
        if (real == 0) {
            sd_frame_queue_release(&r->in_q, slot);
            break;
        }
        for (int f = real; f < r->fb; f++) /* pad a partial last buffer with its last frame */
            memcpy(r->in_rgb[slot] + (size_t)f * r->frame_bytes, r->in_rgb[slot] + (size_t)(real - 1) * r->frame_bytes,
                   r->frame_bytes);
        r->in_real[slot] = real;
        double t0 = sd_now_ms();
        for (int f = 0; f < r->fb; f++) {
            sd_image img = {r->s->p.width, r->s->p.height, r->in_rgb[slot] + (size_t)f * r->frame_bytes};
            sd_image_to_chw(r->in_chw[slot] + (size_t)f * (r->image_floats / (size_t)r->fb), &img);
        }
        r->preprocess_ms += sd_now_ms() - t0;
        atomic_fetch_add(&r->frames_in, real);
        sd_frame_queue_publish(&r->in_q, slot);
        if (real < r->fb) break; /* the source ended or failed inside this buffer */
    }
    sd_frame_queue_close(&r->in_q);
    return NULL;
}

/* Output thread: decode on its own backend, convert, write; skipped frames repeat the last. */
static void *output_main(void *arg) {
    runner *r = arg;
    int slot;
    while ((slot = sd_frame_queue_take(&r->out_q)) >= 0) {
        int n_write = r->out_real[slot]; /* 0: a warm-up output of the stream batch */
        bool write = n_write > 0;
        if (r->out_skipped[slot] && r->has_last) {
            memcpy(r->out_rgb, r->last_rgb, (size_t)r->fb * r->frame_bytes);
            atomic_fetch_add(&r->skipped, n_write);
        } else if (!r->out_skipped[slot]) {
            double t0 = sd_now_ms();
            sd_status st = sd_stream_decode(r->s, r->decode_be, &r->decode_arena, r->out_x0[slot], r->out_chw);
            double t1 = sd_now_ms();
            if (st != SD_OK) {
                sd_frame_queue_release(&r->out_q, slot);
                fail(r, st, sd_last_error());
                break;
            }
            for (int f = 0; f < r->fb; f++) {
                sd_image img = {r->s->p.width, r->s->p.height, r->out_rgb + (size_t)f * r->frame_bytes};
                sd_image_from_chw(&img, r->out_chw + (size_t)f * (r->image_floats / (size_t)r->fb));
            }
            memcpy(r->last_rgb, r->out_rgb, (size_t)r->fb * r->frame_bytes);
            r->has_last = true;
            r->decode_ms += t1 - t0;
            r->postprocess_ms += sd_now_ms() - t1;
        } else {
            write = false; /* nothing decoded yet to repeat */
        }
        sd_frame_queue_release(&r->out_q, slot);
        if (!write) continue;
        for (int f = 0; f < n_write; f++) {
            if (r->sink->write(r->sink->user, r->out_rgb + (size_t)f * r->frame_bytes) != 0) {
                char msg[1100];
                snprintf(msg, sizeof msg, "frame sink: write failed after %lld frames%s%s", (long long)atomic_load(&r->frames_out),
                         sd_last_error()[0] ? ": " : "", sd_last_error());
                fail(r, SD_ERR_IO, msg);
                return NULL;
            }
            atomic_fetch_add(&r->frames_out, 1);
        }
    }
    return NULL;
}

/* One denoiser call on input slot data; publishes its x0 (or a skip) to the output queue. */
static bool denoise(runner *r, const float *chw, int real) {
    int slot = sd_frame_queue_acquire(&r->out_q);
    if (slot < 0) return false;
    double t0 = sd_now_ms();
    int skipped = 0;
    sd_status st = sd_stream_denoise_img2img(r->s, chw, r->out_x0[slot], &skipped);
    r->denoise_ms += sd_now_ms() - t0;
    if (st != SD_OK) {
        sd_frame_queue_release(&r->out_q, slot);
        fail(r, st, sd_last_error());
        return false;
    }
    r->out_skipped[slot] = skipped;
    r->out_real[slot] = real;
    sd_frame_queue_publish(&r->out_q, slot);
    return true;
}

static sd_status reserve(runner *r) {
    int depth = r->p.queue_depth;
    for (int i = 0; i < depth + 1; i++) {
        r->in_rgb[i] = malloc((size_t)r->fb * r->frame_bytes);
        r->in_chw[i] = malloc(r->image_floats * sizeof(float));
        r->out_x0[i] = malloc(r->latent_floats * sizeof(float));
        if (!r->in_rgb[i] || !r->in_chw[i] || !r->out_x0[i]) return sd_fail(SD_ERR_NOMEM, "sd_stream_run: out of memory");
    }
    r->out_chw = malloc(r->image_floats * sizeof(float));
    r->out_rgb = malloc((size_t)r->fb * r->frame_bytes);
    r->last_rgb = malloc((size_t)r->fb * r->frame_bytes);
    if (!r->out_chw || !r->out_rgb || !r->last_rgb) return sd_fail(SD_ERR_NOMEM, "sd_stream_run: out of memory");
    /* the decoder's own backend, with the denoiser's thread count by default: results then do not
     * depend on where the decode ran (a GEMM's summation order can follow its thread count) */
    int threads = r->p.decode_threads > 0 ? r->p.decode_threads : r->s->model->backend->n_threads;
    SD_TRY(sd_model_backend_create(r->s->model, threads, &r->decode_be));
    sd_allocator alloc = sd_backend_allocator(r->decode_be); /* the decoder's activations: its memory */
    sd_arena_init_with(&r->decode_arena, &alloc);
    return SD_OK;
}

static void release_all(runner *r) {
    for (int i = 0; i < SD_QUEUE_MAX_SLOTS; i++) {
        free(r->in_rgb[i]);
        free(r->in_chw[i]);
        free(r->out_x0[i]);
    }
    free(r->out_chw);
    free(r->out_rgb);
    free(r->last_rgb);
    sd_arena_free(&r->decode_arena); /* through its backend: first */
    sd_backend_free(r->decode_be);
}

sd_status sd_stream_run(sd_stream *s, const sd_frame_source *source, const sd_frame_sink *sink,
                        const sd_run_params *params, sd_run_stats *stats) {
    SD_CHECK_ARG(s && source && source->read && sink && sink->write, "sd_stream_run: stream, source and sink are required");
    if (!s->has_prompt) return sd_fail(SD_ERR_STATE, "sd_stream_run: set a prompt before running");
    runner *r = calloc(1, sizeof *r);
    if (!r) return sd_fail(SD_ERR_NOMEM, "sd_stream_run: out of memory");
    r->s = s;
    r->src = source;
    r->sink = sink;
    r->p = params ? *params : sd_run_params_default();
    if (r->p.queue_depth < 1) r->p.queue_depth = 1;
    if (r->p.queue_depth > SD_QUEUE_MAX_SLOTS - 1) r->p.queue_depth = SD_QUEUE_MAX_SLOTS - 1;
    r->fb = s->fb;
    r->frame_bytes = (size_t)s->p.width * (size_t)s->p.height * 3;
    r->image_floats = sd_stream_image_floats(s);
    r->latent_floats = sd_stream_latent_floats(s);
    pthread_mutex_init(&r->lock, NULL);
    sd_arena_init(&r->decode_arena);
    atomic_store(&s->stop_requested, 0);
    /* one slot more than the depth: the one being worked on */
    sd_frame_queue_init(&r->in_q, r->p.queue_depth + 1, source->live);
    sd_frame_queue_init(&r->out_q, r->p.queue_depth + 1, sink->live);
    sd_status st = reserve(r);
    double t_start = sd_now_ms();
    pthread_t in_thread, out_thread;
    bool in_started = false, out_started = false;
    if (st == SD_OK) {
        in_started = pthread_create(&in_thread, NULL, input_main, r) == 0;
        out_started = in_started && pthread_create(&out_thread, NULL, output_main, r) == 0;
        if (!out_started) st = sd_fail(SD_ERR_NOMEM, "sd_stream_run: cannot start threads");
    }
    if (st == SD_OK) {
        int64_t calls = 0;
        int slot;
        /* the last input, kept to flush the stream batch at the end */
        float *last = s->host_images;
        bool have_last = false;
        /* With the stream batch the output of call k belongs to the input of call k - (n - 1):
         * it is written for as many frames as that input held (0 for the warm-up outputs). */
        int lag = s->p.use_denoising_batch && !r->p.emit_warmup ? s->n_steps - 1 : 0;
        int real_of_call[2 * SD_MAX_T_INDEX] = {0}; /* ring over the last calls' real frame counts */
        enum { RING = 2 * SD_MAX_T_INDEX };
        while ((slot = sd_frame_queue_take(&r->in_q)) >= 0) {
            memcpy(last, r->in_chw[slot], r->image_floats * sizeof(float));
            have_last = true;
            real_of_call[calls % RING] = r->in_real[slot];
            sd_frame_queue_release(&r->in_q, slot);
            int real = calls >= lag ? real_of_call[(calls - lag) % RING] : 0;
            if (!denoise(r, last, real)) break;
            calls++;
        }
        /* flush: the last frame again until every real frame has left the stream batch */
        for (int i = 0; i < lag && have_last && !atomic_load(&r->failed); i++) {
            int real = calls >= lag ? real_of_call[(calls - lag) % RING] : 0;
            if (!denoise(r, last, real)) break;
            calls++;
        }
        sd_frame_queue_close(&r->out_q);
    }
    if (in_started) {
        sd_frame_queue_close(&r->in_q);
        pthread_join(in_thread, NULL);
    }
    if (out_started) pthread_join(out_thread, NULL);
    if (st == SD_OK && r->status != SD_OK) st = sd_fail(r->status, "%s", r->message);

    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->frames_in = atomic_load(&r->frames_in);
        stats->frames_out = atomic_load(&r->frames_out);
        stats->dropped_in = r->in_q.drops * r->fb;
        stats->dropped_out = r->out_q.drops * r->fb;
        stats->skipped = atomic_load(&r->skipped);
        stats->seconds = (sd_now_ms() - t_start) / 1e3;
        stats->fps = stats->seconds > 0 ? (double)stats->frames_out / stats->seconds : 0.0;
        double n_in = stats->frames_in > 0 ? (double)stats->frames_in : 1.0, n_out = stats->frames_out > 0 ? (double)stats->frames_out : 1.0;
        stats->preprocess_ms = r->preprocess_ms / n_in;
        stats->denoise_ms = r->denoise_ms / n_in;
        stats->decode_ms = r->decode_ms / n_out;
        stats->postprocess_ms = r->postprocess_ms / n_out;
        stats->max_input_queue = r->in_q.max_ready;
        stats->max_output_queue = r->out_q.max_ready;
    }
    sd_frame_queue_destroy(&r->in_q);
    sd_frame_queue_destroy(&r->out_q);
    pthread_mutex_destroy(&r->lock);
    release_all(r);
    free(r);
    return st;
}
