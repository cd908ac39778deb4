/* Backend conformance suite: drives every call of the plugin ABI (major 2)
 * against any backend plugin.  Usage: tc_backend_conformance <plugin.so> <uri>.
 *
 * Each case gets a fresh backend on a fresh loop and works in tenants named
 * after this run, so the suite also runs against a database that persists
 * between runs (and that may hold other tenants).  Calls are made from the
 * loop thread; each helper runs the loop until the callback fired, with a
 * deadline.
 *
 * Positions are snap tokens the backend mints: the suite never looks inside
 * one.  It compares them for equality only, and learns what a token means
 * from what reads at it and changes after it return.  A uri naming a
 * retention window ("retain=N", as in "example:retain=3") runs the one case
 * about history that is no longer retained, and only that one: every other
 * case reads history from the start. */
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

static const char *plugin_path, *backend_uri;
static tc_plugin_t plugin;
static char run_id[32]; /* makes this run's tenant ids unique */

/* ---- the host's side: log capture, changed, Any <-> JSON ----------------- */

/* Group-commit evidence from the sqlite backend's debug line
 * "committed N requests in one transaction"; written by its writer thread. */
static _Atomic unsigned long commits, largest_commit;
/* Checkpoint evidence ("... checkpoint: N of M WAL frames") and the
 * threads that wrote each kind of line. */
static _Atomic unsigned long checkpoints;
static pthread_t writer_thread, checkpoint_thread;

static void test_log(int level, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  const char *p = strstr(line, "committed ");
  unsigned long n;
  if (level == TC_LOG_DEBUG && strstr(line, " checkpoint: ")) {
    checkpoint_thread = pthread_self();
    checkpoints++;
  }
  if (level == TC_LOG_DEBUG && p && sscanf(p, "committed %lu requests", &n) == 1) {
    writer_thread = pthread_self();
    commits++;
    unsigned long seen = largest_commit;
    while (n > seen && !atomic_compare_exchange_weak(&largest_commit, &seen, n)) continue;
  }
  if (level >= TC_LOG_WARN) fprintf(stderr, "backend log: %s\n", line);
}

/* host->changed: recorded, never required (spurious calls are harmless), but
 * it must come from the loop thread with a tenant id. */
static pthread_t loop_thread;
static unsigned long changed_calls, changed_misuse;

static void test_changed(const tc_host_api_t *host, const char *tenant_id) {
  (void)host;
  changed_calls++;
  if (!pthread_equal(pthread_self(), loop_thread) || !tenant_id || !*tenant_id)
    changed_misuse++;
}

/* host->any_to_json / any_from_json: the bytes in hex as a JSON string, which
 * is valid JSON (and jsonb) and inverts exactly.  The server's real pair
 * speaks protojson; a backend must not care which. */
static int test_any_to_json(const uint8_t *any, size_t len, char **json) {
  static const char hex[] = "0123456789abcdef";
  char *s = malloc(2 * len + 3);
  if (!s) return TC_ENOMEM;
  char *p = s;
  *p++ = '"';
  for (size_t i = 0; i < len; i++) {
    *p++ = hex[any[i] >> 4];
    *p++ = hex[any[i] & 15];
  }
  *p++ = '"';
  *p = '\0';
  *json = s;
  return 0;
}

static int hex_digit(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int test_any_from_json(const char *json, uint8_t **any, size_t *len) {
  while (*json == ' ' || *json == '\n' || *json == '\t' || *json == '\r') json++;
  size_t n = strlen(json);
  while (n && (json[n - 1] == ' ' || json[n - 1] == '\n' || json[n - 1] == '\t' ||
               json[n - 1] == '\r'))
    n--;
  if (n < 2 || json[0] != '"' || json[n - 1] != '"' || (n - 2) % 2) return TC_EINVAL;
  size_t out_len = (n - 2) / 2;
  uint8_t *out = malloc(out_len + 1);
  if (!out) return TC_ENOMEM;
  for (size_t i = 0; i < out_len; i++) {
    int hi = hex_digit(json[1 + 2 * i]), lo = hex_digit(json[2 + 2 * i]);
    if (hi < 0 || lo < 0) {
      free(out);
      return TC_EINVAL;
    }
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  *any = out;
  *len = out_len;
  return 0;
}

/* ---- results as strings -------------------------------------------------- */

typedef struct strv_s {
  char **v;
  size_t n;
} strv_t;

static void strv_add(strv_t *s, const char *str) {
  s->v = realloc(s->v, (s->n + 1) * sizeof *s->v);
  assert_non_null(s->v);
  s->v[s->n] = strdup(str);
  assert_non_null(s->v[s->n]);
  s->n++;
}

static void strv_push(strv_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void strv_push(strv_t *s, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  strv_add(s, buf);
}

/* The index of str in s, or s->n. */
static size_t strv_find(const strv_t *s, const char *str) {
  size_t i = 0;
  while (i < s->n && strcmp(s->v[i], str) != 0) i++;
  return i;
}

static void strv_free(strv_t *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  *s = (strv_t){0};
}

/* ---- fixture ------------------------------------------------------------- */

typedef struct fixture_s {
  uv_loop_t loop;
  tc_bridge_t bridge;
  uv_timer_t timer;
  int timed_out;
  const tc_backend_api_t *api;
  tc_backend_t *b;
  strv_t kept; /* tokens the case holds on to, freed at teardown */
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

/* create() with no options: a backend must work with its defaults. */
static tc_backend_t *open_backend(fixture_t *f) {
  static const char *const no_options[] = {NULL};
  tc_backend_t *b = NULL;
  char *err = NULL;
  int rc = f->api->create(&f->bridge.host, backend_uri, no_options, &b, &err);
  if (rc != 0) fprintf(stderr, "create(%s): %s\n", backend_uri, err ? err : "?");
  free(err);
  assert_int_equal(rc, 0);
  assert_non_null(b);
  return b;
}

static void destroy_backend(fixture_t *f, tc_backend_t *b) {
  int done = 0;
  f->api->destroy(b, on_destroyed, &done);
  assert_false(done); /* never synchronous */
  wait_for(f, &done);
}

static void close_backend(fixture_t *f) {
  destroy_backend(f, f->b);
  f->b = NULL;
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(tc_bridge_init(&f->bridge, &f->loop), 0);
  f->bridge.host.log = test_log;
  f->bridge.host.changed = test_changed;
  f->bridge.host.any_to_json = test_any_to_json;
  f->bridge.host.any_from_json = test_any_from_json;
  loop_thread = pthread_self();
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
  strv_free(&f->kept);
  free(f);
  assert_int_equal(changed_misuse, 0);
  return 0;
}

/* A copy of s that lives until the end of the case. */
static const char *keep(fixture_t *f, const char *s) {
  strv_add(&f->kept, s);
  return f->kept.v[f->kept.n - 1];
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

/* The value as text; bytes outside printable ASCII, and backslash, as \xHH. */
static void push_attr(strv_t *s, const tc_attr_t *a) {
  char value[256] = "";
  size_t n = 0;
  for (size_t i = 0; i < a->value_len && n + 5 < sizeof value; i++) {
    uint8_t c = a->value[i];
    const char *fmt = c >= 0x20 && c < 0x7f && c != '\\' ? "%c" : "\\x%02x";
    n += (size_t)snprintf(value + n, sizeof value - n, fmt, c);
  }
  strv_push(s, "%s:%s$%s=%s", a->entity_type, a->entity_id, a->attribute, value);
}

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

static void result_free(result_t *r) {
  free(r->token);
  free(r->last);
  free(r->next_key);
  free(r->head);
  free(r->version);
  free(r->text);
  free((char *)r->tenant.id);
  free((char *)r->tenant.name);
  strv_free(&r->rows);
  strv_free(&r->tokens);
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

/* write and head: a token on success. */
static void on_token(void *arg, int status, const char *token) {
  result_t *r = arg;
  r->status = status;
  assert_non_null(token);
  if (status == 0) assert_true(*token);
  r->token = strdup(token);
  r->done = 1;
}

static void on_tuples(void *arg, int status, const tc_tuple_t *rows, size_t n,
                      tc_cursor_t next) {
  result_t *r = arg;
  r->status = status;
  for (size_t i = 0; i < n; i++) push_tuple(&r->rows, &rows[i]);
  r->next = next;
  r->done = 1;
}

static void on_attrs(void *arg, int status, const tc_attr_t *rows, size_t n, tc_cursor_t next) {
  result_t *r = arg;
  r->status = status;
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

/* Checks what holds for every answer: one of tuple / attr; a token on each
 * change; the changes of one transaction adjacent (a token, once left, never
 * comes back); a `last` on success; nothing on failure. */
static void on_changes(void *arg, int status, const tc_change_t *changes, size_t n,
                       const char *last) {
  result_t *r = arg;
  r->status = status;
  if (status != 0) assert_int_equal(n, 0);
  for (size_t i = 0; i < n; i++) {
    const tc_change_t *c = &changes[i];
    assert_true((c->tuple == NULL) != (c->attr == NULL));
    assert_true(c->op == TC_CHANGE_CREATE || c->op == TC_CHANGE_DELETE);
    assert_non_null(c->token);
    assert_true(*c->token);
    if (i && strcmp(c->token, changes[i - 1].token) != 0)
      for (size_t j = 0; j < i; j++)
        if (strcmp(c->token, changes[j].token) == 0)
          fail_msg("change %zu: token %s of an earlier transaction again", i, c->token);
    strv_t one = {0};
    if (c->tuple)
      push_tuple(&one, c->tuple);
    else
      push_attr(&one, c->attr);
    strv_push(&r->rows, "%c%s", c->op == TC_CHANGE_CREATE ? '+' : '-', one.v[0]);
    strv_free(&one);
    strv_add(&r->tokens, c->token);
  }
  if (status == 0) {
    assert_non_null(last);
    assert_true(*last);
  }
  r->last = dup_or_null(last);
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
static void add_attr_bytes(batch_t *b, const char *type, const char *id, const char *attr,
                           const void *value, size_t len) {
  assert_true(b->w.n_attrs < 16);
  b->attrs[b->w.n_attrs++] = (tc_attr_t){type, id, attr, value, len};
}

static void add_attr(batch_t *b, const char *type, const char *id, const char *attr,
                     const char *value) {
  add_attr_bytes(b, type, id, attr, value, strlen(value));
}

/* ---- calls ----------------------------------------------------------------- */

/* The write's token (kept until the end of the case). */
static const char *write_ok(fixture_t *f, const tc_write_batch_t *w) {
  result_t r = {0};
  CALL(f, &r, f->api->write(f->b, w, on_token, &r));
  assert_int_equal(r.status, 0);
  const char *token = keep(f, r.token);
  result_free(&r);
  return token;
}

static const char *write_tuples(fixture_t *f, const char *tenant, ...) {
  batch_t b;
  batch_init(&b, tenant);
  va_list ap;
  va_start(ap, tenant);
  for (const char *s; (s = va_arg(ap, const char *));) add_tuple(&b, s);
  va_end(ap);
  return write_ok(f, &b.w);
}

static void read_tuples(fixture_t *f, result_t *r, const char *tenant, const char *token,
                        const tc_tuple_filter_t *flt, tc_cursor_t after, uint32_t limit) {
  CALL(f, r, f->api->read_tuples(f->b, tenant, token, flt, after, limit, on_tuples, r));
  assert_int_equal(r->status, 0);
}

static void read_attrs(fixture_t *f, result_t *r, const char *tenant, const char *token,
                       const tc_attr_filter_t *flt) {
  CALL(f, r, f->api->read_attrs(f->b, tenant, token, flt, 0, 0, on_attrs, r));
  assert_int_equal(r->status, 0);
}

/* upto: NULL for none. */
static void read_changes(fixture_t *f, result_t *r, const char *tenant, const char *after,
                         const char *upto, uint32_t limit) {
  CALL(f, r, f->api->read_changes(f->b, tenant, after, upto, limit, on_changes, r));
  assert_int_equal(r->status, 0);
}

/* The tenant's head token (kept until the end of the case). */
static const char *head(fixture_t *f, const char *tenant) {
  result_t r = {0};
  CALL(f, &r, f->api->head(f->b, tenant, on_token, &r));
  assert_int_equal(r.status, 0);
  const char *token = keep(f, r.token);
  result_free(&r);
  return token;
}

static void token_ok(fixture_t *f, tc_backend_t *b, const char *token) {
  char *err = NULL;
  int rc = f->api->token_check(b, token, &err);
  if (rc != 0) fail_msg("token_check(%s): %d %s", token, rc, err ? err : "(no message)");
  free(err);
}

/* token_check refuses token with TC_ESNAP_TOKEN and a one-line reason. */
static void token_bad(fixture_t *f, tc_backend_t *b, const char *token) {
  char *err = NULL;
  int rc = f->api->token_check(b, token, &err);
  if (rc != TC_ESNAP_TOKEN) fail_msg("token_check(\"%s\"): %d, want TC_ESNAP_TOKEN", token, rc);
  if (!err || !*err || strchr(err, '\n'))
    fail_msg("token_check(\"%s\"): want a one-line reason, found %s", token,
             err ? err : "(none)");
  free(err);
}

/* Asserts r holds the changes of all from index `from` on: the rest of the
 * feed (expect_tail), or a part of it (expect_page).  Tokens are not compared:
 * a backend may name the same position differently in two reads (a Postgres
 * snapshot cut at another place); that each token resumes exactly is checked
 * where the tokens come from. */
#define expect_tail(r, all, from) expect_changes_at(__LINE__, (r), (all), (from), 1)
#define expect_page(r, all, from) expect_changes_at(__LINE__, (r), (all), (from), 0)

static void expect_changes_at(int line, const result_t *r, const result_t *all, size_t from,
                              int to_end) {
  if (to_end ? r->rows.n != all->rows.n - from : r->rows.n > all->rows.n - from)
    fail_msg("line %d: %zu changes, want %s%zu", line, r->rows.n, to_end ? "" : "at most ",
             all->rows.n - from);
  for (size_t i = 0; i < r->rows.n; i++) {
    if (strcmp(r->rows.v[i], all->rows.v[from + i]) != 0)
      fail_msg("line %d: change %zu is %s, want %s", line, i, r->rows.v[i], all->rows.v[from + i]);
  }
}

/* Asserts the tokens are pairwise distinct. */
#define expect_distinct(...) expect_distinct_at(__LINE__, __VA_ARGS__, NULL)

static void expect_distinct_at(int line, ...) {
  const char *seen[64];
  size_t n = 0;
  va_list ap;
  va_start(ap, line);
  for (const char *t; (t = va_arg(ap, const char *)); n++) {
    assert_true(n < 64);
    for (size_t i = 0; i < n; i++)
      if (strcmp(seen[i], t) == 0)
        fail_msg("line %d: tokens %zu and %zu are both %s", line, i, n, t);
    seen[n] = t;
  }
  va_end(ap);
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
  const char *h0 = head(f, id);
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

  /* Nothing is left: no rows, no schema, no change history. */
  CALL(f, &r, f->api->tenant_get(f->b, id, on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);
  read_tuples(f, &r, id, "", &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 0);
  read_attrs(f, &r, id, "", &all_attrs);
  assert_int_equal(r.rows.n, 0);
  read_changes(f, &r, id, h0, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  read_changes(f, &r, id, head(f, id), NULL, 0);
  assert_int_equal(r.rows.n, 0);
  CALL(f, &r, f->api->schema_read(f->b, id, NULL, on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  CALL(f, &r, f->api->tenant_delete(f->b, id, on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);

  /* Other tenants keep their data. */
  read_tuples(f, &r, other, "", &all_tuples, 0, 0);
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

  read_tuples(f, &r, t, "", &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 6);
  assert_int_equal(r.next, 0);

  tc_tuple_filter_t flt = {.entity_type = "doc"};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 5);

  const char *ids[] = {"1", "3"};
  flt = (tc_tuple_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 2};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", "doc:3#viewer@user:c", NULL);

  flt = (tc_tuple_filter_t){.relation = "viewer"};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 4);

  flt = (tc_tuple_filter_t){.subject_type = "group"};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  expect(&r.rows, "doc:2#viewer@group:g#member", NULL);

  const char *subjects[] = {"a", "c"};
  flt = (tc_tuple_filter_t){.subject_ids = subjects, .n_subject_ids = 2};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:2#editor@user:a", "doc:3#viewer@user:c", NULL);

  flt = (tc_tuple_filter_t){.subject_relation = "member"};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  expect(&r.rows, "doc:2#viewer@group:g#member", NULL);

  /* "" does not mean "direct subjects only": unset members do not constrain. */
  flt = (tc_tuple_filter_t){.entity_type = "doc", .relation = "viewer", .subject_relation = ""};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 4);

  const char *one[] = {"1"};
  flt = (tc_tuple_filter_t){.entity_type = "folder", .entity_ids = one, .n_entity_ids = 1,
                            .relation = "parent", .subject_type = "doc", .subject_ids = one,
                            .n_subject_ids = 1};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  expect(&r.rows, "folder:1#parent@doc:1", NULL);

  flt = (tc_tuple_filter_t){.entity_type = "nothing"};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 0);
  read_tuples(f, &r, other, "", &all_tuples, 0, 0);
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
  const char *at = head(f, t);

  read_tuples(f, &r, t, "", &all_tuples, 0, 3);
  expect(&r.rows, "doc:1#viewer@user:1", "doc:1#viewer@user:2", "doc:1#viewer@user:3", NULL);
  assert_true(r.next != 0);
  tc_cursor_t second = r.next;

  /* Pages at a fixed position do not see later writes. */
  write_tuples(f, t, "doc:1#viewer@user:8", NULL);
  read_tuples(f, &r, t, at, &all_tuples, second, 3);
  expect(&r.rows, "doc:1#viewer@user:4", "doc:1#viewer@user:5", "doc:1#viewer@user:6", NULL);
  assert_true(r.next != 0);
  tc_cursor_t last = r.next;
  read_tuples(f, &r, t, at, &all_tuples, last, 3);
  expect(&r.rows, "doc:1#viewer@user:7", NULL);
  assert_int_equal(r.next, 0);

  /* A page that ends exactly at the last row has no next page. */
  read_tuples(f, &r, t, at, &all_tuples, last, 1);
  expect(&r.rows, "doc:1#viewer@user:7", NULL);
  assert_int_equal(r.next, 0);

  /* At the head the later write is there. */
  read_tuples(f, &r, t, "", &all_tuples, last, 3);
  expect(&r.rows, "doc:1#viewer@user:7", "doc:1#viewer@user:8", NULL);
  assert_int_equal(r.next, 0);

  /* Paging with a filter. */
  const char *subjects[] = {"2", "4", "6"};
  tc_tuple_filter_t flt = {.subject_ids = subjects, .n_subject_ids = 3};
  read_tuples(f, &r, t, at, &flt, 0, 2);
  expect(&r.rows, "doc:1#viewer@user:2", "doc:1#viewer@user:4", NULL);
  read_tuples(f, &r, t, at, &flt, r.next, 2);
  expect(&r.rows, "doc:1#viewer@user:6", NULL);
  assert_int_equal(r.next, 0);
  result_free(&r);
  free(t);
}

/* Write tokens are positions: distinct, and a read at one sees the state
 * right after that write, whatever came later. */
static void test_positions(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("positions");
  const char *h0 = head(f, t); /* before the tenant's first write */
  read_tuples(f, &r, t, h0, &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 0);

  const char *t1 = write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  const char *t2 = write_tuples(f, t, "doc:1#viewer@user:b", NULL);
  read_tuples(f, &r, t, t1, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", NULL);
  read_tuples(f, &r, t, t2, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  read_tuples(f, &r, t, "", &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  read_tuples(f, &r, t, h0, &all_tuples, 0, 0); /* still nothing there */
  assert_int_equal(r.rows.n, 0);

  /* Delete by filter. */
  batch_t b;
  batch_init(&b, t);
  const char *a[] = {"a"};
  tc_tuple_filter_t del = {.entity_type = "doc", .subject_ids = a, .n_subject_ids = 1};
  b.w.tuple_delete = &del;
  const char *t3 = write_ok(f, &b.w);
  read_tuples(f, &r, t, t2, &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 2);
  read_tuples(f, &r, t, t3, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", NULL);
  read_changes(f, &r, t, t2, NULL, 0);
  expect(&r.rows, "-doc:1#viewer@user:a", NULL);

  /* Re-writing an active tuple changes nothing, but it is a new position. */
  const char *t4 = write_tuples(f, t, "doc:1#viewer@user:b", NULL);
  read_tuples(f, &r, t, t4, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", NULL);
  read_changes(f, &r, t, t3, NULL, 0);
  assert_int_equal(r.rows.n, 0);

  /* So is an empty write; and a deleted tuple can come back. */
  batch_init(&b, t);
  const char *t5 = write_ok(f, &b.w);
  const char *t6 = write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  read_tuples(f, &r, t, t6, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", "doc:1#viewer@user:a", NULL); /* by id */
  read_tuples(f, &r, t, t5, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", NULL);

  /* Another tenant's write is nothing new for this one. */
  char *other = tenant_name("positions-other");
  const char *to = write_tuples(f, other, "doc:9#viewer@user:z", NULL);
  read_changes(f, &r, t, t6, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, t6);
  read_tuples(f, &r, t, head(f, t), &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", "doc:1#viewer@user:a", NULL);
  read_tuples(f, &r, other, "", &all_tuples, 0, 0);
  expect(&r.rows, "doc:9#viewer@user:z", NULL);

  expect_distinct(h0, t1, t2, t3, t4, t5, t6, to);
  const char *all[] = {h0, t1, t2, t3, t4, t5, t6, to};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) token_ok(f, f->b, all[i]);
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
  const char *r1 = write_ok(f, &b.w);

  batch_init(&b, t);
  add_attr(&b, "doc", "1", "public", "v2");
  const char *r2 = write_ok(f, &b.w);

  read_attrs(f, &r, t, r1, &all_attrs);
  expect(&r.rows, "doc:1$public=v1", "doc:1$owner=alice", "doc:2$public=no", NULL);
  read_attrs(f, &r, t, r2, &all_attrs);
  expect(&r.rows, "doc:1$owner=alice", "doc:2$public=no", "doc:1$public=v2", NULL);

  const char *attrs[] = {"public"};
  const char *ids[] = {"1"};
  tc_attr_filter_t flt = {.attributes = attrs, .n_attributes = 1};
  read_attrs(f, &r, t, "", &flt);
  expect(&r.rows, "doc:2$public=no", "doc:1$public=v2", NULL);
  flt = (tc_attr_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 1};
  read_attrs(f, &r, t, "", &flt);
  expect(&r.rows, "doc:1$owner=alice", "doc:1$public=v2", NULL);

  /* Overwrite = DELETE of the old value, then CREATE of the new one, in one
   * transaction. */
  read_changes(f, &r, t, r1, NULL, 0);
  expect(&r.rows, "-doc:1$public=v1", "+doc:1$public=v2", NULL);
  assert_string_equal(r.tokens.v[0], r.tokens.v[1]);

  batch_init(&b, t);
  flt = (tc_attr_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 1,
                           .attributes = attrs, .n_attributes = 1};
  b.w.attr_delete = &flt;
  const char *r3 = write_ok(f, &b.w);
  read_attrs(f, &r, t, r3, &all_attrs);
  expect(&r.rows, "doc:1$owner=alice", "doc:2$public=no", NULL);
  read_changes(f, &r, t, r2, NULL, 0);
  expect(&r.rows, "-doc:1$public=v2", NULL);

  /* An empty value is a value; a value is bytes, any bytes. */
  static const uint8_t binary[] = {0x00, 0xff, '"', '\\', 0x0a, 'x', 0x00};
  batch_init(&b, t);
  add_attr(&b, "doc", "4", "flag", "");
  add_attr_bytes(&b, "doc", "5", "blob", binary, sizeof binary);
  const char *r4 = write_ok(f, &b.w);
  flt = (tc_attr_filter_t){.attributes = (const char *[]){"flag", "blob"}, .n_attributes = 2};
  read_attrs(f, &r, t, r4, &flt);
  expect(&r.rows, "doc:4$flag=", "doc:5$blob=\\x00\\xff\"\\x5c\\x0ax\\x00", NULL);
  read_changes(f, &r, t, r3, NULL, 0);
  expect(&r.rows, "+doc:4$flag=", "+doc:5$blob=\\x00\\xff\"\\x5c\\x0ax\\x00", NULL);

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

/* ---- cases: the change feed ---------------------------------------------- */

static void test_change_order_in_one_write(void **state) {
  fixture_t *f = *state;
  result_t r = {0}, at = {0};
  char *t = tenant_name("effects");
  const char *h0 = head(f, t);
  batch_t b;
  batch_init(&b, t);
  add_tuple(&b, "doc:1#viewer@user:a");
  add_tuple(&b, "doc:1#viewer@user:b");
  add_attr(&b, "doc", "1", "public", "old");
  add_attr(&b, "doc", "1", "owner", "alice");
  const char *w1 = write_ok(f, &b.w);

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
  write_ok(f, &b.w);

  read_changes(f, &r, t, h0, NULL, 0);
  /* Within a transaction the order of rows is the backend's (a Postgres
   * row has no record of which step expired it), except that an
   * attribute's old value goes before its new one. */
  static const char *const want[] = {"+doc:1#viewer@user:a", "+doc:1#viewer@user:b",
                                     "+doc:1$public=old",    "+doc:1$owner=alice",
                                     "-doc:1#viewer@user:a", "-doc:1$owner=alice",
                                     "+doc:2#viewer@user:c", "-doc:1$public=old",
                                     "+doc:1$public=new",    "+doc:3$public=fresh"};
  assert_int_equal(r.rows.n, 10);
  for (size_t i = 0; i < 10; i++) {
    size_t at = strv_find(&r.rows, want[i]);
    if (at == r.rows.n || (at < 4) != (i < 4))
      fail_msg("change %s: not in its transaction", want[i]);
  }
  assert_true(strv_find(&r.rows, "-doc:1$public=old") < strv_find(&r.rows, "+doc:1$public=new"));
  /* One token per transaction. */
  for (size_t i = 0; i < r.rows.n; i++)
    assert_string_equal(r.tokens.v[i], r.tokens.v[i < 4 ? 0 : 4]);
  expect_distinct(r.tokens.v[0], r.tokens.v[4], h0);
  token_ok(f, f->b, r.tokens.v[0]);
  token_ok(f, f->b, r.last);

  /* A change token is the position right after its transaction. */
  const char *c1 = keep(f, r.tokens.v[0]);
  read_tuples(f, &at, t, c1, &all_tuples, 0, 0);
  expect(&at.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  read_tuples(f, &at, t, w1, &all_tuples, 0, 0);
  expect(&at.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  read_changes(f, &at, t, c1, NULL, 0);
  expect_tail(&at, &r, 4);
  read_changes(f, &at, t, r.last, NULL, 0);
  assert_int_equal(at.rows.n, 0);
  assert_string_equal(at.last, r.last);
  result_free(&at);
  result_free(&r);
  free(t);
}

/* Five writes (the fourth changes nothing) give this feed, by transaction:
 *   0..2: doc:1 a b c   3: doc:2 a   4..5: doc:3 a b   (no-op)   6: doc:5 a */
typedef struct feed_s {
  char *t;
  const char *h0;    /* the tenant's head before the first write */
  const char *w[5];  /* the writes' tokens */
  result_t all;      /* read_changes from h0 */
  const char *c[4];  /* the change token of each transaction */
} feed_t;

static const size_t feed_txn_start[] = {0, 3, 4, 6, 7}; /* first change of each; then the end */

static void feed_make(fixture_t *f, feed_t *fd, const char *name) {
  fd->t = tenant_name(name);
  fd->h0 = head(f, fd->t);
  fd->w[0] = write_tuples(f, fd->t, "doc:1#v@user:a", "doc:1#v@user:b", "doc:1#v@user:c", NULL);
  fd->w[1] = write_tuples(f, fd->t, "doc:2#v@user:a", NULL);
  fd->w[2] = write_tuples(f, fd->t, "doc:3#v@user:a", "doc:3#v@user:b", NULL);
  fd->w[3] = write_tuples(f, fd->t, "doc:3#v@user:a", NULL); /* changes nothing */
  fd->w[4] = write_tuples(f, fd->t, "doc:5#v@user:a", NULL);
  read_changes(f, &fd->all, fd->t, fd->h0, NULL, 0);
  expect(&fd->all.rows, "+doc:1#v@user:a", "+doc:1#v@user:b", "+doc:1#v@user:c",
         "+doc:2#v@user:a", "+doc:3#v@user:a", "+doc:3#v@user:b", "+doc:5#v@user:a", NULL);
  for (size_t k = 0; k < 4; k++) {
    fd->c[k] = fd->all.tokens.v[feed_txn_start[k]];
    for (size_t i = feed_txn_start[k]; i < feed_txn_start[k + 1]; i++)
      assert_string_equal(fd->all.tokens.v[i], fd->c[k]);
  }
  expect_distinct(fd->h0, fd->w[0], fd->w[1], fd->w[2], fd->w[3], fd->w[4]);
  expect_distinct(fd->c[0], fd->c[1], fd->c[2], fd->c[3]);
}

static void feed_free(feed_t *fd) {
  result_free(&fd->all);
  free(fd->t);
}

static void test_read_changes_resume(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  feed_t fd = {0};
  feed_make(f, &fd, "resume");

  /* From a write's token: exactly the later transactions, in order. */
  static const size_t after_write[] = {3, 4, 6, 6, 7};
  for (size_t k = 0; k < 5; k++) {
    read_changes(f, &r, fd.t, fd.w[k], NULL, 0);
    expect_tail(&r, &fd.all, after_write[k]);
  }
  /* From any change token: exactly the rest. */
  for (size_t k = 0; k < 4; k++) {
    read_changes(f, &r, fd.t, fd.c[k], NULL, 0);
    expect_tail(&r, &fd.all, feed_txn_start[k + 1]);
  }
  /* Nothing new: `last` is `after`, the same string. */
  read_changes(f, &r, fd.t, fd.w[4], NULL, 10);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.w[4]);
  read_changes(f, &r, fd.t, fd.c[3], NULL, 10);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.c[3]);
  read_changes(f, &r, fd.t, fd.all.last, NULL, 10);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.all.last);

  /* The head is the position after the newest transaction: from it, and from
   * the feed's `last`, only later writes come. */
  const char *h = head(f, fd.t);
  token_ok(f, f->b, h);
  read_changes(f, &r, fd.t, h, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, h);
  write_tuples(f, fd.t, "doc:6#v@user:a", "doc:6#v@user:b", NULL);
  read_changes(f, &r, fd.t, h, NULL, 0);
  expect(&r.rows, "+doc:6#v@user:a", "+doc:6#v@user:b", NULL);
  read_changes(f, &r, fd.t, fd.all.last, NULL, 0);
  expect(&r.rows, "+doc:6#v@user:a", "+doc:6#v@user:b", NULL);
  result_free(&r);
  feed_free(&fd);
}

static void test_read_changes_paging(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  feed_t fd = {0};
  feed_make(f, &fd, "feed");
  const result_t *all = &fd.all;

  /* A transaction larger than the limit comes whole, and alone. */
  read_changes(f, &r, fd.t, fd.h0, NULL, 2);
  expect(&r.rows, "+doc:1#v@user:a", "+doc:1#v@user:b", "+doc:1#v@user:c", NULL);

  /* Paging by whole transactions visits every change once, in order, until
   * a page with nothing new leaves `last` where it was. */
  for (uint32_t limit = 1; limit <= 4; limit++) {
    char *after = strdup(fd.h0);
    size_t got = 0;
    for (int pages = 0;; pages++) {
      assert_true(pages < 10);
      read_changes(f, &r, fd.t, after, NULL, limit);
      if (r.rows.n == 0) {
        assert_string_equal(r.last, after);
        break;
      }
      expect_page(&r, all, got);
      got += r.rows.n;
      /* Whole transactions: the next change is of another one. */
      if (got < all->rows.n)
        assert_string_not_equal(all->tokens.v[got], all->tokens.v[got - 1]);
      free(after);
      after = strdup(r.last);
    }
    assert_int_equal(got, all->rows.n);
    free(after);
  }
  result_free(&r);
  feed_free(&fd);
}

/* upto: the read stops at that position, and once everything up to it is
 * read, `last` is `upto` itself. */
static void test_read_changes_upto(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  feed_t fd = {0};
  feed_make(f, &fd, "upto");
  const result_t *all = &fd.all;

  read_changes(f, &r, fd.t, fd.h0, fd.c[1], 0);
  expect_page(&r, all, 0);
  assert_int_equal(r.rows.n, feed_txn_start[2]);
  assert_string_equal(r.last, fd.c[1]);
  read_changes(f, &r, fd.t, fd.c[1], fd.c[2], 0);
  expect(&r.rows, "+doc:3#v@user:a", "+doc:3#v@user:b", NULL);
  assert_string_equal(r.last, fd.c[2]);
  /* Past the transaction that changed nothing, to the last one. */
  read_changes(f, &r, fd.t, fd.c[2], fd.c[3], 0);
  expect(&r.rows, "+doc:5#v@user:a", NULL);
  assert_string_equal(r.last, fd.c[3]);
  /* Up to where it starts: nothing, and complete. */
  read_changes(f, &r, fd.t, fd.c[1], fd.c[1], 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.c[1]);
  /* From beyond upto (a stream ahead of the feed it reads up to): nothing,
   * and the position stays where it is, never back at upto. */
  read_changes(f, &r, fd.t, fd.c[3], fd.c[1], 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.c[3]);
  read_changes(f, &r, fd.t, fd.w[4], fd.c[1], 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.w[4]);

  /* Paged with the smallest limit: one transaction a page, then `upto`. */
  for (size_t k = 0; k < 4; k++) {
    char *after = strdup(fd.h0);
    size_t got = 0;
    for (int pages = 0;; pages++) {
      assert_true(pages < 10);
      read_changes(f, &r, fd.t, after, fd.c[k], 1);
      free(after);
      after = strdup(r.last);
      if (r.rows.n == 0) break;
      expect_page(&r, all, got);
      got += r.rows.n;
      assert_true(got <= feed_txn_start[k + 1]);
      /* The page that completes the read ends at upto. */
      if (got == feed_txn_start[k + 1]) assert_string_equal(r.last, fd.c[k]);
    }
    assert_int_equal(got, feed_txn_start[k + 1]);
    assert_string_equal(after, fd.c[k]);
    free(after);
  }

  /* A write after upto is not read. */
  write_tuples(f, fd.t, "doc:6#v@user:a", NULL);
  read_changes(f, &r, fd.t, fd.c[2], fd.c[3], 0);
  expect(&r.rows, "+doc:5#v@user:a", NULL);
  assert_string_equal(r.last, fd.c[3]);
  result_free(&r);
  feed_free(&fd);
}

/* ---- cases: tokens --------------------------------------------------------- */

static void test_token_check(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("tokens");
  const char *h0 = head(f, t);
  const char *w = write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  read_changes(f, &r, t, h0, NULL, 0);
  const char *c = keep(f, r.tokens.v[0]);
  const char *mine[] = {h0, w, c, r.last, head(f, t)};
  for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) token_ok(f, f->b, mine[i]);

  /* Malformed: not anything a backend mints. */
  char *mangled = malloc(strlen(w) + 2);
  assert_non_null(mangled);
  sprintf(mangled, "%s!", w);
  const char *bad[] = {"not a token!", "!!!!", "x", mangled};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) token_bad(f, f->b, bad[i]);
  free(mangled);

  /* A second backend on the same uri: the same database (then tokens carry
   * over) or another one (then each refuses the other's), as instance_id
   * says. */
  const char *id = keep(f, f->api->instance_id(f->b));
  tc_backend_t *b2 = open_backend(f);
  const char *id2 = f->api->instance_id(b2);
  assert_non_null(id2);
  int same = strcmp(id, id2) == 0;
  if (strcmp(f->api->name, "sqlite") == 0)
    assert_int_equal(same, strcmp(backend_uri, ":memory:") != 0);
  if (same) {
    token_ok(f, b2, w);
    token_ok(f, b2, c);
  } else {
    token_bad(f, b2, w);
    token_bad(f, b2, c);
    token_bad(f, b2, h0);
    result_t r2 = {0};
    batch_t b;
    batch_init(&b, t);
    add_tuple(&b, "doc:2#viewer@user:b");
    CALL(f, &r2, f->api->write(b2, &b.w, on_token, &r2));
    assert_int_equal(r2.status, 0);
    token_ok(f, b2, r2.token);
    token_bad(f, f->b, r2.token);
    result_free(&r2);
  }
  destroy_backend(f, b2);
  result_free(&r);
  free(t);
}

/* ---- cases: ordering, concurrency, lifecycle ------------------------------ */

typedef struct many_s {
  size_t completed;
  int done;
  int in_order;
  char *prev; /* the previous write's token */
} many_t;

typedef struct many_call_s {
  many_t *m;
  size_t index;
} many_call_t;

static void on_many(void *arg, int status, const char *token) {
  many_call_t *c = arg;
  many_t *m = c->m;
  assert_int_equal(status, 0);
  assert_true(*token);
  if (c->index != m->completed || (m->prev && strcmp(token, m->prev) == 0)) m->in_order = 0;
  free(m->prev);
  m->prev = strdup(token);
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
  const char *h0 = head(f, t);
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

  f->api->stats(f->b, &after);
  assert_true(after.writes - before.writes >= MANY_WRITES);
  result_t r = {0};
  read_tuples(f, &r, t, "", &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, MANY_WRITES);
  /* At the last write's token: at least that write.  Writes submitted
   * together are concurrent; one need not see another that was still in
   * flight (a Postgres snapshot does not). */
  read_tuples(f, &r, t, m.prev, &all_tuples, 0, 0);
  assert_true(strv_find(&r.rows, specs[MANY_WRITES - 1]) < r.rows.n);
  /* One transaction each, every write once (concurrent writes may commit in
   * any order); nothing after the last. */
  read_changes(f, &r, t, h0, NULL, 0);
  assert_int_equal(r.rows.n, MANY_WRITES);
  unsigned char *seen = calloc(MANY_WRITES, 1);
  for (size_t i = 0; i < r.rows.n; i++) {
    size_t w;
    assert_int_equal(sscanf(r.rows.v[i], "+doc:%zu#", &w), 1);
    assert_true(w < MANY_WRITES && !seen[w]);
    seen[w] = 1;
    char want[80];
    snprintf(want, sizeof want, "+%s", specs[w]);
    assert_string_equal(r.rows.v[i], want);
    if (i) assert_string_not_equal(r.tokens.v[i], r.tokens.v[i - 1]);
  }
  free(seen);
  /* Nothing after the feed's end.  From the last write's token come only
   * writes that were still in flight when it began (none for a backend that
   * commits in submission order). */
  char *end = strdup(r.last);
  read_changes(f, &r, t, end, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  free(end);
  read_changes(f, &r, t, m.prev, NULL, 0);
  assert_true(r.rows.n < MANY_WRITES);

  /* Group commit: the sqlite backend reports each transaction it committed. */
  if (strcmp(f->api->name, "sqlite") == 0) {
    unsigned long txns = commits - commits_before;
    fprintf(stderr, "%d writes in %lu transactions, largest %lu\n", MANY_WRITES, txns,
            (unsigned long)largest_commit);
    assert_true(txns > 0 && txns < MANY_WRITES);
    assert_true(largest_commit > 1);
  }
  result_free(&r);
  free(m.prev);
  free(specs);
  free(calls);
  free(t);
}

/* The sqlite backend on a file checkpoints its WAL on a thread of its
 * own, never in the writer's commits: writes one by one until it reports a
 * checkpoint, then reads every write back. */
static void test_checkpoint_off_the_writer(void **state) {
  fixture_t *f = *state;
  if (strcmp(f->api->name, "sqlite") != 0 || strcmp(backend_uri, ":memory:") == 0) skip();
  char *t = tenant_name("ckpt");
  unsigned long before = checkpoints;
  result_t w = {0}, r = {0};
  size_t n = 0;
  for (; checkpoints == before && n < 20000; n++) {
    batch_t b;
    batch_init(&b, t);
    char spec[64];
    snprintf(spec, sizeof spec, "doc:%zu#viewer@user:u%zu", n, n);
    add_tuple(&b, spec);
    CALL(f, &w, f->api->write(f->b, &b.w, on_token, &w));
    assert_int_equal(w.status, 0);
  }
  if (checkpoints == before) fail_msg("no checkpoint after %zu writes", n);
  assert_false(pthread_equal(checkpoint_thread, writer_thread));
  read_tuples(f, &r, t, "", &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, n);
  result_free(&w);
  result_free(&r);
  free(t);
}

/* Completions of mixed calls come back in submission order. */
typedef struct seq_s {
  int next, bad, done, heads;
  char *write_token;
  size_t read_rows;
} seq_t;

typedef struct seq_call_s {
  seq_t *s;
  int index;
} seq_call_t;

/* Reads and writes complete in submission order; heads (committed history
 * only) may come ahead of writes in flight, so they are only counted. */
static void seq_check(seq_call_t *c) {
  if (c->index != c->s->next++) c->s->bad = 1;
  c->s->done = c->s->next == 40 && c->s->heads == 20;
}

static void seq_write(void *arg, int status, const char *token) {
  seq_call_t *c = arg;
  assert_int_equal(status, 0);
  free(c->s->write_token);
  c->s->write_token = strdup(token);
  seq_check(c);
}

static void seq_tuples(void *arg, int status, const tc_tuple_t *rows, size_t n,
                       tc_cursor_t next) {
  (void)rows;
  (void)next;
  seq_call_t *c = arg;
  assert_int_equal(status, 0);
  c->s->read_rows = n;
  seq_check(c);
}

static void seq_head(void *arg, int status, const char *token) {
  seq_call_t *c = arg;
  assert_int_equal(status, 0);
  assert_true(*token);
  c->s->heads++;
  c->s->done = c->s->next == 40 && c->s->heads == 20;
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
    calls[k] = (seq_call_t){&s, k};
    assert_int_equal(
        f->api->read_tuples(f->b, t, "", &all_tuples, 0, 0, seq_tuples, &calls[k]), 0);
    k++;
    calls[k] = (seq_call_t){&s, k};
    assert_int_equal(f->api->write(f->b, &b.w, seq_write, &calls[k]), 0);
    k++;
    calls[40 + round] = (seq_call_t){&s, -1};
    assert_int_equal(f->api->head(f->b, t, seq_head, &calls[40 + round]), 0);
  }
  wait_for(f, &s.done);
  assert_false(s.bad);
  assert_int_equal(s.next, k);

  /* Read-your-write at the token the write returned; at the head, all. */
  result_t r = {0};
  read_tuples(f, &r, t, s.write_token, &all_tuples, 0, 0);
  assert_true(strv_find(&r.rows, "doc:19#viewer@user:a") < r.rows.n);
  read_tuples(f, &r, t, "", &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 20);
  result_free(&r);
  free(s.write_token);
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
  assert_int_equal(f->api->write(f->b, &a.w, on_token, &res[0]), 0);
  assert_int_equal(f->api->tenant_create(f->b, t, "dup", on_tenant, &res[1]), 0);
  assert_int_equal(
      f->api->schema_write(f->b, t, "cv000000000000000001", "entity a {}", on_status, &res[2]),
      0);
  assert_int_equal(
      f->api->schema_write(f->b, t, "cv000000000000000001", "entity b {}", on_status, &res[3]),
      0);
  assert_int_equal(f->api->write(f->b, &b.w, on_token, &res[4]), 0);
  assert_int_equal(f->api->schema_read(f->b, t, NULL, on_schema, &res[5]), 0);
  wait_for(f, &res[5].done);
  for (int i = 0; i < 5; i++) assert_true(res[i].done);

  assert_int_equal(res[0].status, 0);
  assert_int_equal(res[1].status, TC_EUNIQUE);
  assert_int_equal(res[2].status, 0);
  assert_int_equal(res[3].status, TC_EUNIQUE);
  assert_int_equal(res[4].status, 0);
  expect_distinct(res[0].token, res[4].token);
  assert_int_equal(res[5].status, 0);
  assert_string_equal(res[5].text, "entity a {}");

  result_t r = {0};
  read_tuples(f, &r, t, res[0].token, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", NULL);
  read_tuples(f, &r, t, res[4].token, &all_tuples, 0, 0);
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

static void flight_write(void *arg, int status, const char *token) {
  (void)token;
  flight_t *fl = arg;
  assert_int_equal(status, 0);
  assert_false(fl->destroyed);
  fl->completed++;
}

static void flight_changes(void *arg, int status, const tc_change_t *c, size_t n,
                           const char *last) {
  (void)c;
  (void)n;
  (void)last;
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
  const char *h0 = head(f, t);
  for (int i = 0; i < 100; i++) {
    char spec[64];
    snprintf(spec, sizeof spec, "doc:%d#viewer@user:a", i);
    batch_t b;
    batch_init(&b, t);
    add_tuple(&b, spec);
    assert_int_equal(f->api->write(f->b, &b.w, flight_write, &fl), 0);
    assert_int_equal(f->api->read_changes(f->b, t, h0, NULL, 0, flight_changes, &fl), 0);
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
  if (same_database(f, saved)) {
    result_t r = {0};
    read_tuples(f, &r, t, "", &all_tuples, 0, 0);
    assert_int_equal(r.rows.n, 100);
    result_free(&r);
  }
  free(saved);
  free(t);
}

static void test_reopen_keeps_identity(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("reopen");
  const char *id = f->api->instance_id(f->b);
  assert_non_null(id);
  assert_true(strlen(id) >= 16);
  char *saved = strdup(id);
  const char *tok = write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  close_backend(f);

  f->b = open_backend(f);
  if (!same_database(f, saved)) {
    /* A memory database is private to its backend and gone with it, and so
     * are its positions. */
    assert_string_not_equal(f->api->instance_id(f->b), saved);
    token_bad(f, f->b, tok);
    read_tuples(f, &r, t, "", &all_tuples, 0, 0);
    assert_int_equal(r.rows.n, 0);
  } else {
    assert_string_equal(f->api->instance_id(f->b), saved);
    token_ok(f, f->b, tok);
    read_tuples(f, &r, t, tok, &all_tuples, 0, 0);
    expect(&r.rows, "doc:1#viewer@user:a", NULL);
    read_changes(f, &r, t, tok, NULL, 0);
    assert_int_equal(r.rows.n, 0);
    assert_string_equal(r.last, tok);
    write_tuples(f, t, "doc:2#viewer@user:a", NULL);
    read_changes(f, &r, t, tok, NULL, 0);
    expect(&r.rows, "+doc:2#viewer@user:a", NULL);
  }
  result_free(&r);
  free(saved);
  free(t);
}

static void test_stats_count_calls(void **state) {
  fixture_t *f = *state;
  char *t = tenant_name("stats");
  const char *h0 = head(f, t);
  tc_backend_stats_t s0, s1;
  f->api->stats(f->b, &s0);
  write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  result_t r = {0};
  read_tuples(f, &r, t, "", &all_tuples, 0, 0);
  read_attrs(f, &r, t, "", &all_attrs);
  read_changes(f, &r, t, h0, NULL, 0);
  f->api->stats(f->b, &s1);
  assert_int_equal(s1.writes - s0.writes, 1);
  assert_int_equal(s1.reads - s0.reads, 2);
  assert_int_equal(s1.change_reads - s0.change_reads, 1);
  result_free(&r);
  free(t);
}

/* ---- case: history that is no longer retained ----------------------------- */

/* N of a uri that names a retention window ("retain=N"), else 0. */
static unsigned long retain_window(void) {
  const char *p = strstr(backend_uri, "retain=");
  return p ? strtoul(p + strlen("retain="), NULL, 10) : 0;
}

/* With retain=N the backend keeps the changes of the last N transactions:
 * from the position N transactions back the feed reads, from further back
 * it is TC_EOUT_OF_RANGE.  A tenant that lost nothing reads on. */
static void test_out_of_range(void **state) {
  fixture_t *f = *state;
  unsigned long n = retain_window();
  if (n == 0) {
    print_message("      the uri names no retention window (retain=N): not applicable\n");
    skip();
  }
  assert_true(n < 100);
  result_t r = {0};
  char *t = tenant_name("retain");
  char *quiet = tenant_name("retain-quiet");
  write_tuples(f, quiet, "doc:0#viewer@user:q", NULL);
  const char *h = head(f, t);
  const char *w[102];
  for (unsigned long i = 0; i <= n; i++) {
    char spec[64];
    snprintf(spec, sizeof spec, "doc:%lu#viewer@user:a", i);
    w[i] = write_tuples(f, t, spec, NULL);
  }
  /* w[0] is N transactions back: all of them are there. */
  read_changes(f, &r, t, w[0], NULL, 0);
  assert_int_equal(r.rows.n, n);

  char spec[64];
  snprintf(spec, sizeof spec, "doc:%lu#viewer@user:a", n + 1);
  w[n + 1] = write_tuples(f, t, spec, NULL);
  const char *gone[] = {h, w[0]};
  for (int i = 0; i < 2; i++) {
    CALL(f, &r, f->api->read_changes(f->b, t, gone[i], NULL, 0, on_changes, &r));
    assert_int_equal(r.status, TC_EOUT_OF_RANGE);
    assert_int_equal(r.rows.n, 0);
  }
  read_changes(f, &r, t, w[1], NULL, 0);
  assert_int_equal(r.rows.n, n);
  snprintf(spec, sizeof spec, "+doc:%lu#viewer@user:a", n + 1);
  assert_string_equal(r.rows.v[n - 1], spec);

  /* The quiet tenant's changes fell out of the window, but after its head
   * there was nothing to lose. */
  const char *qh = head(f, quiet);
  read_changes(f, &r, quiet, qh, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, qh);
  write_tuples(f, quiet, "doc:1#viewer@user:q", NULL);
  read_changes(f, &r, quiet, qh, NULL, 0);
  expect(&r.rows, "+doc:1#viewer@user:q", NULL);
  result_free(&r);
  free(quiet);
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
      cmocka_unit_test_setup_teardown(test_positions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_attributes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_change_order_in_one_write, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_changes_resume, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_changes_paging, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_changes_upto, setup, teardown),
      cmocka_unit_test_setup_teardown(test_token_check, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_writes_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_checkpoint_off_the_writer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mixed_calls_complete_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failure_fails_alone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_destroy_with_work_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_keeps_identity, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stats_count_calls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
  };
  /* Under a retention window the other cases, which read history from the
   * start, do not apply: only the retention case runs. */
  const struct CMUnitTest retention[] = {
      cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
  };
  int failed = retain_window()
                   ? cmocka_run_group_tests_name("retention", retention, NULL, NULL)
                   : cmocka_run_group_tests_name("conformance", tests, NULL, NULL);
  tc_plugin_unload(&plugin);
  return failed ? 1 : 0;
}
