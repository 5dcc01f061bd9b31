/* frame_queue.h — a bounded queue of preallocated slots between two pipeline threads.
 *
 * A producer acquires a free slot, fills it, and publishes it; a consumer takes the oldest
 * published slot and releases it when done. When no slot is free the producer either waits
 * (files: back-pressure, nothing lost) or, in drop mode (live sources and sinks), takes back the
 * oldest published slot, counting a drop, so a slow consumer never makes a backlog and memory is
 * bounded by the slot count. Closing wakes everyone; a consumer sees "no slot" once the queue is
 * closed and empty. */
#ifndef SD_STREAM_FRAME_QUEUE_H
#define SD_STREAM_FRAME_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum { SD_QUEUE_MAX_SLOTS = 16 };

typedef struct sd_frame_queue {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int n_slots;
    int ready[SD_QUEUE_MAX_SLOTS]; /* published slot ids, oldest first */
    int n_ready;
    bool busy[SD_QUEUE_MAX_SLOTS]; /* held by the producer or the consumer */
    bool drop_oldest;
    bool closed;
    int64_t drops;
    int max_ready;
} sd_frame_queue;

void sd_frame_queue_init(sd_frame_queue *q, int n_slots, bool drop_oldest);
void sd_frame_queue_destroy(sd_frame_queue *q);
/* A free slot id for the producer; -1 if the queue was closed. */
int sd_frame_queue_acquire(sd_frame_queue *q);
void sd_frame_queue_publish(sd_frame_queue *q, int slot);
/* The oldest published slot for the consumer; -1 once closed and empty. */
int sd_frame_queue_take(sd_frame_queue *q);
void sd_frame_queue_release(sd_frame_queue *q, int slot);
void sd_frame_queue_close(sd_frame_queue *q);

#endif
