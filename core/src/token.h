/* Continuous (page) tokens: base64 of the cursor text, as Permify's are.
 * (Snap tokens belong to the backend: see tuplecast/backend.h.)
 *
 * Ownership: returned strings are malloc'd; the caller frees them.
 */
#ifndef TC_TOKEN_H
#define TC_TOKEN_H

#include <stdint.h>

char *tc_cont_token_encode(const char *cursor);
/* The cursor text (malloc'd), or NULL if the token is not valid base64 text. */
char *tc_cont_token_decode(const char *token);
/* A cursor that must be a positive decimal id; 0 on success or TC_ECONT_TOKEN. */
int tc_cont_token_decode_id(const char *token, uint64_t *id);

#endif
