/* test_tokenizer.c — the CLIP tokenizer against golden/tokenizer/cases.tsv (openai clip.tokenize
 * ids with HF padding, both tiny-sd15 and tiny-sd21 tokenizers), plus the documented choices
 * (!, html entities, non-ASCII, long words) and hostile input: missing and malformed files,
 * oversized files and prompts, invalid UTF-8. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fs.h"
#include "check.h"
#include "model/tokenizer.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static bool copy_file(const char *from, const char *to) {
    char *buf = NULL;
    size_t len = 0;
    if (sd_read_file(from, 64u << 20, &buf, &len) != SD_OK) return false;
    bool ok = write_file(to, buf, len);
    free(buf);
    return ok;
}

/* A scratch tokenizer folder named `name` with the tiny-sd15 vocab.json / merges.txt. */
static const char *scratch_dir(const char *name, const char *ref_dir, bool vocab, bool merges) {
    static char dir[4][1024];
    static int slot;
    char *d = dir[slot++ & 3];
    snprintf(d, 1024, "%s", check_tmp(name));
    if (mkdir(d, 0755) != 0 && errno != EEXIST) CHECK(false, "mkdir %s: %s", d, strerror(errno));
    const char *names[2] = {"vocab.json", "merges.txt"};
    bool want[2] = {vocab, merges};
    for (int i = 0; i < 2; i++) {
        char from[2048], to[2048];
        snprintf(from, sizeof from, "%s/%s", ref_dir, names[i]);
        snprintf(to, sizeof to, "%s/%s", d, names[i]);
        unlink(to);
        if (want[i]) CHECK(copy_file(from, to), "copy %s -> %s", from, to);
    }
    return d;
}

static void write_in(const char *dir, const char *name, const char *text) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(write_file(path, text, strlen(text)), "write %s", path);
}

static int parse_ids(const char *s, int32_t *ids, int max) {
    int n = 0;
    char *end;
    while (n < max) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        ids[n++] = (int32_t)v;
        s = end;
    }
    return n;
}

/* Every case of cases.tsv: 77 ids for both tokenizers, n_bpe, and the BPE strings. */
static void test_golden(sd_tokenizer *t15, sd_tokenizer *t21) {
    char *tsv = NULL;
    size_t len = 0;
    CHECK_OK(sd_read_file(check_ref("golden/tokenizer/cases.tsv"), 1 << 20, &tsv, &len));
    if (!tsv) return;
    int cases = 0;
    char *save = NULL;
    int line_no = 0;
    for (char *line = strtok_r(tsv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (++line_no <= 2) continue; /* comment, header */
        char *f[6];
        int nf = 0;
        for (char *p = line; nf < 6; nf++) {
            f[nf] = p;
            char *tab = strchr(p, '\t');
            if (!tab) {
                nf++;
                break;
            }
            *tab = '\0';
            p = tab + 1;
        }
        CHECK(nf == 6, "cases.tsv line %d: %d fields", line_no, nf);
        if (nf != 6) continue;
        const char *prompt = f[1];
        int want_n = atoi(f[2]);
        int32_t want15[SD_TOKENS], want21[SD_TOKENS], got[SD_TOKENS];
        CHECK(parse_ids(f[3], want15, SD_TOKENS) == SD_TOKENS, "case %s: sd15 ids", f[0]);
        CHECK(parse_ids(f[4], want21, SD_TOKENS) == SD_TOKENS, "case %s: sd21 ids", f[0]);
        sd_tokenizer *toks[2] = {t15, t21};
        const int32_t *wants[2] = {want15, want21};
        for (int m = 0; m < 2; m++) {
            int n_bpe = -1;
            CHECK_OK(sd_tokenizer_encode(toks[m], prompt, got, &n_bpe));
            int bad = -1;
            for (int i = 0; i < SD_TOKENS && bad < 0; i++)
                if (got[i] != wants[m][i]) bad = i;
            CHECK(bad < 0, "case %s (%s) \"%s\": id %d is %d, expected %d", f[0],
                  m ? "sd21" : "sd15", prompt, bad, bad < 0 ? 0 : got[bad],
                  bad < 0 ? 0 : wants[m][bad]);
            CHECK(n_bpe == want_n, "case %s: n_bpe %d, expected %d", f[0], n_bpe, want_n);
            int32_t again[SD_TOKENS];
            CHECK_OK(sd_tokenizer_encode(toks[m], prompt, again, NULL));
            CHECK(memcmp(again, got, sizeof got) == 0, "case %s: ids differ without n_bpe", f[0]);
        }
        /* The full BPE strings, also past truncation. */
        size_t total = 0;
        int32_t *all = malloc(1024 * sizeof *all);
        CHECK_OK(sd_tokenizer_bpe(t15, prompt, all, 1024, &total));
        char *tok_save = NULL;
        size_t k = 0;
        bool same = total == (size_t)want_n;
        for (char *w = strtok_r(f[5], " ", &tok_save); w && same; w = strtok_r(NULL, " ", &tok_save), k++)
            same = k < total && strcmp(w, sd_tokenizer_token(t15, all[k])) == 0;
        CHECK(same && k == total, "case %s: BPE strings differ at %zu", f[0], k);
        free(all);
        cases++;
    }
    /* README §2.1 says 45 prompts; the file holds ids 0..43. */
    CHECK(cases == 44, "cases.tsv: %d cases, expected 44", cases);
    free(tsv);
}

static void expect_ids(sd_tokenizer *t, const char *text, const int32_t *want, int n) {
    int32_t ids[SD_TOKENS];
    int n_bpe = -1;
    CHECK_OK(sd_tokenizer_encode(t, text, ids, &n_bpe));
    bool ok = n_bpe == n && ids[0] == 49406 && ids[n + 1] == 49407;
    for (int i = 0; i < n && ok; i++) ok = ids[i + 1] == want[i];
    CHECK(ok, "\"%s\": n_bpe %d, ids %d %d %d %d", text, n_bpe, ids[1], ids[2], ids[3], ids[4]);
}

static void expect_same(sd_tokenizer *t, const char *a, const char *b) {
    int32_t ia[SD_TOKENS], ib[SD_TOKENS];
    CHECK_OK(sd_tokenizer_encode(t, a, ia, NULL));
    CHECK_OK(sd_tokenizer_encode(t, b, ib, NULL));
    CHECK(memcmp(ia, ib, sizeof ia) == 0, "\"%s\" and \"%s\" should encode alike", a, b);
}

static void test_rules(sd_tokenizer *t15, sd_tokenizer *t21) {
    int32_t ids[SD_TOKENS];
    int n = -1;
    CHECK_OK(sd_tokenizer_encode(t15, "a photo of a cat", ids, &n));
    const int32_t known[7] = {49406, 320, 1125, 539, 320, 2368, 49407};
    CHECK(n == 5 && memcmp(ids, known, sizeof known) == 0, "known answer");
    bool pads = true;
    for (int i = 7; i < SD_TOKENS; i++) pads = pads && ids[i] == 49407;
    CHECK(pads, "sd15 pads with 49407");
    CHECK_OK(sd_tokenizer_encode(t21, "a photo of a cat", ids, &n));
    pads = memcmp(ids, known, sizeof known) == 0;
    for (int i = 7; i < SD_TOKENS; i++) pads = pads && ids[i] == 0;
    CHECK(pads, "sd21 pads with 0");

    /* "!" is ordinary text for SD2 too (open_clip), not HF's special id 0. */
    const int32_t bangs[3] = {256, 748, 995};
    expect_ids(t21, "! !! !!!", bangs, 3);
    expect_ids(t15, "! !! !!!", bangs, 3);
    /* Special tokens written in the prompt, any case. */
    const int32_t special[3] = {320, 49407, 321};
    expect_ids(t15, "a <|ENDOFTEXT|> b", special, 3);
    /* HTML entities (no '<' in the text), twice-escaped too; curly quotes; fullwidth. */
    expect_same(t15, "fish &amp; chips", "fish & chips");
    expect_same(t15, "fish &amp;amp; chips &#x41;&#66;", "fish & chips ab");
    expect_same(t15, "fish&nbsp;and&#32;chips", "fish and chips");
    expect_same(t15, "don\u2019t \u201cstop\u201d", "don't \"stop\"");
    expect_same(t15, "\uff23\uff21\uff34", "cat");
    expect_same(t15, "a\tb\n\r c\u3000\u00a0d\x01" "e", "a b c de");
    /* Non-ASCII lower-casing. */
    expect_same(t15, "\u00c9COLE \u00c0 PARIS", "\u00e9cole \u00e0 paris");
    expect_same(t15, "\u0141\u00d3D\u0179", "\u0142\u00f3d\u017a");
    expect_same(t15, "\u039f\u0394\u039f\u03a3 \u03a3\u0391", "\u03bf\u03b4\u03bf\u03c2 \u03c3\u03b1");
    expect_same(t15, "\u041f\u0420\u0418\u0412\u0415\u0422 \u0401\u0416", "\u043f\u0440\u0438\u0432\u0435\u0442 \u0451\u0436");
    expect_same(t15, "\u0130stanbul", "i\u0307stanbul");
    /* Digits split one by one, also non-ASCII ones; letters of other scripts stay words. */
    CHECK_OK(sd_tokenizer_encode(t15, "\u0661\u0662 \u732b\u306e", ids, &n));
    CHECK(n >= 3, "arabic digits and CJK: n_bpe %d", n);
}

static void test_hostile(sd_tokenizer *t15) {
    /* Invalid UTF-8: each bad byte is U+FFFD; never a crash, always 77 ids. */
    const char *bad[] = {"\xff\xfe cat \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82",
                         "\xc0\xaf\x80\x80\x80", "cat\xf0\x9f\x98"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t ids[SD_TOKENS];
        int n = -1;
        CHECK_OK(sd_tokenizer_encode(t15, bad[i], ids, &n));
        bool ok = ids[0] == 49406 && n > 0;
        for (int k = 0; k < SD_TOKENS; k++) ok = ok && ids[k] >= 0 && ids[k] < 49408;
        CHECK(ok, "invalid UTF-8 #%zu: n %d", i, n);
    }
    expect_same(t15, "\xff", "\xef\xbf\xbd");

    /* 2 MiB prompt: SD_ERR_LIMIT, ids untouched. */
    size_t big = 2u << 20;
    char *text = malloc(big + 1);
    for (size_t i = 0; i < big; i++) text[i] = (i % 7 == 6) ? ' ' : 'a' + (char)(i % 5);
    text[big] = '\0';
    int32_t ids[SD_TOKENS] = {0};
    ids[0] = -5;
    CHECK(sd_tokenizer_encode(t15, text, ids, NULL) == SD_ERR_LIMIT, "2 MiB prompt -> LIMIT");
    CHECK(ids[0] == -5, "ids untouched on error");
    /* 1 MiB prompt is accepted; with n_bpe the whole of it is counted. */
    text[1u << 20] = '\0';
    int n = 0;
    double t0 = now_ms();
    CHECK_OK(sd_tokenizer_encode(t15, text, ids, &n));
    double t1 = now_ms();
    CHECK(n > 100000 && ids[76] == 49407, "1 MiB prompt: n_bpe %d", n);
    /* One 1 MiB word: cut into 512-byte pieces, still O(n log n). */
    memset(text, 'q', 1u << 20);
    CHECK_OK(sd_tokenizer_encode(t15, text, ids, &n));
    double t2 = now_ms();
    CHECK(n > 2048, "1 MiB word: n_bpe %d", n);
    printf("1 MiB prompt: %.1f ms (words), %.1f ms (one word)\n", t1 - t0, t2 - t1);
    CHECK(t2 - t0 < 20000, "1 MiB prompts took %.0f ms", t2 - t0);
    /* A 512-byte word and a 513-byte one: the second is cut in two. */
    memset(text, 'x', 513);
    text[512] = '\0';
    int n512 = 0, n513 = 0;
    CHECK_OK(sd_tokenizer_encode(t15, text, ids, &n512));
    text[512] = 'x';
    text[513] = '\0';
    CHECK_OK(sd_tokenizer_encode(t15, text, ids, &n513));
    CHECK(n512 > 0 && n513 > n512, "512/513-byte words: %d %d", n512, n513);
    free(text);

    CHECK(sd_tokenizer_encode(NULL, "x", ids, NULL) == SD_ERR_ARG, "NULL tokenizer");
    CHECK(sd_tokenizer_encode(t15, NULL, ids, NULL) == SD_ERR_ARG, "NULL text");
}

/* A minimal valid vocab: the 512 byte symbols, "ab", "ab</w>" and the specials, as JSON. */
static char *tiny_vocab(const char *extra) {
    size_t cap = 64 * 1024, len = 0;
    char *s = malloc(cap);
    len += (size_t)snprintf(s + len, cap - len, "{");
    int id = 0, n_extra = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int b = 0; b < 256; b++) {
            bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
            unsigned cp = keep ? (unsigned)b : 256u + (unsigned)n_extra++;
            char u[8] = {0};
            if (cp < 0x80) u[0] = (char)cp;
            else u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F));
            const char *esc = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : u;
            len += (size_t)snprintf(s + len, cap - len, "\"%s%s\": %d, ", esc, pass ? "</w>" : "", id++);
        }
        n_extra = 0;
    }
    snprintf(s + len, cap - len, "\"ab\": %d, \"ab</w>\": %d, \"<|startoftext|>\": %d, "
             "\"<|endoftext|>\": %d%s}", id, id + 1, id + 2, id + 3, extra);
    return s;
}

static sd_status load_tiny(const char *vocab_extra, const char *merges, const char *pad) {
    char *v = tiny_vocab(vocab_extra);
    sd_tokenizer *t = NULL;
    sd_status st = sd_tokenizer_load_buffers(&t, v, strlen(v), merges, strlen(merges), pad);
    free(v);
    sd_tokenizer_free(t);
    return st;
}

static void expect_fail(sd_status got, sd_status want, const char *needle, const char *what) {
    CHECK(got == want && strstr(sd_last_error(), needle) != NULL, "%s: %s \"%s\" (want %s, \"%s\")",
          what, sd_status_name(got), sd_last_error(), sd_status_name(want), needle);
}

static void test_bad_files(const char *ref15) {
    CHECK_OK(load_tiny("", "#version: 0.2\na b\na b</w>\n\n", NULL));
    expect_fail(load_tiny(", \"x\": 1.5", "", NULL), SD_ERR_FORMAT, "not an integer", "1.5 id");
    expect_fail(load_tiny(", \"x\": 9999", "", NULL), SD_ERR_FORMAT, "outside", "id out of range");
    expect_fail(load_tiny(", \"x\": -1", "", NULL), SD_ERR_FORMAT, "outside", "negative id");
    expect_fail(load_tiny(", \"x\": \"7\"", "", NULL), SD_ERR_FORMAT, "not a number", "string id");
    expect_fail(load_tiny(", \"x\": 3", "", NULL), SD_ERR_FORMAT, "also used", "duplicate id");
    expect_fail(load_tiny(", \"ab\": 516", "", NULL), SD_ERR_FORMAT, "appears twice", "dup key");
    expect_fail(load_tiny(", ]", "", NULL), SD_ERR_FORMAT, "vocab.json: not valid JSON", "JSON");
    expect_fail(load_tiny("", "#version: 0.2\nab\n", NULL), SD_ERR_FORMAT, "merges.txt line 2",
                "merge without space");
    expect_fail(load_tiny("", "a  b\n", NULL), SD_ERR_FORMAT, "line 1", "two spaces");
    expect_fail(load_tiny("", "a b\nb a\n", NULL), SD_ERR_FORMAT, "merge result \"ba\"",
                "result not in vocab");
    expect_fail(load_tiny("", "#v\nzz a\n", NULL), SD_ERR_FORMAT, "symbol \"zz\"", "part");
    expect_fail(load_tiny("", "a b\n\na b\n", NULL), SD_ERR_FORMAT, "line 2: empty", "blank");
    expect_fail(load_tiny("", "", "<pad>"), SD_ERR_FORMAT, "<pad>", "pad missing");
    const char *arr = "[1, 2]";
    sd_tokenizer *t = NULL;
    expect_fail(sd_tokenizer_load_buffers(&t, arr, strlen(arr), "", 0, NULL), SD_ERR_FORMAT,
                "object", "array vocab");
    expect_fail(sd_tokenizer_load_buffers(&t, "{}", 2, "", 0, NULL), SD_ERR_FORMAT, "0 entries",
                "empty vocab");
    CHECK(t == NULL, "out untouched on failure");

    /* Folders: missing files, a malformed merges.txt, pad from the config files, huge files. */
    const char *d = scratch_dir("tok_no_vocab", ref15, false, true);
    expect_fail(sd_tokenizer_load(&t, d), SD_ERR_NOT_FOUND, "vocab.json", "missing vocab.json");
    d = scratch_dir("tok_no_merges", ref15, true, false);
    expect_fail(sd_tokenizer_load(&t, d), SD_ERR_NOT_FOUND, "merges.txt", "missing merges.txt");
    write_in(d, "merges.txt", "#version: 0.2\ni n\nt h\nthisline\n");
    expect_fail(sd_tokenizer_load(&t, d), SD_ERR_FORMAT, "merges.txt line 4", "bad merges.txt");
    write_in(d, "merges.txt", "#version: 0.2\ni n\r\nt h\r\n");
    write_in(d, "tokenizer_config.json", "{\"pad_token\": {\"content\": \"!\"}}");
    CHECK_OK(sd_tokenizer_load(&t, d));
    CHECK(sd_tokenizer_pad_id(t) == 0, "pad from object content");
    sd_tokenizer_free(t);
    t = NULL;
    write_in(d, "tokenizer_config.json", "{\"pad_token\": null}");
    write_in(d, "special_tokens_map.json", "{\"pad_token\": \"cat</w>\"}");
    CHECK_OK(sd_tokenizer_load(&t, d));
    CHECK(sd_tokenizer_pad_id(t) == 2368, "pad from special_tokens_map.json: %d",
          sd_tokenizer_pad_id(t));
    sd_tokenizer_free(t);
    t = NULL;
    write_in(d, "tokenizer_config.json", "{\"pad_token\": \"<nope>\"}");
    expect_fail(sd_tokenizer_load(&t, d), SD_ERR_FORMAT, "tokenizer_config.json: pad_token",
                "pad not in vocab");
    write_in(d, "tokenizer_config.json", "{\"pad_token\": 5}");
    expect_fail(sd_tokenizer_load(&t, d), SD_ERR_FORMAT, "must be a string", "pad number");
    write_in(d, "tokenizer_config.json", "{\"pad_token\": ");
    expect_fail(sd_tokenizer_load(&t, d), SD_ERR_FORMAT, "tokenizer_config.json", "config JSON");
    unlink(check_tmp("tok_no_merges/tokenizer_config.json"));
    unlink(check_tmp("tok_no_merges/special_tokens_map.json"));
    char path[2048];
    snprintf(path, sizeof path, "%s/merges.txt", d);
    CHECK(truncate(path, (65 << 20)) == 0, "truncate %s", path);
    expect_fail(sd_tokenizer_load(&t, d), SD_ERR_LIMIT, "merges.txt", "65 MiB merges.txt");
    unlink(path);
    CHECK(t == NULL, "out untouched on failure");
}

int main(void) {
    char ref15[1024], ref21[1024];
    snprintf(ref15, sizeof ref15, "%s", check_ref("models/tiny-sd15/tokenizer/vocab.json"));
    snprintf(ref21, sizeof ref21, "%s", check_ref("models/tiny-sd21/tokenizer/vocab.json"));
    *strrchr(ref15, '/') = '\0';
    *strrchr(ref21, '/') = '\0';
    sd_tokenizer *t15 = NULL, *t21 = NULL;
    double t0 = now_ms();
    CHECK_OK(sd_tokenizer_load(&t15, ref15));
    double t1 = now_ms();
    CHECK_OK(sd_tokenizer_load(&t21, ref21));
    printf("tokenizer load: %.1f ms\n", t1 - t0);
    if (!t15 || !t21) return check_finish();
    CHECK(t1 - t0 < 1000, "load took %.0f ms", t1 - t0);
    CHECK(sd_tokenizer_vocab_size(t15) == 49408, "vocab size %d", sd_tokenizer_vocab_size(t15));
    CHECK(sd_tokenizer_pad_id(t15) == 49407, "sd15 pad %d", sd_tokenizer_pad_id(t15));
    CHECK(sd_tokenizer_pad_id(t21) == 0, "sd21 pad %d", sd_tokenizer_pad_id(t21));
    CHECK(sd_tokenizer_bos_id(t15) == 49406 && sd_tokenizer_eos_id(t15) == 49407, "bos/eos");
    CHECK(sd_tokenizer_find(t15, "cat</w>") == 2368, "find cat</w>");
    CHECK(sd_tokenizer_token(t15, 49408) == NULL, "token out of range");

    test_golden(t15, t21);
    test_rules(t15, t21);
    test_hostile(t15);
    test_bad_files(ref15);
    sd_tokenizer_free(t15);
    sd_tokenizer_free(t21);
    sd_tokenizer_free(NULL);
    return check_finish();
}
