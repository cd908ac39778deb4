/* The change feed of the PostgreSQL backend: head and read_changes of the
 * plugin ABI (backend.h), on Permify's tables.
 *
 * A position is an exact snapshot: the tenant's transactions visible in it
 * have been delivered.  New work is the tenant's transactions visible in
 * the current snapshot C but not in the position P, found by one statement
 * that also returns C; a page keeps a prefix of them in xid order and
 * delivers it in commit-timestamp order, each transaction with its own
 * token (naming it; pg_token.h).  docs/backend-postgres.md ("Change feed")
 * gives the algebra.
 *
 * Ownership: the caller owns the context and everything it points to, for
 * as long as reads are in flight; arguments are copied; results handed to
 * callbacks are borrowed for the duration of the callback.
 */
#ifndef TC_PG_FEED_H
#define TC_PG_FEED_H

#include <stdint.h>

#include "pg_conn.h"
#include "tuplecast/backend.h"

typedef struct tc__pg_feed_ctx_s {
  tc__pg_pool_t *pool; /* the read pool */
  const tc_host_api_t *host;
  const char *instance_id;
  tc_backend_stats_t *stats; /* change_reads and feed lag are counted here */
  /* pg_feed.c's own: heads asked for while a head statement is in flight,
   * sent as one statement when it returns (zero-initialise). */
  struct tc__pg_heads_s {
    void **q;
    size_t n, cap;
    unsigned inflight;
  } heads;
} tc__pg_feed_ctx_t;

/* The head: a token of the current snapshot naming the tenant's newest
 * transaction (0 if none).  0 or a TC_E* code (then cb never runs); cb runs
 * later, once.  Heads asked for while one is read are read together, one
 * statement for many tenants. */
int tc__pg_feed_head(tc__pg_feed_ctx_t *c, const char *tenant_id, tc_head_cb cb, void *arg);

/* The tenant's transactions after `after` (a token, not ""), up to `upto`
 * (NULL, or a token the feed returned), at most about `limit` changes in
 * whole transactions, per tc_changes_cb.  Fewer than `limit` changes means
 * everything up to the current snapshot (or `upto`) was read.  0 or a TC_E*
 * code (TC_ESNAP_TOKEN for a token that does not parse; then cb never runs). */
int tc__pg_feed_read_changes(const tc__pg_feed_ctx_t *c, const char *tenant_id, const char *after,
                             const char *upto, uint32_t limit, tc_changes_cb cb, void *arg);
/* The same as read_feed's items: the tenant's schema writes among them
 * (schema_definitions rows, by their inserting transaction). */
int tc__pg_feed_read_items(const tc__pg_feed_ctx_t *c, const char *tenant_id, const char *after,
                           const char *upto, uint32_t limit, tc_feed_cb cb, void *arg);

#endif
