/* tc_authn_open: the authenticator authn.method names; the bearer parse
 * every method shares (authn.h). */
#include "authn.h"

#include <string.h>
#include <strings.h>

#include "format.h"
#include "tuplecast/errors.h"

int tc_authn_open(uv_loop_t *loop, tc_bridge_t *bridge, const tc_config_t *cfg, tc_authn_t **out,
                  char **errmsg) {
  *out = NULL;
  *errmsg = NULL;
  if (!cfg->authn_enabled) return 0;
  if (strcmp(cfg->authn_method, "preshared") == 0) return tc_authn_preshared_open(cfg, out, errmsg);
  if (strcmp(cfg->authn_method, "oidc") == 0)
    return tc_authn_oidc_open(loop, bridge, cfg, out, errmsg);
  /* The configuration refuses other methods; this is the last guard. */
  *errmsg = tc_format("authn.method: unknown authentication method '%s'", cfg->authn_method);
  return TC_ECONFIG;
}

const char *tc__authn_bearer(const char *header, size_t len, size_t *token_len) {
  if (!header || len == 0 || memchr(header, '\0', len)) return NULL;
  const char *sp = memchr(header, ' ', len);
  if (!sp || sp - header != 6 || strncasecmp(header, "bearer", 6) != 0) return NULL;
  *token_len = len - 7;
  return sp + 1;
}
