/* hub_server.c — see hub_server.h. Test-only: plain sockets, one connection at a time. */
#define _GNU_SOURCE /* strcasestr */
#include "hub_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/digest.h"

struct hub_server {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t lock;
    hub_server_repo repos[HUB_SERVER_MAX_REPOS];
    int n_repos;
    hub_server_faults faults;
    hub_server_stats stats;
    int drops_done; /* drop_file drops once */
};

void hub_server_commit(const char *id, char out[41]) {
    char hex[SD_SHA256_HEX];
    sd_sha256_hex(id, strlen(id), hex);
    memcpy(out, hex, 40);
    out[40] = '\0';
}

static void send_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return;
        p += n, len -= (size_t)n;
    }
}

static void respond(int fd, int status, const char *reason, const char *extra_headers, const char *body, bool head) {
    char hdr[4096];
    size_t len = body ? strlen(body) : 0;
    snprintf(hdr, sizeof hdr, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status, reason, len,
             extra_headers ? extra_headers : "");
    send_all(fd, hdr, strlen(hdr));
    if (body && !head) send_all(fd, body, len);
}

/* Appends the JSON of every file under dir (relative names) to out. */
static void list_files(const char *root, const char *rel, char *out, size_t cap, bool *first) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char child_rel[4096], child[8200];
        snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(child, sizeof child, "%s/%s", root, child_rel);
        struct stat st;
        if (stat(child, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            list_files(root, child_rel, out, cap, first);
        } else {
            size_t used = strlen(out);
            snprintf(out + used, cap - used, "%s{\"rfilename\":\"%s\"}", *first ? "" : ",", child_rel);
            *first = false;
        }
    }
    closedir(d);
}

static const hub_server_repo *find_repo(hub_server *s, const char *path, const char **rest) {
    for (int i = 0; i < s->n_repos; i++) {
        size_t n = strlen(s->repos[i].id);
        if (strncmp(path, s->repos[i].id, n) == 0 && (path[n] == '/' || path[n] == '\0')) {
            *rest = path + n;
            return &s->repos[i];
        }
    }
    return NULL;
}

static void send_file(hub_server *s, int fd, const char *file_path, const char *rel, int64_t range_from, bool head,
                      const char *extra) {
    FILE *f = fopen(file_path, "rb");
    if (!f) {
        respond(fd, 404, "Not Found", NULL, "no file", head);
        return;
    }
    fseek(f, 0, SEEK_END);
    int64_t size = ftell(f);
    pthread_mutex_lock(&s->lock);
    hub_server_faults faults = s->faults;
    bool drop = strcmp(faults.drop_file, rel) == 0 && s->drops_done == 0 && !head && range_from < 0;
    if (drop) s->drops_done = 1;
    pthread_mutex_unlock(&s->lock);
    if (range_from >= 0 && strcmp(faults.refuse_range_file, rel) == 0) range_from = size; /* -> 416 */
    char hdr[2048];
    if (range_from >= size) {
        fclose(f);
        snprintf(hdr, sizeof hdr, "Content-Range: bytes */%lld\r\n", (long long)size);
        respond(fd, 416, "Range Not Satisfiable", hdr, "", head);
        pthread_mutex_lock(&s->lock);
        s->stats.answers_416++;
        pthread_mutex_unlock(&s->lock);
        return;
    }
    int64_t from = range_from > 0 ? range_from : 0;
    if (range_from >= 0)
        snprintf(hdr, sizeof hdr, "HTTP/1.1 206 Partial Content\r\nContent-Length: %lld\r\nContent-Range: bytes %lld-%lld/%lld\r\n"
                 "Connection: close\r\n%s\r\n", (long long)(size - from), (long long)from, (long long)size - 1,
                 (long long)size, extra ? extra : "");
    else
        snprintf(hdr, sizeof hdr, "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\nAccept-Ranges: bytes\r\nConnection: close\r\n%s\r\n",
                 (long long)size, extra ? extra : "");
    send_all(fd, hdr, strlen(hdr));
    if (head) {
        fclose(f);
        return;
    }
    int64_t limit = drop ? size / 2 : size, sent = 0;
    bool corrupt = strcmp(faults.corrupt_file, rel) == 0;
    fseek(f, (long)from, SEEK_SET);
    char buf[1 << 16];
    size_t n;
    while (from + sent < limit && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        if ((int64_t)n > limit - from - sent) n = (size_t)(limit - from - sent);
        if (corrupt && from + sent <= size / 2 && size / 2 < from + sent + (int64_t)n) buf[size / 2 - from - sent] ^= 0x5a;
        send_all(fd, buf, n);
        sent += (int64_t)n;
    }
    fclose(f);
    pthread_mutex_lock(&s->lock);
    s->stats.file_gets++;
    s->stats.bytes_sent += sent;
    if (range_from >= 0) s->stats.range_gets++;
    if (drop) s->stats.drops++;
    pthread_mutex_unlock(&s->lock);
}

static void handle(hub_server *s, int fd) {
    char req[8192];
    size_t len = 0;
    while (len < sizeof req - 1) { /* the request head; bounded by size and the 5 s timeout */
        ssize_t n = recv(fd, req + len, sizeof req - 1 - len, 0);
        if (n <= 0) return;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n")) break;
    }
    char method[16], target[4096];
    if (sscanf(req, "%15s %4095s", method, target) != 2) return;
    bool head = strcmp(method, "HEAD") == 0;
    int64_t range_from = -1;
    const char *range = strcasestr(req, "\r\nRange: bytes=");
    if (range) range_from = atoll(range + 15);
    const char *auth = strcasestr(req, "\r\nAuthorization: Bearer ");
    char token[256] = "";
    if (auth) sscanf(auth + 24, "%255[^\r\n]", token);

    bool api = strncmp(target, "/api/models/", 12) == 0, cdn = strncmp(target, "/cdn/", 5) == 0;
    const char *rest = NULL;
    const hub_server_repo *repo = find_repo(s, target + (api ? 12 : cdn ? 5 : 1), &rest);
    if (!repo) {
        pthread_mutex_lock(&s->lock);
        s->stats.answers_404++;
        pthread_mutex_unlock(&s->lock);
        respond(fd, 404, "Not Found", "X-Error-Code: RepoNotFound\r\n", "{\"error\":\"Repository not found\"}", head);
        return;
    }
    if (repo->token && !cdn && strcmp(token, repo->token) != 0) {
        pthread_mutex_lock(&s->lock);
        s->stats.answers_401++;
        pthread_mutex_unlock(&s->lock);
        respond(fd, 401, "Unauthorized", "X-Error-Code: GatedRepo\r\n", "{\"error\":\"Access to model is restricted\"}", head);
        return;
    }
    char commit[41];
    hub_server_commit(repo->id, commit);
    if (api) {
        pthread_mutex_lock(&s->lock);
        s->stats.api_calls++;
        pthread_mutex_unlock(&s->lock);
        static char body[1 << 16];
        bool first = true;
        snprintf(body, sizeof body, "{\"id\":\"%s\",\"sha\":\"%s\",\"siblings\":[", repo->id, commit);
        list_files(repo->dir, "", body, sizeof body - 4, &first);
        strcat(body, "]}");
        respond(fd, 200, "OK", "Content-Type: application/json\r\n", body, head);
        return;
    }
    char file_path[8192], rel[4096];
    if (cdn) {
        snprintf(rel, sizeof rel, "%s", rest + 1);
        snprintf(file_path, sizeof file_path, "%s/%s", repo->dir, rel);
        send_file(s, fd, file_path, rel, range_from, head, NULL);
        return;
    }
    /* /{id}/resolve/{rev}/{path} */
    if (strncmp(rest, "/resolve/", 9) != 0) {
        respond(fd, 404, "Not Found", NULL, "no route", head);
        return;
    }
    const char *slash = strchr(rest + 9, '/');
    if (!slash) {
        respond(fd, 404, "Not Found", NULL, "no file", head);
        return;
    }
    snprintf(rel, sizeof rel, "%s", slash + 1);
    snprintf(file_path, sizeof file_path, "%s/%s", repo->dir, rel);
    struct stat st;
    if (stat(file_path, &st) != 0 || strstr(rel, "..")) {
        pthread_mutex_lock(&s->lock);
        s->stats.answers_404++;
        pthread_mutex_unlock(&s->lock);
        respond(fd, 404, "Not Found", "X-Error-Code: EntryNotFound\r\n", "no file", head);
        return;
    }
    if (head) {
        pthread_mutex_lock(&s->lock);
        s->stats.heads++;
        pthread_mutex_unlock(&s->lock);
    }
    size_t rl = strlen(rel);
    bool lfs = rl > 12 && strcmp(rel + rl - 12, ".safetensors") == 0;
    char hdr[2048];
    if (lfs) {
        char sha[SD_SHA256_HEX];
        sd_file_sha256_hex(file_path, sha);
        snprintf(hdr, sizeof hdr,
                 "X-Repo-Commit: %s\r\nX-Linked-Etag: \"%s\"\r\nX-Linked-Size: %lld\r\nETag: \"deadbeef\"\r\n"
                 "Location: http://127.0.0.1:%d/cdn/%s/%s\r\n",
                 commit, sha, (long long)st.st_size, s->port, repo->id, rel);
        respond(fd, 302, "Found", hdr, "", head);
        return;
    }
    char sha1[SD_SHA1_HEX];
    sd_file_git_sha1_hex(file_path, sha1);
    snprintf(hdr, sizeof hdr, "X-Repo-Commit: %s\r\nETag: \"%s\"\r\n", commit, sha1);
    send_file(s, fd, file_path, rel, range_from, head, hdr);
}

static void *serve_loop(void *arg) {
    hub_server *s = arg;
    while (!s->stop) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0) continue;
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        handle(s, fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    return NULL;
}

hub_server *hub_server_start(const hub_server_repo *repos, int n_repos) {
    if (n_repos > HUB_SERVER_MAX_REPOS) return NULL;
    hub_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    memcpy(s->repos, repos, sizeof *repos * (size_t)n_repos);
    s->n_repos = n_repos;
    pthread_mutex_init(&s->lock, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s->fd, 16) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&addr, &alen) != 0) {
        if (s->fd >= 0) close(s->fd);
        free(s);
        return NULL;
    }
    s->port = ntohs(addr.sin_port);
    if (pthread_create(&s->thread, NULL, serve_loop, s) != 0) {
        close(s->fd);
        free(s);
        return NULL;
    }
    return s;
}

int hub_server_port(const hub_server *s) { return s->port; }

void hub_server_set_faults(hub_server *s, const hub_server_faults *f) {
    pthread_mutex_lock(&s->lock);
    s->faults = *f;
    s->drops_done = 0;
    pthread_mutex_unlock(&s->lock);
}

hub_server_stats hub_server_stats_take(hub_server *s) {
    pthread_mutex_lock(&s->lock);
    hub_server_stats st = s->stats;
    memset(&s->stats, 0, sizeof s->stats);
    pthread_mutex_unlock(&s->lock);
    return st;
}

void hub_server_stop(hub_server *s) {
    if (!s) return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
