/* The PostgreSQL backend's scheduler: operations, per-tenant FIFOs and
 * units (docs/backend-postgres.md).
 *
 * Everything runs on the loop thread.  Each call becomes an operation in its
 * tenant's FIFO; an operation runs as one pipelined unit (one implicit
 * transaction) on the write pool (SERIALIZABLE) or the read pool.  Units on
 * several connections finish in any order, so each tenant's FIFO is an
 * in-order delivery queue (the support library's tc_order_t) and an
 * operation's results are kept (PQcopyResult) until every earlier operation
 * of its tenant has been answered: callbacks run in submission order per
 * tenant.  On top of that order this file decides which operation may start:
 * reads wait until the writes submitted before them have committed; writes
 * that only insert tuples overlap each other, other writes wait for the
 * writes before them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

#define OP_OF(item) TC_CONTAINER_OF(item, tc__pg_op_t, order)

/* Takes ownership of a malloc'd string (NULL: out of memory). */
char *tc__pg_op_adopt(tc__pg_op_t *op, char *s) {
  if (!s) return NULL;
  char *d = tc_arena_strdup(&op->mem, s);
  free(s);
  return d;
}

void tc__pg_op_free(tc__pg_op_t *op) {
  for (size_t i = 0; i < op->nres; i++) PQclear(op->res[i]);
  tc_arena_free(&op->mem);
  op->b->nops--;
  free(op);
}

/* ---- per-tenant queues ---------------------------------------------------- */

static size_t hash_str(const char *s) {
  return (size_t)(tc_hash(TC_HASH_INIT, s, strlen(s)) % QUEUE_BUCKETS);
}

static tc__pg_queue_t *queue_get(tc_backend_t *b, const char *tenant) {
  tc__pg_queue_t **slot = &b->queues[hash_str(tenant)];
  for (tc__pg_queue_t *q = *slot; q; q = q->hnext)
    if (!strcmp(q->tenant, tenant)) return q;
  tc__pg_queue_t *q = calloc(1, sizeof *q);
  if (!q || !(q->tenant = strdup(tenant))) {
    free(q);
    return NULL;
  }
  q->hnext = *slot;
  *slot = q;
  return q;
}

static void queue_drop(tc_backend_t *b, tc__pg_queue_t *q) {
  for (tc__pg_queue_t **p = &b->queues[hash_str(q->tenant)]; *p; p = &(*p)->hnext)
    if (*p == q) {
      *p = q->hnext;
      break;
    }
  free(q->tenant);
  free(q);
}


static void on_close_timer(uv_timer_t *t) { tc__pg_begin_close(t->data); }

/* After the last answered operation of a closing backend, shut down on a
 * later turn (we may be inside a pool's callback). */
void tc__pg_maybe_close(tc_backend_t *b) {
  if (b->closing == 1 && b->nops == 0) {
    b->closing = 2;
    uv_timer_start(&b->close_timer, on_close_timer, 0, 0);
  }
}

/* May op start now, given what is ahead of it?  w: a write ahead has not
 * finished; nw: such a write is not insert-only. */
static int can_start(const tc__pg_op_t *op, int w, int nw) {
  if (op->feed) return 1; /* the feed must not wait behind writes in flight */
  if (!op->writes) return !w;
  return op->insert_only ? !nw : !w;
}

/* Notes in *w and *nw a write of o that has not finished. */
static void note_write(const tc__pg_op_t *o, int *w, int *nw) {
  if (!o->order.finished && o->writes) {
    *w = 1;
    if (!o->insert_only) *nw = 1;
  }
}

/* Starts the waiting operations that may start; a start that fails makes
 * its op finished with that status.  Returns how many failed. */
static int pump(tc__pg_queue_t *q) {
  int w = 0, nw = 0, failed = 0;
  for (tc_order_item_t *it = q->order.head; it; it = it->next) {
    tc__pg_op_t *o = OP_OF(it);
    if (!o->running && !it->finished && can_start(o, w, nw)) {
      o->running = 1;
      int rc = o->start(o);
      if (rc) {
        tc_order_finish(it);
        o->status = rc;
        failed++;
      }
    }
    note_write(o, &w, &nw);
  }
  return failed;
}

/* Answers the finished operations at the head of the queue, in order, and
 * starts what may start then. */
static void settle(tc__pg_queue_t *q) {
  tc_backend_t *b = q->order.head ? OP_OF(q->order.head)->b : NULL;
  q->busy++;
  do {
    for (tc_order_item_t *it; (it = tc_order_pop(&q->order));) {
      tc__pg_op_t *op = OP_OF(it);
      if (!op->replied) {
        op->replied = 1;
        op->reply(op, op->status, op->res, op->nres);
      }
      b = op->b;
      tc__pg_op_free(op);
    }
  } while (q->order.head && pump(q) > 0);
  if (--q->busy == 0 && !q->order.head && b) queue_drop(b, q);
  if (b) tc__pg_maybe_close(b);
}

/* An operation finished: answer it now if it is first in its queue, else
 * keep copies of its results for its turn. */
void tc__pg_op_complete(tc__pg_op_t *op, int status, PGresult *const *res, size_t n) {
  tc_order_finish(&op->order);
  op->status = status;
  if (op->replied) {
    /* a feed op, answered by its caller */
  } else if (op->q->order.head == &op->order) {
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

tc__pg_op_t *tc__pg_op_new(tc_backend_t *b, const char *tenant, tc_backend_cb_t cb, void *arg) {
  if (b->closing) return NULL;
  tc__pg_op_t *op = calloc(1, sizeof *op);
  if (!op) return NULL;
  op->b = b;
  op->cb = cb;
  op->arg = arg;
  b->nops++;
  if (!(op->tenant = tc_arena_strdup(&op->mem, tenant))) {
    tc__pg_op_free(op);
    return NULL;
  }
  return op;
}

/* Queues op behind its tenant's operations and starts it if it may: 0, or
 * the call is refused with a code (and op freed).  ok: the call's inputs were
 * all copied. */
int tc__pg_op_submit(tc_backend_t *b, tc__pg_op_t *op, int ok) {
  if (!op) return b->closing ? TC_EUNAVAILABLE : TC_ENOMEM;
  tc__pg_queue_t *q = ok ? queue_get(b, op->tenant) : NULL;
  if (!q) {
    tc__pg_op_free(op);
    return TC_ENOMEM;
  }
  int w = 0, nw = 0;
  for (tc_order_item_t *it = q->order.head; it; it = it->next) note_write(OP_OF(it), &w, &nw);
  op->q = q;
  if (can_start(op, w, nw)) {
    /* Started before it is queued: its completion comes on a later turn. */
    op->running = 1;
    int rc = op->start(op);
    if (rc != 0) { /* refused: nothing changed */
      if (!q->order.head && !q->busy) queue_drop(b, q);
      tc__pg_op_free(op);
      return rc;
    }
  }
  tc_order_push(&q->order, &op->order);
  return 0;
}

/* ---- units ---------------------------------------------------------------- */

/* A serialization failure or deadlock rolled the unit's one transaction
 * back, whatever it was (a data write, a schema write, tenancy): running it
 * again is safe.  A unique violation is a data write's race with another
 * insert of the same row only (for tenant_create and schema_write it is the
 * answer, TC_EUNIQUE). */
static int retryable(const tc__pg_op_t *op, const char *sqlstate) {
  if (!sqlstate) return 0;
  if (!strcmp(sqlstate, "40001") || !strcmp(sqlstate, "40P01")) return 1;
  return op->retries && !strcmp(sqlstate, "23505");
}


static int unit_submit(tc__pg_op_t *op) {
  return tc__pg_pool_submit(op->pool, op->stmts, op->nstmts, tc__pg_on_unit, op);
}

/* The statement i of op's unit; values are op-owned. */
void tc__pg_unit_stmt(tc__pg_op_t *op, const char *name, const char *sql, int nparams,
                      const char *const *values) {
  op->stmts[op->nstmts++] = (tc__pg_stmt_t){name, sql, nparams, values};
}

int tc__pg_start_unit(tc__pg_op_t *op) { return unit_submit(op); }

static void on_retry_closed(uv_handle_t *h) { free(h); }

static void on_retry(uv_timer_t *t) {
  tc__pg_op_t *op = t->data;
  uv_close((uv_handle_t *)t, on_retry_closed);
  int rc = unit_submit(op);
  if (rc) tc__pg_op_complete(op, rc, NULL, 0);
}

/* Permify's backoff before retry i (0-based): 20 ms * 2^min(i,5), at most
 * 1 s, plus up to 50 % jitter. */
static int retry_later(tc__pg_op_t *op) {
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

/* Counts a retry under its SQLSTATE, or "other" once the slots are taken. */
static void count_retry(tc_backend_t *b, const char *sqlstate) {
  size_t i = 0;
  while (i < TC_PG_RETRY_STATES && b->retried[i].state[0] && strcmp(b->retried[i].state, sqlstate))
    i++;
  if (i < TC_PG_RETRY_STATES && !b->retried[i].state[0])
    snprintf(b->retried[i].state, sizeof b->retried[i].state, "%s", sqlstate);
  if (i == TC_PG_RETRY_STATES) snprintf(b->retried[i].state, sizeof b->retried[i].state, "other");
  b->retried[i].n++;
}

void tc__pg_on_unit(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                    const char *errmsg) {
  tc__pg_op_t *op = arg;
  tc_backend_t *b = op->b;
  const tc_host_api_t *host = b->host;
  if (status == TC_EDATASTORE && retryable(op, sqlstate)) {
    if (op->attempt++ < b->opts.max_retries) {
      count_retry(b, sqlstate);
      host->log(TC_LOG_DEBUG, "postgres: tenant %s: retry %u after %s: %s", op->tenant, op->attempt,
                sqlstate, errmsg ? errmsg : "");
      if (retry_later(op) == 0) return;
    } else {
      host->log(TC_LOG_WARN, "postgres: tenant %s: %s failed after %u attempts: %s", op->tenant,
                op->retries ? "write" : "statement sequence", op->attempt, errmsg ? errmsg : "");
      status = TC_ECONFLICT;
    }
  }
  /* Only a change can have an unknown outcome; a read just failed. */
  if (status == TC_EOUTCOME_UNKNOWN && !op->writes) status = TC_EUNAVAILABLE;
  if (status == TC_EDATASTORE && !op->retries && sqlstate && !strcmp(sqlstate, "23505"))
    status = TC_EUNIQUE; /* tenant_create, schema_write */
  else if (status == TC_EDATASTORE)
    host->log(TC_LOG_ERROR, "postgres: tenant %s: %s %s", op->tenant, sqlstate ? sqlstate : "",
              errmsg ? errmsg : "");
  else if (status == TC_EUNAVAILABLE || status == TC_EOUTCOME_UNKNOWN)
    host->log(TC_LOG_WARN, "postgres: tenant %s: %s", op->tenant,
              errmsg ? errmsg : "connection unavailable");
  tc__pg_op_complete(op, status, res, n);
}
