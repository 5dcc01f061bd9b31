/* config.c — see config.h. */
#include "base/config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sd_status sd_config_parse(sd_config *cfg, const char *text, size_t len, const char *name) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->path, sizeof cfg->path, "%s", name);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        return sd_fail(SD_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", name, at);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sd_fail(SD_ERR_FORMAT, "%s: expected a JSON object at the top level", name);
    }
    cfg->root = root;
    return SD_OK;
}

sd_status sd_config_load(sd_config *cfg, const char *path) {
    char *text = NULL;
    size_t len = 0;
    SD_TRY(sd_read_file(path, SD_CONFIG_MAX_BYTES, &text, &len));
    sd_status status = sd_config_parse(cfg, text, len, path);
    free(text);
    return status;
}

void sd_config_free(sd_config *cfg) {
    if (!cfg) return;
    cJSON_Delete(cfg->root);
    cfg->root = NULL;
}

static const cJSON *get(const sd_config *cfg, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(cfg->root, key);
    return (item && !cJSON_IsNull(item)) ? item : NULL;
}

bool sd_config_has(const sd_config *cfg, const char *key) { return get(cfg, key) != NULL; }

static sd_status number_to_int(const sd_config *cfg, const char *key, const cJSON *item, long lo, long hi, long *out) {
    if (!cJSON_IsNumber(item) || floor(item->valuedouble) != item->valuedouble)
        return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" must be an integer", cfg->path, key);
    double d = item->valuedouble;
    if (d < (double)lo || d > (double)hi)
        return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" is %.17g, expected %ld..%ld", cfg->path, key, d, lo, hi);
    *out = (long)d;
    return SD_OK;
}

sd_status sd_config_int(const sd_config *cfg, const char *key, long lo, long hi, long fallback, long *out) {
    const cJSON *item = get(cfg, key);
    if (!item) {
        *out = fallback;
        return SD_OK;
    }
    return number_to_int(cfg, key, item, lo, hi, out);
}

sd_status sd_config_int_req(const sd_config *cfg, const char *key, long lo, long hi, long *out) {
    const cJSON *item = get(cfg, key);
    if (!item) return sd_fail(SD_ERR_NOT_FOUND, "%s: required key \"%s\" is missing", cfg->path, key);
    return number_to_int(cfg, key, item, lo, hi, out);
}

sd_status sd_config_double(const sd_config *cfg, const char *key, double lo, double hi, double fallback, double *out) {
    const cJSON *item = get(cfg, key);
    if (!item) {
        *out = fallback;
        return SD_OK;
    }
    if (!cJSON_IsNumber(item)) return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" must be a number", cfg->path, key);
    if (!(item->valuedouble >= lo && item->valuedouble <= hi))
        return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" is %.17g, expected %g..%g", cfg->path, key, item->valuedouble, lo, hi);
    *out = item->valuedouble;
    return SD_OK;
}

sd_status sd_config_bool(const sd_config *cfg, const char *key, bool fallback, bool *out) {
    const cJSON *item = get(cfg, key);
    if (!item) {
        *out = fallback;
        return SD_OK;
    }
    if (!cJSON_IsBool(item)) return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" must be true or false", cfg->path, key);
    *out = cJSON_IsTrue(item);
    return SD_OK;
}

sd_status sd_config_string(const sd_config *cfg, const char *key, const char *fallback, const char **out) {
    const cJSON *item = get(cfg, key);
    if (!item) {
        *out = fallback;
        return SD_OK;
    }
    if (!cJSON_IsString(item)) return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" must be a string", cfg->path, key);
    *out = item->valuestring;
    return SD_OK;
}

sd_status sd_config_int_list(const sd_config *cfg, const char *key, long lo, long hi, long *out, int max_n, int *n) {
    const cJSON *item = get(cfg, key);
    *n = 0;
    if (!item) return SD_OK;
    if (cJSON_IsNumber(item)) {
        SD_TRY(number_to_int(cfg, key, item, lo, hi, &out[0]));
        *n = 1;
        return SD_OK;
    }
    if (!cJSON_IsArray(item)) return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" must be a number or an array of numbers", cfg->path, key);
    int count = cJSON_GetArraySize(item);
    if (count > max_n) return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" has %d entries, at most %d supported", cfg->path, key, count, max_n);
    int i = 0;
    const cJSON *elem;
    cJSON_ArrayForEach(elem, item) {
        SD_TRY(number_to_int(cfg, key, elem, lo, hi, &out[i]));
        i++;
    }
    *n = count;
    return SD_OK;
}

sd_status sd_config_string_list(const sd_config *cfg, const char *key, const char **out, int max_n, int *n) {
    const cJSON *item = get(cfg, key);
    *n = 0;
    if (!item) return SD_OK;
    if (!cJSON_IsArray(item)) return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" must be an array of strings", cfg->path, key);
    int count = cJSON_GetArraySize(item);
    if (count > max_n) return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" has %d entries, at most %d supported", cfg->path, key, count, max_n);
    int i = 0;
    const cJSON *elem;
    cJSON_ArrayForEach(elem, item) {
        if (!cJSON_IsString(elem)) return sd_fail(SD_ERR_FORMAT, "%s: \"%s\"[%d] must be a string", cfg->path, key, i);
        out[i++] = elem->valuestring;
    }
    *n = count;
    return SD_OK;
}
