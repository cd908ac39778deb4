# Schema DSL: parser and checks, write validation and versions, the proto model.
tc_unit_test(test_schema SOURCES test_schema.c LIBS tc_core_private)
tc_unit_test(test_schema_data SOURCES test_schema_data.c LIBS tc_core_private)
tc_unit_test(test_schema_model SOURCES test_schema_model.c LIBS tc_core_private)
