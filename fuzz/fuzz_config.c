/* fuzz_config.c — libFuzzer target: any bytes as a config.json, read through the typed getters the
 * loaders use (including the CLIP text config reader). Must fail cleanly or succeed; never crash. */
#include <stdint.h>

#include "base/config.h"
#include "model/clip_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sd_config cfg;
    if (sd_config_parse(&cfg, (const char *)data, size, "fuzz.json") != SD_OK) return 0;
    sd_clip_text_config clip;
    (void)sd_clip_text_config_read(&clip, &cfg);
    long ints[8];
    const char *strs[8];
    int n;
    (void)sd_config_int_list(&cfg, "block_out_channels", 1, 1 << 16, ints, 8, &n);
    (void)sd_config_int_list(&cfg, "attention_head_dim", 1, 1 << 16, ints, 8, &n);
    (void)sd_config_string_list(&cfg, "down_block_types", strs, 8, &n);
    bool b;
    double d;
    (void)sd_config_bool(&cfg, "use_linear_projection", false, &b);
    (void)sd_config_double(&cfg, "scaling_factor", 0.0, 100.0, 0.18215, &d);
    sd_config_free(&cfg);
    return 0;
}
