/* tokenizer.c — the CLIP byte-level BPE tokenizer; tokenizer.h lists the text rules and why.
 *
 * Layout: the vocab strings sit back to back in one arena, found by an open-addressing table of
 * ids; merges are kept per rank (part a, part b, result, all vocab ids) and found by an
 * open-addressing table keyed by the id pair. BPE therefore runs on ids, never on strings: every
 * start symbol (a byte, or a byte + "</w>") and every merge result is checked to be in the vocab
 * at load time, which is what makes that possible.
 */
#include "model/tokenizer.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "base/status.h"

enum { WORD_MAX = SD_TOKENIZER_WORD_MAX, CONFIG_MAX = 4 << 20, PAD_MAX = 256, SHOW = 80 };

static const char k_bos[] = "<|startoftext|>";
static const char k_eos[] = "<|endoftext|>";

struct sd_tokenizer {
    char *strings;        /* vocab keys, NUL-terminated, back to back */
    uint32_t *str_off;    /* [n_vocab] offset of each id's key in strings */
    uint32_t *str_len;    /* [n_vocab] */
    int32_t *vocab_slot;  /* [vocab_mask + 1] id, or -1 for a free slot */
    size_t vocab_mask;
    int32_t n_vocab;
    int32_t n_merges;
    int32_t *merge_a, *merge_b, *merge_res; /* [n_merges] by rank */
    uint64_t *pair_key;   /* [pair_mask + 1] a << 32 | b */
    int32_t *pair_rank;   /* [pair_mask + 1] rank, or -1 for a free slot */
    size_t pair_mask;
    int32_t byte_id[256], byte_end_id[256]; /* start symbols: byte, byte + "</w>" */
    int32_t bos, eos, pad;
    /* Scratch for one BPE word (why encode takes a non-const handle). The heap holds at most
     * n - 1 initial pairs + 2 per merge (< 3n); one round's new pairs are at most n. */
    uint8_t word[WORD_MAX];
    int32_t sym[WORD_MAX], prv[WORD_MAX], nxt[WORD_MAX];
    uint64_t heap[3 * WORD_MAX], pend[WORD_MAX];
};

static size_t utf8_encode(uint32_t c, uint8_t *o);

/* ---- hashing ----------------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

/* FNV's low bits are weak and the tables index with them, so finish with a full mix. */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static size_t table_capacity(size_t n) {
    size_t c = 16;
    while (c < 2 * n) c <<= 1; /* load factor <= 1/2 keeps probes short */
    return c;
}

/* Finds the vocab string a ++ b (b may be empty): merges look up their result without building
 * the concatenation. Returns the slot index in *slot when slot is not NULL. */
static int32_t vocab_find2(const sd_tokenizer *t, const char *a, size_t alen, const char *b,
                           size_t blen, size_t *slot) {
    uint64_t h = mix64(fnv1a(fnv1a(0xcbf29ce484222325ULL, a, alen), b, blen));
    for (size_t i = (size_t)h & t->vocab_mask;; i = (i + 1) & t->vocab_mask) {
        int32_t id = t->vocab_slot[i];
        if (slot) *slot = i;
        if (id < 0) return -1;
        const char *s = t->strings + t->str_off[id];
        if (t->str_len[id] == alen + blen && memcmp(s, a, alen) == 0 &&
            memcmp(s + alen, b, blen) == 0)
            return id;
    }
}

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

static size_t pair_slot(const sd_tokenizer *t, uint64_t key) {
    size_t i = (size_t)mix64(key) & t->pair_mask;
    while (t->pair_rank[i] >= 0 && t->pair_key[i] != key) i = (i + 1) & t->pair_mask;
    return i;
}

static int32_t pair_rank(const sd_tokenizer *t, int32_t a, int32_t b) {
    return t->pair_rank[pair_slot(t, pair_key(a, b))];
}

/* ---- loading ----------------------------------------------------------------------------- */

static int show_len(size_t n) { return n < SHOW ? (int)n : SHOW; }

static size_t line_of(const char *buf, size_t len, const char *at) {
    if (!at || at < buf || at > buf + len) return 0;
    size_t line = 1;
    for (const char *p = buf; p < at; p++) line += *p == '\n';
    return line;
}

/* Checks and stores one vocab.json entry; ids must be dense: n distinct values in [0, n). */
static sd_status vocab_add(sd_tokenizer *t, const cJSON *e, size_t n, size_t *pos) {
    const char *key = e->string ? e->string : "";
    size_t klen = strlen(key), slot;
    int kl = show_len(klen);
    if (!cJSON_IsNumber(e))
        return sd_fail(SD_ERR_FORMAT, "vocab.json: key \"%.*s\": id is not a number", kl, key);
    double d = e->valuedouble; /* range first: the cast below is UB out of range */
    if (!(d >= 0.0 && d < (double)n))
        return sd_fail(SD_ERR_FORMAT, "vocab.json: key \"%.*s\": id %.17g outside [0, %zu)", kl,
                       key, d, n);
    int32_t id = (int32_t)d;
    if ((double)id != d)
        return sd_fail(SD_ERR_FORMAT, "vocab.json: key \"%.*s\": id %.17g is not an integer", kl,
                       key, d);
    if (t->str_off[id] != UINT32_MAX)
        return sd_fail(SD_ERR_FORMAT, "vocab.json: key \"%.*s\": id %d is also used by \"%.*s\"",
                       kl, key, (int)id, show_len(t->str_len[id]), t->strings + t->str_off[id]);
    if (vocab_find2(t, key, klen, "", 0, &slot) >= 0)
        return sd_fail(SD_ERR_FORMAT, "vocab.json: key \"%.*s\" appears twice", kl, key);
    memcpy(t->strings + *pos, key, klen + 1);
    t->str_off[id] = (uint32_t)*pos;
    t->str_len[id] = (uint32_t)klen;
    t->vocab_slot[slot] = id;
    *pos += klen + 1;
    return SD_OK;
}

static sd_status load_vocab(sd_tokenizer *t, const char *json, size_t len) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root)
        return sd_fail(SD_ERR_FORMAT, "vocab.json: not valid JSON (error near line %zu)",
                       line_of(json, len, end));
    size_t n = 0, bytes = 0, pos = 0, cap = 0;
    for (const cJSON *e = cJSON_IsObject(root) ? root->child : NULL; e; e = e->next) {
        n++;
        bytes += (e->string ? strlen(e->string) : 0) + 1;
    }
    sd_status st = SD_OK;
    if (n == 0 || n > (size_t)INT32_MAX / 4 || bytes > UINT32_MAX) {
        st = sd_fail(SD_ERR_FORMAT, "vocab.json: expected an object of token -> id, found %s "
                     "with %zu entries", cJSON_IsObject(root) ? "an object" : "another value", n);
    } else {
        cap = table_capacity(n);
        t->strings = malloc(bytes);
        t->str_off = malloc(n * sizeof *t->str_off);
        t->str_len = malloc(n * sizeof *t->str_len);
        t->vocab_slot = malloc(cap * sizeof *t->vocab_slot);
        if (!t->strings || !t->str_off || !t->str_len || !t->vocab_slot)
            st = sd_fail(SD_ERR_NOMEM, "vocab.json: out of memory for %zu entries", n);
    }
    if (st == SD_OK) {
        memset(t->str_off, 0xff, n * sizeof *t->str_off); /* UINT32_MAX: id not seen yet */
        memset(t->vocab_slot, 0xff, cap * sizeof *t->vocab_slot);
        t->vocab_mask = cap - 1;
        for (const cJSON *e = root->child; e && st == SD_OK; e = e->next)
            st = vocab_add(t, e, n, &pos);
        t->n_vocab = (int32_t)n;
    }
    cJSON_Delete(root);
    return st;
}

/* openai's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes
 * map to U+0100.. in byte order, so every byte has a visible symbol. */
size_t sd_tokenizer_byte_symbol(int byte, char out[4]) {
    int extra = 0;
    for (int b = 0; b < byte; b++) extra += !((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174));
    bool keep = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174);
    return utf8_encode(keep ? (unsigned)byte : 256u + (unsigned)extra, (uint8_t *)out);
}

static sd_status load_byte_symbols(sd_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char key[4];
        size_t n = sd_tokenizer_byte_symbol(b, key);
        t->byte_id[b] = vocab_find2(t, key, n, "", 0, NULL);
        t->byte_end_id[b] = vocab_find2(t, key, n, "</w>", 4, NULL);
        if (t->byte_id[b] < 0 || t->byte_end_id[b] < 0)
            return sd_fail(SD_ERR_FORMAT, "vocab.json: byte 0x%02x: symbol \"%.*s\"%s is missing",
                           b, (int)n, key, t->byte_id[b] < 0 ? "" : " + \"</w>\"");
    }
    return SD_OK;
}

static bool only_line_ends(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\n' && s[i] != '\r') return false;
    return true;
}

static sd_status load_merges(sd_tokenizer *t, const char *txt, size_t len) {
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += txt[i] == '\n';
    size_t cap = table_capacity(lines);
    t->merge_a = malloc(lines * sizeof *t->merge_a);
    t->merge_b = malloc(lines * sizeof *t->merge_b);
    t->merge_res = malloc(lines * sizeof *t->merge_res);
    t->pair_key = malloc(cap * sizeof *t->pair_key);
    t->pair_rank = malloc(cap * sizeof *t->pair_rank);
    if (!t->merge_a || !t->merge_b || !t->merge_res || !t->pair_key || !t->pair_rank)
        return sd_fail(SD_ERR_NOMEM, "merges.txt: out of memory for %zu lines", lines);
    memset(t->pair_rank, 0xff, cap * sizeof *t->pair_rank);
    t->pair_mask = cap - 1;
    int32_t rank = 0;
    size_t pos = 0, line_no = 0;
    while (pos < len) {
        const char *line = txt + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        line_no++;
        if (n > 0 && line[n - 1] == '\r') n--;
        if (line_no == 1 && n > 0 && line[0] == '#') continue; /* "#version: 0.2" */
        if (n == 0) {
            if (only_line_ends(txt + pos, len - pos)) break;
            return sd_fail(SD_ERR_FORMAT, "merges.txt line %zu: empty line", line_no);
        }
        const char *sp = memchr(line, ' ', n);
        size_t alen = sp ? (size_t)(sp - line) : 0, blen = sp ? n - alen - 1 : 0;
        if (!sp || alen == 0 || blen == 0 || memchr(sp + 1, ' ', blen))
            return sd_fail(SD_ERR_FORMAT,
                           "merges.txt line %zu: expected two symbols separated by one space, "
                           "found \"%.*s\"", line_no, show_len(n), line);
        const char *b = sp + 1;
        int32_t ia = vocab_find2(t, line, alen, "", 0, NULL);
        int32_t ib = vocab_find2(t, b, blen, "", 0, NULL);
        int32_t ir = vocab_find2(t, line, alen, b, blen, NULL);
        if (ia < 0 || ib < 0)
            return sd_fail(SD_ERR_FORMAT, "merges.txt line %zu: symbol \"%.*s\" is not in vocab.json",
                           line_no, ia < 0 ? show_len(alen) : show_len(blen), ia < 0 ? line : b);
        if (ir < 0)
            return sd_fail(SD_ERR_FORMAT,
                           "merges.txt line %zu: merge result \"%.*s%.*s\" is not in vocab.json",
                           line_no, show_len(alen), line, show_len(blen), b);
        t->merge_a[rank] = ia;
        t->merge_b[rank] = ib;
        t->merge_res[rank] = ir;
        uint64_t key = pair_key(ia, ib);
        size_t slot = pair_slot(t, key);
        t->pair_key[slot] = key;
        t->pair_rank[slot] = rank; /* a repeated pair keeps its last rank, like a Python dict */
        rank++;
    }
    t->n_merges = rank;
    return SD_OK;
}

sd_status sd_tokenizer_load_buffers(sd_tokenizer **out, const char *vocab_json, size_t vocab_len,
                                    const char *merges_txt, size_t merges_len,
                                    const char *pad_token) {
    SD_CHECK_ARG(out && (vocab_json || vocab_len == 0) && (merges_txt || merges_len == 0),
                 "sd_tokenizer_load_buffers: NULL argument");
    if (vocab_len > SD_TOKENIZER_MAX_FILE || merges_len > SD_TOKENIZER_MAX_FILE)
        return sd_fail(SD_ERR_LIMIT, "tokenizer: vocab.json (%zu bytes) or merges.txt (%zu bytes) "
                       "over the %d-byte limit", vocab_len, merges_len, SD_TOKENIZER_MAX_FILE);
    sd_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return sd_fail(SD_ERR_NOMEM, "tokenizer: out of memory");
    const char *pad = pad_token ? pad_token : k_eos;
    sd_status st = load_vocab(t, vocab_json, vocab_len);
    if (st == SD_OK) st = load_byte_symbols(t);
    if (st == SD_OK) {
        t->bos = sd_tokenizer_find(t, k_bos);
        t->eos = sd_tokenizer_find(t, k_eos);
        t->pad = sd_tokenizer_find(t, pad);
        const char *missing = t->bos < 0 ? k_bos : t->eos < 0 ? k_eos : t->pad < 0 ? pad : NULL;
        if (missing)
            st = sd_fail(SD_ERR_FORMAT, "vocab.json: special token \"%.*s\" is missing",
                         show_len(strlen(missing)), missing);
    }
    if (st == SD_OK) st = load_merges(t, merges_txt, merges_len);
    if (st != SD_OK) {
        sd_tokenizer_free(t);
        return st;
    }
    *out = t;
    return SD_OK;
}

/* Reads "pad_token" (a string, or an object with a string "content") from a JSON config.
 * *found stays false when the file or the key is absent or null. */
static sd_status pad_from_config(const char *path, char pad[PAD_MAX], bool *found) {
    *found = false;
    if (!sd_is_file(path)) return SD_OK;
    char *buf = NULL;
    size_t len = 0;
    SD_TRY(sd_read_file(path, CONFIG_MAX, &buf, &len));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    sd_status st = SD_OK;
    if (!root || !cJSON_IsObject(root)) {
        st = sd_fail(SD_ERR_FORMAT, "%s: not a JSON object (error near line %zu)", path,
                     root ? 1 : line_of(buf, len, end));
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "pad_token");
        if (cJSON_IsObject(p)) p = cJSON_GetObjectItemCaseSensitive(p, "content");
        if (cJSON_IsString(p) && strlen(p->valuestring) < PAD_MAX) {
            memcpy(pad, p->valuestring, strlen(p->valuestring) + 1);
            *found = true;
        } else if (p && !cJSON_IsNull(p)) {
            st = sd_fail(SD_ERR_FORMAT, "%s: \"pad_token\" must be a string (under %d bytes) or "
                         "an object with a string \"content\"", path, PAD_MAX);
        }
    }
    cJSON_Delete(root);
    free(buf);
    return st;
}

sd_status sd_tokenizer_load(sd_tokenizer **out, const char *dir) {
    SD_CHECK_ARG(out && dir, "sd_tokenizer_load: NULL argument");
    char vpath[SD_PATH_MAX], mpath[SD_PATH_MAX], cpath[SD_PATH_MAX];
    SD_TRY(sd_path_join(vpath, sizeof vpath, dir, "vocab.json"));
    SD_TRY(sd_path_join(mpath, sizeof mpath, dir, "merges.txt"));
    if (!sd_is_file(vpath)) return sd_fail(SD_ERR_NOT_FOUND, "%s: not found", vpath);
    if (!sd_is_file(mpath)) return sd_fail(SD_ERR_NOT_FOUND, "%s: not found", mpath);
    char pad[PAD_MAX];
    bool found = false;
    static const char *const configs[] = {"tokenizer_config.json", "special_tokens_map.json"};
    for (size_t i = 0; i < 2 && !found; i++) {
        SD_TRY(sd_path_join(cpath, sizeof cpath, dir, configs[i]));
        SD_TRY(pad_from_config(cpath, pad, &found));
    }
    char *vocab = NULL, *merges = NULL;
    size_t vlen = 0, mlen = 0;
    sd_tokenizer *t = NULL;
    sd_status st = sd_read_file(vpath, SD_TOKENIZER_MAX_FILE, &vocab, &vlen);
    if (st == SD_OK) st = sd_read_file(mpath, SD_TOKENIZER_MAX_FILE, &merges, &mlen);
    if (st == SD_OK) {
        st = sd_tokenizer_load_buffers(&t, vocab, vlen, merges, mlen, NULL);
        if (st != SD_OK) sd_error_prefix("%s", dir);
    }
    free(vocab);
    free(merges);
    if (st != SD_OK) return st;
    if (found) {
        t->pad = sd_tokenizer_find(t, pad);
        if (t->pad < 0) {
            sd_tokenizer_free(t);
            return sd_fail(SD_ERR_FORMAT, "%s: pad_token \"%.*s\" is not in vocab.json", cpath,
                           show_len(strlen(pad)), pad);
        }
    }
    *out = t;
    return SD_OK;
}

void sd_tokenizer_free(sd_tokenizer *tok) {
    if (!tok) return;
    free(tok->strings);
    free(tok->str_off);
    free(tok->str_len);
    free(tok->vocab_slot);
    free(tok->merge_a);
    free(tok->merge_b);
    free(tok->merge_res);
    free(tok->pair_key);
    free(tok->pair_rank);
    free(tok);
}

int32_t sd_tokenizer_pad_id(const sd_tokenizer *tok) { return tok ? tok->pad : -1; }
int32_t sd_tokenizer_bos_id(const sd_tokenizer *tok) { return tok ? tok->bos : -1; }
int32_t sd_tokenizer_eos_id(const sd_tokenizer *tok) { return tok ? tok->eos : -1; }
int32_t sd_tokenizer_vocab_size(const sd_tokenizer *tok) { return tok ? tok->n_vocab : 0; }

const char *sd_tokenizer_token(const sd_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_vocab) return NULL;
    return tok->strings + tok->str_off[id];
}

int32_t sd_tokenizer_find(const sd_tokenizer *tok, const char *token) {
    if (!tok || !token) return -1;
    return vocab_find2(tok, token, strlen(token), "", 0, NULL);
}

/* ---- characters -------------------------------------------------------------------------- */

/* Non-ASCII \p{L} and \p{N} as Python's regex module sees them: [first, last] pairs. Generated
 * for the whole BMP (unassigned gaps merged into their neighbours) plus the CJK extension planes
 * and the mathematical alphanumerics; the rarer scripts of planes 1-3 are left out (rule 6). */
static const uint32_t k_letters[] = {
    0x00AA, 0x00AA, 0x00B5, 0x00B5, 0x00BA, 0x00BA, 0x00C0, 0x00D6, 0x00D8, 0x00F6, 0x00F8, 0x02C1,
    0x02C6, 0x02D1, 0x02E0, 0x02E4, 0x02EC, 0x02EC, 0x02EE, 0x02EE, 0x0370, 0x0374, 0x0376, 0x037D,
    0x037F, 0x037F, 0x0386, 0x0386, 0x0388, 0x03F5, 0x03F7, 0x0481, 0x048A, 0x0559, 0x0560, 0x0588,
    0x05D0, 0x05F2, 0x0620, 0x064A, 0x066E, 0x066F, 0x0671, 0x06D3, 0x06D5, 0x06D5, 0x06E5, 0x06E6,
    0x06EE, 0x06EF, 0x06FA, 0x06FC, 0x06FF, 0x06FF, 0x0710, 0x0710, 0x0712, 0x072F, 0x074D, 0x07A5,
    0x07B1, 0x07B1, 0x07CA, 0x07EA, 0x07F4, 0x07F5, 0x07FA, 0x07FA, 0x0800, 0x0815, 0x081A, 0x081A,
    0x0824, 0x0824, 0x0828, 0x0828, 0x0840, 0x0858, 0x0860, 0x0887, 0x0889, 0x088F, 0x08A0, 0x08C9,
    0x0904, 0x0939, 0x093D, 0x093D, 0x0950, 0x0950, 0x0958, 0x0961, 0x0971, 0x0980, 0x0985, 0x09B9,
    0x09BD, 0x09BD, 0x09CE, 0x09CE, 0x09DC, 0x09E1, 0x09F0, 0x09F1, 0x09FC, 0x09FC, 0x0A05, 0x0A39,
    0x0A59, 0x0A5E, 0x0A72, 0x0A74, 0x0A85, 0x0AB9, 0x0ABD, 0x0ABD, 0x0AD0, 0x0AE1, 0x0AF9, 0x0AF9,
    0x0B05, 0x0B39, 0x0B3D, 0x0B3D, 0x0B5C, 0x0B61, 0x0B71, 0x0B71, 0x0B83, 0x0BB9, 0x0BD0, 0x0BD0,
    0x0C05, 0x0C39, 0x0C3D, 0x0C3D, 0x0C58, 0x0C61, 0x0C80, 0x0C80, 0x0C85, 0x0CB9, 0x0CBD, 0x0CBD,
    0x0CDC, 0x0CE1, 0x0CF1, 0x0CF2, 0x0D04, 0x0D3A, 0x0D3D, 0x0D3D, 0x0D4E, 0x0D4E, 0x0D54, 0x0D56,
    0x0D5F, 0x0D61, 0x0D7A, 0x0D7F, 0x0D85, 0x0DC6, 0x0E01, 0x0E30, 0x0E32, 0x0E33, 0x0E40, 0x0E46,
    0x0E81, 0x0EB0, 0x0EB2, 0x0EB3, 0x0EBD, 0x0EC6, 0x0EDC, 0x0F00, 0x0F40, 0x0F6C, 0x0F88, 0x0F8C,
    0x1000, 0x102A, 0x103F, 0x103F, 0x1050, 0x1055, 0x105A, 0x105D, 0x1061, 0x1061, 0x1065, 0x1066,
    0x106E, 0x1070, 0x1075, 0x1081, 0x108E, 0x108E, 0x10A0, 0x10FA, 0x10FC, 0x135A, 0x1380, 0x138F,
    0x13A0, 0x13FD, 0x1401, 0x166C, 0x166F, 0x167F, 0x1681, 0x169A, 0x16A0, 0x16EA, 0x16F1, 0x1711,
    0x171F, 0x1731, 0x1740, 0x1751, 0x1760, 0x1770, 0x1780, 0x17B3, 0x17D7, 0x17D7, 0x17DC, 0x17DC,
    0x1820, 0x1884, 0x1887, 0x18A8, 0x18AA, 0x191E, 0x1950, 0x19C9, 0x1A00, 0x1A16, 0x1A20, 0x1A54,
    0x1AA7, 0x1AA7, 0x1B05, 0x1B33, 0x1B45, 0x1B4C, 0x1B83, 0x1BA0, 0x1BAE, 0x1BAF, 0x1BBA, 0x1BE5,
    0x1C00, 0x1C23, 0x1C4D, 0x1C4F, 0x1C5A, 0x1C7D, 0x1C80, 0x1CBF, 0x1CE9, 0x1CEC, 0x1CEE, 0x1CF3,
    0x1CF5, 0x1CF6, 0x1CFA, 0x1DBF, 0x1E00, 0x1FBC, 0x1FBE, 0x1FBE, 0x1FC2, 0x1FCC, 0x1FD0, 0x1FDB,
    0x1FE0, 0x1FEC, 0x1FF2, 0x1FFC, 0x2071, 0x2071, 0x207F, 0x207F, 0x2090, 0x209C, 0x2102, 0x2102,
    0x2107, 0x2107, 0x210A, 0x2113, 0x2115, 0x2115, 0x2119, 0x211D, 0x2124, 0x2124, 0x2126, 0x2126,
    0x2128, 0x2128, 0x212A, 0x212D, 0x212F, 0x2139, 0x213C, 0x213F, 0x2145, 0x2149, 0x214E, 0x214E,
    0x2183, 0x2184, 0x2C00, 0x2CE4, 0x2CEB, 0x2CEE, 0x2CF2, 0x2CF3, 0x2D00, 0x2D6F, 0x2D80, 0x2DDE,
    0x2E2F, 0x2E2F, 0x3005, 0x3006, 0x3031, 0x3035, 0x303B, 0x303C, 0x3041, 0x3096, 0x309D, 0x309F,
    0x30A1, 0x30FA, 0x30FC, 0x318E, 0x31A0, 0x31BF, 0x31F0, 0x31FF, 0x3400, 0x4DBF, 0x4E00, 0xA48C,
    0xA4D0, 0xA4FD, 0xA500, 0xA60C, 0xA610, 0xA61F, 0xA62A, 0xA66E, 0xA67F, 0xA69D, 0xA6A0, 0xA6E5,
    0xA717, 0xA71F, 0xA722, 0xA788, 0xA78B, 0xA801, 0xA803, 0xA805, 0xA807, 0xA80A, 0xA80C, 0xA822,
    0xA840, 0xA873, 0xA882, 0xA8B3, 0xA8F2, 0xA8F7, 0xA8FB, 0xA8FB, 0xA8FD, 0xA8FE, 0xA90A, 0xA925,
    0xA930, 0xA946, 0xA960, 0xA97C, 0xA984, 0xA9B2, 0xA9CF, 0xA9CF, 0xA9E0, 0xA9E4, 0xA9E6, 0xA9EF,
    0xA9FA, 0xAA28, 0xAA40, 0xAA42, 0xAA44, 0xAA4B, 0xAA60, 0xAA76, 0xAA7A, 0xAA7A, 0xAA7E, 0xAAAF,
    0xAAB1, 0xAAB1, 0xAAB5, 0xAAB6, 0xAAB9, 0xAABD, 0xAAC0, 0xAAC0, 0xAAC2, 0xAADD, 0xAAE0, 0xAAEA,
    0xAAF2, 0xAAF4, 0xAB01, 0xAB5A, 0xAB5C, 0xAB69, 0xAB70, 0xABE2, 0xAC00, 0xD7FB, 0xF900, 0xFB1D,
    0xFB1F, 0xFB28, 0xFB2A, 0xFBB1, 0xFBD3, 0xFD3D, 0xFD50, 0xFDC7, 0xFDF0, 0xFDFB, 0xFE70, 0xFEFC,
    0xFF21, 0xFF3A, 0xFF41, 0xFF5A, 0xFF66, 0xFFDC, 0x1D400, 0x1D7CB, 0x20000, 0x2A6DF,
    0x2A700, 0x2EBE0, 0x2F800, 0x2FA1D, 0x30000, 0x3134A,
};
static const uint32_t k_numbers[] = {
    0x00B2, 0x00B3, 0x00B9, 0x00B9, 0x00BC, 0x00BE, 0x0660, 0x0669, 0x06F0, 0x06F9, 0x07C0, 0x07C9,
    0x0966, 0x096F, 0x09E6, 0x09EF, 0x09F4, 0x09F9, 0x0A66, 0x0A6F, 0x0AE6, 0x0AEF, 0x0B66, 0x0B6F,
    0x0B72, 0x0B77, 0x0BE6, 0x0BF2, 0x0C66, 0x0C6F, 0x0C78, 0x0C7E, 0x0CE6, 0x0CEF, 0x0D58, 0x0D5E,
    0x0D66, 0x0D78, 0x0DE6, 0x0DEF, 0x0E50, 0x0E59, 0x0ED0, 0x0ED9, 0x0F20, 0x0F33, 0x1040, 0x1049,
    0x1090, 0x1099, 0x1369, 0x137C, 0x16EE, 0x16F0, 0x17E0, 0x17F9, 0x1810, 0x1819, 0x1946, 0x194F,
    0x19D0, 0x19DA, 0x1A80, 0x1A99, 0x1B50, 0x1B59, 0x1BB0, 0x1BB9, 0x1C40, 0x1C49, 0x1C50, 0x1C59,
    0x2070, 0x2070, 0x2074, 0x2079, 0x2080, 0x2089, 0x2150, 0x2182, 0x2185, 0x2189, 0x2460, 0x249B,
    0x24EA, 0x24FF, 0x2776, 0x2793, 0x2CFD, 0x2CFD, 0x3007, 0x3007, 0x3021, 0x3029, 0x3038, 0x303A,
    0x3192, 0x3195, 0x3220, 0x3229, 0x3248, 0x324F, 0x3251, 0x325F, 0x3280, 0x3289, 0x32B1, 0x32BF,
    0xA620, 0xA629, 0xA6E6, 0xA6EF, 0xA830, 0xA835, 0xA8D0, 0xA8D9, 0xA900, 0xA909, 0xA9D0, 0xA9D9,
    0xA9F0, 0xA9F9, 0xAA50, 0xAA59, 0xABF0, 0xABF9, 0xFF10, 0xFF19, 0x1D7CE, 0x1D7FF,
    0x1F100, 0x1F10C,
};

static bool in_ranges(uint32_t c, const uint32_t *r, size_t n_values) {
    size_t lo = 0, hi = n_values / 2;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < r[2 * mid]) hi = mid;
        else if (c > r[2 * mid + 1]) lo = mid + 1;
        else return true;
    }
    return false;
}

static bool is_letter(uint32_t c) {
    if (c < 0x80) return (c | 32) >= 'a' && (c | 32) <= 'z';
    return in_ranges(c, k_letters, sizeof k_letters / sizeof k_letters[0]);
}

static bool is_number(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return in_ranges(c, k_numbers, sizeof k_numbers / sizeof k_numbers[0]);
}

/* Python's str.isspace(), which whitespace_clean's \s uses. */
static bool is_space(uint32_t c) {
    return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x1F) || c == 0x85 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python's str.lower() for every character it maps to one character (U+0130 maps to two and
 * U+03A3 depends on context: lower_text handles them). Runs of {first, last, delta, stride}:
 * stride 2 maps every other character, as in the upper/lower pairs of Latin Extended. Generated
 * from Python 3.11 (Unicode 14) and checked against it for every code point. */
static const struct { uint32_t lo, hi; int32_t delta, stride; } k_lower[] = {
    {0x00C0, 0x00D6, 32, 1}, {0x00D8, 0x00DE, 32, 1}, {0x0100, 0x012E, 1, 2},
    {0x0132, 0x0136, 1, 2}, {0x0139, 0x0147, 1, 2}, {0x014A, 0x0176, 1, 2},
    {0x0178, 0x0178, -121, 1}, {0x0179, 0x017D, 1, 2}, {0x0181, 0x0181, 210, 1},
    {0x0182, 0x0184, 1, 2}, {0x0186, 0x0186, 206, 1}, {0x0187, 0x0187, 1, 1},
    {0x0189, 0x018A, 205, 1}, {0x018B, 0x018B, 1, 1}, {0x018E, 0x018E, 79, 1},
    {0x018F, 0x018F, 202, 1}, {0x0190, 0x0190, 203, 1}, {0x0191, 0x0191, 1, 1},
    {0x0193, 0x0193, 205, 1}, {0x0194, 0x0194, 207, 1}, {0x0196, 0x0196, 211, 1},
    {0x0197, 0x0197, 209, 1}, {0x0198, 0x0198, 1, 1}, {0x019C, 0x019C, 211, 1},
    {0x019D, 0x019D, 213, 1}, {0x019F, 0x019F, 214, 1}, {0x01A0, 0x01A4, 1, 2},
    {0x01A6, 0x01A6, 218, 1}, {0x01A7, 0x01A7, 1, 1}, {0x01A9, 0x01A9, 218, 1},
    {0x01AC, 0x01AC, 1, 1}, {0x01AE, 0x01AE, 218, 1}, {0x01AF, 0x01AF, 1, 1},
    {0x01B1, 0x01B2, 217, 1}, {0x01B3, 0x01B5, 1, 2}, {0x01B7, 0x01B7, 219, 1},
    {0x01B8, 0x01B8, 1, 1}, {0x01BC, 0x01BC, 1, 1}, {0x01C4, 0x01C4, 2, 1}, {0x01C5, 0x01C5, 1, 1},
    {0x01C7, 0x01C7, 2, 1}, {0x01C8, 0x01C8, 1, 1}, {0x01CA, 0x01CA, 2, 1}, {0x01CB, 0x01DB, 1, 2},
    {0x01DE, 0x01EE, 1, 2}, {0x01F1, 0x01F1, 2, 1}, {0x01F2, 0x01F4, 1, 2},
    {0x01F6, 0x01F6, -97, 1}, {0x01F7, 0x01F7, -56, 1}, {0x01F8, 0x021E, 1, 2},
    {0x0220, 0x0220, -130, 1}, {0x0222, 0x0232, 1, 2}, {0x023A, 0x023A, 10795, 1},
    {0x023B, 0x023B, 1, 1}, {0x023D, 0x023D, -163, 1}, {0x023E, 0x023E, 10792, 1},
    {0x0241, 0x0241, 1, 1}, {0x0243, 0x0243, -195, 1}, {0x0244, 0x0244, 69, 1},
    {0x0245, 0x0245, 71, 1}, {0x0246, 0x024E, 1, 2}, {0x0370, 0x0372, 1, 2}, {0x0376, 0x0376, 1, 1},
    {0x037F, 0x037F, 116, 1}, {0x0386, 0x0386, 38, 1}, {0x0388, 0x038A, 37, 1},
    {0x038C, 0x038C, 64, 1}, {0x038E, 0x038F, 63, 1}, {0x0391, 0x03A1, 32, 1},
    {0x03A3, 0x03AB, 32, 1}, {0x03CF, 0x03CF, 8, 1}, {0x03D8, 0x03EE, 1, 2},
    {0x03F4, 0x03F4, -60, 1}, {0x03F7, 0x03F7, 1, 1}, {0x03F9, 0x03F9, -7, 1},
    {0x03FA, 0x03FA, 1, 1}, {0x03FD, 0x03FF, -130, 1}, {0x0400, 0x040F, 80, 1},
    {0x0410, 0x042F, 32, 1}, {0x0460, 0x0480, 1, 2}, {0x048A, 0x04BE, 1, 2},
    {0x04C0, 0x04C0, 15, 1}, {0x04C1, 0x04CD, 1, 2}, {0x04D0, 0x052E, 1, 2},
    {0x0531, 0x0556, 48, 1}, {0x10A0, 0x10C5, 7264, 1}, {0x10C7, 0x10C7, 7264, 1},
    {0x10CD, 0x10CD, 7264, 1}, {0x13A0, 0x13EF, 38864, 1}, {0x13F0, 0x13F5, 8, 1},
    {0x1C90, 0x1CBA, -3008, 1}, {0x1CBD, 0x1CBF, -3008, 1}, {0x1E00, 0x1E94, 1, 2},
    {0x1E9E, 0x1E9E, -7615, 1}, {0x1EA0, 0x1EFE, 1, 2}, {0x1F08, 0x1F0F, -8, 1},
    {0x1F18, 0x1F1D, -8, 1}, {0x1F28, 0x1F2F, -8, 1}, {0x1F38, 0x1F3F, -8, 1},
    {0x1F48, 0x1F4D, -8, 1}, {0x1F59, 0x1F5F, -8, 2}, {0x1F68, 0x1F6F, -8, 1},
    {0x1F88, 0x1F8F, -8, 1}, {0x1F98, 0x1F9F, -8, 1}, {0x1FA8, 0x1FAF, -8, 1},
    {0x1FB8, 0x1FB9, -8, 1}, {0x1FBA, 0x1FBB, -74, 1}, {0x1FBC, 0x1FBC, -9, 1},
    {0x1FC8, 0x1FCB, -86, 1}, {0x1FCC, 0x1FCC, -9, 1}, {0x1FD8, 0x1FD9, -8, 1},
    {0x1FDA, 0x1FDB, -100, 1}, {0x1FE8, 0x1FE9, -8, 1}, {0x1FEA, 0x1FEB, -112, 1},
    {0x1FEC, 0x1FEC, -7, 1}, {0x1FF8, 0x1FF9, -128, 1}, {0x1FFA, 0x1FFB, -126, 1},
    {0x1FFC, 0x1FFC, -9, 1}, {0x2126, 0x2126, -7517, 1}, {0x212A, 0x212A, -8383, 1},
    {0x212B, 0x212B, -8262, 1}, {0x2132, 0x2132, 28, 1}, {0x2160, 0x216F, 16, 1},
    {0x2183, 0x2183, 1, 1}, {0x24B6, 0x24CF, 26, 1}, {0x2C00, 0x2C2F, 48, 1},
    {0x2C60, 0x2C60, 1, 1}, {0x2C62, 0x2C62, -10743, 1}, {0x2C63, 0x2C63, -3814, 1},
    {0x2C64, 0x2C64, -10727, 1}, {0x2C67, 0x2C6B, 1, 2}, {0x2C6D, 0x2C6D, -10780, 1},
    {0x2C6E, 0x2C6E, -10749, 1}, {0x2C6F, 0x2C6F, -10783, 1}, {0x2C70, 0x2C70, -10782, 1},
    {0x2C72, 0x2C72, 1, 1}, {0x2C75, 0x2C75, 1, 1}, {0x2C7E, 0x2C7F, -10815, 1},
    {0x2C80, 0x2CE2, 1, 2}, {0x2CEB, 0x2CED, 1, 2}, {0x2CF2, 0x2CF2, 1, 1}, {0xA640, 0xA66C, 1, 2},
    {0xA680, 0xA69A, 1, 2}, {0xA722, 0xA72E, 1, 2}, {0xA732, 0xA76E, 1, 2}, {0xA779, 0xA77B, 1, 2},
    {0xA77D, 0xA77D, -35332, 1}, {0xA77E, 0xA786, 1, 2}, {0xA78B, 0xA78B, 1, 1},
    {0xA78D, 0xA78D, -42280, 1}, {0xA790, 0xA792, 1, 2}, {0xA796, 0xA7A8, 1, 2},
    {0xA7AA, 0xA7AA, -42308, 1}, {0xA7AB, 0xA7AB, -42319, 1}, {0xA7AC, 0xA7AC, -42315, 1},
    {0xA7AD, 0xA7AD, -42305, 1}, {0xA7AE, 0xA7AE, -42308, 1}, {0xA7B0, 0xA7B0, -42258, 1},
    {0xA7B1, 0xA7B1, -42282, 1}, {0xA7B2, 0xA7B2, -42261, 1}, {0xA7B3, 0xA7B3, 928, 1},
    {0xA7B4, 0xA7C2, 1, 2}, {0xA7C4, 0xA7C4, -48, 1}, {0xA7C5, 0xA7C5, -42307, 1},
    {0xA7C6, 0xA7C6, -35384, 1}, {0xA7C7, 0xA7C9, 1, 2}, {0xA7D0, 0xA7D0, 1, 1},
    {0xA7D6, 0xA7D8, 1, 2}, {0xA7F5, 0xA7F5, 1, 1}, {0xFF21, 0xFF3A, 32, 1},
    {0x10400, 0x10427, 40, 1}, {0x104B0, 0x104D3, 40, 1}, {0x10570, 0x1057A, 39, 1},
    {0x1057C, 0x1058A, 39, 1}, {0x1058C, 0x10592, 39, 1}, {0x10594, 0x10595, 39, 1},
    {0x10C80, 0x10CB2, 64, 1}, {0x118A0, 0x118BF, 32, 1}, {0x16E40, 0x16E5F, 32, 1},
    {0x1E900, 0x1E921, 34, 1},
};

static uint32_t lower_cp(uint32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    size_t lo = 0, hi = sizeof k_lower / sizeof k_lower[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < k_lower[mid].lo) hi = mid;
        else if (c > k_lower[mid].hi) lo = mid + 1;
        else if ((c - k_lower[mid].lo) % (uint32_t)k_lower[mid].stride) return c;
        else return (uint32_t)((int64_t)c + k_lower[mid].delta);
    }
    return c;
}

/* ---- text cleanup ------------------------------------------------------------------------ */

/* Each byte of an invalid or overlong sequence, or of a surrogate, becomes U+FFFD (rule 1). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *out) {
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        bool ok = len > 0 && len <= n - i;
        for (size_t k = 1; ok && k < len; k++) {
            ok = (s[i + k] & 0xC0) == 0x80;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (ok && (cp < min_cp[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)) ok = false;
        out[w++] = ok ? cp : 0xFFFD;
        i += ok ? len : 1;
    }
    return w;
}

static size_t utf8_encode(uint32_t c, uint8_t *o) {
    if (c < 0x80) {
        o[0] = (uint8_t)c;
        return 1;
    }
    size_t n = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    for (size_t i = n - 1; i > 0; i--, c >>= 6) o[i] = (uint8_t)(0x80 | (c & 0x3F));
    o[0] = (uint8_t)((0xF00u >> n) | c); /* lead byte: n one-bits, then the payload */
    return n;
}

static bool is_alnum_ascii(uint32_t c) { return c < 0x80 && (is_letter(c) || is_number(c)); }

/* Length of the entity at cp[0] == '&' and its value, or 0 (rule 3). */
static size_t html_entity(const uint32_t *cp, size_t n, uint32_t *value) {
    size_t k = 1;
    while (k < n && k <= 12 && (is_alnum_ascii(cp[k]) || (k == 1 && cp[k] == '#'))) k++;
    if (k >= n || cp[k] != ';' || k == 1) return 0;
    if (cp[1] == '#') {
        bool hex = k > 2 && (cp[2] | 32) == 'x';
        size_t d0 = hex ? 3 : 2;
        if (d0 >= k) return 0;
        uint32_t v = 0;
        for (size_t i = d0; i < k; i++) {
            uint32_t c = cp[i] | 32, digit;
            if (c >= '0' && c <= '9') digit = c - '0';
            else if (hex && c >= 'a' && c <= 'f') digit = c - 'a' + 10;
            else return 0;
            v = v > 0x10FFFF ? v : v * (hex ? 16 : 10) + digit; /* saturates, no overflow */
        }
        *value = (v == 0 || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) ? 0xFFFD : v;
        return k + 1;
    }
    static const struct { char name[5]; uint32_t value; } named[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", 0xA0}};
    for (size_t e = 0; e < sizeof named / sizeof named[0]; e++) {
        size_t len = strlen(named[e].name), i = 0;
        if (k != len + 1) continue;
        while (i < len && cp[1 + i] == (uint32_t)named[e].name[i]) i++;
        if (i == len) {
            *value = named[e].value;
            return k + 1;
        }
    }
    return 0;
}

static size_t html_unescape(uint32_t *cp, size_t n) { /* in place: output never outruns input */
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        uint32_t v;
        size_t used = cp[i] == '&' ? html_entity(cp + i, n - i, &v) : 0;
        cp[w++] = used ? v : cp[i];
        i += used ? used : 1;
    }
    return w;
}

/* ftfy subset (rule 2), then whitespace_clean: runs -> one space, stripped. In place: a space
 * is only written after consuming at least one whitespace character. */
static size_t clean_text(uint32_t *cp, size_t n) {
    size_t w = 0;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i];
        if (c <= 8 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
            (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC))
            continue;
        if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
        else if (c >= 0x201C && c <= 0x201F) c = '"';
        else if (c >= 0xFF01 && c <= 0xFF5E) c -= 0xFEE0;
        if (is_space(c)) {
            space = w > 0;
            continue;
        }
        if (space) cp[w++] = ' ';
        space = false;
        cp[w++] = c;
    }
    return w;
}

/* Unicode's Case_Ignorable, abridged to what prompts hold: apostrophes, dots, combining accents. */
static bool case_ignorable(uint32_t c) {
    return c == '\'' || c == '.' || c == ':' || c == '^' || c == '`' || c == 0xAD || c == 0xB7 ||
           (c >= 0x300 && c <= 0x36F) || c == 0x2019;
}

/* Letters of the bicameral scripts (Latin, Greek, Cyrillic, Armenian, Georgian, ...). */
static bool is_cased(uint32_t c) {
    return is_letter(c) && (c < 0x590 || (c >= 0x10A0 && c <= 0x10FF) ||
                            (c >= 0x1E00 && c <= 0x1FFF) || (c >= 0x2C00 && c <= 0x2D2F) ||
                            (c >= 0xA640 && c <= 0xA7FF) || (c >= 0xFF21 && c <= 0xFF5A));
}

/* Python's Final_Sigma: a cased letter before and none after, case-ignorables skipped. */
static bool final_sigma(const uint32_t *cp, size_t n, size_t i) {
    size_t b = i, a = i + 1;
    while (b > 0 && case_ignorable(cp[b - 1])) b--;
    while (a < n && case_ignorable(cp[a])) a++;
    return b > 0 && is_cased(cp[b - 1]) && !(a < n && is_cased(cp[a]));
}

/* out holds 2n: U+0130 becomes two characters, as in Python. */
static size_t lower_text(const uint32_t *cp, size_t n, uint32_t *out) {
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i];
        if (c == 0x3A3) {
            out[w++] = final_sigma(cp, n, i) ? 0x3C2 : 0x3C3;
        } else if (c == 0x130) {
            out[w++] = 'i';
            out[w++] = 0x307;
        } else {
            out[w++] = lower_cp(c);
        }
    }
    return w;
}

/* ---- BPE --------------------------------------------------------------------------------- */

typedef struct {
    int32_t *ids;
    size_t cap, count;
    bool all; /* keep counting past cap (for n_bpe) */
} sink;

static void sink_put(sink *s, int32_t id) {
    if (s->count < s->cap) s->ids[s->count] = id;
    s->count++;
}

static void heap_push(uint64_t *h, size_t *n, uint64_t key) {
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > key) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = key;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* Heap keys order by rank, then by position: one rank's merges come out left to right. */
static uint64_t heap_key(int32_t rank, int32_t pos) { return (uint64_t)rank << 32 | (uint32_t)pos; }

static bool pair_still_there(const sd_tokenizer *t, int32_t r, int32_t p) {
    return t->sym[p] == t->merge_a[r] && t->nxt[p] >= 0 && t->sym[t->nxt[p]] == t->merge_b[r];
}

/* Merges the pair at p (rank r); its new neighbour pairs go to pend[*np]. */
static void merge_at(sd_tokenizer *t, int32_t r, int32_t p, size_t *np) {
    int32_t q = t->nxt[p];
    t->sym[p] = t->merge_res[r];
    t->sym[q] = -1; /* dead: fails every pair_still_there */
    t->nxt[p] = t->nxt[q];
    if (t->nxt[p] >= 0) t->prv[t->nxt[p]] = p;
    int32_t rr, left = t->prv[p], right = t->nxt[p];
    if (left >= 0 && (rr = pair_rank(t, t->sym[left], t->sym[p])) >= 0)
        t->pend[(*np)++] = heap_key(rr, left);
    if (right >= 0 && (rr = pair_rank(t, t->sym[p], t->sym[right])) >= 0)
        t->pend[(*np)++] = heap_key(rr, p);
}

/* BPE of t->word[0..n): openai's loop merges the lowest-ranked pair present, every occurrence
 * left to right, then looks again. Here: pop the lowest (rank, position), merge all valid
 * entries of that rank in position order, and only then let the pairs this round created into
 * the heap — the same result as openai's for any merges file, in O(n log n). */
static void bpe_word(sd_tokenizer *t, size_t n, sink *s) {
    for (size_t i = 0; i < n; i++) {
        t->sym[i] = i + 1 == n ? t->byte_end_id[t->word[i]] : t->byte_id[t->word[i]];
        t->prv[i] = (int32_t)i - 1;
        t->nxt[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t r = pair_rank(t, t->sym[i], t->sym[i + 1]);
        if (r >= 0) heap_push(t->heap, &hn, heap_key(r, (int32_t)i));
    }
    while (hn > 0) {
        uint64_t k = heap_pop(t->heap, &hn);
        int32_t r = (int32_t)(k >> 32), p = (int32_t)(uint32_t)k;
        if (!pair_still_there(t, r, p)) continue;
        size_t np = 0;
        merge_at(t, r, p, &np);
        while (hn > 0 && (int32_t)(t->heap[0] >> 32) == r) {
            p = (int32_t)(uint32_t)heap_pop(t->heap, &hn);
            if (pair_still_there(t, r, p)) merge_at(t, r, p, &np);
        }
        for (size_t i = 0; i < np; i++) heap_push(t->heap, &hn, t->pend[i]);
    }
    for (int32_t i = 0; i >= 0; i = t->nxt[i]) sink_put(s, t->sym[i]); /* node 0 never dies */
}

/* One pre-split piece: UTF-8 bytes, cut into words of at most WORD_MAX bytes (rule 8). */
static void emit_piece(sd_tokenizer *t, const uint32_t *cp, size_t n, sink *s) {
    size_t len = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t u[4];
        size_t m = utf8_encode(cp[k], u);
        if (len + m > WORD_MAX) {
            bpe_word(t, len, s);
            len = 0;
        }
        memcpy(t->word + len, u, m);
        len += m;
    }
    if (len > 0) bpe_word(t, len, s);
}

static bool starts_with(const uint32_t *cp, size_t n, const char *lit) {
    size_t k = strlen(lit);
    if (n < k) return false;
    for (size_t i = 0; i < k; i++)
        if (cp[i] != (unsigned char)lit[i]) return false;
    return true;
}

/* 's 't 're 've 'm 'll 'd at cp[0] == '\'': their length, or 0. */
static size_t contraction(const uint32_t *cp, size_t n) {
    if (n < 2) return 0;
    uint32_t c = cp[1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
    if (n >= 3 && (((c == 'r' || c == 'v') && cp[2] == 'e') || (c == 'l' && cp[2] == 'l'))) return 3;
    return 0;
}

/* CLIP's pre-split regex, alternatives tried in its order at each position (rule 6). */
static void split_and_encode(sd_tokenizer *t, const uint32_t *cp, size_t n, sink *s) {
    size_t i = 0;
    while (i < n && (s->all || s->count < s->cap)) {
        uint32_t c = cp[i];
        if (is_space(c)) {
            i++;
            continue;
        }
        if (starts_with(cp + i, n - i, k_bos) || starts_with(cp + i, n - i, k_eos)) {
            bool bos = cp[i + 2] == 's';
            sink_put(s, bos ? t->bos : t->eos);
            i += bos ? sizeof k_bos - 1 : sizeof k_eos - 1;
            continue;
        }
        size_t j = c == '\'' ? contraction(cp + i, n - i) : 0;
        if (j == 0 && is_letter(c)) {
            for (j = 1; i + j < n && is_letter(cp[i + j]);) j++;
        } else if (j == 0 && is_number(c)) {
            j = 1; /* [\p{N}]: one digit per piece */
        } else if (j == 0) {
            for (j = 1; i + j < n && !is_space(cp[i + j]) && !is_letter(cp[i + j]) &&
                        !is_number(cp[i + j]);)
                j++;
        }
        emit_piece(t, cp + i, j, s);
        i += j;
    }
}

static sd_status tokenize(sd_tokenizer *t, const char *text, int32_t *out, size_t cap, bool all,
                          size_t *total) {
    size_t len = 0;
    while (len <= SD_TOKENIZER_MAX_PROMPT && text[len]) len++;
    if (len > SD_TOKENIZER_MAX_PROMPT)
        return sd_fail(SD_ERR_LIMIT, "tokenizer: prompt is over the %d-byte limit",
                       SD_TOKENIZER_MAX_PROMPT);
    uint32_t *cp = malloc((len + 1) * sizeof *cp);
    uint32_t *lower = malloc((2 * len + 1) * sizeof *lower);
    if (!cp || !lower) {
        free(cp);
        free(lower);
        return sd_fail(SD_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte prompt", len);
    }
    size_t n = utf8_decode((const unsigned char *)text, len, cp);
    if (!memchr(text, '<', len)) { /* ftfy's "auto": text with '<' may be HTML, leave it */
        n = html_unescape(cp, n);
        n = html_unescape(cp, n);
    }
    n = clean_text(cp, n);
    n = lower_text(cp, n, lower);
    sink s = {out, cap, 0, all};
    split_and_encode(t, lower, n, &s);
    *total = s.count;
    free(cp);
    free(lower);
    return SD_OK;
}

sd_status sd_tokenizer_encode(sd_tokenizer *tok, const char *text, int32_t ids[SD_TOKENS],
                              int *n_bpe) {
    SD_CHECK_ARG(tok && text && ids, "sd_tokenizer_encode: NULL argument");
    int32_t body[SD_TOKENIZER_BODY];
    size_t total = 0;
    SD_TRY(tokenize(tok, text, body, SD_TOKENIZER_BODY, n_bpe != NULL, &total));
    size_t k = total < SD_TOKENIZER_BODY ? total : SD_TOKENIZER_BODY;
    ids[0] = tok->bos;
    memcpy(ids + 1, body, k * sizeof *ids);
    ids[k + 1] = tok->eos;
    for (size_t i = k + 2; i < SD_TOKENS; i++) ids[i] = tok->pad;
    if (n_bpe) *n_bpe = total > INT_MAX ? INT_MAX : (int)total;
    return SD_OK;
}

sd_status sd_tokenizer_bpe(sd_tokenizer *tok, const char *text, int32_t *out, size_t cap,
                           size_t *n_total) {
    SD_CHECK_ARG(tok && text && n_total && (out || cap == 0), "sd_tokenizer_bpe: NULL argument");
    return tokenize(tok, text, out, cap, true, n_total);
}
