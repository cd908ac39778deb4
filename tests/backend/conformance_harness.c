/* The conformance suite's harness: the host's side of the plugin ABI (log
 * capture, changed, Any <-> JSON), the fixture, results as strings, inputs,
 * and the calls each case makes (conformance.h). */
#include "conformance.h"

const char *ct_backend_uri;
tc_plugin_t ct_plugin;
char ct_run_id[32]; /* makes this run's tenant ids unique */

/* ---- the host's side: log capture, changed, Any <-> JSON ----------------- */

/* Group-commit evidence from the sqlite backend's debug line
 * "committed N requests in one transaction"; written by its writer thread. */
_Atomic unsigned long ct_commits, ct_largest_commit;
/* Checkpoint evidence ("... checkpoint: N of M WAL frames") and the
 * threads that wrote each kind of line. */
_Atomic unsigned long ct_checkpoints;
pthread_t ct_writer_thread, ct_checkpoint_thread;

static void log_sink(int level, const char *line) {
  const char *p = strstr(line, "committed ");
  unsigned long n;
  if (level == TC_LOG_DEBUG && strstr(line, " checkpoint: ")) {
    ct_checkpoint_thread = pthread_self();
    ct_checkpoints++;
  }
  if (level == TC_LOG_DEBUG && p && sscanf(p, "committed %lu requests", &n) == 1) {
    ct_writer_thread = pthread_self();
    ct_commits++;
    unsigned long seen = ct_largest_commit;
    while (n > seen && !atomic_compare_exchange_weak(&ct_largest_commit, &seen, n)) continue;
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
  if (!pthread_equal(pthread_self(), loop_thread) || !tenant_id || !*tenant_id) changed_misuse++;
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
  while (n &&
         (json[n - 1] == ' ' || json[n - 1] == '\n' || json[n - 1] == '\t' || json[n - 1] == '\r'))
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

static void strv_add(ct_strv_t *s, const char *str) {
  s->v = realloc(s->v, (s->n + 1) * sizeof *s->v);
  assert_non_null(s->v);
  s->v[s->n] = strdup(str);
  assert_non_null(s->v[s->n]);
  s->n++;
}

static void strv_push(ct_strv_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void strv_push(ct_strv_t *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *str = tc_vformat(fmt, ap);
  va_end(ap);
  assert_non_null(str);
  strv_add(s, str);
  free(str);
}

/* The index of str in s, or s->n. */
size_t ct_strv_find(const ct_strv_t *s, const char *str) {
  size_t i = 0;
  while (i < s->n && strcmp(s->v[i], str) != 0) i++;
  return i;
}

static void strv_free(ct_strv_t *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  *s = (ct_strv_t){0};
}

/* ---- fixture ------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) { ((ct_fixture_t *)t->data)->timed_out = 1; }

/* Runs the loop until *flag is set; fails the test after the deadline. */
void ct_wait_for(ct_fixture_t *f, const int *flag) {
  f->timed_out = 0;
  uv_timer_start(&f->timer, on_timer, DEADLINE_MS, 0);
  while (!*flag && !f->timed_out) uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->timer);
  assert_true(*flag);
}

static void on_destroyed(void *arg) { *(int *)arg = 1; }

/* create() with no options: a backend must work with its defaults. */
tc_backend_t *ct_open_backend(ct_fixture_t *f) {
  static const char *const no_options[] = {NULL};
  tc_backend_t *b = NULL;
  char *err = NULL;
  int rc = f->api->create(&f->bridge.host, ct_backend_uri, no_options, &b, &err);
  if (rc != 0) fprintf(stderr, "create(%s): %s\n", ct_backend_uri, err ? err : "?");
  free(err);
  assert_int_equal(rc, 0);
  assert_non_null(b);
  return b;
}

void ct_destroy_backend(ct_fixture_t *f, tc_backend_t *b) {
  int done = 0;
  f->api->destroy(b, on_destroyed, &done);
  assert_false(done); /* never synchronous */
  ct_wait_for(f, &done);
}

void ct_close_backend(ct_fixture_t *f) {
  ct_destroy_backend(f, f->b);
  f->b = NULL;
}

int ct_setup(void **state) {
  ct_fixture_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(tc_bridge_init(&f->bridge, &f->loop), 0);
  f->bridge.host.log = tt_log;
  tt_log_sink(log_sink);
  f->bridge.host.changed = test_changed;
  f->bridge.host.any_to_json = test_any_to_json;
  f->bridge.host.any_from_json = test_any_from_json;
  loop_thread = pthread_self();
  uv_timer_init(&f->loop, &f->timer);
  f->timer.data = f;
  f->api = ct_plugin.api;
  f->b = ct_open_backend(f);
  *state = f;
  return 0;
}

int ct_teardown(void **state) {
  ct_fixture_t *f = *state;
  if (f->b) ct_close_backend(f);
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
const char *ct_keep(ct_fixture_t *f, const char *s) {
  strv_add(&f->kept, s);
  return f->kept.v[f->kept.n - 1];
}

void ct_expect_rows(int line, const ct_strv_t *s, ...) {
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

static void push_tuple(ct_strv_t *s, const tc_tuple_t *t) {
  strv_push(s, "%s:%s#%s@%s:%s%s%s", t->entity_type, t->entity_id, t->relation, t->subject_type,
            t->subject_id, *t->subject_relation ? "#" : "", t->subject_relation);
}

/* The value as text; bytes outside printable ASCII, and backslash, as \xHH. */
static void push_attr(ct_strv_t *s, const tc_attr_t *a) {
  char value[256] = "";
  size_t n = 0;
  for (size_t i = 0; i < a->value_len && n + 5 < sizeof value; i++) {
    uint8_t c = a->value[i];
    const char *fmt = c >= 0x20 && c < 0x7f && c != '\\' ? "%c" : "\\x%02x";
    n += (size_t)snprintf(value + n, sizeof value - n, fmt, c);
  }
  strv_push(s, "%s:%s$%s=%s", a->entity_type, a->entity_id, a->attribute, value);
}

void ct_result_free(ct_result_t *r) {
  tc_arena_free(&r->strings);
  strv_free(&r->rows);
  strv_free(&r->tokens);
  *r = (ct_result_t){0};
}

/* A copy of s (NULL stays NULL) that lives as long as r's answer. */
static char *copy_in(ct_result_t *r, const char *s) {
  return s ? tc_arena_strdup(&r->strings, s) : NULL;
}

void ct_on_status(void *arg, int status) {
  ct_result_t *r = arg;
  r->status = status;
  r->done = 1;
}

/* A page of rows answered: its cursor, then the status. */
static void page_answered(ct_result_t *r, int status, tc_cursor_t next) {
  r->next = next;
  ct_on_status(r, status);
}

/* write and head: a token on success. */
void ct_on_token(void *arg, int status, const char *token) {
  ct_result_t *r = arg;
  assert_non_null(token);
  if (status == 0) assert_true(*token);
  r->token = copy_in(r, token);
  ct_on_status(r, status);
}

void ct_on_tuples(void *arg, int status, const tc_tuple_t *rows, size_t n, tc_cursor_t next) {
  ct_result_t *r = arg;
  for (size_t i = 0; i < n; i++) push_tuple(&r->rows, &rows[i]);
  page_answered(r, status, next);
}

void ct_on_attrs(void *arg, int status, const tc_attr_t *rows, size_t n, tc_cursor_t next) {
  ct_result_t *r = arg;
  for (size_t i = 0; i < n; i++) push_attr(&r->rows, &rows[i]);
  page_answered(r, status, next);
}

void ct_on_tenant(void *arg, int status, const tc_tenant_row_t *row) {
  ct_result_t *r = arg;
  if (row) {
    r->tenant = (tc_tenant_row_t){copy_in(r, row->id), copy_in(r, row->name), row->created_at_ms};
  }
  ct_on_status(r, status);
}

void ct_on_tenants(void *arg, int status, const tc_tenant_row_t *rows, size_t n, const char *next) {
  ct_result_t *r = arg;
  for (size_t i = 0; i < n; i++) strv_push(&r->rows, "%s=%s", rows[i].id, rows[i].name);
  r->next_key = copy_in(r, next);
  ct_on_status(r, status);
}

void ct_on_schema(void *arg, int status, const char *version, const char *text) {
  ct_result_t *r = arg;
  r->version = copy_in(r, version);
  r->text = copy_in(r, text);
  ct_on_status(r, status);
}

void ct_on_schemas(void *arg, int status, const char *head, const tc_schema_row_t *rows, size_t n,
                   const char *next) {
  ct_result_t *r = arg;
  r->head = copy_in(r, head);
  for (size_t i = 0; i < n; i++) {
    assert_true(rows[i].created_at_ms > 0);
    strv_push(&r->rows, "%s", rows[i].version);
  }
  r->next_key = copy_in(r, next);
  ct_on_status(r, status);
}

/* Records one change (a schema write's as "=version"), checking what holds
 * for every answer: one of tuple / attr; a token on each change; the
 * changes of one transaction adjacent (a token, once left, never comes
 * back). */
static void push_change(ct_result_t *r, const tc_change_t *c, const char *schema_version) {
  assert_non_null(c->token);
  assert_true(*c->token);
  if (r->tokens.n && strcmp(c->token, r->tokens.v[r->tokens.n - 1]) != 0 &&
      ct_strv_find(&r->tokens, c->token) < r->tokens.n)
    fail_msg("change %zu: token %s of an earlier transaction again", r->rows.n, c->token);
  if (c->op == TC_CHANGE_SCHEMA) {
    assert_true(!c->tuple && !c->attr && schema_version);
    strv_push(&r->rows, "=%s", schema_version);
  } else {
    assert_true((c->tuple == NULL) != (c->attr == NULL));
    assert_true(c->op == TC_CHANGE_CREATE || c->op == TC_CHANGE_DELETE);
    assert_null(schema_version);
    ct_strv_t one = {0};
    if (c->tuple)
      push_tuple(&one, c->tuple);
    else
      push_attr(&one, c->attr);
    strv_push(&r->rows, "%c%s", c->op == TC_CHANGE_CREATE ? '+' : '-', one.v[0]);
    strv_free(&one);
  }
  strv_add(&r->tokens, c->token);
}

static void changes_end(ct_result_t *r, int status, size_t n, const char *last) {
  if (status != 0) assert_int_equal(n, 0);
  if (status == 0) {
    assert_non_null(last);
    assert_true(*last);
  }
  r->last = copy_in(r, last);
  ct_on_status(r, status);
}

/* read_changes' answer; a `last` on success; nothing on failure. */
void ct_on_changes(void *arg, int status, const tc_change_t *changes, size_t n, const char *last) {
  ct_result_t *r = arg;
  for (size_t i = 0; i < n; i++) {
    assert_true(changes[i].op != TC_CHANGE_SCHEMA);
    push_change(r, &changes[i], NULL);
  }
  changes_end(r, status, n, last);
}

/* read_feed's (v2.2), the same with schema writes. */
void ct_on_feed(void *arg, int status, const tc_feed_item_t *items, size_t n, const char *last) {
  ct_result_t *r = arg;
  for (size_t i = 0; i < n; i++) push_change(r, &items[i].change, items[i].schema_version);
  changes_end(r, status, n, last);
}

/* ---- building inputs ----------------------------------------------------- */

char *ct_tenant_name(const char *what) {
  char *s = malloc(strlen(what) + sizeof ct_run_id + 2);
  assert_non_null(s);
  sprintf(s, "%s-%s", ct_run_id, what);
  return s;
}

/* "type:id#rel@stype:sid[#srel]" parsed in place into t (for test inputs). */
tc_tuple_t ct_tuple(char *buf, const char *spec) {
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

void ct_batch_init(ct_batch_t *b, const char *tenant) {
  memset(b, 0, sizeof *b);
  b->w.tenant_id = tenant;
  b->w.tuples = b->tuples;
  b->w.attrs = b->attrs;
}

void ct_add_tuple(ct_batch_t *b, const char *spec) {
  assert_true(b->w.n_tuples < 16);
  b->tuples[b->w.n_tuples] = ct_tuple(b->bufs[b->w.n_tuples], spec);
  b->w.n_tuples++;
}

void ct_batch_viewer(ct_batch_t *b, const char *tenant, unsigned long doc) {
  char spec[64];
  snprintf(spec, sizeof spec, "doc:%lu#viewer@user:a", doc);
  ct_batch_init(b, tenant);
  ct_add_tuple(b, spec);
}

/* value is stored as its bytes; a real caller packs a protobuf Any. */
void ct_add_attr_bytes(ct_batch_t *b, const char *type, const char *id, const char *attr,
                       const void *value, size_t len) {
  assert_true(b->w.n_attrs < 16);
  b->attrs[b->w.n_attrs++] = (tc_attr_t){type, id, attr, value, len};
}

void ct_add_attr(ct_batch_t *b, const char *type, const char *id, const char *attr,
                 const char *value) {
  ct_add_attr_bytes(b, type, id, attr, value, strlen(value));
}

/* ---- calls ----------------------------------------------------------------- */

/* A call's token, which must have succeeded, kept until the end of the case. */
static const char *kept_token(ct_fixture_t *f, ct_result_t *r) {
  assert_int_equal(r->status, 0);
  const char *token = ct_keep(f, r->token);
  ct_result_free(r);
  return token;
}

/* The write's token (kept until the end of the case). */
const char *ct_write_ok(ct_fixture_t *f, const tc_write_batch_t *w) {
  ct_result_t r = {0};
  CT_CALL(f, &r, f->api->write(f->b, w, ct_on_token, &r));
  return kept_token(f, &r);
}

const char *ct_write_tuples(ct_fixture_t *f, const char *tenant, ...) {
  ct_batch_t b;
  ct_batch_init(&b, tenant);
  va_list ap;
  va_start(ap, tenant);
  for (const char *s; (s = va_arg(ap, const char *));) ct_add_tuple(&b, s);
  va_end(ap);
  return ct_write_ok(f, &b.w);
}

void ct_read_tuples(ct_fixture_t *f, ct_result_t *r, const char *tenant, const char *token,
                    const tc_tuple_filter_t *flt, tc_cursor_t after, uint32_t limit) {
  CT_CALL(f, r, f->api->read_tuples(f->b, tenant, token, flt, after, limit, ct_on_tuples, r));
  assert_int_equal(r->status, 0);
}

void ct_read_attrs(ct_fixture_t *f, ct_result_t *r, const char *tenant, const char *token,
                   const tc_attr_filter_t *flt) {
  CT_CALL(f, r, f->api->read_attrs(f->b, tenant, token, flt, 0, 0, ct_on_attrs, r));
  assert_int_equal(r->status, 0);
}

/* upto: NULL for none. */
void ct_read_changes(ct_fixture_t *f, ct_result_t *r, const char *tenant, const char *after,
                     const char *upto, uint32_t limit) {
  CT_CALL(f, r, f->api->read_changes(f->b, tenant, after, upto, limit, ct_on_changes, r));
  assert_int_equal(r->status, 0);
}

/* Nothing comes after token yet (the feed stays at token); then a write of
 * tuple reads back after it as its one change. */
void ct_expect_feed_resumes(ct_fixture_t *f, const char *tenant, const char *token,
                            const char *tuple) {
  ct_result_t r = {0};
  ct_read_changes(f, &r, tenant, token, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, token);
  ct_write_tuples(f, tenant, tuple, NULL);
  ct_read_changes(f, &r, tenant, token, NULL, 0);
  char *change = malloc(strlen(tuple) + 2);
  sprintf(change, "+%s", tuple);
  ct_expect(&r.rows, change, NULL);
  free(change);
  ct_result_free(&r);
}

/* The tenant's head token (kept until the end of the case). */
const char *ct_head(ct_fixture_t *f, const char *tenant) {
  ct_result_t r = {0};
  CT_CALL(f, &r, f->api->head(f->b, tenant, ct_on_token, &r));
  return kept_token(f, &r);
}

void ct_schema_write(ct_fixture_t *f, const char *tenant, const char *version, const char *text) {
  ct_result_t r = {0};
  CT_CALL(f, &r, f->api->schema_write(f->b, tenant, version, text, ct_on_status, &r));
  assert_int_equal(r.status, 0);
  ct_result_free(&r);
}

void ct_token_ok(ct_fixture_t *f, tc_backend_t *b, const char *token) {
  char *err = NULL;
  int rc = f->api->token_check(b, token, &err);
  if (rc != 0) fail_msg("token_check(%s): %d %s", token, rc, err ? err : "(no message)");
  free(err);
}

/* token_check refuses token with TC_ESNAP_TOKEN and a one-line reason. */
void ct_token_bad(ct_fixture_t *f, tc_backend_t *b, const char *token) {
  char *err = NULL;
  int rc = f->api->token_check(b, token, &err);
  if (rc != TC_ESNAP_TOKEN) fail_msg("token_check(\"%s\"): %d, want TC_ESNAP_TOKEN", token, rc);
  if (!err || !*err || strchr(err, '\n'))
    fail_msg("token_check(\"%s\"): want a one-line reason, found %s", token, err ? err : "(none)");
  free(err);
}

void ct_expect_changes_at(int line, const ct_result_t *r, const ct_result_t *all, size_t from,
                          int to_end) {
  if (to_end ? r->rows.n != all->rows.n - from : r->rows.n > all->rows.n - from)
    fail_msg("line %d: %zu changes, want %s%zu", line, r->rows.n, to_end ? "" : "at most ",
             all->rows.n - from);
  for (size_t i = 0; i < r->rows.n; i++) {
    if (strcmp(r->rows.v[i], all->rows.v[from + i]) != 0)
      fail_msg("line %d: change %zu is %s, want %s", line, i, r->rows.v[i], all->rows.v[from + i]);
  }
}

void ct_expect_distinct_at(int line, ...) {
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

const tc_tuple_filter_t ct_all_tuples = {0};
const tc_attr_filter_t ct_all_attrs = {0};
