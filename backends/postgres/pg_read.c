/* The PostgreSQL backend's reads: tuples and attributes at a token on the
 * read pool, and the change feed's calls (pg_feed.c) in the tenant's order.
 * Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"
#include "pg_token.h"

/* ---- reads -------------------------------------------------------------------- */

/* Builds the read of read_tuples / read_attrs: visibility by token, the
 * filter, the cursor and the limit. */
static int read_sql(tc__pg_op_t *op, const char *token, const char *cols, const char *table,
                    const tc_tuple_filter_t *tf, const tc_attr_filter_t *af, tc_cursor_t after,
                    uint32_t limit, const char *name) {
  tc__pg_token_t t;
  char *err = NULL;
  int rc = tc__pg_token_parse(token ? token : "", op->b->instance_id, &t, &err);
  if (rc) {
    op->b->host->log(TC_LOG_WARN, "postgres: read with a bad token: %s", err ? err : "");
    free(err);
    return rc;
  }
  char buf[24];
  tc__pg_sql_t s = {.len = 0};
  int head = t.kind == TC_PG_TOKEN_HEAD;
  tc__pg_sql_add(&s, "SELECT %s FROM %s r", cols, table);
  int p_tenant = tc__pg_sql_param(&s, op->tenant);
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)after);
  int p_after = tc__pg_sql_param(&s, tc_arena_strdup(&op->mem, buf));
  int p_limit = s.n + 1;
  s.v[s.n++] = tc__pg_limit_text(op, limit);
  if (limit && !s.v[p_limit - 1]) s.oom = 1;
  if (head) {
    s.mask |= 1u << 10;
  } else {
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)t.x);
    int p_x = tc__pg_sql_param(&s, tc_arena_strdup(&op->mem, buf));
    int p_s = s.n + 1;
    /* NULL: the stored one */
    s.v[s.n++] = t.snapshot ? tc_arena_strdup(&op->mem, t.snapshot) : NULL;
    if (t.snapshot && !s.v[p_s - 1]) s.oom = 1;
    /* Permify's predicate (utils.SnapshotQuery), one form for every token. */
    tc__pg_sql_add(
        &s,
        " CROSS JOIN (SELECT COALESCE($%d::pg_snapshot, (SELECT snapshot FROM transactions"
        " WHERE id = $%d::xid8)) AS snap) s WHERE r.tenant_id = $%d"
        " AND (pg_visible_in_snapshot(r.created_tx_id, s.snap) OR r.created_tx_id = $%d::xid8)"
        " AND (r.expired_tx_id = " TC_PG_ACTIVE_TX
        " OR NOT pg_visible_in_snapshot(r.expired_tx_id, s.snap))"
        " AND r.expired_tx_id <> $%d::xid8",
        p_s, p_x, p_tenant, p_x, p_x);
  }
  if (head)
    tc__pg_sql_add(&s, " WHERE r.tenant_id = $%d AND r.expired_tx_id = " TC_PG_ACTIVE_TX, p_tenant);
  tc__pg_sql_add(&s, " AND r.id >= $%d::int8", p_after);
  if (tf)
    tc__pg_sql_tuple_filter(op, &s, tf);
  else
    tc__pg_sql_attr_filter(op, &s, af);
  tc__pg_sql_add(&s, " ORDER BY r.id LIMIT $%d::int8", p_limit);
  rc = tc__pg_sql_finish(op, &s, name);
  /* Then whether the database has reached the token (reply_reached). */
  if (!rc && !head) {
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)tc__pg_token_need(&t));
    const char **v = tc_arena_alloc(&op->mem, sizeof *v);
    if (!v || !(v[0] = tc_arena_strdup(&op->mem, buf))) rc = TC_ENOMEM;
    if (!rc)
      tc__pg_unit_stmt(op, "tc_token_reached",
                       "SELECT $1::xid8 <= pg_snapshot_xmax(pg_current_snapshot())", 1, v);
  }
  tc__pg_token_clear(&t);
  return rc;
}

/* A read at a token the database has not reached (a forged token, or
 * another database's) is refused rather than answered with what is there. */
static int reply_reached(int status, PGresult *const *res, size_t n) {
  if (status || n < 2) return status;
  return PQntuples(res[1]) == 1 && !strcmp(PQgetvalue(res[1], 0, 0), "t") ? 0 : TC_ESNAP_TOKEN;
}

/* A page read's rows: res[0], of which the first *take are answered (at
 * most op->limit; a row beyond them names the next page, *next).  A
 * nonzero return is the status to answer with. */
static int page_rows(const tc__pg_op_t *op, int status, PGresult *const *res, size_t n,
                     size_t *take, tc_cursor_t *next) {
  status = reply_reached(status, res, n);
  if (status || !n) return status ? status : TC_EINTERNAL;
  size_t rows = (size_t)PQntuples(res[0]);
  *take = op->limit && rows > op->limit ? op->limit : rows;
  *next = rows > *take ? strtoull(PQgetvalue(res[0], (int)*take, 0), NULL, 10) : 0;
  return 0;
}

static void reply_tuples(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  size_t take = 0;
  tc_cursor_t next = 0;
  tc_tuple_t *v = NULL;
  if (!(status = page_rows(op, status, res, n, &take, &next)) &&
      !(v = malloc((take + 1) * sizeof *v)))
    status = TC_ENOMEM;
  for (size_t i = 0; !status && i < take; i++) {
    int k = (int)i;
    PGresult *r = res[0];
    v[i] = (tc_tuple_t){PQgetvalue(r, k, 1), PQgetvalue(r, k, 2), PQgetvalue(r, k, 3),
                        PQgetvalue(r, k, 4), PQgetvalue(r, k, 5), PQgetvalue(r, k, 6)};
  }
  op->cb.tuples(op->arg, status, status ? NULL : v, status ? 0 : take, status ? 0 : next);
  free(v);
}

static void reply_attrs(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  size_t take = 0, done = 0;
  tc_cursor_t next = 0;
  tc_attr_t *v = NULL;
  if (!(status = page_rows(op, status, res, n, &take, &next)) && !(v = calloc(take + 1, sizeof *v)))
    status = TC_ENOMEM;
  for (; !status && done < take; done++) {
    int k = (int)done;
    PGresult *r = res[0];
    uint8_t *any = NULL;
    size_t len = 0;
    int rc = op->b->host->any_from_json(PQgetvalue(r, k, 4), &any, &len);
    if (rc != 0) {
      op->b->host->log(TC_LOG_ERROR, "postgres: attribute row %s: value %s does not convert",
                       PQgetvalue(r, k, 0), PQgetvalue(r, k, 4));
      status = rc == TC_ENOMEM ? rc : TC_EDATASTORE;
      break;
    }
    v[done] = (tc_attr_t){PQgetvalue(r, k, 1), PQgetvalue(r, k, 2), PQgetvalue(r, k, 3), any, len};
  }
  op->cb.attrs(op->arg, status, status ? NULL : v, status ? 0 : take, status ? 0 : next);
  for (size_t i = 0; v && i < done; i++) free((void *)v[i].value);
  free(v);
}

/* A read of tuples (tf) or attributes (af) on the read pool, answered by
 * reply with the rows. */
static int submit_read(tc_backend_t *b, const char *tenant_id, tc_backend_cb_t cb, void *arg,
                       void (*reply)(tc__pg_op_t *op, int status, PGresult *const *res, size_t n),
                       const char *token, const char *cols, const char *table,
                       const tc_tuple_filter_t *tf, const tc_attr_filter_t *af, tc_cursor_t after,
                       uint32_t limit, const char *name) {
  tc__pg_op_t *op = tc__pg_op_new(b, tenant_id, cb, arg);
  int rc = op ? 0 : b->closing ? TC_EUNAVAILABLE : TC_ENOMEM;
  if (rc) return rc;
  op->limit = limit;
  op->pool = b->rpool;
  op->start = tc__pg_start_unit;
  op->reply = reply;
  rc = read_sql(op, token, cols, table, tf, af, after, limit, name);
  if (rc) {
    tc__pg_op_free(op);
    return rc;
  }
  b->stats.reads++;
  return tc__pg_op_submit(b, op, 1);
}

int tc__pg_read_tuples(tc_backend_t *b, const char *tenant_id, const char *token,
                       const tc_tuple_filter_t *f, tc_cursor_t after, uint32_t limit,
                       tc_tuples_cb cb, void *arg) {
  return submit_read(b, tenant_id, (tc_backend_cb_t){.tuples = cb}, arg, reply_tuples, token,
                     "r.id, r.entity_type, r.entity_id, r.relation, r.subject_type, r.subject_id,"
                     " r.subject_relation",
                     "relation_tuples", f, NULL, after, limit, "tc_read_tuples");
}

int tc__pg_read_attrs(tc_backend_t *b, const char *tenant_id, const char *token,
                      const tc_attr_filter_t *f, tc_cursor_t after, uint32_t limit, tc_attrs_cb cb,
                      void *arg) {
  return submit_read(b, tenant_id, (tc_backend_cb_t){.attrs = cb}, arg, reply_attrs, token,
                     "r.id, r.entity_type, r.entity_id, r.attribute, r.value::text", "attributes",
                     NULL, f, after, limit, "tc_read_attrs");
}

/* ---- the feed's calls, in the tenant's order ----------------------------------- */

/* Feed operations start only when first in their queue, so their answer is
 * never kept: it is passed on as it comes. */
static void on_feed_head(void *arg, int status, const char *token) {
  tc__pg_op_t *op = arg;
  op->replied = 1;
  op->cb.head(op->arg, status, token);
  tc__pg_op_complete(op, status, NULL, 0);
}

static void on_feed_changes(void *arg, int status, const tc_change_t *changes, size_t n,
                            const char *last) {
  tc__pg_op_t *op = arg;
  op->replied = 1;
  op->cb.changes(op->arg, status, changes, n, last);
  tc__pg_op_complete(op, status, NULL, 0);
}

static void on_feed_items(void *arg, int status, const tc_feed_item_t *items, size_t n,
                          const char *last) {
  tc__pg_op_t *op = arg;
  op->replied = 1;
  op->cb.feed(op->arg, status, items, n, last);
  tc__pg_op_complete(op, status, NULL, 0);
}

/* A start that failed is answered in the tenant's order with these. */
static void reply_head_error(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  (void)res;
  (void)n;
  op->cb.head(op->arg, status, NULL);
}

static void reply_changes_error(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  (void)res;
  (void)n;
  op->cb.changes(op->arg, status, NULL, 0, op->after_token);
}

static void reply_items_error(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  (void)res;
  (void)n;
  op->cb.feed(op->arg, status, NULL, 0, op->after_token);
}

static int start_head(tc__pg_op_t *op) {
  return tc__pg_feed_head(&op->b->feed, op->tenant, on_feed_head, op);
}

static int start_changes(tc__pg_op_t *op) {
  return tc__pg_feed_read_changes(&op->b->feed, op->tenant, op->after_token, op->upto, op->limit,
                                  on_feed_changes, op);
}

static int start_items(tc__pg_op_t *op) {
  return tc__pg_feed_read_items(&op->b->feed, op->tenant, op->after_token, op->upto, op->limit,
                                on_feed_items, op);
}

int tc__pg_head(tc_backend_t *b, const char *tenant_id, tc_head_cb cb, void *arg) {
  tc__pg_op_t *op = tc__pg_op_new(b, tenant_id, (tc_backend_cb_t){.head = cb}, arg);
  if (op) {
    op->feed = 1;
    op->start = start_head;
    op->reply = reply_head_error;
  }
  return tc__pg_op_submit(b, op, 1);
}

/* read_changes (items 0) or read_feed (items 1) in the tenant's order. */
static int submit_changes(tc_backend_t *b, const char *tenant_id, const char *after,
                          const char *upto, uint32_t limit, tc_backend_cb_t cb, int items,
                          void *arg) {
  tc__pg_op_t *op = tc__pg_op_new(b, tenant_id, cb, arg);
  int ok = 0;
  if (op) {
    op->feed = 1;
    op->limit = limit;
    op->start = items ? start_items : start_changes;
    op->reply = items ? reply_items_error : reply_changes_error;
    ok = (op->after_token = tc_arena_strdup(&op->mem, after)) != NULL;
    if (ok && upto) ok = (op->upto = tc_arena_strdup(&op->mem, upto)) != NULL;
  }
  return tc__pg_op_submit(b, op, ok);
}

int tc__pg_read_changes(tc_backend_t *b, const char *tenant_id, const char *after, const char *upto,
                        uint32_t limit, tc_changes_cb cb, void *arg) {
  return submit_changes(b, tenant_id, after, upto, limit, (tc_backend_cb_t){.changes = cb}, 0, arg);
}

int tc__pg_read_feed(tc_backend_t *b, const char *tenant_id, const char *after, const char *upto,
                     uint32_t limit, tc_feed_cb cb, void *arg) {
  return submit_changes(b, tenant_id, after, upto, limit, (tc_backend_cb_t){.feed = cb}, 1, arg);
}
