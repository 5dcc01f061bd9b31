/* ws_client.h — a deliberately small WebSocket/HTTP client for the server tests. It speaks raw
 * TCP so tests can also send what no browser would: wrong lengths, huge declared frames, partial
 * headers, nothing at all. Blocking sockets with receive timeouts; every call is bounded in time. */
#ifndef SD_TESTS_WS_CLIENT_H
#define SD_TESTS_WS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

enum { WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

/* TCP connection to 127.0.0.1:port; -1 on failure. */
int tcp_connect(int port);
/* Opens a WebSocket on path (Origin header when origin != NULL). Returns the fd, or -1 and the
 * HTTP status line (or the reason) in err. */
int ws_open(int port, const char *path, const char *origin, char *err, size_t err_len);
/* Sends one masked frame (FIN set). Returns 0 or -1. */
int ws_send(int fd, int opcode, const void *data, size_t len);
/* Sends a frame header declaring `declared` payload bytes, then only `len` of them. */
int ws_send_partial(int fd, int opcode, uint64_t declared, const void *data, size_t len);
/* Receives one whole message. Returns 1 and a malloc'd payload (caller frees; NUL-terminated),
 * 0 on timeout, -1 when the connection closed or broke. A close frame returns 1 with opcode
 * WS_CLOSE (payload: 2-byte code + reason). Pings are answered and skipped. */
int ws_recv(int fd, int timeout_ms, int *opcode, uint8_t **data, size_t *len);
/* Waits for a text message whose "type" is `type` (others are skipped; errors are kept in
 * last_error when given). Returns the malloc'd text or NULL on timeout/close. */
char *ws_wait_text(int fd, const char *type, int timeout_ms);
/* Plain HTTP GET of a raw request target; returns the status code and fills body (NUL-terminated,
 * truncated to cap - 1) or -1. */
int http_get(int port, const char *target, char *body, size_t cap);
/* Close code of a close frame payload. */
int ws_close_code(const uint8_t *payload, size_t len);

#endif
