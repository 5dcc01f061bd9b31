/* similar_filter.c — see similar_filter.h. The cosine is accumulated in double; the goldens'
 * borderline frames are far from the draws, so float-order differences cannot flip a decision. */
#include "stream/similar_filter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool sd_similar_filter_init(sd_similar_filter *f, float threshold, int max_skip, uint64_t seed, size_t n) {
    memset(f, 0, sizeof *f);
    f->threshold = threshold;
    f->max_skip = max_skip;
    f->n = n;
    f->prev = malloc(n * sizeof *f->prev);
    sd_rng_seed_python(&f->rng, seed);
    return f->prev != NULL;
}

void sd_similar_filter_free(sd_similar_filter *f) {
    if (!f) return;
    free(f->prev);
    memset(f, 0, sizeof *f);
}

/* torch.nn.CosineSimilarity(dim=0, eps=1e-6) of the flattened frames */
static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    const double eps = 1e-6;
    return ab / (fmax(sqrt(aa), eps) * fmax(sqrt(bb), eps));
}

bool sd_similar_filter_skip(sd_similar_filter *f, const float *x) {
    if (!f->has_prev) {
        memcpy(f->prev, x, f->n * sizeof *x);
        f->has_prev = true;
        return false;
    }
    double cos = cosine(f->prev, x, f->n);
    double draw = sd_rng_python_random(&f->rng); /* random.uniform(0, 1) */
    double skip_prob = f->threshold >= 1.0f ? 0.0 : fmax(0.0, 1.0 - (1.0 - cos) / (1.0 - (double)f->threshold));
    f->last_cos = cos;
    f->last_draw = draw;
    if (skip_prob < draw) {
        memcpy(f->prev, x, f->n * sizeof *x);
        return false;
    }
    if (f->skip_count > f->max_skip) { /* forced: upstream resets the count only here */
        f->skip_count = 0;
        memcpy(f->prev, x, f->n * sizeof *x);
        return false;
    }
    f->skip_count++;
    return true;
}
