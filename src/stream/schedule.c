/* schedule.c — see schedule.h. Float32 arithmetic mirrors torch's (linspace in float with its
 * two-sided formula, cumprod in sequence, int64 timestep tensors scaled in float32). */
#include "stream/schedule.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* torch.linspace(a, b, n, dtype=float32) as the goldens' torch (an AVX2 + FMA build) computes it:
 * blocks of 8 (two per loop turn) start at a + step*idx (first half) or b - step*(n-1-idx) and add
 * j*step across the block; the tail that does not fill two blocks takes the scalar two-sided
 * formula. The compiler contracted every a + x*y into one fused multiply-add, so fmaf here:
 * reproducing the operations makes the betas bit-exact. */
static float linspace_at(float a, float b, float step, int n, int idx) {
    return idx < n / 2 ? fmaf(step, (float)idx, a) : fmaf(-step, (float)(n - 1 - idx), b);
}

static void torch_linspace(float *out, float a, float b, int n) {
    float step = (b - a) / (float)(n - 1);
    int i = 0;
    for (; i + 16 <= n; i += 8) {
        float base = linspace_at(a, b, step, n, i);
        for (int j = 0; j < 8; j++) out[i + j] = fmaf((float)j, step, base);
    }
    for (; i < n; i++) out[i] = linspace_at(a, b, step, n, i);
}

static void fill_betas(sd_schedule *s, double beta_start, double beta_end, bool scaled) {
    int n = s->num_train_timesteps;
    /* scaled_linear: linspace(beta_start ** 0.5, beta_end ** 0.5) ** 2, the roots taken in double */
    float a = (float)(scaled ? sqrt(beta_start) : beta_start), b = (float)(scaled ? sqrt(beta_end) : beta_end);
    torch_linspace(s->betas, a, b, n);
    if (scaled)
        for (int i = 0; i < n; i++) s->betas[i] *= s->betas[i];
    float prod = 1.0f;
    for (int i = 0; i < n; i++) {
        prod *= 1.0f - s->betas[i];
        s->alphas_cumprod[i] = prod;
    }
}

void sd_schedule_default(sd_schedule *s) {
    memset(s, 0, sizeof *s);
    s->num_train_timesteps = 1000;
    s->original_inference_steps = 50;
    s->timestep_scaling = 10.0f;
    fill_betas(s, 0.00085, 0.012, true);
}

sd_status sd_schedule_from_config(sd_schedule *s, const sd_config *json) {
    memset(s, 0, sizeof *s);
    const char *p = json->path, *pred = NULL, *schedule = NULL;
    SD_TRY(sd_config_string(json, "prediction_type", "epsilon", &pred));
    if (strcmp(pred, "epsilon") != 0)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: prediction_type \"%s\" is not supported (only epsilon: SD 1.x, "
                       "SD 2.x-base, sd-turbo; the 768-px SD 2.x models predict v)", p, pred);
    if (sd_config_has(json, "trained_betas"))
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: \"trained_betas\" is not supported", p);
    bool zero_snr = false;
    SD_TRY(sd_config_bool(json, "rescale_betas_zero_snr", false, &zero_snr));
    if (zero_snr) return sd_fail(SD_ERR_UNSUPPORTED, "%s: \"rescale_betas_zero_snr\" is not supported", p);
    SD_TRY(sd_config_string(json, "beta_schedule", "scaled_linear", &schedule));
    bool scaled = strcmp(schedule, "scaled_linear") == 0;
    if (!scaled && strcmp(schedule, "linear") != 0)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: beta_schedule \"%s\" is not supported (expected scaled_linear or linear)",
                       p, schedule);
    long v;
    double d, beta_start, beta_end;
    SD_TRY(sd_config_int(json, "num_train_timesteps", 2, SD_MAX_TRAIN_STEPS, 1000, &v));
    s->num_train_timesteps = (int)v;
    SD_TRY(sd_config_int(json, "original_inference_steps", 1, SD_MAX_TRAIN_STEPS, 50, &v));
    if (v > s->num_train_timesteps)
        return sd_fail(SD_ERR_FORMAT, "%s: original_inference_steps %ld exceeds num_train_timesteps %d", p, v,
                       s->num_train_timesteps);
    s->original_inference_steps = (int)v;
    SD_TRY(sd_config_double(json, "timestep_scaling", 0.0, 1e6, 10.0, &d));
    s->timestep_scaling = (float)d;
    SD_TRY(sd_config_double(json, "beta_start", 0.0, 1.0, 0.0001, &beta_start));
    SD_TRY(sd_config_double(json, "beta_end", 0.0, 1.0, 0.02, &beta_end));
    if (!(beta_end > beta_start)) return sd_fail(SD_ERR_FORMAT, "%s: beta_end must exceed beta_start", p);
    fill_betas(s, beta_start, beta_end, scaled);
    return SD_OK;
}

sd_status sd_schedule_timesteps(const sd_schedule *s, int num_inference_steps, int64_t *out) {
    int origin = s->original_inference_steps, k = s->num_train_timesteps / origin;
    if (num_inference_steps < 1 || num_inference_steps > origin || num_inference_steps > SD_MAX_STEPS * 64)
        return sd_fail(SD_ERR_ARG, "num_inference_steps %d must be 1..%d (the schedule's original_inference_steps)",
                       num_inference_steps, origin);
    /* origin timesteps (1..origin)*k - 1, reversed; floor(linspace(0, origin, n, endpoint=False)) picks */
    for (int i = 0; i < num_inference_steps; i++) {
        int64_t index = (int64_t)floor((double)i * ((double)origin / (double)num_inference_steps));
        out[i] = (int64_t)(origin - index) * k - 1;
    }
    return SD_OK;
}

int sd_schedule_index_for_strength(float strength, int num_inference_steps) {
    if (!(strength >= 0.0f)) strength = 0.0f;
    if (strength > 1.0f) strength = 1.0f;
    int index = (int)lroundf((1.0f - strength) * (float)num_inference_steps);
    return index < num_inference_steps ? index : num_inference_steps - 1;
}

sd_status sd_schedule_constants(const sd_schedule *s, int num_inference_steps, const int *t_index_list, int n,
                                sd_step_constants *out) {
    if (n < 1 || n > SD_MAX_STEPS) return sd_fail(SD_ERR_ARG, "t_index_list has %d entries, expected 1..%d", n, SD_MAX_STEPS);
    int64_t all[4096];
    if (num_inference_steps > (int)(sizeof all / sizeof all[0]))
        return sd_fail(SD_ERR_ARG, "num_inference_steps %d is too large", num_inference_steps);
    SD_TRY(sd_schedule_timesteps(s, num_inference_steps, all));
    memset(out, 0, sizeof *out);
    out->n = n;
    for (int i = 0; i < n; i++) {
        int index = t_index_list[i];
        if (index < 0 || index >= num_inference_steps)
            return sd_fail(SD_ERR_ARG, "t_index_list[%d] = %d is outside 0..%d (num_inference_steps %d)", i, index,
                           num_inference_steps - 1, num_inference_steps);
        /* each step denoises further: a repeated or backwards index is a mistake, never a schedule */
        if (i > 0 && index <= t_index_list[i - 1])
            return sd_fail(SD_ERR_ARG, "t_index_list must increase: t_index_list[%d] = %d follows %d", i, index,
                           t_index_list[i - 1]);
        int64_t t = all[index];
        out->timesteps[i] = t;
        float alpha = s->alphas_cumprod[t];
        out->alpha_sqrt[i] = sqrtf(alpha);
        out->beta_sqrt[i] = sqrtf(1.0f - alpha);
        /* get_scalings_for_boundary_condition_discrete, sigma_data 0.5, in float32 */
        float scaled = (float)t * s->timestep_scaling, sq = scaled * scaled;
        out->c_skip[i] = 0.25f / (sq + 0.25f);
        out->c_out[i] = scaled / sqrtf(sq + 0.25f);
    }
    return SD_OK;
}
