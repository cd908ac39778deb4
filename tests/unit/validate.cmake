# Request validation: Permify's PGV rules and texts (core/src/validate.c).
tc_unit_test(test_validate SOURCES test_validate.c)
