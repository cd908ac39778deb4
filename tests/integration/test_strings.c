/* Hostile strings over gRPC, end to end: the real binary on loopback, sent
 * raw request bytes whose string fields hold a NUL byte (which protobuf-c
 * and every C string behind it would cut there) or invalid UTF-8.  Each must
 * be refused with INVALID_ARGUMENT naming the field, and nothing may happen to
 * the identifier the string would have been cut to: the tenant "nultest"
 * survives a Tenancy.Delete of "nultest\0zzz", t1 gets no tuples from a write
 * to "t1\0evil".
 *
 * The requests are packed by protobuf-c with a '!' in place of the NUL (it
 * packs C strings), and the '!' of a known marker is then set to 0 in the
 * packed bytes: same length, so the framing stays valid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "any.h"
#include "base/v1/service.pb-c.h"
#include "grpc_client.h"
#include "server_proc.h"
#include "tt_api.h"

typedef struct {
  tc_proc_t proc;
  tc_client_t *client;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  *state = f;
  if (tc_proc_start_memory(&f->proc, NULL) != 0) return -1;
  f->client = tc_client_new(f->proc.target);
  return f->client ? 0 : -1;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  tc_client_free(f->client);
  /* Graceful shutdown must exit 0 (sanitizers make leaks fail it). */
  int rc = f->proc.pid ? tc_proc_stop(&f->proc, NULL) : 0;
  free(f);
  return rc == 0 ? 0 : -1;
}

static uint8_t *find(uint8_t *buf, size_t len, const char *s, size_t n) {
  for (size_t i = 0; i + n <= len; i++)
    if (memcmp(buf + i, s, n) == 0) return buf + i;
  return NULL;
}

/* req packed, then in each marker (it must occur) every '!' replaced by the
 * byte `with`.  Returns the malloc'd bytes and their length in *len. */
static uint8_t *pack_with(const ProtobufCMessage *req, const char *const *markers, char with,
                          size_t *len) {
  *len = protobuf_c_message_get_packed_size(req);
  uint8_t *buf = malloc(*len ? *len : 1);
  protobuf_c_message_pack(req, buf);
  for (; *markers; markers++) {
    size_t ml = strlen(*markers);
    uint8_t *at = find(buf, *len, *markers, ml);
    assert_non_null(at);
    for (size_t i = 0; i < ml; i++)
      if (at[i] == '!') at[i] = (uint8_t)with;
  }
  return buf;
}

/* The call with the markers' '!' turned into `with`; its result. */
static tt_result_t raw_call(fixture_t *f, const char *method, const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *resp_desc, const char *const *markers,
                            char with) {
  size_t len;
  uint8_t *buf = pack_with(req, markers, with, &len);
  tt_result_t r = {0};
  r.code =
      tc_client_unary_raw(f->client, method, buf, len, resp_desc, &r.resp, &r.details, TT_TIMEOUT);
  free(buf);
  return r;
}

#define MARKS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The call with marker's '!' made a NUL is refused: INVALID_ARGUMENT with
 * exactly message. */
static void expect_nul_refused(fixture_t *f, const char *method, const ProtobufCMessage *req,
                               const ProtobufCMessageDescriptor *resp_desc, const char *marker,
                               const char *message) {
  tt_expect_error(raw_call(f, method, req, resp_desc, MARKS(marker), 0), 3, message);
}

/* Every tenant id Tenancy.List returns, in one page, joined by ','. */
static char *tenant_ids(fixture_t *f) {
  Base__V1__TenantListRequest req = BASE__V1__TENANT_LIST_REQUEST__INIT;
  req.page_size = 100;
  tt_result_t r = tt_call(f->client, "/base.v1.Tenancy/List", &req.base,
                          &base__v1__tenant_list_response__descriptor);
  assert_int_equal(r.code, 0);
  Base__V1__TenantListResponse *resp = (void *)r.resp;
  char *ids = calloc(1, 4096);
  for (size_t i = 0; i < resp->n_tenants; i++) {
    if (i) strcat(ids, ",");
    strncat(ids, resp->tenants[i]->id, 4096 - strlen(ids) - 2);
  }
  tt_result_free(&r);
  return ids;
}

static void expect_tenants(fixture_t *f, const char *want) {
  char *ids = tenant_ids(f);
  assert_string_equal(ids, want);
  free(ids);
}

static const char id_regex[] = "\"^([a-zA-Z0-9_\\\\-@\\\\.:+]{1,128}|\\\\*)$\"";
static const char name_regex[] = "\"^[a-zA-Z_]{1,64}$\"";

/* Tenancy.Create of id and name with marker's '!' made a NUL is refused
 * with message, and creates nothing (t1 stays the only tenant). */
static void expect_create_refused(fixture_t *f, const char *id, const char *name,
                                  const char *marker, const char *message) {
  Base__V1__TenantCreateRequest cr;
  expect_nul_refused(f, "/base.v1.Tenancy/Create", &tt_tenant_create(&cr, id, name)->base,
                     &base__v1__tenant_create_response__descriptor, marker, message);
  expect_tenants(f, "t1");
}

static void test_tenancy(void **state) {
  fixture_t *f = *state;
  expect_create_refused(f, "nultest!evil", "n", "nultest!evil",
                        "invalid TenantCreateRequest.Id: value must not contain a NUL byte");
  expect_create_refused(f, "nultest", "na!me", "na!me",
                        "invalid TenantCreateRequest.Name: value must not contain a NUL byte");

  /* The tenant the NUL would cut a Delete to survives it. */
  tt_create_tenant(f->client, "nultest");
  Base__V1__TenantDeleteRequest del = BASE__V1__TENANT_DELETE_REQUEST__INIT;
  del.id = "nultest!zzz";
  expect_nul_refused(f, "/base.v1.Tenancy/Delete", &del.base,
                     &base__v1__tenant_delete_response__descriptor, "nultest!zzz",
                     "invalid TenantDeleteRequest.Id: value must not contain a NUL byte");
  expect_tenants(f, "nultest,t1");
}

/* A Data.Write into t1 of two valid tuples with marker strings; the second
 * tuple's strings are the ones the test poisons. */
static tt_result_t write_marked(fixture_t *f, const char *tenant, const char *eid, const char *rel,
                                const char *sid, const char *srel, const char *marker, char with) {
  tt_tuple_buf_t a, b;
  Base__V1__Tuple *tuples[] = {tt_tuple(&a, "organization", "o1", "admin", "user", "u1", ""),
                               tt_tuple(&b, "repository", eid, rel, "organization", sid, srel)};
  Base__V1__DataWriteRequestMetadata md = BASE__V1__DATA_WRITE_REQUEST_METADATA__INIT;
  Base__V1__DataWriteRequest req = BASE__V1__DATA_WRITE_REQUEST__INIT;
  req.tenant_id = (char *)tenant;
  req.metadata = &md;
  req.n_tuples = 2;
  req.tuples = tuples;
  return raw_call(f, "/base.v1.Data/Write", &req.base, &base__v1__data_write_response__descriptor,
                  MARKS(marker), with);
}

static size_t t1_tuples(fixture_t *f) { return tt_read_tuples(f->client, "t1", NULL, NULL, 100); }

static void test_data_write(void **state) {
  fixture_t *f = *state;
  tt_write_schema(f->client, "t1", NULL);
  char pat[512];
  snprintf(pat, sizeof pat, "value does not match regex pattern %s", id_regex);

  char want[1024];
  snprintf(want, sizeof want, "invalid DataWriteRequest.TenantId: %s", pat);
  tt_expect_error(write_marked(f, "t1!evil", "r1", "parent", "o1", "", "t1!evil", 0), 3, want);

#define EMBEDDED ": embedded message failed validation | caused by: invalid "
  /* Each identifier of the second tuple with a NUL (in marker): the field
   * the answer names, and the pattern it breaks. */
  static const struct {
    const char *eid, *rel, *sid, *srel, *marker, *field, *regex;
  } fields[] = {
      {"r1!evil", "parent", "o1", "", "r1!evil", "Tuple.Entity" EMBEDDED "Entity.Id", id_regex},
      {"r1", "parent", "o1!evil", "", "o1!evil", "Tuple.Subject" EMBEDDED "Subject.Id", id_regex},
      {"r1", "parent!x", "o1", "", "parent!x", "Tuple.Relation", name_regex},
      {"r1", "parent", "o1", "member!x", "member!x", "Tuple.Subject" EMBEDDED "Subject.Relation",
       name_regex},
  };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    snprintf(want, sizeof want,
             "invalid DataWriteRequest.Tuples[1]" EMBEDDED
             "%s: value does not match regex pattern %s",
             fields[i].field, fields[i].regex);
    tt_expect_error(write_marked(f, "t1", fields[i].eid, fields[i].rel, fields[i].sid,
                                 fields[i].srel, fields[i].marker, 0),
                    3, want);
  }
#undef EMBEDDED

  /* Nothing was cut to t1 / r1 / o1 / owner / member and written. */
  assert_int_equal(t1_tuples(f), 0);
  /* The same requests without the NUL are fine (the markers are plain
   * characters then, and ones the patterns accept where Permify does). */
  tt_result_t ok = write_marked(f, "t1", "r1", "parent", "o1", "", "o1", 'x');
  assert_int_equal(ok.code, 0);
  tt_result_free(&ok);
  assert_int_equal(t1_tuples(f), 2);
}

/* A string no Permify rule covers, deep in a message; and UTF-8. */
static void test_other_strings(void **state) {
  fixture_t *f = *state;
  tt_write_schema(f->client, "t1", NULL);
  Base__V1__SchemaReadRequestMetadata md = BASE__V1__SCHEMA_READ_REQUEST_METADATA__INIT;
  md.schema_version = "v!1";
  Base__V1__SchemaReadRequest req = BASE__V1__SCHEMA_READ_REQUEST__INIT;
  req.tenant_id = "t1";
  req.metadata = &md;
  expect_nul_refused(f, "/base.v1.Schema/Read", &req.base,
                     &base__v1__schema_read_response__descriptor, "v!1",
                     "invalid SchemaReadRequest.Metadata: embedded message failed validation | "
                     "caused by: invalid SchemaReadRequestMetadata.SchemaVersion: value must not "
                     "contain a NUL byte");
  /* A string inside an Any's packed value: scanned as the Any's type (cut,
   * this would be a valid write of "a"). */
  Base__V1__StringArrayValue sv = BASE__V1__STRING_ARRAY_VALUE__INIT;
  char *ranges[] = {"10.0.0.0/8", "a!b"};
  sv.n_data = 2;
  sv.data = ranges;
  tt_attr_buf_t ab;
  Base__V1__Attribute *attr = tt_bool_attr(&ab, "organization", "o1", "ip_range", 1);
  tc_any_clear(&ab.any);
  assert_int_equal(tc_any_pack(&sv.base, &ab.any), 0);
  Base__V1__DataWriteRequestMetadata wmd = BASE__V1__DATA_WRITE_REQUEST_METADATA__INIT;
  Base__V1__DataWriteRequest wr = BASE__V1__DATA_WRITE_REQUEST__INIT;
  wr.tenant_id = "t1";
  wr.metadata = &wmd;
  wr.n_attributes = 1;
  wr.attributes = &attr;
  expect_nul_refused(f, "/base.v1.Data/Write", &wr.base, &base__v1__data_write_response__descriptor,
                     "a!b",
                     "invalid DataWriteRequest.Attributes[0]: embedded message failed validation | "
                     "caused by: invalid Attribute.Value: embedded message failed validation | "
                     "caused by: invalid StringArrayValue.Data[1]: value must not contain a "
                     "NUL byte");
  tc_any_clear(&ab.any);

  /* Invalid UTF-8 behind a NUL, where a C string never looks, is found, and
   * is reported before the NUL, as Go's decoder rejects it first. */
  tt_expect_error(write_marked(f, "t1!", "r1", "parent", "o1\xff", "", "t1!", 0), 3,
                  "proto: field base.v1.Subject.id contains invalid UTF-8");
  tt_expect_error(write_marked(f, "t1", "r1!\xff", "parent", "o1", "", "r1!\xff", 0), 3,
                  "proto: field base.v1.Entity.id contains invalid UTF-8");
  assert_int_equal(t1_tuples(f), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tenancy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_write, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_strings, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
