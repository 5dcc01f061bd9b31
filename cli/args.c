/* args.c — see args.h. */
#include "args.h"

#include <string.h>

#include "log.h"

/* Short aliases: the sd.cpp spellings, for the options of that name a command has. */
static const struct {
    char letter;
    const char *name;
} short_aliases[] = {{'m', "model"}, {'p', "prompt"}, {'o', "output"}, {'W', "width"},
                     {'H', "height"}, {'s', "seed"},  {'h', "help"},   {'i', "input"}};

static args_option *find(args *a, const char *name, size_t len) {
    for (int i = 0; i < a->n_options; i++)
        if (strlen(a->options[i].name) == len && strncmp(a->options[i].name, name, len) == 0) return &a->options[i];
    return NULL;
}

void args_add(args *a, const char *name, bool is_flag, const char *help) {
    if (a->n_options < ARGS_MAX_OPTIONS && !find(a, name, strlen(name)))
        a->options[a->n_options++] = (args_option){.name = name, .is_flag = is_flag, .help = help};
}

void args_require(args *a, const char *name) {
    args_option *o = find(a, name, strlen(name));
    if (o) o->required = true;
}

static char short_of(const char *name) {
    for (size_t i = 0; i < sizeof short_aliases / sizeof short_aliases[0]; i++)
        if (strcmp(short_aliases[i].name, name) == 0) return short_aliases[i].letter;
    return 0;
}

/* Levenshtein distance, capped at 9 (only small distances matter for a suggestion). */
static int edit_distance(const char *x, const char *y) {
    size_t n = strlen(x), m = strlen(y);
    if (n > 40 || m > 40) return 9;
    int row[41];
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j], best = diag + (x[i - 1] != y[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[m] > 9 ? 9 : row[m];
}

const char *args_closest(const char *word, const char *const *candidates, int n) {
    const char *best = NULL;
    int best_d = 9;
    size_t len = strlen(word);
    for (int i = 0; i < n; i++) {
        int d = edit_distance(word, candidates[i]);
        if (len >= 3 && strncmp(word, candidates[i], len) == 0) d = d < 1 ? d : 1; /* a prefix: --neg */
        if (d < best_d) best_d = d, best = candidates[i];
    }
    /* close enough to be a typo: at most 2 edits, fewer for short words */
    return best && best_d <= (len <= 4 ? 1 : 2) ? best : NULL;
}

static void unknown_option(const args *a, const char *name, size_t len) {
    char word[64];
    snprintf(word, sizeof word, "%.*s", (int)(len < 63 ? len : 63), name);
    const char *names[ARGS_MAX_OPTIONS];
    for (int i = 0; i < a->n_options; i++) names[i] = a->options[i].name;
    const char *near = args_closest(word, names, a->n_options);
    if (near) cli_log_error("unknown option '--%s'; did you mean '--%s'? (see --help)", word, near);
    else cli_log_error("unknown option '--%s' (see --help)", word);
}

int args_parse(args *a, int argc, char **argv) {
    /* JSON lines from the first message on, parse errors included */
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--json-stats") == 0 && find(a, "json-stats", 10)) cli_log_set_json(true);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *name, *eq = NULL;
        size_t len;
        if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0' && arg[2] == '\0') { /* -m */
            name = NULL;
            for (size_t k = 0; k < sizeof short_aliases / sizeof short_aliases[0] && !name; k++)
                if (short_aliases[k].letter == arg[1] && find(a, short_aliases[k].name, strlen(short_aliases[k].name)))
                    name = short_aliases[k].name;
            if (!name) {
                cli_log_error("unknown option '%s' (see --help)", arg);
                return 2;
            }
            len = strlen(name);
        } else if (strncmp(arg, "--", 2) == 0 && arg[2] != '\0') {
            name = arg + 2;
            eq = strchr(name, '=');
            len = eq ? (size_t)(eq - name) : strlen(name);
        } else { /* a positional argument, or "-" meaning stdin/stdout as an option's value */
            if (a->n_positional >= a->max_positional || a->n_positional == ARGS_MAX_POSITIONAL) {
                cli_log_error("unexpected argument '%s' (options start with --; see --help)", arg);
                return 2;
            }
            a->positional[a->n_positional++] = arg;
            continue;
        }
        args_option *opt = find(a, name, len);
        if (!opt) {
            unknown_option(a, name, len);
            return 2;
        }
        if (opt->is_flag) {
            if (eq) {
                cli_log_error("option '--%s' takes no value", opt->name);
                return 2;
            }
            opt->value = "1";
        } else if (eq) {
            opt->value = eq + 1;
        } else if (i + 1 < argc) {
            opt->value = argv[++i];
        } else {
            cli_log_error("option '--%s' needs a value", opt->name);
            return 2;
        }
        if (!opt->is_flag) {
            if (opt->n_values == ARGS_MAX_REPEATS) {
                cli_log_error("option '--%s' given more than %d times", opt->name, ARGS_MAX_REPEATS);
                return 2;
            }
            opt->values[opt->n_values++] = opt->value;
        }
    }
    if (args_flag(a, "help")) {
        args_print_help(a, stdout);
        return 0;
    }
    for (int i = 0; i < a->n_options; i++)
        if (a->options[i].required && !a->options[i].value) {
            cli_log_error("--%s is required (usage: %s; see --help)", a->options[i].name,
                    a->usage ? a->usage : "see --help");
            return 2;
        }
    return -1;
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

void args_print_help(const args *a, FILE *out) {
    if (a->usage) fprintf(out, "usage: %s\n", a->usage);
    fprintf(out, "options:\n");
    for (int i = 0; i < a->n_options; i++) {
        const args_option *o = &a->options[i];
        char left[64], letter = short_of(o->name);
        if (letter) snprintf(left, sizeof left, "-%c, --%s%s", letter, o->name, o->is_flag ? "" : " V");
        else snprintf(left, sizeof left, "    --%s%s", o->name, o->is_flag ? "" : " V");
        fprintf(out, "  %-28s %s%s\n", left, o->help, o->required ? " (required)" : "");
    }
    if (a->notes) fprintf(out, "%s", a->notes);
}
