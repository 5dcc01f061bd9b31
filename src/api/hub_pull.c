/* hub_pull.c — sd_hub_pull and sd_hub_resolve: downloads a model's files from a Hugging Face hub
 * into the hub cache, in huggingface_hub's layout (hf_cache.h), so Python tools find them too.
 *
 * Per file: HEAD {endpoint}/{id}/resolve/{commit}/{path} gives the etag (X-Linked-Etag: sha256 of an
 * LFS file; ETag: git blob sha1 of a small one), the size (X-Linked-Size / Content-Length) and, for
 * LFS files, a redirect to the CDN. The bytes go to blobs/<etag>.incomplete (resumed with a Range
 * request after a dropped connection), are checked against size and digest, renamed to
 * blobs/<etag> and linked from snapshots/<commit>/<path>. refs/<revision> is written last, so an
 * interrupted pull leaves no ref and the next run (or `serve`) pulls again and resumes.
 */
#include "api/hub_pull.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/hub_http.h"
#include "base/digest.h"
#include "model/hf_cache.h"

enum { REVISION_JSON_MAX = 16 << 20, MAX_ATTEMPTS = 6, MAX_HEAD_HOPS = 5 };

/* ---- the revision listing and the choice of files ------------------------------------------- */

static bool safe_relative_path(const char *s) {
    if (!*s || s[0] == '/' || strlen(s) >= 1024) return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 127 || *p == '\\') return false;
    for (const char *seg = s; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL) {
        size_t len = strcspn(seg, "/");
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) return false;
    }
    return true;
}

void hub_free_names(char **names, int n) {
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

sd_status hub_parse_revision(const char *json, size_t len, char commit[48], char ***names, int *n_names) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return sd_fail(SD_ERR_FORMAT, "the hub's revision listing is not JSON");
    sd_status st = SD_OK;
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(root, "sha");
    const cJSON *siblings = cJSON_GetObjectItemCaseSensitive(root, "siblings");
    if (!cJSON_IsString(sha) || !sd_hf_is_commit(sha->valuestring))
        st = sd_fail(SD_ERR_FORMAT, "the hub's revision listing has no \"sha\" commit hash (40 hex digits)");
    else if (!cJSON_IsArray(siblings))
        st = sd_fail(SD_ERR_FORMAT, "the hub's revision listing has no \"siblings\" array");
    int n = st == SD_OK ? cJSON_GetArraySize(siblings) : 0;
    if (st == SD_OK && n > HUB_MAX_FILES)
        st = sd_fail(SD_ERR_LIMIT, "the repository lists %d files; at most %d are read", n, HUB_MAX_FILES);
    char **out = st == SD_OK ? calloc((size_t)n + 1, sizeof *out) : NULL;
    if (st == SD_OK && !out) st = sd_fail(SD_ERR_NOMEM, "out of memory reading the revision listing");
    int count = 0;
    const cJSON *item;
    if (st == SD_OK) cJSON_ArrayForEach(item, siblings) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "rfilename");
        if (!cJSON_IsString(name)) {
            st = sd_fail(SD_ERR_FORMAT, "the hub's revision listing: sibling %d has no \"rfilename\" string", count);
            break;
        }
        if (!safe_relative_path(name->valuestring)) {
            st = sd_fail(SD_ERR_FORMAT, "the hub's revision listing names an unsafe path '%.200s'", name->valuestring);
            break;
        }
        if (!(out[count++] = strdup(name->valuestring))) {
            st = sd_fail(SD_ERR_NOMEM, "out of memory reading the revision listing");
            break;
        }
    }
    if (st == SD_OK) snprintf(commit, 48, "%s", sha->valuestring);
    cJSON_Delete(root);
    if (st != SD_OK) {
        hub_free_names(out, count);
        return st;
    }
    *names = out;
    *n_names = count;
    return SD_OK;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool listed(char *const *names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

/* Weights chosen per stem: "dir/stem.safetensors" or "dir/stem.<v>.safetensors". With a variant
 * its file wins over the plain one; without, the plain one wins over any variant. */
static bool keep_weights(char *const *names, int n, const char *name, const char *variant) {
    if (!ends_with(name, ".safetensors")) return false;
    char plain[1100], wanted[1100];
    size_t base = strlen(name) - strlen(".safetensors");
    const char *dot = NULL;
    for (const char *p = name + base; p > name && p[-1] != '/'; p--)
        if (p[-1] == '.') {
            dot = p - 1;
            break;
        }
    bool has_variant = dot != NULL;
    if (has_variant) { /* name is stem.<v>.safetensors */
        snprintf(plain, sizeof plain, "%.*s.safetensors", (int)(dot - name), name);
        bool is_wanted = variant && *variant && strncmp(dot + 1, variant, base - (size_t)(dot + 1 - name)) == 0 &&
                         strlen(variant) == base - (size_t)(dot + 1 - name);
        return is_wanted || !listed(names, n, plain);
    }
    if (!variant || !*variant) return true;
    snprintf(wanted, sizeof wanted, "%.*s.%s.safetensors", (int)base, name, variant);
    return !listed(names, n, wanted);
}

static bool is_pickle(const char *name) {
    static const char *const ext[] = {".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (ends_with(name, ext[i])) return true;
    return false;
}

sd_status hub_select_files(char *const *names, int n, const char *variant, const char *single, bool *keep) {
    for (int i = 0; i < n; i++) keep[i] = false;
    if (single && *single) {
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], single) == 0) {
                if (is_pickle(single))
                    return sd_fail(SD_ERR_UNSUPPORTED, "%s: a PyTorch pickle; sdstream reads .safetensors only (pickles "
                                   "can run code)", single);
                keep[i] = true;
                return SD_OK;
            }
        return sd_fail(SD_ERR_NOT_FOUND, "the repository has no file %s", single);
    }
    bool pipeline = listed(names, n, "model_index.json");
    static const char *const weight_dirs[] = {"unet/", "vae/", "text_encoder/"};
    int kept = 0;
    for (int i = 0; i < n; i++) {
        const char *s = names[i];
        const char *slash = strchr(s, '/');
        bool k;
        if (!pipeline) { /* a component (TAESD) or a LoRA: its top-level configs and weights */
            k = !slash && (ends_with(s, ".json") ? true : keep_weights(names, n, s, variant));
        } else if (!slash) {
            k = strcmp(s, "model_index.json") == 0;
        } else if (strncmp(s, "tokenizer/", 10) == 0) {
            k = !strchr(s + 10, '/') && (ends_with(s, ".json") || ends_with(s, ".txt"));
        } else if (strcmp(s, "scheduler/scheduler_config.json") == 0) {
            k = true;
        } else {
            k = false;
            for (size_t d = 0; d < 3; d++) {
                size_t len = strlen(weight_dirs[d]);
                if (strncmp(s, weight_dirs[d], len) == 0 && !strchr(s + len, '/'))
                    k = strcmp(s + len, "config.json") == 0 || keep_weights(names, n, s, variant);
            }
        }
        keep[i] = k;
        kept += k;
    }
    for (size_t d = 0; pipeline && d < 3; d++) { /* each weighted component must have its weights */
        size_t len = strlen(weight_dirs[d]);
        bool weights = false, pickle = false;
        for (int i = 0; i < n; i++) {
            if (strncmp(names[i], weight_dirs[d], len) != 0) continue;
            weights |= keep[i] && ends_with(names[i], ".safetensors");
            pickle |= is_pickle(names[i]);
        }
        if (!weights)
            return sd_fail(SD_ERR_UNSUPPORTED, "the repository has no .safetensors weights in %s%s", weight_dirs[d],
                           pickle ? " (only PyTorch pickles, which sdstream does not read: they can run code)" : "");
    }
    if (kept == 0) return sd_fail(SD_ERR_NOT_FOUND, "the repository has no file sdstream reads (.json configs, .safetensors)");
    return SD_OK;
}

/* ---- the cache ---------------------------------------------------------------------------- */

static sd_status mkdirs(const char *path) {
    char buf[SD_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return sd_fail(SD_ERR_LIMIT, "path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return sd_fail(SD_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return sd_fail(SD_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
    return SD_OK;
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
}

/* snapshots/<commit>/<path> -> ../../(../ per folder of path)blobs/<etag>, as huggingface_hub's
 * relative symlinks are. */
static sd_status link_pointer(const char *repo_dir, const char *commit, const char *path, const char *etag) {
    char pointer[SD_PATH_MAX], target[SD_PATH_MAX] = "../../";
    if (snprintf(pointer, sizeof pointer, "%s/snapshots/%s/%s", repo_dir, commit, path) >= (int)sizeof pointer)
        return sd_fail(SD_ERR_LIMIT, "path too long: %s", path);
    for (const char *p = path; *p; p++)
        if (*p == '/') strcat(target, "../"); /* path < 1024 bytes: fits */
    strcat(target, "blobs/");
    strcat(target, etag);
    char dir[SD_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", pointer);
    *strrchr(dir, '/') = '\0';
    SD_TRY(mkdirs(dir));
    char existing[SD_PATH_MAX];
    ssize_t n = readlink(pointer, existing, sizeof existing - 1);
    if (n >= 0) {
        existing[n] = '\0';
        if (strcmp(existing, target) == 0) return SD_OK;
    }
    unlink(pointer);
    if (symlink(target, pointer) != 0) return sd_fail(SD_ERR_IO, "%s: cannot create the link: %s", pointer, strerror(errno));
    return SD_OK;
}

static sd_status write_ref(const char *repo_dir, const char *revision, const char *commit) {
    char ref[SD_PATH_MAX], tmp[SD_PATH_MAX + 8];
    if (snprintf(ref, sizeof ref, "%s/refs/%s", repo_dir, revision) >= (int)sizeof ref)
        return sd_fail(SD_ERR_LIMIT, "path too long: refs/%s", revision);
    char dir[SD_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", ref);
    *strrchr(dir, '/') = '\0';
    SD_TRY(mkdirs(dir));
    snprintf(tmp, sizeof tmp, "%s.tmp", ref);
    FILE *f = fopen(tmp, "w");
    if (!f) return sd_fail(SD_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    bool ok = fputs(commit, f) >= 0; /* no newline: as huggingface_hub writes it */
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, ref) != 0) {
        unlink(tmp);
        return sd_fail(SD_ERR_IO, "%s: cannot write", ref);
    }
    return SD_OK;
}

/* ---- one file ----------------------------------------------------------------------------- */

typedef struct pull_ctx {
    const sd_pull_params *p;
    const char *endpoint, *token, *repo, *commit;
    char repo_dir[SD_PATH_MAX];
    const char *file; /* for progress */
    sd_pull_result *result;
} pull_ctx;

/* Percent-encodes a path for a URL, keeping '/' when keep_slash. */
static void url_encode(char *out, size_t out_size, const char *s, bool keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < out_size; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~' || (c == '/' && keep_slash))
            out[o++] = (char)c;
        else
            out[o++] = '%', out[o++] = hex[c >> 4], out[o++] = hex[c & 15];
    }
    out[o] = '\0';
}

static bool safe_etag(const char *e) {
    size_t n = strlen(e);
    if (n == 0 || n > 128 || e[0] == '.') return false;
    for (; *e; e++)
        if (!((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') || (*e >= '0' && *e <= '9') || *e == '-' || *e == '_' || *e == '.'))
            return false;
    return true;
}

static bool all_hex(const char *s, size_t n) {
    if (strlen(s) != n) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}

static sd_status http_error(long status, const char *url, const char *token) {
    if (status == 401 || status == 403)
        return sd_fail(SD_ERR_IO, "%s: HTTP %ld: %s", url, status,
                       token && *token ? "the token (HF_TOKEN) was refused for this repository"
                                       : "the repository is gated or private: accept its terms on the hub, then set "
                                         "HF_TOKEN to an access token");
    if (status == 404) return sd_fail(SD_ERR_NOT_FOUND, "%s: HTTP 404: no such repository, revision or file", url);
    return sd_fail(SD_ERR_IO, "%s: HTTP %ld", url, status);
}

/* Resolves a redirect target against the URL it came from (absolute, or a path on the same host). */
static void absolute_url(char *out, size_t out_size, const char *from, const char *location) {
    if (strstr(location, "://")) {
        snprintf(out, out_size, "%s", location);
        return;
    }
    const char *host_end = strstr(from, "://");
    host_end = host_end ? strchr(host_end + 3, '/') : NULL;
    int host_len = host_end ? (int)(host_end - from) : (int)strlen(from);
    snprintf(out, out_size, "%.*s%s%s", host_len, from, location[0] == '/' ? "" : "/", location);
}

static void on_bytes(void *user, int64_t done, int64_t total) {
    pull_ctx *c = user;
    if (c->p->progress) c->p->progress(c->p->user, c->file, (uint64_t)done, (uint64_t)(total > 0 ? total : 0), 0);
}

static sd_status verify(const char *path, const char *etag, bool lfs) {
    char got[SD_SHA256_HEX];
    if (all_hex(etag, 64)) {
        SD_TRY(sd_file_sha256_hex(path, got));
    } else if (all_hex(etag, 40) && !lfs) {
        SD_TRY(sd_file_git_sha1_hex(path, got));
    } else {
        return sd_fail(SD_ERR_FORMAT, "the hub's etag '%s' is neither a sha256 nor a git sha1: the file cannot be checked", etag);
    }
    if (strcmp(got, etag) != 0) return sd_fail(SD_ERR_FORMAT, "checksum mismatch: the hub says %s, the bytes received hash to %s", etag, got);
    return SD_OK;
}

/* Downloads url into `incomplete` until it holds `size` bytes: resumes after a dropped connection,
 * starts over after a 416 or a 200 to a Range request. Bounded to MAX_ATTEMPTS transfers. */
static sd_status download_blob(pull_ctx *c, const char *url, const char *token, const char *incomplete, int64_t size) {
    sd_status last = SD_OK;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        int64_t have = file_size(incomplete);
        if (have > size) { /* longer than the file: not a prefix of it */
            unlink(incomplete);
            have = -1;
        }
        if (have == size && size > 0) return SD_OK;
        FILE *f = fopen(incomplete, have > 0 ? "ab" : "wb");
        if (!f) return sd_fail(SD_ERR_IO, "%s: cannot write: %s", incomplete, strerror(errno));
        hub_response r;
        int restarted = 0;
        last = hub_http_download(url, token, f, have > 0 ? have : 0, &r, &restarted, on_bytes, c);
        fclose(f);
        int64_t now = file_size(incomplete);
        if (now > have && now > 0) c->result->bytes_downloaded += (uint64_t)(now - (have > 0 ? have : 0));
        if (last == SD_OK && r.status == 416) { /* our partial file does not fit the server's: start over */
            unlink(incomplete);
            last = sd_fail(SD_ERR_IO, "%s: HTTP 416 on resume", url);
            continue;
        }
        if (last == SD_OK && r.status != 200 && r.status != 206) return http_error(r.status, url, token);
        if (last == SD_OK && file_size(incomplete) == size) return SD_OK;
        if (last == SD_OK) last = sd_fail(SD_ERR_IO, "%s: the transfer ended at %lld of %lld bytes", url,
                                          (long long)file_size(incomplete), (long long)size);
        /* a dropped connection or a short answer: resume from what arrived */
    }
    return last;
}

static sd_status pull_file(pull_ctx *c, const char *path) {
    char enc[3 * 1024 + 1], url[8192], next[8192];
    url_encode(enc, sizeof enc, path, true);
    snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", c->endpoint, c->repo, c->commit, enc);
    c->file = path;
    hub_response r;
    /* the metadata: follow only same-host (relative) redirects, as huggingface_hub does; the CDN
     * redirect of an LFS file carries the etag and size itself */
    for (int hop = 0;; hop++) {
        SD_TRY(hub_http_head(url, c->token, &r));
        bool redirect = r.status >= 300 && r.status < 400 && r.location[0];
        if (!redirect || strstr(r.location, "://") || hop >= MAX_HEAD_HOPS) break;
        absolute_url(next, sizeof next, url, r.location);
        snprintf(url, sizeof url, "%s", next);
    }
    bool redirect = r.status >= 300 && r.status < 400 && r.location[0];
    if (r.status != 200 && !redirect) return http_error(r.status, url, c->token);
    if (r.commit[0] && strcmp(r.commit, c->commit) != 0)
        return sd_fail(SD_ERR_FORMAT, "%s: X-Repo-Commit %s, expected %s", url, r.commit, c->commit);
    if (!safe_etag(r.etag)) return sd_fail(SD_ERR_FORMAT, "%s: no usable ETag / X-Linked-Etag ('%.64s')", url, r.etag);
    int64_t size = r.linked_size >= 0 ? r.linked_size : (redirect ? -1 : r.content_length);
    if (size < 0) return sd_fail(SD_ERR_FORMAT, "%s: the hub gave no size (X-Linked-Size / Content-Length)", url);
    char etag[sizeof r.etag];
    snprintf(etag, sizeof etag, "%s", r.etag);
    bool lfs = r.has_linked_etag;
    char blob[SD_PATH_MAX], incomplete[SD_PATH_MAX + 16];
    if (snprintf(blob, sizeof blob, "%s/blobs/%s", c->repo_dir, etag) >= (int)sizeof blob)
        return sd_fail(SD_ERR_LIMIT, "path too long: %s", c->repo_dir);
    snprintf(incomplete, sizeof incomplete, "%s.incomplete", blob);
    c->result->files++;
    if (file_size(blob) == size) { /* complete already: no download */
        if (c->p->progress) c->p->progress(c->p->user, path, (uint64_t)size, (uint64_t)size, 1);
        return link_pointer(c->repo_dir, c->commit, path, etag);
    }
    SD_TRY(mkdirs(strcat(strcpy(next, c->repo_dir), "/blobs")));
    if (redirect) absolute_url(next, sizeof next, url, r.location);
    /* the token goes to the hub only, never to the CDN host it redirects to */
    bool same_host = !redirect || strncmp(next, c->endpoint, strlen(c->endpoint)) == 0;
    const char *get_url = redirect ? next : url, *get_token = same_host ? c->token : NULL;
    bool had_partial = file_size(incomplete) > 0;
    sd_status st = download_blob(c, get_url, get_token, incomplete, size);
    if (st == SD_OK) st = verify(incomplete, etag, lfs);
    if (st != SD_OK && had_partial) { /* the partial file from before may be what is wrong: once more from 0 */
        unlink(incomplete);
        st = download_blob(c, get_url, get_token, incomplete, size);
        if (st == SD_OK) st = verify(incomplete, etag, lfs);
    }
    if (st != SD_OK) {
        if (file_size(incomplete) >= size) unlink(incomplete); /* complete but wrong: nothing corrupt stays */
        sd_error_prefix("%s", path);
        return st;
    }
    chmod(incomplete, 0644);
    if (rename(incomplete, blob) != 0) return sd_fail(SD_ERR_IO, "%s: cannot rename into place: %s", blob, strerror(errno));
    c->result->downloaded++;
    if (c->p->progress) c->p->progress(c->p->user, path, (uint64_t)size, (uint64_t)size, 0);
    return link_pointer(c->repo_dir, c->commit, path, etag);
}

/* ---- the public functions ------------------------------------------------------------------ */

/* $HF_TOKEN, else the token file huggingface-cli login writes. */
static const char *find_token(char *buf, size_t size) {
    const char *env = getenv("HF_TOKEN");
    if (env && *env) return env;
    char path[SD_PATH_MAX];
    const char *v;
    if ((v = getenv("HF_TOKEN_PATH")) && *v) snprintf(path, sizeof path, "%s", v);
    else if ((v = getenv("HF_HOME")) && *v) snprintf(path, sizeof path, "%s/token", v);
    else if ((v = getenv("HOME")) && *v) snprintf(path, sizeof path, "%s/.cache/huggingface/token", v);
    else return NULL;
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    bool ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    if (!ok) return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return *buf ? buf : NULL;
}

sd_status sd_hub_resolve(const char *spec, char *out, size_t out_size) {
    SD_CHECK_ARG(spec && *spec && out && out_size > 0, "sd_hub_resolve: NULL or empty argument");
    return sd_hf_resolve(out, out_size, spec, "model");
}

static sd_status list_revision(pull_ctx *c, const char *revision, char commit[48], char ***names, int *n) {
    char enc_rev[3 * SD_HF_REV_MAX + 1], url[1024];
    url_encode(enc_rev, sizeof enc_rev, revision, false);
    snprintf(url, sizeof url, "%s/api/models/%s/revision/%s", c->endpoint, c->repo, enc_rev);
    char *body = NULL;
    hub_response r;
    SD_TRY(hub_http_get_body(url, c->token, REVISION_JSON_MAX, &body, &r));
    sd_status st = r.status == 200 ? hub_parse_revision(body, strlen(body), commit, names, n) : http_error(r.status, url, c->token);
    free(body);
    if (st != SD_OK && r.status == 200) sd_error_prefix("%s", url);
    return st;
}

sd_status sd_hub_pull(const sd_pull_params *params, sd_pull_result *result) {
    SD_CHECK_ARG(params && params->id && result, "sd_hub_pull: params, params.id or result is NULL");
    sd_hf_id id;
    if (!sd_hf_id_parse(&id, params->id))
        return sd_fail(SD_ERR_ARG, "'%s': not a Hugging Face id (org/name[@revision][/file])", params->id);
    const char *revision = params->revision && *params->revision ? params->revision : (id.revision[0] ? id.revision : "main");
    if (strlen(revision) >= SD_HF_REV_MAX || strstr(revision, "..") || revision[0] == '/')
        return sd_fail(SD_ERR_ARG, "revision '%.64s': not a branch, tag or commit", revision);
    if (sd_hf_offline())
        return sd_fail(SD_ERR_IO, "%s: HF_HUB_OFFLINE is set: not downloading (unset it, or put the files in the cache)",
                       params->id);
    char endpoint[512], token_buf[1024];
    const char *ep = params->endpoint && *params->endpoint ? params->endpoint : getenv("HF_ENDPOINT");
    if (!ep || !*ep) ep = "https://huggingface.co";
    if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
        return sd_fail(SD_ERR_ARG, "endpoint '%.200s': expected an http:// or https:// URL", ep);
    if (snprintf(endpoint, sizeof endpoint, "%s", ep) >= (int)sizeof endpoint) return sd_fail(SD_ERR_ARG, "endpoint too long");
    for (size_t n = strlen(endpoint); n > 0 && endpoint[n - 1] == '/'; n--) endpoint[n - 1] = '\0';

    sd_pull_result res;
    memset(&res, 0, sizeof res);
    pull_ctx c = {.p = params, .endpoint = endpoint, .repo = id.repo, .result = &res};
    c.token = params->token && *params->token ? params->token : find_token(token_buf, sizeof token_buf);
    SD_TRY(sd_hf_repo_dir(c.repo_dir, sizeof c.repo_dir, id.repo));
    char **names = NULL;
    int n = 0;
    SD_TRY_CTX(list_revision(&c, revision, res.commit, &names, &n), "%s", params->id);
    c.commit = res.commit;
    bool *keep = calloc((size_t)n + 1, sizeof *keep);
    sd_status st = keep ? hub_select_files(names, n, params->variant, id.file, keep) : sd_fail(SD_ERR_NOMEM, "out of memory");
    if (st != SD_OK) sd_error_prefix("%s", params->id);
    for (int i = 0; st == SD_OK && i < n; i++)
        if (keep[i]) st = pull_file(&c, names[i]);
    free(keep);
    hub_free_names(names, n);
    /* the ref last: it says the snapshot is complete (see the top of this file) */
    if (st == SD_OK && strcmp(revision, res.commit) != 0) st = write_ref(c.repo_dir, revision, res.commit);
    if (st == SD_OK && snprintf(res.snapshot, sizeof res.snapshot, "%s/snapshots/%s%s%s", c.repo_dir, res.commit,
                                id.file[0] ? "/" : "", id.file) >= (int)sizeof res.snapshot)
        st = sd_fail(SD_ERR_LIMIT, "path too long: %s", c.repo_dir);
    if (st != SD_OK) return st;
    *result = res;
    return SD_OK;
}
