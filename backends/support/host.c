/* The host's plugin ABI, checked at create() (tuplecast/support.h). */
#include "tuplecast/support.h"

int tc_host_check(const tc_host_api_t *host, const char *plugin, char **errmsg) {
  if (host->struct_size >= TC_HOST_API_V2_1_SIZE && host->abi_major == TC_BACKEND_ABI_MAJOR &&
      host->abi_minor >= TC_BACKEND_ABI_MINOR)
    return 0;
  *errmsg = tc_format("backend plugin %s needs a server of plugin ABI %d.%d or later", plugin,
                      TC_BACKEND_ABI_MAJOR, TC_BACKEND_ABI_MINOR);
  return TC_EPLUGIN;
}
