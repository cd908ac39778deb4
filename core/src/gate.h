/* The admission gate: what every RPC of the method table passes before its
 * handler runs, in Permify's interceptor order - request validation, the
 * global rate limit, authentication - so the transports call one function
 * and know none of these.  gRPC health and HTTP /healthz are answered by the
 * transports and never come here.
 *
 * Threading: loop thread only (the bucket is plain state, no lock).
 *
 * Ownership: the server owns the tc_gate_t (tc_gate_open / tc_gate_close)
 * and through it the authenticator.  tc_gate_admit borrows the call on the
 * handler's terms: the transport keeps it until done().
 */
#ifndef TC_GATE_H
#define TC_GATE_H

#include <stdint.h>

#include "authn.h"
#include "call.h"

typedef struct tc_gate_s tc_gate_t;

/* rate: server.rate_limit (>= 1).  authn: NULL when authentication is off;
 * the gate takes it over and closes it in tc_gate_close. */
int tc_gate_open(int64_t rate, tc_authn_t *authn, tc_gate_t **out);

/* Closes the authenticator (pending verifies end with TC_ECANCELLED). */
void tc_gate_close(tc_gate_t *g);

/* In place of call->method->handler(call), on the same contract: returns a
 * negative TC_E* code at once after tc_call_error(), or 0 and call->done is
 * called exactly once later (also when the client leaves while the
 * authenticator is still deciding). */
int tc_gate_admit(tc_call_t *call);

/* What runs a call once admitted (methods.c): the method's handler, or
 * UNIMPLEMENTED for a method declared without one. */
int tc__call_handle(tc_call_t *call);

/* The token bucket alone, for tests: rate tokens of capacity, one more every
 * 1 s / rate on a grid from `start_ns`.  Returns 1 if a token was taken. */
typedef struct tc_bucket_s {
  int64_t capacity, tokens, interval_ns, start_ns, tick;
} tc_bucket_t;
void tc_bucket_init(tc_bucket_t *b, int64_t rate, uint64_t now_ns);
int tc_bucket_take(tc_bucket_t *b, uint64_t now_ns);

#endif
