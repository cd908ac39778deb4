/* Server configuration: Permify's YAML keys, flags and environment variables
 * for `tuplecast serve`, merged with precedence flag > env > file > default.
 * docs/configuration.md lists every key and what tuplecast does with it.
 *
 * Ownership: every string and list in tc_config_t is malloc'd and owned by
 * the struct; tc_config_free releases them, *errmsg is the caller's to free().
 */
#ifndef TC_CONFIG_H
#define TC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* tc_config_load's return when -h/--help was among the arguments: print
 * tc_config_usage() and exit 0.  Positive so it never collides with TC_E*. */
#define TC_CONFIG_HELP 1

typedef struct tc_config_list_s {
  char **items;
  size_t count;
} tc_config_list_t;

typedef struct tc_config_s {
  char *config_file; /* the YAML file that was read, NULL if none */

  char *server_host;                /* server.host: HTTP bind host, "" = all */
  int64_t server_rate_limit;        /* server.rate_limit: requests/s, >= 1 */
  int64_t server_shutdown_grace_ms; /* server.shutdown_grace */
  bool http_enabled;                /* server.http.enabled */
  int http_port;                    /* server.http.port */
  char *http_grpc_target_host;      /* server.http.grpc_target_host */
  tc_config_list_t http_cors_allowed_origins;
  tc_config_list_t http_cors_allowed_headers;
  int grpc_port;                      /* server.grpc.port */
  int64_t grpc_max_message_size;      /* server.grpc.max_message_size, bytes */
  bool http_tls_enabled;              /* server.http.tls.enabled */
  char *http_tls_cert, *http_tls_key; /* server.http.tls.{cert,key}: PEM paths */
  bool grpc_tls_enabled;              /* server.grpc.tls.enabled */
  char *grpc_tls_cert, *grpc_tls_key; /* server.grpc.tls.{cert,key}: PEM paths */
  int64_t grpc_max_connections;      /* server.grpc.max_connections (ours); 0: from RLIMIT_NOFILE */
  int64_t grpc_handshake_timeout_ms; /* server.grpc.handshake_timeout (ours) */
  int64_t http_max_connections;      /* server.http.max_connections (ours); 0: from RLIMIT_NOFILE */
  int64_t http_header_timeout_ms;    /* server.http.header_timeout (ours) */
  int metrics_port; /* metrics.port (ours): /metrics only there; 0: on the HTTP port */

  int log_level;    /* logger.level as TC_LOG_* */
  char *log_output; /* logger.output: "text" or "json" */

  bool authn_enabled;                    /* authn.enabled */
  char *authn_method;                    /* authn.method: "preshared" or "oidc" */
  tc_config_list_t authn_preshared_keys; /* secrets: never log or print them */
  /* authn.oidc.*: read by authn_oidc.c when authn.method is oidc. */
  char *authn_oidc_issuer;
  char *authn_oidc_audience;
  int64_t authn_oidc_refresh_interval_ms;
  int64_t authn_oidc_backoff_interval_ms;
  int64_t authn_oidc_backoff_frequency_ms;
  int64_t authn_oidc_backoff_max_retries;
  tc_config_list_t authn_oidc_valid_methods;
  int64_t authn_oidc_clock_skew_ms; /* ours: leeway on exp/nbf/iat, whole seconds */

  bool watch_enabled; /* service.watch.enabled */

  char *database_engine; /* a plugin name, a path to a .so, or "memory" */
  char *database_uri;    /* sqlite: file path; memory: ""; postgres: URI */
  char *database_writer_uri;
  char *database_reader_uri;
  bool database_auto_migrate;
  int64_t database_max_data_per_write;
  int64_t database_max_retries;
  int64_t database_watch_buffer_size;
  int64_t database_max_connections;
  int64_t database_watch_poll_interval_ms; /* database.watch_poll_interval (ours) */
  bool database_gc_enabled;                /* database.garbage_collection.* */
  int64_t database_gc_interval_ms, database_gc_timeout_ms, database_gc_window_ms;
  char *database_backend_dir; /* "" = <dir of the executable>/backends */
} tc_config_t;

/* Fills cfg with the defaults.  Aborts if out of memory. */
void tc_config_init(tc_config_t *cfg);

/* Applies the config file, envp and argv on top of an initialised cfg.
 * argv: the arguments after "serve".  envp: NULL-terminated "K=V" list
 * (pass environ).  Returns 0, TC_CONFIG_HELP, or TC_ECONFIG with *errmsg set
 * to one line naming the key and the problem (TC_ENOMEM may leave it NULL).
 * cfg stays valid for tc_config_free whatever the result. */
int tc_config_load(tc_config_t *cfg, int argc, char **argv, char **envp, char **errmsg);

void tc_config_free(tc_config_t *cfg);

/* The options text for `tuplecast serve --help`. */
const char *tc_config_usage(void);

/* The keys in effect (not those read and dropped) as one compact JSON object
 * {"server.grpc.port":3478,...}, secrets masked as "***" (preshared keys;
 * a database URI's password).  malloc'd; NULL if out of memory. */
char *tc_config_dump_json(const tc_config_t *cfg);

#endif
