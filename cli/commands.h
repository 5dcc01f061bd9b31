/* commands.h — the sdstream subcommands. Each takes the arguments after its name and returns the
 * process exit code: 0 success, 1 failure (message on stderr), 2 usage error. */
#ifndef SD_CLI_COMMANDS_H
#define SD_CLI_COMMANDS_H

#include "args.h"
#include "sdstream.h"

int cmd_tokenize(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_txt2img(int argc, char **argv);
int cmd_img2img(int argc, char **argv);
int cmd_make_model(int argc, char **argv);
int cmd_stream(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_pull(int argc, char **argv);
/* Downloads id into the Hugging Face cache with progress on stderr; prints the snapshot folder.
 * Returns 0 or 1 (error printed). */
int cli_pull(const char *id, const char *revision, const char *variant, const char *endpoint);
/* For each --model/--taesd/--lora that is a Hugging Face id not in the cache: pulls it. On failure
 * prints what to download by hand and where, and a command that needs no download; returns 1. */
int cli_pull_missing(const args *a);

/* Option value parsers: print the problem and return 2 on a bad value. */
int cli_parse_int(const char *text, const char *name, long lo, long hi, long *out);
int cli_parse_float(const char *text, const char *name, double lo, double hi, double *out);
int cli_parse_cfg(const char *text, sd_cfg_type *out);
/* Reads --seed, --t-index-list, --strength, --steps, --width, --height, --guidance, --cfg-type,
 * --vae into p. Returns 0 or 2. */
int cli_stream_params(const args *a, sd_stream_params *p);
/* The components a txt2img/img2img/stream run needs: all but the full VAE when --taesd is given
 * without --vae. */
unsigned cli_pipeline_components(const args *a);

/* Adds --model, --tokenizer, --config, --taesd, --variant. */
void cli_add_model_options(args *a);
/* Loads the model the options name; prints the error and returns NULL on failure. */
sd_model *cli_load_model(const args *a, unsigned components);
/* Monotonic milliseconds, for progress and stage timings. */
double cli_now_ms(void);
/* Prints "error: <message>" for the last failure and returns 1. */
int cli_error(sd_status status);

#endif
