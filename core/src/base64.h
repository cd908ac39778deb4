/* Standard base64 (RFC 4648 §4, padded), as Permify's tokens use it.
 *
 * Ownership: results are malloc'd; the caller frees them.
 */
#ifndef TC_BASE64_H
#define TC_BASE64_H

#include <stddef.h>

char *tc_base64_encode(const void *data, size_t len);
/* NULL if s is not canonical padded base64; *len gets the decoded size.  The
 * result is NUL-terminated one byte past *len for convenience. */
unsigned char *tc_base64_decode(const char *s, size_t *len);

#endif
