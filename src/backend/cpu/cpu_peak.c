/* cpu_peak.c — the machine's measured fp32 FMA peak, the yardstick benchmarks report against
 * (DESIGN.md "Count first"). Each pool thread runs a register-only loop of independent FMAs (12
 * chains, more than latency x ports on current x86 cores), best of 10 runs of ~10 ms (the best run is
 * the one least disturbed by other processes). 512-bit FMAs where the core has AVX-512; the bf16 peak
 * is vdpbf16ps throughput (AVX512_BF16), 0 without it. */
#include <stdlib.h>
#include <time.h>

#include "base/cpu_features.h"
#include "backend/cpu/cpu_backend.h"

enum { PEAK_ITERS = 4 << 20 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* 12 x 8 lanes x 2 flops per iteration. The result is stored so the loop cannot be removed. */
/* The chains start from different values (read through a volatile) so the compiler cannot merge
 * them: with equal starts gcc computed one chain and "measured" a bogus peak. */
__attribute__((target("avx2,fma"))) static double fma_loop_avx2(int64_t iters, float *sink) {
    static volatile float seed = 1.0f;
    float s0 = seed;
    __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    __m256 r0 = _mm256_set1_ps(s0), r1 = _mm256_set1_ps(s0 + 1), r2 = _mm256_set1_ps(s0 + 2);
    __m256 r3 = _mm256_set1_ps(s0 + 3), r4 = _mm256_set1_ps(s0 + 4), r5 = _mm256_set1_ps(s0 + 5);
    __m256 r6 = _mm256_set1_ps(s0 + 6), r7 = _mm256_set1_ps(s0 + 7), r8 = _mm256_set1_ps(s0 + 8);
    __m256 r9 = _mm256_set1_ps(s0 + 9), r10 = _mm256_set1_ps(s0 + 10), r11 = _mm256_set1_ps(s0 + 11);
    for (int64_t i = 0; i < iters; i++) {
        r0 = _mm256_fmadd_ps(r0, m, a);
        r1 = _mm256_fmadd_ps(r1, m, a);
        r2 = _mm256_fmadd_ps(r2, m, a);
        r3 = _mm256_fmadd_ps(r3, m, a);
        r4 = _mm256_fmadd_ps(r4, m, a);
        r5 = _mm256_fmadd_ps(r5, m, a);
        r6 = _mm256_fmadd_ps(r6, m, a);
        r7 = _mm256_fmadd_ps(r7, m, a);
        r8 = _mm256_fmadd_ps(r8, m, a);
        r9 = _mm256_fmadd_ps(r9, m, a);
        r10 = _mm256_fmadd_ps(r10, m, a);
        r11 = _mm256_fmadd_ps(r11, m, a);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r0, r1), _mm256_add_ps(r2, r3)),
                             _mm256_add_ps(_mm256_add_ps(r4, r5), _mm256_add_ps(r6, r7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(r8, r9), _mm256_add_ps(r10, r11)));
    _mm256_storeu_ps(sink, s);
    return (double)iters * 12 * 8 * 2;
}

/* The same with 512-bit registers (AVX-512 cores: 16 lanes). Twelve named accumulators, not an
 * array: gcc kept an array of __m512 in memory, and the loop then measured store-to-load latency
 * (a "peak" below what the GEMM reached). */
#define TWELVE(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECL512(j) __m512 r##j = _mm512_set1_ps(s0 + (float)(j));
#define SUM512(j) s = _mm512_add_ps(s, r##j);

__attribute__((target("avx512f"))) static double fma_loop_avx512(int64_t iters, float *sink) {
    static volatile float seed = 1.0f;
    float s0 = seed;
    __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    TWELVE(DECL512)
#define STEP(j) r##j = _mm512_fmadd_ps(r##j, m, a);
    for (int64_t i = 0; i < iters; i++) {
        TWELVE(STEP)
    }
#undef STEP
    __m512 s = _mm512_setzero_ps();
    TWELVE(SUM512)
    _mm256_storeu_ps(sink, _mm512_castps512_ps256(s));
    return (double)iters * 12 * 16 * 2;
}

/* vdpbf16ps: 16 lanes x 2 multiply-adds = 64 flops per instruction */
__attribute__((target("avx512f,avx512bf16"))) static double dot_loop_bf16(int64_t iters, float *sink) {
    static volatile float seed = 1.0f;
    float s0 = seed;
    __m512bh m = (__m512bh)_mm512_set1_epi32(0x3f803f80); /* (1.0, 1.0) */
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x33d633d6); /* (1e-7, 1e-7) */
    TWELVE(DECL512)
#define STEP(j) r##j = _mm512_dpbf16_ps(r##j, m, a);
    for (int64_t i = 0; i < iters; i++) {
        TWELVE(STEP)
    }
#undef STEP
    __m512 s = _mm512_setzero_ps();
    TWELVE(SUM512)
    _mm256_storeu_ps(sink, _mm512_castps512_ps256(s));
    return (double)iters * 12 * 16 * 4;
}
#endif

static double fma_loop_scalar(int64_t iters, float *sink) {
    static volatile float seed = 1.0f;
    float r[8];
    for (int j = 0; j < 8; j++) r[j] = seed + (float)j;
    for (int64_t i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++) r[j] = r[j] * 0.999999f + 1e-7f;
    for (int j = 0; j < 8; j++) sink[j] = r[j];
    return (double)iters * 8 * 2;
}

typedef struct peak_job {
    bool bf16;
    double flops[SD_CPU_MAX_THREADS];
    float sink[SD_CPU_MAX_THREADS][8];
} peak_job;

static void peak_task(void *ctx, int64_t begin, int64_t end, int thread) {
    peak_job *job = ctx;
    for (int64_t t = begin; t < end; t++) {
#if defined(__x86_64__) && defined(__GNUC__)
        if (job->bf16) {
            job->flops[t] = dot_loop_bf16(PEAK_ITERS, job->sink[t]);
            continue;
        }
        if (__builtin_cpu_supports("avx512f")) {
            job->flops[t] = fma_loop_avx512(PEAK_ITERS, job->sink[t]);
            continue;
        }
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            job->flops[t] = fma_loop_avx2(PEAK_ITERS, job->sink[t]);
            continue;
        }
#endif
        job->flops[t] = fma_loop_scalar(PEAK_ITERS, job->sink[t]);
    }
}

static double measure(int n_threads, bool bf16) {
    sd_backend *be = NULL;
    if (sd_cpu_backend_create(&be, n_threads) != SD_OK) return 0.0;
    sd_pool *pool = sd_cpu(be)->pool;
    int threads = sd_pool_threads(pool);
    peak_job *job = calloc(1, sizeof *job);
    if (job) job->bf16 = bf16;
    double best = 0.0;
    for (int rep = 0; job && rep < 10; rep++) {
        double t0 = now_s();
        sd_pool_for(pool, threads, 1, peak_task, job);
        double dt = now_s() - t0, flops = 0.0;
        for (int t = 0; t < threads; t++) flops += job->flops[t];
        if (dt > 0 && flops / dt > best) best = flops / dt;
    }
    free(job);
    sd_backend_free(be);
    return best * 1e-9;
}

double sd_cpu_measure_peak_gflops(int n_threads) { return measure(n_threads, false); }

double sd_cpu_measure_peak_bf16_gflops(int n_threads) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (sd_cpu_has_avx512bf16()) return measure(n_threads, true);
#endif
    (void)n_threads;
    return 0.0;
}
