#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strbuf.h"

static int threshold = TC_LOG_INFO;
static enum tc_log_format format = TC_LOG_TEXT;
static const char *const names[] = {"debug", "info", "warn", "error"};
static const char *const json_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void tc_log_set_level(int level) { threshold = level; }

int tc_log_enabled(int level) { return level >= threshold; }

int tc_log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

void tc_log_set_format(enum tc_log_format f) { format = f; }

int tc_log_format_parse(const char *s) {
  if (strcmp(s, "json") == 0) return TC_LOG_JSON;
  return strcmp(s, "text") == 0 || *s == '\0' ? TC_LOG_TEXT : -1;
}

/* ---- one line ------------------------------------------------------------ */

/* A line being built: on the stack, on the heap once it outgrows it
 * (strbuf.h).  A line that cannot grow (out of memory) is cut, never lost. */
typedef struct line_s {
  tc__strbuf_t b;
  char stack[2048];
} line_t;

static void put(line_t *l, const char *s, size_t n) { tc__strbuf_put(&l->b, s, n); }

static void puts_(line_t *l, const char *s) { tc__strbuf_puts(&l->b, s); }

static void putf(line_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(line_t *l, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tc__strbuf_vputf(&l->b, fmt, ap);
  va_end(ap);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0. */
static size_t utf8_len(const unsigned char *s) {
  size_t n = s[0] < 0xC2 ? 0 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : s[0] < 0xF5 ? 4 : 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F))) return 0;
  if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))) return 0;
  return n;
}

/* A JSON string: quotes, backslashes and control bytes escaped, a byte that
 * is not valid UTF-8 written as U+FFFD, so every line parses. */
static void put_json_str(line_t *l, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  put(l, "\"", 1);
  while (*s) {
    size_t n = *s < 0x80 ? 1 : utf8_len(s);
    if (*s == '"' || *s == '\\')
      putf(l, "\\%c", *s);
    else if (*s == '\n')
      puts_(l, "\\n");
    else if (*s < 0x20 || *s == 0x7F)
      putf(l, "\\u%04x", *s);
    else if (n == 0)
      puts_(l, "\\ufffd");
    else
      put(l, (const char *)s, n);
    s += n ? n : 1;
  }
  put(l, "\"", 1);
}

/* A text value: bare when it is one plain word, else a JSON string. */
static void put_text_value(line_t *l, const char *s) {
  int bare = *s != '\0';
  for (const unsigned char *c = (const unsigned char *)s; *c && bare; c++)
    bare = *c > ' ' && *c != '"' && *c != '=' && *c != '\\' && *c < 0x7F;
  if (bare)
    puts_(l, s);
  else
    put_json_str(l, s);
}

static void put_field(line_t *l, const tc_log_field_t *f) {
  if (f->kind != TC_LOG_INT && !f->s) return;
  if (format == TC_LOG_JSON) {
    put(l, ",", 1);
    put_json_str(l, f->key);
    put(l, ":", 1);
  } else
    putf(l, " %s=", f->key);
  if (f->kind == TC_LOG_INT)
    putf(l, "%lld", f->n);
  else if (f->kind == TC_LOG_RAW)
    puts_(l, f->s);
  else if (format == TC_LOG_JSON)
    put_json_str(l, f->s);
  else
    put_text_value(l, f->s);
}

/* Writes one line: the time, level and msg, then the fields.  Under lock. */
static void emit(int level, const char *msg, const tc_log_field_t *fields, size_t n) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char when[96];
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  line_t l;
  tc__strbuf_init(&l.b, l.stack, sizeof l.stack);
  if (format == TC_LOG_JSON) {
    putf(&l, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", when, json_names[level]);
    put_json_str(&l, msg);
  } else
    putf(&l, "%s %-5s %s", when, names[level], msg);
  for (size_t i = 0; i < n; i++) put_field(&l, &fields[i]);
  if (format == TC_LOG_JSON) puts_(&l, "}");
  l.b.p[l.b.len++] = '\n';
  fwrite(l.b.p, 1, l.b.len, stderr);
  tc__strbuf_free(&l.b);
}

/* ---- repeated warnings ---------------------------------------------------- */

/* A warning seen lately: written at most once per window; the lines like it
 * that were dropped are counted and the count goes on the next one written. */
typedef struct repeat_s {
  const void *fmt;   /* the format or msg pointer; NULL: a free slot */
  uint64_t text;     /* a hash of the text, digits left out */
  int64_t since_ms;  /* when the last line written went out */
  long long dropped; /* lines dropped since */
  int level;
  char last[256]; /* the last one dropped, for the count's line */
} repeat_t;

#define N_REPEATS 64
static repeat_t repeats[N_REPEATS];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A message's text with its digits left out: "connection 17 failed" and
 * "connection 18 failed" are the same warning; "grpc: out of descriptors"
 * and "http: out of descriptors" (one format) are two.  A plugin formats
 * its own lines and logs them through a bare "%s": the text tells them
 * apart. */
static uint64_t text_key(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    if (*s < '0' || *s > '9') h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The count of the lines slot r dropped, written as a line of its own. */
static void emit_dropped(repeat_t *r) {
  tc_log_field_t f = {"repeated", TC_LOG_INT, NULL, r->dropped};
  emit(r->level, r->last, &f, 1);
  r->dropped = 0;
}

/* Frees the slots whose window has passed, writing what they held back. */
static void sweep(int64_t now) {
  for (size_t i = 0; i < N_REPEATS; i++) {
    repeat_t *r = &repeats[i];
    if (!r->fmt || now - r->since_ms < TC_LOG_REPEAT_WINDOW_MS) continue;
    if (r->dropped) emit_dropped(r);
    r->fmt = NULL;
  }
}

/* Whether a warning keyed (fmt, text) is written now; when it is not, msg
 * is kept as the last one dropped.  Under lock, after sweep(). */
static int admit(int level, const void *fmt, uint64_t text, const char *msg) {
  repeat_t *slot = NULL, *oldest = &repeats[0];
  for (size_t i = 0; i < N_REPEATS && !slot; i++) {
    repeat_t *r = &repeats[i];
    if (r->fmt == fmt && r->text == text) slot = r;
    if (!r->fmt || (oldest->fmt && r->since_ms < oldest->since_ms)) oldest = r;
  }
  if (slot) { /* still in its window: sweep() frees the others */
    slot->dropped++;
    snprintf(slot->last, sizeof slot->last, "%s", msg);
    return 0;
  }
  if (oldest->fmt && oldest->dropped) emit_dropped(oldest);
  *oldest = (repeat_t){.fmt = fmt, .text = text, .since_ms = now_ms(), .level = level};
  return 1;
}

static void log_line(int level, const void *key, uint64_t text, const char *msg,
                     const tc_log_field_t *fields, size_t n) {
  if (level < TC_LOG_DEBUG || level > TC_LOG_ERROR) level = TC_LOG_ERROR;
  pthread_mutex_lock(&lock);
  sweep(now_ms());
  if (level < TC_LOG_WARN || admit(level, key, text, msg)) emit(level, msg, fields, n);
  pthread_mutex_unlock(&lock);
}

void tc_log(int level, const char *fmt, ...) {
  if (level < threshold) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  log_line(level, fmt, text_key(msg), msg, NULL, 0);
}

void tc_log_fields(int level, const char *msg, const tc_log_field_t *fields, size_t n) {
  if (level >= threshold) log_line(level, msg, 0, msg, fields, n);
}

void tc_log_flush(void) {
  pthread_mutex_lock(&lock);
  sweep(INT64_MAX);
  pthread_mutex_unlock(&lock);
}
