/* cmd_tokenize.c — `sdstream tokenize --model M "prompt"`: prints the 77 token ids. */
#include <stdio.h>

#include "commands.h"

int cmd_tokenize(int argc, char **argv) {
    args a = {0};
    cli_add_model_options(&a);
    int rc = args_parse(&a, argc, argv);
    if (rc || args_flag(&a, "help") || a.n_positional != 1) {
        fprintf(stderr, "usage: sdstream tokenize --model M [--tokenizer DIR] \"prompt\"\n");
        args_print_options(&a);
        return rc ? rc : (args_flag(&a, "help") ? 0 : 2);
    }
    sd_model *model = cli_load_model(&a, SD_COMPONENT_TOKENIZER);
    if (!model) return 1;
    int32_t ids[SD_TOKENS];
    sd_status st = sd_model_tokenize(model, a.positional[0], ids);
    if (st == SD_OK) {
        for (int i = 0; i < SD_TOKENS; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        printf("\n");
    }
    sd_model_free(model);
    return st == SD_OK ? 0 : cli_error(st);
}
