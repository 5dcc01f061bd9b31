/* cmd_serve.c — `sdstream serve`: the real-time web demo. Loads the model once, then serves the
 * page (embedded from web/) and one StreamDiffusion stream per WebSocket connection until Ctrl-C
 * or SIGTERM, which close every session cleanly. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "log.h"
#include "server.h"

static server *volatile g_server; /* for the signal handler */

static void on_signal(int sig) {
    (void)sig;
    if (g_server) server_request_stop(g_server); /* sets a flag: async-signal-safe */
}

/* Reads the options that set a new session's defaults. Returns 0 or 2. */
static int read_defaults(const args *a, serve_config *c) {
    long v;
    double d;
    const char *s;
    if ((s = args_get(a, "prompt")) && strlen(s) > SERVE_PROMPT_MAX) {
        cli_log_error("--prompt is %zu bytes; at most %d", strlen(s), SERVE_PROMPT_MAX);
        return 2;
    }
    if (s) snprintf(c->prompt, sizeof c->prompt, "%s", s);
    if ((s = args_get(a, "negative-prompt")) && strlen(s) > SERVE_PROMPT_MAX) {
        cli_log_error("--negative-prompt is %zu bytes; at most %d", strlen(s), SERVE_PROMPT_MAX);
        return 2;
    }
    if (s) snprintf(c->negative_prompt, sizeof c->negative_prompt, "%s", s);
    if ((s = args_get(a, "width")) && cli_parse_int(s, "width", SERVE_MIN_SIZE, 4096, &v)) return 2;
    if (s) c->width = (int)v;
    if ((s = args_get(a, "height")) && cli_parse_int(s, "height", SERVE_MIN_SIZE, 4096, &v)) return 2;
    if (s) c->height = (int)v;
    if (c->width % 8 || c->height % 8) {
        cli_log_error("--width and --height must be multiples of 8 (got %d x %d)", c->width, c->height);
        return 2;
    }
    if ((s = args_get(a, "t-index-list"))) {
        /* the same rules as the protocol: parse it as a config message would */
        char json[256], err[256];
        snprintf(json, sizeof json, "{\"type\":\"config\",\"t_index_list\":[%s]}", s);
        serve_message m;
        if (strchr(s, ']') || serve_parse_message(json, strlen(json), c, 4096, &m, err, sizeof err) != 0) {
            cli_log_error("--t-index-list '%s': %s", s, strchr(s, ']') ? "not a list of indices" : err);
            return 2;
        }
        *c = m.config;
    }
    if ((s = args_get(a, "strength"))) {
        if (args_get(a, "t-index-list")) {
            cli_log_error("give --strength or --t-index-list, not both");
            return 2;
        }
        if (cli_parse_float(s, "strength", 0.02, 1.0, &d)) return 2;
        serve_config_set_strength(c, (float)d);
    }
    if ((s = args_get(a, "guidance")) && cli_parse_float(s, "guidance", 0.0, 20.0, &d)) return 2;
    if (s) c->guidance = (float)d;
    if ((s = args_get(a, "delta")) && cli_parse_float(s, "delta", 0.0, 5.0, &d)) return 2;
    if (s) c->delta = (float)d;
    if ((s = args_get(a, "cfg-type")) && cli_parse_cfg(s, &c->cfg_type)) return 2;
    if ((s = args_get(a, "seed")) && cli_parse_int(s, "seed", 0, 9007199254740991L, &v)) return 2;
    if (s) c->seed = (uint64_t)v;
    if ((s = args_get(a, "similar-filter")) && cli_parse_float(s, "similar-filter", 0.0, 0.9999, &d)) return 2;
    if (s) c->similar_threshold = (float)d;
    return 0;
}

int cmd_serve(int argc, char **argv) {
    args a = {.usage = "sdstream serve --model M [--taesd T] [--host 127.0.0.1] [--port 7860] [options]",
              .notes = "then open http://127.0.0.1:7860 in a browser\n"};
    cli_add_model_options(&a);
    args_add(&a, "host", false, "address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for all)");
    args_add(&a, "port", false, "TCP port (default 7860; 0 picks a free one)");
    args_add(&a, "max-sessions", false, "connections streaming at once (default 4); later ones wait in a queue");
    args_add(&a, "max-queue", false, "connections allowed to wait (default 16); beyond, refused");
    args_add(&a, "max-size", false, "largest width/height a page may ask for (default 1024)");
    args_add(&a, "max-message-kb", false, "largest WebSocket message in KiB (default 4096)");
    args_add(&a, "prompt", false, "a new session's prompt (the page can change it)");
    args_add(&a, "negative-prompt", false, "a new session's negative prompt");
    args_add(&a, "t-index-list", false, "a new session's steps (default 35)");
    args_add(&a, "strength", false, "0..1: one step (instead of --t-index-list)");
    args_add(&a, "cfg-type", false, "none|full|self|initialize (default self)");
    args_add(&a, "guidance", false, "guidance scale (default 1.2)");
    args_add(&a, "delta", false, "RCFG delta (default 1.0)");
    args_add(&a, "seed", false, "noise seed (default 2)");
    args_add(&a, "width", false, "a new session's width, multiple of 8 (default 512)");
    args_add(&a, "height", false, "a new session's height, multiple of 8 (default 512)");
    args_add(&a, "similar-filter", false, "a new session's similarity filter threshold (default 0: off)");
    args_add(&a, "quiet", true, "no access log lines on stderr");
    args_add(&a, "vae", true, "use the model's full VAE even when --taesd is given");
    int rc = args_parse(&a, argc, argv);
    if (rc >= 0) return rc;
    if (cli_check_model_options(&a)) return 2;
    server_params sp = server_params_default();
    long v;
    const char *s;
    if ((s = args_get(&a, "host"))) sp.host = s;
    if ((s = args_get(&a, "port")) && cli_parse_int(s, "port", 0, 65535, &v)) return 2;
    if (s) sp.port = (int)v;
    if ((s = args_get(&a, "max-sessions")) && cli_parse_int(s, "max-sessions", 1, 256, &v)) return 2;
    if (s) sp.max_sessions = (int)v;
    if ((s = args_get(&a, "max-queue")) && cli_parse_int(s, "max-queue", 0, 1024, &v)) return 2;
    if (s) sp.max_queue = (int)v;
    if ((s = args_get(&a, "max-size")) && cli_parse_int(s, "max-size", SERVE_MIN_SIZE, 4096, &v)) return 2;
    if (s) sp.max_size = (int)v;
    if ((s = args_get(&a, "max-message-kb")) && cli_parse_int(s, "max-message-kb", 16, 65536, &v)) return 2;
    if (s) sp.max_message_bytes = (size_t)v * 1024;
    sp.access_log = !args_flag(&a, "quiet");
    if (read_defaults(&a, &sp.defaults)) return 2;
    if (sp.defaults.width > sp.max_size || sp.defaults.height > sp.max_size) {
        cli_log_error("--width/--height %d x %d exceed --max-size %d", sp.defaults.width, sp.defaults.height,
                sp.max_size);
        return 2;
    }
    if (!args_get(&a, "taesd") && !args_flag(&a, "vae"))
        cli_log_warning("no --taesd: frames are encoded and decoded with the full VAE (much slower)");

    /* models named by Hugging Face id and not cached yet are fetched first, asking nothing */
    if (cli_pull_missing(&a)) return 1;
    sd_model *model = cli_load_model(&a, cli_pipeline_components(&a)); /* prints the load time */
    if (!model) return 1;
    server *srv = NULL;
    char err[512];
    if (server_create(&srv, model, &sp, err, sizeof err) != 0) {
        cli_log_error("%s", err);
        sd_model_free(model);
        return 1;
    }
    g_server = srv;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    const char *shown = strcmp(sp.host, "0.0.0.0") == 0 ? "127.0.0.1" : sp.host;
    printf("sdstream serve: open http://%s:%d in a browser (Ctrl-C stops)\n", shown, server_port(srv));
    fflush(stdout);
    server_run(srv);
    cli_log_info("serve: stopping: sessions closed");
    g_server = NULL;
    server_free(srv);
    sd_model_free(model);
    return 0;
}
