/* Test helper: snap tokens moved far ahead of the database that issued them,
 * to check that every backend refuses a position it has not reached.  Knows
 * the three formats the backends mint: tc1 (revision), tc2 (Postgres
 * snapshot) and Permify's (transaction and snapshot, a Postgres write ack).
 * Threading: pure.  Ownership: the returned string is malloc'd; the caller
 * frees it. */
#ifndef TC_TOKEN_FORGE_H
#define TC_TOKEN_FORGE_H

/* token with its position moved to transaction / revision 99999999990 (and
 * its instance id kept); NULL if token does not decode. */
char *tt_token_ahead(const char *token);

#endif
