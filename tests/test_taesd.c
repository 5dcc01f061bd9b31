/* test_taesd.c — TAESD (diffusers AutoencoderTiny) against the golden encodes and decodes at
 * 128x128 and 64x96, loaded with models/taesd/config.json and with the default config (a bare
 * .safetensors file); batch 2; and bad input: wrong channels/size, unsupported config values, a
 * missing weight. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "base/config.h"
#include "base/safetensors.h"
#include "check.h"
#include "model/taesd.h"

static const double LIMIT = 1e-4;

static bool contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }


/* Runs encode (in = "image", out = "latents") or decode (the other way) on `batch` copies of the
 * golden input and compares every row with the golden output. */
static void run_case(sd_taesd *t, sd_backend *be, sd_arena *arena, const char *label, const char *golden_rel,
                     bool encode, int batch) {
    sd_safetensors *g = NULL;
    CHECK_OK(sd_st_open(&g, check_ref(golden_rel)));
    if (!g) return;
    const char *in_name = encode ? "image" : "latents", *out_name = encode ? "latents" : "image";
    int64_t is[4], os[4];
    float *in = check_read_tensor4(g, in_name, is), *ref = check_read_tensor4(g, out_name, os);
    if (in && ref) {
        int64_t in_n = is[1] * is[2] * is[3], out_n = os[1] * os[2] * os[3];
        float *in_b = malloc((size_t)(in_n * batch) * sizeof(float));
        float *out = malloc((size_t)(out_n * batch) * sizeof(float));
        for (int b = 0; b < batch; b++) memcpy(in_b + b * in_n, in, (size_t)in_n * sizeof(float));
        CHECK_OK(sd_arena_reset(arena));
        sd_tensor x = sd_backend_tensor(be, arena, 4, (int64_t[]){batch, is[1], is[2], is[3]});
        sd_tensor y = sd_backend_tensor(be, arena, 4, (int64_t[]){batch, os[1], os[2], os[3]});
        sd_backend_upload(be, &x, in_b);
        if (encode) CHECK_OK(sd_taesd_encode(t, be, arena, &y, &x));
        else CHECK_OK(sd_taesd_decode(t, be, arena, &y, &x));
        sd_backend_download(be, out, &y);
        for (int b = 0; b < batch; b++) {
            double rel = check_rel_error(out + b * out_n, ref, (size_t)out_n);
            printf("  %-40s [%d] relative error %.3g (max abs %.3g)\n", label, b, rel,
                   check_max_abs_diff(out + b * out_n, ref, (size_t)out_n));
            CHECK(rel < check_tol(LIMIT), "%s [%d]: relative error %.3g over %g", label, b, rel, check_tol(LIMIT));
        }
        free(in_b);
        free(out);
    }
    free(in);
    free(ref);
    sd_st_close(g);
}

static void run_goldens(sd_taesd *t, sd_backend *be, sd_arena *arena, const char *how) {
    static const struct {
        const char *size, *golden;
        bool encode;
    } cases[] = {
        {"encode 128x128", "golden/vae/taesd_encode_128x128.safetensors", true},
        {"encode 64x96", "golden/vae/taesd_encode_64x96.safetensors", true},
        {"decode 128x128", "golden/vae/taesd_decode_128x128.safetensors", false},
        {"decode 64x96", "golden/vae/taesd_decode_64x96.safetensors", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char label[128];
        snprintf(label, sizeof label, "%s %s", how, cases[i].size);
        run_case(t, be, arena, label, cases[i].golden, cases[i].encode, 1);
    }
}

static void expect_config(const char *label, const char *json_text, sd_status want, const char *needle) {
    sd_config json;
    sd_status st = sd_config_parse(&json, json_text, strlen(json_text), label);
    CHECK_OK(st);
    if (st != SD_OK) return;
    sd_taesd_config cfg;
    st = sd_taesd_config_read(&cfg, &json);
    CHECK(st == want && contains(sd_last_error(), needle), "%s: got %s (%s), want %s naming '%s'", label,
          sd_status_name(st), sd_last_error(), sd_status_name(want), needle);
    sd_config_free(&json);
}

static void test_bad_input(sd_taesd *t, sd_backend *be, sd_arena *arena, const sd_safetensors *file) {
    CHECK_OK(sd_arena_reset(arena));
    sd_tensor img1 = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 1, 64, 64});
    sd_tensor img_odd = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 3, 64, 36});
    sd_tensor img = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 3, 64, 64});
    sd_tensor lat = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 4, 8, 8});
    sd_tensor lat8 = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 8, 8, 8});
    sd_tensor img_small = sd_backend_tensor(be, arena, 4, (int64_t[]){1, 3, 32, 32});
    sd_status st = sd_taesd_encode(t, be, arena, &lat, &img1);
    CHECK(st == SD_ERR_ARG && contains(sd_last_error(), "[1, 1, 64, 64]"), "1-channel image: %s: %s",
          sd_status_name(st), sd_last_error());
    st = sd_taesd_encode(t, be, arena, &lat, &img_odd);
    CHECK(st == SD_ERR_ARG && contains(sd_last_error(), "multiples of 8"), "36-pixel-wide image: %s: %s",
          sd_status_name(st), sd_last_error());
    st = sd_taesd_decode(t, be, arena, &img, &lat8);
    CHECK(st == SD_ERR_ARG && contains(sd_last_error(), "latents"), "8-channel latents: %s: %s", sd_status_name(st),
          sd_last_error());
    st = sd_taesd_decode(t, be, arena, &img_small, &lat);
    CHECK(st == SD_ERR_ARG && contains(sd_last_error(), "[1, 3, 64, 64]"), "output of the wrong size: %s: %s",
          sd_status_name(st), sd_last_error());

    expect_config("bad_act.json", "{\"act_fn\": \"silu\"}", SD_ERR_UNSUPPORTED, "silu");
    expect_config("bad_up.json", "{\"upsampling_scaling_factor\": 3}", SD_ERR_UNSUPPORTED, "upsampling_scaling_factor");
    expect_config("bad_up_fn.json", "{\"upsample_fn\": \"bilinear\"}", SD_ERR_UNSUPPORTED, "bilinear");
    expect_config("bad_width.json", "{\"decoder_block_out_channels\": [64, 64, 32, 64]}", SD_ERR_UNSUPPORTED,
                  "decoder_block_out_channels[2]");
    expect_config("bad_count.json", "{\"num_encoder_blocks\": [1, 3, 3]}", SD_ERR_FORMAT, "num_encoder_blocks");
    expect_config("bad_blocks.json", "{\"num_decoder_blocks\": [3, 3, 3, 100]}", SD_ERR_FORMAT, "num_decoder_blocks");

    /* one block more on the last encoder level: its convs sit where the file has the output conv */
    sd_taesd_config cfg;
    sd_taesd_config_default(&cfg);
    cfg.encoder_blocks[3] = 4;
    sd_taesd t2;
    st = sd_taesd_load(&t2, &cfg, file);
    CHECK(st == SD_ERR_NOT_FOUND && contains(sd_last_error(), "encoder.layers.14.conv.0.weight"),
          "missing weight: %s: %s", sd_status_name(st), sd_last_error());
    sd_taesd_free(&t2);
    sd_taesd_config_default(&cfg);
    cfg.latent_channels = 16;
    st = sd_taesd_load(&t2, &cfg, file);
    CHECK(st == SD_ERR_FORMAT && contains(sd_last_error(), "[16, 64, 3, 3]") && contains(sd_last_error(), "[4, 64, 3, 3]"),
          "wrong latent channels: %s: %s", sd_status_name(st), sd_last_error());
    sd_taesd_free(&t2);
}

/* Cases (SD_TEST_CASES): config (goldens and batch 2 with config.json), default (goldens with the
 * default config, bad input). */
int main(void) {
    sd_backend *be = NULL;
    CHECK_OK(check_backend_create(&be));
    if (!be) return check_finish();
    sd_arena arena;
    check_arena_init(&arena, be);

    sd_taesd_config cfg, def;
    sd_taesd_config_default(&def);
    sd_config json;
    sd_status st = sd_config_load(&json, check_ref("models/taesd/config.json"));
    CHECK_OK(st);
    if (st == SD_OK) {
        CHECK_OK(sd_taesd_config_read(&cfg, &json));
        sd_config_free(&json);
        CHECK(memcmp(&cfg, &def, sizeof cfg) == 0, "models/taesd/config.json equals the default config");
    }
    sd_safetensors *file = NULL;
    CHECK_OK(sd_st_open(&file, check_ref("models/taesd/diffusion_pytorch_model.safetensors")));
    sd_taesd t;
    if (file && check_case("config")) {
        printf("taesd with config.json:\n");
        CHECK_OK(sd_taesd_load(&t, &cfg, file));
        CHECK_OK(sd_weight_store_upload(&t.store, be));
        run_goldens(&t, be, &arena, "config");
        run_case(&t, be, &arena, "batch 2 encode 64x96", "golden/vae/taesd_encode_64x96.safetensors", true, 2);
        run_case(&t, be, &arena, "batch 2 decode 64x96", "golden/vae/taesd_decode_64x96.safetensors", false, 2);
        sd_taesd_free(&t);
    }
    if (file && check_case("default")) {
        printf("taesd with the default config:\n");
        CHECK_OK(sd_taesd_load(&t, &def, file));
        CHECK_OK(sd_weight_store_upload(&t.store, be));
        run_goldens(&t, be, &arena, "default");
        test_bad_input(&t, be, &arena, file);
        sd_taesd_free(&t);
    }
    sd_st_close(file);
    sd_arena_free(&arena);
    sd_backend_free(be);
    return check_finish();
}
