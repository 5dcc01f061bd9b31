/* hf_cache.c — see hf_cache.h. */
#include "model/hf_cache.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* A repo or org name as the hub allows it: [A-Za-z0-9._-], not starting with '.' or '-', no ".."
 * or "--" (the cache folder uses "--" as its separator), at most 96 characters. */
static bool valid_name(const char *s, size_t n) {
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') return false;
        if (i > 0 && ((c == '.' && s[i - 1] == '.') || (c == '-' && s[i - 1] == '-'))) return false;
    }
    return true;
}

/* A revision (branch, tag, commit) of one path segment, or a file path inside the repository:
 * printable, no "..", no backslash, no empty segment. */
static bool valid_repo_path(const char *s, bool allow_slash) {
    if (!*s) return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c >= 127 || c == '\\' || c == ':' || c == '@') return false;
        if (c == '/' && (!allow_slash || p == s || p[1] == '/' || p[1] == '\0')) return false;
    }
    const char *seg = s;
    while (seg) {
        if (seg[0] == '.' && (seg[1] == '/' || seg[1] == '\0' || (seg[1] == '.' && (seg[2] == '/' || seg[2] == '\0'))))
            return false;
        seg = strchr(seg, '/');
        if (seg) seg++;
    }
    return true;
}

bool sd_hf_id_parse(sd_hf_id *id, const char *spec) {
    memset(id, 0, sizeof *id);
    if (!spec || strlen(spec) >= SD_PATH_MAX) return false;
    const char *slash = strchr(spec, '/');
    if (!slash || !valid_name(spec, (size_t)(slash - spec))) return false;
    const char *name = slash + 1;
    size_t name_len = strcspn(name, "@/");
    if (!valid_name(name, name_len)) return false;
    snprintf(id->repo, sizeof id->repo, "%.*s", (int)(slash - spec + 1 + (ptrdiff_t)name_len), spec);
    const char *rest = name + name_len;
    if (*rest == '@') {
        size_t rev_len = strcspn(rest + 1, "/");
        if (rev_len == 0 || rev_len >= sizeof id->revision) return false;
        snprintf(id->revision, sizeof id->revision, "%.*s", (int)rev_len, rest + 1);
        if (!valid_repo_path(id->revision, false)) return false;
        rest += 1 + rev_len;
    }
    if (*rest == '/') {
        snprintf(id->file, sizeof id->file, "%s", rest + 1);
        if (!valid_repo_path(id->file, true)) return false;
    } else if (*rest) {
        return false;
    }
    return true;
}

bool sd_hf_offline(void) {
    const char *v = getenv("HF_HUB_OFFLINE");
    if (!v) return false;
    return strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0;
}

bool sd_hf_is_commit(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n])) return false;
    return n == 40;
}

sd_status sd_hf_cache_dir(char *out, size_t out_size) {
    const char *v;
    int n;
    if ((v = getenv("HF_HUB_CACHE")) && *v) n = snprintf(out, out_size, "%s", v);
    else if ((v = getenv("HUGGINGFACE_HUB_CACHE")) && *v) n = snprintf(out, out_size, "%s", v);
    else if ((v = getenv("HF_HOME")) && *v) n = snprintf(out, out_size, "%s/hub", v);
    else if ((v = getenv("XDG_CACHE_HOME")) && *v) n = snprintf(out, out_size, "%s/huggingface/hub", v);
    else if ((v = getenv("HOME")) && *v) n = snprintf(out, out_size, "%s/.cache/huggingface/hub", v);
    else return sd_fail(SD_ERR_NOT_FOUND, "no Hugging Face cache folder: set HF_HUB_CACHE or HOME");
    if (n < 0 || (size_t)n >= out_size) return sd_fail(SD_ERR_LIMIT, "Hugging Face cache path too long: %s", v);
    return SD_OK;
}

sd_status sd_hf_repo_dir(char *out, size_t out_size, const char *repo) {
    char hub[SD_PATH_MAX], folder[SD_HF_ID_MAX + 16];
    SD_TRY(sd_hf_cache_dir(hub, sizeof hub));
    const char *slash = strchr(repo, '/');
    if (!slash) return sd_fail(SD_ERR_ARG, "%s: not an org/name id", repo);
    snprintf(folder, sizeof folder, "models--%.*s--%s", (int)(slash - repo), repo, slash + 1);
    return sd_path_join(out, out_size, hub, folder);
}

/* refs/<revision> -> commit; a commit hash names its snapshot directly. */
static sd_status snapshot_dir(char *out, size_t out_size, const char *repo_dir, const char *spec, const char *revision) {
    char commit[64] = "";
    if (sd_hf_is_commit(revision)) {
        snprintf(commit, sizeof commit, "%.40s", revision); /* 40 hex digits */
    } else {
        char ref_path[SD_PATH_MAX];
        if (snprintf(ref_path, sizeof ref_path, "%s/refs/%s", repo_dir, revision) >= (int)sizeof ref_path)
            return sd_fail(SD_ERR_LIMIT, "%s: path too long", spec);
        FILE *f = fopen(ref_path, "r");
        if (!f) return sd_fail(SD_ERR_NOT_FOUND, "%s: no such file or folder, and not in the Hugging Face cache (no %s)", spec, ref_path);
        bool ok = fgets(commit, sizeof commit, f) != NULL;
        fclose(f);
        commit[strcspn(commit, "\r\n \t")] = '\0';
        if (!ok || !sd_hf_is_commit(commit))
            return sd_fail(SD_ERR_FORMAT, "%s: %s does not hold a commit hash", spec, ref_path);
    }
    if (snprintf(out, out_size, "%s/snapshots/%s", repo_dir, commit) >= (int)out_size)
        return sd_fail(SD_ERR_LIMIT, "%s: path too long", spec);
    if (!sd_is_dir(out)) return sd_fail(SD_ERR_NOT_FOUND, "%s: no such file or folder, and not in the Hugging Face cache (no %s)", spec, out);
    return SD_OK;
}

sd_status sd_hf_resolve(char *out, size_t out_size, const char *spec, const char *what) {
    SD_CHECK_ARG(spec && out && out_size > 0, "sd_hf_resolve: NULL argument");
    sd_hf_id id;
    struct stat st;
    if (stat(spec, &st) == 0 || !sd_hf_id_parse(&id, spec)) {
        if (snprintf(out, out_size, "%s", spec) >= (int)out_size) return sd_fail(SD_ERR_LIMIT, "%s: path too long", spec);
        return SD_OK;
    }
    char repo_dir[SD_PATH_MAX], snap[SD_PATH_MAX];
    SD_TRY(sd_hf_repo_dir(repo_dir, sizeof repo_dir, id.repo));
    sd_status status = snapshot_dir(snap, sizeof snap, repo_dir, spec, id.revision[0] ? id.revision : "main");
    if (status == SD_OK && id.file[0]) {
        if (snprintf(out, out_size, "%s/%s", snap, id.file) >= (int)out_size) return sd_fail(SD_ERR_LIMIT, "%s: path too long", spec);
        if (stat(out, &st) != 0)
            status = sd_fail(SD_ERR_NOT_FOUND, "%s: the cached snapshot has no %s (%s)", spec, id.file, out);
    } else if (status == SD_OK) {
        snprintf(out, out_size, "%s", snap);
    }
    if (status != SD_OK) {
        sd_error_prefix("%s", what);
        /* the hint goes after the message: what to run to get it */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", sd_last_error());
        return sd_fail(status, "%s; download it with: sdstream pull %s", msg, spec);
    }
    return SD_OK;
}

sd_status sd_hf_resolve_file(char *out, size_t out_size, const char *spec, const char *what) {
    SD_TRY(sd_hf_resolve(out, out_size, spec, what));
    if (!sd_is_dir(out) || strcmp(out, spec) == 0) return SD_OK; /* a local path: the loader judges it */
    DIR *d = opendir(out);
    if (!d) return sd_fail(SD_ERR_IO, "%s: cannot list %s", spec, out);
    char found[256] = "", names[512] = "";
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 12 || strcmp(e->d_name + len - 12, ".safetensors") != 0) continue;
        if (n++ == 0) snprintf(found, sizeof found, "%s", e->d_name);
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", e->d_name);
    }
    closedir(d);
    if (n != 1)
        return sd_fail(SD_ERR_NOT_FOUND, "%s %s: %s (%s); name one: %s/FILE", what, spec,
                       n ? "the repository holds several .safetensors files" : "no .safetensors file in the cached snapshot",
                       n ? names : out, spec);
    size_t len = strlen(out);
    if (snprintf(out + len, out_size - len, "/%s", found) >= (int)(out_size - len))
        return sd_fail(SD_ERR_LIMIT, "%s: path too long", spec);
    return SD_OK;
}

bool sd_hf_find_snapshot(char *out, const char *repo, const char *sub, bool (*accept)(const char *dir)) {
    char repo_dir[SD_PATH_MAX], snaps[SD_PATH_MAX];
    if (sd_hf_repo_dir(repo_dir, sizeof repo_dir, repo) != SD_OK) return false;
    if (snprintf(snaps, sizeof snaps, "%s/snapshots", repo_dir) >= (int)sizeof snaps) return false;
    DIR *d = opendir(snaps);
    if (!d) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char cand[SD_PATH_MAX];
        if (snprintf(cand, sizeof cand, "%s/%s%s%s", snaps, e->d_name, *sub ? "/" : "", sub) >= (int)sizeof cand) continue;
        if (accept(cand)) {
            snprintf(out, SD_PATH_MAX, "%s", cand);
            found = true;
        }
    }
    closedir(d);
    return found;
}
