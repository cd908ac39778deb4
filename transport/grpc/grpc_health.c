/* grpc.health.v1.Health/Check, answered by the transport itself (never
 * reaches the core, so it needs no authorization).  Health/Watch is not
 * listed and so answers UNIMPLEMENTED like any unknown method.
 *
 * Per service name: "" and every service of the method table (base.v1.*)
 * are readiness, NOT_SERVING while the database does not answer
 * (tc_server_ready); "liveness" and the services the transport answers
 * itself (health, reflection) are SERVING while the process serves at all;
 * any other name is NOT_FOUND, as the health protocol asks. */
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "grpc_internal.h"
#include "server.h"

/* The service name the health protocol uses for the process itself. */
#define LIVENESS "liveness"

/* 1 when name is the service part of path ("/base.v1.Data/Write"). */
static int names_service(const char *path, const char *name) {
  size_t n = strlen(name);
  return path[0] == '/' && strncmp(path + 1, name, n) == 0 && path[1 + n] == '/';
}

/* 1 readiness, 0 liveness, -1 unknown. */
static int kind_of(const char *service) {
  if (!*service) return 1;
  for (size_t i = 0; tc_method_at(i); i++)
    if (names_service(tc_method_at(i)->path, service)) return 1;
  if (strcmp(service, LIVENESS) == 0 || strcmp(service, "grpc.health.v1.Health") == 0 ||
      strcmp(service, "grpc.reflection.v1.ServerReflection") == 0 ||
      strcmp(service, "grpc.reflection.v1alpha.ServerReflection") == 0)
    return 0;
  return -1;
}

/* Answers within the handler: the transport's done() only starts a batch and
 * tolerates being called during dispatch, unlike what core handlers may
 * assume of each other. */
static int check(tc_call_t *call) {
  const Grpc__Health__V1__HealthCheckRequest *req = (const void *)call->request;
  int kind = kind_of(req->service ? req->service : "");
  if (kind < 0) return tc_call_error(call, TC_ENOTFOUND, "unknown service %s", req->service);
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = kind == 0 || tc_server_ready(call->server)
                    ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                    : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
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
