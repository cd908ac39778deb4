/* Snap tokens: the formats and pg_snapshot text (pg_token.h). */
#include "pg_token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuplecast/support.h"
#include "tuplecast/errors.h"

#define SNAP_PREFIX "tc2:"
#define SQLITE_PREFIX "tc1:"

/* Strict unsigned decimal at *s, stopping at the first non-digit; advances *s. */
static int parse_u64(const char **s, uint64_t *out) {
  if (**s < '0' || **s > '9') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(*s, &end, 10);
  if (errno) return -1;
  *s = end;
  *out = v;
  return 0;
}

int tc__pg_snap_parse(const char *text, tc__pg_snap_t *out) {
  *out = (tc__pg_snap_t){0};
  const char *s = text;
  uint64_t xmin, xmax;
  /* 0 is no transaction id: Postgres refuses it, and a token carrying it
   * would reach the database as a query error. */
  if (parse_u64(&s, &xmin) || *s++ != ':' || parse_u64(&s, &xmax) || *s++ != ':' || !xmin ||
      xmin > xmax)
    return TC_EINVAL;
  size_t cap = 1;
  for (const char *p = s; *p; p++) cap += *p == ',';
  uint64_t *xip = *s ? malloc(cap * sizeof *xip) : NULL;
  if (*s && !xip) return TC_ENOMEM;
  size_t n = 0;
  while (*s) {
    uint64_t v;
    if (parse_u64(&s, &v) || v < xmin || v >= xmax || (n && v < xip[n - 1]) ||
        (*s && (*s++ != ',' || !*s))) {
      free(xip);
      return TC_EINVAL;
    }
    if (!n || v != xip[n - 1]) xip[n++] = v;
  }
  *out = (tc__pg_snap_t){xmin, xmax, n, xip};
  return 0;
}

char *tc__pg_snap_text(const tc__pg_snap_t *s) {
  size_t cap = 2 * 21 + s->nxip * 21 + 1, len;
  char *out = malloc(cap);
  if (!out) return NULL;
  len = (size_t)snprintf(out, cap, "%llu:%llu:", (unsigned long long)s->xmin,
                         (unsigned long long)s->xmax);
  for (size_t i = 0; i < s->nxip; i++)
    len += (size_t)snprintf(out + len, cap - len, "%s%llu", i ? "," : "",
                            (unsigned long long)s->xip[i]);
  return out;
}

int tc__pg_snap_visible(const tc__pg_snap_t *s, uint64_t x) {
  if (x >= s->xmax) return 0;
  size_t lo = 0, hi = s->nxip;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->xip[mid] == x) return 0;
    if (s->xip[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 1;
}

int tc__pg_xid_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

void tc__pg_snap_clear(tc__pg_snap_t *s) {
  free(s->xip);
  *s = (tc__pg_snap_t){0};
}

int tc__pg_snap_truncate(const tc__pg_snap_t *s, uint64_t bound, tc__pg_snap_t *out) {
  uint64_t xmax = bound && bound < s->xmax ? bound : s->xmax;
  size_t n = 0;
  while (n < s->nxip && s->xip[n] < xmax) n++;
  uint64_t *xip = n ? malloc(n * sizeof *xip) : NULL;
  if (n && !xip) return TC_ENOMEM;
  if (n) memcpy(xip, s->xip, n * sizeof *xip);
  *out = (tc__pg_snap_t){s->xmin < xmax ? s->xmin : xmax, xmax, n, xip};
  return 0;
}

void tc__pg_token_clear(tc__pg_token_t *t) {
  free(t->snapshot);
  *t = (tc__pg_token_t){0};
}

/* The snapshot text at s, checked; its canonical form in *canon. */
static int canonical(const char *s, char **canon) {
  tc__pg_snap_t snap;
  int rc = tc__pg_snap_parse(s, &snap);
  if (rc) return rc;
  *canon = tc__pg_snap_text(&snap);
  tc__pg_snap_clear(&snap);
  return *canon ? 0 : TC_ENOMEM;
}

static int fail(char **errmsg, const char *why) {
  *errmsg = malloc(strlen("snap token ") + strlen(why) + 1);
  if (!*errmsg) return TC_ENOMEM;
  strcpy(*errmsg, "snap token ");
  strcat(*errmsg, why);
  return TC_ESNAP_TOKEN;
}

int tc__pg_token_parse(const char *token, const char *instance_id, tc__pg_token_t *out,
                       char **errmsg) {
  *out = (tc__pg_token_t){.kind = TC_PG_TOKEN_HEAD};
  if (!*token) return 0;
  size_t len;
  errno = 0; /* malloc sets ENOMEM; nothing else in the decoder touches it */
  unsigned char *raw = tc_base64_decode(token, &len);
  if (!raw) return errno == ENOMEM ? TC_ENOMEM : fail(errmsg, "is malformed: not base64");
  const char *text = (const char *)raw;
  size_t plen = strlen(SNAP_PREFIX);
  int rc = 0;
  const char *why = NULL;
  if (len >= plen && !memcmp(raw, SQLITE_PREFIX, plen)) {
    why = "was issued by a SQLite or memory backend, not by this PostgreSQL database";
  } else if (len >= plen && !memcmp(raw, SNAP_PREFIX, plen)) {
    const char *inst = text + plen, *colon = strchr(inst, ':');
    size_t ilen = strlen(instance_id);
    if (memchr(raw, '\0', len) || !colon)
      why = "is malformed: no snapshot";
    else if ((size_t)(colon - inst) != ilen || memcmp(inst, instance_id, ilen))
      why = "was issued by another database";
    else if ((rc = canonical(colon + 1, &out->snapshot)) == TC_EINVAL)
      why = "is malformed: bad snapshot";
    else if (!rc)
      out->kind = TC_PG_TOKEN_SNAP;
  } else if (len == 8) {
    /* Permify's rule: any 8-byte payload is the legacy format. */
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | raw[i];
    out->kind = TC_PG_TOKEN_LEGACY;
    out->x = x;
  } else {
    const char *s = text;
    uint64_t x;
    tc__pg_snap_t snap;
    if (memchr(raw, '\0', len) || parse_u64(&s, &x) || *s++ != ':') {
      why = "is malformed: not a token this server or Permify issued";
    } else if ((rc = tc__pg_snap_parse(s, &snap)) == TC_EINVAL) {
      why = "is malformed: bad snapshot";
    } else if (!rc) {
      /* Ours name a transaction visible in the exact position; Permify's
       * list theirs in progress (its adjustment). */
      out->kind = tc__pg_snap_visible(&snap, x) ? TC_PG_TOKEN_SNAP : TC_PG_TOKEN_PERMIFY;
      out->x = x;
      if (!(out->snapshot = tc__pg_snap_text(&snap))) rc = TC_ENOMEM;
      tc__pg_snap_clear(&snap);
    }
  }
  free(raw);
  if (why) rc = fail(errmsg, why);
  if (rc) tc__pg_token_clear(out);
  return rc;
}

/* base64("X:<snap>"), the new format; takes snap (NULL: out of memory).  A
 * payload of 8 bytes would read as the legacy format (Permify's rule, and
 * ours), so X gets a leading zero there; both parsers read it as X.  Such a
 * payload has at most 5 digits, so an xmin below 100, which no snapshot
 * taken after initdb has (initdb alone uses more xids). */
static char *encode_new(uint64_t x, char *snap) {
  char *text = snap ? tc_format("%llu:%s", (unsigned long long)x, snap) : NULL, *tok = NULL;
  if (text && strlen(text) == 8) {
    char *padded = tc_format("0%s", text);
    free(text);
    text = padded;
  }
  if (text) tok = tc_base64_encode(text, strlen(text));
  free(text);
  free(snap);
  return tok;
}

char *tc__pg_token_permify(uint64_t x, const char *stored_snapshot) {
  if (!stored_snapshot || !*stored_snapshot) { /* Permify: no snapshot, legacy format */
    char le[8];
    for (int i = 0; i < 8; i++) le[i] = (char)(x >> (8 * i) & 0xff);
    return tc_base64_encode(le, 8);
  }
  tc__pg_snap_t s;
  char *snap = NULL;
  int rc = tc__pg_snap_parse(stored_snapshot, &s);
  if (rc == TC_ENOMEM) return NULL;
  if (rc) { /* Permify leaves a snapshot it cannot parse unchanged */
    snap = strdup(stored_snapshot);
  } else {
    /* Permify's adjustment: X joins the sorted xip list; xmax rises to X+1
     * if X >= xmax; xmin falls to X if X < xmin. */
    size_t i = 0;
    while (i < s.nxip && s.xip[i] < x) i++;
    if (i == s.nxip || s.xip[i] != x) {
      uint64_t *grown = realloc(s.xip, (s.nxip + 1) * sizeof *grown);
      if (!grown) {
        tc__pg_snap_clear(&s);
        return NULL;
      }
      s.xip = grown;
      memmove(s.xip + i + 1, s.xip + i, (s.nxip - i) * sizeof *s.xip);
      s.xip[i] = x;
      s.nxip++;
    }
    if (x >= s.xmax) s.xmax = x + 1;
    if (x < s.xmin) s.xmin = x;
    snap = tc__pg_snap_text(&s);
    tc__pg_snap_clear(&s);
  }
  return encode_new(x, snap);
}

char *tc__pg_token_at(uint64_t x, const tc__pg_snap_t *s) {
  return encode_new(x, tc__pg_snap_text(s));
}

uint64_t tc__pg_token_need(const tc__pg_token_t *t) {
  /* X + 1, saturating: the largest X is still ahead of any database. */
  uint64_t need = t->x ? (t->x == UINT64_MAX ? t->x : t->x + 1) : 0;
  tc__pg_snap_t s;
  if (t->snapshot && tc__pg_snap_parse(t->snapshot, &s) == 0) {
    if (s.xmax > need) need = s.xmax;
    tc__pg_snap_clear(&s);
  }
  return need;
}
