/* A plugin that is wrong in exactly one way, chosen at compile time, for the
 * loader's negative tests.  It never runs past the loader's checks. */
#include <stddef.h>

#include "tuplecast/backend.h"

#ifndef BROKEN_MAGIC
#define BROKEN_MAGIC TC_BACKEND_MAGIC
#endif
#ifndef BROKEN_MAJOR
#define BROKEN_MAJOR TC_BACKEND_ABI_MAJOR
#endif
#ifndef BROKEN_SIZE
#define BROKEN_SIZE sizeof(tc_backend_api_t)
#endif
#ifndef BROKEN_FINGERPRINT
#define BROKEN_FINGERPRINT TC_BACKEND_FINGERPRINT
#endif
#ifndef BROKEN_ENTRY
#define BROKEN_ENTRY tc_backend_entry_v2
#endif

static const tc_backend_api_t api = {
    .magic = BROKEN_MAGIC,
    .abi_major = BROKEN_MAJOR,
    .abi_minor = 0,
    .struct_size = (uint32_t)(BROKEN_SIZE),
    .build_fingerprint = BROKEN_FINGERPRINT,
    .name = "broken",
    .version = "0",
};

TC_EXPORT const tc_backend_api_t *BROKEN_ENTRY(void);
const tc_backend_api_t *BROKEN_ENTRY(void) { return &api; }
