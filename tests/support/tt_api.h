/* Shared helpers of the integration tests: building base.v1 messages and
 * calling the server through the C test client, with cmocka assertions.
 *
 * Ownership: a tt_result_t owns its response and details (tt_result_free);
 * strings returned by tt_write_data/tt_write_schema are malloc'd for the
 * caller; builders fill caller-owned buffers and borrow their strings.
 */
#ifndef TT_API_H
#define TT_API_H

#include <stddef.h>
#include <stdint.h>

#include "any.h"
#include "base/v1/service.pb-c.h"
#include "grpc_client.h"
#include "server_proc.h"

#define TT_TIMEOUT 10000

/* An example schema in Permify's DSL (user, organization, repository). */
extern const char tt_schema_text[];

typedef struct {
  Base__V1__Entity entity;
  Base__V1__Subject subject;
  Base__V1__Tuple tuple;
  char text[256]; /* tt_tuple_spec's copy of the spec, cut into the fields */
} tt_tuple_buf_t;
Base__V1__Tuple *tt_tuple(tt_tuple_buf_t *b, const char *et, const char *eid, const char *rel,
                          const char *st, const char *sid, const char *srel);
/* The same from "type:id#relation@subject_type:subject_id[#subject_relation]". */
Base__V1__Tuple *tt_tuple_spec(tt_tuple_buf_t *b, const char *spec);

typedef struct {
  Base__V1__Entity entity;
  Google__Protobuf__Any any;
  Base__V1__Attribute attr;
} tt_attr_buf_t;
/* The Any is packed with malloc: tc_any_clear(&b->any) when done. */
Base__V1__Attribute *tt_bool_attr(tt_attr_buf_t *b, const char *et, const char *eid,
                                  const char *name, int value);

typedef struct {
  Base__V1__EntityFilter entity;
  Base__V1__TupleFilter tuple;
  char *id;
} tt_filter_buf_t;
/* A filter on entity type and, unless id is NULL, one entity id. */
Base__V1__TupleFilter *tt_entity_filter(tt_filter_buf_t *b, const char *type, const char *id);

/* A Tenancy.Create request for id and name. */
Base__V1__TenantCreateRequest *tt_tenant_create(Base__V1__TenantCreateRequest *b, const char *id,
                                                const char *name);

typedef struct {
  int code;
  char *details;
  ProtobufCMessage *resp;
} tt_result_t;
tt_result_t tt_call(tc_client_t *c, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc);
/* tt_call that fails the test, naming method, unless the call succeeds. */
tt_result_t tt_call_ok(tc_client_t *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *resp_desc);
void tt_result_free(tt_result_t *r);
/* Assert code and exact message (or prefix), then free r. */
void tt_expect_error(tt_result_t r, int code, const char *message);
void tt_expect_error_prefix(tt_result_t r, int code, const char *prefix);

/* Fills a Data.Write request (req and its metadata md, caller-owned) for
 * tenant with the tuples and attributes, all borrowed. */
void tt_data_write_req(Base__V1__DataWriteRequest *req, Base__V1__DataWriteRequestMetadata *md,
                       const char *tenant, Base__V1__Tuple **tuples, size_t nt,
                       Base__V1__Attribute **attrs, size_t na);
/* Data.Write; with out NULL asserts success and returns the snap token,
 * else stores the result in *out and returns NULL. */
char *tt_write_data(tc_client_t *c, const char *tenant, Base__V1__Tuple **tuples, size_t nt,
                    Base__V1__Attribute **attrs, size_t na, tt_result_t *out);
tt_result_t tt_write_one(tc_client_t *c, const char *tenant, Base__V1__Tuple *t);
/* Data.DeleteRelationships of every tuple whose entity is of type; asserts
 * success and returns the snap token (malloc'd). */
char *tt_delete_type(tc_client_t *c, const char *tenant, const char *type);
/* Reads every page (filter NULL = all); returns the number of tuples. */
size_t tt_read_tuples(tc_client_t *c, const char *tenant, const char *snap,
                      Base__V1__TupleFilter *filter, uint32_t page_size);
void tt_write_schema(tc_client_t *c, const char *tenant, char **version);
/* The same with a schema of the caller's. */
void tt_write_schema_text(tc_client_t *c, const char *tenant, const char *text, char **version);
void tt_create_tenant(tc_client_t *c, const char *id);
/* Opens Watch on tenant from token ("" = the head), no filter, no checkpoints. */
tc_stream_t *tt_watch_open(tc_client_t *c, const char *tenant, const char *token);
/* The same with a checkpoint every `seconds` (0: none). */
tc_stream_t *tt_watch_open_checkpoint(tc_client_t *c, const char *tenant, const char *token,
                                      uint32_t seconds);
/* The stream's next Watch message within timeout_ms; fails the test, with
 * the stream's status, if it ends or nothing comes. */
Base__V1__WatchResponse *tt_watch_next(tc_stream_t *s, int timeout_ms);
/* A token ahead of the database (token_forge.h) is INVALID_ARGUMENT "is
 * ahead of this database" for Watch (the stream ends without a message) and
 * for ReadRelationships at it. */
void tt_expect_token_ahead(tc_client_t *c, const char *tenant, const char *far);

/* build/tuplecast on the memory engine, both ports 0, and a client of its
 * gRPC port: a cmocka setup's and teardown's whole work.  Start: 0 or -1;
 * stop: 0 when the server exited 0 (sanitizers make a leak fail it). */
typedef struct {
  tc_proc_t proc;
  tc_client_t *client;
} tt_server_t;
int tt_server_start(tt_server_t *s);
int tt_server_stop(tt_server_t *s);

#endif
