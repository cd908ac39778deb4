/* tc_schema_compile: parse, then check; the lifetime of a compiled schema. */
#include <stdlib.h>

#include "schema_ast.h"

int tc_schema_compile(const char *text, tc_schema_t **out, char **errmsg) {
  *out = NULL;
  *errmsg = NULL;
  tc_schema_t *s = calloc(1, sizeof *s);
  if (s == NULL) return TC_ENOMEM;
  tc_arena_init(&s->arena);
  int rc = tc__schema_parse(s, text, errmsg);
  if (rc == 0) rc = tc__schema_check(s, errmsg);
  if (rc != 0) {
    tc_schema_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void tc_schema_free(tc_schema_t *s) {
  if (s == NULL) return;
  tc__schema_table_free(&s->names);
  tc_arena_free(&s->arena);
  free(s);
}
