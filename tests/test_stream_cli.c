/* test_stream_cli.c — `sdstream stream` as users run it: image folder in, y4m out; y4m through
 * stdin and stdout (the ffmpeg pipe); raw RGB on stdin with --size; an image folder out; JSON
 * statistics; and bad input: a truncated y4m, raw frames that do not fill --size, an unknown
 * --cfg-type, a missing input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"

static char g_bin[4096], g_model[4096], g_taesd[4096];


static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static const char *model_args(void) {
    static char buf[9000];
    snprintf(buf, sizeof buf, "--model '%s' --taesd '%s' --prompt 'a cat' --width 64 --height 64", g_model, g_taesd);
    return buf;
}

int main(void) {
    const char *bin = getenv("SD_BIN");
    snprintf(g_bin, sizeof g_bin, "%s", bin && *bin ? bin : SD_BIN_DEFAULT);
    snprintf(g_model, sizeof g_model, "%s", check_ref("models/tiny-sd15"));
    snprintf(g_taesd, sizeof g_taesd, "%s", check_ref("models/taesd"));
    char cmd[16384], out[65536];
    /* check_tmp's buffers rotate: keep copies */
    char dir[4096], y4m[4096], piped[4096], raw[4096], outdir[4096], cut[4096], junk[4096];
    snprintf(dir, sizeof dir, "%s", check_tmp("stream_frames"));
    snprintf(y4m, sizeof y4m, "%s", check_tmp("stream_out.y4m"));
    snprintf(piped, sizeof piped, "%s", check_tmp("stream_piped.y4m"));
    snprintf(raw, sizeof raw, "%s", check_tmp("stream_raw.rgb"));
    snprintf(outdir, sizeof outdir, "%s", check_tmp("stream_out_frames"));
    snprintf(cut, sizeof cut, "%s", check_tmp("stream_cut.y4m"));
    snprintf(junk, sizeof junk, "%s", check_tmp("stream_junk.y4m"));

    /* input frames: four images of different sizes, made with txt2img */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' && mkdir -p '%s'", dir, outdir, dir);
    CHECK(system(cmd) == 0, "fixture folder");
    static const int sizes[4][2] = {{64, 64}, {96, 64}, {64, 128}, {80, 80}};
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "'%s' txt2img %s --seed %d --width %d --height %d --output '%s/in%d.png'", g_bin,
                 model_args(), i, sizes[i][0], sizes[i][1], dir, i);
        /* txt2img takes the last --width/--height given */
        CHECK(check_run(cmd, out, sizeof out) == 0, "fixture image %d: %s", i, out);
    }

    /* folder -> y4m: 4 frames out (warm-up hidden, flushed), stats printed */
    snprintf(cmd, sizeof cmd, "'%s' stream %s --input '%s' --output '%s'", g_bin, model_args(), dir, y4m);
    CHECK(check_run(cmd, out, sizeof out) == 0, "folder -> y4m: %s", out);
    CHECK(strstr(out, "4 frames in, 4 out") != NULL, "4 frames in and out: %s", out);
    CHECK(strstr(out, "fps") && strstr(out, "denoise") && strstr(out, "decode"), "fps and stage timings printed");
    long header = (long)strlen("YUV4MPEG2 W64 H64 F25:1 Ip A1:1 C420jpeg\n");
    long frame = (long)strlen("FRAME\n") + 64 * 64 * 3 / 2;
    CHECK(file_size(y4m) == header + 4 * frame, "y4m holds 4 frames of 64x64 4:2:0 (%ld bytes)", file_size(y4m));

    /* y4m through stdin and stdout, as in the ffmpeg pipe, with JSON statistics */
    snprintf(cmd, sizeof cmd, "cat '%s' | '%s' stream %s --input - --output - --json-stats > '%s'", y4m, g_bin, model_args(), piped);
    CHECK(check_run(cmd, out, sizeof out) == 0, "stdin -> stdout: %s", out);
    CHECK(strstr(out, "\"frames_out\": 4") && strstr(out, "\"fps\""), "JSON statistics: %s", out);
    CHECK(file_size(piped) == file_size(y4m), "piped output has 4 frames (%ld bytes)", file_size(piped));

    /* raw RGB on stdin with --size, image folder out */
    FILE *f = fopen(raw, "wb");
    for (int i = 0; f && i < 3 * 32 * 48 * 3; i++) fputc((i * 31) & 0xff, f);
    if (f) fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' stream %s --input - --size 32x48 --output '%s' < '%s'", g_bin, model_args(), outdir, raw);
    CHECK(check_run(cmd, out, sizeof out) == 0, "raw RGB stdin -> folder: %s", out);
    char png[8192];
    snprintf(png, sizeof png, "%s/frame_000002.png", outdir);
    sd_image img = {0};
    CHECK_OK(sd_image_load(&img, png));
    CHECK(img.width == 64 && img.height == 64, "third output frame is 64x64 (%d x %d)", img.width, img.height);
    sd_image_free(&img);
    snprintf(png, sizeof png, "%s/frame_000003.png", outdir);
    CHECK(file_size(png) < 0, "exactly 3 frames written");

    /* bad input */
    snprintf(cmd, sizeof cmd, "head -c %ld '%s' > '%s'", header + frame + frame / 2, y4m, cut);
    CHECK(system(cmd) == 0, "truncated fixture");
    snprintf(cmd, sizeof cmd, "'%s' stream %s --input '%s' --output '%s'", g_bin, model_args(), cut, junk);
    CHECK(check_run(cmd, out, sizeof out) == 1 && strstr(out, "truncated"), "a truncated y4m fails and says so: %s", out);
    snprintf(cmd, sizeof cmd, "head -c 5000 '%s' | '%s' stream %s --input - --size 32x48 --output '%s'", raw, g_bin, model_args(), junk);
    CHECK(check_run(cmd, out, sizeof out) == 1, "raw frames that do not fill --size fail: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' stream %s --input '%s' --output '%s' --cfg-type bogus", g_bin, model_args(), y4m, junk);
    CHECK(check_run(cmd, out, sizeof out) == 2 && strstr(out, "cfg-type"), "unknown cfg type is a usage error: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' stream %s --input /nonexistent/in.y4m --output '%s'", g_bin, model_args(), junk);
    CHECK(check_run(cmd, out, sizeof out) == 1 && strstr(out, "/nonexistent/in.y4m"), "missing input names it: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' stream %s --input - --size 10 --output '%s' < /dev/null", g_bin, model_args(), junk);
    CHECK(check_run(cmd, out, sizeof out) == 2 && strstr(out, "--size"), "bad --size is a usage error: %s", out);
    return check_finish();
}
