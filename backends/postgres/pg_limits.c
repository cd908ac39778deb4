/* The pools against the server's connection limits, checked once in create
 * on its blocking connection (pg_internal.h).  A pool the server can never
 * hold is refused: without this check every link past the limit failed with
 * "too many clients" (SQLSTATE 53300) and retried forever, and 10,000 links
 * connecting at once also overflowed the socket's backlog, so the read pool
 * and the listener could not connect either. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* What the server lets this role open, and what others hold now.  The role
 * and database limits and the reserved slots do not bind a superuser. */
#define LIMITS_SQL                                                                          \
  "SELECT current_setting('max_connections')::int,"                                         \
  " current_setting('superuser_reserved_connections')::int,"                                \
  " coalesce(current_setting('reserved_connections', true), '0')::int,"                     \
  " r.rolsuper, r.rolconnlimit, d.datconnlimit,"                                            \
  " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int - 1" \
  " FROM pg_roles r, pg_database d WHERE r.rolname = current_user"                          \
  " AND d.datname = current_database()"

typedef struct {
  int max, su_reserved, reserved, super, role_limit, db_limit, others;
} limits_t;

static int read_limits(PGconn *c, limits_t *l, char **errmsg) {
  PGresult *r = PQexec(c, LIMITS_SQL);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    char *m = tc__pg_one_line(PQresultErrorMessage(r));
    *errmsg = tc_format("reading the server's connection limits: %s", m && *m ? m : "no row");
    free(m);
    PQclear(r);
    return TC_EDATASTORE;
  }
  int *v[] = {&l->max, &l->su_reserved, &l->reserved};
  for (int i = 0; i < 3; i++) *v[i] = atoi(PQgetvalue(r, 0, i));
  l->super = PQgetvalue(r, 0, 3)[0] == 't';
  l->role_limit = atoi(PQgetvalue(r, 0, 4));
  l->db_limit = atoi(PQgetvalue(r, 0, 5));
  l->others = atoi(PQgetvalue(r, 0, 6));
  PQclear(r);
  return 0;
}

/* The most connections this role may hold and, in why, which limit that is. */
static int allowed(const limits_t *l, char *why, size_t size) {
  int n = l->max;
  snprintf(why, size, "max_connections %d", l->max);
  if (l->super) return n;
  n -= l->su_reserved + l->reserved;
  snprintf(why, size, "max_connections %d less %d superuser_reserved_connections", l->max,
           l->su_reserved);
  if (l->reserved)
    snprintf(why + strlen(why), size - strlen(why), " and %d reserved_connections", l->reserved);
  if (l->role_limit >= 0 && l->role_limit < n)
    n = l->role_limit, snprintf(why, size, "the role's CONNECTION LIMIT %d", l->role_limit);
  if (l->db_limit >= 0 && l->db_limit < n)
    n = l->db_limit, snprintf(why, size, "the database's CONNECTION LIMIT %d", l->db_limit);
  return n;
}

int tc__pg_check_connections(PGconn *c, unsigned pool_size, const tc_host_api_t *host,
                             char **errmsg) {
  limits_t l;
  int rc = read_limits(c, &l, errmsg);
  if (rc) return rc;
  char why[160];
  long long need = (long long)pool_size + TC__PG_OTHER_CONNECTIONS;
  int can = allowed(&l, why, sizeof why);
  if (need > can) {
    *errmsg = tc_format(
        "database.max_connections: %u write connections and %d more for reads "
        "and change notification need %lld, more than this server allows "
        "(%s)",
        pool_size, TC__PG_OTHER_CONNECTIONS, need, why);
    return TC_ECONFIG;
  }
  /* Others may close theirs: one warning, and the links past the free
   * slots retry (their failures are logged as one repeated warning). */
  if (need > (long long)can - l.others)
    host->log(TC_LOG_WARN,
              "postgres: the pools need %lld connections; %s allows %d and %d are in use by "
              "other sessions: connections past the free ones will retry until some close",
              need, l.super ? "max_connections" : "the server", can, l.others);
  return 0;
}
