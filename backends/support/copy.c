/* Deep copies of the ABI's input shapes into an arena (tuplecast/support.h):
 * what a backend does with a call's borrowed inputs before it returns. */
#include <string.h>

#include "tuplecast/support.h"

static const char *const *copy_strv(tc_arena_t *a, const char *const *v, size_t n, int *failed) {
  if (n == 0) return NULL;
  const char **d = tc_arena_alloc(a, n * sizeof *d);
  if (!d) {
    *failed = 1;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (!(d[i] = tc_arena_strdup(a, v[i]))) *failed = 1;
  return d;
}

static const char *dup(tc_arena_t *a, const char *s, int *failed) {
  char *d = tc_arena_strdup(a, s);
  if (!d) *failed = 1;
  return d;
}

/* A NULL filter is copied as the empty one, which matches everything. */
static const tc_tuple_filter_t no_tuple_filter;
static const tc_attr_filter_t no_attr_filter;

int tc_copy_tuple_filter(tc_arena_t *a, tc_tuple_filter_t *dst, const tc_tuple_filter_t *src) {
  int failed = 0;
  if (!src) src = &no_tuple_filter;
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

int tc_copy_attr_filter(tc_arena_t *a, tc_attr_filter_t *dst, const tc_attr_filter_t *src) {
  int failed = 0;
  if (!src) src = &no_attr_filter;
  dst->entity_type = dup(a, src->entity_type, &failed);
  dst->n_entity_ids = src->n_entity_ids;
  dst->entity_ids = copy_strv(a, src->entity_ids, src->n_entity_ids, &failed);
  dst->n_attributes = src->n_attributes;
  dst->attributes = copy_strv(a, src->attributes, src->n_attributes, &failed);
  return failed ? TC_ENOMEM : 0;
}

static const tc_tuple_t *copy_tuples(tc_arena_t *a, const tc_tuple_t *src, size_t n, int *failed) {
  tc_tuple_t *t = n ? tc_arena_alloc(a, n * sizeof *t) : NULL;
  if (n && !t) *failed = 1;
  for (size_t i = 0; t && i < n; i++) {
    const tc_tuple_t *s = &src[i];
    t[i] = (tc_tuple_t){dup(a, s->entity_type, failed), dup(a, s->entity_id, failed),
                        dup(a, s->relation, failed),    dup(a, s->subject_type, failed),
                        dup(a, s->subject_id, failed),  dup(a, s->subject_relation, failed)};
  }
  return t;
}

static const tc_attr_t *copy_attrs(tc_arena_t *a, const tc_attr_t *src, size_t n, int *failed) {
  tc_attr_t *t = n ? tc_arena_alloc(a, n * sizeof *t) : NULL;
  if (n && !t) *failed = 1;
  for (size_t i = 0; t && i < n; i++) {
    const tc_attr_t *s = &src[i];
    t[i] = (tc_attr_t){dup(a, s->entity_type, failed), dup(a, s->entity_id, failed),
                       dup(a, s->attribute, failed), tc_arena_memdup(a, s->value, s->value_len),
                       s->value_len};
    if (!t[i].value) *failed = 1;
  }
  return t;
}

int tc_copy_write_batch(tc_arena_t *a, tc_write_batch_t *dst, const tc_write_batch_t *src) {
  int failed = 0;
  *dst = (tc_write_batch_t){.tenant_id = dup(a, src->tenant_id, &failed)};
  if (src->tuple_delete) {
    tc_tuple_filter_t *f = tc_arena_alloc(a, sizeof *f);
    if (!f || tc_copy_tuple_filter(a, f, src->tuple_delete) != 0) return TC_ENOMEM;
    dst->tuple_delete = f;
  }
  if (src->attr_delete) {
    tc_attr_filter_t *f = tc_arena_alloc(a, sizeof *f);
    if (!f || tc_copy_attr_filter(a, f, src->attr_delete) != 0) return TC_ENOMEM;
    dst->attr_delete = f;
  }
  dst->tuples = copy_tuples(a, src->tuples, src->n_tuples, &failed);
  dst->n_tuples = src->n_tuples;
  dst->attrs = copy_attrs(a, src->attrs, src->n_attrs, &failed);
  dst->n_attrs = src->n_attrs;
  dst->tuple_deletes = copy_tuples(a, src->tuple_deletes, src->n_tuple_deletes, &failed);
  dst->n_tuple_deletes = src->n_tuple_deletes;
  dst->attr_deletes = copy_attrs(a, src->attr_deletes, src->n_attr_deletes, &failed);
  dst->n_attr_deletes = src->n_attr_deletes;
  return failed ? TC_ENOMEM : 0;
}
