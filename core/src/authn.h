/* Authentication of a call's bearer credential: the interface every method
 * (preshared keys, OIDC) implements, so the admission gate in front of the
 * handlers knows none of them.
 *
 * Threading: every function here is called on the loop thread, and every
 * callback runs there, on a later loop turn than the call that registered it.
 * An implementation that does I/O (OIDC fetching its issuer's keys) does it on
 * threads of its own and reaches the loop through the server's bridge.
 *
 * Ownership: the server owns the tc_authn_t (made by tc_authn_open, freed by
 * close()).  verify() borrows the credential only for the duration of the
 * call; the implementation copies what it needs to keep.
 */
#ifndef TC_AUTHN_H
#define TC_AUTHN_H

#include <stddef.h>

#include <uv.h>

#include "bridge.h"
#include "config.h"

typedef struct tc_authn_s tc_authn_t;

/* verify() returns this when the answer comes later, through the callback. */
#define TC_AUTHN_PENDING 1

/* rc: 0 (allowed) or a negative TC_E* code naming why not. */
typedef void (*tc_authn_cb)(void *arg, int rc);

typedef struct tc_authn_ops_s {
  /* header: the whole "authorization" value as received (NULL when absent),
   * len its real length (it may hold NUL bytes: refuse those).  Returns 0
   * (allowed), a negative TC_E* code (refused), or TC_AUTHN_PENDING, in which
   * case cb(arg, rc) is called exactly once on a later loop turn. */
  int (*verify)(tc_authn_t *a, const char *header, size_t len, tc_authn_cb cb, void *arg);
  /* Stops timers and threads; pending verifies still get their callback
   * (with TC_ECANCELLED) before the object is freed. */
  void (*close)(tc_authn_t *a);
} tc_authn_ops_t;

struct tc_authn_s {
  const tc_authn_ops_t *ops;
};

/* Builds the authenticator that cfg asks for: *out is NULL when
 * authn.enabled is false.  On failure returns a TC_E* code and a malloc'd
 * one-line *errmsg naming the key at fault. */
int tc_authn_open(uv_loop_t *loop, tc_bridge_t *bridge, const tc_config_t *cfg, tc_authn_t **out,
                  char **errmsg);

/* The token of an "authorization" value header[0..len), parsed as Permify's
 * header parser does: "<scheme> <token>" split on the first space, scheme
 * Bearer in any case, the rest the token (spaces included).  NULL when the
 * value is missing, malformed or holds a NUL byte; else *token_len is set.
 * The methods' verify() start here. */
const char *tc__authn_bearer(const char *header, size_t len, size_t *token_len);

/* The methods tc_authn_open chooses between. */
int tc_authn_preshared_open(const tc_config_t *cfg, tc_authn_t **out, char **errmsg);
int tc_authn_oidc_open(uv_loop_t *loop, tc_bridge_t *bridge, const tc_config_t *cfg,
                       tc_authn_t **out, char **errmsg);

#endif
