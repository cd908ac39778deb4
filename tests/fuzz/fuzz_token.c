/* Fuzz target: every token format the server reads from a client.
 *
 * An input is [selector byte][token text]; the selector (modulo 5) picks:
 * 0 continuous (page) tokens (core/src/token.c), 1 the snap tokens of the
 * SQLite and example backends (backends/support/rev_token.c), 2 the
 * PostgreSQL backend's snap tokens and 3 the pg_snapshot text inside them
 * (backends/postgres/pg_token.c), 4 the base64 they all sit in.  What
 * decodes must encode back to what was read: the same token, or, where a
 * format has more than one spelling, a token naming the same position.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_token.h"
#include "token.h"
#include "tuplecast/errors.h"
#include "tuplecast/support.h"

#define INSTANCE "0123456789abcdef"

static void same(const char *what, const char *a, const char *b) {
  if (a && b && strcmp(a, b) == 0) return;
  fprintf(stderr, "fuzz_token: %s: \"%s\" came back as \"%s\"\n", what, a ? a : "(null)",
          b ? b : "(null)");
  abort();
}

static void cont_token(const char *token) {
  char *cursor = tc_cont_token_decode(token);
  if (cursor) {
    char *again = tc_cont_token_encode(cursor);
    same("continuous token", token, again);
    free(again);
  }
  free(cursor);
  uint64_t id;
  if (tc_cont_token_decode_id(token, &id) == 0 && id == 0) abort(); /* positive ids only */
}

static void rev_token(const char *token) {
  uint64_t rev, again;
  char *err = NULL;
  if (tc_rev_token_decode(token, INSTANCE, &rev, &err) == 0) {
    char *t = tc_rev_token_encode(INSTANCE, rev);
    if (!t || tc_rev_token_decode(t, INSTANCE, &again, NULL) != 0 || again != rev) abort();
    free(t);
    if (tc_rev_token_check(token, INSTANCE, rev, NULL) != 0) abort(); /* at head: fine */
  } else if (!err)
    abort(); /* a refusal says why */
  free(err);
}

/* An exact position made again from its parts reads back the same. */
static void pg_snap_again(const tc__pg_token_t *t) {
  tc__pg_snap_t s;
  if (tc__pg_snap_parse(t->snapshot, &s) != 0) abort(); /* parse checked it */
  char *token = tc__pg_token_at(t->x, &s);
  tc__pg_token_t back;
  char *err = NULL;
  if (!token || tc__pg_token_parse(token, INSTANCE, &back, &err) != 0) {
    fprintf(stderr, "fuzz_token: our token %s: %s\n", token ? token : "(null)", err ? err : "");
    abort();
  }
  if (back.kind != TC_PG_TOKEN_SNAP || back.x != t->x) abort();
  char *text = tc__pg_snap_text(&s);
  same("pg snapshot of a token", text, back.snapshot);
  free(text);
  tc__pg_token_clear(&back);
  free(token);
  tc__pg_snap_clear(&s);
}

static void pg_token(const char *token) {
  tc__pg_token_t t;
  char *err = NULL;
  if (tc__pg_token_parse(token, INSTANCE, &t, &err) == 0) {
    tc__pg_token_need(&t);
    if (t.kind == TC_PG_TOKEN_SNAP && t.x) pg_snap_again(&t);
    tc__pg_token_clear(&t);
  }
  free(err);
}

static void pg_snapshot(const char *text) {
  tc__pg_snap_t s, again;
  if (tc__pg_snap_parse(text, &s) != 0) return;
  char *out = tc__pg_snap_text(&s);
  if (!out || tc__pg_snap_parse(out, &again) != 0) abort();
  char *out2 = tc__pg_snap_text(&again);
  same("pg snapshot", out, out2);
  for (size_t i = 0; i < s.nxip; i++)
    if (tc__pg_snap_visible(&s, s.xip[i])) abort(); /* in progress is not visible */
  free(out);
  free(out2);
  tc__pg_snap_clear(&s);
  tc__pg_snap_clear(&again);
}

static void base64(const char *text) {
  size_t len;
  unsigned char *raw = tc_base64_decode(text, &len);
  if (!raw) return;
  char *again = tc_base64_encode(raw, len);
  same("base64", text, again);
  free(again);
  free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char *text = malloc(size);
  if (!text) return 0;
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  switch (data[0] % 5) {
  case 0: cont_token(text); break;
  case 1: rev_token(text); break;
  case 2: pg_token(text); break;
  case 3: pg_snapshot(text); break;
  default: base64(text); break;
  }
  free(text);
  return 0;
}
