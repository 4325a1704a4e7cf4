/* user.c: per-uid and global limits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "broker.h"
#include "user.h"

static void test_limits(void **state)
{
	struct broker b;
	struct user *alice, *bob, *again;

	(void)state;
	memset(&b, 0, sizeof(b));
	config_defaults(&b.cfg);
	b.cfg.limits.user_connections = 2;
	b.cfg.limits.connections = 3;
	b.cfg.limits.user_inflight_bytes = 100;
	b.cfg.limits.all_inflight_bytes = 150;
	assert_int_equal(user_get(&b, 1000, &alice), 0);
	assert_int_equal(user_get(&b, 1001, &bob), 0);
	assert_int_equal(user_get(&b, 1000, &again), 0);
	assert_ptr_equal(alice, again);
	user_put(&b, again);

	assert_int_equal(user_charge(&b, alice, USAGE_CONNECTIONS, 1), 0);
	assert_int_equal(user_charge(&b, alice, USAGE_CONNECTIONS, 1), 0);
	assert_int_equal(user_charge(&b, alice, USAGE_CONNECTIONS, 1), -EUSERS); /* alice's limit */
	assert_int_equal(user_charge(&b, bob, USAGE_CONNECTIONS, 1), 0);
	assert_int_equal(user_charge(&b, bob, USAGE_CONNECTIONS, 1), -EUSERS);   /* everyone's */
	user_uncharge(&b, alice, USAGE_CONNECTIONS, 1);
	assert_int_equal(user_charge(&b, bob, USAGE_CONNECTIONS, 1), 0);

	assert_int_equal(user_charge(&b, alice, USAGE_BYTES, 100), 0);
	assert_int_equal(user_charge(&b, alice, USAGE_BYTES, 1), -EDQUOT);
	assert_int_equal(user_charge(&b, bob, USAGE_BYTES, 51), -EDQUOT);
	assert_int_equal(user_charge(&b, bob, USAGE_BYTES, 50), 0);
	assert_int_equal(b.usage.n[USAGE_BYTES], 150);
	user_uncharge(&b, alice, USAGE_BYTES, 100);
	user_uncharge(&b, bob, USAGE_BYTES, 50);
	assert_int_equal(b.usage.n[USAGE_BYTES], 0);
	user_put(&b, alice);
	user_put(&b, bob);
	assert_null(b.users);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_limits) };

	return cmocka_run_group_tests(tests, NULL, NULL);
}
