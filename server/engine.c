/* engine.c — the thread that runs the model for every session, one frame at a time, in turn.
 *
 * Streams of one model share its backend, so frames of different sessions never run at once; the
 * engine visits the sessions round-robin, so each active session gets every n-th frame slot
 * whatever its clients send. Per frame: apply a pending config (live setters where they suffice, a
 * new sd_stream where the shape changes, the prompt encoded only when it changed), decode the
 * latest JPEG, run sd_stream_img2img (or txt2img), encode the output JPEG and hand it to the network
 * thread. Decode/encode failures and invalid configs become error messages to that client only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jpeg_codec.h"
#include "server_internal.h"

typedef struct engine_session {
    sd_stream *stream;      /* NULL until a config was applied (or after one was refused) */
    serve_config applied;   /* what the stream runs with */
    uint8_t *rgb_in, *rgb_out;
    size_t rgb_cap;
    byte_buf jpeg_in;       /* the input taken from the session slot (swapped, not copied) */
    byte_buf out_msg;       /* the output being encoded (swapped into the session slot) */
    /* The stream batch's lag: the output of call k belongs to the input of call k - (n - 1); the
     * first n - 1 outputs come from the empty initial buffer and are not sent (as the CLI). */
    uint32_t ids[SD_MAX_T_INDEX];
    int64_t calls;
    double fps_ema, last_out_ms;
    double decode_ms, denoise_ms, encode_ms;
} engine_session;

double serve_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

void engine_session_free(session *s) {
    engine_session *e = s->eng;
    if (e) {
        sd_stream_free(e->stream);
        free(e->rgb_in);
        free(e->rgb_out);
        byte_buf_free(&e->jpeg_in);
        byte_buf_free(&e->out_msg);
        free(e);
    }
    byte_buf_free(&s->in_jpeg);
    byte_buf_free(&s->out_msg);
    free(s);
}

/* Messages produced outside the lock, delivered under it. */
typedef struct engine_out {
    char text[2][SESSION_TEXT_MAX];
    int n_text;
    bool has_frame, skipped, encoded_prompt, created_stream, frame_error;
} engine_out;

static void out_error(engine_out *o, const char *code, const char *message) {
    if (o->n_text < 2) serve_format_error(o->text[o->n_text++], SESSION_TEXT_MAX, code, message);
}

static int ensure_pixels(engine_session *e, int width, int height) {
    size_t need = (size_t)width * (size_t)height * 3;
    if (need <= e->rgb_cap) return 0;
    uint8_t *a = realloc(e->rgb_in, need), *b = NULL;
    if (a) e->rgb_in = a;
    b = a ? realloc(e->rgb_out, need) : NULL;
    if (!a || !b) return -1;
    e->rgb_out = b;
    e->rgb_cap = need;
    return 0;
}

/* Brings the stream to the requested config. Returns 0 when a stream is ready. */
static int apply_config(server *srv, engine_session *e, const serve_config *want, engine_out *o) {
    sd_status st = SD_OK;
    bool fresh = !e->stream || serve_config_needs_new_stream(&e->applied, want);
    if (fresh) {
        sd_stream_free(e->stream);
        e->stream = NULL;
        sd_stream_params p;
        serve_config_to_params(want, &p);
        if (ensure_pixels(e, want->width, want->height) != 0) {
            out_error(o, "stream", "out of memory for the frame buffers");
            return -1;
        }
        st = sd_stream_create(&e->stream, srv->model, &p);
        if (st != SD_OK) {
            out_error(o, "stream", sd_last_error());
            return -1;
        }
        e->calls = 0;
        o->created_stream = true;
    } else {
        if (want->guidance != e->applied.guidance || want->delta != e->applied.delta)
            st = sd_stream_set_guidance(e->stream, want->guidance, want->delta);
        if (st == SD_OK && want->seed != e->applied.seed) st = sd_stream_set_seed(e->stream, want->seed);
        if (st == SD_OK && memcmp(want->t_index_list, e->applied.t_index_list, sizeof want->t_index_list) != 0)
            st = sd_stream_set_t_index_list(e->stream, want->t_index_list, want->n_t_index);
    }
    /* the text encoder runs only for a new prompt (or a new stream, which has none yet) */
    if (st == SD_OK && (fresh || strcmp(want->prompt, e->applied.prompt) != 0 ||
                        strcmp(want->negative_prompt, e->applied.negative_prompt) != 0)) {
        st = sd_stream_set_prompt(e->stream, want->prompt, want->negative_prompt);
        o->encoded_prompt = st == SD_OK;
    }
    if (st != SD_OK) {
        out_error(o, "stream", sd_last_error());
        /* the stream may be half-updated: rebuild it on the next config */
        sd_stream_free(e->stream);
        e->stream = NULL;
        return -1;
    }
    e->applied = *want;
    if (o->n_text < 2 && serve_format_config(want, o->text[o->n_text], SESSION_TEXT_MAX) > 0) o->n_text++;
    return 0;
}

/* Encodes rgb_out into out_msg behind the frame header. */
static int encode_output(jpeg_codec *codec, engine_session *e, uint32_t id, uint32_t flags, engine_out *o) {
    const serve_config *c = &e->applied;
    size_t cap = SERVE_TX_HEADROOM + SERVE_FRAME_HEADER + jpeg_max_size(c->width, c->height);
    char err[256];
    if (byte_buf_reserve(&e->out_msg, cap) != 0) {
        out_error(o, "stream", "out of memory for the output frame");
        return -1;
    }
    double t0 = serve_now_ms();
    uint8_t *body = e->out_msg.data + SERVE_TX_HEADROOM;
    size_t n = jpeg_encode_rgb(codec, e->rgb_out, c->width, c->height, c->jpeg_quality, body + SERVE_FRAME_HEADER,
                               cap - SERVE_TX_HEADROOM - SERVE_FRAME_HEADER, err, sizeof err);
    if (n == 0) {
        out_error(o, "stream", err);
        return -1;
    }
    serve_put_frame_header(body, id, flags);
    e->out_msg.len = SERVE_TX_HEADROOM + SERVE_FRAME_HEADER + n;
    e->encode_ms = serve_now_ms() - t0;
    o->has_frame = true;
    return 0;
}

/* Runs one unit of work for a session outside the lock. want is set whenever the session has no
 * stream yet (engine_main), so past apply_config there is one. */
static void run_session(server *srv, jpeg_codec *codec, engine_session *e, const serve_config *want, bool has_input,
                        uint32_t in_id, bool txt2img, uint32_t t2i_id, engine_out *o) {
    if (want && apply_config(srv, e, want, o) != 0) {
        o->frame_error = has_input || txt2img; /* the frame or request waiting on that config is lost */
        return;
    }
    if (!has_input && !txt2img) return;
    const serve_config *c = &e->applied;
    int skipped = 0;
    uint32_t out_id = 0;
    sd_status st;
    double t0 = serve_now_ms();
    if (has_input && c->mode == SERVE_MODE_IMG2IMG) {
        char err[256];
        if (jpeg_decode_rgb(codec, e->jpeg_in.data, e->jpeg_in.len, c->width, c->height, e->rgb_in, err, sizeof err) != 0) {
            out_error(o, "bad_frame", err);
            o->frame_error = true;
            return;
        }
        double t1 = serve_now_ms();
        e->decode_ms = t1 - t0;
        st = sd_stream_img2img(e->stream, e->rgb_in, e->rgb_out, &skipped);
        e->denoise_ms = serve_now_ms() - t1;
        int n = c->n_t_index;
        e->ids[e->calls % n] = in_id;
        int64_t k = e->calls++;
        if (st == SD_OK && k < n - 1) return; /* warm-up output: the empty initial buffer */
        out_id = e->ids[(k - (n - 1)) % n];
    } else if (txt2img && c->mode == SERVE_MODE_TXT2IMG) {
        st = sd_stream_txt2img(e->stream, e->rgb_out);
        e->decode_ms = 0;
        e->denoise_ms = serve_now_ms() - t0;
        out_id = t2i_id;
    } else {
        out_error(o, "bad_message", has_input ? "a frame arrived in txt2img mode (send {\"type\":\"config\",\"mode\":\"img2img\"})"
                                              : "a txt2img request arrived in img2img mode");
        return;
    }
    if (st != SD_OK) {
        out_error(o, "stream", sd_last_error());
        o->frame_error = true;
        return;
    }
    o->skipped = skipped != 0;
    encode_output(codec, e, out_id, skipped ? 1u : 0u, o);
}

/* Next session with work, round-robin; frees closed idle ones on the way. Under the lock. */
static session *pick_work(server *srv) {
    for (int i = 0; i < srv->n_slots; i++) {
        int k = (srv->rr_next + i) % srv->n_slots;
        session *s = srv->sessions[k];
        if (!s || s->engine_busy) continue;
        if (s->closed) {
            srv->sessions[k] = NULL;
            engine_session_free(s); /* sd_stream_free only releases memory: quick */
            continue;
        }
        if (s->state != SESSION_ACTIVE) continue;
        if (s->config_dirty || s->in_full || s->txt2img_requested) {
            srv->rr_next = (k + 1) % srv->n_slots;
            return s;
        }
    }
    return NULL;
}

static void add_stage(stage_time *t, double ms) {
    t->seconds += ms * 1e-3;
    t->count++;
}

/* Once a second, each active session gets a stats message (replacing an unsent one). */
static bool push_stats(server *srv, double now) {
    bool any = false;
    for (int i = 0; i < srv->n_slots; i++) {
        session *s = srv->sessions[i];
        if (!s || s->closed || s->state != SESSION_ACTIVE || now - s->last_stats_ms < 1000.0) continue;
        engine_session *e = s->eng;
        char text[SESSION_TEXT_MAX];
        snprintf(text, sizeof text,
                 "{\"type\":\"stats\",\"frames_in\":%lld,\"frames_out\":%lld,\"dropped_in\":%lld,\"dropped_out\":%lld,"
                 "\"skipped\":%lld,\"errors\":%lld,\"fps\":%.3f,\"decode_ms\":%.2f,\"denoise_ms\":%.2f,\"encode_ms\":%.2f}",
                 (long long)s->frames_in, (long long)s->frames_out, (long long)s->dropped_in, (long long)s->dropped_out,
                 (long long)s->skipped, (long long)s->errors, e ? e->fps_ema : 0.0, e ? e->decode_ms : 0.0,
                 e ? e->denoise_ms : 0.0, e ? e->encode_ms : 0.0);
        session_set_stats(s, text);
        s->last_stats_ms = now;
        any = true;
    }
    return any;
}

void *engine_main(void *arg) {
    server *srv = arg;
    jpeg_codec *codec = jpeg_codec_create();
    pthread_mutex_lock(&srv->lock);
    while (!srv->engine_stop) {
        session *s = codec ? pick_work(srv) : NULL;
        if (!s) {
            bool wake = push_stats(srv, serve_now_ms());
            if (wake) {
                pthread_mutex_unlock(&srv->lock);
                server_wake_network(srv);
                pthread_mutex_lock(&srv->lock);
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&srv->wake, &srv->lock, &ts);
            continue;
        }
        if (!s->eng) s->eng = calloc(1, sizeof *s->eng);
        engine_session *e = s->eng;
        if (!e) break;
        /* take the work: the config by value, the frame by swapping buffers */
        serve_config want;
        /* a session's first frame or request builds its stream from the current config */
        bool has_config = s->config_dirty || !e->stream;
        if (has_config) want = s->config;
        s->config_dirty = false;
        bool has_input = s->in_full;
        uint32_t in_id = s->in_id;
        if (has_input) {
            byte_buf t = e->jpeg_in;
            e->jpeg_in = s->in_jpeg;
            s->in_jpeg = t;
            s->in_full = false;
        }
        bool txt2img = s->txt2img_requested;
        uint32_t t2i_id = s->txt2img_id;
        s->txt2img_requested = false;
        s->engine_busy = true;
        pthread_mutex_unlock(&srv->lock);

        engine_out o;
        memset(&o, 0, sizeof o);
        run_session(srv, codec, e, has_config ? &want : NULL, has_input, in_id, txt2img, t2i_id, &o);
        double now = serve_now_ms();

        pthread_mutex_lock(&srv->lock);
        s->engine_busy = false;
        server_counters *k = &srv->counters;
        for (int i = 0; i < o.n_text; i++) session_push_text(s, o.text[i]);
        if (o.encoded_prompt) k->prompt_encodes++;
        if (o.created_stream) k->stream_creates++;
        if (o.frame_error) {
            k->frame_errors++;
            s->errors++;
        }
        if (o.has_frame) {
            byte_buf t = s->out_msg;
            s->out_msg = e->out_msg;
            e->out_msg = t;
            if (s->out_full) {
                s->dropped_out++;
                k->dropped_out++;
            }
            s->out_full = true;
            s->frames_out++;
            k->frames_out++;
            if (o.skipped) {
                s->skipped++;
                k->skipped++;
            }
            if (has_input) add_stage(&k->decode_jpeg, e->decode_ms);
            add_stage(&k->denoise, e->denoise_ms);
            add_stage(&k->encode_jpeg, e->encode_ms);
            if (e->last_out_ms > 0) {
                double fps = 1000.0 / (now - e->last_out_ms + 1e-9);
                e->fps_ema = e->fps_ema > 0 ? 0.8 * e->fps_ema + 0.2 * fps : fps;
            }
            e->last_out_ms = now;
        }
        /* stats are due even while the engine never idles */
        bool notify = o.has_frame || o.n_text > 0;
        notify = push_stats(srv, now) || notify;
        pthread_mutex_unlock(&srv->lock);
        if (notify) server_wake_network(srv);
        pthread_mutex_lock(&srv->lock);
    }
    pthread_mutex_unlock(&srv->lock);
    jpeg_codec_free(codec);
    return NULL;
}
