/* cuda_backend.cu — the CUDA backend's context (device, stream, cuBLAS handle, workspaces), its
 * memory entries (alloc/free, copy, upload/download, upload_weight, synchronize), device queries
 * and the vtable. The ops live in cuda_gemm.cu, cuda_conv.cu, cuda_attention.cu, cuda_norm.cu,
 * cuda_elementwise.cu and cuda_layout.cu. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

/* cuBLAS workspace: 32 MiB is what cuBLAS asks for on Hopper (cuBLAS docs, cublasSetWorkspace);
 * ours, so the GEMMs of a captured graph do not allocate. */
static const size_t BLAS_WORKSPACE_BYTES = (size_t)32 << 20;
/* Staging buffer for host <-> device conversions: copies larger than this go in chunks. */
static const size_t STAGING_MAX_BYTES = (size_t)64 << 20;

/* ---- errors ---- */

bool sd_cuda_check(sd_backend *be, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return true;
    (void)cudaGetLastError(); /* a non-sticky error must not show again at the next launch check */
    sd_backend_fail(be, SD_ERR_BACKEND, "%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
    return false;
}

bool sd_cublas_check(sd_backend *be, cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    const sd_cublas_api *blas = sd_cublas(); /* loaded: a status only comes from a call through it */
    sd_backend_fail(be, SD_ERR_BACKEND, "%s: %s (%s)", what, blas->status_name(s), blas->status_string(s));
    return false;
}

bool sd_cuda_tensors_ok(sd_backend *be, const char *op, const sd_tensor *t0, const sd_tensor *t1,
                        const sd_tensor *t2, const sd_tensor *t3, const sd_tensor *t4) {
    const sd_tensor *ts[5] = {t0, t1, t2, t3, t4};
    for (int i = 0; i < 5; i++) {
        const sd_tensor *t = ts[i];
        if (!t) continue;
        if (t->dtype != be->act_dtype) {
            sd_backend_fail(be, SD_ERR_UNSUPPORTED, "%s: tensor %d is %s, this backend computes in %s", op, i,
                            sd_dtype_name(t->dtype), sd_dtype_name(be->act_dtype));
            return false;
        }
        if (t->panel != 0) {
            sd_backend_fail(be, SD_ERR_UNSUPPORTED, "%s: tensor %d is packed for the CPU (panel %d); upload it "
                            "with upload_weight", op, i, t->panel);
            return false;
        }
        if (!t->data && sd_tensor_numel(t) > 0) {
            sd_backend_fail(be, SD_ERR_ARG, "%s: tensor %d has no data (a failed allocation?)", op, i);
            return false;
        }
    }
    return true;
}

/* ---- workspaces ---- */

/* Grows *buf to at least `bytes` (freeing the old buffer, which waits for the device). */
static bool grow(sd_backend *be, void **buf, size_t *have, size_t bytes, const char *what) {
    if (bytes <= *have && *buf) return true;
    if (*buf) {
        /* queued kernels may still read the old buffer: cudaFree waits for the device, but say so */
        (void)cudaStreamSynchronize(sd_cuda(be)->stream);
        cudaError_t e = cudaFree(*buf);
        *buf = NULL;
        *have = 0;
        if (!sd_cuda_check(be, e, what)) return false;
    }
    size_t want = (bytes + 255) / 256 * 256;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, want);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        sd_backend_fail(be, e == cudaErrorMemoryAllocation ? SD_ERR_NOMEM : SD_ERR_BACKEND,
                        "%s: cudaMalloc of %zu bytes: %s (%s)", what, want, cudaGetErrorName(e), cudaGetErrorString(e));
        return false;
    }
    *buf = p;
    *have = want;
    return true;
}

void *sd_cuda_workspace(sd_backend *be, size_t bytes) {
    sd_cuda_ctx *c = sd_cuda(be);
    if (!grow(be, &c->ws, &c->ws_bytes, bytes ? bytes : 1, "op workspace")) return NULL;
    return c->ws;
}

int32_t *sd_cuda_ids_buffer(sd_backend *be, int64_t count) {
    sd_cuda_ctx *c = sd_cuda(be);
    size_t bytes = (size_t)(count > 0 ? count : 1) * sizeof(int32_t);
    if (!grow(be, &c->ids, &c->ids_bytes, bytes, "embedding ids")) return NULL;
    return (int32_t *)c->ids;
}

/* The staging buffer, at least min(bytes, STAGING_MAX_BYTES); returns its size, 0 on failure. */
static size_t staging_reserve(sd_backend *be, size_t bytes) {
    sd_cuda_ctx *c = sd_cuda(be);
    size_t want = bytes < STAGING_MAX_BYTES ? bytes : STAGING_MAX_BYTES;
    if (!grow(be, &c->staging, &c->staging_bytes, want ? want : 1, "staging buffer")) return 0;
    return c->staging_bytes;
}

/* ---- memory entries of the vtable ---- */

static void *cuda_mem_alloc(sd_backend *be, size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256); /* cudaMalloc aligns to at least 256 bytes */
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        sd_backend_fail(be, e == cudaErrorMemoryAllocation ? SD_ERR_NOMEM : SD_ERR_BACKEND,
                        "cudaMalloc of %zu bytes: %s (%s)", bytes, cudaGetErrorName(e), cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

static void cuda_mem_free(sd_backend *be, void *ptr) {
    if (ptr) sd_cuda_check(be, cudaFree(ptr), "cudaFree");
}

static void cuda_synchronize(sd_backend *be) { sd_cuda_check(be, cudaStreamSynchronize(sd_cuda(be)->stream), "cudaStreamSynchronize"); }

static void cuda_copy(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    size_t bytes = (size_t)sd_tensor_numel(out) * sd_dtype_size(out->dtype);
    if (out->data == in->data || bytes == 0) return;
    SD_CUDA_TRY(be, cudaMemcpyAsync(out->data, in->data, bytes, cudaMemcpyDeviceToDevice, sd_cuda(be)->stream));
}

static bool is_float_type(sd_dtype t) { return t == SD_DTYPE_F32 || t == SD_DTYPE_F16 || t == SD_DTYPE_BF16; }

/* float32 host data -> dst in its dtype: straight for F32, else through the staging buffer in
 * chunks (each a host copy, then a conversion kernel, in stream order); a U8 tensor takes the
 * bytes as they are. The host buffer may be reused as soon as this returns: a copy from pageable
 * memory returns once the data is staged. */
static void cuda_upload(sd_backend *be, sd_tensor *dst, const void *host) {
    sd_cuda_ctx *c = sd_cuda(be);
    int64_t n = sd_tensor_numel(dst);
    if (!is_float_type(dst->dtype) && dst->dtype != SD_DTYPE_U8) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "upload: dtype %s", sd_dtype_name(dst->dtype));
        return;
    }
    if (n == 0) return;
    if (dst->dtype == SD_DTYPE_F32 || dst->dtype == SD_DTYPE_U8) {
        SD_CUDA_TRY(be, cudaMemcpyAsync(dst->data, host, (size_t)n * sd_dtype_size(dst->dtype), cudaMemcpyHostToDevice,
                                        c->stream));
        return;
    }
    size_t cap = staging_reserve(be, (size_t)n * sizeof(float));
    if (!cap) return;
    int64_t chunk = (int64_t)(cap / sizeof(float));
    size_t es = sd_dtype_size(dst->dtype);
    for (int64_t off = 0; off < n; off += chunk) {
        int64_t cnt = n - off < chunk ? n - off : chunk;
        SD_CUDA_TRY(be, cudaMemcpyAsync(c->staging, (const float *)host + off, (size_t)cnt * sizeof(float),
                                        cudaMemcpyHostToDevice, c->stream));
        if (!sd_cuda_convert(be, (char *)dst->data + (size_t)off * es, dst->dtype, c->staging, SD_DTYPE_F32, cnt))
            return;
    }
}

/* src in its dtype -> float32 host data (a U8 tensor: its bytes); waits for the stream (and so
 * reports any earlier asynchronous failure). */
static void cuda_download(sd_backend *be, void *host, const sd_tensor *src) {
    sd_cuda_ctx *c = sd_cuda(be);
    int64_t n = sd_tensor_numel(src);
    if (!is_float_type(src->dtype) && src->dtype != SD_DTYPE_U8) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "download: dtype %s", sd_dtype_name(src->dtype));
        return;
    }
    if (n > 0 && (src->dtype == SD_DTYPE_F32 || src->dtype == SD_DTYPE_U8)) {
        SD_CUDA_TRY(be, cudaMemcpyAsync(host, src->data, (size_t)n * sd_dtype_size(src->dtype), cudaMemcpyDeviceToHost,
                                        c->stream));
    } else if (n > 0) {
        size_t cap = staging_reserve(be, (size_t)n * sizeof(float));
        if (!cap) return;
        int64_t chunk = (int64_t)(cap / sizeof(float));
        size_t es = sd_dtype_size(src->dtype);
        for (int64_t off = 0; off < n; off += chunk) {
            int64_t cnt = n - off < chunk ? n - off : chunk;
            if (!sd_cuda_convert(be, c->staging, SD_DTYPE_F32, (const char *)src->data + (size_t)off * es, src->dtype,
                                 cnt))
                return;
            SD_CUDA_TRY(be, cudaMemcpyAsync((float *)host + off, c->staging, (size_t)cnt * sizeof(float),
                                            cudaMemcpyDeviceToHost, c->stream));
        }
    }
    SD_CUDA_TRY(be, cudaStreamSynchronize(c->stream));
}

/* A host weight (F32/F16/BF16, torch layout) -> new device memory in act_dtype: raw bytes through
 * the staging buffer, converted on the device (one rounding from the exact value). */
static void cuda_upload_weight(sd_backend *be, sd_tensor *dst, const sd_tensor *host) {
    sd_cuda_ctx *c = sd_cuda(be);
    if (host->panel != 0) {
        sd_backend_fail(be, SD_ERR_ARG, "upload_weight: the host weight is packed for the CPU (panel %d)", host->panel);
        return;
    }
    if (!is_float_type(host->dtype)) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "upload_weight: weights of dtype %s are not supported (F32, F16, BF16)",
                        sd_dtype_name(host->dtype));
        return;
    }
    int64_t n = sd_tensor_numel(host);
    if (n > 0 && !host->data) {
        sd_backend_fail(be, SD_ERR_ARG, "upload_weight: the host weight has no data");
        return;
    }
    const sd_dtype act = be->act_dtype;
    const size_t es_dst = sd_dtype_size(act), es_src = sd_dtype_size(host->dtype);
    void *p = cuda_mem_alloc(be, (size_t)n * es_dst);
    if (!p) return;
    bool ok = true;
    if (n > 0 && host->dtype == act) {
        ok = sd_cuda_check(be, cudaMemcpyAsync(p, host->data, (size_t)n * es_dst, cudaMemcpyHostToDevice, c->stream),
                           "upload_weight: cudaMemcpyAsync");
    } else if (n > 0) {
        size_t cap = staging_reserve(be, (size_t)n * es_src);
        ok = cap > 0;
        int64_t chunk = (int64_t)(cap / es_src);
        for (int64_t off = 0; ok && off < n; off += chunk) {
            int64_t cnt = n - off < chunk ? n - off : chunk;
            ok = sd_cuda_check(be, cudaMemcpyAsync(c->staging, (const char *)host->data + (size_t)off * es_src,
                                                   (size_t)cnt * es_src, cudaMemcpyHostToDevice, c->stream),
                               "upload_weight: cudaMemcpyAsync") &&
                 sd_cuda_convert(be, (char *)p + (size_t)off * es_dst, act, c->staging, host->dtype, cnt);
        }
    }
    if (!ok) {
        (void)cudaFree(p); /* waits for the copies queued so far, which may read p */
        return;
    }
    *dst = *host;
    dst->data = p;
    dst->dtype = act;
    dst->panel = 0;
}

/* ---- create / free ---- */

static void cuda_free(sd_backend *be) {
    sd_cuda_ctx *c = (sd_cuda_ctx *)be->impl;
    if (c) {
        /* errors here cannot be reported to anyone: the backend is going away */
        if (c->stream) (void)cudaStreamSynchronize(c->stream);
        if (c->blas) (void)sd_cublas()->destroy(c->blas);
        (void)cudaFree(c->blas_ws);
        (void)cudaFree(c->ws);
        (void)cudaFree(c->staging);
        (void)cudaFree(c->ids);
        if (c->stream) (void)cudaStreamDestroy(c->stream);
        (void)cudaGetLastError();
    }
    free(c);
    free(be);
}

static const sd_backend_vtable g_cuda_vtable = {
    .name = "cuda",
    .free = cuda_free,
    .linear = sd_cuda_linear,
    .layer_norm = sd_cuda_layer_norm,
    .attention = sd_cuda_attention,
    .activation = sd_cuda_activation,
    .add = sd_cuda_add,
    .mul = sd_cuda_mul,
    .softmax = sd_cuda_softmax,
    .embedding = sd_cuda_embedding,
    .conv2d = sd_cuda_conv2d,
    .group_norm = sd_cuda_group_norm,
    .upsample_nearest = sd_cuda_upsample_nearest,
    .add_broadcast = sd_cuda_add_broadcast,
    .axpby = sd_cuda_axpby,
    .scale = sd_cuda_scale,
    .geglu = sd_cuda_geglu,
    .transpose_hw_c = sd_cuda_transpose_hw_c,
    .concat_channels = sd_cuda_concat_channels,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .fill = sd_cuda_fill,
    .rgb8_to_image = sd_cuda_rgb8_to_image,
    .image_to_rgb8 = sd_cuda_image_to_rgb8,
    .mem_alloc = cuda_mem_alloc,
    .mem_free = cuda_mem_free,
    .synchronize = cuda_synchronize,
    .upload_weight = cuda_upload_weight,
};

/* A kernel to ask the runtime whether this binary has code for the device. */
static __global__ void probe_kernel(int *p) {
    if (p) *p = 0;
}

/* Everything after the device check; a failure is the backend's status (cuda_free cleans up). */
static void cuda_setup(sd_backend *be) {
    sd_cuda_ctx *c = sd_cuda(be);
    c->device = 0;
    SD_CUDA_TRY(be, cudaSetDevice(c->device));
    cudaFuncAttributes fa;
    cudaError_t e = cudaFuncGetAttributes(&fa, probe_kernel);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        int major = 0, minor = 0;
        (void)cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, c->device);
        (void)cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, c->device);
        (void)cudaGetLastError();
        sd_backend_fail(be, SD_ERR_BACKEND, "this build has no code for the device (compute capability %d.%d; "
                        "rebuild with -DSD_CUDA_ARCHS=%d%d): %s (%s)", major, minor, major, minor,
                        cudaGetErrorName(e), cudaGetErrorString(e));
        return;
    }
    int smem = 0;
    SD_CUDA_TRY(be, cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, c->device));
    c->smem_optin = (size_t)smem;
    SD_CUDA_TRY(be, cudaDeviceGetAttribute(&c->sm_count, cudaDevAttrMultiProcessorCount, c->device));
    SD_CUDA_TRY(be, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    const sd_cublas_api *blas = sd_cublas();
    if (!blas) {
        sd_backend_fail(be, SD_ERR_BACKEND, "%s", sd_cublas_error());
        return;
    }
    if (!sd_cublas_check(be, blas->create(&c->blas), "cublasCreate")) {
        c->blas = NULL;
        return;
    }
    /* cublasSetStream resets the workspace to cuBLAS's own pool: set the stream first */
    if (!sd_cublas_check(be, blas->set_stream(c->blas, c->stream), "cublasSetStream")) return;
    SD_CUDA_TRY(be, cudaMalloc(&c->blas_ws, BLAS_WORKSPACE_BYTES));
    c->blas_ws_bytes = BLAS_WORKSPACE_BYTES;
    if (!sd_cublas_check(be, blas->set_workspace(c->blas, c->blas_ws, c->blas_ws_bytes), "cublasSetWorkspace")) return;
    /* float32 accumulation throughout: no reduced-precision (16-bit) split-K reductions, no TF32 */
    sd_cublas_check(be, blas->set_math_mode(c->blas, (cublasMath_t)(CUBLAS_DEFAULT_MATH |
                                                                  CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)),
                    "cublasSetMathMode");
}

/* Whether the driver reports a device; when not, why ("no CUDA device: <name> (<description>)")
 * into buf (may be NULL). */
static bool device_present(char *buf, size_t size) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    (void)cudaGetLastError();
    if (buf && size) {
        if (e != cudaSuccess) snprintf(buf, size, "no CUDA device: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
        else if (count < 1) snprintf(buf, size, "no CUDA device: the driver reports %d devices", count);
        else buf[0] = '\0';
    }
    return e == cudaSuccess && count > 0;
}

extern "C" sd_status sd_cuda_backend_create(sd_backend **out, sd_dtype act_dtype) {
    if (!out) return sd_fail(SD_ERR_ARG, "cuda backend: out is NULL");
    if (!sd_is_act_dtype(act_dtype))
        return sd_fail(SD_ERR_ARG, "cuda backend: activations in %s are not supported (F16, BF16 or F32)",
                       sd_dtype_name(act_dtype));
    char why[320];
    if (!device_present(why, sizeof why)) return sd_fail(SD_ERR_BACKEND, "cuda backend: %s", why);
    sd_backend *be = (sd_backend *)calloc(1, sizeof *be);
    sd_cuda_ctx *c = (sd_cuda_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return sd_fail(SD_ERR_NOMEM, "cuda backend: out of memory");
    }
    be->vt = &g_cuda_vtable;
    be->kind = SD_BACKEND_CUDA;
    be->status = SD_OK;
    be->n_threads = 1;
    be->impl = c;
    be->act_dtype = act_dtype;
    be->device_memory = true;
    cuda_setup(be);
    if (be->status != SD_OK) {
        sd_status st = be->status; /* the message is this thread's sd_fail message already */
        cuda_free(be);
        return st;
    }
    *out = be;
    return SD_OK;
}

/* ---- device queries ---- */

extern "C" int sd_cuda_device_count(void) {
    int count = 0;
    if (!device_present(NULL, 0) || cudaGetDeviceCount(&count) != cudaSuccess) return 0;
    return sd_cublas() ? count : 0; /* without cuBLAS no backend can be made */
}

extern "C" const char *sd_cuda_unavailable_reason(void) {
    static thread_local char buf[640];
    if (device_present(buf, sizeof buf) && !sd_cublas()) snprintf(buf, sizeof buf, "%s", sd_cublas_error());
    return buf;
}

/* Dense fp16 tensor-core FLOP per clock per SM with float32 accumulation, from NVIDIA's
 * architecture whitepapers (peak TFLOP/s / (SMs x boost clock)): V100 1024, A100 2048, H100 4096,
 * B200 8192; Turing, GA10x, Ada and GB20x 1024 on professional and data-centre parts, 512 on
 * GeForce parts, whose fp32-accumulate rate is half their fp16-accumulate rate. */
static double fp16_flop_per_clock_sm(int major, int minor, const char *name) {
    const bool geforce = strstr(name, "GeForce") != NULL;
    switch (major * 10 + minor) {
    case 70:
    case 72: return 1024;
    case 75:
    case 86:
    case 89:
    case 120: return geforce ? 512 : 1024;
    case 80: return 2048;
    case 90: return 4096;
    case 100:
    case 103: return 8192;
    default: return 0;
    }
}

extern "C" sd_status sd_cuda_device_info_get(sd_cuda_device_info *info) {
    if (!info) return sd_fail(SD_ERR_ARG, "sd_cuda_device_info_get: info is NULL");
    char why[320];
    if (!device_present(why, sizeof why)) return sd_fail(SD_ERR_BACKEND, "cuda: %s", why);
    sd_cuda_device_info d;
    memset(&d, 0, sizeof d);
    cudaDeviceProp prop;
    int clock_khz = 0;
    cudaError_t e;
    if ((e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0)) != cudaSuccess ||
        (e = cudaDriverGetVersion(&d.driver_version)) != cudaSuccess ||
        (e = cudaRuntimeGetVersion(&d.runtime_version)) != cudaSuccess) {
        (void)cudaGetLastError();
        return sd_fail(SD_ERR_BACKEND, "cuda: device query: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
    }
    snprintf(d.name, sizeof d.name, "%s", prop.name);
    d.cc_major = prop.major;
    d.cc_minor = prop.minor;
    d.sm_count = prop.multiProcessorCount;
    d.total_mem = prop.totalGlobalMem;
    d.clock_ghz = clock_khz / 1e6;
    d.fp16_dense_tflops = fp16_flop_per_clock_sm(d.cc_major, d.cc_minor, d.name) * d.sm_count * d.clock_ghz / 1e3;
    *info = d;
    return SD_OK;
}

extern "C" size_t sd_cuda_memory_used(void) {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return total_b - free_b;
}
