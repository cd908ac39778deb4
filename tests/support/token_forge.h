/* Test helper: snap tokens moved far ahead of the database that issued them,
 * to check that every backend refuses a position it has not reached.  Knows
 * the formats the backends mint or read: tc1 (revision), tc2 (Postgres
 * snapshot, no longer minted) and Permify's new format (transaction and
 * snapshot: a Postgres write ack, X in progress, or a Postgres feed
 * position, X visible; a forged token keeps its kind).
 * Threading: pure.  Ownership: the returned string is malloc'd; the caller
 * frees it. */
#ifndef TC_TOKEN_FORGE_H
#define TC_TOKEN_FORGE_H

/* token with its position moved to transaction / revision 99999999990 (and
 * its instance id kept); NULL if token does not decode. */
char *tt_token_ahead(const char *token);

#endif
