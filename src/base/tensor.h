/* tensor.h — the tensor descriptor every op takes: a data pointer, a dtype and a row-major shape
 * (outermost first, like torch). Descriptors are plain values: views and reshapes are copies with
 * other sizes; nothing here owns memory. */
#ifndef SD_BASE_TENSOR_H
#define SD_BASE_TENSOR_H

#include <stdint.h>

#include "base/dtype.h"

enum { SD_MAX_DIMS = 4 };

typedef struct sd_tensor {
    void *data;
    sd_dtype dtype;
    int ndim;
    int64_t shape[SD_MAX_DIMS];
    /* > 0: a conv weight stored in a backend's packed layout, panels of this many output channels
     * (sd_backend_pack_conv_weight); shape stays the logical [Co, Ci, k, k]. 0: torch's layout. */
    int panel;
} sd_tensor;

static inline int64_t sd_tensor_numel(const sd_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* Size of the last dimension and the product of all others: the (rows, cols) view ops use. */
static inline int64_t sd_tensor_cols(const sd_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }
static inline int64_t sd_tensor_rows(const sd_tensor *t) {
    int64_t c = sd_tensor_cols(t);
    return c ? sd_tensor_numel(t) / c : 0;
}

static inline sd_tensor sd_tensor_make(void *data, sd_dtype dtype, int ndim, const int64_t *shape) {
    sd_tensor t = {data, dtype, ndim, {0}, 0};
    for (int i = 0; i < ndim && i < SD_MAX_DIMS; i++) t.shape[i] = shape[i];
    return t;
}

static inline sd_tensor sd_tensor_2d(void *data, sd_dtype dtype, int64_t rows, int64_t cols) {
    return (sd_tensor){data, dtype, 2, {rows, cols, 0, 0}, 0};
}

static inline sd_tensor sd_tensor_3d(void *data, sd_dtype dtype, int64_t d0, int64_t d1, int64_t d2) {
    return (sd_tensor){data, dtype, 3, {d0, d1, d2, 0}, 0};
}

static inline sd_tensor sd_tensor_4d(void *data, sd_dtype dtype, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    return (sd_tensor){data, dtype, 4, {d0, d1, d2, d3}, 0};
}

static inline float *sd_f32(const sd_tensor *t) { return (float *)t->data; }

/* Address of element `index` (row-major, counted in the tensor's own dtype): for views into device
 * memory as much as host memory (pointer arithmetic only, nothing is read). */
static inline void *sd_tensor_at(const sd_tensor *t, int64_t index) {
    return (char *)t->data + (size_t)index * sd_dtype_size(t->dtype);
}

/* Rows [row0, row0 + rows) of dimension 0, same dtype: a view (weights may be stored bf16, so the
 * offset is in bytes of the tensor's own type). Not for packed tensors (panel > 0). */
static inline sd_tensor sd_tensor_slice0(const sd_tensor *t, int64_t row0, int64_t rows) {
    sd_tensor v = *t;
    int64_t row_elems = t->shape[0] ? sd_tensor_numel(t) / t->shape[0] : 0;
    v.data = (char *)t->data + (size_t)(row0 * row_elems) * sd_dtype_size(t->dtype);
    v.shape[0] = rows;
    return v;
}

#endif
