/* What the RPC handlers share: the per-request operation (a tenant job, the
 * call and an arena for the response), finishing a call, and conversions
 * between base.v1 messages and the backend's shapes.
 *
 * Ownership: a tc_op_t is malloc'd by tc_op_new() and freed by tc_op_finish(),
 * which answers the call; everything in its arena goes with it.
 */
#ifndef TC_SERVICE_H
#define TC_SERVICE_H

#include "arena.h"
#include "base/v1/service.pb-c.h"
#include "call.h"
#include "server_state.h"
#include "tenant.h"

typedef struct tc_op_s {
  tc_job_t job; /* first: a job pointer is an op pointer */
  tc_call_t *call;
  tc_server_t *srv;
  tc_arena_t arena;
  char *errmsg; /* message for an error status; NULL = the ErrorCode name */
} tc_op_t;

/* size: of the handler's struct that starts with a tc_op_t.  NULL on OOM. */
tc_op_t *tc_op_new(tc_call_t *call, size_t size);
/* Frees op without answering (a handler's synchronous error path). */
void tc_op_discard(tc_op_t *op);
/* Answers the call (status 0: resp) and frees op. */
void tc_op_finish(tc_op_t *op, int status, const ProtobufCMessage *resp);
/* Sets op->errmsg and finishes with status. */
void tc_op_fail(tc_op_t *op, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers with a message of the method's output type whose only field is
 * snap_token (every write and delete response). token "" is allowed. */
void tc_op_finish_token(tc_op_t *op, int status, const char *token);
/* Submits op's job to the tenant actor; returns 0 or a TC_E* code (op freed). */
int tc_op_submit(tc_op_t *op, const char *tenant_id, tc_job_fn run);

/* NULL filter members become unset ones; strings and arrays are borrowed
 * from the message. */
void tc_tuple_filter_from_proto(const Base__V1__TupleFilter *in, tc_tuple_filter_t *out);
void tc_attr_filter_from_proto(const Base__V1__AttributeFilter *in, tc_attr_filter_t *out);
int tc_tuple_filter_is_empty(const tc_tuple_filter_t *f);
int tc_attr_filter_is_empty(const tc_attr_filter_t *f);
void tc_tuple_from_proto(const Base__V1__Tuple *in, tc_tuple_t *out);
/* Copies into the arena; NULL on OOM. */
Base__V1__Tuple *tc_tuple_to_proto(tc_arena_t *a, const tc_tuple_t *in);
Base__V1__Attribute *tc_attr_to_proto(tc_arena_t *a, const tc_attr_t *in);

/* Checks a snap token from a request with the backend ("" = head is fine).
 * Sync error path: on failure the call's error is set and the code returned. */
int tc_call_snap_token(tc_call_t *call, const char *token);
/* The message for a snap token a backend's read found ahead of its
 * database (TC_ESNAP_TOKEN from a read callback); one %s, the token. */
#define TC_TOKEN_AHEAD_FMT                                                        \
  "snap token %s is ahead of this database: it names a transaction the database " \
  "has not reached; omit it to read at the latest revision"
/* Permify's request validation; on failure sets call->errmsg and returns
 * TC_EVALIDATION (the handler returns it). */
int tc_call_validate(tc_call_t *call);
/* The continuous token of a page cursor, in op's arena; "" when cursor is
 * NULL (no more pages); NULL on out of memory. */
char *tc_op_cont_token(tc_op_t *op, const char *cursor);
/* page_size 0 = the default of 50. */
uint32_t tc_page_size(uint32_t requested);

/* keys: n keys of n_fields strings each.  Fills keep with the index of the
 * first occurrence of every distinct key, in order; returns how many, or
 * (size_t)-1 when out of memory (service_data.c). */
size_t tc__first_occurrences(tc_arena_t *a, const char *const *keys, size_t n, int n_fields,
                             size_t *keep);

/* Bundles (service_bundle.c).  Plugins built against ABI 2.0 have no bundle
 * calls (nor exact deletes): calls_ok says whether this one has; refuse
 * answers UNIMPLEMENTED (sync error path).  unpack: a stored payload as a
 * DataBundle in the arena; NULL if it is not one. */
int tc__bundle_calls_ok(const tc_server_t *srv);
int tc__bundle_calls_refuse(tc_call_t *call);
Base__V1__DataBundle *tc__bundle_unpack(tc_arena_t *a, const uint8_t *payload, size_t len);

/* Handlers (methods.c lists them). */
int tc_data_write(tc_call_t *call);
int tc_data_write_relationships(tc_call_t *call);
int tc_data_read_relationships(tc_call_t *call);
int tc_data_read_attributes(tc_call_t *call);
int tc_data_delete(tc_call_t *call);
int tc_data_delete_relationships(tc_call_t *call);
int tc_schema_write_rpc(tc_call_t *call);
int tc_schema_partial_write_rpc(tc_call_t *call);
int tc_schema_read_rpc(tc_call_t *call);
int tc_schema_list_rpc(tc_call_t *call);
int tc_bundle_write_rpc(tc_call_t *call);
int tc_bundle_read_rpc(tc_call_t *call);
int tc_bundle_delete_rpc(tc_call_t *call);
int tc_data_run_bundle(tc_call_t *call);
int tc_tenancy_create(tc_call_t *call);
int tc_tenancy_delete(tc_call_t *call);
int tc_tenancy_list(tc_call_t *call);

#endif
