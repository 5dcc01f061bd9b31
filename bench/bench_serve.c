/* bench_serve.c — load generator for `sdstream serve` (a program, not a test): N clients on
 * 127.0.0.1, each keeping `inflight` frames in flight for S seconds, report frames per second served
 * and end-to-end latency percentiles (send of the input to arrival of its output).
 *
 *   ./build/sdstream serve --model M --taesd T --width 256 --height 256 &
 *   ./build/bench_serve --port 7860 --clients 2 --seconds 20 --size 256 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jpeg_codec.h"
#include "protocol.h"
#include "ws_client.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int port = 7860, clients = 1, size = 256, inflight = 2;
    double seconds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clients")) clients = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--inflight")) inflight = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_serve [--port 7860] [--clients 1] [--seconds 10] [--size 256] [--inflight 2]\n");
            return 2;
        }
    }
    if (clients < 1 || clients > 64 || size < 64 || size > 2048 || size % 8 || inflight < 1 || inflight > 16) {
        fprintf(stderr, "bench_serve: clients 1..64, size 64..2048 (multiple of 8), inflight 1..16\n");
        return 2;
    }
    jpeg_codec *codec = jpeg_codec_create();
    uint8_t *rgb = malloc((size_t)size * size * 3);
    size_t cap = SERVE_FRAME_HEADER + jpeg_max_size(size, size);
    uint8_t *msg = malloc(cap);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            uint8_t *p = rgb + ((size_t)y * size + x) * 3;
            p[0] = (uint8_t)x, p[1] = (uint8_t)y, p[2] = (uint8_t)(x ^ y);
        }
    char err[256];
    size_t jlen = jpeg_encode_rgb(codec, rgb, size, size, 85, msg + SERVE_FRAME_HEADER, cap - SERVE_FRAME_HEADER, err, sizeof err);
    int *fd = calloc((size_t)clients, sizeof *fd);
    uint32_t *next = calloc((size_t)clients, sizeof *next);
    int *pending = calloc((size_t)clients, sizeof *pending);
    double *sent = calloc((size_t)clients * 4096, sizeof *sent);
    size_t max_lat = 1 << 20, n_lat = 0;
    double *lat = malloc(max_lat * sizeof *lat);
    char config[256];
    snprintf(config, sizeof config, "{\"type\":\"config\",\"width\":%d,\"height\":%d}", size, size);
    for (int c = 0; c < clients; c++) {
        fd[c] = ws_open(port, "/ws", NULL, err, sizeof err);
        if (fd[c] < 0) {
            fprintf(stderr, "bench_serve: client %d: %s\n", c, err);
            return 1;
        }
        ws_send(fd[c], WS_TEXT, config, strlen(config));
        free(ws_wait_text(fd[c], "status", 10000));
    }
    double start = now_ms(), end = start + seconds * 1000;
    long frames = 0;
    while (now_ms() < end) {
        for (int c = 0; c < clients; c++) {
            while (pending[c] < inflight) {
                uint32_t id = ++next[c];
                serve_put_frame_header(msg, id, 0);
                sent[(size_t)c * 4096 + id % 4096] = now_ms();
                ws_send(fd[c], WS_BINARY, msg, SERVE_FRAME_HEADER + jlen);
                pending[c]++;
            }
            int op;
            uint8_t *p;
            size_t n;
            if (ws_recv(fd[c], 5, &op, &p, &n) != 1) continue;
            if (op == WS_BINARY && n >= SERVE_FRAME_HEADER) {
                uint32_t id, flags;
                serve_get_frame_header(p, &id, &flags);
                if (n_lat < max_lat) lat[n_lat++] = now_ms() - sent[(size_t)c * 4096 + id % 4096];
                frames++;
                /* every frame sent up to this id either came back or was dropped (latest wins) */
                pending[c] = (int)(next[c] - id);
            } else if (op == WS_TEXT && strstr((char *)p, "\"error\"")) {
                fprintf(stderr, "bench_serve: %s\n", (char *)p);
            }
            free(p);
        }
    }
    double took = (now_ms() - start) * 1e-3;
    qsort(lat, n_lat, sizeof *lat, cmp_double);
    printf("bench_serve: %d clients, %dx%d, %d in flight each, %.1f s: %ld frames, %.2f frames/s served; latency "
           "p50 %.0f ms, p90 %.0f ms, max %.0f ms\n",
           clients, size, size, inflight, took, frames, frames / took, n_lat ? lat[n_lat / 2] : 0.0,
           n_lat ? lat[n_lat * 9 / 10] : 0.0, n_lat ? lat[n_lat - 1] : 0.0);
    for (int c = 0; c < clients; c++) close(fd[c]);
    return 0;
}
