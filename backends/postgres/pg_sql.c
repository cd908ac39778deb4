/* The PostgreSQL backend's SQL pieces: statements built from filters, with
 * their values owned by the operation.  Loop thread only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pg_internal.h"

void tc__pg_sql_add(tc__pg_sql_t *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(s->text + s->len, sizeof s->text - s->len, fmt, ap);
  va_end(ap);
  if (n > 0) s->len += (size_t)n;
  if (s->len >= sizeof s->text) s->oom = 1; /* never with our fixed fragments */
}

/* Adds a parameter; returns its number. */
int tc__pg_sql_param(tc__pg_sql_t *s, const char *value) {
  if (!value) s->oom = 1;
  s->v[s->n++] = value;
  return s->n;
}

/* " AND col = $n" when value is set. */
static void sql_eq(tc__pg_op_t *op, tc__pg_sql_t *s, const char *col, const char *value,
                   unsigned bit) {
  if (!value || !*value) return;
  s->mask |= bit;
  tc__pg_sql_add(s, " AND %s = $%d", col, tc__pg_sql_param(s, tc_arena_strdup(&op->mem, value)));
}

/* " AND col = ANY($n::text[])" when there are ids. */
static void sql_any(tc__pg_op_t *op, tc__pg_sql_t *s, const char *col, const char *const *v,
                    size_t n, unsigned bit) {
  if (!n) return;
  s->mask |= bit;
  tc__pg_sql_add(s, " AND %s = ANY($%d::text[])", col,
                 tc__pg_sql_param(s, tc__pg_op_adopt(op, tc__pg_text_array(v, n))));
}

void tc__pg_sql_tuple_filter(tc__pg_op_t *op, tc__pg_sql_t *s, const tc_tuple_filter_t *f) {
  sql_eq(op, s, "entity_type", f->entity_type, 1);
  sql_any(op, s, "entity_id", f->entity_ids, f->n_entity_ids, 2);
  sql_eq(op, s, "relation", f->relation, 4);
  sql_eq(op, s, "subject_type", f->subject_type, 8);
  sql_any(op, s, "subject_id", f->subject_ids, f->n_subject_ids, 16);
  sql_eq(op, s, "subject_relation", f->subject_relation, 32);
}

void tc__pg_sql_attr_filter(tc__pg_op_t *op, tc__pg_sql_t *s, const tc_attr_filter_t *f) {
  sql_eq(op, s, "entity_type", f->entity_type, 1);
  sql_any(op, s, "entity_id", f->entity_ids, f->n_entity_ids, 2);
  sql_any(op, s, "attribute", f->attributes, f->n_attributes, 4);
}

/* Moves a built statement into op: its text, name and values, op-owned. */
int tc__pg_sql_finish(tc__pg_op_t *op, tc__pg_sql_t *s, const char *name_prefix) {
  char name[48];
  snprintf(name, sizeof name, "%s_%u", name_prefix, s->mask);
  const char *text = tc_arena_strdup(&op->mem, s->text), *nm = tc_arena_strdup(&op->mem, name);
  const char **values = tc_arena_alloc(&op->mem, sizeof *values * (size_t)(s->n ? s->n : 1));
  if (s->oom || !text || !nm || !values) return TC_ENOMEM;
  memcpy(values, s->v, sizeof *values * (size_t)s->n);
  tc__pg_unit_stmt(op, nm, text, s->n, values);
  return 0;
}

char *tc__pg_limit_text(tc__pg_op_t *op, uint32_t limit) {
  if (!limit) return NULL; /* LIMIT NULL: no limit */
  char buf[16];
  snprintf(buf, sizeof buf, "%lu", (unsigned long)limit + 1);
  return tc_arena_strdup(&op->mem, buf);
}
