/* Snap tokens of backends whose history is a sequence of revisions (sqlite,
 * example): base64 of "tc1:<instance id>:<revision>".
 *
 * The instance id tells a token minted by another database apart, which
 * would otherwise name an unrelated revision.  Permify's Postgres tokens
 * (base64 of an 8-byte xid, or "xid:snapshot") and our Postgres backend's
 * ("tc2:...") are recognised so the error can say what they are.
 *
 * Ownership: returned strings are malloc'd; the caller frees them.
 */
#ifndef TC_REV_TOKEN_H
#define TC_REV_TOKEN_H

#include <stdint.h>

char *tc_rev_token_encode(const char *instance_id, uint64_t revision);
/* 0 and *revision, or TC_ESNAP_TOKEN with a malloc'd message for the client
 * (malformed, another database, another backend). */
int tc_rev_token_decode(const char *token, const char *instance_id, uint64_t *revision,
                        char **errmsg);
/* token_check for these backends: tc_rev_token_decode, and TC_ESNAP_TOKEN
 * with a message saying so for a revision beyond head (the newest revision
 * the database has committed): such a token was never issued by it. */
int tc_rev_token_check(const char *token, const char *instance_id, uint64_t head,
                       char **errmsg);

#endif
