/* An entity of a SchemaDefinition (Schema.Read's model) by name, for the
 * cmocka tests that read a schema's model back: the model's unit test and
 * Schema.PartialWrite's integration test, which link different support
 * libraries, hence a header.  Include cmocka.h first.
 *
 * Threading: any.  Ownership: the result points into d; a name d has no
 * entity of fails the test.
 */
#ifndef TT_SCHEMA_DEF_H
#define TT_SCHEMA_DEF_H

#include <string.h>

#include "base/v1/base.pb-c.h"

static inline const Base__V1__EntityDefinition *tt_entity_def(const Base__V1__SchemaDefinition *d,
                                                              const char *name) {
  for (size_t i = 0; i < d->n_entity_definitions; i++)
    if (strcmp(d->entity_definitions[i]->key, name) == 0) return d->entity_definitions[i]->value;
  fail_msg("no entity %s", name);
  return NULL;
}

#endif
