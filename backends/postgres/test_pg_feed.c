/* test_pg_feed: the PostgreSQL change feed (pg_feed.c), its tokens
 * (pg_token.c) and wake-ups (pg_wake.c) against a throwaway cluster.
 *
 * Transactions are written the way Permify writes them, with blocking libpq
 * connections (BEGIN ISOLATION LEVEL SERIALIZABLE; INSERT INTO transactions
 * ... RETURNING id, snapshot; INSERT tuples; COMMIT), several at once to
 * choose the commit order; the feed runs on a libuv loop driven with
 * deadlines.  One regression test per weakness of Permify's watch (listed
 * in docs/backend-postgres.md, "Permify's watch, for comparison") runs
 * Permify's own query beside ours and shows it
 * losing, hanging or returning everything at once where ours delivers each
 * transaction exactly once in an order consistent with visibility.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "pg_conn.h"
#include "pg_feed.h"
#include "pg_fixture.h"
#include "pg_migrate.h"
#include "pg_token.h"
#include "pg_wake.h"

#define DEADLINE_MS 20000

static tc_pg_t *pg;
static const char *uri;
static PGconn *db; /* the test's own blocking connection */
static char instance[64];

/* ---- blocking SQL ---------------------------------------------------------- */

static PGconn *connect_db(void) {
  PGconn *c = PQconnectdb(uri);
  if (PQstatus(c) != CONNECTION_OK) fail_msg("connect: %s", PQerrorMessage(c));
  return c;
}

/* Runs sql with text params; returns the result (TUPLES_OK / COMMAND_OK
 * checked); the caller clears it. */
static PGresult *sqlp(PGconn *c, const char *sql, int n, const char *const *v) {
  PGresult *r = n ? PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0) : PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
    fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  return r;
}

static void sql(PGconn *c, const char *text) { PQclear(sqlp(c, text, 0, NULL)); }

/* The single value of a one-row query, malloc'd. */
static char *sql1(PGconn *c, const char *text, int n, const char *const *v) {
  PGresult *r = sqlp(c, text, n, v);
  assert_int_equal(PQntuples(r), 1);
  char *s = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return s;
}

static uint64_t u64(const char *s) { return strtoull(s, NULL, 10); }

/* Permify's write: BEGIN SERIALIZABLE and the transactions row; X returned,
 * the stored snapshot in *snap (malloc'd) when snap is not NULL. */
static uint64_t w_begin(PGconn *c, const char *tenant, char **snap) {
  sql(c, "BEGIN ISOLATION LEVEL SERIALIZABLE");
  const char *v[1] = {tenant};
  PGresult *r = sqlp(c,
                     "INSERT INTO transactions (tenant_id) VALUES ($1) RETURNING id::text,"
                     " snapshot::text",
                     1, v);
  uint64_t x = u64(PQgetvalue(r, 0, 0));
  if (snap) *snap = strdup(PQgetvalue(r, 0, 1));
  PQclear(r);
  return x;
}

/* A tuple doc:<label>#viewer@user:u created by the open transaction. */
static void w_tuple(PGconn *c, const char *tenant, const char *label) {
  const char *v[2] = {tenant, label};
  PQclear(sqlp(c,
               "INSERT INTO relation_tuples (entity_type, entity_id, relation, subject_type,"
               " subject_id, subject_relation, tenant_id) VALUES ('doc', $2, 'viewer', 'user',"
               " 'u', '', $1)",
               2, v));
}

static void w_commit(PGconn *c) { sql(c, "COMMIT"); }

/* One whole write of one tuple; X returned, stored snapshot in *snap. */
static uint64_t write_one(PGconn *c, const char *tenant, const char *label, char **snap) {
  uint64_t x = w_begin(c, tenant, snap);
  if (label) w_tuple(c, tenant, label);
  w_commit(c);
  return x;
}

/* Permify's watch poll (v1.7.3, described in docs/backend-postgres.md),
 * cursor inlined as Permify does: the ids returned in commit-timestamp order
 * go to out[], the cursor moves to the last.  Returns how many. */
static size_t permify_poll(const char *tenant, uint64_t *cr, uint64_t *out, size_t max) {
  char q[600];
  snprintf(q, sizeof q,
           "SELECT id::text FROM transactions WHERE pg_xact_commit_timestamp(id::xid) > (SELECT "
           "pg_xact_commit_timestamp(id::xid) FROM transactions WHERE id = '%" PRIu64
           "'::xid8) "
           "AND id < pg_snapshot_xmin(pg_current_snapshot()) AND tenant_id = $1 ORDER BY "
           "pg_xact_commit_timestamp(id::xid)",
           *cr);
  const char *v[1] = {tenant};
  PGresult *r = sqlp(db, q, 1, v);
  size_t n = (size_t)PQntuples(r);
  for (size_t i = 0; i < n; i++) {
    uint64_t id = u64(PQgetvalue(r, (int)i, 0));
    if (i < max) out[i] = id;
    *cr = id;
  }
  PQclear(r);
  return n;
}

/* ---- the host ------------------------------------------------------------------ */

typedef struct test_host_s {
  tc_host_api_t api;
  char changed[1024][80];
  size_t nchanged;
  const char *want; /* wait_changed's tenant */
  int hit;
} test_host_t;

static void hlog(int level, const char *fmt, ...) {
  if (level < TC_LOG_WARN && !getenv("TC_TEST_VERBOSE")) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static void on_changed(const tc_host_api_t *h, const char *tenant) {
  test_host_t *t = (test_host_t *)h;
  if (t->nchanged < 1024) snprintf(t->changed[t->nchanged++], 80, "%s", tenant);
  if (t->want && !strcmp(t->want, tenant)) t->hit = 1;
}

static int saw_changed(const test_host_t *t, const char *tenant) {
  for (size_t i = 0; i < t->nchanged; i++)
    if (!strcmp(t->changed[i], tenant)) return 1;
  return 0;
}

/* Test-local "Any": the JSON text's bytes, so values round-trip as text. */
static int any_to_json(const uint8_t *any, size_t len, char **json) {
  *json = strndup((const char *)any, len);
  return *json ? 0 : TC_ENOMEM;
}

static int any_from_json(const char *json, uint8_t **any, size_t *len) {
  *len = strlen(json);
  *any = (uint8_t *)strdup(json);
  return *any ? 0 : TC_ENOMEM;
}

static void host_init(test_host_t *h, uv_loop_t *loop) {
  memset(h, 0, sizeof *h);
  h->api = (tc_host_api_t){.struct_size = sizeof(tc_host_api_t),
                           .loop = loop,
                           .log = hlog,
                           .now_ms = now_ms,
                           .changed = on_changed,
                           .any_to_json = any_to_json,
                           .any_from_json = any_from_json,
                           .abi_major = TC_BACKEND_ABI_MAJOR,
                           .abi_minor = TC_BACKEND_ABI_MINOR};
}

/* ---- the loop ------------------------------------------------------------------ */

typedef struct env_s {
  uv_loop_t loop;
  tc__pg_pool_t *pool;
  test_host_t host;
  tc__pg_feed_ctx_t ctx;
  tc_backend_stats_t stats;
} env_t;

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until *flag is set or ms pass; 1 if the flag was set. */
static int run_until(uv_loop_t *loop, const int *flag, uint64_t ms) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, on_tick, 5, 5);
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + ms;
  while (!*flag && uv_now(loop) < end) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return *flag;
}

static void run_for(uv_loop_t *loop, uint64_t ms) {
  int never = 0;
  run_until(loop, &never, ms);
}

static int setup_env(void **state) {
  env_t *e = calloc(1, sizeof *e);
  uv_loop_init(&e->loop);
  host_init(&e->host, &e->loop);
  tc__pg_pool_opts_t o = {.conninfo = uri, .size = 2, .depth = 4, .name = "read", .log = hlog};
  if (tc__pg_pool_create(&e->loop, &o, &e->pool)) return -1;
  e->ctx = (tc__pg_feed_ctx_t){
      .pool = e->pool, .host = &e->host.api, .instance_id = instance, .stats = &e->stats};
  *state = e;
  return 0;
}

static void set_flag(void *arg) { *(int *)arg = 1; }

static int teardown_env(void **state) {
  env_t *e = *state;
  int closed = 0;
  tc__pg_pool_close(e->pool, set_flag, &closed);
  run_until(&e->loop, &closed, DEADLINE_MS);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&e->loop);
  free(e);
  return closed && rc == 0 ? 0 : -1;
}

/* ---- feed calls ------------------------------------------------------------------ */

typedef struct msg_s {
  char *token;
  char *text; /* the changes, " "-separated: +doc:a#viewer@user:u, -doc:a$attr=json */
} msg_t;

typedef struct res_s {
  int done, status;
  size_t nchanges, nmsgs;
  msg_t *msgs;
  char *last;
} res_t;

static void res_clear(res_t *r) {
  for (size_t i = 0; i < r->nmsgs; i++) {
    free(r->msgs[i].token);
    free(r->msgs[i].text);
  }
  free(r->msgs);
  free(r->last);
  memset(r, 0, sizeof *r);
}

static char *describe(const tc_change_t *c) {
  char buf[1024];
  char op = c->op == TC_CHANGE_CREATE ? '+' : '-';
  if (c->tuple) {
    const tc_tuple_t *t = c->tuple;
    snprintf(buf, sizeof buf, "%c%s:%s#%s@%s:%s%s%s", op, t->entity_type, t->entity_id, t->relation,
             t->subject_type, t->subject_id, *t->subject_relation ? "#" : "", t->subject_relation);
  } else {
    const tc_attr_t *a = c->attr;
    snprintf(buf, sizeof buf, "%c%s:%s$%s=%.*s", op, a->entity_type, a->entity_id, a->attribute,
             (int)a->value_len, (const char *)a->value);
  }
  return strdup(buf);
}

static void on_changes(void *arg, int status, const tc_change_t *c, size_t n, const char *last) {
  res_t *r = arg;
  r->done = 1;
  r->status = status;
  r->nchanges = n;
  r->last = last ? strdup(last) : NULL;
  r->msgs = calloc(n + 1, sizeof *r->msgs);
  for (size_t i = 0; i < n; i++) {
    assert_non_null(c[i].token);
    assert_true((c[i].tuple != NULL) != (c[i].attr != NULL));
    char *d = describe(&c[i]);
    if (i == 0 || strcmp(c[i].token, c[i - 1].token)) {
      r->msgs[r->nmsgs++] = (msg_t){strdup(c[i].token), d};
    } else {
      msg_t *m = &r->msgs[r->nmsgs - 1];
      size_t len = strlen(m->text) + strlen(d) + 2;
      char *t = malloc(len);
      snprintf(t, len, "%s %s", m->text, d);
      free(m->text);
      free(d);
      m->text = t;
    }
  }
}

/* read_changes, run to completion. */
static void feed_read(env_t *e, const char *tenant, const char *after, const char *upto,
                      uint32_t limit, res_t *r) {
  memset(r, 0, sizeof *r);
  assert_int_equal(tc__pg_feed_read_changes(&e->ctx, tenant, after, upto, limit, on_changes, r), 0);
  assert_false(r->done); /* never synchronously */
  assert_true(run_until(&e->loop, &r->done, DEADLINE_MS));
}

typedef struct head_s {
  int done, status;
  char *token;
} head_t;

static void on_head(void *arg, int status, const char *token) {
  head_t *h = arg;
  h->done = 1;
  h->status = status;
  h->token = token ? strdup(token) : NULL;
}

static char *feed_head(env_t *e, const char *tenant) {
  head_t h = {0};
  assert_int_equal(tc__pg_feed_head(&e->ctx, tenant, on_head, &h), 0);
  assert_true(run_until(&e->loop, &h.done, DEADLINE_MS));
  assert_int_equal(h.status, 0);
  return h.token;
}

/* The transaction a feed token names, checked to be ours: Permify's new
 * format with X visible in the exact snapshot. */
static uint64_t our_x(const char *tok) {
  tc__pg_token_t t;
  char *err = NULL;
  assert_int_equal(tc__pg_token_parse(tok, instance, &t, &err), 0);
  assert_int_equal(t.kind, TC_PG_TOKEN_SNAP);
  uint64_t x = t.x;
  tc__pg_token_clear(&t);
  return x;
}

/* The entity id of a message's first change: the tests' transaction label. */
static char *label_of(const msg_t *m, char *buf, size_t size) {
  const char *s = strchr(m->text, ':') + 1;
  size_t n = strcspn(s, "#$");
  snprintf(buf, size, "%.*s", (int)n, s);
  return buf;
}

/* The labels of r's messages, space-separated, into buf. */
static const char *labels(const res_t *r, char *buf, size_t size) {
  buf[0] = '\0';
  for (size_t i = 0; i < r->nmsgs; i++) {
    char l[128];
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", i ? " " : "", label_of(&r->msgs[i], l, sizeof l));
  }
  return buf;
}

/* Reads from `from` with `limit` until nothing is new; the labels of every
 * message go to buf; *last (malloc'd) the final position. */
static void feed_read_all(env_t *e, const char *tenant, const char *from, uint32_t limit, char *buf,
                          size_t size, char **last) {
  char *at = strdup(from);
  buf[0] = '\0';
  for (;;) {
    res_t r;
    feed_read(e, tenant, at, NULL, limit, &r);
    assert_int_equal(r.status, 0);
    size_t len = strlen(buf);
    static char l[65536];
    if (r.nmsgs) snprintf(buf + len, size - len, "%s%s", len ? " " : "", labels(&r, l, sizeof l));
    int same = !strcmp(r.last, at);
    free(at);
    at = strdup(r.last);
    res_clear(&r);
    if (same) break;
  }
  *last = at;
}

/* ---- tokens -------------------------------------------------------------------- */

static char *b64(const char *text) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t len = strlen(text);
  char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
  const unsigned char *s = (const unsigned char *)text;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0) |
                 (i + 2 < len ? s[i + 2] : 0);
    *p++ = a[v >> 18 & 63];
    *p++ = a[v >> 12 & 63];
    *p++ = i + 1 < len ? a[v >> 6 & 63] : '=';
    *p++ = i + 2 < len ? a[v & 63] : '=';
  }
  *p = '\0';
  return out;
}

static void expect_bad_token(const char *tok, const char *why) {
  tc__pg_token_t t;
  char *err = NULL;
  int rc = tc__pg_token_parse(tok, "inst-9", &t, &err);
  if (rc != TC_ESNAP_TOKEN) fail_msg("token %s (%s): %d", tok, why, rc);
  assert_non_null(err);
  if (!strstr(err, why)) fail_msg("token %s: \"%s\" lacks \"%s\"", tok, err, why);
  assert_null(strchr(err, '\n'));
  free(err);
}

static void test_tokens(void **state) {
  (void)state;
  /* X = 745 with stored snapshot 745:745: adjusts to 745:746:745, so the
   * token is base64("745:745:746:745"), as a Permify server mints it. */
  char *p = tc__pg_token_permify(745, "745:745:");
  assert_string_equal(p, "NzQ1Ojc0NTo3NDY6NzQ1");
  tc__pg_token_t t;
  char *err = NULL;
  assert_int_equal(tc__pg_token_parse(p, "inst-1", &t, &err), 0);
  assert_int_equal(t.kind, TC_PG_TOKEN_PERMIFY);
  assert_int_equal(t.x, 745);
  assert_string_equal(t.snapshot, "745:746:745");
  tc__pg_token_clear(&t);
  free(p);
  /* The adjustment with xips, and with X below xmin. */
  p = tc__pg_token_permify(750, "745:748:746");
  assert_int_equal(tc__pg_token_parse(p, "inst-1", &t, &err), 0);
  assert_string_equal(t.snapshot, "745:751:746,750");
  tc__pg_token_clear(&t);
  free(p);
  p = tc__pg_token_permify(740, "745:748:746");
  assert_int_equal(tc__pg_token_parse(p, "inst-1", &t, &err), 0);
  assert_string_equal(t.snapshot, "740:748:740,746");
  tc__pg_token_clear(&t);
  free(p);
  /* Legacy: 8-byte little-endian X. */
  assert_int_equal(tc__pg_token_parse("6QIAAAAAAAA=", "inst-1", &t, &err), 0);
  assert_int_equal(t.kind, TC_PG_TOKEN_LEGACY);
  assert_int_equal(t.x, 745);
  assert_null(t.snapshot);
  tc__pg_token_clear(&t);
  assert_int_equal(tc__pg_token_parse("AAAAAAAAAAA=", "inst-1", &t, &err), 0);
  assert_int_equal(t.kind, TC_PG_TOKEN_LEGACY);
  assert_int_equal(t.x, 0);
  tc__pg_token_clear(&t);
  p = tc__pg_token_permify(745, "");
  assert_string_equal(p, "6QIAAAAAAAA=");
  free(p);
  /* Head. */
  assert_int_equal(tc__pg_token_parse("", "inst-1", &t, &err), 0);
  assert_int_equal(t.kind, TC_PG_TOKEN_HEAD);
  /* Ours: Permify's new format, X visible in the exact snapshot (below
   * xmax and not in progress, or below xmin); the same string for the same
   * (X, snapshot).  Permify's: X listed in progress, or not below xmax. */
  uint64_t xip[2] = {12, 15};
  tc__pg_snap_t s = {10, 20, 2, xip};
  struct {
    uint64_t x;
    const char *payload;
    int kind;
  } origin[] = {{13, "13:10:20:12,15", TC_PG_TOKEN_SNAP},
                {19, "19:10:20:12,15", TC_PG_TOKEN_SNAP},
                {4, "4:10:20:12,15", TC_PG_TOKEN_SNAP},
                {12, "12:10:20:12,15", TC_PG_TOKEN_PERMIFY},
                {20, "20:10:20:12,15", TC_PG_TOKEN_PERMIFY}};
  for (size_t i = 0; i < sizeof origin / sizeof *origin; i++) {
    char *want = b64(origin[i].payload);
    if (origin[i].kind == TC_PG_TOKEN_SNAP) {
      p = tc__pg_token_at(origin[i].x, &s);
      assert_string_equal(p, want);
      free(p);
    }
    assert_int_equal(tc__pg_token_parse(want, "inst-1", &t, &err), 0);
    assert_int_equal(t.kind, origin[i].kind);
    assert_int_equal(t.x, origin[i].x);
    assert_string_equal(t.snapshot, "10:20:12,15");
    /* Reaching the position takes xmax 20, or X + 1 if more. */
    assert_int_equal(tc__pg_token_need(&t), origin[i].x < 20 ? 20 : origin[i].x + 1);
    tc__pg_token_clear(&t);
    free(want);
  }
  /* A payload of 8 bytes would be the legacy format: X gets a leading 0. */
  p = tc__pg_token_at(9, &(tc__pg_snap_t){10, 10, 0, NULL});
  char *padded = b64("09:10:10:");
  assert_string_equal(p, padded);
  assert_int_equal(tc__pg_token_parse(p, "inst-1", &t, &err), 0);
  assert_int_equal(t.kind, TC_PG_TOKEN_SNAP);
  assert_int_equal(t.x, 9);
  tc__pg_token_clear(&t);
  free(padded);
  free(p);
  /* Our former format, tc2 with the database's instance id: still read, as
   * an exact snapshot naming no transaction; another database's is refused. */
  p = b64("tc2:inst-1:10:20:12,15");
  assert_int_equal(tc__pg_token_parse(p, "inst-1", &t, &err), 0);
  assert_int_equal(t.kind, TC_PG_TOKEN_SNAP);
  assert_int_equal(t.x, 0);
  assert_string_equal(t.snapshot, "10:20:12,15");
  tc__pg_token_clear(&t);
  expect_bad_token(p, "another database");
  tc__pg_token_t t2;
  assert_int_equal(tc__pg_token_parse(p, "inst-2", &t2, &err), TC_ESNAP_TOKEN);
  free(err);
  free(p);
  /* Errors. */
  char *tc1 = b64("tc1:3b5b6a0e-sqlite:42");
  expect_bad_token(tc1, "SQLite or memory backend");
  free(tc1);
  const char *bad_text[] = {
      "hello world",      "12:5:3:", "120:3:9:9", "12:3:9:4,2", "tc2:inst-9", "tc2:inst-9:5:3:",
      "tc2:inst-9:1:9:x", "x:1:2:",  "12:1:9:3,", "3:0:5:",     "0:0:0:"};
  for (size_t i = 0; i < sizeof bad_text / sizeof *bad_text; i++) {
    char *b = b64(bad_text[i]);
    expect_bad_token(b, "malformed");
    free(b);
  }
  expect_bad_token("!!!!", "malformed");
  expect_bad_token("abc", "malformed");
  expect_bad_token("NzQ1Ojc0NTo3NDY6NzQ1=", "malformed");
  expect_bad_token("NzQ1Ojc0NTo3NDY6NzQ=", "malformed"); /* non-zero padding bits */
  /* Snapshot text as pg_snapshot_in reads it. */
  tc__pg_snap_t q;
  assert_int_equal(tc__pg_snap_parse("1:1:", &q), 0);
  assert_int_equal(q.nxip, 0);
  tc__pg_snap_clear(&q);
  assert_int_equal(tc__pg_snap_parse("5:10:7,7,8", &q), 0);
  assert_int_equal(q.nxip, 2);
  char *txt = tc__pg_snap_text(&q);
  assert_string_equal(txt, "5:10:7,8");
  free(txt);
  tc__pg_snap_clear(&q);
  assert_int_equal(tc__pg_snap_parse("5:10:7,6", &q), TC_EINVAL);
  assert_int_equal(tc__pg_snap_parse("5:10:10", &q), TC_EINVAL);
  assert_int_equal(tc__pg_snap_parse("5:10:4", &q), TC_EINVAL);
  assert_int_equal(tc__pg_snap_parse("5:10", &q), TC_EINVAL);
  assert_int_equal(tc__pg_snap_parse("-5:10:", &q), TC_EINVAL);
  assert_int_equal(tc__pg_snap_parse("0:10:", &q), TC_EINVAL); /* 0 is no xid */
  /* The largest X is ahead of everything: its need does not wrap to 0. */
  assert_int_equal(tc__pg_token_parse("//////////8=", "inst-1", &t, &err), 0);
  assert_int_equal(t.kind, TC_PG_TOKEN_LEGACY);
  assert_true(tc__pg_token_need(&t) == UINT64_MAX);
  tc__pg_token_clear(&t);
}

/* The feed refuses what does not parse, synchronously. */
static void test_feed_token_errors(void **state) {
  env_t *e = *state;
  res_t r = {0};
  char *other = NULL, *tc1 = b64("tc1:3b5b6a0e-sqlite:42");
  uint64_t xip[1] = {7};
  tc__pg_snap_t s = {5, 9, 1, xip};
  other = b64("tc2:another-instance:5:9:7");
  char *no_xid = b64("6:0:9:7"); /* Postgres would refuse xmin 0 as a query error */
  const char *bad[] = {"!!!!", other, tc1, no_xid};
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(tc__pg_feed_read_changes(&e->ctx, "te", bad[i], NULL, 10, on_changes, &r),
                     TC_ESNAP_TOKEN);
    char *ok = tc__pg_token_at(6, &s);
    assert_int_equal(tc__pg_feed_read_changes(&e->ctx, "te", ok, bad[i], 10, on_changes, &r),
                     TC_ESNAP_TOKEN);
    free(ok);
  }
  assert_int_equal(tc__pg_feed_read_changes(&e->ctx, "te", "", NULL, 10, on_changes, &r),
                   TC_EINVAL);
  run_for(&e->loop, 50);
  assert_false(r.done);
  assert_int_equal(e->stats.change_reads, 9);
  free(no_xid);
  free(other);
  free(tc1);
}

/* A token of every kind naming xids this database has not reached is
 * TC_ESNAP_TOKEN ("ahead of this database"), never an empty read. */
static void test_tokens_ahead(void **state) {
  env_t *e = *state;
  char tc2[128];
  snprintf(tc2, sizeof tc2, "tc2:%s:99999999991:99999999991:", instance);
  char *far[6] = {b64("99999999990:99999999991:99999999991:"),            /* a feed position */
                  b64("99999999990:99999999990:99999999991:99999999990"), /* a write ack */
                  tc__pg_token_permify(99999999990, NULL), b64(tc2),
                  /* the largest X, which X + 1 must not wrap below the database */
                  strdup("//////////8="), b64("18446744073709551615:1:2:")};
  for (size_t i = 0; i < 6; i++) {
    res_t r;
    feed_read(e, "ahead", far[i], NULL, 10, &r);
    if (r.status != TC_ESNAP_TOKEN) fail_msg("token %zu: status %d", i, r.status);
    res_clear(&r);
    free(far[i]);
  }
}

/* ---- regression tests: Permify's watch weaknesses ------------------------------- */

/* Weakness 1: three writers get xids a < b < c; c commits, then a; the feed
 * reads; then b commits.  Permify's cursor moves to a's commit time while b
 * pins xmin, so c (committed before a) is never returned. */
static void test_commits_out_of_xid_order(void **state) {
  env_t *e = *state;
  const char *T = "oxo";
  PGconn *ca = connect_db(), *cb = connect_db(), *cc = connect_db();
  uint64_t x0 = write_one(db, T, "w0", NULL), cr = x0, got[16];
  char *h = feed_head(e, T);
  uint64_t a = w_begin(ca, T, NULL), b = w_begin(cb, T, NULL), c = w_begin(cc, T, NULL);
  assert_true(a < b && b < c);
  w_tuple(ca, T, "a");
  w_tuple(cb, T, "b");
  w_tuple(cc, T, "c");
  w_commit(cc);
  w_commit(ca);
  size_t n1 = permify_poll(T, &cr, got, 16);
  assert_int_equal(n1, 1);
  assert_int_equal(got[0], a);
  res_t r1, r2;
  char buf[256];
  feed_read(e, T, h, NULL, 100, &r1);
  assert_int_equal(r1.status, 0);
  assert_string_equal(labels(&r1, buf, sizeof buf), "c a"); /* commit order */
  w_commit(cb);
  size_t n2 = permify_poll(T, &cr, got, 16);
  assert_int_equal(n2, 1);
  assert_int_equal(got[0], b);
  assert_int_equal(permify_poll(T, &cr, got, 16), 0); /* c: never */
  feed_read(e, T, r1.last, NULL, 100, &r2);
  assert_string_equal(labels(&r2, buf, sizeof buf), "b");
  res_t r3;
  feed_read(e, T, r2.last, NULL, 100, &r3);
  assert_int_equal(r3.nchanges, 0);
  assert_string_equal(r3.last, r2.last);
  res_clear(&r1);
  res_clear(&r2);
  res_clear(&r3);
  free(h);
  PQfinish(ca);
  PQfinish(cb);
  PQfinish(cc);
}

/* Commits on two connections at the same moment. */
static void commit_together(PGconn *a, PGconn *b) {
  assert_true(PQsendQuery(a, "COMMIT") && PQsendQuery(b, "COMMIT"));
  PGconn *cs[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    PGresult *r;
    while ((r = PQgetResult(cs[i]))) {
      assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
      PQclear(r);
    }
  }
}

/* Weakness 2: equal commit timestamps.  Nothing in Postgres sets a commit
 * timestamp, so this commits pairs of real Permify-style transactions A, B
 * at the same moment on two connections until a pair gets equal
 * timestamps, with a third transaction Z (xid between A's and B's) open: a
 * poll then sees A eligible but not B (B >= xmin), moves Permify's cursor
 * to ts(A) = ts(B), and once Z commits, `>` skips B for good.  Skipped (with
 * the number of tries) if no tie turns up within the attempts. */
static void test_equal_commit_timestamps(void **state) {
  env_t *e = *state;
  const char *T = "eqts";
  PGconn *ca = connect_db(), *cz = connect_db(), *cb = connect_db();
  int attempts = 0, tie = 0;
  uint64_t a = 0, z = 0, b = 0, cr = 0, got[16];
  char *h = NULL, la[32], lz[32], lb[32];
  uint64_t start = now_ms();
  while (!tie && attempts < 20000 && now_ms() - start < 60000) {
    attempts++;
    free(h);
    char base[32];
    snprintf(base, sizeof base, "w%d", attempts);
    cr = write_one(db, T, base, NULL);
    h = feed_head(e, T);
    snprintf(la, sizeof la, "a%d", attempts);
    snprintf(lz, sizeof lz, "z%d", attempts);
    snprintf(lb, sizeof lb, "b%d", attempts);
    a = w_begin(ca, T, NULL);
    w_tuple(ca, T, la);
    z = w_begin(cz, T, NULL);
    w_tuple(cz, T, lz);
    b = w_begin(cb, T, NULL);
    w_tuple(cb, T, lb);
    assert_true(a < z && z < b);
    commit_together(ca, cb);
    char xa[24], xb[24];
    snprintf(xa, sizeof xa, "%" PRIu64, a);
    snprintf(xb, sizeof xb, "%" PRIu64, b);
    const char *v[2] = {xa, xb};
    char *eq = sql1(db,
                    "SELECT pg_xact_commit_timestamp($1::xid8::xid) ="
                    " pg_xact_commit_timestamp($2::xid8::xid)",
                    2, v);
    tie = !strcmp(eq, "t");
    free(eq);
    if (!tie) sql(cz, "ROLLBACK");
  }
  print_message("equal commit timestamps: %s after %d pairs committed together\n",
                tie ? "a tie" : "no tie", attempts);
  if (!tie) {
    free(h);
    PQfinish(ca);
    PQfinish(cz);
    PQfinish(cb);
    skip();
  }
  /* Permify: A now (Z pins xmin below B), then Z, and B never. */
  assert_int_equal(permify_poll(T, &cr, got, 16), 1);
  assert_int_equal(got[0], a);
  res_t r1, r2;
  char buf[256], want[128];
  feed_read(e, T, h, NULL, 100, &r1);
  snprintf(want, sizeof want, "%s %s", la, lb); /* equal times: by xid */
  assert_string_equal(labels(&r1, buf, sizeof buf), want);
  w_commit(cz);
  assert_int_equal(permify_poll(T, &cr, got, 16), 1);
  assert_int_equal(got[0], z);
  assert_int_equal(permify_poll(T, &cr, got, 16), 0);
  feed_read(e, T, r1.last, NULL, 100, &r2);
  assert_string_equal(labels(&r2, buf, sizeof buf), lz);
  res_clear(&r1);
  res_clear(&r2);
  free(h);
  PQfinish(ca);
  PQfinish(cz);
  PQfinish(cb);
}

/* Weakness 3: a Watch from "" on a tenant with no transactions.  Permify's head
 * is X = 0 (token AAAAAAAAAAA=), whose commit time is NULL: its stream never
 * returns anything.  Ours starts at the head snapshot; and X = 0 read as a
 * token is the start of history. */
static void test_new_tenant_from_head(void **state) {
  env_t *e = *state;
  const char *T = "fresh";
  char *h = feed_head(e, T);
  assert_int_equal(our_x(h), 0); /* no transaction of the tenant yet */
  res_t r0;
  feed_read(e, T, h, NULL, 100, &r0);
  assert_int_equal(r0.nchanges, 0);
  assert_string_equal(r0.last, h); /* nothing new: after, unchanged */
  write_one(db, T, "n1", NULL);
  uint64_t n2 = write_one(db, T, "n2", NULL);
  char *h2 = feed_head(e, T); /* names the tenant's newest transaction */
  assert_int_equal(our_x(h2), n2);
  free(h2);
  uint64_t cr = 0, got[16];
  assert_int_equal(permify_poll(T, &cr, got, 16), 0);
  res_t r1, r2;
  char buf[256];
  feed_read(e, T, h, NULL, 100, &r1);
  assert_string_equal(labels(&r1, buf, sizeof buf), "n1 n2");
  feed_read(e, T, "AAAAAAAAAAA=", NULL, 100, &r2);
  assert_string_equal(labels(&r2, buf, sizeof buf), "n1 n2");
  write_one(db, T, "n3", NULL);
  assert_int_equal(permify_poll(T, &cr, got, 16), 0); /* still nothing: it hangs */
  res_t r3;
  feed_read(e, T, r1.last, NULL, 100, &r3);
  assert_string_equal(labels(&r3, buf, sizeof buf), "n3");
  res_clear(&r0);
  res_clear(&r1);
  res_clear(&r2);
  res_clear(&r3);
  free(h);
}

/* Weakness 4: an open transaction on another tenant holds xmin back;
 * Permify's query (id < xmin) returns nothing until it ends. */
static void test_long_transaction_elsewhere(void **state) {
  env_t *e = *state;
  const char *T = "lr";
  PGconn *cl = connect_db();
  uint64_t cr = write_one(db, T, "l0", NULL), got[16];
  char *h = feed_head(e, T);
  w_begin(cl, "elsewhere", NULL); /* holds an xid: pins xmin */
  write_one(db, T, "l1", NULL);
  res_t r1, r2;
  char buf[256];
  feed_read(e, T, h, NULL, 100, &r1);
  assert_string_equal(labels(&r1, buf, sizeof buf), "l1");
  assert_int_equal(permify_poll(T, &cr, got, 16), 0);
  write_one(db, T, "l2", NULL);
  feed_read(e, T, r1.last, NULL, 100, &r2);
  assert_string_equal(labels(&r2, buf, sizeof buf), "l2");
  assert_int_equal(permify_poll(T, &cr, got, 16), 0);
  sql(cl, "ROLLBACK");
  assert_int_equal(permify_poll(T, &cr, got, 16), 2); /* only now */
  res_clear(&r1);
  res_clear(&r2);
  free(h);
  PQfinish(cl);
}

/* Weakness 5: 5,000 transactions written while nobody reads (every 10th changed
 * nothing, every 7th also sets an attribute: two changes), then a resume
 * from an old token with a small limit: pages stay bounded, every
 * transaction comes exactly once, in order.  Permify's poll returns all of
 * them in one unbounded result. */
static void test_resume_after_long_disconnection(void **state) {
  env_t *e = *state;
  const char *T = "resume";
  uint64_t cr = write_one(db, T, "r0", NULL);
  char *h = feed_head(e, T);
  uint64_t t0 = now_ms();
  sql(db,
      "DO $$ BEGIN FOR i IN 1..5000 LOOP"
      " INSERT INTO transactions (tenant_id) VALUES ('resume');"
      " IF i % 10 <> 0 THEN"
      "  INSERT INTO relation_tuples (entity_type, entity_id, relation, subject_type,"
      "   subject_id, subject_relation, tenant_id)"
      "   VALUES ('doc', 'r' || i, 'viewer', 'user', 'u', '', 'resume');"
      " END IF;"
      " IF i % 7 = 0 AND i % 10 <> 0 THEN"
      "  INSERT INTO attributes (entity_type, entity_id, attribute, value, tenant_id)"
      "   VALUES ('doc', 'r' || i, 'n', jsonb_build_object('i', i), 'resume');"
      " END IF;"
      " COMMIT; END LOOP; END $$");
  uint64_t t1 = now_ms();
  uint64_t *ids = malloc(6000 * sizeof *ids);
  uint64_t pcr = cr;
  uint64_t tp = now_ms();
  size_t np = permify_poll(T, &pcr, ids, 6000);
  uint64_t tp1 = now_ms();
  assert_int_equal(np, 5000);
  free(ids);
  /* Ours, limit 7. */
  char *at = strdup(h);
  size_t pages = 0, seen = 0, changes = 0;
  int expect = 1;
  uint64_t tf = now_ms();
  for (;;) {
    res_t r;
    feed_read(e, T, at, NULL, 7, &r);
    assert_int_equal(r.status, 0);
    pages++;
    /* whole transactions of at most 2 changes: at most limit + 1 */
    assert_true(r.nchanges <= 8);
    for (size_t i = 0; i < r.nmsgs; i++) {
      char l[64];
      label_of(&r.msgs[i], l, sizeof l);
      while (expect % 10 == 0) expect++;
      char want[32];
      snprintf(want, sizeof want, "r%d", expect);
      if (strcmp(l, want)) fail_msg("page %zu: got %s, want %s", pages, l, want);
      expect++;
      seen++;
    }
    changes += r.nchanges;
    int same = !strcmp(r.last, at);
    if (!same && r.nchanges < 7) {
      /* a short page is the last one with anything in it */
      free(at);
      at = strdup(r.last);
      res_clear(&r);
      feed_read(e, T, at, NULL, 7, &r);
      assert_int_equal(r.nchanges, 0);
      same = 1;
    }
    free(at);
    at = strdup(r.last);
    res_clear(&r);
    if (same) break;
  }
  uint64_t tf1 = now_ms();
  assert_int_equal(seen, 4500);
  assert_int_equal(changes, 4500 + 643);
  print_message("resume: 5000 transactions written in %" PRIu64
                " ms; Permify's poll returned"
                " %zu rows in one result in %" PRIu64 " ms; ours: %zu pages of limit 7 in %" PRIu64
                " ms\n",
                t1 - t0, np, tp1 - tp, pages, tf1 - tf);
  /* And in one go with a large limit: the same sequence. */
  static char all[65536];
  char *last;
  feed_read_all(e, T, h, 1000, all, sizeof all, &last);
  assert_int_equal(strncmp(all, "r1 r2 r3 r4 r5 r6 r7 r8 r9 r11 ", 31), 0);
  size_t words = 1;
  for (const char *p = all; *p; p++) words += *p == ' ';
  assert_int_equal(words, 4500);
  assert_string_equal(last, at);
  free(last);
  free(at);
  free(h);
}

/* ---- positions ---------------------------------------------------------------------- */

/* Resuming from each message's token of a page gives exactly the rest; upto
 * bounds a read and a complete one ends at upto. */
static void test_message_tokens_and_upto(void **state) {
  env_t *e = *state;
  const char *T = "mt";
  PGconn *ca = connect_db(), *cb = connect_db(), *cc = connect_db(), *ce = connect_db();
  char *h = feed_head(e, T);
  uint64_t a = w_begin(ca, T, NULL), b = w_begin(cb, T, NULL);
  uint64_t x = w_begin(ce, T, NULL), c = w_begin(cc, T, NULL);
  assert_true(a < b && b < x && x < c);
  w_tuple(ca, T, "a");
  w_tuple(cb, T, "b");
  w_tuple(cc, T, "c");
  w_commit(cc);
  w_commit(ce); /* changed nothing: passed over */
  w_commit(ca);
  w_commit(cb);
  res_t r;
  char buf[256];
  feed_read(e, T, h, NULL, 100, &r);
  assert_string_equal(labels(&r, buf, sizeof buf), "c a b");
  assert_string_equal(r.msgs[2].token, r.last); /* the last message ends at last */
  /* Each message's token names its own transaction. */
  assert_int_equal(our_x(r.msgs[0].token), c);
  assert_int_equal(our_x(r.msgs[1].token), a);
  assert_int_equal(our_x(r.msgs[2].token), b);
  /* Resuming from a message's token, or from the same position in our
   * former tc2 format, gives exactly the rest. */
  const char *rest[3] = {"a b", "b", ""};
  for (size_t j = 0; j < 3; j++) {
    res_t q, q2;
    feed_read(e, T, r.msgs[j].token, NULL, 100, &q);
    assert_string_equal(labels(&q, buf, sizeof buf), rest[j]);
    tc__pg_token_t t;
    char *err = NULL, tc2[256];
    assert_int_equal(tc__pg_token_parse(r.msgs[j].token, instance, &t, &err), 0);
    snprintf(tc2, sizeof tc2, "tc2:%s:%s", instance, t.snapshot);
    tc__pg_token_clear(&t);
    char *old = b64(tc2);
    feed_read(e, T, old, NULL, 100, &q2);
    assert_string_equal(labels(&q2, buf, sizeof buf), rest[j]);
    free(old);
    res_clear(&q);
    res_clear(&q2);
  }
  write_one(db, T, "d", NULL);
  /* upto a message token: up to that message, complete, last == upto. */
  res_t u1, u2, u3;
  feed_read(e, T, h, r.msgs[1].token, 100, &u1);
  assert_string_equal(labels(&u1, buf, sizeof buf), "c a");
  assert_string_equal(u1.last, r.msgs[1].token);
  assert_string_equal(u1.msgs[1].token, u1.last);
  feed_read(e, T, h, r.last, 100, &u2);
  assert_string_equal(labels(&u2, buf, sizeof buf), "c a b"); /* d is after upto */
  assert_string_equal(u2.last, r.last);
  feed_read(e, T, r.last, r.last, 100, &u3);
  assert_int_equal(u3.nchanges, 0);
  assert_string_equal(u3.last, r.last);
  /* upto with a page cut: limit 1 from c's token up to last: a, then b. */
  res_t p1, p2;
  feed_read(e, T, r.msgs[0].token, r.last, 1, &p1);
  assert_string_equal(labels(&p1, buf, sizeof buf), "a");
  assert_string_not_equal(p1.last, r.last);
  feed_read(e, T, p1.last, r.last, 1, &p2);
  assert_string_equal(labels(&p2, buf, sizeof buf), "b");
  res_t p3; /* the page was full: the empty transaction is still ahead */
  feed_read(e, T, p2.last, r.last, 1, &p3);
  assert_int_equal(p3.nchanges, 0);
  assert_string_equal(p3.last, r.last);
  res_clear(&p3);
  /* limit 1 from the head: one transaction a page, in xid order across pages. */
  char *last;
  feed_read_all(e, T, h, 1, buf, sizeof buf, &last);
  assert_string_equal(buf, "a b c d");
  free(last);
  res_clear(&r);
  res_clear(&u1);
  res_clear(&u2);
  res_clear(&u3);
  res_clear(&p1);
  res_clear(&p2);
  free(h);
  PQfinish(ca);
  PQfinish(cb);
  PQfinish(cc);
  PQfinish(ce);
}

/* docs/backend-postgres.md, "Tokens": transaction G takes
 * its xid before X, while X's snapshot is taken, and commits after X.  X's
 * Permify token (adjusted snapshot: xmax = X+1, G not listed) counts G as
 * seen; a feed resumed from it must still deliver G, exactly once, and not X. */
static void test_permify_token_gap_xid(void **state) {
  env_t *e = *state;
  const char *T = "gap";
  PGconn *cg = connect_db();
  write_one(db, T, "g0", NULL);
  uint64_t g = w_begin(cg, T, NULL);
  w_tuple(cg, T, "g");
  char *snap;
  uint64_t x = write_one(db, T, "x", &snap);
  tc__pg_snap_t s;
  assert_int_equal(tc__pg_snap_parse(snap, &s), 0);
  assert_true(g >= s.xmax && g < x); /* G is in the gap */
  tc__pg_snap_clear(&s);
  char *tok = tc__pg_token_permify(x, snap);
  tc__pg_token_t t;
  char *err = NULL;
  assert_int_equal(tc__pg_token_parse(tok, instance, &t, &err), 0);
  char gx[24];
  snprintf(gx, sizeof gx, "%" PRIu64, g);
  const char *v[2] = {gx, t.snapshot};
  char *vis = sql1(db, "SELECT pg_visible_in_snapshot($1::xid8, $2::pg_snapshot)", 2, v);
  assert_string_equal(vis, "t"); /* the hazard: the adjusted snapshot has "seen" G */
  free(vis);
  tc__pg_token_clear(&t);
  w_commit(cg);
  res_t r1, r2;
  char buf[256];
  feed_read(e, T, tok, NULL, 100, &r1);
  assert_string_equal(labels(&r1, buf, sizeof buf), "g");
  char *legacy = tc__pg_token_permify(x, NULL); /* Permify's legacy format of X */
  feed_read(e, T, legacy, NULL, 100, &r2);
  assert_string_equal(labels(&r2, buf, sizeof buf), "g");
  res_t r3;
  feed_read(e, T, r1.last, NULL, 100, &r3);
  assert_int_equal(r3.nchanges, 0);
  /* Up to the write ack itself (Watch's initial state pins S so): nothing
   * read, and `last` the exact position, X visible and G not: rows read at
   * it leave out G, which a feed from it then sends once. */
  res_t r4, r5;
  feed_read(e, T, tok, tok, 100, &r4);
  assert_int_equal(r4.status, 0);
  assert_int_equal(r4.nchanges, 0);
  assert_string_not_equal(r4.last, tok);
  assert_int_equal(our_x(r4.last), x);
  assert_int_equal(tc__pg_token_parse(r4.last, instance, &t, &err), 0);
  const char *v4[2] = {gx, t.snapshot};
  vis = sql1(db, "SELECT pg_visible_in_snapshot($1::xid8, $2::pg_snapshot)", 2, v4);
  assert_string_equal(vis, "f");
  free(vis);
  tc__pg_token_clear(&t);
  feed_read(e, T, r4.last, NULL, 100, &r5);
  assert_string_equal(labels(&r5, buf, sizeof buf), "g");
  res_clear(&r4);
  res_clear(&r5);
  res_clear(&r1);
  res_clear(&r2);
  res_clear(&r3);
  free(legacy);
  free(tok);
  free(snap);
  PQfinish(cg);
}

/* OUT_OF_RANGE: the token's transaction was collected; the tenant's GC
 * horizon is past the position. */
static void test_out_of_range(void **state) {
  env_t *e = *state;
  const char *T = "oor";
  char *h = feed_head(e, T), *s1, *s2;
  uint64_t x1 = write_one(db, T, "o1", &s1);
  uint64_t x2 = write_one(db, T, "o2", &s2);
  char *t1 = tc__pg_token_permify(x1, s1), *l1 = tc__pg_token_permify(x1, NULL);
  char *t2 = tc__pg_token_permify(x2, s2);
  res_t r;
  char buf[64];
  feed_read(e, T, t1, NULL, 100, &r);
  assert_string_equal(labels(&r, buf, sizeof buf), "o2");
  res_clear(&r);
  feed_read(e, T, t1, t2, 100, &r); /* both Permify tokens: two look-ups in one unit */
  assert_string_equal(labels(&r, buf, sizeof buf), "o2");
  /* X2's position, as the feed names it: ours, not the write ack's string. */
  assert_int_equal(our_x(r.last), x2);
  res_clear(&r);
  char xs[24];
  snprintf(xs, sizeof xs, "%" PRIu64, x1);
  const char *v[1] = {xs};
  PQclear(sqlp(db, "DELETE FROM transactions WHERE id = $1::xid8", 1, v));
  const char *gone[2] = {t1, l1};
  for (int i = 0; i < 2; i++) {
    feed_read(e, T, gone[i], NULL, 100, &r);
    assert_int_equal(r.status, TC_EOUT_OF_RANGE);
    assert_string_equal(r.last, gone[i]);
    res_clear(&r);
    feed_read(e, T, h, gone[i], 100, &r); /* as upto too */
    assert_int_equal(r.status, TC_EOUT_OF_RANGE);
    res_clear(&r);
  }
  /* The horizon: positions before it are out of range, later ones are not. */
  snprintf(xs, sizeof xs, "%" PRIu64, x2);
  PQclear(sqlp(db, "INSERT INTO tuplecast_gc (tenant_id, horizon) VALUES ('oor', $1::xid8)", 1, v));
  const char *old[2] = {h, "AAAAAAAAAAA="};
  for (int i = 0; i < 2; i++) {
    feed_read(e, T, old[i], NULL, 100, &r);
    assert_int_equal(r.status, TC_EOUT_OF_RANGE);
    res_clear(&r);
  }
  write_one(db, T, "o3", NULL);
  feed_read(e, T, t2, NULL, 100, &r); /* X2's position: xmin > X2 */
  assert_int_equal(r.status, 0);
  assert_string_equal(labels(&r, buf, sizeof buf), "o3");
  res_clear(&r);
  char *h2 = feed_head(e, T);
  feed_read(e, T, h2, NULL, 100, &r);
  assert_int_equal(r.status, 0);
  res_clear(&r);
  free(h);
  free(h2);
  free(s1);
  free(s2);
  free(t1);
  free(t2);
  free(l1);
}

/* The changes of one transaction, in order: tuple DELETEs, attribute DELETEs,
 * tuple CREATEs, attribute CREATEs, each by row id; a row created and
 * expired by the same transaction is one DELETE; attribute values come
 * through host->any_from_json; a transaction larger than limit comes whole. */
static void test_change_shapes(void **state) {
  env_t *e = *state;
  const char *T = "shape";
  write_one(db, T, "s0", NULL);
  w_begin(db, T, NULL);
  w_tuple(db, T, "old");
  sql(db,
      "INSERT INTO attributes (entity_type, entity_id, attribute, value, tenant_id) VALUES"
      " ('doc', 'old', 'public', '{\"@type\":\"type.googleapis.com/base.v1.BooleanValue\","
      "\"data\":true}', 'shape')");
  w_commit(db);
  char *h = feed_head(e, T);
  w_begin(db, T, NULL);
  w_tuple(db, T, "new1");
  sql(db,
      "UPDATE relation_tuples SET expired_tx_id = pg_current_xact_id() WHERE tenant_id ="
      " 'shape' AND entity_id = 'old' AND expired_tx_id = '9223372036854775807'::xid8");
  sql(db,
      "UPDATE attributes SET expired_tx_id = pg_current_xact_id() WHERE tenant_id ="
      " 'shape' AND entity_id = 'old' AND expired_tx_id = '9223372036854775807'::xid8");
  sql(db,
      "INSERT INTO attributes (entity_type, entity_id, attribute, value, tenant_id) VALUES"
      " ('doc', 'old', 'public', '{\"@type\":\"type.googleapis.com/base.v1.BooleanValue\"}',"
      " 'shape')");
  w_tuple(db, T, "brief");
  sql(db,
      "UPDATE relation_tuples SET expired_tx_id = pg_current_xact_id() WHERE tenant_id ="
      " 'shape' AND entity_id = 'brief'");
  w_tuple(db, T, "new2");
  w_commit(db);
  res_t r;
  feed_read(e, T, h, NULL, 100, &r);
  assert_int_equal(r.nmsgs, 1);
  assert_string_equal(
      r.msgs[0].text,
      "-doc:old#viewer@user:u -doc:brief#viewer@user:u"
      " -doc:old$public={\"data\": true, \"@type\": \"type.googleapis.com/base.v1.BooleanValue\"}"
      " +doc:new1#viewer@user:u +doc:new2#viewer@user:u"
      " +doc:old$public={\"@type\": \"type.googleapis.com/base.v1.BooleanValue\"}");
  res_clear(&r);
  /* A transaction of 30 changes with limit 10: whole; then the next one. */
  char *h2 = feed_head(e, T);
  sql(db,
      "BEGIN; INSERT INTO transactions (tenant_id) VALUES ('shape');"
      " INSERT INTO relation_tuples (entity_type, entity_id, relation, subject_type,"
      "  subject_id, subject_relation, tenant_id)"
      "  SELECT 'doc', 'big' || i, 'viewer', 'user', 'u', '', 'shape'"
      "  FROM generate_series(1, 30) i; COMMIT");
  write_one(db, T, "after", NULL);
  feed_read(e, T, h2, NULL, 10, &r);
  assert_int_equal(r.nchanges, 30);
  assert_int_equal(r.nmsgs, 1);
  res_t r2;
  char buf[64];
  feed_read(e, T, r.last, NULL, 10, &r2);
  assert_string_equal(labels(&r2, buf, sizeof buf), "after");
  res_clear(&r);
  res_clear(&r2);
  free(h);
  free(h2);
}

/* Limit counts changes: several small transactions fill a page of whole
 * transactions; pages of empty transactions do not end a read early. */
static void test_limit_and_empty_transactions(void **state) {
  env_t *e = *state;
  const char *T = "lim";
  char *h = feed_head(e, T);
  for (int i = 0; i < 25; i++) write_one(db, T, NULL, NULL); /* empty */
  sql(db,
      "BEGIN; INSERT INTO transactions (tenant_id) VALUES ('lim');"
      " INSERT INTO relation_tuples (entity_type, entity_id, relation, subject_type,"
      "  subject_id, subject_relation, tenant_id)"
      "  SELECT 'doc', 'k' || i, 'viewer', 'user', 'u', '', 'lim'"
      "  FROM generate_series(1, 3) i; COMMIT");
  write_one(db, T, "m", NULL);
  write_one(db, T, "n", NULL);
  res_t r, r2, r3;
  char buf[64];
  /* limit 4: the 25 empty ones are passed over, then k (3 changes) and m
   * fill the page */
  feed_read(e, T, h, NULL, 4, &r);
  assert_string_equal(labels(&r, buf, sizeof buf), "k1 m");
  assert_int_equal(r.nchanges, 4);
  feed_read(e, T, r.last, NULL, 4, &r2);
  assert_string_equal(labels(&r2, buf, sizeof buf), "n");
  feed_read(e, T, r2.last, NULL, 4, &r3);
  assert_int_equal(r3.nchanges, 0);
  assert_string_equal(r3.last, r2.last);
  /* only empty transactions after a position: nothing is returned, so last
   * is `after` (the ABI); a later change comes once */
  for (int i = 0; i < 3; i++) write_one(db, T, NULL, NULL);
  res_t r4, r5;
  feed_read(e, T, r2.last, NULL, 4, &r4);
  assert_int_equal(r4.nchanges, 0);
  assert_string_equal(r4.last, r2.last);
  write_one(db, T, "o", NULL);
  feed_read(e, T, r4.last, NULL, 4, &r5);
  assert_string_equal(labels(&r5, buf, sizeof buf), "o");
  res_clear(&r);
  res_clear(&r2);
  res_clear(&r3);
  res_clear(&r4);
  res_clear(&r5);
  free(h);
}

/* Three tuples a1..a3 written by the open transaction on c. */
static void w_three(PGconn *c, const char *tenant) {
  for (int i = 1; i <= 3; i++) {
    char l[8];
    snprintf(l, sizeof l, "a%d", i);
    w_tuple(c, tenant, l);
  }
}

/* A range never spans xids the position has seen: with a (running at P)
 * and c found, b between them was delivered already; its row in the page
 * would cut it and pass over c (delivered in commit order: c, a). */
static void test_range_below_position(void **state) {
  env_t *e = *state;
  const char *T = "rbp";
  PGconn *ca = connect_db();
  char *h = feed_head(e, T);
  uint64_t a = w_begin(ca, T, NULL);
  w_tuple(ca, T, "a");
  uint64_t b = write_one(db, T, "b", NULL);
  res_t r1, r2;
  char buf[64];
  feed_read(e, T, h, NULL, 2, &r1);
  assert_string_equal(labels(&r1, buf, sizeof buf), "b");
  uint64_t c = write_one(db, T, "c", NULL);
  w_commit(ca);
  assert_true(a < b && b < c);
  feed_read(e, T, r1.last, NULL, 2, &r2);
  assert_string_equal(labels(&r2, buf, sizeof buf), "c a");
  res_clear(&r1);
  res_clear(&r2);
  free(h);
  PQfinish(ca);
}

/* A range never spans a transaction running at U: x and y are found
 * (visible in U), a between them committed after U was taken. */
static void test_range_around_upto(void **state) {
  env_t *e = *state;
  const char *T = "rau";
  PGconn *ca = connect_db();
  char *h = feed_head(e, T);
  uint64_t x = write_one(db, T, "x", NULL), a = w_begin(ca, T, NULL);
  w_three(ca, T);
  uint64_t y = write_one(db, T, "y", NULL);
  assert_true(x < a && a < y);
  char *u = feed_head(e, T);
  w_commit(ca);
  res_t r;
  char buf[64];
  feed_read(e, T, h, u, 2, &r);
  assert_int_equal(r.status, 0);
  assert_string_equal(labels(&r, buf, sizeof buf), "x y");
  res_clear(&r);
  free(u);
  free(h);
  PQfinish(ca);
}

/* Runs the loop until the one-value query cond gives "t"; 1 if it did. */
static int run_until_sql(env_t *e, const char *cond, uint64_t ms) {
  uint64_t end = now_ms() + ms;
  while (now_ms() < end) {
    run_for(&e->loop, 5);
    char *v = sql1(db, cond, 0, NULL);
    int yes = !strcmp(v, "t");
    free(v);
    if (yes) return 1;
  }
  return 0;
}

/* A page is one statement, whose snapshot is C: a transaction that commits
 * while the statement waits for a lock (of the attributes table, held
 * here) is read whole in this page or in a later one, never in part, and
 * every transaction comes once. */
static void test_commit_while_page_waits(void **state) {
  env_t *e = *state;
  const char *T = "rng";
  PGconn *cx = connect_db(), *ca = connect_db(), *cy = connect_db(), *cl = connect_db();
  char *h = feed_head(e, T);
  uint64_t x = w_begin(cx, T, NULL), a = w_begin(ca, T, NULL), y = w_begin(cy, T, NULL);
  assert_true(x < a && a < y);
  w_tuple(cx, T, "x");
  w_tuple(cy, T, "y");
  w_three(ca, T);
  w_commit(cx);
  w_commit(cy);
  sql(cl, "BEGIN");
  sql(cl, "LOCK TABLE attributes IN ACCESS EXCLUSIVE MODE");
  res_t r;
  memset(&r, 0, sizeof r);
  assert_int_equal(tc__pg_feed_read_changes(&e->ctx, T, h, NULL, 2, on_changes, &r), 0);
  assert_true(run_until_sql(e,
                            "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type ="
                            " 'Lock' AND query LIKE '%relation_tuples%' AND pid <> "
                            "pg_backend_pid()",
                            DEADLINE_MS));
  w_commit(ca);
  sql(cl, "ROLLBACK");
  assert_true(run_until(&e->loop, &r.done, DEADLINE_MS));
  assert_int_equal(r.status, 0);
  char buf[64], all[64], *last;
  labels(&r, buf, sizeof buf);
  feed_read_all(e, T, r.last, 2, all, sizeof all, &last);
  char both[160];
  snprintf(both, sizeof both, "%s | %s", buf, all);
  if (strcmp(both, "x a1 | y") && strcmp(both, "x y | a1")) fail_msg("pages: %s", both);
  assert_int_equal(r.nchanges, strcmp(buf, "x a1") ? 2 : 4);
  res_clear(&r);
  free(last);
  free(h);
  PQfinish(cx);
  PQfinish(ca);
  PQfinish(cy);
  PQfinish(cl);
}

/* ---- wake-ups ----------------------------------------------------------------------- */

typedef struct node_s {
  test_host_t host;
  tc__pg_wake_t *wake;
} node_t;

static void node_start(env_t *e, node_t *n, const char *id, unsigned interval) {
  host_init(&n->host, &e->loop);
  assert_int_equal(tc__pg_wake_start(&e->loop, &n->host.api, uri, e->pool, id, interval, &n->wake),
                   0);
}

static void node_stop(env_t *e, node_t *n) {
  int closed = 0;
  tc__pg_wake_close(n->wake, set_flag, &closed);
  assert_false(closed);
  assert_true(run_until(&e->loop, &closed, DEADLINE_MS));
}

/* Runs the loop until host->changed(tenant) or ms pass. */
static int wait_changed(env_t *e, test_host_t *h, const char *tenant, uint64_t ms) {
  h->want = tenant;
  h->hit = saw_changed(h, tenant);
  run_until(&e->loop, &h->hit, ms);
  h->want = NULL;
  return h->hit;
}

/* Starts nodes a and b (no safety polls) and has a write tenant t (and u,
 * then t again, if u) until b hears of t: LISTEN takes effect once b is
 * connected, and NOTIFYs before that are lost. */
static void nodes_listening(env_t *e, node_t *a, node_t *b, const char *t, const char *u) {
  node_start(e, a, "node-a", 3600000);
  node_start(e, b, "node-b", 3600000);
  int hit = 0;
  for (int i = 0; i < 200 && !hit; i++) {
    tc__pg_wake_written(a->wake, t);
    if (u) tc__pg_wake_written(a->wake, u);
    if (u) tc__pg_wake_written(a->wake, t);
    hit = wait_changed(e, &b->host, t, 100);
  }
  assert_true(hit);
}

/* A's tc__pg_wake_written reaches B's host->changed, not A's.  Also measures
 * wake-up latency and the feed read after it (logged, not asserted). */
static void test_wake_notify(void **state) {
  env_t *e = *state;
  node_t a, b;
  nodes_listening(e, &a, &b, "tw", "tw2");
  assert_true(wait_changed(e, &b.host, "tw2", 1000));
  run_for(&e->loop, 200);
  assert_false(saw_changed(&a.host, "tw"));
  assert_false(saw_changed(&a.host, "tw2"));
  /* 300 tenants of 70 bytes: more than one payload's worth, all arrive. */
  b.host.nchanged = 0;
  char names[300][80];
  for (int i = 0; i < 300; i++) {
    snprintf(names[i], sizeof names[i], "t%03d-%066d", i, 0);
    tc__pg_wake_written(a.wake, names[i]);
  }
  assert_true(wait_changed(e, &b.host, names[299], 5000));
  run_for(&e->loop, 100);
  assert_int_equal(b.host.nchanged, 300);
  for (int i = 0; i < 300; i++) assert_true(saw_changed(&b.host, names[i]));
  /* B's writes reach A. */
  tc__pg_wake_written(b.wake, "tb");
  assert_true(wait_changed(e, &a.host, "tb", 5000));
  /* Latency: commit -> B's changed -> feed rows in hand. */
  const char *T = "lat";
  char *at = feed_head(e, T);
  enum { N = 200 };
  uint64_t wake[N], feed[N];
  for (int i = 0; i < N; i++) {
    b.host.nchanged = 0;
    char l[16];
    snprintf(l, sizeof l, "l%d", i);
    write_one(db, T, l, NULL);
    uint64_t t0 = uv_hrtime();
    tc__pg_wake_written(a.wake, T);
    assert_true(wait_changed(e, &b.host, T, 5000));
    uint64_t t1 = uv_hrtime();
    res_t r;
    feed_read(e, T, at, NULL, 100, &r);
    uint64_t t2 = uv_hrtime();
    assert_int_equal(r.nmsgs, 1);
    free(at);
    at = strdup(r.last);
    res_clear(&r);
    wake[i] = (t1 - t0) / 1000;
    feed[i] = (t2 - t1) / 1000;
  }
  qsort(wake, N, sizeof *wake, tc__pg_xid_cmp);
  qsort(feed, N, sizeof *feed, tc__pg_xid_cmp);
  print_message("latency over %d writes: NOTIFY after commit -> other node's changed: p50 %" PRIu64
                " us, p99 %" PRIu64 " us; changed -> feed rows in hand: p50 %" PRIu64
                " us, p99 %" PRIu64 " us\n",
                N, wake[N / 2], wake[N * 99 / 100], feed[N / 2], feed[N * 99 / 100]);
  free(at);
  node_stop(e, &a);
  node_stop(e, &b);
}

static void write_each_turn(uv_idle_t *h) { tc__pg_wake_written(h->data, "gap"); }

/* NOTIFY units start at least 2 ms apart (NOTIFY_GAP_MS) however often
 * writes commit: a write on every loop turn for 300 ms reaches the other
 * node in at most 300 / 2 + 1 notifications (one unit in flight at a time
 * alone let one go out per round trip: hundreds here), and a write after
 * them is heard too. */
static void test_wake_notify_gap(void **state) {
  env_t *e = *state;
  node_t a, b;
  nodes_listening(e, &a, &b, "gap", NULL);
  run_for(&e->loop, 50);
  b.host.nchanged = 0;
  uv_idle_t idle;
  uv_idle_init(&e->loop, &idle);
  idle.data = a.wake;
  uv_idle_start(&idle, write_each_turn);
  run_for(&e->loop, 300);
  uv_close((uv_handle_t *)&idle, NULL);
  size_t heard = b.host.nchanged;
  tc__pg_wake_written(a.wake, "gap-end");
  assert_true(wait_changed(e, &b.host, "gap-end", 5000));
  print_message("a write every loop turn for 300 ms: %zu notifications\n", heard);
  assert_true(heard >= 2);
  assert_true(heard <= 300 / 2 + 1);
  node_stop(e, &a);
  node_stop(e, &b);
}

/* tc__pg_wake_close sends what is pending before it closes the NOTIFY
 * connection: a tenant written while a NOTIFY is in flight (after that one
 * is answered), and one written just before the close (its unit is still
 * queued when the close comes).  B polls only hourly: only the NOTIFYs can
 * tell it.  Closing the pool at once lost both (it fails queued units). */
static void test_wake_close_sends_pending(void **state) {
  env_t *e = *state;
  node_t a, a2, b;
  nodes_listening(e, &a, &b, "cl", NULL);
  run_for(&e->loop, 50); /* past the gap */
  tc__pg_wake_written(a.wake, "cl-inflight");
  uv_run(&e->loop, UV_RUN_NOWAIT); /* its zero timer: the NOTIFY is sent */
  tc__pg_wake_written(a.wake, "cl-meanwhile");
  node_stop(e, &a);
  node_start(e, &a2, "node-a2", 3600000);
  tc__pg_wake_written(a2.wake, "cl-at-close"); /* no loop turn before the close */
  node_stop(e, &a2);
  int inflight = wait_changed(e, &b.host, "cl-inflight", 5000);
  int meanwhile = wait_changed(e, &b.host, "cl-meanwhile", 5000);
  int at_close = wait_changed(e, &b.host, "cl-at-close", 5000);
  node_stop(e, &b);
  assert_true(inflight);
  assert_true(meanwhile);
  assert_true(at_close);
}

/* A write with plain SQL (no NOTIFY) is found by the safety poll. */
static void test_wake_safety_poll(void **state) {
  env_t *e = *state;
  node_t b;
  node_start(e, &b, "node-b", 50);
  run_for(&e->loop, 300); /* the first poll takes the cursor */
  assert_false(saw_changed(&b.host, "tp"));
  write_one(db, "tp", "p1", NULL);
  assert_true(wait_changed(e, &b.host, "tp", 5000));
  b.host.nchanged = 0;
  run_for(&e->loop, 200);
  assert_false(saw_changed(&b.host, "tp")); /* reported once, not every poll */
  node_stop(e, &b);
}

/* The poll hands a tenant to changed() only for transactions that are not
 * this node's own (tc__pg_wake_local): a write through the node woke its
 * tenant's feeds in-process, and a second read would find nothing. */
static void test_wake_poll_skips_local(void **state) {
  env_t *e = *state;
  node_t b;
  node_start(e, &b, "node-b", 50);
  run_for(&e->loop, 300); /* the first poll takes the cursor */
  /* Recorded before the commit: no poll can see them first. */
  for (int i = 0; i < 20; i++) {
    tc__pg_wake_local(b.wake, w_begin(db, "tl", NULL));
    w_commit(db);
  }
  write_one(db, "tf", NULL, NULL); /* another writer's: after the poll that finds it, */
  int found = wait_changed(e, &b.host, "tf", 5000);
  run_for(&e->loop, 150); /* and a few more polls, */
  int woke_ours = saw_changed(&b.host, "tl");
  /* Ours and another's on one tenant: woken. */
  tc__pg_wake_local(b.wake, w_begin(db, "tm", NULL));
  w_commit(db);
  write_one(db, "tm", NULL, NULL);
  int mixed = wait_changed(e, &b.host, "tm", 5000);
  node_stop(e, &b); /* before asserting: its timer would keep the loop running */
  assert_true(found);
  assert_false(woke_ours); /* ours woke nothing */
  assert_true(mixed);
}

/* The record of this node's transactions holds at most 65,536 (LOCAL_MAX):
 * past that a write of ours is not recorded and the poll wakes its tenant
 * (too often, never too seldom).  Filled here with xids far above any the
 * database hands out, which no cursor passes. */
static void test_wake_local_full(void **state) {
  env_t *e = *state;
  node_t b;
  node_start(e, &b, "node-b", 50);
  run_for(&e->loop, 300); /* the first poll takes the cursor */
  for (uint64_t i = 0; i < 65536; i++) tc__pg_wake_local(b.wake, UINT64_MAX / 2 + i);
  tc__pg_wake_local(b.wake, w_begin(db, "tcap", NULL));
  w_commit(db);
  int woke = wait_changed(e, &b.host, "tcap", 5000);
  node_stop(e, &b);
  assert_true(woke);
}

/* 2,000 heads asked for at once, on a pool of one connection whose queue
 * gives up after 300 ms: all are answered (as few statements, over an array
 * of tenants), each as a head read alone answers it.  One statement per
 * head, the later ones waited past the 300 ms and failed UNAVAILABLE. */
static void test_heads_batched(void **state) {
  env_t *e = *state;
  enum { N = 2000, EVERY = 100 };
  tc__pg_pool_opts_t o = {.conninfo = uri,
                          .size = 1,
                          .depth = 1,
                          .queue_timeout_ms = 300,
                          .name = "heads",
                          .log = hlog};
  tc__pg_pool_t *pool;
  assert_int_equal(tc__pg_pool_create(&e->loop, &o, &pool), 0);
  tc__pg_feed_ctx_t ctx = {
      .pool = pool, .host = &e->host.api, .instance_id = instance, .stats = &e->stats};
  static char names[N][16];
  uint64_t want[N] = {0};
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "hb%04d", i);
    if (i % EVERY == 0) want[i] = write_one(db, names[i], NULL, NULL);
  }
  head_t warm = {0}, *h = calloc(N, sizeof *h);
  assert_int_equal(tc__pg_feed_head(&ctx, "hb-warm", on_head, &warm), 0); /* connected */
  assert_true(run_until(&e->loop, &warm.done, DEADLINE_MS));
  assert_int_equal(warm.status, 0);
  for (int i = 0; i < N; i++) assert_int_equal(tc__pg_feed_head(&ctx, names[i], on_head, &h[i]), 0);
  int failed = 0, answered = 0;
  for (int i = 0; i < N; i++) {
    answered += run_until(&e->loop, &h[i].done, DEADLINE_MS);
    if (h[i].status) failed++;
  }
  int closed = 0; /* before asserting: the pool would keep the loop running */
  tc__pg_pool_close(pool, set_flag, &closed);
  assert_true(run_until(&e->loop, &closed, DEADLINE_MS));
  assert_int_equal(answered, N);
  assert_int_equal(failed, 0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(our_x(h[i].token), want[i]);
    if (i % EVERY == 0) { /* nothing committed since: the same string */
      char *alone = feed_head(e, names[i]);
      assert_string_equal(h[i].token, alone);
      free(alone);
    }
    free(h[i].token);
  }
  free(h);
  free(warm.token);
}

static void count_head(void *arg, int status, const char *token) {
  head_t *h = arg;
  (void)token;
  h->done++;
  h->status = status;
}

/* The pool closes with one head statement sent and more heads than one
 * statement takes (4,096) queued behind it: the statement fails, and every
 * head is answered once with the error, those queued too (their statements
 * cannot be sent); nothing is left behind (ASan). */
static void test_heads_fail_on_close(void **state) {
  env_t *e = *state;
  enum { N = 4096 + 2 };
  tc__pg_pool_opts_t o = {.conninfo = uri, .size = 1, .depth = 1, .name = "heads", .log = hlog};
  tc__pg_pool_t *pool;
  assert_int_equal(tc__pg_pool_create(&e->loop, &o, &pool), 0);
  tc__pg_feed_ctx_t ctx = {
      .pool = pool, .host = &e->host.api, .instance_id = instance, .stats = &e->stats};
  head_t *h = calloc(N, sizeof *h);
  for (int i = 0; i < N; i++) {
    char name[16];
    snprintf(name, sizeof name, "hf%04d", i);
    assert_int_equal(tc__pg_feed_head(&ctx, name, count_head, &h[i]), 0);
  }
  int closed = 0, once = 0, failed = 0;
  tc__pg_pool_close(pool, set_flag, &closed);
  assert_true(run_until(&e->loop, &closed, DEADLINE_MS));
  for (int i = 0; i < N; i++) {
    once += h[i].done == 1;
    failed += h[i].status != 0;
  }
  free(h);
  assert_int_equal(once, N);
  assert_int_equal(failed, N);
}

/* After a server restart the listener reconnects and its on_ready polls at
 * once: a write made while it was away is found without waiting for the
 * (here: hour-long) poll interval. */
static void test_wake_after_restart(void **state) {
  env_t *e = *state;
  node_t b;
  node_start(e, &b, "node-b", 3600000);
  run_for(&e->loop, 500); /* connected, LISTENing, first poll done */
  assert_int_equal(tc_pg_restart(pg), 0);
  PQfinish(db);
  db = connect_db();
  write_one(db, "tr", "r1", NULL);
  assert_true(wait_changed(e, &b.host, "tr", 20000));
  node_stop(e, &b);
}

/* ---- positions across a crash -------------------------------------------------------- */

/* Ends three transactions that take an id but leave no flushed WAL record: a
 * read-only one that asked for its id, and two aborted inserts.  Their commit
 * and abort records are flushed only by the WAL writer (every
 * wal_writer_delay, 10 s in the test below), so a crash before that loses
 * them and Postgres hands their ids out again.  Returns the largest. */
static uint64_t unflushed_ids(PGconn *c) {
  char *x = sql1(c, "SELECT pg_current_xact_id()::text", 0, NULL);
  uint64_t last = u64(x);
  free(x);
  for (int i = 0; i < 2; i++) {
    sql(c, "BEGIN");
    sql(c, "INSERT INTO tenants (id, name) VALUES ('crash-aborted', 'x')");
    x = sql1(c, "SELECT pg_current_xact_id()::text", 0, NULL);
    last = u64(x);
    free(x);
    sql(c, "ROLLBACK");
  }
  return last;
}

/* read_changes from `from` until it answers (the pool reconnects after the
 * crash: a read sent while it is down may fail with UNAVAILABLE), for
 * DEADLINE_MS at most; r->status tells. */
static void read_retrying(env_t *e, const char *tenant, const char *from, res_t *r) {
  uint64_t end = now_ms() + DEADLINE_MS;
  for (;;) {
    feed_read(e, tenant, from, NULL, 100, r);
    if (r->status == 0 || now_ms() > end) break;
    res_clear(r);
    run_for(&e->loop, 100);
  }
}

/* Every position the feed hands out (the head, a read's `last`, a write ack)
 * and the wake-up poll's cursor survive a crash of Postgres: ids whose
 * transactions ended without a flushed WAL record are assigned again after
 * `pg_ctl restart -m immediate`, and a position that counted them as done
 * would never deliver the new transaction that reuses one.  Failures are
 * collected in `err` and reported once the wake-up node is stopped (a
 * running node would keep the teardown's loop alive). */
static void test_positions_survive_crash(void **state) {
  env_t *e = *state;
  const char *T = "crash";
  char err[1024] = "";
  sql(db, "ALTER SYSTEM SET wal_writer_delay = '10s'");
  sql(db, "SELECT pg_reload_conf()");
  sql(db, "CHECKPOINT"); /* the next timed one is minutes away */
  PGconn *w = connect_db();
  sql(w, "SET synchronous_commit = on"); /* durable writes: the promise needs them */
  char *start = feed_head(e, T), *ack_snap = NULL;
  uint64_t a = write_one(w, T, "a", &ack_snap);
  char *ack = tc__pg_token_permify(a, ack_snap);
  res_t r;
  feed_read(e, T, start, NULL, 100, &r);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.nmsgs, 1);
  res_clear(&r);
  node_t b;
  node_start(e, &b, "node-b", 50);
  run_for(&e->loop, 300); /* the poll's first cursor */
  uint64_t lost = unflushed_ids(db);
  feed_read(e, T, start, NULL, 100, &r); /* its `last` is after the ids */
  char *after_a = r.status == 0 && r.nmsgs == 1 ? strdup(r.last) : NULL;
  res_clear(&r);
  char *head = feed_head(e, T);
  run_for(&e->loop, 300); /* the poll's cursor moves past the ids too */
  b.host.nchanged = 0;
  assert_int_equal(tc_pg_restart_mode(pg, "immediate"), 0);
  PQfinish(db);
  db = connect_db();
  PQfinish(w);
  w = connect_db();
  sql(w, "SET synchronous_commit = on");
  uint64_t again = write_one(w, T, "b", NULL);
  /* More ids, so the database is past every position taken before the crash
   * (else one counting the lost ids would read as "ahead of this database"). */
  for (uint64_t i = again; i <= lost; i++)
    free(sql1(db, "SELECT pg_current_xact_id()::text", 0, NULL));
  /* The premise: Postgres gave one of the lost ids to this write. */
  if (!after_a || again <= a || again > lost)
    snprintf(err, sizeof err,
             "premise: write after the crash got id %" PRIu64 ", not one of %" PRIu64 "..%" PRIu64
             "%s",
             again, a + 1, lost, after_a ? "" : "; the read before failed");
  const char *from[3] = {after_a, head, ack};
  const char *what[3] = {"a read's last", "the head", "the write ack"};
  int premise = !*err;
  for (int i = 0; i < 3 && premise; i++) {
    read_retrying(e, T, from[i], &r);
    char l[128];
    size_t len = strlen(err);
    if (r.status)
      snprintf(err + len, sizeof err - len, "from %s: read failed after the crash: %d; ", what[i],
               r.status);
    else if (r.nmsgs != 1 || strcmp(label_of(&r.msgs[0], l, sizeof l), "b"))
      snprintf(err + len, sizeof err - len,
               "from %s (taken before the crash): %zu messages, the write after it (id %" PRIu64
               ") %s; ",
               what[i], r.nmsgs, again, r.nmsgs ? "and more" : "lost");
    res_clear(&r);
  }
  if (premise && !wait_changed(e, &b.host, T, 5000))
    snprintf(err + strlen(err), sizeof err - strlen(err),
             "the wake-up poll missed the write after the crash (id %" PRIu64 ")", again);
  node_stop(e, &b);
  sql(db, "ALTER SYSTEM RESET wal_writer_delay");
  sql(db, "SELECT pg_reload_conf()");
  PQfinish(w);
  free(start);
  free(ack_snap);
  free(ack);
  free(after_a);
  free(head);
  if (*err) fail_msg("%s", err);
}

/* ---- main ---------------------------------------------------------------------------- */

static int setup_db(void **state) {
  (void)state;
  if (tc_pg_start(NULL, &pg)) return -1;
  uri = tc_pg_uri(pg);
  db = connect_db();
  int from, to;
  char *err = NULL;
  if (tc__pg_migrate_up(db, &from, &to, &err)) {
    fprintf(stderr, "migrate: %s\n", err);
    return -1;
  }
  char *id = sql1(db, "SELECT value FROM tuplecast_meta WHERE key = 'instance_id'", 0, NULL);
  snprintf(instance, sizeof instance, "%s", id);
  free(id);
  return 0;
}

static int teardown_db(void **state) {
  (void)state;
  PQfinish(db);
  tc_pg_stop(pg);
  return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_env, teardown_env)

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokens),
      T(test_feed_token_errors),
      T(test_tokens_ahead),
      T(test_commits_out_of_xid_order),
      T(test_equal_commit_timestamps),
      T(test_new_tenant_from_head),
      T(test_long_transaction_elsewhere),
      T(test_resume_after_long_disconnection),
      T(test_message_tokens_and_upto),
      T(test_permify_token_gap_xid),
      T(test_out_of_range),
      T(test_change_shapes),
      T(test_limit_and_empty_transactions),
      T(test_range_below_position),
      T(test_range_around_upto),
      T(test_commit_while_page_waits),
      T(test_wake_notify),
      T(test_wake_notify_gap),
      T(test_wake_close_sends_pending),
      T(test_wake_safety_poll),
      T(test_wake_poll_skips_local),
      T(test_wake_local_full),
      T(test_heads_batched),
      T(test_heads_fail_on_close),
      T(test_wake_after_restart),      /* restarts the server */
      T(test_positions_survive_crash), /* last: crashes the server */
  };
  /* TC_TEST_FILTER=<pattern>: run only the matching tests (cmocka's filter). */
  if (getenv("TC_TEST_FILTER")) cmocka_set_test_filter(getenv("TC_TEST_FILTER"));
  return cmocka_run_group_tests(tests, setup_db, teardown_db);
}
