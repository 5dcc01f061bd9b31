/* cuda_attention.cu — multi-head scaled dot-product attention, flash style: the [Tq x Tk] score
 * matrix is never stored; keys go by in tiles with an online softmax in float32. Correct first,
 * CUDA cores (no tensor cores yet): a later, measured step may add an mma/wgmma kernel.
 *
 * q [B, Tq, H*D], k/v [B, Tk, H*D], out [B, Tq, H*D]; head h is columns h*D .. (h+1)*D.
 *
 * Grid (ceil(Tq / BQ), H, B), 128 threads. Each query row is owned by LPQ consecutive lanes of a
 * warp (BQ = 128 / LPQ rows per block); lane `sub` of the group holds NI = DMAX / LPQ of the row's
 * dimensions, in float4 slots sub, sub + LPQ, sub + 2 LPQ, ... so dimension of element i is
 *     dd(i) = 4 * (sub + LPQ * (i / 4)) + i % 4,     covering 0 .. DMAX-1 once over the group.
 * Per key tile (BK keys, staged as float in shared memory, zero past D and past Tk):
 *   s[kk]  = sum over the lane's dims of q * k, then a butterfly over the LPQ lanes (every lane
 *            ends with the same, bitwise equal, full dot product)
 *   masked (key >= Tk, or causal and key > query) to -inf
 *   m_new  = max(m, max_kk s);  p = exp2(s - m_new);  corr = exp2(m - m_new)
 *   l      = l * corr + sum p;  o = o * corr + sum_kk p[kk] * v[kk]   (the lane's dims)
 * q is pre-scaled by log2(e) / sqrt(D) so the exponentials are exp2 (same softmax). At the end
 * out = o / l. Dimensions past D hold zeros in q, k and v, so they add nothing.
 *
 * Configurations (DMAX, LPQ, BK): registers ~ 2 NI + BK floats per thread; shared memory
 * 2 * BK * DMAX floats = 10..32 KB (static, under the 48 KB default). D chooses the smallest
 * DMAX >= D; D > 512 is refused. Cost: about one shared-memory float4 load per 4 FMAs in both
 * products, log2(LPQ) shuffles per key; no tensor cores. */
#include "backend/cuda/cuda_common.cuh"

enum { ATT_THREADS = 128 };

template <typename T, int DMAX, int LPQ, int BK>
static __global__ void __launch_bounds__(ATT_THREADS)
    attention_kernel(T *out, const T *q, const T *k, const T *v, int64_t tq, int64_t tk, int64_t heads, int d,
                     float qscale, bool causal) {
    constexpr int NI = DMAX / LPQ; /* dims per lane */
    constexpr int NJ = NI / 4;     /* float4 slots per lane */
    constexpr int BQ = ATT_THREADS / LPQ;
    static_assert(DMAX % (4 * LPQ) == 0, "DMAX must split into float4 slots over the lanes");
    static_assert(32 % LPQ == 0, "a query's lanes must sit in one warp");
    __shared__ __align__(16) float ks[BK * DMAX];
    __shared__ __align__(16) float vs[BK * DMAX];

    const int tid = threadIdx.x, qi = tid / LPQ, sub = tid % LPQ;
    const int64_t b = blockIdx.z, h = blockIdx.y;
    const int64_t ld = heads * d; /* row stride of q, k, v, out */
    const int64_t q0 = (int64_t)blockIdx.x * BQ, row = q0 + qi;
    const bool valid = row < tq;

    float qr[NI], o[NI];
    const T *qrow = q + (b * tq + (valid ? row : 0)) * ld + h * d;
#pragma unroll
    for (int i = 0; i < NI; i++) {
        const int dd = 4 * (sub + LPQ * (i / 4)) + i % 4;
        qr[i] = valid && dd < d ? sd_ld(qrow[dd]) * qscale : 0.0f;
        o[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;

    /* keys this block needs: all, or (causal) up to its last valid query row */
    const int64_t last = (q0 + BQ < tq ? q0 + BQ : tq) - 1;
    const int64_t kend = causal ? (last + 1 < tk ? last + 1 : tk) : tk;
    const T *kb = k + b * tk * ld + h * d, *vb = v + b * tk * ld + h * d;

    for (int64_t k0 = 0; k0 < kend; k0 += BK) { /* block-uniform loop */
        __syncthreads();                          /* the previous tile is no longer read */
        for (int e = tid; e < BK * DMAX; e += ATT_THREADS) {
            const int kk = e / DMAX, dd = e % DMAX;
            const int64_t key = k0 + kk;
            const bool in = key < tk && dd < d;
            ks[e] = in ? sd_ld(kb[key * ld + dd]) : 0.0f;
            vs[e] = in ? sd_ld(vb[key * ld + dd]) : 0.0f;
        }
        __syncthreads();

        float s[BK];
        float mt = -INFINITY;
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            const float4 *kr = reinterpret_cast<const float4 *>(ks + kk * DMAX);
            float acc = 0.0f;
#pragma unroll
            for (int j = 0; j < NJ; j++) {
                const float4 kv = kr[sub + LPQ * j];
                acc = fmaf(qr[4 * j + 0], kv.x, acc);
                acc = fmaf(qr[4 * j + 1], kv.y, acc);
                acc = fmaf(qr[4 * j + 2], kv.z, acc);
                acc = fmaf(qr[4 * j + 3], kv.w, acc);
            }
#pragma unroll
            for (int off = 1; off < LPQ; off <<= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
            const int64_t key = k0 + kk;
            if (key >= tk || (causal && key > row)) acc = -INFINITY;
            s[kk] = acc;
            mt = fmaxf(mt, acc);
        }
        /* Every row has key 0 unmasked, so m is finite after the first tile unless the scores are
         * infinite; mref guards exp2(-inf - -inf) = NaN for a row with nothing seen yet. A NaN
         * score is skipped by fmaxf but makes its p, and so l and the output, NaN. */
        const float mn = fmaxf(m, mt);
        const float mref = mn == -INFINITY ? 0.0f : mn;
        const float corr = exp2f(m - mref); /* 0 on the first tile (m = -inf) */
        float ps = 0.0f;
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            s[kk] = exp2f(s[kk] - mref);
            ps += s[kk];
        }
        l = l * corr + ps;
#pragma unroll
        for (int i = 0; i < NI; i++) o[i] *= corr;
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            const float4 *vr = reinterpret_cast<const float4 *>(vs + kk * DMAX);
            const float p = s[kk];
#pragma unroll
            for (int j = 0; j < NJ; j++) {
                const float4 vv = vr[sub + LPQ * j];
                o[4 * j + 0] = fmaf(p, vv.x, o[4 * j + 0]);
                o[4 * j + 1] = fmaf(p, vv.y, o[4 * j + 1]);
                o[4 * j + 2] = fmaf(p, vv.z, o[4 * j + 2]);
                o[4 * j + 3] = fmaf(p, vv.w, o[4 * j + 3]);
            }
        }
        m = mn;
    }

    if (valid) {
        const float inv = 1.0f / l; /* l >= 1 (the max term is exp2(0)), or NaN */
        T *orow = out + (b * tq + row) * ld + h * d;
#pragma unroll
        for (int i = 0; i < NI; i++) {
            const int dd = 4 * (sub + LPQ * (i / 4)) + i % 4;
            if (dd < d) orow[dd] = sd_st<T>(o[i] * inv);
        }
    }
}

template <typename T, int DMAX, int LPQ, int BK>
static void launch_attention_cfg(sd_backend *be, void *out, const void *q, const void *k, const void *v, int64_t b,
                                 int64_t tq, int64_t tk, int64_t heads, int d, float qscale, bool causal) {
    constexpr int BQ = ATT_THREADS / LPQ;
    const dim3 grid((unsigned)((tq + BQ - 1) / BQ), (unsigned)heads, (unsigned)b);
    attention_kernel<T, DMAX, LPQ, BK><<<grid, ATT_THREADS, 0, sd_cuda(be)->stream>>>(
        (T *)out, (const T *)q, (const T *)k, (const T *)v, tq, tk, heads, d, qscale, causal);
    SD_CUDA_CHECK_LAUNCH(be, "attention_kernel");
}

template <typename T>
static void launch_attention(sd_backend *be, void *out, const void *q, const void *k, const void *v, int64_t b,
                             int64_t tq, int64_t tk, int64_t heads, int d, float qscale, bool causal) {
    /* exact sizes for SD 1.x's head dims (40, 80, 160) and the 64 of CLIP and SD 2.x; the others
     * round up (dims past D cost their FMAs) */
    if (d <= 40) launch_attention_cfg<T, 40, 2, 32>(be, out, q, k, v, b, tq, tk, heads, d, qscale, causal);
    else if (d <= 64) launch_attention_cfg<T, 64, 4, 32>(be, out, q, k, v, b, tq, tk, heads, d, qscale, causal);
    else if (d <= 80) launch_attention_cfg<T, 80, 4, 32>(be, out, q, k, v, b, tq, tk, heads, d, qscale, causal);
    else if (d <= 128) launch_attention_cfg<T, 128, 4, 32>(be, out, q, k, v, b, tq, tk, heads, d, qscale, causal);
    else if (d <= 160) launch_attention_cfg<T, 160, 8, 16>(be, out, q, k, v, b, tq, tk, heads, d, qscale, causal);
    else if (d <= 256) launch_attention_cfg<T, 256, 8, 16>(be, out, q, k, v, b, tq, tk, heads, d, qscale, causal);
    else launch_attention_cfg<T, 512, 16, 8>(be, out, q, k, v, b, tq, tk, heads, d, qscale, causal);
}

void sd_cuda_attention(sd_backend *be, sd_tensor *out, const sd_tensor *q, const sd_tensor *k, const sd_tensor *v,
                       int n_heads, bool causal) {
    if (!sd_cuda_tensors_ok(be, "attention", out, q, k, v)) return;
    const int64_t b = q->shape[0], tq = q->shape[1], tk = k->shape[1], c = q->shape[2];
    const int64_t d = c / n_heads;
    if (d > 512) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "attention: head dim %lld > 512", (long long)d);
        return;
    }
    if (n_heads > 65535 || b > 65535 || (tq + 7) / 8 > 0x7fffffff) {
        sd_backend_fail(be, SD_ERR_UNSUPPORTED, "attention: %lld x %d heads x %lld queries is beyond the grid",
                        (long long)b, n_heads, (long long)tq);
        return;
    }
    if (b == 0 || tq == 0 || d == 0) return;
    /* a block reads only its own q rows, before it writes them: out may alias q; k and v are read
     * by every block */
    if (out->data == k->data || out->data == v->data) {
        sd_backend_fail(be, SD_ERR_ARG, "attention: out must not alias k or v");
        return;
    }
    if (tk == 0) { /* nothing to attend to: zeros, as on the CPU */
        sd_cuda_fill(be, out, 0.0f);
        return;
    }
    const float qscale = 1.4426950408889634f / sqrtf((float)d); /* log2(e) / sqrt(D) */
    SD_CUDA_DISPATCH(be, be->act_dtype, launch_attention, be, out->data, q->data, k->data, v->data, b, tq, tk, n_heads,
                     (int)d, qscale, causal);
}
