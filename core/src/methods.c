/* The table of RPCs: every method of the services we declare, with the
 * handler that serves it.  A NULL handler is answered UNIMPLEMENTED by the
 * gate, once the call is admitted. */
#include <string.h>
#include <uv.h>

#include "base/v1/service.pb-c.h"
#include "call.h"
#include "gate.h"
#include "metrics_record.h"
#include "service.h"
#include "watch.h"

/* clang-format off */
#define M(svc, name, in, out, fn, streaming) \
  {"/base.v1." svc "/" name, &base__v1__##in##__descriptor, &base__v1__##out##__descriptor, fn, \
   streaming, 0, 0}
/* clang-format on */

static const tc_method_t methods[] = {
    M("Data", "Write", data_write_request, data_write_response, tc_data_write, 0),
    M("Data", "WriteRelationships", relationship_write_request, relationship_write_response,
      tc_data_write_relationships, 0),
    M("Data", "ReadRelationships", relationship_read_request, relationship_read_response,
      tc_data_read_relationships, 0),
    M("Data", "ReadAttributes", attribute_read_request, attribute_read_response,
      tc_data_read_attributes, 0),
    M("Data", "Delete", data_delete_request, data_delete_response, tc_data_delete, 0),
    M("Data", "DeleteRelationships", relationship_delete_request, relationship_delete_response,
      tc_data_delete_relationships, 0),
    M("Data", "RunBundle", bundle_run_request, bundle_run_response, tc_data_run_bundle, 0),
    M("Watch", "Watch", watch_request, watch_response, tc_watch_rpc, 1),
    M("Schema", "Write", schema_write_request, schema_write_response, tc_schema_write_rpc, 0),
    M("Schema", "PartialWrite", schema_partial_write_request, schema_partial_write_response,
      tc_schema_partial_write_rpc, 0),
    M("Schema", "Read", schema_read_request, schema_read_response, tc_schema_read_rpc, 0),
    M("Schema", "List", schema_list_request, schema_list_response, tc_schema_list_rpc, 0),
    M("Bundle", "Write", bundle_write_request, bundle_write_response, tc_bundle_write_rpc, 0),
    M("Bundle", "Read", bundle_read_request, bundle_read_response, tc_bundle_read_rpc, 0),
    M("Bundle", "Delete", bundle_delete_request, bundle_delete_response, tc_bundle_delete_rpc, 0),
    M("Tenancy", "Create", tenant_create_request, tenant_create_response, tc_tenancy_create, 0),
    M("Tenancy", "Delete", tenant_delete_request, tenant_delete_response, tc_tenancy_delete, 0),
    M("Tenancy", "List", tenant_list_request, tenant_list_response, tc_tenancy_list, 0),
};

const tc_method_t *tc_method_find(const char *path) {
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (strcmp(methods[i].path, path) == 0) return &methods[i];
  return NULL;
}

int tc__call_handle(tc_call_t *call) {
  const tc_method_t *m = call->method;
  if (!m->handler)
    return tc_call_error(call, TC_EUNIMPLEMENTED, "method %s not implemented", m->path);
  return m->handler(call);
}

int tc__method_index(const tc_method_t *m) {
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (m == &methods[i]) return (int)i;
  return -1;
}

int tc_call_start(tc_call_t *call) {
  call->started_ns = uv_hrtime();
  if (call->method->admit || tc__method_index(call->method) >= 0) return tc_gate_admit(call);
  return tc__call_handle(call);
}

const tc_method_t *tc_method_at(size_t i) {
  return i < sizeof methods / sizeof methods[0] ? &methods[i] : NULL;
}
