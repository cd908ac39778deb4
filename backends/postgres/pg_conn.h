/* libpq connections driven by the libuv loop: a pool of pipelined
 * connections for statements, and a LISTEN connection for wake-ups.
 *
 * Everything here runs on the loop thread; no threads, no blocking calls
 * after tc__pg_pool_create returns.  A "unit" is a list of statements sent in
 * pipeline mode and closed by one Sync, so it runs as one implicit
 * transaction on one connection: all of it commits or none of it does.
 * Callbacks never fire synchronously from the call that registered them.
 *
 * Ownership: the caller owns pools and listeners it creates and closes them
 * with tc__pg_pool_close / tc__pg_listener_close; a unit's statements and parameter
 * values are copied at submit; PGresults passed to callbacks are borrowed for
 * the duration of the callback.
 */
#ifndef TC_PG_CONN_H
#define TC_PG_CONN_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tc__pg_pool_s tc__pg_pool_t;
typedef struct tc__pg_listener_s tc__pg_listener_t;

/* One statement of a unit.  Parameters are in text format; a NULL value is
 * SQL NULL.  With a name, the statement is prepared once per connection
 * under that name and then executed by name (the same name must always mean
 * the same sql). */
typedef struct tc__pg_stmt_s {
  const char *name; /* NULL: not prepared */
  const char *sql;
  int nparams;
  const char *const *values;
} tc__pg_stmt_t;

/* A unit's outcome, once.  status: 0 when every statement succeeded, else a
 * negative TC_E* code: TC_EDATASTORE for an SQL error (sqlstate and errmsg
 * from the server), TC_EUNAVAILABLE when the connection was lost or could not
 * be had (sqlstate "", errmsg says whether the unit may have committed).
 * results[i] is statement i's PGresult (NULL for statements not reached);
 * n is the unit's statement count. */
typedef void (*tc__pg_unit_cb)(void *arg, int status, PGresult *const *results, size_t n,
                               const char *sqlstate, const char *errmsg);

typedef struct tc__pg_pool_opts_s {
  const char *conninfo;                         /* libpq connection string or URI */
  int size;                                     /* connections, >= 1 */
  int depth;                                    /* units in flight per connection, >= 1 */
  const char *const *setup;                     /* NULL-terminated SQL run on each new connection
                               before it takes units (e.g. SET ...); may be NULL */
  unsigned queue_timeout_ms;                    /* a queued unit fails with TC_EUNAVAILABLE after
                                this long without a usable connection (0: 5000) */
  const char *name;                             /* for log lines, e.g. "write" */
  void (*log)(int level, const char *fmt, ...); /* tc_log_level levels */
} tc__pg_pool_opts_t;

/* Starts connecting asynchronously; returns 0 or a TC_E* code (bad options,
 * out of memory).  Lost connections reconnect with backoff (50 ms doubling to
 * 2 s). */
int tc__pg_pool_create(uv_loop_t *loop, const tc__pg_pool_opts_t *opts, tc__pg_pool_t **out);
/* Queues a unit of n >= 1 statements.  Units are sent in submit order; units
 * on different connections may complete in any order. */
int tc__pg_pool_submit(tc__pg_pool_t *p, const tc__pg_stmt_t *stmts, size_t n, tc__pg_unit_cb cb,
                       void *arg);
/* 0 while every connection has failed since it last worked (lost, or its
 * connection attempts refused: the server is unreachable); 1 while one is
 * up or still making its first attempt. */
int tc__pg_pool_ready(const tc__pg_pool_t *p);
/* Units queued or in flight right now. */
size_t tc__pg_pool_pending(const tc__pg_pool_t *p);

/* A pool right now, for the server's /metrics. */
typedef struct tc__pg_pool_stats_s {
  unsigned ready;      /* connections up and serving */
  unsigned busy;       /* of those, with units in flight */
  size_t waiting;      /* units queued for a connection */
  uint64_t reconnects; /* connections made again after a loss or a failed attempt */
} tc__pg_pool_stats_t;
void tc__pg_pool_stats(const tc__pg_pool_t *p, tc__pg_pool_stats_t *out);
/* Lets in-flight units finish (their callbacks run), fails queued ones with
 * TC_EUNAVAILABLE, closes every connection, then calls done(arg). */
void tc__pg_pool_close(tc__pg_pool_t *p, void (*done)(void *arg), void *arg);

/* LISTEN on channel over a dedicated connection.  on_notify runs for every
 * notification (payload borrowed).  on_ready runs after each (re)connect once
 * LISTEN is in effect: notifications sent while disconnected are lost, so the
 * caller catches up then. */
typedef struct tc__pg_listener_opts_s {
  const char *conninfo;
  const char *channel; /* a plain identifier */
  void (*on_notify)(void *arg, const char *payload);
  void (*on_ready)(void *arg);
  void *arg;
  void (*log)(int level, const char *fmt, ...);
} tc__pg_listener_opts_t;

int tc__pg_listener_start(uv_loop_t *loop, const tc__pg_listener_opts_t *opts,
                          tc__pg_listener_t **out);
void tc__pg_listener_close(tc__pg_listener_t *l, void (*done)(void *arg), void *arg);

#endif
