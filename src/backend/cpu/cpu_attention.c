/* cpu_attention.c — multi-head attention, flash style, on the thread pool: one task per
 * (batch, head, tile of QB queries); keys in blocks of KB with an online softmax, so memory stays
 * constant (never a [Tq x Tk] score matrix; 4096-token UNet attention needs ~100 KB per thread).
 *
 * Everything is computed transposed, which keeps the softmax vectorised across queries and the
 * scores already in the GEMM's packed layout:
 *   S^T [keys x queries] = (scale K) [keys x D] . Q^T [D x queries]   written as NR-query panels
 *   O^T [D x queries]   += V^T [D x keys] . P^T [keys x queries]       P^T = exp(S^T - max) in place
 * The micro-kernel writes S^T with ldc = NR straight into "packed B" panels ([panel][key][NR]);
 * the softmax walks each key row as a vector of NR queries (no horizontal reductions); the same
 * panels are then B of the second product. K (scaled) and V^T are packed once per call for all
 * heads (shared by every query tile), Q^T once per task. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"

/* MAX_HEAD_DIM: the VAE's mid-block attention is one head of 512 (SD) or more; the per-thread
 * workspace grows with it (qb_pad * (2d + KB + 3) floats: 290 KB at 512), nothing else does. */
enum { QB = 64, KB = 240 /* multiple of MR = 6, 12 */, MAX_HEAD_DIM = 1024 };

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

typedef struct attn_job {
    const sd_gemm_kernel *kern;
    const sd_cpu_vec *vec;
    const float *q, *k, *v;
    float *out;
    int64_t batch, tq, tk, c, d, heads, q_tiles;
    int64_t tk_pad, d_pad, qb_pad, head_pack; /* floats of packed K + V^T per head */
    float *packed;                            /* [batch * heads][K: tk_pad x d | V^T: d_pad x tk] */
    float scale;
    bool causal;
    float *const *ws;
} attn_job;

/* Packs K (scaled, MR-key panels) and V^T (MR-dim panels) of heads [begin, end). */
static void pack_kv(void *ctx, int64_t begin, int64_t end, int thread) {
    attn_job *j = ctx;
    int mr = j->kern->mr;
    for (int64_t bh = begin; bh < end; bh++) {
        int64_t b = bh / j->heads, h = bh % j->heads;
        float *kp = j->packed + bh * j->head_pack, *vp = kp + j->tk_pad * j->d;
        sd_gemm_operand ko = {.p = j->k + b * j->tk * j->c + h * j->d, .rs = j->c, .cs = 1};
        sd_gemm_pack_a(&ko, kp, 0, j->tk, 0, j->d, mr);
        for (int64_t i = 0; i < j->tk_pad * j->d; i++) kp[i] *= j->scale;
        sd_gemm_operand vo = {.p = j->v + b * j->tk * j->c + h * j->d, .rs = 1, .cs = j->c};
        sd_gemm_pack_a(&vo, vp, 0, j->d, 0, j->tk, mr);
    }
}

static void attend(void *ctx, int64_t begin, int64_t end, int thread) {
    attn_job *j = ctx;
    const int mr = j->kern->mr, nr = j->kern->nr;
    const int64_t d = j->d, qbp = j->qb_pad;
    float *qp = j->ws[thread];      /* Q^T panels [n_panels][d][nr] */
    float *s = qp + qbp * d;        /* S^T / P^T panels [n_panels][KB][nr] */
    float *acc = s + KB * qbp;      /* O^T [d][qbp] */
    float *m = acc + d * qbp, *l = m + qbp, *corr = l + qbp;
    for (int64_t task = begin; task < end; task++) {
        int64_t bh = task / j->q_tiles, q0 = (task % j->q_tiles) * QB;
        int64_t b = bh / j->heads, h = bh % j->heads;
        int64_t nq = j->tq - q0 < QB ? j->tq - q0 : QB, n_panels = (nq + nr - 1) / nr;
        const float *kp = j->packed + bh * j->head_pack, *vp = kp + j->tk_pad * d;
        sd_gemm_operand qo = {.p = j->q + b * j->tq * j->c + h * d, .rs = 1, .cs = j->c};
        sd_gemm_pack_b(&qo, qp, 0, d, q0, nq, nr); /* the last panel is zero-padded */
        for (int64_t i = 0; i < qbp; i++) m[i] = -INFINITY, l[i] = 0.0f;
        memset(acc, 0, (size_t)(d * qbp) * sizeof(float));
        int64_t k_end = j->causal ? (q0 + nq < j->tk ? q0 + nq : j->tk) : j->tk;
        for (int64_t k0 = 0; k0 < k_end; k0 += KB) {
            int64_t nk = k_end - k0 < KB ? k_end - k0 : KB;
            for (int64_t p = 0; p < n_panels; p++)
                for (int64_t ir = 0; ir < nk; ir += mr)
                    j->kern->run(d, kp + (k0 + ir) * d, qp + p * d * nr, s + p * KB * nr + ir * nr, nr,
                                 (int)(nk - ir < mr ? nk - ir : mr), nr, false);
            if (j->causal) /* key k0 + r is hidden from query q0 + col when it comes later */
                for (int64_t p = 0; p < n_panels; p++)
                    for (int64_t r = 0; r < nk; r++)
                        for (int col = 0; col < nr; col++)
                            if (k0 + r > q0 + p * nr + col) s[p * KB * nr + r * nr + col] = -INFINITY;
            for (int64_t p = 0; p < n_panels; p++) {
                j->vec->softmax_panel(s + p * KB * nr, nk, nr, m + p * nr, l + p * nr, corr + p * nr);
                if (k0 > 0)
                    for (int64_t dd = 0; dd < d; dd++)
                        for (int col = 0; col < nr; col++) acc[dd * qbp + p * nr + col] *= corr[p * nr + col];
            }
            for (int64_t ir = 0; ir < d; ir += mr)
                for (int64_t p = 0; p < n_panels; p++)
                    j->kern->run(nk, vp + ir * j->tk + k0 * mr, s + p * KB * nr, acc + ir * qbp + p * nr, qbp,
                                 (int)(d - ir < mr ? d - ir : mr), nr, true);
        }
        float *o = j->out + (b * j->tq + q0) * j->c + h * d;
        for (int64_t i = 0; i < nq; i++) {
            float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
            for (int64_t dd = 0; dd < d; dd++) o[i * j->c + dd] = acc[dd * qbp + i] * inv;
        }
    }
}

void sd_cpu_attention(sd_backend *be, sd_tensor *out, const sd_tensor *q, const sd_tensor *k, const sd_tensor *v,
                      int n_heads, bool causal) {
    if (out->dtype != SD_DTYPE_F32 || q->dtype != SD_DTYPE_F32 || k->dtype != SD_DTYPE_F32 || v->dtype != SD_DTYPE_F32) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "attention: only float32 is supported");
        return;
    }
    sd_cpu_state *cpu = sd_cpu(be);
    const sd_gemm_kernel *kern = cpu->gemm;
    int64_t batch = q->shape[0], tq = q->shape[1], tk = k->shape[1], c = q->shape[2], d = c / n_heads;
    if (d > MAX_HEAD_DIM) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "attention: head dim %lld > %d", (long long)d, MAX_HEAD_DIM);
        return;
    }
    attn_job job = {.kern = kern, .vec = cpu->vec, .q = sd_f32(q), .k = sd_f32(k), .v = sd_f32(v),
                    .out = sd_f32(out), .batch = batch, .tq = tq, .tk = tk, .c = c, .d = d, .heads = n_heads,
                    .q_tiles = (tq + QB - 1) / QB};
    job.tk_pad = round_up(tk, kern->mr);
    job.d_pad = round_up(d, kern->mr);
    job.qb_pad = round_up(QB, kern->nr);
    job.head_pack = job.tk_pad * d + job.d_pad * tk;
    job.scale = 1.0f / sqrtf((float)d);
    job.causal = causal;
    job.packed = sd_cpu_scratch(be, (size_t)(batch * n_heads * job.head_pack));
    job.ws = sd_cpu_thread_scratch(be, (size_t)(job.qb_pad * (d + KB + d + 3)));
    if (!job.packed || !job.ws) return;
    sd_pool *pool = cpu->pool;
    sd_pool_for(pool, batch * n_heads, 1, pack_kv, &job);
    sd_pool_for(pool, batch * n_heads * job.q_tiles, 1, attend, &job);
}
