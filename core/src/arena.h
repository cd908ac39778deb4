/* Core's view of the arena: the one in the support library
 * (tuplecast/support.h: tc_arena_t, tc_arena_init/alloc/strdup/memdup/free),
 * plus the adapter that lets protobuf-c unpack into an arena.
 *
 * Loop thread, like the arenas core keeps (requests, Watch transactions).
 *
 * Ownership: the arena owns every block it hands out, the adapter included;
 * tc_arena_free() releases them all.
 */
#ifndef TC_ARENA_H
#define TC_ARENA_H

#include <protobuf-c/protobuf-c.h>

#include "tuplecast/support.h"

/* An allocator for protobuf-c that allocates in a (its frees are no-ops).
 * When even the adapter cannot be allocated, one whose every allocation
 * fails, so the unpack fails as out of memory. */
ProtobufCAllocator *tc_arena_protobuf_allocator(tc_arena_t *a);

#endif
