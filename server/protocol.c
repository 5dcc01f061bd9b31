/* protocol.c — parsing and writing the serve protocol's JSON messages (cJSON) and frame headers. */
#include "protocol.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

serve_config serve_config_default(int width, int height) {
    serve_config c;
    memset(&c, 0, sizeof c);
    /* the library's own defaults (RCFG self, guidance 1.2, delta 1, seed 2, filter off) ... */
    sd_stream_params d = sd_stream_params_default();
    c.guidance = d.guidance_scale;
    c.delta = d.delta;
    c.cfg_type = d.cfg_type;
    c.seed = d.seed;
    c.similar_threshold = d.similar_filter_threshold;
    c.similar_max_skip = d.similar_filter_max_skip;
    /* ... but one step, as StreamDiffusion's own demo: t_index 35 of 50 (strength 0.3) */
    c.mode = SERVE_MODE_IMG2IMG;
    serve_config_set_strength(&c, 0.3f);
    c.width = width;
    c.height = height;
    c.jpeg_quality = 85;
    return c;
}

static const char *const cfg_names[] = {"none", "full", "self", "initialize"};

/* Reads a number field within [lo, hi]; integral ones must be whole. */
static int get_number(const cJSON *item, const char *name, double lo, double hi, int integral, double *out, char *err,
                      size_t err_len) {
    if (!cJSON_IsNumber(item)) {
        snprintf(err, err_len, "\"%s\" must be a number", name);
        return -1;
    }
    double v = item->valuedouble;
    if (!isfinite(v) || v < lo || v > hi || (integral && v != floor(v))) {
        snprintf(err, err_len, "\"%s\" is %g; it must be %s within %g..%g", name, v, integral ? "an integer" : "a number",
                 lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int get_string(const cJSON *item, const char *name, char *dst, size_t cap, char *err, size_t err_len) {
    if (!cJSON_IsString(item)) {
        snprintf(err, err_len, "\"%s\" must be a string", name);
        return -1;
    }
    size_t n = strlen(item->valuestring);
    if (n >= cap) {
        snprintf(err, err_len, "\"%s\" is %zu bytes; at most %zu are allowed", name, n, cap - 1);
        return -1;
    }
    memcpy(dst, item->valuestring, n + 1);
    return 0;
}

static int parse_t_index_list(const cJSON *item, serve_config *c, char *err, size_t err_len) {
    if (!cJSON_IsArray(item)) {
        snprintf(err, err_len, "\"t_index_list\" must be an array of step indices");
        return -1;
    }
    int n = cJSON_GetArraySize(item);
    if (n < 1 || n > SD_MAX_T_INDEX) {
        snprintf(err, err_len, "\"t_index_list\" has %d entries; 1..%d are allowed", n, SD_MAX_T_INDEX);
        return -1;
    }
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, item) {
        double v;
        if (get_number(e, "t_index_list[]", 0, 49, 1, &v, err, err_len) != 0) return -1;
        if (i > 0 && (int)v <= c->t_index_list[i - 1]) {
            snprintf(err, err_len, "\"t_index_list\" must be strictly increasing (%d after %d)", (int)v,
                     c->t_index_list[i - 1]);
            return -1;
        }
        c->t_index_list[i++] = (int)v;
    }
    c->n_t_index = n;
    return 0;
}

/* Applies the fields of a config message to c. */
static int parse_config_fields(const cJSON *root, serve_config *c, int max_size, char *err, size_t err_len) {
    const cJSON *f;
    int saw_strength = 0, saw_list = 0;
    cJSON_ArrayForEach(f, root) {
        const char *k = f->string;
        double v;
        if (strcmp(k, "type") == 0) continue;
        if (strcmp(k, "mode") == 0) {
            if (cJSON_IsString(f) && strcmp(f->valuestring, "img2img") == 0) c->mode = SERVE_MODE_IMG2IMG;
            else if (cJSON_IsString(f) && strcmp(f->valuestring, "txt2img") == 0) c->mode = SERVE_MODE_TXT2IMG;
            else {
                snprintf(err, err_len, "\"mode\" must be \"img2img\" or \"txt2img\"");
                return -1;
            }
        } else if (strcmp(k, "prompt") == 0) {
            if (get_string(f, k, c->prompt, sizeof c->prompt, err, err_len) != 0) return -1;
        } else if (strcmp(k, "negative_prompt") == 0) {
            if (get_string(f, k, c->negative_prompt, sizeof c->negative_prompt, err, err_len) != 0) return -1;
        } else if (strcmp(k, "t_index_list") == 0) {
            if (parse_t_index_list(f, c, err, err_len) != 0) return -1;
            saw_list = 1;
        } else if (strcmp(k, "strength") == 0) {
            if (get_number(f, k, 0.02, 1.0, 0, &v, err, err_len) != 0) return -1;
            c->strength = (float)v;
            saw_strength = 1;
        } else if (strcmp(k, "guidance") == 0) {
            if (get_number(f, k, 0.0, 20.0, 0, &v, err, err_len) != 0) return -1;
            c->guidance = (float)v;
        } else if (strcmp(k, "delta") == 0) {
            if (get_number(f, k, 0.0, 5.0, 0, &v, err, err_len) != 0) return -1;
            c->delta = (float)v;
        } else if (strcmp(k, "cfg_type") == 0) {
            int found = -1;
            for (int i = 0; i < 4 && cJSON_IsString(f); i++)
                if (strcmp(f->valuestring, cfg_names[i]) == 0) found = i;
            if (found < 0) {
                snprintf(err, err_len, "\"cfg_type\" must be one of none, full, self, initialize");
                return -1;
            }
            c->cfg_type = (sd_cfg_type)found;
        } else if (strcmp(k, "seed") == 0) {
            /* JSON numbers are doubles: integers are exact up to 2^53 */
            if (get_number(f, k, 0, 9007199254740991.0, 1, &v, err, err_len) != 0) return -1;
            c->seed = (uint64_t)v;
        } else if (strcmp(k, "similar_threshold") == 0) {
            if (get_number(f, k, 0.0, 0.9999, 0, &v, err, err_len) != 0) return -1;
            c->similar_threshold = (float)v;
        } else if (strcmp(k, "similar_max_skip") == 0) {
            if (get_number(f, k, 0, 1000, 1, &v, err, err_len) != 0) return -1;
            c->similar_max_skip = (int)v;
        } else if (strcmp(k, "width") == 0 || strcmp(k, "height") == 0) {
            if (get_number(f, k, SERVE_MIN_SIZE, max_size, 1, &v, err, err_len) != 0) return -1;
            if ((int)v % 8 != 0) {
                snprintf(err, err_len, "\"%s\" is %d; it must be a multiple of 8", k, (int)v);
                return -1;
            }
            if (k[0] == 'w') c->width = (int)v;
            else c->height = (int)v;
        } else if (strcmp(k, "jpeg_quality") == 0) {
            if (get_number(f, k, 1, 100, 1, &v, err, err_len) != 0) return -1;
            c->jpeg_quality = (int)v;
        } else {
            snprintf(err, err_len, "unknown field \"%.64s\" in a config message", k);
            return -1;
        }
    }
    if (saw_strength && saw_list) {
        snprintf(err, err_len, "give \"strength\" or \"t_index_list\", not both");
        return -1;
    }
    if (saw_strength) serve_config_set_strength(c, c->strength);
    return 0;
}

void serve_config_set_strength(serve_config *c, float strength) {
    /* one step, as the CLI's --strength: t_index = round((1 - s) * 50) */
    c->strength = strength;
    c->n_t_index = 1;
    c->t_index_list[0] = (int)lround((1.0 - strength) * 50.0);
    if (c->t_index_list[0] > 49) c->t_index_list[0] = 49;
}

int serve_parse_message(const char *text, size_t len, const serve_config *current, int max_size, serve_message *out,
                        char *err, size_t err_len) {
    cJSON *root = cJSON_ParseWithLength(text, len);
    int rc = -1;
    if (!root) {
        snprintf(err, err_len, "message is not valid JSON (near byte %td)",
                 cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - text : (ptrdiff_t)0);
        return -1;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsObject(root) || !cJSON_IsString(type)) {
        snprintf(err, err_len, "a message must be a JSON object with a string \"type\"");
    } else if (strcmp(type->valuestring, "config") == 0) {
        out->kind = SERVE_MSG_CONFIG;
        out->config = *current;
        rc = parse_config_fields(root, &out->config, max_size, err, err_len);
    } else if (strcmp(type->valuestring, "txt2img") == 0) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
        double v = 0;
        out->kind = SERVE_MSG_TXT2IMG;
        if (id && get_number(id, "id", 0, 4294967295.0, 1, &v, err, err_len) != 0) goto done;
        out->id = (uint32_t)v;
        rc = 0;
    } else {
        snprintf(err, err_len, "unknown message type \"%.64s\" (expected config or txt2img)", type->valuestring);
    }
done:
    cJSON_Delete(root);
    return rc;
}

int serve_config_needs_new_stream(const serve_config *a, const serve_config *b) {
    return a->width != b->width || a->height != b->height || a->cfg_type != b->cfg_type ||
           a->n_t_index != b->n_t_index || a->similar_threshold != b->similar_threshold ||
           a->similar_max_skip != b->similar_max_skip;
}

void serve_config_to_params(const serve_config *c, sd_stream_params *p) {
    *p = sd_stream_params_default();
    p->width = c->width;
    p->height = c->height;
    memcpy(p->t_index_list, c->t_index_list, sizeof p->t_index_list);
    p->n_t_index = c->n_t_index;
    p->cfg_type = c->cfg_type;
    p->guidance_scale = c->guidance;
    p->delta = c->delta;
    p->seed = c->seed;
    p->similar_filter_threshold = c->similar_threshold;
    p->similar_filter_max_skip = c->similar_max_skip;
}

int serve_format_config(const serve_config *c, char *out, size_t cap) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return -1;
    cJSON_AddStringToObject(o, "type", "config");
    cJSON_AddStringToObject(o, "mode", c->mode == SERVE_MODE_TXT2IMG ? "txt2img" : "img2img");
    cJSON_AddStringToObject(o, "prompt", c->prompt);
    cJSON_AddStringToObject(o, "negative_prompt", c->negative_prompt);
    cJSON_AddItemToObject(o, "t_index_list", cJSON_CreateIntArray(c->t_index_list, c->n_t_index));
    cJSON_AddNumberToObject(o, "guidance", c->guidance);
    cJSON_AddNumberToObject(o, "delta", c->delta);
    cJSON_AddStringToObject(o, "cfg_type", cfg_names[c->cfg_type]);
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON_AddNumberToObject(o, "similar_threshold", c->similar_threshold);
    cJSON_AddNumberToObject(o, "similar_max_skip", c->similar_max_skip);
    cJSON_AddNumberToObject(o, "width", c->width);
    cJSON_AddNumberToObject(o, "height", c->height);
    cJSON_AddNumberToObject(o, "jpeg_quality", c->jpeg_quality);
    int ok = cJSON_PrintPreallocated(o, out, (int)cap, 0);
    cJSON_Delete(o);
    return ok ? (int)strlen(out) : -1;
}

static void put_u32(uint8_t *d, uint32_t v) {
    d[0] = (uint8_t)v;
    d[1] = (uint8_t)(v >> 8);
    d[2] = (uint8_t)(v >> 16);
    d[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *s) {
    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}

void serve_put_frame_header(uint8_t *dst, uint32_t id, uint32_t flags) {
    put_u32(dst, id);
    put_u32(dst + 4, flags);
}

void serve_get_frame_header(const uint8_t *src, uint32_t *id, uint32_t *flags) {
    *id = get_u32(src);
    *flags = get_u32(src + 4);
}

void serve_json_escape(char *dst, size_t cap, const char *text) {
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && j + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            dst[j++] = '\\';
            dst[j++] = (char)*p;
        } else if (*p < 0x20) {
            j += (size_t)snprintf(dst + j, cap - j, "\\u%04x", *p);
        } else {
            dst[j++] = (char)*p;
        }
    }
    dst[j] = '\0';
}

void serve_format_error(char *out, size_t cap, const char *code, const char *message) {
    char esc[2048];
    serve_json_escape(esc, sizeof esc, message);
    snprintf(out, cap, "{\"type\":\"error\",\"code\":\"%s\",\"message\":\"%s\"}", code, esc);
}
