/* test_serve.c — `sdstream serve` end to end over real sockets: the page and the HTTP routes,
 * per-session isolation proven byte for byte against the library run locally, the queue, live
 * updates without re-encoding the prompt, hostile clients (oversized, malformed, wrong size,
 * non-JPEG, JPEG bomb, connect storms, slowloris, a client that never reads), a bounded-memory load
 * test, and SIGTERM on the real command. Every loop is bounded in count and time; all traffic stays
 * on 127.0.0.1. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "jpeg_codec.h"
#include "server.h"
#include "ws_client.h"

enum { W = 64, H = 64, FRAMES = 3 };

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

typedef struct blob {
    uint8_t *data;
    size_t len;
} blob;

/* A synthetic input frame: a gradient whose colours depend on (client, k). */
static void make_frame(uint8_t *rgb, int client, int k) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = rgb + ((size_t)y * W + x) * 3;
            p[0] = (uint8_t)(x * 4 + client * 90 + k * 7);
            p[1] = (uint8_t)(y * 4 + client * 40);
            p[2] = (uint8_t)((x + y) * 2 + k * 30);
        }
}

/* The JPEG a client sends (8-byte header + JPEG) and the pixels the server will decode from it. */
static blob make_message(jpeg_codec *codec, int client, int k, uint32_t id, uint8_t *decoded) {
    uint8_t rgb[W * H * 3];
    make_frame(rgb, client, k);
    size_t cap = SERVE_FRAME_HEADER + jpeg_max_size(W, H);
    blob b = {malloc(cap), 0};
    char err[256];
    size_t n = jpeg_encode_rgb(codec, rgb, W, H, 90, b.data + SERVE_FRAME_HEADER, cap - SERVE_FRAME_HEADER, err, sizeof err);
    CHECK(n > 0, "encode input: %s", err);
    serve_put_frame_header(b.data, id, 0);
    b.len = SERVE_FRAME_HEADER + n;
    CHECK(jpeg_decode_rgb(codec, b.data + SERVE_FRAME_HEADER, n, W, H, decoded, err, sizeof err) == 0, "decode: %s", err);
    return b;
}

/* What the server must send for these frames: the library run here, JPEG-encoded the same way. */
static void reference_outputs(sd_model *model, jpeg_codec *codec, const serve_config *c, int client, blob *out) {
    sd_stream_params p;
    serve_config_to_params(c, &p);
    sd_stream *s = NULL;
    CHECK_OK(sd_stream_create(&s, model, &p));
    if (!s) return;
    CHECK_OK(sd_stream_set_prompt(s, c->prompt, c->negative_prompt));
    for (int k = 0; k < FRAMES; k++) {
        uint8_t in[W * H * 3], res[W * H * 3];
        blob m = make_message(codec, client, k, 0, in);
        free(m.data);
        CHECK_OK(sd_stream_img2img(s, in, res, NULL));
        size_t cap = jpeg_max_size(W, H);
        out[k].data = malloc(cap);
        char err[256];
        out[k].len = jpeg_encode_rgb(codec, res, W, H, c->jpeg_quality, out[k].data, cap, err, sizeof err);
    }
    sd_stream_free(s);
}

/* ---- the server under test, in this process ---- */

typedef struct running {
    server *srv;
    pthread_t thread;
    int port;
} running;

static void *serve_thread(void *arg) {
    server_run(arg);
    return NULL;
}

static int start_server(running *r, sd_model *model, int max_sessions, int max_queue) {
    server_params p = server_params_default();
    p.port = 0;
    p.max_sessions = max_sessions;
    p.max_queue = max_queue;
    p.max_message_bytes = 256 * 1024;
    p.defaults = serve_config_default(W, H);
    p.access_log = 0;
    char err[256];
    if (server_create(&r->srv, model, &p, err, sizeof err) != 0) {
        CHECK(0, "server_create: %s", err);
        return -1;
    }
    r->port = server_port(r->srv);
    pthread_create(&r->thread, NULL, serve_thread, r->srv);
    return 0;
}

static void stop_server(running *r) {
    server_request_stop(r->srv);
    pthread_join(r->thread, NULL);
    server_free(r->srv);
}

/* Opens a session and waits until it is streaming (status ready). */
static int open_session(int port) {
    char err[256];
    int fd = ws_open(port, "/ws", NULL, err, sizeof err);
    CHECK(fd >= 0, "ws_open: %s", err);
    if (fd < 0) return -1;
    char *st = ws_wait_text(fd, "status", 5000);
    CHECK(st && strstr(st, "\"ready\""), "status ready: %s", st ? st : "(none)");
    free(st);
    return fd;
}

/* Sends a config and waits until the engine applied it (its reply carries the prompt). */
static int apply_config(int fd, const char *json, const char *marker) {
    ws_send(fd, WS_TEXT, json, strlen(json));
    double end = now_ms() + 10000;
    while (now_ms() < end) {
        char *t = ws_wait_text(fd, "config", (int)(end - now_ms()));
        if (!t) break;
        bool ok = strstr(t, marker) != NULL;
        free(t);
        if (ok) return 0;
    }
    CHECK(0, "config with %s not applied", marker);
    return -1;
}

/* Waits for the next binary frame; returns its JPEG (after the header) and id. */
static int recv_frame(int fd, int timeout_ms, uint32_t *id, blob *jpeg, char *error_text, size_t cap) {
    double end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        int op;
        uint8_t *p;
        size_t n;
        if (ws_recv(fd, (int)(end - now_ms()), &op, &p, &n) != 1) return -1;
        if (op == WS_BINARY && n > SERVE_FRAME_HEADER) {
            uint32_t flags;
            serve_get_frame_header(p, id, &flags);
            jpeg->len = n - SERVE_FRAME_HEADER;
            jpeg->data = malloc(jpeg->len);
            memcpy(jpeg->data, p + SERVE_FRAME_HEADER, jpeg->len);
            free(p);
            return 0;
        }
        if (op == WS_TEXT && strstr((char *)p, "\"error\"") && error_text) snprintf(error_text, cap, "%s", (char *)p);
        if (op == WS_CLOSE) {
            free(p);
            return -1;
        }
        free(p);
    }
    return -1;
}

/* Waits for an error message; returns it (malloc'd) or NULL. */
static char *recv_error(int fd, int timeout_ms) {
    return ws_wait_text(fd, "error", timeout_ms);
}

static long long metric(int port, const char *name) {
    static char body[16384];
    if (http_get(port, "/metrics", body, sizeof body) != 200) return -1;
    const char *p = strstr(body, name);
    while (p && p > body && p[-1] != '\n') p = strstr(p + 1, name);
    return p ? atoll(p + strlen(name) + 1) : -1;
}

/* ---- tests ---- */

/* Whether something listens on port on every interface, or only on 127.0.0.1 (from /proc/net/tcp*:
 * local address in hex, state 0A = LISTEN). Returns 1 loopback only, 0 wider, -1 not found. */
static int listens_on_loopback_only(int port) {
    const char *files[2] = {"/proc/net/tcp", "/proc/net/tcp6"};
    int found = -1;
    for (int f = 0; f < 2; f++) {
        FILE *in = fopen(files[f], "r");
        char line[512], local[64], remote[64], st[8];
        while (in && fgets(line, sizeof line, in)) {
            unsigned p = 0;
            if (sscanf(line, " %*d: %63s %63s %7s", local, remote, st) != 3 || strcmp(st, "0A") != 0) continue;
            char *colon = strrchr(local, ':');
            if (!colon || sscanf(colon + 1, "%x", &p) != 1 || (int)p != port) continue;
            *colon = '\0';
            found = strcmp(local, "0100007F") == 0 ? (found == 0 ? 0 : 1) : 0;
        }
        if (in) fclose(in);
    }
    return found;
}

static void test_http(int port) {
    static char body[1 << 16];
    CHECK(listens_on_loopback_only(port) == 1, "the default host listens on 127.0.0.1 only");
    CHECK(http_get(port, "/", body, sizeof body) == 200 && strstr(body, "<title>sdstream"), "GET / serves the page");
    CHECK(http_get(port, "/app.js", body, sizeof body) == 200 && strstr(body, "WebSocket"), "GET /app.js");
    CHECK(http_get(port, "/style.css", body, sizeof body) == 200, "GET /style.css");
    CHECK(http_get(port, "/healthz", body, sizeof body) == 200 && strcmp(body, "ok\n") == 0, "GET /healthz");
    CHECK(http_get(port, "/metrics", body, sizeof body) == 200 && strstr(body, "sdstream_sessions{state=\"active\"}"),
          "GET /metrics");
    const char *bad[] = {"/nope", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd",
                         "//etc/passwd", "/index.html/../../../etc/passwd", "/web/index.html"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int st = http_get(port, bad[i], body, sizeof body);
        CHECK(st == 404 || st == 403 || st == 400, "GET %s -> %d (not served)", bad[i], st);
        CHECK(!strstr(body, "root:"), "GET %s leaks no file", bad[i]);
    }
    char err[256];
    int fd = ws_open(port, "/elsewhere", NULL, err, sizeof err);
    CHECK(fd < 0, "a WebSocket on another path is refused (%s)", err);
    fd = ws_open(port, "/ws", "http://evil.example", err, sizeof err);
    CHECK(fd < 0, "a WebSocket from another site's page is refused (%s)", err);
}

/* Two sessions at once, different prompts and frames: each gets exactly its own outputs. */
static void test_isolation(int port, sd_model *model, jpeg_codec *codec, blob ref[2][FRAMES], const char *configs[2]) {
    int fd[2];
    for (int c = 0; c < 2; c++) fd[c] = open_session(port);
    if (fd[0] < 0 || fd[1] < 0) return;
    for (int c = 0; c < 2; c++) apply_config(fd[c], configs[c], c == 0 ? "red apple" : "blue sea");
    /* interleave: both clients have a frame in the server at the same time */
    for (int k = 0; k < FRAMES; k++) {
        blob m[2];
        uint8_t dec[W * H * 3];
        for (int c = 0; c < 2; c++) {
            m[c] = make_message(codec, c, k, (uint32_t)(100 * c + k), dec);
            ws_send(fd[c], WS_BINARY, m[c].data, m[c].len);
        }
        for (int c = 0; c < 2; c++) {
            uint32_t id = 0;
            blob got = {0};
            char e[512] = "";
            int r = recv_frame(fd[c], 20000, &id, &got, e, sizeof e);
            CHECK(r == 0, "client %d frame %d arrives %s", c, k, e);
            CHECK(r != 0 || id == (uint32_t)(100 * c + k), "client %d frame %d: id %u", c, k, id);
            CHECK(r != 0 || (got.len == ref[c][k].len && memcmp(got.data, ref[c][k].data, got.len) == 0),
                  "client %d frame %d: bytes equal the library's own output for its prompt and frame (%zu vs %zu)", c, k,
                  got.len, ref[c][k].len);
            CHECK(r != 0 || got.len != ref[1 - c][k].len || memcmp(got.data, ref[1 - c][k].data, got.len) != 0,
                  "client %d frame %d differs from the other client's", c, k);
            free(got.data);
            free(m[c].data);
        }
    }
    (void)model;
    /* live updates: guidance and seed do not re-encode the prompt; a new prompt does, once */
    long long enc0 = metric(port, "sdstream_prompt_encodes_total");
    apply_config(fd[0], "{\"type\":\"config\",\"guidance\":1.5,\"delta\":0.8,\"seed\":7,\"prompt\":\"a red apple\"}",
                 "\"guidance\":1.5");
    long long enc1 = metric(port, "sdstream_prompt_encodes_total");
    CHECK(enc0 > 0 && enc1 == enc0, "guidance/seed changes did not run the text encoder (%lld -> %lld)", enc0, enc1);
    apply_config(fd[0], "{\"type\":\"config\",\"prompt\":\"a green pear\"}", "green pear");
    long long enc2 = metric(port, "sdstream_prompt_encodes_total");
    CHECK(enc2 == enc1 + 1, "a prompt change ran the text encoder once (%lld -> %lld)", enc1, enc2);
    for (int c = 0; c < 2; c++) close(fd[c]);
}

/* Every bad message gets its own error and the session keeps working. */
static void test_hostile_messages(int port, jpeg_codec *codec) {
    int fd = open_session(port);
    if (fd < 0) return;
    apply_config(fd, "{\"type\":\"config\",\"prompt\":\"hostile\",\"cfg_type\":\"none\"}", "hostile");
    struct {
        const char *text, *expect;
    } texts[] = {
        {"{not json", "not valid JSON"},
        {"[1,2]", "JSON object"},
        {"{\"type\":\"dance\"}", "unknown message type"},
        {"{\"type\":\"config\",\"promt\":\"x\"}", "unknown field \\\"promt\\\""},
        {"{\"type\":\"config\",\"t_index_list\":[45,32]}", "strictly increasing"},
        {"{\"type\":\"config\",\"t_index_list\":[]}", "1..16"},
        {"{\"type\":\"config\",\"width\":100}", "multiple of 8"},
        {"{\"type\":\"config\",\"width\":100000}", "\\\"width\\\""},
        {"{\"type\":\"config\",\"guidance\":\"high\"}", "must be a number"},
        {"{\"type\":\"config\",\"cfg_type\":\"max\"}", "cfg_type"},
        {"{\"type\":\"config\",\"seed\":-1}", "seed"},
        {"{\"type\":\"config\",\"strength\":0.5,\"t_index_list\":[10]}", "not both"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        ws_send(fd, WS_TEXT, texts[i].text, strlen(texts[i].text));
        char *e = recv_error(fd, 5000);
        CHECK(e && strstr(e, texts[i].expect), "%s -> error mentioning %s: %s", texts[i].text, texts[i].expect,
              e ? e : "(none)");
        free(e);
    }
    uint8_t dec[W * H * 3];
    /* frames: too short, flags set, not a JPEG, wrong size, a JPEG bomb */
    uint8_t short_msg[5] = {1, 2, 3, 4, 5};
    ws_send(fd, WS_BINARY, short_msg, sizeof short_msg);
    char *e = recv_error(fd, 5000);
    CHECK(e && strstr(e, "shorter than its 8-byte header"), "short frame: %s", e ? e : "(none)");
    free(e);
    blob good = make_message(codec, 0, 0, 9, dec);
    good.data[4] = 1; /* flags */
    ws_send(fd, WS_BINARY, good.data, good.len);
    e = recv_error(fd, 5000);
    CHECK(e && strstr(e, "flags"), "flags set: %s", e ? e : "(none)");
    free(e);
    good.data[4] = 0;
    uint8_t junk[64] = {0};
    memset(junk + 8, 'x', sizeof junk - 8);
    ws_send(fd, WS_BINARY, junk, sizeof junk);
    e = recv_error(fd, 5000);
    CHECK(e && strstr(e, "not a JPEG"), "non-JPEG bytes: %s", e ? e : "(none)");
    free(e);
    /* a JPEG declaring 65000 x 65000 in its SOF header (a bomb): refused from the header alone */
    uint8_t *bomb = malloc(good.len);
    memcpy(bomb, good.data, good.len);
    for (size_t i = SERVE_FRAME_HEADER; i + 9 < good.len; i++)
        if (bomb[i] == 0xFF && (bomb[i + 1] == 0xC0 || bomb[i + 1] == 0xC2)) {
            bomb[i + 5] = 0xFD, bomb[i + 6] = 0xE8; /* height 65000 */
            bomb[i + 7] = 0xFD, bomb[i + 8] = 0xE8; /* width 65000 */
            break;
        }
    long long rss0 = metric(port, "process_resident_memory_bytes");
    ws_send(fd, WS_BINARY, bomb, good.len);
    e = recv_error(fd, 5000);
    CHECK(e && strstr(e, "65000x65000"), "JPEG bomb refused by its header: %s", e ? e : "(none)");
    free(e);
    long long rss1 = metric(port, "process_resident_memory_bytes");
    CHECK(rss1 - rss0 < 32ll << 20, "JPEG bomb cost no memory (RSS %lld -> %lld)", rss0, rss1);
    free(bomb);
    /* a 32x32 frame to a 64x64 session */
    {
        uint8_t small[32 * 32 * 3] = {0};
        size_t cap = SERVE_FRAME_HEADER + jpeg_max_size(32, 32);
        uint8_t *m = malloc(cap);
        char err[128];
        size_t n = jpeg_encode_rgb(codec, small, 32, 32, 80, m + SERVE_FRAME_HEADER, cap - SERVE_FRAME_HEADER, err, sizeof err);
        serve_put_frame_header(m, 5, 0);
        ws_send(fd, WS_BINARY, m, SERVE_FRAME_HEADER + n);
        e = recv_error(fd, 5000);
        CHECK(e && strstr(e, "32x32") && strstr(e, "64x64"), "wrong size: %s", e ? e : "(none)");
        free(e);
        free(m);
    }
    /* after all that, the session still works */
    ws_send(fd, WS_BINARY, good.data, good.len);
    uint32_t id = 0;
    blob got = {0};
    CHECK(recv_frame(fd, 20000, &id, &got, NULL, 0) == 0 && id == 9, "a good frame after the bad ones still works");
    free(got.data);
    free(good.data);
    close(fd);

    /* oversized: a frame header declaring 1 GiB closes the connection with 1009 at once */
    char err[128];
    fd = open_session(port);
    if (fd < 0) return;
    uint8_t chunk[4096] = {0};
    double t0 = now_ms();
    ws_send_partial(fd, WS_BINARY, 1ull << 30, chunk, sizeof chunk);
    int op = 0;
    uint8_t *p = NULL;
    size_t n = 0;
    int code = -1;
    while (ws_recv(fd, 5000, &op, &p, &n) == 1) {
        if (op == WS_CLOSE) code = ws_close_code(p, n);
        free(p);
        if (op == WS_CLOSE) break;
    }
    CHECK(code == 1009 && now_ms() - t0 < 3000, "1 GiB declared frame: close %d after %.0f ms", code, now_ms() - t0);
    close(fd);
    /* a text message over 16 KiB, sent in fragments-sized pieces, also closes with 1009 */
    fd = open_session(port);
    if (fd < 0) return;
    char *big = malloc(40000);
    memset(big, ' ', 40000);
    ws_send(fd, WS_TEXT, big, 40000);
    free(big);
    code = -1;
    while (ws_recv(fd, 5000, &op, &p, &n) == 1) {
        if (op == WS_CLOSE) code = ws_close_code(p, n);
        free(p);
        if (op == WS_CLOSE) break;
    }
    CHECK(code == 1009, "40 kB text message: close %d", code);
    close(fd);
    (void)err;
    CHECK(http_get(port, "/healthz", NULL, 0) == 200, "server up after hostile messages");
}

static void test_queue(sd_model *model) {
    running r;
    if (start_server(&r, model, 1, 1) != 0) return;
    int a = open_session(r.port);
    char err[256];
    int b = ws_open(r.port, "/ws", NULL, err, sizeof err);
    char *st = b >= 0 ? ws_wait_text(b, "status", 5000) : NULL;
    CHECK(st && strstr(st, "\"queued\"") && strstr(st, "\"position\":1"), "second client queued: %s", st ? st : "(none)");
    free(st);
    /* a third finds the queue full: refused with a reason */
    int c = ws_open(r.port, "/ws", NULL, err, sizeof err);
    int op = 0, code = -1;
    uint8_t *p = NULL;
    size_t n = 0;
    while (c >= 0 && ws_recv(c, 5000, &op, &p, &n) == 1) {
        if (op == WS_CLOSE) code = ws_close_code(p, n);
        bool full = op == WS_CLOSE && strstr((char *)p + 2, "server full");
        free(p);
        if (op == WS_CLOSE) {
            CHECK(full, "third client told the server is full");
            break;
        }
    }
    CHECK(code == 1008, "third client refused with close 1008 (%d)", code);
    if (c >= 0) close(c);
    CHECK(metric(r.port, "sdstream_sessions{state=\"queued\"}") == 1, "metrics show one queued");
    close(a);
    st = b >= 0 ? ws_wait_text(b, "status", 5000) : NULL;
    CHECK(st && strstr(st, "\"ready\""), "queued client promoted when the first leaves: %s", st ? st : "(none)");
    free(st);
    if (b >= 0) close(b);
    stop_server(&r);
}

/* Connect storms, slowloris, a client that never reads, and N clients for M seconds. */
static void test_load(int port, jpeg_codec *codec) {
    long long rss0 = metric(port, "process_resident_memory_bytes");
    /* 300 connects: plain TCP closes, half-sent handshakes, full sessions closed at once */
    for (int i = 0; i < 300; i++) {
        if (i % 3 == 0) {
            int fd = tcp_connect(port);
            if (fd >= 0) close(fd);
        } else if (i % 3 == 1) {
            int fd = tcp_connect(port);
            const char *half = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n";
            if (fd >= 0) {
                (void)!write(fd, half, strlen(half));
                close(fd);
            }
        } else {
            char err[128];
            int fd = ws_open(port, "/ws", NULL, err, sizeof err);
            if (fd >= 0) close(fd);
        }
    }
    CHECK(http_get(port, "/healthz", NULL, 0) == 200, "server up after 300 connects/disconnects");
    double settle = now_ms() + 5000;
    long long active = -1;
    while (now_ms() < settle && (active = metric(port, "sdstream_sessions{state=\"active\"}")) != 0) usleep(50000);
    CHECK(active == 0, "every storm session closed (%lld active)", active);

    /* slowloris: headers one byte at a time; others are served meanwhile, it is cut off in time */
    int slow = tcp_connect(port);
    const char *req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    (void)!write(slow, req, strlen(req));
    double t0 = now_ms();
    CHECK(http_get(port, "/healthz", NULL, 0) == 200 && now_ms() - t0 < 1000, "served beside a slowloris (%.0f ms)",
          now_ms() - t0);
    /* a client that sends frames and never reads a byte of the replies */
    int deaf = open_session(port);
    uint8_t dec[W * H * 3];
    blob m = make_message(codec, 1, 0, 1, dec);
    if (deaf >= 0) {
        apply_config(deaf, "{\"type\":\"config\",\"prompt\":\"deaf\",\"cfg_type\":\"none\"}", "deaf");
        for (int i = 0; i < 200; i++) ws_send(deaf, WS_BINARY, m.data, m.len);
    }
    /* N clients for M seconds, each with one frame in flight, beside the deaf one */
    enum { N = 3 };
    const double seconds = 3.0;
    int fds[N];
    long frames[N] = {0};
    for (int c = 0; c < N; c++) {
        fds[c] = open_session(port);
        if (fds[c] >= 0) apply_config(fds[c], "{\"type\":\"config\",\"prompt\":\"load\",\"cfg_type\":\"none\"}", "load");
    }
    double start = now_ms();
    for (int c = 0; c < N; c++)
        if (fds[c] >= 0) ws_send(fds[c], WS_BINARY, m.data, m.len);
    while (now_ms() - start < seconds * 1000) {
        for (int c = 0; c < N; c++) {
            int op;
            uint8_t *p;
            size_t n;
            if (fds[c] < 0 || ws_recv(fds[c], 10, &op, &p, &n) != 1) continue;
            if (op == WS_BINARY) {
                frames[c]++;
                ws_send(fds[c], WS_BINARY, m.data, m.len);
            }
            free(p);
        }
        if (slow >= 0) (void)!write(slow, "a", 1);
    }
    double took = (now_ms() - start) * 1e-3;
    long total = 0;
    for (int c = 0; c < N; c++) {
        CHECK(frames[c] > 0, "load client %d got %ld frames beside a deaf client and a slowloris", c, frames[c]);
        total += frames[c];
        if (fds[c] >= 0) close(fds[c]);
    }
    long long rss1 = metric(port, "process_resident_memory_bytes");
    printf("load: %d clients for %.1f s beside a deaf client and a slowloris: %ld frames, %.1f frames/s served; "
           "RSS %.1f -> %.1f MB\n",
           N, took, total, total / took, rss0 / 1048576.0, rss1 / 1048576.0);
    CHECK(rss1 > 0 && rss1 - rss0 < 64ll << 20, "RSS bounded through storms and load (%lld -> %lld bytes)", rss0, rss1);
    CHECK(metric(port, "sdstream_frames_dropped_total{direction=\"out\"}") > 0 ||
              metric(port, "sdstream_frames_dropped_total{direction=\"in\"}") > 0,
          "the deaf client's flood was dropped (latest frame wins), not queued");
    if (deaf >= 0) close(deaf);
    if (slow >= 0) close(slow);
    free(m.data);
}

/* The real command: SIGTERM closes the sessions with "going away" and exits 0. */
static void test_signal(void) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(SD_BIN_DEFAULT, "sdstream", "serve", "--model", check_ref("models/tiny-sd15"), "--taesd",
              check_ref("models/taesd"), "--port", "0", "--width", "64", "--height", "64", "--quiet", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[256] = "";
    FILE *f = fdopen(out[0], "r");
    int port = 0;
    if (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "127.0.0.1:");
        if (p) port = atoi(p + 10);
    }
    CHECK(port > 0, "serve printed its address: %s", line);
    int fd = port > 0 ? open_session(port) : -1;
    kill(pid, SIGTERM);
    int code = -1, op;
    uint8_t *p;
    size_t n;
    while (fd >= 0 && ws_recv(fd, 5000, &op, &p, &n) == 1) {
        if (op == WS_CLOSE) code = ws_close_code(p, n);
        free(p);
        if (op == WS_CLOSE) break;
    }
    CHECK(code == 1001, "SIGTERM: the session got close 1001 going away (%d)", code);
    int status = 0;
    double t0 = now_ms();
    while (waitpid(pid, &status, WNOHANG) == 0 && now_ms() - t0 < 5000) usleep(20000);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "serve exited 0 after SIGTERM (status %d)", status);
    if (fd >= 0) close(fd);
    if (f) fclose(f);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    sd_model_params mp = sd_model_params_default();
    mp.path = check_ref("models/tiny-sd15");
    mp.taesd_path = check_ref("models/taesd");
    mp.components = SD_COMPONENT_ALL & ~(unsigned)SD_COMPONENT_VAE;
    sd_model *model = NULL;
    CHECK_OK(sd_model_load(&model, &mp));
    jpeg_codec *codec = jpeg_codec_create();
    if (!model || !codec) return check_finish();

    /* references first: the library must not run beside the server's engine on the same model */
    const char *configs[2] = {
        "{\"type\":\"config\",\"prompt\":\"a red apple\",\"t_index_list\":[30],\"cfg_type\":\"self\",\"seed\":3}",
        "{\"type\":\"config\",\"prompt\":\"a blue sea\",\"t_index_list\":[20],\"cfg_type\":\"none\",\"jpeg_quality\":70}",
    };
    blob ref[2][FRAMES];
    for (int c = 0; c < 2; c++) {
        serve_message m;
        char err[256];
        serve_config base = serve_config_default(W, H);
        CHECK(serve_parse_message(configs[c], strlen(configs[c]), &base, 1024, &m, err, sizeof err) == 0, "%s", err);
        reference_outputs(model, codec, &m.config, c, ref[c]);
    }

    running r;
    if (start_server(&r, model, 4, 4) == 0) {
        test_http(r.port);
        test_isolation(r.port, model, codec, ref, configs);
        test_hostile_messages(r.port, codec);
        test_load(r.port, codec);
        stop_server(&r);
    }
    test_queue(model);
    test_signal();
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < FRAMES; k++) free(ref[c][k].data);
    jpeg_codec_free(codec);
    sd_model_free(model);
    return check_finish();
}
