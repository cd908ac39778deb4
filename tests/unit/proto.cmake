# tc_proto: generated code, wire compatibility with Permify, Any helpers.
tc_unit_test(test_proto SOURCES test_proto.c LIBS tc_proto)
target_compile_definitions(test_proto PRIVATE
                           TC_PROTO_GEN_DIR="$<TARGET_PROPERTY:tc_proto,TC_PROTO_GEN_DIR>")
