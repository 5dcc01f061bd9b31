/* cmd_make_model.c — `sdstream make-model --arch sd-turbo|sd15|sdxl-turbo --random --output DIR`: a full-size
 * model in the real architecture with random weights, for benchmarks. */
#include <stdio.h>

#include "commands.h"
#include "log.h"

int cmd_make_model(int argc, char **argv) {
    args a = {.usage = "sdstream make-model --arch sd-turbo|sd15|sdxl-turbo --random --output DIR [--dtype fp16] [--lcm-lora DIR]"};
    args_add(&a, "arch", false, "sd-turbo, sd15 or sdxl-turbo");
    args_require(&a, "arch");
    args_add(&a, "random", true, "random weights (required: the only kind this command makes)");
    args_require(&a, "random");
    args_add(&a, "output", false, "folder to write (created)");
    args_require(&a, "output");
    args_add(&a, "tokenizer", false, "CLIP tokenizer folder to copy (default: a byte-level tokenizer)");
    args_add(&a, "dtype", false, "fp16 (default), bf16 or fp32");
    args_add(&a, "seed", false, "seed of the random weights, 0..2^64-1 (default 0)");
    args_add(&a, "lcm-lora", false, "also write DIR/pytorch_lora_weights.safetensors: LCM-LoRA's real keys and shapes, random values");
    cli_add_threads_option(&a);
    args_add(&a, "help", true, "show this help");
    int rc = args_parse(&a, argc, argv);
    if (rc >= 0) return rc;
    const char *arch = args_get(&a, "arch"), *out = args_get(&a, "output");
    uint64_t seed = 0;
    int threads;
    if (args_get(&a, "seed") && cli_parse_seed(args_get(&a, "seed"), "seed", &seed)) return 2;
    if (cli_threads(&a, &threads)) return 2; /* accepted for uniformity: writing random weights is one thread */
    double t0 = cli_now_ms();
    sd_status st = sd_make_random_model(arch, out, args_get(&a, "tokenizer"), args_get(&a, "dtype"), seed);
    if (st != SD_OK) return cli_error(st);
    cli_log_info("wrote %s (%s, random weights) in %.1f s", out, arch, (cli_now_ms() - t0) * 1e-3);
    const char *lcm = args_get(&a, "lcm-lora");
    if (lcm) {
        if ((st = sd_make_random_lcm_lora(arch, lcm, seed)) != SD_OK) return cli_error(st);
        cli_log_info("wrote %s/pytorch_lora_weights.safetensors (LCM-LoRA keys and shapes, random values)", lcm);
    }
    return 0;
}
