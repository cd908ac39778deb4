/* Shared by the HTTP transport's files: the route table, path parameters and
 * CORS rules (http_route.c), used by the connection and call code
 * (http_server.c).
 *
 * Ownership: matched routes point into a static table; parameters and header
 * values are malloc'd for the caller.
 */
#ifndef TC_HTTP_INTERNAL_H
#define TC_HTTP_INTERNAL_H

#include <stddef.h>

#include <http_parser.h>
#include <protobuf-c/protobuf-c.h>

#include "http_server.h"

typedef struct tc__http_route_s {
  enum http_method method;
  const char *pattern; /* "/v1/tenants/{tenant_id}/data/write" */
  const char *rpc;     /* "/base.v1.Data/Write" */
} tc__http_route_t;

/* The route for method and path.  0 and *route set on a match, with *param
 * (malloc'd, percent-decoded; NULL when the pattern has none; its length,
 * NUL bytes included, in *param_len) and *param_name
 * (borrowed from the pattern, its length in *param_name_len); 501 when a route
 * has the path but another method; 404 when none has it; 400 for a
 * parameter that does not decode; TC_ENOMEM. */
int tc__http_route_match(enum http_method method, const char *path,
                         const tc__http_route_t **route, char **param, size_t *param_len,
                         const char **param_name, size_t *param_name_len);

/* The i-th route of the table, NULL past its end (tests walk every route). */
const tc__http_route_t *tc__http_route_at(size_t i);

/* Sets msg's string field named name[0..name_len) to the path parameter
 * value[0..value_len) (owned: stored, or freed on failure).  A value holding a
 * NUL byte or invalid UTF-8 is refused with tc_validate_string()'s answer (code
 * and malloc'd *errmsg); TC_EINVAL (and no *errmsg) when msg has no such
 * string field. */
int tc__http_param_set(ProtobufCMessage *msg, const char *name, size_t name_len, char *value,
                       size_t value_len, char **errmsg);

/* The request headers CORS looks at (NULL when absent). */
typedef struct tc__http_cors_req_s {
  const char *origin, *req_method, *req_headers;
} tc__http_cors_req_t;

/* rs/cors: the header lines ("Name: value\r\n"...) to add to the response,
 * malloc'd ("" when none).  *preflight is set when the request is a preflight
 * (OPTIONS with Access-Control-Request-Method), answered 204 with these. */
char *tc__http_cors_headers(const tc_http_opts_t *opts, enum http_method method,
                            const tc__http_cors_req_t *req, int *preflight);

#endif
