/* cmd_stream.c — `sdstream stream`: StreamDiffusion on a live or recorded video. Frames come from an
 * image folder, a .y4m file or stdin (y4m, or raw RGB with --size), or a V4L2 camera, and go to a
 * .y4m file or stdout, an image folder, or a V4L2 loopback device, through sd_stream_run's three
 * threads. Progress and, at the end, fps and per-stage timings go to stderr (--json-stats: JSON
 * lines for machines). Ctrl-C finishes the frames in flight and exits cleanly.
 *
 *   ffmpeg -i in.mp4 -f yuv4mpegpipe - | sdstream stream --model M --prompt P --input - --output - | ffmpeg -i - out.mp4
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "frame_io.h"

static sd_stream *volatile g_stream; /* for the signal handler */

static void on_signal(int sig) {
    (void)sig;
    if (g_stream) sd_stream_request_stop(g_stream); /* an atomic store: async-signal-safe */
}

typedef struct io_ctx {
    frame_source *src;
    frame_sink *sink;
    bool json;
    long frames_out;
    double last_report, start; /* cli_now_ms() */
} io_ctx;

static int read_frame(void *user, uint8_t *rgb) {
    io_ctx *c = user;
    int r = frame_source_read(c->src, rgb);
    if (r < 0) fprintf(stderr, "error: %s\n", frame_source_error(c->src));
    return r;
}

static int write_frame(void *user, const uint8_t *rgb) {
    io_ctx *c = user;
    if (frame_sink_write(c->sink, rgb) != 0) {
        fprintf(stderr, "error: %s\n", frame_sink_error(c->sink));
        return -1;
    }
    c->frames_out++;
    if (cli_now_ms() - c->last_report >= 2000.0) {
        double t = (cli_now_ms() - c->start) * 1e-3;
        if (c->json) fprintf(stderr, "{\"frames_out\": %ld, \"seconds\": %.3f, \"fps\": %.3f}\n", c->frames_out, t, c->frames_out / t);
        else fprintf(stderr, "%ld frames, %.2f fps\n", c->frames_out, c->frames_out / t);
        c->last_report = cli_now_ms();
    }
    return 0;
}

static void print_stats(const sd_run_stats *st, bool json) {
    if (json) {
        fprintf(stderr,
                "{\"frames_in\": %lld, \"frames_out\": %lld, \"dropped_in\": %lld, \"dropped_out\": %lld, \"skipped\": %lld, "
                "\"seconds\": %.3f, \"fps\": %.3f, \"preprocess_ms\": %.3f, \"denoise_ms\": %.3f, \"decode_ms\": %.3f, "
                "\"postprocess_ms\": %.3f, \"max_input_queue\": %d, \"max_output_queue\": %d}\n",
                (long long)st->frames_in, (long long)st->frames_out, (long long)st->dropped_in, (long long)st->dropped_out,
                (long long)st->skipped, st->seconds, st->fps, st->preprocess_ms, st->denoise_ms, st->decode_ms,
                st->postprocess_ms, st->max_input_queue, st->max_output_queue);
        return;
    }
    fprintf(stderr,
            "%lld frames in, %lld out (%lld stale inputs dropped, %lld outputs dropped, %lld skipped as similar) in %.1f s: "
            "%.2f fps\nper frame: preprocess %.1f ms, denoise (encode + UNet) %.1f ms, decode %.1f ms, postprocess %.1f ms\n",
            (long long)st->frames_in, (long long)st->frames_out, (long long)st->dropped_in, (long long)st->dropped_out,
            (long long)st->skipped, st->seconds, st->fps, st->preprocess_ms, st->denoise_ms, st->decode_ms, st->postprocess_ms);
}

int cmd_stream(int argc, char **argv) {
    args a = {0};
    cli_add_model_options(&a);
    args_add(&a, "prompt", false, "the prompt (required)");
    args_add(&a, "negative-prompt", false, "negative prompt (cfg full/initialize)");
    args_add(&a, "input", false, "image folder, FILE.y4m, - (stdin), or /dev/videoN (required)");
    args_add(&a, "output", false, "FILE.y4m, - (stdout), an image folder, or /dev/videoN (v4l2loopback) (required)");
    args_add(&a, "size", false, "WxH: the input is raw RGB24 frames of this size (stdin or a file)");
    args_add(&a, "t-index-list", false, "steps as schedule indices (default 32,45)");
    args_add(&a, "strength", false, "0..1, one step (instead of --t-index-list)");
    args_add(&a, "steps", false, "num_inference_steps of the LCM schedule (default 50)");
    args_add(&a, "cfg-type", false, "none|full|self|initialize (default self)");
    args_add(&a, "guidance", false, "guidance scale (default 1.2; none forces 1)");
    args_add(&a, "delta", false, "RCFG delta (default 1.0)");
    args_add(&a, "seed", false, "noise seed (default 2)");
    args_add(&a, "width", false, "output width, multiple of 8 (default 512); frames are scaled and cropped");
    args_add(&a, "height", false, "output height, multiple of 8 (default 512)");
    args_add(&a, "frame-buffer-size", false, "frames per denoiser call (default 1)");
    args_add(&a, "no-batch", true, "run the steps one after another instead of the stream batch");
    args_add(&a, "similar-filter", false, "skip frames more similar than THRESHOLD (e.g. 0.98) to the last");
    args_add(&a, "similar-filter-max-skip", false, "at most this many skips in a row (default 10)");
    args_add(&a, "max-frames", false, "stop after N input frames");
    args_add(&a, "emit-warmup", true, "also emit the first n-1 (brown) frames of the stream batch, as upstream");
    args_add(&a, "queue", false, "frames waiting per queue (default 2)");
    args_add(&a, "json-stats", true, "progress and final statistics as JSON lines on stderr");
    args_add(&a, "vae", true, "use the model's full VAE even when --taesd is given");
    int rc = args_parse(&a, argc, argv);
    const char *prompt = args_get(&a, "prompt"), *in = args_get(&a, "input"), *out = args_get(&a, "output");
    if (rc || args_flag(&a, "help") || !prompt || !in || !out || a.n_positional) {
        fprintf(stderr, "usage: sdstream stream --model M --prompt TEXT --input SRC --output DST [options]\n"
                        "  ffmpeg -i in.mp4 -f yuv4mpegpipe - | sdstream stream --model M --prompt P --input - --output - "
                        "| ffmpeg -i - out.mp4\n");
        args_print_options(&a);
        return rc ? rc : (args_flag(&a, "help") ? 0 : 2);
    }
    sd_stream_params p = sd_stream_params_default();
    if (cli_stream_params(&a, &p)) return 2;
    long v;
    double d;
    const char *s;
    if ((s = args_get(&a, "delta")) && cli_parse_float(s, "delta", -100.0, 100.0, &d)) return 2;
    if (s) p.delta = (float)d;
    if ((s = args_get(&a, "frame-buffer-size")) && cli_parse_int(s, "frame-buffer-size", 1, 8, &v)) return 2;
    if (s) p.frame_buffer_size = (int)v;
    if (args_flag(&a, "no-batch")) p.use_denoising_batch = 0;
    if ((s = args_get(&a, "similar-filter")) && cli_parse_float(s, "similar-filter", 0.0, 1.0, &d)) return 2;
    if (s) p.similar_filter_threshold = (float)d;
    if ((s = args_get(&a, "similar-filter-max-skip")) && cli_parse_int(s, "similar-filter-max-skip", 0, 100000, &v)) return 2;
    if (s) p.similar_filter_max_skip = (int)v;
    sd_run_params rp = sd_run_params_default();
    if ((s = args_get(&a, "max-frames")) && cli_parse_int(s, "max-frames", 1, 0x7fffffffL, &v)) return 2;
    if (s) rp.max_frames = v;
    if ((s = args_get(&a, "queue")) && cli_parse_int(s, "queue", 1, 8, &v)) return 2;
    if (s) rp.queue_depth = (int)v;
    rp.emit_warmup = args_flag(&a, "emit-warmup");
    const char *raw = args_get(&a, "size");
    int rw, rh;
    if (raw && !frame_parse_size(raw, &rw, &rh)) {
        fprintf(stderr, "error: --size must be WxH, e.g. 640x480 (got '%s')\n", raw);
        return 2;
    }

    char err[1024];
    frame_source *src = frame_source_open(in, p.width, p.height, raw, err, sizeof err);
    if (!src) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    frame_sink *sink = frame_sink_open(out, p.width, p.height, frame_source_fps(src), err, sizeof err);
    if (!sink) {
        fprintf(stderr, "error: %s\n", err);
        frame_source_close(src);
        return 1;
    }
    sd_model *model = cli_load_model(&a, cli_pipeline_components(&a));
    sd_stream *stream = NULL;
    sd_status st = model ? sd_stream_create(&stream, model, &p) : SD_ERR_ARG;
    if (model && st == SD_OK) st = sd_stream_set_prompt(stream, prompt, args_get(&a, "negative-prompt"));
    if (model && st == SD_OK) {
        fprintf(stderr, "streaming %s -> %s at %d x %d with %s\n", in, out, p.width, p.height, sd_model_describe(model));
        io_ctx c = {.src = src, .sink = sink, .json = args_flag(&a, "json-stats")};
        c.start = c.last_report = cli_now_ms();
        sd_frame_source so = {read_frame, &c, frame_source_is_live(src)};
        sd_frame_sink si = {write_frame, &c, frame_spec_is_v4l2(out)};
        g_stream = stream;
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN); /* a closed stdout becomes a write error, not a kill */
        sd_run_stats stats;
        st = sd_stream_run(stream, &so, &si, &rp, &stats);
        g_stream = NULL;
        print_stats(&stats, c.json);
    }
    int close_rc = frame_sink_close(sink, err, sizeof err);
    frame_source_close(src);
    if (st == SD_OK && close_rc != 0) {
        fprintf(stderr, "error: %s\n", err);
        st = SD_ERR_IO;
    } else if (model && st != SD_OK) {
        cli_error(st);
    }
    sd_stream_free(stream);
    sd_model_free(model);
    return st == SD_OK ? 0 : 1;
}
