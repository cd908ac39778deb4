/* Internals of the SQLite backend plugin, shared by its source files.
 *
 * Every API call becomes one tc__sq_req_t.  The loop thread creates it,
 * hands it to the writer or the reader worker, and gets it back through
 * host->post() when it has run; requests are delivered to the caller's
 * callback in submission order (sqlite_backend.c).
 *
 * Ownership: the backend owns each request from submission until its
 * callback has returned; everything a request points to lives in its arena
 * or its rows vector and is freed with it.
 */
#ifndef TC_SQLITE_INTERNAL_H
#define TC_SQLITE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tuplecast/support.h" /* arena, copies, order queue, tokens */

/* changes.kind: which shape a change row holds. */
enum { TC__SQ_KIND_TUPLE = 1, TC__SQ_KIND_ATTR = 2, TC__SQ_KIND_SCHEMA = 3 };

/* ---- requests ------------------------------------------------------------ */

typedef struct tc__sq_req_s tc__sq_req_t;

struct tc__sq_req_s {
  tc_completion_t done;  /* posted by the worker once exec has run */
  tc__sq_req_t *next;    /* worker queue, or the loop's parked list */
  tc_order_item_t order; /* loop: in b->order; finished once exec has run */
  tc_backend_t *b;
  /* Worker thread: does the work, fills the results, returns the status.
   * A writer request may run again after a rollback: results are set, not
   * appended. */
  int (*exec)(tc__sq_req_t *r, sqlite3 *db);
  /* Loop thread: calls the caller's callback with the results. */
  void (*deliver)(tc__sq_req_t *r);
  int status;
  int on_writer;
  uint64_t seq;     /* writer requests: submission number */
  uint64_t barrier; /* reader requests: writer requests to wait for */
  void *arg;
  tc_backend_cb_t cb;
  tc_arena_t arena;
  /* Result rows (tc_tuple_t, tc_change_t, ...): a malloc'd vector. */
  void *rows;
  size_t n, cap;

  /* Inputs and scalar results; which members are used depends on the call. */
  const char *tenant_id;
  /* tenant: name; schema: version (schema_read, tenant_state: the one
   * found; tenant_state's input: the caller's version); lists: after /
   * before. */
  const char *key;
  const char *text;  /* schema text */
  uint64_t revision; /* in: requested (0 = head); out: served / committed */
  uint64_t after;    /* row cursor or change revision */
  uint64_t upto;     /* read_changes: last revision wanted (UINT64_MAX: the head) */
  uint32_t limit;    /* 0 = no limit */
  tc_tuple_filter_t tuple_filter;
  tc_attr_filter_t attr_filter;
  tc_write_batch_t batch;
  tc_tenant_row_t tenant;
  const char *head;     /* schema_list: head version */
  const char *next_key; /* string cursor of the next page */
  tc_cursor_t next_id;
  uint64_t last; /* read_changes: the revision to continue after */
  int feed;      /* read_feed: rows are tc_feed_item_t, schema writes among them */
  /* bundle_write: in; bundle_read: out (payload, in the arena). */
  tc_bundle_t *bundles;
  size_t n_bundles;
};

/* Appends one zeroed element to r->rows; NULL on out-of-memory. */
void *tc__sq_req_push(tc__sq_req_t *r, size_t elem_size);

/* ---- workers: one thread, one connection, a FIFO queue -------------------- */

typedef struct tc__sq_worker_s {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  tc__sq_req_t *head, *tail;
  int stop;
  size_t queued;    /* requests in head..tail (metrics) */
  int running;      /* a batch taken from the queue is running (metrics) */
  int group_commit; /* writer: all queued requests in one transaction */
  int want_ckpt;    /* checkpointer: the writer's WAL wants a checkpoint */
  sqlite3 *db;
  const tc_host_api_t *host;
} tc__sq_worker_t;

/* Takes ownership of db; 0 or a TC_E* code. */
int tc__sq_worker_start(tc__sq_worker_t *w, const tc_host_api_t *host, sqlite3 *db,
                        int group_commit);
void tc__sq_worker_push(tc__sq_worker_t *w, tc__sq_req_t *r);
/* Runs what is queued, joins the thread and closes the connection. */
void tc__sq_worker_stop(tc__sq_worker_t *w);
/* Wakes w to run a checkpoint on its connection (any thread). */
void tc__sq_worker_want_checkpoint(tc__sq_worker_t *w);
/* Loop thread: *running (0 or 1) and *queued right now, under w's lock. */
void tc__sq_worker_load(tc__sq_worker_t *w, int *running, size_t *queued);

/* ---- checkpoints (sqlite_checkpoint.c) ----------------------------------- */

/* Hooks the writer connection's commits to the checkpointer worker, in
 * place of SQLite's automatic checkpoint; stop ckpt after the writer. */
void tc__sq_checkpoint_hook(sqlite3 *writer, tc__sq_worker_t *ckpt);
/* The checkpointer's work: a PASSIVE checkpoint, and a RESTART one when the
 * WAL has grown long. */
void tc__sq_checkpoint(sqlite3 *db, const tc_host_api_t *host);

/* ---- the backend --------------------------------------------------------- */

struct tc_backend_s {
  const tc_host_api_t *host;
  char instance_id[40];
  tc__sq_worker_t writer, reader;
  tc__sq_worker_t ckpt; /* file databases only (ckpt.db set): runs checkpoints, no requests */
  _Atomic uint64_t n_writes, n_reads, n_change_reads;
  /* Loop thread only. */
  tc_order_t order;                        /* submitted, not yet delivered */
  tc__sq_req_t *parked_head, *parked_tail; /* reads waiting for a write */
  uint64_t writes_submitted, writes_done;
  uint64_t head_rev; /* the newest revision committed (or read) so far: token_check */
  int closing, finish_posted;
  void (*destroy_cb)(void *arg);
  void *destroy_arg;
  tc_completion_t finish;
};

/* ---- SQLite helpers (sqlite_db.c) ---------------------------------------- */

/* Opens and configures a connection to a path or a "file:" URI (shared
 * cache if is_memory); on failure a malloc'd *errmsg. */
int tc__sq_open(const char *path, int is_memory, sqlite3 **out, char **errmsg);
/* Applies pending migrations up to schema version upto (-1: all; tests
 * stop early) and reads the instance id into out[33]. */
int tc__sq_migrate(sqlite3 *db, int upto, char *out, char **errmsg);
/* prepare/step/exec that wait out shared-cache table locks. */
int tc__sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out);
int tc__sq_step(sqlite3_stmt *st);
int tc__sq_exec(sqlite3 *db, const char *sql);
/* Logs the connection's last error and returns TC_EDATASTORE. */
int tc__sq_fail(const tc_host_api_t *host, sqlite3 *db, const char *what);
int64_t tc__sq_now_ms(void);
/* Text of column i copied into the arena; NULL on out-of-memory. */
char *tc__sq_column_dup(tc_arena_t *a, sqlite3_stmt *st, int i);

/* ---- filters as SQL (sqlite_filter.c) ------------------------------------ */

/* Prepare prefix + the filter's conditions + suffix.  Each set member adds
 * " AND col = ?" or " AND col IN (?, ...)"; unset members add nothing. */
int tc__sq_prepare_tuple_query(sqlite3 *db, const char *prefix, const tc_tuple_filter_t *f,
                               const char *suffix, sqlite3_stmt **out);
int tc__sq_prepare_attr_query(sqlite3 *db, const char *prefix, const tc_attr_filter_t *f,
                              const char *suffix, sqlite3_stmt **out);
/* Bind those parameters from *i on, advancing *i; SQLite result code. */
int tc__sq_tuple_filter_bind(sqlite3_stmt *st, int *i, const tc_tuple_filter_t *f);
int tc__sq_attr_filter_bind(sqlite3_stmt *st, int *i, const tc_attr_filter_t *f);

/* ---- worker-side operations ---------------------------------------------- */

/* sqlite_write.c: run inside the writer's transaction, one savepoint each. */
int tc__sq_exec_write(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_tenant_create(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_tenant_delete(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_schema_write(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_bundle_write(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_bundle_read(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_bundle_delete(tc__sq_req_t *r, sqlite3 *db);

/* sqlite_read.c: run on the reader connection in autocommit mode. */
int tc__sq_exec_read_tuples(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_read_attrs(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_head(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_ping(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_read_changes(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_tenant_get(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_tenant_list(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_schema_read(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_tenant_state(tc__sq_req_t *r, sqlite3 *db);
int tc__sq_exec_schema_list(tc__sq_req_t *r, sqlite3 *db);

#endif
