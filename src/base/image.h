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

/* sd_image and its load/save/alloc/free/fit functions are public (sdstream.h). */
sd_status sd_image_load_memory(sd_image *out, const void *bytes, size_t size, const char *name);

/* [3, H, W] float32 in [-1, 1] from the image (x = 2 * (u8 / 255) - 1, in float32 as diffusers). */
void sd_image_to_chw(float *out, const sd_image *img);
/* The image from [3, H, W] float32 (clamped; rounded half to even like numpy). */
void sd_image_from_chw(sd_image *img, const float *chw);

#endif
