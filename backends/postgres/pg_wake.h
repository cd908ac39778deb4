/* Wake-ups between nodes sharing one database, and from writers outside
 * tuplecast.
 *  - After a write commits, tc__pg_wake_written(tenant); the tenants of one loop
 *    turn (or of the 2 ms since the last NOTIFY started, if longer) go out as
 *    one NOTIFY on channel "tuplecast" with payload
 *    "<node id>\n<tenant>\n..." from a connection of its own (never a NOTIFY
 *    inside a write: it would serialize every commit on NOTIFY's lock).
 *  - A LISTEN connection hands each tenant of another node's payload to
 *    host->changed; after each (re)connect it runs the safety poll at once.
 *  - The safety poll, every poll_interval_ms: the tenants of every
 *    transaction that became visible since the last poll (a node-wide
 *    snapshot cursor, one statement on the read pool) go to host->changed.
 *    It finds writers that send no NOTIFY: a Permify server, a script.
 *    Transactions of this node's own writes (tc__pg_wake_local) wake
 *    nothing there: the write woke its feed in-process.
 * Loop thread only.
 *
 * Ownership: the backend owns the tc__pg_wake_t; tc__pg_wake_close frees it.  The
 * read pool is borrowed and must outlive the close.
 */
#ifndef TC_PG_WAKE_H
#define TC_PG_WAKE_H

#include <uv.h>

#include "pg_conn.h"
#include "tuplecast/backend.h"

typedef struct tc__pg_wake_s tc__pg_wake_t;

/* Starts connecting (asynchronously).  poll_interval_ms 0 means 100.
 * 0, or a TC_E* code (bad conninfo, out of memory). */
int tc__pg_wake_start(uv_loop_t *loop, const tc_host_api_t *host, const char *conninfo,
                      tc__pg_pool_t *read_pool, const char *node_id, unsigned poll_interval_ms,
                      tc__pg_wake_t **out);
/* A write for tenant_id committed through this node. */
void tc__pg_wake_written(tc__pg_wake_t *w, const char *tenant_id);
/* This node's write `xid` committed and its feed was woken in-process: the
 * safety poll need not hand its tenant to host->changed for it. */
void tc__pg_wake_local(tc__pg_wake_t *w, uint64_t xid);
/* Sends what is pending, lets units in flight finish, closes the
 * connections, frees, then calls done(arg) (later, never from this call). */
void tc__pg_wake_close(tc__pg_wake_t *w, void (*done)(void *arg), void *arg);

#endif
