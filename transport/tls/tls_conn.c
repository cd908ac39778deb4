#include "tls_conn.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "log.h"
#include "tuplecast/errors.h"

#define SCRATCH 65536 /* one read; a TLS record is at most 16 KiB + overhead */

struct tc_tls_conn_s {
  SSL *ssl;
  BIO *rbio; /* ciphertext from the peer, read by SSL */
  BIO *wbio; /* ciphertext from SSL, for the peer */
  uv_stream_t *stream;
  tc_tls_conn_cbs_t cbs;
  void *arg;
};

typedef struct twrite_s {
  uv_write_t req;
  tc_tls_conn_t *t;
  void *token;
  char data[];
} twrite_t;

static _Thread_local char scratch[SCRATCH];

void tc_tls_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(scratch, SCRATCH);
}

tc_tls_conn_t *tc_tls_conn_new(tc_tls_ctx_t *ctx, uv_stream_t *stream, const tc_tls_conn_cbs_t *cbs,
                               void *arg) {
  tc_tls_conn_t *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ssl = tc_tls_ctx_new_ssl(ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    SSL_free(t->ssl);
    free(t);
    return NULL;
  }
  /* An empty memory BIO reads as "retry", not as end of file. */
  BIO_set_mem_eof_return(t->rbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both now */
  SSL_set_accept_state(t->ssl);
  t->stream = stream;
  t->cbs = *cbs;
  t->arg = arg;
  return t;
}

void tc_tls_conn_free(tc_tls_conn_t *t) {
  if (!t) return;
  SSL_free(t->ssl);
  free(t);
}

static void on_write(uv_write_t *req, int status) {
  twrite_t *w = (twrite_t *)req;
  tc_tls_conn_t *t = w->t;
  void *token = w->token;
  free(w);
  if (!token) {
    if (t->cbs.on_flushed) t->cbs.on_flushed(t->arg);
  } else if (t->cbs.on_written) {
    t->cbs.on_written(t->arg, token, status);
  }
}

/* Writes whatever SSL produced (possibly nothing, when a token must still
 * complete) on the stream. */
static int flush(tc_tls_conn_t *t, void *token) {
  size_t n = BIO_ctrl_pending(t->wbio);
  if (!n && !token) return 0;
  twrite_t *w = malloc(sizeof *w + n);
  if (!w) return TC_ENOMEM;
  w->t = t;
  w->token = token;
  if (n && BIO_read(t->wbio, w->data, (int)n) != (int)n) {
    free(w);
    return TC_EINTERNAL;
  }
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)n);
  int rc = uv_write(&w->req, t->stream, &buf, 1, on_write);
  if (rc < 0) {
    free(w);
    return TC_ECANCELLED;
  }
  return 0;
}

/* Logs why the connection fails, at debug level: a client that cannot speak
 * TLS, or speaks it badly, is the client's problem, not the server's. */
static int fail(tc_tls_conn_t *t, const char *stage, int err) {
  unsigned long e = ERR_peek_last_error();
  const char *why = e                          ? ERR_reason_error_string(e)
                    : err == SSL_ERROR_SYSCALL ? "unexpected end of stream"
                                               : "TLS error";
  tc_log(TC_LOG_DEBUG, "tls: %s failed: %s", stage, why ? why : "TLS error");
  ERR_clear_error();
  flush(t, NULL); /* an alert, if SSL made one */
  return TC_ECANCELLED;
}

/* 0 once the handshake is done, 1 while it waits for the peer, or < 0. */
static int handshake(tc_tls_conn_t *t) {
  int r = SSL_do_handshake(t->ssl);
  if (r == 1) return 0;
  int err = SSL_get_error(t->ssl, r);
  if (err != SSL_ERROR_WANT_READ) return fail(t, "handshake", err);
  int rc = flush(t, NULL);
  return rc ? rc : 1;
}

int tc_tls_conn_feed(tc_tls_conn_t *t, const char *data, size_t len) {
  if (len && BIO_write(t->rbio, data, (int)len) != (int)len) return TC_ENOMEM;
  if (!SSL_is_init_finished(t->ssl)) {
    int rc = handshake(t);
    if (rc != 0) return rc > 0 ? 0 : rc;
  }
  char buf[16384];
  for (;;) {
    int n = SSL_read(t->ssl, buf, sizeof buf);
    if (n > 0) {
      int rc = t->cbs.on_plain(t->arg, buf, (size_t)n);
      if (rc != 0) return rc;
      continue;
    }
    int err = SSL_get_error(t->ssl, n);
    if (err == SSL_ERROR_WANT_READ) return flush(t, NULL); /* session tickets, key updates */
    if (err == SSL_ERROR_ZERO_RETURN) {
      flush(t, NULL);
      return TC_ECANCELLED; /* close_notify: the peer is done */
    }
    return fail(t, "read", err);
  }
}

int tc_tls_conn_write(tc_tls_conn_t *t, const char *data, size_t len, void *token) {
  /* A memory BIO takes everything: SSL_write writes all of len or fails. */
  if (len && SSL_write(t->ssl, data, (int)len) <= 0) {
    ERR_clear_error();
    return TC_EINTERNAL;
  }
  return flush(t, token);
}
