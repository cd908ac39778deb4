# test_pg_feed: the change feed, its tokens and the wake-ups (pg_feed.c,
# pg_token.c, pg_wake.c) against a throwaway cluster, with regression tests
# for Permify's watch weaknesses.  Included from this directory's
# CMakeLists.txt after pg_conn.cmake and tests/support/pg.cmake.  The
# migrations (pg_migrate.c, pg_util.c) make the database.

set(TC_PGF_DIR ${CMAKE_CURRENT_LIST_DIR})
add_executable(test_pg_feed ${TC_PGF_DIR}/test_pg_feed.c ${TC_PGF_DIR}/pg_token.c
                            ${TC_PGF_DIR}/pg_feed.c ${TC_PGF_DIR}/pg_wake.c
                            ${TC_PGF_DIR}/pg_migrate.c ${TC_PGF_DIR}/pg_util.c)
target_include_directories(test_pg_feed PRIVATE ${TC_PGF_DIR} ${TC_PGF_DIR}/../../core/include)
target_link_libraries(test_pg_feed PRIVATE tc_pg_conn tc_codec tc_pg_fixture PkgConfig::PQ PkgConfig::UV
                                           PkgConfig::CMOCKA)
add_test(NAME test_pg_feed COMMAND test_pg_feed)
set_tests_properties(test_pg_feed PROPERTIES LABELS integration TIMEOUT 300)
