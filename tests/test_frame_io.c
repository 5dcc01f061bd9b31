/* test_frame_io.c — the frame sources and sinks of `sdstream stream` (cli/frame_io.c): image
 * folders (natural order, mixed sizes and formats, fitted to the stream size), y4m files and
 * stdin, raw RGB24 with a size, folder and y4m sinks read back, and clean failures.
 *
 * V4L2: this machine has no /dev/video* device (nor v4l2loopback), so only the failure paths
 * are tested: a missing node and a node that is not a V4L2 device (/dev/null). With a device,
 * set SD_TEST_V4L2_CAPTURE=/dev/videoN (a camera) and/or SD_TEST_V4L2_OUTPUT=/dev/videoM (a
 * v4l2loopback node) to also run a few frames through them; the test prints which it ran.
 *
 * The CLI sources are compiled into this test directly (they are not part of the library). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame_io.h"
#include "check.h"

static bool contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }

/* Empties (one level) and removes a scratch folder from an earlier run. */
static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (unlink(p) != 0) remove_tree(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void fill(sd_image *img, int w, int h, uint8_t r, uint8_t g, uint8_t b) {
    CHECK_OK(sd_image_alloc(img, w, h));
    for (size_t i = 0; img->pixels && i < (size_t)w * h; i++) {
        img->pixels[3 * i] = r;
        img->pixels[3 * i + 1] = g;
        img->pixels[3 * i + 2] = b;
    }
}

/* sd_image_save writes PNG and JPEG only; BMP is simple enough to write here (24-bit, bottom-up,
 * rows padded to 4 bytes). */
static void write_bmp(const char *path, const sd_image *img) {
    size_t row = ((size_t)img->width * 3 + 3) & ~(size_t)3, data = row * img->height;
    uint8_t h[54] = {'B', 'M'};
    uint32_t fields[][2] = {{2, (uint32_t)(54 + data)}, {10, 54}, {14, 40}, {18, (uint32_t)img->width},
                            {22, (uint32_t)img->height}, {34, (uint32_t)data}};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        for (int i = 0; i < 4; i++) h[fields[f][0] + i] = (uint8_t)(fields[f][1] >> (8 * i));
    h[26] = 1;  /* planes */
    h[28] = 24; /* bits per pixel */
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "create %s", path);
    if (!f) return;
    fwrite(h, 1, sizeof h, f);
    uint8_t *line = calloc(1, row);
    for (int y = img->height - 1; y >= 0; y--) {
        for (int x = 0; x < img->width; x++) {
            const uint8_t *p = img->pixels + ((size_t)y * img->width + x) * 3;
            line[3 * x] = p[2], line[3 * x + 1] = p[1], line[3 * x + 2] = p[0];
        }
        fwrite(line, 1, row, f);
    }
    free(line);
    fclose(f);
}

static void write_file(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "create %s", path);
    if (!f) return;
    fwrite(bytes, 1, n, f);
    fclose(f);
}

static bool near_colour(const uint8_t *p, int r, int g, int b, int tol) {
    return abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol;
}

static void folder_source(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", check_tmp("frames_in"));
    remove_tree(dir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    char p[4096];
    sd_image a = {0}, b = {0}, c = {0};
    fill(&a, 40, 30, 255, 0, 0); /* img1.jpg: red, wider than the stream */
    fill(&b, 16, 16, 0, 255, 0); /* img2.png: green, square and smaller */
    fill(&c, 30, 60, 0, 0, 255); /* img10.bmp: blue, tall */
    snprintf(p, sizeof p, "%s/img1.jpg", dir);
    CHECK_OK(sd_image_save(&a, p));
    snprintf(p, sizeof p, "%s/img2.png", dir);
    CHECK_OK(sd_image_save(&b, p));
    snprintf(p, sizeof p, "%s/img10.bmp", dir);
    write_bmp(p, &c);
    snprintf(p, sizeof p, "%s/.hidden.png", dir); /* ignored: hidden */
    CHECK_OK(sd_image_save(&b, p));
    snprintf(p, sizeof p, "%s/notes.txt", dir); /* ignored: not an image */
    write_file(p, "hello", 5);

    char err[512] = "";
    frame_source *s = frame_source_open(dir, 32, 24, NULL, err, sizeof err);
    CHECK(s != NULL, "open folder source: %s", err);
    if (s) {
        uint8_t rgb[32 * 24 * 3];
        static const int want[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}}; /* natural order */
        for (int f = 0; f < 3; f++) {
            int rc = frame_source_read(s, rgb);
            CHECK(rc == 1, "folder frame %d: %d %s", f, rc, frame_source_error(s));
            const uint8_t *mid = rgb + (12 * 32 + 16) * 3, *corner = rgb + (23 * 32 + 31) * 3;
            CHECK(near_colour(mid, want[f][0], want[f][1], want[f][2], 8) &&
                      near_colour(corner, want[f][0], want[f][1], want[f][2], 8),
                  "folder frame %d is the expected colour (%d %d %d)", f, mid[0], mid[1], mid[2]);
        }
        CHECK(frame_source_read(s, rgb) == 0, "folder ends after 3 images");
        CHECK(frame_source_read(s, rgb) == 0, "and stays ended");
        CHECK(!frame_source_is_live(s) && frame_source_fps(s) == 0.0, "a folder is not live and has no rate");
    }
    frame_source_close(s);

    /* size 0 x 0: the first image's own size */
    s = frame_source_open(dir, 0, 0, NULL, err, sizeof err);
    int w = 0, h = 0;
    frame_source_size(s, &w, &h);
    CHECK(s && w == 40 && h == 30, "native size of the folder: %d x %d (%s)", w, h, err);
    frame_source_close(s);

    /* a corrupt image mid-stream: an error naming it, not a skip */
    snprintf(p, sizeof p, "%s/img3.png", dir);
    write_file(p, "\x89PNG\r\n\x1a\nbroken", 14);
    s = frame_source_open(dir, 8, 8, NULL, err, sizeof err);
    uint8_t small[8 * 8 * 3];
    int rc1 = s ? frame_source_read(s, small) : -9, rc2 = s ? frame_source_read(s, small) : -9;
    int rc3 = s ? frame_source_read(s, small) : -9;
    CHECK(rc1 == 1 && rc2 == 1 && rc3 == -1 && contains(frame_source_error(s), "img3.png"),
          "corrupt image reported: %d %d %d %s", rc1, rc2, rc3, s ? frame_source_error(s) : err);
    frame_source_close(s);
    sd_image_free(&a);
    sd_image_free(&b);
    sd_image_free(&c);

    /* an empty folder */
    snprintf(dir, sizeof dir, "%s", check_tmp("frames_empty"));
    remove_tree(dir);
    mkdir(dir, 0755);
    s = frame_source_open(dir, 8, 8, NULL, err, sizeof err);
    CHECK(s == NULL && contains(err, dir) && contains(err, "no images"), "empty folder: %s", err);
}

static void make_frames(uint8_t *rgb, int w, int h, int frames) {
    for (int f = 0; f < frames; f++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t *p = rgb + (((size_t)f * h + y) * w + x) * 3;
                p[0] = (uint8_t)(30 + 8 * x + 30 * f);
                p[1] = (uint8_t)(200 - 8 * y);
                p[2] = (uint8_t)(100 + 3 * (x + y));
            }
}

static double mean_abs(const uint8_t *a, const uint8_t *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += abs(a[i] - b[i]);
    return s / (double)n;
}

static void y4m_source_and_sink(void) {
    enum { W = 16, H = 12, N = 3 };
    size_t fb = (size_t)W * H * 3;
    uint8_t frames[N * W * H * 3], rgb[W * H * 3];
    make_frames(frames, W, H, N);
    char err[512] = "";
    const char *path = check_tmp("sink.y4m");
    frame_sink *k = frame_sink_open(path, W, H, 29.97, err, sizeof err);
    CHECK(k != NULL, "open y4m sink: %s", err);
    for (int f = 0; f < N && k; f++) CHECK(frame_sink_write(k, frames + f * fb) == 0, "sink write %d", f);
    CHECK(frame_sink_close(k, err, sizeof err) == 0, "close y4m sink: %s", err);

    FILE *file = fopen(path, "rb");
    char header[128] = "";
    CHECK(file && fgets(header, sizeof header, file) && contains(header, " F30000:1001 "), "NTSC rate: %s", header);
    if (file) fclose(file);

    frame_source *s = frame_source_open(path, W, H, NULL, err, sizeof err);
    CHECK(s != NULL, "open y4m source: %s", err);
    int got = 0;
    for (int rc; s && (rc = frame_source_read(s, rgb)) == 1; got++)
        CHECK(got < N && mean_abs(rgb, frames + got * fb, fb) < 2.0, "y4m frame %d matches (mean %.2f)", got,
              got < N ? mean_abs(rgb, frames + got * fb, fb) : 0.0);
    CHECK(got == N, "read %d of %d y4m frames (%s)", got, N, s ? frame_source_error(s) : err);
    CHECK(s && fabs(frame_source_fps(s) - 29.97) < 0.01, "y4m rate %.3f", frame_source_fps(s));
    frame_source_close(s);

    /* a stream size different from the file's: fitted */
    s = frame_source_open(path, 8, 8, NULL, err, sizeof err);
    uint8_t small[8 * 8 * 3];
    got = 0;
    while (s && frame_source_read(s, small) == 1) got++;
    CHECK(got == N, "fitted y4m frames: %d", got);
    frame_source_close(s);

    /* not a y4m file: the message says what was expected and how to convert */
    const char *notes = check_tmp("notes.txt");
    write_file(notes, "hello\n", 6);
    s = frame_source_open(notes, 8, 8, NULL, err, sizeof err);
    CHECK(s == NULL && contains(err, notes) && contains(err, "YUV4MPEG2"), "non-y4m input: %s", err);
    s = frame_source_open("/nonexistent/clip.y4m", 8, 8, NULL, err, sizeof err);
    CHECK(s == NULL && contains(err, "/nonexistent/clip.y4m"), "missing input: %s", err);

    /* sinks: unknown type, bad size, default rate */
    k = frame_sink_open(check_tmp("out.mp4"), W, H, 30, err, sizeof err);
    CHECK(k == NULL && contains(err, "out.mp4") && contains(err, "unknown output type"), "out.mp4 refused: %s", err);
    k = frame_sink_open(path, 0, H, 30, err, sizeof err);
    CHECK(k == NULL && contains(err, "bad frame size"), "zero width refused: %s", err);
    k = frame_sink_open(path, W, H, 0, err, sizeof err);
    static uint8_t black[W * H * 3];
    CHECK(k && frame_sink_write(k, black) == 0 && frame_sink_close(k, err, sizeof err) == 0, "sink without a rate");
    file = fopen(path, "rb");
    CHECK(file && fgets(header, sizeof header, file) && contains(header, " F25:1 "), "default rate: %s", header);
    if (file) fclose(file);
}

static void folder_sink(void) {
    enum { W = 10, H = 6, N = 3 };
    size_t fb = (size_t)W * H * 3;
    uint8_t frames[N * W * H * 3];
    make_frames(frames, W, H, N);
    char dir[4096], err[512] = "";
    snprintf(dir, sizeof dir, "%s", check_tmp("frames_out"));
    remove_tree(dir);
    char nested[4096];
    snprintf(nested, sizeof nested, "%s/nested", dir);
    frame_sink *k = frame_sink_open(nested, W, H, 30, err, sizeof err);
    CHECK(k != NULL, "open folder sink (creating two levels): %s", err);
    for (int f = 0; f < N && k; f++) CHECK(frame_sink_write(k, frames + f * fb) == 0, "folder write %d", f);
    CHECK(frame_sink_close(k, err, sizeof err) == 0, "close folder sink");
    for (int f = 0; f < N; f++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/frame_%06d.png", nested, f);
        sd_image img = {0};
        CHECK_OK(sd_image_load(&img, p));
        CHECK(img.width == W && img.height == H && memcmp(img.pixels, frames + f * fb, fb) == 0,
              "%s holds frame %d exactly", p, f);
        sd_image_free(&img);
    }
    /* a file where the folder should be */
    const char *file = check_tmp("not_a_folder");
    write_file(file, "x", 1);
    k = frame_sink_open(file, W, H, 30, err, sizeof err);
    CHECK(k == NULL && contains(err, "not a folder"), "file in the way: %s", err);
}

/* Feeds bytes to this process's stdin through a pipe (small: fits the pipe buffer). */
static void stdin_from(const void *bytes, size_t n) {
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    CHECK(write(fds[1], bytes, n) == (ssize_t)n, "write pipe");
    close(fds[1]);
    CHECK(dup2(fds[0], STDIN_FILENO) == STDIN_FILENO, "dup2 stdin");
    close(fds[0]);
    clearerr(stdin);
}

static void raw_sources(void) {
    enum { W = 4, H = 2 };
    size_t fb = W * H * 3;
    uint8_t frames[2 * W * H * 3 + 10], rgb[W * H * 3];
    for (size_t i = 0; i < sizeof frames; i++) frames[i] = (uint8_t)(i * 7);
    char err[512] = "";

    /* a file of exactly two frames */
    const char *path = check_tmp("two.rgb");
    write_file(path, frames, 2 * fb);
    frame_source *s = frame_source_open(path, W, H, "4x2", err, sizeof err);
    CHECK(s != NULL, "open raw file: %s", err);
    int r1 = s ? frame_source_read(s, rgb) : -9;
    CHECK(r1 == 1 && memcmp(rgb, frames, fb) == 0, "raw frame 0 exact");
    int r2 = s ? frame_source_read(s, rgb) : -9;
    CHECK(r2 == 1 && memcmp(rgb, frames + fb, fb) == 0, "raw frame 1 exact");
    CHECK(s && frame_source_read(s, rgb) == 0, "raw file ends cleanly");
    frame_source_close(s);

    /* a partial third frame */
    write_file(path, frames, 2 * fb + 10);
    s = frame_source_open(path, W, H, "4x2", err, sizeof err);
    int rc[3] = {-9, -9, -9};
    for (int i = 0; i < 3 && s; i++) rc[i] = frame_source_read(s, rgb);
    CHECK(rc[0] == 1 && rc[1] == 1 && rc[2] == -1 && contains(frame_source_error(s), "truncated raw RGB24 frame 2") &&
              contains(frame_source_error(s), "expected 24 bytes") && contains(frame_source_error(s), "got 10"),
          "raw truncation: %d %d %d %s", rc[0], rc[1], rc[2], s ? frame_source_error(s) : err);
    frame_source_close(s);

    /* bad sizes */
    s = frame_source_open(path, W, H, "4by2", err, sizeof err);
    CHECK(s == NULL && contains(err, "4by2") && contains(err, "WxH"), "bad raw size: %s", err);
    s = frame_source_open(path, W, H, "0x2", err, sizeof err);
    CHECK(s == NULL, "zero raw size refused");
    s = frame_source_open(path, -3, 5, NULL, err, sizeof err);
    CHECK(s == NULL && contains(err, "bad stream size"), "negative stream size: %s", err);
    int pw, ph;
    CHECK(frame_parse_size("640x480", &pw, &ph) && pw == 640 && ph == 480, "640x480 parses");
    CHECK(!frame_parse_size("640x", &pw, &ph) && !frame_parse_size("x480", &pw, &ph) &&
              !frame_parse_size("640x480x3", &pw, &ph) && !frame_parse_size("16385x1", &pw, &ph) &&
              !frame_parse_size("16384x16384", &pw, &ph),
          "bad sizes refused");

    /* raw on stdin, fitted up to 8x4 */
    stdin_from(frames, 2 * fb);
    s = frame_source_open("-", 8, 4, "4x2", err, sizeof err);
    uint8_t big[8 * 4 * 3];
    int n = 0;
    while (s && frame_source_read(s, big) == 1) n++;
    CHECK(n == 2, "two raw frames from stdin (%d): %s", n, s ? frame_source_error(s) : err);
    frame_source_close(s);

    /* y4m on stdin */
    uint8_t y4m[64 + 2 * 26];
    int len = snprintf((char *)y4m, 64, "YUV4MPEG2 W4 H3 F30:1\n");
    for (int f = 0; f < 2; f++) {
        memcpy(y4m + len, "FRAME\n", 6);
        len += 6;
        memset(y4m + len, 16 + 100 * f, 20); /* 12 luma + 2 x (2 x 2) chroma */
        len += 20;
    }
    stdin_from(y4m, (size_t)len);
    s = frame_source_open("-", 0, 0, NULL, err, sizeof err);
    int sw = 0, sh = 0;
    frame_source_size(s, &sw, &sh);
    uint8_t y4rgb[4 * 3 * 3];
    n = 0;
    while (s && frame_source_read(s, y4rgb) == 1) n++;
    CHECK(n == 2 && sw == 4 && sh == 3 && frame_source_fps(s) == 30.0, "y4m from stdin: %d frames %d x %d (%s)", n, sw,
          sh, s ? frame_source_error(s) : err);
    frame_source_close(s);
}

static void v4l2_cases(void) {
    char err[512] = "";
    frame_source *s = frame_source_open("/dev/video99", 64, 64, NULL, err, sizeof err);
    CHECK(s == NULL && contains(err, "/dev/video99") && contains(err, "cannot open"), "missing camera: %s", err);
    frame_sink *k = frame_sink_open("/dev/video99", 64, 64, 30, err, sizeof err);
    CHECK(k == NULL && contains(err, "/dev/video99"), "missing loopback: %s", err);
    s = frame_source_open("/dev/video99", 64, 64, "64x64", err, sizeof err);
    CHECK(s == NULL && contains(err, "raw"), "raw size with a camera refused: %s", err);
    /* a node that opens but is not V4L2: the ioctl fails and says so */
    v4l2_camera *cam = v4l2_camera_open("/dev/null", 64, 64, err, sizeof err);
    CHECK(cam == NULL && contains(err, "/dev/null") && contains(err, "not a V4L2 device"), "/dev/null camera: %s", err);
    v4l2_loopback *out = v4l2_loopback_open("/dev/null", 64, 64, 30.0, err, sizeof err);
    CHECK(out == NULL && contains(err, "not a V4L2 device"), "/dev/null loopback: %s", err);

    const char *cap_dev = getenv("SD_TEST_V4L2_CAPTURE"), *out_dev = getenv("SD_TEST_V4L2_OUTPUT");
    if (cap_dev && *cap_dev) {
        printf("V4L2 capture test on %s\n", cap_dev);
        s = frame_source_open(cap_dev, 64, 48, NULL, err, sizeof err);
        CHECK(s != NULL, "open %s: %s", cap_dev, err);
        uint8_t rgb[64 * 48 * 3];
        for (int i = 0; i < 5 && s; i++) CHECK(frame_source_read(s, rgb) == 1, "camera frame %d: %s", i, frame_source_error(s));
        CHECK(!s || frame_source_is_live(s), "a camera is live");
        frame_source_close(s);
    } else {
        printf("no SD_TEST_V4L2_CAPTURE: camera capture not tested (failure paths only)\n");
    }
    if (out_dev && *out_dev) {
        printf("V4L2 output test on %s\n", out_dev);
        k = frame_sink_open(out_dev, 64, 48, 30, err, sizeof err);
        CHECK(k != NULL, "open %s: %s", out_dev, err);
        uint8_t rgb[64 * 48 * 3];
        memset(rgb, 90, sizeof rgb);
        for (int i = 0; i < 5 && k; i++) CHECK(frame_sink_write(k, rgb) == 0, "loopback frame %d: %s", i, frame_sink_error(k));
        CHECK(frame_sink_close(k, err, sizeof err) == 0, "close loopback");
    } else {
        printf("no SD_TEST_V4L2_OUTPUT: loopback output not tested (failure paths only)\n");
    }
}

int main(void) {
    folder_source();
    y4m_source_and_sink();
    folder_sink();
    raw_sources();
    v4l2_cases();
    return check_finish();
}
