/* A small blocking gRPC client for tests, on gRPC C core with its own pluck
 * completion queue.  One client per thread; several threads may each use
 * their own client at once.  Each client has its own TCP connection.
 *
 * Ownership: the caller owns the client, and frees *resp with
 * protobuf_c_message_free_unpacked() and *details with free().
 */
#ifndef TC_TEST_GRPC_CLIENT_H
#define TC_TEST_GRPC_CLIENT_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct tc_client_s tc_client_t;

/* target: "127.0.0.1:PORT"; insecure.  NULL on failure. */
tc_client_t *tc_client_new(const char *target);
void tc_client_free(tc_client_t *c);

/* Unary call with a deadline of timeout_ms.  req is packed with protobuf-c;
 * on status 0 the response is unpacked with resp_desc into *resp (NULL
 * otherwise).  authorization may be NULL.  Returns the gRPC status code;
 * details (may be NULL) gets a malloc'd copy of the status message. */
int tc_client_unary(tc_client_t *c, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                    char **details, const char *authorization, int timeout_ms);

/* The same with raw request bytes, for malformed or over-size requests. */
int tc_client_unary_raw(tc_client_t *c, const char *method, const void *buf, size_t len,
                        const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                        char **details, int timeout_ms);

#endif
