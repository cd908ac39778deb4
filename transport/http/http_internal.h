/* Shared by the HTTP transport's files: the HTTP/1.1 engine (http_conn.c:
 * connections, parsing, responses, streams), the gateway adapter
 * (http_gateway.c: a request becomes a tc_call_t, errors become Permify's
 * bodies) and the route table, path parameters and CORS rules (http_route.c).
 * Everything here runs on the server's loop thread only.
 *
 * Ownership: a connection owns its buffers and its call until the call is
 * answered or cancelled (the call then owns itself until done()); matched
 * routes point into a static table; parameters and header values are
 * malloc'd for the caller.
 */
#ifndef TC_HTTP_INTERNAL_H
#define TC_HTTP_INTERNAL_H

#include <stddef.h>

#include <http_parser.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "http_server.h"
#include "listener.h"
#include "tls_conn.h"


typedef struct tc__http_buf_s {
  char *data;
  size_t len, cap;
} tc__http_buf_t;

/* A handler's call (http_gateway.c). */
typedef struct tc__http_call_s tc__http_call_t;

/* What a write completes: nothing, a stream message (on_sent), a response. */
enum tc__http_write_kind { TC__HTTP_W_PLAIN, TC__HTTP_W_STREAM_MSG, TC__HTTP_W_LAST };

typedef struct tc__http_conn_s tc__http_conn_t;

struct tc__http_conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer; /* request read timeout: headers and body must arrive within it */
  tc_http_server_t *srv;
  tc__http_conn_t *prev, *next;
  http_parser parser;
  tc__http_buf_t in; /* received, not yet parsed */
  /* The request being read. */
  tc__http_buf_t url, field, value, body;
  int in_value; /* the last header callback was a value */
  char *authorization, *origin, *acr_method, *acr_headers;
  size_t authorization_len; /* the value may hold a NUL */
  int expect_continue;
  int reject; /* HTTP status for a request refused while being read */
  /* The request being answered. */
  int busy; /* from message complete until its last write completed */
  int keep_alive;
  int head;              /* HEAD: headers only */
  int stream_open;       /* a stream's status line and headers are written */
  int chunked;           /* the stream uses chunked framing (not HTTP/1.0) */
  char *cors;            /* CORS header lines for the response */
  tc__http_call_t *call; /* in flight, until done() or the client leaves */
  int reading, closing, handles;
  tc_tls_conn_t *tls; /* NULL: plaintext */
};

struct tc_http_server_s {
  uv_loop_t *loop;
  tc_http_opts_t opts;
  tc_listener_t listener;
  uv_timer_t fin; /* never started: closing it runs the stop callback on a later turn */
  tc__http_conn_t *conns;
  size_t n_conns;
  size_t n_calls; /* handlers owing done() */
  int listener_open, stopping, finishing;
  void (*stop_cb)(void *arg);
  void *stop_arg;
};


/* ---- the engine (http_conn.c), for the gateway ---- */

/* Closes the connection; a call in flight is cancelled. */
void tc__http_conn_close(tc__http_conn_t *c);
/* Runs the stop callback once nothing is left open. */
void tc__http_check_stopped(tc_http_server_t *s);
/* A whole response; extra: header lines ("Name: v\r\n") or NULL. */
void tc__http_respond(tc__http_conn_t *c, int status, const char *body, const char *extra);
/* The same with its Content-Type and a body of blen bytes. */
void tc__http_respond_typed(tc__http_conn_t *c, int status, const char *type, const char *body,
                            size_t blen, const char *extra);
/* A stream's status line and headers. */
int tc__http_stream_open(tc__http_conn_t *c);
/* One NDJSON line (text, malloc'd, consumed; NULL: out of memory). */
int tc__http_stream_line(tc__http_conn_t *c, enum tc__http_write_kind kind, char *text);
/* Ends a stream; its last write ends the request. */
void tc__http_stream_end(tc__http_conn_t *c);

/* ---- the gateway (http_gateway.c), for the engine ---- */

/* A request was read: route it, answer it or start its call. */
void tc__http_dispatch(tc__http_conn_t *c);
/* A request that cannot be read: answered, then the connection closes. */
void tc__http_reject(tc__http_conn_t *c);
/* The client left: the call in flight (if any) is cancelled. */
void tc__http_call_cancel(tc__http_conn_t *c);
/* A stream message's write completed. */
void tc__http_call_sent(tc__http_conn_t *c);
/* A server-streaming call is in flight. */
int tc__http_call_streaming(const tc__http_conn_t *c);

typedef struct tc__http_route_s {
  enum http_method method;
  const char *pattern; /* "/v1/tenants/{tenant_id}/data/write" */
  const char *rpc;     /* "/base.v1.Data/Write" */
} tc__http_route_t;

/* The route for method and path.  0 and *route set on a match, with *param
 * (malloc'd, percent-decoded; NULL when the pattern has none; its length,
 * NUL bytes included, in *param_len) and *param_name
 * (borrowed from the pattern, its length in *param_name_len); 501 when a route
 * has the path but another method; 404 when none has it; 400 for a
 * parameter that does not decode; TC_ENOMEM. */
int tc__http_route_match(enum http_method method, const char *path, const tc__http_route_t **route,
                         char **param, size_t *param_len, const char **param_name,
                         size_t *param_name_len);

/* The i-th route of the table, NULL past its end (tests walk every route). */
const tc__http_route_t *tc__http_route_at(size_t i);

/* Sets msg's string field named name[0..name_len) to the path parameter
 * value[0..value_len) (owned: stored, or freed on failure).  A value holding a
 * NUL byte or invalid UTF-8 is refused with tc_validate_string()'s answer (code
 * and malloc'd *errmsg); TC_EINVAL (and no *errmsg) when msg has no such
 * string field. */
int tc__http_param_set(ProtobufCMessage *msg, const char *name, size_t name_len, char *value,
                       size_t value_len, char **errmsg);

/* The request headers CORS looks at (NULL when absent). */
typedef struct tc__http_cors_req_s {
  const char *origin, *req_method, *req_headers;
} tc__http_cors_req_t;

/* rs/cors: the header lines ("Name: value\r\n"...) to add to the response,
 * malloc'd ("" when none).  *preflight is set when the request is a preflight
 * (OPTIONS with Access-Control-Request-Method), answered 204 with these. */
char *tc__http_cors_headers(const tc_http_opts_t *opts, enum http_method method,
                            const tc__http_cors_req_t *req, int *preflight);

#endif
