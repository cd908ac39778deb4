#include "tuplecast/support.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *tc_base64_encode(const void *data, size_t len) {
  const unsigned char *in = data;
  char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
  if (!out) return NULL;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len) v |= in[i + 2];
    *p++ = alphabet[v >> 18 & 63];
    *p++ = alphabet[v >> 12 & 63];
    *p++ = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
    *p++ = i + 2 < len ? alphabet[v & 63] : '=';
  }
  *p = '\0';
  return out;
}

static int sextet(char c) {
  const char *p = c ? strchr(alphabet, c) : NULL;
  return p ? (int)(p - alphabet) : -1;
}

unsigned char *tc_base64_decode(const char *s, size_t *len) {
  size_t n = strlen(s);
  if (n % 4 != 0) return NULL;
  unsigned char *out = malloc(n / 4 * 3 + 1), *p = out;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i += 4) {
    int pad = (s[i + 3] == '=') + (s[i + 2] == '=');
    if (pad && i + 4 != n) goto bad;
    if (s[i + 2] == '=' && s[i + 3] != '=') goto bad;
    int a = sextet(s[i]), b = sextet(s[i + 1]);
    int c = pad >= 2 ? 0 : sextet(s[i + 2]), d = pad >= 1 ? 0 : sextet(s[i + 3]);
    if (a < 0 || b < 0 || c < 0 || d < 0) goto bad;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
    /* Canonical form only: bits below the last full byte must be zero. */
    if ((pad == 2 && (v & 0xffff)) || (pad == 1 && (v & 0xff))) goto bad;
    *p++ = (unsigned char)(v >> 16);
    if (pad < 2) *p++ = (unsigned char)(v >> 8);
    if (pad < 1) *p++ = (unsigned char)v;
  }
  *p = '\0';
  *len = (size_t)(p - out);
  return out;
bad:
  free(out);
  return NULL;
}
