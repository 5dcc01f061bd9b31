/* unet.c — UNet configuration (from config.json or a checkpoint's shapes) and weight loading.
 * The forward pass is in unet_forward.c, the LDM key map in unet_keymap.c. */
#include "model/unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- config ---- */

/* Keys whose non-default values change the network in ways this UNet does not implement. */
static sd_status refuse_unless(const sd_config *json, const char *key, const char *expected, const char *what) {
    const char *value = NULL;
    if (sd_config_has(json, key) && sd_config_string(json, key, NULL, &value) != SD_OK)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: \"%s\" has a value this UNet does not support (%s)", json->path, key, what);
    if (value && strcmp(value, expected) != 0)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: \"%s\" is \"%s\"; only \"%s\" is supported (%s)", json->path, key, value,
                       expected, what);
    return SD_OK;
}

static sd_status refuse_if_set(const sd_config *json, const char *key, const char *what) {
    if (sd_config_has(json, key))
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: \"%s\" is set; %s is not supported yet", json->path, key, what);
    return SD_OK;
}

sd_status sd_unet_config_read(sd_unet_config *cfg, const sd_config *json) {
    memset(cfg, 0, sizeof *cfg);
    const char *p = json->path;
    SD_TRY(refuse_unless(json, "_class_name", "UNet2DConditionModel", "the UNet class"));
    SD_TRY(refuse_unless(json, "addition_embed_type", "text_time", "added embedding; SDXL's is text_time"));
    SD_TRY(refuse_if_set(json, "reverse_transformer_layers_per_block", "a separate up-path transformer depth"));
    SD_TRY(refuse_if_set(json, "class_embed_type", "a class embedding"));
    SD_TRY(refuse_if_set(json, "time_cond_proj_dim", "a guidance embedding (LCM-distilled UNet)"));
    SD_TRY(refuse_if_set(json, "encoder_hid_dim", "an encoder projection"));
    SD_TRY(refuse_unless(json, "time_embedding_type", "positional", "time embedding"));
    SD_TRY(refuse_unless(json, "resnet_time_scale_shift", "default", "ResNet time conditioning"));
    SD_TRY(refuse_unless(json, "act_fn", "silu", "activation"));
    SD_TRY(refuse_unless(json, "mid_block_type", "UNetMidBlock2DCrossAttn", "mid block"));
    SD_TRY(refuse_unless(json, "attention_type", "default", "attention"));
    long v;
    SD_TRY(sd_config_int(json, "in_channels", 1, 64, 4, &v));
    cfg->in_channels = (int)v;
    SD_TRY(sd_config_int(json, "out_channels", 1, 64, 4, &v));
    cfg->out_channels = (int)v;
    SD_TRY(sd_config_int(json, "layers_per_block", 1, SD_UNET_MAX_LAYERS - 1, 2, &v));
    cfg->layers_per_block = (int)v;
    SD_TRY(sd_config_int(json, "cross_attention_dim", 1, 1 << 14, 768, &v));
    cfg->cross_attention_dim = (int)v;
    SD_TRY(sd_config_int(json, "norm_num_groups", 1, 1 << 10, 32, &v));
    cfg->norm_groups = (int)v;
    cfg->text_time = sd_config_has(json, "addition_embed_type");
    if (cfg->text_time) {
        SD_TRY(sd_config_int(json, "addition_time_embed_dim", 2, 1 << 12, 256, &v));
        cfg->addition_time_embed_dim = (int)v;
        SD_TRY(sd_config_int(json, "projection_class_embeddings_input_dim", 1, 1 << 16, 2816, &v));
        cfg->addition_embed_input_dim = (int)v;
        cfg->text_embeds_dim = cfg->addition_embed_input_dim - SD_UNET_TIME_IDS * cfg->addition_time_embed_dim;
        if (cfg->text_embeds_dim < 1)
            return sd_fail(SD_ERR_FORMAT, "%s: \"projection_class_embeddings_input_dim\" %d leaves no room for the text "
                           "embedding beside 6 x \"addition_time_embed_dim\" %d", p, cfg->addition_embed_input_dim,
                           cfg->addition_time_embed_dim);
    }
    SD_TRY(sd_config_int(json, "conv_in_kernel", 3, 3, 3, &v));
    SD_TRY(sd_config_int(json, "conv_out_kernel", 3, 3, 3, &v));
    double d;
    SD_TRY(sd_config_double(json, "norm_eps", 0.0, 1.0, 1e-5, &d));
    cfg->norm_eps = (float)d;
    SD_TRY(sd_config_double(json, "freq_shift", -100.0, 100.0, 0.0, &d));
    cfg->freq_shift = (float)d;
    SD_TRY(sd_config_double(json, "mid_block_scale_factor", 1.0, 1.0, 1.0, &d));
    SD_TRY(sd_config_double(json, "resnet_out_scale_factor", 1.0, 1.0, 1.0, &d));
    bool b;
    SD_TRY(sd_config_bool(json, "flip_sin_to_cos", true, &cfg->flip_sin_to_cos));
    SD_TRY(sd_config_bool(json, "use_linear_projection", false, &cfg->use_linear_projection));
    SD_TRY(sd_config_bool(json, "center_input_sample", false, &b));
    if (b) return sd_fail(SD_ERR_UNSUPPORTED, "%s: \"center_input_sample\" true is not supported", p);
    SD_TRY(sd_config_bool(json, "only_cross_attention", false, &b));
    if (b) return sd_fail(SD_ERR_UNSUPPORTED, "%s: \"only_cross_attention\" true is not supported", p);
    SD_TRY(sd_config_bool(json, "dual_cross_attention", false, &b));
    if (b) return sd_fail(SD_ERR_UNSUPPORTED, "%s: \"dual_cross_attention\" true is not supported", p);

    long channels[SD_UNET_MAX_LEVELS];
    int n = 0;
    SD_TRY(sd_config_int_list(json, "block_out_channels", 1, 1 << 14, channels, SD_UNET_MAX_LEVELS, &n));
    if (n < 1) return sd_fail(SD_ERR_FORMAT, "%s: \"block_out_channels\" is missing", p);
    cfg->n_levels = n;
    for (int i = 0; i < n; i++) cfg->block_out_channels[i] = (int)channels[i];
    cfg->time_embed_dim = 4 * cfg->block_out_channels[0];

    const char *types[SD_UNET_MAX_LEVELS];
    int nt = 0;
    SD_TRY(sd_config_string_list(json, "down_block_types", types, SD_UNET_MAX_LEVELS, &nt));
    if (nt != n) return sd_fail(SD_ERR_FORMAT, "%s: \"down_block_types\" has %d entries, block_out_channels %d", p, nt, n);
    for (int i = 0; i < n; i++) {
        if (strcmp(types[i], "CrossAttnDownBlock2D") == 0) cfg->down_has_attention[i] = true;
        else if (strcmp(types[i], "DownBlock2D") != 0)
            return sd_fail(SD_ERR_UNSUPPORTED, "%s: down block type \"%s\" is not supported (expected CrossAttnDownBlock2D "
                           "or DownBlock2D)", p, types[i]);
    }
    SD_TRY(sd_config_string_list(json, "up_block_types", types, SD_UNET_MAX_LEVELS, &nt));
    if (nt != n) return sd_fail(SD_ERR_FORMAT, "%s: \"up_block_types\" has %d entries, block_out_channels %d", p, nt, n);
    for (int i = 0; i < n; i++) {
        if (strcmp(types[i], "CrossAttnUpBlock2D") == 0) cfg->up_has_attention[i] = true;
        else if (strcmp(types[i], "UpBlock2D") != 0)
            return sd_fail(SD_ERR_UNSUPPORTED, "%s: up block type \"%s\" is not supported (expected CrossAttnUpBlock2D "
                           "or UpBlock2D)", p, types[i]);
    }

    /* diffusers reads attention_head_dim as the number of heads unless num_attention_heads is set
     * (a naming mistake it keeps for compatibility): SD 1.x 8, SD 2.x [5, 10, 20, 20]. */
    long heads[SD_UNET_MAX_LEVELS];
    int nh = 0;
    SD_TRY(sd_config_int_list(json, "num_attention_heads", 1, 1 << 12, heads, SD_UNET_MAX_LEVELS, &nh));
    const char *heads_key = "num_attention_heads";
    if (nh == 0) {
        heads_key = "attention_head_dim";
        SD_TRY(sd_config_int_list(json, heads_key, 1, 1 << 12, heads, SD_UNET_MAX_LEVELS, &nh));
        if (nh == 0) heads[0] = 8, nh = 1;
    }
    if (nh != 1 && nh != n) return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" has %d entries, expected 1 or %d", p, heads_key, nh, n);
    for (int i = 0; i < n; i++) {
        cfg->heads[i] = (int)(nh == 1 ? heads[0] : heads[i]);
        if (cfg->block_out_channels[i] % cfg->heads[i] != 0)
            return sd_fail(SD_ERR_FORMAT, "%s: %d channels at level %d do not split into %d heads (\"%s\")", p,
                           cfg->block_out_channels[i], i, cfg->heads[i], heads_key);
        if (cfg->block_out_channels[i] % cfg->norm_groups != 0)
            return sd_fail(SD_ERR_FORMAT, "%s: %d channels at level %d do not split into %d norm groups", p,
                           cfg->block_out_channels[i], i, cfg->norm_groups);
    }
    cfg->mid_heads = cfg->heads[n - 1];
    long depth[SD_UNET_MAX_LEVELS];
    int nd = 0;
    SD_TRY(sd_config_int_list(json, "transformer_layers_per_block", 1, SD_UNET_MAX_TRANSFORMER_DEPTH, depth,
                              SD_UNET_MAX_LEVELS, &nd));
    if (nd != 0 && nd != 1 && nd != n)
        return sd_fail(SD_ERR_FORMAT, "%s: \"transformer_layers_per_block\" has %d entries, expected 1 or %d", p, nd, n);
    for (int i = 0; i < n; i++) cfg->transformer_depth[i] = nd == 0 ? 1 : (int)(nd == 1 ? depth[0] : depth[i]);
    for (int i = 0; i < n; i++) cfg->up_transformer_depth[i] = cfg->transformer_depth[n - 1 - i];
    cfg->mid_transformer_depth = cfg->transformer_depth[n - 1];
    return SD_OK;
}

/* ---- config from a checkpoint's shapes ---- */

static const sd_st_tensor *ckpt(const sd_safetensors *f, const char *fmt, int a, const char *rest) {
    char key[256];
    snprintf(key, sizeof key, fmt, a, rest);
    return sd_st_find(f, key);
}

/* BasicTransformerBlocks under an LDM attention prefix ("input_blocks.4.1."): 1 when none found. */
static int ckpt_transformer_depth(const sd_safetensors *f, const char *at) {
    int d = 0;
    char key[256];
    for (; d < SD_UNET_MAX_TRANSFORMER_DEPTH; d++) {
        snprintf(key, sizeof key, "model.diffusion_model.%stransformer_blocks.%d.norm1.weight", at, d);
        if (!sd_st_find(f, key)) break;
    }
    return d > 0 ? d : 1;
}

sd_status sd_unet_config_infer(sd_unet_config *cfg, const sd_safetensors *file, bool head_dim64) {
    memset(cfg, 0, sizeof *cfg);
    const char *P = "model.diffusion_model.input_blocks.%d.%s";
    const sd_st_tensor *conv_in = ckpt(file, P, 0, "0.weight");
    const sd_st_tensor *conv_out = sd_st_find(file, "model.diffusion_model.out.2.weight");
    const sd_st_tensor *ctx = NULL;
    if (!conv_in || conv_in->ndim != 4 || !conv_out || conv_out->ndim != 4)
        return sd_fail(SD_ERR_NOT_FOUND, "%s: UNet conv_in/conv_out (input_blocks.0.0 / out.2) missing or not 4-D", file->path);
    cfg->in_channels = (int)conv_in->shape[1];
    cfg->out_channels = (int)conv_out->shape[0];
    /* layers per block: resnets before the first downsampler */
    int layers = 0;
    while (layers < SD_UNET_MAX_LAYERS && ckpt(file, P, 1 + layers, "0.in_layers.2.weight")) layers++;
    if (layers < 1 || layers >= SD_UNET_MAX_LAYERS || !ckpt(file, P, 1 + layers, "0.op.weight"))
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: cannot find the UNet's first downsampler (input_blocks.%d.0.op)", file->path,
                       1 + layers);
    cfg->layers_per_block = layers;
    int n = 0;
    for (; n < SD_UNET_MAX_LEVELS; n++) {
        int first = 1 + n * (layers + 1);
        const sd_st_tensor *conv = ckpt(file, P, first, "0.in_layers.2.weight");
        if (!conv) break;
        cfg->block_out_channels[n] = (int)conv->shape[0];
        const sd_st_tensor *proj = ckpt(file, P, first, "1.proj_in.weight");
        cfg->down_has_attention[n] = proj != NULL;
        if (proj) cfg->use_linear_projection = proj->ndim == 2;
        char at[64];
        snprintf(at, sizeof at, "input_blocks.%d.1.", first);
        cfg->transformer_depth[n] = ckpt_transformer_depth(file, at);
        if (!ctx) ctx = ckpt(file, P, first, "1.transformer_blocks.0.attn2.to_k.weight");
        if (!ckpt(file, P, first + layers, "0.op.weight")) {
            n++;
            break;
        }
    }
    cfg->n_levels = n;
    for (int i = 0; i < n; i++) {
        const sd_st_tensor *proj = ckpt(file, "model.diffusion_model.output_blocks.%d.%s", i * (layers + 1), "1.proj_in.weight");
        cfg->up_has_attention[i] = proj != NULL;
        cfg->up_transformer_depth[i] = cfg->transformer_depth[n - 1 - i];
        int c = cfg->block_out_channels[i];
        cfg->heads[i] = head_dim64 ? c / 64 : 8;
        if (cfg->heads[i] < 1 || c % cfg->heads[i] != 0 || c % 32 != 0)
            return sd_fail(SD_ERR_UNSUPPORTED,
                           "%s: UNet level %d has %d channels; its heads and norm groups cannot be inferred "
                           "(pass --config DIR with unet/config.json)", file->path, i, c);
    }
    if (!ctx || ctx->ndim != 2)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: no cross-attention found in the UNet (attn2.to_k)", file->path);
    cfg->cross_attention_dim = (int)ctx->shape[1];
    cfg->mid_heads = cfg->heads[n - 1];
    cfg->mid_transformer_depth = ckpt_transformer_depth(file, "middle_block.1.");
    const sd_st_tensor *label = sd_st_find(file, "model.diffusion_model.label_emb.0.0.weight");
    if (label && label->ndim == 2) { /* SDXL's added embedding; 256 per time id is SDXL's value */
        cfg->text_time = true;
        cfg->addition_time_embed_dim = 256;
        cfg->addition_embed_input_dim = (int)label->shape[1];
        cfg->text_embeds_dim = cfg->addition_embed_input_dim - SD_UNET_TIME_IDS * cfg->addition_time_embed_dim;
        if (cfg->text_embeds_dim < 1)
            return sd_fail(SD_ERR_UNSUPPORTED, "%s: label_emb.0.0.weight takes %d inputs, too few for SDXL's 6 x 256 time "
                           "ids (pass --config DIR with unet/config.json)", file->path, cfg->addition_embed_input_dim);
    }
    cfg->norm_groups = 32;
    cfg->norm_eps = 1e-5f;
    cfg->flip_sin_to_cos = true;
    cfg->freq_shift = 0.0f;
    cfg->time_embed_dim = 4 * cfg->block_out_channels[0];
    return SD_OK;
}

/* ---- loading ---- */

#define LOADF(dst, ...)                                                                                      \
    do {                                                                                                     \
        SD_TRY(sd_weights_loadf(ld, &(dst), __VA_ARGS__));                                                   \
    } while (0)

static sd_status load_resnet(sd_weight_loader *ld, sd_unet_resnet *r, const char *at, int in, int out, int temb) {
    r->in_channels = in;
    r->out_channels = out;
    LOADF(r->norm1_w, 1, (int64_t[]){in}, "%s.norm1.weight", at);
    LOADF(r->norm1_b, 1, (int64_t[]){in}, "%s.norm1.bias", at);
    LOADF(r->conv1_w, 4, (int64_t[]){out, in, 3, 3}, "%s.conv1.weight", at);
    LOADF(r->conv1_b, 1, (int64_t[]){out}, "%s.conv1.bias", at);
    LOADF(r->time_w, 2, (int64_t[]){out, temb}, "%s.time_emb_proj.weight", at);
    LOADF(r->time_b, 1, (int64_t[]){out}, "%s.time_emb_proj.bias", at);
    LOADF(r->norm2_w, 1, (int64_t[]){out}, "%s.norm2.weight", at);
    LOADF(r->norm2_b, 1, (int64_t[]){out}, "%s.norm2.bias", at);
    LOADF(r->conv2_w, 4, (int64_t[]){out, out, 3, 3}, "%s.conv2.weight", at);
    LOADF(r->conv2_b, 1, (int64_t[]){out}, "%s.conv2.bias", at);
    if (in != out) {
        LOADF(r->shortcut_w, 4, (int64_t[]){out, in, 1, 1}, "%s.conv_shortcut.weight", at);
        LOADF(r->shortcut_b, 1, (int64_t[]){out}, "%s.conv_shortcut.bias", at);
    }
    return SD_OK;
}

static sd_status load_tblock(sd_weight_loader *ld, sd_unet_tblock *t, const char *at, int tb, int64_t c, int64_t ctx) {
    LOADF(t->ln1_w, 1, (int64_t[]){c}, "%s.transformer_blocks.%d.norm1.weight", at, tb);
    LOADF(t->ln1_b, 1, (int64_t[]){c}, "%s.transformer_blocks.%d.norm1.bias", at, tb);
    LOADF(t->attn1_q, 2, (int64_t[]){c, c}, "%s.transformer_blocks.%d.attn1.to_q.weight", at, tb);
    LOADF(t->attn1_k, 2, (int64_t[]){c, c}, "%s.transformer_blocks.%d.attn1.to_k.weight", at, tb);
    LOADF(t->attn1_v, 2, (int64_t[]){c, c}, "%s.transformer_blocks.%d.attn1.to_v.weight", at, tb);
    LOADF(t->attn1_out_w, 2, (int64_t[]){c, c}, "%s.transformer_blocks.%d.attn1.to_out.0.weight", at, tb);
    LOADF(t->attn1_out_b, 1, (int64_t[]){c}, "%s.transformer_blocks.%d.attn1.to_out.0.bias", at, tb);
    LOADF(t->ln2_w, 1, (int64_t[]){c}, "%s.transformer_blocks.%d.norm2.weight", at, tb);
    LOADF(t->ln2_b, 1, (int64_t[]){c}, "%s.transformer_blocks.%d.norm2.bias", at, tb);
    LOADF(t->attn2_q, 2, (int64_t[]){c, c}, "%s.transformer_blocks.%d.attn2.to_q.weight", at, tb);
    LOADF(t->attn2_k, 2, (int64_t[]){c, ctx}, "%s.transformer_blocks.%d.attn2.to_k.weight", at, tb);
    LOADF(t->attn2_v, 2, (int64_t[]){c, ctx}, "%s.transformer_blocks.%d.attn2.to_v.weight", at, tb);
    LOADF(t->attn2_out_w, 2, (int64_t[]){c, c}, "%s.transformer_blocks.%d.attn2.to_out.0.weight", at, tb);
    LOADF(t->attn2_out_b, 1, (int64_t[]){c}, "%s.transformer_blocks.%d.attn2.to_out.0.bias", at, tb);
    LOADF(t->ln3_w, 1, (int64_t[]){c}, "%s.transformer_blocks.%d.norm3.weight", at, tb);
    LOADF(t->ln3_b, 1, (int64_t[]){c}, "%s.transformer_blocks.%d.norm3.bias", at, tb);
    LOADF(t->ff_in_w, 2, (int64_t[]){8 * c, c}, "%s.transformer_blocks.%d.ff.net.0.proj.weight", at, tb);
    LOADF(t->ff_in_b, 1, (int64_t[]){8 * c}, "%s.transformer_blocks.%d.ff.net.0.proj.bias", at, tb);
    LOADF(t->ff_out_w, 2, (int64_t[]){c, 4 * c}, "%s.transformer_blocks.%d.ff.net.2.weight", at, tb);
    LOADF(t->ff_out_b, 1, (int64_t[]){c}, "%s.transformer_blocks.%d.ff.net.2.bias", at, tb);
    return SD_OK;
}

static sd_status load_transformer(sd_weight_loader *ld, sd_unet_transformer *t, const char *at, int c, int heads,
                                  int depth, const sd_unet_config *cfg) {
    t->channels = c;
    t->heads = heads;
    /* proj_in/proj_out are 1x1 convs [C, C, 1, 1] (SD 1.x: no use_linear_projection) or Linear
     * [C, C] (SD 2.x): the same numbers either way, so both load as [C, C] and run as a linear
     * layer on the channels-last tokens; either layout is accepted whatever the config says. */
    char name[256];
    bool conv = !cfg->use_linear_projection;
    LOADF(t->norm_w, 1, (int64_t[]){c}, "%s.norm.weight", at);
    LOADF(t->norm_b, 1, (int64_t[]){c}, "%s.norm.bias", at);
    snprintf(name, sizeof name, "%s.proj_in.weight", at);
    SD_TRY(sd_weights_load_projection(ld, &t->proj_in_w, name, c, c, conv));
    LOADF(t->proj_in_b, 1, (int64_t[]){c}, "%s.proj_in.bias", at);
    t->blocks = calloc((size_t)depth, sizeof *t->blocks);
    if (!t->blocks) return sd_fail(SD_ERR_NOMEM, "unet: out of memory");
    t->n_blocks = depth;
    for (int tb = 0; tb < depth; tb++) SD_TRY(load_tblock(ld, &t->blocks[tb], at, tb, c, cfg->cross_attention_dim));
    snprintf(name, sizeof name, "%s.proj_out.weight", at);
    SD_TRY(sd_weights_load_projection(ld, &t->proj_out_w, name, c, c, conv));
    LOADF(t->proj_out_b, 1, (int64_t[]){c}, "%s.proj_out.bias", at);
    return SD_OK;
}

static sd_status load_all(sd_unet *u, sd_weight_loader *ld) {
    const sd_unet_config *cfg = &u->cfg;
    const int n = cfg->n_levels, L = cfg->layers_per_block, temb = cfg->time_embed_dim;
    const int *ch = cfg->block_out_channels;
    char at[128];
    LOADF(u->time_w1, 2, (int64_t[]){temb, ch[0]}, "time_embedding.linear_1.weight");
    LOADF(u->time_b1, 1, (int64_t[]){temb}, "time_embedding.linear_1.bias");
    LOADF(u->time_w2, 2, (int64_t[]){temb, temb}, "time_embedding.linear_2.weight");
    LOADF(u->time_b2, 1, (int64_t[]){temb}, "time_embedding.linear_2.bias");
    if (cfg->text_time) {
        LOADF(u->add_w1, 2, (int64_t[]){temb, cfg->addition_embed_input_dim}, "add_embedding.linear_1.weight");
        LOADF(u->add_b1, 1, (int64_t[]){temb}, "add_embedding.linear_1.bias");
        LOADF(u->add_w2, 2, (int64_t[]){temb, temb}, "add_embedding.linear_2.weight");
        LOADF(u->add_b2, 1, (int64_t[]){temb}, "add_embedding.linear_2.bias");
    }
    LOADF(u->conv_in_w, 4, (int64_t[]){ch[0], cfg->in_channels, 3, 3}, "conv_in.weight");
    LOADF(u->conv_in_b, 1, (int64_t[]){ch[0]}, "conv_in.bias");

    for (int b = 0; b < n; b++) {
        sd_unet_level *lv = &u->down[b];
        lv->n_layers = L;
        lv->has_attention = cfg->down_has_attention[b];
        lv->has_sampler = b < n - 1;
        for (int j = 0; j < L; j++) {
            int in = j == 0 ? (b == 0 ? ch[0] : ch[b - 1]) : ch[b];
            snprintf(at, sizeof at, "down_blocks.%d.resnets.%d", b, j);
            SD_TRY(load_resnet(ld, &lv->resnets[j], at, in, ch[b], temb));
            if (lv->has_attention) {
                snprintf(at, sizeof at, "down_blocks.%d.attentions.%d", b, j);
                SD_TRY(load_transformer(ld, &lv->attentions[j], at, ch[b], cfg->heads[b], cfg->transformer_depth[b], cfg));
            }
        }
        if (lv->has_sampler) {
            LOADF(lv->sampler_w, 4, (int64_t[]){ch[b], ch[b], 3, 3}, "down_blocks.%d.downsamplers.0.conv.weight", b);
            LOADF(lv->sampler_b, 1, (int64_t[]){ch[b]}, "down_blocks.%d.downsamplers.0.conv.bias", b);
        }
    }
    int deep = ch[n - 1];
    SD_TRY(load_resnet(ld, &u->mid_resnets[0], "mid_block.resnets.0", deep, deep, temb));
    SD_TRY(load_transformer(ld, &u->mid_attention, "mid_block.attentions.0", deep, cfg->mid_heads,
                            cfg->mid_transformer_depth, cfg));
    SD_TRY(load_resnet(ld, &u->mid_resnets[1], "mid_block.resnets.1", deep, deep, temb));

    for (int i = 0; i < n; i++) {
        /* up block i mirrors down level n-1-i; channels as diffusers' reversed_block_out_channels */
        int out = ch[n - 1 - i], prev = ch[n - 1 - (i > 0 ? i - 1 : 0)], skip_in = ch[n - 1 - (i + 1 < n ? i + 1 : n - 1)];
        sd_unet_level *lv = &u->up[i];
        lv->n_layers = L + 1;
        lv->has_attention = cfg->up_has_attention[i];
        lv->has_sampler = i < n - 1;
        for (int j = 0; j <= L; j++) {
            int skip = j == L ? skip_in : out;
            int in = (j == 0 ? prev : out) + skip;
            snprintf(at, sizeof at, "up_blocks.%d.resnets.%d", i, j);
            SD_TRY(load_resnet(ld, &lv->resnets[j], at, in, out, temb));
            if (lv->has_attention) {
                snprintf(at, sizeof at, "up_blocks.%d.attentions.%d", i, j);
                SD_TRY(load_transformer(ld, &lv->attentions[j], at, out, cfg->heads[n - 1 - i], cfg->up_transformer_depth[i],
                                        cfg));
            }
        }
        if (lv->has_sampler) {
            LOADF(lv->sampler_w, 4, (int64_t[]){out, out, 3, 3}, "up_blocks.%d.upsamplers.0.conv.weight", i);
            LOADF(lv->sampler_b, 1, (int64_t[]){out}, "up_blocks.%d.upsamplers.0.conv.bias", i);
        }
    }
    LOADF(u->norm_out_w, 1, (int64_t[]){ch[0]}, "conv_norm_out.weight");
    LOADF(u->norm_out_b, 1, (int64_t[]){ch[0]}, "conv_norm_out.bias");
    LOADF(u->conv_out_w, 4, (int64_t[]){cfg->out_channels, ch[0], 3, 3}, "conv_out.weight");
    LOADF(u->conv_out_b, 1, (int64_t[]){cfg->out_channels}, "conv_out.bias");
    return SD_OK;
}

sd_status sd_unet_load(sd_unet *unet, const sd_unet_config *cfg, const sd_safetensors *file, const char *prefix,
                       bool ldm_layout) {
    memset(unet, 0, sizeof *unet);
    unet->cfg = *cfg;
    sd_weight_loader ld = {
        .file = file,
        .map = ldm_layout ? sd_unet_ldm_key : NULL,
        .map_ctx = &unet->cfg,
        .prefix = prefix,
        .component = "unet",
        .store = &unet->store,
        .matrix_dtype = cfg->weight_dtype,
        .conv_layout = cfg->conv_layout,
        .lora = cfg->lora,
        .lora_target = SD_LORA_UNET,
    };
    sd_status st = load_all(unet, &ld);
    unet->cfg.conv_layout = NULL; /* load options: the backend and the LoRA files go before the weights do */
    unet->cfg.lora = NULL;
    if (st != SD_OK) sd_unet_free(unet);
    return st;
}

void sd_unet_free(sd_unet *unet) {
    if (!unet) return;
    for (int i = 0; i < SD_UNET_MAX_LEVELS; i++)
        for (int j = 0; j < SD_UNET_MAX_LAYERS; j++) {
            free(unet->down[i].attentions[j].blocks);
            free(unet->up[i].attentions[j].blocks);
        }
    free(unet->mid_attention.blocks);
    sd_weight_store_free(&unet->store);
    memset(unet, 0, sizeof *unet);
}
