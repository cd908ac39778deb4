/* The PostgreSQL backend: the plugin's function table, create/destroy/admin,
 * tenants, schemas, writes and reads, in Permify's table layout
 * (docs/backend-postgres.md).
 *
 * Everything runs on the loop thread.  Each call becomes an operation in its
 * tenant's FIFO; an operation runs as one pipelined unit (one implicit
 * transaction) on the write pool (SERIALIZABLE) or the read pool.  Units on
 * several connections finish in any order, so an operation's results are
 * kept (PQcopyResult) until every earlier operation of its tenant has been
 * answered: callbacks run in submission order per tenant.  Reads wait until
 * the writes submitted before them have committed; writes that only insert
 * tuples overlap each other, other writes wait for the writes before them.
 * The change feed (pg_feed.c) and wake-ups (pg_wake.c) are pg-feed's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_gc.h"
#include "pg_internal.h"
#include "pg_migrate.h"
#include "pg_schema_split.h"
#include "pg_token.h"
#include "pg_wake.h"

#define QUEUE_BUCKETS 1024
#define MAX_STMTS 6 /* transactions row, two deletes, tuples, attribute expire + insert */
#define MAX_PARAMS 16

/* ---- operations ------------------------------------------------------------ */

enum { OP_WAITING, OP_RUNNING, OP_DONE };

typedef struct block_s {
  struct block_s *next;
  max_align_t data[];
} block_t;

typedef struct op_s op_t;

struct pg_queue_s {
  pg_queue_t *hnext; /* hash chain */
  char *tenant;      /* "" for tenant_list, which has no tenant */
  op_t *head, *tail;
  int busy; /* settle() is running on it: do not free */
};

struct op_s {
  op_t *next;
  pg_queue_t *q;
  tc_backend_t *b;
  int state;
  int writes;       /* later reads and writes of the tenant wait for it */
  int insert_only;  /* a write adding tuples only: overlaps writes like it */
  int feed; /* head / read_changes: committed history only, start and answer at once */
  int retries;      /* a data write: retried on serialization failures */
  int expect_rows;  /* schema_write: no row inserted means a duplicate version */
  int replied;
  int (*start)(op_t *op);
  void (*reply)(op_t *op, int status, PGresult *const *res, size_t n);
  void *cb, *arg;
  int status;
  PGresult *res[MAX_STMTS]; /* kept copies, until the op's turn */
  size_t nres;
  /* the unit, kept for retries */
  pg_pool_t *pool;
  pg_stmt_t stmts[MAX_STMTS];
  size_t nstmts;
  unsigned attempt;
  block_t *mem;
  /* inputs, as each kind needs them */
  const char *tenant, *after_token, *upto;
  uint32_t limit;
};

static void *op_alloc(op_t *op, size_t size) {
  block_t *blk = malloc(sizeof *blk + size);
  if (!blk) return NULL;
  blk->next = op->mem;
  op->mem = blk;
  return blk->data;
}

static char *op_strdup(op_t *op, const char *s) {
  if (!s) s = "";
  size_t n = strlen(s) + 1;
  char *d = op_alloc(op, n);
  if (d) memcpy(d, s, n);
  return d;
}

/* Takes ownership of a malloc'd string (NULL: out of memory). */
static char *op_adopt(op_t *op, char *s) {
  if (!s) return NULL;
  char *d = op_strdup(op, s);
  free(s);
  return d;
}

static void op_free(op_t *op) {
  for (size_t i = 0; i < op->nres; i++) PQclear(op->res[i]);
  for (block_t *blk = op->mem, *nx; blk; blk = nx) {
    nx = blk->next;
    free(blk);
  }
  op->b->nops--;
  free(op);
}

/* ---- per-tenant queues ---------------------------------------------------- */

static size_t hash_str(const char *s) {
  size_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h % QUEUE_BUCKETS;
}

static pg_queue_t *queue_get(tc_backend_t *b, const char *tenant) {
  pg_queue_t **slot = &b->queues[hash_str(tenant)];
  for (pg_queue_t *q = *slot; q; q = q->hnext)
    if (!strcmp(q->tenant, tenant)) return q;
  pg_queue_t *q = calloc(1, sizeof *q);
  if (!q || !(q->tenant = strdup(tenant))) {
    free(q);
    return NULL;
  }
  q->hnext = *slot;
  *slot = q;
  return q;
}

static void queue_drop(tc_backend_t *b, pg_queue_t *q) {
  for (pg_queue_t **p = &b->queues[hash_str(q->tenant)]; *p; p = &(*p)->hnext)
    if (*p == q) {
      *p = q->hnext;
      break;
    }
  free(q->tenant);
  free(q);
}

static void begin_close(tc_backend_t *b);

static void on_close_timer(uv_timer_t *t) { begin_close(t->data); }

/* After the last answered operation of a closing backend, shut down on a
 * later turn (we may be inside a pool's callback). */
static void maybe_close(tc_backend_t *b) {
  if (b->closing == 1 && b->nops == 0) {
    b->closing = 2;
    uv_timer_start(&b->close_timer, on_close_timer, 0, 0);
  }
}

/* May op start now, given what is ahead of it?  w: a write ahead has not
 * finished; nw: such a write is not insert-only. */
static int can_start(const op_t *op, int w, int nw) {
  if (op->feed) return 1; /* the feed must not wait behind writes in flight */
  if (!op->writes) return !w;
  return op->insert_only ? !nw : !w;
}

/* Starts the waiting operations that may start; a start that fails makes
 * its op done with that status.  Returns how many failed. */
static int pump(pg_queue_t *q) {
  int w = 0, nw = 0, failed = 0;
  for (op_t *o = q->head; o; o = o->next) {
    if (o->state == OP_WAITING && can_start(o, w, nw)) {
      o->state = OP_RUNNING;
      int rc = o->start(o);
      if (rc) {
        o->state = OP_DONE;
        o->status = rc;
        failed++;
      }
    }
    if (o->state != OP_DONE && o->writes) {
      w = 1;
      if (!o->insert_only) nw = 1;
    }
  }
  return failed;
}

/* Answers the done operations at the head of the queue, in order, and starts
 * what may start then. */
static void settle(pg_queue_t *q) {
  tc_backend_t *b = q->head ? q->head->b : NULL;
  q->busy++;
  do {
    while (q->head && q->head->state == OP_DONE) {
      op_t *op = q->head;
      if (!op->replied) {
        op->replied = 1;
        op->reply(op, op->status, op->res, op->nres);
      }
      q->head = op->next;
      if (!q->head) q->tail = NULL;
      b = op->b;
      op_free(op);
    }
  } while (q->head && pump(q) > 0);
  if (--q->busy == 0 && !q->head && b) queue_drop(b, q);
  if (b) maybe_close(b);
}

/* An operation finished: answer it now if it is first in its queue, else
 * keep copies of its results for its turn. */
static void complete(op_t *op, int status, PGresult *const *res, size_t n) {
  op->state = OP_DONE;
  op->status = status;
  if (op->replied) {
    /* a feed op, answered by its caller */
  } else if (op->q->head == op) {
    op->replied = 1;
    op->reply(op, status, res, n);
  } else {
    for (size_t i = 0; i < n && i < MAX_STMTS; i++) {
      op->res[i] = res[i] ? PQcopyResult(res[i], PG_COPYRES_ATTRS | PG_COPYRES_TUPLES) : NULL;
      op->nres = i + 1;
      if (res[i] && !op->res[i]) op->status = TC_ENOMEM;
    }
  }
  settle(op->q);
}

static op_t *op_new(tc_backend_t *b, const char *tenant, void *cb, void *arg) {
  if (b->closing) return NULL;
  op_t *op = calloc(1, sizeof *op);
  if (!op) return NULL;
  op->b = b;
  op->cb = cb;
  op->arg = arg;
  b->nops++;
  if (!(op->tenant = op_strdup(op, tenant))) {
    op_free(op);
    return NULL;
  }
  return op;
}

/* Queues op behind its tenant's operations and starts it if it may: 0, or
 * the call is refused with a code (and op freed).  ok: the call's inputs were
 * all copied. */
static int op_submit(tc_backend_t *b, op_t *op, int ok) {
  if (!op) return b->closing ? TC_EUNAVAILABLE : TC_ENOMEM;
  pg_queue_t *q = ok ? queue_get(b, op->tenant) : NULL;
  if (!q) {
    op_free(op);
    return TC_ENOMEM;
  }
  int w = 0, nw = 0;
  for (op_t *o = q->head; o; o = o->next)
    if (o->state != OP_DONE && o->writes) {
      w = 1;
      if (!o->insert_only) nw = 1;
    }
  op->q = q;
  if (q->tail)
    q->tail->next = op;
  else
    q->head = op;
  q->tail = op;
  if (!can_start(op, w, nw)) return 0;
  op->state = OP_RUNNING;
  int rc = op->start(op);
  if (rc == 0) return 0;
  /* Refused: op is the tail and nothing else changed. */
  op_t **p = &q->head;
  while (*p != op) p = &(*p)->next;
  *p = NULL;
  q->tail = NULL;
  for (op_t *o = q->head; o; o = o->next) q->tail = o;
  if (!q->head && !q->busy) queue_drop(b, q);
  op_free(op);
  return rc;
}

/* ---- units ---------------------------------------------------------------- */

static int retryable(const char *sqlstate) {
  return sqlstate && (!strcmp(sqlstate, "40001") || !strcmp(sqlstate, "40P01") ||
                      !strcmp(sqlstate, "23505"));
}

static void on_unit(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                    const char *errmsg);

static int unit_submit(op_t *op) {
  return pg_pool_submit(op->pool, op->stmts, op->nstmts, on_unit, op);
}

/* The statement i of op's unit; values are op-owned. */
static void unit_stmt(op_t *op, const char *name, const char *sql, int nparams,
                      const char *const *values) {
  op->stmts[op->nstmts++] = (pg_stmt_t){name, sql, nparams, values};
}

static void on_retry_closed(uv_handle_t *h) { free(h); }

static void on_retry(uv_timer_t *t) {
  op_t *op = t->data;
  uv_close((uv_handle_t *)t, on_retry_closed);
  int rc = unit_submit(op);
  if (rc) complete(op, rc, NULL, 0);
}

/* Permify's backoff before retry i (0-based): 20 ms * 2^min(i,5), at most
 * 1 s, plus up to 50 % jitter. */
static int retry_later(op_t *op) {
  uv_timer_t *t = malloc(sizeof *t);
  if (!t) return TC_ENOMEM;
  unsigned i = op->attempt - 1, shift = i < 5 ? i : 5;
  uint64_t base = 20u << shift;
  if (base > 1000) base = 1000;
  uint32_t rnd = 0;
  uv_random(NULL, NULL, &rnd, sizeof rnd, 0, NULL);
  uv_timer_init(op->b->loop, t);
  t->data = op;
  uv_timer_start(t, on_retry, base + rnd % (base / 2 + 1), 0);
  return 0;
}

static void on_unit(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                    const char *errmsg) {
  op_t *op = arg;
  tc_backend_t *b = op->b;
  const tc_host_api_t *host = b->host;
  if (status == TC_EDATASTORE && op->retries && retryable(sqlstate)) {
    if (op->attempt++ < b->opts.max_retries) {
      host->log(TC_LOG_DEBUG, "postgres: tenant %s: retry %u after %s: %s", op->tenant,
                op->attempt, sqlstate, errmsg ? errmsg : "");
      if (retry_later(op) == 0) return;
    } else {
      host->log(TC_LOG_WARN, "postgres: tenant %s: write failed after %u attempts: %s",
                op->tenant, op->attempt, errmsg ? errmsg : "");
      status = TC_ECONFLICT;
    }
  }
  if (status == TC_EDATASTORE && !op->retries && sqlstate && !strcmp(sqlstate, "23505"))
    status = TC_EUNIQUE; /* tenant_create, schema_write */
  else if (status == TC_EDATASTORE)
    host->log(TC_LOG_ERROR, "postgres: tenant %s: %s %s", op->tenant, sqlstate ? sqlstate : "",
              errmsg ? errmsg : "");
  else if (status == TC_EUNAVAILABLE)
    host->log(TC_LOG_WARN, "postgres: tenant %s: %s", op->tenant,
              errmsg ? errmsg : "connection unavailable");
  complete(op, status, res, n);
}

/* ---- SQL pieces ------------------------------------------------------------- */

/* A statement's text and parameters under construction. */
typedef struct sql_s {
  char text[4096];
  size_t len;
  const char *v[MAX_PARAMS];
  int n;
  unsigned mask; /* which optional parts are present: part of the statement name */
  int oom;
} sql_t;

static void sql_add(sql_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sql_add(sql_t *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(s->text + s->len, sizeof s->text - s->len, fmt, ap);
  va_end(ap);
  if (n > 0) s->len += (size_t)n;
  if (s->len >= sizeof s->text) s->oom = 1; /* never with our fixed fragments */
}

/* Adds a parameter; returns its number. */
static int sql_param(sql_t *s, const char *value) {
  if (!value) s->oom = 1;
  s->v[s->n++] = value;
  return s->n;
}

/* " AND col = $n" when value is set. */
static void sql_eq(op_t *op, sql_t *s, const char *col, const char *value, unsigned bit) {
  if (!value || !*value) return;
  s->mask |= bit;
  sql_add(s, " AND %s = $%d", col, sql_param(s, op_strdup(op, value)));
}

/* " AND col = ANY($n::text[])" when there are ids. */
static void sql_any(op_t *op, sql_t *s, const char *col, const char *const *v, size_t n,
                    unsigned bit) {
  if (!n) return;
  s->mask |= bit;
  sql_add(s, " AND %s = ANY($%d::text[])", col,
          sql_param(s, op_adopt(op, pg_text_array(v, n))));
}

static void sql_tuple_filter(op_t *op, sql_t *s, const tc_tuple_filter_t *f) {
  sql_eq(op, s, "entity_type", f->entity_type, 1);
  sql_any(op, s, "entity_id", f->entity_ids, f->n_entity_ids, 2);
  sql_eq(op, s, "relation", f->relation, 4);
  sql_eq(op, s, "subject_type", f->subject_type, 8);
  sql_any(op, s, "subject_id", f->subject_ids, f->n_subject_ids, 16);
  sql_eq(op, s, "subject_relation", f->subject_relation, 32);
}

static void sql_attr_filter(op_t *op, sql_t *s, const tc_attr_filter_t *f) {
  sql_eq(op, s, "entity_type", f->entity_type, 1);
  sql_any(op, s, "entity_id", f->entity_ids, f->n_entity_ids, 2);
  sql_any(op, s, "attribute", f->attributes, f->n_attributes, 4);
}

/* Moves a built statement into op: its text, name and values, op-owned. */
static int sql_finish(op_t *op, sql_t *s, const char *name_prefix) {
  char name[48];
  snprintf(name, sizeof name, "%s_%u", name_prefix, s->mask);
  const char *text = op_strdup(op, s->text), *nm = op_strdup(op, name);
  const char **values = op_alloc(op, sizeof *values * (size_t)(s->n ? s->n : 1));
  if (s->oom || !text || !nm || !values) return TC_ENOMEM;
  memcpy(values, s->v, sizeof *values * (size_t)s->n);
  unit_stmt(op, nm, text, s->n, values);
  return 0;
}

static char *limit_text(op_t *op, uint32_t limit) {
  if (!limit) return NULL; /* LIMIT NULL: no limit */
  char buf[16];
  snprintf(buf, sizeof buf, "%lu", (unsigned long)limit + 1);
  return op_strdup(op, buf);
}

/* Unix epoch ms of a TIMESTAMP column holding UTC. */
#define EPOCH_MS(col) "(extract(epoch FROM " col ") * 1000)::int8"

/* ---- tenants ------------------------------------------------------------------ */

static void reply_tenant(op_t *op, int status, PGresult *const *res, size_t n) {
  tc_tenant_cb cb = (tc_tenant_cb)op->cb;
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

static int start_unit(op_t *op) { return unit_submit(op); }

static int tenant_op(tc_backend_t *b, const char *id, const char *name, const char *stmt_name,
                     const char *sql, int nparams, int writes, tc_tenant_cb cb, void *arg) {
  op_t *op = op_new(b, id, (void *)cb, arg);
  int ok = 0;
  if (op) {
    const char **v = op_alloc(op, 2 * sizeof *v);
    ok = v && (v[0] = op->tenant) && (v[1] = op_strdup(op, name));
    op->writes = writes;
    op->pool = writes ? b->wpool : b->rpool;
    op->start = start_unit;
    op->reply = reply_tenant;
    if (ok) unit_stmt(op, stmt_name, sql, nparams, v);
  }
  return op_submit(b, op, ok);
}

static int tenant_create(tc_backend_t *b, const char *id, const char *name, tc_tenant_cb cb,
                         void *arg) {
  static const char sql[] = "INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING id, name, "
                            EPOCH_MS("created_at");
  return tenant_op(b, id, name, "tc_tenant_create", sql, 2, 1, cb, arg);
}

static int tenant_get(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg) {
  static const char sql[] = "SELECT id, name, " EPOCH_MS("created_at")
      " FROM tenants WHERE id = $1";
  return tenant_op(b, id, NULL, "tc_tenant_get", sql, 1, 0, cb, arg);
}

static int tenant_delete(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg) {
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

static void reply_tenants(op_t *op, int status, PGresult *const *res, size_t n) {
  tc_tenants_cb cb = (tc_tenants_cb)op->cb;
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

static int tenant_list(tc_backend_t *b, const char *after, uint32_t limit, tc_tenants_cb cb,
                       void *arg) {
  static const char sql[] = "SELECT id, name, " EPOCH_MS("created_at")
      " FROM tenants WHERE id >= $1 ORDER BY id LIMIT $2::int8";
  op_t *op = op_new(b, "", (void *)cb, arg); /* "": no tenant has an empty id */
  int ok = 0;
  if (op) {
    const char **v = op_alloc(op, 2 * sizeof *v);
    ok = v && (v[0] = op_strdup(op, after));
    if (ok) v[1] = limit_text(op, limit);
    ok = ok && (!limit || v[1]);
    op->limit = limit;
    op->pool = b->rpool;
    op->start = start_unit;
    op->reply = reply_tenants;
    if (ok) unit_stmt(op, "tc_tenant_list", sql, 2, v);
  }
  return op_submit(b, op, ok);
}

/* ---- schemas -------------------------------------------------------------------- */

static void reply_status(op_t *op, int status, PGresult *const *res, size_t n) {
  /* schema_write: no row inserted means the version was there already */
  if (status == 0 && n && op->expect_rows && strcmp(PQcmdTuples(res[0]), "0") == 0)
    status = TC_EUNIQUE;
  ((tc_status_cb)op->cb)(op->arg, status);
}

static int schema_write(tc_backend_t *b, const char *tenant_id, const char *version,
                        const char *text, tc_status_cb cb, void *arg) {
  static const char sql[] =
      "INSERT INTO schema_definitions (tenant_id, name, serialized_definition, version)"
      " SELECT $1::text, u.n, convert_to(u.d, 'UTF8'), $2::text"
      " FROM unnest($3::text[], $4::text[]) AS u(n, d)"
      " WHERE NOT EXISTS (SELECT 1 FROM schema_definitions WHERE tenant_id = $1::text"
      "   AND version = $2::text)";
  pg_schema_stmt_t *st;
  size_t n;
  int rc = pg_schema_split(text, &st, &n);
  if (rc) return rc;
  op_t *op = op_new(b, tenant_id, (void *)cb, arg);
  int ok = 0;
  if (op) {
    const char **names = malloc((n + 1) * sizeof *names), **defs = malloc((n + 1) * sizeof *defs);
    const char **v = op_alloc(op, 4 * sizeof *v);
    for (size_t i = 0; names && defs && i < n; i++) {
      names[i] = st[i].name;
      defs[i] = st[i].text;
    }
    ok = names && defs && v && (v[0] = op->tenant) && (v[1] = op_strdup(op, version)) &&
         (v[2] = op_adopt(op, pg_text_array(names, n))) &&
         (v[3] = op_adopt(op, pg_text_array(defs, n)));
    free(names);
    free(defs);
    op->writes = 1;
    op->expect_rows = n > 0;
    op->pool = b->wpool;
    op->start = start_unit;
    op->reply = reply_status;
    if (ok) unit_stmt(op, "tc_schema_write", sql, 4, v);
  }
  pg_schema_split_free(st, n);
  return op_submit(b, op, ok);
}

static void reply_schema(op_t *op, int status, PGresult *const *res, size_t n) {
  tc_schema_cb cb = (tc_schema_cb)op->cb;
  PGresult *r = n ? res[0] : NULL;
  if (status == 0 && (!r || PQntuples(r) == 0)) status = TC_ESCHEMA_NOT_FOUND;
  if (status) {
    cb(op->arg, status, NULL, NULL);
    return;
  }
  size_t len = 1;
  int rows = PQntuples(r);
  for (int i = 0; i < rows; i++) len += (size_t)PQgetlength(r, i, 1) + 2;
  char *text = malloc(len), *p = text;
  if (!text) {
    cb(op->arg, TC_ENOMEM, NULL, NULL);
    return;
  }
  for (int i = 0; i < rows; i++) {
    if (i) p += sprintf(p, "\n\n");
    size_t l = (size_t)PQgetlength(r, i, 1);
    memcpy(p, PQgetvalue(r, i, 1), l);
    p += l;
  }
  *p = '\0';
  cb(op->arg, 0, PQgetvalue(r, 0, 0), text);
  free(text);
}

static int schema_read(tc_backend_t *b, const char *tenant_id, const char *version,
                       tc_schema_cb cb, void *arg) {
  static const char head_sql[] =
      "SELECT version, convert_from(serialized_definition, 'UTF8') FROM schema_definitions"
      " WHERE tenant_id = $1 AND version = (SELECT max(version) FROM schema_definitions"
      "   WHERE tenant_id = $1) ORDER BY name";
  static const char at_sql[] =
      "SELECT version, convert_from(serialized_definition, 'UTF8') FROM schema_definitions"
      " WHERE tenant_id = $1 AND version = $2::char(20) ORDER BY name";
  int head = !version || !*version;
  op_t *op = op_new(b, tenant_id, (void *)cb, arg);
  int ok = 0;
  if (op) {
    const char **v = op_alloc(op, 2 * sizeof *v);
    ok = v && (v[0] = op->tenant) && (v[1] = op_strdup(op, version));
    op->pool = b->rpool;
    op->start = start_unit;
    op->reply = reply_schema;
    if (ok)
      unit_stmt(op, head ? "tc_schema_head" : "tc_schema_at", head ? head_sql : at_sql,
                head ? 1 : 2, v);
  }
  return op_submit(b, op, ok);
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

static void reply_schemas(op_t *op, int status, PGresult *const *res, size_t n) {
  tc_schemas_cb cb = (tc_schemas_cb)op->cb;
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

static int schema_list(tc_backend_t *b, const char *tenant_id, const char *before,
                       uint32_t limit, tc_schemas_cb cb, void *arg) {
  static const char head_sql[] =
      "SELECT max(version) FROM schema_definitions WHERE tenant_id = $1";
  static const char list_sql[] =
      "SELECT DISTINCT version FROM schema_definitions WHERE tenant_id = $1"
      " AND ($2::text = '' OR version <= $2::text) ORDER BY version DESC LIMIT $3::int8";
  op_t *op = op_new(b, tenant_id, (void *)cb, arg);
  int ok = 0;
  if (op) {
    const char **v = op_alloc(op, 3 * sizeof *v);
    ok = v && (v[0] = op->tenant) && (v[1] = op_strdup(op, before));
    if (ok) v[2] = limit_text(op, limit);
    ok = ok && (!limit || v[2]);
    op->limit = limit;
    op->pool = b->rpool;
    op->start = start_unit;
    op->reply = reply_schemas;
    if (ok) {
      unit_stmt(op, "tc_schema_head_version", head_sql, 1, v);
      unit_stmt(op, "tc_schema_list", list_sql, 3, v);
    }
  }
  return op_submit(b, op, ok);
}

/* ---- writes ------------------------------------------------------------------- */

static void reply_write(op_t *op, int status, PGresult *const *res, size_t n) {
  tc_write_cb cb = (tc_write_cb)op->cb;
  char *token = NULL;
  if (status == 0 && n && res[0] && PQntuples(res[0]) == 1) {
    token = pg_token_permify(strtoull(PQgetvalue(res[0], 0, 0), NULL, 10),
                             PQgetvalue(res[0], 0, 1));
    if (!token) status = TC_ENOMEM;
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
  op_t *op = arg;
  if (status == 0) {
    op->b->stats.writes++;
    if (op->b->wake) pg_wake_written(op->b->wake, op->tenant);
  }
  on_unit(arg, status, res, n, sqlstate, errmsg);
}

static int start_write(op_t *op) {
  return pg_pool_submit(op->pool, op->stmts, op->nstmts, on_write_unit, op);
}

/* Column arrays of the batch's tuples as text[] literals. */
static int write_tuples(op_t *op, const tc_write_batch_t *w) {
  static const char sql[] =
      "INSERT INTO relation_tuples (entity_type, entity_id, relation, subject_type, subject_id,"
      " subject_relation, created_tx_id, tenant_id)"
      " SELECT u.et, u.ei, u.r, u.st, u.si, u.sr, pg_current_xact_id(), $1"
      " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])"
      "   AS u(et, ei, r, st, si, sr)"
      " ON CONFLICT ON CONSTRAINT uq_relation_tuple_not_expired DO NOTHING";
  size_t n = w->n_tuples;
  const char **col = malloc((n + 1) * sizeof *col);
  const char **v = op_alloc(op, 7 * sizeof *v);
  int ok = col && v;
  if (ok) v[0] = op->tenant;
  for (int c = 0; ok && c < 6; c++) {
    for (size_t i = 0; i < n; i++) {
      const tc_tuple_t *t = &w->tuples[i];
      const char *f[6] = {t->entity_type, t->entity_id,  t->relation,
                          t->subject_type, t->subject_id, t->subject_relation};
      col[i] = f[c];
    }
    ok = (v[c + 1] = op_adopt(op, pg_text_array(col, n))) != NULL;
  }
  free(col);
  if (ok) unit_stmt(op, "tc_write_tuples", sql, 7, v);
  return ok ? 0 : TC_ENOMEM;
}

/* Each attribute expires the active value of its key, then inserts the new
 * one; values go in as protojson (Permify's jsonb form). */
static int write_attrs(op_t *op, const tc_write_batch_t *w) {
  static const char expire_sql[] =
      "UPDATE attributes a SET expired_tx_id = pg_current_xact_id()"
      " FROM unnest($2::text[], $3::text[], $4::text[]) AS u(et, ei, at)"
      " WHERE a.tenant_id = $1 AND a.expired_tx_id = " PG_ACTIVE_TX
      "   AND a.entity_type = u.et AND a.entity_id = u.ei AND a.attribute = u.at";
  static const char insert_sql[] =
      "INSERT INTO attributes (entity_type, entity_id, attribute, value, tenant_id,"
      " created_tx_id)"
      " SELECT u.et, u.ei, u.at, u.v::jsonb, $1, pg_current_xact_id()"
      " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(et, ei, at, v)";
  size_t n = w->n_attrs;
  int rc = 0;
  char **json = calloc(n + 1, sizeof *json);
  const char **col = malloc((n + 1) * sizeof *col);
  const char **v = op_alloc(op, 5 * sizeof *v);
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
    if (!(v[c + 1] = op_adopt(op, pg_text_array(col, n)))) rc = TC_ENOMEM;
  }
  for (size_t i = 0; json && i < n; i++) free(json[i]);
  free(json);
  free(col);
  if (rc == 0) {
    unit_stmt(op, "tc_write_attrs_expire", expire_sql, 4, v);
    unit_stmt(op, "tc_write_attrs_insert", insert_sql, 5, v);
  }
  return rc;
}

/* UPDATE <table> SET expired_tx_id = <this transaction> for the active rows
 * of the tenant matching the filter. */
static int write_delete(op_t *op, const char *table, const tc_tuple_filter_t *tf,
                        const tc_attr_filter_t *af) {
  sql_t s = {.len = 0};
  sql_add(&s,
          "UPDATE %s SET expired_tx_id = pg_current_xact_id() WHERE tenant_id = $%d"
          " AND expired_tx_id = " PG_ACTIVE_TX,
          table, sql_param(&s, op->tenant));
  if (tf)
    sql_tuple_filter(op, &s, tf);
  else
    sql_attr_filter(op, &s, af);
  return sql_finish(op, &s, tf ? "tc_delete_tuples" : "tc_delete_attrs");
}

static int write_batch(tc_backend_t *b, const tc_write_batch_t *w, tc_write_cb cb, void *arg) {
  static const char tx_sql[] =
      "INSERT INTO transactions (tenant_id) VALUES ($1) RETURNING id::text, snapshot::text";
  op_t *op = op_new(b, w->tenant_id, (void *)cb, arg);
  int rc = op ? 0 : b->closing ? TC_EUNAVAILABLE : TC_ENOMEM;
  if (rc) return rc;
  op->writes = 1;
  op->retries = 1;
  op->insert_only = !w->tuple_delete && !w->attr_delete && !w->n_attrs;
  op->pool = b->wpool;
  op->start = start_write;
  op->reply = reply_write;
  unit_stmt(op, "tc_write_tx", tx_sql, 1, (const char *const *)&op->tenant);
  if (w->tuple_delete) rc = write_delete(op, "relation_tuples", w->tuple_delete, NULL);
  if (!rc && w->attr_delete) rc = write_delete(op, "attributes", NULL, w->attr_delete);
  if (!rc && w->n_tuples) rc = write_tuples(op, w);
  if (!rc && w->n_attrs) rc = write_attrs(op, w);
  if (rc) {
    op_free(op);
    return rc;
  }
  return op_submit(b, op, 1);
}

/* ---- reads -------------------------------------------------------------------- */

/* Builds the read of read_tuples / read_attrs: visibility by token, the
 * filter, the cursor and the limit. */
static int read_sql(op_t *op, const char *token, const char *cols, const char *table,
                    const tc_tuple_filter_t *tf, const tc_attr_filter_t *af, tc_cursor_t after,
                    uint32_t limit, const char *name) {
  pg_token_t t;
  char *err = NULL;
  int rc = pg_token_parse(token ? token : "", op->b->instance_id, &t, &err);
  if (rc) {
    op->b->host->log(TC_LOG_WARN, "postgres: read with a bad token: %s", err ? err : "");
    free(err);
    return rc;
  }
  char buf[24];
  sql_t s = {.len = 0};
  int head = t.kind == PG_TOKEN_HEAD;
  sql_add(&s, "SELECT %s FROM %s r", cols, table);
  int p_tenant = sql_param(&s, op->tenant);
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)after);
  int p_after = sql_param(&s, op_strdup(op, buf));
  int p_limit = s.n + 1;
  s.v[s.n++] = limit_text(op, limit);
  if (limit && !s.v[p_limit - 1]) s.oom = 1;
  if (head) {
    s.mask |= 1u << 10;
  } else {
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)t.x);
    int p_x = sql_param(&s, op_strdup(op, buf));
    int p_s = s.n + 1;
    s.v[s.n++] = t.snapshot ? op_strdup(op, t.snapshot) : NULL; /* NULL: the stored one */
    if (t.snapshot && !s.v[p_s - 1]) s.oom = 1;
    /* Permify's predicate (utils.SnapshotQuery), one form for every token. */
    sql_add(&s,
            " CROSS JOIN (SELECT COALESCE($%d::pg_snapshot, (SELECT snapshot FROM transactions"
            " WHERE id = $%d::xid8)) AS snap) s WHERE r.tenant_id = $%d"
            " AND (pg_visible_in_snapshot(r.created_tx_id, s.snap) OR r.created_tx_id = $%d::xid8)"
            " AND (r.expired_tx_id = " PG_ACTIVE_TX
            " OR NOT pg_visible_in_snapshot(r.expired_tx_id, s.snap))"
            " AND r.expired_tx_id <> $%d::xid8",
            p_s, p_x, p_tenant, p_x, p_x);
  }
  if (head) sql_add(&s, " WHERE r.tenant_id = $%d AND r.expired_tx_id = " PG_ACTIVE_TX, p_tenant);
  sql_add(&s, " AND r.id >= $%d::int8", p_after);
  if (tf)
    sql_tuple_filter(op, &s, tf);
  else
    sql_attr_filter(op, &s, af);
  sql_add(&s, " ORDER BY r.id LIMIT $%d::int8", p_limit);
  pg_token_clear(&t);
  return sql_finish(op, &s, name);
}

static void reply_tuples(op_t *op, int status, PGresult *const *res, size_t n) {
  tc_tuples_cb cb = (tc_tuples_cb)op->cb;
  if (status || !n) {
    cb(op->arg, status ? status : TC_EINTERNAL, NULL, 0, 0);
    return;
  }
  PGresult *r = res[0];
  size_t rows = (size_t)PQntuples(r), take = rows;
  if (op->limit && take > op->limit) take = op->limit;
  tc_tuple_t *v = malloc((take + 1) * sizeof *v);
  if (!v) {
    cb(op->arg, TC_ENOMEM, NULL, 0, 0);
    return;
  }
  for (size_t i = 0; i < take; i++) {
    int k = (int)i;
    v[i] = (tc_tuple_t){PQgetvalue(r, k, 1), PQgetvalue(r, k, 2), PQgetvalue(r, k, 3),
                        PQgetvalue(r, k, 4), PQgetvalue(r, k, 5), PQgetvalue(r, k, 6)};
  }
  cb(op->arg, 0, v, take, rows > take ? strtoull(PQgetvalue(r, (int)take, 0), NULL, 10) : 0);
  free(v);
}

static void reply_attrs(op_t *op, int status, PGresult *const *res, size_t n) {
  tc_attrs_cb cb = (tc_attrs_cb)op->cb;
  if (status || !n) {
    cb(op->arg, status ? status : TC_EINTERNAL, NULL, 0, 0);
    return;
  }
  PGresult *r = res[0];
  size_t rows = (size_t)PQntuples(r), take = rows, done = 0;
  if (op->limit && take > op->limit) take = op->limit;
  tc_attr_t *v = calloc(take + 1, sizeof *v);
  status = v ? 0 : TC_ENOMEM;
  for (; status == 0 && done < take; done++) {
    int k = (int)done;
    uint8_t *any = NULL;
    size_t len = 0;
    status = op->b->host->any_from_json(PQgetvalue(r, k, 4), &any, &len);
    if (status)
      op->b->host->log(TC_LOG_ERROR, "postgres: attribute row %s: value %s does not convert",
                       PQgetvalue(r, k, 0), PQgetvalue(r, k, 4));
    else
      v[done] = (tc_attr_t){PQgetvalue(r, k, 1), PQgetvalue(r, k, 2), PQgetvalue(r, k, 3), any,
                            len};
  }
  if (status)
    cb(op->arg, status == TC_ENOMEM ? status : TC_EDATASTORE, NULL, 0, 0);
  else
    cb(op->arg, 0, v, take, rows > take ? strtoull(PQgetvalue(r, (int)take, 0), NULL, 10) : 0);
  for (size_t i = 0; v && i < done; i++) free((void *)v[i].value);
  free(v);
}

/* A read of tuples (tf) or attributes (af) on the read pool, answered by
 * reply with the rows. */
static int submit_read(tc_backend_t *b, const char *tenant_id, void *cb, void *arg,
                       void (*reply)(op_t *op, int status, PGresult *const *res, size_t n),
                       const char *token, const char *cols, const char *table,
                       const tc_tuple_filter_t *tf, const tc_attr_filter_t *af, tc_cursor_t after,
                       uint32_t limit, const char *name) {
  op_t *op = op_new(b, tenant_id, cb, arg);
  int rc = op ? 0 : b->closing ? TC_EUNAVAILABLE : TC_ENOMEM;
  if (rc) return rc;
  op->limit = limit;
  op->pool = b->rpool;
  op->start = start_unit;
  op->reply = reply;
  rc = read_sql(op, token, cols, table, tf, af, after, limit, name);
  if (rc) {
    op_free(op);
    return rc;
  }
  b->stats.reads++;
  return op_submit(b, op, 1);
}

static int read_tuples(tc_backend_t *b, const char *tenant_id, const char *token,
                       const tc_tuple_filter_t *f, tc_cursor_t after, uint32_t limit,
                       tc_tuples_cb cb, void *arg) {
  return submit_read(b, tenant_id, (void *)cb, arg, reply_tuples, token,
                     "r.id, r.entity_type, r.entity_id, r.relation, r.subject_type, r.subject_id,"
                     " r.subject_relation",
                     "relation_tuples", f, NULL, after, limit, "tc_read_tuples");
}

static int read_attrs(tc_backend_t *b, const char *tenant_id, const char *token,
                      const tc_attr_filter_t *f, tc_cursor_t after, uint32_t limit,
                      tc_attrs_cb cb, void *arg) {
  return submit_read(b, tenant_id, (void *)cb, arg, reply_attrs, token,
                     "r.id, r.entity_type, r.entity_id, r.attribute, r.value::text", "attributes",
                     NULL, f, after, limit, "tc_read_attrs");
}

/* ---- the feed's calls, in the tenant's order ----------------------------------- */

/* Feed operations start only when first in their queue, so their answer is
 * never kept: it is passed on as it comes. */
static void on_feed_head(void *arg, int status, const char *token) {
  op_t *op = arg;
  op->replied = 1;
  ((tc_head_cb)op->cb)(op->arg, status, token);
  complete(op, status, NULL, 0);
}

static void on_feed_changes(void *arg, int status, const tc_change_t *changes, size_t n,
                            const char *last) {
  op_t *op = arg;
  op->replied = 1;
  ((tc_changes_cb)op->cb)(op->arg, status, changes, n, last);
  complete(op, status, NULL, 0);
}

/* A start that failed is answered in the tenant's order with these. */
static void reply_head_error(op_t *op, int status, PGresult *const *res, size_t n) {
  (void)res;
  (void)n;
  ((tc_head_cb)op->cb)(op->arg, status, NULL);
}

static void reply_changes_error(op_t *op, int status, PGresult *const *res, size_t n) {
  (void)res;
  (void)n;
  ((tc_changes_cb)op->cb)(op->arg, status, NULL, 0, op->after_token);
}

static int start_head(op_t *op) {
  return pg_feed_head(&op->b->feed, op->tenant, on_feed_head, op);
}

static int start_changes(op_t *op) {
  return pg_feed_read_changes(&op->b->feed, op->tenant, op->after_token, op->upto, op->limit,
                              on_feed_changes, op);
}

static int head(tc_backend_t *b, const char *tenant_id, tc_head_cb cb, void *arg) {
  op_t *op = op_new(b, tenant_id, (void *)cb, arg);
  if (op) {
    op->feed = 1;
    op->start = start_head;
    op->reply = reply_head_error;
  }
  return op_submit(b, op, 1);
}

static int read_changes(tc_backend_t *b, const char *tenant_id, const char *after,
                        const char *upto, uint32_t limit, tc_changes_cb cb, void *arg) {
  op_t *op = op_new(b, tenant_id, (void *)cb, arg);
  int ok = 0;
  if (op) {
    op->feed = 1;
    op->limit = limit;
    op->start = start_changes;
    op->reply = reply_changes_error;
    ok = (op->after_token = op_strdup(op, after)) != NULL;
    if (ok && upto) ok = (op->upto = op_strdup(op, upto)) != NULL;
  }
  return op_submit(b, op, ok);
}

/* ---- small calls -------------------------------------------------------------- */

static void stats(tc_backend_t *b, tc_backend_stats_t *out) { *out = b->stats; }

static const char *instance_id(tc_backend_t *b) { return b->instance_id; }

static int token_check(tc_backend_t *b, const char *token, char **errmsg) {
  pg_token_t t;
  int rc = pg_token_parse(token, b->instance_id, &t, errmsg);
  if (rc == 0) pg_token_clear(&t);
  return rc;
}

/* ---- create, destroy, admin ----------------------------------------------------- */

static void backend_free(tc_backend_t *b) {
  free(b->queues);
  free(b->conninfo);
  free(b);
}

static void on_close_timer_closed(uv_handle_t *h) {
  tc_backend_t *b = h->data;
  void (*cb)(void *) = b->destroy_cb;
  void *arg = b->destroy_arg;
  backend_free(b);
  if (cb) cb(arg);
}

static void on_pool_closed(void *arg) {
  tc_backend_t *b = arg;
  if (++b->closed_parts == 2) uv_close((uv_handle_t *)&b->close_timer, on_close_timer_closed);
}

static void close_pools(void *arg) {
  tc_backend_t *b = arg;
  pg_pool_t *pools[2] = {b->wpool, b->rpool};
  for (int i = 0; i < 2; i++)
    if (pools[i])
      pg_pool_close(pools[i], on_pool_closed, b);
    else
      on_pool_closed(b);
}

static void close_wake(void *arg) {
  tc_backend_t *b = arg;
  if (b->wake)
    pg_wake_close(b->wake, close_pools, b);
  else
    close_pools(b);
}

/* Every operation was answered: GC, wake-ups, then the pools. */
static void begin_close(tc_backend_t *b) {
  if (b->gc)
    pg_gc_stop(b->gc, close_wake, b);
  else
    close_wake(b);
}

static void destroy(tc_backend_t *b, void (*cb)(void *arg), void *arg) {
  b->destroy_cb = cb;
  b->destroy_arg = arg;
  b->closing = 1;
  maybe_close(b);
}

/* The checks that need a connection, then the migrations; one-line errors. */
static int startup(PGconn *c, const pg_opts_t *o, char *instance, size_t instance_size,
                   char **errmsg) {
  if (PQserverVersion(c) < 130008) {
    const char *v = PQparameterStatus(c, "server_version");
    *errmsg = tc_format("PostgreSQL 13.8 or newer is required, the server is %.*s",
                        v ? (int)strcspn(v, " ") : 1, v ? v : "?");
    return TC_ECONFIG;
  }
  PGresult *r = PQexec(c, "SHOW track_commit_timestamp");
  int off = PQresultStatus(r) == PGRES_TUPLES_OK && !strcmp(PQgetvalue(r, 0, 0), "off");
  PQclear(r);
  if (off) {
    *errmsg = tc_format("track_commit_timestamp is off; Watch needs it: run ALTER SYSTEM SET "
                        "track_commit_timestamp = on and restart PostgreSQL (a reload is not "
                        "enough)");
    return TC_ECONFIG;
  }
  int version, to, rc = pg_migrate_current(c, &version, errmsg);
  if (rc) return rc;
  if (version < pg_migrate_latest()) {
    if (!o->auto_migrate) {
      *errmsg = tc_format("the database is at migration %d of %d: run tuplecast migrate up",
                          version, pg_migrate_latest());
      return TC_ECONFIG;
    }
    if ((rc = pg_migrate_check_privileges(c, 1, errmsg))) return rc;
    if ((rc = pg_migrate_up(c, &version, &to, errmsg))) return rc;
  }
  if ((rc = pg_migrate_check_privileges(c, 0, errmsg))) return rc;
  r = PQexec(c, "SELECT value FROM tuplecast_meta WHERE key = 'instance_id'");
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    char *m = pg_one_line(PQresultErrorMessage(r));
    *errmsg = tc_format("reading the instance id from tuplecast_meta: %s",
                        m && *m ? m : "no row instance_id");
    free(m);
    PQclear(r);
    return TC_EDATASTORE;
  }
  snprintf(instance, instance_size, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return 0;
}

/* Every statement here is a short index walk.  Past a cost of about 1000
 * the planner hands the change feed's page query to parallel workers, whose
 * start-up turned a 1.6 ms query into 10-20 ms (a catch-up of 100,000
 * transactions fell from about 60,000 to 17,000 changes/s once the tenant
 * had a million tuples), so these sessions run without them. */
#define NO_PARALLEL "SET max_parallel_workers_per_gather = 0"

static int make_pools(tc_backend_t *b) {
  static const char *const write_setup[] = {
      "SET default_transaction_isolation = 'serializable'", NO_PARALLEL, NULL};
  static const char *const read_setup[] = {NO_PARALLEL, NULL};
  pg_pool_opts_t w = {.conninfo = b->conninfo, .size = (int)b->opts.pool_size, .depth = 2,
                      .setup = write_setup, .name = "write", .log = b->host->log};
  pg_pool_opts_t r = {.conninfo = b->conninfo, .size = 2, .depth = 4, .name = "read",
                      .setup = read_setup, .log = b->host->log};
  int rc = pg_pool_create(b->loop, &w, &b->wpool);
  if (!rc) rc = pg_pool_create(b->loop, &r, &b->rpool);
  return rc;
}

static int create(const tc_host_api_t *host, const char *uri, const char *const *options,
                  tc_backend_t **out, char **errmsg) {
  *out = NULL;
  *errmsg = NULL;
  pg_opts_t o;
  int rc = pg_opts_parse(options, &o, errmsg);
  if (rc) return rc;
  PGconn *c = pg_connect_blocking(uri ? uri : "", errmsg);
  if (!c) return TC_ECONFIG;
  tc_backend_t *b = calloc(1, sizeof *b);
  if (!b) {
    PQfinish(c);
    return TC_ENOMEM;
  }
  rc = startup(c, &o, b->instance_id, sizeof b->instance_id, errmsg);
  PQfinish(c);
  b->host = host;
  b->loop = host->loop;
  b->opts = o;
  b->conninfo = strdup(uri ? uri : "");
  b->queues = calloc(QUEUE_BUCKETS, sizeof *b->queues);
  if (!rc && (!b->conninfo || !b->queues)) rc = TC_ENOMEM;
  if (rc) {
    backend_free(b);
    return rc;
  }
  if (o.node_id) {
    snprintf(b->node_id, sizeof b->node_id, "%s", o.node_id);
    b->opts.node_id = NULL; /* it pointed into the borrowed options */
  } else {
    unsigned char rnd[8];
    uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL);
    for (size_t i = 0; i < sizeof rnd; i++) snprintf(b->node_id + 2 * i, 3, "%02x", rnd[i]);
  }
  uv_timer_init(b->loop, &b->close_timer);
  b->close_timer.data = b;
  rc = make_pools(b);
  b->feed = (pg_feed_ctx_t){b->rpool, host, b->instance_id, &b->stats};
  if (!rc)
    rc = pg_wake_start(b->loop, host, b->conninfo, b->rpool, b->node_id, o.poll_interval_ms,
                       &b->wake);
  if (!rc && o.gc_enabled) rc = pg_gc_start(b, &b->gc);
  if (rc) {
    *errmsg = tc_format("postgres backend: cannot start: %s",
                        rc == TC_ENOMEM ? "out of memory" : "bad pool options");
    /* What started stops on the loop, and the backend frees itself then. */
    b->closing = 2;
    begin_close(b);
    return rc;
  }
  host->log(TC_LOG_INFO, "postgres backend: instance %s, node %s, %u write connections",
            b->instance_id, b->node_id, o.pool_size);
  *out = b;
  return 0;
}

static int admin(const char *uri, const char *const *options, const char *command, char **out) {
  pg_opts_t o;
  char *err = NULL;
  *out = NULL;
  int rc = pg_opts_parse(options, &o, &err);
  PGconn *c = rc ? NULL : pg_connect_blocking(uri ? uri : "", &err);
  if (!rc && !c) rc = TC_ECONFIG;
  if (!rc && !strcmp(command, "migrate status")) {
    rc = pg_migrate_status(c, out, &err);
  } else if (!rc && !strcmp(command, "migrate up")) {
    int from, to;
    if (!(rc = pg_migrate_check_privileges(c, 1, &err)) &&
        !(rc = pg_migrate_up(c, &from, &to, &err)))
      *out = from == to ? tc_format("database already at migration %d of %d, nothing to do\n", to,
                                    pg_migrate_latest())
                        : tc_format("migrated the database from migration %d to %d\n", from, to);
  } else if (!rc) {
    err = tc_format("unknown command \"%s\" (known: migrate up, migrate status)", command);
    rc = TC_EINVAL;
  }
  PQfinish(c);
  if (rc) {
    free(*out);
    *out = tc_format("%s\n", err ? err : "out of memory");
  }
  free(err);
  return rc;
}

static const tc_backend_api_t api = {
    .magic = TC_BACKEND_MAGIC,
    .abi_major = TC_BACKEND_ABI_MAJOR,
    .abi_minor = TC_BACKEND_ABI_MINOR,
    .struct_size = sizeof(tc_backend_api_t),
    .build_fingerprint = TC_BACKEND_FINGERPRINT,
    .name = "postgres",
    .version = "1.0.0",
    .create = create,
    .admin = admin,
    .destroy = destroy,
    .instance_id = instance_id,
    .token_check = token_check,
    .tenant_create = tenant_create,
    .tenant_get = tenant_get,
    .tenant_delete = tenant_delete,
    .tenant_list = tenant_list,
    .schema_write = schema_write,
    .schema_read = schema_read,
    .schema_list = schema_list,
    .write = write_batch,
    .read_tuples = read_tuples,
    .read_attrs = read_attrs,
    .head = head,
    .read_changes = read_changes,
    .stats = stats,
};

/* The one exported symbol (the build hides everything else). */
TC_EXPORT const tc_backend_api_t *tc_backend_entry_v2(void);

TC_EXPORT const tc_backend_api_t *tc_backend_entry_v2(void) { return &api; }
