/* Snap tokens of the PostgreSQL backend, and the pg_snapshot values inside
 * them (docs/backend-postgres.md, "Tokens").  Every token is standard base64
 * with padding.  Minted, both in Permify's new format base64("X:xmin:xmax:
 * xip,..."), so a Permify server decodes either:
 *  - a write ack: X the write, the snapshot *adjusted* as Permify adjusts it
 *    (X added to the stored snapshot's in-progress list, xmax raised to
 *    cover it), so X is listed in progress;
 *  - a feed position (head, every change, every `last`): the snapshot is the
 *    exact position (the tenant's transactions visible in it are the ones
 *    delivered) and X a transaction visible in it: the change's own, or the
 *    newest one before.  X is never listed in progress.
 * So X in progress (or not below xmax) means Permify's or a write ack: the
 * position is X's stored snapshot plus X; X visible means ours: the
 * position is the snapshot.  Read only: Permify's legacy format (base64 of
 * the 8-byte little-endian X) and our former base64("tc2:<instance id>:
 * <snapshot>"), an exact snapshot, same database only.  Pure functions, no I/O.
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

/* PERMIFY: the new format with X not visible in its snapshot; SNAP: an
 * exact position, ours (the new format with X visible) or tc2 (x = 0). */
typedef struct tc__pg_token_s {
  int kind;
  uint64_t x;     /* the transaction; 0 for HEAD and tc2 */
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
/* Our token for the exact position s, naming x, a transaction visible in s
 * (the caller's guarantee).  The same string for the same (x, s).  NULL if
 * out of memory. */
char *tc__pg_token_at(uint64_t x, const tc__pg_snap_t *s);
/* 1 if x is visible in s: below xmax and not in progress. */
int tc__pg_snap_visible(const tc__pg_snap_t *s, uint64_t x);

/* Postgres's text form "xmin:xmax:xip1,xip2", checked as pg_snapshot_in
 * does (0 < xmin <= xmax, xips ascending within [xmin, xmax); duplicates
 * dropped).  0, TC_EINVAL or TC_ENOMEM. */
int tc__pg_snap_parse(const char *text, tc__pg_snap_t *out);
/* The text form; malloc'd, NULL if out of memory. */
char *tc__pg_snap_text(const tc__pg_snap_t *s);
/* s with every xid at or above bound counted as not done: xmax lowered to
 * bound when it is below (bound 0: no limit), the in-progress list cut
 * there; s itself when bound >= s->xmax.  A position must not count as done
 * an xid that a crash of Postgres could hand out again; an xid at or below
 * one whose commit is durable is never reused ("Crash safety of positions",
 * docs/backend-postgres.md), so truncating just above such a one makes any
 * snapshot a safe position.  0 or TC_ENOMEM. */
int tc__pg_snap_truncate(const tc__pg_snap_t *s, uint64_t bound, tc__pg_snap_t *out);
void tc__pg_snap_clear(tc__pg_snap_t *s);
/* Orders two uint64_t xids, for qsort and bsearch. */
int tc__pg_xid_cmp(const void *a, const void *b);

#endif
