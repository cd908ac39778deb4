/* The backend conformance suite's shared parts: the fixture each case runs
 * in, one call's result, inputs, and the helpers that call the plugin and
 * check what it answers (conformance_harness.c); the cases, one file per
 * concern (conformance_<concern>.c); the runner (conformance_main.c).
 * Threading: everything runs on the fixture's loop thread, except the log
 * capture, which a backend may call from its own threads.
 * Ownership: a result_t owns its strings until result_free(); keep()'s copies
 * live until the case's teardown. */
#ifndef TC_CONFORMANCE_H
#define TC_CONFORMANCE_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend_loader.h"
#include "bridge.h"

#define DEADLINE_MS 30000
#define MANY_WRITES 1000

extern const char *backend_uri;
extern tc_plugin_t plugin;
extern char run_id[32]; /* makes this run's tenant ids unique */
/* Group-commit and checkpoint evidence from the sqlite backend's debug lines,
 * and the threads that wrote them (see conformance_harness.c). */
extern _Atomic unsigned long commits, largest_commit, checkpoints;
extern pthread_t writer_thread, checkpoint_thread;

typedef struct strv_s {
  char **v;
  size_t n;
} strv_t;

typedef struct fixture_s {
  uv_loop_t loop;
  tc_bridge_t bridge;
  uv_timer_t timer;
  int timed_out;
  const tc_backend_api_t *api;
  tc_backend_t *b;
  strv_t kept; /* tokens the case holds on to, freed at teardown */
} fixture_t;

/* One call's outcome. */
typedef struct result_s {
  int done, status;
  char *token; /* write, head */
  char *last;  /* read_changes */
  tc_cursor_t next;
  char *next_key, *head, *version, *text;
  tc_tenant_row_t tenant;
  strv_t rows;
  strv_t tokens; /* read_changes: the token of each change */
} result_t;

typedef struct batch_s {
  tc_write_batch_t w;
  tc_tuple_t tuples[16];
  tc_attr_t attrs[16];
  char bufs[16][128];
} batch_t;

/* Asserts s holds exactly the NULL-terminated list of strings. */
#define expect(s, ...) expect_rows(__LINE__, (s), __VA_ARGS__)

/* Calls the API, checks it accepted the call and did not call back yet, waits. */
#define CALL(f, res, expr)                                                     \
  do {                                                                         \
    result_free(res);                                                          \
    assert_int_equal((expr), 0);                                               \
    assert_false((res)->done);                                                 \
    wait_for((f), &(res)->done);                                               \
  } while (0)

/* Asserts r holds the changes of all from index `from` on: the rest of the
 * feed (expect_tail), or a part of it (expect_page).  Tokens are not compared:
 * a backend may name the same position differently in two reads (a Postgres
 * snapshot cut at another place); that each token resumes exactly is checked
 * where the tokens come from. */
#define expect_tail(r, all, from) expect_changes_at(__LINE__, (r), (all), (from), 1)
#define expect_page(r, all, from) expect_changes_at(__LINE__, (r), (all), (from), 0)

/* Asserts the tokens are pairwise distinct. */
#define expect_distinct(...) expect_distinct_at(__LINE__, __VA_ARGS__, NULL)

extern const tc_tuple_filter_t all_tuples;
extern const tc_attr_filter_t all_attrs;

size_t strv_find(const strv_t *s, const char *str);
void wait_for(fixture_t *f, const int *flag);
tc_backend_t *open_backend(fixture_t *f);
void destroy_backend(fixture_t *f, tc_backend_t *b);
void close_backend(fixture_t *f);
int setup(void **state);
int teardown(void **state);
const char *keep(fixture_t *f, const char *s);
void expect_rows(int line, const strv_t *s, ...);
void result_free(result_t *r);
void on_status(void *arg, int status);
void on_token(void *arg, int status, const char *token);
void on_tuples(void *arg, int status, const tc_tuple_t *rows, size_t n, tc_cursor_t next);
void on_attrs(void *arg, int status, const tc_attr_t *rows, size_t n, tc_cursor_t next);
void on_tenant(void *arg, int status, const tc_tenant_row_t *row);
void on_tenants(void *arg, int status, const tc_tenant_row_t *rows, size_t n,
                const char *next);
void on_schema(void *arg, int status, const char *version, const char *text);
void on_schemas(void *arg, int status, const char *head, const tc_schema_row_t *rows,
                size_t n, const char *next);
void on_changes(void *arg, int status, const tc_change_t *changes, size_t n,
                const char *last);
char *tenant_name(const char *what);
tc_tuple_t tuple(char *buf, const char *spec);
void batch_init(batch_t *b, const char *tenant);
void add_tuple(batch_t *b, const char *spec);
void add_attr_bytes(batch_t *b, const char *type, const char *id, const char *attr,
                    const void *value, size_t len);
void add_attr(batch_t *b, const char *type, const char *id, const char *attr,
              const char *value);
const char *write_ok(fixture_t *f, const tc_write_batch_t *w);
const char *write_tuples(fixture_t *f, const char *tenant, ...);
void read_tuples(fixture_t *f, result_t *r, const char *tenant, const char *token,
                 const tc_tuple_filter_t *flt, tc_cursor_t after, uint32_t limit);
void read_attrs(fixture_t *f, result_t *r, const char *tenant, const char *token,
                const tc_attr_filter_t *flt);
void read_changes(fixture_t *f, result_t *r, const char *tenant, const char *after,
                  const char *upto, uint32_t limit);
const char *head(fixture_t *f, const char *tenant);
void expect_feed_resumes(fixture_t *f, const char *tenant, const char *token, const char *tuple);
void token_ok(fixture_t *f, tc_backend_t *b, const char *token);
void token_bad(fixture_t *f, tc_backend_t *b, const char *token);
void expect_changes_at(int line, const result_t *r, const result_t *all, size_t from,
                       int to_end);
void expect_distinct_at(int line, ...);

/* N of a uri that names a retention window ("retain=N"), else 0. */
unsigned long retain_window(void);

/* The cases. */
void test_tenants(void **state);
void test_tenant_list_paging(void **state);
void test_tenant_delete_removes_data(void **state);
void test_schemas(void **state);
void test_read_filters(void **state);
void test_read_paging(void **state);
void test_positions(void **state);
void test_attributes(void **state);
void test_change_order_in_one_write(void **state);
void test_read_changes_resume(void **state);
void test_read_changes_paging(void **state);
void test_read_changes_upto(void **state);
void test_token_check(void **state);
void test_token_ahead(void **state);
void test_many_writes_in_order(void **state);
void test_checkpoint_off_the_writer(void **state);
void test_mixed_calls_complete_in_order(void **state);
void test_failure_fails_alone(void **state);
void test_destroy_with_work_in_flight(void **state);
void test_reopen_keeps_identity(void **state);
void test_stats_count_calls(void **state);
void test_out_of_range(void **state);

#endif
