/* protobuf-c messages to and from gRPC byte buffers: the one copy shared by
 * the server transport, the test client and the bench client.
 *
 * Ownership: packed slices and byte buffers belong to the caller (unref /
 * grpc_byte_buffer_destroy); an unpacked message too
 * (protobuf_c_message_free_unpacked(m, NULL)).  Inputs are borrowed.
 */
#ifndef TC_GRPC_CODEC_H
#define TC_GRPC_CODEC_H

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <protobuf-c/protobuf-c.h>

grpc_slice tc_grpc_pack_slice(const ProtobufCMessage *msg);
grpc_byte_buffer *tc_grpc_pack(const ProtobufCMessage *msg);
/* NULL when bb is NULL or does not decode as desc. */
ProtobufCMessage *tc_grpc_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb);

#endif
