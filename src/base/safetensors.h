/* safetensors.h — reading (mmap) and writing safetensors files.
 *
 * Format: u64 little-endian header length N, N bytes of JSON, then the raw data. The JSON maps
 * tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data
 * start) plus an optional "__metadata__" object of strings.
 *
 * sd_st_open validates everything before returning: header length within the file and under
 * SD_ST_HEADER_MAX, valid JSON, known dtypes, non-negative shapes whose element count times the
 * dtype size equals the byte range, ranges inside the file, no two ranges overlapping, no
 * duplicate names. Every failure is SD_ERR_FORMAT / SD_ERR_LIMIT / SD_ERR_IO with a message naming
 * the file and the tensor. After a successful open, tensor data can be trusted to be in bounds.
 *
 * The file stays mapped until sd_st_close; pointers from sd_st_data are valid until then.
 */
#ifndef SD_BASE_SAFETENSORS_H
#define SD_BASE_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/status.h"

enum {
    SD_ST_MAX_DIMS = 8,
    SD_ST_HEADER_MAX = 100 * 1024 * 1024, /* same bound as the Rust safetensors crate */
};

typedef struct sd_st_tensor {
    char *name;
    sd_dtype dtype;
    int ndim;
    int64_t shape[SD_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* byte range relative to the data section */
} sd_st_tensor;

typedef struct sd_safetensors {
    char path[4096];
    const uint8_t *map; /* whole file */
    size_t map_size;
    int owns_map; /* 1 when map is our mmap (sd_st_open), 0 for sd_st_open_memory */
    const uint8_t *data; /* data section */
    size_t data_size;
    sd_st_tensor *tensors; /* sorted by name */
    int n_tensors;
    char **meta_keys, **meta_values; /* __metadata__ */
    int n_meta;
    /* A recorder (sd_st_open_recorder) holds no data: loaders that ask it for a tensor get its
     * name and shape recorded instead. `sdstream make-model` runs the real loaders over one to
     * learn every tensor a config implies. */
    bool recording;
    sd_st_tensor *records;
    int n_records, cap_records;
} sd_safetensors;

sd_status sd_st_open(sd_safetensors **out, const char *path);
/* Parses an in-memory file image (not copied; must outlive the handle). For fuzzing and tests. */
sd_status sd_st_open_memory(sd_safetensors **out, const void *bytes, size_t size, const char *name);
void sd_st_close(sd_safetensors *st);
sd_status sd_st_open_recorder(sd_safetensors **out, const char *name);
sd_status sd_st_record(sd_safetensors *st, const char *name, int ndim, const int64_t *shape);

/* NULL if absent. */
const sd_st_tensor *sd_st_find(const sd_safetensors *st, const char *name);
const void *sd_st_data(const sd_safetensors *st, const sd_st_tensor *t);
/* Says that bytes [p, p + size) of the file have been copied out and are not needed again: the
 * whole pages among them leave the process's resident set (touched again, they are re-read from
 * the file). Loaders call it per tensor so that converting a model does not hold the file's
 * pages and the converted copy at once. No-op for in-memory files. */
void sd_st_release(const sd_safetensors *st, const void *p, size_t size);
/* NULL if absent. */
const char *sd_st_metadata(const sd_safetensors *st, const char *key);

/* Reads a float tensor (F32/F16/BF16/F64) as float32 into out, checking that it has exactly
 * the given shape (ndim dims). SD_ERR_NOT_FOUND / SD_ERR_FORMAT name file, tensor, expected and
 * found. */
sd_status sd_st_read_f32(const sd_safetensors *st, const char *name, float *out, int ndim,
                         const int64_t *shape);
/* Writes the shape of a tensor as "[a, b, c]" into buf. */
void sd_st_shape_str(char *buf, size_t size, int ndim, const int64_t *shape);

/* ---- writing ---- */
typedef struct sd_st_entry {
    const char *name;
    sd_dtype dtype;
    int ndim;
    int64_t shape[SD_ST_MAX_DIMS];
    const void *data; /* numel * dtype size bytes */
} sd_st_entry;

/* Writes entries (any order; stored sorted by name) with optional metadata pairs. */
sd_status sd_st_write(const char *path, const sd_st_entry *entries, int n_entries,
                      const char *const *meta_keys, const char *const *meta_values, int n_meta);

#endif
