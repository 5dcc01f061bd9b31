/* args.c — see args.h. */
#include "args.h"

#include <stdio.h>
#include <string.h>

void args_add(args *a, const char *name, bool is_flag, const char *help) {
    if (a->n_options < ARGS_MAX_OPTIONS) a->options[a->n_options++] = (args_option){.name = name, .is_flag = is_flag, .help = help};
}

static args_option *find(args *a, const char *name, size_t len) {
    for (int i = 0; i < a->n_options; i++)
        if (strlen(a->options[i].name) == len && strncmp(a->options[i].name, name, len) == 0) return &a->options[i];
    return NULL;
}

int args_parse(args *a, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (a->n_positional == ARGS_MAX_POSITIONAL) {
                fprintf(stderr, "error: too many arguments (at '%s')\n", arg);
                return 2;
            }
            a->positional[a->n_positional++] = arg;
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        args_option *opt = find(a, name, len);
        if (!opt) {
            fprintf(stderr, "error: unknown option '--%.*s' (see --help)\n", (int)len, name);
            return 2;
        }
        if (opt->is_flag) {
            if (eq) {
                fprintf(stderr, "error: option '--%s' takes no value\n", opt->name);
                return 2;
            }
            opt->value = "1";
        } else if (eq) {
            opt->value = eq + 1;
        } else if (i + 1 < argc) {
            opt->value = argv[++i];
        } else {
            fprintf(stderr, "error: option '--%s' needs a value\n", opt->name);
            return 2;
        }
        if (!opt->is_flag) {
            if (opt->n_values == ARGS_MAX_REPEATS) {
                fprintf(stderr, "error: option '--%s' given more than %d times\n", opt->name, ARGS_MAX_REPEATS);
                return 2;
            }
            opt->values[opt->n_values++] = opt->value;
        }
    }
    return 0;
}

const char *args_get(const args *a, const char *name) {
    for (int i = 0; i < a->n_options; i++)
        if (strcmp(a->options[i].name, name) == 0) return a->options[i].value;
    return NULL;
}

bool args_flag(const args *a, const char *name) { return args_get(a, name) != NULL; }

int args_get_all(const args *a, const char *name, const char *const **values) {
    for (int i = 0; i < a->n_options; i++)
        if (strcmp(a->options[i].name, name) == 0) {
            *values = a->options[i].values;
            return a->options[i].n_values;
        }
    *values = NULL;
    return 0;
}

void args_print_options(const args *a) {
    for (int i = 0; i < a->n_options; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", a->options[i].name, a->options[i].is_flag ? "" : " V");
        fprintf(stderr, "  %-24s %s\n", left, a->options[i].help);
    }
}
