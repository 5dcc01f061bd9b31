/* clip_text.c — see clip_text.h. */
#include "model/clip_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CLIP_HEAD_DIM = 64, CLIP_MAX_LAYERS = 64 };

sd_status sd_clip_text_config_read(sd_clip_text_config *cfg, const sd_config *json) {
    return sd_clip_text_config_read_projection(cfg, json, false);
}

sd_status sd_clip_text_config_read_projection(sd_clip_text_config *cfg, const sd_config *json, bool with_projection) {
    memset(cfg, 0, sizeof *cfg);
    if (with_projection) {
        long proj;
        SD_TRY(sd_config_int(json, "projection_dim", 1, 1 << 14, 512, &proj));
        cfg->projection_dim = (int)proj;
    }
    long vocab, hidden, layers, heads, inter, positions;
    double eps;
    const char *act = NULL;
    SD_TRY(sd_config_int(json, "vocab_size", 1, 1 << 20, 49408, &vocab));
    SD_TRY(sd_config_int(json, "hidden_size", 1, 1 << 14, 512, &hidden));
    SD_TRY(sd_config_int(json, "num_hidden_layers", 1, CLIP_MAX_LAYERS, 12, &layers));
    SD_TRY(sd_config_int(json, "num_attention_heads", 1, 1 << 10, 8, &heads));
    SD_TRY(sd_config_int(json, "intermediate_size", 1, 1 << 16, 2048, &inter));
    SD_TRY(sd_config_int(json, "max_position_embeddings", SD_TOKENS, 1 << 14, 77, &positions));
    SD_TRY(sd_config_double(json, "layer_norm_eps", 0.0, 1.0, 1e-5, &eps));
    SD_TRY(sd_config_string(json, "hidden_act", "quick_gelu", &act));
    if (hidden % heads != 0)
        return sd_fail(SD_ERR_FORMAT, "%s: hidden_size %ld is not a multiple of num_attention_heads %ld", json->path,
                       hidden, heads);
    if (strcmp(act, "quick_gelu") == 0) cfg->act = SD_ACT_QUICK_GELU;
    else if (strcmp(act, "gelu") == 0) cfg->act = SD_ACT_GELU;
    else return sd_fail(SD_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (expected quick_gelu or gelu)", json->path, act);
    cfg->vocab_size = (int)vocab;
    cfg->hidden_size = (int)hidden;
    cfg->n_layers = (int)layers;
    cfg->n_heads = (int)heads;
    cfg->intermediate_size = (int)inter;
    cfg->max_positions = (int)positions;
    cfg->layer_norm_eps = (float)eps;
    return SD_OK;
}

/* ---- key maps ---- */

/* OpenCLIP names for the transformers ones; q/k/v are row slices of in_proj. */
static int openclip_map(const char *name, sd_key_ref *ref, const void *ctx) {
    int64_t hidden = *(const int64_t *)ctx;
    static const struct {
        const char *hf, *oc;
    } fixed[] = {
        {"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
        {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
        {"text_model.final_layer_norm.weight", "ln_final.weight"},
        {"text_model.final_layer_norm.bias", "ln_final.bias"},
        {"text_projection.weight", "text_projection"}, /* transposed: loaded as stored, then turned */
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (strcmp(name, fixed[i].hf) == 0) {
            snprintf(ref->key, sizeof ref->key, "%s", fixed[i].oc);
            return 0;
        }
    }
    int layer, consumed = 0;
    if (sscanf(name, "text_model.encoder.layers.%d.%n", &layer, &consumed) != 1 || consumed == 0) return -1;
    const char *rest = name + consumed;
    static const struct {
        const char *hf, *oc;
        int slice; /* -1: none; 0/1/2: q/k/v rows of in_proj */
    } per_layer[] = {
        {"self_attn.q_proj.weight", "attn.in_proj_weight", 0}, {"self_attn.q_proj.bias", "attn.in_proj_bias", 0},
        {"self_attn.k_proj.weight", "attn.in_proj_weight", 1}, {"self_attn.k_proj.bias", "attn.in_proj_bias", 1},
        {"self_attn.v_proj.weight", "attn.in_proj_weight", 2}, {"self_attn.v_proj.bias", "attn.in_proj_bias", 2},
        {"self_attn.out_proj.weight", "attn.out_proj.weight", -1}, {"self_attn.out_proj.bias", "attn.out_proj.bias", -1},
        {"layer_norm1.weight", "ln_1.weight", -1}, {"layer_norm1.bias", "ln_1.bias", -1},
        {"layer_norm2.weight", "ln_2.weight", -1}, {"layer_norm2.bias", "ln_2.bias", -1},
        {"mlp.fc1.weight", "mlp.c_fc.weight", -1}, {"mlp.fc1.bias", "mlp.c_fc.bias", -1},
        {"mlp.fc2.weight", "mlp.c_proj.weight", -1}, {"mlp.fc2.bias", "mlp.c_proj.bias", -1},
    };
    for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++) {
        if (strcmp(rest, per_layer[i].hf) != 0) continue;
        snprintf(ref->key, sizeof ref->key, "transformer.resblocks.%d.%s", layer, per_layer[i].oc);
        if (per_layer[i].slice >= 0) {
            ref->row_begin = per_layer[i].slice * hidden;
            ref->rows = hidden;
        }
        return 0;
    }
    return -1;
}

static int count_layers(const sd_safetensors *file, const char *prefix, sd_clip_layout layout) {
    int n = 0;
    for (; n < CLIP_MAX_LAYERS + 1; n++) {
        char key[512];
        if (layout == SD_CLIP_LAYOUT_OPENCLIP)
            snprintf(key, sizeof key, "%stransformer.resblocks.%d.ln_1.weight", prefix, n);
        else
            snprintf(key, sizeof key, "%stext_model.encoder.layers.%d.layer_norm1.weight", prefix, n);
        if (!sd_st_find(file, key)) break;
    }
    return n;
}

sd_status sd_clip_text_config_infer(sd_clip_text_config *cfg, const sd_safetensors *file, const char *prefix,
                                    sd_clip_layout layout) {
    memset(cfg, 0, sizeof *cfg);
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix,
             layout == SD_CLIP_LAYOUT_OPENCLIP ? "token_embedding.weight" : "text_model.embeddings.token_embedding.weight");
    const sd_st_tensor *emb = sd_st_find(file, key);
    if (!emb || emb->ndim != 2)
        return sd_fail(SD_ERR_NOT_FOUND, "%s: text encoder tensor '%s' missing or not 2-D", file->path, key);
    snprintf(key, sizeof key, "%s%s", prefix,
             layout == SD_CLIP_LAYOUT_OPENCLIP ? "transformer.resblocks.0.mlp.c_fc.weight" : "text_model.encoder.layers.0.mlp.fc1.weight");
    const sd_st_tensor *fc = sd_st_find(file, key);
    if (!fc || fc->ndim != 2)
        return sd_fail(SD_ERR_NOT_FOUND, "%s: text encoder tensor '%s' missing or not 2-D", file->path, key);
    int layers = count_layers(file, prefix, layout);
    if (layers < 1 || layers > CLIP_MAX_LAYERS)
        return sd_fail(SD_ERR_FORMAT, "%s: text encoder has %d layers, expected 1..%d", file->path, layers, CLIP_MAX_LAYERS);
    int64_t hidden = emb->shape[1];
    if (hidden % CLIP_HEAD_DIM != 0)
        return sd_fail(SD_ERR_UNSUPPORTED,
                       "%s: text encoder width %lld is not a multiple of 64, so its number of heads is unknown; "
                       "pass a config folder (--config DIR with text_encoder/config.json)",
                       file->path, (long long)hidden);
    cfg->vocab_size = (int)emb->shape[0];
    cfg->hidden_size = (int)hidden;
    cfg->n_heads = (int)(hidden / CLIP_HEAD_DIM);
    cfg->intermediate_size = (int)fc->shape[0];
    cfg->max_positions = SD_TOKENS;
    cfg->layer_norm_eps = 1e-5f;
    if (layout == SD_CLIP_LAYOUT_OPENCLIP) {
        /* SD 2.x conditions on OpenCLIP's penultimate layer (v2-inference.yaml layer: penultimate);
         * diffusers' converted text encoder has one layer fewer than the checkpoint stores. */
        cfg->act = SD_ACT_GELU;
        cfg->n_layers = layers > 1 ? layers - 1 : layers;
    } else {
        cfg->act = SD_ACT_QUICK_GELU;
        cfg->n_layers = layers;
    }
    return SD_OK;
}

sd_status sd_clip_text_config_infer_sdxl(sd_clip_text_config *cfg, const sd_safetensors *file, const char *prefix,
                                         sd_clip_layout layout) {
    SD_TRY(sd_clip_text_config_infer(cfg, file, prefix, layout));
    cfg->n_layers = count_layers(file, prefix, layout);
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, layout == SD_CLIP_LAYOUT_OPENCLIP ? "text_projection" : "text_projection.weight");
    const sd_st_tensor *proj = sd_st_find(file, key);
    if (proj && proj->ndim == 2) /* OpenCLIP [hidden, proj]; transformers [proj, hidden] */
        cfg->projection_dim = (int)proj->shape[layout == SD_CLIP_LAYOUT_OPENCLIP ? 1 : 0];
    return SD_OK;
}

/* In-place transpose of a [rows, cols] matrix of any element size (OpenCLIP's text_projection). */
static sd_status transpose_in_place(sd_tensor *t) {
    size_t rows = (size_t)t->shape[0], cols = (size_t)t->shape[1], es = sd_dtype_size(t->dtype);
    uint8_t *tmp = malloc(rows * cols * es), *data = t->data;
    if (!tmp) return sd_fail(SD_ERR_NOMEM, "text_encoder: out of memory transposing text_projection");
    memcpy(tmp, data, rows * cols * es);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) memcpy(data + (c * rows + r) * es, tmp + (r * cols + c) * es, es);
    free(tmp);
    t->shape[0] = (int64_t)cols;
    t->shape[1] = (int64_t)rows;
    return SD_OK;
}

/* ---- loading ---- */

sd_status sd_clip_text_load(sd_clip_text *model, const sd_clip_text_config *cfg, const sd_safetensors *file,
                            const char *prefix, sd_clip_layout layout) {
    memset(model, 0, sizeof *model);
    model->cfg = *cfg;
    int64_t c = cfg->hidden_size, f = cfg->intermediate_size;
    sd_weight_loader ld = {
        .file = file,
        .map = layout == SD_CLIP_LAYOUT_OPENCLIP ? openclip_map : NULL,
        .map_ctx = &c,
        .prefix = prefix,
        .component = "text_encoder",
        .matrix_dtype = cfg->weight_dtype,
        .store = &model->store,
        .lora = cfg->lora,
        .lora_target = SD_LORA_TEXT_ENCODER,
    };
    model->cfg.lora = NULL;
    sd_status st = SD_OK;
#define LOAD(dst, ...)                                                                                       \
    do {                                                                                                     \
        if ((st = sd_weights_loadf(&ld, &(dst), __VA_ARGS__)) != SD_OK) goto fail;                           \
    } while (0)
    LOAD(model->token_embedding, 2, (int64_t[]){cfg->vocab_size, c}, "text_model.embeddings.token_embedding.weight");
    /* only the first 77 positions are used; a longer table is fine (checked below by slicing) */
    int64_t positions = cfg->max_positions;
    LOAD(model->position_embedding, 2, (int64_t[]){positions, c}, "text_model.embeddings.position_embedding.weight");
    model->layers = calloc((size_t)cfg->n_layers, sizeof *model->layers);
    if (!model->layers) {
        st = sd_fail(SD_ERR_NOMEM, "text_encoder: out of memory");
        goto fail;
    }
    for (int i = 0; i < cfg->n_layers; i++) {
        sd_clip_layer *l = &model->layers[i];
        const char *p = "text_model.encoder.layers";
        LOAD(l->ln1_w, 1, (int64_t[]){c}, "%s.%d.layer_norm1.weight", p, i);
        LOAD(l->ln1_b, 1, (int64_t[]){c}, "%s.%d.layer_norm1.bias", p, i);
        LOAD(l->q_w, 2, (int64_t[]){c, c}, "%s.%d.self_attn.q_proj.weight", p, i);
        LOAD(l->q_b, 1, (int64_t[]){c}, "%s.%d.self_attn.q_proj.bias", p, i);
        LOAD(l->k_w, 2, (int64_t[]){c, c}, "%s.%d.self_attn.k_proj.weight", p, i);
        LOAD(l->k_b, 1, (int64_t[]){c}, "%s.%d.self_attn.k_proj.bias", p, i);
        LOAD(l->v_w, 2, (int64_t[]){c, c}, "%s.%d.self_attn.v_proj.weight", p, i);
        LOAD(l->v_b, 1, (int64_t[]){c}, "%s.%d.self_attn.v_proj.bias", p, i);
        LOAD(l->out_w, 2, (int64_t[]){c, c}, "%s.%d.self_attn.out_proj.weight", p, i);
        LOAD(l->out_b, 1, (int64_t[]){c}, "%s.%d.self_attn.out_proj.bias", p, i);
        LOAD(l->ln2_w, 1, (int64_t[]){c}, "%s.%d.layer_norm2.weight", p, i);
        LOAD(l->ln2_b, 1, (int64_t[]){c}, "%s.%d.layer_norm2.bias", p, i);
        LOAD(l->fc1_w, 2, (int64_t[]){f, c}, "%s.%d.mlp.fc1.weight", p, i);
        LOAD(l->fc1_b, 1, (int64_t[]){f}, "%s.%d.mlp.fc1.bias", p, i);
        LOAD(l->fc2_w, 2, (int64_t[]){c, f}, "%s.%d.mlp.fc2.weight", p, i);
        LOAD(l->fc2_b, 1, (int64_t[]){c}, "%s.%d.mlp.fc2.bias", p, i);
    }
    LOAD(model->final_ln_w, 1, (int64_t[]){c}, "text_model.final_layer_norm.weight");
    LOAD(model->final_ln_b, 1, (int64_t[]){c}, "text_model.final_layer_norm.bias");
    if (cfg->projection_dim > 0) {
        int64_t p = cfg->projection_dim;
        if (layout == SD_CLIP_LAYOUT_OPENCLIP) {
            LOAD(model->text_projection, 2, (int64_t[]){c, p}, "text_projection.weight");
            if (model->text_projection.data && (st = transpose_in_place(&model->text_projection)) != SD_OK) goto fail;
        } else {
            LOAD(model->text_projection, 2, (int64_t[]){p, c}, "text_projection.weight");
        }
    }
#undef LOAD
    return SD_OK;
fail:
    sd_clip_text_free(model);
    return st;
}

void sd_clip_text_free(sd_clip_text *model) {
    if (!model) return;
    free(model->layers);
    sd_weight_store_free(&model->store);
    memset(model, 0, sizeof *model);
}

/* ---- forward ---- */

sd_status sd_clip_text_forward(sd_clip_text *model, sd_backend *be, sd_arena *arena, const int32_t *ids, int batch,
                               float *out) {
    const sd_clip_text_outputs outputs = {.last_hidden_state = out};
    return sd_clip_text_forward_outputs(model, be, arena, ids, batch, &outputs);
}

sd_status sd_clip_text_forward_outputs(sd_clip_text *model, sd_backend *be, sd_arena *arena, const int32_t *ids,
                                       int batch, const sd_clip_text_outputs *o) {
    const sd_clip_text_config *cfg = &model->cfg;
    const int64_t B = batch, T = SD_TOKENS, C = cfg->hidden_size, F = cfg->intermediate_size;
    if (o->text_embeds && !model->text_projection.data)
        return sd_fail(SD_ERR_STATE, "text_encoder: text_embeds asked of an encoder without a text_projection");
    const bool need_final = o->last_hidden_state || o->text_embeds;
    /* hidden_states[-2] is the input of the last layer: without a final output, stop there */
    const int n_run = need_final ? cfg->n_layers : cfg->n_layers - 1;
    sd_arena_mark mark = sd_arena_get_mark(arena);
    sd_tensor x = sd_backend_tensor(be, arena, 3, (int64_t[]){B, T, C});   // residual stream
    sd_tensor h = sd_backend_tensor(be, arena, 3, (int64_t[]){B, T, C});   // normed input
    sd_tensor q = sd_backend_tensor(be, arena, 3, (int64_t[]){B, T, C});
    sd_tensor k = sd_backend_tensor(be, arena, 3, (int64_t[]){B, T, C});
    sd_tensor v = sd_backend_tensor(be, arena, 3, (int64_t[]){B, T, C});
    sd_tensor a = sd_backend_tensor(be, arena, 3, (int64_t[]){B, T, C});   // attention output
    sd_tensor mlp = sd_backend_tensor(be, arena, 3, (int64_t[]){B, T, F}); // MLP hidden
    sd_tensor pos = sd_backend_tensor(be, arena, 3, (int64_t[]){B, T, C}); // position rows
    const int64_t P = cfg->projection_dim > 0 ? cfg->projection_dim : 1;
    sd_tensor emb = o->text_embeds ? sd_backend_tensor(be, arena, 2, (int64_t[]){B, P}) : h; // (B, P) projected
    if (arena->status != SD_OK) {
        sd_arena_rewind(arena, mark);
        return arena->status;
    }

    int32_t pos_ids[SD_TOKENS];
    for (int t = 0; t < SD_TOKENS; t++) pos_ids[t] = t;
    sd_op_embedding(be, &x, &model->token_embedding, ids);
    for (int64_t b = 0; b < B; b++) {
        sd_tensor pos_b = sd_tensor_2d(sd_tensor_at(&pos, b * T * C), pos.dtype, T, C);
        sd_op_embedding(be, &pos_b, &model->position_embedding, pos_ids);
    }
    sd_op_add(be, &x, &x, &pos);

    for (int i = 0; i < n_run; i++) {
        if (i == cfg->n_layers - 1 && o->penultimate) sd_backend_download(be, o->penultimate, &x);
        const sd_clip_layer *l = &model->layers[i];
        // self-attention block (pre-norm, causal)
        sd_op_layer_norm(be, &h, &x, &l->ln1_w, &l->ln1_b, cfg->layer_norm_eps);
        sd_op_linear(be, &q, &h, &l->q_w, &l->q_b);
        sd_op_linear(be, &k, &h, &l->k_w, &l->k_b);
        sd_op_linear(be, &v, &h, &l->v_w, &l->v_b);
        sd_op_attention(be, &a, &q, &k, &v, cfg->n_heads, true);
        sd_op_linear(be, &h, &a, &l->out_w, &l->out_b);
        sd_op_add(be, &x, &x, &h);
        // MLP block
        sd_op_layer_norm(be, &h, &x, &l->ln2_w, &l->ln2_b, cfg->layer_norm_eps);
        sd_op_linear(be, &mlp, &h, &l->fc1_w, &l->fc1_b);
        sd_op_activation(be, &mlp, &mlp, cfg->act);
        sd_op_linear(be, &h, &mlp, &l->fc2_w, &l->fc2_b);
        sd_op_add(be, &x, &x, &h);
    }
    if (n_run < cfg->n_layers && o->penultimate) sd_backend_download(be, o->penultimate, &x);
    if (need_final) {
        sd_tensor y = h; // (B, T, C) final hidden state
        sd_op_layer_norm(be, &y, &x, &model->final_ln_w, &model->final_ln_b, cfg->layer_norm_eps);
        if (o->last_hidden_state) sd_backend_download(be, o->last_hidden_state, &y);
        if (o->text_embeds) {
            /* pooled: the row of the first highest id (transformers' argmax; EOS is the top id) */
            int32_t eos_rows[64];
            sd_status st = B <= 64 ? SD_OK : sd_fail(SD_ERR_LIMIT, "text_encoder: batch %lld over 64 for text_embeds", (long long)B);
            for (int64_t b = 0; st == SD_OK && b < B; b++) {
                int best = 0;
                for (int t = 1; t < SD_TOKENS; t++)
                    if (ids[b * T + t] > ids[b * T + best]) best = t;
                eos_rows[b] = (int32_t)(b * T + best);
            }
            sd_tensor all = sd_tensor_2d(y.data, y.dtype, B * T, C);
            sd_tensor pooled = sd_tensor_2d(q.data, q.dtype, B, C); // (B, C) scratch
            if (st == SD_OK) {
                sd_op_embedding(be, &pooled, &all, eos_rows);
                sd_op_linear(be, &emb, &pooled, &model->text_projection, NULL);
                sd_backend_download(be, o->text_embeds, &emb);
            } else {
                sd_arena_rewind(arena, mark);
                return st;
            }
        }
    }
    sd_status st = sd_backend_status(be);
    sd_backend_clear_status(be);
    sd_arena_rewind(arena, mark);
    return st;
}
