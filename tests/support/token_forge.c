#include "token_forge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuplecast/support.h"

#define FAR "99999999990"

/* 1 if raw, Permify's new format "X:xmin:xmax:xip,...", lists X in progress
 * or not below xmax (Permify's and write acks) rather than visible (the
 * Postgres backend's feed positions). */
static int names_x_in_progress(const char *raw) {
  unsigned long long x, xmin, xmax;
  int used = 0;
  if (sscanf(raw, "%llu:%llu:%llu:%n", &x, &xmin, &xmax, &used) != 3 || !used) return 1;
  if (x >= xmax) return 1;
  for (const char *p = raw + used; *p; p += *p == ',') {
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p) break;
    if (v == x) return 1;
    p = end;
  }
  return 0;
}

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
  } else if (names_x_in_progress(raw)) { /* Permify's: X:xmin:xmax:xip with X in progress */
    snprintf(text, sizeof text, FAR ":" FAR ":99999999991:" FAR);
  } else { /* the feed's: X visible in the exact snapshot */
    snprintf(text, sizeof text, FAR ":" FAR ":99999999991:");
  }
  free(raw);
  return tc_base64_encode(text, strlen(text));
}
