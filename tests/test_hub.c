/* test_hub.c — models by Hugging Face id: the cache resolution (model, TAESD, LoRA; env precedence;
 * HF_HUB_OFFLINE; a local path wins), and `pull` against a loopback hub (tests/hub_server.c) that
 * serves the tiny reference models in the hub's layout: CDN redirects, a dropped connection
 * (resumed), a wrong checksum (rejected, nothing kept), 404, 401 without token, 416 on resume, a
 * second pull that downloads nothing, no network; and the README's first command (`serve` with
 * ids) pulling and starting, or telling a user without network what to do. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/hub_pull.h"
#include "base/digest.h"
#include "check.h"
#include "hub_server.h"
#include "model/hf_cache.h"

static char g_tmp[4096];

static const char *tmp_path(const char *fmt, const char *a) {
    static char bufs[4][8192];
    static int slot;
    char *b = bufs[slot++ & 3];
    char rel[4096];
    snprintf(rel, sizeof rel, fmt, a);
    snprintf(b, sizeof bufs[0], "%s/%s", g_tmp, rel);
    return b;
}

static void run_quiet(const char *cmd) {
    char out[4096];
    check_run(cmd, out, sizeof out);
}

static bool exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_id_parse(void) {
    sd_hf_id id;
    CHECK(sd_hf_id_parse(&id, "stabilityai/sd-turbo") && strcmp(id.repo, "stabilityai/sd-turbo") == 0 && !id.revision[0] &&
              !id.file[0], "plain id");
    CHECK(sd_hf_id_parse(&id, "org/name@v1.0/sub/file.safetensors") && strcmp(id.repo, "org/name") == 0 &&
              strcmp(id.revision, "v1.0") == 0 && strcmp(id.file, "sub/file.safetensors") == 0, "id with revision and file");
    CHECK(sd_hf_id_parse(&id, "latent-consistency/lcm-lora-sdv1-5/pytorch_lora_weights.safetensors") &&
              strcmp(id.file, "pytorch_lora_weights.safetensors") == 0, "id with file");
    const char *bad[] = {"/abs/path", "./x/y", "../x/y", "noslash", "a//b", "a/b/../c", "a--b/c", "a/b@", "a/.b", "a/b/",
                         "a/b@x/../y", "a b/c", "-a/b", "a/b\\c", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(!sd_hf_id_parse(&id, bad[i]), "'%s' is not an id", bad[i]);
}

/* A cache made by hand, as huggingface_hub lays it out: refs/main + snapshots/<commit> (here a
 * symlink to the reference folder). */
static void make_cache_repo(const char *hub, const char *repo_folder, const char *commit, const char *target) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/%s/refs' '%s/%s/snapshots' && printf %s > '%s/%s/refs/main' && "
             "ln -sfn '%s' '%s/%s/snapshots/%s'", hub, repo_folder, hub, repo_folder, commit, hub, repo_folder, target,
             hub, repo_folder, commit);
    run_quiet(cmd);
}

static void test_resolve(void) {
    const char *commit = "0123456789abcdef0123456789abcdef01234567";
    char hub[8192], cmd[8400];
    snprintf(hub, sizeof hub, "%s", tmp_path("resolve/hub", ""));
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_path("resolve", ""));
    run_quiet(cmd);
    char ref_sd21[4096], ref_sd15[4096], ref_taesd[4096], ref_lora[4096];
    snprintf(ref_sd21, sizeof ref_sd21, "%s", check_ref("models/tiny-sd21"));
    snprintf(ref_sd15, sizeof ref_sd15, "%s", check_ref("models/tiny-sd15"));
    snprintf(ref_taesd, sizeof ref_taesd, "%s", check_ref("models/taesd"));
    snprintf(ref_lora, sizeof ref_lora, "%s", check_ref("models/lora"));
    make_cache_repo(hub, "models--test--tiny-sd21", commit, ref_sd21);
    make_cache_repo(hub, "models--test--tiny-sd15", commit, ref_sd15);
    make_cache_repo(hub, "models--test--taesd", commit, ref_taesd);
    make_cache_repo(hub, "models--test--lora", commit, ref_lora);

    char out[4096], want[8400];
    unsetenv("HF_HUB_CACHE"), unsetenv("HUGGINGFACE_HUB_CACHE"), unsetenv("XDG_CACHE_HOME");
    setenv("HF_HUB_CACHE", hub, 1);
    snprintf(want, sizeof want, "%s/models--test--tiny-sd21/snapshots/%s", hub, commit);
    CHECK_OK(sd_hub_resolve("test/tiny-sd21", out, sizeof out));
    CHECK(strcmp(out, want) == 0, "HF_HUB_CACHE: %s -> %s", "test/tiny-sd21", out);
    char with_rev[128];
    snprintf(with_rev, sizeof with_rev, "test/tiny-sd21@%s", commit);
    CHECK(sd_hub_resolve(with_rev, out, sizeof out) == SD_OK && strcmp(out, want) == 0, "@commit resolves: %s", out);
    sd_status st = sd_hub_resolve("test/tiny-sd21@v9", out, sizeof out);
    CHECK(st == SD_ERR_NOT_FOUND && strstr(sd_last_error(), "refs/v9") && strstr(sd_last_error(), "sdstream pull test/tiny-sd21@v9"),
          "unknown revision: %s", sd_last_error());
    st = sd_hub_resolve("test/absent", out, sizeof out);
    CHECK(st == SD_ERR_NOT_FOUND && strstr(sd_last_error(), "models--test--absent") && strstr(sd_last_error(), "sdstream pull"),
          "absent id names the cache path and the fix: %s", sd_last_error());
    /* HF_HOME/hub, then HOME/.cache/huggingface/hub */
    unsetenv("HF_HUB_CACHE");
    char home[8192];
    snprintf(home, sizeof home, "%s", tmp_path("resolve/hfhome", ""));
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && ln -sfn '%s' '%s/hub'", home, hub, home);
    run_quiet(cmd);
    setenv("HF_HOME", home, 1);
    CHECK(sd_hub_resolve("test/taesd", out, sizeof out) == SD_OK && strstr(out, "/hfhome/hub/models--test--taesd/snapshots/"),
          "HF_HOME/hub: %s", out);
    unsetenv("HF_HOME");
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/u/.cache/huggingface' && ln -sfn '%s' '%s/u/.cache/huggingface/hub'", g_tmp, hub, g_tmp);
    run_quiet(cmd);
    char user_home[8192];
    snprintf(user_home, sizeof user_home, "%s/u", g_tmp);
    setenv("HOME", user_home, 1);
    CHECK(sd_hub_resolve("test/taesd", out, sizeof out) == SD_OK && strstr(out, "/u/.cache/huggingface/hub/models--test--taesd"),
          "~/.cache/huggingface/hub: %s", out);
    if (old_home) setenv("HOME", old_home, 1), free(old_home);
    setenv("HF_HUB_CACHE", hub, 1);
    /* offline changes nothing for what is cached */
    setenv("HF_HUB_OFFLINE", "1", 1);
    CHECK(sd_hub_resolve("test/taesd", out, sizeof out) == SD_OK, "HF_HUB_OFFLINE=1: cached ids still resolve");
    /* a local path of the same spelling wins */
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/resolve/local/test/taesd'", g_tmp);
    run_quiet(cmd);
    snprintf(cmd, sizeof cmd, "%s/resolve/local", g_tmp);
    CHECK(chdir(cmd) == 0, "chdir");
    CHECK(sd_hub_resolve("test/taesd", out, sizeof out) == SD_OK && strcmp(out, "test/taesd") == 0, "local path wins: %s", out);
    CHECK(chdir(cwd) == 0, "chdir back");
    unsetenv("HF_HUB_OFFLINE");

    /* the C API: model, TAESD and LoRA by id */
    sd_model_params p = sd_model_params_default();
    p.path = "test/tiny-sd15";
    p.taesd_path = "test/taesd";
    sd_lora lora = {"test/lora/tiny-sd15_lora_kohya.safetensors", 1.0f};
    p.loras = &lora, p.n_loras = 1;
    p.components = SD_COMPONENT_ALL & ~(unsigned)SD_COMPONENT_VAE;
    sd_model *m = NULL;
    CHECK_OK(sd_model_load(&m, &p));
    CHECK(m && sd_model_lora_count(m) == 1 && strstr(sd_model_describe(m), "models--test--tiny-sd15"), "loaded by id: %s",
          m ? sd_model_describe(m) : "");
    sd_model_free(m);
    m = NULL;
    lora.path = "test/lora"; /* two .safetensors: the user must name one */
    st = sd_model_load(&m, &p);
    CHECK(st == SD_ERR_NOT_FOUND && strstr(sd_last_error(), "several") && strstr(sd_last_error(), "tiny-sd15_lora_kohya"),
          "LoRA repo with two files: %s", sd_last_error());
    p.n_loras = 0;
    p.path = "test/not-cached";
    st = sd_model_load(&m, &p);
    CHECK(st == SD_ERR_NOT_FOUND && strstr(sd_last_error(), "sdstream pull test/not-cached"), "load of an uncached id: %s",
          sd_last_error());
}

/* ---- pull against the loopback hub ------------------------------------------------------- */

static hub_server *g_hub;
static char g_endpoint[64];

static void use_cache(const char *name) {
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_path("caches/%s", name));
    run_quiet(cmd);
    setenv("HF_HUB_CACHE", tmp_path("caches/%s", name), 1);
}

static sd_status pull(const char *id, const char *variant, sd_pull_result *r) {
    sd_pull_params p = {.id = id, .variant = variant, .endpoint = g_endpoint};
    memset(r, 0, sizeof *r);
    return sd_hub_pull(&p, r);
}

static int count_files(const char *dir, const char *suffix) {
    char cmd[8400], out[64];
    snprintf(cmd, sizeof cmd, "find '%s' -name '*%s' 2>/dev/null | wc -l", dir, suffix);
    check_run(cmd, out, sizeof out);
    return atoi(out);
}

static void test_pull(void) {
    const char *cache_repo;
    sd_pull_result r;
    char sha[SD_SHA256_HEX], path[8400], link[4096];
    char unet[4096];
    snprintf(unet, sizeof unet, "%s", check_ref("models/tiny-sd21/unet/diffusion_pytorch_model.safetensors"));
    sd_file_sha256_hex(unet, sha);
    char commit[41];
    hub_server_commit("test/tiny-sd21", commit);

    /* a: the whole pipeline; the UNet's transfer is cut in the middle and resumed */
    use_cache("a");
    hub_server_faults f = {0};
    snprintf(f.drop_file, sizeof f.drop_file, "unet/diffusion_pytorch_model.safetensors");
    hub_server_set_faults(g_hub, &f);
    hub_server_stats_take(g_hub);
    CHECK_OK(pull("test/tiny-sd21", NULL, &r));
    hub_server_stats s = hub_server_stats_take(g_hub);
    CHECK(r.files == 12 && r.downloaded == 12, "12 files needed and downloaded (got %d, %d)", r.files, r.downloaded);
    CHECK(s.drops == 1 && s.range_gets >= 1, "the dropped transfer was resumed with a Range request (drops %d, ranges %d)",
          s.drops, s.range_gets);
    CHECK(strcmp(r.commit, commit) == 0, "commit %s", r.commit);
    cache_repo = tmp_path("caches/a/models--test--tiny-sd21", "");
    snprintf(path, sizeof path, "%s/blobs/%s", cache_repo, sha);
    char got[SD_SHA256_HEX] = "";
    sd_file_sha256_hex(path, got);
    CHECK(strcmp(got, sha) == 0, "the resumed UNet blob is byte-exact (sha256 %s)", got);
    snprintf(path, sizeof path, "%s/snapshots/%s/unet/diffusion_pytorch_model.safetensors", cache_repo, commit);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = '\0';
    char want_link[200];
    snprintf(want_link, sizeof want_link, "../../../blobs/%s", sha);
    CHECK(strcmp(link, want_link) == 0, "snapshot symlink as huggingface_hub writes it: %s", link);
    snprintf(path, sizeof path, "%s/snapshots/%s/model_index.json", cache_repo, commit);
    n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = '\0';
    CHECK(strncmp(link, "../../blobs/", 12) == 0 && strlen(link) == 12 + 40, "top-level file links to its git-sha1 blob: %s", link);
    snprintf(path, sizeof path, "%s/refs/main", cache_repo);
    char *ref = NULL;
    CHECK(sd_read_file(path, 100, &ref, NULL) == SD_OK && ref && strcmp(ref, commit) == 0, "refs/main holds the commit");
    free(ref);
    CHECK(count_files(cache_repo, ".incomplete") == 0, "no .incomplete left");
    CHECK(count_files(cache_repo, ".bin") == 0 && count_files(cache_repo, ".ckpt") == 0 && count_files(cache_repo, ".md") == 0,
          "no pickles, no README pulled");
    sd_model_params mp = sd_model_params_default();
    mp.path = "test/tiny-sd21";
    sd_model *m = NULL;
    CHECK_OK(sd_model_load(&m, &mp));
    sd_model_free(m);

    /* b: a second pull of a complete model downloads nothing */
    CHECK_OK(pull("test/tiny-sd21", NULL, &r));
    s = hub_server_stats_take(g_hub);
    CHECK(r.downloaded == 0 && r.bytes_downloaded == 0 && s.file_gets == 0, "second pull: %d downloaded, %d GETs of files",
          r.downloaded, s.file_gets);

    /* c: a wrong checksum is rejected, nothing corrupt stays in the cache */
    use_cache("c");
    memset(&f, 0, sizeof f);
    snprintf(f.corrupt_file, sizeof f.corrupt_file, "diffusion_pytorch_model.safetensors");
    hub_server_set_faults(g_hub, &f);
    sd_status st = pull("test/taesd", NULL, &r);
    CHECK(st == SD_ERR_FORMAT && strstr(sd_last_error(), "checksum mismatch"), "corrupt file rejected: %s", sd_last_error());
    cache_repo = tmp_path("caches/c/models--test--taesd", "");
    char taesd_sha[SD_SHA256_HEX];
    sd_file_sha256_hex(check_ref("models/taesd/diffusion_pytorch_model.safetensors"), taesd_sha);
    snprintf(path, sizeof path, "%s/blobs/%s", cache_repo, taesd_sha);
    CHECK(!exists(path) && count_files(cache_repo, ".incomplete") == 0, "no blob and no partial file for the corrupt download");
    snprintf(path, sizeof path, "%s/refs/main", cache_repo);
    CHECK(!exists(path), "no ref for an incomplete snapshot");
    char out[4096];
    CHECK(sd_hub_resolve("test/taesd", out, sizeof out) == SD_ERR_NOT_FOUND, "the half-pulled id does not resolve");

    /* d: a 416 on resume: the stale partial file is dropped and the download starts over */
    memset(&f, 0, sizeof f);
    snprintf(f.refuse_range_file, sizeof f.refuse_range_file, "diffusion_pytorch_model.safetensors");
    hub_server_set_faults(g_hub, &f);
    snprintf(path, sizeof path, "%s/blobs/%s.incomplete", cache_repo, taesd_sha);
    FILE *pf = fopen(path, "wb");
    CHECK(pf != NULL, "write a stale partial file");
    if (pf) fputs("stale bytes of some other version of the file", pf), fclose(pf);
    hub_server_stats_take(g_hub);
    CHECK_OK(pull("test/taesd", NULL, &r));
    s = hub_server_stats_take(g_hub);
    snprintf(path, sizeof path, "%s/blobs/%s", cache_repo, taesd_sha);
    sd_file_sha256_hex(path, got);
    CHECK(s.answers_416 >= 1 && strcmp(got, taesd_sha) == 0, "416 -> fresh download, verified (416s: %d)", s.answers_416);
    CHECK(count_files(cache_repo, ".incomplete") == 0, "no .incomplete left after the 416");

    /* e: 404 */
    hub_server_set_faults(g_hub, &(hub_server_faults){0});
    st = pull("test/nothere", NULL, &r);
    CHECK(st == SD_ERR_NOT_FOUND && strstr(sd_last_error(), "404"), "404: %s", sd_last_error());
    CHECK(!exists(tmp_path("caches/c/models--test--nothere/refs", "")), "404 leaves no refs");

    /* f: 401 without a token, then HF_TOKEN */
    unsetenv("HF_TOKEN");
    setenv("HF_TOKEN_PATH", tmp_path("no-token-file", ""), 1);
    st = pull("test/gated", NULL, &r);
    CHECK(st == SD_ERR_IO && strstr(sd_last_error(), "401") && strstr(sd_last_error(), "HF_TOKEN"), "401: %s", sd_last_error());
    setenv("HF_TOKEN", "secret-token", 1);
    CHECK_OK(pull("test/gated", NULL, &r));
    unsetenv("HF_TOKEN");

    /* g: no network, and HF_HUB_OFFLINE */
    sd_pull_params p = {.id = "test/taesd", .endpoint = "http://127.0.0.1:1"};
    st = sd_hub_pull(&p, &r);
    CHECK(st == SD_ERR_IO && strstr(sd_last_error(), "127.0.0.1:1") && strstr(sd_last_error(), "unreachable"),
          "no network: %s", sd_last_error());
    setenv("HF_HUB_OFFLINE", "1", 1);
    hub_server_stats_take(g_hub);
    st = pull("test/taesd", NULL, &r);
    s = hub_server_stats_take(g_hub);
    CHECK(st == SD_ERR_IO && strstr(sd_last_error(), "HF_HUB_OFFLINE") && s.api_calls == 0, "HF_HUB_OFFLINE: %s",
          sd_last_error());
    unsetenv("HF_HUB_OFFLINE");

    /* h: --variant fp16: the fp16 file where the repository has it, the plain one elsewhere */
    use_cache("h");
    CHECK_OK(pull("test/tiny-sd21", "fp16", &r));
    snprintf(path, sizeof path, "%s/snapshots/%s/unet/diffusion_pytorch_model.fp16.safetensors",
             tmp_path("caches/h/models--test--tiny-sd21", ""), commit);
    CHECK(exists(path), "fp16 UNet pulled");
    snprintf(path, sizeof path, "%s/snapshots/%s/unet/diffusion_pytorch_model.safetensors",
             tmp_path("caches/h/models--test--tiny-sd21", ""), commit);
    CHECK(!exists(path), "plain UNet not pulled with --variant fp16");
    snprintf(path, sizeof path, "%s/snapshots/%s/vae/diffusion_pytorch_model.safetensors",
             tmp_path("caches/h/models--test--tiny-sd21", ""), commit);
    CHECK(exists(path), "plain VAE pulled where there is no fp16 one");
    /* one file by ID/FILE */
    CHECK_OK(pull("test/lora/tiny-sd15_lora_kohya.safetensors", NULL, &r));
    CHECK(r.files == 1 && strstr(r.snapshot, "/tiny-sd15_lora_kohya.safetensors"), "one file: %d, %s", r.files, r.snapshot);
}

/* ---- the selection and parser on their own --------------------------------------------------- */

static void test_select(void) {
    char *names[] = {"model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin", "vae/config.json",
                     "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json", "text_encoder/model.safetensors"};
    bool keep[7];
    sd_status st = hub_select_files(names, 7, NULL, NULL, keep);
    CHECK(st == SD_ERR_UNSUPPORTED && strstr(sd_last_error(), "unet/") && strstr(sd_last_error(), "pickles"),
          "pickle-only UNet refused: %s", sd_last_error());
    char *one[] = {"a.ckpt"};
    CHECK(hub_select_files(one, 1, NULL, "a.ckpt", keep) == SD_ERR_UNSUPPORTED, "a pickle asked by name is refused");
    char commit[48];
    char **list = NULL;
    int n = 0;
    const char *evil = "{\"sha\":\"0123456789abcdef0123456789abcdef01234567\",\"siblings\":[{\"rfilename\":\"../../etc/passwd\"}]}";
    CHECK(hub_parse_revision(evil, strlen(evil), commit, &list, &n) == SD_ERR_FORMAT, "'..' in a listed name refused");
    const char *nosha = "{\"siblings\":[]}";
    CHECK(hub_parse_revision(nosha, strlen(nosha), commit, &list, &n) == SD_ERR_FORMAT, "listing without sha refused");
}

/* ---- the README's first command --------------------------------------------------------------- */

/* Starts `sdstream serve ARGS`, waits (60 s at most) for its "open http://HOST:PORT" line, asks
 * /healthz, stops it with SIGTERM. Returns the port that answered "ok", or 0; log gets stderr. */
static int serve_and_probe(const char *args, char *log, size_t log_cap) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec %s serve %s --port 0 --quiet 2>'%s'", SD_BIN_DEFAULT, args, tmp_path("serve.log", ""));
    int pipefd[2];
    if (pipe(pipefd) != 0) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char buf[4096] = "";
    size_t len = 0;
    int port = 0;
    for (int waited = 0; waited < 600 && !port; waited++) { /* 600 x 100 ms */
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            ssize_t got = read(pipefd[0], buf + len, sizeof buf - 1 - len);
            if (got <= 0) break;
            len += (size_t)got;
            buf[len] = '\0';
        }
        const char *at = strstr(buf, "open http://127.0.0.1:");
        if (at) port = atoi(at + strlen("open http://127.0.0.1:"));
    }
    bool healthy = false;
    if (port) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(0x7f000001)};
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            const char *req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            if (write(fd, req, strlen(req)) > 0) {
                char resp[1024] = "";
                size_t rl = 0;
                ssize_t k;
                while (rl < sizeof resp - 1 && (k = read(fd, resp + rl, sizeof resp - 1 - rl)) > 0) rl += (size_t)k;
                resp[rl] = '\0';
                healthy = strstr(resp, " 200 ") && strstr(resp, "ok");
            }
        }
        close(fd);
    }
    kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++) usleep(100000);
    if (waitpid(pid, &status, WNOHANG) == 0) kill(pid, SIGKILL), waitpid(pid, &status, 0);
    close(pipefd[0]);
    char *text = NULL;
    if (sd_read_file(tmp_path("serve.log", ""), 1 << 20, &text, NULL) == SD_OK) {
        snprintf(log, log_cap, "%s", text);
        free(text);
    }
    return healthy ? port : 0;
}

static void test_pull_command(void) {
    use_cache("cli");
    char cmd[8192], out[1 << 14];
    snprintf(cmd, sizeof cmd, "%s pull test/taesd --endpoint %s", SD_BIN_DEFAULT, g_endpoint);
    int rc = check_run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "pull: diffusion_pytorch_model.safetensors: downloading") && strstr(out, "2 files, 2 downloaded") &&
              strstr(out, "/models--test--taesd/snapshots/"),
          "sdstream pull: plain progress lines and the snapshot folder (rc %d):\n%s", rc, out);
    rc = check_run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "in the cache") && strstr(out, "2 files, 0 downloaded"), "second pull:\n%s", out);
    snprintf(cmd, sizeof cmd, "%s pull ../etc/passwd", SD_BIN_DEFAULT);
    rc = check_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "not a Hugging Face id"), "bad id: %s", out);
}

static void test_readme_first_command(void) {
    const char *readme = "--model stabilityai/sd-turbo --taesd madebyollin/taesd --variant fp16";
    char log[1 << 16];
    /* with a hub: pulls both, then starts */
    use_cache("serve");
    setenv("HF_ENDPOINT", g_endpoint, 1);
    hub_server_stats_take(g_hub);
    int port = serve_and_probe(readme, log, sizeof log);
    hub_server_stats s = hub_server_stats_take(g_hub);
    CHECK(port > 0, "README command with a reachable hub: serve started and answered /healthz; stderr:\n%s", log);
    CHECK(s.api_calls == 2 && s.file_gets == 14, "it pulled sd-turbo (12 files) and taesd (2): %d listings, %d files",
          s.api_calls, s.file_gets);
    CHECK(strstr(log, "not in the Hugging Face cache: downloading it") != NULL, "it says it downloads");
    /* again: everything is cached, nothing is asked of the hub */
    port = serve_and_probe(readme, log, sizeof log);
    s = hub_server_stats_take(g_hub);
    CHECK(port > 0 && s.api_calls == 0 && s.heads == 0, "second start uses the cache only (%d listings)", s.api_calls);

    /* without network: what to download, where to put it, and a command that works now */
    use_cache("serve-offline");
    setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);
    if (!getenv("SD_REFERENCE_DIR")) setenv("SD_REFERENCE_DIR", SD_REFERENCE_DIR_DEFAULT, 1); /* for the fallback hint */
    char cmd[8192], out[1 << 16];
    snprintf(cmd, sizeof cmd, "%s serve %s --port 0", SD_BIN_DEFAULT, readme);
    int rc = check_run(cmd, out, sizeof out);
    CHECK(rc == 1, "no network: exit 1 (got %d)", rc);
    CHECK(strstr(out, "unreachable") && strstr(out, "model_index.json") &&
              strstr(out, "unet/diffusion_pytorch_model.fp16.safetensors") && strstr(out, "--model models/sd-turbo") &&
              strstr(out, "models/tiny-sd21") && strstr(out, "make-model --arch sd-turbo"),
          "no network: the message says what to download, where, and what runs now:\n%s", out);
    unsetenv("HF_ENDPOINT");
    /* the fallback it prints starts the demo with no download */
    char fallback[8192];
    snprintf(fallback, sizeof fallback, "--model %s --taesd %s --width 256 --height 256", check_ref("models/tiny-sd21"),
             check_ref("models/taesd"));
    CHECK(serve_and_probe(fallback, log, sizeof log) > 0, "the printed fallback command starts the demo; stderr:\n%s", log);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/hub", check_tmpdir());
    mkdir(g_tmp, 0755);
    signal(SIGPIPE, SIG_IGN);
    test_id_parse();
    test_select();
    test_resolve();

    /* the served repositories: the reference models, plus files pull must skip */
    char served[8192], cmd[20000];
    snprintf(served, sizeof served, "%s", tmp_path("served/tiny-sd21", ""));
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s' && mkdir -p '%s' && cp -rs '%s/.' '%s/' && echo pickle > '%s/unet/diffusion_pytorch_model.bin' && "
             "echo readme > '%s/README.md' && echo pickle > '%s/tiny.ckpt' && "
             "ln -s '%s/unet/diffusion_pytorch_model.safetensors' '%s/unet/diffusion_pytorch_model.fp16.safetensors'",
             served, served, check_ref("models/tiny-sd21"), served, served, served, served, check_ref("models/tiny-sd21"), served);
    CHECK(system(cmd) == 0, "served repository prepared");
    char ref_taesd[4096], ref_lora[4096];
    snprintf(ref_taesd, sizeof ref_taesd, "%s", check_ref("models/taesd"));
    snprintf(ref_lora, sizeof ref_lora, "%s", check_ref("models/lora"));
    hub_server_repo repos[] = {
        {"test/tiny-sd21", served, NULL},         {"test/taesd", ref_taesd, NULL},
        {"test/gated", ref_taesd, "secret-token"}, {"test/lora", ref_lora, NULL},
        {"stabilityai/sd-turbo", served, NULL},   {"madebyollin/taesd", ref_taesd, NULL},
    };
    g_hub = hub_server_start(repos, (int)(sizeof repos / sizeof repos[0]));
    CHECK(g_hub != NULL, "loopback hub started");
    if (g_hub) {
        snprintf(g_endpoint, sizeof g_endpoint, "http://127.0.0.1:%d", hub_server_port(g_hub));
        test_pull();
        test_pull_command();
        test_readme_first_command();
        hub_server_stop(g_hub);
    }
    return check_finish();
}
