/* similar_filter.h — StreamDiffusion's stochastic similarity filter (image_filter.py): a frame whose
 * cosine similarity with the last processed frame is high is skipped with probability
 * max(0, 1 - (1 - cos) / (1 - threshold)), drawn with Python's random (same seed, same draws),
 * and at most max_skip + 1 skips between forced frames (upstream's rule: a skip is allowed while
 * skip_count <= max_skip; the count resets only when a frame is forced through, not when a
 * dissimilar frame is processed). */
#ifndef SD_STREAM_SIMILAR_FILTER_H
#define SD_STREAM_SIMILAR_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/rng.h"

typedef struct sd_similar_filter {
    float threshold;
    int max_skip;
    int skip_count;
    bool has_prev;
    float *prev; /* last processed frame, n floats (owned) */
    size_t n;
    sd_rng rng;
    double last_cos, last_draw; /* for inspection and tests */
} sd_similar_filter;

/* n: floats per call (frame_buffer_size x 3 x H x W). */
bool sd_similar_filter_init(sd_similar_filter *f, float threshold, int max_skip, uint64_t seed, size_t n);
void sd_similar_filter_free(sd_similar_filter *f);
/* Returns true when the frame x (n floats, the preprocessed [-1, 1] image) should be skipped. */
bool sd_similar_filter_skip(sd_similar_filter *f, const float *x);

#endif
