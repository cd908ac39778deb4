/* Small helpers the backend's files share: libpq messages,
 * password redaction, the blocking start-up connection, text[] literals and
 * the options parser (declared in pg_internal.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

char *tc__pg_one_line(const char *msg) {
  if (!msg) msg = "";
  char *s = malloc(strlen(msg) * 2 + 1), *p = s;
  if (!s) return NULL;
  for (const char *m = msg; *m; m++) {
    if (*m == '\n') {
      if (m[1] && p > s) { /* libpq's multi-line messages: "a\nb\n" -> "a; b" */
        *p++ = ';';
        *p++ = ' ';
      }
    } else if (*m != '\r') {
      *p++ = *m;
    }
  }
  while (p > s && isspace((unsigned char)p[-1])) p--;
  *p = '\0';
  return s;
}

/* Appends s[0..n) to the buffer at *p. */
static void put(char **p, const char *s, size_t n) {
  memcpy(*p, s, n);
  *p += n;
}

char *tc__pg_redact(const char *in) {
  size_t len = strlen(in);
  char *out = malloc(len * 2 + 16), *p = out; /* "***" never needs more than double */
  if (!out) return NULL;
  const char *s = in, *end = in + len;
  /* URI userinfo: scheme://user:password@host */
  const char *scheme = strstr(in, "://");
  if (scheme && (!strncmp(in, "postgresql://", 13) || !strncmp(in, "postgres://", 11))) {
    const char *auth = scheme + 3, *auth_end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *q = auth; q < auth_end; q++)
      if (*q == '@') at = q;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
      put(&p, in, (size_t)(colon - in) + 1);
      put(&p, "***", 3);
      s = at;
    }
  }
  /* password=... as a URI query parameter or a key/value pair */
  while (s < end) {
    const char *hit = strstr(s, "password=");
    if (!hit) break;
    int starts = hit == in || strchr("?& \t", hit[-1]) != NULL;
    put(&p, s, (size_t)(hit - s) + 9);
    s = hit + 9;
    if (!starts) continue;
    if (*s == '\'') { /* key/value form: a quoted value with \' escapes */
      for (s++; *s && *s != '\''; s++)
        if (*s == '\\' && s[1]) s++;
      if (*s) s++;
    } else {
      s += strcspn(s, "& \t");
    }
    put(&p, "***", 3);
  }
  put(&p, s, (size_t)(end - s));
  *p = '\0';
  return out;
}

PGconn *tc__pg_connect_blocking(const char *conninfo, char **errmsg) {
  /* libpq would take "" as "the defaults" (a local socket, the user's name):
   * a server must name its database. */
  if (!conninfo || !*conninfo) {
    *errmsg = tc_format(
        "database.uri: required for the postgres engine (a postgres:// URI, or "
        "database.writer.uri)");
    return NULL;
  }
  /* connect_timeout first, so a value in conninfo (expanded after it) wins. */
  const char *const keys[] = {"connect_timeout", "dbname", NULL};
  const char *const vals[] = {"5", conninfo, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (c && PQstatus(c) == CONNECTION_OK) return c;
  char *where = tc__pg_redact(conninfo);
  char *why = tc__pg_one_line(c ? PQerrorMessage(c) : "out of memory");
  *errmsg =
      tc_format("cannot connect to PostgreSQL (%s): %s", where ? where : "?", why ? why : "?");
  free(where);
  free(why);
  PQfinish(c);
  return NULL;
}

char *tc__pg_text_array(const char *const *v, size_t n) {
  size_t len = 3;
  for (size_t i = 0; i < n; i++) len += strlen(v[i]) * 2 + 3;
  char *out = malloc(len), *p = out;
  if (!out) return NULL;
  *p++ = '{';
  for (size_t i = 0; i < n; i++) {
    if (i) *p++ = ',';
    *p++ = '"';
    for (const char *s = v[i]; *s; s++) {
      if (*s == '"' || *s == '\\') *p++ = '\\';
      *p++ = *s;
    }
    *p++ = '"';
  }
  *p++ = '}';
  *p = '\0';
  return out;
}

/* ---- options ------------------------------------------------------------- */

static int parse_bool(const char *v, int *out) {
  static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0", "no",
                                                                              "off"};
  for (size_t i = 0; i < 4; i++) {
    if (!strcmp(v, yes[i])) return *out = 1, 0;
    if (!strcmp(v, no[i])) return *out = 0, 0;
  }
  return -1;
}

static int parse_uint(const char *v, unsigned min, unsigned *out) {
  char *end;
  unsigned long n = strtoul(v, &end, 10);
  if (!*v || *end || !isdigit((unsigned char)*v) || n < min || n > 0x7fffffffUL) return -1;
  *out = (unsigned)n;
  return 0;
}

/* The unsigned options: key, least value, default, member.  Permify's
 * defaults where it has them (max_retries 10; GC 200h/200h/5m from its example
 * config); pool size 16: group commit needs connections (Permify's pool has
 * 20).  Single-item writes at 64 outstanding, alternated runs on a busy
 * 2-core machine: 16 connections gave 1.7-1.9x the writes/s of 4 in 7 of 8
 * pairs (about 1x in the 8th), and less server CPU per write
 * (bench/README.md, "What limits the figures"). */
static const struct {
  const char *key;
  unsigned min, def;
  size_t off;
} uints[] = {
    {"max_retries", 0, 10, offsetof(tc__pg_opts_t, max_retries)},
    {"pool_size", 1, 16, offsetof(tc__pg_opts_t, pool_size)},
    {"poll_interval_ms", 1, 100, offsetof(tc__pg_opts_t, poll_interval_ms)},
    {"gc_interval_s", 1, 720000, offsetof(tc__pg_opts_t, gc_interval_s)},
    {"gc_window_s", 0, 720000, offsetof(tc__pg_opts_t, gc_window_s)},
    {"gc_timeout_s", 1, 300, offsetof(tc__pg_opts_t, gc_timeout_s)},
};
#define N_UINTS (sizeof uints / sizeof uints[0])

static unsigned *uint_at(tc__pg_opts_t *o, size_t j) {
  return (unsigned *)((char *)o + uints[j].off);
}

int tc__pg_opts_parse(const char *const *options, tc__pg_opts_t *o, char **errmsg) {
  *o = (tc__pg_opts_t){.auto_migrate = 1, .gc_enabled = 0};
  for (size_t j = 0; j < N_UINTS; j++) *uint_at(o, j) = uints[j].def;
  for (size_t i = 0; options && options[i]; i++) {
    const char *kv = options[i], *eq = strchr(kv, '=');
    if (!eq) continue;
    size_t klen = (size_t)(eq - kv);
    const char *v = eq + 1;
    int bad = 0, known = 0;
    if (klen == 12 && !strncmp(kv, "auto_migrate", 12))
      known = 1, bad = parse_bool(v, &o->auto_migrate);
    else if (klen == 10 && !strncmp(kv, "gc_enabled", 10))
      known = 1, bad = parse_bool(v, &o->gc_enabled);
    else if (klen == 7 && !strncmp(kv, "node_id", 7))
      known = 1, o->node_id = *v ? v : NULL;
    for (size_t j = 0; !known && j < N_UINTS; j++)
      if (strlen(uints[j].key) == klen && !strncmp(kv, uints[j].key, klen))
        known = 1, bad = parse_uint(v, uints[j].min, uint_at(o, j));
    if (bad) {
      *errmsg = tc_format("postgres option %.*s: bad value \"%s\"", (int)klen, kv, v);
      return TC_ECONFIG;
    }
  }
  return 0;
}
