/* test_soak.c — 10,000 frames through the threaded runner at a tiny size (8x8, the tiny SD 1.5 +
 * TAESD), in several runs on one stream, with prompt and guidance changes in between: resident
 * memory is sampled and must not grow after the first run, and the process must end with the file
 * descriptors and threads it started with (no leak per run or per frame). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

enum { W = 8, H = 8, FRAME = W * H * 3, RUNS = 10 };

/* 10,000 frames; $SD_SOAK_FRAMES may ask for fewer (the sanitizer pass of CI runs 2,000: under ASan
 * the full soak took 7.5 minutes of a 30-minute budget, and the release pass runs all 10,000). */
static int total_frames(void) {
    const char *env = getenv("SD_SOAK_FRAMES");
    long n = env ? strtol(env, NULL, 10) : 10000;
    return n >= RUNS && n <= 10000 ? (int)n : 10000;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

typedef struct ctx {
    long produced, limit, written;
} ctx;

static int src_read(void *user, uint8_t *rgb) {
    ctx *c = user;
    if (c->produced >= c->limit) return 0;
    for (int i = 0; i < FRAME; i++) rgb[i] = (uint8_t)((i * 3 + c->produced * 7) & 0xff);
    c->produced++;
    return 1;
}

static int sink_write(void *user, const uint8_t *rgb) {
    ctx *c = user;
    (void)rgb;
    c->written++;
    return 0;
}

int main(void) {
    const int TOTAL = total_frames();
    printf("soak: %d frames in %d runs\n", TOTAL, RUNS);
    char model[4096], taesd[4096];
    snprintf(model, sizeof model, "%s", check_ref("models/tiny-sd15"));
    snprintf(taesd, sizeof taesd, "%s", check_ref("models/taesd"));
    int fds0 = count_entries("/proc/self/fd"), threads0 = count_entries("/proc/self/task");
    sd_model_params mp = sd_model_params_default();
    mp.path = model, mp.taesd_path = taesd;
    sd_model *m = NULL;
    CHECK_OK(sd_model_load(&m, &mp));
    sd_stream_params p = sd_stream_params_default();
    p.width = W, p.height = H;
    p.similar_filter_threshold = 0.99f;
    sd_stream *s = NULL;
    if (m) CHECK_OK(sd_stream_create(&s, m, &p));
    if (s) CHECK_OK(sd_stream_set_prompt(s, "a cat", "blurry"));
    long rss_after_first = 0, rss_max = 0, total_out = 0;
    for (int run = 0; s && run < RUNS; run++) {
        ctx c = {.limit = TOTAL / RUNS};
        sd_frame_source so = {src_read, &c, 0};
        sd_frame_sink si = {sink_write, &c, 0};
        sd_run_stats st;
        CHECK_OK(sd_stream_run(s, &so, &si, NULL, &st));
        total_out += c.written;
        CHECK_OK(sd_stream_set_prompt(s, run % 2 ? "a cat" : "a dog", NULL));
        CHECK_OK(sd_stream_set_guidance(s, run % 2 ? 1.2f : 1.6f, 1.0f));
        long rss = check_rss_kb();
        if (run == 0) rss_after_first = rss;
        if (rss > rss_max) rss_max = rss;
        printf("run %d: %lld frames in %.1f s (%.1f fps), RSS %ld kB\n", run, (long long)st.frames_out, st.seconds, st.fps, rss);
    }
    CHECK(total_out == TOTAL, "%ld frames out of %d", total_out, TOTAL);
    CHECK(rss_max - rss_after_first < 4 * 1024, "RSS does not grow over %d frames (%ld kB after the first run, max %ld kB)",
          TOTAL, rss_after_first, rss_max);
    sd_stream_free(s);
    sd_model_free(m);
    int fds1 = count_entries("/proc/self/fd"), threads1 = count_entries("/proc/self/task");
    CHECK(fds1 == fds0, "file descriptors: %d before, %d after", fds0, fds1);
    /* OpenBLAS keeps its worker threads once started; ours must all be gone */
    CHECK(threads1 <= threads0 + 2, "threads: %d before, %d after (OpenBLAS's own pool may stay)", threads0, threads1);
    return check_finish();
}
