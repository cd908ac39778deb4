/* Checkpoints off the writer's thread: the checkpointer worker, with its
 * own connection, copies the WAL back into the database file, so that the
 * writer never does.  SQLite's automatic checkpoint runs inside the COMMIT
 * that crosses its threshold: every 4 MB of WAL it cost each batch of 1000
 * tuples a checkpoint of the same index leaves (82,000 items/s), and every
 * 64 MB it stalled one commit for 100 ms and more (write p99 98 ms at 1,000
 * writes/s).  A PASSIVE checkpoint takes no lock the writer needs; the
 * writer's WAL hook only wakes the checkpointer. */
#include "sqlite_internal.h"

/* WAL frames (pages) after which a commit wakes the checkpointer. */
#define CKPT_FRAMES 4096
/* The WAL starts over only after a checkpoint has copied all of it, which
 * a writer that never pauses outruns with PASSIVE checkpoints alone (the
 * WAL reached 400 MB in 6 s of batched writes).  Past this many frames the
 * PASSIVE pass is followed by a RESTART one, which holds the writer back
 * only while it copies what the PASSIVE pass left and readers move on. */
#define CKPT_RESTART_FRAMES 16384

static int on_wal(void *arg, sqlite3 *db, const char *name, int frames) {
  (void)db;
  (void)name;
  if (frames >= CKPT_FRAMES) tc__sq_worker_want_checkpoint(arg);
  return SQLITE_OK;
}

void tc__sq_checkpoint_hook(sqlite3 *writer, tc__sq_worker_t *ckpt) {
  sqlite3_wal_hook(writer, on_wal, ckpt);
}

static int run(sqlite3 *db, const tc_host_api_t *host, int mode, const char *what) {
  int log = 0, done = 0;
  if (sqlite3_wal_checkpoint_v2(db, NULL, mode, &log, &done) != SQLITE_OK)
    host->log(TC_LOG_WARN, "sqlite backend: %s checkpoint failed: %s", what, sqlite3_errmsg(db));
  else
    host->log(TC_LOG_DEBUG, "sqlite backend: %s checkpoint: %d of %d WAL frames", what, done, log);
  return log;
}

void tc__sq_checkpoint(sqlite3 *db, const tc_host_api_t *host) {
  if (run(db, host, SQLITE_CHECKPOINT_PASSIVE, "passive") >= CKPT_RESTART_FRAMES)
    run(db, host, SQLITE_CHECKPOINT_RESTART, "restart");
}
