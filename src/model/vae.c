/* vae.c — AutoencoderKL: config, loading and the encoder/decoder forward passes (see vae.h).
 *
 * The architecture is diffusers 0.24's (models/vae.py Encoder/Decoder, unet_2d_blocks.py
 * DownEncoderBlock2D / UpDecoderBlock2D / UNetMidBlock2D, resnet.py ResnetBlock2D / Downsample2D /
 * Upsample2D): every GroupNorm uses eps 1e-6 and the config's group count, activations are SiLU
 * (fused into the norm op), there is no time embedding, and the mid-block attention is one head
 * over all H*W positions.
 */
#include "model/vae.h"

#include <stdio.h>
#include <string.h>

/* resnet_eps and the norm_out eps of diffusers' Encoder/Decoder */
static const float VAE_EPS = 1e-6f;
/* DiagonalGaussianDistribution clamps logvar to this range before exp */
static const float LOGVAR_MIN = -30.0f, LOGVAR_MAX = 20.0f;

enum { VAE_MAX_CHANNELS = 1 << 14, VAE_LIST_MAX = 16 };

/* ---- config ---- */

void sd_vae_config_default(sd_vae_config *cfg) {
    static const int sd_channels[] = {128, 256, 512, 512};
    memset(cfg, 0, sizeof *cfg);
    cfg->in_channels = 3;
    cfg->out_channels = 3;
    cfg->latent_channels = 4;
    cfg->n_levels = 4;
    for (int i = 0; i < 4; i++) cfg->block_out_channels[i] = sd_channels[i];
    cfg->layers_per_block = 2;
    cfg->norm_num_groups = 32;
    cfg->mid_attention = true;
    cfg->scaling_factor = 0.18215f;
}

/* Every GroupNorm of the model sees one of block_out_channels. */
static sd_status check_groups(const sd_vae_config *cfg, const char *where, const char *hint) {
    for (int i = 0; i < cfg->n_levels; i++)
        if (cfg->block_out_channels[i] % cfg->norm_num_groups != 0)
            return sd_fail(SD_ERR_UNSUPPORTED, "%s: VAE block_out_channels[%d] = %d is not divisible by norm_num_groups %d%s",
                           where, i, cfg->block_out_channels[i], cfg->norm_num_groups, hint);
    return SD_OK;
}

static sd_status check_block_types(const sd_config *json, const char *key, const char *want, int n_levels) {
    const char *types[VAE_LIST_MAX];
    int n = 0;
    SD_TRY(sd_config_string_list(json, key, types, VAE_LIST_MAX, &n));
    if (n == 0) return SD_OK; /* absent: diffusers' default, one block per level of that type */
    if (n != n_levels)
        return sd_fail(SD_ERR_FORMAT, "%s: \"%s\" has %d entries but block_out_channels has %d", json->path, key, n,
                       n_levels);
    for (int i = 0; i < n; i++)
        if (strcmp(types[i], want) != 0)
            return sd_fail(SD_ERR_UNSUPPORTED, "%s: %s[%d] is \"%s\"; only %s is supported (the SD VAE)", json->path,
                           key, i, types[i], want);
    return SD_OK;
}

sd_status sd_vae_config_read(sd_vae_config *cfg, const sd_config *json) {
    sd_vae_config c;
    memset(&c, 0, sizeof c);
    long in_ch, out_ch, latent, layers, groups, channels[VAE_LIST_MAX];
    int n_levels = 0;
    double scaling;
    bool attn, quant, post_quant;
    const char *act = NULL;
    SD_TRY(sd_config_int(json, "in_channels", 1, 64, 3, &in_ch));
    SD_TRY(sd_config_int(json, "out_channels", 1, 64, 3, &out_ch));
    SD_TRY(sd_config_int(json, "latent_channels", 1, 1024, 4, &latent));
    SD_TRY(sd_config_int(json, "layers_per_block", 1, 1 << 10, 1, &layers));
    SD_TRY(sd_config_int(json, "norm_num_groups", 1, VAE_MAX_CHANNELS, 32, &groups));
    SD_TRY(sd_config_int_list(json, "block_out_channels", 1, VAE_MAX_CHANNELS, channels, VAE_LIST_MAX, &n_levels));
    SD_TRY(sd_config_double(json, "scaling_factor", 1e-6, 1e6, 0.18215, &scaling));
    SD_TRY(sd_config_string(json, "act_fn", "silu", &act));
    SD_TRY(sd_config_bool(json, "mid_block_add_attention", true, &attn));
    SD_TRY(sd_config_bool(json, "use_quant_conv", true, &quant));
    SD_TRY(sd_config_bool(json, "use_post_quant_conv", true, &post_quant));
    if (n_levels == 0) { /* diffusers' default block_out_channels = (64,) */
        channels[0] = 64;
        n_levels = 1;
    }
    if (n_levels > SD_VAE_MAX_LEVELS)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: block_out_channels has %d levels, at most %d supported", json->path,
                       n_levels, SD_VAE_MAX_LEVELS);
    if (layers > SD_VAE_MAX_LAYERS)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: layers_per_block %ld, at most %d supported", json->path, layers,
                       SD_VAE_MAX_LAYERS);
    if (strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: act_fn \"%s\" is not supported (the SD VAE uses silu)", json->path, act);
    if (!quant || !post_quant)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: %s false is not supported (every SD VAE has quant convs)", json->path,
                       !quant ? "use_quant_conv" : "use_post_quant_conv");
    SD_TRY(check_block_types(json, "down_block_types", "DownEncoderBlock2D", n_levels));
    SD_TRY(check_block_types(json, "up_block_types", "UpDecoderBlock2D", n_levels));
    c.in_channels = (int)in_ch;
    c.out_channels = (int)out_ch;
    c.latent_channels = (int)latent;
    c.n_levels = n_levels;
    for (int i = 0; i < n_levels; i++) c.block_out_channels[i] = (int)channels[i];
    c.layers_per_block = (int)layers;
    c.norm_num_groups = (int)groups;
    c.mid_attention = attn;
    c.scaling_factor = (float)scaling;
    SD_TRY(check_groups(&c, json->path, ""));
    *cfg = c;
    return SD_OK;
}

/* Old diffusers VAEs (before 0.14) name the attention projections query/key/value/proj_attn. */
static bool has_legacy_attention(const sd_safetensors *file, const char *prefix) {
    char key[512];
    snprintf(key, sizeof key, "%sencoder.mid_block.attentions.0.query.weight", prefix);
    if (sd_st_find(file, key)) return true;
    snprintf(key, sizeof key, "%sdecoder.mid_block.attentions.0.query.weight", prefix);
    return sd_st_find(file, key) != NULL;
}

static void init_loader(sd_weight_loader *ld, const sd_safetensors *file, const char *prefix, bool ldm_layout,
                        const sd_vae_config *cfg, sd_weight_store *store) {
    memset(ld, 0, sizeof *ld);
    ld->file = file;
    ld->prefix = prefix;
    ld->component = "vae";
    ld->map_ctx = cfg;
    ld->store = store;
    ld->matrix_dtype = cfg->weight_dtype;
    if (ldm_layout) ld->map = sd_vae_ldm_key_map;
    else if (has_legacy_attention(file, prefix)) ld->map = sd_vae_legacy_key_map;
}

/* The file tensor behind an internal name when it has `ndim` dims (NULL otherwise). */
static const sd_st_tensor *find_nd(const sd_weight_loader *ld, const char *name, int ndim) {
    sd_key_ref ref;
    const sd_st_tensor *t = sd_weights_find(ld, name, &ref);
    return t && t->ndim == ndim ? t : NULL;
}

sd_status sd_vae_config_infer(sd_vae_config *cfg, const sd_safetensors *file, const char *prefix, bool ldm_layout) {
    SD_CHECK_ARG(cfg && file, "sd_vae_config_infer: NULL argument");
    if (!prefix) prefix = "";
    sd_vae_config c;
    sd_vae_config_default(&c);
    memset(c.block_out_channels, 0, sizeof c.block_out_channels);
    c.n_levels = SD_VAE_MAX_LEVELS; /* the LDM map only needs it for decoder levels, not read here */
    sd_weight_loader ld;
    init_loader(&ld, file, prefix, ldm_layout, &c, NULL);
    char name[256];
    const sd_st_tensor *conv_in = find_nd(&ld, "encoder.conv_in.weight", 4);
    const sd_st_tensor *dec_in = find_nd(&ld, "decoder.conv_in.weight", 4);
    const sd_st_tensor *dec_out = find_nd(&ld, "decoder.conv_out.weight", 4);
    if (!conv_in || !dec_in || !dec_out)
        return sd_fail(SD_ERR_NOT_FOUND, "%s: no VAE found under \"%s\" (encoder/decoder conv_in, decoder conv_out "
                       "missing or not 4-D)", file->path, prefix);
    int n_levels = 0;
    for (; n_levels <= SD_VAE_MAX_LEVELS; n_levels++) {
        snprintf(name, sizeof name, "encoder.down_blocks.%d.resnets.0.conv1.weight", n_levels);
        const sd_st_tensor *t = find_nd(&ld, name, 4);
        if (!t) break;
        if (n_levels < SD_VAE_MAX_LEVELS) c.block_out_channels[n_levels] = (int)t->shape[0];
    }
    if (n_levels < 1 || n_levels > SD_VAE_MAX_LEVELS)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: VAE has %d encoder levels, expected 1..%d", file->path, n_levels,
                       SD_VAE_MAX_LEVELS);
    int layers = 0;
    for (; layers <= SD_VAE_MAX_LAYERS; layers++) {
        snprintf(name, sizeof name, "encoder.down_blocks.0.resnets.%d.conv1.weight", layers);
        if (!find_nd(&ld, name, 4)) break;
    }
    if (layers > SD_VAE_MAX_LAYERS)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: VAE has more than %d resnets per level", file->path, SD_VAE_MAX_LAYERS);
    c.n_levels = n_levels;
    c.layers_per_block = layers;
    c.in_channels = (int)conv_in->shape[1];
    c.latent_channels = (int)dec_in->shape[1];
    c.out_channels = (int)dec_out->shape[0];
    c.mid_attention = find_nd(&ld, "encoder.mid_block.attentions.0.group_norm.weight", 1) != NULL;
    SD_TRY(check_groups(&c, file->path,
                        " (groups cannot be read from a checkpoint; 32 is assumed without a config: pass a config "
                        "folder with vae/config.json)"));
    *cfg = c;
    return SD_OK;
}

/* ---- loading ---- */

static sd_status load_conv(sd_weight_loader *ld, sd_tensor *w, sd_tensor *b, int64_t cout, int64_t cin, int64_t k,
                           const char *path) {
    SD_TRY(sd_weights_loadf(ld, w, 4, (int64_t[]){cout, cin, k, k}, "%s.weight", path));
    if (b) SD_TRY(sd_weights_loadf(ld, b, 1, (int64_t[]){cout}, "%s.bias", path));
    return SD_OK;
}

static sd_status load_norm(sd_weight_loader *ld, sd_tensor *w, sd_tensor *b, int64_t c, const char *path) {
    SD_TRY(sd_weights_loadf(ld, w, 1, (int64_t[]){c}, "%s.weight", path));
    return sd_weights_loadf(ld, b, 1, (int64_t[]){c}, "%s.bias", path);
}

static sd_status load_resnet(sd_weight_loader *ld, sd_vae_resnet *r, int64_t cin, int64_t cout, const char *path) {
    char p[256];
    snprintf(p, sizeof p, "%s.norm1", path);
    SD_TRY(load_norm(ld, &r->norm1_w, &r->norm1_b, cin, p));
    snprintf(p, sizeof p, "%s.conv1", path);
    SD_TRY(load_conv(ld, &r->conv1_w, &r->conv1_b, cout, cin, 3, p));
    snprintf(p, sizeof p, "%s.norm2", path);
    SD_TRY(load_norm(ld, &r->norm2_w, &r->norm2_b, cout, p));
    snprintf(p, sizeof p, "%s.conv2", path);
    SD_TRY(load_conv(ld, &r->conv2_w, &r->conv2_b, cout, cout, 3, p));
    if (cin != cout) {
        snprintf(p, sizeof p, "%s.conv_shortcut", path);
        SD_TRY(load_conv(ld, &r->shortcut_w, &r->shortcut_b, cout, cin, 1, p));
    }
    return SD_OK;
}

/* A Linear [C, C] projection; LDM files store it as a 1x1 conv [C, C, 1, 1], reshaped here. */
static sd_status load_proj(sd_weight_loader *ld, sd_tensor *w, sd_tensor *b, int64_t c, const char *path) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", path);
    if (find_nd(ld, name, 4)) {
        SD_TRY(sd_weights_load(ld, w, name, 4, (int64_t[]){c, c, 1, 1}));
        *w = sd_tensor_2d(w->data, w->dtype, c, c); /* the 1x1 conv as the linear it is */
    } else {
        SD_TRY(sd_weights_load(ld, w, name, 2, (int64_t[]){c, c}));
    }
    return sd_weights_loadf(ld, b, 1, (int64_t[]){c}, "%s.bias", path);
}

static sd_status load_mid(sd_weight_loader *ld, sd_vae_mid *m, int64_t c, bool attention, const char *coder) {
    char p[256];
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s.mid_block.resnets.%d", coder, i);
        SD_TRY(load_resnet(ld, &m->resnets[i], c, c, p));
    }
    if (!attention) return SD_OK;
    sd_vae_attention *a = &m->attn;
    snprintf(p, sizeof p, "%s.mid_block.attentions.0.group_norm", coder);
    SD_TRY(load_norm(ld, &a->norm_w, &a->norm_b, c, p));
    snprintf(p, sizeof p, "%s.mid_block.attentions.0.to_q", coder);
    SD_TRY(load_proj(ld, &a->q_w, &a->q_b, c, p));
    snprintf(p, sizeof p, "%s.mid_block.attentions.0.to_k", coder);
    SD_TRY(load_proj(ld, &a->k_w, &a->k_b, c, p));
    snprintf(p, sizeof p, "%s.mid_block.attentions.0.to_v", coder);
    SD_TRY(load_proj(ld, &a->v_w, &a->v_b, c, p));
    snprintf(p, sizeof p, "%s.mid_block.attentions.0.to_out.0", coder);
    return load_proj(ld, &a->out_w, &a->out_b, c, p);
}

static sd_status load_encoder(sd_weight_loader *ld, sd_vae_coder *e, const sd_vae_config *cfg) {
    const int *ch = cfg->block_out_channels;
    const int last = cfg->n_levels - 1;
    char p[256];
    SD_TRY(load_conv(ld, &e->conv_in_w, &e->conv_in_b, ch[0], cfg->in_channels, 3, "encoder.conv_in"));
    for (int i = 0; i <= last; i++) {
        sd_vae_level *l = &e->levels[i];
        int64_t cin = i == 0 ? ch[0] : ch[i - 1];
        l->n_resnets = cfg->layers_per_block;
        for (int j = 0; j < l->n_resnets; j++) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
            SD_TRY(load_resnet(ld, &l->resnets[j], j == 0 ? cin : ch[i], ch[i], p));
        }
        if (i < last) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.downsamplers.0.conv", i);
            SD_TRY(load_conv(ld, &l->sample_w, &l->sample_b, ch[i], ch[i], 3, p));
        }
    }
    SD_TRY(load_mid(ld, &e->mid, ch[last], cfg->mid_attention, "encoder"));
    SD_TRY(load_norm(ld, &e->norm_out_w, &e->norm_out_b, ch[last], "encoder.conv_norm_out"));
    return load_conv(ld, &e->conv_out_w, &e->conv_out_b, 2 * cfg->latent_channels, ch[last], 3, "encoder.conv_out");
}

static sd_status load_decoder(sd_weight_loader *ld, sd_vae_coder *d, const sd_vae_config *cfg) {
    const int *ch = cfg->block_out_channels;
    const int last = cfg->n_levels - 1;
    char p[256];
    SD_TRY(load_conv(ld, &d->conv_in_w, &d->conv_in_b, ch[last], cfg->latent_channels, 3, "decoder.conv_in"));
    SD_TRY(load_mid(ld, &d->mid, ch[last], cfg->mid_attention, "decoder"));
    for (int i = 0; i <= last; i++) { /* up_blocks.i works at block_out_channels reversed */
        sd_vae_level *l = &d->levels[i];
        int64_t cout = ch[last - i], cin = i == 0 ? ch[last] : ch[last - i + 1];
        l->n_resnets = cfg->layers_per_block + 1;
        for (int j = 0; j < l->n_resnets; j++) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
            SD_TRY(load_resnet(ld, &l->resnets[j], j == 0 ? cin : cout, cout, p));
        }
        if (i < last) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            SD_TRY(load_conv(ld, &l->sample_w, &l->sample_b, cout, cout, 3, p));
        }
    }
    SD_TRY(load_norm(ld, &d->norm_out_w, &d->norm_out_b, ch[0], "decoder.conv_norm_out"));
    return load_conv(ld, &d->conv_out_w, &d->conv_out_b, cfg->out_channels, ch[0], 3, "decoder.conv_out");
}

sd_status sd_vae_load(sd_vae *vae, const sd_vae_config *cfg, const sd_safetensors *file, const char *prefix,
                      bool ldm_layout) {
    SD_CHECK_ARG(vae && cfg && file, "sd_vae_load: NULL argument");
    memset(vae, 0, sizeof *vae);
    SD_CHECK_ARG(cfg->n_levels >= 1 && cfg->n_levels <= SD_VAE_MAX_LEVELS && cfg->layers_per_block >= 1 &&
                     cfg->layers_per_block <= SD_VAE_MAX_LAYERS && cfg->norm_num_groups >= 1,
                 "sd_vae_load: invalid config (%d levels, %d layers per block, %d groups)", cfg->n_levels,
                 cfg->layers_per_block, cfg->norm_num_groups);
    SD_TRY(check_groups(cfg, file->path, ""));
    vae->cfg = *cfg;
    sd_weight_loader ld;
    init_loader(&ld, file, prefix ? prefix : "", ldm_layout, &vae->cfg, &vae->store);
    const int64_t latent = cfg->latent_channels;
    sd_status st = load_encoder(&ld, &vae->encoder, cfg);
    if (st == SD_OK) st = load_decoder(&ld, &vae->decoder, cfg);
    if (st == SD_OK) st = load_conv(&ld, &vae->quant_w, &vae->quant_b, 2 * latent, 2 * latent, 1, "quant_conv");
    if (st == SD_OK) st = load_conv(&ld, &vae->post_quant_w, &vae->post_quant_b, latent, latent, 1, "post_quant_conv");
    if (st != SD_OK) sd_vae_free(vae);
    return st;
}

void sd_vae_free(sd_vae *vae) {
    if (!vae) return;
    sd_weight_store_free(&vae->store);
    memset(vae, 0, sizeof *vae);
}

/* ---- forward ---- */

typedef struct vae_ctx {
    sd_backend *be;
    sd_arena *arena;
    int groups;
} vae_ctx;

static sd_tensor new_act(vae_ctx *c, int64_t n, int64_t ch, int64_t h, int64_t w) {
    return sd_backend_tensor(c->be, c->arena, 4, (int64_t[]){n, ch, h, w});
}

/* ResnetBlock2D without time embedding: out = shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x)))))).
 * out must not alias x. */
static void resnet_forward(vae_ctx *c, sd_tensor *out, const sd_tensor *x, const sd_vae_resnet *r) {
    const int64_t n = x->shape[0], cin = x->shape[1], h = x->shape[2], w = x->shape[3], cout = out->shape[1];
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    sd_tensor t = new_act(c, n, cin, h, w);                          // (N, Cin, H, W) norm1 + silu
    sd_tensor u = new_act(c, n, cout, h, w);                         // (N, Cout, H, W) conv1, later shortcut
    sd_tensor v = cin == cout ? t : new_act(c, n, cout, h, w);       // (N, Cout, H, W) norm2 + silu
    sd_op_group_norm(c->be, &t, x, &r->norm1_w, &r->norm1_b, c->groups, VAE_EPS, true);
    sd_op_conv2d(c->be, &u, &t, &r->conv1_w, &r->conv1_b, 1, 1);
    sd_op_group_norm(c->be, &v, &u, &r->norm2_w, &r->norm2_b, c->groups, VAE_EPS, true);
    sd_op_conv2d(c->be, out, &v, &r->conv2_w, &r->conv2_b, 1, 1);
    if (r->shortcut_w.data) {
        sd_op_conv2d(c->be, &u, x, &r->shortcut_w, &r->shortcut_b, 1, 0);
        sd_op_add(c->be, out, out, &u);
    } else {
        sd_op_add(c->be, out, out, x);
    }
    sd_arena_rewind(c->arena, mark);
}

/* n resnets in a row, the last writing dst; the others ping-pong between two arena buffers. */
static void resnet_chain(vae_ctx *c, sd_tensor *dst, const sd_tensor *x, const sd_vae_resnet *rs, int n_resnets) {
    const int64_t n = x->shape[0], cout = dst->shape[1], h = x->shape[2], w = x->shape[3];
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    sd_tensor buf[2] = {{0}, {0}};
    if (n_resnets > 1) buf[0] = new_act(c, n, cout, h, w);            // (N, Cout, H, W)
    if (n_resnets > 2) buf[1] = new_act(c, n, cout, h, w);
    const sd_tensor *in = x;
    for (int i = 0; i < n_resnets; i++) {
        sd_tensor *o = i == n_resnets - 1 ? dst : &buf[i % 2];
        resnet_forward(c, o, in, &rs[i]);
        in = o;
    }
    sd_arena_rewind(c->arena, mark);
}

/* diffusers Attention (from the old AttnBlock): group norm, one head over the H*W positions,
 * output projection, + x. */
static void attention_forward(vae_ctx *c, sd_tensor *out, const sd_tensor *x, const sd_vae_attention *a) {
    const int64_t n = x->shape[0], ch = x->shape[1], h = x->shape[2], w = x->shape[3], hw = h * w;
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    sd_tensor t = new_act(c, n, ch, h, w);                                 // (N, C, H, W) normed
    sd_tensor s = sd_backend_tensor(c->be, c->arena, 3, (int64_t[]){n, hw, ch}); // (N, HW, C)
    sd_tensor q = sd_backend_tensor(c->be, c->arena, 3, (int64_t[]){n, hw, ch});
    sd_tensor k = sd_backend_tensor(c->be, c->arena, 3, (int64_t[]){n, hw, ch});
    sd_tensor v = sd_backend_tensor(c->be, c->arena, 3, (int64_t[]){n, hw, ch});
    sd_op_group_norm(c->be, &t, x, &a->norm_w, &a->norm_b, c->groups, VAE_EPS, false);
    sd_op_transpose_hw_c(c->be, &s, &t, true);
    sd_op_linear(c->be, &q, &s, &a->q_w, &a->q_b);
    sd_op_linear(c->be, &k, &s, &a->k_w, &a->k_b);
    sd_op_linear(c->be, &v, &s, &a->v_w, &a->v_b);
    sd_op_attention(c->be, &s, &q, &k, &v, 1, false); // scale 1/sqrt(C), as dim_head = C
    sd_op_linear(c->be, &q, &s, &a->out_w, &a->out_b);
    sd_op_transpose_hw_c(c->be, &t, &q, false);
    sd_op_add(c->be, out, &t, x);
    sd_arena_rewind(c->arena, mark);
}

/* UNetMidBlock2D: resnet, attention, resnet. */
static void mid_forward(vae_ctx *c, sd_tensor *out, const sd_tensor *x, const sd_vae_mid *m, bool attention) {
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    sd_tensor t = new_act(c, x->shape[0], x->shape[1], x->shape[2], x->shape[3]); // (N, C, h, w)
    resnet_forward(c, &t, x, &m->resnets[0]);
    if (attention) {
        sd_tensor u = new_act(c, x->shape[0], x->shape[1], x->shape[2], x->shape[3]);
        attention_forward(c, &u, &t, &m->attn);
        resnet_forward(c, out, &u, &m->resnets[1]);
    } else {
        resnet_forward(c, out, &t, &m->resnets[1]);
    }
    sd_arena_rewind(c->arena, mark);
}

/* out (N, C, H+1, W+1) = x (N, C, H, W) with a zero column on the right and a zero row at the
 * bottom: Downsample2D's F.pad(x, (0, 1, 0, 1)), which the symmetric-padding conv op cannot do.
 * Built from two concats over flattened views (rows of W gain a zero; the (H)*(W+1) planes gain a
 * zero row), so it runs on any backend. */
static void pad_right_bottom(vae_ctx *c, sd_tensor *out, const sd_tensor *x) {
    const int64_t planes = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    const sd_dtype dt = x->dtype;
    sd_tensor zcol = sd_backend_tensor(c->be, c->arena, 2, (int64_t[]){planes * h, 1});
    sd_tensor zrow = sd_backend_tensor(c->be, c->arena, 2, (int64_t[]){planes, w + 1});
    sd_tensor wide = sd_backend_tensor(c->be, c->arena, 2, (int64_t[]){planes * h, w + 1}); // rows + 0
    sd_op_fill(c->be, &zcol, 0.0f);
    sd_tensor x_rows = sd_tensor_2d(x->data, dt, planes * h, w);
    sd_op_concat_channels(c->be, &wide, &x_rows, &zcol);
    sd_op_fill(c->be, &zrow, 0.0f);
    sd_tensor wide_planes = sd_tensor_2d(wide.data, dt, planes, h * (w + 1));
    sd_tensor out_planes = sd_tensor_2d(out->data, dt, planes, (h + 1) * (w + 1));
    sd_op_concat_channels(c->be, &out_planes, &wide_planes, &zrow);
    sd_arena_rewind(c->arena, mark);
}

/* DownEncoderBlock2D: resnets, then (except on the last level) pad + 3x3 stride-2 conv. */
static void down_level_forward(vae_ctx *c, sd_tensor *out, const sd_tensor *x, const sd_vae_level *l) {
    if (!l->sample_w.data) {
        resnet_chain(c, out, x, l->resnets, l->n_resnets);
        return;
    }
    const int64_t n = x->shape[0], ch = out->shape[1], h = x->shape[2], w = x->shape[3];
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    sd_tensor r = new_act(c, n, ch, h, w);         // (N, C, H, W)
    sd_tensor p = new_act(c, n, ch, h + 1, w + 1); // (N, C, H+1, W+1)
    resnet_chain(c, &r, x, l->resnets, l->n_resnets);
    pad_right_bottom(c, &p, &r);
    sd_op_conv2d(c->be, out, &p, &l->sample_w, &l->sample_b, 2, 0); // (N, C, H/2, W/2)
    sd_arena_rewind(c->arena, mark);
}

/* UpDecoderBlock2D: resnets, then (except on the last level) nearest 2x + 3x3 conv. */
static void up_level_forward(vae_ctx *c, sd_tensor *out, const sd_tensor *x, const sd_vae_level *l) {
    if (!l->sample_w.data) {
        resnet_chain(c, out, x, l->resnets, l->n_resnets);
        return;
    }
    const int64_t n = x->shape[0], ch = out->shape[1], h = x->shape[2], w = x->shape[3];
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    sd_tensor r = new_act(c, n, ch, h, w);         // (N, C, H, W)
    sd_tensor u = new_act(c, n, ch, 2 * h, 2 * w); // (N, C, 2H, 2W)
    resnet_chain(c, &r, x, l->resnets, l->n_resnets);
    sd_op_upsample_nearest2x(c->be, &u, &r);
    sd_op_conv2d(c->be, out, &u, &l->sample_w, &l->sample_b, 1, 1);
    sd_arena_rewind(c->arena, mark);
}

/* out = clamp(x, lo, hi) from ReLUs, exact inside [lo, hi] (both correction terms are +0):
 * max(x, lo) = x + relu(lo - x), min(y, hi) = y - relu(y - hi). */
static void clamp_forward(vae_ctx *c, sd_tensor *out, const sd_tensor *x, float lo, float hi) {
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    sd_tensor t = sd_backend_tensor(c->be, c->arena, x->ndim, x->shape);
    sd_op_scale(c->be, &t, x, -1.0f, lo);
    sd_op_activation(c->be, &t, &t, SD_ACT_RELU);
    sd_op_add(c->be, out, x, &t);
    sd_op_scale(c->be, &t, out, 1.0f, -hi);
    sd_op_activation(c->be, &t, &t, SD_ACT_RELU);
    sd_op_axpby(c->be, out, 1.0f, out, -1.0f, &t);
    sd_arena_rewind(c->arena, mark);
}

/* Checks a caller tensor: float32, 4-D, data present and the expected shape. */
static sd_status check_io(const sd_tensor *t, const char *op, const char *what, int64_t n, int64_t ch, int64_t h,
                          int64_t w) {
    if (!t || !t->data)
        return sd_fail(SD_ERR_ARG, "%s: %s tensor has no data", op, what);
    if (!sd_is_act_dtype(t->dtype) || t->ndim != 4 || t->shape[0] != n || t->shape[1] != ch || t->shape[2] != h ||
        t->shape[3] != w) {
        char found[128];
        sd_st_shape_str(found, sizeof found, t->ndim, t->shape);
        return sd_fail(SD_ERR_ARG, "%s: %s: expected float32/float16/bfloat16 [%lld, %lld, %lld, %lld], found %s %s", op, what,
                       (long long)n, (long long)ch, (long long)h, (long long)w, sd_dtype_name(t->dtype), found);
    }
    return SD_OK;
}

/* Checks an input image/latent: float32 [N, ch, H, W] with H and W positive multiples of `mult`. */
static sd_status check_input(const sd_tensor *t, const char *op, const char *what, int64_t ch, int64_t mult) {
    if (!t || !t->data) return sd_fail(SD_ERR_ARG, "%s: %s tensor has no data", op, what);
    char found[128];
    sd_st_shape_str(found, sizeof found, t->ndim, t->shape);
    if (!sd_is_act_dtype(t->dtype) || t->ndim != 4 || t->shape[0] < 1 || t->shape[1] != ch)
        return sd_fail(SD_ERR_ARG, "%s: %s: expected float32/float16/bfloat16 [N, %lld, H, W], found %s %s", op, what, (long long)ch,
                       sd_dtype_name(t->dtype), found);
    if (t->shape[2] < mult || t->shape[3] < mult || t->shape[2] % mult != 0 || t->shape[3] % mult != 0)
        return sd_fail(SD_ERR_ARG, "%s: %s %s: height and width must be positive multiples of %lld", op, what, found,
                       (long long)mult);
    return SD_OK;
}

/* Ends a forward pass: arena failures first (they made ops skip), then the backend's. */
static sd_status finish(sd_backend *be, sd_arena *arena, sd_arena_mark mark) {
    sd_arena_rewind(arena, mark);
    sd_status st = arena->status != SD_OK ? arena->status : sd_backend_status(be);
    sd_backend_clear_status(be);
    return st;
}

static sd_status vae_encode_f32(sd_vae *vae, sd_backend *be, sd_arena *arena, sd_tensor *mean, sd_tensor *std,
                        const sd_tensor *image) {
    SD_CHECK_ARG(vae && be && arena, "sd_vae_encode: NULL argument");
    const sd_vae_config *cfg = &vae->cfg;
    SD_CHECK_ARG(vae->encoder.conv_in_w.data, "sd_vae_encode: the VAE is not loaded");
    const int64_t f = (int64_t)1 << (cfg->n_levels - 1), L = cfg->latent_channels;
    SD_TRY(check_input(image, "vae encode", "image", cfg->in_channels, f));
    const int64_t n = image->shape[0], H = image->shape[2], W = image->shape[3], h = H / f, w = W / f;
    SD_TRY(check_io(mean, "vae encode", "mean", n, L, h, w));
    SD_TRY(check_io(std, "vae encode", "std", n, L, h, w));
    SD_TRY(arena->status);

    vae_ctx c = {be, arena, cfg->norm_num_groups};
    const sd_vae_coder *e = &vae->encoder;
    const int *ch = cfg->block_out_channels;
    const int last = cfg->n_levels - 1;
    sd_arena_mark mark = sd_arena_get_mark(arena);
    sd_tensor x = new_act(&c, n, ch[0], H, W); // (N, C0, H, W)
    sd_op_conv2d(be, &x, image, &e->conv_in_w, &e->conv_in_b, 1, 1);
    int64_t hh = H, ww = W;
    for (int i = 0; i <= last; i++) {
        if (i < last) {
            hh /= 2;
            ww /= 2;
        }
        sd_tensor y = new_act(&c, n, ch[i], hh, ww); // (N, Ci, H/2^(i+1), W/2^(i+1)); last level keeps size
        down_level_forward(&c, &y, &x, &e->levels[i]);
        x = y;
    }
    sd_tensor m = new_act(&c, n, ch[last], h, w); // (N, C, h, w)
    mid_forward(&c, &m, &x, &e->mid, cfg->mid_attention);
    sd_op_group_norm(be, &x, &m, &e->norm_out_w, &e->norm_out_b, c.groups, VAE_EPS, true);
    sd_tensor z = new_act(&c, n, 2 * L, h, w); // (N, 2L, h, w)
    sd_op_conv2d(be, &z, &x, &e->conv_out_w, &e->conv_out_b, 1, 1);

    /* quant_conv split by output rows: mean from rows 0..L-1, logvar from rows L..2L-1, so each
     * lands contiguous even when N > 1 (torch.chunk of the moments along channels) */
    sd_tensor qw_mean = sd_tensor_slice0(&vae->quant_w, 0, L), qw_logvar = sd_tensor_slice0(&vae->quant_w, L, L);
    sd_tensor qb_mean = sd_tensor_slice0(&vae->quant_b, 0, L), qb_logvar = sd_tensor_slice0(&vae->quant_b, L, L);
    sd_tensor logvar = new_act(&c, n, L, h, w); // (N, L, h, w)
    sd_op_conv2d(be, mean, &z, &qw_mean, &qb_mean, 1, 0);
    sd_op_conv2d(be, &logvar, &z, &qw_logvar, &qb_logvar, 1, 0);
    clamp_forward(&c, &logvar, &logvar, LOGVAR_MIN, LOGVAR_MAX);
    sd_op_scale(be, std, &logvar, 0.5f, 0.0f);
    sd_op_activation(be, std, std, SD_ACT_EXP);
    return finish(be, arena, mark);
}

static sd_status vae_decode_f32(sd_vae *vae, sd_backend *be, sd_arena *arena, sd_tensor *image, const sd_tensor *latent) {
    SD_CHECK_ARG(vae && be && arena, "sd_vae_decode: NULL argument");
    const sd_vae_config *cfg = &vae->cfg;
    SD_CHECK_ARG(vae->decoder.conv_in_w.data, "sd_vae_decode: the VAE is not loaded");
    const int64_t f = (int64_t)1 << (cfg->n_levels - 1), L = cfg->latent_channels;
    SD_TRY(check_input(latent, "vae decode", "latent", L, 1));
    const int64_t n = latent->shape[0], h = latent->shape[2], w = latent->shape[3];
    SD_TRY(check_io(image, "vae decode", "image", n, cfg->out_channels, h * f, w * f));
    SD_TRY(arena->status);

    vae_ctx c = {be, arena, cfg->norm_num_groups};
    const sd_vae_coder *d = &vae->decoder;
    const int *ch = cfg->block_out_channels;
    const int last = cfg->n_levels - 1;
    sd_arena_mark mark = sd_arena_get_mark(arena);
    sd_tensor z = new_act(&c, n, L, h, w); // (N, L, h, w)
    sd_op_conv2d(be, &z, latent, &vae->post_quant_w, &vae->post_quant_b, 1, 0);
    sd_tensor x = new_act(&c, n, ch[last], h, w); // (N, C, h, w)
    sd_op_conv2d(be, &x, &z, &d->conv_in_w, &d->conv_in_b, 1, 1);
    sd_tensor m = new_act(&c, n, ch[last], h, w);
    mid_forward(&c, &m, &x, &d->mid, cfg->mid_attention);
    x = m;
    int64_t hh = h, ww = w;
    for (int i = 0; i <= last; i++) {
        if (i < last) {
            hh *= 2;
            ww *= 2;
        }
        sd_tensor y = new_act(&c, n, ch[last - i], hh, ww); // (N, C, 2^(i+1) h, 2^(i+1) w); last keeps size
        up_level_forward(&c, &y, &x, &d->levels[i]);
        x = y;
    }
    sd_tensor t = new_act(&c, n, ch[0], hh, ww); // (N, C0, H, W)
    sd_op_group_norm(be, &t, &x, &d->norm_out_w, &d->norm_out_b, c.groups, VAE_EPS, true);
    sd_op_conv2d(be, image, &t, &d->conv_out_w, &d->conv_out_b, 1, 1);
    return finish(be, arena, mark);
}

sd_status sd_vae_encode(sd_vae *vae, sd_backend *be, sd_arena *arena, sd_tensor *mean, sd_tensor *std,
                        const sd_tensor *image) {
    bool bf16_math = be->bf16_math; /* autoencoders always run float32 math (pixels; see bench/RESULTS.md) */
    be->bf16_math = false;
    sd_status st = vae_encode_f32(vae, be, arena, mean, std, image);
    be->bf16_math = bf16_math;
    return st;
}

sd_status sd_vae_decode(sd_vae *vae, sd_backend *be, sd_arena *arena, sd_tensor *image, const sd_tensor *latent) {
    bool bf16_math = be->bf16_math; /* autoencoders always run float32 math (pixels; see bench/RESULTS.md) */
    be->bf16_math = false;
    sd_status st = vae_decode_f32(vae, be, arena, image, latent);
    be->bf16_math = bf16_math;
    return st;
}
