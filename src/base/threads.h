/* threads.h — a persistent thread pool for data-parallel loops (the CPU backend's ops).
 *
 * Usage:
 *     sd_pool *pool;
 *     SD_TRY(sd_pool_create(&pool, 4));            // 3 workers + the calling thread
 *     sd_pool_for(pool, n_rows, 16, row_fn, &ctx); // row_fn(ctx, begin, end, thread) per chunk
 *     sd_pool_free(pool);
 *
 * sd_pool_for splits [0, n) into fixed chunks of `grain` items (the last one shorter) and hands
 * them out to the workers and the caller through an atomic counter, so a core slowed by another
 * process simply takes fewer chunks. `thread` (0 .. sd_pool_threads() - 1) is stable for the
 * duration of one call and indexes per-thread scratch. The call returns when every chunk is done.
 *
 * Nothing is allocated per call. Workers spin briefly after a job (ops come back to back, and a
 * condition-variable wake costs tens of microseconds) and then sleep on a condition variable.
 *
 * Thread safety: a call made while the pool is busy — from inside a chunk (nesting) or from a second
 * thread — runs its loop serially on the calling thread (as thread 0 of a one-thread pool), which is
 * always correct. A NULL pool also runs serially. sd_pool_create fails with SD_ERR_NOMEM or
 * SD_ERR_IO (thread creation) and leaves *out untouched.
 */
#ifndef SD_BASE_THREADS_H
#define SD_BASE_THREADS_H

#include <stdint.h>

#include "base/status.h"

typedef struct sd_pool sd_pool;

/* Processes items [begin, end) on pool thread `thread`. */
typedef void (*sd_pool_fn)(void *ctx, int64_t begin, int64_t end, int thread);

/* n_threads counts the caller: n_threads - 1 workers are started (n_threads <= 1: none). */
sd_status sd_pool_create(sd_pool **out, int n_threads);
void sd_pool_free(sd_pool *pool);
/* Threads a loop may use (>= 1); 1 for a NULL pool. */
int sd_pool_threads(const sd_pool *pool);
/* Runs fn over [0, n) in chunks of grain (grain < 1 is taken as 1). */
void sd_pool_for(sd_pool *pool, int64_t n, int64_t grain, sd_pool_fn fn, void *ctx);
/* A grain that gives about `per_thread` chunks per thread for n items (at least min_grain). */
int64_t sd_pool_grain(const sd_pool *pool, int64_t n, int per_thread, int64_t min_grain);

#endif
