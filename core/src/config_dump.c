/* The effective configuration as one JSON object, secrets masked: the
 * start-up log line shows it. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"
#include "log.h"

#define MASK "***"

/* Copies n bytes of s, then MASK; returns the end of the copy. */
static char *copy_masked(char *out, const char *s, size_t n) {
  memcpy(out, s, n);
  memcpy(out + n, MASK, sizeof MASK - 1);
  return out + n + sizeof MASK - 1;
}

/* The URI's userinfo password ("postgres://u:***@h/db") and every
 * password=VALUE (a conninfo "password=x" or a query "?password=x") masked. */
static char *mask_uri(const char *uri) {
  char *out = malloc(strlen(uri) * 2 + sizeof MASK * 2), *o = out;
  if (!out) return NULL;
  const char *s = uri, *scheme = strstr(uri, "://");
  if (scheme) {
    const char *auth = scheme + 3, *end = auth + strcspn(auth, "/?#"), *at = NULL;
    for (const char *p = auth; p < end; p++)
      if (*p == '@') at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
      o = copy_masked(o, uri, (size_t)(colon + 1 - uri));
      s = at;
    }
  }
  while (*s) {
    const char *p = strstr(s, "password=");
    if (!p) break;
    o = copy_masked(o, s, (size_t)(p + 9 - s));
    s = p + 9;
    if (*s == '\'') /* conninfo's quoted value, \' inside */
      for (s++; *s && *s != '\''; s++) s += s[0] == '\\' && s[1];
    s += strcspn(s, " &");
  }
  strcpy(o, s);
  return out;
}

static json_t *list_json(const tc_config_list_t *l, int masked) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < l->count; i++)
    json_array_append_new(a, json_string(masked ? MASK : l->items[i]));
  return a;
}

static json_t *str_json(const char *s, enum tc__config_secret secret) {
  if (!s) return json_null();
  if (secret == TC__SECRET_WHOLE) return json_string(*s ? MASK : "");
  if (secret == TC__SECRET_NONE) return json_string(s);
  char *m = mask_uri(s);
  json_t *j = m ? json_string(m) : NULL;
  free(m);
  return j;
}

static json_t *dur_json(int64_t ms) {
  char buf[32];
  snprintf(buf, sizeof buf, ms % 1000 ? "%lldms" : "%llds",
           (long long)(ms % 1000 ? ms : ms / 1000));
  return json_string(buf);
}

static json_t *value_json(const tc__config_key_t *k, const void *field) {
  static const char *const levels[] = {"debug", "info", "warn", "error"};
  switch (k->type) {
  case TC__CONFIG_STR: return str_json(*(char *const *)field, k->secret);
  case TC__CONFIG_BOOL: return json_boolean(*(const bool *)field);
  case TC__CONFIG_INT: return json_integer(*(const int64_t *)field);
  case TC__CONFIG_PORT: return json_integer(*(const int *)field);
  case TC__CONFIG_DUR: return dur_json(*(const int64_t *)field);
  case TC__CONFIG_LIST: return list_json(field, k->secret != TC__SECRET_NONE);
  case TC__CONFIG_LEVEL: {
    int level = *(const int *)field;
    return json_string(level >= 0 && level < 4 ? levels[level] : "?");
  }
  case TC__CONFIG_FLOAT: return json_real(*(const double *)field);
  }
  return NULL;
}

char *tc_config_dump_json(const tc_config_t *cfg) {
  json_t *obj = json_object();
  for (size_t i = 0; obj && i < TC__CONFIG_NKEYS; i++) {
    const tc__config_key_t *k = &tc__config_keys[i];
    if (k->off == TC__CONFIG_NOWHERE) continue; /* read and dropped: not in effect */
    json_t *v = value_json(k, (const char *)cfg + k->off);
    if (!v || json_object_set_new(obj, k->key, v) != 0) {
      json_decref(obj);
      return NULL;
    }
  }
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  return text;
}
