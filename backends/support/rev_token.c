/* The snap tokens of revision-numbered backends (tuplecast/support.h).
 * Postgres tokens in Permify's formats (base64 of an 8-byte xid, or
 * "xid:snapshot": Permify's, and our Postgres backend's) and its former ones
 * ("tc2:...") are recognised so the error can say what they are. */
#include <stdlib.h>
#include <string.h>

#include "tuplecast/support.h"

#define PREFIX "tc1:"

char *tc_rev_token_encode(const char *instance_id, uint64_t revision) {
  char *text = tc_format(PREFIX "%s:%llu", instance_id, (unsigned long long)revision);
  if (!text) return NULL;
  char *tok = tc_base64_encode(text, strlen(text));
  free(text);
  return tok;
}

static int looks_like_permify_pg(const unsigned char *raw, size_t len) {
  if (len >= strlen(PREFIX) && !memcmp(raw, PREFIX, strlen(PREFIX))) return 0;
  if (len == 8) return 1; /* legacy: little-endian xid */
  const char *colon = memchr(raw, ':', len);
  if (!colon || colon == (const char *)raw) return 0;
  for (const unsigned char *p = raw; p < (const unsigned char *)colon; p++)
    if (*p < '0' || *p > '9') return 0;
  return 1;
}

int tc_rev_token_decode(const char *token, const char *instance_id, uint64_t *revision,
                        char **errmsg) {
  size_t len;
  unsigned char *raw = tc_base64_decode(token, &len);
  const char *text = (const char *)raw;
  const char *why = NULL;
  if (raw && looks_like_permify_pg(raw, len)) {
    why = "is a Permify Postgres token; this server's backend cannot use it";
  } else if (raw && len > 4 && !memcmp(raw, "tc2:", 4)) {
    why = "is a tuplecast Postgres token; this server's backend cannot use it";
  } else if (!raw || memchr(raw, '\0', len) || strncmp(text, PREFIX, strlen(PREFIX)) != 0) {
    why = "is malformed: not a token this server issued; omit it to read at the latest revision";
  } else {
    const char *inst = text + strlen(PREFIX);
    const char *colon = strrchr(inst, ':');
    size_t ilen = strlen(instance_id);
    if (!colon || tc_parse_u64(colon + 1, revision) != 0)
      why = "is malformed: bad revision";
    else if ((size_t)(colon - inst) != ilen || memcmp(inst, instance_id, ilen) != 0)
      why = "was issued by another database; omit it to read at the latest revision";
  }
  free(raw);
  if (!why) return 0;
  *errmsg = tc_format("snap token %s %s", token, why);
  return TC_ESNAP_TOKEN;
}


void tc_rev_token_reply(void (*cb)(void *arg, int status, const char *token), void *arg, int status,
                        const char *instance_id, uint64_t revision) {
  char *token = status == 0 ? tc_rev_token_encode(instance_id, revision) : NULL;
  if (status == 0 && !token) status = TC_ENOMEM;
  cb(arg, status, token ? token : "");
  free(token);
}

int tc_rev_token_check(const char *token, const char *instance_id, uint64_t head, char **errmsg) {
  uint64_t revision;
  int rc = tc_rev_token_decode(token, instance_id, &revision, errmsg);
  if (rc != 0 || revision <= head) return rc;
  *errmsg = tc_format(
      "snap token %s is ahead of this database: revision %llu is beyond its "
      "newest, %llu; omit it to read at the latest revision",
      token, (unsigned long long)revision, (unsigned long long)head);
  return TC_ESNAP_TOKEN;
}
