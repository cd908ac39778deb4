#include "error.h"

#include <uv.h>

typedef struct {
  int code;
  const char *symbol, *permify;
  int grpc;
} row_t;

static const row_t table[] = {
#define TC_ERR_ROW_(sym, val, name, grpc) {val, "TC_" #sym, name, grpc},
    TC_ERRNO_MAP(TC_ERR_ROW_)
#undef TC_ERR_ROW_
};

static const row_t *find(int code) {
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (table[i].code == code) return &table[i];
  return NULL;
}

const char *tc_err_symbol(int code) {
  if (code == 0) return "TC_OK";
  const row_t *r = find(code);
  if (r) return r->symbol;
  if (code > -1000) return uv_err_name(code);
  return "TC_UNKNOWN";
}

const char *tc_err_code_name(int code) {
  const row_t *r = find(code);
  return r ? r->permify : "ERROR_CODE_INTERNAL";
}

int tc_err_grpc_status(int code) {
  if (code == 0) return 0;
  const row_t *r = find(code);
  return r ? r->grpc : 13;
}

int tc_grpc_status_to_http(int s) {
  static const int map[17] = {200, 499, 500, 400, 504, 404, 409, 403, 429,
                              400, 409, 400, 501, 500, 503, 500, 401};
  return (s >= 0 && s <= 16) ? map[s] : 500;
}

int tc_err_http_status(int code) { return tc_grpc_status_to_http(tc_err_grpc_status(code)); }
