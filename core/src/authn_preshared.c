/* Preshared keys (authn.method: preshared): `authorization: Bearer <key>`,
 * parsed by tc__authn_bearer as Permify parses it.
 *
 * The comparison leaks neither a key nor its length: the presented key and
 * every configured key are reduced to SHA-256 digests, and the digests are
 * compared with CRYPTO_memcmp against every key, without an early exit.  The
 * time spent depends only on the presented value and the number of keys.
 * Only the digests are kept, so no key is in memory to be logged. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authn.h"
#include "format.h"
#include "tuplecast/errors.h"

#define DIGEST_LEN 32

typedef struct {
  tc_authn_t base;
  size_t n;
  unsigned char (*digests)[DIGEST_LEN];
} preshared_t;

static int digest(const char *data, size_t len, unsigned char out[DIGEST_LEN]) {
  unsigned int n = 0;
  return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == DIGEST_LEN ? 0
                                                                                    : TC_EINTERNAL;
}

static int verify(tc_authn_t *a, const char *header, size_t len, tc_authn_cb cb, void *arg) {
  (void)cb;
  (void)arg;
  preshared_t *p = (preshared_t *)a;
  size_t key_len = 0;
  const char *key = tc__authn_bearer(header, len, &key_len);
  if (!key) return TC_EMISSING_BEARER;
  unsigned char d[DIGEST_LEN];
  if (digest(key, key_len, d) != 0) return TC_EINTERNAL;
  int found = 0;
  for (size_t i = 0; i < p->n; i++) found |= CRYPTO_memcmp(d, p->digests[i], DIGEST_LEN) == 0;
  return found ? 0 : TC_EINVALID_KEY;
}

static void close_preshared(tc_authn_t *a) {
  preshared_t *p = (preshared_t *)a;
  free(p->digests);
  free(p);
}

static const tc_authn_ops_t ops = {.verify = verify, .close = close_preshared};

int tc_authn_preshared_open(const tc_config_t *cfg, tc_authn_t **out, char **errmsg) {
  const tc_config_list_t *keys = &cfg->authn_preshared_keys;
  *out = NULL;
  if (keys->count == 0) {
    *errmsg = tc_format(
        "authn.preshared.keys: at least one key is required when "
        "authn.method is preshared");
    return TC_ECONFIG;
  }
  preshared_t *p = calloc(1, sizeof *p);
  if (p) p->digests = calloc(keys->count, sizeof *p->digests);
  if (!p || !p->digests) {
    if (p) free(p);
    return TC_ENOMEM;
  }
  p->base.ops = &ops;
  p->n = keys->count;
  for (size_t i = 0; i < keys->count; i++)
    if (digest(keys->items[i], strlen(keys->items[i]), p->digests[i]) != 0) {
      close_preshared(&p->base);
      *errmsg = tc_format("authn.preshared.keys: cannot hash a key (OpenSSL)");
      return TC_EINTERNAL;
    }
  *out = &p->base;
  return 0;
}
