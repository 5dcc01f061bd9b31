/* cmd_eval.c — `sdstream eval`: runs one model component on the named tensors of a safetensors
 * file and writes its outputs, so a user can compare a model with diffusers tensor by tensor. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static unsigned component_bits(const char *name) {
    if (strcmp(name, "text_encoder") == 0) return SD_COMPONENT_TEXT_ENCODER;
    if (strcmp(name, "unet") == 0) return SD_COMPONENT_UNET;
    if (strncmp(name, "vae_", 4) == 0) return SD_COMPONENT_VAE;
    if (strncmp(name, "taesd_", 6) == 0) return SD_COMPONENT_TAESD;
    return 0;
}

int cmd_eval(int argc, char **argv) {
    args a = {0};
    cli_add_model_options(&a);
    args_add(&a, "component", false, "text_encoder|unet|vae_encode|vae_decode|taesd_encode|taesd_decode");
    args_add(&a, "input", false, "input .safetensors with the component's named input tensors");
    args_add(&a, "output", false, "output .safetensors to write");
    int rc = args_parse(&a, argc, argv);
    const char *component = args_get(&a, "component"), *in = args_get(&a, "input"), *out = args_get(&a, "output");
    if (rc || args_flag(&a, "help") || !component || !in || !out || a.n_positional) {
        fprintf(stderr, "usage: sdstream eval --model M --component NAME --input IN.safetensors --output OUT.safetensors\n"
                        "tensors: text_encoder input_ids -> last_hidden_state\n");
        args_print_options(&a);
        return rc ? rc : (args_flag(&a, "help") ? 0 : 2);
    }
    unsigned bits = component_bits(component);
    if (!bits) {
        fprintf(stderr, "error: unknown component '%s'\n", component);
        return 2;
    }
    sd_model *model = cli_load_model(&a, bits);
    if (!model) return 1;
    sd_status st = sd_model_eval_file(model, component, in, out);
    sd_model_free(model);
    if (st != SD_OK) return cli_error(st);
    fprintf(stderr, "wrote %s\n", out);
    return 0;
}
