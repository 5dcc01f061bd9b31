/* main.c — the sdstream command: dispatches to subcommands. Uses only the public API. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "log.h"

static void usage(FILE *out) {
    fprintf(out,
            "sdstream %s — StreamDiffusion in C\n"
            "usage: sdstream <command> [options]\n"
            "commands:\n"
            "  serve --model M --taesd T [--port 7860]\n"
            "                                  the real-time web demo: open http://127.0.0.1:7860\n"
            "  pull ORG/NAME [--variant fp16]  download a model by its Hugging Face id into the hub cache\n"
            "  stream --model M --prompt P --input SRC --output DST\n"
            "                                  StreamDiffusion on a video: y4m, image folder, camera, stdin\n"
            "  txt2img --model M --prompt P --output OUT.png     generate an image from a prompt\n"
            "  img2img --model M --prompt P --input IN.png --output OUT.png\n"
            "                                  transform an image\n"
            "  tokenize --model M \"prompt\"     print the 77 CLIP token ids of a prompt\n"
            "  eval --model M --component NAME --input IN.safetensors --output OUT.safetensors\n"
            "                                  run one component (text_encoder, unet, vae_encode, vae_decode,\n"
            "                                  taesd_encode, taesd_decode) on named tensors\n"
            "  bench --model M --taesd T [--sizes 256,512] [--json]\n"
            "                                  time each component against the measured peak\n"
            "  make-model --arch sd-turbo|sd15|sdxl-turbo --random --output DIR\n"
            "                                  write a full-size model with random weights (benchmarks)\n"
            "  --version                       print the version and compiled-in backends\n"
            "Run 'sdstream <command> --help' for a command's options. Every command takes --threads N\n"
            "(default $SDSTREAM_THREADS, else all cores). Results go to stdout, messages to stderr.\n",
            sd_version());
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {{"stream", cmd_stream},   {"txt2img", cmd_txt2img}, {"img2img", cmd_img2img},       {"tokenize", cmd_tokenize},
                {"eval", cmd_eval},       {"bench", cmd_bench},     {"serve", cmd_serve},           {"pull", cmd_pull},
                {"make-model", cmd_make_model}};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("sdstream %s (backends: %s)\n", sd_version(), sd_backends());
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    const char *names[N_COMMANDS];
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(cmd, commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
        names[i] = commands[i].name;
    }
    const char *near = args_closest(cmd, names, N_COMMANDS);
    if (near) cli_log_error("unknown command '%s'; did you mean '%s'? (sdstream --help lists the commands)", cmd, near);
    else cli_log_error("unknown command '%s' (sdstream --help lists the commands)", cmd);
    return 2;
}
