/* test_weights_dtype.c — weights stored as F16 or BF16 load correctly (converted to float32 once,
 * at load) and give the float32 goldens within the precision of their storage:
 *   - `variant = "fp16"` picks tiny-sd15's unet/diffusion_pytorch_model.fp16.safetensors: the UNet
 *     golden (batch 4) matches within 1e-2, and differs from the float32 weights' result (so the
 *     fp16 file really was used); a folder holding only the fp16 file loads with the variant and
 *     not without it;
 *   - BF16 copies (written here from the float32 files) of the UNet and the text encoder match
 *     their goldens within 1e-2, and not exactly;
 *   - `variant = "fp16"` on tiny-sd21, which has no fp16 files, falls back to the plain files and
 *     gives bit-identical results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/dtype.h"
#include "base/safetensors.h"
#include "check.h"

#define UNET_B4 (4 * 4 * 16 * 16)
#define TEXT_OUT (3 * 77 * 32)

static char g_sd15[4096], g_sd21[4096];

/* Loads model (components, variant), evaluates component on golden_rel into out[n] (tensor key). */
static bool eval_precision(const char *model, const char *variant, sd_precision precision, unsigned components,
                           const char *component, const char *golden_rel, const char *key, const char *out_name,
                           float *out, size_t n) {
    sd_model_params p = sd_model_params_default();
    p.path = model;
    p.variant = variant;
    p.precision = precision;
    if (strstr(component, "taesd")) p.taesd_path = check_ref("models/taesd");
    p.components = components;
    sd_model *m = NULL;
    CHECK_OK(sd_model_load(&m, &p));
    if (!m) return false;
    char golden[4096], result[4096];
    snprintf(golden, sizeof golden, "%s", check_ref(golden_rel));
    snprintf(result, sizeof result, "%s", check_tmp(out_name));
    sd_status st = sd_model_eval_file(m, component, golden, result);
    CHECK(st == SD_OK, "%s: eval %s: %s", out_name, component, sd_last_error());
    sd_model_free(m);
    if (st != SD_OK) return false;
    sd_safetensors *f = NULL;
    CHECK_OK(sd_st_open(&f, result));
    if (!f) return false;
    const sd_st_tensor *t = sd_st_find(f, key);
    bool ok = t && (size_t)t->numel == n && sd_st_read_f32(f, key, out, t->ndim, t->shape) == SD_OK;
    CHECK(ok, "%s: output has %s of %zu floats", out_name, key, n);
    sd_st_close(f);
    return ok;
}

static bool eval_model(const char *model, const char *variant, unsigned components, const char *component,
                       const char *golden_rel, const char *key, const char *out_name, float *out, size_t n) {
    return eval_precision(model, variant, SD_PRECISION_FP32, components, component, golden_rel, key, out_name, out, n);
}

/* The golden tensor key of golden_rel into out[n]. */
static bool read_golden(const char *golden_rel, const char *key, float *out, size_t n) {
    sd_safetensors *f = NULL;
    CHECK_OK(sd_st_open(&f, check_ref(golden_rel)));
    if (!f) return false;
    const sd_st_tensor *t = sd_st_find(f, key);
    bool ok = t && (size_t)t->numel == n && sd_st_read_f32(f, key, out, t->ndim, t->shape) == SD_OK;
    CHECK(ok, "%s has %s of %zu floats", golden_rel, key, n);
    sd_st_close(f);
    return ok;
}

static bool bit_identical(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

/* Relative error against the golden: below 1e-2 (half-precision storage) and above 0. */
static void expect_reduced_precision(const float *got, const float *ref, size_t n, const char *label) {
    double rel = check_rel_error(got, ref, n);
    CHECK(rel < 1e-2, "%s: relative error %.3g (limit 1e-2)", label, rel);
    CHECK(rel > 0.0, "%s: relative error %.3g is not 0: the reduced-precision weights were used", label, rel);
    printf("%-28s relative error %.3g\n", label, rel);
}

/* Copies tiny-sd15 to tmp/<name>: configs copied, weights symlinked, without the fp16 variant. */
static const char *model_copy(const char *name) {
    static char root[4096];
    snprintf(root, sizeof root, "%s", check_tmp(name));
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s' && mkdir -p '%s' && cd '%s' && for d in unet vae text_encoder tokenizer scheduler; do "
             "mkdir $d && for f in '%s'/$d/*; do case $f in *.fp16.safetensors) ;; *.json|*.txt) cp \"$f\" $d/ ;; "
             "*) ln -s \"$f\" $d/ ;; esac; done; done && cp '%s'/model_index.json .",
             root, root, root, g_sd15, g_sd15);
    CHECK(system(cmd) == 0, "building fixture %s", root);
    return root;
}

/* Rewrites src as dst with every float tensor stored as BF16 (others copied as they are). */
static void write_bf16_copy(const char *src, const char *dst) {
    sd_safetensors *st = NULL;
    CHECK_OK(sd_st_open(&st, src));
    if (!st) return;
    sd_st_entry *entries = calloc((size_t)st->n_tensors, sizeof *entries);
    void **owned = calloc((size_t)st->n_tensors, sizeof *owned);
    int n_float = 0;
    bool ok = entries && owned;
    for (int i = 0; ok && i < st->n_tensors; i++) {
        const sd_st_tensor *t = &st->tensors[i];
        sd_st_entry *e = &entries[i];
        e->name = t->name, e->dtype = t->dtype, e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof e->shape);
        e->data = sd_st_data(st, t);
        if (!sd_dtype_is_float(t->dtype)) continue;
        size_t n = (size_t)t->numel;
        float *f32 = malloc((n ? n : 1) * sizeof *f32);
        uint16_t *bf = malloc((n ? n : 1) * sizeof *bf);
        ok = f32 && bf && sd_st_read_f32(st, t->name, f32, t->ndim, t->shape) == SD_OK;
        for (size_t k = 0; ok && k < n; k++) bf[k] = sd_f32_to_bf16(f32[k]);
        free(f32);
        owned[i] = bf;
        e->dtype = SD_DTYPE_BF16, e->data = bf;
        n_float++;
    }
    CHECK(ok && n_float > 0, "%s: %d float tensors converted", src, n_float);
    if (ok) CHECK_OK(sd_st_write(dst, entries, st->n_tensors, NULL, NULL, 0));
    for (int i = 0; owned && i < st->n_tensors; i++) free(owned[i]);
    free(owned);
    free(entries);
    sd_st_close(st);

    /* the fixture itself: every float tensor of dst is BF16 */
    sd_safetensors *check = NULL;
    CHECK_OK(sd_st_open(&check, dst));
    int bf16 = 0, other = 0;
    for (int i = 0; check && i < check->n_tensors; i++) {
        if (check->tensors[i].dtype == SD_DTYPE_BF16) bf16++;
        else if (sd_dtype_is_float(check->tensors[i].dtype)) other++;
    }
    CHECK(bf16 == n_float && other == 0, "%s: %d BF16 tensors, %d other float tensors", dst, bf16, other);
    sd_st_close(check);
}

static void fp16_variant(void) {
    static float ref[UNET_B4], f32[UNET_B4], f16[UNET_B4];
    const char *golden = "golden/unet/tiny-sd15_b4.safetensors";
    bool have_ref = read_golden(golden, "noise_pred", ref, UNET_B4);
    bool have32 = eval_model(g_sd15, NULL, SD_COMPONENT_UNET, "unet", golden, "noise_pred", "wd_unet_f32.safetensors", f32, UNET_B4);
    bool have16 = eval_model(g_sd15, "fp16", SD_COMPONENT_UNET, "unet", golden, "noise_pred", "wd_unet_fp16.safetensors", f16, UNET_B4);
    if (have_ref && have32) CHECK(check_rel_error(f32, ref, UNET_B4) < 1e-4, "float32 weights match the golden (control)");
    if (have_ref && have16) expect_reduced_precision(f16, ref, UNET_B4, "unet --variant fp16");
    if (have32 && have16) CHECK(!bit_identical(f16, f32, UNET_B4), "--variant fp16 differs from the float32 weights");

    /* a folder with only the fp16 UNet file: found with the variant, missing without it */
    const char *root = model_copy("wd_fp16_only");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s/unet' && rm diffusion_pytorch_model.safetensors && ln -s '%s/unet/diffusion_pytorch_model.fp16.safetensors' .",
             root, g_sd15);
    CHECK(system(cmd) == 0, "building the fp16-only fixture");
    static float only[UNET_B4];
    if (eval_model(root, "fp16", SD_COMPONENT_UNET, "unet", golden, "noise_pred", "wd_unet_fp16_only.safetensors", only, UNET_B4)
        && have16)
        CHECK(bit_identical(only, f16, UNET_B4), "the fp16-only folder gives the --variant fp16 result");
    sd_model_params p = sd_model_params_default();
    p.path = root;
    p.components = SD_COMPONENT_UNET;
    sd_model *m = NULL;
    sd_status st = sd_model_load(&m, &p);
    CHECK(st == SD_ERR_NOT_FOUND && strstr(sd_last_error(), "diffusion_pytorch_model.safetensors"),
          "without the variant, the missing plain file is named: %s %s", sd_status_name(st), sd_last_error());
    sd_model_free(m);
}

static void bf16_weights(void) {
    const char *root = model_copy("wd_bf16");
    char plain[4096], path[4096];
    snprintf(plain, sizeof plain, "%s/unet/diffusion_pytorch_model.safetensors", g_sd15);
    snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", root);
    unlink(path);
    write_bf16_copy(plain, path);
    snprintf(plain, sizeof plain, "%s/text_encoder/model.safetensors", g_sd15);
    snprintf(path, sizeof path, "%s/text_encoder/model.safetensors", root);
    unlink(path);
    write_bf16_copy(plain, path);
    snprintf(plain, sizeof plain, "%s/vae/diffusion_pytorch_model.safetensors", g_sd15);
    snprintf(path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", root);
    unlink(path);
    write_bf16_copy(plain, path);

    static float ref[UNET_B4], got[UNET_B4];
    const char *golden = "golden/unet/tiny-sd15_b4.safetensors";
    if (read_golden(golden, "noise_pred", ref, UNET_B4) &&
        eval_model(root, NULL, SD_COMPONENT_UNET, "unet", golden, "noise_pred", "wd_unet_bf16.safetensors", got, UNET_B4))
        expect_reduced_precision(got, ref, UNET_B4, "unet bf16");

    static float tref[TEXT_OUT], tgot[TEXT_OUT];
    golden = "golden/text_encoder/tiny-sd15.safetensors";
    if (read_golden(golden, "last_hidden_state", tref, TEXT_OUT) &&
        eval_model(root, NULL, SD_COMPONENT_TEXT_ENCODER, "text_encoder", golden, "last_hidden_state",
                   "wd_text_bf16.safetensors", tgot, TEXT_OUT))
        expect_reduced_precision(tgot, tref, TEXT_OUT, "text encoder bf16");
}

/* SD_PRECISION_BF16 (`--dtype bf16`): weight matrices stored as bfloat16 at load, float32 math.
 * Every component stays within 1e-2 of its golden and is not exact (the bf16 path really ran); and
 * loading a file whose weights are already bf16 gives bit-identical results with either precision,
 * so widening bf16 in the GEMM packers is exact, as the float32 path's conversion at load is. */
static void bf16_precision(void) {
    static const struct {
        const char *component, *golden, *key;
        size_t n;
    } cases[] = {
        {"unet", "golden/unet/tiny-sd15_b4.safetensors", "noise_pred", UNET_B4},
        {"unet", "golden/unet/tiny-sd21_b2_24x32.safetensors", "noise_pred", 2 * 4 * 24 * 32},
        {"text_encoder", "golden/text_encoder/tiny-sd15.safetensors", "last_hidden_state", TEXT_OUT},
        {"text_encoder", "golden/text_encoder/tiny-sd21.safetensors", "last_hidden_state", 0},
        {"vae_decode", "golden/vae/tiny-sd15_decode_64x96.safetensors", "image", 3 * 64 * 96},
        {"vae_encode", "golden/vae/tiny-sd15_encode_64x96.safetensors", "latent_mean", 4 * 8 * 12},
        {"taesd_decode", "golden/vae/taesd_decode_64x96.safetensors", "image", 3 * 64 * 96},
        {"taesd_encode", "golden/vae/taesd_encode_64x96.safetensors", "latents", 4 * 8 * 12},
    };
    enum { CAP = 1 << 16 };
    static float ref[CAP], got[CAP];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *model = strstr(cases[i].golden, "sd21") ? g_sd21 : g_sd15;
        size_t n = cases[i].n;
        if (n == 0) { /* the golden's own size */
            sd_safetensors *f = NULL;
            CHECK_OK(sd_st_open(&f, check_ref(cases[i].golden)));
            const sd_st_tensor *t = f ? sd_st_find(f, cases[i].key) : NULL;
            n = t ? (size_t)t->numel : 0;
            sd_st_close(f);
        }
        CHECK(n > 0 && n <= CAP, "%s: %zu floats of %s", cases[i].golden, n, cases[i].key);
        if (n == 0 || n > CAP) continue;
        char label[128], out[128];
        snprintf(label, sizeof label, "%s %s bf16", cases[i].component, strstr(cases[i].golden, "sd21") ? "sd21" : "sd15");
        snprintf(out, sizeof out, "wd_prec_%zu.safetensors", i);
        if (read_golden(cases[i].golden, cases[i].key, ref, n) &&
            eval_precision(model, NULL, SD_PRECISION_BF16, SD_COMPONENT_ALL, cases[i].component, cases[i].golden,
                           cases[i].key, out, got, n))
            expect_reduced_precision(got, ref, n, label);
    }

    /* bf16 files: the same numbers whether widened at load (fp32) or in the packers (bf16) */
    char root[4096]; /* written by bf16_weights() */
    snprintf(root, sizeof root, "%s", check_tmp("wd_bf16"));
    static float a[UNET_B4], b[UNET_B4];
    const char *golden = "golden/unet/tiny-sd15_b4.safetensors";
    if (eval_precision(root, NULL, SD_PRECISION_FP32, SD_COMPONENT_UNET, "unet", golden, "noise_pred", "wd_bb_32.safetensors", a, UNET_B4) &&
        eval_precision(root, NULL, SD_PRECISION_BF16, SD_COMPONENT_UNET, "unet", golden, "noise_pred", "wd_bb_16.safetensors", b, UNET_B4))
        CHECK(bit_identical(a, b, UNET_B4), "bf16 UNet file: --dtype bf16 gives the --dtype fp32 result bit for bit");
    static float ta[TEXT_OUT], tb[TEXT_OUT];
    golden = "golden/text_encoder/tiny-sd15.safetensors";
    if (eval_precision(root, NULL, SD_PRECISION_FP32, SD_COMPONENT_TEXT_ENCODER, "text_encoder", golden, "last_hidden_state",
                       "wd_bt_32.safetensors", ta, TEXT_OUT) &&
        eval_precision(root, NULL, SD_PRECISION_BF16, SD_COMPONENT_TEXT_ENCODER, "text_encoder", golden, "last_hidden_state",
                       "wd_bt_16.safetensors", tb, TEXT_OUT))
        CHECK(bit_identical(ta, tb, TEXT_OUT), "bf16 text encoder file: --dtype bf16 gives the --dtype fp32 result bit for bit");
    enum { LAT = 4 * 8 * 12 };
    static float va[LAT], vb[LAT], vref[LAT];
    golden = "golden/vae/tiny-sd15_encode_64x96.safetensors";
    if (read_golden(golden, "latent_mean", vref, LAT) &&
        eval_precision(root, NULL, SD_PRECISION_FP32, SD_COMPONENT_VAE, "vae_encode", golden, "latent_mean",
                       "wd_bv_32.safetensors", va, LAT) &&
        eval_precision(root, NULL, SD_PRECISION_BF16, SD_COMPONENT_VAE, "vae_encode", golden, "latent_mean",
                       "wd_bv_16.safetensors", vb, LAT)) {
        CHECK(bit_identical(va, vb, LAT), "bf16 VAE file: --dtype bf16 gives the --dtype fp32 result bit for bit");
        printf("vae_encode, bf16 file, fp32 math: relative error %.3g\n", check_rel_error(va, vref, LAT));
    }

    /* an unknown precision is refused by name */
    sd_model_params p = sd_model_params_default();
    p.path = g_sd15;
    p.precision = (sd_precision)7;
    sd_model *m = NULL;
    sd_status st = sd_model_load(&m, &p);
    CHECK(st == SD_ERR_ARG && strstr(sd_last_error(), "precision") && !m, "precision 7 refused: %s", sd_last_error());
}

static void variant_fallback(void) {
    static float plain[4 * 4 * 16 * 16], variant[4 * 4 * 16 * 16];
    const char *golden = "golden/unet/tiny-sd21_b1.safetensors";
    const size_t n = 1 * 4 * 16 * 16;
    bool a = eval_model(g_sd21, NULL, SD_COMPONENT_ALL, "unet", golden, "noise_pred", "wd_sd21_plain.safetensors", plain, n);
    bool b = eval_model(g_sd21, "fp16", SD_COMPONENT_ALL, "unet", golden, "noise_pred", "wd_sd21_fp16.safetensors", variant, n);
    CHECK(b, "tiny-sd21 (no fp16 files) loads with --variant fp16");
    if (a && b) CHECK(bit_identical(plain, variant, n), "tiny-sd21 --variant fp16 falls back to the plain files (identical result)");
}

int main(void) {
    snprintf(g_sd15, sizeof g_sd15, "%s", check_ref("models/tiny-sd15"));
    snprintf(g_sd21, sizeof g_sd21, "%s", check_ref("models/tiny-sd21"));
    fp16_variant();
    bf16_weights();
    bf16_precision();
    variant_fallback();
    return check_finish();
}
