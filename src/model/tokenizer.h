/* tokenizer.h — the CLIP byte-level BPE tokenizer (vocab.json + merges.txt), as diffusers'
 * encode_prompt uses it: [bos] + up to 75 BPE ids + [eos], padded to SD_TOKENS with the pad id.
 * It exists so a prompt becomes text-encoder input without Python; the golden cases in
 * golden/tokenizer/cases.tsv (openai clip.tokenize + HF padding) are matched exactly.
 *
 * MANUAL
 *
 *   sd_tokenizer *tok = NULL;
 *   if (sd_tokenizer_load(&tok, "models/sd-turbo/tokenizer") != SD_OK)
 *       fprintf(stderr, "%s\n", sd_last_error());      // names the file and the line or key
 *   int32_t ids[SD_TOKENS];
 *   int n_bpe;
 *   sd_tokenizer_encode(tok, "a photo of a cat", ids, &n_bpe);
 *   // ids = 49406 320 1125 539 320 2368 49407, then the pad id (49407 SD1.x, 0 SD2.x); n_bpe = 5
 *   sd_tokenizer_free(tok);
 *
 * Ownership: the handle owns everything; sd_tokenizer_free(NULL) is a no-op. Strings returned by
 * sd_tokenizer_token() live as long as the handle.
 * Threads: encode uses scratch space inside the handle, so one handle must not encode on two
 * threads at once; distinct handles are independent. Loads may run concurrently (cJSON's global
 * error position, written only for malformed JSON, is the one shared thing).
 * Cost: loading the 49408-entry vocab + 48894 merges takes ~21 ms (8 of them cJSON), encoding a
 * typical prompt ~3 us, a 1 MiB prompt ~40 ms (x86-64, -O2).
 * Errors: on failure *out / ids are untouched and sd_last_error() says why. Never aborts.
 *   SD_ERR_NOT_FOUND  vocab.json or merges.txt missing
 *   SD_ERR_LIMIT      vocab.json / merges.txt over 64 MiB, a prompt over 1 MiB
 *   SD_ERR_FORMAT     not JSON, id not an integer / out of [0, entries) / duplicated, duplicate key,
 *                     a merges line that is not "A B", a merge part or result not in the vocab,
 *                     a byte symbol or <|startoftext|> / <|endoftext|> / the pad token missing
 *
 * Text rules (upstream: openai CLIP simple_tokenizer.py; HF CLIPTokenizer for padding):
 *  1. The prompt is UTF-8; each byte of an invalid sequence becomes U+FFFD (Python strings cannot
 *     hold invalid bytes, so there is no upstream answer; U+FFFD is what a lenient decode gives).
 *  2. A subset of ftfy.fix_text (HF and openai both run it; the rest is mojibake repair and NFC,
 *     not done): control characters U+00-08, 0B, 0E-1F, 7F, 206A-206F, FEFF, FFF9-FFFC are
 *     removed; curly quotes U+2018-201B, 02BC -> ' and U+201C-201F -> "; fullwidth U+FF01-FF5E
 *     -> ASCII and U+3000 -> space. Decomposed accents stay decomposed (no NFC).
 *  3. HTML entities, as ftfy's "auto" mode (what HF's CLIPTokenizer does): unless the prompt
 *     contains '<', &amp; &lt; &gt; &quot; &apos; &nbsp; &#N; &#xH; (with ';') are replaced, in two
 *     passes like openai's html.unescape(html.unescape(t)). Other named entities are left as text.
 *  4. Whitespace runs (Python str.isspace) become one space; leading/trailing space is dropped.
 *  5. Lower-case as Python's str.lower(): every one-to-one mapping of Unicode 14 (a generated
 *     table), U+0130 -> "i" U+0307, and final sigma (U+03A3 -> U+03C2 after a cased letter and
 *     before none, skipping apostrophes, dots and combining accents; "cased" is approximated by
 *     the letters of the bicameral scripts).
 *  6. Pre-split with CLIP's regex <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|
 *     \p{N}|[^\s\p{L}\p{N}]+ (each digit alone). \p{L} / \p{N} come from tables generated with
 *     Python's regex module: exact for ASCII and the whole BMP (measured: 1 of ~40,000 assigned
 *     BMP code points differs, U+0345, which regex's IGNORECASE folds to a letter); of the
 *     supplementary planes only the CJK extensions and the mathematical alphanumerics are
 *     letters here, historic scripts and other plane-1 letters/digits count as punctuation.
 *     Combining marks are neither, as upstream, so they split words the same way.
 *     "<|startoftext|>" / "<|endoftext|>" in the prompt (any case) encode as their ids (openai).
 *  7. "!": HF's SD2 tokenizer_config registers "!" (id 0) as a special added token, so HF turns
 *     every "!" into id 0 (diffusers #4153). We follow openai/open_clip instead: "!" is ordinary
 *     text ("!!" -> 748), because that is how the SD2 text encoder was trained. "!" as the pad
 *     token still pads with id 0.
 *  8. Long words: a pre-split piece longer than SD_TOKENIZER_WORD_MAX bytes is cut at character
 *     boundaries into pieces of at most that size, each BPE'd as its own word (with "</w>").
 *     Upstream BPEs the whole piece; no real prompt has a 512-byte word, and the cut bounds the
 *     scratch memory. BPE itself is O(n log n) in the word length (a heap of pair ranks), with
 *     exactly openai's merge order (lowest rank first, all its occurrences left to right).
 *  9. merges.txt: a first line starting with '#' (the "#version" line) is skipped; every other
 *     line is a merge, rank = order; a repeated pair takes its last rank (Python dict). Trailing
 *     empty lines are allowed. vocab ids must be exactly 0..entries-1 (dense, no repeats).
 */
#ifndef SD_MODEL_TOKENIZER_H
#define SD_MODEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "sdstream.h"

enum {
    SD_TOKENIZER_MAX_PROMPT = 1 << 20,        /* bytes; longer prompts are SD_ERR_LIMIT */
    SD_TOKENIZER_MAX_FILE = 64 << 20,         /* bytes of vocab.json / merges.txt */
    SD_TOKENIZER_WORD_MAX = 512,              /* bytes per BPE word, see rule 8 */
    SD_TOKENIZER_BODY = SD_TOKENS - 2,        /* BPE ids kept between bos and eos (75) */
};

typedef struct sd_tokenizer sd_tokenizer;

/* dir holds vocab.json, merges.txt and optionally tokenizer_config.json / special_tokens_map.json.
 * The pad token comes from tokenizer_config.json "pad_token" (a string, or an object with
 * "content"), else special_tokens_map.json, else "<|endoftext|>". It must be in the vocab. */
sd_status sd_tokenizer_load(sd_tokenizer **out, const char *dir);

/* The same from memory (buffers need not be NUL-terminated). pad_token NULL means
 * "<|endoftext|>". Error messages name "vocab.json" / "merges.txt". */
sd_status sd_tokenizer_load_buffers(sd_tokenizer **out, const char *vocab_json, size_t vocab_len,
                                    const char *merges_txt, size_t merges_len,
                                    const char *pad_token);

void sd_tokenizer_free(sd_tokenizer *tok);
/* The UTF-8 symbol (1-2 bytes, written to out) openai's byte-level BPE uses for a byte. */
size_t sd_tokenizer_byte_symbol(int byte, char out[4]);

int32_t sd_tokenizer_pad_id(const sd_tokenizer *tok);
int32_t sd_tokenizer_bos_id(const sd_tokenizer *tok);
int32_t sd_tokenizer_eos_id(const sd_tokenizer *tok);
int32_t sd_tokenizer_vocab_size(const sd_tokenizer *tok);
/* The vocab string of id (byte-level alphabet, "</w>" on word ends), NULL if out of range. */
const char *sd_tokenizer_token(const sd_tokenizer *tok, int32_t id);
/* The id of a vocab string, -1 if absent. */
int32_t sd_tokenizer_find(const sd_tokenizer *tok, const char *token);

/* ids = [49406 (bos)] + first 75 BPE ids + [eos], padded with pad id to SD_TOKENS (77).
 * n_bpe (may be NULL) receives the number of BPE tokens before truncation; with n_bpe NULL the
 * work stops after the 75th token. */
sd_status sd_tokenizer_encode(sd_tokenizer *tok, const char *text, int32_t ids[SD_TOKENS],
                              int *n_bpe);

/* The BPE ids alone (no bos/eos/padding): the first min(cap, total) go to out, *n_total
 * receives the total count. out may be NULL when cap is 0. */
sd_status sd_tokenizer_bpe(sd_tokenizer *tok, const char *text, int32_t *out, size_t cap,
                           size_t *n_total);

#endif
