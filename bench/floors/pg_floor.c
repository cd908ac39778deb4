/* tuplecast-pg-floor: the write floor on PostgreSQL.  A raw libpq client does
 * what a Data.Write of n tuples costs in Permify's layout, and nothing else:
 * per transaction `INSERT INTO transactions … RETURNING id, snapshot` and one
 * multi-row `INSERT INTO relation_tuples … ON CONFLICT … DO NOTHING`, sent as
 * one pipelined implicit-transaction unit (statements; Sync) on connections
 * whose default isolation is SERIALIZABLE — the fastest failure-isolated
 * shape measured (docs/backend-postgres.md, "Measurements behind these
 * choices").  K connections, D units in flight on
 * each, for a fixed duration, from one thread polling every socket.
 *
 * It prints the same figures as tuplecast-bench's write scenario (scenario
 * "write", name "pg-floor") and appends them as one JSON line, so the harness
 * joins the two by batch and concurrency (K × D).
 *
 * The tables live in their own schema (tc_floor by default), created with
 * IF NOT EXISTS: a tuplecast server on the same database is not disturbed.
 *
 * Ownership: main owns the connections and the report; nothing outlives it.
 */
#include "bench.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define ID_LEN 64
#define PROG "tuplecast-pg-floor"

typedef struct {
  PGconn *pg;
  int64_t *sent_ns; /* ring of the units in flight, oldest first */
  int head, n;
  int failed;     /* the oldest unit saw an error */
  int want_write; /* PQflush left data to send */
} conn_t;

typedef struct {
  const char *uri, *schema, *json, *tenant;
  int connections, depth, batch;
  double duration;
} floor_opts_t;

typedef struct {
  const floor_opts_t *o;
  conn_t *conns;
  char (*ids)[ID_LEN]; /* 2 × batch ids, rewritten per unit */
  const char **params; /* tenant, then entity id and subject id per tuple */
  char prefix[32];
  uint64_t next_id;
  uint64_t acked, errors;
  char first_error[256];
  bench_samples_t latency;
  int64_t start_ns, end_ns, last_ack_ns;
} floor_t;

/* Permify's final layout for the two tables a write touches (its indexes
 * included: they are most of the work).  Written out here, not taken from
 * the backend's migrations, on purpose: the floor bounds the server, so it
 * must not change when the server's code does; Permify's layout (v1.7.3,
 * after all its migrations) is the reference for both. */
static const char ddl[] =
    "CREATE TABLE IF NOT EXISTS transactions ("
    " id xid8 DEFAULT (pg_current_xact_id()) NOT NULL,"
    " snapshot pg_snapshot DEFAULT (pg_current_snapshot()) NOT NULL,"
    " timestamp TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC') NOT NULL,"
    " tenant_id VARCHAR NOT NULL DEFAULT 't1',"
    " CONSTRAINT pk_transaction PRIMARY KEY (id));\n"
    "CREATE INDEX IF NOT EXISTS idx_transactions_tenant_id ON transactions (tenant_id, id);\n"
    "CREATE TABLE IF NOT EXISTS relation_tuples ("
    " id SERIAL NOT NULL,"
    " entity_type VARCHAR NOT NULL, entity_id VARCHAR NOT NULL, relation VARCHAR NOT NULL,"
    " subject_type VARCHAR NOT NULL, subject_id VARCHAR NOT NULL,"
    " subject_relation VARCHAR NOT NULL,"
    " created_tx_id xid8 DEFAULT (pg_current_xact_id()),"
    " expired_tx_id xid8 DEFAULT ('9223372036854775807'::xid8),"
    " tenant_id VARCHAR NOT NULL DEFAULT 't1',"
    " CONSTRAINT pk_relation_tuple PRIMARY KEY (id),"
    " CONSTRAINT uq_relation_tuple UNIQUE (tenant_id, entity_type, entity_id, relation,"
    "  subject_type, subject_id, subject_relation, created_tx_id, expired_tx_id),"
    " CONSTRAINT uq_relation_tuple_not_expired UNIQUE (tenant_id, entity_type, entity_id,"
    "  relation, subject_type, subject_id, subject_relation, expired_tx_id));\n"
    "CREATE INDEX IF NOT EXISTS idx_tuples_subject ON relation_tuples"
    " (tenant_id, subject_type, subject_id, subject_relation, entity_type, relation);\n"
    "CREATE INDEX IF NOT EXISTS idx_relation_tuples_txid ON relation_tuples"
    " (tenant_id, created_tx_id, expired_tx_id);\n";

static const char tx_sql[] =
    "INSERT INTO transactions (tenant_id) VALUES ($1) RETURNING id, snapshot";

static const char usage[] =
    "Usage: tuplecast-pg-floor --uri URI [options]\n"
    "\n"
    "  --uri URI            PostgreSQL connection string or URI\n"
    "  --schema NAME        schema of the floor's tables (default tc_floor)\n"
    "  --connections K      connections (default 4)\n"
    "  --depth D            transactions in flight per connection (default 1)\n"
    "  --batch N            tuples per transaction (default 1)\n"
    "  --duration S         seconds of load (default 3)\n"
    "  --tenant ID          tenant_id of the rows (default t1)\n"
    "  --json FILE          append one JSON object with every figure\n";

/* "(…,$2,…,$3,…,$1), (…,$4,…,$5,…,$1), …": one row per tuple. */
static char *tuple_sql(int n) {
  static const char head[] =
      "INSERT INTO relation_tuples (entity_type, entity_id, relation, subject_type, subject_id,"
      " subject_relation, created_tx_id, tenant_id) VALUES ";
  static const char tail[] = " ON CONFLICT ON CONSTRAINT uq_relation_tuple_not_expired DO NOTHING";
  size_t cap = sizeof head + sizeof tail + (size_t)n * 96;
  char *s = malloc(cap);
  size_t len = (size_t)snprintf(s, cap, "%s", head);
  for (int k = 0; k < n; k++)
    len += (size_t)snprintf(s + len, cap - len,
                            "%s('repository',$%d,'owner','user',$%d,'',pg_current_xact_id(),$1)",
                            k ? "," : "", 2 + 2 * k, 3 + 2 * k);
  snprintf(s + len, cap - len, "%s", tail);
  return s;
}

static int exec_ok(PGconn *pg, const char *sql, char *err, size_t errlen) {
  PGresult *r = PQexec(pg, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok) snprintf(err, errlen, "%s", PQresultErrorMessage(r));
  PQclear(r);
  return ok ? 0 : -1;
}

/* Connects with SERIALIZABLE as the default isolation (so the implicit
 * transaction of a unit is SERIALIZABLE) and the floor's schema first on the
 * path. */
static PGconn *floor_connect(const floor_opts_t *o, char *err, size_t errlen) {
  char options[160];
  snprintf(options, sizeof options,
           "-c default_transaction_isolation=serializable -c search_path=%s"
           " -c client_min_messages=warning",
           o->schema);
  const char *const keys[] = {"dbname", "options", NULL};
  const char *const vals[] = {o->uri, options, NULL};
  PGconn *pg = PQconnectdbParams(keys, vals, 1);
  if (PQstatus(pg) != CONNECTION_OK) {
    snprintf(err, errlen, "%s", PQerrorMessage(pg));
    PQfinish(pg);
    return NULL;
  }
  return pg;
}

/* The server's durability settings, reported with the figures: a floor
 * measured with fsync off would flatter every ratio. */
static char durability[96];

static int setup(const floor_opts_t *o, char *err, size_t errlen) {
  PGconn *pg = floor_connect(o, err, errlen);
  if (!pg) return -1;
  char sql[128];
  snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS %s", o->schema);
  /* Several floors may start at once: an advisory lock orders the DDL. */
  int rc = exec_ok(pg, "SELECT pg_advisory_lock(7410)", err, errlen);
  if (!rc) rc = exec_ok(pg, sql, err, errlen);
  if (!rc) rc = exec_ok(pg, ddl, err, errlen);
  PGresult *r = PQexec(pg,
                       "SELECT format('fsync=%s synchronous_commit=%s full_page_writes=%s',"
                       " current_setting('fsync'), current_setting('synchronous_commit'),"
                       " current_setting('full_page_writes'))");
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
    snprintf(durability, sizeof durability, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(pg);
  return rc;
}

/* Prepares the two statements, then switches to pipeline mode. */
static int conn_open(floor_t *f, conn_t *c, char *err, size_t errlen) {
  c->pg = floor_connect(f->o, err, errlen);
  if (!c->pg) return -1;
  c->sent_ns = calloc((size_t)f->o->depth, sizeof *c->sent_ns);
  char *tu = tuple_sql(f->o->batch);
  PGresult *r1 = PQprepare(c->pg, "ftx", tx_sql, 0, NULL);
  PGresult *r2 = PQprepare(c->pg, "ftu", tu, 0, NULL);
  free(tu);
  int ok = PQresultStatus(r1) == PGRES_COMMAND_OK && PQresultStatus(r2) == PGRES_COMMAND_OK;
  if (!ok)
    snprintf(err, errlen, "prepare: %s%s", PQresultErrorMessage(r1), PQresultErrorMessage(r2));
  PQclear(r1);
  PQclear(r2);
  if (ok && (!PQenterPipelineMode(c->pg) || PQsetnonblocking(c->pg, 1) != 0)) {
    snprintf(err, errlen, "pipeline mode: %s", PQerrorMessage(c->pg));
    ok = 0;
  }
  return ok ? 0 : -1;
}

static void note_error(floor_t *f, const char *msg) {
  if (!f->first_error[0]) snprintf(f->first_error, sizeof f->first_error, "%s", msg);
}

/* Queues one unit (entity ids the bench's shape: unique prefix, counter,
 * position) and flushes what the socket takes. */
static int send_unit(floor_t *f, conn_t *c) {
  int n = f->o->batch;
  uint64_t id = f->next_id++;
  for (int k = 0; k < n; k++) {
    snprintf(f->ids[k], ID_LEN, "%s-%llu-%d", f->prefix, (unsigned long long)id, k);
    f->params[1 + 2 * k] = f->ids[k];
    f->params[2 + 2 * k] = f->ids[n + k];
  }
  int64_t now = bench_now_ns();
  if (!PQsendQueryPrepared(c->pg, "ftx", 1, f->params, NULL, NULL, 0) ||
      !PQsendQueryPrepared(c->pg, "ftu", 1 + 2 * n, f->params, NULL, NULL, 0) ||
      !PQpipelineSync(c->pg)) {
    note_error(f, PQerrorMessage(c->pg));
    return -1;
  }
  c->sent_ns[(c->head + c->n) % f->o->depth] = now;
  c->n++;
  int fl = PQflush(c->pg);
  c->want_write = fl == 1;
  return fl < 0 ? -1 : 0;
}

static void unit_done(floor_t *f, conn_t *c) {
  int64_t now = bench_now_ns();
  if (c->failed)
    f->errors++;
  else {
    f->acked++;
    f->last_ack_ns = now;
    bench_samples_add(&f->latency, now - c->sent_ns[c->head]);
  }
  c->failed = 0;
  c->head = (c->head + 1) % f->o->depth;
  c->n--;
}

/* Reads what arrived: each unit's results end with its PIPELINE_SYNC; an
 * error marks the unit failed (the rest of it comes back ABORTED). */
static int conn_read(floor_t *f, conn_t *c) {
  if (!PQconsumeInput(c->pg)) {
    note_error(f, PQerrorMessage(c->pg));
    return -1;
  }
  int nulls = 0;
  while (c->n > 0 && !PQisBusy(c->pg)) {
    PGresult *r = PQgetResult(c->pg);
    if (!r) {
      /* One NULL ends each statement's results; two in a row: nothing more. */
      if (++nulls > 1) break;
      continue;
    }
    nulls = 0;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC)
      unit_done(f, c);
    else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      if (!c->failed && st != PGRES_PIPELINE_ABORTED) note_error(f, PQresultErrorMessage(r));
      c->failed = 1;
    }
    PQclear(r);
  }
  return 0;
}

static int run(floor_t *f) {
  const floor_opts_t *o = f->o;
  int k = o->connections;
  struct pollfd *pfd = calloc((size_t)k, sizeof *pfd);
  f->start_ns = f->last_ack_ns = bench_now_ns();
  f->end_ns = f->start_ns + (int64_t)(o->duration * 1e9);
  int64_t drain_until = f->end_ns + (int64_t)BENCH_WAIT_S * 1000000000;
  int rc = 0;
  for (int i = 0; i < k && rc == 0; i++)
    for (int d = 0; d < o->depth && rc == 0; d++) rc = send_unit(f, &f->conns[i]);
  while (rc == 0) {
    int64_t now = bench_now_ns();
    int in_flight = 0;
    for (int i = 0; i < k; i++) in_flight += f->conns[i].n;
    if (now >= f->end_ns && in_flight == 0) break;
    if (now >= drain_until) {
      note_error(f, "transactions still in flight after the drain bound");
      rc = -1;
      break;
    }
    for (int i = 0; i < k; i++) {
      pfd[i].fd = PQsocket(f->conns[i].pg);
      pfd[i].events = (short)(POLLIN | (f->conns[i].want_write ? POLLOUT : 0));
      pfd[i].revents = 0;
    }
    int64_t until = now < f->end_ns ? f->end_ns : drain_until;
    int ms = (int)((until - now) / 1000000) + 1;
    if (poll(pfd, (nfds_t)k, ms) < 0) continue;
    for (int i = 0; i < k && rc == 0; i++) {
      conn_t *c = &f->conns[i];
      if (pfd[i].revents & POLLOUT) {
        int fl = PQflush(c->pg);
        c->want_write = fl == 1;
        if (fl < 0) rc = -1;
      }
      if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) rc = conn_read(f, c);
      /* Closed loop: each finished unit is replaced while time remains. */
      while (rc == 0 && c->n < o->depth && bench_now_ns() < f->end_ns) rc = send_unit(f, c);
    }
  }
  free(pfd);
  return rc;
}

static int parse_args(int argc, char **argv, floor_opts_t *o) {
  *o = (floor_opts_t){.schema = "tc_floor",
                      .tenant = "t1",
                      .connections = 4,
                      .depth = 1,
                      .batch = 1,
                      .duration = 3};
  const bench_opt_t opts[] = {
      {"uri", BENCH_OPT_STR, &o->uri, NULL},
      {"schema", BENCH_OPT_STR, &o->schema, NULL},
      {"connections", BENCH_OPT_INT, &o->connections, NULL},
      {"depth", BENCH_OPT_INT, &o->depth, NULL},
      {"batch", BENCH_OPT_INT, &o->batch, NULL},
      {"duration", BENCH_OPT_NUM, &o->duration, NULL},
      {"tenant", BENCH_OPT_STR, &o->tenant, NULL},
      {"json", BENCH_OPT_STR, &o->json, NULL},
      {NULL, 0, NULL, NULL},
  };
  if (bench_parse_opts(PROG, argc, argv, opts, usage) < 0) return -1;
  /* The batch bound is Postgres's 65535 parameters per statement; the schema
   * name goes into SQL unquoted. */
  if (!o->uri || o->connections > 1000 || o->batch > 30000 ||
      strspn(o->schema, "abcdefghijklmnopqrstuvwxyz_0123456789") != strlen(o->schema)) {
    fputs(usage, stderr);
    return -1;
  }
  return 0;
}

static void report(floor_t *f, bench_report_t *r, bench_cpu_mark_t cpu, const bench_opts_t *bo) {
  const floor_opts_t *o = f->o;
  double wall = (double)(f->last_ack_ns - f->start_ns) / 1e9;
  if (wall <= 0) wall = 1e-9;
  bench_report_num(r, "batch", o->batch, 0);
  bench_report_num(r, "concurrency", o->connections * o->depth, 0);
  bench_report_num(r, "depth", o->depth, 0);
  bench_report_num(r, "duration_s", o->duration, 1);
  bench_report_cpu(r, bo, cpu);
  bench_report_num(r, "writes", (double)f->acked, 0);
  bench_report_num(r, "errors", (double)f->errors, 0);
  bench_report_num(r, "elapsed_s", wall, 3);
  bench_report_num(r, "writes_per_s", (double)f->acked / wall, 1);
  bench_report_num(r, "items_per_s", (double)f->acked * o->batch / wall, 1);
  bench_report_latency(r, "latency", &f->latency);
  bench_report_str(r, "pg_settings", durability);
  if (f->first_error[0]) bench_report_str(r, "first_error", f->first_error);
}

int main(int argc, char **argv) {
  floor_opts_t o;
  if (parse_args(argc, argv, &o) < 0) return 2;
  char err[512] = "";
  if (setup(&o, err, sizeof err) < 0) {
    fprintf(stderr, "tuplecast-pg-floor: setting up schema %s: %s", o.schema, err);
    return 1;
  }
  floor_t f = {.o = &o};
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(f.prefix, sizeof f.prefix, "f%llx%x",
           (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec,
           (unsigned)getpid());
  f.ids = calloc(2 * (size_t)o.batch, ID_LEN);
  f.params = calloc(1 + 2 * (size_t)o.batch, sizeof *f.params);
  f.params[0] = o.tenant;
  for (int k = 0; k < o.batch; k++) snprintf(f.ids[o.batch + k], ID_LEN, "u%d", k);
  f.conns = calloc((size_t)o.connections, sizeof *f.conns);
  int rc = 0;
  for (int i = 0; i < o.connections && rc == 0; i++)
    rc = conn_open(&f, &f.conns[i], err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "tuplecast-pg-floor: %s", err);
  } else {
    bench_opts_t bo = {.scenario = "write",
                       .name = "pg-floor",
                       .target = "libpq",
                       .tenant = o.tenant,
                       .json = o.json,
                       .connections = o.connections};
    printf("pg-floor: %d connections × %d in flight, batch %d, %.1f s\n", o.connections, o.depth,
           o.batch, o.duration);
    bench_cpu_mark_t cpu = bench_cpu_mark(&bo);
    rc = run(&f);
    bench_report_t *r = bench_report_new(&bo);
    report(&f, r, cpu, &bo);
    bench_report_num(r, "ok", rc == 0, 0);
    if (bench_report_emit(r, &bo) < 0) rc = -1;
    bench_report_free(r);
  }
  for (int i = 0; i < o.connections; i++) {
    PQfinish(f.conns[i].pg);
    free(f.conns[i].sent_ns);
  }
  free(f.conns);
  free(f.ids);
  free(f.params);
  bench_samples_free(&f.latency);
  return rc == 0 ? 0 : 1;
}
