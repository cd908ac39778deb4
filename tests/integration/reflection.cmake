# test_reflection: gRPC server reflection through grpcurl, the reflection
# client scripts/setup installs (pinned) into the checkout's .tools/bin.
set(TC_GRPCURL ${PROJECT_SOURCE_DIR}/.tools/bin/grpcurl)
tc_integration_test(test_reflection SOURCES test_reflection.c TIMEOUT 180
  LIBS tc_test_support PkgConfig::CMOCKA PkgConfig::JANSSON)
target_compile_definitions(test_reflection PRIVATE TC_GRPCURL="${TC_GRPCURL}")
