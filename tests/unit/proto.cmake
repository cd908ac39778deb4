# tc_proto: generated code, wire compatibility with Permify, Any helpers.
# The messages both codec tests build (tests/support/codec_fx.c).
add_library(tc_test_codec_fx STATIC ${PROJECT_SOURCE_DIR}/tests/support/codec_fx.c)
target_include_directories(tc_test_codec_fx PUBLIC ${PROJECT_SOURCE_DIR}/tests/support)
target_link_libraries(tc_test_codec_fx PUBLIC tc_proto)
tc_unit_test(test_proto SOURCES test_proto.c LIBS tc_proto tc_test_codec_fx)
target_compile_definitions(test_proto PRIVATE
                           TC_PROTO_GEN_DIR="$<TARGET_PROPERTY:tc_proto,TC_PROTO_GEN_DIR>")
