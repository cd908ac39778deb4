/* test_pg_fixture: the throwaway PostgreSQL cluster starts with its settings
 * and the caller's conf lines on top, restarts, makes databases, runs beside
 * another one, and leaves no directory behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pg_fixture.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The single value sql returns on uri, malloc'd; NULL if the query fails. */
static char *query1(const char *uri, const char *sql) {
  PGconn *c = PQconnectdb(uri);
  char *v = NULL;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
  } else {
    fprintf(stderr, "connect %s: %s", uri, PQerrorMessage(c));
  }
  PQfinish(c);
  return v;
}

static void assert_query(const char *uri, const char *sql, const char *want) {
  char *got = query1(uri, sql);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

/* The cluster directory: the URI's host parameter. */
static char *uri_dir(const char *uri) {
  PQconninfoOption *opts = PQconninfoParse(uri, NULL);
  assert_non_null(opts);
  char *dir = NULL;
  for (PQconninfoOption *o = opts; o->keyword; o++)
    if (!strcmp(o->keyword, "host") && o->val) dir = strdup(o->val);
  PQconninfoFree(opts);
  assert_non_null(dir);
  return dir;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_lifecycle(void **state) {
  (void)state;
  const char *conf[] = {"work_mem = '7MB'", "fsync = on", NULL};
  tc_pg_opts_t opts = {.track_commit_timestamp = 1, .conf = conf};
  tc_pg_t *a;
  double t0 = seconds();
  assert_int_equal(tc_pg_start(&opts, &a), 0);
  printf("cluster started in %.2f s\n", seconds() - t0);
  const char *uri = tc_pg_uri(a);
  assert_non_null(strstr(uri, "postgresql:///tuplecast?host=/tmp/tcpg-"));
  char *dir_a = uri_dir(uri);
  assert_true(exists(dir_a));

  assert_query(uri, "SELECT current_database()", "tuplecast");
  assert_query(uri, "SHOW track_commit_timestamp", "on");
  assert_query(uri, "SHOW synchronous_commit", "off");
  assert_query(uri, "SHOW max_connections", "200");
  assert_query(uri, "SHOW listen_addresses", "");
  /* The caller's lines come last: they add settings and override ours. */
  assert_query(uri, "SHOW work_mem", "7MB");
  assert_query(uri, "SHOW fsync", "on");

  assert_int_equal(tc_pg_set(a, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"), 0);
  assert_int_equal(tc_pg_set(a, "SELECT no_such_column"), -1);

  assert_int_equal(tc_pg_restart(a), 0);
  assert_query(uri, "SELECT x FROM t", "42");
  assert_query(uri, "SHOW track_commit_timestamp", "on");

  /* A name that needs quoting in SQL and encoding in the URI; asking twice
   * finds the database already there. */
  const char *other = tc_pg_uri_db(a, "other db");
  assert_non_null(other);
  assert_query(other, "SELECT current_database()", "other db");
  assert_non_null(tc_pg_uri_db(a, "other db"));

  /* A second cluster beside the first, on the same port number. */
  tc_pg_t *b;
  assert_int_equal(tc_pg_start(&(tc_pg_opts_t){.track_commit_timestamp = 0}, &b), 0);
  char *dir_b = uri_dir(tc_pg_uri(b));
  assert_string_not_equal(dir_a, dir_b);
  assert_query(tc_pg_uri(b), "SHOW track_commit_timestamp", "off");
  assert_query(tc_pg_uri(b), "SHOW fsync", "off");
  assert_query(uri, "SELECT x FROM t", "42");

  tc_pg_stop(a);
  tc_pg_stop(b);
  assert_false(exists(dir_a));
  assert_false(exists(dir_b));
  free(dir_a);
  free(dir_b);
}

/* A test that aborts (an assertion, a sanitizer) takes its cluster with it:
 * the fixture's warden stops it and removes its directory. */
static void test_cluster_dies_with_its_process(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    tc_pg_t *pg;
    if (tc_pg_start(NULL, &pg) != 0) _exit(1);
    dprintf(fds[1], "%s\n", tc_pg_uri(pg));
    abort();
  }
  close(fds[1]);
  char uri[512] = "";
  FILE *in = fdopen(fds[0], "r");
  assert_non_null(fgets(uri, sizeof uri, in));
  fclose(in);
  uri[strcspn(uri, "\n")] = '\0';
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  char *dir = uri_dir(uri);
  double deadline = seconds() + 30;
  while (exists(dir) && seconds() < deadline) nanosleep(&(struct timespec){0, 5000000}, NULL);
  assert_false(exists(dir));
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lifecycle),
      cmocka_unit_test(test_cluster_dies_with_its_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
