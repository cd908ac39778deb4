/* Logging to stderr: a level threshold (logger.level), text or JSON lines
 * (logger.output), lines with structured fields, and a limiter that writes a
 * warning or error repeating within TC_LOG_REPEAT_WINDOW_MS once, carrying
 * the count of the lines like it that were dropped ("like it": the same
 * format and the same text but for its digits).
 *
 * Text: `2026-12-06T07:36:38.579Z info  message key=value ...`.
 * JSON: one object a line, `{"time":...,"level":"INFO","msg":...,key:value...}`
 * (the names Go's slog uses, which Permify writes).
 *
 * Threading: any thread; each line is written whole under one lock.
 * Ownership: every argument is borrowed for the duration of the call.
 */
#ifndef TC_LOG_H
#define TC_LOG_H

#include <stddef.h>

#include "tuplecast/backend.h" /* enum tc_log_level */

/* A repeating warning is written at most once per window. */
#define TC_LOG_REPEAT_WINDOW_MS 10000

enum tc_log_format { TC_LOG_TEXT, TC_LOG_JSON };

void tc_log_set_level(int level);
/* Whether a line at level would be written (skip building costly fields). */
int tc_log_enabled(int level);
/* Parses debug|info|warn|error; returns the level or -1. */
int tc_log_level_parse(const char *s);
void tc_log_set_format(enum tc_log_format format);
/* Parses logger.output: "json", or "text" / "" (the default); -1 otherwise. */
int tc_log_format_parse(const char *s);

void tc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum tc_log_kind {
  TC_LOG_STR, /* .s, a string (NULL: the field is left out) */
  TC_LOG_INT, /* .n */
  TC_LOG_RAW  /* .s, JSON text written as it is (an object, an array) */
};

typedef struct tc_log_field_s {
  const char *key;
  enum tc_log_kind kind;
  const char *s;
  long long n;
} tc_log_field_t;

/* One line: msg and then the fields, in order.  A warning or error is
 * limited by msg (the pointer: pass a literal). */
void tc_log_fields(int level, const char *msg, const tc_log_field_t *fields, size_t n);

/* Writes the counts of repeats still held back (at shutdown). */
void tc_log_flush(void);

#endif
