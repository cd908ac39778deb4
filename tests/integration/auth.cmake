# test_auth: preshared keys on every gRPC method and HTTP route, health
# exempt, and the rate limiter, against build/tuplecast.  Included from this
# directory's CMakeLists.txt.
add_executable(test_auth ${CMAKE_CURRENT_LIST_DIR}/test_auth.c)
target_link_libraries(test_auth PRIVATE tc_test_support tc_http Threads::Threads)
add_dependencies(test_auth tuplecast tc_backend_sqlite)
add_test(NAME test_auth COMMAND test_auth)
set_tests_properties(test_auth PROPERTIES LABELS integration TIMEOUT 300
                     ENVIRONMENT "TUPLECAST_BIN=$<TARGET_FILE:tuplecast>")
