/* Bundles end to end over gRPC against the real binary, once per engine
 * (sqlite, memory, postgres in a throwaway cluster): Bundle.Write / Read /
 * Delete round trips and Permify's errors, and Data.RunBundle: its effect,
 * its errors, and that a run is one transaction, so a Watch sees exactly one
 * message for it, carrying the run's token and every change it made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pg_fixture.h"
#include "server_fx.h"
#include "server_proc.h"
#include "tt_api.h"

static tc_pg_t *pg; /* the postgres engine's cluster */

typedef tt_fx_t fx_t;

static const char *engine(void) {
  const char *e = getenv("TUPLECAST_TEST_ENGINE");
  return e && *e ? e : "sqlite";
}

static int setup(void **state) {
  fx_t *f = tt_fx_new();
  static int n; /* a database of its own for each case */
  char dbname[32];
  snprintf(dbname, sizeof dbname, "bundle%d", ++n);
  const char *uri = strcmp(engine(), "postgres") == 0 ? tc_pg_uri_db(pg, dbname) : f->db;
  if (!uri) return -1;
  const char *args[] = {"--grpc-port",    "0", "--http-port", "0", "--database-engine", engine(),
                        "--database-uri", uri, NULL};
  *state = f;
  return tt_fx_start(f, args);
}

static int teardown(void **state) { return tt_fx_free(*state) == 0 ? 0 : -1; }

/* ---- helpers ------------------------------------------------------------- */

/* Stores one bundle in tenant t1: its operations (a NULL-terminated list of
 * NULL-terminated string lists, four per operation: relationships write and
 * delete, attributes write and delete). */
static void write_bundle(fx_t *f, const char *name, char **args, size_t n_args,
                         Base__V1__Operation **ops, size_t n_ops) {
  Base__V1__DataBundle b = BASE__V1__DATA_BUNDLE__INIT;
  b.name = (char *)name;
  b.arguments = args;
  b.n_arguments = n_args;
  b.operations = ops;
  b.n_operations = n_ops;
  Base__V1__DataBundle *bs[] = {&b};
  Base__V1__BundleWriteRequest req = BASE__V1__BUNDLE_WRITE_REQUEST__INIT;
  req.tenant_id = "t1";
  req.bundles = bs;
  req.n_bundles = 1;
  tt_result_t r = tt_call_ok(f->client, "/base.v1.Bundle/Write", &req.base,
                             &base__v1__bundle_write_response__descriptor);
  Base__V1__BundleWriteResponse *resp = (void *)r.resp;
  assert_int_equal(resp->n_names, 1);
  assert_string_equal(resp->names[0], name);
  tt_result_free(&r);
}

/* Data.RunBundle in t1 with "key=value" arguments; the call's result. */
static tt_result_t run(fx_t *f, const char *name, const char *const *kv, size_t n) {
  Base__V1__BundleRunRequest__ArgumentsEntry e[8], *ep[8];
  char buf[8][64];
  for (size_t i = 0; i < n; i++) {
    base__v1__bundle_run_request__arguments_entry__init(&e[i]);
    snprintf(buf[i], sizeof buf[i], "%s", kv[i]);
    char *eq = strchr(buf[i], '=');
    *eq = '\0';
    e[i].key = buf[i];
    e[i].value = eq + 1;
    ep[i] = &e[i];
  }
  Base__V1__BundleRunRequest req = BASE__V1__BUNDLE_RUN_REQUEST__INIT;
  req.tenant_id = "t1";
  req.name = (char *)name;
  req.arguments = ep;
  req.n_arguments = n;
  return tt_call(f->client, "/base.v1.Data/RunBundle", &req.base,
                 &base__v1__bundle_run_response__descriptor);
}

static tt_result_t keyed(fx_t *f, const char *method, const char *name,
                         const ProtobufCMessageDescriptor *out) {
  Base__V1__BundleReadRequest req = BASE__V1__BUNDLE_READ_REQUEST__INIT; /* same fields as Delete */
  req.tenant_id = "t1";
  req.name = (char *)name;
  return tt_call(f->client, method, &req.base, out);
}

static Base__V1__WatchResponse *next_msg(tc_stream_t *s) {
  ProtobufCMessage *m = NULL;
  if (tc_stream_next(s, &base__v1__watch_response__descriptor, &m, TT_TIMEOUT) != 0)
    fail_msg("expected a watch message");
  return (Base__V1__WatchResponse *)m;
}

/* A Watch message's token names the write that answered `written`.  On
 * PostgreSQL they differ in their snapshots (a write answers Permify's token,
 * its own transaction listed in progress; Watch the resume position after
 * it), so there the messages' contents tell. */
static void same_position(const char *watched, const char *written) {
  if (strcmp(engine(), "postgres") != 0) assert_string_equal(watched, written);
}

/* ---- cases --------------------------------------------------------------- */

static char *onboard_rw[] = {"organization:{{.org}}#member@user:{{.user}}",
                             "organization:{{ .org }}#admin@user:{{.user}}"};
static char *onboard_aw[] = {"repository:{{.org}}$is_public|boolean:true"};
static char *onboard_rd[] = {"organization:{{.org}}#member@user:old",
                             "organization:{{.org}}#member@user:absent"};
static char *onboard_args[] = {"org", "user"};

static void write_onboard(fx_t *f) {
  Base__V1__Operation o1 = BASE__V1__OPERATION__INIT, o2 = BASE__V1__OPERATION__INIT;
  o1.relationships_write = onboard_rw;
  o1.n_relationships_write = 2;
  o1.attributes_write = onboard_aw;
  o1.n_attributes_write = 1;
  o2.relationships_delete = onboard_rd;
  o2.n_relationships_delete = 2;
  Base__V1__Operation *ops[] = {&o1, &o2};
  write_bundle(f, "onboard", onboard_args, 2, ops, 2);
}

static void test_bundle_service(void **state) {
  fx_t *f = *state;
  write_onboard(f);
  tt_result_t r =
      keyed(f, "/base.v1.Bundle/Read", "onboard", &base__v1__bundle_read_response__descriptor);
  assert_int_equal(r.code, 0);
  const Base__V1__DataBundle *b = ((Base__V1__BundleReadResponse *)r.resp)->bundle;
  assert_string_equal(b->name, "onboard");
  assert_int_equal(b->n_arguments, 2);
  assert_string_equal(b->arguments[1], "user");
  assert_int_equal(b->n_operations, 2);
  assert_string_equal(b->operations[0]->relationships_write[1], onboard_rw[1]);
  assert_string_equal(b->operations[0]->attributes_write[0], onboard_aw[0]);
  assert_string_equal(b->operations[1]->relationships_delete[0], onboard_rd[0]);
  tt_result_free(&r);

  tt_expect_error(
      keyed(f, "/base.v1.Bundle/Read", "other", &base__v1__bundle_read_response__descriptor), 5,
      "ERROR_CODE_BUNDLE_NOT_FOUND");
  r = keyed(f, "/base.v1.Bundle/Delete", "onboard", &base__v1__bundle_delete_response__descriptor);
  assert_int_equal(r.code, 0);
  assert_string_equal(((Base__V1__BundleDeleteResponse *)r.resp)->name, "onboard");
  tt_result_free(&r);
  tt_expect_error(
      keyed(f, "/base.v1.Bundle/Read", "onboard", &base__v1__bundle_read_response__descriptor), 5,
      "ERROR_CODE_BUNDLE_NOT_FOUND");
  tt_expect_error(run(f, "onboard", NULL, 0), 5, "ERROR_CODE_BUNDLE_NOT_FOUND");
}

static void test_run_is_one_watch_message(void **state) {
  fx_t *f = *state;
  tt_write_schema(f->client, "t1", NULL);
  tt_tuple_buf_t tb;
  Base__V1__Tuple *old = tt_tuple_spec(&tb, "organization:o1#member@user:old");
  char *t0 = tt_write_data(f->client, "t1", &old, 1, NULL, 0, NULL);
  write_onboard(f);
  tc_stream_t *w = tt_watch_open(f->client, "t1", t0);

  static const char *const partial[] = {"org=o1"};
  tt_expect_error(run(f, "onboard", partial, 1), 3, "ERROR_CODE_MISSING_ARGUMENT");
  static const char *const args[] = {"org=o1", "user=u1"};
  tt_result_t r = run(f, "onboard", args, 2);
  assert_int_equal(r.code, 0);
  char *token = strdup(((Base__V1__BundleRunResponse *)r.resp)->snap_token);
  tt_result_free(&r);

  /* One message: the run's token, its three creates and one delete. */
  Base__V1__WatchResponse *m = next_msg(w);
  same_position(m->changes->snap_token, token);
  assert_int_equal(m->changes->n_data_changes, 4);
  size_t deletes = 0;
  for (size_t i = 0; i < 4; i++)
    if (m->changes->data_changes[i]->operation ==
        BASE__V1__DATA_CHANGE__OPERATION__OPERATION_DELETE)
      deletes++;
  assert_int_equal(deletes, 1);
  protobuf_c_message_free_unpacked(&m->base, NULL);
  /* The next message is the next write's: the run made no other. */
  Base__V1__Tuple *later = tt_tuple_spec(&tb, "organization:o2#member@user:u2");
  char *t2 = tt_write_data(f->client, "t1", &later, 1, NULL, 0, NULL);
  m = next_msg(w);
  same_position(m->changes->snap_token, t2);
  assert_int_equal(m->changes->n_data_changes, 1);
  assert_string_equal(m->changes->data_changes[0]->tuple->entity->id, "o2");
  protobuf_c_message_free_unpacked(&m->base, NULL);
  tc_stream_free(w);

  /* At the run's token: o1's member and admin u1, not old; the attribute. */
  assert_int_equal(tt_read_tuples(f->client, "t1", token, NULL, 0), 2);
  free(t0);
  free(t2);
  free(token);
}

/* A template that does not expand to a tuple fails the whole run, as
 * Permify's store does (500 DATASTORE), and writes nothing. */
static void test_run_refuses_bad_text(void **state) {
  fx_t *f = *state;
  tt_write_schema(f->client, "t1", NULL);
  static char *rw[] = {"organization:o9#member@user:{{.user}}", "organization:{{.org}}"};
  Base__V1__Operation o = BASE__V1__OPERATION__INIT;
  o.relationships_write = rw;
  o.n_relationships_write = 2;
  Base__V1__Operation *ops[] = {&o};
  write_bundle(f, "bad", NULL, 0, ops, 1);
  static const char *const args[] = {"org=o9", "user=u9"};
  tt_expect_error(run(f, "bad", args, 2), 13, "ERROR_CODE_DATASTORE");
  assert_int_equal(tt_read_tuples(f->client, "t1", "", NULL, 0), 0);
}

/* A run's expanded text is bounded by the largest request the server takes
 * (4 MiB here): 20,000 actions of a 60-byte argument escaped to 300 bytes
 * would be 6 MB.  Refused before anything is written. */
static void test_run_expansion_bounded(void **state) {
  fx_t *f = *state;
  tt_write_schema(f->client, "t1", NULL);
  enum { ACTIONS = 20000 };
  char *tmpl = malloc(ACTIONS * 6 + 1), *p = tmpl;
  for (int i = 0; i < ACTIONS; i++) p += sprintf(p, "{{.a}}");
  char *rw[] = {tmpl};
  Base__V1__Operation o = BASE__V1__OPERATION__INIT;
  o.relationships_write = rw;
  o.n_relationships_write = 1;
  Base__V1__Operation *ops[] = {&o};
  write_bundle(f, "big", NULL, 0, ops, 1);
  free(tmpl);
  char arg[64] = "a=";
  memset(arg + 2, '&', 60);
  const char *const args[] = {arg};
  tt_expect_error(run(f, "big", args, 1), 8,
                  "bundle big expands to more than 4194304 bytes of text");
  assert_int_equal(tt_read_tuples(f->client, "t1", "", NULL, 0), 0);
}

/* A map key given twice on the wire: its last value counts, as protobuf's
 * decoders (and so Permify) keep it. */
static void test_run_argument_given_twice(void **state) {
  fx_t *f = *state;
  tt_write_schema(f->client, "t1", NULL);
  static char *rw[] = {"organization:{{.org}}#member@user:u1"}, *declared[] = {"org"};
  Base__V1__Operation o = BASE__V1__OPERATION__INIT;
  o.relationships_write = rw;
  o.n_relationships_write = 1;
  Base__V1__Operation *ops[] = {&o};
  write_bundle(f, "dup", declared, 1, ops, 1);
  static const char *const args[] = {"org=o1", "org=o2", "org=o3"};
  tt_result_t r = run(f, "dup", args, 3);
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
  tt_filter_buf_t fb;
  assert_int_equal(tt_read_tuples(f->client, "t1", "", NULL, 0), 1);
  assert_int_equal(
      tt_read_tuples(f->client, "t1", "", tt_entity_filter(&fb, "organization", "o3"), 0), 1);
}

int main(void) {
  if (strcmp(engine(), "postgres") == 0 && tc_pg_start(NULL, &pg) != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_bundle_service, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_is_one_watch_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_refuses_bad_text, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_argument_given_twice, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_expansion_bounded, setup, teardown),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  tc_pg_stop(pg);
  return failed ? 1 : 0;
}
