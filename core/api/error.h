/* Lookups over the one error table in tuplecast/errors.h. */
#ifndef TC_ERROR_H
#define TC_ERROR_H

#include "tuplecast/errors.h"

/* "TC_ESCHEMA_NOT_FOUND"; libuv's name for -errno codes; "TC_UNKNOWN". */
const char *tc_err_symbol(int code);
/* Permify ErrorCode name put on the wire, e.g. "ERROR_CODE_SCHEMA_NOT_FOUND". */
const char *tc_err_code_name(int code);
/* gRPC status code (0..16); 0 for code 0, 13 for unknown codes. */
int tc_err_grpc_status(int code);
/* HTTP status: grpc-gateway's mapping of tc_err_grpc_status(code). */
int tc_err_http_status(int code);
int tc_grpc_status_to_http(int grpc_status);

#endif
