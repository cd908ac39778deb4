/* Unit tests for tc_validate_request: Permify's PGV rules and exact texts;
 * and for the decoders' string checks (tc_validate_wire): UTF-8 and NUL bytes.
 *
 * The expected strings are written out from Permify's validation rules (its
 * proto annotations) and the texts it answers with; they are the contract.
 *
 * Ownership: every message lives on the test's stack; error texts are freed
 * by the expect_* helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/v1/base.pb-c.h"
#include "base/v1/service.pb-c.h"
#include "tuplecast/errors.h"
#include "validate.h"

#define NAME_RE "\"^[a-zA-Z_]{1,64}$\""
#define ID_RE "\"^([a-zA-Z0-9_\\\\-@\\\\.:+]{1,128}|\\\\*)$\""
#define TENANT_RE "\"[a-zA-Z0-9-,]+\""
#define EMBEDDED ": embedded message failed validation | caused by: "
/* Where in a DataWriteRequest a nested error is. */
#define TUPLE0 "invalid DataWriteRequest.Tuples[0]" EMBEDDED
#define TUPLE0_ENTITY TUPLE0 "invalid Tuple.Entity" EMBEDDED
#define TUPLE0_SUBJECT TUPLE0 "invalid Tuple.Subject" EMBEDDED

static void expect_ok(const void *msg) {
  char *err = NULL;
  int rc = tc_validate_request(msg, &err);
  if (rc) print_error("unexpected: %s\n", err ? err : "(no message)");
  assert_int_equal(rc, 0);
  assert_null(err);
}

static void expect_error(const void *msg, const char *want) {
  char *err = NULL;
  assert_int_equal(tc_validate_request(msg, &err), TC_EVALIDATION);
  assert_non_null(err);
  assert_string_equal(err, want);
  free(err);
}

/* n copies of c in buf (which holds at least n + 1 bytes). */
static char *fill(char *buf, char c, size_t n) {
  memset(buf, c, n);
  buf[n] = '\0';
  return buf;
}

#define N(a) (sizeof(a) / sizeof(a)[0])

/* One value of a string field and what the request then answers: want, or
 * valid when want is NULL. */
struct field_case {
  const char *value, *want;
};

/* Sets *field to each case's value in turn and checks msg; then puts the
 * field's own value back. */
static void expect_field(const void *msg, char **field, const struct field_case *cases, size_t n) {
  char *own = *field;
  for (size_t i = 0; i < n; i++) {
    *field = (char *)cases[i].value;
    if (cases[i].want)
      expect_error(msg, cases[i].want);
    else
      expect_ok(msg);
  }
  *field = own;
}

/* ---- Fixtures: a valid request of each shape, to be broken one field at a time. ---- */

struct write_fx {
  Base__V1__Entity entity, attr_entity;
  Base__V1__Subject subject;
  Base__V1__Tuple tuple;
  Base__V1__Tuple *tuples[2];
  Base__V1__Attribute attr;
  Base__V1__Attribute *attrs[1];
  Base__V1__DataWriteRequestMetadata md;
  Base__V1__DataWriteRequest req;
};

static void write_fx_init(struct write_fx *x) {
  *x = (struct write_fx){
      .entity = BASE__V1__ENTITY__INIT,
      .attr_entity = BASE__V1__ENTITY__INIT,
      .subject = BASE__V1__SUBJECT__INIT,
      .tuple = BASE__V1__TUPLE__INIT,
      .attr = BASE__V1__ATTRIBUTE__INIT,
      .md = BASE__V1__DATA_WRITE_REQUEST_METADATA__INIT,
      .req = BASE__V1__DATA_WRITE_REQUEST__INIT,
  };
  x->entity.type = "document";
  x->entity.id = "1";
  x->subject.type = "user";
  x->subject.id = "alice";
  x->tuple.entity = &x->entity;
  x->tuple.relation = "viewer";
  x->tuple.subject = &x->subject;
  x->tuples[0] = &x->tuple;
  x->tuples[1] = &x->tuple;
  x->attr_entity.type = "document";
  x->attr_entity.id = "1";
  x->attr.entity = &x->attr_entity;
  x->attr.attribute = "is_public";
  x->attrs[0] = &x->attr;
  x->req.tenant_id = "t1";
  x->req.metadata = &x->md;
  x->req.n_tuples = 1;
  x->req.tuples = x->tuples;
  x->req.n_attributes = 1;
  x->req.attributes = x->attrs;
}

struct filter_fx {
  Base__V1__EntityFilter entity;
  Base__V1__SubjectFilter subject;
  Base__V1__TupleFilter tuples;
  Base__V1__EntityFilter attr_entity;
  Base__V1__AttributeFilter attrs;
  char *ids[1];
};

static void filter_fx_init(struct filter_fx *x) {
  *x = (struct filter_fx){
      .entity = BASE__V1__ENTITY_FILTER__INIT,
      .subject = BASE__V1__SUBJECT_FILTER__INIT,
      .tuples = BASE__V1__TUPLE_FILTER__INIT,
      .attr_entity = BASE__V1__ENTITY_FILTER__INIT,
      .attrs = BASE__V1__ATTRIBUTE_FILTER__INIT,
  };
  x->ids[0] = "1";
  x->entity.type = "document";
  x->entity.n_ids = 1;
  x->entity.ids = x->ids;
  x->subject.type = "user";
  x->subject.relation = "member";
  x->tuples.entity = &x->entity;
  x->tuples.relation = "viewer";
  x->tuples.subject = &x->subject;
  x->attr_entity.type = "document";
  x->attrs.entity = &x->attr_entity;
}

/* The data service's other requests, valid, over the write fixture's tuples
 * and the filter fixture. */
struct req_fx {
  struct write_fx w;
  struct filter_fx f;
  Base__V1__RelationshipWriteRequestMetadata rwmd;
  Base__V1__RelationshipWriteRequest rw;
  Base__V1__RelationshipReadRequestMetadata rrmd;
  Base__V1__RelationshipReadRequest rr;
  Base__V1__AttributeReadRequestMetadata armd;
  Base__V1__AttributeReadRequest ar;
  Base__V1__DataDeleteRequest dd;
  Base__V1__RelationshipDeleteRequest rd;
};

static void req_fx_init(struct req_fx *x) {
  *x = (struct req_fx){
      .rwmd = BASE__V1__RELATIONSHIP_WRITE_REQUEST_METADATA__INIT,
      .rw = BASE__V1__RELATIONSHIP_WRITE_REQUEST__INIT,
      .rrmd = BASE__V1__RELATIONSHIP_READ_REQUEST_METADATA__INIT,
      .rr = BASE__V1__RELATIONSHIP_READ_REQUEST__INIT,
      .armd = BASE__V1__ATTRIBUTE_READ_REQUEST_METADATA__INIT,
      .ar = BASE__V1__ATTRIBUTE_READ_REQUEST__INIT,
      .dd = BASE__V1__DATA_DELETE_REQUEST__INIT,
      .rd = BASE__V1__RELATIONSHIP_DELETE_REQUEST__INIT,
  };
  write_fx_init(&x->w);
  filter_fx_init(&x->f);
  x->rw.tenant_id = x->rr.tenant_id = x->ar.tenant_id = x->dd.tenant_id = x->rd.tenant_id = "t1";
  x->rw.metadata = &x->rwmd;
  x->rw.n_tuples = 1;
  x->rw.tuples = x->w.tuples;
  x->rr.metadata = &x->rrmd;
  x->rr.filter = &x->f.tuples;
  x->ar.metadata = &x->armd;
  x->ar.filter = &x->f.attrs;
  x->dd.tuple_filter = &x->f.tuples;
  x->dd.attribute_filter = &x->f.attrs;
  x->rd.filter = &x->f.tuples;
}

/* ---- Valid requests ---- */

static void test_valid_data_requests(void **state) {
  (void)state;
  struct req_fx x;
  req_fx_init(&x);
  expect_ok(&x.w.req);
  x.w.req.n_tuples = 0;
  x.w.req.n_attributes = 0;
  expect_ok(&x.w.req); /* min_items 0 */

  x.rw.n_tuples = 2;
  expect_ok(&x.rw);

  x.rr.page_size = 0; /* gte 1 with ignore_empty: 0 means "not set" */
  expect_ok(&x.rr);
  x.rr.page_size = 1;
  x.rr.continuous_token = "";
  expect_ok(&x.rr);

  expect_ok(&x.ar);
  expect_ok(&x.dd);

  x.rd.filter = NULL;
  expect_ok(&x.rd); /* filter is not required */
  x.rd.filter = &x.f.tuples;
  expect_ok(&x.rd);

  Base__V1__BundleRunRequest__ArgumentsEntry arg =
      BASE__V1__BUNDLE_RUN_REQUEST__ARGUMENTS_ENTRY__INIT;
  arg.key = "creatorID";
  arg.value = "564";
  Base__V1__BundleRunRequest__ArgumentsEntry *args[] = {&arg};
  Base__V1__BundleRunRequest br = BASE__V1__BUNDLE_RUN_REQUEST__INIT;
  br.tenant_id = "t1";
  br.name = "organization_created";
  br.n_arguments = 1;
  br.arguments = args;
  expect_ok(&br);
}

static void test_valid_filters_may_be_empty(void **state) {
  (void)state;
  Base__V1__TupleFilter tf = BASE__V1__TUPLE_FILTER__INIT;
  Base__V1__AttributeFilter af = BASE__V1__ATTRIBUTE_FILTER__INIT;
  Base__V1__RelationshipReadRequestMetadata md = BASE__V1__RELATIONSHIP_READ_REQUEST_METADATA__INIT;
  Base__V1__RelationshipReadRequest rr = BASE__V1__RELATIONSHIP_READ_REQUEST__INIT;
  rr.tenant_id = "t1";
  rr.metadata = &md;
  rr.filter = &tf; /* `{}`: relation "" is ignore_empty */
  expect_ok(&rr);

  Base__V1__SubjectFilter sf = BASE__V1__SUBJECT_FILTER__INIT;
  tf.subject = &sf;
  expect_ok(&rr);

  Base__V1__DataDeleteRequest dd = BASE__V1__DATA_DELETE_REQUEST__INIT;
  dd.tenant_id = "t1";
  dd.tuple_filter = &tf;
  dd.attribute_filter = &af;
  expect_ok(&dd);
}

static void test_valid_other_services(void **state) {
  (void)state;
  Base__V1__WatchRequest wr = BASE__V1__WATCH_REQUEST__INIT;
  wr.tenant_id = "t1";
  expect_ok(&wr);

  Base__V1__SchemaWriteRequest sw = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
  sw.tenant_id = "t1";
  sw.schema = "entity user {}";
  expect_ok(&sw);

  Base__V1__SchemaPartialWriteRequestMetadata pwmd =
      BASE__V1__SCHEMA_PARTIAL_WRITE_REQUEST_METADATA__INIT;
  Base__V1__SchemaPartialWriteRequest pw = BASE__V1__SCHEMA_PARTIAL_WRITE_REQUEST__INIT;
  pw.tenant_id = "t1";
  pw.metadata = &pwmd;
  expect_ok(&pw);

  Base__V1__SchemaReadRequestMetadata srmd = BASE__V1__SCHEMA_READ_REQUEST_METADATA__INIT;
  Base__V1__SchemaReadRequest sr = BASE__V1__SCHEMA_READ_REQUEST__INIT;
  sr.tenant_id = "t1";
  sr.metadata = &srmd;
  expect_ok(&sr);

  Base__V1__SchemaListRequest sl = BASE__V1__SCHEMA_LIST_REQUEST__INIT;
  sl.tenant_id = "t1";
  expect_ok(&sl); /* page_size 0 */

  Base__V1__TenantCreateRequest tc = BASE__V1__TENANT_CREATE_REQUEST__INIT;
  tc.id = "acme";
  expect_ok(&tc); /* name "" allowed */

  Base__V1__TenantDeleteRequest td = BASE__V1__TENANT_DELETE_REQUEST__INIT;
  expect_ok(&td); /* id has no effective rule */

  Base__V1__TenantListRequest tl = BASE__V1__TENANT_LIST_REQUEST__INIT;
  expect_ok(&tl);
  tl.page_size = 100;
  expect_ok(&tl);
}

/* ---- Identifiers: the ID and NAME patterns ---- */

static void test_id_pattern(void **state) {
  (void)state;
  struct write_fx w;
  write_fx_init(&w);
  char x128[129], x129[130], star129[130];
  const struct field_case entity_id[] = {
      {"*", NULL},
      {"a_b-c@d.e:f+G9", NULL},
      {fill(x128, 'x', 128), NULL},
      {fill(x129, 'x', 129),
       TUPLE0_ENTITY "invalid Entity.Id: value length must be at most 128 bytes"},
      /* length is checked before the pattern */
      {fill(star129, '*', 129),
       TUPLE0_ENTITY "invalid Entity.Id: value length must be at most 128 bytes"},
      {"a*", TUPLE0_ENTITY "invalid Entity.Id: value does not match regex pattern " ID_RE},
      {"", TUPLE0_ENTITY "invalid Entity.Id: value does not match regex pattern " ID_RE},
  };
  expect_field(&w.req, &w.entity.id, entity_id, N(entity_id));

  w.subject.id = "a b";
  expect_error(&w.req,
               TUPLE0_SUBJECT "invalid Subject.Id: value does not match regex pattern " ID_RE);
}

static void test_id_pattern_spelled_out(void **state) {
  (void)state;
  Base__V1__WatchRequest wr = BASE__V1__WATCH_REQUEST__INIT;
  wr.tenant_id = "";
  expect_error(&wr,
               "invalid WatchRequest.TenantId: value does not match regex pattern "
               "\"^([a-zA-Z0-9_\\\\-@\\\\.:+]{1,128}|\\\\*)$\"");
}

static void test_name_pattern(void **state) {
  (void)state;
  struct write_fx w;
  write_fx_init(&w);
  char a64[65], a65[66];
  const struct field_case entity_type[] = {
      {fill(a64, 'a', 64), NULL},
      {fill(a65, 'a', 65),
       TUPLE0_ENTITY "invalid Entity.Type: value length must be at most 64 bytes"},
      {"doc1", /* no digits in names */
       "invalid DataWriteRequest.Tuples[0]: embedded message failed validation | "
       "caused by: invalid Tuple.Entity: embedded message failed validation | "
       "caused by: invalid Entity.Type: value does not match regex pattern "
       "\"^[a-zA-Z_]{1,64}$\""},
      {"user\n", /* Go's $ is the end of the text */
       TUPLE0_ENTITY "invalid Entity.Type: value does not match regex pattern " NAME_RE},
      {"", TUPLE0_ENTITY "invalid Entity.Type: value does not match regex pattern " NAME_RE},
      {"Document_Type", NULL},
  };
  expect_field(&w.req, &w.entity.type, entity_type, N(entity_type));
}

static void test_tuple_rules(void **state) {
  (void)state;
  struct write_fx w;
  write_fx_init(&w);

  w.tuple.relation = "";
  expect_error(&w.req,
               TUPLE0 "invalid Tuple.Relation: value does not match regex pattern " NAME_RE);
  w.tuple.relation = "viewer";

  w.subject.type = "us-er";
  expect_error(&w.req,
               TUPLE0_SUBJECT "invalid Subject.Type: value does not match regex pattern " NAME_RE);
  w.subject.type = "group";

  const struct field_case subject_relation[] = {
      {"", NULL}, /* ignore_empty: direct subject */
      {"member", NULL},
      {"member2",
       TUPLE0_SUBJECT "invalid Subject.Relation: value does not match regex pattern " NAME_RE},
  };
  expect_field(&w.req, &w.subject.relation, subject_relation, N(subject_relation));

  w.tuple.subject = NULL;
  expect_error(&w.req, TUPLE0 "invalid Tuple.Subject: value is required");
  w.tuple.entity = NULL; /* declaration order: entity before subject */
  expect_error(&w.req, TUPLE0 "invalid Tuple.Entity: value is required");
}

static void test_write_request_rules(void **state) {
  (void)state;
  struct write_fx w;
  write_fx_init(&w);
  char buf[256];

  w.req.tenant_id = fill(buf, 't', 128);
  expect_ok(&w.req);
  w.req.tenant_id = fill(buf, 't', 129);
  expect_error(&w.req, "invalid DataWriteRequest.TenantId: value length must be at most 128 bytes");
  w.req.tenant_id = "*";
  expect_ok(&w.req);
  w.req.tenant_id = "";
  w.req.metadata = NULL; /* first error only */
  expect_error(&w.req,
               "invalid DataWriteRequest.TenantId: value does not match regex pattern " ID_RE);
  w.req.tenant_id = "t1";
  expect_error(&w.req, "invalid DataWriteRequest.Metadata: value is required");
  w.req.metadata = &w.md;

  /* the second tuple is the broken one */
  Base__V1__Entity bad = BASE__V1__ENTITY__INIT;
  bad.type = "document";
  bad.id = "#";
  Base__V1__Tuple bad_tuple = w.tuple;
  bad_tuple.entity = &bad;
  w.tuples[1] = &bad_tuple;
  w.req.n_tuples = 2;
  expect_error(&w.req, "invalid DataWriteRequest.Tuples[1]" EMBEDDED "invalid Tuple.Entity" EMBEDDED
                       "invalid Entity.Id: value does not match regex pattern " ID_RE);
  w.tuples[1] = NULL;
  expect_error(&w.req, "invalid DataWriteRequest.Tuples[1]: value is required");
  w.req.n_tuples = 1;

  w.attr.entity = NULL;
  expect_error(&w.req, "invalid DataWriteRequest.Attributes[0]" EMBEDDED
                       "invalid Attribute.Entity: value is required");
  w.attr.entity = &w.attr_entity;
  w.attr_entity.type = "";
  expect_error(&w.req,
               "invalid DataWriteRequest.Attributes[0]" EMBEDDED "invalid Attribute.Entity" EMBEDDED
               "invalid Entity.Type: value does not match regex pattern " NAME_RE);
  w.attr_entity.type = "document";
  w.attr.attribute = "1 not a name"; /* Attribute.attribute has no rule */
  expect_ok(&w.req);
  w.attrs[0] = NULL;
  expect_error(&w.req, "invalid DataWriteRequest.Attributes[0]: value is required");
}

static void test_relationship_write_rules(void **state) {
  (void)state;
  struct req_fx x;
  req_fx_init(&x);
  x.rw.n_tuples = 0;
  expect_error(&x.rw,
               "invalid RelationshipWriteRequest.Tuples: value must contain at least 1 item(s)");
  x.rw.n_tuples = 1;
  expect_ok(&x.rw);
  x.w.tuple.relation = "Viewer-1";
  expect_error(&x.rw, "invalid RelationshipWriteRequest.Tuples[0]" EMBEDDED
                      "invalid Tuple.Relation: value does not match regex pattern " NAME_RE);
  x.rw.metadata = NULL;
  expect_error(&x.rw, "invalid RelationshipWriteRequest.Metadata: value is required");
  x.rw.tenant_id = "t 1";
  expect_error(
      &x.rw,
      "invalid RelationshipWriteRequest.TenantId: value does not match regex pattern " ID_RE);
}

static void test_read_request_rules(void **state) {
  (void)state;
  struct req_fx x;
  req_fx_init(&x);
  struct filter_fx *f = &x.f;
  x.rr.filter = NULL;
  expect_error(&x.rr, "invalid RelationshipReadRequest.Filter: value is required");
  x.rr.filter = &f->tuples;
  f->tuples.relation = "1";
  expect_error(&x.rr, "invalid RelationshipReadRequest.Filter" EMBEDDED
                      "invalid TupleFilter.Relation: value does not match regex pattern " NAME_RE);
  f->tuples.relation = "";
  f->subject.relation = "x1";
  expect_error(&x.rr,
               "invalid RelationshipReadRequest.Filter" EMBEDDED
               "invalid TupleFilter.Subject" EMBEDDED
               "invalid SubjectFilter.Relation: value does not match regex pattern " NAME_RE);
  f->subject.relation = "";
  f->ids[0] = "not an id"; /* EntityFilter and SubjectFilter ids have no rule */
  f->entity.type = "";
  expect_ok(&x.rr);
  x.rr.metadata = NULL;
  expect_error(&x.rr, "invalid RelationshipReadRequest.Metadata: value is required");

  x.ar.metadata = NULL;
  x.ar.filter = NULL;
  expect_error(&x.ar, "invalid AttributeReadRequest.Metadata: value is required");
  x.ar.metadata = &x.armd;
  expect_error(&x.ar, "invalid AttributeReadRequest.Filter: value is required");
  x.ar.filter = &f->attrs;
  x.ar.page_size = 0;
  x.ar.continuous_token = "";
  expect_ok(&x.ar);
  x.ar.tenant_id = "";
  expect_error(&x.ar,
               "invalid AttributeReadRequest.TenantId: value does not match regex pattern " ID_RE);
}

static void test_delete_request_rules(void **state) {
  (void)state;
  struct req_fx x;
  req_fx_init(&x);
  x.dd.tuple_filter = NULL;
  x.dd.attribute_filter = NULL;
  expect_error(&x.dd, "invalid DataDeleteRequest.TupleFilter: value is required");
  x.dd.tuple_filter = &x.f.tuples;
  expect_error(&x.dd, "invalid DataDeleteRequest.AttributeFilter: value is required");
  x.dd.attribute_filter = &x.f.attrs;
  expect_ok(&x.dd);
  x.f.subject.relation = "a.b";
  expect_error(
      &x.dd, "invalid DataDeleteRequest.TupleFilter" EMBEDDED "invalid TupleFilter.Subject" EMBEDDED
             "invalid SubjectFilter.Relation: value does not match regex pattern " NAME_RE);

  /* the filter is optional, but validated when set */
  expect_error(&x.rd,
               "invalid RelationshipDeleteRequest.Filter" EMBEDDED
               "invalid TupleFilter.Subject" EMBEDDED
               "invalid SubjectFilter.Relation: value does not match regex pattern " NAME_RE);
  x.rd.tenant_id = "";
  expect_error(&x.rd,
               "invalid RelationshipDeleteRequest.TenantId: value does not match regex "
               "pattern " ID_RE);
}

static void test_tenant_id_on_every_service(void **state) {
  (void)state;
  char buf[256];
  char *too_long = fill(buf, '1', 129);

  Base__V1__BundleRunRequest br = BASE__V1__BUNDLE_RUN_REQUEST__INIT;
  br.tenant_id = too_long;
  expect_error(&br, "invalid BundleRunRequest.TenantId: value length must be at most 128 bytes");
  Base__V1__WatchRequest wr = BASE__V1__WATCH_REQUEST__INIT;
  wr.tenant_id = too_long;
  expect_error(&wr, "invalid WatchRequest.TenantId: value length must be at most 128 bytes");
  Base__V1__SchemaWriteRequest sw = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
  expect_error(&sw,
               "invalid SchemaWriteRequest.TenantId: value does not match regex pattern " ID_RE);
  Base__V1__SchemaListRequest sl = BASE__V1__SCHEMA_LIST_REQUEST__INIT;
  sl.tenant_id = "a/b";
  expect_error(&sl,
               "invalid SchemaListRequest.TenantId: value does not match regex pattern " ID_RE);

  Base__V1__SchemaPartialWriteRequest pw = BASE__V1__SCHEMA_PARTIAL_WRITE_REQUEST__INIT;
  expect_error(&pw,
               "invalid SchemaPartialWriteRequest.TenantId: value does not match regex "
               "pattern " ID_RE);
  pw.tenant_id = "t1";
  expect_error(&pw, "invalid SchemaPartialWriteRequest.Metadata: value is required");

  Base__V1__SchemaReadRequest sr = BASE__V1__SCHEMA_READ_REQUEST__INIT;
  sr.tenant_id = too_long;
  expect_error(&sr, "invalid SchemaReadRequest.TenantId: value length must be at most 128 bytes");
  sr.tenant_id = "t1";
  expect_error(&sr, "invalid SchemaReadRequest.Metadata: value is required");
}

static void test_tenant_create_rules(void **state) {
  (void)state;
  char buf[128], name[128];
  Base__V1__TenantCreateRequest tc = BASE__V1__TENANT_CREATE_REQUEST__INIT;

  expect_error(&tc,
               "invalid TenantCreateRequest.Id: value does not match regex pattern "
               "\"[a-zA-Z0-9-,]+\"");
  tc.id = "!!!";
  expect_error(&tc,
               "invalid TenantCreateRequest.Id: value does not match regex pattern " TENANT_RE);
  tc.id = "!! a !!"; /* unanchored: one matching character is enough */
  expect_ok(&tc);
  tc.id = ",";
  expect_ok(&tc);
  tc.id = fill(buf, 'x', 64);
  expect_ok(&tc);
  tc.id = fill(buf, 'x', 65);
  expect_error(&tc, "invalid TenantCreateRequest.Id: value length must be at most 64 bytes");
  tc.id = "acme";

  tc.name = fill(name, 'n', 64);
  expect_ok(&tc);
  tc.name = fill(name, 'n', 65);
  expect_error(&tc, "invalid TenantCreateRequest.Name: value length must be at most 64 bytes");
  name[0] = '\0';
  for (int i = 0; i < 32; i++) strcat(name, "\xc3\xa9"); /* 32 x U+00E9 = 64 bytes */
  expect_ok(&tc);
  strcat(name, "\xc3\xa9"); /* 33 runes, 66 bytes: the limit counts bytes */
  expect_error(&tc, "invalid TenantCreateRequest.Name: value length must be at most 64 bytes");
}

/* ---- UTF-8 ---- */

/* tc_validate_wire on buf[0..len) answers want_rc and the text want (NULL:
 * no text). */
static void expect_scan(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        int want_rc, const char *want) {
  char *err = NULL;
  int rc = tc_validate_wire(desc, buf, len, &err);
  if (rc != want_rc) print_error("got %d %s\n", rc, err ? err : "(none)");
  assert_int_equal(rc, want_rc);
  if (want)
    assert_string_equal(err, want);
  else
    assert_null(err);
  free(err);
}

/* Go's decoder checks UTF-8 while decoding, before any rule: here the decoders
 * do, on the packed bytes (tc_validate_wire); want NULL: no error. */
static void expect_decode_error(const void *msg, const char *want) {
  uint8_t buf[4096];
  size_t len = protobuf_c_message_get_packed_size(msg);
  assert_true(len <= sizeof buf);
  protobuf_c_message_pack(msg, buf);
  expect_scan(((const ProtobufCMessage *)msg)->descriptor, buf, len, want ? TC_EVALIDATION : 0,
              want);
}

static void test_invalid_utf8(void **state) {
  (void)state;
  struct write_fx w;
  write_fx_init(&w);

  w.subject.id = "\xff";
  expect_decode_error(&w.req, "proto: field base.v1.Subject.id contains invalid UTF-8");
  w.req.tenant_id = ""; /* the decoder fails before any rule is checked */
  expect_error(&w.req,
               "invalid DataWriteRequest.TenantId: value does not match regex pattern " ID_RE);
  expect_decode_error(&w.req, "proto: field base.v1.Subject.id contains invalid UTF-8");
  w.req.tenant_id = "t1";
  w.subject.id = "alice";

  const char *bad[] = {
      "\xc0\xaf",         /* overlong '/' */
      "\xe0\x80\xaf",     /* overlong '/' */
      "\xed\xa0\x80",     /* surrogate U+D800 */
      "\xf4\x90\x80\x80", /* past U+10FFFF */
      "\xe2\x82",         /* truncated */
      "a\x80",            /* stray continuation */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    w.attr.attribute = (char *)bad[i];
    expect_decode_error(&w.req, "proto: field base.v1.Attribute.attribute contains invalid UTF-8");
  }
  w.attr.attribute = "\xf0\x9f\x98\x80 \xe2\x82\xac \xc3\xa9"; /* valid 4, 3 and 2 byte forms */
  expect_decode_error(&w.req, NULL);

  Base__V1__BundleRunRequest__ArgumentsEntry arg =
      BASE__V1__BUNDLE_RUN_REQUEST__ARGUMENTS_ENTRY__INIT;
  arg.key = "creatorID";
  arg.value = "\xfe";
  Base__V1__BundleRunRequest__ArgumentsEntry *args[] = {&arg};
  Base__V1__BundleRunRequest br = BASE__V1__BUNDLE_RUN_REQUEST__INIT;
  br.tenant_id = "t1";
  br.n_arguments = 1;
  br.arguments = args;
  expect_decode_error(&br,
                      "proto: field base.v1.BundleRunRequest.ArgumentsEntry.value contains "
                      "invalid UTF-8");

  struct filter_fx f;
  filter_fx_init(&f);
  f.ids[0] = "\x80";
  Base__V1__RelationshipDeleteRequest rd = BASE__V1__RELATIONSHIP_DELETE_REQUEST__INIT;
  rd.tenant_id = "t1";
  rd.filter = &f.tuples;
  expect_decode_error(&rd, "proto: field base.v1.EntityFilter.ids contains invalid UTF-8");

  Base__V1__SchemaWriteRequest sw = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
  sw.tenant_id = "t1";
  sw.schema = "entity \xe9 {}"; /* Latin-1, not UTF-8 */
  expect_decode_error(&sw, "proto: field base.v1.SchemaWriteRequest.schema contains invalid UTF-8");
}

/* ---- tc_validate_wire: strings with their real length, before unpacking. ---- */

/* msg packed into buf (cap bytes), each '!' inside marker set to `with`. */
static size_t pack_marked(const void *msg, uint8_t *buf, size_t cap, const char *marker,
                          char with) {
  size_t len = protobuf_c_message_get_packed_size(msg), ml = strlen(marker);
  assert_true(len <= cap);
  protobuf_c_message_pack(msg, buf);
  for (size_t i = 0; i + ml <= len; i++) {
    if (memcmp(buf + i, marker, ml) != 0) continue;
    for (size_t k = 0; k < ml; k++)
      if (buf[i + k] == '!') buf[i + k] = (uint8_t)with;
    return len;
  }
  fail_msg("marker %s not in the packed message", marker);
  return 0;
}

static void expect_wire(const void *msg, const char *marker, int want_rc, const char *want) {
  uint8_t buf[4096];
  size_t len = pack_marked(msg, buf, sizeof buf, marker, 0);
  expect_scan(((const ProtobufCMessage *)msg)->descriptor, buf, len, want_rc, want);
}

static void test_wire_nul(void **state) {
  (void)state;
  struct write_fx x;
  write_fx_init(&x);
  x.req.tenant_id = "t1!x";
  expect_wire(&x.req, "t1!x", TC_EVALIDATION,
              "invalid DataWriteRequest.TenantId: value does not match regex pattern " ID_RE);
  /* The rule sees the real length: 130 bytes, not the 64 before the NUL. */
  char id[131];
  fill(id, 'a', 130);
  id[64] = '!';
  x.req.tenant_id = id;
  expect_wire(&x.req, id, TC_EVALIDATION,
              "invalid DataWriteRequest.TenantId: value length must be at most 128 bytes");
  /* The item index of a repeated field; the first NUL is the one reported. */
  x.req.tenant_id = "t1";
  Base__V1__Tuple second = x.tuple;
  Base__V1__Subject subject = x.subject;
  subject.relation = "mem!ber";
  second.subject = &subject;
  second.relation = "edi!tor";
  x.tuples[1] = &second;
  x.req.n_tuples = 2;
  expect_wire(&x.req, "edi!tor", TC_EVALIDATION,
              "invalid DataWriteRequest.Tuples[1]" EMBEDDED
              "invalid Tuple.Relation: value does not match regex pattern " NAME_RE);
  /* Without the NUL the same bytes pass (the '!' is then a plain byte,
   * which the rules, run later on the unpacked message, judge). */
  uint8_t buf[4096];
  size_t len = pack_marked(&x.req, buf, sizeof buf, "edi!tor", '!');
  char *err = NULL;
  assert_int_equal(tc_validate_wire(&base__v1__data_write_request__descriptor, buf, len, &err), 0);
  assert_null(err);
  /* A field with no rule; a repeated string item. */
  Base__V1__TenantListRequest list = BASE__V1__TENANT_LIST_REQUEST__INIT;
  list.page_size = 7;
  list.continuous_token = "to!ken";
  expect_wire(&list, "to!ken", TC_EVALIDATION,
              "invalid TenantListRequest.ContinuousToken: value must not contain a NUL byte");
  struct filter_fx fx;
  filter_fx_init(&fx);
  char *ids[] = {"a", "b!c"};
  fx.entity.ids = ids;
  fx.entity.n_ids = 2;
  expect_wire(&fx.tuples, "b!c", TC_EVALIDATION,
              "invalid TupleFilter.Entity" EMBEDDED
              "invalid EntityFilter.Ids[1]: value must not contain a NUL byte");
}

static void test_wire_utf8_first(void **state) {
  (void)state;
  struct write_fx x;
  write_fx_init(&x);
  x.req.tenant_id = "t1!";
  x.subject.id = "al\xc3";
  expect_wire(&x.req, "t1!", TC_EVALIDATION,
              "proto: field base.v1.Subject.id contains invalid UTF-8");
  x.subject.id = "al!\xff";
  expect_wire(&x.req, "al!\xff", TC_EVALIDATION,
              "proto: field base.v1.Subject.id contains invalid UTF-8");
  /* Past the eight-bytes-at-a-time ASCII run: valid and invalid UTF-8, and a
   * NUL in the second word. */
  x.req.tenant_id = "t1";
  x.subject.id = "0123456789abcdef\xc3\xa9";
  uint8_t buf[1024];
  size_t len = pack_marked(&x.req, buf, sizeof buf, "0123", 0);
  char *err = NULL;
  assert_int_equal(tc_validate_wire(&base__v1__data_write_request__descriptor, buf, len, &err), 0);
  x.subject.id = "0123456789abcdef\xc3";
  expect_wire(&x.req, "0123", TC_EVALIDATION,
              "proto: field base.v1.Subject.id contains invalid UTF-8");
  x.subject.id = "01234567_9ab!def";
  expect_wire(&x.req, "01234567_9ab!def", TC_EVALIDATION,
              "invalid DataWriteRequest.Tuples[0]" EMBEDDED "invalid Tuple.Subject" EMBEDDED
              "invalid Subject.Id: value does not match regex pattern " ID_RE);
}

/* An Any's value is scanned as its registered type, whatever else the Any
 * holds: an unknown field before or after type_url and value (protobuf-c
 * keeps those) must not end the scan early, nor a long type_url prefix. */
static void test_wire_any_value(void **state) {
  (void)state;
  static const char *want = "proto: field base.v1.StringValue.data contains invalid UTF-8";
  Base__V1__StringValue sv = BASE__V1__STRING_VALUE__INIT;
  sv.data = "a\xff";
  uint8_t inner[64];
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  any.type_url = "type.googleapis.com/base.v1.StringValue";
  any.value.len = protobuf_c_message_pack(&sv.base, inner);
  any.value.data = inner;
  expect_decode_error(&any, want);
  static const uint8_t unknown[] = {0x18, 0x00}; /* field 3, varint 0 */
  uint8_t packed[128], buf[sizeof packed + sizeof unknown];
  size_t len = protobuf_c_message_pack(&any.base, packed);
  for (int before = 0; before < 2; before++) {
    memcpy(buf + (before ? sizeof unknown : 0), packed, len);
    memcpy(buf + (before ? 0 : len), unknown, sizeof unknown);
    expect_scan(&google__protobuf__any__descriptor, buf, len + sizeof unknown, TC_EVALIDATION,
                want);
  }
  /* tc_any_lookup goes by the name after the last '/', however long the
   * prefix: so does the scan. */
  char url[400];
  memset(url, 'a', 300);
  strcpy(url + 300, "/base.v1.StringValue");
  any.type_url = url;
  expect_decode_error(&any, want);
}

/* Child{rewrite: Rewrite{children: [Child{...}]}} nested pairs times. */
static size_t nested_children(uint8_t *buf, size_t cap, int pairs) {
  size_t start = cap, len = 0;
  for (int i = 0; i < 2 * pairs; i++) {
    uint8_t hdr[6];
    size_t h = 1;
    hdr[0] = 0x12; /* field 2, length-delimited: Child.rewrite and Rewrite.children */
    for (size_t v = len;; v >>= 7) {
      hdr[h++] = (uint8_t)(v & 0x7f) | (v >= 0x80 ? 0x80 : 0);
      if (v < 0x80) break;
    }
    assert_true(start >= h);
    start -= h;
    memcpy(buf + start, hdr, h);
    len += h;
  }
  memmove(buf, buf + start, len);
  return len;
}

static void test_wire_depth_and_malformed(void **state) {
  (void)state;
  uint8_t buf[1024];
  char *err = NULL;
  size_t len = nested_children(buf, sizeof buf, 50);
  assert_int_equal(tc_validate_wire(&base__v1__child__descriptor, buf, len, &err), 0);
  len = nested_children(buf, sizeof buf, 51);
  assert_int_equal(tc_validate_wire(&base__v1__child__descriptor, buf, len, &err), TC_EINVAL);
  assert_string_equal(err, "messages nested deeper than 100");
  free(err);
  err = NULL;
  /* Bytes that do not parse are left to protobuf-c; unknown fields skipped. */
  static const uint8_t cut[] = {0x0a, 0x05, 'a', 0};
  assert_int_equal(
      tc_validate_wire(&base__v1__tenant_delete_request__descriptor, cut, sizeof cut, &err), 0);
  static const uint8_t unknown[] = {0xfa, 0x07, 0x02, 'a', 0, 0x0d, 1, 2, 3, 4, 0x0a, 0x01, 'x'};
  assert_int_equal(
      tc_validate_wire(&base__v1__tenant_delete_request__descriptor, unknown, sizeof unknown, &err),
      0);
  assert_null(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_data_requests),
      cmocka_unit_test(test_valid_filters_may_be_empty),
      cmocka_unit_test(test_valid_other_services),
      cmocka_unit_test(test_id_pattern),
      cmocka_unit_test(test_id_pattern_spelled_out),
      cmocka_unit_test(test_name_pattern),
      cmocka_unit_test(test_tuple_rules),
      cmocka_unit_test(test_write_request_rules),
      cmocka_unit_test(test_relationship_write_rules),
      cmocka_unit_test(test_read_request_rules),
      cmocka_unit_test(test_delete_request_rules),
      cmocka_unit_test(test_tenant_id_on_every_service),
      cmocka_unit_test(test_tenant_create_rules),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_wire_nul),
      cmocka_unit_test(test_wire_utf8_first),
      cmocka_unit_test(test_wire_depth_and_malformed),
      cmocka_unit_test(test_wire_any_value),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
