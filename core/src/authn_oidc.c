/* authn.method oidc: a call's "Bearer <JWT>" is checked against the keys the
 * issuer publishes (oidc_fetch.c fetches them), with cjose for the signature
 * and jansson for the claims.  docs/security.md, "Authentication: OIDC",
 * states the rules and where they differ from Permify. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjose/header.h>
#include <cjose/jws.h>
#include <curl/curl.h>
#include <jansson.h>

#include "authn.h"
#include "format.h"
#include "log.h"
#include "oidc_fetch.h"
#include "tuplecast/errors.h"

/* check() found no key with the token's kid (internal, never returned). */
#define UNKNOWN_KID 2
/* Verifies waiting for one key refresh at most; more are refused at once. */
#define MAX_PENDING 4096

typedef struct pending_s {
  struct pending_s *next;
  tc_authn_cb cb;
  void *arg;
  size_t len;
  char token[];
} pending_t;

typedef struct oidc_s {
  tc_authn_t base;
  const tc_config_t *cfg; /* borrowed: the server's, outlives us */
  uv_timer_t refresh;
  tc_oidc_fetcher_t *fetcher;
  tc_oidc_keys_t *keys;
  bool in_flight;           /* a fetch runs; its result re-checks pending */
  uint64_t window_start;    /* uv_now of the first unknown-kid refresh */
  int64_t window_refreshes; /* unknown-kid refreshes since window_start */
  pending_t *pending, **pending_tail;
  size_t n_pending;
} oidc_t;

/* The algorithms cjose verifies, and the key type each needs: an HS* token
 * is never checked with an RSA or EC key's bytes, nor RS* with a secret. */
static const struct {
  const char *alg;
  cjose_jwk_kty_t kty;
} ALGS[] = {
    {"RS256", CJOSE_JWK_KTY_RSA}, {"RS384", CJOSE_JWK_KTY_RSA}, {"RS512", CJOSE_JWK_KTY_RSA},
    {"PS256", CJOSE_JWK_KTY_RSA}, {"PS384", CJOSE_JWK_KTY_RSA}, {"PS512", CJOSE_JWK_KTY_RSA},
    {"ES256", CJOSE_JWK_KTY_EC},  {"ES384", CJOSE_JWK_KTY_EC},  {"ES512", CJOSE_JWK_KTY_EC},
    {"HS256", CJOSE_JWK_KTY_OCT}, {"HS384", CJOSE_JWK_KTY_OCT}, {"HS512", CJOSE_JWK_KTY_OCT},
};

static int alg_index(const char *alg) {
  for (size_t i = 0; i < sizeof ALGS / sizeof ALGS[0]; i++)
    if (!strcmp(ALGS[i].alg, alg)) return (int)i;
  return -1;
}

static bool alg_allowed(const oidc_t *o, const char *alg) {
  const tc_config_list_t *m = &o->cfg->authn_oidc_valid_methods;
  for (size_t i = 0; i < m->count; i++)
    if (!strcmp(m->items[i], alg)) return true;
  return false;
}

/* exp, nbf, iat as Permify's JWT library (golang-jwt v4) reads them:
 * optional (0 counts as absent), numeric, compared with the current whole
 * second: valid while now < exp, from now >= nbf and iat.  Permify allows no
 * leeway; we allow authn.oidc.clock_skew (skew_s) on each side, so an
 * issuer's clock a little ahead or behind ours does not refuse fresh tokens.
 * 0, EINVALID_BEARER (out of time) or EINVALID_CLAIMS (not a number). */
static int check_times(json_t *claims, double skew_s) {
  static const char *const names[] = {"exp", "nbf", "iat"};
  double now = (double)time(NULL);
  for (int i = 0; i < 3; i++) {
    json_t *v = json_object_get(claims, names[i]);
    if (!v) continue;
    if (!json_is_number(v)) return TC_EINVALID_CLAIMS;
    double t = json_number_value(v);
    if (t != 0 && (i == 0 ? !(now < t + skew_s) : !(now + skew_s >= t))) return TC_EINVALID_BEARER;
  }
  return 0;
}

static int check_audience(const oidc_t *o, json_t *aud) {
  const char *want = o->cfg->authn_oidc_audience;
  if (json_is_string(aud)) return strcmp(json_string_value(aud), want) ? TC_EINVALID_AUDIENCE : 0;
  bool found = false;
  size_t i;
  json_t *a;
  json_array_foreach(aud, i, a) {
    if (!json_is_string(a)) return TC_EINVALID_AUDIENCE;
    found |= !strcmp(json_string_value(a), want);
  }
  return found ? 0 : TC_EINVALID_AUDIENCE;
}

/* The claims of a token whose signature holds, in Permify's order: times
 * (its parser), then iss, then aud. */
static int check_claims(const oidc_t *o, cjose_jws_t *jws) {
  uint8_t *text = NULL;
  size_t len = 0;
  cjose_err cerr = {0};
  if (!cjose_jws_get_plaintext(jws, &text, &len, &cerr)) return TC_EINVALID_BEARER;
  json_t *claims = json_loadb((const char *)text, len, 0, NULL);
  double skew_s = (double)(o->cfg->authn_oidc_clock_skew_ms / 1000);
  int rc = json_is_object(claims) ? check_times(claims, skew_s) : TC_EINVALID_CLAIMS;
  if (rc == 0) {
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (!iss || strcmp(iss, o->cfg->authn_oidc_issuer)) rc = TC_EINVALID_ISSUER;
  }
  if (rc == 0) rc = check_audience(o, json_object_get(claims, "aud"));
  json_decref(claims);
  return rc;
}

/* Header alg allowed and fitting the key, then the signature. */
static int check_signature(const oidc_t *o, cjose_jws_t *jws) {
  cjose_err cerr = {0};
  cjose_header_t *hdr = cjose_jws_get_protected(jws);
  const char *alg = cjose_header_get(hdr, CJOSE_HDR_ALG, &cerr);
  const char *kid = cjose_header_get(hdr, CJOSE_HDR_KID, &cerr);
  int ai = alg ? alg_index(alg) : -1;
  if (ai < 0 || !alg_allowed(o, alg) || !kid) return TC_EINVALID_BEARER;
  const tc_oidc_key_t *key = tc_oidc_keys_find(o->keys, kid);
  if (!key) return UNKNOWN_KID;
  if ((key->alg && strcmp(key->alg, alg)) || cjose_jwk_get_kty(key->jwk, &cerr) != ALGS[ai].kty)
    return TC_EINVALID_BEARER;
  return cjose_jws_verify(jws, key->jwk, &cerr) ? 0 : TC_EINVALID_BEARER;
}

/* 0, a TC_E* refusal, or UNKNOWN_KID. */
static int check_token(const oidc_t *o, const char *token, size_t len) {
  cjose_err cerr = {0};
  cjose_jws_t *jws = len ? cjose_jws_import(token, len, &cerr) : NULL;
  if (!jws) return TC_EINVALID_BEARER;
  int rc = check_signature(o, jws);
  if (rc == 0) rc = check_claims(o, jws);
  cjose_jws_release(jws);
  return rc;
}

static void request_fetch(oidc_t *o, int64_t retries) {
  o->in_flight = true;
  tc_oidc_fetcher_request(o->fetcher, retries, o->cfg->authn_oidc_backoff_frequency_ms);
}

/* An unknown kid may refresh the keys: at most backoff_max_retries times per
 * backoff_interval, one refresh at a time (later callers wait for it). */
static bool may_refresh(oidc_t *o) {
  if (o->in_flight) return true;
  uint64_t now = uv_now(o->refresh.loop);
  if (o->window_refreshes == 0 ||
      now - o->window_start >= (uint64_t)o->cfg->authn_oidc_backoff_interval_ms) {
    o->window_start = now;
    o->window_refreshes = 0;
  }
  if (o->window_refreshes >= o->cfg->authn_oidc_backoff_max_retries) return false;
  o->window_refreshes++;
  request_fetch(o, 0);
  return true;
}

static int wait_for_keys(oidc_t *o, const char *token, size_t len, tc_authn_cb cb, void *arg) {
  if (o->n_pending >= MAX_PENDING || !may_refresh(o)) return TC_EINVALID_BEARER;
  pending_t *p = malloc(sizeof *p + len);
  if (!p) return TC_ENOMEM;
  *p = (pending_t){.cb = cb, .arg = arg, .len = len};
  memcpy(p->token, token, len);
  *o->pending_tail = p;
  o->pending_tail = &p->next;
  o->n_pending++;
  return TC_AUTHN_PENDING;
}

static int oidc_verify(tc_authn_t *a, const char *header, size_t len, tc_authn_cb cb, void *arg) {
  oidc_t *o = (oidc_t *)a;
  size_t tlen = 0;
  const char *token = tc__authn_bearer(header, len, &tlen);
  if (!token) return TC_EMISSING_BEARER;
  int rc = check_token(o, token, tlen);
  return rc == UNKNOWN_KID ? wait_for_keys(o, token, tlen, cb, arg) : rc;
}

/* Answers every waiting verify with the keys there are now. */
static void answer_pending(oidc_t *o, int forced_rc) {
  pending_t *p = o->pending;
  o->pending = NULL;
  o->pending_tail = &o->pending;
  o->n_pending = 0;
  while (p) {
    pending_t *next = p->next;
    int rc = forced_rc ? forced_rc : check_token(o, p->token, p->len);
    p->cb(p->arg, rc == UNKNOWN_KID ? TC_EINVALID_BEARER : rc);
    free(p);
    p = next;
  }
}

static void on_fetched(void *arg, tc_oidc_keys_t *keys, char *err) {
  oidc_t *o = arg;
  o->in_flight = false;
  if (keys) {
    tc_oidc_keys_free(o->keys);
    o->keys = keys;
    tc_log(TC_LOG_DEBUG, "oidc: %zu keys from the issuer", keys->count);
  } else {
    tc_log(TC_LOG_WARN, "oidc: cannot refresh the issuer's keys (%s); keeping the %zu cached", err,
           o->keys->count);
  }
  free(err);
  answer_pending(o, 0);
}

static void on_refresh_timer(uv_timer_t *t) {
  oidc_t *o = t->data;
  if (!o->in_flight) request_fetch(o, o->cfg->authn_oidc_backoff_max_retries);
}

static void on_timer_closed(uv_handle_t *h) {
  oidc_t *o = h->data;
  tc_oidc_keys_free(o->keys);
  free(o);
}

static void oidc_close(tc_authn_t *a) {
  oidc_t *o = (oidc_t *)a;
  tc_oidc_fetcher_stop(o->fetcher);
  answer_pending(o, TC_ECANCELLED);
  uv_close((uv_handle_t *)&o->refresh, on_timer_closed);
}

static const tc_authn_ops_t OPS = {.verify = oidc_verify, .close = oidc_close};

static char *invalid_method(const tc_config_list_t *m) {
  if (m->count == 0)
    return tc_format("authn.oidc.valid_methods: empty; name at least one algorithm");
  for (size_t i = 0; i < m->count; i++)
    if (alg_index(m->items[i]) < 0)
      return tc_format(
          "authn.oidc.valid_methods: %s is not one of RS256 RS384 RS512 PS256 PS384 "
          "PS512 ES256 ES384 ES512 HS256 HS384 HS512",
          m->items[i]);
  return NULL;
}

/* One line naming the first key that cannot work, or NULL. */
/* A skew is for clocks that drift, not for extending a token's life. */
#define MAX_CLOCK_SKEW_MS (5 * 60 * 1000)

static char *check_config(const tc_config_t *c) {
  const char *iss = c->authn_oidc_issuer;
  if (!iss[0]) return tc_format("authn.oidc.issuer: required when authn.method is oidc");
  if (strncmp(iss, "http://", 7) && strncmp(iss, "https://", 8))
    return tc_format("authn.oidc.issuer: \"%s\" is not an http:// or https:// URL", iss);
  if (!c->authn_oidc_audience[0])
    return tc_format("authn.oidc.audience: empty, so every token would be refused");
  if (c->authn_oidc_clock_skew_ms < 0 || c->authn_oidc_clock_skew_ms > MAX_CLOCK_SKEW_MS)
    return tc_format("authn.oidc.clock_skew: must be between 0s and 5m");
  if (c->authn_oidc_refresh_interval_ms <= 0)
    return tc_format("authn.oidc.refresh_interval: must be greater than 0");
  /* Permify refuses these three at start-up too. */
  if (c->authn_oidc_backoff_interval_ms <= 0)
    return tc_format("authn.oidc.backoff_interval: must be greater than 0");
  if (c->authn_oidc_backoff_max_retries <= 0)
    return tc_format("authn.oidc.backoff_max_retries: must be greater than 0");
  if (c->authn_oidc_backoff_frequency_ms <= 0)
    return tc_format(
        "authn.oidc.backoff_frequency: must be greater than 0 (its default 0s is "
        "refused, as Permify refuses it)");
  return invalid_method(&c->authn_oidc_valid_methods);
}

/* Start-up fetch: Permify does not start without the issuer's keys either. */
static int first_keys(oidc_t *o, char **errmsg) {
  const tc_config_t *c = o->cfg;
  char *err = NULL;
  int rc = tc_oidc_fetcher_fetch_now(o->fetcher, c->authn_oidc_backoff_max_retries,
                                     c->authn_oidc_backoff_frequency_ms, &o->keys, &err);
  if (rc != 0)
    *errmsg = tc_format("authn.oidc.issuer: cannot fetch the issuer's keys: %s", err);
  else
    tc_log(TC_LOG_INFO, "oidc: %zu keys from %s", o->keys->count, c->authn_oidc_issuer);
  free(err);
  return rc;
}

int tc_authn_oidc_open(uv_loop_t *loop, tc_bridge_t *bridge, const tc_config_t *cfg,
                       tc_authn_t **out, char **errmsg) {
  *out = NULL;
  if ((*errmsg = check_config(cfg))) return TC_ECONFIG;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  oidc_t *o = calloc(1, sizeof *o);
  if (!o) return TC_ENOMEM;
  o->base.ops = &OPS;
  o->cfg = cfg;
  o->pending_tail = &o->pending;
  int rc = tc_oidc_fetcher_start(bridge, cfg->authn_oidc_issuer, on_fetched, o, &o->fetcher);
  if (rc != 0) return free(o), *errmsg = tc_format("authn.oidc: cannot start the key fetcher"), rc;
  if ((rc = first_keys(o, errmsg)) != 0) {
    tc_oidc_fetcher_stop(o->fetcher);
    free(o);
    return rc;
  }
  uv_timer_init(loop, &o->refresh);
  o->refresh.data = o;
  uint64_t every = (uint64_t)cfg->authn_oidc_refresh_interval_ms;
  uv_timer_start(&o->refresh, on_refresh_timer, every, every);
  uv_unref((uv_handle_t *)&o->refresh);
  *out = &o->base;
  return 0;
}
