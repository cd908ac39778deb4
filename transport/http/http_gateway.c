/* The gateway adapter: what an HTTP request means.  A request read by the
 * engine (http_conn.c) is routed (http_route.c), its JSON body decoded into
 * the method's input, and it becomes the tc_call_t a handler sees; answers
 * and errors are encoded as Permify's gateway does (google.rpc.Status
 * bodies); a server-streaming call (Watch) is written as NDJSON lines.
 *
 * A call (tc__http_call_t) outlives its connection when the client leaves
 * mid-call: it is cancelled, on_cancel runs, and it is freed when the handler
 * calls done().  A stream's call.pending counts the writes not yet completed,
 * and each completion runs on_sent.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "tuplecast/support.h" /* tc_format */
#include "http_internal.h"
#include "listener.h"
#include "metrics.h"
#include "pbjson.h"

struct tc__http_call_s {
  tc_call_t call; /* what the handler sees; call.transport points back here */
  tc_http_server_t *srv;
  tc__http_conn_t *conn; /* NULL once answered or once the client left */
  ProtobufCMessage *request;
  char *authorization;
  int owed;       /* the handler took the call and has not called done() */
  int in_handler; /* inside a handler callback: done() may run but must not free */
};

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
static void respond_status(tc__http_conn_t *c, int grpc_code, const char *message) {
  int http = tc_grpc_status_to_http(grpc_code);
  char *body = status_json(grpc_code, message);
  char *extra = http == 401 ? tc_format("WWW-Authenticate: %s\r\n", message) : NULL;
  if (body)
    tc__http_respond(c, http, body, extra);
  else
    tc__http_conn_close(c);
  free(body);
  free(extra);
}

/* Readiness (tc_server_ready): 503 with the error body grpc-gateway's
 * health endpoint gives while the database does not answer. */
static void healthz(tc__http_conn_t *c) {
  const tc_http_opts_t *o = &c->srv->opts;
  if (!o->ready || o->ready(o->server))
    tc__http_respond(c, 200, "{\"status\":\"SERVING\"}", NULL);
  else
    respond_status(c, 14, "status:NOT_SERVING");
}

static void respond_statusf(tc__http_conn_t *c, int grpc_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void respond_statusf(tc__http_conn_t *c, int grpc_code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *text = tc_vformat(fmt, ap);
  va_end(ap);
  respond_status(c, grpc_code, text ? text : "out of memory");
  free(text);
}

/* ---- calls ---- */

static void call_release(tc__http_call_t *h) {
  tc_http_server_t *s = h->srv;
  if (h->request) protobuf_c_message_free_unpacked(h->request, NULL);
  free(h->authorization);
  free(h->call.errmsg);
  free(h);
  s->n_calls--;
  tc__http_check_stopped(s);
}

static void maybe_release(tc__http_call_t *h) {
  if (!h->owed && !h->in_handler) call_release(h);
}

/* Runs a handler callback; done() called from it must not free the call. */
static void notify(tc__http_call_t *h, tc_call_event_fn fn) {
  if (!fn || !h->owed) return;
  int outer = h->in_handler; /* on_cancel may run inside a handler's send() */
  h->in_handler = 1;
  fn(&h->call);
  h->in_handler = outer;
  maybe_release(h);
}

void tc__http_call_cancel(tc__http_conn_t *c) {
  tc__http_call_t *h = c->call;
  if (!h) return;
  c->call = NULL;
  h->conn = NULL;
  h->call.cancelled = 1;
  h->call.pending = 0;
  notify(h, h->call.on_cancel);
}

void tc__http_call_sent(tc__http_conn_t *c) {
  if (!c->call) return;
  c->call->call.pending--;
  notify(c->call, c->call->call.on_sent);
}

int tc__http_call_streaming(const tc__http_conn_t *c) { return c->call && c->call->call.send; }

/* call->send for server-streaming calls. */
static int call_send(tc_call_t *call, const ProtobufCMessage *msg) {
  tc__http_call_t *h = call->transport;
  tc__http_conn_t *c = h->conn;
  if (!c || call->cancelled) return TC_ECANCELLED;
  char *json = tc_json_encode(msg);
  if (!json) return TC_ENOMEM;
  if (!c->stream_open && tc__http_stream_open(c) != 0) {
    free(json);
    return TC_ECANCELLED;
  }
  char *line = tc_format("{\"result\":%s}", json);
  free(json);
  size_t bytes = line ? strlen(line) + 1 : 0; /* and its newline */
  if (tc__http_stream_line(c, TC__HTTP_W_STREAM_MSG, line) != 0) return TC_ECANCELLED;
  call->pending++;
  tc_metrics_stream_sent("http", bytes);
  return 0;
}

/* call->open for server-streaming calls: the status line and headers now. */
static void call_open(tc_call_t *call) {
  tc__http_call_t *h = call->transport;
  if (h->conn && !call->cancelled && !h->conn->stream_open) tc__http_stream_open(h->conn);
}

/* call->done for HTTP calls. */
static void call_done(tc_call_t *call, int status, const char *message,
                      const ProtobufCMessage *response) {
  tc__http_call_t *h = call->transport;
  tc__http_conn_t *c = h->conn;
  h->owed = 0;
  tc_call_log_end(call, "http", status, message);
  if (c) {
    c->call = NULL;
    h->conn = NULL;
    int grpc = tc_err_grpc_status(status);
    if (status < 0 && c->stream_open) {
      char *err = status_json(grpc, message);
      char *line = err ? tc_format("{\"error\":%s}", err) : NULL;
      free(err);
      if (tc__http_stream_line(c, TC__HTTP_W_PLAIN, line) == 0) tc__http_stream_end(c);
    } else if (status < 0)
      respond_status(c, grpc, message);
    else if (call->send) {
      if (c->stream_open || tc__http_stream_open(c) == 0) tc__http_stream_end(c);
    } else {
      char *body = tc_json_encode(response);
      if (body)
        tc__http_respond(c, 200, body, NULL);
      else
        respond_status(c, 13, "cannot encode the response");
      free(body);
    }
  }
  maybe_release(h);
}

/* ---- requests ---- */

/* The client's "ip:port" for the request log. */
static void copy_peer(tc__http_conn_t *c, tc_call_t *call) {
  uv_os_fd_t fd;
  if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) == 0)
    tc_net_peer_name(fd, call->peer, sizeof call->peer);
}

static void start_call(tc__http_conn_t *c, const tc_method_t *m, ProtobufCMessage *msg) {
  tc__http_call_t *h = calloc(1, sizeof *h);
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
  copy_peer(c, &h->call);
  if (m->server_streaming) {
    h->call.send = call_send;
    h->call.open = call_open;
  }
  h->call.transport = h;
  c->call = h;
  c->srv->n_calls++;
  h->owed = 1;
  h->in_handler = 1;
  int rc = tc_call_start(&h->call);
  if (rc < 0) call_done(&h->call, rc, h->call.errmsg ? h->call.errmsg : tc_err_code_name(rc), NULL);
  h->in_handler = 0;
  maybe_release(h);
}

/* A routed request: decode the body, set the path parameter, call. */
static void route_call(tc__http_conn_t *c, const tc__http_route_t *r, char *param, size_t plen,
                       const char *pname, size_t pname_len) {
  const tc_method_t *m = c->srv->opts.find_method(r->rpc);
  if (!m) {
    free(param);
    respond_statusf(c, 12, "unknown method %s", r->rpc);
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

/* GET /metrics: the exposition, unauthenticated like /healthz (docs/security.md). */
static void respond_metrics(tc__http_conn_t *c) {
  size_t len = 0;
  char *text = tc_metrics_render(c->srv->opts.server, &len);
  if (text)
    tc__http_respond_typed(c, 200, TC_METRICS_CONTENT_TYPE, text, len, NULL);
  else
    respond_status(c, 13, "out of memory");
  free(text);
}

void tc__http_dispatch(tc__http_conn_t *c) {
  c->busy = 1;
  uv_timer_stop(&c->timer);
  c->keep_alive = http_should_keep_alive(&c->parser) && !c->srv->stopping;
  enum http_method method = c->parser.method;
  c->head = method == HTTP_HEAD;
  int preflight;
  tc__http_cors_req_t creq = {c->origin, c->acr_method, c->acr_headers};
  c->cors = tc__http_cors_headers(&c->srv->opts, method, &creq, &preflight);
  if (!c->cors) {
    tc__http_conn_close(c);
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
    tc__http_conn_close(c);
    return;
  }
  const tc__http_route_t *r;
  char *param = NULL;
  const char *pname = NULL;
  size_t pname_len = 0, plen = 0;
  int rc;
  int get = method == HTTP_GET || method == HTTP_HEAD;
  enum tc_http_metrics metrics = c->srv->opts.metrics;
  if (metrics != TC_HTTP_METRICS_OFF && get && strcmp(path, "/metrics") == 0)
    respond_metrics(c);
  else if (metrics == TC_HTTP_METRICS_ONLY)
    respond_status(c, 5, "Not Found");
  else if (preflight)
    tc__http_respond(c, 204, NULL, NULL);
  else if (get && strcmp(path, "/healthz") == 0)
    healthz(c);
  else if (get && strcmp(path, "/livez") == 0)
    tc__http_respond(c, 200, "{\"status\":\"SERVING\"}", NULL);
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

void tc__http_reject(tc__http_conn_t *c) {
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
    tc__http_respond(c, status, body, NULL);
  else
    tc__http_conn_close(c);
  free(body);
}
