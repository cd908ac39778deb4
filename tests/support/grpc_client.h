/* A small blocking gRPC client for tests, on gRPC C core with its own pluck
 * completion queue.  One client per thread; several threads may each use
 * their own client at once.  Each client has its own TCP connection, which
 * all its calls and streams share.
 *
 * Ownership: the caller owns the client and its streams (free every stream
 * before the client), and frees *resp and *msg with
 * protobuf_c_message_free_unpacked() and *details with free().
 */
#ifndef TC_TEST_GRPC_CLIENT_H
#define TC_TEST_GRPC_CLIENT_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct tc_client_s tc_client_t;

/* target: "127.0.0.1:PORT"; insecure.  NULL on failure. */
tc_client_t *tc_client_new(const char *target);
/* The same with a small receive window that does not grow (16 KiB per
 * stream, no BDP probing), so a stream the caller stops reading backs up to
 * the server within a few messages: a slow consumer. */
tc_client_t *tc_client_new_small_window(const char *target);
/* The same over TLS, trusting only the CA certificates in root_pem (PEM
 * text); the server's certificate must name the target's host. */
tc_client_t *tc_client_new_tls(const char *target, const char *root_pem);
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

/* Server streaming.  Any number of streams may be open on one client, all
 * used from the client's thread. */
typedef struct tc_stream_s tc_stream_t;

/* Starts a server-streaming call with request req; authorization may be NULL;
 * deadline_ms 0 means none.  NULL on failure.  With req NULL only the
 * call's headers are sent: the server has the call but no request until
 * the caller sends them (a request sent late, or a bidirectional call). */
tc_stream_t *tc_client_stream_open(tc_client_t *c, const char *method, const ProtobufCMessage *req,
                                   const char *authorization, int deadline_ms);
/* On a stream opened without req: sends one message of len raw bytes (the
 * previous send is waited for first); last also ends the client's side.
 * tc_stream_send_request sends req packed, as the last.  0, or -1. */
int tc_stream_send_raw(tc_stream_t *s, const void *buf, size_t len, int last);
int tc_stream_send_request(tc_stream_t *s, const ProtobufCMessage *req);

/* The next message: 0 with *msg set; 1 once the stream has ended (then
 * tc_stream_status() has the status); -1 if nothing came within timeout_ms,
 * after which calling again waits on for the same message.  A message that
 * does not decode as desc cancels the stream with INTERNAL. */
int tc_stream_next(tc_stream_t *s, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg,
                   int timeout_ms);

/* Once tc_stream_next() returned 1: the gRPC status code, and *details (may be
 * NULL) the status message, owned by the stream.  -1 before. */
int tc_stream_status(tc_stream_t *s, const char **details);

/* Cancels the call from the client side; the stream then ends with CANCELLED. */
void tc_stream_cancel(tc_stream_t *s);

/* Cancels the call if it is still open, waits for its batches and frees it. */
void tc_stream_free(tc_stream_t *s);

#endif
