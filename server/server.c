/* server.c — the network side of `sdstream serve` on libwebsockets: the page and /healthz,
 * /metrics over HTTP, the sessions over WebSocket at /ws, the queue when all slots are taken, and
 * a clean shutdown. The engine thread (engine.c) runs the model; this thread never waits for it.
 *
 * Bounds, so no client can make the server grow or stall: a message is refused (close 1009) once
 * it passes max_message_bytes, counted as it arrives (libwebsockets hands frames over in chunks,
 * never allocating a declared length); frames are JPEG-header-checked here before any pixel memory
 * is used; each session holds one frame each way (session.h); writes happen only when the socket
 * can take them, so a client that never reads holds one frame in libwebsockets' buffer and nothing
 * else; headers must arrive within timeout_secs; idle WebSockets are pinged and hung up. */
#include <arpa/inet.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jpeg_codec.h"
#include "server_internal.h"
#include "web_assets.h"

_Static_assert(LWS_PRE <= SERVE_TX_HEADROOM, "SERVE_TX_HEADROOM must cover libwebsockets' LWS_PRE");

enum {
    TEXT_MESSAGE_MAX = 16384, /* bytes of a client text message (two 1000-byte prompts, escaped) */
    HTTP_CHUNK = 16384,
};

/* Per-connection state (libwebsockets allocates and zeroes it for HTTP and WebSocket alike). */
typedef struct conn {
    session *s;
    /* HTTP response body */
    const uint8_t *body;
    char *owned_body;
    size_t body_len, body_sent;
    /* WebSocket message being received */
    uint8_t *rx;
    size_t rx_len, rx_cap;
    bool rx_binary, rx_discard;
    /* WebSocket message being sent (headroom for libwebsockets in front) */
    byte_buf tx;
} conn;

server_params server_params_default(void) {
    server_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 7860;
    p.max_sessions = 4;
    p.max_queue = 16;
    p.max_size = 1024;
    p.max_message_bytes = 4u << 20;
    p.defaults = serve_config_default(512, 512);
    p.access_log = 1;
    return p;
}

void server_wake_network(server *srv) {
    if (srv->lws) lws_cancel_service(srv->lws);
}


/* ---- HTTP --------------------------------------------------------------------------------- */

static void access_log(server *srv, struct lws *wsi, const char *method, const char *uri, int status, size_t bytes) {
    if (!srv->p.access_log) return;
    char peer[64] = "?";
    lws_get_peer_simple(wsi, peer, sizeof peer);
    fprintf(stderr, "serve: %s \"%s %.200s\" %d %zu\n", peer, method, uri, status, bytes);
}

static int http_done(struct lws *wsi) {
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_status(server *srv, struct lws *wsi, int code, const char *method, const char *uri) {
    pthread_mutex_lock(&srv->lock);
    srv->counters.http_requests++;
    if (code == 404) srv->counters.http_not_found++;
    pthread_mutex_unlock(&srv->lock);
    access_log(srv, wsi, method, uri, code, 0);
    lws_return_http_status(wsi, (unsigned)code, NULL);
    return http_done(wsi);
}

static const web_asset *find_asset(const char *path) {
    if (strcmp(path, "/") == 0) path = "/index.html";
    for (size_t i = 0; i < web_assets_count; i++)
        if (strcmp(web_assets[i].path, path) == 0) return &web_assets[i];
    return NULL;
}

static int on_http(server *srv, struct lws *wsi, conn *c, const char *uri) {
    const char *method = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0 ? "GET" : "other";
    if (strcmp(method, "GET") != 0) return http_status(srv, wsi, 405, method, uri);
    const char *type = "text/plain; charset=utf-8";
    if (strcmp(uri, "/healthz") == 0) {
        c->body = (const uint8_t *)"ok\n";
        c->body_len = 3;
    } else if (strcmp(uri, "/metrics") == 0) {
        c->owned_body = server_metrics_text(srv, &c->body_len);
        if (!c->owned_body) return http_status(srv, wsi, 500, method, uri);
        c->body = (const uint8_t *)c->owned_body;
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else {
        /* exact names only: no file system behind it, so "/../x" and friends are simply not found */
        const web_asset *a = find_asset(uri);
        if (!a) return http_status(srv, wsi, 404, method, uri);
        c->body = a->data;
        c->body_len = a->size;
        type = a->content_type;
    }
    pthread_mutex_lock(&srv->lock);
    srv->counters.http_requests++;
    pthread_mutex_unlock(&srv->lock);
    access_log(srv, wsi, method, uri, 200, c->body_len);
    uint8_t buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, type, c->body_len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const uint8_t *)"cache-control:", (const uint8_t *)"no-cache", 8, &p, end) ||
        lws_add_http_header_by_name(wsi, (const uint8_t *)"x-content-type-options:", (const uint8_t *)"nosniff", 7, &p,
                                    end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    c->body_sent = 0;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_http_writeable(struct lws *wsi, conn *c) {
    if (!c->body) return 0;
    uint8_t buf[LWS_PRE + HTTP_CHUNK];
    size_t n = c->body_len - c->body_sent;
    if (n > HTTP_CHUNK) n = HTTP_CHUNK;
    bool last = c->body_sent + n == c->body_len;
    memcpy(buf + LWS_PRE, c->body + c->body_sent, n);
    if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n) return -1;
    c->body_sent += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    free(c->owned_body);
    c->owned_body = NULL;
    c->body = NULL;
    return http_done(wsi);
}

/* ---- Sessions ----------------------------------------------------------------------------- */

session_counts server_count_sessions(const server *srv, uint64_t serial) {
    session_counts n = {0, 0, 0};
    for (int i = 0; i < srv->n_slots; i++) {
        const session *o = srv->sessions[i];
        if (!o || o->closed) continue;
        if (o->state == SESSION_ACTIVE) {
            n.active++;
        } else {
            n.queued++;
            n.queued_before += o->serial < serial;
        }
    }
    return n;
}

static void push_status(server *srv, session *s) {
    char text[256];
    if (s->state == SESSION_ACTIVE) {
        snprintf(text, sizeof text, "{\"type\":\"status\",\"state\":\"ready\"}");
    } else {
        session_counts n = server_count_sessions(srv, s->serial);
        snprintf(text, sizeof text,
                 "{\"type\":\"status\",\"state\":\"queued\",\"position\":%d,\"queue_length\":%d,\"active\":%d,"
                 "\"max_sessions\":%d}",
                 n.queued_before + 1, n.queued, n.active, srv->p.max_sessions);
    }
    session_push_text(s, text);
    if (s->wsi) lws_callback_on_writable(s->wsi);
}

static void push_error(server *srv, session *s, const char *code, const char *message) {
    char text[SESSION_TEXT_MAX];
    serve_format_error(text, sizeof text, code, message);
    session_push_text(s, text);
    srv->counters.messages_rejected++;
    if (s->wsi) lws_callback_on_writable(s->wsi);
}

/* Checks that the upgrade asks for /ws from this server's own page (an Origin from another site
 * would let any web page drive the model). Returns 0 to accept. */
static int filter_connection(server *srv, struct lws *wsi) {
    char uri[64] = "", origin[256] = "", host[256] = "";
    lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    if (strcmp(uri, "/ws") != 0) {
        access_log(srv, wsi, "GET(upgrade)", uri, 404, 0);
        return 1;
    }
    if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) > 0) {
        lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST);
        const char *o = strstr(origin, "://");
        o = o ? o + 3 : origin;
        if (strcmp(o, host) != 0) {
            access_log(srv, wsi, "GET(upgrade) origin", origin, 403, 0);
            return 1;
        }
    }
    return 0;
}

static int on_open(server *srv, struct lws *wsi, conn *c) {
    pthread_mutex_lock(&srv->lock);
    int slot = -1;
    for (int i = 0; i < srv->n_slots && slot < 0; i++)
        if (!srv->sessions[i]) slot = i;
    session_counts n = server_count_sessions(srv, 0);
    int active = n.active, queued = n.queued;
    if (slot < 0 || srv->stopping || (active >= srv->p.max_sessions && queued >= srv->p.max_queue)) {
        srv->counters.sessions_rejected++;
        pthread_mutex_unlock(&srv->lock);
        char reason[100];
        snprintf(reason, sizeof reason, "server full: %d sessions streaming and %d waiting", active, queued);
        access_log(srv, wsi, "WS open refused", reason, 503, 0);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)reason, strlen(reason));
        return -1;
    }
    session *s = calloc(1, sizeof *s);
    if (!s) {
        pthread_mutex_unlock(&srv->lock);
        return -1;
    }
    s->serial = ++srv->next_serial;
    lws_get_peer_simple(wsi, s->peer, sizeof s->peer);
    s->wsi = wsi;
    s->state = active < srv->p.max_sessions ? SESSION_ACTIVE : SESSION_QUEUED;
    s->config = srv->p.defaults;
    /* no engine work yet: the stream is built with the first config, frame or txt2img request, so
     * connections that open and go (storms, port scans) cost the model nothing */
    s->config_dirty = false;
    s->created_ms = serve_now_ms();
    srv->sessions[slot] = s;
    srv->counters.sessions_total++;
    c->s = s;

    char desc[300], text[SESSION_TEXT_MAX];
    serve_json_escape(desc, sizeof desc, srv->model_desc);
    snprintf(text, sizeof text,
             "{\"type\":\"hello\",\"version\":\"%s\",\"model\":\"%s\",\"backends\":\"%s\",\"session\":%llu,"
             "\"max_size\":%d,\"max_message_bytes\":%zu,\"frame_header_bytes\":%d}",
             sd_version(), desc, sd_backends(), (unsigned long long)s->serial, srv->p.max_size,
             srv->p.max_message_bytes, SERVE_FRAME_HEADER);
    session_push_text(s, text);
    if (serve_format_config(&s->config, text, sizeof text) > 0) session_push_text(s, text);
    push_status(srv, s);
    pthread_mutex_unlock(&srv->lock);
    if (srv->p.access_log)
        fprintf(stderr, "serve: %s session %llu opened (%s)\n", s->peer, (unsigned long long)s->serial,
                s->state == SESSION_ACTIVE ? "streaming" : "queued");
    pthread_cond_signal(&srv->wake);
    return 0;
}

static void on_close(server *srv, conn *c) {
    session *s = c->s;
    free(c->rx);
    byte_buf_free(&c->tx);
    c->rx = NULL;
    c->s = NULL;
    if (!s) return;
    pthread_mutex_lock(&srv->lock);
    bool was_active = s->state == SESSION_ACTIVE;
    s->wsi = NULL;
    s->closed = true;
    if (srv->p.access_log)
        fprintf(stderr, "serve: %s session %llu closed after %.1f s: %lld frames in, %lld out, %lld dropped\n", s->peer,
                (unsigned long long)s->serial, (serve_now_ms() - s->created_ms) * 1e-3, (long long)s->frames_in,
                (long long)s->frames_out, (long long)(s->dropped_in + s->dropped_out));
    if (was_active && !srv->stopping) {
        session *next = NULL;
        for (int i = 0; i < srv->n_slots; i++) {
            session *o = srv->sessions[i];
            if (o && !o->closed && o->state == SESSION_QUEUED && (!next || o->serial < next->serial)) next = o;
        }
        if (next) {
            next->state = SESSION_ACTIVE;
            next->config_dirty = true;
        }
        for (int i = 0; i < srv->n_slots; i++) {
            session *o = srv->sessions[i];
            if (o && !o->closed && (o == next || o->state == SESSION_QUEUED)) push_status(srv, o);
        }
    }
    pthread_mutex_unlock(&srv->lock);
    pthread_cond_signal(&srv->wake); /* the engine frees the session once it is not using it */
}

static void on_text(server *srv, session *s, const char *text, size_t len) {
    pthread_mutex_lock(&srv->lock);
    serve_config current = s->config;
    pthread_mutex_unlock(&srv->lock);
    serve_message msg;
    char err[512];
    int rc = serve_parse_message(text, len, &current, srv->p.max_size, &msg, err, sizeof err);
    pthread_mutex_lock(&srv->lock);
    if (rc != 0) {
        push_error(srv, s, "bad_message", err);
    } else if (msg.kind == SERVE_MSG_CONFIG) {
        s->config = msg.config;
        s->config_dirty = true;
    } else {
        s->txt2img_requested = true;
        s->txt2img_id = msg.id;
    }
    pthread_mutex_unlock(&srv->lock);
    if (rc == 0) pthread_cond_signal(&srv->wake);
}

static void on_frame(server *srv, jpeg_codec *codec, session *s, const uint8_t *data, size_t len) {
    char err[256];
    uint32_t id = 0, flags = 0;
    int w = 0, h = 0;
    const char *code = NULL;
    if (len < SERVE_FRAME_HEADER) {
        snprintf(err, sizeof err, "a frame message is %zu bytes, shorter than its %d-byte header", len, SERVE_FRAME_HEADER);
        code = "bad_frame";
    } else {
        serve_get_frame_header(data, &id, &flags);
        if (flags != 0) {
            snprintf(err, sizeof err, "frame %u: flags are %u; clients must send 0", id, flags);
            code = "bad_frame";
        } else if (jpeg_peek_size(codec, data + SERVE_FRAME_HEADER, len - SERVE_FRAME_HEADER, &w, &h, err, sizeof err) != 0) {
            code = "bad_frame";
        }
    }
    pthread_mutex_lock(&srv->lock);
    if (!code && (w != s->config.width || h != s->config.height)) {
        snprintf(err, sizeof err, "frame %u is %dx%d, the session expects %dx%d (send a config to change the size)", id, w,
                 h, s->config.width, s->config.height);
        code = "frame_size";
    }
    if (code) {
        s->errors++;
        push_error(srv, s, code, err);
        pthread_mutex_unlock(&srv->lock);
        return;
    }
    size_t n = len - SERVE_FRAME_HEADER;
    if (byte_buf_reserve(&s->in_jpeg, n) != 0) {
        push_error(srv, s, "bad_frame", "out of memory for the frame");
        pthread_mutex_unlock(&srv->lock);
        return;
    }
    memcpy(s->in_jpeg.data, data + SERVE_FRAME_HEADER, n);
    s->in_jpeg.len = n;
    s->in_id = id;
    if (s->in_full) { /* the engine had not taken the previous one: latest frame wins */
        s->dropped_in++;
        srv->counters.dropped_in++;
    }
    s->in_full = true;
    s->frames_in++;
    srv->counters.frames_in++;
    pthread_mutex_unlock(&srv->lock);
    pthread_cond_signal(&srv->wake);
}

static jpeg_codec *network_codec(server *srv);

static int on_receive(server *srv, struct lws *wsi, conn *c, const uint8_t *in, size_t len) {
    session *s = c->s;
    if (!s) return -1;
    if (lws_is_first_fragment(wsi)) {
        c->rx_len = 0;
        c->rx_binary = lws_frame_is_binary(wsi) != 0;
        /* a waiting session's frames are read and thrown away: they cost no memory */
        pthread_mutex_lock(&srv->lock);
        c->rx_discard = c->rx_binary && s->state != SESSION_ACTIVE;
        pthread_mutex_unlock(&srv->lock);
    }
    size_t limit = c->rx_binary ? srv->p.max_message_bytes : TEXT_MESSAGE_MAX;
    size_t incoming = c->rx_len + len + lws_remaining_packet_payload(wsi);
    if (incoming > limit) {
        char reason[96];
        snprintf(reason, sizeof reason, "message over %zu bytes", limit);
        pthread_mutex_lock(&srv->lock);
        srv->counters.messages_rejected++;
        pthread_mutex_unlock(&srv->lock);
        if (srv->p.access_log)
            fprintf(stderr, "serve: %s session %llu: %s: closing\n", s->peer, (unsigned long long)s->serial, reason);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)reason, strlen(reason));
        return -1;
    }
    if (!c->rx_discard) {
        if (c->rx_len + len > c->rx_cap) {
            size_t cap = c->rx_cap ? c->rx_cap : 65536;
            while (cap < c->rx_len + len) cap *= 2;
            if (cap > limit) cap = limit;
            uint8_t *p = realloc(c->rx, cap);
            if (!p) return -1;
            c->rx = p;
            c->rx_cap = cap;
        }
        memcpy(c->rx + c->rx_len, in, len);
    }
    c->rx_len += len;
    if (!lws_is_final_fragment(wsi) || c->rx_discard) return 0;
    if (c->rx_binary) on_frame(srv, network_codec(srv), s, c->rx, c->rx_len);
    else on_text(srv, s, (const char *)c->rx, c->rx_len);
    return 0;
}

static int on_writeable(server *srv, struct lws *wsi, conn *c) {
    session *s = c->s;
    if (!s) return -1;
    enum lws_write_protocol kind = LWS_WRITE_TEXT;
    bool have = false, more = false;
    pthread_mutex_lock(&srv->lock);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->lock);
        const char *reason = "server shutting down";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)reason, strlen(reason));
        return -1;
    }
    const char *text = NULL;
    size_t text_len = 0;
    if (s->text_count > 0) {
        text = s->text[s->text_head];
        text_len = s->text_len[s->text_head];
    } else if (s->stats_pending) {
        text = s->stats_text;
        text_len = strlen(s->stats_text);
        s->stats_pending = false;
    }
    if (text) {
        if (byte_buf_reserve(&c->tx, SERVE_TX_HEADROOM + text_len + 1) == 0) {
            memcpy(c->tx.data + SERVE_TX_HEADROOM, text, text_len);
            c->tx.len = SERVE_TX_HEADROOM + text_len;
            have = true;
        }
        if (text != s->stats_text) {
            s->text_head = (s->text_head + 1) % SESSION_TEXT_SLOTS;
            s->text_count--;
        }
    } else if (s->out_full) {
        byte_buf t = c->tx; /* take the frame by swapping buffers with the slot */
        c->tx = s->out_msg;
        s->out_msg = t;
        s->out_full = false;
        kind = LWS_WRITE_BINARY;
        have = true;
    }
    more = s->text_count > 0 || s->stats_pending || s->out_full;
    pthread_mutex_unlock(&srv->lock);
    if (have) {
        size_t n = c->tx.len - SERVE_TX_HEADROOM;
        if (lws_write(wsi, c->tx.data + SERVE_TX_HEADROOM, n, kind) < (int)n) return -1;
    }
    if (more) lws_callback_on_writable(wsi);
    return 0;
}

/* The engine produced something: ask for a writable callback on every session that has output. */
static void on_wake(server *srv) {
    pthread_mutex_lock(&srv->lock);
    for (int i = 0; i < srv->n_slots; i++) {
        session *s = srv->sessions[i];
        if (s && s->wsi && (s->text_count || s->stats_pending || s->out_full || srv->stopping))
            lws_callback_on_writable(s->wsi);
    }
    pthread_mutex_unlock(&srv->lock);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    struct lws_context *ctx = lws_get_context(wsi);
    server *srv = ctx ? lws_context_user(ctx) : NULL;
    conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(srv, wsi, c, (const char *)in);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_http_writeable(wsi, c);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (c) {
            free(c->owned_body);
            c->owned_body = NULL;
        }
        break;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return filter_connection(srv, wsi);
    case LWS_CALLBACK_ESTABLISHED:
        return on_open(srv, wsi, c);
    case LWS_CALLBACK_RECEIVE:
        return on_receive(srv, wsi, c, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(srv, wsi, c);
    case LWS_CALLBACK_CLOSED:
        on_close(srv, c);
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (srv) on_wake(srv);
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"sdstream", callback, sizeof(conn), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}, /* terminator */
};

/* Idle WebSockets: a ping after 30 s of silence, hung up after 60 s without an answer. */
static const lws_retry_bo_t idle_policy = {.secs_since_valid_ping = 30, .secs_since_valid_hangup = 60};

/* ---- Lifecycle ---------------------------------------------------------------------------- */

static void lws_log_line(int level, const char *line) {
    (void)level;
    fprintf(stderr, "serve: libwebsockets: %s", line);
}

typedef struct server_ext {
    server srv;
    jpeg_codec *codec; /* the network thread's header checks */
    lws_sorted_usec_list_t tick;
} server_ext;

static jpeg_codec *network_codec(server *srv) {
    return ((server_ext *)srv)->codec;
}

/* Every 100 ms: notice a stop request (set from a signal handler) and start closing. */
static void on_tick(lws_sorted_usec_list_t *sul) {
    server_ext *x = lws_container_of(sul, server_ext, tick);
    server *srv = &x->srv;
    if (srv->stop_requested && !srv->stopping) {
        pthread_mutex_lock(&srv->lock);
        srv->stopping = true;
        pthread_mutex_unlock(&srv->lock);
        on_wake(srv);
    }
    lws_sul_schedule(srv->lws, 0, &x->tick, on_tick, 100 * LWS_US_PER_MS);
}

int server_create(server **out, sd_model *model, const server_params *params, char *err, size_t err_len) {
    if (params->max_sessions < 1 || params->max_queue < 0 || params->max_message_bytes < 1024) {
        snprintf(err, err_len, "server: max_sessions must be >= 1, max_queue >= 0, max_message_bytes >= 1024");
        return -1;
    }
    server_ext *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, err_len, "server: out of memory");
        return -1;
    }
    server *srv = &x->srv;
    srv->model = model;
    srv->p = *params;
    snprintf(srv->model_desc, sizeof srv->model_desc, "%s", sd_model_describe(model));
    /* room beyond the limits for closed sessions the engine has not freed yet (it frees them
     * between frames): a burst of short connections must not fill the table for a live client */
    srv->n_slots = 2 * (params->max_sessions + params->max_queue) + 16;
    srv->sessions = calloc((size_t)srv->n_slots, sizeof *srv->sessions);
    x->codec = jpeg_codec_create();
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->wake, NULL);
    srv->start_ms = serve_now_ms();
    if (!srv->sessions || !x->codec) {
        snprintf(err, err_len, "server: out of memory");
        server_free(srv);
        return -1;
    }
    lws_set_log_level(LLL_ERR, lws_log_line); /* its warnings repeat our own access log */
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = params->port;
    info.iface = params->host;
    info.protocols = protocols;
    info.user = srv;
    info.vhost_name = "sdstream";
    info.server_string = "sdstream";
    info.timeout_secs = 10; /* headers and handshakes must complete within this (slowloris) */
    info.retry_and_idle_policy = &idle_policy;
    info.fd_limit_per_thread = (unsigned)(srv->n_slots * 2 + 64);
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    /* an IPv4 address: an IPv4 socket, or libwebsockets 4.1 listens on every interface's IPv6 */
    struct in_addr v4;
    if (inet_pton(AF_INET, params->host, &v4) == 1) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    srv->lws = lws_create_context(&info);
    struct lws_vhost *vh = srv->lws ? lws_get_vhost_by_name(srv->lws, "sdstream") : NULL;
    srv->port = vh ? lws_get_vhost_listen_port(vh) : -1;
    if (!srv->lws || srv->port <= 0) {
        snprintf(err, err_len, "serve: cannot listen on %s:%d (address in use or not available on this machine)",
                 params->host, params->port);
        server_free(srv);
        return -1;
    }
    if (pthread_create(&srv->engine_thread, NULL, engine_main, srv) != 0) {
        snprintf(err, err_len, "server: cannot start the engine thread");
        server_free(srv);
        return -1;
    }
    srv->engine_started = true;
    lws_sul_schedule(srv->lws, 0, &x->tick, on_tick, 100 * LWS_US_PER_MS);
    *out = srv;
    return 0;
}

int server_port(const server *srv) {
    return srv->port;
}

void server_request_stop(server *srv) {
    srv->stop_requested = 1;
}

static int live_sessions(server *srv) {
    int n = 0;
    pthread_mutex_lock(&srv->lock);
    for (int i = 0; i < srv->n_slots; i++)
        if (srv->sessions[i] && srv->sessions[i]->wsi) n++;
    pthread_mutex_unlock(&srv->lock);
    return n;
}

int server_run(server *srv) {
    double deadline = 0;
    while (lws_service(srv->lws, 0) >= 0) {
        if (!srv->stopping) continue;
        if (deadline == 0) deadline = serve_now_ms() + 2000.0; /* clients get 2 s to take the close */
        if (live_sessions(srv) == 0 || serve_now_ms() > deadline) break;
    }
    return 0;
}

void server_free(server *srv) {
    if (!srv) return;
    server_ext *x = (server_ext *)srv;
    if (srv->engine_started) {
        pthread_mutex_lock(&srv->lock);
        srv->engine_stop = true;
        pthread_mutex_unlock(&srv->lock);
        pthread_cond_signal(&srv->wake);
        pthread_join(srv->engine_thread, NULL);
    }
    if (srv->lws) {
        lws_sul_cancel(&x->tick);
        lws_context_destroy(srv->lws); /* closes the remaining connections (on_close runs) */
        srv->lws = NULL;
    }
    for (int i = 0; srv->sessions && i < srv->n_slots; i++)
        if (srv->sessions[i]) engine_session_free(srv->sessions[i]);
    free(srv->sessions);
    jpeg_codec_free(x->codec);
    pthread_cond_destroy(&srv->wake);
    pthread_mutex_destroy(&srv->lock);
    free(x);
}
