/* Permify's REST routes (the grpc-gateway mappings of its service protos:
 * POST with the whole message as the JSON body, except Tenancy.Delete) and
 * rs/cors' rules. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tuplecast/support.h" /* tc_format */
#include "http_internal.h"
#include "tuplecast/errors.h"
#include "validate.h"

#define T "/v1/tenants/{tenant_id}"
static const tc__http_route_t routes[] = {
    {HTTP_POST, T "/data/write", "/base.v1.Data/Write"},
    {HTTP_POST, T "/relationships/write", "/base.v1.Data/WriteRelationships"},
    {HTTP_POST, T "/data/relationships/read", "/base.v1.Data/ReadRelationships"},
    {HTTP_POST, T "/data/attributes/read", "/base.v1.Data/ReadAttributes"},
    {HTTP_POST, T "/data/delete", "/base.v1.Data/Delete"},
    {HTTP_POST, T "/relationships/delete", "/base.v1.Data/DeleteRelationships"},
    {HTTP_POST, T "/data/run-bundle", "/base.v1.Data/RunBundle"},
    {HTTP_POST, T "/watch", "/base.v1.Watch/Watch"},
    {HTTP_POST, T "/schemas/write", "/base.v1.Schema/Write"},
    {HTTP_PATCH, T "/schemas/partial-write", "/base.v1.Schema/PartialWrite"},
    {HTTP_POST, T "/schemas/read", "/base.v1.Schema/Read"},
    {HTTP_POST, T "/schemas/list", "/base.v1.Schema/List"},
    {HTTP_POST, T "/permissions/check", "/base.v1.Permission/Check"},
    {HTTP_POST, T "/permissions/bulk-check", "/base.v1.Permission/BulkCheck"},
    {HTTP_POST, T "/permissions/expand", "/base.v1.Permission/Expand"},
    {HTTP_POST, T "/permissions/lookup-entity", "/base.v1.Permission/LookupEntity"},
    {HTTP_POST, T "/permissions/lookup-entity-stream", "/base.v1.Permission/LookupEntityStream"},
    {HTTP_POST, T "/permissions/lookup-subject", "/base.v1.Permission/LookupSubject"},
    {HTTP_POST, T "/permissions/subject-permission", "/base.v1.Permission/SubjectPermission"},
    {HTTP_POST, T "/bundle/write", "/base.v1.Bundle/Write"},
    {HTTP_POST, T "/bundle/read", "/base.v1.Bundle/Read"},
    {HTTP_POST, T "/bundle/delete", "/base.v1.Bundle/Delete"},
    {HTTP_POST, "/v1/tenants/create", "/base.v1.Tenancy/Create"},
    {HTTP_POST, "/v1/tenants/list", "/base.v1.Tenancy/List"},
    {HTTP_DELETE, "/v1/tenants/{id}", "/base.v1.Tenancy/Delete"},
};
#undef T

const tc__http_route_t *tc__http_route_at(size_t i) {
  return i < sizeof routes / sizeof routes[0] ? &routes[i] : NULL;
}

static int hex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) as grpc-gateway does a path parameter; its
 * length, which may count NUL bytes, in *out_len. */
static int unescape(const char *s, size_t len, char **out, size_t *out_len) {
  char *d = malloc(len + 1);
  if (!d) return TC_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '%') {
      d[n++] = s[i];
      continue;
    }
    int hi = i + 2 < len ? hex((unsigned char)s[i + 1]) : -1;
    int lo = hi >= 0 ? hex((unsigned char)s[i + 2]) : -1;
    if (lo < 0) {
      free(d);
      return 400;
    }
    d[n++] = (char)(hi << 4 | lo);
    i += 2;
  }
  d[n] = '\0';
  *out = d;
  *out_len = n;
  return 0;
}

/* Whether path matches pattern; the one "{name}" segment, if any, is
 * reported by position in path and in pattern. */
static int matches(const char *pattern, const char *path, const char **seg, size_t *seg_len,
                   const char **name, size_t *name_len) {
  *seg = NULL;
  while (*pattern && (*path || *pattern == '{')) {
    if (*pattern == '{') {
      const char *close = strchr(pattern, '}');
      size_t n = strcspn(path, "/"); /* may be 0: grpc-gateway binds "" too */
      *name = pattern + 1;
      *name_len = (size_t)(close - pattern - 1);
      *seg = path;
      *seg_len = n;
      pattern = close + 1;
      path += n;
    } else if (*pattern++ != *path++) {
      return 0;
    }
  }
  return *pattern == '\0' && *path == '\0';
}

int tc__http_route_match(enum http_method method, const char *path, const tc__http_route_t **route,
                         char **param, size_t *param_len, const char **param_name,
                         size_t *param_name_len) {
  int other_method = 0;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    const char *seg;
    size_t seg_len;
    if (!matches(routes[i].pattern, path, &seg, &seg_len, param_name, param_name_len)) continue;
    if (routes[i].method != method) {
      other_method = 1;
      continue;
    }
    *route = &routes[i];
    *param = NULL;
    *param_len = 0;
    return seg ? unescape(seg, seg_len, param, param_len) : 0;
  }
  return other_method ? 501 : 404;
}

/* rs/cors' origin rule: "*", an exact match, or one '*' wildcard; case-insensitive. */
static int origin_allowed(const tc_http_opts_t *o, const char *origin) {
  if (o->n_cors_origins == 0) return 1;
  size_t olen = strlen(origin);
  for (size_t i = 0; i < o->n_cors_origins; i++) {
    const char *a = o->cors_origins[i];
    const char *star = strchr(a, '*');
    if (!star) {
      if (strcasecmp(a, origin) == 0) return 1;
      continue;
    }
    size_t pre = (size_t)(star - a), suf = strlen(star + 1);
    if (olen >= pre + suf && strncasecmp(origin, a, pre) == 0 &&
        strcasecmp(origin + olen - suf, star + 1) == 0)
      return 1;
  }
  return 0;
}

/* Every header of the comma-separated list is allowed ("Origin" always is). */
static int headers_allowed(const tc_http_opts_t *o, const char *list) {
  if (o->n_cors_headers == 0) return 1;
  for (size_t i = 0; i < o->n_cors_headers; i++)
    if (strcmp(o->cors_headers[i], "*") == 0) return 1;
  while (*list) {
    list += strspn(list, " \t,");
    size_t n = strcspn(list, ",");
    while (n && (list[n - 1] == ' ' || list[n - 1] == '\t')) n--;
    if (n == 0) break;
    int ok = n == 6 && strncasecmp(list, "Origin", 6) == 0;
    for (size_t i = 0; !ok && i < o->n_cors_headers; i++)
      ok = strlen(o->cors_headers[i]) == n && strncasecmp(o->cors_headers[i], list, n) == 0;
    if (!ok) return 0;
    list += n;
    list += strcspn(list, ",");
  }
  return 1;
}

static int method_allowed(const char *m) {
  static const char *const allowed[] = {"GET", "POST", "HEAD", "PATCH", "DELETE", "PUT"};
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    if (strcasecmp(m, allowed[i]) == 0) return 1;
  return 0;
}

char *tc__http_cors_headers(const tc_http_opts_t *opts, enum http_method method,
                            const tc__http_cors_req_t *req, int *preflight) {
  *preflight = method == HTTP_OPTIONS && req->req_method;
  if (*preflight) {
    const char *hdrs = req->req_headers ? req->req_headers : "";
    if (!req->origin || !origin_allowed(opts, req->origin) || !method_allowed(req->req_method) ||
        !headers_allowed(opts, hdrs))
      return tc_format(
          "Vary: Origin, Access-Control-Request-Method, "
          "Access-Control-Request-Headers\r\n");
    char *m = strdup(req->req_method);
    if (!m) return NULL;
    for (char *p = m; *p; p++) *p = (char)toupper((unsigned char)*p);
    char *h = tc_format(
        "Vary: Origin, Access-Control-Request-Method, "
        "Access-Control-Request-Headers\r\n"
        "Access-Control-Allow-Origin: %s\r\n"
        "Access-Control-Allow-Methods: %s\r\n"
        "%s%s%s"
        "Access-Control-Allow-Credentials: true\r\n",
        req->origin, m, *hdrs ? "Access-Control-Allow-Headers: " : "", hdrs, *hdrs ? "\r\n" : "");
    free(m);
    return h;
  }
  if (!req->origin) return tc_format("Vary: Origin\r\n");
  if (!origin_allowed(opts, req->origin)) return tc_format("Vary: Origin\r\n");
  return tc_format(
      "Vary: Origin\r\nAccess-Control-Allow-Origin: %s\r\n"
      "Access-Control-Allow-Credentials: true\r\n",
      req->origin);
}

int tc__http_param_set(ProtobufCMessage *msg, const char *name, size_t name_len, char *value,
                       size_t value_len, char **errmsg) {
  char field_name[64];
  *errmsg = NULL;
  const ProtobufCFieldDescriptor *f = NULL;
  if (name_len < sizeof field_name) {
    memcpy(field_name, name, name_len);
    field_name[name_len] = '\0';
    f = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, field_name);
  }
  int rc = 0;
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
    rc = TC_EINVAL;
  else
    rc =
        tc_validate_string(&(tc_field_step_t){msg->descriptor, f, -1}, 1, value, value_len, errmsg);
  if (rc) {
    free(value);
    return rc;
  }
  char **slot = (char **)((char *)msg + f->offset);
  if (*slot && *slot != f->default_value) free(*slot);
  *slot = value;
  return 0;
}
