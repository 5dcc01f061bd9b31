/* digest.h — file checksums the Hugging Face hub publishes: sha256 (the etag of LFS files) and the
 * git blob sha1 (the etag of small files: sha1 of "blob <size>\0" + content). OpenSSL's libcrypto
 * does the hashing (Debian's libssl-dev, already pulled in by libcurl and libwebsockets). */
#ifndef SD_BASE_DIGEST_H
#define SD_BASE_DIGEST_H

#include <stddef.h>

#include "base/status.h"

enum { SD_SHA256_HEX = 65, SD_SHA1_HEX = 41 };

/* Lowercase hex digests of a whole file into out (SD_SHA256_HEX / SD_SHA1_HEX bytes). */
sd_status sd_file_sha256_hex(const char *path, char out[SD_SHA256_HEX]);
sd_status sd_file_git_sha1_hex(const char *path, char out[SD_SHA1_HEX]);
/* sha256 of a buffer (tests, the test hub server). */
void sd_sha256_hex(const void *data, size_t len, char out[SD_SHA256_HEX]);

#endif
