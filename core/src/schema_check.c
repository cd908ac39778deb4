/* Semantic checks of a parsed schema, in the order Permify's schema compiler
 * checks, so the first error reported is the one Permify reports: first
 * the relation references, then statement by statement the attribute types,
 * permission expressions and rule parameter types. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_ast.h"

typedef struct checker_s {
  tc_schema_t *s;
  char **errmsg;
  unsigned visit; /* marker of the current relation walk */
} checker_t;

static int fail(checker_t *c, tc__schema_pos_t pos, const char *what) {
  size_t n = strlen(what) + 32;
  char *msg = malloc(n);
  if (msg == NULL) return TC_ENOMEM;
  snprintf(msg, n, "%d:%d: %s", pos.line, pos.col, what);
  *c->errmsg = msg;
  return TC_ESCHEMA_COMPILE;
}

static const tc__schema_slot_t *lookup(const checker_t *c, const char *name, const char *member,
                                       int kind) {
  const tc__schema_slot_t *slot = tc__schema_table_get(&c->s->names, name, member);
  return slot != NULL && slot->kind == kind ? slot : NULL;
}

const tc__schema_param_t *tc__schema_rule_param(const tc__schema_rule_t *r, const char *name) {
  for (size_t i = r->n_params; i-- > 0;)
    if (strcmp(r->params[i].name.s, name) == 0) return &r->params[i];
  return NULL;
}

size_t tc__schema_rule_arity(const tc__schema_rule_t *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->n_params; i++)
    n += tc__schema_rule_param(r, r->params[i].name.s) == &r->params[i];
  return n;
}

/* Same DSL type spelling ("integer[]" equals "integer[]"). */
static int same_type(const tc__schema_type_t *a, const tc__schema_type_t *b) {
  return a->is_array == b->is_array && strcmp(a->name.s, b->name.s) == 0;
}

static int resolve_type(checker_t *c, tc__schema_type_t *t) {
  static const struct {
    const char *name;
    int type;
  } types[] = {
      {"string", BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_STRING},
      {"boolean", BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_BOOLEAN},
      {"integer", BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_INTEGER},
      {"double", BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_DOUBLE},
  };
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    if (strcmp(t->name.s, types[i].name) == 0) {
      /* Each array type follows its scalar type in the enum. */
      t->attr_type = types[i].type + (t->is_array ? 1 : 0);
      return 0;
    }
  }
  return fail(c, t->name.pos, "invalid argument");
}

static int check_relation_refs(checker_t *c) {
  for (size_t i = 0; i < c->s->n_entities; i++) {
    const tc__schema_entity_t *e = c->s->entities[i];
    for (size_t j = 0; j < e->n_members; j++) {
      const tc__schema_member_t *m = e->members[j];
      for (size_t k = 0; k < m->n_refs; k++) {
        const tc__schema_ref_t *ref = &m->refs[k];
        if (lookup(c, ref->type.s, NULL, TC__SCHEMA_ENTITY) == NULL ||
            (ref->relation.s[0] != '\0' &&
             lookup(c, ref->type.s, ref->relation.s, TC__SCHEMA_RELATION) == NULL))
          return fail(c, ref->type.pos, "relation reference not found in entity references");
      }
    }
  }
  return 0;
}

typedef struct ref_stack_s {
  const tc__schema_ref_t **items;
  size_t n, cap;
} ref_stack_t;

static int push_refs(ref_stack_t *st, const tc__schema_member_t *rel) {
  for (size_t i = 0; i < rel->n_refs; i++) {
    if (st->n == st->cap) {
      size_t ncap = st->cap ? st->cap * 2 : 16;
      const tc__schema_ref_t **items = realloc(st->items, ncap * sizeof *items);
      if (items == NULL) return TC_ENOMEM;
      st->items = items;
      st->cap = ncap;
    }
    st->items[st->n++] = &rel->refs[i];
  }
  return 0;
}

/* rel.x: x must exist, and not be an attribute, on every type reachable
 * through rel's references, following @type#relation references. */
static int check_walk(checker_t *c, const tc__schema_entity_t *e, const tc__schema_expr_t *x) {
  const tc__schema_slot_t *slot = lookup(c, e->name.s, x->names[0].s, TC__SCHEMA_RELATION);
  if (slot == NULL) return fail(c, x->names[0].pos, "undefined relation reference");
  ref_stack_t st = {NULL, 0, 0};
  int rc = push_refs(&st, slot->value);
  c->visit++;
  while (rc == 0 && st.n > 0) {
    const tc__schema_ref_t *ref = st.items[--st.n];
    if (ref->relation.s[0] == '\0') {
      const tc__schema_slot_t *target =
          tc__schema_table_get(&c->s->names, ref->type.s, x->names[1].s);
      if (target == NULL || target->kind == TC__SCHEMA_ATTRIBUTE)
        rc = fail(c, x->names[1].pos, "undefined relation reference");
      continue;
    }
    slot = lookup(c, ref->type.s, ref->relation.s, TC__SCHEMA_RELATION);
    if (slot == NULL) {
      rc = fail(c, x->names[0].pos, "undefined relation reference");
      continue;
    }
    /* Permify walks reference cycles forever; expanding each relation once
     * finds the same errors and terminates. */
    tc__schema_member_t *next = slot->value;
    if (next->visit != c->visit) {
      next->visit = c->visit;
      rc = push_refs(&st, next);
    }
  }
  free(st.items);
  return rc;
}

static int check_identifier(checker_t *c, const tc__schema_entity_t *e,
                            const tc__schema_expr_t *x) {
  if (x->n_names > 2) return fail(c, x->names[2].pos, "not supported relation walk");
  if (x->n_names == 2) return check_walk(c, e, x);
  const tc__schema_slot_t *slot = tc__schema_table_get(&c->s->names, e->name.s, x->names[0].s);
  if (slot == NULL) return fail(c, x->names[0].pos, "undefined relation reference");
  if (slot->kind == TC__SCHEMA_ATTRIBUTE) {
    const tc__schema_member_t *attr = slot->value;
    if (attr->type.is_array || strcmp(attr->type.name.s, "boolean") != 0)
      return fail(c, x->names[0].pos, "schema compile");
  }
  return 0;
}

/* Permify binds each argument to the rule parameter of the same name. */
static int check_call(checker_t *c, const tc__schema_entity_t *e, const tc__schema_expr_t *x) {
  const tc__schema_slot_t *slot = lookup(c, x->names[0].s, NULL, TC__SCHEMA_RULE);
  if (slot == NULL) return fail(c, x->names[0].pos, "invalid rule reference");
  const tc__schema_rule_t *rule = slot->value;
  if (tc__schema_rule_arity(rule) != x->n_args || x->n_args == 0)
    return fail(c, x->names[0].pos, "missing argument");
  for (size_t i = 0; i < x->n_args; i++) {
    const tc__schema_expr_t *arg = x->args[i];
    if (arg->n_names > 1) return fail(c, arg->names[1].pos, "not supported walk");
    const tc__schema_slot_t *attr = lookup(c, e->name.s, arg->names[0].s, TC__SCHEMA_ATTRIBUTE);
    if (attr == NULL) return fail(c, x->names[0].pos, "invalid rule reference");
    const tc__schema_param_t *prm = tc__schema_rule_param(rule, arg->names[0].s);
    if (prm == NULL || !same_type(&prm->type, &((const tc__schema_member_t *)attr->value)->type))
      return fail(c, arg->names[0].pos, "invalid argument");
  }
  return 0;
}

static int check_expr(checker_t *c, const tc__schema_entity_t *e, const tc__schema_expr_t *x) {
  switch (x->kind) {
  case TC__EXPR_INFIX: {
    int rc = check_expr(c, e, x->left);
    return rc != 0 ? rc : check_expr(c, e, x->right);
  }
  case TC__EXPR_CALL: return check_call(c, e, x);
  default: return check_identifier(c, e, x);
  }
}

static int check_entity(checker_t *c, tc__schema_entity_t *e) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < e->n_members; i++)
    if (e->members[i]->kind == TC__SCHEMA_ATTRIBUTE) rc = resolve_type(c, &e->members[i]->type);
  for (size_t i = 0; rc == 0 && i < e->n_members; i++)
    if (e->members[i]->kind == TC__SCHEMA_PERMISSION) rc = check_expr(c, e, e->members[i]->expr);
  return rc;
}

static int check_rule(checker_t *c, tc__schema_rule_t *r) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < r->n_params; i++) rc = resolve_type(c, &r->params[i].type);
  return rc;
}

int tc__schema_check(tc_schema_t *s, char **errmsg) {
  checker_t c = {.s = s, .errmsg = errmsg, .visit = 0};
  if (s->n_entities == 0)
    return fail(&c, (tc__schema_pos_t){1, 1}, "no entity references found in schema");
  int rc = check_relation_refs(&c);
  /* Entities and rules interleaved in source order, as Permify compiles. */
  size_t i = 0, j = 0;
  while (rc == 0 && (i < s->n_entities || j < s->n_rules)) {
    if (j == s->n_rules || (i < s->n_entities && s->entities[i]->seq < s->rules[j]->seq))
      rc = check_entity(&c, s->entities[i++]);
    else
      rc = check_rule(&c, s->rules[j++]);
  }
  return rc;
}
