/* cmd_make_model.c — `sdstream make-model --arch sd-turbo|sd15 --random --output DIR`: a full-size
 * model in the real architecture with random weights, for benchmarks. */
#include <stdio.h>

#include "commands.h"

int cmd_make_model(int argc, char **argv) {
    args a = {0};
    args_add(&a, "arch", false, "sd-turbo or sd15");
    args_add(&a, "random", true, "random weights (required: the only kind this command makes)");
    args_add(&a, "output", false, "folder to write (created)");
    args_add(&a, "tokenizer", false, "CLIP tokenizer folder to copy (default: a byte-level tokenizer)");
    args_add(&a, "dtype", false, "fp16 (default), bf16 or fp32");
    args_add(&a, "seed", false, "seed of the random weights (default 0)");
    args_add(&a, "lcm-lora", false, "also write DIR/pytorch_lora_weights.safetensors: LCM-LoRA's real keys and shapes, random values");
    args_add(&a, "help", true, "show this help");
    int rc = args_parse(&a, argc, argv);
    const char *arch = args_get(&a, "arch"), *out = args_get(&a, "output");
    if (rc || args_flag(&a, "help") || !arch || !out || !args_flag(&a, "random") || a.n_positional) {
        fprintf(stderr, "usage: sdstream make-model --arch sd-turbo|sd15 --random --output DIR [--dtype fp16] [--lcm-lora DIR]\n");
        args_print_options(&a);
        return rc ? rc : (args_flag(&a, "help") ? 0 : 2);
    }
    long seed = 0;
    if (args_get(&a, "seed") && cli_parse_int(args_get(&a, "seed"), "seed", 0, 0x7fffffffffffffffL, &seed)) return 2;
    double t0 = cli_now_ms();
    sd_status st = sd_make_random_model(arch, out, args_get(&a, "tokenizer"), args_get(&a, "dtype"), (uint64_t)seed);
    if (st != SD_OK) return cli_error(st);
    fprintf(stderr, "wrote %s (%s, random weights) in %.1f s\n", out, arch, (cli_now_ms() - t0) * 1e-3);
    const char *lcm = args_get(&a, "lcm-lora");
    if (lcm) {
        if ((st = sd_make_random_lcm_lora(arch, lcm, (uint64_t)seed)) != SD_OK) return cli_error(st);
        fprintf(stderr, "wrote %s/pytorch_lora_weights.safetensors (LCM-LoRA keys and shapes, random values)\n", lcm);
    }
    return 0;
}
