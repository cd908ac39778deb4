/* Strict number parsing shared by the token codecs.
 *
 * Ownership: nothing is allocated.
 */
#ifndef TC_PARSE_H
#define TC_PARSE_H

#include <stdint.h>

/* Unsigned decimal, digits only: no sign, no space, no overflow.  0 or -1. */
int tc_parse_u64(const char *s, uint64_t *out);

#endif
