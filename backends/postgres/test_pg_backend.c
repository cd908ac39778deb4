/* The PostgreSQL backend plugin against throwaway clusters: start-up checks,
 * migrations, a database laid out by Permify, writes (concurrent, batched,
 * attribute upserts, deletes), tenants, schemas, serialization retries,
 * connection loss and GC.
 *
 * The plugin is loaded with dlopen from $TUPLECAST_PG_PLUGIN, else from
 * backends/postgres.so beside this executable (the top of the build tree).
 * The host API is this file's: a loop, a log that keeps lines, and Any <->
 * protojson for BooleanValue and StringValue, enough for these tests.  Each
 * test works in its own database; waits run the loop with a deadline.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "log_lines.h"
#include "pg_fixture.h"
#include "tuplecast/backend.h"

#define DEADLINE_MS 60000
#define ANY_BOOL "type.googleapis.com/base.v1.BooleanValue"
#define ANY_STRING "type.googleapis.com/base.v1.StringValue"

static const tc_backend_api_t *api;
static tc_pg_t *pg;
static uv_loop_t loop;
static tc_host_api_t host;
static char logbuf[1 << 16]; /* every log line, for the retry test */
static size_t loglen;

/* ---- the host -------------------------------------------------------------- */

static tc_completion_t *posted_head, *posted_tail;
static uv_async_t post_async;

static void host_post(const tc_host_api_t *h, tc_completion_t *c) {
  (void)h;
  c->next = NULL;
  if (posted_tail)
    posted_tail->next = c;
  else
    posted_head = c;
  posted_tail = c;
  uv_async_send(&post_async);
}

static void on_posted(uv_async_t *a) {
  (void)a;
  while (posted_head) {
    tc_completion_t *c = posted_head;
    posted_head = c->next;
    if (!posted_head) posted_tail = NULL;
    c->run(c);
  }
}

static void log_sink(int level, const char *line) {
  if (loglen + strlen(line) + 2 < sizeof logbuf)
    loglen += (size_t)sprintf(logbuf + loglen, "%s\n", line);
  if (level >= TC_LOG_WARN) fprintf(stderr, "backend log: %s\n", line);
}

static uint64_t host_now_ms(void) { return uv_hrtime() / 1000000; }

static int changed_calls;
static void host_changed(const tc_host_api_t *h, const char *tenant) {
  (void)h;
  (void)tenant;
  changed_calls++;
}

/* A packed Any of BooleanValue{data} or StringValue{data}: the type url
 * (field 1) and the message (field 2); short strings only. */
static size_t pack_any(uint8_t *out, const char *type, const uint8_t *msg, size_t mlen) {
  size_t n = 0, tl = strlen(type);
  out[n++] = 0x0a;
  out[n++] = (uint8_t)tl;
  memcpy(out + n, type, tl);
  n += tl;
  out[n++] = 0x12;
  out[n++] = (uint8_t)mlen;
  memcpy(out + n, msg, mlen);
  return n + mlen;
}

static size_t any_bool(uint8_t *out, int v) {
  const uint8_t msg[] = {0x08, 0x01};
  return pack_any(out, ANY_BOOL, msg, v ? 2 : 0);
}

static size_t any_string(uint8_t *out, const char *s) {
  uint8_t msg[128];
  msg[0] = 0x0a;
  msg[1] = (uint8_t)strlen(s);
  memcpy(msg + 2, s, strlen(s));
  return pack_any(out, ANY_STRING, msg, strlen(s) ? strlen(s) + 2 : 0);
}

static int host_any_to_json(const uint8_t *any, size_t len, char **json) {
  if (len < 2 || any[0] != 0x0a) return TC_EINVAL;
  size_t tl = any[1];
  char type[128];
  snprintf(type, sizeof type, "%.*s", (int)tl, (const char *)any + 2);
  const uint8_t *msg = any + 2 + tl + 2;
  size_t mlen = 2 + tl < len ? any[3 + tl] : 0;
  char buf[512];
  if (!strcmp(type, ANY_BOOL))
    snprintf(buf, sizeof buf, "{\"@type\":\"%s\"%s}", type, mlen ? ",\"data\":true" : "");
  else if (!strcmp(type, ANY_STRING))
    snprintf(buf, sizeof buf, "{\"@type\":\"%s\",\"data\":\"%.*s\"}", type, mlen ? (int)msg[1] : 0,
             (const char *)msg + 2);
  else
    return TC_EINVAL;
  *json = strdup(buf);
  return 0;
}

/* Reads jsonb's rendering ({"data": true, "@type": "..."}), any key order. */
static int host_any_from_json(const char *json, uint8_t **any, size_t *len) {
  const char *t = strstr(json, "\"@type\""), *d = strstr(json, "\"data\"");
  if (!t) return TC_EINVAL;
  uint8_t buf[256];
  if (strstr(t, ANY_BOOL)) {
    *len = any_bool(buf, d && !strncmp(d + 6 + strspn(d + 6, " :"), "true", 4));
  } else if (strstr(t, ANY_STRING)) {
    char s[128] = "";
    if (d) sscanf(d + 6, " : \"%127[^\"]\"", s);
    *len = any_string(buf, s);
  } else {
    return TC_EINVAL;
  }
  *any = malloc(*len);
  memcpy(*any, buf, *len);
  return 0;
}

/* ---- loop helpers ----------------------------------------------------------- */

static uv_timer_t deadline;
static int timed_out;

static void on_deadline(uv_timer_t *t) {
  (void)t;
  timed_out = 1;
}

/* Runs the loop until *flag; fails the test after the deadline. */
static void wait_flag(const int *flag) {
  timed_out = 0;
  uv_timer_start(&deadline, on_deadline, DEADLINE_MS, 0);
  while (!*flag && !timed_out) uv_run(&loop, UV_RUN_ONCE);
  uv_timer_stop(&deadline);
  assert_true(*flag);
}

static void on_tick(uv_timer_t *t) { (void)t; } /* only wakes the loop */

/* Runs the loop until cond(arg) holds, checking every 50 ms; fails the test
 * after the deadline. */
static void wait_cond(int (*cond)(void *), void *arg) {
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + DEADLINE_MS;
  int ok;
  while (!(ok = cond(arg)) && uv_now(&loop) < end) {
    uv_timer_start(&tick, on_tick, 50, 0);
    uv_run(&loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_true(ok);
}

/* ---- SQL from the side --------------------------------------------------------- */

static PGconn *side(const char *uri) {
  PGconn *c = PQconnectdb(uri);
  if (PQstatus(c) != CONNECTION_OK) fail_msg("connect %s: %s", uri, PQerrorMessage(c));
  return c;
}

static PGresult *sql_on(PGconn *c, const char *q) {
  PGresult *r = PQexec(c, q);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", q, PQresultErrorMessage(r));
  return r;
}

static void sql(const char *uri, const char *q) {
  PGconn *c = side(uri);
  PQclear(sql_on(c, q));
  PQfinish(c);
}

/* The first value of the first row, as a malloc'd string. */
static char *sql_val(const char *uri, const char *q) {
  PGconn *c = side(uri);
  PGresult *r = sql_on(c, q);
  char *v = strdup(PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
  PQclear(r);
  PQfinish(c);
  return v;
}

static long sql_long(const char *uri, const char *q) {
  char *v = sql_val(uri, q);
  long n = atol(v);
  free(v);
  return n;
}

/* ---- backends ------------------------------------------------------------------ */

static int create_b(const char *uri, const char *const *options, tc_backend_t **b, char **err) {
  *b = NULL;
  *err = NULL;
  return api->create(&host, uri, options, b, err);
}

static tc_backend_t *open_b(const char *uri, const char *const *options) {
  tc_backend_t *b;
  char *err;
  int rc = create_b(uri, options, &b, &err);
  if (rc) fail_msg("create(%s): %d %s", uri, rc, err ? err : "");
  return b;
}

static void on_destroyed(void *arg) { *(int *)arg = 1; }

static void close_b(tc_backend_t *b) {
  int done = 0;
  api->destroy(b, on_destroyed, &done);
  assert_false(done);
  wait_flag(&done);
}

static const char *db(const char *name) {
  const char *u = tc_pg_uri_db(pg, name);
  assert_non_null(u);
  return u;
}

/* One call's outcome. */
typedef struct res_s {
  int done, status;
  char *token, *next_key, *head, *version, *text;
  tc_cursor_t next;
  size_t n;
  char rows[64][160];
  tc_tenant_row_t tenant;
} res_t;

static void res_clear(res_t *r) {
  free(r->token);
  free(r->next_key);
  free(r->head);
  free(r->version);
  free(r->text);
  free((char *)r->tenant.id);
  free((char *)r->tenant.name);
  memset(r, 0, sizeof *r);
}

static char *dup0(const char *s) { return s ? strdup(s) : NULL; }

static void on_write(void *arg, int status, const char *token) {
  res_t *r = arg;
  r->status = status;
  r->token = dup0(token);
  r->done = 1;
}

static void on_tuples(void *arg, int status, const tc_tuple_t *rows, size_t n, tc_cursor_t next) {
  res_t *r = arg;
  r->status = status;
  for (size_t i = 0; i < n; i++, r->n++)
    if (r->n < 64)
      snprintf(r->rows[r->n], sizeof r->rows[0], "%s:%s#%s@%s:%s%s%s", rows[i].entity_type,
               rows[i].entity_id, rows[i].relation, rows[i].subject_type, rows[i].subject_id,
               *rows[i].subject_relation ? "#" : "", rows[i].subject_relation);
  r->next = next;
  r->done = 1;
}

/* Changes as "+doc:1#viewer@user:u1" / "-..." (tuples) or "+doc:1$public" (attributes),
 * and a "|" row between transactions. */
static void on_changes(void *arg, int status, const tc_change_t *c, size_t n, const char *last) {
  (void)last;
  res_t *r = arg;
  r->status = status;
  for (size_t i = 0; i < n && r->n < 63; i++) {
    if (i && strcmp(c[i].token, c[i - 1].token) != 0) strcpy(r->rows[r->n++], "|");
    char op = c[i].op == TC_CHANGE_CREATE ? '+' : '-';
    if (c[i].tuple)
      snprintf(r->rows[r->n++], sizeof r->rows[0], "%c%s:%s#%s@%s:%s", op, c[i].tuple->entity_type,
               c[i].tuple->entity_id, c[i].tuple->relation, c[i].tuple->subject_type,
               c[i].tuple->subject_id);
    else
      snprintf(r->rows[r->n++], sizeof r->rows[0], "%c%s:%s$%s", op, c[i].attr->entity_type,
               c[i].attr->entity_id, c[i].attr->attribute);
  }
  r->done = 1;
}

static void on_attrs(void *arg, int status, const tc_attr_t *rows, size_t n, tc_cursor_t next) {
  res_t *r = arg;
  r->status = status;
  for (size_t i = 0; i < n && r->n < 64; i++, r->n++) {
    char *json = NULL;
    host_any_to_json(rows[i].value, rows[i].value_len, &json);
    snprintf(r->rows[r->n], sizeof r->rows[0], "%s:%s$%s=%s", rows[i].entity_type,
             rows[i].entity_id, rows[i].attribute, json ? json : "?");
    free(json);
  }
  r->next = next;
  r->done = 1;
}

static void on_tenant(void *arg, int status, const tc_tenant_row_t *row) {
  res_t *r = arg;
  r->status = status;
  if (row) r->tenant = (tc_tenant_row_t){strdup(row->id), strdup(row->name), row->created_at_ms};
  r->done = 1;
}

static void on_tenants(void *arg, int status, const tc_tenant_row_t *rows, size_t n,
                       const char *next) {
  res_t *r = arg;
  r->status = status;
  for (size_t i = 0; i < n && r->n < 64; i++, r->n++)
    snprintf(r->rows[r->n], sizeof r->rows[0], "%s=%s", rows[i].id, rows[i].name);
  r->next_key = dup0(next);
  r->done = 1;
}

static void on_status(void *arg, int status) {
  res_t *r = arg;
  r->status = status;
  r->done = 1;
}

static void on_schema(void *arg, int status, const char *version, const char *text) {
  res_t *r = arg;
  r->status = status;
  r->version = dup0(version);
  r->text = dup0(text);
  r->done = 1;
}

static void on_schemas(void *arg, int status, const char *head, const tc_schema_row_t *rows,
                       size_t n, const char *next) {
  res_t *r = arg;
  r->status = status;
  r->head = dup0(head);
  for (size_t i = 0; i < n && r->n < 64; i++, r->n++) {
    assert_true(rows[i].created_at_ms > 1600000000000LL);
    snprintf(r->rows[r->n], sizeof r->rows[0], "%s", rows[i].version);
  }
  r->next_key = dup0(next);
  r->done = 1;
}

/* Calls, checks the call was accepted and did not answer at once, waits. */
#define CALL(r, expr)            \
  do {                           \
    res_clear(r);                \
    assert_int_equal((expr), 0); \
    assert_false((r)->done);     \
    wait_flag(&(r)->done);       \
  } while (0)

static const tc_tuple_filter_t all_tuples;
static const tc_attr_filter_t all_attrs;

static tc_tuple_t tuple(const char *eid, const char *sid) {
  return (tc_tuple_t){"doc", eid, "viewer", "user", sid, ""};
}

static int write_tuples(tc_backend_t *b, res_t *r, const char *tenant, const tc_tuple_t *t,
                        size_t n) {
  tc_write_batch_t w = {.tenant_id = tenant, .tuples = t, .n_tuples = n};
  return api->write(b, &w, on_write, r);
}

/* ---- base64 and Permify tokens, written here independently of pg_token.c ---- */

static char *b64(const uint8_t *in, size_t n) {
  static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc(n / 3 * 4 + 8), *p = out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < n ? in[i + 2] : 0);
    *p++ = al[v >> 18 & 63];
    *p++ = al[v >> 12 & 63];
    *p++ = i + 1 < n ? al[v >> 6 & 63] : '=';
    *p++ = i + 2 < n ? al[v & 63] : '=';
  }
  *p = '\0';
  return out;
}

static size_t unb64(const char *in, uint8_t *out) {
  size_t n = 0;
  uint32_t v = 0;
  int bits = 0;
  for (; *in && *in != '='; in++) {
    const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(al, *in);
    assert_non_null(p);
    v = v << 6 | (uint32_t)(p - al);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (uint8_t)(v >> bits);
    }
  }
  out[n] = 0;
  return n;
}

/* Permify's write token for (x, stored snapshot "xmin:xmax:xips"). */
static char *permify_token(unsigned long long x, const char *snap) {
  unsigned long long xmin, xmax;
  char xips[512] = "";
  sscanf(snap, "%llu:%llu:%511s", &xmin, &xmax, xips);
  char list[600];
  /* xips empty in these tests' stored snapshots or sorted; insert x in order */
  unsigned long long v[64];
  int n = 0, placed = 0;
  for (char *s = strtok(xips, ","); s; s = strtok(NULL, ",")) v[n++] = strtoull(s, NULL, 10);
  size_t len = 0;
  list[0] = '\0';
  for (int i = 0; i <= n; i++) {
    if (!placed && (i == n || v[i] >= x)) {
      len += (size_t)sprintf(list + len, "%s%llu", len ? "," : "", x);
      placed = 1;
      if (i < n && v[i] == x) continue;
    }
    if (i < n) len += (size_t)sprintf(list + len, "%s%llu", len ? "," : "", v[i]);
  }
  if (x >= xmax) xmax = x + 1;
  if (x < xmin) xmin = x;
  char text[700];
  snprintf(text, sizeof text, "%llu:%llu:%llu:%s", x, xmin, xmax, list);
  return b64((const uint8_t *)text, strlen(text));
}

/* ---- start-up checks ------------------------------------------------------------- */

static void test_track_commit_timestamp_off(void **state) {
  (void)state;
  tc_pg_opts_t o = {.track_commit_timestamp = 0};
  tc_pg_t *off;
  assert_int_equal(tc_pg_start(&o, &off), 0);
  tc_backend_t *b;
  char *err;
  assert_int_equal(create_b(tc_pg_uri(off), NULL, &b, &err), TC_ECONFIG);
  assert_string_equal(err,
                      "track_commit_timestamp is off; Watch needs it: run ALTER SYSTEM SET "
                      "track_commit_timestamp = on and restart PostgreSQL (a reload is not "
                      "enough)");
  free(err);
  tc_pg_stop(off);
}

static void test_unreachable(void **state) {
  (void)state;
  tc_backend_t *b;
  char *err;
  const char *uri = "postgresql://me:secret@/tuplecast?host=/nonexistent-tuplecast&port=5999";
  assert_int_equal(create_b(uri, NULL, &b, &err), TC_ECONFIG);
  const char *want =
      "cannot connect to PostgreSQL "
      "(postgresql://me:***@/tuplecast?host=/nonexistent-tuplecast&port=5999): ";
  if (strncmp(err, want, strlen(want)) != 0) fail_msg("message: %s", err);
  assert_null(strstr(err, "secret"));
  assert_null(strchr(err, '\n'));
  assert_non_null(strstr(err, "/nonexistent-tuplecast/.s.PGSQL.5999"));
  free(err);
}

/* The uri of database name for another role. */
static char *uri_as(const char *uri, const char *role) {
  const char *u = strstr(uri, "user=");
  assert_non_null(u);
  char *out = malloc(strlen(uri) + strlen(role) + 8);
  sprintf(out, "%.*suser=%s%s", (int)(u - uri), uri, role, u + 5 + strcspn(u + 5, "&"));
  return out;
}

static void test_no_privileges(void **state) {
  (void)state;
  const char *uri = db("privs");
  close_b(open_b(uri, NULL)); /* migrated by the superuser */
  sql(uri, "DROP ROLE IF EXISTS lowly; CREATE ROLE lowly LOGIN");
  char *low = uri_as(uri, "lowly");
  tc_backend_t *b;
  char *err;
  assert_int_equal(create_b(low, NULL, &b, &err), TC_ECONFIG);
  assert_string_equal(err,
                      "role lowly lacks SELECT on table tuplecast_migrations: GRANT SELECT "
                      "ON tuplecast_migrations TO lowly");
  free(err);
  sql(uri, "GRANT SELECT ON tuplecast_migrations TO lowly");
  assert_int_equal(create_b(low, NULL, &b, &err), TC_ECONFIG);
  assert_string_equal(err,
                      "role lowly lacks SELECT on table tenants: GRANT SELECT, INSERT, "
                      "UPDATE, DELETE ON tenants TO lowly");
  free(err);
  /* Tables granted, sequences not: the next message names the sequence. */
  sql(uri, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO lowly");
  assert_int_equal(create_b(low, NULL, &b, &err), TC_ECONFIG);
  assert_string_equal(err,
                      "role lowly lacks USAGE on sequence public.relation_tuples_id_seq: "
                      "GRANT USAGE ON SEQUENCE public.relation_tuples_id_seq TO lowly");
  free(err);
  sql(uri, "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO lowly");
  close_b(open_b(low, NULL));
  /* An empty database needs CREATE for the migrations. */
  const char *empty = db("privs_empty");
  char *low_empty = uri_as(empty, "lowly");
  assert_int_equal(create_b(low_empty, NULL, &b, &err), TC_ECONFIG);
  assert_string_equal(err,
                      "role lowly lacks CREATE on schema public, which the migrations need: "
                      "GRANT CREATE ON SCHEMA public TO lowly, or run tuplecast migrate up as "
                      "the schema's owner and start with database.auto_migrate: false");
  free(err);
  free(low);
  free(low_empty);
}

static void test_not_migrated(void **state) {
  (void)state;
  const char *uri = db("unmigrated");
  const char *const opts[] = {"auto_migrate=false", NULL};
  tc_backend_t *b;
  char *err;
  assert_int_equal(create_b(uri, opts, &b, &err), TC_ECONFIG);
  assert_string_equal(err, "the database is at migration 0 of 3: run tuplecast migrate up");
  free(err);
  const char *const bad[] = {"pool_size=zero", NULL};
  assert_int_equal(create_b(uri, bad, &b, &err), TC_ECONFIG);
  assert_string_equal(err, "postgres option pool_size: bad value \"zero\"");
  free(err);
}

static void test_admin_migrate(void **state) {
  (void)state;
  const char *uri = db("admin");
  char *out;
  assert_int_equal(api->admin(uri, NULL, "migrate status", &out), 0);
  assert_non_null(strstr(out, "database at migration 0 of 3"));
  assert_non_null(strstr(out, "permify_layout"));
  assert_non_null(strstr(out, "pending"));
  free(out);
  assert_int_equal(api->admin(uri, NULL, "migrate up", &out), 0);
  assert_string_equal(out, "migrated the database from migration 0 to 3\n");
  free(out);
  assert_int_equal(api->admin(uri, NULL, "migrate up", &out), 0);
  assert_string_equal(out, "database already at migration 3 of 3, nothing to do\n");
  free(out);
  assert_int_equal(api->admin(uri, NULL, "migrate status", &out), 0);
  assert_non_null(strstr(out, "database at migration 3 of 3"));
  assert_null(strstr(out, "pending"));
  free(out);
  assert_int_equal(api->admin(uri, NULL, "migrate sideways", &out), TC_EINVAL);
  assert_non_null(strstr(out, "unknown command"));
  free(out);
  const char *const opts[] = {"auto_migrate=false", NULL};
  close_b(open_b(uri, opts));
  assert_int_equal(sql_long(uri, "SELECT count(*) FROM tenants WHERE id = 't1'"), 1);
}

/* ---- a database Permify made ---------------------------------------------------- */

/* Permify's goose migrations in order, as plain SQL (their net effect on an
 * empty database, with the goose table they leave). */
static const char permify_migrations[] =
    "CREATE TABLE migrations (id serial PRIMARY KEY, version_id bigint NOT NULL,"
    " is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS relation_tuples (id SERIAL NOT NULL,"
    " entity_type VARCHAR NOT NULL, entity_id VARCHAR NOT NULL, relation VARCHAR NOT NULL,"
    " subject_type VARCHAR NOT NULL, subject_id VARCHAR NOT NULL,"
    " subject_relation VARCHAR NOT NULL, created_tx_id xid8 DEFAULT (pg_current_xact_id()),"
    " expired_tx_id xid8 DEFAULT ('0'), CONSTRAINT pk_relation_tuple PRIMARY KEY (id),"
    " CONSTRAINT uq_relation_tuple UNIQUE (entity_type, entity_id, relation, subject_type,"
    "  subject_id, subject_relation, created_tx_id, expired_tx_id),"
    " CONSTRAINT uq_relation_tuple_not_expired UNIQUE (entity_type, entity_id, relation,"
    "  subject_type, subject_id, subject_relation, expired_tx_id));"
    "CREATE TABLE IF NOT EXISTS schema_definitions (entity_type VARCHAR NOT NULL,"
    " serialized_definition BYTEA NOT NULL, version CHAR(20) NOT NULL,"
    " CONSTRAINT pk_schema_definition PRIMARY KEY (entity_type, version));"
    "CREATE TABLE IF NOT EXISTS transactions (id xid8 DEFAULT (pg_current_xact_id()) NOT NULL,"
    " snapshot pg_snapshot DEFAULT (pg_current_snapshot()) NOT NULL,"
    " timestamp TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC') NOT NULL,"
    " CONSTRAINT pk_transaction PRIMARY KEY (id));"
    "CREATE INDEX IF NOT EXISTS idx_tuples_subject ON relation_tuples (subject_type, subject_id,"
    " subject_relation, entity_type, relation);"
    /* 20230117145140_multi_tenant */
    "CREATE TABLE IF NOT EXISTS tenants (id VARCHAR NOT NULL, name VARCHAR NOT NULL,"
    " created_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC') NOT NULL,"
    " CONSTRAINT pk_tenants PRIMARY KEY (id));"
    "INSERT INTO tenants (id, name) VALUES ('t1', 'example tenant');"
    "ALTER TABLE relation_tuples DROP CONSTRAINT IF EXISTS uq_relation_tuple,"
    " DROP CONSTRAINT IF EXISTS uq_relation_tuple_not_expired,"
    " ADD COLUMN IF NOT EXISTS tenant_id VARCHAR NOT NULL DEFAULT 't1',"
    " ADD CONSTRAINT uq_relation_tuple UNIQUE (tenant_id, entity_type, entity_id, relation,"
    "  subject_type, subject_id, subject_relation, created_tx_id, expired_tx_id),"
    " ADD CONSTRAINT uq_relation_tuple_not_expired UNIQUE (tenant_id, entity_type, entity_id,"
    "  relation, subject_type, subject_id, subject_relation, expired_tx_id);"
    "ALTER TABLE schema_definitions DROP CONSTRAINT IF EXISTS pk_schema_definition,"
    " ADD COLUMN IF NOT EXISTS tenant_id VARCHAR NOT NULL DEFAULT 't1',"
    " ADD CONSTRAINT pk_schema_definition PRIMARY KEY (tenant_id, entity_type, version);"
    "ALTER TABLE transactions ADD COLUMN IF NOT EXISTS tenant_id VARCHAR NOT NULL DEFAULT 't1';"
    /* 20230118185622_index_optimization */
    "DROP INDEX IF EXISTS idx_tuples_subject;"
    "CREATE INDEX IF NOT EXISTS idx_tuples_subject ON relation_tuples (tenant_id, subject_type,"
    " subject_id, subject_relation, entity_type, relation);"
    "CREATE INDEX IF NOT EXISTS idx_tuples_entity ON relation_tuples (tenant_id, entity_type,"
    " entity_id, relation);"
    /* 20230729145034_attributes */
    "CREATE TABLE IF NOT EXISTS attributes (id SERIAL NOT NULL, entity_type VARCHAR NOT NULL,"
    " entity_id VARCHAR NOT NULL, attribute VARCHAR NOT NULL, value jsonb NOT NULL,"
    " tenant_id VARCHAR NOT NULL, created_tx_id xid8 DEFAULT (pg_current_xact_id()),"
    " expired_tx_id xid8 DEFAULT ('0'), CONSTRAINT pk_attribute PRIMARY KEY (id),"
    " CONSTRAINT uq_attribute UNIQUE (tenant_id, entity_type, entity_id, attribute,"
    "  created_tx_id, expired_tx_id),"
    " CONSTRAINT uq_attribute_not_expired UNIQUE (tenant_id, entity_type, entity_id, attribute,"
    "  expired_tx_id));"
    "ALTER TABLE schema_definitions RENAME COLUMN entity_type TO name;"
    /* 20231122120124_bundles */
    "CREATE TABLE IF NOT EXISTS bundles (name VARCHAR NOT NULL, payload jsonb NOT NULL,"
    " tenant_id VARCHAR NOT NULL, created_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC') NOT NULL,"
    " CONSTRAINT pk_bundle PRIMARY KEY (name, tenant_id));"
    /* 20231126025945_new_index_optimization */
    "CREATE INDEX IF NOT EXISTS idx_attributes_tenant_created_tx ON attributes (tenant_id,"
    " created_tx_id);"
    "DROP INDEX IF EXISTS idx_tuples_entity;"
    /* 20231230174418_schema_version_index */
    "CREATE INDEX IF NOT EXISTS idx_schema_version ON schema_definitions (version);"
    /* 20241018182912_add_watch_indexes */
    "CREATE INDEX IF NOT EXISTS idx_attributes_txid ON attributes (tenant_id, created_tx_id,"
    " expired_tx_id);"
    "CREATE INDEX IF NOT EXISTS idx_relation_tuples_txid ON relation_tuples (tenant_id,"
    " created_tx_id, expired_tx_id);"
    /* 20250912101325_add_tenant_scoped_indexes */
    "CREATE INDEX IF NOT EXISTS idx_transactions_tenant_id ON transactions (tenant_id, id);"
    "CREATE INDEX IF NOT EXISTS idx_schema_tenant_version ON schema_definitions (tenant_id,"
    " version);"
    "DROP INDEX IF EXISTS idx_schema_version;"
    /* 20250913120000_fix_xid_wraparound */
    "UPDATE relation_tuples SET expired_tx_id = '9223372036854775807'::xid8"
    " WHERE expired_tx_id = '0'::xid8;"
    "UPDATE attributes SET expired_tx_id = '9223372036854775807'::xid8"
    " WHERE expired_tx_id = '0'::xid8;"
    "ALTER TABLE relation_tuples ALTER COLUMN expired_tx_id SET DEFAULT"
    " '9223372036854775807'::xid8;"
    "ALTER TABLE attributes ALTER COLUMN expired_tx_id SET DEFAULT '9223372036854775807'::xid8;";

/* The database's objects, to compare before and after our migrations. */
static const char layout_sql[] =
    "SELECT string_agg(x, E'\\n' ORDER BY x) FROM ("
    " SELECT conrelid::regclass || '.' || conname || ':' || pg_get_constraintdef(oid) AS x"
    "  FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
    "  AND conrelid::regclass::text NOT LIKE 'tuplecast%'"
    " UNION ALL SELECT indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'"
    "  AND indexname NOT LIKE 'tuplecast%' AND indexname NOT IN ('idx_tuples_expired_only',"
    "  'idx_attributes_expired_only')"
    " UNION ALL SELECT table_name || '.' || column_name || ':' || data_type || ':' ||"
    "  coalesce(column_default, '') FROM information_schema.columns"
    "  WHERE table_schema = 'public' AND table_name NOT LIKE 'tuplecast%') o";

static void test_permify_database(void **state) {
  (void)state;
  const char *uri = db("permify");
  sql(uri, permify_migrations);
  /* A Permify write: the transactions row, then rows created by it. */
  PGconn *c = side(uri);
  PQclear(sql_on(c,
                 "BEGIN;"
                 "INSERT INTO transactions (tenant_id) VALUES ('acme');"
                 "INSERT INTO relation_tuples (entity_type, entity_id, relation, subject_type,"
                 " subject_id, subject_relation, created_tx_id, tenant_id) VALUES"
                 " ('doc', '1', 'viewer', 'user', 'u1', '', pg_current_xact_id(), 'acme'),"
                 " ('doc', '1', 'parent', 'folder', 'f', '...', pg_current_xact_id(), 'acme');"
                 "INSERT INTO attributes (entity_type, entity_id, attribute, value, tenant_id,"
                 " created_tx_id) VALUES ('doc', '1', 'public', '{\"@type\":"
                 "\"type.googleapis.com/base.v1.BooleanValue\",\"data\":true}', 'acme',"
                 " pg_current_xact_id());"
                 "COMMIT"));
  PGresult *r = sql_on(c, "SELECT id::text, snapshot::text FROM transactions");
  unsigned long long x1 = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
  char *tok1 = permify_token(x1, PQgetvalue(r, 0, 1));
  PQclear(r);
  /* A second one deletes u1 and adds u2. */
  PQclear(sql_on(c,
                 "BEGIN;"
                 "INSERT INTO transactions (tenant_id) VALUES ('acme');"
                 "UPDATE relation_tuples SET expired_tx_id = pg_current_xact_id()"
                 " WHERE tenant_id = 'acme' AND subject_id = 'u1'"
                 " AND expired_tx_id = '9223372036854775807'::xid8;"
                 "INSERT INTO relation_tuples (entity_type, entity_id, relation, subject_type,"
                 " subject_id, subject_relation, created_tx_id, tenant_id) VALUES"
                 " ('doc', '1', 'viewer', 'user', 'u2', '', pg_current_xact_id(), 'acme');"
                 "COMMIT"));
  PQfinish(c);
  char *before = sql_val(uri, layout_sql);

  tc_backend_t *b = open_b(uri, NULL);
  char *after = sql_val(uri, layout_sql);
  if (strcmp(before, after) != 0) { /* Permify's objects untouched */
    for (char *l = strtok(after, "\n"); l; l = strtok(NULL, "\n"))
      if (!strstr(before, l)) fprintf(stderr, "added or changed: %s\n", l);
    fail_msg("the migrations changed Permify's layout");
  }
  free(before);
  free(after);
  assert_int_equal(sql_long(uri, "SELECT count(*) FROM tuplecast_migrations"), 3);
  assert_int_equal(sql_long(uri, "SELECT count(*) FROM tenants"), 1);

  res_t res = {0};
  CALL(&res, api->read_tuples(b, "acme", "", &all_tuples, 0, 0, on_tuples, &res));
  assert_int_equal(res.status, 0);
  assert_int_equal(res.n, 2);
  assert_string_equal(res.rows[0], "doc:1#parent@folder:f#...");
  assert_string_equal(res.rows[1], "doc:1#viewer@user:u2");

  char *err = NULL;
  assert_int_equal(api->token_check(b, tok1, &err), 0);
  CALL(&res, api->read_tuples(b, "acme", tok1, &all_tuples, 0, 0, on_tuples, &res));
  assert_int_equal(res.status, 0);
  assert_int_equal(res.n, 2);
  assert_string_equal(res.rows[0], "doc:1#viewer@user:u1");
  assert_string_equal(res.rows[1], "doc:1#parent@folder:f#...");

  /* Permify's legacy token of the same transaction: 8 bytes little-endian. */
  uint8_t le[8];
  for (int i = 0; i < 8; i++) le[i] = (uint8_t)(x1 >> (8 * i));
  char *legacy = b64(le, 8);
  CALL(&res, api->read_tuples(b, "acme", legacy, &all_tuples, 0, 0, on_tuples, &res));
  assert_int_equal(res.n, 2);
  assert_string_equal(res.rows[0], "doc:1#viewer@user:u1");
  free(legacy);

  CALL(&res, api->read_attrs(b, "acme", tok1, &all_attrs, 0, 0, on_attrs, &res));
  assert_int_equal(res.status, 0);
  assert_int_equal(res.n, 1);
  assert_string_equal(res.rows[0], "doc:1$public={\"@type\":\"" ANY_BOOL "\",\"data\":true}");

  /* Our write next to Permify's rows, with a Permify-format token. */
  tc_tuple_t t = tuple("2", "u3");
  CALL(&res, write_tuples(b, &res, "acme", &t, 1));
  assert_int_equal(res.status, 0);
  uint8_t dec[256];
  unb64(res.token, dec);
  char *snap = sql_val(uri,
                       "SELECT id::text || ' ' || snapshot::text FROM transactions"
                       " ORDER BY id DESC LIMIT 1");
  unsigned long long x3 = strtoull(snap, NULL, 10);
  char *want = permify_token(x3, strchr(snap, ' ') + 1);
  assert_string_equal(res.token, want);
  free(want);
  free(snap);

  /* The feed reports Permify's transactions: from the start of history
   * (Permify's token for a tenant without transactions) and from the first. */
  static const char *const history[] = {"+doc:1#viewer@user:u1",
                                        "+doc:1#parent@folder:f",
                                        "+doc:1$public",
                                        "|",
                                        "-doc:1#viewer@user:u1",
                                        "+doc:1#viewer@user:u2",
                                        "|",
                                        "+doc:2#viewer@user:u3"};
  res_clear(&res);
  CALL(&res, api->read_changes(b, "acme", "AAAAAAAAAAA=", NULL, 0, on_changes, &res));
  assert_int_equal(res.status, 0);
  assert_int_equal(res.n, 8);
  for (size_t i = 0; i < 8; i++) assert_string_equal(res.rows[i], history[i]);
  res_clear(&res);
  CALL(&res, api->read_changes(b, "acme", tok1, NULL, 0, on_changes, &res));
  assert_int_equal(res.status, 0);
  assert_int_equal(res.n, 4);
  for (size_t i = 0; i < 4; i++) assert_string_equal(res.rows[i], history[4 + i]);
  res_clear(&res);
  free(tok1);
  close_b(b);
}

/* ---- writes --------------------------------------------------------------------- */

typedef struct many_s {
  int done, all, order_ok;
  int next_expected;
  char *tokens[200];
  int status[200];
} many_t;

typedef struct slot_s {
  many_t *m;
  int i;
} slot_t;

static void on_many(void *arg, int status, const char *token) {
  slot_t *s = arg;
  many_t *m = s->m;
  if (s->i != m->next_expected) m->order_ok = 0;
  m->next_expected++;
  m->status[s->i] = status;
  m->tokens[s->i] = dup0(token);
  m->all = ++m->done == 200;
}

typedef struct {
  const char *uri;
  long want;
} sessions_t;

/* 1 when the sessions on the database, other than the asking one, number
 * want. */
static int sessions_are(void *arg) {
  const sessions_t *s = arg;
  return sql_long(s->uri,
                  "SELECT count(*) FROM pg_stat_activity"
                  " WHERE datname = current_database() AND pid <> pg_backend_pid()") == s->want;
}

/* 200 writes at once, answered in order; without pool_size the node holds
 * 16 write connections (group commit needs them: bench/README.md, "What
 * limits the figures") and 4 others. */
static void test_concurrent_writes(void **state) {
  (void)state;
  const char *uri = db("concurrent");
  tc_backend_t *b = open_b(uri, NULL);
  many_t m = {.order_ok = 1};
  slot_t slots[200];
  char ids[200][16];
  for (int i = 0; i < 200; i++) {
    snprintf(ids[i], sizeof ids[i], "e%d", i);
    tc_tuple_t t = tuple(ids[i], "u");
    tc_write_batch_t w = {.tenant_id = "c", .tuples = &t, .n_tuples = 1};
    slots[i] = (slot_t){&m, i};
    assert_int_equal(api->write(b, &w, on_many, &slots[i]), 0);
  }
  assert_int_equal(m.done, 0);
  wait_flag(&m.all);
  assert_true(m.order_ok); /* answered in submission order */
  for (int i = 0; i < 200; i++) {
    assert_int_equal(m.status[i], 0);
    uint8_t dec[256];
    unb64(m.tokens[i], dec);
    unsigned long long x, xmin, xmax;
    assert_int_equal(sscanf((char *)dec, "%llu:%llu:%llu:", &x, &xmin, &xmax), 3);
    assert_true(x >= xmin && x < xmax);
    for (int j = 0; j < i; j++) assert_string_not_equal(m.tokens[i], m.tokens[j]);
  }
  for (int i = 0; i < 200; i++) free(m.tokens[i]);
  assert_int_equal(sql_long(uri, "SELECT count(*) FROM relation_tuples WHERE tenant_id = 'c'"),
                   200);
  assert_int_equal(sql_long(uri, "SELECT count(*) FROM transactions WHERE tenant_id = 'c'"), 200);
  tc_backend_stats_t st;
  api->stats(b, &st);
  assert_int_equal(st.writes, 200);
  sessions_t sessions = {uri, 16 + 4};
  wait_cond(sessions_are, &sessions);
  close_b(b);
}

static void test_batch_1000(void **state) {
  (void)state;
  const char *uri = db("batch");
  tc_backend_t *b = open_b(uri, NULL);
  static tc_tuple_t t[1000];
  static char ids[1000][16];
  for (int i = 0; i < 1000; i++) {
    snprintf(ids[i], sizeof ids[i], "d%04d", i);
    t[i] = tuple(ids[i], "alice");
  }
  res_t res = {0};
  CALL(&res, write_tuples(b, &res, "bt", t, 1000));
  assert_int_equal(res.status, 0);
  assert_int_equal(sql_long(uri, "SELECT count(*) FROM relation_tuples WHERE tenant_id = 'bt'"),
                   1000);
  /* The same batch again changes nothing: identical active tuples are no-ops. */
  CALL(&res, write_tuples(b, &res, "bt", t, 1000));
  assert_int_equal(res.status, 0);
  assert_int_equal(sql_long(uri, "SELECT count(*) FROM relation_tuples WHERE tenant_id = 'bt'"),
                   1000);
  /* Paging: 1000 rows in pages of 60 (the first 64 are kept as text). */
  size_t total = 0, pages = 0;
  tc_cursor_t after = 0;
  do {
    res_t page = {0};
    CALL(&page, api->read_tuples(b, "bt", "", &all_tuples, after, 60, on_tuples, &page));
    assert_int_equal(page.status, 0);
    if (pages == 0) assert_string_equal(page.rows[0], "doc:d0000#viewer@user:alice");
    total += page.n;
    pages++;
    after = page.next;
    assert_true(page.n == 60 || after == 0);
    res_clear(&page);
  } while (after);
  assert_int_equal(total, 1000);
  assert_int_equal(pages, 17);
  res_clear(&res);
  close_b(b);
}

static void test_attributes(void **state) {
  (void)state;
  const char *uri = db("attrs");
  tc_backend_t *b = open_b(uri, NULL);
  uint8_t v1[128], v2[128];
  size_t l1 = any_string(v1, "one"), l2 = any_bool(v2, 1);
  tc_attr_t a = {"doc", "1", "label", v1, l1};
  tc_write_batch_t w = {.tenant_id = "at", .attrs = &a, .n_attrs = 1};
  res_t res = {0};
  CALL(&res, api->write(b, &w, on_write, &res));
  assert_int_equal(res.status, 0);
  char *tok1 = strdup(res.token);
  a.value = v2;
  a.value_len = l2;
  CALL(&res, api->write(b, &w, on_write, &res));
  assert_int_equal(res.status, 0);
  /* The upsert expired the old row and created the new one. */
  assert_int_equal(sql_long(uri,
                            "SELECT count(*) FROM attributes WHERE tenant_id = 'at'"
                            " AND expired_tx_id <> '9223372036854775807'::xid8"),
                   1);
  char *json = sql_val(uri,
                       "SELECT value::text FROM attributes WHERE tenant_id = 'at'"
                       " AND expired_tx_id = '9223372036854775807'::xid8");
  assert_string_equal(json, "{\"data\": true, \"@type\": \"" ANY_BOOL "\"}");
  free(json);
  CALL(&res, api->read_attrs(b, "at", "", &all_attrs, 0, 0, on_attrs, &res));
  assert_int_equal(res.n, 1);
  assert_string_equal(res.rows[0], "doc:1$label={\"@type\":\"" ANY_BOOL "\",\"data\":true}");
  CALL(&res, api->read_attrs(b, "at", tok1, &all_attrs, 0, 0, on_attrs, &res));
  assert_int_equal(res.n, 1);
  assert_string_equal(res.rows[0], "doc:1$label={\"@type\":\"" ANY_STRING "\",\"data\":\"one\"}");
  /* attr_delete by filter */
  const char *names[] = {"label"};
  tc_attr_filter_t af = {.entity_type = "doc", .attributes = names, .n_attributes = 1};
  tc_write_batch_t del = {.tenant_id = "at", .attr_delete = &af};
  CALL(&res, api->write(b, &del, on_write, &res));
  assert_int_equal(res.status, 0);
  CALL(&res, api->read_attrs(b, "at", "", &all_attrs, 0, 0, on_attrs, &res));
  assert_int_equal(res.n, 0);
  free(tok1);
  res_clear(&res);
  close_b(b);
}

static void test_delete_by_filter(void **state) {
  (void)state;
  const char *uri = db("deletes");
  tc_backend_t *b = open_b(uri, NULL);
  tc_tuple_t t[4] = {tuple("1", "a"), tuple("2", "a"), tuple("3", "a"), tuple("1", "b")};
  res_t res = {0};
  CALL(&res, write_tuples(b, &res, "dl", t, 4));
  char *tok = strdup(res.token);
  const char *ids[] = {"1", "2"}, *subs[] = {"a"};
  tc_tuple_filter_t f = {.entity_type = "doc",
                         .entity_ids = ids,
                         .n_entity_ids = 2,
                         .subject_ids = subs,
                         .n_subject_ids = 1};
  tc_write_batch_t w = {.tenant_id = "dl", .tuple_delete = &f};
  CALL(&res, api->write(b, &w, on_write, &res));
  assert_int_equal(res.status, 0);
  CALL(&res, api->read_tuples(b, "dl", "", &all_tuples, 0, 0, on_tuples, &res));
  assert_int_equal(res.n, 2);
  assert_string_equal(res.rows[0], "doc:3#viewer@user:a");
  assert_string_equal(res.rows[1], "doc:1#viewer@user:b");
  /* The filter on a read: entity ids and subject type. */
  const char *one[] = {"1"};
  tc_tuple_filter_t rf = {.entity_ids = one, .n_entity_ids = 1, .subject_type = "user"};
  CALL(&res, api->read_tuples(b, "dl", tok, &rf, 0, 0, on_tuples, &res));
  assert_int_equal(res.n, 2); /* as of the first write */
  assert_string_equal(res.rows[0], "doc:1#viewer@user:a");
  /* Paging with limit 1 returns the next row's id. */
  CALL(&res, api->read_tuples(b, "dl", tok, &rf, 0, 1, on_tuples, &res));
  assert_int_equal(res.n, 1);
  assert_true(res.next > 0);
  tc_cursor_t next = res.next;
  CALL(&res, api->read_tuples(b, "dl", tok, &rf, next, 1, on_tuples, &res));
  assert_int_equal(res.n, 1);
  assert_string_equal(res.rows[0], "doc:1#viewer@user:b");
  assert_int_equal(res.next, 0);
  free(tok);
  res_clear(&res);
  close_b(b);
}

/* head and read_changes go through the tenant's queue: answered after the
 * write submitted before them, and they see it. */
typedef struct order_s {
  int seq, write_at, head_at, changes_at, done;
  int changes_status;
  size_t n;
  char *head_token;
} order_t;

static void on_order_write(void *arg, int status, const char *token) {
  order_t *o = arg;
  (void)token;
  assert_int_equal(status, 0);
  o->write_at = ++o->seq;
  o->done = o->head_at && o->changes_at;
}

static void on_order_head(void *arg, int status, const char *token) {
  order_t *o = arg;
  assert_int_equal(status, 0);
  o->head_token = strdup(token);
  o->head_at = ++o->seq;
  o->done = o->write_at && o->changes_at;
}

static void on_order_changes(void *arg, int status, const tc_change_t *c, size_t n,
                             const char *last) {
  order_t *o = arg;
  (void)c;
  (void)last;
  o->changes_status = status;
  o->n = n;
  o->changes_at = ++o->seq;
  o->done = o->write_at && o->head_at;
}

static void test_feed_order(void **state) {
  (void)state;
  const char *uri = db("feedorder");
  tc_backend_t *b = open_b(uri, NULL);
  res_t res = {0};
  tc_tuple_t t1 = tuple("1", "u");
  CALL(&res, write_tuples(b, &res, "fo", &t1, 1));
  char *tok1 = strdup(res.token);
  order_t o = {0};
  tc_tuple_t t2[2] = {tuple("2", "u"), tuple("3", "u")};
  tc_write_batch_t w = {.tenant_id = "fo", .tuples = t2, .n_tuples = 2};
  assert_int_equal(api->write(b, &w, on_order_write, &o), 0);
  assert_int_equal(api->head(b, "fo", on_order_head, &o), 0);
  assert_int_equal(api->read_changes(b, "fo", tok1, NULL, 100, on_order_changes, &o), 0);
  /* The feed calls do not wait for the write in flight: they may answer
   * first, and then see it or not; all three answer, and once the write is
   * in, reading from tok1 gives its two tuples. */
  wait_flag(&o.done);
  assert_int_equal(o.changes_status, 0);
  assert_true(o.n == 0 || o.n == 2);
  o.done = 0;
  o.changes_at = 0;
  assert_int_equal(api->read_changes(b, "fo", tok1, NULL, 100, on_order_changes, &o), 0);
  wait_flag(&o.done);
  assert_int_equal(o.changes_status, 0);
  assert_int_equal(o.n, 2);
  char *err = NULL;
  assert_int_equal(api->token_check(b, o.head_token, &err), 0);
  assert_null(err);
  tc_backend_stats_t st;
  api->stats(b, &st);
  assert_int_equal(st.change_reads, 2);
  free(o.head_token);
  free(tok1);
  res_clear(&res);
  close_b(b);
}

/* ---- tenants and schemas ------------------------------------------------------- */

static void test_tenants(void **state) {
  (void)state;
  const char *uri = db("tenants");
  tc_backend_t *b = open_b(uri, NULL);
  res_t res = {0};
  CALL(&res, api->tenant_create(b, "acme", "Acme Inc", on_tenant, &res));
  assert_int_equal(res.status, 0);
  assert_string_equal(res.tenant.id, "acme");
  assert_string_equal(res.tenant.name, "Acme Inc");
  assert_true(res.tenant.created_at_ms > 1600000000000LL);
  CALL(&res, api->tenant_create(b, "acme", "again", on_tenant, &res));
  assert_int_equal(res.status, TC_EUNIQUE);
  CALL(&res, api->tenant_create(b, "beta", "Beta", on_tenant, &res));
  CALL(&res, api->tenant_get(b, "acme", on_tenant, &res));
  assert_int_equal(res.status, 0);
  assert_string_equal(res.tenant.name, "Acme Inc");
  CALL(&res, api->tenant_list(b, "", 2, on_tenants, &res));
  assert_int_equal(res.n, 2);
  assert_string_equal(res.rows[0], "acme=Acme Inc");
  assert_string_equal(res.rows[1], "beta=Beta");
  assert_string_equal(res.next_key, "t1");
  CALL(&res, api->tenant_list(b, "t1", 0, on_tenants, &res));
  assert_int_equal(res.n, 1);
  assert_null(res.next_key);
  /* Data and schema of acme go with it. */
  tc_tuple_t t = tuple("1", "u");
  CALL(&res, write_tuples(b, &res, "acme", &t, 1));
  CALL(&res, write_tuples(b, &res, "beta", &t, 1));
  CALL(&res,
       api->schema_write(b, "acme", "cpm2b0ljrs1e5h0a1b2c", "entity user {}", on_status, &res));
  assert_int_equal(res.status, 0);
  CALL(&res, api->tenant_delete(b, "acme", on_tenant, &res));
  assert_int_equal(res.status, 0);
  assert_string_equal(res.tenant.id, "acme");
  assert_int_equal(sql_long(uri,
                            "SELECT (SELECT count(*) FROM relation_tuples WHERE tenant_id ="
                            " 'acme') + (SELECT count(*) FROM transactions WHERE tenant_id ="
                            " 'acme') + (SELECT count(*) FROM schema_definitions WHERE"
                            " tenant_id = 'acme')"),
                   0);
  assert_int_equal(sql_long(uri, "SELECT count(*) FROM relation_tuples WHERE tenant_id = 'beta'"),
                   1);
  CALL(&res, api->tenant_get(b, "acme", on_tenant, &res));
  assert_int_equal(res.status, TC_ENOTFOUND);
  CALL(&res, api->tenant_delete(b, "acme", on_tenant, &res));
  assert_int_equal(res.status, TC_ENOTFOUND);
  res_clear(&res);
  close_b(b);
}

/* An rs/xid-shaped version: 12 bytes (4 of them Unix seconds) in base32hex. */
static void make_version(char out[21], uint32_t secs, uint32_t counter) {
  uint8_t id[12] = {(uint8_t)(secs >> 24),
                    (uint8_t)(secs >> 16),
                    (uint8_t)(secs >> 8),
                    (uint8_t)secs,
                    1,
                    2,
                    3,
                    4,
                    5,
                    (uint8_t)(counter >> 16),
                    (uint8_t)(counter >> 8),
                    (uint8_t)counter};
  const char *al = "0123456789abcdefghijklmnopqrstuv";
  uint32_t acc = 0;
  int bits = 0, n = 0;
  for (int i = 0; i < 12; i++) {
    acc = acc << 8 | id[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out[n++] = al[acc >> bits & 31];
    }
  }
  if (bits) out[n++] = al[acc << (5 - bits) & 31];
  out[n] = '\0';
}

static void test_schemas(void **state) {
  (void)state;
  const char *uri = db("schemas");
  tc_backend_t *b = open_b(uri, NULL);
  const char *text =
      "// the users\n"
      "entity user {}\n\n"
      "entity document {\n"
      "  relation owner @user // who owns it {\n"
      "  attribute public boolean\n"
      "  permission view = owner or check_public(public)\n"
      "}\n"
      "/* a rule { with braces */\n"
      "rule check_public(p boolean) {\n"
      "  p == true\n"
      "}\n";
  char v1[21], v2[21];
  make_version(v1, 1700000000, 1);
  make_version(v2, 1700000100, 2);
  assert_int_equal(strlen(v1), 20);
  res_t res = {0};
  CALL(&res, api->schema_read(b, "sc", "", on_schema, &res));
  assert_int_equal(res.status, TC_ESCHEMA_NOT_FOUND);
  assert_null(res.version);
  CALL(&res, api->schema_write(b, "sc", v1, text, on_status, &res));
  assert_int_equal(res.status, 0);
  char *names = sql_val(uri,
                        "SELECT string_agg(name, ',' ORDER BY name) FROM schema_definitions"
                        " WHERE tenant_id = 'sc'");
  assert_string_equal(names, "check_public,document,user");
  free(names);
  CALL(&res, api->schema_read(b, "sc", "", on_schema, &res));
  assert_int_equal(res.status, 0);
  assert_string_equal(res.version, v1);
  assert_string_equal(res.text,
                      "rule check_public(p boolean) {\n  p == true\n}\n\n"
                      "entity document {\n"
                      "  relation owner @user // who owns it {\n"
                      "  attribute public boolean\n"
                      "  permission view = owner or check_public(public)\n"
                      "}\n\n"
                      "entity user {}");
  CALL(&res, api->schema_write(b, "sc", v1, text, on_status, &res));
  assert_int_equal(res.status, TC_EUNIQUE);
  CALL(&res, api->schema_write(b, "sc", v2, "entity user {}", on_status, &res));
  assert_int_equal(res.status, 0);
  CALL(&res, api->schema_read(b, "sc", v1, on_schema, &res));
  assert_string_equal(res.version, v1);
  CALL(&res, api->schema_read(b, "sc", "", on_schema, &res));
  assert_string_equal(res.text, "entity user {}");
  CALL(&res, api->schema_list(b, "sc", "", 1, on_schemas, &res));
  assert_int_equal(res.status, 0);
  assert_string_equal(res.head, v2);
  assert_int_equal(res.n, 1);
  assert_string_equal(res.rows[0], v2);
  assert_string_equal(res.next_key, v1);
  CALL(&res, api->schema_list(b, "sc", v1, 5, on_schemas, &res));
  assert_int_equal(res.n, 1);
  assert_string_equal(res.rows[0], v1);
  assert_null(res.next_key);
  CALL(&res, api->schema_list(b, "none", "", 5, on_schemas, &res));
  assert_int_equal(res.status, 0);
  assert_null(res.head);
  assert_int_equal(res.n, 0);
  res_clear(&res);
  close_b(b);
}

/* ---- retries and connection loss ------------------------------------------------ */

static int lock_waiters(void *uri) {
  return sql_long(uri,
                  "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                  " AND datname = current_database()") > 0;
}

static void test_serialization_retry(void **state) {
  (void)state;
  const char *uri = db("retry");
  tc_backend_t *b = open_b(uri, NULL);
  tc_tuple_t t = tuple("a", "u");
  res_t res = {0};
  CALL(&res, write_tuples(b, &res, "rt", &t, 1));
  /* Another client expires the row and holds its lock... */
  PGconn *other = side(uri);
  PQclear(sql_on(other,
                 "BEGIN;"
                 "UPDATE relation_tuples SET expired_tx_id = pg_current_xact_id()"
                 " WHERE tenant_id = 'rt' AND entity_id = 'a'"
                 " AND expired_tx_id = '9223372036854775807'::xid8"));
  /* ...our delete of the same row waits for it... */
  const char *ids[] = {"a"};
  tc_tuple_filter_t f = {.entity_ids = ids, .n_entity_ids = 1};
  tc_tuple_t t2 = tuple("b", "u");
  tc_write_batch_t w = {.tenant_id = "rt", .tuple_delete = &f, .tuples = &t2, .n_tuples = 1};
  loglen = 0;
  res_clear(&res);
  assert_int_equal(api->write(b, &w, on_write, &res), 0);
  wait_cond(lock_waiters, (void *)uri);
  /* ...and fails 40001 when the other commits first; the retry succeeds. */
  PQclear(sql_on(other, "COMMIT"));
  PQfinish(other);
  wait_flag(&res.done);
  assert_int_equal(res.status, 0);
  if (!strstr(logbuf, "retry 1 after 40001")) fail_msg("no retry logged: %s", logbuf);
  CALL(&res, api->read_tuples(b, "rt", "", &all_tuples, 0, 0, on_tuples, &res));
  assert_int_equal(res.n, 1);
  assert_string_equal(res.rows[0], "doc:b#viewer@user:u");
  res_clear(&res);
  close_b(b);
}

typedef struct loss_s {
  int answered, ok, unavailable, unknown;
  int status[50];
  int done;
} loss_t;

typedef struct loss_slot_s {
  loss_t *l;
  int i;
} loss_slot_t;

static void on_loss(void *arg, int status, const char *token) {
  loss_slot_t *s = arg;
  (void)token;
  s->l->status[s->i] = status;
  s->l->answered++;
  if (status == 0) s->l->ok++;
  if (status == TC_EUNAVAILABLE) s->l->unavailable++;
  if (status == TC_EOUTCOME_UNKNOWN) s->l->unknown++; /* on the wire when the connection died */
  s->l->done = s->l->answered == 50;
}

static void test_connection_loss(void **state) {
  (void)state;
  const char *uri = db("loss");
  tc_backend_t *b = open_b(uri, NULL);
  res_t res = {0};
  tc_tuple_t warm = tuple("warm", "u");
  CALL(&res, write_tuples(b, &res, "ls", &warm, 1));
  loss_t l = {0};
  loss_slot_t slots[50];
  char ids[50][8];
  for (int i = 0; i < 50; i++) {
    snprintf(ids[i], sizeof ids[i], "k%d", i);
    tc_tuple_t t = tuple(ids[i], "u");
    tc_write_batch_t w = {.tenant_id = "ls", .tuples = &t, .n_tuples = 1};
    slots[i] = (loss_slot_t){&l, i};
    assert_int_equal(api->write(b, &w, on_loss, &slots[i]), 0);
  }
  uv_run(&loop, UV_RUN_NOWAIT); /* some are on the wire */
  sql(uri,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
      " WHERE datname = current_database() AND pid <> pg_backend_pid()");
  wait_flag(&l.done);
  assert_int_equal(l.ok + l.unavailable + l.unknown, 50);
  for (int i = 0; i < 50; i++) {
    if (l.status[i] != 0) continue;
    char q[160];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM relation_tuples WHERE tenant_id = 'ls' AND entity_id = '%s'",
             ids[i]);
    assert_int_equal(sql_long(uri, q), 1); /* acked means committed */
  }
  /* The pools reconnect: a later write works. */
  tc_tuple_t after = tuple("after", "u");
  CALL(&res, write_tuples(b, &res, "ls", &after, 1));
  assert_int_equal(res.status, 0);
  res_clear(&res);
  close_b(b);
}

/* ---- GC ---------------------------------------------------------------------------- */

static int gc_done(void *uri) {
  return sql_long(uri, "SELECT count(*) FROM transactions WHERE tenant_id = 'g'") == 1 &&
         sql_long(uri, "SELECT count(*) FROM tuplecast_gc WHERE tenant_id = 'g'") == 1;
}

static void test_gc(void **state) {
  (void)state;
  const char *uri = db("gc");
  const char *const opts[] = {"gc_enabled=true", "gc_interval_s=1", "gc_window_s=1",
                              "gc_timeout_s=10", NULL};
  tc_backend_t *b = open_b(uri, opts);
  res_t res = {0};
  CALL(&res, api->tenant_create(b, "g", "gc tenant", on_tenant, &res));
  tc_tuple_t t = tuple("1", "u");
  CALL(&res, write_tuples(b, &res, "g", &t, 1));
  tc_tuple_filter_t f = {.entity_type = "doc"};
  tc_write_batch_t del = {.tenant_id = "g", .tuple_delete = &f};
  CALL(&res, api->write(b, &del, on_write, &res));
  uint8_t v[128];
  tc_attr_t a = {"doc", "1", "label", v, any_string(v, "x")};
  tc_write_batch_t aw = {.tenant_id = "g", .attrs = &a, .n_attrs = 1};
  CALL(&res, api->write(b, &aw, on_write, &res));
  CALL(&res, api->write(b, &aw, on_write, &res));
  tc_write_batch_t empty = {.tenant_id = "g"};
  CALL(&res, api->write(b, &empty, on_write, &res));
  char *last = sql_val(uri, "SELECT max(id::text::int8) FROM transactions WHERE tenant_id = 'g'");
  wait_cond(gc_done, (void *)uri);
  assert_int_equal(sql_long(uri,
                            "SELECT (SELECT count(*) FROM relation_tuples WHERE tenant_id ="
                            " 'g') + (SELECT count(*) FROM attributes WHERE tenant_id = 'g'"
                            " AND expired_tx_id <> '9223372036854775807'::xid8)"),
                   0);
  assert_int_equal(sql_long(uri, "SELECT count(*) FROM attributes WHERE tenant_id = 'g'"), 1);
  char *horizon = sql_val(uri, "SELECT horizon::text FROM tuplecast_gc WHERE tenant_id = 'g'");
  assert_string_equal(horizon, last);
  free(horizon);
  free(last);
  res_clear(&res);
  close_b(b);
}

/* ---- main ------------------------------------------------------------------------ */

static int group_setup(void **state) {
  (void)state;
  return tc_pg_start(NULL, &pg) == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  tc_pg_stop(pg);
  return 0;
}

static const char *plugin_path(char *buf, size_t size) {
  const char *env = getenv("TUPLECAST_PG_PLUGIN");
  if (env && *env) return env;
  ssize_t n = readlink("/proc/self/exe", buf, size - 32);
  if (n <= 0) return "backends/postgres.so";
  buf[n] = '\0';
  char *slash = strrchr(buf, '/');
  strcpy(slash ? slash + 1 : buf, "backends/postgres.so");
  return buf;
}

int main(void) {
  tt_log_sink(log_sink);
  char buf[4096];
  const char *path = plugin_path(buf, sizeof buf);
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
    return 1;
  }
  tc_backend_entry_fn entry = (tc_backend_entry_fn)dlsym(dl, TC_BACKEND_ENTRY_SYMBOL);
  api = entry ? entry() : NULL;
  if (!api || api->magic != TC_BACKEND_MAGIC || api->abi_major != TC_BACKEND_ABI_MAJOR ||
      api->struct_size < TC_BACKEND_API_V2_SIZE ||
      strcmp(api->build_fingerprint, TC_BACKEND_FINGERPRINT) != 0) {
    fprintf(stderr, "%s: not an ABI v2 plugin of this build\n", path);
    return 1;
  }
  uv_loop_init(&loop);
  uv_async_init(&loop, &post_async, on_posted);
  uv_timer_init(&loop, &deadline);
  host = (tc_host_api_t){.struct_size = sizeof host,
                         .loop = &loop,
                         .post = host_post,
                         .log = tt_log,
                         .now_ms = host_now_ms,
                         .changed = host_changed,
                         .any_to_json = host_any_to_json,
                         .any_from_json = host_any_from_json,
                         .abi_major = TC_BACKEND_ABI_MAJOR,
                         .abi_minor = TC_BACKEND_ABI_MINOR};
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unreachable),
      cmocka_unit_test(test_not_migrated),
      cmocka_unit_test(test_admin_migrate),
      cmocka_unit_test(test_no_privileges),
      cmocka_unit_test(test_permify_database),
      cmocka_unit_test(test_concurrent_writes),
      cmocka_unit_test(test_batch_1000),
      cmocka_unit_test(test_attributes),
      cmocka_unit_test(test_delete_by_filter),
      cmocka_unit_test(test_feed_order),
      cmocka_unit_test(test_tenants),
      cmocka_unit_test(test_schemas),
      cmocka_unit_test(test_serialization_retry),
      cmocka_unit_test(test_connection_loss),
      cmocka_unit_test(test_gc),
      cmocka_unit_test(test_track_commit_timestamp_off),
  };
  int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
  uv_close((uv_handle_t *)&post_async, NULL);
  uv_close((uv_handle_t *)&deadline, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  dlclose(dl);
  return failed;
}
