/* A growing text buffer for building one piece of output (a log line, the
 * /metrics page): it starts in storage the caller provides (or none) and
 * moves to the heap once it outgrows it.  A growth that fails sets `failed`
 * and every later append does nothing, so the text is cut, never garbled.
 * It always keeps room for two more bytes (a newline and the NUL).
 *
 * Threading: no shared state; a buffer belongs to the thread building it.
 * Ownership: the caller owns the struct and its first storage;
 * tc__strbuf_free frees what the buffer allocated; tc__strbuf_take hands
 * the text over as malloc'd memory. */
#ifndef TC_STRBUF_H
#define TC_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct tc__strbuf_s {
  char *p;
  size_t len, cap;
  char *first; /* the caller's storage, or NULL */
  size_t first_cap;
  int failed;
} tc__strbuf_t;

void tc__strbuf_init(tc__strbuf_t *b, char *first, size_t size);
/* 0 when n more bytes (and the two spare) fit, else -1 and failed. */
int tc__strbuf_reserve(tc__strbuf_t *b, size_t n);
void tc__strbuf_put(tc__strbuf_t *b, const char *s, size_t n);
void tc__strbuf_puts(tc__strbuf_t *b, const char *s);
void tc__strbuf_vputf(tc__strbuf_t *b, const char *fmt, va_list ap);
void tc__strbuf_putf(tc__strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text, NUL-terminated, malloc'd (*len its length); NULL if a growth
 * failed or memory ran out.  The buffer is left empty. */
char *tc__strbuf_take(tc__strbuf_t *b, size_t *len);
void tc__strbuf_free(tc__strbuf_t *b);

#endif
