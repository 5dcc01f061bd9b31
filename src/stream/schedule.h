/* schedule.h — the LCM schedule StreamDiffusion uses (diffusers LCMScheduler.from_config of the
 * model's scheduler config): the beta table, the timesteps of num_inference_steps, and for a
 * t_index_list the per-step constants StreamDiffusion precomputes once per stream:
 * sqrt(alpha_cumprod), sqrt(1 - alpha_cumprod) and the LCM boundary scalings c_skip / c_out.
 * Computed in float32 exactly as torch does, so they match the goldens bit for bit or within an ulp.
 */
#ifndef SD_STREAM_SCHEDULE_H
#define SD_STREAM_SCHEDULE_H

#include <stdint.h>

#include "base/config.h"

enum { SD_MAX_TRAIN_STEPS = 4000, SD_MAX_STEPS = 64 };

typedef struct sd_schedule {
    int num_train_timesteps;
    int original_inference_steps;
    float timestep_scaling;
    float betas[SD_MAX_TRAIN_STEPS];
    float alphas_cumprod[SD_MAX_TRAIN_STEPS];
} sd_schedule;

typedef struct sd_step_constants {
    int n;                       /* len(t_index_list) */
    int64_t timesteps[SD_MAX_STEPS];
    float alpha_sqrt[SD_MAX_STEPS]; /* sqrt(alpha_cumprod[t]) */
    float beta_sqrt[SD_MAX_STEPS];  /* sqrt(1 - alpha_cumprod[t]) */
    float c_skip[SD_MAX_STEPS], c_out[SD_MAX_STEPS];
} sd_step_constants;

/* From a scheduler_config.json (LCM, Euler, DDIM, ... : LCM reads the keys it knows, like
 * LCMScheduler.from_config). prediction_type must be epsilon; beta_schedule scaled_linear or linear. */
sd_status sd_schedule_from_config(sd_schedule *s, const sd_config *json);
/* SD's defaults: scaled_linear 0.00085..0.012 over 1000 steps, 50 original steps, scaling 10. */
void sd_schedule_default(sd_schedule *s);

/* LCMScheduler.set_timesteps(num_inference_steps): out receives num_inference_steps timesteps. */
sd_status sd_schedule_timesteps(const sd_schedule *s, int num_inference_steps, int64_t *out);

/* The constants of the steps t_index_list[0..n) of a num_inference_steps schedule. */
sd_status sd_schedule_constants(const sd_schedule *s, int num_inference_steps, const int *t_index_list, int n,
                                sd_step_constants *out);

/* The t_index of a one-step img2img at the given strength (0: keep the input, 1: pure noise):
 * round((1 - strength) * num_inference_steps), clamped to the schedule. */
int sd_schedule_index_for_strength(float strength, int num_inference_steps);

#endif
