/* arena.h — per-forward activation memory, reserved once and reset every frame.
 *
 * The first forward pass (warm-up) grows the arena in chunks as needed and records the peak; the
 * next reset replaces the chunks with one block of the peak size. From then on the same sequence
 * of allocations returns the same addresses every frame and nothing is allocated (DESIGN.md:
 * "Memory is reserved once ... the frame loop allocates nothing"; on CUDA this is what lets a frame
 * be captured as a graph). A failed allocation returns NULL and makes the arena's status sticky.
 */
#ifndef SD_BASE_ARENA_H
#define SD_BASE_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "base/tensor.h"

enum { SD_ARENA_ALIGN = 256, SD_ARENA_MAX_CHUNKS = 64 };

/* Where the arena's memory comes from: host memory by default; a device backend passes its own
 * (sd_backend_arena_allocator) so activations live in device memory. alloc returns NULL on failure. */
typedef struct sd_allocator {
    void *(*alloc)(void *ctx, size_t bytes);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} sd_allocator;

typedef struct sd_arena {
    sd_allocator allocator; /* alloc NULL: aligned host memory */
    /* set once a frame's addresses must not change (a captured CUDA graph replays them): an
     * allocation past the reserved block then fails instead of growing */
    bool frozen;
    uint8_t *chunks[SD_ARENA_MAX_CHUNKS];
    size_t chunk_size[SD_ARENA_MAX_CHUNKS];
    int n_chunks;
    int current;     /* chunk being carved */
    size_t offset;   /* within the current chunk */
    size_t used;     /* bytes handed out since reset (incl. alignment) */
    size_t peak;     /* max of used over all passes */
    size_t n_system_allocs; /* malloc calls made by the arena: constant after warm-up */
    sd_status status;
} sd_arena;

void sd_arena_init(sd_arena *arena);
/* The same with memory from `allocator` (copied). */
void sd_arena_init_with(sd_arena *arena, const sd_allocator *allocator);
void sd_arena_free(sd_arena *arena);
/* Starts a new pass. Consolidates chunks into one block of the peak size if needed. */
sd_status sd_arena_reset(sd_arena *arena);
void *sd_arena_alloc(sd_arena *arena, size_t bytes);

/* Stack discipline inside a pass: a component's forward takes a mark, allocates its
 * intermediates, and rewinds to the mark when done, keeping the caller's tensors below it. */
typedef struct sd_arena_mark {
    int current;
    size_t offset, used;
} sd_arena_mark;
sd_arena_mark sd_arena_get_mark(const sd_arena *arena);
void sd_arena_rewind(sd_arena *arena, sd_arena_mark mark);

/* Allocates a tensor of the given dtype and shape (data NULL on failure; see status). */
sd_tensor sd_arena_tensor(sd_arena *arena, sd_dtype dtype, int ndim, const int64_t *shape);

#endif
