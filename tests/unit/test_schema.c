/* Schema DSL: valid schemas, Permify's exact parse and compile errors, and
 * robustness against hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "case13_schema.h"
#include "example_schema.h"
#include "schema_ast.h"

static tc_schema_t *compile_ok(const char *text) {
  tc_schema_t *s = NULL;
  char *err = NULL;
  int rc = tc_schema_compile(text, &s, &err);
  if (rc != 0) fail_msg("unexpected error %d: %s", rc, err ? err : "(none)");
  assert_null(err);
  assert_non_null(s);
  return s;
}

static void expect_error(const char *text, int code, const char *msg) {
  tc_schema_t *s = NULL;
  char *err = NULL;
  int rc = tc_schema_compile(text, &s, &err);
  assert_null(s);
  assert_non_null(err);
  assert_string_equal(err, msg);
  assert_int_equal(rc, code);
  free(err);
}

#define PARSE TC_ESCHEMA_PARSE
#define COMPILE TC_ESCHEMA_COMPILE

static const tc__schema_entity_t *entity(const tc_schema_t *s, const char *name) {
  const tc__schema_slot_t *slot = tc__schema_table_get(&s->names, name, NULL);
  assert_non_null(slot);
  assert_int_equal(slot->kind, TC__SCHEMA_ENTITY);
  return slot->value;
}

static const tc__schema_member_t *member(const tc_schema_t *s, const char *e, const char *m) {
  const tc__schema_slot_t *slot = tc__schema_table_get(&s->names, e, m);
  assert_non_null(slot);
  return slot->value;
}

/* Renders an expression as Permify's AST String() does. */
static void render(const tc__schema_expr_t *x, char *buf, size_t size) {
  static const char *const ops[] = {"and", "or", "not"};
  size_t n = strlen(buf);
  if (x->kind == TC__EXPR_INFIX) {
    snprintf(buf + n, size - n, "(");
    render(x->left, buf, size);
    n = strlen(buf);
    snprintf(buf + n, size - n, " %s ", ops[x->op]);
    render(x->right, buf, size);
    n = strlen(buf);
    snprintf(buf + n, size - n, ")");
    return;
  }
  for (size_t i = 0; i < x->n_names; i++) {
    n = strlen(buf);
    snprintf(buf + n, size - n, "%s%s", i ? "." : "", x->names[i].s);
  }
  if (x->kind == TC__EXPR_CALL) {
    n = strlen(buf);
    snprintf(buf + n, size - n, "(");
    for (size_t i = 0; i < x->n_args; i++) {
      n = strlen(buf);
      snprintf(buf + n, size - n, "%s", i ? ", " : "");
      render(x->args[i], buf, size);
    }
    n = strlen(buf);
    snprintf(buf + n, size - n, ")");
  }
}

static void expect_expr(const tc_schema_t *s, const char *e, const char *p, const char *want) {
  char buf[1024] = "";
  const tc__schema_member_t *m = member(s, e, p);
  assert_int_equal(m->kind, TC__SCHEMA_PERMISSION);
  render(m->expr, buf, sizeof buf);
  assert_string_equal(buf, want);
}

/* ---- Valid schemas ------------------------------------------------------- */

static const char *const example = TT_EXAMPLE_SCHEMA;

static void test_example(void **state) {
  (void)state;
  tc_schema_t *s = compile_ok(example);
  assert_int_equal(s->n_entities, 3);
  assert_int_equal(s->n_rules, 0);
  const tc__schema_member_t *m = member(s, "organization", "member");
  assert_int_equal(m->kind, TC__SCHEMA_RELATION);
  assert_int_equal(m->n_refs, 2);
  assert_string_equal(m->refs[0].type.s, "user");
  assert_string_equal(m->refs[0].relation.s, "");
  assert_string_equal(m->refs[1].type.s, "organization");
  assert_string_equal(m->refs[1].relation.s, "admin");
  m = member(s, "organization", "ip_range");
  assert_int_equal(m->type.attr_type, BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_STRING_ARRAY);
  expect_expr(s, "repository", "edit", "(parent.admin or owner)");
  expect_expr(s, "repository", "read", "(is_public or edit)");
  assert_int_equal(entity(s, "repository")->n_members, 5);
  tc_schema_free(s);
}

/* Permify's parser cases 1, 2, 6 and 9 with their expected trees. */
static void test_precedence_and_parentheses(void **state) {
  (void)state;
  tc_schema_t *s = compile_ok(
      "entity user {}\n"
      "entity organization {\n"
      "  relation admin @user\n"
      "  relation member @user\n"
      "  action manage = (((admin not member) or member) not (admin and member))\n"
      "  permission chain = admin and member or admin not member\n"
      "}\n"
      "entity repository {\n"
      "  relation parent @organization\n"
      "  relation owner @user @organization#member\n"
      "  action read = owner and (parent.admin not parent.member)\n"
      "  action write = (owner and parent.admin) and parent.member\n"
      "  permission x = (owner and (parent.admin not parent.member)) or owner\n"
      "  permission y = ((((owner))))\n"
      "}\n");
  expect_expr(s, "organization", "manage",
              "(((admin not member) or member) not (admin and member))");
  expect_expr(s, "organization", "chain", "(((admin and member) or admin) not member)");
  expect_expr(s, "repository", "read", "(owner and (parent.admin not parent.member))");
  expect_expr(s, "repository", "write", "((owner and parent.admin) and parent.member)");
  expect_expr(s, "repository", "x", "((owner and (parent.admin not parent.member)) or owner)");
  expect_expr(s, "repository", "y", "owner");
  tc_schema_free(s);
}

static void test_comments_separators_and_lines(void **state) {
  (void)state;
  tc_schema_t *s = compile_ok(
      "// leading comment\n"
      "/* block\n comment */ entity user {}\n"
      "entity doc { relation owner @user; relation editor @user // trailing\n"
      "  permission edit = owner or /* inline */ editor; action view = edit }\n"
      "entity folder {\r\n"
      "  relation owner @user\r\n"
      "  permission a = owner or\n"
      "    owner\n"
      "  permission b =\n"
      "    owner\n"
      "  permission c = (\n"
      "    owner)\n"
      "}\n"
      "garbage at top level is skipped\n");
  expect_expr(s, "doc", "edit", "(owner or editor)");
  expect_expr(s, "doc", "view", "edit");
  expect_expr(s, "folder", "a", "(owner or owner)");
  expect_expr(s, "folder", "b", "owner");
  expect_expr(s, "folder", "c", "owner");
  tc_schema_free(s);
}

/* Permify's parser cases 15 and 24 (rule bodies) and compiler case 15. */
static void test_rules(void **state) {
  (void)state;
  tc_schema_t *s = compile_ok(
      "\n\t\t\tentity user {}\n"
      "\t\t\tentity account {\n"
      "    \t\t\trelation owner @user\n"
      "    \t\t\tattribute balance integer\n"
      "    \t\t\tattribute location string[]\n"
      "    \t\t\tpermission withdraw = check_balance(balance) and owner\n"
      "    \t\t\tpermission here = check_location(location) or owner\n"
      "\t\t\t}\n"
      "\t\n"
      "\t\t\trule check_balance(balance integer) {\n"
      "\t\t\t\tbalance >= context.data.amount && context.data.amount <= 5000\n"
      "\t\t\t}\n"
      "\t\t\trule check_location(location string[]) {\n"
      "\t\t\t\t\"here\" in location // \"quoted\"\n"
      "\t\t\t}\n"
      "\t\t\t");
  assert_int_equal(s->n_rules, 2);
  assert_string_equal(s->rules[0]->body,
                      "\nbalance >= context.data.amount && context.data.amount <= 5000\n\t\t");
  /* Permify re-assembles literals: quotes and comment markers are lost. */
  assert_string_equal(s->rules[1]->body, "\nhere in location  \"quoted\"\n\t\t");
  assert_int_equal(s->rules[0]->params[0].type.attr_type,
                   BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_INTEGER);
  expect_expr(s, "account", "withdraw", "(check_balance(balance) and owner)");
  expect_expr(s, "account", "here", "(check_location(location) or owner)");
  tc_schema_free(s);
}

static void test_walks_through_subject_relations(void **state) {
  (void)state;
  /* Permify's compiler case 13, plus a reference cycle, which Permify would
   * walk forever. */
  tc_schema_t *s = compile_ok(TT_CASE13_SCHEMA_OPEN
                              "  permission edit = parent.owner or owner\n"
                              "  permission delete = edit\n"
                              "}\n"
                              "entity person { relation member @usertype }\n"
                              "entity group { relation member @person @group#member }\n"
                              "entity team {\n"
                              "  relation group @group#member\n"
                              "  permission v = group.member\n"
                              "}\n");
  expect_expr(s, "repository", "edit", "(parent.owner or owner)");
  expect_expr(s, "team", "v", "group.member");
  tc_schema_free(s);
}

/* ---- Parse errors (Permify's parser tests) ------------------------------- */

static void test_parse_errors(void **state) {
  (void)state;
  expect_error("\n\t\t\tentity & {\n\t\t\t", PARSE,
               "2:13:expected next token to be IDENT, got AMPERSAND instead");
  expect_error("\n\t\t\tentity asd \n\t\t\t", PARSE,
               "3:2:expected next token to be LCB, got NEWLINE instead");
  expect_error("\n\t\t\tentity asd {\n\t\t\t", PARSE,
               "3:7:expected token to be RCB, got EOF instead");
  expect_error("\n\t\t\tentity asd {\n\n\t\t\t\tattribute 987d bool\t\t\t\t\n\n\t\t\t", PARSE,
               "4:19:expected next token to be IDENT, got INTEGER instead");
  expect_error("\n\t\t\tentity asd {\n\n\t\t\t\trelation user user\t\t\t\t\n\n\t\t\t", PARSE,
               "4:24:expected next token to be SIGN, got IDENT instead");
  expect_error(
      "\n\t\t\tentity asd {\n\n\t\t\t\trelation user @\n"
      "\t\t\t\trelation admin @user\n\n\t\t\t",
      PARSE, "5:2:expected next token to be IDENT, got NEWLINE instead");
  expect_error(
      "\n\t\t\tentity asd {\n\n\t\t\t\trelation admin @user\n\n"
      "\t\t\t\tpermission = admin\n\t\t\t",
      PARSE, "6:18:expected next token to be IDENT, got ASSIGN instead");
  expect_error(
      "\n\t\t\tentity account {\n"
      "    \t\t\trelation owner @user\n"
      "    \t\t\tattribute balance float\n\n"
      "    \t\t\tpermission withdraw = check_balance(request.amount, balance)\n"
      "\t\t\t\t\towner\n"
      "\t\t\t}\n",
      PARSE, "8:2:expected token to be RELATION, PERMISSION, ATTRIBUTE, got IDENT instead");
  expect_error(
      "\n\t\t\tentity account {\n"
      "    \t\t\trelation owner @user\n"
      "    \t\t\trelation admin @user\n\n"
      "    \t\t\tpermission withdraw = admin \n"
      "\t\t\t\t\tor owner\n"
      "\t\t\t}\n\t\t\t",
      PARSE, "7:15:expected token to be RELATION, PERMISSION, ATTRIBUTE, got OR instead");
}

static void test_parse_errors_more(void **state) {
  (void)state;
  expect_error("entity a {\n  permission p = \n\n  b\n}", PARSE,
               "4:5:no prefix parse function for NEWLINE found");
  expect_error("entity a { relation r @user }\nentity a {}", PARSE, "2:12:duplication found for a");
  expect_error("entity a { relation r @a\n relation r @a }", PARSE,
               "2:18:duplication found for a#r");
  expect_error("entity a { relation r @a\n permission r = r }", PARSE,
               "2:17:duplication found for a#r");
  expect_error("entity a { relation r @a\n attribute r boolean }", PARSE,
               "2:24:duplication found for a#r");
  expect_error("entity a {}\nrule a(x string) {\n x\n}", PARSE, "4:4:duplication found for a");
  expect_error("entity a { relation r @a permission p = (r or r }", PARSE,
               "1:51:expected next token to be RP, got RCB instead");
  expect_error("entity a { relation r @a permission p = r or }", PARSE,
               "1:49:no prefix parse function for RCB found");
  expect_error("entity a { relation r @a permission p = r(r, ) }", PARSE,
               "1:48:expected next token to be IDENT, got RP instead");
  expect_error("entity a { attribute x string[ }", PARSE,
               "1:34:expected next token to be RSB, got RCB instead");
  expect_error("rule r(x string y string) {\n}", PARSE,
               "1:19:expected next token to be RP, got IDENT instead");
  expect_error("rule r(x string) {\n x > 1", PARSE,
               "2:9:expected next token to be RCB, got EOF instead");
  expect_error("entity a {\n  relation r @a\n  $\n}", PARSE,
               "4:2:expected token to be RELATION, PERMISSION, ATTRIBUTE, got ILLEGAL instead");
}

/* ---- Compile errors ------------------------------------------------------ */

static void test_compile_errors(void **state) {
  (void)state;
  /* Permify's compiler cases 5, 6 and 14. */
  expect_error(
      "\n\t\t\tentity user {}\n\t\t\n\t\t\tentity organization {\n\t\t\n"
      "\t\t\t\trelation owner @user\n\t\t\t\trelation admin @user\n\t\t\n"
      "\t\t\t\tpermission update = maintainer or admin\n\t\t\t}\n\t\t\t",
      COMPILE, "9:26: undefined relation reference");
  expect_error(
      "\n\t\t\tentity user {}\n\t\t\n\t\t\tentity parent {\n\t\t\n"
      "\t\t\t\trelation admin @user\n\t\t\t}\n\t\t\n"
      "\t\t\tentity organization {\n\t\t\n"
      "\t\t\t\trelation parent @parent\n\t\t\t\trelation admin @user\n\t\t\t}\n\t\t\n"
      "\t\t\tentity repository {\n\t\t\n"
      "\t\t\t\trelation parent @organization\n"
      "\t\t\t\tpermission update = parent.parent.admin or admin\n\t\t\t}\n\t\t\t",
      COMPILE, "18:40: not supported relation walk");
  expect_error(
      "\n\t\t\tentity usertype {}\n\n\t\t\tentity company {}\n\n"
      "\t\t\tentity organization {\n    \t\t\trelation parent @company\n\t\t\t}\n\n"
      "\t\t\tentity repository {\n\n"
      "    \t\t\trelation parent @organization#parent\n"
      "    \t\t\trelation owner  @usertype\n\n"
      "    \t\t\tpermission edit   = parent.owner or owner\n\t\t\t} \n\t\t\t",
      COMPILE, "15:36: undefined relation reference");
}

static void test_compile_errors_more(void **state) {
  (void)state;
  expect_error("", COMPILE, "1:1: no entity references found in schema");
  expect_error("// nothing\nrule r(x string) {\n x\n}\n", COMPILE,
               "1:1: no entity references found in schema");
  expect_error("entity a {\n relation r @b\n}", COMPILE,
               "2:15: relation reference not found in entity references");
  expect_error("entity a {\n relation r @a#s\n}", COMPILE,
               "2:15: relation reference not found in entity references");
  expect_error(
      "entity a { relation r @a\n permission p = r }\n"
      "entity b {\n relation s @a#p\n}",
      COMPILE, "4:15: relation reference not found in entity references");
  expect_error(
      "entity a {}\nrule r(x string) {\n x\n}\n"
      "entity b {\n relation s @r\n}",
      COMPILE, "6:15: relation reference not found in entity references");
  expect_error("entity a {\n attribute x float\n}", COMPILE, "2:15: invalid argument");
  expect_error("entity a {\n attribute x string\n permission p = x\n}", COMPILE,
               "3:18: schema compile");
  expect_error("entity a {\n attribute x boolean[]\n permission p = x\n}", COMPILE,
               "3:18: schema compile");
  /* Every type reachable through @group#member needs the relation. */
  expect_error(
      "entity user {}\n"
      "entity group { relation member @user @group#member }\n"
      "entity team {\n"
      "  relation group @group#member\n"
      "  permission v = group.member\n"
      "}\n",
      COMPILE, "5:25: undefined relation reference");
  expect_error("entity a {\n attribute x boolean\n permission p = x.y\n}", COMPILE,
               "3:18: undefined relation reference");
  expect_error(
      "entity u {\n attribute y boolean\n}\n"
      "entity a {\n relation x @u\n permission p = x.y\n}",
      COMPILE, "6:20: undefined relation reference");
  expect_error("entity a {\n relation x @a\n permission p = f(x)\n}", COMPILE,
               "3:18: invalid rule reference");
  expect_error("entity a {\n attribute x integer\n permission p = a(x)\n}", COMPILE,
               "3:18: invalid rule reference");
  expect_error(
      "entity a {\n attribute x integer\n permission p = f(x)\n}\n"
      "rule f(x integer, y integer) {\n x > y\n}",
      COMPILE, "3:18: missing argument");
  expect_error("entity a {\n permission p = f()\n}\nrule f() {\n true\n}", COMPILE,
               "2:18: missing argument");
  expect_error(
      "entity a {\n relation x @a\n permission p = f(x)\n}\n"
      "rule f(x integer) {\n x > 1\n}",
      COMPILE, "3:18: invalid rule reference");
  expect_error(
      "entity a {\n attribute y integer\n permission p = f(y)\n}\n"
      "rule f(x integer) {\n x > 1\n}",
      COMPILE, "3:20: invalid argument");
  expect_error(
      "entity a {\n attribute x integer[]\n permission p = f(x)\n}\n"
      "rule f(x integer) {\n x > 1\n}",
      COMPILE, "3:20: invalid argument");
  expect_error(
      "entity a {\n attribute x integer\n permission p = f(x.y)\n}\n"
      "rule f(x integer) {\n x > 1\n}",
      COMPILE, "3:22: not supported walk");
  expect_error("entity a {}\nrule f(x float) {\n x > 1\n}", COMPILE, "2:11: invalid argument");
  /* Errors come in statement order: the entity before the rule after it. */
  expect_error("entity a {\n attribute x uint\n}\nrule f(x float) {\n x\n}", COMPILE,
               "2:15: invalid argument");
}

/* ---- Robustness ---------------------------------------------------------- */

/* A schema laid out as a partial write stores it, Permify's serialisation:
 * statements by name, relations then attributes then permissions, every
 * operator in parentheses.  Laid out again it is the same text, but for a
 * rule's body, which parsing gives one more leading newline each time (as
 * Permify's parser does). */
static void test_patch_layout(void **state) {
  (void)state;
  static const char laid_out[] =
      "rule allowed(tags string[], level integer) {\n"
      "\t%slevel > 1\n"
      "}\n"
      "entity doc {\n"
      "\trelation parent @folder \n"
      "\trelation owner @user @folder#owner \n"
      "\n"
      "\tattribute tags string[]\n"
      "\tattribute level integer\n"
      "\n"
      "\tpermission view = ((owner or parent.owner) not allowed(tags, level))\n"
      "\tpermission edit = (owner and (view or parent.view))\n"
      "} \n"
      "\n"
      "entity folder {\n"
      "\trelation owner @user \n"
      "\n"
      "\n"
      "\tpermission view = owner\n"
      "} \n"
      "\n"
      "entity user {\n"
      "\n"
      "\n"
      "} \n";
  tc_schema_t *s = compile_ok(
      "entity user {}\n"
      "rule allowed(tags string[], level integer) {\n  level > 1\n}\n"
      "entity folder { relation owner @user\n permission view = owner }\n"
      "entity doc {\n relation parent @folder\n"
      " attribute tags string[]\n"
      " permission view = owner or parent.owner not allowed(tags, level)\n"
      " relation owner @user @folder#owner\n attribute level integer\n"
      " permission edit = owner and (view or parent.view)\n}");
  static const char *const newlines[] = {"\n", "\n\n", "\n\n\n"};
  for (size_t round = 0; round < 3; round++) {
    char want[sizeof laid_out + 8], *text, *err = NULL;
    snprintf(want, sizeof want, laid_out, newlines[round]);
    assert_int_equal(tc_schema_patch(s, NULL, 0, &text, &err), 0);
    assert_string_equal(text, want);
    tc_schema_free(s);
    s = compile_ok(text);
    free(text);
  }
  tc_schema_free(s);
}

static void test_deep_nesting(void **state) {
  (void)state;
  size_t depth = 100000;
  const char *head = "entity a { relation r @a\n permission p = ";
  char *text = malloc(strlen(head) + 2 * depth + 8);
  assert_non_null(text);
  strcpy(text, head);
  char *p = text + strlen(head);
  memset(p, '(', depth);
  p += depth;
  *p++ = 'r';
  memset(p, ')', depth);
  strcpy(p + depth, " }");
  tc_schema_t *s = NULL;
  char *err = NULL;
  assert_int_equal(tc_schema_compile(text, &s, &err), TC_ESCHEMA_PARSE);
  assert_non_null(strstr(err, "expression is nested deeper than 1000 levels"));
  free(err);

  /* A long operator chain builds a deep tree without parentheses. */
  size_t terms = 5000;
  text = realloc(text, strlen(head) + terms * 5 + 8);
  assert_non_null(text);
  strcpy(text, head);
  p = text + strlen(head);
  for (size_t i = 0; i < terms; i++) p += sprintf(p, i ? " or r" : "r");
  strcpy(p, " }");
  assert_int_equal(tc_schema_compile(text, &s, &err), TC_ESCHEMA_PARSE);
  assert_non_null(strstr(err, "expression is nested deeper than 1000 levels"));
  free(err);

  /* Just under the limit compiles. */
  strcpy(text, head);
  p = text + strlen(head);
  for (size_t i = 0; i < 999; i++) p += sprintf(p, i ? " or r" : "r");
  strcpy(p, " }");
  s = compile_ok(text);
  tc_schema_free(s);
  free(text);
}

/* Every prefix of valid schemas, and random bytes, must yield a result or an
 * error, never a crash or a leak. */
static void test_truncated_and_random_input(void **state) {
  (void)state;
  const char *full =
      "entity user {}\nentity doc {\n relation owner @user @doc#owner\n"
      " attribute pub boolean\n attribute n integer[]\n"
      " permission view = (owner or pub) not f(n) and owner.owner\n}\n"
      "rule f(n integer[]) {\n 1 in n /* c */ \"s\\\"q\" \n}\n";
  size_t len = strlen(full);
  char *buf = malloc(len + 1);
  assert_non_null(buf);
  int ok = 0;
  for (size_t n = 0; n <= len; n++) {
    memcpy(buf, full, n);
    buf[n] = '\0';
    tc_schema_t *s = NULL;
    char *err = NULL;
    int rc = tc_schema_compile(buf, &s, &err);
    assert_true(rc == 0 || rc == TC_ESCHEMA_PARSE || rc == TC_ESCHEMA_COMPILE);
    assert_true((rc == 0) == (s != NULL) && (rc == 0) == (err == NULL));
    ok += rc == 0;
    tc_schema_free(s);
    free(err);
  }
  assert_true(ok > 0);
  free(buf);

  static const char alphabet[] =
      "entity relation permission attribute rule and or not "
      "@#.(){}[],;=\n\r\t/*\"\\xyz01";
  uint32_t seed = 12345;
  char text[512];
  for (int round = 0; round < 3000; round++) {
    size_t n = (size_t)(round % 500);
    for (size_t i = 0; i < n; i++) {
      seed = seed * 1103515245u + 12345u;
      text[i] = round % 2 ? alphabet[(seed >> 16) % (sizeof alphabet - 1)]
                          : (char)(1 + (seed >> 16) % 255);
    }
    text[n] = '\0';
    tc_schema_t *s = NULL;
    char *err = NULL;
    int rc = tc_schema_compile(text, &s, &err);
    assert_true(rc == 0 || rc == TC_ESCHEMA_PARSE || rc == TC_ESCHEMA_COMPILE);
    tc_schema_free(s);
    free(err);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_example),
      cmocka_unit_test(test_precedence_and_parentheses),
      cmocka_unit_test(test_comments_separators_and_lines),
      cmocka_unit_test(test_rules),
      cmocka_unit_test(test_walks_through_subject_relations),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_parse_errors_more),
      cmocka_unit_test(test_compile_errors),
      cmocka_unit_test(test_compile_errors_more),
      cmocka_unit_test(test_patch_layout),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_truncated_and_random_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
