/* Fuzz target: the schema DSL (core/src/schema_lex, _parse, _compile,
 * _check, _model, _patch, _print).
 *
 * An input is up to five parts separated by NUL bytes: the schema text, then
 * optionally an entity name and one statement each to write, update and
 * delete in it (Schema.PartialWrite's edits).  The schema is compiled; a
 * schema that compiles is turned into Schema.Read's model, packed, and the
 * edits applied to it; a patched text is compiled in turn.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "tuplecast/errors.h"

#define PARTS 5

static void model(const tc_schema_t *s) {
  Base__V1__SchemaDefinition *def = NULL;
  if (tc_schema_to_proto(s, &def) != 0) return;
  size_t n = protobuf_c_message_get_packed_size(&def->base);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf || protobuf_c_message_pack(&def->base, buf) != n) abort();
  free(buf);
  protobuf_c_message_free_unpacked(&def->base, NULL);
}

static void compile(const char *text, tc_schema_t **out) {
  char *err = NULL;
  *out = NULL;
  int rc = tc_schema_compile(text, out, &err);
  if (rc == 0) {
    if (err) abort(); /* no error text with a success */
    model(*out);
  } else if (*out || (rc != TC_ENOMEM && !err))
    abort(); /* no schema with a failure, and Permify's text */
  free(err);
}

/* Schema.PartialWrite's edits of one entity, applied to base. */
static void patch(const tc_schema_t *base, char **part) {
  Base__V1__Partials edits = BASE__V1__PARTIALS__INIT;
  edits.n_write = *part[2] != 0;
  edits.write = &part[2];
  edits.n_update = *part[3] != 0;
  edits.update = &part[3];
  edits.n_delete_ = *part[4] != 0;
  edits.delete_ = &part[4];
  Base__V1__SchemaPartialWriteRequest__PartialsEntry entry =
      BASE__V1__SCHEMA_PARTIAL_WRITE_REQUEST__PARTIALS_ENTRY__INIT;
  entry.key = part[1];
  entry.value = &edits;
  const Base__V1__SchemaPartialWriteRequest__PartialsEntry *entries[] = {&entry};
  char *text = NULL, *err = NULL;
  if (tc_schema_patch(base, entries, 1, &text, &err) == 0) {
    tc_schema_t *s;
    compile(text, &s);
    tc_schema_free(s);
  }
  free(text);
  free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *copy = malloc(size + 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  copy[size] = '\0';
  char *part[PARTS];
  size_t n = 0;
  for (char *p = copy; n < PARTS && p <= copy + size; p += strlen(p) + 1) part[n++] = p;
  tc_schema_t *s;
  compile(part[0], &s);
  if (n == PARTS) patch(s, part);
  tc_schema_free(s);
  free(copy);
  return 0;
}
