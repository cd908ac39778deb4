# test_http: the HTTP/JSON gateway against build/tuplecast, driven with the
# curl binary (a test dependency) and raw sockets.  Included from this
# directory's CMakeLists.txt.
find_program(CURL_BIN curl REQUIRED)
tc_integration_test(test_http SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_http.c TIMEOUT 300
  LIBS tc_test_support tc_http_private Threads::Threads
  DEPENDS tc_backend_sqlite)
