/* Schema statements as text, laid out as Permify serialises them when it
 * stores a schema, so that a schema rebuilt from them compiles with the same
 * error positions as Permify's. */
#include <stdio.h>

#include "schema_ast.h"

static const char *op_name(int op) {
  return op == TC__OP_AND ? "and" : op == TC__OP_OR ? "or" : "not";
}

static void print_ident(FILE *f, const tc__schema_expr_t *x) {
  for (size_t i = 0; i < x->n_names; i++) fprintf(f, "%s%s", i ? "." : "", x->names[i].s);
}

/* Every operator in parentheses; calls as name(a, b). */
static void print_expr(FILE *f, const tc__schema_expr_t *x) {
  if (x->kind == TC__EXPR_INFIX) {
    fputc('(', f);
    print_expr(f, x->left);
    fprintf(f, " %s ", op_name(x->op));
    print_expr(f, x->right);
    fputc(')', f);
  } else if (x->kind == TC__EXPR_CALL) {
    fprintf(f, "%s(", x->names[0].s);
    for (size_t i = 0; i < x->n_args; i++) {
      if (i) fputs(", ", f);
      print_ident(f, x->args[i]);
    }
    fputc(')', f);
  } else {
    print_ident(f, x);
  }
}

static void print_type(FILE *f, const tc__schema_type_t *t) {
  fprintf(f, "%s%s", t->name.s, t->is_array ? "[]" : "");
}

void tc__schema_print_member(FILE *f, const tc__schema_member_t *m) {
  if (m->kind == TC__SCHEMA_RELATION) {
    fprintf(f, "\trelation %s ", m->name.s);
    for (size_t i = 0; i < m->n_refs; i++) {
      const tc__schema_ref_t *r = &m->refs[i];
      fprintf(f, "@%s%s%s ", r->type.s, *r->relation.s ? "#" : "", r->relation.s);
    }
  } else if (m->kind == TC__SCHEMA_ATTRIBUTE) {
    fprintf(f, "\tattribute %s ", m->name.s);
    print_type(f, &m->type);
  } else {
    fprintf(f, "\tpermission %s = ", m->name.s);
    print_expr(f, m->expr);
  }
}

/* Parameters in source order (Permify's own order is its map's, which
 * varies from run to run). */
void tc__schema_print_rule(FILE *f, const tc__schema_rule_t *r) {
  fprintf(f, "rule %s(", r->name.s);
  for (size_t i = 0; i < r->n_params; i++) {
    fprintf(f, "%s%s ", i ? ", " : "", r->params[i].name.s);
    print_type(f, &r->params[i].type);
  }
  fprintf(f, ") {\n\t%s\n}", r->body);
}
