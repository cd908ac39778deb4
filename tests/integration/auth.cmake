# test_auth: preshared keys on every gRPC method and HTTP route, health
# exempt, and the rate limiter, against build/tuplecast (tc_http_private: it
# walks the gateway's route table to cover every route).  Included from this
# directory's CMakeLists.txt.
tc_integration_test(test_auth SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_auth.c TIMEOUT 300
  LIBS tc_test_support tc_http_private Threads::Threads
  DEPENDS tc_backend_sqlite)
