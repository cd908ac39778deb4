/* Tuple and attribute filters as SQL conditions: each set member is an
 * equality or an IN-list; unset members ("" or no ids) do not constrain. */
#include "sqlite_internal.h"

static int set(const char *s) { return s && *s; }

static void eq_sql(sqlite3_str *s, const char *col, const char *v) {
  if (set(v)) sqlite3_str_appendf(s, " AND %s = ?", col);
}

static void in_sql(sqlite3_str *s, const char *col, size_t n) {
  if (n == 0) return;
  sqlite3_str_appendf(s, " AND %s IN (?", col);
  for (size_t i = 1; i < n; i++) sqlite3_str_appendall(s, ", ?");
  sqlite3_str_appendall(s, ")");
}

static int eq_bind(sqlite3_stmt *st, int *i, const char *v) {
  if (!set(v)) return SQLITE_OK;
  return sqlite3_bind_text(st, (*i)++, v, -1, SQLITE_STATIC);
}

static int in_bind(sqlite3_stmt *st, int *i, const char *const *v, size_t n) {
  int rc = SQLITE_OK;
  for (size_t k = 0; k < n && rc == SQLITE_OK; k++)
    rc = sqlite3_bind_text(st, (*i)++, v[k], -1, SQLITE_STATIC);
  return rc;
}

static void tuple_sql(sqlite3_str *s, const tc_tuple_filter_t *f) {
  eq_sql(s, "entity_type", f->entity_type);
  in_sql(s, "entity_id", f->n_entity_ids);
  eq_sql(s, "relation", f->relation);
  eq_sql(s, "subject_type", f->subject_type);
  in_sql(s, "subject_id", f->n_subject_ids);
  eq_sql(s, "subject_relation", f->subject_relation);
}

int tc__sq_tuple_filter_bind(sqlite3_stmt *st, int *i, const tc_tuple_filter_t *f) {
  int rc = eq_bind(st, i, f->entity_type);
  if (rc == SQLITE_OK) rc = in_bind(st, i, f->entity_ids, f->n_entity_ids);
  if (rc == SQLITE_OK) rc = eq_bind(st, i, f->relation);
  if (rc == SQLITE_OK) rc = eq_bind(st, i, f->subject_type);
  if (rc == SQLITE_OK) rc = in_bind(st, i, f->subject_ids, f->n_subject_ids);
  if (rc == SQLITE_OK) rc = eq_bind(st, i, f->subject_relation);
  return rc;
}

static void attr_sql(sqlite3_str *s, const tc_attr_filter_t *f) {
  eq_sql(s, "entity_type", f->entity_type);
  in_sql(s, "entity_id", f->n_entity_ids);
  in_sql(s, "attribute", f->n_attributes);
}

int tc__sq_attr_filter_bind(sqlite3_stmt *st, int *i, const tc_attr_filter_t *f) {
  int rc = eq_bind(st, i, f->entity_type);
  if (rc == SQLITE_OK) rc = in_bind(st, i, f->entity_ids, f->n_entity_ids);
  if (rc == SQLITE_OK) rc = in_bind(st, i, f->attributes, f->n_attributes);
  return rc;
}

/* SQLITE_NOMEM when the string could not be built. */
static int prepare(sqlite3 *db, sqlite3_str *s, sqlite3_stmt **out) {
  char *sql = sqlite3_str_finish(s);
  if (!sql) return SQLITE_NOMEM;
  int rc = tc__sq_prepare(db, sql, out);
  sqlite3_free(sql);
  return rc;
}

int tc__sq_prepare_tuple_query(sqlite3 *db, const char *prefix,
                               const tc_tuple_filter_t *f, const char *suffix,
                               sqlite3_stmt **out) {
  sqlite3_str *s = sqlite3_str_new(db);
  sqlite3_str_appendall(s, prefix);
  tuple_sql(s, f);
  sqlite3_str_appendall(s, suffix);
  return prepare(db, s, out);
}

int tc__sq_prepare_attr_query(sqlite3 *db, const char *prefix,
                              const tc_attr_filter_t *f, const char *suffix,
                              sqlite3_stmt **out) {
  sqlite3_str *s = sqlite3_str_new(db);
  sqlite3_str_appendall(s, prefix);
  attr_sql(s, f);
  sqlite3_str_appendall(s, suffix);
  return prepare(db, s, out);
}
