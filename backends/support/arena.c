/* The arena of tuplecast/support.h: chunks that start small and double. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "tuplecast/support.h"

struct tc_arena_chunk_s {
  tc_arena_chunk_t *next;
  alignas(max_align_t) unsigned char data[];
};

/* Chunks start small and double, so arenas that stay alive (the server's
 * Watch feed keeps one per transaction in its ring) cost little, and big ones
 * few mallocs.  The SQLite backend's own arena started at 4 KiB: a request
 * whose inputs and results fit in 4 KiB now takes 256 + 512 + 1024 + 2048. */
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

void *tc_arena_memdup(tc_arena_t *a, const void *p, size_t n) {
  void *d = tc_arena_alloc(a, n);
  if (d && n) memcpy(d, p, n);
  return d;
}

char *tc_arena_strdup(tc_arena_t *a, const char *s) {
  if (!s) s = "";
  return tc_arena_memdup(a, s, strlen(s) + 1);
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
