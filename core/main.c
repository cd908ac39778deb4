/* tuplecast: command line entry point and the process assembly: it hands
 * the core the transports (gRPC, the HTTP gateway) and the JSON hooks, and
 * owns the signals. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "any_json.h"
#include "backend_admin.h"
#include "cli.h"
#include "config.h"
#include "grpc_transport.h"
#include "http_transport.h"
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
    "  tuplecast config [-c config.yaml] [flags]  print the effective configuration\n"
    "                                             (serve's flags; secrets masked)\n"
    "  tuplecast watch --tenant ID [flags]        tail a tenant's changes from a server\n"
    "  tuplecast version                          print the version\n"
    "  tuplecast help | --help                    this text\n"
    "\n"
    "`tuplecast serve --help` and `tuplecast watch --help` list the flags.\n";

/* Loads the configuration from flags, env and file: 0, or the exit code
 * (help printed: 0 with *done set; an error printed: 2). */
static int load_config(tc_config_t *cfg, int argc, char **argv, int *done) {
  tc_config_init(cfg);
  char *err = NULL;
  int rc = tc_config_load(cfg, argc, argv, environ, &err);
  *done = rc != 0;
  if (rc == TC_CONFIG_HELP) {
    fputs(tc_config_usage(), stdout);
    tc_backend_print_plugins(cfg);
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

/* logger.level and logger.output (checked when loaded: text, json or ""). */
static void apply_logging(const tc_config_t *cfg) {
  tc_log_set_level(cfg->log_level);
  tc_log_set_format(tc_log_format_parse(cfg->log_output) == TC_LOG_JSON ? TC_LOG_JSON
                                                                        : TC_LOG_TEXT);
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
  apply_logging(&cfg);
  rc = tc_backend_migrate(&cfg, argv[0]);
  tc_config_free(&cfg);
  return rc ? 2 : 0;
}

/* `tuplecast config`: what serve would run with, without serving. */
static int config(int argc, char **argv) {
  tc_config_t cfg;
  int done, rc = load_config(&cfg, argc, argv, &done);
  if (done) return rc;
  rc = tc_cli_config_print(&cfg);
  tc_config_free(&cfg);
  return rc;
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

/* The signals of a serving process: SIGINT/SIGTERM stop it gracefully,
 * SIGHUP reloads the TLS certificates (only when a transport serves TLS;
 * otherwise SIGHUP keeps its default action). */
typedef struct signals_s {
  tc_server_t *srv;
  uv_signal_t sigint, sigterm, sighup;
  int hup;
} signals_t;

static void on_closed_signal(uv_handle_t *h) { (void)h; }

static void close_signals(signals_t *sig) {
  uv_close((uv_handle_t *)&sig->sigint, on_closed_signal);
  uv_close((uv_handle_t *)&sig->sigterm, on_closed_signal);
  uv_close((uv_handle_t *)&sig->sighup, on_closed_signal);
}

static void on_stop_signal(uv_signal_t *h, int signum) {
  signals_t *sig = h->data;
  tc_log(TC_LOG_INFO, "received signal %d, shutting down", signum);
  /* Closing the handles restores the default action; a second signal during
   * the teardown must not kill a server that is already stopping cleanly. */
  close_signals(sig);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  if (sig->hup) signal(SIGHUP, SIG_IGN);
  tc_server_stop(sig->srv);
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  tc_server_reload_tls(((signals_t *)h->data)->srv);
}

static void watch_signals(uv_loop_t *loop, signals_t *sig) {
  uv_signal_init(loop, &sig->sigint);
  uv_signal_init(loop, &sig->sigterm);
  uv_signal_init(loop, &sig->sighup);
  sig->sigint.data = sig->sigterm.data = sig->sighup.data = sig;
  uv_signal_start(&sig->sigint, on_stop_signal, SIGINT);
  uv_signal_start(&sig->sigterm, on_stop_signal, SIGTERM);
  sig->hup = tc_server_has_tls(sig->srv);
  if (sig->hup) uv_signal_start(&sig->sighup, on_sighup, SIGHUP);
}

/* The transports, in the order they start and stop: gRPC last, so that its
 * "grpc listening on port N" line means every transport is serving. */
static const tc_transport_t *const transports[] = {&tc_http_transport, &tc_grpc_transport};

static int serve(int argc, char **argv) {
  tc_config_t cfg;
  int done, rc = load_config(&cfg, argc, argv, &done);
  if (done) return rc;
  char *err = NULL;
  apply_logging(&cfg);
  prepare_process();
  uv_loop_t loop;
  uv_loop_init(&loop);
  const tc_server_parts_t parts = {.transports = transports,
                                   .n_transports = sizeof transports / sizeof transports[0],
                                   .any_to_json = tc_any_to_json,
                                   .any_from_json = tc_any_from_json};
  signals_t sig = {0};
  rc = tc_server_open(&loop, &cfg, &parts, &sig.srv, &err);
  if (rc == 0) {
    watch_signals(&loop, &sig); /* before the first "listening" line */
    if ((rc = tc_server_listen(sig.srv, &err)) != 0) close_signals(&sig);
  }
  if (rc != 0 && tc_log_format_parse(cfg.log_output) == TC_LOG_JSON) /* every line JSON */
    tc_log(TC_LOG_ERROR, "tuplecast: %s", err ? err : "cannot start");
  else if (rc != 0)
    fprintf(stderr, "tuplecast: %s\n", err ? err : "cannot start");
  free(err);
  uv_run(&loop, UV_RUN_DEFAULT);
  tc_server_free(sig.srv);
  int closed = uv_loop_close(&loop);
  tc_config_free(&cfg);
  if (rc != 0) return 2;
  return closed == 0 ? 0 : 1;
}

/* The subcommands; each gets the arguments after its name. */
static const struct command {
  const char *name;
  int (*run)(int argc, char **argv);
} commands[] = {
    {"serve", serve},
    {"migrate", migrate},
    {"config", config},
    {"watch", tc_cli_watch},
};

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
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
  fprintf(stderr, "tuplecast: unknown command \"%s\"\n\n%s", argv[1], usage);
  return 2;
}
