/* server.h — `sdstream serve`: the HTTP + WebSocket demo server (libwebsockets) on one loaded model.
 *
 *   server_params p = server_params_default();
 *   p.port = 7860;
 *   server *srv;
 *   if (server_create(&srv, model, &p, err, sizeof err) != 0) { puts(err); ... }
 *   server_run(srv);            // serves until server_request_stop (e.g. from SIGINT)
 *   server_free(srv);           // closes every session, joins the threads
 *
 * Threads: one network thread (server_run's caller) runs libwebsockets: HTTP, the page, /healthz,
 * /metrics and every WebSocket; one engine thread runs the model for all sessions in turn (streams
 * of one model must not run at the same time), decoding and encoding the JPEG frames. The model is
 * borrowed: free it after server_free. */
#ifndef SD_SERVER_H
#define SD_SERVER_H

#include <stddef.h>

#include "protocol.h"
#include "sdstream.h"

typedef struct server server;

typedef struct server_params {
    const char *host;         /* address to bind. Default "127.0.0.1" (this machine only) */
    int port;                 /* Default 7860; 0 picks a free port (server_port tells which) */
    int max_sessions;         /* connections streaming at once. Default 4 */
    int max_queue;            /* connections waiting for a slot ("busy, N in queue"). Default 16 */
    int max_size;             /* largest width/height a session may ask for. Default 1024 */
    size_t max_message_bytes; /* largest WebSocket message (a JPEG frame + header). Default 4 MiB */
    serve_config defaults;    /* a new session's settings (the page shows them) */
    int access_log;           /* one stderr line per HTTP request and WebSocket open/close. Default 1 */
} server_params;

server_params server_params_default(void);

/* Binds the port and starts the engine thread. Returns 0, or -1 with a message in err. */
int server_create(server **out, sd_model *model, const server_params *params, char *err, size_t err_len);
/* The port actually bound (useful with port 0). */
int server_port(const server *srv);
/* Serves until server_request_stop, then closes the sessions (clients get a "going away" close).
 * Returns 0. */
int server_run(server *srv);
/* Asks server_run to return within about 100 ms. Async-signal-safe; callable from any thread. */
void server_request_stop(server *srv);
void server_free(server *srv);

#endif
