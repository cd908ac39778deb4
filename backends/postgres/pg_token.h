/* Snap tokens of the PostgreSQL backend, and the pg_snapshot values inside
 * them.  Three kinds are read, two are minted (docs/backend-postgres.md):
 *  - Permify's new format, base64("X:xmin:xmax:xip,..."), the *adjusted*
 *    snapshot of a write (X added to the stored snapshot's xip list, xmax
 *    raised to cover it): minted for every write ack;
 *  - Permify's legacy format, base64 of the 8-byte little-endian X: read only;
 *  - ours, base64("tc2:<instance id>:xmin:xmax:xip,..."), an exact snapshot:
 *    the tenant's transactions visible in it are the ones delivered.  Minted
 *    by head and the change feed.
 * All are standard base64 with padding.  Pure functions, no I/O.
 *
 * Ownership: strings returned are malloc'd and freed by the caller;
 * tc__pg_token_clear / tc__pg_snap_clear free what a parse allocated.
 */
#ifndef TC_PG_TOKEN_H
#define TC_PG_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* A pg_snapshot: xids < xmin are visible, xids >= xmax are not, and the
 * in-progress list xip (sorted ascending, no duplicates, each in
 * [xmin, xmax)) is not. */
typedef struct tc__pg_snap_s {
  uint64_t xmin, xmax;
  size_t nxip;
  uint64_t *xip;
} tc__pg_snap_t;

enum { TC_PG_TOKEN_HEAD, TC_PG_TOKEN_PERMIFY, TC_PG_TOKEN_LEGACY, TC_PG_TOKEN_SNAP };

typedef struct tc__pg_token_s {
  int kind;
  uint64_t x;     /* PERMIFY / LEGACY: the transaction; 0 otherwise */
  char *snapshot; /* PERMIFY: the adjusted snapshot text; SNAP: the exact one; else NULL */
} tc__pg_token_t;

/* "" = HEAD.  0, or TC_ESNAP_TOKEN with a malloc'd one-line reason in
 * *errmsg: malformed; a tc2 token of another database (instance differs); a
 * tc1 token ("issued by a SQLite or memory backend").  TC_ENOMEM. */
int tc__pg_token_parse(const char *token, const char *instance_id, tc__pg_token_t *out,
                       char **errmsg);
void tc__pg_token_clear(tc__pg_token_t *t);
/* The smallest xmax a current snapshot must have for the token to name a
 * position this database has reached: its transaction + 1, or its
 * snapshot's xmax, whichever is larger; 0 for HEAD.  A token needing more is
 * ahead of the database (forged, or from another database). */
uint64_t tc__pg_token_need(const tc__pg_token_t *t);

/* The write ack for transaction x whose transactions.snapshot is
 * stored_snapshot: Permify's new format with the adjusted snapshot.  NULL if
 * out of memory. */
char *tc__pg_token_permify(uint64_t x, const char *stored_snapshot);
/* Our token for the exact snapshot s.  NULL if out of memory. */
char *tc__pg_token_snap(const char *instance_id, const tc__pg_snap_t *s);

/* Postgres's text form "xmin:xmax:xip1,xip2", checked as pg_snapshot_in
 * does (xmin <= xmax, xips ascending within [xmin, xmax); duplicates
 * dropped).  0, TC_EINVAL or TC_ENOMEM. */
int tc__pg_snap_parse(const char *text, tc__pg_snap_t *out);
/* The text form; malloc'd, NULL if out of memory. */
char *tc__pg_snap_text(const tc__pg_snap_t *s);
void tc__pg_snap_clear(tc__pg_snap_t *s);

#endif
