/* cmd_eval.c — `sdstream eval`: runs one model component on the named tensors of a safetensors
 * file and writes its outputs, so a user can compare a model with diffusers tensor by tensor. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "log.h"

static unsigned component_bits(const char *name) {
    if (strcmp(name, "text_encoder") == 0 || strcmp(name, "text_encoder_2") == 0) return SD_COMPONENT_TEXT_ENCODER;
    if (strcmp(name, "unet") == 0) return SD_COMPONENT_UNET;
    if (strncmp(name, "vae_", 4) == 0) return SD_COMPONENT_VAE;
    if (strncmp(name, "taesd_", 6) == 0) return SD_COMPONENT_TAESD;
    return 0;
}

int cmd_eval(int argc, char **argv) {
    args a = {.usage = "sdstream eval --model M --component NAME --input IN.safetensors --output OUT.safetensors",
              .notes = "components and their tensors (input -> output):\n"
                       "  text_encoder   input_ids -> last_hidden_state (SDXL: + penultimate_hidden_state)\n"
                       "  text_encoder_2 input_ids -> last_hidden_state, penultimate_hidden_state, text_embeds (SDXL)\n"
                       "  unet           sample, timestep, encoder_hidden_states (SDXL: + text_embeds, time_ids)\n"
                       "                 -> noise_pred\n"
                       "  vae_encode     image -> latent_mean, latent_std\n"
                       "  vae_decode     latent -> image\n"
                       "  taesd_encode   image -> latents        (--model: the TAESD folder)\n"
                       "  taesd_decode   latents -> image        (--model: the TAESD folder)\n"};
    cli_add_model_options(&a);
    args_add(&a, "component", false, "text_encoder|text_encoder_2|unet|vae_encode|vae_decode|taesd_encode|taesd_decode");
    args_require(&a, "component");
    args_add(&a, "input", false, "input .safetensors with the component's named input tensors");
    args_require(&a, "input");
    args_add(&a, "output", false, "output .safetensors to write");
    args_require(&a, "output");
    int rc = args_parse(&a, argc, argv);
    if (rc >= 0) return rc;
    const char *component = args_get(&a, "component"), *in = args_get(&a, "input"), *out = args_get(&a, "output");
    if (cli_check_model_options(&a)) return 2;
    unsigned bits = component_bits(component);
    if (!bits) {
        static const char *names[] = {"text_encoder", "text_encoder_2", "unet", "vae_encode", "vae_decode", "taesd_encode", "taesd_decode"};
        const char *near = args_closest(component, names, 7);
        cli_log_error("unknown component '%s'%s%s%s (text_encoder, text_encoder_2, unet, vae_encode, vae_decode, taesd_encode or taesd_decode)",
                      component, near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
        return 2;
    }
    sd_model *model = cli_load_model(&a, bits);
    if (!model) return 1;
    sd_status st = sd_model_eval_file(model, component, in, out);
    sd_model_free(model);
    if (st != SD_OK) return cli_error(st);
    cli_log_info("wrote %s", out);
    return 0;
}
