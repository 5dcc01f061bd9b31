/* frame_io.h — where `sdstream stream` gets its frames and where it puts them. A spec string picks
 * the kind, so the command line stays one word per end:
 *
 *   sources                                    sinks
 *   DIR            images in DIR (.png .jpg     DIR or DIR/     frame_000000.png, ... (created)
 *                  .jpeg .bmp), natural    FILE.y4m        YUV4MPEG2, 4:2:0
 *                  name order (img2 < img10)    -               YUV4MPEG2 on stdout
 *   FILE.y4m, -    YUV4MPEG2 (file / stdin)     /dev/videoN     V4L2 output (v4l2loopback),
 *   FILE, -        raw RGB24 when raw_size                      YUYV (RGB24 for odd widths)
 *                  ("WxH") is given
 *   /dev/videoN,   V4L2 camera (YUYV or RGB24,
 *   /dev/v4l/...   mmap streaming), live
 *
 * Every source delivers width x height RGB24 frames (HWC, 8-bit): a frame of another size is
 * scaled to cover and centre-cropped (sd_image_fit). width/height 0 mean "the source's own size"
 * (first image, y4m header, raw size, camera format); frame_source_size() tells it.
 *
 * Results: open returns NULL and writes a message naming the path and what was expected into
 * err. read/write return 1 (frame) / 0 (end of a finite source) / -1 (error; the message is in
 * frame_source_error()/frame_sink_error()). Nothing here exits or prints.
 *
 * Live sources (cameras) hand out the newest frame available, dropping older queued ones, so a
 * slow consumer sees fresh frames instead of a growing lag. One thread per source or sink.
 * Writing y4m to stdout when the reader has gone raises SIGPIPE; the command should ignore
 * SIGPIPE so that this becomes a write error.
 */
#ifndef SD_CLI_FRAME_IO_H
#define SD_CLI_FRAME_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct frame_source frame_source;
typedef struct frame_sink frame_sink;

frame_source *frame_source_open(const char *spec, int width, int height, const char *raw_size, char *err,
                                size_t errlen);
/* Fills rgb (width * height * 3 bytes). 1: a frame, 0: end of stream (or interrupted), -1: error. */
int frame_source_read(frame_source *src, uint8_t *rgb);
/* True when a failed read can be followed by another (an image folder moves past a bad file). */
bool frame_source_can_skip(const frame_source *src);
const char *frame_source_error(const frame_source *src);
bool frame_source_is_live(const frame_source *src);
/* Frames per second the source declares (y4m F tag, camera rate); 0 when unknown. */
double frame_source_fps(const frame_source *src);
void frame_source_size(const frame_source *src, int *width, int *height);
void frame_source_close(frame_source *src);

/* fps: the rate written into a y4m header (0: 25). */
frame_sink *frame_sink_open(const char *spec, int width, int height, double fps, char *err, size_t errlen);
/* Writes one width * height RGB24 frame. 0: written, -1: error. */
int frame_sink_write(frame_sink *sink, const uint8_t *rgb);
const char *frame_sink_error(const frame_sink *sink);
/* Flushes and closes. A .y4m file is written under a temporary name and renamed here when it
 * holds at least one frame (also after a failed run: those frames are good); without any frame it
 * is removed, and so is a folder that open created. 0, or -1 with the message in err. NULL: 0. */
int frame_sink_close(frame_sink *sink, char *err, size_t errlen);
/* Frames written so far. */
int64_t frame_sink_count(const frame_sink *sink);
/* Removes what an unfinished sink left (the temporary file, a folder it created while still
 * empty) without closing it: async-signal-safe, for a hard exit on a second Ctrl-C. */
void frame_sink_discard(const frame_sink *sink);

/* Async-signal-safe: blocking reads of y4m/raw sources give up within 100 ms and the sources
 * report the end of the stream from then on. */
void frame_io_interrupt(void);
bool frame_io_interrupted(void);

/* "640x480" -> 640, 480 (1..16384 a side, at most 64 Mpixels). false on anything else. */
bool frame_parse_size(const char *text, int *width, int *height);
/* True for specs that name a V4L2 device (/dev/video*, /dev/v4l/...). */
bool frame_spec_is_v4l2(const char *spec);

/* ---- V4L2 (v4l2_io.c; on systems without V4L2 the opens fail with a message) ----------------- */

typedef struct v4l2_camera v4l2_camera;
typedef struct v4l2_loopback v4l2_loopback;

/* Opens a camera and starts streaming at the size nearest to width x height (0 x 0: the driver's
 * current size), YUYV or RGB24. */
v4l2_camera *v4l2_camera_open(const char *path, int width, int height, char *err, size_t errlen);
/* The size the driver chose; frames come at this size. */
void v4l2_camera_size(const v4l2_camera *cap, int *width, int *height);
double v4l2_camera_fps(const v4l2_camera *cap);
/* Newest frame as RGB24 at the capture size. 1 or -1 (message in err). */
int v4l2_camera_read(v4l2_camera *cap, uint8_t *rgb, char *err, size_t errlen);
void v4l2_camera_close(v4l2_camera *cap);

/* Opens an output device (v4l2loopback) and sets its format: YUYV, or RGB24 for odd widths; fps > 0
 * is announced to readers (VIDIOC_S_PARM, best effort). */
v4l2_loopback *v4l2_loopback_open(const char *path, int width, int height, double fps, char *err, size_t errlen);
/* 0 or -1 (message in err). */
int v4l2_loopback_write(v4l2_loopback *out, const uint8_t *rgb, char *err, size_t errlen);
void v4l2_loopback_close(v4l2_loopback *out);

#endif
