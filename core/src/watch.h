/* Watch: one change feed per tenant per node, fanned out to its streams.
 *
 * A tenant's feed reads each new transaction from the backend once (woken by
 * writes through this node), keeps the most recent ones in a ring, and hands
 * each to every live stream whose position is before it.  A stream that
 * starts behind the ring catches up from the backend on its own, then joins
 * the live fan-out.  Positions are the backend's snap tokens (opaque since
 * ABI v2, compared only for equality); a catch-up reads up to the feed's own
 * position, where the ring takes over, so the seam has no gap and no
 * duplicate.  See docs/watch.md for the contract.
 *
 * Ownership: the server owns the feeds (srv->feeds); a stream's state belongs
 * to its call and goes when the call is done.
 */
#ifndef TC_WATCH_H
#define TC_WATCH_H

#include "call.h"
#include "server_state.h"

/* The base.v1.Watch/Watch handler. */
int tc_watch_rpc(tc_call_t *call);
/* A write for tenant_id committed through this node: wake its feed, if any. */
void tc_watch_notify(tc_server_t *srv, const char *tenant_id);
/* Server stop: ends every stream with UNAVAILABLE and a resume token. */
void tc_watch_stop(tc_server_t *srv);
/* After the loop ended: frees the feeds. */
void tc_watch_free(tc_server_t *srv);

#endif
