/* Compact JSON text printed the way protojson prints it: shortest
 * round-trip doubles ("1", "0.1", "1e+21", "1e-7"), only '"', '\\' and
 * control characters escaped (\u00xx in lower case), keys in insertion order.
 *
 * Ownership: the caller frees the result with free(); NULL on out of memory.
 */
#ifndef TC_JSON_TEXT_H
#define TC_JSON_TEXT_H

#include <jansson.h>
#include <stdio.h>

char *tc_json_text(const json_t *value);

/* v (finite) as Go's strconv.FormatFloat(v, 'f', -1, 64) writes it: the
 * fewest digits that read back as v, never an exponent ("0.00000015",
 * "1000000000000000000000", "-0"). */
void tc_json_put_plain_double(FILE *f, double v);

#endif
