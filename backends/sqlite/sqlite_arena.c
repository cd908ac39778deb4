/* Request-lifetime memory: inputs copied at submission, results filled in by
 * the worker, all freed at once after the callback. */
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

#define CHUNK_MIN 4096
#define ALIGN 16

struct tc__sq_chunk_s {
  tc__sq_chunk_t *next;
  size_t used, cap;
  _Alignas(ALIGN) unsigned char data[];
};

void *tc__sq_arena_alloc(tc__sq_arena_t *a, size_t n) {
  n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  tc__sq_chunk_t *c = a->chunks;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
    c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->used = 0;
    c->cap = cap;
    c->next = a->chunks;
    a->chunks = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

void *tc__sq_arena_memdup(tc__sq_arena_t *a, const void *p, size_t n) {
  void *d = tc__sq_arena_alloc(a, n ? n : 1);
  if (d && n) memcpy(d, p, n);
  return d;
}

char *tc__sq_arena_strdup(tc__sq_arena_t *a, const char *s) {
  if (!s) s = "";
  return tc__sq_arena_memdup(a, s, strlen(s) + 1);
}

void tc__sq_arena_free(tc__sq_arena_t *a) {
  while (a->chunks) {
    tc__sq_chunk_t *next = a->chunks->next;
    free(a->chunks);
    a->chunks = next;
  }
}

static const char *const *copy_strv(tc__sq_arena_t *a, const char *const *v,
                                    size_t n, int *failed) {
  if (n == 0) return NULL;
  const char **d = tc__sq_arena_alloc(a, n * sizeof *d);
  if (!d) {
    *failed = 1;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (!(d[i] = tc__sq_arena_strdup(a, v[i]))) *failed = 1;
  return d;
}

static const char *dup(tc__sq_arena_t *a, const char *s, int *failed) {
  char *d = tc__sq_arena_strdup(a, s);
  if (!d) *failed = 1;
  return d;
}

int tc__sq_copy_tuple_filter(tc__sq_arena_t *a, tc_tuple_filter_t *dst,
                             const tc_tuple_filter_t *src) {
  int failed = 0;
  dst->entity_type = dup(a, src->entity_type, &failed);
  dst->n_entity_ids = src->n_entity_ids;
  dst->entity_ids = copy_strv(a, src->entity_ids, src->n_entity_ids, &failed);
  dst->relation = dup(a, src->relation, &failed);
  dst->subject_type = dup(a, src->subject_type, &failed);
  dst->n_subject_ids = src->n_subject_ids;
  dst->subject_ids = copy_strv(a, src->subject_ids, src->n_subject_ids, &failed);
  dst->subject_relation = dup(a, src->subject_relation, &failed);
  return failed ? TC_ENOMEM : 0;
}

int tc__sq_copy_attr_filter(tc__sq_arena_t *a, tc_attr_filter_t *dst,
                            const tc_attr_filter_t *src) {
  int failed = 0;
  dst->entity_type = dup(a, src->entity_type, &failed);
  dst->n_entity_ids = src->n_entity_ids;
  dst->entity_ids = copy_strv(a, src->entity_ids, src->n_entity_ids, &failed);
  dst->n_attributes = src->n_attributes;
  dst->attributes = copy_strv(a, src->attributes, src->n_attributes, &failed);
  return failed ? TC_ENOMEM : 0;
}

int tc__sq_copy_batch(tc__sq_arena_t *a, tc_write_batch_t *dst,
                      const tc_write_batch_t *src) {
  int failed = 0;
  *dst = (tc_write_batch_t){.tenant_id = dup(a, src->tenant_id, &failed)};
  if (src->tuple_delete) {
    tc_tuple_filter_t *f = tc__sq_arena_alloc(a, sizeof *f);
    if (!f || tc__sq_copy_tuple_filter(a, f, src->tuple_delete) != 0) return TC_ENOMEM;
    dst->tuple_delete = f;
  }
  if (src->attr_delete) {
    tc_attr_filter_t *f = tc__sq_arena_alloc(a, sizeof *f);
    if (!f || tc__sq_copy_attr_filter(a, f, src->attr_delete) != 0) return TC_ENOMEM;
    dst->attr_delete = f;
  }
  if (src->n_tuples) {
    tc_tuple_t *t = tc__sq_arena_alloc(a, src->n_tuples * sizeof *t);
    if (!t) return TC_ENOMEM;
    for (size_t i = 0; i < src->n_tuples; i++) {
      const tc_tuple_t *s = &src->tuples[i];
      t[i] = (tc_tuple_t){dup(a, s->entity_type, &failed), dup(a, s->entity_id, &failed),
                          dup(a, s->relation, &failed),    dup(a, s->subject_type, &failed),
                          dup(a, s->subject_id, &failed),  dup(a, s->subject_relation, &failed)};
    }
    dst->tuples = t;
    dst->n_tuples = src->n_tuples;
  }
  if (src->n_attrs) {
    tc_attr_t *t = tc__sq_arena_alloc(a, src->n_attrs * sizeof *t);
    if (!t) return TC_ENOMEM;
    for (size_t i = 0; i < src->n_attrs; i++) {
      const tc_attr_t *s = &src->attrs[i];
      t[i] = (tc_attr_t){dup(a, s->entity_type, &failed), dup(a, s->entity_id, &failed),
                         dup(a, s->attribute, &failed),
                         tc__sq_arena_memdup(a, s->value, s->value_len), s->value_len};
      if (!t[i].value) failed = 1;
    }
    dst->attrs = t;
    dst->n_attrs = src->n_attrs;
  }
  return failed ? TC_ENOMEM : 0;
}
