/* jpeg_codec.h — the server's JPEG in and out (libjpeg-turbo), with the limits a network peer needs:
 * the header is read before any pixel memory is touched, so a "JPEG bomb" (a tiny file declaring a
 * 65000 x 65000 image) costs nothing, and a frame of the wrong size is refused by name.
 *
 * One codec per thread (turbojpeg handles are not shared). Errors are written into the caller's
 * fixed buffer: nothing here allocates on the error path. */
#ifndef SD_SERVER_JPEG_CODEC_H
#define SD_SERVER_JPEG_CODEC_H

#include <stddef.h>
#include <stdint.h>

typedef struct jpeg_codec jpeg_codec;

jpeg_codec *jpeg_codec_create(void);
void jpeg_codec_free(jpeg_codec *c);

/* Reads the header only. Returns 0 and the size, or -1 with a message in err. */
int jpeg_peek_size(jpeg_codec *c, const uint8_t *bytes, size_t size, int *width, int *height, char *err, size_t err_len);

/* Decodes a JPEG that must be exactly width x height into rgb (width * height * 3 bytes).
 * Returns 0, or -1 with a message in err (not a JPEG, wrong size, corrupt data). */
int jpeg_decode_rgb(jpeg_codec *c, const uint8_t *bytes, size_t size, int width, int height, uint8_t *rgb, char *err,
                    size_t err_len);

/* Worst-case size of an encoded width x height image (what jpeg_encode_rgb may write). */
size_t jpeg_max_size(int width, int height);

/* Encodes rgb (width x height x 3) at quality 1..100 into out (capacity out_cap >= jpeg_max_size).
 * Returns the byte count, or 0 on failure (message in err). Deterministic: the same pixels give the
 * same bytes. */
size_t jpeg_encode_rgb(jpeg_codec *c, const uint8_t *rgb, int width, int height, int quality, uint8_t *out,
                       size_t out_cap, char *err, size_t err_len);

#endif
