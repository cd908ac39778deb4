/* Worker threads: each owns one connection and a FIFO queue.  The writer
 * drains everything queued into one transaction (group commit), one
 * savepoint per request so a failing request rolls back alone; the reader
 * runs requests one by one in autocommit mode.  Completions are posted to the
 * loop in queue order, and for the writer only after COMMIT. */
#include "sqlite_internal.h"

static int fail_unless(tc__sq_worker_t *w, int rc, const char *what) {
  return rc == SQLITE_OK ? 0 : tc__sq_fail(w->host, w->db, what);
}

/* Requests [from, to) that had succeeded lost their effects. */
static void undo(tc__sq_req_t *from, tc__sq_req_t *to) {
  for (tc__sq_req_t *r = from; r != to; r = r->next)
    if (r->status == 0) r->status = TC_EDATASTORE;
}

static void run_in_savepoint(tc__sq_worker_t *w, tc__sq_req_t *r) {
  r->status = fail_unless(w, tc__sq_exec(w->db, "SAVEPOINT req"), "savepoint");
  if (r->status != 0) return;
  r->status = r->exec(r, w->db);
  if (r->status != 0 && !sqlite3_get_autocommit(w->db))
    tc__sq_exec(w->db, "ROLLBACK TO req");
  if (!sqlite3_get_autocommit(w->db)) {
    int rc = fail_unless(w, tc__sq_exec(w->db, "RELEASE req"), "release savepoint");
    if (r->status == 0) r->status = rc;
  }
}

static void run_group(tc__sq_worker_t *w, tc__sq_req_t *batch) {
  tc__sq_req_t *first = batch; /* first request of the open transaction */
  int open = 0;
  for (tc__sq_req_t *r = batch; r; r = r->next) {
    if (!open) {
      first = r;
      r->status = fail_unless(w, tc__sq_exec(w->db, "BEGIN IMMEDIATE"), "begin");
      if (r->status != 0) continue;
      open = 1;
    }
    run_in_savepoint(w, r);
    if (sqlite3_get_autocommit(w->db)) {
      /* SQLite rolled the whole transaction back (I/O error, full disk). */
      undo(first, r->next);
      open = 0;
    }
  }
  if (!open) return;
  size_t n = 0;
  for (tc__sq_req_t *r = first; r; r = r->next) n++;
  if (fail_unless(w, tc__sq_exec(w->db, "COMMIT"), "commit") != 0) {
    if (!sqlite3_get_autocommit(w->db)) tc__sq_exec(w->db, "ROLLBACK");
    undo(first, NULL);
    return;
  }
  w->host->log(TC_LOG_DEBUG, "sqlite backend: committed %zu requests in one transaction",
               n);
}

static void *run(void *arg) {
  tc__sq_worker_t *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->lock);
    while (!w->head && !w->stop) pthread_cond_wait(&w->wake, &w->lock);
    tc__sq_req_t *batch = w->head;
    w->head = w->tail = NULL;
    pthread_mutex_unlock(&w->lock);
    if (!batch) return NULL; /* stopping, and nothing left to run */

    if (w->group_commit)
      run_group(w, batch);
    else
      for (tc__sq_req_t *r = batch; r; r = r->next) r->status = r->exec(r, w->db);

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
