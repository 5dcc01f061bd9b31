/* safetensors.c — see safetensors.h. Validation happens once, at open; readers trust it after. */
#include "base/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* 2^53: the largest integer a JSON number (double) represents exactly. */
#define SD_ST_MAX_INT 9007199254740992.0

void sd_st_shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t pos = 0;
    pos += (size_t)snprintf(buf + pos, size - pos, "[");
    for (int i = 0; i < ndim && pos < size; i++)
        pos += (size_t)snprintf(buf + pos, size - pos, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (pos < size) snprintf(buf + pos, size - pos, "]");
}

static int json_to_u64(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return -1;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= SD_ST_MAX_INT) || floor(d) != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int compare_by_name(const void *a, const void *b) {
    return strcmp(((const sd_st_tensor *)a)->name, ((const sd_st_tensor *)b)->name);
}

static int compare_by_begin(const void *a, const void *b) {
    const sd_st_tensor *x = *(const sd_st_tensor *const *)a, *y = *(const sd_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

static void free_contents(sd_safetensors *st) {
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
}

static sd_status parse_metadata(sd_safetensors *st, const cJSON *meta) {
    const char *path = st->path;
    if (!cJSON_IsObject(meta)) return sd_fail(SD_ERR_FORMAT, "%s: __metadata__ is not an object", path);
    int n = cJSON_GetArraySize(meta);
    st->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    st->meta_values = calloc((size_t)n + 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_values) return sd_fail(SD_ERR_NOMEM, "%s: out of memory", path);
    const cJSON *item;
    cJSON_ArrayForEach(item, meta) {
        if (!cJSON_IsString(item))
            return sd_fail(SD_ERR_FORMAT, "%s: __metadata__ value '%s' is not a string", path,
                           item->string);
        st->meta_keys[st->n_meta] = strdup(item->string);
        st->meta_values[st->n_meta] = strdup(item->valuestring);
        st->n_meta++;
        if (!st->meta_keys[st->n_meta - 1] || !st->meta_values[st->n_meta - 1])
            return sd_fail(SD_ERR_NOMEM, "%s: out of memory", path);
    }
    return SD_OK;
}

static sd_status parse_tensor(sd_safetensors *st, const cJSON *item, sd_st_tensor *t) {
    const char *path = st->path, *name = item->string;
    if (!cJSON_IsObject(item)) return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': entry is not an object", path, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype)) return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    if (sd_dtype_parse(dtype->valuestring, &t->dtype) != 0)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: tensor '%s': unknown dtype \"%.32s\"", path, name, dtype->valuestring);
    if (!cJSON_IsArray(shape)) return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': missing \"shape\" array", path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > SD_ST_MAX_DIMS)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions, at most %d supported", path, name, ndim, SD_ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        uint64_t dim;
        if (json_to_u64(cJSON_GetArrayItem(shape, i), &dim) != 0)
            return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, i);
        t->shape[i] = (int64_t)dim;
        /* the byte range bounds numel, so any product above the file size is already wrong */
        if (dim != 0 && numel > (uint64_t)st->data_size / dim + 1) numel = UINT64_MAX;
        else if (numel != UINT64_MAX) numel *= dim;
    }
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        json_to_u64(cJSON_GetArrayItem(offsets, 0), &t->begin) != 0 ||
        json_to_u64(cJSON_GetArrayItem(offsets, 1), &t->end) != 0)
        return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be [begin, end] integers", path, name);
    if (t->begin > t->end)
        return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': data_offsets begin %llu > end %llu", path, name,
                       (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > st->data_size)
        return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': data_offsets end %llu is past the data section (%zu bytes; file truncated?)",
                       path, name, (unsigned long long)t->end, st->data_size);
    uint64_t bytes = t->end - t->begin;
    size_t esize = sd_dtype_size(t->dtype);
    if (numel == UINT64_MAX || numel * esize != bytes) {
        char s[256];
        sd_st_shape_str(s, sizeof s, ndim, t->shape);
        return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': shape %s of %s needs %s bytes, data_offsets give %llu", path,
                       name, s, sd_dtype_name(t->dtype), numel == UINT64_MAX ? "too many" : "a different number of",
                       (unsigned long long)bytes);
    }
    t->numel = (int64_t)numel;
    t->name = strdup(name);
    if (!t->name) return sd_fail(SD_ERR_NOMEM, "%s: out of memory", path);
    return SD_OK;
}

static sd_status check_layout(sd_safetensors *st) {
    int n = st->n_tensors;
    if (n == 0) return SD_OK;
    qsort(st->tensors, (size_t)n, sizeof(sd_st_tensor), compare_by_name);
    for (int i = 1; i < n; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", st->path, st->tensors[i].name);
    sd_st_tensor **by_begin = malloc((size_t)n * sizeof *by_begin);
    if (!by_begin) return sd_fail(SD_ERR_NOMEM, "%s: out of memory", st->path);
    for (int i = 0; i < n; i++) by_begin[i] = &st->tensors[i];
    qsort(by_begin, (size_t)n, sizeof *by_begin, compare_by_begin);
    sd_status status = SD_OK;
    for (int i = 1; i < n; i++) {
        const sd_st_tensor *a = by_begin[i - 1], *b = by_begin[i];
        if (b->begin < a->end) { /* empty tensors (begin == end) never overlap */
            status = sd_fail(SD_ERR_FORMAT, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", st->path,
                             a->name, (unsigned long long)a->begin, (unsigned long long)a->end, b->name,
                             (unsigned long long)b->begin, (unsigned long long)b->end);
            break;
        }
    }
    free(by_begin);
    return status;
}

static sd_status parse_header(sd_safetensors *st) {
    const char *path = st->path;
    if (st->map_size < 8)
        return sd_fail(SD_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file (needs an 8-byte header length)", path, st->map_size);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | st->map[i];
    if (header_len > SD_ST_HEADER_MAX)
        return sd_fail(SD_ERR_LIMIT, "%s: header length %llu exceeds the %d-byte limit (not a safetensors file?)", path,
                       (unsigned long long)header_len, SD_ST_HEADER_MAX);
    if (header_len > st->map_size - 8)
        return sd_fail(SD_ERR_FORMAT, "%s: header length %llu is past the end of the %zu-byte file (truncated?)", path,
                       (unsigned long long)header_len, st->map_size);
    const char *json = (const char *)st->map + 8;
    st->data = st->map + 8 + header_len;
    st->data_size = st->map_size - 8 - (size_t)header_len;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)header_len, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - json) : 0;
        return sd_fail(SD_ERR_FORMAT, "%s: header is not valid JSON (near byte %zu of %llu)", path, at,
                       (unsigned long long)header_len);
    }
    /* only padding may follow the JSON object */
    for (const char *p = end; p && p < json + header_len; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p != '\0') {
            cJSON_Delete(root);
            return sd_fail(SD_ERR_FORMAT, "%s: trailing bytes after the header JSON", path);
        }
    }
    sd_status status = SD_OK;
    if (!cJSON_IsObject(root)) {
        status = sd_fail(SD_ERR_FORMAT, "%s: header JSON is not an object", path);
        goto done;
    }
    int n_items = cJSON_GetArraySize(root);
    st->tensors = calloc((size_t)n_items + 1, sizeof(sd_st_tensor));
    if (!st->tensors) {
        status = sd_fail(SD_ERR_NOMEM, "%s: out of memory for %d tensors", path, n_items);
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (st->meta_keys) {
                status = sd_fail(SD_ERR_FORMAT, "%s: __metadata__ appears twice", path);
                goto done;
            }
            if ((status = parse_metadata(st, item)) != SD_OK) goto done;
            continue;
        }
        if ((status = parse_tensor(st, item, &st->tensors[st->n_tensors])) != SD_OK) goto done;
        st->n_tensors++;
    }
    status = check_layout(st);
done:
    cJSON_Delete(root);
    return status;
}

static sd_status finish_open(sd_safetensors *st, sd_safetensors **out) {
    sd_status status = parse_header(st);
    if (status != SD_OK) {
        sd_st_close(st);
        return status;
    }
    *out = st;
    return SD_OK;
}

sd_status sd_st_open(sd_safetensors **out, const char *path) {
    sd_safetensors *st = calloc(1, sizeof *st);
    if (!st) return sd_fail(SD_ERR_NOMEM, "%s: out of memory", path);
    snprintf(st->path, sizeof st->path, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(st);
        return sd_fail(errno == ENOENT ? SD_ERR_NOT_FOUND : SD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        free(st);
        return sd_fail(SD_ERR_IO, "%s: not a regular file", path);
    }
    st->map_size = (size_t)sb.st_size;
    if (st->map_size == 0) {
        close(fd);
        free(st);
        return sd_fail(SD_ERR_FORMAT, "%s: empty file", path);
    }
    void *map = mmap(NULL, st->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        free(st);
        return sd_fail(SD_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    }
    st->map = map;
    st->owns_map = 1;
    return finish_open(st, out);
}

sd_status sd_st_open_memory(sd_safetensors **out, const void *bytes, size_t size, const char *name) {
    sd_safetensors *st = calloc(1, sizeof *st);
    if (!st) return sd_fail(SD_ERR_NOMEM, "%s: out of memory", name);
    snprintf(st->path, sizeof st->path, "%s", name);
    st->map = bytes;
    st->map_size = size;
    return finish_open(st, out);
}

sd_status sd_st_open_recorder(sd_safetensors **out, const char *name) {
    sd_safetensors *st = calloc(1, sizeof *st);
    if (!st) return sd_fail(SD_ERR_NOMEM, "%s: out of memory", name);
    snprintf(st->path, sizeof st->path, "%s", name);
    st->recording = true;
    *out = st;
    return SD_OK;
}

sd_status sd_st_record(sd_safetensors *st, const char *name, int ndim, const int64_t *shape) {
    if (st->n_records == st->cap_records) {
        int cap = st->cap_records ? 2 * st->cap_records : 256;
        sd_st_tensor *p = realloc(st->records, (size_t)cap * sizeof *p);
        if (!p) return sd_fail(SD_ERR_NOMEM, "%s: out of memory", st->path);
        st->records = p;
        st->cap_records = cap;
    }
    sd_st_tensor *t = &st->records[st->n_records];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return sd_fail(SD_ERR_NOMEM, "%s: out of memory", st->path);
    t->dtype = SD_DTYPE_F32;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) t->numel *= (t->shape[i] = shape[i]);
    st->n_records++;
    return SD_OK;
}

void sd_st_close(sd_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_records; i++) free(st->records[i].name);
    free(st->records);
    free_contents(st);
    if (st->owns_map) munmap((void *)st->map, st->map_size);
    free(st);
}

void sd_st_release(const sd_safetensors *st, const void *p, size_t size) {
    if (!st->owns_map || size == 0) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + size) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice only: a failure changes nothing */
}

const sd_st_tensor *sd_st_find(const sd_safetensors *st, const char *name) {
    int lo = 0, hi = st->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

const void *sd_st_data(const sd_safetensors *st, const sd_st_tensor *t) { return st->data + t->begin; }

const char *sd_st_metadata(const sd_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

sd_status sd_st_read_f32(const sd_safetensors *st, const char *name, float *out, int ndim, const int64_t *shape) {
    const sd_st_tensor *t = sd_st_find(st, name);
    if (!t) return sd_fail(SD_ERR_NOT_FOUND, "%s: tensor '%s' not found", st->path, name);
    if (!sd_dtype_is_float(t->dtype))
        return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': expected a float dtype, found %s", st->path, name, sd_dtype_name(t->dtype));
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[256], got[256];
        sd_st_shape_str(want, sizeof want, ndim, shape);
        sd_st_shape_str(got, sizeof got, t->ndim, t->shape);
        return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': expected shape %s, found %s", st->path, name, want, got);
    }
    sd_convert_to_f32(out, sd_st_data(st, t), t->dtype, (size_t)t->numel);
    return SD_OK;
}
