/* taesd.c — TAESD (diffusers AutoencoderTiny): config, loading and forward passes (see taesd.h).
 *
 * Weight names are the nn.Sequential indices of EncoderTiny.layers / DecoderTiny.layers, which
 * count the weightless ReLU and Upsample slots too; load walks the Sequential in the same order
 * diffusers builds it, so the indices come out of the config rather than a fixed table.
 */
#include "model/taesd.h"

#include <stdio.h>
#include <string.h>

enum { TAESD_MAX_CHANNELS = 1 << 14, TAESD_LIST_MAX = 16 };

/* ---- config ---- */

void sd_taesd_config_default(sd_taesd_config *cfg) {
    static const int enc_blocks[] = {1, 3, 3, 3}, dec_blocks[] = {3, 3, 3, 1};
    memset(cfg, 0, sizeof *cfg);
    cfg->in_channels = 3;
    cfg->out_channels = 3;
    cfg->latent_channels = 4;
    cfg->n_enc_levels = 4;
    cfg->n_dec_levels = 4;
    for (int i = 0; i < 4; i++) {
        cfg->encoder_channels[i] = 64;
        cfg->decoder_channels[i] = 64;
        cfg->encoder_blocks[i] = enc_blocks[i];
        cfg->decoder_blocks[i] = dec_blocks[i];
    }
    cfg->scaling_factor = 1.0f;
    cfg->shift_factor = 0.0f;
}

/* Reads one of the paired per-level lists (channels, blocks), keeping the default when absent. */
static sd_status read_levels(const sd_config *json, const char *key, long lo, long hi, int *dst, int *n_levels) {
    long v[TAESD_LIST_MAX];
    int n = 0;
    SD_TRY(sd_config_int_list(json, key, lo, hi, v, TAESD_LIST_MAX, &n));
    if (n == 0) return SD_OK;
    if (n > SD_TAESD_MAX_LEVELS)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: \"%s\" has %d levels, at most %d supported", json->path, key, n,
                       SD_TAESD_MAX_LEVELS);
    for (int i = 0; i < n; i++) dst[i] = (int)v[i];
    *n_levels = n;
    return SD_OK;
}

/* diffusers builds every level's convs and blocks at that level's width from the previous level's
 * output, so a width change between levels cannot be built there either. */
static sd_status check_one_width(const sd_config *json, const char *key, const int *ch, int n) {
    for (int i = 1; i < n; i++)
        if (ch[i] != ch[0])
            return sd_fail(SD_ERR_UNSUPPORTED, "%s: %s[%d] = %d differs from %s[0] = %d; AutoencoderTiny needs one width",
                           json->path, key, i, ch[i], key, ch[0]);
    return SD_OK;
}

sd_status sd_taesd_config_read(sd_taesd_config *cfg, const sd_config *json) {
    sd_taesd_config c;
    sd_taesd_config_default(&c);
    long in_ch, out_ch, latent, up_factor;
    double scaling, shift;
    const char *act = NULL, *up_fn = NULL;
    SD_TRY(sd_config_int(json, "in_channels", 1, 64, 3, &in_ch));
    SD_TRY(sd_config_int(json, "out_channels", 1, 64, 3, &out_ch));
    SD_TRY(sd_config_int(json, "latent_channels", 1, 1024, 4, &latent));
    SD_TRY(sd_config_int(json, "upsampling_scaling_factor", 1, 16, 2, &up_factor));
    SD_TRY(sd_config_double(json, "scaling_factor", 1e-6, 1e6, 1.0, &scaling));
    SD_TRY(sd_config_double(json, "shift_factor", -1e6, 1e6, 0.0, &shift));
    SD_TRY(sd_config_string(json, "act_fn", "relu", &act));
    SD_TRY(sd_config_string(json, "upsample_fn", "nearest", &up_fn));
    int n_enc_ch = c.n_enc_levels, n_enc_blocks = c.n_enc_levels;
    int n_dec_ch = c.n_dec_levels, n_dec_blocks = c.n_dec_levels;
    SD_TRY(read_levels(json, "encoder_block_out_channels", 1, TAESD_MAX_CHANNELS, c.encoder_channels, &n_enc_ch));
    SD_TRY(read_levels(json, "num_encoder_blocks", 0, SD_TAESD_MAX_BLOCKS, c.encoder_blocks, &n_enc_blocks));
    SD_TRY(read_levels(json, "decoder_block_out_channels", 1, TAESD_MAX_CHANNELS, c.decoder_channels, &n_dec_ch));
    SD_TRY(read_levels(json, "num_decoder_blocks", 0, SD_TAESD_MAX_BLOCKS, c.decoder_blocks, &n_dec_blocks));
    if (n_enc_ch != n_enc_blocks)
        return sd_fail(SD_ERR_FORMAT, "%s: encoder_block_out_channels has %d entries but num_encoder_blocks %d",
                       json->path, n_enc_ch, n_enc_blocks);
    if (n_dec_ch != n_dec_blocks)
        return sd_fail(SD_ERR_FORMAT, "%s: decoder_block_out_channels has %d entries but num_decoder_blocks %d",
                       json->path, n_dec_ch, n_dec_blocks);
    if (strcmp(act, "relu") != 0)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: act_fn \"%s\" is not supported (TAESD uses relu)", json->path, act);
    if (up_factor != 2)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: upsampling_scaling_factor %ld is not supported (only 2)", json->path,
                       up_factor);
    if (strcmp(up_fn, "nearest") != 0)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: upsample_fn \"%s\" is not supported (only nearest)", json->path, up_fn);
    SD_TRY(check_one_width(json, "encoder_block_out_channels", c.encoder_channels, n_enc_ch));
    SD_TRY(check_one_width(json, "decoder_block_out_channels", c.decoder_channels, n_dec_ch));
    c.in_channels = (int)in_ch;
    c.out_channels = (int)out_ch;
    c.latent_channels = (int)latent;
    c.n_enc_levels = n_enc_ch;
    c.n_dec_levels = n_dec_ch;
    c.scaling_factor = (float)scaling;
    c.shift_factor = (float)shift;
    *cfg = c;
    return SD_OK;
}

/* ---- loading ---- */

static sd_status load_conv(sd_weight_loader *ld, sd_tensor *w, sd_tensor *b, int64_t cout, int64_t cin, int k,
                           int layer, const char *coder) {
    SD_TRY(sd_weights_loadf(ld, w, 4, (int64_t[]){cout, cin, k, k}, "%s.layers.%d.weight", coder, layer));
    if (b) SD_TRY(sd_weights_loadf(ld, b, 1, (int64_t[]){cout}, "%s.layers.%d.bias", coder, layer));
    return SD_OK;
}

/* AutoencoderTinyBlock's convs sit at conv.0, conv.2, conv.4 (ReLUs between). */
static sd_status load_block(sd_weight_loader *ld, sd_taesd_block *b, int64_t ch, int layer, const char *coder) {
    for (int k = 0; k < 3; k++) {
        SD_TRY(sd_weights_loadf(ld, &b->conv_w[k], 4, (int64_t[]){ch, ch, 3, 3}, "%s.layers.%d.conv.%d.weight", coder,
                                layer, 2 * k));
        SD_TRY(sd_weights_loadf(ld, &b->conv_b[k], 1, (int64_t[]){ch}, "%s.layers.%d.conv.%d.bias", coder, layer,
                                2 * k));
    }
    return SD_OK;
}

static sd_status load_encoder(sd_weight_loader *ld, sd_taesd *t) {
    const sd_taesd_config *cfg = &t->cfg;
    const int64_t ch = cfg->encoder_channels[0];
    int layer = 0;
    for (int i = 0; i < cfg->n_enc_levels; i++) {
        sd_taesd_level *l = &t->enc[i];
        if (i == 0) SD_TRY(load_conv(ld, &l->conv_w, &l->conv_b, ch, cfg->in_channels, 3, layer++, "encoder"));
        else SD_TRY(load_conv(ld, &l->conv_w, NULL, ch, ch, 3, layer++, "encoder")); /* stride 2, no bias */
        l->n_blocks = cfg->encoder_blocks[i];
        for (int b = 0; b < l->n_blocks; b++) SD_TRY(load_block(ld, &l->blocks[b], ch, layer++, "encoder"));
    }
    return load_conv(ld, &t->enc_out_w, &t->enc_out_b, cfg->latent_channels, ch, 3, layer, "encoder");
}

static sd_status load_decoder(sd_weight_loader *ld, sd_taesd *t) {
    const sd_taesd_config *cfg = &t->cfg;
    const int64_t ch = cfg->decoder_channels[0];
    SD_TRY(load_conv(ld, &t->dec_in_w, &t->dec_in_b, ch, cfg->latent_channels, 3, 0, "decoder"));
    int layer = 2; /* 1 is the ReLU after the input conv */
    for (int i = 0; i < cfg->n_dec_levels; i++) {
        sd_taesd_level *l = &t->dec[i];
        bool last = i == cfg->n_dec_levels - 1;
        l->n_blocks = cfg->decoder_blocks[i];
        for (int b = 0; b < l->n_blocks; b++) SD_TRY(load_block(ld, &l->blocks[b], ch, layer++, "decoder"));
        if (!last) layer++; /* the Upsample slot */
        if (last) SD_TRY(load_conv(ld, &l->conv_w, &l->conv_b, cfg->out_channels, ch, 3, layer++, "decoder"));
        else SD_TRY(load_conv(ld, &l->conv_w, NULL, ch, ch, 3, layer++, "decoder"));
    }
    return SD_OK;
}

sd_status sd_taesd_load(sd_taesd *t, const sd_taesd_config *cfg, const sd_safetensors *file) {
    SD_CHECK_ARG(t && cfg && file, "sd_taesd_load: NULL argument");
    memset(t, 0, sizeof *t);
    SD_CHECK_ARG(cfg->n_enc_levels >= 1 && cfg->n_enc_levels <= SD_TAESD_MAX_LEVELS && cfg->n_dec_levels >= 1 &&
                     cfg->n_dec_levels <= SD_TAESD_MAX_LEVELS,
                 "sd_taesd_load: invalid config (%d encoder levels, %d decoder levels)", cfg->n_enc_levels,
                 cfg->n_dec_levels);
    for (int i = 0; i < cfg->n_enc_levels; i++)
        SD_CHECK_ARG(cfg->encoder_blocks[i] >= 0 && cfg->encoder_blocks[i] <= SD_TAESD_MAX_BLOCKS &&
                         cfg->encoder_channels[i] == cfg->encoder_channels[0],
                     "sd_taesd_load: invalid encoder level %d in config", i);
    for (int i = 0; i < cfg->n_dec_levels; i++)
        SD_CHECK_ARG(cfg->decoder_blocks[i] >= 0 && cfg->decoder_blocks[i] <= SD_TAESD_MAX_BLOCKS &&
                         cfg->decoder_channels[i] == cfg->decoder_channels[0],
                     "sd_taesd_load: invalid decoder level %d in config", i);
    t->cfg = *cfg;
    sd_weight_loader ld = {.file = file, .prefix = "", .component = "taesd", .store = &t->store,
                          .matrix_dtype = cfg->weight_dtype};
    sd_status st = load_encoder(&ld, t);
    if (st == SD_OK) st = load_decoder(&ld, t);
    if (st != SD_OK) sd_taesd_free(t);
    return st;
}

void sd_taesd_free(sd_taesd *t) {
    if (!t) return;
    sd_weight_store_free(&t->store);
    memset(t, 0, sizeof *t);
}

/* ---- forward ---- */

typedef struct taesd_ctx {
    sd_backend *be;
    sd_arena *arena;
} taesd_ctx;

static sd_tensor view4(const sd_tensor *buf, int64_t n, int64_t c, int64_t h, int64_t w) {
    return sd_tensor_4d(buf->data, buf->dtype, n, c, h, w);
}

/* out = relu(conv2(relu(conv1(relu(conv0(x))))) + x); out is scratch until the last step, so one
 * temporary suffices. out must not alias x. */
static void block_forward(taesd_ctx *c, sd_tensor *out, const sd_tensor *x, const sd_taesd_block *b) {
    sd_arena_mark mark = sd_arena_get_mark(c->arena);
    sd_tensor t = sd_backend_tensor(c->be, c->arena, 4, x->shape); // (N, C, H, W)
    sd_op_conv2d_fused(c->be, out, x, &b->conv_w[0], &b->conv_b[0], 1, 1, NULL, SD_ACT_RELU);
    sd_op_conv2d_fused(c->be, &t, out, &b->conv_w[1], &b->conv_b[1], 1, 1, NULL, SD_ACT_RELU);
    sd_op_conv2d_fused(c->be, out, &t, &b->conv_w[2], &b->conv_b[2], 1, 1, x, SD_ACT_RELU); /* + skip, ReLU */
    sd_arena_rewind(c->arena, mark);
}

/* Runs a level's blocks ping-ponging between *cur and *spare (same-size tensors); on return *cur
 * holds the result. */
static void blocks_forward(taesd_ctx *c, sd_tensor *cur, sd_tensor *spare, const sd_taesd_level *l) {
    for (int b = 0; b < l->n_blocks; b++) {
        block_forward(c, spare, cur, &l->blocks[b]);
        sd_tensor tmp = *cur;
        *cur = *spare;
        *spare = tmp;
    }
}

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

static sd_status check_output(const sd_tensor *t, const char *op, const char *what, int64_t n, int64_t ch, int64_t h,
                              int64_t w) {
    if (!t || !t->data) return sd_fail(SD_ERR_ARG, "%s: %s tensor has no data", op, what);
    if (!sd_is_act_dtype(t->dtype) || t->ndim != 4 || t->shape[0] != n || t->shape[1] != ch || t->shape[2] != h ||
        t->shape[3] != w) {
        char found[128];
        sd_st_shape_str(found, sizeof found, t->ndim, t->shape);
        return sd_fail(SD_ERR_ARG, "%s: %s: expected float32/float16/bfloat16 [%lld, %lld, %lld, %lld], found %s %s", op, what,
                       (long long)n, (long long)ch, (long long)h, (long long)w, sd_dtype_name(t->dtype), found);
    }
    return SD_OK;
}

static sd_status finish(sd_backend *be, sd_arena *arena, sd_arena_mark mark) {
    sd_arena_rewind(arena, mark);
    sd_status st = arena->status != SD_OK ? arena->status : sd_backend_status(be);
    sd_backend_clear_status(be);
    return st;
}

static sd_status taesd_encode_f32(sd_taesd *t, sd_backend *be, sd_arena *arena, sd_tensor *latents, const sd_tensor *image) {
    SD_CHECK_ARG(t && be && arena, "sd_taesd_encode: NULL argument");
    SD_CHECK_ARG(t->enc_out_w.data, "sd_taesd_encode: TAESD is not loaded");
    const sd_taesd_config *cfg = &t->cfg;
    const int64_t f = (int64_t)1 << (cfg->n_enc_levels - 1), ch = cfg->encoder_channels[0];
    SD_TRY(check_input(image, "taesd encode", "image", cfg->in_channels, f));
    const int64_t n = image->shape[0], H = image->shape[2], W = image->shape[3];
    SD_TRY(check_output(latents, "taesd encode", "latents", n, cfg->latent_channels, H / f, W / f));
    SD_TRY(arena->status);

    taesd_ctx c = {be, arena};
    sd_arena_mark mark = sd_arena_get_mark(arena);
    sd_tensor x01 = sd_backend_tensor(be, arena, 4, image->shape);              // (N, 3, H, W) in [0, 1]
    sd_tensor bufs[2] = {sd_backend_tensor(be, arena, 4, (int64_t[]){n, ch, H, W}),
                         sd_backend_tensor(be, arena, 4, (int64_t[]){n, ch, H, W})}; // level-0 size
    sd_op_scale(be, &x01, image, 0.5f, 0.5f); // x.add(1).div(2), bit-identical
    sd_tensor cur = view4(&bufs[0], n, ch, H, W), spare = view4(&bufs[1], n, ch, H, W);
    sd_op_conv2d(be, &cur, &x01, &t->enc[0].conv_w, &t->enc[0].conv_b, 1, 1);
    blocks_forward(&c, &cur, &spare, &t->enc[0]);
    int64_t h = H, w = W;
    for (int i = 1; i < cfg->n_enc_levels; i++) {
        h /= 2;
        w /= 2;
        sd_tensor down = view4(&spare, n, ch, h, w); // (N, C, h, w)
        sd_op_conv2d(be, &down, &cur, &t->enc[i].conv_w, NULL, 2, 1);
        spare = view4(&cur, n, ch, h, w);
        cur = down;
        blocks_forward(&c, &cur, &spare, &t->enc[i]);
    }
    sd_op_conv2d(be, latents, &cur, &t->enc_out_w, &t->enc_out_b, 1, 1);
    return finish(be, arena, mark);
}

static sd_status taesd_decode_f32(sd_taesd *t, sd_backend *be, sd_arena *arena, sd_tensor *image, const sd_tensor *latents) {
    SD_CHECK_ARG(t && be && arena, "sd_taesd_decode: NULL argument");
    SD_CHECK_ARG(t->dec_in_w.data, "sd_taesd_decode: TAESD is not loaded");
    const sd_taesd_config *cfg = &t->cfg;
    const int64_t f = (int64_t)1 << (cfg->n_dec_levels - 1), ch = cfg->decoder_channels[0];
    SD_TRY(check_input(latents, "taesd decode", "latents", cfg->latent_channels, 1));
    const int64_t n = latents->shape[0], h0 = latents->shape[2], w0 = latents->shape[3];
    SD_TRY(check_output(image, "taesd decode", "image", n, cfg->out_channels, h0 * f, w0 * f));
    SD_TRY(arena->status);

    taesd_ctx c = {be, arena};
    sd_arena_mark mark = sd_arena_get_mark(arena);
    sd_tensor z = sd_backend_tensor(be, arena, 4, latents->shape); // (N, L, h, w) soft-clamped
    sd_tensor bufs[2] = {sd_backend_tensor(be, arena, 4, (int64_t[]){n, ch, h0 * f, w0 * f}),
                         sd_backend_tensor(be, arena, 4, (int64_t[]){n, ch, h0 * f, w0 * f})}; // output size
    sd_op_scale(be, &z, latents, 1.0f / 3.0f, 0.0f); // tanh(x / 3) * 3
    sd_op_activation(be, &z, &z, SD_ACT_TANH);
    sd_op_scale(be, &z, &z, 3.0f, 0.0f);
    int64_t h = h0, w = w0;
    sd_tensor cur = view4(&bufs[0], n, ch, h, w), spare = view4(&bufs[1], n, ch, h, w);
    sd_op_conv2d_fused(be, &cur, &z, &t->dec_in_w, &t->dec_in_b, 1, 1, NULL, SD_ACT_RELU);
    for (int i = 0; i < cfg->n_dec_levels; i++) {
        const sd_taesd_level *l = &t->dec[i];
        blocks_forward(&c, &cur, &spare, l);
        if (i == cfg->n_dec_levels - 1) {
            sd_op_conv2d(be, image, &cur, &l->conv_w, &l->conv_b, 1, 1);
            break;
        }
        h *= 2;
        w *= 2;
        sd_tensor up = view4(&spare, n, ch, h, w); // (N, C, 2h, 2w)
        sd_op_upsample_nearest2x(be, &up, &cur);
        sd_tensor conv = view4(&cur, n, ch, h, w);
        sd_op_conv2d(be, &conv, &up, &l->conv_w, NULL, 1, 1);
        cur = conv;
        spare = up;
    }
    sd_op_scale(be, image, image, 2.0f, -1.0f); // y * 2 - 1: back to diffusers' [-1, 1]
    return finish(be, arena, mark);
}

sd_status sd_taesd_encode(sd_taesd *t, sd_backend *be, sd_arena *arena, sd_tensor *latents, const sd_tensor *image) {
    bool bf16_math = be->bf16_math; /* autoencoders always run float32 math (pixels; see bench/RESULTS.md) */
    be->bf16_math = false;
    sd_status st = taesd_encode_f32(t, be, arena, latents, image);
    be->bf16_math = bf16_math;
    return st;
}

sd_status sd_taesd_decode(sd_taesd *t, sd_backend *be, sd_arena *arena, sd_tensor *image, const sd_tensor *latents) {
    bool bf16_math = be->bf16_math; /* autoencoders always run float32 math (pixels; see bench/RESULTS.md) */
    be->bf16_math = false;
    sd_status st = taesd_decode_f32(t, be, arena, image, latents);
    be->bf16_math = bf16_math;
    return st;
}
