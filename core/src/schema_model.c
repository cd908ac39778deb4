/* The SchemaDefinition model of a compiled schema, shaped as Permify's
 * compiler builds it: every operator is a two-child Rewrite (union for or,
 * intersection for and, exclusion for not), single terms are Leaves.
 *
 * Every node is attached to its parent before it is filled, and unfilled
 * pointers stay NULL, so a half-built tree is always a valid message that
 * protobuf_c_message_free_unpacked releases. */
#include <stdlib.h>
#include <string.h>

#include "schema_ast.h"

/* var = a new message initialised by init; false when out of memory. */
#define ALLOC(var, init) (((var) = malloc(sizeof *(var))) != NULL && (init(var), 1))
/* arr = n NULL pointers and count = n; false when out of memory. */
#define NEW_ARRAY(arr, count, n) \
  ((n) == 0 || (((arr) = calloc((n), sizeof *(arr))) != NULL && ((count) = (n), 1)))

static int dup_str(char **dst, const char *src) {
  *dst = strdup(src);
  return *dst != NULL ? 0 : TC_ENOMEM;
}

/* Whether a single-name term of entity names an attribute. */
static int is_attribute(const tc_schema_t *s, const tc__schema_entity_t *e, const char *name) {
  const tc__schema_slot_t *slot = tc__schema_table_get(&s->names, e->name.s, name);
  return slot != NULL && slot->kind == TC__SCHEMA_ATTRIBUTE;
}

static int build_leaf(const tc_schema_t *s, const tc__schema_entity_t *e,
                      const tc__schema_expr_t *x, Base__V1__Leaf *leaf) {
  if (x->kind == TC__EXPR_CALL) {
    Base__V1__Call *call;
    if (!ALLOC(call, base__v1__call__init)) return TC_ENOMEM;
    leaf->call = call;
    leaf->type_case = BASE__V1__LEAF__TYPE_CALL;
    if (dup_str(&call->rule_name, x->names[0].s) != 0 ||
        !NEW_ARRAY(call->arguments, call->n_arguments, x->n_args))
      return TC_ENOMEM;
    for (size_t i = 0; i < x->n_args; i++) {
      Base__V1__Argument *arg;
      Base__V1__ComputedAttribute *attr;
      if (!ALLOC(arg, base__v1__argument__init)) return TC_ENOMEM;
      call->arguments[i] = arg;
      if (!ALLOC(attr, base__v1__computed_attribute__init)) return TC_ENOMEM;
      arg->computed_attribute = attr;
      arg->type_case = BASE__V1__ARGUMENT__TYPE_COMPUTED_ATTRIBUTE;
      if (dup_str(&attr->name, x->args[i]->names[0].s) != 0) return TC_ENOMEM;
    }
    return 0;
  }
  if (x->n_names == 2) {
    Base__V1__TupleToUserSet *ttu;
    if (!ALLOC(ttu, base__v1__tuple_to_user_set__init)) return TC_ENOMEM;
    leaf->tuple_to_user_set = ttu;
    leaf->type_case = BASE__V1__LEAF__TYPE_TUPLE_TO_USER_SET;
    if (!ALLOC(ttu->tupleset, base__v1__tuple_set__init) ||
        dup_str(&ttu->tupleset->relation, x->names[0].s) != 0 ||
        !ALLOC(ttu->computed, base__v1__computed_user_set__init) ||
        dup_str(&ttu->computed->relation, x->names[1].s) != 0)
      return TC_ENOMEM;
    return 0;
  }
  if (is_attribute(s, e, x->names[0].s)) {
    Base__V1__ComputedAttribute *attr;
    if (!ALLOC(attr, base__v1__computed_attribute__init)) return TC_ENOMEM;
    leaf->computed_attribute = attr;
    leaf->type_case = BASE__V1__LEAF__TYPE_COMPUTED_ATTRIBUTE;
    return dup_str(&attr->name, x->names[0].s);
  }
  Base__V1__ComputedUserSet *cus;
  if (!ALLOC(cus, base__v1__computed_user_set__init)) return TC_ENOMEM;
  leaf->computed_user_set = cus;
  leaf->type_case = BASE__V1__LEAF__TYPE_COMPUTED_USER_SET;
  return dup_str(&cus->relation, x->names[0].s);
}

static int build_child(const tc_schema_t *s, const tc__schema_entity_t *e,
                       const tc__schema_expr_t *x, Base__V1__Child **slot) {
  Base__V1__Child *c;
  if (!ALLOC(c, base__v1__child__init)) return TC_ENOMEM;
  *slot = c;
  if (x->kind != TC__EXPR_INFIX) {
    Base__V1__Leaf *leaf;
    if (!ALLOC(leaf, base__v1__leaf__init)) return TC_ENOMEM;
    c->leaf = leaf;
    c->type_case = BASE__V1__CHILD__TYPE_LEAF;
    return build_leaf(s, e, x, leaf);
  }
  Base__V1__Rewrite *rw;
  if (!ALLOC(rw, base__v1__rewrite__init)) return TC_ENOMEM;
  c->rewrite = rw;
  c->type_case = BASE__V1__CHILD__TYPE_REWRITE;
  rw->rewrite_operation = x->op == TC__OP_OR ? BASE__V1__REWRITE__OPERATION__OPERATION_UNION
                          : x->op == TC__OP_AND
                              ? BASE__V1__REWRITE__OPERATION__OPERATION_INTERSECTION
                              : BASE__V1__REWRITE__OPERATION__OPERATION_EXCLUSION;
  if (!NEW_ARRAY(rw->children, rw->n_children, 2)) return TC_ENOMEM;
  int rc = build_child(s, e, x->left, &rw->children[0]);
  return rc != 0 ? rc : build_child(s, e, x->right, &rw->children[1]);
}

static size_t count_kind(const tc__schema_entity_t *e, int kind) {
  size_t n = 0;
  for (size_t i = 0; i < e->n_members; i++) n += e->members[i]->kind == kind;
  return n;
}

static int build_relation(const tc__schema_member_t *m,
                          Base__V1__EntityDefinition__RelationsEntry *entry) {
  Base__V1__RelationDefinition *def;
  if (dup_str(&entry->key, m->name.s) != 0 || !ALLOC(def, base__v1__relation_definition__init))
    return TC_ENOMEM;
  entry->value = def;
  if (dup_str(&def->name, m->name.s) != 0 ||
      !NEW_ARRAY(def->relation_references, def->n_relation_references, m->n_refs))
    return TC_ENOMEM;
  for (size_t i = 0; i < m->n_refs; i++) {
    Base__V1__RelationReference *ref;
    if (!ALLOC(ref, base__v1__relation_reference__init)) return TC_ENOMEM;
    def->relation_references[i] = ref;
    if (dup_str(&ref->type, m->refs[i].type.s) != 0 ||
        dup_str(&ref->relation, m->refs[i].relation.s) != 0)
      return TC_ENOMEM;
  }
  return 0;
}

static int build_permission(const tc_schema_t *s, const tc__schema_entity_t *e,
                            const tc__schema_member_t *m,
                            Base__V1__EntityDefinition__PermissionsEntry *entry) {
  Base__V1__PermissionDefinition *def;
  if (dup_str(&entry->key, m->name.s) != 0 || !ALLOC(def, base__v1__permission_definition__init))
    return TC_ENOMEM;
  entry->value = def;
  if (dup_str(&def->name, m->name.s) != 0) return TC_ENOMEM;
  return build_child(s, e, m->expr, &def->child);
}

static int build_attribute(const tc__schema_member_t *m,
                           Base__V1__EntityDefinition__AttributesEntry *entry) {
  Base__V1__AttributeDefinition *def;
  if (dup_str(&entry->key, m->name.s) != 0 || !ALLOC(def, base__v1__attribute_definition__init))
    return TC_ENOMEM;
  entry->value = def;
  def->type = (Base__V1__AttributeType)m->type.attr_type;
  return dup_str(&def->name, m->name.s);
}

/* One member into its map and into the references map. */
static int build_member(const tc_schema_t *s, const tc__schema_entity_t *e,
                        const tc__schema_member_t *m, Base__V1__EntityDefinition *def) {
  Base__V1__EntityDefinition__ReferencesEntry *ref;
  if (!ALLOC(ref, base__v1__entity_definition__references_entry__init)) return TC_ENOMEM;
  def->references[def->n_references++] = ref;
  /* Member kinds are numbered as EntityDefinition.Reference. */
  ref->value = (Base__V1__EntityDefinition__Reference)m->kind;
  if (dup_str(&ref->key, m->name.s) != 0) return TC_ENOMEM;
  switch (m->kind) {
  case TC__SCHEMA_RELATION: {
    Base__V1__EntityDefinition__RelationsEntry *entry;
    if (!ALLOC(entry, base__v1__entity_definition__relations_entry__init)) return TC_ENOMEM;
    def->relations[def->n_relations++] = entry;
    return build_relation(m, entry);
  }
  case TC__SCHEMA_PERMISSION: {
    Base__V1__EntityDefinition__PermissionsEntry *entry;
    if (!ALLOC(entry, base__v1__entity_definition__permissions_entry__init)) return TC_ENOMEM;
    def->permissions[def->n_permissions++] = entry;
    return build_permission(s, e, m, entry);
  }
  default: {
    Base__V1__EntityDefinition__AttributesEntry *entry;
    if (!ALLOC(entry, base__v1__entity_definition__attributes_entry__init)) return TC_ENOMEM;
    def->attributes[def->n_attributes++] = entry;
    return build_attribute(m, entry);
  }
  }
}

static int build_entity(const tc_schema_t *s, const tc__schema_entity_t *e,
                        Base__V1__SchemaDefinition__EntityDefinitionsEntry *entry) {
  Base__V1__EntityDefinition *def;
  if (dup_str(&entry->key, e->name.s) != 0 || !ALLOC(def, base__v1__entity_definition__init))
    return TC_ENOMEM;
  entry->value = def;
  /* Arrays are sized up front; counts grow as entries are attached. */
  size_t n_rel = count_kind(e, TC__SCHEMA_RELATION);
  size_t n_perm = count_kind(e, TC__SCHEMA_PERMISSION);
  size_t n_attr = count_kind(e, TC__SCHEMA_ATTRIBUTE);
  if (dup_str(&def->name, e->name.s) != 0 ||
      (n_rel && (def->relations = calloc(n_rel, sizeof *def->relations)) == NULL) ||
      (n_perm && (def->permissions = calloc(n_perm, sizeof *def->permissions)) == NULL) ||
      (n_attr && (def->attributes = calloc(n_attr, sizeof *def->attributes)) == NULL) ||
      (e->n_members && (def->references = calloc(e->n_members, sizeof *def->references)) == NULL))
    return TC_ENOMEM;
  for (size_t i = 0; i < e->n_members; i++) {
    int rc = build_member(s, e, e->members[i], def);
    if (rc != 0) return rc;
  }
  return 0;
}

static int build_rule(const tc__schema_rule_t *r,
                      Base__V1__SchemaDefinition__RuleDefinitionsEntry *entry) {
  Base__V1__RuleDefinition *def;
  if (dup_str(&entry->key, r->name.s) != 0 || !ALLOC(def, base__v1__rule_definition__init))
    return TC_ENOMEM;
  entry->value = def;
  size_t n = tc__schema_rule_arity(r);
  if (dup_str(&def->name, r->name.s) != 0 ||
      (n && (def->arguments = calloc(n, sizeof *def->arguments)) == NULL))
    return TC_ENOMEM;
  /* One entry per parameter name, with the type that name ends up bound to. */
  for (size_t i = 0; i < r->n_params; i++) {
    const tc__schema_param_t *prm = tc__schema_rule_param(r, r->params[i].name.s);
    if (prm != &r->params[i]) continue;
    Base__V1__RuleDefinition__ArgumentsEntry *arg;
    if (!ALLOC(arg, base__v1__rule_definition__arguments_entry__init)) return TC_ENOMEM;
    def->arguments[def->n_arguments++] = arg;
    arg->value = (Base__V1__AttributeType)prm->type.attr_type;
    if (dup_str(&arg->key, prm->name.s) != 0) return TC_ENOMEM;
  }
  return 0;
}

static int build_schema(const tc_schema_t *s, Base__V1__SchemaDefinition *d) {
  if (!NEW_ARRAY(d->entity_definitions, d->n_entity_definitions, s->n_entities) ||
      !NEW_ARRAY(d->rule_definitions, d->n_rule_definitions, s->n_rules) ||
      !NEW_ARRAY(d->references, d->n_references, s->n_entities + s->n_rules))
    return TC_ENOMEM;
  for (size_t i = 0; i < s->n_entities + s->n_rules; i++) {
    Base__V1__SchemaDefinition__ReferencesEntry *ref;
    if (!ALLOC(ref, base__v1__schema_definition__references_entry__init)) return TC_ENOMEM;
    d->references[i] = ref;
    int is_entity = i < s->n_entities;
    ref->value = is_entity ? BASE__V1__SCHEMA_DEFINITION__REFERENCE__REFERENCE_ENTITY
                           : BASE__V1__SCHEMA_DEFINITION__REFERENCE__REFERENCE_RULE;
    const char *name = is_entity ? s->entities[i]->name.s : s->rules[i - s->n_entities]->name.s;
    if (dup_str(&ref->key, name) != 0) return TC_ENOMEM;
  }
  for (size_t i = 0; i < s->n_entities; i++) {
    Base__V1__SchemaDefinition__EntityDefinitionsEntry *entry;
    if (!ALLOC(entry, base__v1__schema_definition__entity_definitions_entry__init))
      return TC_ENOMEM;
    d->entity_definitions[i] = entry;
    int rc = build_entity(s, s->entities[i], entry);
    if (rc != 0) return rc;
  }
  for (size_t i = 0; i < s->n_rules; i++) {
    Base__V1__SchemaDefinition__RuleDefinitionsEntry *entry;
    if (!ALLOC(entry, base__v1__schema_definition__rule_definitions_entry__init)) return TC_ENOMEM;
    d->rule_definitions[i] = entry;
    int rc = build_rule(s->rules[i], entry);
    if (rc != 0) return rc;
  }
  return 0;
}

int tc_schema_to_proto(const tc_schema_t *s, Base__V1__SchemaDefinition **out) {
  Base__V1__SchemaDefinition *d;
  *out = NULL;
  if (!ALLOC(d, base__v1__schema_definition__init)) return TC_ENOMEM;
  int rc = build_schema(s, d);
  if (rc != 0) {
    protobuf_c_message_free_unpacked(&d->base, NULL);
    return rc;
  }
  *out = d;
  return 0;
}
