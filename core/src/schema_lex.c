/* The schema DSL lexer.  It tokenises as Permify's does and reports the same
 * error positions, Permify's line and column, so their counting quirks hold
 * (columns start at 2, only newline tokens advance the line, every read at
 * the end of input advances the column). */
#include <string.h>

#include "schema_ast.h"

static const char *const tok_names[] = {
#define TC__SCHEMA_TOK_NAME_(sym, name) name,
    TC__SCHEMA_TOKENS(TC__SCHEMA_TOK_NAME_)
#undef TC__SCHEMA_TOK_NAME_
};

const char *tc__schema_tok_name(int type) { return tok_names[type]; }

static void read_char(tc__schema_lexer_t *lx) {
  lx->ch = lx->rpos >= lx->n ? 0 : (unsigned char)lx->in[lx->rpos];
  lx->pos = lx->rpos;
  lx->rpos++;
  lx->col++;
}

static unsigned char peek_char(const tc__schema_lexer_t *lx) {
  return lx->rpos >= lx->n ? 0 : (unsigned char)lx->in[lx->rpos];
}

void tc__schema_lex_init(tc__schema_lexer_t *lx, const char *text) {
  memset(lx, 0, sizeof *lx);
  lx->in = text;
  lx->n = strlen(text);
  lx->line = 1;
  lx->col = 1;
  read_char(lx);
}

static int is_letter(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int keyword(const char *s, size_t n) {
  static const struct {
    const char *word;
    int type;
  } words[] = {
      {"entity", TC__TOK_ENTITY},     {"relation", TC__TOK_RELATION},
      {"action", TC__TOK_PERMISSION}, {"permission", TC__TOK_PERMISSION},
      {"rule", TC__TOK_RULE},         {"attribute", TC__TOK_ATTRIBUTE},
      {"and", TC__TOK_AND},           {"or", TC__TOK_OR},
      {"not", TC__TOK_NOT},           {"in", TC__TOK_IN},
      {"true", TC__TOK_BOOLEAN},      {"false", TC__TOK_BOOLEAN},
  };
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strlen(words[i].word) == n && memcmp(words[i].word, s, n) == 0) return words[i].type;
  return TC__TOK_IDENT;
}

static int single(unsigned char c) {
  switch (c) {
  case '\t': return TC__TOK_TAB;
  case ' ': return TC__TOK_SPACE;
  case ';': return TC__TOK_NEWLINE;
  case ':': return TC__TOK_COLON;
  case '=': return TC__TOK_ASSIGN;
  case '@': return TC__TOK_SIGN;
  case '(': return TC__TOK_LP;
  case ')': return TC__TOK_RP;
  case '{': return TC__TOK_LCB;
  case '}': return TC__TOK_RCB;
  case '[': return TC__TOK_LSB;
  case ']': return TC__TOK_RSB;
  case '+': return TC__TOK_PLUS;
  case '-': return TC__TOK_MINUS;
  case '*': return TC__TOK_TIMES;
  case '%': return TC__TOK_MOD;
  case '^': return TC__TOK_POW;
  case '>': return TC__TOK_GT;
  case '<': return TC__TOK_LT;
  case '!': return TC__TOK_EXCL;
  case '?': return TC__TOK_QM;
  case ',': return TC__TOK_COMMA;
  case '#': return TC__TOK_HASH;
  case '.': return TC__TOK_DOT;
  case '\'': return TC__TOK_APOS;
  case '&': return TC__TOK_AMPERSAND;
  default: return TC__TOK_ILLEGAL;
  }
}

/* The raw text of a string literal; a backslash always takes the next byte
 * with it, so an escaped quote does not end the literal. */
static void lex_string(tc__schema_lexer_t *lx, tc__schema_tok_t *tok) {
  read_char(lx);
  size_t start = lx->pos;
  while (lx->ch != '"' && lx->ch != 0) {
    if (lx->ch == '\\') {
      read_char(lx);
      if (lx->ch == 0) break;
    }
    read_char(lx);
  }
  tok->lit = lx->in + start;
  tok->len = lx->pos - start;
  if (lx->ch == '"') read_char(lx);
}

size_t tc__schema_unescape(char *dst, const char *raw, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (raw[i] != '\\') {
      dst[o++] = raw[i];
      continue;
    }
    if (++i == n) break;
    /* Permify drops a backslash and the byte after it unless it is one of
     * these four escapes. */
    switch (raw[i]) {
    case 'n': dst[o++] = '\n'; break;
    case 't': dst[o++] = '\t'; break;
    case '"': dst[o++] = '"'; break;
    case '\\': dst[o++] = '\\'; break;
    default: break;
    }
  }
  return o;
}

static void lex_comment(tc__schema_lexer_t *lx, tc__schema_tok_t *tok, int multi) {
  read_char(lx);
  read_char(lx);
  size_t start = lx->pos;
  tok->type = multi ? TC__TOK_MULTI_LINE_COMMENT : TC__TOK_SINGLE_LINE_COMMENT;
  tok->lit = lx->in + start;
  if (!multi) {
    while (lx->ch != '\n' && lx->ch != '\r' && lx->ch != 0) read_char(lx);
    tok->len = lx->pos - start;
    return;
  }
  while (!(lx->ch == '*' && peek_char(lx) == '/')) {
    if (lx->ch == 0) {
      tok->len = lx->pos - start;
      return;
    }
    read_char(lx);
  }
  tok->len = lx->pos - start;
  read_char(lx);
  read_char(lx);
}

void tc__schema_lex_next(tc__schema_lexer_t *lx, tc__schema_tok_t *tok) {
  tok->pos.line = lx->line;
  tok->pos.col = lx->col;
  tok->lit = lx->in + (lx->pos < lx->n ? lx->pos : lx->n);
  tok->len = 1;
  unsigned char c = lx->ch;
  if (c == '\n' || c == '\r') {
    lx->line++;
    lx->col = 1;
    tok->pos.line = lx->line;
    tok->pos.col = lx->col;
    tok->type = TC__TOK_NEWLINE;
  } else if (c == 0) {
    tok->type = TC__TOK_EOF;
    tok->len = 0;
  } else if (c == '/' && (peek_char(lx) == '/' || peek_char(lx) == '*')) {
    lex_comment(lx, tok, peek_char(lx) == '*');
    return;
  } else if (c == '"') {
    tok->type = TC__TOK_STRING;
    lex_string(lx, tok);
    return;
  } else if (is_letter(c)) {
    size_t start = lx->pos;
    while (is_letter(lx->ch)) read_char(lx);
    tok->len = lx->pos - start;
    tok->type = keyword(tok->lit, tok->len);
    return;
  } else if (is_digit(c)) {
    size_t start = lx->pos;
    int dot = 0;
    while (is_digit(lx->ch) || (!dot && lx->ch == '.')) {
      dot |= lx->ch == '.';
      read_char(lx);
    }
    tok->len = lx->pos - start;
    tok->type = dot ? TC__TOK_DOUBLE : TC__TOK_INTEGER;
    return;
  } else if (c == '/') {
    tok->type = TC__TOK_DIVIDE;
  } else {
    tok->type = single(c);
  }
  read_char(lx);
}
