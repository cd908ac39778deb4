/* protobuf-c messages to and from gRPC byte buffers: the one copy shared by
 * the server transport, the test client and the bench client.
 *
 * Ownership: packed slices and byte buffers belong to the caller (unref /
 * grpc_byte_buffer_destroy); an unpacked message too
 * (protobuf_c_message_free_unpacked(m, NULL)).  Inputs are borrowed.
 */
#ifndef TC_GRPC_CODEC_H
#define TC_GRPC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <protobuf-c/protobuf-c.h>

grpc_slice tc_grpc_pack_slice(const ProtobufCMessage *msg);
grpc_byte_buffer *tc_grpc_pack(const ProtobufCMessage *msg);
/* NULL when bb is NULL or does not decode as desc. */
ProtobufCMessage *tc_grpc_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb);

/* Looks at the packed bytes before they are unpacked (the server passes
 * tc_validate_wire, which sees strings with their real length).  Returns 0,
 * or a negative TC_E* code with a malloc'd *errmsg. */
typedef int (*tc_grpc_check_fn)(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                                size_t len, char **errmsg);

/* tc_grpc_unpack after check (may be NULL) passed the bytes.  check's code
 * (and its *errmsg) when it fails, *out NULL; else 0 with *out the message,
 * NULL when bb is NULL or does not decode.  *errmsg is the caller's to free. */
int tc_grpc_unpack_checked(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb,
                           tc_grpc_check_fn check, ProtobufCMessage **out, char **errmsg);

#endif
