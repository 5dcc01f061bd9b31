/* commands.h — the sdstream subcommands. Each takes the arguments after its name and returns the
 * process exit code: 0 success, 1 failure (message on stderr), 2 usage error. */
#ifndef SD_CLI_COMMANDS_H
#define SD_CLI_COMMANDS_H

#include "args.h"
#include "sdstream.h"

int cmd_tokenize(int argc, char **argv);
int cmd_eval(int argc, char **argv);

/* Adds --model, --tokenizer, --config, --taesd, --variant. */
void cli_add_model_options(args *a);
/* Loads the model the options name; prints the error and returns NULL on failure. */
sd_model *cli_load_model(const args *a, unsigned components);
/* Prints "error: <message>" for the last failure and returns 1. */
int cli_error(sd_status status);

#endif
