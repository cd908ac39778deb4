/* The Watch contract (docs/watch.md), end to end against the real binary:
 * every later transaction once, one message each, in commit order, with
 * tokens that resume exactly; head semantics; errors; one backend read per
 * transaction however many watchers; catch-up joining the live feed without
 * gap or duplicate; slow consumers; the ring growing and wrapping; 2,000
 * tenants watched at once; shutdown; and a randomized run with
 * concurrent writers and watchers that disconnect and resume. */
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tuplecast/support.h"
#include "server_proc.h"
#include "token_forge.h"
#include "tt_api.h"

#define WATCH "/base.v1.Watch/Watch"

typedef struct {
  char *dir, *db;
  tc_proc_t proc;
  tc_client_t *client;
} fx_t;

/* Starts a server on a fresh database with extra flags (NULL-terminated). */
static fx_t *fx_new(const char *const *extra) {
  fx_t *f = calloc(1, sizeof *f);
  f->dir = tc_temp_dir();
  f->db = malloc(strlen(f->dir) + 32);
  sprintf(f->db, "%s/tuplecast.db", f->dir);
  /* The same contract on every engine: ctest runs this file once per engine. */
  const char *engine = getenv("TUPLECAST_TEST_ENGINE");
  const char *args[32] = {
      "--grpc-port",    "0",   "--http-port",       "0",
      "--database-uri", f->db, "--database-engine", engine && *engine ? engine : "sqlite"};
  size_t n = 8;
  for (size_t i = 0; extra && extra[i]; i++) args[n++] = extra[i];
  args[n] = NULL;
  assert_int_equal(tc_proc_start(&f->proc, args), 0);
  f->client = tc_client_new(f->proc.target);
  assert_non_null(f->client);
  return f;
}

/* Stops the server (exit 0 required); returns its log if asked. */
static void fx_free(fx_t *f, char **log) {
  tc_client_free(f->client);
  assert_int_equal(tc_proc_stop(&f->proc, log), 0);
  tc_temp_dir_remove(f->dir);
  free(f->db);
  free(f->dir);
  free(f);
}

static uint64_t revision_of(const char *token) {
  size_t len;
  unsigned char *raw = tc_base64_decode(token, &len);
  assert_non_null(raw);
  const char *colon = strrchr((char *)raw, ':');
  assert_non_null(colon);
  uint64_t rev = strtoull(colon + 1, NULL, 10);
  free(raw);
  return rev;
}

static tc_stream_t *watch_open(tc_client_t *c, const char *tenant, const char *token,
                               Base__V1__WatchFilter *filter, uint32_t checkpoint) {
  Base__V1__WatchRequest req = BASE__V1__WATCH_REQUEST__INIT;
  req.tenant_id = (char *)tenant;
  req.snap_token = (char *)token;
  req.filter = filter;
  req.checkpoint_interval_seconds = checkpoint;
  tc_stream_t *s = tc_client_stream_open(c, WATCH, &req.base, NULL, 0);
  assert_non_null(s);
  return s;
}

/* The next message, which must come within the deadline. */
static Base__V1__WatchResponse *next_msg(tc_stream_t *s) { return tt_watch_next(s, TT_TIMEOUT); }

/* Reads the next message and checks it is the transaction with token want. */
static void expect_token(tc_stream_t *s, const char *want) {
  Base__V1__WatchResponse *m = next_msg(s);
  assert_non_null(m->changes);
  if (strcmp(m->changes->snap_token, want) != 0)
    fail_msg("expected transaction %llu, got %llu", (unsigned long long)revision_of(want),
             (unsigned long long)revision_of(m->changes->snap_token));
  assert_true(m->changes->n_data_changes > 0);
  protobuf_c_message_free_unpacked(&m->base, NULL);
}

/* The stream must end with code and a message containing fragment. */
static void expect_end(tc_stream_t *s, int code, const char *fragment) {
  ProtobufCMessage *m = NULL;
  int rc;
  /* Messages queued before the end may still arrive first. */
  while ((rc = tc_stream_next(s, &base__v1__watch_response__descriptor, &m, TT_TIMEOUT)) == 0)
    protobuf_c_message_free_unpacked(m, NULL);
  assert_int_equal(rc, 1);
  const char *details = NULL;
  int got = tc_stream_status(s, &details);
  if (got != code || !details || !strstr(details, fragment))
    fail_msg("expected end %d \"...%s...\", got %d \"%s\"", code, fragment, got,
             details ? details : "");
}

static char *write_member(tc_client_t *c, const char *tenant, int i) {
  char id[32];
  snprintf(id, sizeof id, "u%d", i);
  tt_tuple_buf_t tb;
  Base__V1__Tuple *t = tt_tuple(&tb, "organization", "o1", "member", "user", id, "");
  return tt_write_data(c, tenant, &t, 1, NULL, 0, NULL);
}

static fx_t *fx_with_schema(const char *const *extra) {
  fx_t *f = fx_new(extra);
  tt_write_schema(f->client, "t1", NULL);
  return f;
}

/* ---- the contract -------------------------------------------------------- */

static void test_order_and_resume(void **state) {
  (void)state;
  fx_t *f = fx_with_schema(NULL);
  char *t0 = write_member(f->client, "t1", 0);
  tc_stream_t *s = watch_open(f->client, "t1", t0, NULL, 0);
  char *tok[6];
  for (int i = 1; i <= 5; i++) tok[i] = write_member(f->client, "t1", i);
  for (int i = 1; i <= 5; i++) expect_token(s, tok[i]);
  tc_stream_free(s);

  /* From a token in the middle: exactly the later ones, not that one. */
  s = watch_open(f->client, "t1", tok[2], NULL, 0);
  for (int i = 3; i <= 5; i++) expect_token(s, tok[i]);
  char *t6 = write_member(f->client, "t1", 6);
  expect_token(s, t6);
  tc_stream_free(s);

  /* From a token carried by a watch message. */
  s = watch_open(f->client, "t1", t0, NULL, 0);
  Base__V1__WatchResponse *m = next_msg(s);
  char *from_msg = strdup(m->changes->snap_token);
  protobuf_c_message_free_unpacked(&m->base, NULL);
  tc_stream_free(s);
  s = watch_open(f->client, "t1", from_msg, NULL, 0);
  expect_token(s, tok[2]);
  tc_stream_free(s);

  free(from_msg);
  free(t0);
  free(t6);
  for (int i = 1; i <= 5; i++) free(tok[i]);
  fx_free(f, NULL);
}

static void test_contents(void **state) {
  (void)state;
  fx_t *f = fx_with_schema(NULL);
  tt_attr_buf_t ab;
  Base__V1__Attribute *a = tt_bool_attr(&ab, "repository", "r1", "is_public", 1);
  char *t1 = tt_write_data(f->client, "t1", NULL, 0, &a, 1, NULL);
  tc_any_clear(&ab.any);
  tc_stream_t *s = watch_open(f->client, "t1", t1, NULL, 0);

  /* An attribute overwrite: DELETE of the old value and CREATE of the new
   * one, in one message. */
  a = tt_bool_attr(&ab, "repository", "r1", "is_public", 0);
  char *t2 = tt_write_data(f->client, "t1", NULL, 0, &a, 1, NULL);
  tc_any_clear(&ab.any);
  Base__V1__WatchResponse *m = next_msg(s);
  assert_string_equal(m->changes->snap_token, t2);
  assert_int_equal(m->changes->n_data_changes, 2);
  Base__V1__DataChange *del = m->changes->data_changes[0], *cre = m->changes->data_changes[1];
  assert_int_equal(del->operation, BASE__V1__DATA_CHANGE__OPERATION__OPERATION_DELETE);
  assert_int_equal(cre->operation, BASE__V1__DATA_CHANGE__OPERATION__OPERATION_CREATE);
  assert_int_equal(del->type_case, BASE__V1__DATA_CHANGE__TYPE_ATTRIBUTE);
  Base__V1__BooleanValue *old = (void *)tc_any_unpack(del->attribute->value);
  Base__V1__BooleanValue *new = (void *)tc_any_unpack(cre->attribute->value);
  assert_true(old->data);
  assert_false(new->data);
  protobuf_c_message_free_unpacked(&old->base, NULL);
  protobuf_c_message_free_unpacked(&new->base, NULL);
  protobuf_c_message_free_unpacked(&m->base, NULL);

  /* A write that changes nothing (a tuple that is already there) sends no
   * message: the next message is the following real change. */
  tt_tuple_buf_t tb;
  Base__V1__Tuple *t = tt_tuple(&tb, "repository", "r1", "owner", "user", "alice", "");
  char *t3 = tt_write_data(f->client, "t1", &t, 1, NULL, 0, NULL);
  char *t4 = tt_write_data(f->client, "t1", &t, 1, NULL, 0, NULL);
  m = next_msg(s);
  assert_string_equal(m->changes->snap_token, t3);
  assert_int_equal(m->changes->n_data_changes, 1);
  assert_int_equal(m->changes->data_changes[0]->operation,
                   BASE__V1__DATA_CHANGE__OPERATION__OPERATION_CREATE);
  assert_string_equal(m->changes->data_changes[0]->tuple->subject->id, "alice");
  protobuf_c_message_free_unpacked(&m->base, NULL);

  /* A delete is OPERATION_DELETE of each tuple it removed. */
  char *t5 = tt_delete_type(f->client, "t1", "repository");
  m = next_msg(s);
  assert_string_equal(m->changes->snap_token, t5);
  assert_int_equal(m->changes->n_data_changes, 1);
  assert_int_equal(m->changes->data_changes[0]->operation,
                   BASE__V1__DATA_CHANGE__OPERATION__OPERATION_DELETE);
  protobuf_c_message_free_unpacked(&m->base, NULL);
  tc_stream_free(s);
  free(t1), free(t2), free(t3), free(t4), free(t5);
  fx_free(f, NULL);
}

static void test_head(void **state) {
  (void)state;
  fx_t *f = fx_with_schema(NULL);
  char *before = write_member(f->client, "t1", 1);
  /* Empty token: nothing before, everything after.  The first checkpoint,
   * sent at once, says where the stream started: at the head. */
  tc_stream_t *s = watch_open(f->client, "t1", "", NULL, 3600);
  Base__V1__WatchResponse *m = next_msg(s);
  assert_int_equal(m->changes->n_data_changes, 0);
  assert_string_equal(m->changes->snap_token, before);
  protobuf_c_message_free_unpacked(&m->base, NULL);
  char *after = write_member(f->client, "t1", 2);
  expect_token(s, after);
  tc_stream_free(s);

  /* A tenant that has never been written (a schema write is a transaction
   * too, so the stream opens before it; a stream without
   * include_schema_changes passes over it). */
  tt_create_tenant(f->client, "fresh");
  s = watch_open(f->client, "fresh", "", NULL, 3600);
  m = next_msg(s);
  assert_int_equal(m->changes->n_data_changes, 0);
  assert_int_equal(revision_of(m->changes->snap_token), 0);
  protobuf_c_message_free_unpacked(&m->base, NULL);
  tt_write_schema(f->client, "fresh", NULL);
  char *first = write_member(f->client, "fresh", 1);
  expect_token(s, first);
  tc_stream_free(s);
  free(before), free(after), free(first);
  fx_free(f, NULL);
}

static void test_errors(void **state) {
  (void)state;
  fx_t *f = fx_with_schema(NULL);
  tc_stream_t *s = watch_open(f->client, "t1", "not-a-token", NULL, 0);
  expect_end(s, 3, "snap token not-a-token is malformed");
  tc_stream_free(s);
  s = watch_open(f->client, "t1", "6QIAAAAAAAA=", NULL, 0);
  expect_end(s, 3, "Permify Postgres token");
  tc_stream_free(s);
  s = watch_open(f->client, "nobody", "", NULL, 0);
  expect_end(s, 5, "ERROR_CODE_TENANT_NOT_FOUND");
  tc_stream_free(s);
  s = watch_open(f->client, "bad tenant!", "", NULL, 0);
  expect_end(s, 3, "invalid WatchRequest.TenantId");
  tc_stream_free(s);
  fx_free(f, NULL);

  f = fx_new((const char *[]){"--service-watch-enabled=false", NULL});
  s = watch_open(f->client, "t1", "", NULL, 0);
  expect_end(s, 9, "service.watch.enabled");
  tc_stream_free(s);
  fx_free(f, NULL);
}

static void test_filter_and_checkpoint(void **state) {
  (void)state;
  fx_t *f = fx_with_schema(NULL);
  Base__V1__WatchFilter filter = BASE__V1__WATCH_FILTER__INIT;
  char *rels[] = {"owner"};
  filter.relations = rels;
  filter.n_relations = 1;
  tc_stream_t *s = watch_open(f->client, "t1", "", &filter, 1);
  /* The first checkpoint comes at once: from here on the stream is in place. */
  Base__V1__WatchResponse *m = next_msg(s);
  assert_int_equal(m->changes->n_data_changes, 0);
  protobuf_c_message_free_unpacked(&m->base, NULL);
  char *skipped = write_member(f->client, "t1", 1);
  tt_tuple_buf_t tb[2];
  Base__V1__Tuple *two[] = {
      tt_tuple(&tb[0], "repository", "r1", "owner", "user", "alice", ""),
      tt_tuple(&tb[1], "organization", "o1", "admin", "user", "bob", ""),
  };
  char *mixed = tt_write_data(f->client, "t1", two, 2, NULL, 0, NULL);
  /* The member-only transaction is skipped; from the mixed one only the
   * owner tuple passes.  Checkpoints (empty messages) may come between. */
  while ((m = next_msg(s))->changes->n_data_changes == 0) {
    assert_true(revision_of(m->changes->snap_token) <= revision_of(mixed));
    protobuf_c_message_free_unpacked(&m->base, NULL);
  }
  assert_string_equal(m->changes->snap_token, mixed);
  assert_int_equal(m->changes->n_data_changes, 1);
  assert_string_equal(m->changes->data_changes[0]->tuple->relation, "owner");
  protobuf_c_message_free_unpacked(&m->base, NULL);
  /* With nothing new, a checkpoint arrives carrying the current position. */
  m = next_msg(s);
  assert_int_equal(m->changes->n_data_changes, 0);
  assert_true(revision_of(m->changes->snap_token) >= revision_of(mixed));
  protobuf_c_message_free_unpacked(&m->base, NULL);
  tc_stream_free(s);
  free(skipped), free(mixed);
  fx_free(f, NULL);
}

static void test_shutdown(void **state) {
  (void)state;
  fx_t *f = fx_with_schema(NULL);
  char *t1 = write_member(f->client, "t1", 1);
  tc_stream_t *s = watch_open(f->client, "t1", t1, NULL, 0);
  char *t2 = write_member(f->client, "t1", 2);
  expect_token(s, t2);
  /* Stop the server while the stream is open: UNAVAILABLE with a resume point. */
  tc_client_t *c = f->client;
  f->client = NULL;
  tc_proc_t proc = f->proc;
  memset(&f->proc, 0, sizeof f->proc);
  kill(proc.pid, SIGTERM);
  expect_end(s, 14, "resume with snap token");
  tc_stream_free(s);
  tc_client_free(c);
  assert_int_equal(tc_proc_stop(&proc, NULL), 0);
  tc_temp_dir_remove(f->dir);
  free(f->db), free(f->dir), free(f), free(t1), free(t2);
}

/* ---- history that is no longer retained ------------------------------------ */

/* The example backend keeps only the last N revisions of its change log when
 * asked to (uri "example:retain=N"): a token from before them is OUT_OF_RANGE
 * with a message that says what to do; one inside the window resumes. */
/* A server on the example backend (uri "example:..."), with the schema. */
static tc_client_t *example_start(tc_proc_t *proc, const char *uri) {
  const char *args[] = {"--grpc-port",    "0", "--http-port", "0", "--database-engine", "example",
                        "--database-uri", uri, NULL};
  assert_int_equal(tc_proc_start(proc, args), 0);
  tc_client_t *c = tc_client_new(proc->target);
  tt_write_schema(c, "t1", NULL);
  return c;
}

static void test_out_of_range(void **state) {
  (void)state;
  tc_proc_t proc;
  tc_client_t *c = example_start(&proc, "example:retain=5");
  char *tok[12];
  for (int i = 0; i < 12; i++) tok[i] = write_member(c, "t1", i);
  tc_stream_t *s = watch_open(c, "t1", tok[0], NULL, 0);
  expect_end(s, 11, "is older than the retained change history");
  tc_stream_free(s);
  s = watch_open(c, "t1", tok[8], NULL, 0);
  for (int i = 9; i < 12; i++) expect_token(s, tok[i]);
  tc_stream_free(s);
  for (int i = 0; i < 12; i++) free(tok[i]);
  tc_client_free(c);
  assert_int_equal(tc_proc_stop(&proc, NULL), 0);
}

/* A token past everything the database committed (forged, or another copy
 * of it that went on): INVALID_ARGUMENT saying so, for Watch and for a read
 * at it; never a silent stream, never OUT_OF_RANGE.  On the engine under test
 * and on the example backend. */
static void expect_ahead(tc_client_t *c, const char *mine) {
  char *far = tt_token_ahead(mine);
  assert_non_null(far);
  tt_expect_token_ahead(c, "t1", far);
  free(far);
}

static void test_token_ahead(void **state) {
  (void)state;
  fx_t *f = fx_with_schema(NULL);
  char *w = write_member(f->client, "t1", 1);
  expect_ahead(f->client, w);
  /* The newest token itself is fine: the next write comes after it. */
  tc_stream_t *s = watch_open(f->client, "t1", w, NULL, 0);
  char *w2 = write_member(f->client, "t1", 2);
  expect_token(s, w2);
  tc_stream_free(s);
  free(w);
  free(w2);
  fx_free(f, NULL);

  tc_proc_t proc;
  tc_client_t *c = example_start(&proc, "example:");
  w = write_member(c, "t1", 1);
  expect_ahead(c, w);
  free(w);
  tc_client_free(c);
  assert_int_equal(tc_proc_stop(&proc, NULL), 0);
}

/* ---- fan-out: one backend read per transaction, whatever the watchers ---- */

static unsigned long long change_reads(const char *log) {
  const char *p = strstr(log, "change_reads=");
  assert_non_null(p);
  return strtoull(p + strlen("change_reads="), NULL, 10);
}

/* Writes n transactions one at a time, each received by every watcher
 * before the next, and returns the backend's change reads. */
static unsigned long long reads_for(int watchers, int n) {
  fx_t *f = fx_with_schema(NULL);
  enum { CLIENTS = 4 };
  tc_client_t *clients[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) clients[i] = tc_client_new(f->proc.target);
  tc_stream_t **s = calloc((size_t)watchers, sizeof *s);
  char *start = write_member(f->client, "t1", 0);
  for (int w = 0; w < watchers; w++)
    s[w] = watch_open(clients[w % CLIENTS], "t1", start, NULL, 3600);
  /* Every stream has joined the feed once its first checkpoint is here. */
  for (int w = 0; w < watchers; w++) {
    Base__V1__WatchResponse *m = next_msg(s[w]);
    assert_string_equal(m->changes->snap_token, start);
    protobuf_c_message_free_unpacked(&m->base, NULL);
  }
  for (int i = 1; i <= n; i++) {
    char *tok = write_member(f->client, "t1", i);
    for (int w = 0; w < watchers; w++) expect_token(s[w], tok);
    free(tok);
  }
  for (int w = 0; w < watchers; w++) tc_stream_free(s[w]);
  for (int i = 0; i < CLIENTS; i++) tc_client_free(clients[i]);
  free(s);
  free(start);
  char *log;
  fx_free(f, &log);
  unsigned long long reads = change_reads(log);
  free(log);
  return reads;
}

static void test_one_feed_per_tenant(void **state) {
  (void)state;
  unsigned long long one = reads_for(1, 20), many = reads_for(1000, 20);
  print_message("backend change reads: 1 watcher %llu, 1000 watchers %llu\n", one, many);
  assert_true(one >= 20);
  assert_true(many == one);
}

/* ---- catch-up from history joins the live feed without gap or dup -------- */

typedef struct {
  fx_t *f;
  char **tokens; /* tokens[i]: the i-th transaction's token */
  int from, to;  /* this writer writes transactions [from, to) */
} writer_t;

static void *writer_run(void *arg) {
  writer_t *w = arg;
  tc_client_t *c = tc_client_new(w->f->proc.target);
  for (int i = w->from; i < w->to; i++) w->tokens[i] = write_member(c, "t1", i);
  tc_client_free(c);
  return NULL;
}

static void test_catch_up_seam(void **state) {
  (void)state;
  fx_t *f = fx_with_schema(NULL);
  enum { HISTORY = 1500, LIVE = 400, TOTAL = HISTORY + LIVE };
  char **tokens = calloc(TOTAL, sizeof *tokens);
  writer_t hist = {f, tokens, 0, HISTORY};
  writer_run(&hist);
  /* Watchers start from old tokens (behind any ring) while writes go on. */
  writer_t live = {f, tokens, HISTORY, TOTAL};
  pthread_t th;
  pthread_create(&th, NULL, writer_run, &live);
  static const int starts[] = {0, 100, 700, 1300, HISTORY - 1};
  enum { W = sizeof starts / sizeof starts[0] };
  tc_stream_t *s[W];
  for (int w = 0; w < W; w++) s[w] = watch_open(f->client, "t1", tokens[starts[w]], NULL, 0);
  pthread_join(th, NULL);
  for (int w = 0; w < W; w++) {
    for (int i = starts[w] + 1; i < TOTAL; i++) expect_token(s[w], tokens[i]);
    tc_stream_free(s[w]);
  }
  for (int i = 0; i < TOTAL; i++) free(tokens[i]);
  free(tokens);
  fx_free(f, NULL);
}

/* ---- slow consumers -------------------------------------------------------- */

static void test_slow_consumer(void **state) {
  (void)state;
  fx_t *f = fx_with_schema((const char *[]){"--database-watch-buffer-size", "16", NULL});
  char *start = write_member(f->client, "t1", 0);
  tc_client_t *slow_client = tc_client_new(f->proc.target);
  tc_stream_t *slow = watch_open(slow_client, "t1", start, NULL, 0);
  tc_stream_t *fast = watch_open(f->client, "t1", start, NULL, 0);
  /* Big transactions, so the slow stream's connection window fills. */
  enum { N = 300, PER = 100 };
  char **tokens = calloc(N, sizeof *tokens);
  tt_tuple_buf_t *tb = calloc(PER, sizeof *tb);
  Base__V1__Tuple **ts = calloc(PER, sizeof *ts);
  char(*ids)[128] = calloc(PER, sizeof *ids);
  for (int i = 0; i < N; i++) {
    for (int k = 0; k < PER; k++) {
      snprintf(ids[k], sizeof ids[k], "user-%d-%d-%0100d", i, k, 0);
      ts[k] = tt_tuple(&tb[k], "organization", "o1", "member", "user", ids[k], "");
    }
    tokens[i] = tt_write_data(f->client, "t1", ts, PER, NULL, 0, NULL);
    /* The reading watcher keeps up, unslowed by the other. */
    expect_token(fast, tokens[i]);
  }
  /* The slow one was ended; what it did get is a prefix, in order. */
  ProtobufCMessage *m;
  int got = 0, rc;
  while ((rc = tc_stream_next(slow, &base__v1__watch_response__descriptor, &m, TT_TIMEOUT)) == 0) {
    Base__V1__WatchResponse *w = (void *)m;
    assert_string_equal(w->changes->snap_token, tokens[got]);
    got++;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  assert_int_equal(rc, 1);
  const char *details = NULL;
  assert_int_equal(tc_stream_status(slow, &details), 8);
  assert_non_null(strstr(details, "database.watch_buffer_size"));
  assert_non_null(strstr(details, "resume with snap token "));
  assert_true(got < N);
  tc_stream_free(slow);
  /* Resuming from the last token it received continues exactly. */
  tc_stream_t *again = watch_open(slow_client, "t1", got ? tokens[got - 1] : start, NULL, 0);
  for (int i = got; i < N; i++) expect_token(again, tokens[i]);
  tc_stream_free(again);
  tc_stream_free(fast);
  tc_client_free(slow_client);
  for (int i = 0; i < N; i++) free(tokens[i]);
  free(tokens), free(tb), free(ts), free(ids), free(start);
  fx_free(f, NULL);
}

/* ---- the feed's ring: grown on demand, then dropping its oldest ----------- */

/* watch.c keeps a feed's newest RING_CAP transactions; its ring starts with
 * none and doubles as transactions come.  Two streams start from old tokens
 * in the grown ring and pause there (their client does not read) while the
 * ring fills, wraps and drops the entries they were at; then streams start
 * from the ring's oldest entry, from its middle (both past the wrap) and
 * from a dropped token.  Each gets every later transaction once, in order. */
enum { RING_CAP = 1024, RING_N = RING_CAP + 300 };

/* Every transaction after tok[from], in order. */
static void expect_run(tc_stream_t *s, char **tok, int from) {
  for (int i = from + 1; i <= RING_N; i++) expect_token(s, tok[i]);
  tc_stream_free(s);
}

static void test_ring_growth(void **state) {
  (void)state;
  fx_t *f = fx_with_schema((const char *[]){"--database-watch-buffer-size", "64", NULL});
  char **tok = calloc(RING_N + 1, sizeof *tok);
  tok[0] = write_member(f->client, "t1", 0);
  /* The feed starts at tok[0] with this stream, its ring empty. */
  tc_stream_t *live = watch_open(f->client, "t1", tok[0], NULL, 0);
  tc_client_t *slow_client = tc_client_new_small_window(f->proc.target);
  tc_stream_t *paused = NULL, *mid = NULL;
  for (int i = 1; i <= RING_N; i++) {
    tok[i] = write_member(f->client, "t1", i);
    expect_token(live, tok[i]);
    /* Far behind the feed on a client that does not read yet: each takes
     * ring entries until its window fills, and waits there in catch-up
     * while the ring moves on past it. */
    if (i == 600) paused = watch_open(slow_client, "t1", tok[0], NULL, 0);
    if (i == 900) mid = watch_open(slow_client, "t1", tok[3], NULL, 0);
  }
  tc_stream_free(live);
  /* The ring now holds tok[RING_N - RING_CAP + 1 ..], wrapped around. */
  expect_run(watch_open(f->client, "t1", tok[RING_N - 500], NULL, 0), tok, RING_N - 500);
  expect_run(watch_open(f->client, "t1", tok[RING_N - RING_CAP + 1], NULL, 0), tok,
             RING_N - RING_CAP + 1);
  expect_run(watch_open(f->client, "t1", tok[100], NULL, 0), tok, 100);
  expect_run(mid, tok, 3);
  expect_run(paused, tok, 0);
  tc_client_free(slow_client);
  for (int i = 0; i <= RING_N; i++) free(tok[i]);
  free(tok);
  fx_free(f, NULL);
}

/* ---- many tenants watched at once ------------------------------------------ */

/* Feeds are found by tenant id on every write and every Watch opened, and
 * removed when their last stream goes: 2,000 tenants, each with a watcher,
 * get exactly their own tenant's writes, before and after streams close. */
enum { MT_TENANTS = 2000, MT_EVERY = 397 };

static void mt_id(char *id, size_t n, int i) { snprintf(id, n, "tenant-%d", i); }

static tc_stream_t *mt_open(tc_client_t *c, int i) {
  char id[32];
  mt_id(id, sizeof id, i);
  /* A checkpoint interval: the first checkpoint says the stream has joined. */
  return tt_watch_open_checkpoint(c, id, "", 3600);
}

static void mt_joined(tc_stream_t *s) {
  Base__V1__WatchResponse *m = next_msg(s);
  assert_non_null(m->changes);
  assert_int_equal(m->changes->n_data_changes, 0);
  protobuf_c_message_free_unpacked(&m->base, NULL);
}

/* A new tuple in tenant i (a tuple written again is no change). */
static char *mt_write(tc_client_t *c, int i) {
  static int serial;
  char id[32];
  mt_id(id, sizeof id, i);
  return write_member(c, id, serial++);
}

static void test_many_tenants(void **state) {
  (void)state;
  fx_t *f = fx_new(NULL);
  tc_stream_t **s = calloc(MT_TENANTS, sizeof *s);
  char **first = calloc(MT_TENANTS, sizeof *first), **all = calloc(MT_TENANTS, sizeof *all);
  for (int i = 0; i < MT_TENANTS; i++) {
    char id[32];
    mt_id(id, sizeof id, i);
    tt_create_tenant(f->client, id);
    tt_write_schema(f->client, id, NULL);
  }
  for (int i = 0; i < MT_TENANTS; i++) s[i] = mt_open(f->client, i);
  for (int i = 0; i < MT_TENANTS; i++) mt_joined(s[i]);
  /* A few tenants written, then every tenant: a stream's first message is
   * its own tenant's first write, nobody else's. */
  for (int i = 0; i < MT_TENANTS; i += MT_EVERY) first[i] = mt_write(f->client, i);
  for (int i = 0; i < MT_TENANTS; i++) all[i] = mt_write(f->client, i);
  for (int i = 0; i < MT_TENANTS; i++) {
    if (first[i]) expect_token(s[i], first[i]);
    expect_token(s[i], all[i]);
  }
  /* Half the streams close (their feeds go); the others still get theirs,
   * and a closed tenant's next watcher starts a feed afresh. */
  for (int i = 0; i < MT_TENANTS; i += 2) tc_stream_free(s[i]);
  for (int i = 0; i < MT_TENANTS; i += 2 * MT_EVERY) {
    free(all[i + 1]);
    all[i + 1] = mt_write(f->client, i + 1);
    expect_token(s[i + 1], all[i + 1]);
    s[i] = mt_open(f->client, i);
    mt_joined(s[i]);
    free(first[i]);
    first[i] = mt_write(f->client, i);
    expect_token(s[i], first[i]);
  }
  /* The server stops with 1,000 feeds in a table grown for 2,000: its walk
   * over them (tc_watch_stop) ends every stream with a resume point. */
  kill(f->proc.pid, SIGTERM);
  for (int i = 0; i < MT_TENANTS; i++)
    if (i % 2 || i % (2 * MT_EVERY) == 0) {
      expect_end(s[i], 14, "resume with snap token");
      tc_stream_free(s[i]);
    }
  for (int i = 0; i < MT_TENANTS; i++) free(first[i]), free(all[i]);
  free(first), free(all), free(s);
  fx_free(f, NULL);
}

/* ---- randomized: writers and watchers that disconnect and resume --------- */

enum { R_WRITERS = 3, R_WATCHERS = 4, R_PER_WRITER = 150, R_TOTAL = R_WRITERS * R_PER_WRITER };

typedef struct {
  fx_t *f;
  const char *start;
  unsigned seed;
  char **seen; /* tokens received, across reconnects */
  int n_seen, reconnects;
} rwatcher_t;

static void *rwatcher_run(void *arg) {
  rwatcher_t *w = arg;
  tc_client_t *c = tc_client_new(w->f->proc.target);
  char *from = strdup(w->start);
  while (w->n_seen < R_TOTAL) {
    Base__V1__WatchRequest req = BASE__V1__WATCH_REQUEST__INIT;
    req.tenant_id = "t1";
    req.snap_token = from;
    tc_stream_t *s = tc_client_stream_open(c, WATCH, &req.base, NULL, 0);
    int quota = 1 + (int)(rand_r(&w->seed) % 60);
    ProtobufCMessage *m;
    while (quota-- > 0 && w->n_seen < R_TOTAL &&
           tc_stream_next(s, &base__v1__watch_response__descriptor, &m, TT_TIMEOUT) == 0) {
      Base__V1__WatchResponse *r = (void *)m;
      w->seen[w->n_seen++] = strdup(r->changes->snap_token);
      free(from);
      from = strdup(r->changes->snap_token);
      protobuf_c_message_free_unpacked(m, NULL);
    }
    tc_stream_free(s); /* disconnect, then resume from the last token */
    w->reconnects++;
    if (quota >= 0 && w->n_seen < R_TOTAL) break; /* ended or timed out: fail below */
  }
  free(from);
  tc_client_free(c);
  return NULL;
}

static int by_revision(const void *a, const void *b) {
  uint64_t x = revision_of(*(char *const *)a), y = revision_of(*(char *const *)b);
  return x < y ? -1 : x > y;
}

static void test_randomized(void **state) {
  (void)state;
  fx_t *f = fx_with_schema(NULL);
  char *start = write_member(f->client, "t1", -1);
  char **tokens = calloc(R_TOTAL, sizeof *tokens);
  writer_t writers[R_WRITERS];
  rwatcher_t watchers[R_WATCHERS];
  pthread_t wt[R_WRITERS], rt[R_WATCHERS];
  for (int i = 0; i < R_WATCHERS; i++) {
    watchers[i] =
        (rwatcher_t){f, start, 1000u + (unsigned)i, calloc(R_TOTAL, sizeof(char *)), 0, 0};
    pthread_create(&rt[i], NULL, rwatcher_run, &watchers[i]);
  }
  for (int i = 0; i < R_WRITERS; i++) {
    writers[i] = (writer_t){f, tokens, i * R_PER_WRITER, (i + 1) * R_PER_WRITER};
    pthread_create(&wt[i], NULL, writer_run, &writers[i]);
  }
  for (int i = 0; i < R_WRITERS; i++) pthread_join(wt[i], NULL);
  for (int i = 0; i < R_WATCHERS; i++) pthread_join(rt[i], NULL);
  /* The committed sequence: every write, in revision order. */
  qsort(tokens, R_TOTAL, sizeof *tokens, by_revision);
  for (int i = 0; i < R_WATCHERS; i++) {
    rwatcher_t *w = &watchers[i];
    print_message("watcher %d: %d messages over %d connections\n", i, w->n_seen, w->reconnects);
    assert_int_equal(w->n_seen, R_TOTAL);
    for (int k = 0; k < R_TOTAL; k++) {
      if (strcmp(w->seen[k], tokens[k]) != 0)
        fail_msg("watcher %d message %d: got revision %llu, committed order has %llu", i, k,
                 (unsigned long long)revision_of(w->seen[k]),
                 (unsigned long long)revision_of(tokens[k]));
      free(w->seen[k]);
    }
    free(w->seen);
  }
  for (int k = 0; k < R_TOTAL; k++) free(tokens[k]);
  free(tokens);
  free(start);
  fx_free(f, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_and_resume),
      cmocka_unit_test(test_contents),
      cmocka_unit_test(test_head),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_filter_and_checkpoint),
      cmocka_unit_test(test_shutdown),
      cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_token_ahead),
      cmocka_unit_test(test_one_feed_per_tenant),
      cmocka_unit_test(test_catch_up_seam),
      cmocka_unit_test(test_slow_consumer),
      cmocka_unit_test(test_ring_growth),
      cmocka_unit_test(test_many_tenants),
      cmocka_unit_test(test_randomized),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
