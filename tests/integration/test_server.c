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

#include <cmocka.h>

#include "any.h"
#include "base/v1/service.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc_client.h"
#include "server_proc.h"

#define TIMEOUT 10000

static const char schema_text[] =
    "entity user {}\n"
    "entity organization {\n"
    "  relation admin @user\n"
    "  relation member @user @organization#admin\n"
    "  attribute ip_range string[]\n"
    "  permission view = admin or member\n"
    "}\n"
    "entity repository {\n"
    "  relation parent @organization\n"
    "  relation owner @user\n"
    "  attribute is_public boolean\n"
    "  permission edit = parent.admin or owner\n"
    "  permission read = is_public or edit\n"
    "}\n";

typedef struct {
  char *dir, *db;
  tc_proc_t proc;
  tc_client_t *client;
} fixture_t;

/* ---- message builders ---------------------------------------------------- */

typedef struct {
  Base__V1__Entity entity;
  Base__V1__Subject subject;
  Base__V1__Tuple tuple;
} tuple_buf_t;

static Base__V1__Tuple *tuple(tuple_buf_t *b, const char *et, const char *eid, const char *rel,
                              const char *st, const char *sid, const char *srel) {
  base__v1__entity__init(&b->entity);
  base__v1__subject__init(&b->subject);
  base__v1__tuple__init(&b->tuple);
  b->entity.type = (char *)et;
  b->entity.id = (char *)eid;
  b->subject.type = (char *)st;
  b->subject.id = (char *)sid;
  b->subject.relation = (char *)srel;
  b->tuple.entity = &b->entity;
  b->tuple.relation = (char *)rel;
  b->tuple.subject = &b->subject;
  return &b->tuple;
}

typedef struct {
  Base__V1__Entity entity;
  Google__Protobuf__Any any;
  Base__V1__Attribute attr;
} attr_buf_t;

static Base__V1__Attribute *bool_attr(attr_buf_t *b, const char *et, const char *eid,
                                      const char *name, int value) {
  base__v1__entity__init(&b->entity);
  base__v1__attribute__init(&b->attr);
  google__protobuf__any__init(&b->any);
  Base__V1__BooleanValue v = BASE__V1__BOOLEAN_VALUE__INIT;
  v.data = value;
  assert_int_equal(tc_any_pack(&v.base, &b->any), 0);
  b->entity.type = (char *)et;
  b->entity.id = (char *)eid;
  b->attr.entity = &b->entity;
  b->attr.attribute = (char *)name;
  b->attr.value = &b->any;
  return &b->attr;
}

/* ---- calls --------------------------------------------------------------- */

typedef struct {
  int code;
  char *details;
  ProtobufCMessage *resp;
} result_t;

static result_t call(fixture_t *f, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *resp_desc) {
  result_t r = {0};
  r.code = tc_client_unary(f->client, method, req, resp_desc, &r.resp, &r.details, NULL,
                           TIMEOUT);
  return r;
}

static void result_free(result_t *r) {
  if (r->resp) protobuf_c_message_free_unpacked(r->resp, NULL);
  free(r->details);
  memset(r, 0, sizeof *r);
}

static void expect_error(result_t r, int code, const char *message) {
  if (r.code != code || !r.details || strcmp(r.details, message) != 0)
    fail_msg("expected %d \"%s\", got %d \"%s\"", code, message, r.code,
             r.details ? r.details : "");
  result_free(&r);
}

static void expect_error_prefix(result_t r, int code, const char *prefix) {
  if (r.code != code || !r.details || strncmp(r.details, prefix, strlen(prefix)) != 0)
    fail_msg("expected %d \"%s...\", got %d \"%s\"", code, prefix, r.code,
             r.details ? r.details : "");
  result_free(&r);
}

static char *write_data(fixture_t *f, const char *tenant, Base__V1__Tuple **tuples, size_t nt,
                        Base__V1__Attribute **attrs, size_t na, result_t *out) {
  Base__V1__DataWriteRequest req = BASE__V1__DATA_WRITE_REQUEST__INIT;
  Base__V1__DataWriteRequestMetadata md = BASE__V1__DATA_WRITE_REQUEST_METADATA__INIT;
  req.tenant_id = (char *)tenant;
  req.metadata = &md;
  req.tuples = tuples;
  req.n_tuples = nt;
  req.attributes = attrs;
  req.n_attributes = na;
  result_t r = call(f, "/base.v1.Data/Write", &req.base, &base__v1__data_write_response__descriptor);
  if (out) {
    *out = r;
    return NULL;
  }
  if (r.code != 0) fail_msg("write failed: %d %s", r.code, r.details ? r.details : "");
  char *token = strdup(((Base__V1__DataWriteResponse *)r.resp)->snap_token);
  result_free(&r);
  return token;
}

static result_t write_one(fixture_t *f, const char *tenant, Base__V1__Tuple *t) {
  result_t r;
  write_data(f, tenant, &t, 1, NULL, 0, &r);
  return r;
}

/* Reads every tuple page by page; returns the count, checks no id repeats. */
static size_t read_tuples(fixture_t *f, const char *tenant, const char *snap,
                          Base__V1__TupleFilter *filter, uint32_t page_size) {
  size_t total = 0;
  Base__V1__TupleFilter all = BASE__V1__TUPLE_FILTER__INIT;
  if (!filter) filter = &all;
  char *cont = strdup("");
  for (int page = 0; page < 1000; page++) {
    Base__V1__RelationshipReadRequest req = BASE__V1__RELATIONSHIP_READ_REQUEST__INIT;
    Base__V1__RelationshipReadRequestMetadata md =
        BASE__V1__RELATIONSHIP_READ_REQUEST_METADATA__INIT;
    md.snap_token = (char *)snap;
    req.tenant_id = (char *)tenant;
    req.metadata = &md;
    req.filter = filter;
    req.page_size = page_size;
    req.continuous_token = cont;
    result_t r = call(f, "/base.v1.Data/ReadRelationships", &req.base,
                      &base__v1__relationship_read_response__descriptor);
    if (r.code != 0) fail_msg("read failed: %d %s", r.code, r.details ? r.details : "");
    Base__V1__RelationshipReadResponse *resp = (void *)r.resp;
    if (page_size) assert_true(resp->n_tuples <= page_size);
    total += resp->n_tuples;
    free(cont);
    cont = strdup(resp->continuous_token);
    result_free(&r);
    if (!*cont) break;
  }
  free(cont);
  return total;
}

/* ---- fixture ------------------------------------------------------------- */

static int start(fixture_t *f, const char *engine) {
  const char *args[] = {"--grpc-port", "0", "--database-engine", engine, "--database-uri",
                        f->db, NULL};
  if (tc_proc_start(&f->proc, args) != 0) return -1;
  f->client = tc_client_new(f->proc.target);
  return f->client ? 0 : -1;
}

static int stop(fixture_t *f) {
  tc_client_free(f->client);
  f->client = NULL;
  return tc_proc_stop(&f->proc);
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

static void write_schema(fixture_t *f, const char *tenant, char **version) {
  Base__V1__SchemaWriteRequest req = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
  req.tenant_id = (char *)tenant;
  req.schema = (char *)schema_text;
  result_t r = call(f, "/base.v1.Schema/Write", &req.base,
                    &base__v1__schema_write_response__descriptor);
  if (r.code != 0) fail_msg("schema write: %d %s", r.code, r.details ? r.details : "");
  Base__V1__SchemaWriteResponse *resp = (void *)r.resp;
  assert_int_equal(strlen(resp->schema_version), 20);
  if (version) *version = strdup(resp->schema_version);
  result_free(&r);
}

static void create_tenant(fixture_t *f, const char *id) {
  Base__V1__TenantCreateRequest req = BASE__V1__TENANT_CREATE_REQUEST__INIT;
  req.id = (char *)id;
  req.name = (char *)id;
  result_t r = call(f, "/base.v1.Tenancy/Create", &req.base,
                    &base__v1__tenant_create_response__descriptor);
  if (r.code != 0) fail_msg("tenant create: %d %s", r.code, r.details ? r.details : "");
  Base__V1__TenantCreateResponse *resp = (void *)r.resp;
  assert_string_equal(resp->tenant->id, id);
  assert_non_null(resp->tenant->created_at);
  assert_true(resp->tenant->created_at->seconds > 1700000000);
  result_free(&r);
}

/* ---- tests --------------------------------------------------------------- */

static void test_health_and_unimplemented(void **state) {
  fixture_t *f = *state;
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  result_t r = call(f, "/grpc.health.v1.Health/Check", &req.base,
                    &grpc__health__v1__health_check_response__descriptor);
  assert_int_equal(r.code, 0);
  assert_int_equal(((Grpc__Health__V1__HealthCheckResponse *)r.resp)->status,
                   GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
  result_free(&r);
  Base__V1__BundleRunRequest b = BASE__V1__BUNDLE_RUN_REQUEST__INIT;
  b.tenant_id = "t1";
  r = call(f, "/base.v1.Data/RunBundle", &b.base, &base__v1__bundle_run_response__descriptor);
  assert_int_equal(r.code, 12);
  result_free(&r);
  r = call(f, "/base.v1.Permission/Check", &b.base, &base__v1__bundle_run_response__descriptor);
  assert_int_equal(r.code, 12);
  result_free(&r);
}

static void test_tenancy(void **state) {
  fixture_t *f = *state;
  create_tenant(f, "acme");
  Base__V1__TenantCreateRequest dup = BASE__V1__TENANT_CREATE_REQUEST__INIT;
  dup.id = "acme";
  dup.name = "again";
  expect_error(call(f, "/base.v1.Tenancy/Create", &dup.base,
                    &base__v1__tenant_create_response__descriptor),
               3, "ERROR_CODE_UNIQUE_CONSTRAINT");
  create_tenant(f, "beta");

  /* Page through all tenants one at a time: t1 (seeded), acme, beta. */
  const char *want[] = {"acme", "beta", "t1"};
  char *cont = strdup("");
  size_t seen = 0;
  for (;;) {
    Base__V1__TenantListRequest req = BASE__V1__TENANT_LIST_REQUEST__INIT;
    req.page_size = 1;
    req.continuous_token = cont;
    result_t r = call(f, "/base.v1.Tenancy/List", &req.base,
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
    result_free(&r);
    if (!*cont) break;
  }
  free(cont);
  assert_int_equal(seen, 3);

  Base__V1__TenantDeleteRequest del = BASE__V1__TENANT_DELETE_REQUEST__INIT;
  del.id = "nope";
  expect_error(call(f, "/base.v1.Tenancy/Delete", &del.base,
                    &base__v1__tenant_delete_response__descriptor),
               5, "ERROR_CODE_NOT_FOUND");

  /* A deleted tenant's data is gone and its calls are NOT_FOUND. */
  write_schema(f, "beta", NULL);
  tuple_buf_t tb;
  char *tok = write_data(f, "beta", (Base__V1__Tuple *[]){tuple(&tb, "organization", "o1", "admin", "user", "u1", "")}, 1, NULL, 0, NULL);
  free(tok);
  del.id = "beta";
  result_t r = call(f, "/base.v1.Tenancy/Delete", &del.base,
                    &base__v1__tenant_delete_response__descriptor);
  assert_int_equal(r.code, 0);
  assert_string_equal(((Base__V1__TenantDeleteResponse *)r.resp)->tenant_id, "beta");
  result_free(&r);
  expect_error(write_one(f, "beta", tuple(&tb, "organization", "o1", "admin", "user", "u2", "")),
               5, "ERROR_CODE_TENANT_NOT_FOUND");
  create_tenant(f, "beta");
  expect_error(write_one(f, "beta", tuple(&tb, "organization", "o1", "admin", "user", "u2", "")),
               5, "ERROR_CODE_SCHEMA_NOT_FOUND");
}

static void test_schema(void **state) {
  fixture_t *f = *state;
  Base__V1__SchemaReadRequest rd = BASE__V1__SCHEMA_READ_REQUEST__INIT;
  Base__V1__SchemaReadRequestMetadata rmd = BASE__V1__SCHEMA_READ_REQUEST_METADATA__INIT;
  rd.tenant_id = "t1";
  rd.metadata = &rmd;
  expect_error(call(f, "/base.v1.Schema/Read", &rd.base,
                    &base__v1__schema_read_response__descriptor),
               5, "ERROR_CODE_SCHEMA_NOT_FOUND");

  Base__V1__SchemaWriteRequest bad = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
  bad.tenant_id = "t1";
  bad.schema = "entity user {}\nentity doc {\n  relation owner @person\n}\n";
  result_t r = call(f, "/base.v1.Schema/Write", &bad.base,
                    &base__v1__schema_write_response__descriptor);
  assert_int_equal(r.code, 13);
  assert_non_null(strstr(r.details, ":"));
  assert_true(r.details[0] >= '1' && r.details[0] <= '9');
  result_free(&r);

  char *v1, *v2;
  write_schema(f, "t1", &v1);
  write_schema(f, "t1", &v2);
  assert_true(strcmp(v1, v2) < 0);

  rmd.schema_version = v1;
  r = call(f, "/base.v1.Schema/Read", &rd.base, &base__v1__schema_read_response__descriptor);
  assert_int_equal(r.code, 0);
  Base__V1__SchemaDefinition *def = ((Base__V1__SchemaReadResponse *)r.resp)->schema;
  assert_non_null(def);
  assert_int_equal(def->n_entity_definitions, 3);
  result_free(&r);

  Base__V1__SchemaListRequest ls = BASE__V1__SCHEMA_LIST_REQUEST__INIT;
  ls.tenant_id = "t1";
  ls.page_size = 10;
  r = call(f, "/base.v1.Schema/List", &ls.base, &base__v1__schema_list_response__descriptor);
  assert_int_equal(r.code, 0);
  Base__V1__SchemaListResponse *l = (void *)r.resp;
  assert_string_equal(l->head, v2);
  assert_int_equal(l->n_schemas, 2);
  assert_string_equal(l->schemas[0]->version, v2);
  assert_string_equal(l->schemas[1]->version, v1);
  assert_non_null(strstr(l->schemas[0]->created_at, " +0000 UTC"));
  result_free(&r);
  free(v1);
  free(v2);
}

static void test_write_validation(void **state) {
  fixture_t *f = *state;
  tuple_buf_t tb;
  expect_error(write_one(f, "t1", tuple(&tb, "organization", "o1", "admin", "user", "u1", "")),
               5, "ERROR_CODE_SCHEMA_NOT_FOUND");
  write_schema(f, "t1", NULL);
  expect_error(write_one(f, "t1", tuple(&tb, "team", "x", "admin", "user", "u1", "")), 5,
               "ERROR_CODE_SCHEMA_NOT_FOUND");
  expect_error(write_one(f, "t1", tuple(&tb, "organization", "o1", "owner", "user", "u1", "")),
               5, "ERROR_CODE_RELATION_DEFINITION_NOT_FOUND");
  expect_error(write_one(f, "t1", tuple(&tb, "organization", "o1", "view", "user", "u1", "")),
               5, "ERROR_CODE_RELATION_DEFINITION_NOT_FOUND");
  expect_error(write_one(f, "t1", tuple(&tb, "organization", "o1", "admin", "repository", "r", "")),
               5, "ERROR_CODE_SUBJECT_TYPE_NOT_FOUND");
  expect_error(write_one(f, "t1", tuple(&tb, "organization", "o1", "member", "organization", "o2", "")),
               5, "ERROR_CODE_SUBJECT_TYPE_NOT_FOUND");
  expect_error(write_one(f, "t1", tuple(&tb, "organization", "o1", "member", "organization", "o2", "member")),
               5, "ERROR_CODE_SUBJECT_TYPE_NOT_FOUND");
  /* Entity equal to subject is checked before the relation (Permify's order). */
  expect_error(write_one(f, "t1", tuple(&tb, "organization", "o1", "member", "organization", "o1", "member")),
               3, "ERROR_CODE_ENTITY_AND_SUBJECT_CANNOT_BE_EQUAL");
  expect_error(write_one(f, "t1", tuple(&tb, "organization", "o1", "admin", "organization", "o1", "admin")),
               3, "ERROR_CODE_ENTITY_AND_SUBJECT_CANNOT_BE_EQUAL");
  expect_error_prefix(
      write_one(f, "t1", tuple(&tb, "organization1", "o1", "admin", "user", "u1", "")), 3,
      "invalid DataWriteRequest.Tuples[0]: embedded message failed validation | caused by: "
      "invalid Tuple.Entity: embedded message failed validation | caused by: invalid "
      "Entity.Type: value does not match regex pattern \"^[a-zA-Z_]{1,64}$\"");
  expect_error(write_one(f, "t1", tuple(&tb, "organization", "o\xff", "admin", "user", "u1", "")),
               3, "proto: field base.v1.Entity.id contains invalid UTF-8");

  attr_buf_t ab;
  result_t r;
  Base__V1__Attribute *a = bool_attr(&ab, "repository", "r1", "visibility", 1);
  write_data(f, "t1", NULL, 0, &a, 1, &r);
  expect_error(r, 5, "ERROR_CODE_ATTRIBUTE_DEFINITION_NOT_FOUND");
  tc_any_clear(&ab.any);
  a = bool_attr(&ab, "organization", "o1", "ip_range", 1);
  write_data(f, "t1", NULL, 0, &a, 1, &r);
  expect_error(r, 5, "ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH");
  tc_any_clear(&ab.any);

  /* All or nothing: a valid tuple beside an invalid one is not written. */
  tuple_buf_t good, badt;
  Base__V1__Tuple *pair[] = {tuple(&good, "organization", "o9", "admin", "user", "u9", ""),
                             tuple(&badt, "organization", "o9", "nope", "user", "u9", "")};
  write_data(f, "t1", pair, 2, NULL, 0, &r);
  expect_error(r, 5, "ERROR_CODE_RELATION_DEFINITION_NOT_FOUND");
  Base__V1__TupleFilter tf = BASE__V1__TUPLE_FILTER__INIT;
  Base__V1__EntityFilter ef = BASE__V1__ENTITY_FILTER__INIT;
  ef.type = "organization";
  tf.entity = &ef;
  assert_int_equal(read_tuples(f, "t1", "", &tf, 0), 0);

  /* More than max_data_per_write (1000) distinct items. */
  enum { N = 1001 };
  tuple_buf_t *many = calloc(N, sizeof *many);
  Base__V1__Tuple **ptrs = calloc(N, sizeof *ptrs);
  char (*ids)[16] = calloc(N, sizeof *ids);
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], sizeof ids[i], "u%d", i);
    ptrs[i] = tuple(&many[i], "organization", "big", "admin", "user", ids[i], "");
  }
  write_data(f, "t1", ptrs, N, NULL, 0, &r);
  expect_error(r, 3, "ERROR_CODE_MAX_DATA_PER_WRITE_EXCEEDED");
  /* Duplicates are counted once: 1001 copies of one tuple are one item. */
  for (int i = 0; i < N; i++) ptrs[i] = tuple(&many[i], "organization", "big", "admin", "user", "u1", "");
  char *tok = write_data(f, "t1", ptrs, N, NULL, 0, NULL);
  free(tok);
  free(many);
  free(ptrs);
  free(ids);

  expect_error(write_one(f, "ghost", tuple(&tb, "organization", "o1", "admin", "user", "u1", "")),
               5, "ERROR_CODE_TENANT_NOT_FOUND");
}

static void test_data_roundtrip(void **state) {
  fixture_t *f = *state;
  write_schema(f, "t1", NULL);
  tuple_buf_t tb[5];
  Base__V1__Tuple *ts[] = {
      tuple(&tb[0], "organization", "o1", "admin", "user", "alice", ""),
      tuple(&tb[1], "organization", "o1", "member", "user", "bob", ""),
      tuple(&tb[2], "organization", "o1", "member", "organization", "o2", "admin"),
      tuple(&tb[3], "repository", "r1", "parent", "organization", "o1", ""),
      tuple(&tb[4], "repository", "r1", "owner", "user", "carol", ""),
  };
  attr_buf_t ab;
  Base__V1__Attribute *a = bool_attr(&ab, "repository", "r1", "is_public", 1);
  char *t1 = write_data(f, "t1", ts, 5, &a, 1, NULL);
  tc_any_clear(&ab.any);
  assert_int_equal(read_tuples(f, "t1", t1, NULL, 0), 5);
  for (uint32_t ps = 1; ps <= 6; ps++) assert_int_equal(read_tuples(f, "t1", t1, NULL, ps), 5);

  /* Filters: entity type + ids, relation, subject type/relation. */
  Base__V1__TupleFilter tf = BASE__V1__TUPLE_FILTER__INIT;
  Base__V1__EntityFilter ef = BASE__V1__ENTITY_FILTER__INIT;
  Base__V1__SubjectFilter sf = BASE__V1__SUBJECT_FILTER__INIT;
  char *o1[] = {"o1"};
  ef.type = "organization";
  ef.ids = o1;
  ef.n_ids = 1;
  tf.entity = &ef;
  assert_int_equal(read_tuples(f, "t1", t1, &tf, 0), 3);
  tf.relation = "member";
  assert_int_equal(read_tuples(f, "t1", t1, &tf, 0), 2);
  sf.type = "organization";
  sf.relation = "admin";
  tf.subject = &sf;
  assert_int_equal(read_tuples(f, "t1", t1, &tf, 0), 1);

  /* A later delete is not visible at the earlier token, and is at its own. */
  Base__V1__RelationshipDeleteRequest del = BASE__V1__RELATIONSHIP_DELETE_REQUEST__INIT;
  Base__V1__TupleFilter df = BASE__V1__TUPLE_FILTER__INIT;
  Base__V1__EntityFilter def = BASE__V1__ENTITY_FILTER__INIT;
  def.type = "repository";
  df.entity = &def;
  del.tenant_id = "t1";
  del.filter = &df;
  result_t r = call(f, "/base.v1.Data/DeleteRelationships", &del.base,
                    &base__v1__relationship_delete_response__descriptor);
  assert_int_equal(r.code, 0);
  char *t2 = strdup(((Base__V1__RelationshipDeleteResponse *)r.resp)->snap_token);
  assert_true(*t2);
  result_free(&r);
  assert_int_equal(read_tuples(f, "t1", t1, NULL, 0), 5);
  assert_int_equal(read_tuples(f, "t1", t2, NULL, 0), 3);
  assert_int_equal(read_tuples(f, "t1", "", NULL, 0), 3);

  /* Permify's quirk: an empty filter deletes nothing and answers "". */
  Base__V1__TupleFilter empty = BASE__V1__TUPLE_FILTER__INIT;
  del.filter = &empty;
  r = call(f, "/base.v1.Data/DeleteRelationships", &del.base,
           &base__v1__relationship_delete_response__descriptor);
  assert_int_equal(r.code, 0);
  assert_string_equal(((Base__V1__RelationshipDeleteResponse *)r.resp)->snap_token, "");
  result_free(&r);
  assert_int_equal(read_tuples(f, "t1", "", NULL, 0), 3);

  /* Attributes: read, overwrite, read at both tokens, delete. */
  Base__V1__AttributeReadRequest ar = BASE__V1__ATTRIBUTE_READ_REQUEST__INIT;
  Base__V1__AttributeReadRequestMetadata amd = BASE__V1__ATTRIBUTE_READ_REQUEST_METADATA__INIT;
  Base__V1__AttributeFilter af = BASE__V1__ATTRIBUTE_FILTER__INIT;
  ar.tenant_id = "t1";
  ar.metadata = &amd;
  ar.filter = &af;
  amd.snap_token = t1;
  r = call(f, "/base.v1.Data/ReadAttributes", &ar.base,
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
  result_free(&r);

  a = bool_attr(&ab, "repository", "r1", "is_public", 0);
  char *t3 = write_data(f, "t1", NULL, 0, &a, 1, NULL);
  tc_any_clear(&ab.any);
  amd.snap_token = t3;
  r = call(f, "/base.v1.Data/ReadAttributes", &ar.base,
           &base__v1__attribute_read_response__descriptor);
  arr = (void *)r.resp;
  assert_int_equal(arr->n_attributes, 1);
  bv = (void *)tc_any_unpack(arr->attributes[0]->value);
  assert_false(bv->data);
  protobuf_c_message_free_unpacked(&bv->base, NULL);
  result_free(&r);

  Base__V1__DataDeleteRequest dd = BASE__V1__DATA_DELETE_REQUEST__INIT;
  Base__V1__TupleFilter none = BASE__V1__TUPLE_FILTER__INIT;
  Base__V1__AttributeFilter daf = BASE__V1__ATTRIBUTE_FILTER__INIT;
  char *names[] = {"is_public"};
  daf.attributes = names;
  daf.n_attributes = 1;
  dd.tenant_id = "t1";
  dd.tuple_filter = &none;
  dd.attribute_filter = &daf;
  r = call(f, "/base.v1.Data/Delete", &dd.base, &base__v1__data_delete_response__descriptor);
  assert_int_equal(r.code, 0);
  char *t4 = strdup(((Base__V1__DataDeleteResponse *)r.resp)->snap_token);
  result_free(&r);
  amd.snap_token = t4;
  r = call(f, "/base.v1.Data/ReadAttributes", &ar.base,
           &base__v1__attribute_read_response__descriptor);
  assert_int_equal(((Base__V1__AttributeReadResponse *)r.resp)->n_attributes, 0);
  result_free(&r);
  assert_int_equal(read_tuples(f, "t1", t4, NULL, 0), 3);

  /* WriteRelationships needs at least one tuple; writes like Write. */
  Base__V1__RelationshipWriteRequest wr = BASE__V1__RELATIONSHIP_WRITE_REQUEST__INIT;
  Base__V1__RelationshipWriteRequestMetadata wmd =
      BASE__V1__RELATIONSHIP_WRITE_REQUEST_METADATA__INIT;
  wr.tenant_id = "t1";
  wr.metadata = &wmd;
  expect_error_prefix(call(f, "/base.v1.Data/WriteRelationships", &wr.base,
                           &base__v1__relationship_write_response__descriptor),
                      3, "invalid RelationshipWriteRequest.Tuples: value must contain at least 1 item(s)");
  Base__V1__Tuple *one[] = {tuple(&tb[0], "repository", "r2", "owner", "user", "dave", "")};
  wr.tuples = one;
  wr.n_tuples = 1;
  r = call(f, "/base.v1.Data/WriteRelationships", &wr.base,
           &base__v1__relationship_write_response__descriptor);
  assert_int_equal(r.code, 0);
  result_free(&r);
  assert_int_equal(read_tuples(f, "t1", "", NULL, 0), 4);

  /* Bad tokens. */
  Base__V1__RelationshipReadRequest rr = BASE__V1__RELATIONSHIP_READ_REQUEST__INIT;
  Base__V1__RelationshipReadRequestMetadata rmd =
      BASE__V1__RELATIONSHIP_READ_REQUEST_METADATA__INIT;
  rr.tenant_id = "t1";
  rr.metadata = &rmd;
  rr.filter = &empty;
  rr.continuous_token = "!!notbase64";
  expect_error(call(f, "/base.v1.Data/ReadRelationships", &rr.base,
                    &base__v1__relationship_read_response__descriptor),
               3, "ERROR_CODE_INVALID_CONTINUOUS_TOKEN");
  rr.continuous_token = "";
  rmd.snap_token = "6QIAAAAAAAA="; /* a Permify Postgres token */
  expect_error_prefix(call(f, "/base.v1.Data/ReadRelationships", &rr.base,
                           &base__v1__relationship_read_response__descriptor),
                      3, "snap token 6QIAAAAAAAA= is a Permify Postgres token");
  rmd.snap_token = "garbage";
  expect_error_prefix(call(f, "/base.v1.Data/ReadRelationships", &rr.base,
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
  result_t r = {0};
  r.code = tc_client_unary_raw(f->client, "/base.v1.Data/Write", junk, sizeof junk,
                               &base__v1__data_write_response__descriptor, &r.resp,
                               &r.details, TIMEOUT);
  assert_int_equal(r.code, 3);
  result_free(&r);
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
                               &base__v1__data_write_response__descriptor, &r.resp,
                               &r.details, TIMEOUT);
  assert_int_equal(r.code, 8);
  result_free(&r);
  free(huge);
  /* Nothing was written by any of it, and the server still answers. */
  assert_int_equal(read_tuples(f, "t1", "", NULL, 0), 0);
}

static void test_restart_keeps_data(void **state) {
  fixture_t *f = *state;
  write_schema(f, "t1", NULL);
  tuple_buf_t tb;
  Base__V1__Tuple *t = tuple(&tb, "organization", "o1", "admin", "user", "u1", "");
  char *tok = write_data(f, "t1", &t, 1, NULL, 0, NULL);
  assert_int_equal(stop(f), 0);
  assert_int_equal(start(f, "sqlite"), 0);
  assert_int_equal(read_tuples(f, "t1", tok, NULL, 0), 1);
  char *tok2 = write_data(f, "t1", &t, 1, NULL, 0, NULL);
  assert_true(strcmp(tok, tok2) != 0);
  free(tok);
  free(tok2);
}

static void test_memory_engine(void **state) {
  fixture_t *f = *state;
  assert_int_equal(stop(f), 0);
  assert_int_equal(start(f, "memory"), 0);
  write_schema(f, "t1", NULL);
  tuple_buf_t tb;
  Base__V1__Tuple *t = tuple(&tb, "organization", "o1", "admin", "user", "u1", "");
  char *tok = write_data(f, "t1", &t, 1, NULL, 0, NULL);
  assert_int_equal(read_tuples(f, "t1", tok, NULL, 0), 1);
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
  assert_non_null(strstr(out, "--authn-enabled: true is not supported yet"));
  free(out);
  assert_int_equal(tc_proc_run((const char *[]){"serve", "--database-engine", "postgres",
                                                "--database-uri", "postgres:///x",
                                                "--grpc-port", "0", NULL},
                               &out),
                   2);
  assert_non_null(strstr(out, "database.engine: postgres: no backend plugin at "));
  free(out);
  assert_int_equal(tc_proc_run((const char *[]){"version", NULL}, &out), 0);
  free(out);
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
