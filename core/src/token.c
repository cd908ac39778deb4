#include "token.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "format.h"
#include "tuplecast/errors.h"

#define PREFIX "tc1:"

char *tc_token_encode(const char *instance_id, uint64_t revision) {
  char *text = tc_format(PREFIX "%s:%llu", instance_id, (unsigned long long)revision);
  if (!text) return NULL;
  char *tok = tc_base64_encode(text, strlen(text));
  free(text);
  return tok;
}

/* Strict unsigned decimal: digits only, no sign, no overflow. */
static int parse_u64(const char *s, uint64_t *out) {
  if (*s < '0' || *s > '9') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

static int looks_like_permify_pg(const unsigned char *raw, size_t len) {
  if (len == 8) return 1; /* legacy: little-endian xid */
  const char *colon = memchr(raw, ':', len);
  if (!colon || colon == (const char *)raw) return 0;
  for (const unsigned char *p = raw; p < (const unsigned char *)colon; p++)
    if (*p < '0' || *p > '9') return 0;
  return 1;
}

int tc_token_decode(const char *token, const char *instance_id, uint64_t *revision,
                    char **errmsg) {
  size_t len;
  unsigned char *raw = tc_base64_decode(token, &len);
  const char *text = (const char *)raw;
  const char *why = NULL;
  if (raw && looks_like_permify_pg(raw, len)) {
    why = "is a Permify Postgres token; this server's backend cannot use it";
  } else if (!raw || memchr(raw, '\0', len) || strncmp(text, PREFIX, strlen(PREFIX)) != 0) {
    why = "is malformed: not a token this server issued; omit it to read at the latest revision";
  } else {
    const char *inst = text + strlen(PREFIX);
    const char *colon = strrchr(inst, ':');
    size_t ilen = strlen(instance_id);
    if (!colon || parse_u64(colon + 1, revision) != 0)
      why = "is malformed: bad revision";
    else if ((size_t)(colon - inst) != ilen || memcmp(inst, instance_id, ilen) != 0)
      why = "was issued by another database; omit it to read at the latest revision";
  }
  free(raw);
  if (!why) return 0;
  *errmsg = tc_format("snap token %s %s", token, why);
  return TC_ESNAP_TOKEN;
}

char *tc_cont_token_encode(const char *cursor) {
  return tc_base64_encode(cursor, strlen(cursor));
}

char *tc_cont_token_decode(const char *token) {
  size_t len;
  unsigned char *raw = tc_base64_decode(token, &len);
  if (raw && (len == 0 || memchr(raw, '\0', len))) {
    free(raw);
    return NULL;
  }
  return (char *)raw;
}

int tc_cont_token_decode_id(const char *token, uint64_t *id) {
  char *text = tc_cont_token_decode(token);
  int rc = text && parse_u64(text, id) == 0 && *id > 0 ? 0 : TC_ECONT_TOKEN;
  free(text);
  return rc;
}
