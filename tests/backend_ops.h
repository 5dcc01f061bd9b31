/* backend_ops.h — the cases of test_backend_ops and the harness they run in (see
 * test_backend_ops.c for what it checks and how). A case is an op's inputs (shapes, which are
 * weights, how their random values are drawn), its output shape, how to run it on a backend and
 * its plain reference (backend_ops_ref.c); backend_ops_cases.c lists them, op by op. */
#ifndef SD_TESTS_BACKEND_OPS_H
#define SD_TESTS_BACKEND_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "base/rng.h"

enum { MAX_IN = 4 };

typedef struct op_input {
    int ndim;
    int64_t shape[4];
    bool weight;        /* through sd_backend_upload_weight from a host copy of type wtype */
    sd_dtype wtype;     /* F32, F16 or BF16 */
    float scale, shift; /* values: randn * scale + shift */
    bool u8;            /* a U8 tensor of random bytes (the 8-bit frame ops) */
    bool specials;      /* some values NaN, +Inf, -Inf (ops that define what they make of them) */
} op_input;

struct op_case;
/* Runs the op on a backend: out and in[] are that backend's tensors. */
typedef void (*op_run_fn)(sd_backend *be, sd_tensor *out, sd_tensor *in, const struct op_case *c);
/* The plain reference on host float32 values (in[] already rounded to the tested dtype). */
typedef void (*op_ref_fn)(float *out, float *const *in, const struct op_case *c);

typedef struct op_case {
    const char *op;
    char extra[64]; /* parameters for the report line */
    int n_in;
    op_input in[MAX_IN];
    int out_ndim;
    int64_t out_shape[4];
    int alias;      /* -1: out is a tensor of its own; k: out is input k (the op runs in place) */
    int64_t p[4];   /* integer parameters (heads, stride, padding, act, groups, ...) */
    float f[2];     /* float parameters */
    bool flag;      /* causal / relu / silu / to_channels_last / per-batch */
    bool out_u8;    /* the output is U8: poisoned twice (0x00, 0xff) and compared exactly */
    const int32_t *ids;
    op_run_fn run;
    op_ref_fn ref;
} op_case;

typedef struct harness {
    sd_backend *test; /* the backend under test */
    sd_backend *ref;  /* the CPU backend in float32 as reference; NULL: the plain loops */
    sd_arena test_arena, ref_arena;
    sd_dtype dtype;   /* test->act_dtype */
    double limit;
    const char *only;
    bool big;
    sd_rng rng;
    int passed, failed;
    double worst;
    char worst_case[192];
} harness;

/* Runs c on the tested backend and the reference, compares and reports, unless --op filters it
 * out or it is `big` (real-model sizes) and the reference is the plain loops (too slow for them). */
void run_case(harness *h, op_case *c, bool big);
/* Every op's cases (backend_ops_cases.c), then the upload/download round trip. */
void run_all(harness *h);
/* Host float32 values rounded to a tested dtype (F32: unchanged). */
float round_to(sd_dtype t, float v);
const char *dtype_label(sd_dtype t);

/* ---- building cases ---- */

static inline op_input tensor_of(int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    op_input x = {.ndim = ndim, .shape = {d0, d1, d2, d3}, .wtype = SD_DTYPE_F32, .scale = 1.0f};
    return x;
}
static inline op_input t1(int64_t a) { return tensor_of(1, a, 0, 0, 0); }
static inline op_input t2(int64_t a, int64_t b) { return tensor_of(2, a, b, 0, 0); }
static inline op_input t3(int64_t a, int64_t b, int64_t c) { return tensor_of(3, a, b, c, 0); }
static inline op_input t4(int64_t a, int64_t b, int64_t c, int64_t d) { return tensor_of(4, a, b, c, d); }
static inline op_input as_weight(op_input x, sd_dtype wtype) {
    x.weight = true;
    x.wtype = wtype;
    return x;
}
static inline op_input scaled(op_input x, float scale, float shift) {
    x.scale = scale;
    x.shift = shift;
    return x;
}

static inline op_case new_case(const char *op, op_run_fn run, op_ref_fn ref) {
    op_case c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.run = run;
    c.ref = ref;
    c.alias = -1;
    return c;
}

static inline void add_in(op_case *c, op_input x) {
    if (c->n_in < MAX_IN) c->in[c->n_in++] = x;
}

static inline void set_out(op_case *c, op_input shape) {
    c->out_ndim = shape.ndim;
    memcpy(c->out_shape, shape.shape, sizeof c->out_shape);
}

static inline int64_t numel_of(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

#endif
