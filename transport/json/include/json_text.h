/* Compact JSON text printed the way protojson prints it: shortest
 * round-trip doubles ("1", "0.1", "1e+21", "1e-7"), only '"', '\\' and
 * control characters escaped (\u00xx in lower case), keys in insertion order.
 *
 * Ownership: the caller frees the result with free(); NULL on out of memory.
 */
#ifndef TC_JSON_TEXT_H
#define TC_JSON_TEXT_H

#include <jansson.h>

char *tc_json_text(const json_t *value);

#endif
