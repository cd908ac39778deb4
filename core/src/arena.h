/* Per-request arena: many small allocations freed at once.
 *
 * Ownership: the arena owns every block it hands out; tc_arena_free()
 * releases them all.  tc_arena_protobuf_allocator() lets protobuf-c unpack
 * into the arena (its frees are no-ops).
 */
#ifndef TC_ARENA_H
#define TC_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct tc_arena_chunk_s tc_arena_chunk_t;
typedef struct tc_arena_s {
  tc_arena_chunk_t *chunks;
  size_t used, cap; /* within chunks (the newest) */
  ProtobufCAllocator pb;
} tc_arena_t;

void tc_arena_init(tc_arena_t *a);
/* NULL on out-of-memory; memory is zeroed and max-aligned. */
void *tc_arena_alloc(tc_arena_t *a, size_t n);
char *tc_arena_strdup(tc_arena_t *a, const char *s);
void tc_arena_free(tc_arena_t *a);
ProtobufCAllocator *tc_arena_protobuf_allocator(tc_arena_t *a);

#endif
