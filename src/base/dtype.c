/* dtype.c — see dtype.h. */
#include "base/dtype.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} g_dtypes[SD_DTYPE_COUNT] = {
    [SD_DTYPE_F32] = {"F32", 4}, [SD_DTYPE_F16] = {"F16", 2}, [SD_DTYPE_BF16] = {"BF16", 2},
    [SD_DTYPE_F64] = {"F64", 8}, [SD_DTYPE_I64] = {"I64", 8}, [SD_DTYPE_I32] = {"I32", 4},
    [SD_DTYPE_I16] = {"I16", 2}, [SD_DTYPE_I8] = {"I8", 1},   [SD_DTYPE_U8] = {"U8", 1},
    [SD_DTYPE_BOOL] = {"BOOL", 1},
};

size_t sd_dtype_size(sd_dtype dtype) { return dtype < SD_DTYPE_COUNT ? g_dtypes[dtype].size : 0; }

const char *sd_dtype_name(sd_dtype dtype) {
    return dtype < SD_DTYPE_COUNT ? g_dtypes[dtype].name : "?";
}

int sd_dtype_parse(const char *name, sd_dtype *out) {
    for (int i = 0; i < SD_DTYPE_COUNT; i++) {
        if (strcmp(name, g_dtypes[i].name) == 0) {
            *out = (sd_dtype)i;
            return 0;
        }
    }
    return -1;
}

int sd_dtype_is_float(sd_dtype dtype) {
    return dtype == SD_DTYPE_F32 || dtype == SD_DTYPE_F16 || dtype == SD_DTYPE_BF16 ||
           dtype == SD_DTYPE_F64;
}

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float sd_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13)); /* inf / nan */
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in float32 */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t sd_f32_to_f16(float f) {
    uint32_t u = f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0); /* inf/nan */
    if (abs >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: overflow to inf */
    if (abs < 0x38800000u) {
        /* result is subnormal or zero: round abs / 2^-24 to nearest even integer */
        float v = bits_to_f32(abs) * 16777216.0f; /* exact scaling by 2^24 */
        return sign | (uint16_t)lrintf(v);
    }
    uint32_t mant = abs & 0x7fffff;
    uint32_t exp = (abs >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into the exponent: correct */
    return sign | (uint16_t)h;
}

uint16_t sd_f32_to_bf16(float f) {
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* x86 F16C converts 8 values an instruction, exactly as the scalar code rounds (to nearest even;
 * NaN payloads aside): fusing a LoRA into a float16 model converts every touched weight twice, and
 * the scalar loops were a third of LCM-LoRA's load-and-fuse time at full size. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "base/cpu_features.h"
#define SD_HAVE_F16C_PATH 1
/* CPUID, not __builtin_cpu_supports: clang 14 (the fuzz build) does not know "f16c" */
static int has_f16c(void) { return sd_cpu_has_f16c() && __builtin_cpu_supports("avx"); }

__attribute__((target("avx,f16c"))) static size_t f16_to_f32_f16c(float *dst, const uint8_t *p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    return i;
}

__attribute__((target("avx,f16c"))) static size_t f32_to_f16_f16c(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    return i;
}
#endif

void sd_convert_f32_to_f16(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
#ifdef SD_HAVE_F16C_PATH
    if (has_f16c()) i = f32_to_f16_f16c(dst, src, n);
#endif
    for (; i < n; i++) dst[i] = sd_f32_to_f16(src[i]);
}

void sd_convert_to_f32(float *dst, const void *src, sd_dtype src_dtype, size_t n) {
    switch (src_dtype) {
    case SD_DTYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case SD_DTYPE_F16: {
        const uint8_t *p = src; /* mmap'd data may be unaligned for the type: read bytes */
        size_t i = 0;
#ifdef SD_HAVE_F16C_PATH
        if (has_f16c()) i = f16_to_f32_f16c(dst, p, n);
#endif
        for (; i < n; i++) dst[i] = sd_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    }
    case SD_DTYPE_BF16: {
        const uint8_t *p = src;
        for (size_t i = 0; i < n; i++) dst[i] = sd_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    }
    case SD_DTYPE_F64: {
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, (const uint8_t *)src + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    }
    default:
        /* integer types are not float data: callers check sd_dtype_is_float first */
        memset(dst, 0, n * sizeof(float));
        break;
    }
}

void sd_convert_to_bf16(uint16_t *dst, const void *src, sd_dtype src_dtype, size_t n) {
    if (src_dtype == SD_DTYPE_BF16) {
        memcpy(dst, src, n * sizeof(uint16_t));
        return;
    }
    enum { CHUNK = 1024 }; /* through float32 a chunk at a time: every source type converts there exactly */
    float buf[CHUNK];
    size_t esize = sd_dtype_size(src_dtype);
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        sd_convert_to_f32(buf, (const uint8_t *)src + i * esize, src_dtype, m);
        for (size_t j = 0; j < m; j++) dst[i + j] = sd_f32_to_bf16(buf[j]);
    }
}
