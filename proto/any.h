/* google.protobuf.Any for protobuf-c, which has no Any support of its own:
 * packing a message into an Any, and a registry of every base.v1 message so
 * an Any can be unpacked by its type URL.
 *
 * Ownership: tc_any_pack() fills an Any with malloc'd fields that the caller
 * frees with tc_any_clear() (or with protobuf_c_message_free_unpacked(NULL
 * allocator) on an enclosing message); tc_any_unpack() returns a message the
 * caller frees with protobuf_c_message_free_unpacked(msg, NULL).
 */
#ifndef TC_PROTO_ANY_H
#define TC_PROTO_ANY_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/any.pb-c.h"

/* Sets out->type_url to "type.googleapis.com/<full name>" and out->value to
 * the packed message.  out must be initialised; on failure it is untouched.
 * Returns 0 or TC_ENOMEM. */
int tc_any_pack(const ProtobufCMessage *msg, Google__Protobuf__Any *out);

/* Frees what tc_any_pack() put in any and re-initialises it. */
void tc_any_clear(Google__Protobuf__Any *any);

/* The descriptor named by the part of type_url after its last '/' (all of it
 * if there is none), or NULL if that is not a registered message. */
const ProtobufCMessageDescriptor *tc_any_lookup(const char *type_url);

/* The message inside any, or NULL if its type is not registered or its value
 * does not decode as that type. */
ProtobufCMessage *tc_any_unpack(const Google__Protobuf__Any *any);

/* The registry: every message of package base.v1 (map entries excepted), in
 * no particular order.  Sets *n to its length. */
const ProtobufCMessageDescriptor *const *tc_proto_messages(size_t *n);

#endif
