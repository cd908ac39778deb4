/* `tuplecast serve --help`, generated from the key table so it cannot drift. */
#include <stdio.h>
#include <string.h>

#include "config_keys.h"

static const char HEAD[] =
    "Usage: tuplecast serve [-c FILE] [flags]\n"
    "\n"
    "  -c, --config FILE  YAML config file; the name must end in .yaml\n"
    "                     (default: ./config/config.yaml if it exists)\n"
    "  -h, --help         show this text\n"
    "\n";

static const char TAIL[] =
    "\n"
    "Flags take --flag value or --flag=value; booleans also --flag alone; lists are\n"
    "comma-separated.  Each flag's environment variable is PERMIFY_<NAME> or\n"
    "TUPLECAST_<NAME> (docs/configuration.md).  Precedence: flag > environment >\n"
    "config file > default.\n";

static void placeholder(const tc__config_key_t *k, char *buf, size_t size) {
  static const char *const names[] = {
      [TC__CONFIG_STR] = "STRING",
      [TC__CONFIG_BOOL] = "[=true|false]",
      [TC__CONFIG_INT] = "N",
      [TC__CONFIG_PORT] = "PORT",
      [TC__CONFIG_DUR] = "DURATION",
      [TC__CONFIG_LIST] = "A,B,...",
      [TC__CONFIG_LEVEL] = "debug|info|warn|error",
      [TC__CONFIG_FLOAT] = "NUMBER",
  };
  size_t n = 0;
  buf[0] = '\0';
  if (k->arg) n = (size_t)snprintf(buf, size, "%s", k->arg);
  for (const char *const *c = k->choices; c && *c; c++)
    if (**c && n < size) n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? "|" : "", *c);
  if (n == 0) snprintf(buf, size, "%s", names[k->type]);
}

const char *tc_config_usage(void) {
  static char text[32768];
  if (text[0] != '\0') return text;
  size_t n = (size_t)snprintf(text, sizeof text, "%s", HEAD);
  for (size_t i = 0; i < TC__CONFIG_NKEYS && n < sizeof text; i++) {
    const tc__config_key_t *k = &tc__config_keys[i];
    if (k->flag == NULL) continue;
    char arg[160];
    placeholder(k, arg, sizeof arg);
    n += (size_t)snprintf(text + n, sizeof text - n, "  --%s %s\n      %s%s%s%s%s\n", k->flag, arg,
                          k->key, *k->def ? " (default " : "", k->def, *k->def ? ")" : "",
                          k->refuse                      ? "; true is refused: not implemented"
                          : k->off == TC__CONFIG_NOWHERE ? "; accepted, no effect"
                                                         : "");
  }
  if (n < sizeof text) snprintf(text + n, sizeof text - n, "%s", TAIL);
  return text;
}
