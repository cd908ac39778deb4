/* The schema DSL parser, accepting what Permify's accepts: one token of
 * lookahead, Pratt-style expressions with and/or/not at one precedence, and
 * Permify's messages, positioned where its lexer stands when it reports. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_ast.h"

enum { PREC_LOWEST = 1, PREC_AND_OR_NOT = 2 };

typedef struct parser_s {
  tc_schema_t *s;
  tc__schema_lexer_t lx;
  tc__schema_tok_t prev, cur, peek;
  char **errmsg;
  int depth;
  size_t seq;
  int partial; /* one member statement on its own: no names are declared */
} parser_t;

/* ---- Arena helpers ------------------------------------------------------ */

static char *arena_strndup(tc_arena_t *a, const char *s, size_t n) {
  char *p = tc_arena_alloc(a, n + 1);
  if (p != NULL && n > 0) memcpy(p, s, n);
  return p;
}

/* Returns items (n elements of size elem, capacity *cap) or a zero-extended
 * copy with room for at least n + 1; NULL when out of memory.  The old array
 * stays in the arena: growth by doubling wastes at most as much as it keeps. */
static void *arena_grow(tc_arena_t *a, void *items, size_t n, size_t *cap, size_t elem) {
  if (n < *cap) return items;
  size_t ncap = *cap ? *cap * 2 : 4;
  if (ncap > SIZE_MAX / elem) return NULL;
  void *p = tc_arena_alloc(a, ncap * elem);
  if (p == NULL) return NULL;
  if (n > 0) memcpy(p, items, n * elem);
  *cap = ncap;
  return p;
}

/* Sets out to a new zeroed last element of arr, NULL when out of memory. */
#define PUSH(a, arr, n, cap, out)                                      \
  do {                                                                 \
    void *grown_ = arena_grow((a), (arr), (n), &(cap), sizeof *(arr)); \
    (out) = NULL;                                                      \
    if (grown_) {                                                      \
      (arr) = grown_;                                                  \
      (out) = &(arr)[(n)++];                                           \
    }                                                                  \
  } while (0)

/* ---- Tokens ------------------------------------------------------------- */

static int is_ignored(int type) {
  return type == TC__TOK_SINGLE_LINE_COMMENT || type == TC__TOK_MULTI_LINE_COMMENT ||
         type == TC__TOK_SPACE || type == TC__TOK_TAB;
}

static void next(parser_t *p) {
  tc__schema_tok_t t;
  do tc__schema_lex_next(&p->lx, &t);
  while (is_ignored(t.type));
  p->prev = p->cur;
  p->cur = p->peek;
  p->peek = t;
}

/* Rule bodies keep whitespace and comments. */
static void next_with_ignores(parser_t *p) {
  tc__schema_tok_t t;
  tc__schema_lex_next(&p->lx, &t);
  p->cur = p->peek;
  p->peek = t;
}

__attribute__((format(printf, 2, 3))) static int fail(parser_t *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  int head = snprintf(NULL, 0, "%d:%d:", p->lx.line, p->lx.col);
  char *msg = n < 0 ? NULL : malloc((size_t)head + (size_t)n + 1);
  if (msg == NULL) return TC_ENOMEM;
  snprintf(msg, (size_t)head + 1, "%d:%d:", p->lx.line, p->lx.col);
  va_start(ap, fmt);
  vsnprintf(msg + head, (size_t)n + 1, fmt, ap);
  va_end(ap);
  *p->errmsg = msg;
  return TC_ESCHEMA_PARSE;
}

static int peek_error(parser_t *p, int want) {
  return fail(p, "expected next token to be %s, got %s instead", tc__schema_tok_name(want),
              tc__schema_tok_name(p->peek.type));
}

static int current_error(parser_t *p, const char *want) {
  return fail(p, "expected token to be %s, got %s instead", want, tc__schema_tok_name(p->cur.type));
}

static int expect_and_next(parser_t *p, int want) {
  if (p->peek.type != want) return peek_error(p, want);
  next(p);
  return 0;
}

static int name_of(parser_t *p, const tc__schema_tok_t *t, tc__schema_name_t *out) {
  out->s = arena_strndup(&p->s->arena, t->lit, t->len);
  out->pos = t->pos;
  return out->s != NULL ? 0 : TC_ENOMEM;
}

/* Registers a name in Permify's shared namespaces. */
static int declare(parser_t *p, const char *entity, const char *member, int kind, void *value) {
  if (p->partial) return 0;
  int rc = tc__schema_table_put(&p->s->names, entity, member, kind, value);
  if (rc == TC_EUNIQUE)
    return member ? fail(p, "duplication found for %s#%s", entity, member)
                  : fail(p, "duplication found for %s", entity);
  return rc;
}

/* ---- Expressions --------------------------------------------------------- */

static int parse_expression(parser_t *p, int prec, tc__schema_expr_t **out);

static tc__schema_expr_t *new_expr(parser_t *p, int kind) {
  tc__schema_expr_t *e = tc_arena_alloc(&p->s->arena, sizeof *e);
  if (e != NULL) {
    e->kind = kind;
    e->height = 1;
  }
  return e;
}

static int push_segment(parser_t *p, tc__schema_expr_t *e) {
  tc__schema_name_t *seg;
  PUSH(&p->s->arena, e->names, e->n_names, e->cap_names, seg);
  return seg != NULL ? name_of(p, &p->cur, seg) : TC_ENOMEM;
}

/* IDENT { "." IDENT } with the current token on the first IDENT. */
static int parse_identifier(parser_t *p, tc__schema_expr_t **out) {
  if (p->cur.type != TC__TOK_IDENT) return current_error(p, "IDENT");
  tc__schema_expr_t *e = new_expr(p, TC__EXPR_IDENT);
  if (e == NULL) return TC_ENOMEM;
  int rc = push_segment(p, e);
  while (rc == 0 && p->peek.type == TC__TOK_DOT) {
    next(p);
    rc = expect_and_next(p, TC__TOK_IDENT);
    if (rc == 0) rc = push_segment(p, e);
  }
  *out = e;
  return rc;
}

static int push_argument(parser_t *p, tc__schema_expr_t *call) {
  tc__schema_expr_t *arg = NULL, **slot;
  int rc = parse_identifier(p, &arg);
  if (rc != 0) return rc;
  PUSH(&p->s->arena, call->args, call->n_args, call->cap_args, slot);
  if (slot == NULL) return TC_ENOMEM;
  *slot = arg;
  return 0;
}

/* name "(" [ identifier { "," identifier } ] ")" */
static int parse_call(parser_t *p, tc__schema_expr_t **out) {
  tc__schema_expr_t *e = new_expr(p, TC__EXPR_CALL);
  if (e == NULL) return TC_ENOMEM;
  *out = e;
  int rc = push_segment(p, e);
  if (rc == 0) rc = expect_and_next(p, TC__TOK_LP);
  if (rc != 0) return rc;
  if (p->peek.type == TC__TOK_RP) {
    next(p);
    return 0;
  }
  next(p);
  rc = push_argument(p, e);
  while (rc == 0 && p->peek.type == TC__TOK_COMMA) {
    next(p);
    rc = expect_and_next(p, TC__TOK_IDENT);
    if (rc == 0) rc = push_argument(p, e);
  }
  return rc != 0 ? rc : expect_and_next(p, TC__TOK_RP);
}

static int is_operator(int type) {
  return type == TC__TOK_AND || type == TC__TOK_OR || type == TC__TOK_NOT;
}

static int depth_error(parser_t *p) {
  return fail(p, "expression is nested deeper than %d levels", TC__SCHEMA_MAX_DEPTH);
}

static int parse_infix(parser_t *p, tc__schema_expr_t *left, tc__schema_expr_t **out) {
  tc__schema_expr_t *e = new_expr(p, TC__EXPR_INFIX);
  if (e == NULL) return TC_ENOMEM;
  e->op = p->cur.type == TC__TOK_AND  ? TC__OP_AND
          : p->cur.type == TC__TOK_OR ? TC__OP_OR
                                      : TC__OP_NOT;
  e->left = left;
  next(p);
  int rc = parse_expression(p, PREC_AND_OR_NOT, &e->right);
  if (rc != 0) return rc;
  int h = left->height > e->right->height ? left->height : e->right->height;
  e->height = h + 1;
  if (e->height > TC__SCHEMA_MAX_DEPTH) return depth_error(p);
  *out = e;
  return 0;
}

static int parse_expression(parser_t *p, int prec, tc__schema_expr_t **out) {
  int rc;
  /* An operator, "(", or "=" at the end of a line continues the expression
   * on the next one. */
  if (p->cur.type == TC__TOK_NEWLINE &&
      (p->prev.type == TC__TOK_LP || is_operator(p->prev.type) || p->prev.type == TC__TOK_ASSIGN))
    next(p);
  if (p->cur.type == TC__TOK_LP) {
    if (++p->depth > TC__SCHEMA_MAX_DEPTH) return depth_error(p);
    next(p);
    rc = parse_expression(p, PREC_LOWEST, out);
    if (rc != 0) return rc;
    if (p->peek.type != TC__TOK_RP) return peek_error(p, TC__TOK_RP);
    next(p);
    p->depth--;
  } else if (p->cur.type == TC__TOK_IDENT) {
    rc = p->peek.type == TC__TOK_LP ? parse_call(p, out) : parse_identifier(p, out);
    if (rc != 0) return rc;
  } else {
    return fail(p, "no prefix parse function for %s found", tc__schema_tok_name(p->cur.type));
  }
  while (p->peek.type != TC__TOK_NEWLINE && is_operator(p->peek.type) && prec < PREC_AND_OR_NOT) {
    next(p);
    rc = parse_infix(p, *out, out);
    if (rc != 0) return rc;
  }
  return 0;
}

/* ---- Statements ---------------------------------------------------------- */

static int new_member(parser_t *p, tc__schema_entity_t *e, int kind, tc__schema_member_t **out) {
  tc__schema_member_t *m = tc_arena_alloc(&p->s->arena, sizeof *m);
  tc__schema_member_t **slot;
  if (m == NULL) return TC_ENOMEM;
  PUSH(&p->s->arena, e->members, e->n_members, e->cap_members, slot);
  if (slot == NULL) return TC_ENOMEM;
  *slot = m;
  m->kind = kind;
  *out = m;
  int rc = expect_and_next(p, TC__TOK_IDENT);
  return rc != 0 ? rc : name_of(p, &p->cur, &m->name);
}

/* "relation" IDENT "@" IDENT [ "#" IDENT ] { "@" ... } */
static int parse_relation(parser_t *p, tc__schema_entity_t *e) {
  tc__schema_member_t *m;
  int rc = new_member(p, e, TC__SCHEMA_RELATION, &m);
  if (rc != 0) return rc;
  if (p->peek.type != TC__TOK_SIGN) return peek_error(p, TC__TOK_SIGN);
  while (p->peek.type == TC__TOK_SIGN) {
    tc__schema_ref_t *ref;
    next(p);
    if ((rc = expect_and_next(p, TC__TOK_IDENT)) != 0) return rc;
    PUSH(&p->s->arena, m->refs, m->n_refs, m->cap_refs, ref);
    if (ref == NULL || name_of(p, &p->cur, &ref->type) != 0) return TC_ENOMEM;
    ref->relation.s = "";
    if (p->peek.type == TC__TOK_HASH) {
      next(p);
      if ((rc = expect_and_next(p, TC__TOK_IDENT)) != 0) return rc;
      if (name_of(p, &p->cur, &ref->relation) != 0) return TC_ENOMEM;
    }
  }
  return declare(p, e->name.s, m->name.s, m->kind, m);
}

/* A type: IDENT [ "[" "]" ], with IDENT the next token. */
static int parse_type(parser_t *p, tc__schema_type_t *t) {
  int rc = expect_and_next(p, TC__TOK_IDENT);
  if (rc != 0 || (rc = name_of(p, &p->cur, &t->name)) != 0) return rc;
  if (p->peek.type == TC__TOK_LSB) {
    next(p);
    if ((rc = expect_and_next(p, TC__TOK_RSB)) != 0) return rc;
    t->is_array = 1;
  }
  return 0;
}

/* "attribute" IDENT type */
static int parse_attribute(parser_t *p, tc__schema_entity_t *e) {
  tc__schema_member_t *m;
  int rc = new_member(p, e, TC__SCHEMA_ATTRIBUTE, &m);
  if (rc == 0) rc = parse_type(p, &m->type);
  return rc != 0 ? rc : declare(p, e->name.s, m->name.s, m->kind, m);
}

/* ("permission" | "action") IDENT "=" expression */
static int parse_permission(parser_t *p, tc__schema_entity_t *e) {
  tc__schema_member_t *m;
  int rc = new_member(p, e, TC__SCHEMA_PERMISSION, &m);
  if (rc == 0) rc = declare(p, e->name.s, m->name.s, m->kind, m);
  if (rc == 0) rc = expect_and_next(p, TC__TOK_ASSIGN);
  if (rc != 0) return rc;
  next(p);
  p->depth = 0;
  return parse_expression(p, PREC_LOWEST, &m->expr);
}

static int parse_entity(parser_t *p) {
  tc__schema_entity_t *e = tc_arena_alloc(&p->s->arena, sizeof *e);
  if (e == NULL) return TC_ENOMEM;
  e->seq = p->seq++;
  int rc = expect_and_next(p, TC__TOK_IDENT);
  if (rc == 0) rc = name_of(p, &p->cur, &e->name);
  if (rc == 0) rc = declare(p, e->name.s, NULL, TC__SCHEMA_ENTITY, e);
  if (rc == 0) rc = expect_and_next(p, TC__TOK_LCB);
  while (rc == 0 && p->cur.type != TC__TOK_RCB) {
    switch (p->cur.type) {
    case TC__TOK_EOF: return current_error(p, "RCB");
    case TC__TOK_RELATION: rc = parse_relation(p, e); break;
    case TC__TOK_ATTRIBUTE: rc = parse_attribute(p, e); break;
    case TC__TOK_PERMISSION: rc = parse_permission(p, e); break;
    case TC__TOK_NEWLINE:
    case TC__TOK_LCB: break;
    default: return current_error(p, "RELATION, PERMISSION, ATTRIBUTE");
    }
    if (rc == 0) next(p);
  }
  if (rc != 0) return rc;
  tc__schema_entity_t **slot;
  PUSH(&p->s->arena, p->s->entities, p->s->n_entities, p->s->cap_entities, slot);
  if (slot == NULL) return TC_ENOMEM;
  *slot = e;
  return 0;
}

/* Appends a body token as Permify does: literals only, so string literals
 * lose their quotes and comments their markers. */
static int append_body(char **buf, size_t *len, size_t *cap, const tc__schema_tok_t *t) {
  if (*cap - *len < t->len + 1) {
    size_t ncap = (*cap ? *cap : 64);
    while (ncap - *len < t->len + 1) ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (nb == NULL) return TC_ENOMEM;
    *buf = nb;
    *cap = ncap;
  }
  if (t->type == TC__TOK_STRING) {
    *len += tc__schema_unescape(*buf + *len, t->lit, t->len);
  } else {
    memcpy(*buf + *len, t->lit, t->len);
    *len += t->len;
  }
  (*buf)[*len] = '\0';
  return 0;
}

/* Permify collects the body from the first token after "{" (spaces before it
 * skipped) up to, but not including, the token just before "}". */
static int parse_rule_body(parser_t *p, tc__schema_rule_t *r) {
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;
  next(p);
  while (p->peek.type != TC__TOK_RCB) {
    if (p->peek.type == TC__TOK_EOF) {
      rc = peek_error(p, TC__TOK_RCB);
      break;
    }
    if ((rc = append_body(&buf, &len, &cap, &p->cur)) != 0) break;
    next_with_ignores(p);
  }
  if (rc == 0) {
    r->body = arena_strndup(&p->s->arena, buf ? buf : "", len);
    rc = r->body != NULL ? 0 : TC_ENOMEM;
  }
  free(buf);
  return rc;
}

/* "rule" IDENT "(" [ IDENT type { "," IDENT type } ] ")" "{" body "}" */
static int parse_rule(parser_t *p) {
  tc__schema_rule_t *r = tc_arena_alloc(&p->s->arena, sizeof *r);
  if (r == NULL) return TC_ENOMEM;
  r->seq = p->seq++;
  int rc = expect_and_next(p, TC__TOK_IDENT);
  if (rc == 0) rc = name_of(p, &p->cur, &r->name);
  if (rc == 0) rc = expect_and_next(p, TC__TOK_LP);
  while (rc == 0 && p->peek.type != TC__TOK_RP) {
    tc__schema_param_t *prm;
    if ((rc = expect_and_next(p, TC__TOK_IDENT)) != 0) break;
    PUSH(&p->s->arena, r->params, r->n_params, r->cap_params, prm);
    if (prm == NULL || name_of(p, &p->cur, &prm->name) != 0) return TC_ENOMEM;
    if ((rc = parse_type(p, &prm->type)) != 0) break;
    if (p->peek.type == TC__TOK_COMMA)
      next(p);
    else if (p->peek.type != TC__TOK_RP)
      rc = peek_error(p, TC__TOK_RP);
  }
  if (rc != 0) return rc;
  next(p);
  if ((rc = expect_and_next(p, TC__TOK_LCB)) != 0 || (rc = parse_rule_body(p, r)) != 0 ||
      (rc = expect_and_next(p, TC__TOK_RCB)) != 0 ||
      (rc = declare(p, r->name.s, NULL, TC__SCHEMA_RULE, r)) != 0)
    return rc;
  tc__schema_rule_t **slot;
  PUSH(&p->s->arena, p->s->rules, p->s->n_rules, p->s->cap_rules, slot);
  if (slot == NULL) return TC_ENOMEM;
  *slot = r;
  return 0;
}

int tc__schema_parse(tc_schema_t *s, const char *text, char **errmsg) {
  parser_t p;
  memset(&p, 0, sizeof p);
  p.s = s;
  p.errmsg = errmsg;
  tc__schema_lex_init(&p.lx, text);
  /* Like Permify, start with empty current and peek tokens: the first two
   * rounds only shift the input in. */
  while (p.cur.type != TC__TOK_EOF) {
    int rc = 0;
    if (p.cur.type == TC__TOK_ENTITY)
      rc = parse_entity(&p);
    else if (p.cur.type == TC__TOK_RULE)
      rc = parse_rule(&p);
    if (rc != 0) return rc;
    next(&p);
  }
  return 0;
}

/* Permify's partial parse: tokens are passed over until the first
 * "relation", "attribute" or "permission", whose statement is the result;
 * whatever follows it is not read. */
int tc__schema_parse_member(tc_schema_t *s, const char *entity, const char *text,
                            tc__schema_member_t **out, char **errmsg) {
  parser_t p;
  memset(&p, 0, sizeof p);
  p.s = s;
  p.errmsg = errmsg;
  p.partial = 1;
  tc__schema_entity_t e = {.name = {.s = entity}};
  tc__schema_lex_init(&p.lx, text);
  for (; p.cur.type != TC__TOK_EOF; next(&p)) {
    int rc;
    switch (p.cur.type) {
    case TC__TOK_RELATION: rc = parse_relation(&p, &e); break;
    case TC__TOK_ATTRIBUTE: rc = parse_attribute(&p, &e); break;
    case TC__TOK_PERMISSION: rc = parse_permission(&p, &e); break;
    default: continue;
    }
    if (rc == 0) *out = e.members[e.n_members - 1];
    return rc;
  }
  *errmsg = strdup("no valid statement found");
  return *errmsg ? TC_ESCHEMA_PARSE : TC_ENOMEM;
}
