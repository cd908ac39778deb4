/* The HTTP/1.1 engine: listener, connections, request parsing, keep-alive,
 * timers, responses and streams.  What a request means is the gateway's
 * (http_gateway.c); this file reads requests and writes answers.
 *
 * A connection reads into `in`; http-parser pauses at the end of each
 * message, so one request at a time is answered and pipelined ones wait,
 * unparsed, in `in` (reading pauses while more than a largest body is
 * buffered).  A request's answer is one or more uv_write()s; the last one's
 * completion ends the request, and parsing resumes (or the connection closes).
 * A stream writes each message as it comes (libuv queues them); each stream
 * message's completion is reported to the gateway (tc__http_call_sent).
 * Under TLS (opts.tls) the socket's bytes pass through the TLS engine
 * (tls_conn.h): reads are fed to it and the plaintext lands in `in`; writes
 * are encrypted and queued on the same stream, so the write queue and the
 * write completions mean what they mean in plaintext.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "error.h"
#include "tuplecast/support.h" /* tc_format */
#include "http_internal.h"
#include "log.h"

#define DEFAULT_MAX_BODY ((size_t)4 << 20)
#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define READ_CHUNK 65536
/* Write queue beyond which a client is not read: reading it can make output
 * (TLS answers key updates and the like without a request), so a client
 * that sends without reading would otherwise grow the queue without end.
 * Responses are not held back by it: a Watch keeps queueing its messages
 * and is ended by its own limit (database.watch_buffer_size). */
#define WRITE_BOUND ((size_t)256 << 10)

typedef struct hwrite_s {
  uv_write_t req;
  enum tc__http_write_kind kind;
  char data[];
} hwrite_t;

/* Parses what is buffered, as far as the next request's end. */
static void parse(tc__http_conn_t *c);
/* Starts or stops reading the client as the buffers allow. */
static void read_update(tc__http_conn_t *c);

/* ---- buffers ---- */

static int buf_reserve(tc__http_buf_t *b, size_t extra) {
  if (b->cap - b->len >= extra) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < extra) cap *= 2;
  char *d = realloc(b->data, cap);
  if (!d) return TC_ENOMEM;
  b->data = d;
  b->cap = cap;
  return 0;
}

static int buf_append(tc__http_buf_t *b, const char *p, size_t n) {
  if (buf_reserve(b, n + 1) != 0) return TC_ENOMEM;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static void buf_free(tc__http_buf_t *b) {
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

void tc__http_check_stopped(tc_http_server_t *s) {
  if (!s->stopping || s->finishing || s->n_conns || s->n_calls || s->listener_open) return;
  s->finishing = 1;
  uv_close((uv_handle_t *)&s->fin, on_fin_closed);
}

/* ---- connections ---- */

static void reset_request(tc__http_conn_t *c) {
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
  tc__http_conn_t *c = h->data;
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
  tc__http_check_stopped(s);
}

/* Closes the connection; a call in flight is cancelled (its handler still
 * owes done()).  Writes not yet completed are cancelled by libuv. */
void tc__http_conn_close(tc__http_conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
  tc__http_call_cancel(c);
}

static void on_header_timeout(uv_timer_t *t) { tc__http_conn_close(t->data); }

static void arm_header_timer(tc__http_conn_t *c) {
  int ms = c->srv->opts.header_timeout_ms;
  uv_timer_start(&c->timer, on_header_timeout, (uint64_t)(ms > 0 ? ms : DEFAULT_HEADER_TIMEOUT_MS),
                 0);
}

/* The last write of a response completed: next request, or close. */
static void response_done(tc__http_conn_t *c) {
  if (!c->keep_alive || c->srv->stopping) {
    tc__http_conn_close(c);
    return;
  }
  reset_request(c);
  arm_header_timer(c);
  parse(c);
}

static void write_done(tc__http_conn_t *c, hwrite_t *w, int status) {
  enum tc__http_write_kind kind = w->kind;
  free(w);
  if (c->closing) return;
  if (status < 0) {
    tc__http_conn_close(c);
    return;
  }
  if (kind == TC__HTTP_W_LAST) {
    response_done(c);
    return;
  }
  if (kind == TC__HTTP_W_STREAM_MSG) tc__http_call_sent(c);
  if (!c->closing) read_update(c);
}

static void on_write(uv_write_t *req, int status) {
  write_done(req->handle->data, (hwrite_t *)req, status);
}

/* Writes a, b and c (any may be NULL) as one write.  Returns 0, or a negative
 * code after closing the connection. */
static int send_parts(tc__http_conn_t *c, enum tc__http_write_kind kind, const char *a, size_t alen,
                      const char *b, size_t blen, const char *t, size_t tlen) {
  if (c->closing) return TC_ECANCELLED;
  hwrite_t *w = malloc(sizeof *w + alen + blen + tlen + 1);
  if (!w) {
    tc__http_conn_close(c);
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
    tc__http_conn_close(c);
    return TC_ECANCELLED;
  }
  /* Stopping: a response stuck behind a client that does not read is dropped. */
  if (kind == TC__HTTP_W_LAST && c->srv->stopping &&
      uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp))
    tc__http_conn_close(c);
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
void tc__http_respond(tc__http_conn_t *c, int status, const char *body, const char *extra) {
  tc__http_respond_typed(c, status, "application/json", body, body ? strlen(body) : 0, extra);
}

void tc__http_respond_typed(tc__http_conn_t *c, int status, const char *type, const char *body,
                            size_t blen, const char *extra) {
  char *head;
  if (status == 204)
    head = tc_format("HTTP/1.1 204 No Content\r\n%s%s\r\n", c->cors ? c->cors : "",
                     c->keep_alive ? "" : "Connection: close\r\n");
  else
    head = tc_format(
        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
        "%s%s%s\r\n",
        status, reason(status), type, blen, c->cors ? c->cors : "", extra ? extra : "",
        c->keep_alive ? "" : "Connection: close\r\n");
  if (!head) {
    tc__http_conn_close(c);
    return;
  }
  send_parts(c, TC__HTTP_W_LAST, head, strlen(head), body, c->head ? 0 : blen, NULL, 0);
  free(head);
}

/* ---- streams ---- */

int tc__http_stream_open(tc__http_conn_t *c) {
  c->stream_open = 1;
  c->chunked = !(c->parser.http_major == 1 && c->parser.http_minor == 0);
  if (!c->chunked) c->keep_alive = 0;
  char *head = tc_format("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n%s%s%s\r\n",
                         c->chunked ? "Transfer-Encoding: chunked\r\n" : "", c->cors ? c->cors : "",
                         c->keep_alive ? "" : "Connection: close\r\n");
  if (!head) {
    tc__http_conn_close(c);
    return TC_ENOMEM;
  }
  int rc = send_parts(c, TC__HTTP_W_PLAIN, head, strlen(head), NULL, 0, NULL, 0);
  free(head);
  return rc;
}

/* One NDJSON line (text, malloc'd, consumed; NULL: out of memory) as one chunk. */
int tc__http_stream_line(tc__http_conn_t *c, enum tc__http_write_kind kind, char *text) {
  if (!text) {
    tc__http_conn_close(c);
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
void tc__http_stream_end(tc__http_conn_t *c) {
  send_parts(c, TC__HTTP_W_LAST, "0\r\n\r\n", c->chunked ? 5 : 0, NULL, 0, NULL, 0);
}

static tc__http_conn_t *conn_of(http_parser *p) { return p->data; }

static int fail_oom(tc__http_conn_t *c) {
  c->reject = 500;
  return -1;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  tc__http_conn_t *c = conn_of(p);
  return buf_append(&c->url, at, len) == 0 ? 0 : fail_oom(c);
}

static int take(char **dst, const tc__http_buf_t *v) {
  if (*dst) return 0; /* the first one counts */
  *dst = strndup(v->len ? v->data : "", v->len);
  return *dst ? 0 : TC_ENOMEM;
}

/* The first Authorization header, with its real length, less the trailing
 * whitespace that is not part of a field value (as Go's gateway trims it). */
static int take_authorization(tc__http_conn_t *c) {
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
static int store_header(tc__http_conn_t *c) {
  const char *f = c->field.len ? c->field.data : "";
  if (strcasecmp(f, "authorization") == 0) return take_authorization(c);
  if (strcasecmp(f, "origin") == 0) return take(&c->origin, &c->value);
  if (strcasecmp(f, "access-control-request-method") == 0) return take(&c->acr_method, &c->value);
  if (strcasecmp(f, "access-control-request-headers") == 0) return take(&c->acr_headers, &c->value);
  if (strcasecmp(f, "expect") == 0 && c->value.len &&
      strcasecmp(c->value.data, "100-continue") == 0)
    c->expect_continue = 1;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  tc__http_conn_t *c = conn_of(p);
  if (c->in_value) {
    if (store_header(c) != 0) return fail_oom(c);
    c->field.len = c->value.len = 0;
    c->in_value = 0;
  }
  return buf_append(&c->field, at, len) == 0 ? 0 : fail_oom(c);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  tc__http_conn_t *c = conn_of(p);
  c->in_value = 1;
  return buf_append(&c->value, at, len) == 0 ? 0 : fail_oom(c);
}

static size_t max_body(const tc__http_conn_t *c) {
  return c->srv->opts.max_body_bytes ? c->srv->opts.max_body_bytes : DEFAULT_MAX_BODY;
}

static int on_headers_complete(http_parser *p) {
  tc__http_conn_t *c = conn_of(p);
  if (c->in_value && store_header(c) != 0) return fail_oom(c);
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > max_body(c)) {
    c->reject = 413;
    return -1;
  }
  if (c->expect_continue && p->http_major == 1 && p->http_minor == 1)
    send_parts(c, TC__HTTP_W_PLAIN, "HTTP/1.1 100 Continue\r\n\r\n", 25, NULL, 0, NULL, 0);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  tc__http_conn_t *c = conn_of(p);
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
  tc__http_conn_t *c = h->data;
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
static size_t in_limit(const tc__http_conn_t *c) { return max_body(c) + READ_CHUNK; }

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  tc__http_conn_t *c = stream->data;
  if (nread < 0) { /* EOF, error, or UV_ENOBUFS from on_alloc: done with this client */
    tc__http_conn_close(c);
    return;
  }
  if (!c->tls)
    c->in.len += (size_t)nread;
  else if (tc_tls_conn_feed(c->tls, buf->base, (size_t)nread) != 0) {
    tc__http_conn_close(c); /* a failed handshake, close_notify or a TLS error */
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
static void read_update(tc__http_conn_t *c) {
  int want = !c->closing && (!c->busy || c->in.len <= in_limit(c)) &&
             uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= WRITE_BOUND;
  if (want == c->reading) return;
  if (want)
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  else
    uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = want;
}

static void parse(tc__http_conn_t *c) {
  size_t off = 0;
  while (!c->busy && !c->closing && off < c->in.len) {
    off += http_parser_execute(&c->parser, &settings, c->in.data + off, c->in.len - off);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
      http_parser_pause(&c->parser, 0);
      tc__http_dispatch(c);
    } else if (e != HPE_OK)
      tc__http_reject(c);
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
  tc__http_conn_t *c = arg;
  return buf_append(&c->in, data, len);
}

static void tls_written(void *arg, void *token, int status) { write_done(arg, token, status); }

/* The engine's own records left the queue. */
static void tls_flushed(void *arg) {
  tc__http_conn_t *c = arg;
  if (!c->closing) read_update(c);
}

static const tc_tls_conn_cbs_t tls_cbs = {
    .on_plain = tls_plain, .on_written = tls_written, .on_flushed = tls_flushed};

/* ---- listener ---- */

/* The listener's callback (transport/net): fd becomes a connection, or is
 * closed at once when the server is full. */
static void on_accept(tc_listener_t *l, int fd) {
  tc_http_server_t *s = l->data;
  tc__http_conn_t *c = NULL;
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
    tc__http_conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (s->opts.tls &&
      !(c->tls = tc_tls_conn_new(s->opts.tls, (uv_stream_t *)&c->tcp, &tls_cbs, c))) {
    tc__http_conn_close(c);
    return;
  }
  arm_header_timer(c);
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_listener_closed(tc_listener_t *l) {
  tc_http_server_t *s = l->data;
  s->listener_open = 0;
  tc__http_check_stopped(s);
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
  s->listener.name = opts->metrics == TC_HTTP_METRICS_ONLY ? "metrics" : "http";
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

size_t tc_http_connections(const tc_http_server_t *s) { return s->n_conns; }

void tc_http_stop(tc_http_server_t *s, void (*cb)(void *arg), void *arg) {
  s->stopping = 1;
  s->stop_cb = cb;
  s->stop_arg = arg;
  tc_listener_close(&s->listener);
  for (tc__http_conn_t *c = s->conns; c; c = c->next) {
    if (!c->busy || tc__http_call_streaming(c) ||
        (!c->call && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp)))
      /* idle, a stream still running, or a response the client does not read */
      tc__http_conn_close(c);
    else
      c->keep_alive = 0; /* a unary call in flight, or a response being written */
  }
  tc__http_check_stopped(s);
}
