/* grpc.health.v1.Health/Check, answered by the transport itself (never
 * reaches the core, so it needs no authorization).  Health/Watch is not
 * listed and so answers UNIMPLEMENTED like any unknown method. */
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "grpc_internal.h"

/* Answers within the handler: the transport's done() only starts a batch and
 * tolerates being called during dispatch, unlike what core handlers may
 * assume of each other. */
static int check(tc_call_t *call) {
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  call->done(call, 0, NULL, &resp.base);
  return 0;
}

static const tc_method_t health_check = {
    .path = "/grpc.health.v1.Health/Check",
    .input = &grpc__health__v1__health_check_request__descriptor,
    .output = &grpc__health__v1__health_check_response__descriptor,
    .handler = check,
};

const tc_method_t *tc__grpc_health_find(const char *path) {
  return strcmp(path, health_check.path) == 0 ? &health_check : NULL;
}
