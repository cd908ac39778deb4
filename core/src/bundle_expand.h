/* Data.RunBundle's text handling, as Permify's does it: a bundle's templates
 * expanded with the run's arguments, and the expanded text parsed into a
 * tuple ("type:id#relation@type:id[#relation]") or an attribute
 * ("type:id$attribute|type:value").
 *
 * Templates: Go's html/template with missingkey=zero, of which tuplecast
 * serves the one action bundles use, {{.name}} (spaces and trim markers
 * allowed): the argument's value, HTML-escaped as html/template escapes text
 * (& < > " ' +; its NUL cannot occur, a request holding one is refused),
 * "" for a name the run does not give.  Any other action is refused.
 *
 * Pure functions; any thread.
 *
 * Ownership: results are allocated in the caller's arena; on failure *why
 * (if asked) is a static or arena string saying what was wrong.
 */
#ifndef TC_BUNDLE_EXPAND_H
#define TC_BUNDLE_EXPAND_H

#include "arena.h"
#include "base/v1/service.pb-c.h"

typedef Base__V1__BundleRunRequest__ArgumentsEntry tc_bundle_arg_t;

/* Sorts args by key, for tc_bundle_arg_find and tc_bundle_expand: lookups
 * cost log n, so a run's work grows with its size, not size squared. */
void tc_bundle_args_sort(tc_bundle_arg_t **args, size_t n);
/* In sorted args: the value of key[0..len), or NULL if not given. */
const char *tc_bundle_arg_find(tc_bundle_arg_t *const *args, size_t n, const char *key, size_t len);
/* args: sorted.  *room: how many bytes of text the expansion may produce,
 * lowered by what it produced (a run shares one budget over its templates,
 * so a few arguments repeated by many actions cannot make it unbounded).
 * 0, TC_EINVAL (an unsupported or malformed action), TC_ETOO_LARGE (over
 * *room) or TC_ENOMEM. */
int tc_bundle_expand(tc_arena_t *a, const char *tmpl, tc_bundle_arg_t *const *args, size_t n_args,
                     size_t *room, char **out, const char **why);
/* Permify's tuple.Tuple: 0 or TC_EINVAL.  A subject relation "..." is "". */
int tc_bundle_parse_tuple(tc_arena_t *a, const char *text, tc_tuple_t *out, const char **why);
/* Permify's attribute.Attribute: the value packed as a google.protobuf.Any
 * of base.v1.<Type>Value.  0, TC_EINVAL or TC_ENOMEM. */
int tc_bundle_parse_attr(tc_arena_t *a, const char *text, tc_attr_t *out, const char **why);

#endif
