/* test_make_model.c — make-model's tensor lists are what real files hold: the loaders, run over a
 * recorder with the tiny models' configs, must ask for exactly the tensors (names and shapes) of
 * the tiny models' real files, so a made model loads by the same code as a downloaded one. A
 * file tensor nobody asks for is allowed only when loaders ignore it (position_ids). */
#include <stdio.h>
#include <string.h>

#include "base/safetensors.h"
#include "check.h"
#include "model/make_model.h"

static void check_component(const char *component, const char *config_rel, const char *weights_rel) {
    sd_config cfg;
    CHECK_OK(sd_config_load(&cfg, check_ref(config_rel)));
    sd_safetensors *rec = NULL, *file = NULL;
    CHECK_OK(sd_st_open_recorder(&rec, "recorder"));
    CHECK_OK(sd_make_model_record(component, &cfg, rec));
    CHECK_OK(sd_st_open(&file, check_ref(weights_rel)));
    if (!rec || !file) return;
    int missing = 0, wrong = 0, unasked = 0;
    for (int i = 0; i < rec->n_records; i++) {
        const sd_st_tensor *r = &rec->records[i], *t = sd_st_find(file, r->name);
        if (!t) {
            if (missing++ < 3) CHECK(false, "%s: recorded '%s' is not in %s", component, r->name, weights_rel);
            continue;
        }
        /* the exact shape: a file diffusers writes must be a file diffusers reads, so SD 1.x's 1x1
         * convolutions (proj_in/proj_out) are [C, C, 1, 1] there, not [C, C] */
        bool same = t->ndim == r->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == r->shape[d];
        if (!same && wrong++ < 3) {
            char want[64], got[64];
            sd_st_shape_str(want, sizeof want, t->ndim, t->shape);
            sd_st_shape_str(got, sizeof got, r->ndim, r->shape);
            CHECK(false, "%s: '%s' is %s in the real file, make-model writes %s", component, r->name, want, got);
        }
    }
    for (int i = 0; i < file->n_tensors; i++) {
        bool asked = false;
        for (int j = 0; j < rec->n_records && !asked; j++) asked = strcmp(rec->records[j].name, file->tensors[i].name) == 0;
        if (!asked && !strstr(file->tensors[i].name, "position_ids") && unasked++ < 3)
            CHECK(false, "%s: file tensor '%s' is never loaded", component, file->tensors[i].name);
    }
    CHECK(missing == 0 && wrong == 0 && unasked == 0, "%s: %d tensors recorded, %d in the file; %d missing, %d wrong, %d unasked",
          component, rec->n_records, file->n_tensors, missing, wrong, unasked);
    if (missing + wrong + unasked == 0) printf("%-12s %d tensors, names and shapes as in the real file\n", component, rec->n_records);
    sd_st_close(rec);
    sd_st_close(file);
    sd_config_free(&cfg);
}

/* make-model --lcm-lora: every key, dtype and shape of the real lcm-lora-sdv1-5 file (the list in
 * configs/lcm-lora-sdv1-5, whose implied size is the real file's), and nothing else. */
static void check_lcm_lora(void) {
    const char *dir = check_tmp("lcm-lora");
    char dir_copy[4096], path[4200];
    snprintf(dir_copy, sizeof dir_copy, "%s", dir);
    CHECK_OK(sd_make_random_lcm_lora("sd15", dir_copy, 1));
    snprintf(path, sizeof path, "%s/pytorch_lora_weights.safetensors", dir_copy);
    sd_safetensors *st = NULL;
    CHECK_OK(sd_st_open(&st, path));
    FILE *f = fopen(check_ref("configs/lcm-lora-sdv1-5/pytorch_lora_weights.keys.derived.tsv"), "r");
    CHECK(f != NULL, "key list missing");
    if (!st || !f) return;
    char line[1024];
    int listed = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char key[512], dtype[16], shape[128];
        if (sscanf(line, "%511[^\t]\t%15[^\t]\t%127[^\n]", key, dtype, shape) != 3) continue;
        listed++;
        const sd_st_tensor *t = sd_st_find(st, key);
        char got[128] = "";
        if (t) sd_st_shape_str(got, sizeof got, t->ndim, t->shape);
        /* the list writes shapes without spaces */
        char compact[128];
        size_t n = 0;
        for (const char *c = got; *c && n + 1 < sizeof compact; c++)
            if (*c != ' ') compact[n++] = *c;
        compact[n] = '\0';
        bool ok = t && strcmp(sd_dtype_name(t->dtype), dtype) == 0 && strcmp(compact, shape) == 0;
        if (!ok && bad++ < 3) CHECK(false, "LCM-LoRA key '%s' %s %s: made %s %s", key, dtype, shape,
                                    t ? sd_dtype_name(t->dtype) : "(absent)", compact);
    }
    fclose(f);
    CHECK(listed == 834 && bad == 0 && st->n_tensors == listed, "LCM-LoRA: %d keys listed, %d made, %d differ", listed,
          st->n_tensors, bad);
    printf("lcm-lora     %d tensors (278 modules), all matching the real file's list\n", st->n_tensors);
    sd_st_close(st);
}

int main(void) {
    check_lcm_lora();
    check_component("text_encoder", "models/tiny-sd15/text_encoder/config.json", "models/tiny-sd15/text_encoder/model.safetensors");
    check_component("unet", "models/tiny-sd15/unet/config.json", "models/tiny-sd15/unet/diffusion_pytorch_model.safetensors");
    check_component("unet", "models/tiny-sd21/unet/config.json", "models/tiny-sd21/unet/diffusion_pytorch_model.safetensors");
    check_component("vae", "models/tiny-sd15/vae/config.json", "models/tiny-sd15/vae/diffusion_pytorch_model.safetensors");
    check_component("taesd", "models/taesd/config.json", "models/taesd/diffusion_pytorch_model.safetensors");
    sd_safetensors *rec = NULL;
    sd_config cfg;
    CHECK_OK(sd_config_parse(&cfg, "{}", 2, "empty.json"));
    CHECK_OK(sd_st_open_recorder(&rec, "recorder"));
    CHECK(sd_make_model_record("bogus", &cfg, rec) == SD_ERR_ARG, "unknown component refused");
    CHECK(sd_make_random_model("sdxl", check_tmp("mm"), NULL, NULL, 0) == SD_ERR_UNSUPPORTED, "unknown arch refused: %s",
          sd_last_error());
    sd_st_close(rec);
    sd_config_free(&cfg);
    return check_finish();
}
