/* metrics.c — /metrics in the Prometheus text format: sessions, frames in/out/dropped, per-stage
 * times (as summaries: _sum and _count), prompt encodes, rejected messages, resident memory. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "server_internal.h"

static long long resident_bytes(void) {
    long long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%lld %lld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return resident * (long long)sysconf(_SC_PAGESIZE);
}

char *server_metrics_text(server *srv, size_t *len) {
    enum { CAP = 8192 };
    char *out = malloc(CAP);
    if (!out) return NULL;
    pthread_mutex_lock(&srv->lock);
    server_counters k = srv->counters;
    session_counts sessions = server_count_sessions(srv, 0);
    pthread_mutex_unlock(&srv->lock);
    const stage_time *stages[3] = {&k.decode_jpeg, &k.denoise, &k.encode_jpeg};
    const char *stage_names[3] = {"decode_jpeg", "denoise", "encode_jpeg"};
    int n = snprintf(out, CAP,
                     "# HELP sdstream_sessions Connections streaming (active) or waiting for a slot (queued).\n"
                     "# TYPE sdstream_sessions gauge\n"
                     "sdstream_sessions{state=\"active\"} %d\n"
                     "sdstream_sessions{state=\"queued\"} %d\n"
                     "# HELP sdstream_max_sessions The --max-sessions limit.\n"
                     "# TYPE sdstream_max_sessions gauge\n"
                     "sdstream_max_sessions %d\n"
                     "# TYPE sdstream_sessions_opened_total counter\n"
                     "sdstream_sessions_opened_total %lld\n"
                     "# TYPE sdstream_sessions_refused_total counter\n"
                     "sdstream_sessions_refused_total %lld\n"
                     "# HELP sdstream_frames_total Frames received (in) and sent (out).\n"
                     "# TYPE sdstream_frames_total counter\n"
                     "sdstream_frames_total{direction=\"in\"} %lld\n"
                     "sdstream_frames_total{direction=\"out\"} %lld\n"
                     "# HELP sdstream_frames_dropped_total Frames replaced by a newer one before use (latest wins).\n"
                     "# TYPE sdstream_frames_dropped_total counter\n"
                     "sdstream_frames_dropped_total{direction=\"in\"} %lld\n"
                     "sdstream_frames_dropped_total{direction=\"out\"} %lld\n"
                     "# TYPE sdstream_frames_skipped_total counter\n"
                     "sdstream_frames_skipped_total %lld\n"
                     "# TYPE sdstream_frame_errors_total counter\n"
                     "sdstream_frame_errors_total %lld\n"
                     "# HELP sdstream_prompt_encodes_total Text encoder runs (only when a prompt changes).\n"
                     "# TYPE sdstream_prompt_encodes_total counter\n"
                     "sdstream_prompt_encodes_total %lld\n"
                     "# TYPE sdstream_stream_creates_total counter\n"
                     "sdstream_stream_creates_total %lld\n"
                     "# TYPE sdstream_messages_rejected_total counter\n"
                     "sdstream_messages_rejected_total %lld\n"
                     "# TYPE sdstream_http_requests_total counter\n"
                     "sdstream_http_requests_total %lld\n"
                     "sdstream_http_not_found_total %lld\n"
                     "# HELP sdstream_stage_seconds Time per frame stage.\n"
                     "# TYPE sdstream_stage_seconds summary\n",
                     sessions.active, sessions.queued, srv->p.max_sessions, (long long)k.sessions_total, (long long)k.sessions_rejected,
                     (long long)k.frames_in, (long long)k.frames_out, (long long)k.dropped_in, (long long)k.dropped_out,
                     (long long)k.skipped, (long long)k.frame_errors, (long long)k.prompt_encodes,
                     (long long)k.stream_creates, (long long)k.messages_rejected, (long long)k.http_requests,
                     (long long)k.http_not_found);
    for (int i = 0; i < 3 && n > 0 && n < CAP; i++)
        n += snprintf(out + n, CAP - (size_t)n,
                      "sdstream_stage_seconds_sum{stage=\"%s\"} %.6f\nsdstream_stage_seconds_count{stage=\"%s\"} %lld\n",
                      stage_names[i], stages[i]->seconds, stage_names[i], (long long)stages[i]->count);
    if (n > 0 && n < CAP)
        n += snprintf(out + n, CAP - (size_t)n,
                      "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %lld\n"
                      "# TYPE sdstream_uptime_seconds gauge\nsdstream_uptime_seconds %.1f\n",
                      resident_bytes(), (serve_now_ms() - srv->start_ms) * 1e-3);
    if (n <= 0 || n >= CAP) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}
