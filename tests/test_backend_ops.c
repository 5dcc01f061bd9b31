/* test_backend_ops.c — op parity across backends (ggml's test-backend-ops): every op of
 * backend/backend.h on seeded random inputs of awkward shapes (odd channel counts, widths that are
 * not multiples of 16, batches 1..8, token counts 1, 77 and 4095, every attention head size the real
 * models use: 40, 64, 80, 160), run on the backend under test and on a reference, compared by
 * ||out - ref|| / ||ref||: under 1e-2 with fp16/bf16 activations, 1e-4 with fp32. NaN or Inf never
 * passes, and every output is poisoned with NaN before the op runs, so an element it never writes
 * fails (DESIGN.md, style rule 8).
 *
 *   test_backend_ops            the harness itself, what ctest runs: the CPU backend against the
 *                               plain double-precision loops of backend_ops_ref.c on small shapes;
 *                               the harness's own failure detection (an unwritten output, one NaN,
 *                               a 0.1% error, a failed op); and creating the CUDA backend where it
 *                               cannot run: SD_ERR_BACKEND naming the reason (or SD_ERR_UNSUPPORTED
 *                               when it is not compiled in), the CPU working afterwards.
 *   test_backend_ops --backend cuda [--dtype fp16|bf16|fp32] [--require]
 *                               the CUDA backend against the CPU backend (float32) on every case,
 *                               real-model sizes included. No GPU: "no CUDA GPU found: <reason>",
 *                               exit 1 with --require, 77 (skipped) without: never a silent pass.
 *   --backend cpu               the same as no --backend (CPU against CPU would prove nothing).
 *   --seed N (default 1234)     --op NAME (only ops whose name contains NAME)     --big (real-model
 *                               sizes against the plain loops too: slow)
 *
 * Inputs and weights are rounded to the tested activation dtype before the reference sees them, so
 * the error measures the op and the rounding of its output, not of its inputs (ggml's backends
 * likewise read the same fp16 tensors). Weights go through sd_backend_upload_weight (linear and conv
 * weights and embedding tables also from F16/BF16 host copies, as 16-bit files load), activations
 * live in an arena over sd_backend_allocator in the backend's act_dtype, and data moves through
 * sd_backend_upload / sd_backend_download only, so nothing here reads device memory directly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend_ops.h"
#include "backend_ops_ref.h"
#include "base/arena.h"
#include "base/clock.h"
#include "base/dtype.h"
#include "base/rng.h"
#include "check.h"

enum { EXIT_SKIPPED = 77 };

const char *dtype_label(sd_dtype t) {
    return t == SD_DTYPE_F16 ? "fp16" : t == SD_DTYPE_BF16 ? "bf16" : "fp32";
}

static void describe(const op_case *c, char *buf, size_t size) {
    size_t at = 0;
    for (int i = 0; i < c->n_in && at < size; i++) {
        const op_input *x = &c->in[i];
        at += (size_t)snprintf(buf + at, size - at, "%s[", i ? " " : "");
        for (int d = 0; d < x->ndim && at < size; d++)
            at += (size_t)snprintf(buf + at, size - at, d ? ",%lld" : "%lld", (long long)x->shape[d]);
        if (at < size)
            at += (size_t)snprintf(buf + at, size - at, "]%s%s", x->weight ? "w" : "",
                                   x->wtype != SD_DTYPE_F32 ? (x->wtype == SD_DTYPE_F16 ? "16" : "b16") : "");
    }
    if (at < size && c->extra[0]) at += (size_t)snprintf(buf + at, size - at, " %s", c->extra);
    if (at < size && c->alias >= 0) snprintf(buf + at, size - at, " in-place");
}

float round_to(sd_dtype t, float v) {
    if (t == SD_DTYPE_F16) return sd_f16_to_f32(sd_f32_to_f16(v));
    if (t == SD_DTYPE_BF16) return sd_bf16_to_f32(sd_f32_to_bf16(v));
    return v;
}

/* ---- running a case ---- */

/* One backend's run: activations uploaded into the arena, weights through upload_weight (host
 * copies in `wvals`, of type wtypes), the output poisoned with NaN, the op, the download. Returns
 * false with the reason when the backend or its arena failed. */
static bool run_on(sd_backend *be, sd_arena *arena, const op_case *c, float *const *vals, void *const *wvals,
                   const sd_dtype *wtypes, uint8_t *const *bytes, int poison_byte, float *out_host, char *why,
                   size_t why_size) {
    sd_tensor t[MAX_IN];
    bool device_weight[MAX_IN] = {false};
    memset(t, 0, sizeof t);
    if (sd_arena_reset(arena) != SD_OK) {
        snprintf(why, why_size, "arena reset: %s", sd_last_error());
        return false;
    }
    for (int i = 0; i < c->n_in; i++) {
        const op_input *x = &c->in[i];
        if (x->weight) {
            sd_tensor host = sd_tensor_make(wvals[i], wtypes[i], x->ndim, x->shape);
            sd_backend_upload_weight(be, &t[i], &host);
            device_weight[i] = sd_backend_wants_weight_upload(be) && t[i].data != host.data;
        } else if (x->u8) {
            t[i] = sd_arena_tensor(arena, SD_DTYPE_U8, x->ndim, x->shape);
            sd_backend_upload(be, &t[i], bytes[i]);
        } else {
            t[i] = sd_backend_tensor(be, arena, x->ndim, x->shape);
            sd_backend_upload(be, &t[i], vals[i]);
        }
    }
    int64_t n_out = numel_of(c->out_ndim, c->out_shape);
    uint8_t *out8 = c->out_u8 ? malloc((size_t)n_out) : NULL;
    sd_tensor out;
    if (c->alias >= 0) {
        out = t[c->alias];
    } else if (c->out_u8) {
        out = sd_arena_tensor(arena, SD_DTYPE_U8, c->out_ndim, c->out_shape);
        if (out8) memset(out8, poison_byte, (size_t)n_out);
        if (out8) sd_backend_upload(be, &out, out8);
    } else {
        out = sd_backend_tensor(be, arena, c->out_ndim, c->out_shape);
        float *poison = malloc((size_t)n_out * sizeof *poison);
        for (int64_t i = 0; poison && i < n_out; i++) poison[i] = NAN;
        if (poison) sd_backend_upload(be, &out, poison);
        free(poison);
    }
    for (int64_t i = 0; i < n_out; i++) out_host[i] = NAN;
    c->run(be, &out, t, c);
    if (c->out_u8 && out8) {
        sd_backend_download(be, out8, &out);
        for (int64_t i = 0; i < n_out; i++) out_host[i] = out8[i];
    } else {
        sd_backend_download(be, out_host, &out);
    }
    free(out8);
    sd_backend_synchronize(be);
    bool ok = true;
    if (sd_backend_status(be) != SD_OK) {
        snprintf(why, why_size, "%s: %s", sd_status_name(sd_backend_status(be)), sd_last_error());
        sd_backend_clear_status(be);
        ok = false;
    } else if (arena->status != SD_OK) {
        snprintf(why, why_size, "arena: %s", sd_status_name(arena->status));
        ok = false;
    } else if (!out.data) {
        snprintf(why, why_size, "no output tensor");
        ok = false;
    }
    for (int i = 0; i < c->n_in; i++)
        if (device_weight[i]) sd_backend_mem_free(be, t[i].data);
    return ok;
}

/* Draws the case's inputs, runs it on the tested backend and on the reference, compares, reports.
 * expect_fail: the harness's own checks (a broken op must be caught); then nothing is recorded
 * as a failure of the suite, only whether it was caught. Returns whether the case passed. */
static bool run_case_ex(harness *h, op_case *c, bool expect_fail) {
    float *orig[MAX_IN] = {0}, *rnd[MAX_IN] = {0};
    void *wvals[MAX_IN] = {0};
    uint16_t *w16[MAX_IN] = {0};
    uint8_t *b8[MAX_IN] = {0};
    sd_dtype wtypes[MAX_IN];
    for (int i = 0; i < c->n_in; i++) {
        const op_input *x = &c->in[i];
        int64_t n = numel_of(x->ndim, x->shape);
        orig[i] = malloc((size_t)n * sizeof(float));
        rnd[i] = malloc((size_t)n * sizeof(float));
        sd_rng_randn(&h->rng, orig[i], n);
        for (int64_t j = 0; j < n; j++) orig[i][j] = orig[i][j] * x->scale + x->shift;
        if (x->u8) { /* random bytes, also as floats for the plain loops */
            b8[i] = malloc((size_t)n);
            for (int64_t j = 0; j < n; j++) b8[i][j] = (uint8_t)(sd_rng_next_u32(&h->rng) >> 24), orig[i][j] = b8[i][j];
        }
        for (int64_t j = 0; x->specials && j < n; j++) /* NaN, +Inf, -Inf here and there */
            if (j % 97 == 5 || j % 101 == 7 || j % 103 == 11) orig[i][j] = j % 97 == 5 ? NAN : j % 101 == 7 ? INFINITY : -INFINITY;
        wtypes[i] = x->weight ? x->wtype : SD_DTYPE_F32;
        if (x->weight && x->wtype != SD_DTYPE_F32) { /* a 16-bit weight as a 16-bit file holds it */
            w16[i] = malloc((size_t)n * sizeof(uint16_t));
            for (int64_t j = 0; j < n; j++)
                w16[i][j] = x->wtype == SD_DTYPE_F16 ? sd_f32_to_f16(orig[i][j]) : sd_f32_to_bf16(orig[i][j]);
            sd_convert_to_f32(orig[i], w16[i], x->wtype, (size_t)n);
            wvals[i] = w16[i];
        } else {
            wvals[i] = orig[i];
        }
        for (int64_t j = 0; j < n; j++) rnd[i][j] = round_to(h->dtype, orig[i][j]);
    }
    int64_t n_out = numel_of(c->out_ndim, c->out_shape);
    float *got = malloc((size_t)n_out * sizeof *got), *want = malloc((size_t)n_out * sizeof *want);
    char why[600] = "", ref_why[600] = "";
    /* the reference: the plain loops, or the CPU backend on the rounded values (weights F32) */
    bool ref_ok = true;
    if (h->ref) {
        sd_dtype f32[MAX_IN];
        void *rvals[MAX_IN];
        for (int i = 0; i < c->n_in; i++) f32[i] = SD_DTYPE_F32, rvals[i] = rnd[i];
        ref_ok = run_on(h->ref, &h->ref_arena, c, rnd, rvals, f32, b8, 0, want, ref_why, sizeof ref_why);
    } else {
        c->ref(want, rnd, c);
    }
    double t0 = sd_now_ms();
    bool ok = run_on(h->test, &h->test_arena, c, rnd, wvals, wtypes, b8, 0x00, got, why, sizeof why);
    double ms = sd_now_ms() - t0;
    double err = ok && ref_ok ? check_rel_error(got, want, (size_t)n_out) : INFINITY;
    bool pass = ok && ref_ok && isfinite(err) && err < h->limit;
    if (c->out_u8 && ok) { /* bytes: poisoned 0x00 above, now 0xff: an unwritten byte differs; and exact */
        float *again = malloc((size_t)n_out * sizeof *again);
        ok = again && run_on(h->test, &h->test_arena, c, rnd, wvals, wtypes, b8, 0xff, again, why, sizeof why);
        if (ok && memcmp(again, got, (size_t)n_out * sizeof *got) != 0) {
            snprintf(why, sizeof why, "bytes left unwritten (they keep the poison)");
            ok = false;
        }
        if (ok && check_max_abs_diff(got, want, (size_t)n_out) != 0.0) {
            snprintf(why, sizeof why, "not exact: max difference %.0f levels (backend.h: the host conversion, exactly)",
                     check_max_abs_diff(got, want, (size_t)n_out));
            ok = false;
        }
        pass = pass && ok;
        free(again);
    }

    char desc[160];
    describe(c, desc, sizeof desc);
    printf("%-17s %-58s %-4s err %9.2e limit %.0e %7.1f ms  %s%s%s%s\n", c->op, desc, dtype_label(h->dtype), err,
           h->limit, ms, expect_fail ? (pass ? "NOT CAUGHT" : "caught") : (pass ? "pass" : "FAIL"),
           ok ? "" : " (backend: ", ok ? "" : why, ok ? "" : ")");
    if (!ref_ok) printf("  reference failed: %s\n", ref_why);
    if (expect_fail) {
        CHECK(!pass, "harness: %s %s should have failed (error %.3g)", c->op, desc, err);
    } else {
        CHECK(pass, "%s %s %s: relative error %.3g (limit %g)%s%s", c->op, desc, dtype_label(h->dtype), err, h->limit,
              ok ? "" : ", backend: ", ok ? "" : why);
        if (pass) h->passed++;
        else h->failed++;
        if (!(err <= h->worst)) {
            h->worst = err;
            snprintf(h->worst_case, sizeof h->worst_case, "%s %s", c->op, desc);
        }
    }
    for (int i = 0; i < c->n_in; i++) free(orig[i]), free(rnd[i]), free(w16[i]), free(b8[i]);
    free(got);
    free(want);
    return pass;
}

/* Runs c unless it is filtered out, or too big for the plain loops (big and no reference backend). */
void run_case(harness *h, op_case *c, bool big) {
    if (h->only && !strstr(c->op, h->only)) return;
    if (big && !h->ref && !h->big) return;
    run_case_ex(h, c, false);
}

/* ---- the harness checks itself (CPU only: it writes through host pointers) ---- */

static void ref_copy(float *out, float *const *in, const op_case *c) {
    memcpy(out, in[0], (size_t)numel_of(c->in[0].ndim, c->in[0].shape) * sizeof *out);
}
static void run_copy(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) { sd_op_copy(be, out, &in[0]); }
static void run_nothing(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {}
static void ref_image_to_rgb8_case(float *out, float *const *in, const op_case *c) {
    ref_image_to_rgb8(out, in[0], c->in[0].shape[0], c->in[0].shape[2], c->in[0].shape[3]);
}
static void run_off_by_a_little(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_scale(be, out, &in[0], 1.001f, 0.0f);
}
static void run_one_nan(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_copy(be, out, &in[0]);
    sd_f32(out)[5] = NAN;
}
static void run_one_inf(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_copy(be, out, &in[0]);
    sd_f32(out)[3] = INFINITY;
}
static void run_last_unwritten(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_tensor part = *out;
    part.shape[part.ndim - 1] -= 1; /* a kernel that misses the last element of a row-major tensor */
    sd_tensor src = in[0];
    src.shape[src.ndim - 1] -= 1;
    sd_op_copy(be, &part, &src);
}
static void run_failing(sd_backend *be, sd_tensor *out, sd_tensor *in, const op_case *c) {
    sd_op_linear(be, out, &in[0], &in[0], NULL); /* weight [2, 9] against in [..., 9] and out [..., 9] */
}

static void check_harness(harness *h) {
    static const struct {
        const char *what;
        op_run_fn run;
    } broken[] = {{"an output never written", run_nothing},   {"0.1% off", run_off_by_a_little},
                  {"one NaN", run_one_nan},                   {"one Inf", run_one_inf},
                  {"the last elements unwritten", run_last_unwritten}, {"a failed op", run_failing}};
    printf("harness self-check: each broken op must be caught\n");
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        op_case c = new_case("harness", broken[i].run, ref_copy);
        add_in(&c, t2(2, 9));
        set_out(&c, t2(2, 9));
        snprintf(c.extra, sizeof c.extra, "%s", broken[i].what);
        run_case_ex(h, &c, true);
    }
    /* bytes cannot hold NaN: an 8-bit output runs twice, poisoned 0x00 then 0xff */
    op_case u8 = new_case("harness", run_nothing, ref_image_to_rgb8_case);
    add_in(&u8, t4(1, 3, 4, 5));
    set_out(&u8, t4(1, 4, 5, 3));
    u8.out_u8 = true;
    snprintf(u8.extra, sizeof u8.extra, "an 8-bit output never written");
    run_case_ex(h, &u8, true);
    /* and a correct op passes through the same path */
    op_case ok = new_case("harness", run_copy, ref_copy);
    add_in(&ok, t2(2, 9));
    set_out(&ok, t2(2, 9));
    snprintf(ok.extra, sizeof ok.extra, "a correct copy");
    CHECK(run_case_ex(h, &ok, false), "harness: a correct copy passes");
}

/* Where CUDA cannot run: creating it fails cleanly, naming why, and the CPU works afterwards. */
static void check_cuda_unavailable(harness *h) {
    char reason[512];
    bool compiled = sd_backend_compiled(SD_BACKEND_CUDA);
    if (compiled && sd_backend_available(SD_BACKEND_CUDA, reason, sizeof reason)) {
        printf("cuda: a GPU is present; its parity runs are test_backend_ops --backend cuda --require "
               "(ctest -L gpu with -DSD_GPU_TESTS=ON)\n");
        return;
    }
    CHECK(!sd_backend_available(SD_BACKEND_CUDA, reason, sizeof reason) && strlen(reason) > 8,
          "cuda unavailable, with a reason: '%s'", reason);
    printf("cuda: %s, unavailable here: %s\n", compiled ? "compiled in" : "not compiled in", reason);
    static const sd_dtype dtypes[] = {SD_DTYPE_F16, SD_DTYPE_BF16, SD_DTYPE_F32};
    for (int i = 0; i < 3; i++) {
        sd_backend *sentinel = (sd_backend *)&reason, *be = sentinel;
        sd_status st = sd_backend_create_dtype(&be, SD_BACKEND_CUDA, 0, dtypes[i]);
        sd_status want = compiled ? SD_ERR_BACKEND : SD_ERR_UNSUPPORTED;
        const char *msg = sd_last_error();
        bool names = strstr(msg, "CUDA") || strstr(msg, "cuda");
        printf("  sd_backend_create(cuda, %s) -> %s: %s\n", dtype_label(dtypes[i]), sd_status_name(st), msg);
        CHECK(st == want && be == sentinel && names && strlen(msg) > 16,
              "creating the cuda backend (%s) here: %s (want %s), *out %s, message '%s'", dtype_label(dtypes[i]),
              sd_status_name(st), sd_status_name(want), be == sentinel ? "untouched" : "CHANGED", msg);
        if (st == SD_OK && be != sentinel) sd_backend_free(be);
    }
    sd_status probe = sd_backend_probe(SD_BACKEND_TYPE_CUDA);
    CHECK(probe == (compiled ? SD_ERR_BACKEND : SD_ERR_UNSUPPORTED), "sd_backend_probe(cuda): %s: %s",
          sd_status_name(probe), sd_last_error());
    CHECK(sd_backend_resolve(SD_BACKEND_TYPE_AUTO) == SD_BACKEND_TYPE_CPU,
          "auto resolves to the cpu here (SDSTREAM_BACKEND=%s)", getenv("SDSTREAM_BACKEND"));
    /* the CPU still works */
    op_case c = new_case("copy", run_copy, ref_copy);
    add_in(&c, t3(2, 5, 11));
    set_out(&c, t3(2, 5, 11));
    snprintf(c.extra, sizeof c.extra, "(cpu after the failed cuda create)");
    run_case(h, &c, false);
    h->only = NULL;
}

/* ---- main ---- */

static int usage(void) {
    fprintf(stderr, "usage: test_backend_ops [--backend cpu|cuda] [--dtype fp32|fp16|bf16] [--require] [--seed N] "
                    "[--op NAME] [--big]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *backend = "cpu", *dtype = NULL;
    bool require = false, big = false;
    unsigned long long seed = 1234;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) backend = argv[++i];
        else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) dtype = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--op") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--require") == 0) require = true;
        else if (strcmp(argv[i], "--big") == 0) big = true;
        else return usage();
    }
    bool cuda = strcmp(backend, "cuda") == 0;
    if (!cuda && strcmp(backend, "cpu") != 0) return usage();
    sd_dtype act = SD_DTYPE_F32;
    if (dtype) {
        if (strcmp(dtype, "fp16") == 0) act = SD_DTYPE_F16;
        else if (strcmp(dtype, "bf16") == 0) act = SD_DTYPE_BF16;
        else if (strcmp(dtype, "fp32") != 0) return usage();
    } else if (cuda) {
        act = SD_DTYPE_F16; /* the CUDA backend's default */
    }
    if (!cuda && act != SD_DTYPE_F32) {
        fprintf(stderr, "test_backend_ops: the cpu backend computes in fp32 only\n");
        return 2;
    }

    harness h;
    memset(&h, 0, sizeof h);
    h.only = only;
    h.big = big;
    sd_rng_seed(&h.rng, seed);
    if (cuda) {
        char reason[512];
        if (!sd_backend_available(SD_BACKEND_CUDA, reason, sizeof reason)) {
            printf("no CUDA GPU found: %s\n", reason);
            printf("%s\n", require ? "--require: failing" : "nothing tested (skipped; --require makes this a failure)");
            return require ? 1 : EXIT_SKIPPED;
        }
        sd_status st = sd_backend_create_dtype(&h.test, SD_BACKEND_CUDA, 0, act);
        CHECK(st == SD_OK, "creating the cuda backend (%s): %s", dtype_label(act), sd_last_error());
        if (st != SD_OK) return check_finish();
        CHECK_OK(sd_backend_create(&h.ref, SD_BACKEND_CPU, 0));
        if (!h.ref) return check_finish();
    } else {
        CHECK_OK(sd_backend_create(&h.test, SD_BACKEND_CPU, 0));
        if (!h.test) return check_finish();
    }
    h.dtype = h.test->act_dtype;
    CHECK(h.dtype == act, "the backend computes in %s as asked (it says %s)", dtype_label(act), dtype_label(h.dtype));
    h.limit = h.dtype == SD_DTYPE_F32 ? 1e-4 : 1e-2;
    sd_allocator test_alloc = sd_backend_allocator(h.test);
    sd_arena_init_with(&h.test_arena, &test_alloc);
    sd_arena_init(&h.ref_arena);
    printf("test_backend_ops: %s backend (%s activations%s) against %s; seed %llu; limit %.0e "
           "(||out - ref|| / ||ref||; NaN/Inf never pass)\n",
           h.test->vt->name, dtype_label(h.dtype), h.test->device_memory ? ", device memory" : "",
           h.ref ? "the cpu backend (fp32) on the same rounded inputs" : "plain double-precision loops (backend_ops_ref.c)",
           seed, h.limit);
    double t0 = sd_now_ms();
    if (!h.ref && !only) check_harness(&h);
    run_all(&h);
    if (!cuda && !only) check_cuda_unavailable(&h);
    printf("summary: %s %s vs %s: %d cases, %d passed, %d failed; worst error %.2e (%s); %.1f s\n", h.test->vt->name,
           dtype_label(h.dtype), h.ref ? "cpu fp32" : "plain loops", h.passed + h.failed, h.passed, h.failed,
           h.worst, h.worst_case, (sd_now_ms() - t0) / 1e3);
    CHECK(h.passed + h.failed > 0, "some case ran (--op %s)", only ? only : "");
    sd_arena_free(&h.test_arena);
    sd_arena_free(&h.ref_arena);
    sd_backend_free(h.test);
    sd_backend_free(h.ref);
    return check_finish();
}
