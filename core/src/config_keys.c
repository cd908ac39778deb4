#include "config_keys.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tuplecast/errors.h"

/* clang-format off */
#define AT(field) offsetof(tc_config_t, field)
#define NOWHERE TC__CONFIG_NOWHERE
#define STR TC__CONFIG_STR
#define BOOL TC__CONFIG_BOOL
#define INT TC__CONFIG_INT
#define PORT TC__CONFIG_PORT
#define DUR TC__CONFIG_DUR
#define LIST TC__CONFIG_LIST
#define LEVEL TC__CONFIG_LEVEL
#define FLOAT TC__CONFIG_FLOAT
#define WHOLE TC__SECRET_WHOLE
#define URI TC__SECRET_URI

#define NO_DISTRIBUTED "Permify's distributed mode (consistent-hash request routing) is not implemented"

/* K(key, flag, env, type, field, default, optional designators...) */
#define K(k, f, e, t, o, d, ...) \
  {.key = k, .flag = f, .env = e, .type = t, .off = o, .def = d, __VA_ARGS__}

static const char *const OUTPUTS[] = {"text", "json", "", NULL};

/* Permify v1.7.3's configuration keys with its flag and env names, plus ours
 * (.ours).  Keys stored NOWHERE change
 * nothing a client can see; docs/configuration.md says why for each. */
static const tc__config_key_t keys[] = {
  K("account_id", "account-id", "ACCOUNT_ID", STR, NOWHERE, ""),
  K("server.host", "server-host", "SERVER_HOST", STR, AT(server_host), ""),
  K("server.rate_limit", "server-rate-limit", "RATE_LIMIT", INT, AT(server_rate_limit), "10000", .min = 1),
  K("server.name_override", "server-name-override", "NAME_OVERRIDE", STR, NOWHERE, ""),
  K("server.shutdown_grace", "server-shutdown-grace", "SERVER_SHUTDOWN_GRACE", DUR, AT(server_shutdown_grace_ms), "5s", .ours = true),
  K("server.http.enabled", "http-enabled", "HTTP_ENABLED", BOOL, AT(http_enabled), "true"),
  K("server.http.port", "http-port", "HTTP_PORT", PORT, AT(http_port), "3476"),
  K("server.http.grpc_target_host", "http-grpc-target-host", "HTTP_GRPC_TARGET_HOST", STR, AT(http_grpc_target_host), "127.0.0.1"),
  K("server.http.tls.enabled", "http-tls-enabled", "HTTP_TLS_ENABLED", BOOL, AT(http_tls_enabled), "false"),
  K("server.http.tls.cert", "http-tls-cert-path", "HTTP_TLS_CERT_PATH", STR, AT(http_tls_cert), ""),
  K("server.http.tls.key", "http-tls-key-path", "HTTP_TLS_KEY_PATH", STR, AT(http_tls_key), ""),
  K("server.http.cors_allowed_origins", "http-cors-allowed-origins", "HTTP_CORS_ALLOWED_ORIGINS", LIST, AT(http_cors_allowed_origins), "*"),
  K("server.http.cors_allowed_headers", "http-cors-allowed-headers", "HTTP_CORS_ALLOWED_HEADERS", LIST, AT(http_cors_allowed_headers), "*"),
  K("server.grpc.port", "grpc-port", "GRPC_PORT", PORT, AT(grpc_port), "3478"),
  K("server.grpc.max_message_size", "grpc-max-message-size", "GRPC_MAX_MESSAGE_SIZE", INT, AT(grpc_max_message_size), "4194304", .min = 1, .max = INT32_MAX, .ours = true),
  K("server.grpc.max_connections", "grpc-max-connections", "GRPC_MAX_CONNECTIONS", INT, AT(grpc_max_connections), "0", .min = 0, .max = INT32_MAX, .ours = true),
  K("server.grpc.handshake_timeout", "grpc-handshake-timeout", "GRPC_HANDSHAKE_TIMEOUT", DUR, AT(grpc_handshake_timeout_ms), "10s", .ours = true),
  K("server.http.max_connections", "http-max-connections", "HTTP_MAX_CONNECTIONS", INT, AT(http_max_connections), "0", .min = 0, .max = INT32_MAX, .ours = true),
  K("server.http.header_timeout", "http-header-timeout", "HTTP_HEADER_TIMEOUT", DUR, AT(http_header_timeout_ms), "5s", .ours = true),
  K("server.grpc.tls.enabled", "grpc-tls-enabled", "GRPC_TLS_ENABLED", BOOL, AT(grpc_tls_enabled), "false"),
  K("server.grpc.tls.cert", "grpc-tls-cert-path", "GRPC_TLS_CERT_PATH", STR, AT(grpc_tls_cert), ""),
  K("server.grpc.tls.key", "grpc-tls-key-path", "GRPC_TLS_KEY_PATH", STR, AT(grpc_tls_key), ""),

  K("metrics.port", "metrics-port", "METRICS_PORT", PORT, AT(metrics_port), "0", .ours = true),

  K("logger.level", "log-level", "LOG_LEVEL", LEVEL, AT(log_level), "info"),
  K("logger.output", "log-output", "LOG_OUTPUT", STR, AT(log_output), "text", .choices = OUTPUTS),
  K("logger.enabled", "log-enabled", "LOG_ENABLED", BOOL, NOWHERE, "false"),
  K("logger.exporter", "log-exporter", "LOG_EXPORTER", STR, NOWHERE, "otlp"),
  K("logger.endpoint", "log-endpoint", "LOG_ENDPOINT", STR, NOWHERE, ""),
  K("logger.insecure", "log-insecure", "LOG_INSECURE", BOOL, NOWHERE, "false"),
  K("logger.urlpath", "log-urlpath", "LOG_URL_PATH", STR, NOWHERE, ""),
  K("logger.headers", "log-headers", "LOG_HEADERS", LIST, NOWHERE, "", .secret = WHOLE),
  K("logger.protocol", "log-protocol", "LOG_PROTOCOL", STR, NOWHERE, "http"),
  K("logger.service_name", "log-service-name", "LOG_SERVICE_NAME", STR, NOWHERE, "permify"),
  /* In Permify's example.config.yaml, though Permify reads nothing from it. */
  K("logger.file", NULL, NULL, STR, NOWHERE, ""),

  K("profiler.enabled", "profiler-enabled", "PROFILER_ENABLED", BOOL, NOWHERE, "false"),
  K("profiler.port", "profiler-port", "PROFILER_PORT", STR, NOWHERE, ""),

  K("authn.enabled", "authn-enabled", "AUTHN_ENABLED", BOOL, AT(authn_enabled), "false"),
  K("authn.method", "authn-method", "AUTHN_METHOD", STR, AT(authn_method), ""),
  K("authn.preshared.keys", "authn-preshared-keys", "AUTHN_PRESHARED_KEYS", LIST, AT(authn_preshared_keys), "", .secret = WHOLE),
  K("authn.oidc.issuer", "authn-oidc-issuer", "AUTHN_OIDC_ISSUER", STR, AT(authn_oidc_issuer), ""),
  K("authn.oidc.audience", "authn-oidc-audience", "AUTHN_OIDC_AUDIENCE", STR, AT(authn_oidc_audience), ""),
  K("authn.oidc.refresh_interval", "authn-oidc-refresh-interval", "AUTHN_OIDC_REFRESH_INTERVAL", DUR, AT(authn_oidc_refresh_interval_ms), "15m"),
  K("authn.oidc.backoff_interval", "authn-oidc-backoff-interval", "AUTHN_OIDC_BACKOFF_INTERVAL", DUR, AT(authn_oidc_backoff_interval_ms), "12s"),
  K("authn.oidc.backoff_frequency", "authn-oidc-backoff-frequency", "AUTHN_OIDC_BACKOFF_FREQUENCY", DUR, AT(authn_oidc_backoff_frequency_ms), "0s"),
  K("authn.oidc.backoff_max_retries", "authn-oidc-backoff-max-retries", "AUTHN_OIDC_BACKOFF_RETRIES", INT, AT(authn_oidc_backoff_max_retries), "5"),
  K("authn.oidc.valid_methods", "authn-oidc-valid-methods", "AUTHN_OIDC_VALID_METHODS", LIST, AT(authn_oidc_valid_methods), "RS256,HS256"),
  K("authn.oidc.clock_skew", "authn-oidc-clock-skew", "AUTHN_OIDC_CLOCK_SKEW", DUR, AT(authn_oidc_clock_skew_ms), "5s", .ours = true),

  K("tracer.enabled", "tracer-enabled", "TRACER_ENABLED", BOOL, NOWHERE, "false"),
  K("tracer.exporter", "tracer-exporter", "TRACER_EXPORTER", STR, NOWHERE, ""),
  K("tracer.endpoint", "tracer-endpoint", "TRACER_ENDPOINT", STR, NOWHERE, ""),
  K("tracer.insecure", "tracer-insecure", "TRACER_INSECURE", BOOL, NOWHERE, "false"),
  K("tracer.urlpath", "tracer-urlpath", "TRACER_URL_PATH", STR, NOWHERE, ""),
  K("tracer.headers", "tracer-headers", "TRACER_HEADERS", LIST, NOWHERE, "", .secret = WHOLE),
  K("tracer.protocol", "tracer-protocol", "TRACER_PROTOCOL", STR, NOWHERE, "http"),

  K("meter.enabled", "meter-enabled", "METER_ENABLED", BOOL, NOWHERE, "false"),
  K("meter.exporter", "meter-exporter", "METER_EXPORTER", STR, NOWHERE, "otlp"),
  K("meter.endpoint", "meter-endpoint", "METER_ENDPOINT", STR, NOWHERE, "telemetry.permify.co"),
  K("meter.insecure", "meter-insecure", "METER_INSECURE", BOOL, NOWHERE, "false"),
  K("meter.urlpath", "meter-urlpath", "METER_URL_PATH", STR, NOWHERE, ""),
  K("meter.headers", "meter-headers", "METER_HEADERS", LIST, NOWHERE, "", .secret = WHOLE),
  K("meter.interval", "meter-interval", "METER_INTERVAL", INT, NOWHERE, "300"),
  K("meter.protocol", "meter-protocol", "METER_PROTOCOL", STR, NOWHERE, "http"),

  K("service.circuit_breaker", "service-circuit-breaker", "SERVICE_CIRCUIT_BREAKER", BOOL, NOWHERE, "false"),
  K("service.watch.enabled", "service-watch-enabled", "SERVICE_WATCH_ENABLED", BOOL, AT(watch_enabled), "true"),
  K("service.schema.cache.number_of_counters", "service-schema-cache-number-of-counters", "SERVICE_SCHEMA_CACHE_NUMBER_OF_COUNTERS", INT, NOWHERE, "1000"),
  K("service.schema.cache.max_cost", "service-schema-cache-max-cost", "SERVICE_SCHEMA_CACHE_MAX_COST", STR, NOWHERE, "10MiB"),
  K("service.permission.bulk_limit", "service-permission-bulk-limit", "SERVICE_PERMISSION_BULK_LIMIT", INT, NOWHERE, "100"),
  K("service.permission.concurrency_limit", "service-permission-concurrency-limit", "SERVICE_PERMISSION_CONCURRENCY_LIMIT", INT, NOWHERE, "100"),
  K("service.permission.cache.number_of_counters", "service-permission-cache-number-of-counters", "SERVICE_PERMISSION_CACHE_NUMBER_OF_COUNTERS", INT, NOWHERE, "10000"),
  K("service.permission.cache.max_cost", "service-permission-cache-max-cost", "SERVICE_PERMISSION_CACHE_MAX_COST", STR, NOWHERE, "10MiB"),

  K("database.engine", "database-engine", "DATABASE_ENGINE", STR, AT(database_engine), "sqlite", .arg = "NAME|PATH.so"),
  K("database.uri", "database-uri", "DATABASE_URI", STR, AT(database_uri), "", .secret = URI),
  K("database.writer.uri", "database-writer-uri", "DATABASE_WRITER_URI", STR, AT(database_writer_uri), "", .secret = URI),
  K("database.reader.uri", "database-reader-uri", "DATABASE_READER_URI", STR, AT(database_reader_uri), "", .secret = URI),
  K("database.auto_migrate", "database-auto-migrate", "DATABASE_AUTO_MIGRATE", BOOL, AT(database_auto_migrate), "true"),
  K("database.max_connections", "database-max-connections", "DATABASE_MAX_CONNECTIONS", INT, AT(database_max_connections), "0", .min = 0),
  K("database.max_open_connections", "database-max-open-connections", "DATABASE_MAX_OPEN_CONNECTIONS", INT, NOWHERE, "20"),
  K("database.max_idle_connections", "database-max-idle-connections", "DATABASE_MAX_IDLE_CONNECTIONS", INT, NOWHERE, "1"),
  K("database.min_connections", NULL, "DATABASE_MIN_CONNECTIONS", INT, NOWHERE, "0"),
  K("database.min_idle_connections", NULL, "DATABASE_MIN_IDLE_CONNECTIONS", INT, NOWHERE, "1"),
  K("database.max_connection_lifetime", "database-max-connection-lifetime", "DATABASE_MAX_CONNECTION_LIFETIME", DUR, NOWHERE, "300s"),
  K("database.max_connection_idle_time", "database-max-connection-idle-time", "DATABASE_MAX_CONNECTION_IDLE_TIME", DUR, NOWHERE, "60s"),
  K("database.health_check_period", NULL, NULL, DUR, NOWHERE, "0s"),
  K("database.max_connection_lifetime_jitter", NULL, NULL, DUR, NOWHERE, "0s"),
  K("database.connect_timeout", NULL, NULL, DUR, NOWHERE, "0s"),
  K("database.max_data_per_write", "database-max-data-per-write", "DATABASE_MAX_DATA_PER_WRITE", INT, AT(database_max_data_per_write), "1000", .min = 1),
  K("database.max_retries", "database-max-retries", "DATABASE_MAX_RETRIES", INT, AT(database_max_retries), "10"),
  K("database.watch_buffer_size", "database-watch-buffer-size", "DATABASE_WATCH_BUFFER_SIZE", INT, AT(database_watch_buffer_size), "1024", .min = 1),
  K("database.watch_poll_interval", "database-watch-poll-interval", "DATABASE_WATCH_POLL_INTERVAL", DUR, AT(database_watch_poll_interval_ms), "100ms", .ours = true),
  K("database.garbage_collection.enabled", "database-garbage-collection-enabled", "DATABASE_GARBAGE_COLLECTION_ENABLED", BOOL, AT(database_gc_enabled), "false"),
  K("database.garbage_collection.interval", "database-garbage-collection-interval", "DATABASE_GARBAGE_COLLECTION_INTERVAL", DUR, AT(database_gc_interval_ms), "0s"),
  K("database.garbage_collection.timeout", "database-garbage-collection-timeout", "DATABASE_GARBAGE_COLLECTION_TIMEOUT", DUR, AT(database_gc_timeout_ms), "0s"),
  K("database.garbage_collection.window", "database-garbage-collection-window", "DATABASE_GARBAGE_COLLECTION_WINDOW", DUR, AT(database_gc_window_ms), "0s"),
  K("database.backend_dir", "database-backend-dir", "DATABASE_BACKEND_DIR", STR, AT(database_backend_dir), "", .ours = true),

  K("distributed.enabled", "distributed-enabled", "DISTRIBUTED_ENABLED", BOOL, NOWHERE, "false", .refuse = NO_DISTRIBUTED),
  K("distributed.address", "distributed-address", "DISTRIBUTED_ADDRESS", STR, NOWHERE, ""),
  K("distributed.port", "distributed-port", "DISTRIBUTED_PORT", STR, NOWHERE, "5000"),
  K("distributed.partition_count", "distributed-partition-count", "DISTRIBUTED_PARTITION_COUNT", INT, NOWHERE, "0"),
  K("distributed.replication_factor", "distributed-replication-factor", "DISTRIBUTED_REPLICATION_FACTOR", INT, NOWHERE, "0"),
  K("distributed.load", "distributed-load", "DISTRIBUTED_LOAD", FLOAT, NOWHERE, "0"),
  K("distributed.picker_width", "distributed-picker-width", "DISTRIBUTED_PICKER_WIDTH", INT, NOWHERE, "0"),
};
/* clang-format on */

_Static_assert(sizeof keys / sizeof keys[0] == TC__CONFIG_NKEYS,
               "TC__CONFIG_NKEYS must match the key table");

const tc__config_key_t *const tc__config_keys = keys;

size_t tc__config_key_find(const char *path) {
  for (size_t i = 0; i < TC__CONFIG_NKEYS; i++)
    if (strcmp(keys[i].key, path) == 0) return i;
  return TC__CONFIG_NKEYS;
}

size_t tc__config_flag_find(const char *name, size_t len) {
  for (size_t i = 0; i < TC__CONFIG_NKEYS; i++)
    if (keys[i].flag && strlen(keys[i].flag) == len && !strncmp(keys[i].flag, name, len)) return i;
  return TC__CONFIG_NKEYS;
}

bool tc__config_is_section(const char *path) {
  /* Permify's service.data has no keys, and its example config lists it. */
  if (strcmp(path, "service.data") == 0) return true;
  size_t n = strlen(path);
  for (size_t i = 0; i < TC__CONFIG_NKEYS; i++)
    if (strncmp(keys[i].key, path, n) == 0 && keys[i].key[n] == '.') return true;
  return false;
}

void tc__config_lower_copy(char *dst, const char *src) {
  while ((*dst++ = (char)tolower((unsigned char)*src++)) != '\0') {
  }
}

/* ---- lists -------------------------------------------------------------- */

int tc__config_list_from(const char *const *items, size_t count, tc_config_list_t *out) {
  *out = (tc_config_list_t){NULL, 0};
  if (count == 0) return 0;
  out->items = calloc(count, sizeof *out->items);
  if (out->items == NULL) return TC_ENOMEM;
  for (; out->count < count; out->count++) {
    out->items[out->count] = strdup(items[out->count]);
    if (out->items[out->count] == NULL) {
      tc__config_value_release(LIST, out);
      return TC_ENOMEM;
    }
  }
  return 0;
}

int tc__config_list_prepend(tc_config_list_t *list, const tc_config_list_t *head) {
  size_t n = head->count + list->count;
  char **items = calloc(n ? n : 1, sizeof *items);
  if (items == NULL) return TC_ENOMEM;
  for (size_t i = 0; i < head->count; i++) {
    items[i] = strdup(head->items[i]);
    if (items[i] == NULL) {
      tc_config_list_t partial = {items, i};
      tc__config_value_release(LIST, &partial);
      return TC_ENOMEM;
    }
  }
  if (list->count) /* an empty list may have no array at all */
    memcpy(items + head->count, list->items, list->count * sizeof *items);
  free(list->items);
  *list = (tc_config_list_t){items, n};
  return 0;
}

/* "a,b" -> [a, b]; "" -> [] (viper's string-to-slice rule, no trimming). */
static int split_list(const char *text, tc_config_list_t *out) {
  size_t count = *text ? 1 : 0;
  for (const char *p = text; *p; p++) count += *p == ',';
  char *copy = strdup(text);
  const char **items = calloc(count + 1, sizeof *items);
  int rc = TC_ENOMEM;
  if (copy != NULL && items != NULL) {
    char *p = copy;
    for (size_t i = 0; i < count; i++) {
      items[i] = p;
      p += strcspn(p, ",");
      *p++ = '\0';
    }
    rc = tc__config_list_from(items, count, out);
  }
  free(copy);
  free(items);
  return rc;
}

/* ---- scalars ------------------------------------------------------------ */

/* Go's strconv.ParseBool, which viper and pflag use. */
static int parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (!strcmp(s, yes[i])) return *out = true, 0;
    if (!strcmp(s, no[i])) return *out = false, 0;
  }
  return -1;
}

/* Decimal; '_' between digits is allowed, as in Go and YAML ("1_000"). */
static int parse_int(const char *s, int64_t *out) {
  char digits[32];
  size_t n = 0;
  if (*s == '-' || *s == '+') digits[n++] = *s++;
  for (const char *p = s; *p; p++) {
    bool sep = *p == '_' && p > s && isdigit((unsigned char)p[-1]) && isdigit((unsigned char)p[1]);
    if (!isdigit((unsigned char)*p) && !sep) return -1;
    if (sep) continue;
    if (n + 1 >= sizeof digits) return -1;
    digits[n++] = *p;
  }
  digits[n] = '\0';
  if (*s == '\0') return -1;
  char *end;
  errno = 0;
  long long v = strtoll(digits, &end, 10);
  if (*end != '\0' || errno == ERANGE) return -1;
  *out = v;
  return 0;
}

/* Go's time.ParseDuration without negative values, in milliseconds
 * (truncated): "300s", "1h30m", "1.5h", "250ms", "0". */
static int parse_duration(const char *s, int64_t *out_ms) {
  static const struct {
    const char *unit;
    int64_t ns;
  } units[] = {
      {"ns", 1},       {"us", 1000},      {"\xc2\xb5s", 1000}, {"\xce\xbcs", 1000},
      {"ms", 1000000}, {"s", 1000000000}, {"m", 60000000000},  {"h", 3600000000000},
  };
  if (*s == '+') s++;
  if (!strcmp(s, "0")) return *out_ms = 0, 0;
  if (*s == '\0') return -1;
  int64_t total = 0;
  while (*s) {
    const char *start = s;
    uint64_t whole = 0;
    for (; isdigit((unsigned char)*s); s++) {
      if (whole > (UINT64_MAX - 9) / 10) return -1;
      whole = whole * 10 + (uint64_t)(*s - '0');
    }
    double frac = 0, scale = 1;
    if (*s == '.')
      for (s++; isdigit((unsigned char)*s); s++) frac += (*s - '0') / (scale *= 10);
    if (s == start || (s == start + 1 && *start == '.')) return -1;
    size_t u = 0, best = 0, best_len = 0;
    for (; u < sizeof units / sizeof units[0]; u++) {
      size_t n = strlen(units[u].unit);
      if (!strncmp(s, units[u].unit, n) && n > best_len) best = u, best_len = n;
    }
    if (best_len == 0) return -1;
    s += best_len;
    int64_t unit = units[best].ns;
    if (whole > (uint64_t)(INT64_MAX / unit)) return -1;
    int64_t part = (int64_t)whole * unit + (int64_t)(frac * (double)unit);
    if (part < 0 || total > INT64_MAX - part) return -1;
    total += part;
  }
  *out_ms = total / 1000000;
  return 0;
}

static void choices_text(const char *const *choices, char *buf, size_t size) {
  size_t n = 0;
  buf[0] = '\0';
  for (; *choices; choices++)
    if (**choices && n < size)
      n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", *choices);
}

int tc__config_value_parse(const tc__config_key_t *k, const char *text, tc__config_value_t *out,
                           char *why, size_t whylen) {
  memset(out, 0, sizeof *out);
  int64_t n;
  char list[128];
  switch (k->type) {
  case STR: {
    bool ok = k->choices == NULL;
    for (const char *const *c = k->choices; c && *c; c++) ok = ok || !strcmp(*c, text);
    if (!ok) {
      choices_text(k->choices, list, sizeof list);
      snprintf(why, whylen, "\"%s\" is not one of %s", text, list);
      return TC_ECONFIG;
    }
    out->s = strdup(text);
    return out->s ? 0 : TC_ENOMEM;
  }
  case BOOL:
    if (parse_bool(text, &out->b) == 0) return 0;
    snprintf(why, whylen, "\"%s\" is not a boolean (true or false)", text);
    return TC_ECONFIG;
  case INT: {
    int64_t max = k->max ? k->max : INT64_MAX;
    if (parse_int(text, &n) == 0 && n >= k->min && n <= max) return out->n = n, 0;
    if (k->max)
      snprintf(why, whylen, "\"%s\" is not an integer in %" PRId64 "-%" PRId64, text, k->min, max);
    else
      snprintf(why, whylen, "\"%s\" is not an integer >= %" PRId64, text, k->min);
    return TC_ECONFIG;
  }
  case PORT:
    if (parse_int(text, &n) == 0 && n >= 0 && n <= 65535) return out->port = (int)n, 0;
    snprintf(why, whylen, "\"%s\" is not a port number (0-65535; 0 picks a free one)", text);
    return TC_ECONFIG;
  case DUR:
    if (parse_duration(text, &out->n) == 0) return 0;
    snprintf(why, whylen, "\"%s\" is not a duration (Go syntax: 300s, 5m, 1h30m, 250ms)", text);
    return TC_ECONFIG;
  case LIST: return split_list(text, &out->l);
  case LEVEL:
    if ((out->level = tc_log_level_parse(text)) >= 0) return 0;
    snprintf(why, whylen, "\"%s\" is not one of debug, info, warn, error", text);
    return TC_ECONFIG;
  case FLOAT: {
    char *end;
    out->d = strtod(text, &end);
    if (*text && *end == '\0' && isfinite(out->d)) return 0;
    snprintf(why, whylen, "\"%s\" is not a number", text);
    return TC_ECONFIG;
  }
  }
  return TC_EINTERNAL;
}

void tc__config_value_store(enum tc__config_type type, tc__config_value_t *val, void *field) {
  switch (type) {
  case STR: *(char **)field = val->s; break;
  case BOOL: *(bool *)field = val->b; break;
  case INT:
  case DUR: *(int64_t *)field = val->n; break;
  case PORT: *(int *)field = val->port; break;
  case LEVEL: *(int *)field = val->level; break;
  case LIST: *(tc_config_list_t *)field = val->l; break;
  case FLOAT: *(double *)field = val->d; break;
  }
  memset(val, 0, sizeof *val);
}

void tc__config_value_release(enum tc__config_type type, void *p) {
  if (type == STR) {
    free(*(char **)p);
    *(char **)p = NULL;
  } else if (type == LIST) {
    tc_config_list_t *l = p;
    for (size_t i = 0; i < l->count; i++) free(l->items[i]);
    free(l->items);
    *l = (tc_config_list_t){NULL, 0};
  }
}
