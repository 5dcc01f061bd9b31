/* fs.c — see fs.h. */
#include "base/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

sd_status sd_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len) {
    FILE *f = fopen(path, "rb");
    if (!f) return sd_fail(SD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sd_fail(SD_ERR_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        fclose(f);
        return sd_fail(SD_ERR_LIMIT, "%s: file is %lld bytes, limit is %zu", path,
                       (long long)st.st_size, max_bytes);
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        return sd_fail(SD_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, size + 1);
    }
    size_t got = fread(buf, 1, size, f);
    fclose(f);
    if (got != size) {
        free(buf);
        return sd_fail(SD_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, size);
    }
    buf[size] = '\0';
    *out = buf;
    if (out_len) *out_len = size;
    return SD_OK;
}

sd_status sd_path_join(char *out, size_t out_size, const char *a, const char *b) {
    size_t la = strlen(a);
    const char *sep = (la > 0 && a[la - 1] == '/') ? "" : "/";
    int n = snprintf(out, out_size, "%s%s%s", a, sep, b);
    if (n < 0 || (size_t)n >= out_size)
        return sd_fail(SD_ERR_LIMIT, "path too long: %s/%s", a, b);
    return SD_OK;
}

bool sd_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool sd_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

sd_status sd_file_begin(const char *path, char tmp[SD_PATH_MAX], FILE **out) {
    if (snprintf(tmp, SD_PATH_MAX, "%s.XXXXXX", path) >= SD_PATH_MAX) return sd_fail(SD_ERR_LIMIT, "%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return sd_fail(SD_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fchmod(fd, 0644); /* mkstemp makes 0600; the file is as readable as one made by fopen */
    *out = fdopen(fd, "wb");
    if (!*out) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return sd_fail(SD_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    return SD_OK;
}

sd_status sd_file_commit(FILE *f, const char *tmp, const char *path, bool ok) {
    int e = errno;
    if (fclose(f) != 0 && ok) ok = false, e = errno;
    if (ok && rename(tmp, path) != 0) ok = false, e = errno;
    if (ok) return SD_OK;
    unlink(tmp);
    return sd_fail(SD_ERR_IO, "%s: write failed: %s", path, strerror(e));
}
