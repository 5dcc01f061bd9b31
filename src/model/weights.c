/* weights.c — see weights.h. */
#include "model/weights.h"

#include "backend/backend.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

/* Buffers [0, n_device) live in store->device's memory (an upload stopped part way keeps this). */
static int n_on_device(const sd_weight_store *store) { return store->device ? store->n_device : 0; }

void sd_weight_store_free(sd_weight_store *store) {
    if (!store) return;
    int on_device = n_on_device(store);
    for (int i = 0; i < store->n; i++) {
        if (i < on_device) sd_backend_mem_free(store->device, store->buffers[i]);
        else free(store->buffers[i]);
    }
    free(store->buffers);
    free(store->sizes);
    free(store->dsts);
    memset(store, 0, sizeof *store);
}

sd_status sd_weight_store_upload(sd_weight_store *store, sd_backend *device) {
    if (!sd_backend_wants_weight_upload(device) || store->n == 0) return SD_OK;
    if (store->device && store->device != device)
        return sd_fail(SD_ERR_STATE, "weights: already uploaded to another backend");
    store->device = device;
    for (int i = store->n_device; i < store->n; i++) {
        sd_tensor *dst = store->dsts[i], host = *dst, dev;
        if (!dst || host.data != store->buffers[i])
            return sd_fail(SD_ERR_STATE, "weights: buffer %d is no longer the one its tensor points at", i);
        SD_TRY(sd_backend_upload_weight(device, &dev, &host));
        free(store->buffers[i]);
        store->buffers[i] = dev.data;
        store->sizes[i] = (size_t)sd_tensor_numel(&dev) * sd_dtype_size(dev.dtype);
        store->n_device = i + 1;
        *dst = dev;
    }
    return SD_OK;
}

/* Weight buffers of 2 MiB and more start on a 2 MiB boundary and ask for transparent huge pages:
 * first-touch page faults were most of a full-size load's time in this VM (perf: 28% of samples in
 * the fault handler), and a huge page costs one fault where 4 KiB pages cost 512. */
void *sd_weights_alloc(size_t bytes) {
    enum { HUGE = 2u << 20 };
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded < HUGE) return aligned_alloc(64, rounded);
    void *p = NULL;
    if (posix_memalign(&p, HUGE, rounded) != 0) return NULL;
    madvise(p, rounded / HUGE * HUGE, MADV_HUGEPAGE); /* advice only: without THP, 4 KiB pages as before */
    return p;
}

static void *store_alloc(sd_weight_store *store, sd_tensor *dst, size_t bytes) {
    if (store->n == store->cap) {
        int cap = store->cap ? 2 * store->cap : 256;
        void **p = realloc(store->buffers, (size_t)cap * sizeof *p);
        if (p) store->buffers = p;
        size_t *sizes = p ? realloc(store->sizes, (size_t)cap * sizeof *sizes) : NULL;
        if (sizes) store->sizes = sizes;
        sd_tensor **dsts = sizes ? realloc(store->dsts, (size_t)cap * sizeof *dsts) : NULL;
        if (!dsts) return NULL;
        store->dsts = dsts;
        store->cap = cap;
    }
    void *buf = sd_weights_alloc(bytes);
    if (!buf) return NULL;
    store->sizes[store->n] = bytes;
    store->dsts[store->n] = dst;
    store->buffers[store->n++] = buf;
    store->bytes += bytes;
    return buf;
}

const sd_st_tensor *sd_weights_find(const sd_weight_loader *loader, const char *name, sd_key_ref *ref) {
    memset(ref, 0, sizeof *ref);
    if (loader->map) {
        sd_key_ref mapped;
        memset(&mapped, 0, sizeof mapped);
        if (loader->map(name, &mapped, loader->map_ctx) != 0) return NULL;
        *ref = mapped;
        snprintf(ref->key, sizeof ref->key, "%s%s", loader->prefix ? loader->prefix : "", mapped.key);
    } else {
        snprintf(ref->key, sizeof ref->key, "%s%s", loader->prefix ? loader->prefix : "", name);
    }
    return sd_st_find(loader->file, ref->key);
}

sd_status sd_weights_load(sd_weight_loader *loader, sd_tensor *dst, const char *name, int ndim, const int64_t *shape) {
    const char *path = loader->file->path;
    if (loader->file->recording) { /* make-model: note what the config needs, load nothing */
        *dst = sd_tensor_make(NULL, SD_DTYPE_F32, ndim, shape);
        return sd_st_record((sd_safetensors *)loader->file, name, ndim, shape);
    }
    sd_key_ref ref;
    const sd_st_tensor *t = sd_weights_find(loader, name, &ref);
    if (!t)
        return sd_fail(SD_ERR_NOT_FOUND, "%s: %s weight '%s' not found (looked for tensor '%s')", path,
                       loader->component, name, ref.key);
    if (!sd_dtype_is_float(t->dtype))
        return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': expected a float dtype (F32/F16/BF16), found %s", path,
                       ref.key, sd_dtype_name(t->dtype));
    /* the file tensor's expected shape: the wanted one, with the slice's parent row count */
    int64_t want[SD_ST_MAX_DIMS];
    for (int i = 0; i < ndim; i++) want[i] = shape[i];
    /* Trailing 1s are layout, not data: a 1x1 conv [o, i, 1, 1] and a Linear [o, i] hold the same
     * numbers (SD 2.x proj_in/proj_out, the LDM VAE's attention), so either loads as the other. */
    int file_ndim = t->ndim, want_ndim = ndim;
    while (file_ndim > 1 && t->shape[file_ndim - 1] == 1 && file_ndim > want_ndim) file_ndim--;
    while (want_ndim > 1 && shape[want_ndim - 1] == 1 && want_ndim > file_ndim) want_ndim--;
    bool fits = file_ndim == want_ndim;
    if (fits && ref.rows > 0) fits = ref.rows == shape[0] && ref.row_begin + ref.rows <= t->shape[0];
    for (int i = (ref.rows > 0 ? 1 : 0); fits && i < want_ndim; i++) fits = t->shape[i] == shape[i];
    if (!fits) {
        char want_s[256], got_s[256];
        sd_st_shape_str(want_s, sizeof want_s, ndim, want);
        sd_st_shape_str(got_s, sizeof got_s, t->ndim, t->shape);
        return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s' (%s '%s'): expected shape %s%s, found %s", path, ref.key,
                       loader->component, name, want_s, ref.rows > 0 ? " (a row slice)" : "", got_s);
    }
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= shape[i];
    /* matrices: bf16 when asked; else a 16-bit file's own type (widening later is exact, and the
     * copy is half the size); vectors and float32/64 files: float32 */
    sd_dtype dtype = SD_DTYPE_F32;
    if (ndim >= 2 && loader->matrix_dtype == SD_DTYPE_BF16) dtype = SD_DTYPE_BF16;
    else if (ndim >= 2 && (t->dtype == SD_DTYPE_F16 || t->dtype == SD_DTYPE_BF16)) dtype = t->dtype;
    void *buf = store_alloc(loader->store, dst, (size_t)numel * sd_dtype_size(dtype));
    if (!buf) return sd_fail(SD_ERR_NOMEM, "%s: out of memory loading '%s' (%lld values)", path, ref.key, (long long)numel);
    const uint8_t *src = sd_st_data(loader->file, t);
    if (ref.rows > 0) src += (size_t)(ref.row_begin * (numel / shape[0])) * sd_dtype_size(t->dtype);
    sd_status fused = SD_OK;
    if (loader->lora && sd_lora_set_touches(loader->lora, loader->lora_target, name))
        fused = sd_lora_set_fuse(loader->lora, loader->lora_target, name, buf, dtype, src, t->dtype, ndim, shape);
    else if (dtype == SD_DTYPE_F32) sd_convert_to_f32(buf, src, t->dtype, (size_t)numel);
    else if (dtype == t->dtype) memcpy(buf, src, (size_t)numel * sizeof(uint16_t));
    else sd_convert_to_bf16(buf, src, t->dtype, (size_t)numel);
    sd_st_release(loader->file, src, (size_t)numel * sd_dtype_size(t->dtype));
    SD_TRY(fused);
    *dst = sd_tensor_make(buf, dtype, ndim, shape);
    size_t packed_bytes = loader->conv_layout && ndim == 4 ? sd_backend_conv_weight_bytes(loader->conv_layout, dst) : 0;
    if (packed_bytes) { /* the backend's layout replaces torch's (the store's last buffer) */
        void *packed = sd_weights_alloc(packed_bytes);
        if (!packed) return sd_fail(SD_ERR_NOMEM, "%s: out of memory packing '%s'", path, ref.key);
        sd_backend_pack_conv_weight(loader->conv_layout, dst, packed, dst);
        free(buf);
        loader->store->buffers[loader->store->n - 1] = packed;
        loader->store->sizes[loader->store->n - 1] = packed_bytes;
        loader->store->bytes += packed_bytes - (size_t)numel * sd_dtype_size(dtype);
    }
    return SD_OK;
}

sd_status sd_weights_load_projection(sd_weight_loader *loader, sd_tensor *dst, const char *name, int64_t out, int64_t in,
                                     bool file_is_conv) {
    if (loader->file->recording && file_is_conv) { /* make-model writes the layout diffusers reads */
        *dst = sd_tensor_make(NULL, SD_DTYPE_F32, 2, (int64_t[]){out, in});
        return sd_st_record((sd_safetensors *)loader->file, name, 4, (int64_t[]){out, in, 1, 1});
    }
    return sd_weights_load(loader, dst, name, 2, (int64_t[]){out, in});
}

sd_status sd_weights_loadf(sd_weight_loader *loader, sd_tensor *dst, int ndim, const int64_t *shape, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return sd_weights_load(loader, dst, name, ndim, shape);
}
