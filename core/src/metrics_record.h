/* What the core's own modules record for /metrics (core/api/metrics.h):
 * every call's end (call.c), and Watch's streams, sends and feed reads
 * (watch.c).  Each is a few integer updates into fixed arrays: no
 * allocation, no lock.
 *
 * Threading: loop thread only.
 * Ownership: nothing is kept from the arguments.
 */
#ifndef TC_METRICS_RECORD_H
#define TC_METRICS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"

/* A call ended (from the transport's done(), through tc_call_log_end):
 * counted by transport, method and gRPC code; a unary call's took_ns (its
 * time since tc_call_start; 0: never started) goes into its method's latency
 * histogram. */
void tc__metrics_call_end(const tc_call_t *call, const char *protocol, int status,
                          uint64_t took_ns);

/* A Watch stream was accepted (its handler took the call). */
void tc__metrics_watch_started(void);
/* It ended with status (a TC_E* code or 0); stopping: the server is
 * shutting down.  The reason label comes from these two. */
void tc__metrics_watch_ended(int status, int stopping);
/* A transaction's message was handed to a stream's transport; learned_ns:
 * uv_hrtime() when the loop learned of its commit (the feed's wake-up). */
void tc__metrics_watch_lag(uint64_t learned_ns);
/* A change read came back: the tenant feed's own (catchup 0) or a stream's
 * catch-up (catchup 1), with rows changes (0 when it failed). */
void tc__metrics_feed_read(int catchup, size_t rows);

/* call.c: gRPC's name for a status code ("OK", "NotFound"...), "Unknown"
 * past the table. */
const char *tc__call_code_name(int grpc_code);
/* methods.c: the method's place in the table, or -1 (a transport's own). */
int tc__method_index(const tc_method_t *m);

#endif
