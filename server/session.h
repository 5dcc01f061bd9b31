/* session.h — one WebSocket connection's state, shared by the network thread (server.c) and the
 * engine thread (engine.c) under the server's mutex.
 *
 * Every buffer is a single slot: a newer input frame replaces one the engine has not taken yet
 * (counted as dropped_in), a newer output replaces one the client has not been sent yet
 * (dropped_out), a newer stats message replaces an unsent one. So a slow or stalled client holds at
 * most one frame each way and never slows anyone else: latest frame wins, nothing queues without
 * bound. The engine owns `stream` and the session's pixel buffers; the network thread owns `wsi`.
 * A closed session is freed by the engine once it is not working on it. */
#ifndef SD_SERVER_SESSION_H
#define SD_SERVER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

struct lws;

enum {
    SESSION_TEXT_SLOTS = 8,  /* text messages waiting to be sent (errors, status, config) */
    SESSION_TEXT_MAX = 4096, /* bytes of one text message */
};

typedef enum session_state { SESSION_QUEUED = 0, SESSION_ACTIVE = 1 } session_state;

typedef struct byte_buf {
    uint8_t *data;
    size_t len, cap;
} byte_buf;

typedef struct session {
    uint64_t serial;    /* connection number, for logs */
    char peer[64];      /* remote address */
    struct lws *wsi;    /* NULL once the connection closed */
    session_state state;
    bool closed;        /* the connection is gone: the engine frees the session */
    bool engine_busy;   /* the engine is running this session's frame (outside the lock) */
    bool close_requested; /* the engine asks the network thread to close (fatal error) */
    char close_reason[128];

    /* network -> engine */
    serve_config config;        /* latest requested config */
    bool config_dirty;          /* config changed since the engine last applied it */
    byte_buf in_jpeg;           /* latest input frame (JPEG, header stripped) */
    uint32_t in_id;
    bool in_full;
    uint32_t txt2img_id;
    bool txt2img_requested;

    /* engine -> network */
    byte_buf out_msg;           /* latest output: frame header + JPEG, ready to send */
    bool out_full;
    char text[SESSION_TEXT_SLOTS][SESSION_TEXT_MAX];
    size_t text_len[SESSION_TEXT_SLOTS];
    int text_head, text_count;
    char stats_text[SESSION_TEXT_MAX]; /* the newest stats message, sent after the queued texts */
    bool stats_pending;

    /* counters (under the mutex) */
    int64_t frames_in, frames_out, dropped_in, dropped_out, skipped, errors;
    double last_stats_ms, created_ms;

    /* engine-only state, touched outside the lock while engine_busy */
    struct engine_session *eng;
} session;

/* Queues a text message (copied); the oldest is dropped when all slots are full. Under the mutex. */
void session_push_text(session *s, const char *text);
/* Replaces the session's pending stats message. Under the mutex. */
void session_set_stats(session *s, const char *text);
/* Grows b to hold at least cap bytes (never shrinks). Returns 0 or -1. */
int byte_buf_reserve(byte_buf *b, size_t cap);
void byte_buf_free(byte_buf *b);

#endif
