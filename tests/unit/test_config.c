/* tc_config_*: defaults, file/env/flag precedence, Permify compatibility,
 * and one test per way a configuration is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "tuplecast/errors.h"

#define ARGS(...) ((char *[]){__VA_ARGS__, NULL})
#define NONE ((char *[]){NULL})

static char tmpdir[] = "/tmp/tc_config_XXXXXX";
static char oldcwd[4096];

/* Every test runs inside a fresh temp dir, so ./config/config.yaml is ours. */
static int group_setup(void **state) {
  (void)state;
  if (getcwd(oldcwd, sizeof oldcwd) == NULL || mkdtemp(tmpdir) == NULL) return -1;
  return chdir(tmpdir);
}

static int group_teardown(void **state) {
  (void)state;
  if (chdir(oldcwd) != 0) return -1;
  return rmdir(tmpdir);
}

/* Writes text to a new file named <tmpdir>/XXXXXX<suffix>; returns its path. */
static char *write_file(const char *suffix, const char *text) {
  char tmpl[64];
  snprintf(tmpl, sizeof tmpl, "%s/cfgXXXXXX", tmpdir);
  int fd = mkstemp(tmpl);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  char *path = malloc(strlen(tmpl) + strlen(suffix) + 1);
  assert_non_null(path);
  sprintf(path, "%s%s", tmpl, suffix);
  assert_int_equal(rename(tmpl, path), 0);
  return path;
}

static size_t count(char **v) {
  size_t n = 0;
  while (v[n] != NULL) n++;
  return n;
}

/* Loads yaml (if any, via -c), then argv and envp, into a fresh cfg. */
static int run(tc_config_t *cfg, char **err, const char *yaml, char **argv, char **envp) {
  char *path = yaml ? write_file(".yaml", yaml) : NULL;
  size_t n = count(argv);
  char **all = calloc(n + 3, sizeof *all);
  assert_non_null(all);
  size_t k = 0;
  if (path) {
    all[k++] = "-c";
    all[k++] = path;
  }
  memcpy(all + k, argv, n * sizeof *all);
  tc_config_init(cfg);
  int rc = tc_config_load(cfg, (int)(k + n), all, envp, err);
  free(all);
  if (path) {
    unlink(path);
    free(path);
  }
  return rc;
}

/* Expects TC_ECONFIG with a message containing want. */
static void expect_error(const char *yaml, char **argv, char **envp, const char *want) {
  tc_config_t cfg;
  char *err = NULL;
  int rc = run(&cfg, &err, yaml, argv, envp);
  if (rc != TC_ECONFIG || err == NULL || strstr(err, want) == NULL)
    fail_msg("want error containing '%s', got rc=%d err='%s'", want, rc, err ? err : "(null)");
  assert_null(strchr(err, '\n'));
  assert_true(strncmp(err, "config: ", 8) == 0);
  free(err);
  tc_config_free(&cfg);
}

static void expect_ok(tc_config_t *cfg, const char *yaml, char **argv, char **envp) {
  char *err = NULL;
  int rc = run(cfg, &err, yaml, argv, envp);
  if (rc != 0) fail_msg("rc=%d err='%s'", rc, err ? err : "(null)");
  assert_null(err);
}

static void assert_list(const tc_config_list_t *l, char **want) {
  assert_int_equal(l->count, count(want));
  for (size_t i = 0; i < l->count; i++) assert_string_equal(l->items[i], want[i]);
}

/* The values of the server, logger and database keys most tests look at. */
struct want {
  const char *host;
  int rate_limit, http_port, grpc_port, log_level;
  const char *log_output;
  bool watch;
  const char *engine, *uri;
  bool auto_migrate;
  int max_data_per_write, max_retries, watch_buffer_size;
};

static void expect_values(const tc_config_t *cfg, const struct want *w) {
  assert_string_equal(cfg->server_host, w->host);
  assert_int_equal(cfg->server_rate_limit, w->rate_limit);
  assert_int_equal(cfg->http_port, w->http_port);
  assert_int_equal(cfg->grpc_port, w->grpc_port);
  assert_int_equal(cfg->log_level, w->log_level);
  assert_string_equal(cfg->log_output, w->log_output);
  assert_int_equal(cfg->watch_enabled, w->watch);
  assert_string_equal(cfg->database_engine, w->engine);
  assert_string_equal(cfg->database_uri, w->uri);
  assert_int_equal(cfg->database_auto_migrate, w->auto_migrate);
  assert_int_equal(cfg->database_max_data_per_write, w->max_data_per_write);
  assert_int_equal(cfg->database_max_retries, w->max_retries);
  assert_int_equal(cfg->database_watch_buffer_size, w->watch_buffer_size);
}

/* Loads yaml and argv (no environment); expects database.engine and
 * database.uri. */
static void expect_engine(const char *yaml, char **argv, const char *engine, const char *uri) {
  tc_config_t cfg;
  expect_ok(&cfg, yaml, argv, NONE);
  assert_string_equal(cfg.database_engine, engine);
  assert_string_equal(cfg.database_uri, uri);
  tc_config_free(&cfg);
}

/* ---- defaults and sources ----------------------------------------------- */

static void test_defaults(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg, NULL, NONE, NONE);
  assert_null(cfg.config_file);
  expect_values(&cfg, &(struct want){.host = "",
                                     .rate_limit = 10000,
                                     .http_port = 3476,
                                     .grpc_port = 3478,
                                     .log_level = TC_LOG_INFO,
                                     .log_output = "text",
                                     .watch = true,
                                     .engine = "sqlite",
                                     .uri = "",
                                     .auto_migrate = true,
                                     .max_data_per_write = 1000,
                                     .max_retries = 10,
                                     .watch_buffer_size = 1024});
  assert_int_equal(cfg.server_shutdown_grace_ms, 5000);
  assert_true(cfg.http_enabled);
  assert_string_equal(cfg.http_grpc_target_host, "127.0.0.1");
  assert_list(&cfg.http_cors_allowed_origins, ARGS("*"));
  assert_list(&cfg.http_cors_allowed_headers, ARGS("*"));
  assert_int_equal(cfg.grpc_max_message_size, 4194304);
  assert_string_equal(cfg.authn_method, "");
  assert_list(&cfg.authn_preshared_keys, NONE);
  assert_string_equal(cfg.database_writer_uri, "");
  assert_string_equal(cfg.database_reader_uri, "");
  assert_string_equal(cfg.database_backend_dir, "");
  tc_config_free(&cfg);
}

static void test_init_alone_gives_defaults(void **state) {
  (void)state;
  tc_config_t cfg;
  tc_config_init(&cfg);
  assert_int_equal(cfg.grpc_port, 3478);
  assert_string_equal(cfg.database_uri, "");
  tc_config_free(&cfg);
}

static void test_default_file_location(void **state) {
  (void)state;
  assert_int_equal(mkdir("config", 0700), 0);
  FILE *f = fopen("config/config.yaml", "w");
  assert_non_null(f);
  fputs("server:\n  grpc:\n    port: 4000\n", f);
  fclose(f);
  tc_config_t cfg;
  expect_ok(&cfg, NULL, NONE, NONE);
  assert_string_equal(cfg.config_file, "./config/config.yaml");
  assert_int_equal(cfg.grpc_port, 4000);
  tc_config_free(&cfg);
  /* -c wins over the default location */
  expect_ok(&cfg, "server:\n  grpc:\n    port: 4001\n", NONE, NONE);
  assert_int_equal(cfg.grpc_port, 4001);
  tc_config_free(&cfg);
  unlink("config/config.yaml");
  rmdir("config");
}

static void test_file_only(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg,
            "server:\n"
            "  host: 0.0.0.0\n"
            "  rate_limit: 250\n"
            "  shutdown_grace: 1h30m\n"
            "  http: {enabled: false, port: \"8080\"}\n"
            "  grpc:\n"
            "    port: 9090\n"
            "    max_message_size: 1048576\n"
            "logger: {level: debug, output: json}\n"
            "service: {watch: {enabled: false}}\n"
            "database:\n"
            "  engine: sqlite\n"
            "  uri: /var/lib/tc.db\n"
            "  auto_migrate: false\n"
            "  max_data_per_write: 500\n"
            "  max_retries: 3\n"
            "  watch_buffer_size: 1\n"
            "  backend_dir: /opt/tc/backends\n",
            NONE, NONE);
  assert_non_null(cfg.config_file);
  expect_values(&cfg, &(struct want){.host = "0.0.0.0",
                                     .rate_limit = 250,
                                     .http_port = 8080,
                                     .grpc_port = 9090,
                                     .log_level = TC_LOG_DEBUG,
                                     .log_output = "json",
                                     .watch = false,
                                     .engine = "sqlite",
                                     .uri = "/var/lib/tc.db",
                                     .auto_migrate = false,
                                     .max_data_per_write = 500,
                                     .max_retries = 3,
                                     .watch_buffer_size = 1});
  assert_int_equal(cfg.server_shutdown_grace_ms, 5400000);
  assert_false(cfg.http_enabled);
  assert_int_equal(cfg.grpc_max_message_size, 1048576);
  assert_string_equal(cfg.database_backend_dir, "/opt/tc/backends");
  tc_config_free(&cfg);
}

static void test_env_over_file(void **state) {
  (void)state;
  tc_config_t cfg;
  const char *yaml = "server: {grpc: {port: 4000}, http: {port: 4001}}\nlogger: {level: warn}\n";
  expect_ok(&cfg, yaml, NONE,
            ARGS("PATH=/bin", "PERMIFY_GRPC_PORT=5000", "PERMIFY_LOG_LEVEL=error",
                 "PERMIFY_HTTP_PORT=", "PERMIFY_RATE_LIMIT=7"));
  assert_int_equal(cfg.grpc_port, 5000);
  assert_int_equal(cfg.log_level, TC_LOG_ERROR);
  assert_int_equal(cfg.http_port, 4001); /* empty env counts as unset */
  assert_int_equal(cfg.server_rate_limit, 7);
  tc_config_free(&cfg);
  /* TUPLECAST_ spelling beats PERMIFY_, whatever the order in envp */
  expect_ok(&cfg, yaml, NONE, ARGS("TUPLECAST_GRPC_PORT=6000", "PERMIFY_GRPC_PORT=5000"));
  assert_int_equal(cfg.grpc_port, 6000);
  tc_config_free(&cfg);
}

static void test_flag_over_env(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg, "server: {grpc: {port: 4000}}\n",
            ARGS("--grpc-port", "7000", "--http-port=7001", "--log-level", "debug"),
            ARGS("PERMIFY_GRPC_PORT=5000", "TUPLECAST_HTTP_PORT=5001", "PERMIFY_LOG_LEVEL=error"));
  assert_int_equal(cfg.grpc_port, 7000);
  assert_int_equal(cfg.http_port, 7001);
  assert_int_equal(cfg.log_level, TC_LOG_DEBUG);
  tc_config_free(&cfg);
}

static void test_bool_flags(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg, "service: {watch: {enabled: false}}\nserver: {http: {enabled: true}}\n",
            ARGS("--service-watch-enabled", "--http-enabled=false", "--database-auto-migrate=0"),
            NONE);
  assert_true(cfg.watch_enabled);
  assert_false(cfg.http_enabled);
  assert_false(cfg.database_auto_migrate);
  tc_config_free(&cfg);
  /* a bare boolean flag takes no value, so "false" is a stray argument */
  expect_error(NULL, ARGS("--http-enabled", "false"), NONE, "\"false\": unexpected argument");
}

static void test_config_flag_spellings(void **state) {
  (void)state;
  char *path = write_file(".yaml", "server: {grpc: {port: 4100}}\n");
  char eq[256], shortform[256];
  snprintf(eq, sizeof eq, "--config=%s", path);
  snprintf(shortform, sizeof shortform, "-c%s", path);
  char **forms[] = {ARGS("--config", path), ARGS(eq), ARGS(shortform)};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    tc_config_t cfg;
    char *err = NULL;
    tc_config_init(&cfg);
    assert_int_equal(tc_config_load(&cfg, (int)count(forms[i]), forms[i], NONE, &err), 0);
    assert_int_equal(cfg.grpc_port, 4100);
    assert_string_equal(cfg.config_file, path);
    tc_config_free(&cfg);
  }
  unlink(path);
  free(path);
}

static void test_help(void **state) {
  (void)state;
  char **forms[] = {ARGS("-h"), ARGS("--grpc-port", "1", "--help"),
                    ARGS("--help", "--database-backend-dir", "/p", "--bogus"),
                    ARGS("--grpc-port", "1", "-h", "--database-backend-dir=/p")};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    tc_config_t cfg;
    char *err = NULL;
    tc_config_init(&cfg);
    assert_int_equal(tc_config_load(&cfg, (int)count(forms[i]), forms[i], NONE, &err),
                     TC_CONFIG_HELP);
    assert_null(err);
    /* Help lists the plugins of the directory the flags name. */
    assert_string_equal(cfg.database_backend_dir, i < 2 ? "" : "/p");
    tc_config_free(&cfg);
  }
  const char *u = tc_config_usage();
  assert_non_null(strstr(u, "--grpc-port PORT\n      server.grpc.port (default 3478)"));
  assert_non_null(
      strstr(u, "--database-engine NAME|PATH.so\n      database.engine (default sqlite)"));
  assert_non_null(strstr(u, "--distributed-picker-width")); /* the last flag fits */
  assert_non_null(strstr(u, "Precedence: flag > environment"));
}

/* ---- value syntax ------------------------------------------------------- */

static void test_durations(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t ms;
  } cases[] = {
      {"300s", 300000}, {"5m", 300000}, {"200h", 720000000}, {"1h30m", 5400000}, {"250ms", 250},
      {"1.5s", 1500},   {"0", 0},       {"+2s", 2000},       {"1500us", 1},      {"999999ns", 0},
      {".5m", 30000},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tc_config_t cfg;
    char flag[64];
    snprintf(flag, sizeof flag, "--server-shutdown-grace=%s", cases[i].text);
    expect_ok(&cfg, NULL, ARGS(flag), NONE);
    if (cfg.server_shutdown_grace_ms != cases[i].ms)
      fail_msg("%s: got %lld ms", cases[i].text, (long long)cfg.server_shutdown_grace_ms);
    tc_config_free(&cfg);
  }
}

static void test_type_errors(void **state) {
  (void)state;
  static const struct {
    const char *yaml, *want;
  } cases[] = {
      {"server: {grpc: {port: abc}}",
       "config: server.grpc.port: \"abc\" is not a port number (0-65535; 0 picks a free one)"},
      {"server: {grpc: {port: 70000}}", "server.grpc.port: \"70000\" is not a port number"},
      {"server: {http: {port: 65536}}", "server.http.port: \"65536\" is not a port number"},
      {"server: {http: {enabled: yes}}", "server.http.enabled: \"yes\" is not a boolean"},
      {"server: {rate_limit: 12x}", "server.rate_limit: \"12x\" is not an integer"},
      {"server: {rate_limit: 0}", "server.rate_limit: \"0\" is not an integer >= 1"},
      {"database: {max_data_per_write: -1}",
       "database.max_data_per_write: \"-1\" is not an integer"},
      {"database: {max_retries: 99999999999999999999}",
       "database.max_retries: \"99999999999999999999\""},
      {"server: {grpc: {max_message_size: 3000000000}}", "is not an integer in 1-2147483647"},
      {"server: {shutdown_grace: 5}", "server.shutdown_grace: \"5\" is not a duration"},
      {"server: {shutdown_grace: -1s}", "\"-1s\" is not a duration"},
      {"server: {shutdown_grace: 10x}", "\"10x\" is not a duration"},
      {"database: {garbage_collection: {interval: soon}}",
       "database.garbage_collection.interval: \"soon\""},
      {"logger: {level: verbose}",
       "logger.level: \"verbose\" is not one of debug, info, warn, error"},
      {"logger: {output: xml}", "logger.output: \"xml\" is not one of text, json"},
      {"distributed: {load: heavy}", "distributed.load: \"heavy\" is not a number"},
      {"server: {grpc: {port: [1, 2]}}", "server.grpc.port: expected a single value, found a list"},
      {"server: {grpc: {port: {a: 1}}}", "server.grpc.port: expected a value, found a mapping"},
      {"server: {grpc: 3478}", "server.grpc: expected a mapping of keys"},
      {"authn: {preshared: {keys: [[a]]}}", "authn.preshared.keys: expected a list of strings"},
      {"database: {sqlite: {uri: x}}", "database.sqlite: unknown key"},
      {"server: 1\nserver: 2", "server: expected a mapping"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_error(cases[i].yaml, NONE, NONE, cases[i].want);
}

static void test_errors_name_env_and_flag(void **state) {
  (void)state;
  expect_error(
      NULL, NONE, ARGS("PERMIFY_GRPC_PORT=abc"),
      "config: PERMIFY_GRPC_PORT: \"abc\" is not a port number (0-65535; 0 picks a free one)");
  expect_error(NULL, NONE, ARGS("TUPLECAST_DATABASE_MAX_RETRIES=many"),
               "config: TUPLECAST_DATABASE_MAX_RETRIES: \"many\" is not an integer");
  expect_error(NULL, ARGS("--grpc-port=abc"), NONE,
               "config: --grpc-port: \"abc\" is not a port number (0-65535; 0 picks a free one)");
  expect_error(NULL, ARGS("--http-enabled=maybe"), NONE,
               "--http-enabled: \"maybe\" is not a boolean");
}

static void test_int_underscores(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg, "database: {max_data_per_write: 1_000, watch_buffer_size: +5}\n", NONE, NONE);
  assert_int_equal(cfg.database_max_data_per_write, 1000);
  assert_int_equal(cfg.database_watch_buffer_size, 5);
  tc_config_free(&cfg);
  expect_error("database: {max_retries: 1__0}", NONE, NONE, "\"1__0\" is not an integer");
  expect_error("database: {max_retries: _10}", NONE, NONE, "\"_10\" is not an integer");
}

/* ---- refusals ------------------------------------------------------------- */

static void test_refused_settings(void **state) {
  (void)state;
  /* authn: a method Permify knows, and preshared needs a key (never empty). */
  expect_error(NULL, ARGS("--authn-enabled"), NONE,
               "config: authn.method: must be preshared or oidc when authn.enabled is true");
  expect_error("authn: {enabled: true, method: Preshared, preshared: {keys: [k]}}", NONE, NONE,
               "config: authn.method: must be preshared or oidc");
  expect_error(NULL, ARGS("--authn-enabled", "--authn-method=basic"), NONE,
               "config: --authn-method: must be preshared or oidc");
  expect_error("authn: {enabled: true, method: preshared}", NONE, NONE,
               "config: authn.preshared.keys: at least one key is required");
  expect_error("authn: {enabled: true, method: preshared, preshared: {keys: [a, \"\"]}}", NONE,
               NONE, "config: authn.preshared.keys: key 2 is empty");
  expect_error(NULL, NONE, ARGS("PERMIFY_AUTHN_ENABLED=true", "PERMIFY_AUTHN_METHOD=x"),
               "PERMIFY_AUTHN_METHOD: must be preshared or oidc");
  expect_error("distributed: {enabled: true}", NONE, NONE,
               "distributed.enabled: true is not supported yet");
  /* the merged value counts: a flag may turn a refused setting back off */
  tc_config_t cfg;
  expect_ok(&cfg, "authn: {enabled: true}\ndistributed: {enabled: true}\n",
            ARGS("--authn-enabled=false"), ARGS("PERMIFY_DISTRIBUTED_ENABLED=false"));
  tc_config_free(&cfg);
}

/* TLS keys reach the config from the file, flags and Permify's env names
 * (the files themselves are checked when the server starts). */
static void test_tls_keys(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg, "server: {grpc: {tls: {enabled: true, cert: /g.pem, key: /g.key}}}\n",
            ARGS("--http-tls-enabled", "--http-tls-cert-path=/h.pem"),
            ARGS("PERMIFY_HTTP_TLS_KEY_PATH=/h.key"));
  assert_true(cfg.grpc_tls_enabled);
  assert_string_equal(cfg.grpc_tls_cert, "/g.pem");
  assert_string_equal(cfg.grpc_tls_key, "/g.key");
  assert_true(cfg.http_tls_enabled);
  assert_string_equal(cfg.http_tls_cert, "/h.pem");
  assert_string_equal(cfg.http_tls_key, "/h.key");
  tc_config_free(&cfg);
  expect_ok(&cfg, NULL, NONE, ARGS("PERMIFY_GRPC_TLS_ENABLED=1"));
  assert_true(cfg.grpc_tls_enabled);
  assert_false(cfg.http_tls_enabled);
  tc_config_free(&cfg);
}

static void test_engines(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_engine("database: {engine: memory}\n", NONE, "memory", "");
  expect_engine(NULL,
                ARGS("--database-engine", "postgres", "--database-uri", "postgres://u:p@h:5432/db"),
                "postgres", "postgres://u:p@h:5432/db");
  expect_ok(&cfg,
            "database: {engine: postgres, writer: {uri: \"postgres://w\"}, "
            "reader: {uri: \"postgres://r\"}}\n",
            NONE, NONE);
  assert_string_equal(cfg.database_uri, "");
  assert_string_equal(cfg.database_writer_uri, "postgres://w");
  assert_string_equal(cfg.database_reader_uri, "postgres://r");
  tc_config_free(&cfg);
  /* No list of engine names: any name reaches the plugin loader. */
  expect_engine("database: {engine: mydb}\n", NONE, "mydb", "");
  expect_engine(NULL, ARGS("--database-engine", "/opt/tc/mydb.so"), "/opt/tc/mydb.so", "");
  /* A NUL byte would cut the name short unseen. */
  static const char nul[] = "database: {engine: \"mydb\\0/../x\"}\n";
  expect_error(nul, NONE, NONE, "database.engine: the value holds a NUL byte (");
  /* What an engine's uri must be is its plugin's to say (when it starts):
   * the configuration names no engine. */
  expect_engine("database: {engine: postgres}", NONE, "postgres", "");
}

/* ---- unknown names, files ------------------------------------------------ */

static void test_unknown_key(void **state) {
  (void)state;
  expect_error("server:\n  grpc:\n    prot: 1\n", NONE, NONE, "server.grpc.prot: unknown key (");
  expect_error("server:\n  grpc:\n    prot: 1\n", NONE, NONE, " line 3;");
  expect_error("app: {name: permify}\n", NONE, NONE, "app: unknown key");
  expect_error("logger: {log_level: debug}\n", NONE, NONE, "logger.log_level: unknown key");
}

static void test_unknown_flag_and_arguments(void **state) {
  (void)state;
  expect_error(NULL, ARGS("--grpc-prot", "1"), NONE,
               "config: --grpc-prot: unknown flag (see tuplecast serve --help)");
  expect_error(NULL, ARGS("--database-min-connections=1"), NONE, "unknown flag");
  expect_error(NULL, ARGS("extra"), NONE, "\"extra\": unexpected argument");
  expect_error(NULL, ARGS("--"), NONE, "\"--\": unexpected argument");
  expect_error(NULL, ARGS("--grpc-port"), NONE, "--grpc-port: needs a value");
  expect_error(NULL, ARGS("-c"), NONE, "-c: needs a file name");
}

static void test_file_problems(void **state) {
  (void)state;
  char *yml = write_file(".yml", "server: {}\n");
  expect_error(NULL, ARGS("-c", yml), NONE, "must end in .yaml");
  unlink(yml);
  free(yml);
  expect_error(NULL, ARGS("-c", "/nonexistent/dir/config.yaml"), NONE,
               "/nonexistent/dir/config.yaml: cannot read: No such file or directory");
  expect_error("server:\n  grpc:\n    port: 1\n   bad: [\n", NONE, NONE,
               " line 4: YAML syntax error: ");
  expect_error("a: b\n\"unterminated\n", NONE, NONE, "YAML syntax error");
  expect_error("- just\n- a list\n", NONE, NONE, "the top level must be a mapping");
  expect_error("server:\n  grpc:\n    port: 1\n    port: 2\n", NONE, NONE,
               "server.grpc.port: given twice (");
}

/* n levels of open (each `open`, then `close` n times) under key x. */
static char *nested(const char *head, const char *open, const char *leaf, const char *close,
                    size_t n) {
  size_t lo = strlen(open), lc = strlen(close), lh = strlen(head), ll = strlen(leaf);
  char *s = malloc(lh + n * (lo + lc) + ll + 2), *p = s;
  assert_non_null(s);
  memcpy(p, head, lh), p += lh;
  for (size_t i = 0; i < n; i++) memcpy(p, open, lo), p += lo;
  memcpy(p, leaf, ll), p += ll;
  for (size_t i = 0; i < n; i++) memcpy(p, close, lc), p += lc;
  strcpy(p, "\n");
  return s;
}

/* Deep nesting is refused on the line where it passes 64 levels, before
 * the document is built: a million flow levels cost libyaml hours
 * otherwise (its scanner is quadratic in flow depth). */
static void test_nesting_bounded(void **state) {
  (void)state;
  static const struct {
    const char *head, *open, *close, *want;
    size_t levels;
  } cases[] = {
      {"x: ", "[", "]", " line 1: nested deeper than 64 levels", 1000000},
      {"x: ", "{a: ", "}", " line 1: nested deeper than 64 levels", 1000000},
      {"x:\n", "- ", "", " line 2: nested deeper than 64 levels", 1000000},
      {"x:\n", " [\n", " ]\n", " line 65: nested deeper than 64 levels", 100000},
      /* 64 levels, the top mapping included, are parsed: the walk then
       * names the unknown key. */
      {"x: ", "[", "]", "x: unknown key (", 63},
      {"x: ", "[", "]", " line 1: nested deeper than 64 levels", 64},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *yaml = nested(cases[i].head, cases[i].open, "1", cases[i].close, cases[i].levels);
    expect_error(yaml, NONE, NONE, cases[i].want);
    free(yaml);
  }
}

static void test_empty_and_null_values(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg, "", NONE, NONE);
  assert_int_equal(cfg.grpc_port, 3478);
  tc_config_free(&cfg);
  expect_ok(&cfg, "# only a comment\n", NONE, NONE);
  tc_config_free(&cfg);
  expect_engine("server:\ndatabase:\n  uri:\n  engine: ~\nservice:\n  data:\n", NONE, "sqlite", "");
  expect_ok(&cfg, "server: {host: \"\"}\nlogger: {output: \"\"}\n", NONE, NONE);
  assert_string_equal(cfg.server_host, "");
  assert_string_equal(cfg.log_output, "text");
  tc_config_free(&cfg);
}

static void test_keys_case_insensitive(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg, "Server:\n  GRPC:\n    Port: 4200\n", NONE, NONE);
  assert_int_equal(cfg.grpc_port, 4200);
  tc_config_free(&cfg);
}

/* ---- lists ----------------------------------------------------------------- */

static void test_lists(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg,
            "authn:\n  preshared:\n    keys:\n      - alpha\n      - \"b,c\"\n"
            "server:\n  http:\n    cors_allowed_origins: [\"https://a.example\", "
            "\"https://b.example\"]\n    cors_allowed_headers: \"x-a,x-b\"\n",
            NONE, NONE);
  assert_list(&cfg.authn_preshared_keys, ARGS("alpha", "b,c"));
  assert_list(&cfg.http_cors_allowed_origins, ARGS("https://a.example", "https://b.example"));
  assert_list(&cfg.http_cors_allowed_headers, ARGS("x-a", "x-b"));
  tc_config_free(&cfg);

  expect_ok(&cfg, "server: {http: {cors_allowed_origins: []}}\n",
            ARGS("--authn-preshared-keys", "k1,k2", "--authn-preshared-keys=k3",
                 "--http-cors-allowed-headers="),
            ARGS("PERMIFY_AUTHN_PRESHARED_KEYS=e1"));
  assert_list(&cfg.authn_preshared_keys, ARGS("k1", "k2", "k3"));
  assert_list(&cfg.http_cors_allowed_origins, NONE);
  assert_list(&cfg.http_cors_allowed_headers, NONE);
  tc_config_free(&cfg);

  expect_ok(&cfg, "authn: {preshared: {keys: [f1]}}\n", NONE,
            ARGS("PERMIFY_AUTHN_PRESHARED_KEYS=e1,e2",
                 "PERMIFY_HTTP_CORS_ALLOWED_ORIGINS=https://x.example"));
  assert_list(&cfg.authn_preshared_keys, ARGS("e1", "e2"));
  assert_list(&cfg.http_cors_allowed_origins, ARGS("https://x.example"));
  tc_config_free(&cfg);
}

static void test_our_keys_have_no_permify_env(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg, NULL, NONE,
            ARGS("PERMIFY_GRPC_MAX_MESSAGE_SIZE=1", "TUPLECAST_SERVER_SHUTDOWN_GRACE=2s",
                 "TUPLECAST_DATABASE_BACKEND_DIR=/b"));
  assert_int_equal(cfg.grpc_max_message_size, 4194304);
  assert_int_equal(cfg.server_shutdown_grace_ms, 2000);
  assert_string_equal(cfg.database_backend_dir, "/b");
  tc_config_free(&cfg);
}

/* ---- a Permify deployment's file, every key of its config ------------------ */

static const char PERMIFY_CONFIG[] =
    "account_id: \"acme-prod\"\n"
    "server:\n"
    "  host: 0.0.0.0\n"
    "  rate_limit: 100\n"
    "  name_override: \"\"\n"
    "  http:\n"
    "    enabled: true\n"
    "    port: 3476\n"
    "    grpc_target_host: 127.0.0.1\n"
    "    tls:\n"
    "      enabled: false\n"
    "      cert: /etc/letsencrypt/live/yourdomain.com/fullchain.pem\n"
    "      key: /etc/letsencrypt/live/yourdomain.com/privkey.pem\n"
    "    cors_allowed_origins:\n"
    "      - 'https://app.example.com'\n"
    "    cors_allowed_headers: ['*']\n"
    "  grpc:\n"
    "    port: \"3478\"\n"
    "    tls:\n"
    "      enabled: false\n"
    "      cert: /etc/letsencrypt/live/yourdomain.com/fullchain.pem\n"
    "      key: /etc/letsencrypt/live/yourdomain.com/privkey.pem\n"
    "logger:\n"
    "  level: warn\n"
    "  output: json\n"
    "  file: \"\"\n"
    "  enabled: false\n"
    "  exporter: otlp\n"
    "  endpoint: collector:4318\n"
    "  insecure: true\n"
    "  urlpath: /v1/logs\n"
    "  headers: [\"api-key:abc\"]\n"
    "  protocol: http\n"
    "  service_name: permify\n"
    "profiler:\n"
    "  enabled: true\n"
    "  port: 6060\n"
    "authn:\n"
    "  enabled: false\n"
    "  method: preshared\n"
    "  preshared:\n"
    "    keys: [\"secret-1\", \"secret-2\"]\n"
    "  oidc:\n"
    "    issuer: https://issuer.example.com\n"
    "    audience: permify\n"
    "    refresh_interval: 15m\n"
    "    backoff_interval: 12s\n"
    "    backoff_frequency: 1m\n"
    "    backoff_max_retries: 5\n"
    "    valid_methods: [RS256, HS256]\n"
    "tracer:\n"
    "  enabled: true\n"
    "  exporter: zipkin\n"
    "  endpoint: http://localhost:9411/api/v2/spans\n"
    "  insecure: false\n"
    "  urlpath: /v1/traces\n"
    "  headers: []\n"
    "  protocol: grpc\n"
    "meter:\n"
    "  enabled: false\n"
    "  exporter: otlp\n"
    "  endpoint: telemetry.permify.co\n"
    "  insecure: false\n"
    "  urlpath: /v1/metrics\n"
    "  headers: []\n"
    "  interval: 300\n"
    "  protocol: http\n"
    "service:\n"
    "  circuit_breaker: false\n"
    "  watch:\n"
    "    enabled: true\n"
    "  schema:\n"
    "    cache:\n"
    "      number_of_counters: 1_000\n"
    "      max_cost: 10MiB\n"
    "  permission:\n"
    "    bulk_limit: 100\n"
    "    concurrency_limit: 100\n"
    "    cache:\n"
    "      number_of_counters: 10_000\n"
    "      max_cost: 10MiB\n"
    "  data:\n"
    "database:\n"
    "  engine: postgres\n"
    "  uri: postgres://user:password@host:5432/db_name\n"
    "  writer:\n"
    "    uri: postgres://user:password@primary:5432/db_name\n"
    "  reader:\n"
    "    uri: postgres://user:password@replica:5432/db_name\n"
    "  auto_migrate: false\n"
    "  max_connections: 30\n"
    "  max_open_connections: 20\n"
    "  max_idle_connections: 1\n"
    "  min_connections: 2\n"
    "  min_idle_connections: 1\n"
    "  max_connection_lifetime: 300s\n"
    "  max_connection_idle_time: 60s\n"
    "  health_check_period: 1m\n"
    "  max_connection_lifetime_jitter: 30s\n"
    "  connect_timeout: 10s\n"
    "  max_data_per_write: 1_000\n"
    "  max_retries: 10\n"
    "  watch_buffer_size: 100\n"
    "  garbage_collection:\n"
    "    enabled: true\n"
    "    interval: 200h\n"
    "    window: 200h\n"
    "    timeout: 5m\n"
    "distributed:\n"
    "  enabled: false\n"
    "  address: \"kubernetes:///permify.default:5000\"\n"
    "  port: \"5000\"\n"
    "  partition_count: 271\n"
    "  replication_factor: 20\n"
    "  load: 1.25\n"
    "  picker_width: 2\n";

static void test_permify_config_loads_unchanged(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(&cfg, PERMIFY_CONFIG, NONE, NONE);
  expect_values(&cfg, &(struct want){.host = "0.0.0.0",
                                     .rate_limit = 100,
                                     .http_port = 3476,
                                     .grpc_port = 3478,
                                     .log_level = TC_LOG_WARN,
                                     .log_output = "json",
                                     .watch = true,
                                     .engine = "postgres",
                                     .uri = "postgres://user:password@host:5432/db_name",
                                     .auto_migrate = false,
                                     .max_data_per_write = 1000,
                                     .max_retries = 10,
                                     .watch_buffer_size = 100});
  assert_list(&cfg.http_cors_allowed_origins, ARGS("https://app.example.com"));
  assert_string_equal(cfg.authn_method, "preshared");
  assert_list(&cfg.authn_preshared_keys, ARGS("secret-1", "secret-2"));
  assert_string_equal(cfg.database_writer_uri, "postgres://user:password@primary:5432/db_name");
  assert_string_equal(cfg.database_reader_uri, "postgres://user:password@replica:5432/db_name");
  tc_config_free(&cfg);
}

/* Every flag and env name Permify v1.7.3 defines for these keys is recognised. */
static void test_permify_flag_and_env_names(void **state) {
  (void)state;
  tc_config_t cfg;
  expect_ok(
      &cfg, NULL,
      ARGS("--account-id=a", "--server-host=h", "--server-rate-limit=5", "--server-name-override=n",
           "--http-enabled=true", "--http-port=1", "--http-grpc-target-host=t",
           "--http-tls-enabled=false", "--http-tls-cert-path=c", "--http-tls-key-path=k",
           "--http-cors-allowed-origins=o", "--http-cors-allowed-headers=h", "--grpc-port=2",
           "--grpc-tls-enabled=false", "--grpc-tls-cert-path=c", "--grpc-tls-key-path=k",
           "--log-level=warn", "--log-output=text", "--log-enabled=false", "--log-exporter=otlp",
           "--log-endpoint=e", "--log-insecure", "--log-urlpath=/u", "--log-headers=a:b",
           "--log-protocol=grpc", "--log-service-name=s", "--profiler-enabled",
           "--profiler-port=6060", "--authn-enabled=false", "--authn-method=oidc",
           "--authn-preshared-keys=k", "--authn-oidc-issuer=i", "--authn-oidc-audience=a",
           "--authn-oidc-refresh-interval=1m", "--authn-oidc-backoff-interval=1s",
           "--authn-oidc-backoff-frequency=1s", "--authn-oidc-backoff-max-retries=1",
           "--authn-oidc-valid-methods=RS256", "--tracer-enabled", "--tracer-exporter=otlp",
           "--tracer-endpoint=e", "--tracer-insecure", "--tracer-urlpath=/u",
           "--tracer-headers=a:b", "--tracer-protocol=http", "--meter-enabled",
           "--meter-exporter=otlp", "--meter-endpoint=e", "--meter-insecure", "--meter-urlpath=/u",
           "--meter-headers=a:b", "--meter-interval=60", "--meter-protocol=http",
           "--service-circuit-breaker", "--service-watch-enabled=false",
           "--service-schema-cache-number-of-counters=1", "--service-schema-cache-max-cost=1MiB",
           "--service-permission-bulk-limit=1", "--service-permission-concurrency-limit=1",
           "--service-permission-cache-number-of-counters=1",
           "--service-permission-cache-max-cost=1MiB", "--database-engine=memory",
           "--database-uri=u", "--database-writer-uri=w", "--database-reader-uri=r",
           "--database-auto-migrate=false", "--database-max-connections=1",
           "--database-max-open-connections=1", "--database-max-idle-connections=1",
           "--database-max-connection-lifetime=1s", "--database-max-connection-idle-time=1s",
           "--database-max-data-per-write=9", "--database-max-retries=8",
           "--database-watch-buffer-size=7", "--database-garbage-collection-enabled",
           "--database-garbage-collection-interval=1h", "--database-garbage-collection-timeout=1m",
           "--database-garbage-collection-window=1h", "--distributed-enabled=false",
           "--distributed-address=a", "--distributed-port=5000", "--distributed-partition-count=1",
           "--distributed-replication-factor=1", "--distributed-load=1.5",
           "--distributed-picker-width=1"),
      ARGS("PERMIFY_ACCOUNT_ID=a", "PERMIFY_NAME_OVERRIDE=n", "PERMIFY_LOG_URL_PATH=/u",
           "PERMIFY_TRACER_URL_PATH=/u", "PERMIFY_METER_URL_PATH=/u",
           "PERMIFY_AUTHN_OIDC_BACKOFF_RETRIES=3", "PERMIFY_DATABASE_MIN_CONNECTIONS=1",
           "PERMIFY_DATABASE_MIN_IDLE_CONNECTIONS=1", "PERMIFY_DATABASE_MAX_OPEN_CONNECTIONS=1",
           "PERMIFY_DATABASE_MAX_IDLE_CONNECTIONS=1", "PERMIFY_SERVER_HOST=env-host",
           "PERMIFY_HTTP_GRPC_TARGET_HOST=t2"));
  assert_string_equal(cfg.server_host, "h"); /* flag over env */
  assert_int_equal(cfg.server_rate_limit, 5);
  assert_int_equal(cfg.http_port, 1);
  assert_int_equal(cfg.grpc_port, 2);
  assert_string_equal(cfg.http_grpc_target_host, "t");
  assert_int_equal(cfg.log_level, TC_LOG_WARN);
  assert_string_equal(cfg.authn_method, "oidc");
  assert_false(cfg.watch_enabled);
  assert_string_equal(cfg.database_engine, "memory");
  assert_string_equal(cfg.database_uri, "u");
  assert_int_equal(cfg.database_max_data_per_write, 9);
  assert_int_equal(cfg.database_max_retries, 8);
  assert_int_equal(cfg.database_watch_buffer_size, 7);
  tc_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_init_alone_gives_defaults),
      cmocka_unit_test(test_default_file_location),
      cmocka_unit_test(test_file_only),
      cmocka_unit_test(test_env_over_file),
      cmocka_unit_test(test_flag_over_env),
      cmocka_unit_test(test_bool_flags),
      cmocka_unit_test(test_config_flag_spellings),
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_type_errors),
      cmocka_unit_test(test_errors_name_env_and_flag),
      cmocka_unit_test(test_int_underscores),
      cmocka_unit_test(test_refused_settings),
      cmocka_unit_test(test_tls_keys),
      cmocka_unit_test(test_engines),
      cmocka_unit_test(test_unknown_key),
      cmocka_unit_test(test_unknown_flag_and_arguments),
      cmocka_unit_test(test_file_problems),
      cmocka_unit_test(test_nesting_bounded),
      cmocka_unit_test(test_empty_and_null_values),
      cmocka_unit_test(test_keys_case_insensitive),
      cmocka_unit_test(test_lists),
      cmocka_unit_test(test_our_keys_have_no_permify_env),
      cmocka_unit_test(test_permify_config_loads_unchanged),
      cmocka_unit_test(test_permify_flag_and_env_names),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
