/* fs.h — small file-system helpers: bounded whole-file reads, path joining, existence checks. */
#ifndef SD_BASE_FS_H
#define SD_BASE_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/status.h"

enum { SD_PATH_MAX = 4096 };

/* Reads a whole file into a malloc'd, NUL-terminated buffer. Files larger than max_bytes are
 * refused with SD_ERR_LIMIT before anything is allocated. *out_len may be NULL. */
sd_status sd_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* Joins a and b with one '/'; SD_ERR_LIMIT if the result does not fit in out_size bytes. */
sd_status sd_path_join(char *out, size_t out_size, const char *a, const char *b);

/* Atomic file creation: a file is written under a temporary name beside path (tmp, of
 * SD_PATH_MAX bytes, receives it) and sd_file_commit renames it into place when everything
 * went well, or removes it: a failed or interrupted write never leaves a 0-byte or half-written
 * file under the real name. */
sd_status sd_file_begin(const char *path, char tmp[SD_PATH_MAX], FILE **out);
/* Closes f; ok and a clean close rename tmp to path, anything else unlinks tmp. SD_OK or
 * SD_ERR_IO naming path with the system's reason. */
sd_status sd_file_commit(FILE *f, const char *tmp, const char *path, bool ok);

bool sd_is_dir(const char *path);
bool sd_is_file(const char *path);

#endif
