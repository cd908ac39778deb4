#include "oidc_fetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "format.h"
#include "log.h"
#include "tuplecast/errors.h"

/* A discovery document or JWKS larger than this is refused: real ones are a
 * few kB, and the cap bounds what a hostile issuer can make us hold. */
#define MAX_BODY (1024 * 1024)
#define CONNECT_TIMEOUT_MS 5000L
#define TRANSFER_TIMEOUT_MS 10000L

struct tc_oidc_fetcher_s {
  tc_completion_t done; /* posted when an asynchronous fetch ends */
  tc_bridge_t *bridge;
  tc_oidc_fetched_cb cb;
  void *cb_arg;
  char *issuer;
  char *jwks_uri; /* the worker's alone: set by the first good discovery */
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  /* Under lock. */
  bool job, sync, sync_done, stop, posted, stopped;
  int64_t retries, spacing_ms;
  tc_oidc_keys_t *keys;
  char *err;
};

const tc_oidc_key_t *tc_oidc_keys_find(const tc_oidc_keys_t *keys, const char *kid) {
  for (size_t i = 0; keys && i < keys->count; i++)
    if (!strcmp(keys->items[i].kid, kid)) return &keys->items[i];
  return NULL;
}

void tc_oidc_keys_free(tc_oidc_keys_t *keys) {
  if (!keys) return;
  for (size_t i = 0; i < keys->count; i++) {
    free(keys->items[i].kid);
    free(keys->items[i].alg);
    cjose_jwk_release(keys->items[i].jwk);
  }
  free(keys->items);
  free(keys);
}

typedef struct body_s {
  char *data;
  size_t len;
} body_t;

static size_t on_data(char *ptr, size_t size, size_t n, void *arg) {
  body_t *b = arg;
  size_t add = size * n;
  if (b->len + add > MAX_BODY) return 0;
  char *grown = realloc(b->data, b->len + add + 1);
  if (!grown) return 0;
  memcpy(grown + b->len, ptr, add);
  b->data = grown;
  b->len += add;
  b->data[b->len] = '\0';
  return add;
}

/* Aborts the transfer when stop() was asked for. */
static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  (void)a, (void)b, (void)c, (void)d;
  tc_oidc_fetcher_t *f = arg;
  pthread_mutex_lock(&f->lock);
  bool stop = f->stop;
  pthread_mutex_unlock(&f->lock);
  return stop;
}

/* GET url as JSON.  NULL and *err on failure. */
static json_t *get_json(tc_oidc_fetcher_t *f, const char *url, char **err) {
  CURL *c = curl_easy_init();
  if (!c) return *err = tc_format("%s: cannot make a curl handle", url), NULL;
  body_t body = {0};
  char cerr[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L); /* as Go's http.Client */
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, TRANSFER_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  json_t *doc = NULL;
  if (rc != CURLE_OK)
    *err = tc_format("%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
  else if (status != 200)
    *err = tc_format("%s: HTTP status %ld", url, status);
  else if (!(doc = json_loadb(body.data ? body.data : "", body.len, 0, NULL)) ||
           !json_is_object(doc))
    *err = tc_format("%s: not a JSON object", url);
  if (*err) json_decref(doc), doc = NULL;
  free(body.data);
  return doc;
}

/* One JWKS entry; false (skipped, logged) when it has no kid or cjose cannot
 * use it, e.g. a key type it does not know. */
static bool import_key(json_t *jk, tc_oidc_key_t *out) {
  const char *kid = json_string_value(json_object_get(jk, "kid"));
  const char *alg = json_string_value(json_object_get(jk, "alg"));
  if (!kid) return false;
  char *text = json_dumps(jk, JSON_COMPACT);
  cjose_err cerr = {0};
  cjose_jwk_t *jwk = text ? cjose_jwk_import(text, strlen(text), &cerr) : NULL;
  free(text);
  if (!jwk) {
    tc_log(TC_LOG_WARN, "oidc: JWKS key %s skipped: %s", kid,
           cerr.message ? cerr.message : "out of memory");
    return false;
  }
  out->kid = strdup(kid);
  out->alg = alg ? strdup(alg) : NULL;
  out->jwk = jwk;
  if (out->kid && (out->alg || !alg)) return true;
  free(out->kid), free(out->alg), cjose_jwk_release(jwk);
  return false;
}

static tc_oidc_keys_t *parse_jwks(json_t *doc, const char *url, char **err) {
  json_t *arr = json_object_get(doc, "keys");
  if (!json_is_array(arr)) return *err = tc_format("%s: no \"keys\" array", url), NULL;
  tc_oidc_keys_t *keys = calloc(1, sizeof *keys);
  if (keys && !(keys->items = calloc(json_array_size(arr) + 1, sizeof *keys->items)))
    free(keys), keys = NULL;
  if (!keys) return *err = tc_format("%s: out of memory", url), NULL;
  size_t i;
  json_t *jk;
  json_array_foreach(arr, i, jk) {
    if (json_is_object(jk) && import_key(jk, &keys->items[keys->count])) keys->count++;
  }
  return keys;
}

static char *discovery_url(const char *issuer) {
  size_t n = strlen(issuer);
  while (n > 0 && issuer[n - 1] == '/') n--; /* as Permify: TrimSuffix "/" */
  return tc_format("%.*s/.well-known/openid-configuration", (int)n, issuer);
}

/* One attempt: discovery (until it has once succeeded), then the JWKS. */
static tc_oidc_keys_t *fetch_once(tc_oidc_fetcher_t *f, char **err) {
  if (!f->jwks_uri) {
    char *url = discovery_url(f->issuer);
    json_t *doc = get_json(f, url, err);
    const char *uri = json_string_value(json_object_get(doc, "jwks_uri"));
    if (doc && !uri) *err = tc_format("%s: no \"jwks_uri\"", url);
    if (uri) f->jwks_uri = strdup(uri);
    json_decref(doc);
    free(url);
    if (!f->jwks_uri) return NULL;
  }
  json_t *doc = get_json(f, f->jwks_uri, err);
  tc_oidc_keys_t *keys = doc ? parse_jwks(doc, f->jwks_uri, err) : NULL;
  json_decref(doc);
  return keys;
}

/* Waits ms or until stop; true when stopped.  Called with the lock held. */
static bool pause_unless_stopped(tc_oidc_fetcher_t *f, int64_t ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  while (!f->stop && pthread_cond_timedwait(&f->cond, &f->lock, &until) != ETIMEDOUT) {
  }
  return f->stop;
}

static void run_job(tc_oidc_fetcher_t *f) {
  tc_oidc_keys_t *keys = NULL;
  char *err = NULL;
  for (int64_t attempt = 0; !keys && attempt <= f->retries; attempt++) {
    if (attempt > 0) {
      tc_log(TC_LOG_WARN, "oidc: %s; retry %lld of %lld in %lld ms", err, (long long)attempt,
             (long long)f->retries, (long long)f->spacing_ms);
      if (pause_unless_stopped(f, f->spacing_ms)) break;
    }
    free(err), err = NULL;
    pthread_mutex_unlock(&f->lock);
    keys = fetch_once(f, &err);
    pthread_mutex_lock(&f->lock);
  }
  if (!keys && !err) err = tc_format("stopped");
  f->keys = keys;
  f->err = err;
}

static void *worker(void *arg) {
  tc_oidc_fetcher_t *f = arg;
  pthread_mutex_lock(&f->lock);
  for (;;) {
    while (!f->job && !f->stop) pthread_cond_wait(&f->cond, &f->lock);
    if (f->stop) break;
    f->job = false;
    run_job(f);
    if (f->sync) {
      f->sync_done = true;
      pthread_cond_broadcast(&f->cond);
    } else if (!f->stop) {
      f->posted = true;
      tc_bridge_post(f->bridge, &f->done);
    }
  }
  pthread_mutex_unlock(&f->lock);
  return NULL;
}

static void destroy(tc_oidc_fetcher_t *f) {
  tc_oidc_keys_free(f->keys);
  free(f->err);
  free(f->issuer);
  free(f->jwks_uri);
  pthread_mutex_destroy(&f->lock);
  pthread_cond_destroy(&f->cond);
  free(f);
}

/* Loop thread: the asynchronous fetch's result. */
static void on_done(tc_completion_t *c) {
  tc_oidc_fetcher_t *f = (tc_oidc_fetcher_t *)c;
  f->posted = false; /* the worker waits for the next job: no race on these */
  if (f->stopped) {
    destroy(f);
    return;
  }
  tc_oidc_keys_t *keys = f->keys;
  char *err = f->err;
  f->keys = NULL, f->err = NULL;
  f->cb(f->cb_arg, keys, err);
}

int tc_oidc_fetcher_start(tc_bridge_t *bridge, const char *issuer, tc_oidc_fetched_cb cb, void *arg,
                          tc_oidc_fetcher_t **out) {
  tc_oidc_fetcher_t *f = calloc(1, sizeof *f);
  if (!f || !(f->issuer = strdup(issuer))) return free(f), TC_ENOMEM;
  f->done.run = on_done;
  f->bridge = bridge;
  f->cb = cb;
  f->cb_arg = arg;
  pthread_mutex_init(&f->lock, NULL);
  pthread_cond_init(&f->cond, NULL);
  if (pthread_create(&f->thread, NULL, worker, f) != 0) {
    destroy(f);
    return TC_EINTERNAL;
  }
  *out = f;
  return 0;
}

static void post_job(tc_oidc_fetcher_t *f, int64_t retries, int64_t spacing_ms, bool sync) {
  f->job = true;
  f->sync = sync;
  f->sync_done = false;
  f->retries = retries;
  f->spacing_ms = spacing_ms;
  pthread_cond_broadcast(&f->cond);
}

void tc_oidc_fetcher_request(tc_oidc_fetcher_t *f, int64_t retries, int64_t spacing_ms) {
  pthread_mutex_lock(&f->lock);
  post_job(f, retries, spacing_ms, false);
  pthread_mutex_unlock(&f->lock);
}

int tc_oidc_fetcher_fetch_now(tc_oidc_fetcher_t *f, int64_t retries, int64_t spacing_ms,
                              tc_oidc_keys_t **keys, char **err) {
  pthread_mutex_lock(&f->lock);
  post_job(f, retries, spacing_ms, true);
  while (!f->sync_done) pthread_cond_wait(&f->cond, &f->lock);
  f->sync = false;
  *keys = f->keys;
  *err = f->err;
  f->keys = NULL, f->err = NULL;
  pthread_mutex_unlock(&f->lock);
  return *keys ? 0 : TC_EUNAVAILABLE;
}

void tc_oidc_fetcher_stop(tc_oidc_fetcher_t *f) {
  pthread_mutex_lock(&f->lock);
  f->stop = true;
  pthread_cond_broadcast(&f->cond);
  pthread_mutex_unlock(&f->lock);
  pthread_join(f->thread, NULL);
  f->stopped = true;
  if (!f->posted) destroy(f);
}
