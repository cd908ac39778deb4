/* The PostgreSQL backend's data writes: one transaction per batch on the
 * write pool, retried on serialization failures.  Loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"
#include "pg_token.h"
#include "pg_wake.h"

static void reply_write(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  tc_write_cb cb = op->cb.write;
  char *token = NULL;
  if (status == 0 && n && res[0] && PQntuples(res[0]) == 1) {
    uint64_t xid = strtoull(PQgetvalue(res[0], 0, 0), NULL, 10);
    token = tc__pg_token_permify(xid, PQgetvalue(res[0], 0, 1));
    if (!token) status = TC_ENOMEM;
    /* The host wakes the tenant's feeds on this success: the poll need not. */
    if (token && op->b->wake) tc__pg_wake_local(op->b->wake, xid);
  } else if (status == 0) {
    status = TC_EINTERNAL;
  }
  cb(op->arg, status, status == 0 ? token : NULL);
  free(token);
}

/* Counts the write and wakes other nodes once it committed (not at its turn
 * to answer, which may come later). */
static void on_write_unit(void *arg, int status, PGresult *const *res, size_t n,
                          const char *sqlstate, const char *errmsg) {
  tc__pg_op_t *op = arg;
  if (status == 0) {
    op->b->stats.writes++;
    if (op->b->wake) tc__pg_wake_written(op->b->wake, op->tenant);
  }
  tc__pg_on_unit(arg, status, res, n, sqlstate, errmsg);
}

static int start_write(tc__pg_op_t *op) {
  return tc__pg_pool_submit(op->pool, op->stmts, op->nstmts, on_write_unit, op);
}

/* The statement `sql` with $1 the tenant and $2.. the ncols column arrays of
 * rows[0..n) as text[] literals; field(rows, i, c) is row i's column c. */
static int column_stmt(tc__pg_op_t *op, const char *name, const char *sql, const void *rows,
                       size_t n, int ncols, const char *(*field)(const void *, size_t, int)) {
  const char **col = malloc((n + 1) * sizeof *col);
  const char **v = tc_arena_alloc(&op->mem, (size_t)(ncols + 1) * sizeof *v);
  int ok = col && v;
  if (ok) v[0] = op->tenant;
  for (int c = 0; ok && c < ncols; c++) {
    for (size_t i = 0; i < n; i++) col[i] = field(rows, i, c);
    ok = (v[c + 1] = tc__pg_op_adopt(op, tc__pg_text_array(col, n))) != NULL;
  }
  free(col);
  if (ok) tc__pg_unit_stmt(op, name, sql, ncols + 1, v);
  return ok ? 0 : TC_ENOMEM;
}

static const char *tuple_field(const void *rows, size_t i, int c) {
  const tc_tuple_t *t = (const tc_tuple_t *)rows + i;
  const char *f[6] = {t->entity_type,  t->entity_id,  t->relation,
                      t->subject_type, t->subject_id, t->subject_relation};
  return f[c];
}

static const char *attr_key_field(const void *rows, size_t i, int c) {
  const tc_attr_t *a = (const tc_attr_t *)rows + i;
  return c == 0 ? a->entity_type : c == 1 ? a->entity_id : a->attribute;
}

#define TUPLE_COLUMNS                                                               \
  " unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])" \
  "   AS u(et, ei, r, st, si, sr)"

static int write_tuples(tc__pg_op_t *op, const tc_write_batch_t *w) {
  static const char sql[] =
      "INSERT INTO relation_tuples (entity_type, entity_id, relation, subject_type, subject_id,"
      " subject_relation, created_tx_id, tenant_id)"
      " SELECT u.et, u.ei, u.r, u.st, u.si, u.sr, pg_current_xact_id(), $1"
      " FROM" TUPLE_COLUMNS " ON CONFLICT ON CONSTRAINT uq_relation_tuple_not_expired DO NOTHING";
  return column_stmt(op, "tc_write_tuples", sql, w->tuples, w->n_tuples, 6, tuple_field);
}

/* v2.1's exact tuple deletes: the active rows equal in every column. */
static int expire_tuples_exact(tc__pg_op_t *op, const tc_write_batch_t *w) {
  static const char sql[] =
      "UPDATE relation_tuples t SET expired_tx_id = pg_current_xact_id() FROM" TUPLE_COLUMNS
      " WHERE t.tenant_id = $1 AND t.expired_tx_id = " TC_PG_ACTIVE_TX
      "   AND t.entity_type = u.et AND t.entity_id = u.ei AND t.relation = u.r"
      "   AND t.subject_type = u.st AND t.subject_id = u.si AND t.subject_relation = u.sr";
  return column_stmt(op, "tc_delete_tuples_exact", sql, w->tuple_deletes, w->n_tuple_deletes, 6,
                     tuple_field);
}

/* Each attribute expires the active value of its key, then inserts the new
 * one; values go in as protojson (Permify's jsonb form). */
static const char expire_attrs_sql[] =
    "UPDATE attributes a SET expired_tx_id = pg_current_xact_id()"
    " FROM unnest($2::text[], $3::text[], $4::text[]) AS u(et, ei, at)"
    " WHERE a.tenant_id = $1 AND a.expired_tx_id = " TC_PG_ACTIVE_TX
    "   AND a.entity_type = u.et AND a.entity_id = u.ei AND a.attribute = u.at";

/* v2.1's exact attribute deletes: the active value of each key. */
static int expire_attrs_exact(tc__pg_op_t *op, const tc_write_batch_t *w) {
  return column_stmt(op, "tc_delete_attrs_exact", expire_attrs_sql, w->attr_deletes,
                     w->n_attr_deletes, 3, attr_key_field);
}

static int write_attrs(tc__pg_op_t *op, const tc_write_batch_t *w) {
  static const char insert_sql[] =
      "INSERT INTO attributes (entity_type, entity_id, attribute, value, tenant_id,"
      " created_tx_id)"
      " SELECT u.et, u.ei, u.at, u.v::jsonb, $1, pg_current_xact_id()"
      " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(et, ei, at, v)";
  size_t n = w->n_attrs;
  int rc = 0;
  char **json = calloc(n + 1, sizeof *json);
  const char **col = malloc((n + 1) * sizeof *col);
  const char **v = tc_arena_alloc(&op->mem, 5 * sizeof *v);
  if (!json || !col || !v) rc = TC_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = op->b->host->any_to_json(w->attrs[i].value, w->attrs[i].value_len, &json[i]);
  if (rc == 0) v[0] = op->tenant;
  for (int c = 0; rc == 0 && c < 4; c++) {
    for (size_t i = 0; i < n; i++) {
      const tc_attr_t *a = &w->attrs[i];
      const char *f[4] = {a->entity_type, a->entity_id, a->attribute, json[i]};
      col[i] = f[c];
    }
    if (!(v[c + 1] = tc__pg_op_adopt(op, tc__pg_text_array(col, n)))) rc = TC_ENOMEM;
  }
  for (size_t i = 0; json && i < n; i++) free(json[i]);
  free(json);
  free(col);
  if (rc == 0) {
    tc__pg_unit_stmt(op, "tc_write_attrs_expire", expire_attrs_sql, 4, v);
    tc__pg_unit_stmt(op, "tc_write_attrs_insert", insert_sql, 5, v);
  }
  return rc;
}

/* UPDATE <table> SET expired_tx_id = <this transaction> for the active rows
 * of the tenant matching the filter. */
static int write_delete(tc__pg_op_t *op, const char *table, const tc_tuple_filter_t *tf,
                        const tc_attr_filter_t *af) {
  tc__pg_sql_t s = {.len = 0};
  tc__pg_sql_add(&s,
                 "UPDATE %s SET expired_tx_id = pg_current_xact_id() WHERE tenant_id = $%d"
                 " AND expired_tx_id = " TC_PG_ACTIVE_TX,
                 table, tc__pg_sql_param(&s, op->tenant));
  if (tf)
    tc__pg_sql_tuple_filter(op, &s, tf);
  else
    tc__pg_sql_attr_filter(op, &s, af);
  return tc__pg_sql_finish(op, &s, tf ? "tc_delete_tuples" : "tc_delete_attrs");
}

int tc__pg_write_batch(tc_backend_t *b, const tc_write_batch_t *w, tc_write_cb cb, void *arg) {
  static const char tx_sql[] =
      "INSERT INTO transactions (tenant_id) VALUES ($1) RETURNING id::text, snapshot::text";
  tc__pg_op_t *op = tc__pg_op_new(b, w->tenant_id, (tc_backend_cb_t){.write = cb}, arg);
  int rc = op ? 0 : b->closing ? TC_EUNAVAILABLE : TC_ENOMEM;
  if (rc) return rc;
  op->writes = 1;
  op->retries = 1;
  op->insert_only = !w->tuple_delete && !w->attr_delete && !w->n_attrs && !w->n_tuple_deletes &&
                    !w->n_attr_deletes;
  op->pool = b->wpool;
  op->start = start_write;
  op->reply = reply_write;
  tc__pg_unit_stmt(op, "tc_write_tx", tx_sql, 1, (const char *const *)&op->tenant);
  if (w->tuple_delete) rc = write_delete(op, "relation_tuples", w->tuple_delete, NULL);
  if (!rc && w->attr_delete) rc = write_delete(op, "attributes", NULL, w->attr_delete);
  if (!rc && w->n_tuple_deletes) rc = expire_tuples_exact(op, w);
  if (!rc && w->n_attr_deletes) rc = expire_attrs_exact(op, w);
  if (!rc && w->n_tuples) rc = write_tuples(op, w);
  if (!rc && w->n_attrs) rc = write_attrs(op, w);
  if (rc) {
    tc__pg_op_free(op);
    return rc;
  }
  return tc__pg_op_submit(b, op, 1);
}
