/* JSON text with protojson's number and string formatting (see json_text.h);
 * jansson's own json_dumps() prints reals as %.17g. */
#include "json_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_string(FILE *f, const char *s, size_t n) {
  size_t i;

  fputc('"', f);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;

    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    default: break;
    }
    if (esc != NULL)
      fputs(esc, f);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

/* |v|'s fewest digits that read back as v (no point, no trailing zeros;
 * digits holds 17 and a NUL) and the exponent of the first: returns how
 * many digits. */
static int shortest_digits(double v, char *digits, int *exp10) {
  char sci[40];
  const char *p = sci;
  int prec, n = 0;

  for (prec = 1; prec < 17; prec++) {
    snprintf(sci, sizeof(sci), "%.*e", prec - 1, v);
    if (strtod(sci, NULL) == v) break;
  }
  if (prec == 17) snprintf(sci, sizeof(sci), "%.16e", v);
  if (*p == '-') p++;
  for (; *p != 'e'; p++) {
    if (*p != '.') digits[n++] = *p;
  }
  *exp10 = atoi(p + 1);
  while (n > 1 && digits[n - 1] == '0') n--;
  return n;
}

void tc_json_put_plain_double(FILE *f, double v) {
  char digits[20];
  int exp10, n = shortest_digits(v, digits, &exp10), i;

  if (signbit(v)) fputc('-', f);
  if (exp10 < 0) {
    fputs("0.", f);
    for (i = 0; i < -exp10 - 1; i++) fputc('0', f);
    fwrite(digits, 1, (size_t)n, f);
  } else if (exp10 >= n - 1) {
    fwrite(digits, 1, (size_t)n, f);
    for (i = 0; i < exp10 - (n - 1); i++) fputc('0', f);
  } else {
    fwrite(digits, 1, (size_t)exp10 + 1, f);
    fputc('.', f);
    fwrite(digits + exp10 + 1, 1, (size_t)(n - exp10 - 1), f);
  }
}

/* Go's strconv.FormatFloat(v, 'f' or 'e', -1, 64) as encoding/json and
 * protojson use it: the fewest digits that read back as v, in plain notation
 * unless |v| < 1e-6 or |v| >= 1e21, exponents without leading zeros. */
static void put_double(FILE *f, double v) {
  char digits[20];
  int exp10, n;

  if (v == 0 || (fabs(v) >= 1e-6 && fabs(v) < 1e21)) {
    tc_json_put_plain_double(f, v);
    return;
  }
  n = shortest_digits(v, digits, &exp10);
  if (v < 0) fputc('-', f);
  fputc(digits[0], f);
  if (n > 1) {
    fputc('.', f);
    fwrite(digits + 1, 1, (size_t)(n - 1), f);
  }
  fprintf(f, "e%c%d", exp10 < 0 ? '-' : '+', abs(exp10));
}

static void put_value(FILE *f, const json_t *v) {
  const char *key;
  json_t *item;
  size_t i;
  int first = 1;

  switch (json_typeof(v)) {
  case JSON_OBJECT:
    fputc('{', f);
    json_object_foreach((json_t *)v, key, item) {
      if (!first) fputc(',', f);
      first = 0;
      put_string(f, key, strlen(key));
      fputc(':', f);
      put_value(f, item);
    }
    fputc('}', f);
    break;
  case JSON_ARRAY:
    fputc('[', f);
    json_array_foreach(v, i, item) {
      if (i > 0) fputc(',', f);
      put_value(f, item);
    }
    fputc(']', f);
    break;
  case JSON_STRING: put_string(f, json_string_value(v), json_string_length(v)); break;
  case JSON_INTEGER: fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
  case JSON_REAL: put_double(f, json_real_value(v)); break;
  case JSON_TRUE: fputs("true", f); break;
  case JSON_FALSE: fputs("false", f); break;
  case JSON_NULL: fputs("null", f); break;
  }
}

char *tc_json_text(const json_t *value) {
  char *buf = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  int bad;

  if (f == NULL) return NULL;
  put_value(f, value);
  bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    free(buf);
    return NULL;
  }
  return buf;
}
