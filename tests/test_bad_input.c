/* test_bad_input.c — hostile and corrupted files: each one gets its own clear error (status and a
 * message naming the file and the tensor or key), nothing aborts, and the process carries on to
 * the next case. Fixtures are written to the test scratch folder; model folders are built from
 * the reference model with one thing broken each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/safetensors.h"
#include "check.h"

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write fixture %s", path);
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

/* A safetensors file: 8-byte length (or `forced_len` when nonzero), header text, data_len zeros. */
static void write_st(const char *path, const char *header, size_t data_len, uint64_t forced_len) {
    size_t hl = strlen(header);
    uint64_t len = forced_len ? forced_len : hl;
    size_t total = 8 + hl + data_len;
    unsigned char *buf = calloc(1, total);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, header, hl);
    write_bytes(path, buf, total);
    free(buf);
}

static bool contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }

/* Opens path as safetensors; checks the status and that the message holds each needle. */
static void expect_st(const char *name, sd_status want, const char *needle) {
    const char *path = check_tmp(name);
    sd_safetensors *st = NULL;
    sd_status got = sd_st_open(&st, path);
    CHECK(got == want, "%s: expected %s, got %s (%s)", name, sd_status_name(want), sd_status_name(got), sd_last_error());
    CHECK(st == NULL || got == SD_OK, "%s: handle left untouched on failure", name);
    CHECK(got == SD_OK || contains(sd_last_error(), name), "%s: message names the file: %s", name, sd_last_error());
    CHECK(!needle || contains(sd_last_error(), needle), "%s: message mentions '%s': %s", name, needle, sd_last_error());
    sd_st_close(st);
}

static void safetensors_cases(void) {
    write_bytes(check_tmp("empty.safetensors"), "", 0);
    expect_st("empty.safetensors", SD_ERR_FORMAT, "empty");
    write_bytes(check_tmp("short.safetensors"), "\x05\0\0\0\0", 5);
    expect_st("short.safetensors", SD_ERR_FORMAT, "too short");
    write_st(check_tmp("hugelen.safetensors"), "{}", 0, UINT64_C(1) << 60);
    expect_st("hugelen.safetensors", SD_ERR_LIMIT, "header length");
    write_st(check_tmp("pastend.safetensors"), "{}", 0, 4096);
    expect_st("pastend.safetensors", SD_ERR_FORMAT, "past the end");
    write_st(check_tmp("notjson.safetensors"), "{\"a\": [1, 2,", 0, 0);
    expect_st("notjson.safetensors", SD_ERR_FORMAT, "not valid JSON");
    write_st(check_tmp("array.safetensors"), "[1, 2, 3]", 0, 0);
    expect_st("array.safetensors", SD_ERR_FORMAT, "not an object");
    write_st(check_tmp("dtype.safetensors"), "{\"w\":{\"dtype\":\"F8_E9\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, 0);
    expect_st("dtype.safetensors", SD_ERR_UNSUPPORTED, "'w'");
    write_st(check_tmp("negshape.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, 0);
    expect_st("negshape.safetensors", SD_ERR_FORMAT, "shape[0]");
    write_st(check_tmp("noshape.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, 0);
    expect_st("noshape.safetensors", SD_ERR_FORMAT, "shape");
    write_st(check_tmp("truncated.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0);
    expect_st("truncated.safetensors", SD_ERR_FORMAT, "truncated");
    write_st(check_tmp("reversed.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, 0);
    expect_st("reversed.safetensors", SD_ERR_FORMAT, "begin");
    write_st(check_tmp("size.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0);
    expect_st("size.safetensors", SD_ERR_FORMAT, "[3]");
    write_st(check_tmp("overlap.safetensors"),
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             12, 0);
    expect_st("overlap.safetensors", SD_ERR_FORMAT, "overlap");
    write_st(check_tmp("dup.safetensors"),
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             8, 0);
    expect_st("dup.safetensors", SD_ERR_FORMAT, "twice");
    write_st(check_tmp("meta.safetensors"), "{\"__metadata__\":{\"k\":3}}", 0, 0);
    expect_st("meta.safetensors", SD_ERR_FORMAT, "__metadata__");
    write_st(check_tmp("trailing.safetensors"), "{}   xyz", 0, 0);
    expect_st("trailing.safetensors", SD_ERR_FORMAT, "trailing");
    write_st(check_tmp("overflow.safetensors"),
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 0, 0);
    expect_st("overflow.safetensors", SD_ERR_FORMAT, "'w'");
    write_st(check_tmp("dims.safetensors"), "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, 0);
    expect_st("dims.safetensors", SD_ERR_UNSUPPORTED, "dimensions");
    write_st(check_tmp("fraction.safetensors"), "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1.5]}}", 2, 0);
    expect_st("fraction.safetensors", SD_ERR_FORMAT, "data_offsets");
    write_st(check_tmp("ok.safetensors"), "{\"__metadata__\":{\"k\":\"v\"},\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}   ", 4, 0);
    expect_st("ok.safetensors", SD_OK, NULL);
}

/* ---- model folders ---- */

static char g_ref_model[4096];

/* Builds a copy of tiny-sd15 (symlinks to the weights, copied configs) at tmp/<name>. */
static const char *make_model_copy(const char *name) {
    static char root[4096];
    snprintf(root, sizeof root, "%s", check_tmp(name));
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s' && mkdir -p '%s' && cd '%s' && for d in unet vae text_encoder tokenizer scheduler; do "
             "mkdir $d && for f in '%s'/$d/*; do case $f in *.json|*.txt) cp \"$f\" $d/ ;; *) ln -s \"$f\" $d/ ;; esac; "
             "done; done && cp '%s'/model_index.json .",
             root, root, root, g_ref_model, g_ref_model);
    CHECK(system(cmd) == 0, "building fixture %s", root);
    return root;
}

static void expect_load(const char *label, const char *path, const char *tokenizer, sd_status want, const char *n1,
                        const char *n2) {
    sd_model_params p = sd_model_params_default();
    p.path = path;
    p.tokenizer_dir = tokenizer;
    p.components = SD_COMPONENT_TEXT_ENCODER;
    sd_model *m = NULL;
    sd_status got = sd_model_load(&m, &p);
    CHECK(got == want, "%s: expected %s, got %s (%s)", label, sd_status_name(want), sd_status_name(got), sd_last_error());
    CHECK(want == SD_OK || m == NULL, "%s: no model on failure", label);
    CHECK(!n1 || contains(sd_last_error(), n1), "%s: message mentions '%s': %s", label, n1, sd_last_error());
    CHECK(!n2 || contains(sd_last_error(), n2), "%s: message mentions '%s': %s", label, n2, sd_last_error());
    sd_model_free(m);
}

static void replace_in_file(const char *path, const char *from, const char *to) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "sed -i 's|%s|%s|' '%s'", from, to, path);
    CHECK(system(cmd) == 0, "editing %s", path);
}

static void model_cases(void) {
    char path[4096], root[4096];
    snprintf(g_ref_model, sizeof g_ref_model, "%s", check_ref("models/tiny-sd15"));

    snprintf(root, sizeof root, "%s", make_model_copy("m_ok"));
    expect_load("control: intact copy loads", root, NULL, SD_OK, NULL, NULL);
    sd_model_params p = sd_model_params_default();
    p.path = root;
    p.components = SD_COMPONENT_TEXT_ENCODER;
    sd_model *m = NULL;
    CHECK_OK(sd_model_load(&m, &p));
    sd_model_free(m);

    snprintf(root, sizeof root, "%s", make_model_copy("m_badjson"));
    snprintf(path, sizeof path, "%s/text_encoder/config.json", root);
    write_text(path, "{\"hidden_size\": 32,");
    expect_load("broken config JSON", root, NULL, SD_ERR_FORMAT, "text_encoder/config.json", "JSON");

    snprintf(root, sizeof root, "%s", make_model_copy("m_act"));
    snprintf(path, sizeof path, "%s/text_encoder/config.json", root);
    replace_in_file(path, "\"quick_gelu\"", "\"relu\"");
    expect_load("unknown activation", root, NULL, SD_ERR_UNSUPPORTED, "hidden_act", "relu");

    snprintf(root, sizeof root, "%s", make_model_copy("m_layers"));
    snprintf(path, sizeof path, "%s/text_encoder/config.json", root);
    replace_in_file(path, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": -1");
    expect_load("negative layer count", root, NULL, SD_ERR_FORMAT, "num_hidden_layers", NULL);

    snprintf(root, sizeof root, "%s", make_model_copy("m_width"));
    snprintf(path, sizeof path, "%s/text_encoder/config.json", root);
    replace_in_file(path, "\"hidden_size\": 32", "\"hidden_size\": 64");
    expect_load("config width disagrees with weights", root, NULL, SD_ERR_FORMAT, "token_embedding", "expected shape [49408, 64]");

    snprintf(root, sizeof root, "%s", make_model_copy("m_depth"));
    snprintf(path, sizeof path, "%s/text_encoder/config.json", root);
    replace_in_file(path, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    expect_load("missing layer weights", root, NULL, SD_ERR_NOT_FOUND, "layers.2", "model.safetensors");

    snprintf(root, sizeof root, "%s", make_model_copy("m_noindex"));
    snprintf(path, sizeof path, "%s/model_index.json", root);
    unlink(path);
    expect_load("no model_index.json", root, NULL, SD_ERR_NOT_FOUND, "model_index.json", NULL);

    snprintf(root, sizeof root, "%s", make_model_copy("m_sdxl"));
    snprintf(path, sizeof path, "%s/model_index.json", root);
    replace_in_file(path, "\"StableDiffusionPipeline\"", "\"StableDiffusionXLPipeline\"");
    /* an XL class without text_encoder_2 (a refiner's layout): SDXL base/turbo need both encoders */
    expect_load("SDXL pipeline without text_encoder_2", root, NULL, SD_ERR_UNSUPPORTED, "text_encoder_2", "model_index.json");

    snprintf(root, sizeof root, "%s", make_model_copy("m_novocab"));
    snprintf(path, sizeof path, "%s/tokenizer/vocab.json", root);
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer", root);
    expect_load("tokenizer folder without vocab.json", root, path, SD_ERR_NOT_FOUND, "vocab.json", NULL);

    snprintf(root, sizeof root, "%s", make_model_copy("m_bin"));
    snprintf(path, sizeof path, "%s/text_encoder/model.safetensors", root);
    unlink(path);
    snprintf(path, sizeof path, "%s/text_encoder/model.bin", root);
    write_text(path, "pickle");
    expect_load("pickle-only weights", root, NULL, SD_ERR_UNSUPPORTED, "model.bin", NULL);

    /* weights with an integer dtype where floats belong */
    snprintf(root, sizeof root, "%s", make_model_copy("m_dtype"));
    snprintf(path, sizeof path, "%s/text_encoder/model.safetensors", root);
    unlink(path);
    write_st(path, "{\"text_model.embeddings.token_embedding.weight\":{\"dtype\":\"I32\",\"shape\":[49408,32],"
                   "\"data_offsets\":[0,6324224]}}", 6324224, 0);
    expect_load("integer weights", root, NULL, SD_ERR_FORMAT, "token_embedding", "I32");

    /* single files */
    snprintf(path, sizeof path, "%s", check_tmp("model.ckpt"));
    write_text(path, "pickle");
    expect_load("a .ckpt pickle", path, NULL, SD_ERR_UNSUPPORTED, "model.ckpt", ".safetensors");
    expect_load("unknown single file", check_tmp("ok.safetensors"), NULL, SD_ERR_UNSUPPORTED, "ok.safetensors",
                "model.diffusion_model.");
    setenv("HF_HUB_CACHE", check_tmp("empty-hf-cache"), 1);
    expect_load("single file without tokenizer", check_ref("models/tiny-sd15.safetensors"), NULL, SD_ERR_NOT_FOUND,
                "--tokenizer", "runwayml/stable-diffusion-v1-5");
    expect_load("missing path", check_tmp("does-not-exist"), NULL, SD_ERR_NOT_FOUND, "does-not-exist", NULL);
    expect_load("TAESD passed as the model", check_ref("models/taesd"), NULL, SD_ERR_UNSUPPORTED, "--taesd", NULL);
}

static void eval_cases(void) {
    sd_model_params p = sd_model_params_default();
    p.path = check_ref("models/tiny-sd15");
    p.components = SD_COMPONENT_TEXT_ENCODER;
    sd_model *m = NULL;
    CHECK_OK(sd_model_load(&m, &p));
    if (!m) return;
    const char *out = check_tmp("eval_out.safetensors");
    write_st(check_tmp("noids.safetensors"), "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0);
    sd_status st = sd_model_eval_file(m, "text_encoder", check_tmp("noids.safetensors"), out);
    CHECK(st == SD_ERR_NOT_FOUND && contains(sd_last_error(), "input_ids"), "eval without input_ids: %s", sd_last_error());
    /* an id of 2^31 - 1 is outside the vocabulary */
    unsigned char ids[8 * 77] = {0};
    ids[0] = 0xff, ids[1] = 0xff, ids[2] = 0xff, ids[3] = 0x7f;
    sd_st_entry e = {"input_ids", SD_DTYPE_I64, 2, {1, 77}, ids};
    CHECK_OK(sd_st_write(check_tmp("badids.safetensors"), &e, 1, NULL, NULL, 0));
    st = sd_model_eval_file(m, "text_encoder", check_tmp("badids.safetensors"), out);
    CHECK(st == SD_ERR_FORMAT && contains(sd_last_error(), "vocabulary"), "eval with an id outside the vocabulary: %s", sd_last_error());
    e.shape[1] = 76;
    CHECK_OK(sd_st_write(check_tmp("shortids.safetensors"), &e, 1, NULL, NULL, 0));
    st = sd_model_eval_file(m, "text_encoder", check_tmp("shortids.safetensors"), out);
    CHECK(st == SD_ERR_FORMAT && contains(sd_last_error(), "[1, 76]"), "eval with 76 ids: %s", sd_last_error());
    st = sd_model_eval_file(m, "bogus", check_tmp("shortids.safetensors"), out);
    CHECK(st == SD_ERR_ARG && contains(sd_last_error(), "bogus"), "unknown component: %s", sd_last_error());
    CHECK(sd_model_tokenize(NULL, "x", (int32_t[77]){0}) == SD_ERR_ARG, "NULL model is an argument error");
    sd_model_free(m);
    CHECK(sd_model_load(NULL, &p) == SD_ERR_ARG, "NULL out is an argument error");
}

/* Images that broke Debian's stb_image JPEG decoder under fuzzing (TESTING.md) and unknown bytes. */
static void image_cases(void) {
    static const unsigned char huffman[] = {0xff, 0xd8, 0xff, 0xc4, 0x00, 0x13, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
                                            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xd9};
    const char *path = check_tmp("huffman.jpg");
    write_bytes(path, huffman, sizeof huffman);
    sd_image img = {0};
    sd_status st = sd_image_load(&img, path);
    CHECK(st == SD_ERR_FORMAT && contains(sd_last_error(), "huffman.jpg") && contains(sd_last_error(), "JPEG"),
          "JPEG with a 65535-code Huffman table: %s", sd_last_error());
    CHECK(img.pixels == NULL, "no image on failure");
    write_text(check_tmp("gif.gif"), "GIF89a\x01\x00\x01\x00");
    st = sd_image_load(&img, check_tmp("gif.gif"));
    CHECK(st == SD_ERR_FORMAT && contains(sd_last_error(), "PNG, JPEG or BMP"), "a GIF is refused by its magic: %s", sd_last_error());
    /* 51 bytes claiming a 4099 x 14336 BMP: the image fuzzer's decompression bomb */
    static const unsigned char bomb[] = {0x42, 0x4d, 0x4e, 0, 0, 0, 0, 0, 0, 0, 0x33, 0, 0, 0, 0x28, 0, 0, 0, 0x03, 0x10,
                                         0, 0, 0, 0x38, 0, 0, 0x01, 0, 0x10, 0, 0, 0, 0, 0, 0x18, 0, 0, 0, 0, 0x78,
                                         0x24, 0xc8, 0x50, 0x78, 0xc8, 0xa0, 0x78, 0xc8, 0, 0, 0};
    write_bytes(check_tmp("bomb.bmp"), bomb, sizeof bomb);
    st = sd_image_load(&img, check_tmp("bomb.bmp"));
    CHECK(st == SD_ERR_FORMAT && contains(sd_last_error(), "truncated"), "BMP claiming 58 Mpixels in 51 bytes: %s",
          sd_last_error());
    st = sd_image_load(&img, check_tmp("no-such-image.png"));
    CHECK(st == SD_ERR_IO && contains(sd_last_error(), "no-such-image.png"), "missing image names it: %s", sd_last_error());
}

int main(void) {
    image_cases();
    safetensors_cases();
    model_cases();
    eval_cases();
    return check_finish();
}
