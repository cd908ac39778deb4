/* End to end: the real tuplecast binary on loopback, driven over gRPC by a
 * C-core client.  Covers every Data, Schema and Tenancy RPC, their error paths
 * with the exact gRPC code and message, persistence across a restart, bad
 * input and graceful shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "any.h"
#include "base/v1/service.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc_client.h"
#include "server_proc.h"
#include "tt_api.h"


typedef struct {
  char *dir, *db;
  tc_proc_t proc;
  tc_client_t *client;
} fixture_t;

static int start(fixture_t *f, const char *engine) {
  const char *args[] = {"--grpc-port",    "0",   "--http-port", "0", "--database-engine", engine,
                        "--database-uri", f->db, NULL};
  if (tc_proc_start(&f->proc, args) != 0) return -1;
  f->client = tc_client_new(f->proc.target);
  return f->client ? 0 : -1;
}

static int stop(fixture_t *f) {
  tc_client_free(f->client);
  f->client = NULL;
  return tc_proc_stop(&f->proc, NULL);
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  f->dir = tc_temp_dir();
  f->db = malloc(strlen(f->dir) + 32);
  sprintf(f->db, "%s/tuplecast.db", f->dir);
  *state = f;
  return start(f, "sqlite");
}

static int teardown(void **state) {
  fixture_t *f = *state;
  int rc = f->client ? stop(f) : 0;
  tc_temp_dir_remove(f->dir);
  free(f->db);
  free(f->dir);
  free(f);
  /* Graceful shutdown must exit 0 (sanitizers make leaks fail it). */
  return rc == 0 ? 0 : -1;
}


static void test_health_and_unimplemented(void **state) {
  fixture_t *f = *state;
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  tt_result_t r = tt_call(f->client, "/grpc.health.v1.Health/Check", &req.base,
                          &grpc__health__v1__health_check_response__descriptor);
  assert_int_equal(r.code, 0);
  assert_int_equal(((Grpc__Health__V1__HealthCheckResponse *)r.resp)->status,
                   GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
  tt_result_free(&r);
  Base__V1__BundleRunRequest b = BASE__V1__BUNDLE_RUN_REQUEST__INIT;
  b.tenant_id = "t1";
  r = tt_call(f->client, "/base.v1.Data/RunBundle", &b.base,
              &base__v1__bundle_run_response__descriptor);
  tt_expect_error(r, 5, "ERROR_CODE_BUNDLE_NOT_FOUND");
  r = tt_call(f->client, "/base.v1.Permission/Check", &b.base,
              &base__v1__bundle_run_response__descriptor);
  assert_int_equal(r.code, 12);
  tt_result_free(&r);
}

static void test_tenancy(void **state) {
  fixture_t *f = *state;
  tt_create_tenant(f->client, "acme");
  Base__V1__TenantCreateRequest dup;
  tt_expect_error(
      tt_call(f->client, "/base.v1.Tenancy/Create", &tt_tenant_create(&dup, "acme", "again")->base,
              &base__v1__tenant_create_response__descriptor),
      3, "ERROR_CODE_UNIQUE_CONSTRAINT");
  tt_create_tenant(f->client, "beta");

  /* Page through all tenants one at a time: t1 (seeded), acme, beta. */
  const char *want[] = {"acme", "beta", "t1"};
  char *cont = strdup("");
  size_t seen = 0;
  for (;;) {
    Base__V1__TenantListRequest req = BASE__V1__TENANT_LIST_REQUEST__INIT;
    req.page_size = 1;
    req.continuous_token = cont;
    tt_result_t r = tt_call(f->client, "/base.v1.Tenancy/List", &req.base,
                            &base__v1__tenant_list_response__descriptor);
    assert_int_equal(r.code, 0);
    Base__V1__TenantListResponse *resp = (void *)r.resp;
    assert_true(resp->n_tenants <= 1);
    if (resp->n_tenants) {
      assert_true(seen < 3);
      assert_string_equal(resp->tenants[0]->id, want[seen]);
      seen++;
    }
    free(cont);
    cont = strdup(resp->continuous_token);
    tt_result_free(&r);
    if (!*cont) break;
  }
  free(cont);
  assert_int_equal(seen, 3);

  Base__V1__TenantDeleteRequest del = BASE__V1__TENANT_DELETE_REQUEST__INIT;
  del.id = "nope";
  tt_expect_error(tt_call(f->client, "/base.v1.Tenancy/Delete", &del.base,
                          &base__v1__tenant_delete_response__descriptor),
                  5, "ERROR_CODE_NOT_FOUND");
  del.id = ""; /* as Permify: no tenant has it */
  tt_expect_error(tt_call(f->client, "/base.v1.Tenancy/Delete", &del.base,
                          &base__v1__tenant_delete_response__descriptor),
                  5, "ERROR_CODE_NOT_FOUND");

  /* A deleted tenant's data is gone and its calls are NOT_FOUND. */
  tt_write_schema(f->client, "beta", NULL);
  tt_tuple_buf_t tb;
  char *tok = tt_write_data(
      f->client, "beta",
      (Base__V1__Tuple *[]){tt_tuple(&tb, "organization", "o1", "admin", "user", "u1", "")}, 1,
      NULL, 0, NULL);
  free(tok);
  del.id = "beta";
  tt_result_t r = tt_call(f->client, "/base.v1.Tenancy/Delete", &del.base,
                          &base__v1__tenant_delete_response__descriptor);
  assert_int_equal(r.code, 0);
  assert_string_equal(((Base__V1__TenantDeleteResponse *)r.resp)->tenant_id, "beta");
  tt_result_free(&r);
  tt_expect_error(tt_write_one(f->client, "beta",
                               tt_tuple(&tb, "organization", "o1", "admin", "user", "u2", "")),
                  5, "ERROR_CODE_TENANT_NOT_FOUND");
  tt_create_tenant(f->client, "beta");
  tt_expect_error(tt_write_one(f->client, "beta",
                               tt_tuple(&tb, "organization", "o1", "admin", "user", "u2", "")),
                  5, "ERROR_CODE_SCHEMA_NOT_FOUND");
}

static void test_schema(void **state) {
  fixture_t *f = *state;
  Base__V1__SchemaReadRequest rd = BASE__V1__SCHEMA_READ_REQUEST__INIT;
  Base__V1__SchemaReadRequestMetadata rmd = BASE__V1__SCHEMA_READ_REQUEST_METADATA__INIT;
  rd.tenant_id = "t1";
  rd.metadata = &rmd;
  tt_expect_error(tt_call(f->client, "/base.v1.Schema/Read", &rd.base,
                          &base__v1__schema_read_response__descriptor),
                  5, "ERROR_CODE_SCHEMA_NOT_FOUND");
  /* A tenant with no schema has no list either (Permify: its head lookup's
   * NOT_FOUND). */
  Base__V1__SchemaListRequest ls = BASE__V1__SCHEMA_LIST_REQUEST__INIT;
  ls.tenant_id = "t1";
  ls.page_size = 10;
  tt_expect_error(tt_call(f->client, "/base.v1.Schema/List", &ls.base,
                          &base__v1__schema_list_response__descriptor),
                  5, "ERROR_CODE_SCHEMA_NOT_FOUND");

  Base__V1__SchemaWriteRequest bad = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
  bad.tenant_id = "t1";
  bad.schema = "entity user {}\nentity doc {\n  relation owner @person\n}\n";
  tt_result_t r = tt_call(f->client, "/base.v1.Schema/Write", &bad.base,
                          &base__v1__schema_write_response__descriptor);
  assert_int_equal(r.code, 13);
  assert_non_null(strstr(r.details, ":"));
  assert_true(r.details[0] >= '1' && r.details[0] <= '9');
  tt_result_free(&r);

  char *v1, *v2;
  tt_write_schema(f->client, "t1", &v1);
  tt_write_schema(f->client, "t1", &v2);
  assert_true(strcmp(v1, v2) < 0);

  rmd.schema_version = v1;
  r = tt_call(f->client, "/base.v1.Schema/Read", &rd.base,
              &base__v1__schema_read_response__descriptor);
  assert_int_equal(r.code, 0);
  Base__V1__SchemaDefinition *def = ((Base__V1__SchemaReadResponse *)r.resp)->schema;
  assert_non_null(def);
  assert_int_equal(def->n_entity_definitions, 3);
  tt_result_free(&r);

  r = tt_call(f->client, "/base.v1.Schema/List", &ls.base,
              &base__v1__schema_list_response__descriptor);
  assert_int_equal(r.code, 0);
  Base__V1__SchemaListResponse *l = (void *)r.resp;
  assert_string_equal(l->head, v2);
  assert_int_equal(l->n_schemas, 2);
  assert_string_equal(l->schemas[0]->version, v2);
  assert_string_equal(l->schemas[1]->version, v1);
  assert_non_null(strstr(l->schemas[0]->created_at, " +0000 UTC"));
  tt_result_free(&r);
  free(v1);
  free(v2);
}

static void test_write_validation(void **state) {
  fixture_t *f = *state;
  tt_tuple_buf_t tb;
  tt_expect_error(
      tt_write_one(f->client, "t1", tt_tuple(&tb, "organization", "o1", "admin", "user", "u1", "")),
      5, "ERROR_CODE_SCHEMA_NOT_FOUND");
  tt_write_schema(f->client, "t1", NULL);
  static const struct {
    const char *tuple;
    int code;
    const char *want;
  } bad[] = {
      {"team:x#admin@user:u1", 5, "ERROR_CODE_SCHEMA_NOT_FOUND"},
      {"organization:o1#owner@user:u1", 5, "ERROR_CODE_RELATION_DEFINITION_NOT_FOUND"},
      {"organization:o1#view@user:u1", 5, "ERROR_CODE_RELATION_DEFINITION_NOT_FOUND"},
      {"organization:o1#admin@repository:r", 5, "ERROR_CODE_SUBJECT_TYPE_NOT_FOUND"},
      {"organization:o1#member@organization:o2", 5, "ERROR_CODE_SUBJECT_TYPE_NOT_FOUND"},
      {"organization:o1#member@organization:o2#member", 5, "ERROR_CODE_SUBJECT_TYPE_NOT_FOUND"},
      /* Entity equal to subject is checked before the relation (Permify's order). */
      {"organization:o1#member@organization:o1#member", 3,
       "ERROR_CODE_ENTITY_AND_SUBJECT_CANNOT_BE_EQUAL"},
      {"organization:o1#admin@organization:o1#admin", 3,
       "ERROR_CODE_ENTITY_AND_SUBJECT_CANNOT_BE_EQUAL"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    tt_expect_error(tt_write_one(f->client, "t1", tt_tuple_spec(&tb, bad[i].tuple)), bad[i].code,
                    bad[i].want);
  tt_expect_error_prefix(
      tt_write_one(f->client, "t1",
                   tt_tuple(&tb, "organization1", "o1", "admin", "user", "u1", "")),
      3,
      "invalid DataWriteRequest.Tuples[0]: embedded message failed validation | caused by: "
      "invalid Tuple.Entity: embedded message failed validation | caused by: invalid "
      "Entity.Type: value does not match regex pattern \"^[a-zA-Z_]{1,64}$\"");
  tt_expect_error(tt_write_one(f->client, "t1",
                               tt_tuple(&tb, "organization", "o\xff", "admin", "user", "u1", "")),
                  3, "proto: field base.v1.Entity.id contains invalid UTF-8");

  tt_attr_buf_t ab;
  tt_result_t r;
  Base__V1__Attribute *a = tt_bool_attr(&ab, "repository", "r1", "visibility", 1);
  tt_write_data(f->client, "t1", NULL, 0, &a, 1, &r);
  tt_expect_error(r, 5, "ERROR_CODE_ATTRIBUTE_DEFINITION_NOT_FOUND");
  tc_any_clear(&ab.any);
  a = tt_bool_attr(&ab, "organization", "o1", "ip_range", 1);
  tt_write_data(f->client, "t1", NULL, 0, &a, 1, &r);
  tt_expect_error(r, 5, "ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH");
  tc_any_clear(&ab.any);
  /* A value with no type URL (or none at all) is a mismatch too, as in Permify. */
  a = tt_bool_attr(&ab, "repository", "r1", "is_public", 1);
  tc_any_clear(&ab.any);
  tt_write_data(f->client, "t1", NULL, 0, &a, 1, &r);
  tt_expect_error(r, 5, "ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH");
  a->value = NULL;
  tt_write_data(f->client, "t1", NULL, 0, &a, 1, &r);
  tt_expect_error(r, 5, "ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH");

  /* All or nothing: a valid tuple beside an invalid one is not written. */
  tt_tuple_buf_t good, badt;
  Base__V1__Tuple *pair[] = {tt_tuple(&good, "organization", "o9", "admin", "user", "u9", ""),
                             tt_tuple(&badt, "organization", "o9", "nope", "user", "u9", "")};
  tt_write_data(f->client, "t1", pair, 2, NULL, 0, &r);
  tt_expect_error(r, 5, "ERROR_CODE_RELATION_DEFINITION_NOT_FOUND");
  tt_filter_buf_t orgs;
  Base__V1__TupleFilter *any_org = tt_entity_filter(&orgs, "organization", NULL);
  assert_int_equal(tt_read_tuples(f->client, "t1", "", any_org, 0), 0);

  /* More than max_data_per_write (1000) distinct items. */
  enum { N = 1001 };
  tt_tuple_buf_t *many = calloc(N, sizeof *many);
  Base__V1__Tuple **ptrs = calloc(N, sizeof *ptrs);
  char(*ids)[16] = calloc(N, sizeof *ids);
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], sizeof ids[i], "u%d", i);
    ptrs[i] = tt_tuple(&many[i], "organization", "big", "admin", "user", ids[i], "");
  }
  tt_write_data(f->client, "t1", ptrs, N, NULL, 0, &r);
  tt_expect_error(r, 3, "ERROR_CODE_MAX_DATA_PER_WRITE_EXCEEDED");
  /* Duplicates are counted once: 1001 copies of one tuple are one item. */
  for (int i = 0; i < N; i++)
    ptrs[i] = tt_tuple(&many[i], "organization", "big", "admin", "user", "u1", "");
  char *tok = tt_write_data(f->client, "t1", ptrs, N, NULL, 0, NULL);
  free(tok);
  tt_filter_buf_t bigf;
  Base__V1__TupleFilter *big = tt_entity_filter(&bigf, "organization", "big");
  assert_int_equal(tt_read_tuples(f->client, "t1", "", big, 0), 1);
  /* Interleaved duplicates: u1 u2 u1 u3 u2 keeps three. */
  static const char *const mix[] = {"u1", "u2", "u1", "u3", "u2"};
  for (int i = 0; i < 5; i++)
    ptrs[i] = tt_tuple(&many[i], "organization", "big", "member", "user", mix[i], "");
  tok = tt_write_data(f->client, "t1", ptrs, 5, NULL, 0, NULL);
  free(tok);
  assert_int_equal(tt_read_tuples(f->client, "t1", "", big, 0), 4);
  free(many);
  free(ptrs);
  free(ids);

  tt_expect_error(tt_write_one(f->client, "ghost",
                               tt_tuple(&tb, "organization", "o1", "admin", "user", "u1", "")),
                  5, "ERROR_CODE_TENANT_NOT_FOUND");
}

static void test_data_roundtrip(void **state) {
  fixture_t *f = *state;
  tt_write_schema(f->client, "t1", NULL);
  tt_tuple_buf_t tb[5];
  Base__V1__Tuple *ts[] = {
      tt_tuple(&tb[0], "organization", "o1", "admin", "user", "alice", ""),
      tt_tuple(&tb[1], "organization", "o1", "member", "user", "bob", ""),
      tt_tuple(&tb[2], "organization", "o1", "member", "organization", "o2", "admin"),
      tt_tuple(&tb[3], "repository", "r1", "parent", "organization", "o1", ""),
      tt_tuple(&tb[4], "repository", "r1", "owner", "user", "carol", ""),
  };
  tt_attr_buf_t ab;
  Base__V1__Attribute *a = tt_bool_attr(&ab, "repository", "r1", "is_public", 1);
  char *t1 = tt_write_data(f->client, "t1", ts, 5, &a, 1, NULL);
  tc_any_clear(&ab.any);
  assert_int_equal(tt_read_tuples(f->client, "t1", t1, NULL, 0), 5);
  for (uint32_t ps = 1; ps <= 6; ps++)
    assert_int_equal(tt_read_tuples(f->client, "t1", t1, NULL, ps), 5);

  /* Filters: entity type + ids, relation, subject type/relation. */
  tt_filter_buf_t o1;
  Base__V1__TupleFilter *tf = tt_entity_filter(&o1, "organization", "o1");
  Base__V1__SubjectFilter sf = BASE__V1__SUBJECT_FILTER__INIT;
  assert_int_equal(tt_read_tuples(f->client, "t1", t1, tf, 0), 3);
  tf->relation = "member";
  assert_int_equal(tt_read_tuples(f->client, "t1", t1, tf, 0), 2);
  sf.type = "organization";
  sf.relation = "admin";
  tf->subject = &sf;
  assert_int_equal(tt_read_tuples(f->client, "t1", t1, tf, 0), 1);

  /* A later delete is not visible at the earlier token, and is at its own. */
  char *t2 = tt_delete_type(f->client, "t1", "repository");
  assert_true(*t2);
  assert_int_equal(tt_read_tuples(f->client, "t1", t1, NULL, 0), 5);
  assert_int_equal(tt_read_tuples(f->client, "t1", t2, NULL, 0), 3);
  assert_int_equal(tt_read_tuples(f->client, "t1", "", NULL, 0), 3);

  /* Permify's quirk: an empty filter deletes nothing and answers "". */
  Base__V1__RelationshipDeleteRequest del = BASE__V1__RELATIONSHIP_DELETE_REQUEST__INIT;
  Base__V1__TupleFilter empty = BASE__V1__TUPLE_FILTER__INIT;
  del.tenant_id = "t1";
  del.filter = &empty;
  tt_result_t r = tt_call(f->client, "/base.v1.Data/DeleteRelationships", &del.base,
                          &base__v1__relationship_delete_response__descriptor);
  assert_int_equal(r.code, 0);
  assert_string_equal(((Base__V1__RelationshipDeleteResponse *)r.resp)->snap_token, "");
  tt_result_free(&r);
  assert_int_equal(tt_read_tuples(f->client, "t1", "", NULL, 0), 3);

  /* Attributes: read, overwrite, read at both tokens, delete. */
  Base__V1__AttributeReadRequest ar = BASE__V1__ATTRIBUTE_READ_REQUEST__INIT;
  Base__V1__AttributeReadRequestMetadata amd = BASE__V1__ATTRIBUTE_READ_REQUEST_METADATA__INIT;
  Base__V1__AttributeFilter af = BASE__V1__ATTRIBUTE_FILTER__INIT;
  ar.tenant_id = "t1";
  ar.metadata = &amd;
  ar.filter = &af;
  amd.snap_token = t1;
  r = tt_call(f->client, "/base.v1.Data/ReadAttributes", &ar.base,
              &base__v1__attribute_read_response__descriptor);
  assert_int_equal(r.code, 0);
  Base__V1__AttributeReadResponse *arr = (void *)r.resp;
  assert_int_equal(arr->n_attributes, 1);
  assert_string_equal(arr->attributes[0]->attribute, "is_public");
  assert_string_equal(arr->attributes[0]->value->type_url,
                      "type.googleapis.com/base.v1.BooleanValue");
  Base__V1__BooleanValue *bv = (void *)tc_any_unpack(arr->attributes[0]->value);
  assert_non_null(bv);
  assert_true(bv->data);
  protobuf_c_message_free_unpacked(&bv->base, NULL);
  tt_result_free(&r);

  a = tt_bool_attr(&ab, "repository", "r1", "is_public", 0);
  char *t3 = tt_write_data(f->client, "t1", NULL, 0, &a, 1, NULL);
  tc_any_clear(&ab.any);
  amd.snap_token = t3;
  r = tt_call(f->client, "/base.v1.Data/ReadAttributes", &ar.base,
              &base__v1__attribute_read_response__descriptor);
  arr = (void *)r.resp;
  assert_int_equal(arr->n_attributes, 1);
  bv = (void *)tc_any_unpack(arr->attributes[0]->value);
  assert_false(bv->data);
  protobuf_c_message_free_unpacked(&bv->base, NULL);
  tt_result_free(&r);

  Base__V1__DataDeleteRequest dd = BASE__V1__DATA_DELETE_REQUEST__INIT;
  Base__V1__TupleFilter none = BASE__V1__TUPLE_FILTER__INIT;
  Base__V1__AttributeFilter daf = BASE__V1__ATTRIBUTE_FILTER__INIT;
  char *names[] = {"is_public"};
  daf.attributes = names;
  daf.n_attributes = 1;
  dd.tenant_id = "t1";
  dd.tuple_filter = &none;
  dd.attribute_filter = &daf;
  r = tt_call(f->client, "/base.v1.Data/Delete", &dd.base,
              &base__v1__data_delete_response__descriptor);
  assert_int_equal(r.code, 0);
  char *t4 = strdup(((Base__V1__DataDeleteResponse *)r.resp)->snap_token);
  tt_result_free(&r);
  amd.snap_token = t4;
  r = tt_call(f->client, "/base.v1.Data/ReadAttributes", &ar.base,
              &base__v1__attribute_read_response__descriptor);
  assert_int_equal(((Base__V1__AttributeReadResponse *)r.resp)->n_attributes, 0);
  tt_result_free(&r);
  assert_int_equal(tt_read_tuples(f->client, "t1", t4, NULL, 0), 3);

  /* WriteRelationships needs at least one tuple; writes like Write. */
  Base__V1__RelationshipWriteRequest wr = BASE__V1__RELATIONSHIP_WRITE_REQUEST__INIT;
  Base__V1__RelationshipWriteRequestMetadata wmd =
      BASE__V1__RELATIONSHIP_WRITE_REQUEST_METADATA__INIT;
  wr.tenant_id = "t1";
  wr.metadata = &wmd;
  tt_expect_error_prefix(
      tt_call(f->client, "/base.v1.Data/WriteRelationships", &wr.base,
              &base__v1__relationship_write_response__descriptor),
      3, "invalid RelationshipWriteRequest.Tuples: value must contain at least 1 item(s)");
  Base__V1__Tuple *one[] = {tt_tuple(&tb[0], "repository", "r2", "owner", "user", "dave", "")};
  wr.tuples = one;
  wr.n_tuples = 1;
  r = tt_call(f->client, "/base.v1.Data/WriteRelationships", &wr.base,
              &base__v1__relationship_write_response__descriptor);
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
  assert_int_equal(tt_read_tuples(f->client, "t1", "", NULL, 0), 4);

  /* Bad tokens. */
  Base__V1__RelationshipReadRequest rr = BASE__V1__RELATIONSHIP_READ_REQUEST__INIT;
  Base__V1__RelationshipReadRequestMetadata rmd =
      BASE__V1__RELATIONSHIP_READ_REQUEST_METADATA__INIT;
  rr.tenant_id = "t1";
  rr.metadata = &rmd;
  rr.filter = &empty;
  rr.continuous_token = "!!notbase64";
  tt_expect_error(tt_call(f->client, "/base.v1.Data/ReadRelationships", &rr.base,
                          &base__v1__relationship_read_response__descriptor),
                  3, "ERROR_CODE_INVALID_CONTINUOUS_TOKEN");
  rr.continuous_token = "";
  rmd.snap_token = "6QIAAAAAAAA="; /* a Permify Postgres token */
  tt_expect_error_prefix(tt_call(f->client, "/base.v1.Data/ReadRelationships", &rr.base,
                                 &base__v1__relationship_read_response__descriptor),
                         3, "snap token 6QIAAAAAAAA= is a Permify Postgres token");
  rmd.snap_token = "garbage";
  tt_expect_error_prefix(tt_call(f->client, "/base.v1.Data/ReadRelationships", &rr.base,
                                 &base__v1__relationship_read_response__descriptor),
                         3, "snap token garbage is malformed");
  free(t1);
  free(t2);
  free(t3);
  free(t4);
}

static void test_bad_input(void **state) {
  fixture_t *f = *state;
  static const unsigned char junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
  tt_result_t r = {0};
  r.code = tc_client_unary_raw(f->client, "/base.v1.Data/Write", junk, sizeof junk,
                               &base__v1__data_write_response__descriptor, &r.resp, &r.details,
                               TT_TIMEOUT);
  assert_int_equal(r.code, 3);
  tt_result_free(&r);
  size_t big = 5u << 20;
  unsigned char *huge = calloc(1, big);
  huge[0] = 0x0a; /* field 1, length-delimited: a 5 MiB tenant id */
  size_t len = big - 6, k = 1;
  while (len >= 0x80) {
    huge[k++] = (unsigned char)(len | 0x80);
    len >>= 7;
  }
  huge[k++] = (unsigned char)len;
  r.code = tc_client_unary_raw(f->client, "/base.v1.Data/Write", huge, big - 6 + k,
                               &base__v1__data_write_response__descriptor, &r.resp, &r.details,
                               TT_TIMEOUT);
  assert_int_equal(r.code, 8);
  tt_result_free(&r);
  free(huge);
  /* Nothing was written by any of it, and the server still answers. */
  assert_int_equal(tt_read_tuples(f->client, "t1", "", NULL, 0), 0);
}

static void test_restart_keeps_data(void **state) {
  fixture_t *f = *state;
  tt_write_schema(f->client, "t1", NULL);
  tt_tuple_buf_t tb;
  Base__V1__Tuple *t = tt_tuple(&tb, "organization", "o1", "admin", "user", "u1", "");
  char *tok = tt_write_data(f->client, "t1", &t, 1, NULL, 0, NULL);
  assert_int_equal(stop(f), 0);
  assert_int_equal(start(f, "sqlite"), 0);
  assert_int_equal(tt_read_tuples(f->client, "t1", tok, NULL, 0), 1);
  char *tok2 = tt_write_data(f->client, "t1", &t, 1, NULL, 0, NULL);
  assert_true(strcmp(tok, tok2) != 0);
  free(tok);
  free(tok2);
}

static void test_memory_engine(void **state) {
  fixture_t *f = *state;
  assert_int_equal(stop(f), 0);
  assert_int_equal(start(f, "memory"), 0);
  tt_write_schema(f->client, "t1", NULL);
  tt_tuple_buf_t tb;
  Base__V1__Tuple *t = tt_tuple(&tb, "organization", "o1", "admin", "user", "u1", "");
  char *tok = tt_write_data(f->client, "t1", &t, 1, NULL, 0, NULL);
  assert_int_equal(tt_read_tuples(f->client, "t1", tok, NULL, 0), 1);
  free(tok);
}

static void test_cli(void **state) {
  (void)state;
  char *out;
  assert_int_equal(tc_proc_run((const char *[]){"serve", "--grpc-port", "abc", NULL}, &out), 2);
  assert_non_null(strstr(out, "--grpc-port: \"abc\" is not a port number"));
  /* One line naming the key and the problem. */
  assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
  free(out);
  assert_int_equal(tc_proc_run((const char *[]){"serve", "--authn-enabled", NULL}, &out), 2);
  assert_non_null(strstr(out, "authn.method: must be preshared or oidc"));
  free(out);
  assert_int_equal(
      tc_proc_run((const char *[]){"serve", "--authn-enabled", "--authn-method", "preshared", NULL},
                  &out),
      2);
  assert_non_null(strstr(out, "authn.preshared.keys: at least one key is required"));
  free(out);
  /* OIDC without an issuer cannot fetch keys: refused before any listener. */
  assert_int_equal(tc_proc_run((const char *[]){"serve", "--authn-enabled", "--authn-method",
                                                "oidc", "--database-engine", "memory", NULL},
                               &out),
                   2);
  assert_non_null(strstr(out, "authn.oidc.issuer: required when authn.method is oidc"));
  free(out);
  /* The engine's plugin, not core, says what its database.uri must be. */
  assert_int_equal(tc_proc_run((const char *[]){"serve", "--database-engine", "postgres",
                                                "--grpc-port", "0", NULL},
                               &out),
                   2);
  assert_non_null(strstr(out, "database.uri: required for the postgres engine"));
  free(out);
  assert_int_equal(
      tc_proc_run((const char *[]){"serve", "--database-engine", "postgres", "--database-uri",
                                   "postgres:///x", "--database-backend-dir", "/nonexistent",
                                   "--grpc-port", "0", NULL},
                  &out),
      2);
  assert_non_null(
      strstr(out, "database.engine: postgres: no backend plugin at /nonexistent/postgres.so"));
  free(out);
  /* migrate: SQLite migrates itself; a wrong subcommand is a usage error. */
  char *dir = tc_temp_dir(), db[512];
  snprintf(db, sizeof db, "%s/m.db", dir);
  assert_int_equal(
      tc_proc_run((const char *[]){"migrate", "status", "--database-uri", db, NULL}, &out), 0);
  free(out);
  assert_int_equal(tc_proc_run((const char *[]){"migrate", "sideways", NULL}, &out), 2);
  assert_non_null(strstr(out, "usage: tuplecast migrate up|status"));
  free(out);
  tc_temp_dir_remove(dir);
  free(dir);
  assert_int_equal(tc_proc_run((const char *[]){"version", NULL}, &out), 0);
  free(out);
}

/* A plugin dir holding the example plugin under a name core never heard of,
 * the sqlite plugin, and a file that is no plugin. */
static char *plugin_dir(void) {
  char *dir = tc_temp_dir(), from[1024], to[1024];
  const char *bin = getenv("TUPLECAST_BIN");
  const char *slash = strrchr(bin, '/');
  const char *names[][2] = {{"example", "mydb"}, {"sqlite", "sqlite"}};
  for (size_t i = 0; i < 2; i++) {
    snprintf(from, sizeof from, "%.*s/backends/%s.so", (int)(slash - bin), bin, names[i][0]);
    snprintf(to, sizeof to, "%s/%s.so", dir, names[i][1]);
    assert_int_equal(symlink(from, to), 0);
  }
  snprintf(to, sizeof to, "%s/README", dir);
  fclose(fopen(to, "w"));
  return dir;
}

/* Starts on engine, writes a tuple and reads it back, stops with exit 0. */
static void serve_on(const char *dir, const char *engine) {
  fixture_t f = {0};
  const char *args[] = {
      "--grpc-port", "0", "--http-port", "0", "--database-engine", engine, "--database-backend-dir",
      dir,           NULL};
  assert_int_equal(tc_proc_start(&f.proc, args), 0);
  assert_non_null(tc_proc_wait_log(&f.proc, 0, "database: ", 5000));
  assert_non_null(strstr(f.proc.log, "database: "));
  f.client = tc_client_new(f.proc.target);
  tt_write_schema(f.client, "t1", NULL);
  tt_tuple_buf_t tb;
  Base__V1__Tuple *t = tt_tuple(&tb, "organization", "o1", "admin", "user", "u1", "");
  char *tok = tt_write_data(f.client, "t1", &t, 1, NULL, 0, NULL);
  assert_int_equal(tt_read_tuples(f.client, "t1", tok, NULL, 0), 1);
  free(tok);
  assert_int_equal(stop(&f), 0);
}

/* Runs serve with args (NULL-ended); expects exit 2 and one line holding want. */
static void expect_refused(const char *const *args, const char *want) {
  char *out;
  assert_int_equal(tc_proc_run(args, &out), 2);
  const char *line = strstr(out, "tuplecast: ");
  if (!line || !strstr(line, want) || strchr(line, '\n') != out + strlen(out) - 1)
    fail_msg("want one last line holding '%s', got '%s'", want, out);
  free(out);
}

static void test_engine_plugins(void **state) {
  (void)state;
  char *dir = plugin_dir(), want[1024], path[1024];
  /* By name from the plugin dir, and by path. */
  serve_on(dir, "mydb");
  snprintf(path, sizeof path, "%s/mydb.so", dir);
  serve_on("/nonexistent", path);
  /* A name with no plugin: the error lists what the directory holds. */
  snprintf(want, sizeof want,
           "database.engine: nosuch: no backend plugin at %s/nosuch.so; plugins in %s: "
           "mydb, sqlite (memory: sqlite in memory)",
           dir, dir);
  expect_refused((const char *[]){"serve", "--database-engine", "nosuch", "--database-backend-dir",
                                  dir, "--grpc-port", "0", NULL},
                 want);
  /* Not a plain name, nor a path to a .so. */
  const char *bad[][2] = {{"../mydb", "\"../mydb\": a path must name a .so file"},
                          {"..", "\"..\" is not a plugin name"},
                          {".mydb", "\".mydb\" is not a plugin name"},
                          {"my db", "\"my db\" is not a plugin name"},
                          {"", "\"\" is not a plugin name"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_refused((const char *[]){"serve", "--database-engine", bad[i][0],
                                    "--database-backend-dir", dir, "--grpc-port", "0", NULL},
                   bad[i][1]);
  /* serve --help lists the plugins of the directory the flag names. */
  char *out;
  assert_int_equal(
      tc_proc_run((const char *[]){"serve", "--database-backend-dir", dir, "--help", NULL}, &out),
      0);
  snprintf(want, sizeof want, "  in %s: mydb, sqlite (memory: sqlite in memory)\n", dir);
  assert_non_null(strstr(out, want));
  free(out);
  tc_temp_dir_remove(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_health_and_unimplemented, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tenancy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_validation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_roundtrip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_keeps_data, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memory_engine, setup, teardown),
      cmocka_unit_test(test_cli),
      cmocka_unit_test(test_engine_plugins),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
