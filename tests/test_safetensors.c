/* test_safetensors.c — round trip through the writer and the reader, dtype conversions, reading
 * the reference files (F32 and F16), metadata, and sd_st_read_f32's shape checks. */
#include <math.h>
#include <string.h>

#include "base/dtype.h"
#include "base/safetensors.h"
#include "check.h"

static void test_round_trip(void) {
    float a[6] = {1, -2, 3.5f, 0, 1e-8f, -7};
    uint16_t h[3] = {sd_f32_to_f16(1.0f), sd_f32_to_f16(-0.5f), sd_f32_to_f16(65504.0f)};
    int64_t ids[2] = {49406, 49407};
    sd_st_entry entries[] = {
        {"b.weight", SD_DTYPE_F32, 2, {2, 3}, a},
        {"a.half", SD_DTYPE_F16, 1, {3}, h},
        {"ids", SD_DTYPE_I64, 2, {1, 2}, ids},
        {"empty", SD_DTYPE_F32, 1, {0}, NULL},
    };
    const char *keys[] = {"format"}, *vals[] = {"pt \"quoted\""};
    const char *path = check_tmp("roundtrip.safetensors");
    CHECK_OK(sd_st_write(path, entries, 4, keys, vals, 1));
    sd_safetensors *st = NULL;
    CHECK_OK(sd_st_open(&st, path));
    if (!st) return;
    CHECK(st->n_tensors == 4, "4 tensors, got %d", st->n_tensors);
    CHECK(st->data_size == 24 + 6 + 16, "data size %zu", st->data_size);
    const char *fmt = sd_st_metadata(st, "format");
    CHECK(fmt && strcmp(fmt, "pt \"quoted\"") == 0, "metadata survives escaping");
    float back[6];
    CHECK_OK(sd_st_read_f32(st, "b.weight", back, 2, (int64_t[]){2, 3}));
    CHECK(memcmp(back, a, sizeof a) == 0, "f32 data round trip");
    float hb[3];
    CHECK_OK(sd_st_read_f32(st, "a.half", hb, 1, (int64_t[]){3}));
    CHECK(hb[0] == 1.0f && hb[1] == -0.5f && hb[2] == 65504.0f, "f16 data converts");
    CHECK(sd_st_read_f32(st, "b.weight", back, 2, (int64_t[]){3, 2}) == SD_ERR_FORMAT, "wrong shape refused");
    CHECK(strstr(sd_last_error(), "expected shape [3, 2], found [2, 3]") != NULL, "message: %s", sd_last_error());
    CHECK(sd_st_read_f32(st, "ids", back, 2, (int64_t[]){1, 2}) == SD_ERR_FORMAT, "integer tensor refused as float");
    CHECK(sd_st_read_f32(st, "nope", back, 1, (int64_t[]){1}) == SD_ERR_NOT_FOUND, "missing tensor");
    const sd_st_tensor *t = sd_st_find(st, "ids");
    CHECK(t && t->dtype == SD_DTYPE_I64 && t->numel == 2, "i64 tensor found");
    sd_st_close(st);
}

static void test_conversions(void) {
    /* every f16 bit pattern survives f16 -> f32 -> f16 (NaNs stay NaN) */
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        float f = sd_f16_to_f32((uint16_t)i);
        uint16_t back = sd_f32_to_f16(f);
        if (isnan(f) ? !isnan(sd_f16_to_f32(back)) : back != i) bad++;
    }
    CHECK(bad == 0, "f16 round trip: %d patterns differ", bad);
    CHECK(sd_f32_to_f16(1.0f + 1.0f / 4096) == 0x3c00, "f16 rounds half to even (down)");
    CHECK(sd_f32_to_f16(1.0f + 6.0f / 4096) == 0x3c02, "f16 rounds half to even (up)");
    CHECK(sd_f32_to_f16(1e6f) == 0x7c00, "f16 overflow is inf");
    CHECK(sd_f32_to_f16(6e-8f) == 0x0001, "f16 smallest subnormal");
    CHECK(sd_bf16_to_f32(sd_f32_to_bf16(3.140625f)) == 3.140625f, "bf16 exact value");
    CHECK(sd_f32_to_bf16(1.0f + 1.0f / 256) == 0x3f80, "bf16 rounds half to even");
    CHECK(isnan(sd_bf16_to_f32(sd_f32_to_bf16(NAN))), "bf16 keeps NaN");
}

static void test_reference_files(void) {
    sd_safetensors *st = NULL;
    CHECK_OK(sd_st_open(&st, check_ref("models/tiny-sd21.safetensors")));
    if (st) {
        CHECK(st->n_tensors == 956, "tiny-sd21 single file has 956 tensors, got %d", st->n_tensors);
        const sd_st_tensor *t = sd_st_find(st, "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight");
        CHECK(t && t->dtype == SD_DTYPE_F16 && t->shape[0] == 96 && t->shape[1] == 32, "in_proj_weight F16 [96, 32]");
        sd_st_close(st);
    }
    CHECK_OK(sd_st_open(&st, check_ref("models/tiny-sd15/text_encoder/model.safetensors")));
    if (st) {
        const sd_st_tensor *t = sd_st_find(st, "text_model.embeddings.position_ids");
        CHECK(t && t->dtype == SD_DTYPE_I64, "position_ids is I64 (and ignored by the loader)");
        sd_st_close(st);
    }
}

int main(void) {
    test_round_trip();
    test_conversions();
    test_reference_files();
    return check_finish();
}
