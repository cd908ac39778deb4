/* tuplecast: command line entry point. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "backend_open.h"
#include "config.h"
#include "log.h"
#include "server.h"

extern char **environ;

static const char usage[] =
    "tuplecast - a Permify-compatible authorization-data server with an exact change feed\n"
    "\n"
    "Usage:\n"
    "  tuplecast serve [-c config.yaml] [flags]   run the server\n"
    "  tuplecast migrate up|status [-c config.yaml] [flags]\n"
    "                                             apply / list database migrations\n"
    "  tuplecast version                          print the version\n"
    "  tuplecast help | --help                    this text\n"
    "\n"
    "`tuplecast serve --help` lists the flags.\n";

/* The end of `serve --help`: the plugins database.engine can name. */
static void print_plugins(const tc_config_t *cfg) {
  char *dir = tc_backend_dir(cfg);
  char *found = dir ? tc_backend_found(dir) : NULL;
  if (found)
    printf("\nBackend plugins: --database-engine NAME loads <dir>/NAME.so, a path to a .so\n"
           "loads that file; memory is the sqlite plugin on a database in memory.\n"
           "  in %s: %s\n", dir, found);
  free(found);
  free(dir);
}

/* Loads the configuration from flags, env and file: 0, or the exit code
 * (help printed: 0 with *done set; an error printed: 2). */
static int load_config(tc_config_t *cfg, int argc, char **argv, int *done) {
  tc_config_init(cfg);
  char *err = NULL;
  int rc = tc_config_load(cfg, argc, argv, environ, &err);
  *done = rc != 0;
  if (rc == TC_CONFIG_HELP) {
    fputs(tc_config_usage(), stdout);
    print_plugins(cfg);
    tc_config_free(cfg);
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr, "tuplecast: %s\n", err ? err : "out of memory reading the configuration");
    free(err);
    tc_config_free(cfg);
    return 2;
  }
  return 0;
}

/* `tuplecast migrate up|status`: the backend's admin call, no server. */
static int migrate(int argc, char **argv) {
  if (argc < 1 || (strcmp(argv[0], "up") && strcmp(argv[0], "status"))) {
    fprintf(stderr, "tuplecast: usage: tuplecast migrate up|status [-c config.yaml] [flags]\n");
    return 2;
  }
  tc_config_t cfg;
  int done, rc = load_config(&cfg, argc - 1, argv + 1, &done);
  if (done) return rc;
  tc_backend_choice_t choice;
  tc_plugin_t plugin;
  char *out = NULL;
  rc = tc_backend_choose(&cfg, &choice, &plugin, &out);
  if (rc == 0) {
    char command[16];
    snprintf(command, sizeof command, "migrate %s", argv[0]);
    if (plugin.api->admin)
      rc = plugin.api->admin(choice.uri, (const char *const *)choice.options, command, &out);
    else
      printf("database.engine %s migrates its database itself when it opens it\n",
             cfg.database_engine);
    tc_backend_choice_free(&choice);
    tc_plugin_unload(&plugin);
  }
  if (out) fprintf(rc ? stderr : stdout, "%s%s\n", rc ? "tuplecast: " : "", out);
  free(out);
  tc_config_free(&cfg);
  return rc ? 2 : 0;
}

/* Process-wide set-up for serving.  A client gone mid-write must not kill
 * the process (libuv and gRPC write with write(2)/sendmsg), and every
 * connection is a descriptor: take the whole hard limit (server.c sizes the
 * connection limits from it). */
static void prepare_process(void) {
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t soft = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (soft != rl.rlim_max && setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = soft;
  if (rl.rlim_cur == RLIM_INFINITY)
    tc_log(TC_LOG_INFO, "file descriptors: no limit");
  else
    tc_log(TC_LOG_INFO, "file descriptors: limit %llu (was %llu)", (unsigned long long)rl.rlim_cur,
           (unsigned long long)soft);
}

static int serve(int argc, char **argv) {
  tc_config_t cfg;
  int done, rc = load_config(&cfg, argc, argv, &done);
  if (done) return rc;
  char *err = NULL;
  tc_log_set_level(cfg.log_level);
  prepare_process();
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
  if (!strcmp(argv[1], "migrate")) return migrate(argc - 2, argv + 2);
  fprintf(stderr, "tuplecast: unknown command \"%s\"\n\n%s", argv[1], usage);
  return 2;
}
