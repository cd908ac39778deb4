/* The fuzz targets' core server (fuzz_server.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "fuzz_server.h"
#include "log.h"
#include "server.h"

#define PLUGIN TT_FUZZ_BACKEND_DIR "/example.so"

static uv_loop_t loop;
static int loop_ready;
static const tc_server_parts_t parts = {.n_transports = 0};

uv_loop_t *tt_fuzz_loop(void) {
  if (!loop_ready && uv_loop_init(&loop) != 0) abort();
  loop_ready = 1;
  return &loop;
}

static const tc_config_t *config(void) {
  static tc_config_t cfg;
  static int ready;
  if (ready) return &cfg;
  char *argv[] = {"--database-engine=example", "--log-level=error",
                  "--server-rate-limit=1000000000", "--service-watch-enabled=true",
                  ("--database-backend-dir=" TT_FUZZ_BACKEND_DIR)};
  char *envp[] = {NULL};
  char *err = NULL;
  tc_config_init(&cfg);
  if (tc_config_load(&cfg, (int)(sizeof argv / sizeof argv[0]), argv, envp, &err) != 0) {
    fprintf(stderr, "fuzz: configuration: %s\n", err ? err : "?");
    abort();
  }
  tc_log_set_level(cfg.log_level);
  /* Held open for good: each server's load and unload of the plugin then
   * maps it once, and the fuzzer counts its coverage as one module. */
  if (!dlopen(PLUGIN, RTLD_NOW)) {
    fprintf(stderr, "fuzz: %s\n", dlerror());
    abort();
  }
  ready = 1;
  return &cfg;
}

tc_server_t *tt_fuzz_server_open(void) {
  tc_server_t *srv = NULL;
  char *err = NULL;
  if (tc_server_open(tt_fuzz_loop(), config(), &parts, &srv, &err) != 0) {
    fprintf(stderr, "fuzz: server: %s\n", err ? err : "?");
    abort();
  }
  return srv;
}

void tt_fuzz_server_close(tc_server_t *srv) {
  tc_server_stop(srv);
  uv_run(&loop, UV_RUN_DEFAULT); /* returns once every handle of the server closed */
  tc_server_free(srv);
}

static void on_hang(uv_timer_t *t) {
  fprintf(stderr, "fuzz: %s did not finish within 10 s\n", (const char *)t->data);
  abort();
}

void tt_fuzz_run_until(const int *flag, const char *what) {
  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  guard.data = (void *)what;
  uv_timer_start(&guard, on_hang, 10000, 0);
  while (!*flag) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&loop, UV_RUN_NOWAIT); /* the guard's close */
}
