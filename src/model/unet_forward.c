/* unet_forward.c — the UNet forward pass as straight-line calls over backend ops, one function per
 * block type, following diffusers' UNet2DConditionModel.forward. Every block allocates its output
 * from the arena, takes a mark, allocates its temporaries and rewinds, so the arena holds only the
 * running activation plus the skip connections. */
#include <math.h>
#include <string.h>

#include "model/unet.h"

enum { SD_UNET_MAX_SKIPS = 1 + SD_UNET_MAX_LEVELS * SD_UNET_MAX_LAYERS };

typedef struct unet_ctx {
    sd_backend *be;
    sd_arena *arena;
    const sd_unet_config *cfg;
    const sd_tensor *temb_act; /* silu(time embedding) [B, T]: every ResNet's time input */
    const sd_tensor *context;  /* [B, 77, cross_dim] */
} unet_ctx;

static sd_tensor image(unet_ctx *c, int64_t n, int64_t ch, int64_t h, int64_t w) {
    return sd_backend_tensor(c->be, c->arena, 4, (int64_t[]){n, ch, h, w});
}

static sd_tensor tokens(unet_ctx *c, int64_t n, int64_t t, int64_t ch) {
    return sd_backend_tensor(c->be, c->arena, 3, (int64_t[]){n, t, ch});
}

void sd_unet_time_proj(float *out, const float *timesteps, int n, int dim, bool flip_sin_to_cos, float freq_shift) {
    /* diffusers get_timestep_embedding, in float32 like torch: exponent = -ln(10000) * i / (half - shift) */
    int half = dim / 2;
    const float neg_log_period = (float)-9.210340371976184; /* -ln(10000) rounded to float, as torch does */
    for (int b = 0; b < n; b++) {
        float *row = out + (int64_t)b * dim;
        for (int i = 0; i < half; i++) {
            float exponent = neg_log_period * (float)i / ((float)half - freq_shift);
            float arg = timesteps[b] * expf(exponent);
            float s = sinf(arg), co = cosf(arg);
            row[flip_sin_to_cos ? half + i : i] = s;
            row[flip_sin_to_cos ? i : half + i] = co;
        }
        if (dim % 2) row[dim - 1] = 0.0f; /* torch pads odd dims with a zero column */
    }
}

/* ResnetBlock2D: out = shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) + proj(temb)))). */
static void resnet_forward(unet_ctx *c, sd_tensor *out, const sd_tensor *x, const sd_unet_resnet *r) {
    int64_t n = x->shape[0], h = x->shape[2], w = x->shape[3];
    const int g = c->cfg->norm_groups;
    const float eps = c->cfg->norm_eps;
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    sd_tensor a = image(c, n, r->in_channels, h, w);   // (N, Cin, H, W)
    sd_tensor b = image(c, n, r->out_channels, h, w);  // (N, Cout, H, W)
    sd_tensor t = tokens(c, 1, n, r->out_channels);    // (1, N, Cout): time projection
    sd_op_group_norm(c->be, &a, x, &r->norm1_w, &r->norm1_b, g, eps, true);
    sd_op_conv2d(c->be, &b, &a, &r->conv1_w, &r->conv1_b, 1, 1);
    sd_op_linear(c->be, &t, c->temb_act, &r->time_w, &r->time_b);
    sd_op_add_broadcast(c->be, &b, &b, &t);
    sd_op_group_norm(c->be, &b, &b, &r->norm2_w, &r->norm2_b, g, eps, true);
    sd_op_conv2d(c->be, out, &b, &r->conv2_w, &r->conv2_b, 1, 1);
    if (r->shortcut_w.data) {
        sd_tensor s = image(c, n, r->out_channels, h, w);
        sd_op_conv2d(c->be, &s, x, &r->shortcut_w, &r->shortcut_b, 1, 0);
        sd_op_add(c->be, out, out, &s);
    } else {
        sd_op_add(c->be, out, out, x);
    }
    sd_arena_rewind(c->arena, mark);
}

/* Transformer2DModel: norm, proj_in, n_blocks BasicTransformerBlocks (self-attention,
 * cross-attention, GEGLU feed-forward, each pre-LayerNorm + residual), proj_out, + input. */
static void transformer_forward(unet_ctx *c, sd_tensor *out, const sd_tensor *x, const sd_unet_transformer *t) {
    int64_t n = x->shape[0], ch = x->shape[1], h = x->shape[2], w = x->shape[3], hw = h * w;
    int64_t ctx_len = c->context->shape[1];
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    sd_tensor normed = image(c, n, ch, h, w);    // (N, C, H, W)
    sd_tensor seq = tokens(c, n, hw, ch);        // (N, HW, C) scratch
    sd_tensor hid = tokens(c, n, hw, ch);        // (N, HW, C) residual stream
    sd_tensor a = tokens(c, n, hw, ch);          // (N, HW, C) normed stream
    sd_tensor q = tokens(c, n, hw, ch), k = tokens(c, n, hw, ch), v = tokens(c, n, hw, ch);
    sd_tensor kc = tokens(c, n, ctx_len, ch), vc = tokens(c, n, ctx_len, ch); // (N, 77, C)
    sd_tensor ff = tokens(c, n, hw, 8 * ch);     // (N, HW, 8C) GEGLU input
    sd_tensor gated = tokens(c, n, hw, 4 * ch);  // (N, HW, 4C)

    sd_op_group_norm(c->be, &normed, x, &t->norm_w, &t->norm_b, c->cfg->norm_groups, 1e-6f, false);
    sd_op_transpose_hw_c(c->be, &seq, &normed, true);
    sd_op_linear(c->be, &hid, &seq, &t->proj_in_w, &t->proj_in_b);
    for (int i = 0; i < t->n_blocks; i++) {
        const sd_unet_tblock *b = &t->blocks[i];
        // self-attention
        sd_op_layer_norm(c->be, &a, &hid, &b->ln1_w, &b->ln1_b, 1e-5f);
        sd_op_linear(c->be, &q, &a, &b->attn1_q, NULL);
        sd_op_linear(c->be, &k, &a, &b->attn1_k, NULL);
        sd_op_linear(c->be, &v, &a, &b->attn1_v, NULL);
        sd_op_attention(c->be, &seq, &q, &k, &v, t->heads, false);
        sd_op_linear(c->be, &a, &seq, &b->attn1_out_w, &b->attn1_out_b);
        sd_op_add(c->be, &hid, &hid, &a);
        // cross-attention on the prompt embedding
        sd_op_layer_norm(c->be, &a, &hid, &b->ln2_w, &b->ln2_b, 1e-5f);
        sd_op_linear(c->be, &q, &a, &b->attn2_q, NULL);
        sd_op_linear(c->be, &kc, c->context, &b->attn2_k, NULL);
        sd_op_linear(c->be, &vc, c->context, &b->attn2_v, NULL);
        sd_op_attention(c->be, &seq, &q, &kc, &vc, t->heads, false);
        sd_op_linear(c->be, &a, &seq, &b->attn2_out_w, &b->attn2_out_b);
        sd_op_add(c->be, &hid, &hid, &a);
        // feed-forward
        sd_op_layer_norm(c->be, &a, &hid, &b->ln3_w, &b->ln3_b, 1e-5f);
        sd_op_linear(c->be, &ff, &a, &b->ff_in_w, &b->ff_in_b);
        sd_op_geglu(c->be, &gated, &ff);
        sd_op_linear(c->be, &a, &gated, &b->ff_out_w, &b->ff_out_b);
        sd_op_add(c->be, &hid, &hid, &a);
    }
    // back to the image, plus the block's input
    sd_op_linear(c->be, &seq, &hid, &t->proj_out_w, &t->proj_out_b);
    sd_op_transpose_hw_c(c->be, out, &seq, false);
    sd_op_add(c->be, out, out, x);
    sd_arena_rewind(c->arena, mark);
}

/* SDXL's added embedding, added to temb [1, B, T]: add_embedding(cat(text_embeds, time_proj(time_ids)))
 * with add_embedding = linear, SiLU, linear. host: scratch of at least addition_embed_input_dim. */
static void add_text_time(unet_ctx *c, const sd_unet *u, sd_tensor *temb, const sd_unet_added_cond *added, float *host) {
    const sd_unet_config *cfg = c->cfg;
    const int64_t B = temb->shape[1], T = cfg->time_embed_dim, in = cfg->addition_embed_input_dim;
    const int P = cfg->text_embeds_dim, D = cfg->addition_time_embed_dim;
    sd_tensor cond = tokens(c, 1, B, in); // (1, B, P + 6D)
    sd_tensor h = tokens(c, 1, B, T), aug = tokens(c, 1, B, T);
    if (c->arena->status != SD_OK) return;
    for (int64_t b = 0; b < B; b++) { /* one row at a time through the host scratch */
        memcpy(host, added->text_embeds + b * P, (size_t)P * sizeof *host);
        sd_unet_time_proj(host + P, added->time_ids + b * SD_UNET_TIME_IDS, SD_UNET_TIME_IDS, D, cfg->flip_sin_to_cos,
                          cfg->freq_shift);
        sd_tensor row = sd_tensor_2d(sd_tensor_at(&cond, b * in), cond.dtype, 1, in);
        sd_backend_upload(c->be, &row, host);
    }
    sd_op_linear(c->be, &h, &cond, &u->add_w1, &u->add_b1);
    sd_op_activation(c->be, &h, &h, SD_ACT_SILU);
    sd_op_linear(c->be, &aug, &h, &u->add_w2, &u->add_b2);
    sd_op_add(c->be, temb, temb, &aug);
}

sd_status sd_unet_forward(sd_unet *unet, sd_backend *be, sd_arena *arena, sd_tensor *noise_pred,
                          const sd_tensor *sample, const float *timesteps, const sd_tensor *context) {
    return sd_unet_forward_added(unet, be, arena, noise_pred, sample, timesteps, context, NULL);
}

sd_status sd_unet_forward_added(sd_unet *unet, sd_backend *be, sd_arena *arena, sd_tensor *noise_pred,
                                const sd_tensor *sample, const float *timesteps, const sd_tensor *context,
                                const sd_unet_added_cond *added) {
    const sd_unet_config *cfg = &unet->cfg;
    if (cfg->text_time && (!added || !added->text_embeds || !added->time_ids))
        return sd_fail(SD_ERR_ARG, "unet: this is an SDXL UNet (addition_embed_type text_time): it needs text_embeds "
                       "[batch, %d] and time_ids [batch, 6]", cfg->text_embeds_dim);
    if (sample->ndim != 4 || sample->shape[1] != cfg->in_channels || context->ndim != 3 ||
        context->shape[0] != sample->shape[0] || context->shape[2] != cfg->cross_attention_dim || noise_pred->ndim != 4 ||
        noise_pred->shape[0] != sample->shape[0] || noise_pred->shape[1] != cfg->out_channels ||
        noise_pred->shape[2] != sample->shape[2] || noise_pred->shape[3] != sample->shape[3])
        return sd_fail(SD_ERR_ARG, "unet: sample [%lld, %lld, %lld, %lld] / context [%lld, %lld, %lld] do not fit the model "
                       "(%d input channels, cross-attention width %d)",
                       (long long)sample->shape[0], (long long)sample->shape[1], (long long)sample->shape[2],
                       (long long)sample->shape[3], (long long)context->shape[0], (long long)context->shape[1],
                       (long long)context->shape[2], cfg->in_channels, cfg->cross_attention_dim);
    const int64_t B = sample->shape[0], T = cfg->time_embed_dim, C0 = cfg->block_out_channels[0];
    const int n_levels = cfg->n_levels, L = cfg->layers_per_block;
    sd_arena_mark mark = sd_arena_get_mark(arena);
    unet_ctx c = {be, arena, cfg, NULL, context};

    // time embedding: sinusoids (host) -> linear -> silu -> linear; resnets take silu of it
    float proj_host[16384]; /* B x C0: 51 rows of SD's 320 */
    if (B * C0 > (int64_t)(sizeof proj_host / sizeof proj_host[0]) ||
        (cfg->text_time && cfg->addition_embed_input_dim > (int)(sizeof proj_host / sizeof proj_host[0])))
        return sd_fail(SD_ERR_LIMIT, "unet: batch %lld is too large for %lld time channels", (long long)B, (long long)C0);
    sd_unet_time_proj(proj_host, timesteps, (int)B, (int)C0, cfg->flip_sin_to_cos, cfg->freq_shift);
    sd_tensor tproj = tokens(&c, 1, B, C0);   // (1, B, C0)
    sd_tensor temb = tokens(&c, 1, B, T);     // (1, B, T)
    sd_tensor temb_act = tokens(&c, 1, B, T); // (1, B, T)
    sd_backend_upload(be, &tproj, proj_host);
    sd_op_linear(be, &temb, &tproj, &unet->time_w1, &unet->time_b1);
    sd_op_activation(be, &temb, &temb, SD_ACT_SILU);
    sd_op_linear(be, &temb_act, &temb, &unet->time_w2, &unet->time_b2);
    if (cfg->text_time) add_text_time(&c, unet, &temb_act, added, proj_host); /* tproj is uploaded: reuse */
    sd_op_activation(be, &temb_act, &temb_act, SD_ACT_SILU);
    c.temb_act = &temb_act;

    // down path, keeping every output for the skip connections
    sd_tensor skips[SD_UNET_MAX_SKIPS];
    int n_skips = 0;
    int64_t h = sample->shape[2], w = sample->shape[3];
    sd_tensor x = image(&c, B, C0, h, w);
    sd_op_conv2d(be, &x, sample, &unet->conv_in_w, &unet->conv_in_b, 1, 1);
    skips[n_skips++] = x;
    for (int b = 0; b < n_levels; b++) {
        const sd_unet_level *lv = &unet->down[b];
        int64_t ch = cfg->block_out_channels[b];
        for (int j = 0; j < L; j++) {
            sd_tensor y = image(&c, B, ch, h, w);
            resnet_forward(&c, &y, &x, &lv->resnets[j]);
            if (lv->has_attention) {
                sd_tensor z = image(&c, B, ch, h, w);
                transformer_forward(&c, &z, &y, &lv->attentions[j]);
                y = z;
            }
            skips[n_skips++] = x = y;
        }
        if (lv->has_sampler) {
            h = (h + 1) / 2, w = (w + 1) / 2; /* 3x3, stride 2, padding 1 */
            sd_tensor y = image(&c, B, ch, h, w);
            sd_op_conv2d(be, &y, &x, &lv->sampler_w, &lv->sampler_b, 2, 1);
            skips[n_skips++] = x = y;
        }
    }

    // middle
    int64_t deep = cfg->block_out_channels[n_levels - 1];
    sd_tensor m1 = image(&c, B, deep, h, w), m2 = image(&c, B, deep, h, w), m3 = image(&c, B, deep, h, w);
    resnet_forward(&c, &m1, &x, &unet->mid_resnets[0]);
    transformer_forward(&c, &m2, &m1, &unet->mid_attention);
    resnet_forward(&c, &m3, &m2, &unet->mid_resnets[1]);
    x = m3;

    // up path: each ResNet takes the running activation concatenated with the latest skip
    for (int i = 0; i < n_levels; i++) {
        const sd_unet_level *lv = &unet->up[i];
        int64_t ch = cfg->block_out_channels[n_levels - 1 - i];
        for (int j = 0; j <= L; j++) {
            const sd_tensor *skip = &skips[--n_skips];
            sd_tensor cat = image(&c, B, x.shape[1] + skip->shape[1], h, w);
            sd_op_concat_channels(be, &cat, &x, skip);
            sd_tensor y = image(&c, B, ch, h, w);
            resnet_forward(&c, &y, &cat, &lv->resnets[j]);
            if (lv->has_attention) {
                sd_tensor z = image(&c, B, ch, h, w);
                transformer_forward(&c, &z, &y, &lv->attentions[j]);
                y = z;
            }
            x = y;
        }
        if (lv->has_sampler) {
            /* to the size of the next skip: 2x, or the odd size the downsampler came from */
            h = skips[n_skips - 1].shape[2], w = skips[n_skips - 1].shape[3];
            sd_tensor up = image(&c, B, ch, h, w), y = image(&c, B, ch, h, w);
            sd_op_upsample_nearest(be, &up, &x);
            sd_op_conv2d(be, &y, &up, &lv->sampler_w, &lv->sampler_b, 1, 1);
            x = y;
        }
    }

    // out
    sd_tensor normed = image(&c, B, C0, h, w);
    sd_op_group_norm(be, &normed, &x, &unet->norm_out_w, &unet->norm_out_b, cfg->norm_groups, cfg->norm_eps, true);
    sd_op_conv2d(be, noise_pred, &normed, &unet->conv_out_w, &unet->conv_out_b, 1, 1);

    sd_status st = arena->status != SD_OK ? arena->status : sd_backend_status(be);
    sd_backend_clear_status(be);
    sd_arena_rewind(arena, mark);
    return st;
}
