/* hub_http.c — see hub_http.h. */
#include "api/hub_http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Bounds on every request: a hub that does not answer, or a transfer that stalls, ends in an error
 * instead of a hang. SDSTREAM_HUB_STALL_S shortens the stall limit (tests). */
enum { CONNECT_TIMEOUT_S = 15, METADATA_TIMEOUT_S = 60, STALL_DEFAULT_S = 30, MAX_REDIRECTS = 5 };

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void hub_response_reset(hub_response *r) {
    memset(r, 0, sizeof *r);
    r->linked_size = r->content_length = -1;
}

/* Copies the header value (trimmed) into out; false when it does not fit. */
static bool header_value(char *out, size_t out_size, const char *v, size_t n) {
    while (n > 0 && (*v == ' ' || *v == '\t')) v++, n--;
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    if (n >= out_size) return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

static int64_t parse_size(const char *v, size_t n) {
    char buf[32];
    if (!header_value(buf, sizeof buf, v, n) || !buf[0]) return -1;
    int64_t x = 0;
    for (const char *p = buf; *p; p++) {
        if (!isdigit((unsigned char)*p) || x > (INT64_MAX - 9) / 10) return -1;
        x = x * 10 + (*p - '0');
    }
    return x;
}

/* huggingface_hub's normalisation: a weak W/ prefix and the quotes go. */
static void normalize_etag(char *out, size_t out_size, const char *v, size_t n) {
    char buf[256];
    if (!header_value(buf, sizeof buf, v, n)) {
        out[0] = '\0';
        return;
    }
    const char *s = buf;
    if (strncmp(s, "W/", 2) == 0) s += 2;
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') s++, len -= 2;
    if (len >= out_size) len = 0;
    memcpy(out, s, len);
    out[len] = '\0';
}

void hub_parse_header(hub_response *r, const char *line, size_t len) {
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (after a redirect or 100) */
        hub_response_reset(r);
        const char *sp = memchr(line, ' ', len);
        if (sp && (size_t)(sp - line) + 4 <= len && isdigit((unsigned char)sp[1]) && isdigit((unsigned char)sp[2]) &&
            isdigit((unsigned char)sp[3]))
            r->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        return;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon) return;
    size_t name_len = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t n = len - name_len - 1;
#define IS(name) (name_len == sizeof(name) - 1 && strncasecmp(line, name, name_len) == 0)
    if (IS("x-linked-etag")) {
        normalize_etag(r->etag, sizeof r->etag, v, n);
        r->has_linked_etag = r->etag[0] != '\0';
    } else if (IS("etag") && !r->has_linked_etag) {
        normalize_etag(r->etag, sizeof r->etag, v, n);
    } else if (IS("x-repo-commit")) {
        if (!header_value(r->commit, sizeof r->commit, v, n)) r->commit[0] = '\0';
    } else if (IS("x-linked-size")) {
        r->linked_size = parse_size(v, n);
    } else if (IS("content-length")) {
        r->content_length = parse_size(v, n);
    } else if (IS("location")) {
        if (!header_value(r->location, sizeof r->location, v, n)) r->location[0] = '\0';
    }
#undef IS
}

static size_t on_header(char *data, size_t size, size_t n, void *user) {
    hub_parse_header(user, data, size * n);
    return size * n;
}

typedef struct body_sink {
    char *data;
    size_t len, max;
    bool over;
} body_sink;

static size_t on_body(char *data, size_t size, size_t n, void *user) {
    body_sink *b = user;
    size_t add = size * n;
    if (b->len + add > b->max) {
        b->over = true;
        return 0; /* aborts the transfer */
    }
    char *grown = realloc(b->data, b->len + add + 1);
    if (!grown) return 0;
    b->data = grown;
    memcpy(b->data + b->len, data, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* A handle with the common bounds: protocols, timeouts, auth header, header parser. */
static CURL *open_handle(const char *url, const char *token, struct curl_slist **headers, hub_response *r) {
    pthread_once(&g_curl_once, curl_init_once);
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    hub_response_reset(r);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    const char *stall_env = getenv("SDSTREAM_HUB_STALL_S");
    long stall = stall_env && atol(stall_env) > 0 ? atol(stall_env) : STALL_DEFAULT_S;
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sdstream/" SDSTREAM_VERSION " (libcurl)");
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    /* the hub's checksums are of the stored bytes: no transfer compression */
    *headers = curl_slist_append(NULL, "Accept-Encoding: identity");
    if (token && *token) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        struct curl_slist *more = curl_slist_append(*headers, auth);
        if (more) *headers = more;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
    return c;
}

static sd_status transfer_failed(CURLcode code, const char *url) {
    bool unreachable = code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_CONNECT ||
                       code == CURLE_COULDNT_RESOLVE_PROXY || code == CURLE_OPERATION_TIMEDOUT;
    return sd_fail(SD_ERR_IO, "%s: %s%s", url, curl_easy_strerror(code),
                   unreachable ? " (no network, or the endpoint is unreachable)" : "");
}

sd_status hub_http_get_body(const char *url, const char *token, size_t max_bytes, char **body, hub_response *r) {
    struct curl_slist *headers = NULL;
    CURL *c = open_handle(url, token, &headers, r);
    if (!c) return sd_fail(SD_ERR_NOMEM, "%s: cannot create a libcurl handle", url);
    body_sink sink = {.max = max_bytes};
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)METADATA_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    CURLcode code = curl_easy_perform(c);
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    if (sink.over) {
        free(sink.data);
        return sd_fail(SD_ERR_LIMIT, "%s: answer larger than %zu bytes", url, max_bytes);
    }
    if (code != CURLE_OK) {
        free(sink.data);
        return transfer_failed(code, url);
    }
    *body = sink.data ? sink.data : calloc(1, 1);
    return *body ? SD_OK : sd_fail(SD_ERR_NOMEM, "%s: out of memory", url);
}

sd_status hub_http_head(const char *url, const char *token, hub_response *r) {
    struct curl_slist *headers = NULL;
    CURL *c = open_handle(url, token, &headers, r);
    if (!c) return sd_fail(SD_ERR_NOMEM, "%s: cannot create a libcurl handle", url);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)METADATA_TIMEOUT_S);
    CURLcode code = curl_easy_perform(c);
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    return code == CURLE_OK ? SD_OK : transfer_failed(code, url);
}

typedef struct file_sink {
    CURL *curl;
    FILE *f;
    int64_t offset, written;
    int *restarted;
    bool decided, accept;
} file_sink;

static size_t on_file(char *data, size_t size, size_t n, void *user) {
    file_sink *s = user;
    if (!s->decided) { /* the first body bytes: is this the file, and from where? */
        long status = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        s->decided = true;
        s->accept = status == 200 || (status == 206 && s->offset > 0);
        if (status == 200 && s->offset > 0) { /* the server ignored the Range: start over */
            if (fflush(s->f) != 0 || ftruncate(fileno(s->f), 0) != 0 || fseek(s->f, 0, SEEK_SET) != 0) return 0;
            *s->restarted = 1;
        }
    }
    if (!s->accept) return size * n; /* an error page: not the file's bytes */
    size_t w = fwrite(data, size, n, s->f);
    s->written += (int64_t)(w * size);
    return w * size;
}

typedef struct progress_ctx {
    hub_progress_fn fn;
    void *user;
    int64_t offset;
} progress_ctx;

static int on_progress(void *user, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un) {
    (void)ut, (void)un;
    progress_ctx *p = user;
    if (p->fn) p->fn(p->user, p->offset + (int64_t)now, total > 0 ? p->offset + (int64_t)total : 0);
    return 0;
}

sd_status hub_http_download(const char *url, const char *token, FILE *f, int64_t offset, hub_response *r,
                            int *restarted, hub_progress_fn progress, void *user) {
    struct curl_slist *headers = NULL;
    CURL *c = open_handle(url, token, &headers, r);
    if (!c) return sd_fail(SD_ERR_NOMEM, "%s: cannot create a libcurl handle", url);
    *restarted = 0;
    file_sink sink = {.curl = c, .f = f, .offset = offset, .restarted = restarted};
    progress_ctx pc = {progress, user, offset};
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_file);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &pc);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    char range[32];
    snprintf(range, sizeof range, "%lld-", (long long)offset);
    if (offset > 0) curl_easy_setopt(c, CURLOPT_RANGE, range); /* a plain Range: a 200 or 416 reaches us */
    CURLcode code = curl_easy_perform(c);
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    if (fflush(f) != 0) return sd_fail(SD_ERR_IO, "%s: cannot write the download (disk full?)", url);
    return code == CURLE_OK ? SD_OK : transfer_failed(code, url);
}
