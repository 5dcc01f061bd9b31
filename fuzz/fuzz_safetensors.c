/* fuzz_safetensors.c — libFuzzer target: any bytes as a safetensors file. Opening must either fail
 * with a status or yield tensors whose data is entirely inside the buffer (every byte is read). */
#include <stdint.h>
#include <stdlib.h>

#include "base/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sd_safetensors *st = NULL;
    if (sd_st_open_memory(&st, data, size, "fuzz.safetensors") != SD_OK) return 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const sd_st_tensor *t = &st->tensors[i];
        if (sd_st_find(st, t->name) != t) abort(); /* lookup must find every tensor */
        if (sd_dtype_is_float(t->dtype) && t->numel > 0 && t->numel < (1 << 20)) {
            float *buf = malloc((size_t)t->numel * sizeof *buf);
            if (buf) {
                sd_convert_to_f32(buf, sd_st_data(st, t), t->dtype, (size_t)t->numel);
                free(buf);
            }
        }
    }
    (void)sd_st_metadata(st, "format");
    sd_st_close(st);
    return 0;
}
