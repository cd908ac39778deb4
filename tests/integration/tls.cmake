# test_tls: TLS on the transports against build/tuplecast, with certificates
# made at test time by the openssl binary and real TLS clients (curl,
# openssl s_client).  Included from this directory's CMakeLists.txt.
find_program(OPENSSL_BIN openssl REQUIRED)
tc_integration_test(test_tls SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tls.c TIMEOUT 300
  LIBS tc_test_support tc_test_grpc_client tc_proto
  DEPENDS tc_backend_sqlite)
# test_tls_bounds: a TLS client that sends key updates without reading, and
# TLS connections counted against server.grpc.max_connections; an OpenSSL
# client in the test, since neither curl nor openssl s_client can do that.
find_package(OpenSSL REQUIRED)
tc_integration_test(test_tls_bounds SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tls_bounds.c TIMEOUT 600
  LIBS tc_test_support OpenSSL::SSL)
