/* Garbage collection, Permify's algorithm: every gc_interval_s, for each
 * tenant in `tenants`, find its newest transaction older than gc_window_s,
 * and delete the rows expired before it and the transactions rows before it;
 * the same statement records that transaction as the tenant's horizon in
 * tuplecast_gc, so the feed answers OUT_OF_RANGE for positions before it.
 * Tenants are collected one after another on the read pool; a run stops
 * starting tenants once gc_timeout_s has passed.
 *
 * Ownership: the backend owns the collector; tc__pg_gc_stop() frees it.
 */
#ifndef TC_PG_GC_H
#define TC_PG_GC_H

#include "pg_internal.h"

/* Starts the interval timer (the first run is one interval away).  0 or TC_ENOMEM. */
int tc__pg_gc_start(tc_backend_t *b, tc__pg_gc_t **out);
/* Stops the timer, lets a tenant's statement in flight finish, frees, then
 * calls done(arg) on a later loop turn. */
void tc__pg_gc_stop(tc__pg_gc_t *g, void (*done)(void *arg), void *arg);

#endif
