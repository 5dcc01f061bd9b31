/* hf_cache.h — models by Hugging Face id: the hub cache's layout as huggingface_hub writes it, and
 * the resolution of "org/name[@revision][/file]" to a local path in it.
 *
 * Cache folder: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (huggingface_hub's constants.py).
 * Layout of one model repository:
 *     models--org--name/refs/<branch or tag>         the commit hash, one line
 *     models--org--name/snapshots/<commit>/<path>    relative symlink to ../../blobs/<etag>
 *     models--org--name/blobs/<etag>                 the file (etag: sha256 of LFS files, git sha1 otherwise)
 *     models--org--name/blobs/<etag>.incomplete      a download in progress (resumable)
 * A path that exists locally always wins over an id of the same spelling.
 */
#ifndef SD_MODEL_HF_CACHE_H
#define SD_MODEL_HF_CACHE_H

#include <stdbool.h>

#include "base/fs.h"

enum { SD_HF_ID_MAX = 200, SD_HF_REV_MAX = 128 };

/* "org/name[@revision][/path/in/repo]" split into parts. */
typedef struct sd_hf_id {
    char repo[SD_HF_ID_MAX];     /* "org/name" */
    char revision[SD_HF_REV_MAX]; /* "" when not given (means "main") */
    char file[SD_PATH_MAX];       /* "" when the whole repository is meant */
} sd_hf_id;

/* Parses spec as a hub id. Returns false (and leaves *id unspecified) when spec is not one: an
 * absolute or ./ path, a part with characters the hub does not allow, "..", "--", empty parts. */
bool sd_hf_id_parse(sd_hf_id *id, const char *spec);
/* The cache folder (see above); SD_ERR_NOT_FOUND when neither variable nor $HOME is set. */
sd_status sd_hf_cache_dir(char *out, size_t out_size);
/* <cache>/models--org--name for a repo "org/name". */
sd_status sd_hf_repo_dir(char *out, size_t out_size, const char *repo);
/* true when $HF_HUB_OFFLINE is 1/ON/YES/TRUE (any case), as huggingface_hub reads it. */
bool sd_hf_offline(void);
/* true when s is 40 lowercase hex digits: a commit hash. */
bool sd_hf_is_commit(const char *s);

/* Resolves spec to a path: spec itself when it exists locally or is not an id; otherwise the cached
 * snapshot folder (or the file inside it) of the id's revision (default main). `what` names the
 * option in messages ("--model"). On failure the message says where it looked and to run
 * `sdstream pull`. */
sd_status sd_hf_resolve(char *out, size_t out_size, const char *spec, const char *what);
/* The same for an option that takes one file (--lora): an id naming a whole repository resolves to
 * its only top-level .safetensors file (several: an error listing them, so the user adds /FILE). */
sd_status sd_hf_resolve_file(char *out, size_t out_size, const char *spec, const char *what);

/* Looks for a cached snapshot of repo ("org/name", any revision) whose `sub` folder ("" for the
 * snapshot itself) `accept`s; out (SD_PATH_MAX bytes) receives that folder. */
bool sd_hf_find_snapshot(char *out, const char *repo, const char *sub, bool (*accept)(const char *dir));

#endif
