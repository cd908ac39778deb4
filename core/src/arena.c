#include "arena.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

struct tc_arena_chunk_s {
  tc_arena_chunk_t *next;
  alignas(max_align_t) unsigned char data[];
};

/* Chunks start small and double, so arenas that stay alive (a watch feed
 * keeps one per transaction in its ring) cost little, and big ones few mallocs. */
#define CHUNK_MIN 256u
#define CHUNK_MAX 65536u
#define ALIGN (alignof(max_align_t))

void tc_arena_init(tc_arena_t *a) { memset(a, 0, sizeof *a); }

void *tc_arena_alloc(tc_arena_t *a, size_t n) {
  n = (n + ALIGN - 1) & ~(ALIGN - 1);
  if (!a->chunks || a->used + n > a->cap) {
    size_t step = !a->chunks ? CHUNK_MIN : a->cap * 2 > CHUNK_MAX ? CHUNK_MAX : a->cap * 2;
    size_t cap = n > step ? n : step;
    tc_arena_chunk_t *c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->next = a->chunks;
    a->chunks = c;
    a->used = 0;
    a->cap = cap;
  }
  void *p = a->chunks->data + a->used;
  a->used += n;
  memset(p, 0, n);
  return p;
}

char *tc_arena_strdup(tc_arena_t *a, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = tc_arena_alloc(a, n);
  if (p) memcpy(p, s, n);
  return p;
}

void tc_arena_free(tc_arena_t *a) {
  tc_arena_chunk_t *c = a->chunks;
  while (c) {
    tc_arena_chunk_t *next = c->next;
    free(c);
    c = next;
  }
  tc_arena_init(a);
}

static void *pb_alloc(void *data, size_t n) { return tc_arena_alloc(data, n); }
static void pb_free(void *data, void *p) { (void)data, (void)p; }

ProtobufCAllocator *tc_arena_protobuf_allocator(tc_arena_t *a) {
  a->pb.alloc = pb_alloc;
  a->pb.free = pb_free;
  a->pb.allocator_data = a;
  return &a->pb;
}
