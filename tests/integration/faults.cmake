# test_faults: latent faults against build/tuplecast: a backend whose head()
# refuses at once (the Watch feed must not stay behind, never ready), a
# plugin of ABI 2.0 (no bundle calls, no exact deletes), and SIGPIPE ignored
# with HTTP disabled.  Included from this directory's
# CMakeLists.txt.

# The example backend with head() refusing while a switch file exists
# (faulty_backend.c), as example.so in a directory of its own.
add_library(tc_backend_faulty MODULE ${CMAKE_CURRENT_LIST_DIR}/faulty_backend.c)
target_include_directories(tc_backend_faulty PRIVATE ${PROJECT_SOURCE_DIR}/core/include)
target_link_libraries(tc_backend_faulty PRIVATE PkgConfig::UV ${CMAKE_DL_LIBS})
target_compile_definitions(tc_backend_faulty PRIVATE
  INNER_PLUGIN="$<TARGET_FILE:tc_backend_example>")
set_target_properties(tc_backend_faulty PROPERTIES PREFIX "" OUTPUT_NAME example
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/faulty)
add_dependencies(tc_backend_faulty tc_backend_example)

# The same as a plugin of ABI 2.0 (ABI_2_0), in a directory of its own.
add_library(tc_backend_abi20 MODULE ${CMAKE_CURRENT_LIST_DIR}/faulty_backend.c)
target_include_directories(tc_backend_abi20 PRIVATE ${PROJECT_SOURCE_DIR}/core/include)
target_link_libraries(tc_backend_abi20 PRIVATE PkgConfig::UV ${CMAKE_DL_LIBS})
target_compile_definitions(tc_backend_abi20 PRIVATE ABI_2_0
  INNER_PLUGIN="$<TARGET_FILE:tc_backend_example>")
set_target_properties(tc_backend_abi20 PROPERTIES PREFIX "" OUTPUT_NAME example
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/abi20)
add_dependencies(tc_backend_abi20 tc_backend_example)

tc_integration_test(test_faults SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_faults.c TIMEOUT 120
  LIBS tc_test_support
  DEPENDS tc_backend_faulty tc_backend_abi20 tc_backend_sqlite
  ENV "TUPLECAST_FAULTY_DIR=${CMAKE_CURRENT_BINARY_DIR}/faulty"
      "TUPLECAST_ABI20_DIR=${CMAKE_CURRENT_BINARY_DIR}/abi20")
