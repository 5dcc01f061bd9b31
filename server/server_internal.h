/* server_internal.h — the server's shared state: the session table, the counters /metrics shows,
 * and the engine thread's entry points. Private to server/. */
#ifndef SD_SERVER_INTERNAL_H
#define SD_SERVER_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server.h"
#include "session.h"

struct lws_context;

/* Bytes reserved in front of every outgoing message for libwebsockets' frame header (LWS_PRE). */
enum { SERVE_TX_HEADROOM = 16 };

/* Stage times for /metrics: sum of seconds and count, as a Prometheus summary without quantiles. */
typedef struct stage_time {
    double seconds;
    int64_t count;
} stage_time;

typedef struct server_counters {
    int64_t sessions_total, sessions_rejected;
    int64_t frames_in, frames_out, dropped_in, dropped_out, skipped, frame_errors;
    int64_t prompt_encodes, stream_creates;
    int64_t messages_rejected; /* malformed, oversized or out-of-place client messages */
    int64_t http_requests, http_not_found;
    stage_time decode_jpeg, denoise, encode_jpeg;
} server_counters;

struct server {
    sd_model *model;
    server_params p;
    char model_desc[256];
    struct lws_context *lws;
    int port;

    pthread_mutex_t lock;
    pthread_cond_t wake;     /* the engine waits on it for work */
    session **sessions;      /* n_slots: twice the limits + 16, room for closed ones not yet freed */
    int n_slots;
    int rr_next;             /* round-robin start for the engine's next pick */
    uint64_t next_serial;
    server_counters counters;
    bool engine_stop;
    pthread_t engine_thread;
    bool engine_started;

    volatile sig_atomic_t stop_requested;
    bool stopping;           /* the network thread is closing sessions */
    double start_ms;
};

/* Live (not closed) sessions: streaming, waiting, and of those waiting the ones that connected
 * before the session numbered `serial` (its queue position - 1; pass 0 when not needed). Under the
 * lock. */
typedef struct session_counts {
    int active, queued, queued_before;
} session_counts;
session_counts server_count_sessions(const server *srv, uint64_t serial);

/* Engine thread body (engine.c). */
void *engine_main(void *srv);
/* Frees a session's engine state (stream, buffers). Called by the engine, or at shutdown. */
void engine_session_free(session *s);
/* Wakes the network thread so it sends what the engine produced (lws_cancel_service). */
void server_wake_network(server *srv);
/* Writes the Prometheus text for /metrics into a malloc'd buffer; returns it (caller frees) and its
 * length in *len, or NULL. Takes the lock. */
char *server_metrics_text(server *srv, size_t *len);
double serve_now_ms(void);

#endif
