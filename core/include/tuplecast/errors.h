/* tuplecast error codes: the one table.
 *
 * Every function that can fail returns int: 0 on success, a negative TC_E*
 * code on failure.  Each row names the Permify ErrorCode whose name is put on
 * the wire as the status message, and the gRPC status code; the HTTP status
 * follows from the gRPC status (grpc-gateway's mapping, tc_err_http_status()).
 *
 * Authentication failures are UNAUTHENTICATED (16) even where Permify
 * answers UNKNOWN (2): its preshared and OIDC authenticators return plain
 * errors for a missing header and for OIDC's codes; README "Differences from
 * Permify" documents it.  ERATE_LIMITED's message is always the limiter's
 * text (Permify has no ErrorCode for it).
 *
 * Part of the plugin ABI: backends return these codes.  Rows are append-only;
 * a value is never reused.
 */
#ifndef TUPLECAST_ERRORS_H
#define TUPLECAST_ERRORS_H

/* X(symbol, value, Permify ErrorCode name, gRPC status) */
/* clang-format off */
#define TC_ERRNO_MAP(X)                                                        \
  X(EINTERNAL,             -1000, "ERROR_CODE_INTERNAL",                   13) \
  X(ENOMEM,                -1001, "ERROR_CODE_INTERNAL",                   13) \
  X(EINVAL,                -1002, "ERROR_CODE_INVALID_ARGUMENT",            3) \
  X(EVALIDATION,           -1003, "ERROR_CODE_VALIDATION",                  3) \
  X(ENOTFOUND,             -1004, "ERROR_CODE_NOT_FOUND",                   5) \
  X(ETENANT_NOT_FOUND,     -1005, "ERROR_CODE_TENANT_NOT_FOUND",            5) \
  X(ESCHEMA_NOT_FOUND,     -1006, "ERROR_CODE_SCHEMA_NOT_FOUND",            5) \
  X(EENTITY_DEF_NOT_FOUND, -1007, "ERROR_CODE_ENTITY_DEFINITION_NOT_FOUND", 5) \
  X(ERELATION_DEF_NOT_FOUND, -1008, "ERROR_CODE_RELATION_DEFINITION_NOT_FOUND", 5) \
  X(ESUBJECT_TYPE_NOT_FOUND, -1009, "ERROR_CODE_SUBJECT_TYPE_NOT_FOUND",    5) \
  X(EENTITY_EQ_SUBJECT,    -1010, "ERROR_CODE_ENTITY_AND_SUBJECT_CANNOT_BE_EQUAL", 3) \
  X(EATTR_DEF_NOT_FOUND,   -1011, "ERROR_CODE_ATTRIBUTE_DEFINITION_NOT_FOUND", 5) \
  X(EATTR_TYPE_MISMATCH,   -1012, "ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH",     5) \
  X(EMAX_DATA_PER_WRITE,   -1013, "ERROR_CODE_MAX_DATA_PER_WRITE_EXCEEDED", 3) \
  X(EUNIQUE,               -1014, "ERROR_CODE_UNIQUE_CONSTRAINT",           3) \
  X(ECONT_TOKEN,           -1015, "ERROR_CODE_INVALID_CONTINUOUS_TOKEN",    3) \
  X(ESNAP_TOKEN,           -1016, "ERROR_CODE_INVALID_ARGUMENT",            3) \
  X(ESCHEMA_PARSE,         -1017, "ERROR_CODE_SCHEMA_PARSE",               13) \
  X(ESCHEMA_COMPILE,       -1018, "ERROR_CODE_SCHEMA_COMPILE",             13) \
  X(EDATASTORE,            -1019, "ERROR_CODE_DATASTORE",                  13) \
  X(ECANCELLED,            -1020, "ERROR_CODE_CANCELLED",                   1) \
  X(EUNIMPLEMENTED,        -1021, "ERROR_CODE_NOT_IMPLEMENTED",            12) \
  X(EUNAVAILABLE,          -1022, "ERROR_CODE_INTERNAL",                   14) \
  X(EOUT_OF_RANGE,         -1023, "ERROR_CODE_INVALID_ARGUMENT",           11) \
  X(EEXHAUSTED,            -1024, "ERROR_CODE_INTERNAL",                    8) \
  X(EPRECONDITION,         -1025, "ERROR_CODE_VALIDATION",                  9) \
  X(EMISSING_BEARER,       -1026, "ERROR_CODE_MISSING_BEARER_TOKEN",       16) \
  X(EINVALID_KEY,          -1027, "ERROR_CODE_INVALID_KEY",                16) \
  X(ETOO_LARGE,            -1028, "ERROR_CODE_INVALID_ARGUMENT",            8) \
  X(ECONFIG,               -1029, "ERROR_CODE_VALIDATION",                  3) \
  X(EPLUGIN,               -1030, "ERROR_CODE_INTERNAL",                   13) \
  X(ECONFLICT,             -1031, "ERROR_CODE_SERIALIZATION",              10) \
  X(EINVALID_BEARER,       -1032, "ERROR_CODE_INVALID_BEARER_TOKEN",       16) \
  X(EINVALID_ISSUER,       -1033, "ERROR_CODE_INVALID_ISSUER",             16) \
  X(EINVALID_AUDIENCE,     -1034, "ERROR_CODE_INVALID_AUDIENCE",           16) \
  X(EINVALID_CLAIMS,       -1035, "ERROR_CODE_INVALID_CLAIMS",             16) \
  X(ERATE_LIMITED,         -1036, "ERROR_CODE_INTERNAL",                    8) \
  X(EOUTCOME_UNKNOWN,      -1037, "ERROR_CODE_INTERNAL",                   14) \
  X(EENTITY_STMT_NOT_FOUND, -1038, "ERROR_CODE_ENTITY_STATEMENT_NOT_FOUND", 5) \
  X(EREFERENCE_NOT_FOUND,  -1039, "ERROR_CODE_REFERENCE_NOT_FOUND",        5) \
  X(EALREADY_EXISTS,       -1040, "ERROR_CODE_ALREADY_EXIST",              3) \
  X(ENOT_ENTITY_STMT,      -1041, "ERROR_CODE_CANNOT_CONVERT_TO_ENTITY_STATEMENT", 13) \
  X(EBUNDLE_NOT_FOUND,     -1042, "ERROR_CODE_BUNDLE_NOT_FOUND",            5) \
  X(EMISSING_ARGUMENT,     -1043, "ERROR_CODE_MISSING_ARGUMENT",            3)
/* clang-format on */

enum tc_errno {
#define TC_ERR_ENUM_(sym, val, code, grpc) TC_##sym = (val),
  TC_ERRNO_MAP(TC_ERR_ENUM_)
#undef TC_ERR_ENUM_
      TC_OK = 0
};

#endif
