/* make_model.c — see make_model.h. Weights are uniform with the variance of PyTorch's default
 * initialisation (1 / fan_in), norms start at scale 1 and shift 0, so activations stay in range
 * through the whole network (no NaN, no denormal slow paths) like a trained model's. */
#include "model/make_model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/config.h"
#include "base/fs.h"
#include "base/safetensors.h"
#include "model/clip_text.h"
#include "model/lora.h"
#include "model/taesd.h"
#include "model/tokenizer.h"
#include "model/unet.h"
#include "model/vae.h"

static const char *arch_text(const char *arch, const char *path) {
    if (strncmp(path, "taesd/", 6) == 0) arch = "taesd"; /* shared by every architecture */
    for (const sd_arch_file *f = sd_arch_files; f->arch; f++)
        if (strcmp(f->arch, arch) == 0 && strcmp(f->path, path) == 0) return f->text;
    return NULL;
}

static sd_status make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return sd_fail(SD_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    return SD_OK;
}

static sd_status write_text(const char *dir, const char *rel, const char *text, size_t len) {
    char path[SD_PATH_MAX];
    SD_TRY(sd_path_join(path, sizeof path, dir, rel));
    FILE *f = fopen(path, "wb");
    if (!f) return sd_fail(SD_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    bool ok = fwrite(text, 1, len, f) == len;
    if (fclose(f) != 0) ok = false;
    return ok ? SD_OK : sd_fail(SD_ERR_IO, "%s: write failed", path);
}

/* splitmix64: a fast, well-mixed generator; the values only need to look like weights */
static uint64_t next_u64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Fills one tensor's data (dtype-sized elements) following its role. */
static void fill(void *data, sd_dtype dtype, const sd_st_tensor *t, uint64_t *rng) {
    bool vector = t->ndim == 1;
    bool norm_scale = vector && ends_with(t->name, ".weight");
    bool embedding = strstr(t->name, "embedding") != NULL;
    int64_t fan_in = 1;
    for (int i = 1; i < t->ndim; i++) fan_in *= t->shape[i];
    float bound = embedding ? 0.035f : sqrtf(3.0f / (float)fan_in);
    if (ends_with(t->name, ".lora_up.weight")) bound *= 0.05f; /* a LoRA nudges its weight, as a trained one does */
    bool alpha = t->ndim == 0 && ends_with(t->name, ".alpha");
    for (int64_t i = 0; i < t->numel; i++) {
        float v = alpha        ? (float)SD_LCM_LORA_RANK
                  : norm_scale ? 1.0f
                  : vector     ? 0.0f
                               : bound * ((float)(next_u64(rng) >> 40) / 8388608.0f - 1.0f);
        switch (dtype) {
        case SD_DTYPE_F16: ((uint16_t *)data)[i] = sd_f32_to_f16(v); break;
        case SD_DTYPE_BF16: ((uint16_t *)data)[i] = sd_f32_to_bf16(v); break;
        default: ((float *)data)[i] = v; break;
        }
    }
}

/* Writes the recorded tensors of one component with random values. */
static sd_status write_weights(const sd_safetensors *rec, const char *path, sd_dtype dtype, uint64_t *rng) {
    int n = rec->n_records;
    sd_st_entry *entries = calloc((size_t)n + 1, sizeof *entries);
    void **buffers = calloc((size_t)n + 1, sizeof *buffers);
    sd_status st = (entries && buffers) ? SD_OK : sd_fail(SD_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; st == SD_OK && i < n; i++) {
        const sd_st_tensor *t = &rec->records[i];
        buffers[i] = malloc((size_t)t->numel * sd_dtype_size(dtype) + 1);
        if (!buffers[i]) {
            st = sd_fail(SD_ERR_NOMEM, "%s: out of memory for '%s'", path, t->name);
            break;
        }
        fill(buffers[i], dtype, t, rng);
        entries[i] = (sd_st_entry){t->name, dtype, t->ndim, {0}, buffers[i]};
        memcpy(entries[i].shape, t->shape, sizeof t->shape);
    }
    const char *keys[] = {"format", "sdstream"}, *vals[] = {"pt", "make-model: random weights"};
    if (st == SD_OK) st = sd_st_write(path, entries, n, keys, vals, 2);
    for (int i = 0; buffers && i < n; i++) free(buffers[i]);
    free(buffers);
    free(entries);
    return st;
}

/* Parses the embedded config `rel` of arch (also written into dir). */
static sd_status arch_config(sd_config *cfg, const char *arch, const char *dir, const char *rel) {
    const char *text = arch_text(arch, rel);
    if (!text) return sd_fail(SD_ERR_UNSUPPORTED, "make-model: no %s for architecture '%s'", rel, arch);
    SD_TRY(write_text(dir, rel, text, strlen(text)));
    return sd_config_parse(cfg, text, strlen(text), rel);
}

typedef sd_status (*record_fn)(const sd_config *cfg, sd_safetensors *rec);

static sd_status record_text(const sd_config *json, sd_safetensors *rec) {
    sd_clip_text_config cfg;
    SD_TRY(sd_clip_text_config_read(&cfg, json));
    sd_clip_text model;
    sd_status st = sd_clip_text_load(&model, &cfg, rec, "", SD_CLIP_LAYOUT_TRANSFORMERS);
    sd_clip_text_free(&model);
    return st;
}

/* SDXL's text_encoder_2: CLIPTextModelWithProjection (text_projection.weight) */
static sd_status record_text_2(const sd_config *json, sd_safetensors *rec) {
    sd_clip_text_config cfg;
    SD_TRY(sd_clip_text_config_read_projection(&cfg, json, true));
    sd_clip_text model;
    sd_status st = sd_clip_text_load(&model, &cfg, rec, "", SD_CLIP_LAYOUT_TRANSFORMERS);
    sd_clip_text_free(&model);
    return st;
}

static sd_status record_unet(const sd_config *json, sd_safetensors *rec) {
    sd_unet_config cfg;
    SD_TRY(sd_unet_config_read(&cfg, json));
    static sd_unet model; /* large: keep it off the stack */
    sd_status st = sd_unet_load(&model, &cfg, rec, "", false);
    sd_unet_free(&model);
    return st;
}

static sd_status record_vae(const sd_config *json, sd_safetensors *rec) {
    sd_vae_config cfg;
    SD_TRY(sd_vae_config_read(&cfg, json));
    static sd_vae model;
    sd_status st = sd_vae_load(&model, &cfg, rec, "", false);
    sd_vae_free(&model);
    return st;
}

static sd_status record_taesd(const sd_config *json, sd_safetensors *rec) {
    sd_taesd_config cfg;
    SD_TRY(sd_taesd_config_read(&cfg, json));
    static sd_taesd model;
    sd_status st = sd_taesd_load(&model, &cfg, rec);
    sd_taesd_free(&model);
    return st;
}

sd_status sd_make_model_record(const char *component, const sd_config *json, sd_safetensors *rec) {
    static const struct {
        const char *name;
        record_fn record;
    } recorders[] = {{"text_encoder", record_text}, {"text_encoder_2", record_text_2}, {"unet", record_unet},
                     {"vae", record_vae}, {"taesd", record_taesd}};
    for (size_t i = 0; i < sizeof recorders / sizeof recorders[0]; i++)
        if (strcmp(component, recorders[i].name) == 0) return recorders[i].record(json, rec);
    return sd_fail(SD_ERR_ARG, "make-model: unknown component '%s'", component);
}

static sd_status make_component(const char *arch, const char *dir, const char *config_rel, const char *weights_rel,
                                record_fn record, sd_dtype dtype, uint64_t *rng) {
    sd_config cfg;
    SD_TRY(arch_config(&cfg, arch, dir, config_rel));
    sd_safetensors *rec = NULL;
    sd_status st = sd_st_open_recorder(&rec, config_rel);
    if (st == SD_OK) st = record(&cfg, rec);
    char path[SD_PATH_MAX];
    if (st == SD_OK) st = sd_path_join(path, sizeof path, dir, weights_rel);
    if (st == SD_OK) st = write_weights(rec, path, dtype, rng);
    sd_st_close(rec);
    sd_config_free(&cfg);
    return st;
}

static sd_status copy_file(const char *from_dir, const char *to_dir, const char *sub, const char *name) {
    char from[SD_PATH_MAX], *text = NULL;
    size_t len = 0;
    SD_TRY(sd_path_join(from, sizeof from, from_dir, name));
    SD_TRY(sd_read_file(from, 64u << 20, &text, &len));
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s", sub, name);
    sd_status st = write_text(to_dir, rel, text, len);
    free(text);
    return st;
}

/* A byte-level CLIP vocabulary without merges: 256 symbols, 256 word-final symbols, the two
 * special tokens. Prompts tokenize to bytes; the model sees 77 ids either way. */
static sd_status write_byte_tokenizer(const char *dir, const char *sub) {
    cJSON *vocab = cJSON_CreateObject();
    if (!vocab) return sd_fail(SD_ERR_NOMEM, "make-model: out of memory");
    int id = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            char sym[16] = {0};
            size_t n = sd_tokenizer_byte_symbol(b, sym);
            if (pass) memcpy(sym + n, "</w>", 5);
            cJSON_AddNumberToObject(vocab, sym, id++);
        }
    cJSON_AddNumberToObject(vocab, "<|startoftext|>", id++);
    cJSON_AddNumberToObject(vocab, "<|endoftext|>", id++);
    char *text = cJSON_PrintUnformatted(vocab);
    cJSON_Delete(vocab);
    if (!text) return sd_fail(SD_ERR_NOMEM, "make-model: out of memory");
    char rel[64];
    snprintf(rel, sizeof rel, "%s/vocab.json", sub);
    sd_status st = write_text(dir, rel, text, strlen(text));
    cJSON_free(text);
    static const char merges[] = "#version: 0.2\n";
    snprintf(rel, sizeof rel, "%s/merges.txt", sub);
    if (st == SD_OK) st = write_text(dir, rel, merges, sizeof merges - 1);
    return st;
}

sd_status sd_make_model(const char *arch, const char *dir, const char *tokenizer_dir, uint64_t seed, sd_dtype dtype) {
    if (!arch_text(arch, "model_index.json"))
        return sd_fail(SD_ERR_UNSUPPORTED, "make-model: unknown architecture '%s' (expected sd-turbo, sd15 or sdxl-turbo)", arch);
    if (dtype != SD_DTYPE_F16 && dtype != SD_DTYPE_BF16 && dtype != SD_DTYPE_F32)
        return sd_fail(SD_ERR_ARG, "make-model: weights dtype must be F16, BF16 or F32");
    /* SDXL: a second text encoder and tokenizer (its pad "!" is a byte symbol of the byte vocabulary) */
    const bool sdxl = arch_text(arch, "text_encoder_2/config.json") != NULL;
    static const char *subdirs[] = {"", "scheduler", "text_encoder", "tokenizer", "unet", "vae", "taesd", "text_encoder_2",
                                    "tokenizer_2"};
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0] - (sdxl ? 0 : 2); i++) {
        char path[SD_PATH_MAX];
        SD_TRY(sd_path_join(path, sizeof path, dir, subdirs[i]));
        SD_TRY(make_dir(path));
    }
    static const char *plain[] = {"model_index.json", "scheduler/scheduler_config.json", "tokenizer/special_tokens_map.json",
                                  "tokenizer/tokenizer_config.json", "tokenizer_2/special_tokens_map.json",
                                  "tokenizer_2/tokenizer_config.json"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        const char *text = arch_text(arch, plain[i]);
        if (text) SD_TRY(write_text(dir, plain[i], text, strlen(text)));
    }
    for (int t = 0; t < (sdxl ? 2 : 1); t++) {
        const char *sub = t ? "tokenizer_2" : "tokenizer";
        if (tokenizer_dir) {
            SD_TRY(copy_file(tokenizer_dir, dir, sub, "vocab.json"));
            SD_TRY(copy_file(tokenizer_dir, dir, sub, "merges.txt"));
        } else {
            SD_TRY(write_byte_tokenizer(dir, sub));
        }
    }
    uint64_t rng = seed;
    SD_TRY(make_component(arch, dir, "text_encoder/config.json", "text_encoder/model.safetensors", record_text, dtype, &rng));
    if (sdxl)
        SD_TRY(make_component(arch, dir, "text_encoder_2/config.json", "text_encoder_2/model.safetensors", record_text_2,
                              dtype, &rng));
    SD_TRY(make_component(arch, dir, "unet/config.json", "unet/diffusion_pytorch_model.safetensors", record_unet, dtype, &rng));
    SD_TRY(make_component(arch, dir, "vae/config.json", "vae/diffusion_pytorch_model.safetensors", record_vae, dtype, &rng));
    SD_TRY(make_component(arch, dir, "taesd/config.json", "taesd/diffusion_pytorch_model.safetensors", record_taesd, dtype, &rng));
    return SD_OK;
}

/* The modules LCM-LoRA trains: diffusers' train_lcm_distill_lora_sd_wds.py default target_modules,
 * matched as the last parts of a UNet weight's module path. */
static const char *const g_lcm_lora_targets[] = {
    ".to_q", ".to_k", ".to_v", ".to_out.0", ".proj_in", ".proj_out", ".ff.net.0.proj", ".ff.net.2", ".conv1", ".conv2",
    ".conv_shortcut", ".downsamplers.0.conv", ".upsamplers.0.conv", ".time_emb_proj",
};

/* Records one module's kohya keys: down [rank, in(, k, k)], up [out, rank(, 1, 1)], alpha []. */
static sd_status record_lora_module(sd_safetensors *out, const char *module, const sd_st_tensor *w, bool conv) {
    char flat[384], key[512];
    if (sd_lora_flatten(flat, sizeof flat, module) != 0) return sd_fail(SD_ERR_LIMIT, "make-model: name '%s' too long", module);
    int64_t down[4] = {SD_LCM_LORA_RANK, w->shape[1], 1, 1}, up[4] = {w->shape[0], SD_LCM_LORA_RANK, 1, 1};
    if (w->ndim == 4) down[2] = w->shape[2], down[3] = w->shape[3];
    snprintf(key, sizeof key, "lora_unet_%s.lora_down.weight", flat);
    SD_TRY(sd_st_record(out, key, conv ? 4 : 2, down));
    snprintf(key, sizeof key, "lora_unet_%s.lora_up.weight", flat);
    SD_TRY(sd_st_record(out, key, conv ? 4 : 2, up));
    snprintf(key, sizeof key, "lora_unet_%s.alpha", flat);
    return sd_st_record(out, key, 0, NULL);
}

sd_status sd_make_lcm_lora(const char *arch, const char *dir, uint64_t seed) {
    const char *text = arch_text(arch, "unet/config.json");
    if (!text) return sd_fail(SD_ERR_UNSUPPORTED, "make-model: unknown architecture '%s' (expected sd-turbo or sd15)", arch);
    SD_TRY(make_dir(dir));
    sd_config json;
    SD_TRY(sd_config_parse(&json, text, strlen(text), "unet/config.json"));
    sd_unet_config cfg;
    sd_safetensors *unet = NULL, *lora = NULL;
    sd_status st = sd_unet_config_read(&cfg, &json);
    if (st == SD_OK) st = sd_st_open_recorder(&unet, "unet");
    if (st == SD_OK) st = sd_make_model_record("unet", &json, unet);
    if (st == SD_OK) st = sd_st_open_recorder(&lora, "pytorch_lora_weights.safetensors");
    for (int i = 0; st == SD_OK && i < unet->n_records; i++) {
        const sd_st_tensor *w = &unet->records[i];
        size_t len = strlen(w->name);
        if (w->ndim < 2 || !ends_with(w->name, ".weight")) continue;
        char module[384];
        snprintf(module, sizeof module, "%.*s", (int)(len - strlen(".weight")), w->name);
        for (size_t j = 0; j < sizeof g_lcm_lora_targets / sizeof g_lcm_lora_targets[0]; j++) {
            if (!ends_with(module, g_lcm_lora_targets[j])) continue;
            /* proj_in/proj_out load as [C, C]; they are 1x1 convs unless use_linear_projection */
            bool proj = ends_with(module, ".proj_in") || ends_with(module, ".proj_out");
            st = record_lora_module(lora, module, w, w->ndim == 4 || (proj && !cfg.use_linear_projection));
            break;
        }
    }
    char path[SD_PATH_MAX];
    uint64_t rng = seed ^ 0x4c434d4c6f5241ull; /* not the model's stream of numbers */
    if (st == SD_OK) st = sd_path_join(path, sizeof path, dir, "pytorch_lora_weights.safetensors");
    if (st == SD_OK) st = write_weights(lora, path, SD_DTYPE_F16, &rng);
    sd_st_close(lora);
    sd_st_close(unet);
    sd_config_free(&json);
    return st;
}
