/* y4m.c — see y4m.h. A y4m stream is a header line and then frames; the reader pulls bytes through
 * one tiny source interface (a FILE* or memory) so files, pipes and the fuzzer share one parser.
 * Colour conversion is 16.16 fixed point: exact enough (+-1 level against the float formulas),
 * deterministic across machines, and cheap on the IO thread. */
#include "base/y4m.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"

typedef enum y4m_chroma { Y4M_420, Y4M_444, Y4M_MONO } y4m_chroma;
typedef enum y4m_state { Y4M_READY, Y4M_ENDED, Y4M_FAILED } y4m_state;

struct sd_y4m_reader {
    sd_y4m_info info;
    y4m_chroma chroma;
    FILE *file; /* NULL for memory readers */
    bool owns_file;
    const uint8_t *mem;
    size_t mem_size, mem_pos;
    char name[256];
    int cw, ch;          /* chroma plane size (0 for mono) */
    size_t frame_bytes;  /* Y + U + V */
    uint8_t *frame;      /* frame_bytes, allocated at the first frame */
    int64_t index;       /* frames read so far */
    bool have_frame;
    y4m_state state;
};

struct sd_y4m_writer {
    FILE *file;
    bool owns_file;
    char name[256];
    int width, height;
    size_t y_bytes, c_bytes; /* one luma plane, one chroma plane */
    uint8_t *yuv;
    int64_t frames;
};

/* ---- byte source ------------------------------------------------------------------------------ */

static size_t src_read(sd_y4m_reader *r, void *dst, size_t n) {
    if (r->file) return fread(dst, 1, n, r->file);
    size_t left = r->mem_size - r->mem_pos;
    if (n > left) n = left;
    if (n) memcpy(dst, r->mem + r->mem_pos, n);
    r->mem_pos += n;
    return n;
}

static int src_getc(sd_y4m_reader *r) {
    if (r->file) return getc(r->file);
    return r->mem_pos < r->mem_size ? r->mem[r->mem_pos++] : EOF;
}

/* Reads one line (without its '\n') into buf[SD_Y4M_MAX_LINE]. Returns the bytes read before the
 * newline or EOF in *len and whether the newline was found. A line that fills the buffer without a
 * newline is refused here, so a hostile stream cannot make us read without bound. */
static sd_status read_line(sd_y4m_reader *r, char *buf, size_t *len, bool *newline, const char *what) {
    size_t n = 0;
    *newline = false;
    for (;;) {
        int c = src_getc(r);
        if (c == EOF) break;
        if (c == '\n') {
            *newline = true;
            break;
        }
        if (n + 1 >= SD_Y4M_MAX_LINE) /* + 1: the newline counts toward the limit */
            return sd_fail(SD_ERR_LIMIT, "%s: %s is longer than %d bytes", r->name, what, SD_Y4M_MAX_LINE);
        if (c == '\0') return sd_fail(SD_ERR_FORMAT, "%s: NUL byte in %s", r->name, what);
        buf[n++] = (char)c;
    }
    buf[n] = '\0';
    *len = n;
    if (r->file && ferror(r->file))
        return sd_fail(SD_ERR_IO, "%s: read error in %s: %s", r->name, what, strerror(errno));
    return SD_OK;
}

/* Up to 24 bytes of text, non-printables as '?', for messages about unexpected input. */
static const char *printable(char *out, size_t out_size, const char *text) {
    size_t i = 0;
    for (; text[i] && i < 24 && i + 1 < out_size; i++)
        out[i] = (text[i] >= 32 && text[i] < 127) ? text[i] : '?';
    out[i] = '\0';
    return out;
}

/* ---- header ----------------------------------------------------------------------------------- */

/* Decimal digits only, no sign; values past 1e9 saturate so "W99999999999" reads as too large. */
static bool parse_uint(const char *s, long *out) {
    if (!*s) return false;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        if (v < 1000000000L) v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

/* "num:den" with both parts decimal; stops at the end of the token. */
static bool parse_ratio(const char *s, int *num, int *den) {
    char a[16], b[16];
    const char *colon = strchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof a || strlen(colon + 1) >= sizeof b) return false;
    memcpy(a, s, (size_t)(colon - s));
    a[colon - s] = '\0';
    strcpy(b, colon + 1);
    long n, d;
    if (!parse_uint(a, &n) || !parse_uint(b, &d) || n > INT_MAX || d > INT_MAX) return false;
    *num = (int)n;
    *den = (int)d;
    return true;
}

static sd_status parse_chroma(sd_y4m_reader *r, const char *value) {
    static const char *const c420[] = {"420jpeg", "420paldv", "420mpeg2", "420"};
    for (size_t i = 0; i < sizeof c420 / sizeof c420[0]; i++)
        if (strcmp(value, c420[i]) == 0) {
            r->chroma = Y4M_420;
            return SD_OK;
        }
    if (strcmp(value, "444") == 0) r->chroma = Y4M_444;
    else if (strcmp(value, "mono") == 0) r->chroma = Y4M_MONO;
    else {
        char shown[32];
        return sd_fail(SD_ERR_UNSUPPORTED,
                       "%s: colour space C%s is not supported (8-bit C420jpeg, C420paldv, C420mpeg2, C420, "
                       "C444 and Cmono are; convert with ffmpeg -pix_fmt yuv420p)",
                       r->name, printable(shown, sizeof shown, value));
    }
    return SD_OK;
}

static sd_status check_size(const char *name, long w, long h) {
    if (w < 1 || h < 1) return sd_fail(SD_ERR_FORMAT, "%s: frame size %ld x %ld has no pixels", name, w, h);
    if (w > SD_Y4M_MAX_SIDE || h > SD_Y4M_MAX_SIDE || (int64_t)w * h > SD_Y4M_MAX_PIXELS)
        return sd_fail(SD_ERR_LIMIT, "%s: frame size %ld x %ld exceeds the limit (%d pixels a side, %d pixels)", name, w,
                       h, SD_Y4M_MAX_SIDE, SD_Y4M_MAX_PIXELS);
    return SD_OK;
}

static sd_status parse_header(sd_y4m_reader *r) {
    char line[SD_Y4M_MAX_LINE], shown[32];
    size_t len;
    bool newline;
    SD_TRY(read_line(r, line, &len, &newline, "the header line"));
    if (len == 0 && !newline) return sd_fail(SD_ERR_FORMAT, "%s: empty stream, expected a YUV4MPEG2 header", r->name);
    if (strncmp(line, "YUV4MPEG2", 9) != 0 || (line[9] != ' ' && line[9] != '\0'))
        return sd_fail(SD_ERR_FORMAT,
                       "%s: not a YUV4MPEG2 stream (starts with '%s'); convert with: ffmpeg -i INPUT -f yuv4mpegpipe OUT.y4m",
                       r->name, printable(shown, sizeof shown, line));
    if (!newline) return sd_fail(SD_ERR_FORMAT, "%s: truncated header (no end of line after %zu bytes)", r->name, len);

    long w = -1, h = -1;
    sd_y4m_info *info = &r->info;
    info->interlace = '?';
    snprintf(info->chroma, sizeof info->chroma, "420jpeg");
    r->chroma = Y4M_420;
    char *save = NULL;
    for (char *tok = strtok_r(line + 9, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        const char *v = tok + 1;
        switch (tok[0]) {
        case 'W':
        case 'H':
            if (!parse_uint(v, tok[0] == 'W' ? &w : &h))
                return sd_fail(SD_ERR_FORMAT, "%s: bad %s tag '%s' (expected digits)", r->name,
                               tok[0] == 'W' ? "width" : "height", printable(shown, sizeof shown, tok));
            break;
        case 'F':
            if (!parse_ratio(v, &info->fps_num, &info->fps_den))
                return sd_fail(SD_ERR_FORMAT, "%s: bad frame rate tag '%s' (expected F<num>:<den>)", r->name,
                               printable(shown, sizeof shown, tok));
            if (info->fps_num == 0 || info->fps_den == 0) info->fps_num = info->fps_den = 0;
            break;
        case 'A':
            if (!parse_ratio(v, &info->aspect_num, &info->aspect_den))
                return sd_fail(SD_ERR_FORMAT, "%s: bad aspect tag '%s' (expected A<num>:<den>)", r->name,
                               printable(shown, sizeof shown, tok));
            if (info->aspect_num == 0 || info->aspect_den == 0) info->aspect_num = info->aspect_den = 0;
            break;
        case 'I':
            if (strlen(v) != 1 || !strchr("ptbm?", v[0]))
                return sd_fail(SD_ERR_FORMAT, "%s: bad interlacing tag '%s' (expected Ip, It, Ib, Im or I?)", r->name,
                               printable(shown, sizeof shown, tok));
            info->interlace = v[0];
            break;
        case 'C':
            SD_TRY(parse_chroma(r, v));
            snprintf(info->chroma, sizeof info->chroma, "%s", v); /* accepted values are short */
            break;
        default: break; /* X comments and tags from later versions of the format */
        }
    }
    if (w < 0) return sd_fail(SD_ERR_FORMAT, "%s: header has no W (width) tag", r->name);
    if (h < 0) return sd_fail(SD_ERR_FORMAT, "%s: header has no H (height) tag", r->name);
    SD_TRY(check_size(r->name, w, h));
    info->width = (int)w;
    info->height = (int)h;

    size_t luma = (size_t)w * (size_t)h;
    if (r->chroma == Y4M_420) {
        r->cw = (int)((w + 1) / 2);
        r->ch = (int)((h + 1) / 2);
    } else if (r->chroma == Y4M_444) {
        r->cw = (int)w;
        r->ch = (int)h;
    }
    r->frame_bytes = luma + 2 * (size_t)r->cw * (size_t)r->ch;
    return SD_OK;
}

static void set_name(char *dst, size_t size, const char *name) { snprintf(dst, size, "%s", name ? name : "y4m"); }

static sd_status finish_open(sd_y4m_reader **out, sd_y4m_reader *r) {
    sd_status st = parse_header(r);
    if (st != SD_OK) {
        sd_y4m_reader_close(r);
        return st;
    }
    *out = r;
    return SD_OK;
}

static sd_y4m_reader *new_reader(const char *name) {
    sd_y4m_reader *r = calloc(1, sizeof *r);
    if (r) set_name(r->name, sizeof r->name, name);
    return r;
}

sd_status sd_y4m_reader_open_file(sd_y4m_reader **out, FILE *file, const char *name) {
    SD_CHECK_ARG(out && file, "sd_y4m_reader_open_file: NULL argument");
    sd_y4m_reader *r = new_reader(name);
    if (!r) return sd_fail(SD_ERR_NOMEM, "%s: cannot allocate a y4m reader", name ? name : "y4m");
    r->file = file;
    return finish_open(out, r);
}

sd_status sd_y4m_reader_open(sd_y4m_reader **out, const char *path) {
    SD_CHECK_ARG(out && path, "sd_y4m_reader_open: NULL argument");
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) return sd_fail(SD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    sd_y4m_reader *r = new_reader(is_stdin ? "stdin" : path);
    if (!r) {
        if (!is_stdin) fclose(f);
        return sd_fail(SD_ERR_NOMEM, "%s: cannot allocate a y4m reader", path);
    }
    r->file = f;
    r->owns_file = !is_stdin;
    return finish_open(out, r);
}

sd_status sd_y4m_reader_open_memory(sd_y4m_reader **out, const void *bytes, size_t size, const char *name) {
    SD_CHECK_ARG(out && (bytes || size == 0), "sd_y4m_reader_open_memory: NULL argument");
    sd_y4m_reader *r = new_reader(name);
    if (!r) return sd_fail(SD_ERR_NOMEM, "%s: cannot allocate a y4m reader", name ? name : "y4m");
    r->mem = bytes;
    r->mem_size = size;
    return finish_open(out, r);
}

const sd_y4m_info *sd_y4m_reader_info(const sd_y4m_reader *reader) { return reader ? &reader->info : NULL; }

void sd_y4m_reader_close(sd_y4m_reader *reader) {
    if (!reader) return;
    if (reader->owns_file) fclose(reader->file);
    free(reader->frame);
    free(reader);
}

/* ---- frames ----------------------------------------------------------------------------------- */

static sd_status read_frame(sd_y4m_reader *r, int *end) {
    char line[SD_Y4M_MAX_LINE], shown[32];
    size_t len;
    bool newline;
    SD_TRY(read_line(r, line, &len, &newline, "a frame header"));
    if (len == 0 && !newline) { /* EOF where a frame would start: the clean end */
        r->state = Y4M_ENDED;
        *end = 1;
        return SD_OK;
    }
    if (!newline)
        return sd_fail(SD_ERR_FORMAT, "%s: truncated frame %lld: the stream ends inside the frame header ('%s')",
                       r->name, (long long)r->index, printable(shown, sizeof shown, line));
    if (strncmp(line, "FRAME", 5) != 0 || (line[5] != ' ' && line[5] != '\0'))
        return sd_fail(SD_ERR_FORMAT, "%s: frame %lld: expected 'FRAME', found '%s'", r->name, (long long)r->index,
                       printable(shown, sizeof shown, line));
    /* A memory reader knows what is left: a short frame is reported before allocating for it. */
    if (!r->file && r->mem_size - r->mem_pos < r->frame_bytes)
        return sd_fail(SD_ERR_FORMAT, "%s: truncated frame %lld: expected %zu bytes, got %zu", r->name,
                       (long long)r->index, r->frame_bytes, r->mem_size - r->mem_pos);
    if (!r->frame) {
        r->frame = malloc(r->frame_bytes);
        if (!r->frame)
            return sd_fail(SD_ERR_NOMEM, "%s: cannot allocate a %zu-byte frame", r->name, r->frame_bytes);
    }
    size_t got = src_read(r, r->frame, r->frame_bytes);
    if (got != r->frame_bytes) {
        if (r->file && ferror(r->file))
            return sd_fail(SD_ERR_IO, "%s: read error in frame %lld: %s", r->name, (long long)r->index, strerror(errno));
        return sd_fail(SD_ERR_FORMAT, "%s: truncated frame %lld: expected %zu bytes, got %zu", r->name,
                       (long long)r->index, r->frame_bytes, got);
    }
    r->index++;
    r->have_frame = true;
    *end = 0;
    return SD_OK;
}

sd_status sd_y4m_reader_read_frame(sd_y4m_reader *reader, int *end) {
    SD_CHECK_ARG(reader && end, "sd_y4m_reader_read_frame: NULL argument");
    if (reader->state == Y4M_ENDED) {
        *end = 1;
        return SD_OK;
    }
    if (reader->state == Y4M_FAILED)
        return sd_fail(SD_ERR_STATE, "%s: the stream failed earlier; no more frames", reader->name);
    sd_status st = read_frame(reader, end);
    if (st != SD_OK) {
        reader->state = Y4M_FAILED;
        reader->have_frame = false;
    }
    return st;
}

const uint8_t *sd_y4m_reader_planes(const sd_y4m_reader *reader, int *chroma_width, int *chroma_height) {
    if (!reader || !reader->have_frame) return NULL;
    if (chroma_width) *chroma_width = reader->cw;
    if (chroma_height) *chroma_height = reader->ch;
    return reader->frame;
}

sd_status sd_y4m_reader_frame_rgb(const sd_y4m_reader *r, uint8_t *rgb, size_t rgb_len) {
    SD_CHECK_ARG(r && rgb, "sd_y4m_reader_frame_rgb: NULL argument");
    if (!r->have_frame) return sd_fail(SD_ERR_STATE, "%s: no frame has been read", r->name);
    int w = r->info.width, h = r->info.height;
    size_t need = (size_t)w * (size_t)h * 3;
    SD_CHECK_ARG(rgb_len >= need, "%s: RGB buffer of %zu bytes is too small for %d x %d (need %zu)", r->name, rgb_len,
                 w, h, need);
    const uint8_t *y = r->frame, *u = y + (size_t)w * h, *v = u + (size_t)r->cw * r->ch;
    if (r->chroma == Y4M_420) sd_yuv420_to_rgb(rgb, y, u, v, w, h);
    else if (r->chroma == Y4M_444) sd_yuv444_to_rgb(rgb, y, u, v, w, h);
    else sd_gray_to_rgb(rgb, y, w, h);
    return SD_OK;
}

sd_status sd_y4m_reader_read_rgb(sd_y4m_reader *reader, uint8_t *rgb, size_t rgb_len, int *end) {
    SD_CHECK_ARG(reader && rgb && end, "sd_y4m_reader_read_rgb: NULL argument");
    size_t need = (size_t)reader->info.width * (size_t)reader->info.height * 3;
    /* checked before reading, so a too-small buffer does not consume a frame */
    SD_CHECK_ARG(rgb_len >= need, "%s: RGB buffer of %zu bytes is too small for %d x %d (need %zu)", reader->name,
                 rgb_len, reader->info.width, reader->info.height, need);
    SD_TRY(sd_y4m_reader_read_frame(reader, end));
    if (*end) return SD_OK;
    return sd_y4m_reader_frame_rgb(reader, rgb, rgb_len);
}

/* ---- colour ----------------------------------------------------------------------------------- */

/* BT.601 limited range, 16.16 fixed point (the exact rationals 255/219 and 255/224 times the
 * Kr = 0.299, Kb = 0.114 matrix, rounded). */
enum {
    K_Y = 76309,    /* 255/219 */
    K_RV = 104597,  /* 255/224 * 1.402 */
    K_GU = 25675,   /* 255/224 * 1.772 * 0.114 / 0.587 */
    K_GV = 53279,   /* 255/224 * 1.402 * 0.299 / 0.587 */
    K_BU = 132201,  /* 255/224 * 1.772 */
    HALF = 1 << 15, /* rounding */
};

/* Clamps before shifting, so a negative value is never shifted (implementation-defined in C). */
static inline uint8_t clamp_shift(int32_t v) {
    v += HALF;
    if (v <= 0) return 0;
    if (v >= (255 << 16)) return 255;
    return (uint8_t)(v >> 16);
}

/* One pixel; u and v are already centred (value - 128), y not yet offset. */
static inline void yuv_pixel(uint8_t *rgb, int y, int u, int v) {
    int32_t c = (y - 16) * K_Y;
    rgb[0] = clamp_shift(c + K_RV * v);
    rgb[1] = clamp_shift(c - K_GU * u - K_GV * v);
    rgb[2] = clamp_shift(c + K_BU * u);
}

/* Bilinear chroma at centre siting: output pixel x sits at chroma coordinate x/2 - 1/4, so it
 * mixes its own sample (3/4) with the neighbour on its side (1/4); edges repeat. Returns the
 * neighbour index for pixel x of a plane n samples wide. */
static inline int chroma_neighbour(int x, int n) {
    int c = x >> 1, o = (x & 1) ? c + 1 : c - 1;
    return o < 0 ? 0 : (o >= n ? n - 1 : o);
}

void sd_yuv420_to_rgb(uint8_t *rgb, const uint8_t *y, const uint8_t *u, const uint8_t *v, int width, int height) {
    int cw = (width + 1) / 2, chh = (height + 1) / 2;
    for (int row = 0; row < height; row++) {
        const uint8_t *u0 = u + (size_t)(row >> 1) * cw, *u1 = u + (size_t)chroma_neighbour(row, chh) * cw;
        const uint8_t *v0 = v + (size_t)(row >> 1) * cw, *v1 = v + (size_t)chroma_neighbour(row, chh) * cw;
        const uint8_t *yrow = y + (size_t)row * width;
        uint8_t *out = rgb + (size_t)row * width * 3;
        for (int x = 0; x < width; x++) {
            int a = x >> 1, b = chroma_neighbour(x, cw);
            /* 9/16 own, 3/16 each neighbour, 1/16 diagonal; + 8 rounds; - 128 centres */
            int uu = ((9 * u0[a] + 3 * u0[b] + 3 * u1[a] + u1[b] + 8) >> 4) - 128;
            int vv = ((9 * v0[a] + 3 * v0[b] + 3 * v1[a] + v1[b] + 8) >> 4) - 128;
            yuv_pixel(out + 3 * (size_t)x, yrow[x], uu, vv);
        }
    }
}

void sd_yuv444_to_rgb(uint8_t *rgb, const uint8_t *y, const uint8_t *u, const uint8_t *v, int width, int height) {
    size_t n = (size_t)width * (size_t)height;
    for (size_t i = 0; i < n; i++) yuv_pixel(rgb + 3 * i, y[i], u[i] - 128, v[i] - 128);
}

void sd_gray_to_rgb(uint8_t *rgb, const uint8_t *y, int width, int height) {
    size_t n = (size_t)width * (size_t)height;
    for (size_t i = 0; i < n; i++) {
        uint8_t g = clamp_shift((y[i] - 16) * K_Y);
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = g;
    }
}

/* RGB -> Y'CbCr, 16.16; the chroma rows sum to zero so grey gives exactly 128. Chroma takes the
 * sums of `count` pixels and divides inside the fixed-point value, averaging without losing bits. */
static inline uint8_t luma(int r, int g, int b) { return clamp_shift((16 << 16) + 16829 * r + 33039 * g + 6416 * b); }
static inline uint8_t cb(int r, int g, int b, int count) {
    return clamp_shift((128 << 16) + (-9714 * r - 19070 * g + 28784 * b) / count);
}
static inline uint8_t cr(int r, int g, int b, int count) {
    return clamp_shift((128 << 16) + (28784 * r - 24103 * g - 4681 * b) / count);
}

void sd_rgb_to_yuv420(uint8_t *y, uint8_t *u, uint8_t *v, const uint8_t *rgb, int width, int height) {
    size_t n = (size_t)width * (size_t)height;
    for (size_t i = 0; i < n; i++) y[i] = luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
    int cw = (width + 1) / 2, chh = (height + 1) / 2;
    for (int cy = 0; cy < chh; cy++)
        for (int cx = 0; cx < cw; cx++) {
            /* average the RGB of the (up to) 2x2 pixels this sample covers; linear, so the same
             * as averaging their chroma */
            int sr = 0, sg = 0, sb = 0, count = 0;
            for (int dy = 0; dy < 2 && 2 * cy + dy < height; dy++)
                for (int dx = 0; dx < 2 && 2 * cx + dx < width; dx++) {
                    const uint8_t *p = rgb + ((size_t)(2 * cy + dy) * width + (size_t)(2 * cx + dx)) * 3;
                    sr += p[0];
                    sg += p[1];
                    sb += p[2];
                    count++;
                }
            size_t o = (size_t)cy * cw + cx;
            u[o] = cb(sr, sg, sb, count);
            v[o] = cr(sr, sg, sb, count);
        }
}

sd_status sd_yuyv_to_rgb(uint8_t *rgb, const uint8_t *yuyv, int width, int height, size_t stride) {
    SD_CHECK_ARG(rgb && yuyv, "sd_yuyv_to_rgb: NULL argument");
    SD_CHECK_ARG(width > 0 && height > 0 && width % 2 == 0, "sd_yuyv_to_rgb: bad size %d x %d (width must be even)",
                 width, height);
    SD_CHECK_ARG(stride >= (size_t)width * 2, "sd_yuyv_to_rgb: stride %zu is less than 2 * width %d", stride, width);
    for (int row = 0; row < height; row++) {
        const uint8_t *p = yuyv + (size_t)row * stride;
        uint8_t *out = rgb + (size_t)row * width * 3;
        for (int x = 0; x < width; x += 2, p += 4) {
            /* 4:2:2 chroma is co-sited with the even pixel: nearest is the usual reading */
            yuv_pixel(out + 3 * (size_t)x, p[0], p[1] - 128, p[3] - 128);
            yuv_pixel(out + 3 * (size_t)x + 3, p[2], p[1] - 128, p[3] - 128);
        }
    }
    return SD_OK;
}

sd_status sd_rgb_to_yuyv(uint8_t *yuyv, const uint8_t *rgb, int width, int height) {
    SD_CHECK_ARG(rgb && yuyv, "sd_rgb_to_yuyv: NULL argument");
    SD_CHECK_ARG(width > 0 && height > 0 && width % 2 == 0, "sd_rgb_to_yuyv: bad size %d x %d (width must be even)",
                 width, height);
    size_t n = (size_t)width * (size_t)height;
    for (size_t i = 0; i < n; i += 2) {
        const uint8_t *a = rgb + 3 * i, *b = a + 3;
        int r = a[0] + b[0], g = a[1] + b[1], bl = a[2] + b[2]; /* the pair shares one chroma sample */
        uint8_t *o = yuyv + 2 * i;
        o[0] = luma(a[0], a[1], a[2]);
        o[1] = cb(r, g, bl, 2);
        o[2] = luma(b[0], b[1], b[2]);
        o[3] = cr(r, g, bl, 2);
    }
    return SD_OK;
}

/* ---- writer ----------------------------------------------------------------------------------- */

sd_status sd_y4m_writer_open(sd_y4m_writer **out, const char *path, int width, int height, int fps_num,
                             int fps_den) {
    SD_CHECK_ARG(out && path, "sd_y4m_writer_open: NULL argument");
    SD_TRY(check_size(path, width, height));
    if (fps_num <= 0 || fps_den <= 0) fps_num = 25, fps_den = 1;
    sd_y4m_writer *w = calloc(1, sizeof *w);
    if (!w) return sd_fail(SD_ERR_NOMEM, "%s: cannot allocate a y4m writer", path);
    bool is_stdout = strcmp(path, "-") == 0;
    set_name(w->name, sizeof w->name, is_stdout ? "stdout" : path);
    w->width = width;
    w->height = height;
    w->y_bytes = (size_t)width * (size_t)height;
    w->c_bytes = (size_t)((width + 1) / 2) * (size_t)((height + 1) / 2);
    w->yuv = malloc(w->y_bytes + 2 * w->c_bytes);
    if (!w->yuv) {
        free(w);
        return sd_fail(SD_ERR_NOMEM, "%s: cannot allocate a %d x %d frame", path, width, height);
    }
    w->file = is_stdout ? stdout : fopen(path, "wb");
    if (!w->file) {
        sd_status st = sd_fail(SD_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(w->yuv);
        free(w);
        return st;
    }
    w->owns_file = !is_stdout;
    if (fprintf(w->file, "YUV4MPEG2 W%d H%d F%d:%d Ip A1:1 C420jpeg\n", width, height, fps_num, fps_den) < 0) {
        sd_status st = sd_fail(SD_ERR_IO, "%s: cannot write the header: %s", w->name, strerror(errno));
        if (w->owns_file) fclose(w->file);
        free(w->yuv);
        free(w);
        return st;
    }
    *out = w;
    return SD_OK;
}

sd_status sd_y4m_writer_write_rgb(sd_y4m_writer *w, const uint8_t *rgb, size_t rgb_len) {
    SD_CHECK_ARG(w && rgb, "sd_y4m_writer_write_rgb: NULL argument");
    SD_CHECK_ARG(rgb_len >= w->y_bytes * 3, "%s: RGB buffer of %zu bytes is too small for %d x %d", w->name, rgb_len,
                 w->width, w->height);
    uint8_t *y = w->yuv, *u = y + w->y_bytes, *v = u + w->c_bytes;
    sd_rgb_to_yuv420(y, u, v, rgb, w->width, w->height);
    size_t total = w->y_bytes + 2 * w->c_bytes;
    if (fwrite("FRAME\n", 1, 6, w->file) != 6 || fwrite(w->yuv, 1, total, w->file) != total)
        return sd_fail(SD_ERR_IO, "%s: cannot write frame %lld: %s", w->name, (long long)w->frames, strerror(errno));
    w->frames++;
    return SD_OK;
}

sd_status sd_y4m_writer_close(sd_y4m_writer *w) {
    if (!w) return SD_OK;
    sd_status st = SD_OK;
    bool bad = fflush(w->file) != 0 || ferror(w->file);
    if (w->owns_file && fclose(w->file) != 0) bad = true;
    if (bad) st = sd_fail(SD_ERR_IO, "%s: cannot finish writing: %s", w->name, strerror(errno));
    free(w->yuv);
    free(w);
    return st;
}
