/* lora.c — see lora.h. */
#include "model/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/clock.h"
#include "base/threads.h"

enum { MAX_LISTED_KEYS = 4 }; /* unmatched keys named in a message */

typedef struct lora_module {
    sd_lora_key id; /* target, module name, flat */
    const sd_st_tensor *down, *up, *alpha;
    int n_keys;
    int rank;
    bool used;
} lora_module;

typedef struct lora_file {
    sd_safetensors *st;
    float scale;
    lora_module *modules; /* sorted by (target, flat, module) */
    int n_modules;
    int n_unknown; /* keys no format knows (allow_unused) */
    int fused[SD_LORA_N_TARGETS];
    double ms;
} lora_file;

struct sd_lora_set {
    lora_file *files;
    int n;
    bool allow_unused;
    /* grow-only buffers (fresh mallocs of these sizes are fresh pages each time: page faults were
     * a third of the load time): 0 a weight's delta, 1 down, 2 up, 3 down transposed, 4 a second
     * LoRA's delta */
    float *scratch[5];
    size_t scratch_n[5];
    sd_pool *pool;    /* the weight + delta passes run on every core the model will use */
    /* The products up @ down run on a CPU backend of the set's own: weights are fused on the host
     * before any backend uploads them, and its GEMM (AVX2/AVX-512 kernels) ran LCM-LoRA's shapes
     * ([1280, 64] @ [64, 11520]) at 100-135 GFLOP/s on 2 cores where OpenBLAS (Debian's, with the
     * Haswell kernel this machine kind forces) gave 43-57. */
    sd_backend *cpu;
};

static int compare_ids(const sd_lora_key *a, const sd_lora_key *b) {
    if (a->target != b->target) return (int)a->target - (int)b->target;
    if (a->flat != b->flat) return (int)a->flat - (int)b->flat;
    return strcmp(a->module, b->module);
}

static int compare_modules(const void *a, const void *b) {
    return compare_ids(&((const lora_module *)a)->id, &((const lora_module *)b)->id);
}

/* Lists up to MAX_LISTED_KEYS names as "'a', 'b', ..." into buf. */
static void list_keys(char *buf, size_t size, const char *const *keys, int n_listed, int n_total) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_listed && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s'%s'", i ? ", " : "", keys[i]);
    if (n_total > n_listed && used < size) snprintf(buf + used, size - used, ", ...");
}

static const char *part_suffix(const lora_module *m) {
    return m->down ? m->down->name : m->up ? m->up->name : m->alpha->name;
}

/* Checks a module's tensors once they are all known: both halves, float dtypes, one rank. */
static sd_status check_module(const char *path, lora_module *m) {
    if (!m->down || !m->up)
        return sd_fail(SD_ERR_FORMAT, "%s: LoRA key '%s' has no %s partner (module '%s')", path, part_suffix(m),
                       m->down ? "up" : "down", m->id.module);
    const sd_st_tensor *parts[3] = {m->down, m->up, m->alpha};
    for (int i = 0; i < 3; i++)
        if (parts[i] && !sd_dtype_is_float(parts[i]->dtype))
            return sd_fail(SD_ERR_FORMAT, "%s: LoRA tensor '%s': expected F32/F16/BF16, found %s", path,
                           parts[i]->name, sd_dtype_name(parts[i]->dtype));
    if (m->alpha && m->alpha->numel != 1)
        return sd_fail(SD_ERR_FORMAT, "%s: LoRA tensor '%s': alpha must be one number, found %lld values", path,
                       m->alpha->name, (long long)m->alpha->numel);
    char down_s[128], up_s[128];
    sd_st_shape_str(down_s, sizeof down_s, m->down->ndim, m->down->shape);
    sd_st_shape_str(up_s, sizeof up_s, m->up->ndim, m->up->shape);
    bool down_ok = m->down->ndim == 2 || m->down->ndim == 4;
    bool up_ok = (m->up->ndim == 2 || (m->up->ndim == 4 && m->up->shape[2] == 1 && m->up->shape[3] == 1));
    if (!down_ok || !up_ok || m->down->shape[0] != m->up->shape[1] || m->down->shape[0] < 1)
        return sd_fail(SD_ERR_FORMAT,
                       "%s: LoRA module '%s': rank mismatch or bad shapes: down '%s' %s, up '%s' %s "
                       "(expected down [rank, in(, k, k)], up [out, rank(, 1, 1)])",
                       path, m->id.module, m->down->name, down_s, m->up->name, up_s);
    m->rank = (int)m->down->shape[0];
    return SD_OK;
}

/* Classifies the keys of one file and groups them into modules. */
static sd_status parse_file(lora_file *f, bool allow_unused) {
    const sd_safetensors *st = f->st;
    f->modules = calloc((size_t)st->n_tensors + 1, sizeof *f->modules);
    if (!f->modules) return sd_fail(SD_ERR_NOMEM, "%s: out of memory", st->path);
    const char *unknown[MAX_LISTED_KEYS] = {0};
    int n_unknown = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const sd_st_tensor *t = &st->tensors[i];
        lora_module m = {0};
        int r = sd_lora_parse_key(t->name, &m.id);
        if (r == -2)
            return sd_fail(SD_ERR_UNSUPPORTED,
                           "%s: an SDXL LoRA with text-encoder keys (key '%s': lora_te1_/lora_te2_ name SDXL's two "
                           "encoders); sdstream fuses SDXL LoRAs into the UNet only, text-encoder keys are not supported yet",
                           st->path, t->name);
        if (r != 0) {
            if (n_unknown < MAX_LISTED_KEYS) unknown[n_unknown] = t->name;
            n_unknown++;
            continue;
        }
        const sd_st_tensor **slot = m.id.part == SD_LORA_DOWN ? &m.down : m.id.part == SD_LORA_UP ? &m.up : &m.alpha;
        *slot = t;
        m.n_keys = 1;
        f->modules[f->n_modules++] = m;
    }
    if (f->n_modules == 0) {
        char keys[512];
        list_keys(keys, sizeof keys, unknown, n_unknown < MAX_LISTED_KEYS ? n_unknown : MAX_LISTED_KEYS, n_unknown);
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: no LoRA tensors (%d tensors%s%s; expected kohya lora_unet_*/lora_te_*, "
                       "diffusers .lora.down/.lora.up or PEFT .lora_A/.lora_B keys)",
                       st->path, st->n_tensors, n_unknown ? ", e.g. " : "", keys);
    }
    if (n_unknown && !allow_unused) {
        char keys[512];
        list_keys(keys, sizeof keys, unknown, n_unknown < MAX_LISTED_KEYS ? n_unknown : MAX_LISTED_KEYS, n_unknown);
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: %d of %d keys are no LoRA key this loader knows (first: %s); nothing applied "
                       "(allow_unused / --lora-allow-unused skips them)",
                       st->path, n_unknown, st->n_tensors, keys);
    }
    f->n_unknown = n_unknown;
    /* merge the one-key entries of each module */
    qsort(f->modules, (size_t)f->n_modules, sizeof *f->modules, compare_modules);
    int n = 0;
    for (int i = 0; i < f->n_modules; i++) {
        lora_module *cur = &f->modules[i];
        if (n > 0 && compare_ids(&f->modules[n - 1].id, &cur->id) == 0) {
            lora_module *dst = &f->modules[n - 1];
            const sd_st_tensor **slot = cur->down ? &dst->down : cur->up ? &dst->up : &dst->alpha;
            const sd_st_tensor *add = cur->down ? cur->down : cur->up ? cur->up : cur->alpha;
            if (*slot)
                return sd_fail(SD_ERR_FORMAT, "%s: LoRA module '%s' has two %s tensors: '%s' and '%s'", st->path,
                               cur->id.module, cur->down ? "down" : cur->up ? "up" : "alpha", (*slot)->name, add->name);
            *slot = add;
            dst->n_keys++;
        } else {
            f->modules[n++] = *cur;
        }
    }
    f->n_modules = n;
    for (int i = 0; i < n; i++) SD_TRY(check_module(st->path, &f->modules[i]));
    return SD_OK;
}

sd_status sd_lora_set_open(sd_lora_set **out, const sd_lora *loras, int n, bool allow_unused, int n_threads) {
    SD_CHECK_ARG(n >= 0 && n <= SD_MAX_LORAS && (n == 0 || loras), "LoRA: %d LoRAs given (at most %d)", n, SD_MAX_LORAS);
    sd_lora_set *set = calloc(1, sizeof *set);
    if (!set || !(set->files = calloc((size_t)n + 1, sizeof *set->files))) {
        free(set);
        return sd_fail(SD_ERR_NOMEM, "LoRA: out of memory");
    }
    set->allow_unused = allow_unused;
    /* while a model loads nothing else computes: the fuse may use the cores the model will use */
    sd_status st = sd_backend_create(&set->cpu, SD_BACKEND_CPU, n_threads);
    if (st == SD_OK) st = sd_pool_create(&set->pool, set->cpu->n_threads);
    for (int i = 0; i < n && st == SD_OK; i++) {
        double t0 = sd_now_ms();
        lora_file *f = &set->files[set->n++];
        f->scale = loras[i].scale;
        if (!loras[i].path || !loras[i].path[0]) st = sd_fail(SD_ERR_ARG, "LoRA %d: path is empty", i);
        else if (!isfinite(loras[i].scale)) st = sd_fail(SD_ERR_ARG, "%s: LoRA scale is not a finite number", loras[i].path);
        if (st == SD_OK) st = sd_st_open(&f->st, loras[i].path);
        if (st == SD_OK) st = parse_file(f, allow_unused);
        f->ms += sd_now_ms() - t0;
    }
    if (st != SD_OK) {
        sd_lora_set_close(set);
        return st;
    }
    *out = set;
    return SD_OK;
}

void sd_lora_set_close(sd_lora_set *set) {
    if (!set) return;
    sd_pool_free(set->pool);
    sd_backend_free(set->cpu);
    for (int i = 0; i < 5; i++) free(set->scratch[i]);
    for (int i = 0; i < set->n; i++) {
        sd_st_close(set->files[i].st);
        free(set->files[i].modules);
    }
    free(set->files);
    free(set);
}

/* The module of file f for the weight `name` ("<module>.weight"), or NULL. */
static lora_module *find_module(const lora_file *f, sd_lora_target target, const char *name) {
    size_t len = strlen(name);
    if (len <= 7 || strcmp(name + len - 7, ".weight") != 0) return NULL;
    lora_module key = {.id = {.target = target}};
    if (len - 7 >= sizeof key.id.module) return NULL;
    memcpy(key.id.module, name, len - 7);
    key.id.module[len - 7] = '\0';
    lora_module *m = bsearch(&key, f->modules, (size_t)f->n_modules, sizeof *m, compare_modules);
    if (m) return m;
    key.id.flat = true;
    if (sd_lora_flatten(key.id.module, sizeof key.id.module, key.id.module) != 0) return NULL;
    return bsearch(&key, f->modules, (size_t)f->n_modules, sizeof *m, compare_modules);
}

bool sd_lora_set_touches(const sd_lora_set *set, sd_lora_target target, const char *name) {
    for (int i = 0; set && i < set->n; i++)
        if (find_module(&set->files[i], target, name)) return true;
    return false;
}

static float *scratch(sd_lora_set *set, int which, size_t n) {
    if (n > set->scratch_n[which]) {
        free(set->scratch[which]);
        set->scratch_n[which] = 0;
        if (!(set->scratch[which] = malloc(n * sizeof(float)))) return NULL;
        set->scratch_n[which] = n;
    }
    return set->scratch[which];
}

/* dst (F32/F16/BF16) = round(float32(src) + delta), in L1-sized blocks, over the pool. */
typedef struct add_job {
    void *dst;
    sd_dtype to, from;
    const void *src;
    const float *delta;
} add_job;

static void add_convert_range(void *ctx, int64_t begin, int64_t end, int thread) {
    const add_job *j = ctx;
    float sum[512];
    (void)thread;
    for (int64_t i = begin; i < end; i += 512) {
        size_t n = (size_t)(end - i < 512 ? end - i : 512);
        sd_convert_to_f32(sum, (const uint8_t *)j->src + (size_t)i * sd_dtype_size(j->from), j->from, n);
        for (size_t k = 0; k < n; k++) sum[k] += j->delta[i + (int64_t)k];
        if (j->to == SD_DTYPE_F32) memcpy((float *)j->dst + i, sum, n * sizeof(float));
        else if (j->to == SD_DTYPE_F16) sd_convert_f32_to_f16((uint16_t *)j->dst + i, sum, n);
        else sd_convert_to_bf16((uint16_t *)j->dst + i, sum, SD_DTYPE_F32, n);
    }
}

static void add_convert(sd_lora_set *set, void *dst, sd_dtype to, const void *src, sd_dtype from, const float *delta,
                        int64_t n) {
    add_job j = {dst, to, from, src, delta};
    sd_pool_for(set->pool, n, sd_pool_grain(set->pool, n, 4, 1 << 16), add_convert_range, &j);
}

/* A float tensor of the file as float32, in scratch buffer `which`. */
static float *read_f32(sd_lora_set *set, int which, const sd_safetensors *st, const sd_st_tensor *t) {
    float *buf = scratch(set, which, (size_t)t->numel);
    if (buf) sd_convert_to_f32(buf, sd_st_data(st, t), t->dtype, (size_t)t->numel);
    return buf;
}

/* Drops trailing 1s past the second dimension: a 1x1 conv [o, i, 1, 1] holds a Linear's numbers. */
static int core_ndim(int ndim, const int64_t *shape) {
    while (ndim > 2 && shape[ndim - 1] == 1) ndim--;
    return ndim;
}

/* Adds one module's delta to w [out, K]. */
static sd_status fuse_module(sd_lora_set *set, const lora_file *f, lora_module *m, const char *name, float *w, float beta, int ndim,
                             const int64_t *shape) {
    const sd_st_tensor *down = m->down, *up = m->up;
    int w_nd = core_ndim(ndim, shape), d_nd = core_ndim(down->ndim, down->shape);
    bool fits = up->shape[0] == shape[0] && w_nd == d_nd;
    for (int i = 1; fits && i < w_nd; i++) fits = down->shape[i] == shape[i];
    if (!fits) {
        char w_s[128], d_s[128], u_s[128];
        sd_st_shape_str(w_s, sizeof w_s, ndim, shape);
        sd_st_shape_str(d_s, sizeof d_s, down->ndim, down->shape);
        sd_st_shape_str(u_s, sizeof u_s, up->ndim, up->shape);
        return sd_fail(SD_ERR_FORMAT, "%s: LoRA '%s' %s and '%s' %s do not fit weight '%s' %s", f->st->path, down->name,
                       d_s, up->name, u_s, name, w_s);
    }
    int64_t rows = shape[0], k = down->numel / m->rank;
    float mult = f->scale;
    if (m->alpha) {
        float alpha;
        sd_convert_to_f32(&alpha, sd_st_data(f->st, m->alpha), m->alpha->dtype, 1);
        mult *= alpha / (float)m->rank;
    }
    float *d = read_f32(set, 1, f->st, down), *u = read_f32(set, 2, f->st, up);
    float *dt = scratch(set, 3, (size_t)down->numel);
    float *out = beta == 0.0f ? w : scratch(set, 4, (size_t)(rows * k));
    if (!d || !u || !dt || !out) return sd_fail(SD_ERR_NOMEM, "%s: out of memory fusing '%s'", f->st->path, name);
    /* out [out, K] = (mult * up [out, r]) @ down [r, K], as linear's in @ weight^T with weight = down^T */
    for (int64_t i = 0; i < rows * m->rank; i++) u[i] *= mult;
    for (int64_t r = 0; r < m->rank; r++)
        for (int64_t j = 0; j < k; j++) dt[j * m->rank + r] = d[r * k + j];
    int64_t out_shape[2] = {rows, k}, in_shape[2] = {rows, m->rank}, weight_shape[2] = {k, m->rank};
    sd_tensor t_out = sd_tensor_make(out, SD_DTYPE_F32, 2, out_shape);
    sd_tensor t_in = sd_tensor_make(u, SD_DTYPE_F32, 2, in_shape);
    sd_tensor t_weight = sd_tensor_make(dt, SD_DTYPE_F32, 2, weight_shape);
    sd_op_linear(set->cpu, &t_out, &t_in, &t_weight, NULL);
    sd_status st = sd_backend_status(set->cpu);
    if (st != SD_OK) return st;
    if (out != w) /* a second LoRA on the same weight adds to the first's delta */
        for (int64_t i = 0; i < rows * k; i++) w[i] += out[i];
    return SD_OK;
}

sd_status sd_lora_set_fuse(sd_lora_set *set, sd_lora_target target, const char *name, void *dst, sd_dtype dtype,
                           const void *src, sd_dtype src_dtype, int ndim, const int64_t *shape) {
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= shape[i];
    double t0 = sd_now_ms();
    /* the deltas of every LoRA on this weight, summed in float32; then one pass writes
     * round(weight + delta) in the weight's storage type: the weight is read once, rounded once */
    float *delta = scratch(set, 0, (size_t)numel);
    if (!delta) return sd_fail(SD_ERR_NOMEM, "out of memory fusing a LoRA into '%s'", name);
    sd_status st = SD_OK;
    lora_file *first = NULL; /* the weight's own pass is the first matching file's to count */
    double modules_ms = 0.0;
    float beta = 0.0f; /* the first delta is written, later ones added */
    for (int i = 0; i < set->n && st == SD_OK; i++) {
        lora_file *f = &set->files[i];
        lora_module *m = find_module(f, target, name);
        if (!m) continue;
        if (m->used)
            st = sd_fail(SD_ERR_FORMAT, "%s: LoRA module '%s' matches two weights (the second: '%s')", f->st->path,
                         m->id.module, name);
        double t1 = sd_now_ms();
        if (st == SD_OK) st = fuse_module(set, f, m, name, delta, beta, ndim, shape);
        beta = 1.0f;
        double dt = sd_now_ms() - t1;
        f->ms += dt, modules_ms += dt;
        if (!first) first = f;
        m->used = true;
        f->fused[target]++;
    }
    if (st == SD_OK) add_convert(set, dst, dtype, src, src_dtype, delta, numel);
    if (first) first->ms += sd_now_ms() - t0 - modules_ms;
    return st;
}

sd_status sd_lora_set_finish(sd_lora_set *set, const bool loaded[SD_LORA_N_TARGETS], sd_lora_report *reports) {
    for (int i = 0; set && i < set->n; i++) {
        lora_file *f = &set->files[i];
        sd_lora_report *r = &reports[i];
        memset(r, 0, sizeof *r);
        const char *unused[MAX_LISTED_KEYS] = {0};
        int n_unused = 0, unused_keys = 0;
        for (int j = 0; j < f->n_modules; j++) {
            const lora_module *m = &f->modules[j];
            if (!loaded[m->id.target]) r->unloaded_modules++;
            if (m->used || !loaded[m->id.target]) continue;
            if (n_unused < MAX_LISTED_KEYS) unused[n_unused] = m->down->name;
            n_unused++;
            unused_keys += m->n_keys;
        }
        if (n_unused && !set->allow_unused) {
            char keys[640];
            list_keys(keys, sizeof keys, unused, n_unused < MAX_LISTED_KEYS ? n_unused : MAX_LISTED_KEYS, n_unused);
            return sd_fail(SD_ERR_UNSUPPORTED,
                           "%s: LoRA does not fit this model: %d of %d modules match no weight (first: %s); nothing "
                           "applied (allow_unused / --lora-allow-unused skips them)",
                           f->st->path, n_unused, f->n_modules, keys);
        }
        r->unet_modules = f->fused[SD_LORA_UNET];
        r->text_encoder_modules = f->fused[SD_LORA_TEXT_ENCODER];
        r->skipped_keys = f->n_unknown + unused_keys;
        r->fuse_ms = f->ms;
    }
    return SD_OK;
}

sd_status sd_lora_parse_spec(const char *spec, char *path, size_t path_size, float *scale) {
    SD_CHECK_ARG(spec && path && path_size > 0 && scale, "sd_lora_parse_spec: NULL argument");
    SD_CHECK_ARG(spec[0] != '\0', "LoRA: empty PATH[:SCALE]");
    size_t len = strlen(spec);
    float value = 1.0f;
    const char *colon = strrchr(spec, ':');
    if (colon && colon[1] != '\0') {
        char *end;
        double v = strtod(colon + 1, &end);
        if (*end == '\0' && isfinite(v) && fabs(v) < 1e30) { /* a number: the scale */
            value = (float)v;
            len = (size_t)(colon - spec);
        }
    }
    SD_CHECK_ARG(len > 0, "LoRA '%s': no path before the scale", spec);
    if (len >= path_size) return sd_fail(SD_ERR_LIMIT, "LoRA '%.64s...': path longer than %zu bytes", spec, path_size - 1);
    memcpy(path, spec, len);
    path[len] = '\0';
    *scale = value;
    return SD_OK;
}
