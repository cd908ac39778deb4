/* protobuf-c's allocator over an arena of the support library. */
#include "arena.h"

static void *pb_alloc(void *data, size_t n) { return tc_arena_alloc(data, n); }
static void *pb_no_alloc(void *data, size_t n) { return (void)data, (void)n, NULL; }
static void pb_free(void *data, void *p) { (void)data, (void)p; }

static ProtobufCAllocator out_of_memory = {pb_no_alloc, pb_free, NULL};

ProtobufCAllocator *tc_arena_protobuf_allocator(tc_arena_t *a) {
  ProtobufCAllocator *pb = tc_arena_alloc(a, sizeof *pb);
  if (!pb) return &out_of_memory;
  *pb = (ProtobufCAllocator){pb_alloc, pb_free, a};
  return pb;
}
