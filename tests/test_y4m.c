/* test_y4m.c — the YUV4MPEG2 reader and writer and the colour conversions: every header error
 * gets its own status and a message naming the value, truncation and the clean end of stream are
 * told apart, streams are read without seeking (a pipe), and RGB -> y4m -> RGB stays close on
 * smooth images. Streams are built in memory byte by byte, so each case shows its input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/y4m.h"
#include "check.h"

static bool contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }

/* A stream in memory: the header text, then `frames` frames of `frame_bytes` each (pixel value =
 * byte index), then `tail` extra bytes (a truncated frame, garbage, ...). */
typedef struct {
    uint8_t data[8192];
    size_t len;
} stream;

static void put(stream *s, const void *bytes, size_t n) {
    if (s->len + n > sizeof s->data) n = sizeof s->data - s->len;
    memcpy(s->data + s->len, bytes, n);
    s->len += n;
}
static void put_text(stream *s, const char *t) { put(s, t, strlen(t)); }
static void put_frame(stream *s, size_t bytes, uint8_t value) {
    put_text(s, "FRAME\n");
    for (size_t i = 0; i < bytes; i++) put(s, &value, 1);
}

/* Opens a header-only stream and checks the outcome. */
static void expect_header(const char *header, sd_status want, const char *needle) {
    sd_y4m_reader *r = NULL;
    sd_status got = sd_y4m_reader_open_memory(&r, header, strlen(header), "case.y4m");
    char shown[64];
    snprintf(shown, sizeof shown, "%.40s", header);
    for (char *c = shown; *c; c++)
        if (*c == '\n') *c = '|';
    CHECK(got == want, "header '%s': expected %s, got %s (%s)", shown, sd_status_name(want), sd_status_name(got),
          sd_last_error());
    CHECK(got == SD_OK || r == NULL, "header '%s': *out untouched on failure", shown);
    CHECK(got == SD_OK || contains(sd_last_error(), "case.y4m"), "header '%s': message names the stream: %s", shown,
          sd_last_error());
    CHECK(!needle || contains(sd_last_error(), needle), "header '%s': message mentions '%s': %s", shown, needle,
          sd_last_error());
    sd_y4m_reader_close(r);
}

static void header_cases(void) {
    expect_header("YUV4MPEG2 W4 H2\n", SD_OK, NULL);
    expect_header("YUV4MPEG2 H2\n", SD_ERR_FORMAT, "no W");
    expect_header("YUV4MPEG2 W4\n", SD_ERR_FORMAT, "no H");
    expect_header("YUV4MPEG2 W0 H2\n", SD_ERR_FORMAT, "0 x 2");
    expect_header("YUV4MPEG2 W-4 H2\n", SD_ERR_FORMAT, "W-4");
    expect_header("YUV4MPEG2 W4x H2\n", SD_ERR_FORMAT, "W4x");
    expect_header("YUV4MPEG2 W16385 H2\n", SD_ERR_LIMIT, "16385");
    expect_header("YUV4MPEG2 W99999999999999999999 H2\n", SD_ERR_LIMIT, "limit");
    expect_header("YUV4MPEG2 W16384 H16384\n", SD_ERR_LIMIT, "16384 x 16384");
    expect_header("YUV4MPEG2 W16384 H4096\n", SD_OK, NULL); /* exactly 64 Mpixels: allowed */
    expect_header("YUV4MPEG2 W4 H2 C422\n", SD_ERR_UNSUPPORTED, "C422");
    expect_header("YUV4MPEG2 W4 H2 C420p10\n", SD_ERR_UNSUPPORTED, "C420p10");
    expect_header("YUV4MPEG2 W4 H2 C444p12\n", SD_ERR_UNSUPPORTED, "C444p12");
    expect_header("YUV4MPEG2 W4 H2 Cmono16\n", SD_ERR_UNSUPPORTED, "Cmono16");
    expect_header("YUV4MPEG2 W4 H2 C444alpha\n", SD_ERR_UNSUPPORTED, "C444alpha");
    expect_header("YUV4MPEG W4 H2\n", SD_ERR_FORMAT, "not a YUV4MPEG2");
    expect_header("YUV4MPEG2W4 H2\n", SD_ERR_FORMAT, "not a YUV4MPEG2");
    expect_header("\x89PNG\r\n\x1a\n", SD_ERR_FORMAT, "not a YUV4MPEG2");
    expect_header("", SD_ERR_FORMAT, "empty");
    expect_header("YUV4MPEG2 W4 H2", SD_ERR_FORMAT, "truncated header");
    expect_header("YUV4MPEG2 W4 H2 Fabc\n", SD_ERR_FORMAT, "Fabc");
    expect_header("YUV4MPEG2 W4 H2 F30\n", SD_ERR_FORMAT, "F30");
    expect_header("YUV4MPEG2 W4 H2 A1\n", SD_ERR_FORMAT, "A1");
    expect_header("YUV4MPEG2 W4 H2 Ix\n", SD_ERR_FORMAT, "Ix");
    /* tags the reader does not know and X comments are ignored; doubled spaces too */
    expect_header("YUV4MPEG2  W4 H2 XYSCSS=420JPEG Zfuture\n", SD_OK, NULL);

    /* a NUL byte inside the header line */
    static const char nul[] = "YUV4MPEG2 W4\0 H2\n";
    sd_y4m_reader *r = NULL;
    CHECK(sd_y4m_reader_open_memory(&r, nul, sizeof nul - 1, "nul.y4m") == SD_ERR_FORMAT, "NUL in header: %s",
          sd_last_error());
    sd_y4m_reader_close(r);

    /* a header line over the 1 KiB limit */
    char long_header[1200];
    memset(long_header, 'a', sizeof long_header);
    memcpy(long_header, "YUV4MPEG2 W4 H2 X", 17);
    long_header[sizeof long_header - 1] = '\n';
    r = NULL;
    CHECK(sd_y4m_reader_open_memory(&r, long_header, sizeof long_header, "long.y4m") == SD_ERR_LIMIT,
          "long header refused: %s", sd_last_error());
    sd_y4m_reader_close(r);

    /* every field is parsed */
    const char *full = "YUV4MPEG2 W6 H4 F30000:1001 It A128:117 C420mpeg2 XCOLORRANGE=LIMITED\n";
    r = NULL;
    CHECK_OK(sd_y4m_reader_open_memory(&r, full, strlen(full), "full.y4m"));
    if (r) {
        const sd_y4m_info *i = sd_y4m_reader_info(r);
        CHECK(i->width == 6 && i->height == 4, "size %d x %d", i->width, i->height);
        CHECK(i->fps_num == 30000 && i->fps_den == 1001, "rate %d:%d", i->fps_num, i->fps_den);
        CHECK(i->aspect_num == 128 && i->aspect_den == 117, "aspect %d:%d", i->aspect_num, i->aspect_den);
        CHECK(i->interlace == 't', "interlace %c", i->interlace);
        CHECK(strcmp(i->chroma, "420mpeg2") == 0, "chroma %s", i->chroma);
    }
    sd_y4m_reader_close(r);
    const char *bare = "YUV4MPEG2 W6 H4 F0:0\n";
    r = NULL;
    CHECK_OK(sd_y4m_reader_open_memory(&r, bare, strlen(bare), "bare.y4m"));
    if (r) {
        const sd_y4m_info *i = sd_y4m_reader_info(r);
        CHECK(i->fps_num == 0 && i->fps_den == 0 && i->interlace == '?' && strcmp(i->chroma, "420jpeg") == 0,
              "defaults: F%d:%d I%c C%s", i->fps_num, i->fps_den, i->interlace, i->chroma);
    }
    sd_y4m_reader_close(r);
}

/* Reads frames of a 4x2 4:2:0 stream (12 bytes a frame) built by the caller. */
static void frame_cases(void) {
    uint8_t rgb[4 * 2 * 3];
    int end = -1;
    sd_y4m_reader *r = NULL;

    /* two frames, then the clean end, which repeats */
    stream s = {0};
    put_text(&s, "YUV4MPEG2 W4 H2 F25:1 C420jpeg\n");
    put_frame(&s, 12, 16);
    put_text(&s, "FRAME Ixyz\n"); /* frame parameters are allowed and ignored */
    for (int i = 0; i < 12; i++) put(&s, (uint8_t[]){(uint8_t)(i < 8 ? 235 : 128)}, 1);
    CHECK_OK(sd_y4m_reader_open_memory(&r, s.data, s.len, "two.y4m"));
    if (r) {
        CHECK_OK(sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end));
        CHECK(end == 0 && rgb[0] == 0 && rgb[23] == 0, "frame 0 is black (end %d, %d)", end, rgb[0]);
        CHECK_OK(sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end));
        CHECK(end == 0 && rgb[0] == 255 && rgb[1] == 255 && rgb[2] == 255, "frame 1 is white (%d %d %d)", rgb[0], rgb[1],
              rgb[2]);
        CHECK_OK(sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end));
        CHECK(end == 1, "end of stream after two frames");
        end = 0;
        CHECK_OK(sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end));
        CHECK(end == 1, "end of stream again");
    }
    sd_y4m_reader_close(r);

    /* a buffer too small: refused before a frame is consumed */
    r = NULL;
    CHECK_OK(sd_y4m_reader_open_memory(&r, s.data, s.len, "small.y4m"));
    if (r) {
        CHECK(sd_y4m_reader_read_rgb(r, rgb, 10, &end) == SD_ERR_ARG, "small buffer refused");
        CHECK_OK(sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end));
        CHECK(end == 0 && rgb[0] == 0, "first frame still there");
    }
    sd_y4m_reader_close(r);

    struct {
        const char *name, *tail;
        size_t tail_len;
        sd_status want;
        const char *needle;
    } bad[] = {
        {"truncated data", "FRAME\nabcde", 11, SD_ERR_FORMAT, "truncated frame 1: expected 12 bytes, got 5"},
        {"truncated header", "FRA", 3, SD_ERR_FORMAT, "truncated frame 1"},
        {"no newline", "FRAME", 5, SD_ERR_FORMAT, "truncated frame 1"},
        {"garbage", "FRAMX\n", 6, SD_ERR_FORMAT, "expected 'FRAME', found 'FRAMX'"},
        {"junk", "JUNK\x01\n", 6, SD_ERR_FORMAT, "found 'JUNK?'"},
        {"empty line", "\n", 1, SD_ERR_FORMAT, "expected 'FRAME'"},
        {"nul", "FRAME\0\n", 7, SD_ERR_FORMAT, "NUL"},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        stream t = {0};
        put_text(&t, "YUV4MPEG2 W4 H2\n");
        put_frame(&t, 12, 100);
        put(&t, bad[c].tail, bad[c].tail_len);
        r = NULL;
        CHECK_OK(sd_y4m_reader_open_memory(&r, t.data, t.len, "bad.y4m"));
        if (!r) continue;
        CHECK_OK(sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end));
        sd_status st = sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end);
        CHECK(st == bad[c].want, "%s: expected %s, got %s (%s)", bad[c].name, sd_status_name(bad[c].want),
              sd_status_name(st), sd_last_error());
        CHECK(contains(sd_last_error(), bad[c].needle) && contains(sd_last_error(), "bad.y4m"),
              "%s: message mentions '%s': %s", bad[c].name, bad[c].needle, sd_last_error());
        CHECK(sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end) == SD_ERR_STATE, "%s: dead after an error",
              bad[c].name);
        sd_y4m_reader_close(r);
    }

    /* a frame header over the 1 KiB limit */
    stream t = {0};
    put_text(&t, "YUV4MPEG2 W4 H2\nFRAME ");
    for (int i = 0; i < 1100; i++) put_text(&t, "x");
    put_text(&t, "\n");
    r = NULL;
    CHECK_OK(sd_y4m_reader_open_memory(&r, t.data, t.len, "longframe.y4m"));
    if (r) CHECK(sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end) == SD_ERR_LIMIT, "long frame header: %s", sd_last_error());
    sd_y4m_reader_close(r);

    /* a header alone is an empty video, not an error */
    r = NULL;
    const char *empty = "YUV4MPEG2 W4 H2\n";
    CHECK_OK(sd_y4m_reader_open_memory(&r, empty, strlen(empty), "empty.y4m"));
    if (r) {
        CHECK_OK(sd_y4m_reader_read_frame(r, &end));
        CHECK(end == 1, "no frames: end at once");
        CHECK(sd_y4m_reader_planes(r, NULL, NULL) == NULL, "no planes without a frame");
    }
    sd_y4m_reader_close(r);
}

/* 4:4:4 and mono frames, odd 4:2:0 sizes: plane sizes and values. */
static void layout_cases(void) {
    uint8_t rgb[5 * 3 * 3];
    int end = 0, cw = -1, chh = -1;
    sd_y4m_reader *r = NULL;

    stream s = {0};
    put_text(&s, "YUV4MPEG2 W2 H2 C444\nFRAME\n");
    /* Y: 16 81 145 235, U: 128 90 54 128, V: 128 240 34 128 -> black, red, green, white */
    put(&s, (uint8_t[]){16, 81, 145, 235, 128, 90, 54, 128, 128, 240, 34, 128}, 12);
    CHECK_OK(sd_y4m_reader_open_memory(&r, s.data, s.len, "444.y4m"));
    if (r) {
        CHECK_OK(sd_y4m_reader_read_rgb(r, rgb, 12, &end));
        static const uint8_t want[12] = {0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 255};
        int worst = 0;
        for (int i = 0; i < 12; i++) worst = abs(rgb[i] - want[i]) > worst ? abs(rgb[i] - want[i]) : worst;
        CHECK(worst <= 2, "444 primaries within 2 levels (worst %d)", worst);
    }
    sd_y4m_reader_close(r);

    s.len = 0;
    put_text(&s, "YUV4MPEG2 W3 H1 Cmono\nFRAME\n");
    put(&s, (uint8_t[]){16, 126, 235}, 3);
    r = NULL;
    CHECK_OK(sd_y4m_reader_open_memory(&r, s.data, s.len, "mono.y4m"));
    if (r) {
        CHECK_OK(sd_y4m_reader_read_rgb(r, rgb, 9, &end));
        CHECK(rgb[0] == 0 && rgb[3] == rgb[4] && rgb[4] == rgb[5] && abs(rgb[3] - 128) <= 1 && rgb[6] == 255,
              "mono grey ramp: %d %d %d", rgb[0], rgb[3], rgb[6]);
        CHECK(sd_y4m_reader_planes(r, &cw, &chh) != NULL && cw == 0 && chh == 0, "mono has no chroma planes");
    }
    sd_y4m_reader_close(r);

    /* 5x3 4:2:0: chroma is 3x2 (rounded up), 15 + 2 * 6 = 27 bytes a frame */
    s.len = 0;
    put_text(&s, "YUV4MPEG2 W5 H3\n");
    put_frame(&s, 27, 128);
    r = NULL;
    CHECK_OK(sd_y4m_reader_open_memory(&r, s.data, s.len, "odd.y4m"));
    if (r) {
        CHECK_OK(sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end));
        CHECK(end == 0 && sd_y4m_reader_planes(r, &cw, &chh) && cw == 3 && chh == 2, "odd chroma plane %d x %d", cw, chh);
        CHECK_OK(sd_y4m_reader_read_frame(r, &end));
        CHECK(end == 1, "one odd frame exactly");
    }
    sd_y4m_reader_close(r);
}

/* Smooth test image: gradients in each channel. */
static void make_smooth(uint8_t *rgb, int w, int h) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(20 + 200 * x / (w - 1));
            p[1] = (uint8_t)(230 - 200 * y / (h - 1));
            p[2] = (uint8_t)(60 + 120 * (x + y) / (w + h - 2));
        }
}

static void diff_stats(const uint8_t *a, const uint8_t *b, size_t n, double *mean, int *worst) {
    double sum = 0;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs(a[i] - b[i]);
        sum += d;
        if (d > *worst) *worst = d;
    }
    *mean = sum / (double)n;
}

static void round_trip(void) {
    enum { W = 37, H = 21, FRAMES = 3 }; /* odd sizes: the edge chroma samples cover 1 or 2 pixels */
    size_t n = (size_t)W * H * 3;
    uint8_t *src = malloc(n), *back = malloc(n);
    make_smooth(src, W, H);
    const char *path = check_tmp("round_trip.y4m");
    sd_y4m_writer *w = NULL;
    CHECK_OK(sd_y4m_writer_open(&w, path, W, H, 30000, 1001));
    for (int f = 0; f < FRAMES && w; f++) CHECK_OK(sd_y4m_writer_write_rgb(w, src, n));
    CHECK(w && sd_y4m_writer_write_rgb(w, src, n - 1) == SD_ERR_ARG, "writer refuses a short buffer");
    CHECK_OK(sd_y4m_writer_close(w));

    FILE *f = fopen(path, "rb");
    char header[128] = {0};
    CHECK(f && fgets(header, sizeof header, f), "read the written header");
    if (f) fclose(f);
    CHECK(strcmp(header, "YUV4MPEG2 W37 H21 F30000:1001 Ip A1:1 C420jpeg\n") == 0, "written header: %s", header);

    sd_y4m_reader *r = NULL;
    CHECK_OK(sd_y4m_reader_open(&r, path));
    int frames = 0, end = 0;
    while (r && sd_y4m_reader_read_rgb(r, back, n, &end) == SD_OK && !end) {
        double mean;
        int worst;
        diff_stats(src, back, n, &mean, &worst);
        CHECK(mean < 1.5 && worst <= 6, "round trip frame %d: mean abs error %.3f, worst %d", frames, mean, worst);
        frames++;
    }
    CHECK(frames == FRAMES && end == 1, "read %d frames back (end %d): %s", frames, end, sd_last_error());
    sd_y4m_reader_close(r);

    /* YUYV (4:2:2) round trip on an even-width smooth image */
    enum { EW = W - 1 };
    size_t en = (size_t)EW * H * 3;
    uint8_t *even = malloc(en), *yuyv = malloc((size_t)EW * H * 2), *back2 = malloc(en);
    make_smooth(even, EW, H);
    CHECK_OK(sd_rgb_to_yuyv(yuyv, even, EW, H));
    CHECK_OK(sd_yuyv_to_rgb(back2, yuyv, EW, H, (size_t)EW * 2));
    double mean;
    int worst;
    diff_stats(even, back2, en, &mean, &worst);
    CHECK(mean < 1.5 && worst <= 6, "YUYV round trip: mean %.3f, worst %d", mean, worst);
    CHECK(sd_rgb_to_yuyv(yuyv, src, W, H) == SD_ERR_ARG, "YUYV needs an even width");
    CHECK(sd_yuyv_to_rgb(back2, yuyv, W - 1, H, 4) == SD_ERR_ARG, "YUYV stride too small refused");
    free(yuyv);
    free(back2);
    free(even);
    free(src);
    free(back);

    /* BT.601 limited range: known values */
    uint8_t red[2 * 2 * 3], y4[4], u1, v1;
    for (int i = 0; i < 4; i++) red[3 * i] = 255, red[3 * i + 1] = 0, red[3 * i + 2] = 0;
    sd_rgb_to_yuv420(y4, &u1, &v1, red, 2, 2);
    CHECK(y4[0] == 81 && u1 == 90 && v1 == 240, "red -> Y %d U %d V %d (want 81 90 240)", y4[0], u1, v1);
    uint8_t grey[3] = {128, 128, 128}, gy, gu, gv;
    sd_rgb_to_yuv420(&gy, &gu, &gv, grey, 1, 1);
    CHECK(gu == 128 && gv == 128, "grey has neutral chroma (%d %d)", gu, gv);

    /* writer errors name the path */
    w = NULL;
    CHECK(sd_y4m_writer_open(&w, "/nonexistent-dir/x.y4m", 4, 2, 25, 1) == SD_ERR_IO &&
              contains(sd_last_error(), "/nonexistent-dir/x.y4m"),
          "writer open failure: %s", sd_last_error());
    CHECK(sd_y4m_writer_open(&w, check_tmp("big.y4m"), 20000, 2, 25, 1) == SD_ERR_LIMIT && w == NULL,
          "writer size limit: %s", sd_last_error());
}

/* The FILE* reader only reads forward: feed it through a pipe. */
static void pipe_reader(void) {
    stream s = {0};
    put_text(&s, "YUV4MPEG2 W4 H2 F24:1\n");
    put_frame(&s, 12, 16);
    put_frame(&s, 12, 235);
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    CHECK(write(fds[1], s.data, s.len) == (ssize_t)s.len, "write to the pipe");
    close(fds[1]);
    FILE *f = fdopen(fds[0], "rb");
    sd_y4m_reader *r = NULL;
    CHECK_OK(sd_y4m_reader_open_file(&r, f, "pipe"));
    uint8_t rgb[24];
    int end = 0, frames = 0;
    while (r && sd_y4m_reader_read_rgb(r, rgb, sizeof rgb, &end) == SD_OK && !end) frames++;
    CHECK(frames == 2 && end == 1, "two frames through a pipe (%d, end %d)", frames, end);
    sd_y4m_reader_close(r);
    fclose(f); /* the reader borrowed it */

    sd_y4m_reader *missing = NULL;
    CHECK(sd_y4m_reader_open(&missing, "/nonexistent.y4m") == SD_ERR_IO && contains(sd_last_error(), "/nonexistent.y4m"),
          "missing file: %s", sd_last_error());
}

int main(void) {
    header_cases();
    frame_cases();
    layout_cases();
    round_trip();
    pipe_reader();
    return check_finish();
}
