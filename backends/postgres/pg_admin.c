/* The PostgreSQL backend's admin commands (tuplecast migrate up|status), on
 * a connection of their own; run from the CLI, not on the loop.
 */
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"
#include "pg_migrate.h"

int tc__pg_admin(const char *uri, const char *const *options, const char *command, char **out) {
  tc__pg_opts_t o;
  char *err = NULL;
  *out = NULL;
  int rc = tc__pg_opts_parse(options, &o, &err);
  PGconn *c = rc ? NULL : tc__pg_connect_blocking(uri ? uri : "", &err);
  if (!rc && !c) rc = TC_ECONFIG;
  if (!rc && !strcmp(command, "migrate status")) {
    rc = tc__pg_migrate_status(c, out, &err);
  } else if (!rc && !strcmp(command, "migrate up")) {
    int from, to;
    if (!(rc = tc__pg_migrate_check_privileges(c, 1, &err)) &&
        !(rc = tc__pg_migrate_up(c, &from, &to, &err)))
      *out = from == to ? tc_format("database already at migration %d of %d, nothing to do\n", to,
                                    tc__pg_migrate_latest())
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
