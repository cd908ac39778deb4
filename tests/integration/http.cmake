# test_http: the HTTP/JSON gateway against build/tuplecast, driven with the
# curl binary (a test dependency) and raw sockets.  Included from this
# directory's CMakeLists.txt.
find_program(CURL_BIN curl REQUIRED)
add_executable(test_http ${CMAKE_CURRENT_LIST_DIR}/test_http.c)
target_link_libraries(test_http PRIVATE tc_test_support tc_http Threads::Threads)
add_dependencies(test_http tuplecast tc_backend_sqlite)
add_test(NAME test_http COMMAND test_http)
set_tests_properties(test_http PROPERTIES LABELS integration TIMEOUT 300
                     ENVIRONMENT "TUPLECAST_BIN=$<TARGET_FILE:tuplecast>")
