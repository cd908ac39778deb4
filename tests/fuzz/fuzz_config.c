/* Fuzz target: the configuration loader (core/src/config.c): the YAML file,
 * the flags and the PERMIFY_* environment, merged.
 *
 * An input is parts separated by NUL bytes: the YAML file's text first, then
 * up to MAX_ARGS parts, each a flag when it starts with '-' and an
 * environment entry ("K=V") otherwise.  The file is written to a temporary
 * path and named with --config before the flags.  A configuration that
 * loads is dumped as JSON (the start-up line's) and freed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tuplecast/errors.h"

#define MAX_ARGS 16

static const char *file_path(void) {
  static char path[64];
  if (!*path) snprintf(path, sizeof path, "/tmp/tuplecast-fuzz-config-%ld.yaml", (long)getpid());
  return path;
}

static void write_file(const char *text, size_t len) {
  FILE *f = fopen(file_path(), "wb");
  if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *copy = malloc(size + 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  copy[size] = '\0';
  char flag[96];
  snprintf(flag, sizeof flag, "--config=%s", file_path());
  char *argv[MAX_ARGS + 1] = {flag}, *envp[MAX_ARGS + 1] = {NULL};
  int argc = 1, envc = 0;
  size_t yaml_len = strlen(copy);
  write_file(copy, yaml_len);
  for (char *p = copy + yaml_len + 1; p <= copy + size && argc + envc < MAX_ARGS;
       p += strlen(p) + 1) {
    if (*p == '-')
      argv[argc++] = p;
    else
      envp[envc++] = p;
  }
  tc_config_t cfg;
  tc_config_init(&cfg);
  char *err = NULL;
  int rc = tc_config_load(&cfg, argc, argv, envp, &err);
  if (rc == 0) {
    if (err) abort(); /* no error text with a success */
    free(tc_config_dump_json(&cfg));
  } else if (rc < 0 && rc != TC_ENOMEM && !err)
    abort(); /* a refusal names the key */
  free(err);
  tc_config_free(&cfg);
  free(copy);
  return 0;
}
