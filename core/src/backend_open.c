#include "backend_open.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "format.h"
#include "tuplecast/errors.h"

/* <dir>/<rel> with each leading "../" of rel taken off dir's end, so that
 * messages name /usr/lib/tuplecast/backends, not /usr/bin/../lib/... */
static char *join_relative(char *dir, const char *rel) {
  char *slash;
  while (!strncmp(rel, "../", 3) && (slash = strrchr(dir, '/')) != NULL && slash != dir) {
    *slash = '\0';
    rel += 3;
  }
  return tc_format("%s/%s", dir, rel);
}

/* In the build tree the plugins lie beside the binary (build/backends/);
 * installed, at the same place relative to it as in the install layout
 * (TC_PLUGIN_DIR_FROM_BIN, "../lib/tuplecast/backends"), whatever the
 * prefix.  The binary's own path is /proc/self/exe's, symlinks resolved. */
char *tc_backend_dir(const tc_config_t *cfg) {
  if (cfg->database_backend_dir && *cfg->database_backend_dir)
    return strdup(cfg->database_backend_dir);
  char exe[PATH_MAX];
  size_t len = sizeof exe;
  if (uv_exepath(exe, &len) != 0) return strdup("backends");
  char *slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  char *beside = tc_format("%s/backends", exe);
  struct stat st;
  if (!beside || (stat(beside, &st) == 0 && S_ISDIR(st.st_mode))) return beside;
  free(beside);
  return join_relative(exe, TC_PLUGIN_DIR_FROM_BIN);
}

/* A plugin name: letters, digits, '_', '-' and '.', not starting with '.';
 * so never a path, never "." or "..". */
static int is_plain_name(const char *s) {
  if (*s == '\0' || *s == '.') return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("_-.", *s)) return 0;
  return 1;
}

static int ends_with_so(const char *s) {
  size_t n = strlen(s);
  return n > 3 && strcmp(s + n - 3, ".so") == 0;
}

/* The plugin file for an engine: the engine itself when it is a path (it
 * holds a '/'), else <backend dir>/<engine>.so.  NULL with *errmsg set for
 * anything else. */
static char *plugin_path(const tc_config_t *cfg, const char *engine, char **errmsg) {
  if (strchr(engine, '/')) {
    if (ends_with_so(engine)) return strdup(engine);
    *errmsg = tc_format("database.engine: \"%s\": a path must name a .so file", engine);
    return NULL;
  }
  if (!is_plain_name(engine)) {
    *errmsg = tc_format(
        "database.engine: \"%s\" is not a plugin name (letters, digits, "
        "'_', '-', '.'; not starting with '.') or a path to a .so file",
        engine);
    return NULL;
  }
  char *dir = tc_backend_dir(cfg);
  char *path = dir ? tc_format("%s/%s.so", dir, engine) : NULL;
  free(dir);
  return path;
}

static int is_plugin_file(const struct dirent *e) {
  return e->d_name[0] != '.' && ends_with_so(e->d_name);
}

char *tc_backend_found(const char *dir) {
  struct dirent **list = NULL;
  int n = scandir(dir, &list, is_plugin_file, alphasort);
  if (n <= 0) {
    free(list);
    return strdup("none");
  }
  size_t size = 1;
  for (int i = 0; i < n; i++) size += strlen(list[i]->d_name) + 2;
  char *text = malloc(size);
  size_t len = 0;
  int sqlite = 0;
  for (int i = 0; i < n; i++) {
    size_t stem = strlen(list[i]->d_name) - 3;
    if (text)
      len += (size_t)sprintf(text + len, "%s%.*s", i ? ", " : "", (int)stem, list[i]->d_name);
    sqlite = sqlite || strcmp(list[i]->d_name, "sqlite.so") == 0;
    free(list[i]);
  }
  free(list);
  if (!text || !sqlite) return text;
  char *with_memory = tc_format("%s (memory: sqlite in memory)", text);
  free(text);
  return with_memory;
}

/* "database.engine: mydb: no backend plugin at <path>; found in <dir>: ...". */
static char *not_found(const tc_config_t *cfg, const char *path) {
  char *dir = tc_backend_dir(cfg);
  char *found = dir ? tc_backend_found(dir) : NULL;
  char *msg = found ? tc_format("database.engine: %s: no backend plugin at %s; plugins in %s: %s",
                                cfg->database_engine, path, dir, found)
                    : NULL;
  free(found);
  free(dir);
  return msg;
}

/* The database.* settings a backend may use, as docs/backend-plugins.md
 * lists them; durations in whole milliseconds or seconds as named.  A
 * setting left at 0 ("the backend's default") is not passed. */
static char **options_of(const tc_config_t *cfg) {
  enum { N = 8 };
  char **o = calloc(N + 1, sizeof *o);
  if (!o) return NULL;
  const struct {
    const char *fmt;
    long long v;
  } num[] = {{"max_retries=%lld", cfg->database_max_retries},
             {"pool_size=%lld", cfg->database_max_connections},
             {"poll_interval_ms=%lld", cfg->database_watch_poll_interval_ms},
             {"gc_interval_s=%lld", cfg->database_gc_interval_ms / 1000},
             {"gc_window_s=%lld", cfg->database_gc_window_ms / 1000},
             {"gc_timeout_s=%lld", cfg->database_gc_timeout_ms / 1000}};
  int i = 0;
  o[i++] = tc_format("auto_migrate=%s", cfg->database_auto_migrate ? "true" : "false");
  /* Permify collects only with a timeout above zero. */
  int gc = cfg->database_gc_enabled && cfg->database_gc_timeout_ms > 0;
  o[i++] = tc_format("gc_enabled=%s", gc ? "true" : "false");
  for (size_t k = 0; k < sizeof num / sizeof num[0]; k++)
    if (num[k].v) o[i++] = tc_format(num[k].fmt, num[k].v);
  for (int j = 0; j < i; j++)
    if (!o[j]) {
      for (int k = 0; k < i; k++) free(o[k]);
      free(o);
      return NULL;
    }
  return o;
}

void tc_backend_choice_free(tc_backend_choice_t *c) {
  for (char **o = c->options; o && *o; o++) free(*o);
  free(c->options);
  free(c->path);
  memset(c, 0, sizeof *c);
}

int tc_backend_choose(const tc_config_t *cfg, tc_backend_choice_t *out, tc_plugin_t *plugin,
                      char **errmsg) {
  memset(out, 0, sizeof *out);
  *errmsg = NULL;
  /* Permify's engine `memory` has no plugin of its own: it is the sqlite
   * plugin on a database in memory.  The one alias core keeps, so Permify's
   * configs run unchanged; any other name is looked up as a file. */
  out->memory = strcmp(cfg->database_engine, "memory") == 0;
  const char *engine = out->memory ? "sqlite" : cfg->database_engine;
  /* Permify's database.writer.uri stands in for database.uri; one
   * connection string serves reads too (the feed needs snapshots of the
   * primary). */
  out->uri = out->memory                 ? ":memory:"
             : *cfg->database_writer_uri ? cfg->database_writer_uri
                                         : cfg->database_uri;
  out->path = plugin_path(cfg, engine, errmsg);
  if (!out->path) {
    tc_backend_choice_free(out);
    return *errmsg ? TC_ECONFIG : TC_ENOMEM;
  }
  out->options = options_of(cfg);
  if (!out->options) {
    tc_backend_choice_free(out);
    return TC_ENOMEM;
  }
  if (access(out->path, R_OK) != 0) {
    *errmsg = not_found(cfg, out->path);
    tc_backend_choice_free(out);
    return *errmsg ? TC_ECONFIG : TC_ENOMEM;
  }
  int rc = tc_plugin_load(out->path, plugin, errmsg);
  if (rc != 0) tc_backend_choice_free(out);
  return rc;
}
