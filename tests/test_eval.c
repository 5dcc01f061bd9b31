/* test_eval.c — `sdstream eval` (sd_model_eval_file) for the image components against every VAE
 * and TAESD golden: the path a user takes to compare a model with diffusers tensor by tensor. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

static void compare(const char *golden, const char *out, const char *tensor, const char *label) {
    double rel = check_file_rel_error(golden, out, tensor), limit = check_tol(1e-4);
    CHECK(rel < limit, "%s %s: relative error %.3g (limit %g)", label, tensor, rel, limit);
    printf("%-40s %-12s relative error %.3g\n", label, tensor, rel);
}

/* Cases (SD_TEST_CASES): sd15-folder, sd15-single, taesd (the model each case loads). */
static void run(const char *model_rel, const char *config_rel, unsigned components, const char *component,
                const char *golden_name, const char *const *tensors, int n_tensors) {
    if (!check_case(config_rel ? "sd15-single" : components == SD_COMPONENT_TAESD ? "taesd" : "sd15-folder")) return;
    sd_model_params p = sd_model_params_default();
    p.path = check_ref(model_rel);
    char config[4096];
    if (config_rel) {
        snprintf(config, sizeof config, "%s", check_ref(config_rel));
        p.config_dir = config;
    }
    p.components = components;
    sd_model *m = NULL;
    CHECK_OK(sd_model_load(&m, &p));
    if (!m) return;
    char golden_rel[256], golden[4096], label[256];
    snprintf(golden_rel, sizeof golden_rel, "golden/vae/%s.safetensors", golden_name);
    snprintf(golden, sizeof golden, "%s", check_ref(golden_rel));
    snprintf(label, sizeof label, "%s %s", config_rel ? "single-file" : model_rel + 7, golden_name);
    const char *out = check_tmp("eval_image.safetensors");
    CHECK_OK(sd_model_eval_file(m, component, golden, out));
    for (int i = 0; i < n_tensors; i++) compare(golden, out, tensors[i], label);
    sd_model_free(m);
}

int main(void) {
    static const char *enc[] = {"latent_mean", "latent_std"}, *img[] = {"image"}, *lat[] = {"latents"};
    static const char *sizes[] = {"128x128", "64x96"};
    for (int s = 0; s < 2; s++) {
        char name[64];
        snprintf(name, sizeof name, "tiny-sd15_encode_%s", sizes[s]);
        run("models/tiny-sd15", NULL, SD_COMPONENT_VAE, "vae_encode", name, enc, 2);
        run("models/tiny-sd15.safetensors", "models/tiny-sd15", SD_COMPONENT_VAE, "vae_encode", name, enc, 2);
        snprintf(name, sizeof name, "tiny-sd15_decode_%s", sizes[s]);
        run("models/tiny-sd15", NULL, SD_COMPONENT_VAE, "vae_decode", name, img, 1);
        run("models/tiny-sd15.safetensors", "models/tiny-sd15", SD_COMPONENT_VAE, "vae_decode", name, img, 1);
        snprintf(name, sizeof name, "taesd_encode_%s", sizes[s]);
        run("models/taesd", NULL, SD_COMPONENT_TAESD, "taesd_encode", name, lat, 1);
        snprintf(name, sizeof name, "taesd_decode_%s", sizes[s]);
        run("models/taesd", NULL, SD_COMPONENT_TAESD, "taesd_decode", name, img, 1);
    }
    return check_finish();
}
