/* The SchemaDefinition model: the shapes of Permify's compiler tests (cases
 * 13, 15 and 16), maps, references, and a pack/unpack round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "case13_schema.h"
#include "schema.h"
#include "schema_def.h"

static const char *const text = TT_CASE13_SCHEMA_OPEN
    "  attribute is_public boolean\n"
    "  attribute balance integer\n"
    "  permission view = is_public\n"
    "  permission edit = parent.owner or owner\n"
    "  permission delete = edit\n"
    "  action withdraw = check_balance(balance) and owner not edit\n"
    "}\n"
    "rule check_balance(balance integer) {\n  balance > 10\n}\n";

static Base__V1__SchemaDefinition *model(void) {
  tc_schema_t *s = NULL;
  char *err = NULL;
  assert_int_equal(tc_schema_compile(text, &s, &err), 0);
  Base__V1__SchemaDefinition *d = NULL;
  assert_int_equal(tc_schema_to_proto(s, &d), 0);
  tc_schema_free(s);
  assert_non_null(d);
  return d;
}

static const Base__V1__Child *permission(const Base__V1__EntityDefinition *e, const char *name) {
  for (size_t i = 0; i < e->n_permissions; i++)
    if (strcmp(e->permissions[i]->key, name) == 0) {
      assert_string_equal(e->permissions[i]->value->name, name);
      return e->permissions[i]->value->child;
    }
  fail_msg("no permission %s", name);
  return NULL;
}

static int entity_ref(const Base__V1__EntityDefinition *e, const char *name) {
  for (size_t i = 0; i < e->n_references; i++)
    if (strcmp(e->references[i]->key, name) == 0) return (int)e->references[i]->value;
  return -1;
}

static const Base__V1__Leaf *leaf(const Base__V1__Child *c) {
  assert_non_null(c);
  assert_int_equal(c->type_case, BASE__V1__CHILD__TYPE_LEAF);
  return c->leaf;
}

static const Base__V1__Rewrite *rewrite(const Base__V1__Child *c, int op) {
  assert_non_null(c);
  assert_int_equal(c->type_case, BASE__V1__CHILD__TYPE_REWRITE);
  assert_int_equal(c->rewrite->rewrite_operation, op);
  assert_int_equal(c->rewrite->n_children, 2);
  return c->rewrite;
}

static void expect_computed(const Base__V1__Child *c, const char *relation) {
  const Base__V1__Leaf *l = leaf(c);
  assert_int_equal(l->type_case, BASE__V1__LEAF__TYPE_COMPUTED_USER_SET);
  assert_string_equal(l->computed_user_set->relation, relation);
}

static void check_model(const Base__V1__SchemaDefinition *d) {
  assert_int_equal(d->n_entity_definitions, 4);
  assert_int_equal(d->n_rule_definitions, 1);
  assert_int_equal(d->n_references, 5);
  for (size_t i = 0; i < d->n_references; i++) {
    int is_rule = strcmp(d->references[i]->key, "check_balance") == 0;
    assert_int_equal(d->references[i]->value,
                     is_rule ? BASE__V1__SCHEMA_DEFINITION__REFERENCE__REFERENCE_RULE
                             : BASE__V1__SCHEMA_DEFINITION__REFERENCE__REFERENCE_ENTITY);
  }

  const Base__V1__EntityDefinition *u = tt_entity_def(d, "usertype");
  assert_string_equal(u->name, "usertype");
  assert_int_equal(u->n_relations + u->n_permissions + u->n_attributes + u->n_references, 0);

  const Base__V1__EntityDefinition *o = tt_entity_def(d, "organization");
  assert_int_equal(o->n_relations, 2);
  const Base__V1__RelationDefinition *parent = o->relations[0]->value;
  assert_string_equal(o->relations[0]->key, "parent");
  assert_string_equal(parent->name, "parent");
  assert_int_equal(parent->n_relation_references, 2);
  assert_string_equal(parent->relation_references[0]->type, "company");
  assert_string_equal(parent->relation_references[0]->relation, "");
  assert_string_equal(parent->relation_references[1]->type, "organization");

  const Base__V1__EntityDefinition *r = tt_entity_def(d, "repository");
  assert_int_equal(r->n_relations, 2);
  assert_string_equal(r->relations[0]->value->relation_references[0]->relation, "parent");
  assert_int_equal(r->n_attributes, 2);
  assert_string_equal(r->attributes[0]->key, "is_public");
  assert_int_equal(r->attributes[0]->value->type, BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_BOOLEAN);
  assert_int_equal(r->attributes[1]->value->type, BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_INTEGER);
  assert_int_equal(r->n_permissions, 4);
  assert_int_equal(r->n_references, 8);
  assert_int_equal(entity_ref(r, "parent"),
                   BASE__V1__ENTITY_DEFINITION__REFERENCE__REFERENCE_RELATION);
  assert_int_equal(entity_ref(r, "is_public"),
                   BASE__V1__ENTITY_DEFINITION__REFERENCE__REFERENCE_ATTRIBUTE);
  assert_int_equal(entity_ref(r, "withdraw"),
                   BASE__V1__ENTITY_DEFINITION__REFERENCE__REFERENCE_PERMISSION);
  assert_int_equal(entity_ref(r, "check_balance"), -1);

  /* view = is_public: a bare boolean attribute is a ComputedAttribute. */
  const Base__V1__Leaf *l = leaf(permission(r, "view"));
  assert_int_equal(l->type_case, BASE__V1__LEAF__TYPE_COMPUTED_ATTRIBUTE);
  assert_string_equal(l->computed_attribute->name, "is_public");

  /* edit = parent.owner or owner */
  const Base__V1__Rewrite *rw =
      rewrite(permission(r, "edit"), BASE__V1__REWRITE__OPERATION__OPERATION_UNION);
  l = leaf(rw->children[0]);
  assert_int_equal(l->type_case, BASE__V1__LEAF__TYPE_TUPLE_TO_USER_SET);
  assert_string_equal(l->tuple_to_user_set->tupleset->relation, "parent");
  assert_string_equal(l->tuple_to_user_set->computed->relation, "owner");
  expect_computed(rw->children[1], "owner");

  expect_computed(permission(r, "delete"), "edit");

  /* withdraw = (check_balance(balance) and owner) not edit */
  rw = rewrite(permission(r, "withdraw"), BASE__V1__REWRITE__OPERATION__OPERATION_EXCLUSION);
  expect_computed(rw->children[1], "edit");
  const Base__V1__Rewrite *inner =
      rewrite(rw->children[0], BASE__V1__REWRITE__OPERATION__OPERATION_INTERSECTION);
  l = leaf(inner->children[0]);
  assert_int_equal(l->type_case, BASE__V1__LEAF__TYPE_CALL);
  assert_string_equal(l->call->rule_name, "check_balance");
  assert_int_equal(l->call->n_arguments, 1);
  assert_int_equal(l->call->arguments[0]->type_case, BASE__V1__ARGUMENT__TYPE_COMPUTED_ATTRIBUTE);
  assert_string_equal(l->call->arguments[0]->computed_attribute->name, "balance");
  expect_computed(inner->children[1], "owner");

  const Base__V1__RuleDefinition *rule = d->rule_definitions[0]->value;
  assert_string_equal(d->rule_definitions[0]->key, "check_balance");
  assert_string_equal(rule->name, "check_balance");
  assert_int_equal(rule->n_arguments, 1);
  assert_string_equal(rule->arguments[0]->key, "balance");
  assert_int_equal(rule->arguments[0]->value, BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_INTEGER);
  assert_null(rule->expression);
}

static void test_model(void **state) {
  (void)state;
  Base__V1__SchemaDefinition *d = model();
  check_model(d);
  protobuf_c_message_free_unpacked(&d->base, NULL);
}

/* The model packs, and unpacks to the same structure. */
static void test_round_trip(void **state) {
  (void)state;
  Base__V1__SchemaDefinition *d = model();
  size_t n = protobuf_c_message_get_packed_size(&d->base);
  uint8_t *buf = malloc(n);
  assert_non_null(buf);
  assert_int_equal(protobuf_c_message_pack(&d->base, buf), n);
  protobuf_c_message_free_unpacked(&d->base, NULL);
  d = base__v1__schema_definition__unpack(NULL, n, buf);
  free(buf);
  assert_non_null(d);
  check_model(d);
  base__v1__schema_definition__free_unpacked(d, NULL);
}

/* A rule parameter named twice keeps one map entry, with the last type. */
static void test_rule_parameters(void **state) {
  (void)state;
  tc_schema_t *s = NULL;
  char *err = NULL;
  assert_int_equal(tc_schema_compile("entity a {}\n"
                                     "rule r(x integer, y string[], x double) {\n x\n}",
                                     &s, &err),
                   0);
  Base__V1__SchemaDefinition *d = NULL;
  assert_int_equal(tc_schema_to_proto(s, &d), 0);
  tc_schema_free(s);
  const Base__V1__RuleDefinition *rule = d->rule_definitions[0]->value;
  assert_int_equal(rule->n_arguments, 2);
  assert_string_equal(rule->arguments[0]->key, "y");
  assert_int_equal(rule->arguments[0]->value,
                   BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_STRING_ARRAY);
  assert_string_equal(rule->arguments[1]->key, "x");
  assert_int_equal(rule->arguments[1]->value, BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_DOUBLE);
  protobuf_c_message_free_unpacked(&d->base, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_model),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_rule_parameters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
