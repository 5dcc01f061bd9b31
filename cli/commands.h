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
/* The whole unsigned 64-bit range; negatives, signs and overflow are refused, never clamped. */
int cli_parse_seed(const char *text, const char *name, uint64_t *out);
int cli_parse_float(const char *text, const char *name, double lo, double hi, double *out);
int cli_parse_cfg(const char *text, sd_cfg_type *out);
/* Reads --seed, --t-index-list, --strength, --steps, --width, --height, --guidance, --cfg-type,
 * --vae into p, with the t-index list's range and order checked. Returns 0 or 2. */
int cli_stream_params(const args *a, sd_stream_params *p);
/* Refuses guidance options that would do nothing (--guidance with cfg none, a cfg type with
 * guidance <= 1, --negative-prompt without full/initialize guidance). Returns 0 or 2. */
int cli_check_guidance(const args *a, const sd_stream_params *p);
/* sd_stream_params_check as a usage error (2), before the model loads. */
int cli_check_stream_params(const sd_stream_params *p);
/* The components a txt2img/img2img/stream run needs: all but the full VAE when --taesd is given
 * without --vae. */
unsigned cli_pipeline_components(const args *a);

/* Adds --model (required), --tokenizer, --config, --taesd, --variant, --dtype, --threads, --help. */
void cli_add_model_options(args *a);
void cli_add_threads_option(args *a);
/* --dtype, --variant, --threads and $SDSTREAM_THREADS: 0, or 2 after printing the problem. */
int cli_check_model_options(const args *a);
/* The thread count of --threads (0: the default). 0 or 2. */
int cli_threads(const args *a, int *n_threads);
/* Loads the model the options name with progress on stderr and the load time; prints the error
 * and returns NULL on failure. */
sd_model *cli_load_model(const args *a, unsigned components);
/* The same model with no --lora fused (bench compares the two loads). */
sd_model *cli_load_model_without_loras(const args *a, unsigned components);
/* Warns when a prompt is longer than CLIP's 75 tokens, naming where it was cut. */
void cli_warn_long_prompt(sd_model *model, const char *option, const char *prompt);
/* Monotonic milliseconds, for progress and stage timings. */
double cli_now_ms(void);
/* Prints "error: <message>" for the last failure and returns 1. */
int cli_error(sd_status status);

#endif
