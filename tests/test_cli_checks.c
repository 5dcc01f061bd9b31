/* test_cli_checks.c — the command line as a careful user meets it (issue 13), through the built
 * binary: no frame lost (partial frame buffers, a corrupt image mid-folder with and without
 * --skip-bad-frames, truncated raw and y4m input keep the frames before the fault), everything
 * checked before the model loads with exit 2 and no output file, full 64-bit seeds, Ctrl-C on a
 * silent pipe (exit 130 within a second or two), help on stdout, suggestions, short aliases,
 * --threads / SDSTREAM_THREADS, --dtype/--variant, long prompts, PNG on stdout and BMP output,
 * JSON-only stderr. Each case is a row of TESTING.md's bad-input matrix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char g_bin[4096], g_model[4096], g_taesd[4096], g_out[65536];
static char g_dir[4096]; /* scratch folder of this test */

#define RUN(...) check_runf(g_out, sizeof g_out, __VA_ARGS__)

static bool has(const char *needle) { return strstr(g_out, needle) != NULL; }

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static const char *path(const char *name) {
    static char buf[4][4096];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", g_dir, name);
    return buf[slot];
}

/* "'sdstream' COMMAND" with the model options of every run: the tiny SD 1.5 with TAESD at 64 x 64. */
static const char *cmd(const char *command) {
    static char buf[4][9000];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "'%s' %s --model '%s' --taesd '%s' --width 64 --height 64", g_bin, command, g_model,
             g_taesd);
    return buf[slot];
}

enum { Y4M_HEADER = 41 /* "YUV4MPEG2 W64 H64 F25:1 Ip A1:1 C420jpeg\n" */, Y4M_FRAME = 6 + 64 * 64 * 3 / 2 };

static void make_fixtures(void) {
    CHECK(RUN("rm -rf '%s' && mkdir -p '%s/five' '%s/bad'", g_dir, g_dir, g_dir) == 0, "scratch folder: %s", g_out);
    for (int i = 0; i < 5; i++)
        CHECK(RUN("%s -p 'a cat' -s %d -o '%s/five/in%d.png'", cmd("txt2img"), i, g_dir, i) == 0, "fixture %d: %s", i, g_out);
    /* bad/: in0, in1, a corrupt in2, in3 */
    CHECK(RUN("cp '%s/five/in0.png' '%s/five/in1.png' '%s/five/in3.png' '%s/bad/' && head -c 300 '%s/five/in2.png' > '%s/bad/in2.png'",
              g_dir, g_dir, g_dir, g_dir, g_dir, g_dir) == 0, "corrupt fixture: %s", g_out);
}

static void frames_never_lost(void) {
    for (int fb = 1; fb <= 3; fb++) {
        const char *out = path("fb.y4m");
        unlink(out);
        CHECK(RUN("%s -p cat --input '%s/five' --output '%s' --frame-buffer-size %d", cmd("stream"), g_dir, out, fb) == 0,
              "fb %d runs: %s", fb, g_out);
        CHECK(has("5 frames in, 5 out"), "--frame-buffer-size %d on 5 frames: 5 in, 5 out: %s", fb, g_out);
        CHECK(file_size(out) == Y4M_HEADER + 5 * Y4M_FRAME, "fb %d: the file holds 5 frames (%ld bytes)", fb, file_size(out));
    }
    for (int fb = 1; fb <= 2; fb++) { /* a corrupt image mid-folder: an error naming it, the 2 frames before it written */
        const char *out = path("bad.y4m");
        unlink(out);
        CHECK(RUN("%s -p cat --input '%s/bad' --output '%s' --frame-buffer-size %d", cmd("stream"), g_dir, out, fb) == 1 &&
                  has("in2.png") && has("2 frames in, 2 out"),
              "fb %d: corrupt in2.png: exit 1 naming it, 2 frames in and out: %s", fb, g_out);
        CHECK(file_size(out) == Y4M_HEADER + 2 * Y4M_FRAME, "fb %d: the 2 frames before the bad one are written (%ld bytes)",
              fb, file_size(out));
    }
    const char *out = path("skip.y4m");
    CHECK(RUN("%s -p cat --input '%s/bad' --output '%s' --skip-bad-frames", cmd("stream"), g_dir, out) == 0 &&
              has("warning") && has("in2.png") && has("3 frames in, 3 out"),
          "--skip-bad-frames: a warning naming in2.png, 3 frames out: %s", g_out);
    CHECK(file_size(out) == Y4M_HEADER + 3 * Y4M_FRAME, "--skip-bad-frames: 3 frames written (%ld bytes)", file_size(out));

    /* a y4m cut in its third frame: the 2 whole frames come out, then the error */
    char whole[4096]; /* path()'s buffers rotate */
    snprintf(whole, sizeof whole, "%s", path("fb.y4m"));
    const char *cut = path("cut.y4m"), *cut_out = path("cut_out.y4m");
    CHECK(RUN("head -c %d '%s' > '%s'", Y4M_HEADER + 2 * Y4M_FRAME + 100, whole, cut) == 0, "cut fixture");
    CHECK(RUN("%s -p cat --input '%s' --output '%s'", cmd("stream"), cut, cut_out) == 1 && has("truncated") &&
              has("2 frames in, 2 out"),
          "truncated y4m: exit 1, 2 frames in and out: %s", g_out);
    CHECK(file_size(cut_out) == Y4M_HEADER + 2 * Y4M_FRAME, "truncated y4m: 2 frames written (%ld bytes)", file_size(cut_out));
    /* raw RGB whose last frame is short */
    const char *raw_out = path("raw_out.y4m");
    CHECK(RUN("head -c %d /dev/urandom | %s -p cat --input - --size 16x16 --output '%s'", 3 * 768 + 500, cmd("stream"),
              raw_out) == 1 && has("truncated raw") && has("3 frames in, 3 out"),
          "a short last raw frame: exit 1, the 3 before it out: %s", g_out);
    CHECK(file_size(raw_out) == Y4M_HEADER + 3 * Y4M_FRAME, "raw: 3 frames written (%ld bytes)", file_size(raw_out));
    /* a header-only y4m in: nothing out, and no header-only file left behind */
    const char *empty = path("empty.y4m"), *empty_out = path("empty_out.y4m");
    CHECK(RUN("head -c %d '%s' > '%s'", Y4M_HEADER, whole, empty) == 0, "header-only fixture");
    CHECK(RUN("%s -p cat --input '%s' --output '%s'", cmd("stream"), empty, empty_out) == 0 && has("0 frames in, 0 out") &&
              has("nothing written"),
          "header-only y4m: 0 frames, said so: %s", g_out);
    CHECK(file_size(empty_out) < 0, "no header-only output file is left");
    CHECK(RUN("ls '%s' | grep -c 'out.y4m.' || true", g_dir) == 0 && strncmp(g_out, "0", 1) == 0,
          "no temporary files are left: %s", g_out);
}

/* Every usage error: exit 2, before the model loads ("loaded" never printed), no output file. */
static void usage_error(const char *what, const char *must_say, const char *fmt_args) {
    const char *out = path("never.png");
    unlink(out);
    int rc = RUN("%s -p cat %s -o '%s'", cmd("txt2img"), fmt_args, out);
    CHECK(rc == 2 && has(must_say) && !has("loaded") && file_size(out) < 0, "%s: exit 2 (got %d) saying '%s', nothing "
          "loaded or written: %s", what, rc, must_say, g_out);
}

static void checked_before_work(void) {
    usage_error("unsorted --t-index-list", "must increase", "--t-index-list 45,32");
    usage_error("repeated --t-index-list", "repeats 32", "--t-index-list 32,32");
    usage_error("trailing comma", "entry 2 is empty", "--t-index-list 1,");
    usage_error("17 steps", "more than 16 steps", "--t-index-list 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16");
    usage_error("index past --steps", "outside 0..9", "--steps 10 --t-index-list 12");
    usage_error("--guidance with cfg none", "no effect with --cfg-type none", "--guidance 3 --cfg-type none");
    usage_error("--negative-prompt without guidance", "--negative-prompt is used only with guidance", "--negative-prompt dog");
    usage_error("--negative-prompt with cfg self", "--negative-prompt is used only", "--guidance 2 --cfg-type self --negative-prompt dog");
    usage_error("cfg type with guidance 1", "guidance needs a scale above 1", "--cfg-type full");
    usage_error("--dtype fp16", "--variant fp16", "--dtype fp16");
    usage_error("--variant fp32", "--variant takes fp16", "--variant fp32");
    usage_error("--threads 0", "--threads must be a thread count", "--threads 0");
    usage_error("negative seed", "--seed must be an integer in 0..18446744073709551615", "--seed -1");
    usage_error("seed past 2^64", "0..18446744073709551615", "--seed 18446744073709551616");
    CHECK(RUN("SDSTREAM_THREADS=abc %s -p cat -o '%s'", cmd("txt2img"), path("never.png")) == 2 && has("SDSTREAM_THREADS") &&
              !has("loaded"),
          "a malformed SDSTREAM_THREADS is a usage error: %s", g_out);
    CHECK(RUN("SDSTREAM_THREADS=999 %s -p cat -o '%s'", cmd("txt2img"), path("never.png")) == 2 && has("SDSTREAM_THREADS"),
          "SDSTREAM_THREADS past the limit: %s", g_out);
    CHECK(RUN("%s -p cat --threads 64 -o '%s'", cmd("txt2img"), path("threads.png")) == 0 && has("warning") && has("cores"),
          "--threads above the cores runs with a warning: %s", g_out);
    /* output folder missing / a file where the folder should be: the system's reason, before work */
    CHECK(RUN("%s -p cat -o '%s/missing/x.png'", cmd("txt2img"), g_dir) == 2 && has("No such file or directory") && !has("loaded"),
          "missing output folder: exit 2 with strerror: %s", g_out);
    CHECK(RUN("%s -p cat -o '%s/five/in0.png/x.png'", cmd("txt2img"), g_dir) == 2 && has("is not a folder"),
          "output under a file: exit 2, said so: %s", g_out);
    CHECK(RUN("%s -p cat --input '%s/five' --output '%s/missing/o.y4m'", cmd("stream"), g_dir, g_dir) == 1 &&
              has("No such file or directory") && !has("loaded"),
          "stream into a missing folder: refused before loading: %s", g_out);
    CHECK(RUN("%s -p cat --input '%s' --size 64x64 --output '%s'", cmd("stream"), path("fb.y4m"), path("x.y4m")) == 2 &&
              has("--size") && has(".y4m"),
          "--size on a .y4m is refused: %s", g_out);
    CHECK(RUN("head -c 1000 /dev/zero > '%s' && %s -p cat --input '%s' --output '%s'", path("frames.rgb"), cmd("stream"),
              path("frames.rgb"), path("x.y4m")) == 1 && has("--size WxH"),
          "raw input without --size says so: %s", g_out);
}

static void seeds(void) {
    const char *a = path("seed_a.png"), *b = path("seed_b.png");
    CHECK(RUN("%s -p cat -s 9223372036854775808 -o '%s' && %s -p cat -s 9223372036854775809 -o '%s' && "
              "! cmp -s '%s' '%s'", cmd("txt2img"), a, cmd("txt2img"), b, a, b) == 0,
          "seeds 2^63 and 2^63 + 1 give different images (no clamping): %s", g_out);
    CHECK(RUN("%s -p cat -s 18446744073709551615 -o '%s'", cmd("txt2img"), a) == 0, "seed 2^64 - 1 is accepted: %s", g_out);
}

/* A FIFO whose writer sends one frame and then nothing: one SIGINT ends the run within 2 s with
 * exit 130, and the frame in flight is written. --no-batch makes the frame come out before the
 * signal, so the time measured is the interrupt's latency, not a stream-batch flush's compute
 * (which a sanitizer build slows several times). */
static void ctrl_c_on_a_silent_pipe(void) {
    const char *fifo = path("fifo"), *out = path("fifo_out.y4m"), *log = path("fifo.log");
    unlink(fifo);
    unlink(out);
    int rc = RUN("mkfifo '%s' && { ( head -c %d '%s'; sleep 30 ) > '%s' & W=$!; "
                 "%s -p cat --no-batch --input '%s' --output '%s' 2> '%s' & P=$!; "
                 "for i in $(seq 300); do grep -q streaming '%s' && break; sleep 0.1; done; sleep 1; "
                 "kill -INT $P; t0=$(date +%%s%%N); wait $P; rc=$?; t1=$(date +%%s%%N); kill $W 2>/dev/null; "
                 "echo \"rc=$rc ms=$(( (t1 - t0) / 1000000 ))\"; cat '%s'; }",
                 fifo, Y4M_HEADER + Y4M_FRAME, path("fb.y4m"), fifo, cmd("stream"), fifo, out, log, log, log);
    int code = -1, ms = -1;
    const char *r = strstr(g_out, "rc=");
    CHECK(rc == 0 && r && sscanf(r, "rc=%d ms=%d", &code, &ms) == 2, "the FIFO run: %s", g_out);
    CHECK(code == 130, "an interrupted run exits 130: %s", g_out);
    printf("SIGINT on a silent FIFO: exit %d after %d ms\n", code, ms);
    CHECK(ms >= 0 && ms < 2000, "it exits within 2 s of the SIGINT although the source blocks (%d ms)", ms);
    CHECK(has("1 frames in, 1 out") && has("interrupted"), "the frame in flight is finished: %s", g_out);
    CHECK(file_size(out) == Y4M_HEADER + Y4M_FRAME, "and written (%ld bytes)", file_size(out));
}

static void help_and_messages(void) {
    CHECK(RUN("'%s' --help 2>/dev/null | grep -c stream", g_bin) == 0 && atoi(g_out) > 0, "sdstream --help on stdout: %s", g_out);
    CHECK(RUN("'%s' stream --help 2>/dev/null", g_bin) == 0 && has("--prompt") && has("--threads") && has("-m, --model"),
          "stream --help on stdout, with --threads and the short aliases: %.200s", g_out);
    CHECK(RUN("'%s' eval --help 2>/dev/null", g_bin) == 0 && has("text_encoder") && has("unet") && has("vae_encode") &&
              has("vae_decode") && has("taesd_encode") && has("taesd_decode"),
          "eval --help lists all six components: %s", g_out);
    CHECK(RUN("'%s' stream --model m --input i --output o 2>&1 >/dev/null", g_bin) == 2 && has("--prompt is required"),
          "a missing required option is named on stderr: %s", g_out);
    CHECK(RUN("%s --promt cat -o x.png 2>&1 >/dev/null", cmd("txt2img")) == 2 && has("did you mean '--prompt'"),
          "an unknown option suggests the closest: %s", g_out);
    CHECK(RUN("'%s' strem 2>&1 >/dev/null", g_bin) == 2 && has("did you mean 'stream'"), "an unknown command suggests: %s", g_out);
    CHECK(RUN("%s --cfg-type ful -o x.png -p cat", cmd("txt2img")) == 2 && has("did you mean 'full'"),
          "an unknown cfg type suggests: %s", g_out);
    /* short aliases as in sd.cpp */
    const char *alias = path("alias.png");
    CHECK(RUN("'%s' txt2img -m '%s' --taesd '%s' -p cat -W 32 -H 48 -s 5 -o '%s'", g_bin, g_model, g_taesd, alias) == 0,
          "-m -p -W -H -s -o work: %s", g_out);
    sd_image img = {0};
    CHECK(sd_image_load(&img, alias) == SD_OK && img.width == 32 && img.height == 48, "-W 32 -H 48 honoured (%d x %d)",
          img.width, img.height);
    sd_image_free(&img);
    /* a prompt over CLIP's 75 tokens warns where it was cut */
    char long_prompt[2048] = "";
    for (int i = 0; i < 80; i++) strcat(long_prompt, i == 76 ? "zebra " : "cat ");
    CHECK(RUN("%s -p '%s' -o '%s'", cmd("txt2img"), long_prompt, path("long.png")) == 0 && has("warning") &&
              has("80 tokens") && has("truncated after"),
          "a long prompt warns: %s", g_out);
    /* PNG on stdout, BMP output */
    CHECK(RUN("%s -p cat -o - 2>/dev/null | head -c 8 | od -An -c", cmd("txt2img")) == 0 && has("P   N   G"),
          "--output - writes PNG to stdout: %s", g_out);
    const char *bmp = path("out.bmp");
    CHECK(RUN("%s -p cat -o '%s'", cmd("txt2img"), bmp) == 0, "BMP output: %s", g_out);
    CHECK(sd_image_load(&img, bmp) == SD_OK && img.width == 64 && img.height == 64, "the BMP reads back as 64 x 64");
    sd_image_free(&img);
    /* --json-stats: every stderr line is JSON */
    CHECK(RUN("%s -p cat --input '%s/bad' --output '%s' --json-stats --skip-bad-frames 2>&1 >/dev/null", cmd("stream"), g_dir,
              path("json.y4m")) == 0, "JSON run: %s", g_out);
    int lines = 0, json = 0;
    for (char *line = strtok(g_out, "\n"); line; line = strtok(NULL, "\n"), lines++) json += line[0] == '{' && line[strlen(line) - 1] == '}';
    CHECK(lines > 3 && json == lines, "--json-stats: %d of %d stderr lines are JSON", json, lines);
    CHECK(RUN("%s -p cat --input x --output y --json-stats --frame-buffer-size 0 2>&1 >/dev/null", cmd("stream")) == 2 &&
              g_out[0] == '{' && has("\"level\": \"error\""),
          "--json-stats: even a usage error is JSON: %s", g_out);
}

int main(void) {
    const char *bin = getenv("SD_BIN");
    snprintf(g_bin, sizeof g_bin, "%s", bin && *bin ? bin : SD_BIN_DEFAULT);
    snprintf(g_model, sizeof g_model, "%s", check_ref("models/tiny-sd15"));
    snprintf(g_taesd, sizeof g_taesd, "%s", check_ref("models/taesd"));
    snprintf(g_dir, sizeof g_dir, "%s", check_tmp("cli_checks"));
    make_fixtures();
    frames_never_lost();
    checked_before_work();
    seeds();
    ctrl_c_on_a_silent_pipe();
    help_and_messages();
    return check_finish();
}
