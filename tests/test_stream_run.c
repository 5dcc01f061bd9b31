/* test_stream_run.c — sd_stream_run, the threaded pipeline: outputs in order and equal to the
 * synchronous API (frame k's output is call k + n - 1's, warm-up hidden and flushed at the end),
 * upstream's warm-up frames when asked, a slow live sink (bounded queues, drops counted, memory
 * flat), a fast live source (stale frames dropped), stop requests, and failing callbacks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

enum { W = 64, H = 64, FRAME = W * H * 3, MAX_FRAMES = 64 };

static sd_model *g_model;
static double g_frame_ms = 50.0; /* denoise + decode per frame, measured by test_in_order */

typedef struct source {
    int n, next;
    int stop_after; /* request a stop after this many frames (0: never) */
    int fail_at;    /* return -1 at this frame (0: never) */
    sd_stream *stream;
} source;

typedef struct sink {
    uint8_t *frames; /* MAX_FRAMES frames */
    int n;
    int delay_ms;
    int fail_at;
} sink;

static void frame(uint8_t *rgb, int seed) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                rgb[(y * W + x) * 3 + c] = (uint8_t)(127 + 120 * sin(0.05 * (x + 3 * seed) * (c + 1) + 0.07 * y * (seed % 5 + 1)));
}

static int source_read(void *user, uint8_t *rgb) {
    source *s = user;
    if (s->fail_at && s->next == s->fail_at) return -1;
    if (s->next >= s->n) return 0;
    if (s->stop_after && s->next == s->stop_after) sd_stream_request_stop(s->stream);
    frame(rgb, s->next++);
    return 1;
}

static int sink_write(void *user, const uint8_t *rgb) {
    sink *k = user;
    if (k->fail_at && k->n == k->fail_at) return -1;
    if (k->delay_ms) nanosleep(&(struct timespec){k->delay_ms / 1000, (k->delay_ms % 1000) * 1000000L}, NULL);
    if (k->n < MAX_FRAMES) memcpy(k->frames + (size_t)k->n * FRAME, rgb, FRAME);
    k->n++;
    return 0;
}

static sd_stream *make(void) {
    sd_stream_params p = sd_stream_params_default();
    p.width = W, p.height = H;
    p.cfg_type = SD_CFG_NONE;
    sd_stream *s = NULL;
    CHECK_OK(sd_stream_create(&s, g_model, &p)); /* t_index_list {32, 45}: a lag of one call */
    if (s) CHECK_OK(sd_stream_set_prompt(s, "a cat", NULL));
    return s;
}

/* Largest per-byte difference of two frames. */
static int max_diff(const uint8_t *a, const uint8_t *b) {
    int m = 0;
    for (int i = 0; i < FRAME; i++) m = abs(a[i] - b[i]) > m ? abs(a[i] - b[i]) : m;
    return m;
}

/* The synchronous reference: the same frames through sd_stream_img2img, then the last frame once
 * more (the flush). Reference output k + 1 is frame k's. */
static void reference(uint8_t *ref, int n) {
    sd_stream *s = make();
    uint8_t in[FRAME];
    for (int k = 0; s && k <= n; k++) {
        frame(in, k < n ? k : n - 1);
        CHECK_OK(sd_stream_img2img(s, in, ref + (size_t)k * FRAME, NULL));
    }
    sd_stream_free(s);
}

static void test_in_order(void) {
    enum { N = 6 };
    static uint8_t ref[(N + 1) * FRAME], got[MAX_FRAMES * FRAME];
    reference(ref, N);
    sd_stream *s = make();
    source src = {.n = N, .stream = s};
    sink snk = {.frames = got};
    sd_frame_source so = {source_read, &src, 0};
    sd_frame_sink si = {sink_write, &snk, 0};
    sd_run_stats st;
    CHECK_OK(sd_stream_run(s, &so, &si, NULL, &st));
    CHECK(st.frames_in == N && st.frames_out == N && snk.n == N, "frames in %lld, out %lld, written %d (expected %d each)",
          (long long)st.frames_in, (long long)st.frames_out, snk.n, N);
    for (int k = 0; k < N && k < snk.n; k++)
        CHECK(memcmp(got + (size_t)k * FRAME, ref + (size_t)(k + 1) * FRAME, FRAME) == 0,
              "output %d is frame %d's (the synchronous call %d); max diff %d", k, k, k + 1,
              max_diff(got + (size_t)k * FRAME, ref + (size_t)(k + 1) * FRAME));
    CHECK(st.dropped_in == 0 && st.dropped_out == 0, "nothing dropped from files");
    CHECK(st.fps > 0 && st.denoise_ms > 0 && st.decode_ms > 0, "stats: fps %.2f denoise %.1f ms decode %.1f ms", st.fps,
          st.denoise_ms, st.decode_ms);
    g_frame_ms = st.denoise_ms + st.decode_ms;
    sd_stream_free(s);

    /* emit_warmup: upstream's behaviour, output k is the synchronous call k */
    s = make();
    src = (source){.n = N, .stream = s};
    snk = (sink){.frames = got};
    sd_run_params rp = sd_run_params_default();
    rp.emit_warmup = 1;
    CHECK_OK(sd_stream_run(s, &so, &si, &rp, &st));
    CHECK(snk.n == N, "with warm-up frames: %d outputs", snk.n);
    for (int k = 0; k < N && k < snk.n; k++)
        CHECK(memcmp(got + (size_t)k * FRAME, ref + (size_t)k * FRAME, FRAME) == 0, "warm-up mode output %d is call %d", k, k);
    sd_stream_free(s);
}

static void test_slow_live_sink(void) {
    enum { N = 24 };
    static uint8_t got[MAX_FRAMES * FRAME];
    sd_stream *s = make();
    source src = {.n = N, .stream = s};
    /* a sink three times slower than the whole pipeline's frame time */
    sink snk = {.frames = got, .delay_ms = (int)(3 * g_frame_ms) + 1};
    sd_frame_source so = {source_read, &src, 0};
    sd_frame_sink si = {sink_write, &snk, 1};
    sd_run_params rp = sd_run_params_default();
    rp.queue_depth = 2;
    long before = check_rss_kb();
    sd_run_stats st;
    CHECK_OK(sd_stream_run(s, &so, &si, &rp, &st));
    long after = check_rss_kb();
    printf("sink delay %d ms; slow live sink: in %lld out %lld dropped_out %lld max output queue %d, RSS %ld -> %ld kB\n", snk.delay_ms, (long long)st.frames_in,
           (long long)st.frames_out, (long long)st.dropped_out, st.max_output_queue, before, after);
    printf("denoise %.1f decode %.1f ms\n", st.denoise_ms, st.decode_ms);
    CHECK(st.frames_in == N, "every input frame was read (%lld)", (long long)st.frames_in);
    CHECK(st.dropped_out > 0, "a slow live sink makes drops (%lld)", (long long)st.dropped_out);
    CHECK(st.frames_out + st.dropped_out == N, "every frame is written or counted as dropped (%lld + %lld)",
          (long long)st.frames_out, (long long)st.dropped_out);
    CHECK(st.max_output_queue <= rp.queue_depth + 1, "output queue stays bounded (%d)", st.max_output_queue);
    CHECK(after - before < 20 * 1024, "memory does not grow with the backlog (%ld kB)", after - before);
    sd_stream_free(s);
}

static void test_fast_live_source(void) {
    enum { N = 30 };
    static uint8_t got[MAX_FRAMES * FRAME];
    sd_stream *s = make();
    source src = {.n = N, .stream = s};
    sink snk = {.frames = got};
    sd_frame_source so = {source_read, &src, 1};
    sd_frame_sink si = {sink_write, &snk, 0};
    sd_run_stats st;
    CHECK_OK(sd_stream_run(s, &so, &si, NULL, &st));
    printf("fast live source: in %lld dropped_in %lld out %lld max input queue %d\n", (long long)st.frames_in,
           (long long)st.dropped_in, (long long)st.frames_out, st.max_input_queue);
    CHECK(st.dropped_in > 0, "a source faster than the denoiser has stale frames dropped (%lld)", (long long)st.dropped_in);
    CHECK(st.frames_out == st.frames_in - st.dropped_in, "each processed frame has its output (%lld = %lld - %lld)",
          (long long)st.frames_out, (long long)st.frames_in, (long long)st.dropped_in);
    CHECK(st.max_input_queue <= 3, "input queue bounded (%d)", st.max_input_queue);
    sd_stream_free(s);
}

static void test_stop_and_errors(void) {
    static uint8_t got[MAX_FRAMES * FRAME];
    sd_stream *s = make();
    source src = {.n = 1000, .stop_after = 3, .stream = s};
    sink snk = {.frames = got};
    sd_frame_source so = {source_read, &src, 0};
    sd_frame_sink si = {sink_write, &snk, 0};
    sd_run_stats st;
    CHECK_OK(sd_stream_run(s, &so, &si, NULL, &st));
    CHECK(st.frames_in >= 3 && st.frames_in <= 6, "a stop request ends the run soon (%lld frames read)", (long long)st.frames_in);

    src = (source){.n = 10, .fail_at = 4, .stream = s};
    snk = (sink){.frames = got};
    sd_status r = sd_stream_run(s, &so, &si, NULL, &st);
    CHECK(r == SD_ERR_IO && strstr(sd_last_error(), "frame source"), "a failing source fails the run: %s", sd_last_error());
    CHECK(strstr(sd_last_error(), "after 4 frames") != NULL, "the error says how far the source got: %s", sd_last_error());
    CHECK(st.frames_in == 4 && st.frames_out == 4 && snk.n == 4,
          "the 4 frames read before the failure are all written (%lld in, %lld out, %d written)", (long long)st.frames_in,
          (long long)st.frames_out, snk.n);

    src = (source){.n = 10, .stream = s};
    snk = (sink){.frames = got, .fail_at = 2};
    r = sd_stream_run(s, &so, &si, NULL, &st);
    CHECK(r == SD_ERR_IO && strstr(sd_last_error(), "frame sink"), "a failing sink fails the run: %s", sd_last_error());
    CHECK(sd_stream_run(s, NULL, &si, NULL, &st) == SD_ERR_ARG, "NULL source refused");
    sd_stream_free(s);
}

/* frames out == frames in for every frame_buffer_size: a last buffer the source does not fill is
 * padded and the padding's outputs dropped; the stream batch's flush covers it too. */
static void test_partial_buffers(void) {
    static uint8_t got[MAX_FRAMES * FRAME];
    for (int fb = 2; fb <= 3; fb++)
        for (int batch = 0; batch <= 1; batch++) {
            sd_stream_params p = sd_stream_params_default();
            p.width = W, p.height = H;
            p.cfg_type = SD_CFG_NONE;
            p.frame_buffer_size = fb;
            p.use_denoising_batch = batch;
            sd_stream *s = NULL;
            CHECK_OK(sd_stream_create(&s, g_model, &p));
            if (!s) continue;
            CHECK_OK(sd_stream_set_prompt(s, "a cat", NULL));
            source src = {.n = 5, .stream = s};
            sink snk = {.frames = got};
            sd_frame_source so = {source_read, &src, 0};
            sd_frame_sink si = {sink_write, &snk, 0};
            sd_run_stats st;
            CHECK_OK(sd_stream_run(s, &so, &si, NULL, &st));
            CHECK(st.frames_in == 5 && st.frames_out == 5 && snk.n == 5,
                  "fb %d, batch %d: 5 frames in -> %lld in, %lld out, %d written", fb, batch, (long long)st.frames_in,
                  (long long)st.frames_out, snk.n);
            /* a source failing inside a buffer: the frames before it still come out */
            src = (source){.n = 10, .fail_at = 4, .stream = s};
            snk = (sink){.frames = got};
            sd_status r = sd_stream_run(s, &so, &si, NULL, &st);
            CHECK(r == SD_ERR_IO && st.frames_in == 4 && snk.n == 4, "fb %d, batch %d: failure at frame 4 -> %s, %d written",
                  fb, batch, sd_status_name(r), snk.n);
            sd_stream_free(s);
        }
}

int main(void) {
    sd_model_params mp = sd_model_params_default();
    char model[4096], taesd[4096];
    snprintf(model, sizeof model, "%s", check_ref("models/tiny-sd15"));
    snprintf(taesd, sizeof taesd, "%s", check_ref("models/taesd"));
    mp.path = model, mp.taesd_path = taesd;
    CHECK_OK(sd_model_load(&g_model, &mp));
    if (!g_model) return check_finish();
    test_in_order();
    test_slow_live_sink();
    test_fast_live_source();
    test_stop_and_errors();
    test_partial_buffers();
    sd_model_free(g_model);
    return check_finish();
}
