/* Tuple and attribute filters as SQL conditions: each set member is an
 * equality or an IN-list; unset members ("" or no ids) do not constrain.
 * A filter is first listed as terms, so that the SQL and its bindings come
 * from one description and cannot drift apart. */
#include "sqlite_internal.h"

/* One member of a filter: col = eq when eq is set, else col IN (in[0..n)). */
typedef struct term_s {
  const char *col;
  const char *eq;
  const char *const *in;
  size_t n;
} term_t;

#define MAX_TERMS 6

static int set(const char *s) { return s && *s; }

static size_t tuple_terms(const tc_tuple_filter_t *f, term_t *t) {
  t[0] = (term_t){"entity_type", f->entity_type, NULL, 0};
  t[1] = (term_t){"entity_id", NULL, f->entity_ids, f->n_entity_ids};
  t[2] = (term_t){"relation", f->relation, NULL, 0};
  t[3] = (term_t){"subject_type", f->subject_type, NULL, 0};
  t[4] = (term_t){"subject_id", NULL, f->subject_ids, f->n_subject_ids};
  t[5] = (term_t){"subject_relation", f->subject_relation, NULL, 0};
  return 6;
}

static size_t attr_terms(const tc_attr_filter_t *f, term_t *t) {
  t[0] = (term_t){"entity_type", f->entity_type, NULL, 0};
  t[1] = (term_t){"entity_id", NULL, f->entity_ids, f->n_entity_ids};
  t[2] = (term_t){"attribute", NULL, f->attributes, f->n_attributes};
  return 3;
}

static void terms_sql(sqlite3_str *s, const term_t *t, size_t n) {
  for (size_t k = 0; k < n; k++) {
    if (set(t[k].eq)) {
      sqlite3_str_appendf(s, " AND %s = ?", t[k].col);
    } else if (t[k].n) {
      sqlite3_str_appendf(s, " AND %s IN (?", t[k].col);
      for (size_t j = 1; j < t[k].n; j++) sqlite3_str_appendall(s, ", ?");
      sqlite3_str_appendall(s, ")");
    }
  }
}

static int terms_bind(sqlite3_stmt *st, int *i, const term_t *t, size_t n) {
  int rc = SQLITE_OK;
  for (size_t k = 0; k < n && rc == SQLITE_OK; k++) {
    if (set(t[k].eq)) rc = sqlite3_bind_text(st, (*i)++, t[k].eq, -1, SQLITE_STATIC);
    for (size_t j = 0; !set(t[k].eq) && j < t[k].n && rc == SQLITE_OK; j++)
      rc = sqlite3_bind_text(st, (*i)++, t[k].in[j], -1, SQLITE_STATIC);
  }
  return rc;
}

/* Prepares prefix, the terms' conditions and suffix; SQLITE_NOMEM when the
 * string could not be built. */
static int prepare_terms(sqlite3 *db, const char *prefix, const term_t *t, size_t n,
                         const char *suffix, sqlite3_stmt **out) {
  sqlite3_str *s = sqlite3_str_new(db);
  sqlite3_str_appendall(s, prefix);
  terms_sql(s, t, n);
  sqlite3_str_appendall(s, suffix);
  char *sql = sqlite3_str_finish(s);
  if (!sql) return SQLITE_NOMEM;
  int rc = tc__sq_prepare(db, sql, out);
  sqlite3_free(sql);
  return rc;
}

int tc__sq_prepare_tuple_query(sqlite3 *db, const char *prefix, const tc_tuple_filter_t *f,
                               const char *suffix, sqlite3_stmt **out) {
  term_t t[MAX_TERMS];
  return prepare_terms(db, prefix, t, tuple_terms(f, t), suffix, out);
}

int tc__sq_prepare_attr_query(sqlite3 *db, const char *prefix, const tc_attr_filter_t *f,
                              const char *suffix, sqlite3_stmt **out) {
  term_t t[MAX_TERMS];
  return prepare_terms(db, prefix, t, attr_terms(f, t), suffix, out);
}

int tc__sq_tuple_filter_bind(sqlite3_stmt *st, int *i, const tc_tuple_filter_t *f) {
  term_t t[MAX_TERMS];
  return terms_bind(st, i, t, tuple_terms(f, t));
}

int tc__sq_attr_filter_bind(sqlite3_stmt *st, int *i, const tc_attr_filter_t *f) {
  term_t t[MAX_TERMS];
  return terms_bind(st, i, t, attr_terms(f, t));
}
