/* cpu_gemm.h — the CPU backend's own SGEMM: C[M, N] = A[M, K] . B[K, N] (+ bias), BLIS-style.
 *
 * Loops (per task, one task = one tile of C, tasks spread over the thread pool):
 *   for jc in N by NC:  for pc in K by KC:  pack B[pc, jc] into NR-wide panels   (L3/L2)
 *                                           for ic in M by MC: pack A[ic, pc] into MR-tall panels (L2)
 *                                              for jr, ir: micro-kernel MR x NR over KC   (B panel in L1)
 * Operands are read through packers, so a transposed or strided matrix (linear's W^T, a head's
 * columns of Q/K/V) and an implicit im2col (conv's B read straight from the image) all feed the same
 * micro-kernel without a materialised copy.
 *
 * Packed formats (zero-padded to full panels):
 *   A block (mc x kc): panel p holds rows p*MR..p*MR+MR-1:  dst[p*MR*kc + k*MR + i]
 *   B block (kc x nc): panel p holds cols p*NR..p*NR+NR-1:  dst[p*NR*kc + k*NR + j]
 * The micro-kernel (picked once per backend from the CPU's features) computes one MR x NR tile of
 * C, writing (acc = false) or adding to (acc = true) the first m x n elements.
 */
#ifndef SD_BACKEND_CPU_GEMM_H
#define SD_BACKEND_CPU_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/threads.h"

enum { SD_GEMM_MAX_MR = 16, SD_GEMM_MAX_NR = 32 };

typedef void (*sd_gemm_kernel_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                                  bool acc);

/* The bf16 variant: kp pairs of k; panels in the pair layout below. */
typedef void (*sd_gemm_kernel_bf16_fn)(int64_t kp, const uint16_t *a, const uint16_t *b, float *c, int64_t ldc, int m,
                                       int n, bool acc);
typedef struct sd_gemm_kernel {
    const char *name;
    int mr, nr;
    int mc, kc, nc; /* cache blocking: A block mc x kc in L2, B block kc x nc */
    sd_gemm_kernel_fn run;
    /* bf16 x bf16 -> float32 accumulation (vdpbf16ps), or NULL. When a GEMM asks for bf16 math the
     * driver packs float32 panels as usual, then rounds them (to nearest even) into pair panels:
     *   A: dst[p][k/2][MR][2], B: dst[p][k/2][NR][2]  (k, k+1 side by side; an odd kc ends in 0). */
    sd_gemm_kernel_bf16_fn run_bf16;
} sd_gemm_kernel;

/* An operand: element (r, c) is p[r * rs + c * cs] (A: r = row of C, c = k; B: r = k, c = column of
 * C), unless `pack` is set, which then packs rows [r0, r0 + nr) x cols [c0, c0 + nc) itself in the
 * layout above (panel width w = MR for A, NR for B). */
typedef struct sd_gemm_operand sd_gemm_operand;
struct sd_gemm_operand {
    const float *p;
    /* When set, the operand is 16-bit at p16 (p unused): weights kept as BF16 or F16 (type16),
     * widened to float32 as they are packed. */
    const uint16_t *p16;
    sd_dtype type16;
    int64_t rs, cs;
    void (*pack)(const sd_gemm_operand *op, float *dst, int64_t r0, int64_t nr, int64_t c0, int64_t nc, int w);
    const void *ctx;
};

typedef enum sd_gemm_bias { SD_GEMM_BIAS_NONE, SD_GEMM_BIAS_ROW, SD_GEMM_BIAS_COL } sd_gemm_bias;

typedef struct sd_gemm_args {
    int64_t m, n, k;
    sd_gemm_operand a, b;
    float *c;
    int64_t ldc;
    const float *bias; /* ROW: bias[i] added to row i (conv's per-channel); COL: bias[j] (linear) */
    sd_gemm_bias bias_kind;
    bool accumulate; /* C += A.B instead of C = A.B */
    bool bf16;       /* operands may be rounded to bf16 (when the kernel has run_bf16); accumulation stays float32 */
} sd_gemm_args;

/* Kernels this CPU can run, best first; the generic C kernel is always last. */
int sd_gemm_kernels(const sd_gemm_kernel **out, int max);
const sd_gemm_kernel *sd_gemm_best_kernel(void);
/* A generic C kernel of any shape (tests use it to check the driver with other panel sizes). */
const sd_gemm_kernel *sd_gemm_generic_kernel(int mr, int nr);

/* Floats of per-thread packing workspace sd_gemm_run needs with this kernel. */
int64_t sd_gemm_workspace_floats(const sd_gemm_kernel *kern);
/* Runs the GEMM over the pool. ws[t] is thread t's workspace (sd_gemm_workspace_floats each). */
void sd_gemm_run(sd_pool *pool, const sd_gemm_kernel *kern, float *const *ws, const sd_gemm_args *g);
/* Single-threaded, on one workspace: for callers already inside a pool task (attention tiles). */
void sd_gemm_serial(const sd_gemm_kernel *kern, float *ws, const sd_gemm_args *g);

/* Packers for plain strided operands (used when op->pack is NULL). */
void sd_gemm_pack_a(const sd_gemm_operand *op, float *dst, int64_t r0, int64_t nr, int64_t c0, int64_t nc, int w);
void sd_gemm_pack_b(const sd_gemm_operand *op, float *dst, int64_t r0, int64_t nr, int64_t c0, int64_t nc, int w);

/* x86 kernels (cpu_simd_x86.c); stubs on other architectures, never selected there. */
/* src of `type` F32, BF16 or F16, widened to float32 (exactly):
 * dst[k * w + j] = src[j * ld + k], j < w (a multiple of 8), k < kc: a full panel of B = W^T. */
void sd_gemm_pack_bt_avx2(float *dst, const void *src, sd_dtype type, int64_t ld, int64_t kc, int w);
/* dst[k * 6 + i] = src[i * ld + k], i < 6, k < kc: a full 6-row panel of row-major A. */
void sd_gemm_pack_a6_avx2(float *dst, const void *src, sd_dtype type, int64_t ld, int64_t kc);
void sd_gemm_kernel_avx2_6x16(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n, bool acc);
void sd_gemm_kernel_avx512_12x32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                                 bool acc);
void sd_gemm_kernel_avx512bf16_12x32(int64_t kp, const uint16_t *a, const uint16_t *b, float *c, int64_t ldc, int m,
                                     int n, bool acc);
/* A float32 panel [kc][w] (the packed layout) to its bf16 pair layout [(kc + 1) / 2][w][2]. */
void sd_gemm_panel_to_bf16_pairs(uint16_t *dst, const float *src, int64_t kc, int w);
void sd_gemm_panel_to_bf16_pairs_avx512(uint16_t *dst, const float *src, int64_t kc, int w);

#endif
