/* Reader-side operations, on the reader connection in autocommit mode.
 * A read at revision R sees rows with created_rev <= R < expired_rev; the
 * head is R = UINT64_MAX, every active row. */
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

/* SQLite integers are signed; larger revisions and cursors clamp. */
static int64_t param(uint64_t v) { return v >= INT64_MAX ? INT64_MAX - 1 : (int64_t)v; }

static int bind_text(sqlite3_stmt *st, int i, const char *s) {
  return sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

/* LIMIT for a page of `limit` rows plus one that tells where the next starts. */
static int64_t page_limit(uint32_t limit) { return limit ? (int64_t)limit + 1 : -1; }

static int fail(tc__sq_req_t *r, sqlite3 *db, const char *what) {
  return tc__sq_fail(r->b->host, db, what);
}

static int tenant_head(sqlite3 *db, const char *tenant_id, uint64_t *out) {
  sqlite3_stmt *st;
  int rc =
      tc__sq_prepare(db, "SELECT coalesce(max(id), 0) FROM transactions WHERE tenant_id = ?", &st);
  if (rc != SQLITE_OK) return rc;
  bind_text(st, 1, tenant_id);
  rc = tc__sq_step(st);
  if (rc == SQLITE_ROW) {
    *out = (uint64_t)sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

int tc__sq_exec_head(tc__sq_req_t *r, sqlite3 *db) {
  return tenant_head(db, r->tenant_id, &r->revision) == SQLITE_OK ? 0 : fail(r, db, "head");
}

/* Readiness: a read of the database header (the schema cookie) on the
 * reader's connection.  Not logged: the host reports changes of state. */
int tc__sq_exec_ping(tc__sq_req_t *r, sqlite3 *db) {
  (void)r;
  sqlite3_stmt *st;
  int rc = tc__sq_prepare(db, "PRAGMA schema_version", &st);
  if (rc != SQLITE_OK) return TC_EUNAVAILABLE;
  rc = tc__sq_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : TC_EUNAVAILABLE;
}

typedef int (*row_fn)(tc__sq_req_t *r, sqlite3_stmt *st);

/* Steps st into r->rows with row(); the row after a full page goes to next()
 * instead, to say where the next page starts. */
static int read_page(tc__sq_req_t *r, sqlite3 *db, sqlite3_stmt *st, row_fn row, row_fn next,
                     const char *what) {
  int rc, status = 0;
  while (status == 0 && (rc = tc__sq_step(st)) == SQLITE_ROW) {
    if (r->limit && r->n == r->limit) {
      status = next(r, st);
      break;
    }
    status = row(r, st);
  }
  if (status == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) status = fail(r, db, what);
  sqlite3_finalize(st);
  return status;
}

static int next_id(tc__sq_req_t *r, sqlite3_stmt *st) {
  r->next_id = (tc_cursor_t)sqlite3_column_int64(st, 0);
  return 0;
}

static int next_string(tc__sq_req_t *r, sqlite3_stmt *st) {
  return (r->next_key = tc__sq_column_dup(&r->arena, st, 0)) ? 0 : TC_ENOMEM;
}

static int tuple_row(tc__sq_req_t *r, sqlite3_stmt *st) {
  tc_tuple_t *t = tc__sq_req_push(r, sizeof *t);
  if (!t) return TC_ENOMEM;
  const char **f[] = {&t->entity_type,  &t->entity_id,  &t->relation,
                      &t->subject_type, &t->subject_id, &t->subject_relation};
  for (int i = 0; i < 6; i++)
    if (!(*f[i] = tc__sq_column_dup(&r->arena, st, i + 1))) return TC_ENOMEM;
  return 0;
}

static int attr_row(tc__sq_req_t *r, sqlite3_stmt *st) {
  tc_attr_t *a = tc__sq_req_push(r, sizeof *a);
  if (!a) return TC_ENOMEM;
  a->entity_type = tc__sq_column_dup(&r->arena, st, 1);
  a->entity_id = tc__sq_column_dup(&r->arena, st, 2);
  a->attribute = tc__sq_column_dup(&r->arena, st, 3);
  a->value_len = (size_t)sqlite3_column_bytes(st, 4);
  a->value = tc_arena_memdup(&r->arena, sqlite3_column_blob(st, 4), a->value_len);
  return a->entity_type && a->entity_id && a->attribute && a->value ? 0 : TC_ENOMEM;
}

#define AT_REVISION " WHERE tenant_id = ? AND created_rev <= ?2 AND expired_rev > ?2 AND id >= ?"

int tc__sq_exec_read_tuples(tc__sq_req_t *r, sqlite3 *db) {
  atomic_fetch_add(&r->b->n_reads, 1);
  sqlite3_stmt *st;
  int rc = tc__sq_prepare_tuple_query(db,
                                      "SELECT id, entity_type, entity_id, relation,"
                                      " subject_type, subject_id, subject_relation"
                                      " FROM relation_tuples" AT_REVISION,
                                      &r->tuple_filter, " ORDER BY id LIMIT ?", &st);
  if (rc != SQLITE_OK) return fail(r, db, "read tuples");
  int i = 4;
  bind_text(st, 1, r->tenant_id);
  sqlite3_bind_int64(st, 2, param(r->revision));
  sqlite3_bind_int64(st, 3, param(r->after));
  rc = tc__sq_tuple_filter_bind(st, &i, &r->tuple_filter);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, i, page_limit(r->limit));
  if (rc != SQLITE_OK) {
    sqlite3_finalize(st);
    return fail(r, db, "read tuples");
  }
  return read_page(r, db, st, tuple_row, next_id, "read tuples");
}

int tc__sq_exec_read_attrs(tc__sq_req_t *r, sqlite3 *db) {
  atomic_fetch_add(&r->b->n_reads, 1);
  sqlite3_stmt *st;
  int rc = tc__sq_prepare_attr_query(db,
                                     "SELECT id, entity_type, entity_id, attribute, value"
                                     " FROM attributes" AT_REVISION,
                                     &r->attr_filter, " ORDER BY id LIMIT ?", &st);
  if (rc != SQLITE_OK) return fail(r, db, "read attributes");
  int i = 4;
  bind_text(st, 1, r->tenant_id);
  sqlite3_bind_int64(st, 2, param(r->revision));
  sqlite3_bind_int64(st, 3, param(r->after));
  rc = tc__sq_attr_filter_bind(st, &i, &r->attr_filter);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, i, page_limit(r->limit));
  if (rc != SQLITE_OK) {
    sqlite3_finalize(st);
    return fail(r, db, "read attributes");
  }
  return read_page(r, db, st, attr_row, next_id, "read attributes");
}

/* The change of row i of r->rows (tc_feed_item_t for read_feed). */
static tc_change_t *change_at(tc__sq_req_t *r, size_t i) {
  return r->feed ? &((tc_feed_item_t *)r->rows)[i].change : &((tc_change_t *)r->rows)[i];
}

/* The token of revision, in r's arena: the one of the previous row when it
 * is the same revision, so a transaction's changes share one pointer. */
static const char *change_token(tc__sq_req_t *r, uint64_t revision, uint64_t *prev) {
  if (r->n > 1 && *prev == revision) return change_at(r, r->n - 2)->token;
  *prev = revision;
  char *tok = tc_rev_token_encode(r->b->instance_id, revision);
  const char *copy = tok ? tc_arena_strdup(&r->arena, tok) : NULL;
  free(tok);
  return copy;
}

static int change_row(tc__sq_req_t *r, sqlite3_stmt *st, uint64_t *prev) {
  if (!tc__sq_req_push(r, r->feed ? sizeof(tc_feed_item_t) : sizeof(tc_change_t))) return TC_ENOMEM;
  tc_change_t *c = change_at(r, r->n - 1);
  if (!(c->token = change_token(r, (uint64_t)sqlite3_column_int64(st, 0), prev))) return TC_ENOMEM;
  c->op = sqlite3_column_int(st, 1);
  tc_arena_t *a = &r->arena;
  int kind = sqlite3_column_int(st, 2);
  if (kind == TC__SQ_KIND_SCHEMA) { /* only read_feed asks for them; entity_type: the version */
    const char **v = &((tc_feed_item_t *)r->rows)[r->n - 1].schema_version;
    return (*v = tc__sq_column_dup(a, st, 3)) ? 0 : TC_ENOMEM;
  }
  if (kind == TC__SQ_KIND_TUPLE) {
    tc_tuple_t *t = tc_arena_alloc(a, sizeof *t);
    if (!t) return TC_ENOMEM;
    const char **f[] = {&t->entity_type,  &t->entity_id,  &t->relation,
                        &t->subject_type, &t->subject_id, &t->subject_relation};
    for (int i = 0; i < 6; i++)
      if (!(*f[i] = tc__sq_column_dup(a, st, i + 3))) return TC_ENOMEM;
    c->tuple = t;
  } else {
    tc_attr_t *t = tc_arena_alloc(a, sizeof *t);
    if (!t) return TC_ENOMEM;
    t->entity_type = tc__sq_column_dup(a, st, 3);
    t->entity_id = tc__sq_column_dup(a, st, 4);
    t->attribute = tc__sq_column_dup(a, st, 9);
    t->value_len = (size_t)sqlite3_column_bytes(st, 10);
    t->value = tc_arena_memdup(a, sqlite3_column_blob(st, 10), t->value_len);
    if (!t->entity_type || !t->entity_id || !t->attribute || !t->value) return TC_ENOMEM;
    c->attr = t;
  }
  return 0;
}

/* Whole revisions only: stop at the first new revision once limit rows are in.
 * Nothing is ever pruned, so all history is retained. */
int tc__sq_exec_read_changes(tc__sq_req_t *r, sqlite3 *db) {
  atomic_fetch_add(&r->b->n_change_reads, 1);
  uint64_t head = 0;
  if (tenant_head(db, r->tenant_id, &head) != SQLITE_OK) return fail(r, db, "read changes");
  if (r->upto < head) head = r->upto;
  sqlite3_stmt *st;
  int rc = tc__sq_prepare(db,
                          "SELECT revision, op, kind, entity_type, entity_id, relation,"
                          " subject_type, subject_id, subject_relation, attribute, value"
                          " FROM changes"
                          " WHERE tenant_id = ? AND revision > ? AND revision <= ?"
                          " AND (kind < 3 OR ?)"
                          " ORDER BY revision, seq",
                          &st);
  if (rc != SQLITE_OK) return fail(r, db, "read changes");
  bind_text(st, 1, r->tenant_id);
  sqlite3_bind_int64(st, 2, param(r->after));
  sqlite3_bind_int64(st, 3, param(head));
  sqlite3_bind_int(st, 4, r->feed); /* schema writes (kind 3): read_feed only */
  r->last = head > r->after ? head : r->after;
  int status = 0;
  uint64_t prev = 0;
  while (status == 0 && (rc = tc__sq_step(st)) == SQLITE_ROW) {
    uint64_t rev = (uint64_t)sqlite3_column_int64(st, 0);
    if (r->limit && r->n >= r->limit && rev != prev) {
      r->last = prev;
      break;
    }
    status = change_row(r, st, &prev);
  }
  if (status == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) status = fail(r, db, "read changes");
  sqlite3_finalize(st);
  return status;
}

int tc__sq_exec_tenant_get(tc__sq_req_t *r, sqlite3 *db) {
  sqlite3_stmt *st;
  if (tc__sq_prepare(db, "SELECT name, created_at FROM tenants WHERE id = ?", &st) != SQLITE_OK)
    return fail(r, db, "tenant get");
  bind_text(st, 1, r->tenant_id);
  int rc = tc__sq_step(st), status = 0;
  if (rc == SQLITE_ROW) {
    r->tenant = (tc_tenant_row_t){r->tenant_id, tc__sq_column_dup(&r->arena, st, 0),
                                  sqlite3_column_int64(st, 1)};
    if (!r->tenant.name) status = TC_ENOMEM;
  } else {
    status = rc == SQLITE_DONE ? TC_ENOTFOUND : fail(r, db, "tenant get");
  }
  sqlite3_finalize(st);
  return status;
}

static int tenant_row(tc__sq_req_t *r, sqlite3_stmt *st) {
  tc_tenant_row_t *t = tc__sq_req_push(r, sizeof *t);
  if (!t) return TC_ENOMEM;
  *t = (tc_tenant_row_t){tc__sq_column_dup(&r->arena, st, 0), tc__sq_column_dup(&r->arena, st, 1),
                         sqlite3_column_int64(st, 2)};
  return t->id && t->name ? 0 : TC_ENOMEM;
}

int tc__sq_exec_tenant_list(tc__sq_req_t *r, sqlite3 *db) {
  sqlite3_stmt *st;
  if (tc__sq_prepare(db,
                     "SELECT id, name, created_at FROM tenants WHERE id >= ? ORDER BY id LIMIT ?",
                     &st) != SQLITE_OK)
    return fail(r, db, "tenant list");
  bind_text(st, 1, r->key);
  sqlite3_bind_int64(st, 2, page_limit(r->limit));
  return read_page(r, db, st, tenant_row, next_string, "tenant list");
}

int tc__sq_exec_schema_read(tc__sq_req_t *r, sqlite3 *db) {
  const char *sql = *r->key ? "SELECT version, text FROM schema_definitions"
                              " WHERE tenant_id = ?1 AND version = ?2"
                            : "SELECT version, text FROM schema_definitions"
                              " WHERE tenant_id = ?1 ORDER BY version DESC LIMIT 1";
  sqlite3_stmt *st;
  if (tc__sq_prepare(db, sql, &st) != SQLITE_OK) return fail(r, db, "schema read");
  bind_text(st, 1, r->tenant_id);
  if (*r->key) bind_text(st, 2, r->key);
  int rc = tc__sq_step(st), status = 0;
  if (rc == SQLITE_ROW) {
    r->key = tc__sq_column_dup(&r->arena, st, 0);
    r->text = tc__sq_column_dup(&r->arena, st, 1);
    if (!r->key || !r->text) status = TC_ENOMEM;
  } else {
    status = rc == SQLITE_DONE ? TC_ESCHEMA_NOT_FOUND : fail(r, db, "schema read");
  }
  sqlite3_finalize(st);
  return status;
}

/* tenant_state: one statement.  No row: no tenant; a NULL version: no
 * schema; the text only when the head is not the caller's version (key). */
int tc__sq_exec_tenant_state(tc__sq_req_t *r, sqlite3 *db) {
  static const char sql[] =
      "SELECT s.version, CASE WHEN s.version = ?2 THEN NULL ELSE s.text END"
      " FROM tenants t LEFT JOIN schema_definitions s ON s.tenant_id = t.id"
      "  AND s.version = (SELECT max(version) FROM schema_definitions WHERE tenant_id = ?1)"
      " WHERE t.id = ?1";
  sqlite3_stmt *st;
  if (tc__sq_prepare(db, sql, &st) != SQLITE_OK) return fail(r, db, "tenant state");
  bind_text(st, 1, r->tenant_id);
  bind_text(st, 2, r->key);
  int rc = tc__sq_step(st), status = 0;
  if (rc == SQLITE_ROW) {
    int has_text = sqlite3_column_type(st, 1) != SQLITE_NULL;
    r->key = sqlite3_column_type(st, 0) == SQLITE_NULL ? "" : tc__sq_column_dup(&r->arena, st, 0);
    r->text = has_text ? tc__sq_column_dup(&r->arena, st, 1) : NULL;
    if (!r->key || (has_text && !r->text)) status = TC_ENOMEM;
  } else {
    status = rc == SQLITE_DONE ? TC_ENOTFOUND : fail(r, db, "tenant state");
  }
  sqlite3_finalize(st);
  return status;
}

int tc__sq_exec_bundle_read(tc__sq_req_t *r, sqlite3 *db) {
  sqlite3_stmt *st;
  if (tc__sq_prepare(db, "SELECT payload FROM bundles WHERE name = ?1 AND tenant_id = ?2", &st) !=
      SQLITE_OK)
    return fail(r, db, "bundle read");
  bind_text(st, 1, r->key);
  bind_text(st, 2, r->tenant_id);
  int rc = tc__sq_step(st), status = 0;
  if (rc == SQLITE_ROW) {
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    uint8_t *copy = tc_arena_alloc(&r->arena, len + 1);
    r->bundles = tc_arena_alloc(&r->arena, sizeof *r->bundles);
    if (copy && r->bundles) {
      if (len) memcpy(copy, sqlite3_column_blob(st, 0), len);
      r->bundles[0] = (tc_bundle_t){r->key, copy, len};
      r->n_bundles = 1;
    } else {
      status = TC_ENOMEM;
    }
  } else {
    status = rc == SQLITE_DONE ? TC_EBUNDLE_NOT_FOUND : fail(r, db, "bundle read");
  }
  sqlite3_finalize(st);
  return status;
}

static int schema_row(tc__sq_req_t *r, sqlite3_stmt *st) {
  tc_schema_row_t *s = tc__sq_req_push(r, sizeof *s);
  if (!s) return TC_ENOMEM;
  *s = (tc_schema_row_t){tc__sq_column_dup(&r->arena, st, 0), sqlite3_column_int64(st, 1)};
  return s->version ? 0 : TC_ENOMEM;
}

int tc__sq_exec_schema_list(tc__sq_req_t *r, sqlite3 *db) {
  sqlite3_stmt *st;
  if (tc__sq_prepare(db, "SELECT max(version) FROM schema_definitions WHERE tenant_id = ?", &st) !=
      SQLITE_OK)
    return fail(r, db, "schema list");
  bind_text(st, 1, r->tenant_id);
  int rc = tc__sq_step(st), status = 0;
  if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL &&
      !(r->head = tc__sq_column_dup(&r->arena, st, 0)))
    status = TC_ENOMEM;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return fail(r, db, "schema list");
  if (status != 0 || !r->head) return status;

  const char *sql = *r->key ? "SELECT version, created_at FROM schema_definitions"
                              " WHERE tenant_id = ?1 AND version <= ?3"
                              " ORDER BY version DESC LIMIT ?2"
                            : "SELECT version, created_at FROM schema_definitions"
                              " WHERE tenant_id = ?1 ORDER BY version DESC LIMIT ?2";
  if (tc__sq_prepare(db, sql, &st) != SQLITE_OK) return fail(r, db, "schema list");
  bind_text(st, 1, r->tenant_id);
  sqlite3_bind_int64(st, 2, page_limit(r->limit));
  if (*r->key) bind_text(st, 3, r->key);
  return read_page(r, db, st, schema_row, next_string, "schema list");
}
