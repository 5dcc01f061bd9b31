/* cpu_gemm.c — the SGEMM driver (blocking, packing, tasks over the thread pool), the generic C
 * micro-kernel and the choice of kernel for this CPU. See cpu_gemm.h for the loop structure.
 *
 * Blocking for the AVX2 6x16 kernel (Zen 3 here: 32 KB L1d, 512 KB L2 per core): KC = 256 keeps a
 * 16 KB B micro-panel in L1; MC = 144 makes the A block 144 KB, well inside L2; NC = 1024 bounds
 * the B block (1 MB, streamed from L3 once per MC block). */
#include "backend/cpu/cpu_gemm.h"

#include "base/cpu_features.h"

#include "base/dtype.h"

#include <pthread.h>
#include <string.h>

static bool g_pack_avx2; /* set by sd_gemm_kernels() when the CPU has AVX2 (vectorised W^T packing) */
static bool g_pairs_avx512; /* ... and AVX-512: vectorised rounding of panels to bf16 pairs */

/* ---- generic kernel ---- */

static int g_generic_mr = 6, g_generic_nr = 16;

static void kernel_generic(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n, bool acc) {
    const int mr = g_generic_mr, nr = g_generic_nr;
    float t[SD_GEMM_MAX_MR * SD_GEMM_MAX_NR];
    memset(t, 0, sizeof t);
    for (int64_t k = 0; k < kc; k++) {
        const float *ak = a + k * mr, *bk = b + k * nr;
        for (int i = 0; i < mr; i++) {
            float av = ak[i];
            float *ti = t + i * SD_GEMM_MAX_NR;
            for (int j = 0; j < nr; j++) ti[j] += av * bk[j];
        }
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[i * ldc + j] = (acc ? c[i * ldc + j] : 0.0f) + t[i * SD_GEMM_MAX_NR + j];
}

/* bf16 pairs: what vdpbf16ps computes, in plain C (tests run the bf16 driver path with it) */
static void kernel_generic_bf16(int64_t kp, const uint16_t *a, const uint16_t *b, float *c, int64_t ldc, int m, int n,
                                bool acc) {
    const int mr = g_generic_mr, nr = g_generic_nr;
    float t[SD_GEMM_MAX_MR * SD_GEMM_MAX_NR];
    memset(t, 0, sizeof t);
    for (int64_t p = 0; p < kp; p++) {
        const uint16_t *ap = a + p * mr * 2, *bp = b + p * nr * 2;
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
                t[i * SD_GEMM_MAX_NR + j] += sd_bf16_to_f32(ap[2 * i]) * sd_bf16_to_f32(bp[2 * j]) +
                                             sd_bf16_to_f32(ap[2 * i + 1]) * sd_bf16_to_f32(bp[2 * j + 1]);
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[i * ldc + j] = (acc ? c[i * ldc + j] : 0.0f) + t[i * SD_GEMM_MAX_NR + j];
}

static sd_gemm_kernel g_generic = {"generic", 6, 16, 144, 256, 1024, kernel_generic, kernel_generic_bf16};

void sd_gemm_panel_to_bf16_pairs(uint16_t *dst, const float *src, int64_t kc, int w) {
    for (int64_t k = 0; k < kc; k += 2) {
        const float *r0 = src + k * w, *r1 = k + 1 < kc ? r0 + w : NULL;
        uint16_t *d = dst + k * w; /* pair k/2 starts at (k/2) * w * 2 */
        for (int j = 0; j < w; j++) {
            d[2 * j] = sd_f32_to_bf16(r0[j]);
            d[2 * j + 1] = r1 ? sd_f32_to_bf16(r1[j]) : 0;
        }
    }
}

const sd_gemm_kernel *sd_gemm_generic_kernel(int mr, int nr) {
    if (mr < 1 || mr > SD_GEMM_MAX_MR || nr < 1 || nr > SD_GEMM_MAX_NR) return NULL;
    /* the panel shape is a process-wide setting of the one generic kernel (tests only) */
    g_generic_mr = g_generic.mr = mr;
    g_generic_nr = g_generic.nr = nr;
    g_generic.mc = (144 / mr) * mr;
    g_generic.nc = (1024 / nr) * nr;
    return &g_generic;
}

#if defined(__x86_64__) && defined(__GNUC__)
static const sd_gemm_kernel g_avx2 = {"avx2-fma 6x16", 6, 16, 144, 256, 1024, sd_gemm_kernel_avx2_6x16, NULL};
/* 12x32: 24 zmm accumulators; MC = 144 (A block 144 KB), NC = 1024 as for AVX2. CI machines have no
 * AVX-512: the driver's handling of these panel sizes is tested there through the generic kernel;
 * the kernel itself (and the bf16 one) passed test_ops and the goldens on an AVX-512 host
 * (bench/RESULTS.md, 2026-11-26). */
static sd_gemm_kernel g_avx512 = {"avx512f 12x32", 12, 32, 144, 256, 1024, sd_gemm_kernel_avx512_12x32, NULL};
#endif

/* The process-wide feature flags, set once (backends may be created from several threads). */
static void detect_features(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (sd_cpu_has_avx512bf16()) g_avx512.run_bf16 = sd_gemm_kernel_avx512bf16_12x32;
    g_pairs_avx512 = __builtin_cpu_supports("avx512f");
    g_pack_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && sd_cpu_has_f16c();
#endif
}

int sd_gemm_kernels(const sd_gemm_kernel **out, int max) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, detect_features);
    int n = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (n < max && __builtin_cpu_supports("avx512f")) out[n++] = &g_avx512;
    if (n < max && g_pack_avx2) out[n++] = &g_avx2;
#endif
    if (n < max) out[n++] = &g_generic;
    return n;
}

const sd_gemm_kernel *sd_gemm_best_kernel(void) {
    const sd_gemm_kernel *k[4];
    sd_gemm_kernels(k, 4);
    return k[0];
}

/* ---- packing ---- */

/* Element idx of an operand's storage, widened to float32 (exact from bf16 and f16). */
static inline float op_at(const sd_gemm_operand *op, int64_t idx) {
    if (!op->p16) return op->p[idx];
    return op->type16 == SD_DTYPE_F16 ? sd_f16_to_f32(op->p16[idx]) : sd_bf16_to_f32(op->p16[idx]);
}

void sd_gemm_pack_a(const sd_gemm_operand *op, float *dst, int64_t r0, int64_t nr, int64_t c0, int64_t nc, int w) {
    for (int64_t i0 = 0; i0 < nr; i0 += w) {
        int64_t rows = nr - i0 < w ? nr - i0 : w;
        float *d = dst + i0 * nc;
        if (op->rs == 1) { /* A stored transposed: a panel row is contiguous */
            for (int64_t k = 0; k < nc; k++) {
                int64_t s = (c0 + k) * op->cs + r0 + i0;
                for (int64_t i = 0; i < rows; i++) d[k * w + i] = op_at(op, s + i);
                for (int64_t i = rows; i < w; i++) d[k * w + i] = 0.0f;
            }
            continue;
        }
        if (op->cs == 1 && rows == 6 && w == 6 && g_pack_avx2) {
            int64_t s = (r0 + i0) * op->rs + c0;
            if (op->p16) sd_gemm_pack_a6_avx2(d, op->p16 + s, op->type16, op->rs, nc);
            else sd_gemm_pack_a6_avx2(d, op->p + s, SD_DTYPE_F32, op->rs, nc);
            continue;
        }
        for (int64_t i = 0; i < rows; i++) {
            int64_t s = (r0 + i0 + i) * op->rs + c0 * op->cs;
            for (int64_t k = 0; k < nc; k++) d[k * w + i] = op_at(op, s + k * op->cs);
        }
        for (int64_t i = rows; i < w; i++)
            for (int64_t k = 0; k < nc; k++) d[k * w + i] = 0.0f;
    }
}

void sd_gemm_pack_b(const sd_gemm_operand *op, float *dst, int64_t r0, int64_t nr, int64_t c0, int64_t nc, int w) {
    for (int64_t j0 = 0; j0 < nc; j0 += w) {
        int64_t cols = nc - j0 < w ? nc - j0 : w;
        float *d = dst + j0 * nr;
        if (op->cs == 1) { /* row-major B: each k row of the panel is contiguous */
            for (int64_t k = 0; k < nr; k++) {
                int64_t s = (r0 + k) * op->rs + c0 + j0;
                if (cols == w && !op->p16) {
                    memcpy(d + k * w, op->p + s, (size_t)w * sizeof(float));
                } else {
                    for (int64_t j = 0; j < cols; j++) d[k * w + j] = op_at(op, s + j);
                    for (int64_t j = cols; j < w; j++) d[k * w + j] = 0.0f;
                }
            }
            continue;
        }
        if (op->rs == 1 && cols == w && w % 8 == 0 && g_pack_avx2) {
            int64_t s = (c0 + j0) * op->cs + r0;
            if (op->p16) sd_gemm_pack_bt_avx2(d, op->p16 + s, op->type16, op->cs, nr, w);
            else sd_gemm_pack_bt_avx2(d, op->p + s, SD_DTYPE_F32, op->cs, nr, w);
            continue;
        }
        for (int64_t j = 0; j < cols; j++) { /* B = W^T (linear): walk each W row along k */
            int64_t s = (c0 + j0 + j) * op->cs + r0 * op->rs;
            for (int64_t k = 0; k < nr; k++) d[k * w + j] = op_at(op, s + k * op->rs);
        }
        for (int64_t j = cols; j < w; j++)
            for (int64_t k = 0; k < nr; k++) d[k * w + j] = 0.0f;
    }
}

/* ---- driver ---- */

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

int64_t sd_gemm_workspace_floats(const sd_gemm_kernel *kern) {
    int64_t a = round_up(kern->mc, kern->mr) * kern->kc, b = (int64_t)kern->kc * round_up(kern->nc, kern->nr);
    /* + slack to 64-byte align the B block; with a bf16 kernel, the pair copies of both blocks (k
     * rounded up to pairs) and their alignment */
    int64_t pairs = (round_up(kern->mc, kern->mr) + round_up(kern->nc, kern->nr)) * round_up(kern->kc, 2) / 2;
    return a + b + 64 + (kern->run_bf16 ? pairs + 32 : 0);
}

/* One micro-kernel call on panel ir of the A block and a B micro-panel: float32 panels, or their
 * bf16 pair copies (same panel index, kp = ceil(kc / 2) pairs). */
typedef struct tile_bufs {
    float *a, *b;
    uint16_t *a16, *b16; /* NULL unless bf16 math */
} tile_bufs;

static inline void micro(const sd_gemm_kernel *kern, const tile_bufs *t, int64_t kc, int64_t ir, int64_t jr,
                         float *c, int64_t ldc, int m, int n, bool acc) {
    if (t->a16) {
        int64_t kp2 = (kc + 1) / 2 * 2;
        kern->run_bf16(kp2 / 2, t->a16 + ir * kp2, t->b16 + jr * kp2, c, ldc, m, n, acc);
    } else {
        kern->run(kc, t->a + ir * kc, t->b + jr * kc, c, ldc, m, n, acc);
    }
}

/* bf16 math: the rows [0, rows) of a packed block (panels of w), to pair panels. */
static void block_to_pairs(uint16_t *dst, const float *src, int64_t rows, int64_t kc, int w) {
    int64_t kp2 = (kc + 1) / 2 * 2;
    for (int64_t p = 0; p * w < rows; p++) {
        if (g_pairs_avx512) sd_gemm_panel_to_bf16_pairs_avx512(dst + p * w * kp2, src + p * w * kc, kc, w);
        else sd_gemm_panel_to_bf16_pairs(dst + p * w * kp2, src + p * w * kc, kc, w);
    }
}

/* C[i0:i1, j0:j1] of g, on one thread's workspace. */
static void gemm_tile(const sd_gemm_kernel *kern, float *ws, const sd_gemm_args *g, int64_t i0, int64_t i1, int64_t j0,
                      int64_t j1) {
    const int mr = kern->mr, nr = kern->nr;
    const int64_t mcb = round_up(kern->mc, mr), kcb = kern->kc, ncb = round_up(kern->nc, nr);
    tile_bufs t = {ws, ws + mcb * kcb, NULL, NULL};
    t.b += (16 - ((uintptr_t)t.b / sizeof(float)) % 16) % 16;
    if (g->bf16 && kern->run_bf16) {
        int64_t kp2 = (kcb + 1) / 2 * 2;
        t.a16 = (uint16_t *)(t.b + kcb * ncb);
        t.a16 += (32 - ((uintptr_t)t.a16 / sizeof(uint16_t)) % 32) % 32;
        t.b16 = t.a16 + mcb * kp2;
    }
    for (int64_t jc = j0; jc < j1; jc += ncb) {
        int64_t nc = j1 - jc < ncb ? j1 - jc : ncb;
        if (g->k == 0) { /* empty sum: C = 0 (+ bias) */
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = jc; j < jc + nc; j++)
                    if (!g->accumulate) g->c[i * g->ldc + j] = 0.0f;
        }
        for (int64_t pc = 0; pc < g->k; pc += kcb) {
            int64_t kc = g->k - pc < kcb ? g->k - pc : kcb;
            bool acc = g->accumulate || pc > 0;
            if (i1 - i0 <= mcb) {
                /* One block of A covers the tile's rows (a convolution with few output channels,
                 * a linear layer on few tokens): pack B one micro-panel at a time and use it at
                 * once, while it is in L1, instead of writing a whole B block out to L3 first. */
                (g->a.pack ? g->a.pack : sd_gemm_pack_a)(&g->a, t.a, i0, i1 - i0, pc, kc, mr);
                if (t.a16) block_to_pairs(t.a16, t.a, i1 - i0, kc, mr);
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    int n = (int)(nc - jr < nr ? nc - jr : nr);
                    (g->b.pack ? g->b.pack : sd_gemm_pack_b)(&g->b, t.b, pc, kc, jc + jr, n, nr);
                    if (t.b16) block_to_pairs(t.b16, t.b, n, kc, nr);
                    float *cp = g->c + i0 * g->ldc + jc + jr;
                    for (int64_t ir = 0; ir < i1 - i0; ir += mr) {
                        int m = (int)(i1 - i0 - ir < mr ? i1 - i0 - ir : mr);
                        micro(kern, &t, kc, ir, 0, cp + ir * g->ldc, g->ldc, m, n, acc);
                    }
                }
                continue;
            }
            (g->b.pack ? g->b.pack : sd_gemm_pack_b)(&g->b, t.b, pc, kc, jc, nc, nr);
            if (t.b16) block_to_pairs(t.b16, t.b, nc, kc, nr);
            for (int64_t ic = i0; ic < i1; ic += mcb) {
                int64_t mc = i1 - ic < mcb ? i1 - ic : mcb;
                (g->a.pack ? g->a.pack : sd_gemm_pack_a)(&g->a, t.a, ic, mc, pc, kc, mr);
                if (t.a16) block_to_pairs(t.a16, t.a, mc, kc, mr);
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    int n = (int)(nc - jr < nr ? nc - jr : nr);
                    float *cp = g->c + ic * g->ldc + jc + jr;
                    for (int64_t ir = 0; ir < mc; ir += mr) {
                        int m = (int)(mc - ir < mr ? mc - ir : mr);
                        micro(kern, &t, kc, ir, jr, cp + ir * g->ldc, g->ldc, m, n, acc);
                    }
                }
            }
        }
        if (g->bias_kind != SD_GEMM_BIAS_NONE && g->bias) { /* epilogue while the tile is warm */
            for (int64_t i = i0; i < i1; i++) {
                float *row = g->c + i * g->ldc;
                if (g->bias_kind == SD_GEMM_BIAS_ROW) {
                    float bv = g->bias[i];
                    for (int64_t j = jc; j < jc + nc; j++) row[j] += bv;
                } else {
                    for (int64_t j = jc; j < jc + nc; j++) row[j] += g->bias[j];
                }
            }
        }
    }
}

void sd_gemm_serial(const sd_gemm_kernel *kern, float *ws, const sd_gemm_args *g) {
    if (g->m > 0 && g->n > 0) gemm_tile(kern, ws, g, 0, g->m, 0, g->n);
}

typedef struct gemm_job {
    const sd_gemm_kernel *kern;
    float *const *ws;
    const sd_gemm_args *g;
    int64_t tile_m, tile_n, tiles_n;
} gemm_job;

static void gemm_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const gemm_job *job = ctx;
    for (int64_t t = begin; t < end; t++) {
        int64_t ti = t / job->tiles_n, tj = t % job->tiles_n;
        int64_t i0 = ti * job->tile_m, j0 = tj * job->tile_n;
        int64_t i1 = i0 + job->tile_m < job->g->m ? i0 + job->tile_m : job->g->m;
        int64_t j1 = j0 + job->tile_n < job->g->n ? j0 + job->tile_n : job->g->n;
        gemm_tile(job->kern, job->ws[thread], job->g, i0, i1, j0, j1);
    }
}

void sd_gemm_run(sd_pool *pool, const sd_gemm_kernel *kern, float *const *ws, const sd_gemm_args *g) {
    if (g->m <= 0 || g->n <= 0) return;
    /* Split C into about 2 tiles per thread (dynamic claiming evens out a core that another process
     * slows down), always halving the larger side: each extra split of N repacks A (M x K), each
     * split of M repacks B (K x N), so splitting the larger side repacks the smaller operand. */
    int threads = sd_pool_threads(pool);
    int64_t target = threads > 1 ? 2 * threads : 1, tm = 1, tn = 1;
    if ((double)g->m * (double)g->n * (double)g->k < 65536.0) target = 1; /* tiny: not worth a wake-up */
    while (tm * tn < target) {
        int64_t sm = g->m / tm, sn = g->n / tn;
        if (sm >= sn && sm >= 2 * kern->mr) tm++;
        else if (sn >= 2 * kern->nr) tn++;
        else if (sm >= 2 * kern->mr) tm++;
        else break;
    }
    gemm_job job = {kern, ws, g, round_up((g->m + tm - 1) / tm, kern->mr), round_up((g->n + tn - 1) / tn, kern->nr), 0};
    job.tiles_n = (g->n + job.tile_n - 1) / job.tile_n;
    int64_t tiles = ((g->m + job.tile_m - 1) / job.tile_m) * job.tiles_n;
    sd_pool_for(pool, tiles, 1, gemm_task, &job);
}
