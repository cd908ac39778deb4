/* The SQLite backend plugin: its function table, create/destroy, and the
 * loop-side life of a request.
 *
 * Loop side, two rules keep the ABI's promises with two worker threads:
 *  - delivery in submission order: requests sit in one in-order delivery
 *    queue (tc_order_t, the support library's) across all tenants, and a
 *    finished request is delivered only once everything before it was;
 *  - reads see earlier writes: a read is handed to the reader only after
 *    every writer request submitted before it has committed. */
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

#define MEMORY_URI ":memory:"
/* The file when database.uri is not set, so that a server started with no
 * settings keeps its data (in the working directory). */
#define DEFAULT_FILE "./tuplecast.db"

void *tc__sq_req_push(tc__sq_req_t *r, size_t elem_size) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    void *rows = realloc(r->rows, cap * elem_size);
    if (!rows) return NULL;
    r->rows = rows;
    r->cap = cap;
  }
  void *e = (char *)r->rows + r->n++ * elem_size;
  memset(e, 0, elem_size);
  return e;
}

static void req_free(tc__sq_req_t *r) {
  tc_arena_free(&r->arena);
  free(r->rows);
  free(r);
}

/* ---- delivery (loop thread) ---------------------------------------------- */

static void post_finish(tc_backend_t *b) {
  if (b->closing && !b->order.head && !b->finish_posted) {
    b->finish_posted = 1;
    b->host->post(b->host, &b->finish);
  }
}

static void deliver_ready(tc_backend_t *b) {
  for (tc_order_item_t *it; (it = tc_order_pop(&b->order));) {
    tc__sq_req_t *r = TC_CONTAINER_OF(it, tc__sq_req_t, order);
    r->deliver(r);
    req_free(r);
  }
  post_finish(b);
}

static void dispatch_parked(tc_backend_t *b) {
  while (b->parked_head && b->parked_head->barrier <= b->writes_done) {
    tc__sq_req_t *r = b->parked_head;
    b->parked_head = r->next;
    if (!b->parked_head) b->parked_tail = NULL;
    tc__sq_worker_push(&b->reader, r);
  }
}

static void on_done(tc_completion_t *c) {
  tc__sq_req_t *r = (tc__sq_req_t *)c;
  tc_backend_t *b = r->b;
  tc_order_finish(&r->order);
  if (r->on_writer) {
    b->writes_done = r->seq; /* the writer posts in submission order */
    dispatch_parked(b);
  }
  deliver_ready(b);
}

/* ---- submission (loop thread) -------------------------------------------- */

static tc__sq_req_t *req_new(tc_backend_t *b, int (*exec)(tc__sq_req_t *, sqlite3 *),
                             void (*deliver)(tc__sq_req_t *), void *arg) {
  if (b->closing) return NULL;
  tc__sq_req_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->done.run = on_done;
  r->b = b;
  r->exec = exec;
  r->deliver = deliver;
  r->arg = arg;
  return r;
}

/* Copies of the string inputs, "" for NULL. */
static int copy_inputs(tc__sq_req_t *r, const char *tenant_id, const char *key, const char *text) {
  r->tenant_id = tc_arena_strdup(&r->arena, tenant_id);
  r->key = tc_arena_strdup(&r->arena, key);
  r->text = tc_arena_strdup(&r->arena, text);
  return r->tenant_id && r->key && r->text ? 0 : TC_ENOMEM;
}

/* Takes r on success; frees it and returns the error otherwise. */
static int submit(tc_backend_t *b, tc__sq_req_t *r, int status, int on_writer) {
  if (!r) return b->closing ? TC_EUNAVAILABLE : TC_ENOMEM;
  if (status != 0) {
    req_free(r);
    return status;
  }
  r->on_writer = on_writer;
  tc_order_push(&b->order, &r->order);
  if (on_writer) {
    r->seq = ++b->writes_submitted;
    tc__sq_worker_push(&b->writer, r);
  } else if ((r->barrier = b->writes_submitted) <= b->writes_done) {
    tc__sq_worker_push(&b->reader, r);
  } else {
    r->next = NULL;
    if (b->parked_tail)
      b->parked_tail->next = r;
    else
      b->parked_head = r;
    b->parked_tail = r;
  }
  return 0;
}

/* ---- the calls ----------------------------------------------------------- */

static void deliver_tenant(tc__sq_req_t *r) {
  r->cb.tenant(r->arg, r->status, r->status == 0 ? &r->tenant : NULL);
}

static int submit_tenant(tc_backend_t *b, int (*exec)(tc__sq_req_t *, sqlite3 *), int on_writer,
                         const char *id, const char *name, tc_tenant_cb cb, void *arg) {
  tc__sq_req_t *r = req_new(b, exec, deliver_tenant, arg);
  if (r) r->cb.tenant = cb;
  return submit(b, r, r ? copy_inputs(r, id, name, NULL) : 0, on_writer);
}

static int tenant_create(tc_backend_t *b, const char *id, const char *name, tc_tenant_cb cb,
                         void *arg) {
  return submit_tenant(b, tc__sq_exec_tenant_create, 1, id, name, cb, arg);
}

static int tenant_get(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg) {
  return submit_tenant(b, tc__sq_exec_tenant_get, 0, id, NULL, cb, arg);
}

static int tenant_delete(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg) {
  return submit_tenant(b, tc__sq_exec_tenant_delete, 1, id, NULL, cb, arg);
}

static void deliver_tenants(tc__sq_req_t *r) {
  r->cb.tenants(r->arg, r->status, r->rows, r->n, r->next_key);
}

static int tenant_list(tc_backend_t *b, const char *after, uint32_t limit, tc_tenants_cb cb,
                       void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_tenant_list, deliver_tenants, arg);
  if (r) {
    r->cb.tenants = cb;
    r->limit = limit;
  }
  return submit(b, r, r ? copy_inputs(r, NULL, after, NULL) : 0, 0);
}

static void deliver_status(tc__sq_req_t *r) { r->cb.status(r->arg, r->status); }

static int schema_write(tc_backend_t *b, const char *tenant_id, const char *version,
                        const char *text, tc_status_cb cb, void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_schema_write, deliver_status, arg);
  if (r) r->cb.status = cb;
  return submit(b, r, r ? copy_inputs(r, tenant_id, version, text) : 0, 1);
}

static void deliver_schema(tc__sq_req_t *r) {
  if (r->status == 0)
    r->cb.schema(r->arg, 0, r->key, r->text);
  else
    r->cb.schema(r->arg, r->status, NULL, NULL);
}

static int schema_read(tc_backend_t *b, const char *tenant_id, const char *version, tc_schema_cb cb,
                       void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_schema_read, deliver_schema, arg);
  if (r) r->cb.schema = cb;
  return submit(b, r, r ? copy_inputs(r, tenant_id, version, NULL) : 0, 0);
}

static void deliver_state(tc__sq_req_t *r) {
  if (r->status == 0)
    r->cb.tenant_state(r->arg, 0, r->key, r->text);
  else
    r->cb.tenant_state(r->arg, r->status, NULL, NULL);
}

static int tenant_state(tc_backend_t *b, const char *id, const char *known_version,
                        tc_tenant_state_cb cb, void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_tenant_state, deliver_state, arg);
  if (r) r->cb.tenant_state = cb;
  return submit(b, r, r ? copy_inputs(r, id, known_version, NULL) : 0, 0);
}

static void deliver_schemas(tc__sq_req_t *r) {
  r->cb.schemas(r->arg, r->status, r->head, r->rows, r->n, r->next_key);
}

static int schema_list(tc_backend_t *b, const char *tenant_id, const char *before, uint32_t limit,
                       tc_schemas_cb cb, void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_schema_list, deliver_schemas, arg);
  if (r) {
    r->cb.schemas = cb;
    r->limit = limit;
  }
  return submit(b, r, r ? copy_inputs(r, tenant_id, before, NULL) : 0, 0);
}

static int bundle_write(tc_backend_t *b, const char *tenant_id, const tc_bundle_t *bundles,
                        size_t n, tc_status_cb cb, void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_bundle_write, deliver_status, arg);
  if (!r) return submit(b, r, 0, 1);
  r->cb.status = cb;
  int rc = copy_inputs(r, tenant_id, NULL, NULL);
  r->bundles = tc_arena_alloc(&r->arena, (n + 1) * sizeof *r->bundles);
  if (!r->bundles) rc = TC_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    uint8_t *copy = tc_arena_alloc(&r->arena, bundles[i].payload_len + 1);
    const char *name = tc_arena_strdup(&r->arena, bundles[i].name);
    if (!copy || !name) rc = TC_ENOMEM;
    if (copy) memcpy(copy, bundles[i].payload, bundles[i].payload_len);
    r->bundles[i] = (tc_bundle_t){name, copy, bundles[i].payload_len};
  }
  r->n_bundles = n;
  return submit(b, r, rc, 1);
}

static void deliver_bundle(tc__sq_req_t *r) {
  if (r->status == 0 && r->n_bundles)
    r->cb.bundle(r->arg, 0, r->bundles[0].payload, r->bundles[0].payload_len);
  else
    r->cb.bundle(r->arg, r->status ? r->status : TC_EINTERNAL, NULL, 0);
}

static int bundle_read(tc_backend_t *b, const char *tenant_id, const char *name, tc_bundle_cb cb,
                       void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_bundle_read, deliver_bundle, arg);
  if (r) r->cb.bundle = cb;
  return submit(b, r, r ? copy_inputs(r, tenant_id, name, NULL) : 0, 0);
}

static int bundle_delete(tc_backend_t *b, const char *tenant_id, const char *name, tc_status_cb cb,
                         void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_bundle_delete, deliver_status, arg);
  if (r) r->cb.status = cb;
  return submit(b, r, r ? copy_inputs(r, tenant_id, name, NULL) : 0, 1);
}

/* Every token reaches a caller through deliver_write, deliver_head or
 * deliver_changes, on the loop thread: what they name is the newest revision
 * token_check knows of. */
static void saw_revision(tc_backend_t *b, uint64_t revision) {
  if (revision > b->head_rev) b->head_rev = revision;
}

/* Calls cb with the token of revision (status 0) or with the error. */
static void deliver_token(tc__sq_req_t *r, uint64_t revision,
                          void (*cb)(void *arg, int status, const char *token)) {
  if (r->status == 0) saw_revision(r->b, revision);
  tc_rev_token_reply(cb, r->arg, r->status, r->b->instance_id, revision);
}

static void deliver_write(tc__sq_req_t *r) { deliver_token(r, r->revision, r->cb.write); }

static int write_batch(tc_backend_t *b, const tc_write_batch_t *batch, tc_write_cb cb, void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_write, deliver_write, arg);
  if (r) r->cb.write = cb;
  int rc = submit(b, r, r ? tc_copy_write_batch(&r->arena, &r->batch, batch) : 0, 1);
  /* Counted here: the writer may run a write twice (sqlite_worker.c). */
  if (rc == 0) atomic_fetch_add(&b->n_writes, 1);
  return rc;
}

static void deliver_tuples(tc__sq_req_t *r) {
  r->cb.tuples(r->arg, r->status, r->rows, r->n, r->next_id);
}

static int token_check(tc_backend_t *b, const char *token, char **errmsg) {
  return tc_rev_token_check(token, b->instance_id, b->head_rev, errmsg);
}

/* A checked token's revision; "" = UINT64_MAX, which sees every active row. */
static int token_revision(tc_backend_t *b, const char *token, uint64_t *revision) {
  char *err = NULL;
  *revision = UINT64_MAX;
  int rc = token && *token ? tc_rev_token_decode(token, b->instance_id, revision, &err) : 0;
  free(err);
  return rc;
}

/* A paged read at a revision: the part read_tuples and read_attrs share. */
static tc__sq_req_t *page_req_new(tc_backend_t *b, int (*exec)(tc__sq_req_t *, sqlite3 *),
                                  void (*deliver)(tc__sq_req_t *), void *arg, const char *tenant_id,
                                  const char *token, tc_cursor_t after, uint32_t limit,
                                  int *status) {
  uint64_t revision;
  if ((*status = token_revision(b, token, &revision)) != 0) return NULL;
  tc__sq_req_t *r = req_new(b, exec, deliver, arg);
  if (r) {
    r->revision = revision;
    r->after = after;
    r->limit = limit;
    *status = copy_inputs(r, tenant_id, NULL, NULL);
  }
  return r;
}

static int read_tuples(tc_backend_t *b, const char *tenant_id, const char *token,
                       const tc_tuple_filter_t *f, tc_cursor_t after, uint32_t limit,
                       tc_tuples_cb cb, void *arg) {
  int status;
  tc__sq_req_t *r = page_req_new(b, tc__sq_exec_read_tuples, deliver_tuples, arg, tenant_id, token,
                                 after, limit, &status);
  if (r) r->cb.tuples = cb;
  if (r && status == 0 && f) status = tc_copy_tuple_filter(&r->arena, &r->tuple_filter, f);
  return submit(b, r, status, 0);
}

static void deliver_attrs(tc__sq_req_t *r) {
  r->cb.attrs(r->arg, r->status, r->rows, r->n, r->next_id);
}

static int read_attrs(tc_backend_t *b, const char *tenant_id, const char *token,
                      const tc_attr_filter_t *f, tc_cursor_t after, uint32_t limit, tc_attrs_cb cb,
                      void *arg) {
  int status;
  tc__sq_req_t *r = page_req_new(b, tc__sq_exec_read_attrs, deliver_attrs, arg, tenant_id, token,
                                 after, limit, &status);
  if (r) r->cb.attrs = cb;
  if (r && status == 0 && f) status = tc_copy_attr_filter(&r->arena, &r->attr_filter, f);
  return submit(b, r, status, 0);
}

static void deliver_head(tc__sq_req_t *r) { deliver_token(r, r->revision, r->cb.head); }

static int head(tc_backend_t *b, const char *tenant_id, tc_head_cb cb, void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_head, deliver_head, arg);
  if (r) r->cb.head = cb;
  return submit(b, r, r ? copy_inputs(r, tenant_id, NULL, NULL) : 0, 0);
}

/* v2.3 readiness: a reader request, delivered in order like the others. */
static int ping(tc_backend_t *b, tc_status_cb cb, void *arg) {
  tc__sq_req_t *r = req_new(b, tc__sq_exec_ping, deliver_status, arg);
  if (r) r->cb.status = cb;
  return submit(b, r, 0, 0);
}

static void deliver_changes(tc__sq_req_t *r) {
  if (r->status == 0) saw_revision(r->b, r->last);
  char *last = r->status == 0 ? tc_rev_token_encode(r->b->instance_id, r->last) : NULL;
  int status = r->status ? r->status : last ? 0 : TC_ENOMEM;
  void *rows = status ? NULL : r->rows;
  size_t n = status ? 0 : r->n;
  if (r->feed)
    r->cb.feed(r->arg, status, rows, n, last ? last : "");
  else
    r->cb.changes(r->arg, status, rows, n, last ? last : "");
  free(last);
}

/* read_changes, or with feed read_feed (schema writes among the changes). */
static int submit_changes(tc_backend_t *b, const char *tenant_id, const char *after,
                          const char *upto, uint32_t limit, tc_backend_cb_t cb, int feed,
                          void *arg) {
  uint64_t from, to = UINT64_MAX;
  int rc = token_revision(b, after, &from);
  if (rc == 0 && upto) rc = token_revision(b, upto, &to);
  if (rc != 0) return rc;
  tc__sq_req_t *r = req_new(b, tc__sq_exec_read_changes, deliver_changes, arg);
  if (r) {
    r->cb = cb;
    r->feed = feed;
    r->after = from;
    r->upto = to;
    r->limit = limit;
  }
  return submit(b, r, r ? copy_inputs(r, tenant_id, NULL, NULL) : 0, 0);
}

static int read_changes(tc_backend_t *b, const char *tenant_id, const char *after, const char *upto,
                        uint32_t limit, tc_changes_cb cb, void *arg) {
  return submit_changes(b, tenant_id, after, upto, limit, (tc_backend_cb_t){.changes = cb}, 0, arg);
}

static int read_feed(tc_backend_t *b, const char *tenant_id, const char *after, const char *upto,
                     uint32_t limit, tc_feed_cb cb, void *arg) {
  return submit_changes(b, tenant_id, after, upto, limit, (tc_backend_cb_t){.feed = cb}, 1, arg);
}

static void stats(tc_backend_t *b, tc_backend_stats_t *out) {
  out->writes = atomic_load(&b->n_writes);
  out->reads = atomic_load(&b->n_reads);
  out->change_reads = atomic_load(&b->n_change_reads);
}

/* The two workers as pools of one connection each, for the server's
 * /metrics: a worker is in use while it runs a batch; waiting counts the
 * requests queued behind it. */
static void metrics(tc_backend_t *b, tc_backend_metric_fn emit, void *arg) {
  const struct {
    const char *name;
    tc__sq_worker_t *w;
  } workers[] = {{"writer", &b->writer}, {"reader", &b->reader}};
  for (size_t i = 0; i < 2; i++) {
    int running;
    size_t queued;
    tc__sq_worker_load(workers[i].w, &running, &queued);
    emit(arg, TC_BACKEND_METRIC_POOL_OPEN, workers[i].name, 1);
    emit(arg, TC_BACKEND_METRIC_POOL_IN_USE, workers[i].name, (uint64_t)running);
    emit(arg, TC_BACKEND_METRIC_POOL_WAITING, workers[i].name, queued);
  }
}

static const char *instance_id(tc_backend_t *b) { return b->instance_id; }

/* ---- create and destroy -------------------------------------------------- */

/* Runs once nothing is in flight: both workers are idle, so joining them
 * does not block the loop. */
static void finish(tc_completion_t *c) {
  tc_backend_t *b = TC_CONTAINER_OF(c, tc_backend_t, finish);
  tc__sq_worker_stop(&b->writer);
  if (b->ckpt.db) tc__sq_worker_stop(&b->ckpt);
  tc__sq_worker_stop(&b->reader);
  void (*cb)(void *) = b->destroy_cb;
  void *arg = b->destroy_arg;
  free(b);
  if (cb) cb(arg);
}

static void destroy(tc_backend_t *b, void (*cb)(void *arg), void *arg) {
  b->closing = 1;
  b->destroy_cb = cb;
  b->destroy_arg = arg;
  post_finish(b);
}

/* The newest committed revision at start-up (0 for a new database). */
static int read_head_rev(tc_backend_t *b, sqlite3 *db, char **errmsg) {
  sqlite3_stmt *st = NULL;
  int rc = tc__sq_prepare(db, "SELECT coalesce(max(id), 0) FROM transactions", &st);
  if (rc == SQLITE_OK && (rc = tc__sq_step(st)) == SQLITE_ROW)
    b->head_rev = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (rc == SQLITE_ROW) return 0;
  *errmsg = tc_format("sqlite backend: reading the newest revision: %s", sqlite3_errmsg(db));
  return TC_EDATASTORE;
}

static int create(const tc_host_api_t *host, const char *uri, const char *const *options,
                  tc_backend_t **out, char **errmsg) {
  (void)options;
  *out = NULL;
  *errmsg = NULL;
  int rc = tc_host_check(host, "sqlite", errmsg);
  if (rc) return rc;
  if (!uri || !*uri) uri = DEFAULT_FILE;
  tc_backend_t *b = calloc(1, sizeof *b);
  if (!b) return TC_ENOMEM;
  b->host = host;
  b->finish.run = finish;

  /* A private name per backend, so two memory backends never share data. */
  int is_memory = strcmp(uri, MEMORY_URI) == 0;
  char path[96];
  if (is_memory) {
    unsigned char rnd[8];
    sqlite3_randomness(sizeof rnd, rnd);
    int n = snprintf(path, sizeof path, "file:tc-mem-");
    for (size_t i = 0; i < sizeof rnd; i++) n += snprintf(path + n, 3, "%02x", rnd[i]);
    snprintf(path + n, sizeof path - (size_t)n, "?mode=memory&cache=shared");
    uri = path;
  }

  sqlite3 *wdb = NULL, *rdb = NULL, *cdb = NULL;
  rc = tc__sq_open(uri, is_memory, &wdb, errmsg);
  if (rc == 0) rc = tc__sq_migrate(wdb, -1, b->instance_id, errmsg);
  if (rc == 0) rc = read_head_rev(b, wdb, errmsg);
  if (rc == 0) rc = tc__sq_open(uri, is_memory, &rdb, errmsg);
  if (rc == 0 && !is_memory && (rc = tc__sq_open(uri, 0, &cdb, errmsg)) != 0) sqlite3_close(rdb);
  if (rc != 0) {
    sqlite3_close(wdb);
    free(b);
    return rc;
  }
  if ((rc = tc__sq_worker_start(&b->writer, host, wdb, 1)) != 0) {
    sqlite3_close(rdb);
    sqlite3_close(cdb);
    free(b);
    return rc;
  }
  if ((rc = tc__sq_worker_start(&b->reader, host, rdb, 0)) != 0) {
    tc__sq_worker_stop(&b->writer);
    sqlite3_close(cdb);
    free(b);
    return rc;
  }
  if (cdb && (rc = tc__sq_worker_start(&b->ckpt, host, cdb, 0)) != 0) {
    tc__sq_worker_stop(&b->writer);
    tc__sq_worker_stop(&b->reader);
    free(b);
    return rc;
  }
  /* Set on the writer's connection from here: the writer thread has no
   * request yet, since the loop submits none until create returns. */
  if (cdb) tc__sq_checkpoint_hook(wdb, &b->ckpt);
  host->log(TC_LOG_INFO, "sqlite backend: %s", is_memory ? "a database in memory" : uri);
  *out = b;
  return 0;
}

static const tc_backend_api_t api = {
    TC_BACKEND_API_HEADER("sqlite", TC_VERSION),
    .create = create,
    .destroy = destroy,
    .instance_id = instance_id,
    .token_check = token_check,
    .tenant_create = tenant_create,
    .tenant_get = tenant_get,
    .tenant_delete = tenant_delete,
    .tenant_list = tenant_list,
    .schema_write = schema_write,
    .schema_read = schema_read,
    .schema_list = schema_list,
    .write = write_batch,
    .read_tuples = read_tuples,
    .read_attrs = read_attrs,
    .head = head,
    .read_changes = read_changes,
    .stats = stats,
    .bundle_write = bundle_write,
    .bundle_read = bundle_read,
    .bundle_delete = bundle_delete,
    .metrics = metrics,
    .ping = ping,
    .read_feed = read_feed,
    .tenant_state = tenant_state,
};

TC_BACKEND_ENTRY(api)
