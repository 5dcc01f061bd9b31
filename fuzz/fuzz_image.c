/* fuzz_image.c — libFuzzer target: any bytes as an image file (PNG, JPEG, BMP, TGA, GIF, PSD, ...
 * whatever stb_image recognises) through sd_image_load_memory, which checks the announced size
 * against the limits before decoding. Must fail with a status or decode; never crash, leak or
 * over-allocate.
 *
 * Debian's libstb is a prebuilt shared library without coverage instrumentation, so a fuzzer
 * linked against it sees only our ~45 edges of wrapper and mutates blind. This target therefore
 * compiles stb_image's implementation from the same system header (same version as libstb) into
 * itself: the executable's definitions take precedence over the shared library's, so the
 * library's calls land in instrumented, sanitized decoder code. */
#include <stdint.h>

#include "base/image.h"

#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Weverything"
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#pragma clang diagnostic pop

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sd_image img = {0, 0, NULL};
    if (sd_image_load_memory(&img, data, size, "fuzz.img") == SD_OK) sd_image_free(&img);
    return 0;
}
