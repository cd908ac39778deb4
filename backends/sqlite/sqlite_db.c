/* SQLite connections: opening, migrations, and statement helpers that wait
 * out shared-cache table locks (the :memory: database is one shared cache
 * used by two connections, where busy_timeout does not apply). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sqlite_internal.h"

#define BUSY_TIMEOUT_MS 5000

static char *message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *message(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

int64_t tc__sq_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tc__sq_fail(const tc_host_api_t *host, sqlite3 *db, const char *what) {
  host->log(TC_LOG_ERROR, "sqlite backend: %s: %s (%d)", what, sqlite3_errmsg(db),
            sqlite3_extended_errcode(db));
  return TC_EDATASTORE;
}

char *tc__sq_column_dup(tc_arena_t *a, sqlite3_stmt *st, int i) {
  const unsigned char *s = sqlite3_column_text(st, i);
  return tc_arena_memdup(a, s ? (const char *)s : "", (size_t)sqlite3_column_bytes(st, i) + 1);
}

/* ---- waiting for shared-cache locks (SQLite's unlock_notify recipe) ------ */

typedef struct unlock_wait_s {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int fired;
} unlock_wait_t;

static void on_unlock(void **args, int n) {
  for (int i = 0; i < n; i++) {
    unlock_wait_t *w = args[i];
    pthread_mutex_lock(&w->lock);
    w->fired = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
  }
}

/* SQLITE_OK once the blocking connection finished its transaction;
 * SQLITE_LOCKED if waiting would deadlock. */
static int wait_for_unlock(sqlite3 *db) {
  unlock_wait_t w = {.fired = 0};
  pthread_mutex_init(&w.lock, NULL);
  pthread_cond_init(&w.cond, NULL);
  int rc = sqlite3_unlock_notify(db, on_unlock, &w);
  if (rc == SQLITE_OK) {
    pthread_mutex_lock(&w.lock);
    while (!w.fired) pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
  }
  pthread_cond_destroy(&w.cond);
  pthread_mutex_destroy(&w.lock);
  return rc;
}

static int is_locked(int rc) { return (rc & 0xff) == SQLITE_LOCKED; }

int tc__sq_step(sqlite3_stmt *st) {
  int rc;
  while (is_locked(rc = sqlite3_step(st))) {
    if (wait_for_unlock(sqlite3_db_handle(st)) != SQLITE_OK) break;
    sqlite3_reset(st);
  }
  return rc;
}

int tc__sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out) {
  int rc;
  while (is_locked(rc = sqlite3_prepare_v2(db, sql, -1, out, NULL)))
    if (wait_for_unlock(db) != SQLITE_OK) break;
  return rc;
}

int tc__sq_exec(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  int rc = tc__sq_prepare(db, sql, &st);
  if (rc != SQLITE_OK) return rc;
  while ((rc = tc__sq_step(st)) == SQLITE_ROW) continue;
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- opening and migrations ---------------------------------------------- */

int tc__sq_open(const char *path, int is_memory, sqlite3 **out, char **errmsg) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (strncmp(path, "file:", 5) == 0) flags |= SQLITE_OPEN_URI;
  if (is_memory) flags |= SQLITE_OPEN_SHAREDCACHE;
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, flags, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
  if (rc == SQLITE_OK && !is_memory) rc = tc__sq_exec(db, "PRAGMA journal_mode=WAL");
  if (rc == SQLITE_OK) rc = tc__sq_exec(db, "PRAGMA synchronous=NORMAL");
  /* SQLite's default page cache is 2 MB; index inserts into a database of
   * any size then re-read pages through the kernel for every write. */
  if (rc == SQLITE_OK) rc = tc__sq_exec(db, "PRAGMA cache_size=-65536");
  if (rc != SQLITE_OK) {
    *errmsg = message("sqlite backend: cannot open %s: %s", path,
                      db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return TC_EDATASTORE;
  }
  *out = db;
  return 0;
}

#define ACTIVE_SQL "9223372036854775807"
#define NOW_MS_SQL "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

#define CHANGES_COLUMNS                                                          \
  "revision INTEGER NOT NULL, seq INTEGER NOT NULL, tenant_id TEXT NOT NULL,"    \
  " op INTEGER NOT NULL, kind INTEGER NOT NULL, entity_type TEXT NOT NULL,"      \
  " entity_id TEXT NOT NULL, relation TEXT, subject_type TEXT, subject_id TEXT," \
  " subject_relation TEXT, attribute TEXT, value BLOB"

/* migrations[i] moves user_version from i to i + 1; append only. */
static const char *const migrations[] = {
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta VALUES ('instance_id', lower(hex(randomblob(16))));"
    "CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO tenants VALUES ('t1', 'example tenant', " NOW_MS_SQL
    ");"
    "CREATE TABLE transactions (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  tenant_id TEXT NOT NULL, committed_at INTEGER NOT NULL);"
    "CREATE INDEX idx_transactions_tenant ON transactions (tenant_id, id);"
    "CREATE TABLE schema_definitions (tenant_id TEXT NOT NULL, version TEXT NOT NULL,"
    "  text TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (tenant_id, version)) WITHOUT ROWID;"
    "CREATE TABLE relation_tuples (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL,"
    "  entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, relation TEXT NOT NULL,"
    "  subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,"
    "  subject_relation TEXT NOT NULL, created_rev INTEGER NOT NULL,"
    "  expired_rev INTEGER NOT NULL DEFAULT " ACTIVE_SQL
    ");"
    "CREATE UNIQUE INDEX uq_relation_tuples_active ON relation_tuples (tenant_id,"
    "  entity_type, entity_id, relation, subject_type, subject_id, subject_relation)"
    "  WHERE expired_rev = " ACTIVE_SQL
    ";"
    "CREATE INDEX idx_tuples_entity ON relation_tuples (tenant_id, entity_type,"
    "  entity_id, relation);"
    "CREATE INDEX idx_tuples_subject ON relation_tuples (tenant_id, subject_type,"
    "  subject_id, subject_relation, entity_type, relation);"
    "CREATE TABLE attributes (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL,"
    "  entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, attribute TEXT NOT NULL,"
    "  value BLOB NOT NULL, created_rev INTEGER NOT NULL,"
    "  expired_rev INTEGER NOT NULL DEFAULT " ACTIVE_SQL
    ");"
    "CREATE UNIQUE INDEX uq_attributes_active ON attributes (tenant_id, entity_type,"
    "  entity_id, attribute) WHERE expired_rev = " ACTIVE_SQL
    ";"
    "CREATE INDEX idx_attributes_entity ON attributes (tenant_id, entity_type,"
    "  entity_id, attribute);"
    "CREATE TABLE changes (" CHANGES_COLUMNS
    ", PRIMARY KEY (revision, seq)) WITHOUT ROWID;"
    "CREATE INDEX idx_changes_tenant ON changes (tenant_id, revision, seq);",
    /* 2: the change log keyed by tenant.  Every read and delete names the
     * tenant, and the second B-tree cost each logged change an insert
     * (batched writes +9 %). */
    "CREATE TABLE changes_v2 (" CHANGES_COLUMNS
    ","
    "  PRIMARY KEY (tenant_id, revision, seq)) WITHOUT ROWID;"
    "INSERT INTO changes_v2 SELECT * FROM changes;"
    "DROP TABLE changes;"
    "ALTER TABLE changes_v2 RENAME TO changes;",
    /* 3 */
    "CREATE UNIQUE INDEX uq_relation_tuples ON relation_tuples (tenant_id, entity_type,"
    "  entity_id, relation, subject_type, subject_id, subject_relation, expired_rev);"
    "DROP INDEX uq_relation_tuples_active;"
    "DROP INDEX idx_tuples_entity;",
    /* 4: data bundles (Bundle.Write), as Permify's bundles table keys them;
     * payload: the packed Any of base.v1.DataBundle. */
    "CREATE TABLE bundles (name TEXT NOT NULL, tenant_id TEXT NOT NULL,"
    "  payload BLOB NOT NULL, created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (name, tenant_id)) WITHOUT ROWID;",
    /* 5: schema writes are revisions, logged in `changes` as kind 3 (the
     * version in entity_type): the step stops an older build, which would
     * read those rows as attributes.  And a tenant's rows by id, for reads
     * paged by id (Watch's initial state, ReadRelationships): through the
     * other indexes each page sorted the tenant's every row, 3 s a page
     * at a million tuples, against 7 ms. */
    "CREATE INDEX idx_tuples_tenant_id ON relation_tuples (tenant_id, id);"
    "CREATE INDEX idx_attributes_tenant_id ON attributes (tenant_id, id);",
};
#define N_MIGRATIONS (int)(sizeof migrations / sizeof migrations[0])

static int user_version(sqlite3 *db, int *out) {
  sqlite3_stmt *st;
  int rc = tc__sq_prepare(db, "PRAGMA user_version", &st);
  if (rc != SQLITE_OK) return rc;
  rc = tc__sq_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int(st, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static int read_instance_id(sqlite3 *db, char *out) {
  sqlite3_stmt *st;
  int rc = tc__sq_prepare(db, "SELECT value FROM meta WHERE key = 'instance_id'", &st);
  if (rc != SQLITE_OK) return rc;
  rc = tc__sq_step(st);
  if (rc == SQLITE_ROW) {
    snprintf(out, 33, "%s", (const char *)sqlite3_column_text(st, 0));
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_CORRUPT;
  }
  sqlite3_finalize(st);
  return rc;
}

int tc__sq_migrate(sqlite3 *db, int upto, char *out, char **errmsg) {
  int version = 0;
  if (upto < 0 || upto > N_MIGRATIONS) upto = N_MIGRATIONS;
  int rc = tc__sq_exec(db, "BEGIN IMMEDIATE");
  if (rc == SQLITE_OK) rc = user_version(db, &version);
  if (rc == SQLITE_OK && version > N_MIGRATIONS) {
    *errmsg = message(
        "sqlite backend: database schema version %d is newer than "
        "this build knows (%d)",
        version, N_MIGRATIONS);
    tc__sq_exec(db, "ROLLBACK");
    return TC_EDATASTORE;
  }
  for (; rc == SQLITE_OK && version < upto; version++) {
    rc = sqlite3_exec(db, migrations[version], NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
      char pragma[64];
      snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version + 1);
      rc = tc__sq_exec(db, pragma);
    }
  }
  if (rc == SQLITE_OK) rc = tc__sq_exec(db, "COMMIT");
  if (rc == SQLITE_OK) rc = read_instance_id(db, out);
  if (rc != SQLITE_OK) {
    *errmsg = message("sqlite backend: migration to version %d failed: %s", version + 1,
                      sqlite3_errmsg(db));
    if (!sqlite3_get_autocommit(db)) tc__sq_exec(db, "ROLLBACK");
    return TC_EDATASTORE;
  }
  return 0;
}
