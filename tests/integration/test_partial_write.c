/* Schema.PartialWrite over gRPC against the real binary: each case edits a
 * fresh tenant holding the same schema and expects the answer a Permify
 * v1.7.3 server (memory engine) gave to the same request, the expected
 * status and message below being those observed from it; successful edits
 * are then read back with Schema.Read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/v1/service.pb-c.h"
#include "schema_def.h"
#include "tt_api.h"

static const char schema[] =
    "entity user {}\n"
    "entity organization {\n"
    " relation admin @user\n"
    " relation member @user\n"
    " attribute public boolean\n"
    " permission view = admin or member\n"
    "}\n"
    "rule check_x(x integer) {\n"
    " x > 1\n"
    "}\n"
    "entity doc {\n"
    " relation org @organization\n"
    " relation owner @user\n"
    " permission edit = owner or org.admin\n"
    "}";

typedef struct {
  tt_server_t srv;
  tc_client_t *client;
  int tenants;
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  *state = f;
  int rc = tt_server_start(&f->srv);
  f->client = f->srv.client;
  return rc;
}

static int teardown(void **state) {
  fx_t *f = *state;
  int rc = tt_server_stop(&f->srv);
  free(f);
  return rc;
}

/* ---- requests ------------------------------------------------------------ */

/* One entity's edits; lists end with NULL. */
typedef struct {
  const char *entity;
  const char *write[3], *update[3], *del[3];
} edit_t;

static size_t count(const char *const *v) {
  size_t n = 0;
  while (n < 3 && v[n]) n++;
  return n;
}

/* A fresh tenant holding the schema; its name in buf. */
static const char *new_tenant(fx_t *f, char *buf, size_t len, char **version) {
  snprintf(buf, len, "pw%d", f->tenants++);
  tt_create_tenant(f->client, buf);
  tt_write_schema_text(f->client, buf, schema, version);
  return buf;
}

static tt_result_t partial_write(fx_t *f, const char *tenant, const char *version,
                                 const edit_t *edits, size_t n) {
  Base__V1__SchemaPartialWriteRequest req = BASE__V1__SCHEMA_PARTIAL_WRITE_REQUEST__INIT;
  Base__V1__SchemaPartialWriteRequestMetadata md =
      BASE__V1__SCHEMA_PARTIAL_WRITE_REQUEST_METADATA__INIT;
  Base__V1__SchemaPartialWriteRequest__PartialsEntry entries[2], *ep[2];
  Base__V1__Partials parts[2];
  assert_true(n <= 2);
  for (size_t i = 0; i < n; i++) {
    base__v1__schema_partial_write_request__partials_entry__init(&entries[i]);
    base__v1__partials__init(&parts[i]);
    entries[i].key = (char *)edits[i].entity;
    entries[i].value = &parts[i];
    parts[i].write = (char **)edits[i].write;
    parts[i].n_write = count(edits[i].write);
    parts[i].update = (char **)edits[i].update;
    parts[i].n_update = count(edits[i].update);
    parts[i].delete_ = (char **)edits[i].del;
    parts[i].n_delete_ = count(edits[i].del);
    ep[i] = &entries[i];
  }
  req.tenant_id = (char *)tenant;
  md.schema_version = (char *)version;
  req.metadata = &md;
  req.partials = ep;
  req.n_partials = n;
  return tt_call(f->client, "/base.v1.Schema/PartialWrite", &req.base,
                 &base__v1__schema_partial_write_response__descriptor);
}

/* ---- reading back ---------------------------------------------------------- */

static Base__V1__SchemaDefinition *read_head(fx_t *f, const char *tenant, tt_result_t *r) {
  Base__V1__SchemaReadRequest rd = BASE__V1__SCHEMA_READ_REQUEST__INIT;
  Base__V1__SchemaReadRequestMetadata md = BASE__V1__SCHEMA_READ_REQUEST_METADATA__INIT;
  rd.tenant_id = (char *)tenant;
  rd.metadata = &md;
  *r = tt_call_ok(f->client, "/base.v1.Schema/Read", &rd.base,
                  &base__v1__schema_read_response__descriptor);
  return ((Base__V1__SchemaReadResponse *)r->resp)->schema;
}

/* The kind the entity's references give name, 0 when it has none. */
static int ref_of(const Base__V1__EntityDefinition *e, const char *name) {
  for (size_t i = 0; i < e->n_references; i++)
    if (strcmp(e->references[i]->key, name) == 0) return (int)e->references[i]->value;
  return 0;
}

enum {
  REL = BASE__V1__ENTITY_DEFINITION__REFERENCE__REFERENCE_RELATION,
  PERM = BASE__V1__ENTITY_DEFINITION__REFERENCE__REFERENCE_PERMISSION,
  ATTR = BASE__V1__ENTITY_DEFINITION__REFERENCE__REFERENCE_ATTRIBUTE
};

/* ---- the cases ------------------------------------------------------------- */

/* code 0: success, after which entity's member has kind (0: is gone). */
typedef struct {
  const char *name;
  edit_t edit;
  int code;
  const char *message;
  const char *entity, *member;
  int kind;
} case_t;

#define WRITE(e, stmt)             \
  {                                \
    .entity = e, .write = { stmt } \
  }
#define UPDATE(e, stmt)             \
  {                                 \
    .entity = e, .update = { stmt } \
  }
#define DELETE(e, ...)                  \
  {                                     \
    .entity = e, .del = { __VA_ARGS__ } \
  }
#define WRITE_DELETE(e, stmt, name)               \
  {                                               \
    .entity = e, .write = {stmt}, .del = { name } \
  }
#define UPDATES_DELETE(e, name, ...)                      \
  {                                                       \
    .entity = e, .update = {__VA_ARGS__}, .del = { name } \
  }
#define NO_EDITS(e) \
  { .entity = e }
#define OK(what, ed, ent, mem, k) \
  { .name = what, .edit = ed, .entity = ent, .member = mem, .kind = k }
#define ERR(what, ed, c, msg) \
  { .name = what, .edit = ed, .code = c, .message = msg }

/* Observed from Permify v1.7.3 (serve --database-engine memory), each on a
 * fresh tenant holding `schema`: the status code and message of its answer. */
static const case_t cases[] = {
    OK("write relation", WRITE("organization", "relation viewer @user"), "organization", "viewer",
       REL),
    OK("write attribute", WRITE("organization", "attribute rank integer"), "organization", "rank",
       ATTR),
    OK("write permission", WRITE("organization", "permission manage = admin"), "organization",
       "manage", PERM),
    OK("update permission", UPDATE("organization", "permission view = admin"), "organization",
       "view", PERM),
    OK("update attribute", UPDATE("organization", "attribute public integer"), "organization",
       "public", ATTR),
    OK("update relation", UPDATE("doc", "relation owner @user @organization#member"), "doc",
       "owner", REL),
    OK("delete attribute", DELETE("organization", "public"), "organization", "public", 0),
    OK("delete permission", DELETE("doc", "edit"), "doc", "edit", 0),
    OK("write then delete", WRITE_DELETE("organization", "relation c @user", "c"), "organization",
       "c", 0),
    /* An update of another kind adds a member and the name takes its kind;
     * a delete removes the members of the kind the name has then. */
    OK("update into another kind, then delete",
       UPDATES_DELETE("organization", "member", "permission member = admin"), "organization",
       "member", REL),
    OK("update into another kind and back, then delete",
       UPDATES_DELETE("organization", "member", "permission member = admin",
                      "relation member @user"),
       "organization", "member", PERM),
    OK("no edits for an unknown entity", NO_EDITS("nosuch"), "organization", "admin", REL),
    ERR("unknown entity, write", WRITE("nosuch", "relation x @user"), 5,
        "ERROR_CODE_ENTITY_STATEMENT_NOT_FOUND"),
    ERR("unknown entity, update", UPDATE("nosuch", "relation x @user"), 5,
        "ERROR_CODE_ENTITY_STATEMENT_NOT_FOUND"),
    ERR("unknown entity, delete", DELETE("nosuch", "x"), 5,
        "ERROR_CODE_ENTITY_STATEMENT_NOT_FOUND"),
    ERR("a rule's name", WRITE("check_x", "relation x @user"), 13,
        "ERROR_CODE_CANNOT_CONVERT_TO_ENTITY_STATEMENT"),
    ERR("delete what is not there", DELETE("organization", "nothere"), 5,
        "ERROR_CODE_REFERENCE_NOT_FOUND"),
    ERR("delete twice", DELETE("organization", "view", "view"), 5,
        "ERROR_CODE_REFERENCE_NOT_FOUND"),
    ERR("update what is not there", UPDATE("organization", "relation nothere @user"), 5,
        "ERROR_CODE_REFERENCE_NOT_FOUND"),
    ERR("write what exists", WRITE("organization", "relation admin @user"), 3,
        "ERROR_CODE_ALREADY_EXIST"),
    ERR("write what exists as another kind", WRITE("organization", "permission public = admin"), 3,
        "ERROR_CODE_ALREADY_EXIST"),
    ERR("delete a relation a permission uses", DELETE("organization", "admin"), 13,
        "11:35: undefined relation reference"),
    ERR("write a relation to an unknown type", WRITE("organization", "relation x @nosuch"), 13,
        "17:15: relation reference not found in entity references"),
    ERR("update a relation into a permission", UPDATE("organization", "permission member = admin"),
        13, "21:22:duplication found for organization#member"),
    ERR("a statement cut short", WRITE("organization", "relation"), 13,
        "1:11:expected next token to be IDENT, got EOF instead"),
    ERR("an empty statement", WRITE("organization", ""), 13, "no valid statement found"),
    ERR("an entity statement", WRITE("organization", "entity foo {}"), 13,
        "no valid statement found"),
};

static void check_case(fx_t *f, const case_t *c) {
  char tenant[16], *v1;
  new_tenant(f, tenant, sizeof tenant, &v1);
  tt_result_t r = partial_write(f, tenant, "", &c->edit, 1);
  if (r.code != c->code || (c->message && (!r.details || strcmp(r.details, c->message) != 0)))
    fail_msg("%s: %d %s, want %d %s", c->name, r.code, r.details ? r.details : "", c->code,
             c->message ? c->message : "");
  if (c->code == 0)
    assert_int_equal(strlen(((Base__V1__SchemaPartialWriteResponse *)r.resp)->schema_version), 20);
  tt_result_free(&r);
  tt_result_t rd;
  Base__V1__SchemaDefinition *d = read_head(f, tenant, &rd);
  if (c->code == 0 && ref_of(tt_entity_def(d, c->entity), c->member) != c->kind)
    fail_msg("%s: %s#%s is %d, want %d", c->name, c->entity, c->member,
             ref_of(tt_entity_def(d, c->entity), c->member), c->kind);
  /* A refused edit changes nothing. */
  if (c->code != 0) assert_int_equal(ref_of(tt_entity_def(d, "organization"), "admin"), REL);
  tt_result_free(&rd);
  free(v1);
}

static void test_cases(void **state) {
  fx_t *f = *state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(f, &cases[i]);
}

/* Updates replace: the attribute's type, the permission's rule, the
 * relation's subject types (Permify: the same model after the same edits). */
static void test_updates_replace(void **state) {
  fx_t *f = *state;
  char tenant[16], *v1;
  new_tenant(f, tenant, sizeof tenant, &v1);
  edit_t e[] = {
      {.entity = "organization", .update = {"attribute public integer", "permission view = admin"}},
      UPDATE("doc", "relation owner @user @organization#member")};
  tt_result_t r = partial_write(f, tenant, "", e, 2);
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
  Base__V1__SchemaDefinition *d = read_head(f, tenant, &r);
  const Base__V1__EntityDefinition *org = tt_entity_def(d, "organization"),
                                   *doc = tt_entity_def(d, "doc");
  for (size_t i = 0; i < org->n_attributes; i++)
    assert_int_equal(org->attributes[i]->value->type,
                     BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_INTEGER);
  assert_int_equal(org->n_permissions, 1);
  assert_int_equal(org->permissions[0]->value->child->type_case, BASE__V1__CHILD__TYPE_LEAF);
  for (size_t i = 0; i < doc->n_relations; i++)
    if (strcmp(doc->relations[i]->key, "owner") == 0)
      assert_int_equal(doc->relations[i]->value->n_relation_references, 2);
  tt_result_free(&r);
  free(v1);
}

/* A request naming an entity twice (a map key sent twice on the wire)
 * counts once, with its last value, as protobuf decodes maps. */
static void test_entity_named_twice(void **state) {
  fx_t *f = *state;
  char tenant[16], *v1;
  new_tenant(f, tenant, sizeof tenant, &v1);
  edit_t e[] = {WRITE("user", "relation first @user"), WRITE("user", "relation last @user")};
  tt_result_t r = partial_write(f, tenant, "", e, 2);
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
  const Base__V1__EntityDefinition *user = tt_entity_def(read_head(f, tenant, &r), "user");
  assert_int_equal(ref_of(user, "first"), 0);
  assert_int_equal(ref_of(user, "last"), REL);
  tt_result_free(&r);
  free(v1);
}

/* Edits apply to the version named, else to the head; the result is the new
 * head, which the next call sees.  Observed from Permify: the edit of v1
 * leaves out what v2 added; an unknown version is an empty schema. */
static void test_versions(void **state) {
  fx_t *f = *state;
  char tenant[16], *v1;
  new_tenant(f, tenant, sizeof tenant, &v1);
  edit_t a = WRITE("user", "relation a @user"), b = WRITE("user", "relation b @user");
  tt_result_t r = partial_write(f, tenant, "", &a, 1);
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
  r = partial_write(f, tenant, v1, &b, 1);
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
  tt_result_t rd;
  const Base__V1__EntityDefinition *user = tt_entity_def(read_head(f, tenant, &rd), "user");
  assert_int_equal(ref_of(user, "a"), 0);
  assert_int_equal(ref_of(user, "b"), REL);
  tt_result_free(&rd);
  /* The new head is the one a write is checked against at once. */
  tt_tuple_buf_t tb;
  r = tt_write_one(f->client, tenant, tt_tuple(&tb, "user", "u1", "b", "user", "u2", ""));
  assert_int_equal(r.code, 0);
  tt_result_free(&r);

  const char *unknown = "cccccccccccccccccccc";
  tt_expect_error(partial_write(f, tenant, unknown, &b, 1), 5,
                  "ERROR_CODE_ENTITY_STATEMENT_NOT_FOUND");
  tt_expect_error(partial_write(f, tenant, unknown, NULL, 0), 13,
                  "1:1: no entity references found in schema");
  /* No edits at all: a new version all the same. */
  r = partial_write(f, tenant, "", NULL, 0);
  assert_int_equal(r.code, 0);
  assert_string_not_equal(((Base__V1__SchemaPartialWriteResponse *)r.resp)->schema_version, v1);
  tt_result_free(&r);
  free(v1);
}

/* Observed from Permify: a tenant without a schema, with or without a
 * version; metadata missing.  A tenant that does not exist is
 * ERROR_CODE_TENANT_NOT_FOUND here (Permify answers as for one without a
 * schema: README, differences). */
static void test_no_schema(void **state) {
  fx_t *f = *state;
  tt_create_tenant(f->client, "empty");
  tt_expect_error(partial_write(f, "empty", "", NULL, 0), 5, "ERROR_CODE_SCHEMA_NOT_FOUND");
  tt_expect_error(partial_write(f, "empty", "cccccccccccccccccccc", NULL, 0), 13,
                  "1:1: no entity references found in schema");
  tt_expect_error(partial_write(f, "nobody", "", NULL, 0), 5, "ERROR_CODE_TENANT_NOT_FOUND");
  Base__V1__SchemaPartialWriteRequest req = BASE__V1__SCHEMA_PARTIAL_WRITE_REQUEST__INIT;
  req.tenant_id = "empty";
  tt_expect_error(tt_call(f->client, "/base.v1.Schema/PartialWrite", &req.base,
                          &base__v1__schema_partial_write_response__descriptor),
                  3, "invalid SchemaPartialWriteRequest.Metadata: value is required");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),
      cmocka_unit_test(test_updates_replace),
      cmocka_unit_test(test_entity_named_twice),
      cmocka_unit_test(test_versions),
      cmocka_unit_test(test_no_schema),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
