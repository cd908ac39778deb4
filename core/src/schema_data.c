/* Validating written tuples and attributes against a compiled schema, in the
 * order Permify validates them, so the first error is the one Permify reports. */
#include <string.h>

#include "schema_ast.h"

/* The entity definition a write names: TC_ESCHEMA_NOT_FOUND when the schema
 * has no such row, TC_EENTITY_DEF_NOT_FOUND when the row is a rule. */
static int entity_of(const tc_schema_t *s, const char *type) {
  const tc__schema_slot_t *slot = tc__schema_table_get(&s->names, type, NULL);
  if (slot == NULL) return TC_ESCHEMA_NOT_FOUND;
  return slot->kind == TC__SCHEMA_ENTITY ? 0 : TC_EENTITY_DEF_NOT_FOUND;
}

/* A subject relation of "..." means the subject itself, like "". */
static const char *subject_relation(const tc_tuple_t *t) {
  return strcmp(t->subject_relation, "...") == 0 ? "" : t->subject_relation;
}

int tc_schema_check_tuple(const tc_schema_t *s, const tc_tuple_t *t) {
  int rc = entity_of(s, t->entity_type);
  if (rc != 0) return rc;
  const char *srel = subject_relation(t);
  if (strcmp(t->entity_type, t->subject_type) == 0 && strcmp(t->entity_id, t->subject_id) == 0 &&
      strcmp(t->relation, t->subject_relation) == 0)
    return TC_EENTITY_EQ_SUBJECT;
  const tc__schema_slot_t *slot = tc__schema_table_get(&s->names, t->entity_type, t->relation);
  if (slot == NULL || slot->kind != TC__SCHEMA_RELATION) return TC_ERELATION_DEF_NOT_FOUND;
  const tc__schema_member_t *rel = slot->value;
  for (size_t i = 0; i < rel->n_refs; i++)
    if (strcmp(rel->refs[i].type.s, t->subject_type) == 0 &&
        strcmp(rel->refs[i].relation.s, srel) == 0)
      return 0;
  return TC_ESUBJECT_TYPE_NOT_FOUND;
}

/* The schema type an Any type URL stands for; 0 for anything else. */
static int type_of_url(const char *url) {
  static const struct {
    const char *url;
    int type;
  } urls[] = {
      {"type.googleapis.com/base.v1.BooleanValue",
       BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_BOOLEAN},
      {"type.googleapis.com/base.v1.BooleanArrayValue",
       BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_BOOLEAN_ARRAY},
      {"type.googleapis.com/base.v1.StringValue", BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_STRING},
      {"type.googleapis.com/base.v1.StringArrayValue",
       BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_STRING_ARRAY},
      {"type.googleapis.com/base.v1.IntegerValue",
       BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_INTEGER},
      {"type.googleapis.com/base.v1.IntegerArrayValue",
       BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_INTEGER_ARRAY},
      {"type.googleapis.com/base.v1.DoubleValue", BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_DOUBLE},
      {"type.googleapis.com/base.v1.DoubleArrayValue",
       BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_DOUBLE_ARRAY},
  };
  for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
    if (strcmp(urls[i].url, url) == 0) return urls[i].type;
  return 0;
}

int tc_schema_check_attr(const tc_schema_t *s, const char *entity_type, const char *attribute,
                         const char *type_url) {
  int rc = entity_of(s, entity_type);
  if (rc != 0) return rc;
  const tc__schema_slot_t *slot = tc__schema_table_get(&s->names, entity_type, attribute);
  if (slot == NULL || slot->kind != TC__SCHEMA_ATTRIBUTE) return TC_EATTR_DEF_NOT_FOUND;
  const tc__schema_member_t *attr = slot->value;
  return type_of_url(type_url) == attr->type.attr_type ? 0 : TC_EATTR_TYPE_MISMATCH;
}
