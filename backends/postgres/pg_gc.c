/* The garbage collector; see pg_gc.h. */
#include "pg_gc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tc__pg_gc_s {
  tc_backend_t *b;
  uv_timer_t timer;
  char **tenants; /* this run's tenant ids */
  size_t n, next;
  uint64_t deadline_ms;
  int busy; /* a statement is in flight */
  int stopping;
  void (*done)(void *arg);
  void *done_arg;
};

/* One tenant, one implicit transaction: the horizon, the deletes and the
 * bookkeeping row see the same snapshot and commit together. */
static const char collect_sql[] =
    "WITH h AS (SELECT id FROM transactions WHERE tenant_id = $1"
    "   AND \"timestamp\" < (now() AT TIME ZONE 'UTC') - make_interval(secs => $2::int)"
    "   ORDER BY id DESC LIMIT 1),"
    " r AS (DELETE FROM relation_tuples WHERE tenant_id = $1 AND expired_tx_id <> " TC_PG_ACTIVE_TX
    "   AND expired_tx_id < (SELECT id FROM h) RETURNING 1),"
    " a AS (DELETE FROM attributes WHERE tenant_id = $1 AND expired_tx_id <> " TC_PG_ACTIVE_TX
    "   AND expired_tx_id < (SELECT id FROM h) RETURNING 1),"
    " t AS (DELETE FROM transactions WHERE tenant_id = $1 AND id < (SELECT id FROM h)"
    "   RETURNING 1),"
    " g AS (INSERT INTO tuplecast_gc (tenant_id, horizon) SELECT $1, id FROM h"
    "   ON CONFLICT (tenant_id) DO UPDATE"
    "   SET horizon = GREATEST(tuplecast_gc.horizon, EXCLUDED.horizon) RETURNING 1)"
    " SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM a), (SELECT count(*) FROM t)";

static void free_tenants(tc__pg_gc_t *g) {
  for (size_t i = 0; i < g->n; i++) free(g->tenants[i]);
  free(g->tenants);
  g->tenants = NULL;
  g->n = g->next = 0;
}

static void on_closed(uv_handle_t *h) {
  tc__pg_gc_t *g = h->data;
  void (*done)(void *) = g->done;
  void *arg = g->done_arg;
  free_tenants(g);
  free(g);
  if (done) done(arg);
}

static void finish_stop(tc__pg_gc_t *g) { uv_close((uv_handle_t *)&g->timer, on_closed); }

static void collect_next(tc__pg_gc_t *g);

static void on_collected(void *arg, int status, PGresult *const *res, size_t n,
                         const char *sqlstate, const char *errmsg) {
  tc__pg_gc_t *g = arg;
  const tc_host_api_t *host = g->b->host;
  const char *tenant = g->tenants[g->next - 1];
  (void)n;
  (void)sqlstate;
  g->busy = 0;
  if (status != 0)
    host->log(TC_LOG_WARN, "postgres gc: tenant %s: %s", tenant, errmsg ? errmsg : "failed");
  else if (strcmp(PQgetvalue(res[0], 0, 0), "0") || strcmp(PQgetvalue(res[0], 0, 2), "0"))
    host->log(TC_LOG_INFO,
              "postgres gc: tenant %s: removed %s tuples, %s attributes, %s transactions", tenant,
              PQgetvalue(res[0], 0, 0), PQgetvalue(res[0], 0, 1), PQgetvalue(res[0], 0, 2));
  if (g->stopping)
    finish_stop(g);
  else
    collect_next(g);
}

static void collect_next(tc__pg_gc_t *g) {
  tc_backend_t *b = g->b;
  if (g->next == g->n || b->host->now_ms() >= g->deadline_ms) {
    if (g->next < g->n)
      b->host->log(TC_LOG_WARN, "postgres gc: timeout after %zu of %zu tenants", g->next, g->n);
    free_tenants(g);
    return;
  }
  char window[24];
  snprintf(window, sizeof window, "%u", b->opts.gc_window_s);
  const char *values[] = {g->tenants[g->next++], window};
  tc__pg_stmt_t st = {"tc_gc_collect", collect_sql, 2, values};
  if (tc__pg_pool_submit(b->rpool, &st, 1, on_collected, g) == 0)
    g->busy = 1;
  else
    free_tenants(g);
}

static void on_tenants(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                       const char *errmsg) {
  tc__pg_gc_t *g = arg;
  (void)n;
  (void)sqlstate;
  g->busy = 0;
  if (g->stopping) {
    finish_stop(g);
    return;
  }
  if (status != 0) {
    g->b->host->log(TC_LOG_WARN, "postgres gc: listing tenants: %s", errmsg ? errmsg : "failed");
    return;
  }
  size_t rows = (size_t)PQntuples(res[0]);
  g->tenants = calloc(rows + 1, sizeof *g->tenants);
  for (size_t i = 0; g->tenants && i < rows; i++)
    if ((g->tenants[g->n] = strdup(PQgetvalue(res[0], (int)i, 0)))) g->n++;
  collect_next(g);
}

static void on_tick(uv_timer_t *t) {
  tc__pg_gc_t *g = t->data;
  if (g->busy || g->n) return; /* the previous run is still going */
  g->deadline_ms = g->b->host->now_ms() + (uint64_t)g->b->opts.gc_timeout_s * 1000;
  tc__pg_stmt_t st = {"tc_gc_tenants", "SELECT id FROM tenants ORDER BY id", 0, NULL};
  if (tc__pg_pool_submit(g->b->rpool, &st, 1, on_tenants, g) == 0) g->busy = 1;
}

int tc__pg_gc_start(tc_backend_t *b, tc__pg_gc_t **out) {
  tc__pg_gc_t *g = calloc(1, sizeof *g);
  if (!g) return TC_ENOMEM;
  g->b = b;
  uv_timer_init(b->loop, &g->timer);
  g->timer.data = g;
  uint64_t every = (uint64_t)b->opts.gc_interval_s * 1000;
  uv_timer_start(&g->timer, on_tick, every, every);
  *out = g;
  return 0;
}

void tc__pg_gc_stop(tc__pg_gc_t *g, void (*done)(void *arg), void *arg) {
  g->stopping = 1;
  g->done = done;
  g->done_arg = arg;
  uv_timer_stop(&g->timer);
  if (!g->busy) finish_stop(g);
}
