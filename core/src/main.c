/* tuplecast: command line entry point. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "server.h"

extern char **environ;

static const char usage[] =
    "tuplecast - a Permify-compatible authorization-data server with an exact change feed\n"
    "\n"
    "Usage:\n"
    "  tuplecast serve [-c config.yaml] [flags]   run the server\n"
    "  tuplecast version                          print the version\n"
    "  tuplecast help | --help                    this text\n"
    "\n"
    "`tuplecast serve --help` lists the flags.\n";

static int serve(int argc, char **argv) {
  tc_config_t cfg;
  tc_config_init(&cfg);
  char *err = NULL;
  int rc = tc_config_load(&cfg, argc, argv, environ, &err);
  if (rc == TC_CONFIG_HELP) {
    fputs(tc_config_usage(), stdout);
    tc_config_free(&cfg);
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr, "tuplecast: %s\n", err ? err : "out of memory reading the configuration");
    free(err);
    tc_config_free(&cfg);
    return 2;
  }
  tc_log_set_level(cfg.log_level);
  uv_loop_t loop;
  uv_loop_init(&loop);
  tc_server_t srv;
  rc = tc_server_start(&srv, &loop, &cfg, &err);
  if (rc != 0) fprintf(stderr, "tuplecast: %s\n", err ? err : "cannot start");
  free(err);
  uv_run(&loop, UV_RUN_DEFAULT);
  tc_server_free(&srv);
  int closed = uv_loop_close(&loop);
  tc_config_free(&cfg);
  if (rc != 0) return 2;
  return closed == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
      !strcmp(argv[1], "-h")) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    printf("tuplecast %s\n", TC_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "serve")) return serve(argc - 2, argv + 2);
  fprintf(stderr, "tuplecast: unknown command \"%s\"\n\n%s", argv[1], usage);
  return 2;
}
