/* database.max_connections against the server's own limits, on a throwaway
 * cluster with max_connections = 20: a pool the server can never hold is
 * refused at start with one line naming the key and the server's limit (exit
 * 2), and a pool that only finds the server busy starts with one warning,
 * its links' "too many clients" failures written once and then once more
 * with a count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "pg_fixture.h"
#include "server_proc.h"

static tc_pg_t *pg;

static size_t count_lines(const char *log, const char *needle) {
  size_t n = 0;
  for (const char *p = log; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
  return n;
}

/* Runs serve on uri with the given pool size; returns its exit status and
 * its output in *out. */
static int serve_pool(const char *uri, const char *pool, char **out) {
  const char *args[] = {"serve",    "--grpc-port",
                        "0",        "--http-port",
                        "0",        "--database-engine",
                        "postgres", "--database-uri",
                        uri,        "--database-max-connections",
                        pool,       NULL};
  return tc_proc_run(args, out);
}

static void expect_refused(const char *uri, const char *pool, const char *want) {
  char *out = NULL;
  int rc = serve_pool(uri, pool, &out);
  if (rc != 2 || strstr(out, want) == NULL)
    fail_msg("pool %s: want exit 2 and '%s', got %d:\n%s", pool, want, rc, out);
  assert_int_equal(count_lines(out, "database.max_connections: "), 1);
  assert_int_equal(count_lines(out, "too many clients"), 0);
  assert_int_equal(count_lines(out, " warn "), 0);
  free(out);
}

static void test_pool_past_server_refused(void **state) {
  (void)state;
  const char *uri = tc_pg_uri(pg);
  /* The fixture's user is a superuser: all 20 slots are its. */
  expect_refused(uri, "1000",
                 "database: database.max_connections: 1000 write connections and 4 more for "
                 "reads and change notification need 1004, more than this server allows "
                 "(max_connections 20)");
  expect_refused(uri, "17", "need 21, more than this server allows (max_connections 20)");
}

/* Another role loses the superusers' reserved slots, and its own CONNECTION
 * LIMIT binds it.  The check comes before the migrations, so the role needs
 * no privileges to be refused. */
static void test_role_limits(void **state) {
  (void)state;
  assert_int_equal(tc_pg_set(pg, "CREATE ROLE tc_small LOGIN"), 0);
  const char *base = tc_pg_uri(pg), *user = strstr(base, "user=postgres");
  assert_non_null(user);
  char uri[512];
  snprintf(uri, sizeof uri, "%.*suser=tc_small%s", (int)(user - base), base,
           user + strlen("user=postgres"));
  expect_refused(uri, "14",
                 "need 18, more than this server allows (max_connections 20 less 3 "
                 "superuser_reserved_connections)");
  assert_int_equal(tc_pg_set(pg, "ALTER ROLE tc_small CONNECTION LIMIT 6"), 0);
  expect_refused(uri, "3", "need 7, more than this server allows (the role's CONNECTION LIMIT 6)");
  assert_int_equal(tc_pg_set(pg, "DROP ROLE tc_small"), 0);
}

/* The count on the line of held-back "too many clients" warnings; 0 if none. */
static long repeated(const char *log) {
  const char *p = strstr(log, "too many clients already repeated=");
  return p ? strtol(p + strlen("too many clients already repeated="), NULL, 10) : 0;
}

/* The distinct links (labels such as "pool write #3") that logged a failed
 * connect in log. */
static size_t failing_links(const char *log) {
  static const char mark[] = ": cannot connect, retrying: ";
  char seen[32][48];
  size_t n = 0;
  for (const char *p = log; (p = strstr(p, mark)) != NULL; p += sizeof mark - 1) {
    const char *start = p;
    while (start > log && start[-1] != '\n' && strncmp(start, "postgres ", 9) != 0) start--;
    int len = (int)(p - start) < 47 ? (int)(p - start) : 47;
    size_t j = 0;
    while (j < n && (strncmp(seen[j], start, (size_t)len) != 0 || seen[j][len] != '\0')) j++;
    if (j == n && n < 32) snprintf(seen[n++], sizeof seen[0], "%.*s", len, start);
  }
  return n;
}

/* 12 of the 20 slots held elsewhere: the node needs 14, starts with one
 * warning, and the links that find no slot (6, or 7 while the slot of its
 * start-up connection is being freed) are one warning with a count.
 * At debug level each retry is a line of its own, which shows when all 6
 * have failed; the warnings are what the limiter holds back. */
static void test_busy_server_one_warning(void **state) {
  (void)state;
  PGconn *held[12];
  for (int i = 0; i < 12; i++) {
    held[i] = PQconnectdb(tc_pg_uri(pg));
    assert_int_equal(PQstatus(held[i]), CONNECTION_OK);
  }
  tc_proc_t p;
  const char *args[] = {"--grpc-port",
                        "0",
                        "--http-port",
                        "0",
                        "--database-engine",
                        "postgres",
                        "--database-uri",
                        tc_pg_uri(pg),
                        "--database-max-connections",
                        "10",
                        "--log-level",
                        "debug",
                        NULL};
  assert_int_equal(tc_proc_start(&p, args), 0);
  long long deadline = tc_now_ms() + 30000;
  while (failing_links(p.log) < 6 && tc_now_ms() < deadline)
    tc_proc_wait_log(&p, p.log_len, "cannot connect, retrying", 1000);
  /* 6 at least: the slot of create()'s own connection, closed just before
   * the pools connect, may not be free yet when they do. */
  size_t failing = failing_links(p.log);
  for (int i = 0; i < 12; i++) PQfinish(held[i]);
  assert_true(failing >= 6);
  /* Every link connects once the slots are free. */
  assert_non_null(tc_proc_wait_log(&p, 0, "connected again", 20000));
  char *log = NULL;
  assert_int_equal(tc_proc_stop(&p, &log), 0);
  if (count_lines(log,
                  "the pools need 14 connections; max_connections allows 20 and 12 are in "
                  "use by other sessions") != 1 ||
      count_lines(log, "warn  postgres: cannot connect, retrying: ") != 2 || repeated(log) < 5) {
    fprintf(stderr, "%s", log);
    fail_msg("want one warning and one repeated failure");
  }
  free(log);
}

int main(void) {
  static const char *const conf[] = {"max_connections = 20", NULL};
  tc_pg_opts_t opts = {.track_commit_timestamp = 1, .conf = conf};
  if (tc_pg_start(&opts, &pg) != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_past_server_refused),
      cmocka_unit_test(test_role_limits),
      cmocka_unit_test(test_busy_server_one_warning),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  tc_pg_stop(pg);
  return failed;
}
