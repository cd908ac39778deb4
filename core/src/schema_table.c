/* The name table of a schema: open addressing over Permify's namespaces
 * ("entity", "rule", "entity#member"). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema_ast.h"
#include "tuplecast/support.h"

/* The hash of "name" or "name#member", the key Permify uses. */
static uint64_t hash_key(const char *name, const char *member) {
  uint64_t h = tc_hash(TC_HASH_INIT, name, strlen(name));
  if (member != NULL) h = tc_hash(tc_hash(h, "#", 1), member, strlen(member));
  return h;
}

static int same_key(const tc__schema_slot_t *s, const char *name, const char *member) {
  if (strcmp(s->name, name) != 0) return 0;
  if (s->member == NULL || member == NULL) return s->member == member;
  return strcmp(s->member, member) == 0;
}

static tc__schema_slot_t *find(const tc__schema_table_t *t, const char *name, const char *member) {
  size_t mask = t->cap - 1;
  for (size_t i = (size_t)hash_key(name, member) & mask;; i = (i + 1) & mask) {
    tc__schema_slot_t *s = &t->slots[i];
    if (s->name == NULL || same_key(s, name, member)) return s;
  }
}

static int grow_table(tc__schema_table_t *t) {
  size_t ncap = t->cap ? t->cap * 2 : 64;
  tc__schema_slot_t *old = t->slots;
  size_t ocap = t->cap;
  t->slots = calloc(ncap, sizeof *t->slots);
  if (t->slots == NULL) {
    t->slots = old;
    return TC_ENOMEM;
  }
  t->cap = ncap;
  for (size_t i = 0; i < ocap; i++)
    if (old[i].name != NULL) *find(t, old[i].name, old[i].member) = old[i];
  free(old);
  return 0;
}

int tc__schema_table_put(tc__schema_table_t *t, const char *name, const char *member, int kind,
                         void *value) {
  /* Keep the load under 1/2 so probes stay short and an empty slot exists. */
  if ((t->n + 1) * 2 > t->cap) {
    int rc = grow_table(t);
    if (rc != 0) return rc;
  }
  tc__schema_slot_t *s = find(t, name, member);
  if (s->name != NULL) return TC_EUNIQUE;
  s->name = name;
  s->member = member;
  s->kind = kind;
  s->value = value;
  t->n++;
  return 0;
}

const tc__schema_slot_t *tc__schema_table_get(const tc__schema_table_t *t, const char *name,
                                              const char *member) {
  if (t->cap == 0) return NULL;
  const tc__schema_slot_t *s = find(t, name, member);
  return s->name != NULL ? s : NULL;
}

void tc__schema_table_free(tc__schema_table_t *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = t->n = 0;
}
