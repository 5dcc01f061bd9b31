/* check.h — the tiny test harness every tests/test_*.c uses.
 *
 * CHECK(cond, fmt, ...) records a pass or a failure (with file:line and the message); nothing
 * aborts, so one run reports every failure. A test's main() ends with `return check_finish();`,
 * which prints "N passed, N failed" and returns nonzero on any failure.
 * Reference files come from $SD_REFERENCE_DIR (default: ../shared/reference beside the checkout);
 * a missing reference file is a failure, never a skip.
 */
#ifndef SD_TESTS_CHECK_H
#define SD_TESTS_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sdstream.h"

void check_record(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int check_finish(void);

#define CHECK(cond, ...) check_record((cond), __FILE__, __LINE__, __VA_ARGS__)
/* Checks that an sd_status expression is SD_OK; on failure prints sd_last_error(). */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        sd_status check_st_ = (expr);                                                              \
        check_record(check_st_ == SD_OK, __FILE__, __LINE__, "%s -> %s: %s", #expr,               \
                     sd_status_name(check_st_), sd_last_error());                                  \
    } while (0)

/* Path of a file under the reference folder, in a static buffer per call slot (4 slots rotate).
 * Records a failure if the file does not exist. */
const char *check_ref(const char *relative);
/* A scratch directory for test outputs ($SD_TMPDIR or /tmp), created on first use. */
const char *check_tmpdir(void);
/* Joins check_tmpdir() and name (static rotating buffer). */
const char *check_tmp(const char *name);

/* Runs a shell command, capturing its stdout and stderr together into out (at most cap - 1 bytes,
 * NUL-terminated); returns its exit code, or -1 if it did not exit normally. */
int check_run(const char *cmd, char *out, size_t cap);
/* check_run on a printf-formatted command. */
int check_runf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* This process's resident memory in kB (VmRSS), -1 if unknown. */
long check_rss_kb(void);
/* ||got - ref|| / ||ref|| of the float tensor `name` in two safetensors files; records a failure
 * and returns +inf when either is missing or the shapes differ. */
double check_file_rel_error(const char *ref_path, const char *got_path, const char *name);

struct sd_safetensors;
/* A 4-D float tensor of a golden file in a malloc'ed buffer (caller frees) and its shape; records
 * a failure and returns NULL when it is missing or not 4-D. */
float *check_read_tensor4(const struct sd_safetensors *g, const char *name, int64_t shape[4]);

/* ||a - ref|| / ||ref|| over n floats; +inf if any value is NaN/inf or ref is all zero and a is not. */
double check_rel_error(const float *a, const float *ref, size_t n);
double check_max_abs_diff(const float *a, const float *ref, size_t n);

/* ---- which backend the tests run on ----
 * $SDSTREAM_TEST_BACKEND ("cpu" or "cuda"; default "cpu"). Before main() runs, check.c sets
 * $SDSTREAM_BACKEND to it, so every model a test loads with the default backend, and every
 * sdstream command it starts, runs there: on a GPU machine with CUDA compiled in (where the
 * library's default would be the GPU) the suite stays on the CPU unless asked
 * (ctest -L gpu: SDSTREAM_TEST_BACKEND=cuda). */
const char *check_backend_name(void);
struct sd_backend;
/* A backend of that kind with its default activation dtype (CPU float32, CUDA fp16), for tests
 * that drive model code directly; SD_ERR_BACKEND (a failure, never a skip) where it cannot run. */
sd_status check_backend_create(struct sd_backend **out);
struct sd_arena;
/* An arena whose memory comes from be (sd_backend_allocator: host memory on the CPU, device memory
 * on a device backend); its tensors are then sd_backend_tensor(be, arena, ...). */
void check_arena_init(struct sd_arena *arena, struct sd_backend *be);
/* The limit of a golden comparison whose float32 limit is fp32_tol: fp32_tol on the CPU, and
 * max(fp32_tol, 1e-2) when the test backend computes in fp16/bf16 (CUDA's default) — DESIGN.md's
 * documented limit for those paths ("fp16/bf16 paths under 1e-2"), not a loosening. */
double check_tol(double fp32_tol);

/* ---- choosing cases ----
 * $SD_TEST_CASES: a comma-separated list of case names (each test names its cases; ctest's gpu
 * label runs the ones whose files the GPU machine has). check_case(name) says whether that case
 * runs: always when the variable is unset or empty. check_finish() fails when a listed name
 * matched no case, so a typo or a renamed case cannot turn into a silent pass. */
bool check_case(const char *name);

#endif
