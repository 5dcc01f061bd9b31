/* arena.c — see arena.h. */
#include "base/arena.h"

#include <stdlib.h>
#include <string.h>

void sd_arena_init(sd_arena *arena) { memset(arena, 0, sizeof *arena); }

void sd_arena_init_with(sd_arena *arena, const sd_allocator *allocator) {
    sd_arena_init(arena);
    if (allocator) arena->allocator = *allocator;
}

static void free_chunk(sd_arena *arena, uint8_t *chunk) {
    if (arena->allocator.alloc) arena->allocator.free(arena->allocator.ctx, chunk);
    else free(chunk);
}

void sd_arena_free(sd_arena *arena) {
    for (int i = 0; i < arena->n_chunks; i++) free_chunk(arena, arena->chunks[i]);
    memset(arena, 0, sizeof *arena);
}

static uint8_t *alloc_chunk(sd_arena *arena, size_t size) {
    arena->n_system_allocs++;
    size = (size + SD_ARENA_ALIGN - 1) / SD_ARENA_ALIGN * SD_ARENA_ALIGN;
    if (arena->allocator.alloc) return arena->allocator.alloc(arena->allocator.ctx, size);
    return aligned_alloc(SD_ARENA_ALIGN, size);
}

/* Host memory: out of memory. A backend's allocator has already said why (the CUDA error, say):
 * keep its message and status class, with the size in front. */
static sd_status alloc_failed(const sd_arena *arena, size_t bytes) {
    if (!arena->allocator.alloc) return sd_fail(SD_ERR_NOMEM, "arena: cannot allocate %zu bytes of activations", bytes);
    sd_error_prefix("arena: cannot allocate %zu bytes of activations", bytes);
    return SD_ERR_BACKEND;
}

sd_status sd_arena_reset(sd_arena *arena) {
    if (arena->used > arena->peak) arena->peak = arena->used;
    if (arena->n_chunks > 1) {
        for (int i = 0; i < arena->n_chunks; i++) free_chunk(arena, arena->chunks[i]);
        arena->n_chunks = 0;
        uint8_t *block = alloc_chunk(arena, arena->peak);
        if (!block) {
            arena->status = alloc_failed(arena, arena->peak);
            return arena->status;
        }
        arena->chunks[0] = block;
        arena->chunk_size[0] = arena->peak;
        arena->n_chunks = 1;
    }
    arena->current = 0;
    arena->offset = 0;
    arena->used = 0;
    arena->status = SD_OK;
    return SD_OK;
}

void *sd_arena_alloc(sd_arena *arena, size_t bytes) {
    if (arena->status != SD_OK) return NULL;
    size_t size = (bytes + SD_ARENA_ALIGN - 1) / SD_ARENA_ALIGN * SD_ARENA_ALIGN;
    if (size == 0) size = SD_ARENA_ALIGN;
    while (arena->current < arena->n_chunks && arena->offset + size > arena->chunk_size[arena->current]) {
        arena->current++;
        arena->offset = 0;
    }
    if (arena->current >= arena->n_chunks) {
        if (arena->frozen) {
            arena->status = sd_fail(SD_ERR_STATE, "arena: a frame needs %zu bytes more than the block reserved for "
                                    "it, and its addresses are frozen (captured graph)", size);
            return NULL;
        }
        if (arena->n_chunks == SD_ARENA_MAX_CHUNKS) {
            arena->status = sd_fail(SD_ERR_NOMEM, "arena: too many chunks");
            return NULL;
        }
        /* grow geometrically so warm-up makes few allocations */
        size_t chunk = size;
        if (arena->n_chunks > 0 && chunk < 2 * arena->chunk_size[arena->n_chunks - 1])
            chunk = 2 * arena->chunk_size[arena->n_chunks - 1];
        if (chunk < (size_t)1 << 20) chunk = (size_t)1 << 20;
        uint8_t *p = alloc_chunk(arena, chunk);
        if (!p) {
            arena->status = alloc_failed(arena, chunk);
            return NULL;
        }
        arena->chunks[arena->n_chunks] = p;
        arena->chunk_size[arena->n_chunks] = chunk;
        arena->current = arena->n_chunks++;
        arena->offset = 0;
    }
    void *p = arena->chunks[arena->current] + arena->offset;
    arena->offset += size;
    arena->used += size;
    if (arena->used > arena->peak) arena->peak = arena->used;
    return p;
}

sd_tensor sd_arena_tensor(sd_arena *arena, sd_dtype dtype, int ndim, const int64_t *shape) {
    sd_tensor t = sd_tensor_make(NULL, dtype, ndim, shape);
    size_t bytes = (size_t)sd_tensor_numel(&t) * sd_dtype_size(dtype);
    t.data = sd_arena_alloc(arena, bytes);
    return t;
}

sd_arena_mark sd_arena_get_mark(const sd_arena *arena) {
    return (sd_arena_mark){arena->current, arena->offset, arena->used};
}

void sd_arena_rewind(sd_arena *arena, sd_arena_mark mark) {
    arena->current = mark.current;
    arena->offset = mark.offset;
    arena->used = mark.used;
}
