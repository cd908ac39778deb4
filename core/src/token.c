#include "token.h"

#include <stdlib.h>
#include <string.h>

#include "tuplecast/support.h"
#include "tuplecast/errors.h"

char *tc_cont_token_encode(const char *cursor) { return tc_base64_encode(cursor, strlen(cursor)); }

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
  int rc = text && tc_parse_u64(text, id) == 0 && *id > 0 ? 0 : TC_ECONT_TOKEN;
  free(text);
  return rc;
}
