/* cmd_tokenize.c — `sdstream tokenize --model M "prompt"`: prints the 77 token ids. */
#include <stdio.h>

#include "commands.h"
#include "log.h"

int cmd_tokenize(int argc, char **argv) {
    args a = {.usage = "sdstream tokenize --model M [--tokenizer DIR] \"prompt\"", .max_positional = 1};
    cli_add_model_options(&a);
    int rc = args_parse(&a, argc, argv);
    if (rc >= 0) return rc;
    if (a.n_positional != 1) {
        cli_log_error("give the prompt to tokenize (usage: %s)", a.usage);
        return 2;
    }
    if (cli_check_model_options(&a)) return 2;
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
