/* Logging to stderr with a level threshold.  Thread-safe (one fprintf each). */
#ifndef TC_LOG_H
#define TC_LOG_H

#include "tuplecast/backend.h" /* enum tc_log_level */

void tc_log_set_level(int level);
/* Parses debug|info|warn|error; returns the level or -1. */
int tc_log_level_parse(const char *s);
void tc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
