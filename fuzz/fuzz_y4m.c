/* fuzz_y4m.c — libFuzzer target: any bytes as a YUV4MPEG2 stream through the memory reader,
 * reading every frame and converting it to RGB. Must end in a clean end of stream or a status,
 * never a crash, a leak or an out-of-bounds access. The header may announce up to 64 Mpixels; the
 * RGB buffer is only allocated when the input could hold a whole frame, since the memory reader
 * reports a short frame without allocating (which is what this tests for huge headers). */
#include <stdint.h>
#include <stdlib.h>

#include "base/y4m.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sd_y4m_reader *r = NULL;
    if (sd_y4m_reader_open_memory(&r, data, size, "fuzz.y4m") != SD_OK) return 0;
    const sd_y4m_info *info = sd_y4m_reader_info(r);
    size_t pixels = (size_t)info->width * (size_t)info->height;
    int end = 0;
    if (pixels <= size) { /* a mono frame is `pixels` bytes: smaller inputs hold no whole frame */
        size_t len = pixels * 3;
        uint8_t *rgb = malloc(len);
        if (rgb) {
            while (sd_y4m_reader_read_rgb(r, rgb, len, &end) == SD_OK && !end) {
            }
            free(rgb);
        }
    } else {
        while (sd_y4m_reader_read_frame(r, &end) == SD_OK && !end) {
        }
    }
    sd_y4m_reader_close(r);
    return 0;
}
