/* backend.c — op wrappers: shape checks shared by every backend, then dispatch. */
#include "backend/backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/op_profile.h"
#include "base/clock.h"

#ifdef SD_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

const char *sd_backend_kind_name(sd_backend_kind kind) {
    return kind == SD_BACKEND_CPU ? "cpu" : kind == SD_BACKEND_CUDA ? "cuda" : "unknown";
}

bool sd_backend_compiled(sd_backend_kind kind) {
#ifdef SD_HAVE_CUDA
    if (kind == SD_BACKEND_CUDA) return true;
#endif
    return kind == SD_BACKEND_CPU;
}

bool sd_backend_available(sd_backend_kind kind, char *reason, size_t reason_size) {
    if (reason && reason_size) reason[0] = '\0';
    if (kind == SD_BACKEND_CPU) return true;
    if (!sd_backend_compiled(kind)) {
        if (reason && reason_size) snprintf(reason, reason_size, "the %s backend is not compiled into this build (cmake -DSD_CUDA=ON)", sd_backend_kind_name(kind));
        return false;
    }
#ifdef SD_HAVE_CUDA
    if (kind == SD_BACKEND_CUDA) {
        if (sd_cuda_device_count() > 0) return true;
        if (reason && reason_size) snprintf(reason, reason_size, "%s", sd_cuda_unavailable_reason());
        return false;
    }
#endif
    return false;
}

sd_status sd_backend_create_dtype(sd_backend **out, sd_backend_kind kind, int n_threads, sd_dtype act_dtype) {
    sd_status st;
    switch (kind) {
    case SD_BACKEND_CPU:
        if (act_dtype != SD_DTYPE_F32)
            return sd_fail(SD_ERR_UNSUPPORTED, "the cpu backend computes activations in float32 only (asked for %s)",
                           sd_dtype_name(act_dtype));
        st = sd_cpu_backend_create(out, n_threads);
        break;
    case SD_BACKEND_CUDA:
#ifdef SD_HAVE_CUDA
        st = sd_cuda_backend_create(out, act_dtype);
        break;
#else
        return sd_fail(SD_ERR_UNSUPPORTED, "the CUDA backend is not compiled into this build (cmake -DSD_CUDA=ON on a "
                       "machine with the CUDA toolkit)");
#endif
    default: return sd_fail(SD_ERR_ARG, "unknown backend kind %d", (int)kind);
    }
    if (st == SD_OK) {
        (*out)->profile = sd_op_profile_from_env();
    }
    return st;
}

sd_status sd_backend_create(sd_backend **out, sd_backend_kind kind, int n_threads) {
    return sd_backend_create_dtype(out, kind, n_threads, kind == SD_BACKEND_CUDA ? SD_DTYPE_F16 : SD_DTYPE_F32);
}

void sd_backend_free(sd_backend *be) {
    if (!be) return;
    if (be->profile) {
        char title[64];
        snprintf(title, sizeof title, "%s backend, %d threads", be->vt->name, be->n_threads);
        sd_op_profile_print(be->profile, stderr, title);
        sd_op_profile_free(be->profile);
    }
    be->vt->free(be);
}

sd_status sd_backend_status(const sd_backend *be) { return be->status; }

void sd_backend_clear_status(sd_backend *be) { be->status = SD_OK; }

void sd_backend_fail(sd_backend *be, sd_status status, const char *fmt, ...) {
    if (be->status != SD_OK) return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* a failure passed up again (a component's status re-recorded by its caller) keeps one prefix */
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s backend: ", be->vt->name);
    bool prefixed = strncmp(msg, prefix, strlen(prefix)) == 0;
    be->status = sd_fail(status, "%s%s", prefixed ? "" : prefix, msg);
}

/* Profiling (op_profile.h): the start time when on, and the row an op adds when it is done. */
static double op_start(sd_backend *be) { return be->profile ? sd_backend_now_ms(be) : 0.0; }

static void SD_PRINTF(4, 5) op_done(sd_backend *be, double t0, double flops, const char *fmt, ...) {
    if (!be->profile) return;
    double ms = sd_backend_now_ms(be) - t0;
    char key[72];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    sd_op_profile_add(be->profile, key, ms, flops);
}

/* Skips the op when an earlier one failed or an arena allocation came back empty. */
static bool ready(sd_backend *be, const sd_tensor *out) { return be->status == SD_OK && out && out->data; }

static bool same_shape(const sd_tensor *a, const sd_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

static void shape_mismatch(sd_backend *be, const char *op, const char *what, const sd_tensor *a, const sd_tensor *b) {
    sd_backend_fail(be, SD_ERR_ARG, "%s: %s shapes differ ([%lld..] %d-d vs [%lld..] %d-d, %lld vs %lld elements)", op,
                    what, (long long)a->shape[0], a->ndim, (long long)b->shape[0], b->ndim,
                    (long long)sd_tensor_numel(a), (long long)sd_tensor_numel(b));
}

void sd_op_linear(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias) {
    if (!ready(be, out)) return;
    int64_t k = sd_tensor_cols(in), n = weight->shape[0];
    if (weight->ndim != 2 || weight->shape[1] != k || sd_tensor_cols(out) != n ||
        sd_tensor_rows(out) != sd_tensor_rows(in) || (bias && sd_tensor_numel(bias) != n)) {
        sd_backend_fail(be, SD_ERR_ARG, "linear: in [..., %lld] weight [%lld, %lld] out [..., %lld] do not fit",
                        (long long)k, (long long)weight->shape[0], (long long)weight->shape[1],
                        (long long)sd_tensor_cols(out));
        return;
    }
    double flops0 = be->flops;
    be->flops += 2.0 * (double)sd_tensor_rows(in) * (double)k * (double)n;
    double t0 = op_start(be);
    be->vt->linear(be, out, in, weight, bias);
    op_done(be, t0, be->flops - flops0, "linear %lldx%lld->%lld", (long long)sd_tensor_rows(in), (long long)k, (long long)n);
}

void sd_op_layer_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                      const sd_tensor *beta, float eps) {
    if (!ready(be, out)) return;
    int64_t c = sd_tensor_cols(in);
    if (!same_shape(out, in) || sd_tensor_numel(gamma) != c || sd_tensor_numel(beta) != c) {
        sd_backend_fail(be, SD_ERR_ARG, "layer_norm: in/out/gamma/beta do not fit (C = %lld)", (long long)c);
        return;
    }
    double t0 = op_start(be);
    be->vt->layer_norm(be, out, in, gamma, beta, eps);
    op_done(be, t0, 0.0, "layer_norm %lld", (long long)c);
}

void sd_op_attention(sd_backend *be, sd_tensor *out, const sd_tensor *q, const sd_tensor *k, const sd_tensor *v,
                     int n_heads, bool causal) {
    if (!ready(be, out)) return;
    if (q->ndim != 3 || k->ndim != 3 || !same_shape(k, v) || !same_shape(out, q) || q->shape[0] != k->shape[0] ||
        q->shape[2] != k->shape[2] || n_heads <= 0 || q->shape[2] % n_heads != 0) {
        sd_backend_fail(be, SD_ERR_ARG, "attention: q [%lld, %lld, %lld] k [%lld, %lld, %lld] with %d heads do not fit",
                        (long long)q->shape[0], (long long)q->shape[1], (long long)q->shape[2], (long long)k->shape[0],
                        (long long)k->shape[1], (long long)k->shape[2], n_heads);
        return;
    }
    /* QK^T and PV: 2 x (B * Tq * Tk * C) multiply-adds (a causal mask skips about half) */
    double flops0 = be->flops;
    be->flops += 4.0 * (double)q->shape[0] * (double)q->shape[1] * (double)k->shape[1] * (double)q->shape[2] * (causal ? 0.5 : 1.0);
    double t0 = op_start(be);
    be->vt->attention(be, out, q, k, v, n_heads, causal);
    op_done(be, t0, be->flops - flops0, "attention%s b%lld q%lld k%lld c%lld h%d", causal ? " causal" : "", (long long)q->shape[0], (long long)q->shape[1], (long long)k->shape[1], (long long)q->shape[2], n_heads);
}

void sd_op_activation(sd_backend *be, sd_tensor *out, const sd_tensor *in, sd_activation act) {
    if (!ready(be, out)) return;
    if (sd_tensor_numel(out) != sd_tensor_numel(in)) {
        shape_mismatch(be, "activation", "in/out", in, out);
        return;
    }
    double t0 = op_start(be);
    be->vt->activation(be, out, in, act);
    op_done(be, t0, 0.0, "activation %d", (int)act);
}

void sd_op_add(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!ready(be, out)) return;
    if (sd_tensor_numel(a) != sd_tensor_numel(b) || sd_tensor_numel(out) != sd_tensor_numel(a)) {
        shape_mismatch(be, "add", "a/b", a, b);
        return;
    }
    double t0 = op_start(be);
    be->vt->add(be, out, a, b);
    op_done(be, t0, 0.0, "add");
}

void sd_op_mul(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!ready(be, out)) return;
    if (sd_tensor_numel(a) != sd_tensor_numel(b) || sd_tensor_numel(out) != sd_tensor_numel(a)) {
        shape_mismatch(be, "mul", "a/b", a, b);
        return;
    }
    double t0 = op_start(be);
    be->vt->mul(be, out, a, b);
    op_done(be, t0, 0.0, "mul");
}

void sd_op_softmax(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (!ready(be, out)) return;
    if (!same_shape(out, in)) {
        shape_mismatch(be, "softmax", "in/out", in, out);
        return;
    }
    double t0 = op_start(be);
    be->vt->softmax(be, out, in);
    op_done(be, t0, 0.0, "softmax");
}

void sd_op_embedding(sd_backend *be, sd_tensor *out, const sd_tensor *table, const int32_t *ids) {
    if (!ready(be, out)) return;
    int64_t rows = sd_tensor_rows(out), vocab = table->shape[0];
    if (table->ndim != 2 || sd_tensor_cols(out) != table->shape[1]) {
        sd_backend_fail(be, SD_ERR_ARG, "embedding: table [%lld, %lld] does not fit out rows of %lld",
                        (long long)table->shape[0], (long long)table->shape[1], (long long)sd_tensor_cols(out));
        return;
    }
    if (rows > 0 && !ids) {
        sd_backend_fail(be, SD_ERR_ARG, "embedding: ids is NULL");
        return;
    }
    for (int64_t i = 0; i < rows; i++) {
        if (ids[i] < 0 || ids[i] >= vocab) {
            sd_backend_fail(be, SD_ERR_ARG, "embedding: id %d at position %lld is outside the table of %lld rows",
                            (int)ids[i], (long long)i, (long long)vocab);
            return;
        }
    }
    double t0 = op_start(be);
    be->vt->embedding(be, out, table, ids);
    op_done(be, t0, 0.0, "embedding");
}

/* ---- image ops ---- */

static void fail_shapes(sd_backend *be, const char *op, const sd_tensor *out, const sd_tensor *in) {
    char a[128], b[128];
    int pa = 0, pb = 0;
    for (int i = 0; i < out->ndim; i++) pa += snprintf(a + pa, sizeof a - (size_t)pa, i ? ",%lld" : "%lld", (long long)out->shape[i]);
    for (int i = 0; i < in->ndim; i++) pb += snprintf(b + pb, sizeof b - (size_t)pb, i ? ",%lld" : "%lld", (long long)in->shape[i]);
    sd_backend_fail(be, SD_ERR_ARG, "%s: out [%s] does not fit in [%s]", op, a, b);
}

void sd_op_conv2d(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight, const sd_tensor *bias,
                  int stride, int padding) {
    sd_op_conv2d_fused(be, out, in, weight, bias, stride, padding, NULL, SD_ACT_NONE);
}

void sd_op_conv2d_fused(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight,
                        const sd_tensor *bias, int stride, int padding, const sd_tensor *residual, sd_activation act) {
    if (!ready(be, out)) return;
    if ((residual && (sd_tensor_numel(residual) != sd_tensor_numel(out) || residual->dtype != out->dtype ||
                      residual->data == out->data)) ||
        (act != SD_ACT_NONE && act != SD_ACT_RELU)) {
        sd_backend_fail(be, SD_ERR_ARG, "conv2d: the fused epilogue takes a residual of out's size and dtype, not out "
                        "itself, and no activation or ReLU (activation %d)", (int)act);
        return;
    }
    if (residual && !residual->data) return; /* its arena allocation failed: the arena says why */
    int64_t k = weight->ndim == 4 ? weight->shape[2] : 0;
    bool ok = in->ndim == 4 && out->ndim == 4 && weight->ndim == 4 && weight->shape[3] == k && k > 0 && stride > 0 &&
              padding >= 0 && weight->shape[1] == in->shape[1] && out->shape[0] == in->shape[0] &&
              out->shape[1] == weight->shape[0] && (!bias || sd_tensor_numel(bias) == weight->shape[0]);
    if (ok) {
        int64_t ho = (in->shape[2] + 2 * padding - k) / stride + 1, wo = (in->shape[3] + 2 * padding - k) / stride + 1;
        ok = ho > 0 && wo > 0 && out->shape[2] == ho && out->shape[3] == wo;
    }
    if (!ok) {
        fail_shapes(be, "conv2d", out, in);
        return;
    }
    double flops0 = be->flops;
    be->flops += 2.0 * (double)sd_tensor_numel(out) * (double)in->shape[1] * (double)k * (double)k;
    double t0 = op_start(be);
    be->vt->conv2d(be, out, in, weight, bias, stride, padding, residual, act);
    op_done(be, t0, be->flops - flops0, "conv%lldx%lld s%d %lld->%lld @%lldx%lld%s", (long long)k, (long long)k, stride, (long long)in->shape[1], (long long)out->shape[1], (long long)out->shape[2], (long long)out->shape[3], residual ? " +res" : "");
}

void sd_op_group_norm(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *gamma,
                      const sd_tensor *beta, int groups, float eps, bool silu) {
    if (!ready(be, out)) return;
    int64_t c = in->ndim >= 2 ? in->shape[1] : 0;
    if (!same_shape(out, in) || groups <= 0 || c % groups != 0 || sd_tensor_numel(gamma) != c ||
        sd_tensor_numel(beta) != c) {
        sd_backend_fail(be, SD_ERR_ARG, "group_norm: %lld channels, %d groups, gamma/beta of %lld do not fit",
                        (long long)c, groups, (long long)sd_tensor_numel(gamma));
        return;
    }
    double t0 = op_start(be);
    be->vt->group_norm(be, out, in, gamma, beta, groups, eps, silu);
    op_done(be, t0, 0.0, "group_norm%s %lld @%lld", silu ? "+silu" : "", (long long)c, (long long)(sd_tensor_numel(in) / (in->shape[0] * c)));
}

void sd_op_upsample_nearest(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (!ready(be, out)) return;
    if (in->ndim != 4 || out->ndim != 4 || out->shape[0] != in->shape[0] || out->shape[1] != in->shape[1] ||
        out->shape[2] < in->shape[2] || out->shape[3] < in->shape[3] || in->shape[2] < 1 || in->shape[3] < 1) {
        fail_shapes(be, "upsample_nearest", out, in);
        return;
    }
    double t0 = op_start(be);
    be->vt->upsample_nearest(be, out, in);
    op_done(be, t0, 0.0, "upsample_nearest");
}

void sd_op_upsample_nearest2x(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (!ready(be, out)) return;
    if (in->ndim != 4 || out->ndim != 4 || out->shape[2] != 2 * in->shape[2] || out->shape[3] != 2 * in->shape[3]) {
        fail_shapes(be, "upsample_nearest2x", out, in);
        return;
    }
    sd_op_upsample_nearest(be, out, in);
}

void sd_op_add_broadcast(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!ready(be, out)) return;
    int64_t n = a->ndim >= 2 ? a->shape[0] : 0, c = a->ndim >= 2 ? a->shape[1] : 0, nb = sd_tensor_numel(b);
    if (!same_shape(out, a) || !(nb == c || nb == n * c) || c == 0) {
        fail_shapes(be, "add_broadcast", a, b);
        return;
    }
    double t0 = op_start(be);
    be->vt->add_broadcast(be, out, a, b);
    op_done(be, t0, 0.0, "add_broadcast");
}

void sd_op_axpby(sd_backend *be, sd_tensor *out, float alpha, const sd_tensor *a, float beta, const sd_tensor *b) {
    if (!ready(be, out)) return;
    if (sd_tensor_numel(a) != sd_tensor_numel(b) || sd_tensor_numel(out) != sd_tensor_numel(a)) {
        shape_mismatch(be, "axpby", "a/b", a, b);
        return;
    }
    double t0 = op_start(be);
    be->vt->axpby(be, out, alpha, a, beta, b);
    op_done(be, t0, 0.0, "axpby");
}

void sd_op_scale(sd_backend *be, sd_tensor *out, const sd_tensor *in, float mul, float add) {
    if (!ready(be, out)) return;
    if (sd_tensor_numel(out) != sd_tensor_numel(in)) {
        shape_mismatch(be, "scale", "in/out", in, out);
        return;
    }
    double t0 = op_start(be);
    be->vt->scale(be, out, in, mul, add);
    op_done(be, t0, 0.0, "scale");
}

void sd_op_geglu(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (!ready(be, out)) return;
    if (sd_tensor_cols(in) != 2 * sd_tensor_cols(out) || sd_tensor_rows(in) != sd_tensor_rows(out)) {
        fail_shapes(be, "geglu", out, in);
        return;
    }
    double t0 = op_start(be);
    be->vt->geglu(be, out, in);
    op_done(be, t0, 0.0, "geglu");
}

void sd_op_transpose_hw_c(sd_backend *be, sd_tensor *out, const sd_tensor *in, bool to_channels_last) {
    if (!ready(be, out)) return;
    const sd_tensor *img = to_channels_last ? in : out, *seq = to_channels_last ? out : in;
    if (img->ndim != 4 || seq->ndim != 3 || seq->shape[0] != img->shape[0] ||
        seq->shape[1] != img->shape[2] * img->shape[3] || seq->shape[2] != img->shape[1]) {
        fail_shapes(be, "transpose_hw_c", out, in);
        return;
    }
    double t0 = op_start(be);
    be->vt->transpose_hw_c(be, out, in, to_channels_last);
    op_done(be, t0, 0.0, "transpose_hw_c");
}

void sd_op_concat_channels(sd_backend *be, sd_tensor *out, const sd_tensor *a, const sd_tensor *b) {
    if (!ready(be, out)) return;
    bool ok = a->ndim == b->ndim && out->ndim == a->ndim && a->ndim >= 2 && out->shape[0] == a->shape[0] &&
              b->shape[0] == a->shape[0] && out->shape[1] == a->shape[1] + b->shape[1];
    for (int i = 2; ok && i < a->ndim; i++) ok = a->shape[i] == b->shape[i] && out->shape[i] == a->shape[i];
    if (!ok) {
        fail_shapes(be, "concat_channels", out, a);
        return;
    }
    double t0 = op_start(be);
    be->vt->concat_channels(be, out, a, b);
    op_done(be, t0, 0.0, "concat_channels");
}

size_t sd_backend_conv_weight_bytes(const sd_backend *be, const sd_tensor *w) {
    if (be->kind != SD_BACKEND_CPU || w->ndim != 4 || w->panel) return 0;
    return sd_cpu_conv_weight_bytes(be, w);
}

void sd_backend_pack_conv_weight(const sd_backend *be, const sd_tensor *w, void *dst, sd_tensor *packed) {
    sd_cpu_pack_conv_weight(be, w, dst, packed);
}

void sd_backend_upload(sd_backend *be, sd_tensor *dst, const void *host) {
    if (!ready(be, dst)) return;
    be->vt->upload(be, dst, host);
}

void sd_backend_download(sd_backend *be, void *host, const sd_tensor *src) {
    if (be->status != SD_OK || !src->data) return;
    be->vt->download(be, host, src);
}

void sd_op_copy(sd_backend *be, sd_tensor *out, const sd_tensor *in) {
    if (!ready(be, out)) return;
    if (sd_tensor_numel(out) != sd_tensor_numel(in) || out->dtype != in->dtype) {
        shape_mismatch(be, "copy", "in/out", in, out);
        return;
    }
    double t0 = op_start(be);
    be->vt->copy(be, out, in);
    op_done(be, t0, 0.0, "copy");
}

void sd_op_fill(sd_backend *be, sd_tensor *out, float value) {
    if (!ready(be, out)) return;
    double t0 = op_start(be);
    be->vt->fill(be, out, value);
    op_done(be, t0, 0.0, "fill");
}

static bool rgb_fits(const sd_tensor *img, const sd_tensor *rgb) {
    return img->ndim == 4 && rgb->ndim == 4 && rgb->dtype == SD_DTYPE_U8 && img->shape[1] == 3 && rgb->shape[3] == 3 &&
           rgb->shape[0] == img->shape[0] && rgb->shape[1] == img->shape[2] && rgb->shape[2] == img->shape[3];
}

void sd_op_rgb8_to_image(sd_backend *be, sd_tensor *out, const sd_tensor *rgb) {
    if (!ready(be, out)) return;
    if (!rgb_fits(out, rgb)) {
        fail_shapes(be, "rgb8_to_image", out, rgb);
        return;
    }
    double t0 = op_start(be);
    be->vt->rgb8_to_image(be, out, rgb);
    op_done(be, t0, 0.0, "rgb8_to_image");
}

void sd_op_image_to_rgb8(sd_backend *be, sd_tensor *rgb, const sd_tensor *in) {
    if (!ready(be, rgb)) return;
    if (!rgb_fits(in, rgb)) {
        fail_shapes(be, "image_to_rgb8", rgb, in);
        return;
    }
    double t0 = op_start(be);
    be->vt->image_to_rgb8(be, rgb, in);
    op_done(be, t0, 0.0, "image_to_rgb8");
}

/* ---- memory ---- */

void *sd_backend_mem_alloc(sd_backend *be, size_t bytes) {
    if (be->vt->mem_alloc) return be->vt->mem_alloc(be, bytes);
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) sd_backend_fail(be, SD_ERR_NOMEM, "cannot allocate %zu bytes", bytes);
    return p;
}

void sd_backend_mem_free(sd_backend *be, void *ptr) {
    if (!ptr) return;
    if (be->vt->mem_free) be->vt->mem_free(be, ptr);
    else free(ptr);
}

void sd_backend_synchronize(sd_backend *be) {
    if (be->vt->synchronize) be->vt->synchronize(be);
}

static void *arena_alloc(void *ctx, size_t bytes) {
    sd_backend *be = ctx;
    return be->vt->mem_alloc(be, bytes); /* a failure is also the backend's status, naming the CUDA error */
}

static void arena_free(void *ctx, void *ptr) {
    sd_backend *be = ctx;
    be->vt->mem_free(be, ptr);
}

sd_allocator sd_backend_allocator(sd_backend *be) {
    if (!be->vt->mem_alloc) return (sd_allocator){0};
    return (sd_allocator){arena_alloc, arena_free, be};
}

sd_tensor sd_backend_tensor(const sd_backend *be, sd_arena *arena, int ndim, const int64_t *shape) {
    return sd_arena_tensor(arena, be->act_dtype, ndim, shape);
}

double sd_backend_now_ms(sd_backend *be) {
    sd_backend_synchronize(be);
    return sd_now_ms();
}

bool sd_backend_wants_weight_upload(const sd_backend *be) { return be && be->vt->upload_weight != NULL; }

sd_status sd_backend_upload_weight(sd_backend *be, sd_tensor *dst, const sd_tensor *host) {
    if (be->status != SD_OK) return be->status;
    if (!be->vt->upload_weight) {
        *dst = *host;
        return SD_OK;
    }
    be->vt->upload_weight(be, dst, host);
    return be->status;
}
