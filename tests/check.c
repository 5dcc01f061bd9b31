/* check.c — see check.h. */
#include "check.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "base/safetensors.h"

static int g_passed, g_failed;

void check_record(bool ok, const char *file, int line, const char *fmt, ...) {
    if (ok) {
        g_passed++;
        return;
    }
    g_failed++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void check_cases_finish(void);

int check_finish(void) {
    check_cases_finish();
    if (strcmp(check_backend_name(), "cpu") != 0) printf("(on the %s backend: SDSTREAM_TEST_BACKEND)\n", check_backend_name());
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return (g_failed == 0 && g_passed > 0) ? 0 : 1;
}

/* Paths come from rotating buffers, one pool for reference paths and one for outputs, so a
 * temporary path can never turn into a reference file's (an output once overwrote a golden). */
static char *rotating_buffer(int pool) {
    static char buffers[2][8][4096];
    static int next[2];
    return buffers[pool][next[pool]++ & 7];
}

const char *check_ref(const char *relative) {
    const char *dir = getenv("SD_REFERENCE_DIR");
    if (!dir || !*dir) dir = SD_REFERENCE_DIR_DEFAULT; /* ../shared/reference beside the checkout */
    char *buf = rotating_buffer(0);
    snprintf(buf, 4096, "%s/%s", dir, relative);
    struct stat st;
    check_record(stat(buf, &st) == 0, __FILE__, __LINE__,
                 "reference file missing: %s (set SD_REFERENCE_DIR)", buf);
    return buf;
}

const char *check_tmpdir(void) {
    static char dir[4096];
    if (!dir[0]) {
        const char *base = getenv("SD_TMPDIR");
        snprintf(dir, sizeof dir, "%s", (base && *base) ? base : SD_TMPDIR_DEFAULT);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            check_record(false, __FILE__, __LINE__, "cannot create %s: %s", dir, strerror(errno));
    }
    return dir;
}

const char *check_tmp(const char *name) {
    char *buf = rotating_buffer(1);
    snprintf(buf, 4096, "%s/%s", check_tmpdir(), name);
    return buf;
}

double check_rel_error(const float *a, const float *ref, size_t n) {
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(ref[i])) return INFINITY;
        double d = (double)a[i] - (double)ref[i];
        diff += d * d;
        norm += (double)ref[i] * (double)ref[i];
    }
    if (norm == 0.0) return diff == 0.0 ? 0.0 : INFINITY;
    return sqrt(diff / norm);
}

double check_max_abs_diff(const float *a, const float *ref, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

int check_run(const char *cmd, char *out, size_t cap) {
    char full[16384];
    snprintf(full, sizeof full, "( %s ) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int check_runf(char *out, size_t cap, const char *fmt, ...) {
    char cmd[16000];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd) {
        check_record(false, __FILE__, __LINE__, "command too long: %.80s...", cmd);
        return -1;
    }
    return check_run(cmd, out, cap);
}

long check_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

double check_file_rel_error(const char *ref_path, const char *got_path, const char *name) {
    sd_safetensors *ref = NULL, *got = NULL;
    double rel = INFINITY;
    bool opened = sd_st_open(&ref, ref_path) == SD_OK && sd_st_open(&got, got_path) == SD_OK;
    check_record(opened, __FILE__, __LINE__, "opening %s and %s: %s", ref_path, got_path, sd_last_error());
    const sd_st_tensor *t = opened ? sd_st_find(ref, name) : NULL;
    check_record(!opened || t != NULL, __FILE__, __LINE__, "%s has no tensor '%s'", ref_path, name);
    if (t) {
        float *a = malloc((size_t)t->numel * sizeof *a), *b = malloc((size_t)t->numel * sizeof *b);
        bool read = a && b && sd_st_read_f32(ref, name, a, t->ndim, t->shape) == SD_OK &&
                    sd_st_read_f32(got, name, b, t->ndim, t->shape) == SD_OK;
        check_record(read, __FILE__, __LINE__, "reading '%s': %s", name, sd_last_error());
        if (read) rel = check_rel_error(b, a, (size_t)t->numel);
        free(a);
        free(b);
    }
    sd_st_close(ref);
    sd_st_close(got);
    return rel;
}

float *check_read_tensor4(const sd_safetensors *g, const char *name, int64_t shape[4]) {
    const sd_st_tensor *t = sd_st_find(g, name);
    check_record(t && t->ndim == 4, __FILE__, __LINE__, "%s: golden tensor %s missing or not 4-D", g->path, name);
    if (!t || t->ndim != 4) return NULL;
    for (int i = 0; i < 4; i++) shape[i] = t->shape[i];
    float *buf = malloc((size_t)t->numel * sizeof(float));
    sd_status st = buf ? sd_st_read_f32(g, name, buf, 4, shape) : SD_ERR_NOMEM;
    check_record(st == SD_OK, __FILE__, __LINE__, "reading %s: %s", name, sd_last_error());
    return buf;
}

/* ---- the test backend ---- */

const char *check_backend_name(void) {
    const char *b = getenv("SDSTREAM_TEST_BACKEND");
    return b && *b ? b : "cpu";
}

/* Before main(): every default-backend model load of the test and every command it starts runs on
 * the test backend (the library's default would pick a GPU where one is present). */
__attribute__((constructor)) static void check_pin_backend(void) {
    const char *asked = getenv("SDSTREAM_BACKEND");
    if (asked && *asked && strcmp(asked, check_backend_name()) != 0)
        fprintf(stderr, "note: tests run on $SDSTREAM_TEST_BACKEND (%s), not SDSTREAM_BACKEND=%s\n", check_backend_name(),
                asked);
    setenv("SDSTREAM_BACKEND", check_backend_name(), 1);
}

sd_status check_backend_create(sd_backend **out) {
    const char *name = check_backend_name();
    if (strcmp(name, "cpu") == 0) return sd_backend_create(out, SD_BACKEND_CPU, 0);
    if (strcmp(name, "cuda") == 0) return sd_backend_create(out, SD_BACKEND_CUDA, 0);
    return sd_fail(SD_ERR_ARG, "SDSTREAM_TEST_BACKEND='%.40s': expected cpu or cuda", name);
}

void check_arena_init(sd_arena *arena, sd_backend *be) {
    sd_allocator alloc = sd_backend_allocator(be);
    sd_arena_init_with(arena, &alloc);
}

double check_tol(double fp32_tol) {
    /* the CPU computes in float32; CUDA's default (what the tests load with) is fp16 */
    if (strcmp(check_backend_name(), "cpu") == 0) return fp32_tol;
    return fp32_tol > 1e-2 ? fp32_tol : 1e-2;
}

/* ---- choosing cases ---- */

enum { MAX_CASE_NAMES = 64 };
static bool g_case_seen[MAX_CASE_NAMES];

bool check_case(const char *name) {
    const char *list = getenv("SD_TEST_CASES");
    if (!list || !*list) return true;
    size_t len = strlen(name);
    bool run = false;
    int i = 0;
    for (const char *p = list; *p; i++) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0) {
            run = true;
            if (i < MAX_CASE_NAMES) g_case_seen[i] = true;
        }
        p += n + (end ? 1 : 0);
    }
    return run;
}

static void check_cases_finish(void) {
    const char *list = getenv("SD_TEST_CASES");
    if (!list || !*list) return;
    printf("only the cases SD_TEST_CASES names ran: %s\n", list);
    int i = 0;
    for (const char *p = list; *p; i++) {
        const char *end = strchr(p, ',');
        int n = end ? (int)(end - p) : (int)strlen(p);
        check_record(i < MAX_CASE_NAMES && g_case_seen[i], __FILE__, __LINE__,
                     "SD_TEST_CASES names '%.*s', which is no case of this test (or never ran)", n, p);
        p += (size_t)n + (end ? 1 : 0);
    }
}
