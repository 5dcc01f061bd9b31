/* cmd_generate.c — `sdstream txt2img` and `sdstream img2img`: one prompt (and one image) in, one
 * image out. Both run the same stream pipeline as `sdstream stream`, with the steps taken one
 * after another in a single call (use_denoising_batch off), so the output is final at once. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "log.h"

static void add_generate_options(args *a, bool img2img) {
    cli_add_model_options(a);
    args_add(a, "prompt", false, "the prompt");
    args_require(a, "prompt");
    args_add(a, "negative-prompt", false, "negative prompt (needs --guidance > 1 and cfg full or initialize)");
    args_add(a, "seed", false, "noise seed (default 2); same seed, same image");
    args_add(a, "t-index-list", false, img2img ? "steps as schedule indices, e.g. 32,45 (default)" : "steps, e.g. 0 (default) or 0,16,32,45");
    if (img2img) args_add(a, "strength", false, "0..1, one step at index round((1-s)*steps) (instead of --t-index-list)");
    args_add(a, "steps", false, "num_inference_steps of the LCM schedule (default 50)");
    args_add(a, "guidance", false, "guidance scale (default 1: none); > 1 uses classic CFG with the negative prompt");
    args_add(a, "cfg-type", false, "none|full|self|initialize (default: full when --guidance > 1, else none)");
    args_add(a, "width", false, img2img ? "output width, multiple of 8 (default: the input's)" : "multiple of 8 (default 512)");
    args_add(a, "height", false, img2img ? "output height, multiple of 8 (default: the input's)" : "multiple of 8 (default 512)");
    if (img2img) args_add(a, "input", false, "input image, .png, .jpg or .bmp");
    if (img2img) args_require(a, "input");
    args_add(a, "output", false, "output image, .png, .jpg or .bmp; - writes PNG to stdout");
    args_require(a, "output");
    args_add(a, "vae", true, "use the model's full VAE even when --taesd is given");
}

/* Parses "32,45" into the stream parameters; the message says what is wrong with which entry. */
static int parse_index_list(const char *text, sd_stream_params *p) {
    p->n_t_index = 0;
    const char *c = text;
    for (int entry = 1;; entry++) {
        char *end;
        long v = strtol(c, &end, 10);
        if (end == c) {
            if (*c == ',' || *c == '\0') cli_log_error("--t-index-list '%s': entry %d is empty (give indices like 32,45)", text, entry);
            else cli_log_error("--t-index-list '%s': entry %d is not a number (give indices like 32,45)", text, entry);
            return 2;
        }
        if (p->n_t_index == SD_MAX_T_INDEX) {
            cli_log_error("--t-index-list '%s' has more than %d steps, the most a stream takes", text, SD_MAX_T_INDEX);
            return 2;
        }
        p->t_index_list[p->n_t_index++] = v < -1 ? -1 : (v > 100000 ? 100000 : (int)v); /* range checked below */
        c = end;
        if (*c == '\0') return 0;
        if (*c != ',') {
            cli_log_error("--t-index-list '%s': unexpected '%c' after entry %d (give indices like 32,45)", text, *c, entry);
            return 2;
        }
        c++;
    }
}

/* Range and order of the steps, once --steps is known: each must lie in the schedule and denoise
 * further than the one before. */
static int check_index_list(const char *text, const sd_stream_params *p) {
    for (int i = 0; i < p->n_t_index; i++) {
        int v = p->t_index_list[i];
        if (v < 0 || v >= p->num_inference_steps) {
            cli_log_error("--t-index-list '%s': %d is outside 0..%d (the indices of the %d-step schedule, --steps)", text,
                          v, p->num_inference_steps - 1, p->num_inference_steps);
            return 2;
        }
        if (i > 0 && v <= p->t_index_list[i - 1]) {
            cli_log_error("--t-index-list '%s': %s %d; the indices must increase, each step denoising further (e.g. 32,45)",
                          text, v == p->t_index_list[i - 1] ? "repeats" : "goes back to", v);
            return 2;
        }
    }
    return 0;
}

int cli_parse_int(const char *text, const char *name, long lo, long hi, long *out) {
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < lo || v > hi) {
        cli_log_error("--%s must be an integer in %ld..%ld (got '%s')", name, lo, hi, text);
        return 2;
    }
    *out = v;
    return 0;
}

int cli_parse_seed(const char *text, const char *name, uint64_t *out) {
    /* strtoull would take "-1" as 2^64 - 1 and saturate overflow: neither is what the user meant */
    errno = 0;
    char *end;
    unsigned long long v = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
    if (!(text[0] >= '0' && text[0] <= '9') || *end || errno == ERANGE) {
        cli_log_error("--%s must be an integer in 0..18446744073709551615 (got '%s')", name, text);
        return 2;
    }
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_float(const char *text, const char *name, double lo, double hi, double *out) {
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= lo && v <= hi)) {
        cli_log_error("--%s must be a number in %g..%g (got '%s')", name, lo, hi, text);
        return 2;
    }
    *out = v;
    return 0;
}

int cli_parse_cfg(const char *text, sd_cfg_type *out) {
    static const char *names[] = {"none", "full", "self", "initialize"};
    for (int i = 0; i < 4; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (sd_cfg_type)i;
            return 0;
        }
    const char *near = args_closest(text, names, 4);
    cli_log_error("--cfg-type must be none, full, self or initialize (got '%s'%s%s%s)", text, near ? "; did you mean '" : "",
                  near ? near : "", near ? "'?" : "");
    return 2;
}

int cli_check_guidance(const args *a, const sd_stream_params *p) {
    bool guided = p->cfg_type != SD_CFG_NONE && p->guidance_scale > 1.0f;
    if (args_get(a, "guidance") && p->cfg_type == SD_CFG_NONE && p->guidance_scale != 1.0f) {
        cli_log_error("--guidance %s has no effect with --cfg-type none (use full, self or initialize)", args_get(a, "guidance"));
        return 2;
    }
    if ((args_get(a, "guidance") || args_get(a, "cfg-type")) && p->cfg_type != SD_CFG_NONE && p->guidance_scale <= 1.0f) {
        cli_log_error("--cfg-type %s does nothing with --guidance %g: guidance needs a scale above 1",
                      args_get(a, "cfg-type") ? args_get(a, "cfg-type") : "full", (double)p->guidance_scale);
        return 2;
    }
    if (args_get(a, "negative-prompt") && !(guided && (p->cfg_type == SD_CFG_FULL || p->cfg_type == SD_CFG_INITIALIZE))) {
        cli_log_error("--negative-prompt is used only with guidance: --guidance above 1 and --cfg-type full or initialize "
                      "(%s)", guided ? "cfg self takes its negative from the stored noise" : "guidance is off");
        return 2;
    }
    return 0;
}

/* Fills the stream parameters shared by txt2img, img2img and stream, and checks them all (the
 * library's model-free checks included) before anything is loaded. Returns 0 or 2. */
int cli_stream_params(const args *a, sd_stream_params *p) {
    long v;
    double d;
    const char *s, *list = args_get(a, "t-index-list");
    if ((s = args_get(a, "seed"))) {
        uint64_t seed;
        if (cli_parse_seed(s, "seed", &seed)) return 2;
        p->seed = p->frame_seed = seed;
    }
    if (list && parse_index_list(list, p)) return 2;
    if ((s = args_get(a, "strength"))) {
        if (list) {
            cli_log_error("give --strength or --t-index-list, not both");
            return 2;
        }
        if (cli_parse_float(s, "strength", 0.0, 1.0, &d)) return 2;
        p->strength = (float)d;
        p->n_t_index = 0;
    }
    if ((s = args_get(a, "steps")) && cli_parse_int(s, "steps", 1, 1000, &v)) return 2;
    if (s) p->num_inference_steps = (int)v;
    if (list && check_index_list(list, p)) return 2;
    if ((s = args_get(a, "width")) && cli_parse_int(s, "width", 8, 4096, &v)) return 2;
    if (s) p->width = (int)v;
    if ((s = args_get(a, "height")) && cli_parse_int(s, "height", 8, 4096, &v)) return 2;
    if (s) p->height = (int)v;
    if ((s = args_get(a, "guidance")) && cli_parse_float(s, "guidance", 0.0, 100.0, &d)) return 2;
    if (s) p->guidance_scale = (float)d;
    if ((s = args_get(a, "cfg-type")) && cli_parse_cfg(s, &p->cfg_type)) return 2;
    if (args_flag(a, "vae")) p->use_taesd = 0;
    if ((p->width % 8) || (p->height % 8)) {
        cli_log_error("--width and --height must be multiples of 8 (got %d x %d)", p->width, p->height);
        return 2;
    }
    return 0;
}

/* The last gate before loading: the library's own model-free checks. */
int cli_check_stream_params(const sd_stream_params *p) {
    if (sd_stream_params_check(p) == SD_OK) return 0;
    cli_log_error("%s", sd_last_error());
    return 2;
}

static int generate(int argc, char **argv, bool img2img) {
    args a = {.usage = img2img ? "sdstream img2img --model M --prompt TEXT --input IN.png --output OUT.png [options]"
                               : "sdstream txt2img --model M --prompt TEXT --output OUT.png [options]"};
    add_generate_options(&a, img2img);
    int rc = args_parse(&a, argc, argv);
    if (rc >= 0) return rc;
    const char *prompt = args_get(&a, "prompt"), *output = args_get(&a, "output"), *input = args_get(&a, "input");
    sd_stream_params p = sd_stream_params_default();
    p.use_denoising_batch = 0; /* all steps in this call */
    p.cfg_type = SD_CFG_NONE;
    p.guidance_scale = 1.0f;
    if (!img2img) p.n_t_index = 1, p.t_index_list[0] = 0;
    if (cli_stream_params(&a, &p)) return 2;
    if (!args_get(&a, "cfg-type")) p.cfg_type = p.guidance_scale > 1.0f ? SD_CFG_FULL : SD_CFG_NONE;
    if (cli_check_guidance(&a, &p) || cli_check_stream_params(&p) || cli_check_model_options(&a)) return 2;
    if (sd_image_check_path(output) != SD_OK) {
        cli_log_error("%s", sd_last_error());
        return 2;
    }
    if (img2img && (args_get(&a, "width") != NULL) != (args_get(&a, "height") != NULL)) {
        cli_log_error("give both --width and --height (or neither: the input's size)");
        return 2;
    }

    sd_image in_img = {0};
    if (img2img) {
        sd_status st = sd_image_load(&in_img, input);
        if (st != SD_OK) return cli_error(st);
        if (!args_get(&a, "width")) {
            if (in_img.width % 8 || in_img.height % 8) {
                cli_log_error("%s is %d x %d; the size must be a multiple of 8 (or pass --width/--height to scale and "
                              "crop it)", input, in_img.width, in_img.height);
                sd_image_free(&in_img);
                return 1;
            }
            p.width = in_img.width, p.height = in_img.height;
        }
    }

    sd_model *model = cli_load_model(&a, cli_pipeline_components(&a));
    if (!model) {
        sd_image_free(&in_img);
        return 1;
    }
    cli_warn_long_prompt(model, "--prompt", prompt);
    cli_warn_long_prompt(model, "--negative-prompt", args_get(&a, "negative-prompt"));
    double t1 = cli_now_ms();
    sd_stream *stream = NULL;
    sd_status st = sd_stream_create(&stream, model, &p);
    if (st == SD_OK) st = sd_stream_set_prompt(stream, prompt, args_get(&a, "negative-prompt"));
    if (st == SD_OK) cli_log_info("prompt encoded in %.0f ms", cli_now_ms() - t1);
    sd_image frame = {0}, out = {0};
    if (st == SD_OK && img2img) st = sd_image_fit(&frame, &in_img, p.width, p.height);
    if (st == SD_OK) st = sd_image_alloc(&out, p.width, p.height);
    if (st == SD_OK) st = img2img ? sd_stream_img2img(stream, frame.pixels, out.pixels, NULL) : sd_stream_txt2img(stream, out.pixels);
    sd_stream_timings tm;
    if (st == SD_OK && sd_stream_get_timings(stream, &tm) == SD_OK)
        cli_log_info("generated %d x %d in %.0f ms (preprocess %.1f, encode %.0f, unet %.0f, decode %.0f, postprocess %.1f)",
                     p.width, p.height, tm.total_ms, tm.preprocess_ms, tm.encode_ms, tm.unet_ms, tm.decode_ms, tm.postprocess_ms);
    if (st == SD_OK) st = sd_image_save(&out, output);
    if (st == SD_OK) cli_log_info("wrote %s", strcmp(output, "-") ? output : "PNG to stdout");
    sd_image_free(&in_img);
    sd_image_free(&frame);
    sd_image_free(&out);
    sd_stream_free(stream);
    sd_model_free(model);
    return st == SD_OK ? 0 : cli_error(st);
}

int cmd_txt2img(int argc, char **argv) { return generate(argc, argv, false); }
int cmd_img2img(int argc, char **argv) { return generate(argc, argv, true); }
