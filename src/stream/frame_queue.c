/* frame_queue.c — see frame_queue.h. One mutex and one condition variable: the queues carry a
 * frame every tens of milliseconds, so contention is nil and simplicity wins. */
#include "stream/frame_queue.h"

#include <string.h>

void sd_frame_queue_init(sd_frame_queue *q, int n_slots, bool drop_oldest) {
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->changed, NULL);
    q->n_slots = n_slots < 1 ? 1 : (n_slots > SD_QUEUE_MAX_SLOTS ? SD_QUEUE_MAX_SLOTS : n_slots);
    q->drop_oldest = drop_oldest;
}

void sd_frame_queue_destroy(sd_frame_queue *q) {
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->changed);
}

static int find_free(const sd_frame_queue *q) {
    for (int i = 0; i < q->n_slots; i++) {
        if (q->busy[i]) continue;
        bool queued = false;
        for (int j = 0; j < q->n_ready; j++) queued |= q->ready[j] == i;
        if (!queued) return i;
    }
    return -1;
}

int sd_frame_queue_acquire(sd_frame_queue *q) {
    pthread_mutex_lock(&q->lock);
    int slot = -1;
    while (!q->closed) {
        slot = find_free(q);
        if (slot >= 0) break;
        if (q->drop_oldest && q->n_ready > 0) { /* stale: reuse the oldest waiting slot */
            slot = q->ready[0];
            memmove(q->ready, q->ready + 1, (size_t)(--q->n_ready) * sizeof q->ready[0]);
            q->drops++;
            break;
        }
        pthread_cond_wait(&q->changed, &q->lock);
    }
    if (slot >= 0) q->busy[slot] = true;
    pthread_mutex_unlock(&q->lock);
    return slot;
}

void sd_frame_queue_publish(sd_frame_queue *q, int slot) {
    pthread_mutex_lock(&q->lock);
    q->busy[slot] = false;
    q->ready[q->n_ready++] = slot;
    if (q->n_ready > q->max_ready) q->max_ready = q->n_ready;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

int sd_frame_queue_take(sd_frame_queue *q) {
    pthread_mutex_lock(&q->lock);
    while (q->n_ready == 0 && !q->closed) pthread_cond_wait(&q->changed, &q->lock);
    int slot = -1;
    if (q->n_ready > 0) {
        slot = q->ready[0];
        memmove(q->ready, q->ready + 1, (size_t)(--q->n_ready) * sizeof q->ready[0]);
        q->busy[slot] = true;
    }
    pthread_mutex_unlock(&q->lock);
    return slot;
}

void sd_frame_queue_release(sd_frame_queue *q, int slot) {
    pthread_mutex_lock(&q->lock);
    q->busy[slot] = false;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

void sd_frame_queue_close(sd_frame_queue *q) {
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}
