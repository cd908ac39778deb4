# The gRPC transport test, and the gRPC test client every integration test
# may link (tests/support/grpc_client.h).  Included from this directory's
# CMakeLists.txt.
add_library(tc_test_grpc_client STATIC ${CMAKE_CURRENT_LIST_DIR}/../support/grpc_client.c)
target_include_directories(tc_test_grpc_client PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../support)
target_link_libraries(tc_test_grpc_client PUBLIC tc_grpc_codec PkgConfig::GRPC PkgConfig::PROTOBUFC)

tc_unit_test(test_grpc_transport
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_grpc_transport.c
  LIBS tc_grpc_private tc_test_grpc_client)
set_tests_properties(test_grpc_transport PROPERTIES LABELS integration)
