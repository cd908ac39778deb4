/* A server's TLS settings: the certificate and key files of one transport
 * (server.http.tls or server.grpc.tls) loaded into an OpenSSL SSL_CTX, and
 * reloaded from the same paths on demand (SIGHUP).
 *
 * Threading: loop thread only.
 *
 * Ownership: tc_tls_ctx_t owns its paths and the current SSL_CTX.  Every
 * connection's SSL holds its own reference to the SSL_CTX it was made from
 * (SSL_new counts it), so a reload swaps the current one for new connections
 * while open connections keep theirs until they end.
 */
#ifndef TC_TLS_CONTEXT_H
#define TC_TLS_CONTEXT_H

#include <openssl/ssl.h>

typedef struct tc_tls_ctx_s tc_tls_ctx_t;

/* Loads cert_path (PEM, the leaf first, then any chain) and key_path (PEM)
 * for the keys under prefix ("server.http.tls"); alpn is the one protocol
 * offered in ALPN ("h2" or "http/1.1").  Returns 0, or TC_ECONFIG with *errmsg
 * (malloc'd) one line naming the key, the file and the problem: missing,
 * unreadable, not PEM, or a key that does not match the certificate. */
int tc_tls_ctx_load(const char *prefix, const char *cert_path, const char *key_path,
                    const char *alpn, tc_tls_ctx_t **out, char **errmsg);
/* A transport's context from its server.<transport>.tls keys: as
 * tc_tls_ctx_load() when enabled, else 0 with *out NULL. */
int tc_tls_ctx_load_if(int enabled, const char *prefix, const char *cert_path, const char *key_path,
                       const char *alpn, tc_tls_ctx_t **out, char **errmsg);

/* Builds a new SSL_CTX from the same paths.  On success new connections use
 * it; on failure (*errmsg as for load) the current one stays. */
int tc_tls_ctx_reload(tc_tls_ctx_t *t, char **errmsg);
/* SIGHUP's reload of a transport: tc_tls_ctx_reload() with one log line
 * saying it worked, or why the previous certificate is still served.
 * NULL does nothing. */
void tc_tls_ctx_reload_logged(tc_tls_ctx_t *t);

/* The keys' prefix given to load ("server.http.tls"). */
const char *tc_tls_ctx_name(const tc_tls_ctx_t *t);

/* A new server-side SSL on the current SSL_CTX, or NULL (out of memory). */
SSL *tc_tls_ctx_new_ssl(tc_tls_ctx_t *t);

/* Frees t; connections still open keep their SSL_CTX. */
void tc_tls_ctx_free(tc_tls_ctx_t *t);

#endif
