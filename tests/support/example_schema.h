/* The example schema in Permify's DSL (user, organization, repository) that
 * the tests compile and serve and the bench loads: one text, so the bench
 * measures the schema the tests prove.
 *
 * Threading: constant data.  Ownership: a string literal.
 */
#ifndef TT_EXAMPLE_SCHEMA_H
#define TT_EXAMPLE_SCHEMA_H

#define TT_EXAMPLE_SCHEMA                         \
  "entity user {}\n"                              \
  "entity organization {\n"                       \
  "  relation admin @user\n"                      \
  "  relation member @user @organization#admin\n" \
  "  attribute ip_range string[]\n"               \
  "  permission view = admin or member\n"         \
  "}\n"                                           \
  "entity repository {\n"                         \
  "  relation parent @organization\n"             \
  "  relation owner @user\n"                      \
  "  attribute is_public boolean\n"               \
  "  permission edit = parent.admin or owner\n"   \
  "  permission read = is_public or edit\n"       \
  "}\n"

#endif
