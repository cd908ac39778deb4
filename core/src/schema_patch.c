/* Schema.PartialWrite's edits on a compiled schema, as Permify applies them
 * to its syntax tree, and the text of the result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema_ast.h"

typedef Base__V1__SchemaPartialWriteRequest__PartialsEntry entry_t;

/* A statement of the schema being edited: a rule, or an entity and its
 * members in order (NULL: deleted). */
typedef struct {
  const char *name;
  const tc__schema_rule_t *rule;
  const tc__schema_member_t **members;
  size_t n, cap;
} stmt_t;

/* An "entity#member" name: kind, what it is now (Permify's reference: a
 * member kind, 0 once deleted), and where its members are.  What it is can
 * differ from the members present: an update of a relation with a
 * permission of the same name adds the permission, and the name is a
 * permission's from then on.  So that edits cost the same however many
 * members an entity has, each kind's first member is kept (its place + 1)
 * and how many there are: more than one only after such an update. */
typedef struct {
  int kind;
  size_t first[4], count[4]; /* by TC__SCHEMA_RELATION, _PERMISSION, _ATTRIBUTE */
} ref_t;

typedef struct {
  tc_schema_t scratch;      /* its arena holds the edits and everything below */
  tc__schema_table_t names; /* statement names -> stmt_t; entity#member -> ref_t */
  stmt_t *stmts;            /* ordered by name */
  size_t n;
  char **errmsg;
} patch_t;

static int push_member(patch_t *p, stmt_t *st, const tc__schema_member_t *m) {
  if (st->n == st->cap) {
    size_t ncap = st->cap ? st->cap * 2 : 8;
    const tc__schema_member_t **v = tc_arena_alloc(&p->scratch.arena, ncap * sizeof *v);
    if (!v) return TC_ENOMEM;
    if (st->n) memcpy(v, st->members, st->n * sizeof *v);
    st->members = v;
    st->cap = ncap;
  }
  st->members[st->n++] = m;
  return 0;
}

/* The record of st's member name; made (kind 0) when absent and make is
 * set.  NULL: absent, or out of memory. */
static ref_t *ref_of(patch_t *p, const stmt_t *st, const char *member, int make) {
  const tc__schema_slot_t *slot = tc__schema_table_get(&p->names, st->name, member);
  if (slot || !make) return slot ? slot->value : NULL;
  ref_t *r = tc_arena_alloc(&p->scratch.arena, sizeof *r);
  if (!r || tc__schema_table_put(&p->names, st->name, member, 0, r) != 0) return NULL;
  memset(r, 0, sizeof *r);
  return r;
}

/* Appends m to st; its name becomes m's kind. */
static int add_member(patch_t *p, stmt_t *st, const tc__schema_member_t *m) {
  ref_t *r = ref_of(p, st, m->name.s, 1);
  if (!r || push_member(p, st, m) != 0) return TC_ENOMEM;
  if (r->count[m->kind]++ == 0) r->first[m->kind] = st->n;
  r->kind = m->kind;
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const stmt_t *)a)->name, ((const stmt_t *)b)->name);
}

/* The statements of base (NULL: none) ordered by name, as Permify's storage
 * returns them, and their names. */
static int load(patch_t *p, const tc_schema_t *base) {
  size_t ne = base ? base->n_entities : 0, nr = base ? base->n_rules : 0;
  p->stmts = tc_arena_alloc(&p->scratch.arena, (ne + nr + 1) * sizeof *p->stmts);
  if (!p->stmts) return TC_ENOMEM;
  for (size_t i = 0; i < ne; i++) p->stmts[p->n++] = (stmt_t){.name = base->entities[i]->name.s};
  for (size_t i = 0; i < nr; i++)
    p->stmts[p->n++] = (stmt_t){.name = base->rules[i]->name.s, .rule = base->rules[i]};
  qsort(p->stmts, p->n, sizeof *p->stmts, by_name);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < p->n; i++)
    rc = tc__schema_table_put(&p->names, p->stmts[i].name, NULL, TC__SCHEMA_ENTITY, &p->stmts[i]);
  for (size_t i = 0; rc == 0 && i < ne; i++) {
    const tc__schema_entity_t *e = base->entities[i];
    stmt_t *st = tc__schema_table_get(&p->names, e->name.s, NULL)->value;
    for (size_t j = 0; rc == 0 && j < e->n_members; j++) rc = add_member(p, st, e->members[j]);
  }
  return rc;
}

static int find_entity(const patch_t *p, const char *name, stmt_t **out) {
  const tc__schema_slot_t *slot = tc__schema_table_get(&p->names, name, NULL);
  if (!slot) return TC_EENTITY_STMT_NOT_FOUND;
  *out = slot->value;
  return (*out)->rule ? TC_ENOT_ENTITY_STMT : 0;
}

/* write: a name the entity does not have; update: one it has, replacing
 * the first member of the same kind or adding one. */
static int apply(patch_t *p, const char *entity, const char *text, int update) {
  tc__schema_member_t *m;
  stmt_t *st;
  int rc = tc__schema_parse_member(&p->scratch, entity, text, &m, p->errmsg);
  if (rc == 0) rc = find_entity(p, entity, &st);
  if (rc != 0) return rc;
  ref_t *r = ref_of(p, st, m->name.s, 0);
  int kind = r ? r->kind : 0;
  if (!update && kind) return TC_EALREADY_EXISTS;
  if (update && !kind) return TC_EREFERENCE_NOT_FOUND;
  if (!update || !r->count[m->kind]) return add_member(p, st, m);
  st->members[r->first[m->kind] - 1] = m;
  r->kind = m->kind;
  return 0;
}

/* Removes the members named so of the kind the name has now. */
static int delete_member(patch_t *p, const char *entity, const char *name) {
  stmt_t *st;
  int rc = find_entity(p, entity, &st);
  if (rc != 0) return rc;
  ref_t *r = ref_of(p, st, name, 0);
  if (!r || !r->kind) return TC_EREFERENCE_NOT_FOUND;
  int kind = r->kind;
  for (size_t i = r->first[kind] - 1, left = r->count[kind]; left && i < st->n; i++) {
    const tc__schema_member_t *m = st->members[i];
    if (m && m->kind == kind && strcmp(m->name.s, name) == 0) {
      st->members[i] = NULL;
      left--;
    }
  }
  r->first[kind] = r->count[kind] = 0;
  r->kind = 0;
  return 0;
}

static int apply_entry(patch_t *p, const entry_t *e) {
  const Base__V1__Partials *v = e->value;
  int rc = 0;
  for (size_t i = 0; rc == 0 && v && i < v->n_write; i++) rc = apply(p, e->key, v->write[i], 0);
  for (size_t i = 0; rc == 0 && v && i < v->n_update; i++) rc = apply(p, e->key, v->update[i], 1);
  for (size_t i = 0; rc == 0 && v && i < v->n_delete_; i++)
    rc = delete_member(p, e->key, v->delete_[i]);
  return rc;
}

typedef struct {
  const entry_t *e;
  size_t i; /* its place in the request */
} keyed_t;

/* Entries by key, a key's later entries after its earlier ones. */
static int by_key(const void *a, const void *b) {
  const keyed_t *x = a, *y = b;
  int c = strcmp(x->e->key, y->e->key);
  return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Permify's entity layout: relations, attributes, permissions, a blank line
 * after each of the first two groups. */
static void print_entity(FILE *f, const stmt_t *st) {
  static const int order[] = {TC__SCHEMA_RELATION, TC__SCHEMA_ATTRIBUTE, TC__SCHEMA_PERMISSION};
  fprintf(f, "entity %s {\n", st->name);
  for (size_t k = 0; k < 3; k++) {
    for (size_t i = 0; i < st->n; i++) {
      if (!st->members[i] || st->members[i]->kind != order[k]) continue;
      tc__schema_print_member(f, st->members[i]);
      fputc('\n', f);
    }
    if (k < 2) fputc('\n', f);
  }
  fputs("} \n", f);
}

static int print(const patch_t *p, char **text) {
  size_t len;
  FILE *f = open_memstream(text, &len);
  if (!f) return TC_ENOMEM;
  for (size_t i = 0; i < p->n; i++) {
    if (i) fputc('\n', f);
    if (p->stmts[i].rule)
      tc__schema_print_rule(f, p->stmts[i].rule);
    else
      print_entity(f, &p->stmts[i]);
  }
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    free(*text);
    *text = NULL;
    return TC_ENOMEM;
  }
  return 0;
}

int tc_schema_patch(const tc_schema_t *base, const entry_t *const *entries, size_t n, char **text,
                    char **errmsg) {
  patch_t p = {.errmsg = errmsg};
  *text = NULL;
  *errmsg = NULL;
  tc_arena_init(&p.scratch.arena);
  keyed_t *order = tc_arena_alloc(&p.scratch.arena, (n + 1) * sizeof *order);
  int rc = order ? load(&p, base) : TC_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) order[i] = (keyed_t){entries[i], i};
  if (rc == 0 && n) qsort(order, n, sizeof *order, by_key);
  /* Entities in order of name (Permify's is its map's, which varies); a
   * name given twice counts once, with its last value, as in a Go map. */
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (i + 1 == n || strcmp(order[i].e->key, order[i + 1].e->key) != 0)
      rc = apply_entry(&p, order[i].e);
  if (rc == 0) rc = print(&p, text);
  tc__schema_table_free(&p.names);
  tc_arena_free(&p.scratch.arena);
  return rc;
}
