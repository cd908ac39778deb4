# test_tls: TLS on the transports against build/tuplecast, with certificates
# made at test time by the openssl binary and real TLS clients (curl,
# openssl s_client).  Included from this directory's CMakeLists.txt.
find_program(OPENSSL_BIN openssl REQUIRED)
add_executable(test_tls ${CMAKE_CURRENT_LIST_DIR}/test_tls.c)
target_link_libraries(test_tls PRIVATE tc_test_support tc_test_grpc_client tc_proto)
add_dependencies(test_tls tuplecast tc_backend_sqlite)
add_test(NAME test_tls COMMAND test_tls)
set_tests_properties(test_tls PROPERTIES LABELS integration TIMEOUT 300
                     ENVIRONMENT "TUPLECAST_BIN=$<TARGET_FILE:tuplecast>")
