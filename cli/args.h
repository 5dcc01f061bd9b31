/* args.h — minimal option parsing for the sdstream subcommands: "--name value" and "--name=value"
 * options, a few flags, positional arguments. Unknown options are errors, never ignored. */
#ifndef SD_CLI_ARGS_H
#define SD_CLI_ARGS_H

#include <stdbool.h>

enum { ARGS_MAX_OPTIONS = 48, ARGS_MAX_POSITIONAL = 8, ARGS_MAX_REPEATS = 16 };

typedef struct args_option {
    const char *name; /* without the leading "--" */
    bool is_flag;     /* takes no value */
    const char *help;
    const char *value; /* filled by args_parse; "1" for a set flag, NULL when absent */
    const char *values[ARGS_MAX_REPEATS]; /* every value of an option given several times (--lora) */
    int n_values;
} args_option;

typedef struct args {
    args_option options[ARGS_MAX_OPTIONS];
    int n_options;
    const char *positional[ARGS_MAX_POSITIONAL];
    int n_positional;
} args;

void args_add(args *a, const char *name, bool is_flag, const char *help);
/* Returns 0, or prints the problem to stderr and returns 2 (usage error). */
int args_parse(args *a, int argc, char **argv);
const char *args_get(const args *a, const char *name);
bool args_flag(const args *a, const char *name);
/* Every value of a repeatable option, in order; returns their number (0 when absent). */
int args_get_all(const args *a, const char *name, const char *const **values);
void args_print_options(const args *a);

#endif
