/* printf into a freshly malloc'd string (vasprintf is not in POSIX).
 *
 * Ownership: the caller frees the result with free(); NULL on out-of-memory.
 */
#ifndef TC_FORMAT_H
#define TC_FORMAT_H

#include <stdarg.h>

char *tc_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *tc_vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
