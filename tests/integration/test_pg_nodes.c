/* Several tuplecast nodes on one PostgreSQL: writes through one node reach
 * watchers on another, writers outside tuplecast are found, the randomized
 * watch contract holds across nodes, start-up refuses a database without
 * commit timestamps, history collected by GC is OUT_OF_RANGE, a token ahead
 * of the database is INVALID_ARGUMENT, 1,000 concurrent schema writes
 * all succeed (serialization failures retried), and a write to a tenant not
 * seen for a second costs one statement to learn of it.
 *
 * Transactions are told apart by content (every write's subject id is
 * unique): on Postgres a watch message's token is a snapshot position, not the
 * write's own token. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tuplecast/support.h"
#include "pg_fixture.h"
#include "server_proc.h"
#include "http_client.h"
#include "bench.h"
#include "token_forge.h"
#include "tt_api.h"

static tc_pg_t *pg;
static int db_seq;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A fresh database on the shared cluster. */
static const char *fresh_db(void) {
  char name[32];
  snprintf(name, sizeof name, "nodes_%d", ++db_seq);
  const char *uri = tc_pg_uri_db(pg, name);
  assert_non_null(uri);
  return uri;
}

static void node_start(tc_proc_t *p, const char *uri, const char *const *extra) {
  const char *args[32] = {"--grpc-port",       "0",        "--http-port",    "0",
                          "--database-engine", "postgres", "--database-uri", uri};
  size_t n = 8;
  for (size_t i = 0; extra && extra[i]; i++) args[n++] = extra[i];
  args[n] = NULL;
  assert_int_equal(tc_proc_start(p, args), 0);
}

/* A node on uri with a client and the schema written to t1. */
static tc_client_t *node_with_schema(tc_proc_t *p, const char *uri) {
  node_start(p, uri, NULL);
  tc_client_t *c = tc_client_new(p->target);
  tt_write_schema(c, "t1", NULL);
  return c;
}

static char *write_id(tc_client_t *c, const char *id) {
  tt_tuple_buf_t tb;
  Base__V1__Tuple *t = tt_tuple(&tb, "organization", "o1", "member", "user", id, "");
  return tt_write_data(c, "t1", &t, 1, NULL, 0, NULL);
}

/* The next message's subject id (malloc'd; "" for a checkpoint, a message
 * with no changes) and token (malloc'd, if asked); NULL if the stream ended
 * or nothing came within the deadline. */
static char *next_message(tc_stream_t *s, char **token) {
  ProtobufCMessage *m = NULL;
  if (tc_stream_next(s, &base__v1__watch_response__descriptor, &m, TT_TIMEOUT) != 0) return NULL;
  Base__V1__WatchResponse *w = (void *)m;
  assert_non_null(w->changes);
  size_t n = w->changes->n_data_changes;
  assert_true(n <= 1);
  char *id = strdup(n ? w->changes->data_changes[0]->tuple->subject->id : "");
  if (token) *token = strdup(w->changes->snap_token);
  protobuf_c_message_free_unpacked(m, NULL);
  return id;
}

/* The same for a stream without checkpoints. */
static char *next_id(tc_stream_t *s, char **token) {
  char *id = next_message(s, token);
  if (id && !*id) fail_msg("a message with no changes on a stream without checkpoints");
  return id;
}

static void expect_id(tc_stream_t *s, const char *want) {
  char *got = next_id(s, NULL);
  if (!got) {
    const char *details = NULL;
    fail_msg("expected %s, got no message (status %d %s)", want, tc_stream_status(s, &details),
             details ? details : "");
  }
  if (strcmp(got, want) != 0) fail_msg("expected %s, got %s", want, got);
  free(got);
}

static PGconn *sql_connect(const char *uri) {
  PGconn *c = PQconnectdb(uri);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  return c;
}

static void sql(PGconn *c, const char *q) {
  PGresult *r = PQexec(c, q);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", q, PQerrorMessage(c));
  PQclear(r);
}

/* Begins a Permify-style write of one tuple: a transactions row, then the
 * tuple created by the same transaction; the caller commits. */
static void sql_begin_write(PGconn *c, const char *id) {
  char q[512];
  sql(c, "BEGIN ISOLATION LEVEL SERIALIZABLE");
  sql(c, "INSERT INTO transactions (tenant_id) VALUES ('t1')");
  snprintf(q, sizeof q,
           "INSERT INTO relation_tuples (entity_type, entity_id, relation, subject_type, "
           "subject_id, subject_relation, tenant_id) VALUES ('organization', 'o1', 'member', "
           "'user', '%s', '', 't1')",
           id);
  sql(c, q);
}

/* ---- a write through A reaches a watcher on B ------------------------------ */

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Two nodes on a fresh database (its URI returned), with a client of each. */
static const char *two_nodes(tc_proc_t *a, tc_proc_t *b, tc_client_t **ca, tc_client_t **cb) {
  const char *uri = fresh_db();
  node_start(a, uri, NULL);
  node_start(b, uri, NULL);
  *ca = tc_client_new(a->target);
  *cb = tc_client_new(b->target);
  return uri;
}

/* The last lines of a node's log on stderr: what a failure needs to be read
 * (the log is pulled in first; nothing matches the needle). */
static void dump_log(tc_proc_t *p, const char *name) {
  tc_proc_wait_log(p, p->log_len, "\x01", 200);
  size_t tail = p->log_len > 16384 ? p->log_len - 16384 : 0;
  fprintf(stderr, "----- node %s, the end of its log -----\n%.*s\n", name, (int)(p->log_len - tail),
          p->log + tail);
}

/* What the database holds of subject id's write: whether its tuple is
 * stored and its transaction visible now (a lost write, or a late one). */
static void stored_state(const char *uri, const char *id, char *out, size_t size) {
  PGconn *c = sql_connect(uri);
  PGresult *r = tc_pg_exec1(c,
                            "SELECT created_tx_id::text, pg_visible_in_snapshot(created_tx_id,"
                            " pg_current_snapshot()) FROM relation_tuples WHERE tenant_id = 't1'"
                            " AND subject_id = $1",
                            id);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    snprintf(out, size, "not known: %s", PQerrorMessage(c));
  else if (PQntuples(r) == 0)
    snprintf(out, size, "NOT stored, though acknowledged");
  else
    snprintf(out, size, "stored by transaction %s, %s now", PQgetvalue(r, 0, 0),
             strcmp(PQgetvalue(r, 0, 1), "t") ? "NOT visible" : "visible");
  PQclear(r);
  PQfinish(c);
}

/* expect_id; when it fails, both nodes' logs on stderr and a verdict: what
 * the database holds of the write, and whether the watcher still gets it
 * (late, by how much) within a further 50 s or not at all. */
static void expect_id_on(tc_stream_t *s, const char *want, tc_proc_t *a, tc_proc_t *b,
                         const char *uri) {
  int64_t t0 = now_us();
  char *got = next_id(s, NULL);
  if (got && !strcmp(got, want)) {
    free(got);
    return;
  }
  char db[160], late[96] = "";
  stored_state(uri, want, db, sizeof db);
  if (!got) { /* late, or never: wait up to 50 s more */
    for (int i = 0; !got && i < 5 && tc_stream_status(s, NULL) == -1; i++) got = next_id(s, NULL);
    snprintf(late, sizeof late, "; then %s %.1f s after the write", got ? got : "nothing",
             (double)(now_us() - t0) / 1e6);
  }
  dump_log(a, "A");
  dump_log(b, "B");
  const char *details = NULL;
  fail_msg("expected %s, got %s (stream status %d %s); the database: %s%s", want,
           *late || !got ? "no message within the deadline" : got, tc_stream_status(s, &details),
           details ? details : "", db, late);
}

static void test_cross_node(void **state) {
  (void)state;
  tc_proc_t a, b;
  tc_client_t *ca, *cb;
  const char *uri = two_nodes(&a, &b, &ca, &cb);
  tt_write_schema(ca, "t1", NULL);
  char *t0 = write_id(ca, "start");
  /* A's Permify-format write token starts a watch on B. */
  tc_stream_t *s = tt_watch_open(cb, "t1", t0);
  enum { N = 50 };
  int64_t lat[N];
  for (int i = 0; i < N; i++) {
    char id[16];
    snprintf(id, sizeof id, "x%d", i);
    free(write_id(ca, id));
    int64_t acked = now_us();
    expect_id_on(s, id, &a, &b, uri);
    lat[i] = now_us() - acked;
  }
  qsort(lat, N, sizeof lat[0], cmp_i64);
  print_message("A ack -> B watcher: p50 %.2f ms, max %.2f ms over %d writes\n",
                (double)lat[N / 2] / 1000, (double)lat[N - 1] / 1000, N);
  tc_stream_free(s);
  tc_client_free(ca), tc_client_free(cb), free(t0);
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
  /* B's feed read every write once, and reports its lag behind the commits. */
  char *log = NULL;
  assert_int_equal(tc_proc_stop(&b, &log), 0);
  const char *lag = strstr(log, "change feed: ");
  assert_non_null(lag);
  print_message("node B: %.*s\n", (int)strcspn(lag, "\n"), lag);
  free(log);
}

/* ---- writers outside tuplecast, committing out of xid order --------------- */

static void test_external_writers(void **state) {
  (void)state;
  const char *uri = fresh_db();
  tc_proc_t a;
  tc_client_t *c = node_with_schema(&a, uri);
  char *t0 = write_id(c, "start");
  tc_stream_t *s = tt_watch_open(c, "t1", t0);
  PGconn *p1 = sql_connect(uri), *p2 = sql_connect(uri), *p3 = sql_connect(uri);
  /* xids a < b < c; c commits first, then a, then b: Permify's timestamp
   * cursor loses c (docs/backend-postgres.md, Permify's watch, weakness 1);
   * the snapshot cursor cannot. */
  sql_begin_write(p1, "ext-a");
  sql_begin_write(p2, "ext-b");
  sql_begin_write(p3, "ext-c");
  sql(p3, "COMMIT");
  expect_id(s, "ext-c");
  sql(p1, "COMMIT");
  expect_id(s, "ext-a");
  sql(p2, "COMMIT");
  expect_id(s, "ext-b");
  /* A transaction held open on another tenant (xmin pinned) delays nothing. */
  sql(p1, "BEGIN");
  sql(p1, "INSERT INTO transactions (tenant_id) VALUES ('other')");
  free(write_id(c, "while-pinned"));
  expect_id(s, "while-pinned");
  sql(p1, "ROLLBACK");
  PQfinish(p1), PQfinish(p2), PQfinish(p3);
  tc_stream_free(s);
  tc_client_free(c), free(t0);
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
}

/* ---- the safety poll skips this node's own writes --------------------------- */

/* tuplecast_watch_feed_reads_total{kind="feed"} on the node's /metrics. */
static long feed_reads(const tc_proc_t *p) {
  static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  int fd = tt_http_connect(p->http_port);
  tt_send_all(fd, get, sizeof get - 1);
  char *buf = NULL, chunk[65536];
  size_t len = 0;
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0) {
    buf = realloc(buf, len + (size_t)n + 1);
    assert_non_null(buf);
    memcpy(buf + len, chunk, (size_t)n);
    len += (size_t)n;
    buf[len] = '\0';
  }
  close(fd);
  static const char key[] = "tuplecast_watch_feed_reads_total{kind=\"feed\"} ";
  const char *at = buf ? strstr(buf, key) : NULL;
  assert_non_null(at);
  long v = strtol(at + sizeof key - 1, NULL, 10);
  free(buf);
  return v;
}

static char *write_to(tc_client_t *c, const char *tenant, const char *id) {
  tt_tuple_buf_t tb;
  Base__V1__Tuple *t = tt_tuple(&tb, "organization", "o1", "member", "user", id, "");
  return tt_write_data(c, tenant, &t, 1, NULL, 0, NULL);
}

/* A write through a node wakes its tenant's feed in-process; the safety poll
 * also finds its transaction and must not wake the feed again for it, while
 * it still finds writers that send no NOTIFY.  Each round: a write through
 * the node on t1, then a Permify-style SQL write on t2 that only the poll
 * finds, so t2's message proves a poll ran after t1's commit.  Each round
 * costs two feed reads (t1's, t2's); when the poll woke this node's own
 * tenants too it cost three (t1 read again, finding nothing). */
static void test_poll_skips_own_writes(void **state) {
  (void)state;
  const char *uri = fresh_db();
  tc_proc_t a;
  tc_client_t *c = node_with_schema(&a, uri);
  tt_create_tenant(c, "t2");
  tt_write_schema(c, "t2", NULL);
  char *k1 = write_to(c, "t1", "start"), *k2 = write_to(c, "t2", "start");
  tc_stream_t *s1 = tt_watch_open(c, "t1", k1), *s2 = tt_watch_open(c, "t2", k2);
  PGconn *pc = sql_connect(uri);
  enum { N = 20 };
  long base = 0;
  for (int i = -1; i < N; i++) { /* round -1 warms up: catch-up from the tokens */
    char id[16], q[512];
    snprintf(id, sizeof id, "w%d", i + 1);
    free(write_to(c, "t1", id));
    expect_id(s1, id);
    snprintf(id, sizeof id, "m%d", i + 1);
    snprintf(q, sizeof q,
             "BEGIN ISOLATION LEVEL SERIALIZABLE; INSERT INTO transactions (tenant_id) VALUES"
             " ('t2'); INSERT INTO relation_tuples (entity_type, entity_id, relation,"
             " subject_type, subject_id, subject_relation, tenant_id) VALUES ('organization',"
             " 'o1', 'member', 'user', '%s', '', 't2'); COMMIT",
             id);
    sql(pc, q);
    expect_id(s2, id);
    if (i < 0) base = feed_reads(&a);
  }
  long reads = feed_reads(&a) - base;
  print_message("%d rounds of a write through the node and one outside it: %ld feed reads\n", N,
                reads);
  assert_true(reads >= 2 * N);
  assert_true(reads <= 2 * N + N / 4);
  PQfinish(pc);
  tc_stream_free(s1), tc_stream_free(s2);
  tc_client_free(c), free(k1), free(k2);
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
}

/* ---- randomized, across two nodes ------------------------------------------ */

enum { R_WRITERS = 4, R_WATCHERS = 4, R_PER_WRITER = 60, R_TOTAL = R_WRITERS * R_PER_WRITER };

typedef struct {
  const char *target;
  int w;
} rwriter_t;

static void *rwriter_run(void *arg) {
  rwriter_t *w = arg;
  tc_client_t *c = tc_client_new(w->target);
  for (int i = 0; i < R_PER_WRITER; i++) {
    char id[16];
    snprintf(id, sizeof id, "w%d-%d", w->w, i);
    free(write_id(c, id));
  }
  tc_client_free(c);
  return NULL;
}

typedef struct {
  const char *targets[2];
  const char *start;
  unsigned seed;
  char **seen;
  int n_seen, reconnects, failed;
} rwatcher_t;

/* Reads a few messages from one node, disconnects, resumes from the last
 * token on a node picked at random, until it has every write. */
static void *rwatcher_run(void *arg) {
  rwatcher_t *w = arg;
  tc_client_t *c[2] = {tc_client_new(w->targets[0]), tc_client_new(w->targets[1])};
  char *from = strdup(w->start);
  while (w->n_seen < R_TOTAL && !w->failed) {
    tc_stream_t *s = tt_watch_open(c[rand_r(&w->seed) % 2], "t1", from);
    int quota = 1 + (int)(rand_r(&w->seed) % 40);
    while (quota-- > 0 && w->n_seen < R_TOTAL) {
      char *tok = NULL, *id = next_id(s, &tok);
      if (!id) {
        w->failed = 1;
        break;
      }
      w->seen[w->n_seen++] = id;
      free(from);
      from = tok;
    }
    tc_stream_free(s);
    w->reconnects++;
  }
  free(from);
  tc_client_free(c[0]), tc_client_free(c[1]);
  return NULL;
}

static void test_randomized_two_nodes(void **state) {
  (void)state;
  const char *uri = fresh_db();
  tc_proc_t node[2];
  node_start(&node[0], uri, NULL);
  node_start(&node[1], uri, NULL);
  tc_client_t *c = tc_client_new(node[0].target);
  tt_write_schema(c, "t1", NULL);
  char *start = write_id(c, "start");
  rwriter_t writers[R_WRITERS];
  rwatcher_t watchers[R_WATCHERS];
  pthread_t wt[R_WRITERS], rt[R_WATCHERS];
  for (int i = 0; i < R_WATCHERS; i++) {
    watchers[i] = (rwatcher_t){{node[0].target, node[1].target},
                               start,
                               2000u + (unsigned)i,
                               calloc(R_TOTAL, sizeof(char *)),
                               0,
                               0,
                               0};
    pthread_create(&rt[i], NULL, rwatcher_run, &watchers[i]);
  }
  for (int i = 0; i < R_WRITERS; i++) {
    writers[i] = (rwriter_t){node[i % 2].target, i};
    pthread_create(&wt[i], NULL, rwriter_run, &writers[i]);
  }
  for (int i = 0; i < R_WRITERS; i++) pthread_join(wt[i], NULL);
  for (int i = 0; i < R_WATCHERS; i++) pthread_join(rt[i], NULL);
  /* Every write exactly once, and each writer's writes (each began after the
   * previous one was acknowledged, so could see it) in its order. */
  for (int i = 0; i < R_WATCHERS; i++) {
    rwatcher_t *w = &watchers[i];
    print_message("watcher %d: %d messages over %d connections\n", i, w->n_seen, w->reconnects);
    assert_false(w->failed);
    assert_int_equal(w->n_seen, R_TOTAL);
    int next[R_WRITERS] = {0};
    for (int k = 0; k < R_TOTAL; k++) {
      int wr, idx;
      if (sscanf(w->seen[k], "w%d-%d", &wr, &idx) != 2 || wr < 0 || wr >= R_WRITERS)
        fail_msg("watcher %d message %d: unexpected %s", i, k, w->seen[k]);
      if (idx != next[wr])
        fail_msg("watcher %d message %d: %s, expected w%d-%d", i, k, w->seen[k], wr, next[wr]);
      next[wr]++;
      free(w->seen[k]);
    }
    free(w->seen);
  }
  free(start);
  tc_client_free(c);
  assert_int_equal(tc_proc_stop(&node[0], NULL), 0);
  assert_int_equal(tc_proc_stop(&node[1], NULL), 0);
}

/* ---- tenants and schemas changed through another node -------------------------- */

/* Writes t through c until the call answers code (deadline 10 s); the
 * node may go on trusting what it read of the tenant for a moment. */
static void expect_write_code(tc_client_t *c, const char *tenant, Base__V1__Tuple *t, int code) {
  int got = -1;
  for (int64_t deadline = now_us() + 10000000; got != code && now_us() < deadline;) {
    tt_result_t r = tt_write_one(c, tenant, t);
    got = r.code;
    tt_result_free(&r);
  }
  assert_int_equal(got, code);
}

static void test_tenant_changes_across_nodes(void **state) {
  (void)state;
  tc_proc_t a, b;
  tc_client_t *ca, *cb;
  two_nodes(&a, &b, &ca, &cb);
  tt_create_tenant(ca, "acme");
  tt_write_schema_text(ca, "acme", "entity user {}\nentity doc {\n  relation owner @user\n}", NULL);
  tt_tuple_buf_t t1, t2;
  Base__V1__Tuple *owner = tt_tuple(&t1, "doc", "1", "owner", "user", "a", "");
  Base__V1__Tuple *viewer = tt_tuple(&t2, "doc", "1", "viewer", "user", "b", "");
  expect_write_code(cb, "acme", owner, 0);
  tt_result_t r = tt_write_one(cb, "acme", viewer); /* B knows no viewer yet */
  assert_int_not_equal(r.code, 0);
  tt_result_free(&r);
  /* A new head schema written through A is used by B's writes. */
  tt_write_schema_text(ca, "acme",
                       "entity user {}\nentity doc {\n  relation owner @user\n"
                       "  relation viewer @user\n}",
                       NULL);
  expect_write_code(cb, "acme", viewer, 0);
  /* A tenant deleted through A is gone for B too. */
  Base__V1__TenantDeleteRequest del = BASE__V1__TENANT_DELETE_REQUEST__INIT;
  del.id = "acme";
  r = tt_call(ca, "/base.v1.Tenancy/Delete", &del.base,
              &base__v1__tenant_delete_response__descriptor);
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
  expect_write_code(cb, "acme", owner, 5);
  tc_client_free(ca), tc_client_free(cb);
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
  assert_int_equal(tc_proc_stop(&b, NULL), 0);
}

/* ---- statements per write ---------------------------------------------------- */

/* The statements a node ran in this database to learn whether a tenant
 * exists and what its head schema is (tenant_get, a head schema_read, or
 * tenant_state), from pg_stat_statements: calls, and rows returned. */
static void tenant_reads(PGconn *sql, long long *calls, long long *rows) {
  PGresult *r = PQexec(sql,
                       "SELECT coalesce(sum(calls), 0), coalesce(sum(rows), 0)"
                       " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
                       "   WHERE datname = current_database())"
                       " AND (query LIKE 'SELECT id, name, %FROM tenants WHERE id = $1'"
                       "   OR query LIKE 'SELECT version, convert_from(%max(version)%'"
                       "   OR query LIKE 'SELECT h.version, %FROM tenants t%')");
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  *calls = atoll(PQgetvalue(r, 0, 0));
  *rows = atoll(PQgetvalue(r, 0, 1));
  PQclear(r);
}

/* A write to a tenant the node knows nothing of, or knew of more than a
 * second ago, costs one statement to learn of it (tenant_state), not two
 * (tenant_get, then the head schema): at 10,000 tenants and 1,000 writes/s
 * that was two more statements on each write (bench/README.md, "At
 * scale").  Node B never saw the K tenants A made: its first write to each
 * reads it once.  Then B writes to one of them until what it knew is a
 * second old and read again: one statement, one row (the head's version
 * without its text, which B holds compiled; the schema is two rows).  A
 * Watch, which needs no schema, opened on one more tenant B never saw reads
 * its row only: one statement, one row. */
static void test_tenant_reads_per_write(void **state) {
  (void)state;
  enum { K = 20 };
  tc_proc_t a, b;
  tc_client_t *ca, *cb;
  PGconn *sql = sql_connect(two_nodes(&a, &b, &ca, &cb));
  PQclear(PQexec(sql, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"));
  char ids[K + 1][16];
  for (int i = 0; i <= K; i++) {
    snprintf(ids[i], sizeof ids[i], "reads-%d", i);
    tt_create_tenant(ca, ids[i]);
    tt_write_schema_text(ca, ids[i], "entity user {}\nentity doc {\n  relation owner @user\n}",
                         NULL);
  }
  tt_tuple_buf_t tb;
  Base__V1__Tuple *owner = tt_tuple(&tb, "doc", "1", "owner", "user", "a", "");
  long long calls0, rows0, calls, rows;
  tenant_reads(sql, &calls0, &rows0);
  for (int i = 0; i < K; i++) expect_write_code(cb, ids[i], owner, 0);
  tenant_reads(sql, &calls, &rows);
  print_message("      first writes: %lld tenant reads for %d writes\n", calls - calls0, K);
  assert_int_equal(calls - calls0, K);

  tenant_reads(sql, &calls0, &rows0);
  calls = calls0;
  for (int64_t deadline = now_us() + 10000000; calls == calls0 && now_us() < deadline;) {
    expect_write_code(cb, ids[0], owner, 0);
    tenant_reads(sql, &calls, &rows);
  }
  print_message("      stale tenant: %lld statements, %lld rows\n", calls - calls0, rows - rows0);
  assert_int_equal(calls - calls0, 1);
  assert_int_equal(rows - rows0, 1);

  char *t0 = tt_write_data(ca, ids[K], &owner, 1, NULL, 0, NULL);
  Base__V1__Tuple *viewer = tt_tuple(&tb, "doc", "1", "owner", "user", "w", "");
  free(tt_write_data(ca, ids[K], &viewer, 1, NULL, 0, NULL));
  tenant_reads(sql, &calls0, &rows0);
  tc_stream_t *s = tt_watch_open(cb, ids[K], t0);
  expect_id(s, "w");
  tenant_reads(sql, &calls, &rows);
  print_message("      watch: %lld statements, %lld rows\n", calls - calls0, rows - rows0);
  assert_int_equal(calls - calls0, 1);
  assert_int_equal(rows - rows0, 1);
  tc_stream_free(s);
  free(t0);
  PQfinish(sql);
  tc_client_free(ca), tc_client_free(cb);
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
  assert_int_equal(tc_proc_stop(&b, NULL), 0);
}

/* ---- start-up checks ----------------------------------------------------------- */

static void test_refuses_without_commit_timestamps(void **state) {
  (void)state;
  tc_pg_opts_t opts = {.track_commit_timestamp = 0};
  tc_pg_t *off;
  assert_int_equal(tc_pg_start(&opts, &off), 0);
  const char *args[] = {
      "serve",          "--grpc-port",  "0", "--http-port", "0", "--database-engine", "postgres",
      "--database-uri", tc_pg_uri(off), NULL};
  char *out = NULL;
  int status = tc_proc_run(args, &out);
  tc_pg_stop(off);
  assert_int_equal(status, 2);
  assert_non_null(strstr(out, "track_commit_timestamp"));
  assert_non_null(strstr(out, "ALTER SYSTEM SET track_commit_timestamp = on"));
  assert_non_null(strstr(out, "restart"));
  free(out);
}

/* With auto-migration off, an unmigrated database is refused with the
 * command that fixes it; `tuplecast migrate up` does, once. */
static void test_migrate_cli(void **state) {
  (void)state;
  const char *uri = fresh_db();
  const char *serve[] = {"serve",    "--grpc-port",
                         "0",        "--http-port",
                         "0",        "--database-engine",
                         "postgres", "--database-uri",
                         uri,        "--database-auto-migrate=false",
                         NULL};
  char *out = NULL;
  assert_int_equal(tc_proc_run(serve, &out), 2);
  assert_non_null(strstr(out, "tuplecast migrate up"));
  free(out);
  const char *up[] = {"migrate", "up", "--database-engine", "postgres", "--database-uri",
                      uri,       NULL};
  assert_int_equal(tc_proc_run(up, &out), 0);
  free(out);
  assert_int_equal(tc_proc_run(up, &out), 0); /* nothing left to do */
  free(out);
  tc_proc_t a;
  node_start(&a, uri, (const char *[]){"--database-auto-migrate=false", NULL});
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
}

/* ---- retention: a watch from before the GC window is OUT_OF_RANGE ------------ */

static uint64_t xid_of(const char *permify_token) {
  size_t len;
  unsigned char *raw = tc_base64_decode(permify_token, &len);
  assert_non_null(raw);
  uint64_t x = strtoull((char *)raw, NULL, 10);
  free(raw);
  return x;
}

static void test_gc_out_of_range(void **state) {
  (void)state;
  const char *uri = fresh_db();
  tc_proc_t a;
  const char *gc[] = {"--database-garbage-collection-enabled",
                      "--database-garbage-collection-interval",
                      "1s",
                      "--database-garbage-collection-window",
                      "1s",
                      "--database-garbage-collection-timeout",
                      "5s",
                      NULL};
  node_start(&a, uri, gc);
  tc_client_t *c = tc_client_new(a.target);
  tt_write_schema(c, "t1", NULL);
  char *old = write_id(c, "old");
  /* Collect until the horizon has passed the old write (deadline 30 s);
   * each round writes again, so there is something newer to keep. */
  PGconn *p = sql_connect(uri);
  char q[160];
  snprintf(q, sizeof q,
           "SELECT count(*) FROM tuplecast_gc WHERE tenant_id = 't1' AND horizon > '%" PRIu64 "'",
           xid_of(old));
  int passed = 0;
  for (int64_t deadline = now_us() + 30000000; !passed && now_us() < deadline;) {
    free(write_id(c, "newer"));
    PGresult *r = PQexec(p, q);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    passed = atoi(PQgetvalue(r, 0, 0)) > 0;
    PQclear(r);
    if (!passed) {
      /* Wait on the server, not by sleeping here: pg_sleep bounds the round. */
      PQclear(PQexec(p, "SELECT pg_sleep(0.2)"));
    }
  }
  PQfinish(p);
  assert_true(passed);
  tc_stream_t *s = tt_watch_open(c, "t1", old);
  assert_null(next_id(s, NULL));
  const char *details = NULL;
  assert_int_equal(tc_stream_status(s, &details), 11);
  assert_non_null(strstr(details, "older than the retained change history"));
  tc_stream_free(s);
  tc_client_free(c), free(old);
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
}

/* Tokens ahead of the database: a forged write ack (Permify's format) and a
 * forged watch position (tc2) are INVALID_ARGUMENT "ahead of this
 * database" for Watch and reads, not OUT_OF_RANGE and not a silent stream. */
static void test_token_ahead(void **state) {
  (void)state;
  tc_proc_t a;
  tc_client_t *c = node_with_schema(&a, fresh_db());
  char *w = write_id(c, "w1"), *pos = NULL;
  tc_stream_t *s = tt_watch_open(c, "t1", w);
  free(write_id(c, "w2"));
  char *id = next_id(s, &pos);
  assert_non_null(id);
  tc_stream_free(s);
  const char *mine[] = {w, pos};
  for (int i = 0; i < 2; i++) {
    char *far = tt_token_ahead(mine[i]);
    assert_non_null(far);
    tt_expect_token_ahead(c, "t1", far);
    free(far);
  }
  /* Still served: the real tokens resume. */
  s = tt_watch_open(c, "t1", w);
  expect_id(s, "w2");
  tc_stream_free(s);
  free(id), free(pos), free(w);
  tc_client_free(c);
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
}

/* ---- Watch tokens: Permify's new format, exact positions ---------------------- */

/* X of a watch token base64("X:xmin:xmax:xip,..."), checked to be visible in
 * its snapshot (below xmax and not listed in progress): a feed position. */
static uint64_t visible_x(const char *token) {
  size_t len;
  char *raw = (char *)tc_base64_decode(token, &len);
  assert_non_null(raw);
  unsigned long long x, xmin, xmax;
  int used = 0;
  if (sscanf(raw, "%llu:%llu:%llu:%n", &x, &xmin, &xmax, &used) != 3 || !used)
    fail_msg("token %s: %s is not X:xmin:xmax:xip", token, raw);
  if (x >= xmax) fail_msg("token %s: X not below xmax", raw);
  for (char *p = raw + used, *end; *p; p = *end ? end + 1 : end) {
    unsigned long long v = strtoull(p, &end, 10);
    assert_true(end != p);
    if (v == x) fail_msg("token %s: X listed in progress", raw);
  }
  free(raw);
  return x;
}

/* The token (malloc'd) of the next message with a change, which must be
 * want's; checkpoints before it are passed over. */
static char *expect_change(tc_stream_t *s, const char *want) {
  for (;;) {
    char *tok = NULL, *id = next_message(s, &tok);
    if (!id) fail_msg("expected %s, got no message", want);
    int checkpoint = !*id, ok = checkpoint || !strcmp(id, want);
    if (!ok) fail_msg("expected %s, got %s", want, id);
    free(id);
    if (!checkpoint) return tok;
    free(tok);
  }
}

/* A watch from token sees exactly the writes ids[0..n), in order, and
 * nothing else: then the write of marker (a new subject) is the next. */
static void expect_resume(tc_client_t *c, const char *token, const char *const *ids, size_t n,
                          const char *marker) {
  tc_stream_t *s = tt_watch_open(c, "t1", token);
  for (size_t i = 0; i < n; i++) expect_id(s, ids[i]);
  free(write_id(c, marker));
  expect_id(s, marker);
  tc_stream_free(s);
}

/* Each message names its own transaction X (the write's) in Permify's new
 * format with X visible in the exact position after it; the first
 * checkpoint from the head names the tenant's newest transaction.  Watches
 * resume exactly from a message's token, from a checkpoint's, from a write
 * ack (Permify's kind: X's stored snapshot) and from the same position in
 * the former tc2 format; reads at a message's token see up to it. */
static void test_watch_tokens(void **state) {
  (void)state;
  tc_proc_t a;
  const char *uri = fresh_db();
  PGconn *p = sql_connect(uri); /* for the database's instance id */
  tc_client_t *c = node_with_schema(&a, uri);
  char *ack0 = write_id(c, "w0");
  tc_stream_t *s = tt_watch_open_checkpoint(c, "t1", "", 1);
  char *cp0 = NULL, *id = next_message(s, &cp0);
  assert_non_null(id);
  assert_string_equal(id, ""); /* the first checkpoint comes at once */
  free(id);
  assert_int_equal(visible_x(cp0), xid_of(ack0));
  const char *ids[4] = {"w1", "w2", "w3", "w4"};
  char *ack[3], *msg[3];
  for (int i = 0; i < 3; i++) ack[i] = write_id(c, ids[i]);
  for (int i = 0; i < 3; i++) {
    msg[i] = expect_change(s, ids[i]);
    assert_int_equal(visible_x(msg[i]), xid_of(ack[i]));
  }
  /* A checkpoint now carries the position after w3. */
  char *cp = NULL;
  while (!cp) {
    char *tok = NULL;
    id = next_message(s, &tok);
    assert_non_null(id);
    assert_string_equal(id, "");
    free(id);
    if (visible_x(tok) == xid_of(ack[2]))
      cp = tok;
    else
      free(tok);
  }
  tc_stream_free(s);
  expect_resume(c, cp0, ids, 3, "m1");
  free(write_id(c, "w4"));
  expect_resume(c, msg[0], (const char *[]){"w2", "w3", "m1", "w4"}, 4, "m2");
  expect_resume(c, cp, (const char *[]){"m1", "w4", "m2"}, 3, "m3");
  expect_resume(c, ack[1], (const char *[]){"w3", "m1", "w4", "m2", "m3"}, 5, "m4");
  /* The former format of msg[0]'s position, with the database's id. */
  PGresult *r = PQexec(p, "SELECT value FROM tuplecast_meta WHERE key = 'instance_id'");
  assert_int_equal(PQntuples(r), 1);
  size_t len;
  char *raw = (char *)tc_base64_decode(msg[0], &len), *text = NULL;
  text = tc_format("tc2:%s:%s", PQgetvalue(r, 0, 0), strchr(raw, ':') + 1);
  char *tc2 = tc_base64_encode(text, strlen(text));
  expect_resume(c, tc2, (const char *[]){"w2", "w3", "m1", "w4", "m2", "m3", "m4"}, 7, "m5");
  PQclear(r);
  PQfinish(p);
  /* Reads at a message's token: w0 and w1, not w2 (organization o1 members). */
  assert_int_equal(tt_read_tuples(c, "t1", msg[0], NULL, 100), 2);
  assert_int_equal(tt_read_tuples(c, "t1", cp0, NULL, 100), 1);
  for (int i = 0; i < 3; i++) free(ack[i]), free(msg[i]);
  free(ack0), free(cp0), free(cp), free(raw), free(text), free(tc2);
  tc_client_free(c);
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
}

/* ---- serialization failures are retried inside the server ------------------- */

#define SW_TENANTS 100
#define SW_PER_TENANT 10

/* The answers of many unary calls started at once with the bench's client:
 * OK, UNAVAILABLE saying the outcome is unknown, or other.  The first answer
 * that is not OK is kept: with strict, any; else only an other that is not
 * UNAVAILABLE. */
typedef struct {
  int left, ok, unknown, other, strict;
  char *first_error;
} tally_t;

typedef struct {
  bench_unary_t u;
  tally_t *t;
} tallied_call_t;

static void on_tallied(bench_unary_t *u, grpc_status_code status, grpc_byte_buffer *resp,
                       const char *details) {
  (void)resp;
  tally_t *t = ((tallied_call_t *)u)->t;
  t->left--;
  if (status == GRPC_STATUS_OK) {
    t->ok++;
  } else if (status == GRPC_STATUS_UNAVAILABLE && details &&
             strstr(details, "outcome of this request is unknown") &&
             strstr(details, "read at the head") && strstr(details, "watch from the last")) {
    t->unknown++;
    if (!t->first_error && t->strict) t->first_error = strdup(details);
  } else {
    t->other++;
    if (!t->first_error && (t->strict || status != GRPC_STATUS_UNAVAILABLE)) {
      char buf[512];
      snprintf(buf, sizeof buf, "%d %s", (int)status, details ? details : "");
      t->first_error = strdup(buf);
    }
  }
}

static void tally_start(bench_client_t *bc, int conn, tallied_call_t *call, tally_t *t,
                        const char *method, const ProtobufCMessage *req) {
  call->t = t;
  assert_int_equal(bench_unary_start(bc, conn, &call->u, method, req, on_tallied, NULL), 0);
  t->left++;
}

/* Polls until every call was answered (deadline: ns, bench_now_ns()). */
static void tally_wait(bench_client_t *bc, tally_t *t, int64_t deadline) {
  while (t->left > 0 && bench_now_ns() < deadline) bench_client_poll(bc, deadline);
  assert_int_equal(t->left, 0);
}

/* 1,000 Schema.Writes at once over 100 tenants: SERIALIZABLE transactions
 * of different tenants fail with 40001 (or 40P01) against each other, and
 * each is retried, bounded and jittered, before it could surface: 0 errors. */
static void test_concurrent_schema_writes(void **state) {
  (void)state;
  tc_proc_t a;
  node_start(&a, fresh_db(), NULL);
  tc_client_t *c = tc_client_new(a.target);
  char tenant[SW_TENANTS][16];
  for (int t = 0; t < SW_TENANTS; t++) {
    snprintf(tenant[t], sizeof tenant[t], "sw%d", t);
    tt_create_tenant(c, tenant[t]);
  }
  bench_client_t *bc = bench_client_new(a.target, 8, NULL, NULL);
  assert_non_null(bc);
  static tallied_call_t calls[SW_TENANTS * SW_PER_TENANT];
  tally_t t = {.strict = 1};
  for (int i = 0; i < SW_TENANTS * SW_PER_TENANT; i++) {
    Base__V1__SchemaWriteRequest req = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
    req.tenant_id = tenant[i % SW_TENANTS];
    req.schema = (char *)tt_schema_text;
    tally_start(bc, i % 8, &calls[i], &t, "/base.v1.Schema/Write", &req.base);
  }
  tally_wait(bc, &t, bench_now_ns() + 120 * 1000000000LL);
  if (t.first_error)
    fail_msg("%d of %d schema writes failed, first: %s", t.other + t.unknown,
             SW_TENANTS * SW_PER_TENANT, t.first_error);
  bench_client_free(bc);
  /* Every acknowledged write is a version of its own, in every tenant: a
   * serialization failure at COMMIT once went unnoticed and its write was
   * acknowledged though rolled back (under load, 7 to 69 of the 1,000 each
   * run; the last tenant alone showed it about one run in 25). */
  int stored = 0;
  for (int i = 0; i < SW_TENANTS; i++) {
    Base__V1__SchemaListRequest ls = BASE__V1__SCHEMA_LIST_REQUEST__INIT;
    ls.tenant_id = tenant[i];
    ls.page_size = 100;
    tt_result_t r =
        tt_call(c, "/base.v1.Schema/List", &ls.base, &base__v1__schema_list_response__descriptor);
    assert_int_equal(r.code, 0);
    int n = (int)((Base__V1__SchemaListResponse *)r.resp)->n_schemas;
    if (n != SW_PER_TENANT) print_error("tenant %s: %d schema versions\n", tenant[i], n);
    stored += n;
    tt_result_free(&r);
  }
  assert_int_equal(stored, SW_TENANTS * SW_PER_TENANT);
  tc_client_free(c);
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
}

/* ---- a write whose commit was cut off --------------------------------------- */

#define LOST_BATCH 200

/* Writes in flight when every database connection of the server is killed:
 * each answers OK, or UNAVAILABLE saying its outcome is unknown and how to
 * find out (or, if it had not been sent yet, plain UNAVAILABLE); never
 * anything else.  Rounds of 200 writes until one was cut off on the wire. */
static void test_unknown_outcome(void **state) {
  (void)state;
  const char *uri = fresh_db();
  tc_proc_t a;
  tc_client_t *c = node_with_schema(&a, uri);
  bench_client_t *bc = bench_client_new(a.target, 4, NULL, NULL);
  assert_non_null(bc);
  PGconn *p = sql_connect(uri);
  static tallied_call_t calls[LOST_BATCH];
  static tt_tuple_buf_t tb[LOST_BATCH];
  char ids[LOST_BATCH][24];
  tally_t t = {0};
  int64_t deadline = bench_now_ns() + 60 * 1000000000LL;
  for (int round = 0; !t.unknown && !t.first_error && bench_now_ns() < deadline; round++) {
    for (int i = 0; i < LOST_BATCH; i++) {
      snprintf(ids[i], sizeof ids[i], "r%d_%d", round, i);
      Base__V1__Tuple *tp = tt_tuple(&tb[i], "organization", "o1", "member", "user", ids[i], "");
      Base__V1__DataWriteRequest req = BASE__V1__DATA_WRITE_REQUEST__INIT;
      Base__V1__DataWriteRequestMetadata md = BASE__V1__DATA_WRITE_REQUEST_METADATA__INIT;
      req.tenant_id = "t1";
      req.metadata = &md;
      req.tuples = &tp;
      req.n_tuples = 1;
      tally_start(bc, i % 4, &calls[i], &t, "/base.v1.Data/Write", &req.base);
    }
    /* Once the first answers, the rest are queued or on the wire. */
    int before = t.left;
    while (t.left == before && bench_now_ns() < deadline) bench_client_poll(bc, deadline);
    sql(p,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()");
    tally_wait(bc, &t, deadline);
  }
  PQfinish(p);
  bench_client_free(bc);
  if (t.first_error) fail_msg("a write answered %s", t.first_error);
  assert_true(t.unknown > 0);
  print_message("      %d ok, %d unknown outcome, %d unavailable\n", t.ok, t.unknown, t.other);
  free(t.first_error);
  /* The server reconnects: a later write works. */
  free(write_id(c, "after"));
  tc_client_free(c);
  assert_int_equal(tc_proc_stop(&a, NULL), 0);
}

static int setup(void **state) {
  (void)state;
  /* pg_stat_statements counts what the nodes ran (test_tenant_reads_per_write). */
  static const char *const conf[] = {"shared_preload_libraries = pg_stat_statements", NULL};
  tc_pg_opts_t opts = {.track_commit_timestamp = 1, .conf = conf};
  return tc_pg_start(&opts, &pg);
}

static int teardown(void **state) {
  (void)state;
  tc_pg_stop(pg);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cross_node),
      cmocka_unit_test(test_external_writers),
      cmocka_unit_test(test_poll_skips_own_writes),
      cmocka_unit_test(test_randomized_two_nodes),
      cmocka_unit_test(test_tenant_changes_across_nodes),
      cmocka_unit_test(test_tenant_reads_per_write),
      cmocka_unit_test(test_refuses_without_commit_timestamps),
      cmocka_unit_test(test_migrate_cli),
      cmocka_unit_test(test_gc_out_of_range),
      cmocka_unit_test(test_token_ahead),
      cmocka_unit_test(test_watch_tokens),
      cmocka_unit_test(test_concurrent_schema_writes),
      cmocka_unit_test(test_unknown_outcome),
  };
  /* TC_TEST_FILTER=<pattern>: run only the matching tests (cmocka's filter). */
  if (getenv("TC_TEST_FILTER")) cmocka_set_test_filter(getenv("TC_TEST_FILTER"));
  return cmocka_run_group_tests(tests, setup, teardown);
}
