/* The SQLite schema's migrations on a database file: data written at
 * schema version 1 survives the later ones.  Migration 2 keys the change log
 * by tenant; migration 3 folds the active-tuple unique index and the entity
 * index into one unique index that ends in expired_rev. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite_internal.h"

#define LATEST 5

static char dir[] = "/tmp/tc-sqmig-XXXXXX";
static char path[64];

static sqlite3 *open_at(int upto, char *instance) {
  sqlite3 *db = NULL;
  char *err = NULL;
  if (tc__sq_open(path, 0, &db, &err) || tc__sq_migrate(db, upto, instance, &err))
    fail_msg("open/migrate: %s", err ? err : "?");
  return db;
}

/* The single integer of a query. */
static long long int1(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long long v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* Whether the query plan of sql mentions what (an index, a sort). */
static int plan_uses(sqlite3 *db, const char *sql, const char *what) {
  char q[512];
  snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
  int uses = 0;
  while (sqlite3_step(st) == SQLITE_ROW)
    if (strstr((const char *)sqlite3_column_text(st, 3), what)) uses = 1;
  sqlite3_finalize(st);
  return uses;
}

/* The backend's read of a tenant's change log. */
static const char read_log_sql[] =
    "SELECT revision, seq, entity_id, value FROM changes"
    " WHERE tenant_id = ?1 AND revision > 0 AND revision <= 100"
    " ORDER BY revision, seq";

/* "rev.seq:entity_id:value" of the tenant's changes in that read's order,
 * space-separated. */
static void read_log(sqlite3 *db, const char *tenant, char *out, size_t size) {
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, read_log_sql, -1, &st, NULL), SQLITE_OK);
  sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
  out[0] = '\0';
  while (sqlite3_step(st) == SQLITE_ROW) {
    size_t n = strlen(out);
    snprintf(out + n, size - n, "%s%lld.%lld:%s:%.*s", n ? " " : "", sqlite3_column_int64(st, 0),
             sqlite3_column_int64(st, 1), sqlite3_column_text(st, 2), sqlite3_column_bytes(st, 3),
             (const char *)sqlite3_column_blob(st, 3));
  }
  sqlite3_finalize(st);
}

static void test_change_log_keyed_by_tenant(void **state) {
  (void)state;
  char id1[33], id2[33], log[512];
  sqlite3 *db = open_at(1, id1);
  assert_int_equal(int1(db, "PRAGMA user_version"), 1);
  assert_int_equal(
      tc__sq_exec(db,
                  "INSERT INTO changes (revision, seq, tenant_id, op, kind, entity_type,"
                  " entity_id, attribute, value) VALUES"
                  " (3, 0, 'a', 1, 2, 'doc', 'a3', 'x', X'7633'),"
                  " (1, 1, 'a', 1, 2, 'doc', 'a1b', 'x', X'7631'),"
                  " (2, 0, 'b', 1, 2, 'doc', 'b2', 'x', X'7632'),"
                  " (1, 0, 'a', 2, 2, 'doc', 'a1a', 'x', X'7630')"),
      SQLITE_OK);
  sqlite3_close(db);

  db = open_at(-1, id2);
  assert_string_equal(id1, id2);
  assert_int_equal(int1(db, "PRAGMA user_version"), LATEST);
  assert_int_equal(int1(db, "SELECT count(*) FROM sqlite_master WHERE name = 'idx_changes_tenant'"),
                   0);
  assert_int_equal(int1(db, "SELECT count(*) FROM sqlite_master WHERE name = 'changes_v2'"), 0);
  read_log(db, "a", log, sizeof log);
  assert_string_equal(log, "1.0:a1a:v0 1.1:a1b:v1 3.0:a3:v3");
  assert_false(plan_uses(db, read_log_sql, "TEMP B-TREE")); /* the key gives the order */
  read_log(db, "b", log, sizeof log);
  assert_string_equal(log, "2.0:b2:v2");
  sqlite3_close(db);

  db = open_at(-1, id2); /* nothing left to do */
  assert_int_equal(int1(db, "PRAGMA user_version"), LATEST);
  assert_int_equal(int1(db, "SELECT count(*) FROM changes"), 4);
  sqlite3_close(db);
}

#define TUPLE_COLS                                                                            \
  "(tenant_id, entity_type, entity_id, relation, subject_type, subject_id, subject_relation," \
  " created_rev, expired_rev)"

static void test_one_unique_tuple_index(void **state) {
  (void)state;
  char id[33];
  unlink(path);
  sqlite3 *db = open_at(1, id);
  /* doc:1#viewer@user:u created at 1, deleted at 2, created again at 3 and
   * deleted at 3 (a DELETE of its own), created at 4 and live. */
  assert_int_equal(tc__sq_exec(db, "INSERT INTO relation_tuples " TUPLE_COLS " VALUES"
                                   " ('a', 'doc', '1', 'viewer', 'user', 'u', '', 1, 2),"
                                   " ('a', 'doc', '1', 'viewer', 'user', 'u', '', 3, 3),"
                                   " ('a', 'doc', '1', 'viewer', 'user', 'u', '', 4,"
                                   "  9223372036854775807)"),
                   SQLITE_OK);
  sqlite3_close(db);
  db = open_at(-1, id);
  assert_int_equal(int1(db, "SELECT count(*) FROM relation_tuples"), 3);
  assert_int_equal(int1(db,
                        "SELECT count(*) FROM sqlite_master WHERE name IN"
                        " ('uq_relation_tuples_active', 'idx_tuples_entity')"),
                   0);
  /* A second live copy conflicts, as the writer's ON CONFLICT DO NOTHING needs. */
  assert_int_equal(tc__sq_exec(db, "INSERT INTO relation_tuples " TUPLE_COLS " VALUES"
                                   " ('a', 'doc', '1', 'viewer', 'user', 'u', '', 5,"
                                   "  9223372036854775807) ON CONFLICT DO NOTHING"),
                   SQLITE_OK);
  assert_int_equal(int1(db, "SELECT count(*) FROM relation_tuples"), 3);
  assert_true(plan_uses(db,
                        "SELECT id FROM relation_tuples WHERE tenant_id = 'a' AND entity_type ="
                        " 'doc' AND entity_id = '1' AND relation = 'viewer'",
                        "uq_relation_tuples"));
  sqlite3_close(db);
}

static int setup(void **state) {
  (void)state;
  if (!mkdtemp(dir)) return -1;
  snprintf(path, sizeof path, "%s/t.db", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  static const char *const suffix[] = {"", "-wal", "-shm"};
  char p[80];
  for (size_t i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s%s", path, suffix[i]);
    unlink(p);
  }
  return rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_change_log_keyed_by_tenant),
      cmocka_unit_test(test_one_unique_tuple_index),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
