/* test_lora.c — LoRA fused at load against the goldens of ../shared/reference/golden/lora (diffusers
 * 0.24 load_lora_weights + fuse_lora(lora_scale=0.8) on tiny-sd15): the fused weights (a linear,
 * a 3x3 conv, a 1x1 conv) and the UNet output, for the kohya and the diffusers files, through the
 * library and through `sdstream eval --lora`. PEFT, lora_linear_layer and attention-processor
 * names of the same tensors must fuse to bit-identical weights; 16-bit LoRA files must fuse exactly
 * as their widened values do; text-encoder LoRAs (SD 1.x transformers and SD 2.x OpenCLIP layouts)
 * against the formula; every way a LoRA can fail to fit, each with its own message; scale parsing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/model_internal.h"
#include "base/config.h"
#include "base/safetensors.h"
#include "check.h"

#define KOHYA "models/lora/tiny-sd15_lora_kohya.safetensors"
#define DIFFUSERS "models/lora/tiny-sd15_lora_diffusers.safetensors"

/* ---- writing variants of the reference LoRA files ---- */

typedef int (*rename_fn)(char *out, size_t size, const char *name); /* 0: keep as out, -1: drop */

typedef struct extra_tensor {
    const char *name;
    sd_dtype dtype;
    int ndim;
    int64_t shape[4];
} extra_tensor;

/* Writes src's tensors renamed and converted to dtype (F32, F16 or BF16) plus extra tensors
 * (filled with small values) into the scratch file `name`; returns its path. */
static const char *write_variant(const char *src_rel, const char *name, rename_fn rename, sd_dtype dtype,
                                 const extra_tensor *extra, int n_extra) {
    static char path[8][4096];
    static int slot;
    char *out = path[slot++ % 8];
    snprintf(out, 4096, "%s", check_tmp(name));
    sd_safetensors *st = NULL;
    CHECK_OK(sd_st_open(&st, check_ref(src_rel)));
    if (!st) return out;
    int cap = st->n_tensors + n_extra;
    sd_st_entry *entries = calloc((size_t)cap, sizeof *entries);
    char (*names)[512] = calloc((size_t)cap, sizeof *names);
    void **bufs = calloc((size_t)cap, sizeof *bufs);
    int n = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const sd_st_tensor *t = &st->tensors[i];
        if (rename) {
            if (rename(names[n], sizeof names[n], t->name) != 0) continue;
        } else {
            snprintf(names[n], sizeof names[n], "%s", t->name);
        }
        float *f = malloc((size_t)t->numel * sizeof *f + 4);
        sd_convert_to_f32(f, sd_st_data(st, t), t->dtype, (size_t)t->numel);
        if (dtype == SD_DTYPE_F16)
            for (int64_t j = 0; j < t->numel; j++) ((uint16_t *)f)[j] = sd_f32_to_f16(f[j]);
        if (dtype == SD_DTYPE_BF16) sd_convert_to_bf16((uint16_t *)f, f, SD_DTYPE_F32, (size_t)t->numel);
        bufs[n] = f;
        entries[n] = (sd_st_entry){names[n], dtype, t->ndim, {0}, f};
        memcpy(entries[n].shape, t->shape, sizeof t->shape);
        n++;
    }
    for (int i = 0; i < n_extra; i++) {
        int64_t numel = 1;
        for (int d = 0; d < extra[i].ndim; d++) numel *= extra[i].shape[d];
        float *f = calloc((size_t)numel + 1, sizeof *f);
        for (int64_t j = 0; j < numel; j++) f[j] = 0.01f * (float)(j % 7);
        bufs[n] = f;
        entries[n] = (sd_st_entry){extra[i].name, extra[i].dtype, extra[i].ndim, {0}, f};
        memcpy(entries[n].shape, extra[i].shape, sizeof extra[i].shape);
        n++;
    }
    CHECK_OK(sd_st_write(out, entries, n, NULL, NULL, 0));
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(names);
    free(entries);
    sd_st_close(st);
    return out;
}

static int replace_suffix(char *out, size_t size, const char *name, const char *prefix, const char *strip_prefix,
                          const char *down, const char *up) {
    size_t n = strlen(name), plen = strlen(strip_prefix);
    const char *body = strncmp(name, strip_prefix, plen) == 0 ? name + plen : name;
    static const char *from_down = ".lora.down.weight", *from_up = ".lora.up.weight";
    const char *suffix = NULL, *repl = NULL;
    if (n > strlen(from_down) && strcmp(name + n - strlen(from_down), from_down) == 0) suffix = from_down, repl = down;
    if (n > strlen(from_up) && strcmp(name + n - strlen(from_up), from_up) == 0) suffix = from_up, repl = up;
    if (!suffix) return -1;
    snprintf(out, size, "%s%.*s%s", prefix, (int)(strlen(body) - strlen(suffix)), body, repl);
    return 0;
}
static int to_peft_base_model(char *out, size_t size, const char *name) {
    return replace_suffix(out, size, name, "base_model.model.", "unet.", ".lora_A.weight", ".lora_B.weight");
}
static int to_peft_unet(char *out, size_t size, const char *name) {
    return replace_suffix(out, size, name, "unet.", "unet.", ".lora_A.weight", ".lora_B.weight");
}
static int to_linear_layer(char *out, size_t size, const char *name) {
    return replace_suffix(out, size, name, "unet.", "unet.", ".lora_linear_layer.down.weight",
                          ".lora_linear_layer.up.weight");
}
/* attention projections under the old processor names, the rest as they are */
static int to_processor(char *out, size_t size, const char *name) {
    static const char *proj[] = {"to_q", "to_k", "to_v", "to_out.0"};
    for (int i = 0; i < 4; i++) {
        char pat[32];
        snprintf(pat, sizeof pat, ".%s.lora.", proj[i]);
        const char *at = strstr(name, pat);
        if (!at) continue;
        snprintf(out, size, "%.*s.processor.%.*s_lora.%s", (int)(at - name), name, i == 3 ? 6 : 4, proj[i],
                 at + strlen(pat));
        return 0;
    }
    snprintf(out, size, "%s", name);
    return 0;
}

/* ---- loading ---- */

static sd_status load_model(sd_model **m, const char *model_rel, const char *variant, unsigned components,
                            const char *lora_path, float scale, int allow_unused) {
    sd_model_params p = sd_model_params_default();
    char model_path[4096], config[4096], tokenizer[4096];
    snprintf(model_path, sizeof model_path, "%s", check_ref(model_rel));
    p.path = model_path;
    if (strstr(model_rel, ".safetensors")) { /* tiny single files: configs and tokenizer from the folder */
        snprintf(config, sizeof config, "%.*s", (int)(strlen(model_path) - strlen(".safetensors")), model_path);
        snprintf(tokenizer, sizeof tokenizer, "%s/tokenizer", config);
        p.config_dir = config;
        p.tokenizer_dir = tokenizer;
    }
    p.variant = variant;
    p.components = components;
    sd_lora lora = {lora_path, scale};
    p.loras = &lora;
    p.n_loras = lora_path ? 1 : 0;
    p.lora_allow_unused = allow_unused;
    *m = NULL;
    return sd_model_load(m, &p);
}

/* The tiny-sd15 UNet with a LoRA fused, conv weights left in torch's layout (not packed). */
static sd_status load_unet(sd_unet *u, const char *lora_path, float scale) {
    sd_config json;
    sd_unet_config cfg;
    SD_TRY(sd_config_load(&json, check_ref("models/tiny-sd15/unet/config.json")));
    sd_status st = sd_unet_config_read(&cfg, &json);
    sd_config_free(&json);
    SD_TRY(st);
    sd_lora lora = {lora_path, scale};
    sd_lora_set *set = NULL;
    SD_TRY(sd_lora_set_open(&set, &lora, 1, false, 0));
    sd_safetensors *file = NULL;
    st = sd_st_open(&file, check_ref("models/tiny-sd15/unet/diffusion_pytorch_model.safetensors"));
    cfg.lora = set;
    if (st == SD_OK) st = sd_unet_load(u, &cfg, file, "", false);
    sd_lora_report report;
    if (st == SD_OK) st = sd_lora_set_finish(set, (const bool[]){true, false}, &report);
    if (st == SD_OK) CHECK(report.unet_modules == 258 && report.skipped_keys == 0, "258 modules, got %d", report.unet_modules);
    sd_st_close(file);
    sd_lora_set_close(set);
    return st;
}

static void check_weight(const sd_safetensors *g, const char *golden_name, const sd_tensor *w, const char *label) {
    const sd_st_tensor *t = sd_st_find(g, golden_name);
    CHECK(t != NULL, "golden lacks %s", golden_name);
    if (!t) return;
    int64_t numel = 1;
    for (int i = 0; i < w->ndim; i++) numel *= w->shape[i];
    CHECK(numel == t->numel && w->dtype == SD_DTYPE_F32, "%s: %lld values", label, (long long)numel);
    if (numel != t->numel) return;
    double rel = check_rel_error(w->data, sd_st_data(g, t), (size_t)numel);
    CHECK(rel < 1e-4, "%s: fused weight relative error %.3g", label, rel);
    printf("%-40s fused weight relative error %.3g\n", label, rel);
}

static void test_fused_weights(const char *lora_rel, const char *golden_rel, const char *label) {
    static sd_unet u;
    CHECK_OK(load_unet(&u, check_ref(lora_rel), 0.8f));
    sd_safetensors *g = NULL;
    CHECK_OK(sd_st_open(&g, check_ref(golden_rel)));
    if (g && u.store.n) {
        char l[128];
        snprintf(l, sizeof l, "%s to_q", label);
        check_weight(g, "weight.attn_linear.fused", &u.down[0].attentions[0].blocks[0].attn1_q, l);
        snprintf(l, sizeof l, "%s conv1 3x3", label);
        check_weight(g, "weight.conv3x3.fused", &u.down[0].resnets[0].conv1_w, l);
        snprintf(l, sizeof l, "%s proj_in 1x1", label);
        check_weight(g, "weight.proj_in.fused", &u.down[1].attentions[0].proj_in_w, l);
        /* and the LoRA changed them: the golden's unfused weight is far from the fused one */
        const sd_st_tensor *orig = sd_st_find(g, "weight.conv3x3.orig");
        if (orig)
            CHECK(check_rel_error(u.down[0].resnets[0].conv1_w.data, sd_st_data(g, orig), (size_t)orig->numel) > 1e-3,
                  "%s: conv1 unchanged by the LoRA", label);
    }
    sd_st_close(g);
    sd_unet_free(&u);
}

static void test_unet_output(const char *lora_rel, const char *golden_rel, const char *label) {
    sd_model *m = NULL;
    CHECK_OK(load_model(&m, "models/tiny-sd15", NULL, SD_COMPONENT_UNET, check_ref(lora_rel), 0.8f, 0));
    if (!m) return;
    char golden[4096], out_name[128];
    snprintf(golden, sizeof golden, "%s", check_ref(golden_rel));
    snprintf(out_name, sizeof out_name, "lora_%s_unet.safetensors", label);
    const char *out = check_tmp(out_name);
    CHECK_OK(sd_model_eval_file(m, "unet", golden, out));
    double rel = check_file_rel_error(golden, out, "noise_pred");
    CHECK(rel < 1e-4, "%s: UNet output relative error %.3g", label, rel);
    /* and the LoRA made a difference: far from the golden's no-LoRA output */
    double base = 0.0;
    sd_safetensors *g = NULL, *o = NULL;
    CHECK_OK(sd_st_open(&g, golden));
    CHECK_OK(sd_st_open(&o, out));
    int64_t gs[4], os[4];
    float *ref = g ? check_read_tensor4(g, "noise_pred_base", gs) : NULL, *got = o ? check_read_tensor4(o, "noise_pred", os) : NULL;
    if (ref && got) base = check_rel_error(got, ref, (size_t)(gs[0] * gs[1] * gs[2] * gs[3]));
    CHECK(base > 1e-2, "%s: output equals the no-LoRA output (%.3g)", label, base);
    free(ref);
    free(got);
    sd_st_close(g);
    sd_st_close(o);
    printf("%-40s UNet output relative error %.3g (vs no LoRA %.3g)\n", label, rel, base);
    sd_lora_report r;
    CHECK_OK(sd_model_lora_report(m, 0, &r));
    CHECK(r.unet_modules == 258 && r.text_encoder_modules == 0 && r.skipped_keys == 0, "%s: report %d/%d/%d", label,
          r.unet_modules, r.text_encoder_modules, r.skipped_keys);
    CHECK(strstr(sd_model_describe(m), "1 LoRA fused") != NULL, "describe: %s", sd_model_describe(m));
    sd_model_free(m);
}

/* Two LoRA files loaded into the UNet must give byte-identical weight stores. */
static void check_same_weights(const char *a_path, const char *b_path, const char *label) {
    static sd_unet a, b;
    char a_copy[4096], b_copy[4096];
    snprintf(a_copy, sizeof a_copy, "%s", a_path);
    snprintf(b_copy, sizeof b_copy, "%s", b_path);
    a_path = a_copy, b_path = b_copy;
    CHECK_OK(load_unet(&a, a_path, 0.8f));
    CHECK_OK(load_unet(&b, b_path, 0.8f));
    bool same = a.store.n == b.store.n && a.store.n > 0;
    for (int i = 0; same && i < a.store.n; i++)
        same = a.store.sizes[i] == b.store.sizes[i] && memcmp(a.store.buffers[i], b.store.buffers[i], a.store.sizes[i]) == 0;
    CHECK(same, "%s: fused weights not bit-identical", label);
    printf("%-40s %s\n", label, same ? "bit-identical" : "DIFFERENT");
    sd_unet_free(&a);
    sd_unet_free(&b);
}

static void test_other_names(void) {
    char diffusers[4096]; /* check_ref's buffers rotate */
    snprintf(diffusers, sizeof diffusers, "%s", check_ref(DIFFUSERS));
    check_same_weights(diffusers, write_variant(DIFFUSERS, "lora_peft_base.safetensors", to_peft_base_model, SD_DTYPE_F32, NULL, 0),
                       "PEFT (base_model.model.) = diffusers");
    check_same_weights(diffusers, write_variant(DIFFUSERS, "lora_peft_unet.safetensors", to_peft_unet, SD_DTYPE_F32, NULL, 0),
                       "PEFT (unet.) = diffusers");
    check_same_weights(diffusers, write_variant(DIFFUSERS, "lora_linear_layer.safetensors", to_linear_layer, SD_DTYPE_F32, NULL, 0),
                       "lora_linear_layer = diffusers");
    check_same_weights(diffusers, write_variant(DIFFUSERS, "lora_processor.safetensors", to_processor, SD_DTYPE_F32, NULL, 0),
                       "attention processors = diffusers");
}

/* 16-bit files: the same weights as a float32 file holding the 16-bit values (widening is exact),
 * and the UNet output still close to the golden. */
static void test_16bit_files(void) {
    static const struct {
        sd_dtype dtype;
        const char *name;
    } kinds[] = {{SD_DTYPE_F16, "fp16"}, {SD_DTYPE_BF16, "bf16"}};
    for (int i = 0; i < 2; i++) {
        char n16[64], n32[64], label[64];
        snprintf(n16, sizeof n16, "lora_kohya_%s.safetensors", kinds[i].name);
        snprintf(n32, sizeof n32, "lora_kohya_%s_as_f32.safetensors", kinds[i].name);
        const char *p16 = write_variant(KOHYA, n16, NULL, kinds[i].dtype, NULL, 0);
        /* the 16-bit file widened back: same numbers, F32 */
        char p16_rel[4096];
        snprintf(p16_rel, sizeof p16_rel, "%s", p16);
        sd_safetensors *st = NULL;
        CHECK_OK(sd_st_open(&st, p16));
        if (st) {
            CHECK(st->tensors[0].dtype == kinds[i].dtype, "%s file holds %s", kinds[i].name, sd_dtype_name(st->tensors[0].dtype));
            sd_st_close(st);
        }
        snprintf(label, sizeof label, "kohya %s file = its values in F32", kinds[i].name);
        /* write_variant reads from the reference folder; widen through a second pass by hand */
        sd_safetensors *src = NULL;
        CHECK_OK(sd_st_open(&src, p16));
        if (!src) continue;
        sd_st_entry *e = calloc((size_t)src->n_tensors, sizeof *e);
        float **bufs = calloc((size_t)src->n_tensors, sizeof *bufs);
        for (int j = 0; j < src->n_tensors; j++) {
            const sd_st_tensor *t = &src->tensors[j];
            bufs[j] = malloc((size_t)t->numel * sizeof(float) + 4);
            sd_convert_to_f32(bufs[j], sd_st_data(src, t), t->dtype, (size_t)t->numel);
            e[j] = (sd_st_entry){t->name, SD_DTYPE_F32, t->ndim, {0}, bufs[j]};
            memcpy(e[j].shape, t->shape, sizeof t->shape);
        }
        const char *p32 = check_tmp(n32);
        char p32_copy[4096];
        snprintf(p32_copy, sizeof p32_copy, "%s", p32);
        CHECK_OK(sd_st_write(p32_copy, e, src->n_tensors, NULL, NULL, 0));
        for (int j = 0; j < src->n_tensors; j++) free(bufs[j]);
        free(bufs);
        free(e);
        sd_st_close(src);
        check_same_weights(p16_rel, p32_copy, label);

        sd_model *m = NULL;
        CHECK_OK(load_model(&m, "models/tiny-sd15", NULL, SD_COMPONENT_UNET, p16_rel, 0.8f, 0));
        if (!m) continue;
        char golden[4096], out_name[64];
        snprintf(golden, sizeof golden, "%s", check_ref("golden/lora/tiny-sd15_lora_kohya_fused0.8_b4.safetensors"));
        snprintf(out_name, sizeof out_name, "lora_%s_unet.safetensors", kinds[i].name);
        const char *out = check_tmp(out_name);
        CHECK_OK(sd_model_eval_file(m, "unet", golden, out));
        double rel = check_file_rel_error(golden, out, "noise_pred");
        CHECK(rel < 1e-2, "%s LoRA: UNet output relative error %.3g", kinds[i].name, rel);
        printf("%-40s UNet output relative error %.3g\n", kinds[i].name, rel);
        sd_model_free(m);
    }
    /* a float16 model with a float32 LoRA: fused in float32, rounded once to float16 */
    sd_model *m = NULL;
    CHECK_OK(load_model(&m, "models/tiny-sd15", "fp16", SD_COMPONENT_UNET, check_ref(KOHYA), 0.8f, 0));
    if (m) {
        char golden[4096];
        snprintf(golden, sizeof golden, "%s", check_ref("golden/lora/tiny-sd15_lora_kohya_fused0.8_b4.safetensors"));
        const char *out = check_tmp("lora_fp16_model_unet.safetensors");
        CHECK_OK(sd_model_eval_file(m, "unet", golden, out));
        double rel = check_file_rel_error(golden, out, "noise_pred");
        CHECK(rel < 1e-2 && rel > 0, "fp16 model + LoRA: relative error %.3g", rel);
        printf("%-40s UNet output relative error %.3g\n", "fp16 model + F32 LoRA", rel);
        CHECK(m->unet.down[0].attentions[0].blocks[0].attn1_q.dtype == SD_DTYPE_F16, "fp16 model keeps 16-bit weights with a LoRA");
        sd_model_free(m);
    }
}

/* ---- text encoder ---- */

static int drop_all(char *out, size_t size, const char *n) {
    (void)out, (void)size, (void)n;
    return -1;
}

/* A kohya text-encoder LoRA on q_proj of layer 0: the fused weight against
 * W + scale * up @ down computed here in double (no alpha key: alpha = rank); with an alpha of 0
 * (the extra tensors' first value) the weight must stay as it was. */
static void test_text_encoder(const char *model_rel, const char *label, double limit) {
    enum { R = 2, C = 32 };
    extra_tensor t[] = {
        {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", SD_DTYPE_F32, 2, {R, C}},
        {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", SD_DTYPE_F32, 2, {C, R}},
        {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha", SD_DTYPE_F32, 0, {0}},
    };
    char name[128], name0[128];
    snprintf(name, sizeof name, "lora_te_%s.safetensors", label);
    snprintf(name0, sizeof name0, "lora_te_alpha0_%s.safetensors", label);
    const char *path = write_variant(KOHYA, name, drop_all, SD_DTYPE_F32, t, 2);
    const char *path0 = write_variant(KOHYA, name0, drop_all, SD_DTYPE_F32, t, 3);
    sd_model *base = NULL, *m = NULL, *m0 = NULL;
    CHECK_OK(load_model(&base, model_rel, NULL, SD_COMPONENT_TEXT_ENCODER, NULL, 0, 0));
    CHECK_OK(load_model(&m, model_rel, NULL, SD_COMPONENT_TEXT_ENCODER, path, 0.7f, 0));
    CHECK_OK(load_model(&m0, model_rel, NULL, SD_COMPONENT_TEXT_ENCODER, path0, 0.7f, 0));
    if (base && m && m0) {
        sd_lora_report rep;
        CHECK_OK(sd_model_lora_report(m, 0, &rep));
        CHECK(rep.text_encoder_modules == 1 && rep.unet_modules == 0, "%s: report te %d unet %d", label,
              rep.text_encoder_modules, rep.unet_modules);
        const sd_tensor *w0 = &base->text.layers[0].q_w, *w1 = &m->text.layers[0].q_w, *wa = &m0->text.layers[0].q_w;
        CHECK(w0->dtype == w1->dtype, "%s: storage type kept", label);
        static float a[C * C], b[C * C], z[C * C];
        sd_convert_to_f32(a, w0->data, w0->dtype, C * C);
        sd_convert_to_f32(b, w1->data, w1->dtype, C * C);
        sd_convert_to_f32(z, wa->data, wa->dtype, C * C);
        CHECK(memcmp(a, z, sizeof a) == 0, "%s: alpha 0 must leave q_proj unchanged", label);
        float down[R * C], up[C * R]; /* write_variant's fill: 0.01 * (j % 7) */
        for (int j = 0; j < R * C; j++) down[j] = up[j] = 0.01f * (float)(j % 7);
        double err = 0.0, norm = 0.0, delta = 0.0;
        for (int i = 0; i < C; i++)
            for (int j = 0; j < C; j++) {
                double d = 0;
                for (int k = 0; k < R; k++) d += (double)up[i * R + k] * down[k * C + j];
                double want = a[i * C + j] + 0.7 * d;
                err += (b[i * C + j] - want) * (b[i * C + j] - want);
                norm += want * want;
                delta += d * d;
            }
        double rel = sqrt(err / norm);
        CHECK(rel < limit && delta > 0, "%s: fused q_proj relative error %.3g (limit %g)", label, rel, limit);
        printf("%-40s fused q_proj relative error %.3g\n", label, rel);
    }
    sd_model_free(base);
    sd_model_free(m);
    sd_model_free(m0);
}

/* ---- errors ---- */

static void expect_error(const char *path, int allow_unused, sd_status want, const char *const *mentions, const char *label) {
    sd_model *m = NULL;
    sd_status st = load_model(&m, "models/tiny-sd15", NULL, SD_COMPONENT_UNET | SD_COMPONENT_TEXT_ENCODER, path, 1.0f,
                              allow_unused);
    CHECK(st == want && m == NULL, "%s: status %s (want %s), model %p", label, sd_status_name(st), sd_status_name(want),
          (void *)m);
    const char *msg = sd_last_error();
    for (int i = 0; mentions[i]; i++) CHECK(strstr(msg, mentions[i]) != NULL, "%s: message lacks '%s': %s", label, mentions[i], msg);
    printf("%-40s %s\n", label, msg);
    sd_model_free(m);
}

#define MENTIONS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_errors(void) {
    /* a model file is no LoRA */
    const char *unet_file = check_ref("models/tiny-sd15/unet/diffusion_pytorch_model.safetensors");
    expect_error(unet_file, 0, SD_ERR_UNSUPPORTED, MENTIONS(unet_file, "no LoRA tensors"), "no LoRA tensors");
    expect_error(check_tmp("no_such_lora.safetensors"), 0, SD_ERR_NOT_FOUND, MENTIONS("no_such_lora.safetensors"), "missing file");

    extra_tensor unknown[] = {{"foo.bar", SD_DTYPE_F32, 2, {2, 2}}};
    const char *p = write_variant(KOHYA, "lora_unknown_key.safetensors", NULL, SD_DTYPE_F32, unknown, 1);
    expect_error(p, 0, SD_ERR_UNSUPPORTED, MENTIONS(p, "'foo.bar'", "1 of 775 keys"), "unknown key");

    extra_tensor missing[] = {{"lora_unet_down_blocks_9_resnets_0_conv1.lora_down.weight", SD_DTYPE_F32, 2, {4, 8}},
                              {"lora_unet_down_blocks_9_resnets_0_conv1.lora_up.weight", SD_DTYPE_F32, 2, {8, 4}}};
    const char *p2 = write_variant(KOHYA, "lora_missing_module.safetensors", NULL, SD_DTYPE_F32, missing, 2);
    expect_error(p2, 0, SD_ERR_UNSUPPORTED,
                 MENTIONS(p2, "1 of 259 modules match no weight", "lora_unet_down_blocks_9_resnets_0_conv1.lora_down.weight"),
                 "module the model lacks");

    /* the same two with allow_unused: loaded, counted */
    sd_model *m = NULL;
    CHECK_OK(load_model(&m, "models/tiny-sd15", NULL, SD_COMPONENT_UNET, p, 1.0f, 1));
    sd_lora_report r = {0};
    if (m) CHECK_OK(sd_model_lora_report(m, 0, &r));
    CHECK(r.skipped_keys == 1 && r.unet_modules == 258, "allow_unused unknown key: skipped %d, modules %d", r.skipped_keys, r.unet_modules);
    sd_model_free(m);
    m = NULL;
    CHECK_OK(load_model(&m, "models/tiny-sd15", NULL, SD_COMPONENT_UNET, p2, 1.0f, 1));
    memset(&r, 0, sizeof r);
    if (m) CHECK_OK(sd_model_lora_report(m, 0, &r));
    CHECK(r.skipped_keys == 2 && r.unet_modules == 258, "allow_unused missing module: skipped %d, modules %d", r.skipped_keys, r.unet_modules);
    sd_model_free(m);

    /* SDXL: its second text encoder, and its UNet (LDM names) */
    extra_tensor te2[] = {{"lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", SD_DTYPE_F32, 2, {4, 1280}}};
    const char *p3 = write_variant(KOHYA, "lora_sdxl_te2.safetensors", drop_all, SD_DTYPE_F32, te2, 1);
    expect_error(p3, 0, SD_ERR_UNSUPPORTED, MENTIONS(p3, "SDXL", "lora_te2_"), "SDXL LoRA (te2)");
    extra_tensor sdxl_unet[] = {{"lora_unet_input_blocks_4_1_proj_in.lora_down.weight", SD_DTYPE_F32, 2, {4, 640}},
                                {"lora_unet_input_blocks_4_1_proj_in.lora_up.weight", SD_DTYPE_F32, 2, {640, 4}},
                                {"lora_unet_input_blocks_4_1_proj_in.alpha", SD_DTYPE_F32, 0, {0}}};
    const char *p4 = write_variant(KOHYA, "lora_sdxl_unet.safetensors", drop_all, SD_DTYPE_F32, sdxl_unet, 3);
    expect_error(p4, 0, SD_ERR_UNSUPPORTED, MENTIONS(p4, "lora_unet_input_blocks_4_1_proj_in.lora_down.weight"),
                 "SDXL UNet LoRA (LDM names)");

    /* rank mismatch inside a module; a module that does not fit its weight */
    extra_tensor rank[] = {{"lora_unet_conv_in.lora_down.weight", SD_DTYPE_F32, 4, {4, 4, 3, 3}},
                           {"lora_unet_conv_in.lora_up.weight", SD_DTYPE_F32, 4, {32, 8, 1, 1}}};
    const char *p5 = write_variant(KOHYA, "lora_rank.safetensors", drop_all, SD_DTYPE_F32, rank, 2);
    expect_error(p5, 0, SD_ERR_FORMAT, MENTIONS(p5, "rank mismatch", "lora_unet_conv_in.lora_up.weight", "[32, 8, 1, 1]"),
                 "rank mismatch");
    extra_tensor shape[] = {{"unet.conv_in.lora.down.weight", SD_DTYPE_F32, 4, {4, 5, 3, 3}},
                            {"unet.conv_in.lora.up.weight", SD_DTYPE_F32, 4, {32, 4, 1, 1}}};
    const char *p6 = write_variant(KOHYA, "lora_shape.safetensors", drop_all, SD_DTYPE_F32, shape, 2);
    expect_error(p6, 0, SD_ERR_FORMAT, MENTIONS(p6, "do not fit weight 'conv_in.weight'", "[4, 5, 3, 3]", "[32, 4, 3, 3]"),
                 "shape mismatch");
    extra_tensor half[] = {{"unet.conv_in.lora.down.weight", SD_DTYPE_F32, 4, {4, 4, 3, 3}}};
    const char *p7 = write_variant(KOHYA, "lora_half.safetensors", drop_all, SD_DTYPE_F32, half, 1);
    expect_error(p7, 0, SD_ERR_FORMAT, MENTIONS(p7, "no up partner", "unet.conv_in.lora.down.weight"), "down without up");
    extra_tensor twice[] = {{"unet.conv_in.lora.down.weight", SD_DTYPE_F32, 4, {4, 4, 3, 3}},
                            {"unet.conv_in.lora_A.weight", SD_DTYPE_F32, 4, {4, 4, 3, 3}},
                            {"unet.conv_in.lora.up.weight", SD_DTYPE_F32, 4, {32, 4, 1, 1}}};
    const char *p8 = write_variant(KOHYA, "lora_twice.safetensors", drop_all, SD_DTYPE_F32, twice, 3);
    expect_error(p8, 0, SD_ERR_FORMAT, MENTIONS(p8, "two down tensors"), "one module twice");
    extra_tensor ints[] = {{"unet.conv_in.lora.down.weight", SD_DTYPE_I32, 4, {4, 4, 3, 3}},
                           {"unet.conv_in.lora.up.weight", SD_DTYPE_F32, 4, {32, 4, 1, 1}}};
    const char *p9 = write_variant(KOHYA, "lora_ints.safetensors", drop_all, SD_DTYPE_F32, ints, 2);
    expect_error(p9, 0, SD_ERR_FORMAT, MENTIONS(p9, "I32", "unet.conv_in.lora.down.weight"), "integer LoRA tensor");

    /* API misuse */
    sd_model_params mp = sd_model_params_default();
    mp.path = check_ref("models/tiny-sd15");
    mp.n_loras = 1;
    sd_model *none = NULL;
    CHECK(sd_model_load(&none, &mp) == SD_ERR_ARG && strstr(sd_last_error(), "n_loras"), "n_loras without loras: %s",
          sd_last_error());
    CHECK(sd_model_lora_report(NULL, 0, &r) == SD_ERR_ARG, "report of NULL model");
}

/* A text-encoder module with only the UNet loaded is not applied and not an error. */
static void test_unloaded_component(void) {
    extra_tensor t[] = {{"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", SD_DTYPE_F32, 2, {2, 32}},
                        {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", SD_DTYPE_F32, 2, {32, 2}}};
    const char *p = write_variant(KOHYA, "lora_unet_and_te.safetensors", NULL, SD_DTYPE_F32, t, 2);
    sd_model *m = NULL;
    CHECK_OK(load_model(&m, "models/tiny-sd15", NULL, SD_COMPONENT_UNET, p, 1.0f, 0));
    sd_lora_report r = {0};
    if (m) CHECK_OK(sd_model_lora_report(m, 0, &r));
    CHECK(r.unet_modules == 258 && r.unloaded_modules == 1 && r.skipped_keys == 0, "unloaded te: %d %d %d", r.unet_modules,
          r.unloaded_modules, r.skipped_keys);
    sd_model_free(m);
}

static void test_parse_spec(void) {
    static const struct {
        const char *spec, *path;
        float scale;
    } ok[] = {{"a.safetensors:0.8", "a.safetensors", 0.8f}, {"a.safetensors", "a.safetensors", 1.0f},
              {"dir:x/a.safetensors", "dir:x/a.safetensors", 1.0f}, {"a:b:0.5", "a:b", 0.5f},
              {"lcm.safetensors:-1", "lcm.safetensors", -1.0f}, {"a.safetensors:nan", "a.safetensors:nan", 1.0f},
              {"a.safetensors:", "a.safetensors:", 1.0f}, {"a:1e-3", "a", 1e-3f}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char path[64] = "";
        float scale = 0;
        CHECK_OK(sd_lora_parse_spec(ok[i].spec, path, sizeof path, &scale));
        CHECK(strcmp(path, ok[i].path) == 0 && scale == ok[i].scale, "'%s' -> '%s' %g", ok[i].spec, path, (double)scale);
    }
    char path[8];
    float scale;
    CHECK(sd_lora_parse_spec("", path, sizeof path, &scale) == SD_ERR_ARG, "empty spec");
    CHECK(sd_lora_parse_spec(":0.5", path, sizeof path, &scale) == SD_ERR_ARG && strstr(sd_last_error(), "no path"),
          "':0.5': %s", sd_last_error());
    CHECK(sd_lora_parse_spec("much_too_long.safetensors", path, sizeof path, &scale) == SD_ERR_LIMIT, "long path");
}

/* The CLI: eval with --lora matches the golden; --lora-report prints the counts; errors exit 1. */
static void test_cli(void) {
    char cmd[16384], out[8192];
    const char *bin = getenv("SD_BIN") ? getenv("SD_BIN") : SD_BIN_DEFAULT;
    char golden[4096], model[4096], lora[4096];
    snprintf(golden, sizeof golden, "%s", check_ref("golden/lora/tiny-sd15_lora_kohya_fused0.8_b4.safetensors"));
    snprintf(model, sizeof model, "%s", check_ref("models/tiny-sd15"));
    snprintf(lora, sizeof lora, "%s", check_ref(KOHYA));
    const char *result = check_tmp("lora_cli_unet.safetensors");
    snprintf(cmd, sizeof cmd, "%s eval --model %s --component unet --input %s --output %s --lora %s:0.8 --lora-report", bin,
             model, golden, result, lora);
    int rc = check_run(cmd, out, sizeof out);
    CHECK(rc == 0, "eval --lora: exit %d: %s", rc, out);
    CHECK(strstr(out, "258 UNet modules, 0 text encoder modules, 0 keys skipped") != NULL, "--lora-report: %s", out);
    double rel = check_file_rel_error(golden, result, "noise_pred");
    CHECK(rel < 1e-4, "sdstream eval --lora: relative error %.3g", rel);
    printf("%-40s UNet output relative error %.3g\n", "sdstream eval --lora kohya:0.8", rel);
    /* --dtype bf16: the fused weights rounded once to bfloat16 (the 16-bit path of the fuse) */
    snprintf(cmd, sizeof cmd, "%s eval --model %s --component unet --input %s --output %s --lora %s:0.8 --dtype bf16", bin,
             model, golden, result, lora);
    rc = check_run(cmd, out, sizeof out);
    CHECK(rc == 0, "eval --lora --dtype bf16: exit %d: %s", rc, out);
    rel = check_file_rel_error(golden, result, "noise_pred");
    CHECK(rel < 1e-2 && rel > 0, "sdstream eval --lora --dtype bf16: relative error %.3g (bf16 limit 1e-2)", rel);
    printf("%-40s UNet output relative error %.3g\n", "sdstream eval --lora kohya:0.8 --dtype bf16", rel);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --component unet --input %s --output %s --lora %s", bin, model, golden,
             result, check_ref("models/tiny-sd15/unet/config.json"));
    rc = check_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "config.json"), "eval --lora config.json: exit %d: %s", rc, out);
}

int main(void) {
    test_parse_spec();
    test_fused_weights(KOHYA, "golden/lora/tiny-sd15_lora_kohya_fused0.8_b4.safetensors", "kohya");
    test_fused_weights(DIFFUSERS, "golden/lora/tiny-sd15_lora_diffusers_fused0.8_b4.safetensors", "diffusers");
    test_unet_output(KOHYA, "golden/lora/tiny-sd15_lora_kohya_fused0.8_b4.safetensors", "kohya");
    test_unet_output(DIFFUSERS, "golden/lora/tiny-sd15_lora_diffusers_fused0.8_b4.safetensors", "diffusers");
    test_other_names();
    test_16bit_files();
    test_text_encoder("models/tiny-sd15", "sd15 text encoder", 1e-6);
    /* OpenCLIP layout, q_proj a row slice of in_proj_weight, float16 storage */
    test_text_encoder("models/tiny-sd21.safetensors", "sd21 single-file text encoder", 1e-3);
    test_unloaded_component();
    test_errors();
    test_cli();
    return check_finish();
}
