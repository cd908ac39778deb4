/* The Permify schema DSL: compiling schema text, validating written tuples and
 * attributes against a compiled schema, the SchemaDefinition model returned by
 * Schema.Read, and schema version strings.
 *
 * Ownership: tc_schema_compile's *out is freed with tc_schema_free and *errmsg
 * with free(); a compiled schema is immutable and may be shared read-only.
 */
#ifndef TC_SCHEMA_H
#define TC_SCHEMA_H

#include "base/v1/base.pb-c.h"
#include "base/v1/service.pb-c.h"
#include "tuplecast/backend.h"

typedef struct tc_schema_s tc_schema_t;

/* Parses and checks DSL text.  On error returns TC_ESCHEMA_PARSE (lexical,
 * grammar and duplicate-name errors) or TC_ESCHEMA_COMPILE (reference and
 * type checks) and sets *errmsg to Permify's text, e.g.
 * "9:26: undefined relation reference" or
 * "2:8:expected next token to be IDENT, got NEWLINE instead";
 * TC_ENOMEM leaves *errmsg NULL. */
int tc_schema_compile(const char *text, tc_schema_t **out, char **errmsg);
void tc_schema_free(tc_schema_t *s);

/* Write validation of one tuple, in Permify's order: 0 or
 * TC_ESCHEMA_NOT_FOUND (no such entity), TC_EENTITY_DEF_NOT_FOUND (the name is
 * a rule), TC_EENTITY_EQ_SUBJECT, TC_ERELATION_DEF_NOT_FOUND,
 * TC_ESUBJECT_TYPE_NOT_FOUND. */
int tc_schema_check_tuple(const tc_schema_t *s, const tc_tuple_t *t);

/* Write validation of one attribute; type_url is the Any's type URL ("" when
 * the value is missing).  0 or TC_ESCHEMA_NOT_FOUND, TC_EENTITY_DEF_NOT_FOUND,
 * TC_EATTR_DEF_NOT_FOUND, TC_EATTR_TYPE_MISMATCH. */
int tc_schema_check_attr(const tc_schema_t *s, const char *entity_type, const char *attribute,
                         const char *type_url);

/* The SchemaDefinition of Schema.Read, built with the default protobuf-c
 * allocator (free with protobuf_c_message_free_unpacked(msg, NULL)).
 * RuleDefinition.expression is left unset: rule bodies are not compiled.
 * 0 or TC_ENOMEM. */
int tc_schema_to_proto(const tc_schema_t *s, Base__V1__SchemaDefinition **out);

/* Schema.PartialWrite's edits (the request's partials: entity name ->
 * statements to write, update, delete) applied to base (NULL: no schema) as
 * Permify applies them: entity by entity (in order of name here), writes,
 * then updates, then deletes, each seeing the ones before.  *text: the new
 * schema, laid out as Permify stores one, not yet compiled; malloc'd.
 * Errors, with Permify's codes: TC_EENTITY_STMT_NOT_FOUND (no such entity),
 * TC_ENOT_ENTITY_STMT (the name is a rule's), TC_EALREADY_EXISTS (a write
 * of a name the entity has), TC_EREFERENCE_NOT_FOUND (an update or delete
 * of one it has not), TC_ESCHEMA_PARSE with *errmsg (a statement that does
 * not parse, or holds none), TC_ENOMEM. */
int tc_schema_patch(const tc_schema_t *base,
                    const Base__V1__SchemaPartialWriteRequest__PartialsEntry *const *entries,
                    size_t n, char **text, char **errmsg);

/* A new rs/xid version string (20 chars of base32hex 0-9a-v, NUL-terminated):
 * 4-byte big-endian Unix seconds, 3-byte machine id, 2-byte pid, 3-byte
 * counter.  Versions made later in this process sort later. */
void tc_schema_version_new(char out[21]);

#endif
