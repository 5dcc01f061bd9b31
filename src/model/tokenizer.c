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
#include "model/text_norm.h"

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
    return sd_utf8_encode(keep ? (unsigned)byte : 256u + (unsigned)extra, (uint8_t *)out);
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
        size_t m = sd_utf8_encode(cp[k], u);
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
        if (sd_uni_is_space(c)) {
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
        if (j == 0 && sd_uni_is_letter(c)) {
            for (j = 1; i + j < n && sd_uni_is_letter(cp[i + j]);) j++;
        } else if (j == 0 && sd_uni_is_number(c)) {
            j = 1; /* [\p{N}]: one digit per piece */
        } else if (j == 0) {
            for (j = 1; i + j < n && !sd_uni_is_space(cp[i + j]) && !sd_uni_is_letter(cp[i + j]) &&
                        !sd_uni_is_number(cp[i + j]);)
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
    size_t n = sd_utf8_decode((const unsigned char *)text, len, cp);
    if (!memchr(text, '<', len)) { /* ftfy's "auto": text with '<' may be HTML, leave it */
        n = sd_text_html_unescape(cp, n);
        n = sd_text_html_unescape(cp, n);
    }
    n = sd_text_clean(cp, n);
    n = sd_text_lower(cp, n, lower);
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
