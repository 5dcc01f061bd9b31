/* test_rng.c — sd_randn against torch: known values for sizes below 16 and the noise tensors the
 * stream goldens recorded (torch.Generator().manual_seed(2) and the global generator seeded 1234,
 * drawn call after call). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/rng.h"
#include "base/safetensors.h"
#include "check.h"

static void test_small_sizes(void) {
    /* torch.manual_seed(0); torch.randn(2, 3) and torch.manual_seed(42); torch.randn(2, 3) */
    static const float seed0[6] = {1.5410f, -0.2934f, -2.1788f, 0.5684f, -1.0845f, -1.3986f};
    static const float seed42[6] = {0.3367f, 0.1288f, 0.2345f, 0.2303f, -1.1229f, -0.1863f};
    float got[6];
    CHECK_OK(sd_randn(0, 6, got));
    CHECK(check_max_abs_diff(got, seed0, 6) < 1e-4, "randn(6) seed 0: max diff %g", check_max_abs_diff(got, seed0, 6));
    CHECK_OK(sd_randn(42, 6, got));
    CHECK(check_max_abs_diff(got, seed42, 6) < 1e-4, "randn(6) seed 42: max diff %g", check_max_abs_diff(got, seed42, 6));
    /* the cached sin half: two draws of 3 equal one draw of 6 */
    sd_rng rng;
    sd_rng_seed(&rng, 0);
    float a[6];
    sd_rng_randn(&rng, a, 3);
    sd_rng_randn(&rng, a + 3, 3);
    CHECK(check_max_abs_diff(a, seed0, 6) < 1e-4, "randn(3) twice continues the Box-Muller pair");
}

static void test_against_goldens(void) {
    const char *path = check_ref("golden/stream/sd15_t2i_none_batch_t4.safetensors");
    sd_safetensors *st = NULL;
    CHECK_OK(sd_st_open(&st, path));
    if (!st) return;
    static float ref[4096], got[4096];
    /* prepare.init_noise: torch.randn([4,4,16,16], generator=Generator().manual_seed(2)) */
    CHECK_OK(sd_st_read_f32(st, "prepare.init_noise", ref, 4, (int64_t[]){4, 4, 16, 16}));
    CHECK_OK(sd_randn(2, 4096, got));
    CHECK(check_max_abs_diff(got, ref, 4096) < 1e-6, "init_noise (seed 2, 4096 values): max diff %g",
          check_max_abs_diff(got, ref, 4096));
    /* call{k}.randn0: the global generator seeded 1234, eight successive [1,4,16,16] draws */
    sd_rng rng;
    sd_rng_seed(&rng, 1234);
    for (int k = 0; k < 8; k++) {
        char name[64];
        snprintf(name, sizeof name, "call%d.randn0", k);
        CHECK_OK(sd_st_read_f32(st, name, ref, 4, (int64_t[]){1, 4, 16, 16}));
        sd_rng_randn(&rng, got, 1024);
        CHECK(check_max_abs_diff(got, ref, 1024) < 1e-6, "%s: max diff %g", name, check_max_abs_diff(got, ref, 1024));
    }
    sd_st_close(st);
}

static void test_tail_layout(void) {
    /* n % 16 != 0: the last 16 values are redrawn; the first n-16 equal the n-rounded-down draw */
    float a[40], b[32];
    CHECK_OK(sd_randn(7, 40, a));
    CHECK_OK(sd_randn(7, 32, b));
    CHECK(memcmp(a, b, 16 * sizeof(float)) == 0, "first block of randn(40) equals randn(32)'s");
    CHECK(memcmp(a + 16, b + 16, 8 * sizeof(float)) == 0, "values before the redrawn tail are kept");
    int finite = 1;
    for (int i = 0; i < 40; i++) finite &= isfinite(a[i]) != 0;
    CHECK(finite, "all values finite");
    CHECK(sd_randn(1, -1, a) == SD_ERR_ARG, "negative size is an argument error");
}

int main(void) {
    test_small_sizes();
    test_against_goldens();
    test_tail_layout();
    return check_finish();
}
