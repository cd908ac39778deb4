/* The growing text buffer (strbuf.h). */
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tc__strbuf_init(tc__strbuf_t *b, char *first, size_t size) {
  size_t cap = first ? size : 0;
  *b = (tc__strbuf_t){.p = first, .cap = cap, .first = first, .first_cap = cap};
}

int tc__strbuf_reserve(tc__strbuf_t *b, size_t n) {
  if (b->failed) return -1;
  if (b->len + n + 2 <= b->cap) return 0; /* room for "\n" and NUL */
  size_t cap = (b->len + n + 2) * 2;
  char *p = b->p == b->first ? malloc(cap) : realloc(b->p, cap);
  if (!p) {
    b->failed = 1;
    return -1;
  }
  if (b->p == b->first && b->len) memcpy(p, b->first, b->len);
  b->p = p;
  b->cap = cap;
  return 0;
}

void tc__strbuf_put(tc__strbuf_t *b, const char *s, size_t n) {
  if (tc__strbuf_reserve(b, n) != 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void tc__strbuf_puts(tc__strbuf_t *b, const char *s) { tc__strbuf_put(b, s, strlen(s)); }

void tc__strbuf_vputf(tc__strbuf_t *b, const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  if (n < 0)
    b->failed = 1;
  else if (tc__strbuf_reserve(b, (size_t)n) == 0) {
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
    b->len += (size_t)n;
  }
  va_end(again);
}

void tc__strbuf_putf(tc__strbuf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tc__strbuf_vputf(b, fmt, ap);
  va_end(ap);
}

char *tc__strbuf_take(tc__strbuf_t *b, size_t *len) {
  char *text = NULL;
  if (!b->failed) {
    if (b->p && b->p != b->first)
      text = b->p; /* the heap part, handed over */
    else if ((text = malloc(b->len + 1)) && b->len)
      memcpy(text, b->p, b->len);
    if (text) {
      text[b->len] = '\0';
      *len = b->len;
    }
  }
  if (text != b->p) tc__strbuf_free(b);
  tc__strbuf_init(b, b->first, b->first_cap);
  return text;
}

void tc__strbuf_free(tc__strbuf_t *b) {
  if (b->p != b->first) free(b->p);
  b->p = b->first;
  b->len = 0;
}
