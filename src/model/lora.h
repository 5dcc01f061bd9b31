/* lora.h — LoRA files fused into model weights while they load.
 *
 * A set is opened before the components load: every file is parsed, its keys are classified
 * (lora_keys.c: kohya/A1111, diffusers, PEFT), grouped into modules (down, up, optional alpha)
 * and checked for rank and dtype. The weight loader (weights.c) asks the set, for each weight it
 * materialises, whether a LoRA touches it; if so the set sums scale * (alpha / rank) * up @ down of
 * every LoRA on it in float32 (diffusers' _fuse_lora; the products on a CPU backend of the set's
 * own) and writes round(weight + delta) in the weight's storage type, before it is packed for a
 * backend. After loading, finish checks that every
 * module of a loaded component was used, so a LoRA is never applied in part.
 *
 * Matching is driven by the model's own weight names: an internal name "a.b.to_q.weight" is the
 * module "a.b.to_q" (diffusers/PEFT keys compare to it as is, kohya keys to it with '.' -> '_'),
 * so no guessing where kohya's underscores were dots. A kohya module that two weights would both
 * match is an error, not a double fuse.
 */
#ifndef SD_MODEL_LORA_H
#define SD_MODEL_LORA_H

#include <stdbool.h>
#include <stdint.h>

#include "base/safetensors.h"
#include "base/status.h"

typedef enum sd_lora_target {
    SD_LORA_UNET = 0,
    SD_LORA_TEXT_ENCODER = 1,
    SD_LORA_N_TARGETS = 2,
} sd_lora_target;

typedef enum sd_lora_part { SD_LORA_DOWN, SD_LORA_UP, SD_LORA_ALPHA } sd_lora_part;

/* One file key, classified. */
typedef struct sd_lora_key {
    sd_lora_target target;
    sd_lora_part part;
    bool flat;        /* kohya: module is the '.'->'_' flattened path */
    char module[384]; /* "down_blocks.0.attentions.0.proj_in" or "down_blocks_0_attentions_0_proj_in" */
} sd_lora_key;

/* lora_keys.c: 0 and *out for a LoRA key; -1 for a key no supported format knows; -2 for a key
 * of an SDXL LoRA (lora_te1_/lora_te2_, text_encoder_2.). */
int sd_lora_parse_key(const char *key, sd_lora_key *out);
/* Writes name with every '.' as '_' (kohya's flattening); -1 if it does not fit. */
int sd_lora_flatten(char *out, size_t size, const char *name);

typedef struct sd_lora_set sd_lora_set;

/* Opens and parses the files. allow_unused: keys no format knows are counted, not an error. */
sd_status sd_lora_set_open(sd_lora_set **out, const sd_lora *loras, int n, bool allow_unused, int n_threads);
void sd_lora_set_close(sd_lora_set *set);

/* Whether some LoRA of the set has a module for the weight `name` ("<module>.weight") of target. */
bool sd_lora_set_touches(const sd_lora_set *set, sd_lora_target target, const char *name);
/* Writes the weight `name` (n = prod(shape) values of src_dtype at src) to dst as dtype, with every
 * matching LoRA's delta added: in float32, then one rounding to dtype (rounding the file's weight
 * and the delta separately would be two). `shape` as the model holds the weight (a 1x1 conv may be
 * held as [out, in]). Shape and rank mismatches fail naming the file, key and shapes. */
sd_status sd_lora_set_fuse(sd_lora_set *set, sd_lora_target target, const char *name, void *dst, sd_dtype dtype,
                           const void *src, sd_dtype src_dtype, int ndim, const int64_t *shape);
/* After the components loaded (loaded[target]): fails naming the file and its first unused keys
 * when a module of a loaded component matched no weight (unless allow_unused); fills one report
 * per LoRA. */
sd_status sd_lora_set_finish(sd_lora_set *set, const bool loaded[SD_LORA_N_TARGETS], sd_lora_report *reports);

#endif
