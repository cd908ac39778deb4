#include "tls_context.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "log.h"
#include "tuplecast/support.h" /* tc_format */
#include "tuplecast/errors.h"

struct tc_tls_ctx_s {
  SSL_CTX *ctx;
  char *prefix, *cert_path, *key_path;
  unsigned char alpn[32]; /* wire format: length byte, name */
};

/* The reason of OpenSSL's last error, and an empty queue for the next call. */
static const char *ssl_reason(void) {
  const char *r = ERR_reason_error_string(ERR_peek_last_error());
  ERR_clear_error();
  return r ? r : "unknown error";
}

/* ALPN: the one protocol we speak, when the client offers it; none otherwise
 * (the client decides whether to go on without). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
  tc_tls_ctx_t *t = arg;
  (void)ssl;
  unsigned char *sel = NULL;
  if (SSL_select_next_proto(&sel, outlen, t->alpn, t->alpn[0] + 1u, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* Opens path for reading to tell a missing or unreadable file from bad PEM. */
static int check_readable(const char *what, const char *prefix, const char *path, char **errmsg) {
  if (!path || !*path) {
    *errmsg = tc_format("%s.%s: required when %s.enabled is true", prefix, what, prefix);
    return TC_ECONFIG;
  }
  FILE *f = fopen(path, "r");
  int err = f ? 0 : errno;
  if (f && fgetc(f) == EOF && ferror(f)) err = errno; /* a directory opens, and reads EISDIR */
  if (f) fclose(f);
  if (err) {
    *errmsg = tc_format("%s.%s: %s: cannot read: %s", prefix, what, path, strerror(err));
    return TC_ECONFIG;
  }
  return 0;
}

static EVP_PKEY *read_key(const tc_tls_ctx_t *t, char **errmsg) {
  FILE *f = fopen(t->key_path, "r");
  EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
  if (f) fclose(f);
  if (!key)
    *errmsg =
        tc_format("%s.key: %s: not a PEM private key (%s)", t->prefix, t->key_path, ssl_reason());
  return key;
}

/* A new SSL_CTX from t's paths, or NULL with *errmsg. */
static SSL_CTX *build(tc_tls_ctx_t *t, char **errmsg) {
  *errmsg = NULL;
  if (check_readable("cert", t->prefix, t->cert_path, errmsg) != 0 ||
      check_readable("key", t->prefix, t->key_path, errmsg) != 0)
    return NULL;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    *errmsg = tc_format("%s: cannot create a TLS context: %s", t->prefix, ssl_reason());
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* Idle connections hold no record buffers. */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, t);
  EVP_PKEY *key = NULL;
  if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_path) != 1)
    *errmsg =
        tc_format("%s.cert: %s: not a PEM certificate (%s)", t->prefix, t->cert_path, ssl_reason());
  else if ((key = read_key(t, errmsg)) == NULL) {
  } else if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    *errmsg = tc_format("%s.key: %s: does not match the certificate in %s", t->prefix, t->key_path,
                        t->cert_path);
  }
  EVP_PKEY_free(key);
  if (*errmsg) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

int tc_tls_ctx_load(const char *prefix, const char *cert_path, const char *key_path,
                    const char *alpn, tc_tls_ctx_t **out, char **errmsg) {
  *out = NULL;
  *errmsg = NULL;
  tc_tls_ctx_t *t = calloc(1, sizeof *t);
  size_t alen = strlen(alpn);
  if (!t || alen >= sizeof t->alpn) {
    free(t);
    return TC_ENOMEM;
  }
  t->alpn[0] = (unsigned char)alen;
  memcpy(t->alpn + 1, alpn, alen);
  t->prefix = strdup(prefix);
  t->cert_path = strdup(cert_path ? cert_path : "");
  t->key_path = strdup(key_path ? key_path : "");
  if (!t->prefix || !t->cert_path || !t->key_path) {
    tc_tls_ctx_free(t);
    return TC_ENOMEM;
  }
  t->ctx = build(t, errmsg);
  if (!t->ctx) {
    tc_tls_ctx_free(t);
    return *errmsg ? TC_ECONFIG : TC_ENOMEM;
  }
  *out = t;
  return 0;
}

int tc_tls_ctx_reload(tc_tls_ctx_t *t, char **errmsg) {
  SSL_CTX *ctx = build(t, errmsg);
  if (!ctx) return *errmsg ? TC_ECONFIG : TC_ENOMEM;
  SSL_CTX_free(t->ctx); /* open connections hold their own reference */
  t->ctx = ctx;
  return 0;
}

int tc_tls_ctx_load_if(int enabled, const char *prefix, const char *cert_path, const char *key_path,
                       const char *alpn, tc_tls_ctx_t **out, char **errmsg) {
  *out = NULL;
  return enabled ? tc_tls_ctx_load(prefix, cert_path, key_path, alpn, out, errmsg) : 0;
}

const char *tc_tls_ctx_name(const tc_tls_ctx_t *t) { return t->prefix; }

void tc_tls_ctx_reload_logged(tc_tls_ctx_t *t) {
  char *err = NULL;
  if (!t) return;
  if (tc_tls_ctx_reload(t, &err) == 0)
    tc_log(TC_LOG_INFO, "tls: %s: certificate reloaded", t->prefix);
  else
    tc_log(TC_LOG_ERROR, "tls: reload failed, still serving the previous certificate: %s",
           err ? err : "out of memory");
  free(err);
}

SSL *tc_tls_ctx_new_ssl(tc_tls_ctx_t *t) { return SSL_new(t->ctx); }

void tc_tls_ctx_free(tc_tls_ctx_t *t) {
  if (!t) return;
  SSL_CTX_free(t->ctx);
  free(t->prefix);
  free(t->cert_path);
  free(t->key_path);
  free(t);
}
