/* bench_ops.c — times the CPU backend's hot ops on the real sd-turbo / TAESD shapes and prints ms
 * and GFLOP/s against the machine's measured FMA peak (a program, not a test: DESIGN.md
 * "Benchmarks are programs"). Each case runs once to warm up (workspaces grow), then `reps` times;
 * the best time is printed, since the build machine is shared and the best run is the one least
 * disturbed.
 *
 *   ./build/bench_ops [--threads N] [--reps R] [--filter SUBSTRING]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu_backend.h"
#include "base/rng.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + 1e-6 * (double)ts.tv_nsec;
}

static sd_rng g_rng;

static sd_tensor rand_tensor(int ndim, const int64_t *shape) {
    sd_tensor t = sd_tensor_make(NULL, SD_DTYPE_F32, ndim, shape);
    int64_t n = sd_tensor_numel(&t);
    t.data = aligned_alloc(64, ((size_t)n * sizeof(float) + 63) / 64 * 64);
    if (t.data) sd_rng_randn(&g_rng, t.data, n);
    return t;
}

typedef enum { OP_CONV, OP_LINEAR, OP_ATTN, OP_GN_SILU, OP_GEGLU, OP_LN, OP_ADD, OP_TRANSPOSE } op_kind;

typedef struct bench_case {
    const char *name;
    op_kind op;
    int64_t a, b, c, d; /* conv: Ci=Co, H=W, -, k; linear: M, K, N; attn: Tq, Tk, C, heads; others: sizes */
} bench_case;

static const bench_case g_cases[] = {
    {"conv3x3 320  32x32 (unet 256 L0)", OP_CONV, 320, 32, 0, 3},
    {"conv3x3 320  64x64 (unet 512 L0)", OP_CONV, 320, 64, 0, 3},
    {"conv3x3 640  16x16 (unet 256 L1)", OP_CONV, 640, 16, 0, 3},
    {"conv3x3 640  32x32 (unet 512 L1)", OP_CONV, 640, 32, 0, 3},
    {"conv3x3 1280 8x8   (unet 256 L2)", OP_CONV, 1280, 8, 0, 3},
    {"conv3x3 1280 16x16 (unet 512 L2)", OP_CONV, 1280, 16, 0, 3},
    {"conv3x3 64 128x128 (taesd 256)", OP_CONV, 64, 128, 0, 3},
    {"conv3x3 64 256x256 (taesd 512)", OP_CONV, 64, 256, 0, 3},
    {"linear 1024x320 -> 320", OP_LINEAR, 1024, 320, 320, 0},
    {"linear 4096x320 -> 320", OP_LINEAR, 4096, 320, 320, 0},
    {"linear 4096x320 -> 2560 (ff in)", OP_LINEAR, 4096, 320, 2560, 0},
    {"linear 4096x1280 -> 320 (ff out)", OP_LINEAR, 4096, 1280, 320, 0},
    {"linear 256x1280 -> 10240 (ff in L2)", OP_LINEAR, 256, 1280, 10240, 0},
    {"attn self 4096 x 5h x 64", OP_ATTN, 4096, 4096, 320, 5},
    {"attn self 1024 x 5h x 64", OP_ATTN, 1024, 1024, 320, 5},
    {"attn cross 4096 x 77 x 5h x 64", OP_ATTN, 4096, 77, 320, 5},
    {"attn self 256 x 20h x 64", OP_ATTN, 256, 256, 1280, 20},
    {"group_norm+silu 320x64x64", OP_GN_SILU, 320, 64, 64, 32},
    {"geglu 4096 x 2560 -> 1280", OP_GEGLU, 4096, 1280, 0, 0},
    {"layer_norm 4096 x 320", OP_LN, 4096, 320, 0, 0},
    {"add 320x64x64", OP_ADD, 320 * 64 * 64, 0, 0, 0},
    {"transpose 320 x 64x64", OP_TRANSPOSE, 320, 64 * 64, 0, 0},
};

static double case_flops(const bench_case *c) {
    switch (c->op) {
    case OP_CONV: return 2.0 * (double)c->a * c->a * c->d * c->d * c->b * c->b;
    case OP_LINEAR: return 2.0 * (double)c->a * c->b * c->c;
    case OP_ATTN: return 4.0 * (double)c->a * c->b * c->c;
    default: return 0.0;
    }
}

/* Runs case c once on be. Tensors are allocated on the first call for this case. */
static void run_case(sd_backend *be, const bench_case *c, sd_tensor *t) {
    switch (c->op) {
    case OP_CONV: sd_op_conv2d(be, &t[3], &t[0], &t[1], &t[2], 1, 1); break;
    case OP_LINEAR: sd_op_linear(be, &t[3], &t[0], &t[1], &t[2]); break;
    case OP_ATTN: sd_op_attention(be, &t[3], &t[0], &t[1], &t[2], (int)c->d, false); break;
    case OP_GN_SILU: sd_op_group_norm(be, &t[3], &t[0], &t[1], &t[2], (int)c->d, 1e-5f, true); break;
    case OP_GEGLU: sd_op_geglu(be, &t[3], &t[0]); break;
    case OP_LN: sd_op_layer_norm(be, &t[3], &t[0], &t[1], &t[2], 1e-5f); break;
    case OP_ADD: sd_op_add(be, &t[3], &t[0], &t[1]); break;
    case OP_TRANSPOSE: sd_op_transpose_hw_c(be, &t[3], &t[0], true); break;
    }
}

static void make_tensors(const bench_case *c, sd_tensor *t) {
    switch (c->op) {
    case OP_CONV:
        t[0] = rand_tensor(4, (int64_t[]){1, c->a, c->b, c->b});
        t[1] = rand_tensor(4, (int64_t[]){c->a, c->a, c->d, c->d});
        t[2] = rand_tensor(1, (int64_t[]){c->a});
        t[3] = rand_tensor(4, (int64_t[]){1, c->a, c->b, c->b});
        break;
    case OP_LINEAR:
        t[0] = rand_tensor(2, (int64_t[]){c->a, c->b});
        t[1] = rand_tensor(2, (int64_t[]){c->c, c->b});
        t[2] = rand_tensor(1, (int64_t[]){c->c});
        t[3] = rand_tensor(2, (int64_t[]){c->a, c->c});
        break;
    case OP_ATTN:
        t[0] = rand_tensor(3, (int64_t[]){1, c->a, c->c});
        t[1] = rand_tensor(3, (int64_t[]){1, c->b, c->c});
        t[2] = rand_tensor(3, (int64_t[]){1, c->b, c->c});
        t[3] = rand_tensor(3, (int64_t[]){1, c->a, c->c});
        break;
    case OP_GN_SILU:
        t[0] = rand_tensor(4, (int64_t[]){1, c->a, c->b, c->c});
        t[1] = rand_tensor(1, (int64_t[]){c->a});
        t[2] = rand_tensor(1, (int64_t[]){c->a});
        t[3] = rand_tensor(4, (int64_t[]){1, c->a, c->b, c->c});
        break;
    case OP_GEGLU:
        t[0] = rand_tensor(2, (int64_t[]){c->a, 2 * c->b});
        t[3] = rand_tensor(2, (int64_t[]){c->a, c->b});
        break;
    case OP_LN:
        t[0] = rand_tensor(2, (int64_t[]){c->a, c->b});
        t[1] = rand_tensor(1, (int64_t[]){c->b});
        t[2] = rand_tensor(1, (int64_t[]){c->b});
        t[3] = rand_tensor(2, (int64_t[]){c->a, c->b});
        break;
    case OP_ADD:
        t[0] = rand_tensor(1, (int64_t[]){c->a});
        t[1] = rand_tensor(1, (int64_t[]){c->a});
        t[3] = rand_tensor(1, (int64_t[]){c->a});
        break;
    case OP_TRANSPOSE:
        t[0] = rand_tensor(4, (int64_t[]){1, c->a, 64, c->b / 64});
        t[3] = rand_tensor(3, (int64_t[]){1, c->b, c->a});
        break;
    }
}

int main(int argc, char **argv) {
    int threads = 0, reps = 5;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--threads N] [--reps R] [--filter SUBSTRING]\n", argv[0]);
            return 2;
        }
    }
    sd_rng_seed(&g_rng, 1);
    sd_backend *be = NULL;
    if (sd_backend_create(&be, SD_BACKEND_CPU, threads) != SD_OK) {
        fprintf(stderr, "bench_ops: %s\n", sd_last_error());
        return 1;
    }
#ifdef SD_BENCH_BASELINE /* builds against the pre-issue-D backend, for before/after numbers */
    double peak = atof(getenv("SD_PEAK") ? getenv("SD_PEAK") : "1");
    printf("threads %d (baseline backend), peak given %.1f GFLOP/s\n", be->n_threads, peak);
#else
    double peak = sd_cpu_measure_peak_gflops(be->n_threads);
    printf("threads %d, gemm kernel %s, row kernels %s, measured fp32 FMA peak %.1f GFLOP/s\n", be->n_threads,
           sd_cpu(be)->gemm->name, sd_cpu(be)->vec->name, peak);
#endif
    printf("%-36s %10s %10s %8s\n", "op", "best ms", "GFLOP/s", "% peak");
    for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++) {
        const bench_case *c = &g_cases[i];
        if (filter && !strstr(c->name, filter)) continue;
        sd_tensor t[4] = {{0}};
        make_tensors(c, t);
        run_case(be, c, t);
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now_ms();
            run_case(be, c, t);
            double dt = now_ms() - t0;
            best = dt < best ? dt : best;
        }
        if (sd_backend_status(be) != SD_OK) {
            printf("%-36s failed: %s\n", c->name, sd_last_error());
            sd_backend_clear_status(be);
        } else if (case_flops(c) > 0) {
            double gf = case_flops(c) / best * 1e-6;
            printf("%-36s %10.2f %10.1f %7.1f%%\n", c->name, best, gf, 100.0 * gf / peak);
        } else {
            printf("%-36s %10.3f\n", c->name, best);
        }
        for (int j = 0; j < 4; j++) free(t[j].data);
    }
    sd_backend_free(be);
    return 0;
}
