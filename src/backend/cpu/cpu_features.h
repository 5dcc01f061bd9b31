/* cpu_features.h — CPU features that __builtin_cpu_supports does not name in every compiler we
 * build with (clang 14 knows neither "f16c" nor "avx512bf16"): read from CPUID directly. */
#ifndef SD_BACKEND_CPU_FEATURES_H
#define SD_BACKEND_CPU_FEATURES_H

#include <stdbool.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

/* F16C (vcvtph2ps): CPUID.1:ECX bit 29. Every AVX2 CPU has it; checked anyway. */
static inline bool sd_cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
}

/* AVX512_BF16 (vdpbf16ps): CPUID.(7,1):EAX bit 5, on a CPU (and OS) with AVX-512F. */
static inline bool sd_cpu_has_avx512bf16(void) {
    unsigned a, b, c, d;
    if (!__builtin_cpu_supports("avx512f") || __get_cpuid_max(0, 0) < 7) return false;
    __cpuid_count(7, 1, a, b, c, d);
    return a >> 5 & 1;
}
#else
static inline bool sd_cpu_has_f16c(void) { return false; }
static inline bool sd_cpu_has_avx512bf16(void) { return false; }
#endif

#endif
