/* op_profile.c — see op_profile.h. A small open table keyed by op string; profiling only. */
#include "backend/op_profile.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_ROWS = 512 };

typedef struct op_row {
    char key[72];
    double ms, flops;
    long calls;
} op_row;

struct sd_op_profile {
    op_row rows[MAX_ROWS];
    int n;
};

sd_op_profile *sd_op_profile_from_env(void) {
    const char *env = getenv("SDSTREAM_PROFILE");
    if (!env || !*env || strcmp(env, "0") == 0) return NULL;
    return calloc(1, sizeof(sd_op_profile));
}

void sd_op_profile_add(sd_op_profile *p, const char *key, double ms, double flops) {
    int i = 0;
    while (i < p->n && strcmp(p->rows[i].key, key) != 0) i++;
    if (i == p->n) {
        if (p->n == MAX_ROWS - 1) { /* full: the last row lumps the rest together */
            key = "(other)";
            for (i = 0; i < p->n && strcmp(p->rows[i].key, key) != 0; i++) {}
        }
        if (i == p->n) snprintf(p->rows[p->n++].key, sizeof p->rows[i].key, "%s", key);
    }
    p->rows[i].ms += ms;
    p->rows[i].flops += flops;
    p->rows[i].calls++;
}

static int by_time_desc(const void *a, const void *b) {
    double x = ((const op_row *)a)->ms, y = ((const op_row *)b)->ms;
    return (x < y) - (x > y);
}

void sd_op_profile_print(const sd_op_profile *p, FILE *f, const char *title) {
    if (!p || p->n == 0) return;
    op_row *rows = malloc((size_t)p->n * sizeof *rows);
    if (!rows) return;
    memcpy(rows, p->rows, (size_t)p->n * sizeof *rows);
    qsort(rows, (size_t)p->n, sizeof *rows, by_time_desc);
    double total = 0;
    for (int i = 0; i < p->n; i++) total += rows[i].ms;
    fprintf(f, "op profile (%s): %.1f ms in ops\n%-44s %7s %10s %6s %9s\n", title, total, "op", "calls", "ms", "%",
            "GFLOP/s");
    for (int i = 0; i < p->n; i++) {
        const op_row *r = &rows[i];
        fprintf(f, "%-44s %7ld %10.2f %5.1f%%", r->key, r->calls, r->ms, total > 0 ? 100.0 * r->ms / total : 0.0);
        if (r->flops > 0 && r->ms > 0) fprintf(f, " %9.1f", r->flops / (r->ms * 1e6));
        fputc('\n', f);
    }
    free(rows);
}

void sd_op_profile_free(sd_op_profile *p) { free(p); }
