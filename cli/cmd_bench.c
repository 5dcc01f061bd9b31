/* cmd_bench.c — `sdstream bench`: how close to the machine's limit each part runs. It measures the
 * machine's own peak, then times the text encoder, the UNet, TAESD and the full VAE, and the whole
 * img2img stream step at each size, on the model given (use `make-model` for full-size random
 * weights). Per component: ms (median of --frames runs after a warm-up), GFLOP from the actual
 * shapes (convolutions, linear layers, attention), GFLOP/s, % of peak; the stream's fps; thread
 * scaling of the UNet; peak RSS. Plain table, or --json. A program, not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "commands.h"
#include "log.h"

enum { MAX_SIZES = 8, MAX_FRAMES = 1000 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct row {
    char name[64];
    int size;
    double ms, gflop;
} row;

typedef struct report {
    row rows[64];
    int n;
    double peak, peak1, peak_bf16;
    bool gpu;            /* the model ran on the cuda backend: % of the device's fp16 tensor peak */
    sd_device_info dev;  /* its GPU (gpu only) */
    double gpu_mem_gb;   /* device memory this process added: weights, activations, workspaces */
} report;

static void add(report *r, const char *name, int size, double ms, double gflop) {
    if (r->n >= 64) return;
    row *w = &r->rows[r->n++];
    snprintf(w->name, sizeof w->name, "%s", name);
    w->size = size, w->ms = ms, w->gflop = gflop;
}

/* The stream a bench times: --t-index-list, --cfg-type, --guidance, --steps as given; else one
 * step at index 35 (t = 299, the reference's baseline) without guidance. */
static sd_stream_params g_stream;
static bool g_txt2img;
/* on a GPU: the most device memory in use while a stream existed (every process's; 0 on the CPU) */
static bool g_gpu;
static double g_gpu_mem_max_gb;

/* Times `frames` img2img (or txt2img) calls of the bench's stream at size, after warm-up calls. */
static sd_status time_stream(sd_model *m, int size, int frames, int use_taesd, sd_stream_timings *med, double *fps) {
    sd_stream_params p = g_stream;
    p.width = p.height = size;
    p.use_taesd = use_taesd;
    sd_stream *s = NULL;
    sd_status st = sd_stream_create(&s, m, &p);
    if (st != SD_OK) return st;
    st = sd_stream_set_prompt(s, "a photo of a cat", NULL);
    size_t bytes = (size_t)size * (size_t)size * 3;
    uint8_t *in = malloc(bytes), *out = malloc(bytes);
    if (!in || !out) st = SD_ERR_NOMEM;
    for (size_t i = 0; in && i < bytes; i++) in[i] = (uint8_t)((i * 7 + i / 997) & 0xff);
    double enc[MAX_FRAMES], unet[MAX_FRAMES], dec[MAX_FRAMES], tot[MAX_FRAMES];
    sd_stream_timings t = {0};
    /* warm-up: workspaces grow, pages fault in, a stream batch fills (one call per step) */
    const int warm = p.n_t_index > 1 ? p.n_t_index : 1;
    for (int k = 0; st == SD_OK && k < warm + frames; k++) {
        st = g_txt2img ? sd_stream_txt2img(s, out) : sd_stream_img2img(s, in, out, NULL);
        if (st == SD_OK) st = sd_stream_get_timings(s, &t);
        if (k < warm) continue;
        int j = k - warm;
        enc[j] = t.encode_ms, unet[j] = t.unet_ms, dec[j] = t.decode_ms, tot[j] = t.total_ms;
    }
    if (st == SD_OK) {
        *med = t; /* GFLOP of the last call; ms the medians */
        med->encode_ms = median(enc, frames), med->unet_ms = median(unet, frames), med->decode_ms = median(dec, frames);
        med->total_ms = median(tot, frames);
        *fps = 1e3 / med->total_ms;
    }
    sd_device_info dev;
    if (g_gpu && sd_device_info_get(SD_BACKEND_TYPE_CUDA, &dev) == SD_OK && dev.memory_used_gb > g_gpu_mem_max_gb)
        g_gpu_mem_max_gb = dev.memory_used_gb;
    free(in);
    free(out);
    sd_stream_free(s);
    return st;
}

static void print_report(const report *r, bool json, double rss_mb, const char *model, const char *dtype, int threads) {
    /* % of peak: on a GPU against its dense fp16 tensor peak; on the CPU against the bf16
     * dot-product peak when bf16 math ran on it, else the fp32 one */
    bool bf16_math = !r->gpu && strcmp(dtype, "bf16") == 0 && r->peak_bf16 > 0;
    double peak = r->gpu ? r->dev.fp16_dense_tflops * 1e3 : bf16_math ? r->peak_bf16 : r->peak;
    if (peak <= 0) peak = 1e300; /* unknown: % of peak prints 0 */
    if (json) {
        if (r->gpu)
            printf("{\"model\": \"%s\", \"backend\": \"cuda\", \"dtype\": \"%s\", \"gpu\": \"%s\", \"driver\": %d, "
                   "\"runtime\": %d, \"compute_capability\": %d, \"sms\": %d, \"clock_ghz\": %.3f, "
                   "\"fp16_dense_tflops\": %.1f, \"gpu_memory_gb\": %.2f, \"pct_of\": \"fp16 tensor\", "
                   "\"peak_rss_mb\": %.0f, \"results\": [",
                   model, dtype, r->dev.name, r->dev.driver_version, r->dev.runtime_version, r->dev.compute_capability,
                   r->dev.multiprocessors, r->dev.clock_ghz, r->dev.fp16_dense_tflops, r->gpu_mem_gb, rss_mb);
        else
        printf("{\"model\": \"%s\", \"dtype\": \"%s\", \"threads\": %d, \"peak_gflops\": %.1f, \"peak_gflops_1thread\": %.1f, "
               "\"peak_bf16_gflops\": %.1f, \"pct_of\": \"%s\", \"peak_rss_mb\": %.0f, \"results\": [",
               model, dtype, threads, r->peak, r->peak1, r->peak_bf16, bf16_math ? "bf16" : "fp32", rss_mb);
        for (int i = 0; i < r->n; i++) {
            const row *w = &r->rows[i];
            double gfs = w->ms > 0 ? w->gflop / (w->ms * 1e-3) : 0;
            printf("%s{\"name\": \"%s\", \"size\": %d, \"ms\": %.2f, \"gflop\": %.3f, \"gflops\": %.1f, \"pct_peak\": %.1f}",
                   i ? ", " : "", w->name, w->size, w->ms, w->gflop, gfs, 100.0 * gfs / peak);
        }
        printf("]}\n");
        return;
    }
    if (r->gpu) {
        printf("gpu: %s, sm_%d, %d SMs at %.2f GHz, %.1f GB; driver %d.%d, runtime %d.%d\n", r->dev.name,
               r->dev.compute_capability, r->dev.multiprocessors, r->dev.clock_ghz, r->dev.memory_gb,
               r->dev.driver_version / 1000, r->dev.driver_version % 1000 / 10, r->dev.runtime_version / 1000,
               r->dev.runtime_version % 1000 / 10);
        printf("peak: %.1f TFLOP/s dense fp16 tensor (fp32 accumulate; SMs x clock x FLOP/clock/SM of the architecture)\n",
               r->dev.fp16_dense_tflops);
        printf("dtype: %s (%% of that peak); GPU memory this process uses: %.2f GB\n", dtype, r->gpu_mem_gb);
    } else {
        printf("peak: %.1f GFLOP/s fp32 with %s threads (%.1f with 1)", r->peak, threads ? "the given" : "all", r->peak1);
        if (r->peak_bf16 > 0) printf("; %.1f GFLOP/s bf16 dot products\n", r->peak_bf16);
        else printf("; no bf16 dot-product instructions on this CPU\n");
        printf("dtype: %s (%% of the %s peak)\n", dtype, bf16_math ? "bf16" : "fp32");
    }
    printf("GFLOP: 2 per multiply-add of the layers as written; Winograd 3x3 layers do a quarter of the multiplies,\n"
           "so their GFLOP/s (and %% of peak) are the equivalent direct-convolution rate\n");
    printf("%-28s %6s %10s %9s %10s %7s\n", "component", "size", "ms", "GFLOP", "GFLOP/s", "% peak");
    for (int i = 0; i < r->n; i++) {
        const row *w = &r->rows[i];
        double gfs = w->ms > 0 ? w->gflop / (w->ms * 1e-3) : 0;
        if (w->gflop > 0)
            printf("%-28s %6d %10.1f %9.2f %10.1f %6.1f%%\n", w->name, w->size, w->ms, w->gflop, gfs, 100.0 * gfs / peak);
        else
            printf("%-28s %6d %10.1f %9s %10s %7s\n", w->name, w->size, w->ms, "-", "-", "-");
    }
    printf("peak RSS: %.0f MB\n", rss_mb);
}

int cmd_bench(int argc, char **argv) {
    args a = {.usage = "sdstream bench --model DIR --taesd DIR [--sizes 256,512] [--frames 3] [--json]",
              .notes = "a full-size model with random weights: sdstream make-model --arch sd-turbo --random --output DIR\n"};
    cli_add_model_options(&a);
    args_add(&a, "sizes", false, "image sizes, comma-separated (default 256,512)");
    args_add(&a, "frames", false, "timed calls per measurement after one warm-up (default 3)");
    args_add(&a, "no-vae", true, "neither load nor time the full VAE (peak RSS is then a TAESD pipeline's)");
    args_add(&a, "no-scaling", true, "skip the 1-thread UNet run");
    args_add(&a, "json", true, "one JSON object on stdout");
    args_add(&a, "t-index-list", false, "the timed stream's steps, e.g. 0,16,32,45 (default 35: one step)");
    args_add(&a, "steps", false, "schedule length the indices refer to (default 50)");
    args_add(&a, "cfg-type", false, "none (default), full, self or initialize");
    args_add(&a, "guidance", false, "guidance scale of the timed stream (default 1.2 with a cfg type)");
    args_add(&a, "txt2img", true, "time txt2img calls instead of img2img");
    int rc = args_parse(&a, argc, argv);
    if (rc >= 0) return rc;
    g_stream = sd_stream_params_default();
    g_stream.n_t_index = 1, g_stream.t_index_list[0] = 35;
    g_stream.cfg_type = SD_CFG_NONE;
    if (cli_stream_params(&a, &g_stream) || cli_check_guidance(&a, &g_stream)) return 2;
    g_txt2img = args_flag(&a, "txt2img");
    long frames = 3;
    int threads = 0;
    if (args_get(&a, "frames") && cli_parse_int(args_get(&a, "frames"), "frames", 1, MAX_FRAMES, &frames)) return 2;
    if (cli_check_model_options(&a) || cli_threads(&a, &threads)) return 2;
    int sizes[MAX_SIZES] = {256, 512}, n_sizes = 2;
    if (args_get(&a, "sizes")) {
        n_sizes = 0;
        for (const char *c = args_get(&a, "sizes"); *c && n_sizes < MAX_SIZES;) {
            char *end;
            long v = strtol(c, &end, 10);
            if (end == c || v < 8 || v > 2048 || v % 8) {
                cli_log_error("--sizes takes multiples of 8 up to 2048, comma-separated");
                return 2;
            }
            sizes[n_sizes++] = (int)v;
            c = *end == ',' ? end + 1 : end;
        }
    }
    bool json = args_flag(&a, "json");
    report r = {0};
    double bf16 = 0.0, dummy = 0.0, gpu_mem0 = 0.0;
    const char *backend = args_get(&a, "backend");
    sd_backend_type type = sd_backend_resolve(!backend         ? SD_BACKEND_TYPE_AUTO
                                              : strcmp(backend, "cuda") == 0 ? SD_BACKEND_TYPE_CUDA
                                              : strcmp(backend, "cpu") == 0  ? SD_BACKEND_TYPE_CPU
                                                                             : SD_BACKEND_TYPE_AUTO);
    r.gpu = g_gpu = type == SD_BACKEND_TYPE_CUDA;
    if (r.gpu) {
        sd_status ds = sd_device_info_get(type, &r.dev);
        if (ds != SD_OK) return cli_error(ds);
        gpu_mem0 = r.dev.memory_used_gb;
        if (!json) cli_log_info("gpu: %s, dense fp16 tensor peak %.1f TFLOP/s", r.dev.name, r.dev.fp16_dense_tflops);
    } else {
        if (sd_measure_peak_gflops((int)threads, &r.peak, &bf16) != SD_OK) return cli_error(SD_ERR_BACKEND);
        sd_measure_peak_gflops(1, &r.peak1, &dummy);
        r.peak_bf16 = bf16;
        if (!json) cli_log_info("measured peak: %.1f GFLOP/s (%.1f on one thread)", r.peak, r.peak1);
    }

    unsigned components = SD_COMPONENT_ALL;
    if (args_flag(&a, "no-vae")) components &= ~(unsigned)SD_COMPONENT_VAE; /* RSS as a TAESD stream has it */
    /* With LoRAs, the same model is first loaded without them: what the LoRAs cost is the
     * difference of the two loads (their own timer also counts writing the fused weights, which
     * stands in for the plain copy a load makes anyway) */
    const char *const *lora_specs;
    double plain_ms = -1.0;
    /* (twice: a process's first load also pays for its fresh heap, which would favour the second) */
    for (int k = 0; k < 2 && args_get_all(&a, "lora", &lora_specs) > 0; k++) {
        double tp = cli_now_ms();
        sd_model *plain = cli_load_model_without_loras(&a, components);
        if (!plain) return 1;
        plain_ms = cli_now_ms() - tp;
        sd_model_free(plain);
    }
    double t0 = cli_now_ms();
    sd_model *m = cli_load_model(&a, components);
    if (!m) return 1;
    double load_ms = cli_now_ms() - t0;
    add(&r, "load", 0, load_ms, 0);
    for (int i = 0; i < sd_model_lora_count(m); i++) { /* part of the load above */
        sd_lora_report lr;
        if (sd_model_lora_report(m, i, &lr) == SD_OK) add(&r, "  of which LoRA read+fuse", 0, lr.fuse_ms, 0);
    }
    if (plain_ms >= 0) {
        add(&r, "  load without the LoRAs", 0, plain_ms, 0);
        add(&r, "  LoRA cost (with - without)", 0, load_ms - plain_ms, 0);
    }

    /* text encoder: once per prompt in a stream, timed anyway */
    int hidden = sd_model_text_hidden_size(m);
    float *emb = malloc((size_t)SD_TOKENS * (size_t)hidden * sizeof *emb);
    double te[MAX_FRAMES], gf = 0;
    sd_status st = emb ? SD_OK : SD_ERR_NOMEM;
    for (int k = 0; st == SD_OK && k <= frames; k++) {
        double f0 = sd_model_gflop(m), t1 = cli_now_ms();
        st = sd_model_encode_prompt(m, "a photo of a cat wearing sunglasses", emb, (size_t)SD_TOKENS * (size_t)hidden);
        if (k > 0) te[k - 1] = cli_now_ms() - t1, gf = sd_model_gflop(m) - f0;
    }
    free(emb);
    if (st == SD_OK) add(&r, "text encoder", 77, median(te, (int)frames), gf);

    for (int i = 0; st == SD_OK && i < n_sizes; i++) {
        sd_stream_timings t;
        double fps;
        if (!json) fprintf(stderr, "stream step at %d x %d ...\n", sizes[i], sizes[i]);
        st = time_stream(m, sizes[i], (int)frames, 1, &t, &fps);
        if (st != SD_OK) break;
        add(&r, "taesd encode", sizes[i], t.encode_ms, t.encode_gflop);
        char unet_name[64];
        if (g_stream.n_t_index > 1)
            snprintf(unet_name, sizeof unet_name, "unet (%d steps, batch %d)", g_stream.n_t_index, t.unet_batch);
        else
            snprintf(unet_name, sizeof unet_name, "unet (1 step%s)", t.unet_batch > 1 ? ", cfg batch 2" : "");
        add(&r, unet_name, sizes[i], t.unet_ms, t.unet_gflop);
        add(&r, "taesd decode", sizes[i], t.decode_ms, t.decode_gflop);
        add(&r, g_txt2img ? "stream txt2img step" : "stream img2img step", sizes[i], t.total_ms,
            t.encode_gflop + t.unet_gflop + t.decode_gflop);
        char name[64];
        snprintf(name, sizeof name, "  = %.2f fps", fps);
        add(&r, name, sizes[i], 0, 0);
        if (!args_flag(&a, "no-vae")) {
            if (!json) fprintf(stderr, "full VAE at %d x %d ...\n", sizes[i], sizes[i]);
            st = time_stream(m, sizes[i], 1, 0, &t, &fps);
            if (st != SD_OK) break;
            add(&r, "vae encode", sizes[i], t.encode_ms, t.encode_gflop);
            add(&r, "vae decode", sizes[i], t.decode_ms, t.decode_gflop);
        }
    }
    if (r.gpu) r.gpu_mem_gb = g_gpu_mem_max_gb - gpu_mem0; /* the model and its largest stream, on the device */
    if (st == SD_OK && !r.gpu && !args_flag(&a, "no-scaling")) { /* CPU threads: nothing to scale on a GPU */
        /* thread scaling of the UNet at the first size: 1 thread against all */
        sd_stream_timings t1, tn;
        double fps;
        if (!json) fprintf(stderr, "thread scaling at %d x %d ...\n", sizes[0], sizes[0]);
        st = time_stream(m, sizes[0], 1, 1, &tn, &fps);
        if (st == SD_OK) st = sd_model_set_threads(m, 1);
        if (st == SD_OK) st = time_stream(m, sizes[0], 1, 1, &t1, &fps);
        if (st == SD_OK) {
            add(&r, "stream step, 1 thread", sizes[0], t1.total_ms, t1.encode_gflop + t1.unet_gflop + t1.decode_gflop);
            char name[64];
            snprintf(name, sizeof name, "  = %.2fx with all threads", t1.total_ms / tn.total_ms);
            add(&r, name, sizes[0], 0, 0);
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (st == SD_OK) print_report(&r, json, (double)ru.ru_maxrss / 1024.0, args_get(&a, "model"),
                                  sd_model_compute_dtype(m), (int)threads);
    sd_model_free(m);
    return st == SD_OK ? 0 : cli_error(st);
}
