#include "tt_api.h"

#include "example_schema.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

const char tt_schema_text[] = TT_EXAMPLE_SCHEMA;

/* ---- message builders ---------------------------------------------------- */

static Base__V1__Entity *entity(Base__V1__Entity *e, const char *type, const char *id) {
  base__v1__entity__init(e);
  e->type = (char *)type;
  e->id = (char *)id;
  return e;
}

Base__V1__Tuple *tt_tuple(tt_tuple_buf_t *b, const char *et, const char *eid, const char *rel,
                          const char *st, const char *sid, const char *srel) {
  base__v1__subject__init(&b->subject);
  base__v1__tuple__init(&b->tuple);
  b->subject.type = (char *)st;
  b->subject.id = (char *)sid;
  b->subject.relation = (char *)srel;
  b->tuple.entity = entity(&b->entity, et, eid);
  b->tuple.relation = (char *)rel;
  b->tuple.subject = &b->subject;
  return &b->tuple;
}

Base__V1__Tuple *tt_tuple_spec(tt_tuple_buf_t *b, const char *spec) {
  assert_true(strlen(spec) < sizeof b->text);
  strcpy(b->text, spec);
  char *save = NULL;
  const char *et = strtok_r(b->text, ":", &save);
  const char *eid = strtok_r(NULL, "#", &save);
  const char *rel = strtok_r(NULL, "@", &save);
  const char *st = strtok_r(NULL, ":", &save);
  const char *sid = strtok_r(NULL, "#", &save);
  const char *srel = strtok_r(NULL, "", &save);
  assert_non_null(sid);
  return tt_tuple(b, et, eid, rel, st, sid, srel ? srel : "");
}

Base__V1__Attribute *tt_bool_attr(tt_attr_buf_t *b, const char *et, const char *eid,
                                  const char *name, int value) {
  base__v1__attribute__init(&b->attr);
  google__protobuf__any__init(&b->any);
  Base__V1__BooleanValue v = BASE__V1__BOOLEAN_VALUE__INIT;
  v.data = value;
  assert_int_equal(tc_any_pack(&v.base, &b->any), 0);
  b->attr.entity = entity(&b->entity, et, eid);
  b->attr.attribute = (char *)name;
  b->attr.value = &b->any;
  return &b->attr;
}

Base__V1__TupleFilter *tt_entity_filter(tt_filter_buf_t *b, const char *type, const char *id) {
  base__v1__tuple_filter__init(&b->tuple);
  base__v1__entity_filter__init(&b->entity);
  b->id = (char *)id;
  b->entity.type = (char *)type;
  b->entity.ids = id ? &b->id : NULL;
  b->entity.n_ids = id ? 1 : 0;
  b->tuple.entity = &b->entity;
  return &b->tuple;
}

Base__V1__TenantCreateRequest *tt_tenant_create(Base__V1__TenantCreateRequest *b, const char *id,
                                                const char *name) {
  base__v1__tenant_create_request__init(b);
  b->id = (char *)id;
  b->name = (char *)name;
  return b;
}

/* ---- calls --------------------------------------------------------------- */

tt_result_t tt_call(tc_client_t *c, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc) {
  tt_result_t r = {0};
  r.code = tc_client_unary(c, method, req, resp_desc, &r.resp, &r.details, NULL, TT_TIMEOUT);
  return r;
}

tt_result_t tt_call_ok(tc_client_t *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *resp_desc) {
  tt_result_t r = tt_call(c, method, req, resp_desc);
  if (r.code != 0) fail_msg("%s failed: %d %s", method, r.code, r.details ? r.details : "");
  return r;
}

void tt_result_free(tt_result_t *r) {
  if (r->resp) protobuf_c_message_free_unpacked(r->resp, NULL);
  free(r->details);
  memset(r, 0, sizeof *r);
}

void tt_expect_error(tt_result_t r, int code, const char *message) {
  if (r.code != code || !r.details || strcmp(r.details, message) != 0)
    fail_msg("expected %d \"%s\", got %d \"%s\"", code, message, r.code,
             r.details ? r.details : "");
  tt_result_free(&r);
}

void tt_expect_error_prefix(tt_result_t r, int code, const char *prefix) {
  if (r.code != code || !r.details || strncmp(r.details, prefix, strlen(prefix)) != 0)
    fail_msg("expected %d \"%s...\", got %d \"%s\"", code, prefix, r.code,
             r.details ? r.details : "");
  tt_result_free(&r);
}

void tt_data_write_req(Base__V1__DataWriteRequest *req, Base__V1__DataWriteRequestMetadata *md,
                       const char *tenant, Base__V1__Tuple **tuples, size_t nt,
                       Base__V1__Attribute **attrs, size_t na) {
  *req = (Base__V1__DataWriteRequest)BASE__V1__DATA_WRITE_REQUEST__INIT;
  *md = (Base__V1__DataWriteRequestMetadata)BASE__V1__DATA_WRITE_REQUEST_METADATA__INIT;
  req->tenant_id = (char *)tenant;
  req->metadata = md;
  req->tuples = tuples;
  req->n_tuples = nt;
  req->attributes = attrs;
  req->n_attributes = na;
}

char *tt_write_data(tc_client_t *c, const char *tenant, Base__V1__Tuple **tuples, size_t nt,
                    Base__V1__Attribute **attrs, size_t na, tt_result_t *out) {
  Base__V1__DataWriteRequest req;
  Base__V1__DataWriteRequestMetadata md;
  tt_data_write_req(&req, &md, tenant, tuples, nt, attrs, na);
  const char *method = "/base.v1.Data/Write";
  if (out) {
    *out = tt_call(c, method, &req.base, &base__v1__data_write_response__descriptor);
    return NULL;
  }
  tt_result_t r = tt_call_ok(c, method, &req.base, &base__v1__data_write_response__descriptor);
  char *token = strdup(((Base__V1__DataWriteResponse *)r.resp)->snap_token);
  tt_result_free(&r);
  return token;
}

tt_result_t tt_write_one(tc_client_t *c, const char *tenant, Base__V1__Tuple *t) {
  tt_result_t r;
  tt_write_data(c, tenant, &t, 1, NULL, 0, &r);
  return r;
}

char *tt_delete_type(tc_client_t *c, const char *tenant, const char *type) {
  Base__V1__RelationshipDeleteRequest req = BASE__V1__RELATIONSHIP_DELETE_REQUEST__INIT;
  tt_filter_buf_t filter;
  req.tenant_id = (char *)tenant;
  req.filter = tt_entity_filter(&filter, type, NULL);
  tt_result_t r = tt_call_ok(c, "/base.v1.Data/DeleteRelationships", &req.base,
                             &base__v1__relationship_delete_response__descriptor);
  char *token = strdup(((Base__V1__RelationshipDeleteResponse *)r.resp)->snap_token);
  tt_result_free(&r);
  return token;
}

/* One page of ReadRelationships. */
static tt_result_t read_page(tc_client_t *c, const char *tenant, const char *snap,
                             Base__V1__TupleFilter *filter, uint32_t page_size, const char *cont) {
  Base__V1__RelationshipReadRequest req = BASE__V1__RELATIONSHIP_READ_REQUEST__INIT;
  Base__V1__RelationshipReadRequestMetadata md = BASE__V1__RELATIONSHIP_READ_REQUEST_METADATA__INIT;
  md.snap_token = (char *)snap;
  req.tenant_id = (char *)tenant;
  req.metadata = &md;
  req.filter = filter;
  req.page_size = page_size;
  req.continuous_token = (char *)cont;
  return tt_call(c, "/base.v1.Data/ReadRelationships", &req.base,
                 &base__v1__relationship_read_response__descriptor);
}

/* Reads every tuple page by page; returns the count, checks no id repeats. */
size_t tt_read_tuples(tc_client_t *c, const char *tenant, const char *snap,
                      Base__V1__TupleFilter *filter, uint32_t page_size) {
  size_t total = 0;
  Base__V1__TupleFilter all = BASE__V1__TUPLE_FILTER__INIT;
  if (!filter) filter = &all;
  char *cont = strdup("");
  for (int page = 0; page < 1000; page++) {
    tt_result_t r = read_page(c, tenant, snap, filter, page_size, cont);
    if (r.code != 0) fail_msg("read failed: %d %s", r.code, r.details ? r.details : "");
    Base__V1__RelationshipReadResponse *resp = (void *)r.resp;
    if (page_size) assert_true(resp->n_tuples <= page_size);
    total += resp->n_tuples;
    free(cont);
    cont = strdup(resp->continuous_token);
    tt_result_free(&r);
    if (!*cont) break;
  }
  free(cont);
  return total;
}

/* ---- fixture ------------------------------------------------------------- */

void tt_write_schema(tc_client_t *c, const char *tenant, char **version) {
  tt_write_schema_text(c, tenant, tt_schema_text, version);
}

void tt_write_schema_text(tc_client_t *c, const char *tenant, const char *text, char **version) {
  Base__V1__SchemaWriteRequest req = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
  req.tenant_id = (char *)tenant;
  req.schema = (char *)text;
  tt_result_t r = tt_call_ok(c, "/base.v1.Schema/Write", &req.base,
                             &base__v1__schema_write_response__descriptor);
  Base__V1__SchemaWriteResponse *resp = (void *)r.resp;
  assert_int_equal(strlen(resp->schema_version), 20);
  if (version) *version = strdup(resp->schema_version);
  tt_result_free(&r);
}

void tt_create_tenant(tc_client_t *c, const char *id) {
  Base__V1__TenantCreateRequest req;
  tt_result_t r = tt_call_ok(c, "/base.v1.Tenancy/Create", &tt_tenant_create(&req, id, id)->base,
                             &base__v1__tenant_create_response__descriptor);
  Base__V1__TenantCreateResponse *resp = (void *)r.resp;
  assert_string_equal(resp->tenant->id, id);
  assert_non_null(resp->tenant->created_at);
  assert_true(resp->tenant->created_at->seconds > 1700000000);
  tt_result_free(&r);
}

Base__V1__WatchResponse *tt_watch_next(tc_stream_t *s, int timeout_ms) {
  ProtobufCMessage *m = NULL;
  int rc = tc_stream_next(s, &base__v1__watch_response__descriptor, &m, timeout_ms);
  if (rc != 0) {
    const char *details = NULL;
    int code = rc == 1 ? tc_stream_status(s, &details) : -1;
    fail_msg("expected a watch message, got %s (status %d %s)", rc == 1 ? "end" : "timeout", code,
             details ? details : "");
  }
  return (Base__V1__WatchResponse *)m;
}

tc_stream_t *tt_watch_open(tc_client_t *c, const char *tenant, const char *token) {
  return tt_watch_open_checkpoint(c, tenant, token, 0);
}

tc_stream_t *tt_watch_open_checkpoint(tc_client_t *c, const char *tenant, const char *token,
                                      uint32_t seconds) {
  Base__V1__WatchRequest req = BASE__V1__WATCH_REQUEST__INIT;
  req.tenant_id = (char *)tenant;
  req.snap_token = (char *)token;
  req.checkpoint_interval_seconds = seconds;
  tc_stream_t *s = tc_client_stream_open(c, "/base.v1.Watch/Watch", &req.base, NULL, 0);
  assert_non_null(s);
  return s;
}

void tt_expect_token_ahead(tc_client_t *c, const char *tenant, const char *far) {
  tc_stream_t *s = tt_watch_open(c, tenant, far);
  ProtobufCMessage *m = NULL;
  assert_int_equal(tc_stream_next(s, &base__v1__watch_response__descriptor, &m, TT_TIMEOUT), 1);
  const char *details = NULL;
  int code = tc_stream_status(s, &details);
  if (code != 3 || !details || !strstr(details, "is ahead of this database"))
    fail_msg("watch at %s: expected 3 \"...is ahead of this database...\", got %d \"%s\"", far,
             code, details ? details : "");
  tc_stream_free(s);
  Base__V1__TupleFilter flt = BASE__V1__TUPLE_FILTER__INIT;
  Base__V1__EntityFilter ent = BASE__V1__ENTITY_FILTER__INIT;
  ent.type = "organization";
  flt.entity = &ent;
  tt_result_t r = read_page(c, tenant, far, &flt, 0, "");
  assert_int_equal(r.code, 3);
  assert_non_null(strstr(r.details, "is ahead of this database"));
  tt_result_free(&r);
}

/* ---- tests --------------------------------------------------------------- */
int tt_server_start(tt_server_t *s) {
  const char *args[] = {"--grpc-port",       "0",      "--http-port", "0",
                        "--database-engine", "memory", NULL};
  if (tc_proc_start(&s->proc, args) != 0) return -1;
  s->client = tc_client_new(s->proc.target);
  return s->client ? 0 : -1;
}

int tt_server_stop(tt_server_t *s) {
  tc_client_free(s->client);
  s->client = NULL;
  return s->proc.pid ? tc_proc_stop(&s->proc, NULL) : 0;
}
