/* v4l2_io.c — Video4Linux2 cameras in and loopback devices out, for frame_io.c.
 *
 * Capture uses mmap streaming with a few driver buffers (the standard, lowest-copy V4L2 path) in
 * YUYV or RGB24, the two uncompressed formats nearly every webcam and virtual camera offers;
 * MJPEG-only devices are refused with a hint. Each read hands out the newest filled buffer and
 * requeues older ones, so a consumer slower than the camera gets fresh frames, not a backlog.
 * Output uses write() on the device (what v4l2loopback supports) in YUYV, the format browsers and
 * video-call apps accept from a virtual camera; RGB24 only when the width is odd.
 *
 * Linux only; elsewhere the opens fail with a message. Not reachable by tests without a device:
 * see tests/test_frame_io.c for what is and is not covered.
 */
#include "frame_io.h"

#include <stdarg.h>
#include <stdio.h>

static void v4l2_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void v4l2_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#ifdef __linux__

#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sdstream.h"

enum { CAPTURE_BUFFERS = 4, FRAME_TIMEOUT_MS = 10000, MAX_BAD_FRAMES = 30 };

struct v4l2_camera {
    int fd;
    char path[256];
    uint32_t pixfmt;
    int width, height;
    size_t stride;
    double fps;
    int nbuf;
    void *mem[CAPTURE_BUFFERS];
    size_t len[CAPTURE_BUFFERS];
    bool streaming;
};

struct v4l2_loopback {
    int fd;
    char path[256];
    uint32_t pixfmt;
    int width, height;
    size_t stride, size;
    uint8_t *buf;
};

static int xioctl(int fd, unsigned long req, void *arg) {
    int r;
    do r = ioctl(fd, req, arg);
    while (r == -1 && errno == EINTR);
    return r;
}

static const char *fourcc(uint32_t f, char out[5]) {
    for (int i = 0; i < 4; i++) {
        char c = (char)((f >> (8 * i)) & 0xff);
        out[i] = (c >= 32 && c < 127) ? c : '?';
    }
    out[4] = '\0';
    return out;
}

/* Opens the node and checks it is a V4L2 device with the capability `need`. */
static int open_device(const char *path, int flags, uint32_t need, const char *role, char *err, size_t errlen) {
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) {
        v4l2_err(err, errlen, "%s: cannot open the video device: %s", path, strerror(errno));
        return -1;
    }
    struct v4l2_capability cap;
    memset(&cap, 0, sizeof cap);
    if (xioctl(fd, VIDIOC_QUERYCAP, &cap) != 0) {
        v4l2_err(err, errlen, "%s: not a V4L2 device (VIDIOC_QUERYCAP: %s)", path, strerror(errno));
        close(fd);
        return -1;
    }
    uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
    if ((caps & need) != need) {
        v4l2_err(err, errlen, "%s (%.32s): not a V4L2 %s device with the needed capabilities (has 0x%08x, needs 0x%08x)",
                 path, (const char *)cap.card, role, caps, need);
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- capture ---------------------------------------------------------------------------------- */

/* The first of YUYV / RGB24 in the driver's own order (drivers list their preferred first). */
static uint32_t pick_format(int fd, char *seen, size_t seen_len) {
    seen[0] = '\0';
    for (uint32_t i = 0; i < 64; i++) {
        struct v4l2_fmtdesc d;
        memset(&d, 0, sizeof d);
        d.index = i;
        d.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        if (xioctl(fd, VIDIOC_ENUM_FMT, &d) != 0) break;
        if (d.pixelformat == V4L2_PIX_FMT_YUYV || d.pixelformat == V4L2_PIX_FMT_RGB24) return d.pixelformat;
        char cc[5];
        size_t n = strlen(seen);
        snprintf(seen + n, seen_len - n, "%s%s", n ? " " : "", fourcc(d.pixelformat, cc));
    }
    return 0;
}

static int start_capture(v4l2_camera *c, int width, int height, char *err, size_t errlen) {
    char seen[128], cc[5];
    c->pixfmt = pick_format(c->fd, seen, sizeof seen);
    if (!c->pixfmt) {
        v4l2_err(err, errlen, "%s: the camera offers no YUYV or RGB24 format (it has: %s); MJPEG/H.264-only cameras "
                 "can be bridged with ffmpeg to a .y4m pipe", c->path, seen[0] ? seen : "none");
        return -1;
    }
    struct v4l2_format f;
    memset(&f, 0, sizeof f);
    f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(c->fd, VIDIOC_G_FMT, &f) != 0) {
        v4l2_err(err, errlen, "%s: VIDIOC_G_FMT: %s", c->path, strerror(errno));
        return -1;
    }
    if (width > 0) { /* the driver rounds to the nearest size it supports */
        f.fmt.pix.width = (uint32_t)width;
        f.fmt.pix.height = (uint32_t)height;
    }
    f.fmt.pix.pixelformat = c->pixfmt;
    f.fmt.pix.field = V4L2_FIELD_ANY;
    f.fmt.pix.bytesperline = 0; /* let the driver choose */
    if (xioctl(c->fd, VIDIOC_S_FMT, &f) != 0) {
        v4l2_err(err, errlen, "%s: VIDIOC_S_FMT %s %d x %d: %s", c->path, fourcc(c->pixfmt, cc), width, height,
                 strerror(errno));
        return -1;
    }
    size_t bpp = c->pixfmt == V4L2_PIX_FMT_YUYV ? 2 : 3;
    if (f.fmt.pix.pixelformat != c->pixfmt || f.fmt.pix.width < 2 || f.fmt.pix.height < 1 ||
        f.fmt.pix.width > 16384 || f.fmt.pix.height > 16384 || (c->pixfmt == V4L2_PIX_FMT_YUYV && f.fmt.pix.width % 2)) {
        v4l2_err(err, errlen, "%s: the driver answered an unusable format %s %u x %u", c->path,
                 fourcc(f.fmt.pix.pixelformat, cc), f.fmt.pix.width, f.fmt.pix.height);
        return -1;
    }
    c->width = (int)f.fmt.pix.width;
    c->height = (int)f.fmt.pix.height;
    c->stride = f.fmt.pix.bytesperline >= c->width * bpp ? f.fmt.pix.bytesperline : c->width * bpp;

    struct v4l2_streamparm parm;
    memset(&parm, 0, sizeof parm);
    parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(c->fd, VIDIOC_G_PARM, &parm) == 0 && parm.parm.capture.timeperframe.numerator > 0)
        c->fps = (double)parm.parm.capture.timeperframe.denominator / parm.parm.capture.timeperframe.numerator;

    struct v4l2_requestbuffers rb;
    memset(&rb, 0, sizeof rb);
    rb.count = CAPTURE_BUFFERS;
    rb.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    rb.memory = V4L2_MEMORY_MMAP;
    if (xioctl(c->fd, VIDIOC_REQBUFS, &rb) != 0 || rb.count < 2) {
        v4l2_err(err, errlen, "%s: cannot get mmap streaming buffers (VIDIOC_REQBUFS: %s)", c->path,
                 rb.count < 2 ? "fewer than 2 buffers" : strerror(errno));
        return -1;
    }
    c->nbuf = rb.count > CAPTURE_BUFFERS ? CAPTURE_BUFFERS : (int)rb.count;
    for (int i = 0; i < c->nbuf; i++) {
        struct v4l2_buffer b;
        memset(&b, 0, sizeof b);
        b.index = (uint32_t)i;
        b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        b.memory = V4L2_MEMORY_MMAP;
        if (xioctl(c->fd, VIDIOC_QUERYBUF, &b) != 0) {
            v4l2_err(err, errlen, "%s: VIDIOC_QUERYBUF %d: %s", c->path, i, strerror(errno));
            return -1;
        }
        void *m = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, b.m.offset);
        if (m == MAP_FAILED) {
            v4l2_err(err, errlen, "%s: cannot map buffer %d: %s", c->path, i, strerror(errno));
            return -1;
        }
        c->mem[i] = m;
        c->len[i] = b.length;
        if (xioctl(c->fd, VIDIOC_QBUF, &b) != 0) {
            v4l2_err(err, errlen, "%s: VIDIOC_QBUF %d: %s", c->path, i, strerror(errno));
            return -1;
        }
    }
    enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(c->fd, VIDIOC_STREAMON, &type) != 0) {
        v4l2_err(err, errlen, "%s: VIDIOC_STREAMON: %s", c->path, strerror(errno));
        return -1;
    }
    c->streaming = true;
    return 0;
}

v4l2_camera *v4l2_camera_open(const char *path, int width, int height, char *err, size_t errlen) {
    v4l2_camera *c = calloc(1, sizeof *c);
    if (!c) {
        v4l2_err(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    c->fd = -1;
    snprintf(c->path, sizeof c->path, "%s", path);
    /* non-blocking: DQBUF then answers EAGAIN instead of sleeping, which lets read() drain the
     * queue to the newest frame; waiting is done with poll() and a timeout */
    c->fd = open_device(path, O_RDWR | O_NONBLOCK, V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING, "capture", err, errlen);
    if (c->fd < 0 || start_capture(c, width, height, err, errlen) != 0) {
        v4l2_camera_close(c);
        return NULL;
    }
    return c;
}

void v4l2_camera_size(const v4l2_camera *c, int *width, int *height) {
    *width = c->width;
    *height = c->height;
}

double v4l2_camera_fps(const v4l2_camera *c) { return c->fps; }

/* Dequeues one filled buffer: 1 got one, 0 none ready, -1 error. */
static int dequeue(v4l2_camera *c, struct v4l2_buffer *b) {
    memset(b, 0, sizeof *b);
    b->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b->memory = V4L2_MEMORY_MMAP;
    if (xioctl(c->fd, VIDIOC_DQBUF, b) == 0) return b->index < (uint32_t)c->nbuf ? 1 : -1;
    return errno == EAGAIN ? 0 : -1;
}

int v4l2_camera_read(v4l2_camera *c, uint8_t *rgb, char *err, size_t errlen) {
    size_t need = c->stride * (size_t)(c->height - 1) + (size_t)c->width * (c->pixfmt == V4L2_PIX_FMT_YUYV ? 2 : 3);
    for (int bad = 0; bad < MAX_BAD_FRAMES;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&p, 1, FRAME_TIMEOUT_MS);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            v4l2_err(err, errlen, "%s: no frame from the camera within %d s%s", c->path, FRAME_TIMEOUT_MS / 1000,
                     pr < 0 ? " (poll failed)" : "");
            return -1;
        }
        struct v4l2_buffer b, newer;
        int got = dequeue(c, &b);
        if (got == 0) continue;
        /* keep only the newest: requeue each older buffer as a newer one turns up */
        while (got == 1 && dequeue(c, &newer) == 1) {
            (void)xioctl(c->fd, VIDIOC_QBUF, &b);
            b = newer;
        }
        if (got < 0) {
            v4l2_err(err, errlen, "%s: VIDIOC_DQBUF: %s (camera unplugged?)", c->path, strerror(errno));
            return -1;
        }
        size_t used = b.bytesused ? b.bytesused : c->len[b.index];
        bool ok = !(b.flags & V4L2_BUF_FLAG_ERROR) && used >= need && c->len[b.index] >= need;
        if (ok) {
            const uint8_t *src = c->mem[b.index];
            if (c->pixfmt == V4L2_PIX_FMT_YUYV) {
                ok = sd_yuyv_to_rgb(rgb, src, c->width, c->height, c->stride) == SD_OK;
            } else {
                for (int y = 0; y < c->height; y++)
                    memcpy(rgb + (size_t)y * c->width * 3, src + (size_t)y * c->stride, (size_t)c->width * 3);
            }
        }
        if (xioctl(c->fd, VIDIOC_QBUF, &b) != 0) {
            v4l2_err(err, errlen, "%s: VIDIOC_QBUF: %s", c->path, strerror(errno));
            return -1;
        }
        if (ok) return 1;
        bad++; /* a corrupt or short frame: drivers flag these now and then; take the next */
    }
    v4l2_err(err, errlen, "%s: %d corrupt or short frames in a row", c->path, MAX_BAD_FRAMES);
    return -1;
}

void v4l2_camera_close(v4l2_camera *c) {
    if (!c) return;
    if (c->streaming) {
        enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        (void)xioctl(c->fd, VIDIOC_STREAMOFF, &type);
    }
    for (int i = 0; i < c->nbuf; i++)
        if (c->mem[i]) munmap(c->mem[i], c->len[i]);
    if (c->fd >= 0) close(c->fd);
    free(c);
}

/* ---- output ----------------------------------------------------------------------------------- */

v4l2_loopback *v4l2_loopback_open(const char *path, int width, int height, double fps, char *err, size_t errlen) {
    v4l2_loopback *o = calloc(1, sizeof *o);
    if (!o) {
        v4l2_err(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    o->fd = -1;
    snprintf(o->path, sizeof o->path, "%s", path);
    o->fd = open_device(path, O_RDWR, V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_READWRITE, "output (loopback)", err, errlen);
    if (o->fd < 0) {
        v4l2_loopback_close(o);
        return NULL;
    }
    bool yuyv = width % 2 == 0;
    size_t bpp = yuyv ? 2 : 3;
    struct v4l2_format f;
    memset(&f, 0, sizeof f);
    f.type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
    f.fmt.pix.width = (uint32_t)width;
    f.fmt.pix.height = (uint32_t)height;
    f.fmt.pix.pixelformat = yuyv ? V4L2_PIX_FMT_YUYV : V4L2_PIX_FMT_RGB24;
    f.fmt.pix.field = V4L2_FIELD_NONE;
    f.fmt.pix.bytesperline = (uint32_t)(width * bpp);
    f.fmt.pix.sizeimage = (uint32_t)(width * bpp * (size_t)height);
    f.fmt.pix.colorspace = yuyv ? V4L2_COLORSPACE_SMPTE170M : V4L2_COLORSPACE_SRGB; /* BT.601, as we convert */
    char cc[5];
    int r = xioctl(o->fd, VIDIOC_S_FMT, &f);
    if (r != 0 || f.fmt.pix.width != (uint32_t)width || f.fmt.pix.height != (uint32_t)height ||
        f.fmt.pix.pixelformat != (yuyv ? V4L2_PIX_FMT_YUYV : V4L2_PIX_FMT_RGB24)) {
        v4l2_err(err, errlen, "%s: the device does not take %s %d x %d frames (%s; it answered %s %u x %u)", path,
                 yuyv ? "YUYV" : "RGB24", width, height, r != 0 ? strerror(errno) : "format changed",
                 fourcc(f.fmt.pix.pixelformat, cc), f.fmt.pix.width, f.fmt.pix.height);
        v4l2_loopback_close(o);
        return NULL;
    }
    if (fps > 0 && fps < 1000) { /* what the loopback's readers see as the rate; not all devices take it */
        struct v4l2_streamparm parm;
        memset(&parm, 0, sizeof parm);
        parm.type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
        parm.parm.output.timeperframe.numerator = 1000;
        parm.parm.output.timeperframe.denominator = (uint32_t)(fps * 1000.0 + 0.5);
        (void)xioctl(o->fd, VIDIOC_S_PARM, &parm);
    }
    o->pixfmt = f.fmt.pix.pixelformat;
    o->width = width;
    o->height = height;
    o->stride = f.fmt.pix.bytesperline >= width * bpp ? f.fmt.pix.bytesperline : width * bpp;
    o->size = o->stride * (size_t)height;
    if (f.fmt.pix.sizeimage > o->size) o->size = f.fmt.pix.sizeimage;
    o->buf = calloc(1, o->size);
    if (!o->buf) {
        v4l2_err(err, errlen, "%s: out of memory", path);
        v4l2_loopback_close(o);
        return NULL;
    }
    return o;
}

int v4l2_loopback_write(v4l2_loopback *o, const uint8_t *rgb, char *err, size_t errlen) {
    for (int y = 0; y < o->height; y++) {
        const uint8_t *src = rgb + (size_t)y * o->width * 3;
        uint8_t *dst = o->buf + (size_t)y * o->stride;
        if (o->pixfmt == V4L2_PIX_FMT_YUYV) (void)sd_rgb_to_yuyv(dst, src, o->width, 1); /* sizes checked at open */
        else memcpy(dst, src, (size_t)o->width * 3);
    }
    size_t done = 0;
    while (done < o->size) {
        ssize_t n = write(o->fd, o->buf + done, o->size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            v4l2_err(err, errlen, "%s: cannot write a frame: %s", o->path, n < 0 ? strerror(errno) : "device took nothing");
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

void v4l2_loopback_close(v4l2_loopback *o) {
    if (!o) return;
    if (o->fd >= 0) close(o->fd);
    free(o->buf);
    free(o);
}

#else /* !__linux__ */

#include <stdlib.h>

v4l2_camera *v4l2_camera_open(const char *path, int width, int height, char *err, size_t errlen) {
    v4l2_err(err, errlen, "%s: V4L2 cameras are only supported on Linux", path);
    return NULL;
}
void v4l2_camera_size(const v4l2_camera *c, int *width, int *height) { *width = *height = 0; }
double v4l2_camera_fps(const v4l2_camera *c) { return 0.0; }
int v4l2_camera_read(v4l2_camera *c, uint8_t *rgb, char *err, size_t errlen) {
    v4l2_err(err, errlen, "V4L2 is only supported on Linux");
    return -1;
}
void v4l2_camera_close(v4l2_camera *c) { (void)c; }
v4l2_loopback *v4l2_loopback_open(const char *path, int width, int height, double fps, char *err, size_t errlen) {
    v4l2_err(err, errlen, "%s: V4L2 output is only supported on Linux", path);
    return NULL;
}
int v4l2_loopback_write(v4l2_loopback *o, const uint8_t *rgb, char *err, size_t errlen) {
    v4l2_err(err, errlen, "V4L2 is only supported on Linux");
    return -1;
}
void v4l2_loopback_close(v4l2_loopback *o) { (void)o; }

#endif
