/* Three latent faults, against the real binary:
 *  - a backend whose head() refuses at once: the Watch that started the
 *    tenant's change feed gets the backend's error, and the feed is not left
 *    behind never ready, so later Watches on the tenant neither hang nor miss
 *    changes once head() works again (faulty_backend.c is the backend);
 *  - a plugin of ABI 2.0 (faulty_backend.c built with ABI_2_0) serves, with
 *    the Bundle service and Data.RunBundle answering UNIMPLEMENTED, and is
 *    never handed v2.1's members: neither the bundle calls past its table
 *    nor a write with exact deletes, nor v2.5's tenant_state (each would
 *    abort);
 *  - SIGPIPE is ignored with HTTP disabled, so a peer gone mid-write cannot
 *    kill the server (it used to be ignored only when HTTP started). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server_proc.h"
#include "tt_api.h"

/* The stream must end within the deadline with code and details holding
 * fragment; a stream that stays open fails here, not by hanging. */
static void expect_refused(tc_stream_t *s, int code, const char *fragment) {
  ProtobufCMessage *m = NULL;
  int rc = tc_stream_next(s, &base__v1__watch_response__descriptor, &m, TT_TIMEOUT);
  if (rc == 0) protobuf_c_message_free_unpacked(m, NULL);
  if (rc != 1) fail_msg("expected the watch to end, got %s", rc == 0 ? "a message" : "no answer");
  const char *details = NULL;
  int got = tc_stream_status(s, &details);
  if (got != code || !details || !strstr(details, fragment))
    fail_msg("expected end %d \"...%s...\", got %d \"%s\"", code, fragment, got,
             details ? details : "");
  tc_stream_free(s);
}

/* The next message must come within the deadline and be transaction want. */
static void expect_change(tc_stream_t *s, const char *want) {
  ProtobufCMessage *m = NULL;
  int rc = tc_stream_next(s, &base__v1__watch_response__descriptor, &m, TT_TIMEOUT);
  if (rc != 0) fail_msg("expected transaction %s, got %s", want, rc == 1 ? "the end" : "nothing");
  Base__V1__WatchResponse *r = (Base__V1__WatchResponse *)m;
  assert_non_null(r->changes);
  assert_string_equal(r->changes->snap_token, want);
  assert_true(r->changes->n_data_changes > 0);
  protobuf_c_message_free_unpacked(m, NULL);
}

static char *write_member(tc_client_t *c, const char *user) {
  tt_tuple_buf_t tb;
  Base__V1__Tuple *t = tt_tuple(&tb, "organization", "o1", "member", "user", user, "");
  return tt_write_data(c, "t1", &t, 1, NULL, 0, NULL);
}

static void set_switch(const char *path, int on) {
  if (on) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
  } else {
    assert_int_equal(unlink(path), 0);
  }
}

/* The server on the example engine from the plugin directory plugins (uri:
 * the plugin's, or NULL), gRPC only, with the example schema on t1; a
 * client of it. */
static tc_client_t *start_example(tc_proc_t *p, const char *plugins, const char *uri) {
  const char *args[] = {"--grpc-port",
                        "0",
                        "--http-enabled=false",
                        "--database-engine",
                        "example",
                        "--database-backend-dir",
                        plugins,
                        uri ? "--database-uri" : NULL,
                        uri,
                        NULL};
  assert_int_equal(tc_proc_start(p, args), 0);
  tc_client_t *c = tc_client_new(p->target);
  tt_write_schema(c, "t1", NULL);
  return c;
}

static void test_head_refused_at_once(void **state) {
  (void)state;
  const char *plugins = getenv("TUPLECAST_FAULTY_DIR");
  assert_non_null(plugins);
  char *dir = tc_temp_dir();
  char sw[512];
  snprintf(sw, sizeof sw, "%s/head-refuses", dir);
  tc_proc_t p;
  tc_client_t *c = start_example(&p, plugins, sw);
  char *t0 = write_member(c, "u0");

  /* The Watch that starts the feed gets the backend's own error at once,
   * and so does the next: it asks head() again instead of waiting on a
   * feed that will never be ready. */
  set_switch(sw, 1);
  expect_refused(tt_watch_open(c, "t1", t0), 13, "the change feed could not be started");
  char *t1 = write_member(c, "u1");
  expect_refused(tt_watch_open(c, "t1", t0), 13, "the change feed could not be started");

  /* With head() working again a Watch catches up and goes live. */
  set_switch(sw, 0);
  tc_stream_t *s = tt_watch_open(c, "t1", t0);
  expect_change(s, t1);
  char *t2 = write_member(c, "u2");
  expect_change(s, t2);
  tc_stream_free(s);

  free(t0), free(t1), free(t2);
  tc_client_free(c);
  assert_int_equal(tc_proc_teardown(&p, dir), 0);
}

/* A tenant whose row cannot be read (the database unreachable) fails the
 * calls waiting on it with the backend's UNAVAILABLE, which clients retry
 * and a watcher resumes from, not INTERNAL ERROR_CODE_DATASTORE. */
static void test_tenant_unavailable(void **state) {
  (void)state;
  const char *plugins = getenv("TUPLECAST_FAULTY_DIR");
  assert_non_null(plugins);
  char *dir = tc_temp_dir();
  char sw[512], tenant_sw[600];
  snprintf(sw, sizeof sw, "%s/head-refuses", dir);
  snprintf(tenant_sw, sizeof tenant_sw, "%s.tenant", sw);
  tc_proc_t p;
  tc_client_t *c = start_example(&p, plugins, sw);
  char *t0 = write_member(c, "u0");
  set_switch(tenant_sw, 1);
  /* The tenant is read again once its row is a second old. */
  int code = 0;
  for (long long deadline = tc_now_ms() + 10000; code != 14 && tc_now_ms() < deadline;) {
    tt_tuple_buf_t tb;
    tt_result_t r =
        tt_write_one(c, "t1", tt_tuple(&tb, "organization", "o1", "member", "user", "u1", ""));
    if (r.code != 0 && r.code != 14) fail_msg("a write answered %d %s", r.code, r.details);
    code = r.code;
    tt_result_free(&r);
  }
  assert_int_equal(code, 14);
  expect_refused(tt_watch_open(c, "t1", t0), 14, "ERROR_CODE");
  set_switch(tenant_sw, 0);
  free(write_member(c, "u2"));
  free(t0);
  tc_client_free(c);
  assert_int_equal(tc_proc_teardown(&p, dir), 0);
}

static void test_abi_2_0_plugin(void **state) {
  (void)state;
  const char *plugins = getenv("TUPLECAST_ABI20_DIR");
  assert_non_null(plugins);
  char *dir = tc_temp_dir();
  tc_proc_t p;
  tc_client_t *c = start_example(&p, plugins, NULL);
  free(write_member(c, "u1"));
  /* A write to a tenant not seen yet wants the head schema, which a 2.5
   * plugin would be asked for with tenant_state: this one with tenant_get. */
  tt_tuple_buf_t tb;
  tt_expect_error(
      tt_write_one(c, "nobody", tt_tuple(&tb, "organization", "o1", "member", "user", "u1", "")), 5,
      "ERROR_CODE_TENANT_NOT_FOUND");

  static char *rw[] = {"organization:o1#member@user:u1"};
  Base__V1__Operation o = BASE__V1__OPERATION__INIT;
  o.relationships_delete = rw;
  o.n_relationships_delete = 1;
  Base__V1__Operation *ops[] = {&o};
  Base__V1__DataBundle b = BASE__V1__DATA_BUNDLE__INIT, *bs[] = {&b};
  b.name = "off";
  b.operations = ops;
  b.n_operations = 1;
  Base__V1__BundleWriteRequest w = BASE__V1__BUNDLE_WRITE_REQUEST__INIT;
  w.tenant_id = "t1";
  w.bundles = bs;
  w.n_bundles = 1;
  tt_expect_error(
      tt_call(c, "/base.v1.Bundle/Write", &w.base, &base__v1__bundle_write_response__descriptor),
      12,
      "method /base.v1.Bundle/Write not implemented: backend example (ABI 2.0) "
      "has no bundle calls");
  Base__V1__BundleRunRequest r = BASE__V1__BUNDLE_RUN_REQUEST__INIT;
  r.tenant_id = "t1";
  r.name = "off";
  tt_expect_error(
      tt_call(c, "/base.v1.Data/RunBundle", &r.base, &base__v1__bundle_run_response__descriptor),
      12,
      "method /base.v1.Data/RunBundle not implemented: backend example (ABI 2.0) has no bundle "
      "calls");
  /* Still serving, the tuple still there. */
  assert_int_equal(tt_read_tuples(c, "t1", "", NULL, 0), 1);
  tc_client_free(c);
  assert_int_equal(tc_proc_teardown(&p, dir), 0);
}

/* The signals a process ignores, from /proc/<pid>/status. */
static unsigned long long ignored_signals(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  unsigned long long mask = 0;
  int found = 0;
  while (!found && fgets(line, sizeof line, fp)) found = sscanf(line, "SigIgn: %llx", &mask) == 1;
  fclose(fp);
  assert_true(found);
  return mask;
}

static void test_sigpipe_ignored_without_http(void **state) {
  (void)state;
  /* An ignored signal stays ignored across exec: start the server with
   * SIGPIPE at its default, so only the server itself can ignore it. */
  void (*was)(int) = signal(SIGPIPE, SIG_DFL);
  char *dir = tc_temp_dir();
  char db[512];
  snprintf(db, sizeof db, "%s/tuplecast.db", dir);
  tc_proc_t p;
  const char *args[] = {"--grpc-port", "0", "--http-enabled=false", "--database-uri", db, NULL};
  int started = tc_proc_start(&p, args);
  signal(SIGPIPE, was);
  assert_int_equal(started, 0);
  assert_int_equal(p.http_port, 0);

  unsigned long long ign = ignored_signals(p.pid);
  if (!(ign & (1ull << (SIGPIPE - 1))))
    fail_msg("SIGPIPE is not ignored with HTTP disabled (SigIgn %llx)", ign);

  /* And it serves. */
  tc_client_t *c = tc_client_new(p.target);
  tt_write_schema(c, "t1", NULL);
  tc_client_free(c);
  assert_int_equal(tc_proc_teardown(&p, dir), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_head_refused_at_once),
      cmocka_unit_test(test_tenant_unavailable),
      cmocka_unit_test(test_abi_2_0_plugin),
      cmocka_unit_test(test_sigpipe_ignored_without_http),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
