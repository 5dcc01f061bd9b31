/* cuda_blas.cu — cuBLAS, opened at run time (dlopen) instead of linked.
 *
 * Why: a binary linked against libcublas.so.13 does not start at all on a machine without the CUDA
 * toolkit's libraries, CPU path included. The CUDA runtime is linked statically (it opens the
 * driver itself); cuBLAS is opened here the first time a CUDA backend is made or asked about, and
 * its absence is one more reason the cuda backend is unavailable, in words. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "backend/cuda/cuda_common.cuh"

static sd_cublas_api g_api;
static bool g_loaded;
static char g_error[512];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Resolves `name` into *slot; false (and the reason in g_error) when the library lacks it. */
template <typename F> static bool resolve(void *lib, F *slot, const char *name) {
    *slot = (F)dlsym(lib, name);
    if (*slot) return true;
    snprintf(g_error, sizeof g_error, "cuBLAS: %s not found in libcublas (a cuBLAS older than CUDA 12?)", name);
    return false;
}

static void load_once(void) {
    /* the soname this build was compiled against first, then any libcublas the loader finds */
    void *lib = dlopen("libcublas.so." SD_CUBLAS_SOVERSION, RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libcublas.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(g_error, sizeof g_error,
                 "cuBLAS could not be opened (%s): install the CUDA %s toolkit's cuBLAS or add its lib64 folder to "
                 "LD_LIBRARY_PATH", why ? why : "libcublas.so." SD_CUBLAS_SOVERSION, SD_CUBLAS_SOVERSION);
        return;
    }
    sd_cublas_api a;
    bool ok = resolve(lib, &a.create, "cublasCreate_v2") && resolve(lib, &a.destroy, "cublasDestroy_v2") &&
              resolve(lib, &a.set_stream, "cublasSetStream_v2") &&
              resolve(lib, &a.set_workspace, "cublasSetWorkspace_v2") &&
              resolve(lib, &a.set_math_mode, "cublasSetMathMode") && resolve(lib, &a.gemm_ex, "cublasGemmEx") &&
              resolve(lib, &a.gemm_strided_batched_ex, "cublasGemmStridedBatchedEx") &&
              resolve(lib, &a.status_name, "cublasGetStatusName") &&
              resolve(lib, &a.status_string, "cublasGetStatusString");
    if (!ok) {
        dlclose(lib);
        return;
    }
    g_api = a; /* the library stays open for the life of the process */
    g_loaded = true;
}

const sd_cublas_api *sd_cublas(void) {
    pthread_once(&g_once, load_once);
    return g_loaded ? &g_api : NULL;
}

const char *sd_cublas_error(void) {
    pthread_once(&g_once, load_once);
    return g_loaded ? "" : g_error;
}
