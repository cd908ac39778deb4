/* The backend conformance suite's shared parts: the fixture each case runs
 * in, one call's result, inputs, and the helpers that call the plugin and
 * check what it answers (conformance_harness.c); the cases, one file per
 * concern (conformance_<concern>.c); the runner (conformance_main.c).
 * Threading: everything runs on the fixture's loop thread, except the log
 * capture, which a backend may call from its own threads.
 * Ownership: a ct_result_t owns its strings (in its arena) until
 * ct_result_free(); ct_keep()'s copies live until the case's teardown. */
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
#include "log_lines.h"
#include "tuplecast/support.h"

#define DEADLINE_MS 30000
#define MANY_WRITES 1000

extern const char *ct_backend_uri;
extern tc_plugin_t ct_plugin;
extern char ct_run_id[32]; /* makes this run's tenant ids unique */
/* Group-commit and checkpoint evidence from the sqlite backend's debug lines,
 * and the threads that wrote them (see conformance_harness.c). */
extern _Atomic unsigned long ct_commits, ct_largest_commit, ct_checkpoints;
extern pthread_t ct_writer_thread, ct_checkpoint_thread;

typedef struct ct_strv_s {
  char **v;
  size_t n;
} ct_strv_t;

typedef struct ct_fixture_s {
  uv_loop_t loop;
  tc_bridge_t bridge;
  uv_timer_t timer;
  int timed_out;
  const tc_backend_api_t *api;
  tc_backend_t *b;
  ct_strv_t kept; /* tokens the case holds on to, freed at teardown */
} ct_fixture_t;

/* One call's outcome. */
typedef struct ct_result_s {
  int done, status;
  char *token; /* write, head */
  char *last;  /* read_changes */
  tc_cursor_t next;
  char *next_key, *head, *version, *text;
  tc_tenant_row_t tenant;
  tc_arena_t strings; /* the strings above */
  ct_strv_t rows;
  ct_strv_t tokens; /* read_changes: the token of each change */
} ct_result_t;

typedef struct ct_batch_s {
  tc_write_batch_t w;
  tc_tuple_t tuples[16];
  tc_attr_t attrs[16];
  char bufs[16][128];
} ct_batch_t;

/* Asserts s holds exactly the NULL-terminated list of strings. */
#define ct_expect(s, ...) ct_expect_rows(__LINE__, (s), __VA_ARGS__)

/* Calls the API, checks it accepted the call and did not call back yet, waits. */
#define CT_CALL(f, res, expr)       \
  do {                              \
    ct_result_free(res);            \
    assert_int_equal((expr), 0);    \
    assert_false((res)->done);      \
    ct_wait_for((f), &(res)->done); \
  } while (0)

/* Asserts r holds the changes of all from index `from` on: the rest of the
 * feed (expect_tail), or a part of it (expect_page).  Tokens are not compared:
 * a backend may name the same position differently in two reads (a Postgres
 * snapshot cut at another place); that each token resumes exactly is checked
 * where the tokens come from. */
#define ct_expect_tail(r, all, from) ct_expect_changes_at(__LINE__, (r), (all), (from), 1)
#define ct_expect_page(r, all, from) ct_expect_changes_at(__LINE__, (r), (all), (from), 0)

/* Asserts the tokens are pairwise distinct. */
#define ct_expect_distinct(...) ct_expect_distinct_at(__LINE__, __VA_ARGS__, NULL)

extern const tc_tuple_filter_t ct_all_tuples;
extern const tc_attr_filter_t ct_all_attrs;

size_t ct_strv_find(const ct_strv_t *s, const char *str);
void ct_wait_for(ct_fixture_t *f, const int *flag);
tc_backend_t *ct_open_backend(ct_fixture_t *f);
void ct_destroy_backend(ct_fixture_t *f, tc_backend_t *b);
void ct_close_backend(ct_fixture_t *f);
int ct_setup(void **state);
int ct_teardown(void **state);
const char *ct_keep(ct_fixture_t *f, const char *s);
void ct_expect_rows(int line, const ct_strv_t *s, ...);
void ct_result_free(ct_result_t *r);
void ct_on_status(void *arg, int status);
void ct_on_token(void *arg, int status, const char *token);
void ct_on_tuples(void *arg, int status, const tc_tuple_t *rows, size_t n, tc_cursor_t next);
void ct_on_attrs(void *arg, int status, const tc_attr_t *rows, size_t n, tc_cursor_t next);
void ct_on_tenant(void *arg, int status, const tc_tenant_row_t *row);
void ct_on_tenants(void *arg, int status, const tc_tenant_row_t *rows, size_t n, const char *next);
void ct_on_schema(void *arg, int status, const char *version, const char *text);
void ct_on_schemas(void *arg, int status, const char *head, const tc_schema_row_t *rows, size_t n,
                   const char *next);
void ct_on_changes(void *arg, int status, const tc_change_t *changes, size_t n, const char *last);
void ct_on_feed(void *arg, int status, const tc_feed_item_t *items, size_t n, const char *last);
char *ct_tenant_name(const char *what);
tc_tuple_t ct_tuple(char *buf, const char *spec);
void ct_batch_init(ct_batch_t *b, const char *tenant);
void ct_add_tuple(ct_batch_t *b, const char *spec);
/* batch_init, then the one tuple doc:<doc>#viewer@user:a. */
void ct_batch_viewer(ct_batch_t *b, const char *tenant, unsigned long doc);
void ct_add_attr_bytes(ct_batch_t *b, const char *type, const char *id, const char *attr,
                       const void *value, size_t len);
void ct_add_attr(ct_batch_t *b, const char *type, const char *id, const char *attr,
                 const char *value);
const char *ct_write_ok(ct_fixture_t *f, const tc_write_batch_t *w);
const char *ct_write_tuples(ct_fixture_t *f, const char *tenant, ...);
void ct_read_tuples(ct_fixture_t *f, ct_result_t *r, const char *tenant, const char *token,
                    const tc_tuple_filter_t *flt, tc_cursor_t after, uint32_t limit);
void ct_read_attrs(ct_fixture_t *f, ct_result_t *r, const char *tenant, const char *token,
                   const tc_attr_filter_t *flt);
void ct_read_changes(ct_fixture_t *f, ct_result_t *r, const char *tenant, const char *after,
                     const char *upto, uint32_t limit);
const char *ct_head(ct_fixture_t *f, const char *tenant);
/* schema_write, asserting it stored the version. */
void ct_schema_write(ct_fixture_t *f, const char *tenant, const char *version, const char *text);
void ct_expect_feed_resumes(ct_fixture_t *f, const char *tenant, const char *token,
                            const char *tuple);
void ct_token_ok(ct_fixture_t *f, tc_backend_t *b, const char *token);
void ct_token_bad(ct_fixture_t *f, tc_backend_t *b, const char *token);
void ct_expect_changes_at(int line, const ct_result_t *r, const ct_result_t *all, size_t from,
                          int to_end);
void ct_expect_distinct_at(int line, ...);

/* N of a uri that names a retention window ("retain=N"), else 0. */
unsigned long ct_retain_window(void);

/* The cases. */
void test_tenants(void **state);
void test_tenant_list_paging(void **state);
void test_tenant_delete_removes_data(void **state);
void test_schemas(void **state);
void test_tenant_state(void **state);
void test_bundles(void **state);
void test_ping(void **state);
void test_exact_deletes(void **state);
void test_old_host(void **state);
void test_read_filters(void **state);
void test_read_paging(void **state);
void test_positions(void **state);
void test_attributes(void **state);
void test_change_order_in_one_write(void **state);
void test_read_changes_resume(void **state);
void test_read_changes_paging(void **state);
void test_read_changes_upto(void **state);
void test_read_feed_schemas(void **state);
void test_token_check(void **state);
void test_token_ahead(void **state);
void test_many_writes_in_order(void **state);
void test_checkpoint_off_the_writer(void **state);
void test_mixed_calls_complete_in_order(void **state);
void test_failure_fails_alone(void **state);
void test_destroy_with_work_in_flight(void **state);
void test_reopen_keeps_identity(void **state);
void test_stats_count_calls(void **state);
void test_metrics_report(void **state);
void test_out_of_range(void **state);

#endif
