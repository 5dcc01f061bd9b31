/* ws_client.c — see ws_client.h. Test-only: the server itself uses libwebsockets. */
#include "ws_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int tcp_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int send_all(int fd, const void *data, size_t len) {
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly len bytes before the deadline. 1 ok, 0 timeout, -1 closed. */
static int recv_all(int fd, void *data, size_t len, double deadline) {
    uint8_t *p = data;
    while (len > 0) {
        int wait = (int)(deadline - now_ms());
        if (wait <= 0) return 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, wait);
        if (r == 0) return 0;
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

int ws_open(int port, const char *path, const char *origin, char *err, size_t err_len) {
    int fd = tcp_connect(port);
    if (fd < 0) {
        snprintf(err, err_len, "connect failed");
        return -1;
    }
    char req[512], origin_line[200] = "";
    if (origin) snprintf(origin_line, sizeof origin_line, "Origin: %s\r\n", origin);
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
             path, port, origin_line);
    if (send_all(fd, req, strlen(req)) != 0) {
        snprintf(err, err_len, "send failed");
        close(fd);
        return -1;
    }
    /* read the response headers byte by byte: frames may follow at once */
    char resp[2048];
    size_t n = 0;
    double deadline = now_ms() + 5000;
    while (n + 1 < sizeof resp) {
        if (recv_all(fd, resp + n, 1, deadline) != 1) break;
        n++;
        if (n >= 4 && memcmp(resp + n - 4, "\r\n\r\n", 4) == 0) break;
    }
    resp[n] = '\0';
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0) {
        char *eol = strchr(resp, '\r');
        if (eol) *eol = '\0';
        snprintf(err, err_len, "%s", n ? resp : "no response");
        close(fd);
        return -1;
    }
    return fd;
}

int ws_send_partial(int fd, int opcode, uint64_t declared, const void *data, size_t len) {
    uint8_t h[14];
    size_t hl = 0;
    h[hl++] = (uint8_t)(0x80 | opcode);
    if (declared < 126) {
        h[hl++] = (uint8_t)(0x80 | declared);
    } else if (declared < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (uint8_t)(declared >> 8);
        h[hl++] = (uint8_t)declared;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) h[hl++] = (uint8_t)(declared >> (8 * i));
    }
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(h + hl, mask, 4);
    hl += 4;
    if (send_all(fd, h, hl) != 0) return -1;
    uint8_t buf[4096];
    const uint8_t *p = data;
    for (size_t off = 0; off < len;) {
        size_t k = len - off < sizeof buf ? len - off : sizeof buf;
        for (size_t i = 0; i < k; i++) buf[i] = p[off + i] ^ mask[(off + i) & 3];
        if (send_all(fd, buf, k) != 0) return -1;
        off += k;
    }
    return 0;
}

int ws_send(int fd, int opcode, const void *data, size_t len) {
    return ws_send_partial(fd, opcode, len, data, len);
}

int ws_recv(int fd, int timeout_ms, int *opcode, uint8_t **data, size_t *len) {
    double deadline = now_ms() + timeout_ms;
    for (;;) {
        uint8_t h[2];
        int r = recv_all(fd, h, 2, deadline);
        if (r != 1) return r;
        uint64_t n = h[1] & 127;
        if (n == 126 || n == 127) {
            uint8_t ext[8];
            int k = n == 126 ? 2 : 8;
            if (recv_all(fd, ext, (size_t)k, deadline + 5000) != 1) return -1;
            n = 0;
            for (int i = 0; i < k; i++) n = n << 8 | ext[i];
        }
        if (n > (64u << 20)) return -1;
        uint8_t *p = malloc((size_t)n + 1);
        if (!p || (n && recv_all(fd, p, (size_t)n, deadline + 5000) != 1)) {
            free(p);
            return -1;
        }
        p[n] = 0;
        int op = h[0] & 15;
        if (op == WS_PING) { /* answer and keep waiting */
            ws_send(fd, WS_PONG, p, (size_t)n);
            free(p);
            continue;
        }
        *opcode = op;
        *data = p;
        *len = (size_t)n;
        return 1;
    }
}

char *ws_wait_text(int fd, const char *type, int timeout_ms) {
    double deadline = now_ms() + timeout_ms;
    char want[64];
    snprintf(want, sizeof want, "\"type\":\"%s\"", type);
    for (;;) {
        int left = (int)(deadline - now_ms());
        if (left <= 0) return NULL;
        int op;
        uint8_t *p;
        size_t n;
        if (ws_recv(fd, left, &op, &p, &n) != 1) return NULL;
        if (op == WS_CLOSE) {
            free(p);
            return NULL;
        }
        if (op == WS_TEXT && strstr((char *)p, want)) return (char *)p;
        free(p);
    }
}

int http_get(int port, const char *target, char *body, size_t cap) {
    int fd = tcp_connect(port);
    if (fd < 0) return -1;
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target);
    if (send_all(fd, req, strlen(req)) != 0) {
        close(fd);
        return -1;
    }
    size_t total = 0;
    char *all = malloc(1 << 20);
    double deadline = now_ms() + 5000;
    while (all && total + 1 < (1 << 20)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int wait = (int)(deadline - now_ms());
        if (wait <= 0 || poll(&pfd, 1, wait) <= 0) break;
        ssize_t n = recv(fd, all + total, (1 << 20) - 1 - total, 0);
        if (n <= 0) break;
        total += (size_t)n;
    }
    close(fd);
    if (!all) return -1;
    all[total] = '\0';
    int status = -1;
    if (sscanf(all, "HTTP/1.1 %d", &status) != 1) status = -1;
    const char *b = strstr(all, "\r\n\r\n");
    if (body && cap) snprintf(body, cap, "%s", b ? b + 4 : "");
    free(all);
    return status;
}

int ws_close_code(const uint8_t *payload, size_t len) {
    return len >= 2 ? payload[0] << 8 | payload[1] : -1;
}
