/* Splits a schema's DSL text into its top-level statements (`entity NAME
 * {...}` and `rule NAME(...) {...}`), the rows Permify keeps in
 * schema_definitions: one per statement, keyed by name.
 *
 * Ownership: the caller frees the result with tc__pg_schema_split_free().
 */
#ifndef TC_PG_SCHEMA_SPLIT_H
#define TC_PG_SCHEMA_SPLIT_H

#include <stddef.h>

typedef struct tc__pg_schema_stmt_s {
  char *name; /* the entity's or rule's name */
  char *text; /* the statement, from its keyword to its closing brace */
} tc__pg_schema_stmt_t;

/* 0 and *out / *n, or TC_ENOMEM, or TC_EINVAL when a statement is cut short
 * (no name, unbalanced braces).  Comments (`//`, `/ * * /`) and quoted strings
 * are skipped when looking for keywords and braces, and kept in the text. */
int tc__pg_schema_split(const char *text, tc__pg_schema_stmt_t **out, size_t *n);
void tc__pg_schema_split_free(tc__pg_schema_stmt_t *s, size_t n);

#endif
