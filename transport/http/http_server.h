/* Permify's HTTP/JSON gateway, served in-process on the loop.
 *
 * HTTP/1.1 with http-parser, on connections from transport/net's listener,
 * through the TLS engine (transport/tls) when opts.tls is set: keep-alive,
 * pipelining (answered in order, one request per connection at a time),
 * Permify's REST routes mapped to the method table (call.h), grpc-gateway's
 * status and error body, CORS as rs/cors, GET /healthz, and Watch as chunked
 * NDJSON (POST /v1/tenants/{tenant_id}/watch).  Everything runs on the loop
 * thread.
 *
 * Ownership: the transport owns tc_http_server_t from start until the stop
 * callback; opts' strings, lists and TLS context are borrowed and must outlive
 * it, as must the loop and opts->server.
 */
#ifndef TC_HTTP_SERVER_H
#define TC_HTTP_SERVER_H

#include <stddef.h>

#include <uv.h>

#include "call.h"

typedef struct tc_tls_ctx_s tc_tls_ctx_t; /* tls_context.h */

/* GET /metrics (core/api/metrics.h): not served; served beside the API; or
 * the only thing served (the metrics.port listener: everything else 404). */
enum tc_http_metrics { TC_HTTP_METRICS_OFF, TC_HTTP_METRICS_TOO, TC_HTTP_METRICS_ONLY };

typedef struct tc_http_opts_s {
  const char *host;
  int port; /* server.host ("" = 0.0.0.0), server.http.port; 0 = any */
  const tc_method_t *(*find_method)(const char *path); /* tc_method_find */
  tc_server_t *server;                                 /* stored into each tc_call_t */
  int (*ready)(const tc_server_t *server); /* /healthz: tc_server_ready; NULL: always ready */
  char **cors_origins;
  size_t n_cors_origins; /* none: "*" */
  char **cors_headers;
  size_t n_cors_headers;   /* none: "*" */
  size_t max_header_bytes; /* request line + headers; 0: http-parser's 80 KiB; over: 431 */
  size_t max_body_bytes;   /* 0: 4 MiB; over: 413 */
  size_t max_connections;  /* 0: unlimited; over: accepted and closed at once */
  int header_timeout_ms;   /* 0: 10 s; to read a request (head and body), and idle
                               keep-alive; never while a response or stream is written */
  tc_tls_ctx_t *tls;       /* NULL: plaintext; else HTTPS with it (borrowed, may be reloaded) */
  enum tc_http_metrics metrics;
} tc_http_opts_t;

typedef struct tc_http_server_s tc_http_server_t;

/* Loop thread.  Binds and listens (transport/net's listener, which survives
 * descriptor exhaustion); *bound_port is the port actually bound.  The
 * process must ignore SIGPIPE (libuv writes with write(2)): main() does.  On failure
 * returns a negative TC_E* code and sets *errmsg (malloc'd, caller frees). */
int tc_http_start(uv_loop_t *loop, const tc_http_opts_t *opts, tc_http_server_t **out,
                  int *bound_port, char **errmsg);

/* Loop thread, once.  Stops accepting, closes idle connections, cancels
 * streams still running (call Watch's own stop first to end them with a
 * resume token), lets unary calls in flight answer, closes every connection
 * once its response is written (at once when the client does not read), waits
 * for every handler that still owes done(), frees everything; cb(arg) runs on
 * a later loop turn. */
void tc_http_stop(tc_http_server_t *s, void (*cb)(void *arg), void *arg);

/* Loop thread: connections open right now (/metrics). */
size_t tc_http_connections(const tc_http_server_t *s);

#endif
