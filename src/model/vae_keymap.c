/* vae_keymap.c — AutoencoderKL weight names of other layouts, from diffusers' names (see vae.h).
 *
 * One table per layout, read top to bottom: a block rule rewrites the module path that carries
 * indices (down_blocks.i.resnets.j -> down.i.block.j), then a leaf rule renames the layer inside
 * it (conv_shortcut -> nin_shortcut). The rules are the inverse of diffusers 0.24's
 * convert_ldm_vae_checkpoint (scripts/convert_original_stable_diffusion_to_diffusers.py) and of
 * its _convert_deprecated_attention_blocks for the pre-0.14 names.
 */
#include <stdio.h>
#include <string.h>

#include "model/vae.h"

typedef enum index_mode {
    INDEX_KEEP,     /* same numbers */
    INDEX_REVERSED, /* decoder levels: LDM's up.0 is the last level diffusers runs */
    INDEX_PLUS_ONE, /* mid resnets: LDM's block_1/block_2 */
} index_mode;

typedef struct block_rule {
    const char *diffusers; /* sscanf pattern: literal text and %d indices, ending in %n */
    const char *ldm;       /* printf pattern with the same number of %d */
    int n_index;
    index_mode mode;
} block_rule;

static const block_rule ldm_blocks[] = {
    {"encoder.down_blocks.%d.resnets.%d.%n", "encoder.down.%d.block.%d.", 2, INDEX_KEEP},
    {"encoder.down_blocks.%d.downsamplers.0.%n", "encoder.down.%d.downsample.", 1, INDEX_KEEP},
    {"encoder.mid_block.resnets.%d.%n", "encoder.mid.block_%d.", 1, INDEX_PLUS_ONE},
    {"encoder.mid_block.attentions.0.%n", "encoder.mid.attn_1.", 0, INDEX_KEEP},
    {"decoder.up_blocks.%d.resnets.%d.%n", "decoder.up.%d.block.%d.", 2, INDEX_REVERSED},
    {"decoder.up_blocks.%d.upsamplers.0.%n", "decoder.up.%d.upsample.", 1, INDEX_REVERSED},
    {"decoder.mid_block.resnets.%d.%n", "decoder.mid.block_%d.", 1, INDEX_PLUS_ONE},
    {"decoder.mid_block.attentions.0.%n", "decoder.mid.attn_1.", 0, INDEX_KEEP},
    {"encoder.%n", "encoder.", 0, INDEX_KEEP}, /* conv_in, conv_norm_out, conv_out */
    {"decoder.%n", "decoder.", 0, INDEX_KEEP},
    {"%n", "", 0, INDEX_KEEP}, /* quant_conv, post_quant_conv: same names */
};

typedef struct leaf_rule {
    const char *diffusers, *other; /* prefixes of the rest of the name */
} leaf_rule;

static const leaf_rule ldm_leaves[] = {
    {"conv_shortcut.", "nin_shortcut."}, {"conv_norm_out.", "norm_out."}, {"group_norm.", "norm."},
    {"to_q.", "q."}, {"to_k.", "k."}, {"to_v.", "v."}, {"to_out.0.", "proj_out."},
};

static const leaf_rule legacy_leaves[] = {
    {"to_q.", "query."}, {"to_k.", "key."}, {"to_v.", "value."}, {"to_out.0.", "proj_attn."},
};

/* Writes head + the rest of the name with the first matching leaf rule applied. */
static int write_leaf(sd_key_ref *ref, const char *head, const char *rest, const leaf_rule *leaves, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(leaves[i].diffusers);
        if (strncmp(rest, leaves[i].diffusers, len) == 0) {
            snprintf(ref->key, sizeof ref->key, "%s%s%s", head, leaves[i].other, rest + len);
            return 0;
        }
    }
    snprintf(ref->key, sizeof ref->key, "%s%s", head, rest);
    return 0;
}

int sd_vae_ldm_key_map(const char *internal, sd_key_ref *ref, const void *map_ctx) {
    const sd_vae_config *cfg = map_ctx;
    for (size_t r = 0; r < sizeof ldm_blocks / sizeof ldm_blocks[0]; r++) {
        const block_rule *rule = &ldm_blocks[r];
        int a = 0, b = 0, consumed = -1;
        /* %n counts only when all the literal text before it matched */
        if (rule->n_index == 0) (void)sscanf(internal, rule->diffusers, &consumed);
        else if (rule->n_index == 1 && sscanf(internal, rule->diffusers, &a, &consumed) != 1) continue;
        else if (rule->n_index == 2 && sscanf(internal, rule->diffusers, &a, &b, &consumed) != 2) continue;
        if (consumed < 0) continue;
        if (a < 0 || b < 0) return -1;
        if (rule->mode == INDEX_REVERSED) {
            if (a >= cfg->n_levels) return -1;
            a = cfg->n_levels - 1 - a;
        } else if (rule->mode == INDEX_PLUS_ONE) {
            a += 1;
        }
        char head[256];
        if (rule->n_index == 2) snprintf(head, sizeof head, rule->ldm, a, b);
        else if (rule->n_index == 1) snprintf(head, sizeof head, rule->ldm, a);
        else snprintf(head, sizeof head, "%s", rule->ldm);
        return write_leaf(ref, head, internal + consumed, ldm_leaves, sizeof ldm_leaves / sizeof ldm_leaves[0]);
    }
    return -1;
}

int sd_vae_legacy_key_map(const char *internal, sd_key_ref *ref, const void *map_ctx) {
    (void)map_ctx;
    const char *at = strstr(internal, ".attentions.0.");
    if (!at) {
        snprintf(ref->key, sizeof ref->key, "%s", internal);
        return 0;
    }
    size_t head_len = (size_t)(at - internal) + strlen(".attentions.0.");
    char head[256];
    if (head_len >= sizeof head) return -1;
    memcpy(head, internal, head_len);
    head[head_len] = '\0';
    return write_leaf(ref, head, internal + head_len, legacy_leaves, sizeof legacy_leaves / sizeof legacy_leaves[0]);
}
