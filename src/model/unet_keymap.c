/* unet_keymap.c — diffusers UNet weight names -> the original LDM layout of single-file
 * checkpoints (model.diffusion_model.*), the inverse of diffusers' convert_ldm_unet_checkpoint:
 *   down_blocks.b.resnets.j      -> input_blocks.(1 + b(L+1) + j).0     (ResNet renamed, below)
 *   down_blocks.b.attentions.j   -> input_blocks.(1 + b(L+1) + j).1
 *   down_blocks.b.downsamplers.0 -> input_blocks.(1 + b(L+1) + L).0.op
 *   mid_block.resnets.0 / attentions.0 / resnets.1 -> middle_block.0 / .1 / .2
 *   up_blocks.b.resnets.j        -> output_blocks.(b(L+1) + j).0
 *   up_blocks.b.attentions.j     -> output_blocks.(b(L+1) + j).1
 *   up_blocks.b.upsamplers.0     -> output_blocks.(b(L+1) + L).(2 with attention, else 1)
 * with L = layers_per_block. Transformer sub-names are the same in both layouts. */
#include <stdio.h>
#include <string.h>

#include "model/unet.h"

static const struct {
    const char *diffusers, *ldm;
} g_fixed[] = {
    {"time_embedding.linear_1.", "time_embed.0."},
    {"time_embedding.linear_2.", "time_embed.2."},
    {"add_embedding.linear_1.", "label_emb.0.0."}, /* SDXL's added embedding */
    {"add_embedding.linear_2.", "label_emb.0.2."},
    {"conv_in.", "input_blocks.0.0."},
    {"conv_norm_out.", "out.0."},
    {"conv_out.", "out.2."},
};

static const struct {
    const char *diffusers, *ldm;
} g_resnet[] = {
    {"norm1.", "in_layers.0."},       {"conv1.", "in_layers.2."},  {"time_emb_proj.", "emb_layers.1."},
    {"norm2.", "out_layers.0."},      {"conv2.", "out_layers.3."}, {"conv_shortcut.", "skip_connection."},
};

static int put(sd_key_ref *ref, const char *fmt, int index, const char *rest) {
    int n = snprintf(ref->key, sizeof ref->key, fmt, index, rest);
    return (n > 0 && (size_t)n < sizeof ref->key) ? 0 : -1;
}

/* "<resnet part>" -> "<block>.<index>.0.<ldm part>" (middle_block.<index>.<ldm part>: sub == "") */
static int map_resnet(sd_key_ref *ref, const char *block_fmt, int index, const char *part, const char *sub) {
    for (size_t i = 0; i < sizeof g_resnet / sizeof g_resnet[0]; i++) {
        size_t len = strlen(g_resnet[i].diffusers);
        if (strncmp(part, g_resnet[i].diffusers, len) == 0) {
            char rest[256];
            snprintf(rest, sizeof rest, "%s%s%s", sub, g_resnet[i].ldm, part + len);
            return put(ref, block_fmt, index, rest);
        }
    }
    return -1;
}

int sd_unet_ldm_key(const char *name, sd_key_ref *ref, const void *ctx) {
    const sd_unet_config *cfg = ctx;
    const int L = cfg->layers_per_block;
    for (size_t i = 0; i < sizeof g_fixed / sizeof g_fixed[0]; i++) {
        size_t len = strlen(g_fixed[i].diffusers);
        if (strncmp(name, g_fixed[i].diffusers, len) == 0) {
            snprintf(ref->key, sizeof ref->key, "%s%s", g_fixed[i].ldm, name + len);
            return 0;
        }
    }
    int b, j, used = 0;
    char rest[256];
    if (sscanf(name, "down_blocks.%d.resnets.%d.%n", &b, &j, &used) == 2 && used)
        return map_resnet(ref, "input_blocks.%d.%s", 1 + b * (L + 1) + j, name + used, "0.");
    if (sscanf(name, "down_blocks.%d.attentions.%d.%n", &b, &j, &used) == 2 && used) {
        snprintf(rest, sizeof rest, "1.%s", name + used);
        return put(ref, "input_blocks.%d.%s", 1 + b * (L + 1) + j, rest);
    }
    if (sscanf(name, "down_blocks.%d.downsamplers.0.conv.%n", &b, &used) == 1 && used) {
        snprintf(rest, sizeof rest, "0.op.%s", name + used);
        return put(ref, "input_blocks.%d.%s", 1 + b * (L + 1) + L, rest);
    }
    if (sscanf(name, "mid_block.resnets.%d.%n", &j, &used) == 1 && used)
        return map_resnet(ref, "middle_block.%d.%s", j == 0 ? 0 : 2, name + used, "");
    if (strncmp(name, "mid_block.attentions.0.", 23) == 0) return put(ref, "middle_block.%d.%s", 1, name + 23);
    if (sscanf(name, "up_blocks.%d.resnets.%d.%n", &b, &j, &used) == 2 && used)
        return map_resnet(ref, "output_blocks.%d.%s", b * (L + 1) + j, name + used, "0.");
    if (sscanf(name, "up_blocks.%d.attentions.%d.%n", &b, &j, &used) == 2 && used) {
        snprintf(rest, sizeof rest, "1.%s", name + used);
        return put(ref, "output_blocks.%d.%s", b * (L + 1) + j, rest);
    }
    if (sscanf(name, "up_blocks.%d.upsamplers.0.conv.%n", &b, &used) == 1 && used) {
        if (b < 0 || b >= SD_UNET_MAX_LEVELS) return -1;
        snprintf(rest, sizeof rest, "%d.conv.%s", cfg->up_has_attention[b] ? 2 : 1, name + used);
        return put(ref, "output_blocks.%d.%s", b * (L + 1) + L, rest);
    }
    return -1;
}
