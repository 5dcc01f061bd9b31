/* test_stream_alloc.c — nothing allocates in the frame loop after warm-up. Every allocation of the
 * process (the library's, OpenBLAS's, libc's) is counted by an allocator hook: glibc's malloc
 * family interposed in this executable, or, under AddressSanitizer (which owns malloc), its
 * allocation hooks. After three warm-up frames, ten more frames must make zero allocations: the
 * synchronous API (stream batch + self-CFG + KL VAE, and sequential + TAESD + the similarity
 * filter) and the threaded runner (counted from inside the sink, mid-run). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static atomic_int g_counting;
static atomic_long g_allocations;

static void note(void) {
    if (atomic_load_explicit(&g_counting, memory_order_relaxed)) atomic_fetch_add(&g_allocations, 1);
}

#if defined(__SANITIZE_ADDRESS__)
/* from compiler-rt's sanitizer/allocator_interface.h, which GCC's libasan has but does not install */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
static void on_malloc(const volatile void *ptr, size_t size) {
    (void)ptr, (void)size;
    note();
}
static void on_free(const volatile void *ptr) { (void)ptr; }
static void install_hook(void) { __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free); }
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
void *malloc(size_t n) { note(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { note(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { note(); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *aligned_alloc(size_t al, size_t n) { note(); return __libc_memalign(al, n); }
void *memalign(size_t al, size_t n) { note(); return __libc_memalign(al, n); }
int posix_memalign(void **out, size_t al, size_t n) {
    note();
    void *p = __libc_memalign(al, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
static void install_hook(void) {}
#endif

enum { W = 64, H = 64, FRAME = W * H * 3 };

static void frame(uint8_t *rgb, int seed) {
    for (int i = 0; i < FRAME; i++) rgb[i] = (uint8_t)((i * 7 + seed * 13 + (i / (W * 3)) * 5) & 0xff);
}

static long count_frames(sd_stream *s, int from, int to) {
    static uint8_t in[FRAME], out[FRAME];
    long before = 0;
    for (int k = 0; k < to; k++) {
        frame(in, k % 4 == 3 ? k - 1 : k); /* some repeats, so the filter has something to skip */
        if (k == from) {
            before = atomic_load(&g_allocations);
            atomic_store(&g_counting, 1);
        }
        CHECK_OK(sd_stream_img2img(s, in, out, NULL));
    }
    atomic_store(&g_counting, 0);
    return atomic_load(&g_allocations) - before;
}

typedef struct run_ctx {
    int produced, written;
    long at_start;
} run_ctx;

static int src_read(void *user, uint8_t *rgb) {
    run_ctx *c = user;
    if (c->produced >= 16) return 0;
    frame(rgb, c->produced++);
    return 1;
}

static int sink_write(void *user, const uint8_t *rgb) {
    run_ctx *c = user;
    (void)rgb;
    if (++c->written == 4) { /* warm-up done: count from here */
        c->at_start = atomic_load(&g_allocations);
        atomic_store(&g_counting, 1);
    }
    if (c->written == 13) atomic_store(&g_counting, 0);
    return 0;
}

int main(void) {
    install_hook();
    char model[4096], taesd[4096];
    snprintf(model, sizeof model, "%s", check_ref("models/tiny-sd15"));
    snprintf(taesd, sizeof taesd, "%s", check_ref("models/taesd"));
    sd_model_params mp = sd_model_params_default();
    mp.path = model, mp.taesd_path = taesd;
    sd_model *m = NULL;
    CHECK_OK(sd_model_load(&m, &mp));
    if (!m) return check_finish();

    sd_stream_params p = sd_stream_params_default();
    p.width = W, p.height = H;
    p.cfg_type = SD_CFG_SELF;
    p.use_taesd = 0; /* KL VAE: encode samples noise each frame */
    sd_stream *s = NULL;
    /* the hook sees allocations: creating a stream makes some */
    long before = atomic_load(&g_allocations);
    atomic_store(&g_counting, 1);
    CHECK_OK(sd_stream_create(&s, m, &p));
    atomic_store(&g_counting, 0);
    CHECK(atomic_load(&g_allocations) - before > 0, "the allocator hook counts (%ld allocations in sd_stream_create)",
          atomic_load(&g_allocations) - before);
    CHECK_OK(sd_stream_set_prompt(s, "a cat", "blurry"));
    long n = s ? count_frames(s, 3, 13) : -1;
    CHECK(n == 0, "stream batch, self-CFG, KL VAE: %ld allocations in 10 frames after warm-up", n);
    sd_stream_free(s);

    p = sd_stream_params_default();
    p.width = W, p.height = H;
    p.use_denoising_batch = 0;
    p.cfg_type = SD_CFG_FULL;
    p.guidance_scale = 1.5f;
    p.similar_filter_threshold = 0.9f;
    s = NULL;
    CHECK_OK(sd_stream_create(&s, m, &p));
    CHECK_OK(sd_stream_set_prompt(s, "a cat", "blurry"));
    n = s ? count_frames(s, 3, 13) : -1;
    CHECK(n == 0, "sequential, full CFG, TAESD, similarity filter: %ld allocations in 10 frames after warm-up", n);

    run_ctx c = {0};
    sd_frame_source so = {src_read, &c, 0};
    sd_frame_sink si = {sink_write, &c, 0};
    sd_run_stats st;
    if (s) CHECK_OK(sd_stream_run(s, &so, &si, NULL, &st));
    n = atomic_load(&g_allocations) - c.at_start;
    CHECK(c.written >= 13, "runner wrote %d frames", c.written);
    CHECK(n == 0, "threaded runner: %ld allocations while frames 4..13 were written", n);
    sd_stream_free(s);
    sd_model_free(m);
    return check_finish();
}
