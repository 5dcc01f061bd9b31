/* cpu_backend.c — CPU backend context (thread pool, kernel choice, workspaces) and its vtable. */
#include "backend/cpu/cpu_backend.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void cpu_free(sd_backend *be) {
    sd_cpu_state *cpu = be->impl;
    if (cpu) {
        sd_pool_free(cpu->pool);
        free(cpu->scratch);
        for (int i = 0; i < SD_CPU_MAX_THREADS; i++) free(cpu->thread_ws[i]);
    }
    free(cpu);
    free(be);
}

float *const *sd_cpu_thread_scratch(sd_backend *be, size_t n) {
    sd_cpu_state *cpu = be->impl;
    if (n > cpu->thread_ws_floats) {
        int threads = sd_pool_threads(cpu->pool);
        for (int i = 0; i < threads; i++) {
            free(cpu->thread_ws[i]);
            cpu->thread_ws[i] = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
            if (!cpu->thread_ws[i]) {
                cpu->thread_ws_floats = 0;
                sd_backend_fail(be, SD_ERR_NOMEM, "cannot allocate %zu bytes of per-thread workspace",
                                n * sizeof(float));
                return NULL;
            }
        }
        cpu->thread_ws_floats = n;
        cpu->n_scratch_allocs++;
    }
    return cpu->thread_ws;
}

void sd_cpu_gemm(sd_backend *be, const sd_gemm_args *g) {
    sd_cpu_state *cpu = be->impl;
    float *const *ws = sd_cpu_thread_scratch(be, (size_t)sd_gemm_workspace_floats(cpu->gemm));
    if (!ws) return;
    sd_gemm_args args = *g;
    args.bf16 = be->bf16_math;
    sd_gemm_run(cpu->pool, cpu->gemm, ws, &args);
}

void sd_cpu_backend_set_kernels(sd_backend *be, const sd_gemm_kernel *gemm, const sd_cpu_vec *vec) {
    sd_cpu_state *cpu = be->impl;
    if (gemm) cpu->gemm = gemm;
    if (vec) cpu->vec = vec;
}

float *sd_cpu_scratch(sd_backend *be, size_t n) {
    sd_cpu_state *cpu = be->impl;
    if (n > cpu->scratch_floats) {
        free(cpu->scratch);
        cpu->scratch_floats = 0;
        cpu->scratch = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
        if (!cpu->scratch) {
            sd_backend_fail(be, SD_ERR_NOMEM, "cannot allocate %zu bytes of workspace", n * sizeof(float));
            return NULL;
        }
        cpu->scratch_floats = n;
        cpu->n_scratch_allocs++;
    }
    return cpu->scratch;
}

/* every op, shared by the plain vtable and the device-emulation one */
#define SD_CPU_OPS \
    .free = cpu_free, \
    .linear = sd_cpu_linear, \
    .layer_norm = sd_cpu_layer_norm, \
    .attention = sd_cpu_attention, \
    .activation = sd_cpu_activation, \
    .add = sd_cpu_add, \
    .mul = sd_cpu_mul, \
    .softmax = sd_cpu_softmax, \
    .embedding = sd_cpu_embedding, \
    .conv2d = sd_cpu_conv2d, \
    .group_norm = sd_cpu_group_norm, \
    .upsample_nearest = sd_cpu_upsample_nearest, \
    .add_broadcast = sd_cpu_add_broadcast, \
    .axpby = sd_cpu_axpby, \
    .scale = sd_cpu_scale, \
    .geglu = sd_cpu_geglu, \
    .transpose_hw_c = sd_cpu_transpose_hw_c, \
    .concat_channels = sd_cpu_concat_channels, \
    .upload = sd_cpu_upload, \
    .download = sd_cpu_download, \
    .copy = sd_cpu_copy, \
    .fill = sd_cpu_fill, \
    .rgb8_to_image = sd_cpu_rgb8_to_image, \
    .image_to_rgb8 = sd_cpu_image_to_rgb8,

static const sd_backend_vtable g_cpu_vtable = {
    .name = "cpu",
    SD_CPU_OPS
};

/* ---- device emulation (SDSTREAM_CPU_DEVICE_TEST=1) ----
 * The CPU ops behind the memory hooks a device backend has: weights copied into memory of the
 * backend's own at load (the loaded host copy freed), arenas carved from backend memory. Under
 * ASan a tensor descriptor that kept pointing at a freed host weight, or an arena that frees
 * through the wrong backend, is caught on this machine, before a GPU sees the code. */

static void *emu_alloc(sd_backend *be, size_t bytes) {
    void *p = aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!p) sd_backend_fail(be, SD_ERR_NOMEM, "device memory (emulated): cannot allocate %zu bytes", bytes);
    return p;
}

static void emu_free(sd_backend *be, void *ptr) { free(ptr); }

static void emu_upload_weight(sd_backend *be, sd_tensor *dst, const sd_tensor *host) {
    sd_tensor logical = *host;
    logical.panel = 0;
    size_t bytes = host->panel ? sd_cpu_conv_weight_bytes(be, &logical)
                               : (size_t)sd_tensor_numel(host) * sd_dtype_size(host->dtype);
    void *p = emu_alloc(be, bytes);
    if (!p) return;
    memcpy(p, host->data, bytes);
    *dst = *host;
    dst->data = p;
}

static const sd_backend_vtable g_cpu_device_test_vtable = {
    .name = "cpu",
    SD_CPU_OPS
    .mem_alloc = emu_alloc,
    .mem_free = emu_free,
    .upload_weight = emu_upload_weight,
};

sd_status sd_cpu_backend_create(sd_backend **out, int n_threads) {
    sd_backend *be = calloc(1, sizeof *be);
    if (!be) return sd_fail(SD_ERR_NOMEM, "cpu backend: out of memory");
    const char *env = getenv("SDSTREAM_THREADS");
    if (n_threads <= 0 && env && *env) { /* a typo must not silently mean "all cores" */
        char *end;
        long v = strtol(env, &end, 10);
        if (end == env || *end || v < 1 || v > SD_CPU_MAX_THREADS) {
            free(be);
            return sd_fail(SD_ERR_ARG, "SDSTREAM_THREADS='%.40s' is not a thread count (1..%d)", env, SD_CPU_MAX_THREADS);
        }
        n_threads = (int)v;
    }
    if (n_threads <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = online > 0 ? (int)online : 1;
    }
    be->impl = calloc(1, sizeof(sd_cpu_state));
    if (!be->impl) {
        free(be);
        return sd_fail(SD_ERR_NOMEM, "cpu backend: out of memory");
    }
    if (n_threads > SD_CPU_MAX_THREADS) n_threads = SD_CPU_MAX_THREADS;
    sd_cpu_state *cpu = be->impl;
    sd_status st = sd_pool_create(&cpu->pool, n_threads);
    if (st != SD_OK) {
        free(cpu);
        free(be);
        return st;
    }
    cpu->gemm = sd_gemm_best_kernel();
    cpu->vec = sd_cpu_vec_avx2() ? sd_cpu_vec_avx2() : sd_cpu_vec_scalar();
    be->vt = &g_cpu_vtable;
    const char *emulate = getenv("SDSTREAM_CPU_DEVICE_TEST");
    if (emulate && strcmp(emulate, "1") == 0) {
        be->vt = &g_cpu_device_test_vtable;
        be->device_memory = true;
    }
    be->kind = SD_BACKEND_CPU;
    be->act_dtype = SD_DTYPE_F32;
    be->n_threads = n_threads;
    /* BLAS is no longer on the hot path; keep it from spinning up its own threads beside the pool */
    openblas_set_num_threads(1);
    *out = be;
    return SD_OK;
}
