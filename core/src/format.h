/* tc_format and tc_vformat (printf into a fresh malloc'd string) live in the
 * support library, which the plugins share: tuplecast/support.h.  Core's own
 * sources include this name for them; other modules include
 * tuplecast/support.h.
 *
 * Ownership: the caller frees the result with free(); NULL on out-of-memory.
 */
#ifndef TC_FORMAT_H
#define TC_FORMAT_H

#include "tuplecast/support.h"

#endif
