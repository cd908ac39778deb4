/* The HTTP/1.1 server: listener, connections, request parsing, responses, and
 * the tc_call_t each routed request becomes.
 *
 * A connection reads into `in`; http-parser pauses at the end of each
 * message, so one request at a time is answered and pipelined ones wait,
 * unparsed, in `in` (reading pauses while more than a largest body is
 * buffered).  A request's answer is one or more uv_write()s; the last one's
 * completion ends the request, and parsing resumes (or the connection closes).
 * A call (hcall_t) outlives its connection when the client leaves mid-call:
 * it is cancelled, on_cancel runs, and it is freed when the handler calls
 * done().  A stream writes each message as it comes (libuv queues them):
 * call.pending counts the writes not yet completed, and each completion runs
 * on_sent.
 * Under TLS (opts.tls) the socket's bytes pass through the TLS engine
 * (tls_conn.h): reads are fed to it and the plaintext lands in `in`; writes
 * are encrypted and queued on the same stream, so the write queue and the
 * write completions mean what they mean in plaintext.
 */
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "error.h"
#include "format.h"
#include "http_internal.h"
#include "listener.h"
#include "log.h"
#include "pbjson.h"
#include "tls_conn.h"

#define DEFAULT_MAX_BODY ((size_t)4 << 20)
#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define READ_CHUNK 65536
/* Write queue beyond which a client is not read: reading it can make output
 * (TLS answers key updates and the like without a request), so a client
 * that sends without reading would otherwise grow the queue without end.
 * Responses are not held back by it: a Watch keeps queueing its messages
 * and is ended by its own limit (database.watch_buffer_size). */
#define WRITE_BOUND ((size_t)256 << 10)

typedef struct hbuf_s {
  char *data;
  size_t len, cap;
} hbuf_t;

typedef struct conn_s conn_t;

typedef struct hcall_s {
  tc_call_t call; /* what the handler sees; call.transport points back here */
  tc_http_server_t *srv;
  conn_t *conn; /* NULL once answered or once the client left */
  ProtobufCMessage *request;
  char *authorization;
  int owed;       /* the handler took the call and has not called done() */
  int in_handler; /* inside a handler callback: done() may run but must not free */
} hcall_t;

enum write_kind { W_PLAIN, W_STREAM_MSG, W_LAST };

typedef struct hwrite_s {
  uv_write_t req;
  enum write_kind kind;
  char data[];
} hwrite_t;

struct conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer; /* request read timeout: headers and body must arrive within it */
  tc_http_server_t *srv;
  conn_t *prev, *next;
  http_parser parser;
  hbuf_t in; /* received, not yet parsed */
  /* The request being read. */
  hbuf_t url, field, value, body;
  int in_value; /* the last header callback was a value */
  char *authorization, *origin, *acr_method, *acr_headers;
  size_t authorization_len; /* the value may hold a NUL */
  int expect_continue;
  int reject; /* HTTP status for a request refused while being read */
  /* The request being answered. */
  int busy;        /* from message complete until its last write completed */
  int keep_alive;
  int head;        /* HEAD: headers only */
  int stream_open; /* a stream's status line and headers are written */
  int chunked;     /* the stream uses chunked framing (not HTTP/1.0) */
  char *cors;      /* CORS header lines for the response */
  hcall_t *call;   /* in flight, until done() or the client leaves */
  int reading, closing, handles;
  tc_tls_conn_t *tls; /* NULL: plaintext */
};

struct tc_http_server_s {
  uv_loop_t *loop;
  tc_http_opts_t opts;
  tc_listener_t listener;
  uv_timer_t fin; /* never started: closing it runs the stop callback on a later turn */
  conn_t *conns;
  size_t n_conns;
  size_t n_calls; /* handlers owing done() */
  int listener_open, stopping, finishing;
  void (*stop_cb)(void *arg);
  void *stop_arg;
};

/* Parses what is buffered, as far as the next request's end. */
static void parse(conn_t *c);
/* Starts or stops reading the client as the buffers allow. */
static void read_update(conn_t *c);

/* ---- buffers ---- */

static int buf_reserve(hbuf_t *b, size_t extra) {
  if (b->cap - b->len >= extra) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < extra) cap *= 2;
  char *d = realloc(b->data, cap);
  if (!d) return TC_ENOMEM;
  b->data = d;
  b->cap = cap;
  return 0;
}

static int buf_append(hbuf_t *b, const char *p, size_t n) {
  if (buf_reserve(b, n + 1) != 0) return TC_ENOMEM;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static void buf_free(hbuf_t *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

/* ---- server lifetime ---- */

static void on_fin_closed(uv_handle_t *h) {
  tc_http_server_t *s = h->data;
  void (*cb)(void *) = s->stop_cb;
  void *arg = s->stop_arg;
  free(s);
  if (cb) cb(arg);
}

static void check_stopped(tc_http_server_t *s) {
  if (!s->stopping || s->finishing || s->n_conns || s->n_calls || s->listener_open) return;
  s->finishing = 1;
  uv_close((uv_handle_t *)&s->fin, on_fin_closed);
}

/* ---- calls ---- */

static void call_release(hcall_t *h) {
  tc_http_server_t *s = h->srv;
  if (h->request) protobuf_c_message_free_unpacked(h->request, NULL);
  free(h->authorization);
  free(h->call.errmsg);
  free(h);
  s->n_calls--;
  check_stopped(s);
}

static void maybe_release(hcall_t *h) {
  if (!h->owed && !h->in_handler) call_release(h);
}

/* Runs a handler callback; done() called from it must not free the call. */
static void notify(hcall_t *h, tc_call_event_fn fn) {
  if (!fn || !h->owed) return;
  int outer = h->in_handler; /* on_cancel may run inside a handler's send() */
  h->in_handler = 1;
  fn(&h->call);
  h->in_handler = outer;
  maybe_release(h);
}

/* ---- connections ---- */

static void reset_request(conn_t *c) {
  c->url.len = c->field.len = c->value.len = c->body.len = 0;
  c->in_value = 0;
  free(c->authorization);
  free(c->origin);
  free(c->acr_method);
  free(c->acr_headers);
  free(c->cors);
  c->authorization = c->origin = c->acr_method = c->acr_headers = c->cors = NULL;
  c->authorization_len = 0;
  c->expect_continue = c->reject = c->busy = c->head = c->stream_open = 0;
}

static void on_conn_handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles) return;
  tc_http_server_t *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  reset_request(c);
  buf_free(&c->in);
  buf_free(&c->url);
  buf_free(&c->field);
  buf_free(&c->value);
  buf_free(&c->body);
  tc_tls_conn_free(c->tls);
  free(c);
  s->n_conns--;
  check_stopped(s);
}

/* Closes the connection; a call in flight is cancelled (its handler still
 * owes done()).  Writes not yet completed are cancelled by libuv. */
static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
  hcall_t *h = c->call;
  if (!h) return;
  c->call = NULL;
  h->conn = NULL;
  h->call.cancelled = 1;
  h->call.pending = 0;
  notify(h, h->call.on_cancel);
}

static void on_header_timeout(uv_timer_t *t) { conn_close(t->data); }

static void arm_header_timer(conn_t *c) {
  int ms = c->srv->opts.header_timeout_ms;
  uv_timer_start(&c->timer, on_header_timeout,
                 (uint64_t)(ms > 0 ? ms : DEFAULT_HEADER_TIMEOUT_MS), 0);
}

/* The last write of a response completed: next request, or close. */
static void response_done(conn_t *c) {
  if (!c->keep_alive || c->srv->stopping) {
    conn_close(c);
    return;
  }
  reset_request(c);
  arm_header_timer(c);
  parse(c);
}

static void write_done(conn_t *c, hwrite_t *w, int status) {
  enum write_kind kind = w->kind;
  free(w);
  if (c->closing) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (kind == W_STREAM_MSG && c->call) {
    c->call->call.pending--;
    notify(c->call, c->call->call.on_sent);
  } else if (kind == W_LAST) {
    response_done(c);
    return;
  }
  if (!c->closing) read_update(c);
}

static void on_write(uv_write_t *req, int status) {
  write_done(req->handle->data, (hwrite_t *)req, status);
}

/* Writes a, b and c (any may be NULL) as one write.  Returns 0, or a negative
 * code after closing the connection. */
static int send_parts(conn_t *c, enum write_kind kind, const char *a, size_t alen,
                      const char *b, size_t blen, const char *t, size_t tlen) {
  if (c->closing) return TC_ECANCELLED;
  hwrite_t *w = malloc(sizeof *w + alen + blen + tlen + 1);
  if (!w) {
    conn_close(c);
    return TC_ENOMEM;
  }
  w->kind = kind;
  if (alen) memcpy(w->data, a, alen);
  if (blen) memcpy(w->data + alen, b, blen);
  if (tlen) memcpy(w->data + alen + blen, t, tlen);
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)(alen + blen + tlen));
  int rc = c->tls ? tc_tls_conn_write(c->tls, buf.base, buf.len, w)
                  : uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
  if (rc < 0) {
    tc_log(TC_LOG_WARN, "http: write: %s", c->tls ? tc_err_symbol(rc) : uv_strerror(rc));
    free(w);
    conn_close(c);
    return TC_ECANCELLED;
  }
  /* Stopping: a response stuck behind a client that does not read is dropped. */
  if (kind == W_LAST && c->srv->stopping && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp))
    conn_close(c);
  return 0;
}

static const char *reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 409: return "Conflict";
  case 413: return "Content Too Large";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 499: return "Client Closed Request";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Unknown";
  }
}

/* A whole response; extra: header lines ("Name: v\r\n") or NULL. */
static void respond(conn_t *c, int status, const char *body, const char *extra) {
  size_t blen = body ? strlen(body) : 0;
  char *head;
  if (status == 204)
    head = tc_format("HTTP/1.1 204 No Content\r\n%s%s\r\n", c->cors ? c->cors : "",
                     c->keep_alive ? "" : "Connection: close\r\n");
  else
    head = tc_format("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "%s%s%s\r\n",
                     status, reason(status), blen, c->cors ? c->cors : "", extra ? extra : "",
                     c->keep_alive ? "" : "Connection: close\r\n");
  if (!head) {
    conn_close(c);
    return;
  }
  send_parts(c, W_LAST, head, strlen(head), body, c->head ? 0 : blen, NULL, 0);
  free(head);
}

/* google.rpc.Status as grpc-gateway renders it,
 * {"code":…,"message":…,"details":[]}, compact, malloc'd. */
static char *status_json(int grpc_code, const char *message) {
  json_t *msg = json_string(message);
  if (!msg) { /* not UTF-8: say it with the bytes beyond ASCII as '?' */
    char *ascii = strdup(message);
    for (char *p = ascii; p && *p; p++)
      if ((unsigned char)*p >= 0x80) *p = '?';
    msg = ascii ? json_string(ascii) : NULL;
    free(ascii);
  }
  json_t *o = json_object();
  json_object_set_new(o, "code", json_integer(grpc_code));
  json_object_set_new(o, "message", msg);
  json_object_set_new(o, "details", json_array());
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return text;
}

/* grpc-gateway's error response. */
static void respond_status(conn_t *c, int grpc_code, const char *message) {
  int http = tc_grpc_status_to_http(grpc_code);
  char *body = status_json(grpc_code, message);
  char *extra = http == 401 ? tc_format("WWW-Authenticate: %s\r\n", message) : NULL;
  if (body)
    respond(c, http, body, extra);
  else
    conn_close(c);
  free(body);
  free(extra);
}

static void respond_statusf(conn_t *c, int grpc_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void respond_statusf(conn_t *c, int grpc_code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *text = tc_vformat(fmt, ap);
  va_end(ap);
  respond_status(c, grpc_code, text ? text : "out of memory");
  free(text);
}

/* ---- streams ---- */

static int stream_open(conn_t *c) {
  c->stream_open = 1;
  c->chunked = !(c->parser.http_major == 1 && c->parser.http_minor == 0);
  if (!c->chunked) c->keep_alive = 0;
  char *head = tc_format("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n%s%s%s\r\n",
                         c->chunked ? "Transfer-Encoding: chunked\r\n" : "",
                         c->cors ? c->cors : "", c->keep_alive ? "" : "Connection: close\r\n");
  if (!head) {
    conn_close(c);
    return TC_ENOMEM;
  }
  int rc = send_parts(c, W_PLAIN, head, strlen(head), NULL, 0, NULL, 0);
  free(head);
  return rc;
}

/* One NDJSON line (text, malloc'd, consumed; NULL: out of memory) as one chunk. */
static int stream_line(conn_t *c, enum write_kind kind, char *text) {
  if (!text) {
    conn_close(c);
    return TC_ENOMEM;
  }
  size_t len = strlen(text);
  char size[32];
  int n = c->chunked ? snprintf(size, sizeof size, "%zx\r\n", len + 1) : 0;
  int rc = send_parts(c, kind, size, (size_t)n, text, len, "\n\r\n", c->chunked ? 3 : 1);
  free(text);
  return rc;
}

/* Ends a stream: the terminating chunk (HTTP/1.0: nothing; the connection
 * closes once the queue is written). */
static void stream_end(conn_t *c) {
  send_parts(c, W_LAST, "0\r\n\r\n", c->chunked ? 5 : 0, NULL, 0, NULL, 0);
}

/* call->send for server-streaming calls. */
static int call_send(tc_call_t *call, const ProtobufCMessage *msg) {
  hcall_t *h = call->transport;
  conn_t *c = h->conn;
  if (!c || call->cancelled) return TC_ECANCELLED;
  char *json = tc_json_encode(msg);
  if (!json) return TC_ENOMEM;
  if (!c->stream_open && stream_open(c) != 0) {
    free(json);
    return TC_ECANCELLED;
  }
  char *line = tc_format("{\"result\":%s}", json);
  free(json);
  if (stream_line(c, W_STREAM_MSG, line) != 0) return TC_ECANCELLED;
  call->pending++;
  return 0;
}

/* call->done for HTTP calls. */
static void call_done(tc_call_t *call, int status, const char *message,
                      const ProtobufCMessage *response) {
  hcall_t *h = call->transport;
  conn_t *c = h->conn;
  h->owed = 0;
  if (c) {
    c->call = NULL;
    h->conn = NULL;
    int grpc = tc_err_grpc_status(status);
    if (status < 0 && c->stream_open) {
      char *err = status_json(grpc, message);
      char *line = err ? tc_format("{\"error\":%s}", err) : NULL;
      free(err);
      if (stream_line(c, W_PLAIN, line) == 0) stream_end(c);
    } else if (status < 0)
      respond_status(c, grpc, message);
    else if (call->send) {
      if (c->stream_open || stream_open(c) == 0) stream_end(c);
    } else {
      char *body = tc_json_encode(response);
      if (body)
        respond(c, 200, body, NULL);
      else
        respond_status(c, 13, "cannot encode the response");
      free(body);
    }
  }
  maybe_release(h);
}

/* ---- requests ---- */

static void start_call(conn_t *c, const tc_method_t *m, ProtobufCMessage *msg) {
  hcall_t *h = calloc(1, sizeof *h);
  if (!h) {
    protobuf_c_message_free_unpacked(msg, NULL);
    respond_status(c, 13, "out of memory");
    return;
  }
  h->srv = c->srv;
  h->conn = c;
  h->request = msg;
  h->authorization = c->authorization;
  h->call.authorization_len = c->authorization_len;
  c->authorization = NULL;
  h->call.server = c->srv->opts.server;
  h->call.method = m;
  h->call.request = msg;
  h->call.authorization = h->authorization;
  h->call.done = call_done;
  if (m->server_streaming) h->call.send = call_send;
  h->call.transport = h;
  c->call = h;
  c->srv->n_calls++;
  h->owed = 1;
  h->in_handler = 1;
  int rc = (m->admit ? m->admit : m->handler)(&h->call);
  if (rc < 0) call_done(&h->call, rc, h->call.errmsg ? h->call.errmsg : tc_err_code_name(rc), NULL);
  h->in_handler = 0;
  maybe_release(h);
}

/* A routed request: decode the body, set the path parameter, call. */
static void route_call(conn_t *c, const tc__http_route_t *r, char *param, size_t plen,
                       const char *pname, size_t pname_len) {
  const tc_method_t *m = c->srv->opts.find_method(r->rpc);
  if (!m || !m->handler) {
    free(param);
    respond_statusf(c, 12, m ? "method %s not implemented" : "unknown method %s", r->rpc);
    return;
  }
  ProtobufCMessage *msg = NULL;
  char *err = NULL;
  /* Tenancy.Delete (DELETE) has no body. */
  size_t blen = r->method == HTTP_DELETE ? 0 : c->body.len;
  if (tc_json_decode(m->input, blen ? c->body.data : "", blen, &msg, &err) != 0) {
    free(param);
    respond_status(c, 3, err ? err : "malformed JSON body");
    free(err);
    return;
  }
  int rc = param ? tc__http_param_set(msg, pname, pname_len, param, plen, &err) : 0;
  if (rc != 0) {
    protobuf_c_message_free_unpacked(msg, NULL);
    if (rc == TC_EINVAL) /* no such field: our route table is wrong */
      respond_statusf(c, 13, "%s has no string field for its path parameter", m->input->name);
    else /* a NUL in the parameter (or out of memory) */
      respond_status(c, tc_err_grpc_status(rc), err ? err : tc_err_code_name(rc));
    free(err);
    return;
  }
  start_call(c, m, msg);
}

static void dispatch(conn_t *c) {
  c->busy = 1;
  uv_timer_stop(&c->timer);
  c->keep_alive = http_should_keep_alive(&c->parser) && !c->srv->stopping;
  enum http_method method = c->parser.method;
  c->head = method == HTTP_HEAD;
  int preflight;
  tc__http_cors_req_t creq = {c->origin, c->acr_method, c->acr_headers};
  c->cors = tc__http_cors_headers(&c->srv->opts, method, &creq, &preflight);
  if (!c->cors) {
    conn_close(c);
    return;
  }
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (!c->url.len || http_parser_parse_url(c->url.data, c->url.len, 0, &u) != 0 ||
      !(u.field_set & (1 << UF_PATH))) {
    c->keep_alive = 0;
    respond_status(c, 3, "malformed request target");
    return;
  }
  char *path = strndup(c->url.data + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
  if (!path) {
    conn_close(c);
    return;
  }
  const tc__http_route_t *r;
  char *param = NULL;
  const char *pname = NULL;
  size_t pname_len = 0, plen = 0;
  int rc;
  if (preflight)
    respond(c, 204, NULL, NULL);
  else if ((method == HTTP_GET || method == HTTP_HEAD) && strcmp(path, "/healthz") == 0)
    respond(c, 200, "{\"status\":\"SERVING\"}", NULL);
  else if ((rc = tc__http_route_match(method, path, &r, &param, &plen, &pname, &pname_len)) == 0)
    route_call(c, r, param, plen, pname, pname_len);
  else if (rc == 404)
    respond_status(c, 5, "Not Found");
  else if (rc == 501)
    respond_status(c, 12, "Method Not Allowed");
  else if (rc == 400)
    respond_status(c, 3, "malformed path parameter");
  else
    respond_status(c, 13, "out of memory");
  free(path);
}

/* A request that cannot be read: answered, then the connection closes. */
static void reject(conn_t *c) {
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  c->busy = 1;
  c->keep_alive = 0;
  uv_timer_stop(&c->timer);
  int status = c->reject ? c->reject : e == HPE_HEADER_OVERFLOW ? 431 : 400;
  char *body = status == 413   ? status_json(8, "request body too large")
               : status == 431 ? status_json(8, "request header fields too large")
               : status == 500 ? status_json(13, "out of memory")
                               : NULL;
  if (!body) {
    char *msg = tc_format("malformed HTTP request: %s", http_errno_description(e));
    body = msg ? status_json(3, msg) : NULL;
    free(msg);
  }
  if (body)
    respond(c, status, body, NULL);
  else
    conn_close(c);
  free(body);
}

static conn_t *conn_of(http_parser *p) { return p->data; }

static int fail_oom(conn_t *c) {
  c->reject = 500;
  return -1;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  conn_t *c = conn_of(p);
  return buf_append(&c->url, at, len) == 0 ? 0 : fail_oom(c);
}

static int take(char **dst, const hbuf_t *v) {
  if (*dst) return 0; /* the first one counts */
  *dst = strndup(v->len ? v->data : "", v->len);
  return *dst ? 0 : TC_ENOMEM;
}

/* The first Authorization header, with its real length, less the trailing
 * whitespace that is not part of a field value (as Go's gateway trims it). */
static int take_authorization(conn_t *c) {
  if (c->authorization) return 0;
  size_t len = c->value.len;
  while (len && (c->value.data[len - 1] == ' ' || c->value.data[len - 1] == '\t')) len--;
  if (!(c->authorization = malloc(len + 1))) return TC_ENOMEM;
  if (len) memcpy(c->authorization, c->value.data, len);
  c->authorization[len] = '\0';
  c->authorization_len = len;
  return 0;
}

/* A complete header: keep the ones we use. */
static int store_header(conn_t *c) {
  const char *f = c->field.len ? c->field.data : "";
  if (strcasecmp(f, "authorization") == 0) return take_authorization(c);
  if (strcasecmp(f, "origin") == 0) return take(&c->origin, &c->value);
  if (strcasecmp(f, "access-control-request-method") == 0) return take(&c->acr_method, &c->value);
  if (strcasecmp(f, "access-control-request-headers") == 0)
    return take(&c->acr_headers, &c->value);
  if (strcasecmp(f, "expect") == 0 && c->value.len && strcasecmp(c->value.data, "100-continue") == 0)
    c->expect_continue = 1;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  conn_t *c = conn_of(p);
  if (c->in_value) {
    if (store_header(c) != 0) return fail_oom(c);
    c->field.len = c->value.len = 0;
    c->in_value = 0;
  }
  return buf_append(&c->field, at, len) == 0 ? 0 : fail_oom(c);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  conn_t *c = conn_of(p);
  c->in_value = 1;
  return buf_append(&c->value, at, len) == 0 ? 0 : fail_oom(c);
}

static size_t max_body(const conn_t *c) {
  return c->srv->opts.max_body_bytes ? c->srv->opts.max_body_bytes : DEFAULT_MAX_BODY;
}

static int on_headers_complete(http_parser *p) {
  conn_t *c = conn_of(p);
  if (c->in_value && store_header(c) != 0) return fail_oom(c);
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > max_body(c)) {
    c->reject = 413;
    return -1;
  }
  if (c->expect_continue && p->http_major == 1 && p->http_minor == 1)
    send_parts(c, W_PLAIN, "HTTP/1.1 100 Continue\r\n\r\n", 25, NULL, 0, NULL, 0);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  conn_t *c = conn_of(p);
  if (c->body.len + len > max_body(c)) {
    c->reject = 413;
    return -1;
  }
  return buf_append(&c->body, at, len) == 0 ? 0 : fail_oom(c);
}

static int on_message_complete(http_parser *p) {
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn_t *c = h->data;
  if (c->tls) {
    tc_tls_conn_alloc(h, suggested, buf);
    return;
  }
  if (buf_reserve(&c->in, READ_CHUNK) != 0) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init(c->in.data + c->in.len, READ_CHUNK);
}

/* Buffered input beyond which reading pauses while a request is answered. */
static size_t in_limit(const conn_t *c) { return max_body(c) + READ_CHUNK; }

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  if (nread < 0) { /* EOF, error, or UV_ENOBUFS from on_alloc: done with this client */
    conn_close(c);
    return;
  }
  if (!c->tls)
    c->in.len += (size_t)nread;
  else if (tc_tls_conn_feed(c->tls, buf->base, (size_t)nread) != 0) {
    conn_close(c); /* a failed handshake, close_notify or a TLS error */
    return;
  }
  if (c->busy) {
    read_update(c);
    return;
  }
  parse(c);
}

/* Reading pauses while a request is answered and more than in_limit is
 * buffered, or while the write queue is over WRITE_BOUND; a completed write
 * (ours, or one of the TLS engine's own) looks again. */
static void read_update(conn_t *c) {
  int want = !c->closing && (!c->busy || c->in.len <= in_limit(c)) &&
             uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= WRITE_BOUND;
  if (want == c->reading) return;
  if (want)
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  else
    uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = want;
}

static void parse(conn_t *c) {
  size_t off = 0;
  while (!c->busy && !c->closing && off < c->in.len) {
    off += http_parser_execute(&c->parser, &settings, c->in.data + off, c->in.len - off);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
      http_parser_pause(&c->parser, 0);
      dispatch(c);
    } else if (e != HPE_OK)
      reject(c);
  }
  if (c->closing) return;
  if (off) {
    memmove(c->in.data, c->in.data + off, c->in.len - off);
    c->in.len -= off;
  }
  if (!c->in.len) buf_free(&c->in); /* idle connections hold no buffer */
  read_update(c);
}

/* ---- TLS: the engine's callbacks ---- */

static int tls_plain(void *arg, const char *data, size_t len) {
  conn_t *c = arg;
  return buf_append(&c->in, data, len);
}

static void tls_written(void *arg, void *token, int status) {
  write_done(arg, token, status);
}

/* The engine's own records left the queue. */
static void tls_flushed(void *arg) {
  conn_t *c = arg;
  if (!c->closing) read_update(c);
}

static const tc_tls_conn_cbs_t tls_cbs = {
    .on_plain = tls_plain, .on_written = tls_written, .on_flushed = tls_flushed};

/* ---- listener ---- */

/* The listener's callback (transport/net): fd becomes a connection, or is
 * closed at once when the server is full. */
static void on_accept(tc_listener_t *l, int fd) {
  tc_http_server_t *s = l->data;
  conn_t *c = NULL;
  if ((s->opts.max_connections && s->n_conns >= s->opts.max_connections) ||
      !(c = calloc(1, sizeof *c)) || uv_tcp_init(s->loop, &c->tcp) != 0) {
    free(c);
    close(fd);
    return;
  }
  c->srv = s;
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    close(fd);
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (s->opts.tls &&
      !(c->tls = tc_tls_conn_new(s->opts.tls, (uv_stream_t *)&c->tcp, &tls_cbs, c))) {
    conn_close(c);
    return;
  }
  arm_header_timer(c);
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_listener_closed(tc_listener_t *l) {
  tc_http_server_t *s = l->data;
  s->listener_open = 0;
  check_stopped(s);
}

int tc_http_start(uv_loop_t *loop, const tc_http_opts_t *opts, tc_http_server_t **out,
                  int *bound_port, char **errmsg) {
  *out = NULL;
  *errmsg = NULL;
  tc_http_server_t *s = calloc(1, sizeof *s);
  if (!s) return TC_ENOMEM;
  s->loop = loop;
  s->opts = *opts;
  if (opts->max_header_bytes) http_parser_set_max_header_size((uint32_t)opts->max_header_bytes);
  s->listener.data = s;
  s->listener.name = "http";
  s->listener.on_accept = on_accept;
  s->listener.on_close = on_listener_closed;
  int rc = tc_listener_open(&s->listener, loop, opts->host, opts->port, bound_port, errmsg);
  if (rc != 0) {
    free(s);
    return rc;
  }
  uv_timer_init(loop, &s->fin);
  s->fin.data = s;
  s->listener_open = 1;
  *out = s;
  return 0;
}

void tc_http_stop(tc_http_server_t *s, void (*cb)(void *arg), void *arg) {
  s->stopping = 1;
  s->stop_cb = cb;
  s->stop_arg = arg;
  tc_listener_close(&s->listener);
  for (conn_t *c = s->conns; c; c = c->next) {
    if (!c->busy || (c->call && c->call->call.send) ||
        (!c->call && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp)))
      conn_close(c); /* idle, a stream still running, or a response the client does not read */
    else
      c->keep_alive = 0; /* a unary call in flight, or a response being written */
  }
  check_stopped(s);
}
