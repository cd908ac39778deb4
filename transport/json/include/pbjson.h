/* proto3 JSON for the HTTP gateway: one codec driven by protobuf-c
 * descriptors, rendering and reading every message as Permify's grpc-gateway
 * does (protojson with UseProtoNames, EmitUnpopulated and DiscardUnknown).
 *
 * Output: proto field names in declaration order; every field present ("",
 * 0, false, [], {}, null for an unset message); oneofs only the set member;
 * enums as names (numbers if unnamed); 64-bit integers as strings; bytes as
 * padded base64; doubles as shortest round-trip text, "NaN", "Infinity",
 * "-Infinity"; maps as objects sorted by key; Timestamp as RFC 3339 UTC with
 * 0/3/6/9 fraction digits; Any as {"@type": url, fields of the packed
 * message...}, {} when empty.
 *
 * Input: a JSON object keyed by proto names (Permify's json_name is the proto
 * name; protobuf-c drops json_name, see tc_json_decode); unknown keys are
 * ignored, null leaves a field unset, enums by name or number (unknown names
 * are discarded like protojson's DiscardUnknown), integers as numbers or
 * strings, bytes as standard or URL-safe base64, padded or not.
 *
 * Ownership: encoders return new memory (free() / json_decref()); decoders
 * return a message freed with protobuf_c_message_free_unpacked(m, NULL) and a
 * malloc'd error message.
 */
#ifndef TC_JSON_PBJSON_H
#define TC_JSON_PBJSON_H

#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* Deepest message nesting either direction handles; deeper is an error. */
#define TC_JSON_MAX_DEPTH 100

/* msg as compact JSON text (NUL-terminated).  NULL on out of memory, or when
 * msg cannot be rendered, as protojson would refuse it too: an Any whose type
 * is not in the tc_any registry or whose bytes do not decode, a Timestamp
 * outside years 1-9999 or with nanos outside [0, 1e9), nesting deeper than
 * TC_JSON_MAX_DEPTH. */
char *tc_json_encode(const ProtobufCMessage *msg);

/* The same as a jansson value (new reference), NULL in the same cases.
 * Doubles are JSON reals; only tc_json_encode() prints them the protojson way
 * (json_dumps() would print %.17g). */
json_t *tc_json_to_value(const ProtobufCMessage *msg);

/* Parses text[0..len) into a new message of desc.  Empty or whitespace-only
 * text is the empty message.  Returns 0, or TC_EINVAL with *out NULL and
 * *errmsg a malloc'd one-line message naming the field path ("tuples[0].
 * entity.id: expected a string, got a number"), or TC_ENOMEM with *errmsg
 * NULL.  errmsg may be NULL. */
int tc_json_decode(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                   ProtobufCMessage **out, char **errmsg);

/* The same over an already parsed value (borrowed), which must be an object. */
int tc_json_from_value(const ProtobufCMessageDescriptor *desc, const json_t *value,
                       ProtobufCMessage **out, char **errmsg);

#endif
