/* The PostgreSQL backend's state, shared by its files: the backend struct,
 * its options, and the few helpers more than one file uses.
 *
 * Ownership: tc_backend_t owns its pools, wake-ups, GC, operation queues and
 * every string in it; create() makes it, destroy() frees it.
 */
#ifndef TC_PG_INTERNAL_H
#define TC_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "pg_conn.h"
#include "pg_feed.h"
#include "pg_wake.h"
#include "format.h" /* tc_format, from tc_codec */
#include "tuplecast/backend.h"

/* expired_tx_id of an active row (Permify's ActiveRecordTxnID). */
#define PG_ACTIVE_TX "'9223372036854775807'::xid8"

typedef struct pg_gc_s pg_gc_t;
typedef struct pg_queue_s pg_queue_t;

/* Options from "key=value" strings (docs/backend-postgres.md lists them). */
typedef struct pg_opts_s {
  int auto_migrate;
  unsigned max_retries;
  unsigned pool_size;
  unsigned poll_interval_ms;
  int gc_enabled;
  unsigned gc_interval_s, gc_window_s, gc_timeout_s;
  const char *node_id; /* borrowed from the options array; NULL = random */
} pg_opts_t;

struct tc_backend_s {
  const tc_host_api_t *host;
  uv_loop_t *loop;
  char *conninfo;
  char instance_id[64];
  char node_id[40];
  pg_opts_t opts;
  pg_pool_t *wpool, *rpool;
  pg_wake_t *wake;
  pg_gc_t *gc;
  pg_feed_ctx_t feed;
  tc_backend_stats_t stats;
  /* per-tenant FIFOs of operations: a chained hash by tenant id */
  pg_queue_t **queues;
  size_t nops; /* operations not yet answered */
  int closing;
  int closed_parts; /* pools closed so far during shutdown */
  uv_timer_t close_timer;
  void (*destroy_cb)(void *arg);
  void *destroy_arg;
};

/* Parses NULL-terminated "key=value" strings over the defaults; unknown keys
 * are ignored.  0, or TC_ECONFIG with a malloc'd message. */
int pg_opts_parse(const char *const *options, pg_opts_t *out, char **errmsg);

/* libpq's message on one line, without the trailing newline; malloc'd. */
char *pg_one_line(const char *msg);

/* The connection string with any password replaced by "***"; malloc'd. */
char *pg_redact(const char *conninfo);

/* Connects, blocking, with connect_timeout=5 unless conninfo sets one.
 * NULL and *errmsg = "cannot connect to PostgreSQL (...): ..." on failure. */
PGconn *pg_connect_blocking(const char *conninfo, char **errmsg);

/* A Postgres text[] literal of n strings ({"a","b\"c"}); malloc'd. */
char *pg_text_array(const char *const *v, size_t n);

#endif
