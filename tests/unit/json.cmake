# tc_json: the proto3 JSON codec against Permify's gateway conventions.
tc_unit_test(test_json SOURCES test_json.c LIBS tc_json tc_test_codec_fx)
