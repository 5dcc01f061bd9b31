/* test_vae.c — AutoencoderKL against the golden encodes (posterior mean and std) and decodes of
 * tiny-sd15's VAE at 128x128 and 64x96, loaded three ways: the diffusers folder, the same weights
 * renamed to diffusers' pre-0.14 attention names, and the original-layout single-file checkpoint
 * (first_stage_model.*). Plus tiny-sd21's float16 single file, batch 2, the LDM key map, config
 * inference from shapes, steady-state arena use, and bad input (wrong channels/size, unknown block
 * type, missing and misshapen weights). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "base/config.h"
#include "base/safetensors.h"
#include "check.h"
#include "model/vae.h"

static const double LIMIT = 1e-4;

static bool contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }


/* Repeats n floats `times` times (a batch made of copies of one sample). */
static float *repeat(const float *x, int64_t n, int times) {
    float *out = malloc((size_t)(n * times) * sizeof(float));
    for (int i = 0; i < times; i++) memcpy(out + i * n, x, (size_t)n * sizeof(float));
    return out;
}

static void compare(const char *label, const float *got, const float *ref, int64_t n) {
    double rel = check_rel_error(got, ref, (size_t)n), limit = check_tol(LIMIT);
    printf("  %-48s relative error %.3g (max abs %.3g)\n", label, rel, check_max_abs_diff(got, ref, (size_t)n));
    CHECK(rel < limit, "%s: relative error %.3g over %g", label, rel, limit);
}

/* Encodes the golden image (batch `batch` copies) and compares every row's mean and std. */
static void run_encode(sd_vae *vae, sd_backend *be, sd_arena *arena, const char *label, const char *golden_rel,
                       int batch) {
    sd_safetensors *g = NULL;
    CHECK_OK(sd_st_open(&g, check_ref(golden_rel)));
    if (!g) return;
    int64_t ishape[4], lshape[4], sshape[4];
    float *image = check_read_tensor4(g, "image", ishape);
    float *mean_ref = check_read_tensor4(g, "latent_mean", lshape);
    float *std_ref = check_read_tensor4(g, "latent_std", sshape);
    if (image && mean_ref && std_ref) {
        int64_t in_n = ishape[1] * ishape[2] * ishape[3], lat_n = lshape[1] * lshape[2] * lshape[3];
        float *image_b = repeat(image, in_n, batch);
        float *mean = malloc((size_t)(lat_n * batch) * sizeof(float));
        float *std = malloc((size_t)(lat_n * batch) * sizeof(float));
        CHECK_OK(sd_arena_reset(arena));
        sd_tensor x = sd_backend_tensor(be, arena, 4, (int64_t[]){batch, ishape[1], ishape[2], ishape[3]});
        sd_tensor m = sd_backend_tensor(be, arena, 4, (int64_t[]){batch, lshape[1], lshape[2], lshape[3]});
        sd_tensor s = sd_backend_tensor(be, arena, 4, (int64_t[]){batch, lshape[1], lshape[2], lshape[3]});
        sd_backend_upload(be, &x, image_b);
        CHECK_OK(sd_vae_encode(vae, be, arena, &m, &s, &x));
        sd_backend_download(be, mean, &m);
        sd_backend_download(be, std, &s);
        for (int b = 0; b < batch; b++) {
            char what[160];
            snprintf(what, sizeof what, "%s mean[%d]", label, b);
            compare(what, mean + b * lat_n, mean_ref, lat_n);
            snprintf(what, sizeof what, "%s std[%d]", label, b);
            compare(what, std + b * lat_n, std_ref, lat_n);
        }
        free(image_b);
        free(mean);
        free(std);
    }
    free(image);
    free(mean_ref);
    free(std_ref);
    sd_st_close(g);
}

static void run_decode(sd_vae *vae, sd_backend *be, sd_arena *arena, const char *label, const char *golden_rel,
                       int batch) {
    sd_safetensors *g = NULL;
    CHECK_OK(sd_st_open(&g, check_ref(golden_rel)));
    if (!g) return;
    int64_t lshape[4], ishape[4];
    float *latent = check_read_tensor4(g, "latent", lshape);
    float *image_ref = check_read_tensor4(g, "image", ishape);
    if (latent && image_ref) {
        int64_t lat_n = lshape[1] * lshape[2] * lshape[3], img_n = ishape[1] * ishape[2] * ishape[3];
        float *latent_b = repeat(latent, lat_n, batch);
        float *image = malloc((size_t)(img_n * batch) * sizeof(float));
        CHECK_OK(sd_arena_reset(arena));
        sd_tensor z = sd_backend_tensor(be, arena, 4, (int64_t[]){batch, lshape[1], lshape[2], lshape[3]});
        sd_tensor y = sd_backend_tensor(be, arena, 4, (int64_t[]){batch, ishape[1], ishape[2], ishape[3]});
        sd_backend_upload(be, &z, latent_b);
        CHECK_OK(sd_vae_decode(vae, be, arena, &y, &z));
        sd_backend_download(be, image, &y);
        for (int b = 0; b < batch; b++) {
            char what[160];
            snprintf(what, sizeof what, "%s image[%d]", label, b);
            compare(what, image + b * img_n, image_ref, img_n);
        }
        free(latent_b);
        free(image);
    }
    free(latent);
    free(image_ref);
    sd_st_close(g);
}

static void run_goldens(sd_vae *vae, sd_backend *be, sd_arena *arena, const char *layout) {
    char label[128];
    snprintf(label, sizeof label, "%s encode 128x128", layout);
    run_encode(vae, be, arena, label, "golden/vae/tiny-sd15_encode_128x128.safetensors", 1);
    snprintf(label, sizeof label, "%s encode 64x96", layout);
    run_encode(vae, be, arena, label, "golden/vae/tiny-sd15_encode_64x96.safetensors", 1);
    snprintf(label, sizeof label, "%s decode 128x128", layout);
    run_decode(vae, be, arena, label, "golden/vae/tiny-sd15_decode_128x128.safetensors", 1);
    snprintf(label, sizeof label, "%s decode 64x96", layout);
    run_decode(vae, be, arena, label, "golden/vae/tiny-sd15_decode_64x96.safetensors", 1);
}

static bool load_config(sd_vae_config *cfg) {
    sd_config json;
    sd_status st = sd_config_load(&json, check_ref("models/tiny-sd15/vae/config.json"));
    CHECK_OK(st);
    if (st != SD_OK) return false;
    st = sd_vae_config_read(cfg, &json);
    CHECK_OK(st);
    sd_config_free(&json);
    return st == SD_OK;
}

/* Writes the diffusers VAE file again with the pre-0.14 attention names. */
static bool write_legacy_copy(const sd_safetensors *src, const char *path) {
    sd_st_entry *entries = calloc((size_t)src->n_tensors, sizeof *entries);
    char (*names)[256] = calloc((size_t)src->n_tensors, sizeof *names);
    static const char *const from[] = {".to_q.", ".to_k.", ".to_v.", ".to_out.0."};
    static const char *const to[] = {".query.", ".key.", ".value.", ".proj_attn."};
    for (int i = 0; i < src->n_tensors; i++) {
        const sd_st_tensor *t = &src->tensors[i];
        snprintf(names[i], sizeof names[i], "%s", t->name);
        for (int r = 0; r < 4; r++) {
            char *at = strstr(names[i], from[r]);
            if (!at) continue;
            char rest[256];
            snprintf(rest, sizeof rest, "%s", at + strlen(from[r]));
            snprintf(at, sizeof names[i] - (size_t)(at - names[i]), "%s%s", to[r], rest);
        }
        entries[i].name = names[i];
        entries[i].dtype = t->dtype;
        entries[i].ndim = t->ndim;
        memcpy(entries[i].shape, t->shape, sizeof t->shape);
        entries[i].data = sd_st_data(src, t);
    }
    sd_status st = sd_st_write(path, entries, src->n_tensors, NULL, NULL, 0);
    CHECK_OK(st);
    free(entries);
    free(names);
    return st == SD_OK;
}

static void test_key_map(void) {
    sd_vae_config cfg;
    sd_vae_config_default(&cfg);
    static const char *const cases[][2] = {
        {"encoder.conv_in.weight", "encoder.conv_in.weight"},
        {"encoder.down_blocks.1.resnets.0.conv_shortcut.bias", "encoder.down.1.block.0.nin_shortcut.bias"},
        {"encoder.down_blocks.2.downsamplers.0.conv.weight", "encoder.down.2.downsample.conv.weight"},
        {"encoder.mid_block.resnets.1.norm2.weight", "encoder.mid.block_2.norm2.weight"},
        {"encoder.mid_block.attentions.0.group_norm.bias", "encoder.mid.attn_1.norm.bias"},
        {"encoder.mid_block.attentions.0.to_out.0.weight", "encoder.mid.attn_1.proj_out.weight"},
        {"encoder.conv_norm_out.weight", "encoder.norm_out.weight"},
        {"decoder.up_blocks.0.resnets.2.conv1.weight", "decoder.up.3.block.2.conv1.weight"},
        {"decoder.up_blocks.0.upsamplers.0.conv.bias", "decoder.up.3.upsample.conv.bias"},
        {"decoder.up_blocks.3.resnets.0.conv_shortcut.weight", "decoder.up.0.block.0.nin_shortcut.weight"},
        {"decoder.mid_block.attentions.0.to_q.weight", "decoder.mid.attn_1.q.weight"},
        {"quant_conv.weight", "quant_conv.weight"},
        {"post_quant_conv.bias", "post_quant_conv.bias"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sd_key_ref ref;
        memset(&ref, 0, sizeof ref);
        int rc = sd_vae_ldm_key_map(cases[i][0], &ref, &cfg);
        CHECK(rc == 0 && strcmp(ref.key, cases[i][1]) == 0, "ldm map %s -> '%s', want %s", cases[i][0], ref.key,
              cases[i][1]);
    }
    sd_key_ref ref;
    CHECK(sd_vae_ldm_key_map("decoder.up_blocks.4.resnets.0.conv1.weight", &ref, &cfg) != 0,
          "ldm map refuses a decoder level beyond the config");
    CHECK(sd_vae_legacy_key_map("decoder.mid_block.attentions.0.to_k.weight", &ref, NULL) == 0 &&
              strcmp(ref.key, "decoder.mid_block.attentions.0.key.weight") == 0,
          "legacy map to_k -> key: %s", ref.key);
    CHECK(sd_vae_legacy_key_map("encoder.mid_block.attentions.0.to_out.0.bias", &ref, NULL) == 0 &&
              strcmp(ref.key, "encoder.mid_block.attentions.0.proj_attn.bias") == 0,
          "legacy map to_out.0 -> proj_attn: %s", ref.key);
    CHECK(sd_vae_legacy_key_map("encoder.conv_in.weight", &ref, NULL) == 0 &&
              strcmp(ref.key, "encoder.conv_in.weight") == 0,
          "legacy map keeps other names: %s", ref.key);
}

/* Inference from shapes: a synthetic LDM-layout file with only the tensors inference reads. */
static void test_config_infer(const sd_safetensors *single) {
    sd_vae_config cfg;
    memset(&cfg, 0, sizeof cfg);
    /* the tiny VAE's 16 channels cannot take the assumed 32 groups: a clear refusal */
    sd_status st = sd_vae_config_infer(&cfg, single, "first_stage_model.", true);
    CHECK(st == SD_ERR_UNSUPPORTED && contains(sd_last_error(), "norm_num_groups") &&
              contains(sd_last_error(), "config"),
          "infer on tiny-sd15: %s: %s", sd_status_name(st), sd_last_error());

    static float zeros[64 * 32 * 9];
    const char *p = "first_stage_model.";
    char names[6][128];
    snprintf(names[0], 128, "%sencoder.conv_in.weight", p);
    snprintf(names[1], 128, "%sencoder.down.0.block.0.conv1.weight", p);
    snprintf(names[2], 128, "%sencoder.down.1.block.0.conv1.weight", p);
    snprintf(names[3], 128, "%sdecoder.conv_in.weight", p);
    snprintf(names[4], 128, "%sdecoder.conv_out.weight", p);
    snprintf(names[5], 128, "%sencoder.mid.attn_1.norm.weight", p);
    sd_st_entry e[6] = {
        {names[0], SD_DTYPE_F32, 4, {32, 3, 3, 3}, zeros},  {names[1], SD_DTYPE_F32, 4, {32, 32, 3, 3}, zeros},
        {names[2], SD_DTYPE_F32, 4, {64, 32, 3, 3}, zeros}, {names[3], SD_DTYPE_F32, 4, {64, 4, 3, 3}, zeros},
        {names[4], SD_DTYPE_F32, 4, {3, 32, 3, 3}, zeros},  {names[5], SD_DTYPE_F32, 1, {64}, zeros},
    };
    const char *path = check_tmp("vae_infer.safetensors");
    CHECK_OK(sd_st_write(path, e, 6, NULL, NULL, 0));
    sd_safetensors *f = NULL;
    CHECK_OK(sd_st_open(&f, path));
    if (!f) return;
    CHECK_OK(sd_vae_config_infer(&cfg, f, p, true));
    CHECK(cfg.n_levels == 2 && cfg.block_out_channels[0] == 32 && cfg.block_out_channels[1] == 64 &&
              cfg.layers_per_block == 1 && cfg.latent_channels == 4 && cfg.in_channels == 3 && cfg.out_channels == 3 &&
              cfg.norm_num_groups == 32 && cfg.mid_attention,
          "inferred config: %d levels (%d, %d), %d layers, latent %d, groups %d", cfg.n_levels,
          cfg.block_out_channels[0], cfg.block_out_channels[1], cfg.layers_per_block, cfg.latent_channels,
          cfg.norm_num_groups);
    sd_st_close(f);
}

static void expect_config(const char *label, const char *json_text, sd_status want, const char *needle) {
    sd_config json;
    sd_status st = sd_config_parse(&json, json_text, strlen(json_text), label);
    CHECK_OK(st);
    if (st != SD_OK) return;
    sd_vae_config cfg;
    st = sd_vae_config_read(&cfg, &json);
    CHECK(st == want && contains(sd_last_error(), needle), "%s: got %s (%s), want %s naming '%s'", label,
          sd_status_name(st), sd_last_error(), sd_status_name(want), needle);
    sd_config_free(&json);
}

static void test_bad_input(sd_vae *vae, sd_backend *be, sd_arena *arena, const sd_safetensors *single,
                           const sd_vae_config *good) {
    CHECK_OK(sd_arena_reset(arena));
    sd_tensor img4 = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 4, 64, 64});
    sd_tensor img_odd = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 3, 60, 64});
    sd_tensor img = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 3, 64, 64});
    sd_tensor m = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 4, 8, 8});
    sd_tensor s = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 4, 8, 8});
    sd_tensor m_bad = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 4, 16, 16});
    sd_tensor lat3 = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 3, 8, 8});
    sd_status st = sd_vae_encode(vae, be, arena, &m, &s, &img4);
    CHECK(st == SD_ERR_ARG && contains(sd_last_error(), "[1, 4, 64, 64]"), "4-channel image: %s: %s",
          sd_status_name(st), sd_last_error());
    st = sd_vae_encode(vae, be, arena, &m, &s, &img_odd);
    CHECK(st == SD_ERR_ARG && contains(sd_last_error(), "multiples of 8"), "60-pixel image: %s: %s",
          sd_status_name(st), sd_last_error());
    st = sd_vae_encode(vae, be, arena, &m_bad, &s, &img);
    CHECK(st == SD_ERR_ARG && contains(sd_last_error(), "mean") && contains(sd_last_error(), "[1, 4, 8, 8]"),
          "wrong mean shape: %s: %s", sd_status_name(st), sd_last_error());
    st = sd_vae_decode(vae, be, arena, &img, &lat3);
    CHECK(st == SD_ERR_ARG && contains(sd_last_error(), "latent"), "3-channel latent: %s: %s", sd_status_name(st),
          sd_last_error());

    expect_config("bad_block.json",
                  "{\"block_out_channels\": [16, 32], \"norm_num_groups\": 8, "
                  "\"down_block_types\": [\"DownEncoderBlock2D\", \"AttnDownEncoderBlock2D\"]}",
                  SD_ERR_UNSUPPORTED, "AttnDownEncoderBlock2D");
    expect_config("bad_up_block.json",
                  "{\"block_out_channels\": [16, 32], \"norm_num_groups\": 8, "
                  "\"up_block_types\": [\"UpDecoderBlock2D\", \"AttnUpDecoderBlock2D\"]}",
                  SD_ERR_UNSUPPORTED, "AttnUpDecoderBlock2D");
    expect_config("bad_act.json", "{\"act_fn\": \"gelu\"}", SD_ERR_UNSUPPORTED, "gelu");
    expect_config("bad_groups.json", "{\"block_out_channels\": [16, 48], \"norm_num_groups\": 32}", SD_ERR_UNSUPPORTED,
                  "norm_num_groups");
    expect_config("bad_count.json", "{\"block_out_channels\": [16, 32], \"down_block_types\": [\"DownEncoderBlock2D\"]}",
                  SD_ERR_FORMAT, "down_block_types");
    expect_config("bad_layers.json", "{\"layers_per_block\": \"two\"}", SD_ERR_FORMAT, "layers_per_block");

    /* one resnet more per level than the file has: the first missing tensor, by its file name */
    sd_vae_config cfg = *good;
    cfg.layers_per_block = 3;
    sd_vae v2;
    st = sd_vae_load(&v2, &cfg, single, "first_stage_model.", true);
    CHECK(st == SD_ERR_NOT_FOUND && contains(sd_last_error(), "first_stage_model.encoder.down.0.block.2.norm1.weight") &&
              contains(sd_last_error(), "encoder.down_blocks.0.resnets.2.norm1.weight"),
          "missing weight: %s: %s", sd_status_name(st), sd_last_error());
    sd_vae_free(&v2);
    /* channels that disagree with the file: expected vs found shapes */
    cfg = *good;
    cfg.block_out_channels[0] = 24;
    st = sd_vae_load(&v2, &cfg, single, "first_stage_model.", true);
    CHECK(st == SD_ERR_FORMAT && contains(sd_last_error(), "[24, 3, 3, 3]") && contains(sd_last_error(), "[16, 3, 3, 3]"),
          "wrong channels: %s: %s", sd_status_name(st), sd_last_error());
    sd_vae_free(&v2);
    /* the single file read as a diffusers layout has none of the names */
    st = sd_vae_load(&v2, good, single, "first_stage_model.", false);
    CHECK(st == SD_ERR_NOT_FOUND && contains(sd_last_error(), "first_stage_model.encoder.down_blocks.0"),
          "wrong layout: %s: %s", sd_status_name(st), sd_last_error());
    sd_vae_free(&v2);
}

/* After warm-up, a pass makes no system allocation in the arena (DESIGN.md: nothing allocates per
 * frame) and leaves it where it started. */
static void test_steady_state(sd_vae *vae, sd_backend *be) {
    sd_arena own;
    check_arena_init(&own, be);
    sd_arena *arena = &own;
    size_t allocs = 0, used = 0;
    for (int pass = 0; pass < 3; pass++) {
        CHECK_OK(sd_arena_reset(arena));
        sd_tensor z = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 4, 8, 12});
        sd_tensor y = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 3, 64, 96});
        static float zhost[4 * 8 * 12];
        for (int i = 0; i < 4 * 8 * 12; i++) zhost[i] = (float)(i % 7) * 0.25f - 0.75f;
        sd_backend_upload(be, &z, zhost);
        size_t before = arena->used;
        CHECK_OK(sd_vae_decode(vae, be, arena, &y, &z));
        CHECK(arena->used == before, "decode rewinds the arena (%zu -> %zu)", before, arena->used);
        if (pass == 1) allocs = arena->n_system_allocs, used = arena->peak;
        if (pass == 2)
            CHECK(arena->n_system_allocs == allocs && arena->peak == used, "steady state: %zu -> %zu arena allocations",
                  allocs, arena->n_system_allocs);
    }
    printf("  arena peak for a 64x96 decode: %.2f MB\n", (double)arena->peak / (1 << 20));
    sd_arena_free(&own);
}

/* tiny-sd21's single file stores the VAE in float16 (rounded from its float32 folder): both decode
 * the same latent to within DESIGN.md's fp16 tolerance (1e-2) — the F16 path of the loader. */
static void test_fp16_single(sd_backend *be, sd_arena *arena) {
    sd_config json;
    sd_vae_config cfg;
    sd_status st = sd_config_load(&json, check_ref("models/tiny-sd21/vae/config.json"));
    CHECK_OK(st);
    if (st != SD_OK) return;
    st = sd_vae_config_read(&cfg, &json);
    sd_config_free(&json);
    CHECK_OK(st);
    sd_safetensors *folder = NULL, *single = NULL, *g = NULL;
    CHECK_OK(sd_st_open(&folder, check_ref("models/tiny-sd21/vae/diffusion_pytorch_model.safetensors")));
    CHECK_OK(sd_st_open(&single, check_ref("models/tiny-sd21.safetensors")));
    CHECK_OK(sd_st_open(&g, check_ref("golden/vae/tiny-sd15_decode_64x96.safetensors")));
    int64_t ls[4];
    float *latent = g ? check_read_tensor4(g, "latent", ls) : NULL;
    sd_vae a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (st == SD_OK && folder && single && latent) {
        CHECK_OK(sd_vae_load(&a, &cfg, folder, "", false));
        CHECK_OK(sd_vae_load(&b, &cfg, single, "first_stage_model.", true));
        CHECK_OK(sd_weight_store_upload(&a.store, be));
        CHECK_OK(sd_weight_store_upload(&b.store, be));
        const int64_t n = 3 * ls[2] * 8 * ls[3] * 8;
        float *ya = malloc((size_t)n * sizeof(float)), *yb = malloc((size_t)n * sizeof(float));
        sd_vae *models[2] = {&a, &b};
        float *outs[2] = {ya, yb};
        for (int i = 0; i < 2; i++) {
            CHECK_OK(sd_arena_reset(arena));
            sd_tensor z = sd_backend_tensor(be, arena, 4, ls);
            sd_tensor y = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 3, ls[2] * 8, ls[3] * 8});
            sd_backend_upload(be, &z, latent);
            CHECK_OK(sd_vae_decode(models[i], be, arena, &y, &z));
            sd_backend_download(be, outs[i], &y);
        }
        double rel = check_rel_error(yb, ya, (size_t)n);
        printf("  tiny-sd21 F16 single file vs F32 folder decode: relative error %.3g\n", rel);
        CHECK(rel < 1e-2 && rel > 0.0, "tiny-sd21 F16 single file vs F32 folder: relative error %.3g", rel);
        free(ya);
        free(yb);
    }
    sd_vae_free(&a);
    sd_vae_free(&b);
    free(latent);
    sd_st_close(folder);
    sd_st_close(single);
    sd_st_close(g);
}

/* Cases (SD_TEST_CASES): folder (goldens, batch 2, steady state), legacy (pre-0.14 attention names),
 * single (the single file's goldens, config inference, bad input), fp16-single (tiny-sd21's F16 file). */
int main(void) {
    sd_backend *be = NULL;
    CHECK_OK(check_backend_create(&be));
    if (!be) return check_finish();
    sd_arena arena;
    check_arena_init(&arena, be);
    test_key_map();

    sd_vae_config cfg;
    sd_safetensors *folder = NULL, *single = NULL;
    bool use_folder = check_case("folder") || check_case("legacy"), use_single = check_case("single");
    if ((use_folder || use_single) && load_config(&cfg)) {
        CHECK(cfg.n_levels == 4 && cfg.block_out_channels[0] == 16 && cfg.block_out_channels[3] == 32 &&
                  cfg.norm_num_groups == 8 && cfg.layers_per_block == 2 && cfg.latent_channels == 4 && cfg.mid_attention,
              "tiny-sd15 vae config read");
        if (use_folder) CHECK_OK(sd_st_open(&folder, check_ref("models/tiny-sd15/vae/diffusion_pytorch_model.safetensors")));
        if (use_single) CHECK_OK(sd_st_open(&single, check_ref("models/tiny-sd15.safetensors")));
    }
    sd_vae vae;
    if (folder && check_case("folder")) {
        printf("diffusers folder:\n");
        CHECK_OK(sd_vae_load(&vae, &cfg, folder, "", false));
        CHECK_OK(sd_weight_store_upload(&vae.store, be));
        run_goldens(&vae, be, &arena, "folder");
        run_encode(&vae, be, &arena, "folder batch 2 encode 64x96", "golden/vae/tiny-sd15_encode_64x96.safetensors", 2);
        run_decode(&vae, be, &arena, "folder batch 2 decode 64x96", "golden/vae/tiny-sd15_decode_64x96.safetensors", 2);
        test_steady_state(&vae, be);
        sd_vae_free(&vae);
    }
    if (folder && check_case("legacy")) {
        printf("diffusers folder, pre-0.14 attention names:\n");
        const char *legacy_path = check_tmp("vae_legacy.safetensors");
        sd_safetensors *legacy = NULL;
        if (write_legacy_copy(folder, legacy_path)) CHECK_OK(sd_st_open(&legacy, legacy_path));
        if (legacy) {
            CHECK_OK(sd_vae_load(&vae, &cfg, legacy, "", false));
            CHECK_OK(sd_weight_store_upload(&vae.store, be));
            run_encode(&vae, be, &arena, "legacy encode 64x96", "golden/vae/tiny-sd15_encode_64x96.safetensors", 1);
            run_decode(&vae, be, &arena, "legacy decode 64x96", "golden/vae/tiny-sd15_decode_64x96.safetensors", 1);
            sd_vae_free(&vae);
            sd_st_close(legacy);
        }
    }
    if (single) {
        printf("single-file checkpoint (first_stage_model.*):\n");
        CHECK_OK(sd_vae_load(&vae, &cfg, single, "first_stage_model.", true));
        CHECK_OK(sd_weight_store_upload(&vae.store, be));
        run_goldens(&vae, be, &arena, "single");
        test_config_infer(single);
        test_bad_input(&vae, be, &arena, single, &cfg);
        sd_vae_free(&vae);
    }
    sd_st_close(folder);
    sd_st_close(single);
    if (check_case("fp16-single")) {
        printf("float16 single file:\n");
        test_fp16_single(be, &arena);
    }
    sd_arena_free(&arena);
    sd_backend_free(be);
    return check_finish();
}
