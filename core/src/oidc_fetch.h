/* The OIDC issuer's keys: a thread of its own reads the issuer's discovery
 * document (<issuer>/.well-known/openid-configuration, once, for its
 * jwks_uri) and then its JWKS with libcurl, turns each key into a cjose JWK,
 * and hands the set to the loop thread through the bridge.
 *
 * Threading: tc_oidc_fetcher_* are called on the loop thread (fetch_now at
 * start-up, before the loop runs).  One fetch at a time: the caller asks for
 * the next only after the previous one's callback ran.  The callback runs on
 * the loop thread.
 *
 * Ownership: the caller owns the fetcher (start .. stop).  A key set handed
 * to the callback or out of fetch_now is the receiver's, freed with
 * tc_oidc_keys_free; so is the error string (free()).
 */
#ifndef TC_OIDC_FETCH_H
#define TC_OIDC_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include <cjose/jwk.h>

#include "bridge.h"

typedef struct tc_oidc_key_s {
  char *kid;
  char *alg; /* the JWK's "alg", NULL when it names none */
  cjose_jwk_t *jwk;
} tc_oidc_key_t;

typedef struct tc_oidc_keys_s {
  size_t count;
  tc_oidc_key_t *items;
} tc_oidc_keys_t;

/* NULL when no key has that kid. */
const tc_oidc_key_t *tc_oidc_keys_find(const tc_oidc_keys_t *keys, const char *kid);
void tc_oidc_keys_free(tc_oidc_keys_t *keys);

typedef struct tc_oidc_fetcher_s tc_oidc_fetcher_t;

/* keys: the new set, or NULL when the fetch failed, then err says why. */
typedef void (*tc_oidc_fetched_cb)(void *arg, tc_oidc_keys_t *keys, char *err);

/* Starts the thread.  issuer is copied. */
int tc_oidc_fetcher_start(tc_bridge_t *bridge, const char *issuer, tc_oidc_fetched_cb cb, void *arg,
                          tc_oidc_fetcher_t **out);
/* One fetch of up to 1 + retries attempts, spacing_ms apart; cb on the loop. */
void tc_oidc_fetcher_request(tc_oidc_fetcher_t *f, int64_t retries, int64_t spacing_ms);
/* The same fetch, but the caller waits for it (start-up only): 0 and *keys,
 * or TC_EUNAVAILABLE and *err. */
int tc_oidc_fetcher_fetch_now(tc_oidc_fetcher_t *f, int64_t retries, int64_t spacing_ms,
                              tc_oidc_keys_t **keys, char **err);
/* Aborts a transfer or wait in progress, joins the thread, frees f (later,
 * on the loop, when a result is still queued on the bridge; cb is not run). */
void tc_oidc_fetcher_stop(tc_oidc_fetcher_t *f);

#endif
