/* stream_images.c — the smallest complete use of libsdstream, with nothing but the public header:
 * load a model, open a stream, set a prompt, push a sequence of images through StreamDiffusion and
 * save what comes out. Build: it is a CMake target (build/stream_images); run:
 *
 *   ./build/stream_images MODEL_DIR TAESD_DIR "a watercolor painting" out_prefix in1.png in2.png ...
 *
 * The stream batch makes output k belong to input k - (n - 1) (n = 2 steps here): the first output
 * is a warm-up frame, and feeding the last input once more flushes the final one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdstream.h"

static int fail(const char *what) {
    fprintf(stderr, "%s: %s\n", what, sd_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s MODEL TAESD PROMPT OUT_PREFIX IMAGE...\n", argv[0]);
        return 2;
    }
    sd_model_params mp = sd_model_params_default();
    mp.path = argv[1];
    mp.taesd_path = argv[2];
    sd_model *model = NULL;
    if (sd_model_load(&model, &mp) != SD_OK) return fail("loading the model");

    sd_stream_params sp = sd_stream_params_default(); /* t_index_list {32, 45}, RCFG self, seed 2 */
    sp.width = sp.height = 256;
    sd_stream *stream = NULL;
    if (sd_stream_create(&stream, model, &sp) != SD_OK) return fail("creating the stream");
    if (sd_stream_set_prompt(stream, argv[3], NULL) != SD_OK) return fail("setting the prompt");

    sd_image out;
    if (sd_image_alloc(&out, sp.width, sp.height) != SD_OK) return fail("allocating");
    int n_inputs = argc - 5, written = 0;
    for (int k = 0; k <= n_inputs; k++) {
        /* the extra last call repeats the last input to flush the stream batch */
        const char *path = argv[5 + (k < n_inputs ? k : n_inputs - 1)];
        sd_image in, fitted;
        if (sd_image_load(&in, path) != SD_OK) return fail(path);
        if (sd_image_fit(&fitted, &in, sp.width, sp.height) != SD_OK) return fail(path);
        sd_image_free(&in);
        sd_status st = sd_stream_img2img(stream, fitted.pixels, out.pixels, NULL);
        sd_image_free(&fitted);
        if (st != SD_OK) return fail("img2img");
        if (k == 0) continue; /* warm-up output */
        char name[4096];
        snprintf(name, sizeof name, "%s%04d.png", argv[4], written++);
        if (sd_image_save(&out, name) != SD_OK) return fail(name);
        sd_stream_timings t;
        sd_stream_get_timings(stream, &t);
        printf("%s  (%.0f ms: encode %.0f, unet %.0f, decode %.0f)\n", name, t.total_ms, t.encode_ms, t.unet_ms, t.decode_ms);
    }
    sd_image_free(&out);
    sd_stream_free(stream);
    sd_model_free(model);
    return 0;
}
