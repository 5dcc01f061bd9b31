/* hub_pull.h — internals of sd_hub_pull that are pure functions of the hub's answers, so the fuzz
 * target and the tests can reach them: the revision listing's parser and the choice of files. */
#ifndef SD_API_HUB_PULL_H
#define SD_API_HUB_PULL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

enum { HUB_MAX_FILES = 4096 };

/* The answer of GET /api/models/{id}/revision/{rev}: {"sha": "<commit>", "siblings": [{"rfilename":
 * "unet/config.json"}, ...]}. names: malloc'd array of malloc'd strings (hub_free_names). Names
 * that are not safe relative paths ("..", absolute, control characters) are refused. */
sd_status hub_parse_revision(const char *json, size_t len, char commit[48], char ***names, int *n_names);
void hub_free_names(char **names, int n);

/* Picks what sdstream needs out of a repository's files (see sd_hub_pull in sdstream.h); keep[i] is
 * set for the chosen names. single: the one file asked for by "ID/FILE" (NULL for all). SD_OK with at
 * least one file chosen, or an error naming what is missing (weights only as pickles, no variant). */
sd_status hub_select_files(char *const *names, int n, const char *variant, const char *single, bool *keep);

#endif
