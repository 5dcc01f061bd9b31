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

#endif
