/* bench_api.c — the public face of the backends' peaks and device descriptions, for `sdstream bench`. */
#include <stdio.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#ifdef SD_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

sd_status sd_measure_peak_gflops(int n_threads, double *fp32, double *bf16) {
    SD_CHECK_ARG(fp32 && bf16, "sd_measure_peak_gflops: fp32 and bf16 are required");
    *fp32 = sd_cpu_measure_peak_gflops(n_threads);
    /* the bf16 path (vdpbf16ps) needs AVX512_BF16; without it there is nothing to measure (0) */
    *bf16 = sd_cpu_measure_peak_bf16_gflops(n_threads);
    return *fp32 > 0.0 ? SD_OK : sd_fail(SD_ERR_BACKEND, "peak measurement failed");
}

sd_status sd_device_info_get(sd_backend_type type, sd_device_info *out) {
    SD_CHECK_ARG(out != NULL, "sd_device_info_get: out is NULL");
    if (sd_backend_resolve(type) != SD_BACKEND_TYPE_CUDA)
        return sd_fail(SD_ERR_UNSUPPORTED, "sd_device_info_get: the cpu backend has no device (see sd_measure_peak_gflops)");
#ifdef SD_HAVE_CUDA
    sd_cuda_device_info info;
    SD_TRY(sd_cuda_device_info_get(&info));
    sd_device_info d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "%s", info.name);
    d.driver_version = info.driver_version;
    d.runtime_version = info.runtime_version;
    d.compute_capability = info.cc_major * 10 + info.cc_minor;
    d.multiprocessors = info.sm_count;
    d.memory_gb = (double)info.total_mem / 1e9;
    d.memory_used_gb = (double)sd_cuda_memory_used() / 1e9;
    d.clock_ghz = info.clock_ghz;
    d.fp16_dense_tflops = info.fp16_dense_tflops;
    *out = d;
    return SD_OK;
#else
    return sd_fail(SD_ERR_UNSUPPORTED, "sd_device_info_get: the CUDA backend is not compiled into this build");
#endif
}
