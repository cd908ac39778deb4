/* The start of Permify's compiler test case 13 in its DSL: the usertype,
 * company and organization entities and the repository's two relations, with
 * the repository left open.  test_schema walks the subject relations of this
 * text and test_schema_model checks the model compiled from it; each closes
 * the repository with its own permissions (and attributes).
 *
 * Threading: constant data.  Ownership: a string literal.
 */
#ifndef TT_CASE13_SCHEMA_H
#define TT_CASE13_SCHEMA_H

#define TT_CASE13_SCHEMA_OPEN                         \
  "entity usertype {}\n"                              \
  "entity company {\n  relation owner @usertype\n}\n" \
  "entity organization {\n"                           \
  "  relation parent @company @organization\n"        \
  "  relation owner @usertype\n"                      \
  "}\n"                                               \
  "entity repository {\n"                             \
  "  relation parent @organization#parent\n"          \
  "  relation owner @usertype\n"

#endif
