/* frame_io.c — see frame_io.h. Each kind of source or sink is a few fields of one struct and a
 * branch in read/write: four sources and three sinks do not earn a vtable. Frames of another size
 * than the stream's go through sd_image_fit; same-size frames are read straight into the caller's
 * buffer.
 *
 * Interrupts: y4m and raw input is read through a FILE made with fopencookie whose read waits in
 * poll() for at most 100 ms at a time and gives up once frame_io_interrupt() was called, so a
 * Ctrl-C ends even a read from a pipe whose writer sends nothing. File outputs are written under
 * a temporary name and renamed when the first frame is in; nothing is left when none was. */
#define _GNU_SOURCE /* fopencookie */
#include "frame_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "sdstream.h"

enum { MAX_SIDE = 16384, MAX_PIXELS = 64 << 20, PATH_CAP = 4096, ERR_CAP = 1024 };

static volatile sig_atomic_t g_interrupted;

void frame_io_interrupt(void) { g_interrupted = 1; }
bool frame_io_interrupted(void) { return g_interrupted != 0; }

/* fopencookie read: the fd's bytes, waiting in slices so an interrupt is seen within 100 ms. */
static ssize_t cookie_read(void *cookie, char *buf, size_t size) {
    int fd = (int)(intptr_t)cookie;
    for (;;) {
        if (g_interrupted) {
            errno = EINTR;
            return -1;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 100);
        if (r < 0 && errno != EINTR) return -1;
        if (r <= 0) continue;
        ssize_t n = read(fd, buf, size);
        if (n >= 0 || errno != EINTR) return n;
    }
}

static int cookie_close(void *cookie) {
    int fd = (int)(intptr_t)cookie;
    return fd == STDIN_FILENO ? 0 : close(fd);
}

/* spec "-" is stdin (kept open); anything else is opened. NULL with errno set on failure. */
static FILE *open_interruptible(const char *spec) {
    int fd = strcmp(spec, "-") == 0 ? STDIN_FILENO : open(spec, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    FILE *f = fopencookie((void *)(intptr_t)fd, "rb", (cookie_io_functions_t){cookie_read, NULL, NULL, cookie_close});
    if (!f && fd != STDIN_FILENO) close(fd);
    return f;
}

typedef enum source_kind { SRC_FOLDER, SRC_Y4M, SRC_RAW, SRC_V4L2 } source_kind;
typedef enum sink_kind { SINK_FOLDER, SINK_Y4M, SINK_V4L2 } sink_kind;

struct frame_source {
    source_kind kind;
    char path[PATH_CAP];
    int width, height; /* delivered size */
    int nw, nh;        /* the source's own frame size (y4m, raw, camera) */
    uint8_t *native;   /* nw * nh * 3, only when it differs from the delivered size */
    double fps;
    char err[ERR_CAP];
    char **files; /* folder: sorted image paths */
    size_t nfiles, next;
    sd_image first; /* folder: the first image, loaded at open to learn the size and fail early */
    sd_y4m_reader *y4m;
    FILE *file; /* y4m and raw: the interruptible stream */
    int64_t index; /* frames delivered */
    v4l2_camera *cap;
};

struct frame_sink {
    sink_kind kind;
    char path[PATH_CAP];
    char tmp_path[PATH_CAP]; /* y4m file: written here, renamed to path at close ("" for stdout) */
    bool created_dir;        /* folder: made by open, removed again at close if nothing was written */
    int width, height;
    char err[ERR_CAP];
    sd_y4m_writer *y4m;
    v4l2_loopback *out;
    int64_t index;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool valid_size(long w, long h) { return w >= 1 && h >= 1 && w <= MAX_SIDE && h <= MAX_SIDE && w * h <= MAX_PIXELS; }

bool frame_parse_size(const char *text, int *width, int *height) {
    if (!text) return false;
    char *end;
    errno = 0;
    long w = strtol(text, &end, 10);
    if (end == text || (*end != 'x' && *end != 'X') || errno) return false;
    const char *hs = end + 1;
    long h = strtol(hs, &end, 10);
    if (end == hs || *end || errno || !valid_size(w, h)) return false;
    *width = (int)w;
    *height = (int)h;
    return true;
}

bool frame_spec_is_v4l2(const char *spec) {
    return spec && (strncmp(spec, "/dev/video", 10) == 0 || strncmp(spec, "/dev/v4l/", 9) == 0);
}

static bool has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), m = strlen(ext);
    return n >= m && strcasecmp(path + n - m, ext) == 0;
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Copies src (size sw x sh) into dst at the delivered size, fitting when the sizes differ. */
static int deliver(char *err, size_t errlen, const char *what, const uint8_t *src, int sw, int sh, uint8_t *dst,
                   int dw, int dh) {
    if (sw == dw && sh == dh) {
        if (src != dst) memcpy(dst, src, (size_t)dw * (size_t)dh * 3);
        return 1;
    }
    sd_image in = {sw, sh, (uint8_t *)src}, fitted = {0, 0, NULL};
    sd_status st = sd_image_fit(&fitted, &in, dw, dh);
    if (st != SD_OK) {
        set_err(err, errlen, "%s: cannot fit a %d x %d frame to %d x %d: %s", what, sw, sh, dw, dh, sd_last_error());
        return -1;
    }
    memcpy(dst, fitted.pixels, (size_t)dw * (size_t)dh * 3);
    sd_image_free(&fitted);
    return 1;
}

/* ---- image folders ---------------------------------------------------------------------------- */

/* Natural order: digit runs compare as numbers, so img2.png comes before img10.png. */
static int natural_cmp(const char *a, const char *b) {
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            const char *ea = a, *eb = b;
            while (*a == '0') a++;
            while (*b == '0') b++;
            ea = a;
            eb = b;
            while (*ea >= '0' && *ea <= '9') ea++;
            while (*eb >= '0' && *eb <= '9') eb++;
            if (ea - a != eb - b) return (ea - a) < (eb - b) ? -1 : 1;
            int c = strncmp(a, b, (size_t)(ea - a));
            if (c) return c;
            a = ea;
            b = eb;
        } else {
            if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++;
            b++;
        }
    }
    return *a ? 1 : (*b ? -1 : 0);
}

static int compare_paths(const void *x, const void *y) {
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    int c = natural_cmp(a, b);
    return c ? c : strcmp(a, b); /* "a01" and "a1" tie naturally; keep the order total */
}

static bool is_image_name(const char *name) {
    static const char *const exts[] = {".png", ".jpg", ".jpeg", ".bmp"};
    if (name[0] == '.') return false; /* hidden files, editor droppings */
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (has_ext(name, exts[i])) return true;
    return false;
}

static int open_folder(frame_source *s, char *err, size_t errlen) {
    DIR *d = opendir(s->path);
    if (!d) {
        set_err(err, errlen, "%s: cannot read the folder: %s", s->path, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!is_image_name(e->d_name)) continue;
        char full[PATH_CAP];
        int n = snprintf(full, sizeof full, "%s/%s", s->path, e->d_name);
        struct stat st;
        if (n < 0 || (size_t)n >= sizeof full || stat(full, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (s->nfiles == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **grown = realloc(s->files, ncap * sizeof *grown);
            if (!grown) {
                rc = -1;
                break;
            }
            s->files = grown;
            cap = ncap;
        }
        if (!(s->files[s->nfiles] = strdup(full))) {
            rc = -1;
            break;
        }
        s->nfiles++;
    }
    closedir(d);
    if (rc) {
        set_err(err, errlen, "%s: out of memory listing the folder", s->path);
        return -1;
    }
    if (s->nfiles == 0) {
        set_err(err, errlen, "%s: no images (.png .jpg .jpeg .bmp) in the folder", s->path);
        return -1;
    }
    qsort(s->files, s->nfiles, sizeof *s->files, compare_paths);
    if (sd_image_load(&s->first, s->files[0]) != SD_OK) {
        set_err(err, errlen, "%s", sd_last_error()); /* names the file */
        return -1;
    }
    s->nw = s->first.width;
    s->nh = s->first.height;
    return 0;
}

static int read_folder(frame_source *s, uint8_t *rgb) {
    if (s->next >= s->nfiles) return 0;
    const char *path = s->files[s->next];
    sd_image img = {0, 0, NULL};
    if (s->next == 0) {
        img = s->first;
        s->first = (sd_image){0, 0, NULL};
    } else if (sd_image_load(&img, path) != SD_OK) {
        set_err(s->err, sizeof s->err, "%s", sd_last_error());
        s->next++; /* past it: frame_source_read may be called again to skip it */
        return -1;
    }
    s->next++;
    int rc = deliver(s->err, sizeof s->err, path, img.pixels, img.width, img.height, rgb, s->width, s->height);
    sd_image_free(&img);
    return rc;
}

/* ---- y4m and raw streams ---------------------------------------------------------------------- */

static int open_file(frame_source *s, const char *spec, char *err, size_t errlen) {
    s->file = open_interruptible(spec);
    if (!s->file) set_err(err, errlen, "%s: cannot open: %s", spec, strerror(errno));
    return s->file ? 0 : -1;
}

static int open_y4m(frame_source *s, const char *spec, char *err, size_t errlen) {
    if (open_file(s, spec, err, errlen) != 0) return -1;
    if (sd_y4m_reader_open_file(&s->y4m, s->file, s->path) != SD_OK) {
        /* not y4m: maybe raw frames, which carry no size */
        bool y4m_name = has_ext(spec, ".y4m");
        set_err(err, errlen, "%s%s", sd_last_error(),
                y4m_name || g_interrupted ? "" : " (raw RGB24 frames? give their size with --size WxH)");
        return -1;
    }
    const sd_y4m_info *info = sd_y4m_reader_info(s->y4m);
    s->nw = info->width;
    s->nh = info->height;
    if (info->fps_den > 0) s->fps = (double)info->fps_num / info->fps_den;
    return 0;
}

static int open_raw(frame_source *s, const char *spec, int rw, int rh, char *err, size_t errlen) {
    if (open_file(s, spec, err, errlen) != 0) return -1;
    s->nw = rw;
    s->nh = rh;
    return 0;
}

/* The buffer a frame of the source's own size is read into: the caller's when no fit is needed. */
static uint8_t *native_buffer(frame_source *s, uint8_t *rgb) {
    if (s->nw == s->width && s->nh == s->height) return rgb;
    if (!s->native) s->native = malloc((size_t)s->nw * (size_t)s->nh * 3);
    if (!s->native) set_err(s->err, sizeof s->err, "%s: cannot allocate a %d x %d frame", s->path, s->nw, s->nh);
    return s->native;
}

static int read_y4m(frame_source *s, uint8_t *rgb) {
    uint8_t *buf = native_buffer(s, rgb);
    if (!buf) return -1;
    int end = 0;
    if (sd_y4m_reader_read_rgb(s->y4m, buf, (size_t)s->nw * (size_t)s->nh * 3, &end) != SD_OK) {
        set_err(s->err, sizeof s->err, "%s", sd_last_error());
        return -1;
    }
    if (end) return 0;
    return deliver(s->err, sizeof s->err, s->path, buf, s->nw, s->nh, rgb, s->width, s->height);
}

static int read_raw(frame_source *s, uint8_t *rgb) {
    uint8_t *buf = native_buffer(s, rgb);
    if (!buf) return -1;
    size_t want = (size_t)s->nw * (size_t)s->nh * 3;
    size_t got = fread(buf, 1, want, s->file);
    if (got == 0 && feof(s->file)) return 0;
    if (got != want) {
        if (ferror(s->file))
            set_err(s->err, sizeof s->err, "%s: read error in raw frame %lld: %s", s->path, (long long)s->index,
                    strerror(errno));
        else
            set_err(s->err, sizeof s->err, "%s: truncated raw RGB24 frame %lld: expected %zu bytes (%d x %d x 3), got %zu",
                    s->path, (long long)s->index, want, s->nw, s->nh, got);
        return -1;
    }
    return deliver(s->err, sizeof s->err, s->path, buf, s->nw, s->nh, rgb, s->width, s->height);
}

static int read_camera(frame_source *s, uint8_t *rgb) {
    uint8_t *buf = native_buffer(s, rgb);
    if (!buf) return -1;
    if (v4l2_camera_read(s->cap, buf, s->err, sizeof s->err) != 1) return -1;
    return deliver(s->err, sizeof s->err, s->path, buf, s->nw, s->nh, rgb, s->width, s->height);
}

/* ---- sources ---------------------------------------------------------------------------------- */

frame_source *frame_source_open(const char *spec, int width, int height, const char *raw_size, char *err,
                                size_t errlen) {
    if (!spec || !*spec) {
        set_err(err, errlen, "no input given (an image folder, a .y4m file, - for stdin, or /dev/videoN)");
        return NULL;
    }
    if ((width || height) && !valid_size(width, height)) {
        set_err(err, errlen, "%s: bad stream size %d x %d (1..%d a side)", spec, width, height, MAX_SIDE);
        return NULL;
    }
    int rw = 0, rh = 0;
    if (raw_size && !frame_parse_size(raw_size, &rw, &rh)) {
        set_err(err, errlen, "%s: bad raw frame size '%s' (expected WxH like 640x480)", spec, raw_size);
        return NULL;
    }
    if (strlen(spec) >= PATH_CAP) {
        set_err(err, errlen, "input path is longer than %d bytes", PATH_CAP - 1);
        return NULL;
    }
    frame_source *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, errlen, "%s: out of memory", spec);
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", strcmp(spec, "-") == 0 ? "stdin" : spec);
    int rc;
    if (frame_spec_is_v4l2(spec)) {
        s->kind = SRC_V4L2;
        if (raw_size) {
            set_err(err, errlen, "%s: a raw frame size is for raw RGB24 input, not for cameras", spec);
            rc = -1;
        } else {
            s->cap = v4l2_camera_open(spec, width, height, err, errlen);
            rc = s->cap ? 0 : -1;
            if (s->cap) {
                v4l2_camera_size(s->cap, &s->nw, &s->nh);
                s->fps = v4l2_camera_fps(s->cap);
            }
        }
    } else if (raw_size && has_ext(spec, ".y4m")) {
        set_err(err, errlen, "%s: a .y4m file declares its own frame size; --size is for raw RGB24 input", spec);
        rc = -1;
    } else if (strcmp(spec, "-") != 0 && is_dir(spec)) {
        s->kind = SRC_FOLDER;
        if (raw_size) {
            set_err(err, errlen, "%s: is a folder of images; a raw frame size is for raw RGB24 input", spec);
            rc = -1;
        } else {
            rc = open_folder(s, err, errlen);
        }
    } else if (raw_size) {
        s->kind = SRC_RAW;
        rc = open_raw(s, spec, rw, rh, err, errlen);
    } else {
        s->kind = SRC_Y4M;
        rc = open_y4m(s, spec, err, errlen);
    }
    if (rc != 0) {
        frame_source_close(s);
        return NULL;
    }
    s->width = width ? width : s->nw;
    s->height = height ? height : s->nh;
    return s;
}

int frame_source_read(frame_source *s, uint8_t *rgb) {
    if (!s || !rgb) return -1;
    int rc = -1;
    switch (s->kind) {
    case SRC_FOLDER: rc = read_folder(s, rgb); break;
    case SRC_Y4M: rc = read_y4m(s, rgb); break;
    case SRC_RAW: rc = read_raw(s, rgb); break;
    case SRC_V4L2: rc = read_camera(s, rgb); break;
    }
    if (rc == 1) s->index++;
    if (rc < 0 && g_interrupted) return 0; /* a read cut short by Ctrl-C is the end, not an error */
    return rc;
}

bool frame_source_can_skip(const frame_source *s) { return s && s->kind == SRC_FOLDER; }

const char *frame_source_error(const frame_source *s) { return s ? s->err : "no source"; }
bool frame_source_is_live(const frame_source *s) { return s && s->kind == SRC_V4L2; }
double frame_source_fps(const frame_source *s) { return s ? s->fps : 0.0; }

void frame_source_size(const frame_source *s, int *width, int *height) {
    if (width) *width = s ? s->width : 0;
    if (height) *height = s ? s->height : 0;
}

void frame_source_close(frame_source *s) {
    if (!s) return;
    for (size_t i = 0; i < s->nfiles; i++) free(s->files[i]);
    free(s->files);
    sd_image_free(&s->first);
    sd_y4m_reader_close(s->y4m);
    if (s->file) fclose(s->file);
    v4l2_camera_close(s->cap);
    free(s->native);
    free(s);
}

/* ---- sinks ------------------------------------------------------------------------------------ */

/* y4m wants a rational rate: 30 -> 30:1, 29.97 -> 30000:1001, else thousandths. */
static void rate_from_fps(double fps, int *num, int *den) {
    *num = *den = 0;
    if (!(fps > 0.0) || fps > 1e6) return;
    double whole = round(fps), ntsc = round(fps * 1.001);
    if (fabs(fps - whole) < 1e-3) *num = (int)whole, *den = 1;
    else if (fabs(fps - ntsc * 1000.0 / 1001.0) < 1e-3) *num = (int)ntsc * 1000, *den = 1001;
    else *num = (int)round(fps * 1000.0), *den = 1000;
}

/* mkdir -p: each missing component in turn. *created tells whether the last one was made. */
static int make_dirs(const char *path, bool *created, char *err, size_t errlen) {
    *created = !is_dir(path);
    char buf[PATH_CAP];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                set_err(err, errlen, "%s: cannot create the folder %s: %s", path, buf, strerror(errno));
                return -1;
            }
            *p = saved;
            if (!saved) break;
        }
    }
    if (!is_dir(path)) {
        set_err(err, errlen, "%s: exists and is not a folder", path);
        return -1;
    }
    return 0;
}

frame_sink *frame_sink_open(const char *spec, int width, int height, double fps, char *err, size_t errlen) {
    if (!spec || !*spec) {
        set_err(err, errlen, "no output given (a folder, a .y4m file, - for stdout, or /dev/videoN)");
        return NULL;
    }
    if (!valid_size(width, height)) {
        set_err(err, errlen, "%s: bad frame size %d x %d (1..%d a side)", spec, width, height, MAX_SIDE);
        return NULL;
    }
    if (strlen(spec) >= PATH_CAP - 32) { /* room for /frame_NNNNNN.png */
        set_err(err, errlen, "output path is longer than %d bytes", PATH_CAP - 33);
        return NULL;
    }
    frame_sink *k = calloc(1, sizeof *k);
    if (!k) {
        set_err(err, errlen, "%s: out of memory", spec);
        return NULL;
    }
    snprintf(k->path, sizeof k->path, "%s", spec);
    k->width = width;
    k->height = height;
    const char *base = strrchr(spec, '/');
    base = base ? base + 1 : spec;
    int rc = 0;
    if (frame_spec_is_v4l2(spec)) {
        k->kind = SINK_V4L2;
        k->out = v4l2_loopback_open(spec, width, height, fps, err, errlen);
        rc = k->out ? 0 : -1;
    } else if (strcmp(spec, "-") == 0 || has_ext(spec, ".y4m")) {
        k->kind = SINK_Y4M;
        int num, den;
        rate_from_fps(fps, &num, &den);
        if (strcmp(spec, "-") != 0) { /* a temporary name beside the target: see close */
            snprintf(k->tmp_path, sizeof k->tmp_path, "%s.XXXXXX", spec);
            int fd = mkstemp(k->tmp_path);
            if (fd < 0) {
                set_err(err, errlen, "%s: cannot create: %s", spec, strerror(errno));
                k->tmp_path[0] = '\0';
                rc = -1;
            } else {
                fchmod(fd, 0644);
                close(fd);
            }
        }
        if (rc == 0 && sd_y4m_writer_open(&k->y4m, k->tmp_path[0] ? k->tmp_path : spec, width, height, num, den) != SD_OK) {
            set_err(err, errlen, "%s", sd_last_error());
            rc = -1;
        }
    } else if (is_dir(spec) || *base == '\0' || !strchr(base, '.')) {
        k->kind = SINK_FOLDER;
        rc = make_dirs(spec, &k->created_dir, err, errlen);
        if (rc == 0 && access(spec, W_OK | X_OK) != 0) {
            set_err(err, errlen, "%s: cannot write into the folder: %s", spec, strerror(errno));
            rc = -1;
        }
    } else {
        /* "out.mp4" is far more likely a mistake than a folder name */
        set_err(err, errlen, "%s: unknown output type (use a .y4m file, - for stdout, a folder, or /dev/videoN; "
                "end a folder name with / if it contains a dot)", spec);
        rc = -1;
    }
    if (rc != 0) {
        frame_sink_close(k, NULL, 0);
        return NULL;
    }
    return k;
}

int frame_sink_write(frame_sink *k, const uint8_t *rgb) {
    if (!k || !rgb) return -1;
    switch (k->kind) {
    case SINK_Y4M:
        if (sd_y4m_writer_write_rgb(k->y4m, rgb, (size_t)k->width * (size_t)k->height * 3) != SD_OK) {
            set_err(k->err, sizeof k->err, "%s", sd_last_error());
            return -1;
        }
        break;
    case SINK_FOLDER: {
        char path[PATH_CAP];
        size_t n = strlen(k->path);
        const char *sep = (n > 0 && k->path[n - 1] == '/') ? "" : "/";
        int len = snprintf(path, sizeof path, "%s%sframe_%06lld.png", k->path, sep, (long long)k->index);
        if (len < 0 || (size_t)len >= sizeof path) { /* open leaves room; this is a guard */
            set_err(k->err, sizeof k->err, "%s: output path too long", k->path);
            return -1;
        }
        sd_image view = {k->width, k->height, (uint8_t *)rgb};
        if (sd_image_save(&view, path) != SD_OK) {
            set_err(k->err, sizeof k->err, "%s", sd_last_error());
            return -1;
        }
        break;
    }
    case SINK_V4L2:
        if (v4l2_loopback_write(k->out, rgb, k->err, sizeof k->err) != 0) return -1;
        break;
    }
    k->index++;
    return 0;
}

const char *frame_sink_error(const frame_sink *k) { return k ? k->err : "no sink"; }

int frame_sink_close(frame_sink *k, char *err, size_t errlen) {
    if (!k) return 0;
    int rc = 0;
    if (k->y4m && sd_y4m_writer_close(k->y4m) != SD_OK) {
        set_err(err, errlen, "%s", sd_last_error());
        rc = -1;
    }
    /* the frames written are kept even after a failure; a file or folder without any is removed */
    if (k->tmp_path[0] && k->index > 0 && rename(k->tmp_path, k->path) != 0) {
        set_err(err, errlen, "%s: cannot rename %s into place: %s", k->path, k->tmp_path, strerror(errno));
        rc = -1;
    }
    frame_sink_discard(k);
    v4l2_loopback_close(k->out);
    free(k);
    return rc;
}

int64_t frame_sink_count(const frame_sink *k) { return k ? k->index : 0; }

void frame_sink_discard(const frame_sink *k) {
    if (!k) return;
    if (k->tmp_path[0]) unlink(k->tmp_path); /* after a rename it names nothing */
    if (k->created_dir && k->index == 0) rmdir(k->path);
}
