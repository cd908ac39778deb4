/* Prometheus metrics: what the transports report, and the text a scrape of
 * GET /metrics returns (docs/operations.md, "Metrics", lists every series).
 *
 * The counters live in core/src/metrics.c, one set per process (a process
 * runs one server).  The core's own modules record through
 * core/src/metrics_record.h; the transports through this header.
 *
 * Threading: loop thread only, every function: the counters are plain
 * integers, never touched by another thread.  A transport thread that has
 * something to count posts it to the loop through the bridge first.
 * Ownership: tc_metrics_render's text is malloc'd for the caller.
 */
#ifndef TC_METRICS_H
#define TC_METRICS_H

#include <stddef.h>

#include "call.h"

/* The Content-Type of the exposition: Prometheus text format 0.0.4. */
#define TC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A server-streaming message (Watch) was handed to the transport named
 * ("grpc" or "http"): bytes is its size as it goes out (the packed protobuf
 * message; the NDJSON line). */
void tc_metrics_stream_sent(const char *transport, size_t bytes);

/* The whole exposition for srv, text format 0.0.4: *len bytes, malloc'd,
 * NUL-terminated; NULL when out of memory.  Asks the transports for their
 * open connections and the backend for its pool, reads /proc/self for the
 * process series. */
char *tc_metrics_render(tc_server_t *srv, size_t *len);

#endif
