/* Backend conformance cases: ordering, concurrency, lifecycle: many writes, mixed calls, failures,
 * destroy with work in flight, reopen, stats. */
#include "conformance.h"

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

void test_many_writes_in_order(void **state) {
  ct_fixture_t *f = *state;
  char *t = ct_tenant_name("many");
  many_t m = {.in_order = 1};
  many_call_t *calls = calloc(MANY_WRITES, sizeof *calls);
  char(*specs)[64] = calloc(MANY_WRITES, sizeof *specs);
  assert_non_null(calls);
  assert_non_null(specs);
  const char *h0 = ct_head(f, t);
  tc_backend_stats_t before, after;
  f->api->stats(f->b, &before);
  unsigned long commits_before = ct_commits;
  ct_largest_commit = 0;

  for (size_t i = 0; i < MANY_WRITES; i++) {
    ct_batch_t b;
    ct_batch_init(&b, t);
    snprintf(specs[i], sizeof specs[i], "doc:%zu#viewer@user:u%zu", i, i);
    ct_add_tuple(&b, specs[i]);
    calls[i] = (many_call_t){&m, i};
    assert_int_equal(f->api->write(f->b, &b.w, on_many, &calls[i]), 0);
  }
  assert_int_equal(m.completed, 0);
  ct_wait_for(f, &m.done);
  assert_true(m.in_order);

  f->api->stats(f->b, &after);
  assert_true(after.writes - before.writes >= MANY_WRITES);
  ct_result_t r = {0};
  ct_read_tuples(f, &r, t, "", &ct_all_tuples, 0, 0);
  assert_int_equal(r.rows.n, MANY_WRITES);
  /* At the last write's token: at least that write.  Writes submitted
   * together are concurrent; one need not see another that was still in
   * flight (a Postgres snapshot does not). */
  ct_read_tuples(f, &r, t, m.prev, &ct_all_tuples, 0, 0);
  assert_true(ct_strv_find(&r.rows, specs[MANY_WRITES - 1]) < r.rows.n);
  /* One transaction each, every write once (concurrent writes may commit in
   * any order); nothing after the last. */
  ct_read_changes(f, &r, t, h0, NULL, 0);
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
  ct_read_changes(f, &r, t, end, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  free(end);
  ct_read_changes(f, &r, t, m.prev, NULL, 0);
  assert_true(r.rows.n < MANY_WRITES);

  /* Group commit: the sqlite backend reports each transaction it committed. */
  if (strcmp(f->api->name, "sqlite") == 0) {
    unsigned long txns = ct_commits - commits_before;
    fprintf(stderr, "%d writes in %lu transactions, largest %lu\n", MANY_WRITES, txns,
            (unsigned long)ct_largest_commit);
    assert_true(txns > 0 && txns < MANY_WRITES);
    assert_true(ct_largest_commit > 1);
  }
  ct_result_free(&r);
  free(m.prev);
  free(specs);
  free(calls);
  free(t);
}

/* The sqlite backend on a file checkpoints its WAL on a thread of its
 * own, never in the writer's commits: writes one by one until it reports a
 * checkpoint, then reads every write back. */
void test_checkpoint_off_the_writer(void **state) {
  ct_fixture_t *f = *state;
  if (strcmp(f->api->name, "sqlite") != 0 || strcmp(ct_backend_uri, ":memory:") == 0) skip();
  char *t = ct_tenant_name("ckpt");
  unsigned long before = ct_checkpoints;
  ct_result_t w = {0}, r = {0};
  size_t n = 0;
  for (; ct_checkpoints == before && n < 20000; n++) {
    ct_batch_t b;
    ct_batch_init(&b, t);
    char spec[64];
    snprintf(spec, sizeof spec, "doc:%zu#viewer@user:u%zu", n, n);
    ct_add_tuple(&b, spec);
    CT_CALL(f, &w, f->api->write(f->b, &b.w, ct_on_token, &w));
    assert_int_equal(w.status, 0);
  }
  if (ct_checkpoints == before) fail_msg("no checkpoint after %zu writes", n);
  assert_false(pthread_equal(ct_checkpoint_thread, ct_writer_thread));
  ct_read_tuples(f, &r, t, "", &ct_all_tuples, 0, 0);
  assert_int_equal(r.rows.n, n);
  ct_result_free(&w);
  ct_result_free(&r);
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

static void seq_tuples(void *arg, int status, const tc_tuple_t *rows, size_t n, tc_cursor_t next) {
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

void test_mixed_calls_complete_in_order(void **state) {
  ct_fixture_t *f = *state;
  char *t = ct_tenant_name("mixed");
  seq_t s = {0};
  seq_call_t calls[60];
  int k = 0;
  for (int round = 0; round < 20; round++) {
    ct_batch_t b;
    ct_batch_viewer(&b, t, (unsigned long)round);
    calls[k] = (seq_call_t){&s, k};
    assert_int_equal(f->api->read_tuples(f->b, t, "", &ct_all_tuples, 0, 0, seq_tuples, &calls[k]),
                     0);
    k++;
    calls[k] = (seq_call_t){&s, k};
    assert_int_equal(f->api->write(f->b, &b.w, seq_write, &calls[k]), 0);
    k++;
    calls[40 + round] = (seq_call_t){&s, -1};
    assert_int_equal(f->api->head(f->b, t, seq_head, &calls[40 + round]), 0);
  }
  ct_wait_for(f, &s.done);
  assert_false(s.bad);
  assert_int_equal(s.next, k);

  /* Read-your-write at the token the write returned; at the head, all. */
  ct_result_t r = {0};
  ct_read_tuples(f, &r, t, s.write_token, &ct_all_tuples, 0, 0);
  assert_true(ct_strv_find(&r.rows, "doc:19#viewer@user:a") < r.rows.n);
  ct_read_tuples(f, &r, t, "", &ct_all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 20);
  ct_result_free(&r);
  free(s.write_token);
  free(t);
}

/* A failing call among concurrent ones fails alone. */
void test_failure_fails_alone(void **state) {
  ct_fixture_t *f = *state;
  char *t = ct_tenant_name("alone");
  ct_result_t res[6] = {{0}};
  CT_CALL(f, &res[0], f->api->tenant_create(f->b, t, "alone", ct_on_tenant, &res[0]));
  assert_int_equal(res[0].status, 0);
  ct_result_free(&res[0]);

  ct_batch_t a, b;
  ct_batch_init(&a, t);
  ct_add_tuple(&a, "doc:1#viewer@user:a");
  ct_batch_init(&b, t);
  ct_add_tuple(&b, "doc:1#viewer@user:b");
  assert_int_equal(f->api->write(f->b, &a.w, ct_on_token, &res[0]), 0);
  assert_int_equal(f->api->tenant_create(f->b, t, "dup", ct_on_tenant, &res[1]), 0);
  assert_int_equal(
      f->api->schema_write(f->b, t, "cv000000000000000001", "entity a {}", ct_on_status, &res[2]),
      0);
  assert_int_equal(
      f->api->schema_write(f->b, t, "cv000000000000000001", "entity b {}", ct_on_status, &res[3]),
      0);
  assert_int_equal(f->api->write(f->b, &b.w, ct_on_token, &res[4]), 0);
  assert_int_equal(f->api->schema_read(f->b, t, NULL, ct_on_schema, &res[5]), 0);
  ct_wait_for(f, &res[5].done);
  for (int i = 0; i < 5; i++) assert_true(res[i].done);

  assert_int_equal(res[0].status, 0);
  assert_int_equal(res[1].status, TC_EUNIQUE);
  assert_int_equal(res[2].status, 0);
  assert_int_equal(res[3].status, TC_EUNIQUE);
  assert_int_equal(res[4].status, 0);
  ct_expect_distinct(res[0].token, res[4].token);
  assert_int_equal(res[5].status, 0);
  assert_string_equal(res[5].text, "entity a {}");

  ct_result_t r = {0};
  ct_read_tuples(f, &r, t, res[0].token, &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:a", NULL);
  ct_read_tuples(f, &r, t, res[4].token, &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  CT_CALL(f, &r, f->api->tenant_get(f->b, t, ct_on_tenant, &r));
  assert_string_equal(r.tenant.name, "alone");
  ct_result_free(&r);
  for (int i = 0; i < 6; i++) ct_result_free(&res[i]);
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
static int same_database(ct_fixture_t *f, const char *saved_id) {
  if (strcmp(f->api->name, "sqlite") == 0) return strcmp(ct_backend_uri, ":memory:") != 0;
  return strcmp(f->api->instance_id(f->b), saved_id) == 0;
}

void test_destroy_with_work_in_flight(void **state) {
  ct_fixture_t *f = *state;
  char *t = ct_tenant_name("flight");
  flight_t fl = {0};
  char *saved = strdup(f->api->instance_id(f->b));
  const char *h0 = ct_head(f, t);
  for (int i = 0; i < 100; i++) {
    ct_batch_t b;
    ct_batch_viewer(&b, t, (unsigned long)i);
    assert_int_equal(f->api->write(f->b, &b.w, flight_write, &fl), 0);
    assert_int_equal(f->api->read_changes(f->b, t, h0, NULL, 0, flight_changes, &fl), 0);
  }
  f->api->destroy(f->b, flight_destroyed, &fl);
  f->b = NULL;
  assert_false(fl.destroyed);
  assert_int_equal(fl.completed, 0);
  ct_wait_for(f, &fl.destroyed);
  assert_int_equal(fl.completed_at_destroy, 200);

  /* The writes were committed: a new backend on the same database has them,
   * unless the database lived only in memory. */
  f->b = ct_open_backend(f);
  if (same_database(f, saved)) {
    ct_result_t r = {0};
    ct_read_tuples(f, &r, t, "", &ct_all_tuples, 0, 0);
    assert_int_equal(r.rows.n, 100);
    ct_result_free(&r);
  }
  free(saved);
  free(t);
}

void test_reopen_keeps_identity(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  char *t = ct_tenant_name("reopen");
  const char *id = f->api->instance_id(f->b);
  assert_non_null(id);
  assert_true(strlen(id) >= 16);
  char *saved = strdup(id);
  const char *tok = ct_write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  ct_close_backend(f);

  f->b = ct_open_backend(f);
  if (!same_database(f, saved)) {
    /* A memory database is private to its backend and gone with it, and so
     * are its positions. */
    assert_string_not_equal(f->api->instance_id(f->b), saved);
    ct_token_bad(f, f->b, tok);
    ct_read_tuples(f, &r, t, "", &ct_all_tuples, 0, 0);
    assert_int_equal(r.rows.n, 0);
  } else {
    assert_string_equal(f->api->instance_id(f->b), saved);
    ct_token_ok(f, f->b, tok);
    ct_read_tuples(f, &r, t, tok, &ct_all_tuples, 0, 0);
    ct_expect(&r.rows, "doc:1#viewer@user:a", NULL);
    ct_expect_feed_resumes(f, t, tok, "doc:2#viewer@user:a");
  }
  ct_result_free(&r);
  free(saved);
  free(t);
}

void test_stats_count_calls(void **state) {
  ct_fixture_t *f = *state;
  char *t = ct_tenant_name("stats");
  const char *h0 = ct_head(f, t);
  tc_backend_stats_t s0, s1;
  f->api->stats(f->b, &s0);
  ct_write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  ct_result_t r = {0};
  ct_read_tuples(f, &r, t, "", &ct_all_tuples, 0, 0);
  ct_read_attrs(f, &r, t, "", &ct_all_attrs);
  ct_read_changes(f, &r, t, h0, NULL, 0);
  f->api->stats(f->b, &s1);
  assert_int_equal(s1.writes - s0.writes, 1);
  assert_int_equal(s1.reads - s0.reads, 2);
  assert_int_equal(s1.change_reads - s0.change_reads, 1);
  ct_result_free(&r);
  free(t);
}

/* One metrics() sample: per pool (by label), open and in use; counters summed. */
#define CT_POOLS 8
typedef struct sample_s {
  char pool[CT_POOLS][16];
  uint64_t open[CT_POOLS], in_use[CT_POOLS];
  int has_open[CT_POOLS];
  uint64_t reconnects, retries;
} sample_t;

static int pool_slot(sample_t *s, const char *label) {
  for (int i = 0; i < CT_POOLS; i++) {
    if (!s->pool[i][0]) snprintf(s->pool[i], sizeof s->pool[i], "%s", label);
    if (!strcmp(s->pool[i], label)) return i;
  }
  fail_msg("more than %d pools", CT_POOLS);
  return 0;
}

static void on_metric(void *arg, int metric, const char *label, uint64_t value) {
  sample_t *s = arg;
  assert_non_null(label);
  size_t n = strlen(label);
  assert_true(n > 0 && n < 16); /* the server folds longer labels into "other" */
  for (size_t i = 0; i < n; i++) assert_true(label[i] > ' ' && label[i] < 0x7f && label[i] != '"');
  switch (metric) {
  case TC_BACKEND_METRIC_POOL_OPEN: {
    int i = pool_slot(s, label);
    s->open[i] = value;
    s->has_open[i] = 1;
    break;
  }
  case TC_BACKEND_METRIC_POOL_IN_USE: s->in_use[pool_slot(s, label)] = value; break;
  case TC_BACKEND_METRIC_POOL_WAITING: pool_slot(s, label); break;
  case TC_BACKEND_METRIC_RECONNECTS: s->reconnects += value; break;
  case TC_BACKEND_METRIC_RETRIES: s->retries += value; break;
  default: fail_msg("metric %d is not one of enum tc_backend_metric", metric);
  }
}

/* metrics() (v2.2, optional): only known metrics with short printable
 * labels; every pool reports how many of its connections are open (after a
 * write, at least one), never more in use than open; counters do not go
 * back. */
void test_metrics_report(void **state) {
  ct_fixture_t *f = *state;
  if (f->api->struct_size < TC_BACKEND_API_V2_2_SIZE || !f->api->metrics) return; /* optional */
  char *t = ct_tenant_name("metrics");
  sample_t s0 = {0}, s1 = {0};
  f->api->metrics(f->b, on_metric, &s0);
  ct_write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  f->api->metrics(f->b, on_metric, &s1);
  uint64_t open = 0;
  for (int i = 0; i < CT_POOLS && s1.pool[i][0]; i++) {
    assert_true(s1.has_open[i]);
    assert_true(s1.in_use[i] <= s1.open[i]);
    open += s1.open[i];
  }
  assert_true(open >= 1);
  assert_true(s1.reconnects >= s0.reconnects);
  assert_true(s1.retries >= s0.retries);
  free(t);
}
