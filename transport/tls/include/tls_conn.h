/* The TLS engine shared by both transports: one server-side TLS connection
 * over a libuv stream, through OpenSSL memory BIOs.  The owner reads the
 * socket and feeds the ciphertext in (tc_tls_conn_feed); the plaintext comes
 * back through on_plain.  Plaintext to send goes through tc_tls_conn_write,
 * which encrypts it and uv_write()s the records on the stream, so the
 * stream's write queue (uv_stream_get_write_queue_size) counts what is not
 * yet sent; on_written runs when that write completes, as uv_write's callback
 * would.  Handshake records and alerts go out the same way.
 *
 * Threading: loop thread only.
 *
 * Ownership: the owner owns the stream and closes it; tc_tls_conn_free runs
 * from the stream's close callback (libuv has run every write callback by
 * then).  The engine holds one reference to the SSL_CTX it started with.
 */
#ifndef TC_TLS_CONN_H
#define TC_TLS_CONN_H

#include <stddef.h>

#include <uv.h>

#include "tls_context.h"

typedef struct tc_tls_conn_s tc_tls_conn_t;

typedef struct tc_tls_conn_cbs_s {
  /* Decrypted bytes.  Nonzero return: stop, and feed returns that code. */
  int (*on_plain)(void *arg, const char *data, size_t len);
  /* A tc_tls_conn_write's records were written (status 0) or not (< 0, a
   * libuv code; UV_ECANCELED once the stream is closing). */
  void (*on_written)(void *arg, void *token, int status);
  /* The engine's own records (handshake, alerts, answers to key updates),
   * queued while feeding, have left the write queue (may be NULL): for an
   * owner that stops reading while that queue is long. */
  void (*on_flushed)(void *arg);
} tc_tls_conn_cbs_t;

/* A connection on an accepted stream; NULL when out of memory. */
tc_tls_conn_t *tc_tls_conn_new(tc_tls_ctx_t *ctx, uv_stream_t *stream, const tc_tls_conn_cbs_t *cbs,
                               void *arg);

/* An alloc_cb for uv_read_start on a TLS stream: a scratch buffer of the
 * loop thread, which tc_tls_conn_feed consumes before it returns. */
void tc_tls_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Ciphertext read from the stream: runs the handshake, then decrypts into
 * on_plain.  Returns 0, or a negative code when the connection must close:
 * a failed handshake (logged at debug level with the reason), a close_notify
 * from the peer, or a TLS error. */
int tc_tls_conn_feed(tc_tls_conn_t *t, const char *data, size_t len);

/* Encrypts data (len may be 0) and writes it on the stream; on_written(token)
 * follows.  Returns 0 or a negative code (nothing was queued). */
int tc_tls_conn_write(tc_tls_conn_t *t, const char *data, size_t len, void *token);

/* After the stream is closed. */
void tc_tls_conn_free(tc_tls_conn_t *t);

#endif
