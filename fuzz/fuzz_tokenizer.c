/* fuzz_tokenizer.c — libFuzzer target for the CLIP tokenizer (src/model/tokenizer.c).
 *
 * Why: prompts arrive from users and the network, vocab/merges files from model folders; both
 * must never crash, hang or leak. Three modes, picked by the first bytes of the input:
 *   "\x01M" + text  the text is a merges.txt for a small built-in vocab of a/b/c strings (so
 *                   random lines are often valid merges in hostile orders); if it loads, a few
 *                   a/b/c prompts and the input itself are encoded — this drives the BPE rounds.
 *   "\x01V" + text  the text is a vocab.json (with an empty merges.txt).
 *   anything else   a prompt for the tiny-sd15 tokenizer, loaded once from $SD_REFERENCE_DIR
 *                   (default ../shared/reference). The output invariants are checked: bos first,
 *                   eos after min(n_bpe, 75) ids, pad after that, every id in the vocab, and
 *                   sd_tokenizer_bpe agreeing with n_bpe.
 * Run: ./build-fuzz/fuzz_tokenizer -max_total_time=30 fuzz/corpus/tokenizer
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer.h"

static sd_tokenizer *g_tok;
static char *g_abc_vocab; /* JSON of the 512 byte symbols, the specials, a/b/c strings */

static void append(char **s, size_t *len, size_t *cap, const char *add) {
    size_t n = strlen(add);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *s = realloc(*s, *cap);
        if (!*s) abort();
    }
    memcpy(*s + *len, add, n + 1);
    *len += n;
}

static char *build_abc_vocab(void) {
    char *s = NULL, item[64];
    size_t len = 0, cap = 0;
    int id = 0, extra = 0;
    append(&s, &len, &cap, "{");
    for (int pass = 0; pass < 2; pass++, extra = 0) {
        for (int b = 0; b < 256; b++) {
            int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
            unsigned cp = keep ? (unsigned)b : 256u + (unsigned)extra++;
            char u[3] = {0};
            if (cp < 0x80) u[0] = (char)cp;
            else u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F));
            const char *esc = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : u;
            snprintf(item, sizeof item, "\"%s%s\": %d, ", esc, pass ? "</w>" : "", id++);
            append(&s, &len, &cap, item);
        }
    }
    /* Every a/b/c string of length 2 and 3, with and without "</w>". */
    for (int n = 2; n <= 3; n++) {
        int count = n == 2 ? 9 : 27;
        for (int k = 0; k < count; k++) {
            char w[4] = {0};
            for (int i = 0, v = k; i < n; i++, v /= 3) w[i] = (char)('a' + v % 3);
            for (int end = 0; end < 2; end++) {
                snprintf(item, sizeof item, "\"%s%s\": %d, ", w, end ? "</w>" : "", id++);
                append(&s, &len, &cap, item);
            }
        }
    }
    snprintf(item, sizeof item, "\"<|startoftext|>\": %d, \"<|endoftext|>\": %d}", id, id + 1);
    append(&s, &len, &cap, item);
    return s;
}

static void init(void) {
    const char *ref = getenv("SD_REFERENCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models/tiny-sd15/tokenizer",
             ref && *ref ? ref : "../shared/reference");
    if (sd_tokenizer_load(&g_tok, dir) != SD_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", sd_last_error());
        abort(); /* a harness may abort; the library never does */
    }
    g_abc_vocab = build_abc_vocab();
}

/* Encodes text and checks the output invariants; abort() makes libFuzzer report a failure. */
static void encode_checked(sd_tokenizer *tok, const char *text) {
    int32_t ids[SD_TOKENS], again[SD_TOKENS];
    int n = -1;
    if (sd_tokenizer_encode(tok, text, ids, &n) != SD_OK) abort();
    if (sd_tokenizer_encode(tok, text, again, NULL) != SD_OK) abort();
    if (memcmp(ids, again, sizeof ids) != 0 || n < 0) abort();
    int body = n < SD_TOKENIZER_BODY ? n : SD_TOKENIZER_BODY;
    if (ids[0] != sd_tokenizer_bos_id(tok) || ids[body + 1] != sd_tokenizer_eos_id(tok)) abort();
    for (int i = 0; i < SD_TOKENS; i++) {
        if (ids[i] < 0 || ids[i] >= sd_tokenizer_vocab_size(tok)) abort();
        if (i > body + 1 && ids[i] != sd_tokenizer_pad_id(tok)) abort();
    }
    int32_t bpe[SD_TOKENIZER_BODY];
    size_t total = 0;
    if (sd_tokenizer_bpe(tok, text, bpe, SD_TOKENIZER_BODY, &total) != SD_OK) abort();
    if (total != (size_t)n || memcmp(bpe, ids + 1, (size_t)body * sizeof *bpe) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok) init();
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (size >= 2 && data[0] == 1 && (data[1] == 'M' || data[1] == 'V')) {
        sd_tokenizer *t = NULL;
        sd_status st = data[1] == 'M'
            ? sd_tokenizer_load_buffers(&t, g_abc_vocab, strlen(g_abc_vocab), text + 2, size - 2, NULL)
            : sd_tokenizer_load_buffers(&t, text + 2, size - 2, "", 0, NULL);
        if ((st == SD_OK) != (t != NULL)) abort();
        if (t) {
            static const char *const prompts[] = {"abcabcabc cab aaaa bbbb cccc", "a b c ab ba",
                                                  "cbacbacbacba aabbcc abcba"};
            for (size_t i = 0; i < 3; i++) encode_checked(t, prompts[i]);
            encode_checked(t, text + 2);
            sd_tokenizer_free(t);
        }
    } else {
        encode_checked(g_tok, text);
    }
    free(text);
    return 0;
}
