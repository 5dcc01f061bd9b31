/* clock.h — monotonic milliseconds for stage timings. */
#ifndef SD_BASE_CLOCK_H
#define SD_BASE_CLOCK_H

#include <time.h>

static inline double sd_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

#endif
