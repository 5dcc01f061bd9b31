/* cmd_pull.c — `sdstream pull ID`: downloads a model by its Hugging Face id into the hub cache
 * (sd_hub_pull), with a progress bar on a terminal and plain lines otherwise. Also what `serve` uses
 * to fetch the models its options name when they are not cached, and to tell a user without a
 * network exactly what to download and where to put it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"

typedef struct progress_state {
    bool tty;
    char file[256];
    double t0, last_draw;
} progress_state;

static void on_progress(void *user, const char *file, uint64_t done, uint64_t total, int cached) {
    progress_state *s = user;
    double now = cli_now_ms();
    bool new_file = strcmp(s->file, file) != 0;
    if (new_file) {
        snprintf(s->file, sizeof s->file, "%s", file);
        s->t0 = now;
        s->last_draw = 0;
        if (!s->tty && !cached) cli_log_info("pull: %s: downloading %llu bytes", file, (unsigned long long)total);
    }
    bool finished = total > 0 && done >= total;
    if (cached) {
        cli_log_info("pull: %s: in the cache (%llu bytes)", file, (unsigned long long)total);
        return;
    }
    if (s->tty && (finished || now - s->last_draw > 100)) { /* at most 10 redraws a second */
        enum { WIDTH = 30 };
        int filled = total ? (int)((double)done / (double)total * WIDTH) : 0;
        char bar[WIDTH + 1];
        for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
        bar[WIDTH] = '\0';
        double secs = (now - s->t0) * 1e-3;
        cli_log_progress("%-40.40s [%s] %3d%% %7.1f/%.1f MB %6.1f MB/s", file, bar, total ? (int)(100.0 * done / total) : 0,
                         done / 1e6, total / 1e6, secs > 0 ? done / 1e6 / secs : 0.0);
        if (finished) cli_log_progress_end();
        s->last_draw = now;
    } else if (!s->tty && finished) {
        cli_log_info("pull: %s: done (%.1f s)", file, (now - s->t0) * 1e-3);
    }
}

int cli_pull(const char *id, const char *revision, const char *variant, const char *endpoint) {
    /* a bar a terminal redraws in place; elsewhere (and with --json-stats) a line per file */
    progress_state state = {.tty = isatty(2) && !cli_log_json()};
    sd_pull_params p = {.id = id, .revision = revision, .variant = variant, .endpoint = endpoint,
                        .progress = on_progress, .user = &state};
    sd_pull_result r;
    double t0 = cli_now_ms();
    sd_status st = sd_hub_pull(&p, &r);
    if (st != SD_OK) return cli_error(st);
    cli_log_info("pull: %s at %s: %d files, %d downloaded (%.1f MB) in %.1f s", id, r.commit, r.files, r.downloaded,
            r.bytes_downloaded / 1e6, (cli_now_ms() - t0) * 1e-3);
    printf("%s\n", r.snapshot);
    return 0;
}

/* What a pipeline / a TAESD / a LoRA repository needs, for a user who downloads by hand. */
static void print_manual_files(const char *option, const char *id, const char *variant) {
    char v[40] = "";
    if (variant && *variant) snprintf(v, sizeof v, ".%.30s", variant);
    if (strcmp(option, "model") == 0)
        cli_log_info(
                "  model_index.json scheduler/scheduler_config.json\n"
                "  text_encoder/config.json text_encoder/model%s.safetensors\n"
                "  tokenizer/vocab.json tokenizer/merges.txt tokenizer/tokenizer_config.json tokenizer/special_tokens_map.json\n"
                "  unet/config.json unet/diffusion_pytorch_model%s.safetensors\n"
                "  vae/config.json vae/diffusion_pytorch_model%s.safetensors",
                v, v, v);
    else if (strcmp(option, "taesd") == 0)
        cli_log_info("  config.json diffusion_pytorch_model.safetensors");
    else
        cli_log_info("  the LoRA's .safetensors file");
    const char *slash = strrchr(id, '/');
    cli_log_info("into one folder (keeping the subfolders), e.g. models/%s/, and pass --%s models/%s",
            slash ? slash + 1 : id, option, slash ? slash + 1 : id);
}

/* The demo without any download, when this checkout sits beside the reference models. */
static void print_offline_demo(void) {
    const char *ref = getenv("SD_REFERENCE_DIR");
    char tiny[4096];
    snprintf(tiny, sizeof tiny, "%s/models/tiny-sd21", ref && *ref ? ref : "../shared/reference");
    if (access(tiny, R_OK) == 0)
        cli_log_info("Or start the demo now with the tiny reference model (random weights, no download):\n"
                     "  sdstream serve --model %s --taesd %s/models/taesd --width 256 --height 256",
                     tiny, ref && *ref ? ref : "../shared/reference");
    cli_log_info("Or make a full-size sd-turbo with random weights here (no download; noise, not pictures):\n"
                 "  sdstream make-model --arch sd-turbo --random --output /tmp/sd-turbo-random && \\\n"
                 "  sdstream serve --model /tmp/sd-turbo-random --taesd /tmp/sd-turbo-random/taesd");
}

int cli_pull_missing(const args *a) {
    static const char *const options[] = {"model", "taesd", "lora"};
    for (size_t o = 0; o < sizeof options / sizeof options[0]; o++) {
        const char *const *values;
        int n = args_get_all(a, options[o], &values);
        for (int i = 0; i < n; i++) {
            char spec[4096], local[4096];
            float scale;
            if (strcmp(options[o], "lora") == 0) {
                if (sd_lora_parse_spec(values[i], spec, sizeof spec, &scale) != SD_OK) continue; /* the load says why */
            } else {
                snprintf(spec, sizeof spec, "%s", values[i]);
            }
            if (sd_hub_resolve(spec, local, sizeof local) == SD_OK) continue; /* local, or cached */
            cli_log_info("%s is not in the Hugging Face cache: downloading it", spec);
            const char *variant = strcmp(options[o], "model") == 0 ? args_get(a, "variant") : NULL;
            if (cli_pull(spec, NULL, variant, NULL) == 0) continue;
            char cache[4096] = "~/.cache/huggingface/hub";
            if (getenv("HF_HUB_CACHE")) snprintf(cache, sizeof cache, "%s", getenv("HF_HUB_CACHE"));
            const char *endpoint = getenv("HF_ENDPOINT") ? getenv("HF_ENDPOINT") : "https://huggingface.co";
            cli_log_info(
                    "\nCould not download %s (above: why). Without a network, get these files of %s/%s (revision "
                    "main) on another machine:",
                    spec, endpoint, spec);
            print_manual_files(options[o], spec, variant);
            cli_log_info("(or `sdstream pull %s` there and copy %s to this machine).", spec, cache);
            print_offline_demo();
            return 1;
        }
    }
    return 0;
}

int cmd_pull(int argc, char **argv) {
    args a = {.usage = "sdstream pull ORG/NAME[@REVISION][/FILE] [--revision R] [--variant fp16] [--endpoint URL]\n"
                       "  downloads the files sdstream needs into the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub,\n"
                       "  ~/.cache/huggingface/hub) and prints the snapshot folder; HF_TOKEN for gated repositories",
              .max_positional = 1};
    args_add(&a, "revision", false, "branch, tag or commit (default: the id's @revision, else main)");
    args_add(&a, "variant", false, "fp16: the *.fp16.safetensors weights where the repository has them");
    args_add(&a, "endpoint", false, "the hub's URL (default $HF_ENDPOINT, else https://huggingface.co)");
    int rc = args_parse(&a, argc, argv);
    if (rc >= 0) return rc;
    if (a.n_positional != 1) {
        cli_log_error("give the id to pull, e.g. stabilityai/sd-turbo (usage: %s)", a.usage);
        return 2;
    }
    return cli_pull(a.positional[0], args_get(&a, "revision"), args_get(&a, "variant"), args_get(&a, "endpoint"));
}
