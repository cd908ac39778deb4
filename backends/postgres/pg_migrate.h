/* Schema migrations: Permify's tables (migration 1, a no-op on a database a
 * Permify server already migrated) and tuplecast's additive objects
 * (migration 2), tracked in tuplecast_migrations; plus the start-up
 * privilege check.  Blocking libpq calls, for create() and admin() only.
 *
 * Ownership: the caller owns the connection; messages returned through
 * errmsg and reports are malloc'd and freed by the caller.
 */
#ifndef TC_PG_MIGRATE_H
#define TC_PG_MIGRATE_H

#include <libpq-fe.h>

/* How many migrations this build knows (the version a current database is at). */
int tc__pg_migrate_latest(void);
/* *version = the newest applied migration, 0 for an empty database.
 * 0, or TC_EDATASTORE with *errmsg. */
int tc__pg_migrate_current(PGconn *c, int *version, char **errmsg);
/* Applies the pending migrations, each in one transaction, under an advisory
 * lock so nodes starting together do not race.  *from / *to: the versions
 * before and after.  0, or TC_EDATASTORE with *errmsg. */
int tc__pg_migrate_up(PGconn *c, int *from, int *to, char **errmsg);
/* "migrate status": one line per migration, applied (when) or pending. */
int tc__pg_migrate_status(PGconn *c, char **report, char **errmsg);
/* 0 if the connected role may use every table (and CREATE on the schema when
 * need_create), else TC_ECONFIG with a one-line "role R lacks ...: GRANT ..."
 * in *errmsg. */
int tc__pg_migrate_check_privileges(PGconn *c, int need_create, char **errmsg);

#endif
