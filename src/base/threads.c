/* threads.c — the persistent thread pool behind sd_pool_for (see threads.h).
 *
 * A job is published in one 64-bit word, `state` = generation << 33 | closed << 32 | joined.
 * Workers notice a new generation by spinning for a short while (SPIN_ROUNDS pause loops, tens of
 * microseconds) and otherwise sleep on a condition variable; a worker takes part only if it can
 * join (CAS joined + 1) before the caller closes the job. The caller claims chunks too; when none
 * are left it closes the job and waits only for the workers that joined. So a worker that another
 * process has descheduled never holds up an op (measured on the shared 2-core build machine:
 * waiting for every worker made 2 threads slower than 1 while a fuzzer ran on the other core).
 * No allocation happens after sd_pool_create. */
#include "base/threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

enum { SD_POOL_MAX_THREADS = 256, SPIN_ROUNDS = 4000 };

#define STATE_CLOSED (UINT64_C(1) << 32)
#define STATE_GEN(s) ((s) >> 33)
#define STATE_JOINED(s) ((s) & 0xffffffffu)

typedef struct sd_pool_worker {
    sd_pool *pool;
    int index; /* 1 .. n_threads - 1; the caller is thread 0 */
    pthread_t thread;
} sd_pool_worker;

struct sd_pool {
    int n_threads;
    sd_pool_worker *workers;
    int n_started;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_uint_fast64_t state; /* generation << 33 | closed << 32 | workers joined */
    uint64_t generation;        /* the caller's copy of the current generation */
    atomic_bool quit;
    atomic_flag busy;    /* set while a job runs: nested or concurrent calls run serially */
    atomic_int finished; /* joined workers done with the current job */
    atomic_llong next;   /* next unclaimed chunk */
    /* the current job, written before generation is bumped */
    sd_pool_fn fn;
    void *ctx;
    int64_t n, grain, n_chunks;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void run_chunks(sd_pool *pool, int thread) {
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
        if (c >= pool->n_chunks) break;
        int64_t begin = c * pool->grain, end = begin + pool->grain < pool->n ? begin + pool->grain : pool->n;
        pool->fn(pool->ctx, begin, end, thread);
    }
}

static void *worker_main(void *arg) {
    sd_pool_worker *w = arg;
    sd_pool *pool = w->pool;
    uint64_t seen = 0; /* the generation at creation: a job posted before this thread ran is not missed */
    for (;;) {
        uint64_t st = 0;
        for (int i = 0; i < SPIN_ROUNDS; i++) {
            st = atomic_load_explicit(&pool->state, memory_order_acquire);
            if (STATE_GEN(st) != seen || atomic_load_explicit(&pool->quit, memory_order_relaxed)) break;
            cpu_relax();
        }
        if (STATE_GEN(st) == seen && !atomic_load(&pool->quit)) {
            pthread_mutex_lock(&pool->mutex);
            while (STATE_GEN(st = atomic_load(&pool->state)) == seen && !atomic_load(&pool->quit))
                pthread_cond_wait(&pool->wake, &pool->mutex);
            pthread_mutex_unlock(&pool->mutex);
        }
        if (atomic_load(&pool->quit)) break;
        seen = STATE_GEN(st);
        /* join unless the caller has already closed this job (or moved on to a later one) */
        bool joined = false;
        while (STATE_GEN(st) == seen && !(st & STATE_CLOSED)) {
            if (atomic_compare_exchange_weak_explicit(&pool->state, &st, st + 1, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                joined = true;
                break;
            }
        }
        if (!joined) continue;
        run_chunks(pool, w->index);
        atomic_fetch_add_explicit(&pool->finished, 1, memory_order_release);
    }
    return NULL;
}

sd_status sd_pool_create(sd_pool **out, int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > SD_POOL_MAX_THREADS) n_threads = SD_POOL_MAX_THREADS;
    sd_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return sd_fail(SD_ERR_NOMEM, "thread pool: out of memory");
    pool->n_threads = n_threads;
    atomic_init(&pool->state, 0);
    atomic_init(&pool->quit, false);
    atomic_flag_clear(&pool->busy);
    atomic_init(&pool->finished, 0);
    atomic_init(&pool->next, 0);
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    if (n_threads > 1) {
        pool->workers = calloc((size_t)n_threads - 1, sizeof *pool->workers);
        if (!pool->workers) {
            sd_pool_free(pool);
            return sd_fail(SD_ERR_NOMEM, "thread pool: out of memory");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            pool->workers[i] = (sd_pool_worker){pool, i + 1, 0};
            if (pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]) != 0) {
                sd_pool_free(pool);
                return sd_fail(SD_ERR_IO, "thread pool: cannot start thread %d of %d", i + 2, n_threads);
            }
            pool->n_started++;
        }
    }
    *out = pool;
    return SD_OK;
}

void sd_pool_free(sd_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->quit, true);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 0; i < pool->n_started; i++) pthread_join(pool->workers[i].thread, NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->workers);
    free(pool);
}

int sd_pool_threads(const sd_pool *pool) { return pool ? pool->n_threads : 1; }

int64_t sd_pool_grain(const sd_pool *pool, int64_t n, int per_thread, int64_t min_grain) {
    int64_t chunks = (int64_t)sd_pool_threads(pool) * (per_thread > 0 ? per_thread : 1);
    int64_t g = (n + chunks - 1) / chunks;
    if (g < min_grain) g = min_grain;
    return g < 1 ? 1 : g;
}

void sd_pool_for(sd_pool *pool, int64_t n, int64_t grain, sd_pool_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t n_chunks = (n + grain - 1) / grain;
    if (!pool || pool->n_started == 0 || n_chunks == 1 || atomic_flag_test_and_set(&pool->busy)) {
        for (int64_t b = 0; b < n; b += grain) fn(ctx, b, b + grain < n ? b + grain : n, 0);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n = n;
    pool->grain = grain;
    pool->n_chunks = n_chunks;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->finished, 0, memory_order_relaxed);
    pool->generation = (pool->generation + 1) & ((UINT64_C(1) << 31) - 1);
    /* publish the job; the mutex pairs with the workers' check-then-wait so no wake is lost */
    pthread_mutex_lock(&pool->mutex);
    atomic_store_explicit(&pool->state, pool->generation << 33, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    run_chunks(pool, 0);
    /* no chunk left: close the job and wait only for the workers that joined it */
    uint64_t st = atomic_fetch_or_explicit(&pool->state, STATE_CLOSED, memory_order_acq_rel);
    int joined = (int)STATE_JOINED(st);
    for (int spins = 0; atomic_load_explicit(&pool->finished, memory_order_acquire) < joined; spins++) {
        if (spins < SPIN_ROUNDS) cpu_relax();
        else sched_yield();
    }
    atomic_flag_clear(&pool->busy);
}
