/* cpu_features.h — CPU features that __builtin_cpu_supports does not name in every compiler we
 * build with (clang 14 knows neither "f16c" nor "avx512bf16"): read from CPUID directly. */
#ifndef SD_BASE_CPU_FEATURES_H
#define SD_BASE_CPU_FEATURES_H

#include <stdbool.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

/* Each asks CPUID once and caches the answer: CPUID is serialising, and under a hypervisor it
 * traps (microseconds), so it must never sit on a hot path. */

/* F16C (vcvtph2ps): CPUID.1:ECX bit 29. Every AVX2 CPU has it; checked anyway. */
static inline bool sd_cpu_has_f16c(void) {
    static int known = -1;
    if (known < 0) {
        unsigned a, b, c, d;
        known = __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
    }
    return known;
}

/* AVX512_BF16 (vdpbf16ps): CPUID.(7,1):EAX bit 5, on a CPU (and OS) with AVX-512F. */
static inline bool sd_cpu_has_avx512bf16(void) {
    static int known = -1;
    if (known < 0) {
        unsigned a = 0, b, c, d;
        if (__builtin_cpu_supports("avx512f") && __get_cpuid_max(0, 0) >= 7) __cpuid_count(7, 1, a, b, c, d);
        known = a >> 5 & 1;
    }
    return known;
}
#else
static inline bool sd_cpu_has_f16c(void) { return false; }
static inline bool sd_cpu_has_avx512bf16(void) { return false; }
#endif

#endif
