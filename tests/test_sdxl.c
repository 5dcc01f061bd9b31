/* test_sdxl.c — SDXL components against golden/sdxl (shared/reference README §2.8): both text
 * encoders (last and penultimate hidden states, the projected pooled embedding) through `eval`,
 * encode_prompt (both tokenizers, the two penultimate states side by side, the pooled embedding)
 * with a negative prompt and without one (force_zeros_for_empty_prompt: exact zeros), the time_ids
 * a stream gives its rows, the UNet with text_embeds and time_ids different per row, and a
 * single-file SDXL checkpoint (conditioner.embedders.0/1.*, OpenCLIP layout for the second
 * encoder) written here from the diffusers folder. The stream cases are in test_stream.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/safetensors.h"
#include "check.h"
#include "model/unet.h"
#include "stream/stream_internal.h"

static const char *k_text = "golden/sdxl/tiny-sdxl_text.safetensors";
static const char *k_unet = "golden/sdxl/tiny-sdxl_unet_b3_12x16.safetensors";

/* rel error of tensor got_name in got_path against ref_name in ref_path (same element count). */
static void compare(const char *label, const char *ref_path, const char *ref_name, const char *got_path,
                    const char *got_name, double limit) {
    limit = check_tol(limit);
    sd_safetensors *ref = NULL, *got = NULL;
    CHECK_OK(sd_st_open(&ref, ref_path));
    CHECK_OK(sd_st_open(&got, got_path));
    const sd_st_tensor *r = ref ? sd_st_find(ref, ref_name) : NULL, *g = got ? sd_st_find(got, got_name) : NULL;
    CHECK(r && g && r->numel == g->numel, "%s: %s and %s present with the same size", label, ref_name, got_name);
    if (r && g && r->numel == g->numel) {
        float *a = malloc((size_t)r->numel * sizeof *a), *b = malloc((size_t)r->numel * sizeof *b);
        CHECK_OK(sd_st_read_f32(ref, ref_name, a, r->ndim, r->shape));
        CHECK_OK(sd_st_read_f32(got, got_name, b, g->ndim, g->shape));
        double rel = check_rel_error(b, a, (size_t)r->numel);
        CHECK(rel < limit, "%s: relative error %.3g (limit %g)", label, rel, limit);
        printf("%-44s relative error %.3g, max abs %.3g\n", label, rel, check_max_abs_diff(b, a, (size_t)r->numel));
        free(a);
        free(b);
    }
    sd_st_close(ref);
    sd_st_close(got);
}

static void compare_host(const char *label, const float *got, const char *ref_name, size_t n, double limit) {
    limit = check_tol(limit);
    sd_safetensors *g = NULL;
    CHECK_OK(sd_st_open(&g, check_ref(k_text)));
    const sd_st_tensor *t = g ? sd_st_find(g, ref_name) : NULL;
    CHECK(t && (size_t)t->numel == n, "%s: golden %s has %zu values", label, ref_name, n);
    if (t && (size_t)t->numel == n) {
        float *ref = malloc(n * sizeof *ref);
        CHECK_OK(sd_st_read_f32(g, ref_name, ref, t->ndim, t->shape));
        double rel = check_rel_error(got, ref, n), abs = check_max_abs_diff(got, ref, n);
        /* an all-zero golden (force_zeros_for_empty_prompt) has no relative error: exact zeros */
        double scale = 0.0;
        for (size_t i = 0; i < n; i++) scale += ref[i] * ref[i];
        if (scale == 0.0) CHECK(abs == 0.0, "%s: exact zeros expected, max abs %.3g", label, abs);
        else CHECK(rel < limit, "%s: relative error %.3g (limit %g)", label, rel, limit);
        printf("%-44s relative error %.3g, max abs %.3g%s\n", label, scale == 0.0 ? 0.0 : rel, abs,
               scale == 0.0 ? " (zeros)" : "");
        free(ref);
    }
    sd_st_close(g);
}

/* A file holding the golden's `name` as input_ids (what `eval text_encoder[_2]` reads). */
static const char *ids_file(const char *name, const char *out_name) {
    sd_safetensors *g = NULL;
    CHECK_OK(sd_st_open(&g, check_ref(k_text)));
    const sd_st_tensor *t = g ? sd_st_find(g, name) : NULL;
    const char *out = check_tmp(out_name);
    if (t) {
        sd_st_entry e = {"input_ids", t->dtype, t->ndim, {t->shape[0], t->shape[1]}, sd_st_data(g, t)};
        CHECK_OK(sd_st_write(out, &e, 1, NULL, NULL, 0));
    }
    sd_st_close(g);
    return out;
}

static void text_encoders(sd_model *m, const char *label) {
    char in1[4096], in2[4096], out[4096], lbl[128];
    snprintf(in1, sizeof in1, "%s", ids_file("te1.input_ids", "sdxl_te1_ids.safetensors"));
    snprintf(in2, sizeof in2, "%s", ids_file("te2.input_ids", "sdxl_te2_ids.safetensors"));
    snprintf(out, sizeof out, "%s", check_tmp("sdxl_te1_out.safetensors"));
    CHECK_OK(sd_model_eval_file(m, "text_encoder", in1, out));
    snprintf(lbl, sizeof lbl, "%s te1 last_hidden_state", label);
    compare(lbl, check_ref(k_text), "te1.last_hidden_state", out, "last_hidden_state", 1e-4);
    snprintf(lbl, sizeof lbl, "%s te1 penultimate", label);
    compare(lbl, check_ref(k_text), "te1.penultimate_hidden_state", out, "penultimate_hidden_state", 1e-4);
    snprintf(out, sizeof out, "%s", check_tmp("sdxl_te2_out.safetensors"));
    CHECK_OK(sd_model_eval_file(m, "text_encoder_2", in2, out));
    snprintf(lbl, sizeof lbl, "%s te2 penultimate", label);
    compare(lbl, check_ref(k_text), "te2.penultimate_hidden_state", out, "penultimate_hidden_state", 1e-4);
    snprintf(lbl, sizeof lbl, "%s te2 text_embeds", label);
    compare(lbl, check_ref(k_text), "te2.text_embeds", out, "text_embeds", 1e-4);
}

static void unet(sd_model *m, const char *label) {
    char out[4096], lbl[128];
    snprintf(out, sizeof out, "%s", check_tmp("sdxl_unet_out.safetensors"));
    CHECK_OK(sd_model_eval_file(m, "unet", check_ref(k_unet), out));
    snprintf(lbl, sizeof lbl, "%s unet b3 12x16", label);
    compare(lbl, check_ref(k_unet), "noise_pred", out, "noise_pred", 1e-4);
}

static void prompts(sd_model *m) {
    sd_safetensors *g = NULL;
    CHECK_OK(sd_st_open(&g, check_ref(k_text)));
    if (!g) return;
    cJSON *list = cJSON_Parse(sd_st_metadata(g, "prompts"));
    CHECK(cJSON_GetArraySize(list) == 6, "six prompts in the golden's metadata");
    /* tokenizer 1 on every prompt (tokenizer 2 shows in the encode_prompt results below) */
    const sd_st_tensor *ids_t = sd_st_find(g, "te1.input_ids");
    for (int i = 0; ids_t && i < 6; i++) {
        int32_t ids[SD_TOKENS];
        CHECK_OK(sd_model_tokenize(m, cJSON_GetArrayItem(list, i)->valuestring, ids));
        int64_t want[SD_TOKENS];
        memcpy(want, (const int64_t *)sd_st_data(g, ids_t) + i * SD_TOKENS, sizeof want);
        int same = 1;
        for (int t = 0; t < SD_TOKENS; t++) same &= ids[t] == want[t];
        CHECK(same, "tokenizer ids of prompt %d", i);
    }
    const int C = sd_model_text_hidden_size(m), P = sd_model_text_pooled_size(m);
    CHECK(C == 80 && P == 40, "SDXL widths: prompt %d (80 = 32 + 48), pooled %d (40)", C, P);
    float *emb = malloc((size_t)SD_TOKENS * 80 * sizeof *emb), pooled[40];
    const char *prompt = cJSON_GetArrayItem(list, 0)->valuestring, *neg = cJSON_GetArrayItem(list, 5)->valuestring;
    CHECK_OK(sd_model_encode_prompt(m, prompt, emb, SD_TOKENS * 80));
    compare_host("encode_prompt prompt_embeds", emb, "encode_prompt.neg.prompt_embeds", SD_TOKENS * 80, 1e-4);
    CHECK_OK(sd_model_encode_prompt_pooled(m, prompt, pooled, 40));
    compare_host("encode_prompt pooled_prompt_embeds", pooled, "encode_prompt.neg.pooled_prompt_embeds", 40, 1e-4);
    CHECK_OK(sd_model_encode_prompt(m, neg, emb, SD_TOKENS * 80));
    compare_host("encode_prompt negative_prompt_embeds", emb, "encode_prompt.neg.negative_prompt_embeds", SD_TOKENS * 80, 1e-4);
    CHECK_OK(sd_model_encode_prompt_pooled(m, neg, pooled, 40));
    compare_host("encode_prompt negative_pooled", pooled, "encode_prompt.neg.negative_pooled_prompt_embeds", 40, 1e-4);
    CHECK(sd_model_encode_prompt_pooled(m, prompt, pooled, 39) == SD_ERR_ARG, "too small a pooled buffer is refused");

    /* no negative prompt: a stream with CFG arranges zeros (force_zeros_for_empty_prompt) */
    sd_stream_params sp = sd_stream_params_default();
    sp.height = 96;
    sp.width = 128;
    sp.n_t_index = 1;
    sp.t_index_list[0] = 32;
    sp.cfg_type = SD_CFG_FULL;
    sp.guidance_scale = 1.5f;
    sd_stream *s = NULL;
    CHECK_OK(sd_stream_create(&s, m, &sp));
    if (s) {
        CHECK_OK(sd_stream_set_prompt(s, prompt, NULL));
        sd_backend_download(m->backend, emb, &s->uncond_embed);
        compare_host("negnone negative_prompt_embeds", emb, "encode_prompt.negnone.negative_prompt_embeds", SD_TOKENS * 80, 1e-4);
        compare_host("negnone negative_pooled", s->uncond_pooled, "encode_prompt.negnone.negative_pooled_prompt_embeds", 40, 1e-4);
        sd_backend_download(m->backend, emb, &s->cond_embed);
        compare_host("negnone prompt_embeds", emb, "encode_prompt.negnone.prompt_embeds", SD_TOKENS * 80, 1e-4);
        compare_host("negnone pooled", s->cond_pooled, "encode_prompt.negnone.pooled_prompt_embeds", 40, 1e-4);
        /* full CFG: row 0 unconditional (zeros pooled), row 1 the prompt's; time_ids per row */
        CHECK(s->prompt_rows == 2, "full CFG arranges 2 rows, got %d", s->prompt_rows);
        compare_host("row 0 pooled (unconditional)", s->pooled_rows, "encode_prompt.negnone.negative_pooled_prompt_embeds", 40, 0);
        compare_host("row 1 pooled (prompt)", s->pooled_rows + 40, "encode_prompt.negnone.pooled_prompt_embeds", 40, 1e-6);
        compare_host("time_ids (96 x 128)", s->time_id_rows, "encode_prompt.time_ids", 6, 1e-7);
        compare_host("time_ids row 1", s->time_id_rows + 6, "encode_prompt.time_ids", 6, 1e-7);
        sd_stream_free(s);
    }
    free(emb);
    cJSON_Delete(list);
    sd_st_close(g);
}

/* ---- a single-file SDXL checkpoint from the diffusers folder ---- */

typedef struct entries {
    sd_st_entry e[1024];
    char names[1024][192];
    void *owned[256];
    int n, n_owned;
} entries;

static void add(entries *es, const char *name, const sd_st_tensor *t, const void *data) {
    if (es->n >= 1024) return;
    snprintf(es->names[es->n], sizeof es->names[0], "%s", name);
    sd_st_entry *e = &es->e[es->n++];
    *e = (sd_st_entry){es->names[es->n - 1], t->dtype, t->ndim, {0}, data};
    for (int d = 0; d < t->ndim; d++) e->shape[d] = t->shape[d];
}

/* transformers CLIPTextModelWithProjection -> OpenCLIP keys (open_clip's text tower in SDXL's
 * conditioner.embedders.1.model.): q/k/v fused into in_proj, text_projection transposed. */
static void add_openclip(entries *es, const sd_safetensors *f) {
    const char *P = "conditioner.embedders.1.model.";
    char key[256];
    for (int i = 0; i < f->n_tensors; i++) {
        const sd_st_tensor *t = &f->tensors[i];
        const char *n = t->name;
        int layer, used = 0;
        static const char *const ren[][2] = {{"layer_norm1.", "ln_1."}, {"layer_norm2.", "ln_2."}, {"mlp.fc1.", "mlp.c_fc."},
                                             {"mlp.fc2.", "mlp.c_proj."}, {"self_attn.out_proj.", "attn.out_proj."}};
        if (strcmp(n, "text_model.embeddings.token_embedding.weight") == 0) snprintf(key, sizeof key, "%stoken_embedding.weight", P);
        else if (strcmp(n, "text_model.embeddings.position_embedding.weight") == 0) snprintf(key, sizeof key, "%spositional_embedding", P);
        else if (strncmp(n, "text_model.final_layer_norm.", 28) == 0) snprintf(key, sizeof key, "%sln_final.%s", P, n + 28);
        else if (strcmp(n, "text_projection.weight") == 0) {
            int64_t r = t->shape[0], c = t->shape[1];
            float *tr = malloc((size_t)(r * c) * sizeof *tr);
            const float *src = sd_st_data(f, t);
            for (int64_t a = 0; a < r; a++)
                for (int64_t b = 0; b < c; b++) tr[b * r + a] = src[a * c + b];
            es->owned[es->n_owned++] = tr;
            sd_st_tensor tt = *t;
            tt.shape[0] = c, tt.shape[1] = r;
            snprintf(key, sizeof key, "%stext_projection", P);
            add(es, key, &tt, tr);
            continue;
        } else if (sscanf(n, "text_model.encoder.layers.%d.%n", &layer, &used) == 1 && used) {
            const char *rest = n + used;
            if (strncmp(rest, "self_attn.q_proj.", 17) == 0) { /* q, k, v -> in_proj_{weight,bias} rows */
                const char *kind = rest + 17; /* "weight" or "bias" */
                char kn[256], vn[256];
                snprintf(kn, sizeof kn, "text_model.encoder.layers.%d.self_attn.k_proj.%s", layer, kind);
                snprintf(vn, sizeof vn, "text_model.encoder.layers.%d.self_attn.v_proj.%s", layer, kind);
                size_t part = (size_t)t->numel;
                float *fused = malloc(3 * part * sizeof *fused);
                memcpy(fused, sd_st_data(f, t), part * sizeof *fused);
                memcpy(fused + part, sd_st_data(f, sd_st_find(f, kn)), part * sizeof *fused);
                memcpy(fused + 2 * part, sd_st_data(f, sd_st_find(f, vn)), part * sizeof *fused);
                es->owned[es->n_owned++] = fused;
                sd_st_tensor ft = *t;
                ft.shape[0] *= 3;
                snprintf(key, sizeof key, "%stransformer.resblocks.%d.attn.in_proj_%s", P, layer, kind);
                add(es, key, &ft, fused);
                continue;
            }
            if (strncmp(rest, "self_attn.k_proj.", 17) == 0 || strncmp(rest, "self_attn.v_proj.", 17) == 0) continue;
            key[0] = '\0';
            for (size_t k = 0; k < sizeof ren / sizeof ren[0]; k++)
                if (strncmp(rest, ren[k][0], strlen(ren[k][0])) == 0)
                    snprintf(key, sizeof key, "%stransformer.resblocks.%d.%s%s", P, layer, ren[k][1], rest + strlen(ren[k][0]));
            CHECK(key[0], "text_encoder_2 key %s has an OpenCLIP name", n);
            if (!key[0]) continue;
        } else {
            CHECK(0, "text_encoder_2 key %s not converted", n);
            continue;
        }
        add(es, key, t, sd_st_data(f, t));
    }
}

static const char *write_single_file(void) {
    const char *out = check_tmp("tiny-sdxl-single.safetensors");
    char path[4096];
    sd_safetensors *te1 = NULL, *te2 = NULL, *un = NULL;
    snprintf(path, sizeof path, "%s", check_ref("models/tiny-sdxl/text_encoder/model.safetensors"));
    CHECK_OK(sd_st_open(&te1, path));
    snprintf(path, sizeof path, "%s", check_ref("models/tiny-sdxl/text_encoder_2/model.safetensors"));
    CHECK_OK(sd_st_open(&te2, path));
    snprintf(path, sizeof path, "%s", check_ref("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors"));
    CHECK_OK(sd_st_open(&un, path));
    sd_config json;
    sd_unet_config cfg;
    snprintf(path, sizeof path, "%s", check_ref("models/tiny-sdxl/unet/config.json"));
    CHECK_OK(sd_config_load(&json, path));
    CHECK_OK(sd_unet_config_read(&cfg, &json));
    sd_config_free(&json);
    entries *es = calloc(1, sizeof *es);
    char key[256];
    for (int i = 0; te1 && i < te1->n_tensors; i++) {
        snprintf(key, sizeof key, "conditioner.embedders.0.transformer.%s", te1->tensors[i].name);
        add(es, key, &te1->tensors[i], sd_st_data(te1, &te1->tensors[i]));
    }
    if (te2) add_openclip(es, te2);
    for (int i = 0; un && i < un->n_tensors; i++) {
        sd_key_ref ref = {0};
        int ok = sd_unet_ldm_key(un->tensors[i].name, &ref, &cfg) == 0;
        CHECK(ok, "UNet key %s has an LDM name", un->tensors[i].name);
        snprintf(key, sizeof key, "model.diffusion_model.%s", ref.key);
        if (ok) add(es, key, &un->tensors[i], sd_st_data(un, &un->tensors[i]));
    }
    CHECK_OK(sd_st_write(out, es->e, es->n, NULL, NULL, 0));
    for (int i = 0; i < es->n_owned; i++) free(es->owned[i]);
    free(es);
    sd_st_close(te1);
    sd_st_close(te2);
    sd_st_close(un);
    return out;
}

int main(void) {
    sd_model_params p = sd_model_params_default();
    char model[4096];
    snprintf(model, sizeof model, "%s", check_ref("models/tiny-sdxl"));
    p.path = model;
    sd_model *m = NULL;
    CHECK_OK(sd_model_load(&m, &p));
    if (m) {
        CHECK(strncmp(sd_model_describe(m), "SDXL diffusers folder", 21) == 0, "describe says SDXL: %s", sd_model_describe(m));
        text_encoders(m, "folder");
        unet(m, "folder");
        prompts(m);
        /* an SDXL UNet without its added conditioning is an error naming it */
        sd_safetensors *g = NULL;
        CHECK_OK(sd_st_open(&g, check_ref(k_unet)));
        static const char *keep[] = {"sample", "timestep", "encoder_hidden_states"};
        sd_st_entry e[3];
        for (int i = 0; g && i < 3; i++) {
            const sd_st_tensor *t = sd_st_find(g, keep[i]);
            e[i] = (sd_st_entry){keep[i], t->dtype, t->ndim, {0}, sd_st_data(g, t)};
            for (int d = 0; d < t->ndim; d++) e[i].shape[d] = t->shape[d];
        }
        const char *in = check_tmp("sdxl_no_added.safetensors");
        if (g) CHECK_OK(sd_st_write(in, e, 3, NULL, NULL, 0));
        CHECK(sd_model_eval_file(m, "unet", in, check_tmp("sdxl_x.safetensors")) == SD_ERR_NOT_FOUND &&
                  strstr(sd_last_error(), "text_embeds") && strstr(sd_last_error(), "[3, 40]"),
              "unet input without text_embeds: %s", sd_last_error());
        sd_st_close(g);
        sd_model_free(m);
    }

    /* single file: conditioner.embedders.*, configs from the folder (tiny widths: heads unknown) */
    char single[4096];
    snprintf(single, sizeof single, "%s", write_single_file());
    p.path = single;
    p.config_dir = model;
    p.components = SD_COMPONENT_TEXT_ENCODER | SD_COMPONENT_UNET | SD_COMPONENT_TOKENIZER;
    m = NULL;
    CHECK_OK(sd_model_load(&m, &p));
    if (m) {
        CHECK(strncmp(sd_model_describe(m), "SDXL single-file", 16) == 0, "describe: %s", sd_model_describe(m));
        text_encoders(m, "single");
        unet(m, "single");
        sd_model_free(m);
    }
    return check_finish();
}
