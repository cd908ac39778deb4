/* Request validation: Permify's protoc-gen-validate (PGV) rules in C.
 *
 * Permify's gRPC validator interceptor runs the PGV Validate() of every
 * request before anything else (rate limit, auth) and fails the call with
 * InvalidArgument and the PGV error text.  This reproduces those rules and
 * texts for the Data, Schema, Tenancy and Watch request messages; messages
 * without rules pass.  Before the rules, every string field is checked for
 * valid UTF-8, which Go's protobuf decoder enforces while decoding.
 *
 * Ownership: *errmsg is malloc'd by tc_validate_request; the caller frees it.
 */
#ifndef TC_VALIDATE_H
#define TC_VALIDATE_H

#include <protobuf-c/protobuf-c.h>

/* Checks req (any base.v1 request message of the Data, Schema, Tenancy and
 * Watch services) against Permify's PGV rules: first error only, fields in
 * declaration order, nested messages recursively.  Returns 0, or
 * TC_EVALIDATION and a malloc'd *errmsg with the exact PGV text, e.g.
 * "invalid DataWriteRequest.Tuples[0]: embedded message failed validation | caused by: invalid Tuple.Entity: embedded message failed validation | caused by: invalid Entity.Type: value does not match regex pattern \"^[a-zA-Z_]{1,64}$\""
 * A string that is not valid UTF-8 fails first, anywhere in the message, with
 * Go's decoder text, e.g. "proto: field base.v1.Entity.id contains invalid UTF-8".
 * TC_ENOMEM (and *errmsg NULL) if a message cannot be allocated. */
int tc_validate_request(const ProtobufCMessage *req, char **errmsg);

#endif
