/* test_stream.c — StreamDiffusion end to end against every golden stream case (shared/reference
 * README §2.6): stream batch and sequential, every cfg_type, txt2img and sd-turbo txt2img, the KL
 * VAE, two frames per call, the similarity filter; and the six SDXL cases (§2.8: each UNet row with
 * its prompt's pooled embedding and time_ids). The parameters come from each golden's
 * metadata; the stream draws its own noise from the same seeds (prepare 2, global 1234, filter
 * 4321), so matching also proves the noise is torch's. Every call's output must match within 1e-3
 * relative error (check_tol: 1e-2 on an fp16 backend), and the filter's decisions exactly. Cases: the
 * golden files' names (argv[1] or SD_TEST_CASES choose). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/image.h"
#include "base/safetensors.h"
#include "check.h"

static const char *meta(const sd_safetensors *g, const char *key) {
    const char *v = sd_st_metadata(g, key);
    CHECK(v != NULL, "%s: metadata '%s' present", g->path, key);
    return v ? v : "null";
}

static double meta_num(const sd_safetensors *g, const char *key) { return atof(meta(g, key)); }

static void run_case(const char *dir, const char *name) {
    char rel[256], path[4096];
    snprintf(rel, sizeof rel, "golden/%s/%s.safetensors", dir, name);
    snprintf(path, sizeof path, "%s", check_ref(rel));
    sd_safetensors *g = NULL;
    CHECK_OK(sd_st_open(&g, path));
    if (!g) return;
    const char *mode = meta(g, "mode");
    bool taesd = strncmp(meta(g, "vae"), "models/taesd", 12) == 0;

    sd_model_params mp = sd_model_params_default();
    char model_rel[256], model_path[4096], taesd_path[4096];
    snprintf(model_rel, sizeof model_rel, "%s", meta(g, "model"));
    snprintf(model_path, sizeof model_path, "%s", check_ref(model_rel));
    snprintf(taesd_path, sizeof taesd_path, "%s", check_ref("models/taesd"));
    mp.path = model_path;
    mp.taesd_path = taesd ? taesd_path : NULL;
    sd_model *model = NULL;
    CHECK_OK(sd_model_load(&model, &mp));

    sd_stream_params sp = sd_stream_params_default();
    sp.width = (int)meta_num(g, "width");
    sp.height = (int)meta_num(g, "height");
    cJSON *list = cJSON_Parse(meta(g, "t_index_list"));
    sp.n_t_index = cJSON_GetArraySize(list);
    for (int i = 0; i < sp.n_t_index; i++) sp.t_index_list[i] = cJSON_GetArrayItem(list, i)->valueint;
    cJSON_Delete(list);
    const char *cfg = meta(g, "cfg_type");
    sp.cfg_type = strcmp(cfg, "full") == 0 ? SD_CFG_FULL
                  : strcmp(cfg, "self") == 0 ? SD_CFG_SELF
                  : strcmp(cfg, "initialize") == 0 ? SD_CFG_INITIALIZE : SD_CFG_NONE;
    sp.guidance_scale = (float)meta_num(g, "guidance_scale");
    sp.delta = (float)meta_num(g, "delta");
    sp.use_denoising_batch = strcmp(meta(g, "use_denoising_batch"), "true") == 0;
    sp.do_add_noise = strcmp(meta(g, "do_add_noise"), "true") == 0;
    sp.frame_buffer_size = (int)meta_num(g, "frame_buffer_size");
    sp.num_inference_steps = (int)meta_num(g, "num_inference_steps");
    sp.seed = (uint64_t)meta_num(g, "prepare_seed");
    sp.frame_seed = (uint64_t)meta_num(g, "global_seed");
    sp.use_taesd = taesd;
    sp.turbo = strcmp(mode, "txt2img_sd_turbo") == 0;
    cJSON *filter = cJSON_Parse(meta(g, "similar_image_filter"));
    if (cJSON_IsObject(filter)) {
        sp.similar_filter_threshold = (float)cJSON_GetObjectItem(filter, "threshold")->valuedouble;
        sp.similar_filter_max_skip = cJSON_GetObjectItem(filter, "max_skip_frame")->valueint;
        sp.filter_seed = (uint64_t)cJSON_GetObjectItem(filter, "python_random_seed")->valuedouble;
    }
    cJSON_Delete(filter);

    sd_stream *s = NULL;
    if (model) CHECK_OK(sd_stream_create(&s, model, &sp));
    if (s) CHECK_OK(sd_stream_set_prompt(s, meta(g, "prompt"), meta(g, "negative_prompt")));
    int calls = (int)meta_num(g, "n_calls");
    int fb = sp.frame_buffer_size;
    size_t frame = 3 * (size_t)sp.width * (size_t)sp.height;
    float *in = malloc(fb * frame * sizeof *in), *out = malloc(fb * frame * sizeof *out), *ref = malloc(fb * frame * sizeof *ref);
    double worst = 0.0;
    for (int k = 0; s && k < calls; k++) {
        char key[64];
        int skipped = 0;
        sd_status st;
        if (strcmp(mode, "img2img") == 0) {
            snprintf(key, sizeof key, "call%d.input_u8", k);
            const sd_st_tensor *t = sd_st_find(g, key);
            CHECK(t && t->dtype == SD_DTYPE_U8 && (size_t)t->numel == fb * frame, "%s %s is U8 [fb, H, W, 3]", name, key);
            if (!t) break;
            for (int f = 0; f < fb; f++) {
                sd_image img = {sp.width, sp.height, (uint8_t *)sd_st_data(g, t) + f * frame};
                sd_image_to_chw(in + f * frame, &img);
            }
            st = sd_stream_img2img_f32(s, in, out, &skipped);
        } else {
            st = sd_stream_txt2img_f32(s, out);
        }
        CHECK(st == SD_OK, "%s call %d: %s", name, k, sd_last_error());
        snprintf(key, sizeof key, "call%d.skipped", k);
        const sd_st_tensor *sk = sd_st_find(g, key);
        int64_t want_skip = 0;
        if (sk) memcpy(&want_skip, sd_st_data(g, sk), 8);
        CHECK(sk && skipped == (int)want_skip, "%s call %d: skipped %d, upstream %lld", name, k, skipped, (long long)want_skip);
        snprintf(key, sizeof key, "call%d.output", k);
        const sd_st_tensor *o = sd_st_find(g, key);
        CHECK(o && (size_t)o->numel == fb * frame, "%s %s has %d frames", name, key, fb);
        if (!o || (size_t)o->numel != fb * frame) continue;
        CHECK_OK(sd_st_read_f32(g, key, ref, o->ndim, o->shape));
        double e = check_rel_error(out, ref, fb * frame);
        if (e > worst) worst = e;
        CHECK(e < check_tol(1e-3), "%s call %d output: relative error %.3g (limit %g)", name, k, e, check_tol(1e-3));
    }
    printf("%-40s %d calls, worst output relative error %.3g\n", name, calls, worst);
    free(in), free(out), free(ref);
    sd_stream_free(s);
    sd_model_free(model);
    sd_st_close(g);
}

int main(int argc, char **argv) {
    static const char *cases[] = {
        "sd15_i2i_none_batch",         "sd15_i2i_self_batch_d0.5",      "sd15_i2i_initialize_batch_d1.0",
        "sd15_i2i_full_batch",         "sd15_i2i_none_nobatch",         "sd15_i2i_self_nobatch_d0.5",
        "sd15_i2i_none_batch_vaekl",   "sd15_i2i_self_batch_fb2_t32",   "sd15_t2i_none_batch_t4",
        "sd15_i2i_none_batch_filter",  "sd15_i2i_none_batch_filter_maxskip2", "sd21_i2i_none_batch",
        "sd21_i2i_self_batch_d0.5",    "sd21_t2i_none_batch_t4",        "sd21_t2i_sd_turbo_t0",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if ((argc < 2 || strcmp(argv[1], cases[i]) == 0) && check_case(cases[i])) run_case("stream", cases[i]);
    static const char *sdxl_cases[] = {
        "tiny-sdxl_i2i_none_t35",        "tiny-sdxl_i2i_self_t20_40_d0.8", "tiny-sdxl_i2i_initialize_t30_45",
        "tiny-sdxl_i2i_full_t32",        "tiny-sdxl_t2i_none_t0",          "tiny-sdxl_i2i_none_t35_vaekl",
    };
    for (size_t i = 0; i < sizeof sdxl_cases / sizeof sdxl_cases[0]; i++)
        if ((argc < 2 || strcmp(argv[1], sdxl_cases[i]) == 0) && check_case(sdxl_cases[i])) run_case("sdxl/stream", sdxl_cases[i]);
    return check_finish();
}
