/* Writer-side operations.  Each runs inside the writer's group transaction;
 * returning non-zero rolls it back, and the writer runs the others again
 * without this one (sqlite_worker.c), so an operation may run twice.
 * Every row created or expired by a write gets its row in `changes`, in the
 * order of effects: tuple_delete, attr_delete, tuples, attrs. */
#include <string.h>

#include "sqlite_internal.h"

#define WHERE_ACTIVE " WHERE tenant_id = ? AND expired_rev = 9223372036854775807"

/* One write: its revision and its open change log statement. */
typedef struct write_ctx_s {
  sqlite3 *db;
  const tc_host_api_t *host;
  const char *tenant_id;
  int64_t rev;
  int64_t seq;
  sqlite3_stmt *change;
} write_ctx_t;

static int bind_text(sqlite3_stmt *st, int i, const char *s) {
  return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Steps a statement that returns no rows, then resets it. */
static int run(sqlite3_stmt *st) {
  int rc = tc__sq_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int is_constraint(int rc) { return (rc & 0xff) == SQLITE_CONSTRAINT; }

static int log_change(write_ctx_t *w, int op, const tc_tuple_t *t, const tc_attr_t *a) {
  sqlite3_stmt *st = w->change;
  sqlite3_clear_bindings(st);
  sqlite3_bind_int64(st, 1, w->rev);
  sqlite3_bind_int64(st, 2, w->seq++);
  bind_text(st, 3, w->tenant_id);
  sqlite3_bind_int(st, 4, op);
  sqlite3_bind_int(st, 5, t ? TC__SQ_KIND_TUPLE : TC__SQ_KIND_ATTR);
  if (t) {
    bind_text(st, 6, t->entity_type);
    bind_text(st, 7, t->entity_id);
    bind_text(st, 8, t->relation);
    bind_text(st, 9, t->subject_type);
    bind_text(st, 10, t->subject_id);
    bind_text(st, 11, t->subject_relation);
  } else {
    bind_text(st, 6, a->entity_type);
    bind_text(st, 7, a->entity_id);
    bind_text(st, 12, a->attribute);
    sqlite3_bind_blob(st, 13, a->value_len ? a->value : (const void *)"", (int)a->value_len,
                      SQLITE_STATIC);
  }
  return run(st);
}

static const char *col(sqlite3_stmt *st, int i) {
  const unsigned char *s = sqlite3_column_text(st, i);
  return s ? (const char *)s : "";
}

/* Logs a DELETE for every active row the SELECT returns, then runs the
 * UPDATE that expires them; both carry the same filter. */
static int expire(write_ctx_t *w, sqlite3_stmt *sel, sqlite3_stmt *upd, int kind) {
  int rc;
  while ((rc = tc__sq_step(sel)) == SQLITE_ROW) {
    if (kind == TC__SQ_KIND_TUPLE) {
      tc_tuple_t t = {col(sel, 0), col(sel, 1), col(sel, 2), col(sel, 3), col(sel, 4), col(sel, 5)};
      rc = log_change(w, TC_CHANGE_DELETE, &t, NULL);
    } else {
      tc_attr_t a = {col(sel, 0), col(sel, 1), col(sel, 2), sqlite3_column_blob(sel, 3),
                     (size_t)sqlite3_column_bytes(sel, 3)};
      rc = log_change(w, TC_CHANGE_DELETE, NULL, &a);
    }
    if (rc != SQLITE_OK) return rc;
  }
  if (rc != SQLITE_DONE) return rc;
  return run(upd);
}

static int expire_tuples(write_ctx_t *w, const tc_tuple_filter_t *f) {
  sqlite3_stmt *sel = NULL, *upd = NULL;
  int rc =
      tc__sq_prepare_tuple_query(w->db,
                                 "SELECT entity_type, entity_id, relation, subject_type,"
                                 " subject_id, subject_relation FROM relation_tuples" WHERE_ACTIVE,
                                 f, " ORDER BY id", &sel);
  if (rc == SQLITE_OK)
    rc = tc__sq_prepare_tuple_query(
        w->db, "UPDATE relation_tuples SET expired_rev = ?" WHERE_ACTIVE, f, "", &upd);
  int i = 1, j = 2;
  if (rc == SQLITE_OK) rc = bind_text(sel, i++, w->tenant_id);
  if (rc == SQLITE_OK) rc = tc__sq_tuple_filter_bind(sel, &i, f);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(upd, 1, w->rev);
  if (rc == SQLITE_OK) rc = bind_text(upd, j++, w->tenant_id);
  if (rc == SQLITE_OK) rc = tc__sq_tuple_filter_bind(upd, &j, f);
  if (rc == SQLITE_OK) rc = expire(w, sel, upd, TC__SQ_KIND_TUPLE);
  sqlite3_finalize(sel);
  sqlite3_finalize(upd);
  return rc;
}

static int expire_attrs(write_ctx_t *w, const tc_attr_filter_t *f) {
  sqlite3_stmt *sel = NULL, *upd = NULL;
  int rc = tc__sq_prepare_attr_query(
      w->db, "SELECT entity_type, entity_id, attribute, value FROM attributes" WHERE_ACTIVE, f,
      " ORDER BY id", &sel);
  if (rc == SQLITE_OK)
    rc = tc__sq_prepare_attr_query(w->db, "UPDATE attributes SET expired_rev = ?" WHERE_ACTIVE, f,
                                   "", &upd);
  int i = 1, j = 2;
  if (rc == SQLITE_OK) rc = bind_text(sel, i++, w->tenant_id);
  if (rc == SQLITE_OK) rc = tc__sq_attr_filter_bind(sel, &i, f);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(upd, 1, w->rev);
  if (rc == SQLITE_OK) rc = bind_text(upd, j++, w->tenant_id);
  if (rc == SQLITE_OK) rc = tc__sq_attr_filter_bind(upd, &j, f);
  if (rc == SQLITE_OK) rc = expire(w, sel, upd, TC__SQ_KIND_ATTR);
  sqlite3_finalize(sel);
  sqlite3_finalize(upd);
  return rc;
}

/* An identical active tuple makes the insert a no-op, with no change row. */
static int create_tuples(write_ctx_t *w, const tc_tuple_t *t, size_t n) {
  sqlite3_stmt *st;
  int rc = tc__sq_prepare(w->db,
                          "INSERT INTO relation_tuples (tenant_id, entity_type, entity_id,"
                          " relation, subject_type, subject_id, subject_relation, created_rev)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                          &st);
  if (rc != SQLITE_OK) return rc;
  bind_text(st, 1, w->tenant_id);
  sqlite3_bind_int64(st, 8, w->rev);
  for (size_t k = 0; k < n && rc == SQLITE_OK; k++) {
    bind_text(st, 2, t[k].entity_type);
    bind_text(st, 3, t[k].entity_id);
    bind_text(st, 4, t[k].relation);
    bind_text(st, 5, t[k].subject_type);
    bind_text(st, 6, t[k].subject_id);
    bind_text(st, 7, t[k].subject_relation);
    rc = run(st);
    if (rc == SQLITE_OK && sqlite3_changes(w->db) == 1)
      rc = log_change(w, TC_CHANGE_CREATE, &t[k], NULL);
  }
  sqlite3_finalize(st);
  return rc;
}

/* Expires the active value of a's key, if any, with its DELETE change; upd
 * is EXPIRE_ATTR_SQL with ?1..?5 bound. */
#define EXPIRE_ATTR_SQL                                         \
  "UPDATE attributes SET expired_rev = ?1 WHERE tenant_id = ?2" \
  " AND entity_type = ?3 AND entity_id = ?4 AND attribute = ?5" \
  " AND expired_rev = 9223372036854775807 RETURNING value"
static int expire_attr_key(write_ctx_t *w, sqlite3_stmt *upd, const tc_attr_t *a) {
  int rc;
  while ((rc = tc__sq_step(upd)) == SQLITE_ROW) {
    tc_attr_t old = *a;
    old.value = sqlite3_column_blob(upd, 0);
    old.value_len = (size_t)sqlite3_column_bytes(upd, 0);
    if ((rc = log_change(w, TC_CHANGE_DELETE, NULL, &old)) != SQLITE_OK) break;
  }
  sqlite3_reset(upd);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void bind_attr_key(sqlite3_stmt *st, write_ctx_t *w, const tc_attr_t *a) {
  sqlite3_bind_int64(st, 1, w->rev);
  bind_text(st, 2, w->tenant_id);
  bind_text(st, 3, a->entity_type);
  bind_text(st, 4, a->entity_id);
  bind_text(st, 5, a->attribute);
}

/* v2.1's exact deletes: each active tuple equal in every column, each active
 * value of an attribute key, with their DELETE changes.  A statement is
 * prepared only for deletes there are: preparing both took 66-93 us, on
 * every write, most of which have none. */
static int expire_exact(write_ctx_t *w, const tc_write_batch_t *b) {
  sqlite3_stmt *tup = NULL, *att = NULL;
  int rc = SQLITE_OK;
  if (b->n_tuple_deletes)
    rc = tc__sq_prepare(w->db,
                        "UPDATE relation_tuples SET expired_rev = ?1 WHERE tenant_id = ?2"
                        " AND entity_type = ?3 AND entity_id = ?4 AND relation = ?5"
                        " AND subject_type = ?6 AND subject_id = ?7 AND subject_relation = ?8"
                        " AND expired_rev = 9223372036854775807",
                        &tup);
  if (rc == SQLITE_OK && b->n_attr_deletes) rc = tc__sq_prepare(w->db, EXPIRE_ATTR_SQL, &att);
  for (size_t k = 0; rc == SQLITE_OK && k < b->n_tuple_deletes; k++) {
    const tc_tuple_t *t = &b->tuple_deletes[k];
    const char *v[] = {w->tenant_id,    t->entity_type, t->entity_id,       t->relation,
                       t->subject_type, t->subject_id,  t->subject_relation};
    sqlite3_bind_int64(tup, 1, w->rev);
    for (int i = 0; i < 7; i++) bind_text(tup, i + 2, v[i]);
    rc = run(tup);
    if (rc == SQLITE_OK && sqlite3_changes(w->db) > 0)
      rc = log_change(w, TC_CHANGE_DELETE, t, NULL);
  }
  for (size_t k = 0; rc == SQLITE_OK && k < b->n_attr_deletes; k++) {
    bind_attr_key(att, w, &b->attr_deletes[k]);
    rc = expire_attr_key(w, att, &b->attr_deletes[k]);
  }
  sqlite3_finalize(tup);
  sqlite3_finalize(att);
  return rc;
}

/* Each attribute expires the active value of its key (a DELETE change with
 * the old value), then creates the new one (a CREATE change). */
static int upsert_attrs(write_ctx_t *w, const tc_attr_t *a, size_t n) {
  sqlite3_stmt *upd = NULL, *ins = NULL;
  int rc = tc__sq_prepare(w->db, EXPIRE_ATTR_SQL, &upd);
  if (rc == SQLITE_OK)
    rc = tc__sq_prepare(w->db,
                        "INSERT INTO attributes (tenant_id, entity_type, entity_id, attribute,"
                        " value, created_rev) VALUES (?2, ?3, ?4, ?5, ?6, ?1)",
                        &ins);
  for (size_t k = 0; k < n && rc == SQLITE_OK; k++) {
    bind_attr_key(upd, w, &a[k]);
    bind_attr_key(ins, w, &a[k]);
    sqlite3_bind_blob(ins, 6, a[k].value_len ? a[k].value : (const void *)"", (int)a[k].value_len,
                      SQLITE_STATIC);
    if ((rc = expire_attr_key(w, upd, &a[k])) != SQLITE_OK) break;
    rc = run(ins);
    if (rc == SQLITE_OK) rc = log_change(w, TC_CHANGE_CREATE, NULL, &a[k]);
  }
  sqlite3_finalize(upd);
  sqlite3_finalize(ins);
  return rc;
}

static int new_revision(write_ctx_t *w) {
  sqlite3_stmt *st;
  int rc = tc__sq_prepare(w->db, "INSERT INTO transactions (tenant_id, committed_at) VALUES (?, ?)",
                          &st);
  if (rc != SQLITE_OK) return rc;
  bind_text(st, 1, w->tenant_id);
  sqlite3_bind_int64(st, 2, tc__sq_now_ms());
  rc = run(st);
  sqlite3_finalize(st);
  w->rev = sqlite3_last_insert_rowid(w->db);
  return rc;
}

int tc__sq_exec_write(tc__sq_req_t *r, sqlite3 *db) {
  const tc_write_batch_t *b = &r->batch;
  write_ctx_t w = {.db = db, .host = r->b->host, .tenant_id = b->tenant_id};
  int rc = tc__sq_prepare(db,
                          "INSERT INTO changes (revision, seq, tenant_id, op, kind, entity_type,"
                          " entity_id, relation, subject_type, subject_id, subject_relation,"
                          " attribute, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          &w.change);
  if (rc == SQLITE_OK) rc = new_revision(&w);
  if (rc == SQLITE_OK && b->tuple_delete) rc = expire_tuples(&w, b->tuple_delete);
  if (rc == SQLITE_OK && b->attr_delete) rc = expire_attrs(&w, b->attr_delete);
  if (rc == SQLITE_OK) rc = expire_exact(&w, b);
  if (rc == SQLITE_OK) rc = create_tuples(&w, b->tuples, b->n_tuples);
  if (rc == SQLITE_OK) rc = upsert_attrs(&w, b->attrs, b->n_attrs);
  if (rc != SQLITE_OK) rc = tc__sq_fail(w.host, db, "write");
  sqlite3_finalize(w.change);
  r->revision = (uint64_t)w.rev;
  return rc;
}

int tc__sq_exec_tenant_create(tc__sq_req_t *r, sqlite3 *db) {
  sqlite3_stmt *st;
  int rc = tc__sq_prepare(db, "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)", &st);
  if (rc != SQLITE_OK) return tc__sq_fail(r->b->host, db, "tenant create");
  r->tenant = (tc_tenant_row_t){r->tenant_id, r->key, tc__sq_now_ms()};
  bind_text(st, 1, r->tenant.id);
  bind_text(st, 2, r->tenant.name);
  sqlite3_bind_int64(st, 3, r->tenant.created_at_ms);
  rc = run(st);
  sqlite3_finalize(st);
  if (is_constraint(rc)) return TC_EUNIQUE;
  return rc == SQLITE_OK ? 0 : tc__sq_fail(r->b->host, db, "tenant create");
}

int tc__sq_exec_tenant_delete(tc__sq_req_t *r, sqlite3 *db) {
  static const char *const deletes[] = {
      "DELETE FROM relation_tuples WHERE tenant_id = ?",
      "DELETE FROM attributes WHERE tenant_id = ?",
      "DELETE FROM changes WHERE tenant_id = ?",
      "DELETE FROM schema_definitions WHERE tenant_id = ?",
      "DELETE FROM transactions WHERE tenant_id = ?",
      "DELETE FROM bundles WHERE tenant_id = ?",
      "DELETE FROM tenants WHERE id = ?",
  };
  sqlite3_stmt *st;
  int rc = tc__sq_prepare(db, "SELECT name, created_at FROM tenants WHERE id = ?", &st);
  if (rc != SQLITE_OK) return tc__sq_fail(r->b->host, db, "tenant delete");
  bind_text(st, 1, r->tenant_id);
  rc = tc__sq_step(st);
  int status = 0;
  if (rc == SQLITE_ROW) {
    r->tenant = (tc_tenant_row_t){r->tenant_id, tc__sq_column_dup(&r->arena, st, 0),
                                  sqlite3_column_int64(st, 1)};
    if (!r->tenant.name) status = TC_ENOMEM;
  } else {
    status = rc == SQLITE_DONE ? TC_ENOTFOUND : tc__sq_fail(r->b->host, db, "tenant delete");
  }
  sqlite3_finalize(st);
  for (size_t i = 0; status == 0 && i < sizeof deletes / sizeof deletes[0]; i++) {
    if (tc__sq_prepare(db, deletes[i], &st) != SQLITE_OK)
      return tc__sq_fail(r->b->host, db, "tenant delete");
    bind_text(st, 1, r->tenant_id);
    if (run(st) != SQLITE_OK) status = tc__sq_fail(r->b->host, db, "tenant delete");
    sqlite3_finalize(st);
  }
  return status;
}

/* All of r's bundles, replacing those of the same names; the writer runs a
 * request in one transaction. */
int tc__sq_exec_bundle_write(tc__sq_req_t *r, sqlite3 *db) {
  sqlite3_stmt *st;
  if (tc__sq_prepare(db,
                     "INSERT OR REPLACE INTO bundles (name, tenant_id, payload, created_at)"
                     " VALUES (?, ?, ?, ?)",
                     &st) != SQLITE_OK)
    return tc__sq_fail(r->b->host, db, "bundle write");
  int rc = SQLITE_OK;
  for (size_t i = 0; rc == SQLITE_OK && i < r->n_bundles; i++) {
    bind_text(st, 1, r->bundles[i].name);
    bind_text(st, 2, r->tenant_id);
    sqlite3_bind_blob(st, 3, r->bundles[i].payload, (int)r->bundles[i].payload_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, tc__sq_now_ms());
    rc = run(st);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_OK ? 0 : tc__sq_fail(r->b->host, db, "bundle write");
}

int tc__sq_exec_bundle_delete(tc__sq_req_t *r, sqlite3 *db) {
  sqlite3_stmt *st;
  if (tc__sq_prepare(db, "DELETE FROM bundles WHERE name = ? AND tenant_id = ?", &st) != SQLITE_OK)
    return tc__sq_fail(r->b->host, db, "bundle delete");
  bind_text(st, 1, r->key);
  bind_text(st, 2, r->tenant_id);
  int rc = run(st);
  sqlite3_finalize(st);
  return rc == SQLITE_OK ? 0 : tc__sq_fail(r->b->host, db, "bundle delete");
}

/* A schema write is a revision of its own, with one change-log row of kind
 * 3 naming the version (in entity_type): read_feed reports it in order with
 * the data changes; read_changes passes over it. */
static int log_schema(tc__sq_req_t *r, sqlite3 *db) {
  write_ctx_t w = {.db = db, .host = r->b->host, .tenant_id = r->tenant_id};
  int rc = new_revision(&w);
  sqlite3_stmt *st = NULL;
  if (rc == SQLITE_OK)
    rc = tc__sq_prepare(db,
                        "INSERT INTO changes (revision, seq, tenant_id, op, kind, entity_type,"
                        " entity_id) VALUES (?, 0, ?, 3, 3, ?, '')",
                        &st);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, w.rev);
    bind_text(st, 2, r->tenant_id);
    bind_text(st, 3, r->key);
    rc = run(st);
  }
  sqlite3_finalize(st);
  return rc;
}

int tc__sq_exec_schema_write(tc__sq_req_t *r, sqlite3 *db) {
  sqlite3_stmt *st;
  int rc = tc__sq_prepare(db,
                          "INSERT INTO schema_definitions (tenant_id, version, text, created_at)"
                          " VALUES (?, ?, ?, ?)",
                          &st);
  if (rc != SQLITE_OK) return tc__sq_fail(r->b->host, db, "schema write");
  bind_text(st, 1, r->tenant_id);
  bind_text(st, 2, r->key);
  bind_text(st, 3, r->text);
  sqlite3_bind_int64(st, 4, tc__sq_now_ms());
  rc = run(st);
  sqlite3_finalize(st);
  if (is_constraint(rc)) return TC_EUNIQUE;
  if (rc == SQLITE_OK) rc = log_schema(r, db);
  return rc == SQLITE_OK ? 0 : tc__sq_fail(r->b->host, db, "schema write");
}
