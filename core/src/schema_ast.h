/* Internals of the schema DSL shared by the schema_*.c files: the name table,
 * tokens, the lexer, the syntax tree and the stages of tc_schema_compile.
 *
 * Ownership: everything in a tc_schema_t lives in its arena and name table
 * and is released together by tc_schema_free.
 */
#ifndef TC_SCHEMA_AST_H
#define TC_SCHEMA_AST_H

#include <stddef.h>
#include <stdio.h>

#include "arena.h"
#include "schema.h"

/* Expression trees deeper than this (by nesting or by operator chains) are
 * refused, so that recursive passes over them cannot exhaust the stack. */
#define TC__SCHEMA_MAX_DEPTH 1000

/* ---- Name table: Permify's shared namespaces ----------------------------- */

/* Entities and rules are keyed by name (member NULL); relations,
 * permissions and attributes by (entity, member), Permify's "entity#member". */
enum tc__schema_kind {
  TC__SCHEMA_RELATION = 1, /* = EntityDefinition.Reference values */
  TC__SCHEMA_PERMISSION = 2,
  TC__SCHEMA_ATTRIBUTE = 3,
  TC__SCHEMA_ENTITY = 4,
  TC__SCHEMA_RULE = 5
};

typedef struct tc__schema_slot_s {
  const char *name, *member; /* borrowed; NULL name = empty slot */
  int kind;
  void *value;
} tc__schema_slot_t;

typedef struct tc__schema_table_s {
  tc__schema_slot_t *slots;
  size_t cap, n;
} tc__schema_table_t;

/* 0, TC_EUNIQUE if the key is taken, or TC_ENOMEM. */
int tc__schema_table_put(tc__schema_table_t *t, const char *name, const char *member, int kind,
                         void *value);
const tc__schema_slot_t *tc__schema_table_get(const tc__schema_table_t *t, const char *name,
                                              const char *member);
void tc__schema_table_free(tc__schema_table_t *t);

/* ---- Tokens and lexer (Permify's token set) -------------------------------- */

/* clang-format off */
#define TC__SCHEMA_TOKENS(X)                                                   \
  X(NONE, "") X(EOF, "EOF") X(ILLEGAL, "ILLEGAL") X(NEWLINE, "NEWLINE")         \
  X(IDENT, "IDENT") X(STRING, "STRING") X(INTEGER, "INTEGER")                  \
  X(DOUBLE, "DOUBLE") X(BOOLEAN, "BOOLEAN") X(COMMA, "COMMA") X(LCB, "LCB")    \
  X(RCB, "RCB") X(LP, "LP") X(RP, "RP") X(ASSIGN, "ASSIGN") X(SIGN, "SIGN")    \
  X(COLON, "COLON") X(HASH, "HASH") X(QM, "QM") X(DOT, "DOT") X(LSB, "LSB")    \
  X(RSB, "RSB") X(EXCL, "EXCL") X(PLUS, "PLUS") X(MINUS, "MINUS")              \
  X(TIMES, "TIMES") X(DIVIDE, "DIVIDE") X(MOD, "MOD") X(POW, "POW")            \
  X(GT, "GT") X(LT, "LT") X(APOS, "APOSTROPHE") X(AMPERSAND, "AMPERSAND")      \
  X(ENTITY, "ENTITY") X(RELATION, "RELATION") X(PERMISSION, "PERMISSION")      \
  X(ATTRIBUTE, "ATTRIBUTE") X(RULE, "RULE") X(AND, "AND") X(OR, "OR")          \
  X(NOT, "NOT") X(IN, "IN") X(SINGLE_LINE_COMMENT, "SINGLE_LINE_COMMENT")      \
  X(MULTI_LINE_COMMENT, "MULTI_LINE_COMMENT") X(SPACE, "SPACE") X(TAB, "TAB")
/* clang-format on */

enum tc__schema_tok_type {
#define TC__SCHEMA_TOK_ENUM_(sym, name) TC__TOK_##sym,
  TC__SCHEMA_TOKENS(TC__SCHEMA_TOK_ENUM_)
#undef TC__SCHEMA_TOK_ENUM_
};

typedef struct tc__schema_pos_s {
  int line, col; /* Permify's numbering: columns start at 2 */
} tc__schema_pos_t;

typedef struct tc__schema_tok_s {
  int type;
  tc__schema_pos_t pos;
  const char *lit; /* into the input; a STRING's raw text between quotes */
  size_t len;
} tc__schema_tok_t;

typedef struct tc__schema_lexer_s {
  const char *in;
  size_t n, pos, rpos;
  int line, col;
  unsigned char ch;
} tc__schema_lexer_t;

void tc__schema_lex_init(tc__schema_lexer_t *lx, const char *text);
void tc__schema_lex_next(tc__schema_lexer_t *lx, tc__schema_tok_t *tok);
const char *tc__schema_tok_name(int type);
/* Appends the value of a STRING token's raw text (escapes resolved as
 * Permify's lexer does) to dst, which has room for n bytes; returns the
 * length written. */
size_t tc__schema_unescape(char *dst, const char *raw, size_t n);

/* ---- Syntax tree --------------------------------------------------------- */

typedef struct tc__schema_name_s {
  const char *s;
  tc__schema_pos_t pos;
} tc__schema_name_t;

/* A DSL type: boolean|string|integer|double, optionally []. */
typedef struct tc__schema_type_s {
  tc__schema_name_t name;
  int is_array;
  int attr_type; /* Base__V1__AttributeType; set by the checker */
} tc__schema_type_t;

enum tc__schema_expr_kind { TC__EXPR_IDENT, TC__EXPR_CALL, TC__EXPR_INFIX };
enum tc__schema_op { TC__OP_AND, TC__OP_OR, TC__OP_NOT };

typedef struct tc__schema_expr_s tc__schema_expr_t;
struct tc__schema_expr_s {
  int kind, op;
  tc__schema_expr_t *left, *right; /* infix */
  tc__schema_name_t *names;        /* ident: the dotted segments; call: the rule */
  size_t n_names, cap_names;
  tc__schema_expr_t **args; /* call: identifiers */
  size_t n_args, cap_args;
  int height;
};

typedef struct tc__schema_ref_s {
  tc__schema_name_t type, relation; /* relation.s "" = direct */
} tc__schema_ref_t;

typedef struct tc__schema_member_s {
  int kind; /* TC__SCHEMA_RELATION / PERMISSION / ATTRIBUTE */
  tc__schema_name_t name;
  tc__schema_ref_t *refs; /* relation */
  size_t n_refs, cap_refs;
  tc__schema_type_t type;  /* attribute */
  tc__schema_expr_t *expr; /* permission */
  unsigned visit;          /* checker's walk marker */
} tc__schema_member_t;

typedef struct tc__schema_entity_s {
  tc__schema_name_t name;
  tc__schema_member_t **members; /* source order */
  size_t n_members, cap_members;
  size_t seq; /* statement number */
} tc__schema_entity_t;

typedef struct tc__schema_param_s {
  tc__schema_name_t name;
  tc__schema_type_t type;
} tc__schema_param_t;

typedef struct tc__schema_rule_s {
  tc__schema_name_t name;
  tc__schema_param_t *params; /* source order, duplicates kept */
  size_t n_params, cap_params;
  const char *body; /* the CEL text as Permify assembles it */
  size_t seq;
} tc__schema_rule_t;

struct tc_schema_s {
  tc_arena_t arena; /* the syntax tree and its strings */
  tc__schema_table_t names;
  tc__schema_entity_t **entities;
  size_t n_entities, cap_entities;
  tc__schema_rule_t **rules;
  size_t n_rules, cap_rules;
};

/* The parameter a rule binds to name (the last one, as in Permify's map),
 * or NULL. */
const tc__schema_param_t *tc__schema_rule_param(const tc__schema_rule_t *r, const char *name);
/* Number of distinct parameter names. */
size_t tc__schema_rule_arity(const tc__schema_rule_t *r);

/* ---- Compile stages ------------------------------------------------------ */

/* Fills s from text.  0, TC_ENOMEM, or TC_ESCHEMA_PARSE with *errmsg. */
int tc__schema_parse(tc_schema_t *s, const char *text, char **errmsg);
/* Parses the first relation, attribute or permission statement in text as a
 * member of entity, allocated in s's arena (s's names are not touched).  0,
 * TC_ENOMEM, or TC_ESCHEMA_PARSE with *errmsg (Permify's "no valid statement
 * found" when text holds none). */
int tc__schema_parse_member(tc_schema_t *s, const char *entity, const char *text,
                            tc__schema_member_t **out, char **errmsg);
/* A member or a rule as Permify serialises it (schema_print.c); the members
 * go one a line between "entity NAME {" and "}", relations first, then
 * attributes, then permissions. */
void tc__schema_print_member(FILE *f, const tc__schema_member_t *m);
void tc__schema_print_rule(FILE *f, const tc__schema_rule_t *r);
/* Reference and type checks over a parsed schema; sets attribute and
 * parameter types.  0, TC_ENOMEM, or TC_ESCHEMA_COMPILE with *errmsg. */
int tc__schema_check(tc_schema_t *s, char **errmsg);

#endif
