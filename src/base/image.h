/* image.h — 8-bit RGB images: PNG/JPEG (and BMP/TGA, via stb_image) in and out, resizing, and the
 * conversions to and from the model's float tensors with diffusers' conventions
 * (VaeImageProcessor: x = 2 * (u8 / 255) - 1 in; round(clamp(x / 2 + 0.5, 0, 1) * 255) out).
 *
 * Limits: images with a side over SD_IMAGE_MAX_SIDE or more than SD_IMAGE_MAX_PIXELS pixels are
 * refused from the header, before any pixel is decoded (SD_ERR_LIMIT).
 */
#ifndef SD_BASE_IMAGE_H
#define SD_BASE_IMAGE_H

#include <stdint.h>

#include "base/status.h"

enum { SD_IMAGE_MAX_SIDE = 16384, SD_IMAGE_MAX_PIXELS = 64 << 20 };

typedef struct sd_image {
    int width, height;
    uint8_t *pixels; /* RGB, row-major, width * height * 3 bytes; owned */
} sd_image;

sd_status sd_image_load(sd_image *out, const char *path);
sd_status sd_image_load_memory(sd_image *out, const void *bytes, size_t size, const char *name);
/* Format from the extension: .png, .jpg/.jpeg (quality 95). */
sd_status sd_image_save(const sd_image *img, const char *path);
sd_status sd_image_alloc(sd_image *out, int width, int height);
void sd_image_free(sd_image *img);

/* Scales to cover width x height (keeping the aspect ratio) and crops the centre. */
sd_status sd_image_fit(sd_image *out, const sd_image *in, int width, int height);

/* [3, H, W] float32 in [-1, 1] from the image (x = 2 * (u8 / 255) - 1, in float32 as diffusers). */
void sd_image_to_chw(float *out, const sd_image *img);
/* The image from [3, H, W] float32 (clamped; rounded half to even like numpy). */
void sd_image_from_chw(sd_image *img, const float *chw);

#endif
