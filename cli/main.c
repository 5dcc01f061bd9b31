/* main.c — the sdstream command: dispatches to subcommands. Uses only the public API. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static void usage(void) {
    fprintf(stderr,
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
            "                                  run one model component on named tensors\n"
            "  bench --model M --taesd T [--sizes 256,512] [--json]\n"
            "                                  time each component against the measured peak\n"
            "  make-model --arch sd-turbo|sd15 --random --output DIR\n"
            "                                  write a full-size model with random weights (benchmarks)\n"
            "  --version                       print the version and compiled-in backends\n"
            "Run 'sdstream <command> --help' for a command's options.\n",
            sd_version());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("sdstream %s (backends: %s)\n", sd_version(), sd_backends());
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage();
        return 0;
    }
    if (strcmp(cmd, "tokenize") == 0) return cmd_tokenize(argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "stream") == 0) return cmd_stream(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 2, argv + 2);
    if (strcmp(cmd, "txt2img") == 0) return cmd_txt2img(argc - 2, argv + 2);
    if (strcmp(cmd, "img2img") == 0) return cmd_img2img(argc - 2, argv + 2);
    if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "pull") == 0) return cmd_pull(argc - 2, argv + 2);
    if (strcmp(cmd, "make-model") == 0) return cmd_make_model(argc - 2, argv + 2);
    fprintf(stderr, "error: unknown command '%s'\n", cmd);
    usage();
    return 2;
}
