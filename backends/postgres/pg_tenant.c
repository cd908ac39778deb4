/* The PostgreSQL backend's tenant calls: create, get, delete, list, in
 * Permify's tenants table.  Loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* Unix epoch ms of a TIMESTAMP column holding UTC. */
#define EPOCH_MS(col) "(extract(epoch FROM " col ") * 1000)::int8"


static void reply_tenant(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  tc_tenant_cb cb = op->cb.tenant;
  PGresult *r = n ? res[0] : NULL;
  if (status == 0 && (!r || PQntuples(r) == 0)) status = TC_ENOTFOUND;
  if (status) {
    cb(op->arg, status, NULL);
    return;
  }
  tc_tenant_row_t row = {PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
                         strtoll(PQgetvalue(r, 0, 2), NULL, 10)};
  cb(op->arg, 0, &row);
}

static int tenant_op(tc_backend_t *b, const char *id, const char *name, const char *stmt_name,
                     const char *sql, int nparams, int writes, tc_tenant_cb cb, void *arg) {
  tc__pg_op_t *op = tc__pg_op_new(b, id, (tc_backend_cb_t){.tenant = cb}, arg);
  int ok = 0;
  if (op) {
    const char **v = tc_arena_alloc(&op->mem, 2 * sizeof *v);
    ok = v && (v[0] = op->tenant) && (v[1] = tc_arena_strdup(&op->mem, name));
    op->writes = writes;
    op->pool = writes ? b->wpool : b->rpool;
    op->start = tc__pg_start_unit;
    op->reply = reply_tenant;
    if (ok) tc__pg_unit_stmt(op, stmt_name, sql, nparams, v);
  }
  return tc__pg_op_submit(b, op, ok);
}

int tc__pg_tenant_create(tc_backend_t *b, const char *id, const char *name, tc_tenant_cb cb,
                         void *arg) {
  static const char sql[] =
      "INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING id, name, " EPOCH_MS("created_at");
  return tenant_op(b, id, name, "tc_tenant_create", sql, 2, 1, cb, arg);
}

int tc__pg_tenant_get(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg) {
  static const char sql[] =
      "SELECT id, name, " EPOCH_MS("created_at") " FROM tenants WHERE id = $1";
  return tenant_op(b, id, NULL, "tc_tenant_get", sql, 1, 0, cb, arg);
}

int tc__pg_tenant_delete(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg) {
  /* One statement: the tenant's data goes only if the tenant row did. */
  static const char sql[] =
      "WITH t AS (DELETE FROM tenants WHERE id = $1 RETURNING id, name, created_at),"
      " d1 AS (DELETE FROM bundles WHERE tenant_id = $1 AND EXISTS (SELECT 1 FROM t)),"
      " d2 AS (DELETE FROM relation_tuples WHERE tenant_id = $1 AND EXISTS (SELECT 1 FROM t)),"
      " d3 AS (DELETE FROM attributes WHERE tenant_id = $1 AND EXISTS (SELECT 1 FROM t)),"
      " d4 AS (DELETE FROM schema_definitions WHERE tenant_id = $1"
      "   AND EXISTS (SELECT 1 FROM t)),"
      " d5 AS (DELETE FROM transactions WHERE tenant_id = $1 AND EXISTS (SELECT 1 FROM t)),"
      " d6 AS (DELETE FROM tuplecast_gc WHERE tenant_id = $1 AND EXISTS (SELECT 1 FROM t))"
      " SELECT id, name, " EPOCH_MS("created_at") " FROM t";
  return tenant_op(b, id, NULL, "tc_tenant_delete", sql, 1, 1, cb, arg);
}

static void reply_tenants(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  tc_tenants_cb cb = op->cb.tenants;
  if (status || !n) {
    cb(op->arg, status ? status : TC_EINTERNAL, NULL, 0, NULL);
    return;
  }
  PGresult *r = res[0];
  size_t rows = (size_t)PQntuples(r), take = rows;
  if (op->limit && take > op->limit) take = op->limit;
  tc_tenant_row_t *v = malloc((take + 1) * sizeof *v);
  if (!v) {
    cb(op->arg, TC_ENOMEM, NULL, 0, NULL);
    return;
  }
  for (size_t i = 0; i < take; i++)
    v[i] = (tc_tenant_row_t){PQgetvalue(r, (int)i, 0), PQgetvalue(r, (int)i, 1),
                             strtoll(PQgetvalue(r, (int)i, 2), NULL, 10)};
  cb(op->arg, 0, v, take, rows > take ? PQgetvalue(r, (int)take, 0) : NULL);
  free(v);
}

int tc__pg_tenant_list(tc_backend_t *b, const char *after, uint32_t limit, tc_tenants_cb cb,
                       void *arg) {
  static const char sql[] = "SELECT id, name, " EPOCH_MS(
      "created_at") " FROM tenants WHERE id >= $1 ORDER BY id LIMIT $2::int8";
  /* "": no tenant has an empty id */
  tc__pg_op_t *op = tc__pg_op_new(b, "", (tc_backend_cb_t){.tenants = cb}, arg);
  int ok = 0;
  if (op) {
    const char **v = tc_arena_alloc(&op->mem, 2 * sizeof *v);
    ok = v && (v[0] = tc_arena_strdup(&op->mem, after));
    if (ok) v[1] = tc__pg_limit_text(op, limit);
    ok = ok && (!limit || v[1]);
    op->limit = limit;
    op->pool = b->rpool;
    op->start = tc__pg_start_unit;
    op->reply = reply_tenants;
    if (ok) tc__pg_unit_stmt(op, "tc_tenant_list", sql, 2, v);
  }
  return tc__pg_op_submit(b, op, ok);
}
