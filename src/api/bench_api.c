/* bench_api.c — the public face of the CPU backend's peak measurement, for `sdstream bench`. */
#include "backend/cpu/cpu_backend.h"

sd_status sd_measure_peak_gflops(int n_threads, double *fp32, double *bf16) {
    SD_CHECK_ARG(fp32 && bf16, "sd_measure_peak_gflops: fp32 and bf16 are required");
    *fp32 = sd_cpu_measure_peak_gflops(n_threads);
    /* the bf16 path (vdpbf16ps) needs AVX512_BF16; without it there is nothing to measure (0) */
    *bf16 = sd_cpu_measure_peak_bf16_gflops(n_threads);
    return *fp32 > 0.0 ? SD_OK : sd_fail(SD_ERR_BACKEND, "peak measurement failed");
}
