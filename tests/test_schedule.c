/* test_schedule.c — the LCM schedule against the scheduler goldens of both tiny models (the LCM
 * config, and sd-turbo's Euler config read the way LCMScheduler.from_config reads it): betas,
 * alphas_cumprod, the 50 timesteps, and each t_index_list's constants; plus config refusals. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/safetensors.h"
#include "check.h"
#include "stream/schedule.h"

static void check_model(const char *model) {
    char cfg_rel[256], golden_rel[256];
    snprintf(cfg_rel, sizeof cfg_rel, "models/%s/scheduler/scheduler_config.json", model);
    snprintf(golden_rel, sizeof golden_rel, "golden/scheduler/%s.safetensors", model);
    sd_config json;
    CHECK_OK(sd_config_load(&json, check_ref(cfg_rel)));
    static sd_schedule s;
    CHECK_OK(sd_schedule_from_config(&s, &json));
    sd_config_free(&json);
    sd_safetensors *g = NULL;
    CHECK_OK(sd_st_open(&g, check_ref(golden_rel)));
    if (!g) return;
    static float ref[1000];
    CHECK_OK(sd_st_read_f32(g, "betas", ref, 1, (int64_t[]){1000}));
    CHECK(check_max_abs_diff(s.betas, ref, 1000) == 0.0, "%s betas: max diff %g", model, check_max_abs_diff(s.betas, ref, 1000));
    CHECK_OK(sd_st_read_f32(g, "alphas_cumprod", ref, 1, (int64_t[]){1000}));
    double rel = check_rel_error(s.alphas_cumprod, ref, 1000);
    CHECK(rel < 1e-6, "%s alphas_cumprod: rel %g", model, rel);
    int64_t ts[50];
    CHECK_OK(sd_schedule_timesteps(&s, 50, ts));
    const sd_st_tensor *t = sd_st_find(g, "timesteps_50");
    CHECK(t && memcmp(sd_st_data(g, t), ts, sizeof ts) == 0, "%s: the 50 timesteps match", model);

    static const struct {
        const char *name;
        int list[4], n;
    } lists[] = {{"t0_16_32_45", {0, 16, 32, 45}, 4}, {"t32_45", {32, 45}, 2}, {"t0", {0}, 1}};
    for (int i = 0; i < 3; i++) {
        sd_step_constants c;
        CHECK_OK(sd_schedule_constants(&s, 50, lists[i].list, lists[i].n, &c));
        char name[128];
        snprintf(name, sizeof name, "%s.sub_timesteps", lists[i].name);
        t = sd_st_find(g, name);
        CHECK(t && memcmp(sd_st_data(g, t), c.timesteps, (size_t)lists[i].n * 8) == 0, "%s %s", model, name);
        static const char *fields[] = {"alpha_prod_t_sqrt", "beta_prod_t_sqrt", "c_skip", "c_out"};
        const float *mine[] = {c.alpha_sqrt, c.beta_sqrt, c.c_skip, c.c_out};
        for (int f = 0; f < 4; f++) {
            float want[4];
            snprintf(name, sizeof name, "%s.%s", lists[i].name, fields[f]);
            CHECK_OK(sd_st_read_f32(g, name, want, 1, (int64_t[]){lists[i].n}));
            double r = check_rel_error(mine[f], want, (size_t)lists[i].n);
            CHECK(r < 1e-6, "%s %s: rel %g", model, name, r);
        }
    }
    sd_st_close(g);
}

static void check_refusals(void) {
    sd_config json;
    static sd_schedule s;
    const char *v = "{\"prediction_type\": \"v_prediction\"}";
    CHECK_OK(sd_config_parse(&json, v, strlen(v), "sched.json"));
    CHECK(sd_schedule_from_config(&s, &json) == SD_ERR_UNSUPPORTED && strstr(sd_last_error(), "v_prediction"),
          "v-prediction refused: %s", sd_last_error());
    sd_config_free(&json);
    const char *b = "{\"beta_schedule\": \"squaredcos_cap_v2\"}";
    CHECK_OK(sd_config_parse(&json, b, strlen(b), "sched.json"));
    CHECK(sd_schedule_from_config(&s, &json) == SD_ERR_UNSUPPORTED, "unknown beta schedule refused");
    sd_config_free(&json);
    sd_schedule_default(&s);
    sd_step_constants c;
    CHECK(sd_schedule_constants(&s, 50, (int[]){50}, 1, &c) == SD_ERR_ARG, "t_index 50 of 50 refused");
    CHECK(sd_schedule_constants(&s, 0, (int[]){0}, 1, &c) == SD_ERR_ARG, "0 steps refused");
    CHECK(sd_schedule_index_for_strength(1.0f, 50) == 0, "strength 1 is t_index 0");
    CHECK(sd_schedule_index_for_strength(0.3f, 50) == 35, "strength 0.3 is t_index 35");
    CHECK(sd_schedule_index_for_strength(0.0f, 50) == 49, "strength 0 is the last step");
}

int main(void) {
    check_model("tiny-sd15");
    check_model("tiny-sd21");
    check_refusals();
    return check_finish();
}
