/* cmd_generate.c — `sdstream txt2img` and `sdstream img2img`: one prompt (and one image) in, one
 * image out. Both run the same stream pipeline as `sdstream stream`, with the steps taken one
 * after another in a single call (use_denoising_batch off), so the output is final at once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static void add_generate_options(args *a, bool img2img) {
    cli_add_model_options(a);
    args_add(a, "prompt", false, "the prompt (required)");
    args_add(a, "negative-prompt", false, "negative prompt (used with --guidance > 1)");
    args_add(a, "seed", false, "noise seed (default 2); same seed, same image");
    args_add(a, "t-index-list", false, img2img ? "steps as schedule indices, e.g. 32,45 (default)" : "steps, e.g. 0 (default) or 0,16,32,45");
    if (img2img) args_add(a, "strength", false, "0..1, one step at index round((1-s)*steps) (instead of --t-index-list)");
    args_add(a, "steps", false, "num_inference_steps of the LCM schedule (default 50)");
    args_add(a, "guidance", false, "guidance scale (default 1: none); > 1 uses classic CFG with the negative prompt");
    args_add(a, "cfg-type", false, "none|full|self|initialize (default: full when --guidance > 1, else none)");
    args_add(a, "width", false, img2img ? "output width, multiple of 8 (default: the input's)" : "multiple of 8 (default 512)");
    args_add(a, "height", false, img2img ? "output height, multiple of 8 (default: the input's)" : "multiple of 8 (default 512)");
    if (img2img) args_add(a, "input", false, "input image, .png or .jpg (required)");
    args_add(a, "output", false, "output image, .png or .jpg (required)");
    args_add(a, "vae", true, "use the model's full VAE even when --taesd is given");
}

/* Parses "32,45" into the stream parameters. */
static int parse_index_list(const char *text, sd_stream_params *p) {
    p->n_t_index = 0;
    const char *c = text;
    while (*c) {
        char *end;
        long v = strtol(c, &end, 10);
        if (end == c || v < 0 || v > 10000 || p->n_t_index == SD_MAX_T_INDEX) return -1;
        p->t_index_list[p->n_t_index++] = (int)v;
        c = end;
        if (*c == ',') c++;
        else if (*c) return -1;
    }
    return p->n_t_index > 0 ? 0 : -1;
}

int cli_parse_int(const char *text, const char *name, long lo, long hi, long *out) {
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "error: --%s must be an integer in %ld..%ld (got '%s')\n", name, lo, hi, text);
        return 2;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *text, const char *name, double lo, double hi, double *out) {
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "error: --%s must be a number in %g..%g (got '%s')\n", name, lo, hi, text);
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
    fprintf(stderr, "error: --cfg-type must be none, full, self or initialize (got '%s')\n", text);
    return 2;
}

/* Fills the stream parameters shared by txt2img, img2img and stream. Returns 0 or 2. */
int cli_stream_params(const args *a, sd_stream_params *p) {
    long v;
    double d;
    const char *s;
    if ((s = args_get(a, "seed")) && cli_parse_int(s, "seed", 0, 0x7fffffffffffffffL, &v)) return 2;
    if (s) p->seed = (uint64_t)v, p->frame_seed = (uint64_t)v;
    if ((s = args_get(a, "t-index-list")) && parse_index_list(s, p) != 0) {
        fprintf(stderr, "error: --t-index-list must be comma-separated step indices, e.g. 32,45 (got '%s')\n", s);
        return 2;
    }
    if ((s = args_get(a, "strength"))) {
        if (args_get(a, "t-index-list")) {
            fprintf(stderr, "error: give --strength or --t-index-list, not both\n");
            return 2;
        }
        if (cli_parse_float(s, "strength", 0.0, 1.0, &d)) return 2;
        p->strength = (float)d;
        p->n_t_index = 0;
    }
    if ((s = args_get(a, "steps")) && cli_parse_int(s, "steps", 1, 1000, &v)) return 2;
    if (s) p->num_inference_steps = (int)v;
    if ((s = args_get(a, "width")) && cli_parse_int(s, "width", 8, 4096, &v)) return 2;
    if (s) p->width = (int)v;
    if ((s = args_get(a, "height")) && cli_parse_int(s, "height", 8, 4096, &v)) return 2;
    if (s) p->height = (int)v;
    if ((s = args_get(a, "guidance")) && cli_parse_float(s, "guidance", 0.0, 100.0, &d)) return 2;
    if (s) p->guidance_scale = (float)d;
    if ((s = args_get(a, "cfg-type")) && cli_parse_cfg(s, &p->cfg_type)) return 2;
    if (args_flag(a, "vae")) p->use_taesd = 0;
    if ((p->width % 8) || (p->height % 8)) {
        fprintf(stderr, "error: --width and --height must be multiples of 8 (got %d x %d)\n", p->width, p->height);
        return 2;
    }
    return 0;
}

static int generate(int argc, char **argv, bool img2img) {
    args a = {0};
    add_generate_options(&a, img2img);
    int rc = args_parse(&a, argc, argv);
    const char *prompt = args_get(&a, "prompt"), *output = args_get(&a, "output"), *input = args_get(&a, "input");
    if (rc || args_flag(&a, "help") || !prompt || !output || (img2img && !input) || a.n_positional) {
        fprintf(stderr, "usage: sdstream %s --model M --prompt TEXT %s--output OUT.png [options]\n",
                img2img ? "img2img" : "txt2img", img2img ? "--input IN.png " : "");
        args_print_options(&a);
        return rc ? rc : (args_flag(&a, "help") ? 0 : 2);
    }
    sd_stream_params p = sd_stream_params_default();
    p.use_denoising_batch = 0; /* all steps in this call */
    p.cfg_type = SD_CFG_NONE;
    p.guidance_scale = 1.0f;
    if (!img2img) p.n_t_index = 1, p.t_index_list[0] = 0;
    if (cli_stream_params(&a, &p)) return 2;
    if (!args_get(&a, "cfg-type")) p.cfg_type = p.guidance_scale > 1.0f ? SD_CFG_FULL : SD_CFG_NONE;
    if (sd_image_check_path(output) != SD_OK) {
        fprintf(stderr, "error: %s\n", sd_last_error());
        return 2;
    }

    sd_image in_img = {0};
    if (img2img) {
        sd_status st = sd_image_load(&in_img, input);
        if (st != SD_OK) return cli_error(st);
        if (!args_get(&a, "width") && !args_get(&a, "height")) {
            if (in_img.width % 8 || in_img.height % 8) {
                fprintf(stderr, "error: %s is %d x %d; the size must be a multiple of 8 (or pass --width/--height "
                                "to scale and crop it)\n", input, in_img.width, in_img.height);
                sd_image_free(&in_img);
                return 1;
            }
            p.width = in_img.width, p.height = in_img.height;
        } else if (!args_get(&a, "width") || !args_get(&a, "height")) {
            fprintf(stderr, "error: give both --width and --height\n");
            sd_image_free(&in_img);
            return 2;
        }
    }

    double t0 = cli_now_ms();
    sd_model *model = cli_load_model(&a, cli_pipeline_components(&a));
    if (!model) {
        sd_image_free(&in_img);
        return 1;
    }
    double t1 = cli_now_ms();
    fprintf(stderr, "loaded %s in %.0f ms\n", sd_model_describe(model), t1 - t0);
    sd_stream *stream = NULL;
    sd_status st = sd_stream_create(&stream, model, &p);
    if (st == SD_OK) st = sd_stream_set_prompt(stream, prompt, args_get(&a, "negative-prompt"));
    double t2 = cli_now_ms();
    if (st == SD_OK) fprintf(stderr, "prompt encoded in %.0f ms\n", t2 - t1);
    sd_image frame = {0}, out = {0};
    if (st == SD_OK && img2img) st = sd_image_fit(&frame, &in_img, p.width, p.height);
    if (st == SD_OK) st = sd_image_alloc(&out, p.width, p.height);
    if (st == SD_OK) st = img2img ? sd_stream_img2img(stream, frame.pixels, out.pixels, NULL) : sd_stream_txt2img(stream, out.pixels);
    sd_stream_timings tm;
    if (st == SD_OK && sd_stream_get_timings(stream, &tm) == SD_OK)
        fprintf(stderr, "generated %d x %d in %.0f ms (preprocess %.1f, encode %.0f, unet %.0f, decode %.0f, postprocess %.1f)\n",
                p.width, p.height, tm.total_ms, tm.preprocess_ms, tm.encode_ms, tm.unet_ms, tm.decode_ms, tm.postprocess_ms);
    if (st == SD_OK) st = sd_image_save(&out, output);
    if (st == SD_OK) fprintf(stderr, "wrote %s\n", output);
    sd_image_free(&in_img);
    sd_image_free(&frame);
    sd_image_free(&out);
    sd_stream_free(stream);
    sd_model_free(model);
    return st == SD_OK ? 0 : cli_error(st);
}

int cmd_txt2img(int argc, char **argv) { return generate(argc, argv, false); }
int cmd_img2img(int argc, char **argv) { return generate(argc, argv, true); }
