/* config.h — typed, range-checked reads of JSON config files (config.json, model_index.json).
 *
 * Every getter names the file and the key in its error: a wrong type or a value outside [lo, hi]
 * is SD_ERR_FORMAT; a missing key takes the fallback (the *_req variants fail with
 * SD_ERR_NOT_FOUND instead). JSON files above SD_CONFIG_MAX_BYTES are refused.
 */
#ifndef SD_BASE_CONFIG_H
#define SD_BASE_CONFIG_H

#include <stdbool.h>

#include "base/fs.h"
#include "base/status.h"

typedef struct cJSON cJSON;

enum { SD_CONFIG_MAX_BYTES = 16 * 1024 * 1024 };

typedef struct sd_config {
    cJSON *root;
    char path[SD_PATH_MAX];
} sd_config;

sd_status sd_config_load(sd_config *cfg, const char *path);
/* Parses text (for configs built in memory and fuzzing); name is used in messages. */
sd_status sd_config_parse(sd_config *cfg, const char *text, size_t len, const char *name);
void sd_config_free(sd_config *cfg);
bool sd_config_has(const sd_config *cfg, const char *key);

sd_status sd_config_int(const sd_config *cfg, const char *key, long lo, long hi, long fallback, long *out);
sd_status sd_config_int_req(const sd_config *cfg, const char *key, long lo, long hi, long *out);
sd_status sd_config_double(const sd_config *cfg, const char *key, double lo, double hi, double fallback, double *out);
sd_status sd_config_bool(const sd_config *cfg, const char *key, bool fallback, bool *out);
/* *out points into the config (valid until sd_config_free); NULL fallback allowed. A JSON null
 * counts as absent. */
sd_status sd_config_string(const sd_config *cfg, const char *key, const char *fallback, const char **out);
/* A number or an array of numbers; *n receives the count (1 for a plain number). More than max_n
 * entries is SD_ERR_FORMAT. Absent: *n = 0. */
sd_status sd_config_int_list(const sd_config *cfg, const char *key, long lo, long hi, long *out, int max_n, int *n);
/* An array of strings; pointers into the config. Absent: *n = 0. */
sd_status sd_config_string_list(const sd_config *cfg, const char *key, const char **out, int max_n, int *n);

#endif
