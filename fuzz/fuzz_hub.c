/* fuzz_hub.c — libFuzzer target: what a Hugging Face hub (or anything at the endpoint) can answer
 * `sdstream pull`: the revision listing (JSON) and the file choice made from it, response header
 * lines, and ids as a user types them. Must fail cleanly or succeed; never crash. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/hub_http.h"
#include "api/hub_pull.h"
#include "model/hf_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char commit[48];
    char **names = NULL;
    int n = 0;
    if (hub_parse_revision((const char *)data, size, commit, &names, &n) == SD_OK) {
        bool *keep = calloc((size_t)n + 1, sizeof *keep);
        if (keep) {
            (void)hub_select_files(names, n, NULL, NULL, keep);
            (void)hub_select_files(names, n, "fp16", NULL, keep);
            if (n > 0) (void)hub_select_files(names, n, NULL, names[n - 1], keep);
        }
        free(keep);
        hub_free_names(names, n);
    }
    char *text = malloc(size + 1); /* header lines and ids are text */
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    hub_response r;
    hub_response_reset(&r);
    for (char *line = text, *end; line && *line; line = end ? end + 1 : NULL) {
        end = strchr(line, '\n');
        hub_parse_header(&r, line, end ? (size_t)(end - line + 1) : strlen(line));
    }
    sd_hf_id id;
    (void)sd_hf_id_parse(&id, text);
    free(text);
    return 0;
}
