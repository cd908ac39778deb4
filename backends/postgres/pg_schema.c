/* The PostgreSQL backend's schema calls: write, read, list, in Permify's
 * schema_definitions table, and tenant_state (the tenant row and its head
 * schema in one statement).  Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"
#include "pg_schema_split.h"
#include "pg_wake.h"

static void reply_status(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  /* schema_write: no row inserted means the version was there already */
  if (status == 0 && n && op->expect_rows && strcmp(PQcmdTuples(res[0]), "0") == 0)
    status = TC_EUNIQUE;
  /* A stored schema is a transaction of read_feed: other nodes' feeds read it. */
  if (status == 0 && op->expect_rows && op->b->wake) tc__pg_wake_written(op->b->wake, op->tenant);
  op->cb.status(op->arg, status);
}

int tc__pg_schema_write(tc_backend_t *b, const char *tenant_id, const char *version,
                        const char *text, tc_status_cb cb, void *arg) {
  static const char sql[] =
      "INSERT INTO schema_definitions (tenant_id, name, serialized_definition, version)"
      " SELECT $1::text, u.n, convert_to(u.d, 'UTF8'), $2::text"
      " FROM unnest($3::text[], $4::text[]) AS u(n, d)"
      " WHERE NOT EXISTS (SELECT 1 FROM schema_definitions WHERE tenant_id = $1::text"
      "   AND version = $2::text)";
  tc__pg_schema_stmt_t *st;
  size_t n;
  int rc = tc__pg_schema_split(text, &st, &n);
  if (rc) return rc;
  tc__pg_op_t *op = tc__pg_op_new(b, tenant_id, (tc_backend_cb_t){.status = cb}, arg);
  int ok = 0;
  if (op) {
    const char **names = malloc((n + 1) * sizeof *names), **defs = malloc((n + 1) * sizeof *defs);
    const char **v = tc_arena_alloc(&op->mem, 4 * sizeof *v);
    for (size_t i = 0; names && defs && i < n; i++) {
      names[i] = st[i].name;
      defs[i] = st[i].text;
    }
    ok = names && defs && v && (v[0] = op->tenant) && (v[1] = tc_arena_strdup(&op->mem, version)) &&
         (v[2] = tc__pg_op_adopt(op, tc__pg_text_array(names, n))) &&
         (v[3] = tc__pg_op_adopt(op, tc__pg_text_array(defs, n)));
    free(names);
    free(defs);
    op->writes = 1;
    op->expect_rows = n > 0;
    op->pool = b->wpool;
    op->start = tc__pg_start_unit;
    op->reply = reply_status;
    if (ok) tc__pg_unit_stmt(op, "tc_schema_write", sql, 4, v);
  }
  tc__pg_schema_split_free(st, n);
  return tc__pg_op_submit(b, op, ok);
}

/* A schema's text from its rows (column 1, one entity or rule each, in name
 * order), joined by blank lines; malloc'd, NULL when out of memory. */
static char *join_definitions(PGresult *r) {
  size_t len = 1;
  int rows = PQntuples(r);
  for (int i = 0; i < rows; i++) len += (size_t)PQgetlength(r, i, 1) + 2;
  char *text = malloc(len), *p = text;
  if (!text) return NULL;
  for (int i = 0; i < rows; i++) {
    if (i) p += sprintf(p, "\n\n");
    size_t l = (size_t)PQgetlength(r, i, 1);
    memcpy(p, PQgetvalue(r, i, 1), l);
    p += l;
  }
  *p = '\0';
  return text;
}

/* A read on the read pool: one statement, whose parameters are the tenant
 * and, if nparams is 2, param ("" for NULL). */
static int read_stmt(tc_backend_t *b, const char *tenant, const char *param, tc_backend_cb_t cb,
                     void *arg, void (*reply)(tc__pg_op_t *, int, PGresult *const *, size_t),
                     const char *name, const char *sql, int nparams) {
  tc__pg_op_t *op = tc__pg_op_new(b, tenant, cb, arg);
  int ok = 0;
  if (op) {
    const char **v = tc_arena_alloc(&op->mem, 2 * sizeof *v);
    ok = v && (v[0] = op->tenant) && (v[1] = tc_arena_strdup(&op->mem, param));
    op->pool = b->rpool;
    op->start = tc__pg_start_unit;
    op->reply = reply;
    if (ok) tc__pg_unit_stmt(op, name, sql, nparams, v);
  }
  return tc__pg_op_submit(b, op, ok);
}

static void reply_schema(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  tc_schema_cb cb = op->cb.schema;
  PGresult *r = n ? res[0] : NULL;
  if (status == 0 && (!r || PQntuples(r) == 0)) status = TC_ESCHEMA_NOT_FOUND;
  char *text = status ? NULL : join_definitions(r);
  if (!status && !text) status = TC_ENOMEM;
  cb(op->arg, status, text ? PQgetvalue(r, 0, 0) : NULL, text);
  free(text);
}

int tc__pg_schema_read(tc_backend_t *b, const char *tenant_id, const char *version, tc_schema_cb cb,
                       void *arg) {
  static const char head_sql[] =
      "SELECT version, convert_from(serialized_definition, 'UTF8') FROM schema_definitions"
      " WHERE tenant_id = $1 AND version = (SELECT max(version) FROM schema_definitions"
      "   WHERE tenant_id = $1) ORDER BY name";
  static const char at_sql[] =
      "SELECT version, convert_from(serialized_definition, 'UTF8') FROM schema_definitions"
      " WHERE tenant_id = $1 AND version = $2::char(20) ORDER BY name";
  int head = !version || !*version;
  return read_stmt(b, tenant_id, version, (tc_backend_cb_t){.schema = cb}, arg, reply_schema,
                   head ? "tc_schema_head" : "tc_schema_at", head ? head_sql : at_sql,
                   head ? 1 : 2);
}

/* No row: no tenant.  One row with a NULL definition: the head version
 * (NULL: no schema) without its text.  Else the head's rows. */
static void reply_state(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  tc_tenant_state_cb cb = op->cb.tenant_state;
  PGresult *r = n ? res[0] : NULL;
  if (status == 0 && (!r || PQntuples(r) == 0)) status = TC_ENOTFOUND;
  if (status) {
    cb(op->arg, status, NULL, NULL);
    return;
  }
  const char *version = PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0);
  char *text = PQgetisnull(r, 0, 1) ? NULL : join_definitions(r);
  if (!text && !PQgetisnull(r, 0, 1))
    cb(op->arg, TC_ENOMEM, NULL, NULL);
  else
    cb(op->arg, 0, version, text);
  free(text);
}

int tc__pg_tenant_state(tc_backend_t *b, const char *id, const char *known_version,
                        tc_tenant_state_cb cb, void *arg) {
  /* One statement where tenant_get and a head schema_read were two: the
   * tenant row, the head version, and the head's rows only when the caller
   * does not hold that version already ('' when it holds none). */
  static const char sql[] =
      "SELECT h.version, convert_from(s.serialized_definition, 'UTF8')"
      " FROM tenants t"
      " CROSS JOIN (SELECT max(version) AS version FROM schema_definitions"
      "   WHERE tenant_id = $1::text) h"
      " LEFT JOIN schema_definitions s ON s.tenant_id = $1::text AND s.version = h.version"
      "   AND h.version <> $2::char(20)"
      " WHERE t.id = $1::text ORDER BY s.name";
  return read_stmt(b, id, known_version, (tc_backend_cb_t){.tenant_state = cb}, arg, reply_state,
                   "tc_tenant_state", sql, 2);
}

/* The Unix seconds in the first 4 bytes of an rs/xid version (20 chars of
 * base32hex, 0-9a-v): the first 7 characters hold 35 bits. */
static int64_t xid_created_ms(const char *version) {
  uint64_t bits = 0;
  for (int i = 0; i < 7; i++) {
    char c = version[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'v' ? c - 'a' + 10 : -1;
    if (d < 0) return 0;
    bits = bits << 5 | (uint64_t)d;
  }
  return (int64_t)(bits >> 3) * 1000;
}

static void reply_schemas(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  tc_schemas_cb cb = op->cb.schemas;
  if (status || n < 2) {
    cb(op->arg, status ? status : TC_EINTERNAL, NULL, NULL, 0, NULL);
    return;
  }
  PGresult *h = res[0], *r = res[1];
  const char *head = PQgetisnull(h, 0, 0) ? NULL : PQgetvalue(h, 0, 0);
  size_t rows = (size_t)PQntuples(r), take = rows;
  if (op->limit && take > op->limit) take = op->limit;
  tc_schema_row_t *v = malloc((take + 1) * sizeof *v);
  if (!v) {
    cb(op->arg, TC_ENOMEM, NULL, NULL, 0, NULL);
    return;
  }
  for (size_t i = 0; i < take; i++) {
    const char *ver = PQgetvalue(r, (int)i, 0);
    v[i] = (tc_schema_row_t){ver, xid_created_ms(ver)};
  }
  cb(op->arg, 0, head, v, take, rows > take ? PQgetvalue(r, (int)take, 0) : NULL);
  free(v);
}

int tc__pg_schema_list(tc_backend_t *b, const char *tenant_id, const char *before, uint32_t limit,
                       tc_schemas_cb cb, void *arg) {
  static const char head_sql[] = "SELECT max(version) FROM schema_definitions WHERE tenant_id = $1";
  static const char list_sql[] =
      "SELECT DISTINCT version FROM schema_definitions WHERE tenant_id = $1"
      " AND ($2::text = '' OR version <= $2::text) ORDER BY version DESC LIMIT $3::int8";
  tc__pg_op_t *op = tc__pg_op_new(b, tenant_id, (tc_backend_cb_t){.schemas = cb}, arg);
  int ok = 0;
  if (op) {
    const char **v = tc_arena_alloc(&op->mem, 3 * sizeof *v);
    ok = v && (v[0] = op->tenant) && (v[1] = tc_arena_strdup(&op->mem, before));
    if (ok) v[2] = tc__pg_limit_text(op, limit);
    ok = ok && (!limit || v[2]);
    op->limit = limit;
    op->pool = b->rpool;
    op->start = tc__pg_start_unit;
    op->reply = reply_schemas;
    if (ok) {
      tc__pg_unit_stmt(op, "tc_schema_head_version", head_sql, 1, v);
      tc__pg_unit_stmt(op, "tc_schema_list", list_sql, 3, v);
    }
  }
  return tc__pg_op_submit(b, op, ok);
}
