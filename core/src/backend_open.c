#include "backend_open.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "format.h"
#include "tuplecast/errors.h"

/* The plugin file for an engine: <backend_dir>/<engine>.so, where the
 * default backend_dir is "backends" beside the executable. */
static char *plugin_path(const tc_config_t *cfg, const char *engine) {
  if (cfg->database_backend_dir && *cfg->database_backend_dir)
    return tc_format("%s/%s.so", cfg->database_backend_dir, engine);
  char exe[PATH_MAX];
  size_t len = sizeof exe;
  if (uv_exepath(exe, &len) != 0) return tc_format("backends/%s.so", engine);
  char *slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  return tc_format("%s/backends/%s.so", exe, engine);
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
  out->memory = strcmp(cfg->database_engine, "memory") == 0;
  const char *engine = out->memory ? "sqlite" : cfg->database_engine;
  /* Permify's database.writer.uri stands in for database.uri; one
   * connection string serves reads too (the feed needs snapshots of the
   * primary). */
  out->uri = out->memory                         ? ":memory:"
             : *cfg->database_writer_uri ? cfg->database_writer_uri
                                         : cfg->database_uri;
  out->path = plugin_path(cfg, engine);
  out->options = options_of(cfg);
  if (!out->path || !out->options) {
    tc_backend_choice_free(out);
    return TC_ENOMEM;
  }
  if (access(out->path, R_OK) != 0) {
    *errmsg = tc_format("database.engine: %s: no backend plugin at %s", cfg->database_engine,
                        out->path);
    tc_backend_choice_free(out);
    return TC_ECONFIG;
  }
  int rc = tc_plugin_load(out->path, plugin, errmsg);
  if (rc != 0) tc_backend_choice_free(out);
  return rc;
}
