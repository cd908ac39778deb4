/* The PostgreSQL backend's life: create (checks, migrations, pools, wake-ups,
 * GC), destroy once every operation was answered, the small calls, and the
 * plugin's function table, its one exported symbol.  Loop thread only
 * (create blocks on a connection of its own).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_gc.h"
#include "pg_internal.h"
#include "pg_migrate.h"
#include "pg_token.h"
#include "pg_wake.h"

/* ---- small calls -------------------------------------------------------------- */

static void stats(tc_backend_t *b, tc_backend_stats_t *out) { *out = b->stats; }

/* The pools, and retries by SQLSTATE, for the server's /metrics. */
static void metrics(tc_backend_t *b, tc_backend_metric_fn emit, void *arg) {
  const struct {
    const char *name;
    const tc__pg_pool_t *pool;
  } pools[] = {{"write", b->wpool}, {"read", b->rpool}};
  for (size_t i = 0; i < 2; i++) {
    tc__pg_pool_stats_t st;
    if (!pools[i].pool) continue;
    tc__pg_pool_stats(pools[i].pool, &st);
    emit(arg, TC_BACKEND_METRIC_POOL_OPEN, pools[i].name, st.ready);
    emit(arg, TC_BACKEND_METRIC_POOL_IN_USE, pools[i].name, st.busy);
    emit(arg, TC_BACKEND_METRIC_POOL_WAITING, pools[i].name, st.waiting);
    emit(arg, TC_BACKEND_METRIC_RECONNECTS, pools[i].name, st.reconnects);
  }
  for (size_t i = 0; i <= TC_PG_RETRY_STATES && b->retried[i].state[0]; i++)
    emit(arg, TC_BACKEND_METRIC_RETRIES, b->retried[i].state, b->retried[i].n);
}

static const char *instance_id(tc_backend_t *b) { return b->instance_id; }

static int token_check(tc_backend_t *b, const char *token, char **errmsg) {
  tc__pg_token_t t;
  int rc = tc__pg_token_parse(token, b->instance_id, &t, errmsg);
  if (rc == 0) tc__pg_token_clear(&t);
  return rc;
}

/* v2.3 readiness: no connection of the write pool is up (the server went
 * away: every link is reconnecting), or SELECT 1 on one of them fails.  A
 * ping counts as an operation, so destroy() waits for its answer. */
typedef struct {
  tc_completion_t c; /* the "no connection" answer, posted */
  tc_backend_t *b;
  tc_status_cb cb;
  void *arg;
} ping_t;

static void ping_answer(ping_t *p, int status) {
  tc_backend_t *b = p->b;
  p->cb(p->arg, status == 0 ? 0 : TC_EUNAVAILABLE);
  free(p);
  b->nops--;
  tc__pg_maybe_close(b);
}

static void on_ping_unit(void *arg, int status, PGresult *const *res, size_t n,
                         const char *sqlstate, const char *errmsg) {
  (void)res, (void)n, (void)sqlstate, (void)errmsg;
  ping_answer(arg, status);
}

static void on_ping_down(tc_completion_t *c) {
  ping_answer(TC_CONTAINER_OF(c, ping_t, c), TC_EUNAVAILABLE);
}

static int ping(tc_backend_t *b, tc_status_cb cb, void *arg) {
  if (b->closing) return TC_EUNAVAILABLE;
  ping_t *p = calloc(1, sizeof *p);
  if (!p) return TC_ENOMEM;
  *p = (ping_t){.c.run = on_ping_down, .b = b, .cb = cb, .arg = arg};
  b->nops++;
  if (!tc__pg_pool_ready(b->wpool)) {
    b->host->post(b->host, &p->c);
    return 0;
  }
  const tc__pg_stmt_t stmt = {.sql = "SELECT 1"};
  int rc = tc__pg_pool_submit(b->wpool, &stmt, 1, on_ping_unit, p);
  if (rc != 0) {
    b->nops--;
    free(p);
  }
  return rc;
}

/* ---- create, destroy ----------------------------------------------------- */

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
  tc__pg_pool_t *pools[2] = {b->wpool, b->rpool};
  for (int i = 0; i < 2; i++)
    if (pools[i])
      tc__pg_pool_close(pools[i], on_pool_closed, b);
    else
      on_pool_closed(b);
}

static void close_wake(void *arg) {
  tc_backend_t *b = arg;
  if (b->wake)
    tc__pg_wake_close(b->wake, close_pools, b);
  else
    close_pools(b);
}

/* Every operation was answered: GC, wake-ups, then the pools. */
void tc__pg_begin_close(tc_backend_t *b) {
  if (b->gc)
    tc__pg_gc_stop(b->gc, close_wake, b);
  else
    close_wake(b);
}

static void destroy(tc_backend_t *b, void (*cb)(void *arg), void *arg) {
  b->destroy_cb = cb;
  b->destroy_arg = arg;
  b->closing = 1;
  tc__pg_maybe_close(b);
}

/* The checks that need a connection, then the migrations; one-line errors. */
static int startup(PGconn *c, const tc__pg_opts_t *o, char *instance, size_t instance_size,
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
    *errmsg = tc_format(
        "track_commit_timestamp is off; Watch needs it: run ALTER SYSTEM SET "
        "track_commit_timestamp = on and restart PostgreSQL (a reload is not "
        "enough)");
    return TC_ECONFIG;
  }
  int version, to, rc = tc__pg_migrate_current(c, &version, errmsg);
  if (rc) return rc;
  if (version < tc__pg_migrate_latest()) {
    if (!o->auto_migrate) {
      *errmsg = tc_format("the database is at migration %d of %d: run tuplecast migrate up",
                          version, tc__pg_migrate_latest());
      return TC_ECONFIG;
    }
    if ((rc = tc__pg_migrate_check_privileges(c, 1, errmsg))) return rc;
    if ((rc = tc__pg_migrate_up(c, &version, &to, errmsg))) return rc;
  }
  if ((rc = tc__pg_migrate_check_privileges(c, 0, errmsg))) return rc;
  r = PQexec(c, "SELECT value FROM tuplecast_meta WHERE key = 'instance_id'");
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    char *m = tc__pg_one_line(PQresultErrorMessage(r));
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
  static const char *const write_setup[] = {"SET default_transaction_isolation = 'serializable'",
                                            NO_PARALLEL, NULL};
  static const char *const read_setup[] = {NO_PARALLEL, NULL};
  tc__pg_pool_opts_t w = {.conninfo = b->conninfo,
                          .size = (int)b->opts.pool_size,
                          .depth = 2,
                          .setup = write_setup,
                          .name = "write",
                          .log = b->host->log};
  tc__pg_pool_opts_t r = {.conninfo = b->conninfo,
                          .size = 2, /* in TC__PG_OTHER_CONNECTIONS */
                          .depth = 4,
                          .name = "read",
                          .setup = read_setup,
                          .log = b->host->log};
  int rc = tc__pg_pool_create(b->loop, &w, &b->wpool);
  if (!rc) rc = tc__pg_pool_create(b->loop, &r, &b->rpool);
  return rc;
}

static int create(const tc_host_api_t *host, const char *uri, const char *const *options,
                  tc_backend_t **out, char **errmsg) {
  *out = NULL;
  *errmsg = NULL;
  tc__pg_opts_t o;
  int rc = tc_host_check(host, "postgres", errmsg);
  if (!rc) rc = tc__pg_opts_parse(options, &o, errmsg);
  if (rc) return rc;
  PGconn *c = tc__pg_connect_blocking(uri ? uri : "", errmsg);
  if (!c) return TC_ECONFIG;
  tc_backend_t *b = calloc(1, sizeof *b);
  if (!b) {
    PQfinish(c);
    return TC_ENOMEM;
  }
  rc = tc__pg_check_connections(c, o.pool_size, host, errmsg);
  if (!rc) rc = startup(c, &o, b->instance_id, sizeof b->instance_id, errmsg);
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
  b->feed = (tc__pg_feed_ctx_t){
      .pool = b->rpool, .host = host, .instance_id = b->instance_id, .stats = &b->stats};
  if (!rc)
    rc = tc__pg_wake_start(b->loop, host, b->conninfo, b->rpool, b->node_id, o.poll_interval_ms,
                           &b->wake);
  if (!rc && o.gc_enabled) rc = tc__pg_gc_start(b, &b->gc);
  if (rc) {
    *errmsg = tc_format("postgres backend: cannot start: %s",
                        rc == TC_ENOMEM ? "out of memory" : "bad pool options");
    /* What started stops on the loop, and the backend frees itself then. */
    b->closing = 2;
    tc__pg_begin_close(b);
    return rc;
  }
  host->log(TC_LOG_INFO, "postgres backend: instance %s, node %s, %u write connections",
            b->instance_id, b->node_id, o.pool_size);
  *out = b;
  return 0;
}

static const tc_backend_api_t api = {
    TC_BACKEND_API_HEADER("postgres", TC_VERSION),
    .create = create,
    .admin = tc__pg_admin,
    .destroy = destroy,
    .instance_id = instance_id,
    .token_check = token_check,
    .tenant_create = tc__pg_tenant_create,
    .tenant_get = tc__pg_tenant_get,
    .tenant_delete = tc__pg_tenant_delete,
    .tenant_list = tc__pg_tenant_list,
    .schema_write = tc__pg_schema_write,
    .schema_read = tc__pg_schema_read,
    .schema_list = tc__pg_schema_list,
    .write = tc__pg_write_batch,
    .read_tuples = tc__pg_read_tuples,
    .read_attrs = tc__pg_read_attrs,
    .head = tc__pg_head,
    .read_changes = tc__pg_read_changes,
    .stats = stats,
    .bundle_write = tc__pg_bundle_write,
    .bundle_read = tc__pg_bundle_read,
    .bundle_delete = tc__pg_bundle_delete,
    .metrics = metrics,
    .ping = ping,
    .read_feed = tc__pg_read_feed,
    .tenant_state = tc__pg_tenant_state,
};

/* The one exported symbol (the build hides everything else). */
TC_BACKEND_ENTRY(api)
