# Operations: gRPC reflection and health checks, against the real binary.

# test_reflection: gRPC server reflection through grpcurl, the reflection
# client scripts/setup installs (pinned) into the checkout's .tools/bin.
set(TC_GRPCURL ${PROJECT_SOURCE_DIR}/.tools/bin/grpcurl)
tc_integration_test(test_reflection SOURCES test_reflection.c TIMEOUT 180
  LIBS tc_test_support PkgConfig::CMOCKA PkgConfig::JANSSON)
target_compile_definitions(test_reflection PRIVATE TC_GRPCURL="${TC_GRPCURL}")

# test_health: gRPC health per service and /healthz follow the database (its
# PostgreSQL stopped and started under the server); liveness stays up.
tc_integration_test(test_health SOURCES test_health.c TIMEOUT 180
  LIBS tc_test_support tc_pg_fixture PkgConfig::CMOCKA
  DEPENDS tc_backend_postgres)
