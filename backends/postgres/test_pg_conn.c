/* pg_conn against a throwaway PostgreSQL cluster: pipelined units, errors,
 * prepared statements, connection loss, queue timeout, LISTEN across a
 * restart, and closing with units in flight.  Waits run the loop until a
 * condition holds or a deadline passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pg_conn.h"
#include "log_lines.h"
#include "pg_fixture.h"
#include "tuplecast/errors.h"

typedef struct env_s {
  tc_pg_t *pg;
  const char *uri;
} env_t;

/* ---- waiting ------------------------------------------------------------- */

static void wake(uv_timer_t *t) { (void)t; }

/* Runs the loop until *value >= target or ms pass; a ticking timer keeps
 * uv_run from blocking past the deadline. */
static int wait_count(uv_loop_t *loop, const int *value, int target, unsigned ms) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_update_time(loop);
  uv_timer_start(&tick, wake, 50, 50);
  uint64_t deadline = uv_hrtime() + (uint64_t)ms * 1000000;
  while (*value < target && uv_hrtime() < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return *value >= target;
}

/* ---- outcomes and logs ----------------------------------------------------- */

enum { MAX_STMTS = 4 };

typedef struct outcome_s {
  int fired;
  int status;
  char sqlstate[8];
  char errmsg[512];
  char value[64]; /* row 0, column 0 of the last statement that returned rows */
  int have[MAX_STMTS];
  ExecStatusType st[MAX_STMTS];
} outcome_t;

static int completed; /* units whose callback ran, in the current test */

static void record(void *arg, int status, PGresult *const *results, size_t n, const char *sqlstate,
                   const char *errmsg) {
  outcome_t *o = arg;
  o->fired++;
  o->status = status;
  snprintf(o->sqlstate, sizeof o->sqlstate, "%s", sqlstate);
  snprintf(o->errmsg, sizeof o->errmsg, "%s", errmsg);
  for (size_t i = 0; i < n && i < MAX_STMTS; i++) {
    o->have[i] = results[i] != NULL;
    if (!results[i]) continue;
    o->st[i] = PQresultStatus(results[i]);
    if (o->st[i] == PGRES_TUPLES_OK && PQntuples(results[i]) > 0)
      snprintf(o->value, sizeof o->value, "%s", PQgetvalue(results[i], 0, 0));
  }
  completed++;
}

static struct { int warn, lost, again, cannot; } logs;

static void log_sink(int level, const char *buf) {
  if (level >= 2) logs.warn++;
  if (strstr(buf, "connection lost")) logs.lost++;
  if (strstr(buf, "connected again")) logs.again++;
  if (strstr(buf, "cannot connect")) logs.cannot++;
  if (getenv("TC_TEST_VERBOSE")) fprintf(stderr, "log[%d] %s\n", level, buf);
}

static void reset(void) {
  completed = 0;
  memset(&logs, 0, sizeof logs);
}

/* ---- pools ------------------------------------------------------------------ */

static tc__pg_pool_t *make_pool(uv_loop_t *loop, const char *uri, int size, int depth,
                                const char *const *setup, unsigned queue_timeout_ms) {
  tc__pg_pool_opts_t o = {.conninfo = uri,
                          .size = size,
                          .depth = depth,
                          .setup = setup,
                          .queue_timeout_ms = queue_timeout_ms,
                          .name = "test",
                          .log = tt_log};
  tc__pg_pool_t *p = NULL;
  assert_int_equal(tc__pg_pool_create(loop, &o, &p), 0);
  assert_non_null(p);
  return p;
}

static void set_flag(void *arg) { ++*(int *)arg; }

static void close_pool(uv_loop_t *loop, tc__pg_pool_t *p) {
  int closed = 0;
  tc__pg_pool_close(p, set_flag, &closed);
  assert_int_equal(closed, 0);
  assert_true(wait_count(loop, &closed, 1, 10000));
}

static void finish_loop(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0); /* every handle was closed */
}

/* One statement, waited for; its outcome. */
static outcome_t run1(uv_loop_t *loop, tc__pg_pool_t *p, const char *sql, int nparams,
                      const char *const *values) {
  outcome_t o = {0};
  tc__pg_stmt_t s = {NULL, sql, nparams, values};
  assert_int_equal(tc__pg_pool_submit(p, &s, 1, record, &o), 0);
  assert_true(wait_count(loop, &o.fired, 1, 10000));
  return o;
}

static void check_value(uv_loop_t *loop, tc__pg_pool_t *p, const char *sql, const char *want) {
  outcome_t o = run1(loop, p, sql, 0, NULL);
  assert_int_equal(o.status, 0);
  assert_string_equal(o.value, want);
}

/* ---- tests -------------------------------------------------------------------- */

static void test_many_units(void **state) {
  env_t *e = *state;
  enum { N = 200 };
  static outcome_t out[N];
  reset();
  memset(out, 0, sizeof out);
  assert_int_equal(tc_pg_set(e->pg, "CREATE TABLE t1 (v text PRIMARY KEY)"), 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  tc__pg_pool_t *p = make_pool(&loop, e->uri, 4, 2, NULL, 0);

  tc__pg_stmt_t none = {NULL, "SELECT 1", 0, NULL};
  assert_int_equal(tc__pg_pool_submit(p, &none, 0, record, out), TC_EINVAL);
  for (int i = 0; i < N; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    const char *vals[] = {key}; /* copied at submit */
    tc__pg_stmt_t unit[] = {{NULL, "INSERT INTO t1 (v) VALUES ($1)", 1, vals},
                            {NULL, "SELECT count(*) FROM t1 WHERE v = $1", 1, vals}};
    assert_int_equal(tc__pg_pool_submit(p, unit, 2, record, &out[i]), 0);
  }
  assert_int_equal(tc__pg_pool_pending(p), N);
  assert_int_equal(completed, 0); /* never from submit */
  assert_true(wait_count(&loop, &completed, N, 60000));
  for (int i = 0; i < N; i++) {
    assert_int_equal(out[i].fired, 1);
    assert_int_equal(out[i].status, 0);
    assert_string_equal(out[i].sqlstate, "");
    assert_int_equal(out[i].st[0], PGRES_COMMAND_OK);
    assert_int_equal(out[i].st[1], PGRES_TUPLES_OK);
    assert_string_equal(out[i].value, "1");
  }
  assert_int_equal(tc__pg_pool_pending(p), 0);
  check_value(&loop, p, "SELECT count(*) FROM t1", "200");

  /* More than the socket takes at once: sent as it drains. */
  enum { BIG = 8 << 20 };
  char *big = malloc(BIG + 1);
  assert_non_null(big);
  memset(big, 'x', BIG);
  big[BIG] = '\0';
  const char *vals[] = {big};
  outcome_t o = run1(&loop, p, "SELECT length($1)", 1, vals);
  free(big);
  assert_int_equal(o.status, 0);
  assert_string_equal(o.value, "8388608");
  close_pool(&loop, p);
  finish_loop(&loop);
}

/* A dead first address: libpq moves to a new socket mid-connect, likely
 * under the same descriptor number. */
static void test_second_address(void **state) {
  env_t *e = *state;
  reset();
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(e->uri, &err);
  assert_non_null(opts);
  const char *host = NULL, *port = NULL, *user = NULL, *dbname = NULL;
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    if (!o->val) continue;
    if (strcmp(o->keyword, "host") == 0) host = o->val;
    if (strcmp(o->keyword, "port") == 0) port = o->val;
    if (strcmp(o->keyword, "user") == 0) user = o->val;
    if (strcmp(o->keyword, "dbname") == 0) dbname = o->val;
  }
  assert_true(host && port && user && dbname);
  char conninfo[512];
  snprintf(conninfo, sizeof conninfo, "host=127.0.0.1,%s port=1,%s user=%s dbname=%s", host, port,
           user, dbname);
  PQconninfoFree(opts);

  uv_loop_t loop;
  uv_loop_init(&loop);
  tc__pg_pool_t *p = make_pool(&loop, conninfo, 2, 1, NULL, 0);
  for (int i = 0; i < 4; i++) check_value(&loop, p, "SELECT 3", "3");
  assert_int_equal(logs.warn, 0);
  close_pool(&loop, p);
  finish_loop(&loop);
}

static void test_error_fails_own_unit(void **state) {
  env_t *e = *state;
  reset();
  assert_int_equal(tc_pg_set(e->pg, "CREATE TABLE t2 (v text)"), 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  /* One connection, both units pipelined on it. */
  tc__pg_pool_t *p = make_pool(&loop, e->uri, 1, 2, NULL, 0);
  outcome_t a = {0}, b = {0};
  tc__pg_stmt_t ua[] = {{NULL, "INSERT INTO t2 VALUES ('a')", 0, NULL},
                        {NULL, "SELECT 1 / 0", 0, NULL},
                        {NULL, "INSERT INTO t2 VALUES ('a2')", 0, NULL}};
  tc__pg_stmt_t ub[] = {{NULL, "INSERT INTO t2 VALUES ('b')", 0, NULL}};
  assert_int_equal(tc__pg_pool_submit(p, ua, 3, record, &a), 0);
  assert_int_equal(tc__pg_pool_submit(p, ub, 1, record, &b), 0);
  assert_true(wait_count(&loop, &completed, 2, 10000));

  assert_int_equal(a.status, TC_EDATASTORE);
  assert_string_equal(a.sqlstate, "22012");
  assert_non_null(strstr(a.errmsg, "division by zero"));
  assert_int_not_equal(a.errmsg[strlen(a.errmsg) - 1], '\n');
  assert_true(a.have[0] && a.st[0] == PGRES_COMMAND_OK);
  assert_true(a.have[1] && a.st[1] == PGRES_FATAL_ERROR);
  assert_false(a.have[2]); /* never ran */
  assert_int_equal(b.status, 0);

  check_value(&loop, p, "SELECT count(*) FROM t2 WHERE v IN ('a', 'a2')", "0");
  check_value(&loop, p, "SELECT count(*) FROM t2 WHERE v = 'b'", "1");
  close_pool(&loop, p);
  finish_loop(&loop);
}

/* An error at the implicit COMMIT that ends a unit (after every statement
 * succeeded) fails the unit: here a deferred unique constraint, checked
 * only at commit; under SERIALIZABLE, a serialization failure can come
 * the same way, and an acked write would then be one that rolled back. */
static void test_commit_error_fails_unit(void **state) {
  env_t *e = *state;
  reset();
  assert_int_equal(tc_pg_set(e->pg,
                             "CREATE TABLE t_defer (v text UNIQUE DEFERRABLE INITIALLY "
                             "DEFERRED)"),
                   0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  tc__pg_pool_t *p = make_pool(&loop, e->uri, 1, 2, NULL, 0);
  outcome_t a = {0}, b = {0};
  tc__pg_stmt_t ua[] = {{NULL, "INSERT INTO t_defer VALUES ('a')", 0, NULL},
                        {NULL, "INSERT INTO t_defer VALUES ('a')", 0, NULL}};
  tc__pg_stmt_t ub[] = {{NULL, "INSERT INTO t_defer VALUES ('b')", 0, NULL}};
  assert_int_equal(tc__pg_pool_submit(p, ua, 2, record, &a), 0);
  assert_int_equal(tc__pg_pool_submit(p, ub, 1, record, &b), 0);
  assert_true(wait_count(&loop, &completed, 2, 10000));

  assert_int_equal(a.status, TC_EDATASTORE);
  assert_string_equal(a.sqlstate, "23505");
  assert_true(a.have[0] && a.st[0] == PGRES_COMMAND_OK);
  assert_true(a.have[1] && a.st[1] == PGRES_COMMAND_OK);
  assert_int_equal(b.status, 0);
  check_value(&loop, p, "SELECT count(*) FROM t_defer WHERE v = 'a'", "0");
  check_value(&loop, p, "SELECT count(*) FROM t_defer WHERE v = 'b'", "1");
  close_pool(&loop, p);
  finish_loop(&loop);
}

static void test_prepared(void **state) {
  env_t *e = *state;
  enum { N = 100 };
  static outcome_t out[N];
  reset();
  memset(out, 0, sizeof out);
  assert_int_equal(tc_pg_set(e->pg, "CREATE TABLE t3 (v text)"), 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  tc__pg_pool_t *p = make_pool(&loop, e->uri, 2, 2, NULL, 0);
  for (int i = 0; i < N; i++) {
    char key[16];
    snprintf(key, sizeof key, "p%d", i);
    const char *vals[] = {i == 0 ? NULL : key};
    tc__pg_stmt_t unit[] = {{"ins", "INSERT INTO t3 (v) VALUES ($1)", 1, vals},
                            {"cnt", "SELECT count(*) FROM t3 WHERE v = $1", 1, vals}};
    assert_int_equal(tc__pg_pool_submit(p, unit, 2, record, &out[i]), 0);
  }
  assert_true(wait_count(&loop, &completed, N, 30000));
  for (int i = 0; i < N; i++) {
    assert_int_equal(out[i].status, 0);
    assert_string_equal(out[i].value, i == 0 ? "0" : "1");
  }
  check_value(&loop, p, "SELECT count(*) FROM t3 WHERE v IS NULL", "1");
  /* Each connection prepared each name once (twice would have failed). */
  for (int i = 0; i < 4; i++)
    check_value(&loop, p,
                "SELECT count(*) FROM pg_prepared_statements WHERE name IN ('ins', 'cnt')", "2");
  close_pool(&loop, p);

  /* A prepare that failed is sent again next time. */
  p = make_pool(&loop, e->uri, 1, 2, NULL, 0);
  tc__pg_stmt_t later = {"later", "SELECT count(*) FROM t3_later", 0, NULL};
  outcome_t o = {0};
  assert_int_equal(tc__pg_pool_submit(p, &later, 1, record, &o), 0);
  assert_true(wait_count(&loop, &o.fired, 1, 10000));
  assert_int_equal(o.status, TC_EDATASTORE);
  assert_string_equal(o.sqlstate, "42P01");
  assert_false(o.have[0]);
  assert_int_equal(tc_pg_set(e->pg, "CREATE TABLE t3_later (v int)"), 0);
  memset(&o, 0, sizeof o);
  assert_int_equal(tc__pg_pool_submit(p, &later, 1, record, &o), 0);
  assert_true(wait_count(&loop, &o.fired, 1, 10000));
  assert_int_equal(o.status, 0);
  assert_string_equal(o.value, "0");
  close_pool(&loop, p);
  finish_loop(&loop);
}

static void test_connection_loss(void **state) {
  env_t *e = *state;
  reset();
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *const setup[] = {"SET application_name = 'tc_victim'", NULL};
  tc__pg_pool_t *victim = make_pool(&loop, e->uri, 2, 2, setup, 0);
  tc__pg_pool_t *admin = make_pool(&loop, e->uri, 1, 1, NULL, 0);

  /* Four fill both connections' slots and hang; two wait in the queue. */
  outcome_t out[6] = {{0}};
  const char *slow[] = {"30"}, *fast[] = {"0"};
  for (int i = 0; i < 6; i++) {
    tc__pg_stmt_t s = {NULL, "SELECT pg_sleep($1)", 1, i < 4 ? slow : fast};
    assert_int_equal(tc__pg_pool_submit(victim, &s, 1, record, &out[i]), 0);
  }
  int active = 0;
  for (int tries = 0; tries < 200 && !active; tries++) {
    outcome_t o = run1(&loop, admin,
                       "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                       "'tc_victim' AND state = 'active'",
                       0, NULL);
    assert_int_equal(o.status, 0);
    active = strcmp(o.value, "2") == 0;
  }
  assert_true(active);
  outcome_t kill = run1(&loop, admin,
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'tc_victim'",
                        0, NULL);
  assert_int_equal(kill.status, 0);
  assert_string_equal(kill.value, "2");

  for (int i = 0; i < 6; i++) assert_true(wait_count(&loop, &out[i].fired, 1, 10000));
  for (int i = 0; i < 4; i++) { /* on the wire: the server may have run them */
    assert_int_equal(out[i].status, TC_EOUTCOME_UNKNOWN);
    assert_string_equal(out[i].sqlstate, "");
    assert_non_null(strstr(out[i].errmsg, "may or may not have committed"));
  }
  for (int i = 4; i < 6; i++) assert_int_equal(out[i].status, 0); /* waited, then ran */
  for (int i = 0; i < 5; i++) check_value(&loop, victim, "SELECT 7", "7");
  assert_true(wait_count(&loop, &logs.again, 2, 10000));
  assert_int_equal(logs.lost, 2); /* once per connection, not per retry */
  close_pool(&loop, victim);
  close_pool(&loop, admin);
  finish_loop(&loop);
}

static void test_queue_timeout(void **state) {
  (void)state;
  reset();
  uv_loop_t loop;
  uv_loop_init(&loop);
  tc__pg_pool_t *p =
      make_pool(&loop, "postgresql:///postgres?host=/nonexistent/tc-pg-conn", 2, 1, NULL, 300);
  outcome_t o = {0};
  tc__pg_stmt_t s = {NULL, "SELECT 1", 0, NULL};
  uint64_t t0 = uv_hrtime();
  assert_int_equal(tc__pg_pool_submit(p, &s, 1, record, &o), 0);
  assert_int_equal(o.fired, 0);
  assert_true(wait_count(&loop, &completed, 1, 5000));
  uint64_t waited_ms = (uv_hrtime() - t0) / 1000000;
  assert_true(waited_ms >= 300 && waited_ms < 3000);
  assert_int_equal(o.status, TC_EUNAVAILABLE);
  assert_string_equal(o.sqlstate, "");
  assert_non_null(strstr(o.errmsg, "no connection to PostgreSQL for 300 ms"));
  assert_int_equal(tc__pg_pool_pending(p), 0);
  assert_true(logs.cannot > 2);   /* retried... */
  assert_int_equal(logs.warn, 2); /* ...but warned once per connection */
  close_pool(&loop, p);
  finish_loop(&loop);

  /* Malformed connection strings are refused up front. */
  uv_loop_init(&loop);
  tc__pg_pool_opts_t bad = {.conninfo = "host='unterminated", .size = 1, .depth = 1};
  tc__pg_pool_t *none = NULL;
  assert_int_equal(tc__pg_pool_create(&loop, &bad, &none), TC_EINVAL);
  assert_null(none);
  finish_loop(&loop);
}

typedef struct heard_s {
  int ready, notes;
  char last[64];
  tc__pg_listener_t *close_on_note; /* closes it from inside on_notify */
  int closed;
} heard_t;

static void set_flag(void *arg);

static void on_ready(void *arg) { ((heard_t *)arg)->ready++; }

static void on_notify(void *arg, const char *payload) {
  heard_t *h = arg;
  snprintf(h->last, sizeof h->last, "%s", payload);
  h->notes++;
  if (h->close_on_note) tc__pg_listener_close(h->close_on_note, set_flag, &h->closed);
}

static void test_listener(void **state) {
  env_t *e = *state;
  reset();
  uv_loop_t loop;
  uv_loop_init(&loop);
  heard_t h = {0};
  tc__pg_listener_opts_t lo = {.conninfo = e->uri,
                               .channel = "tc_chan",
                               .on_notify = on_notify,
                               .on_ready = on_ready,
                               .arg = &h,
                               .log = tt_log};
  tc__pg_listener_t *ls = NULL;
  lo.channel = "bad channel";
  assert_int_equal(tc__pg_listener_start(&loop, &lo, &ls), TC_EINVAL);
  lo.channel = "tc_chan";
  assert_int_equal(tc__pg_listener_start(&loop, &lo, &ls), 0);
  tc__pg_pool_t *p = make_pool(&loop, e->uri, 1, 1, NULL, 0);
  assert_true(wait_count(&loop, &h.ready, 1, 10000));

  const char *x1[] = {"x1"};
  assert_int_equal(run1(&loop, p, "SELECT pg_notify('tc_chan', $1)", 1, x1).status, 0);
  assert_true(wait_count(&loop, &h.notes, 1, 10000));
  assert_string_equal(h.last, "x1");

  assert_int_equal(tc_pg_restart(e->pg), 0);
  assert_true(wait_count(&loop, &h.ready, 2, 15000));
  /* The pool may learn of the restart only from a unit it sends. */
  const char *x2[] = {"x2"};
  int sent = 0;
  for (int tries = 0; tries < 10 && !sent; tries++)
    sent = run1(&loop, p, "SELECT pg_notify('tc_chan', $1)", 1, x2).status == 0;
  assert_true(sent);
  assert_true(wait_count(&loop, &h.notes, 2, 10000));
  assert_string_equal(h.last, "x2");
  assert_int_equal(h.ready, 2);

  /* Two notifications in one transaction: the first closes the listener. */
  h.close_on_note = ls;
  assert_int_equal(
      run1(&loop, p, "SELECT pg_notify('tc_chan', 'x3'), pg_notify('tc_chan', 'x4')", 0, NULL)
          .status,
      0);
  assert_true(wait_count(&loop, &h.closed, 1, 10000));
  assert_int_equal(h.notes, 3);
  assert_string_equal(h.last, "x3");
  close_pool(&loop, p);
  finish_loop(&loop);
}

typedef struct closing_s {
  int done;
  int completed_at_done;
} closing_t;

static void on_closed(void *arg) {
  closing_t *c = arg;
  c->done++;
  c->completed_at_done = completed;
}

typedef struct closer_s {
  tc__pg_pool_t *p;
  outcome_t first;
  int closed;
} closer_t;

static void close_from_cb(void *arg, int status, PGresult *const *results, size_t n,
                          const char *sqlstate, const char *errmsg) {
  closer_t *c = arg;
  record(&c->first, status, results, n, sqlstate, errmsg);
  tc__pg_pool_close(c->p, set_flag, &c->closed);
}

static void test_close_in_flight(void **state) {
  env_t *e = *state;
  enum { N = 8 };
  reset();
  uv_loop_t loop;
  uv_loop_init(&loop);
  tc__pg_pool_t *p = make_pool(&loop, e->uri, 2, 2, NULL, 0);
  outcome_t out[N] = {{0}};
  tc__pg_stmt_t s = {NULL, "SELECT pg_sleep(0.3)", 0, NULL};
  for (int i = 0; i < N; i++) assert_int_equal(tc__pg_pool_submit(p, &s, 1, record, &out[i]), 0);
  assert_true(wait_count(&loop, &completed, 1, 10000));

  closing_t c = {0};
  tc__pg_pool_close(p, on_closed, &c);
  assert_int_equal(tc__pg_pool_submit(p, &s, 1, record, &out[0]), TC_EUNAVAILABLE);
  assert_true(wait_count(&loop, &c.done, 1, 10000));
  assert_int_equal(c.completed_at_done, N); /* every callback ran before done */
  int ok = 0, refused = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(out[i].fired, 1);
    if (out[i].status == 0) ok++;
    if (out[i].status == TC_EUNAVAILABLE && strstr(out[i].errmsg, "closing")) refused++;
  }
  assert_true(ok >= 4); /* the ones in flight finished */
  assert_true(refused >= 1);
  assert_int_equal(ok + refused, N);

  /* Closed from inside a unit's callback. */
  reset();
  closer_t cl = {.p = make_pool(&loop, e->uri, 1, 2, NULL, 0)};
  outcome_t second = {0};
  assert_int_equal(tc__pg_pool_submit(cl.p, &s, 1, close_from_cb, &cl), 0);
  assert_int_equal(tc__pg_pool_submit(cl.p, &s, 1, record, &second), 0);
  assert_true(wait_count(&loop, &cl.closed, 1, 10000));
  assert_int_equal(cl.first.status, 0);
  assert_int_equal(second.fired, 1);
  finish_loop(&loop);
}

static int setup_env(void **state) {
  static env_t e;
  if (tc_pg_start(NULL, &e.pg) != 0) return -1;
  e.uri = tc_pg_uri(e.pg);
  *state = &e;
  return 0;
}

static int teardown_env(void **state) {
  env_t *e = *state;
  tc_pg_stop(e->pg);
  return 0;
}

int main(void) {
  tt_log_sink(log_sink);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_many_units),
      cmocka_unit_test(test_second_address),
      cmocka_unit_test(test_error_fails_own_unit),
      cmocka_unit_test(test_commit_error_fails_unit),
      cmocka_unit_test(test_prepared),
      cmocka_unit_test(test_connection_loss),
      cmocka_unit_test(test_queue_timeout),
      cmocka_unit_test(test_listener),
      cmocka_unit_test(test_close_in_flight),
  };
  return cmocka_run_group_tests(tests, setup_env, teardown_env);
}
