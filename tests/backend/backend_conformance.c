/* Backend conformance suite: drives every call of the plugin ABI against any
 * backend plugin.  Usage: tc_backend_conformance <plugin.so> <uri>.
 *
 * Each case gets a fresh backend on a fresh loop and works in tenants named
 * after this run, so the suite also runs against a database that persists
 * between runs.  Calls are made from the loop thread; each helper runs the
 * loop until the callback fired, with a deadline. */
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

static const char *plugin_path, *backend_uri;
static tc_plugin_t plugin;
static char run_id[32]; /* makes this run's tenant ids unique */

/* ---- log capture --------------------------------------------------------- */

/* Group-commit evidence from the sqlite backend's debug line
 * "committed N requests in one transaction"; written by its writer thread. */
static _Atomic unsigned long commits, largest_commit;

static void test_log(int level, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  const char *p = strstr(line, "committed ");
  unsigned long n;
  if (level == TC_LOG_DEBUG && p && sscanf(p, "committed %lu requests", &n) == 1) {
    commits++;
    unsigned long seen = largest_commit;
    while (n > seen && !atomic_compare_exchange_weak(&largest_commit, &seen, n)) continue;
  }
  if (level >= TC_LOG_WARN) fprintf(stderr, "backend log: %s\n", line);
}

/* ---- fixture ------------------------------------------------------------- */

typedef struct fixture_s {
  uv_loop_t loop;
  tc_bridge_t bridge;
  uv_timer_t timer;
  int timed_out;
  const tc_backend_api_t *api;
  tc_backend_t *b;
} fixture_t;

static void on_timer(uv_timer_t *t) { ((fixture_t *)t->data)->timed_out = 1; }

/* Runs the loop until *flag is set; fails the test after the deadline. */
static void wait_for(fixture_t *f, const int *flag) {
  f->timed_out = 0;
  uv_timer_start(&f->timer, on_timer, DEADLINE_MS, 0);
  while (!*flag && !f->timed_out) uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->timer);
  assert_true(*flag);
}

static void on_destroyed(void *arg) { *(int *)arg = 1; }

static tc_backend_t *open_backend(fixture_t *f) {
  tc_backend_t *b = NULL;
  char *err = NULL;
  int rc = f->api->create(&f->bridge.host, backend_uri, &b, &err);
  if (rc != 0) fprintf(stderr, "create(%s): %s\n", backend_uri, err ? err : "?");
  free(err);
  assert_int_equal(rc, 0);
  assert_non_null(b);
  return b;
}

static void close_backend(fixture_t *f) {
  int done = 0;
  f->api->destroy(f->b, on_destroyed, &done);
  assert_false(done); /* never synchronous */
  wait_for(f, &done);
  f->b = NULL;
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(tc_bridge_init(&f->bridge, &f->loop), 0);
  f->bridge.host.log = test_log;
  uv_timer_init(&f->loop, &f->timer);
  f->timer.data = f;
  f->api = plugin.api;
  f->b = open_backend(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  if (f->b) close_backend(f);
  uv_close((uv_handle_t *)&f->timer, NULL);
  tc_bridge_close(&f->bridge);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

/* ---- results as strings -------------------------------------------------- */

typedef struct strv_s {
  char **v;
  size_t n;
} strv_t;

static void strv_push(strv_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void strv_push(strv_t *s, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  s->v = realloc(s->v, (s->n + 1) * sizeof *s->v);
  assert_non_null(s->v);
  s->v[s->n++] = strdup(buf);
}

static void strv_free(strv_t *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  *s = (strv_t){0};
}

/* Asserts s holds exactly the NULL-terminated list of strings. */
#define expect(s, ...) expect_rows(__LINE__, (s), __VA_ARGS__)

static void expect_rows(int line, const strv_t *s, ...) {
  va_list ap;
  va_start(ap, s);
  size_t i = 0;
  for (const char *want; (want = va_arg(ap, const char *)); i++) {
    if (i >= s->n) fail_msg("line %d: row %zu missing: want %s", line, i, want);
    if (strcmp(s->v[i], want) != 0)
      fail_msg("line %d: row %zu is %s, want %s", line, i, s->v[i], want);
  }
  va_end(ap);
  if (i != s->n) fail_msg("line %d: %zu rows, want %zu (extra: %s)", line, s->n, i, s->v[i]);
}

static void push_tuple(strv_t *s, const tc_tuple_t *t) {
  strv_push(s, "%s:%s#%s@%s:%s%s%s", t->entity_type, t->entity_id, t->relation,
            t->subject_type, t->subject_id, *t->subject_relation ? "#" : "",
            t->subject_relation);
}

static void push_attr(strv_t *s, const tc_attr_t *a) {
  strv_push(s, "%s:%s$%s=%.*s", a->entity_type, a->entity_id, a->attribute, (int)a->value_len,
            (const char *)a->value);
}

/* One call's outcome. */
typedef struct result_s {
  int done, status;
  uint64_t revision, last, oldest;
  tc_cursor_t next;
  char *next_key, *head, *version, *text;
  tc_tenant_row_t tenant;
  strv_t rows;
  uint64_t *revisions; /* read_changes: revision of each row */
} result_t;

static void result_free(result_t *r) {
  free(r->next_key);
  free(r->head);
  free(r->version);
  free(r->text);
  free((char *)r->tenant.id);
  free((char *)r->tenant.name);
  free(r->revisions);
  strv_free(&r->rows);
  *r = (result_t){0};
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Calls the API, checks it accepted the call and did not call back yet, waits. */
#define CALL(f, res, expr)                                                     \
  do {                                                                         \
    result_free(res);                                                          \
    assert_int_equal((expr), 0);                                               \
    assert_false((res)->done);                                                 \
    wait_for((f), &(res)->done);                                               \
  } while (0)

static void on_status(void *arg, int status) {
  result_t *r = arg;
  r->status = status;
  r->done = 1;
}

static void on_write(void *arg, int status, uint64_t revision) {
  result_t *r = arg;
  r->status = status;
  r->revision = revision;
  r->done = 1;
}

static void on_tuples(void *arg, int status, uint64_t revision, const tc_tuple_t *rows, size_t n,
                      tc_cursor_t next) {
  result_t *r = arg;
  r->status = status;
  r->revision = revision;
  for (size_t i = 0; i < n; i++) push_tuple(&r->rows, &rows[i]);
  r->next = next;
  r->done = 1;
}

static void on_attrs(void *arg, int status, uint64_t revision, const tc_attr_t *rows, size_t n,
                     tc_cursor_t next) {
  result_t *r = arg;
  r->status = status;
  r->revision = revision;
  for (size_t i = 0; i < n; i++) push_attr(&r->rows, &rows[i]);
  r->next = next;
  r->done = 1;
}

static void on_tenant(void *arg, int status, const tc_tenant_row_t *row) {
  result_t *r = arg;
  r->status = status;
  if (row) {
    r->tenant = (tc_tenant_row_t){strdup(row->id), strdup(row->name), row->created_at_ms};
  }
  r->done = 1;
}

static void on_tenants(void *arg, int status, const tc_tenant_row_t *rows, size_t n,
                       const char *next) {
  result_t *r = arg;
  r->status = status;
  for (size_t i = 0; i < n; i++) strv_push(&r->rows, "%s=%s", rows[i].id, rows[i].name);
  r->next_key = dup_or_null(next);
  r->done = 1;
}

static void on_schema(void *arg, int status, const char *version, const char *text) {
  result_t *r = arg;
  r->status = status;
  r->version = dup_or_null(version);
  r->text = dup_or_null(text);
  r->done = 1;
}

static void on_schemas(void *arg, int status, const char *head, const tc_schema_row_t *rows,
                       size_t n, const char *next) {
  result_t *r = arg;
  r->status = status;
  r->head = dup_or_null(head);
  for (size_t i = 0; i < n; i++) {
    assert_true(rows[i].created_at_ms > 0);
    strv_push(&r->rows, "%s", rows[i].version);
  }
  r->next_key = dup_or_null(next);
  r->done = 1;
}

static void on_changes(void *arg, int status, const tc_change_t *changes, size_t n,
                       uint64_t last, uint64_t oldest) {
  result_t *r = arg;
  r->status = status;
  r->revisions = calloc(n + 1, sizeof *r->revisions);
  for (size_t i = 0; i < n; i++) {
    const tc_change_t *c = &changes[i];
    assert_true((c->tuple == NULL) != (c->attr == NULL));
    if (i) assert_true(c->revision >= changes[i - 1].revision);
    assert_true(c->revision <= last);
    r->revisions[i] = c->revision;
    strv_t one = {0};
    if (c->tuple)
      push_tuple(&one, c->tuple);
    else
      push_attr(&one, c->attr);
    strv_push(&r->rows, "%c%s", c->op == TC_CHANGE_CREATE ? '+' : '-', one.v[0]);
    strv_free(&one);
  }
  r->last = last;
  r->oldest = oldest;
  r->done = 1;
}

static void on_head(void *arg, int status, uint64_t revision) {
  result_t *r = arg;
  r->status = status;
  r->revision = revision;
  r->done = 1;
}

/* ---- building inputs ----------------------------------------------------- */

static char *tenant_name(const char *what) {
  char *s = malloc(strlen(what) + sizeof run_id + 2);
  assert_non_null(s);
  sprintf(s, "%s-%s", run_id, what);
  return s;
}

/* "type:id#rel@stype:sid[#srel]" parsed in place into t (for test inputs). */
static tc_tuple_t tuple(char *buf, const char *spec) {
  strcpy(buf, spec);
  tc_tuple_t t;
  t.entity_type = strtok(buf, ":");
  t.entity_id = strtok(NULL, "#");
  t.relation = strtok(NULL, "@");
  t.subject_type = strtok(NULL, ":");
  t.subject_id = strtok(NULL, "#");
  const char *srel = strtok(NULL, "");
  t.subject_relation = srel ? srel : "";
  return t;
}

typedef struct batch_s {
  tc_write_batch_t w;
  tc_tuple_t tuples[16];
  tc_attr_t attrs[16];
  char bufs[16][128];
} batch_t;

static void batch_init(batch_t *b, const char *tenant) {
  memset(b, 0, sizeof *b);
  b->w.tenant_id = tenant;
  b->w.tuples = b->tuples;
  b->w.attrs = b->attrs;
}

static void add_tuple(batch_t *b, const char *spec) {
  assert_true(b->w.n_tuples < 16);
  b->tuples[b->w.n_tuples] = tuple(b->bufs[b->w.n_tuples], spec);
  b->w.n_tuples++;
}

/* value is stored as its bytes; a real caller packs a protobuf Any. */
static void add_attr(batch_t *b, const char *type, const char *id, const char *attr,
                     const char *value) {
  assert_true(b->w.n_attrs < 16);
  b->attrs[b->w.n_attrs++] =
      (tc_attr_t){type, id, attr, (const uint8_t *)value, strlen(value)};
}

static uint64_t write_ok(fixture_t *f, const tc_write_batch_t *w) {
  result_t r = {0};
  CALL(f, &r, f->api->write(f->b, w, on_write, &r));
  assert_int_equal(r.status, 0);
  assert_true(r.revision > 0);
  return r.revision;
}

static uint64_t write_tuples(fixture_t *f, const char *tenant, ...) {
  batch_t b;
  batch_init(&b, tenant);
  va_list ap;
  va_start(ap, tenant);
  for (const char *s; (s = va_arg(ap, const char *));) add_tuple(&b, s);
  va_end(ap);
  return write_ok(f, &b.w);
}

static void read_tuples(fixture_t *f, result_t *r, const char *tenant, uint64_t rev,
                        const tc_tuple_filter_t *flt, tc_cursor_t after, uint32_t limit) {
  CALL(f, r, f->api->read_tuples(f->b, tenant, rev, flt, after, limit, on_tuples, r));
  assert_int_equal(r->status, 0);
}

static void read_attrs(fixture_t *f, result_t *r, const char *tenant, uint64_t rev,
                       const tc_attr_filter_t *flt) {
  CALL(f, r, f->api->read_attrs(f->b, tenant, rev, flt, 0, 0, on_attrs, r));
  assert_int_equal(r->status, 0);
}

static void read_changes(fixture_t *f, result_t *r, const char *tenant, uint64_t after,
                         uint32_t limit) {
  CALL(f, r, f->api->read_changes(f->b, tenant, after, limit, on_changes, r));
  assert_int_equal(r->status, 0);
}

static uint64_t head(fixture_t *f, const char *tenant) {
  result_t r = {0};
  CALL(f, &r, f->api->head(f->b, tenant, on_head, &r));
  assert_int_equal(r.status, 0);
  return r.revision;
}

static const tc_tuple_filter_t all_tuples = {0};
static const tc_attr_filter_t all_attrs = {0};

/* ---- cases: tenants ------------------------------------------------------ */

static void test_tenants(void **state) {
  fixture_t *f = *state;
  result_t r = {0};

  CALL(f, &r, f->api->tenant_get(f->b, "t1", on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.id, "t1");
  assert_string_equal(r.tenant.name, "example tenant");

  char *id = tenant_name("tenant");
  CALL(f, &r, f->api->tenant_create(f->b, id, "first", on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.id, id);
  assert_string_equal(r.tenant.name, "first");
  int64_t created = r.tenant.created_at_ms;
  assert_true(created > 1600000000000); /* epoch milliseconds */

  CALL(f, &r, f->api->tenant_create(f->b, id, "again", on_tenant, &r));
  assert_int_equal(r.status, TC_EUNIQUE);

  CALL(f, &r, f->api->tenant_get(f->b, id, on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.name, "first");
  assert_true(r.tenant.created_at_ms == created);

  char *missing = tenant_name("missing");
  CALL(f, &r, f->api->tenant_get(f->b, missing, on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);
  assert_null(r.tenant.id);
  CALL(f, &r, f->api->tenant_delete(f->b, missing, on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);
  result_free(&r);
  free(missing);
  free(id);
}

static void test_tenant_list_paging(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *ids[5];
  for (int i = 0; i < 5; i++) {
    char what[16];
    snprintf(what, sizeof what, "list-%c", 'a' + i);
    ids[i] = tenant_name(what);
    CALL(f, &r, f->api->tenant_create(f->b, ids[i], what, on_tenant, &r));
    assert_int_equal(r.status, 0);
  }
  char want[3][128];
  CALL(f, &r, f->api->tenant_list(f->b, ids[0], 2, on_tenants, &r));
  assert_int_equal(r.status, 0);
  snprintf(want[0], sizeof want[0], "%s=list-a", ids[0]);
  snprintf(want[1], sizeof want[1], "%s=list-b", ids[1]);
  expect(&r.rows, want[0], want[1], NULL);
  assert_non_null(r.next_key);
  assert_string_equal(r.next_key, ids[2]);

  char *next = strdup(r.next_key);
  CALL(f, &r, f->api->tenant_list(f->b, next, 2, on_tenants, &r));
  snprintf(want[0], sizeof want[0], "%s=list-c", ids[2]);
  snprintf(want[1], sizeof want[1], "%s=list-d", ids[3]);
  expect(&r.rows, want[0], want[1], NULL);
  assert_string_equal(r.next_key, ids[4]);
  free(next);

  CALL(f, &r, f->api->tenant_list(f->b, ids[4], 1, on_tenants, &r));
  snprintf(want[0], sizeof want[0], "%s=list-e", ids[4]);
  expect(&r.rows, want[0], NULL);

  /* From the start: ordered by id, t1 among them. */
  CALL(f, &r, f->api->tenant_list(f->b, NULL, 0, on_tenants, &r));
  assert_int_equal(r.status, 0);
  assert_null(r.next_key);
  assert_true(r.rows.n >= 6);
  int seen_t1 = 0;
  for (size_t i = 0; i < r.rows.n; i++) {
    if (strcmp(r.rows.v[i], "t1=example tenant") == 0) seen_t1 = 1;
    if (i) assert_true(strcmp(r.rows.v[i - 1], r.rows.v[i]) < 0);
  }
  assert_true(seen_t1);

  CALL(f, &r, f->api->tenant_list(f->b, "", 1, on_tenants, &r));
  assert_int_equal(r.rows.n, 1);
  assert_non_null(r.next_key);
  result_free(&r);
  for (int i = 0; i < 5; i++) free(ids[i]);
}

static void test_tenant_delete_removes_data(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *id = tenant_name("doomed");
  char *other = tenant_name("survivor");
  CALL(f, &r, f->api->tenant_create(f->b, id, "doomed", on_tenant, &r));
  assert_int_equal(r.status, 0);
  CALL(f, &r, f->api->schema_write(f->b, id, "cv000000000000000001", "entity user {}",
                                   on_status, &r));
  assert_int_equal(r.status, 0);
  batch_t b;
  batch_init(&b, id);
  add_tuple(&b, "doc:1#viewer@user:a");
  add_attr(&b, "doc", "1", "public", "yes");
  write_ok(f, &b.w);
  write_tuples(f, other, "doc:1#viewer@user:a", NULL);

  CALL(f, &r, f->api->tenant_delete(f->b, id, on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.id, id);
  assert_string_equal(r.tenant.name, "doomed");

  CALL(f, &r, f->api->tenant_get(f->b, id, on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);
  read_tuples(f, &r, id, 0, &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 0);
  read_attrs(f, &r, id, 0, &all_attrs);
  assert_int_equal(r.rows.n, 0);
  assert_int_equal(head(f, id), 0);
  read_changes(f, &r, id, 0, 0);
  assert_int_equal(r.rows.n, 0);
  CALL(f, &r, f->api->schema_read(f->b, id, NULL, on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  CALL(f, &r, f->api->tenant_delete(f->b, id, on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);

  /* Other tenants keep their data. */
  read_tuples(f, &r, other, 0, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", NULL);
  result_free(&r);
  free(other);
  free(id);
}

/* ---- cases: schemas ------------------------------------------------------ */

static void test_schemas(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("schemas");
  static const char *const versions[] = {"cv000000000000000001", "cv000000000000000002",
                                         "cv000000000000000003"};
  static const char *const texts[] = {"entity a {}", "entity b {}", "entity c {}"};

  CALL(f, &r, f->api->schema_read(f->b, t, "", on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  assert_null(r.version);
  assert_null(r.text);
  CALL(f, &r, f->api->schema_list(f->b, t, NULL, 10, on_schemas, &r));
  assert_int_equal(r.status, 0);
  assert_null(r.head);
  assert_int_equal(r.rows.n, 0);

  /* Written out of order: the head is the largest version. */
  static const int order[] = {1, 0, 2};
  for (int i = 0; i < 3; i++) {
    CALL(f, &r, f->api->schema_write(f->b, t, versions[order[i]], texts[order[i]], on_status,
                                     &r));
    assert_int_equal(r.status, 0);
  }
  CALL(f, &r, f->api->schema_write(f->b, t, versions[1], "entity x {}", on_status, &r));
  assert_int_equal(r.status, TC_EUNIQUE);

  CALL(f, &r, f->api->schema_read(f->b, t, NULL, on_schema, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.version, versions[2]);
  assert_string_equal(r.text, texts[2]);
  CALL(f, &r, f->api->schema_read(f->b, t, versions[0], on_schema, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.version, versions[0]);
  assert_string_equal(r.text, texts[0]);
  CALL(f, &r, f->api->schema_read(f->b, t, "cv000000000000000009", on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  assert_null(r.text);

  CALL(f, &r, f->api->schema_list(f->b, t, "", 2, on_schemas, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.head, versions[2]);
  expect(&r.rows, versions[2], versions[1], NULL);
  assert_string_equal(r.next_key, versions[0]);
  CALL(f, &r, f->api->schema_list(f->b, t, versions[0], 2, on_schemas, &r));
  assert_string_equal(r.head, versions[2]);
  expect(&r.rows, versions[0], NULL);
  assert_null(r.next_key);
  CALL(f, &r, f->api->schema_list(f->b, t, NULL, 0, on_schemas, &r));
  expect(&r.rows, versions[2], versions[1], versions[0], NULL);

  /* Schemas are per tenant. */
  char *other = tenant_name("schemas-other");
  CALL(f, &r, f->api->schema_read(f->b, other, NULL, on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  result_free(&r);
  free(other);
  free(t);
}

/* ---- cases: writes and reads --------------------------------------------- */

static void test_read_filters(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("filters");
  write_tuples(f, t, "doc:1#viewer@user:a", "doc:1#viewer@user:b", "doc:2#editor@user:a",
               "doc:2#viewer@group:g#member", "folder:1#parent@doc:1", "doc:3#viewer@user:c",
               NULL);
  char *other = tenant_name("filters-other");
  write_tuples(f, other, "doc:1#viewer@user:a", "doc:4#viewer@user:a", NULL);

  read_tuples(f, &r, t, 0, &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 6);
  assert_int_equal(r.next, 0);

  tc_tuple_filter_t flt = {.entity_type = "doc"};
  read_tuples(f, &r, t, 0, &flt, 0, 0);
  assert_int_equal(r.rows.n, 5);

  const char *ids[] = {"1", "3"};
  flt = (tc_tuple_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 2};
  read_tuples(f, &r, t, 0, &flt, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", "doc:3#viewer@user:c", NULL);

  flt = (tc_tuple_filter_t){.relation = "viewer"};
  read_tuples(f, &r, t, 0, &flt, 0, 0);
  assert_int_equal(r.rows.n, 4);

  flt = (tc_tuple_filter_t){.subject_type = "group"};
  read_tuples(f, &r, t, 0, &flt, 0, 0);
  expect(&r.rows, "doc:2#viewer@group:g#member", NULL);

  const char *subjects[] = {"a", "c"};
  flt = (tc_tuple_filter_t){.subject_ids = subjects, .n_subject_ids = 2};
  read_tuples(f, &r, t, 0, &flt, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:2#editor@user:a", "doc:3#viewer@user:c", NULL);

  flt = (tc_tuple_filter_t){.subject_relation = "member"};
  read_tuples(f, &r, t, 0, &flt, 0, 0);
  expect(&r.rows, "doc:2#viewer@group:g#member", NULL);

  /* "" does not mean "direct subjects only": unset members do not constrain. */
  flt = (tc_tuple_filter_t){.entity_type = "doc", .relation = "viewer", .subject_relation = ""};
  read_tuples(f, &r, t, 0, &flt, 0, 0);
  assert_int_equal(r.rows.n, 4);

  const char *one[] = {"1"};
  flt = (tc_tuple_filter_t){.entity_type = "folder", .entity_ids = one, .n_entity_ids = 1,
                            .relation = "parent", .subject_type = "doc", .subject_ids = one,
                            .n_subject_ids = 1};
  read_tuples(f, &r, t, 0, &flt, 0, 0);
  expect(&r.rows, "folder:1#parent@doc:1", NULL);

  flt = (tc_tuple_filter_t){.entity_type = "nothing"};
  read_tuples(f, &r, t, 0, &flt, 0, 0);
  assert_int_equal(r.rows.n, 0);
  read_tuples(f, &r, other, 0, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:4#viewer@user:a", NULL);
  result_free(&r);
  free(other);
  free(t);
}

static void test_read_paging(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("paging");
  write_tuples(f, t, "doc:1#viewer@user:1", "doc:1#viewer@user:2", "doc:1#viewer@user:3",
               "doc:1#viewer@user:4", "doc:1#viewer@user:5", NULL);
  write_tuples(f, t, "doc:1#viewer@user:6", "doc:1#viewer@user:7", NULL);
  uint64_t rev = head(f, t);

  read_tuples(f, &r, t, 0, &all_tuples, 0, 3);
  assert_int_equal(r.revision, rev);
  expect(&r.rows, "doc:1#viewer@user:1", "doc:1#viewer@user:2", "doc:1#viewer@user:3", NULL);
  assert_true(r.next != 0);
  read_tuples(f, &r, t, rev, &all_tuples, r.next, 3);
  expect(&r.rows, "doc:1#viewer@user:4", "doc:1#viewer@user:5", "doc:1#viewer@user:6", NULL);
  assert_true(r.next != 0);
  tc_cursor_t last = r.next;
  read_tuples(f, &r, t, rev, &all_tuples, last, 3);
  expect(&r.rows, "doc:1#viewer@user:7", NULL);
  assert_int_equal(r.next, 0);

  /* A page that ends exactly at the last row has no next page. */
  read_tuples(f, &r, t, rev, &all_tuples, last, 1);
  expect(&r.rows, "doc:1#viewer@user:7", NULL);
  assert_int_equal(r.next, 0);

  /* Paging with a filter. */
  const char *subjects[] = {"2", "4", "6"};
  tc_tuple_filter_t flt = {.subject_ids = subjects, .n_subject_ids = 3};
  read_tuples(f, &r, t, rev, &flt, 0, 2);
  expect(&r.rows, "doc:1#viewer@user:2", "doc:1#viewer@user:4", NULL);
  read_tuples(f, &r, t, rev, &flt, r.next, 2);
  expect(&r.rows, "doc:1#viewer@user:6", NULL);
  assert_int_equal(r.next, 0);
  result_free(&r);
  free(t);
}

static void test_revisions(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("revisions");
  assert_int_equal(head(f, t), 0);

  uint64_t r1 = write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  uint64_t r2 = write_tuples(f, t, "doc:1#viewer@user:b", NULL);
  assert_true(r2 > r1);
  assert_int_equal(head(f, t), r2);

  read_tuples(f, &r, t, r1, &all_tuples, 0, 0);
  assert_int_equal(r.revision, r1);
  expect(&r.rows, "doc:1#viewer@user:a", NULL);
  read_tuples(f, &r, t, r2, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  read_tuples(f, &r, t, 0, &all_tuples, 0, 0);
  assert_int_equal(r.revision, r2);
  assert_int_equal(r.rows.n, 2);

  /* Delete by filter. */
  batch_t b;
  batch_init(&b, t);
  const char *a[] = {"a"};
  tc_tuple_filter_t del = {.entity_type = "doc", .subject_ids = a, .n_subject_ids = 1};
  b.w.tuple_delete = &del;
  uint64_t r3 = write_ok(f, &b.w);
  assert_true(r3 > r2);
  read_tuples(f, &r, t, r2, &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 2);
  read_tuples(f, &r, t, r3, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", NULL);
  read_changes(f, &r, t, r2, 0);
  expect(&r.rows, "-doc:1#viewer@user:a", NULL);

  /* Re-writing an active tuple is a no-op, but still a new revision. */
  uint64_t r4 = write_tuples(f, t, "doc:1#viewer@user:b", NULL);
  assert_true(r4 > r3);
  read_tuples(f, &r, t, r4, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", NULL);
  read_changes(f, &r, t, r3, 0);
  assert_int_equal(r.rows.n, 0);
  assert_int_equal(r.last, r4);

  /* An empty write gets a revision too; a deleted tuple can come back. */
  batch_init(&b, t);
  uint64_t r5 = write_ok(f, &b.w);
  assert_true(r5 > r4);
  assert_int_equal(head(f, t), r5);
  uint64_t r6 = write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  read_tuples(f, &r, t, r6, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", "doc:1#viewer@user:a", NULL); /* by id */
  read_tuples(f, &r, t, r5, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", NULL);

  /* Revisions are per backend, but heads are per tenant. */
  char *other = tenant_name("revisions-other");
  uint64_t ro = write_tuples(f, other, "doc:9#viewer@user:z", NULL);
  assert_true(ro > r6);
  assert_int_equal(head(f, t), r6);
  read_tuples(f, &r, t, 0, &all_tuples, 0, 0);
  assert_int_equal(r.revision, r6);
  result_free(&r);
  free(other);
  free(t);
}

static void test_attributes(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("attributes");
  batch_t b;
  batch_init(&b, t);
  add_attr(&b, "doc", "1", "public", "v1");
  add_attr(&b, "doc", "1", "owner", "alice");
  add_attr(&b, "doc", "2", "public", "no");
  uint64_t r1 = write_ok(f, &b.w);

  batch_init(&b, t);
  add_attr(&b, "doc", "1", "public", "v2");
  uint64_t r2 = write_ok(f, &b.w);

  read_attrs(f, &r, t, r1, &all_attrs);
  expect(&r.rows, "doc:1$public=v1", "doc:1$owner=alice", "doc:2$public=no", NULL);
  read_attrs(f, &r, t, r2, &all_attrs);
  expect(&r.rows, "doc:1$owner=alice", "doc:2$public=no", "doc:1$public=v2", NULL);
  assert_int_equal(r.revision, r2);

  const char *attrs[] = {"public"};
  const char *ids[] = {"1"};
  tc_attr_filter_t flt = {.attributes = attrs, .n_attributes = 1};
  read_attrs(f, &r, t, 0, &flt);
  expect(&r.rows, "doc:2$public=no", "doc:1$public=v2", NULL);
  flt = (tc_attr_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 1};
  read_attrs(f, &r, t, 0, &flt);
  expect(&r.rows, "doc:1$owner=alice", "doc:1$public=v2", NULL);

  /* Overwrite = DELETE of the old value, then CREATE of the new one. */
  read_changes(f, &r, t, r1, 0);
  expect(&r.rows, "-doc:1$public=v1", "+doc:1$public=v2", NULL);
  assert_int_equal(r.revisions[0], r2);
  assert_int_equal(r.revisions[1], r2);

  batch_init(&b, t);
  flt = (tc_attr_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 1,
                           .attributes = attrs, .n_attributes = 1};
  b.w.attr_delete = &flt;
  uint64_t r3 = write_ok(f, &b.w);
  read_attrs(f, &r, t, r3, &all_attrs);
  expect(&r.rows, "doc:1$owner=alice", "doc:2$public=no", NULL);
  read_changes(f, &r, t, r2, 0);
  expect(&r.rows, "-doc:1$public=v2", NULL);

  /* An empty value is a value. */
  batch_init(&b, t);
  add_attr(&b, "doc", "4", "flag", "");
  uint64_t r4 = write_ok(f, &b.w);
  flt = (tc_attr_filter_t){.entity_type = "doc", .attributes = (const char *[]){"flag"},
                           .n_attributes = 1};
  read_attrs(f, &r, t, r4, &flt);
  expect(&r.rows, "doc:4$flag=", NULL);
  read_changes(f, &r, t, r3, 0);
  expect(&r.rows, "+doc:4$flag=", NULL);

  /* Paging attributes by id. */
  CALL(f, &r, f->api->read_attrs(f->b, t, r3, &all_attrs, 0, 1, on_attrs, &r));
  expect(&r.rows, "doc:1$owner=alice", NULL);
  assert_true(r.next != 0);
  tc_cursor_t next = r.next;
  CALL(f, &r, f->api->read_attrs(f->b, t, r3, &all_attrs, next, 1, on_attrs, &r));
  expect(&r.rows, "doc:2$public=no", NULL);
  assert_int_equal(r.next, 0);
  result_free(&r);
  free(t);
}

static void test_change_order_in_one_write(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("effects");
  batch_t b;
  batch_init(&b, t);
  add_tuple(&b, "doc:1#viewer@user:a");
  add_tuple(&b, "doc:1#viewer@user:b");
  add_attr(&b, "doc", "1", "public", "old");
  add_attr(&b, "doc", "1", "owner", "alice");
  uint64_t r1 = write_ok(f, &b.w);

  batch_init(&b, t);
  const char *a[] = {"a"};
  tc_tuple_filter_t tdel = {.subject_ids = a, .n_subject_ids = 1};
  const char *owner[] = {"owner"};
  tc_attr_filter_t adel = {.attributes = owner, .n_attributes = 1};
  b.w.tuple_delete = &tdel;
  b.w.attr_delete = &adel;
  add_tuple(&b, "doc:1#viewer@user:b"); /* already active: no change */
  add_tuple(&b, "doc:2#viewer@user:c");
  add_attr(&b, "doc", "1", "public", "new");
  add_attr(&b, "doc", "3", "public", "fresh");
  uint64_t r2 = write_ok(f, &b.w);

  read_changes(f, &r, t, 0, 0);
  expect(&r.rows, "+doc:1#viewer@user:a", "+doc:1#viewer@user:b", "+doc:1$public=old",
         "+doc:1$owner=alice", "-doc:1#viewer@user:a", "-doc:1$owner=alice",
         "+doc:2#viewer@user:c", "-doc:1$public=old", "+doc:1$public=new",
         "+doc:3$public=fresh", NULL);
  for (size_t i = 0; i < r.rows.n; i++) assert_int_equal(r.revisions[i], i < 4 ? r1 : r2);
  assert_int_equal(r.last, r2);
  assert_true(r.oldest <= r1);
  result_free(&r);
  free(t);
}

static void test_read_changes_paging(void **state) {
  fixture_t *f = *state;
  result_t r = {0}, all = {0};
  char *t = tenant_name("feed");
  uint64_t r1 = write_tuples(f, t, "doc:1#v@user:a", "doc:1#v@user:b", "doc:1#v@user:c", NULL);
  uint64_t r2 = write_tuples(f, t, "doc:2#v@user:a", NULL);
  uint64_t r3 = write_tuples(f, t, "doc:3#v@user:a", "doc:3#v@user:b", NULL);
  uint64_t r4 = write_tuples(f, t, "doc:3#v@user:a", NULL); /* changes nothing */
  uint64_t r5 = write_tuples(f, t, "doc:5#v@user:a", NULL);
  assert_true(r1 < r2 && r2 < r3 && r3 < r4 && r4 < r5);

  read_changes(f, &all, t, 0, 0);
  assert_int_equal(all.rows.n, 7);
  assert_int_equal(all.last, r5);

  /* A revision larger than the limit comes whole. */
  read_changes(f, &r, t, 0, 2);
  expect(&r.rows, "+doc:1#v@user:a", "+doc:1#v@user:b", "+doc:1#v@user:c", NULL);
  assert_int_equal(r.last, r1);

  /* Paging by whole revisions visits every change once, in order. */
  for (uint32_t limit = 1; limit <= 4; limit++) {
    uint64_t after = 0;
    size_t got = 0;
    for (int pages = 0; after < r5; pages++) {
      assert_true(pages < 10);
      read_changes(f, &r, t, after, limit);
      assert_true(r.last > after);
      for (size_t i = 0; i < r.rows.n; i++, got++) {
        assert_true(got < all.rows.n);
        assert_string_equal(r.rows.v[i], all.rows.v[got]);
        assert_int_equal(r.revisions[i], all.revisions[got]);
      }
      /* Whole revisions: the next change is of a later revision. */
      if (got < all.rows.n) assert_true(all.revisions[got] > r.last);
      after = r.last;
    }
    assert_int_equal(got, all.rows.n);
  }

  /* Nothing after the head; the head does not move for a no-op read. */
  read_changes(f, &r, t, r5, 10);
  assert_int_equal(r.rows.n, 0);
  assert_int_equal(r.last, r5);
  read_changes(f, &r, t, r3, 10);
  expect(&r.rows, "+doc:5#v@user:a", NULL);
  assert_int_equal(r.last, r5);
  result_free(&all);
  result_free(&r);
  free(t);
}

/* ---- cases: ordering, concurrency, lifecycle ------------------------------ */

typedef struct many_s {
  size_t completed;
  int done;
  int in_order;
  uint64_t last_rev;
} many_t;

typedef struct many_call_s {
  many_t *m;
  size_t index;
} many_call_t;

static void on_many(void *arg, int status, uint64_t revision) {
  many_call_t *c = arg;
  many_t *m = c->m;
  assert_int_equal(status, 0);
  if (c->index != m->completed || revision <= m->last_rev) m->in_order = 0;
  m->last_rev = revision;
  if (++m->completed == MANY_WRITES) m->done = 1;
}

static void test_many_writes_in_order(void **state) {
  fixture_t *f = *state;
  char *t = tenant_name("many");
  many_t m = {.in_order = 1};
  many_call_t *calls = calloc(MANY_WRITES, sizeof *calls);
  char(*specs)[64] = calloc(MANY_WRITES, sizeof *specs);
  assert_non_null(calls);
  assert_non_null(specs);
  tc_backend_stats_t before, after;
  f->api->stats(f->b, &before);
  unsigned long commits_before = commits;
  largest_commit = 0;

  for (size_t i = 0; i < MANY_WRITES; i++) {
    batch_t b;
    batch_init(&b, t);
    snprintf(specs[i], sizeof specs[i], "doc:%zu#viewer@user:u%zu", i, i);
    add_tuple(&b, specs[i]);
    calls[i] = (many_call_t){&m, i};
    assert_int_equal(f->api->write(f->b, &b.w, on_many, &calls[i]), 0);
  }
  assert_int_equal(m.completed, 0);
  wait_for(f, &m.done);
  assert_true(m.in_order);
  assert_int_equal(head(f, t), m.last_rev);

  f->api->stats(f->b, &after);
  assert_true(after.writes - before.writes >= MANY_WRITES);
  result_t r = {0};
  read_tuples(f, &r, t, 0, &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, MANY_WRITES);
  read_changes(f, &r, t, 0, 0);
  assert_int_equal(r.rows.n, MANY_WRITES);
  for (size_t i = 1; i < r.rows.n; i++) assert_true(r.revisions[i] > r.revisions[i - 1]);

  /* Group commit: the sqlite backend reports each transaction it committed. */
  if (strcmp(f->api->name, "sqlite") == 0) {
    unsigned long txns = commits - commits_before;
    fprintf(stderr, "%d writes in %lu transactions, largest %lu\n", MANY_WRITES, txns,
            (unsigned long)largest_commit);
    assert_true(txns > 0 && txns < MANY_WRITES);
    assert_true(largest_commit > 1);
  }
  result_free(&r);
  free(specs);
  free(calls);
  free(t);
}

/* Completions of mixed calls come back in submission order. */
typedef struct seq_s {
  int next, bad, done;
  uint64_t write_rev, read_rev;
  size_t read_rows;
} seq_t;

typedef struct seq_call_s {
  seq_t *s;
  int index, last;
} seq_call_t;

static void seq_check(seq_call_t *c) {
  if (c->index != c->s->next++) c->s->bad = 1;
  if (c->last) c->s->done = 1;
}

static void seq_write(void *arg, int status, uint64_t rev) {
  seq_call_t *c = arg;
  assert_int_equal(status, 0);
  c->s->write_rev = rev;
  seq_check(c);
}

static void seq_tuples(void *arg, int status, uint64_t rev, const tc_tuple_t *rows, size_t n,
                       tc_cursor_t next) {
  (void)rows;
  (void)next;
  seq_call_t *c = arg;
  assert_int_equal(status, 0);
  c->s->read_rev = rev;
  c->s->read_rows = n;
  seq_check(c);
}

static void seq_head(void *arg, int status, uint64_t rev) {
  seq_call_t *c = arg;
  assert_int_equal(status, 0);
  assert_true(rev >= c->s->write_rev);
  seq_check(c);
}

static void test_mixed_calls_complete_in_order(void **state) {
  fixture_t *f = *state;
  char *t = tenant_name("mixed");
  seq_t s = {0};
  seq_call_t calls[60];
  int k = 0;
  for (int round = 0; round < 20; round++) {
    char spec[64];
    snprintf(spec, sizeof spec, "doc:%d#viewer@user:a", round);
    batch_t b;
    batch_init(&b, t);
    add_tuple(&b, spec);
    calls[k] = (seq_call_t){&s, k, 0};
    assert_int_equal(f->api->read_tuples(f->b, t, 0, &all_tuples, 0, 0, seq_tuples, &calls[k]),
                     0);
    k++;
    calls[k] = (seq_call_t){&s, k, 0};
    assert_int_equal(f->api->write(f->b, &b.w, seq_write, &calls[k]), 0);
    k++;
    calls[k] = (seq_call_t){&s, k, round == 19};
    assert_int_equal(f->api->head(f->b, t, seq_head, &calls[k]), 0);
    k++;
  }
  wait_for(f, &s.done);
  assert_false(s.bad);
  assert_int_equal(s.next, k);

  /* Read-your-write at the revision the write returned. */
  result_t r = {0};
  read_tuples(f, &r, t, s.write_rev, &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 20);
  result_free(&r);
  free(t);
}

/* A failing call among concurrent ones fails alone. */
static void test_failure_fails_alone(void **state) {
  fixture_t *f = *state;
  char *t = tenant_name("alone");
  result_t res[6] = {{0}};
  CALL(f, &res[0], f->api->tenant_create(f->b, t, "alone", on_tenant, &res[0]));
  assert_int_equal(res[0].status, 0);
  result_free(&res[0]);

  batch_t a, b;
  batch_init(&a, t);
  add_tuple(&a, "doc:1#viewer@user:a");
  batch_init(&b, t);
  add_tuple(&b, "doc:1#viewer@user:b");
  assert_int_equal(f->api->write(f->b, &a.w, on_write, &res[0]), 0);
  assert_int_equal(f->api->tenant_create(f->b, t, "dup", on_tenant, &res[1]), 0);
  assert_int_equal(
      f->api->schema_write(f->b, t, "cv000000000000000001", "entity a {}", on_status, &res[2]),
      0);
  assert_int_equal(
      f->api->schema_write(f->b, t, "cv000000000000000001", "entity b {}", on_status, &res[3]),
      0);
  assert_int_equal(f->api->write(f->b, &b.w, on_write, &res[4]), 0);
  assert_int_equal(f->api->schema_read(f->b, t, NULL, on_schema, &res[5]), 0);
  wait_for(f, &res[5].done);
  for (int i = 0; i < 5; i++) assert_true(res[i].done);

  assert_int_equal(res[0].status, 0);
  assert_int_equal(res[1].status, TC_EUNIQUE);
  assert_int_equal(res[2].status, 0);
  assert_int_equal(res[3].status, TC_EUNIQUE);
  assert_int_equal(res[4].status, 0);
  assert_true(res[4].revision > res[0].revision);
  assert_int_equal(res[5].status, 0);
  assert_string_equal(res[5].text, "entity a {}");

  result_t r = {0};
  read_tuples(f, &r, t, res[4].revision, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  CALL(f, &r, f->api->tenant_get(f->b, t, on_tenant, &r));
  assert_string_equal(r.tenant.name, "alone");
  result_free(&r);
  for (int i = 0; i < 6; i++) result_free(&res[i]);
  free(t);
}

typedef struct flight_s {
  int completed, destroyed, completed_at_destroy;
} flight_t;

static void flight_write(void *arg, int status, uint64_t rev) {
  (void)rev;
  flight_t *fl = arg;
  assert_int_equal(status, 0);
  assert_false(fl->destroyed);
  fl->completed++;
}

static void flight_changes(void *arg, int status, const tc_change_t *c, size_t n,
                           uint64_t last, uint64_t oldest) {
  (void)c;
  (void)n;
  (void)last;
  (void)oldest;
  flight_t *fl = arg;
  assert_int_equal(status, 0);
  assert_false(fl->destroyed);
  fl->completed++;
}

static void flight_destroyed(void *arg) {
  flight_t *fl = arg;
  fl->destroyed = 1;
  fl->completed_at_destroy = fl->completed;
}

/* Whether the backend just reopened found the database its predecessor had
 * (saved_id: the predecessor's instance_id).  The uri is backend-specific:
 * for the sqlite plugin ":memory:" names a database that dies with its
 * backend and any other uri one that persists.  Any other plugin may keep
 * nothing between backends (the in-memory example); instance_id names the
 * database, so there a new id means a new database. */
static int same_database(fixture_t *f, const char *saved_id) {
  if (strcmp(f->api->name, "sqlite") == 0) return strcmp(backend_uri, ":memory:") != 0;
  return strcmp(f->api->instance_id(f->b), saved_id) == 0;
}

static void test_destroy_with_work_in_flight(void **state) {
  fixture_t *f = *state;
  char *t = tenant_name("flight");
  flight_t fl = {0};
  char *saved = strdup(f->api->instance_id(f->b));
  for (int i = 0; i < 100; i++) {
    char spec[64];
    snprintf(spec, sizeof spec, "doc:%d#viewer@user:a", i);
    batch_t b;
    batch_init(&b, t);
    add_tuple(&b, spec);
    assert_int_equal(f->api->write(f->b, &b.w, flight_write, &fl), 0);
    assert_int_equal(f->api->read_changes(f->b, t, 0, 0, flight_changes, &fl), 0);
  }
  f->api->destroy(f->b, flight_destroyed, &fl);
  f->b = NULL;
  assert_false(fl.destroyed);
  assert_int_equal(fl.completed, 0);
  wait_for(f, &fl.destroyed);
  assert_int_equal(fl.completed_at_destroy, 200);

  /* The writes were committed: a new backend on the same database has them,
   * unless the database lived only in memory. */
  f->b = open_backend(f);
  if (same_database(f, saved)) assert_true(head(f, t) > 0);
  free(saved);
  free(t);
}

static void test_reopen_keeps_identity(void **state) {
  fixture_t *f = *state;
  char *t = tenant_name("reopen");
  const char *id = f->api->instance_id(f->b);
  assert_non_null(id);
  assert_true(strlen(id) >= 16);
  char *saved = strdup(id);
  uint64_t rev = write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  close_backend(f);

  f->b = open_backend(f);
  if (!same_database(f, saved)) {
    /* A memory database is private to its backend and gone with it. */
    assert_string_not_equal(f->api->instance_id(f->b), saved);
    assert_int_equal(head(f, t), 0);
  } else {
    assert_string_equal(f->api->instance_id(f->b), saved);
    assert_int_equal(head(f, t), rev);
    result_t r = {0};
    read_tuples(f, &r, t, rev, &all_tuples, 0, 0);
    expect(&r.rows, "doc:1#viewer@user:a", NULL);
    result_free(&r);
  }
  free(saved);
  free(t);
}

static void test_stats_count_calls(void **state) {
  fixture_t *f = *state;
  char *t = tenant_name("stats");
  tc_backend_stats_t s0, s1;
  f->api->stats(f->b, &s0);
  write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  result_t r = {0};
  read_tuples(f, &r, t, 0, &all_tuples, 0, 0);
  read_attrs(f, &r, t, 0, &all_attrs);
  read_changes(f, &r, t, 0, 0);
  f->api->stats(f->b, &s1);
  assert_int_equal(s1.writes - s0.writes, 1);
  assert_int_equal(s1.reads - s0.reads, 2);
  assert_int_equal(s1.change_reads - s0.change_reads, 1);
  result_free(&r);
  free(t);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <backend plugin .so> <uri>\n", argv[0]);
    return 2;
  }
  plugin_path = argv[1];
  backend_uri = argv[2];
  snprintf(run_id, sizeof run_id, "run%ld-%ld", (long)getpid(), (long)uv_hrtime() % 1000000);
  char *err = NULL;
  if (tc_plugin_load(plugin_path, &plugin, &err) != 0) {
    fprintf(stderr, "%s\n", err);
    free(err);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tenants, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tenant_list_paging, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tenant_delete_removes_data, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schemas, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_filters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_paging, setup, teardown),
      cmocka_unit_test_setup_teardown(test_revisions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_attributes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_change_order_in_one_write, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_changes_paging, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_writes_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mixed_calls_complete_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failure_fails_alone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_destroy_with_work_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_keeps_identity, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stats_count_calls, setup, teardown),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  tc_plugin_unload(&plugin);
  return failed ? 1 : 0;
}
