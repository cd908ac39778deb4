/* `tuplecast watch`'s flags, one table: parser and help text both read it. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuplecast/support.h"
#include "watch_opts.h"

typedef int (*set_fn)(tc__watch_opts_t *o, const char *v, char **err);

/* A whole decimal number in [min, max]. */
static int number(const char *flag, const char *v, long min, long max, long *out, char **err) {
  char *end;
  long n = strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || n < min || n > max) {
    *err = tc_format("--%s: \"%s\": expected a whole number from %ld to %ld", flag, v, min, max);
    return 2;
  }
  *out = n;
  return 0;
}
static int set_checkpoint(tc__watch_opts_t *o, const char *v, char **err) {
  return number("checkpoint-interval", v, 0, 86400, &o->checkpoint_s, err);
}
static int set_retries(tc__watch_opts_t *o, const char *v, char **err) {
  return number("max-retries", v, -1, 1000000, &o->max_retries, err);
}

/* --filter KEY=V1,V2: the WatchFilter's fields (docs/watch.md, "Filters"),
 * singular names accepted; repeated keys add values. */
static const struct {
  const char *name, *singular, *field;
} filter_keys[] = {
    {"entity_types", "entity_type", "entity_types"},
    {"relations", "relation", "relations"},
    {"attributes", "attribute", "attributes"},
};

static int add_values(json_t *filter, const char *field, const char *list) {
  json_t *a = json_object_get(filter, field);
  if (!a) json_object_set_new(filter, field, a = json_array());
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, ",");
    if (n) json_array_append_new(a, json_stringn(p, n));
    p += n + (p[n] == ',');
  }
  return 0;
}

static int set_operation(json_t *filter, const char *v, char **err) {
  const char *op = !strcmp(v, "create")   ? "OPERATION_CREATE"
                   : !strcmp(v, "delete") ? "OPERATION_DELETE"
                                          : NULL;
  if (!op) {
    *err = tc_format("--filter operation=%s: expected create or delete", v);
    return 2;
  }
  json_object_set_new(filter, "operation", json_string(op));
  return 0;
}

static int set_filter(tc__watch_opts_t *o, const char *v, char **err) {
  const char *eq = strchr(v, '=');
  size_t n = eq ? (size_t)(eq - v) : 0;
  if (!o->filter) o->filter = json_object();
  if (eq && n == 9 && !strncmp(v, "operation", n)) return set_operation(o->filter, eq + 1, err);
  for (size_t i = 0; eq && i < sizeof filter_keys / sizeof filter_keys[0]; i++)
    if ((strlen(filter_keys[i].name) == n && !strncmp(v, filter_keys[i].name, n)) ||
        (strlen(filter_keys[i].singular) == n && !strncmp(v, filter_keys[i].singular, n)))
      return add_values(o->filter, filter_keys[i].field, eq + 1);
  *err = tc_format(
      "--filter \"%s\": expected entity_types=A,B | relations=A,B | attributes=A,B | "
      "operation=create|delete",
      v);
  return 2;
}

/* A flag sets a string field (STR), a boolean (BOOL: takes no value) or
 * calls its set function. */
#define STR(field) .str = offsetof(tc__watch_opts_t, field) + 1
#define BOOL(field) .flag = offsetof(tc__watch_opts_t, field) + 1

static const struct flag {
  const char *name, *arg, *help;
  size_t str, flag; /* offset + 1, or 0 */
  set_fn set;
} flags[] = {
    {"tenant", "ID", "the tenant to watch (required)", STR(tenant)},
    {"server", "HOST:PORT",
     "the server's HTTP port, or a URL http(s)://HOST:PORT (default localhost:3476)", STR(server)},
    {"from", "TOKEN",
     "resume after this snap token (a write's, or one this command printed);\n"
     "default: from now on",
     STR(from)},
    {"filter", "KEY=V1,V2",
     "only matching changes; KEY is entity_types, relations, attributes\n"
     "or operation (create|delete); repeat for more keys",
     .set = set_filter},
    {"json", NULL, "one JSON object a line instead of the notation", BOOL(json)},
    {"auth-token", "KEY",
     "sent as \"Authorization: Bearer KEY\" (a preshared key or an OIDC\n"
     "token); default $TUPLECAST_AUTH_TOKEN",
     STR(auth_token)},
    {"tls", NULL, "HTTPS to HOST:PORT (as a https:// URL does)", BOOL(tls)},
    {"ca-cert", "FILE", "PEM certificates of the CA to trust (default: the system's)",
     STR(ca_cert)},
    {"checkpoint-interval", "SECONDS",
     "ask for a checkpoint this often and reconnect when nothing came for\n"
     "twice as long plus 5 s; 0: neither (default 30)",
     .set = set_checkpoint},
    {"max-retries", "N",
     "give up after N failed connection attempts in a row; -1: never\n"
     "(default -1)",
     .set = set_retries},
    {"help", NULL, "show this text", BOOL(help)},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

static const struct flag *find_flag(const char *name, size_t len) {
  for (size_t i = 0; i < NFLAGS; i++)
    if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len)) return &flags[i];
  return NULL;
}

/* One argument (and its value, which may be the next one); returns how many
 * arguments it took, or -2 with *err set. */
static int parse_one(tc__watch_opts_t *o, int argc, char **argv, int i, char **err) {
  const char *arg = argv[i];
  if (!strcmp(arg, "-h")) arg = "--help";
  if (strncmp(arg, "--", 2) != 0) {
    *err = tc_format("\"%s\": unexpected argument (see tuplecast watch --help)", arg);
    return -2;
  }
  const char *name = arg + 2, *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  const struct flag *f = find_flag(name, len);
  if (!f) {
    *err = tc_format("--%.*s: unknown flag (see tuplecast watch --help)", (int)len, name);
    return -2;
  }
  if (!f->arg && eq) {
    *err = tc_format("--%s takes no value", f->name);
    return -2;
  }
  if (f->arg && !eq && i + 1 >= argc) {
    *err = tc_format("--%s: needs a value", f->name);
    return -2;
  }
  const char *value = !f->arg ? NULL : eq ? eq + 1 : argv[i + 1];
  if (f->str)
    *(const char **)(void *)((char *)o + f->str - 1) = value;
  else if (f->flag)
    *(bool *)((char *)o + f->flag - 1) = true;
  else if (f->set(o, value, err) != 0)
    return -2;
  return f->arg && !eq ? 2 : 1;
}

int tc__watch_opts_parse(tc__watch_opts_t *o, int argc, char **argv, char **err) {
  *o = (tc__watch_opts_t){.server = "localhost:3476",
                          .from = "",
                          .auth_token = getenv("TUPLECAST_AUTH_TOKEN"),
                          .checkpoint_s = 30,
                          .max_retries = -1};
  *err = NULL;
  for (int i = 0; i < argc;) {
    int took = parse_one(o, argc, argv, i, err);
    if (took < 0) return 2;
    i += took;
  }
  if (!o->help && (!o->tenant || !*o->tenant)) {
    *err = tc_format("--tenant: required (see tuplecast watch --help)");
    return 2;
  }
  return 0;
}

void tc__watch_opts_free(tc__watch_opts_t *o) {
  json_decref(o->filter);
  o->filter = NULL;
}

/* Continuation lines of a flag's help are indented under its first. */
static size_t put_help(char *out, size_t size, const struct flag *f) {
  size_t n = (size_t)snprintf(out, size, "  --%s%s%s\n      ", f->name, f->arg ? " " : "",
                              f->arg ? f->arg : "");
  for (const char *p = f->help; *p && n < size; p++)
    n += (size_t)snprintf(out + n, size - n, *p == '\n' ? "\n      " : "%c", *p);
  if (n < size) n += (size_t)snprintf(out + n, size - n, "\n");
  return n;
}

const char *tc__watch_usage(void) {
  static char text[8192];
  if (text[0]) return text;
  size_t n = (size_t)snprintf(
      text, sizeof text,
      "Usage: tuplecast watch --tenant ID [flags]\n"
      "\n"
      "Tails a tenant's changes through the server's HTTP port, one line per change in\n"
      "Permify's notation (+ created, - deleted):\n"
      "  + doc:1#owner@user:alice\n"
      "  - doc:1$is_private|boolean:true\n"
      "Reconnects from the last snap token it received, with backoff; on SIGINT or\n"
      "SIGTERM prints the token to resume from (--from) and exits 0.\n"
      "\n");
  for (size_t i = 0; i < NFLAGS && n < sizeof text; i++)
    n += put_help(text + n, sizeof text - n, &flags[i]);
  return text;
}
