/* make_model_api.c — the public face of model/make_model.c. */
#include <string.h>

#include "model/make_model.h"

sd_status sd_make_random_model(const char *arch, const char *output_dir, const char *tokenizer_dir,
                               const char *weights_dtype, uint64_t seed) {
    SD_CHECK_ARG(arch && output_dir, "sd_make_random_model: arch and output_dir are required");
    sd_dtype dtype = SD_DTYPE_F16;
    if (weights_dtype && strcmp(weights_dtype, "bf16") == 0) dtype = SD_DTYPE_BF16;
    else if (weights_dtype && strcmp(weights_dtype, "fp32") == 0) dtype = SD_DTYPE_F32;
    else if (weights_dtype && strcmp(weights_dtype, "fp16") != 0)
        return sd_fail(SD_ERR_ARG, "sd_make_random_model: dtype '%s' (expected fp16, bf16 or fp32)", weights_dtype);
    return sd_make_model(arch, output_dir, tokenizer_dir, seed, dtype);
}

sd_status sd_make_random_lcm_lora(const char *arch, const char *output_dir, uint64_t seed) {
    SD_CHECK_ARG(arch && output_dir, "sd_make_random_lcm_lora: arch and output_dir are required");
    return sd_make_lcm_lora(arch, output_dir, seed);
}
