# test_pg_feed: the change feed, its tokens and the wake-ups (pg_feed.c,
# pg_token.c, pg_wake.c) against a throwaway cluster, with regression tests
# for Permify's watch weaknesses.  Included from this directory's
# CMakeLists.txt after tc_pg_feed (which holds the code under test and the
# migrations, pg_migrate.c and pg_util.c, that make the database).

set(TC_PGF_DIR ${CMAKE_CURRENT_LIST_DIR})
add_executable(test_pg_feed ${TC_PGF_DIR}/test_pg_feed.c)
target_link_libraries(test_pg_feed PRIVATE tc_pg_feed tc_pg_fixture PkgConfig::CMOCKA)
add_test(NAME test_pg_feed COMMAND test_pg_feed)
set_tests_properties(test_pg_feed PROPERTIES LABELS integration TIMEOUT 300)
