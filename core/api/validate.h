/* Request validation: Permify's protoc-gen-validate (PGV) rules in C.
 *
 * Permify's gRPC validator interceptor runs the PGV Validate() of every
 * request before anything else (rate limit, auth) and fails the call with
 * InvalidArgument and the PGV error text.  This reproduces those rules and
 * texts for the Data, Schema, Tenancy and Watch request messages; messages
 * without rules pass.
 *
 * Every string is also checked, with its real length, for valid UTF-8 (which
 * Go's protobuf decoder enforces while decoding) and for NUL bytes (which C
 * strings would cut): by the decoders, before unpacking, with the functions
 * at the end of this header, so the rules see only strings that passed.
 *
 * Ownership: every *errmsg is malloc'd for the caller, who frees it.
 */
#ifndef TC_VALIDATE_H
#define TC_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Checks req (any base.v1 request message of the Data, Schema, Tenancy and
 * Watch services) against Permify's PGV rules: first error only, fields in
 * declaration order, nested messages recursively.  Returns 0, or
 * TC_EVALIDATION and a malloc'd *errmsg with the exact PGV text, e.g.
 * "invalid DataWriteRequest.Tuples[0]: embedded message failed validation | caused by: invalid Tuple.Entity: embedded message failed validation | caused by: invalid Entity.Type: value does not match regex pattern \"^[a-zA-Z_]{1,64}$\""
 * Strings are taken as the decoders left them: UTF-8 and NUL bytes are
 * tc_validate_wire's and tc_validate_string's.  TC_ENOMEM (and *errmsg NULL) if a message cannot be allocated. */
int tc_validate_request(const ProtobufCMessage *req, char **errmsg);

/* ---- Strings with their real length ----
 *
 * protobuf-c and our C strings end at the first NUL byte, so a value like
 * "t1\0evil" would silently become "t1".  The decoders therefore look at the
 * bytes as they arrived (gRPC wire bytes, a percent-decoded HTTP path
 * parameter, a JSON string) and refuse a NUL here, before anything is cut. */

/* Deepest message nesting tc_validate_wire walks; deeper is refused (as the
 * JSON decoder refuses it). */
#define TC_VALIDATE_MAX_DEPTH 100

/* One step of the way from the request to a field: the message, its field,
 * and the item index for a repeated field (else -1). */
typedef struct tc_field_step_s {
  const ProtobufCMessageDescriptor *msg;
  const ProtobufCFieldDescriptor *field;
  long item;
} tc_field_step_t;

/* The answer for the string field at path[0..depth) (depth >= 1, path[0] in
 * the request message) whose value s[0..len) holds a NUL byte: the field's
 * Permify rule applied to the real bytes when it fails (length, pattern: a
 * NUL matches none of Permify's anchored patterns), else "value must not
 * contain a NUL byte"; wrapped per level as PGV wraps embedded messages, e.g.
 * "invalid TenantDeleteRequest.Id: value must not contain a NUL byte".
 * Returns TC_EVALIDATION with a malloc'd *errmsg, or TC_ENOMEM. */
int tc_validate_nul(const tc_field_step_t *path, size_t depth, const char *s, size_t len,
                    char **errmsg);

/* A decoder's string field at path[0..depth) with value s[0..len): 0 when it
 * is valid UTF-8 without a NUL byte; invalid UTF-8 is TC_EVALIDATION with Go's
 * decoder text, e.g. "proto: field base.v1.Entity.id contains invalid UTF-8";
 * a NUL gets tc_validate_nul()'s answer.  One pass; a malloc'd *errmsg. */
int tc_validate_string(const tc_field_step_t *path, size_t depth, const char *s, size_t len,
                       char **errmsg);

/* One linear pass over a packed message of type desc before protobuf-c
 * unpacks it: every string field, in every nested message, is checked with
 * its real length.  Invalid UTF-8 anywhere fails first (Go's decoder text, as
 * tc_validate_string); else the first string holding a NUL gets
 * tc_validate_nul()'s answer; nesting deeper than TC_VALIDATE_MAX_DEPTH is
 * TC_EINVAL.  Bytes that do not parse end the scan with 0: protobuf-c refuses
 * them.  Returns 0, or the code and a malloc'd *errmsg. */
int tc_validate_wire(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                     char **errmsg);

#endif
