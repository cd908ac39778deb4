# libpq connections on the libuv loop (pg_conn.h): tc_pg_conn, for the postgres
# plugin, and test_pg_conn against a throwaway cluster (tests/support/pg.cmake).
# Included from this directory's CMakeLists.txt.

# -fPIC: it ends up inside the dlopen'd plugin.
add_library(tc_pg_conn STATIC ${CMAKE_CURRENT_LIST_DIR}/pg_conn.c)
set_target_properties(tc_pg_conn PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_include_directories(tc_pg_conn PUBLIC ${CMAKE_CURRENT_LIST_DIR}
                                              ${CMAKE_CURRENT_LIST_DIR}/../../core/include)
target_link_libraries(tc_pg_conn PUBLIC PkgConfig::UV PkgConfig::PQ)

if(TC_BUILD_TESTS)
  add_executable(test_pg_conn ${CMAKE_CURRENT_LIST_DIR}/test_pg_conn.c)
  target_link_libraries(test_pg_conn PRIVATE tc_pg_conn tc_pg_fixture tc_test_log PkgConfig::CMOCKA)
  add_test(NAME test_pg_conn COMMAND test_pg_conn)
  set_tests_properties(test_pg_conn PROPERTIES LABELS integration TIMEOUT 300)
endif()
