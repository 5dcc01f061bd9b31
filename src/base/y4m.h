/* y4m.h — YUV4MPEG2 ("y4m") video in and out, frame by frame, plus the YUV <-> RGB24 conversions
 * that video sources and sinks need (4:2:0 planar for y4m, packed YUYV for V4L2 devices).
 *
 * Why y4m: it is the one uncompressed video format every tool pipes (`ffmpeg -f yuv4mpegpipe`,
 * x264, mpv), it needs no codec, and it streams: a text header line, then "FRAME\n" + planar
 * pixels per frame. The reader never seeks, so stdin works; it reads one frame per call.
 *
 * Format (public spec): "YUV4MPEG2" then space-separated tags, '\n'-terminated:
 *   W<width> H<height> (required), F<num>:<den> frame rate, I<p|t|b|m|?> interlacing,
 *   A<num>:<den> pixel aspect, C<colour space>, X<anything> (ignored). Unknown tags are ignored.
 * Accepted colour spaces: C420jpeg, C420paldv, C420mpeg2, C420 (all read the same way, as
 * centre-sited 4:2:0), C444, Cmono; 8-bit only. Absent C means 420jpeg (the spec's default).
 * Anything else (C422, C420p10, Cmono16, ...) is SD_ERR_UNSUPPORTED with the value in the message.
 *
 * Colour: BT.601, limited ("TV") range — what ffmpeg assumes for y4m without colour tags and what
 * it writes by default from RGB (swscale's default matrix). Y = 16 + 219 * Y', chroma 128 +- 112.
 * Out, 4:2:0 chroma is the 2x2 average of the pixels it covers (odd edges average what exists).
 * In, chroma is interpolated bilinearly at centre siting (weights 9/3/3/1 over 16, libjpeg's
 * "fancy upsampling"), which undoes the 2x2 average well on smooth images.
 *
 * Limits: 1..16384 pixels a side and at most 64 Mpixels (checked before any allocation,
 * SD_ERR_LIMIT); header and frame header lines at most SD_Y4M_MAX_LINE bytes with the newline.
 *
 * End of stream: EOF exactly where a frame header would start is the clean end (SD_OK with
 * *end = 1, again on every later call). EOF anywhere else is SD_ERR_FORMAT ("truncated frame N:
 * expected X bytes, got Y"; frames are numbered from 0). After any error the reader is dead:
 * later reads return SD_ERR_STATE.
 *
 * Ownership and threads: a reader or writer is used by one thread at a time. A reader opened on a
 * FILE* or on memory borrows it (the bytes must outlive the reader); "-" means stdin/stdout,
 * which are never closed. On failure *out is untouched.
 */
#ifndef SD_BASE_Y4M_H
#define SD_BASE_Y4M_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

enum { SD_Y4M_MAX_LINE = 1024, SD_Y4M_MAX_SIDE = 16384, SD_Y4M_MAX_PIXELS = 64 << 20 };

/* The public y4m reader/writer and YUYV conversions are declared in sdstream.h. */

/* Reads the next frame's planes into the reader without converting them (for tools and fuzzing;
 * never needs an RGB buffer). Same *end and error semantics as sd_y4m_reader_read_rgb. */
sd_status sd_y4m_reader_read_frame(sd_y4m_reader *reader, int *end);
/* The last frame read: Y, then U and V (absent for mono). chroma_width/height are those of U/V
 * (0 for mono). Valid until the next read. */
const uint8_t *sd_y4m_reader_planes(const sd_y4m_reader *reader, int *chroma_width, int *chroma_height);
/* Converts the last frame read to RGB24 (width * height * 3 bytes). */
sd_status sd_y4m_reader_frame_rgb(const sd_y4m_reader *reader, uint8_t *rgb, size_t rgb_len);

/* Plane conversions. Chroma planes are (width + 1) / 2 x (height + 1) / 2 for 4:2:0. */
void sd_yuv420_to_rgb(uint8_t *rgb, const uint8_t *y, const uint8_t *u, const uint8_t *v, int width, int height);
void sd_yuv444_to_rgb(uint8_t *rgb, const uint8_t *y, const uint8_t *u, const uint8_t *v, int width, int height);
void sd_gray_to_rgb(uint8_t *rgb, const uint8_t *y, int width, int height);
void sd_rgb_to_yuv420(uint8_t *y, uint8_t *u, uint8_t *v, const uint8_t *rgb, int width, int height);

#endif
