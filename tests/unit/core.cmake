# Core modules: error table, continuous tokens, base64, arena, plugin loader.
tc_unit_test(test_core SOURCES test_core.c LIBS tc_core_private)

# The admission gate: token bucket, and an authenticator answering later.
tc_unit_test(test_gate SOURCES test_gate.c LIBS tc_core_private)

# The snap tokens of the revision-numbered backends (backends/support).
tc_unit_test(test_rev_token SOURCES test_rev_token.c LIBS tc_support)

# The rest of the plugin support library: the arena's deep copies of the ABI
# shapes and the in-order delivery queue.
tc_unit_test(test_support SOURCES test_support.c LIBS tc_support)

# Plugins broken in one way each, for the loader's negative tests.
set(TC_BROKEN_PLUGINS
    "wrong_magic\;BROKEN_MAGIC=0x12345678u"
    "old_major\;BROKEN_MAJOR=1"
    "short_table\;BROKEN_SIZE=offsetof(tc_backend_api_t,create)"
    "bad_fingerprint\;BROKEN_FINGERPRINT=\"tc1:ptr4:bo1234:uv0:noasan\""
    "old_entry\;BROKEN_ENTRY=tc_backend_entry_v1"
    "good\;BROKEN_UNUSED=1")
foreach(spec IN LISTS TC_BROKEN_PLUGINS)
  list(GET spec 0 name)
  list(GET spec 1 def)
  add_library(broken_${name} MODULE ${CMAKE_CURRENT_SOURCE_DIR}/broken_plugin.c)
  target_include_directories(broken_${name} PRIVATE ${PROJECT_SOURCE_DIR}/core/include)
  target_link_libraries(broken_${name} PRIVATE PkgConfig::UV)
  target_compile_definitions(broken_${name} PRIVATE ${def})
  set_target_properties(broken_${name} PROPERTIES PREFIX "" OUTPUT_NAME ${name} LIBRARY_OUTPUT_DIRECTORY
                        ${CMAKE_CURRENT_BINARY_DIR}/plugins)
  add_dependencies(test_core broken_${name})
endforeach()
target_compile_definitions(test_core PRIVATE
  TC_TEST_PLUGIN_DIR="${CMAKE_CURRENT_BINARY_DIR}/plugins")

# Data.RunBundle's templates and text forms (core/src/bundle_expand.c).
tc_unit_test(test_bundle_expand SOURCES test_bundle_expand.c LIBS tc_core_private)

# log.c's text and JSON lines and repeat limiter; the masked configuration dump.
tc_unit_test(test_log SOURCES test_log.c LIBS tc_core_private PkgConfig::JANSSON)
