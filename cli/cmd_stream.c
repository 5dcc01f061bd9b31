/* cmd_stream.c — `sdstream stream`: StreamDiffusion on a live or recorded video. Frames come from an
 * image folder, a .y4m file or stdin (y4m, or raw RGB with --size), or a V4L2 camera, and go to a
 * .y4m file or stdout, an image folder, or a V4L2 loopback device, through sd_stream_run's three
 * threads. Progress and, at the end, fps and per-stage timings go to stderr (--json-stats: every
 * stderr line is JSON). Every option is checked before the model loads.
 *
 * Ctrl-C: the first finishes the frames in flight (the sources' reads give up within 100 ms even
 * on a silent pipe) and exits 130; a second, or one before the run has started, removes what the
 * output has of a file so far and exits 130 at once.
 *
 *   ffmpeg -i in.mp4 -f yuv4mpegpipe - | sdstream stream --model M --prompt P --input - --output - | ffmpeg -i - out.mp4
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "frame_io.h"
#include "log.h"

enum { EXIT_INTERRUPTED = 130 }; /* 128 + SIGINT, what shells report for an interrupted command */

static sd_stream *volatile g_stream;          /* set while sd_stream_run runs */
static const frame_sink *volatile g_sink;     /* cleaned up on a hard exit */
static volatile sig_atomic_t g_signals;

static void on_signal(int sig) {
    (void)sig;
    g_signals++;
    frame_io_interrupt();
    if (g_stream && g_signals == 1) {
        sd_stream_request_stop(g_stream); /* an atomic store: async-signal-safe */
        return;
    }
    frame_sink_discard(g_sink); /* unlink/rmdir only */
    _exit(EXIT_INTERRUPTED);
}

typedef struct io_ctx {
    frame_source *src;
    frame_sink *sink;
    bool json, skip_bad;
    long frames_out, skipped_bad;
    double last_report, start; /* cli_now_ms() */
} io_ctx;

static int read_frame(void *user, uint8_t *rgb) {
    io_ctx *c = user;
    for (;;) {
        int r = frame_source_read(c->src, rgb);
        if (r >= 0) return r;
        if (!c->skip_bad) {
            cli_log_error("%s", frame_source_error(c->src));
            return -1;
        }
        c->skipped_bad++;
        if (!frame_source_can_skip(c->src)) { /* a broken stream cannot be resynchronised: its end */
            cli_log_warning("%s; --skip-bad-frames: ending the input there", frame_source_error(c->src));
            return 0;
        }
        cli_log_warning("%s; --skip-bad-frames: skipped", frame_source_error(c->src));
    }
}

static int write_frame(void *user, const uint8_t *rgb) {
    io_ctx *c = user;
    if (frame_sink_write(c->sink, rgb) != 0) {
        cli_log_error("%s", frame_sink_error(c->sink));
        return -1;
    }
    c->frames_out++;
    if (cli_now_ms() - c->last_report >= 2000.0) {
        double t = (cli_now_ms() - c->start) * 1e-3;
        char line[256];
        if (c->json) {
            snprintf(line, sizeof line, "{\"frames_out\": %ld, \"seconds\": %.3f, \"fps\": %.3f}\n", c->frames_out, t,
                     c->frames_out / t);
            cli_log_raw(line);
        } else {
            cli_log_progress("%ld frames, %.2f fps", c->frames_out, c->frames_out / t);
        }
        c->last_report = cli_now_ms();
    }
    return 0;
}

static void print_stats(const sd_run_stats *st, const io_ctx *c, bool interrupted) {
    char line[1024];
    if (c->json) {
        snprintf(line, sizeof line,
                 "{\"frames_in\": %lld, \"frames_out\": %lld, \"dropped_in\": %lld, \"dropped_out\": %lld, \"skipped\": %lld, "
                 "\"bad_frames_skipped\": %ld, \"interrupted\": %s, \"seconds\": %.3f, \"fps\": %.3f, \"preprocess_ms\": %.3f, "
                 "\"denoise_ms\": %.3f, \"decode_ms\": %.3f, \"postprocess_ms\": %.3f, \"max_input_queue\": %d, "
                 "\"max_output_queue\": %d}\n",
                 (long long)st->frames_in, (long long)st->frames_out, (long long)st->dropped_in, (long long)st->dropped_out,
                 (long long)st->skipped, c->skipped_bad, interrupted ? "true" : "false", st->seconds, st->fps,
                 st->preprocess_ms, st->denoise_ms, st->decode_ms, st->postprocess_ms, st->max_input_queue,
                 st->max_output_queue);
        cli_log_raw(line);
        return;
    }
    cli_log_info("%lld frames in, %lld out (%lld stale inputs dropped, %lld outputs dropped, %lld skipped as similar%s) in "
                 "%.1f s: %.2f fps%s",
                 (long long)st->frames_in, (long long)st->frames_out, (long long)st->dropped_in, (long long)st->dropped_out,
                 (long long)st->skipped, c->skipped_bad ? ", bad input frames skipped" : "", st->seconds, st->fps,
                 interrupted ? " (interrupted)" : "");
    cli_log_info("per frame: preprocess %.1f ms, denoise (encode + UNet) %.1f ms, decode %.1f ms, postprocess %.1f ms",
                 st->preprocess_ms, st->denoise_ms, st->decode_ms, st->postprocess_ms);
}

static bool has_y4m_name(const char *path) {
    size_t n = strlen(path);
    return n >= 4 && strcmp(path + n - 4, ".y4m") == 0;
}

static void add_stream_options(args *a) {
    cli_add_model_options(a);
    args_add(a, "prompt", false, "the prompt");
    args_require(a, "prompt");
    args_add(a, "negative-prompt", false, "negative prompt (cfg full/initialize with --guidance > 1)");
    args_add(a, "input", false, "image folder, FILE.y4m, - (stdin), or /dev/videoN");
    args_require(a, "input");
    args_add(a, "output", false, "FILE.y4m, - (stdout), an image folder, or /dev/videoN (v4l2loopback)");
    args_require(a, "output");
    args_add(a, "size", false, "WxH: the input is raw RGB24 frames of this size (stdin or a file)");
    args_add(a, "skip-bad-frames", true, "warn about an unreadable input image and go on (default: stop with an error)");
    args_add(a, "t-index-list", false, "steps as increasing schedule indices, at most 16 (default 32,45)");
    args_add(a, "strength", false, "0..1, one step (instead of --t-index-list)");
    args_add(a, "steps", false, "num_inference_steps of the LCM schedule (default 50)");
    args_add(a, "cfg-type", false, "none|full|self|initialize (default self)");
    args_add(a, "guidance", false, "guidance scale (default 1.2; none forces 1)");
    args_add(a, "delta", false, "RCFG delta (default 1.0)");
    args_add(a, "seed", false, "noise seed, 0..2^64-1 (default 2)");
    args_add(a, "width", false, "output width, multiple of 8 (default 512); frames are scaled and cropped");
    args_add(a, "height", false, "output height, multiple of 8 (default 512)");
    args_add(a, "frame-buffer-size", false, "frames per denoiser call (default 1; a partial last buffer is padded)");
    args_add(a, "no-batch", true, "run the steps one after another instead of the stream batch");
    args_add(a, "similar-filter", false, "skip frames more similar than THRESHOLD (e.g. 0.98) to the last");
    args_add(a, "similar-filter-max-skip", false, "at most this many skips in a row (default 10)");
    args_add(a, "max-frames", false, "stop after N input frames");
    args_add(a, "emit-warmup", true, "also emit the first n-1 (brown) frames of the stream batch, as upstream");
    args_add(a, "queue", false, "frames waiting per queue (default 2)");
    args_add(a, "json-stats", true, "every stderr line as JSON: progress, statistics, warnings, errors");
    args_add(a, "vae", true, "use the model's full VAE even when --taesd is given");
}

/* The options beyond the shared stream parameters; 0 or 2. */
static int stream_options(const args *a, sd_stream_params *p, sd_run_params *rp) {
    long v;
    double d;
    const char *s;
    if ((s = args_get(a, "delta")) && cli_parse_float(s, "delta", -100.0, 100.0, &d)) return 2;
    if (s) p->delta = (float)d;
    if ((s = args_get(a, "frame-buffer-size")) && cli_parse_int(s, "frame-buffer-size", 1, 8, &v)) return 2;
    if (s) p->frame_buffer_size = (int)v;
    if (args_flag(a, "no-batch")) p->use_denoising_batch = 0;
    if ((s = args_get(a, "similar-filter")) && cli_parse_float(s, "similar-filter", 0.0, 1.0, &d)) return 2;
    if (s) p->similar_filter_threshold = (float)d;
    if ((s = args_get(a, "similar-filter-max-skip")) && cli_parse_int(s, "similar-filter-max-skip", 0, 100000, &v)) return 2;
    if (s) p->similar_filter_max_skip = (int)v;
    if ((s = args_get(a, "max-frames")) && cli_parse_int(s, "max-frames", 1, 0x7fffffffL, &v)) return 2;
    if (s) rp->max_frames = v;
    if ((s = args_get(a, "queue")) && cli_parse_int(s, "queue", 1, 8, &v)) return 2;
    if (s) rp->queue_depth = (int)v;
    rp->emit_warmup = args_flag(a, "emit-warmup");
    const char *raw = args_get(a, "size");
    int rw, rh;
    if (raw && !frame_parse_size(raw, &rw, &rh)) {
        cli_log_error("--size must be WxH, e.g. 640x480 (got '%s')", raw);
        return 2;
    }
    return 0;
}

int cmd_stream(int argc, char **argv) {
    args a = {.usage = "sdstream stream --model M --prompt TEXT --input SRC --output DST [options]",
              .notes = "example:\n  ffmpeg -i in.mp4 -f yuv4mpegpipe - | sdstream stream --model M --prompt P --input - "
                       "--output - | ffmpeg -i - out.mp4\n"};
    add_stream_options(&a);
    int rc = args_parse(&a, argc, argv);
    if (rc >= 0) return rc;
    const char *prompt = args_get(&a, "prompt"), *in = args_get(&a, "input"), *out = args_get(&a, "output");
    sd_stream_params p = sd_stream_params_default();
    sd_run_params rp = sd_run_params_default();
    if (cli_stream_params(&a, &p) || stream_options(&a, &p, &rp) || cli_check_guidance(&a, &p) ||
        cli_check_stream_params(&p) || cli_check_model_options(&a))
        return 2;
    if (args_get(&a, "size") && has_y4m_name(in)) {
        cli_log_error("--size is for raw RGB24 input; %s is a .y4m file, which declares its own frame size", in);
        return 2;
    }
    /* from here a Ctrl-C ends cleanly: before the run at once, during it after the frames in flight */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout becomes a write error, not a kill */

    char err[1024];
    frame_source *src = frame_source_open(in, p.width, p.height, args_get(&a, "size"), err, sizeof err);
    if (!src) {
        if (frame_io_interrupted()) return EXIT_INTERRUPTED;
        cli_log_error("%s", err);
        return 1;
    }
    frame_sink *sink = frame_sink_open(out, p.width, p.height, frame_source_fps(src), err, sizeof err);
    if (!sink) {
        cli_log_error("%s", err);
        frame_source_close(src);
        return 1;
    }
    g_sink = sink;
    sd_model *model = cli_load_model(&a, cli_pipeline_components(&a));
    sd_stream *stream = NULL;
    sd_status st = model ? sd_stream_create(&stream, model, &p) : SD_ERR_ARG;
    if (model) {
        cli_warn_long_prompt(model, "--prompt", prompt);
        cli_warn_long_prompt(model, "--negative-prompt", args_get(&a, "negative-prompt"));
    }
    if (model && st == SD_OK) st = sd_stream_set_prompt(stream, prompt, args_get(&a, "negative-prompt"));
    bool interrupted = false;
    if (model && st == SD_OK) {
        cli_log_info("streaming %s -> %s at %d x %d", in, out, p.width, p.height);
        io_ctx c = {.src = src, .sink = sink, .json = cli_log_json(), .skip_bad = args_flag(&a, "skip-bad-frames")};
        c.start = c.last_report = cli_now_ms();
        sd_frame_source so = {read_frame, &c, frame_source_is_live(src)};
        sd_frame_sink si = {write_frame, &c, frame_spec_is_v4l2(out)};
        sd_run_stats stats;
        g_stream = stream;
        if (frame_io_interrupted()) sd_stream_request_stop(stream); /* a Ctrl-C just before */
        st = sd_stream_run(stream, &so, &si, &rp, &stats);
        g_stream = NULL;
        cli_log_progress_end();
        interrupted = frame_io_interrupted();
        print_stats(&stats, &c, interrupted);
    }
    if (model && st != SD_OK) cli_error(st);
    if (frame_sink_count(sink) == 0 && model && st == SD_OK) cli_log_warning("no frames came out: nothing written to %s", out);
    int close_rc = frame_sink_close(sink, err, sizeof err);
    g_sink = NULL;
    frame_source_close(src);
    if (st == SD_OK && close_rc != 0) {
        cli_log_error("%s", err);
        st = SD_ERR_IO;
    }
    sd_stream_free(stream);
    sd_model_free(model);
    if (interrupted) return EXIT_INTERRUPTED;
    return st == SD_OK ? 0 : 1;
}
