/* name.c: who may own which name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "name.h"

static void test_rules(void **state)
{
	struct broker_config cfg;
	char err[256];

	(void)state;
	config_defaults(&cfg);
	assert_true(name_allowed(&cfg, "anything", 1000)); /* first come, first served */
	assert_int_equal(config_set(&cfg, "name-owner", "org.example.* root", err, sizeof(err)), 0);
	assert_int_equal(config_set(&cfg, "name-owner", "org.example.shared 1000", err, sizeof(err)), 0);
	assert_int_equal(config_set(&cfg, "name-owner", "org.example.shared 1001", err, sizeof(err)), 0);
	assert_true(name_allowed(&cfg, "org.example.svc", 0));
	assert_false(name_allowed(&cfg, "org.example.svc", 1000));
	assert_false(name_allowed(&cfg, "org.example.", 1000));
	/* a name covered by several rules: any of their uids */
	assert_true(name_allowed(&cfg, "org.example.shared", 1000));
	assert_true(name_allowed(&cfg, "org.example.shared", 1001));
	assert_true(name_allowed(&cfg, "org.example.shared", 0));
	assert_false(name_allowed(&cfg, "org.example.shared", 1002));
	/* an exact rule does not cover longer names */
	assert_true(name_allowed(&cfg, "org.examplex", 1000));
	assert_int_equal(config_set(&cfg, "names-unlisted", "root", err, sizeof(err)), 0);
	assert_false(name_allowed(&cfg, "org.examplex", 1000));
	assert_true(name_allowed(&cfg, "org.examplex", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_rules) };

	return cmocka_run_group_tests(tests, NULL, NULL);
}
