/* The PostgreSQL backend's bundle calls: write, read, delete, in Permify's
 * bundles table (name, tenant_id, payload jsonb: the DataBundle as protojson).
 * Loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* The "@type" member the server's any_to_json gives the payload, which
 * Permify's payload has not, and its any_from_json wants (other hosts' JSON,
 * not an object, is stored as it comes). */
#define BUNDLE_TYPE "{\"@type\":\"type.googleapis.com/base.v1.DataBundle\"}"

static void reply_status(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  (void)res;
  (void)n;
  op->cb.status(op->arg, status);
}

/* The payloads as Permify's jsonb text, and the names, as two text arrays in
 * v[1], v[2]; 0 or a TC_E* code. */
static int bundle_arrays(tc__pg_op_t *op, const tc_bundle_t *bundles, size_t n, const char **v) {
  const char **names = calloc(n + 1, sizeof *names);
  char **json = calloc(n + 1, sizeof *json);
  int rc = names && json ? 0 : TC_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    names[i] = bundles[i].name;
    rc = op->b->host->any_to_json(bundles[i].payload, bundles[i].payload_len, &json[i]);
  }
  if (rc == 0 && (!(v[1] = tc__pg_op_adopt(op, tc__pg_text_array(names, n))) ||
                  !(v[2] = tc__pg_op_adopt(op, tc__pg_text_array((const char **)json, n)))))
    rc = TC_ENOMEM;
  for (size_t i = 0; json && i < n; i++) free(json[i]);
  free(json);
  free(names);
  return rc;
}

int tc__pg_bundle_write(tc_backend_t *b, const char *tenant_id, const tc_bundle_t *bundles,
                        size_t n, tc_status_cb cb, void *arg) {
  static const char sql[] =
      "INSERT INTO bundles (name, payload, tenant_id)"
      " SELECT u.n, CASE WHEN jsonb_typeof(u.p::jsonb) = 'object' THEN u.p::jsonb - '@type'"
      "   ELSE u.p::jsonb END, $1::text"
      " FROM unnest($2::text[], $3::text[]) AS u(n, p)"
      " ON CONFLICT (name, tenant_id) DO UPDATE SET payload = EXCLUDED.payload";
  tc__pg_op_t *op = tc__pg_op_new(b, tenant_id, (tc_backend_cb_t){.status = cb}, arg);
  if (!op) return tc__pg_op_submit(b, op, 0);
  const char **v = tc_arena_alloc(&op->mem, 3 * sizeof *v);
  int rc = v ? bundle_arrays(op, bundles, n, v) : TC_ENOMEM;
  if (rc != 0 && rc != TC_ENOMEM) {
    tc__pg_op_free(op);
    return rc;
  }
  op->writes = 1;
  op->pool = b->wpool;
  op->start = tc__pg_start_unit;
  op->reply = reply_status;
  if (rc == 0) {
    v[0] = op->tenant;
    tc__pg_unit_stmt(op, "tc_bundle_write", sql, 3, v);
  }
  return tc__pg_op_submit(b, op, rc == 0);
}

static void reply_bundle(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  tc_bundle_cb cb = op->cb.bundle;
  if (status == 0 && (!n || PQntuples(res[0]) == 0)) status = TC_EBUNDLE_NOT_FOUND;
  uint8_t *any = NULL;
  size_t len = 0;
  if (status == 0 && (status = op->b->host->any_from_json(PQgetvalue(res[0], 0, 0), &any, &len))) {
    op->b->host->log(TC_LOG_ERROR, "postgres: bundle payload does not convert: %s",
                     PQgetvalue(res[0], 0, 0));
    if (status != TC_ENOMEM) status = TC_EDATASTORE;
  }
  cb(op->arg, status, status ? NULL : any, status ? 0 : len);
  free(any);
}

/* read (is_read) or delete, keyed by (tenant, name). */
static int bundle_keyed(tc_backend_t *b, const char *tenant_id, const char *name, int is_read,
                        tc_backend_cb_t cb, void *arg) {
  static const char read_sql[] =
      "SELECT CASE WHEN jsonb_typeof(payload) = 'object' THEN payload || '" BUNDLE_TYPE
      "'::jsonb"
      " ELSE payload END FROM bundles WHERE tenant_id = $1 AND name = $2";
  static const char delete_sql[] = "DELETE FROM bundles WHERE tenant_id = $1 AND name = $2";
  tc__pg_op_t *op = tc__pg_op_new(b, tenant_id, cb, arg);
  int ok = 0;
  if (op) {
    const char **v = tc_arena_alloc(&op->mem, 2 * sizeof *v);
    ok = v && (v[0] = op->tenant) && (v[1] = tc_arena_strdup(&op->mem, name));
    op->writes = !is_read;
    op->pool = is_read ? b->rpool : b->wpool;
    op->start = tc__pg_start_unit;
    op->reply = is_read ? reply_bundle : reply_status;
    if (ok)
      tc__pg_unit_stmt(op, is_read ? "tc_bundle_read" : "tc_bundle_delete",
                       is_read ? read_sql : delete_sql, 2, v);
  }
  return tc__pg_op_submit(b, op, ok);
}

int tc__pg_bundle_read(tc_backend_t *b, const char *tenant_id, const char *name, tc_bundle_cb cb,
                       void *arg) {
  return bundle_keyed(b, tenant_id, name, 1, (tc_backend_cb_t){.bundle = cb}, arg);
}

int tc__pg_bundle_delete(tc_backend_t *b, const char *tenant_id, const char *name, tc_status_cb cb,
                         void *arg) {
  return bundle_keyed(b, tenant_id, name, 0, (tc_backend_cb_t){.status = cb}, arg);
}
