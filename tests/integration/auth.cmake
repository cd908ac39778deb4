# test_auth: preshared keys on every gRPC method and HTTP route, health
# exempt, and the rate limiter, against build/tuplecast.  Included from this
# directory's CMakeLists.txt.
tc_integration_test(test_auth SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_auth.c TIMEOUT 300
  LIBS tc_test_support tc_http Threads::Threads
  DEPENDS tc_backend_sqlite)
