/* cpu_attention.c — multi-head attention computed in tiles with an online softmax
 * (flash-attention style): a [QB x KB] score tile at a time, never the full [Tq x Tk] matrix, so
 * memory stays constant at 4096-token UNet attention. Tiles go through BLAS sgemm with the head's
 * column stride, so no head is ever copied out. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"

enum { QB = 64, KB = 256, MAX_HEAD_DIM = 256 };

/* One query tile of one head against all keys. q/k/v/o point at the head's first column. */
static void attend_tile(float *o, const float *q, const float *k, const float *v, int64_t ld, int64_t nq,
                        int64_t tk, int64_t d, float scale, bool causal, int64_t q_start) {
    float scores[QB * KB];
    float acc[QB * MAX_HEAD_DIM];
    float row_max[QB], row_sum[QB];
    for (int64_t i = 0; i < nq; i++) {
        row_max[i] = -INFINITY;
        row_sum[i] = 0.0f;
    }
    memset(acc, 0, (size_t)(nq * d) * sizeof(float));
    int64_t k_end = causal ? (q_start + nq < tk ? q_start + nq : tk) : tk;
    for (int64_t k0 = 0; k0 < k_end; k0 += KB) {
        int64_t nk = k_end - k0 < KB ? k_end - k0 : KB;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)nq, (blasint)nk, (blasint)d, scale, q,
                    (blasint)ld, k + k0 * ld, (blasint)ld, 0.0f, scores, (blasint)nk);
        for (int64_t i = 0; i < nq; i++) {
            float *s = scores + i * nk;
            int64_t valid = nk;
            if (causal) { /* key j is visible to query i when j <= i */
                int64_t last = q_start + i - k0;
                valid = last + 1 < nk ? (last + 1 > 0 ? last + 1 : 0) : nk;
            }
            float mx = row_max[i];
            for (int64_t j = 0; j < valid; j++) mx = s[j] > mx ? s[j] : mx;
            float correction = (row_max[i] == -INFINITY) ? 0.0f : expf(row_max[i] - mx);
            float sum = 0.0f;
            for (int64_t j = 0; j < valid; j++) {
                s[j] = expf(s[j] - mx);
                sum += s[j];
            }
            for (int64_t j = valid; j < nk; j++) s[j] = 0.0f;
            row_sum[i] = row_sum[i] * correction + sum;
            row_max[i] = mx;
            if (correction != 1.0f)
                for (int64_t c = 0; c < d; c++) acc[i * d + c] *= correction;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nq, (blasint)d, (blasint)nk, 1.0f, scores,
                    (blasint)nk, v + k0 * ld, (blasint)ld, 1.0f, acc, (blasint)d);
    }
    for (int64_t i = 0; i < nq; i++) {
        float inv = row_sum[i] > 0.0f ? 1.0f / row_sum[i] : 0.0f;
        for (int64_t c = 0; c < d; c++) o[i * ld + c] = acc[i * d + c] * inv;
    }
}

void sd_cpu_attention(sd_backend *be, sd_tensor *out, const sd_tensor *q, const sd_tensor *k, const sd_tensor *v,
                      int n_heads, bool causal) {
    if (out->dtype != SD_DTYPE_F32 || q->dtype != SD_DTYPE_F32 || k->dtype != SD_DTYPE_F32 || v->dtype != SD_DTYPE_F32) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "attention: only float32 is supported");
        return;
    }
    int64_t batch = q->shape[0], tq = q->shape[1], tk = k->shape[1], c = q->shape[2];
    int64_t d = c / n_heads;
    if (d > MAX_HEAD_DIM) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "attention: head dim %lld > %d", (long long)d, MAX_HEAD_DIM);
        return;
    }
    float scale = 1.0f / sqrtf((float)d);
    for (int64_t b = 0; b < batch; b++) {
        for (int h = 0; h < n_heads; h++) {
            const float *qh = sd_f32(q) + b * tq * c + h * d;
            const float *kh = sd_f32(k) + b * tk * c + h * d;
            const float *vh = sd_f32(v) + b * tk * c + h * d;
            float *oh = sd_f32(out) + b * tq * c + h * d;
            for (int64_t i0 = 0; i0 < tq; i0 += QB) {
                int64_t nq = tq - i0 < QB ? tq - i0 : QB;
                attend_tile(oh + i0 * c, qh + i0 * c, kh, vh, c, nq, tk, d, scale, causal, i0);
            }
        }
    }
}
