#include "token_forge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuplecast/support.h"

#define FAR "99999999990"

char *tt_token_ahead(const char *token) {
  size_t len;
  char *raw = (char *)tc_base64_decode(token, &len);
  if (!raw) return NULL;
  char text[256];
  char *colon = NULL;
  if (!strncmp(raw, "tc1:", 4) && (colon = strrchr(raw, ':')) != NULL) {
    *colon = '\0';
    snprintf(text, sizeof text, "%s:" FAR, raw);
  } else if (!strncmp(raw, "tc2:", 4) && (colon = strchr(raw + 4, ':')) != NULL) {
    *colon = '\0';
    snprintf(text, sizeof text, "%s:" FAR ":" FAR ":", raw);
  } else { /* Permify's: X:xmin:xmax:xip with X in progress */
    snprintf(text, sizeof text, FAR ":" FAR ":99999999991:" FAR);
  }
  free(raw);
  return tc_base64_encode(text, strlen(text));
}
