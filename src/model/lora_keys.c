/* lora_keys.c — which module, component and part a LoRA file key names, in the formats in use:
 *   kohya / A1111:  lora_unet_<path, '.'->'_'>.lora_down.weight | .lora_up.weight | .alpha
 *                   lora_te_<path ...> (text encoder); lora_te1_/lora_te2_ are SDXL's two encoders
 *   diffusers:      unet.<path>.lora.down.weight | .lora.up.weight,
 *                   text_encoder.<path>.lora_linear_layer.down.weight | .up.weight,
 *                   the older attention-processor form <attn>.processor.to_q_lora.down.weight
 *   PEFT:           [unet.|text_encoder.][base_model.model.]<path>.lora_A.weight | .lora_B.weight
 *   and <path>.alpha beside the diffusers/PEFT forms (network alphas of converted files).
 * Without a component prefix, a path starting "text_model." is the text encoder's, else the UNet's. */
#include <stdio.h>
#include <string.h>

#include "model/lora.h"

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static bool ends_with(const char *s, size_t len, const char *suffix) {
    size_t m = strlen(suffix);
    return len >= m && memcmp(s + len - m, suffix, m) == 0;
}

static int set_module(sd_lora_key *out, const char *begin, size_t len) {
    if (len == 0 || len >= sizeof out->module) return -1;
    memcpy(out->module, begin, len);
    out->module[len] = '\0';
    return 0;
}

static int parse_kohya(const char *key, sd_lora_key *out) {
    static const struct {
        const char *suffix;
        sd_lora_part part;
    } suffixes[] = {{".lora_down.weight", SD_LORA_DOWN}, {".lora_up.weight", SD_LORA_UP}, {".alpha", SD_LORA_ALPHA}};
    const char *rest;
    if (starts_with(key, "lora_te1_") || starts_with(key, "lora_te2_")) return -2;
    if (starts_with(key, "lora_unet_")) out->target = SD_LORA_UNET, rest = key + strlen("lora_unet_");
    else if (starts_with(key, "lora_te_")) out->target = SD_LORA_TEXT_ENCODER, rest = key + strlen("lora_te_");
    else return -1;
    size_t len = strlen(rest);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        if (!ends_with(rest, len, suffixes[i].suffix)) continue;
        out->part = suffixes[i].part;
        out->flat = true;
        size_t module_len = len - strlen(suffixes[i].suffix);
        /* a flattened path has no dots: "x.lora_mid.weight" (LoCon) or "x.hada_w1_a" fit nothing */
        if (memchr(rest, '.', module_len)) return -1;
        return set_module(out, rest, module_len);
    }
    return -1;
}

/* "<attn>.processor.to_q_lora.down.weight" -> module "<attn>.to_q" (to_out_lora -> to_out.0) */
static int parse_processor(const char *path, size_t len, sd_lora_key *out) {
    static const struct {
        const char *tail, *module;
    } procs[] = {{".processor.to_q_lora", ".to_q"}, {".processor.to_k_lora", ".to_k"},
                 {".processor.to_v_lora", ".to_v"}, {".processor.to_out_lora", ".to_out.0"}};
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++) {
        if (!ends_with(path, len, procs[i].tail)) continue;
        size_t base = len - strlen(procs[i].tail), extra = strlen(procs[i].module);
        if (base + extra >= sizeof out->module) return -1;
        memcpy(out->module, path, base);
        memcpy(out->module + base, procs[i].module, extra + 1);
        return 0;
    }
    return -1;
}

static int parse_dotted(const char *key, sd_lora_key *out) {
    static const struct {
        const char *suffix;
        sd_lora_part part;
    } suffixes[] = {{".lora.down.weight", SD_LORA_DOWN},
                    {".lora.up.weight", SD_LORA_UP},
                    {".lora_linear_layer.down.weight", SD_LORA_DOWN},
                    {".lora_linear_layer.up.weight", SD_LORA_UP},
                    {".lora_A.weight", SD_LORA_DOWN},
                    {".lora_B.weight", SD_LORA_UP},
                    {".alpha", SD_LORA_ALPHA},
                    {"_lora.down.weight", SD_LORA_DOWN}, /* attention processors, checked below */
                    {"_lora.up.weight", SD_LORA_UP}};
    if (starts_with(key, "text_encoder_2.")) return -2;
    const char *path = key;
    int target = -1;
    if (starts_with(path, "unet.")) target = SD_LORA_UNET, path += strlen("unet.");
    else if (starts_with(path, "text_encoder.")) target = SD_LORA_TEXT_ENCODER, path += strlen("text_encoder.");
    if (starts_with(path, "base_model.model.")) path += strlen("base_model.model.");
    if (target < 0) target = starts_with(path, "text_model.") ? SD_LORA_TEXT_ENCODER : SD_LORA_UNET;
    out->target = (sd_lora_target)target;
    out->flat = false;
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        if (!ends_with(path, len, suffixes[i].suffix)) continue;
        out->part = suffixes[i].part;
        size_t module_len = len - strlen(suffixes[i].suffix);
        if (suffixes[i].suffix[0] == '_') /* keep the "_lora" for the processor match */
            return parse_processor(path, module_len + strlen("_lora"), out);
        return set_module(out, path, module_len);
    }
    return -1;
}

int sd_lora_parse_key(const char *key, sd_lora_key *out) {
    memset(out, 0, sizeof *out);
    if (starts_with(key, "lora_")) return parse_kohya(key, out);
    return parse_dotted(key, out);
}

int sd_lora_flatten(char *out, size_t size, const char *name) {
    size_t n = strlen(name);
    if (n >= size) return -1;
    for (size_t i = 0; i <= n; i++) out[i] = name[i] == '.' ? '_' : name[i];
    return 0;
}
