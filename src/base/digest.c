/* digest.c — see digest.h. */
#include "base/digest.h"

#include <errno.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void to_hex(const unsigned char *md, unsigned n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Hashes an optional prefix and then the file's bytes. */
static sd_status hash_file(const char *path, const EVP_MD *type, const void *prefix, size_t prefix_len, char *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return sd_fail(SD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, type, NULL) || (prefix_len && !EVP_DigestUpdate(ctx, prefix, prefix_len))) {
        EVP_MD_CTX_free(ctx);
        fclose(f);
        return sd_fail(SD_ERR_NOMEM, "%s: cannot start a digest", path);
    }
    static _Thread_local unsigned char buf[1 << 16];
    size_t n;
    int ok = 1;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(ctx, buf, n);
    bool read_error = ferror(f) != 0;
    fclose(f);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (ok) ok = EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    if (read_error) return sd_fail(SD_ERR_IO, "%s: read error while hashing", path);
    if (!ok) return sd_fail(SD_ERR_IO, "%s: digest failed", path);
    to_hex(md, md_len, out);
    return SD_OK;
}

sd_status sd_file_sha256_hex(const char *path, char out[SD_SHA256_HEX]) {
    return hash_file(path, EVP_sha256(), NULL, 0, out);
}

sd_status sd_file_git_sha1_hex(const char *path, char out[SD_SHA1_HEX]) {
    struct stat st;
    if (stat(path, &st) != 0) return sd_fail(SD_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    char header[48];
    int n = snprintf(header, sizeof header, "blob %lld", (long long)st.st_size);
    return hash_file(path, EVP_sha1(), header, (size_t)n + 1, out); /* the header's NUL is hashed too */
}

void sd_sha256_hex(const void *data, size_t len, char out[SD_SHA256_HEX]) {
    unsigned char md[32];
    unsigned md_len = 0;
    EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL);
    to_hex(md, md_len, out);
}
