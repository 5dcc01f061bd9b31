/* jpeg_codec.c — JPEG decode/encode for the server through libjpeg-turbo's TurboJPEG API. */
#include "jpeg_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <turbojpeg.h>

struct jpeg_codec {
    tjhandle decoder, encoder;
};

jpeg_codec *jpeg_codec_create(void) {
    jpeg_codec *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->decoder = tjInitDecompress();
    c->encoder = tjInitCompress();
    if (!c->decoder || !c->encoder) {
        jpeg_codec_free(c);
        return NULL;
    }
    return c;
}

void jpeg_codec_free(jpeg_codec *c) {
    if (!c) return;
    if (c->decoder) tjDestroy(c->decoder);
    if (c->encoder) tjDestroy(c->encoder);
    free(c);
}

int jpeg_peek_size(jpeg_codec *c, const uint8_t *bytes, size_t size, int *width, int *height, char *err, size_t err_len) {
    int subsamp = 0, colorspace = 0;
    /* a JPEG starts with SOI (FF D8): say so plainly rather than relay the library's wording */
    if (size < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8) {
        snprintf(err, err_len, "not a JPEG (%zu bytes, no FF D8 start marker)", size);
        return -1;
    }
    if (size > 0xFFFFFFFFu ||
        tjDecompressHeader3(c->decoder, bytes, (unsigned long)size, width, height, &subsamp, &colorspace) != 0) {
        snprintf(err, err_len, "not a readable JPEG: %s", tjGetErrorStr2(c->decoder));
        return -1;
    }
    return 0;
}

int jpeg_decode_rgb(jpeg_codec *c, const uint8_t *bytes, size_t size, int width, int height, uint8_t *rgb, char *err,
                    size_t err_len) {
    int w = 0, h = 0;
    if (jpeg_peek_size(c, bytes, size, &w, &h, err, err_len) != 0) return -1;
    if (w != width || h != height) {
        snprintf(err, err_len, "frame is %dx%d, the session expects %dx%d", w, h, width, height);
        return -1;
    }
    /* warnings (e.g. extraneous bytes) still decode the image; only fatal errors refuse it */
    if (tjDecompress2(c->decoder, bytes, (unsigned long)size, rgb, width, 0, height, TJPF_RGB, 0) != 0 &&
        tjGetErrorCode(c->decoder) == TJERR_FATAL) {
        snprintf(err, err_len, "cannot decode JPEG: %s", tjGetErrorStr2(c->decoder));
        return -1;
    }
    return 0;
}

size_t jpeg_max_size(int width, int height) {
    return (size_t)tjBufSize(width, height, TJSAMP_420);
}

size_t jpeg_encode_rgb(jpeg_codec *c, const uint8_t *rgb, int width, int height, int quality, uint8_t *out,
                       size_t out_cap, char *err, size_t err_len) {
    unsigned char *dst = out;
    unsigned long len = (unsigned long)out_cap;
    if (out_cap < jpeg_max_size(width, height)) {
        snprintf(err, err_len, "JPEG buffer of %zu bytes is below the worst case %zu", out_cap, jpeg_max_size(width, height));
        return 0;
    }
    /* TJFLAG_NOREALLOC: write into our buffer, never a library allocation */
    if (tjCompress2(c->encoder, rgb, width, 0, height, TJPF_RGB, &dst, &len, TJSAMP_420, quality,
                    TJFLAG_NOREALLOC) != 0) {
        snprintf(err, err_len, "cannot encode JPEG: %s", tjGetErrorStr2(c->encoder));
        return 0;
    }
    return (size_t)len;
}
