#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "config_keys.h"
#include "format.h"
#include "tuplecast/errors.h"

/* Where a key's current value came from, in rising precedence. */
enum source { SRC_DEFAULT, SRC_FILE, SRC_PERMIFY_ENV, SRC_TUPLECAST_ENV, SRC_FLAG };

typedef struct {
  tc_config_t *cfg;
  char *err;
  const char *file;
  enum source src[TC__CONFIG_NKEYS];
  int line[TC__CONFIG_NKEYS];       /* file line that set the key, 0 if none */
  bool on[TC__CONFIG_NKEYS];        /* final value of refusable booleans */
  bool flag_seen[TC__CONFIG_NKEYS]; /* repeated list flags append, like pflag */
} loader_t;

static const char DEFAULT_FILE[] = "./config/config.yaml";

__attribute__((format(printf, 2, 3))) static int fail(loader_t *ld, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *line = tc_vformat(fmt, ap);
  va_end(ap);
  free(ld->err);
  ld->err = line ? tc_format("config: %s", line) : NULL;
  free(line);
  return ld->err ? TC_ECONFIG : TC_ENOMEM;
}

/* The name the user wrote for key i in source src. */
static const char *label(size_t i, enum source src, char *buf, size_t size) {
  const tc__config_key_t *k = &tc__config_keys[i];
  switch (src) {
  case SRC_PERMIFY_ENV: snprintf(buf, size, "PERMIFY_%s", k->env); break;
  case SRC_TUPLECAST_ENV: snprintf(buf, size, "TUPLECAST_%s", k->env); break;
  case SRC_FLAG: snprintf(buf, size, "--%s", k->flag); break;
  default: snprintf(buf, size, "%s", k->key); break;
  }
  return buf;
}

/* Stores a parsed value (in *val, of key i's type) and records its source. */
static void commit(loader_t *ld, size_t i, enum source src, tc__config_value_t *val) {
  const tc__config_key_t *k = &tc__config_keys[i];
  if (k->refuse != NULL) ld->on[i] = val->b;
  if (k->off == TC__CONFIG_NOWHERE) {
    tc__config_value_release(k->type, val);
  } else {
    void *field = (char *)ld->cfg + k->off;
    tc__config_value_release(k->type, field);
    tc__config_value_store(k->type, val, field);
  }
  ld->src[i] = src;
}

static int apply_text(loader_t *ld, size_t i, enum source src, const char *text) {
  char who[128], why[512];
  tc__config_value_t val;
  int rc = tc__config_value_parse(&tc__config_keys[i], text, &val, why, sizeof why);
  if (rc == TC_ECONFIG) return fail(ld, "%s: %s", label(i, src, who, sizeof who), why);
  if (rc < 0) return rc;
  commit(ld, i, src, &val);
  return 0;
}

/* ---- YAML file ---------------------------------------------------------- */

static bool is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const char *s = (const char *)n->data.scalar.value;
  return !strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
         !strcmp(s, "NULL");
}

static int apply_node(loader_t *ld, size_t i, yaml_document_t *doc, yaml_node_t *n) {
  const tc__config_key_t *k = &tc__config_keys[i];
  int line = (int)n->start_mark.line + 1;
  if (ld->line[i] != 0)
    return fail(ld, "%s: given twice (%s lines %d and %d)", k->key, ld->file, ld->line[i], line);
  ld->line[i] = line;
  if (is_null(n)) return 0; /* `key:` with no value leaves the default, as in Permify */
  if (n->type == YAML_MAPPING_NODE)
    return fail(ld, "%s: expected a value, found a mapping (%s line %d)", k->key, ld->file, line);
  if (n->type == YAML_SCALAR_NODE &&
      strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
    return fail(ld, "%s: the value holds a NUL byte (%s line %d)", k->key, ld->file, line);
  if (n->type == YAML_SCALAR_NODE)
    return apply_text(ld, i, SRC_FILE, (const char *)n->data.scalar.value);
  if (k->type != TC__CONFIG_LIST)
    return fail(ld, "%s: expected a single value, found a list (%s line %d)", k->key, ld->file,
                line);
  yaml_node_item_t *it = n->data.sequence.items.start;
  size_t count = (size_t)(n->data.sequence.items.top - it);
  const char **items = calloc(count + 1, sizeof *items);
  if (items == NULL) return TC_ENOMEM;
  for (size_t j = 0; j < count; j++) {
    yaml_node_t *item = yaml_document_get_node(doc, it[j]);
    if (item->type != YAML_SCALAR_NODE) {
      free(items);
      return fail(ld, "%s: expected a list of strings (%s line %d)", k->key, ld->file,
                  (int)item->start_mark.line + 1);
    }
    items[j] = (const char *)item->data.scalar.value;
  }
  tc__config_value_t val;
  int rc = tc__config_list_from(items, count, &val.l);
  free(items);
  if (rc < 0) return rc;
  commit(ld, i, SRC_FILE, &val);
  return 0;
}

/* Keys are matched case-insensitively, like viper. */
static int walk(loader_t *ld, yaml_document_t *doc, yaml_node_t *map, char *path, size_t len) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(doc, p->value);
    int line = (int)kn->start_mark.line + 1;
    if (kn->type != YAML_SCALAR_NODE)
      return fail(ld, "%s line %d: keys must be plain strings", ld->file, line);
    const char *name = (const char *)kn->data.scalar.value;
    size_t n = len + (len ? 1 : 0) + strlen(name);
    if (n >= TC__CONFIG_KEY_MAX)
      return fail(ld, "%.64s...: unknown key (%s line %d)", path, ld->file, line);
    if (len) path[len] = '.';
    tc__config_lower_copy(path + len + (len ? 1 : 0), name);
    int rc;
    size_t i = tc__config_key_find(path);
    if (i != TC__CONFIG_NKEYS) {
      rc = apply_node(ld, i, doc, vn);
    } else if (!tc__config_is_section(path)) {
      rc = fail(ld, "%s: unknown key (%s line %d; Permify would ignore it)", path, ld->file, line);
    } else if (vn->type == YAML_MAPPING_NODE) {
      rc = walk(ld, doc, vn, path, n);
    } else {
      rc = is_null(vn)
               ? 0
               : fail(ld, "%s: expected a mapping of keys (%s line %d)", path, ld->file, line);
    }
    path[len] = '\0';
    if (rc < 0) return rc;
  }
  return 0;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Reads all of f into a NUL-terminated buffer; NULL on error (errno set). */
static unsigned char *read_all(FILE *f, size_t *len) {
  size_t cap = 4096, n = 0;
  unsigned char *buf = malloc(cap);
  while (buf != NULL) {
    n += fread(buf + n, 1, cap - n - 1, f);
    if (ferror(f)) break;
    if (feof(f)) {
      buf[n] = '\0';
      *len = n;
      return buf;
    }
    unsigned char *more = realloc(buf, cap *= 2);
    if (more == NULL) break;
    buf = more;
  }
  int saved = ferror(f) ? errno : ENOMEM;
  free(buf);
  errno = saved;
  return NULL;
}

static int syntax_error(loader_t *ld, const yaml_parser_t *parser) {
  return fail(ld, "%s line %zu: YAML syntax error: %s%s%s", ld->file, parser->problem_mark.line + 1,
              parser->context ? parser->context : "", parser->context ? ": " : "",
              parser->problem ? parser->problem : "unknown");
}

/* No key sits deeper than 4 levels.  The bound is checked on the event
 * stream before the document is built, which also keeps parsing linear:
 * libyaml 0.2.5's scanner walks one saved "simple key" per open flow level
 * ([ or {) for every token, so flow nesting costs depth^2 (measured: 10,000
 * levels 0.95 s, 30,000 levels 11 s; block nesting is linear).  Events come
 * lazily, with the scanner at most 1024 characters ahead, so a refused file
 * costs no more than its first few thousand levels. */
enum { MAX_DEPTH = 64 };

static int check_depth(loader_t *ld, const unsigned char *text, size_t len) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return TC_ENOMEM;
  yaml_parser_set_input_string(&parser, text, len);
  int rc = 0, depth = 0;
  for (bool done = false; !done && rc == 0;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      rc = syntax_error(ld, &parser);
      break;
    }
    if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) depth++;
    if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) depth--;
    if (depth > MAX_DEPTH)
      rc = fail(ld, "%s line %zu: nested deeper than %d levels", ld->file, ev.start_mark.line + 1,
                MAX_DEPTH);
    done = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&parser);
  return rc;
}

static int walk_document(loader_t *ld, const unsigned char *text, size_t len) {
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) return TC_ENOMEM;
  yaml_parser_set_input_string(&parser, text, len);
  int rc = 0;
  if (!yaml_parser_load(&parser, &doc)) {
    rc = syntax_error(ld, &parser);
  } else {
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    char key[TC__CONFIG_KEY_MAX] = "";
    if (root == NULL || is_null(root))
      rc = 0; /* an empty file means defaults, as in Permify */
    else if (root->type != YAML_MAPPING_NODE)
      rc = fail(ld, "%s: the top level must be a mapping of keys", ld->file);
    else
      rc = walk(ld, &doc, root, key, 0);
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  return rc;
}

static int load_file(loader_t *ld, const char *path) {
  ld->file = path;
  if (!ends_with(path, ".yaml"))
    return fail(ld, "%s: the config file name must end in .yaml (as in Permify)", path);
  FILE *f = fopen(path, "rb");
  if (f == NULL) return fail(ld, "%s: cannot read: %s", path, strerror(errno));
  size_t len = 0;
  unsigned char *text = read_all(f, &len);
  int saved = errno;
  fclose(f);
  if (text == NULL)
    return saved == ENOMEM ? TC_ENOMEM : fail(ld, "%s: cannot read: %s", path, strerror(saved));
  free(ld->cfg->config_file);
  ld->cfg->config_file = strdup(path);
  int rc = ld->cfg->config_file == NULL ? TC_ENOMEM : check_depth(ld, text, len);
  if (rc == 0) rc = walk_document(ld, text, len);
  free(text);
  return rc;
}

/* ---- environment -------------------------------------------------------- */

static const char *env_get(char **envp, const char *name) {
  size_t n = strlen(name);
  for (char **e = envp; e != NULL && *e != NULL; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

/* PERMIFY_X first, then TUPLECAST_X over it.  Empty values count as unset,
 * as in viper. */
static int load_env(loader_t *ld, char **envp) {
  for (size_t i = 0; i < TC__CONFIG_NKEYS; i++) {
    const tc__config_key_t *k = &tc__config_keys[i];
    if (k->env == NULL) continue;
    for (enum source src = SRC_PERMIFY_ENV; src <= SRC_TUPLECAST_ENV; src++) {
      if (src == SRC_PERMIFY_ENV && k->ours) continue;
      char name[128];
      const char *v = env_get(envp, label(i, src, name, sizeof name));
      if (v == NULL || *v == '\0') continue;
      int rc = apply_text(ld, i, src, v);
      if (rc < 0) return rc;
    }
  }
  return 0;
}

/* ---- flags -------------------------------------------------------------- */

typedef struct {
  size_t key;
  const char *value;
} flag_t;

typedef struct {
  flag_t *flags;
  size_t count;
  const char *config;
  bool help;
} args_t;

/* Checks every argument and collects the flags; they are applied last. */
static int scan_args(loader_t *ld, int argc, char **argv, args_t *a) {
  a->flags = calloc((size_t)argc + 1, sizeof *a->flags);
  if (a->flags == NULL) return TC_ENOMEM;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
      a->help = true;
      continue;
    }
    if (!strcmp(arg, "-c") || !strcmp(arg, "--config")) {
      if (i + 1 >= argc) return fail(ld, "%s: needs a file name", arg);
      a->config = argv[++i];
      continue;
    }
    if (!strncmp(arg, "--config=", 9)) {
      a->config = arg + 9;
      continue;
    }
    if (!strncmp(arg, "-c", 2)) {
      a->config = arg[2] == '=' ? arg + 3 : arg + 2;
      continue;
    }
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
      return fail(ld, "\"%s\": unexpected argument (serve takes only flags)", arg);
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    size_t k = tc__config_flag_find(name, len);
    if (k == TC__CONFIG_NKEYS)
      return fail(ld, "--%.*s: unknown flag (see tuplecast serve --help)", (int)len, name);
    const char *value;
    if (eq != NULL)
      value = eq + 1;
    else if (tc__config_keys[k].type == TC__CONFIG_BOOL)
      value = "true";
    else if (i + 1 < argc)
      value = argv[++i];
    else
      return fail(ld, "%s: needs a value", arg);
    a->flags[a->count++] = (flag_t){k, value};
  }
  return 0;
}

static int apply_flags(loader_t *ld, const args_t *a) {
  for (size_t j = 0; j < a->count; j++) {
    size_t i = a->flags[j].key;
    const tc__config_key_t *k = &tc__config_keys[i];
    /* pflag appends repeated list flags: keep what the earlier ones gave. */
    tc_config_list_t earlier = {NULL, 0}, *field = NULL;
    if (k->type == TC__CONFIG_LIST && k->off != TC__CONFIG_NOWHERE && ld->flag_seen[i]) {
      field = (tc_config_list_t *)(void *)((char *)ld->cfg + k->off);
      earlier = *field;
      *field = (tc_config_list_t){NULL, 0};
    }
    int rc = apply_text(ld, i, SRC_FLAG, a->flags[j].value);
    if (field != NULL) {
      if (rc == 0) rc = tc__config_list_prepend(field, &earlier);
      tc__config_value_release(TC__CONFIG_LIST, &earlier);
    }
    if (rc < 0) return rc;
    ld->flag_seen[i] = true;
  }
  return 0;
}

/* ---- checks on the merged result ---------------------------------------- */

/* Permify refuses an unknown method and preshared without keys at start-up;
 * we also refuse an empty key, which "Bearer " alone would match.  The
 * messages never quote a key. */
static int check_authn(loader_t *ld) {
  const tc_config_t *cfg = ld->cfg;
  if (!cfg->authn_enabled) return 0;
  char who[128];
  size_t method = tc__config_key_find("authn.method");
  bool preshared = !strcmp(cfg->authn_method, "preshared");
  if (!preshared && strcmp(cfg->authn_method, "oidc") != 0)
    return fail(ld, "%s: must be preshared or oidc when authn.enabled is true",
                label(method, ld->src[method], who, sizeof who));
  if (!preshared) return 0;
  size_t k = tc__config_key_find("authn.preshared.keys");
  const tc_config_list_t *keys = &cfg->authn_preshared_keys;
  if (keys->count == 0)
    return fail(ld, "%s: at least one key is required when authn.method is preshared",
                label(k, ld->src[k], who, sizeof who));
  for (size_t i = 0; i < keys->count; i++)
    if (keys->items[i][0] == '\0')
      return fail(ld, "%s: key %zu is empty", label(k, ld->src[k], who, sizeof who), i + 1);
  return 0;
}

static int finish(loader_t *ld) {
  tc_config_t *cfg = ld->cfg;
  char who[128];
  for (size_t i = 0; i < TC__CONFIG_NKEYS; i++)
    if (tc__config_keys[i].refuse != NULL && ld->on[i])
      return fail(ld, "%s: true is not supported yet: %s", label(i, ld->src[i], who, sizeof who),
                  tc__config_keys[i].refuse);
  int rc = check_authn(ld);
  if (rc != 0) return rc;
  if (cfg->log_output[0] == '\0') {
    size_t out = tc__config_key_find("logger.output");
    return apply_text(ld, out, ld->src[out], "text"); /* Permify: "" means text */
  }
  return 0;
}

/* ---- public API --------------------------------------------------------- */

void tc_config_init(tc_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < TC__CONFIG_NKEYS; i++) {
    const tc__config_key_t *k = &tc__config_keys[i];
    if (k->off == TC__CONFIG_NOWHERE) continue;
    tc__config_value_t val;
    char why[256];
    if (tc__config_value_parse(k, k->def, &val, why, sizeof why) != 0) abort();
    tc__config_value_store(k->type, &val, (char *)cfg + k->off);
  }
}

int tc_config_load(tc_config_t *cfg, int argc, char **argv, char **envp, char **errmsg) {
  loader_t *ld = calloc(1, sizeof *ld);
  args_t a = {0};
  if (ld == NULL) return TC_ENOMEM;
  ld->cfg = cfg;
  int rc = scan_args(ld, argc, argv, &a);
  if (a.help) {
    /* Help lists the plugins of the directory that the environment and
     * the flags name (up to a bad one: errors wait for a real start). */
    if (load_env(ld, envp) == 0) apply_flags(ld, &a);
    rc = TC_CONFIG_HELP;
  }
  const char *file = a.config;
  if (rc == 0 && file == NULL && access(DEFAULT_FILE, F_OK) == 0) file = DEFAULT_FILE;
  if (rc == 0 && file != NULL) rc = load_file(ld, file);
  if (rc == 0) rc = load_env(ld, envp);
  if (rc == 0) rc = apply_flags(ld, &a);
  if (rc == 0) rc = finish(ld);
  *errmsg = rc < 0 ? ld->err : NULL;
  if (rc >= 0) free(ld->err);
  free(a.flags);
  free(ld);
  return rc;
}

void tc_config_free(tc_config_t *cfg) {
  for (size_t i = 0; i < TC__CONFIG_NKEYS; i++) {
    const tc__config_key_t *k = &tc__config_keys[i];
    if (k->off != TC__CONFIG_NOWHERE) tc__config_value_release(k->type, (char *)cfg + k->off);
  }
  free(cfg->config_file);
  memset(cfg, 0, sizeof *cfg);
}
