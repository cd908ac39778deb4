tc_unit_test(test_config SOURCES test_config.c)
