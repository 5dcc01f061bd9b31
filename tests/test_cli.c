/* test_cli.c — the sdstream command as a user runs it: --version, tokenize, eval and usage
 * errors, through the built binary ($SD_BIN). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/safetensors.h"
#include "check.h"


int main(void) {
    const char *bin = getenv("SD_BIN"); /* override: test another build of the command */
    if (!bin || !*bin) bin = SD_BIN_DEFAULT;
    char cmd[16384], out[65536];

    snprintf(cmd, sizeof cmd, "'%s' --version", bin);
    CHECK(check_run(cmd, out, sizeof out) == 0, "--version exits 0");
    CHECK(strstr(out, "sdstream " SDSTREAM_VERSION) && strstr(out, "cpu"), "--version prints version and backends: %s", out);

    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s' 'a photo of a cat'", bin, check_ref("models/tiny-sd15"));
    CHECK(check_run(cmd, out, sizeof out) == 0, "tokenize exits 0");
    CHECK(strncmp(out, "49406 320 1125 539 320 2368 49407 49407", 39) == 0, "tokenize sd15: %.60s", out);
    int count = 0;
    for (char *tok = strtok(out, " \n"); tok; tok = strtok(NULL, " \n")) count++;
    CHECK(count == 77, "77 ids printed, got %d", count);

    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s' 'a photo of a cat'", bin, check_ref("models/tiny-sd21"));
    CHECK(check_run(cmd, out, sizeof out) == 0, "tokenize sd21 exits 0");
    CHECK(strncmp(out, "49406 320 1125 539 320 2368 49407 0 0", 37) == 0, "tokenize sd21 pads with 0: %.60s", out);

    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s' --tokenizer '%s' 'a photo of a cat'", bin,
             check_ref("models/tiny-sd15.safetensors"), check_ref("models/tiny-sd15/tokenizer"));
    CHECK(check_run(cmd, out, sizeof out) == 0 && strncmp(out, "49406 320 1125", 14) == 0, "tokenize a single file with --tokenizer");

    char result[4096]; /* check_ref/check_tmp return rotating buffers: keep our own copy */
    snprintf(result, sizeof result, "%s", check_tmp("cli_eval.safetensors"));
    snprintf(cmd, sizeof cmd, "'%s' eval --model '%s' --component text_encoder --input '%s' --output '%s' 2>&1", bin,
             check_ref("models/tiny-sd15"), check_ref("golden/text_encoder/tiny-sd15.safetensors"), result);
    CHECK(check_run(cmd, out, sizeof out) == 0, "eval exits 0: %s", out);
    sd_safetensors *st = NULL;
    CHECK_OK(sd_st_open(&st, result));
    if (st) {
        const sd_st_tensor *t = sd_st_find(st, "last_hidden_state");
        CHECK(t && t->ndim == 3 && t->shape[0] == 3 && t->shape[1] == 77 && t->shape[2] == 32, "eval writes [3, 77, 32]");
        sd_st_close(st);
    }

    snprintf(cmd, sizeof cmd, "'%s' eval --model '%s' --component text_encoder --input /nonexistent.safetensors --output '%s' 2>&1",
             bin, check_ref("models/tiny-sd15"), result);
    CHECK(check_run(cmd, out, sizeof out) == 1 && strstr(out, "/nonexistent.safetensors"), "missing input names the file: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' eval --dtype fp64 --model '%s' --component text_encoder --input '%s' --output '%s' 2>&1",
             bin, check_ref("models/tiny-sd15"), check_ref("golden/text_encoder/tiny-sd15.safetensors"), result);
    CHECK(check_run(cmd, out, sizeof out) == 2 && strstr(out, "--dtype takes fp32, bf16, fp16"), "--dtype fp64 is a usage error: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' eval --dtype bf16 --model '%s' --component text_encoder --input '%s' --output '%s' 2>&1",
             bin, check_ref("models/tiny-sd15"), check_ref("golden/text_encoder/tiny-sd15.safetensors"), result);
    CHECK(check_run(cmd, out, sizeof out) == 0, "eval --dtype bf16 runs: %s", out);
    char copy[4096]; /* eval never writes over its input */
    snprintf(copy, sizeof copy, "%s", check_tmp("cli_eval_input.safetensors"));
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && '%s' eval --model '%s' --component text_encoder --input '%s' --output '%s' 2>&1",
             check_ref("golden/text_encoder/tiny-sd15.safetensors"), copy, bin, check_ref("models/tiny-sd15"), copy, copy);
    CHECK(check_run(cmd, out, sizeof out) == 1 && strstr(out, "would be overwritten"), "eval --output = --input refused: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --bogus 2>&1", bin);
    CHECK(check_run(cmd, out, sizeof out) == 2 && strstr(out, "--bogus"), "unknown option is a usage error: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' frobnicate 2>&1", bin);
    CHECK(check_run(cmd, out, sizeof out) == 2, "unknown command is a usage error");
    snprintf(cmd, sizeof cmd, "'%s' tokenize 'x' 2>&1", bin);
    CHECK(check_run(cmd, out, sizeof out) == 2 && strstr(out, "--model is required"), "missing --model is named: %s", out);
    return check_finish();
}
