/* Snap tokens and continuous (page) tokens.
 *
 * A snap token names a revision of one database: base64 of
 * "tc1:<instance id>:<revision>".  The instance id tells a token minted by
 * another database apart, which would otherwise name an unrelated revision.
 * Permify's Postgres tokens (base64 of an 8-byte xid, or "xid:snapshot") are
 * recognised so the error can say what they are.
 *
 * Continuous tokens are base64 of the cursor text, as Permify's are.
 *
 * Ownership: returned strings are malloc'd; the caller frees them.
 */
#ifndef TC_TOKEN_H
#define TC_TOKEN_H

#include <stdint.h>

char *tc_token_encode(const char *instance_id, uint64_t revision);
/* 0 and *revision, or TC_ESNAP_TOKEN with a malloc'd message for the client
 * (malformed, another database, another backend). */
int tc_token_decode(const char *token, const char *instance_id, uint64_t *revision,
                    char **errmsg);

char *tc_cont_token_encode(const char *cursor);
/* The cursor text (malloc'd), or NULL if the token is not valid base64 text. */
char *tc_cont_token_decode(const char *token);
/* A cursor that must be a positive decimal id; 0 on success or TC_ECONT_TOKEN. */
int tc_cont_token_decode_id(const char *token, uint64_t *id);

#endif
