/* PostgreSQL's own count of the statements a server under test ran
 * (--pg-uri): a mark before the load, the difference after, from
 * pg_stat_statements when the cluster loads it (it counts at once, per
 * statement) and from pg_stat_database's transactions otherwise (counted when
 * a backend flushes its statistics: up to a second or more late).
 *
 * One blocking libpq connection of the bench's own, used between phases of a
 * scenario only (never while completions wait).
 *
 * Ownership: bench_pgstat_t owns its connection; bench_pgstat_free closes it.
 * The mark lives in a temporary table of that connection.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

struct bench_pgstat_s {
  PGconn *pg;
  int statements; /* pg_stat_statements is there */
  double xacts0;
  int64_t at_ns;
};

/* The first value of a one-row result of sql, or -1. */
static double scalar(PGconn *pg, const char *sql) {
  PGresult *r = PQexec(pg, sql);
  double v = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
    v = atof(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

static int exec_ok(PGconn *pg, const char *sql) {
  PGresult *r = PQexec(pg, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  return ok;
}

static const char xacts_sql[] =
    "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()";

/* The mark: every statement's calls so far (dbid and userid included: a
 * queryid is unique per both). */
static const char mark_sql[] =
    "DROP TABLE IF EXISTS bench_pgss_mark;"
    "CREATE TEMP TABLE bench_pgss_mark AS"
    " SELECT userid, dbid, queryid, calls, total_exec_time FROM pg_stat_statements";

bench_pgstat_t *bench_pgstat_open(const char *uri, char *err, size_t errlen) {
  PGconn *pg = PQconnectdb(uri);
  if (PQstatus(pg) != CONNECTION_OK) {
    snprintf(err, errlen, "--pg-uri: %s", PQerrorMessage(pg));
    PQfinish(pg);
    return NULL;
  }
  bench_pgstat_t *p = calloc(1, sizeof *p);
  p->pg = pg;
  exec_ok(pg, "SET client_min_messages = warning"); /* no NOTICE of the mark's DROP */
  /* Needs shared_preload_libraries = pg_stat_statements (scripts/bench sets
   * it); without it the view errors and the fallback counts transactions. */
  p->statements = exec_ok(pg, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements") &&
                  exec_ok(pg, "SELECT 1 FROM pg_stat_statements LIMIT 1");
  return p;
}

void bench_pgstat_free(bench_pgstat_t *p) {
  if (!p) return;
  PQfinish(p->pg);
  free(p);
}

int bench_pgstat_mark(bench_pgstat_t *p) {
  exec_ok(p->pg, "SELECT pg_stat_clear_snapshot()");
  p->xacts0 = scalar(p->pg, xacts_sql);
  p->at_ns = bench_now_ns();
  return p->statements && !exec_ok(p->pg, mark_sql) ? -1 : 0;
}

/* Statements since the mark, by statement, most called first; the mark's own
 * statements (they name the table) are left out. */
static const char delta_sql[] =
    "SELECT s.calls - coalesce(m.calls, 0) AS calls,"
    "       s.total_exec_time - coalesce(m.total_exec_time, 0) AS ms,"
    "       regexp_replace(left(s.query, 60), '\\s+', ' ', 'g')"
    " FROM pg_stat_statements s LEFT JOIN bench_pgss_mark m USING (userid, dbid, queryid)"
    " WHERE s.calls > coalesce(m.calls, 0) AND s.query NOT LIKE '%bench_pgss_mark%'"
    "   AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " ORDER BY 1 DESC";

#define TOP_STATEMENTS 12

/* pg_statements, pg_statements_per_s, pg_exec_ms_per_s and pg_top (the most
 * called: calls/s, mean ms and the statement's start). */
static void report_statements(bench_pgstat_t *p, bench_report_t *r, double wall) {
  PGresult *res = PQexec(p->pg, delta_sql);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    bench_report_str(r, "pg_error", PQerrorMessage(p->pg));
    PQclear(res);
    return;
  }
  double calls = 0, ms = 0;
  char top[3072] = "";
  size_t used = 0;
  for (int i = 0; i < PQntuples(res); i++) {
    double c = atof(PQgetvalue(res, i, 0)), m = atof(PQgetvalue(res, i, 1));
    calls += c;
    ms += m;
    if (i < TOP_STATEMENTS && used < sizeof top)
      used += (size_t)snprintf(top + used, sizeof top - used, "%s%.1f/s %.3fms [%s]", i ? "; " : "",
                               c / wall, m / c, PQgetvalue(res, i, 2));
  }
  PQclear(res);
  bench_report_num(r, "pg_statements", calls, 0);
  bench_report_num(r, "pg_statements_per_s", calls / wall, 1);
  bench_report_num(r, "pg_exec_ms_per_s", ms / wall, 2);
  bench_report_str(r, "pg_top", top);
}

void bench_pgstat_report(bench_pgstat_t *p, bench_report_t *r) {
  double wall = (double)(bench_now_ns() - p->at_ns) / 1e9;
  bench_report_str(r, "pg_source", p->statements ? "pg_stat_statements" : "pg_stat_database");
  if (p->statements) report_statements(p, r, wall);
  exec_ok(p->pg, "SELECT pg_stat_clear_snapshot()");
  double xacts = scalar(p->pg, xacts_sql);
  if (p->xacts0 >= 0 && xacts >= 0)
    bench_report_num(r, "pg_xacts_per_s", (xacts - p->xacts0) / wall, 1);
}
