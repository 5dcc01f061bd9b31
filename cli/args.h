/* args.h — option parsing for the sdstream subcommands: "--name value", "--name=value", the short
 * aliases users of sd.cpp expect (-m -p -o -W -H -s, -h), flags and positional arguments. An
 * option is one args_add line; a required one is args_require'd. Unknown options are errors with
 * the closest known option suggested, never ignored.
 *
 * Streams: --help prints the usage and the options on stdout (so `sdstream stream --help | less`
 * works); every error goes to stderr. */
#ifndef SD_CLI_ARGS_H
#define SD_CLI_ARGS_H

#include <stdbool.h>
#include <stdio.h>

enum { ARGS_MAX_OPTIONS = 64, ARGS_MAX_POSITIONAL = 8, ARGS_MAX_REPEATS = 16 };

typedef struct args_option {
    const char *name; /* without the leading "--" */
    bool is_flag;     /* takes no value */
    bool required;
    const char *help;
    const char *value; /* filled by args_parse; "1" for a set flag, NULL when absent */
    const char *values[ARGS_MAX_REPEATS]; /* every value of an option given several times (--lora) */
    int n_values;
} args_option;

typedef struct args {
    const char *usage; /* "sdstream stream --model M --prompt TEXT ..." (first line of --help) */
    const char *notes; /* optional text printed after the options */
    int max_positional; /* positional arguments accepted (default 0) */
    args_option options[ARGS_MAX_OPTIONS];
    int n_options;
    const char *positional[ARGS_MAX_POSITIONAL];
    int n_positional;
} args;

void args_add(args *a, const char *name, bool is_flag, const char *help);
/* Marks an added option as required: a run without it fails naming it ("--prompt is required"). */
void args_require(args *a, const char *name);
/* Parses argv. Returns -1 to go on, or the exit code the command should return: 0 after --help
 * (printed on stdout), 2 after a usage error (printed on stderr). */
int args_parse(args *a, int argc, char **argv);
const char *args_get(const args *a, const char *name);
bool args_flag(const args *a, const char *name);
/* Every value of a repeatable option, in order; returns their number (0 when absent). */
int args_get_all(const args *a, const char *name, const char *const **values);
/* The usage line and every option with its help. */
void args_print_help(const args *a, FILE *out);
/* The candidate closest to word by edit distance (NULL when none is close enough to suggest). */
const char *args_closest(const char *word, const char *const *candidates, int n);

#endif
