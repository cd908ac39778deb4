# The throwaway PostgreSQL fixture: tc_pg_fixture for tests, build/tc-pgtmp for
# scripts (the benchmark), and, with TC_BUILD_TESTS, test_pg_fixture, its own test.

add_library(tc_pg_fixture STATIC ${CMAKE_CURRENT_LIST_DIR}/pg_fixture.c)
target_include_directories(tc_pg_fixture PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(tc_pg_fixture PUBLIC PkgConfig::PQ)

# tt_log (log_lines.h): the host log function of the tests that drive a
# plugin or a connection pool directly.  Here, beside the fixture, because
# backends/postgres's own tests come before tests/ in the build.
add_library(tc_test_log STATIC ${CMAKE_CURRENT_LIST_DIR}/log_lines.c)
target_include_directories(tc_test_log PUBLIC ${CMAKE_CURRENT_LIST_DIR})

add_executable(tc-pgtmp ${CMAKE_CURRENT_LIST_DIR}/pgtmp_main.c)
target_link_libraries(tc-pgtmp PRIVATE tc_pg_fixture)

if(TC_BUILD_TESTS)
  add_executable(test_pg_fixture ${CMAKE_CURRENT_LIST_DIR}/test_pg_fixture.c)
  target_link_libraries(test_pg_fixture PRIVATE tc_pg_fixture PkgConfig::CMOCKA)
  add_test(NAME test_pg_fixture COMMAND test_pg_fixture)
  set_tests_properties(test_pg_fixture PROPERTIES LABELS integration TIMEOUT 300)
endif()
