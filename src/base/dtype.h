/* dtype.h — element types of stored and computed tensors, and conversions between them.
 * Conversions are exact where the target can represent the value (f16/bf16 -> f32 always is);
 * f32 -> f16/bf16 rounds to nearest even, as torch does. */
#ifndef SD_BASE_DTYPE_H
#define SD_BASE_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum sd_dtype {
    SD_DTYPE_F32,
    SD_DTYPE_F16,
    SD_DTYPE_BF16,
    SD_DTYPE_F64,
    SD_DTYPE_I64,
    SD_DTYPE_I32,
    SD_DTYPE_I16,
    SD_DTYPE_I8,
    SD_DTYPE_U8,
    SD_DTYPE_BOOL,
    SD_DTYPE_COUNT
} sd_dtype;

size_t sd_dtype_size(sd_dtype dtype);
/* safetensors spelling: "F32", "F16", "BF16", ... */
const char *sd_dtype_name(sd_dtype dtype);
/* Parses a safetensors dtype string; returns 0 and sets *out, or -1 if unknown. */
int sd_dtype_parse(const char *name, sd_dtype *out);
/* True for the types a float tensor may be stored in (F32, F16, BF16, F64). */
int sd_dtype_is_float(sd_dtype dtype);
/* True for the types a backend computes activations in (F32, F16, BF16). */
static inline int sd_is_act_dtype(sd_dtype dtype) {
    return dtype == SD_DTYPE_F32 || dtype == SD_DTYPE_F16 || dtype == SD_DTYPE_BF16;
}

float sd_f16_to_f32(uint16_t h);
uint16_t sd_f32_to_f16(float f);
/* bf16 is the high half of a float32: widening is a shift (inline: the kernels' scalar paths call it) */
static inline float sd_bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
uint16_t sd_f32_to_bf16(float f);

/* Converts n float elements of type src_dtype (F32/F16/BF16/F64) to float32. */
void sd_convert_to_f32(float *dst, const void *src, sd_dtype src_dtype, size_t n);
/* float32 to float16, rounding to nearest even (F16C where the CPU has it, same results). */
void sd_convert_f32_to_f16(uint16_t *dst, const float *src, size_t n);
/* The same to bfloat16: one rounding (to nearest even) from the exact float32 value. */
void sd_convert_to_bf16(uint16_t *dst, const void *src, sd_dtype src_dtype, size_t n);

#endif
