/* safetensors_write.c — writes safetensors files (eval outputs, test fixtures, generated models).
 * Layout as the Rust crate writes it: compact JSON with __metadata__ first, header padded with
 * spaces to a multiple of 8, data in header order. */
#include "base/fs.h"
#include "base/safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} text_buffer;

static void tb_put(text_buffer *tb, const char *s, size_t n) {
    if (tb->failed) return;
    if (tb->len + n + 1 > tb->cap) {
        size_t cap = tb->cap ? tb->cap : 4096;
        while (cap < tb->len + n + 1) cap *= 2;
        char *p = realloc(tb->buf, cap);
        if (!p) {
            tb->failed = 1;
            return;
        }
        tb->buf = p;
        tb->cap = cap;
    }
    memcpy(tb->buf + tb->len, s, n);
    tb->len += n;
    tb->buf[tb->len] = '\0';
}

static void tb_puts(text_buffer *tb, const char *s) { tb_put(tb, s, strlen(s)); }

static void tb_json_string(text_buffer *tb, const char *s) {
    tb_puts(tb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            tb_put(tb, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            tb_puts(tb, esc);
        } else {
            tb_put(tb, (const char *)p, 1);
        }
    }
    tb_puts(tb, "\"");
}

static int compare_entry_names(const void *a, const void *b) {
    return strcmp((*(const sd_st_entry *const *)a)->name, (*(const sd_st_entry *const *)b)->name);
}

static uint64_t entry_bytes(const sd_st_entry *e) {
    uint64_t n = sd_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++) n *= (uint64_t)e->shape[d];
    return n;
}

sd_status sd_st_write(const char *path, const sd_st_entry *entries, int n_entries, const char *const *meta_keys,
                      const char *const *meta_values, int n_meta) {
    const sd_st_entry **order = malloc(((size_t)n_entries + 1) * sizeof *order);
    if (!order) return sd_fail(SD_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n_entries; i++) order[i] = &entries[i];
    qsort(order, (size_t)n_entries, sizeof *order, compare_entry_names);

    text_buffer tb = {0};
    tb_puts(&tb, "{");
    if (n_meta > 0) {
        tb_puts(&tb, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) tb_puts(&tb, ",");
            tb_json_string(&tb, meta_keys[i]);
            tb_puts(&tb, ":");
            tb_json_string(&tb, meta_values[i]);
        }
        tb_puts(&tb, "}");
    }
    uint64_t offset = 0;
    for (int i = 0; i < n_entries; i++) {
        const sd_st_entry *e = order[i];
        char num[64];
        if (i || n_meta > 0) tb_puts(&tb, ",");
        tb_json_string(&tb, e->name);
        tb_puts(&tb, ":{\"dtype\":\"");
        tb_puts(&tb, sd_dtype_name(e->dtype));
        tb_puts(&tb, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)e->shape[d]);
            tb_puts(&tb, num);
        }
        uint64_t bytes = entry_bytes(e);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                 (unsigned long long)(offset + bytes));
        tb_puts(&tb, num);
        offset += bytes;
    }
    tb_puts(&tb, "}");
    while (!tb.failed && tb.len % 8 != 0) tb_puts(&tb, " ");
    if (tb.failed) {
        free(tb.buf);
        free(order);
        return sd_fail(SD_ERR_NOMEM, "%s: out of memory building the header", path);
    }

    /* under a temporary name, renamed when complete: no truncated file is ever left as path */
    char tmp[SD_PATH_MAX];
    FILE *f = NULL;
    sd_status status = sd_file_begin(path, tmp, &f);
    if (status == SD_OK) {
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)tb.len >> (8 * i));
        int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(tb.buf, 1, tb.len, f) == tb.len;
        for (int i = 0; ok && i < n_entries; i++) {
            size_t bytes = (size_t)entry_bytes(order[i]);
            ok = bytes == 0 || fwrite(order[i]->data, 1, bytes, f) == bytes;
        }
        status = sd_file_commit(f, tmp, path, ok);
    }
    free(tb.buf);
    free(order);
    return status;
}
