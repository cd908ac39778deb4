/* The table of configuration keys (YAML path, flag, env name, type, default,
 * where it is stored) and the parsing of one value of each type.  Internal to
 * config*.c.
 *
 * Ownership: a parsed tc__config_value_t owns its string or list until it is
 * stored (the field takes it) or released.
 */
#ifndef TC_CONFIG_KEYS_H
#define TC_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum tc__config_type {
  TC__CONFIG_STR,
  TC__CONFIG_BOOL,
  TC__CONFIG_INT,   /* int64_t within [min, max] */
  TC__CONFIG_PORT,  /* int, 1-65535 */
  TC__CONFIG_DUR,   /* Go duration syntax, stored as int64_t milliseconds */
  TC__CONFIG_LIST,  /* tc_config_list_t; a single string is split at commas */
  TC__CONFIG_LEVEL, /* int TC_LOG_* */
  TC__CONFIG_FLOAT  /* double */
};

/* What of a key's value is secret: never logged or printed as it is. */
enum tc__config_secret {
  TC__SECRET_NONE,
  TC__SECRET_WHOLE, /* every character (a list: every item) */
  TC__SECRET_URI    /* a URI's or conninfo's password; the rest is shown */
};

/* A key with no field in tc_config_t: checked, then dropped. */
#define TC__CONFIG_NOWHERE SIZE_MAX
/* Longest dotted YAML path we accept, with its NUL. */
#define TC__CONFIG_KEY_MAX 128

typedef struct tc__config_key_s {
  const char *key;  /* YAML path, lower case */
  const char *flag; /* without "--"; NULL if Permify has none */
  const char *env;  /* after PERMIFY_ / TUPLECAST_; NULL if none */
  enum tc__config_type type;
  size_t off;                    /* offsetof(tc_config_t, ...) or TC__CONFIG_NOWHERE */
  const char *def;               /* default, in the syntax a user would write */
  int64_t min, max;              /* TC__CONFIG_INT; max 0 means no upper bound */
  const char *const *choices;    /* TC__CONFIG_STR: allowed values, NULL-ended */
  const char *refuse;            /* TC__CONFIG_BOOL: why true is refused, NULL if allowed */
  bool ours;                     /* a tuplecast key: no PERMIFY_ env name */
  const char *arg;               /* --help's placeholder; NULL: from the type or choices */
  enum tc__config_secret secret; /* how the start-up line and dumps mask it */
} tc__config_key_t;

typedef union tc__config_value_u {
  char *s;
  bool b;
  int port;
  int level;
  int64_t n;
  double d;
  tc_config_list_t l;
} tc__config_value_t;

/* The table's length, checked against it at compile time. */
#define TC__CONFIG_NKEYS 101
extern const tc__config_key_t *const tc__config_keys;

/* Index of the key with that YAML path / flag name; TC__CONFIG_NKEYS if none. */
size_t tc__config_key_find(const char *path);
size_t tc__config_flag_find(const char *name, size_t len);
/* Whether path is a proper prefix of some key ("server.grpc"). */
bool tc__config_is_section(const char *path);
void tc__config_lower_copy(char *dst, const char *src);

/* Parses text as k's type.  0, TC_ENOMEM, or TC_ECONFIG with why set to e.g.
 * `"abc" is not a port number (1-65535)`. */
int tc__config_value_parse(const tc__config_key_t *k, const char *text, tc__config_value_t *out,
                           char *why, size_t whylen);
/* Moves a parsed value into a field of that type. */
void tc__config_value_store(enum tc__config_type type, tc__config_value_t *val, void *field);
/* Frees what a value or field of that type owns; leaves it empty. */
void tc__config_value_release(enum tc__config_type type, void *p);

int tc__config_list_from(const char *const *items, size_t count, tc_config_list_t *out);
/* Puts copies of head's items in front of list's. */
int tc__config_list_prepend(tc_config_list_t *list, const tc_config_list_t *head);

#endif
