/* Top-level statements of a schema text; see pg_schema_split.h. */
#include "pg_schema_split.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tuplecast/errors.h"

static int ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* If p starts a comment or a quoted string, the position just after it;
 * otherwise p.  An unterminated one runs to the end. */
static const char *skip_opaque(const char *p) {
  if (p[0] == '/' && p[1] == '/') {
    const char *e = strchr(p, '\n');
    return e ? e + 1 : p + strlen(p);
  }
  if (p[0] == '/' && p[1] == '*') {
    const char *e = strstr(p + 2, "*/");
    return e ? e + 2 : p + strlen(p);
  }
  if (*p == '"' || *p == '\'' || *p == '`') {
    char q = *p++;
    while (*p && *p != q) p += (*p == '\\' && p[1]) ? 2 : 1;
    return *p ? p + 1 : p;
  }
  return p;
}

/* A keyword at p, as a whole word. */
static int keyword_at(const char *start, const char *p, const char *kw) {
  size_t n = strlen(kw);
  return (p == start || !ident_char(p[-1])) && strncmp(p, kw, n) == 0 && !ident_char(p[n]);
}

static char *dup_range(const char *a, const char *b) {
  char *s = malloc((size_t)(b - a) + 1);
  if (s) {
    memcpy(s, a, (size_t)(b - a));
    s[b - a] = '\0';
  }
  return s;
}

/* The statement starting at keyword p: its name and the end just after its
 * balanced closing brace; NULL if it is cut short. */
static const char *statement_end(const char *p, size_t kwlen, const char **name,
                                 const char **name_end) {
  p += kwlen;
  while (isspace((unsigned char)*p)) p++;
  *name = p;
  while (ident_char(*p)) p++;
  *name_end = p;
  if (*name == *name_end) return NULL;
  int depth = 0;
  while (*p) {
    const char *q = skip_opaque(p);
    if (q != p) {
      p = q;
      continue;
    }
    if (*p == '{') depth++;
    if (*p == '}' && --depth == 0) return p + 1;
    if (depth < 0) return NULL;
    p++;
  }
  return NULL;
}

void tc__pg_schema_split_free(tc__pg_schema_stmt_t *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(s[i].name);
    free(s[i].text);
  }
  free(s);
}

int tc__pg_schema_split(const char *text, tc__pg_schema_stmt_t **out, size_t *n) {
  tc__pg_schema_stmt_t *v = NULL;
  size_t cnt = 0, cap = 0;
  const char *p = text;
  *out = NULL;
  *n = 0;
  while (*p) {
    const char *q = skip_opaque(p);
    if (q != p) {
      p = q;
      continue;
    }
    size_t kwlen = keyword_at(text, p, "entity") ? 6 : keyword_at(text, p, "rule") ? 4 : 0;
    if (!kwlen) {
      p++;
      continue;
    }
    const char *name, *name_end, *end = statement_end(p, kwlen, &name, &name_end);
    if (!end) {
      tc__pg_schema_split_free(v, cnt);
      return TC_EINVAL;
    }
    if (cnt == cap) {
      cap = cap ? cap * 2 : 8;
      tc__pg_schema_stmt_t *nv = realloc(v, cap * sizeof *nv);
      if (!nv) {
        tc__pg_schema_split_free(v, cnt);
        return TC_ENOMEM;
      }
      v = nv;
    }
    v[cnt].name = dup_range(name, name_end);
    v[cnt].text = dup_range(p, end);
    cnt++;
    if (!v[cnt - 1].name || !v[cnt - 1].text) {
      tc__pg_schema_split_free(v, cnt);
      return TC_ENOMEM;
    }
    p = end;
  }
  *out = v;
  *n = cnt;
  return 0;
}
