# Schema DSL: parser and checks, write validation and versions, the proto model.
tc_unit_test(test_schema SOURCES test_schema.c LIBS tc_core_private)
tc_unit_test(test_schema_data SOURCES test_schema_data.c LIBS tc_core_private)
tc_unit_test(test_schema_model SOURCES test_schema_model.c LIBS tc_core_private)
target_include_directories(test_schema PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
target_include_directories(test_schema_model PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
