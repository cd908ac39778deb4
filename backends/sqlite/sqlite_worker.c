/* Worker threads: each owns one connection and a FIFO queue.  The writer
 * drains everything queued into one transaction (group commit), where a
 * failing request is left out on a second run; the checkpointer runs only
 * the checkpoints the writer's WAL asks for (sqlite_checkpoint.c); the reader
 * runs requests one by one in autocommit mode.  Completions are posted to the
 * loop in queue order, and for the writer only after COMMIT. */
#include "sqlite_internal.h"

static int fail_unless(tc__sq_worker_t *w, int rc, const char *what) {
  return rc == SQLITE_OK ? 0 : tc__sq_fail(w->host, w->db, what);
}

/* Requests that had succeeded lost their effects. */
static void undo(tc__sq_req_t *batch, int status) {
  for (tc__sq_req_t *r = batch; r; r = r->next)
    if (r->status == 0) r->status = status;
}

/* One transaction for the whole batch.  Savepoints would let a failing
 * request roll back alone, but SQLite copies every page a savepoint first
 * touches into its sub-journal: a write of 1000 tuples copied about 4 MB,
 * a fifth of the writer's time.  So the requests run bare, and when one
 * fails the transaction rolls back and runs again without it (requests
 * with a status are left out); only failures pay. */
static void run_group(tc__sq_worker_t *w, tc__sq_req_t *batch) {
  for (;;) {
    int rc = fail_unless(w, tc__sq_exec(w->db, "BEGIN IMMEDIATE"), "begin");
    if (rc != 0) return undo(batch, rc);
    tc__sq_req_t *failed = NULL;
    size_t n = 0;
    for (tc__sq_req_t *r = batch; r && !failed; r = r->next) {
      if (r->status != 0) continue;
      if ((r->status = r->exec(r, w->db)) != 0) failed = r;
      n++;
    }
    if (failed) {
      /* SQLite may have rolled back already (I/O error, full disk). */
      if (!sqlite3_get_autocommit(w->db)) tc__sq_exec(w->db, "ROLLBACK");
      continue;
    }
    if (fail_unless(w, tc__sq_exec(w->db, "COMMIT"), "commit") != 0) {
      if (!sqlite3_get_autocommit(w->db)) tc__sq_exec(w->db, "ROLLBACK");
      return undo(batch, TC_EDATASTORE);
    }
    w->host->log(TC_LOG_DEBUG, "sqlite backend: committed %zu requests in one transaction", n);
    return;
  }
}

static void *run(void *arg) {
  tc__sq_worker_t *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->lock);
    while (!w->head && !w->want_ckpt && !w->stop) pthread_cond_wait(&w->wake, &w->lock);
    tc__sq_req_t *batch = w->head;
    int ckpt = w->want_ckpt;
    w->running = batch != NULL;
    w->queued = 0;
    w->head = w->tail = NULL;
    w->want_ckpt = 0;
    pthread_mutex_unlock(&w->lock);
    if (ckpt) tc__sq_checkpoint(w->db, w->host);
    if (!batch && ckpt) continue;
    if (!batch) return NULL; /* stopping, and nothing left to run */

    if (w->group_commit)
      run_group(w, batch);
    else
      for (tc__sq_req_t *r = batch; r; r = r->next) r->status = r->exec(r, w->db);

    /* Idle before the loop hears of it: a caller that has its answer sees
     * the worker idle in /metrics. */
    pthread_mutex_lock(&w->lock);
    w->running = 0;
    pthread_mutex_unlock(&w->lock);
    /* The loop may free a request as soon as it is posted. */
    for (tc__sq_req_t *r = batch, *next; r; r = next) {
      next = r->next;
      w->host->post(w->host, &r->done);
    }
  }
}

int tc__sq_worker_start(tc__sq_worker_t *w, const tc_host_api_t *host, sqlite3 *db,
                        int group_commit) {
  *w = (tc__sq_worker_t){.group_commit = group_commit, .db = db, .host = host};
  if (pthread_mutex_init(&w->lock, NULL) != 0) goto fail_lock;
  if (pthread_cond_init(&w->wake, NULL) != 0) goto fail_cond;
  if (pthread_create(&w->thread, NULL, run, w) != 0) goto fail_thread;
  return 0;
fail_thread:
  pthread_cond_destroy(&w->wake);
fail_cond:
  pthread_mutex_destroy(&w->lock);
fail_lock:
  sqlite3_close(db);
  return TC_EINTERNAL;
}

void tc__sq_worker_push(tc__sq_worker_t *w, tc__sq_req_t *r) {
  r->next = NULL;
  pthread_mutex_lock(&w->lock);
  if (w->tail)
    w->tail->next = r;
  else
    w->head = r;
  w->tail = r;
  w->queued++;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->lock);
}

void tc__sq_worker_load(tc__sq_worker_t *w, int *running, size_t *queued) {
  pthread_mutex_lock(&w->lock);
  *running = w->running;
  *queued = w->queued;
  pthread_mutex_unlock(&w->lock);
}

void tc__sq_worker_want_checkpoint(tc__sq_worker_t *w) {
  pthread_mutex_lock(&w->lock);
  w->want_ckpt = 1;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->lock);
}

void tc__sq_worker_stop(tc__sq_worker_t *w) {
  pthread_mutex_lock(&w->lock);
  w->stop = 1;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->wake);
  pthread_mutex_destroy(&w->lock);
  sqlite3_close(w->db);
}
