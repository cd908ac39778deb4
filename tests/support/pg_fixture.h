/* A throwaway PostgreSQL cluster for tests and the benchmark: initdb in a fresh
 * /tmp/tcpg-XXXXXX, pg_ctl start on a Unix socket in that directory (no TCP),
 * database "tuplecast" created.  Works as root (the server runs as the
 * `postgres` user, or a `tcpg` system user made on first use) and as anyone
 * else (the server runs as the caller).  A test that crashes leaves its
 * cluster running in /tmp/tcpg-*; nothing else is left behind.
 *
 * Ownership: tc_pg_t owns the directory, the server and every string the API
 * returns; tc_pg_stop() stops the server, removes the directory, frees it all.
 */
#ifndef TC_PG_FIXTURE_H
#define TC_PG_FIXTURE_H

/* libpq's own typedefs (repeating them is allowed), so that includers need
 * not see libpq-fe.h. */
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

typedef struct tc_pg_s tc_pg_t;

typedef struct tc_pg_opts_s {
  int track_commit_timestamp; /* 1 (the default when opts is NULL) or 0 */
  const char *const *conf;    /* NULL-terminated extra postgresql.conf lines, may be
                               * NULL; they come last, so they override ours */
  int tcp;                    /* 1: also listen on 127.0.0.1, on a free port picked at start
            * (tc_pg_port), for clients that must come over TCP */
} tc_pg_opts_t;

/* Starts a cluster with fsync, synchronous_commit and full_page_writes off and
 * max_connections = 200; waits until it answers (60 s at most).  opts may be
 * NULL.  Returns 0, or -1 with a message (and the server log's tail) on stderr. */
int tc_pg_start(const tc_pg_opts_t *opts, tc_pg_t **out);
/* "postgresql:///tuplecast?host=<dir>&port=<n>&user=<name>", for libpq. */
const char *tc_pg_uri(const tc_pg_t *pg);
/* The same server's database dbname, created if missing; NULL (and a message
 * on stderr) if it cannot be created.  The string lives until tc_pg_stop(). */
const char *tc_pg_uri_db(tc_pg_t *pg, const char *dbname);
/* pg_ctl restart -m fast; waits until it answers again.  0 or -1. */
int tc_pg_restart(tc_pg_t *pg);
/* The same with -m mode ("smart", "fast" or "immediate"). */
int tc_pg_restart_mode(tc_pg_t *pg, const char *mode);
/* The cluster's port (its socket's, and with opts->tcp its 127.0.0.1 one's)
 * and its superuser, for clients that build their own connection strings. */
int tc_pg_port(const tc_pg_t *pg);
const char *tc_pg_user(const tc_pg_t *pg);
/* pg_ctl stop -m fast, keeping the cluster: its clients lose their
 * connections and cannot connect until tc_pg_resume(), which starts it
 * again and waits until it answers.  0 or -1. */
int tc_pg_halt(tc_pg_t *pg);
int tc_pg_resume(tc_pg_t *pg);
/* Runs sql (one or more statements) on database tuplecast as the superuser.
 * 0, or -1 with the server's message on stderr. */
int tc_pg_set(tc_pg_t *pg, const char *sql);
/* PQexecParams with one text parameter and a text result: the caller's
 * PGresult, to PQclear. */
PGresult *tc_pg_exec1(PGconn *c, const char *sql, const char *param);
/* pg_ctl stop -m immediate, rm -rf of the directory, free.  NULL is a no-op. */
void tc_pg_stop(tc_pg_t *pg);

#endif
