/* The PostgreSQL backend's state, shared by its files: the backend struct,
 * its options, the scheduler's operations (pg_sched.c), the SQL builder
 * (pg_sql.c), the calls the function table (pg_lifecycle.c) names, and the
 * few helpers more than one file uses.  Everything runs on the loop thread;
 * create() and admin() block on a connection of their own.
 *
 * Ownership: tc_backend_t owns its pools, wake-ups, GC, operation queues and
 * every string in it; create() makes it, destroy() frees it.  An operation
 * owns its arena (op->mem: copies of its inputs) and its kept results;
 * the scheduler frees it once answered.
 */
#ifndef TC_PG_INTERNAL_H
#define TC_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "pg_conn.h"
#include "pg_feed.h"
#include "pg_wake.h"
#include "tuplecast/backend.h"
#include "tuplecast/support.h" /* tc_format, the arena, the order queue */

/* expired_tx_id of an active row (Permify's ActiveRecordTxnID). */
#define TC_PG_ACTIVE_TX "'9223372036854775807'::xid8"

/* Distinct SQLSTATEs counted apart in the retry metric. */
#define TC_PG_RETRY_STATES 7

typedef struct tc__pg_gc_s tc__pg_gc_t;
typedef struct tc__pg_queue_s tc__pg_queue_t;

/* Options from "key=value" strings (docs/backend-postgres.md lists them). */
typedef struct tc__pg_opts_s {
  int auto_migrate;
  unsigned max_retries;
  unsigned pool_size;
  unsigned poll_interval_ms;
  int gc_enabled;
  unsigned gc_interval_s, gc_window_s, gc_timeout_s;
  const char *node_id; /* borrowed from the options array; NULL = random */
} tc__pg_opts_t;

struct tc_backend_s {
  const tc_host_api_t *host;
  uv_loop_t *loop;
  char *conninfo;
  char instance_id[64];
  char node_id[40];
  tc__pg_opts_t opts;
  tc__pg_pool_t *wpool, *rpool;
  tc__pg_wake_t *wake;
  tc__pg_gc_t *gc;
  tc__pg_feed_ctx_t feed;
  tc_backend_stats_t stats;
  /* Retries by SQLSTATE (metrics): the first few states seen, then "other". */
  struct {
    char state[6];
    uint64_t n;
  } retried[TC_PG_RETRY_STATES + 1];
  /* per-tenant FIFOs of operations: a chained hash by tenant id */
  tc__pg_queue_t **queues;
  size_t nops; /* operations not yet answered */
  int closing;
  int closed_parts; /* pools closed so far during shutdown */
  uv_timer_t close_timer;
  void (*destroy_cb)(void *arg);
  void *destroy_arg;
};

/* Parses NULL-terminated "key=value" strings over the defaults; unknown keys
 * are ignored.  0, or TC_ECONFIG with a malloc'd message. */
int tc__pg_opts_parse(const char *const *options, tc__pg_opts_t *out, char **errmsg);

/* Connections a node holds besides the write pool: the read pool (2), the
 * notify pool (1) and the LISTEN connection (1). */
#define TC__PG_OTHER_CONNECTIONS 4

/* Reads the server's connection limits on c (pg_limits.c): TC_ECONFIG naming
 * database.max_connections when pool_size plus the other connections exceed
 * what this role may open; one warning through host->log when they exceed
 * what is free now.  0, or a TC_E* code with a malloc'd one-line message. */
int tc__pg_check_connections(PGconn *c, unsigned pool_size, const tc_host_api_t *host,
                             char **errmsg);

/* libpq's message on one line, without the trailing newline; malloc'd. */
char *tc__pg_one_line(const char *msg);

/* The connection string with any password replaced by "***"; malloc'd. */
char *tc__pg_redact(const char *conninfo);

/* Connects, blocking, with connect_timeout=5 unless conninfo sets one.
 * NULL and *errmsg = "cannot connect to PostgreSQL (...): ..." on failure, or
 * "database.uri: required ..." when conninfo is empty. */
PGconn *tc__pg_connect_blocking(const char *conninfo, char **errmsg);

/* A Postgres text[] literal of n strings ({"a","b\"c"}); malloc'd. */
char *tc__pg_text_array(const char *const *v, size_t n);

/* ---- the scheduler's operations (pg_sched.c) ---------------------------------- */

#define QUEUE_BUCKETS 1024
#define MAX_STMTS \
  8 /* transactions row, two filter and two exact deletes, tuples, attribute
                          expire + insert */
#define MAX_PARAMS 16

typedef struct tc__pg_op_s tc__pg_op_t;

struct tc__pg_queue_s {
  tc__pg_queue_t *hnext; /* hash chain */
  char *tenant;          /* "" for tenant_list, which has no tenant */
  tc_order_t order;      /* its operations, in submission order */
  int busy;              /* settle() is running on it: do not free */
};

struct tc__pg_op_s {
  tc_order_item_t order; /* in q->order; finished once its unit answered */
  tc__pg_queue_t *q;
  tc_backend_t *b;
  int running;     /* started (a failed start finishes it at once) */
  int writes;      /* later reads and writes of the tenant wait for it */
  int insert_only; /* a write adding tuples only: overlaps writes like it */
  int feed;        /* head / read_changes: committed history only, start and answer at once */
  int retries;     /* a data write: retried on unique violations too */
  int expect_rows; /* schema_write: no row inserted means a duplicate version */
  int replied;
  int (*start)(tc__pg_op_t *op);
  void (*reply)(tc__pg_op_t *op, int status, PGresult *const *res, size_t n);
  tc_backend_cb_t cb; /* the member of the call's kind (a typed union) */
  void *arg;
  int status;
  PGresult *res[MAX_STMTS]; /* kept copies, until the op's turn */
  size_t nres;
  /* the unit, kept for retries */
  tc__pg_pool_t *pool;
  tc__pg_stmt_t stmts[MAX_STMTS];
  size_t nstmts;
  unsigned attempt;
  tc_arena_t mem; /* the op's strings and statement values */
  /* inputs, as each kind needs them */
  const char *tenant, *after_token, *upto;
  uint32_t limit;
};

/* A malloc'd string moved into op->mem (s is freed; NULL: out of memory);
 * NULL when out of memory. */
char *tc__pg_op_adopt(tc__pg_op_t *op, char *s);
void tc__pg_op_free(tc__pg_op_t *op);
/* A new operation of tenant answering cb(arg); NULL when closing or out of memory. */
tc__pg_op_t *tc__pg_op_new(tc_backend_t *b, const char *tenant, tc_backend_cb_t cb, void *arg);
/* Queues op behind its tenant's operations and starts it if it may: 0, or
 * the call is refused with a code (and op freed).  ok: the call's inputs were
 * all copied. */
int tc__pg_op_submit(tc_backend_t *b, tc__pg_op_t *op, int ok);
/* An operation finished: answered now if first in its queue, else at its turn. */
void tc__pg_op_complete(tc__pg_op_t *op, int status, PGresult *const *res, size_t n);
/* op's start for a plain unit on op->pool. */
int tc__pg_start_unit(tc__pg_op_t *op);
/* Appends a statement to op's unit; values are op-owned. */
void tc__pg_unit_stmt(tc__pg_op_t *op, const char *name, const char *sql, int nparams,
                      const char *const *values);
/* The pool's answer to a unit: retries, maps errors, completes the op. */
void tc__pg_on_unit(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                    const char *errmsg);
/* After the last answered operation of a closing backend, shuts down on a later turn. */
void tc__pg_maybe_close(tc_backend_t *b);
/* Every operation was answered: GC, wake-ups, then the pools (pg_lifecycle.c). */
void tc__pg_begin_close(tc_backend_t *b);

/* ---- SQL pieces (pg_sql.c) ------------------------------------------------------ */

/* A statement's text and parameters under construction. */
typedef struct tc__pg_sql_s {
  char text[4096];
  size_t len;
  const char *v[MAX_PARAMS];
  int n;
  unsigned mask; /* which optional parts are present: part of the statement name */
  int oom;
} tc__pg_sql_t;

void tc__pg_sql_add(tc__pg_sql_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds a parameter; returns its number. */
int tc__pg_sql_param(tc__pg_sql_t *s, const char *value);
/* " AND col = ..." for each field the filter sets. */
void tc__pg_sql_tuple_filter(tc__pg_op_t *op, tc__pg_sql_t *s, const tc_tuple_filter_t *f);
void tc__pg_sql_attr_filter(tc__pg_op_t *op, tc__pg_sql_t *s, const tc_attr_filter_t *f);
/* Moves a built statement into op's unit: its text, name and values, op-owned. */
int tc__pg_sql_finish(tc__pg_op_t *op, tc__pg_sql_t *s, const char *name_prefix);
/* limit + 1 as text (one row more tells whether there is a next page); NULL for 0. */
char *tc__pg_limit_text(tc__pg_op_t *op, uint32_t limit);

/* ---- the calls of the function table ------------------------------------------- */

int tc__pg_tenant_create(tc_backend_t *b, const char *id, const char *name, tc_tenant_cb cb,
                         void *arg);
int tc__pg_tenant_get(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg);
int tc__pg_tenant_delete(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg);
int tc__pg_tenant_list(tc_backend_t *b, const char *after, uint32_t limit, tc_tenants_cb cb,
                       void *arg);
int tc__pg_schema_write(tc_backend_t *b, const char *tenant_id, const char *version,
                        const char *text, tc_status_cb cb, void *arg);
int tc__pg_schema_read(tc_backend_t *b, const char *tenant_id, const char *version, tc_schema_cb cb,
                       void *arg);
int tc__pg_tenant_state(tc_backend_t *b, const char *id, const char *known_version,
                        tc_tenant_state_cb cb, void *arg);
int tc__pg_schema_list(tc_backend_t *b, const char *tenant_id, const char *before, uint32_t limit,
                       tc_schemas_cb cb, void *arg);
int tc__pg_write_batch(tc_backend_t *b, const tc_write_batch_t *w, tc_write_cb cb, void *arg);
int tc__pg_read_tuples(tc_backend_t *b, const char *tenant_id, const char *token,
                       const tc_tuple_filter_t *f, tc_cursor_t after, uint32_t limit,
                       tc_tuples_cb cb, void *arg);
int tc__pg_read_attrs(tc_backend_t *b, const char *tenant_id, const char *token,
                      const tc_attr_filter_t *f, tc_cursor_t after, uint32_t limit, tc_attrs_cb cb,
                      void *arg);
int tc__pg_head(tc_backend_t *b, const char *tenant_id, tc_head_cb cb, void *arg);
int tc__pg_read_changes(tc_backend_t *b, const char *tenant_id, const char *after, const char *upto,
                        uint32_t limit, tc_changes_cb cb, void *arg);
int tc__pg_read_feed(tc_backend_t *b, const char *tenant_id, const char *after, const char *upto,
                     uint32_t limit, tc_feed_cb cb, void *arg);
int tc__pg_bundle_write(tc_backend_t *b, const char *tenant_id, const tc_bundle_t *bundles,
                        size_t n, tc_status_cb cb, void *arg);
int tc__pg_bundle_read(tc_backend_t *b, const char *tenant_id, const char *name, tc_bundle_cb cb,
                       void *arg);
int tc__pg_bundle_delete(tc_backend_t *b, const char *tenant_id, const char *name, tc_status_cb cb,
                         void *arg);
int tc__pg_admin(const char *uri, const char *const *options, const char *command, char **out);

#endif
